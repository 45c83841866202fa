#include "net/runtime.hpp"

#include <algorithm>
#include <map>

#include "core/names.hpp"

namespace starling::net {

std::chrono::hours warning_window(store::Store& store) {
  auto days = store.setting("certificate_warning_days");
  int d = 30;
  if (days && *days) {
    try {
      d = std::stoi(**days);
    } catch (...) {
    }
  }
  return std::chrono::hours(24 * std::max(0, d));
}

namespace {

// Gives the connector the TLS context serving every certificate the rule selected for it (one
// per key type: RSA and ECDSA side by side); returns the context's cache key.
Result<std::string> use_certificates(ConnectorRuntime& cr, const core::Selection& selection,
                                     const std::vector<diag::CertificateRecord>& certs, tls::ContextCache& cache,
                                     std::vector<std::string>& warnings) {
  std::vector<tls::CertificateAndKey> served;
  for (const auto& s : selection.by_key_type) {
    const std::string& thumb = s.certificate.thumbprint;
    auto rec = std::find_if(certs.begin(), certs.end(), [&](const auto& x) { return x.props.thumbprint == thumb; });
    if (rec == certs.end()) return make_error("certificate " + thumb + " is no longer in the store");
    served.push_back({thumb, rec->stored.certificate_pem, rec->stored.key_pem});
  }
  auto ctx = cache.get(served);
  if (!ctx && served.size() > 1) {
    // One unusable certificate must not take STARTTLS away: serve the first that works alone,
    // the primary first.
    std::string together = tls::ContextCache::key_for(served) + " cannot be served together (" + ctx.error() + ")";
    std::vector<tls::CertificateAndKey> candidates = std::move(served);
    for (auto& c : candidates) {
      served = {c};
      ctx = cache.get(served);
      if (ctx) break;
    }
    warnings.push_back("receive connector '" + cr.connector.name + "': certificates " + together +
                       (ctx ? "; serving " + served.front().thumbprint + " alone" : ""));
  }
  if (!ctx) return make_error("certificate " + served.front().thumbprint + " cannot be used: " + ctx.error());
  cr.tls = *ctx;
  cr.certificate_thumbprint = served.front().thumbprint;
  const core::ServedCertificate* ecdsa = core::served_of_type(selection, "ECDSA");
  if (ecdsa && std::any_of(served.begin(), served.end(),
                           [&](const auto& s) { return s.thumbprint == ecdsa->certificate.thumbprint; })) {
    cr.ecdsa_certificate_thumbprint = ecdsa->certificate.thumbprint;
  }
  return tls::ContextCache::key_for(served);
}

}  // namespace

Result<Runtime> load_runtime(store::Store& store, tls::ContextCache& cache) {
  Runtime rt;
  auto settings = store.server_settings();
  if (!settings) return std::move(settings).take_error();
  rt.settings = *settings;
  auto generation = store.generation();
  if (generation) rt.generation = *generation;
  auto connectors = store.receive_connectors();
  if (!connectors) return std::move(connectors).take_error();
  auto domains = store.accepted_domains();
  if (!domains) return std::move(domains).take_error();
  auto now = std::chrono::system_clock::now();
  auto certs = diag::load_certificates(store, now);
  if (!certs) return std::move(certs).take_error();
  auto verdicts = diag::evaluate_connectors(store, rt.settings, *certs, now, warning_window(store));
  if (!verdicts) return std::move(verdicts).take_error();
  rt.verdicts = *verdicts;

  auto directory = store.directory();
  if (!directory) return std::move(directory).take_error();
  rt.directory = *directory;

  auto accepted = std::make_shared<std::set<std::string>>();
  for (const auto& d : *domains) accepted->insert(core::normalize_name(d));
  std::string postmaster_domain = domains->empty() ? rt.settings.fqdn : domains->front();
  auto sni = diag::build_sni_table(*certs, now);
  auto outbound = load_outbound_config(store, rt.settings, *certs, rt.verdicts, rt.warnings, rt.directory);
  if (!outbound) return std::move(outbound).take_error();
  rt.outbound = *outbound;

  std::set<std::string> in_use;
  for (const auto& c : *connectors) {
    if (!c.enabled) continue;
    auto cr = std::make_shared<ConnectorRuntime>();
    cr->connector = c;
    cr->fqdn = core::effective_fqdn(c, rt.settings);
    cr->accepted_domains = accepted;
    cr->postmaster_domain = postmaster_domain;
    cr->sni = sni;
    cr->contexts = &cache;
    cr->outbound = rt.outbound;
    cr->directory = rt.directory;
    cr->may_relay = (c.auth_mechanism & core::kAuthExternalAuthoritative) &&
                    std::find(c.permission_groups.begin(), c.permission_groups.end(), "ExchangeServers") !=
                        c.permission_groups.end();
    for (const auto& text : c.remote_ip_ranges) {
      auto r = core::parse_ip_range(text);
      if (r) {
        cr->remote_ranges.push_back(*r);
      } else {
        rt.warnings.push_back("receive connector '" + c.name + "': " + r.error() + " (ignored)");
      }
    }
    auto verdict = std::find_if(rt.verdicts.begin(), rt.verdicts.end(), [&](const diag::ConnectorVerdict& v) {
      return v.kind == "Receive" && v.name == c.name;
    });
    if (verdict != rt.verdicts.end() && verdict->selection.chosen) {
      if (auto used = use_certificates(*cr, verdict->selection, *certs, cache, rt.warnings); !used) {
        rt.warnings.push_back("receive connector '" + c.name + "': " + used.error());
      } else {
        in_use.insert(*used);
      }
    }
    rt.connectors.push_back(std::move(cr));
  }
  // Contexts serving a certificate no longer in the store are dropped (the SNI ones are built on
  // first use and kept with the rest).
  std::set<std::string> keep = in_use;
  for (const auto& c : *certs) keep.insert(c.props.thumbprint);
  cache.retain(keep);
  return rt;
}

}  // namespace starling::net
