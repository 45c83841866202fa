#include "smtp/reply.hpp"

#include <utility>

namespace starling::smtp {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A printable excerpt of what the peer sent, for error messages that end up in logs and NDRs.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

// Length of an RFC 3463 enhanced status code "class.subject.detail" at the start of `text`
// (subject and detail 1-3 digits), followed by a space or the end of the line; 0 when there is
// none. The class must repeat the reply code's first digit (RFC 3463 §2, RFC 2034 §4): a text
// such as "1.2.3 apples" after a 250 is not taken for a code.
size_t enhanced_length(std::string_view text, char code_class) {
  if (code_class != '2' && code_class != '4' && code_class != '5') return 0;  // no 3.X.X
  if (text.size() < 5 || text[0] != code_class || text[1] != '.') return 0;
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
    size_t digits = i - start;
    if (digits < 1 || digits > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string Reply::text() const {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) out += " " + enhanced;
  for (const std::string& line : lines) {
    if (!line.empty()) out += " " + line;
  }
  return out;
}

std::string Reply::format() const {
  std::string out;
  const std::string code_text = std::to_string(code);
  size_t n = lines.empty() ? 1 : lines.size();
  for (size_t i = 0; i < n; ++i) {
    std::string_view line = lines.empty() ? std::string_view{} : std::string_view(lines[i]);
    out += code_text;
    bool last = i + 1 == n;
    if (enhanced.empty() && line.empty()) {
      // "250" alone is a valid last line; a continuation still needs its hyphen.
      if (!last) out += '-';
    } else {
      out += last ? ' ' : '-';
      if (!enhanced.empty()) {
        out += enhanced;
        if (!line.empty()) out += ' ';
      }
      out += line;
    }
    out += "\r\n";
  }
  return out;
}

Reply make_reply(int code, std::string enhanced, std::string text) {
  Reply r;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.lines.push_back(std::move(text));
  return r;
}

void ReplyParser::feed(std::string_view bytes) {
  while (!bytes.empty() && !failed()) {
    size_t lf = bytes.find('\n');
    std::string_view piece = bytes.substr(0, lf);
    // Never hold more than kMaxLine octets (plus the CR of a CRLF): a peer that sends an endless
    // line is cut off here, not when memory runs out.
    size_t limit = kMaxLine + 1;
    if (line_.size() + piece.size() > limit) {
      std::string head = line_.substr(0, 65);
      head += piece.substr(0, 65 - head.size());
      error_ = "reply line longer than " + std::to_string(kMaxLine) + " octets: " + excerpt(head);
      line_.clear();
      return;
    }
    line_.append(piece);
    if (lf == std::string_view::npos) return;
    bytes.remove_prefix(lf + 1);
    // CRLF is the line end (RFC 5321 §2.3.8); a bare LF is accepted too, since a reply is only
    // read by us and no line boundary of ours depends on it.
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.size() > kMaxLine) {
      error_ = "reply line longer than " + std::to_string(kMaxLine) + " octets: " + excerpt(line_);
      line_.clear();
      return;
    }
    std::string line = std::exchange(line_, {});
    take_line(line);
  }
}

// One complete line "DDD-text", "DDD text" or "DDD" (RFC 5321 §4.2: the last line has a space
// or nothing after the code, every other line a hyphen, all lines the same code).
void ReplyParser::take_line(std::string_view line) {
  if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
      !is_digit(line[2]) || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    // RFC 5321 §4.2.1: the first digit is 2..5 (SMTP has no 1yz replies).
    error_ = "not an SMTP reply line: \"" + excerpt(line) + "\"";
    return;
  }
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  bool last = line.size() == 3 || line[3] == ' ';
  std::string_view text = line.size() > 3 ? line.substr(4) : std::string_view{};
  if (partial_.lines.empty()) {
    partial_.code = code;
  } else if (code != partial_.code) {
    error_ = "reply code changed from " + std::to_string(partial_.code) + " to " +
             std::to_string(code) + " within one reply";
    return;
  }
  if (partial_.lines.size() >= kMaxLines) {
    error_ = "reply longer than " + std::to_string(kMaxLines) + " lines";
    return;
  }
  // The enhanced code is repeated on every line (RFC 2034 §4); keep the first, strip them all.
  if (size_t n = enhanced_length(text, line[0])) {
    if (partial_.enhanced.empty()) partial_.enhanced = std::string(text.substr(0, n));
    text.remove_prefix(n);
    if (!text.empty()) text.remove_prefix(1);
  }
  // The text may end up in our own replies, NDRs and logs: no control characters (a stray CR
  // could split a line there). UTF-8 (RFC 6531 §3.7.4) passes.
  std::string& kept = partial_.lines.emplace_back(text);
  for (char& c : kept) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
  }
  if (last) ready_.push_back(std::exchange(partial_, {}));
}

std::optional<Reply> ReplyParser::next() {
  if (ready_pos_ == ready_.size()) {
    ready_.clear();
    ready_pos_ = 0;
    return std::nullopt;
  }
  return std::move(ready_[ready_pos_++]);
}

}  // namespace starling::smtp
