// Mailboxes and distribution groups (docs/mailbox-delivery.md): get-/new-/set-/remove-mailbox and
// get-/new-/set-/remove-distribution-group. Every address, primary or alias, must be at an
// accepted domain that delivers here (Authoritative or InternalRelay) and belong to no other
// recipient. A mailbox's password arrives only under kMailboxPasswordKey and is stored as an
// Argon2id hash; no reply, message or event ever holds it (get-mailbox shows HasPassword).
#include <algorithm>
#include <set>

#include "core/directory.hpp"
#include "core/names.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/password.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"

namespace starling::mgmt {
namespace {

using core::Directory;

Reply from_error(Error e) { return failure(kExitFailed, std::move(e.message)); }

std::string strip_smtp_prefix(const std::string& s) {
  return s.size() > 5 && core::iequals(s.substr(0, 5), "smtp:") ? s.substr(5) : s;
}

bool is_null(const std::string& s) { return s.empty() || core::iequals(s, "$null"); }

// The owner of an address, for "belongs to ..." messages; empty when free.
std::string owner_of(const Directory& d, std::string_view address) {
  if (const auto* m = d.mailbox_by_address(address)) return "mailbox '" + m->name + "'";
  if (const auto* g = d.group_by_address(address)) return "distribution group '" + g->name + "'";
  return "";
}

// Checks and normalizes one address for a recipient named `self` (which may already hold it).
Result<std::string> check_address(const Directory& d, const std::string& text, const std::string& self) {
  auto a = core::normalize_address(strip_smtp_prefix(text));
  if (!a) return make_error("'" + text + "' is not an email address (local@domain)");
  const core::AcceptedDomain* dom = d.domain(core::address_domain(*a));
  if (!dom) {
    return make_error("'" + *a + "': " + std::string(core::address_domain(*a)) +
                      " is not an accepted domain (add it with: starling new-accepted-domain " +
                      std::string(core::address_domain(*a)) + ")");
  }
  if (dom->type == core::DomainType::kExternalRelay) {
    return make_error("'" + *a + "': " + dom->domain + " is an ExternalRelay domain; its mail is never delivered here");
  }
  const core::Mailbox* m = d.mailbox_by_address(*a);
  const core::DistributionGroup* g = d.group_by_address(*a);
  if ((m && !core::iequals(m->name, self)) || (g && !core::iequals(g->name, self))) {
    return make_error("the address '" + *a + "' belongs to " + owner_of(d, *a));
  }
  return *a;
}

// The addresses of a recipient after the options: primary, then the others without repeats.
struct Addresses {
  std::string primary;
  std::vector<std::string> others;
};

Result<Addresses> read_addresses(const Directory& d, const Request& req, Addresses current, const std::string& self) {
  if (auto p = arg(req, "primarysmtpaddress"); p || (p = arg(req, "address"))) {
    auto a = check_address(d, *p, self);
    if (!a) return std::move(a).take_error();
    // As Set-Mailbox -PrimarySmtpAddress: the old primary stays as an alias.
    if (!current.primary.empty() && current.primary != *a) current.others.insert(current.others.begin(), current.primary);
    current.primary = *a;
  }
  auto add_all = [&](const Json& list) -> Result<void> {
    for (const auto& text : as_list(list)) {
      auto a = check_address(d, text, self);
      if (!a) return std::move(a).take_error();
      current.others.push_back(*a);
    }
    return {};
  };
  if (auto it = req.args.find("emailaddresses"); it != req.args.end()) {
    current.others.clear();
    if (!(it->is_string() && is_null(it->get<std::string>()))) {
      if (auto r = add_all(*it); !r) return std::move(r).take_error();
    }
  }
  if (auto it = req.args.find("addemailaddresses"); it != req.args.end()) {
    if (auto r = add_all(*it); !r) return std::move(r).take_error();
  }
  if (auto it = req.args.find("removeemailaddresses"); it != req.args.end()) {
    for (const auto& text : as_list(*it)) {
      std::string a = core::to_lower(strip_smtp_prefix(text));
      if (a == current.primary) {
        return make_error("'" + a + "' is the primary address; set another with --primary-smtp-address first");
      }
      auto found = std::find(current.others.begin(), current.others.end(), a);
      if (found == current.others.end()) return make_error("'" + a + "' is not one of " + self + "'s addresses");
      current.others.erase(found);
    }
  }
  std::vector<std::string> unique;
  for (const auto& a : current.others) {
    if (a != current.primary && std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(a);
  }
  current.others = std::move(unique);
  return current;
}

std::vector<std::string> removed_addresses(const Addresses& before, const Addresses& after) {
  std::vector<std::string> all{before.primary};
  all.insert(all.end(), before.others.begin(), before.others.end());
  std::vector<std::string> gone;
  for (const auto& a : all) {
    if (a != after.primary && std::find(after.others.begin(), after.others.end(), a) == after.others.end()) {
      gone.push_back(a);
    }
  }
  return gone;
}

// Groups keep members by address: when addresses stop naming a recipient, they leave every
// group (as Exchange drops a deleted recipient's memberships), and the reply says which.
Result<void> drop_members(Context& ctx, const std::vector<std::string>& gone, Reply& r) {
  if (gone.empty()) return {};
  auto groups = ctx.store.distribution_groups();
  if (!groups) return std::move(groups).take_error();
  for (auto g : *groups) {
    size_t before = g.members.size();
    std::erase_if(g.members, [&](const std::string& m) {
      return std::find(gone.begin(), gone.end(), core::to_lower(m)) != gone.end();
    });
    if (g.members.size() == before) continue;
    if (auto w = ctx.store.replace_distribution_group(g.name, g); !w) return w;
    r.messages.push_back("Removed from distribution group '" + g.name + "'.");
  }
  return {};
}

Json email_addresses_json(const std::string& primary, const std::vector<std::string>& others) {
  Json out = Json::array({"SMTP:" + primary});  // Exchange's form: upper-case SMTP: is the primary
  for (const auto& a : others) out.push_back("smtp:" + a);
  return out;
}

Json present(const Directory& d, const core::Mailbox& m) {
  Json o;
  o["Identity"] = m.name;
  o["Name"] = m.name;
  o["PrimarySmtpAddress"] = m.primary_address;
  o["EmailAddresses"] = email_addresses_json(m.primary_address, m.email_addresses);
  o["Enabled"] = m.enabled;
  o["HasPassword"] = !m.password_hash.empty();
  o["DeliveryTarget"] = m.delivery_target;
  o["EffectiveDeliveryTarget"] = d.delivery_target(m);
  o["RecipientTypeDetails"] = "UserMailbox";
  return o;
}

Json present(const core::DistributionGroup& g) {
  Json o;
  o["Identity"] = g.name;
  o["Name"] = g.name;
  o["PrimarySmtpAddress"] = g.primary_address;
  o["EmailAddresses"] = email_addresses_json(g.primary_address, g.email_addresses);
  o["Members"] = g.members;
  o["MemberCount"] = g.members.size();
  o["RecipientTypeDetails"] = "MailUniversalDistributionGroup";
  return o;
}

// A mailbox by name or by any of its addresses.
const core::Mailbox* find_mailbox(const Directory& d, const std::string& id) {
  if (const auto* m = d.mailbox_by_name(id)) return m;
  return d.mailbox_by_address(strip_smtp_prefix(id));
}

const core::DistributionGroup* find_group(const Directory& d, const std::string& id) {
  for (const auto& g : d.groups()) {
    if (core::iequals(g.name, id)) return &g;
  }
  return d.group_by_address(strip_smtp_prefix(id));
}

Result<std::string> read_delivery_target(const Request& req, std::string current) {
  auto t = arg(req, "deliverytarget");
  if (!t) return current;
  if (is_null(*t)) return std::string();  // the domain's
  auto parsed = core::parse_delivery_target(*t);
  if (!parsed) return std::move(parsed).take_error();
  return core::format_delivery_target(*parsed);
}

// The password from the request, hashed; nullopt when none was given. Empty: remove it.
Result<std::optional<std::string>> read_password(const Request& req) {
  if (!has_arg(req, kMailboxPasswordKey)) return std::optional<std::string>{};
  std::string password = *arg(req, kMailboxPasswordKey);
  if (password.empty()) return std::optional<std::string>(std::string());
  if (password.size() > 1024) return make_error("the password is longer than 1024 bytes");
  auto h = hash_password(password);
  if (!h) return std::move(h).take_error();
  return std::optional<std::string>(*h);
}

Result<std::shared_ptr<const Directory>> directory(Context& ctx) { return ctx.store.directory(); }

const std::vector<std::string> kMailboxColumns{"Name", "PrimarySmtpAddress", "Enabled", "HasPassword"};
const std::vector<std::string> kGroupColumns{"Name", "PrimarySmtpAddress", "MemberCount"};

}  // namespace

// --- mailboxes -------------------------------------------------------------------------------

Reply get_mailbox(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  Reply r;
  r.default_properties = kMailboxColumns;
  if (auto id = arg(req, "identity")) {
    const core::Mailbox* m = find_mailbox(**d, *id);
    if (!m) return failure(kExitFailed, "no mailbox '" + *id + "'");
    r.objects.push_back(present(**d, *m));
    return r;
  }
  for (const auto& m : (*d)->mailboxes()) r.objects.push_back(present(**d, m));
  return r;
}

Reply new_mailbox(Context& ctx, const Request& req) {
  if (has_arg(req, "password")) return failure(kExitUsage, std::string(kPasswordOnCommandLine));
  if (auto o = only_options(req, {"address", "primarysmtpaddress", "name", "emailaddresses", "deliverytarget",
                                  "enabled", kMailboxPasswordKey});
      !o) {
    return failure(kExitUsage, o.error());
  }
  if (!has_arg(req, "address") && !has_arg(req, "primarysmtpaddress")) {
    return failure(kExitUsage, "new-mailbox: an address is needed (new-mailbox --address alice@contoso.com)");
  }
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  core::Mailbox m;
  auto name = arg(req, "name");
  if (!name) name = arg(req, "identity");
  m.name = name ? *name : "";
  auto addresses = read_addresses(**d, req, {}, m.name);
  if (!addresses) return failure(kExitFailed, addresses.error());
  if (m.name.empty()) m.name = addresses->primary;
  if (m.name.empty() || m.name.size() > 256) return failure(kExitUsage, "new-mailbox: --name must be 1-256 characters");
  if (const auto* g = find_group(**d, m.name); (g && core::iequals(g->name, m.name)) || (**d).mailbox_by_name(m.name)) {
    return failure(kExitFailed, "a recipient named '" + m.name + "' exists");
  }
  m.primary_address = addresses->primary;
  m.email_addresses = addresses->others;
  auto target = read_delivery_target(req, "");
  if (!target) return failure(kExitUsage, target.error());
  m.delivery_target = *target;
  if (auto e = arg(req, "enabled")) {
    auto b = parse_bool("Enabled", *e);
    if (!b) return failure(kExitUsage, b.error());
    m.enabled = *b;
  }
  auto password = read_password(req);
  if (!password) return from_error(std::move(password).take_error());
  if (*password) m.password_hash = **password;
  if (auto w = ctx.store.add_mailbox(m); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.default_properties = kMailboxColumns;
  r.objects.push_back(present(**d, m));
  r.change = "new mailbox " + m.name + " <" + m.primary_address + ">" +
             (m.password_hash.empty() ? "" : " (with a password)");
  return r;
}

Reply set_mailbox(Context& ctx, const Request& req) {
  if (has_arg(req, "password")) return failure(kExitUsage, std::string(kPasswordOnCommandLine));
  if (auto o = only_options(req, {"name", "primarysmtpaddress", "emailaddresses", "addemailaddresses",
                                  "removeemailaddresses", "deliverytarget", "enabled", kMailboxPasswordKey});
      !o) {
    return failure(kExitUsage, o.error());
  }
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "set-mailbox: which mailbox? (set-mailbox alice@contoso.com --option value)");
  if (req.args.size() <= 1) return failure(kExitUsage, "set-mailbox: nothing to change");
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  const core::Mailbox* found = find_mailbox(**d, *id);
  if (!found) return failure(kExitFailed, "no mailbox '" + *id + "'");
  const core::Mailbox current = *found;
  core::Mailbox m = current;
  std::vector<std::string> changed;
  if (auto n = arg(req, "name"); n && *n != m.name) {
    if (n->empty() || n->size() > 256) return failure(kExitUsage, "--name must be 1-256 characters");
    if ((**d).mailbox_by_name(*n) && !core::iequals(*n, current.name)) return failure(kExitFailed, "a recipient named '" + *n + "' exists");
    if (const auto* g = find_group(**d, *n); g && core::iequals(g->name, *n)) return failure(kExitFailed, "a recipient named '" + *n + "' exists");
    m.name = *n;
    changed.push_back("Name");
  }
  Addresses before{current.primary_address, current.email_addresses};
  auto after = read_addresses(**d, req, before, current.name);
  if (!after) return failure(kExitFailed, after.error());
  m.primary_address = after->primary;
  m.email_addresses = after->others;
  if (m.primary_address != current.primary_address) changed.push_back("PrimarySmtpAddress");
  if (m.email_addresses != current.email_addresses) changed.push_back("EmailAddresses");
  auto target = read_delivery_target(req, m.delivery_target);
  if (!target) return failure(kExitUsage, target.error());
  if (*target != m.delivery_target) changed.push_back("DeliveryTarget");
  m.delivery_target = *target;
  if (auto e = arg(req, "enabled")) {
    auto b = parse_bool("Enabled", *e);
    if (!b) return failure(kExitUsage, b.error());
    if (*b != m.enabled) changed.push_back("Enabled");
    m.enabled = *b;
  }
  auto password = read_password(req);
  if (!password) return from_error(std::move(password).take_error());
  if (*password) {
    m.password_hash = **password;
    changed.push_back(m.password_hash.empty() ? "password removed" : "password reset");
  }
  Reply r;
  if (changed.empty()) {
    r.messages.push_back("Mailbox '" + m.name + "': nothing changed.");
    return r;
  }
  if (auto w = ctx.store.replace_mailbox(current.name, m); !w) return from_error(std::move(w).take_error());
  if (auto w = drop_members(ctx, removed_addresses(before, *after), r); !w) return from_error(std::move(w).take_error());
  std::string what;
  for (const auto& c : changed) what += (what.empty() ? "" : ", ") + c;
  r.messages.insert(r.messages.begin(), "Mailbox '" + m.name + "' changed: " + what + ".");
  r.change = "set mailbox " + m.name + ": " + what;
  return r;
}

Reply remove_mailbox(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "remove-mailbox: which mailbox?");
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  const core::Mailbox* m = find_mailbox(**d, *id);
  if (!m) return failure(kExitFailed, "no mailbox '" + *id + "'");
  // RFC 5321 §4.5.1: every domain must accept mail for postmaster.
  std::vector<std::string> all{m->primary_address};
  all.insert(all.end(), m->email_addresses.begin(), m->email_addresses.end());
  for (const auto& a : all) {
    if (a.starts_with("postmaster@") && !req.force) {
      return failure(kExitFailed, "mailbox '" + m->name + "' receives " + a +
                                      ", which RFC 5321 §4.5.1 requires; give the address to another mailbox "
                                      "first, or add --force");
    }
  }
  Reply r;
  if (!confirmed(req, "Remove mailbox '" + m->name + "' <" + m->primary_address + ">? Mail for it will be refused.", r)) {
    return r;
  }
  if (auto w = ctx.store.remove_mailbox(m->name); !w) return from_error(std::move(w).take_error());
  if (auto w = drop_members(ctx, all, r); !w) return from_error(std::move(w).take_error());
  r.messages.insert(r.messages.begin(), "Mailbox '" + m->name + "' removed.");
  r.change = "removed mailbox " + m->name + " <" + m->primary_address + ">";
  return r;
}

// --- distribution groups ---------------------------------------------------------------------

namespace {

// Members by address: recipients here by their primary address; at an Authoritative domain
// only existing recipients; outside addresses (and unknown ones at an InternalRelay domain) as
// they are.
Result<std::vector<std::string>> check_members(const Directory& d, const std::vector<std::string>& texts,
                                               const std::string& self_primary) {
  std::vector<std::string> out;
  for (const auto& text : texts) {
    auto a = core::normalize_address(strip_smtp_prefix(text));
    if (!a) return make_error("member '" + text + "' is not an email address");
    std::string member = *a;
    if (const auto* m = d.mailbox_by_address(*a)) {
      member = m->primary_address;
    } else if (const auto* g = d.group_by_address(*a)) {
      member = g->primary_address;
    } else if (const auto* dom = d.domain(core::address_domain(*a)); dom && dom->type == core::DomainType::kAuthoritative) {
      if (*a != self_primary) return make_error("member '" + *a + "': no such recipient (" + dom->domain + " is Authoritative)");
    }
    if (member == self_primary) return make_error("a group cannot be a member of itself");
    if (std::find(out.begin(), out.end(), member) == out.end()) out.push_back(member);
  }
  return out;
}

}  // namespace

Reply get_distribution_group(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  Reply r;
  r.default_properties = kGroupColumns;
  if (auto id = arg(req, "identity")) {
    const core::DistributionGroup* g = find_group(**d, *id);
    if (!g) return failure(kExitFailed, "no distribution group '" + *id + "'");
    r.objects.push_back(present(*g));
    return r;
  }
  for (const auto& g : (*d)->groups()) r.objects.push_back(present(g));
  return r;
}

Reply new_distribution_group(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"address", "primarysmtpaddress", "name", "emailaddresses", "members"}); !o) {
    return failure(kExitUsage, o.error());
  }
  if (!has_arg(req, "address") && !has_arg(req, "primarysmtpaddress")) {
    return failure(kExitUsage, "new-distribution-group: an address is needed (--address team@contoso.com)");
  }
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  core::DistributionGroup g;
  auto name = arg(req, "name");
  if (!name) name = arg(req, "identity");
  g.name = name ? *name : "";
  auto addresses = read_addresses(**d, req, {}, g.name);
  if (!addresses) return failure(kExitFailed, addresses.error());
  if (g.name.empty()) g.name = addresses->primary;
  if (g.name.size() > 256) return failure(kExitUsage, "--name must be 1-256 characters");
  if ((**d).mailbox_by_name(g.name) || find_group(**d, g.name)) return failure(kExitFailed, "a recipient named '" + g.name + "' exists");
  g.primary_address = addresses->primary;
  g.email_addresses = addresses->others;
  if (auto it = req.args.find("members"); it != req.args.end()) {
    auto members = check_members(**d, as_list(*it), g.primary_address);
    if (!members) return failure(kExitFailed, members.error());
    g.members = *members;
  }
  if (auto w = ctx.store.add_distribution_group(g); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.default_properties = kGroupColumns;
  r.objects.push_back(present(g));
  r.change = "new distribution group " + g.name + " <" + g.primary_address + "> with " +
             std::to_string(g.members.size()) + " members";
  return r;
}

Reply set_distribution_group(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"name", "primarysmtpaddress", "emailaddresses", "addemailaddresses",
                                  "removeemailaddresses", "members", "addmembers", "removemembers"});
      !o) {
    return failure(kExitUsage, o.error());
  }
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "set-distribution-group: which group?");
  if (req.args.size() <= 1) return failure(kExitUsage, "set-distribution-group: nothing to change");
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  const core::DistributionGroup* found = find_group(**d, *id);
  if (!found) return failure(kExitFailed, "no distribution group '" + *id + "'");
  const core::DistributionGroup current = *found;
  core::DistributionGroup g = current;
  if (auto n = arg(req, "name"); n && *n != g.name) {
    if (n->empty() || n->size() > 256) return failure(kExitUsage, "--name must be 1-256 characters");
    if ((**d).mailbox_by_name(*n)) return failure(kExitFailed, "a recipient named '" + *n + "' exists");
    if (const auto* o = find_group(**d, *n); o && o->name != current.name && core::iequals(o->name, *n)) {
      return failure(kExitFailed, "a recipient named '" + *n + "' exists");
    }
    g.name = *n;
  }
  Addresses before{current.primary_address, current.email_addresses};
  auto after = read_addresses(**d, req, before, current.name);
  if (!after) return failure(kExitFailed, after.error());
  g.primary_address = after->primary;
  g.email_addresses = after->others;
  if (auto it = req.args.find("members"); it != req.args.end()) {
    g.members.clear();
    if (!(it->is_string() && is_null(it->get<std::string>()))) {
      auto members = check_members(**d, as_list(*it), g.primary_address);
      if (!members) return failure(kExitFailed, members.error());
      g.members = *members;
    }
  }
  if (auto it = req.args.find("addmembers"); it != req.args.end()) {
    auto members = check_members(**d, as_list(*it), g.primary_address);
    if (!members) return failure(kExitFailed, members.error());
    for (const auto& m : *members) {
      if (std::find(g.members.begin(), g.members.end(), m) == g.members.end()) g.members.push_back(m);
    }
  }
  if (auto it = req.args.find("removemembers"); it != req.args.end()) {
    for (const auto& text : as_list(*it)) {
      std::string a = core::to_lower(strip_smtp_prefix(text));
      if (const auto* m = (**d).mailbox_by_address(a)) a = m->primary_address;
      else if (const auto* o = (**d).group_by_address(a)) a = o->primary_address;
      auto f = std::find(g.members.begin(), g.members.end(), a);
      if (f == g.members.end()) return failure(kExitFailed, "'" + a + "' is not a member of '" + current.name + "'");
      g.members.erase(f);
    }
  }
  Reply r;
  if (g.name == current.name && g.primary_address == current.primary_address &&
      g.email_addresses == current.email_addresses && g.members == current.members) {
    r.messages.push_back("Distribution group '" + g.name + "': nothing changed.");
    return r;
  }
  if (auto w = ctx.store.replace_distribution_group(current.name, g); !w) return from_error(std::move(w).take_error());
  if (auto w = drop_members(ctx, removed_addresses(before, *after), r); !w) return from_error(std::move(w).take_error());
  r.messages.insert(r.messages.begin(), "Distribution group '" + g.name + "' changed (" +
                                            std::to_string(g.members.size()) + " members).");
  r.change = "set distribution group " + g.name + " (" + std::to_string(g.members.size()) + " members)";
  return r;
}

Reply remove_distribution_group(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "remove-distribution-group: which group?");
  auto d = directory(ctx);
  if (!d) return from_error(std::move(d).take_error());
  const core::DistributionGroup* g = find_group(**d, *id);
  if (!g) return failure(kExitFailed, "no distribution group '" + *id + "'");
  Reply r;
  if (!confirmed(req, "Remove distribution group '" + g->name + "' <" + g->primary_address + ">?", r)) return r;
  std::vector<std::string> all{g->primary_address};
  all.insert(all.end(), g->email_addresses.begin(), g->email_addresses.end());
  if (auto w = ctx.store.remove_distribution_group(g->name); !w) return from_error(std::move(w).take_error());
  if (auto w = drop_members(ctx, all, r); !w) return from_error(std::move(w).take_error());
  r.messages.insert(r.messages.begin(), "Distribution group '" + g->name + "' removed.");
  r.change = "removed distribution group " + g->name + " <" + g->primary_address + ">";
  return r;
}

}  // namespace starling::mgmt
