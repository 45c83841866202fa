// Placeholder until the registry lands (issue 10, metrics): every call is accepted and dropped.
#include "metrics/metrics.hpp"

namespace starling::metrics {

void count(std::string_view, const Labels&, double) {}
void set_gauge(std::string_view, const Labels&, double) {}
void add_gauge(std::string_view, const Labels&, double) {}
void clear_gauge(std::string_view) {}
void set_collector(Collector) {}
std::string render() { return {}; }

}  // namespace starling::metrics
