#include "tls/client_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {

Result<ClientContextPtr> make_client_context(const std::string& certificate_chain_pem,
                                             const std::string& key_pem,
                                             const std::vector<std::string>& trusted_roots_pem) {
  clear_openssl_errors();
  ClientContextPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return make_error(openssl_error("cannot create a TLS client context"));
  SSL_CTX* native = ctx.get();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
      SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384") != 1) {
    return make_error(openssl_error("cannot set the TLS cipher policy"));
  }
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  // The chain is verified during the handshake but never fails it: check_peer decides, by level.
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_default_verify_paths(native) != 1) clear_openssl_errors();
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  for (const auto& pem : trusted_roots_pem) {
    auto root = parse_certificate_pem(pem);
    if (root) X509_STORE_add_cert(store, root->get());
  }
  clear_openssl_errors();
  if (!certificate_chain_pem.empty()) {
    // The chain: the leaf, then intermediates, read from one PEM buffer.
    BioPtr bio = memory_bio(certificate_chain_pem);
    X509Ptr leaf(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!leaf || SSL_CTX_use_certificate(native, leaf.get()) != 1) {
      return make_error(openssl_error("cannot use the client certificate"));
    }
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(native, extra) != 1) X509_free(extra);
    }
    clear_openssl_errors();  // the read past the last certificate leaves "no start line"
    auto key = parse_private_key_pem(key_pem);
    if (!key || SSL_CTX_use_PrivateKey(native, key->get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
      return make_error(openssl_error("cannot use the client certificate's private key"));
    }
  }
  return ctx;
}

PeerCheck parse_peer_check(std::string_view level) {
  if (level == "CertificateValidation") return PeerCheck::kCertificateValidation;
  if (level == "DomainValidation") return PeerCheck::kDomainValidation;
  return PeerCheck::kEncryptionOnly;
}

std::optional<std::string> check_peer(SSL* ssl, PeerCheck check, const std::string& domain) {
  if (check == PeerCheck::kEncryptionOnly) return std::nullopt;
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (!peer) return "certificate validation failed: the peer presented no certificate";
  long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) {
    return std::string("certificate validation failed: ") + X509_verify_cert_error_string(verdict);
  }
  if (check == PeerCheck::kDomainValidation) {
    clear_openssl_errors();
    int ok = X509_check_host(peer.get(), domain.data(), domain.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                             nullptr);
    clear_openssl_errors();
    if (ok != 1) return "domain validation failed: the certificate does not name " + domain;
  }
  return std::nullopt;
}

std::string describe_peer_certificate(SSL* ssl) {
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (!peer) return "none";
  char subject[512] = "";
  X509_NAME_oneline(X509_get_subject_name(peer.get()), subject, sizeof subject);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(peer.get(), EVP_sha1(), md, &len);
  std::string hex;
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 15];
  }
  return std::string(subject) + "; SHA-1 " + hex;
}

}  // namespace starling::tls
