// Receive and send connectors as the commands see them: validation (every rule says why it
// refused), and applying command-line options to a connector's properties by name, so
// `--max-message-size 20MB` and `-MaxMessageSize 20MB` both set MaxMessageSize.
#pragma once

#include <vector>

#include "core/connector.hpp"
#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::mgmt {

Result<void> validate_receive_connector(const core::ReceiveConnector& c,
                                        const std::vector<core::ReceiveConnector>& others);
Result<void> validate_send_connector(const core::SendConnector& c);
// Spells enumerated values the canonical way ("basicauth" -> "BasicAuth") before validation.
void canonicalize(core::SendConnector& c);

// Sets the properties named by `args` (keys as option_key) on `properties` (a connector's JSON
// form), converting each value to the property's type. Keys in `ignored` are skipped. Unknown
// option names are refused with the list of known properties.
Result<void> apply_options(Json& properties, const Json& args, const std::vector<std::string>& ignored);

// Converts a JSON form back to its struct (a connector, the transport settings). Refuses, with
// the property's name where the struct says it, what the struct cannot hold: a malformed value
// or a number out of the field's range (one that would not survive the round trip).
template <typename T>
Result<void> read_properties(const Json& properties, T& out) {
  try {
    properties.get_to(out);
  } catch (const std::exception& e) {
    return make_error(e.what());
  }
  Json back = out;
  for (const auto& [k, v] : properties.items()) {
    if (v.is_number() && back.contains(k) && back[k] != v) return make_error(k + ": " + v.dump() + " is out of range");
  }
  return {};
}

// Display forms with Identity and ObjectClass. A send connector's AuthenticationCredential is
// shown as its user name only: the password never leaves the store. Given the server's
// settings, EffectiveFqdn follows Fqdn: the connector's own FQDN, or the server's when Fqdn is
// empty (inherited); the shell's table and list show such an Fqdn as "NAME (inherited)".
inline constexpr const char* kEffectiveFqdn = "EffectiveFqdn";
Json present(const core::ReceiveConnector& c, const core::ServerSettings& s);
Json present(const core::SendConnector& c, const core::ServerSettings& s);

}  // namespace starling::mgmt
