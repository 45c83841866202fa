// TLS for the SMTP client (send connectors): one context per send connector configuration, with
// the client certificate the selection rule chose for the connector's Fqdn (presented when the
// peer asks) and a trust store of the system roots plus the store's trusted roots. The
// handshake itself never fails on the peer's certificate: the TlsAuthLevel check runs after it
// (check_peer), so a failure is reported with a reason that says which check failed. Policy as
// on the server side: TLS 1.2 and 1.3, ECDHE with AEAD only, buffers released while idle.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::tls {

using ClientContextPtr = std::shared_ptr<SSL_CTX>;

// `certificate_chain_pem` and `key_pem` empty: no client certificate.
Result<ClientContextPtr> make_client_context(const std::string& certificate_chain_pem,
                                             const std::string& key_pem,
                                             const std::vector<std::string>& trusted_roots_pem);

enum class PeerCheck { kEncryptionOnly, kCertificateValidation, kDomainValidation };
// "EncryptionOnly" / "CertificateValidation" / "DomainValidation"; unknown -> EncryptionOnly.
PeerCheck parse_peer_check(std::string_view level);

// After a completed handshake: nullopt when the peer passes `check`, otherwise why not, e.g.
// "certificate validation failed: unable to get local issuer certificate" or "domain validation
// failed: the certificate does not name example.net". DomainValidation uses RFC 6125 rules
// (DNS-ID first; a wildcard covers exactly one leftmost label).
std::optional<std::string> check_peer(SSL* ssl, PeerCheck check, const std::string& domain);

// "CN=mx.example.net; SHA-1 3F...": the peer's certificate for logs; "none" without one.
std::string describe_peer_certificate(SSL* ssl);

}  // namespace starling::tls
