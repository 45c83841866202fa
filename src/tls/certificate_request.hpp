// PKCS#10 certificate requests for `new-certificate --request` (docs/certificates.md), and the
// public-key identity that joins the certificate a CA sends back to the key of its request.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "tls/certificate_io.hpp"

namespace starling::tls {

struct CertificateRequest {
  std::string key_pem;      // PKCS#8, unencrypted: kept in the store until the answer comes
  std::string request_pem;  // "CERTIFICATE REQUEST"
  std::string request_der;
};

// A new key of `key_type` and a SHA-256-signed request for it. `subject` is a DN such as
// "CN=mail.contoso.com, O=Contoso, C=US" (distinguished_name.hpp). The request asks for a
// subjectAltName with the subject's CN and `domains`, without duplicates. Error when the subject
// does not parse, when it has no CN and there is no domain (nothing for it to cover), or when
// the names or `rsa_bits` (0: key_type's size) are outside the limits.
Result<CertificateRequest> make_certificate_request(const std::string& subject,
                                                    const std::vector<std::string>& domains,
                                                    KeyType key_type, int rsa_bits = 0);

// Hex SHA-256 (upper case) of the DER SubjectPublicKeyInfo in a PEM certificate, certificate
// request, private key or public key: equal for a key, its request and the certificate issued
// for it.
Result<std::string> public_key_id(const std::string& pem);

}  // namespace starling::tls
