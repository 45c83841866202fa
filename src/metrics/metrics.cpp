// The registry behind metrics.hpp and its Prometheus text rendering (exposition format 0.0.4:
// https://prometheus.io/docs/instrumenting/exposition_formats/). Series live in ordered maps, so
// a scrape lists them in a stable order without sorting; a scrape copies the registry under the
// lock and formats the copy outside it, so updates never wait for a slow scraper.
#include "metrics/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace starling::metrics {
namespace {

using Type = Registry::Type;

struct Known {
  std::string_view name;
  Type type;
  std::string_view help;
  bool unlabelled = false;  // shown at 0 before its first update, so that rate() sees it start
};

// Render order and HELP text of every name declared in metrics.hpp.
constexpr Known kKnown[] = {
    {kConnectionsAccepted, Type::kCounter, "Connections accepted by a receive connector and served."},
    {kConnectionsOpen, Type::kGauge, "Connections open now on a receive connector."},
    {kMessagesReceived, Type::kCounter, "Messages received and queued (answered 250) by a receive connector."},
    {kMessagesDelivered, Type::kCounter, "Recipients delivered, by next hop."},
    {kMessagesDeferred, Type::kCounter, "Recipients deferred after a temporary failure, by next hop."},
    {kMessagesFailed, Type::kCounter, "Recipients failed permanently, by next hop."},
    {kReportsSent, Type::kCounter, "Delivery status notifications sent, by kind."},
    {kDeliveries, Type::kCounter, "Delivery attempts, by next hop and result."},
    {kTlsHandshakes, Type::kCounter, "TLS handshakes completed, by direction and protocol version."},
    {kTlsHandshakeFailures, Type::kCounter, "TLS handshakes that failed, by direction."},
    {kQueueLength, Type::kGauge, "Messages in a queue."},
    {kQueueOldestAge, Type::kGauge, "Age of the oldest message in a queue, in seconds."},
    {kConnectorNoCertificate, Type::kGauge,
     "1 while a connector has no certificate for STARTTLS (event 12014), else 0."},
    {kCertificateExpiry, Type::kGauge,
     "Seconds until the certificate a connector serves expires (negative once expired)."},
    {kTrackingDropped, Type::kCounter, "Message tracking entries that could not be written.", true},
};

const Known* known(std::string_view name) {
  for (const Known& k : kKnown) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

bool name_char(char c, bool first, bool colon) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

// Metric names [a-zA-Z_:][a-zA-Z0-9_:]*; label names [a-zA-Z_][a-zA-Z0-9_]*, "__" reserved.
bool valid_name(std::string_view s, bool metric) {
  if (s.empty() || (!metric && s.substr(0, 2) == "__")) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!name_char(s[i], i == 0, metric)) return false;
  }
  return true;
}

bool valid_labels(const Labels& labels) {
  std::set<std::string_view> seen;
  for (const auto& [k, v] : labels) {
    if (!valid_name(k, false) || !seen.insert(k).second) return false;
  }
  return true;
}

// Known names first, in their order; any other name after them, alphabetically.
std::vector<std::string_view> render_order(const std::map<std::string, Registry::Type, std::less<>>& in_use) {
  std::vector<std::string_view> order;
  for (const Known& k : kKnown) order.push_back(k.name);
  for (const auto& [name, type] : in_use) {
    if (!known(name)) order.push_back(name);
  }
  return order;
}

void append_series(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out += ',';
      out += labels[i].first;
      out += "=\"";
      out += escape_label_value(labels[i].second);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

Registry::Series* Registry::find_or_add(std::string_view name, Type type, const Labels& labels) {
  auto f = families_.find(name);
  if (f != families_.end()) {
    if (f->second.type != type) return nullptr;
    if (auto s = f->second.series.find(labels); s != f->second.series.end()) return &s->second;
  }
  if (!valid_labels(labels)) return nullptr;
  if (f == families_.end()) {
    const Known* k = known(name);
    if (!valid_name(name, true) || (k && k->type != type)) return nullptr;
    f = families_.emplace(std::string(name), Family{type, {}}).first;
  }
  auto& series = f->second.series;
  if (series.size() < kMaxSeriesPerMetric) return &series[labels];
  // Full: a runaway label (a next hop per recipient domain, say) must not grow memory without
  // bound. The overflow series is created even past the limit, once.
  Labels other = labels;
  for (auto& [k, v] : other) v = "_other";
  return &series[other];
}

void Registry::count(std::string_view name, const Labels& labels, double n) {
  if (!(n >= 0)) return;
  std::lock_guard lock(mutex_);
  if (Series* s = find_or_add(name, Type::kCounter, labels)) s->value += n;
}

void Registry::set_gauge(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  if (Series* s = find_or_add(name, Type::kGauge, labels)) *s = Series{value, false};
}

void Registry::add_gauge(std::string_view name, const Labels& labels, double delta) {
  std::lock_guard lock(mutex_);
  if (Series* s = find_or_add(name, Type::kGauge, labels); s && !s->countdown) s->value += delta;
}

void Registry::clear_gauge(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto f = families_.find(name);
  if (f != families_.end() && f->second.type == Type::kGauge) f->second.series.clear();
}

void Registry::set_countdown(std::string_view name, const Labels& labels, std::chrono::system_clock::time_point when) {
  std::lock_guard lock(mutex_);
  if (Series* s = find_or_add(name, Type::kGauge, labels)) {
    *s = Series{static_cast<double>(unix_seconds(when)), true};
  }
}

void Registry::set_collector(Collector collector) {
  auto shared = collector ? std::make_shared<const Collector>(std::move(collector)) : nullptr;
  std::lock_guard lock(mutex_);
  collector_ = std::move(shared);
}

std::string Registry::render(std::chrono::system_clock::time_point now) const {
  Families snapshot;
  std::shared_ptr<const Collector> collector;
  {
    std::lock_guard lock(mutex_);
    snapshot = families_;
    collector = collector_;
  }
  if (collector) {
    // Collected gauges replace what the registry holds under their names.
    Registry collected;
    (*collector)([&collected](std::string_view name, const Labels& labels, double value) {
      collected.set_gauge(name, labels, value);
    });
    for (auto& [name, family] : collected.families_) snapshot[name] = std::move(family);
  }
  std::map<std::string, Type, std::less<>> in_use;
  for (const auto& [name, family] : snapshot) in_use.emplace(name, family.type);
  std::string out;
  const double now_s = static_cast<double>(unix_seconds(now));
  for (std::string_view name : render_order(in_use)) {
    const Known* k = known(name);
    auto f = snapshot.find(name);
    if (k) {
      out += "# HELP " + std::string(name) + " " + escape_help(k->help) + "\n";
    }
    Type type = k ? k->type : f->second.type;
    out += "# TYPE " + std::string(name) + (type == Type::kCounter ? " counter\n" : " gauge\n");
    if (f == snapshot.end()) {
      if (k->unlabelled) append_series(out, name, {}, 0);
      continue;
    }
    for (const auto& [labels, s] : f->second.series) {
      append_series(out, name, labels, s.countdown ? s.value - now_s : s.value);
    }
  }
  return out;
}

Registry& registry() {
  static Registry r;
  return r;
}

void count(std::string_view name, const Labels& labels, double n) { registry().count(name, labels, n); }
void set_gauge(std::string_view name, const Labels& labels, double value) { registry().set_gauge(name, labels, value); }
void add_gauge(std::string_view name, const Labels& labels, double delta) { registry().add_gauge(name, labels, delta); }
void clear_gauge(std::string_view name) { registry().clear_gauge(name); }
void set_countdown(std::string_view name, const Labels& labels, std::chrono::system_clock::time_point when) {
  registry().set_countdown(name, labels, when);
}
void set_collector(Collector collector) { registry().set_collector(std::move(collector)); }
std::string render() { return registry().render(std::chrono::system_clock::now()); }

}  // namespace starling::metrics
