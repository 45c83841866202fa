#include "logs/rotating_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/log.hpp"

namespace starling::logs {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kUsPerSecond = 1'000'000;
constexpr int64_t kUsPerDay = 86'400 * kUsPerSecond;
// Age pruning also runs when nothing is written.
constexpr auto kPruneInterval = std::chrono::seconds(60);
// A directory of millions of tiny files would make every reader slow: beyond this many, the
// oldest go whatever the limits say (10,000 files of the default 10 MB is far over 250 MB).
constexpr size_t kMaxFiles = 10'000;

int64_t system_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0 ? 1 : 0); }

// PREFIX + "YYYYMMDD-HHMMSS-ffffff.log": fixed width, so names sort as the times do.
std::string file_name(const std::string& prefix, int64_t now_us) {
  std::time_t seconds = floor_div(now_us, kUsPerSecond);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[96];  // room for any int the format could print
  std::snprintf(text, sizeof text, "%04d%02d%02d-%02d%02d%02d-%06lld.log", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(now_us - seconds * kUsPerSecond));
  return prefix + text;
}

// When a file was started, from its name (Unix microseconds); -1 if the name is not one of ours.
int64_t time_of_name(const std::string& name, size_t prefix_size) {
  if (name.size() != prefix_size + 26) return -1;
  std::tm tm{};
  const char* rest = ::strptime(name.c_str() + prefix_size, "%Y%m%d-%H%M%S-", &tm);
  if (rest == nullptr) return -1;
  char* end = nullptr;
  long long micros = std::strtoll(rest, &end, 10);
  if (end != rest + 6 || std::strcmp(end, ".log") != 0 || micros < 0) return -1;
  return int64_t{::timegm(&tm)} * kUsPerSecond + micros;
}

bool is_log_name(const std::string& name, std::string_view prefix) {
  return name.starts_with(prefix) && time_of_name(name, prefix.size()) >= 0;
}

int64_t mtime_us(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * kUsPerSecond + st.st_mtim.tv_nsec / 1000;
}

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

struct RotatingFile::State {
  RotatingFileOptions options;

  // Shared between the appenders and the writer.
  mutable std::mutex mutex;
  std::condition_variable wake, progressed;
  std::vector<std::string> queue;
  size_t queued_bytes = 0;
  // Appends and changes of limits requested, and those the writer has finished: for flush().
  uint64_t requested = 0, finished = 0;
  bool stopping = false, limits_changed = false;
  std::atomic<uint64_t> dropped{0};

  // The writer's own.
  struct File {
    std::string name;
    uint64_t size = 0;
    int64_t last_write_us = 0;
  };
  std::deque<File> closed;  // oldest first; the current file is not among them
  uint64_t closed_bytes = 0;
  int fd = -1;
  File current;
  int64_t current_day = -1;
  bool current_has_entries = false;
  std::string pending;  // the batch's bytes for the current file
  uint64_t pending_entries = 0;
  bool error_reported = false;
  int64_t last_prune_us = 0;
  std::thread writer;

  int64_t now() const { return options.now_us ? options.now_us() : system_now_us(); }
  void count_drop(uint64_t n) {
    dropped += n;
    if (options.on_dropped) {
      for (uint64_t i = 0; i < n; ++i) options.on_dropped();
    }
  }

  void load_existing();
  void run();
  void write_entry(const std::string& entry, const RotationLimits& limits);
  void write_pending();
  void start_file(int64_t now_us);
  void close_current(int64_t now_us);
  void prune(const RotationLimits& limits, int64_t now_us);
  void remove_oldest();
  void report_error(const std::string& what);
};

void RotatingFile::State::report_error(const std::string& what) {
  // One line per run of failures, not one per entry: a full disk would flood the log.
  if (error_reported) return;
  error_reported = true;
  log_line(LogLevel::kWarning, "log " + options.directory.string() + ": " + what +
                                   "; entries are dropped until it works again");
}

void RotatingFile::State::load_existing() {
  for (const fs::path& path : list_log_files(options.directory, options.prefix)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    closed.push_back({path.filename().string(), static_cast<uint64_t>(st.st_size), mtime_us(st)});
    closed_bytes += static_cast<uint64_t>(st.st_size);
  }
  if (closed.empty()) return;
  // Go on writing today's newest file after a restart rather than starting one per start.
  const File& newest = closed.back();
  int64_t day = floor_div(now(), kUsPerDay);
  if (floor_div(time_of_name(newest.name, options.prefix.size()), kUsPerDay) != day ||
      newest.size >= options.limits.max_file_size) {
    return;
  }
  int fd_newest = ::open((options.directory / newest.name).c_str(),
                         O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd_newest < 0) return;
  fd = fd_newest;
  current = newest;
  current_day = day;
  current_has_entries = newest.size > options.header.size();
  closed_bytes -= newest.size;
  closed.pop_back();
}

void RotatingFile::State::close_current(int64_t now_us) {
  if (fd < 0) return;
  ::close(fd);
  fd = -1;
  current.last_write_us = now_us;
  closed.push_back(current);
  closed_bytes += current.size;
  current = {};
}

void RotatingFile::State::start_file(int64_t now_us) {
  close_current(now_us);
  std::error_code ec;
  fs::create_directories(options.directory, ec);
  // Names must keep sorting as the files were written, even with tiny files (two in one
  // microsecond) or a clock that went back: never before the newest file.
  int64_t start = now_us;
  if (!closed.empty()) {
    start = std::max(start, time_of_name(closed.back().name, options.prefix.size()) + 1);
  }
  for (int64_t t = start; t < start + 1000; ++t) {
    std::string name = file_name(options.prefix, t);
    int new_fd = ::open((options.directory / name).c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (new_fd < 0 && errno == EEXIST) continue;
    if (new_fd < 0) {
      report_error(std::string("cannot create ") + name + ": " + std::strerror(errno));
      return;
    }
    fd = new_fd;
    current = {name, 0, now_us};
    // The clock's day, not the name's: after a clock went back, one new file, not one per entry.
    current_day = floor_div(now_us, kUsPerDay);
    current_has_entries = false;
    pending = options.header;
    return;
  }
  report_error("no free file name");
}

void RotatingFile::State::write_pending() {
  if (pending.empty()) return;
  if (fd >= 0) {
    if (Result<void> r = write_all(fd, pending); r) {
      current.size += pending.size();
      error_reported = false;
    } else {
      report_error("cannot write " + current.name + ": " + r.error());
      count_drop(pending_entries);
      // The next entry starts a fresh file: this one may end in half an entry.
      close_current(now());
    }
  } else {
    count_drop(pending_entries);
  }
  pending.clear();
  pending_entries = 0;
}

void RotatingFile::State::write_entry(const std::string& entry, const RotationLimits& limits) {
  if (entry.empty()) return;
  int64_t now_us = now();
  uint64_t size = current.size + pending.size();
  bool full = current_has_entries && size + entry.size() > limits.max_file_size;
  if (fd < 0 || full || floor_div(now_us, kUsPerDay) != current_day) {
    write_pending();
    start_file(now_us);
    prune(limits, now_us);
  }
  pending += entry;
  ++pending_entries;
  current_has_entries = true;
}

void RotatingFile::State::remove_oldest() {
  const File& oldest = closed.front();
  std::error_code ec;
  fs::remove(options.directory / oldest.name, ec);  // already gone (an administrator): fine
  closed_bytes -= oldest.size;
  closed.pop_front();
}

void RotatingFile::State::prune(const RotationLimits& limits, int64_t now_us) {
  last_prune_us = now_us;
  int64_t max_age_us = limits.max_age.count() * kUsPerSecond;
  while (!closed.empty() && closed.front().last_write_us < now_us - max_age_us) remove_oldest();
  uint64_t current_size = current.size + pending.size();
  while (!closed.empty() &&
         (closed_bytes + current_size > limits.max_directory_size || closed.size() >= kMaxFiles)) {
    remove_oldest();
  }
}

void RotatingFile::State::run() {
  std::vector<std::string> batch;
  for (;;) {
    RotationLimits limits;
    bool prune_now = false, stop = false;
    uint64_t taken = 0;
    {
      std::unique_lock lock(mutex);
      wake.wait_for(lock, kPruneInterval,
                    [&] { return !queue.empty() || stopping || limits_changed; });
      batch.swap(queue);
      queued_bytes = 0;
      limits = options.limits;
      prune_now = limits_changed;
      limits_changed = false;
      stop = stopping;
      taken = requested;
    }
    for (const std::string& entry : batch) write_entry(entry, limits);
    write_pending();
    int64_t now_us = now();
    uint64_t total = closed_bytes + current.size;
    if (prune_now || total > limits.max_directory_size ||
        now_us - last_prune_us >= kPruneInterval.count() * kUsPerSecond) {
      prune(limits, now_us);
    }
    {
      std::lock_guard lock(mutex);
      finished = taken;
      progressed.notify_all();
      if (stop && queue.empty()) break;
    }
    batch.clear();
  }
  if (fd >= 0) ::close(fd);
}

RotatingFile::RotatingFile(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<RotatingFile>> RotatingFile::open(RotatingFileOptions options) {
  std::error_code ec;
  fs::create_directories(options.directory, ec);
  if (ec) return make_error("cannot create " + options.directory.string() + ": " + ec.message());
  if (!fs::is_directory(options.directory, ec)) {
    return make_error(options.directory.string() + " is not a directory");
  }
  fs::permissions(options.directory, fs::perms::owner_all | fs::perms::group_read |
                                         fs::perms::group_exec, ec);
  auto state = std::make_unique<State>();
  state->options = std::move(options);
  state->load_existing();
  state->last_prune_us = 0;  // prune once at start: limits may have shrunk while stopped
  State* raw = state.get();
  raw->writer = std::thread([raw] { raw->run(); });
  return std::unique_ptr<RotatingFile>(new RotatingFile(std::move(state)));
}

RotatingFile::~RotatingFile() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_one();
  state_->writer.join();
}

bool RotatingFile::append(std::string entry) {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    // Each entry also costs its string and slot: counted, so that empty entries are bounded too.
    size_t cost = entry.size() + sizeof(std::string);
    if (!s.stopping && s.queued_bytes + cost <= s.options.max_queued_bytes) {
      s.queued_bytes += cost;
      s.queue.push_back(std::move(entry));
      ++s.requested;
      s.wake.notify_one();
      return true;
    }
  }
  s.count_drop(1);
  return false;
}

void RotatingFile::set_limits(RotationLimits limits) {
  {
    std::lock_guard lock(state_->mutex);
    state_->options.limits = limits;
    state_->limits_changed = true;
    ++state_->requested;
  }
  state_->wake.notify_one();
}

bool RotatingFile::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  uint64_t target = state_->requested;
  return state_->progressed.wait_for(lock, timeout,
                                     [&] { return state_->finished >= target; });
}

uint64_t RotatingFile::dropped() const { return state_->dropped.load(); }

std::vector<fs::path> list_log_files(const fs::path& directory, std::string_view prefix) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (is_log_name(name, prefix)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

int64_t log_file_start_us(const fs::path& file, std::string_view prefix) {
  return time_of_name(file.filename().string(), prefix.size());
}

}  // namespace starling::logs
