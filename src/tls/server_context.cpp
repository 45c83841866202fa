#include "tls/server_context.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "tls/openssl_error.hpp"
#include "tls/session_tickets.hpp"
#include "tls/sni.hpp"

namespace starling::tls {
namespace {

// Resumption (docs/receive-path.md, "TLS"). Tickets are sealed with the process's key ring, so
// every context and I/O thread opens them; one per full handshake (OpenSSL's default of two
// costs a second seal and write, and a client keeps the newest). TLS 1.2 session ids live in the
// context's own cache, bounded; OpenSSL evicts the oldest and drops expired ones as it goes.
constexpr long kSessionLifetimeSeconds = 2 * 60 * 60;
constexpr long kSessionCacheEntries = 2048;

bool use_resumption(SSL_CTX* native) {
  static const unsigned char kSessionContext[] = "starling-smtp";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(native, kSessionCacheEntries);
  SSL_CTX_set_timeout(native, kSessionLifetimeSeconds);
  return SSL_CTX_set_num_tickets(native, 1) == 1 && use_ticket_keys(native, process_ticket_keys());
}

// A client certificate is taken as shown, to be logged: building and checking its chain (which
// OpenSSL does even when the verify callback accepts everything) would be wasted work.
int accept_client_certificate(X509_STORE_CTX*, void*) { return 1; }

}  // namespace

Result<ContextPtr> make_server_context(const std::string& certificate_chain_pem,
                                       const std::string& key_pem) {
  clear_openssl_errors();
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_NO_COMPRESSION);
  // TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all ECDHE/AEAD already.
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
      SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384") != 1) {
    return make_error(openssl_error("cannot set the TLS cipher policy"));
  }
  // NO_AUTO_CHAIN: the chain sent is the one stored, never rebuilt from a trust store per
  // handshake. Read-ahead: one read() takes a whole record, not its header and then its body.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_read_ahead(native, 1);
  if (!use_resumption(native)) return make_error(openssl_error("cannot set up TLS session resumption"));
  install_sni_callback(native);
  // Ask for a client certificate, never require one, and accept whatever is shown: it is logged
  // (a partner's send connector presenting its certificate), not an authentication.
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(native, accept_client_certificate, nullptr);
  asio::error_code ec;
  ctx->use_certificate_chain(asio::buffer(certificate_chain_pem), ec);
  if (ec) return make_error(openssl_error("cannot use the certificate: " + ec.message()));
  ctx->use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  if (ec) return make_error(openssl_error("cannot use the private key: " + ec.message()));
  if (SSL_CTX_check_private_key(native) != 1) {
    return make_error(openssl_error("the private key does not match the certificate"));
  }
  return ContextPtr(std::move(ctx));
}

Result<ContextPtr> ContextCache::get(const std::string& thumbprint,
                                     const std::string& certificate_chain_pem,
                                     const std::string& key_pem) {
  {
    std::lock_guard lock(mutex_);
    auto it = contexts_.find(thumbprint);
    if (it != contexts_.end()) return it->second;
  }
  auto made = make_server_context(certificate_chain_pem, key_pem);
  if (!made) return made;
  std::lock_guard lock(mutex_);
  return contexts_.emplace(thumbprint, *made).first->second;
}

// --- several certificates, one per key type ---------------------------------------------------

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PKeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ChainFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

std::unique_ptr<BIO, BioFree> pem_bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// A key in the store is never encrypted: refuse rather than let OpenSSL ask at a terminal.
int no_password(char*, int, int, void*) { return 0; }

// Fills the slot of the certificate's key type with it, its own chain (OpenSSL would send the
// context-wide extra chain with every certificate) and its key; `replace` false refuses a second
// certificate of a key type already served.
Result<void> use_certificate_and_key(SSL_CTX* native, const CertificateAndKey& c, bool replace) {
  clear_openssl_errors();
  auto bio = pem_bio(c.chain_pem);
  std::unique_ptr<X509, X509Free> leaf(bio ? PEM_read_bio_X509_AUX(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!leaf) return make_error(openssl_error("cannot read certificate " + c.thumbprint));
  std::unique_ptr<STACK_OF(X509), ChainFree> chain(sk_X509_new_null());
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) {
    if (!chain || sk_X509_push(chain.get(), ca) == 0) {
      X509_free(ca);
      return make_error(openssl_error("cannot read the chain of " + c.thumbprint));
    }
  }
  clear_openssl_errors();  // the end of the PEM text
  auto key_bio = pem_bio(c.key_pem);
  std::unique_ptr<EVP_PKEY, PKeyFree> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) return make_error(openssl_error("cannot read the private key of " + c.thumbprint));
  if (SSL_CTX_use_cert_and_key(native, leaf.get(), key.get(), chain.get(), replace ? 1 : 0) != 1 ||
      SSL_CTX_check_private_key(native) != 1) {
    return make_error(openssl_error("certificate " + c.thumbprint +
                                    " cannot be served with its key beside the others (one per key type)"));
  }
  return {};
}

}  // namespace

Result<ContextPtr> make_server_context(const std::vector<CertificateAndKey>& certificates) {
  if (certificates.empty()) return make_error("no certificate to serve");
  const CertificateAndKey& first = certificates.front();
  auto ctx = make_server_context(first.chain_pem, first.key_pem);  // the policy, and the first check
  if (!ctx || certificates.size() == 1) return ctx;
  SSL_CTX* native = (*ctx)->native_handle();
  SSL_CTX_clear_extra_chain_certs(native);  // the first one's chain, now kept in its own slot
  for (size_t i = 0; i < certificates.size(); ++i) {
    if (auto used = use_certificate_and_key(native, certificates[i], /*replace=*/i == 0); !used) {
      return std::move(used).take_error();
    }
  }
  return ctx;
}

std::string ContextCache::key_for(const std::vector<CertificateAndKey>& certificates) {
  std::string key;
  for (const auto& c : certificates) key += (key.empty() ? "" : "+") + c.thumbprint;
  return key;
}

Result<ContextPtr> ContextCache::get(const std::vector<CertificateAndKey>& certificates) {
  if (certificates.size() == 1) {
    const CertificateAndKey& c = certificates.front();
    return get(c.thumbprint, c.chain_pem, c.key_pem);
  }
  std::string key = key_for(certificates);
  {
    std::lock_guard lock(mutex_);
    auto it = contexts_.find(key);
    if (it != contexts_.end()) return it->second;
  }
  auto made = make_server_context(certificates);
  if (!made) return made;
  std::lock_guard lock(mutex_);
  return contexts_.emplace(std::move(key), *made).first->second;
}

}  // namespace starling::tls
