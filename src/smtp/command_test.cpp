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

TEST(Command, Utf8Validity) {
  for (std::string_view good : {"", "plain", "d\xc3\xa9j\xc3\xa0", "\xe2\x82\xac", "\xf0\x9f\x93\xa7",
                                "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(valid_utf8(good)) << good;
  }
  for (std::string_view bad : {
           "\xc0\xaf",              // overlong '/'
           "\xe0\x80\xaf",          // overlong, three octets
           "\xf0\x80\x80\xaf",      // overlong, four octets
           "\xed\xa0\x80",          // U+D800, a surrogate
           "\xf4\x90\x80\x80",      // above U+10FFFF
           "\xf5\x80\x80\x80",      // no such lead byte
           "\xe2\x82",              // cut short
           "a\xc3",                 // cut short at the end
           "\x80",                  // a continuation byte alone
           "\xc3\x28",              // lead byte without its continuation
       }) {
    EXPECT_FALSE(valid_utf8(bad)) << testing::PrintToString(std::string(bad));
  }
}

TEST(Command, HeloArgument) {
  for (std::string_view good : {"client.example", "single", "my_host.example", "a-b.c-d.example",
                                "[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::ffff:192.0.2.1]",
                                "[x400:c=us;a=example]", "xn--bcher-kva.example"}) {
    EXPECT_TRUE(valid_helo_argument(good)) << good;
  }
  for (std::string_view bad : std::initializer_list<std::string_view>{"", "host([10.0.0.1])", "two words", "-lead.example", "trail-.example",
                               "a..b", ".lead", "trail.", "[10.0.0.256]", "[10.0.0]", "[]",
                               "[IPv6:192.0.2.1]", "[IPv6:2001:db8::1", "[tag:]", "[-tag:x]",
                               "[tag:a[b]", "x\x1b[31m", "b\xc3\xbc" "cher.example",
                               std::string_view("a\0b", 3), std::string_view("[1.2.3.4\0]", 10),
                               "\"quoted\"", "host\\name"}) {
    EXPECT_FALSE(valid_helo_argument(bad)) << testing::PrintToString(std::string(bad));
  }
  EXPECT_FALSE(valid_helo_argument(std::string(64, 'a') + ".example"));  // label over 63
  EXPECT_FALSE(valid_helo_argument(std::string(127, 'a') + "." + std::string(127, 'b') + ".x"));
}

// RFC 3461 §4: xtext, NOTIFY, ORCPT and ENVID as the receiving side and the queue check them.
TEST(Command, DsnParameters) {
  EXPECT_TRUE(valid_xtext("rfc822+3Bx"));
  EXPECT_TRUE(valid_xtext("a+2bb"));  // lower-case hex tolerated
  for (std::string_view bad : {"a b", "a=b", "a+", "a+2", "a+G0", "caf\xc3\xa9", "x\r\n"}) {
    EXPECT_FALSE(valid_xtext(bad)) << testing::PrintToString(std::string(bad));
  }
  EXPECT_EQ(xtext_decode("a+2Bb+0D+0Ac"), "a+b\r\nc");
  EXPECT_EQ(xtext_encode("a+b=c d\xff"), "a+2Bb+3Dc+20d+FF");
  EXPECT_EQ(xtext_decode(xtext_encode("x+y=z")), "x+y=z");

  std::string error;
  EXPECT_EQ(parse_notify("success,Delay", error), DsnRequest::kSuccess | DsnRequest::kDelay);
  EXPECT_EQ(parse_notify("NEVER", error), DsnRequest::kNever);
  for (std::string_view bad : {"", ",", "SUCCESS,", "NEVER,FAILURE", "FAILURE,FAILURE", "ALWAYS"}) {
    error.clear();
    EXPECT_EQ(parse_notify(bad, error), 0) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  EXPECT_EQ(format_notify(DsnRequest::kDelay | DsnRequest::kSuccess), "SUCCESS,DELAY");
  EXPECT_TRUE(valid_notify(DsnRequest::kNever));
  EXPECT_FALSE(valid_notify(0));
  EXPECT_FALSE(valid_notify(DsnRequest::kNever | DsnRequest::kFailure));
  EXPECT_FALSE(valid_notify(16));

  EXPECT_EQ(orcpt_problem("rfc822;bob@example.com"), "");
  EXPECT_EQ(orcpt_problem("rfc822;" + std::string(493, 'a')), "");
  EXPECT_NE(orcpt_problem("rfc822;" + std::string(494, 'a')), "");  // 501 characters
  for (std::string_view bad : {"bob@example.com", ";bob", "rfc 822;bob", "rfc822;", "rfc822;a b"}) {
    EXPECT_NE(orcpt_problem(bad), "") << bad;
  }
  EXPECT_EQ(envid_problem(std::string(100, 'e')), "");
  EXPECT_NE(envid_problem(std::string(101, 'e')), "");
  EXPECT_NE(envid_problem(""), "");
}

// RFC 5321 quoted-pairSMTP is a backslash and a printable character: "\" + CR is not one.
TEST(Command, QuotedLocalPartCannotCarryControls) {
  std::string error;
  EXPECT_TRUE(parse_path_argument("FROM:<\"a\\ b\"@d.example>", "FROM", error));
  for (std::string bad : {std::string("FROM:<\"a\\\rX: y\"@d.example>"),
                          std::string("FROM:<\"a\\\x1b\"@d.example>"),
                          std::string("FROM:<\"a\\\0\"@d.example>", 22),
                          std::string("FROM:<\"a\x7f\"@d.example>"),
                          std::string("FROM:<a@[1.2.3.4\x1b]>"), std::string("FROM:<a@[x:\x01]>")}) {
    EXPECT_FALSE(parse_path_argument(bad, "FROM", error)) << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace starling::smtp
