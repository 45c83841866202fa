#include "core/selection.hpp"

#include <gtest/gtest.h>

namespace starling::core {
namespace {

using std::chrono::hours;

Certificate cert(std::string thumb, std::vector<std::string> domains, int age_hours,
                 bool self_signed = true) {
  Certificate c;
  c.thumbprint = std::move(thumb);
  c.domains = std::move(domains);
  c.services = static_cast<Services>(Service::kSmtp);
  c.has_private_key = true;
  c.is_self_signed = self_signed;
  c.chain_trusted = !self_signed;
  c.not_before = SysTime{} + hours(100000 - age_hours);
  c.not_after = c.not_before + hours(24 * 365);
  return c;
}

TEST(Selection, NoCandidateForUncoveredName) {
  std::vector<Certificate> certs{cert("A", {"mail.contoso.test"}, 1)};
  EXPECT_FALSE(select_starttls_certificate(certs, "other.contoso.test"));
}

TEST(Selection, RequiresSmtpAndPrivateKey) {
  auto no_smtp = cert("A", {"mail.contoso.test"}, 1);
  no_smtp.services = 0;
  auto no_key = cert("B", {"mail.contoso.test"}, 1);
  no_key.has_private_key = false;
  std::vector<Certificate> certs{no_smtp, no_key};
  EXPECT_FALSE(select_starttls_certificate(certs, "mail.contoso.test"));
}

TEST(Selection, NewestSelfSignedWins) {
  std::vector<Certificate> certs{cert("OLD", {"mail.contoso.test"}, 50),
                                 cert("NEW", {"mail.contoso.test"}, 5)};
  EXPECT_EQ(select_starttls_certificate(certs, "MAIL.contoso.test")->thumbprint, "NEW");
}

TEST(Selection, TrustedCaIssuedBeatsNewerSelfSigned) {
  std::vector<Certificate> certs{cert("CA", {"mail.contoso.test"}, 50, /*self_signed=*/false),
                                 cert("SELF", {"mail.contoso.test"}, 5)};
  EXPECT_EQ(select_starttls_certificate(certs, "mail.contoso.test")->thumbprint, "CA");
}

TEST(Selection, ExactNameBeforeWildcard) {
  std::vector<Certificate> certs{cert("WILD", {"*.contoso.test"}, 1, false),
                                 cert("EXACT", {"mail.contoso.test"}, 50)};
  EXPECT_EQ(select_starttls_certificate(certs, "mail.contoso.test")->thumbprint, "EXACT");
  EXPECT_EQ(select_starttls_certificate(certs, "smtp.contoso.test")->thumbprint, "WILD");
  EXPECT_FALSE(select_starttls_certificate(certs, "a.b.contoso.test"));
}

}  // namespace
}  // namespace starling::core

namespace starling::core {
namespace {

SysTime at(int hours) { return SysTime{} + std::chrono::hours(100000 + hours); }

Certificate qualifying(std::string thumb, std::vector<std::string> domains) {
  Certificate c;
  c.thumbprint = std::move(thumb);
  c.domains = std::move(domains);
  c.services = static_cast<Services>(Service::kSmtp);
  c.has_private_key = true;
  c.is_self_signed = true;
  c.not_before = at(-10);
  c.not_after = at(24 * 365);
  c.subject = "CN=" + c.domains.front();
  c.issuer = c.subject;
  return c;
}

TEST(SelectCertificate, ConditionsSayWhyNothingQualifies) {
  std::vector<Certificate> none{qualifying("A", {"other.test"})};
  auto a = select_certificate(none, {"mail.contoso.test"});
  EXPECT_FALSE(a.chosen);
  EXPECT_EQ(a.condition, NoCertificate::kNoneListsName);
  EXPECT_EQ(fix_command(a, "mail.contoso.test", "Receive", "Default mx"),
            "starling new-certificate --domain mail.contoso.test --services SMTP");

  auto not_enabled = qualifying("B", {"mail.contoso.test"});
  not_enabled.services = 0;
  std::vector<Certificate> b_certs{not_enabled};
  auto b = select_certificate(b_certs, {"mail.contoso.test"});
  EXPECT_EQ(b.condition, NoCertificate::kNotEnabledForSmtp);
  EXPECT_EQ(b.thumbprints, std::vector<std::string>{"B"});
  EXPECT_EQ(fix_command(b, "mail.contoso.test", "Receive", "x"), "starling enable-certificate B --services SMTP");

  auto no_key = qualifying("C", {"mail.contoso.test"});
  no_key.has_private_key = false;
  auto eku = qualifying("D", {"*.contoso.test"});
  eku.allows_tls_server = false;
  std::vector<Certificate> c_certs{no_key, eku};
  auto c = select_certificate(c_certs, {"mail.contoso.test"});
  EXPECT_EQ(c.condition, NoCertificate::kUnusable);
  EXPECT_EQ(c.thumbprints, (std::vector<std::string>{"C", "D"}));
}

TEST(SelectCertificate, ARenewalNotYetValidDoesNotDisplaceTheCurrentCertificate) {
  auto current = qualifying("CURRENT", {"mail.contoso.test"});
  auto renewal = qualifying("RENEWAL", {"mail.contoso.test"});
  renewal.not_before = at(24 * 30);
  renewal.not_after = at(24 * 400);
  std::vector<Certificate> certs{current, renewal};
  EXPECT_EQ(select_certificate(certs, {"mail.contoso.test", "", at(0)}).chosen->thumbprint, "CURRENT");
  EXPECT_EQ(select_certificate(certs, {"mail.contoso.test", "", at(24 * 31)}).chosen->thumbprint, "RENEWAL");
}

TEST(SelectCertificate, PinOverridesTheName) {
  auto pinned = qualifying("PIN", {"other.test"});
  pinned.issuer = "CN=Contoso CA";
  pinned.subject = "CN=other.test";
  std::vector<Certificate> certs{qualifying("BYNAME", {"mail.contoso.test"}), pinned};
  auto s = select_certificate(certs, {"mail.contoso.test", "<I>CN=Contoso CA<S>CN=other.test"});
  ASSERT_TRUE(s.chosen);
  EXPECT_EQ(s.chosen->thumbprint, "PIN");
  auto missing = select_certificate(certs, {"mail.contoso.test", "<I>CN=Nobody<S>CN=x"});
  EXPECT_FALSE(missing.chosen);
  EXPECT_EQ(missing.condition, NoCertificate::kPinnedMissing);
}

TEST(SelectCertificate, ExpiredIsStillChosenAndExpiringIsFlagged) {
  auto old = qualifying("OLD", {"mail.contoso.test"});
  old.not_after = at(-1);
  std::vector<Certificate> expired{old};
  auto e = select_certificate(expired, {"mail.contoso.test", "", at(0)});
  ASSERT_TRUE(e.chosen);
  EXPECT_TRUE(e.expired);
  auto soon = qualifying("SOON", {"mail.contoso.test"});
  soon.not_after = at(48);
  std::vector<Certificate> expiring{soon};
  auto s = select_certificate(expiring, {"mail.contoso.test", "", at(0)});
  EXPECT_TRUE(s.expires_soon);
  EXPECT_EQ(s.hours_remaining, 48);
  EXPECT_FALSE(select_certificate(expiring, {"mail.contoso.test", "", at(0), std::chrono::hours(24)}).expires_soon);
}

}  // namespace
}  // namespace starling::core

namespace starling::core {
namespace {

Certificate leaf_for(std::string thumb, std::string name) {
  Certificate c;
  c.thumbprint = std::move(thumb);
  c.domains = {std::move(name)};
  c.services = static_cast<Services>(Service::kSmtp);
  c.has_private_key = true;
  c.subject = c.issuer = "CN=" + c.domains.front();
  return c;
}

// `openssl req -x509` marks what it makes CA:TRUE; such a certificate was served for STARTTLS.
TEST(SelectCertificate, ACaCertificateIsNotACandidate) {
  auto ca = leaf_for("CA", "mail.contoso.test");
  ca.is_ca = true;
  ca.not_before = SysTime{} + hours(10);  // newer than the leaf: it would win on dates
  auto leaf = leaf_for("LEAF", "mail.contoso.test");
  std::vector<Certificate> both{ca, leaf};
  EXPECT_EQ(select_certificate(both, {"mail.contoso.test"}).chosen->thumbprint, "LEAF");

  std::vector<Certificate> only_ca{ca};
  auto s = select_certificate(only_ca, {"mail.contoso.test"});
  EXPECT_FALSE(s.chosen);
  EXPECT_EQ(s.condition, NoCertificate::kCaCertificate);
  EXPECT_EQ(s.thumbprints, std::vector<std::string>{"CA"});
  ASSERT_EQ(s.reasons.size(), 1u);
  EXPECT_NE(s.reasons[0].find("CA:TRUE"), std::string::npos) << s.reasons[0];
  EXPECT_EQ(fix_command(s, "mail.contoso.test", "Receive", "x"),
            "starling new-certificate --domain mail.contoso.test --services SMTP");
  EXPECT_NE(describe(s.condition).find("CA certificates"), std::string::npos);
}

TEST(SelectCertificate, APinToACaCertificateIsRefusedWithItsReason) {
  auto ca = leaf_for("CA", "mail.contoso.test");
  ca.is_ca = true;
  std::vector<Certificate> certs{ca};
  auto s = select_certificate(certs, {"mail.contoso.test", "<I>CN=mail.contoso.test<S>CN=mail.contoso.test"});
  EXPECT_FALSE(s.chosen);
  EXPECT_EQ(s.condition, NoCertificate::kPinnedMissing);
  EXPECT_EQ(s.thumbprints, std::vector<std::string>{"CA"});
}

TEST(SelectCertificate, EnablingWinsOverTheCaConditionAndTheCaOverUnusable) {
  auto ca = leaf_for("CA", "mail.contoso.test");
  ca.is_ca = true;
  auto off = leaf_for("OFF", "mail.contoso.test");
  off.services = 0;
  auto no_key = leaf_for("NOKEY", "mail.contoso.test");
  no_key.has_private_key = false;
  std::vector<Certificate> b{ca, off};
  EXPECT_EQ(select_certificate(b, {"mail.contoso.test"}).condition, NoCertificate::kNotEnabledForSmtp);
  std::vector<Certificate> d{no_key, ca};
  auto s = select_certificate(d, {"mail.contoso.test"});
  EXPECT_EQ(s.condition, NoCertificate::kCaCertificate);
  EXPECT_EQ(s.reasons.size(), 2u);
  EXPECT_EQ(s.reasons[0], "the store holds no private key that matches it");
}

TEST(SelectCertificate, ACertificateOverALimitIsNotACandidate) {
  auto big = leaf_for("BIG", "mail.contoso.test");
  big.limit_exceeded = "it lists 60,000 names; Starling serves certificates with at most 1,000";
  std::vector<Certificate> certs{big};
  auto s = select_certificate(certs, {"mail.contoso.test"});
  EXPECT_FALSE(s.chosen);
  EXPECT_EQ(s.condition, NoCertificate::kUnusable);
  EXPECT_EQ(s.reasons, std::vector<std::string>{big.limit_exceeded});
}

TEST(SelectCertificate, BestCandidateAgreesWithTheRanking) {
  auto older = leaf_for("OLD", "mail.contoso.test");
  auto newer = leaf_for("NEW", "mail.contoso.test");
  newer.not_before = SysTime{} + hours(5);
  auto ca = leaf_for("CA", "mail.contoso.test");
  ca.is_ca = true;
  ca.not_before = SysTime{} + hours(9);
  std::vector<const Certificate*> listing{&older, &ca, &newer};
  EXPECT_EQ(best_candidate(listing, {})->thumbprint, "NEW");
  std::vector<const Certificate*> none{&ca};
  EXPECT_EQ(best_candidate(none, {}), nullptr);
}

}  // namespace
}  // namespace starling::core

// Dual certificates (docs/certificates.md): the rule runs once per key type.
namespace starling::core {
namespace {

Certificate typed(std::string thumb, std::string key_type, std::vector<std::string> domains, int hours_old = 10) {
  Certificate c;
  c.thumbprint = std::move(thumb);
  c.key_algorithm = std::move(key_type);
  c.domains = std::move(domains);
  c.services = static_cast<Services>(Service::kSmtp);
  c.has_private_key = true;
  c.is_self_signed = true;
  c.not_before = SysTime{} + hours(100000 - hours_old);
  c.not_after = c.not_before + hours(24 * 365);
  c.subject = c.issuer = "CN=" + c.domains.front();
  return c;
}

SelectionInput for_name(std::string_view name) { return {name, "", SysTime{} + hours(100000)}; }

std::vector<std::string> served(const Selection& s) {
  std::vector<std::string> out;
  for (const auto& c : s.by_key_type) out.push_back(c.certificate.key_algorithm + " " + c.certificate.thumbprint);
  return out;
}

TEST(SelectionPerKeyType, RsaOnlyServesRsaAlone) {
  std::vector<Certificate> certs{typed("R1", "RSA", {"mail.contoso.test"}, 50),
                                 typed("R2", "RSA", {"mail.contoso.test"}, 5)};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(s), std::vector<std::string>{"RSA R2"});
  EXPECT_EQ(s.chosen->thumbprint, "R2");
  EXPECT_EQ(served_of_type(s, "ECDSA"), nullptr);
}

TEST(SelectionPerKeyType, EcdsaOnlyServesEcdsaAloneAsThePrimary) {
  std::vector<Certificate> certs{typed("E1", "ECDSA", {"mail.contoso.test"})};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(s), std::vector<std::string>{"ECDSA E1"});
  ASSERT_TRUE(s.chosen);
  EXPECT_EQ(s.chosen->thumbprint, "E1");
}

TEST(SelectionPerKeyType, BothTypesAreServedEachRankedWithinItsTypeTheBestOverallFirst) {
  // The newest certificate overall is an ECDSA one: it is the primary (what a send connector
  // presents), as it would be without the RSA ones; the best RSA one is served beside it.
  std::vector<Certificate> certs{typed("E-OLD", "ECDSA", {"mail.contoso.test"}, 40),
                                 typed("R-OLD", "RSA", {"mail.contoso.test"}, 30),
                                 typed("E-NEW", "ECDSA", {"mail.contoso.test"}, 1),
                                 typed("R-NEW", "RSA", {"mail.contoso.test"}, 20)};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(s), (std::vector<std::string>{"ECDSA E-NEW", "RSA R-NEW"}));
  EXPECT_EQ(s.chosen->thumbprint, "E-NEW");
  ASSERT_GE(s.ranking.size(), 2u);
  EXPECT_EQ(s.ranking[0].thumbprint, "E-NEW");
  EXPECT_EQ(s.ranking[1].thumbprint, "R-NEW");
  EXPECT_EQ(s.ranking.size(), 4u);
  EXPECT_EQ(select_per_key_type(certs, "mail.contoso.test").size(), 2u);
}

TEST(SelectionPerKeyType, BetweenEqualsTheRsaOneIsThePrimary) {
  // As `setup --ecdsa` makes them: same names, same dates, both self-signed.
  std::vector<Certificate> certs{typed("E", "ECDSA", {"mail.contoso.test"}, 5),
                                 typed("R", "RSA", {"mail.contoso.test"}, 5)};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(s), (std::vector<std::string>{"RSA R", "ECDSA E"}));
  EXPECT_EQ(s.chosen->thumbprint, "R");
}

TEST(SelectionPerKeyType, AnExpiredRsaCertificateNeverOutranksAValidEcdsaOne) {
  std::vector<Certificate> certs{typed("R", "RSA", {"mail.contoso.test"}, 1), typed("E", "ECDSA", {"mail.contoso.test"}, 30)};
  SelectionInput in = for_name("mail.contoso.test");
  certs[0].not_after = in.now - hours(1);  // R, the newer, expired an hour ago; E is valid
  auto s = select_certificate(certs, in);
  EXPECT_EQ(s.chosen->thumbprint, "E");
  EXPECT_FALSE(s.expired);
  EXPECT_EQ(served(s), (std::vector<std::string>{"ECDSA E", "RSA R"}));
}

TEST(SelectionPerKeyType, ExactBeforeWildcardWithinEachTypeOnly) {
  // An exact RSA name does not hide the only ECDSA certificate, a wildcard.
  std::vector<Certificate> certs{typed("R", "RSA", {"mail.contoso.test"}), typed("EW", "ECDSA", {"*.contoso.test"}),
                                 typed("RW", "RSA", {"*.contoso.test"}, 1)};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(s), (std::vector<std::string>{"RSA R", "ECDSA EW"}));
}

TEST(SelectionPerKeyType, APinServesItsOneCertificate) {
  auto pinned = typed("PIN", "ECDSA", {"other.test"});
  pinned.issuer = "CN=Contoso CA";
  std::vector<Certificate> certs{typed("R", "RSA", {"mail.contoso.test"}), pinned,
                                 typed("E", "ECDSA", {"mail.contoso.test"})};
  SelectionInput in = for_name("mail.contoso.test");
  in.tls_certificate_name = "<I>CN=Contoso CA<S>CN=other.test";
  auto s = select_certificate(certs, in);
  EXPECT_EQ(served(s), std::vector<std::string>{"ECDSA PIN"});
  EXPECT_EQ(s.chosen->thumbprint, "PIN");
}

TEST(SelectionPerKeyType, EachServedCertificateHasItsOwnExpiry) {
  auto rsa = typed("R", "RSA", {"mail.contoso.test"});
  auto ecdsa = typed("E", "ECDSA", {"mail.contoso.test"});
  ecdsa.not_after = SysTime{} + hours(100000 + 48);
  std::vector<Certificate> certs{rsa, ecdsa};
  auto s = select_certificate(certs, for_name("mail.contoso.test"));
  ASSERT_EQ(s.by_key_type.size(), 2u);
  EXPECT_FALSE(s.expires_soon) << "the primary (RSA) is fine";
  EXPECT_FALSE(s.by_key_type[0].expires_soon);
  const ServedCertificate* e = served_of_type(s, "ECDSA");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->expires_soon);
  EXPECT_EQ(e->hours_remaining, 48);

  // An expired ECDSA certificate is still served beside the RSA one, flagged.
  certs[1].not_after = SysTime{} + hours(100000 - 1);
  auto x = select_certificate(certs, for_name("mail.contoso.test"));
  EXPECT_EQ(served(x), (std::vector<std::string>{"RSA R", "ECDSA E"}));
  EXPECT_TRUE(served_of_type(x, "ECDSA")->expired);
  EXPECT_FALSE(x.expired);
}

TEST(SelectionPerKeyType, KeyTypeOrderIsRsaEcdsaThenOthers) {
  EXPECT_TRUE(key_type_before("RSA", "ECDSA"));
  EXPECT_TRUE(key_type_before("ECDSA", "ED25519"));
  EXPECT_FALSE(key_type_before("ECDSA", "RSA"));
  EXPECT_FALSE(key_type_before("RSA", "RSA"));
}

}  // namespace
}  // namespace starling::core
