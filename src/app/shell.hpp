// The management shell: runs a parsed command line (command_line.hpp) — reads the files and
// secrets its options name with the caller's own rights, sends the request to starlingd over
// the control socket (or runs it on the store with --offline), asks confirmations on the
// terminal, writes files, and prints the reply as a table, a list or JSON.
#pragma once

#include <string>

#include "app/command_line.hpp"
#include "mgmt/request.hpp"

namespace starling::app {

struct PreparedRequest {
  mgmt::Request request;
  std::string output_file;  // where the reply's file goes (export-certificate, new-certificate --request)
};

// The request for a management command: files read (import-certificate), passwords and the
// send connector's credential taken from their files, the terminal (for "-") or
// STARLING_PASSWORD, the shell's own options removed. Reads nothing else; sends nothing.
Result<PreparedRequest> prepare_request(const Invocation& inv, bool interactive);

// Runs a management command (not setup). Returns the process exit status.
int run_management_command(const Invocation& inv);

}  // namespace starling::app
