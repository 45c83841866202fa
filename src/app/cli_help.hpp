// `starling --help` and `starling COMMAND --help`, written from the command catalog, and the
// pieces the starling(8) generator shares with them (usage lines, the notes on values).
#pragma once

#include <string>
#include <vector>

#include "app/cli_catalog.hpp"

namespace starling::app {

// Every command, grouped, one line each; the global options; values; exit statuses.
std::string general_help();
// The command's usage, Exchange alias, argument and options with their meaning.
std::string command_help(const CliCommand& c);

// "starling set-receive-connector NAME [OPTIONS]": the usage of one command.
std::string usage_line(const CliCommand& c);
// "--domain, --domain-name NAME": an option as help shows it.
std::string option_label(const CliOption& o);
// How values are written (booleans, sizes, durations, lists), a paragraph each.
const std::vector<std::string>& value_notes();
// "0 success, 1 ...": the exit statuses.
std::string exit_status_note();

}  // namespace starling::app
