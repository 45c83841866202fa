#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <cctype>
#include <stdexcept>

#include "core/connector.hpp"

namespace starling::core {
namespace {

// Reads `key` into `field` when present. Type errors throw nlohmann::json::type_error, which
// the callers turn into "property X: ..." messages.
template <typename T>
void read(const nlohmann::ordered_json& j, const char* key, T& field) {
  if (j.contains(key)) j.at(key).get_to(field);
}

void read_seconds(const nlohmann::ordered_json& j, const char* key, std::chrono::seconds& field) {
  if (j.contains(key)) field = std::chrono::seconds(j.at(key).get<int64_t>());
}

// ProtocolLoggingLevel: None or Verbose in any case; anything else is refused, not taken as None.
void read_logging_level(const nlohmann::ordered_json& j, bool& verbose) {
  if (!j.contains("ProtocolLoggingLevel")) return;
  std::string level = j.at("ProtocolLoggingLevel").get<std::string>();
  for (char& ch : level) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (level != "none" && level != "verbose") {
    throw std::invalid_argument("ProtocolLoggingLevel: None or Verbose");
  }
  verbose = level == "verbose";
}

}  // namespace

Result<Binding> parse_binding(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    return make_error("binding '" + std::string(text) + "': expected IP:PORT, e.g. 0.0.0.0:25 or [::]:25");
  }
  std::string host(text.substr(0, colon));
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']') return make_error("binding '" + std::string(text) + "': unbalanced [ ]");
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
    return make_error("binding '" + std::string(text) + "': '" + host + "' is not an IP address");
  }
  std::string port(text.substr(colon + 1));
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return make_error("binding '" + std::string(text) + "': port must be 0-65535");
  }
  return Binding{host, static_cast<uint16_t>(std::stoul(port))};
}

void to_json(nlohmann::ordered_json& j, const ReceiveConnector& c) {
  std::vector<std::string> bindings;
  for (const auto& b : c.bindings) bindings.push_back(format_binding(b));
  j = nlohmann::ordered_json{
      {"Name", c.name},
      {"Bindings", bindings},
      {"RemoteIPRanges", c.remote_ip_ranges},
      {"Fqdn", c.fqdn},
      {"AuthMechanism", format_auth_mechanism(c.auth_mechanism)},
      {"PermissionGroups", c.permission_groups},
      {"RequireTLS", c.require_tls},
      {"TlsCertificateName", c.tls_certificate_name},
      {"Banner", c.banner},
      {"MaxMessageSize", c.max_message_size},
      {"MaxRecipientsPerMessage", c.max_recipients_per_message},
      {"MaxHeaderSize", c.max_header_size},
      {"ConnectionTimeout", c.connection_timeout.count()},
      {"ConnectionInactivityTimeout", c.connection_inactivity_timeout.count()},
      {"MaxInboundConnection", c.max_inbound_connection},
      {"MaxInboundConnectionPerSource", c.max_inbound_connection_per_source},
      {"MaxProtocolErrors", c.max_protocol_errors},
      {"ProtocolLoggingLevel", c.protocol_logging_verbose ? "Verbose" : "None"},
      {"Enabled", c.enabled},
      {"PipeliningEnabled", c.pipelining_enabled},
      {"EightBitMimeEnabled", c.eight_bit_mime_enabled},
      {"ChunkingEnabled", c.chunking_enabled},
      {"SizeEnabled", c.size_enabled},
      {"EnhancedStatusCodesEnabled", c.enhanced_status_codes_enabled},
      {"SmtpUtf8Enabled", c.smtp_utf8_enabled},
      {"DeliveryStatusNotificationEnabled", c.delivery_status_notification_enabled},
  };
}

void from_json(const nlohmann::ordered_json& j, ReceiveConnector& c) {
  read(j, "Name", c.name);
  if (j.contains("Bindings")) {
    c.bindings.clear();
    for (const auto& b : j.at("Bindings")) {
      auto parsed = parse_binding(b.get<std::string>());
      if (!parsed) throw std::invalid_argument(parsed.error());
      c.bindings.push_back(*parsed);
    }
  }
  read(j, "RemoteIPRanges", c.remote_ip_ranges);
  read(j, "Fqdn", c.fqdn);
  if (j.contains("AuthMechanism")) {
    const auto& v = j.at("AuthMechanism");
    if (v.is_number()) {
      c.auth_mechanism = v.get<uint32_t>();
    } else {
      auto parsed = parse_auth_mechanism(v.get<std::string>());
      if (!parsed) throw std::invalid_argument(parsed.error());
      c.auth_mechanism = *parsed;
    }
  }
  read(j, "PermissionGroups", c.permission_groups);
  read(j, "RequireTLS", c.require_tls);
  read(j, "TlsCertificateName", c.tls_certificate_name);
  read(j, "Banner", c.banner);
  read(j, "MaxMessageSize", c.max_message_size);
  read(j, "MaxRecipientsPerMessage", c.max_recipients_per_message);
  read(j, "MaxHeaderSize", c.max_header_size);
  read_seconds(j, "ConnectionTimeout", c.connection_timeout);
  read_seconds(j, "ConnectionInactivityTimeout", c.connection_inactivity_timeout);
  read(j, "MaxInboundConnection", c.max_inbound_connection);
  read(j, "MaxInboundConnectionPerSource", c.max_inbound_connection_per_source);
  read(j, "MaxProtocolErrors", c.max_protocol_errors);
  read_logging_level(j, c.protocol_logging_verbose);
  read(j, "Enabled", c.enabled);
  read(j, "PipeliningEnabled", c.pipelining_enabled);
  read(j, "EightBitMimeEnabled", c.eight_bit_mime_enabled);
  read(j, "ChunkingEnabled", c.chunking_enabled);
  read(j, "SizeEnabled", c.size_enabled);
  read(j, "EnhancedStatusCodesEnabled", c.enhanced_status_codes_enabled);
  read(j, "SmtpUtf8Enabled", c.smtp_utf8_enabled);
  read(j, "DeliveryStatusNotificationEnabled", c.delivery_status_notification_enabled);
}

void to_json(nlohmann::ordered_json& j, const SendConnector& c) {
  j = nlohmann::ordered_json{
      {"Name", c.name},
      {"AddressSpaces", c.address_spaces},
      {"SmartHosts", c.smart_hosts},
      {"DNSRoutingEnabled", c.dns_routing_enabled},
      {"Port", c.port},
      {"Fqdn", c.fqdn},
      {"RequireTLS", c.require_tls},
      {"IgnoreSTARTTLS", c.ignore_starttls},
      {"TlsAuthLevel", c.tls_auth_level},
      {"TlsDomain", c.tls_domain},
      {"TlsCertificateName", c.tls_certificate_name},
      {"MaxMessageSize", c.max_message_size},
      {"ConnectionInactivityTimeout", c.connection_inactivity_timeout.count()},
      {"Enabled", c.enabled},
      {"SourceTransportServers", c.source_transport_servers},
      {"SmartHostAuthMechanism", c.smart_host_auth_mechanism},
      // The store's form, password included: the store persists connectors through to_json.
      // What the commands show goes through mgmt::present(), which keeps only the user name.
      {"AuthenticationCredential", {{"UserName", c.authentication_user}, {"Password", c.authentication_password}}},
      {"UseExternalDNSServersEnabled", c.use_external_dns_servers_enabled},
      {"SmtpMaxMessagesPerConnection", c.smtp_max_messages_per_connection},
      {"ProtocolLoggingLevel", c.protocol_logging_verbose ? "Verbose" : "None"},
  };
}

void from_json(const nlohmann::ordered_json& j, SendConnector& c) {
  read(j, "Name", c.name);
  read(j, "AddressSpaces", c.address_spaces);
  read(j, "SmartHosts", c.smart_hosts);
  read(j, "DNSRoutingEnabled", c.dns_routing_enabled);
  read(j, "Port", c.port);
  read(j, "Fqdn", c.fqdn);
  read(j, "RequireTLS", c.require_tls);
  read(j, "IgnoreSTARTTLS", c.ignore_starttls);
  read(j, "TlsAuthLevel", c.tls_auth_level);
  read(j, "TlsDomain", c.tls_domain);
  read(j, "TlsCertificateName", c.tls_certificate_name);
  read(j, "MaxMessageSize", c.max_message_size);
  read_seconds(j, "ConnectionInactivityTimeout", c.connection_inactivity_timeout);
  read(j, "Enabled", c.enabled);
  read(j, "SourceTransportServers", c.source_transport_servers);
  read(j, "SmartHostAuthMechanism", c.smart_host_auth_mechanism);
  if (j.contains("AuthenticationCredential")) {
    const auto& cred = j.at("AuthenticationCredential");
    if (cred.is_null()) {
      c.authentication_user.clear();
      c.authentication_password.clear();
    } else if (cred.is_object()) {
      c.authentication_user = cred.value("UserName", std::string());
      c.authentication_password = cred.value("Password", std::string());
    } else {
      // Never echo the value: it may be a password.
      throw std::invalid_argument("AuthenticationCredential: expected {\"UserName\": ..., \"Password\": ...}");
    }
  }
  read(j, "UseExternalDNSServersEnabled", c.use_external_dns_servers_enabled);
  read(j, "SmtpMaxMessagesPerConnection", c.smtp_max_messages_per_connection);
  read_logging_level(j, c.protocol_logging_verbose);
}

}  // namespace starling::core
