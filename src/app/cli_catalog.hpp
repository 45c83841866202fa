// The starling command catalog: every command with its Exchange alias, its group, a one-line
// summary, its positional argument and its options with their value names and meaning. It is
// the single source of the parser (command_line.cpp), of `starling --help` and `starling COMMAND
// --help` (cli_help.cpp) and of the starling(8) man page (man/). Adding a command is one entry
// here and its handler in mgmt; cli_catalog_test checks the two agree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace starling::app {

// The groups of `starling --help`, in that order.
enum class CommandGroup { kCertificates, kConnectors, kDomains, kRecipients, kQueues, kRoles, kEvents,
                          kDiagnostics, kSetup };
inline constexpr CommandGroup kAllGroups[] = {
    CommandGroup::kCertificates, CommandGroup::kConnectors, CommandGroup::kDomains, CommandGroup::kRecipients,
    CommandGroup::kQueues,       CommandGroup::kRoles,      CommandGroup::kEvents,  CommandGroup::kDiagnostics,
    CommandGroup::kSetup};
std::string_view group_title(CommandGroup g);

struct CliOption {
  std::string name;        // long name without dashes: "max-message-size"
  std::string value_name;  // "SIZE"; empty: a switch (--exportable, or --exportable true|false)
  std::string help;
  std::vector<std::string> aliases;  // other long names, e.g. Exchange's "domain-name"
  // For commands whose options are an object's properties: the property it sets, e.g.
  // "MaxMessageSize". Empty otherwise.
  std::string property;
  bool is_switch() const { return value_name.empty(); }
};

struct CliCommand {
  std::string name;    // "get-certificate"
  std::string alias;   // "Get-ExchangeCertificate"; empty for the shell's own commands
  CommandGroup group;
  std::string summary;  // one line, lower case, no final period
  std::string identity;       // the positional argument's value name ("THUMBPRINT"); empty: none
  std::string identity_help;  // what it names; "[...]" in usage when optional
  bool identity_required = false;
  std::vector<CliOption> options;
  bool local = false;  // run by the shell itself (setup), not by starlingd
  // The options set the object's properties (CliOption::property): an unknown one is "unknown
  // property", as starlingd says it.
  bool property_options = false;
};

// Every command, in the order of `starling --help`.
const std::vector<CliCommand>& cli_commands();
// A command by name or Exchange alias, case-insensitive; null if unknown.
const CliCommand* find_cli_command(std::string_view name);
// The options valid anywhere on the line: --data-dir, --format, --property, --offline, --yes,
// --force, --help, --version (and the hidden --confirm of -Confirm:$false).
const std::vector<CliOption>& global_options();
// An option of `command` (or a global one) by any of its names, compared as mgmt::option_key
// does (case, '-' and '_' ignored); null if neither has it.
const CliOption* find_cli_option(const CliCommand* command, std::string_view name);
// --password and --authentication-credential (as option keys): secrets are never accepted on
// the command line, whatever the command.
bool is_secret_option(std::string_view key);

}  // namespace starling::app
