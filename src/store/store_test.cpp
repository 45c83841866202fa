#include "store/store.hpp"

#include <SQLiteCpp/Database.h>

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

// Events m0, m1, ... at times 1000, 1001, ...; the odd ones 12014 warnings, the even 12002.
void add_events(Store& st, int n) {
  for (int i = 0; i < n; ++i) {
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
}

TEST(Store, EventsFilterAndNewest) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  Store& st = **s;
  add_events(st, 5);
  EXPECT_EQ(st.events({.event_id = 12014})->size(), 2u);
  EXPECT_EQ(st.events({.level = "warning"})->size(), 2u);
  auto newest = st.events({.newest = 2});
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].message, "m4") << "newest first";
  EXPECT_EQ((*newest)[1].message, "m3");
  auto all = st.events({});
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().message, "m0") << "the whole log reads oldest first";
  EXPECT_EQ(st.events({.since = 1003})->size(), 2u);
  auto after = st.events({.after_record = (*all)[2].record});
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ(after->front().message, "m3");
}

TEST(Store, EventsArePrunedByAgeAndByCount) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  Store& st = **s;
  add_events(st, 20);
  EXPECT_EQ(*st.prune_events({.max_age_seconds = 100, .max_count = 100}, 1050), 0) << "nothing old or over";
  EXPECT_EQ(*st.prune_events({.max_age_seconds = 15, .max_count = 100}, 1020), 5) << "time 1000-1004 are older";
  EXPECT_EQ(*st.event_count(), 15);
  EXPECT_EQ(*st.prune_events({.max_age_seconds = 1000, .max_count = 4}, 1020), 11);
  auto kept = st.events({});
  ASSERT_EQ(kept->size(), 4u);
  EXPECT_EQ(kept->front().message, "m16") << "the newest are kept";
  EXPECT_EQ(kept->back().message, "m19");
}

TEST(Store, DataVersionChangesWithAnotherConnectionsCommit) {
  TempDir dir;
  auto mine = Store::create(dir.path / "starling.db");
  auto other = Store::open(dir.path / "starling.db");
  ASSERT_TRUE(mine && other);
  int64_t v = *(*mine)->data_version();
  ASSERT_TRUE((*mine)->add_accepted_domain("own.test"));
  EXPECT_EQ(*(*mine)->data_version(), v) << "its own commits do not count";
  ASSERT_TRUE((*other)->add_accepted_domain("other.test"));
  EXPECT_NE(*(*mine)->data_version(), v);
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

namespace starling::store {
namespace {

TEST(Store, AcceptedDomainTypesDefaultAndTargets) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  ASSERT_TRUE(st.add_accepted_domain("b.test"));
  ASSERT_TRUE(st.add_accepted_domain(core::AcceptedDomain{"A.test", core::DomainType::kInternalRelay, false,
                                                          "lmtp:[::1]:24"}));
  auto all = st.accepted_domain_records();
  ASSERT_TRUE(all) << all.error();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].domain, "a.test");
  EXPECT_EQ((*all)[0].type, core::DomainType::kInternalRelay);
  EXPECT_EQ((*all)[0].delivery_target, "lmtp:[::1]:24");
  EXPECT_EQ((*all)[1].type, core::DomainType::kAuthoritative);
  EXPECT_EQ((*all)[1].delivery_target, "Maildir");
  EXPECT_FALSE((*all)[0].is_default || (*all)[1].is_default);

  ASSERT_TRUE(st.set_default_accepted_domain("B.TEST"));
  ASSERT_TRUE(st.set_default_accepted_domain("a.test"));
  all = st.accepted_domain_records();
  EXPECT_TRUE((*all)[0].is_default);
  EXPECT_FALSE((*all)[1].is_default) << "one default at a time";
  int64_t g = *st.generation();
  EXPECT_FALSE(st.set_default_accepted_domain("none.test"));
  EXPECT_EQ(*st.generation(), g);
  EXPECT_TRUE(st.accepted_domain_records()->at(0).is_default) << "a failed write changes nothing";

  core::AcceptedDomain b = (*all)[1];
  b.type = core::DomainType::kExternalRelay;
  ASSERT_TRUE(st.update_accepted_domain(b));
  EXPECT_EQ(st.accepted_domain_records()->at(1).type, core::DomainType::kExternalRelay);
}

TEST(Store, EveryAddressBelongsToOneRecipient) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  ASSERT_TRUE(st.add_accepted_domain("contoso.test"));
  core::Mailbox alice{"Alice", "Alice@contoso.test", {"al@contoso.test"}, "$argon2id$x", true, ""};
  ASSERT_TRUE(st.add_mailbox(alice));
  auto dup = st.add_mailbox({"Other", "other@contoso.test", {"AL@Contoso.test"}, "", true, ""});
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().find("'al@contoso.test' belongs to mailbox 'Alice'"), std::string::npos) << dup.error();
  auto group_dup = st.add_distribution_group({"Team", "ALICE@contoso.test", {}, {}});
  ASSERT_FALSE(group_dup);
  EXPECT_NE(group_dup.error().find("belongs to mailbox 'Alice'"), std::string::npos) << group_dup.error();
  EXPECT_FALSE(st.add_distribution_group({"alice", "team@contoso.test", {}, {}})) << "names are shared too";
  ASSERT_TRUE(st.add_distribution_group({"Team", "team@contoso.test", {}, {"al@contoso.test", "x@outside.test"}}));
  EXPECT_EQ(st.mailboxes()->size(), 1u);

  // Renaming and moving addresses between recipients.
  core::Mailbox renamed = alice;
  renamed.name = "Alice Smith";
  renamed.email_addresses = {"alice.smith@contoso.test"};
  ASSERT_TRUE(st.replace_mailbox("alice", renamed));
  ASSERT_TRUE(st.add_mailbox({"Al", "al@contoso.test", {}, "", true, ""})) << "the released alias is free again";
  auto boxes = st.mailboxes();
  ASSERT_EQ(boxes->size(), 2u);
  EXPECT_EQ((*boxes)[1].name, "Alice Smith");
  EXPECT_EQ((*boxes)[1].primary_address, "alice@contoso.test");
  EXPECT_EQ((*boxes)[1].password_hash, "$argon2id$x");

  auto directory = st.directory();
  ASSERT_TRUE(directory) << directory.error();
  EXPECT_EQ((*directory)->resolve("ALICE.SMITH@contoso.test").kind, core::Directory::Resolution::Kind::kMailbox);
  EXPECT_EQ((*directory)->resolve("team@contoso.test").members,
            (std::vector<std::string>{"al@contoso.test", "x@outside.test"}));

  ASSERT_TRUE(*st.remove_mailbox("Al"));
  EXPECT_FALSE(*st.remove_mailbox("Al"));
  ASSERT_TRUE(*st.remove_distribution_group("team"));
  ASSERT_TRUE(st.add_distribution_group({"Team2", "team@contoso.test", {"al@contoso.test"}, {}}))
      << "removed recipients free their addresses";
  EXPECT_EQ(st.distribution_groups()->at(0).email_addresses, std::vector<std::string>{"al@contoso.test"});
}

TEST(Store, RecipientWritesRollBackWithTheirTransaction) {
  TempDir dir;
  auto s = Store::create(dir.path / "starling.db");
  ASSERT_TRUE(s);
  Store& st = **s;
  int64_t g = *st.generation();
  auto r = st.in_transaction([&]() -> Result<void> {
    if (auto a = st.add_mailbox({"Alice", "alice@contoso.test", {}, "", true, ""}); !a) return a;
    return make_error("refused");
  });
  EXPECT_FALSE(r);
  EXPECT_TRUE(st.mailboxes()->empty());
  EXPECT_EQ(*st.generation(), g);
  EXPECT_TRUE(st.add_mailbox({"Alice", "alice@contoso.test", {}, "", true, ""})) << "the address rows rolled back too";
}

}  // namespace
}  // namespace starling::store

namespace starling::store {
namespace {

// A store written before accepted domain types keeps the default domain it had: the
// default_accepted_domain setting when present, else the first by name.
TEST(Store, SchemaTwoStoreKeepsItsDefaultDomain) {
  for (bool with_setting : {false, true}) {
    TempDir dir;
    auto file = dir.path / "starling.db";
    {
      SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
              "CREATE TABLE accepted_domains (name TEXT PRIMARY KEY COLLATE NOCASE);"
              "CREATE TABLE events (record INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
              " event_id INTEGER NOT NULL, level TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL,"
              " message TEXT NOT NULL, data TEXT NOT NULL, object TEXT NOT NULL);"
              "INSERT INTO settings VALUES ('generation', '7');"
              "INSERT INTO accepted_domains VALUES ('b.test'), ('a.test'), ('c.test');"
              "PRAGMA user_version=2;");
      if (with_setting) db.exec("INSERT INTO settings VALUES ('default_accepted_domain', 'C.test')");
    }
    auto s = Store::open(file);
    ASSERT_TRUE(s) << s.error();
    auto d = (*s)->directory();
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ((*d)->default_domain()->domain, with_setting ? "c.test" : "a.test");
    EXPECT_EQ((*d)->domains().size(), 3u);
    EXPECT_EQ((*d)->domain("b.test")->type, core::DomainType::kAuthoritative);
    EXPECT_EQ((*d)->domain("b.test")->delivery_target, "Maildir");
    EXPECT_TRUE((*s)->mailboxes()->empty());
  }
}

}  // namespace
}  // namespace starling::store
