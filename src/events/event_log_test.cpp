#include "events/event_log.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace starling::events {
namespace {

TEST(Events, RenderFillsNamedFields) {
  EXPECT_EQ(render("{A} and {B}, {C}", {{"A", "x"}, {"B", "y"}}), "x and y, {C}");
}

TEST(Events, CatalogHasTheModelsEvents) {
  for (int id : {12002, 12014, 12016, 12018}) EXPECT_NE(find_event(id), nullptr) << id;
  EXPECT_EQ(find_event(12014)->name, "StartTlsCertificateNotFound");
  EXPECT_EQ(find_event(12014)->level, Level::kWarning);
}

TEST(Events, RepeatsAreSuppressedUntilTheConfigurationChanges) {
  char tmpl[] = "/tmp/starling-events-XXXXXX";
  std::filesystem::path dir = mkdtemp(tmpl);
  auto store = store::Store::create(dir / "s.db");
  ASSERT_TRUE(store);
  EventLog log(store->get());
  auto now = std::chrono::system_clock::now();
  log.clock = [&] { return now; };
  Fields f{{"Connector", "Default mx"}, {"Fqdn", "mail.contoso.test"}};
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 1));
  EXPECT_FALSE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 1));
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Other", f, 1)) << "another object";
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 2)) << "config changed";
  now += std::chrono::hours(2);
  EXPECT_TRUE(log.log(kStartTlsCertificateNotFound, "Default mx", f, 2)) << "interval passed";
  auto stored = (*store)->events({.event_id = kStartTlsCertificateNotFound});
  ASSERT_EQ(stored->size(), 4u);
  EXPECT_NE((*stored)[0].data_json.find("\"Fqdn\":\"mail.contoso.test\""), std::string::npos);
  std::filesystem::remove_all(dir);
}

class Counted : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/starling-events-XXXXXX";
    dir_ = mkdtemp(tmpl);
    store_ = std::move(*store::Store::create(dir_ / "s.db"));
    log_ = std::make_unique<EventLog>(store_.get());
    log_->clock = [this] { return now_; };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<store::EventRecord> stored(int id) { return *store_->events({.event_id = id}); }
  void refuse(const std::string& user, int64_t n = 1) {
    log_->count(kManagementAccessDenied, user, {{"User", user}, {"Command", "get-event"}}, std::chrono::minutes(1), n);
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EventLog> log_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

TEST_F(Counted, OneRecordAMinutePerObjectWithTheCountSince) {
  for (int i = 0; i < 3000; ++i) refuse("mallory");
  refuse("alice");
  auto first = stored(kManagementAccessDenied);
  ASSERT_EQ(first.size(), 2u) << "the first of each caller at once, the rest counted";
  EXPECT_NE(first[0].data_json.find("\"Count\":\"1\""), std::string::npos) << first[0].data_json;
  log_->flush_counts();
  EXPECT_EQ(stored(kManagementAccessDenied).size(), 2u) << "not before the minute is over";
  now_ += std::chrono::seconds(61);
  log_->flush_counts();
  auto after = stored(kManagementAccessDenied);
  ASSERT_EQ(after.size(), 3u) << "alice has nothing owed";
  EXPECT_NE(after[2].data_json.find("\"Count\":\"2999\""), std::string::npos) << after[2].data_json;
  EXPECT_NE(after[2].message.find("2999 refusal(s) of mallory"), std::string::npos) << after[2].message;
  now_ += std::chrono::seconds(61);
  log_->flush_counts();
  refuse("mallory", 5);
  EXPECT_EQ(stored(kManagementAccessDenied).size(), 4u) << "quiet for a minute: recorded at once again";
}

TEST_F(Counted, InsertsPruneToTheTransportServersLimits) {
  core::TransportSettings t;
  t.event_log_max_count = 10;
  ASSERT_TRUE(store_->set_transport_settings(t));
  for (int i = 0; i < 50; ++i) log_->record(kManagementChange, "x", {{"User", "root"}});
  EXPECT_EQ(*store_->event_count(), 10);
  auto kept = stored(kManagementChange);
  EXPECT_EQ(kept.back().record, 50) << "the newest are kept";
  t.event_log_max_age = std::chrono::seconds(60);
  ASSERT_TRUE(store_->set_transport_settings(t));
  now_ += std::chrono::seconds(120);
  log_->prune();
  EXPECT_EQ(*store_->event_count(), 0) << "older than EventLogMaxAge";
}

}  // namespace
}  // namespace starling::events

namespace starling::events {
namespace {

TEST(Events, EveryEventHasADocumentationPage) {
  for (const auto& e : catalog()) {
    auto page = std::filesystem::path(STARLING_DOCS_DIR) / "events" / (std::to_string(e.id) + ".md");
    EXPECT_TRUE(std::filesystem::exists(page)) << "no page for event " << e.id << ": " << page;
  }
}

}  // namespace
}  // namespace starling::events
