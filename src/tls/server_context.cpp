#include "tls/server_context.hpp"

#include <openssl/ssl.h>

#include "tls/openssl_error.hpp"
#include "tls/sni.hpp"

namespace starling::tls {

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
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  static const unsigned char kSessionContext[] = "starling-smtp";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  install_sni_callback(native);
  // Ask for a client certificate, never require one, and accept whatever is shown: it is logged
  // (a partner's send connector presenting its certificate), not an authentication.
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
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

}  // namespace starling::tls
