#include "delivery/maildir.hpp"

#include <gtest/gtest.h>

#include "testing/temp_dir.hpp"

#include <algorithm>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

namespace starling::delivery {
namespace {

using testing::TempDir;

std::vector<std::string> read_dir(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

TEST(Maildir, MailboxNamesAreSafe) {
  EXPECT_EQ(mailbox_name("Bob"), "bob");
  EXPECT_EQ(mailbox_name("../etc"), "%2E.%2Fetc");
  EXPECT_EQ(mailbox_name("\"a b\""), "%22a%20b%22");
  EXPECT_EQ(mailbox_name("100%"), "100%25");
}

TEST(Maildir, UnixLineEndings) { EXPECT_EQ(to_unix_lines("a\r\nb\r\n\r\nc"), "a\nb\n\nc"); }

// The spool removes a delivered message in its next group commit, after the observer has
// heard: the file goes a moment later (checking at once made these tests flaky under load).
bool removed_soon(const std::filesystem::path& file) {
  for (int i = 0; i < 500 && std::filesystem::exists(file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !std::filesystem::exists(file);
}

// Delivers `m` through a spool in `dir` and waits for the observer's verdict.
struct Rig {
  TempDir dir;
  std::unique_ptr<queue::Spool> spool = std::move(*queue::Spool::open(dir.path / "queue"));
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<bool> verdicts;

  queue::QueuedMessage enqueue(std::vector<std::string> rcpts) {
    std::promise<std::string> id;
    spool->enqueue(spool->new_id(), {"a@b.example", rcpts}, "Received: x\r\n", "Hi\r\n",
                   [&](Result<std::string> r) { id.set_value(*r); });
    return {id.get_future().get(), {"a@b.example", rcpts}, "Received: x\r\nHi\r\n"};
  }
  void observe(MaildirDelivery& d) {
    d.set_observer([this](const queue::QueuedMessage&, const Result<void>& r) {
      std::lock_guard lock(mutex);
      verdicts.push_back(r.ok());
      cv.notify_all();
    });
  }
  void wait_for(size_t n) {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return verdicts.size() >= n; }));
  }
};

size_t open_descriptors() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) n += !e.path().empty();
  return n;
}

TEST(Maildir, ManyMailboxesCostBoundedDescriptorsAndEachGetsItsCopy) {
  Rig rig;
  constexpr int kMailboxes = 600;  // more than the mailboxes kept open
  std::vector<std::string> rcpts;
  for (int i = 0; i < kMailboxes; ++i) rcpts.push_back("u" + std::to_string(i) + "@example.test");
  size_t before = open_descriptors();
  MaildirDelivery d(rig.dir.path / "mailboxes", *rig.spool);
  rig.observe(d);
  d.submit(rig.enqueue(rcpts));
  d.submit(rig.enqueue({"u0@example.test", "u599@example.test"}));  // found open, or opened again
  rig.wait_for(2);
  EXPECT_TRUE(rig.verdicts[0] && rig.verdicts[1]);
  EXPECT_LE(open_descriptors(), before + 2 * 256 + 16) << "a descriptor per mailbox delivered to";
  for (int i : {0, 1, 300, 598, 599}) {
    auto copies = read_dir(rig.dir.path / ("mailboxes/example.test/u" + std::to_string(i)) / "new");
    EXPECT_EQ(copies.size(), i == 0 || i == 599 ? 2u : 1u) << i;
    EXPECT_TRUE(std::filesystem::is_empty(rig.dir.path / ("mailboxes/example.test/u" + std::to_string(i)) / "tmp"));
  }
}

// The kept descriptors must not outlive the directories: a mailbox moved away by hand gets the
// next copy in a new mailbox at its path, not in the moved one.
TEST(Maildir, AMailboxMovedAwayIsMadeAgainNotFollowed) {
  Rig rig;
  MaildirDelivery d(rig.dir.path / "mailboxes", *rig.spool);
  rig.observe(d);
  d.submit(rig.enqueue({"bob@example.test"}));
  rig.wait_for(1);
  ASSERT_TRUE(rig.verdicts[0]);
  auto box = rig.dir.path / "mailboxes/example.test/bob";
  std::filesystem::rename(box, rig.dir.path / "mailboxes/example.test/bob.archived");
  d.submit(rig.enqueue({"bob@example.test"}));
  rig.wait_for(2);
  EXPECT_TRUE(rig.verdicts[1]);
  EXPECT_EQ(read_dir(box / "new").size(), 1u);
  EXPECT_EQ(read_dir(rig.dir.path / "mailboxes/example.test/bob.archived/new").size(), 1u);
}

TEST(Maildir, DeliversEachRecipientThenLeavesTheQueue) {
  Rig rig;
  MaildirDelivery d(rig.dir.path / "mailboxes", *rig.spool);
  rig.observe(d);
  auto m = rig.enqueue({"Bob@Example.TEST", "carol@example.test"});
  d.submit(m);
  rig.wait_for(1);
  EXPECT_TRUE(rig.verdicts[0]);
  EXPECT_EQ(read_dir(rig.dir.path / "mailboxes/example.test/bob/new"),
            std::vector<std::string>{"Return-Path: <a@b.example>\nDelivered-To: Bob@Example.TEST\n"
                                     "Received: x\nHi\n"});
  EXPECT_EQ(read_dir(rig.dir.path / "mailboxes/example.test/carol/new").size(), 1u);
  EXPECT_TRUE(read_dir(rig.dir.path / "mailboxes/example.test/bob/tmp").empty());
  EXPECT_TRUE(removed_soon(rig.dir.path / "queue" / m.id));
}

TEST(Maildir, DeliveryHeadersDropLineBreaks) {
  EXPECT_EQ(delivery_headers("", "bob@example.test"), "Return-Path: <>\nDelivered-To: bob@example.test\n");
  EXPECT_EQ(delivery_headers("a@b\r\nX-Evil: 1", "c@d\nBcc: e"),
            "Return-Path: <a@bX-Evil: 1>\nDelivered-To: c@dBcc: e\n");
}

// The dispatcher names the Maildir by the mailbox's primary address: an alias and a case
// variant of it land in the same Maildir, each copy with its own Delivered-To.
TEST(Maildir, CopiesGoToTheMailboxGivenEachWithItsDeliveredTo) {
  Rig rig;
  MaildirDelivery d(rig.dir.path / "mailboxes", *rig.spool);
  rig.observe(d);
  auto m = rig.enqueue({"AL@example.test", "Alice@Example.Test", "bob@example.test"});
  d.submit(m, {{"alice@example.test", "AL@example.test"},
               {"alice@example.test", "Alice@Example.Test"},
               {"robert@example.test", "bob@example.test"}});
  rig.wait_for(1);
  EXPECT_TRUE(rig.verdicts[0]);
  auto alice = read_dir(rig.dir.path / "mailboxes/example.test/alice/new");
  std::sort(alice.begin(), alice.end());
  EXPECT_EQ(alice, (std::vector<std::string>{
                       "Return-Path: <a@b.example>\nDelivered-To: AL@example.test\nReceived: x\nHi\n",
                       "Return-Path: <a@b.example>\nDelivered-To: Alice@Example.Test\nReceived: x\nHi\n"}));
  EXPECT_EQ(read_dir(rig.dir.path / "mailboxes/example.test/robert/new"),
            std::vector<std::string>{"Return-Path: <a@b.example>\nDelivered-To: bob@example.test\nReceived: x\nHi\n"});
  EXPECT_FALSE(std::filesystem::exists(rig.dir.path / "mailboxes/example.test/al"));
  EXPECT_FALSE(std::filesystem::exists(rig.dir.path / "mailboxes/example.test/bob"));
}

TEST(Maildir, FailedFlushKeepsTheMessageQueuedAndRetries) {
  Rig rig;
  int calls = 0;
  DeliveryIo io;
  io.sync = [&](int fd) {
    if (++calls == 1) {
      errno = EIO;
      return -1;
    }
    return ::syncfs(fd);
  };
  MaildirDelivery d(rig.dir.path / "mailboxes", *rig.spool, io);
  d.first_retry = std::chrono::seconds(0);
  rig.observe(d);
  auto m = rig.enqueue({"bob@example.test"});
  d.submit(m);
  rig.wait_for(2);
  EXPECT_FALSE(rig.verdicts[0]);
  EXPECT_TRUE(rig.verdicts[1]);
  EXPECT_EQ(read_dir(rig.dir.path / "mailboxes/example.test/bob/new").size(), 1u)
      << "the failed attempt left a copy behind";
  EXPECT_TRUE(removed_soon(rig.dir.path / "queue" / m.id));
}

}  // namespace
}  // namespace starling::delivery
