#include "core/message_header.hpp"

#include <cstdint>

#include "core/names.hpp"

namespace starling::core {
namespace {

// The length of the valid UTF-8 sequence at the start of `s`, or 0 if it is not one (overlong
// forms, surrogates and code points past U+10FFFF included).
size_t utf8_sequence(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b = byte(0);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  uint32_t cp = n == 1 ? b : n == 2 ? b & 0x1F : n == 3 ? b & 0x0F : b & 0x07;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// One line of text an administrator can read: see summarize_header.
std::string clean_value(std::string_view raw) {
  while (!raw.empty() && (raw[0] == ' ' || raw[0] == '\t')) raw.remove_prefix(1);
  std::string out;
  while (!raw.empty() && out.size() < kMaxSummaryValue) {
    size_t n = utf8_sequence(raw);
    if (n == 0 || (n == 1 && (static_cast<uint8_t>(raw[0]) < 0x20 || raw[0] == 0x7F))) {
      out += raw[0] == '\t' ? ' ' : '?';
      n = 1;
    } else if (out.size() + n > kMaxSummaryValue) {
      break;  // not half a character
    } else {
      out.append(raw.substr(0, n));
    }
    raw.remove_prefix(n);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

struct Line {
  std::string_view text;  // without its line ending
  size_t next = 0;        // where the next line starts
};

Line line_at(std::string_view content, size_t pos) {
  size_t lf = content.find('\n', pos);
  size_t end = lf == std::string_view::npos ? content.size() : lf;
  size_t text_end = end > pos && content[end - 1] == '\r' ? end - 1 : end;
  return {content.substr(pos, text_end - pos), lf == std::string_view::npos ? end : lf + 1};
}

}  // namespace

HeaderSummary summarize_header(std::string_view content) {
  content = content.substr(0, kMaxHeaderScan);
  HeaderSummary summary;
  bool have_id = false, have_subject = false;
  std::string* value = nullptr;  // the field being collected, while its lines continue
  size_t pos = 0;
  while (pos < content.size() && !(have_id && have_subject && value == nullptr)) {
    Line line = line_at(content, pos);
    pos = line.next;
    if (line.text.empty()) break;  // the end of the header section
    bool continuation = line.text[0] == ' ' || line.text[0] == '\t';
    if (continuation) {
      if (value != nullptr) value->append(line.text.substr(0, kMaxFieldOctets - value->size()));
      if (value != nullptr && value->size() >= kMaxFieldOctets) value = nullptr;
      continue;
    }
    value = nullptr;
    size_t colon = line.text.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.text.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!have_id && iequals(name, "Message-ID")) {
      have_id = true;
      value = &summary.message_id;
    } else if (!have_subject && iequals(name, "Subject")) {
      have_subject = true;
      value = &summary.subject;
    } else {
      continue;
    }
    value->assign(line.text.substr(colon + 1, kMaxFieldOctets));
  }
  summary.message_id = clean_value(summary.message_id);
  summary.subject = clean_value(summary.subject);
  return summary;
}

}  // namespace starling::core
