// What the fuzz targets share: a broken promise of the code under test aborts with a message,
// so that libFuzzer reports it like a crash and saves the input; inputs are split into turns
// and pieces deterministically, so that the same input always runs the same way. Nothing here
// keeps state between inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace starling::fuzz {

// Prints `what` and the offending bytes (escaped, cut at 300), then aborts.
inline std::string escaped(std::string_view bytes) {
  std::string shown;
  for (unsigned char c : bytes) {
    if (c == '\r') shown += "\\r";
    else if (c == '\n') shown += "\\n";
    else if (c == '\\') shown += "\\\\";
    else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      shown += hex;
    } else {
      shown += static_cast<char>(c);
    }
  }
  return shown;
}

[[noreturn]] inline void fail(const char* what, std::string_view bytes = {}) {
  std::fprintf(stderr, "\nFUZZ CHECK FAILED: %s\n  bytes: \"%s\"%s\n", what,
               escaped(bytes.substr(0, 300)).c_str(), bytes.size() > 300 ? " ..." : "");
  std::abort();
}

inline void check(bool ok, const char* what, std::string_view bytes = {}) {
  if (!ok) fail(what, bytes);
}

// Two runs that must agree: shows both from a little before where they part.
inline void check_same(std::string_view whole, std::string_view split, const char* what) {
  if (whole == split) return;
  size_t at = 0;
  while (at < whole.size() && at < split.size() && whole[at] == split[at]) ++at;
  size_t from = at > 200 ? at - 200 : 0;
  std::fprintf(stderr, "\nFUZZ CHECK FAILED: %s\n  whole: \"%s\"\n  split: \"%s\"\n", what,
               escaped(whole.substr(from, 400)).c_str(), escaped(split.substr(from, 400)).c_str());
  std::abort();
}

// FUZZ_SHOW=1 in the environment: a target prints what a run did (for writing seeds).
inline void show(const char* label, std::string_view text) {
  if (std::getenv("FUZZ_SHOW")) std::fprintf(stderr, "--- %s\n%s\n", label, text.data() ? std::string(text).c_str() : "");
}

// Every CR is followed by LF and every LF follows a CR.
inline bool crlf_only(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

inline bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

inline bool has_line_end(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// RFC 3629 §4, written independently of the code under test so that it can judge it.
inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
             : c >= 0xF0 && c <= 0xF4 ? 3 : 99;
    if (n == 99 || s.size() - i <= n) return false;
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    static constexpr uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// The peer's turns: the input split at each "=NEXT=". Between two turns the driver acts (the
// TLS handshake, the next message); within one the bytes are just what arrives.
inline constexpr std::string_view kNextTurn = "=NEXT=";

inline std::vector<std::string_view> turns(std::string_view in) {
  std::vector<std::string_view> out;
  for (size_t at; (at = in.find(kNextTurn)) != std::string_view::npos;) {
    out.push_back(in.substr(0, at));
    in.remove_prefix(at + kNextTurn.size());
  }
  out.push_back(in);
  return out;
}

// Sizes of the pieces a turn arrives in: 1 to 64 octets, from a seed the input carries
// (xorshift64: small, and the same on every machine), or each turn whole.
class Pieces {
 public:
  explicit Pieces(uint8_t seed) : state_(0x9E3779B97F4A7C15ull * (seed + 1u)) {}
  static Pieces whole() {
    Pieces p(0);
    p.whole_ = true;
    return p;
  }
  size_t next() {
    if (whole_) return SIZE_MAX;
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return 1 + state_ % 64;
  }

 private:
  bool whole_ = false;
  uint64_t state_;
};

// An input: its first line carries the options as hex digits ("0105a3\n"), the rest is the
// peer's bytes. Text either way, so that seeds read in a diff. A character that is no hex digit
// counts as its low four bits and missing digits as 0; without a line end in the first 17
// octets there are no options and everything is the peer's.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : rest(reinterpret_cast<const char*>(data), size) {
    size_t nl = rest.substr(0, 17).find('\n');
    if (nl == std::string_view::npos) return;
    options_ = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
  }
  // The next `digits` hex digits of the option line.
  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      unsigned char c = options_.empty() ? '0' : static_cast<unsigned char>(options_.front());
      if (!options_.empty()) options_.remove_prefix(1);
      uint32_t nibble = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c & 15u;
      v = v << 4 | nibble;
    }
    return v;
  }
  std::string_view rest;

 private:
  std::string_view options_;
};

}  // namespace starling::fuzz
