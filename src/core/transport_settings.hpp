// The transport server's delivery settings (Exchange's Set-TransportServer, docs/outbound.md),
// with Exchange 2007/2010 Hub defaults, and the pure rules that use them: the retry schedule, the
// expiry and the delay notice. Durations show and parse as Exchange's "[d.]hh:mm:ss" (seconds are
// accepted too).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::core {

struct TransportSettings {
  uint32_t transient_failure_retry_count = 6;
  std::chrono::seconds transient_failure_retry_interval{300};
  std::chrono::seconds outbound_connection_failure_retry_interval{600};
  std::chrono::seconds message_retry_interval{300};
  std::chrono::seconds message_expiration_timeout{2 * 24 * 3600};
  std::chrono::seconds delay_notification_timeout{4 * 3600};
  uint32_t max_outbound_connections = 1000;
  uint32_t max_per_domain_outbound_connections = 20;
  std::vector<std::string> external_dns_servers;  // "IP[:port]"
  std::string external_postmaster_address;        // empty: postmaster@<default accepted domain>
  std::chrono::seconds message_tracking_log_max_age{30 * 24 * 3600};
  uint64_t message_tracking_log_max_directory_size = 250ull * 1024 * 1024;
  uint64_t message_tracking_log_max_file_size = 10ull * 1024 * 1024;
  bool message_tracking_log_enabled = true;  // off: no tracking entries are written
  uint32_t poison_threshold = 2;
  // How long and how many events the store keeps (get-event); older or more are pruned.
  std::chrono::seconds event_log_max_age{30 * 24 * 3600};
  uint32_t event_log_max_count = 100000;
  // Where /metrics is served for Prometheus, "IP:port" or "[IPv6]:port"; empty: not served.
  std::string metrics_listen;
};

// Names as the CLI shows them: "TransientFailureRetryCount", "MessageRetryInterval", ...;
// durations as "[d.]hh:mm:ss" strings. from_json reads only the keys present.
void to_json(nlohmann::ordered_json& j, const TransportSettings& s);
void from_json(const nlohmann::ordered_json& j, TransportSettings& s);

// Refuses what cannot work, with the reason: zero intervals or timeouts, a per-domain limit above
// the total, an unparsable DNS server, a malformed postmaster address, an event log limit of
// zero or past its maximum, a MetricsListen that is not IP:port.
Result<void> validate(const TransportSettings& s);

// "2.00:00:00", "00:05:00", "300" -> seconds; format_duration(172800s) == "2.00:00:00".
Result<std::chrono::seconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::seconds s);

// The retry schedule. A next hop that failed (could not connect, or answered the connection with
// 4xx) `consecutive_failures` times in a row (1 for the first failure): the first
// TransientFailureRetryCount retries come every TransientFailureRetryInterval, then every
// OutboundConnectionFailureRetryInterval. `jitter` in [0, 1) adds up to 10% so a returning host
// is not hit by the whole queue at once.
std::chrono::seconds hop_retry_delay(const TransportSettings& s, uint32_t consecutive_failures,
                                     double jitter);
// A message that failed on its own (4xx to MAIL, RCPT or DATA) while its next hop works.
std::chrono::seconds message_retry_delay(const TransportSettings& s, double jitter);

// Unix times in seconds. expired: still undelivered MessageExpirationTimeout after arrival
// (fails with 4.4.7). delay_notice_due: DelayNotificationTimeout passed and none sent yet.
bool expired(const TransportSettings& s, int64_t arrival, int64_t now);
bool delay_notice_due(const TransportSettings& s, int64_t arrival, int64_t now, bool already_sent);

}  // namespace starling::core
