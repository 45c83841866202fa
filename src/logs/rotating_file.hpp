// A log directory of append-only files with one writer thread: the message tracking log and the
// protocol logs. append() only takes a mutex and queues the entry; the writer thread writes it.
// When the queue is full the entry is dropped and counted, so a slow or full disk never slows a
// session or fails a message. A new file starts with each UTC day and when the current one
// reaches MaxFileSize; files older than MaxAge, then the oldest while the directory is over
// MaxDirectorySize, are removed (never the file being written). File names sort by time:
// PREFIX + YYYYMMDD-HHMMSS-ffffff (UTC, microseconds) + ".log".
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace starling::logs {

struct RotationLimits {
  uint64_t max_file_size = 10ull << 20;        // bytes; a file holds at least one entry
  uint64_t max_directory_size = 250ull << 20;  // bytes, all files of this prefix together
  std::chrono::seconds max_age{30 * 24 * 3600};
};

struct RotatingFileOptions {
  std::filesystem::path directory;  // created (0750) if missing
  std::string prefix;               // e.g. "MSGTRK"; only files with it are rotated and pruned
  std::string header;               // written first in every new file ("" for none)
  RotationLimits limits;
  size_t max_queued_bytes = 4u << 20;  // waiting for the writer; beyond this, entries are dropped
  // Called (from the appending thread) for each dropped entry, e.g. to count it in a metric.
  std::function<void()> on_dropped;
  // The clock (Unix microseconds, UTC); tests replace it to cross a day.
  std::function<int64_t()> now_us;
};

class RotatingFile {
 public:
  // Creates the directory if needed and starts the writer thread. The first entry goes on in
  // the newest file of the prefix if it is of today and under MaxFileSize.
  static Result<std::unique_ptr<RotatingFile>> open(RotatingFileOptions options);
  // Writes what is queued, then stops the writer.
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // Queues one entry: complete lines, each ending in '\n'. Any thread; never waits for the disk.
  // Returns false when the entry was dropped (queue full, or the writer has stopped).
  bool append(std::string entry);
  // Applies from the writer's next step, pruning at once.
  void set_limits(RotationLimits limits);
  // Waits (at most `timeout`) until every entry appended and every change of limits made before
  // the call has been written (or dropped) and applied.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Entries dropped since open (queue full, or a write error).
  uint64_t dropped() const;

 private:
  struct State;
  explicit RotatingFile(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The files of `prefix` in `directory`, oldest first (by name: the names sort by time).
std::vector<std::filesystem::path> list_log_files(const std::filesystem::path& directory,
                                                  std::string_view prefix);
// When a file of list_log_files was started (Unix microseconds, from its name).
int64_t log_file_start_us(const std::filesystem::path& file, std::string_view prefix);

}  // namespace starling::logs
