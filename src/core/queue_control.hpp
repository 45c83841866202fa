// What the management commands see of the running server's queues (get-queue, get-message,
// retry-queue, suspend-/resume-queue, suspend-/resume-/remove-/export-message), and what they may
// ask of them. The daemon's dispatcher implements it (net::Dispatcher); the
// commands never touch the queue's files themselves. With --offline there is none: queue
// commands answer that they need the running server.
//
// Every call may come from any thread and is answered from one consistent snapshot of the
// delivery thread's state. A call that changes the queue returns only once the change is as
// durable as the queue itself (appended to the message's queue file and flushed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::core {

// One queue as Get-Queue shows it (docs/queues.md). Times are Unix seconds, 0 for none.
struct QueueInfo {
  std::string name;               // "Submission", "Unreachable", "Poison", or the next hop
  std::string delivery_type;      // DnsConnectorDelivery, SmartHostConnectorDelivery,
                                  // MailboxDelivery, Unreachable, Undefined
  std::string next_hop_domain;    // the recipient domain, the smart host list, the accepted domain
  std::string next_hop_connector; // the send connector's name; empty for the others
  std::string status;             // Active, Ready, Retry, Suspended
  uint64_t message_count = 0;
  std::string last_error;
  int64_t last_retry_time = 0;
  int64_t next_retry_time = 0;
  double incoming_rate = 0;       // messages per second entering, over the last minute
  double outgoing_rate = 0;       // messages per second leaving (delivered or failed), last minute
  int64_t oldest_arrival = 0;     // the oldest message's DateReceived (for metrics), 0 when empty
};

struct RecipientInfo {
  std::string address;
  std::string status;      // Ready, Active, Retry, Suspended, Delivered, Failed
  std::string last_reply;  // the last reply or what happened here
  std::string queue;       // the queue that holds it
};

// One message in one queue, as Get-Message shows it. A message with recipients in several
// queues is shown once per queue, with the same number.
struct MessageInfo {
  uint64_t number = 0;              // the <n> of its identity; stable while the server runs
  std::string queue;                // the queue's name
  std::string internal_id;          // the queue id (the queue file's name; InternalMessageId)
  std::string from_address;         // "" for the null reverse path
  std::string subject;
  uint64_t size = 0;                // octets, as queued
  std::string status;               // Active, Ready, Retry, Suspended, PendingSuspend, PendingRemove
  int64_t date_received = 0;
  int64_t expiration_time = 0;
  std::string last_error;
  uint32_t retry_count = 0;
  std::string internet_message_id;  // the Message-ID: header field, "<...>"; "" when none
  std::vector<RecipientInfo> recipients;  // those in this queue (filled only when asked)
};

enum class QueueAction {
  kRetry,     // try now: the next hop's retry wait and its messages' waits end
  kResubmit,  // route every message of the queue again (a vanished route: Unreachable)
  kSuspend,   // messages still enter, none leave
  kResume,
};

enum class MessageAction {
  kSuspend,            // its recipients wait until resumed; one in transmission: PendingSuspend
  kResume,             // also takes a message out of Poison
  kRemoveWithNdr,      // every undelivered recipient fails; the sender gets a report
  kRemoveWithoutNdr,   // gone without a report
};

// A message as the commands name it: its number, or its internal id; `queue` narrows it.
struct MessageRef {
  std::optional<uint64_t> number;
  std::string internal_id;
  std::string queue;  // empty: any
};

class QueueControl {
 public:
  virtual ~QueueControl() = default;

  virtual Result<std::vector<QueueInfo>> queues() = 0;
  virtual Result<std::vector<MessageInfo>> messages(bool include_recipients) = 0;

  // What was done, one line ("3 messages will be retried now", ...); an error for an unknown
  // queue or an action the queue does not take (Submission cannot be suspended, ...).
  virtual Result<std::string> act_on_queue(const std::string& name, QueueAction action) = 0;
  // The messages acted on (with their new status: PendingSuspend, PendingRemove, ...).
  virtual Result<std::vector<MessageInfo>> act_on_message(const MessageRef& ref, MessageAction action) = 0;

  // A piece of the message as queued (trace header and content: an RFC 5322 message, CRLF
  // lines), read from its queue file: at most `max_bytes` octets from `offset`. The shell asks
  // piece after piece, so a large message never makes one large reply.
  struct ContentPiece {
    std::string bytes;
    uint64_t total_size = 0;
  };
  virtual Result<ContentPiece> message_content(const MessageRef& ref, uint64_t offset, uint64_t max_bytes) = 0;
};

}  // namespace starling::core
