#include "store/store.hpp"

#include <gtest/gtest.h>

#include "testing/temp_dir.hpp"
#include <sys/stat.h>

#include <filesystem>

namespace starling::store {
namespace {

using testing::TempDir;

TEST(Store, CreateIsPrivateAndExclusive) {
  TempDir dir;
  auto file = dir.path / "starling.db";
  auto s = Store::create(file);
  ASSERT_TRUE(s) << s.error();
  struct stat st{};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto again = Store::create(file);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find("File exists"), std::string::npos) << again.error();
}

TEST(Store, RoundTripsConfigurationAndCountsGenerations) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  int64_t g0 = *st.generation();
  ASSERT_TRUE(st.set_server_settings({"mx", "mail.contoso.test"}));
  core::ReceiveConnector c;
  c.name = "Default mx";
  c.bindings = {{"127.0.0.1", 2525}, {"::", 25}};
  c.fqdn = "relay.contoso.test";
  c.max_message_size = 1234;
  ASSERT_TRUE(st.add_receive_connector(c));
  ASSERT_TRUE(st.add_accepted_domain("contoso.test"));
  EXPECT_FALSE(st.add_accepted_domain("CONTOSO.test")) << "duplicate domains differ only in case";
  EXPECT_EQ(*st.generation(), g0 + 3);

  auto reopened = Store::open(dir.path / "starling.db");
  ASSERT_TRUE(reopened);
  auto conns = (*reopened)->receive_connectors();
  ASSERT_TRUE(conns);
  ASSERT_EQ(conns->size(), 1u);
  EXPECT_EQ((*conns)[0].fqdn, "relay.contoso.test");
  EXPECT_EQ((*conns)[0].max_message_size, 1234u);
  ASSERT_EQ((*conns)[0].bindings.size(), 2u);
  EXPECT_EQ((*conns)[0].bindings[1].address, "::");
  EXPECT_EQ((*(*reopened)->server_settings()).fqdn, "mail.contoso.test");
  EXPECT_EQ(*(*reopened)->accepted_domains(), std::vector<std::string>{"contoso.test"});
}

TEST(Store, OpenMissingStoreSaysRunSetup) {
  auto s = Store::open("/nonexistent/starling.db");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("starling setup"), std::string::npos);
}

}  // namespace
}  // namespace starling::store

namespace starling::store {
namespace {

TEST(Store, TransactionIsAllOrNothing) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  int64_t g0 = *st.generation();
  auto r = st.in_transaction([&]() -> Result<void> {
    if (auto a = st.add_accepted_domain("a.test"); !a) return a;
    if (auto b = st.add_accepted_domain("b.test"); !b) return b;
    return make_error("the command failed after two writes");
  });
  ASSERT_FALSE(r);
  EXPECT_TRUE(st.accepted_domains()->empty());
  EXPECT_EQ(*st.generation(), g0);
  ASSERT_TRUE(st.in_transaction([&]() -> Result<void> {
    if (auto a = st.add_accepted_domain("a.test"); !a) return a;
    return st.add_accepted_domain("b.test");
  }));
  EXPECT_EQ(st.accepted_domains()->size(), 2u);
  EXPECT_EQ(*st.generation(), g0 + 1) << "one bump per transaction";
}

TEST(Store, EventsFilterAndNewest) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  Store& st = **s;
  for (int i = 0; i < 5; ++i) {
    EventRecord e;
    e.time = 1000 + i;
    e.event_id = i % 2 ? 12014 : 12002;
    e.level = i % 2 ? "Warning" : "Information";
    e.category = "TransportService";
    e.name = "x";
    e.message = "m" + std::to_string(i);
    e.data_json = "{}";
    ASSERT_TRUE(st.add_event(e));
  }
  EXPECT_EQ(st.events({.event_id = 12014})->size(), 2u);
  EXPECT_EQ(st.events({.level = "warning"})->size(), 2u);
  auto newest = st.events({.newest = 2});
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].message, "m3");
  EXPECT_EQ((*newest)[1].message, "m4");
  EXPECT_EQ(st.events({.since = 1003})->size(), 2u);
}

}  // namespace
}  // namespace starling::store

namespace starling::store {
namespace {

TEST(Store, TransportSettingsDefaultThenPersistAndBumpTheGeneration) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  auto defaults = st.transport_settings();
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_EQ(defaults->transient_failure_retry_count, 6u) << "absent: the defaults";
  EXPECT_EQ(defaults->message_expiration_timeout, std::chrono::seconds(172800));

  int64_t g0 = *st.generation();
  core::TransportSettings t;
  t.message_expiration_timeout = std::chrono::seconds(3600);
  t.external_dns_servers = {"127.0.0.1:5353"};
  t.max_per_domain_outbound_connections = 10;
  ASSERT_TRUE(st.set_transport_settings(t));
  EXPECT_EQ(*st.generation(), g0 + 1);
  auto stored = st.setting("transport_server");
  ASSERT_TRUE(stored && *stored);
  EXPECT_NE((*stored)->find("\"MessageExpirationTimeout\":\"01:00:00\""), std::string::npos) << **stored;

  auto reopened = Store::open(dir.path / "starling.db");
  ASSERT_TRUE(reopened);
  auto back = (*reopened)->transport_settings();
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->message_expiration_timeout, std::chrono::seconds(3600));
  EXPECT_EQ(back->external_dns_servers, std::vector<std::string>{"127.0.0.1:5353"});
  EXPECT_EQ(back->max_per_domain_outbound_connections, 10u);

  // Rolled back with its transaction like every other configuration write.
  auto r = st.in_transaction([&]() -> Result<void> {
    core::TransportSettings other;
    other.poison_threshold = 5;
    if (auto w = st.set_transport_settings(other); !w) return w;
    return make_error("refused");
  });
  EXPECT_FALSE(r);
  EXPECT_EQ(st.transport_settings()->poison_threshold, 2u);
  EXPECT_EQ(*st.generation(), g0 + 1);

  ASSERT_TRUE(st.set_setting("transport_server", "{not json"));
  EXPECT_FALSE(st.transport_settings()) << "a damaged value is an error, not silent defaults";
}

}  // namespace
}  // namespace starling::store
