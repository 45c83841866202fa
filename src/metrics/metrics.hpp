// Metrics for Prometheus (served at /metrics on MetricsListen, metrics_server.hpp). Counters and
// gauges live in one process-wide registry that any thread updates; the names below are the only
// ones in use, each with its HELP text and type in metrics.cpp. Labels are few and bounded
// (connector names, next hops, TLS versions, results): never an address or a message id, and a
// metric past kMaxSeriesPerMetric label sets counts the rest under one "_other" series.
// Thread safety: every function may be called from any thread. An update costs one uncontended
// mutex and a lookup by name and labels that allocates nothing once the series exists.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The metric names (Prometheus conventions: starling_ prefix, _total for counters, base units).
inline constexpr std::string_view
    kConnectionsAccepted = "starling_receive_connections_accepted_total",  // {connector}
    kConnectionsOpen = "starling_receive_connections_open",                // gauge {connector}
    kMessagesReceived = "starling_messages_received_total",                // {connector}
    kMessagesDelivered = "starling_messages_delivered_total",              // recipients {next_hop}
    kMessagesDeferred = "starling_messages_deferred_total",                // recipients {next_hop}
    kMessagesFailed = "starling_messages_failed_total",                    // recipients {next_hop}
    kReportsSent = "starling_reports_sent_total",                          // {kind: failure|delay|success|relayed}
    kDeliveries = "starling_deliveries_total",                             // {next_hop, result: delivered|deferred|failed}
    kTlsHandshakes = "starling_tls_handshakes_total",                      // {direction: receive|send, version}
    kTlsHandshakeFailures = "starling_tls_handshake_failures_total",       // {direction}
    kQueueLength = "starling_queue_messages",                              // gauge {queue}, collected
    kQueueOldestAge = "starling_queue_oldest_message_age_seconds",         // gauge {queue}, collected
    kConnectorNoCertificate = "starling_connector_certificate_missing",    // gauge {kind: receive|send, connector}: 1 with 12014
    kCertificateExpiry = "starling_connector_certificate_expiry_seconds",  // gauge {kind, connector}, countdown
    kTrackingDropped = "starling_tracking_entries_dropped_total";

inline constexpr size_t kMaxSeriesPerMetric = 1000;

// Adds to a counter (created at zero on first use). A negative or NaN `n` is ignored: a counter
// only goes up.
void count(std::string_view name, const Labels& labels = {}, double n = 1);
// Sets or moves a gauge.
void set_gauge(std::string_view name, const Labels& labels, double value);
void add_gauge(std::string_view name, const Labels& labels, double delta);
// Removes every series of a gauge (before setting it afresh, e.g. per connector after a change).
void clear_gauge(std::string_view name);
// A gauge that counts down: at each scrape it shows the seconds left until `when` (negative
// once passed), e.g. until a certificate expires.
void set_countdown(std::string_view name, const Labels& labels, std::chrono::system_clock::time_point when);

// Computed at scrape time (the queue's lengths): called with a setter for gauges. One collector
// per process; a second call replaces the first. It runs on the scraping thread, outside the
// registry's lock (it may update metrics itself), and its gauges replace stored series of the
// same name for that scrape only.
using GaugeSetter = std::function<void(std::string_view name, const Labels& labels, double value)>;
using Collector = std::function<void(const GaugeSetter&)>;
void set_collector(Collector collector);

// The whole registry in the Prometheus text exposition format (version 0.0.4): the known metrics
// in the order declared above, each with # HELP and # TYPE, then any other name in use, series
// sorted by labels.
std::string render();

// What the functions above use (one process-wide instance); tests make their own.
class Registry {
 public:
  enum class Type { kCounter, kGauge };

  void count(std::string_view name, const Labels& labels, double n);
  void set_gauge(std::string_view name, const Labels& labels, double value);
  void add_gauge(std::string_view name, const Labels& labels, double delta);
  void clear_gauge(std::string_view name);
  void set_countdown(std::string_view name, const Labels& labels, std::chrono::system_clock::time_point when);
  void set_collector(Collector collector);
  std::string render(std::chrono::system_clock::time_point now) const;

 private:
  struct Series {
    double value = 0;
    bool countdown = false;  // value is a Unix time; shown as the seconds left until it
  };
  struct Family {
    Type type;
    std::map<Labels, Series> series;
  };
  using Families = std::map<std::string, Family, std::less<>>;
  // The series of (name, labels), created when missing; null when the name or a label is not
  // valid, or the metric is known with the other type.
  Series* find_or_add(std::string_view name, Type type, const Labels& labels);

  mutable std::mutex mutex_;
  Families families_;
  std::shared_ptr<const Collector> collector_;
};

Registry& registry();

// Prometheus text format escaping (exposed for tests): a label value escapes \, " and newline;
// HELP text \ and newline.
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// A sample value: shortest round-trip decimal, NaN, +Inf or -Inf.
std::string format_value(double v);

}  // namespace starling::metrics
