#include "mgmt/password.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace starling::mgmt {
namespace {

TEST(Password, HashIsArgon2idSaltedAndVerifies) {
  auto h = hash_password("correct horse");
  ASSERT_TRUE(h) << h.error();
  EXPECT_TRUE(h->starts_with("$argon2id$")) << *h;
  EXPECT_EQ(h->find("correct horse"), std::string::npos);
  auto again = hash_password("correct horse");
  ASSERT_TRUE(again);
  EXPECT_NE(*h, *again) << "a fresh salt every time";
  EXPECT_TRUE(verify_password(*h, "correct horse"));
  EXPECT_TRUE(verify_password(*again, "correct horse"));
  EXPECT_FALSE(verify_password(*h, "correct horse "));
  EXPECT_FALSE(verify_password(*h, ""));
  EXPECT_FALSE(verify_password("", "correct horse")) << "no hash: no login";
  EXPECT_FALSE(verify_password("$argon2id$garbage", "correct horse"));
  EXPECT_FALSE(verify_password(std::string(200, 'x'), "correct horse"));
}

TEST(Password, VerifiesFromManyThreadsAtOnce) {
  auto h = hash_password("s3cret");
  ASSERT_TRUE(h);
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      if (verify_password(*h, "s3cret")) ++right;
      if (!verify_password(*h, "s3cret" + std::to_string(i))) ++wrong;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right, 4);
  EXPECT_EQ(wrong, 4);
}

}  // namespace
}  // namespace starling::mgmt
