#include "tls/certificate_io.hpp"

#include <gtest/gtest.h>

#include "tls/server_context.hpp"

namespace starling::tls {
namespace {

TEST(CertificateIo, SelfSignedCoversNameAndFqdn) {
  auto made = generate_self_signed({"mx", {"mail.contoso.test", "MX"}});
  ASSERT_TRUE(made) << made.error();
  auto c = describe_certificate(made->certificate_pem, made->key_pem);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->thumbprint.size(), 40u);
  EXPECT_EQ(c->subject, "CN=mx");
  EXPECT_EQ(c->issuer, "CN=mx");
  EXPECT_EQ(c->domains, (std::vector<std::string>{"mx", "mail.contoso.test"}));
  EXPECT_TRUE(c->is_self_signed);
  EXPECT_TRUE(c->has_private_key);
  EXPECT_TRUE(c->allows_tls_server);
  EXPECT_EQ(c->version, 3);
  EXPECT_LT(c->not_before, std::chrono::system_clock::now());
  EXPECT_GT(c->not_after, std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 4));
}

TEST(CertificateIo, ForeignKeyIsNotThePrivateKey) {
  auto a = generate_self_signed({"a.test", {}, KeyType::kEcdsaP256});
  auto b = generate_self_signed({"b.test", {}, KeyType::kEcdsaP256});
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(describe_certificate(a->certificate_pem, b->key_pem)->has_private_key);
  EXPECT_FALSE(describe_certificate(a->certificate_pem, "")->has_private_key);
  EXPECT_FALSE(make_server_context(a->certificate_pem, b->key_pem));
  EXPECT_TRUE(make_server_context(a->certificate_pem, a->key_pem));
}

TEST(CertificateIo, GarbageIsAClearError) {
  auto c = describe_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("not a PEM certificate"), std::string::npos);
}

}  // namespace
}  // namespace starling::tls
