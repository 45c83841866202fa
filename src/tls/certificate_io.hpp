// X.509 in and out of Starling: generating keys and self-signed certificates, and reading a
// certificate's properties into core::Certificate (docs/certificates.md).
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/certificate.hpp"
#include "core/result.hpp"

namespace starling::tls {

enum class KeyType { kRsa2048, kRsa3072, kRsa4096, kEcdsaP256, kEcdsaP384 };

struct SelfSignedRequest {
  std::string common_name;
  std::vector<std::string> domains;  // SAN dNSNames; the CN is added when missing
  KeyType key_type = KeyType::kRsa2048;
  int rsa_bits = 0;  // an RSA key of this size instead (kMinRsaBits..kMaxRsaBits); 0: key_type's
  int validity_days = 5 * 365;
  // The moment the validity is counted from (Unix seconds); 0: now. A pair made together (setup
  // --ecdsa, new-certificate --ecdsa) shares one, so neither is the newer by a second's tick.
  int64_t issued_at = 0;
  // A full DN ("CN=mail.contoso.com, O=Contoso, C=US", see distinguished_name.hpp). When set it
  // replaces CN=common_name, and its CN (if any) is the one added to the domains.
  std::string subject;
};

struct KeyAndCertificate {
  std::string key_pem;          // PKCS#8, unencrypted: protected by the store's file mode
  std::string certificate_pem;
};

// A leaf certificate (basicConstraints CA:FALSE), serverAuth and clientAuth. Error when the
// names are more than core::kMaxCertificateNames or the RSA size is outside the limits.
Result<KeyAndCertificate> generate_self_signed(const SelfSignedRequest& request);

// Certificate::key_algorithm of a key: "RSA", "ECDSA", or OpenSSL's short name of its type.
std::string key_algorithm(const EVP_PKEY* key);

// Reads a PEM certificate's properties: all of core::Certificate but Services, FriendlyName,
// exportability and RootCAType (the store's), and Status and chain_trusted (certificate_status).
// `key_pem` (may be empty) is checked against it for HasPrivateKey. Linear in the number of
// names, whatever it is: a certificate over the limits (stored by an older version) is read,
// with limit_exceeded saying why it is never selected.
Result<core::Certificate> describe_certificate(const std::string& certificate_pem,
                                               const std::string& key_pem);

}  // namespace starling::tls
