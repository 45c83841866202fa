#include "tls/openssl_types.hpp"

#include <openssl/pem.h>

#include "tls/openssl_error.hpp"

namespace starling::tls {

std::string certificate_to_pem(X509* cert) {
  BioPtr bio = memory_bio();
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bio_string(bio.get());
}

std::string private_key_to_pem(EVP_PKEY* key) {
  BioPtr bio = memory_bio();
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bio_string(bio.get());
}

Result<X509Ptr> parse_certificate_pem(const std::string& pem, std::string_view what) {
  clear_openssl_errors();
  BioPtr bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return make_error(openssl_error(what));
  return cert;
}

Result<PKeyPtr> parse_private_key_pem(const std::string& pem, std::string_view what) {
  clear_openssl_errors();
  BioPtr bio = memory_bio(pem);
  // An empty passphrase: an encrypted key fails here instead of prompting on the terminal.
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
  if (!key) return make_error(openssl_error(what));
  return key;
}

}  // namespace starling::tls
