// Edge cases of the DATA reader: where data ends, what is unstuffed, what is refused.
#include "smtp/data_reader.hpp"

#include <gtest/gtest.h>

namespace starling::smtp {
namespace {

struct Case {
  const char* name;
  std::string in;
  bool done;
  DataReader::Problem problem;
  std::string content;
  size_t consumed;
};

TEST(DataReader, Table) {
  using P = DataReader::Problem;
  std::vector<Case> cases{
      {"empty message", ".\r\n", true, P::kNone, "", 3},
      {"one line", "a\r\n.\r\n", true, P::kNone, "a\r\n", 6},
      {"stops at marker", "a\r\n.\r\nNOOP\r\n", true, P::kNone, "a\r\n", 6},
      {"stuffed dot", "..\r\n...x\r\n.\r\n", true, P::kNone, ".\r\n..x\r\n", 13},
      {"dot then text", ".x\r\n.\r\n", true, P::kNone, "x\r\n", 7},
      {"bare LF dot LF is no end", "a\n.\nb\r\n.\r\n", true, P::kBareLineEnding, "a\n.\nb\r\n", 10},
      {"CRLF dot LF is no end", "a\r\n.\nb\r\n.\r\n", true, P::kBareLineEnding, "a\r\n\nb\r\n", 11},
      {"bare CR", "a\rb\r\n.\r\n", true, P::kBareLineEnding, "a\rb\r\n", 8},
      {"unfinished", "a\r\n.", false, P::kNone, "a\r\n", 4},
      {"line of 998 + CRLF", std::string(998, 'x') + "\r\n.\r\n", true, P::kNone,
       std::string(998, 'x') + "\r\n", 1003},
      {"line of 999 + CRLF", std::string(999, 'x') + "\r\n.\r\n", true, P::kLineTooLong,
       std::string(999, 'x') + "\r\n", 1004},
  };
  for (const Case& c : cases) {
    for (bool bytewise : {false, true}) {
      DataReader r(DataLimits{});
      size_t consumed = 0;
      if (bytewise) {
        for (size_t i = 0; i < c.in.size() && !r.done(); ++i) consumed += r.consume(c.in.substr(i, 1));
      } else {
        consumed = r.consume(c.in);
      }
      EXPECT_EQ(r.done(), c.done) << c.name;
      EXPECT_EQ(r.problem(), c.problem) << c.name;
      EXPECT_EQ(r.content(), c.content) << c.name;
      EXPECT_EQ(consumed, c.consumed) << c.name << (bytewise ? " bytewise" : "");
    }
  }
}

TEST(DataReader, SizeAndHeaderLimits) {
  DataReader big(DataLimits{.max_message_size = 5});
  big.consume("123\r\n456\r\n.\r\n");
  EXPECT_TRUE(big.done());
  EXPECT_EQ(big.problem(), DataReader::Problem::kTooBig);

  DataReader header(DataLimits{.max_header_size = 10});
  header.consume("A: 1\r\n\r\nbody longer than ten\r\n.\r\n");
  EXPECT_EQ(header.problem(), DataReader::Problem::kNone);
  DataReader long_header(DataLimits{.max_header_size = 10});
  long_header.consume("A: 123456789\r\n\r\nb\r\n.\r\n");
  EXPECT_EQ(long_header.problem(), DataReader::Problem::kHeaderTooBig);
}

}  // namespace
}  // namespace starling::smtp
