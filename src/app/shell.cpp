#include "app/shell.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "app/format.hpp"
#include "core/names.hpp"
#include "events/event_log.hpp"
#include "mgmt/protocol.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;

namespace starling::app {
namespace {

using mgmt::Json;

// Options that are switches: they take a value only when it is literally true or false.
const std::set<std::string> kSwitches{"yes", "force", "offline", "exportable", "privatekeyexportable",
                                      "binary", "binaryencoded", "trustedroot", "probe", "help", "makedefault"};

struct ShellOptions {
  mgmt::Request request;
  std::string data_dir;
  std::string format;  // table, list, json; empty: table
  std::vector<std::string> properties;
  bool offline = false;
  bool help = false;
  std::string file;           // import source, export/request destination
  std::string password_file;
  std::string credential_file;  // --authentication-credential-file: a path, or "-" to ask
};

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<void> write_file(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      return make_error("cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return {};
}

// Reads a line from the terminal on stdin, without echo when `secret`.
Result<std::string> prompt(const std::string& question, bool secret) {
  std::cerr << question << std::flush;
  termios saved{};
  bool restore = secret && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (restore) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  }
  if (!got) return make_error("no answer at the terminal; nothing changed");
  return line;
}

// AuthenticationCredential from the caller's file (read with the caller's rights), or asked at
// the terminal for "-". The password goes to starlingd in the request and nowhere else.
Result<mgmt::Credential> read_credential(const std::string& path, bool interactive) {
  if (path == "-") {
    if (!interactive) {
      return make_error("--authentication-credential-file -: there is no terminal to ask on; give a file");
    }
    auto user = prompt("User name: ", false);
    if (!user) return std::move(user).take_error();
    auto password = prompt("Password: ", true);
    if (!password) return std::move(password).take_error();
    if (user->empty() != password->empty()) {
      return make_error("AuthenticationCredential: give both the user name and the password");
    }
    return mgmt::Credential{*user, *password};
  }
  auto bytes = read_file(path);
  if (!bytes) return std::move(bytes).take_error();
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    std::cerr << "WARNING: " << path << " can be read by other users; keep a credential file at mode 0600\n";
  }
  auto credential = mgmt::parse_credential_file(*bytes);
  if (!credential) return make_error(path + ": " + credential.error());
  return credential;
}

// A mailbox password from the caller's file, or asked twice at the terminal for "-". Like the
// credential, it goes to starlingd in the request (which keeps only its hash) and nowhere else.
Result<std::string> read_mailbox_password(const std::string& path, bool interactive) {
  if (path == "-") {
    if (!interactive) return make_error("--password-file -: there is no terminal to ask on; give a file");
    auto password = prompt("Password: ", true);
    if (!password) return std::move(password).take_error();
    auto again = prompt("Password again: ", true);
    if (!again) return std::move(again).take_error();
    if (*password != *again) return make_error("the passwords differ; nothing changed");
    if (password->empty()) return make_error("an empty password; to remove it give an empty file (--password-file /dev/null)");
    return *password;
  }
  auto bytes = read_file(path);
  if (!bytes) return std::move(bytes).take_error();
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    std::cerr << "WARNING: " << path << " can be read by other users; keep a password file at mode 0600\n";
  }
  auto password = mgmt::parse_password_file(*bytes);
  if (!password) return make_error(path + ": " + password.error());
  return password;
}

bool is_mailbox_command(const std::string& command) {
  return command == "new-mailbox" || command == "set-mailbox";
}

Result<ShellOptions> parse(int argc, char** argv) {
  ShellOptions o;
  std::string command = mgmt::canonical_command(argv[1]);
  if (command.empty()) {
    std::string known;
    for (const auto& c : mgmt::command_names()) known += " " + c;
    return make_error("unknown command '" + std::string(argv[1]) + "'; commands: setup" + known);
  }
  o.request.command = command;
  Json& args = o.request.args;
  for (int i = 2; i < argc; ++i) {
    std::string token = argv[i];
    if (token.size() < 2 || token[0] != '-') {
      if (args.contains("identity")) return make_error("unexpected argument '" + token + "'");
      args["identity"] = token;
      continue;
    }
    std::string name = token.substr(token[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = name.find_first_of("=:"); eq != std::string::npos) {  // --x=v, -Confirm:$false
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string key = mgmt::option_key(name);
    if (!value) {
      bool is_switch = kSwitches.contains(key);
      bool next_is_value = i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] != 0);
      if (next_is_value && is_switch) {
        auto b = mgmt::parse_bool(name, argv[i + 1]);
        next_is_value = b.ok();
      }
      if (next_is_value) {
        value = argv[++i];
      } else if (is_switch) {
        value = "true";
      } else {
        return make_error("option --" + name + " needs a value");
      }
    }
    // Options the shell handles itself.
    if (key == "datadir") { o.data_dir = *value; continue; }
    if (key == "format") { o.format = core::to_lower(*value); continue; }
    if (key == "property") {
      for (const auto& p : mgmt::as_list(*value)) o.properties.push_back(p);
      continue;
    }
    if (key == "offline") { o.offline = *mgmt::parse_bool(name, *value); continue; }
    if (key == "help") { o.help = true; continue; }
    if (key == "yes" || key == "force") {
      auto b = mgmt::parse_bool(name, *value);
      if (!b) return std::move(b).take_error();
      (key == "yes" ? o.request.yes : o.request.force) = *b;
      continue;
    }
    if (key == "confirm") {  // PowerShell's -Confirm:$false is --yes
      auto b = mgmt::parse_bool(name, *value);
      if (!b) return std::move(b).take_error();
      o.request.yes = !*b;
      continue;
    }
    if (key == "passwordfile") { o.password_file = *value; continue; }
    if (key == "password" && is_mailbox_command(command)) return make_error(std::string(mgmt::kPasswordOnCommandLine));
    // The credential never comes from the command line (values.hpp says why): refused here,
    // before it is sent anywhere, and by starlingd too.
    if (key == "authenticationcredential") return make_error(std::string(mgmt::kCredentialOnCommandLine));
    if (key == "authenticationcredentialfile") { o.credential_file = *value; continue; }
    if (key == "file" || key == "filename" ||
        (key == "request" && command == "new-certificate") || key == "generaterequest") {
      o.file = *value;
      if (key == "request" || key == "generaterequest") args["request"] = *value;
      continue;
    }
    if (args.contains(key)) {
      if (!args[key].is_array()) args[key] = Json::array({args[key]});
      args[key].push_back(*value);
    } else {
      args[key] = *value;
    }
  }
  if (!o.format.empty() && o.format != "table" && o.format != "list" && o.format != "json") {
    return make_error("--format must be table, list or json");
  }
  if (o.data_dir.empty()) {
    const char* env = std::getenv("STARLING_DATA_DIR");
    if (!env) return make_error("which server? give --data-dir DIR or set STARLING_DATA_DIR");
    o.data_dir = env;
  }
  // Files travel as bytes: the shell reads and writes them with the caller's own rights.
  if (command == "import-certificate") {
    if (o.file.empty() && args.contains("identity")) {
      o.file = args["identity"].get<std::string>();
      args.erase("identity");
    }
    if (o.file.empty()) return make_error("import-certificate: which file? (import-certificate FILE)");
    auto bytes = read_file(o.file);
    if (!bytes) return std::move(bytes).take_error();
    args["filecontent"] = mgmt::to_base64(*bytes);
  }
  if (command == "export-certificate" && o.file.empty()) {
    return make_error("export-certificate: --file FILE is needed");
  }
  o.request.interactive = isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
  if (!o.password_file.empty() && is_mailbox_command(command)) {
    auto pw = read_mailbox_password(o.password_file, o.request.interactive);
    if (!pw) return std::move(pw).take_error();
    args[std::string(mgmt::kMailboxPasswordKey)] = *pw;
  } else if (!o.password_file.empty()) {
    auto pw = read_file(o.password_file);
    if (!pw) return std::move(pw).take_error();
    std::string p = *pw;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    args["password"] = p;
  } else if (const char* env = std::getenv("STARLING_PASSWORD");
             env && (command == "import-certificate" || command == "export-certificate")) {
    args["password"] = env;
  }
  if (!o.credential_file.empty()) {
    if (command != "new-send-connector" && command != "set-send-connector") {
      return make_error("--authentication-credential-file is for new-send-connector and set-send-connector");
    }
    auto credential = read_credential(o.credential_file, o.request.interactive);
    if (!credential) return std::move(credential).take_error();
    args[std::string(mgmt::kCredentialUserKey)] = credential->user;
    args[std::string(mgmt::kCredentialPasswordKey)] = credential->password;
  }
  return o;
}

Result<mgmt::Reply> send(const fs::path& socket_path, const mgmt::Request& req) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EACCES) return make_error("permission denied on " + socket_path.string());
    return make_error("starlingd is not running (no control socket at " + socket_path.string() +
                      "): start it, or run the command with --offline as a local administrator");
  }
  std::string line = mgmt::encode_request(req);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n <= 0) {
      ::close(fd);
      return make_error("lost the connection to starlingd");
    }
    done += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.empty() || reply.back() != '\n') {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (reply.empty()) return make_error("starlingd closed the connection without answering");
  return mgmt::decode_reply(reply);
}

Result<mgmt::Reply> run_offline(const fs::path& dir, const mgmt::Request& req) {
  // Local administrators can open the store (root, or the admin group it belongs to); anyone
  // else is refused before anything is touched.
  fs::path db = dir / "starling.db";
  if (::access(db.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
    return mgmt::failure(mgmt::kExitDenied,
                         "permission denied: --offline is for local administrators (root or the admin group)");
  }
  auto store = store::Store::open(db);
  if (!store) return std::move(store).take_error();
  auto settings = (*store)->server_settings();
  if (!settings) return std::move(settings).take_error();
  mgmt::Caller caller = mgmt::caller_from_credentials(getuid(), getgid(), settings->admin_group);
  if (!caller.local_admin) {
    return mgmt::failure(mgmt::kExitDenied, "permission denied: --offline is for local administrators (root or the " +
                                                settings->admin_group + " group)");
  }
  events::EventLog log(store->get());
  mgmt::Context ctx{**store, *settings, caller, &log};
  return mgmt::execute(ctx, req);
}

bool ask(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = core::to_lower(answer);
  return answer == "y" || answer == "yes";
}

}  // namespace

int run_shell(int argc, char** argv) {
  auto parsed = parse(argc, argv);
  if (!parsed) {
    std::cerr << "starling: " << parsed.error() << "\n";
    return mgmt::kExitUsage;
  }
  ShellOptions& o = *parsed;
  if (o.help) {
    std::cout << "usage: starling " << o.request.command
              << " [IDENTITY] [--option value]... [--format table|list|json] [--property a,b|*]"
                 " [--data-dir DIR] [--offline] [--yes] [--force]\n";
    return 0;
  }
  fs::path dir = o.data_dir;
  auto run = [&](const mgmt::Request& r) {
    return o.offline ? run_offline(dir, r) : send(dir / "control.sock", r);
  };
  auto reply = run(o.request);
  // Confirmations: ask, then send the command again with the answer.
  while (reply && !reply->confirm.empty()) {
    mgmt::Request again = o.request;
    if (ask(reply->confirm)) {
      again.yes = true;
    } else if (reply->confirm_optional) {
      again.interactive = false;  // "no": go ahead without the asked part
    } else {
      std::cerr << "starling: not confirmed; nothing changed\n";
      return mgmt::kExitFailed;
    }
    reply = run(again);
  }
  if (!reply) {
    std::cerr << "starling: " << reply.error() << "\n";
    return mgmt::kExitFailed;
  }
  for (const auto& w : reply->warnings) std::cerr << "WARNING: " << w << "\n";
  if (reply->exit_code != mgmt::kExitOk && reply->objects.empty()) {
    std::cerr << "starling: " << reply->error << "\n";
    return reply->exit_code;
  }
  if (!reply->file_base64.empty() && !o.file.empty()) {
    auto bytes = mgmt::from_base64(reply->file_base64);
    if (!bytes) {
      std::cerr << "starling: " << bytes.error() << "\n";
      return mgmt::kExitFailed;
    }
    if (auto w = write_file(o.file, *bytes); !w) {
      std::cerr << "starling: " << w.error() << "\n";
      return mgmt::kExitFailed;
    }
  }
  std::string format = o.format.empty() ? "table" : o.format;
  std::vector<std::string> props = o.properties;
  if (props.empty() && format == "table") props = reply->default_properties;
  auto objects = select_properties(reply->objects, props);
  if (!objects) {
    std::cerr << "starling: " << objects.error() << "\n";
    return mgmt::kExitUsage;
  }
  if (format == "json") {
    std::cout << format_json(*objects);
  } else if (!objects->empty()) {
    std::cout << (format == "list" ? format_list(*objects) : format_table(*objects));
  }
  for (const auto& m : reply->messages) (format == "json" ? std::cerr : std::cout) << m << "\n";
  // A report with a verdict (test-starttls): shown, and its status returned.
  return reply->exit_code;
}

}  // namespace starling::app
