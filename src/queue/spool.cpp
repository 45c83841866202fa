#include "queue/spool.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace starling::queue {
namespace {

constexpr std::string_view kMagic = "STARLING-QUEUE 1\n";
constexpr std::string_view kTrailer = "\nEND\n";

std::string errno_text() { return std::strerror(errno); }

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const std::filesystem::path& dir, SpoolIo io) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir.string() + ": " + ec.message());
  std::filesystem::create_directories(dir / "free", ec);
  if (ec) return make_error("cannot create " + (dir / "free").string() + ": " + ec.message());
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open " + dir.string() + ": " + errno_text());
  int free_fd = ::open((dir / "free").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (free_fd < 0) {
    ::close(fd);
    return make_error("cannot open " + (dir / "free").string() + ": " + errno_text());
  }
  return std::unique_ptr<Spool>(new Spool(dir, fd, free_fd, std::move(io)));
}

Spool::Spool(std::filesystem::path dir, int dir_fd, int free_fd, SpoolIo io)
    : dir_(std::move(dir)), dir_fd_(dir_fd), free_fd_(free_fd), io_(std::move(io)) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "free", ec)) {
    if (free_.size() >= kMaxFree) break;
    if (e.is_regular_file()) free_.push_back(e.path().filename().string());
  }
  writer_ = std::thread([this] { run(); });
}

Spool::~Spool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  ::close(dir_fd_);
  ::close(free_fd_);
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

namespace {

uint32_t crc_of(std::string_view fields, std::string_view a, std::string_view b) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::string_view part : {fields, a, b}) {
    if (part.empty()) continue;  // crc32() with a null buffer returns the initial value
    crc = crc32(crc, reinterpret_cast<const Bytef*>(part.data()), static_cast<uInt>(part.size()));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

Result<void> Spool::write_file(const Pending& p) {
  std::string fields = "from " + p.envelope.mail_from + "\n";
  for (const auto& r : p.envelope.recipients) fields += "rcpt " + r + "\n";
  fields += "size " + std::to_string(p.header.size() + p.content.size()) + "\n";
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32 %08X\n\n", crc_of(fields, p.header, p.content));
  std::string head = std::string(kMagic) + fields + crc;
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
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      recycled = std::move(free_.back());
      free_.pop_back();
    }
  }
  int fd = -1;
  if (!recycled.empty()) {
    fd = ::openat(free_fd_, recycled.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) recycled.clear();
  }
  if (fd < 0) fd = ::openat(dir_fd_, p.id.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
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
    if (::ftruncate(fd, static_cast<off_t>(total)) != 0 ||
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

// A reply kept on one state line: no line ends, bounded.
std::string one_line(std::string_view text) {
  std::string out(text.substr(0, 1000));
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

std::string state_line(std::string_view payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  char head[16];
  std::snprintf(head, sizeof head, "S %08X ", static_cast<unsigned>(crc));
  return head + std::string(payload) + "\n";
}

template <typename T>
bool parse_number(std::string_view text, T& out, int base = 10) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return !text.empty() && ec == std::errc{} && p == text.data() + text.size();
}

// Next space-separated word of `rest` (consumed).
std::string_view word(std::string_view& rest) {
  size_t sp = rest.find(' ');
  std::string_view w = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  return w;
}

// Applies the state lines after the trailer; stops at the first torn or damaged line.
void apply_state_lines(std::string_view lines, QueuedMessage& m) {
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    if (nl == std::string_view::npos) return;  // torn: never flushed
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl + 1);
    if (line.size() < 11 || !line.starts_with("S ") || line[10] != ' ') return;
    uint32_t crc = 0;
    if (!parse_number(line.substr(2, 8), crc, 16)) return;
    std::string_view payload = line.substr(11);
    uLong actual = crc32(0L, Z_NULL, 0);
    actual = crc32(actual, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
    if (actual != crc) return;
    std::string_view kind = word(payload);
    if (kind == "d") {
      m.delay_notified = true;
      continue;
    }
    if (kind != "r") return;
    size_t index = 0;
    RecipientState st;
    std::string_view status = word(payload);
    if (!parse_number(word(payload), index) || index >= m.state.size() || status.size() != 1 ||
        std::string_view("PDF").find(status[0]) == std::string_view::npos) {
      // Written by this code, checksummed: a mismatch is damage. Skip rather than guess.
      continue;
    }
    st.status = static_cast<RecipientState::Status>(status[0]);
    if (!parse_number(word(payload), st.attempts) || !parse_number(word(payload), st.next_attempt)) continue;
    st.last_reply = std::string(payload);
    m.state[index] = std::move(st);
  }
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
  if (text.empty()) return {};
  int fd = ::openat(dir_fd_, u.id.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};  // already removed
    return make_error("cannot open queue file " + u.id + ": " + errno_text());
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? errno_text() : "short write";
      ::close(fd);
      return make_error("cannot record delivery state of " + u.id + ": " + why);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::close(fd);
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
    std::vector<Pending> batch;
    batch.swap(pending_);
    std::vector<PendingUpdate> updates;
    updates.swap(updates_);
    std::vector<std::string> removals;
    removals.swap(removals_);
    lock.unlock();

    // Removals first: their files go to the free pool, where this batch may reuse them.
    for (const std::string& id : removals) remove_now(id);
    std::vector<Result<void>> written;
    written.reserve(batch.size());
    bool any = !removals.empty();
    for (const Pending& p : batch) {
      written.push_back(write_file(p));
      any = any || written.back().ok();
    }
    std::vector<Result<void>> appended;
    appended.reserve(updates.size());
    for (const PendingUpdate& u : updates) {
      appended.push_back(append_state(u.update));
      any = true;
    }
    // One flush makes every file of the batch, and its directory entry, durable.
    if (any && io_.sync(dir_fd_) != 0) {
      std::string why = "cannot flush the queue: " + errno_text();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!written[i]) continue;
        ::unlinkat(dir_fd_, batch[i].id.c_str(), 0);
        written[i] = make_error(why);
      }
      for (auto& a : appended) {
        if (a) a = make_error(why);
      }
    }
    for (size_t i = 0; i < updates.size(); ++i) {
      if (updates[i].done) updates[i].done(std::move(appended[i]));
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (written[i]) {
        batch[i].done(batch[i].id);
        if (sink_) {
          Pending& p = batch[i];
          p.header += p.content;
          QueuedMessage m{std::move(p.id), std::move(p.envelope), std::move(p.header)};
          m.state.resize(m.envelope.recipients.size());
          m.arrival = arrival_of(m.id);
          sink_(std::move(m));
        }
      } else {
        batch[i].done(std::move(written[i]).take_error());
      }
    }
    lock.lock();
  }
}

int64_t arrival_of(std::string_view id) {
  uint64_t micros = 0;
  if (id.size() < 13 || !parse_number(id.substr(0, 13), micros, 16)) return 0;
  return static_cast<int64_t>(micros / 1000000);
}

Result<QueuedMessage> parse_queue_file(std::string id, const std::string& bytes) {
  if (kMagic.starts_with(bytes)) return make_error("incomplete (empty)");
  if (!bytes.starts_with(kMagic)) return make_error("not a queue file");
  QueuedMessage m;
  m.id = std::move(id);
  size_t pos = kMagic.size();
  size_t size = std::string::npos;
  size_t fields_start = pos, fields_end = 0;
  uint32_t crc = 0;
  bool have_from = false, have_crc = false;
  while (true) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string::npos) return make_error("incomplete header");
    std::string_view line(bytes.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) break;
    if (line.starts_with("from ")) {
      m.envelope.mail_from = std::string(line.substr(5));
      have_from = true;
    } else if (line.starts_with("rcpt ")) {
      m.envelope.recipients.emplace_back(line.substr(5));
    } else if (line.starts_with("size ")) {
      if (!parse_number(line.substr(5), size)) return make_error("bad size line");
      fields_end = pos;
    } else if (line.starts_with("crc32 ")) {
      if (!parse_number(line.substr(6), crc, 16)) return make_error("bad crc32 line");
      have_crc = true;
    } else {
      return make_error("unknown header line");
    }
  }
  if (size != std::string::npos && (size > bytes.size() || bytes.size() - size < pos + kTrailer.size())) {
    return make_error("incomplete (shorter than its size)");
  }
  if (!have_from || m.envelope.recipients.empty() || size == std::string::npos || !have_crc) {
    return make_error("header lacks from, rcpt, size or crc32");
  }
  if (std::string_view(bytes).substr(pos + size, kTrailer.size()) != kTrailer) {
    return make_error("incomplete (no trailer)");
  }
  std::string_view fields(bytes.data() + fields_start, fields_end - fields_start);
  std::string_view data(bytes.data() + pos, size);
  if (crc_of(fields, data, {}) != crc) return make_error("checksum does not match");
  m.data = std::string(data);
  m.state.resize(m.envelope.recipients.size());
  apply_state_lines(std::string_view(bytes).substr(pos + size + kTrailer.size()), m);
  m.arrival = arrival_of(m.id);
  return m;
}

Result<Spool::Recovered> Spool::recover() {
  Recovered out;
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.is_regular_file()) ids.push_back(e.path().filename().string());
  }
  if (ec) return make_error("cannot list " + dir_.string() + ": " + ec.message());
  std::sort(ids.begin(), ids.end());  // ids are time-ordered
  for (const std::string& id : ids) {
    // A file far larger than any message a connector accepts is not read into memory.
    constexpr uintmax_t kMaxFile = 1ull << 31;
    Result<QueuedMessage> m = make_error("larger than 2 GiB");
    if (std::filesystem::file_size(dir_ / id, ec) <= kMaxFile && !ec) {
      std::ifstream in(dir_ / id, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      m = parse_queue_file(id, ss.str());
    }
    if (m) {
      out.messages.push_back(std::move(*m));
      continue;
    }
    // Incomplete: never acknowledged (the flush had not completed). Anything else is damage
    // to a file that may have been acknowledged: kept apart, named, for the administrator.
    bool incomplete = m.error().starts_with("incomplete");
    const char* aside = incomplete ? "incomplete" : "corrupt";
    std::filesystem::create_directories(dir_ / aside, ec);
    std::filesystem::rename(dir_ / id, dir_ / aside / id, ec);
    (incomplete ? out.discarded : out.corrupt).push_back(id + ": " + m.error());
  }
  return out;
}

}  // namespace starling::queue
