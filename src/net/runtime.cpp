#include "net/runtime.hpp"

#include "core/names.hpp"
#include "core/selection.hpp"
#include "tls/certificate_io.hpp"

namespace starling::net {

Result<Runtime> load_runtime(store::Store& store, tls::ContextCache& cache) {
  Runtime rt;
  auto settings = store.server_settings();
  if (!settings) return std::move(settings).take_error();
  rt.settings = *settings;
  auto connectors = store.receive_connectors();
  if (!connectors) return std::move(connectors).take_error();
  auto domains = store.accepted_domains();
  if (!domains) return std::move(domains).take_error();
  auto stored = store.certificates();
  if (!stored) return std::move(stored).take_error();

  auto accepted = std::make_shared<std::set<std::string>>();
  for (const auto& d : *domains) accepted->insert(core::normalize_name(d));
  std::string postmaster_domain = domains->empty() ? rt.settings.fqdn : domains->front();

  // Certificate properties, parsed once per load; the selection rule reads only these.
  std::vector<core::Certificate> certs;
  std::vector<const store::StoredCertificate*> by_index;
  for (const auto& sc : *stored) {
    auto c = tls::describe_certificate(sc.certificate_pem, sc.key_pem);
    if (!c) {
      rt.warnings.push_back("certificate " + sc.thumbprint + " is unreadable: " + c.error());
      continue;
    }
    c->services = sc.services;
    c->friendly_name = sc.friendly_name;
    certs.push_back(std::move(*c));
    by_index.push_back(&sc);
  }

  std::set<std::string> in_use;
  for (const auto& c : *connectors) {
    if (!c.enabled) continue;
    auto cr = std::make_shared<ConnectorRuntime>();
    cr->connector = c;
    cr->fqdn = core::effective_fqdn(c, rt.settings);
    cr->accepted_domains = accepted;
    cr->postmaster_domain = postmaster_domain;
    for (const auto& text : c.remote_ip_ranges) {
      auto r = core::parse_ip_range(text);
      if (r) {
        cr->remote_ranges.push_back(*r);
      } else {
        rt.warnings.push_back("receive connector '" + c.name + "': " + r.error() + " (ignored)");
      }
    }
    if (c.auth_mechanism & core::kAuthTls) {
      auto chosen = core::select_starttls_certificate(certs, cr->fqdn);
      if (!chosen) {
        rt.warnings.push_back("receive connector '" + c.name + "': no SMTP-enabled certificate covers " +
                              cr->fqdn + "; STARTTLS is not offered");
      } else {
        size_t i = static_cast<size_t>(
            std::find_if(certs.begin(), certs.end(),
                         [&](const core::Certificate& x) { return x.thumbprint == chosen->thumbprint; }) -
            certs.begin());
        auto ctx = cache.get(chosen->thumbprint, by_index[i]->certificate_pem, by_index[i]->key_pem);
        if (!ctx) {
          rt.warnings.push_back("receive connector '" + c.name + "': certificate " +
                                chosen->thumbprint + " cannot be used: " + ctx.error());
        } else {
          cr->tls = *ctx;
          cr->certificate_thumbprint = chosen->thumbprint;
          in_use.insert(chosen->thumbprint);
        }
      }
    }
    rt.connectors.push_back(std::move(cr));
  }
  cache.retain(in_use);
  return rt;
}

}  // namespace starling::net
