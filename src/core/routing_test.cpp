#include "core/routing.hpp"

#include <gtest/gtest.h>

namespace starling::core {
namespace {

SendConnector connector(std::string name, std::vector<std::string> spaces) {
  SendConnector c;
  c.name = std::move(name);
  c.address_spaces = std::move(spaces);
  return c;
}

// --- Address spaces ---------------------------------------------------------------------------

TEST(AddressSpace, ParsesPrefixCostAndCase) {
  auto a = parse_address_space("SMTP:Contoso.COM;5");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->domain, "contoso.com");
  EXPECT_EQ(a->cost, 5);
  auto b = parse_address_space("*.Fabrikam.test");
  ASSERT_TRUE(b) << b.error();
  EXPECT_EQ(b->domain, "*.fabrikam.test");
  EXPECT_EQ(b->cost, 1);
  auto c = parse_address_space("smtp:*;100");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->domain, "*");
  EXPECT_EQ(c->cost, 100);
}

TEST(AddressSpace, RefusesBadEntries) {
  for (const char* bad : {"", "smtp:", ";5", "contoso.com;0", "contoso.com;101", "contoso.com;x",
                          "contoso.com;-1", "contoso.com;5;6", "x400:c=us", "bad_name.com",
                          "*.*.com", "a..b", "**", "mail.*.com"}) {
    auto r = parse_address_space(bad);
    EXPECT_FALSE(r) << "accepted \"" << bad << "\"";
    if (!r) {
      EXPECT_NE(r.error().find(std::string("\"") + bad + "\""), std::string::npos) << r.error();
    }
  }
}

TEST(AddressSpace, MatchRanksExactThenWildcardThenParentThenStar) {
  AddressSpace exact{"mail.contoso.com"}, wild_same{"*.mail.contoso.com"},
      wild_parent{"*.contoso.com"}, star{"*"}, other{"fabrikam.com"};
  const std::string d = "mail.contoso.com";
  ASSERT_TRUE(address_space_match(exact, d));
  ASSERT_TRUE(address_space_match(wild_same, d));
  ASSERT_TRUE(address_space_match(wild_parent, d));
  ASSERT_TRUE(address_space_match(star, d));
  EXPECT_GT(*address_space_match(exact, d), *address_space_match(wild_same, d));
  EXPECT_GT(*address_space_match(wild_same, d), *address_space_match(wild_parent, d));
  EXPECT_GT(*address_space_match(wild_parent, d), *address_space_match(star, d));
  EXPECT_FALSE(address_space_match(other, d));
  // An exact entry covers that domain only; "*.x" covers x and all its subdomains.
  EXPECT_FALSE(address_space_match(AddressSpace{"contoso.com"}, "mail.contoso.com"));
  EXPECT_TRUE(address_space_match(wild_parent, "contoso.com"));
  EXPECT_TRUE(address_space_match(wild_parent, "a.b.contoso.com"));
  EXPECT_FALSE(address_space_match(wild_parent, "evilcontoso.com"));
  EXPECT_FALSE(address_space_match(wild_parent, "contoso.com.evil"));
}

// --- route_recipient ---------------------------------------------------------------------------

TEST(Routing, AcceptedDomainIsLocalInAnyCase) {
  std::vector<SendConnector> cs{connector("Internet", {"*"})};
  Route r = route_recipient("Contoso.COM", {"contoso.com"}, cs);
  EXPECT_EQ(r.kind, Route::Kind::kLocal);
  EXPECT_EQ(route_recipient("fabrikam.com", {"contoso.com"}, cs).kind, Route::Kind::kConnector);
}

TEST(Routing, MostSpecificAddressSpaceWins) {
  std::vector<SendConnector> cs{connector("Star", {"*"}), connector("Parent", {"*.contoso.com"}),
                                connector("Same", {"*.mail.contoso.com"}),
                                connector("Exact", {"mail.contoso.com;50"})};
  EXPECT_EQ(route_recipient("MAIL.contoso.com", {}, cs).connector, "Exact");
  EXPECT_EQ(route_recipient("x.mail.contoso.com", {}, cs).connector, "Same");
  EXPECT_EQ(route_recipient("other.contoso.com", {}, cs).connector, "Parent");
  EXPECT_EQ(route_recipient("contoso.com", {}, cs).connector, "Parent");
  EXPECT_EQ(route_recipient("fabrikam.com", {}, cs).connector, "Star");
  // Specificity wins over cost, whatever the order of the connectors.
  std::vector<SendConnector> reversed(cs.rbegin(), cs.rend());
  EXPECT_EQ(route_recipient("mail.contoso.com", {}, reversed).connector, "Exact");
}

TEST(Routing, LowestCostThenNameBreaksTies) {
  std::vector<SendConnector> cs{connector("Zeta", {"smtp:*;1"}), connector("alpha", {"*;3"}),
                                connector("Beta", {"*;3"})};
  EXPECT_EQ(route_recipient("fabrikam.com", {}, cs).connector, "Zeta");
  cs[0].address_spaces = {"*;5"};
  // Equal cost: names compare case-insensitively, so "alpha" < "Beta" (plain < would pick Beta).
  EXPECT_EQ(route_recipient("fabrikam.com", {}, cs).connector, "alpha");
  // A connector's cheapest matching entry of the best specificity counts.
  cs[2].address_spaces = {"*;9", "smtp:*;2"};
  EXPECT_EQ(route_recipient("fabrikam.com", {}, cs).connector, "Beta");
}

TEST(Routing, DisabledConnectorIgnoredAndNoRouteIsNone) {
  std::vector<SendConnector> cs{connector("Exact", {"fabrikam.com"}),
                                connector("Contoso", {"*.contoso.com"})};
  cs[0].enabled = false;
  Route r = route_recipient("fabrikam.com", {}, cs);
  EXPECT_EQ(r.kind, Route::Kind::kNone);
  EXPECT_TRUE(r.connector.empty());
  cs[0].enabled = true;
  r = route_recipient("fabrikam.com", {}, cs);
  EXPECT_EQ(r.kind, Route::Kind::kConnector);
  EXPECT_EQ(r.connector, "Exact");
}

TEST(Routing, NextHopIsDomainOrSmartHosts) {
  std::vector<SendConnector> cs{connector("Internet", {"*"})};
  Route r = route_recipient("Fabrikam.COM", {}, cs);
  EXPECT_EQ(r.next_hop, "fabrikam.com");
  cs[0].dns_routing_enabled = false;
  cs[0].smart_hosts = {"Relay1.example.net", "[192.0.2.7]:2525"};
  r = route_recipient("fabrikam.com", {}, cs);
  EXPECT_EQ(r.kind, Route::Kind::kConnector);
  EXPECT_EQ(r.next_hop, "relay1.example.net,[192.0.2.7]:2525");
}

// --- parse_smart_host --------------------------------------------------------------------------

TEST(SmartHost, GoodEntries) {
  struct Case {
    const char* text;
    const char* host;
    bool is_ip;
    uint16_t port;
  };
  for (const Case& c : {Case{"relay.example.net", "relay.example.net", false, 0},
                        Case{"Relay.Example.NET:587", "relay.example.net", false, 587},
                        Case{"relay", "relay", false, 0},
                        Case{"[192.0.2.7]", "192.0.2.7", true, 0},
                        Case{"[192.0.2.7]:2525", "192.0.2.7", true, 2525},
                        Case{"[2001:DB8::1]:25", "2001:db8::1", true, 25},
                        Case{"[2001:db8::1]", "2001:db8::1", true, 0},
                        Case{"192.0.2.7", "192.0.2.7", true, 0},
                        Case{"192.0.2.7:65535", "192.0.2.7", true, 65535},
                        Case{"2001:db8::1", "2001:db8::1", true, 0},
                        Case{" relay.example.net:1 ", "relay.example.net", false, 1}}) {
    auto r = parse_smart_host(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error();
    EXPECT_EQ(r->host, c.host) << c.text;
    EXPECT_EQ(r->is_ip, c.is_ip) << c.text;
    EXPECT_EQ(r->port, c.port) << c.text;
  }
}

TEST(SmartHost, BadEntriesNameTheText) {
  for (const char* bad :
       {"", "relay.example.net:", "relay.example.net:0", "relay.example.net:65536",
        "relay.example.net:25x", "relay.example.net:+25", "bad_host", "-relay.example.net",
        "[192.0.2.7", "[192.0.2.999]", "[relay.example.net]", "[192.0.2.7]x", "[192.0.2.7]x25", "[192.0.2.7]:0",
        "[192.0.2.7]:", "2001:db8::1:25:x", "2001:db8::zz", "relay..example.net"}) {
    auto r = parse_smart_host(bad);
    EXPECT_FALSE(r) << "accepted \"" << bad << "\"";
    if (!r) {
      EXPECT_NE(r.error().find(std::string("\"") + bad + "\""), std::string::npos) << r.error();
    }
  }
}

// --- plan_mx ------------------------------------------------------------------------------------

std::vector<std::string> host_names(const MxPlan& p) {
  std::vector<std::string> out;
  for (const HostTarget& h : p.hosts) out.push_back(h.host);
  return out;
}

TEST(PlanMx, OrdersByPreferenceAndAppliesPort) {
  std::mt19937 rng(1);
  MxPlan p = plan_mx("fabrikam.com", {{30, "c.fabrikam.com"}, {10, "A.fabrikam.com."}, {20, "b.fabrikam.com"}},
                     2525, {}, rng);
  ASSERT_EQ(p.kind, MxPlan::Kind::kHosts);
  EXPECT_EQ(host_names(p), (std::vector<std::string>{"a.fabrikam.com", "b.fabrikam.com", "c.fabrikam.com"}));
  ASSERT_EQ(p.hosts.size(), 3u);
  EXPECT_EQ(p.hosts[0].preference, 10);
  EXPECT_EQ(p.hosts[2].preference, 30);
  for (const HostTarget& h : p.hosts) EXPECT_EQ(h.port, 2525);
}

TEST(PlanMx, EqualPreferencesShuffledOverSeeds) {
  std::vector<MxEntry> records{{10, "a.test"}, {10, "b.test"}, {5, "first.test"}, {20, "last.test"}};
  std::set<std::vector<std::string>> orders;
  for (unsigned seed = 0; seed < 64; ++seed) {
    std::mt19937 rng(seed);
    MxPlan p = plan_mx("x.test", records, 25, {}, rng);
    ASSERT_EQ(p.hosts.size(), 4u);
    EXPECT_EQ(p.hosts.front().host, "first.test");
    EXPECT_EQ(p.hosts.back().host, "last.test");
    orders.insert(host_names(p));
  }
  EXPECT_TRUE(orders.contains({"first.test", "a.test", "b.test", "last.test"}));
  EXPECT_TRUE(orders.contains({"first.test", "b.test", "a.test", "last.test"}));
  EXPECT_EQ(orders.size(), 2u);
}

TEST(PlanMx, NullMx) {
  std::mt19937 rng(1);
  EXPECT_EQ(plan_mx("x.test", {{0, ""}}, 25, {}, rng).kind, MxPlan::Kind::kNullMx);
  EXPECT_EQ(plan_mx("x.test", {{0, "."}}, 25, {}, rng).kind, MxPlan::Kind::kNullMx);
  // A "." next to real hosts is not a null MX (RFC 7505 forbids the mix): the real one is tried.
  MxPlan mixed = plan_mx("x.test", {{0, ""}, {10, "mx.x.test"}}, 25, {}, rng);
  EXPECT_EQ(mixed.kind, MxPlan::Kind::kHosts);
  EXPECT_EQ(host_names(mixed), std::vector<std::string>{"mx.x.test"});
}

TEST(PlanMx, ImplicitMxIsTheDomain) {
  std::mt19937 rng(1);
  MxPlan p = plan_mx("Fabrikam.COM", {}, 587, {}, rng);
  ASSERT_EQ(p.kind, MxPlan::Kind::kHosts);
  ASSERT_EQ(p.hosts.size(), 1u);
  EXPECT_EQ(p.hosts[0].host, "fabrikam.com");
  EXPECT_EQ(p.hosts[0].preference, 0);
  EXPECT_EQ(p.hosts[0].port, 587);
  // The implicit MX being this server is a loop too.
  EXPECT_EQ(plan_mx("mail.contoso.com", {}, 25, {"mail.contoso.com"}, rng).kind, MxPlan::Kind::kLoop);
}

TEST(PlanMx, LocalNameKeepsOnlyBetterHosts) {
  std::mt19937 rng(1);
  std::vector<MxEntry> records{{30, "backup.test"}, {10, "primary.test"}, {20, "Mail.Contoso.com"},
                               {20, "peer.test"}};
  MxPlan p = plan_mx("x.test", records, 25, {"mail.contoso.com"}, rng);
  ASSERT_EQ(p.kind, MxPlan::Kind::kHosts);
  // peer.test has the same preference as this server: not strictly better, so dropped.
  EXPECT_EQ(host_names(p), std::vector<std::string>{"primary.test"});
}

TEST(PlanMx, LocalNameBestIsLoop) {
  std::mt19937 rng(1);
  std::vector<MxEntry> records{{10, "mail.contoso.com"}, {20, "backup.test"}};
  MxPlan p = plan_mx("x.test", records, 25, {"mail.contoso.com", "relay.contoso.com"}, rng);
  EXPECT_EQ(p.kind, MxPlan::Kind::kLoop);
  EXPECT_TRUE(p.hosts.empty());
  // Sharing the best preference with another host is still a loop.
  p = plan_mx("x.test", {{10, "other.test"}, {10, "relay.contoso.com"}}, 25,
              {"mail.contoso.com", "relay.contoso.com"}, rng);
  EXPECT_EQ(p.kind, MxPlan::Kind::kLoop);
}

// --- count_received_headers ---------------------------------------------------------------------

TEST(ReceivedHeaders, CountsOnlyHeaderSectionFields) {
  std::string msg =
      "Received: from a by b;\r\n"
      "\tTue, 1 Dec 2026 10:00:00 +0000\r\n"
      " Received: this is a folded line, not a field\r\n"
      "RECEIVED: from c by d\r\n"
      "received : obsolete space before the colon\r\n"
      "X-Received: not this one\r\n"
      "Received-SPF: nor this\r\n"
      "Subject: Received: nor this\r\n"
      "\r\n"
      "Received: in the body\r\n";
  EXPECT_EQ(count_received_headers(msg), 3);
}

TEST(ReceivedHeaders, ToleratesLfAndNoBody) {
  EXPECT_EQ(count_received_headers("Received: a\nReceived: b\n\nReceived: body\n"), 2);
  EXPECT_EQ(count_received_headers("Received: a\r\nReceived: b"), 2);
  EXPECT_EQ(count_received_headers(""), 0);
  EXPECT_EQ(count_received_headers("\r\nReceived: body only\r\n"), 0);
}

}  // namespace
}  // namespace starling::core
