// The DATA content reader (RFC 5321 §4.1.1.4, §4.5.2): finds the end marker CRLF.CRLF, removes
// dot-stuffing, and enforces the limits while streaming. Only CRLF.CRLF ends the data: a bare LF
// or bare CR anywhere marks the message for refusal, so that "\n.\n" or "\r\n.\n" can never act
// as an end marker a downstream server reads differently (SMTP smuggling, CVE-2023-51764..6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace starling::smtp {

struct DataLimits {
  uint64_t max_message_size = 10 * 1024 * 1024;
  uint32_t max_header_size = 64 * 1024;
  uint32_t max_line_length = 1000;  // octets including CRLF, RFC 5321 §4.5.3.1.6
};

class DataReader {
 public:
  enum class Problem { kNone, kBareLineEnding, kLineTooLong, kTooBig, kHeaderTooBig };

  explicit DataReader(DataLimits limits) : limits_(limits) {}

  // Consumes bytes up to and including the end marker. Returns how many bytes of `in` were
  // used; when done() the rest belongs to the next command.
  size_t consume(std::string_view in);
  bool done() const { return done_; }
  // The first problem seen; content is complete and usable only when kNone.
  Problem problem() const { return problem_; }
  // The message content with CRLF line endings, dot-stuffing removed, the end marker excluded.
  std::string& content() { return content_; }

 private:
  enum class State { kLineStart, kText, kCr, kDot, kDotCr };
  void append(char c);
  void append(std::string_view s);
  void end_line();
  void flag(Problem p) {
    if (problem_ == Problem::kNone) problem_ = p;
  }

  DataLimits limits_;
  State state_ = State::kLineStart;
  std::string content_;
  uint64_t size_ = 0;         // content octets seen, kept counting after kTooBig
  uint32_t line_length_ = 0;  // octets on the current line so far, as transmitted
  bool in_header_ = true;
  bool done_ = false;
  Problem problem_ = Problem::kNone;
};

}  // namespace starling::smtp
