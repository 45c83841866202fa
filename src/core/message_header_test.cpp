// summarize_header: the Message-ID and Subject an administrator sees, from hostile content.
#include "core/message_header.hpp"

#include <gtest/gtest.h>

#include <string>

namespace starling::core {
namespace {

TEST(SummarizeHeader, FindsBothFieldsWhateverTheirCase) {
  HeaderSummary s = summarize_header(
      "From: a@example.org\r\nsubject:  Quarterly report \r\nMESSAGE-id: <1@example.org>\r\n"
      "\r\nbody\r\n");
  EXPECT_EQ(s.message_id, "<1@example.org>");
  EXPECT_EQ(s.subject, "Quarterly report");
}

TEST(SummarizeHeader, UnfoldsContinuationLinesAndTurnsTabsIntoSpaces) {
  HeaderSummary s = summarize_header("Subject: one\r\n\ttwo\r\n three\r\nTo: x@y\r\n\r\n");
  EXPECT_EQ(s.subject, "one two three");
}

TEST(SummarizeHeader, TakesOnlyTheFirstOfEachField) {
  HeaderSummary s =
      summarize_header("Subject: first\r\nMessage-ID: <a@x>\r\nSubject: second\r\n"
                       "Message-ID: <b@x>\r\n\r\n");
  EXPECT_EQ(s.subject, "first");
  EXPECT_EQ(s.message_id, "<a@x>");
}

TEST(SummarizeHeader, StopsAtTheEndOfTheHeaderSection) {
  HeaderSummary s = summarize_header("To: x@y\r\n\r\nSubject: in the body\r\n");
  EXPECT_EQ(s.subject, "");
  EXPECT_EQ(s.message_id, "");
  EXPECT_EQ(summarize_header("").subject, "");
}

TEST(SummarizeHeader, AcceptsBareLineFeedsAndSpaceBeforeTheColon) {
  HeaderSummary s = summarize_header("Subject : lf only\nMessage-ID:<c@x>\n\n");
  EXPECT_EQ(s.subject, "lf only");
  EXPECT_EQ(s.message_id, "<c@x>");
}

TEST(SummarizeHeader, LeavesEncodedWordsAndValidUtf8AsTheyAre) {
  HeaderSummary s = summarize_header("Subject: =?utf-8?q?caf=C3=A9?= caf\xC3\xA9 \xE2\x82\xAC\r\n\r\n");
  EXPECT_EQ(s.subject, "=?utf-8?q?caf=C3=A9?= caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(SummarizeHeader, ReplacesControlCharactersAndInvalidUtf8) {
  std::string content = "Subject: a\x1b[2Jb\x7f";
  content += std::string("c\0d", 3);
  content += " \xFF\xC0\xAF \xED\xA0\x80 \xC3\r\n\r\n";  // bad byte, overlong, surrogate, cut
  HeaderSummary s = summarize_header(content);
  EXPECT_EQ(s.subject, "a?[2Jb?c?d ??? ??? ?");
}

TEST(SummarizeHeader, BoundsWhatItReadsOfAFieldAndWhatItReturns) {
  std::string content = "Subject: " + std::string(5000, 'x');
  for (int i = 0; i < 100; ++i) content += "\r\n " + std::string(500, 'y');
  content += "\r\nMessage-ID: <after@x>\r\n\r\n";
  HeaderSummary s = summarize_header(content);
  EXPECT_EQ(s.subject, std::string(kMaxSummaryValue, 'x'));
  EXPECT_EQ(s.message_id, "<after@x>");
}

TEST(SummarizeHeader, CutsOnACharacterBoundary) {
  std::string subject = "a";
  while (subject.size() < 2 * kMaxSummaryValue) subject += "\xE2\x82\xAC";
  HeaderSummary s = summarize_header("Subject: " + subject + "\r\n\r\n");
  EXPECT_LE(s.subject.size(), kMaxSummaryValue);
  EXPECT_EQ(s.subject.size(), 1 + (kMaxSummaryValue - 1) / 3 * 3);
}

TEST(SummarizeHeader, LooksOnlyAtTheFirst64KiB) {
  std::string content;
  while (content.size() < kMaxHeaderScan) content += "X-Filler: " + std::string(80, 'f') + "\r\n";
  content += "Subject: too far\r\n\r\n";
  EXPECT_EQ(summarize_header(content).subject, "");
}

}  // namespace
}  // namespace starling::core
