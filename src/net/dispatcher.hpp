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
// Threading: everything runs on the io_context given to it (one thread); submit() and
// configure() may be called from any thread.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

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

  // Replaces the resolver (tests); by default one is made from the configuration.
  std::function<std::unique_ptr<Resolver>(asio::io_context&, const std::vector<std::string>& servers)> make_resolver;

 private:
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
  void send_report(const MessagePtr& m, bool delay);
  Resolver& resolver_for(const SendConnectorRuntime& c);
  void connection_ended();

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
