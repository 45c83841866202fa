// SNI: when a client names a host that an SMTP-enabled certificate covers, the handshake serves
// that certificate instead of the connector's (Exchange does not; Starling does). The table
// maps each exact name and each wildcard's parent domain to the best certificate for it, so a
// handshake does one or two hash lookups whatever the size of the store; contexts are built on
// first use and kept in the ContextCache. A name with an RSA and an ECDSA certificate gets both.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/server_context.hpp"

namespace starling::tls {

struct SniCertificate {
  std::string thumbprint;  // the primary (RSA first) when the name has several key types
  std::string chain_pem;
  std::string key_pem;
  // When the name's best certificates are of several key types (RSA and ECDSA): all of them,
  // the primary first, served together like the connector's; empty otherwise.
  std::vector<CertificateAndKey> served;
};

class SniTable {
 public:
  // Names must be added best first: the first certificate added for a name keeps it.
  void add(std::string_view name, std::shared_ptr<const SniCertificate> cert);
  // Exact name first, then a one-label wildcard (*.parent).
  const SniCertificate* find(std::string_view host) const;
  size_t size() const { return exact_.size() + wildcard_.size(); }

 private:
  std::unordered_map<std::string, std::shared_ptr<const SniCertificate>> exact_;
  std::unordered_map<std::string, std::shared_ptr<const SniCertificate>> wildcard_;  // by parent
};

// Makes `ctx` consult the table attached to each connection.
void install_sni_callback(SSL_CTX* ctx);
// Attaches a table (and the cache to build contexts from) to one connection, before its
// handshake. Both must outlive the handshake. SNI naming `own_name` (the connector's FQDN)
// keeps the connector's certificate, so a TlsCertificateName pin holds for clients that send
// the MX name as SNI.
void attach_sni(SSL* ssl, const SniTable* table, ContextCache* cache, std::string own_name = {});

}  // namespace starling::tls
