// What the listeners serve, read from the store: the server settings, each enabled receive
// connector with its effective FQDN and the TLS context chosen for it, the SNI table, and the
// accepted domains. Built whole and swapped whole, so a connection always sees one consistent
// version; the connector verdicts are kept for the events and the troubleshooter.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/connector.hpp"
#include "core/directory.hpp"
#include "core/ip_range.hpp"
#include "core/result.hpp"
#include "diag/evaluation.hpp"
#include "net/outbound_config.hpp"
#include "store/store.hpp"
#include "tls/server_context.hpp"
#include "tls/sni.hpp"

namespace starling::net {

struct ConnectorRuntime {
  core::ReceiveConnector connector;
  std::string fqdn;                       // effective: connector Fqdn or the server FQDN
  tls::ContextPtr tls;                    // null: STARTTLS is not offered
  std::string certificate_thumbprint;     // of the primary certificate behind `tls` (RSA first)
  std::string ecdsa_certificate_thumbprint;  // of the ECDSA one served beside it, or empty
  std::string postmaster_domain;
  std::vector<core::IpRange> remote_ranges;  // parsed RemoteIPRanges
  std::shared_ptr<const std::set<std::string>> accepted_domains;  // lower-case
  std::shared_ptr<const tls::SniTable> sni;
  tls::ContextCache* contexts = nullptr;
  // AuthMechanism ExternalAuthoritative with PermissionGroups ExchangeServers: the connection is
  // secured by other means and its clients may relay.
  bool may_relay = false;
  std::shared_ptr<const OutboundConfig> outbound;  // routes, for 550 5.4.4 at RCPT
  // Recipients and accepted domain types, for RCPT TO and AUTH; the same snapshot for every
  // connector of one runtime (and its outbound config).
  std::shared_ptr<const core::Directory> directory;
};

struct Runtime {
  core::ServerSettings settings;
  std::vector<std::shared_ptr<const ConnectorRuntime>> connectors;  // enabled ones only
  std::vector<diag::ConnectorVerdict> verdicts;  // every TLS connector, receive and send
  std::vector<std::string> warnings;
  int64_t generation = -1;
  std::shared_ptr<const OutboundConfig> outbound;
  std::shared_ptr<const core::Directory> directory;  // never null after load_runtime
};

// Reads the store and builds the runtime. TLS contexts come from `cache`, which must outlive
// every runtime built with it.
Result<Runtime> load_runtime(store::Store& store, tls::ContextCache& cache);

// The warning window for events 12018 (server setting certificate_warning_days, default 30).
std::chrono::hours warning_window(store::Store& store);

}  // namespace starling::net
