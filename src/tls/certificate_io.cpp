#include "tls/certificate_io.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "core/names.hpp"
#include "tls/openssl_error.hpp"

namespace starling::tls {
namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE_free>>;

PKeyPtr generate_key(KeyType type) {
  switch (type) {
    case KeyType::kRsa2048: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    case KeyType::kRsa3072: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}));
    case KeyType::kRsa4096: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096}));
    case KeyType::kEcdsaP256: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    case KeyType::kEcdsaP384: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  }
  return nullptr;
}

bool add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string name_string(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // RFC 2253 order reversed to the familiar "CN=..., O=..." reading of Exchange.
  X509_NAME_print_ex(bio.get(), name, 0,
                     (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~XN_FLAG_SEP_MASK) |
                         XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_DN_REV);
  return bio_string(bio.get());
}

core::SysTime to_time(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

Result<KeyAndCertificate> generate_self_signed(const SelfSignedRequest& request) {
  clear_openssl_errors();
  PKeyPtr key = generate_key(request.key_type);
  if (!key) return make_error(openssl_error("cannot generate a key"));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 5);  // tolerate small clock skew
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), request.validity_days, 0, nullptr);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(request.common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);

  std::vector<std::string> domains{request.common_name};
  for (const auto& d : request.domains) {
    if (std::none_of(domains.begin(), domains.end(),
                     [&](const std::string& x) { return core::iequals(x, d); })) {
      domains.push_back(d);
    }
  }
  std::string san;
  for (const auto& d : domains) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  bool ok = add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
            add_extension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") &&
            add_extension(cert.get(), NID_subject_key_identifier, "hash") &&
            add_extension(cert.get(), NID_subject_alt_name, san);
  if (!ok) return make_error(openssl_error("cannot add certificate extensions"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return make_error(openssl_error("cannot sign the certificate"));
  }
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
      !PEM_write_bio_X509(cert_bio.get(), cert.get())) {
    return make_error(openssl_error("cannot encode the certificate"));
  }
  return KeyAndCertificate{bio_string(key_bio.get()), bio_string(cert_bio.get())};
}

Result<core::Certificate> describe_certificate(const std::string& certificate_pem,
                                               const std::string& key_pem) {
  clear_openssl_errors();
  BioPtr bio(BIO_new_mem_buf(certificate_pem.data(), static_cast<int>(certificate_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return make_error(openssl_error("not a PEM certificate"));

  core::Certificate c;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  X509_digest(cert.get(), EVP_sha1(), md, &md_len);
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned i = 0; i < md_len; ++i) {
    c.thumbprint += kHex[md[i] >> 4];
    c.thumbprint += kHex[md[i] & 15];
  }
  c.subject = name_string(X509_get_subject_name(cert.get()));
  c.issuer = name_string(X509_get_issuer_name(cert.get()));
  c.version = static_cast<int>(X509_get_version(cert.get())) + 1;
  c.not_before = to_time(X509_get0_notBefore(cert.get()));
  c.not_after = to_time(X509_get0_notAfter(cert.get()));

  auto add_domain = [&](std::string d) {
    if (d.empty()) return;
    if (std::none_of(c.domains.begin(), c.domains.end(),
                     [&](const std::string& x) { return core::iequals(x, d); })) {
      c.domains.push_back(std::move(d));
    }
  };
  X509_NAME* subject = X509_get_subject_name(cert.get());
  int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn >= 0) {
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n >= 0) add_domain(std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(n)));
    OPENSSL_free(utf8);
  }
  NamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    if (gn->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = gn->d.dNSName;
    add_domain(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<size_t>(ASN1_STRING_length(s))));
  }

  // Self-signed: issuer equals subject and the signature verifies with its own key.
  EVP_PKEY* pub = X509_get0_pubkey(cert.get());
  c.is_self_signed = X509_NAME_cmp(X509_get_subject_name(cert.get()),
                                   X509_get_issuer_name(cert.get())) == 0 &&
                     pub && X509_verify(cert.get(), pub) == 1;
  // TLS server use: no EKU, or an EKU with serverAuth (or anyExtendedKeyUsage); key usage, when
  // present, must allow a signature or key encipherment.
  uint32_t eku = X509_get_extended_key_usage(cert.get());
  uint32_t ku = X509_get_key_usage(cert.get());
  c.allows_tls_server = (eku & XKU_SSL_SERVER) != 0 &&
                        (ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)) != 0;
  if (!key_pem.empty()) {
    BioPtr kbio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    PKeyPtr key(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
    c.has_private_key = key && X509_check_private_key(cert.get(), key.get()) == 1;
  }
  clear_openssl_errors();
  return c;
}

}  // namespace starling::tls
