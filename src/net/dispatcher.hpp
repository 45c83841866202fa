// Outbound delivery: the scheduler that takes every durable message from the queue and sees each
// recipient to a final state. Per recipient it asks the directory (core::Directory::resolve: a
// mailbox here, a group, unknown, or relayed) and the router (core::route_recipient) for the
// way: mailboxes go to their delivery target (the Maildir agent, or an LMTP server driven by
// run_lmtp; docs/mailbox-delivery.md), unknown recipients fail with 550 5.1.1, others go to the
// delivery queue of their next hop (send connector + domain or smart hosts), recipients without a route wait in
// Unreachable until a configuration change gives them one. Each next hop has its own connections
// (at most MaxPerDomainOutboundConnections, MaxOutboundConnections in all), reused for several
// messages; a next hop that fails goes into Retry on the transport server's schedule; a message
// that fails alone retries at MessageRetryInterval. Every change of a recipient's state is made
// durable in the queue file before it is relied on; a message leaves the queue only when all its
// recipients are final, after its non-delivery report (if any) is itself durably queued.
// A queued message here is its envelope, its state and where its content is in the queue file:
// the content is read back when an attempt starts (LMTP, outbound SMTP, a report attaching it;
// the mailbox agent reads its own) and let go when it ends, so memory grows with the messages
// in attempts, not with the queue. A message fresh from the receiving side keeps its content
// for its first routing only.
// The administrator sees and steers the queues through net::QueueAdmin (core::QueueControl):
// views and actions run on the delivery thread (dispatcher_queues.cpp, docs/queues.md), a
// suspended or removed message is marked in its queue file, and a message in flight during
// PoisonThreshold crashes waits in Poison for an administrator.
// Threading: everything runs on the io_context given to it (one thread); submit() and
// configure() may be called from any thread.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/directory.hpp"
#include "core/queue_control.hpp"
#include "logs/tracking.hpp"
#include "delivery/maildir.hpp"
#include "events/event_log.hpp"
#include "net/outbound_config.hpp"
#include "net/resolver.hpp"
#include "queue/spool.hpp"
#include "smtp/client_session.hpp"

namespace starling::net {

class Dispatcher {
 public:
  // `local` delivers accepted domains (its remove_delivered must be false); `store` is a store
  // connection for this thread's events (may be null).
  Dispatcher(asio::io_context& io, queue::Spool& spool, delivery::MaildirDelivery& local,
             std::unique_ptr<store::Store> store);
  ~Dispatcher();

  // Thread-safe. The first configure() must come before the first submit() is processed.
  void configure(std::shared_ptr<const OutboundConfig> config);
  void submit(queue::QueuedMessage message);
  // Called by the mailbox agent's observer (any thread).
  void local_result(const queue::QueuedMessage& message, const Result<void>& result);
  // Thread-safe: closes every connection, stops the timers; io.run() then returns.
  void stop();

  // Queue administration (get-queue, retry-queue, suspend-message, ...; queue_admin.hpp), on the
  // delivery thread only (dispatcher_queues.cpp). Queues and messages as core::QueueControl
  // describes them, computed from the state right now.
  std::vector<core::QueueInfo> queue_views();
  std::vector<core::MessageInfo> message_views(bool include_recipients);
  Result<std::string> act_on_queue(const std::string& name, core::QueueAction action);
  // `done` gets the messages acted on, once the change is durable (or the error that kept it out).
  void act_on_message(const core::MessageRef& ref, core::MessageAction action,
                      std::function<void(Result<std::vector<core::MessageInfo>>)> done);
  // The envelope and where the content is in the queue file (no content), for export-message.
  Result<queue::QueuedMessage> message_for(const core::MessageRef& ref);
  asio::io_context& io() { return io_; }
  queue::Spool& spool() { return spool_; }

  // Replaces the resolver (tests); by default one is made from the configuration.
  std::function<std::unique_ptr<Resolver>(asio::io_context&, const std::vector<std::string>& servers)> make_resolver;

 private:
  // How a recipient was delivered, for NOTIFY=SUCCESS (RFC 3461 §6.2): into a mailbox here
  // (Maildir, LMTP: "delivered"), to a next hop without DSN ("relayed"), or to one that took the
  // request on (no report from here). kUnknown: delivered before a restart.
  enum class DeliveredAs : uint8_t { kUnknown, kMailbox, kRelayed, kPassedOn };
  struct Message {
    queue::QueuedMessage q;
    std::vector<bool> busy;  // with an agent or in a delivery queue
    std::vector<bool> unreachable;  // no route: waits for a configuration change
    std::vector<std::string> remote;  // the host that gave the final reply (for reports)
    bool routed_once = false;
    bool finishing = false;  // report being queued / removal requested
    // Copies for mailboxes here still out (a group expanded at delivery makes several for one
    // recipient), and the worst reply among those back so far.
    std::vector<int> parts;
    std::vector<std::optional<smtp::Reply>> part_reply;
    // What get-message shows and the administrator steers (dispatcher_queues.cpp).
    uint64_t number = 0;                // the <n> of its identity, per run
    std::vector<std::string> queue_of;  // per recipient: the delivery queue it was routed to
    std::vector<bool> held;             // that queue is suspended: waits for resume-queue
    bool first_routing = false;         // fresh from the receiving side, never routed yet
    bool suspended = false;
    bool poison = false;                // in Poison: only resume-message or remove-message
    bool acting = false;                // an administrator's change is being made durable
    queue::QueuedMessage::Removal pending_removal = queue::QueuedMessage::Removal::kNone;
    // Delivery status notifications (dispatcher_reports.cpp): how each delivered recipient went
    // (known in this run only), and the final reports (bits of ReportKind) already durable.
    std::vector<DeliveredAs> delivered_as;
    uint8_t reports_queued = 0;
  };
  using MessagePtr = std::shared_ptr<Message>;
  // One copy for a mailbox here: a Maildir file, or one RCPT of an LMTP transaction. `mailbox`
  // is the mailbox's primary address (names its Maildir; the LMTP RCPT TO), `address` the
  // recipient as addressed (Delivered-To), `indices` the envelope recipients it stands for
  // (several when aliases or case variants of one mailbox are all recipients of the message).
  struct LocalCopy {
    std::string mailbox, address;
    std::vector<size_t> indices;
  };
  struct MaildirJob {
    std::vector<std::string> addresses;  // the envelope of the copy given to the agent
    std::vector<LocalCopy> copies;
  };
  struct LmtpJob {
    MessagePtr message;
    std::vector<LocalCopy> copies;
  };
  // An LMTP server (one DeliveryTarget): its waiting transactions and open connections.
  struct LmtpTarget {
    std::string key;  // "lmtp:HOST:PORT" or "lmtp:/path", as configured
    core::DeliveryTarget target;
    std::deque<LmtpJob> ready;
    int connections = 0;
  };
  struct Batch {
    MessagePtr message;
    std::vector<size_t> recipients;  // envelope indices
  };
  struct Hop {
    std::string key, connector, next_hop;
    std::deque<Batch> ready;
    int connections = 0;
    std::list<asio::steady_timer*> idle;  // connections waiting for work
    uint32_t failures = 0;  // consecutive failures of the next hop
    int64_t retry_at = 0;   // Unix seconds: in Retry until then
    std::set<std::string> tls_failed;  // "host:port" whose handshake failed: plain next time
    std::string last_error;            // why the next hop last failed
  };
  // The outcome of trying to reach a next hop with a connection.
  struct Attempt {
    bool reached = false;  // some host was ready for mail
    smtp::Reply failure;   // why not (or why the last host failed)
    bool permanent = false;
  };

  void on_configure(std::shared_ptr<const OutboundConfig> config);
  void drain_inbox();
  void on_local_delivered(const std::string& id, const std::vector<std::string>& addresses);
  void on_submit(queue::QueuedMessage message);
  void route(const MessagePtr& m);
  void schedule_hop(Hop& hop);
  void tick();
  void finish_if_done(const MessagePtr& m);
  void set_state(const MessagePtr& m, size_t index, queue::RecipientState::Status status,
                 const std::string& reply, int64_t next_attempt, const std::string& hop,
                 queue::StateUpdate& update);
  void record(queue::StateUpdate update);
  // More Received: fields than core::kMaxReceivedHeaders: a mail loop.
  bool hop_count_exceeded(const queue::QueuedMessage& q);
  // The content for an attempt, read from the queue file (a waiting message holds none); an
  // error when the file cannot give it back (gone, or changed behind the queue's back).
  Result<std::string> content_for_attempt(const queue::QueuedMessage& q);
  void fail_batch(const Batch& b, const smtp::Reply& reply, const std::string& hop, const std::string& remote);
  void defer_batch(const Batch& b, const smtp::Reply& reply, const std::string& hop, int64_t next_attempt);
  void hop_failed(Hop& hop, const smtp::Reply& reply);
  // Delivery status notifications (dispatcher_reports.cpp). send_report(m, true): the delay
  // notice, once, for the recipients whose NOTIFY allows it. send_final_reports: the failure,
  // delivered and relayed reports a finished message owes its sender, each durable before the
  // message leaves the queue; false when none is owed (the caller removes the message).
  void send_report(const MessagePtr& m, bool delay);
  bool send_final_reports(const MessagePtr& m);
  void queue_report(const MessagePtr& m, int kind, const std::vector<size_t>& recipients,
                    std::function<void(bool ok)> done);
  void note_delivered(const MessagePtr& m, size_t index, DeliveredAs how);
  Resolver& resolver_for(const SendConnectorRuntime& c);
  void connection_ended();

  // Queue administration and its bookkeeping (dispatcher_queues.cpp).
  struct RateWindow {  // events per second over the last minute, in one-second buckets
    std::array<uint32_t, 60> count{};
    std::array<int64_t, 60> second{};
    void add(int64_t now);
    double rate(int64_t now) const;
  };
  struct QueueStats {
    std::string delivery_type, connector;
    std::string last_error;
    int64_t last_retry = 0;
    int64_t last_used = 0;  // Unix seconds: a message last entered or left it
    RateWindow in, out;
  };
  // Recipient `index` is routed to `queue` (its DeliveryType `kind`, its send connector):
  // whether it waits there, its queue or its message suspended (or in Poison).
  bool hold(const MessagePtr& m, size_t index, const std::string& queue, const std::string& kind,
            const std::string& connector);
  // The recipient enters `queue` (routing); `kind`: its DeliveryType, `connector` its send connector.
  void enter_queue(const MessagePtr& m, size_t index, const std::string& queue, const std::string& kind,
                   const std::string& connector);
  std::string queue_name(const Message& m, size_t index) const;
  // Takes the message's batches and LMTP transactions waiting in delivery queues back (not
  // those in an attempt).
  void take_back(const MessagePtr& m, const std::function<bool(size_t)>& which);
  void take_back_lmtp(const MessagePtr& m, const std::function<bool(size_t)>& which);
  // The message action, once durable in the queue file; what the caller sees of the message.
  std::vector<core::MessageInfo> apply_message_action(const MessagePtr& m, core::MessageAction action);
  // Forgets the statistics of delivery queues empty and unused for a while (checked at most once
  // a minute), so that a next hop routed to once does not stay listed for ever.
  void drop_idle_queues(int64_t now);
  // A removal or a Poison decision: returns true when the message is gone.
  bool settle_admin(const MessagePtr& m);
  void remove_recipients(const MessagePtr& m, queue::StateUpdate& update);
  MessagePtr find_message(const core::MessageRef& ref, std::string& error);
  void admit(const MessagePtr& m);  // a new message: its number, Poison, marks from the queue file
  // Message tracking (EXCHANGE-MODEL.md §8) for recipients `indices` of `m`.
  void track(const Message& m, std::string event, std::string source, const std::vector<size_t>& indices,
             logs::TrackingEvent event_base = {});
  void count_outcome(const Message& m, size_t index, queue::RecipientState::Status status);
  // SEND: one outbound transaction to `remote` ("host[ip]:port"), `tls` its version and cipher.
  void track_send(const Message& m, const std::vector<size_t>& indices, const smtp::Outcome& outcome,
                  const std::string& host, const std::string& remote, const std::string& tls,
                  const std::string& connector);
  struct QueueGroup;  // one message's recipients in one queue
  std::set<std::pair<const Message*, size_t>> waiting_recipients() const;
  std::map<std::string, QueueGroup> groups_of(const Message& m,
                                              const std::set<std::pair<const Message*, size_t>>& waiting,
                                              int64_t now) const;
  std::string group_status(const Message& m, const QueueGroup& g) const;
  core::MessageInfo message_info(const Message& m, const std::string& queue, const QueueGroup& g,
                                 bool include_recipients) const;
  // Applies a queue action to the hops and messages of `queue` (a delivery queue's name).
  std::string retry_queue(const std::string& queue, bool resubmit);

  // The copies' replies (in `copies` order) are in: recipients whose copies are all back
  // become delivered (every copy 2xx), deferred (any 4xx, retried at MessageRetryInterval) or
  // failed (any 5xx, reported to the sender).
  void local_done(const MessagePtr& m, const std::vector<LocalCopy>& copies,
                  const std::vector<smtp::Reply>& replies, const std::string& agent);
  void schedule_lmtp(LmtpTarget& target);
  void lmtp_ended();

  asio::awaitable<void> run_lmtp(std::string key);  // lmtp_delivery.cpp
  asio::awaitable<void> run_connection(std::string hop_key);
  asio::awaitable<Attempt> converse(Hop& hop, const SendConnectorRuntime& sc, asio::ip::tcp::socket& socket,
                                    const std::string& host, const std::string& remote);

  asio::io_context& io_;
  queue::Spool& spool_;
  delivery::MaildirDelivery& local_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<events::EventLog> events_;
  std::shared_ptr<const OutboundConfig> config_;
  std::map<std::string, MessagePtr> messages_;
  std::map<std::string, Hop> hops_;
  std::map<std::string, std::list<MaildirJob>> local_inflight_;  // queue id -> with the agent
  std::map<std::string, LmtpTarget> lmtp_targets_;                // never erased
  int lmtp_connections_ = 0;
  uint64_t lmtp_serial_ = 0;
  std::map<uint64_t, std::function<void()>> lmtp_cancel_;  // closes an LMTP connection's socket
  std::set<std::string> unreachable_;  // queue ids with recipients waiting for a route
  uint64_t last_number_ = 0;
  std::map<std::string, QueueStats> queue_stats_;  // by queue name; delivery queues only
  int64_t idle_check_at_ = 0;                      // Unix seconds: next drop_idle_queues pass
  std::set<std::string> suspended_queues_;         // lower-case names; kept in the queue directory
  // DIR/queue/suspended-queues (queue::kSuspendedQueuesFile): read at start, replaced durably
  // (written, synced, renamed, directory synced) before a suspend-/resume-queue applies.
  void load_suspended_queues();
  Result<void> save_suspended_queues(const std::set<std::string>& names);
  RateWindow submission_in_;
  int connections_ = 0;
  std::set<asio::ip::tcp::socket*> sockets_;
  std::unique_ptr<Resolver> system_resolver_, external_resolver_;
  std::vector<std::string> external_servers_;
  // Hand-overs from the queue's writer and the mailbox agent, drained on the delivery thread.
  std::mutex inbox_mutex_;
  std::vector<queue::QueuedMessage> inbox_;
  size_t inbox_bytes_ = 0;  // content held by inbox_
  static constexpr size_t kMaxWaitingContent = 64 << 20;
  std::vector<std::pair<std::string, std::vector<std::string>>> delivered_;
  asio::steady_timer tick_timer_;
  std::unique_ptr<asio::steady_timer> stop_timer_;
  std::mt19937 rng_{std::random_device{}()};
  bool stopping_ = false;
};

}  // namespace starling::net
