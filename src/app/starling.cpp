// starling — the management shell. `starling setup` creates a data directory; the management
// commands (get-certificate, new-receive-connector, ...) talk to starlingd over its control
// socket. Runs with the caller's privileges; touches only the data directory it is given.
#include <CLI/CLI.hpp>

#include <iostream>

#include "app/setup.hpp"
#include "app/shell.hpp"

using namespace starling;

int main(int argc, char** argv) {
  std::string first = argc > 1 ? argv[1] : "";
  if (argc > 1 && first != "setup" && first != "--help" && first != "-h") return app::run_shell(argc, argv);
  CLI::App app{"starling: manage a Starling transport server"};
  app.require_subcommand(1);

  app::SetupOptions setup;
  std::string data_dir;
  auto* cmd = app.add_subcommand("setup", "create a new server's data directory");
  cmd->add_option("--data-dir", data_dir, "the directory to create")->envname("STARLING_DATA_DIR")->required();
  cmd->add_option("--server-name", setup.server_name, "server name (default: short host name)");
  cmd->add_option("--fqdn", setup.fqdn, "server FQDN (default: the host's FQDN)");
  cmd->add_option("--listen", setup.listen, "IP:PORT of the default receive connector (repeatable; default 0.0.0.0:25)");
  cmd->add_option("--accepted-domain", setup.accepted_domains, "domain delivered here (repeatable; default: the FQDN without its first label)");
  cmd->add_option("--submission-listen", setup.submission_listen,
                  "IP:PORT of the client connector 'Client <server>' (default 0.0.0.0:587; none: no client connector)");
  cmd->add_option("--mailbox", setup.mailboxes, "also create this mailbox (repeatable; an address at an accepted domain)");
  cmd->add_option("--admin-group", setup.admin_group, "Unix group of local administrators");
  cmd->add_option("--user", setup.service_user, "the unprivileged user starlingd runs as (created if missing)");
  cmd->add_option("--mode", setup.mode, "hub or edge")->check(CLI::IsMember({"hub", "edge"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (cmd->parsed()) {
    setup.data_dir = data_dir;
    auto r = app::run_setup(setup);
    if (!r) {
      std::cerr << "starling setup: " << r.error() << "\n";
      return 1;
    }
    std::cout << *r;
    return 0;
  }
  return 2;
}
