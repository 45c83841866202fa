// Metrics for Prometheus (served at /metrics on MetricsListen, metrics_server.hpp). Counters and
// gauges live in one process-wide registry that any thread updates; the names below are the only
// ones in use, each with its HELP text and type in metrics.cpp. Labels are few and bounded
// (connector names, next hops, TLS versions, results): never an address or a message id.
#pragma once

#include <functional>
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
    kConnectorNoCertificate = "starling_connector_certificate_missing",    // gauge {connector}: 1 with 12014
    kCertificateExpiry = "starling_connector_certificate_expiry_seconds",  // gauge {connector}
    kTrackingDropped = "starling_tracking_entries_dropped_total";

// Adds to a counter (created at zero on first use).
void count(std::string_view name, const Labels& labels = {}, double n = 1);
// Sets or moves a gauge.
void set_gauge(std::string_view name, const Labels& labels, double value);
void add_gauge(std::string_view name, const Labels& labels, double delta);
// Removes every series of a gauge (before setting it afresh, e.g. per connector after a change).
void clear_gauge(std::string_view name);

// Computed at scrape time (the queue's lengths): called with a setter for gauges.
using GaugeSetter = std::function<void(std::string_view name, const Labels& labels, double value)>;
using Collector = std::function<void(const GaugeSetter&)>;
void set_collector(Collector collector);

// The whole registry in the Prometheus text exposition format (version 0.0.4).
std::string render();

}  // namespace starling::metrics
