// Certificate files as administrators bring them to import-certificate and take them away from
// export-certificate (docs/certificates.md): PEM, DER, PKCS#7 and PKCS#12, read into one shape.
// Nothing here trusts the input: every malformed file is an error value, never a crash.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::tls {

struct CertificateBundle {
  // The end-entity certificate first when it can be identified (the one matching the key, else
  // the only one that issued none of the others), then its issuers in chain order, then the rest
  // in file order. Duplicates are dropped.
  std::vector<std::string> certificates_pem;
  std::string key_pem;  // PKCS#8, unencrypted; empty when the file carries no key
};

// Reads a certificate file of any supported format, detected from its bytes:
//  - PEM: CERTIFICATE blocks, PKCS7 blocks, and at most one PRIVATE KEY, RSA PRIVATE KEY or
//    EC PRIVATE KEY block (ENCRYPTED PRIVATE KEY too, with `password`);
//  - DER: one certificate, a PKCS#7 SignedData (certificates only), or a PKCS#12 file, which
//    needs `password` unless it was made without one.
// Errors: nothing readable, no certificate, a key that matches none of the certificates, a
// missing or wrong PKCS#12 password.
Result<CertificateBundle> read_certificate_file(const std::string& bytes,
                                                const std::optional<std::string>& password);

// A PKCS#12 file (DER) holding `key_pem` (may be empty) and `chain_pem` (leaf first), encrypted
// with OpenSSL 3's defaults (AES-256-CBC, PBKDF2, SHA-256 MAC). `friendly_name` (may be empty)
// labels the leaf and its key. Error when the key, given, does not match chain_pem[0].
Result<std::string> make_pkcs12(const std::vector<std::string>& chain_pem,
                                const std::string& key_pem, const std::string& password,
                                const std::string& friendly_name);

}  // namespace starling::tls
