#include "smtp/base64.hpp"

#include <gtest/gtest.h>

namespace starling::smtp {
namespace {

TEST(Base64, RoundTripsRfc4648Vectors) {
  // RFC 4648 §10.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(plain)) << encoded;
  }
  EXPECT_EQ(base64_decode("AGFsaWNlAHNlY3JldA=="), std::string("\0alice\0secret", 13));
}

TEST(Base64, RefusesWhatIsNotCanonical) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v\r\n", "Zm 9v", "Zh==", "Zm9=", "=Zm9",
                          "Zm=v", "Zm9v*AAA", "Zg==Zg=="}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace starling::smtp
