// What the listeners serve, read from the store: the server settings, each enabled receive
// connector with its effective FQDN and the TLS context chosen for it, and the accepted
// domains. Built whole and swapped whole, so a connection always sees one consistent version.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/connector.hpp"
#include "core/ip_range.hpp"
#include "core/result.hpp"
#include "store/store.hpp"
#include "tls/server_context.hpp"

namespace starling::net {

struct ConnectorRuntime {
  core::ReceiveConnector connector;
  std::string fqdn;                       // effective: connector Fqdn or the server FQDN
  tls::ContextPtr tls;                    // null: STARTTLS is not offered
  std::string certificate_thumbprint;     // of the certificate behind `tls`
  std::string postmaster_domain;
  std::vector<core::IpRange> remote_ranges;  // parsed RemoteIPRanges
  std::shared_ptr<const std::set<std::string>> accepted_domains;  // lower-case
};

struct Runtime {
  core::ServerSettings settings;
  std::vector<std::shared_ptr<const ConnectorRuntime>> connectors;  // enabled ones only
  std::vector<std::string> warnings;  // e.g. a TLS connector without a certificate
};

// Reads the store and builds the runtime. TLS contexts come from `cache`.
Result<Runtime> load_runtime(store::Store& store, tls::ContextCache& cache);

}  // namespace starling::net
