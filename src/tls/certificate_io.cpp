#include "tls/certificate_io.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <unordered_set>

#include "core/names.hpp"
#include "tls/certificate_checks.hpp"
#include "tls/certificate_limits.hpp"
#include "tls/distinguished_name.hpp"
#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {
namespace {

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

std::string name_string(const X509_NAME* name) {
  BioPtr bio = memory_bio();
  // RFC 2253 order reversed to the familiar "CN=..., O=..." reading of Exchange.
  X509_NAME_print_ex(bio.get(), name, 0,
                     (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~XN_FLAG_SEP_MASK) |
                         XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_DN_REV);
  return bio_string(bio.get());
}

// Dates beyond what the clock holds (2262 for nanoseconds; RFC 5280's 99991231235959Z "no
// well-defined expiration" among them) are clamped to its ends rather than overflowing.
core::SysTime to_time(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  using std::chrono::seconds;
  const int64_t lo = std::chrono::duration_cast<seconds>(core::SysTime::min().time_since_epoch()).count() + 1;
  const int64_t hi = std::chrono::duration_cast<seconds>(core::SysTime::max().time_since_epoch()).count() - 1;
  int64_t when = std::clamp<int64_t>(static_cast<int64_t>(timegm(&tm)), lo, hi);
  return core::SysTime(std::chrono::duration_cast<core::SysTime::duration>(seconds(when)));
}

// Upper-case hex of the serial's magnitude, as Exchange shows it.
std::string serial_hex(const ASN1_INTEGER* serial) {
  std::string hex = hex_upper(ASN1_STRING_get0_data(serial),
                              static_cast<size_t>(ASN1_STRING_length(serial)));
  return ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ? "-" + hex : hex;
}

}  // namespace

std::string key_algorithm(const EVP_PKEY* key) {
  switch (int id = EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: return "RSA";
    case EVP_PKEY_EC: return "ECDSA";
    default: {
      const char* sn = OBJ_nid2sn(id);
      return sn ? sn : "Unknown";
    }
  }
}

PKeyPtr generate_key(KeyType type, int rsa_bits) {
  bool rsa = type == KeyType::kRsa2048 || type == KeyType::kRsa3072 || type == KeyType::kRsa4096;
  if (rsa && rsa_bits != 0) {
    return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
  }
  switch (type) {
    case KeyType::kRsa2048: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    case KeyType::kRsa3072: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}));
    case KeyType::kRsa4096: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096}));
    case KeyType::kEcdsaP256: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    case KeyType::kEcdsaP384: return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  }
  return nullptr;
}

Result<void> check_new_key_and_names(int rsa_bits, size_t names) {
  if (rsa_bits != 0 && (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits)) {
    return make_error("an RSA key of " + std::to_string(rsa_bits) + " bits: Starling makes " +
                      std::to_string(kMinRsaBits) + " to " + std::to_string(kMaxRsaBits));
  }
  if (names > core::kMaxCertificateNames) {
    return make_error(std::to_string(names) + " names: a certificate carries at most " +
                      std::to_string(core::kMaxCertificateNames));
  }
  return {};
}

Result<KeyAndCertificate> generate_self_signed(const SelfSignedRequest& request) {
  clear_openssl_errors();
  std::vector<std::string> requested = certificate_domains(request.common_name, request.domains);
  if (auto ok = check_new_key_and_names(request.rsa_bits, requested.size()); !ok) return std::move(ok).take_error();
  PKeyPtr key = generate_key(request.key_type, request.rsa_bits);
  if (!key) return make_error(openssl_error("cannot generate a key"));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  std::time_t issued = request.issued_at != 0 ? static_cast<std::time_t>(request.issued_at) : std::time(nullptr);
  X509_time_adj(X509_getm_notBefore(cert.get()), -60 * 5, &issued);  // tolerate small clock skew
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), request.validity_days, 0, &issued);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!request.subject.empty()) {
    if (auto set = set_distinguished_name(name, request.subject); !set) {
      return std::move(set).take_error();
    }
  } else {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(request.common_name.c_str()),
                               -1, -1, 0);
  }
  X509_set_issuer_name(cert.get(), name);

  std::string cn = request.subject.empty() ? request.common_name : common_name(name);
  std::vector<std::string> domains = certificate_domains(cn, request.domains);
  bool ok = add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
            add_extension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") &&
            add_extension(cert.get(), NID_subject_key_identifier, "hash");
  if (ok && !domains.empty()) {
    X509_EXTENSION* san = make_subject_alt_name(domains);
    ok = san && X509_add_ext(cert.get(), san, -1) == 1;
    X509_EXTENSION_free(san);
  }
  if (!ok) return make_error(openssl_error("cannot add certificate extensions"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return make_error(openssl_error("cannot sign the certificate"));
  }
  KeyAndCertificate out{private_key_to_pem(key.get()), certificate_to_pem(cert.get())};
  if (out.key_pem.empty() || out.certificate_pem.empty()) {
    return make_error(openssl_error("cannot encode the certificate"));
  }
  return out;
}

Result<core::Certificate> describe_certificate(const std::string& certificate_pem,
                                               const std::string& key_pem) {
  auto parsed = parse_certificate_pem(certificate_pem);
  if (!parsed) return std::move(parsed).take_error();
  X509Ptr cert = std::move(*parsed);

  core::Certificate c;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  X509_digest(cert.get(), EVP_sha1(), md, &md_len);
  c.thumbprint = hex_upper(md, md_len);
  c.subject = name_string(X509_get_subject_name(cert.get()));
  c.issuer = name_string(X509_get_issuer_name(cert.get()));
  c.version = static_cast<int>(X509_get_version(cert.get())) + 1;
  c.not_before = to_time(X509_get0_notBefore(cert.get()));
  c.not_after = to_time(X509_get0_notAfter(cert.get()));
  c.serial_number = serial_hex(X509_get0_serialNumber(cert.get()));
  if (const EVP_PKEY* pub = X509_get0_pubkey(cert.get())) {
    c.public_key_size = EVP_PKEY_get_bits(pub);
    c.key_algorithm = key_algorithm(pub);
  }
  const char* sig = OBJ_nid2ln(X509_get_signature_nid(cert.get()));
  c.signature_algorithm = sig ? sig : "Unknown";

  std::unordered_set<std::string> seen;  // lower case: linear however many names there are
  auto add_domain = [&](std::string d) {
    if (!d.empty() && seen.insert(core::to_lower(d)).second) c.domains.push_back(std::move(d));
  };
  add_domain(common_name(X509_get_subject_name(cert.get())));
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
  c.is_ca = (X509_get_extension_flags(cert.get()) & EXFLAG_CA) != 0;
  c.limit_exceeded = certificate_limit_exceeded(cert.get());
  if (!key_pem.empty()) {
    auto key = parse_private_key_pem(key_pem);
    c.has_private_key = key && X509_check_private_key(cert.get(), key->get()) == 1;
  }
  clear_openssl_errors();
  return c;
}

}  // namespace starling::tls
