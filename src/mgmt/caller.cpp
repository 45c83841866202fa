// Who is calling, and what they may do (docs/roles.md).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "core/names.hpp"
#include "mgmt/caller.hpp"
#include "mgmt/request.hpp"
#include "store/store.hpp"

namespace starling::mgmt {

Reply failure(int exit_code, std::string error) {
  Reply r;
  r.exit_code = exit_code;
  r.error = std::move(error);
  return r;
}

Caller caller_from_credentials(uid_t uid, gid_t gid, const std::string& admin_group) {
  Caller c;
  c.uid = uid;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
    c.user = pw.pw_name;
    int n = 64;
    std::vector<gid_t> gids(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, gid, gids.data(), &n) == -1) {
      gids.resize(static_cast<size_t>(n));
      getgrouplist(pw.pw_name, gid, gids.data(), &n);
    }
    gids.resize(static_cast<size_t>(n));
    for (gid_t g : gids) {
      group gr{};
      group* gfound = nullptr;
      std::vector<char> gbuf(16384);
      if (getgrgid_r(g, &gr, gbuf.data(), gbuf.size(), &gfound) == 0 && gfound) {
        c.groups.push_back(gr.gr_name);
      }
    }
  } else {
    c.user = "uid " + std::to_string(uid);
  }
  c.local_admin = uid == 0 || std::find(c.groups.begin(), c.groups.end(), admin_group) != c.groups.end();
  return c;
}

bool RoleHolders::admits(const Caller& c) const {
  if (c.local_admin || users.contains(c.user)) return true;
  return std::any_of(c.groups.begin(), c.groups.end(), [&](const std::string& g) { return groups.contains(g); });
}

Result<RoleHolders> role_holders(store::Store& store) {
  auto settings = store.server_settings();
  if (!settings) return std::move(settings).take_error();
  auto assignments = store.role_assignments();
  if (!assignments) return std::move(assignments).take_error();
  RoleHolders h;
  h.admin_group = settings->admin_group;
  h.edge = settings->mode == "edge";
  for (const auto& a : *assignments) (a.principal_kind == "User" ? h.users : h.groups).insert(a.principal);
  return h;
}

std::string no_role_refusal(const Caller& c, const RoleHolders& holders) {
  if (holders.edge) {
    return "permission denied: this is an edge server: only local administrators (root or the " +
           holders.admin_group + " group) may run commands";
  }
  return "permission denied: " + c.user +
         " holds no role on this server; every command needs at least the ViewOnlyAdministrator role "
         "(an OrganizationAdministrator grants it with new-role-assignment)";
}

Caller CallerCache::resolve(uid_t uid, gid_t gid, const std::string& admin_group) {
  auto now = std::chrono::steady_clock::now();
  Caller c;
  bool found = false;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find({uid, gid}); it != entries_.end() && now < it->second.expires) {
      c = it->second.caller;
      found = true;
    }
  }
  if (!found) {
    c = caller_from_credentials(uid, gid, admin_group);  // outside the lock: it may be slow
    std::lock_guard lock(mutex_);
    if (entries_.size() >= capacity_) entries_.clear();
    entries_[{uid, gid}] = {c, now + ttl_};
  }
  // The admin group may have changed since the entry was made; the groups are what is cached.
  c.local_admin = uid == 0 || std::find(c.groups.begin(), c.groups.end(), admin_group) != c.groups.end();
  return c;
}

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kNone: return "None";
    case Role::kViewOnlyAdministrator: return "ViewOnlyAdministrator";
    case Role::kServerAdministrator: return "ServerAdministrator";
    case Role::kOrganizationAdministrator: return "OrganizationAdministrator";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view s) {
  for (Role r : {Role::kViewOnlyAdministrator, Role::kServerAdministrator,
                 Role::kOrganizationAdministrator}) {
    if (core::iequals(s, role_name(r))) return r;
  }
  return std::nullopt;
}

}  // namespace starling::mgmt
