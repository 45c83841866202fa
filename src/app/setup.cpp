#include "app/setup.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>

#include "app/daemon_options.hpp"
#include "app/privileges.hpp"
#include "core/directory.hpp"
#include "core/names.hpp"
#include "mgmt/connectors.hpp"
#include "store/store.hpp"
#include "tls/certificate_io.hpp"

namespace fs = std::filesystem;

namespace starling::app {
namespace {

Result<core::Binding> parse_listen(const std::string& text, const std::string& option = "--listen") {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return make_error(option + " '" + text + "': expected IP:PORT, e.g. 0.0.0.0:25 or [::]:25");
  }
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') return make_error(option + " '" + text + "': unbalanced [ ]");
    host = host.substr(1, host.size() - 2);
  }
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
    return make_error(option + " '" + text + "': '" + host + "' is not an IP address");
  }
  std::string port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) == 0 || std::stoul(port) > 65535) {
    return make_error(option + " '" + text + "': port must be 1-65535");
  }
  return core::Binding{host, static_cast<uint16_t>(std::stoul(port))};
}

std::string default_accepted_domain(const std::string& fqdn) {
  size_t dot = fqdn.find('.');
  // A single-label FQDN has no parent domain: accept mail for the name itself.
  return dot == std::string::npos ? fqdn : fqdn.substr(dot + 1);
}

// The service user's ids. Run as root, setup creates the user when missing (a system user with
// a group of its own, no login shell, home the default data directory, not created); run as
// anyone else, it only checks the name: starlingd started by that user runs as itself.
Result<std::optional<ServiceUser>> prepare_service_user(const std::string& name) {
  // useradd's own rule (a letter or '_', then letters, digits, '_' or '-'), lower case only.
  bool valid = !name.empty() && name.size() <= 32 && (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
               std::all_of(name.begin(), name.end(), [](char c) {
                 return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                        c == '_' || c == '-';
               });
  if (!valid) return make_error("--user '" + name + "': not a user name (lower-case letters, digits, '_', '-')");
  if (::geteuid() != 0) return std::optional<ServiceUser>();
  if (!::getpwnam(name.c_str())) {
    std::string home = kDefaultDataDir;
    const char* argv[] = {"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home.c_str(),
                          "--shell", "/usr/sbin/nologin", "--comment", "Starling mail transport", name.c_str(),
                          nullptr};
    pid_t pid = 0;
    int status = 0;
    bool spawned = false;
    // A second setup running at the same time may be creating it (useradd then finds
    // /etc/passwd locked and gives up): what counts is that it exists, so look again a while.
    for (int attempt = 0; attempt < 50 && !::getpwnam(name.c_str()); ++attempt) {
      if (attempt > 0) ::usleep(100'000);
      spawned = ::posix_spawnp(&pid, "useradd", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0 &&
                ::waitpid(pid, &status, 0) == pid;
    }
    if (!::getpwnam(name.c_str())) {
      return make_error("cannot create the service user '" + name + "' (useradd " +
                        (spawned ? "exited with " + std::to_string(WEXITSTATUS(status)) : std::string("did not run")) + ")");
    }
  }
  passwd* pw = ::getpwnam(name.c_str());
  if (pw->pw_uid == 0) return make_error("--user '" + name + "' is root: name an unprivileged user");
  if (pw->pw_gid == 0) return make_error("--user '" + name + "' has root's group: give it a group of its own");
  return std::optional<ServiceUser>(ServiceUser{name, pw->pw_uid, pw->pw_gid});
}

// What starlingd writes becomes the service user's; the store (with every private key) is the
// user's alone.
Result<void> give_to(const fs::path& path, const std::optional<ServiceUser>& user, mode_t mode) {
  if (user && ::chown(path.c_str(), user->uid, user->gid) != 0) {
    return make_error("cannot give " + path.string() + " to " + user->name + ": " + std::strerror(errno));
  }
  if (::chmod(path.c_str(), mode) != 0) return make_error("cannot chmod " + path.string() + ": " + std::strerror(errno));
  return {};
}

// A self-signed certificate enabled for SMTP, as setup stores it (RootCAType Registry).
Result<store::StoredCertificate> self_signed_for_smtp(const tls::SelfSignedRequest& request) {
  auto cert = tls::generate_self_signed(request);
  if (!cert) return std::move(cert).take_error();
  auto props = tls::describe_certificate(cert->certificate_pem, cert->key_pem);
  if (!props) return std::move(props).take_error();
  store::StoredCertificate sc;
  sc.thumbprint = props->thumbprint;
  sc.certificate_pem = cert->certificate_pem;
  sc.key_pem = cert->key_pem;
  sc.services = static_cast<core::Services>(core::Service::kSmtp);
  sc.friendly_name = "Starling";
  sc.root_ca_type = "Registry";
  return sc;
}

}  // namespace

std::string host_short_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string h = host;
  return core::to_lower(h.substr(0, h.find('.')));
}

std::string host_fqdn() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  std::string fqdn = host;
  if (getaddrinfo(host, nullptr, &hints, &res) == 0 && res && res->ai_canonname) {
    fqdn = res->ai_canonname;
  }
  if (res) freeaddrinfo(res);
  return core::normalize_name(fqdn);
}

Result<std::string> run_setup(SetupOptions o) {
  if (o.server_name.empty()) o.server_name = host_short_name();
  if (o.fqdn.empty()) o.fqdn = host_fqdn();
  if (o.listen.empty()) o.listen.push_back("0.0.0.0:25");
  if (o.accepted_domains.empty()) o.accepted_domains.push_back(default_accepted_domain(o.fqdn));
  o.server_name = core::normalize_name(o.server_name);
  o.fqdn = core::normalize_name(o.fqdn);

  // Check everything before touching the disk.
  if (!core::is_valid_hostname(o.server_name) || o.server_name.find('.') != std::string::npos) {
    return make_error("--server-name '" + o.server_name + "': must be a single DNS label (letters, digits, '-')");
  }
  if (!core::is_valid_hostname(o.fqdn)) {
    return make_error("--fqdn '" + o.fqdn + "': not a valid DNS name");
  }
  std::vector<core::Binding> bindings;
  for (const auto& l : o.listen) {
    auto b = parse_listen(l);
    if (!b) return std::move(b).take_error();
    bindings.push_back(*b);
  }
  for (auto& d : o.accepted_domains) {
    d = core::normalize_name(d);
    if (!core::is_valid_hostname(d)) return make_error("--accepted-domain '" + d + "': not a valid domain");
  }
  if (o.mode != "hub" && o.mode != "edge") return make_error("--mode must be hub or edge");
  auto service_user = prepare_service_user(o.service_user);
  if (!service_user) return std::move(service_user).take_error();

  core::ReceiveConnector c;
  c.name = "Default " + o.server_name;
  c.bindings = bindings;
  c.auth_mechanism = core::kAuthTls;
  c.permission_groups = {"AnonymousUsers", "ExchangeServers"};
  std::vector<core::ReceiveConnector> connectors{c};
  // The client connector Exchange creates (docs/mailbox-delivery.md): submission by authenticated
  // users, AUTH only after STARTTLS (RFC 6409 port 587, RFC 4954).
  if (!core::iequals(o.submission_listen, "none")) {
    auto b = parse_listen(o.submission_listen, "--submission-listen");
    if (!b) return std::move(b).take_error();
    core::ReceiveConnector client;
    client.name = "Client " + o.server_name;
    client.bindings = {*b};
    client.auth_mechanism = core::kAuthTls | core::kAuthBasic | core::kAuthBasicRequireTls;
    client.permission_groups = {"ExchangeUsers"};
    client.require_tls = true;
    if (auto v = mgmt::validate_receive_connector(client, connectors); !v) {
      return make_error("--submission-listen: " + v.error());
    }
    connectors.push_back(client);
  }
  // A postmaster mailbox at every accepted domain (RFC 5321 §4.5.1), then the ones asked for.
  std::vector<core::Mailbox> mailboxes;
  std::set<std::string> taken;
  for (const auto& d : o.accepted_domains) {
    std::string a = "postmaster@" + d;
    if (taken.insert(a).second) mailboxes.push_back({a, a, {}, "", true, ""});
  }
  for (const auto& text : o.mailboxes) {
    auto a = core::normalize_address(text);
    if (!a) return make_error("--mailbox '" + text + "': not an email address (local@domain)");
    if (std::find(o.accepted_domains.begin(), o.accepted_domains.end(), core::address_domain(*a)) ==
        o.accepted_domains.end()) {
      return make_error("--mailbox '" + text + "': " + std::string(core::address_domain(*a)) + " is not an accepted domain");
    }
    if (taken.insert(*a).second) mailboxes.push_back({*a, *a, {}, "", true, ""});
  }

  fs::path db = o.data_dir / "starling.db";
  if (fs::exists(db)) {
    return make_error(o.data_dir.string() + " already holds a Starling store; setup changes nothing");
  }
  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec) return make_error("cannot create " + o.data_dir.string() + ": " + ec.message());
  // Others may pass through (to reach control.sock, where starlingd authorizes each request)
  // but not list: the store, queue and mailboxes have their own, private modes.
  if (auto r = give_to(o.data_dir, *service_user, 0711); !r) return std::move(r).take_error();

  tls::SelfSignedRequest request{o.server_name, {o.server_name, o.fqdn}};
  request.issued_at = std::time(nullptr);  // the pair ranks equal: the RSA one is the primary
  auto rsa = self_signed_for_smtp(request);
  if (!rsa) return std::move(rsa).take_error();
  std::vector<store::StoredCertificate> certificates{*rsa};
  if (o.ecdsa) {
    request.key_type = tls::KeyType::kEcdsaP256;
    auto ecdsa = self_signed_for_smtp(request);
    if (!ecdsa) return std::move(ecdsa).take_error();
    certificates.push_back(*ecdsa);
  }

  // Build the store under a temporary name and move it into place only when complete, so a
  // failed setup leaves nothing that a second attempt would refuse.
  fs::path tmp = o.data_dir / "starling.db.setup";
  fs::remove(tmp, ec);
  fs::remove(fs::path(tmp.string() + "-wal"), ec);
  fs::remove(fs::path(tmp.string() + "-shm"), ec);
  {
    auto store = store::Store::create(tmp);
    if (!store) return std::move(store).take_error();
    store::Store& s = **store;
    core::ServerSettings settings{o.server_name, o.fqdn, o.admin_group, o.mode};
    Result<void> r = s.set_server_settings(settings);
    for (const auto& conn : connectors) {
      if (r) r = s.add_receive_connector(conn);
    }
    for (size_t i = 0; i < o.accepted_domains.size(); ++i) {
      core::AcceptedDomain d;
      d.domain = o.accepted_domains[i];
      d.is_default = i == 0;  // the first given is the default (postmaster@ it signs reports)
      if (r) r = s.add_accepted_domain(d);
    }
    for (const auto& m : mailboxes) {
      if (r) r = s.add_mailbox(m);
    }
    for (const auto& sc : certificates) {
      if (r) r = s.add_certificate(sc);
    }
    // The default SMTP certificate is the RSA one; the ECDSA one is served beside it.
    if (r) r = s.set_setting("default_smtp_certificate", rsa->thumbprint);
    if (r) r = s.set_setting(kServiceUserSetting, o.service_user);
    if (r) {
      try {
        s.db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch (const std::exception& e) {
        r = make_error(e.what());
      }
    }
    if (!r) {
      fs::remove(tmp, ec);
      return std::move(r).take_error();
    }
  }
  fs::remove(fs::path(tmp.string() + "-wal"), ec);
  fs::remove(fs::path(tmp.string() + "-shm"), ec);
  if (auto given = give_to(tmp, *service_user, 0600); !given) {
    fs::remove(tmp, ec);
    return std::move(given).take_error();
  }
  fs::rename(tmp, db, ec);
  if (ec) return make_error("cannot move the store into place: " + ec.message());
  for (const char* sub : {"queue", "mailboxes"}) {
    fs::create_directories(o.data_dir / sub, ec);
    if (ec) return make_error("cannot create " + (o.data_dir / sub).string() + ": " + ec.message());
    if (auto r = give_to(o.data_dir / sub, *service_user, 0700); !r) return std::move(r).take_error();
  }

  std::string listen;
  for (const auto& b : bindings) listen += (listen.empty() ? "" : ", ") + core::format_binding(b);
  std::string domains;
  for (const auto& d : o.accepted_domains) domains += (domains.empty() ? "" : ", ") + d;
  std::string boxes;
  for (const auto& m : mailboxes) boxes += (boxes.empty() ? "" : ", ") + m.primary_address;
  std::string client = connectors.size() > 1 ? "  Client connector:  Client " + o.server_name + " on " +
                                                   core::format_binding(connectors[1].bindings[0]) +
                                                   ", AuthMechanism Tls, BasicAuth, BasicAuthRequireTLS, "
                                                   "PermissionGroups ExchangeUsers, RequireTLS\n"
                                             : std::string();
  return "Created " + o.data_dir.string() + "\n" +
         "  Server:            " + o.server_name + " (" + o.fqdn + "), mode " + o.mode + "\n" +
         "  Receive connector: Default " + o.server_name + " on " + listen + ", AuthMechanism Tls\n" +
         client +
         "  Accepted domains:  " + domains + " (default " + o.accepted_domains.front() + ")\n" +
         "  Mailboxes:         " + boxes + "\n" +
         "  Certificate:       " + rsa->thumbprint + " CN=" + o.server_name +
         ", services SMTP (self-signed, default SMTP certificate)\n" +
         (o.ecdsa ? "  ECDSA certificate: " + certificates.back().thumbprint + " CN=" + o.server_name +
                        ", services SMTP (self-signed, ECDSA P-256, served beside the RSA one)\n"
                  : std::string()) +
         "  Service user:      " + o.service_user +
         (*service_user ? " (starlingd started as root runs as this user)\n"
                        : " (starlingd runs as the user who starts it unless started as root)\n");
}

}  // namespace starling::app
