#include "core/names.hpp"

#include <gtest/gtest.h>

namespace starling::core {

TEST(Names, ExactMatchIgnoresCaseAndTrailingDot) {
  EXPECT_TRUE(name_matches("Mail.Contoso.com", "mail.contoso.COM."));
  EXPECT_FALSE(name_matches("mail.contoso.com", "mail2.contoso.com"));
}

TEST(Names, WildcardCoversExactlyOneLabel) {
  EXPECT_TRUE(name_matches("*.contoso.com", "mail.contoso.com"));
  EXPECT_FALSE(name_matches("*.contoso.com", "a.b.contoso.com"));
  EXPECT_FALSE(name_matches("*.contoso.com", "contoso.com"));
  EXPECT_FALSE(name_matches("*.contoso.com", ".contoso.com"));
}

TEST(Names, HostnameValidation) {
  EXPECT_TRUE(is_valid_hostname("mail.contoso.com"));
  EXPECT_TRUE(is_valid_hostname("localhost"));
  EXPECT_FALSE(is_valid_hostname(""));
  EXPECT_FALSE(is_valid_hostname("-bad.example"));
  EXPECT_FALSE(is_valid_hostname("a..b"));
  EXPECT_FALSE(is_valid_hostname("under_score.example"));
  EXPECT_FALSE(is_valid_hostname(std::string(64, 'a') + ".example"));
}

}  // namespace starling::core
