#include "logs/tracking_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <span>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/names.hpp"
#include "core/time_format.hpp"
#include "metrics/metrics.hpp"

namespace starling::logs {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
namespace {

constexpr std::array<std::string_view, 12> kEventIds{
    "RECEIVE", "SUBMIT", "RESOLVE", "EXPAND", "SEND", "DELIVER",
    "DEFER", "FAIL", "DSN", "POISONMESSAGE", "RESUBMIT", "BADMAIL"};
// An entry is written a little after its timestamp: a file started after --end may still hold
// entries from before it.
constexpr int64_t kWriteLagUs = 300'000'000;

std::string_view bounded(std::string_view s) {
  if (s.size() <= kMaxFieldOctets) return s;
  size_t n = kMaxFieldOctets;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not half a character
  return s.substr(0, n);
}

// Text JSON writes as it is, between quotes: printable ASCII but the quote and the backslash.
bool json_plain(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; });
}

// A JSON string exactly as nlohmann's dump(-1, ' ', false, replace) writes it. Nearly every field
// is plain and is copied; the rest (controls, quotes, 8-bit text that need not be UTF-8, which
// becomes U+FFFD rather than an exception) goes through the library, so the bytes stay its own.
void append_json_string(std::string& out, std::string_view s) {
  s = bounded(s);
  if (!json_plain(s)) {
    out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_json_list(std::string& out, const std::vector<std::string>& all) {
  out += '[';
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, all[i]);
  }
  out += ']';
}

void append_json_number(std::string& out, uint64_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, end);
}

using TextField = std::pair<std::string_view, std::string TrackingEvent::*>;
// The text fields before the recipients and after the counts, in the file's order.
constexpr TextField kLeadingFields[] = {
    {",\"ClientIp\":", &TrackingEvent::client_ip},
    {",\"ClientHostname\":", &TrackingEvent::client_hostname},
    {",\"ServerIp\":", &TrackingEvent::server_ip},
    {",\"ServerHostname\":", &TrackingEvent::server_hostname},
    {",\"ConnectorId\":", &TrackingEvent::connector_id},
    {",\"Source\":", &TrackingEvent::source},
    {",\"EventId\":", &TrackingEvent::event_id},
    {",\"InternalMessageId\":", &TrackingEvent::internal_message_id},
    {",\"MessageId\":", &TrackingEvent::message_id}};
constexpr TextField kTrailingFields[] = {
    {",\"Reference\":", &TrackingEvent::reference},
    {",\"MessageSubject\":", &TrackingEvent::message_subject},
    {",\"Sender\":", &TrackingEvent::sender},
    {",\"ReturnPath\":", &TrackingEvent::return_path},
    {",\"MessageInfo\":", &TrackingEvent::message_info}};

void append_text_fields(std::string& out, const TrackingEvent& e, std::span<const TextField> fields) {
  for (const auto& [key, member] : fields) {
    out += key;
    append_json_string(out, e.*member);
  }
}

// The entry's line, written directly rather than built as a JSON object and dumped (one entry
// per message and per delivery: the object cost more than the rest of the record). Field order
// and escaping are the library's: tracking_log_test holds the two side by side.
std::string one_line(const TrackingEvent& e) {
  std::string out;
  out.reserve(640);
  out += "{\"Timestamp\":\"";
  core::append_iso8601(out, e.timestamp_us, core::TimePrecision::kMicroseconds);
  out += '"';
  append_text_fields(out, e, kLeadingFields);
  out += ",\"Recipients\":";
  append_json_list(out, e.recipients);
  out += ",\"RecipientStatus\":";
  append_json_list(out, e.recipient_status);
  out += ",\"TotalBytes\":";
  append_json_number(out, e.total_bytes);
  out += ",\"RecipientCount\":";
  append_json_number(out, e.recipients.size());
  append_text_fields(out, e, kTrailingFields);
  out += "}\n";
  return out;
}

// The recipients [from, from + kRecipientsPerEntry) of `e`, and their status.
TrackingEvent part_of(const TrackingEvent& e, size_t from) {
  TrackingEvent part = e;
  auto slice = [&](const std::vector<std::string>& all) {
    size_t begin = std::min(from, all.size()), end = std::min(from + kRecipientsPerEntry, all.size());
    return std::vector<std::string>(all.begin() + begin, all.begin() + end);
  };
  part.recipients = slice(e.recipients);
  part.recipient_status = slice(e.recipient_status);
  return part;
}

Result<int64_t> parse_timestamp(const std::string& text) {
  std::tm tm{};
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return make_error("bad Timestamp");
  int64_t micros = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits) {
      if (digits < 6) micros = micros * 10 + (*rest - '0');
    }
    if (digits == 0) return make_error("bad Timestamp");
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (std::strcmp(rest, "Z") != 0) return make_error("bad Timestamp");
  return int64_t{::timegm(&tm)} * 1'000'000 + micros;
}

std::string text_of(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> list_of(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const Json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string_view without_brackets(std::string_view id) {
  if (id.size() >= 2 && id.front() == '<' && id.back() == '>') return id.substr(1, id.size() - 2);
  return id;
}

bool matches(const TrackingQuery& q, const TrackingEvent& e) {
  if (q.start_us && e.timestamp_us < *q.start_us) return false;
  if (q.end_us && e.timestamp_us >= *q.end_us) return false;
  if (!q.event_id.empty() && !core::iequals(q.event_id, e.event_id)) return false;
  if (!q.sender.empty() && !core::iequals(q.sender, e.sender)) return false;
  if (!q.internal_message_id.empty() && q.internal_message_id != e.internal_message_id) return false;
  if (!q.message_id.empty() && without_brackets(q.message_id) != without_brackets(e.message_id)) {
    return false;
  }
  if (q.recipients.empty()) return true;
  return std::any_of(e.recipients.begin(), e.recipients.end(), [&](const std::string& r) {
    return std::any_of(q.recipients.begin(), q.recipients.end(),
                       [&](const std::string& wanted) { return core::iequals(r, wanted); });
  });
}

// A needle every matching line contains as written (JSON escapes aside), to skip parsing the
// others: the exact-match filters only, and only text JSON writes unescaped.
std::vector<std::string> needles(const TrackingQuery& q) {
  std::vector<std::string> out;
  if (!q.internal_message_id.empty() && json_plain(q.internal_message_id)) out.push_back(q.internal_message_id);
  std::string_view id = without_brackets(q.message_id);
  if (!id.empty() && json_plain(id)) out.emplace_back(id);
  return out;
}

// Reads `file` line by line with lines bounded at kMaxEntryOctets; `on_line` returns false to stop.
template <typename OnLine>
Result<bool> each_line(const fs::path& file, TrackingResult& result, OnLine on_line) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) return true;  // pruned meanwhile
  if (fd < 0) return make_error("cannot read " + file.string() + ": " + std::strerror(errno));
  std::string line, buffer(64 * 1024, '\0');
  bool too_long = false, go_on = true;
  while (go_on) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view chunk(buffer.data(), static_cast<size_t>(n));
    while (go_on && !chunk.empty()) {
      size_t lf = chunk.find('\n');
      std::string_view piece = chunk.substr(0, lf);
      if (!too_long && line.size() + piece.size() > kMaxEntryOctets) too_long = true;
      if (!too_long) line.append(piece);
      if (lf == std::string_view::npos) break;
      chunk.remove_prefix(lf + 1);
      if (too_long) {
        ++result.skipped_lines;
      } else {
        go_on = on_line(std::string_view(line));
      }
      line.clear();
      too_long = false;
    }
  }
  ::close(fd);
  return go_on;  // a last line without '\n' is still being written: not read
}

}  // namespace

bool is_tracking_event_id(std::string_view id) {
  return std::find(kEventIds.begin(), kEventIds.end(), id) != kEventIds.end();
}

std::string format_timestamp(int64_t unix_us) {
  return core::format_iso8601(unix_us, core::TimePrecision::kMicroseconds);
}

// The line is the one definition of the fields and their order; the object is read back from it.
nlohmann::ordered_json tracking_entry_json(const TrackingEvent& e) {
  std::string line = one_line(e);
  line.pop_back();
  return Json::parse(line);
}

std::string format_tracking_entry(const TrackingEvent& event) {
  if (event.recipients.size() <= kRecipientsPerEntry) return one_line(event);
  std::string out;
  for (size_t from = 0; from < event.recipients.size(); from += kRecipientsPerEntry) {
    out += one_line(part_of(event, from));
  }
  return out;
}

Result<TrackingEvent> parse_tracking_entry(std::string_view line) {
  Json j = Json::parse(line, nullptr, false);
  if (!j.is_object()) return make_error("not a JSON object");
  TrackingEvent e;
  auto time = parse_timestamp(text_of(j, "Timestamp"));
  if (!time) return std::move(time).take_error();
  e.timestamp_us = *time;
  e.event_id = text_of(j, "EventId");
  if (e.event_id.empty()) return make_error("no EventId");
  e.client_ip = text_of(j, "ClientIp");
  e.client_hostname = text_of(j, "ClientHostname");
  e.server_ip = text_of(j, "ServerIp");
  e.server_hostname = text_of(j, "ServerHostname");
  e.connector_id = text_of(j, "ConnectorId");
  e.source = text_of(j, "Source");
  e.internal_message_id = text_of(j, "InternalMessageId");
  e.message_id = text_of(j, "MessageId");
  e.recipients = list_of(j, "Recipients");
  e.recipient_status = list_of(j, "RecipientStatus");
  auto bytes = j.find("TotalBytes");
  if (bytes != j.end() && bytes->is_number_unsigned()) e.total_bytes = bytes->get<uint64_t>();
  e.reference = text_of(j, "Reference");
  e.message_subject = text_of(j, "MessageSubject");
  e.sender = text_of(j, "Sender");
  e.return_path = text_of(j, "ReturnPath");
  e.message_info = text_of(j, "MessageInfo");
  return e;
}

TrackingSettings tracking_settings(const core::TransportSettings& t) {
  return {t.message_tracking_log_enabled,
          {t.message_tracking_log_max_file_size, t.message_tracking_log_max_directory_size,
           t.message_tracking_log_max_age}};
}

TrackingLog::TrackingLog(std::unique_ptr<RotatingFile> file, bool enabled)
    : file_(std::move(file)), enabled_(enabled) {}

Result<std::shared_ptr<TrackingLog>> TrackingLog::open(const fs::path& directory,
                                                        const TrackingSettings& settings) {
  RotatingFileOptions options;
  options.directory = directory;
  options.prefix = std::string(kTrackingPrefix);
  options.limits = settings.limits;
  options.on_dropped = [] { metrics::count(metrics::kTrackingDropped); };
  auto file = RotatingFile::open(std::move(options));
  if (!file) return std::move(file).take_error();
  return std::shared_ptr<TrackingLog>(new TrackingLog(std::move(*file), settings.enabled));
}

void TrackingLog::record(TrackingEvent event) {
  if (!enabled_.load(std::memory_order_relaxed)) return;
  file_->append(format_tracking_entry(event));
}

void TrackingLog::configure(const TrackingSettings& settings) {
  enabled_ = settings.enabled;
  file_->set_limits(settings.limits);
}

bool TrackingLog::flush(std::chrono::milliseconds timeout) { return file_->flush(timeout); }

Result<TrackingResult> search_tracking_log(const fs::path& directory, const TrackingQuery& query) {
  std::vector<fs::path> files = list_log_files(directory, kTrackingPrefix);
  if (files.size() > kMaxReadFiles) files.erase(files.begin(), files.end() - kMaxReadFiles);
  size_t limit = query.result_size.value_or(kMaxUnlimitedResults);
  std::vector<std::string> wanted = needles(query);
  TrackingResult result;
  uint64_t octets = 0;
  auto on_line = [&](std::string_view line) {
    for (const std::string& needle : wanted) {
      if (line.find(needle) == std::string_view::npos) return true;
    }
    auto event = parse_tracking_entry(line);
    if (!event) {
      ++result.skipped_lines;
      return true;
    }
    if (!matches(query, *event)) return true;
    if (result.events.size() >= limit) {
      (query.result_size ? result.more : result.capped) = true;
      return false;
    }
    if (octets + line.size() > kMaxResultOctets) {
      result.capped = true;
      return false;
    }
    octets += line.size();
    result.events.push_back(std::move(*event));
    return true;
  };
  for (size_t i = 0; i < files.size(); ++i) {
    // Every entry of a file was written before the next file was started.
    if (query.start_us && i + 1 < files.size() &&
        log_file_start_us(files[i + 1], kTrackingPrefix) <= *query.start_us) {
      continue;
    }
    if (query.end_us && log_file_start_us(files[i], kTrackingPrefix) > *query.end_us + kWriteLagUs) break;
    auto go_on = each_line(files[i], result, on_line);
    if (!go_on) return std::move(go_on).take_error();
    if (!*go_on) break;
  }
  std::stable_sort(result.events.begin(), result.events.end(),
                   [](const TrackingEvent& a, const TrackingEvent& b) { return a.timestamp_us < b.timestamp_us; });
  return result;
}

}  // namespace starling::logs
