// Fuzz target: the command-line and address parser (src/smtp/command.hpp). The input is one
// command line without its CRLF, as the session hands it over; it is parsed as a command, its
// argument as a MAIL or RCPT path, and the whole line as a HELO argument.
//
// Checked besides memory and undefined behaviour: the argument lies inside the line; a path that
// parses has an address of RFC 5321 characters only (no control characters, so nothing that
// could end a header line), within the length limits, null only for FROM, without a domain
// only for <postmaster> in TO; parameter keywords are upper case; a HELO argument that is valid
// is ASCII without control characters; smtp::valid_utf8 agrees with an independent decoder.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "smtp/command.hpp"

namespace starling::fuzz {
namespace {

void check_path(std::string_view arg, std::string_view kind) {
  std::string error;
  auto path = smtp::parse_path_argument(arg, kind, error);
  if (!path) {
    check(!error.empty(), "a path refused without a reason", arg);
    return;
  }
  const smtp::Address& a = path->address;
  check(!has_control(a.local_part) && !has_control(a.domain), "a control character in a parsed address", arg);
  check(a.local_part.size() <= 64 && a.domain.size() <= 255, "a parsed address over the length limits", arg);
  if (kind == "FROM") {
    check(a.is_null() || !a.domain.empty(), "a sender without a domain", arg);
  } else {
    check(!a.is_null(), "the null path as a recipient", arg);
    check(!a.domain.empty() || a.local_part == "postmaster", "a recipient without a domain", arg);
  }
  for (const auto& [keyword, value] : path->params) {
    check(!keyword.empty(), "an empty parameter keyword", arg);
    for (char c : keyword) check(c < 'a' || c > 'z', "a parameter keyword not upper-cased", arg);
  }
}

}  // namespace
}  // namespace starling::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling;
  using fuzz::check;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  smtp::Command cmd = smtp::parse_command(line);
  check(cmd.argument.empty() ||
            (cmd.argument.data() >= line.data() && cmd.argument.data() + cmd.argument.size() <= line.data() + line.size()),
        "the argument is not part of the line", line);
  if (cmd.verb == smtp::Verb::kMail) fuzz::check_path(cmd.argument, "FROM");
  if (cmd.verb == smtp::Verb::kRcpt) fuzz::check_path(cmd.argument, "TO");
  fuzz::check_path(line, "FROM");
  fuzz::check_path(line, "TO");
  if (smtp::valid_helo_argument(line)) {
    check(!smtp::has_non_ascii(line) && !fuzz::has_control(line) && line.size() <= 255,
          "a HELO argument accepted with non-ASCII or control characters", line);
  }
  check(smtp::valid_utf8(line) == fuzz::valid_utf8(line), "smtp::valid_utf8 disagrees with RFC 3629", line);
  return 0;
}
