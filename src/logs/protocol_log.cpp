#include "logs/protocol_log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <utility>

#include "core/time_format.hpp"

namespace starling::logs {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Exchange's session ids are 16 hex digits. These start from the process's start time in
// microseconds (shifted), so they also grow from one run of the server to the next.
std::string new_session_id() {
  static std::atomic<uint64_t> next{static_cast<uint64_t>(now_us()) << 8};
  std::array<char, 17> text{};
  std::snprintf(text.data(), text.size(), "%016llX",
                static_cast<unsigned long long>(next.fetch_add(1, std::memory_order_relaxed)));
  return text.data();
}

// The length of the UTF-8 sequence starting at s[i] (RFC 3629 §4), or 0 when it is not one.
size_t utf8_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (c >= 0xF5 || n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  unsigned char d = byte(i + 1);
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
  if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
      (c == 0xF4 && d > 0x8F)) {
    return 0;
  }
  return n;
}

bool needs_quotes(std::string_view field) {
  return !field.empty() &&
         (field.find_first_of(",\"") != std::string_view::npos || field.front() == ' ' || field.back() == ' ');
}

void append_field(std::string& out, std::string_view field) {
  if (!needs_quotes(field)) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_time(std::string& out, int64_t time_us) {
  core::append_iso8601(out, time_us, core::TimePrecision::kMilliseconds);
}

bool iequals_prefix(std::string_view line, std::string_view word) {
  if (line.size() < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(line[i])) != word[i]) return false;
  }
  return true;
}

// The SMTP verbs a client says: a line after AUTH that is none of them may be a SASL response
// sent without waiting for 334 (a pipelining client whose AUTH was refused).
bool is_smtp_command(std::string_view line) {
  static constexpr std::array<std::string_view, 15> kVerbs{
      "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT",
      "VRFY", "EXPN", "HELP", "AUTH", "STARTTLS"};
  for (std::string_view verb : kVerbs) {
    if (iequals_prefix(line, verb) && (line.size() == verb.size() || line[verb.size()] == ' ')) return true;
  }
  return false;
}

std::atomic<std::shared_ptr<const ProtocolLog>>& current(ProtocolLogKind kind) {
  static std::atomic<std::shared_ptr<const ProtocolLog>> logs[2];
  return logs[kind == ProtocolLogKind::kReceive ? 0 : 1];
}

}  // namespace

std::string protocol_log_header(ProtocolLogKind kind) {
  return std::string("#Software: Starling\n#Version: 1\n#Log-type: ") +
         (kind == ProtocolLogKind::kReceive ? "SMTP Receive Protocol Log" : "SMTP Send Protocol Log") +
         "\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,"
         "event,data,context\n";
}

std::string_view protocol_log_prefix(ProtocolLogKind kind) {
  return kind == ProtocolLogKind::kReceive ? "RECV" : "SEND";
}

std::string printable(std::string_view text) {
  std::string out;
  size_t end = std::min(text.size(), kMaxDataLength);
  out.reserve(end);
  for (size_t i = 0; i < end;) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t n = utf8_length(text, i);
      if (n > 0 && i + n <= end) {
        out.append(text.substr(i, n));
        i += n;
        continue;
      }
    }
    out += c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c);
    ++i;
  }
  if (text.size() > end) out += "...";
  return out;
}

void append_record(std::string& out, const ProtocolRecord& r) {
  append_time(out, r.time_us);
  out += ',';
  append_field(out, r.connector_id);
  out += ',';
  out += r.session_id;
  out += ',';
  out += std::to_string(r.sequence);
  out += ',';
  out += r.local_endpoint;
  out += ',';
  out += r.remote_endpoint;
  out += ',';
  out += static_cast<char>(r.event);
  out += ',';
  append_field(out, r.data);
  out += ',';
  append_field(out, r.context);
  out += '\n';
}

ProtocolLog::ProtocolLog(ProtocolLogKind kind, std::string server_name, std::function<void(std::string)> write)
    : kind_(kind), server_name_(std::move(server_name)), write_(std::move(write)) {}

std::string ProtocolLog::connector_id(std::string_view connector) const {
  if (kind_ == ProtocolLogKind::kSend || server_name_.empty()) return std::string(connector);
  return server_name_ + "\\" + std::string(connector);
}

void set_protocol_log(ProtocolLogKind kind, std::shared_ptr<const ProtocolLog> log) {
  current(kind).store(std::move(log));
}

std::shared_ptr<const ProtocolLog> protocol_log(ProtocolLogKind kind) { return current(kind).load(); }

Result<std::shared_ptr<const ProtocolLog>> open_protocol_log(ProtocolLogKind kind,
                                                              const std::filesystem::path& data_dir,
                                                              std::string server_name) {
  RotatingFileOptions options;
  options.directory = data_dir / "logs" / "protocol" / (kind == ProtocolLogKind::kReceive ? "receive" : "send");
  options.prefix = std::string(protocol_log_prefix(kind));
  options.header = protocol_log_header(kind);
  options.limits = kProtocolLogLimits;
  auto file = RotatingFile::open(std::move(options));
  if (!file) return make_error("protocol log: " + file.error());
  std::shared_ptr<RotatingFile> writer = std::move(*file);
  return std::shared_ptr<const ProtocolLog>(std::make_shared<ProtocolLog>(
      kind, std::move(server_name), [writer](std::string line) { writer->append(std::move(line)); }));
}

std::string format_endpoint(std::string_view ip, uint16_t port) {
  bool v6 = ip.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" + std::to_string(port);
}

ProtocolSession::ProtocolSession(std::shared_ptr<const ProtocolLog> log, std::string_view connector,
                                 std::string local_endpoint, std::string remote_endpoint)
    : log_(std::move(log)),
      connector_id_(log_->connector_id(connector)),
      session_id_(new_session_id()),
      local_(std::move(local_endpoint)),
      remote_(std::move(remote_endpoint)),
      client_event_(log_->kind() == ProtocolLogKind::kReceive ? ProtocolEvent::kReceived : ProtocolEvent::kSent) {}

void ProtocolSession::emit(ProtocolEvent event, std::string_view data, std::string_view context) {
  std::string line;
  line.reserve(96 + connector_id_.size() + data.size() + context.size());
  append_record(line, {now_us(), connector_id_, session_id_, sequence_++, local_, remote_, event, data, context});
  log_->write(std::move(line));
}

void ProtocolSession::connected() { emit(ProtocolEvent::kConnect, {}, {}); }

void ProtocolSession::disconnected(std::string_view context) { emit(ProtocolEvent::kDisconnect, {}, context); }

void ProtocolSession::sent(std::string_view line) {
  client_event_ == ProtocolEvent::kSent ? client_line(ProtocolEvent::kSent, line)
                                        : server_line(ProtocolEvent::kSent, line);
}

void ProtocolSession::received(std::string_view line) {
  client_event_ == ProtocolEvent::kReceived ? client_line(ProtocolEvent::kReceived, line)
                                            : server_line(ProtocolEvent::kReceived, line);
}

void ProtocolSession::information(std::string_view data, std::string_view context) {
  emit(ProtocolEvent::kInformation, printable(data), printable(context));
}

void ProtocolSession::trace(char direction, std::string_view line) {
  switch (direction) {
    case '>': return sent(line);
    case '<': return received(line);
    case '*': return information(line);
    default: return;  // '=': state changes are the session's business
  }
}

// RFC 4954 §4: the AUTH command may carry an initial response, and each line the client sends
// after a 334 is a SASL response; both carry the password (PLAIN) or its parts (LOGIN).
void ProtocolSession::client_line(ProtocolEvent event, std::string_view line) {
  bool continuation = std::exchange(continuation_expected_, false);
  if (continuation || (auth_lines_left_ > 0 && !is_smtp_command(line))) {
    if (auth_lines_left_ > 0) --auth_lines_left_;
    return emit(event, line == "*" ? "*" : "****", {});
  }
  auth_lines_left_ = 0;
  if (iequals_prefix(line, "AUTH ")) {
    auth_lines_left_ = 2;  // LOGIN: the user name, then the password
    size_t mechanism_end = line.find(' ', 5);
    if (mechanism_end != std::string_view::npos) {
      return emit(event, printable(line.substr(0, mechanism_end)) + " ****", {});
    }
  }
  emit(event, printable(line), {});
}

void ProtocolSession::server_line(ProtocolEvent event, std::string_view line) {
  continuation_expected_ = line.starts_with("334");
  emit(event, printable(line), {});
}

}  // namespace starling::logs
