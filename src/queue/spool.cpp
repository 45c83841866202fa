#include "queue/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "core/log.hpp"
#include "core/message_header.hpp"
#include "queue/queue_file.hpp"

namespace starling::queue {
namespace {

constexpr std::string_view kMagic = "STARLING-QUEUE 1\n";
constexpr std::string_view kTrailer = "\nEND\n";
constexpr const char* kCleanMarker = "clean";  // a clean stop (spool.hpp: Poison)

std::string errno_text() { return std::strerror(errno); }

// A directory in the queue, never through a symbolic link.
int open_directory(int at, const char* name) {
  return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Opens an entry of a queue directory for `flags`, only if it is a regular file with one link:
// O_NOFOLLOW refuses a symbolic link, O_NONBLOCK keeps a FIFO from blocking the open, and fstat
// of the descriptor (not of the name, which may change meanwhile) sees what was opened.
Result<int> open_regular(int dir_fd, const std::string& name, int flags, struct stat* st_out = nullptr) {
  int fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;  // kept for the caller (ENOENT: the message is gone)
    Result<int> r = make_error(e == ELOOP || e == ENXIO || e == EISDIR || e == ENODEV ? "not a regular file"
                                                                                   : errno_text());
    errno = e;
    return r;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    bool links = S_ISREG(st.st_mode) && st.st_nlink != 1;
    ::close(fd);
    return make_error(links ? "not a regular file (more than one link)" : "not a regular file");
  }
  if (st_out) *st_out = st;
  return fd;
}

// The names in a directory given by descriptor, but "." and "..".
Result<std::vector<std::string>> entries_of(int dir_fd) {
  std::vector<std::string> names;
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (!d) {
    std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    return make_error(why);
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

Result<void> write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(n < 0 ? errno_text() : "short write");
    text.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// The files the queue keeps beside the messages, each replaced through NAME.new.
bool is_reserved_file(std::string_view name) { return name == kCleanMarker || name == kSuspendedQueuesFile; }

ssize_t read_at(int fd, char* buf, size_t n, uint64_t offset) {
  ssize_t got = 0;
  do {
    got = ::pread(fd, buf, n, static_cast<off_t>(offset));
  } while (got < 0 && errno == EINTR);
  return got;
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const std::filesystem::path& dir, SpoolIo io) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir.string() + ": " + ec.message());
  int fd = open_directory(AT_FDCWD, dir.c_str());
  if (fd < 0) {
    return make_error("cannot open " + dir.string() + ": " +
                      (errno == ELOOP ? "a symbolic link, not a directory" : errno_text()));
  }
  if (::mkdirat(fd, "free", 0700) != 0 && errno != EEXIST) {
    std::string why = errno_text();
    ::close(fd);
    return make_error("cannot create " + (dir / "free").string() + ": " + why);
  }
  int free_fd = open_directory(fd, "free");
  if (free_fd < 0) {
    std::string why = errno == ELOOP || errno == ENOTDIR ? "not a directory (a symbolic link?)" : errno_text();
    ::close(fd);
    return make_error("cannot open " + (dir / "free").string() + ": " + why);
  }
  return std::unique_ptr<Spool>(new Spool(dir, fd, free_fd, std::move(io)));
}

Spool::Spool(std::filesystem::path dir, int dir_fd, int free_fd, SpoolIo io)
    : dir_(std::move(dir)), dir_fd_(dir_fd), free_fd_(free_fd), io_(std::move(io)) {
  struct stat marker {};
  clean_at_open_ = ::fstatat(dir_fd_, kCleanMarker, &marker, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(marker.st_mode);
  size_t refused = 0;
  auto names = entries_of(free_fd_);
  for (const std::string& name : names ? *names : std::vector<std::string>{}) {
    if (free_.size() >= kMaxFree) break;
    struct stat st {};
    bool regular = ::fstatat(free_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                   st.st_nlink == 1;
    if (regular) {
      free_.push_back(name);
    } else {
      ++refused;
    }
  }
  if (refused > 0) {
    log_line("queue: " + std::to_string(refused) + " entries of " + (dir_ / "free").string() +
             " are not regular files; they are never recycled");
  }
  writer_ = std::thread([this] { run(); });
  flusher_ = std::thread([this] { flush_loop(); });
}

Spool::~Spool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  {
    std::lock_guard lock(mutex_);
    writer_done_ = true;
  }
  flush_wake_.notify_all();
  flusher_.join();
  // Only a spool that took over the queue (recovered it) or found it clean may call it clean.
  if (recovered_ || clean_at_open_) write_clean_marker();
  ::close(dir_fd_);
  ::close(free_fd_);
}

void Spool::write_clean_marker() {
  if (auto r = replace_file(kCleanMarker, ""); !r) log_line("queue: cannot mark the stop as clean: " + r.error());
}

Result<void> Spool::replace_file(std::string_view name, std::string_view text) {
  if (!is_reserved_file(name)) return make_error("not a file the queue keeps: " + std::string(name));
  std::string target(name), temp = target + ".new";
  auto where = [&](const std::string& n) { return (dir_ / n).string() + ": "; };
  int fd = ::openat(dir_fd_, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(where(temp) + errno_text());
  Result<void> written = write_all(fd, text);
  if (written && ::fsync(fd) != 0) written = make_error(errno_text());
  ::close(fd);
  if (!written) return make_error(where(temp) + written.error());
  if (::renameat(dir_fd_, temp.c_str(), dir_fd_, target.c_str()) != 0) return make_error(where(target) + errno_text());
  if (::fsync(dir_fd_) != 0) return make_error(where(".") + errno_text());
  return {};
}

Result<std::string> Spool::read_file(std::string_view name, size_t limit) const {
  if (!is_reserved_file(name)) return make_error("not a file the queue keeps: " + std::string(name));
  struct stat st {};
  auto opened = open_regular(dir_fd_, std::string(name), O_RDONLY, &st);
  if (!opened && errno == ENOENT) return std::string();
  if (!opened) return make_error((dir_ / name).string() + ": " + opened.error());
  limit = std::min(limit, static_cast<size_t>(st.st_size));
  std::string out(limit, '\0');
  size_t got = 0;
  while (got < limit) {
    ssize_t n = read_at(*opened, out.data() + got, limit - got, got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(*opened);
  out.resize(got);
  return out;
}

std::string Spool::new_id() {
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  std::lock_guard lock(mutex_);
  if (now <= last_id_time_) {
    now = last_id_time_;
    ++id_seq_;
  } else {
    last_id_time_ = now;
    id_seq_ = 0;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%013llX%03X", static_cast<unsigned long long>(now),
                id_seq_ & 0xFFF);
  return buf;
}

void Spool::enqueue(std::string id, Envelope envelope, std::string header, std::string content,
                    Done done) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(
        {std::move(id), std::move(envelope), std::move(header), std::move(content), std::move(done)});
  }
  wake_.notify_one();
}

// A recyclable file from free/, opened for rewriting; -1 when there is none. An entry that is not
// a regular file with one link (planted after start-up) is dropped from the list, never written.
int Spool::open_recycled(std::string& name, off_t& size) {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (free_.empty()) return -1;
      name = std::move(free_.back());
      free_.pop_back();
    }
    struct stat st {};
    auto fd = open_regular(free_fd_, name, O_WRONLY, &st);
    size = st.st_size;
    if (fd) return *fd;
    log_line("queue: free/" + name + " not recycled: " + fd.error());
  }
}

Result<void> Spool::write_file(Pending& p) {
  uint64_t size = p.header.size() + p.content.size();
  if (std::string why = envelope_problem(p.envelope); !why.empty()) {
    return make_error("cannot queue " + p.id + ": " + why);
  }
  if (size > kMaxMessageSize) return make_error("cannot queue " + p.id + ": larger than the queue takes");
  std::string fields = header_fields(p.envelope, size);
  p.content_crc = crc_update(crc_update(0, p.header), p.content);
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32 %08X\n\n", crc_combine(crc_update(0, fields), p.content_crc, size));
  std::string head = std::string(kMagic) + fields + crc;
  p.content_offset = head.size();
  iovec iov[4] = {
      {head.data(), head.size()},
      {const_cast<char*>(p.header.data()), p.header.size()},
      {const_cast<char*>(p.content.data()), p.content.size()},
      {const_cast<char*>(kTrailer.data()), kTrailer.size()},
  };
  size_t total = head.size() + p.header.size() + p.content.size() + kTrailer.size();
  // A recycled file is rewritten from its start and moved into place when complete; a new
  // file is created under its final name.
  std::string recycled;
  off_t old_size = 0;
  int fd = open_recycled(recycled, old_size);
  if (fd < 0) {
    recycled.clear();
    fd = ::openat(dir_fd_, p.id.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (fd < 0) return make_error("cannot create queue file " + p.id + ": " + errno_text());
  auto discard = [&] {
    if (recycled.empty()) {
      ::unlinkat(dir_fd_, p.id.c_str(), 0);
    } else {
      ::unlinkat(free_fd_, recycled.c_str(), 0);
    }
  };
  // writev may write less than asked (large messages): advance through the vector.
  size_t written = 0;
  int first = 0;
  while (written < total) {
    ssize_t n = io_.writev(fd, iov + first, 4 - first);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? errno_text() : "short write";
      ::close(fd);
      discard();  // nothing half-written stays behind
      return make_error("cannot write queue file " + p.id + ": " + why);
    }
    written += static_cast<size_t>(n);
    size_t skip = static_cast<size_t>(n);
    while (first < 4 && skip >= iov[first].iov_len) skip -= iov[first++].iov_len;
    if (first < 4) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + skip;
      iov[first].iov_len -= skip;
    }
  }
  if (!recycled.empty()) {
    // Only a longer old file leaves bytes to cut (a shorter one was overwritten whole).
    bool longer = old_size > static_cast<off_t>(total);
    if ((longer && ::ftruncate(fd, static_cast<off_t>(total)) != 0) ||
        ::renameat(free_fd_, recycled.c_str(), dir_fd_, p.id.c_str()) != 0) {
      std::string why = errno_text();
      ::close(fd);
      discard();
      return make_error("cannot place queue file " + p.id + ": " + why);
    }
  }
  ::close(fd);
  return {};
}

void Spool::update(StateUpdate update, std::function<void(Result<void>)> done) {
  {
    std::lock_guard lock(mutex_);
    updates_.push_back({std::move(update), std::move(done)});
  }
  wake_.notify_one();
}

void Spool::remove(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    removals_.push_back(id);
  }
  wake_.notify_one();
}

namespace {

// A reply kept on one state line: no line ends or other control characters, bounded.
std::string one_line(std::string_view text) {
  std::string out(text.substr(0, 1000));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string state_line(std::string_view payload) {
  char head[16];
  std::snprintf(head, sizeof head, "S %08X ", static_cast<unsigned>(crc_update(0, payload)));
  return head + std::string(payload) + "\n";
}

}  // namespace

Result<void> Spool::append_state(const StateUpdate& u) {
  std::string text;
  for (const auto& [index, st] : u.recipients) {
    text += state_line("r " + std::string(1, static_cast<char>(st.status)) + " " + std::to_string(index) + " " +
                       std::to_string(st.attempts) + " " + std::to_string(st.next_attempt) + " " +
                       one_line(st.last_reply));
  }
  if (u.delay_notified) text += state_line("d");
  if (u.crashes) text += state_line("c " + std::to_string(*u.crashes));
  if (u.suspended) text += state_line(*u.suspended ? "h 1" : "h 0");
  if (u.removal != QueuedMessage::Removal::kNone) {
    text += state_line(u.removal == QueuedMessage::Removal::kWithReport ? "x 1" : "x 0");
  }
  if (u.attempt_began) text += state_line("a");
  if (text.empty()) return {};
  auto opened = open_regular(dir_fd_, u.id, O_WRONLY | O_APPEND);
  if (!opened) {
    if (errno == ENOENT) return {};  // already removed
    return make_error("cannot open queue file " + u.id + ": " + opened.error());
  }
  Result<void> written = write_all(*opened, text);
  ::close(*opened);
  if (!written) return make_error("cannot record delivery state of " + u.id + ": " + written.error());
  return {};
}

void Spool::remove_now(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    if (free_.size() >= kMaxFree) {
      ::unlinkat(dir_fd_, id.c_str(), 0);
      return;
    }
  }
  // Out of the queue into the free pool: one rename, no inode freed.
  if (::renameat(dir_fd_, id.c_str(), free_fd_, id.c_str()) == 0) {
    std::lock_guard lock(mutex_);
    free_.push_back(id);
  } else {
    ::unlinkat(dir_fd_, id.c_str(), 0);
  }
}

void Spool::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] {
      return stopping_ || !pending_.empty() || !updates_.empty() || !removals_.empty();
    });
    if (pending_.empty() && updates_.empty() && removals_.empty() && stopping_) return;
    // At most kMaxBatch messages (and kMaxBatchBytes, but at least one): the rest goes on in
    // the next batch, written while this one is flushed.
    size_t take = 0, bytes = 0;
    while (take < pending_.size() && take < kMaxBatch && (take == 0 || bytes < kMaxBatchBytes)) {
      bytes += pending_[take].content.size();
      ++take;
    }
    std::vector<Pending> batch(std::make_move_iterator(pending_.begin()),
                               std::make_move_iterator(pending_.begin() + static_cast<ptrdiff_t>(take)));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(take));
    std::vector<PendingUpdate> updates;
    updates.swap(updates_);
    std::vector<std::string> removals;
    removals.swap(removals_);
    uint64_t failures_seen = flush_failures_;
    lock.unlock();
    Written w = write_batch(std::move(batch), std::move(updates), removals);
    w.failures_seen = failures_seen;
    lock.lock();
    written_.push_back(std::move(w));
    flush_wake_.notify_one();
  }
}

Spool::Written Spool::write_batch(std::vector<Pending> batch, std::vector<PendingUpdate> updates,
                                  const std::vector<std::string>& removals) {
  Written w{std::move(batch), {}, std::move(updates)};
  // Removals first: their files go to the free pool, where this batch may reuse them.
  for (const std::string& id : removals) remove_now(id);
  w.any = !removals.empty();
  w.written.reserve(w.batch.size());
  for (Pending& p : w.batch) {
    w.written.push_back(write_file(p));
    w.any = w.any || w.written.back().ok();
  }
  w.appended.reserve(w.updates.size());
  for (const PendingUpdate& u : w.updates) {
    w.appended.push_back(append_state(u.update));
    w.any = true;
  }
  return w;
}

// Everything written since the last flush becomes durable with one syncfs(2), while the writer
// goes on with the next batch.
void Spool::flush_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    flush_wake_.wait(lock, [&] { return writer_done_ || !written_.empty(); });
    if (written_.empty()) return;  // the writer has stopped and all is flushed
    std::vector<Written> group;
    group.swap(written_);
    lock.unlock();
    bool any = std::any_of(group.begin(), group.end(), [](const Written& w) { return w.any; });
    std::string error;
    if (any && io_.sync(dir_fd_) != 0) error = "cannot flush the queue: " + errno_text();
    lock.lock();
    if (!error.empty()) ++flush_failures_;
    uint64_t failures = flush_failures_;
    lock.unlock();
    for (Written& w : group) {
      // A batch whose writing began before a failed flush returned may have lost pages to it
      // even when its own flush succeeds: the error is reported once, to that flush.
      bool earlier = error.empty() && w.failures_seen != failures;
      complete(w, earlier ? "cannot flush the queue: a flush failed while this batch was written" : error);
    }
    lock.lock();
  }
}

namespace {

// What the dispatcher receives of a message now durable. In place: the receive side leaves
// room for the trace header in the content's buffer.
QueuedMessage durable_message(std::string id, Envelope envelope, std::string header, std::string content,
                              uint64_t content_offset, uint32_t content_crc) {
  content.insert(0, header);
  QueuedMessage m{std::move(id), std::move(envelope), std::move(content)};
  m.state.resize(m.envelope.recipients.size());
  m.arrival = arrival_of(m.id);
  m.content_offset = content_offset;
  m.content_size = m.data.size();
  m.content_crc = content_crc;
  core::HeaderSummary summary = core::summarize_header(std::string_view(m.data).substr(0, core::kMaxHeaderScan));
  m.message_id = std::move(summary.message_id);
  m.subject = std::move(summary.subject);
  return m;
}

}  // namespace

// Answers a flushed batch (`flush_error` empty) or fails it, taking its new files away.
void Spool::complete(Written& w, const std::string& flush_error) {
  if (!flush_error.empty()) {
    for (size_t i = 0; i < w.batch.size(); ++i) {
      if (!w.written[i]) continue;
      ::unlinkat(dir_fd_, w.batch[i].id.c_str(), 0);
      w.written[i] = make_error(flush_error);
    }
    for (auto& a : w.appended) {
      if (a) a = make_error(flush_error);
    }
  }
  for (size_t i = 0; i < w.updates.size(); ++i) {
    if (w.updates[i].done) w.updates[i].done(std::move(w.appended[i]));
  }
  for (size_t i = 0; i < w.batch.size(); ++i) {
    Pending& p = w.batch[i];
    if (!w.written[i]) {
      p.done(std::move(w.written[i]).take_error());
      continue;
    }
    p.done(p.id);
    if (sink_) {
      sink_(durable_message(std::move(p.id), std::move(p.envelope), std::move(p.header), std::move(p.content),
                            p.content_offset, p.content_crc));
    }
  }
}

int64_t arrival_of(std::string_view id) {
  uint64_t micros = 0;
  if (id.size() < 13) return 0;
  auto [p, ec] = std::from_chars(id.data(), id.data() + 13, micros, 16);
  if (ec != std::errc{} || p != id.data() + 13) return 0;
  return static_cast<int64_t>(micros / 1000000);
}

Result<QueuedMessage> parse_queue_file(std::string id, const std::string& bytes) {
  size_t pos = 0;
  auto m = read_queue_file(std::move(id), bytes.size(), [&](char* buf, size_t n) -> ssize_t {
    n = std::min(n, bytes.size() - pos);
    std::memcpy(buf, bytes.data() + pos, n);
    pos += n;
    return static_cast<ssize_t>(n);
  });
  if (m) m->data = bytes.substr(m->content_offset, m->content_size);
  return m;
}

namespace {

// `n` octets of a message's content from `offset`, read from its file.
Result<std::string> read_content(int dir_fd, const QueuedMessage& m, uint64_t offset, uint64_t n) {
  auto opened = open_regular(dir_fd, m.id, O_RDONLY);
  if (!opened) return make_error("cannot open queue file " + m.id + ": " + opened.error());
  int fd = *opened;
  std::string out(n, '\0');
  uint64_t done = 0;
  while (done < n) {
    ssize_t got = read_at(fd, out.data() + done, n - done, m.content_offset + offset + done);
    if (got <= 0) {
      std::string why = got < 0 ? errno_text() : "shorter than its content";
      ::close(fd);
      return make_error("cannot read queue file " + m.id + ": " + why);
    }
    done += static_cast<uint64_t>(got);
  }
  ::close(fd);
  if (offset == 0 && n == m.content_size && crc_update(0, out) != m.content_crc) {
    return make_error("queue file " + m.id + " changed: its content does not match its checksum");
  }
  return out;
}

}  // namespace

Result<std::string> Spool::load(const QueuedMessage& m, uint64_t limit) const {
  return read_content(dir_fd_, m, 0, std::min(limit, m.content_size));
}

Result<std::string> Spool::read_range(const QueuedMessage& m, uint64_t offset, uint64_t max_bytes) const {
  if (offset > m.content_size) return make_error("offset " + std::to_string(offset) + " is past the message's end");
  return read_content(dir_fd_, m, offset, std::min(max_bytes, m.content_size - offset));
}

namespace {

// Moves queue entries aside into a subdirectory of the queue, itself never a symbolic link.
class Aside {
 public:
  Aside(int dir_fd, const char* name) : dir_fd_(dir_fd), name_(name) {}
  ~Aside() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Whether `entry` went; else it stays where it is, and the log says why.
  bool move(const std::string& entry) {
    if (fd_ < 0) {
      if (::mkdirat(dir_fd_, name_, 0700) != 0 && errno != EEXIST) return refuse(entry);
      fd_ = open_directory(dir_fd_, name_);
      if (fd_ < 0) return refuse(entry);
    }
    return ::renameat(dir_fd_, entry.c_str(), fd_, entry.c_str()) == 0 || refuse(entry);
  }

 private:
  bool refuse(const std::string& entry) {
    log_line("queue: cannot move " + entry + " into " + name_ + "/: " + errno_text() + "; left in place");
    return false;
  }
  int dir_fd_;
  const char* name_;
  int fd_ = -1;
};

bool is_subdirectory(std::string_view name) {
  // Besides the subdirectories: the reserved files (the clean marker, the dispatcher's list of
  // suspended queues) and their replacements being written.
  std::string_view base = name.ends_with(".new") ? name.substr(0, name.size() - 4) : name;
  return name == "free" || name == "incomplete" || name == "corrupt" || is_reserved_file(base);
}

}  // namespace

Result<Spool::Recovered> Spool::recover() {
  Recovered out;
  auto listed = entries_of(dir_fd_);
  if (!listed) return make_error("cannot list " + dir_.string() + ": " + listed.error());
  std::vector<std::string> ids = std::move(*listed);
  std::erase_if(ids, [](const std::string& n) { return is_subdirectory(n); });
  std::sort(ids.begin(), ids.end());  // ids are time-ordered
  Aside incomplete(dir_fd_, "incomplete"), corrupt(dir_fd_, "corrupt");
  // The marker goes before any delivery starts: a crash from now on must find it missing.
  // Only the first recovery follows the crash; a later one (tests) must not count it again.
  out.after_crash = !clean_at_open_ && !recovered_;
  recovered_ = true;
  if (clean_at_open_) {
    ::unlinkat(dir_fd_, kCleanMarker, 0);
    if (::fsync(dir_fd_) != 0) log_line("queue: cannot flush " + dir_.string() + ": " + errno_text());
    clean_at_open_ = false;
  }
  bool counted = false;
  for (const std::string& id : ids) {
    struct stat st {};
    auto opened = open_regular(dir_fd_, id, O_RDONLY, &st);
    if (!opened && opened.error().starts_with("not a regular file")) {
      // A symbolic link, FIFO, device, directory or hard link planted here: never followed,
      // never read; put aside (the link itself, not what it points to) for the administrator.
      corrupt.move(id);
      out.corrupt.push_back(id + ": " + opened.error());
      continue;
    }
    if (!opened) {
      if (errno == ENOENT) continue;  // gone since the listing
      log_line("queue: " + id + " not recovered now: " + opened.error() + "; left in place");
      continue;
    }
    int fd = *opened;
    Result<QueuedMessage> m = read_queue_file(id, static_cast<uint64_t>(st.st_size), [fd](char* buf, size_t n) {
      return ::read(fd, buf, n);
    });
    ::close(fd);
    if (m && m->removal == QueuedMessage::Removal::kWithoutReport) {
      remove_now(id);  // removed by an administrator just before the stop
      continue;
    }
    if (m) {
      if (out.after_crash && m->in_flight) {
        m->crashes += 1;
        StateUpdate crashed{id};
        crashed.crashes = m->crashes;
        if (auto r = append_state(crashed); !r) log_line("queue: " + r.error());
        counted = true;
      }
      out.messages.push_back(std::move(*m));
      continue;
    }
    if (m.error().starts_with("cannot read")) {
      log_line("queue: " + id + " not recovered now: " + m.error() + "; left in place");
      continue;
    }
    // Incomplete: never acknowledged (the flush had not completed). Anything else is damage
    // to a file that may have been acknowledged: kept apart, named, for the administrator.
    bool is_incomplete = m.error().starts_with("incomplete");
    (is_incomplete ? incomplete : corrupt).move(id);
    (is_incomplete ? out.discarded : out.corrupt).push_back(id + ": " + m.error());
  }
  if (counted && io_.sync(dir_fd_) != 0) log_line("queue: cannot flush the crash counts: " + errno_text());
  return out;
}

}  // namespace starling::queue
