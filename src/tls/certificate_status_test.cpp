#include "tls/certificate_status.hpp"

#include <gtest/gtest.h>

#include "tls/certificate_io.hpp"
#include "tls/test_pki.hpp"

namespace starling::tls {
namespace {

using std::chrono::hours;
using testing::test_pki;
const auto kNow = std::chrono::system_clock::now();

std::string status_of(const std::vector<std::string>& chain, const std::vector<std::string>& roots,
                      std::chrono::system_clock::time_point now = kNow) {
  return check_certificate_status(chain, roots, now).status;
}

TEST(CertificateStatus, ValidOnlyWhenTheTestRootIsTrusted) {
  const auto& pki = test_pki();
  auto trusted =
      check_certificate_status({pki.leaf.certificate_pem}, {pki.root.certificate_pem}, kNow);
  EXPECT_EQ(trusted.status, "Valid") << trusted.detail;
  EXPECT_TRUE(trusted.chain_trusted);

  auto untrusted = check_certificate_status({pki.leaf.certificate_pem}, {}, kNow);
  EXPECT_EQ(untrusted.status, "Untrusted");
  EXPECT_FALSE(untrusted.chain_trusted);
  EXPECT_FALSE(untrusted.detail.empty());
}

TEST(CertificateStatus, IntermediatesComeFromTheChain) {
  const auto& pki = test_pki();
  auto with = check_certificate_status(
      {pki.chained_leaf.certificate_pem, pki.intermediate.certificate_pem},
      {pki.root.certificate_pem}, kNow);
  EXPECT_EQ(with.status, "Valid") << with.detail;
  EXPECT_EQ(status_of({pki.chained_leaf.certificate_pem}, {pki.root.certificate_pem}), "Untrusted");
}

TEST(CertificateStatus, DatesOfTheLeafComeFirst) {
  const auto& pki = test_pki();
  // Expired and trusted, expired and untrusted: DateInvalid either way.
  EXPECT_EQ(status_of({pki.expired.certificate_pem}, {pki.root.certificate_pem}), "DateInvalid");
  EXPECT_EQ(status_of({pki.expired.certificate_pem}, {}), "DateInvalid");
  // The same valid leaf, checked as of next decade: DateInvalid (the time comes from `now`).
  EXPECT_EQ(status_of({pki.leaf.certificate_pem}, {pki.root.certificate_pem}, kNow + hours(87600)),
            "DateInvalid");
  auto future = testing::issue({.common_name = "soon.contoso.test", .valid_from = hours(24),
                                .valid_until = hours(48)},
                               &pki.root);
  EXPECT_EQ(status_of({future.certificate_pem}, {pki.root.certificate_pem}), "DateInvalid");
  EXPECT_EQ(status_of({future.certificate_pem}, {pki.root.certificate_pem}, kNow + hours(36)),
            "Valid");
}

TEST(CertificateStatus, SelfSignedLeafIsUntrustedUnlessItIsARoot) {
  auto self = generate_self_signed({"mx.contoso.test", {}, KeyType::kEcdsaP256});
  ASSERT_TRUE(self) << self.error();
  EXPECT_EQ(status_of({self->certificate_pem}, {}), "Untrusted");
  EXPECT_EQ(status_of({self->certificate_pem}, {self->certificate_pem}), "Valid");
}

TEST(CertificateStatus, ForgedSignatureOrNonCaIssuerIsInvalid) {
  const auto& pki = test_pki();
  // Claims the root as issuer but is signed with another key.
  testing::TestIdentity impostor{pki.expired.key_pem, pki.root.certificate_pem};
  auto forged = testing::issue({.common_name = "forged.contoso.test"}, &impostor);
  auto f = check_certificate_status({forged.certificate_pem}, {pki.root.certificate_pem}, kNow);
  EXPECT_EQ(f.status, "Invalid") << f.detail;
  EXPECT_FALSE(f.chain_trusted);
  // Issued by a leaf (CA:FALSE) that chains to the trusted root.
  auto under_leaf = testing::issue({.common_name = "sub.contoso.test"}, &pki.client_only);
  auto u = check_certificate_status({under_leaf.certificate_pem, pki.client_only.certificate_pem},
                                    {pki.root.certificate_pem}, kNow);
  EXPECT_EQ(u.status, "Invalid") << u.detail;
  EXPECT_EQ(status_of({"garbage"}, {}), "Invalid");
  EXPECT_EQ(status_of({}, {}), "Invalid");
}

TEST(CertificateStatus, OnlyCaTrueCertificatesAreCas) {
  const auto& pki = test_pki();
  EXPECT_TRUE(is_ca_certificate(pki.root.certificate_pem));
  EXPECT_TRUE(is_ca_certificate(pki.intermediate.certificate_pem));
  EXPECT_FALSE(is_ca_certificate(pki.leaf.certificate_pem));
  auto self = generate_self_signed({"mx.contoso.test", {}, KeyType::kEcdsaP256});
  ASSERT_TRUE(self);
  EXPECT_FALSE(is_ca_certificate(self->certificate_pem));  // self-signed, but CA:FALSE
  EXPECT_FALSE(is_ca_certificate("garbage"));
}

TEST(DescribeCertificate, KeySerialAndSignatureFields) {
  const auto& pki = test_pki();
  auto leaf = describe_certificate(pki.leaf.certificate_pem, pki.leaf.key_pem);
  ASSERT_TRUE(leaf) << leaf.error();
  EXPECT_EQ(leaf->public_key_size, 2048);
  EXPECT_EQ(leaf->key_algorithm, "RSA");
  EXPECT_EQ(leaf->serial_number, "1A2B3C4D5E");
  EXPECT_EQ(leaf->signature_algorithm, "ecdsa-with-SHA256");  // signed by the ECDSA root
  EXPECT_EQ(leaf->subject, "CN=mail.contoso.test, O=Contoso");
  EXPECT_EQ(leaf->issuer, "CN=Starling Test Root CA, O=Starling Tests");
  EXPECT_FALSE(leaf->is_self_signed);
  EXPECT_TRUE(leaf->has_private_key);
  EXPECT_TRUE(leaf->allows_tls_server);

  auto root = describe_certificate(pki.root.certificate_pem, "");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->public_key_size, 256);
  EXPECT_EQ(root->key_algorithm, "ECDSA");
  EXPECT_TRUE(root->is_self_signed);

  auto client = describe_certificate(pki.client_only.certificate_pem, "");
  ASSERT_TRUE(client);
  EXPECT_FALSE(client->allows_tls_server);

  auto rsa = generate_self_signed({"mx.contoso.test", {}, KeyType::kRsa2048});
  ASSERT_TRUE(rsa);
  auto self = describe_certificate(rsa->certificate_pem, "");
  ASSERT_TRUE(self);
  EXPECT_EQ(self->signature_algorithm, "sha256WithRSAEncryption");
  EXPECT_EQ(self->public_key_size, 2048);
  EXPECT_EQ(self->serial_number.size(), 32u);  // 16 random bytes, high bit cleared
}

}  // namespace
}  // namespace starling::tls
