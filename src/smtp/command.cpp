#include "smtp/command.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace starling::smtp {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::toupper(x) == std::toupper(y);
         });
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_atext(unsigned char c) {
  if (c >= 0x80) return true;  // UTF-8 (RFC 6531); the session decides whether it is allowed
  if (std::isalnum(c)) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
         std::string_view::npos;
}

bool valid_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// RFC 5321 §4.1.2 Quoted-string: qtextSMTP and quoted-pairSMTP are printable ASCII (plus
// UTF-8 under RFC 6531); a backslash never escapes a control character such as CR.
bool valid_quoted_string(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (++i + 1 >= s.size()) return false;
      c = static_cast<unsigned char>(s[i]);
      if (c < 32 || c > 126) return false;
      continue;
    }
    if (c == '"' || c < 32 || c == 127) return false;
  }
  return true;
}

template <typename Pred>
bool all_chars(std::string_view s, Pred ok) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return ok(static_cast<unsigned char>(c)); });
}

// Let-dig [Ldh-str] (RFC 5321 §4.1.2), with '_' tolerated when `underscore`.
bool valid_ldh(std::string_view label, bool underscore) {
  auto letdig = [&](unsigned char c) { return std::isalnum(c) || (underscore && c == '_'); };
  if (label.empty() || label.size() > 63) return false;
  if (!letdig(label.front()) || !letdig(label.back())) return false;
  return all_chars(label, [&](unsigned char c) { return c < 0x80 && (letdig(c) || c == '-'); });
}

// RFC 5321 §4.1.3: [IPv4], [IPv6:address] or [tag:dcontent]. inet_pton reads a C string, so
// the characters are checked first (a NUL would end the address early).
bool valid_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view inner = s.substr(1, s.size() - 2);
  unsigned char bytes[16];
  if (all_chars(inner, [](unsigned char c) { return std::isdigit(c) || c == '.'; })) {
    return inet_pton(AF_INET, std::string(inner).c_str(), bytes) == 1;
  }
  size_t colon = inner.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view tag = inner.substr(0, colon);
  std::string_view rest = inner.substr(colon + 1);
  if (iequal(tag, "IPv6")) {
    auto ipv6_char = [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; };
    return all_chars(rest, ipv6_char) && inet_pton(AF_INET6, std::string(rest).c_str(), bytes) == 1;
  }
  auto dcontent = [](unsigned char c) { return (c >= 33 && c <= 90) || (c >= 94 && c <= 126); };
  return valid_ldh(tag, false) && !rest.empty() && all_chars(rest, dcontent);
}

// A domain or an address literal, its labels checked by `label_ok`.
template <typename LabelOk>
bool valid_name(std::string_view d, LabelOk label_ok) {
  if (d.empty() || d.size() > 255) return false;
  if (d.front() == '[') return valid_address_literal(d);
  size_t start = 0;
  while (true) {
    size_t end = d.find('.', start);
    if (!label_ok(d.substr(start, end == std::string_view::npos ? end : end - start))) return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

// The domain of an address: U-labels allowed (RFC 6531; the session decides whether they are).
bool valid_domain(std::string_view d) {
  return valid_name(d, [](std::string_view label) {
    return !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
           all_chars(label, [](unsigned char c) { return std::isalnum(c) || c == '-' || c >= 0x80; });
  });
}

}  // namespace

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = at(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The lead byte says how many continuation bytes follow and what the first of them may be
    // (RFC 3629 §4): the narrowed ranges exclude overlongs, surrogates and > U+10FFFF.
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // cut short
    if (at(i + 1) < lo || at(i + 1) > hi) return false;
    for (size_t k = 2; k <= n; ++k) {
      if (at(i + k) < 0x80 || at(i + k) > 0xBF) return false;
    }
    i += n + 1;
  }
  return true;
}

bool valid_helo_argument(std::string_view s) {
  return valid_name(s, [](std::string_view label) { return valid_ldh(label, true); });
}

bool has_non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

Command parse_command(std::string_view line) {
  static constexpr std::array<std::pair<std::string_view, Verb>, 14> kVerbs{{
      {"EHLO", Verb::kEhlo}, {"HELO", Verb::kHelo}, {"MAIL", Verb::kMail},
      {"RCPT", Verb::kRcpt}, {"DATA", Verb::kData}, {"BDAT", Verb::kBdat},
      {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop}, {"QUIT", Verb::kQuit},
      {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn}, {"HELP", Verb::kHelp},
      {"STARTTLS", Verb::kStartTls}, {"AUTH", Verb::kAuth},
  }};
  // HTTP request lines and headers sent to an SMTP port: a browser tricked into cross-protocol
  // requests (the attack Postfix and chasquid also cut short).
  static constexpr std::array<std::string_view, 9> kHttpVerbs{
      "GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  size_t space = line.find(' ');
  std::string_view word = line.substr(0, space);
  Command cmd;
  cmd.argument = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  for (auto [name, verb] : kVerbs) {
    if (iequal(word, name)) {
      cmd.verb = verb;
      return cmd;
    }
  }
  for (std::string_view http : kHttpVerbs) {
    if (word == http && space != std::string_view::npos) cmd.verb = Verb::kHttp;
  }
  if (iequal(word, "Host:") || iequal(word, "User-Agent:")) cmd.verb = Verb::kHttp;
  return cmd;
}

std::optional<PathArgument> parse_path_argument(std::string_view arg, std::string_view kind,
                                                std::string& error) {
  // "FROM:" / "TO:", case-insensitive; one space after the colon is tolerated (common clients).
  if (arg.size() <= kind.size() || !iequal(arg.substr(0, kind.size()), kind) ||
      arg[kind.size()] != ':') {
    error = "Syntax: " + std::string(kind == "FROM" ? "MAIL FROM:<address>" : "RCPT TO:<address>");
    return std::nullopt;
  }
  arg.remove_prefix(kind.size() + 1);
  if (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  if (arg.empty() || arg.front() != '<') {
    error = "Address must be enclosed in <>";
    return std::nullopt;
  }
  // Find the closing '>' outside a quoted local part.
  size_t close = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 1; i < arg.size(); ++i) {
    if (quoted && arg[i] == '\\') {
      ++i;
    } else if (arg[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && arg[i] == '>') {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) {
    error = "Address must be enclosed in <>";
    return std::nullopt;
  }
  std::string_view path = arg.substr(1, close - 1);
  std::string_view rest = arg.substr(close + 1);

  PathArgument out;
  // A source route (@a,@b:user@c) is obsolete; RFC 5321 §4.1.2 says accept and ignore it.
  if (!path.empty() && path.front() == '@') {
    size_t colon = path.find(':');
    if (colon == std::string_view::npos) {
      error = "Invalid address";
      return std::nullopt;
    }
    path.remove_prefix(colon + 1);
  }
  if (path.empty()) {
    if (kind != "FROM") {
      error = "The null address is not a valid recipient";
      return std::nullopt;
    }
  } else {
    size_t at = path.rfind('@');
    if (at == std::string_view::npos) {
      if (kind == "TO" && iequal(path, "postmaster")) {
        out.address.local_part = "postmaster";
      } else {
        error = "Address must have a domain";
        return std::nullopt;
      }
    } else {
      std::string_view local = path.substr(0, at);
      std::string_view domain = path.substr(at + 1);
      if (local.empty() || local.size() > 64 ||
          !(valid_dot_atom(local) || valid_quoted_string(local))) {
        error = "Invalid local part";
        return std::nullopt;
      }
      if (!valid_domain(domain)) {
        error = "Invalid domain";
        return std::nullopt;
      }
      out.address.local_part = std::string(local);
      out.address.domain = std::string(domain);
    }
  }
  // ESMTP parameters: SP-separated KEYWORD[=value].
  while (!rest.empty()) {
    if (rest.front() != ' ') {
      error = "Invalid parameters";
      return std::nullopt;
    }
    rest.remove_prefix(1);
    if (rest.empty()) break;
    size_t end = rest.find(' ');
    std::string_view param = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string key = upper(param.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : std::string(param.substr(eq + 1));
    if (key.empty()) {
      error = "Invalid parameters";
      return std::nullopt;
    }
    out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;  // RFC 3461 asks for upper case; be lenient
  return -1;
}

}  // namespace

bool valid_xtext(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return false;
      if (hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return false;
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return false;
    }
  }
  return true;
}

std::string xtext_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && i + 2 < s.size()) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string xtext_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 33 && c <= 126 && c != '+' && c != '=') {
      out += static_cast<char>(c);
    } else {
      out += '+';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

uint8_t parse_notify(std::string_view value, std::string& error) {
  static constexpr std::array<std::pair<std::string_view, uint8_t>, 4> kWords{{
      {"NEVER", DsnRequest::kNever}, {"SUCCESS", DsnRequest::kSuccess},
      {"FAILURE", DsnRequest::kFailure}, {"DELAY", DsnRequest::kDelay},
  }};
  uint8_t flags = 0;
  size_t start = 0;
  while (true) {
    size_t comma = value.find(',', start);
    std::string_view item = value.substr(start, comma == std::string_view::npos ? comma : comma - start);
    auto known = std::find_if(kWords.begin(), kWords.end(), [&](const auto& w) { return iequal(item, w.first); });
    if (known == kWords.end()) {
      error = "Invalid NOTIFY parameter: expected NEVER or a list of SUCCESS, FAILURE, DELAY";
      return 0;
    }
    if (flags & known->second) {
      error = "Invalid NOTIFY parameter: " + std::string(known->first) + " given twice";
      return 0;
    }
    flags |= known->second;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  // RFC 3461 §4.1: NEVER must appear by itself.
  if ((flags & DsnRequest::kNever) && flags != DsnRequest::kNever) {
    error = "Invalid NOTIFY parameter: NEVER cannot be combined with other values";
    return 0;
  }
  return flags;
}

std::string format_notify(uint8_t flags) {
  if (flags & DsnRequest::kNever) return "NEVER";
  std::string out;
  auto add = [&](uint8_t flag, const char* word) {
    if (!(flags & flag)) return;
    if (!out.empty()) out += ',';
    out += word;
  };
  add(DsnRequest::kSuccess, "SUCCESS");
  add(DsnRequest::kFailure, "FAILURE");
  add(DsnRequest::kDelay, "DELAY");
  return out;
}

bool valid_notify(uint8_t flags) {
  return flags == DsnRequest::kNever ||
         (flags != 0 && (flags & ~(DsnRequest::kSuccess | DsnRequest::kFailure | DsnRequest::kDelay)) == 0);
}

std::string orcpt_problem(std::string_view value) {
  if (value.size() > kMaxOrcpt) return "ORCPT parameter longer than " + std::to_string(kMaxOrcpt) + " characters";
  size_t semi = value.find(';');
  std::string_view type = value.substr(0, semi);
  bool atom = !type.empty() && all_chars(type, [](unsigned char c) { return c < 0x80 && is_atext(c); });
  if (semi == std::string_view::npos || !atom) return "Invalid ORCPT parameter: expected addr-type;xtext";
  std::string_view address = value.substr(semi + 1);
  if (address.empty() || !valid_xtext(address)) return "Invalid ORCPT parameter: the address is not valid xtext";
  return {};
}

std::string envid_problem(std::string_view value) {
  if (value.size() > kMaxEnvid) return "ENVID parameter longer than " + std::to_string(kMaxEnvid) + " characters";
  if (value.empty() || !valid_xtext(value)) return "Invalid ENVID parameter: not valid xtext";
  return {};
}

}  // namespace starling::smtp
