#include "core/transport_settings.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "core/connector.hpp"
#include "core/ip_range.hpp"
#include "core/names.hpp"

namespace starling::core {
namespace {

using std::chrono::seconds;

// Exchange's ranges (Set-TransportServer), kept so that a value Exchange refuses is refused here
// too. The lower bounds are 1 second rather than Exchange's larger minimums for some settings
// (MessageExpirationTimeout 00:00:05): tests and labs want short schedules.
constexpr uint32_t kMaxTransientFailureRetryCount = 15;
constexpr seconds kMaxTransientFailureRetryInterval{12 * 3600};
constexpr seconds kMaxOutboundConnectionFailureRetryInterval{20 * 24 * 3600};
constexpr seconds kMaxMessageRetryInterval{24 * 3600};
constexpr seconds kMaxMessageExpirationTimeout{90 * 24 * 3600};
constexpr seconds kMaxDelayNotificationTimeout{30 * 24 * 3600};
constexpr uint32_t kMaxPoisonThreshold = 10;
// Starling's own settings (Exchange keeps its events in the Windows event log). Ten years and ten
// million events (a few GB) are beyond any retention an administrator needs from this log.
constexpr seconds kMaxEventLogMaxAge{3650ll * 24 * 3600};
constexpr uint32_t kMaxEventLogMaxCount = 10'000'000;

// Largest duration accepted by parse_duration: 100 years, far beyond any bound above, small
// enough that nothing overflows when it is added to a Unix time.
constexpr int64_t kMaxDurationSeconds = 100ll * 366 * 24 * 3600;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A non-negative decimal number of at most 12 digits (no sign, no spaces).
std::optional<int64_t> number(std::string_view s) {
  if (!all_digits(s) || s.size() > 12) return std::nullopt;
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

void read_duration(const nlohmann::ordered_json& j, const char* key, seconds& field) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_number_integer()) {
    field = seconds(v.get<int64_t>());
    return;
  }
  auto parsed = parse_duration(v.get<std::string>());
  if (!parsed) throw std::invalid_argument(std::string(key) + ": " + parsed.error());
  field = *parsed;
}

template <typename T>
void read(const nlohmann::ordered_json& j, const char* key, T& field) {
  if (j.contains(key)) j.at(key).get_to(field);
}

Result<void> check_interval(const char* name, seconds value, seconds max) {
  if (value.count() <= 0) return make_error(std::string(name) + ": must be greater than 00:00:00");
  if (value > max) {
    return make_error(std::string(name) + ": " + format_duration(value) + " is above the maximum " +
                      format_duration(max));
  }
  return {};
}

// "IPv4", "IPv4:port", "[IPv6]", "[IPv6]:port" or a bare IPv6 address.
Result<void> check_dns_server(const std::string& entry) {
  auto bad = [&](const std::string& why) {
    return make_error("ExternalDNSServers: '" + entry + "' " + why +
                      " (expected IPv4[:port], [IPv6][:port] or a bare IPv6 address)");
  };
  std::string host = entry;
  std::string port;
  if (!entry.empty() && entry.front() == '[') {
    size_t close = entry.find(']');
    if (close == std::string::npos) return bad("has an unbalanced [");
    host = entry.substr(1, close - 1);
    std::string rest = entry.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after ]");
      port = rest.substr(1);
      if (port.empty()) return bad("has an empty port");
    }
    if (host.find(':') == std::string::npos) return bad("puts an IPv4 address in [ ]");
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
    size_t colon = entry.find(':');
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
    if (port.empty()) return bad("has an empty port");
  }
  // With two or more colons and no brackets the whole entry is a bare IPv6 address.
  if (!parse_ip(host)) return bad("is not an IP address");
  if (!port.empty()) {
    auto p = number(port);
    if (!p || *p < 1 || *p > 65535) return bad("has a port outside 1-65535");
  }
  return {};
}

// local@domain: a non-empty local part without spaces, angle brackets or a second @, and a
// valid host name (RFC 5321 §4.1.2's Domain; address literals are not accepted for a postmaster).
Result<void> check_postmaster(const std::string& address) {
  auto bad = [&] {
    return make_error("ExternalPostmasterAddress: '" + address +
                      "' is not an address such as postmaster@contoso.com (or empty for "
                      "postmaster@<default accepted domain>)");
  };
  size_t at = address.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == address.size()) return bad();
  std::string local = address.substr(0, at);
  if (local.size() > 64) return bad();  // RFC 5321 §4.5.3.1.1
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '<' || c == '>' || c == '@' || c == ',' || c == '"' ||
        c == '(' || c == ')' || c == '[' || c == ']' || c == '\\' || c == ';' || c == ':') {
      return bad();
    }
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string::npos) return bad();
  if (!is_valid_hostname(address.substr(at + 1))) return bad();
  return {};
}

// "IP:port" or "[IPv6]:port" with a port of 1-65535: an explicit address (":9325" would publish
// the metrics on every interface by accident) and brackets around IPv6 (the port is not guessed).
Result<void> check_metrics_listen(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return make_error("MetricsListen: '" + text + "' " + why +
                      " (expected IP:port such as 127.0.0.1:9325 or [::1]:9325, or empty for none)");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("has no address");
  std::string host = text.substr(0, colon);
  bool bracketed = host.front() == '[' && host.back() == ']';
  if (host.find(':') != std::string::npos && !bracketed) return bad("puts an IPv6 address without [ ]");
  auto binding = parse_binding(text);
  if (!binding) return bad("is not an address and port");
  if (bracketed && binding->address.find(':') == std::string::npos) return bad("puts an IPv4 address in [ ]");
  if (binding->port == 0) return bad("has port 0");
  return {};
}

seconds with_jitter(seconds base, double jitter) {
  if (!(jitter > 0)) jitter = 0;  // also catches NaN
  if (jitter >= 1) jitter = 0.999999;
  return base + seconds(static_cast<int64_t>(static_cast<double>(base.count()) * 0.1 * jitter));
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  std::string t(text);
  while (!t.empty() && t.front() == ' ') t.erase(t.begin());
  while (!t.empty() && t.back() == ' ') t.pop_back();
  auto bad = [&] {
    return make_error("'" + std::string(text) + "' is not a duration such as 00:05:00, 2.00:00:00 or 300 (seconds)");
  };
  int64_t total = 0;
  if (t.find(':') == std::string::npos) {
    auto n = number(t);
    if (!n) return bad();
    total = *n;
  } else {
    // [d.]hh:mm:ss
    std::string_view rest = t;
    int64_t days = 0;
    bool has_days = false;
    if (size_t dot = rest.find('.'); dot != std::string_view::npos) {
      auto d = number(rest.substr(0, dot));
      if (!d) return bad();
      days = *d;
      has_days = true;
      rest = rest.substr(dot + 1);
    }
    size_t c1 = rest.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
    if (c2 == std::string_view::npos || rest.find(':', c2 + 1) != std::string_view::npos) return bad();
    auto h = number(rest.substr(0, c1));
    auto m = number(rest.substr(c1 + 1, c2 - c1 - 1));
    auto s = number(rest.substr(c2 + 1));
    if (!h || !m || !s || *m > 59 || *s > 59 || (has_days && *h > 23)) return bad();
    if (days > kMaxDurationSeconds / 86400 || *h > kMaxDurationSeconds / 3600) return bad();
    total = ((days * 24 + *h) * 60 + *m) * 60 + *s;
  }
  if (total > kMaxDurationSeconds) return bad();
  return seconds(total);
}

std::string format_duration(std::chrono::seconds s) {
  int64_t v = s.count();
  std::string sign;
  if (v < 0) {
    sign = "-";
    v = -v;
  }
  int64_t days = v / 86400;
  int64_t h = v / 3600 % 24, m = v / 60 % 60, sec = v % 60;
  char buf[64];
  if (days > 0) {
    std::snprintf(buf, sizeof buf, "%lld.%02lld:%02lld:%02lld", static_cast<long long>(days),
                  static_cast<long long>(h), static_cast<long long>(m), static_cast<long long>(sec));
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(sec));
  }
  return sign + buf;
}

void to_json(nlohmann::ordered_json& j, const TransportSettings& s) {
  j = nlohmann::ordered_json{
      {"TransientFailureRetryCount", s.transient_failure_retry_count},
      {"TransientFailureRetryInterval", format_duration(s.transient_failure_retry_interval)},
      {"OutboundConnectionFailureRetryInterval", format_duration(s.outbound_connection_failure_retry_interval)},
      {"MessageRetryInterval", format_duration(s.message_retry_interval)},
      {"MessageExpirationTimeout", format_duration(s.message_expiration_timeout)},
      {"DelayNotificationTimeout", format_duration(s.delay_notification_timeout)},
      {"MaxOutboundConnections", s.max_outbound_connections},
      {"MaxPerDomainOutboundConnections", s.max_per_domain_outbound_connections},
      {"ExternalDNSServers", s.external_dns_servers},
      {"ExternalPostmasterAddress", s.external_postmaster_address},
      {"MessageTrackingLogMaxAge", format_duration(s.message_tracking_log_max_age)},
      {"MessageTrackingLogMaxDirectorySize", s.message_tracking_log_max_directory_size},
      {"MessageTrackingLogMaxFileSize", s.message_tracking_log_max_file_size},
      {"MessageTrackingLogEnabled", s.message_tracking_log_enabled},
      {"PoisonThreshold", s.poison_threshold},
      {"EventLogMaxAge", format_duration(s.event_log_max_age)},
      {"EventLogMaxCount", s.event_log_max_count},
      {"MetricsListen", s.metrics_listen},
  };
}

void from_json(const nlohmann::ordered_json& j, TransportSettings& s) {
  read(j, "TransientFailureRetryCount", s.transient_failure_retry_count);
  read_duration(j, "TransientFailureRetryInterval", s.transient_failure_retry_interval);
  read_duration(j, "OutboundConnectionFailureRetryInterval", s.outbound_connection_failure_retry_interval);
  read_duration(j, "MessageRetryInterval", s.message_retry_interval);
  read_duration(j, "MessageExpirationTimeout", s.message_expiration_timeout);
  read_duration(j, "DelayNotificationTimeout", s.delay_notification_timeout);
  read(j, "MaxOutboundConnections", s.max_outbound_connections);
  read(j, "MaxPerDomainOutboundConnections", s.max_per_domain_outbound_connections);
  read(j, "ExternalDNSServers", s.external_dns_servers);
  read(j, "ExternalPostmasterAddress", s.external_postmaster_address);
  read_duration(j, "MessageTrackingLogMaxAge", s.message_tracking_log_max_age);
  read(j, "MessageTrackingLogMaxDirectorySize", s.message_tracking_log_max_directory_size);
  read(j, "MessageTrackingLogMaxFileSize", s.message_tracking_log_max_file_size);
  read(j, "MessageTrackingLogEnabled", s.message_tracking_log_enabled);
  read(j, "PoisonThreshold", s.poison_threshold);
  read_duration(j, "EventLogMaxAge", s.event_log_max_age);
  read(j, "EventLogMaxCount", s.event_log_max_count);
  read(j, "MetricsListen", s.metrics_listen);
}

Result<void> validate(const TransportSettings& s) {
  if (s.transient_failure_retry_count > kMaxTransientFailureRetryCount) {
    return make_error("TransientFailureRetryCount: must be 0-15 (0 = no quick retries)");
  }
  if (auto r = check_interval("TransientFailureRetryInterval", s.transient_failure_retry_interval,
                              kMaxTransientFailureRetryInterval); !r) return r;
  if (auto r = check_interval("OutboundConnectionFailureRetryInterval", s.outbound_connection_failure_retry_interval,
                              kMaxOutboundConnectionFailureRetryInterval); !r) return r;
  if (auto r = check_interval("MessageRetryInterval", s.message_retry_interval, kMaxMessageRetryInterval); !r) return r;
  if (auto r = check_interval("MessageExpirationTimeout", s.message_expiration_timeout,
                              kMaxMessageExpirationTimeout); !r) return r;
  if (auto r = check_interval("DelayNotificationTimeout", s.delay_notification_timeout,
                              kMaxDelayNotificationTimeout); !r) return r;
  if (s.max_outbound_connections == 0) return make_error("MaxOutboundConnections: must be greater than zero");
  if (s.max_per_domain_outbound_connections == 0) {
    return make_error("MaxPerDomainOutboundConnections: must be greater than zero");
  }
  if (s.max_per_domain_outbound_connections > s.max_outbound_connections) {
    return make_error("MaxPerDomainOutboundConnections: " + std::to_string(s.max_per_domain_outbound_connections) +
                      " is above MaxOutboundConnections (" + std::to_string(s.max_outbound_connections) + ")");
  }
  for (const auto& d : s.external_dns_servers) {
    if (auto r = check_dns_server(d); !r) return r;
  }
  if (!s.external_postmaster_address.empty()) {
    if (auto r = check_postmaster(s.external_postmaster_address); !r) return r;
  }
  if (s.message_tracking_log_max_age.count() <= 0) {
    return make_error("MessageTrackingLogMaxAge: must be greater than 00:00:00");
  }
  if (s.message_tracking_log_max_directory_size == 0) {
    return make_error("MessageTrackingLogMaxDirectorySize: must be greater than zero");
  }
  if (s.message_tracking_log_max_file_size == 0) {
    return make_error("MessageTrackingLogMaxFileSize: must be greater than zero");
  }
  if (s.message_tracking_log_max_file_size > s.message_tracking_log_max_directory_size) {
    return make_error("MessageTrackingLogMaxFileSize: cannot exceed MessageTrackingLogMaxDirectorySize");
  }
  if (s.poison_threshold < 1 || s.poison_threshold > kMaxPoisonThreshold) {
    return make_error("PoisonThreshold: must be 1-10");
  }
  if (auto r = check_interval("EventLogMaxAge", s.event_log_max_age, kMaxEventLogMaxAge); !r) return r;
  if (s.event_log_max_count < 1 || s.event_log_max_count > kMaxEventLogMaxCount) {
    return make_error("EventLogMaxCount: must be 1-10000000");
  }
  if (!s.metrics_listen.empty()) {
    if (auto r = check_metrics_listen(s.metrics_listen); !r) return r;
  }
  return {};
}

std::chrono::seconds hop_retry_delay(const TransportSettings& s, uint32_t consecutive_failures, double jitter) {
  // Failures 1..N are followed by the N quick retries; failure N+1 and later by the long wait.
  uint32_t n = std::max<uint32_t>(consecutive_failures, 1);
  seconds base = n <= s.transient_failure_retry_count ? s.transient_failure_retry_interval
                                                     : s.outbound_connection_failure_retry_interval;
  return with_jitter(base, jitter);
}

std::chrono::seconds message_retry_delay(const TransportSettings& s, double jitter) {
  return with_jitter(s.message_retry_interval, jitter);
}

bool expired(const TransportSettings& s, int64_t arrival, int64_t now) {
  return now - arrival >= s.message_expiration_timeout.count();
}

bool delay_notice_due(const TransportSettings& s, int64_t arrival, int64_t now, bool already_sent) {
  return !already_sent && now - arrival >= s.delay_notification_timeout.count();
}

}  // namespace starling::core
