#include "queue/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "queue/queue_file.hpp"
#include "testing/temp_dir.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <fstream>
#include <future>
#include <optional>

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
  // Recovery leaves the content on disk; an attempt reads it back.
  EXPECT_TRUE(m.data.empty());
  EXPECT_EQ(*(*s)->load(m), "Received: x\r\nSubject: hi\r\n\r\nbody\r\n");
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

// A flush that waits until the test lets it go, to see what the writer does meanwhile.
struct HeldFlush {
  std::mutex mutex;
  std::condition_variable changed;
  int calls = 0;
  bool released = false;
  int fail_first_with = 0;  // errno for the first flush, 0 for none
  int sync(int fd) {
    std::unique_lock lock(mutex);
    int call = ++calls;
    changed.notify_all();
    if (call == 1) changed.wait(lock, [&] { return released; });
    if (call == 1 && fail_first_with != 0) {
      errno = fail_first_with;
      return -1;
    }
    return ::syncfs(fd);
  }
  void wait_for_call() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return calls > 0; });
  }
  void release() {
    std::lock_guard lock(mutex);
    released = true;
    changed.notify_all();
  }
};

bool appears(const std::filesystem::path& file) {
  for (int i = 0; i < 2000 && !std::filesystem::exists(file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::filesystem::exists(file);
}

std::future<Result<std::string>> enqueue_async(Spool& s, const std::string& id) {
  auto done = std::make_shared<std::promise<Result<std::string>>>();
  s.enqueue(id, {"a@b.example", {"x@example.test"}}, "Received: x\r\n", "body\r\n",
            [done](Result<std::string> r) { done->set_value(std::move(r)); });
  return done->get_future();
}

// A spool whose first flush is held: `first` waits in it, `second` is enqueued meanwhile.
struct HeldFlushRig {
  TempDir dir;
  HeldFlush flush;
  std::unique_ptr<Spool> spool;
  std::future<Result<std::string>> first, second;
  std::string second_id;
  explicit HeldFlushRig(int fail_first_with) {
    flush.fail_first_with = fail_first_with;
    SpoolIo io;
    io.sync = [this](int fd) { return flush.sync(fd); };
    spool = std::move(*Spool::open(dir.path, io));
    first = enqueue_async(*spool, spool->new_id());
    flush.wait_for_call();
    second_id = spool->new_id();
    second = enqueue_async(*spool, second_id);
  }
  ~HeldFlushRig() { flush.release(); }  // before the spool stops, even when a test ends early
};

TEST(Spool, TheNextBatchIsWrittenWhileAFlushRuns) {
  HeldFlushRig rig(0);
  // The first flush is still held: the second message's file is written all the same.
  EXPECT_TRUE(appears(rig.dir.path / rig.second_id)) << "the writer waited for the flush in progress";
  EXPECT_EQ(rig.second.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "answered before its own flush";
  rig.flush.release();
  EXPECT_TRUE(rig.first.get());
  EXPECT_TRUE(rig.second.get());
}

TEST(Spool, ABatchWrittenDuringAFailedFlushFailsToo) {
  HeldFlushRig rig(EIO);
  ASSERT_TRUE(appears(rig.dir.path / rig.second_id));
  rig.flush.release();  // fails: the second file's pages may have been among those lost
  EXPECT_FALSE(rig.first.get());
  auto r = rig.second.get();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("a flush failed while this batch was written"), std::string::npos) << r.error();
  EXPECT_TRUE(enqueue_and_wait(*rig.spool, "later\r\n")) << "a batch begun after the failure is flushed as usual";
  EXPECT_EQ(files_in(rig.dir.path), 1u);
}

TEST(Spool, AReservedFileIsReplacedWholeAndReadWithinItsBound) {
  TempDir dir;
  auto s = Spool::open(dir.path);
  EXPECT_EQ(*(*s)->read_file(kSuspendedQueuesFile, 100), "") << "no file yet reads as empty";
  ASSERT_TRUE((*s)->replace_file(kSuspendedQueuesFile, "a\nb\n"));
  ASSERT_TRUE((*s)->replace_file(kSuspendedQueuesFile, "c\n"));
  EXPECT_EQ(*(*s)->read_file(kSuspendedQueuesFile, 100), "c\n");
  EXPECT_EQ(*(*s)->read_file(kSuspendedQueuesFile, 1), "c");
  EXPECT_FALSE(std::filesystem::exists(dir.path / (std::string(kSuspendedQueuesFile) + ".new")));
  EXPECT_FALSE((*s)->replace_file("0000000000001000", "x")) << "only the reserved names";
  EXPECT_FALSE((*s)->read_file("../elsewhere", 10));
  // Neither it nor a replacement left half-written by a crash is a message.
  std::ofstream(dir.path / "clean.new") << "";
  auto rec = (*s)->recover();
  EXPECT_TRUE(rec->messages.empty());
  EXPECT_TRUE(rec->corrupt.empty());
  EXPECT_TRUE(rec->discarded.empty());
}

TEST(Spool, AReservedFileThatIsALinkIsNeverRead) {
  TempDir dir, outside;
  std::ofstream(outside.path / "secret") << "queue-a\n";
  std::filesystem::create_directories(dir.path);
  std::filesystem::create_symlink(outside.path / "secret", dir.path / kSuspendedQueuesFile);
  auto s = Spool::open(dir.path);
  EXPECT_FALSE((*s)->read_file(kSuspendedQueuesFile, 100));
  ASSERT_TRUE((*s)->replace_file(kSuspendedQueuesFile, "b\n")) << "the link itself is replaced";
  EXPECT_EQ(*(*s)->read_file(kSuspendedQueuesFile, 100), "b\n");
  std::ifstream in(outside.path / "secret");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "queue-a\n");
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
  EXPECT_EQ(*(*s)->load(rec->messages[0]), "Received: x\r\n" + body);
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
  EXPECT_EQ(*(*s)->load(m), "Received: x\r\nSubject: hi\r\n\r\nbody\r\n");
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

// -- The queue directory is not trusted (symbolic links, FIFOs, planted and damaged files).

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// A queue file as the writer makes it (right CRC-32), from raw header values: what a planted
// file with a valid checksum looks like.
std::string queue_file(std::string_view from, const std::vector<std::string>& rcpts, std::string_view content,
                       std::optional<std::string> size_text = std::nullopt) {
  Envelope e{std::string(from), rcpts};
  std::string fields = header_fields(e, content.size());
  if (size_text) fields = fields.substr(0, fields.rfind("size ")) + "size " + *size_text + "\n";
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32 %08X\n\n",
                crc_combine(crc_update(0, fields), crc_update(0, content), content.size()));
  return "STARLING-QUEUE 1\n" + fields + crc + std::string(content) + "\nEND\n";
}

// Regression: a symbolic link planted in queue/ was followed at recovery, and state lines were
// then appended, as root, to the file it pointed to.
TEST(Spool, ASymlinkInTheQueueIsNeverFollowed) {
  TempDir outside, dir;
  const std::string target_bytes = queue_file("a@b.example", {"x@y.example"}, "Subject: planted\r\n\r\nx\r\n");
  write_file(outside.path / "victim", target_bytes);
  std::filesystem::create_symlink(outside.path / "victim", dir.path / "0000000000005000");
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(s);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->messages.empty());
  ASSERT_EQ(rec->corrupt.size(), 1u);
  EXPECT_EQ(rec->corrupt[0], "0000000000005000: not a regular file");
  // The link itself went aside, not what it points to.
  EXPECT_TRUE(std::filesystem::is_symlink(dir.path / "corrupt" / "0000000000005000"));
  // An update for that id (a state line) does not write through a link either.
  std::filesystem::create_symlink(outside.path / "victim", dir.path / "0000000000006000");
  std::promise<bool> done;
  (*s)->update({"0000000000006000", {{0, RecipientState{RecipientState::Status::kDelivered, 1, 0, "250"}}}},
               [&](Result<void> r) { done.set_value(r.ok()); });
  EXPECT_FALSE(done.get_future().get());
  EXPECT_EQ(read_all(outside.path / "victim"), target_bytes);
}

// Regression: a symbolic link in queue/free/ was rewritten with the next message.
TEST(Spool, ASymlinkInTheFreeListIsNeverRecycled) {
  TempDir outside, dir;
  const std::string precious = "root:x:0:0:root:/root:/bin/bash\n";
  write_file(outside.path / "victim", precious);
  std::filesystem::create_directories(dir.path / "free");
  std::filesystem::create_symlink(outside.path / "victim", dir.path / "free" / "0000000000001000");
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(s);
  ASSERT_TRUE(enqueue_and_wait(**s, "one\r\n"));
  // Planted after start-up: a recycled file swapped for a link between removal and reuse.
  std::string second = *enqueue_and_wait(**s, "two\r\n");
  (*s)->remove(second);
  std::filesystem::path recycled = dir.path / "free" / second;
  for (int i = 0; i < 1000 && !std::filesystem::exists(recycled); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(std::filesystem::exists(recycled));
  std::filesystem::remove(recycled);
  std::filesystem::create_symlink(outside.path / "victim", recycled);
  ASSERT_TRUE(enqueue_and_wait(**s, "three\r\n"));
  ASSERT_TRUE(enqueue_and_wait(**s, "four\r\n"));
  EXPECT_EQ(read_all(outside.path / "victim"), precious);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->messages.size(), 3u);  // one, three, four
  EXPECT_TRUE(rec->corrupt.empty());
}

TEST(Spool, TheQueueDirectoryAndFreeMustNotBeLinks) {
  TempDir outside, dir;
  std::filesystem::create_directories(dir.path / "real");
  std::filesystem::create_symlink(dir.path / "real", dir.path / "queue");
  EXPECT_FALSE(Spool::open(dir.path / "queue"));
  std::filesystem::create_directories(dir.path / "q2");
  std::filesystem::create_symlink(outside.path, dir.path / "q2" / "free");
  auto s = Spool::open(dir.path / "q2");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("free"), std::string::npos) << s.error();
}

TEST(Spool, AFifoADirectoryOrAHardLinkInTheQueueIsSetAside) {
  TempDir outside, dir;
  ASSERT_EQ(::mkfifo((dir.path / "0000000000001000").c_str(), 0600), 0);  // an open would block
  std::filesystem::create_directories(dir.path / "0000000000002000");
  write_file(outside.path / "other", queue_file("a@b.example", {"x@y.example"}, "x\r\n"));
  ASSERT_EQ(::link((outside.path / "other").c_str(), (dir.path / "0000000000003000").c_str()), 0);
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(s);
  ASSERT_TRUE(enqueue_and_wait(**s, "ok\r\n"));
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->messages.size(), 1u);
  ASSERT_EQ(rec->corrupt.size(), 3u);
  EXPECT_EQ(rec->corrupt[0], "0000000000001000: not a regular file");
  EXPECT_EQ(rec->corrupt[1], "0000000000002000: not a regular file");
  EXPECT_EQ(rec->corrupt[2], "0000000000003000: not a regular file (more than one link)");
  EXPECT_TRUE(std::filesystem::is_fifo(dir.path / "corrupt" / "0000000000001000"));
  EXPECT_TRUE(std::filesystem::is_directory(dir.path / "corrupt" / "0000000000002000"));
}

long peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
  }
  return -1;
}

// Regression: recovery read a whole file into memory; a 1 GB sparse file cost 2 GB.
TEST(Spool, RecoveryStreamsA1GBSparseFileInBoundedMemory) {
  TempDir dir;
  constexpr uint64_t kSize = uint64_t{1} << 30;
  {
    // A header that claims 1 GiB (within what the queue writes), the rest a hole: read through,
    // checksummed, found damaged. And a file of nothing but a hole.
    std::string head = "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize " + std::to_string(kSize) + "\ncrc32 0\n\n";
    std::ofstream(dir.path / "0000000000001000", std::ios::binary) << head;
    std::fstream f(dir.path / "0000000000001000", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(head.size() + kSize));
    f << "\nEND\n";
    write_file(dir.path / "0000000000002000", "");
    ASSERT_EQ(::truncate((dir.path / "0000000000002000").c_str(), static_cast<off_t>(kSize)), 0);
  }
  auto s = Spool::open(dir.path);
  ASSERT_TRUE(s);
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";  // resets VmHWM to the current RSS (Linux 4.0)
  }
  long before = peak_rss_kib();
  auto rec = (*s)->recover();
  long grew = peak_rss_kib() - before;
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->corrupt.size(), 2u);
  EXPECT_EQ(rec->corrupt[0], "0000000000001000: checksum does not match");
  EXPECT_EQ(rec->corrupt[1], "0000000000002000: not a queue file");
  EXPECT_LT(grew, 16 * 1024) << "recovery's peak RSS grew by " << grew << " KiB";
}

// Regression: numbers in header and state lines were trusted (a bad one was fatal once).
TEST(Spool, MalformedNumbersInHeaderLinesAreDamage) {
  TempDir dir;
  int n = 0;
  for (std::string size : {"12abc", "+4", " 4", "0x4", "4 ", "", "18446744073709551616", "4294967296000"}) {
    write_file(dir.path / ("00000000000010" + std::to_string(10 + n++)),
               queue_file("a@b", {"x@y"}, "x\r\n", size));
  }
  for (std::string crc : {"zz", "123456789", "-1", "1 2"}) {
    write_file(dir.path / ("00000000000010" + std::to_string(10 + n++)),
               "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize 1\ncrc32 " + crc + "\n\nx\nEND\n");
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->messages.empty());
  EXPECT_EQ(rec->corrupt.size() + rec->discarded.size(), static_cast<size_t>(n));
  for (const auto& c : rec->corrupt) EXPECT_EQ(c.find("checksum"), std::string::npos) << c;
}

TEST(Spool, MalformedNumbersInStateLinesAreSkipped) {
  TempDir dir;
  std::string file = queue_file("a@b", {"x@y", "z@y"}, "x\r\n");
  auto line = [](std::string payload) {
    char head[16];
    std::snprintf(head, sizeof head, "S %08X ", static_cast<unsigned>(crc_update(0, payload)));
    return head + payload + "\n";
  };
  file += line("r D 0 1 0 250 ok");
  for (std::string bad : {"r F 0 x 0 550", "r F 0 1 1e5 550", "r F -1 1 0 550", "r F 2 1 0 550",
                          "r F 99999999999999999999 1 0 550", "r F 0 4294967296 0 550", "r X 0 1 0 550",
                          "r F 0 1 0 550 with\rCR"}) {
    file += line(bad);
  }
  file += line("r F 1 1 0 550 5.1.1 gone");
  write_file(dir.path / "0000000000001000", file);
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->messages[0].state[0].status, RecipientState::Status::kDelivered);
  EXPECT_EQ(rec->messages[0].state[1].status, RecipientState::Status::kFailed);
  EXPECT_EQ(rec->messages[0].state[1].last_reply, "550 5.1.1 gone");
}

// Regression: recipients read from a queue file were not checked again; one with a CR went into
// RCPT TO and Delivered-To.
TEST(Spool, RecipientsAndTheReversePathAreValidatedAgain) {
  TempDir dir;
  struct Case {
    std::string from;
    std::vector<std::string> rcpts;
  };
  std::vector<Case> bad = {
      {"a@b", {"x\r@y"}},
      {"a@b", {"x@y\rX-Injected: yes"}},
      {"a@b", {std::string("x\0z@y", 5)}},
      {"a@b", {"ok@y", "x@y\x1b[31m"}},
      {"a\r@b", {"x@y"}},
      {"a@b", {std::string(65, 'l') + "@y"}},
      {"a@b", {"x@" + std::string(256, 'd')}},
      {"a@b", {"x y@y"}},
      {"a@b", {"x@[1.2.3.4\r]"}},
      {"a@b", {"nobody"}},
      {"postmaster", {"x@y"}},
      {"a@b", {""}},
  };
  int n = 0;
  for (const Case& c : bad) {
    write_file(dir.path / ("00000000000010" + std::to_string(10 + n++)), queue_file(c.from, c.rcpts, "x\r\n"));
  }
  // What the receiving side accepts stays good.
  write_file(dir.path / "0000000000002000",
             queue_file("", {"\"a b\\\"c\"@y.example", "postmaster", "u@[IPv6:::1]", "\xc3\xa9@\xc3\xa9.example"},
                        "x\r\n"));
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->corrupt.size(), bad.size());
  for (const auto& c : rec->corrupt) EXPECT_NE(c.find("invalid"), std::string::npos) << c;
  ASSERT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->messages[0].envelope.recipients.size(), 4u);
  // The writer refuses what recovery would call damage: nothing acknowledged is lost later.
  std::promise<Result<std::string>> done;
  (*s)->enqueue((*s)->new_id(), {"a@b", {"x@y\rz"}}, "", "x\r\n", [&](Result<std::string> r) { done.set_value(r); });
  EXPECT_FALSE(done.get_future().get());
}

TEST(Spool, HeadersLongerOrLargerThanTheWriterWritesAreDamage) {
  TempDir dir;
  write_file(dir.path / "0000000000001000",
             "STARLING-QUEUE 1\nfrom a@b\nrcpt " + std::string(kMaxHeaderLine, 'x') + "@y\nsize 1\ncrc32 0\n\nx\nEND\n");
  write_file(dir.path / "0000000000002000",
             "STARLING-QUEUE 1\nfrom a@b\nrcpt x@y\nsize " + std::to_string(kMaxMessageSize + 1) + "\ncrc32 0\n\n");
  std::string many = "STARLING-QUEUE 1\nfrom a@b\n";
  for (size_t i = 0; i <= kMaxRecipients; ++i) many += "rcpt x@y\n";
  write_file(dir.path / "0000000000003000", many + "size 1\ncrc32 0\n\nx\nEND\n");
  write_file(dir.path / "0000000000004000", "STARLING-QUEUE 1\nrcpt x@y\nfrom a@b\nsize 1\ncrc32 0\n\nx\nEND\n");
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->corrupt.size(), 4u);
  EXPECT_NE(rec->corrupt[0].find("longer than"), std::string::npos) << rec->corrupt[0];
  EXPECT_NE(rec->corrupt[1].find("exceeds"), std::string::npos) << rec->corrupt[1];
  EXPECT_NE(rec->corrupt[2].find("recipients"), std::string::npos) << rec->corrupt[2];
  EXPECT_NE(rec->corrupt[3].find("order"), std::string::npos) << rec->corrupt[3];
}

TEST(Spool, ContentIsReloadedFromTheFileAndCheckedAfterRecovery) {
  TempDir dir;
  std::string body;
  for (int i = 0; i < 20000; ++i) body += "line " + std::to_string(i) + "\r\n";  // > one read chunk
  std::string id;
  {
    auto s = Spool::open(dir.path);
    id = *enqueue_and_wait(**s, body);
    update_and_wait(**s, {id, {{0, state(RecipientState::Status::kPending, 1, 5, "451 later")}}});
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  QueuedMessage m = rec->messages[0];
  EXPECT_FALSE(m.has_data());
  EXPECT_EQ(m.content_size, body.size() + 13);
  EXPECT_EQ(*(*s)->load(m), "Received: x\r\n" + body);
  EXPECT_EQ(*(*s)->load(m, 13), "Received: x\r\n");
  // A file changed behind the queue's back is not passed on as the message.
  std::string bytes = read_all(dir.path / id);
  bytes[m.content_offset + 20] ^= 1;
  write_file(dir.path / id, bytes);
  EXPECT_FALSE((*s)->load(m));
  (*s)->remove(id);
  ASSERT_TRUE(enqueue_and_wait(**s, "next\r\n"));  // flushes the removal
  EXPECT_FALSE((*s)->load(m));
}

// The administrator's marks and Poison's crash counts (spool.hpp's format comment).

StateUpdate mark(std::string id) { return StateUpdate{.id = std::move(id)}; }

TEST(Spool, SuspensionCrashCountAndRemovalWithReportSurviveAReopen) {
  TempDir dir;
  std::string suspended, removed;
  {
    auto s = Spool::open(dir.path);
    suspended = *enqueue_and_wait(**s, "one\r\n");
    removed = *enqueue_and_wait(**s, "two\r\n");
    StateUpdate u = mark(suspended);
    u.suspended = true;
    u.crashes = 3;
    update_and_wait(**s, u);
    StateUpdate r = mark(removed);
    r.removal = QueuedMessage::Removal::kWithReport;
    update_and_wait(**s, r);
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 2u);
  EXPECT_TRUE(rec->messages[0].suspended);
  EXPECT_EQ(rec->messages[0].crashes, 3u + 1u);  // no recipient state after its marks: still in flight
  EXPECT_EQ(rec->messages[0].removal, QueuedMessage::Removal::kNone);
  EXPECT_FALSE(rec->messages[1].suspended);
  EXPECT_EQ(rec->messages[1].removal, QueuedMessage::Removal::kWithReport);
  EXPECT_TRUE(rec->messages[0].recovered);
  // A resume is a line too: the latest wins.
  StateUpdate resumed = mark(suspended);
  resumed.suspended = false;
  update_and_wait(**s, resumed);
  auto again = (*s)->recover();
  EXPECT_FALSE(again->messages[0].suspended);
}

TEST(Spool, AMessageRemovedWithoutAReportDoesNotComeBack) {
  TempDir dir;
  std::string id;
  {
    auto s = Spool::open(dir.path);
    id = *enqueue_and_wait(**s, "gone\r\n");
    StateUpdate u = mark(id);
    u.removal = QueuedMessage::Removal::kWithoutReport;
    update_and_wait(**s, u);
  }
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  EXPECT_TRUE(rec->messages.empty());
  EXPECT_FALSE(std::filesystem::exists(dir.path / id));
  EXPECT_TRUE(rec->corrupt.empty());
}

TEST(Spool, ACrashCountsTheMessagesInFlightAndACleanStopNone) {
  TempDir dir;
  std::string fresh, deferred, retrying;
  using S = RecipientState::Status;
  {
    auto s = Spool::open(dir.path);
    fresh = *enqueue_and_wait(**s, "fresh\r\n");  // no state line: on its first attempt
    deferred = *enqueue_and_wait(**s, "deferred\r\n");
    update_and_wait(**s, {deferred, {{0, state(S::kPending, 1, 1900000000, "451 later")}}});
    retrying = *enqueue_and_wait(**s, "retrying\r\n");
    update_and_wait(**s, {retrying, {{0, state(S::kPending, 1, 0, "451 later")}}});
    update_and_wait(**s, StateUpdate{.id = retrying, .attempt_began = true});
  }  // never recovered, no marker there at open: not a clean stop of a server
  auto crashes = [&](const Spool::Recovered& r, const std::string& id) {
    for (const auto& m : r.messages) {
      if (m.id == id) return m.crashes;
    }
    return 99u;
  };
  {
    auto s = Spool::open(dir.path);
    auto rec = (*s)->recover();
    EXPECT_TRUE(rec->after_crash);
    EXPECT_EQ(crashes(*rec, fresh), 1u);
    EXPECT_EQ(crashes(*rec, deferred), 0u);
    EXPECT_EQ(crashes(*rec, retrying), 1u);
    update_and_wait(**s, StateUpdate{.id = fresh, .attempt_began = true});
  }  // a clean stop: the marker
  ASSERT_TRUE(std::filesystem::exists(dir.path / "clean"));
  {
    auto s = Spool::open(dir.path);
    auto rec = (*s)->recover();
    EXPECT_FALSE(rec->after_crash);
    EXPECT_FALSE(std::filesystem::exists(dir.path / "clean"));  // taken away before delivery
    EXPECT_EQ(crashes(*rec, fresh), 1u);  // in flight, but the stop was clean
    EXPECT_EQ(rec->messages.size(), 3u);
  }
  std::filesystem::remove(dir.path / "clean");  // as if it had crashed after all
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  EXPECT_TRUE(rec->after_crash);
  EXPECT_EQ(crashes(*rec, fresh), 2u);
  EXPECT_EQ(crashes(*rec, deferred), 0u);
  EXPECT_EQ(crashes(*rec, retrying), 2u);  // the count keeps it in flight: no recipient state since
  StateUpdate reset = mark(fresh);
  reset.crashes = 0;
  update_and_wait(**s, reset);
  EXPECT_EQ(crashes(*(*s)->recover(), fresh), 0u);
}

// A crash while it is in flight, then another during its retry before that retry's "a" line is
// flushed: counted twice (Poison at PoisonThreshold 2), not crash-looping for ever.
TEST(Spool, ACrashBeforeTheRetrysAttemptLineIsFlushedCountsAgain) {
  TempDir dir;
  std::string id, deferred;
  {
    auto s = Spool::open(dir.path);
    id = *enqueue_and_wait(**s, "crashes the server\r\n");
    deferred = *enqueue_and_wait(**s, "ended its attempt\r\n");
  }  // never recovered: no marker, as after a crash
  for (uint32_t crash = 1; crash <= 2; ++crash) {
    {
      auto s = Spool::open(dir.path);
      auto rec = (*s)->recover();
      ASSERT_TRUE(rec->after_crash);
      ASSERT_EQ(rec->messages.size(), 2u);
      EXPECT_EQ(rec->messages[0].crashes, crash);
      EXPECT_EQ(rec->messages[1].crashes, 1u);  // its attempt ended after the first crash
      if (crash == 1) {
        using S = RecipientState::Status;
        update_and_wait(**s, {deferred, {{0, state(S::kPending, 1, 1900000000, "451 later")}}});
      }
    }  // the retry's "a" line never reached the disk, and the server crashed again:
    std::filesystem::remove(dir.path / "clean");
  }
}

// A fresh message that waits (its queue suspended, its next hop in Retry) gets a pending line
// with no reply: it is not in flight, however many crashes it waits through.
TEST(Spool, AMessageWithAPendingLineIsNotCounted) {
  TempDir dir;
  std::string id;
  {
    auto s = Spool::open(dir.path);
    id = *enqueue_and_wait(**s, "waits\r\n");
    update_and_wait(**s, {id, {{0, RecipientState{}}}});
  }
  for (int crash = 0; crash < 2; ++crash) {
    {
      auto s = Spool::open(dir.path);
      auto rec = (*s)->recover();
      ASSERT_TRUE(rec->after_crash);
      ASSERT_EQ(rec->messages.size(), 1u);
      EXPECT_FALSE(rec->messages[0].in_flight);
      EXPECT_EQ(rec->messages[0].crashes, 0u);
      EXPECT_EQ(rec->messages[0].state[0].status, RecipientState::Status::kPending);
    }
    std::filesystem::remove(dir.path / "clean");  // as if it had crashed
  }
}

TEST(Spool, ContentIsReadInPiecesWithinItsBounds) {
  TempDir dir;
  auto s = Spool::open(dir.path);
  std::string body(10000, 'x');
  for (size_t i = 0; i < body.size(); i += 7) body[i] = static_cast<char>('a' + i % 26);
  std::string id = *enqueue_and_wait(**s, body);
  auto rec = (*s)->recover();
  const QueuedMessage& m = rec->messages[0];
  std::string whole = *(*s)->load(m), pieces;
  for (uint64_t offset = 0; offset < m.content_size; offset += 999) {
    auto piece = (*s)->read_range(m, offset, 999);
    ASSERT_TRUE(piece) << piece.error();
    EXPECT_LE(piece->size(), 999u);
    pieces += *piece;
  }
  EXPECT_EQ(pieces, whole);
  EXPECT_EQ((*s)->read_range(m, m.content_size, 10)->size(), 0u);
  EXPECT_FALSE((*s)->read_range(m, m.content_size + 1, 10));
  // A whole read is checked: a changed file is refused.
  QueuedMessage wrong = m;
  wrong.content_crc ^= 1;
  EXPECT_FALSE((*s)->read_range(wrong, 0, UINT64_MAX));
}

TEST(Spool, SubjectAndMessageIdComeFromTheHeaderWhenWrittenAndWhenRecovered) {
  TempDir dir;
  std::promise<QueuedMessage> sunk;
  {
    auto s = Spool::open(dir.path);
    (*s)->set_sink([&](QueuedMessage m) { sunk.set_value(std::move(m)); });
    ASSERT_TRUE(enqueue_and_wait(**s, "Subject: quarterly\r\n report\r\nMessage-ID: <a1@example.test>\r\n\r\nbody\r\n"));
  }
  QueuedMessage fresh = sunk.get_future().get();
  EXPECT_EQ(fresh.subject, "quarterly report");
  EXPECT_EQ(fresh.message_id, "<a1@example.test>");
  EXPECT_FALSE(fresh.recovered);
  auto s = Spool::open(dir.path);
  auto rec = (*s)->recover();
  ASSERT_EQ(rec->messages.size(), 1u);
  EXPECT_EQ(rec->messages[0].subject, "quarterly report");
  EXPECT_EQ(rec->messages[0].message_id, "<a1@example.test>");
}

}  // namespace
}  // namespace starling::queue
