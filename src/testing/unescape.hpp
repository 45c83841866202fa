// Test helper for dialog transcripts: "\r", "\n", "\t" and "\\" escapes in a transcript line
// become the octets they name, so a line can carry bare CR/LF and exact line ends.
#pragma once

#include <string>
#include <string_view>

namespace starling::testing {

inline std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out += n == 'r' ? '\r' : n == 'n' ? '\n' : n == 't' ? '\t' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace starling::testing
