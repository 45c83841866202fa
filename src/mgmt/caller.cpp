// Who is calling, and what they may do (EXCHANGE-MODEL.md §5).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "core/names.hpp"
#include "mgmt/request.hpp"

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
