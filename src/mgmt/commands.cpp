#include "mgmt/commands.hpp"
#include "mgmt/caller.hpp"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <array>

#include "core/names.hpp"
#include "events/event_log.hpp"
#include "mgmt/connectors.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"

namespace starling::mgmt {
namespace {

constexpr std::array<CommandSpec, 43> kCommands{{
    {"test-starttls", "Test-StartTls", test_starttls},
    {"get-certificate", "Get-ExchangeCertificate", get_certificate},
    {"new-certificate", "New-ExchangeCertificate", new_certificate},
    {"import-certificate", "Import-ExchangeCertificate", import_certificate},
    {"enable-certificate", "Enable-ExchangeCertificate", enable_certificate},
    {"export-certificate", "Export-ExchangeCertificate", export_certificate},
    {"remove-certificate", "Remove-ExchangeCertificate", remove_certificate},
    {"get-receive-connector", "Get-ReceiveConnector", get_receive_connector},
    {"new-receive-connector", "New-ReceiveConnector", new_receive_connector},
    {"set-receive-connector", "Set-ReceiveConnector", set_receive_connector},
    {"remove-receive-connector", "Remove-ReceiveConnector", remove_receive_connector},
    {"get-send-connector", "Get-SendConnector", get_send_connector},
    {"new-send-connector", "New-SendConnector", new_send_connector},
    {"set-send-connector", "Set-SendConnector", set_send_connector},
    {"remove-send-connector", "Remove-SendConnector", remove_send_connector},
    {"get-transport-server", "Get-TransportServer", get_transport_server},
    {"set-transport-server", "Set-TransportServer", set_transport_server},
    {"get-accepted-domain", "Get-AcceptedDomain", get_accepted_domain},
    {"new-accepted-domain", "New-AcceptedDomain", new_accepted_domain},
    {"set-accepted-domain", "Set-AcceptedDomain", set_accepted_domain},
    {"remove-accepted-domain", "Remove-AcceptedDomain", remove_accepted_domain},
    {"get-mailbox", "Get-Mailbox", get_mailbox},
    {"new-mailbox", "New-Mailbox", new_mailbox},
    {"set-mailbox", "Set-Mailbox", set_mailbox},
    {"remove-mailbox", "Remove-Mailbox", remove_mailbox},
    {"get-distribution-group", "Get-DistributionGroup", get_distribution_group},
    {"new-distribution-group", "New-DistributionGroup", new_distribution_group},
    {"set-distribution-group", "Set-DistributionGroup", set_distribution_group},
    {"remove-distribution-group", "Remove-DistributionGroup", remove_distribution_group},
    {"get-role-assignment", "Get-ManagementRoleAssignment", get_role_assignment},
    {"new-role-assignment", "New-ManagementRoleAssignment", new_role_assignment},
    {"remove-role-assignment", "Remove-ManagementRoleAssignment", remove_role_assignment},
    {"get-event", "Get-EventLog", get_event},
    {"get-queue", "Get-Queue", get_queue, false},
    {"get-message", "Get-Message", get_message, false},
    {"retry-queue", "Retry-Queue", retry_queue, false},
    {"suspend-queue", "Suspend-Queue", suspend_queue, false},
    {"resume-queue", "Resume-Queue", resume_queue, false},
    {"suspend-message", "Suspend-Message", suspend_message, false},
    {"resume-message", "Resume-Message", resume_message, false},
    {"remove-message", "Remove-Message", remove_message, false},
    {"export-message", "Export-Message", export_message, false},
    // Reads files, not the store: outside its transaction, so a long search holds up no writer.
    {"get-message-tracking-log", "Get-MessageTrackingLog", get_message_tracking_log, false},
}};

const CommandSpec* find_command(std::string_view name) {
  for (const auto& c : kCommands) {
    if (core::iequals(c.name, name) || core::iequals(c.exchange_alias, name)) return &c;
  }
  return nullptr;
}

// The effective role of a caller from the role assignments (users and their groups).
Result<Role> caller_role(store::Store& store, const Caller& caller) {
  auto assignments = store.role_assignments();
  if (!assignments) return std::move(assignments).take_error();
  Role best = Role::kNone;
  for (const auto& a : *assignments) {
    bool match = (a.principal_kind == "User" && a.principal == caller.user) ||
                 (a.principal_kind == "Group" &&
                  std::find(caller.groups.begin(), caller.groups.end(), a.principal) != caller.groups.end());
    auto role = parse_role(a.role);
    if (match && role && *role > best) best = *role;
  }
  return best;
}

std::string identity_name(const std::string& identity) {
  // "<server>\<name>" or just "<name>".
  size_t slash = identity.find('\\');
  return slash == std::string::npos ? identity : identity.substr(slash + 1);
}

template <typename Connector>
Result<Connector> find_connector(const std::vector<Connector>& all, const std::string& identity,
                                 std::string_view kind) {
  std::string name = identity_name(identity);
  for (const auto& c : all) {
    if (core::iequals(c.name, name)) return c;
  }
  return make_error("no " + std::string(kind) + " connector named '" + name + "'");
}

Reply from_error(Error e) { return failure(kExitFailed, std::move(e.message)); }

void record_change(Context& ctx, const std::string& command, const Reply& reply) {
  if (!reply.change.empty() && ctx.events) {
    ctx.events->record(events::kManagementChange, ctx.caller.user, {{"User", ctx.caller.user}, {"Command", command},
                                                    {"Result", reply.change}});
  }
}

// The options of new-/set-send-connector that are not properties: the credential's two parts
// (values.hpp) are applied by apply_credential, never by apply_options.
std::vector<std::string> send_connector_ignored(std::vector<std::string> more) {
  more.emplace_back(kCredentialUserKey);
  more.emplace_back(kCredentialPasswordKey);
  return more;
}

// Sets AuthenticationCredential from the request's credential keys, if present. Returns whether
// it was given. Errors never quote the values.
Result<bool> apply_credential(const Request& req, core::SendConnector& c) {
  bool has_user = has_arg(req, kCredentialUserKey);
  bool has_password = has_arg(req, kCredentialPasswordKey);
  if (!has_user && !has_password) return false;
  std::string user = has_user ? *arg(req, kCredentialUserKey) : "";
  std::string password = has_password ? *arg(req, kCredentialPasswordKey) : "";
  if (user.empty() != password.empty()) {
    return make_error("AuthenticationCredential: give both the user name and the password (or neither, to clear it)");
  }
  c.authentication_user = std::move(user);
  c.authentication_password = std::move(password);
  return true;
}

// Reads the options of new-/set-send-connector onto `c`: properties by name, then the credential.
Reply read_send_connector_options(const Request& req, std::vector<std::string> ignored, core::SendConnector& c,
                                  bool& credential_given) {
  if (has_arg(req, "authenticationcredential")) return failure(kExitUsage, std::string(kCredentialOnCommandLine));
  Json props = Json(c);
  if (auto a = apply_options(props, req.args, send_connector_ignored(std::move(ignored))); !a) {
    return failure(kExitUsage, a.error());
  }
  if (auto p = read_properties(props, c); !p) return failure(kExitUsage, p.error());
  auto cred = apply_credential(req, c);
  if (!cred) return failure(kExitUsage, cred.error());
  credential_given = *cred;
  canonicalize(c);
  return Reply{};
}

// A connector that resolves with ExternalDNSServers while the transport server has none.
void warn_external_dns(Context& ctx, const core::SendConnector& c, Reply& r) {
  if (!c.use_external_dns_servers_enabled) return;
  auto t = ctx.store.transport_settings();
  if (t && t->external_dns_servers.empty()) {
    r.warnings.push_back("send connector '" + c.name +
                         "' has UseExternalDNSServersEnabled but the transport server has no ExternalDNSServers; "
                         "set them with: starling set-transport-server --external-dns-servers IP[:port]");
  }
}

}  // namespace

std::optional<std::string> arg(const Request& r, std::string_view key) {
  auto it = r.args.find(std::string(key));
  if (it == r.args.end()) return std::nullopt;
  return as_string(*it);
}

bool has_arg(const Request& r, std::string_view key) { return r.args.contains(std::string(key)); }

Result<void> only_options(const Request& r, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : r.args.items()) {
    if (key == "identity") continue;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return make_error(r.command + ": unknown option '" + key + "'");
    }
  }
  return {};
}

bool confirmed(const Request& r, const std::string& question, Reply& reply) {
  if (r.yes || r.force) return true;
  if (r.interactive) {
    reply.confirm = question;
  } else {
    reply.exit_code = kExitFailed;
    reply.error = question + " Not confirmed: there is no terminal to ask on; add --yes.";
  }
  return false;
}

std::string canonical_command(std::string_view name) {
  const CommandSpec* c = find_command(name);
  return c ? std::string(c->name) : std::string();
}

std::vector<std::string> command_names() {
  std::vector<std::string> out;
  for (const auto& c : kCommands) out.emplace_back(c.name);
  return out;
}

Role required_role(std::string_view command) {
  if (command.ends_with("role-assignment") && !command.starts_with("get-")) {
    return Role::kOrganizationAdministrator;
  }
  if (command.starts_with("get-") || command.starts_with("test-")) return Role::kViewOnlyAdministrator;
  return Role::kServerAdministrator;
}

Reply execute(Context& ctx, const Request& req) {
  const CommandSpec* spec = find_command(req.command);
  if (!spec) return failure(kExitUsage, "unknown command '" + req.command + "'");
  const std::string command(spec->name);
  Role needed = required_role(command);

  // Authorization (docs/roles.md): local administrators may do everything; on an edge
  // server nobody else may do anything; elsewhere the assigned roles decide.
  if (!ctx.caller.local_admin) {
    std::string why;
    std::string required(role_name(needed));
    if (ctx.settings.mode == "edge") {
      required = "local administrator (edge server)";
      why = "this is an edge server: only local administrators (root or the " +
            ctx.settings.admin_group + " group) may run commands";
    } else {
      auto role = caller_role(ctx.store, ctx.caller);
      if (!role) return from_error(std::move(role).take_error());
      if (*role < needed) {
        why = command + " needs the " + std::string(role_name(needed)) + " role";
      }
    }
    if (!why.empty()) {
      // Counted, not each stored: a caller looping on a refused command costs one record a minute.
      if (ctx.events) {
        ctx.events->count(events::kManagementAccessDenied, ctx.caller.user + ":" + command,
                          {{"User", ctx.caller.user}, {"Command", command}, {"RequiredRole", required}},
                          kRefusalRecordInterval);
      }
      return failure(kExitDenied, "permission denied: " + why);
    }
  }

  Reply reply;
  if (!spec->uses_store) {
    reply = spec->handler(ctx, req);
    record_change(ctx, command, reply);
    return reply;
  }
  auto tx = ctx.store.in_transaction([&]() -> Result<void> {
    reply = spec->handler(ctx, req);
    // A failed or unconfirmed command changes nothing: roll the transaction back.
    if (reply.exit_code != kExitOk || !reply.confirm.empty()) return make_error("rolled back");
    return {};
  });
  // A test command's verdict (exit 1 with a report) is not a failure to roll back: nothing was
  // written either way.
  if (!tx && reply.exit_code == kExitOk && reply.confirm.empty()) {
    return failure(kExitFailed, tx.error());  // the commit itself failed
  }
  record_change(ctx, command, reply);
  return reply;
}

// --- receive connectors ----------------------------------------------------------------------

Reply get_receive_connector(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto all = ctx.store.receive_connectors();
  if (!all) return from_error(std::move(all).take_error());
  Reply r;
  r.default_properties = {"Identity", "Bindings", "Enabled"};
  for (const auto& c : *all) {
    if (auto id = arg(req, "identity"); id && !core::iequals(identity_name(*id), c.name)) continue;
    r.objects.push_back(present(c, ctx.settings));
  }
  if (auto id = arg(req, "identity"); id && r.objects.empty()) {
    return failure(kExitFailed, "no receive connector named '" + identity_name(*id) + "'");
  }
  return r;
}

Reply new_receive_connector(Context& ctx, const Request& req) {
  auto name = arg(req, "name");
  if (!name) name = arg(req, "identity");
  if (!name || name->empty()) return failure(kExitUsage, "new-receive-connector: a name is needed (--name NAME)");
  auto all = ctx.store.receive_connectors();
  if (!all) return from_error(std::move(all).take_error());
  for (const auto& c : *all) {
    if (core::iequals(c.name, *name)) return failure(kExitFailed, "a receive connector named '" + c.name + "' exists");
  }
  core::ReceiveConnector c;
  c.name = *name;
  c.bindings.clear();
  Json props = Json(c);
  if (auto a = apply_options(props, req.args, {"identity", "name"}); !a) return failure(kExitUsage, a.error());
  if (auto p = read_properties(props, c); !p) return failure(kExitUsage, p.error());
  if (auto v = validate_receive_connector(c, *all); !v) return failure(kExitFailed, v.error());
  if (auto w = ctx.store.add_receive_connector(c); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.default_properties = {"Identity", "Bindings", "Enabled"};
  r.objects.push_back(present(c, ctx.settings));
  r.change = "new receive connector " + c.name;
  return r;
}

Reply set_receive_connector(Context& ctx, const Request& req) {
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "set-receive-connector: which connector? (set-receive-connector NAME --property value)");
  auto all = ctx.store.receive_connectors();
  if (!all) return from_error(std::move(all).take_error());
  auto current = find_connector(*all, *id, "receive");
  if (!current) return from_error(std::move(current).take_error());
  if (req.args.size() <= 1) return failure(kExitUsage, "set-receive-connector: nothing to change");
  core::ReceiveConnector c = *current;
  Json props = Json(c);
  if (auto a = apply_options(props, req.args, {"identity"}); !a) return failure(kExitUsage, a.error());
  if (auto p = read_properties(props, c); !p) return failure(kExitUsage, p.error());
  if (auto v = validate_receive_connector(c, *all); !v) return failure(kExitFailed, v.error());
  for (const auto& o : *all) {
    if (!core::iequals(o.name, current->name) && core::iequals(o.name, c.name)) {
      return failure(kExitFailed, "a receive connector named '" + o.name + "' exists");
    }
  }
  if (auto w = ctx.store.replace_receive_connector(current->name, c); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.messages.push_back("Receive connector '" + c.name + "' changed.");
  r.change = "set receive connector " + c.name;
  return r;
}

Reply remove_receive_connector(Context& ctx, const Request& req) {
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "remove-receive-connector: which connector?");
  auto all = ctx.store.receive_connectors();
  if (!all) return from_error(std::move(all).take_error());
  auto current = find_connector(*all, *id, "receive");
  if (!current) return from_error(std::move(current).take_error());
  Reply r;
  if (!confirmed(req, "Remove receive connector '" + current->name + "'?", r)) return r;
  if (auto w = ctx.store.remove_receive_connector(current->name); !w) return from_error(std::move(w).take_error());
  r.messages.push_back("Receive connector '" + current->name + "' removed.");
  r.change = "removed receive connector " + current->name;
  return r;
}

// --- send connectors -------------------------------------------------------------------------

Reply get_send_connector(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {}); !o) return failure(kExitUsage, o.error());
  auto all = ctx.store.send_connectors();
  if (!all) return from_error(std::move(all).take_error());
  Reply r;
  r.default_properties = {"Identity", "AddressSpaces", "Enabled"};
  for (const auto& c : *all) {
    if (auto id = arg(req, "identity"); id && !core::iequals(identity_name(*id), c.name)) continue;
    r.objects.push_back(present(c, ctx.settings));
  }
  if (auto id = arg(req, "identity"); id && r.objects.empty()) {
    return failure(kExitFailed, "no send connector named '" + identity_name(*id) + "'");
  }
  return r;
}

Reply new_send_connector(Context& ctx, const Request& req) {
  auto name = arg(req, "name");
  if (!name) name = arg(req, "identity");
  if (!name || name->empty()) return failure(kExitUsage, "new-send-connector: a name is needed (--name NAME)");
  auto all = ctx.store.send_connectors();
  if (!all) return from_error(std::move(all).take_error());
  for (const auto& c : *all) {
    if (core::iequals(c.name, *name)) return failure(kExitFailed, "a send connector named '" + c.name + "' exists");
  }
  core::SendConnector c;
  c.name = *name;
  bool credential_given = false;
  if (Reply bad = read_send_connector_options(req, {"identity", "name"}, c, credential_given); bad.exit_code != kExitOk) {
    return bad;
  }
  // Smart hosts imply routing through them, as New-SendConnector -SmartHosts does.
  if (!c.smart_hosts.empty() && !has_arg(req, "dnsroutingenabled")) c.dns_routing_enabled = false;
  if (auto v = validate_send_connector(c); !v) return failure(kExitFailed, v.error());
  if (auto w = ctx.store.add_send_connector(c); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.default_properties = {"Identity", "AddressSpaces", "Enabled"};
  r.objects.push_back(present(c, ctx.settings));
  warn_external_dns(ctx, c, r);
  r.change = "new send connector " + c.name + (credential_given ? " (with an AuthenticationCredential)" : "");
  return r;
}

Reply set_send_connector(Context& ctx, const Request& req) {
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "set-send-connector: which connector?");
  auto all = ctx.store.send_connectors();
  if (!all) return from_error(std::move(all).take_error());
  auto current = find_connector(*all, *id, "send");
  if (!current) return from_error(std::move(current).take_error());
  if (req.args.size() <= 1) return failure(kExitUsage, "set-send-connector: nothing to change");
  core::SendConnector c = *current;
  bool credential_given = false;
  if (Reply bad = read_send_connector_options(req, {"identity"}, c, credential_given); bad.exit_code != kExitOk) {
    return bad;
  }
  if (auto v = validate_send_connector(c); !v) return failure(kExitFailed, v.error());
  for (const auto& o : *all) {
    if (!core::iequals(o.name, current->name) && core::iequals(o.name, c.name)) {
      return failure(kExitFailed, "a send connector named '" + o.name + "' exists");
    }
  }
  if (auto w = ctx.store.replace_send_connector(current->name, c); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.messages.push_back("Send connector '" + c.name + "' changed.");
  warn_external_dns(ctx, c, r);
  r.change = "set send connector " + c.name + (credential_given ? " (AuthenticationCredential changed)" : "");
  return r;
}

Reply remove_send_connector(Context& ctx, const Request& req) {
  auto id = arg(req, "identity");
  if (!id) return failure(kExitUsage, "remove-send-connector: which connector?");
  auto all = ctx.store.send_connectors();
  if (!all) return from_error(std::move(all).take_error());
  auto current = find_connector(*all, *id, "send");
  if (!current) return from_error(std::move(current).take_error());
  Reply r;
  if (!confirmed(req, "Remove send connector '" + current->name + "'?", r)) return r;
  if (auto w = ctx.store.remove_send_connector(current->name); !w) return from_error(std::move(w).take_error());
  r.messages.push_back("Send connector '" + current->name + "' removed.");
  r.change = "removed send connector " + current->name;
  return r;
}

// Accepted domains: domain_commands.cpp. Mailboxes and groups: recipient_commands.cpp.

// --- role assignments ------------------------------------------------------------------------

namespace {

Result<store::RoleAssignment> role_assignment_from(const Request& req) {
  auto role_text = arg(req, "role");
  if (!role_text) return make_error("--role is needed (ViewOnlyAdministrator, ServerAdministrator, OrganizationAdministrator)");
  auto role = parse_role(*role_text);
  if (!role) return make_error("--role: '" + *role_text + "' is not ViewOnlyAdministrator, ServerAdministrator or OrganizationAdministrator");
  auto user = arg(req, "user");
  auto group = arg(req, "group");
  if (user.has_value() == group.has_value()) return make_error("give exactly one of --user NAME or --group NAME");
  return store::RoleAssignment{std::string(role_name(*role)), user ? "User" : "Group", user ? *user : *group};
}

}  // namespace

Reply get_role_assignment(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"role", "user", "group"}); !o) return failure(kExitUsage, o.error());
  auto all = ctx.store.role_assignments();
  if (!all) return from_error(std::move(all).take_error());
  Reply r;
  r.default_properties = {"Role", "PrincipalKind", "Principal"};
  for (const auto& a : *all) {
    if (auto role = arg(req, "role"); role && !core::iequals(*role, a.role)) continue;
    if (auto u = arg(req, "user"); u && !(a.principal_kind == "User" && a.principal == *u)) continue;
    if (auto g = arg(req, "group"); g && !(a.principal_kind == "Group" && a.principal == *g)) continue;
    r.objects.push_back(Json{{"Role", a.role}, {"PrincipalKind", a.principal_kind}, {"Principal", a.principal}});
  }
  return r;
}

Reply new_role_assignment(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"role", "user", "group"}); !o) return failure(kExitUsage, o.error());
  auto a = role_assignment_from(req);
  if (!a) return failure(kExitUsage, a.error());
  if (a->principal_kind == "User" ? getpwnam(a->principal.c_str()) == nullptr
                                  : getgrnam(a->principal.c_str()) == nullptr) {
    return failure(kExitFailed, "no Unix " + core::to_lower(a->principal_kind) + " named '" + a->principal + "'");
  }
  auto all = ctx.store.role_assignments();
  if (!all) return from_error(std::move(all).take_error());
  for (const auto& x : *all) {
    if (x.role == a->role && x.principal_kind == a->principal_kind && x.principal == a->principal) {
      return failure(kExitFailed, a->principal_kind + " '" + a->principal + "' already has the " + a->role + " role");
    }
  }
  if (auto w = ctx.store.add_role_assignment(*a); !w) return from_error(std::move(w).take_error());
  Reply r;
  r.messages.push_back(a->principal_kind + " '" + a->principal + "' now has the " + a->role + " role.");
  r.change = "assigned " + a->role + " to " + a->principal_kind + " " + a->principal;
  return r;
}

Reply remove_role_assignment(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"role", "user", "group"}); !o) return failure(kExitUsage, o.error());
  auto a = role_assignment_from(req);
  if (!a) return failure(kExitUsage, a.error());
  Reply r;
  if (!confirmed(req, "Remove the " + a->role + " role from " + a->principal_kind + " '" + a->principal + "'?", r)) return r;
  auto removed = ctx.store.remove_role_assignment(*a);
  if (!removed) return from_error(std::move(removed).take_error());
  if (!*removed) return failure(kExitFailed, a->principal_kind + " '" + a->principal + "' does not have the " + a->role + " role");
  r.messages.push_back("Role assignment removed.");
  r.change = "removed " + a->role + " from " + a->principal_kind + " " + a->principal;
  return r;
}

// --- events ----------------------------------------------------------------------------------

Reply get_event(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"id", "level", "category", "since", "newest"}); !o) return failure(kExitUsage, o.error());
  store::EventQuery q;
  if (auto id = arg(req, "id")) {
    auto n = parse_integer("--id", *id);
    if (!n) return failure(kExitUsage, n.error());
    q.event_id = static_cast<int>(*n);
  }
  if (auto level = arg(req, "level")) {
    auto l = events::parse_level(*level);
    if (!l) return failure(kExitUsage, "--level: Information, Warning or Error");
    q.level = std::string(events::level_name(*l));
  }
  if (auto c = arg(req, "category")) q.category = *c;
  if (auto since = arg(req, "since")) {
    auto t = parse_time(*since, ctx.now);
    if (!t) return failure(kExitUsage, t.error());
    q.since = *t;
  }
  if (auto newest = arg(req, "newest")) {
    auto n = parse_integer("--newest", *newest);
    if (!n || *n <= 0 || *n > 10'000'000) return failure(kExitUsage, "--newest: a number from 1 to 10000000");
    q.newest = static_cast<int>(*n);
  }
  auto found = ctx.store.events(q);
  if (!found) return from_error(std::move(found).take_error());
  Reply r;
  r.default_properties = {"TimeCreated", "EventId", "Level", "Message"};
  for (const auto& e : *found) {
    Json o;
    o["Index"] = e.record;
    o["TimeCreated"] = format_time(e.time);
    o["EventId"] = e.event_id;
    o["Level"] = e.level;
    o["Category"] = e.category;
    o["Name"] = e.name;
    o["Message"] = e.message;
    Json data = Json::parse(e.data_json, nullptr, false);
    if (data.is_object()) {
      for (const auto& [k, v] : data.items()) o[k] = v;  // Fqdn, Connector, ... as properties
    }
    r.objects.push_back(o);
  }
  return r;
}

}  // namespace starling::mgmt
