// The starling command line, parsed with CLI11 from the command catalog: global options anywhere
// on the line, the command by its name or Exchange alias (any case), its positional argument,
// and its options however an Exchange administrator spells them — `--max-message-size 20MB`,
// `--maxmessagesize=20MB`, `-MaxMessageSize 20MB`, `-Confirm:$false`, a switch alone or followed
// by true/false. Nothing here reads a file or the terminal. Secrets are refused as arguments.
#pragma once

#include <string>
#include <vector>

#include "app/cli_catalog.hpp"
#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::app {

struct Invocation {
  const CliCommand* command = nullptr;  // null: only --help or --version
  bool help = false;                    // --help, -h or `starling help [COMMAND]`
  bool version = false;
  std::string data_dir;                 // --data-dir, else STARLING_DATA_DIR, else kDefaultDataDir
  std::string format = "table";         // table, list or json
  std::vector<std::string> properties;  // --property, split at commas
  bool offline = false;
  bool yes = false;  // --yes, or -Confirm:$false
  bool force = false;
  // The command's options by mgmt::option_key of the option's first name (an alias counts as
  // its option), a string or, when repeated, an array of strings; "identity": the positional
  // argument. Switches are "true" or "false".
  mgmt::Json args = mgmt::Json::object();
};

// argv as main() has it (argv[0] is the program). Errors are one line, for "starling: ...".
Result<Invocation> parse_command_line(const std::vector<std::string>& argv);

}  // namespace starling::app
