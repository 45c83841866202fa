// Receive connector and server settings (docs/commands.md). Pure data with the defaults an
// administrator expects from Exchange.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::core {

// AuthMechanism flags.
enum AuthMechanism : uint32_t {
  kAuthNone = 0, kAuthTls = 1, kAuthBasic = 2, kAuthBasicRequireTls = 4,
  kAuthExternalAuthoritative = 8,
};

// "Tls, BasicAuth" <-> flags. parse_auth_mechanism refuses unknown names and "None" with others.
std::string format_auth_mechanism(uint32_t flags);
Result<uint32_t> parse_auth_mechanism(std::string_view text);

struct Binding {
  std::string address;  // "0.0.0.0", "127.0.0.1", "::"
  uint16_t port = 25;
};
std::string format_binding(const Binding& b);  // "127.0.0.1:25", "[::]:25"

struct ReceiveConnector {
  std::string name;
  std::vector<Binding> bindings;
  std::vector<std::string> remote_ip_ranges{"0.0.0.0-255.255.255.255", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
  std::string fqdn;                          // empty: the server FQDN
  uint32_t auth_mechanism = kAuthTls;
  std::vector<std::string> permission_groups{"AnonymousUsers", "ExchangeServers"};
  bool require_tls = false;
  std::string tls_certificate_name;
  std::string banner;                        // empty: "220 <fqdn> ..."
  uint64_t max_message_size = 10 * 1024 * 1024;
  uint32_t max_recipients_per_message = 200;
  uint32_t max_header_size = 64 * 1024;
  std::chrono::seconds connection_timeout{600};
  std::chrono::seconds connection_inactivity_timeout{300};
  uint32_t max_inbound_connection = 5000;
  uint32_t max_inbound_connection_per_source = 20;
  uint32_t max_protocol_errors = 5;
  bool protocol_logging_verbose = false;
  bool enabled = true;
  bool pipelining_enabled = true;
  bool eight_bit_mime_enabled = true;
  bool chunking_enabled = true;
  bool size_enabled = true;
  bool enhanced_status_codes_enabled = true;
  bool smtp_utf8_enabled = true;
  bool delivery_status_notification_enabled = true;  // offer DSN (RFC 3461)
};

struct SendConnector {
  std::string name;
  std::vector<std::string> address_spaces{"*"};  // "[smtp:]domain[;cost]"
  std::vector<std::string> smart_hosts;
  bool dns_routing_enabled = true;
  uint16_t port = 25;
  std::string fqdn;                                // empty: the server FQDN
  bool require_tls = false;
  bool ignore_starttls = false;
  std::string tls_auth_level = "EncryptionOnly";   // EncryptionOnly, CertificateValidation, DomainValidation
  std::string tls_domain;
  std::string tls_certificate_name;
  uint64_t max_message_size = 10 * 1024 * 1024;
  std::chrono::seconds connection_inactivity_timeout{600};
  bool enabled = true;
  std::vector<std::string> source_transport_servers;
  // Smart host authentication: "None", "BasicAuth", "BasicAuthRequireTLS", "ExternalAuthoritative".
  std::string smart_host_auth_mechanism = "None";
  // AuthenticationCredential: kept in the store, never shown (present() hides the password).
  std::string authentication_user;
  std::string authentication_password;
  bool use_external_dns_servers_enabled = false;  // resolve with TransportSettings::external_dns_servers
  uint32_t smtp_max_messages_per_connection = 20;
  bool protocol_logging_verbose = false;  // ProtocolLoggingLevel Verbose: the send protocol log
};

struct ServerSettings {
  std::string server_name;
  std::string fqdn;
  std::string admin_group = "starling-admins";
  std::string mode = "hub";                  // "hub" or "edge"
};

// The connector's effective FQDN: its own, or the server's when empty.
inline const std::string& effective_fqdn(const ReceiveConnector& c, const ServerSettings& s) {
  return c.fqdn.empty() ? s.fqdn : c.fqdn;
}
inline const std::string& effective_fqdn(const SendConnector& c, const ServerSettings& s) {
  return c.fqdn.empty() ? s.fqdn : c.fqdn;
}

// JSON forms with Exchange's property names ("Fqdn", "MaxMessageSize", ...): the
// store keeps connectors this way and the commands show and change them by these names.
// from_json reads only the keys present, so a partial object updates an existing connector.
void to_json(nlohmann::ordered_json& j, const ReceiveConnector& c);
void from_json(const nlohmann::ordered_json& j, ReceiveConnector& c);
void to_json(nlohmann::ordered_json& j, const SendConnector& c);
void from_json(const nlohmann::ordered_json& j, SendConnector& c);

// "127.0.0.1:25", "[::]:25", ":25" (all addresses) -> Binding.
Result<Binding> parse_binding(std::string_view text);

}  // namespace starling::core
