#include "queue/spool.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
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

void Spool::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty() && stopping_) return;
    std::vector<Pending> batch;
    batch.swap(pending_);
    lock.unlock();

    std::vector<Result<void>> written;
    written.reserve(batch.size());
    bool any = false;
    for (const Pending& p : batch) {
      written.push_back(write_file(p));
      any = any || written.back().ok();
    }
    // One flush makes every file of the batch, and its directory entry, durable.
    if (any && io_.sync(dir_fd_) != 0) {
      std::string why = "cannot flush the queue: " + errno_text();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!written[i]) continue;
        ::unlinkat(dir_fd_, batch[i].id.c_str(), 0);
        written[i] = make_error(why);
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (written[i]) {
        batch[i].done(batch[i].id);
        if (sink_) {
          Pending& p = batch[i];
          p.header += p.content;
          sink_(QueuedMessage{std::move(p.id), std::move(p.envelope), std::move(p.header)});
        }
      } else {
        batch[i].done(std::move(written[i]).take_error());
      }
    }
    lock.lock();
  }
}

Result<QueuedMessage> parse_queue_file(std::string id, const std::string& bytes) {
  if (!bytes.starts_with(kMagic)) return make_error("not a queue file");
  if (!bytes.ends_with(kTrailer)) return make_error("incomplete (no trailer)");
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
      size = std::stoull(std::string(line.substr(5)));
      fields_end = pos;
    } else if (line.starts_with("crc32 ")) {
      crc = static_cast<uint32_t>(std::stoul(std::string(line.substr(6)), nullptr, 16));
      have_crc = true;
    } else {
      return make_error("unknown header line");
    }
  }
  if (!have_from || m.envelope.recipients.empty() || size == std::string::npos || !have_crc) {
    return make_error("header lacks from, rcpt, size or crc32");
  }
  if (bytes.size() != pos + size + kTrailer.size()) return make_error("size does not match");
  std::string_view fields(bytes.data() + fields_start, fields_end - fields_start);
  std::string_view data(bytes.data() + pos, size);
  if (crc_of(fields, data, {}) != crc) return make_error("checksum does not match");
  m.data = std::string(data);
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
    std::ifstream in(dir_ / id, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto m = parse_queue_file(id, ss.str());
    if (m) {
      out.messages.push_back(std::move(*m));
      continue;
    }
    // Never acknowledged (the flush had not completed): keep it aside for inspection.
    std::filesystem::create_directories(dir_ / "incomplete", ec);
    std::filesystem::rename(dir_ / id, dir_ / "incomplete" / id, ec);
    out.discarded.push_back(id + ": " + m.error());
  }
  return out;
}

void Spool::remove(const std::string& id) {
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

}  // namespace starling::queue
