// SMTP command-line parsing (RFC 5321 §4.1): verb recognition, MAIL/RCPT paths and ESMTP
// parameters. Pure functions over one line without its CRLF; no state, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
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

// Delivery status notification parameters (RFC 3461 §4). Values stay in their xtext form (as
// received) until a report shows them decoded.
struct DsnRequest {
  // NOTIFY= as flags; 0: not given, which RFC 3461 §4.1 reads as FAILURE,DELAY.
  static constexpr uint8_t kSuccess = 1, kFailure = 2, kDelay = 4, kNever = 8;
  uint8_t notify = 0;
  std::string orcpt;  // ORCPT= as received, "rfc822;bob@example.com"; "" when not given
  bool operator==(const DsnRequest&) const = default;
};

// RFC 3461 §4.4 ENVID at most 100 characters, §4.2 ORCPT at most 500.
inline constexpr size_t kMaxEnvid = 100;
inline constexpr size_t kMaxOrcpt = 500;

// RFC 3461 §4: xtext, printable ASCII but '+' and '=', which appear only as "+" and two
// upper-case hex digits.
bool valid_xtext(std::string_view s);
std::string xtext_decode(std::string_view s);  // REQUIRES: valid_xtext(s)
std::string xtext_encode(std::string_view s);

// NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (any case, each once): the flags, or 0 with
// `error` set to what is wrong.
uint8_t parse_notify(std::string_view value, std::string& error);
// The NOTIFY= value for flags (upper case, as parse_notify reads it); "" for 0.
std::string format_notify(uint8_t flags);
// Whether flags are a NOTIFY= value parse_notify gives: NEVER alone, or some of the others.
bool valid_notify(uint8_t flags);
// ORCPT=addr-type;xtext (RFC 3461 §4.2, addr-type an atom); "" when valid, else what is wrong.
std::string orcpt_problem(std::string_view value);
// ENVID=xtext of at most kMaxEnvid characters; "" when valid, else what is wrong.
std::string envid_problem(std::string_view value);

}  // namespace starling::smtp
