// Mailboxes, distribution groups and accepted domain types through the management commands,
// against a real store: every address maps to one recipient, refusals change nothing, and a
// password is never shown or recorded.
#include <gtest/gtest.h>

#include <filesystem>

#include "events/event_log.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/password.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"
#include "testing/temp_dir.hpp"

namespace starling::mgmt {
namespace {

using Kind = core::Directory::Resolution::Kind;

class Recipients : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*store::Store::create(dir_ / "starling.db"));
    settings_ = {"mx", "mail.contoso.test"};
    ASSERT_TRUE(store_->set_server_settings(settings_));
    ASSERT_TRUE(store_->add_accepted_domain("contoso.test"));
    root_.user = "root";
    root_.local_admin = true;
    log_ = std::make_unique<events::EventLog>(store_.get());
  }

  Reply run(const Caller& who, std::string command, Json args = Json::object(), bool yes = false, bool force = false) {
    Context ctx{*store_, settings_, who, log_.get()};
    Request r;
    r.command = std::move(command);
    r.args = std::move(args);
    r.yes = yes;
    r.force = force;
    return execute(ctx, r);
  }
  Reply run(std::string command, Json args = Json::object(), bool yes = false, bool force = false) {
    return run(root_, std::move(command), std::move(args), yes, force);
  }
  Kind resolve(const std::string& address) { return (*store_->directory())->resolve(address).kind; }

  starling::testing::TempDir tmp_{"starling-recipients"};
  const std::filesystem::path& dir_ = tmp_.path;
  std::unique_ptr<store::Store> store_;
  core::ServerSettings settings_;
  Caller root_;
  std::unique_ptr<events::EventLog> log_;
};

TEST_F(Recipients, NewMailboxWithAliasesAndExchangeNames) {
  EXPECT_EQ(canonical_command("New-Mailbox"), "new-mailbox");
  EXPECT_EQ(canonical_command("get-distributiongroup"), "get-distribution-group");
  EXPECT_EQ(canonical_command("Set-AcceptedDomain"), "set-accepted-domain");
  auto r = run("new-mailbox", {{"address", "Alice@Contoso.test"}, {"name", "Alice"},
                               {"emailaddresses", "smtp:al@contoso.test, SMTP:a.smith@contoso.test"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.objects[0]["PrimarySmtpAddress"], "alice@contoso.test");
  EXPECT_EQ(r.objects[0]["EmailAddresses"],
            Json::array({"SMTP:alice@contoso.test", "smtp:al@contoso.test", "smtp:a.smith@contoso.test"}));
  EXPECT_EQ(r.objects[0]["HasPassword"], false);
  EXPECT_EQ(resolve("AL@contoso.test"), Kind::kMailbox);
  auto by_alias = run("get-mailbox", {{"identity", "a.smith@contoso.test"}});
  ASSERT_EQ(by_alias.exit_code, 0) << by_alias.error;
  EXPECT_EQ(by_alias.objects[0]["Name"], "Alice");
  EXPECT_EQ(run("get-mailbox", {{"identity", "alice"}}).objects[0]["Name"], "Alice") << "by name, any case";
  EXPECT_EQ(run("get-mailbox", {{"identity", "nobody"}}).exit_code, kExitFailed);
  auto unnamed = run("new-mailbox", {{"address", "bob@contoso.test"}});
  ASSERT_EQ(unnamed.exit_code, 0) << unnamed.error;
  EXPECT_EQ(unnamed.objects[0]["Name"], "bob@contoso.test") << "the name defaults to the address";
  EXPECT_EQ(run("get-mailbox").objects.size(), 2u);
}

TEST_F(Recipients, AddressesAreUniqueAndAtAcceptedDomains) {
  ASSERT_EQ(run("new-mailbox", {{"address", "alice@contoso.test"}, {"emailaddresses", "al@contoso.test"}}).exit_code, 0);
  ASSERT_EQ(run("new-accepted-domain", {{"identity", "partner.test"}, {"domaintype", "ExternalRelay"}}).exit_code, 0);
  int64_t g = *store_->generation();
  struct Bad {
    std::string command;
    Json args;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {"new-mailbox", {{"address", "AL@CONTOSO.TEST"}}, "'al@contoso.test' belongs to mailbox 'alice@contoso.test'"},
           {"new-mailbox", {{"address", "x@contoso.test"}, {"emailaddresses", "alice@contoso.test"}}, "belongs to mailbox"},
           {"new-mailbox", {{"address", "x@fabrikam.test"}}, "fabrikam.test is not an accepted domain"},
           {"new-mailbox", {{"address", "x@partner.test"}}, "ExternalRelay"},
           {"new-mailbox", {{"address", "not an address"}}, "is not an email address"},
           {"new-mailbox", {{"name", "alice@contoso.test"}, {"address", "y@contoso.test"}}, "a recipient named"},
           {"new-mailbox", {{"name", "X"}}, "an address is needed"},
           {"new-mailbox", {{"address", "x@contoso.test"}, {"password", "hunter2"}}, "--password-file"},
           {"new-mailbox", {{"address", "x@contoso.test"}, {"deliverytarget", "lmtp:host"}}, "DeliveryTarget"},
           {"new-distribution-group", {{"address", "al@contoso.test"}}, "belongs to mailbox"},
           {"new-distribution-group", {{"address", "team@contoso.test"}, {"members", "ghost@contoso.test"}},
            "no such recipient"},
           {"set-mailbox", {{"identity", "alice@contoso.test"}, {"removeemailaddresses", "alice@contoso.test"}},
            "is the primary address"},
           {"remove-accepted-domain", {{"identity", "contoso.test"}}, "still used by mailbox 'alice@contoso.test' (alice@contoso.test)"},
       }) {
    auto r = run(b.command, b.args, true);
    EXPECT_NE(r.exit_code, 0) << b.command << " " << b.args.dump();
    EXPECT_NE(r.error.find(b.says), std::string::npos) << b.command << " " << b.args.dump() << ": " << r.error;
    EXPECT_EQ(r.error.find("hunter2"), std::string::npos);
  }
  EXPECT_EQ(*store_->generation(), g) << "a refused command changed the store";
  EXPECT_EQ(store_->mailboxes()->size(), 1u);
}

TEST_F(Recipients, PasswordIsHashedNeverShownNeverRecorded) {
  const std::string password = "Tr0ub4dor&3-unique";
  auto made = run("new-mailbox", {{"address", "alice@contoso.test"}, {std::string(kMailboxPasswordKey), password}});
  ASSERT_EQ(made.exit_code, 0) << made.error;
  EXPECT_EQ(made.objects[0]["HasPassword"], true);
  auto stored = (*store_->mailboxes())[0];
  EXPECT_TRUE(stored.password_hash.starts_with("$argon2id$")) << stored.password_hash;
  EXPECT_TRUE(verify_password(stored.password_hash, password));

  auto reset = run("set-mailbox", {{"identity", "alice@contoso.test"}, {std::string(kMailboxPasswordKey), password + "2"}});
  ASSERT_EQ(reset.exit_code, 0) << reset.error;
  std::string hash2 = (*store_->mailboxes())[0].password_hash;
  EXPECT_TRUE(verify_password(hash2, password + "2"));
  EXPECT_FALSE(verify_password(hash2, password));

  auto shown = run("get-mailbox", {{"identity", "alice@contoso.test"}});
  for (const Reply* r : {&made, &reset, &shown}) {
    std::string all = r->objects.dump() + r->change + r->error;
    for (const auto& m : r->messages) all += m;
    EXPECT_EQ(all.find(password), std::string::npos) << all;
    EXPECT_EQ(all.find("argon2"), std::string::npos) << "not even the hash: " << all;
  }
  auto events = store_->events({});
  ASSERT_TRUE(events);
  size_t changes = 0;
  for (const auto& e : *events) {
    EXPECT_EQ(e.message.find(password), std::string::npos) << e.message;
    EXPECT_EQ(e.data_json.find(password), std::string::npos) << e.data_json;
    EXPECT_EQ(e.data_json.find("argon2"), std::string::npos) << e.data_json;
    changes += e.event_id == 13001;
  }
  EXPECT_EQ(changes, 2u);

  ASSERT_EQ(run("set-mailbox", {{"identity", "alice@contoso.test"}, {std::string(kMailboxPasswordKey), ""}}).exit_code, 0);
  EXPECT_EQ(run("get-mailbox").objects[0]["HasPassword"], false) << "an empty password file removes it";
  EXPECT_EQ(run("set-mailbox", {{"identity", "alice@contoso.test"}, {"password", password}}).exit_code, kExitUsage);
}

TEST_F(Recipients, SetMailboxAddressesTargetAndDisable) {
  ASSERT_EQ(run("new-mailbox", {{"address", "alice@contoso.test"}, {"name", "Alice"}}).exit_code, 0);
  ASSERT_EQ(run("new-mailbox", {{"address", "bob@contoso.test"}}).exit_code, 0);
  auto add = run("set-mailbox", {{"identity", "Alice"}, {"addemailaddresses", "al@contoso.test,ally@contoso.test"},
                                 {"deliverytarget", "LMTP:[::1]:24"}});
  ASSERT_EQ(add.exit_code, 0) << add.error;
  auto alice = *(*store_->directory())->mailbox_by_name("Alice");
  EXPECT_EQ(alice.email_addresses, (std::vector<std::string>{"al@contoso.test", "ally@contoso.test"}));
  EXPECT_EQ(alice.delivery_target, "lmtp:[::1]:24") << "kept in its canonical spelling";
  EXPECT_EQ(run("set-mailbox", {{"identity", "bob@contoso.test"}, {"addemailaddresses", "al@contoso.test"}}).exit_code,
            kExitFailed);

  ASSERT_EQ(run("set-mailbox", {{"identity", "al@contoso.test"}, {"removeemailaddresses", "ally@contoso.test"}}).exit_code, 0);
  EXPECT_EQ(resolve("ally@contoso.test"), Kind::kUnknown);
  ASSERT_EQ(run("new-mailbox", {{"address", "ally@contoso.test"}}).exit_code, 0) << "a released address is free";

  auto primary = run("set-mailbox", {{"identity", "Alice"}, {"primarysmtpaddress", "al@contoso.test"}});
  ASSERT_EQ(primary.exit_code, 0) << primary.error;
  alice = *(*store_->directory())->mailbox_by_name("Alice");
  EXPECT_EQ(alice.primary_address, "al@contoso.test");
  EXPECT_EQ(alice.email_addresses, std::vector<std::string>{"alice@contoso.test"}) << "the old primary stays an alias";

  ASSERT_EQ(run("set-mailbox", {{"identity", "Alice"}, {"enabled", "false"}}).exit_code, 0);
  EXPECT_EQ(resolve("alice@contoso.test"), Kind::kUnknown) << "disabled: refused at an Authoritative domain";
  EXPECT_EQ(run("get-mailbox", {{"identity", "Alice"}}).objects[0]["Enabled"], false);
  auto same = run("set-mailbox", {{"identity", "Alice"}, {"enabled", "false"}});
  EXPECT_EQ(same.exit_code, 0);
  EXPECT_TRUE(same.change.empty()) << "nothing changed, nothing recorded";
  EXPECT_EQ(run("set-mailbox", {{"identity", "Alice"}}).exit_code, kExitUsage);
}

TEST_F(Recipients, GroupsExpandAndLoseRemovedMembers) {
  ASSERT_EQ(run("new-mailbox", {{"address", "alice@contoso.test"}, {"emailaddresses", "al@contoso.test"}}).exit_code, 0);
  ASSERT_EQ(run("new-mailbox", {{"address", "bob@contoso.test"}}).exit_code, 0);
  auto team = run("new-distribution-group", {{"address", "team@contoso.test"}, {"name", "Team"},
                                             {"members", "AL@contoso.test,bob@contoso.test,x@outside.test"}});
  ASSERT_EQ(team.exit_code, 0) << team.error;
  EXPECT_EQ(team.objects[0]["Members"], Json::array({"alice@contoso.test", "bob@contoso.test", "x@outside.test"}))
      << "mailboxes by their primary address";
  ASSERT_EQ(run("new-distribution-group", {{"address", "all@contoso.test"}, {"members", "team@contoso.test"}}).exit_code, 0);
  ASSERT_EQ(run("set-distribution-group", {{"identity", "Team"}, {"addmembers", "all@contoso.test"}}).exit_code, 0)
      << "a loop is allowed; expansion stops it";
  auto r = (*store_->directory())->resolve("all@contoso.test");
  ASSERT_EQ(r.kind, Kind::kGroup);
  EXPECT_EQ(r.members, (std::vector<std::string>{"alice@contoso.test", "bob@contoso.test", "x@outside.test"}));
  EXPECT_NE(run("set-distribution-group", {{"identity", "Team"}, {"addmembers", "team@contoso.test"}}).exit_code, 0)
      << "not a member of itself";

  auto removed = run("remove-mailbox", {{"identity", "bob@contoso.test"}}, true);
  ASSERT_EQ(removed.exit_code, 0) << removed.error;
  ASSERT_EQ(removed.messages.size(), 2u);
  EXPECT_EQ(removed.messages[1], "Removed from distribution group 'Team'.");
  EXPECT_EQ(run("get-distribution-group", {{"identity", "team"}}).objects[0]["MemberCount"], 3)
      << "alice, x and all remain";
  ASSERT_EQ(run("set-distribution-group", {{"identity", "Team"}, {"removemembers", "al@contoso.test"}}).exit_code, 0);
  ASSERT_EQ(run("remove-distribution-group", {{"identity", "all@contoso.test"}}, true).exit_code, 0);
  EXPECT_EQ(run("get-distribution-group", {{"identity", "team"}}).objects[0]["Members"],
            Json::array({"x@outside.test"}));
  EXPECT_EQ(run("remove-distribution-group", {{"identity", "team"}}).exit_code, kExitFailed) << "not confirmed";
}

TEST_F(Recipients, AccepedDomainTypesDefaultAndDeliveryTarget) {
  auto r = run("new-accepted-domain", {{"identity", "relay.contoso.test"}, {"domaintype", "internalrelay"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(resolve("anyone@relay.contoso.test"), Kind::kRelay);
  EXPECT_EQ(resolve("anyone@contoso.test"), Kind::kUnknown);
  auto shown = run("get-accepted-domain");
  ASSERT_EQ(shown.objects.size(), 2u);
  EXPECT_EQ(shown.objects[0]["DomainName"], "contoso.test");
  EXPECT_EQ(shown.objects[0]["Default"], true) << "none marked: the first by name";
  EXPECT_EQ(shown.objects[1]["DomainType"], "InternalRelay");
  EXPECT_EQ(shown.objects[1]["DeliveryTarget"], "Maildir");

  auto set = run("set-accepted-domain", {{"identity", "relay.contoso.test"}, {"makedefault", "true"},
                                         {"deliverytarget", "lmtp:127.0.0.1:24"}});
  ASSERT_EQ(set.exit_code, 0) << set.error;
  shown = run("get-accepted-domain");
  EXPECT_EQ(shown.objects[0]["Default"], false);
  EXPECT_EQ(shown.objects[1]["Default"], true);
  EXPECT_EQ(shown.objects[1]["DeliveryTarget"], "lmtp:127.0.0.1:24");
  EXPECT_EQ((*store_->directory())->default_domain()->domain, "relay.contoso.test");

  ASSERT_EQ(run("new-mailbox", {{"address", "alice@relay.contoso.test"}}).exit_code, 0);
  auto external = run("set-accepted-domain", {{"identity", "relay.contoso.test"}, {"domaintype", "ExternalRelay"}});
  EXPECT_EQ(external.exit_code, kExitFailed);
  EXPECT_NE(external.error.find("mailbox 'alice@relay.contoso.test'"), std::string::npos) << external.error;
  EXPECT_EQ(run("set-accepted-domain", {{"identity", "contoso.test"}, {"domaintype", "Relay"}}).exit_code, kExitUsage);
  EXPECT_EQ(run("set-accepted-domain", {{"identity", "contoso.test"}, {"makedefault", "false"}}).exit_code, kExitUsage);
  EXPECT_EQ(run("set-accepted-domain", {{"identity", "nope.test"}, {"domaintype", "Authoritative"}}).exit_code, kExitFailed);
  ASSERT_EQ(run("new-accepted-domain", {{"identity", "new.test"}, {"makedefault", "true"}}).exit_code, 0);
  EXPECT_EQ((*store_->directory())->default_domain()->domain, "new.test");
}

TEST_F(Recipients, RolesOfSection5) {
  ASSERT_TRUE(store_->add_role_assignment({"ViewOnlyAdministrator", "User", "viewer"}));
  ASSERT_TRUE(store_->add_role_assignment({"ServerAdministrator", "User", "admin"}));
  Caller viewer, admin;
  viewer.user = "viewer";
  admin.user = "admin";
  EXPECT_EQ(run(viewer, "get-mailbox").exit_code, 0);
  EXPECT_EQ(run(viewer, "get-distribution-group").exit_code, 0);
  for (const char* c : {"new-mailbox", "set-mailbox", "remove-mailbox", "new-distribution-group",
                        "set-distribution-group", "remove-distribution-group", "set-accepted-domain"}) {
    auto r = run(viewer, c, {{"address", "v@contoso.test"}});
    EXPECT_EQ(r.exit_code, kExitDenied) << c;
    EXPECT_NE(r.error.find("ServerAdministrator"), std::string::npos) << r.error;
  }
  EXPECT_EQ(run(admin, "new-mailbox", {{"address", "a@contoso.test"}}).exit_code, 0);
  EXPECT_EQ(run(admin, "remove-mailbox", {{"identity", "a@contoso.test"}}, true).exit_code, 0);
}

TEST_F(Recipients, PostmasterNeedsForceToRemove) {
  ASSERT_EQ(run("new-mailbox", {{"address", "postmaster@contoso.test"}}).exit_code, 0);
  auto r = run("remove-mailbox", {{"identity", "postmaster@contoso.test"}}, true);
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_NE(r.error.find("RFC 5321"), std::string::npos) << r.error;
  EXPECT_EQ(run("remove-mailbox", {{"identity", "postmaster@contoso.test"}}, true, true).exit_code, 0);
}

TEST(PasswordFile, OneLine) {
  EXPECT_EQ(*parse_password_file("s3cret pw \r\n\n"), "s3cret pw ");
  EXPECT_EQ(*parse_password_file(""), "");
  EXPECT_FALSE(parse_password_file("a\nb\n"));
  EXPECT_FALSE(parse_password_file(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace starling::mgmt
