#include "app/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "store/store.hpp"

namespace fs = std::filesystem;

namespace starling::app {
namespace {

std::string errno_text() { return std::strerror(errno); }

// Deep enough for mailboxes/<domain>/<local-part>/new/<file> and the queue's subdirectories;
// anything deeper is not Starling's and is left alone.
constexpr int kMaxDepth = 6;

// Chowns the non-directory `name` in `dir`, never through a symbolic link, and never a file with
// more than one name: a hard link planted by the service user could otherwise be another
// user's file (/etc/shadow), which root would then give away. Such a file is left as it is
// (the queue sets it aside as not a regular file of its own).
Result<void> chown_file(int dir, const char* name, const ServiceUser& user) {
  // Checked and changed through one descriptor: the name cannot be swapped in between.
  int fd = ::openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return make_error(std::string(name) + ": " + errno_text());
  }
  struct stat st {};
  Result<void> r;
  if (::fstat(fd, &st) != 0) {
    r = make_error(std::string(name) + ": " + errno_text());
  } else if ((S_ISLNK(st.st_mode) || st.st_nlink <= 1) &&
             ::fchownat(fd, "", user.uid, user.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    r = make_error(std::string(name) + ": " + errno_text());
  }
  ::close(fd);
  return r;
}

// Chowns every entry below the open directory `dir` (itself included), never following a
// symbolic link: each step is relative to a descriptor opened with O_NOFOLLOW, so renaming a
// directory into a link while the walk runs cannot redirect it (the user owns these directories).
Result<void> chown_tree(int dir, const ServiceUser& user, int depth) {
  if (::fchown(dir, user.uid, user.gid) != 0) return make_error(errno_text());
  if (depth == kMaxDepth) return {};
  int walk = ::dup(dir);
  DIR* d = walk < 0 ? nullptr : ::fdopendir(walk);
  if (!d) {
    if (walk >= 0) ::close(walk);
    return make_error(errno_text());
  }
  Result<void> r;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    int sub = ::openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) {
      r = chown_tree(sub, user, depth + 1);
      ::close(sub);
    } else {
      r = chown_file(dir, e->d_name, user);
    }
    if (!r) break;
  }
  ::closedir(d);
  return r;
}

// Chowns `name` in `dir` and, when it is a directory (not a link to one), what it holds.
Result<void> chown_entry(int dir, const char* name, const ServiceUser& user, bool recursive) {
  int sub = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sub < 0) return chown_file(dir, name, user);
  Result<void> r;
  if (!recursive) {
    if (::fchown(sub, user.uid, user.gid) != 0) r = make_error(errno_text());
  } else {
    r = chown_tree(sub, user, 1);
  }
  ::close(sub);
  if (!r) return make_error(std::string(name) + ": " + r.error());
  return {};
}

bool owned_by(int dir, const char* name, uid_t uid) {
  struct stat st {};
  return ::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == uid;
}

// Capabilities and no_new_privs are per thread: a drop with other threads running would leave
// them as they were.
Result<void> require_one_thread() {
  std::error_code ec;
  size_t threads = 0;
  for (auto it = fs::directory_iterator("/proc/self/task", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++threads;
  }
  if (ec) return make_error("cannot read /proc/self/task: " + ec.message());
  if (threads != 1) {
    return make_error("internal error: privileges dropped with " + std::to_string(threads) +
                      " threads running (they would keep root's)");
  }
  return {};
}

// Leaves CAP_NET_BIND_SERVICE alone in the permitted and effective sets (dropping everything
// else); clears the ambient set.
Result<void> keep_only_net_bind_service() {
  cap_t caps = cap_init();
  if (!caps) return make_error("cap_init: " + errno_text());
  cap_value_t keep[] = {CAP_NET_BIND_SERVICE};
  int rc = cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET);
  if (rc == 0) rc = cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET);
  if (rc == 0) rc = cap_set_proc(caps);
  std::string failed = rc == 0 ? "" : "cannot set the capabilities: " + errno_text();
  cap_free(caps);
  if (!failed.empty()) return make_error(failed);
  if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() != 0) return make_error("cannot clear ambient capabilities: " + errno_text());
  return {};
}

// REQUIRES: CAP_SETPCAP (root).
Result<void> reduce_bounding_set(bool keep_net_bind_service) {
  for (cap_value_t c = 0; c < static_cast<cap_value_t>(cap_max_bits()); ++c) {
    if (keep_net_bind_service && c == CAP_NET_BIND_SERVICE) continue;
    if (CAP_IS_SUPPORTED(c) && cap_drop_bound(c) != 0) {
      return make_error("cannot reduce the capability bounding set: " + errno_text());
    }
  }
  return {};
}

Result<void> set_no_new_privs() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_error("PR_SET_NO_NEW_PRIVS: " + errno_text());
  return {};
}

Result<void> become(const ServiceUser& user, bool keep_net_bind_service) {
  if (auto r = reduce_bounding_set(keep_net_bind_service); !r) return r;
  // The user's own group and no other: root's supplementary groups (disk, shadow, ...) go.
  if (::setgroups(1, &user.gid) != 0) return make_error("setgroups: " + errno_text());
  if (::setresgid(user.gid, user.gid, user.gid) != 0) return make_error("setresgid: " + errno_text());
  // Kept: the permitted set survives the uid change (the effective set does not), so that
  // CAP_NET_BIND_SERVICE can be raised again below. Not kept: the saved uid stays 0 until
  // finish_drop(), whose uid change then clears the capability in every thread.
  if (keep_net_bind_service && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return make_error("PR_SET_KEEPCAPS: " + errno_text());
  uid_t saved = keep_net_bind_service ? user.uid : 0;
  if (::setresuid(user.uid, user.uid, saved) != 0) return make_error("setresuid: " + errno_text());
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return make_error("PR_SET_KEEPCAPS: " + errno_text());
  return keep_only_net_bind_service();
}

// The kernel forgets a parent-death signal when the credentials change; whoever asked for it
// (a supervisor, a test runner) still wants starlingd to stop with it.
class ParentDeathSignal {
 public:
  ParentDeathSignal() { ::prctl(PR_GET_PDEATHSIG, &signal_, 0, 0, 0); }
  ~ParentDeathSignal() {
    if (signal_ != 0) ::prctl(PR_SET_PDEATHSIG, signal_, 0, 0, 0);
  }

 private:
  int signal_ = 0;
};

}  // namespace

Result<ServiceUser> find_service_user(const std::string& name) {
  errno = 0;
  passwd* pw = ::getpwnam(name.c_str());
  if (!pw) {
    return make_error("the service user '" + name + "' does not exist: create it (useradd --system --user-group "
                      "--shell /usr/sbin/nologin " + name + ") or run 'starling setup' as root, which creates it");
  }
  if (pw->pw_uid == 0) return make_error("the service user '" + name + "' is root: name an unprivileged user");
  if (pw->pw_gid == 0) return make_error("the service user '" + name + "' has root's group: give it a group of its own");
  return ServiceUser{name, pw->pw_uid, pw->pw_gid};
}

Result<std::string> recorded_service_user(const fs::path& data_dir) {
  auto store = store::Store::open(data_dir / "starling.db");
  if (!store) return std::move(store).take_error();
  auto name = (*store)->setting(kServiceUserSetting);
  if (!name) return std::move(name).take_error();
  return name->value_or(kDefaultServiceUser);
}

Result<void> give_data_directory(const fs::path& data_dir, const ServiceUser& user) {
  int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return make_error("cannot open " + data_dir.string() + ": " + errno_text());
  Result<void> r;
  if (::fchown(dir, user.uid, user.gid) != 0) r = make_error(errno_text());
  for (const char* name : {"starling.db", "starling.db-wal", "starling.db-shm", "starling.db-journal"}) {
    if (r) r = chown_entry(dir, name, user, false);
  }
  if (r) r = chown_entry(dir, "queue", user, true);
  // A data directory set up before starlingd had a service user: its mailboxes become the
  // user's once. Later starts leave them alone (there may be many, and only starlingd writes them).
  if (r && !owned_by(dir, "mailboxes", user.uid)) r = chown_entry(dir, "mailboxes", user, true);
  // So do the logs (message tracking, protocol logs) of a run without one.
  if (r && !owned_by(dir, "logs", user.uid)) r = chown_entry(dir, "logs", user, true);
  ::close(dir);
  if (!r) return make_error("cannot give " + data_dir.string() + " to " + user.name + ": " + r.error());
  return {};
}

Result<void> drop_privileges(const std::optional<ServiceUser>& user, bool keep_net_bind_service) {
  if (auto r = require_one_thread(); !r) return r;
  if (user) {
    ParentDeathSignal kept;
    if (auto r = become(*user, keep_net_bind_service); !r) return r;
  }
  return set_no_new_privs();
}

Result<void> finish_drop() {
  uid_t real = 0, effective = 0, saved = 0;
  if (::getresuid(&real, &effective, &saved) != 0) return make_error("getresuid: " + errno_text());
  if (saved != 0 || real == 0) return {};
  ParentDeathSignal kept;
  if (::setresuid(real, real, real) != 0) return make_error("setresuid: " + errno_text());
  return {};
}

}  // namespace starling::app
