// test-starttls: the troubleshooting procedure of docs/certificates.md in one command. For every
// connector that offers TLS it shows the certificate the rule selects — or the condition that
// prevents one and the exact command that fixes it — and, with --probe, what a client really
// gets on each binding. Exit status 0 only when every connector is healthy, for monitoring.
#include "diag/evaluation.hpp"
#include "diag/probe.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "core/names.hpp"
#include "store/store.hpp"

namespace starling::mgmt {

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
  r.default_properties = {"Connector", "Kind", "Fqdn", "Healthy", "Thumbprint", "Fix"};
  bool all_healthy = true;
  for (const auto& v : *verdicts) {
    if (only && !core::iequals(*only, v.name)) continue;
    Json o;
    o["Connector"] = v.name;
    o["Kind"] = v.kind;
    o["Fqdn"] = v.fqdn;
    if (!v.tls_certificate_name.empty()) o["TlsCertificateName"] = v.tls_certificate_name;
    bool healthy = v.selection.chosen.has_value() && !v.selection.expired;
    if (v.selection.chosen) {
      const core::Certificate& c = *v.selection.chosen;
      o["Thumbprint"] = c.thumbprint;
      o["Subject"] = c.subject;
      o["NotAfter"] = format_time(std::chrono::system_clock::to_time_t(c.not_after));
      o["Condition"] = v.selection.expired ? "expired: STARTTLS is offered with an expired certificate (event 12016)"
                       : v.selection.expires_soon
                           ? "expires in " + std::to_string(v.selection.hours_remaining) + " hours (event 12018)"
                           : "ok";
      o["Fix"] = v.selection.expired || v.selection.expires_soon
                     ? "starling new-certificate --domain " + v.fqdn + " --services SMTP (or renew through your CA)"
                     : "";
    } else {
      o["Thumbprint"] = "";
      o["Condition"] = diag::condition_text(v);
      o["Fix"] = core::fix_command(v.selection, v.fqdn, v.kind, v.name);
    }
    if (probe && v.kind == "Receive") {
      Json results = Json::array();
      for (const auto& b : v.bindings) {
        auto p = diag::probe_starttls(b, v.fqdn);
        std::string result;
        std::string where = core::format_binding(b);
        if (!p.ok) {
          result = where + ": " + p.detail;
          // STARTTLS missing is expected (and already explained) when no certificate qualifies.
          if (v.selection.chosen || p.starttls_offered) healthy = false;
        } else if (!v.selection.chosen) {
          result = where + ": " + p.tls_version + " with " + p.served_thumbprint + ", but no certificate is selected";
          healthy = false;
        } else if (p.served_thumbprint != v.selection.chosen->thumbprint) {
          result = where + ": mismatch: served " + p.served_thumbprint + ", selected " + v.selection.chosen->thumbprint;
          healthy = false;
        } else {
          result = where + ": " + p.tls_version + " with the selected certificate";
        }
        results.push_back(result);
      }
      o["Probe"] = results;
      r.default_properties = {"Connector", "Kind", "Fqdn", "Healthy", "Thumbprint", "Probe", "Fix"};
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
