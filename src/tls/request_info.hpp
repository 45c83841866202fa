// What a pending certificate request asks for: its subject and DNS names, so get-certificate
// can show a PendingRequest as Exchange does.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::tls {

struct RequestInfo {
  std::string subject;               // "CN=mail.contoso.com, O=Contoso"
  std::vector<std::string> domains;  // CN + SAN dNSNames from the extension request
};

Result<RequestInfo> describe_request(const std::string& request_pem);

}  // namespace starling::tls
