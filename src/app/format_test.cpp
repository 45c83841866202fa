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

TEST(Format, UnknownPropertyIsAnError) {
  auto r = select_properties(sample(), {"colour"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("Fqdn"), std::string::npos);
  EXPECT_EQ(select_properties(sample(), {"*"})->at(0).size(), 5u);
}

}  // namespace
}  // namespace starling::app
