// The certificate picture at start and at every reconfiguration, held to work linear in the
// names of the store: a certificate with 60,000 names used to cost minutes per change (the SNI
// table ranked a copy of each name's certificates against all their names). Work is counted in
// name comparisons (core::name_comparisons), not measured by a clock.
#include "diag/evaluation.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <map>

#include "core/names.hpp"
#include "testing/temp_dir.hpp"
#include "tls/test_pki.hpp"

namespace starling::diag {
namespace {

constexpr size_t kNames = 60000;

std::vector<std::string> hosts(size_t from, size_t count) {
  std::vector<std::string> out;
  for (size_t i = from; i < from + count; ++i) out.push_back("host" + std::to_string(i) + ".contoso.test");
  return out;
}

CertificateRecord candidate(std::string thumbprint, std::vector<std::string> domains, int age_hours) {
  CertificateRecord r;
  r.stored.thumbprint = thumbprint;
  r.stored.certificate_pem = "PEM of " + thumbprint;
  r.props.thumbprint = std::move(thumbprint);
  r.props.domains = std::move(domains);
  r.props.services = static_cast<core::Services>(core::Service::kSmtp);
  r.props.has_private_key = true;
  r.props.not_before = core::SysTime{} + std::chrono::hours(100000 - age_hours);
  r.props.not_after = r.props.not_before + std::chrono::hours(24 * 365);
  return r;
}

TEST(SniTable, IsBuiltInWorkLinearInTheNames) {
  // One certificate with 60,000 names, and sixty newer ones with a thousand of them each.
  std::vector<CertificateRecord> certs{candidate("BIG", hosts(0, kNames), 50)};
  for (size_t i = 0; i < 60; ++i) certs.push_back(candidate("C" + std::to_string(i), hosts(i * 1000, 1000), 5));
  certs.push_back(candidate("WILD", {"*.contoso.test"}, 1));
  uint64_t before = core::name_comparisons();
  std::vector<std::string> names;
  auto table = build_sni_table(certs, {}, &names);
  uint64_t comparisons = core::name_comparisons() - before;
  EXPECT_LE(comparisons, 2 * kNames) << "name comparisons for " << 2 * kNames << " names";
  EXPECT_EQ(table->size(), kNames + 1);
  EXPECT_EQ(names.size(), kNames + 1);
  EXPECT_EQ(table->find("host0.contoso.test")->thumbprint, "C0");         // newest of the two
  EXPECT_EQ(table->find("HOST59999.contoso.test.")->thumbprint, "C59");
  EXPECT_EQ(table->find("other.contoso.test")->thumbprint, "WILD");
  EXPECT_EQ(table->find("a.b.contoso.test"), nullptr);
}

TEST(SniTable, LeavesOutCertificatesThatAreNoCandidates) {
  auto ca = candidate("CA", {"mail.contoso.test"}, 1);
  ca.props.is_ca = true;
  auto big = candidate("BIG", {"big.contoso.test"}, 1);
  big.props.limit_exceeded = "it lists 60,001 names";
  auto table = build_sni_table({ca, big, candidate("LEAF", {"mail.contoso.test"}, 50)}, {});
  EXPECT_EQ(table->find("mail.contoso.test")->thumbprint, "LEAF");
  EXPECT_EQ(table->find("big.contoso.test"), nullptr);
  EXPECT_EQ(table->size(), 1u);
}

// Start-up and reconfiguration with a 60,000-name certificate stored by an older version: read,
// evaluated for every connector and left out of the SNI table, in linear work, with its reason.
TEST(Evaluation, A60000NameCertificateInTheStoreCostsLinearWorkAndIsExplained) {
  testing::TempDir dir;
  auto store = store::Store::create(dir.path / "starling.db");
  ASSERT_TRUE(store) << store.error();
  core::ServerSettings settings{"mx", "host7.contoso.test"};
  ASSERT_TRUE((*store)->set_server_settings(settings));
  for (int i = 0; i < 3; ++i) {
    core::ReceiveConnector c;
    c.name = "Receive " + std::to_string(i);
    c.fqdn = "host" + std::to_string(i) + ".contoso.test";
    ASSERT_TRUE((*store)->add_receive_connector(c));
  }
  auto big = tls::testing::issue({.common_name = "host0.contoso.test", .dns_names = hosts(0, kNames)}, nullptr);
  store::StoredCertificate sc;
  sc.certificate_pem = big.certificate_pem;
  sc.key_pem = big.key_pem;
  sc.services = static_cast<core::Services>(core::Service::kSmtp);
  sc.thumbprint = "BIG";
  ASSERT_TRUE((*store)->add_certificate(sc));

  core::SysTime now = std::chrono::system_clock::now();
  uint64_t before = core::name_comparisons();
  auto certs = load_certificates(**store, now);
  ASSERT_TRUE(certs) << certs.error();
  auto verdicts = evaluate_connectors(**store, settings, *certs, now, std::chrono::hours(24));
  ASSERT_TRUE(verdicts) << verdicts.error();
  auto table = build_sni_table(*certs, now);
  uint64_t comparisons = core::name_comparisons() - before;

  EXPECT_LE(comparisons, 20 * kNames) << "3 connectors over " << kNames << " names";
  EXPECT_EQ(table->size(), 0u);
  ASSERT_EQ(verdicts->size(), 3u);
  const ConnectorVerdict& v = verdicts->front();
  EXPECT_FALSE(v.selection.chosen);
  EXPECT_EQ(v.selection.condition, core::NoCertificate::kUnusable);
  std::string text = condition_text(v);
  EXPECT_NE(text.find("or they exceed Starling's limits (" + certs->front().props.thumbprint + ": "),
            std::string::npos) << text;
  EXPECT_NE(text.find("it lists 60,001 names"), std::string::npos) << text;
}

TEST(Evaluation, ACaCertificateIsConditionDWithItsReason) {
  ConnectorVerdict v{"Receive", "Default mx", "mail.contoso.test", "", {}, {}};
  auto ca = candidate("CAFE", {"mail.contoso.test"}, 1).props;
  ca.is_ca = true;
  std::vector<core::Certificate> certs{ca};
  v.selection = core::select_certificate(certs, {v.fqdn});
  EXPECT_EQ(condition_text(v),
            "(d) certificates list mail.contoso.test but are CA certificates (basicConstraints CA:TRUE), "
            "which are not served for STARTTLS (CAFE: it is a CA certificate (basicConstraints CA:TRUE))");
  auto fields = not_found_fields(v);
  EXPECT_EQ(fields[4], (std::pair<std::string, std::string>{"Thumbprints", "CAFE"}));
}

}  // namespace
}  // namespace starling::diag

// Dual certificates (docs/certificates.md): the best of each key type is served side by side.
namespace starling::diag {
namespace {

CertificateRecord typed(std::string thumbprint, std::string key_type, int age_hours) {
  CertificateRecord r = candidate(std::move(thumbprint), {"mail.contoso.test"}, age_hours);
  r.props.key_algorithm = std::move(key_type);
  return r;
}

TEST(DualCertificates, TheSniTableServesEachNameItsPair) {
  auto table = build_sni_table({typed("R", "RSA", 5), typed("E", "ECDSA", 1), typed("E-OLD", "ECDSA", 9)}, {});
  const tls::SniCertificate* found = table->find("mail.contoso.test");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->thumbprint, "R") << "RSA is the primary";
  ASSERT_EQ(found->served.size(), 2u);
  EXPECT_EQ(found->served[0].thumbprint, "R");
  EXPECT_EQ(found->served[1].thumbprint, "E");
  auto single = build_sni_table({typed("R", "RSA", 5)}, {});
  EXPECT_TRUE(single->find("mail.contoso.test")->served.empty());
}

TEST(DualCertificates, AnExpiringEcdsaCertificateBesideAGoodRsaOneIsWarnedAbout) {
  ConnectorVerdict v{"Receive", "Default mx", "mail.contoso.test", "", {}, {}};
  auto rsa = typed("R", "RSA", 5).props;
  auto ecdsa = typed("E", "ECDSA", 1).props;
  core::SysTime now = ecdsa.not_before + std::chrono::hours(1);
  ecdsa.not_after = now + std::chrono::hours(100);
  std::vector<core::Certificate> certs{rsa, ecdsa};
  v.selection = core::select_certificate(certs, {v.fqdn, "", now});
  auto warnings = expiry_warnings(v);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_FALSE(warnings[0].expired);
  EXPECT_EQ(warnings[0].object_suffix, ":ECDSA");
  std::map<std::string, std::string> fields(warnings[0].fields.begin(), warnings[0].fields.end());
  EXPECT_EQ(fields["Thumbprint"], "E");
  EXPECT_EQ(fields["KeyType"], "ECDSA");
  EXPECT_EQ(fields["HoursRemaining"], "100");
  EXPECT_EQ(fields["Certificates"], "RSA R, ECDSA E");

  // Both expired: one warning each, the primary under the connector's own object.
  certs[0].not_after = certs[1].not_after = now - std::chrono::hours(1);
  v.selection = core::select_certificate(certs, {v.fqdn, "", now});
  warnings = expiry_warnings(v);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(warnings[0].expired && warnings[1].expired);
  EXPECT_EQ(warnings[0].object_suffix, "");
  EXPECT_EQ(warnings[1].object_suffix, ":ECDSA");
}

// A server context with both certificates, and an in-memory handshake: the client's signature
// algorithms decide which one it gets.
std::string served_key_type(const tls::ContextPtr& server, const char* sigalgs) {
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(client_ctx);
  SSL* srv = SSL_new(server->native_handle());
  SSL_set1_sigalgs_list(client, sigalgs);
  BIO *c_io = nullptr, *s_io = nullptr;
  BIO_new_bio_pair(&c_io, 0, &s_io, 0);
  SSL_set_bio(client, c_io, c_io);
  SSL_set_bio(srv, s_io, s_io);
  SSL_set_connect_state(client);
  SSL_set_accept_state(srv);
  for (int i = 0; i < 20 && (!SSL_is_init_finished(client) || !SSL_is_init_finished(srv)); ++i) {
    SSL_do_handshake(client);
    SSL_do_handshake(srv);
  }
  std::string type = "none";
  if (X509* peer = SSL_get1_peer_certificate(client)) {
    type = EVP_PKEY_get_base_id(X509_get0_pubkey(peer)) == EVP_PKEY_EC ? "ECDSA" : "RSA";
    X509_free(peer);
  }
  SSL_free(client);
  SSL_free(srv);
  SSL_CTX_free(client_ctx);
  return type;
}

TEST(DualCertificates, TheContextServesEcdsaToClientsThatOfferItAndRsaToTheOthers) {
  auto rsa = tls::testing::issue({.common_name = "mail.contoso.test", .rsa = true}, nullptr);
  auto ecdsa = tls::testing::issue({.common_name = "mail.contoso.test"}, nullptr);
  auto both = tls::make_server_context(std::vector<tls::CertificateAndKey>{
      {"R", rsa.certificate_pem, rsa.key_pem}, {"E", ecdsa.certificate_pem, ecdsa.key_pem}});
  ASSERT_TRUE(both) << both.error();
  EXPECT_EQ(served_key_type(*both, "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"), "ECDSA");
  EXPECT_EQ(served_key_type(*both, "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"), "RSA");

  // A second certificate of a key type already served is refused, not silently replacing it.
  auto other = tls::testing::issue({.common_name = "mail.contoso.test", .rsa = true, .serial = 7}, nullptr);
  auto twice = tls::make_server_context(std::vector<tls::CertificateAndKey>{
      {"R", rsa.certificate_pem, rsa.key_pem}, {"R2", other.certificate_pem, other.key_pem}});
  EXPECT_FALSE(twice);
  auto mismatched = tls::make_server_context(std::vector<tls::CertificateAndKey>{
      {"R", rsa.certificate_pem, rsa.key_pem}, {"E", ecdsa.certificate_pem, other.key_pem}});
  EXPECT_FALSE(mismatched);

  tls::ContextCache cache;
  std::vector<tls::CertificateAndKey> pair{{"R", rsa.certificate_pem, rsa.key_pem},
                                           {"E", ecdsa.certificate_pem, ecdsa.key_pem}};
  auto a = cache.get(pair);
  auto b = cache.get(pair);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get()) << "built once, then cached under R+E";
  EXPECT_EQ(tls::ContextCache::key_for(pair), "R+E");
}

}  // namespace
}  // namespace starling::diag
