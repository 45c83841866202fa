// The management shell: parses a command line the way an Exchange administrator types it —
// `get-certificate`, `Get-ExchangeCertificate`, `--services SMTP` or `-Services SMTP` — sends it
// to starlingd over the control socket (or runs it on the store with --offline), asks
// confirmations on the terminal, writes files, and prints the reply.
#pragma once

namespace starling::app {

// argv[1] is the command. Returns the process exit status.
int run_shell(int argc, char** argv);

}  // namespace starling::app
