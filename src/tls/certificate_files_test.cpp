#include "tls/certificate_files.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "tls/certificate_request.hpp"
#include "tls/test_pki.hpp"

namespace starling::tls {
namespace {

using testing::certificate_der;
using testing::test_pki;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The same public key: the bundle's key belongs to the identity's certificate.
void expect_same_key(const std::string& a_pem, const std::string& b_pem) {
  auto a = public_key_id(a_pem);
  auto b = public_key_id(b_pem);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
}

TEST(CertificateFiles, PemLeafWithKeyAndChainInAnyOrder) {
  const auto& pki = test_pki();
  // Root first, key in the middle, leaf last: the leaf still comes out first, then its issuer.
  auto bundle = read_certificate_file(
      "Bag Attributes: junk before the first block\n" + pki.root.certificate_pem +
          pki.leaf.key_pem + pki.leaf.certificate_pem,
      std::nullopt);
  ASSERT_TRUE(bundle) << bundle.error();
  ASSERT_EQ(bundle->certificates_pem.size(), 2u);
  EXPECT_EQ(bundle->certificates_pem[0], pki.leaf.certificate_pem);
  EXPECT_EQ(bundle->certificates_pem[1], pki.root.certificate_pem);
  expect_same_key(bundle->key_pem, pki.leaf.key_pem);
  EXPECT_TRUE(contains(bundle->key_pem, "-----BEGIN PRIVATE KEY-----"));
}

TEST(CertificateFiles, ChainWithoutKeyIsOrderedLeafIntermediateRoot) {
  const auto& pki = test_pki();
  auto bundle = read_certificate_file(pki.root.certificate_pem + pki.chained_leaf.certificate_pem +
                                          pki.intermediate.certificate_pem +
                                          pki.root.certificate_pem,  // a duplicate, dropped
                                      std::nullopt);
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_EQ(bundle->certificates_pem,
            (std::vector<std::string>{pki.chained_leaf.certificate_pem,
                                      pki.intermediate.certificate_pem, pki.root.certificate_pem}));
  EXPECT_TRUE(bundle->key_pem.empty());
}

TEST(CertificateFiles, TraditionalRsaKeyBlockIsConvertedToPkcs8) {
  const auto& pki = test_pki();
  // Re-armour the PKCS#8 key as "RSA PRIVATE KEY" the way `openssl rsa -traditional` writes it.
  BIO* in = BIO_new_mem_buf(pki.leaf.key_pem.data(), static_cast<int>(pki.leaf.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO* out = BIO_new(BIO_s_mem());
  ASSERT_EQ(
      PEM_write_bio_PrivateKey_traditional(out, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string traditional(data, static_cast<size_t>(n));
  BIO_free(in);
  BIO_free(out);
  EVP_PKEY_free(key);
  ASSERT_TRUE(contains(traditional, "BEGIN RSA PRIVATE KEY"));

  auto bundle = read_certificate_file(pki.leaf.certificate_pem + traditional, std::nullopt);
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_TRUE(contains(bundle->key_pem, "-----BEGIN PRIVATE KEY-----"));
  expect_same_key(bundle->key_pem, pki.leaf.certificate_pem);
}

TEST(CertificateFiles, EncryptedPemKeyNeedsItsPassword) {
  const auto& pki = test_pki();
  BIO* in = BIO_new_mem_buf(pki.leaf.key_pem.data(), static_cast<int>(pki.leaf.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO* out = BIO_new(BIO_s_mem());
  char pw[] = "pw";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out, key, EVP_aes_256_cbc(), pw, 2, nullptr, nullptr), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string file = pki.leaf.certificate_pem + std::string(data, static_cast<size_t>(n));
  BIO_free(in);
  BIO_free(out);
  EVP_PKEY_free(key);
  ASSERT_TRUE(contains(file, "BEGIN ENCRYPTED PRIVATE KEY"));

  auto bundle = read_certificate_file(file, std::string("pw"));
  ASSERT_TRUE(bundle) << bundle.error();
  expect_same_key(bundle->key_pem, pki.leaf.key_pem);
  auto missing = read_certificate_file(file, std::nullopt);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error(), "a password is needed")) << missing.error();
  auto wrong = read_certificate_file(file, std::string("nope"));
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(contains(wrong.error(), "cannot decrypt the private key")) << wrong.error();
}

TEST(CertificateFiles, DerCertificate) {
  const auto& pki = test_pki();
  auto bundle = read_certificate_file(certificate_der(pki.leaf.certificate_pem), std::nullopt);
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_EQ(bundle->certificates_pem, std::vector<std::string>{pki.leaf.certificate_pem});
}

TEST(CertificateFiles, Pkcs7DerAndPem) {
  const auto& pki = test_pki();
  std::vector<std::string> chain{pki.root.certificate_pem, pki.intermediate.certificate_pem,
                                 pki.chained_leaf.certificate_pem};
  std::vector<std::string> expected{pki.chained_leaf.certificate_pem,
                                    pki.intermediate.certificate_pem, pki.root.certificate_pem};
  for (const auto& bytes : {testing::make_pkcs7_der(chain), testing::make_pkcs7_pem(chain)}) {
    auto bundle = read_certificate_file(bytes, std::nullopt);
    ASSERT_TRUE(bundle) << bundle.error();
    EXPECT_EQ(bundle->certificates_pem, expected);
    EXPECT_TRUE(bundle->key_pem.empty());
  }
}

TEST(CertificateFiles, Pkcs12RoundTripWithPassword) {
  const auto& pki = test_pki();
  auto p12 = make_pkcs12({pki.leaf.certificate_pem, pki.root.certificate_pem}, pki.leaf.key_pem,
                         "s3cret", "Contoso mail");
  ASSERT_TRUE(p12) << p12.error();
  auto bundle = read_certificate_file(*p12, std::string("s3cret"));
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_EQ(bundle->certificates_pem,
            (std::vector<std::string>{pki.leaf.certificate_pem, pki.root.certificate_pem}));
  expect_same_key(bundle->key_pem, pki.leaf.key_pem);
}

TEST(CertificateFiles, Pkcs12WrongOrMissingPasswordIsAClearError) {
  const auto& pki = test_pki();
  auto p12 = make_pkcs12({pki.leaf.certificate_pem}, pki.leaf.key_pem, "s3cret", "");
  ASSERT_TRUE(p12) << p12.error();
  auto wrong = read_certificate_file(*p12, std::string("guess"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), "wrong password for the PKCS#12 file");
  auto missing = read_certificate_file(*p12, std::nullopt);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error(), "a password is needed")) << missing.error();
}

TEST(CertificateFiles, Pkcs12WithoutPasswordOpensWithoutOne) {
  const auto& pki = test_pki();
  auto p12 = make_pkcs12({pki.leaf.certificate_pem}, pki.leaf.key_pem, "", "");
  ASSERT_TRUE(p12) << p12.error();
  auto bundle = read_certificate_file(*p12, std::nullopt);
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_FALSE(bundle->key_pem.empty());
}

// Old Windows exports: 3DES key, RC2-40 certificates, which OpenSSL 3 keeps in "legacy".
TEST(CertificateFiles, LegacyPkcs12FromOldWindows) {
  OSSL_LIB_CTX* legacy_ctx = OSSL_LIB_CTX_new();
  OSSL_PROVIDER* legacy = OSSL_PROVIDER_load(legacy_ctx, "legacy");
  OSSL_PROVIDER* base = OSSL_PROVIDER_load(legacy_ctx, "default");
  if (!legacy || !base) GTEST_SKIP() << "no OpenSSL legacy provider on this system";
  const auto& pki = test_pki();
  BIO* kb = BIO_new_mem_buf(pki.leaf.key_pem.data(), -1);
  BIO* cb = BIO_new_mem_buf(pki.leaf.certificate_pem.data(), -1);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  PKCS12* p12 = PKCS12_create_ex("pw", "old", key, cert, nullptr,
                                 NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                 NID_pbe_WithSHA1And40BitRC2_CBC, 2000, 1, 0, legacy_ctx, nullptr);
  ASSERT_NE(p12, nullptr);
  unsigned char* der = nullptr;
  int len = i2d_PKCS12(p12, &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  PKCS12_free(p12);
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(kb);
  BIO_free(cb);
  OSSL_PROVIDER_unload(legacy);
  OSSL_PROVIDER_unload(base);
  OSSL_LIB_CTX_free(legacy_ctx);

  auto bundle = read_certificate_file(bytes, std::string("pw"));
  ASSERT_TRUE(bundle) << bundle.error();
  EXPECT_EQ(bundle->certificates_pem, std::vector<std::string>{pki.leaf.certificate_pem});
  expect_same_key(bundle->key_pem, pki.leaf.key_pem);
}

// Interoperability: the real `openssl pkcs12` reads what make_pkcs12 writes.
TEST(CertificateFiles, Pkcs12ReadableByOpensslCommand) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  const auto& pki = test_pki();
  auto p12 = make_pkcs12({pki.leaf.certificate_pem, pki.root.certificate_pem}, pki.leaf.key_pem,
                         "s3cret", "Contoso mail");
  ASSERT_TRUE(p12) << p12.error();
  std::string path = ::testing::TempDir() + "starling_tls_test.p12";
  std::ofstream(path, std::ios::binary) << *p12;
  std::string out = path + ".out";
  std::string cmd = "openssl pkcs12 -in " + path + " -passin pass:s3cret -nodes -out " + out +
                    " 2>/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(contains(text, "friendlyName: Contoso mail")) << text;
  EXPECT_TRUE(contains(text, "BEGIN PRIVATE KEY"));
  std::string wrong =
      "openssl pkcs12 -in " + path + " -passin pass:nope -nodes -out /dev/null 2>/dev/null";
  EXPECT_NE(std::system(wrong.c_str()), 0);
  std::remove(path.c_str());
  std::remove(out.c_str());
}

TEST(CertificateFiles, KeyOfAnotherCertificateIsRefused) {
  const auto& pki = test_pki();
  auto bundle = read_certificate_file(pki.leaf.certificate_pem + pki.expired.key_pem, std::nullopt);
  ASSERT_FALSE(bundle);
  EXPECT_EQ(bundle.error(), "the private key does not match the certificate");
  auto p12 = make_pkcs12({pki.leaf.certificate_pem}, pki.expired.key_pem, "pw", "");
  ASSERT_FALSE(p12);
  EXPECT_EQ(p12.error(), "the private key does not match the certificate");
}

TEST(CertificateFiles, GarbageCorruptAndEmptyInputsAreClearErrors) {
  const auto& pki = test_pki();
  std::string der = certificate_der(pki.leaf.certificate_pem);
  std::string pem = pki.leaf.certificate_pem;
  std::string bad_base64 = pem;
  bad_base64[pem.find('\n') + 10] = '*';
  struct Case {
    std::string bytes;
    std::string error_part;
  };
  std::vector<Case> cases{
      {"", "the file is empty"},
      {"hello, world\n", "not a certificate file"},
      {der.substr(0, der.size() / 2), "not a certificate file"},
      {std::string(4096, '\xff'), "not a certificate file"},
      {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "corrupt certificate"},
      {bad_base64, "corrupt PEM block"},
      {pem.substr(0, pem.size() / 2), "corrupt PEM block"},
      {pki.leaf.key_pem, "no certificate in the file"},
      {"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
       "only: CERTIFICATE REQUEST"},
      {pem + pki.leaf.key_pem + pki.leaf.key_pem, "more than one private key"},
  };
  for (const auto& c : cases) {
    auto r = read_certificate_file(c.bytes, std::nullopt);
    ASSERT_FALSE(r) << "accepted: " << c.bytes.substr(0, 40);
    EXPECT_TRUE(contains(r.error(), c.error_part)) << r.error();
  }
  // A PKCS#12 file cut short, or with a flipped byte, never crashes.
  auto p12 = make_pkcs12({pki.leaf.certificate_pem}, pki.leaf.key_pem, "pw", "");
  ASSERT_TRUE(p12);
  for (size_t cut = 0; cut < p12->size(); cut += 97) {
    EXPECT_FALSE(read_certificate_file(p12->substr(0, cut), std::string("pw")));
    std::string flipped = *p12;
    flipped[cut] = static_cast<char>(flipped[cut] ^ 0x5a);
    EXPECT_FALSE(read_certificate_file(flipped, std::string("pw"))) << "flipped byte " << cut;
  }
}

}  // namespace
}  // namespace starling::tls
