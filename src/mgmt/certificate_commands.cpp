// The certificate commands (docs/certificates.md): get, new (self-signed or a request), import,
// enable, export, remove. Files are read and written by the shell with the caller's own rights;
// the daemon sees only their bytes.
#include <algorithm>
#include <ctime>

#include "core/names.hpp"
#include "core/selection.hpp"
#include "diag/evaluation.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"
#include "tls/certificate_files.hpp"
#include "tls/certificate_io.hpp"
#include "tls/certificate_limits.hpp"
#include "tls/certificate_request.hpp"
#include "tls/certificate_status.hpp"

namespace starling::mgmt {
namespace {

constexpr const char* kDefaultSmtpCertificate = "default_smtp_certificate";

using Entry = diag::CertificateRecord;

Result<std::vector<Entry>> load_entries(Context& ctx) { return diag::load_certificates(ctx.store, ctx.now); }

using diag::split_pem;

Json present(const core::Certificate& c) {
  auto t = [](core::SysTime tp) { return format_time(std::chrono::system_clock::to_time_t(tp)); };
  Json o;
  o["Thumbprint"] = c.thumbprint;
  o["Services"] = core::format_services(c.services);
  o["Subject"] = c.subject;
  o["Issuer"] = c.issuer;
  o["CertificateDomains"] = c.domains;
  o["NotBefore"] = t(c.not_before);
  o["NotAfter"] = t(c.not_after);
  o["IsSelfSigned"] = c.is_self_signed;
  o["HasPrivateKey"] = c.has_private_key;
  o["PrivateKeyExportable"] = c.private_key_exportable;
  o["FriendlyName"] = c.friendly_name;
  o["SerialNumber"] = c.serial_number;
  o["PublicKeySize"] = c.public_key_size;
  o["KeyAlgorithm"] = c.key_algorithm;
  o["SignatureAlgorithm"] = c.signature_algorithm;
  o["RootCAType"] = c.root_ca_type;
  o["Status"] = c.status;
  return o;
}

const std::vector<std::string> kCertificateColumns{"Thumbprint", "Services", "Subject"};

Result<Entry> find_entry(Context& ctx, const Request& req, std::string_view command) {
  auto thumb = arg(req, "thumbprint");
  if (!thumb) thumb = arg(req, "identity");
  if (!thumb) return make_error(std::string(command) + ": which certificate? (give its thumbprint)");
  std::string t = *thumb;
  std::transform(t.begin(), t.end(), t.begin(), ::toupper);
  auto all = load_entries(ctx);
  if (!all) return std::move(all).take_error();
  for (auto& e : *all) {
    if (e.stored.thumbprint == t) return e;
  }
  return make_error("no certificate with thumbprint " + t + " in the store");
}

bool covers(const core::Certificate& c, const std::string& name) {
  return std::any_of(c.domains.begin(), c.domains.end(),
                     [&](const std::string& d) { return core::name_matches(d, name); });
}

// Offers to make `cert` the default SMTP certificate when it is enabled for SMTP and covers the
// server FQDN (Exchange's question). --force says yes; without a terminal the default stays.
Result<void> offer_default(Context& ctx, const Request& req, const core::Certificate& cert, Reply& r) {
  if (!core::has_service(cert.services, core::Service::kSmtp) || !covers(cert, ctx.settings.fqdn)) return {};
  auto current = ctx.store.setting(kDefaultSmtpCertificate);
  if (!current) return std::move(current).take_error();
  std::string now = current->value_or("");
  if (now == cert.thumbprint) return {};
  std::string question = "Overwrite the existing default SMTP certificate" +
                         (now.empty() ? std::string() : ", " + now + ",") + " with " +
                         cert.thumbprint + "?";
  if (req.force || (req.interactive && req.yes) || now.empty()) {
    if (auto w = ctx.store.set_setting(kDefaultSmtpCertificate, cert.thumbprint); !w) return w;
    r.messages.push_back("The default SMTP certificate is now " + cert.thumbprint + ".");
    return {};
  }
  if (req.interactive) {
    r.confirm = question;
    r.confirm_optional = true;
    return {};
  }
  r.messages.push_back("The default SMTP certificate stays " + now + " (no terminal to ask on; --force replaces it).");
  return {};
}

// --key-size (Exchange's -KeySize) for an RSA key: 0 when not given (the key type's size).
Result<int> rsa_key_size(const Request& req, tls::KeyType key_type) {
  auto ks = arg(req, "keysize");
  if (!ks) return 0;
  auto n = parse_integer("--key-size", *ks);
  if (!n) return std::move(n).take_error();
  bool rsa = key_type == tls::KeyType::kRsa2048 || key_type == tls::KeyType::kRsa3072 ||
             key_type == tls::KeyType::kRsa4096;
  if (!rsa) return make_error("--key-size: only for RSA keys (an ECDSA key's size is its curve's)");
  if (*n < tls::kMinRsaBits || *n > tls::kMaxRsaBits || *n % 1024 != 0) {
    return make_error("--key-size: " + std::to_string(tls::kMinRsaBits) + " to " + std::to_string(tls::kMaxRsaBits) +
                      " bits, in steps of 1024");
  }
  auto kt = arg(req, "keytype");
  if (kt && !core::iequals(*kt, "rsa" + std::to_string(*n))) {
    return make_error("--key-size " + std::to_string(*n) + " contradicts --key-type " + *kt);
  }
  return static_cast<int>(*n);
}

std::string ca_warning(const std::string& thumbprint) {
  return "certificate " + thumbprint + " is a CA certificate (basicConstraints CA:TRUE): STARTTLS never " +
         "serves it; use the server certificate it issued, or starling new-certificate";
}

// A pending request has no certificate yet: its thumbprint is the first 40 hex digits of its
// public key's SHA-256, so it is as stable and unique as a certificate's.
Result<std::string> pending_request_thumbprint(const std::string& request_pem) {
  auto id = tls::public_key_id(request_pem);
  if (!id) return id;
  std::string t = id->substr(0, 40);
  std::transform(t.begin(), t.end(), t.begin(), ::toupper);
  return t;
}

// A self-signed certificate made and described, ready for the store.
Result<std::pair<store::StoredCertificate, core::Certificate>> make_self_signed(const tls::SelfSignedRequest& request,
                                                                                core::Services services,
                                                                                const std::string& friendly,
                                                                                bool exportable) {
  auto made = tls::generate_self_signed(request);
  if (!made) return std::move(made).take_error();
  auto props = tls::describe_certificate(made->certificate_pem, made->key_pem);
  if (!props) return std::move(props).take_error();
  store::StoredCertificate sc;
  sc.thumbprint = props->thumbprint;
  sc.certificate_pem = made->certificate_pem;
  sc.key_pem = made->key_pem;
  sc.services = services;
  sc.friendly_name = friendly;
  sc.private_key_exportable = exportable;
  props->services = services;
  props->friendly_name = friendly;
  props->private_key_exportable = exportable;
  return std::pair{std::move(sc), std::move(*props)};
}

// --ecdsa of new-certificate: an ECDSA P-256 certificate beside the RSA one.
Result<bool> ecdsa_pair(const Request& req, tls::KeyType key_type, bool request) {
  auto v = arg(req, "ecdsa");
  if (!v) return false;
  auto b = parse_bool("--ecdsa", v->empty() ? "true" : *v);
  if (!b || !*b) return b;
  if (key_type == tls::KeyType::kEcdsaP256 || key_type == tls::KeyType::kEcdsaP384) {
    return make_error("--ecdsa adds an ECDSA certificate beside an RSA one: not with --key-type ecdsa-*");
  }
  if (request) return make_error("--ecdsa cannot be used with --request: request each key type on its own");
  return true;
}

}  // namespace

// --- get-certificate -------------------------------------------------------------------------

Reply get_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"domain", "thumbprint"}); !o) return failure(kExitUsage, o.error());
  auto all = load_entries(ctx);
  if (!all) return failure(kExitFailed, all.error());
  Reply r;
  r.default_properties = kCertificateColumns;
  auto thumb = arg(req, "thumbprint");
  if (!thumb) thumb = arg(req, "identity");
  if (thumb) {
    std::string t = *thumb;
    std::transform(t.begin(), t.end(), t.begin(), ::toupper);
    for (const auto& e : *all) {
      if (e.stored.thumbprint == t) r.objects.push_back(present(e.props));
    }
    if (r.objects.empty()) return failure(kExitFailed, "no certificate with thumbprint " + t + " in the store");
    return r;
  }
  if (auto domain = arg(req, "domain")) {
    // The selection rule's ranking first (the first is the one transport uses), then the other
    // certificates that list the name but do not qualify.
    std::vector<core::Certificate> props;
    for (const auto& e : *all) {
      if (!e.pending()) props.push_back(e.props);
    }
    // StartTls says what the rule makes of each: selected (one per key type, RSA first: the
    // first is the primary), a candidate, or why it is none.
    auto ranked = core::select_per_key_type(props, *domain, ctx.now);
    for (const core::Certificate* c : ranked) {
      Json o = present(*c);
      o["StartTls"] = "selected";
      r.objects.push_back(o);
    }
    for (const core::Certificate* c : core::rank_starttls_certificates(props, *domain, ctx.now)) {
      if (std::find(ranked.begin(), ranked.end(), c) != ranked.end()) continue;
      Json o = present(*c);
      o["StartTls"] = "candidate";
      r.objects.push_back(o);
      ranked.push_back(c);
    }
    for (const auto& c : props) {
      bool listed = std::any_of(ranked.begin(), ranked.end(), [&](auto* x) { return x->thumbprint == c.thumbprint; });
      if (listed || !covers(c, *domain)) continue;
      Json o = present(c);
      std::string why = core::not_candidate_reason(c);
      o["StartTls"] = "not a candidate: " +
                      (why.empty() ? std::string("a certificate listing the exact name is preferred to a wildcard") : why);
      r.objects.push_back(o);
    }
    return r;
  }
  for (const auto& e : *all) r.objects.push_back(present(e.props));
  return r;
}

// --- new-certificate -------------------------------------------------------------------------

Reply new_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"domain", "domainname", "subject", "subjectname", "keytype", "keysize", "exportable",
                                  "privatekeyexportable", "services", "friendlyname", "validitydays",
                                  "request", "generaterequest", "binary", "binaryencoded", "ecdsa"});
      !o) {
    return failure(kExitUsage, o.error());
  }
  std::vector<std::string> domains;
  for (const char* key : {"domain", "domainname"}) {
    if (auto it = req.args.find(key); it != req.args.end()) {
      for (auto& d : as_list(*it)) domains.push_back(d);
    }
  }
  if (domains.size() > core::kMaxCertificateNames) {
    return failure(kExitUsage, "--domain: " + std::to_string(domains.size()) + " names; a certificate carries at most " +
                                   std::to_string(core::kMaxCertificateNames));
  }
  for (const auto& d : domains) {
    std::string host = d.starts_with("*.") ? d.substr(2) : d;
    if (!core::is_valid_hostname(host)) return failure(kExitUsage, "--domain: '" + d + "' is not a DNS name");
  }
  auto subject = arg(req, "subject");
  if (!subject) subject = arg(req, "subjectname");
  // Exchange's defaults: the server's names; with --domain, the first domain is the subject.
  if (domains.empty()) domains = {ctx.settings.server_name, ctx.settings.fqdn};
  std::string cn = domains.front();
  std::string dn = subject ? *subject : "CN=" + cn;
  tls::KeyType key_type = tls::KeyType::kRsa2048;
  if (auto kt = arg(req, "keytype")) {
    static const std::pair<const char*, tls::KeyType> kTypes[] = {
        {"rsa2048", tls::KeyType::kRsa2048}, {"rsa3072", tls::KeyType::kRsa3072},
        {"rsa4096", tls::KeyType::kRsa4096}, {"ecdsa-p256", tls::KeyType::kEcdsaP256},
        {"ecdsa-p384", tls::KeyType::kEcdsaP384}};
    auto it = std::find_if(std::begin(kTypes), std::end(kTypes), [&](auto& p) { return core::iequals(p.first, *kt); });
    if (it == std::end(kTypes)) return failure(kExitUsage, "--key-type: rsa2048, rsa3072, rsa4096, ecdsa-p256 or ecdsa-p384");
    key_type = it->second;
  }
  bool exportable = false;
  for (const char* key : {"exportable", "privatekeyexportable"}) {
    if (auto v = arg(req, key)) {
      auto b = parse_bool("--exportable", v->empty() ? "true" : *v);
      if (!b) return failure(kExitUsage, b.error());
      exportable = *b;
    }
  }
  std::string friendly = arg(req, "friendlyname").value_or("Starling");
  if (friendly.size() >= 64) return failure(kExitUsage, "--friendly-name: under 64 characters");
  int validity = 5 * 365;
  if (auto v = arg(req, "validitydays")) {
    auto n = parse_integer("--validity-days", *v);
    if (!n || *n < 1 || *n > 36500) return failure(kExitUsage, "--validity-days: 1 to 36500");
    validity = static_cast<int>(*n);
  }
  auto rsa_bits = rsa_key_size(req, key_type);
  if (!rsa_bits) return failure(kExitUsage, rsa_bits.error());
  auto request_file = arg(req, "request");
  if (!request_file) request_file = arg(req, "generaterequest");
  auto ecdsa = ecdsa_pair(req, key_type, request_file.has_value());
  if (!ecdsa) return failure(kExitUsage, ecdsa.error());

  Reply r;
  r.default_properties = kCertificateColumns;
  if (request_file) {
    if (has_arg(req, "services")) return failure(kExitUsage, "--services cannot be used with --request: enable the certificate once it is imported");
    auto made = tls::make_certificate_request(dn, domains, key_type, *rsa_bits);
    if (!made) return failure(kExitFailed, made.error());
    store::StoredCertificate sc;
    auto thumbprint = pending_request_thumbprint(made->request_pem);
    if (!thumbprint) return failure(kExitFailed, thumbprint.error());
    sc.thumbprint = *thumbprint;
    sc.key_pem = made->key_pem;
    sc.request_pem = made->request_pem;
    sc.friendly_name = friendly;
    sc.private_key_exportable = exportable;
    sc.root_ca_type = "Unknown";
    if (auto w = ctx.store.add_certificate(sc); !w) return failure(kExitFailed, w.error());
    bool binary = has_arg(req, "binary") || has_arg(req, "binaryencoded");
    r.file_base64 = to_base64(binary ? made->request_der : made->request_pem);
    r.messages.push_back("Certificate request for " + dn + " written; it is kept as " + sc.thumbprint +
                         " (PendingRequest) until import-certificate brings the CA's answer.");
    r.change = "new certificate request " + sc.thumbprint;
    return r;
  }
  core::Services services = static_cast<core::Services>(core::Service::kSmtp);
  if (auto s = arg(req, "services")) {
    auto parsed = core::parse_services(*s);
    if (!parsed) return failure(kExitUsage, "--services: None, IMAP, POP, UM, IIS, SMTP (comma-separated)");
    services = *parsed;
  }
  tls::SelfSignedRequest ss;
  ss.common_name = cn;
  ss.subject = dn;
  ss.domains = domains;
  ss.key_type = key_type;
  ss.rsa_bits = *rsa_bits;
  ss.validity_days = validity;
  ss.issued_at = std::time(nullptr);
  std::vector<tls::SelfSignedRequest> wanted{ss};
  if (*ecdsa) {
    // The pair: the same names, services and dates, with an ECDSA P-256 key beside the RSA one.
    ss.key_type = tls::KeyType::kEcdsaP256;
    ss.rsa_bits = 0;
    wanted.push_back(ss);
  }
  std::vector<store::StoredCertificate> made;
  std::vector<core::Certificate> described;
  for (const auto& w : wanted) {
    auto c = make_self_signed(w, services, friendly, exportable);
    if (!c) return failure(kExitFailed, c.error());
    made.push_back(c->first);
    described.push_back(c->second);
  }
  for (size_t i = 0; i < made.size(); ++i) {
    if (auto w = ctx.store.add_certificate(made[i]); !w) {
      if (i > 0) (void)ctx.store.remove_certificate(made[0].thumbprint);  // all or nothing
      return failure(kExitFailed, w.error());
    }
  }
  // The default SMTP certificate is one thumbprint: the RSA one of a pair (the widest
  // compatibility); the ECDSA one is served beside it by the selection rule.
  if (auto d = offer_default(ctx, req, described.front(), r); !d) return failure(kExitFailed, d.error());
  for (const auto& c : described) r.objects.push_back(present(c));
  r.change = "new certificate " + made.front().thumbprint;
  if (made.size() > 1) {
    r.messages.push_back("Created the pair for the same names: RSA " + made[0].thumbprint + " and ECDSA " +
                         made[1].thumbprint + "; STARTTLS serves ECDSA to clients that offer it, RSA to the others.");
    r.change = "new certificates " + made[0].thumbprint + " (RSA) and " + made[1].thumbprint + " (ECDSA)";
  }
  return r;
}

// --- import-certificate ----------------------------------------------------------------------

Reply import_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"filecontent", "password", "trustedroot", "friendlyname", "exportable",
                                  "privatekeyexportable", "filename", "filedata"});
      !o) {
    return failure(kExitUsage, o.error());
  }
  auto content = arg(req, "filecontent");
  if (!content) return failure(kExitUsage, "import-certificate: which file? (import-certificate FILE)");
  auto bytes = from_base64(*content);
  if (!bytes) return failure(kExitUsage, bytes.error());
  auto bundle = tls::read_certificate_file(*bytes, arg(req, "password"));
  if (!bundle) return failure(kExitFailed, bundle.error());
  Reply r;
  r.default_properties = kCertificateColumns;

  if (has_arg(req, "trustedroot")) {
    for (const auto& pem : bundle->certificates_pem) {
      if (!tls::is_ca_certificate(pem)) return failure(kExitFailed, "--trusted-root: the file holds a certificate that is not a CA certificate");
      auto d = tls::describe_certificate(pem, "");
      if (!d) return failure(kExitFailed, d.error());
      if (auto w = ctx.store.add_trusted_root(d->thumbprint, pem); !w) {
        return failure(kExitFailed, "the trusted root " + d->thumbprint + " is already in the store");
      }
      r.messages.push_back("Trusted root added: " + d->thumbprint + " " + d->subject);
    }
    r.change = "trusted roots added";
    return r;
  }

  const std::string& leaf = bundle->certificates_pem.front();
  std::string chain;
  for (const auto& pem : bundle->certificates_pem) chain += pem;
  std::string key = bundle->key_pem;
  auto all = load_entries(ctx);
  if (!all) return failure(kExitFailed, all.error());
  std::string answered;  // the pending request this certificate answers
  bool exportable = false;
  std::string friendly = arg(req, "friendlyname").value_or("");
  if (key.empty()) {
    auto leaf_id = tls::public_key_id(leaf);
    for (const auto& e : *all) {
      if (!e.pending()) continue;
      auto req_id = tls::public_key_id(e.stored.request_pem);
      if (leaf_id && req_id && *leaf_id == *req_id) {
        key = e.stored.key_pem;
        answered = e.stored.thumbprint;
        exportable = e.stored.private_key_exportable;
        if (friendly.empty()) friendly = e.stored.friendly_name;
      }
    }
  }
  for (const char* k : {"exportable", "privatekeyexportable"}) {
    if (auto v = arg(req, k)) {
      auto b = parse_bool("--exportable", v->empty() ? "true" : *v);
      if (!b) return failure(kExitUsage, b.error());
      exportable = *b;
    }
  }
  auto props = tls::describe_certificate(leaf, key);
  if (!props) return failure(kExitFailed, props.error());
  for (const auto& e : *all) {
    if (e.stored.thumbprint == props->thumbprint) {
      return failure(kExitFailed, "certificate " + props->thumbprint + " is already in the store");
    }
  }
  store::StoredCertificate sc;
  sc.thumbprint = props->thumbprint;
  sc.certificate_pem = chain;
  sc.key_pem = key;
  sc.services = 0;  // imported certificates must be enabled
  sc.friendly_name = friendly;
  sc.private_key_exportable = exportable;
  auto roots = ctx.store.trusted_roots();
  if (!roots) return failure(kExitFailed, roots.error());
  auto status = tls::check_certificate_status(bundle->certificates_pem, *roots, ctx.now);
  sc.root_ca_type = props->is_self_signed ? "None" : (status.chain_trusted ? "ThirdParty" : "Unknown");
  if (!answered.empty()) {
    if (auto w = ctx.store.remove_certificate(answered); !w) return failure(kExitFailed, w.error());
    r.messages.push_back("The certificate answers the pending request " + answered + " and is joined to its key.");
  }
  if (auto w = ctx.store.add_certificate(sc); !w) return failure(kExitFailed, w.error());
  if (!props->has_private_key) r.warnings.push_back("the store holds no private key for " + sc.thumbprint + ": it cannot be used for STARTTLS");
  if (props->is_ca) r.warnings.push_back(ca_warning(sc.thumbprint));
  if (status.status != "Valid") r.warnings.push_back("certificate status is " + status.status + (status.detail.empty() ? "" : " (" + status.detail + ")"));
  props->services = 0;
  props->friendly_name = friendly;
  props->private_key_exportable = exportable;
  props->status = status.status;
  props->root_ca_type = sc.root_ca_type;
  r.objects.push_back(present(*props));
  r.messages.push_back("Imported with services None: enable it with 'starling enable-certificate " + sc.thumbprint + " --services SMTP'.");
  r.change = "imported certificate " + sc.thumbprint;
  return r;
}

// --- enable-certificate ----------------------------------------------------------------------

Reply enable_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"thumbprint", "services"}); !o) return failure(kExitUsage, o.error());
  auto entry = find_entry(ctx, req, "enable-certificate");
  if (!entry) return failure(kExitFailed, entry.error());
  auto s = arg(req, "services");
  if (!s) return failure(kExitUsage, "enable-certificate: --services SMTP[,IMAP,...] is needed");
  auto services = core::parse_services(*s);
  if (!services || *services == 0) return failure(kExitUsage, "--services: IMAP, POP, UM, IIS, SMTP (comma-separated)");
  if (entry->pending()) return failure(kExitFailed, entry->stored.thumbprint + " is a pending request: import the CA's answer first");
  bool smtp = core::has_service(*services, core::Service::kSmtp);
  if (smtp && !entry->props.has_private_key) {
    return failure(kExitFailed, "certificate " + entry->stored.thumbprint + " has no private key in the store: it cannot serve SMTP");
  }
  Reply r;
  if (smtp && entry->props.is_ca) r.warnings.push_back(ca_warning(entry->stored.thumbprint));
  if (smtp && entry->props.not_after < ctx.now) {
    r.warnings.push_back("certificate " + entry->stored.thumbprint + " expired on " +
                         format_time(std::chrono::system_clock::to_time_t(entry->props.not_after)) +
                         "; it is enabled anyway");
  }
  // Services only accumulate (Enable-ExchangeCertificate never removes one).
  entry->stored.services |= *services;
  entry->props.services = entry->stored.services;
  if (auto w = ctx.store.update_certificate(entry->stored); !w) return failure(kExitFailed, w.error());
  if (auto d = offer_default(ctx, req, entry->props, r); !d) return failure(kExitFailed, d.error());
  r.messages.push_back("Certificate " + entry->stored.thumbprint + " services: " + core::format_services(entry->stored.services) + ".");
  r.change = "enabled certificate " + entry->stored.thumbprint + " for " + core::format_services(*services);
  return r;
}

// --- export-certificate ----------------------------------------------------------------------

Reply export_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"thumbprint", "file", "filename", "password", "binary", "binaryencoded"}); !o) {
    return failure(kExitUsage, o.error());
  }
  auto entry = find_entry(ctx, req, "export-certificate");
  if (!entry) return failure(kExitFailed, entry.error());
  Reply r;
  if (entry->pending()) {
    r.file_base64 = to_base64(entry->stored.request_pem);
    r.messages.push_back("Exported the pending request " + entry->stored.thumbprint + " (PKCS#10).");
    return r;
  }
  auto password = arg(req, "password");
  if (!password) {
    r.file_base64 = to_base64(entry->stored.certificate_pem);
    r.messages.push_back("Exported certificate " + entry->stored.thumbprint + " (PEM, without its key).");
    return r;
  }
  if (!entry->stored.private_key_exportable || entry->stored.key_pem.empty()) {
    return failure(kExitFailed, "the private key of " + entry->stored.thumbprint + " is not exportable");
  }
  auto p12 = tls::make_pkcs12(split_pem(entry->stored.certificate_pem), entry->stored.key_pem, *password,
                              entry->stored.friendly_name);
  if (!p12) return failure(kExitFailed, p12.error());
  r.file_base64 = to_base64(*p12);
  r.messages.push_back("Exported certificate " + entry->stored.thumbprint + " with its private key (PKCS#12).");
  r.change = "exported certificate " + entry->stored.thumbprint + " with its private key";
  r.reconfigures = false;  // audited, but nothing the server serves has changed
  return r;
}

// --- remove-certificate ----------------------------------------------------------------------

Reply remove_certificate(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"thumbprint"}); !o) return failure(kExitUsage, o.error());
  auto entry = find_entry(ctx, req, "remove-certificate");
  if (!entry) return failure(kExitFailed, entry.error());
  // In use: a certificate a TLS connector currently selects (of any key type).
  auto all = load_entries(ctx);
  if (!all) return failure(kExitFailed, all.error());
  auto verdicts = diag::evaluate_connectors(ctx.store, ctx.settings, *all, ctx.now, std::chrono::hours(0));
  if (!verdicts) return failure(kExitFailed, verdicts.error());
  std::vector<std::string> users;
  for (const auto& v : *verdicts) {
    const core::ServedCertificate* served = core::served_of_type(v.selection, entry->props.key_algorithm);
    if (served && served->certificate.thumbprint == entry->stored.thumbprint) {
      users.push_back(v.kind == "Send" ? "send connector '" + v.name + "'" : "receive connector '" + v.name + "'");
    }
  }
  if (!users.empty() && !req.force) {
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
    return failure(kExitFailed, "certificate " + entry->stored.thumbprint + " is in use by " + list +
                                    "; removing it ends STARTTLS there (use --force to remove it anyway)");
  }
  Reply r;
  if (!confirmed(req, "Remove certificate " + entry->stored.thumbprint + " (" + entry->props.subject + ")?", r)) return r;
  if (auto w = ctx.store.remove_certificate(entry->stored.thumbprint); !w) return failure(kExitFailed, w.error());
  auto current = ctx.store.setting(kDefaultSmtpCertificate);
  if (current && current->value_or("") == entry->stored.thumbprint) {
    if (auto w = ctx.store.set_setting(kDefaultSmtpCertificate, ""); !w) return failure(kExitFailed, w.error());
    r.warnings.push_back("it was the default SMTP certificate; there is none now");
  }
  r.messages.push_back("Certificate " + entry->stored.thumbprint + " removed.");
  r.change = "removed certificate " + entry->stored.thumbprint;
  return r;
}

}  // namespace starling::mgmt
