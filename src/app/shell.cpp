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
#include <optional>
#include <sstream>

#include "app/format.hpp"
#include "app/message_export.hpp"
#include "core/names.hpp"
#include "events/event_log.hpp"
#include "mgmt/protocol.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;

namespace starling::app {
namespace {

using mgmt::Json;

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

// A password from the caller's file (its first line, read with the caller's rights), or asked at
// the terminal for "-" (twice when it sets a new one). It goes to starlingd in the request and
// nowhere else: a mailbox's is kept only as a hash.
Result<std::string> read_password(const std::string& path, bool interactive, bool new_password) {
  if (path == "-") {
    if (!interactive) return make_error("--password-file -: there is no terminal to ask on; give a file");
    auto password = prompt("Password: ", true);
    if (!password) return std::move(password).take_error();
    if (new_password) {
      auto again = prompt("Password again: ", true);
      if (!again) return std::move(again).take_error();
      if (*password != *again) return make_error("the passwords differ; nothing changed");
    }
    if (new_password && password->empty()) {
      return make_error("an empty password; to remove a mailbox's, give an empty file (--password-file /dev/null)");
    }
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

bool is_certificate_file_command(const std::string& command) {
  return command == "import-certificate" || command == "export-certificate";
}

// Removes the shell's own option `key` from the request and returns its value.
std::optional<std::string> take(mgmt::Request& r, const char* key) {
  auto it = r.args.find(key);
  if (it == r.args.end()) return std::nullopt;
  std::string value = mgmt::as_string(*it);
  r.args.erase(it);
  return value;
}

// Passwords: a mailbox's from --password-file; a PKCS#12 file's from --password-file or
// STARLING_PASSWORD. Never from an argument (command_line.cpp refuses --password).
Result<void> add_password(mgmt::Request& r) {
  auto file = take(r, "passwordfile");
  if (is_mailbox_command(r.command)) {
    if (!file) return {};
    auto pw = read_password(*file, r.interactive, true);
    if (!pw) return std::move(pw).take_error();
    r.args[std::string(mgmt::kMailboxPasswordKey)] = *pw;
    return {};
  }
  if (file && *file == "-") {
    auto pw = read_password(*file, r.interactive, r.command == "export-certificate");
    if (!pw) return std::move(pw).take_error();
    r.args["password"] = *pw;
  } else if (file) {  // a PKCS#12 password: the whole file but its final line end
    auto pw = read_file(*file);
    if (!pw) return std::move(pw).take_error();
    std::string p = *pw;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    r.args["password"] = p;
  } else if (const char* env = std::getenv("STARLING_PASSWORD"); env && is_certificate_file_command(r.command)) {
    r.args["password"] = env;
  }
  return {};
}

Result<void> add_credential(mgmt::Request& r) {
  auto file = take(r, "authenticationcredentialfile");
  if (!file) return {};
  auto credential = read_credential(*file, r.interactive);
  if (!credential) return std::move(credential).take_error();
  r.args[std::string(mgmt::kCredentialUserKey)] = credential->user;
  r.args[std::string(mgmt::kCredentialPasswordKey)] = credential->password;
  return {};
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
    // MSG_NOSIGNAL: starlingd turns a caller away (no role, too many connections) by writing its
    // refusal and closing before reading; the write then fails with EPIPE, and the refusal is
    // still there to read below.
    ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
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
  if (reply.empty() && done < line.size()) return make_error("lost the connection to starlingd");
  if (reply.empty()) return make_error("starlingd closed the connection without answering");
  return mgmt::decode_reply(reply);
}

constexpr std::string_view kOfflineIsForRoot =
    "permission denied: --offline opens the store, which only root may do; run the command without "
    "--offline (starlingd authorizes it)";

Result<mgmt::Reply> run_offline(const fs::path& dir, const mgmt::Request& req) {
  // The store belongs to the service user (0600): root can open it, anyone else is refused
  // before anything is touched and manages the server through starlingd instead.
  fs::path db = dir / "starling.db";
  if (::access(db.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
    return mgmt::failure(mgmt::kExitDenied, std::string(kOfflineIsForRoot));
  }
  auto store = store::Store::open(db);
  if (!store) return std::move(store).take_error();
  auto settings = (*store)->server_settings();
  if (!settings) return std::move(settings).take_error();
  mgmt::Caller caller = mgmt::caller_from_credentials(getuid(), getgid(), settings->admin_group);
  if (!caller.local_admin) {
    return mgmt::failure(mgmt::kExitDenied, std::string(kOfflineIsForRoot));
  }
  events::EventLog log(store->get());
  mgmt::Context ctx{**store, *settings, caller, &log};
  ctx.data_dir = dir;  // get-message-tracking-log reads the files itself
  return mgmt::execute(ctx, req);
}

bool ask(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = core::to_lower(answer);
  return answer == "y" || answer == "yes";
}

// Shows the reply's objects: JSON as they are, tables and lists as display_objects() writes them.
int print_reply(const Invocation& inv, const mgmt::Reply& reply) {
  std::vector<std::string> props = inv.properties;
  if (props.empty() && inv.format == "table") props = reply.default_properties;
  bool json = inv.format == "json";
  auto objects = select_properties(json ? reply.objects : display_objects(reply.objects), props);
  if (!objects) {
    std::cerr << "starling: " << objects.error() << "\n";
    return mgmt::kExitUsage;
  }
  if (json) {
    std::cout << format_json(*objects);
  } else if (!objects->empty()) {
    std::cout << (inv.format == "list" ? format_list(*objects) : format_table(*objects));
  }
  for (const auto& m : reply.messages) (json ? std::cerr : std::cout) << m << "\n";
  // A report with a verdict (test-starttls): shown, and its status returned.
  return reply.exit_code;
}

}  // namespace

Result<PreparedRequest> prepare_request(const Invocation& inv, bool interactive) {
  PreparedRequest p;
  mgmt::Request& r = p.request;
  r.command = inv.command->name;
  r.args = inv.args;
  r.yes = inv.yes;
  r.force = inv.force;
  r.interactive = interactive;
  // Files travel as bytes: the shell reads and writes them with the caller's own rights.
  std::optional<std::string> file = take(r, "file");
  if (r.command == "new-certificate" && r.args.contains("request")) file = mgmt::as_string(r.args["request"]);
  if (r.command == "import-certificate") {
    if (!file) file = take(r, "identity");
    if (!file) return make_error("import-certificate: which file? (import-certificate FILE)");
    auto bytes = read_file(*file);
    if (!bytes) return std::move(bytes).take_error();
    r.args["filecontent"] = mgmt::to_base64(*bytes);
  } else if (file) {
    p.output_file = *file;
  }
  if (r.command == "export-certificate" && p.output_file.empty()) {
    return make_error("export-certificate: --file FILE is needed");
  }
  if (r.command == "export-message" && p.output_file.empty()) {
    return make_error("export-message: --file FILE is needed");
  }
  if (auto pw = add_password(r); !pw) return std::move(pw).take_error();
  if (auto c = add_credential(r); !c) return std::move(c).take_error();
  return p;
}

int run_management_command(const Invocation& inv) {
  auto prepared = prepare_request(inv, isatty(STDIN_FILENO) && isatty(STDERR_FILENO));
  if (!prepared) {
    std::cerr << "starling: " << prepared.error() << "\n";
    return mgmt::kExitUsage;
  }
  const mgmt::Request& request = prepared->request;
  fs::path dir = inv.data_dir;
  auto run = [&](const mgmt::Request& r) {
    return inv.offline ? run_offline(dir, r) : send(dir / "control.sock", r);
  };
  // export-message asks for its message piece by piece and writes the file itself.
  auto reply = request.command == "export-message" ? export_message(request, prepared->output_file, inv.force, run)
                                                   : run(request);
  // Confirmations: ask, then send the command again with the answer.
  while (reply && !reply->confirm.empty()) {
    mgmt::Request again = request;
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
  if (!reply->file_base64.empty() && !prepared->output_file.empty()) {
    auto bytes = mgmt::from_base64(reply->file_base64);
    if (!bytes) {
      std::cerr << "starling: " << bytes.error() << "\n";
      return mgmt::kExitFailed;
    }
    if (auto w = write_file(prepared->output_file, *bytes); !w) {
      std::cerr << "starling: " << w.error() << "\n";
      return mgmt::kExitFailed;
    }
  }
  return print_reply(inv, *reply);
}

}  // namespace starling::app

