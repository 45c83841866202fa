// The bounds of certificate_limits.hpp, each with the input that used to tie a thread up: a
// PKCS#12 file with 2^31 iterations (refused before any key derivation: the test would run for
// minutes otherwise), a 16384-bit RSA key (built from its numbers: generating one takes minutes),
// and a certificate with 60,000 names (read in a number of name comparisons linear in them).
#include "tls/certificate_limits.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "core/names.hpp"
#include "tls/certificate_checks.hpp"
#include "tls/certificate_files.hpp"
#include "tls/certificate_io.hpp"
#include "tls/certificate_request.hpp"
#include "tls/distinguished_name.hpp"
#include "tls/openssl_types.hpp"
#include "tls/test_pki.hpp"

namespace starling::tls {
namespace {

using testing::test_pki;

constexpr int64_t kHuge = int64_t{1} << 31;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

PKeyPtr read_key(const std::string& pem) { return std::move(*parse_private_key_pem(pem)); }

// An RSA key of `bits` from made-up numbers: OpenSSL takes them without checking, which is all
// a size check needs (nothing is ever signed with it). The modulus is 2^(bits-1) + 1.
PKeyPtr fake_rsa_key(int bits) {
  std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>> n(BN_new()), e(BN_new()), d(BN_new());
  BN_set_bit(n.get(), bits - 1);
  BN_set_bit(n.get(), 0);
  BN_set_word(e.get(), 65537);
  BN_set_word(d.get(), 12345);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n.get());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e.get());
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d.get());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params), 1);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return PKeyPtr(key);
}

// A leaf for `subject_key` listing `names` DNS names (CN = the first), signed by the test root.
std::string leaf_pem(EVP_PKEY* subject_key, size_t names) {
  const auto& pki = test_pki();
  PKeyPtr signer = read_key(pki.root.key_pem);
  X509Ptr root = std::move(*parse_certificate_pem(pki.root.certificate_pem));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), subject_key);
  std::vector<std::string> dns;
  for (size_t i = 0; i < names; ++i) dns.push_back("host" + std::to_string(i) + ".contoso.test");
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(dns.front().c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(root.get()));
  X509_EXTENSION* san = make_subject_alt_name(dns);
  X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  EXPECT_GT(X509_sign(cert.get(), signer.get(), EVP_sha256()), 0);
  return certificate_to_pem(cert.get());
}

// --- key sizes and types ---------------------------------------------------------------------

TEST(CertificateLimits, A16384BitKeyIsRefusedOnImportWithTheLimitNamed) {
  PKeyPtr big = fake_rsa_key(16384);
  ASSERT_EQ(EVP_PKEY_get_bits(big.get()), 16384);
  std::string cert = leaf_pem(big.get(), 1);
  auto without_key = read_certificate_file(cert, std::nullopt);
  ASSERT_FALSE(without_key);
  EXPECT_EQ(without_key.error(),
            "certificate 'host0.contoso.test': its RSA key has 16384 bits; Starling accepts 2048 to 8192");
  auto with_key = read_certificate_file(cert + private_key_to_pem(big.get()), std::nullopt);
  ASSERT_FALSE(with_key);
  EXPECT_TRUE(contains(with_key.error(), "16384 bits")) << with_key.error();
}

TEST(CertificateLimits, AStoredCertificateWithA16384BitKeyIsDescribedButMarked) {
  PKeyPtr big = fake_rsa_key(16384);
  auto d = describe_certificate(leaf_pem(big.get(), 1), "");
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->public_key_size, 16384);
  EXPECT_EQ(d->limit_exceeded, "its RSA key has 16384 bits; Starling accepts 2048 to 8192");
}

TEST(CertificateLimits, KeyTypesAndSizesTlsServes) {
  EXPECT_EQ(key_limit_exceeded(fake_rsa_key(8192).get()), "");
  EXPECT_EQ(key_limit_exceeded(fake_rsa_key(2048).get()), "");
  EXPECT_EQ(key_limit_exceeded(fake_rsa_key(1024).get()),
            "its RSA key has 1024 bits; Starling accepts 2048 to 8192");
  EXPECT_EQ(key_limit_exceeded(fake_rsa_key(8193).get()),
            "its RSA key has 8193 bits; Starling accepts 2048 to 8192");
  auto curve = [](const char* name) {
    return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", name));
  };
  EXPECT_EQ(key_limit_exceeded(curve("P-256").get()), "");
  EXPECT_EQ(key_limit_exceeded(curve("P-384").get()), "");
  EXPECT_EQ(key_limit_exceeded(curve("P-521").get()), "");
  EXPECT_TRUE(contains(key_limit_exceeded(curve("secp256k1").get()), "curve secp256k1"));
  EXPECT_EQ(key_limit_exceeded(PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")).get()), "");
  EXPECT_TRUE(contains(key_limit_exceeded(PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448")).get()),
                       "not one Starling serves"));
}

TEST(CertificateLimits, NewKeysAreBetween2048And8192Bits) {
  auto small = generate_self_signed({.common_name = "x.test", .rsa_bits = 1024});
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error(), "an RSA key of 1024 bits: Starling makes 2048 to 8192");
  auto big = make_certificate_request("CN=x.test", {}, KeyType::kRsa2048, 16384);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error(), "an RSA key of 16384 bits: Starling makes 2048 to 8192");
  auto made = generate_self_signed({.common_name = "x.test", .rsa_bits = 3072});
  ASSERT_TRUE(made) << made.error();
  EXPECT_EQ(describe_certificate(made->certificate_pem, "")->public_key_size, 3072);
}

// --- names -----------------------------------------------------------------------------------

TEST(CertificateLimits, MoreThanAThousandNamesAreRefusedOnImport) {
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  auto at_limit = read_certificate_file(leaf_pem(key.get(), 999), std::nullopt);  // + the CN
  EXPECT_TRUE(at_limit) << at_limit.error();
  auto over = read_certificate_file(leaf_pem(key.get(), 1000), std::nullopt);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error(), "certificate 'host0.contoso.test': it lists 1,001 names (subject CN and "
                          "subjectAltName); Starling accepts at most 1,000");
  auto made = generate_self_signed({.common_name = "x.test", .domains = std::vector<std::string>(1001, "")});
  EXPECT_TRUE(made);  // empty names are dropped
  std::vector<std::string> many;
  for (int i = 0; i < 1001; ++i) many.push_back("h" + std::to_string(i) + ".test");
  auto refused = make_certificate_request("CN=x.test", many, KeyType::kEcdsaP256);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "1002 names: a certificate carries at most 1000");
}

// A certificate stored by an older version: read whole, in comparisons linear in its names
// (the CertificateDomains de-duplication compared each name with all before it).
TEST(CertificateLimits, ACertificateWith60000NamesIsReadInLinearTime) {
  constexpr size_t kNames = 60000;
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  std::string pem = leaf_pem(key.get(), kNames);
  uint64_t before = core::name_comparisons();
  auto d = describe_certificate(pem, private_key_to_pem(key.get()));
  uint64_t comparisons = core::name_comparisons() - before;
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->domains.size(), kNames);
  EXPECT_LE(comparisons, 4 * kNames);
  EXPECT_TRUE(d->has_private_key);
  EXPECT_EQ(d->limit_exceeded, "it lists 60,001 names (subject CN and subjectAltName); Starling "
                               "accepts at most 1,000");
}

TEST(CertificateLimits, FileSizeAndCertificateCount) {
  auto big = read_certificate_file(std::string(kMaxCertificateFileBytes + 1, 'x'), std::nullopt);
  ASSERT_FALSE(big);
  EXPECT_TRUE(contains(big.error(), "at most 1048576 bytes (1 MB)")) << big.error();
  std::string many;
  for (size_t i = 0; i <= kMaxCertificatesPerFile; ++i) many += test_pki().root.certificate_pem;
  auto refused = read_certificate_file(many, std::nullopt);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "the file holds 501 certificates; Starling reads at most 500");
}

// --- iteration counts ------------------------------------------------------------------------

struct PbeIterations {
  void set(X509_ALGOR* algorithm, int64_t count) {
    std::unique_ptr<PBE2PARAM, OpenSslDeleter<PBE2PARAM_free>> pbe2(static_cast<PBE2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), algorithm->parameter)));
    ASSERT_TRUE(pbe2) << "not PBES2";
    std::unique_ptr<PBKDF2PARAM, OpenSslDeleter<PBKDF2PARAM_free>> kdf(static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter)));
    ASSERT_TRUE(kdf);
    ASN1_INTEGER_set_int64(kdf->iter, count);
    ASSERT_TRUE(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf.get(), &pbe2->keyfunc->parameter));
    ASSERT_TRUE(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM), pbe2.get(), &algorithm->parameter));
  }
};

enum class Part { kMac, kCertificates, kKey };

// A PKCS#12 file made with OpenSSL's defaults (PBES2, PBKDF2, 2048 iterations), then rewritten
// to claim `count` iterations for `part`: what it claims is all a reader sees before deriving.
std::string pkcs12_claiming(Part part, int64_t count) {
  const auto& pki = test_pki();
  PKeyPtr key = read_key(pki.leaf.key_pem);
  X509Ptr cert = std::move(*parse_certificate_pem(pki.leaf.certificate_pem));
  Pkcs12Ptr p12(PKCS12_create("pw", nullptr, key.get(), cert.get(), nullptr, 0, 0, 0, 0, 0));
  EXPECT_TRUE(p12);
  if (part == Part::kMac) {
    const ASN1_INTEGER* iter = nullptr;
    PKCS12_get0_mac(nullptr, nullptr, nullptr, &iter, p12.get());
    ASN1_INTEGER_set_int64(const_cast<ASN1_INTEGER*>(iter), count);
  } else {
    STACK_OF(PKCS7)* parts = PKCS12_unpack_authsafes(p12.get());
    for (int i = 0; i < sk_PKCS7_num(parts); ++i) {
      PKCS7* p7 = sk_PKCS7_value(parts, i);
      if (part == Part::kCertificates && PKCS7_type_is_encrypted(p7)) {
        PbeIterations{}.set(p7->d.encrypted->enc_data->algorithm, count);
      }
      if (part == Part::kKey && PKCS7_type_is_data(p7)) {
        STACK_OF(PKCS12_SAFEBAG)* bags = PKCS12_unpack_p7data(p7);
        const X509_ALGOR* algorithm = nullptr;
        X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(sk_PKCS12_SAFEBAG_value(bags, 0)), &algorithm, nullptr);
        PbeIterations{}.set(const_cast<X509_ALGOR*>(algorithm), count);
        PKCS7* repacked = PKCS12_pack_p7data(bags);
        sk_PKCS7_set(parts, i, repacked);
        PKCS7_free(p7);
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
      }
    }
    PKCS12_pack_authsafes(p12.get(), parts);
    sk_PKCS7_pop_free(parts, PKCS7_free);
    // The MAC covers the contents: recompute it (2048 iterations) so only the count differs.
    PKCS12_set_mac(p12.get(), "pw", -1, nullptr, 0, 2048, nullptr);
  }
  unsigned char* der = nullptr;
  int len = i2d_PKCS12(p12.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

TEST(CertificateLimits, Pkcs12With2To31IterationsIsRefusedBeforeDecrypting) {
  const std::string refused = "2,147,483,648 iterations; Starling accepts at most 1,000,000";
  auto mac = read_certificate_file(pkcs12_claiming(Part::kMac, kHuge), std::string("pw"));
  ASSERT_FALSE(mac);
  EXPECT_EQ(mac.error(), "the PKCS#12 file's integrity check (MAC) is encrypted with " + refused);
  auto certs = read_certificate_file(pkcs12_claiming(Part::kCertificates, kHuge), std::string("pw"));
  ASSERT_FALSE(certs);
  EXPECT_EQ(certs.error(), "a part of the PKCS#12 file is encrypted with " + refused);
  auto key = read_certificate_file(pkcs12_claiming(Part::kKey, kHuge), std::string("pw"));
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error(), "the PKCS#12 file's private key is encrypted with " + refused);
}

TEST(CertificateLimits, Pkcs12RewrittenWithinTheLimitStillReads) {
  // The rewriting itself keeps the file readable: only the count makes the difference above.
  auto key = read_certificate_file(pkcs12_claiming(Part::kKey, 2048), std::string("pw"));
  ASSERT_TRUE(key) << key.error();
  EXPECT_FALSE(key->key_pem.empty());
  auto certs = read_certificate_file(pkcs12_claiming(Part::kCertificates, 2048), std::string("pw"));
  ASSERT_TRUE(certs) << certs.error();
}

TEST(CertificateLimits, EncryptedPemKeyWithHugeIterationsIsRefused) {
  PKeyPtr key = read_key(test_pki().leaf.key_pem);
  BioPtr bio = memory_bio();
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr,
                                          const_cast<char*>("pw")), 1);
  std::string pem = bio_string(bio.get());
  BioPtr in = memory_bio(pem);
  std::unique_ptr<X509_SIG, OpenSslDeleter<X509_SIG_free>> sig(PEM_read_bio_PKCS8(in.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(sig);
  const X509_ALGOR* algorithm = nullptr;
  X509_SIG_get0(sig.get(), &algorithm, nullptr);
  PbeIterations{}.set(const_cast<X509_ALGOR*>(algorithm), kHuge);
  BioPtr out = memory_bio();
  ASSERT_EQ(PEM_write_bio_PKCS8(out.get(), sig.get()), 1);
  auto read = read_certificate_file(test_pki().leaf.certificate_pem + bio_string(out.get()), std::string("pw"));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), "the private key is encrypted with 2,147,483,648 iterations; Starling accepts at most 1,000,000");
}

TEST(CertificateLimits, IterationsAddUpToABudget) {
  IterationBudget budget;
  EXPECT_TRUE(budget.spend(kMaxPbeIterations, "a"));
  EXPECT_TRUE(budget.spend(kMaxPbeIterations, "b"));
  EXPECT_TRUE(budget.spend(kMaxPbeIterations, "c"));
  auto over = budget.spend(1, "d");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error(), "the file's encryption needs more than 3,000,000 iterations in all; Starling accepts at most that");
  EXPECT_FALSE(IterationBudget{}.spend(kMaxPbeIterations + 1, "e"));
}

}  // namespace
}  // namespace starling::tls
