#include "queue/spool.hpp"

#include <gtest/gtest.h>

#include "testing/temp_dir.hpp"

#include <atomic>
#include <fstream>
#include <future>

namespace starling::queue {
namespace {

using testing::TempDir;

Result<std::string> enqueue_and_wait(Spool& s, std::string content) {
  std::promise<Result<std::string>> done;
  auto fut = done.get_future();
  s.enqueue(s.new_id(), {"a@b.example", {"x@example.test", "y@example.test"}}, "Received: x\r\n",
            std::move(content), [&](Result<std::string> r) { done.set_value(std::move(r)); });
  return fut.get();
}

size_t files_in(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(Spool, EnqueuedMessagesSurviveAReopen) {
  TempDir dir;
  std::string id;
  {
    auto s = Spool::open(dir.path);
    ASSERT_TRUE(s);
    auto r = enqueue_and_wait(**s, "Subject: hi\r\n\r\nbody\r\n");
    ASSERT_TRUE(r) << r.error();
    id = *r;
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->messages.size(), 1u);
  const QueuedMessage& m = rec->messages[0];
  EXPECT_EQ(m.id, id);
  EXPECT_EQ(m.envelope.mail_from, "a@b.example");
  EXPECT_EQ(m.envelope.recipients, (std::vector<std::string>{"x@example.test", "y@example.test"}));
  EXPECT_EQ(m.data, "Received: x\r\nSubject: hi\r\n\r\nbody\r\n");
}

TEST(Spool, ConcurrentEnqueuesShareFlushes) {
  TempDir dir;
  std::atomic<int> syncs{0};
  SpoolIo io;
  io.sync = [&](int fd) {
    ++syncs;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a slow disk
    return ::syncfs(fd);
  };
  auto s = Spool::open(dir.path, io);
  constexpr int kMessages = 64;
  std::vector<std::promise<bool>> done(kMessages);
  for (int i = 0; i < kMessages; ++i) {
    (*s)->enqueue((*s)->new_id(), {"", {"x@example.test"}}, "", "m\r\n",
                  [&, i](Result<std::string> r) { done[i].set_value(r.ok()); });
  }
  for (auto& d : done) EXPECT_TRUE(d.get_future().get());
  EXPECT_LT(syncs.load(), kMessages / 2) << "each message was flushed on its own";
  EXPECT_EQ(files_in(dir.path), size_t{kMessages});
}

TEST(Spool, ShortWritesStillWriteTheWholeFile) {
  TempDir dir;
  SpoolIo io;
  io.writev = [](int fd, const iovec* iov, int) { return ::write(fd, iov[0].iov_base, std::min<size_t>(iov[0].iov_len, 7)); };
  auto s = Spool::open(dir.path, io);
  std::string body(10000, 'z');
  ASSERT_TRUE(enqueue_and_wait(**s, body));
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->messages[0].data, "Received: x\r\n" + body);
}

TEST(Spool, DiskFullFailsAndLeavesNothingBehind) {
  TempDir dir;
  SpoolIo io;
  int calls = 0;
  io.writev = [&](int fd, const iovec* iov, int) -> ssize_t {
    if (++calls == 2) {
      errno = ENOSPC;
      return -1;
    }
    return ::write(fd, iov[0].iov_base, iov[0].iov_len) ;
  };
  auto s = Spool::open(dir.path, io);
  auto r = enqueue_and_wait(**s, "body\r\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("No space left on device"), std::string::npos) << r.error();
  EXPECT_EQ(files_in(dir.path), 0u);
}

TEST(Spool, FailedFlushFailsTheWholeBatch) {
  TempDir dir;
  SpoolIo io;
  io.sync = [](int) {
    errno = EIO;
    return -1;
  };
  auto s = Spool::open(dir.path, io);
  auto r = enqueue_and_wait(**s, "body\r\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot flush"), std::string::npos);
  EXPECT_EQ(files_in(dir.path), 0u);
}

TEST(Spool, RecoveryPutsIncompleteFilesAside) {
  TempDir dir;
  {
    std::ofstream(dir.path / "0000000000001000") << "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize 100\n\npartial";
    std::ofstream(dir.path / "0000000000002000") << "garbage";
  }
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(enqueue_and_wait(**s, "ok\r\n"));
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->discarded.size(), 1u);
  EXPECT_EQ(rec->corrupt.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path / "incomplete" / "0000000000001000"));
  EXPECT_TRUE(std::filesystem::exists(dir.path / "corrupt" / "0000000000002000"));
}

// Regression: one bad number in a queue file made starlingd exit at start (fatal: stoull).
TEST(Spool, BadNumbersInAHeaderAreDamageNotAnException) {
  TempDir dir;
  {
    std::ofstream(dir.path / "0000000000001000") << "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize 99999999999999999999999\ncrc32 0\n\nx\nEND\n";
    std::ofstream(dir.path / "0000000000002000") << "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize 1\ncrc32 zz\n\nx\nEND\n";
    std::ofstream(dir.path / "0000000000003000") << "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize -5\ncrc32 0\n\nx\nEND\n";
  }
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(enqueue_and_wait(**s, "ok\r\n"));
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->corrupt.size(), 3u);
}

void update_and_wait(Spool& s, StateUpdate u) {
  std::promise<bool> done;
  s.update(std::move(u), [&](Result<void> r) { done.set_value(r.ok()); });
  EXPECT_TRUE(done.get_future().get());
}

RecipientState state(RecipientState::Status status, uint32_t attempts, int64_t next, std::string reply) {
  RecipientState st;
  st.status = status;
  st.attempts = attempts;
  st.next_attempt = next;
  st.last_reply = std::move(reply);
  return st;
}

TEST(Spool, DeliveryStateSurvivesAReopenAndTheLatestLineWins) {
  TempDir dir;
  std::string id;
  {
    auto s = Spool::open(dir.path);
    auto r = enqueue_and_wait(**s, "Subject: hi\r\n\r\nbody\r\n");
    ASSERT_TRUE(r);
    id = *r;
    using S = RecipientState::Status;
    update_and_wait(**s, {id, {{0, state(S::kPending, 1, 1700000000, "451 4.3.0 try later")}}});
    update_and_wait(**s, {id, {{0, state(S::kDelivered, 2, 0, "250 ok\r\ninjected line")},
                               {1, state(S::kFailed, 1, 0, "550 5.1.1 no such user")}}, true});
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  const QueuedMessage& m = rec->messages[0];
  ASSERT_EQ(m.state.size(), 2u);
  EXPECT_EQ(m.state[0].status, RecipientState::Status::kDelivered);
  EXPECT_EQ(m.state[0].attempts, 2u);
  EXPECT_EQ(m.state[0].last_reply, "250 ok  injected line");
  EXPECT_EQ(m.state[1].status, RecipientState::Status::kFailed);
  EXPECT_EQ(m.state[1].last_reply, "550 5.1.1 no such user");
  EXPECT_TRUE(m.delay_notified);
  EXPECT_EQ(m.data, "Received: x\r\nSubject: hi\r\n\r\nbody\r\n");
  EXPECT_GT(m.arrival, 1700000000);
}

TEST(Spool, ATornOrDamagedStateLineEndsTheStateButKeepsTheMessage) {
  TempDir dir;
  std::string id;
  {
    auto s = Spool::open(dir.path);
    id = *enqueue_and_wait(**s, "body\r\n");
    update_and_wait(**s, {id, {{0, state(RecipientState::Status::kDelivered, 1, 0, "250 ok")}}});
  }
  std::string good;
  {
    std::ifstream in(dir.path / id, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (std::string tail : {std::string("S 00000000 r F 1 1 0 x\n"), std::string("S 1234"), std::string("\x01\x02garbage")}) {
    std::ofstream(dir.path / id, std::ios::binary | std::ios::trunc) << good << tail;
    auto s = Spool::open(dir.path);
    auto rec = (*s)->recover();
    ASSERT_EQ(rec->messages.size(), 1u) << tail;
    EXPECT_EQ(rec->messages[0].state[0].status, RecipientState::Status::kDelivered) << tail;
    EXPECT_EQ(rec->messages[0].state[1].status, RecipientState::Status::kPending) << tail;
  }
}

TEST(Spool, RemovedMessagesDoNotComeBackAndRecycledFilesCarryNoOldState) {
  TempDir dir;
  auto s = Spool::open(dir.path);
  std::string first = *enqueue_and_wait(**s, "one\r\n");
  update_and_wait(**s, {first, {{1, state(RecipientState::Status::kFailed, 1, 0, "550 no")}}});
  (*s)->remove(first);
  std::string second = *enqueue_and_wait(**s, "two\r\n");  // flushed after the removal
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->messages[0].id, second);
  EXPECT_EQ(rec->messages[0].state[1].status, RecipientState::Status::kPending);
  EXPECT_TRUE(rec->corrupt.empty());
}

TEST(Spool, AnUpdateForAGoneMessageIsNotAnError) {
  TempDir dir;
  auto s = Spool::open(dir.path);
  update_and_wait(**s, {"0000000000001000", {{0, state(RecipientState::Status::kDelivered, 1, 0, "")}}});
}

TEST(Spool, IdsAreUniqueAndOrdered) {
  TempDir dir;
  auto s = Spool::open(dir.path);
  std::string prev;
  for (int i = 0; i < 1000; ++i) {
    std::string id = (*s)->new_id();
    EXPECT_GT(id, prev);
    prev = id;
  }
}

}  // namespace
}  // namespace starling::queue
