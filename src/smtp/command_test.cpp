#include "smtp/command.hpp"

#include <gtest/gtest.h>

namespace starling::smtp {
namespace {

TEST(Command, VerbsAreCaseInsensitive) {
  EXPECT_EQ(parse_command("ehlo x").verb, Verb::kEhlo);
  EXPECT_EQ(parse_command("StartTLS").verb, Verb::kStartTls);
  EXPECT_EQ(parse_command("MAILX FROM:<>").verb, Verb::kUnknown);
  EXPECT_EQ(parse_command("GET / HTTP/1.0").verb, Verb::kHttp);
  EXPECT_EQ(parse_command("GET").verb, Verb::kUnknown);
}

TEST(Command, PathWithParameters) {
  std::string error;
  auto p = parse_path_argument("FROM:<a.b@Example.ORG> SIZE=10 BODY=8BITMIME", "FROM", error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->address.local_part, "a.b");
  EXPECT_EQ(p->address.domain, "Example.ORG");
  ASSERT_EQ(p->params.size(), 2u);
  EXPECT_EQ(p->params[0].first, "SIZE");
  EXPECT_EQ(p->params[1].second, "8BITMIME");
}

TEST(Command, PathVariants) {
  std::string error;
  EXPECT_TRUE(parse_path_argument("from: <>", "FROM", error)->address.is_null());
  EXPECT_FALSE(parse_path_argument("TO:<>", "TO", error));
  EXPECT_EQ(parse_path_argument("TO:<Postmaster>", "TO", error)->address.local_part, "postmaster");
  EXPECT_EQ(parse_path_argument("TO:<@relay.example:u@d.example>", "TO", error)->address.str(),
            "u@d.example");
  EXPECT_EQ(parse_path_argument("TO:<\"odd >name\"@d.example>", "TO", error)->address.local_part,
            "\"odd >name\"");
  EXPECT_EQ(parse_path_argument("TO:<u@[192.0.2.1]>", "TO", error)->address.domain, "[192.0.2.1]");
}

TEST(Command, BadPaths) {
  std::string error;
  for (const char* bad : {"TO:u@d.example", "TO:<u@d.example", "TO:<u@>", "TO:<@d.example>",
                          "TO:<u..v@d.example>", "TO:<u@-d.example>", "TO:<u@d..example>",
                          "TO:<u@d.example>X", "TO <u@d.example>", "TO:<u d@x.example>"}) {
    EXPECT_FALSE(parse_path_argument(bad, "TO", error)) << bad;
  }
}

}  // namespace
}  // namespace starling::smtp
