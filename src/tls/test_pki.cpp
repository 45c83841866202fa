#include "tls/test_pki.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <iostream>
#include <memory>

namespace starling::tls::testing {
namespace {

// A fixture that cannot be built makes every test meaningless: stop with OpenSSL's reason.
void require(bool ok, const char* what) {
  if (ok) return;
  std::cerr << "test PKI: " << what << "\n";
  ERR_print_errors_fp(stderr);
  std::abort();
}

template <typename T, void (*Free)(T*)>
struct Owned {
  T* p;
  explicit Owned(T* q) : p(q) {}
  ~Owned() { Free(p); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

X509* read_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  require(cert != nullptr, "read certificate");
  return cert;
}

EVP_PKEY* read_key(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  require(key != nullptr, "read key");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  require(ext != nullptr && X509_add_ext(cert, ext, -1) == 1, "add extension");
  X509_EXTENSION_free(ext);
}

PKCS7* make_pkcs7(const std::vector<std::string>& certificates_pem) {
  PKCS7* p7 = PKCS7_new();
  require(p7 && PKCS7_set_type(p7, NID_pkcs7_signed) == 1 &&
              PKCS7_content_new(p7, NID_pkcs7_data) == 1,
          "PKCS#7 SignedData");
  for (const auto& pem : certificates_pem) {
    Owned<X509, X509_free> cert(read_cert(pem));
    require(PKCS7_add_certificate(p7, cert.p) == 1, "PKCS#7 add certificate");
  }
  return p7;
}

}  // namespace

TestIdentity issue(const IssueOptions& o, const TestIdentity* issuer) {
  static unsigned long next_serial = 1000;
  EVP_PKEY* made = nullptr;
  if (!o.request_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(o.request_pem.data(), static_cast<int>(o.request_pem.size()));
    X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    require(req && X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1, "read request");
    made = X509_REQ_get_pubkey(req);
    X509_REQ_free(req);
  } else {
    made = o.rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                 : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  }
  Owned<EVP_PKEY, EVP_PKEY_free> key(made);
  require(key.p != nullptr, "keygen");
  Owned<X509, X509_free> cert(X509_new());
  X509_set_version(cert.p, X509_VERSION_3);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.p), o.serial ? o.serial : next_serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.p), std::chrono::seconds(o.valid_from).count());
  X509_gmtime_adj(X509_getm_notAfter(cert.p), std::chrono::seconds(o.valid_until).count());
  X509_set_pubkey(cert.p, key.p);
  X509_NAME* name = X509_get_subject_name(cert.p);
  auto add_rdn = [&](const char* field, const std::string& value) {
    if (value.empty()) return;
    require(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                       -1, 0) == 1,
            "subject");
  };
  add_rdn("O", o.organization);
  add_rdn("CN", o.common_name);

  std::unique_ptr<X509, decltype(&X509_free)> issuer_cert(
      issuer ? read_cert(issuer->certificate_pem) : nullptr, X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> issuer_key(
      issuer ? read_key(issuer->key_pem) : nullptr, EVP_PKEY_free);
  X509* signer_cert = issuer ? issuer_cert.get() : cert.p;
  EVP_PKEY* signer_key = issuer ? issuer_key.get() : key.p;
  X509_set_issuer_name(cert.p, X509_get_subject_name(signer_cert));

  add_ext(cert.p, signer_cert, NID_subject_key_identifier, "hash");
  add_ext(cert.p, signer_cert, NID_authority_key_identifier, "keyid:always");
  if (o.ca) {
    add_ext(cert.p, signer_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.p, signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.p, signer_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.p, signer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  }
  if (!o.extended_key_usage.empty()) {
    add_ext(cert.p, signer_cert, NID_ext_key_usage, o.extended_key_usage);
  }
  std::string san;
  for (const auto& d : o.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  if (!san.empty()) add_ext(cert.p, signer_cert, NID_subject_alt_name, san);
  require(X509_sign(cert.p, signer_key, EVP_sha256()) > 0, "sign");
  require(issuer != nullptr || o.request_pem.empty(), "a request needs an issuer");

  Owned<BIO, BIO_free_all> key_bio(BIO_new(BIO_s_mem()));
  Owned<BIO, BIO_free_all> cert_bio(BIO_new(BIO_s_mem()));
  require((!o.request_pem.empty() || PEM_write_bio_PrivateKey(key_bio.p, key.p, nullptr, nullptr,
                                                               0, nullptr, nullptr) == 1) &&
              PEM_write_bio_X509(cert_bio.p, cert.p) == 1,
          "PEM");
  return TestIdentity{bio_text(key_bio.p), bio_text(cert_bio.p)};
}

const TestPki& test_pki() {
  static const TestPki pki = [] {
    TestPki p;
    p.root = issue({.common_name = "Starling Test Root CA", .organization = "Starling Tests",
                    .valid_until = std::chrono::hours(24 * 3650), .ca = true,
                    .extended_key_usage = ""},
                   nullptr);
    p.intermediate = issue({.common_name = "Starling Test Issuing CA",
                            .organization = "Starling Tests", .ca = true,
                            .extended_key_usage = ""},
                           &p.root);
    p.leaf = issue({.common_name = "mail.contoso.test", .organization = "Contoso",
                    .dns_names = {"mail.contoso.test", "smtp.contoso.test"}, .rsa = true,
                    .serial = kLeafSerial},
                   &p.root);
    p.expired = issue({.common_name = "old.contoso.test", .dns_names = {"old.contoso.test"},
                       .valid_from = std::chrono::hours(-24 * 30),
                       .valid_until = std::chrono::hours(-24)},
                      &p.root);
    p.client_only = issue({.common_name = "client.contoso.test",
                           .dns_names = {"client.contoso.test"},
                           .extended_key_usage = "clientAuth"},
                          &p.root);
    p.chained_leaf = issue({.common_name = "relay.contoso.test",
                            .dns_names = {"relay.contoso.test"}},
                           &p.intermediate);
    return p;
  }();
  return pki;
}

std::string make_pkcs7_der(const std::vector<std::string>& certificates_pem) {
  Owned<PKCS7, PKCS7_free> p7(make_pkcs7(certificates_pem));
  unsigned char* der = nullptr;
  int len = i2d_PKCS7(p7.p, &der);
  require(len > 0, "PKCS#7 DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string make_pkcs7_pem(const std::vector<std::string>& certificates_pem) {
  Owned<PKCS7, PKCS7_free> p7(make_pkcs7(certificates_pem));
  Owned<BIO, BIO_free_all> bio(BIO_new(BIO_s_mem()));
  require(PEM_write_bio_PKCS7(bio.p, p7.p) == 1, "PKCS#7 PEM");
  return bio_text(bio.p);
}

std::string certificate_der(const std::string& certificate_pem) {
  Owned<X509, X509_free> cert(read_cert(certificate_pem));
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.p, &der);
  require(len > 0, "certificate DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace starling::tls::testing
