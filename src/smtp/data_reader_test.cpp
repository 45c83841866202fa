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
      // A refused message keeps nothing: its memory goes back at once.
      {"bare LF dot LF is no end", "a\n.\nb\r\n.\r\n", true, P::kBareLineEnding, "", 10},
      {"CRLF dot LF is no end", "a\r\n.\nb\r\n.\r\n", true, P::kBareLineEnding, "", 11},
      {"bare CR", "a\rb\r\n.\r\n", true, P::kBareLineEnding, "", 8},
      {"unfinished", "a\r\n.", false, P::kNone, "a\r\n", 4},
      {"line of 998 + CRLF", std::string(998, 'x') + "\r\n.\r\n", true, P::kNone,
       std::string(998, 'x') + "\r\n", 1003},
      {"line of 999 + CRLF", std::string(999, 'x') + "\r\n.\r\n", true, P::kLineTooLong, "", 1004},
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

// BDAT: no end marker and no dot-stuffing, the same line checks, state kept across chunks.
TEST(DataReader, ChunkedFraming) {
  using P = DataReader::Problem;
  DataReader r(DataLimits{}, nullptr, 0, DataReader::Framing::kChunked);
  EXPECT_EQ(r.consume(".\r\n..x\r"), 7u);
  EXPECT_EQ(r.consume("\nend\r\n"), 6u);
  r.finish();
  EXPECT_EQ(r.problem(), P::kNone);
  EXPECT_EQ(r.content(), ".\r\n..x\r\nend\r\n");
  EXPECT_EQ(r.received(), 13u);

  DataReader cr(DataLimits{}, nullptr, 0, DataReader::Framing::kChunked);
  cr.consume("abc\r");
  cr.finish();
  EXPECT_EQ(cr.problem(), P::kBareLineEnding);
  DataReader lf(DataLimits{}, nullptr, 0, DataReader::Framing::kChunked);
  lf.consume("a\n.\nb\r\n");
  EXPECT_EQ(lf.problem(), P::kBareLineEnding);
  DataReader big(DataLimits{.max_message_size = 5}, nullptr, 0, DataReader::Framing::kChunked);
  big.expect(6);
  EXPECT_EQ(big.problem(), P::kTooBig);
}

// The budget counts the buffer, gives it back on a problem, and refuses what it cannot cover.
TEST(DataReader, MemoryBudget) {
  auto budget = std::make_shared<MemoryBudget>(10000);
  DataReader small(DataLimits{}, budget, 100);
  EXPECT_EQ(small.problem(), DataReader::Problem::kNone);
  EXPECT_EQ(budget->used(), 100u + DataReader::kHeaderRoom);
  DataReader too_much(DataLimits{}, budget, 9000);
  EXPECT_EQ(too_much.problem(), DataReader::Problem::kNoMemory);
  EXPECT_EQ(budget->used(), 100u + DataReader::kHeaderRoom);
  small.consume(std::string(500, 'x') + "\r\n");  // outgrows its 100 octets: needs more
  EXPECT_EQ(small.problem(), DataReader::Problem::kNone);
  small.consume("bare\nLF\r\n");
  EXPECT_EQ(small.problem(), DataReader::Problem::kBareLineEnding);
  EXPECT_EQ(budget->used(), 0u);
  EXPECT_TRUE(small.content().empty());
}

// An announced size is a hint: it claims at most 256 KiB of the budget before the octets come,
// and the buffer then grows toward it, ending at the announced size.
TEST(DataReader, AnnouncedSizeClaimsOnlyAFirstBuffer) {
  auto budget = std::make_shared<MemoryBudget>(64 << 20);
  DataReader r(DataLimits{.max_message_size = 32 << 20}, budget, 10'000'000);
  EXPECT_EQ(r.problem(), DataReader::Problem::kNone);
  EXPECT_LE(budget->used(), (256u << 10) + DataReader::kHeaderRoom);
  std::string line(998, 'x');
  line += "\r\n";
  std::string body = "Subject: big\r\n\r\n";
  while (body.size() + line.size() <= 10'000'000) body += line;
  r.consume(body + ".\r\n");
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.problem(), DataReader::Problem::kNone);
  EXPECT_TRUE(r.content() == body);
  EXPECT_LE(r.content().capacity(), 10'000'000u + DataReader::kHeaderRoom);
  EXPECT_EQ(budget->used(), r.content().capacity());
}

// Many small BDAT chunks grow the buffer by doubling, not chunk by chunk (which would copy the
// whole content once per chunk).
TEST(DataReader, ManySmallChunksGrowByDoubling) {
  auto budget = std::make_shared<MemoryBudget>(64 << 20);
  std::string chunk = std::string(98, 'y') + "\r\n";
  DataReader r(DataLimits{}, budget, chunk.size(), DataReader::Framing::kChunked);
  r.consume("Subject: chunks\r\n\r\n");
  size_t growths = 0, capacity = r.content().capacity();
  for (int i = 0; i < 20000; ++i) {
    r.expect(chunk.size());
    r.consume(chunk);
    if (r.content().capacity() != capacity) {
      ++growths;
      capacity = r.content().capacity();
    }
  }
  r.finish();
  EXPECT_EQ(r.problem(), DataReader::Problem::kNone);
  EXPECT_EQ(r.content().size(), 20000 * chunk.size() + 19);
  EXPECT_LE(growths, 20u);
}

}  // namespace
}  // namespace starling::smtp
