// The checks behind certificate_limits.hpp, on OpenSSL objects. Internal to src/tls. Each runs
// in time linear in its input and before the expensive work it guards (key derivation, chain
// verification, building tables over the names).
#pragma once

#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace starling::tls {

// Why `key` may not serve TLS here, or empty: RSA (and RSA-PSS) of kMinRsaBits..kMaxRsaBits,
// EC on P-256, P-384 or P-521 (named curves only), or Ed25519 — what OpenSSL's TLS signs with.
std::string key_limit_exceeded(const EVP_PKEY* key);

// Why `cert` is outside the limits (more than core::kMaxCertificateNames names counting the
// subject CN and every subjectAltName entry, or its public key), or empty.
std::string certificate_limit_exceeded(X509* cert);

// Iteration counts of password-based encryption, added up against the limits before each one
// is run.
class IterationBudget {
 public:
  // `what` names the part in the error ("the MAC", "an encrypted part", "the private key").
  Result<void> spend(int64_t iterations, const std::string& what);
  // The iteration count of a PBES1 or PBES2 (PBKDF2) AlgorithmIdentifier, spent.
  Result<void> spend(const X509_ALGOR* algorithm, const std::string& what);

 private:
  int64_t spent_ = 0;
};

}  // namespace starling::tls
