#include "net/outbound_config.hpp"

#include "core/names.hpp"

namespace starling::net {

Result<std::shared_ptr<const OutboundConfig>> load_outbound_config(
    store::Store& store, const core::ServerSettings& server,
    const std::vector<diag::CertificateRecord>& certs, const std::vector<diag::ConnectorVerdict>& verdicts,
    std::vector<std::string>& warnings, std::shared_ptr<const core::Directory> directory) {
  auto cfg = std::make_shared<OutboundConfig>();
  if (!directory) {
    auto d = store.directory();
    if (!d) return std::move(d).take_error();
    directory = *d;
  }
  cfg->directory = directory;
  cfg->server = server;
  auto transport = store.transport_settings();
  if (!transport) return std::move(transport).take_error();
  cfg->transport = *transport;
  auto send = store.send_connectors();
  if (!send) return std::move(send).take_error();
  cfg->send_connectors = *send;
  auto domains = store.accepted_domains();
  if (!domains) return std::move(domains).take_error();
  for (const auto& d : *domains) cfg->accepted_domains.insert(core::normalize_name(d));
  auto receive = store.receive_connectors();
  if (!receive) return std::move(receive).take_error();
  auto roots = store.trusted_roots();
  if (!roots) return std::move(roots).take_error();
  auto generation = store.generation();
  if (generation) cfg->generation = *generation;

  cfg->local_names.insert(core::normalize_name(server.fqdn));
  for (const auto& r : *receive) {
    if (!r.fqdn.empty()) cfg->local_names.insert(core::normalize_name(r.fqdn));
  }
  if (!cfg->transport.external_postmaster_address.empty()) {
    cfg->postmaster = cfg->transport.external_postmaster_address;
  } else {
    // postmaster@ the default accepted domain (set-accepted-domain --make-default; none marked:
    // the first by name), or the server FQDN without accepted domains.
    const core::AcceptedDomain* def = cfg->directory->default_domain();
    cfg->postmaster = "postmaster@" + (def ? def->domain : core::normalize_name(server.fqdn));
  }

  for (const auto& c : *send) {
    if (!c.enabled) continue;
    auto rt = std::make_shared<SendConnectorRuntime>();
    rt->connector = c;
    rt->fqdn = core::effective_fqdn(c, server);
    cfg->local_names.insert(core::normalize_name(rt->fqdn));
    std::string chain, key;
    auto verdict = std::find_if(verdicts.begin(), verdicts.end(), [&](const diag::ConnectorVerdict& v) {
      return v.kind == "Send" && v.name == c.name;
    });
    if (verdict != verdicts.end() && verdict->selection.chosen) {
      const std::string& thumb = verdict->selection.chosen->thumbprint;
      auto rec = std::find_if(certs.begin(), certs.end(), [&](const auto& x) { return x.props.thumbprint == thumb; });
      if (rec != certs.end()) {
        chain = rec->stored.certificate_pem;
        key = rec->stored.key_pem;
        rt->client_thumbprint = thumb;
      }
    } else if (!c.tls_certificate_name.empty()) {
      rt->pinned_certificate_missing = true;
    }
    auto ctx = tls::make_client_context(chain, key, *roots);
    if (!ctx && !chain.empty()) {
      warnings.push_back("send connector '" + c.name + "': client certificate " + rt->client_thumbprint +
                         " cannot be used: " + ctx.error());
      rt->client_thumbprint.clear();
      ctx = tls::make_client_context("", "", *roots);
    }
    if (ctx) {
      rt->tls = *ctx;
    } else {
      warnings.push_back("send connector '" + c.name + "': no TLS client context: " + ctx.error());
    }
    cfg->by_name.emplace(c.name, std::move(rt));
  }
  return std::shared_ptr<const OutboundConfig>(std::move(cfg));
}

}  // namespace starling::net
