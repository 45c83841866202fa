#include "net/runtime.hpp"

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
      const std::string& thumb = verdict->selection.chosen->thumbprint;
      auto rec = std::find_if(certs->begin(), certs->end(), [&](const auto& x) { return x.props.thumbprint == thumb; });
      auto ctx = cache.get(thumb, rec->stored.certificate_pem, rec->stored.key_pem);
      if (!ctx) {
        rt.warnings.push_back("receive connector '" + c.name + "': certificate " + thumb + " cannot be used: " + ctx.error());
      } else {
        cr->tls = *ctx;
        cr->certificate_thumbprint = thumb;
        in_use.insert(thumb);
      }
    }
    rt.connectors.push_back(std::move(cr));
  }
  // Contexts of certificates no longer in the store are dropped; the SNI ones are rebuilt lazily.
  std::set<std::string> keep = in_use;
  for (const auto& c : *certs) keep.insert(c.props.thumbprint);
  cache.retain(keep);
  return rt;
}

}  // namespace starling::net
