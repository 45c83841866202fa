// The gate in front of the commands: who may reach the control socket at all. execute() still
// checks the role each command needs; this only keeps callers with no role whatsoever from
// costing the daemon anything. The io thread uses it at accept, so nothing here touches the
// store: the role holders are a snapshot the management thread refreshes after every change, and
// the Unix user behind a uid (NSS: files, but LDAP or sssd too) is cached briefly.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::store {
class Store;
}

namespace starling::mgmt {

// A refusal (event 13002) is recorded once a minute at most per caller and command, with the
// number of refusals it stands for (docs/events/13002.md).
inline constexpr std::chrono::seconds kRefusalRecordInterval{60};

// The principals holding a role assignment, and the admin group, as of one moment.
struct RoleHolders {
  std::string admin_group;
  bool edge = false;  // an edge server: roles allow nothing, but execute() says so per command
  std::set<std::string> users;
  std::set<std::string> groups;

  // Local administrators, and anyone holding a role as a user or through a group.
  bool admits(const Caller& c) const;
};
Result<RoleHolders> role_holders(store::Store& store);

// What the shell prints to a caller without any role (exit 77).
std::string no_role_refusal(const Caller& c, const RoleHolders& holders);

// caller_from_credentials, remembered for `ttl`: group membership changes apply within that
// time. At most `capacity` entries (then it starts over). Thread safety: any thread.
class CallerCache {
 public:
  explicit CallerCache(std::chrono::seconds ttl = std::chrono::seconds(10), size_t capacity = 1024)
      : ttl_(ttl), capacity_(capacity) {}
  Caller resolve(uid_t uid, gid_t gid, const std::string& admin_group);

 private:
  struct Entry {
    Caller caller;
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::seconds ttl_;
  size_t capacity_;
  std::mutex mutex_;
  std::map<std::pair<uid_t, gid_t>, Entry> entries_;
};

}  // namespace starling::mgmt
