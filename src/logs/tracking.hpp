// Message tracking (Exchange's message tracking log): one entry per event in a message's life,
// written by whoever sees the event happen (the receiving connection, the dispatcher, the mailbox
// agents) through track(). Recording never blocks on the disk and never fails a message: entries
// go to the tracker's own writer thread, and when it cannot keep up they are counted and dropped.
// The file format, rotation and pruning are in tracking_log.hpp and docs/tracking.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "logs/rotating_file.hpp"

namespace starling::logs {

struct TrackingEvent {
  int64_t timestamp_us = 0;  // Unix microseconds (UTC); 0: now, filled by track()
  std::string event_id;      // RECEIVE, SUBMIT, RESOLVE, EXPAND, SEND, DELIVER, DEFER, FAIL, DSN,
                             // POISONMESSAGE, RESUBMIT, BADMAIL
  std::string source;        // SMTP, ROUTING, QUEUE, DSN, ADMIN, MAILBOX
  std::string client_ip, client_hostname;  // who handed the message to this server (RECEIVE), or
  std::string server_ip, server_hostname;  // this server and the next hop (SEND)
  std::string connector_id;                // the receive or send connector
  std::string internal_message_id;         // the queue id
  std::string message_id;                  // the Message-ID: header field
  std::vector<std::string> recipients;
  std::vector<std::string> recipient_status;  // the reply per recipient (same order), or empty
  uint64_t total_bytes = 0;
  std::string reference;     // DSN: the report's Message-ID; RESUBMIT/EXPAND: what it came from
  std::string message_subject;
  std::string sender;        // the reverse path ("" for <>)
  std::string return_path;   // the reverse path reports go to
  std::string message_info;  // e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"
};

// MessageTrackingLogEnabled and the MessageTrackingLogMax* limits (tracking_settings() in
// tracking_log.hpp reads them from the transport server settings).
struct TrackingSettings {
  bool enabled = true;
  RotationLimits limits;
};

class Tracker {
 public:
  virtual ~Tracker() = default;
  // Takes the event without waiting for the disk (any thread).
  virtual void record(TrackingEvent event) = 0;
  // A change of settings while running (any thread).
  virtual void configure(const TrackingSettings&) {}
  // Waits (at most `timeout`) until what was recorded before the call is on disk.
  virtual bool flush(std::chrono::milliseconds /*timeout*/) { return true; }
};

// The process's tracker: track() hands events to it; without one (tests, --offline), they go
// nowhere. set_tracker(nullptr) detaches it.
void set_tracker(std::shared_ptr<Tracker> tracker);
void track(TrackingEvent event);
// Forwarded to the process's tracker, if there is one.
void configure_tracker(const TrackingSettings& settings);
// Before a search of the files, so that it sees what has just happened.
bool flush_tracker(std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace starling::logs
