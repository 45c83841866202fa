// SMTP command-line parsing (RFC 5321 §4.1): verb recognition, MAIL/RCPT paths and ESMTP
// parameters. Pure functions over one line without its CRLF; no state, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::smtp {

enum class Verb {
  kEhlo, kHelo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit, kVrfy, kExpn, kHelp,
  kStartTls, kAuth, kHttp, kUnknown,
};

struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view argument;  // the rest of the line after the verb and one space
};

Command parse_command(std::string_view line);

struct Address {
  std::string local_part;
  std::string domain;  // empty only for the null path or the bare "postmaster"
  bool is_null() const { return local_part.empty() && domain.empty(); }
  std::string str() const { return domain.empty() ? local_part : local_part + "@" + domain; }
};

struct PathArgument {
  Address address;
  std::vector<std::pair<std::string, std::string>> params;  // KEYWORD (upper-cased), value
};

// Parses `FROM:<path> params` (kind "FROM") or `TO:<path> params` (kind "TO"). On error returns
// nullopt and sets `error` to a short reason. The null path <> is allowed only for FROM; a bare
// <postmaster> only for TO (RFC 5321 §4.5.1).
std::optional<PathArgument> parse_path_argument(std::string_view arg, std::string_view kind,
                                                std::string& error);

bool has_non_ascii(std::string_view s);

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, no
// sequence cut short.
bool valid_utf8(std::string_view s);

// The argument of EHLO/HELO (RFC 5321 §4.1.1.1): a Domain in ASCII, or an address literal
// (§4.1.3: [IPv4], [IPv6:...], [tag:text]). Labels may hold '_' (docs/receive-path.md).
bool valid_helo_argument(std::string_view s);

}  // namespace starling::smtp
