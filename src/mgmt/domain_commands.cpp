// Accepted domains (docs/mailbox-delivery.md): get-/new-/set-/remove-accepted-domain with DomainType
// (Authoritative, InternalRelay, ExternalRelay), the default domain (--make-default; without one
// marked, the first by name) and DeliveryTarget (Maildir or an LMTP server). A domain still named
// by a recipient's address cannot be removed or made ExternalRelay: the refusal names them.
#include <algorithm>

#include "core/directory.hpp"
#include "core/names.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"

namespace starling::mgmt {
namespace {

Reply from_error(Error e) { return failure(kExitFailed, std::move(e.message)); }

// "mailbox 'Alice' (alice@contoso.com), distribution group 'Team' (team@contoso.com)": the
// recipients with an address at `domain`, at most five named.
std::string recipients_at(const core::Directory& d, const std::string& domain) {
  std::vector<std::string> found;
  size_t total = 0;
  auto scan = [&](std::string_view kind, const std::string& name, const std::string& primary,
                  const std::vector<std::string>& others) {
    std::vector<std::string> all{primary};
    all.insert(all.end(), others.begin(), others.end());
    for (const auto& a : all) {
      if (core::address_domain(a) == domain) {
        if (++total <= 5) found.push_back(std::string(kind) + " '" + name + "' (" + a + ")");
        break;
      }
    }
  };
  for (const auto& m : d.mailboxes()) scan("mailbox", m.name, m.primary_address, m.email_addresses);
  for (const auto& g : d.groups()) scan("distribution group", g.name, g.primary_address, g.email_addresses);
  std::string out;
  for (const auto& f : found) out += (out.empty() ? "" : ", ") + f;
  if (total > found.size()) out += " and " + std::to_string(total - found.size()) + " more";
  return out;
}

Json present(const core::AcceptedDomain& a, bool is_default) {
  Json o;
  o["Identity"] = a.domain;
  o["Name"] = a.domain;
  o["DomainName"] = a.domain;
  o["DomainType"] = std::string(core::domain_type_name(a.type));
  o["Default"] = is_default;
  o["DeliveryTarget"] = a.delivery_target;
  return o;
}

Result<core::DomainType> read_type(const Request& req, core::DomainType current) {
  auto t = arg(req, "domaintype");
  if (!t) return current;
  auto type = core::parse_domain_type(*t);
  if (!type) return make_error("DomainType: '" + *t + "' is not Authoritative, InternalRelay or ExternalRelay");
  return *type;
}

Result<std::string> read_target(const Request& req, std::string current) {
  auto t = arg(req, "deliverytarget");
  if (!t) return current;
  auto parsed = core::parse_delivery_target(*t);
  if (!parsed) return std::move(parsed).take_error();
  return core::format_delivery_target(*parsed);
}

Result<bool> read_make_default(const Request& req) {
  auto v = arg(req, "makedefault");
  if (!v) return false;
  auto b = parse_bool("MakeDefault", *v);
  if (!b) return std::move(b).take_error();
  if (!*b) return make_error("--make-default false: make another domain the default instead");
  return true;
}

}  // namespace

Reply get_accepted_domain(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto d = ctx.store.directory();
  if (!d) return from_error(std::move(d).take_error());
  const core::AcceptedDomain* def = (*d)->default_domain();
  Reply r;
  r.default_properties = {"Name", "DomainName", "DomainType", "Default"};
  for (const auto& a : (*d)->domains()) {
    if (auto id = arg(req, "identity"); id && !core::iequals(core::normalize_name(*id), a.domain)) continue;
    r.objects.push_back(present(a, &a == def));
  }
  return r;
}

Reply new_accepted_domain(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"domainname", "name", "domaintype", "deliverytarget", "makedefault"}); !o) {
    return failure(kExitUsage, o.error());
  }
  auto name = arg(req, "domainname");
  if (!name) name = arg(req, "identity");
  if (!name) name = arg(req, "name");
  if (!name) return failure(kExitUsage, "new-accepted-domain: which domain? (new-accepted-domain contoso.com)");
  core::AcceptedDomain a;
  a.domain = core::normalize_name(*name);
  if (!core::is_valid_hostname(a.domain)) return failure(kExitFailed, "'" + *name + "' is not a valid domain name");
  auto type = read_type(req, a.type);
  if (!type) return failure(kExitUsage, type.error());
  a.type = *type;
  auto target = read_target(req, a.delivery_target);
  if (!target) return failure(kExitUsage, target.error());
  a.delivery_target = *target;
  auto make_default = read_make_default(req);
  if (!make_default) return failure(kExitUsage, make_default.error());
  a.is_default = *make_default;
  auto all = ctx.store.accepted_domains();
  if (!all) return from_error(std::move(all).take_error());
  if (std::any_of(all->begin(), all->end(), [&](const std::string& x) { return core::iequals(x, a.domain); })) {
    return failure(kExitFailed, "'" + a.domain + "' is already an accepted domain");
  }
  if (auto w = ctx.store.add_accepted_domain(a); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.messages.push_back("Accepted domain '" + a.domain + "' added (" + std::string(core::domain_type_name(a.type)) +
                       (a.is_default ? ", default" : "") + ").");
  r.change = "new accepted domain " + a.domain;
  if (a.type != core::DomainType::kAuthoritative) r.change += " (" + std::string(core::domain_type_name(a.type)) + ")";
  return r;
}

Reply set_accepted_domain(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"domaintype", "deliverytarget", "makedefault"}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "set-accepted-domain: which domain? (set-accepted-domain contoso.com --domain-type InternalRelay)");
  if (req.args.size() <= 1) return failure(kExitUsage, "set-accepted-domain: nothing to change");
  auto d = ctx.store.directory();
  if (!d) return from_error(std::move(d).take_error());
  const core::AcceptedDomain* found = (*d)->domain(*id);
  if (!found) return failure(kExitFailed, "'" + core::normalize_name(*id) + "' is not an accepted domain");
  core::AcceptedDomain a = *found;
  auto type = read_type(req, a.type);
  if (!type) return failure(kExitUsage, type.error());
  auto target = read_target(req, a.delivery_target);
  if (!target) return failure(kExitUsage, target.error());
  auto make_default = read_make_default(req);
  if (!make_default) return failure(kExitUsage, make_default.error());
  std::vector<std::string> changed;
  if (*type != a.type) {
    if (*type == core::DomainType::kExternalRelay) {
      if (std::string users = recipients_at(**d, a.domain); !users.empty()) {
        return failure(kExitFailed, "'" + a.domain + "' cannot be ExternalRelay: recipients here have addresses at it: " + users);
      }
    }
    changed.push_back("DomainType=" + std::string(core::domain_type_name(*type)));
  }
  if (*target != a.delivery_target) changed.push_back("DeliveryTarget=" + *target);
  bool was_default = (*d)->default_domain() == found;
  if (*make_default && !was_default) changed.push_back("Default");
  Reply r;
  if (changed.empty()) {
    r.messages.push_back("Accepted domain '" + a.domain + "': nothing changed.");
    return r;
  }
  a.type = *type;
  a.delivery_target = *target;
  if (auto w = ctx.store.update_accepted_domain(a); !w) return from_error(std::move(w).take_error());
  if (*make_default && !was_default) {
    if (auto w = ctx.store.set_default_accepted_domain(a.domain); !w) return from_error(std::move(w).take_error());
  }
  std::string what;
  for (const auto& c : changed) what += (what.empty() ? "" : ", ") + c;
  r.messages.push_back("Accepted domain '" + a.domain + "' changed: " + what + ".");
  r.change = "set accepted domain " + a.domain + ": " + what;
  return r;
}

Reply remove_accepted_domain(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto name = arg(req, "identity");
  if (!name) return failure(kExitUsage, "remove-accepted-domain: which domain?");
  std::string domain = core::normalize_name(*name);
  auto d = ctx.store.directory();
  if (!d) return from_error(std::move(d).take_error());
  if (!(*d)->domain(domain)) return failure(kExitFailed, "'" + domain + "' is not an accepted domain");
  if (std::string users = recipients_at(**d, domain); !users.empty()) {
    return failure(kExitFailed, "'" + domain + "' is still used by " + users +
                                    "; remove those recipients or their addresses at it first");
  }
  Reply r;
  if (!confirmed(req, "Remove accepted domain '" + domain + "'? Mail for it will be refused.", r)) return r;
  if (auto w = ctx.store.remove_accepted_domain(domain); !w) return from_error(std::move(w).take_error());
  r.messages.push_back("Accepted domain '" + domain + "' removed.");
  r.change = "removed accepted domain " + domain;
  return r;
}

}  // namespace starling::mgmt
