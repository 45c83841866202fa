// Owning handles and small conversions shared by the tls module's OpenSSL code. Internal to
// src/tls: nothing outside the module sees an OpenSSL type. Helpers returning a Result clear the
// error queue before and drain it into the message after; the others leave that to the caller.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "tls/certificate_io.hpp"

namespace starling::tls {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OpenSslDeleter<X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, OpenSslDeleter<PKCS7_free>>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, OpenSslDeleter<PKCS12_free>>;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>>;
using NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;

// Memory OpenSSL allocated for us (PEM_read_bio's name, header and data; i2d output).
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
template <typename T>
using OpenSslBuffer = std::unique_ptr<T, OpenSslFree>;

// A stack of certificates that frees them with itself.
struct X509StackFree {
  void operator()(STACK_OF(X509)* s) const { sk_X509_pop_free(s, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// A read-only memory BIO over `bytes`, which must outlive it.
inline BioPtr memory_bio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}
inline BioPtr memory_bio() { return BioPtr(BIO_new(BIO_s_mem())); }

// Everything written to a memory BIO so far.
inline std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

inline std::string hex_upper(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 15];
  }
  return out;
}

// A new key pair, RSA of `rsa_bits` when given and `type` is RSA; null on failure.
PKeyPtr generate_key(KeyType type, int rsa_bits = 0);
// Error when `rsa_bits` (0: none) is outside kMinRsaBits..kMaxRsaBits or `names` are more than
// core::kMaxCertificateNames: checked before a key is generated.
Result<void> check_new_key_and_names(int rsa_bits, size_t names);

// PEM encodings; empty on failure (the error queue says why).
std::string certificate_to_pem(X509* cert);
std::string private_key_to_pem(EVP_PKEY* key);  // PKCS#8, unencrypted

// The first certificate (private key) of a PEM text; `what` names it in the error message.
Result<X509Ptr> parse_certificate_pem(const std::string& pem,
                                      std::string_view what = "not a PEM certificate");
Result<PKeyPtr> parse_private_key_pem(const std::string& pem,
                                      std::string_view what = "not a PEM private key");

}  // namespace starling::tls
