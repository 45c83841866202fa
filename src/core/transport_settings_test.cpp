// Transport server settings: the duration forms, the JSON names, validation (each refusal names
// the setting), and the retry, expiry and delay-notice rules.
#include "core/transport_settings.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace starling::core {
namespace {

using std::chrono::seconds;

TEST(TransportSettings, DurationsParseAndFormatLikeExchange) {
  EXPECT_EQ(*parse_duration("00:05:00"), seconds(300));
  EXPECT_EQ(*parse_duration("2.00:00:00"), seconds(172800));
  EXPECT_EQ(*parse_duration("1.02:03:04"), seconds(86400 + 7384));
  EXPECT_EQ(*parse_duration("300"), seconds(300));
  EXPECT_EQ(*parse_duration(" 04:00:00 "), seconds(14400));
  EXPECT_EQ(*parse_duration("48:00:00"), seconds(172800)) << "hours may run past a day without days";
  EXPECT_EQ(*parse_duration("0"), seconds(0)) << "zero parses; validate() refuses it where it matters";
  for (const char* bad : {"", "abc", "-5", "5m", "00:60:00", "00:00:60", "1.24:00:00", "1:2", "1:2:3:4",
                          "1.2.03:00:00", "+300", "00:05:00x", "99999999999999", ".01:00:00"}) {
    auto r = parse_duration(bad);
    EXPECT_FALSE(r) << "'" << bad << "' parsed";
    if (!r) {
      EXPECT_NE(r.error().find("not a duration"), std::string::npos) << r.error();
    }
  }
  EXPECT_EQ(format_duration(seconds(300)), "00:05:00");
  EXPECT_EQ(format_duration(seconds(172800)), "2.00:00:00");
  EXPECT_EQ(format_duration(seconds(14400)), "04:00:00");
  EXPECT_EQ(format_duration(seconds(30 * 86400 + 3661)), "30.01:01:01");
  EXPECT_EQ(format_duration(seconds(0)), "00:00:00");
  for (int64_t v : {0ll, 1ll, 59ll, 3599ll, 86399ll, 86400ll, 7776000ll}) {
    EXPECT_EQ(*parse_duration(format_duration(seconds(v))), seconds(v)) << v;
  }
}

TEST(TransportSettings, DefaultsAreExchangeHubDefaultsAndValid) {
  TransportSettings s;
  EXPECT_TRUE(validate(s));
  nlohmann::ordered_json j = s;
  EXPECT_EQ(j["TransientFailureRetryCount"], 6);
  EXPECT_EQ(j["TransientFailureRetryInterval"], "00:05:00");
  EXPECT_EQ(j["OutboundConnectionFailureRetryInterval"], "00:10:00");
  EXPECT_EQ(j["MessageRetryInterval"], "00:05:00");
  EXPECT_EQ(j["MessageExpirationTimeout"], "2.00:00:00");
  EXPECT_EQ(j["DelayNotificationTimeout"], "04:00:00");
  EXPECT_EQ(j["MaxOutboundConnections"], 1000);
  EXPECT_EQ(j["MaxPerDomainOutboundConnections"], 20);
  EXPECT_TRUE(j["ExternalDNSServers"].is_array());
  EXPECT_EQ(j["ExternalPostmasterAddress"], "");
  EXPECT_EQ(j["MessageTrackingLogMaxAge"], "30.00:00:00");
  EXPECT_EQ(j["MessageTrackingLogMaxDirectorySize"], 250ull * 1024 * 1024);
  EXPECT_EQ(j["MessageTrackingLogMaxFileSize"], 10ull * 1024 * 1024);
  EXPECT_EQ(j["PoisonThreshold"], 2);
  EXPECT_EQ(j["EventLogMaxAge"], "30.00:00:00");
  EXPECT_EQ(j["EventLogMaxCount"], 100000);
  EXPECT_EQ(j["MetricsListen"], "") << "metrics are off until an address is set";
  EXPECT_EQ(j.size(), 18u);
}

TEST(TransportSettings, JsonRoundTripsAndReadsOnlyWhatIsPresent) {
  TransportSettings s;
  s.transient_failure_retry_count = 3;
  s.message_expiration_timeout = seconds(3600);
  s.external_dns_servers = {"127.0.0.1:5353", "[::1]:53"};
  s.external_postmaster_address = "postmaster@contoso.test";
  s.poison_threshold = 4;
  nlohmann::ordered_json j = s;
  auto back = j.get<TransportSettings>();
  EXPECT_EQ(back.transient_failure_retry_count, 3u);
  EXPECT_EQ(back.message_expiration_timeout, seconds(3600));
  EXPECT_EQ(back.external_dns_servers, s.external_dns_servers);
  EXPECT_EQ(back.external_postmaster_address, "postmaster@contoso.test");
  EXPECT_EQ(back.poison_threshold, 4u);

  TransportSettings partial;
  from_json(nlohmann::ordered_json{{"MessageRetryInterval", "00:01:00"}, {"DelayNotificationTimeout", 60}}, partial);
  EXPECT_EQ(partial.message_retry_interval, seconds(60));
  EXPECT_EQ(partial.delay_notification_timeout, seconds(60)) << "seconds as a number are read too";
  EXPECT_EQ(partial.transient_failure_retry_count, 6u) << "absent keys keep their value";
  EXPECT_THROW(from_json(nlohmann::ordered_json{{"MessageRetryInterval", "soon"}}, partial), std::invalid_argument);
}

TEST(TransportSettings, ValidationRefusesWithTheSettingsName) {
  struct Bad {
    void (*change)(TransportSettings&);
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {[](TransportSettings& s) { s.transient_failure_retry_count = 16; }, "TransientFailureRetryCount"},
           {[](TransportSettings& s) { s.transient_failure_retry_interval = seconds(0); }, "TransientFailureRetryInterval"},
           {[](TransportSettings& s) { s.transient_failure_retry_interval = seconds(12 * 3600 + 1); }, "maximum 12:00:00"},
           {[](TransportSettings& s) { s.outbound_connection_failure_retry_interval = seconds(0); },
            "OutboundConnectionFailureRetryInterval"},
           {[](TransportSettings& s) { s.message_retry_interval = seconds(-1); }, "MessageRetryInterval"},
           {[](TransportSettings& s) { s.message_expiration_timeout = seconds(0); }, "MessageExpirationTimeout"},
           {[](TransportSettings& s) { s.message_expiration_timeout = seconds(91 * 86400); }, "maximum 90.00:00:00"},
           {[](TransportSettings& s) { s.delay_notification_timeout = seconds(0); }, "DelayNotificationTimeout"},
           {[](TransportSettings& s) { s.max_outbound_connections = 0; }, "MaxOutboundConnections"},
           {[](TransportSettings& s) { s.max_per_domain_outbound_connections = 0; }, "MaxPerDomainOutboundConnections"},
           {[](TransportSettings& s) { s.max_per_domain_outbound_connections = 1001; }, "above MaxOutboundConnections"},
           {[](TransportSettings& s) { s.external_dns_servers = {"dns.example"}; }, "ExternalDNSServers"},
           {[](TransportSettings& s) { s.external_dns_servers = {"127.0.0.1:0"}; }, "port outside 1-65535"},
           {[](TransportSettings& s) { s.external_dns_servers = {"127.0.0.1:65536"}; }, "port outside"},
           {[](TransportSettings& s) { s.external_dns_servers = {"[127.0.0.1]:53"}; }, "IPv4 address in [ ]"},
           {[](TransportSettings& s) { s.external_dns_servers = {"[::1"}; }, "unbalanced"},
           {[](TransportSettings& s) { s.external_dns_servers = {"[::1]x"}; }, "after ]"},
           {[](TransportSettings& s) { s.external_dns_servers = {"127.0.0.1:"}; }, "empty port"},
           {[](TransportSettings& s) { s.external_dns_servers = {"1.2.3.4.5"}; }, "not an IP address"},
           {[](TransportSettings& s) { s.external_postmaster_address = "postmaster"; }, "ExternalPostmasterAddress"},
           {[](TransportSettings& s) { s.external_postmaster_address = "@contoso.test"; }, "ExternalPostmasterAddress"},
           {[](TransportSettings& s) { s.external_postmaster_address = "a b@contoso.test"; }, "ExternalPostmasterAddress"},
           {[](TransportSettings& s) { s.external_postmaster_address = "pm@bad_domain"; }, "ExternalPostmasterAddress"},
           {[](TransportSettings& s) { s.external_postmaster_address = "<pm@contoso.test>"; }, "ExternalPostmasterAddress"},
           {[](TransportSettings& s) { s.message_tracking_log_max_age = seconds(0); }, "MessageTrackingLogMaxAge"},
           {[](TransportSettings& s) { s.message_tracking_log_max_directory_size = 0; }, "MessageTrackingLogMaxDirectorySize"},
           {[](TransportSettings& s) { s.message_tracking_log_max_file_size = 0; }, "MessageTrackingLogMaxFileSize"},
           {[](TransportSettings& s) { s.message_tracking_log_max_file_size = 300ull << 20; }, "cannot exceed"},
           {[](TransportSettings& s) { s.poison_threshold = 0; }, "PoisonThreshold"},
           {[](TransportSettings& s) { s.poison_threshold = 11; }, "PoisonThreshold"},
           {[](TransportSettings& s) { s.event_log_max_age = seconds(0); }, "EventLogMaxAge"},
           {[](TransportSettings& s) { s.event_log_max_age = seconds(3651ll * 86400); }, "maximum 3650.00:00:00"},
           {[](TransportSettings& s) { s.event_log_max_count = 0; }, "EventLogMaxCount"},
           {[](TransportSettings& s) { s.event_log_max_count = 10'000'001; }, "EventLogMaxCount"},
       }) {
    TransportSettings s;
    b.change(s);
    auto r = validate(s);
    ASSERT_FALSE(r) << b.says;
    EXPECT_NE(r.error().find(b.says), std::string::npos) << r.error();
  }
}

TEST(TransportSettings, ValidationAcceptsEveryDnsServerForm) {
  TransportSettings s;
  s.external_dns_servers = {"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "[2001:db8::1]", "2001:db8::53", "::1"};
  s.external_postmaster_address = "postmaster@mail.contoso.test";
  s.transient_failure_retry_count = 0;
  s.max_per_domain_outbound_connections = s.max_outbound_connections;
  s.message_expiration_timeout = seconds(1);
  auto r = validate(s);
  EXPECT_TRUE(r) << r.error();
}

TEST(TransportSettings, MetricsListenIsAnExplicitAddressAndPort) {
  TransportSettings s;
  for (const char* good : {"127.0.0.1:9325", "0.0.0.0:9325", "[::1]:9325", "[::]:1", "10.0.0.1:65535"}) {
    s.metrics_listen = good;
    EXPECT_TRUE(validate(s)) << good;
  }
  for (const char* bad : {"9325", ":9325", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "::1:9325", "[127.0.0.1]:9325", "[]:9325", "localhost:9325", "[::1]9325",
                          "127.0.0.1:93x5", " 127.0.0.1:9325", "[::1:9325"}) {
    s.metrics_listen = bad;
    auto r = validate(s);
    EXPECT_FALSE(r) << "'" << bad << "' accepted";
    if (!r) {
      EXPECT_EQ(r.error().rfind("MetricsListen: ", 0), 0u) << r.error();
    }
  }
  s.metrics_listen = "[::1]:9325";
  nlohmann::ordered_json j = s;
  TransportSettings back;
  from_json(j, back);
  EXPECT_EQ(back.metrics_listen, "[::1]:9325");
}

TEST(TransportSettings, HopRetriesAreQuickThenSlow) {
  TransportSettings s;  // 6 quick retries every 5 minutes, then every 10 minutes
  EXPECT_EQ(hop_retry_delay(s, 0, 0), seconds(300)) << "0 is taken as the first failure";
  for (uint32_t n = 1; n <= 6; ++n) EXPECT_EQ(hop_retry_delay(s, n, 0), seconds(300)) << n;
  EXPECT_EQ(hop_retry_delay(s, 7, 0), seconds(600));
  EXPECT_EQ(hop_retry_delay(s, 1000, 0), seconds(600));
  s.transient_failure_retry_count = 0;
  EXPECT_EQ(hop_retry_delay(s, 1, 0), seconds(600)) << "no quick retries";
}

TEST(TransportSettings, JitterAddsAtMostTenPercent) {
  TransportSettings s;
  EXPECT_EQ(hop_retry_delay(s, 1, 0.5), seconds(315));
  EXPECT_LT(hop_retry_delay(s, 1, 0.9999), seconds(330));
  EXPECT_GE(hop_retry_delay(s, 1, 0.9999), seconds(329));
  EXPECT_EQ(hop_retry_delay(s, 1, 5.0), seconds(329)) << "out-of-range jitter is clamped below 1";
  EXPECT_EQ(hop_retry_delay(s, 1, -1.0), seconds(300));
  EXPECT_EQ(message_retry_delay(s, 0), seconds(300));
  s.message_retry_interval = seconds(60);
  EXPECT_EQ(message_retry_delay(s, 0.5), seconds(63));
}

TEST(TransportSettings, ExpiryAndDelayNoticeAtTheirTimeouts) {
  TransportSettings s;  // expires after 2 days, delay notice after 4 hours
  const int64_t t0 = 1'800'000'000;
  EXPECT_FALSE(expired(s, t0, t0));
  EXPECT_FALSE(expired(s, t0, t0 + 172799));
  EXPECT_TRUE(expired(s, t0, t0 + 172800));
  EXPECT_FALSE(delay_notice_due(s, t0, t0 + 14399, false));
  EXPECT_TRUE(delay_notice_due(s, t0, t0 + 14400, false));
  EXPECT_FALSE(delay_notice_due(s, t0, t0 + 14400, true)) << "only one delay notice";
}

}  // namespace
}  // namespace starling::core
