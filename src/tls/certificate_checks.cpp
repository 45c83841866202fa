#include "tls/certificate_checks.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/certificate.hpp"
#include "tls/certificate_limits.hpp"
#include "tls/openssl_error.hpp"
#include "tls/openssl_types.hpp"

namespace starling::tls {
namespace {

// 60000 -> "60,000": limits read better grouped.
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > (digits[0] == '-' ? 1 : 0); i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return digits;
}

std::string ec_limit_exceeded(const EVP_PKEY* key) {
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
    clear_openssl_errors();
    return "its EC key has explicit curve parameters; Starling accepts the named curves P-256, "
           "P-384 and P-521";
  }
  int nid = OBJ_sn2nid(group);
  if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1) return "";
  return std::string("its EC key is on curve ") + group +
         "; Starling accepts P-256, P-384 and P-521";
}

int64_t integer_value(const ASN1_INTEGER* i) {
  int64_t v = 0;
  if (!i) return 1;  // absent: the default of one iteration (RFC 7292 §4)
  if (ASN1_INTEGER_get_int64(&v, i) != 1) {
    clear_openssl_errors();
    return INT64_MAX;  // larger than 64 bits: over any limit
  }
  return v;
}

}  // namespace

std::string key_limit_exceeded(const EVP_PKEY* key) {
  if (!key) return "it has no readable public key";
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits >= kMinRsaBits && bits <= kMaxRsaBits) return "";
      return "its RSA key has " + std::to_string(bits) + " bits; Starling accepts " +
             std::to_string(kMinRsaBits) + " to " + std::to_string(kMaxRsaBits);
    }
    case EVP_PKEY_EC: return ec_limit_exceeded(key);
    case EVP_PKEY_ED25519: return "";
    default: {
      const char* name = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
      return std::string("its ") + (name ? name : "unknown") +
             " key is not one Starling serves (RSA, ECDSA P-256/P-384/P-521, Ed25519)";
    }
  }
}

std::string certificate_limit_exceeded(X509* cert) {
  size_t names = X509_NAME_get_index_by_NID(X509_get_subject_name(cert), NID_commonName, -1) >= 0;
  int critical = 0;
  NamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (sans) names += static_cast<size_t>(sk_GENERAL_NAME_num(sans.get()));
  clear_openssl_errors();
  if (names > core::kMaxCertificateNames) {
    return "it lists " + grouped(static_cast<int64_t>(names)) +
           " names (subject CN and subjectAltName); Starling accepts at most " +
           grouped(core::kMaxCertificateNames);
  }
  return key_limit_exceeded(X509_get0_pubkey(cert));
}

Result<void> IterationBudget::spend(int64_t iterations, const std::string& what) {
  if (iterations > kMaxPbeIterations) {
    return make_error(what + " is encrypted with " + grouped(iterations) +
                      " iterations; Starling accepts at most " + grouped(kMaxPbeIterations));
  }
  spent_ += iterations;
  if (spent_ > kMaxPbeIterationsTotal) {
    return make_error("the file's encryption needs more than " + grouped(kMaxPbeIterationsTotal) +
                      " iterations in all; Starling accepts at most that");
  }
  return {};
}

Result<void> IterationBudget::spend(const X509_ALGOR* algorithm, const std::string& what) {
  if (!algorithm) return make_error(what + " has no encryption parameters");
  const ASN1_OBJECT* oid = nullptr;
  X509_ALGOR_get0(&oid, nullptr, nullptr, algorithm);
  const ASN1_TYPE* parameter = algorithm->parameter;
  int64_t iterations = 0;
  if (OBJ_obj2nid(oid) == NID_pbes2) {
    std::unique_ptr<PBE2PARAM, OpenSslDeleter<PBE2PARAM_free>> pbe2(static_cast<PBE2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), parameter)));
    if (!pbe2 || !pbe2->keyfunc) return make_error(openssl_error(what + " has unreadable encryption parameters"));
    if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2) {
      return make_error(what + " uses a key derivation other than PBKDF2, which Starling does not read");
    }
    std::unique_ptr<PBKDF2PARAM, OpenSslDeleter<PBKDF2PARAM_free>> kdf(static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter)));
    if (!kdf) return make_error(openssl_error(what + " has unreadable PBKDF2 parameters"));
    iterations = integer_value(kdf->iter);
  } else {
    // PBES1 and the PKCS#12 PBE algorithms (RFC 8018 §6.1, RFC 7292 Appendix C): salt, count.
    std::unique_ptr<PBEPARAM, OpenSslDeleter<PBEPARAM_free>> pbe(static_cast<PBEPARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), parameter)));
    if (!pbe) return make_error(openssl_error(what + " has unreadable encryption parameters"));
    iterations = integer_value(pbe->iter);
  }
  clear_openssl_errors();
  return spend(iterations, what);
}

}  // namespace starling::tls
