#include "diag/evaluation.hpp"

#include <ctime>
#include <algorithm>
#include <unordered_map>

#include "core/names.hpp"
#include "metrics/metrics.hpp"

#include "tls/certificate_io.hpp"
#include "tls/certificate_status.hpp"
#include "tls/request_info.hpp"

namespace starling::diag {
namespace {

// "(c) ... (1A2B...: the store holds no private key that matches it; 3C4D...: ...)".
std::string with_reasons(std::string text, const core::Selection& s) {
  for (size_t i = 0; i < s.thumbprints.size() && i < s.reasons.size(); ++i) {
    text += (i == 0 ? " (" : "; ") + s.thumbprints[i] + ": " + s.reasons[i];
  }
  return s.thumbprints.empty() || s.reasons.empty() ? text : text + ")";
}

std::string base_condition_text(const ConnectorVerdict& v) {
  const core::Selection& s = v.selection;
  switch (s.condition) {
    case core::NoCertificate::kNoneListsName:
      return "(a) no certificate lists " + v.fqdn + " in its CertificateDomains";
    case core::NoCertificate::kNotEnabledForSmtp:
      return "(b) certificates list " + v.fqdn + " but are not enabled for SMTP";
    case core::NoCertificate::kUnusable:
      return "(c) certificates list " + v.fqdn +
             " but lack a usable private key, are not X.509 v3, or their key usage forbids TLS server use"
             ", or they exceed Starling's limits";
    case core::NoCertificate::kCaCertificate:
      return "(d) certificates list " + v.fqdn +
             " but are CA certificates (basicConstraints CA:TRUE), which are not served for STARTTLS";
    case core::NoCertificate::kPinnedMissing:
      return "no usable certificate in the store matches TlsCertificateName " + v.tls_certificate_name;
  }
  return "";
}

}  // namespace

std::string condition_text(const ConnectorVerdict& v) { return with_reasons(base_condition_text(v), v.selection); }

std::vector<std::pair<std::string, std::string>> not_found_fields(const ConnectorVerdict& v) {
  std::string thumbprints;
  for (const auto& t : v.selection.thumbprints) thumbprints += (thumbprints.empty() ? "" : ", ") + t;
  std::vector<std::pair<std::string, std::string>> f{
      {"Fqdn", v.fqdn},
      {"Connector", v.name},
      {"ConnectorKind", v.kind},
      {"Condition", condition_text(v)},
      {"Thumbprints", thumbprints.empty() ? "none" : thumbprints},
      {"Fix", core::fix_command(v.selection, v.fqdn, v.kind, v.name)},
  };
  if (!v.tls_certificate_name.empty()) f.emplace_back("TlsCertificateName", v.tls_certificate_name);
  return f;
}

std::vector<std::pair<std::string, std::string>> chosen_fields(const ConnectorVerdict& v) {
  return served_fields(v, v.selection.by_key_type.front());
}

std::vector<std::pair<std::string, std::string>> served_fields(const ConnectorVerdict& v,
                                                               const core::ServedCertificate& served) {
  const core::Certificate& c = served.certificate;
  std::time_t t = std::chrono::system_clock::to_time_t(c.not_after);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {{"Thumbprint", c.thumbprint}, {"KeyType", c.key_algorithm}, {"Subject", c.subject},
          {"Connector", v.name},        {"ConnectorKind", v.kind},    {"Fqdn", v.fqdn},
          {"NotAfter", buf},            {"HoursRemaining", std::to_string(served.hours_remaining)},
          {"Certificates", served_list(v.selection)}};
}

namespace {

// The served certificates in key-type order (RSA, ECDSA, others), whichever is the primary: the
// order events name them in and the suppression keys follow, so that they stay the same when a
// newer certificate of the other type becomes the primary.
std::vector<const core::ServedCertificate*> in_key_type_order(const core::Selection& s) {
  std::vector<const core::ServedCertificate*> out;
  for (const auto& served : s.by_key_type) out.push_back(&served);
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return core::key_type_before(a->certificate.key_algorithm, b->certificate.key_algorithm);
  });
  return out;
}

}  // namespace

std::vector<ExpiryWarning> expiry_warnings(const ConnectorVerdict& v) {
  std::vector<ExpiryWarning> out;
  auto ordered = in_key_type_order(v.selection);
  for (const core::ServedCertificate* served : ordered) {
    if (!served->expired && !served->expires_soon) continue;
    // The first by key type keeps the connector's own suppression key, so a connector with one
    // certificate repeats its warning as before.
    std::string suffix = served == ordered.front() ? "" : ":" + served->certificate.key_algorithm;
    out.push_back({served->expired, suffix, served_fields(v, *served)});
  }
  return out;
}

std::string served_list(const core::Selection& s) {
  std::string out;
  for (const core::ServedCertificate* served : in_key_type_order(s)) {
    out += (out.empty() ? "" : ", ") + served->certificate.key_algorithm + " " + served->certificate.thumbprint;
  }
  return out;
}

std::vector<std::string> split_pem(const std::string& pem) {
  std::vector<std::string> out;
  static const std::string kBegin = "-----BEGIN CERTIFICATE-----";
  static const std::string kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != std::string::npos) {
    size_t end = pem.find(kEnd, pos);
    if (end == std::string::npos) break;
    out.push_back(pem.substr(pos, end + kEnd.size() - pos) + "\n");
    pos = end + kEnd.size();
  }
  return out;
}

Result<std::vector<CertificateRecord>> load_certificates(store::Store& store, core::SysTime now) {
  auto stored = store.certificates();
  if (!stored) return std::move(stored).take_error();
  auto roots = store.trusted_roots();
  if (!roots) return std::move(roots).take_error();
  std::vector<CertificateRecord> out;
  for (auto& sc : *stored) {
    CertificateRecord e{sc, {}};
    if (e.pending()) {
      auto info = tls::describe_request(sc.request_pem);
      e.props.thumbprint = sc.thumbprint;
      if (info) {
        e.props.subject = info->subject;
        e.props.domains = info->domains;
      }
      e.props.has_private_key = !sc.key_pem.empty();
      e.props.status = "PendingRequest";
      e.props.root_ca_type = "Unknown";
      e.props.not_before = e.props.not_after = std::chrono::system_clock::from_time_t(sc.added_at);
    } else {
      auto d = tls::describe_certificate(sc.certificate_pem, sc.key_pem);
      if (!d) return make_error("certificate " + sc.thumbprint + " in the store is unreadable: " + d.error());
      e.props = *d;
      auto status = tls::check_certificate_status(split_pem(sc.certificate_pem), *roots, now);
      e.props.status = status.status;
      e.props.chain_trusted = status.chain_trusted;
      e.props.root_ca_type = sc.root_ca_type;
    }
    e.props.services = sc.services;
    e.props.friendly_name = sc.friendly_name;
    e.props.private_key_exportable = sc.private_key_exportable;
    out.push_back(std::move(e));
  }
  return out;
}

void publish_certificate_metrics(const std::vector<ConnectorVerdict>& verdicts) {
  metrics::clear_gauge(metrics::kConnectorNoCertificate);
  metrics::clear_gauge(metrics::kCertificateExpiry);
  for (const auto& v : verdicts) {
    metrics::Labels labels{{"kind", v.kind == "Send" ? "send" : "receive"}, {"connector", v.name}};
    metrics::set_gauge(metrics::kConnectorNoCertificate, labels, v.selection.chosen ? 0 : 1);
    if (v.selection.chosen) metrics::set_countdown(metrics::kCertificateExpiry, labels, v.selection.chosen->not_after);
  }
}

std::vector<core::Certificate> selectable(const std::vector<CertificateRecord>& certs) {
  std::vector<core::Certificate> out;
  for (const auto& c : certs) {
    if (!c.pending()) out.push_back(c.props);
  }
  return out;
}

std::shared_ptr<const tls::SniTable> build_sni_table(const std::vector<CertificateRecord>& certs,
                                                     core::SysTime now, std::vector<std::string>* names) {
  // One pass over every name of every candidate, hashed: linear in the names of the store
  // (ranking a copy of each name's certificates against all their names was quadratic, and a
  // certificate with 60,000 names took minutes at every reconfiguration).
  std::unordered_map<std::string, std::vector<const core::Certificate*>> by_name;
  std::unordered_map<const core::Certificate*, const CertificateRecord*> record_of;
  for (const auto& rec : certs) {
    if (rec.pending() || !core::not_candidate_reason(rec.props).empty()) continue;
    record_of.emplace(&rec.props, &rec);
    for (const auto& d : rec.props.domains) {
      auto& listing = by_name[core::normalize_name(d)];
      if (listing.empty() || listing.back() != &rec.props) listing.push_back(&rec.props);
    }
  }
  auto table = std::make_shared<tls::SniTable>();
  std::unordered_map<std::string, std::shared_ptr<const tls::SniCertificate>> made;  // by thumbprints
  for (const auto& [name, listing] : by_name) {
    // Each listing holds the certificates listing this name exactly as written (an exact name,
    // or one wildcard), so the rule's choice per key type is the best of each type in it.
    std::vector<tls::CertificateAndKey> served;
    for (const core::Certificate* best : core::best_per_key_type(listing, now)) {
      const CertificateRecord* rec = record_of.at(best);
      served.push_back({rec->props.thumbprint, rec->stored.certificate_pem, rec->stored.key_pem});
    }
    if (served.empty()) continue;
    auto& cert = made[tls::ContextCache::key_for(served)];
    if (!cert) {
      tls::SniCertificate c{served.front().thumbprint, served.front().chain_pem, served.front().key_pem, {}};
      if (served.size() > 1) c.served = std::move(served);
      cert = std::make_shared<tls::SniCertificate>(std::move(c));
    }
    table->add(name, cert);
    if (names) names->push_back(name);
  }
  if (names) std::sort(names->begin(), names->end());
  return table;
}

Result<std::vector<ConnectorVerdict>> evaluate_connectors(store::Store& store, const core::ServerSettings& settings,
                                                          const std::vector<CertificateRecord>& certs,
                                                          core::SysTime now, std::chrono::hours window) {
  auto receive = store.receive_connectors();
  if (!receive) return std::move(receive).take_error();
  auto send = store.send_connectors();
  if (!send) return std::move(send).take_error();
  std::vector<core::Certificate> props = selectable(certs);
  std::vector<ConnectorVerdict> out;
  for (const auto& c : *receive) {
    if (!c.enabled || !(c.auth_mechanism & core::kAuthTls)) continue;
    ConnectorVerdict v{"Receive", c.name, core::effective_fqdn(c, settings), c.tls_certificate_name, {}, c.bindings};
    v.selection = core::select_certificate(props, {v.fqdn, v.tls_certificate_name, now, window});
    out.push_back(std::move(v));
  }
  for (const auto& c : *send) {
    if (!c.enabled || c.ignore_starttls) continue;
    ConnectorVerdict v{"Send", c.name, c.fqdn.empty() ? settings.fqdn : c.fqdn, c.tls_certificate_name, {}, {}};
    v.selection = core::select_certificate(props, {v.fqdn, v.tls_certificate_name, now, window});
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace starling::diag
