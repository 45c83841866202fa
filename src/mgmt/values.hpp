// Reading command-line values the way an Exchange administrator writes them: booleans as
// true/false/$true/$false, sizes as "10MB" or "512 KB", durations as "00:05:00" or seconds,
// lists as comma-separated items (or the option repeated). Each failure names the property.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::mgmt {

Result<bool> parse_bool(std::string_view property, std::string_view text);
Result<uint64_t> parse_size(std::string_view property, std::string_view text);
Result<int64_t> parse_seconds(std::string_view property, std::string_view text);
Result<int64_t> parse_integer(std::string_view property, std::string_view text);
// A string or an array of strings, comma lists split and trimmed.
std::vector<std::string> as_list(const Json& value);
// A single string (the last, if the option was repeated).
std::string as_string(const Json& value);
// "2026-11-25T17:00:00Z", "2026-11-25", "90m", "2h", "3d" (ago), or Unix seconds.
Result<int64_t> parse_time(std::string_view text, std::chrono::system_clock::time_point now);
std::string format_time(int64_t unix_seconds);  // ISO 8601 UTC
// Standard base64 (RFC 4648 §4), for file contents in control requests and replies.
std::string to_base64(const std::string& bytes);
Result<std::string> from_base64(const std::string& text);
// Lower case without '-' or '_': how option names and property names are compared.
std::string option_key(std::string_view name);

// What a numeric property holds, so that commands parse it and the shell shows it the way
// Exchange does: durations in seconds ("00:10:00" in tables), sizes in bytes ("10 MB (10,485,760
// bytes)"), or plain numbers (counts, ports). The one place that knows: every numeric property a
// command shows must be in this table (src/app/cli_catalog_test.cpp fails otherwise). Names as
// shown, e.g. "MaxMessageSize"; nullopt for a name not in the table.
enum class NumericKind { kPlain, kDuration, kSize };
std::optional<NumericKind> numeric_kind(std::string_view property);

// A send connector's AuthenticationCredential travels in a request under these two keys. The
// shell fills them from the caller's --authentication-credential-file (or a terminal prompt);
// they hold a ':' and upper case, which option_key() never yields, so no command-line option
// can set them and a password never has to be typed where the process list and the shell
// history would keep it.
inline constexpr std::string_view kCredentialUserKey = "Credential:UserName";
inline constexpr std::string_view kCredentialPasswordKey = "Credential:Password";
// Why --authentication-credential VALUE is refused, and what to do instead.
inline constexpr std::string_view kCredentialOnCommandLine =
    "--authentication-credential is not accepted: a password on the command line is seen in the "
    "process list and kept in the shell history. Use --authentication-credential-file FILE (the user "
    "name on the first line, the password on the second), or --authentication-credential-file - to "
    "be asked at the terminal";
// A mailbox's password travels under this key, filled by the shell from --password-file FILE
// (or a terminal prompt for "-"), for the same reasons; starlingd hashes it (password.hpp) and
// keeps only the hash. An empty value removes the password (no AUTH for the mailbox).
inline constexpr std::string_view kMailboxPasswordKey = "Mailbox:Password";
inline constexpr std::string_view kPasswordOnCommandLine =
    "--password is not accepted: a password on the command line is seen in the process list and "
    "kept in the shell history. Use --password-file FILE (the password on its first line), "
    "--password-file - to be asked at the terminal, or (import-certificate, export-certificate) "
    "the STARLING_PASSWORD environment variable";
// A password file: its first line (LF or CRLF), nothing but empty lines after; an empty file is
// the empty password. Errors never quote the file's content.
Result<std::string> parse_password_file(std::string_view bytes);

struct Credential {
  std::string user;
  std::string password;
};
// A credential file: the user name on the first line, the password on the second (LF or CRLF),
// nothing but empty lines after. An empty file is the empty credential, which clears it. Errors
// never quote the file's content.
Result<Credential> parse_credential_file(std::string_view bytes);

}  // namespace starling::mgmt
