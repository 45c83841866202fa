// Management requests and replies — what the starling shell sends to starlingd over the control
// socket (or runs in-process with --offline) and what comes back. One request is one command;
// it runs in one store transaction and either changes everything it says or nothing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/connector.hpp"

namespace starling::events {
class EventLog;
}
namespace starling::store {
class Store;
}

namespace starling::core {
class QueueControl;  // core/queue_control.hpp
}

namespace starling::mgmt {

using Json = nlohmann::ordered_json;

// Exit statuses of the shell (issue contract).
inline constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitDenied = 77;

struct Request {
  std::string command;           // canonical name, e.g. "get-certificate"
  Json args = Json::object();    // option name (lower case, no dashes) -> string or [strings];
                                 // "identity" is the positional argument
  bool yes = false;              // --yes: answer confirmations with yes
  bool force = false;            // --force
  bool interactive = false;      // the shell has a terminal to ask on
};

struct Reply {
  int exit_code = kExitOk;
  Json objects = Json::array();             // what the command shows
  std::vector<std::string> default_properties;  // the table's columns
  std::vector<std::string> messages;        // informational lines (stdout)
  std::vector<std::string> warnings;        // "WARNING: ..." lines (stderr)
  std::string error;                        // the one-line reason of a failure (stderr)
  std::string confirm;                      // a question: ask it, then resend with --yes
  bool confirm_optional = false;            // "no" still runs the command, without the asked part:
                                            // the shell resends as if it had no terminal
  std::string file_base64;                  // bytes for the shell to write (export, request)
  std::string change;                       // what changed, for the event log; empty: nothing
  bool reconfigures = true;                 // with a change: the running server must re-read
};

Reply failure(int exit_code, std::string error);

struct Caller {
  uid_t uid = 0;
  std::string user;
  std::vector<std::string> groups;
  bool local_admin = false;  // root, or a member of the admin group
};

// The caller behind a Unix uid/gid (SO_PEERCRED, or the shell's own for --offline).
Caller caller_from_credentials(uid_t uid, gid_t gid, const std::string& admin_group);

enum class Role { kNone = 0, kViewOnlyAdministrator = 1, kServerAdministrator = 2, kOrganizationAdministrator = 3 };
std::string_view role_name(Role r);
std::optional<Role> parse_role(std::string_view s);

struct Context {
  store::Store& store;
  core::ServerSettings settings;
  Caller caller;
  events::EventLog* events = nullptr;  // may be null
  core::QueueControl* queues = nullptr;      // the running server's queues; null with --offline
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::filesystem::path data_dir;  // where logs/tracking is; empty: no tracking log to read
};

// Authorizes and runs a request; records changes and refusals as Management events.
Reply execute(Context& ctx, const Request& req);

// Canonical command name for a name or an Exchange alias, case-insensitive; empty if unknown.
std::string canonical_command(std::string_view name);
// Every canonical command name, for help.
std::vector<std::string> command_names();
// The role a command needs.
Role required_role(std::string_view command);

}  // namespace starling::mgmt
