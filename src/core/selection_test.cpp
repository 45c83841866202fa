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
