// The message tracking log on disk (docs/tracking.md): DIR/logs/tracking/MSGTRK*.log, one JSON
// object per line with the fields of Exchange's message tracking log, written by a RotatingFile,
// and the search behind get-message-tracking-log. Entries are bounded (each text field, and at
// most kRecipientsPerEntry recipients: a longer list is written as several entries of the same
// event), so a reader can bound the lines it accepts. The search streams the files oldest first
// and keeps only what it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/transport_settings.hpp"
#include "logs/rotating_file.hpp"
#include "logs/tracking.hpp"

namespace starling::logs {

inline constexpr std::string_view kTrackingPrefix = "MSGTRK";
inline constexpr size_t kRecipientsPerEntry = 100;
inline constexpr size_t kMaxFieldOctets = 1000;     // of one text field as written
inline constexpr size_t kMaxEntryOctets = 1 << 20;  // longer lines are skipped when reading

// The event ids of EXCHANGE-MODEL §8, as written and as --event-id takes them.
bool is_tracking_event_id(std::string_view id);

// The fields of one event, in the order of the file (text fields bounded at kMaxFieldOctets).
nlohmann::ordered_json tracking_entry_json(const TrackingEvent& event);
// The line(s) of one event, each ending in '\n'.
std::string format_tracking_entry(const TrackingEvent& event);
// One line (without its '\n'); an error for anything that is not an entry.
Result<TrackingEvent> parse_tracking_entry(std::string_view line);
// "2026-12-01T21:54:16.123456Z".
std::string format_timestamp(int64_t unix_us);

TrackingSettings tracking_settings(const core::TransportSettings& transport);

// The Tracker of starlingd: formats in the caller's thread (cheap), writes in the file's.
class TrackingLog : public Tracker {
 public:
  static Result<std::shared_ptr<TrackingLog>> open(const std::filesystem::path& directory,
                                                   const TrackingSettings& settings);
  void record(TrackingEvent event) override;
  void configure(const TrackingSettings& settings) override;
  bool flush(std::chrono::milliseconds timeout) override;
  uint64_t dropped() const { return file_->dropped(); }

 private:
  explicit TrackingLog(std::unique_ptr<RotatingFile> file, bool enabled);
  std::unique_ptr<RotatingFile> file_;
  std::atomic<bool> enabled_;
};

struct TrackingQuery {
  std::optional<int64_t> start_us;  // inclusive
  std::optional<int64_t> end_us;    // exclusive
  std::string event_id, sender, message_id, internal_message_id;  // "" matches any
  std::vector<std::string> recipients;  // any of them; empty matches any
  std::optional<size_t> result_size = 1000;  // nullopt: unlimited (still kMaxUnlimitedResults)
};

// What "unlimited" still stops at: the reply is one message in memory on both sides.
inline constexpr size_t kMaxUnlimitedResults = 100'000;
inline constexpr uint64_t kMaxResultOctets = 64ull << 20;

struct TrackingResult {
  std::vector<TrackingEvent> events;  // the first matches in time order (oldest first)
  bool more = false;                  // more entries matched than were returned
  bool capped = false;                // "unlimited" stopped at kMaxUnlimitedResults / octets
  uint64_t skipped_lines = 0;         // lines that are not entries (or too long)
};

// Reads the files of `directory` oldest first (the last kMaxReadFiles of them), skipping files
// wholly before `start`.
inline constexpr size_t kMaxReadFiles = 10'000;
Result<TrackingResult> search_tracking_log(const std::filesystem::path& directory,
                                           const TrackingQuery& query);

}  // namespace starling::logs
