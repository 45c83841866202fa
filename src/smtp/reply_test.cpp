// The reply parser against a table of inputs, each fed whole, byte by byte and in random
// splits: the replies, the error state and the error text must not depend on how bytes arrive.
#include "smtp/reply.hpp"

#include <gtest/gtest.h>

#include <random>

namespace starling::smtp {
namespace {

// A reply as one comparable string: "250|2.1.5|line1\nline2".
std::string dump(const Reply& r) {
  std::string out = std::to_string(r.code) + "|" + r.enhanced + "|";
  for (size_t i = 0; i < r.lines.size(); ++i) out += (i ? "\n" : "") + r.lines[i];
  return out;
}

struct Parsed {
  std::vector<std::string> replies;
  bool failed = false;
  std::string error;
  bool operator==(const Parsed&) const = default;
};

template <typename NextPiece>
Parsed parse(std::string_view in, NextPiece next_piece) {
  ReplyParser p;
  Parsed out;
  while (!in.empty()) {
    size_t n = std::min(in.size(), next_piece());
    p.feed(in.substr(0, n));
    in.remove_prefix(n);
    while (auto r = p.next()) out.replies.push_back(dump(*r));
  }
  out.failed = p.failed();
  out.error = p.error();
  return out;
}

// Parses `in` whole, byte by byte and in 20 random splits; fails the test on any difference.
Parsed parse_every_way(std::string_view in) {
  Parsed whole = parse(in, [] { return std::numeric_limits<size_t>::max(); });
  EXPECT_EQ(parse(in, [] { return size_t{1}; }), whole) << "byte by byte: " << in.substr(0, 80);
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<size_t> dist(1, 16);
    EXPECT_EQ(parse(in, [&] { return dist(rng); }), whole) << "seed " << seed;
  }
  return whole;
}

struct Case {
  const char* name;
  std::string in;
  std::vector<std::string> replies;  // dump() of each reply
  bool failed = false;
};

TEST(ReplyParser, Table) {
  std::string max_line = "250 " + std::string(ReplyParser::kMaxLine - 4, 'x');
  std::vector<Case> cases{
      {"single line", "250 OK\r\n", {"250||OK"}},
      {"enhanced code", "250 2.1.5 Recipient OK\r\n", {"250|2.1.5|Recipient OK"}},
      {"three-digit subject and detail", "550 5.123.456 x\r\n", {"550|5.123.456|x"}},
      {"enhanced code alone", "250 2.0.0\r\n", {"250|2.0.0|"}},
      {"enhanced class must match the code", "250 4.1.1 odd\r\n", {"250||4.1.1 odd"}},
      {"3xx has no enhanced code", "354 3.0.0 go\r\n", {"354||3.0.0 go"}},
      {"four-digit detail is text", "550 5.1.1000 x\r\n", {"550||5.1.1000 x"}},
      {"enhanced needs a space after it", "550 5.1.1x\r\n", {"550||5.1.1x"}},
      {"code alone is a last line", "250\r\n", {"250||"}},
      {"code and space", "250 \r\n", {"250||"}},
      {"multi-line", "250-mx.example Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
       {"250||mx.example Hello\nPIPELINING\nSIZE 1000"}},
      {"multi-line enhanced on every line", "550-5.1.1 No such\r\n550 5.1.1 user\r\n",
       {"550|5.1.1|No such\nuser"}},
      {"continuation then bare code", "250-a\r\n250\r\n", {"250||a\n"}},
      {"bare LF line ends", "220 hi\n250-a\n250 b\n", {"220||hi", "250||a\nb"}},
      {"two replies in one read", "250 2.1.0 OK\r\n550 5.1.1 No\r\n",
       {"250|2.1.0|OK", "550|5.1.1|No"}},
      {"incomplete line waits", "250 OK\r\n250-more", {"250||OK"}},
      {"incomplete reply waits", "250-first\r\n", {}},
      {"line of kMaxLine octets", max_line + "\r\n",
       {"250||" + std::string(ReplyParser::kMaxLine - 4, 'x')}},
      {"line of kMaxLine octets, bare LF", max_line + "\n",
       {"250||" + std::string(ReplyParser::kMaxLine - 4, 'x')}},
      {"line one octet too long", max_line + "x\r\n", {}, true},
      {"unterminated line too long", max_line + "xx", {}, true},
      {"not digits", "hello\r\n", {}, true},
      {"1yz does not exist in SMTP", "100 continue\r\n", {}, true},
      {"6yz does not exist", "600 x\r\n", {}, true},
      {"two digits", "25 OK\r\n", {}, true},
      {"bad separator", "250_OK\r\n", {}, true},
      {"empty line", "\r\n", {}, true},
      {"code changes within a reply", "250-a\r\n251 b\r\n", {}, true},
      {"control characters in the text", "550 5.1.1 a\rb\x1b[31mc\td\r\n",
       {"550|5.1.1|a?b?[31mc\td"}},
      {"UTF-8 text passes", "550 5.1.1 J\xc3\xb6rg\r\n", {"550|5.1.1|J\xc3\xb6rg"}},
      {"reply before the error is kept", "250 OK\r\nHTTP/1.1 400\r\n250 lost\r\n", {"250||OK"},
       true},
  };
  for (const Case& c : cases) {
    Parsed p = parse_every_way(c.in);
    EXPECT_EQ(p.replies, c.replies) << c.name;
    EXPECT_EQ(p.failed, c.failed) << c.name << ": " << p.error;
    EXPECT_EQ(p.error.empty(), !c.failed) << c.name;
  }
}

TEST(ReplyParser, LineLimitCountsTheSameInEverySplit) {
  // Without any line end the parser holds at most kMaxLine (+ CR) octets, then gives up.
  std::string endless(ReplyParser::kMaxLine * 3, '2');
  Parsed p = parse_every_way(endless);
  EXPECT_TRUE(p.failed);
  EXPECT_NE(p.error.find("longer than 2048"), std::string::npos) << p.error;
}

TEST(ReplyParser, AtMostKMaxLinesPerReply) {
  std::string ok;
  for (size_t i = 1; i < ReplyParser::kMaxLines; ++i) ok += "250-x\r\n";
  Parsed fine = parse_every_way(ok + "250 end\r\n");
  EXPECT_FALSE(fine.failed) << fine.error;
  ASSERT_EQ(fine.replies.size(), 1u);
  Parsed too_many = parse_every_way(ok + "250-x\r\n250 end\r\n");
  EXPECT_TRUE(too_many.failed);
  EXPECT_TRUE(too_many.replies.empty());
}

TEST(ReplyParser, NothingAfterAnError) {
  ReplyParser p;
  p.feed("garbage\r\n");
  ASSERT_TRUE(p.failed());
  p.feed("250 OK\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_TRUE(p.failed());
}

TEST(ReplyParser, ErrorNamesWhatThePeerSentPrintably) {
  ReplyParser p;
  p.feed(std::string("SSH-2.0-OpenSSH\x01\xff\r\n"));
  EXPECT_EQ(p.error(), "not an SMTP reply line: \"SSH-2.0-OpenSSH??\"");
}

TEST(Reply, TextJoinsLines) {
  ReplyParser p;
  p.feed("550-5.1.1 The mailbox\r\n550 5.1.1 does not exist\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "550 5.1.1 The mailbox does not exist");
  EXPECT_TRUE(r->permanent());
  EXPECT_EQ(make_reply(250, "", "OK").text(), "250 OK");
  EXPECT_EQ(make_reply(250, "2.0.0", "").text(), "250 2.0.0");
}

TEST(Reply, Classes) {
  EXPECT_TRUE(make_reply(250, "", "").positive());
  EXPECT_TRUE(make_reply(354, "", "").positive());
  EXPECT_TRUE(make_reply(421, "", "").transient());
  EXPECT_FALSE(make_reply(421, "", "").positive());
  EXPECT_TRUE(make_reply(554, "", "").permanent());
  EXPECT_FALSE(make_reply(554, "", "").transient());
}

TEST(Reply, FormatRepeatsTheEnhancedCodeAndParsesBack) {
  Reply r;
  r.code = 550;
  r.enhanced = "5.7.1";
  r.lines = {"first", "second", ""};
  EXPECT_EQ(r.format(), "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1\r\n");
  EXPECT_EQ(make_reply(250, "", "").format(), "250\r\n");
  EXPECT_EQ(make_reply(354, "", "Go ahead").format(), "354 Go ahead\r\n");
  for (const Reply& original :
       {r, make_reply(250, "", ""), make_reply(221, "2.0.0", "Bye"), make_reply(354, "", "Go")}) {
    ReplyParser p;
    p.feed(original.format());
    auto back = p.next();
    ASSERT_TRUE(back) << original.format();
    EXPECT_EQ(dump(*back), dump(original));
  }
}

}  // namespace
}  // namespace starling::smtp
