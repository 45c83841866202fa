// The registry and its Prometheus text rendering: HELP and TYPE for every known metric, stable
// order, escaping, counters that only go up, gauges, countdowns, the collector, bounded label
// sets, and updates from many threads at once.
#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace starling::metrics {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow = system_clock::from_time_t(1'800'000'000);

// The sample lines of `text` (no comments), in order.
std::vector<std::string> samples(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] != '#') out.push_back(line);
    start = end + 1;
  }
  return out;
}

TEST(Metrics, EveryKnownMetricHasHelpAndTypeInDeclaredOrder) {
  Registry r;
  std::string text = r.render(kNow);
  size_t accepted = text.find("# HELP starling_receive_connections_accepted_total ");
  size_t type = text.find("# TYPE starling_receive_connections_accepted_total counter\n");
  size_t open = text.find("# TYPE starling_receive_connections_open gauge\n");
  size_t dropped = text.find("# TYPE starling_tracking_entries_dropped_total counter\n");
  ASSERT_NE(accepted, std::string::npos) << text;
  EXPECT_LT(accepted, type);
  EXPECT_LT(type, open);
  EXPECT_LT(open, dropped);
  for (std::string_view name : {kMessagesReceived, kDeliveries, kTlsHandshakes, kQueueLength,
                                kConnectorNoCertificate, kCertificateExpiry, kReportsSent}) {
    EXPECT_NE(text.find("# TYPE " + std::string(name) + " "), std::string::npos) << name;
  }
  // Only the unlabelled counter has a sample before anything happened.
  EXPECT_EQ(samples(text), std::vector<std::string>{"starling_tracking_entries_dropped_total 0"});
  EXPECT_EQ(text.back(), '\n') << "the format ends every line with a newline";
}

TEST(Metrics, CountersAddAndNeverGoDown) {
  Registry r;
  r.count(kMessagesReceived, {{"connector", "Default mx"}}, 1);
  r.count(kMessagesReceived, {{"connector", "Default mx"}}, 2);
  r.count(kMessagesReceived, {{"connector", "Default mx"}}, -5);
  r.count(kMessagesReceived, {{"connector", "Default mx"}}, std::nan(""));
  r.count(kMessagesReceived, {{"connector", "Client mx"}}, 1);
  auto s = samples(r.render(kNow));
  // Sorted by labels: "Client mx" before "Default mx", whatever the order of first use.
  ASSERT_GE(s.size(), 2u);
  EXPECT_EQ(s[0], "starling_messages_received_total{connector=\"Client mx\"} 1");
  EXPECT_EQ(s[1], "starling_messages_received_total{connector=\"Default mx\"} 3");
}

TEST(Metrics, GaugesSetMoveAndClear) {
  Registry r;
  r.add_gauge(kConnectionsOpen, {{"connector", "a"}}, 1);
  r.add_gauge(kConnectionsOpen, {{"connector", "a"}}, 1);
  r.add_gauge(kConnectionsOpen, {{"connector", "a"}}, -1);
  r.set_gauge(kConnectorNoCertificate, {{"kind", "receive"}, {"connector", "b"}}, 1);
  std::string text = r.render(kNow);
  EXPECT_NE(text.find("\nstarling_receive_connections_open{connector=\"a\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nstarling_connector_certificate_missing{kind=\"receive\",connector=\"b\"} 1\n"),
            std::string::npos)
      << text;
  r.clear_gauge(kConnectorNoCertificate);
  r.clear_gauge(kMessagesReceived);  // not a gauge: nothing happens
  text = r.render(kNow);
  EXPECT_EQ(text.find("starling_connector_certificate_missing{"), std::string::npos) << text;
  EXPECT_NE(text.find("starling_receive_connections_open{connector=\"a\"} 1"), std::string::npos) << text;
}

TEST(Metrics, ACountdownShowsTheSecondsLeftAtEachScrape) {
  Registry r;
  r.set_countdown(kCertificateExpiry, {{"kind", "receive"}, {"connector", "c"}}, kNow + seconds(3600));
  const std::string line = "starling_connector_certificate_expiry_seconds{kind=\"receive\",connector=\"c\"} ";
  EXPECT_NE(r.render(kNow).find(line + "3600\n"), std::string::npos) << r.render(kNow);
  EXPECT_NE(r.render(kNow + seconds(600)).find(line + "3000\n"), std::string::npos);
  EXPECT_NE(r.render(kNow + seconds(7200)).find(line + "-3600\n"), std::string::npos) << "expired: negative";
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz\"q"), "x\\\\y\\nz\"q") << "HELP keeps double quotes";
  Registry r;
  r.count(kMessagesReceived, {{"connector", "Weird \"name\"\\\nnext"}}, 1);
  EXPECT_NE(r.render(kNow).find("starling_messages_received_total{connector=\"Weird \\\"name\\\"\\\\\\nnext\"} 1\n"),
            std::string::npos)
      << r.render(kNow);
}

TEST(Metrics, ValuesUseTheShortestFormAndTheSpecialNames) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(HUGE_VAL), "+Inf");
  EXPECT_EQ(format_value(-HUGE_VAL), "-Inf");
}

TEST(Metrics, InvalidNamesAndTypeMismatchesAreDropped) {
  Registry r;
  r.count("bad name", {}, 1);
  r.count("starling_ok_total", {{"bad-label", "x"}}, 1);
  r.count("starling_ok_total", {{"__reserved", "x"}}, 1);
  r.count("starling_ok_total", {{"a", "1"}, {"a", "2"}}, 1);
  r.set_gauge(kMessagesReceived, {{"connector", "x"}}, 5);  // a counter, set as a gauge
  r.count(kConnectionsOpen, {{"connector", "x"}}, 1);       // a gauge, counted
  r.count("starling_extra_total", {}, 2);                    // not declared: rendered, untyped HELP
  std::string text = r.render(kNow);
  EXPECT_EQ(text.find("bad name"), std::string::npos);
  EXPECT_EQ(text.find("starling_ok_total"), std::string::npos) << text;
  EXPECT_EQ(text.find("{connector=\"x\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE starling_extra_total counter\nstarling_extra_total 2\n"), std::string::npos) << text;
}

TEST(Metrics, LabelSetsAreBoundedPerMetric) {
  Registry r;
  for (size_t i = 0; i < kMaxSeriesPerMetric + 500; ++i) {
    r.count(kDeliveries, {{"next_hop", "d" + std::to_string(i) + ".test"}, {"result", "delivered"}}, 1);
  }
  auto s = samples(r.render(kNow));
  size_t deliveries = std::count_if(s.begin(), s.end(), [](const std::string& l) {
    return l.rfind("starling_deliveries_total{", 0) == 0;
  });
  EXPECT_EQ(deliveries, kMaxSeriesPerMetric + 1) << "the limit, plus one overflow series";
  EXPECT_NE(std::find(s.begin(), s.end(), "starling_deliveries_total{next_hop=\"_other\",result=\"_other\"} 500"),
            s.end());
}

TEST(Metrics, CollectedGaugesAreAskedForAtEachScrape) {
  Registry r;
  int asked = 0;
  r.set_gauge(kQueueLength, {{"queue", "stale"}}, 9);
  r.set_collector([&asked](const GaugeSetter& set) {
    ++asked;
    set(kQueueLength, {{"queue", "Submission"}}, asked);
    set(kQueueOldestAge, {{"queue", "Submission"}}, 1.5);
  });
  std::string first = r.render(kNow);
  std::string second = r.render(kNow);
  EXPECT_EQ(asked, 2);
  EXPECT_NE(first.find("starling_queue_messages{queue=\"Submission\"} 1\n"), std::string::npos) << first;
  EXPECT_NE(second.find("starling_queue_messages{queue=\"Submission\"} 2\n"), std::string::npos) << second;
  EXPECT_NE(second.find("starling_queue_oldest_message_age_seconds{queue=\"Submission\"} 1.5\n"), std::string::npos);
  EXPECT_EQ(second.find("stale"), std::string::npos) << "collected gauges replace stored ones of that name";
}

TEST(Metrics, ACollectorMayUpdateTheRegistryItself) {
  Registry r;
  r.set_collector([&r](const GaugeSetter& set) {
    r.count(kReportsSent, {{"kind", "delay"}}, 1);  // would deadlock if called under the lock
    set(kQueueLength, {{"queue", "Poison"}}, 0);
  });
  r.render(kNow);
  // The second scrape copied the registry before its collector counted again: it shows the first.
  EXPECT_NE(r.render(kNow).find("starling_reports_sent_total{kind=\"delay\"} 1\n"), std::string::npos);
}

TEST(Metrics, ManyThreadsCountWithoutLosingAnIncrement) {
  Registry r;
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < kEach; ++i) {
        r.count(kMessagesReceived, {{"connector", "shared"}}, 1);
        r.add_gauge(kConnectionsOpen, {{"connector", "c" + std::to_string(t % 2)}}, 1);
        if (i % 1000 == 0) r.render(kNow);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string text = r.render(kNow);
  EXPECT_NE(text.find("starling_messages_received_total{connector=\"shared\"} 80000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("starling_receive_connections_open{connector=\"c0\"} 40000\n"), std::string::npos) << text;
}

TEST(Metrics, TheProcessRegistryServesTheFreeFunctions) {
  count("starling_free_function_test_total", {{"x", "1"}});
  EXPECT_NE(render().find("starling_free_function_test_total{x=\"1\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace starling::metrics
