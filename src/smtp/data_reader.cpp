#include "smtp/data_reader.hpp"

#include <cstring>

namespace starling::smtp {

void DataReader::append(char c) { append(std::string_view(&c, 1)); }

void DataReader::append(std::string_view s) {
  size_ += s.size();
  if (size_ > limits_.max_message_size) {
    flag(Problem::kTooBig);
    return;  // keep reading to the end marker, but store nothing more
  }
  if (in_header_ && size_ > limits_.max_header_size) flag(Problem::kHeaderTooBig);
  content_.append(s);
}

void DataReader::end_line() {
  // The header section ends at the first empty line (RFC 5322 §2.1).
  if (in_header_ && line_length_ == 2) in_header_ = false;
  line_length_ = 0;
}

size_t DataReader::consume(std::string_view in) {
  size_t i = 0;
  while (i < in.size() && !done_) {
    if (state_ == State::kText) {
      // Fast path: copy a run of ordinary octets up to the next CR or LF.
      const char* p = in.data() + i;
      size_t n = in.size() - i;
      size_t run = 0;
      while (run < n && p[run] != '\r' && p[run] != '\n') ++run;
      if (run > 0) {
        line_length_ += static_cast<uint32_t>(run);
        if (line_length_ + 2 > limits_.max_line_length) flag(Problem::kLineTooLong);
        append(std::string_view(p, run));
        i += run;
        continue;
      }
    }
    char c = in[i++];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          ++line_length_;
          state_ = State::kDot;
          break;
        }
        state_ = State::kText;
        [[fallthrough]];
      case State::kText:
        if (c == '\r') {
          state_ = State::kCr;
          break;
        }
        // A bare LF is never a line end here; it is kept as text and the message refused.
        if (c == '\n') flag(Problem::kBareLineEnding);
        if (++line_length_ + 2 > limits_.max_line_length) flag(Problem::kLineTooLong);
        append(c);
        break;
      case State::kCr:
        if (c == '\n') {
          line_length_ += 2;
          if (line_length_ > limits_.max_line_length) flag(Problem::kLineTooLong);
          append("\r\n");
          end_line();
          state_ = State::kLineStart;
        } else {
          flag(Problem::kBareLineEnding);
          ++line_length_;
          append('\r');
          state_ = State::kText;
          --i;  // look at c again as text
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
        } else {
          // A transparent dot (RFC 5321 §4.5.2): drop the first dot, keep the rest of the line.
          state_ = State::kText;
          --i;
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          done_ = true;
        } else {
          // ".\r" followed by something else: a bare CR. Keep the dot and the CR as text.
          flag(Problem::kBareLineEnding);
          line_length_ += 1;
          append(".\r");
          state_ = State::kText;
          --i;
        }
        break;
    }
  }
  return i;
}

}  // namespace starling::smtp
