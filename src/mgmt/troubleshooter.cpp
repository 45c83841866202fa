// test-starttls: the troubleshooting procedure of docs/certificates.md in one command. For every
// connector that offers TLS it shows the certificate the rule selects — or the condition that
// prevents one and the exact command that fixes it — and, with --probe, what a client really
// gets on each binding, once offering only RSA signature algorithms and once ECDSA first (with
// dual RSA/ECDSA certificates each is seen served to the clients it is for). Exit status 0 only
// when every connector is healthy, for monitoring.
#include <algorithm>

#include "diag/evaluation.hpp"
#include "diag/probe.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "core/names.hpp"
#include "store/store.hpp"

namespace starling::mgmt {
namespace {

// "ok", "expired: ..." (12016) or "expires in N hours" (12018), for one served certificate.
std::string expiry_condition(const core::ServedCertificate& s) {
  if (s.expired) return "expired: STARTTLS is offered with an expired certificate (event 12016)";
  if (s.expires_soon) return "expires in " + std::to_string(s.hours_remaining) + " hours (event 12018)";
  return "ok";
}

// The selected certificates, each with its key type and state; the Condition and the Fix of a
// connector that has them. A problem with the ECDSA certificate beside a good RSA one is named.
void describe_selected(const diag::ConnectorVerdict& v, Json& o) {
  const core::Certificate& c = *v.selection.chosen;
  o["Thumbprint"] = c.thumbprint;
  o["KeyType"] = c.key_algorithm;
  o["Subject"] = c.subject;
  o["NotAfter"] = format_time(std::chrono::system_clock::to_time_t(c.not_after));
  Json list = Json::array();
  std::string problems, fix;
  for (const auto& served : v.selection.by_key_type) {
    const core::Certificate& s = served.certificate;
    std::string state = expiry_condition(served);
    list.push_back(s.key_algorithm + " " + s.thumbprint + " (" + s.subject + ", NotAfter " +
                   format_time(std::chrono::system_clock::to_time_t(s.not_after)) + "): " + state);
    if (state == "ok") continue;
    bool alone = v.selection.by_key_type.size() == 1;
    problems += (problems.empty() ? "" : "; ") + (alone ? state : s.key_algorithm + " " + s.thumbprint + " " + state);
    if (fix.empty()) {
      std::string key_type = s.key_algorithm == "ECDSA" ? " --key-type ecdsa-p256" : "";
      fix = "starling new-certificate --domain " + v.fqdn + key_type + " --services SMTP (or renew through your CA)";
    }
  }
  o["Certificates"] = list;
  o["Condition"] = problems.empty() ? "ok" : problems;
  o["Fix"] = fix;
}

// The probe of one binding with one offer of signature algorithms: what was served, compared
// with what the rule selected for a client that offers those (RSA only: the RSA certificate,
// none when only another type is selected; ECDSA first: the ECDSA one, else the primary).
std::string probe_result(const diag::ConnectorVerdict& v, const core::Binding& b, diag::ProbeOffer offer,
                         bool& healthy) {
  auto p = diag::probe_starttls(b, v.fqdn, std::chrono::seconds(5), offer);
  std::string where = core::format_binding(b) + " " + diag::describe(offer);
  const core::ServedCertificate* rsa = core::served_of_type(v.selection, "RSA");
  const core::ServedCertificate* ecdsa = core::served_of_type(v.selection, "ECDSA");
  const core::ServedCertificate* expected = offer == diag::ProbeOffer::kRsaOnly ? rsa : ecdsa;
  if (!expected && offer != diag::ProbeOffer::kRsaOnly && !v.selection.by_key_type.empty()) {
    expected = &v.selection.by_key_type.front();
  }
  if (!p.ok) {
    // STARTTLS missing is expected (and already explained) when no certificate qualifies, and a
    // client offering RSA only cannot be served when no RSA certificate is selected.
    bool no_rsa = v.selection.chosen && !expected && p.starttls_offered;
    if (no_rsa) return where + ": " + p.detail + " (expected: no RSA certificate is selected)";
    if (v.selection.chosen || p.starttls_offered) healthy = false;
    return where + ": " + p.detail;
  }
  if (!v.selection.chosen || !expected) {
    healthy = false;
    return where + ": " + p.tls_version + " with " + p.served_key_type + " " + p.served_thumbprint +
           ", but no certificate is selected for it";
  }
  if (p.served_thumbprint != expected->certificate.thumbprint) {
    healthy = false;
    return where + ": mismatch: served " + p.served_key_type + " " + p.served_thumbprint + ", selected " +
           expected->certificate.key_algorithm + " " + expected->certificate.thumbprint;
  }
  return where + ": " + p.tls_version + " with the selected " + p.served_key_type + " certificate " +
         p.served_thumbprint;
}

}  // namespace

Reply test_starttls(Context& ctx, const Request& req) {
  if (auto o = only_options(req, {"connector", "probe"}); !o) return failure(kExitUsage, o.error());
  auto certs = diag::load_certificates(ctx.store, ctx.now);
  if (!certs) return failure(kExitFailed, certs.error());
  auto days = ctx.store.setting("certificate_warning_days");
  int warn_days = days && *days ? std::atoi((*days)->c_str()) : 30;
  auto verdicts = diag::evaluate_connectors(ctx.store, ctx.settings, *certs, ctx.now,
                                            std::chrono::hours(24 * (warn_days > 0 ? warn_days : 30)));
  if (!verdicts) return failure(kExitFailed, verdicts.error());
  bool probe = false;
  if (auto p = arg(req, "probe")) {
    auto b = parse_bool("--probe", p->empty() ? "true" : *p);
    if (!b) return failure(kExitUsage, b.error());
    probe = *b;
  }
  auto only = arg(req, "connector");
  if (!only) only = arg(req, "identity");

  Reply r;
  r.default_properties = {"Connector", "Kind", "Fqdn", "Healthy", "Thumbprint", "Certificates", "Fix"};
  bool all_healthy = true;
  for (const auto& v : *verdicts) {
    if (only && !core::iequals(*only, v.name)) continue;
    Json o;
    o["Connector"] = v.name;
    o["Kind"] = v.kind;
    o["Fqdn"] = v.fqdn;
    if (!v.tls_certificate_name.empty()) o["TlsCertificateName"] = v.tls_certificate_name;
    bool healthy = v.selection.chosen.has_value();
    if (v.selection.chosen) {
      describe_selected(v, o);
      healthy = std::none_of(v.selection.by_key_type.begin(), v.selection.by_key_type.end(),
                             [](const core::ServedCertificate& s) { return s.expired; });
    } else {
      o["Thumbprint"] = "";
      o["Condition"] = diag::condition_text(v);
      o["Fix"] = core::fix_command(v.selection, v.fqdn, v.kind, v.name);
    }
    if (probe && v.kind == "Receive") {
      // Twice per binding: a client offering RSA only, and one offering ECDSA first, so each
      // certificate of a dual pair is seen served to the clients it is meant for.
      Json results = Json::array();
      for (const auto& b : v.bindings) {
        for (auto offer : {diag::ProbeOffer::kRsaOnly, diag::ProbeOffer::kEcdsaFirst}) {
          results.push_back(probe_result(v, b, offer, healthy));
        }
      }
      o["Probe"] = results;
      r.default_properties = {"Connector", "Kind", "Fqdn", "Healthy", "Thumbprint", "Certificates", "Probe", "Fix"};
    }
    o["Healthy"] = healthy;
    all_healthy = all_healthy && healthy;
    r.objects.push_back(o);
  }
  if (only && r.objects.empty()) return failure(kExitFailed, "no connector named '" + *only + "' offers TLS");
  if (!all_healthy) r.exit_code = kExitFailed;
  return r;
}

}  // namespace starling::mgmt
