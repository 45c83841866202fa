#include "core/ip_range.hpp"

#include <gtest/gtest.h>

namespace starling::core {
namespace {

IpRange range(std::string_view s) {
  auto r = parse_ip_range(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error());
  return r ? *r : IpRange{};
}

TEST(IpRange, FormsAndMembership) {
  EXPECT_TRUE(range("192.0.2.0/24").contains(*parse_ip("192.0.2.255")));
  EXPECT_FALSE(range("192.0.2.0/24").contains(*parse_ip("192.0.3.0")));
  EXPECT_TRUE(range("10.0.0.1-10.0.0.9").contains(*parse_ip("10.0.0.5")));
  EXPECT_TRUE(range("2001:db8::/32").contains(*parse_ip("2001:db8:1::1")));
  EXPECT_TRUE(range("0.0.0.0/0").contains(*parse_ip("::ffff:198.51.100.1")));
  EXPECT_FALSE(range("0.0.0.0/0").contains(*parse_ip("2001:db8::1")));
}

TEST(IpRange, BadEntriesAreRefusedWithAReason) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.9-10.0.0.1", "1.2.3.4-::1", "nonsense", "10.0.0.0/x"}) {
    auto r = parse_ip_range(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().find(bad), std::string::npos);
  }
}

TEST(IpRange, MostSpecificWins) {
  std::vector<IpRange> ranges{range("0.0.0.0-255.255.255.255"), range("192.0.2.0/24"),
                              range("192.0.2.7")};
  EXPECT_EQ(most_specific_match(ranges, *parse_ip("192.0.2.7")), 2u);
  EXPECT_EQ(most_specific_match(ranges, *parse_ip("192.0.2.8")), 1u);
  EXPECT_EQ(most_specific_match(ranges, *parse_ip("203.0.113.1")), 0u);
  EXPECT_FALSE(most_specific_match(ranges, *parse_ip("::1")));
}

}  // namespace
}  // namespace starling::core
