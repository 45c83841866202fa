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
