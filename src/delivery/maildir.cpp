#include "delivery/maildir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "core/names.hpp"

namespace starling::delivery {
namespace {

std::string errno_text() { return std::strerror(errno); }

// `head` then `body` in one writev(2), going on after a short write: the copy's own header
// lines are not joined to the message in memory first.
Result<void> write_all(int fd, std::string_view head, std::string_view body) {
  while (!head.empty() || !body.empty()) {
    iovec iov[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
    ssize_t n = head.empty() ? ::write(fd, body.data(), body.size()) : ::writev(fd, iov, 2);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(n < 0 ? errno_text() : "short write");
    size_t from_head = std::min(head.size(), static_cast<size_t>(n));
    head.remove_prefix(from_head);
    body.remove_prefix(static_cast<size_t>(n) - from_head);
  }
  return {};
}

}  // namespace

std::string mailbox_name(std::string_view local_part) {
  std::string lower = core::to_lower(local_part);
  std::string out;
  for (size_t i = 0; i < lower.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(lower[i]);
    bool unsafe = c < 0x21 || c == 0x7f || c == '/' || c == '%' || c == '"' || c == '\\' ||
                  (i == 0 && c == '.');
    if (unsafe) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string delivery_headers(std::string_view return_path, std::string_view delivered_to) {
  auto clean = [](std::string_view v) {
    std::string out;
    for (char c : v) {
      if (c != '\r' && c != '\n') out += c;
    }
    return out;
  };
  return "Return-Path: <" + clean(return_path) + ">\nDelivered-To: " + clean(delivered_to) + "\n";
}

std::string to_unix_lines(std::string_view data) {
  std::string out;
  out.reserve(data.size());
  size_t pos = 0;
  while (pos < data.size()) {
    size_t cr = data.find("\r\n", pos);
    if (cr == std::string_view::npos) {
      out.append(data.substr(pos));
      break;
    }
    out.append(data.substr(pos, cr - pos));
    out += '\n';
    pos = cr + 2;
  }
  return out;
}

MaildirDelivery::MaildirDelivery(std::filesystem::path mailboxes, queue::Spool& spool,
                                 DeliveryIo io)
    : root_(std::move(mailboxes)), spool_(spool), io_(std::move(io)) {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  hostname_ = host;
  pid_ = std::to_string(getpid());
  // A Maildir file name must not contain '/' or ':' (RFC-less convention of maildir(5)).
  for (char& c : hostname_) {
    if (c == '/' || c == ':') c = '_';
  }
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  thread_ = std::thread([this] { run(); });
}

MaildirDelivery::~MaildirDelivery() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (root_fd_ >= 0) ::close(root_fd_);
}

void MaildirDelivery::submit(queue::QueuedMessage message) {
  std::vector<MaildirCopy> copies;
  for (const std::string& r : message.envelope.recipients) copies.push_back({r, r});
  submit(std::move(message), std::move(copies));
}

void MaildirDelivery::submit(queue::QueuedMessage message, std::vector<MaildirCopy> copies) {
  {
    std::lock_guard lock(mutex_);
    // Content waiting here is past the receive budget: beyond a bound it is let go, and read
    // back from its durable queue file when its turn comes.
    if (ready_bytes_ + message.data.size() > kMaxWaitingContent) {
      message.release_data();
    } else {
      ready_bytes_ += message.data.size();
    }
    ready_.push_back({std::move(message), std::move(copies)});
  }
  wake_.notify_one();
}

size_t MaildirDelivery::backlog() {
  std::lock_guard lock(mutex_);
  return ready_.size() + deferred_.size() + in_progress_;
}

void MaildirDelivery::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    // Deferred messages whose time has come go back to the ready list.
    auto next_retry = std::chrono::steady_clock::time_point::max();
    for (auto it = deferred_.begin(); it != deferred_.end();) {
      if (it->not_before <= now) {
        ready_.push_back(std::move(*it));
        it = deferred_.erase(it);
      } else {
        next_retry = std::min(next_retry, it->not_before);
        ++it;
      }
    }
    if (ready_.empty()) {
      if (next_retry == std::chrono::steady_clock::time_point::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, next_retry);
      }
      continue;
    }
    if (ready_.size() < max_batch && gather.count() > 0) {
      wake_.wait_for(lock, gather, [&] { return stopping_ || ready_.size() >= max_batch; });
      if (stopping_) break;
    }
    std::vector<Item> batch(std::make_move_iterator(ready_.begin()),
                            std::make_move_iterator(ready_.end()));
    ready_.clear();
    ready_bytes_ = 0;
    in_progress_ = batch.size();
    lock.unlock();
    deliver_batch(batch);
    lock.lock();
    in_progress_ = 0;
  }
}

MaildirDelivery::MailboxDirs::~MailboxDirs() {
  if (tmp >= 0) ::close(tmp);
  if (fresh >= 0) ::close(fresh);
}

int MaildirDelivery::move_to_new(const TmpFile& tmp) {
  if (auto open = mailboxes_.find(tmp.box); open != mailboxes_.end()) {
    return ::renameat(open->second->tmp, tmp.name.c_str(), open->second->fresh, tmp.name.c_str());
  }
  return ::rename(tmp.path().c_str(), (tmp.box / "new" / tmp.name).c_str());
}

void MaildirDelivery::remove_tmp(const TmpFile& tmp) {
  if (auto open = mailboxes_.find(tmp.box); open != mailboxes_.end()) {
    ::unlinkat(open->second->tmp, tmp.name.c_str(), 0);
  } else {
    ::unlink(tmp.path().c_str());
  }
}

Result<std::shared_ptr<MaildirDelivery::MailboxDirs>> MaildirDelivery::ensure_mailbox(const std::string& recipient) {
  size_t at = recipient.rfind('@');
  std::string domain = core::normalize_name(recipient.substr(at + 1));
  if (domain.empty() || domain.find('/') != std::string::npos || domain.front() == '.') {
    return make_error("unusable domain in " + recipient);
  }
  std::filesystem::path box = root_ / domain / mailbox_name(recipient.substr(0, at));
  if (auto known = mailboxes_.find(box); known != mailboxes_.end()) {
    struct stat st {};
    const MailboxDirs& d = *known->second;
    if (::stat((box / "tmp").c_str(), &st) == 0 && st.st_dev == d.tmp_device && st.st_ino == d.tmp_inode) {
      return known->second;
    }
    mailboxes_.erase(known);  // moved or removed since: made or opened again below
  }
  std::error_code ec;
  for (const char* sub : {"tmp", "new", "cur"}) {
    std::filesystem::create_directories(box / sub, ec);
    if (ec) return make_error("cannot create mailbox " + box.string() + ": " + ec.message());
  }
  auto dirs = std::make_shared<MailboxDirs>();
  dirs->box = box;
  dirs->tmp = ::open((box / "tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  dirs->fresh = ::open((box / "new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st {};
  if (dirs->tmp < 0 || dirs->fresh < 0 || ::fstat(dirs->tmp, &st) != 0) {
    return make_error("cannot open mailbox " + box.string() + ": " + errno_text());
  }
  dirs->tmp_device = st.st_dev;
  dirs->tmp_inode = st.st_ino;
  if (mailboxes_.size() >= kMaxOpenMailboxes) mailboxes_.clear();
  mailboxes_.emplace(box, dirs);
  return dirs;
}

Result<MaildirDelivery::TmpFile> MaildirDelivery::write_tmp(const std::string& recipient, std::string_view headers,
                                                            std::string_view data) {
  auto box = ensure_mailbox(recipient);
  if (!box) return std::move(box).take_error();
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000;
  // maildir(5) unique name: time, microseconds, pid and a counter, host; S= is the size.
  std::shared_ptr<MailboxDirs> dirs = std::move(*box);
  TmpFile tmp{dirs->box, std::to_string(secs) + ".M" + std::to_string(usec) + "P" + pid_ + "Q" +
                                   std::to_string(++sequence_) + "." + hostname_ +
                                   ",S=" + std::to_string(headers.size() + data.size())};
  int fd = ::openat(dirs->tmp, tmp.name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot create " + tmp.path().string() + ": " + errno_text());
  auto written = write_all(fd, headers, data);
  ::close(fd);
  if (!written) {
    ::unlinkat(dirs->tmp, tmp.name.c_str(), 0);
    return make_error("cannot write " + tmp.path().string() + ": " + written.error());
  }
  return tmp;
}

void MaildirDelivery::deliver_batch(std::vector<Item>& batch) {
  struct Outcome {
    std::vector<TmpFile> tmp_files;
    Result<void> result;
  };
  std::vector<Outcome> outcomes(batch.size());
  // 1. Every recipient's copy into tmp/.
  for (size_t i = 0; i < batch.size(); ++i) {
    const queue::QueuedMessage& m = batch[i].message;
    // A retry (or a copy the dispatcher did not have in memory) reads the content back from
    // the queue: a message waiting here holds no content.
    Result<std::string> loaded = m.has_data() ? Result<std::string>(std::string()) : spool_.load(m);
    if (!loaded) {
      outcomes[i].result = std::move(loaded).take_error();
      continue;
    }
    std::string data = to_unix_lines(m.has_data() ? m.data : *loaded);
    loaded = std::string();
    for (const MaildirCopy& copy : batch[i].copies) {
      auto tmp = write_tmp(copy.mailbox, delivery_headers(m.envelope.mail_from, copy.delivered_to), data);
      if (!tmp) {
        outcomes[i].result = std::move(tmp).take_error();
        break;
      }
      outcomes[i].tmp_files.push_back(std::move(*tmp));
    }
  }
  // 2. Make the copies durable, 3. move them into new/, 4. make the renames durable.
  auto fail_all = [&](const std::string& why) {
    for (auto& o : outcomes) {
      if (o.result) o.result = make_error(why);
    }
  };
  if (io_.sync(root_fd_) != 0) fail_all("cannot flush the mailboxes: " + errno_text());
  for (auto& o : outcomes) {
    if (!o.result) continue;
    for (const TmpFile& tmp : o.tmp_files) {
      if (move_to_new(tmp) != 0) {
        o.result = make_error("cannot move " + tmp.path().string() + " to new/: " + errno_text());
        break;
      }
    }
  }
  if (io_.sync(root_fd_) != 0) fail_all("cannot flush the mailboxes: " + errno_text());
  // 5. Delivered messages leave the queue; failures are retried later.
  std::vector<Item> retry;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (outcomes[i].result && remove_delivered) spool_.remove(batch[i].message.id);
    if (observer_) observer_(batch[i].message, outcomes[i].result);
    if (!outcomes[i].result) {
      for (const TmpFile& tmp : outcomes[i].tmp_files) remove_tmp(tmp);
      Item& item = batch[i];
      item.message.release_data();
      item.backoff = item.backoff.count() == 0 ? first_retry : std::min(item.backoff * 2, max_retry);
      item.not_before = std::chrono::steady_clock::now() + item.backoff;
      retry.push_back(std::move(item));
    }
  }
  if (!retry.empty()) {
    std::lock_guard lock(mutex_);
    for (auto& r : retry) deferred_.push_back(std::move(r));
  }
}

}  // namespace starling::delivery
