// TLS contexts for STARTTLS: built once per certificate and kept in a cache, so a handshake
// never parses a certificate or key. Policy (docs/architecture.md, "Secure by default"): TLS 1.2 and 1.3
// only, ECDHE key exchange only, server cipher preference, no renegotiation, resumption (one
// ticket per full handshake, sealed with the process's key ring, session_tickets.hpp; TLS 1.2
// session ids in a bounded cache), read/write buffers released while a connection is idle.
#pragma once

#include <asio/ssl/context.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace starling::tls {

using ContextPtr = std::shared_ptr<asio::ssl::context>;

Result<ContextPtr> make_server_context(const std::string& certificate_chain_pem,
                                       const std::string& key_pem);

// One certificate of a context that serves several, one per key type (dual RSA and ECDSA
// certificates): OpenSSL picks by the client's signature algorithms.
struct CertificateAndKey {
  std::string thumbprint;
  std::string chain_pem;
  std::string key_pem;
};

// Contexts by certificate thumbprint. Thread-safe.
class ContextCache {
 public:
  // The cached context for `thumbprint`, built from the PEMs on first use.
  Result<ContextPtr> get(const std::string& thumbprint, const std::string& certificate_chain_pem,
                         const std::string& key_pem);
  // The cached context serving all of `certificates` (at most one per key type), keyed by their
  // thumbprints joined (key_for); a single one is the same context as get(thumbprint, ...).
  Result<ContextPtr> get(const std::vector<CertificateAndKey>& certificates);
  static std::string key_for(const std::vector<CertificateAndKey>& certificates);
  // Drops contexts serving a certificate whose thumbprint is not in `keep` (removed from the
  // store); a context serving a pair (key "A+B", built for a connector or over SNI) stays while
  // both are kept, so no handshake has to build it again after a configuration change.
  template <typename Set>
  void retain(const Set& keep) {
    std::lock_guard lock(mutex_);
    std::erase_if(contexts_, [&](const auto& kv) {
      std::string_view key = kv.first;
      for (size_t start = 0; start <= key.size();) {
        size_t plus = std::min(key.find('+', start), key.size());
        if (!keep.contains(std::string(key.substr(start, plus - start)))) return true;
        start = plus + 1;
      }
      return false;
    });
  }

 private:
  std::mutex mutex_;
  std::map<std::string, ContextPtr> contexts_;
};

// A context like make_server_context's serving each certificate of the list, each chain with its
// own certificate; each key is checked against its certificate. At most one per key type.
Result<ContextPtr> make_server_context(const std::vector<CertificateAndKey>& certificates);

}  // namespace starling::tls
