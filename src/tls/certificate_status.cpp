#include "tls/certificate_status.hpp"

#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {
namespace {

CertificateStatus status(std::string s, std::string detail) {
  return CertificateStatus{std::move(s), false, std::move(detail)};
}

}  // namespace

CertificateStatus check_certificate_status(const std::vector<std::string>& chain_pem,
                                           const std::vector<std::string>& trusted_roots_pem,
                                           std::chrono::system_clock::time_point now) {
  if (chain_pem.empty()) return status("Invalid", "no certificate");
  auto leaf = parse_certificate_pem(chain_pem.front());
  if (!leaf) return status("Invalid", leaf.error());
  time_t when = std::chrono::system_clock::to_time_t(now);
  // The leaf's dates first: an expired certificate is DateInvalid whatever its chain.
  if (X509_cmp_time(X509_get0_notBefore(leaf->get()), &when) > 0) {
    return status("DateInvalid", "the certificate is not yet valid");
  }
  if (X509_cmp_time(X509_get0_notAfter(leaf->get()), &when) < 0) {
    return status("DateInvalid", "the certificate has expired");
  }

  X509StackPtr untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain_pem.size(); ++i) {
    auto cert = parse_certificate_pem(chain_pem[i]);
    if (!cert) return status("Invalid", "intermediate certificate: " + cert.error());
    if (!untrusted || sk_X509_push(untrusted.get(), cert->get()) == 0) {
      return status("Invalid", openssl_error("out of memory"));
    }
    cert->release();
  }
  clear_openssl_errors();
  StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_set_default_paths(store.get()) != 1) {
    return status("Invalid", openssl_error("cannot load the system trust store"));
  }
  for (const auto& pem : trusted_roots_pem) {
    auto root = parse_certificate_pem(pem);
    // An unreadable root only fails to add trust; it is not this certificate's fault.
    if (root) X509_STORE_add_cert(store.get(), root->get());
  }
  clear_openssl_errors();
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf->get(), untrusted.get()) != 1) {
    return status("Invalid", openssl_error("cannot set up chain verification"));
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, when);  // sets X509_V_FLAG_USE_CHECK_TIME
  int verified = X509_verify_cert(ctx.get());
  int error = X509_STORE_CTX_get_error(ctx.get());
  clear_openssl_errors();
  if (verified == 1) return CertificateStatus{"Valid", true, ""};
  std::string detail = X509_verify_cert_error_string(error);
  switch (error) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return status("DateInvalid", detail);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return status("Untrusted", detail);
    default:
      return status("Invalid", detail);
  }
}

bool is_ca_certificate(const std::string& pem) {
  auto cert = parse_certificate_pem(pem);
  if (!cert) return false;
  // X509_get_extension_flags caches the extensions; EXFLAG_CA is basicConstraints CA:TRUE only
  // (X509_check_ca would also accept v1 self-signed certificates and bare keyCertSign).
  bool ca = (X509_get_extension_flags(cert->get()) & EXFLAG_CA) != 0;
  clear_openssl_errors();
  return ca;
}

}  // namespace starling::tls
