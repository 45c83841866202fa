// One SMTP reply value (RFC 5321 §4.2): a code, an optional enhanced status code (RFC 3463) and
// one or more text lines. The same type is formatted by the server, parsed by the client, the
// probe and the load generator. ReplyParser is a push parser with hard limits, because the
// bytes come from a peer that may be hostile: it never holds more than kMaxLine octets of a line
// or kMaxLines lines of one reply.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace starling::smtp {

struct Reply {
  int code = 0;                    // 200..599
  std::string enhanced;            // "2.1.5", or empty when the peer sent none
  std::vector<std::string> lines;  // text after "250-"/"250 " and after the enhanced code

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "250 2.1.5 Recipient OK" on one line: the lines joined with a space (for logs, reports).
  std::string text() const;
  // Wire form: "250-first\r\n250 2.0.0 last\r\n"; the enhanced code is repeated on every line.
  std::string format() const;
};

// A reply made here, not by the peer (timeouts, lost connections, local checks).
Reply make_reply(int code, std::string enhanced, std::string text);

class ReplyParser {
 public:
  static constexpr size_t kMaxLine = 2048;   // RFC 5321 §4.5.3.1.5 says 512; be lenient, bounded
  static constexpr size_t kMaxLines = 100;

  // Consumes bytes; complete replies become available through next().
  void feed(std::string_view bytes);
  std::optional<Reply> next();
  // The peer broke the syntax (not a 3-digit code, mixed codes, line or reply too long, bare LF
  // is accepted as a line end). After an error no more replies are produced.
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  void take_line(std::string_view line);

  std::string line_;
  Reply partial_;
  std::vector<Reply> ready_;
  size_t ready_pos_ = 0;
  std::string error_;
};

}  // namespace starling::smtp
