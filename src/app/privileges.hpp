// Least privilege for starlingd (docs/security.md). Started as root, starlingd runs as the
// unprivileged service user named at setup: the data directory is made the user's, then the
// process drops to that user with PR_SET_NO_NEW_PRIVS and no capability but, if kept,
// CAP_NET_BIND_SERVICE (so that a binding added live may use port 25). Capabilities and
// no_new_privs belong to each thread and are inherited by the threads it starts: the drop must
// happen while starlingd has one thread, and every thread started afterwards has exactly the
// same identity. Started as any other user, starlingd runs as itself.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "core/result.hpp"

namespace starling::app {

inline constexpr const char* kDefaultServiceUser = "starling";
// The store setting that names the service user (written by `starling setup --user`).
inline constexpr const char* kServiceUserSetting = "service_user";

struct ServiceUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // the user's primary group
};

// The user `name` from the password database; an error naming how to create it when missing,
// or when it is root.
Result<ServiceUser> find_service_user(const std::string& name);

// The service user recorded in the store of `data_dir` (kDefaultServiceUser when none is).
// REQUIRES: called before the drop (it opens the store as the caller).
Result<std::string> recorded_service_user(const std::filesystem::path& data_dir);

// Makes what starlingd writes in `data_dir` the user's: the directory, the store with its -wal
// and -shm (a root `--offline` command may have made them), the queue, and the mailboxes on
// first use (a data directory set up before the service user existed). Never follows a
// symbolic link. REQUIRES: root.
Result<void> give_data_directory(const std::filesystem::path& data_dir, const ServiceUser& user);

// Started as root: becomes `user` (real, effective and saved ids; the user's group only), sets
// no_new_privs and reduces the bounding set to CAP_NET_BIND_SERVICE (to nothing when
// !keep_net_bind_service). CAP_NET_BIND_SERVICE stays effective so that the listeners can bind
// port 25 next. Without keep_net_bind_service the saved uid stays 0 until finish_drop() clears
// it, and with it, that capability, in every thread.
// Started as another user: sets no_new_privs only.
// REQUIRES: the process has one thread (checked: an error otherwise).
Result<void> drop_privileges(const std::optional<ServiceUser>& user, bool keep_net_bind_service);

// After the listeners are bound: the last step of a drop without keep_net_bind_service (glibc
// applies the uid change to every thread, and the kernel clears their capabilities with it).
// Nothing to do otherwise.
Result<void> finish_drop();

}  // namespace starling::app
