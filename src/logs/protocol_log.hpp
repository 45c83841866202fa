// Protocol logs (Exchange's SMTP receive and send protocol logs): for a connector with
// ProtocolLoggingLevel Verbose, every line of a session in both directions and its connect,
// disconnect, TLS and authentication events, one CSV line each, under a #Fields header
// (docs/protocol-logs.md). A session formats its lines on its own thread and hands them to the
// log's writer, which writes them on another, so the disk never holds a session up.
// Invariant: no AUTH payload reaches a line. ProtocolSession masks the AUTH initial response and
// every SASL continuation line itself, whatever the SMTP layer above already masked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "logs/rotating_file.hpp"

namespace starling::logs {

enum class ProtocolLogKind { kReceive, kSend };

// The event field, as Exchange writes it.
enum class ProtocolEvent : char {
  kConnect = '+',
  kDisconnect = '-',
  kSent = '>',
  kReceived = '<',
  kInformation = '*',
};

// The lines every protocol log file starts with (#Fields names the columns).
std::string protocol_log_header(ProtocolLogKind kind);
// File name prefix: RECV or SEND, as Exchange names them.
std::string_view protocol_log_prefix(ProtocolLogKind kind);

// Peer text fit for one field of one line: CR, LF and the other control characters, and bytes
// that are not UTF-8, become '?'; at most kMaxDataLength bytes (longer text ends in "...").
inline constexpr size_t kMaxDataLength = 1024;
std::string printable(std::string_view text);

// One CSV line of the log, "\n" included. Fields holding a comma, a quote or a leading space are
// quoted ("" for a quote), as Exchange does.
struct ProtocolRecord {
  int64_t time_us = 0;  // Unix microseconds, written as 2026-12-01T21:54:17.123Z
  std::string_view connector_id, session_id;
  uint64_t sequence = 0;
  std::string_view local_endpoint, remote_endpoint;
  ProtocolEvent event = ProtocolEvent::kInformation;
  std::string_view data, context;
};
void append_record(std::string& out, const ProtocolRecord& record);

// One direction's log: where its lines go, and the server's name for receive connector ids.
class ProtocolLog {
 public:
  // `write` takes one formatted line and must not wait for the disk (any thread).
  ProtocolLog(ProtocolLogKind kind, std::string server_name, std::function<void(std::string)> write);
  ProtocolLogKind kind() const { return kind_; }
  // Exchange's connector-id: "SERVER\Connector" for receive connectors, the name for send ones.
  std::string connector_id(std::string_view connector) const;
  void write(std::string line) const { write_(std::move(line)); }

 private:
  ProtocolLogKind kind_;
  std::string server_name_;
  std::function<void(std::string)> write_;
};

// The process's logs (starlingd sets them at start); null while unset: nothing is logged.
void set_protocol_log(ProtocolLogKind kind, std::shared_ptr<const ProtocolLog> log);
std::shared_ptr<const ProtocolLog> protocol_log(ProtocolLogKind kind);

// Exchange's defaults for the receive and send protocol logs (fixed here; not settings yet).
inline constexpr RotationLimits kProtocolLogLimits{10ull << 20, 250ull << 20, std::chrono::hours(30 * 24)};

// The log of `kind` in DATA_DIR/logs/protocol/receive or .../send, written by its own thread
// (RECV / SEND files, rotated daily and at MaxFileSize, pruned by MaxAge and MaxDirectorySize).
// Writing it stops when the last reference goes, after what was queued is written.
Result<std::shared_ptr<const ProtocolLog>> open_protocol_log(ProtocolLogKind kind,
                                                              const std::filesystem::path& data_dir,
                                                              std::string server_name);

// "IP:port" ("[IPv6]:port"), the endpoint fields.
std::string format_endpoint(std::string_view ip, uint16_t port);

// The log of one SMTP session: its id, its sequence numbers and what masking needs to know.
// Not thread-safe: used by the one connection it belongs to.
class ProtocolSession {
 public:
  ProtocolSession(std::shared_ptr<const ProtocolLog> log, std::string_view connector,
                  std::string local_endpoint, std::string remote_endpoint);

  void connected();
  // `context` says who ended the session: "Local" or "Remote" (Exchange's words).
  void disconnected(std::string_view context);
  void sent(std::string_view line);      // '>'
  void received(std::string_view line);  // '<'
  void information(std::string_view data, std::string_view context = {});
  // The smtp::Session / smtp::ClientSession trace hook: '<' and '>' lines, '*' information;
  // '=' (state changes) is not logged.
  void trace(char direction, std::string_view line);

  const std::string& session_id() const { return session_id_; }
  uint64_t next_sequence() const { return sequence_; }

 private:
  void emit(ProtocolEvent event, std::string_view data, std::string_view context);
  void client_line(ProtocolEvent event, std::string_view line);
  void server_line(ProtocolEvent event, std::string_view line);

  std::shared_ptr<const ProtocolLog> log_;
  std::string connector_id_;
  std::string session_id_;
  std::string local_, remote_;
  uint64_t sequence_ = 0;
  // AUTH masking: the client's lines are '<' on receive logs and '>' on send logs.
  ProtocolEvent client_event_;
  bool continuation_expected_ = false;  // the server's last line was 334
  uint32_t auth_lines_left_ = 0;        // lines after an AUTH command that may still be SASL
};

}  // namespace starling::logs
