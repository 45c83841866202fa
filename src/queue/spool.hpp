// The durable queue: one file per message in DIR/queue. A message is acknowledged only after
// its file and the directory entry are on disk. Concurrent enqueues share one flush: a writer
// thread takes what is pending (at most kMaxBatch messages), writes each file and hands the batch
// to a flush thread, which makes every batch handed over so far durable with a single syncfs(2)
// (group commit). The two overlap: while one flush runs, the next batch is being written, so while
// less than a batch is waiting a message waits for at most the flush in progress and its own. A file is complete only with its
// trailer, so a crash in the middle of a write leaves a file that recovery recognizes as never
// acknowledged. A failed flush fails its batches and every batch whose writing began before that
// failure was seen (their pages may have been the ones lost).
//
// Delivered files are not unlinked but moved to DIR/queue/free/ and rewritten in place for
// later messages: creating and deleting an inode per message is what costs most on ext4 (its
// allocator scans past recently freed inodes). Because a recycled file could, after a crash,
// hold old and new bytes mixed, every file carries a CRC-32 that recovery checks.
//
// File format (text header, then the message octets as stored, then the trailer):
//   STARLING-QUEUE 1\n from <addr>\n rcpt <addr>\n... size <n>\n crc32 <hex>\n \n <n octets> \nEND\n
// with the delivery status notification requests (RFC 3461), when the client made any, as
// optional lines: "ret FULL|HDRS" and "envid <xtext>" after from, "notify <NEVER|SUCCESS,FAILURE,
// DELAY>" and "orcpt <addr-type;xtext>" after the rcpt they belong to. Files without them (older
// ones) read as before; a malformed or misplaced one is damage.
// The CRC-32 covers the from, DSN, rcpt and size lines and the message octets.
// What the writer refuses (queue_file.hpp): more than kMaxRecipients recipients, an address that
// is not one (control characters, RFC 5321 lengths), content over kMaxMessageSize. Recovery calls
// any of these damage, with lines longer than the writer writes.
//
// Nothing in the directory is trusted: every file is opened relative to the directory's
// descriptor with O_NOFOLLOW, and whatever fstat(2) does not show as a regular file with one link
// (a symbolic link, a FIFO, a directory, a hard link to a file elsewhere) is never read or written
// through: recovery moves it to DIR/queue/corrupt/ ("not a regular file"), the free list never
// recycles it. The queue directory itself and free/ must be real directories, not links.
//
// A queued message's content stays on disk: QueuedMessage names it by offset and size in its
// file, and load() reads it back, checked against its CRC-32, when an attempt needs it. Files
// are found by queue id, and an id is never reused, so a file recycled for another message can
// never be read as this one.
//
// Delivery state is appended after the trailer, one line per change, each with its own CRC-32:
//   S <crc32 of the rest> r <index> <P|D|F> <attempts> <next attempt, Unix s> <last reply>\n
//   S <crc32 of the rest> d\n                                  (the delay notice was sent)
//   S <crc32 of the rest> a\n                                  (an attempt began)
//   S <crc32 of the rest> c <crashes>\n                        (crashes with it in flight)
//   S <crc32 of the rest> h <1|0>\n                            (suspended / resumed by an administrator)
//   S <crc32 of the rest> x <1|0>\n                            (removed by an administrator, with a
//                                                              report or without: recovery drops it)
// The latest line for a recipient wins. A torn or damaged last line (a crash while appending,
// never flushed, so never relied on) ends the state: the lines before it stand.
//
// Poison: a clean stop leaves DIR/queue/clean (flushed) after the writer's last batch; recovery
// takes it away. Recovery without it follows a crash: a message was in flight when it has no
// "r" line after its last "a" line, or none at all (a fresh message goes to its first attempt at
// once); it gets a "c" line with its crash count one higher. Only an "r" line ends the attempt:
// the other lines ("c" above all) leave a message in flight, so that a crash during the retry
// that follows counts even when that retry's "a" line was never flushed. A fresh message that
// waits (its queue suspended, its next hop in Retry) gets a pending "r" line for its recipients.
// The dispatcher sets aside a message that reaches PoisonThreshold.
#pragma once

#include <sys/uio.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"

namespace starling::queue {

// A recipient's delivery status notification request (RFC 3461 NOTIFY= and ORCPT=).
struct RecipientDsn {
  // NOTIFY= as flags; none given (0) means what RFC 3461 §4.1 says: FAILURE and DELAY.
  static constexpr uint8_t kSuccess = 1, kFailure = 2, kDelay = 4, kNever = 8;
  uint8_t notify = 0;
  std::string orcpt;  // ORCPT= as received, "rfc822;bob@example.com" (xtext kept encoded); "" none
  bool operator==(const RecipientDsn&) const = default;
};

struct Envelope {
  std::string mail_from;                // "" for the null reverse path
  std::vector<std::string> recipients;  // "local@domain"
  // RFC 3461 on MAIL: RET=FULL|HDRS ("" when not given) and ENVID= (xtext kept encoded).
  std::string dsn_ret;
  std::string dsn_envid;
  // One per recipient when any recipient gave NOTIFY= or ORCPT=, else empty.
  std::vector<RecipientDsn> dsn;
};

// One recipient's outbound state, kept durably in the queue file.
struct RecipientState {
  enum class Status : char { kPending = 'P', kDelivered = 'D', kFailed = 'F' };
  Status status = Status::kPending;
  uint32_t attempts = 0;
  int64_t next_attempt = 0;  // Unix seconds; 0: as soon as possible
  std::string last_reply;    // one line: the last reply or what happened here
  bool final() const { return status != Status::kPending; }
};

struct QueuedMessage {
  std::string id;
  Envelope envelope;
  // The whole message as delivered (trace header + content, CRLF lines), when in memory: see
  // content_offset below.
  std::string data;
  std::vector<RecipientState> state;  // one per envelope recipient (all pending when new)
  bool delay_notified = false;
  int64_t arrival = 0;  // Unix seconds, from the time-ordered id
  // From the content's header section, for tracking and get-message (bounded, printable):
  // read when the message is written and again when it is recovered.
  std::string message_id;  // "<...>", or ""
  std::string subject;
  // The administrator's marks and the crash count, from the state lines (see the format above).
  enum class Removal : char { kNone, kWithoutReport, kWithReport };
  Removal removal = Removal::kNone;
  bool suspended = false;
  uint32_t crashes = 0;
  bool in_flight = false;  // at recovery: no "r" line after its last "a", or no state line at all
  bool recovered = false;  // read back from its file (not fresh from the receiving side)
  // Where the content is in the queue file: `data` holds it only for a message fresh from the
  // receiving side (for its first attempt) or while an attempt has loaded it.
  uint64_t content_offset = 0;
  uint64_t content_size = 0;
  uint32_t content_crc = 0;  // CRC-32 of the content alone, checked when it is read back
  // Whether `data` is the content (else Spool::load reads it).
  bool has_data() const { return !data.empty() || content_size == 0; }
  // Lets the content go, once it can be read back from the file.
  void release_data() {
    if (content_size > 0) std::string().swap(data);
  }
};

// A change of delivery state for one message: appended to its file and made durable.
struct StateUpdate {
  std::string id;
  std::vector<std::pair<size_t, RecipientState>> recipients;  // by envelope index
  bool delay_notified = false;
  bool attempt_began = false;                   // "a"
  std::optional<uint32_t> crashes;              // "c"
  std::optional<bool> suspended;                // "h"
  QueuedMessage::Removal removal = QueuedMessage::Removal::kNone;  // "x"
};

// The arrival time encoded in a queue id (microseconds, hex); 0 for a foreign name.
int64_t arrival_of(std::string_view id);

// The system calls the spool uses to make data durable; tests replace them to inject failures.
struct SpoolIo {
  std::function<ssize_t(int fd, const iovec* iov, int count)> writev = ::writev;
  std::function<int(int fd)> sync = ::syncfs;
};

class Spool {
 public:
  // Called on the flush thread with the queue id, or the error that kept the message out.
  using Done = std::function<void(Result<std::string>)>;

  static Result<std::unique_ptr<Spool>> open(const std::filesystem::path& dir, SpoolIo io = {});
  ~Spool();  // finishes the pending batch, then stops the writer

  // A fresh, unique queue id (time-ordered hex).
  std::string new_id();

  // Writes the message durably, then calls `done`. `header` is prepended to `content` on disk.
  void enqueue(std::string id, Envelope envelope, std::string header, std::string content,
               Done done);

  // Messages left from before a restart, oldest first, with their delivery state. Incomplete
  // files (a crash before their flush: never acknowledged) are moved to DIR/queue/incomplete/
  // and named in `discarded`; files that are damaged otherwise (a bad checksum on complete
  // bytes, garbage in the header) go to DIR/queue/corrupt/ and are named in `corrupt`. Neither
  // stops the recovery of the others.
  struct Recovered {
    std::vector<QueuedMessage> messages;
    std::vector<std::string> discarded;
    std::vector<std::string> corrupt;
    bool after_crash = false;  // no clean-stop marker: in-flight messages counted a crash
  };
  // Memory is O(the largest header), whatever the files' sizes. Each entry is opened with
  // O_NOFOLLOW; what is not a regular file is moved to corrupt/ and named in `corrupt`.
  Result<Recovered> recover();

  // The content of a queued message, read from its file (thread-safe; any thread), at most
  // `limit` octets. Read whole, it is checked against the message's CRC-32. An error when the
  // message is no longer queued or its file was changed.
  Result<std::string> load(const QueuedMessage& message, uint64_t limit = UINT64_MAX) const;
  // At most `max_bytes` octets of the content from `offset` (export-message reads piece by
  // piece). Bounds are checked; a piece that is the whole content is checked against the CRC-32.
  Result<std::string> read_range(const QueuedMessage& message, uint64_t offset, uint64_t max_bytes) const;

  // Receives every message once it is durable, on the flush thread, after its Done. Set it
  // before the first enqueue.
  void set_sink(std::function<void(QueuedMessage)> sink) { sink_ = std::move(sink); }

  // Appends `update` to the message's file, durably, in the next group commit; then `done`
  // (on the flush thread). A message no longer in the queue is not an error.
  void update(StateUpdate update, std::function<void(Result<void>)> done = {});

  // Removes a message whose recipients are all final. Done by the writer and flushed with its
  // next batch, so a message delivered a moment before a crash is not delivered again.
  void remove(const std::string& id);

  const std::filesystem::path& dir() const { return dir_; }

  // Replaces DIR/queue/NAME, one of the reserved names beside the messages (kSuspendedQueuesFile),
  // with `text`, durably: written to NAME.new and flushed, renamed over NAME, the directory
  // flushed. A crash leaves the old file or the new one, never a mix. Thread-safe.
  Result<void> replace_file(std::string_view name, std::string_view text);
  // At most `limit` octets of DIR/queue/NAME (a reserved name), never through a symbolic link;
  // "" when there is no such file.
  Result<std::string> read_file(std::string_view name, size_t limit) const;

 private:
  struct Pending {
    std::string id;
    Envelope envelope;
    std::string header;
    std::string content;
    Done done;
    uint64_t content_offset = 0;  // where write_file put the content, and its CRC-32
    uint32_t content_crc = 0;
  };
  Spool(std::filesystem::path dir, int dir_fd, int free_fd, SpoolIo io);
  struct PendingUpdate {
    StateUpdate update;
    std::function<void(Result<void>)> done;
  };
  // A batch written and waiting for its flush; `failures_seen` is flush_failures_ when its
  // writing began.
  struct Written {
    std::vector<Pending> batch;
    std::vector<Result<void>> written;
    std::vector<PendingUpdate> updates;
    std::vector<Result<void>> appended;
    bool any = false;  // something on disk changed: it needs the flush
    uint64_t failures_seen = 0;
  };
  void run();
  void flush_loop();
  Written write_batch(std::vector<Pending> batch, std::vector<PendingUpdate> updates,
                      const std::vector<std::string>& removals);
  void complete(Written& w, const std::string& flush_error);
  Result<void> write_file(Pending& p);
  int open_recycled(std::string& name, off_t& size);
  Result<void> append_state(const StateUpdate& u);
  void remove_now(const std::string& id);

  void write_clean_marker();

  std::filesystem::path dir_;
  bool clean_at_open_ = false;  // DIR/queue/clean was there: the last stop was clean
  bool recovered_ = false;
  int dir_fd_;
  int free_fd_;
  std::vector<std::string> free_;  // recyclable files in free/, guarded by mutex_
  static constexpr size_t kMaxFree = 4096;
  SpoolIo io_;
  std::function<void(QueuedMessage)> sink_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Pending> pending_;
  std::vector<PendingUpdate> updates_;
  std::vector<std::string> removals_;
  bool stopping_ = false;
  // Bounds a batch, so that a burst does not hold the next flush behind one long write.
  static constexpr size_t kMaxBatch = 64;
  static constexpr size_t kMaxBatchBytes = 8 << 20;
  std::vector<Written> written_;  // handed to the flush thread, guarded by mutex_
  std::condition_variable flush_wake_;
  bool writer_done_ = false;
  uint64_t flush_failures_ = 0;  // failed flushes so far, guarded by mutex_
  uint64_t last_id_time_ = 0;
  uint32_t id_seq_ = 0;
  std::thread writer_;
  std::thread flusher_;
};

// Beside the message files in the queue directory: the names of the delivery queues an
// administrator suspended (suspend-queue), one per line, kept by the dispatcher.
inline constexpr const char* kSuspendedQueuesFile = "suspended-queues";

// Parses a queue file's bytes; an error for anything incomplete or malformed. Unlike recovery,
// it fills `data` with the content (the file is at hand).
Result<QueuedMessage> parse_queue_file(std::string id, const std::string& bytes);

}  // namespace starling::queue
