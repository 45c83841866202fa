// X.509 in and out of Starling: generating keys and self-signed certificates, and reading a
// certificate's properties into core::Certificate (EXCHANGE-MODEL.md §1).
#pragma once

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
  int validity_days = 5 * 365;
  // A full DN ("CN=mail.contoso.com, O=Contoso, C=US", see distinguished_name.hpp). When set it
  // replaces CN=common_name, and its CN (if any) is the one added to the domains.
  std::string subject;
};

struct KeyAndCertificate {
  std::string key_pem;          // PKCS#8, unencrypted: protected by the store's file mode
  std::string certificate_pem;
};

Result<KeyAndCertificate> generate_self_signed(const SelfSignedRequest& request);

// Reads a PEM certificate's properties: all of core::Certificate but Services, FriendlyName,
// exportability and RootCAType (the store's), and Status and chain_trusted (certificate_status).
// `key_pem` (may be empty) is checked against it for HasPrivateKey.
Result<core::Certificate> describe_certificate(const std::string& certificate_pem,
                                               const std::string& key_pem);

}  // namespace starling::tls
