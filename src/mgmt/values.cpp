#include "mgmt/values.hpp"

#include <charconv>
#include <cstring>
#include <ctime>

#include "core/names.hpp"
#include "core/time_format.hpp"

namespace starling::mgmt {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

Error bad(std::string_view property, std::string_view text, std::string_view expected) {
  return make_error(std::string(property) + ": '" + std::string(text) + "' is not " +
                    std::string(expected));
}

}  // namespace

std::optional<NumericKind> numeric_kind(std::string_view property) {
  struct Entry {
    std::string_view name;
    NumericKind kind;
  };
  static constexpr Entry kTable[] = {
      // Durations in seconds (connectors). The transport server's durations are shown as
      // "[d.]hh:mm:ss" text already.
      {"ConnectionTimeout", NumericKind::kDuration},
      {"ConnectionInactivityTimeout", NumericKind::kDuration},
      // Sizes in bytes.
      {"MaxMessageSize", NumericKind::kSize},
      {"MaxHeaderSize", NumericKind::kSize},
      {"MessageTrackingLogMaxDirectorySize", NumericKind::kSize},
      {"MessageTrackingLogMaxFileSize", NumericKind::kSize},
      {"Size", NumericKind::kSize},  // a queued message (get-message)
      // Plain numbers: counts, limits, ports, identifiers, key sizes in bits.
      {"MaxRecipientsPerMessage", NumericKind::kPlain},
      {"MaxInboundConnection", NumericKind::kPlain},
      {"MaxInboundConnectionPerSource", NumericKind::kPlain},
      {"MaxProtocolErrors", NumericKind::kPlain},
      {"Port", NumericKind::kPlain},
      {"SmtpMaxMessagesPerConnection", NumericKind::kPlain},
      {"TransientFailureRetryCount", NumericKind::kPlain},
      {"MaxOutboundConnections", NumericKind::kPlain},
      {"MaxPerDomainOutboundConnections", NumericKind::kPlain},
      {"PoisonThreshold", NumericKind::kPlain},
      {"MessageCount", NumericKind::kPlain},  // queues and messages (get-queue, get-message)
      {"RetryCount", NumericKind::kPlain},
      {"IncomingRate", NumericKind::kPlain},
      {"OutgoingRate", NumericKind::kPlain},
      {"TotalBytes", NumericKind::kPlain},  // message tracking entries
      {"RecipientCount", NumericKind::kPlain},
      {"EventLogMaxCount", NumericKind::kPlain},
      {"PublicKeySize", NumericKind::kPlain},
      {"MemberCount", NumericKind::kPlain},
      {"Index", NumericKind::kPlain},
      {"EventId", NumericKind::kPlain},
  };
  for (const auto& e : kTable) {
    if (e.name == property) return e.kind;
  }
  return std::nullopt;
}

std::string option_key(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '-' || c == '_') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<bool> parse_bool(std::string_view property, std::string_view text) {
  std::string t = core::to_lower(trim(text));
  if (t == "true" || t == "$true" || t == "yes" || t == "1") return true;
  if (t == "false" || t == "$false" || t == "no" || t == "0") return false;
  return bad(property, text, "true or false");
}

Result<int64_t> parse_integer(std::string_view property, std::string_view text) {
  std::string t = trim(text);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc{} || p != t.data() + t.size() || v < 0) {
    return bad(property, text, "a whole number");
  }
  return v;
}

Result<uint64_t> parse_size(std::string_view property, std::string_view text) {
  std::string t = core::to_lower(trim(text));
  uint64_t unit = 1;
  for (auto [suffix, mult] : {std::pair{"kb", 1024ull}, {"mb", 1024ull * 1024}, {"gb", 1024ull * 1024 * 1024},
                              {"b", 1ull}}) {
    if (t.size() > std::strlen(suffix) && t.ends_with(suffix)) {
      unit = mult;
      t = trim(t.substr(0, t.size() - std::strlen(suffix)));
      break;
    }
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc{} || p != t.data() + t.size() || v == 0) {
    return bad(property, text, "a size such as 10MB, 512KB or a number of bytes");
  }
  return v * unit;
}

Result<int64_t> parse_seconds(std::string_view property, std::string_view text) {
  std::string t = trim(text);
  // [d.]hh:mm:ss, as Exchange shows timeouts.
  if (t.find(':') != std::string::npos) {
    int64_t days = 0, h = 0, m = 0, s = 0;
    char dot = 0;
    if (std::sscanf(t.c_str(), "%ld%c%ld:%ld:%ld", &days, &dot, &h, &m, &s) == 5 && dot == '.') {
    } else if (std::sscanf(t.c_str(), "%ld:%ld:%ld", &h, &m, &s) == 3) {
      days = 0;
    } else {
      return bad(property, text, "a duration such as 00:05:00 or 300");
    }
    if (m > 59 || s > 59 || h < 0) return bad(property, text, "a duration such as 00:05:00 or 300");
    return ((days * 24 + h) * 60 + m) * 60 + s;
  }
  auto v = parse_integer(property, t);
  if (!v || *v == 0) return bad(property, text, "a duration such as 00:05:00 or 300");
  return *v;
}

std::vector<std::string> as_list(const Json& value) {
  std::vector<std::string> raw;
  if (value.is_array()) {
    for (const auto& v : value) raw.push_back(v.get<std::string>());
  } else if (value.is_string()) {
    raw.push_back(value.get<std::string>());
  }
  std::vector<std::string> out;
  for (const auto& r : raw) {
    size_t start = 0;
    while (start <= r.size()) {
      size_t comma = r.find(',', start);
      std::string item = trim(std::string_view(r).substr(start, comma == std::string::npos ? r.npos : comma - start));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

std::string as_string(const Json& value) {
  if (value.is_array()) return value.empty() ? "" : value.back().get<std::string>();
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

Result<int64_t> parse_time(std::string_view text, std::chrono::system_clock::time_point now) {
  std::string t = trim(text);
  int64_t now_s = std::chrono::system_clock::to_time_t(now);
  if (!t.empty() && std::isdigit(static_cast<unsigned char>(t.front())) &&
      (t.back() == 'm' || t.back() == 'h' || t.back() == 'd')) {
    auto n = parse_integer("--since", t.substr(0, t.size() - 1));
    if (!n) return std::move(n).take_error();
    int64_t mult = t.back() == 'm' ? 60 : t.back() == 'h' ? 3600 : 86400;
    return now_s - *n * mult;
  }
  std::tm tm{};
  const char* end = strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    tm = {};
    end = strptime(t.c_str(), "%Y-%m-%d", &tm);
  }
  if (end && (*end == 0 || std::string_view(end) == "Z")) return static_cast<int64_t>(timegm(&tm));
  auto n = parse_integer("--since", t);
  if (n) return *n;
  return make_error("--since: '" + t + "' is not a time (2026-11-25T17:00:00Z, 2026-11-25, 90m, 2h, 3d)");
}

std::string to_base64(const std::string& bytes) {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kChars[(n >> k) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    out += kChars[(n >> 18) & 63];
    out += kChars[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kChars[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> from_base64(const std::string& text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' || c == '\n' || c == '\r') continue;
    else return make_error("malformed file content in the request");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Result<Credential> parse_credential_file(std::string_view bytes) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t nl = bytes.find('\n', start);
    std::string line(bytes.substr(start, nl == std::string_view::npos ? bytes.npos : nl - start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return Credential{};
  if (lines.size() != 2 || lines[0].empty() || lines[1].empty()) {
    return make_error("the credential file must hold two lines: the user name, then the password");
  }
  for (const auto& l : lines) {
    if (l.find('\0') != std::string::npos) return make_error("the credential file cannot contain NUL bytes");
  }
  return Credential{lines[0], lines[1]};
}

Result<std::string> parse_password_file(std::string_view bytes) {
  size_t nl = bytes.find('\n');
  std::string line(bytes.substr(0, nl));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (nl != std::string_view::npos) {
    for (char c : bytes.substr(nl + 1)) {
      if (c != '\n' && c != '\r') return make_error("the password file must hold one line: the password");
    }
  }
  if (line.find('\0') != std::string::npos) return make_error("the password file cannot contain NUL bytes");
  return line;
}

std::string format_time(int64_t unix_seconds) { return core::format_iso8601_seconds(unix_seconds); }

}  // namespace starling::mgmt
