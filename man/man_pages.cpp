// Writes the man pages starling(8) and starlingd(8) into the directory given as the only
// argument, from the definitions --help uses: the command catalog for starling, and the CLI11
// options of app::add_daemon_options for starlingd. Run at build time (target `man`).
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/cli_catalog.hpp"
#include "app/cli_help.hpp"
#include "app/daemon_options.hpp"

using namespace starling;

namespace {

// Text for roff: backslashes escaped, dashes as \- (so they copy and search as ASCII
// hyphen-minus), and a line that would start with a control character protected by \&.
std::string roff(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string bold(const std::string& text) { return "\\fB" + roff(text) + "\\fR"; }

// "--domain, --domain-name NAME" with the names bold and the value italic.
std::string option_term(const std::string& names, const std::string& value) {
  return bold(names) + (value.empty() ? "" : " \\fI" + roff(value) + "\\fR");
}

std::string header(const std::string& name) {
  return ".TH " + name + " 8 \"\" \"" + roff(app::version_line("Starling")) + "\" \"System Administration\"\n.nh\n";
}

std::string tagged(const std::string& term, const std::string& text) { return ".TP\n" + term + "\n" + roff(text) + "\n"; }

std::string cli_option_names(const app::CliOption& o) {
  std::string names = (o.name.size() == 1 ? "-" : "--") + o.name;
  for (const auto& a : o.aliases) names += (a.size() == 1 ? ", -" : ", --") + a;
  return names;
}

void write_command(std::ostream& out, const app::CliCommand& c) {
  out << ".TP\n" << bold(app::usage_line(c)) << "\n";
  out << roff(std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(c.summary[0])))) +
              c.summary.substr(1) + ".")
      << "\n";
  if (!c.alias.empty()) out << "Exchange: " << bold(c.alias) << ".\n";
  if (c.identity.empty() && c.options.empty()) return;
  out << ".RS\n";
  if (!c.identity.empty()) out << tagged("\\fI" + roff(c.identity) + "\\fR", c.identity_help);
  for (const auto& o : c.options) out << tagged(option_term(cli_option_names(o), o.value_name), o.help);
  out << ".RE\n";
}

std::string starling_page() {
  std::ostringstream out;
  out << header("STARLING");
  out << ".SH NAME\nstarling \\- manage a Starling SMTP transport server\n";
  out << ".SH SYNOPSIS\n.B starling\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGUMENT\\fR] [\\fIOPTIONS\\fR]\n"
         ".br\n.B starling\n\\fICOMMAND\\fR \\fB\\-\\-help\\fR\n.br\n.B starling\n\\fB\\-\\-version\\fR\n";
  out << ".SH DESCRIPTION\n"
      << roff("starling runs management commands on a Starling server: through the control socket of the "
              "running starlingd (DIR/control.sock), which authorizes each command from the caller's Unix "
              "identity, or with --offline directly on the store. Every command runs in one transaction: it "
              "changes everything it says, or nothing; a change applies to the next connection without a "
              "restart. Exchange command names work as aliases, in any case (Get-ReceiveConnector), and so do "
              "PowerShell-style options (-Services SMTP, -Confirm:$false).")
      << "\n.PP\n"
      << roff("Secrets are never arguments, where the process list and the shell history would keep them: "
              "--password and --authentication-credential are refused; give a file, '-' to be asked at the "
              "terminal, or (PKCS#12 files) the STARLING_PASSWORD environment variable.")
      << "\n";
  out << ".SH GLOBAL OPTIONS\n" << roff("Anywhere on the line, before or after the command.") << "\n";
  for (const auto& o : app::global_options()) {
    if (!o.help.empty()) out << tagged(option_term(cli_option_names(o), o.value_name), o.help);
  }
  out << ".SH VALUES\n";
  for (const auto& n : app::value_notes()) out << ".PP\n" << roff(n) << "\n";
  out << ".SH COMMANDS\n"
      << roff("Each command also shows its usage and options with starling COMMAND --help.") << "\n";
  for (app::CommandGroup g : app::kAllGroups) {
    bool any = false;
    for (const auto& c : app::cli_commands()) {
      if (c.group != g) continue;
      if (!any) out << ".SS " << roff(std::string(app::group_title(g))) << "\n";
      any = true;
      write_command(out, c);
    }
  }
  out << ".SH ENVIRONMENT\n"
      << tagged(bold("STARLING_DATA_DIR"), "the data directory when --data-dir is not given")
      << tagged(bold("STARLING_PASSWORD"), "the PKCS#12 password of import-certificate and export-certificate "
                                           "when --password-file is not given");
  out << ".SH FILES\n"
      << tagged(bold(app::kDefaultDataDir), "the default data directory")
      << tagged(bold("DIR/control.sock"), "starlingd's control socket")
      << tagged(bold("DIR/starling.db"), "the store: settings, connectors, certificates and their keys, events");
  out << ".SH EXIT STATUS\n" << roff(app::exit_status_note()) << "\n";
  out << ".SH SEE ALSO\n.BR starlingd (8)\n";
  return out.str();
}

std::string starlingd_page() {
  CLI::App app;
  app::DaemonOptions options;
  app::add_daemon_options(app, options);
  std::ostringstream out;
  out << header("STARLINGD");
  out << ".SH NAME\nstarlingd \\- the Starling SMTP transport server\n";
  out << ".SH SYNOPSIS\n.B starlingd\n[\\fIOPTIONS\\fR]\n";
  out << ".SH DESCRIPTION\n"
      << roff("starlingd is the Starling SMTP transport server. It runs in the foreground and logs to stderr (with syslog "
              "priorities under journald), notifies systemd when NOTIFY_SOCKET is set, listens on the "
              "bindings of its receive connectors, delivers and relays the queued mail, and answers "
              "starling(8) on DIR/control.sock. Started as root, it binds its sockets, then runs as the "
              "service user named at setup.")
      << "\n";
  out << ".SH OPTIONS\n";
  for (const CLI::Option* o : app.get_options()) {
    std::string names;
    for (const auto& l : o->get_lnames()) names += (names.empty() ? "--" : ", --") + l;
    for (const auto& s : o->get_snames()) names += (names.empty() ? "-" : ", -") + s;
    if (names.empty()) continue;
    std::string text = o->get_description();
    if (!o->get_default_str().empty()) text += " (default: " + o->get_default_str() + ")";
    if (!o->get_envname().empty()) text += "; environment: " + o->get_envname();
    std::string type = o->get_type_size() == 0 ? "" : o->get_type_name();
    type = type.substr(0, type.find(':'));  // "FLOAT:FLOAT in [0 - 3600]": the range is in the text
    out << tagged(option_term(names, type), text);
  }
  out << ".SH SIGNALS\n"
      << tagged(bold("SIGTERM, SIGINT"), "stop gracefully: no new connections, sessions in flight get the "
                                         "shutdown grace period to finish, nothing accepted is lost");
  out << ".SH ENVIRONMENT\n"
      << tagged(bold("STARLING_DATA_DIR"), "the data directory when --data-dir is not given")
      << tagged(bold("STARLING_IO_THREADS"), "the number of I/O threads when --io-threads is not given")
      << tagged(bold("NOTIFY_SOCKET"), "set by systemd: readiness and watchdog notifications go there");
  out << ".SH FILES\n"
      << tagged(bold(app::kDefaultDataDir), "the default data directory, made by starling setup");
  out << ".SH SEE ALSO\n.BR starling (8)\n";
  return out.str();
}

bool write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: man_pages OUTPUT_DIR\n";
    return 2;
  }
  std::string dir = argv[1];
  if (!write(dir + "/starling.8", starling_page()) || !write(dir + "/starlingd.8", starlingd_page())) {
    std::cerr << "man_pages: cannot write into " << dir << "\n";
    return 1;
  }
  return 0;
}
