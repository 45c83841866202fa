// Local delivery to Maildir: DIR/mailboxes/<domain>/<local-part>/{tmp,new,cur}, named by the
// mailbox's primary address (so aliases and case variants share one Maildir). A delivery
// thread takes every message the queue has made durable, writes one file per copy in tmp/
// (each with its own Return-Path: and Delivered-To: lines, as Postfix's local and virtual agents
// add them), flushes, renames them into new/, flushes again, and only then removes the queue file:
// a crash anywhere delivers again (at least once) and never loses. A failed delivery stays in
// the queue and is retried with backoff; while it waits it holds no content (the retry reads it
// back with Spool::load), so a backlog costs its envelopes, not its messages. Files are stored with LF line endings, as Unix mail
// readers expect (the convention of Postfix's local and virtual agents).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "queue/spool.hpp"

namespace starling::delivery {

// The mailbox directory name for a local part: lower-cased, with '/', '%', control characters,
// quotes, backslashes, spaces and a leading dot percent-encoded.
std::string mailbox_name(std::string_view local_part);

// CRLF line endings to LF.
std::string to_unix_lines(std::string_view data);

// "Return-Path: <from>\nDelivered-To: rcpt\n" (LF lines, as stored). CR and LF in the addresses
// (never from the queue, whose addresses were parsed) are dropped: no header injection.
std::string delivery_headers(std::string_view return_path, std::string_view delivered_to);

// One file to write: into the Maildir of `mailbox` (an address, local@domain: the mailbox's
// primary address), with `Delivered-To: delivered_to` (the recipient as addressed).
struct MaildirCopy {
  std::string mailbox;
  std::string delivered_to;
};

struct DeliveryIo {
  std::function<int(int fd)> sync = ::syncfs;
};

class MaildirDelivery {
 public:
  // Called on the delivery thread for each message delivered or deferred.
  using Observer = std::function<void(const queue::QueuedMessage&, const Result<void>&)>;

  MaildirDelivery(std::filesystem::path mailboxes, queue::Spool& spool, DeliveryIo io = {});
  ~MaildirDelivery();  // stops after the batch in progress; the rest stays queued

  // One copy per envelope recipient, each in the Maildir named by that address.
  void submit(queue::QueuedMessage message);
  // The copies given (the dispatcher's: mailboxes resolved through the directory, groups
  // expanded); the observer still receives `message` as given.
  void submit(queue::QueuedMessage message, std::vector<MaildirCopy> copies);
  void set_observer(Observer o) { observer_ = std::move(o); }
  // Messages submitted and not yet delivered.
  size_t backlog();

  // How long a batch may wait for more messages: each batch costs two flushes, so delivery
  // gathers messages briefly rather than competing with the queue's flushes message by message.
  std::chrono::milliseconds gather{25};
  size_t max_batch = 512;
  // When false, a delivered message stays in the queue: the caller (the dispatcher, which also
  // delivers other recipients of it elsewhere) hears of it through the observer and decides.
  bool remove_delivered = true;
  std::chrono::seconds first_retry{5};
  std::chrono::seconds max_retry{300};

 private:
  struct Item {
    queue::QueuedMessage message;
    std::vector<MaildirCopy> copies;
    std::chrono::steady_clock::time_point not_before{};
    std::chrono::seconds backoff{0};
  };
  // A mailbox's tmp/ and new/, open: files are created and moved relative to them, without a
  // walk down DIR/mailboxes/<domain>/<local-part>/ for every message.
  struct MailboxDirs {
    std::filesystem::path box;
    int tmp = -1, fresh = -1;
    // Which directory `tmp` is: a mailbox moved or removed by hand is noticed (and made again,
    // as before the descriptors were kept), not delivered into where it went.
    uint64_t tmp_device = 0, tmp_inode = 0;
    ~MailboxDirs();
  };
  struct TmpFile {
    std::filesystem::path box;
    std::string name;
    std::filesystem::path path() const { return box / "tmp" / name; }
  };
  void run();
  void deliver_batch(std::vector<Item>& batch);
  Result<TmpFile> write_tmp(const std::string& recipient, std::string_view headers, std::string_view data);
  Result<std::shared_ptr<MailboxDirs>> ensure_mailbox(const std::string& recipient);
  // Into new/ (through its open directories while the mailbox is still among them); unlinked.
  int move_to_new(const TmpFile& tmp);
  void remove_tmp(const TmpFile& tmp);

  std::filesystem::path root_;
  queue::Spool& spool_;
  DeliveryIo io_;
  Observer observer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> ready_;
  size_t ready_bytes_ = 0;  // content held by ready_ items from submit()
  static constexpr size_t kMaxWaitingContent = 64 << 20;
  std::vector<Item> deferred_;
  bool stopping_ = false;
  size_t in_progress_ = 0;
  // Delivery thread only. At most kMaxOpenMailboxes, so that many mailboxes cost no more
  // descriptors; beyond it the cache starts again.
  std::map<std::filesystem::path, std::shared_ptr<MailboxDirs>> mailboxes_;
  static constexpr size_t kMaxOpenMailboxes = 256;
  uint64_t sequence_ = 0;
  std::string hostname_;
  std::string pid_;  // getpid() once: the daemon does not fork after it starts
  int root_fd_ = -1;
  std::thread thread_;
};

}  // namespace starling::delivery
