#include "app/format.hpp"

#include <gtest/gtest.h>

namespace starling::app {
namespace {

mgmt::Json sample() {
  mgmt::Json a;
  a["Name"] = "Default mx";
  a["Fqdn"] = "mail.contoso.test";
  a["ObjectClass"] = "msExchSmtpReceiveConnector";
  a["Bindings"] = {"0.0.0.0:25", "[::]:25"};
  a["Enabled"] = true;
  return mgmt::Json::array({a});
}

TEST(Format, ListReadsLikeFormatList) {
  auto picked = select_properties(sample(), {"name", "fqdn", "objectClass"});
  ASSERT_TRUE(picked);
  EXPECT_EQ(format_list(*picked),
            "\nName        : Default mx\nFqdn        : mail.contoso.test\nObjectClass : msExchSmtpReceiveConnector\n");
}

TEST(Format, TableAndValues) {
  auto picked = select_properties(sample(), {"Name", "Bindings", "Enabled"});
  EXPECT_EQ(format_table(*picked),
            "Name       Bindings              Enabled\n"
            "----       --------              -------\n"
            "Default mx {0.0.0.0:25, [::]:25} True\n");
}

TEST(Format, SizesAsExchangeShowsThem) {
  EXPECT_EQ(format_size(10485760), "10 MB (10,485,760 bytes)");
  EXPECT_EQ(format_size(65536), "64 KB (65,536 bytes)");
  EXPECT_EQ(format_size(262144000), "250 MB (262,144,000 bytes)");
  EXPECT_EQ(format_size(512), "512 B (512 bytes)");
  EXPECT_EQ(format_size(1), "1 B (1 byte)");
  EXPECT_EQ(format_size(1536), "1.5 KB (1,536 bytes)");
  EXPECT_EQ(format_size(10000), "9.766 KB (10,000 bytes)");
  EXPECT_EQ(format_size(3ull << 30), "3 GB (3,221,225,472 bytes)");
}

TEST(Format, DurationsAndSizesInTablesNumbersInJson) {
  mgmt::Json c;
  c["Name"] = "Default mx";
  c["MaxMessageSize"] = 10485760;
  c["ConnectionTimeout"] = 600;
  c["ConnectionInactivityTimeout"] = 90061;
  c["MaxRecipientsPerMessage"] = 200;
  mgmt::Json objects = mgmt::Json::array({c});
  EXPECT_EQ(format_list(display_objects(objects)),
            "\nName                        : Default mx\n"
            "MaxMessageSize              : 10 MB (10,485,760 bytes)\n"
            "ConnectionTimeout           : 00:10:00\n"
            "ConnectionInactivityTimeout : 1.01:01:01\n"
            "MaxRecipientsPerMessage     : 200\n");
  EXPECT_EQ(format_json(objects), objects.dump(2) + "\n");
}

TEST(Format, InheritedFqdnShowsTheEffectiveOne) {
  mgmt::Json own{{"Name", "a"}, {"Fqdn", "mx.contoso.test"}, {"EffectiveFqdn", "mx.contoso.test"}};
  mgmt::Json inherited{{"Name", "b"}, {"Fqdn", ""}, {"EffectiveFqdn", "mail.contoso.test"}};
  auto shown = display_objects(mgmt::Json::array({own, inherited}));
  auto picked = select_properties(shown, {"name", "fqdn"});
  ASSERT_TRUE(picked);
  EXPECT_EQ(format_table(*picked),
            "Name Fqdn\n"
            "---- ----\n"
            "a    mx.contoso.test\n"
            "b    mail.contoso.test (inherited)\n");
}

TEST(Format, PropertySomeObjectsLackLeavesTheCellEmpty) {
  mgmt::Json a{{"EventId", 12014}, {"Connector", "Default mx"}};
  mgmt::Json b{{"EventId", 13001}};
  auto picked = select_properties(mgmt::Json::array({a, b}), {"eventid", "connector"});
  ASSERT_TRUE(picked) << picked.error();
  EXPECT_EQ(format_table(*picked),
            "EventId Connector\n"
            "------- ---------\n"
            "12014   Default mx\n"
            "13001   \n");
  EXPECT_TRUE((*picked)[1]["Connector"].is_null());
  // Without --property, a table's columns are every property any object has.
  EXPECT_EQ(format_table(mgmt::Json::array({b, a})),
            "EventId Connector\n"
            "------- ---------\n"
            "13001   \n"
            "12014   Default mx\n");
}

TEST(Format, UnknownPropertyIsAnError) {
  auto r = select_properties(sample(), {"colour"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("Fqdn"), std::string::npos);
  EXPECT_EQ(select_properties(sample(), {"*"})->at(0).size(), 5u);
}

TEST(Format, NestedObjectsReadAsTheirFirstValueAndTheRest) {
  mgmt::Json recipient = {{"Address", "bob@example.net"}, {"Status", "Retry"}, {"LastError", ""},
                          {"Queue", "example.net"}};
  EXPECT_EQ(display_value(recipient), "bob@example.net (Status: Retry; Queue: example.net)");
  EXPECT_EQ(display_value(mgmt::Json::array({recipient, {{"Address", "carol@example.net"}}})),
            "{bob@example.net (Status: Retry; Queue: example.net), carol@example.net}");
}

}  // namespace
}  // namespace starling::app
