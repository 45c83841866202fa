#include "tls/certificate_request.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/distinguished_name.hpp"
#include "tls/test_pki.hpp"

namespace starling::tls {
namespace {

using testing::test_pki;

TEST(DistinguishedName, SplitsTheFormsAdministratorsType) {
  using V = std::vector<Rdn>;
  EXPECT_EQ(*split_distinguished_name("CN=mail.contoso.com, O=Contoso, C=US"),
            (V{{"CN", "mail.contoso.com"}, {"O", "Contoso"}, {"C", "US"}}));
  EXPECT_EQ(*split_distinguished_name("CN=x,O=y"), (V{{"CN", "x"}, {"O", "y"}}));
  EXPECT_EQ(*split_distinguished_name("  cn = x ; o = Contoso Ltd  "),
            (V{{"cn", "x"}, {"o", "Contoso Ltd"}}));
  EXPECT_EQ(*split_distinguished_name(R"(O="Contoso, Inc.", CN=a)"),
            (V{{"O", "Contoso, Inc."}, {"CN", "a"}}));
  EXPECT_EQ(*split_distinguished_name(R"(O=Contoso\, Inc.\20, CN=\41+B)"),
            (V{{"O", "Contoso, Inc. "}, {"CN", "A+B"}}));
}

TEST(DistinguishedName, RefusesMalformedSubjects) {
  for (const char* dn : {"", "   ", "mail.contoso.com", "CN=", "CN=x,", "=x", "C N=x",
                         "CN=\"x", "CN=\"x\" y", "CN=x\\"}) {
    EXPECT_FALSE(split_distinguished_name(dn)) << dn;
  }
}

TEST(DistinguishedName, SelfSignedSubjectReadsBackAsWritten) {
  auto made = generate_self_signed(
      {.common_name = "ignored", .domains = {"MAIL.contoso.com", "autodiscover.contoso.com"},
       .key_type = KeyType::kEcdsaP256,
       .subject = "CN=mail.contoso.com,OU=IT, O=\"Contoso, Ltd\", L=Redmond, S=WA, C=US"});
  ASSERT_TRUE(made) << made.error();
  auto c = describe_certificate(made->certificate_pem, made->key_pem);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->subject, "CN=mail.contoso.com, OU=IT, O=Contoso\\, Ltd, L=Redmond, ST=WA, C=US");
  EXPECT_EQ(c->issuer, c->subject);
  EXPECT_EQ(c->domains, (std::vector<std::string>{"mail.contoso.com", "autodiscover.contoso.com"}));
  EXPECT_TRUE(c->is_self_signed);
}

TEST(DistinguishedName, BadAttributeOrValueIsAnError) {
  auto unknown = generate_self_signed({.common_name = "x", .subject = "CN=x, XYZZY=1"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("unknown attribute \"XYZZY\""), std::string::npos)
      << unknown.error();
  auto country = generate_self_signed({.common_name = "x", .subject = "CN=x, C=USA"});
  ASSERT_FALSE(country);
  EXPECT_NE(country.error().find("invalid value \"USA\" for C"), std::string::npos)
      << country.error();
}

// Decodes a PEM request and returns its subject line and SAN dNSNames.
struct DecodedRequest {
  bool signature_ok = false;
  std::string signature_algorithm;
  std::string subject;
  std::vector<std::string> dns_names;
};
DecodedRequest decode(const std::string& pem) {
  DecodedRequest out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!req) return out;
  out.signature_ok = X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1;
  out.signature_algorithm = OBJ_nid2ln(X509_REQ_get_signature_nid(req));
  char* line = X509_NAME_oneline(X509_REQ_get_subject_name(req), nullptr, 0);
  out.subject = line;
  OPENSSL_free(line);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  auto* names = static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.dNSName;
      out.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  return out;
}

TEST(CertificateRequest, SignedRequestWithCnAmongTheDomains) {
  auto req = make_certificate_request("CN=mail.contoso.com, O=Contoso, C=US",
                                      {"autodiscover.contoso.com", "MAIL.CONTOSO.COM"},
                                      KeyType::kEcdsaP256);
  ASSERT_TRUE(req) << req.error();
  auto d = decode(req->request_pem);
  EXPECT_TRUE(d.signature_ok);
  EXPECT_EQ(d.signature_algorithm, "ecdsa-with-SHA256");
  EXPECT_EQ(d.subject, "/C=US/O=Contoso/CN=mail.contoso.com");
  EXPECT_EQ(d.dns_names,
            (std::vector<std::string>{"mail.contoso.com", "autodiscover.contoso.com"}));
  EXPECT_NE(req->key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);

  // The DER form is the same request.
  const auto* p = reinterpret_cast<const unsigned char*>(req->request_der.data());
  X509_REQ* der = d2i_X509_REQ(nullptr, &p, static_cast<long>(req->request_der.size()));
  ASSERT_NE(der, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, der);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  EXPECT_EQ(std::string(data, static_cast<size_t>(n)), req->request_pem);
  BIO_free(bio);
  X509_REQ_free(der);
}

TEST(CertificateRequest, RsaRequestAndRefusals) {
  auto rsa = make_certificate_request("CN=x,O=y", {}, KeyType::kRsa2048);
  ASSERT_TRUE(rsa) << rsa.error();
  auto d = decode(rsa->request_pem);
  EXPECT_TRUE(d.signature_ok);
  EXPECT_EQ(d.signature_algorithm, "sha256WithRSAEncryption");
  EXPECT_EQ(d.dns_names, std::vector<std::string>{"x"});

  EXPECT_FALSE(make_certificate_request("O=Contoso", {}, KeyType::kEcdsaP256));
  EXPECT_TRUE(make_certificate_request("O=Contoso", {"mail.contoso.com"}, KeyType::kEcdsaP256));
  EXPECT_FALSE(make_certificate_request("CN=a,,O=b", {}, KeyType::kEcdsaP256));
}

TEST(PublicKeyId, KeyRequestAndIssuedCertificateAgree) {
  const auto& pki = test_pki();
  auto req = make_certificate_request("CN=mail.contoso.test", {}, KeyType::kEcdsaP256);
  ASSERT_TRUE(req) << req.error();
  // A CA answers the request: a certificate for the request's key, issued by the test root.
  auto answer = testing::issue(
      {.common_name = "mail.contoso.test", .request_pem = req->request_pem}, &pki.root);
  auto key_id = public_key_id(req->key_pem);
  auto request_id = public_key_id(req->request_pem);
  auto answer_id = public_key_id(answer.certificate_pem);
  ASSERT_TRUE(key_id && request_id && answer_id) << key_id.error();
  EXPECT_EQ(key_id->size(), 64u);
  EXPECT_EQ(*key_id, *request_id);
  EXPECT_EQ(*key_id, *answer_id);

  auto leaf_cert = public_key_id(pki.leaf.certificate_pem);
  auto leaf_key = public_key_id(pki.leaf.key_pem);
  ASSERT_TRUE(leaf_cert && leaf_key);
  EXPECT_EQ(*leaf_cert, *leaf_key);
  EXPECT_NE(*leaf_cert, *key_id);
  EXPECT_NE(*leaf_cert, *public_key_id(pki.root.certificate_pem));

  EXPECT_FALSE(public_key_id("not pem"));
  EXPECT_FALSE(public_key_id("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(public_key_id("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"));
}

}  // namespace
}  // namespace starling::tls
