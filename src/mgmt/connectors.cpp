#include "mgmt/connectors.hpp"

#include <algorithm>
#include <cstdint>
#include <set>

#include "core/ip_range.hpp"
#include "core/names.hpp"
#include "core/routing.hpp"
#include "mgmt/values.hpp"

namespace starling::mgmt {
namespace {

const std::set<std::string> kSmartHostAuthMechanisms{"None", "BasicAuth", "BasicAuthRequireTLS",
                                                     "ExternalAuthoritative"};

const std::set<std::string> kPermissionGroups{"AnonymousUsers", "ExchangeUsers", "ExchangeServers",
                                              "Partners", "Custom"};

bool same_ranges(const core::ReceiveConnector& a, const core::ReceiveConnector& b) {
  auto norm = [](std::vector<std::string> v) {
    for (auto& x : v) x = core::to_lower(x);
    std::sort(v.begin(), v.end());
    return v;
  };
  return norm(a.remote_ip_ranges) == norm(b.remote_ip_ranges);
}

bool bindings_overlap(const core::Binding& a, const core::Binding& b) {
  if (a.port != b.port) return false;
  auto any = [](const std::string& addr) { return addr == "0.0.0.0" || addr == "::"; };
  return a.address == b.address || any(a.address) || any(b.address);
}

}  // namespace

Result<void> validate_receive_connector(const core::ReceiveConnector& c,
                                        const std::vector<core::ReceiveConnector>& others) {
  if (c.name.empty() || c.name.size() > 64 || c.name.find('\\') != std::string::npos) {
    return make_error("Name: 1 to 64 characters, without '\\'");
  }
  if (c.bindings.empty()) return make_error("Bindings: at least one IP:PORT is needed");
  for (const auto& b : c.bindings) {
    if (b.port == 0) return make_error("Bindings: port 0 is not a port to listen on");
  }
  if (c.remote_ip_ranges.empty()) return make_error("RemoteIPRanges: at least one range is needed");
  for (const auto& r : c.remote_ip_ranges) {
    if (auto parsed = core::parse_ip_range(r); !parsed) return std::move(parsed).take_error();
  }
  if (!c.fqdn.empty() && !core::is_valid_hostname(c.fqdn)) {
    return make_error("Fqdn: '" + c.fqdn + "' is not a valid DNS name");
  }
  uint32_t auth = c.auth_mechanism;
  if ((auth & core::kAuthBasicRequireTls) && !((auth & core::kAuthBasic) && (auth & core::kAuthTls))) {
    return make_error("AuthMechanism: BasicAuthRequireTLS needs both BasicAuth and Tls");
  }
  if (c.require_tls && !(auth & core::kAuthTls)) {
    return make_error("RequireTLS: needs Tls in AuthMechanism (STARTTLS must be offered)");
  }
  for (const auto& g : c.permission_groups) {
    if (!kPermissionGroups.contains(g)) {
      return make_error("PermissionGroups: unknown group '" + g +
                        "' (AnonymousUsers, ExchangeUsers, ExchangeServers, Partners, Custom)");
    }
  }
  if (!c.banner.empty() && !c.banner.starts_with("220")) {
    return make_error("Banner: must start with 220");
  }
  if (!c.tls_certificate_name.empty() &&
      (!c.tls_certificate_name.starts_with("<I>") || c.tls_certificate_name.find("<S>") == std::string::npos)) {
    return make_error("TlsCertificateName: expected <I>issuer<S>subject");
  }
  if (c.max_message_size == 0 || c.max_recipients_per_message == 0 || c.max_header_size == 0 ||
      c.max_inbound_connection == 0 || c.max_inbound_connection_per_source == 0 ||
      c.max_protocol_errors == 0) {
    return make_error("limits must be greater than zero");
  }
  if (c.connection_timeout.count() <= 0 || c.connection_inactivity_timeout.count() <= 0) {
    return make_error("timeouts must be greater than zero");
  }
  if (c.connection_inactivity_timeout > c.connection_timeout) {
    return make_error("ConnectionInactivityTimeout cannot exceed ConnectionTimeout");
  }
  for (const auto& o : others) {
    if (core::iequals(o.name, c.name)) continue;
    for (const auto& b : c.bindings) {
      for (const auto& ob : o.bindings) {
        if (bindings_overlap(b, ob) && same_ranges(c, o)) {
          return make_error("Bindings: " + core::format_binding(b) + " is already used by receive connector '" +
                            o.name + "' with the same RemoteIPRanges; give one of them other ranges or another binding");
        }
      }
    }
  }
  return {};
}

Result<void> validate_send_connector(const core::SendConnector& c) {
  if (c.name.empty() || c.name.size() > 64 || c.name.find('\\') != std::string::npos) {
    return make_error("Name: 1 to 64 characters, without '\\'");
  }
  if (c.address_spaces.empty()) return make_error("AddressSpaces: at least one address space is needed");
  for (const auto& a : c.address_spaces) {
    if (auto parsed = core::parse_address_space(a); !parsed) {
      return make_error("AddressSpaces: " + parsed.error());
    }
  }
  for (const auto& h : c.smart_hosts) {
    if (auto parsed = core::parse_smart_host(h); !parsed) return make_error("SmartHosts: " + parsed.error());
  }
  if (!c.dns_routing_enabled && c.smart_hosts.empty()) {
    return make_error("SmartHosts: needed when DNSRoutingEnabled is false");
  }
  if (c.dns_routing_enabled && !c.smart_hosts.empty()) {
    return make_error("SmartHosts: set DNSRoutingEnabled to false to route through smart hosts");
  }
  if (c.port == 0) return make_error("Port: must be 1-65535");
  if (!c.fqdn.empty() && !core::is_valid_hostname(c.fqdn)) {
    return make_error("Fqdn: '" + c.fqdn + "' is not a valid DNS name");
  }
  static const std::set<std::string> kLevels{"EncryptionOnly", "CertificateValidation", "DomainValidation"};
  if (!kLevels.contains(c.tls_auth_level)) {
    return make_error("TlsAuthLevel: EncryptionOnly, CertificateValidation or DomainValidation");
  }
  if (c.tls_auth_level == "DomainValidation" && c.tls_domain.empty()) {
    return make_error("TlsDomain: needed with TlsAuthLevel DomainValidation");
  }
  if (c.require_tls && c.ignore_starttls) {
    return make_error("RequireTLS and IgnoreSTARTTLS cannot both be true");
  }
  if (!c.tls_certificate_name.empty() &&
      (!c.tls_certificate_name.starts_with("<I>") || c.tls_certificate_name.find("<S>") == std::string::npos)) {
    return make_error("TlsCertificateName: expected <I>issuer<S>subject");
  }
  if (c.max_message_size == 0) return make_error("MaxMessageSize: must be greater than zero");
  if (c.smtp_max_messages_per_connection < 1 || c.smtp_max_messages_per_connection > 1000) {
    return make_error("SmtpMaxMessagesPerConnection: must be 1-1000");
  }
  // Smart host authentication (Exchange's SmartHostAuthMechanism): only towards smart hosts.
  // BasicAuthRequireTLS needs no RequireTLS: the client itself refuses to send AUTH before
  // STARTTLS has succeeded, so the password never crosses the wire in clear.
  const std::string& mech = c.smart_host_auth_mechanism;
  if (!kSmartHostAuthMechanisms.contains(mech)) {
    return make_error("SmartHostAuthMechanism: '" + mech + "' is not None, BasicAuth, BasicAuthRequireTLS or ExternalAuthoritative");
  }
  if (mech != "None" && c.dns_routing_enabled) {
    return make_error("SmartHostAuthMechanism: " + mech + " is for smart hosts; set SmartHosts and DNSRoutingEnabled false");
  }
  if (mech == "BasicAuth" || mech == "BasicAuthRequireTLS") {
    if (c.authentication_user.empty() || c.authentication_password.empty()) {
      return make_error("SmartHostAuthMechanism: " + mech +
                        " needs an AuthenticationCredential (--authentication-credential-file FILE)");
    }
  }
  if (mech == "BasicAuthRequireTLS" && c.ignore_starttls) {
    return make_error("SmartHostAuthMechanism: BasicAuthRequireTLS needs STARTTLS; IgnoreSTARTTLS must be false");
  }
  if (c.authentication_user.find('\0') != std::string::npos ||
      c.authentication_password.find('\0') != std::string::npos) {
    return make_error("AuthenticationCredential: the user name and password cannot contain NUL");
  }
  return {};
}

void canonicalize(core::SendConnector& c) {
  for (const auto& m : kSmartHostAuthMechanisms) {
    if (core::iequals(m, c.smart_host_auth_mechanism)) c.smart_host_auth_mechanism = m;
  }
}

Result<void> apply_options(Json& properties, const Json& args, const std::vector<std::string>& ignored) {
  for (const auto& [key, value] : args.items()) {
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    std::string name;
    for (const auto& [pname, pvalue] : properties.items()) {
      if (option_key(pname) == key) name = pname;
    }
    if (name.empty()) {
      std::string known;
      for (const auto& [pname, pvalue] : properties.items()) known += (known.empty() ? "" : ", ") + pname;
      return make_error("unknown property '" + key + "'; the properties are: " + known);
    }
    Json& target = properties[name];
    std::string text = as_string(value);
    if (target.is_boolean()) {
      auto b = parse_bool(name, text);
      if (!b) return std::move(b).take_error();
      target = *b;
    } else if (target.is_number()) {
      auto kind = numeric_kind(name).value_or(NumericKind::kPlain);
      if (kind == NumericKind::kDuration) {
        auto s = parse_seconds(name, text);
        if (!s) return std::move(s).take_error();
        target = *s;
      } else if (kind == NumericKind::kSize) {
        auto s = parse_size(name, text);
        if (!s) return std::move(s).take_error();
        target = *s;
      } else {
        auto n = parse_integer(name, text);
        if (!n) return std::move(n).take_error();
        if (name == "Port" && (*n < 1 || *n > 65535)) return make_error("Port: must be 1-65535");
        if (*n > UINT32_MAX) return make_error(name + ": " + text + " is too large");
        target = *n;
      }
    } else if (target.is_array()) {
      // PowerShell clears a list with $null; an empty string does it too (--x '').
      target = core::iequals(text, "$null") ? std::vector<std::string>{} : as_list(value);
    } else if (target.is_string()) {
      target = core::iequals(text, "$null") ? std::string() : text;
    } else {
      return make_error(name + ": cannot be set with an option");
    }
  }
  return {};
}

namespace {

// The connector's properties, with EffectiveFqdn after Fqdn when the server is known: Fqdn stays
// as stored (empty: inherited), EffectiveFqdn is the name really used, so nobody compares a
// certificate against an empty field.
template <typename Connector>
void add_properties(Json& out, const Connector& c, const core::ServerSettings* s) {
  Json props = Json(c);
  for (const auto& [k, v] : props.items()) {
    out[k] = v;
    if (k == "Fqdn" && s) out[kEffectiveFqdn] = core::effective_fqdn(c, *s);
  }
}

Json present_send(const core::SendConnector& c, const core::ServerSettings& s) {
  Json out;
  out["Identity"] = c.name;
  add_properties(out, c, &s);
  // Never the password: the user name alone says which credential is configured.
  out["AuthenticationCredential"] = c.authentication_user;
  out["ObjectClass"] = "msExchRoutingSMTPConnector";
  return out;
}

}  // namespace

Json present(const core::ReceiveConnector& c, const core::ServerSettings& s) {
  Json out;
  out["Identity"] = s.server_name + "\\" + c.name;
  add_properties(out, c, &s);
  out["ObjectClass"] = "msExchSmtpReceiveConnector";
  return out;
}

Json present(const core::SendConnector& c, const core::ServerSettings& s) { return present_send(c, s); }

}  // namespace starling::mgmt
