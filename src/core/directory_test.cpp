#include "core/directory.hpp"

#include <gtest/gtest.h>

namespace starling::core {
namespace {

using Kind = Directory::Resolution::Kind;

Directory contoso() {
  std::vector<AcceptedDomain> domains{
      {"contoso.test", DomainType::kAuthoritative, false, "Maildir"},
      {"Relay.Contoso.TEST", DomainType::kInternalRelay, true, "lmtp:127.0.0.1:24"},
      {"partner.test", DomainType::kExternalRelay, false, "Maildir"},
  };
  std::vector<Mailbox> mailboxes{
      {"Alice", "Alice@Contoso.test", {"al@contoso.test", "alice@relay.contoso.test"}, "", true, ""},
      {"Bob", "bob@contoso.test", {}, "", true, "lmtp:/run/dovecot/lmtp"},
      {"Carol", "carol@contoso.test", {}, "", false, ""},
  };
  std::vector<DistributionGroup> groups{
      {"Team", "team@contoso.test", {"crew@contoso.test"},
       {"AL@contoso.test", "bob@contoso.test", "carol@contoso.test", "sub@contoso.test", "x@outside.test"}},
      {"Sub", "sub@contoso.test", {}, {"alice@contoso.test", "team@contoso.test", "y@outside.test"}},
      {"Empty", "empty@contoso.test", {}, {}},
  };
  return Directory(std::move(domains), std::move(mailboxes), std::move(groups));
}

TEST(Directory, MailboxByAnyAddressInAnyCase) {
  Directory d = contoso();
  for (const char* a : {"alice@contoso.test", "ALICE@CONTOSO.TEST", "al@Contoso.test", "alice@relay.contoso.test"}) {
    auto r = d.resolve(a);
    ASSERT_EQ(r.kind, Kind::kMailbox) << a;
    EXPECT_EQ(r.mailbox->name, "Alice") << a;
  }
  EXPECT_EQ(d.mailbox_by_address("AL@contoso.test")->primary_address, "alice@contoso.test");
  EXPECT_EQ(d.mailbox_by_name("bob")->primary_address, "bob@contoso.test");
  EXPECT_EQ(d.mailbox_by_name("nobody"), nullptr);
}

TEST(Directory, DomainTypesDecideUnknownRecipients) {
  Directory d = contoso();
  EXPECT_EQ(d.resolve("nobody@contoso.test").kind, Kind::kUnknown) << "Authoritative: 550 5.1.1";
  EXPECT_EQ(d.resolve("nobody@relay.contoso.test").kind, Kind::kRelay) << "InternalRelay: sent on";
  EXPECT_EQ(d.resolve("anyone@partner.test").kind, Kind::kRelay) << "ExternalRelay: always sent on";
  EXPECT_EQ(d.resolve("someone@fabrikam.test").kind, Kind::kNotLocal);
  EXPECT_EQ(d.resolve("postmaster").kind, Kind::kNotLocal) << "no domain: the session's business";
  EXPECT_EQ(d.resolve("carol@contoso.test").kind, Kind::kUnknown) << "a disabled mailbox";
}

TEST(Directory, GroupsExpandNestedLoopSafeWithoutRepeats) {
  Directory d = contoso();
  auto r = d.resolve("Crew@contoso.test");
  ASSERT_EQ(r.kind, Kind::kGroup);
  // AL -> alice (primary); carol disabled: skipped; sub -> alice (repeat), team (loop), y.
  EXPECT_EQ(r.members, (std::vector<std::string>{"alice@contoso.test", "bob@contoso.test", "y@outside.test",
                                                 "x@outside.test"}));
  auto sub = d.resolve("sub@contoso.test");
  EXPECT_EQ(sub.members, (std::vector<std::string>{"alice@contoso.test", "bob@contoso.test", "x@outside.test",
                                                   "y@outside.test"}));
  auto empty = d.resolve("empty@contoso.test");
  EXPECT_EQ(empty.kind, Kind::kGroup);
  EXPECT_TRUE(empty.members.empty());
}

TEST(Directory, GroupExpansionIsBounded) {
  std::vector<DistributionGroup> groups;
  DistributionGroup big{"Big", "big@contoso.test", {}, {}};
  for (int i = 0; i < 1500; ++i) big.members.push_back("u" + std::to_string(i) + "@outside.test");
  groups.push_back(big);
  Directory d({{"contoso.test"}}, {}, groups);
  EXPECT_EQ(d.resolve("big@contoso.test").members.size(), kMaxGroupMembers);
}

TEST(Directory, DefaultDomainAndDeliveryTargets) {
  Directory d = contoso();
  EXPECT_EQ(d.default_domain()->domain, "relay.contoso.test") << "the marked one";
  Directory unmarked({{"b.test"}, {"a.test"}}, {}, {});
  EXPECT_EQ(unmarked.default_domain()->domain, "b.test") << "none marked: the first";
  EXPECT_EQ(Directory().default_domain(), nullptr);
  EXPECT_EQ(d.delivery_target(*d.mailbox_by_name("Alice")), "Maildir");
  EXPECT_EQ(d.delivery_target(*d.mailbox_by_name("Bob")), "lmtp:/run/dovecot/lmtp") << "the mailbox's own";
  EXPECT_TRUE(d.may_send_as(*d.mailbox_by_name("Alice"), "AL@contoso.test"));
  EXPECT_FALSE(d.may_send_as(*d.mailbox_by_name("Alice"), "bob@contoso.test"));
}

TEST(Directory, ParsesDeliveryTargets) {
  auto m = parse_delivery_target("maildir");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, DeliveryTarget::Kind::kMaildir);
  auto v4 = parse_delivery_target("lmtp:127.0.0.1:24");
  ASSERT_TRUE(v4) << v4.error();
  EXPECT_EQ(v4->kind, DeliveryTarget::Kind::kLmtpTcp);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 24);
  auto v6 = parse_delivery_target("LMTP:[::1]:2424");
  ASSERT_TRUE(v6) << v6.error();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(format_delivery_target(*v6), "lmtp:[::1]:2424");
  auto name = parse_delivery_target("lmtp:Mail.Contoso.test:24");
  ASSERT_TRUE(name);
  EXPECT_EQ(format_delivery_target(*name), "lmtp:mail.contoso.test:24");
  auto unix_socket = parse_delivery_target("lmtp:/run/dovecot/lmtp");
  ASSERT_TRUE(unix_socket);
  EXPECT_EQ(unix_socket->kind, DeliveryTarget::Kind::kLmtpUnix);
  EXPECT_EQ(unix_socket->host, "/run/dovecot/lmtp");
  for (const char* bad : {"", "mbox", "lmtp:", "lmtp:host", "lmtp:host:0", "lmtp:host:65536", "lmtp:::1:24",
                          "lmtp:[::1]24", "lmtp:[nope]:24", "lmtp:bad_host:24", "lmtp:/"}) {
    EXPECT_FALSE(parse_delivery_target(bad)) << bad;
  }
}

TEST(Directory, NormalizesAddresses) {
  EXPECT_EQ(normalize_address("Al.Ice+tag@Contoso.TEST"), "al.ice+tag@contoso.test");
  for (const char* bad : {"alice", "@contoso.test", "alice@", "a..b@contoso.test", ".a@contoso.test",
                          "a b@contoso.test", "alice@bad_domain", "alice@contoso.test."}) {
    EXPECT_FALSE(normalize_address(bad)) << bad;
  }
  EXPECT_FALSE(normalize_address(std::string(65, 'a') + "@contoso.test")) << "local part over 64 octets";
  EXPECT_EQ(parse_domain_type("internalrelay"), DomainType::kInternalRelay);
  EXPECT_FALSE(parse_domain_type("Relay"));
}

}  // namespace
}  // namespace starling::core
