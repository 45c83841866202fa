// The tracking log's format (every field, bounded, one line whatever the text holds) and the
// search behind get-message-tracking-log (each filter, result size, time window, bad lines).
#include "logs/tracking_log.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/temp_dir.hpp"

namespace starling::logs {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'796'083'200'000'000;  // 2026-12-01T00:00:00Z

TrackingEvent event(std::string id, int64_t at, std::string sender, std::vector<std::string> to) {
  TrackingEvent e;
  e.timestamp_us = at;
  e.event_id = std::move(id);
  e.source = "SMTP";
  e.sender = std::move(sender);
  e.recipients = std::move(to);
  e.internal_message_id = "q" + std::to_string(at);
  e.message_id = "<m" + std::to_string(at) + "@example.org>";
  return e;
}

TEST(TrackingFormat, WritesEveryFieldOfExchangeInOrderAndReadsThemBack) {
  TrackingEvent e = event("RECEIVE", kT0 + 123456, "a@example.org", {"b@example.net", "c@example.net"});
  e.client_ip = "192.0.2.1";
  e.client_hostname = "client.example.org";
  e.server_ip = "192.0.2.2";
  e.server_hostname = "mx.example.net";
  e.connector_id = "Default mx";
  e.recipient_status = {"250 2.0.0 ok", "250 2.0.0 ok"};
  e.total_bytes = 4242;
  e.reference = "<r@x>";
  e.message_subject = "Hello";
  e.return_path = "a@example.org";
  e.message_info = "TLSv1.3 TLS_AES_256_GCM_SHA384";
  std::string line = format_tracking_entry(e);
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "Timestamp", "ClientIp", "ClientHostname", "ServerIp", "ServerHostname",
                      "ConnectorId", "Source", "EventId", "InternalMessageId", "MessageId",
                      "Recipients", "RecipientStatus", "TotalBytes", "RecipientCount", "Reference",
                      "MessageSubject", "Sender", "ReturnPath", "MessageInfo"}));
  EXPECT_EQ(j["Timestamp"], "2026-12-01T00:00:00.123456Z");
  EXPECT_EQ(j["RecipientCount"], 2);
  auto back = parse_tracking_entry(line.substr(0, line.size() - 1));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->timestamp_us, e.timestamp_us);
  EXPECT_EQ(back->recipients, e.recipients);
  EXPECT_EQ(back->recipient_status, e.recipient_status);
  EXPECT_EQ(back->total_bytes, 4242u);
  EXPECT_EQ(back->message_info, e.message_info);
  EXPECT_EQ(back->connector_id, "Default mx");
  EXPECT_EQ(back->reference, "<r@x>");
}

TEST(TrackingFormat, HostileTextStaysOnOneLineBoundedAndValidUtf8) {
  TrackingEvent e = event("RECEIVE", kT0, "a@x", {"b@y"});
  e.message_subject = "line\r\nbreak \xFF\xFE " + std::string(5000, 's');
  e.client_hostname = "\x1b[2J\"quoted\"";
  std::string line = format_tracking_entry(e);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  nlohmann::json j = nlohmann::json::parse(line);  // throws on invalid UTF-8
  EXPECT_LE(j["MessageSubject"].get<std::string>().size(), kMaxFieldOctets + 6);
  EXPECT_EQ(j["ClientHostname"], "\x1b[2J\"quoted\"");
}

// The line as the JSON library wrote it before the entry was written directly: every field
// bounded, in Exchange's order, dumped with invalid UTF-8 replaced.
std::string library_line(const TrackingEvent& e) {
  using Json = nlohmann::ordered_json;
  auto cut = [](const std::string& s) {
    if (s.size() <= kMaxFieldOctets) return s;
    size_t n = kMaxFieldOctets;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
  };
  auto list = [&](const std::vector<std::string>& all) {
    Json out = Json::array();
    for (const std::string& s : all) out.push_back(cut(s));
    return out;
  };
  Json j;
  j["Timestamp"] = format_timestamp(e.timestamp_us);
  for (auto [key, value] : {std::pair{"ClientIp", &e.client_ip}, {"ClientHostname", &e.client_hostname},
                            {"ServerIp", &e.server_ip}, {"ServerHostname", &e.server_hostname},
                            {"ConnectorId", &e.connector_id}, {"Source", &e.source},
                            {"EventId", &e.event_id}, {"InternalMessageId", &e.internal_message_id},
                            {"MessageId", &e.message_id}}) {
    j[key] = cut(*value);
  }
  j["Recipients"] = list(e.recipients);
  j["RecipientStatus"] = list(e.recipient_status);
  j["TotalBytes"] = e.total_bytes;
  j["RecipientCount"] = e.recipients.size();
  for (auto [key, value] : {std::pair{"Reference", &e.reference}, {"MessageSubject", &e.message_subject},
                            {"Sender", &e.sender}, {"ReturnPath", &e.return_path},
                            {"MessageInfo", &e.message_info}}) {
    j[key] = cut(*value);
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

TEST(TrackingFormat, WritesTheBytesTheJsonLibraryWrote) {
  const std::vector<std::string> texts{
      "", "plain text", "quote \" and backslash \\", "tab\tcr\rlf\nbs\bff\f", std::string("nul\0x", 5),
      "\x01\x1f\x7f", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\xA6", "bad \xFF\xFE end", "cut \xE2\x82",
      "\xC3", "overlong \xC0\xAF", "surrogate \xED\xA0\x80", "\xF4\x90\x80\x80 too big",
      std::string(999, 'a') + "\xC3\xA9" + "tail", std::string(1200, 'b'), std::string(998, 'c') + "\"\"\"",
      "</script>", "\u2028 separator"};
  TrackingEvent e = event("RECEIVE", kT0 + 987'654, "a@x", {});
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& t = texts[i];
    for (std::string* field : {&e.client_ip, &e.client_hostname, &e.server_ip, &e.server_hostname,
                               &e.connector_id, &e.source, &e.event_id, &e.internal_message_id,
                               &e.message_id, &e.reference, &e.message_subject, &e.sender,
                               &e.return_path, &e.message_info}) {
      *field = t + std::to_string(i % 3);
    }
    e.recipients = {t, "r@x", t + "!"};
    e.recipient_status = i % 2 ? std::vector<std::string>{} : std::vector<std::string>{t, "250"};
    e.total_bytes = i == 0 ? UINT64_MAX : i * 4099;
    e.timestamp_us = kT0 - static_cast<int64_t>(i) * 86'400'000'017;
    ASSERT_EQ(format_tracking_entry(e), library_line(e)) << "text " << i;
  }
  EXPECT_EQ(tracking_entry_json(e).dump(), nlohmann::ordered_json::parse(library_line(e)).dump());
}

TEST(TrackingFormat, ALongRecipientListBecomesSeveralEntriesOfTheSameEvent) {
  std::vector<std::string> to;
  for (int i = 0; i < 250; ++i) to.push_back("r" + std::to_string(i) + "@example.net");
  std::string text = format_tracking_entry(event("SEND", kT0, "a@x", to));
  std::vector<TrackingEvent> parts;
  for (size_t pos = 0; pos < text.size();) {
    size_t lf = text.find('\n', pos);
    auto e = parse_tracking_entry(std::string_view(text).substr(pos, lf - pos));
    ASSERT_TRUE(e);
    parts.push_back(*e);
    pos = lf + 1;
  }
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].recipients.size(), 100u);
  EXPECT_EQ(parts[2].recipients.size(), 50u);
  EXPECT_EQ(parts[2].recipients.back(), "r249@example.net");
  EXPECT_EQ(parts[1].event_id, "SEND");
}

TEST(TrackingFormat, RefusesWhatIsNotAnEntry) {
  EXPECT_FALSE(parse_tracking_entry("not json"));
  EXPECT_FALSE(parse_tracking_entry("[1,2]"));
  EXPECT_FALSE(parse_tracking_entry(R"({"EventId":"SEND"})"));
  EXPECT_FALSE(parse_tracking_entry(R"({"Timestamp":"2026-12-01T00:00:00Z"})"));
  EXPECT_FALSE(parse_tracking_entry(R"({"Timestamp":"2026-12-01 00:00:00","EventId":"SEND"})"));
  EXPECT_FALSE(parse_tracking_entry(R"({"Timestamp":"2026-12-01T00:00:00+01:00","EventId":"SEND"})"));
  auto ok = parse_tracking_entry(R"({"Timestamp":"2026-12-01T00:00:01.5Z","EventId":"SEND","Recipients":[1,"x@y"]})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->timestamp_us, kT0 + 1'500'000);
  EXPECT_EQ(ok->recipients, std::vector<std::string>{"x@y"});
}

struct TrackingSearch : ::testing::Test {
  testing::TempDir dir{"tracking-log-test"};

  // Writes the events to a file started `file_start` (within the first second of kT0).
  void write_file(int64_t file_start, const std::vector<TrackingEvent>& events) {
    fs::create_directories(dir.path);
    std::string micros = std::to_string(file_start - kT0);
    std::ofstream out(dir.path / ("MSGTRK20261201-000000-" + std::string(6 - micros.size(), '0') + micros + ".log"));
    for (const TrackingEvent& e : events) out << format_tracking_entry(e);
  }
  std::vector<std::string> ids(const TrackingQuery& q, TrackingResult* out = nullptr) {
    auto r = search_tracking_log(dir.path, q);
    EXPECT_TRUE(r) << r.error();
    std::vector<std::string> found;
    for (const TrackingEvent& e : r->events) found.push_back(e.event_id + ":" + e.internal_message_id);
    if (out) *out = *r;
    return found;
  }
  void write_sample() {
    write_file(kT0, {event("RECEIVE", kT0 + 1, "Alice@Example.org", {"bob@example.net"}),
                     event("SEND", kT0 + 2, "alice@example.org", {"bob@example.net"})});
    write_file(kT0 + 10, {event("RECEIVE", kT0 + 11, "carol@example.org", {"dan@example.net", "bob@example.net"}),
                          event("DELIVER", kT0 + 12, "carol@example.org", {"dan@example.net"})});
  }
};

TEST_F(TrackingSearch, WithoutFiltersReturnsEverythingOldestFirst) {
  write_sample();
  EXPECT_EQ(ids({}), (std::vector<std::string>{"RECEIVE:q1796083200000001", "SEND:q1796083200000002",
                                                "RECEIVE:q1796083200000011", "DELIVER:q1796083200000012"}));
}

TEST_F(TrackingSearch, NoDirectoryYetIsAnEmptyResult) {
  auto r = search_tracking_log(dir.path / "missing", {});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->events.empty());
}

TEST_F(TrackingSearch, FiltersBySenderCaseInsensitively) {
  write_sample();
  EXPECT_EQ(ids({.sender = "ALICE@example.org"}).size(), 2u);
  EXPECT_EQ(ids({.sender = "nobody@example.org"}).size(), 0u);
}

TEST_F(TrackingSearch, FiltersByAnyOfTheRecipients) {
  write_sample();
  EXPECT_EQ(ids({.recipients = {"dan@example.net"}}),
            (std::vector<std::string>{"RECEIVE:q1796083200000011", "DELIVER:q1796083200000012"}));
  EXPECT_EQ(ids({.recipients = {"x@y", "BOB@example.net"}}).size(), 3u);
}

TEST_F(TrackingSearch, FiltersByEventIdAndMessageIdsWithOrWithoutBrackets) {
  write_sample();
  EXPECT_EQ(ids({.event_id = "receive"}).size(), 2u);
  EXPECT_EQ(ids({.message_id = "m1796083200000012@example.org"}),
            std::vector<std::string>{"DELIVER:q1796083200000012"});
  EXPECT_EQ(ids({.message_id = "<m1796083200000002@example.org>"}),
            std::vector<std::string>{"SEND:q1796083200000002"});
  EXPECT_EQ(ids({.internal_message_id = "q1796083200000011"}),
            std::vector<std::string>{"RECEIVE:q1796083200000011"});
  EXPECT_EQ(ids({.internal_message_id = "q17960832000000"}).size(), 0u);  // exact, not a prefix
}

TEST_F(TrackingSearch, StartIsInclusiveAndEndExclusive) {
  write_sample();
  EXPECT_EQ(ids({.start_us = kT0 + 2, .end_us = kT0 + 12}),
            (std::vector<std::string>{"SEND:q1796083200000002", "RECEIVE:q1796083200000011"}));
}

TEST_F(TrackingSearch, ResultSizeReturnsTheFirstAndSaysThereIsMore) {
  write_sample();
  TrackingResult r;
  EXPECT_EQ(ids({.result_size = 3}, &r).size(), 3u);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(ids({.result_size = 4}, &r).size(), 4u);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(ids({.result_size = std::nullopt}, &r).size(), 4u);
  EXPECT_FALSE(r.capped);
}

TEST_F(TrackingSearch, SkipsLinesThatAreNotEntriesOrTooLong) {
  write_sample();
  std::ofstream out(dir.path / "MSGTRK20261201-000000-000001.log");
  std::string long_entry = format_tracking_entry(event("FAIL", kT0 + 4, "e@x", {"f@y"}));
  long_entry.insert(long_entry.find(R"("MessageSubject":")") + 18, std::string(kMaxEntryOctets, 's'));
  out << "garbage\n" << long_entry
      << format_tracking_entry(event("FAIL", kT0 + 5, "e@x", {"f@y"}))
      << R"({"Timestamp":"2026-12-01T00:00:06Z","EventId":"DEFER")";  // being written: no '\n'
  out.close();
  TrackingResult r;
  std::vector<std::string> found = ids({}, &r);
  EXPECT_EQ(found.size(), 5u);
  EXPECT_EQ(found[2], "FAIL:q1796083200000005");
  EXPECT_EQ(r.skipped_lines, 2u);
}

TEST_F(TrackingSearch, ReadsWhatTheTrackingLogWrote) {
  auto log = TrackingLog::open(dir.path, {});
  ASSERT_TRUE(log) << log.error();
  (*log)->record(event("RECEIVE", kT0, "a@x", {"b@y"}));
  (*log)->configure({.enabled = false});
  (*log)->record(event("SEND", kT0 + 1, "a@x", {"b@y"}));  // not written: disabled
  (*log)->configure({.enabled = true});
  (*log)->record(event("DELIVER", kT0 + 2, "a@x", {"b@y"}));
  ASSERT_TRUE((*log)->flush(std::chrono::seconds(5)));
  EXPECT_EQ(ids({}), (std::vector<std::string>{"RECEIVE:q1796083200000000", "DELIVER:q1796083200000002"}));
}

TEST(TrackingSettingsFromTransport, CarriesTheEnabledFlagAndTheThreeLimits) {
  core::TransportSettings t;
  t.message_tracking_log_enabled = false;
  t.message_tracking_log_max_file_size = 1;
  t.message_tracking_log_max_directory_size = 2;
  t.message_tracking_log_max_age = std::chrono::seconds(3);
  TrackingSettings s = tracking_settings(t);
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.limits.max_file_size, 1u);
  EXPECT_EQ(s.limits.max_directory_size, 2u);
  EXPECT_EQ(s.limits.max_age, std::chrono::seconds(3));
}

}  // namespace
}  // namespace starling::logs
