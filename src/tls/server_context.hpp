// TLS contexts for STARTTLS: built once per certificate and kept in a cache, so a handshake
// never parses a certificate or key. Policy (docs/architecture.md, "Secure by default"): TLS 1.2 and 1.3
// only, ECDHE key exchange only, server cipher preference, no renegotiation, session tickets
// for resumption, read/write buffers released while a connection is idle.
#pragma once

#include <asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.hpp"

namespace starling::tls {

using ContextPtr = std::shared_ptr<asio::ssl::context>;

Result<ContextPtr> make_server_context(const std::string& certificate_chain_pem,
                                       const std::string& key_pem);

// Contexts by certificate thumbprint. Thread-safe.
class ContextCache {
 public:
  // The cached context for `thumbprint`, built from the PEMs on first use.
  Result<ContextPtr> get(const std::string& thumbprint, const std::string& certificate_chain_pem,
                         const std::string& key_pem);
  // Drops contexts whose thumbprint is not in `keep` (certificates removed from the store).
  template <typename Set>
  void retain(const Set& keep) {
    std::lock_guard lock(mutex_);
    std::erase_if(contexts_, [&](const auto& kv) { return !keep.contains(kv.first); });
  }

 private:
  std::mutex mutex_;
  std::map<std::string, ContextPtr> contexts_;
};

}  // namespace starling::tls
