// starling — the management shell. `starling setup` creates a data directory; the management
// commands (get-certificate, new-receive-connector, ...) talk to starlingd over its control
// socket, or work on the store with --offline. Runs with the caller's privileges; touches only
// the data directory it is given (default /var/lib/starling) and the files its options name.
#include <iostream>

#include "app/cli_help.hpp"
#include "app/command_line.hpp"
#include "app/daemon_options.hpp"
#include "app/setup.hpp"
#include "app/shell.hpp"
#include "mgmt/values.hpp"

using namespace starling;

namespace {

std::string text(const mgmt::Json& args, const char* key, std::string fallback) {
  return args.contains(key) ? mgmt::as_string(args[key]) : fallback;
}

std::vector<std::string> list(const mgmt::Json& args, const char* key) {
  return args.contains(key) ? mgmt::as_list(args[key]) : std::vector<std::string>{};
}

int run_setup(const app::Invocation& inv) {
  app::SetupOptions o;
  const mgmt::Json& a = inv.args;
  o.data_dir = inv.data_dir;
  o.server_name = text(a, "servername", o.server_name);
  o.fqdn = text(a, "fqdn", o.fqdn);
  o.listen = list(a, "listen");
  o.accepted_domains = list(a, "accepteddomain");
  o.submission_listen = text(a, "submissionlisten", o.submission_listen);
  o.mailboxes = list(a, "mailbox");
  o.admin_group = text(a, "admingroup", o.admin_group);
  o.service_user = text(a, "user", o.service_user);
  o.mode = text(a, "mode", o.mode);
  if (a.contains("ecdsa")) {
    std::string given = text(a, "ecdsa", "");
    auto ecdsa = mgmt::parse_bool("--ecdsa", given.empty() ? "true" : given);
    if (!ecdsa) {
      std::cerr << "starling setup: " << ecdsa.error() << "\n";
      return mgmt::kExitUsage;
    }
    o.ecdsa = *ecdsa;
  }
  auto r = app::run_setup(o);
  if (!r) {
    std::cerr << "starling setup: " << r.error() << "\n";
    return mgmt::kExitFailed;
  }
  std::cout << *r;
  return mgmt::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  auto inv = app::parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (!inv) {
    std::cerr << "starling: " << inv.error() << "\n";
    return mgmt::kExitUsage;
  }
  if (inv->version) {
    std::cout << app::version_line("starling") << "\n";
    return mgmt::kExitOk;
  }
  if (inv->help) {
    std::cout << (inv->command ? app::command_help(*inv->command) : app::general_help());
    return mgmt::kExitOk;
  }
  if (!inv->command) {
    std::cerr << "starling: which command? (starling --help lists them)\n";
    return mgmt::kExitUsage;
  }
  try {
    return inv->command->local ? run_setup(*inv) : app::run_management_command(*inv);
  } catch (const std::exception& e) {  // the edge: a bug, reported rather than a core dump
    std::cerr << "starling: " << e.what() << "\n";
    return mgmt::kExitFailed;
  }
}
