// The live STARTTLS probe of test-starttls --probe: connects to a receive connector's binding
// as a client would — banner, EHLO, STARTTLS advertised?, STARTTLS with SNI = the FQDN — and
// reports the certificate served (its thumbprint and key type), or where it went wrong. Blocking, with a
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
  std::string served_key_type;  // "RSA", "ECDSA", ... (Certificate::key_algorithm)
  std::string tls_version;
  std::string detail;        // what went wrong, in words
};

// The client's signature algorithms decide which of a dual RSA/ECDSA pair the server serves.
enum class ProbeOffer {
  kDefault,      // OpenSSL's own list
  kRsaOnly,      // RSA-PSS and PKCS#1 only: what a client without ECDSA gets
  kEcdsaFirst,   // ECDSA first, then RSA: what most current clients get
};
// "offering RSA only", "offering ECDSA first".
std::string describe(ProbeOffer offer);

ProbeResult probe_starttls(const core::Binding& binding, const std::string& sni,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5),
                           ProbeOffer offer = ProbeOffer::kDefault);

}  // namespace starling::diag
