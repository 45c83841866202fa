// The live STARTTLS probe of test-starttls --probe: connects to a receive connector's binding
// as a client would — banner, EHLO, STARTTLS advertised?, STARTTLS with SNI = the FQDN — and
// reports the certificate served (its thumbprint), or where it went wrong. Blocking, with a
// timeout on every step; loopback is used for wildcard bindings.
#pragma once

#include <chrono>
#include <string>

#include "core/connector.hpp"

namespace starling::diag {

struct ProbeResult {
  bool ok = false;           // a handshake completed
  bool starttls_offered = false;
  std::string served_thumbprint;
  std::string tls_version;
  std::string detail;        // what went wrong, in words
};

ProbeResult probe_starttls(const core::Binding& binding, const std::string& sni,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace starling::diag
