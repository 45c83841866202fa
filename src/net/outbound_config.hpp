// What outbound delivery works from, read from the store and swapped whole on every change:
// the transport server settings, the send connectors with a TLS client context each (holding the
// client certificate the selection rule chose for the connector's Fqdn), the accepted domains,
// this server's own names (to recognize an MX list that points back here) and the address
// reports come from. Immutable once built; shared between threads.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/connector.hpp"
#include "core/directory.hpp"
#include "core/result.hpp"
#include "core/transport_settings.hpp"
#include "diag/evaluation.hpp"
#include "store/store.hpp"
#include "tls/client_context.hpp"

namespace starling::net {

struct SendConnectorRuntime {
  core::SendConnector connector;
  std::string fqdn;                  // effective: the connector's Fqdn or the server FQDN
  tls::ClientContextPtr tls;         // null only when a context could not be built
  std::string client_thumbprint;     // the client certificate in `tls`; empty: none
  bool pinned_certificate_missing = false;  // TlsCertificateName set and not in the store
};

struct OutboundConfig {
  core::ServerSettings server;
  core::TransportSettings transport;
  std::vector<core::SendConnector> send_connectors;  // all, as routing reads them
  std::map<std::string, std::shared_ptr<const SendConnectorRuntime>> by_name;  // enabled ones
  std::set<std::string> accepted_domains;  // lower-case
  std::set<std::string> local_names;       // server FQDN and connector FQDNs, lower-case
  std::string postmaster;                  // From: of reports
  std::shared_ptr<const core::Directory> directory;  // recipients and accepted domain types
  int64_t generation = -1;

  const SendConnectorRuntime* connector(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second.get();
  }
};

// `verdicts` and `certs` are those of the same configuration (diag::evaluate_connectors).
// `directory`: the runtime's snapshot; null: read from the store here.
Result<std::shared_ptr<const OutboundConfig>> load_outbound_config(
    store::Store& store, const core::ServerSettings& server,
    const std::vector<diag::CertificateRecord>& certs, const std::vector<diag::ConnectorVerdict>& verdicts,
    std::vector<std::string>& warnings, std::shared_ptr<const core::Directory> directory = nullptr);

}  // namespace starling::net
