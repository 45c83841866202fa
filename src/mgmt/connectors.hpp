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

// Sets the properties named by `args` (keys as option_key) on `properties` (a connector's JSON
// form), converting each value to the property's type. Keys in `ignored` are skipped. Unknown
// option names are refused with the list of known properties.
Result<void> apply_options(Json& properties, const Json& args, const std::vector<std::string>& ignored);

// Display forms with Identity and ObjectClass.
Json present(const core::ReceiveConnector& c, const core::ServerSettings& s);
Json present(const core::SendConnector& c);

}  // namespace starling::mgmt
