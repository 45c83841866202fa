#include "net/dispatcher.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>

#include <algorithm>

#include "core/log.hpp"
#include "core/names.hpp"
#include "core/routing.hpp"
#include "delivery/report.hpp"
#include "events/catalog.hpp"

namespace starling::net {
namespace {

using Status = queue::RecipientState::Status;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string domain_of(const std::string& address) {
  size_t at = address.rfind('@');
  return at == std::string::npos ? std::string() : core::normalize_name(address.substr(at + 1));
}

}  // namespace

Dispatcher::Dispatcher(asio::io_context& io, queue::Spool& spool, delivery::MaildirDelivery& local,
                       std::unique_ptr<store::Store> store)
    : io_(io), spool_(spool), local_(local), store_(std::move(store)), tick_timer_(io) {
  events_ = std::make_unique<events::EventLog>(store_.get());
  load_suspended_queues();
  tick();
}

Dispatcher::~Dispatcher() = default;

void Dispatcher::configure(std::shared_ptr<const OutboundConfig> config) {
  asio::post(io_, [this, config = std::move(config)]() mutable { on_configure(std::move(config)); });
}

// Both entry points from other threads coalesce: work that arrives while a hand-over is already
// posted joins it, so a busy queue wakes the delivery thread once per batch, not per message.
void Dispatcher::submit(queue::QueuedMessage message) {
  bool post = false;
  {
    std::lock_guard lock(inbox_mutex_);
    post = inbox_.empty();
    // Content waiting here is past the receive budget: beyond a bound it is let go, and read
    // back from its durable queue file when its attempt starts.
    if (inbox_bytes_ + message.data.size() > kMaxWaitingContent) {
      message.release_data();
    } else {
      inbox_bytes_ += message.data.size();
    }
    inbox_.push_back(std::move(message));
  }
  if (post) asio::post(io_, [this] { drain_inbox(); });
}

void Dispatcher::drain_inbox() {
  std::vector<queue::QueuedMessage> messages;
  std::vector<std::pair<std::string, std::vector<std::string>>> delivered;
  {
    std::lock_guard lock(inbox_mutex_);
    messages.swap(inbox_);
    inbox_bytes_ = 0;
    delivered.swap(delivered_);
  }
  int64_t now = now_unix();
  for (auto& m : messages) {
    submission_in_.add(now);
    on_submit(std::move(m));
  }
  for (auto& [id, addresses] : delivered) on_local_delivered(id, addresses);
}

void Dispatcher::local_result(const queue::QueuedMessage& message, const Result<void>& result) {
  if (!result) {
    log_line("delivery: " + message.id + " deferred: " + result.error());
    return;  // the mailbox agent retries on its own
  }
  bool post = false;
  {
    std::lock_guard lock(inbox_mutex_);
    post = inbox_.empty() && delivered_.empty();
    delivered_.emplace_back(message.id, message.envelope.recipients);
  }
  if (post) asio::post(io_, [this] { drain_inbox(); });
}

void Dispatcher::on_local_delivered(const std::string& id, const std::vector<std::string>& addresses) {
  {
    auto it = messages_.find(id);
    auto jobs = local_inflight_.find(id);
    if (it == messages_.end() || jobs == local_inflight_.end()) return;
    auto job = std::find_if(jobs->second.begin(), jobs->second.end(),
                            [&](const MaildirJob& j) { return j.addresses == addresses; });
    if (job == jobs->second.end()) return;
    std::vector<LocalCopy> copies = std::move(job->copies);
    jobs->second.erase(job);
    if (jobs->second.empty()) local_inflight_.erase(jobs);
    std::vector<smtp::Reply> replies(copies.size(), smtp::make_reply(250, "2.0.0", "delivered to the mailbox"));
    local_done(it->second, copies, replies, "");
  }
}

void Dispatcher::local_done(const MessagePtr& m, const std::vector<LocalCopy>& copies,
                            const std::vector<smtp::Reply>& replies, const std::string& agent) {
  // Severity of a copy's reply: one copy refused for now makes the recipient wait (and every
  // copy is made again), one refused for good fails it.
  auto rank = [](const smtp::Reply& r) { return r.positive() ? 0 : r.permanent() ? 1 : 2; };
  std::vector<size_t> done;
  for (size_t j = 0; j < copies.size(); ++j) {
    const smtp::Reply& r = j < replies.size() ? replies[j] : smtp::make_reply(451, "4.4.0", "no reply for this copy");
    for (size_t i : copies[j].indices) {
      auto& worst = m->part_reply[i];
      if (!worst || rank(r) > rank(*worst)) worst = r;
      if (--m->parts[i] <= 0) done.push_back(i);
    }
  }
  if (done.empty()) return;
  std::string via = agent.empty() ? "" : " via " + agent;
  queue::StateUpdate update{m->q.id};
  Batch deferred{m, {}};
  std::optional<smtp::Reply> defer_reply;
  std::vector<size_t> delivered, failed;
  for (size_t i : done) {
    smtp::Reply r = std::move(*m->part_reply[i]);
    m->part_reply[i].reset();
    m->parts[i] = 0;
    const std::string& rcpt = m->q.envelope.recipients[i];
    if (r.positive()) {
      m->busy[i] = false;
      set_state(m, i, Status::kDelivered, r.text(), 0, agent, update);
      note_delivered(m, i, DeliveredAs::kMailbox);
      delivered.push_back(i);
      if (!agent.empty()) log_line("delivery: " + m->q.id + " " + rcpt + " delivered" + via + ": " + r.text());
    } else if (r.permanent()) {
      m->busy[i] = false;
      m->remote[i] = agent;
      set_state(m, i, Status::kFailed, r.text(), 0, agent, update);
      failed.push_back(i);
      log_line("delivery: " + m->q.id + " " + rcpt + " failed" + via + ": " + r.text());
      events_->log(events::kOutboundDeliveryFailed, m->q.id + ":" + rcpt,
                   {{"QueueId", m->q.id}, {"Recipient", rcpt}, {"NextHop", agent}, {"Reply", r.text()}});
    } else {
      deferred.recipients.push_back(i);
      if (!defer_reply) defer_reply = r;
    }
  }
  // A message delivered here alone needs no state line: it leaves the queue now.
  bool all_done = std::all_of(m->q.state.begin(), m->q.state.end(), [](const auto& s) {
    return s.status == Status::kDelivered;
  });
  if (!all_done || !deferred.recipients.empty()) record(std::move(update));
  logs::TrackingEvent via_agent{.server_hostname = agent.empty() ? "Maildir" : agent};
  if (!delivered.empty()) track(*m, "DELIVER", "MAILBOX", delivered, via_agent);
  if (!failed.empty()) track(*m, "FAIL", "MAILBOX", failed, via_agent);
  if (!deferred.recipients.empty()) {
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    int64_t next = now_unix() + core::message_retry_delay(config_->transport, jitter(rng_)).count();
    defer_batch(deferred, *defer_reply, agent.empty() ? "mailbox" : agent, next);
  }
  finish_if_done(m);
}

void Dispatcher::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    tick_timer_.cancel();
    for (auto& [key, hop] : hops_) {
      for (auto* t : hop.idle) t->cancel();
      hop.idle.clear();
    }
    for (auto* s : sockets_) {
      std::error_code ec;
      s->cancel(ec);
    }
    if (system_resolver_) system_resolver_->cancel();
    if (external_resolver_) external_resolver_->cancel();
    // Connections see stopping_ and end; whatever they carried stays queued (at least once).
    // The run ends when the last one has, or after a few seconds whatever remains.
    for (auto& [serial, cancel] : lmtp_cancel_) cancel();
    if (connections_ == 0 && lmtp_connections_ == 0) return io_.stop();
    stop_timer_ = std::make_unique<asio::steady_timer>(io_, std::chrono::seconds(3));
    stop_timer_->async_wait([this](std::error_code) { io_.stop(); });
  });
}

void Dispatcher::connection_ended() {
  --connections_;
  if (stopping_ && connections_ == 0 && lmtp_connections_ == 0) io_.stop();
}

void Dispatcher::lmtp_ended() {
  --lmtp_connections_;
  if (stopping_ && connections_ == 0 && lmtp_connections_ == 0) io_.stop();
}

void Dispatcher::on_configure(std::shared_ptr<const OutboundConfig> config) {
  config_ = std::move(config);
  // Delivery queues whose send connector is gone or disabled give their messages back for
  // routing; recipients that had no route get another chance with the new connectors.
  std::vector<MessagePtr> again;
  for (auto& [key, hop] : hops_) {
    if (config_->connector(hop.connector)) continue;
    for (Batch& b : hop.ready) {
      for (size_t i : b.recipients) b.message->busy[i] = false;
      again.push_back(b.message);
    }
    hop.ready.clear();
  }
  for (const std::string& id : unreachable_) {
    auto it = messages_.find(id);
    if (it == messages_.end()) continue;
    std::fill(it->second->unreachable.begin(), it->second->unreachable.end(), false);
    again.push_back(it->second);
  }
  unreachable_.clear();
  for (const MessagePtr& m : again) route(m);
}

void Dispatcher::on_submit(queue::QueuedMessage message) {
  auto m = std::make_shared<Message>();
  m->q = std::move(message);
  m->q.state.resize(m->q.envelope.recipients.size());
  m->busy.assign(m->q.envelope.recipients.size(), false);
  m->unreachable.assign(m->q.envelope.recipients.size(), false);
  m->remote.assign(m->q.envelope.recipients.size(), "");
  m->parts.assign(m->q.envelope.recipients.size(), 0);
  m->part_reply.assign(m->q.envelope.recipients.size(), std::nullopt);
  m->queue_of.assign(m->q.envelope.recipients.size(), "");
  m->held.assign(m->q.envelope.recipients.size(), false);
  if (m->q.arrival == 0) m->q.arrival = now_unix();
  // A recovered recipient that was tried, or is final, was routed before the restart: the
  // loop check was made then, and its content need not be read again for it.
  m->routed_once = std::any_of(m->q.state.begin(), m->q.state.end(),
                               [](const auto& s) { return s.attempts > 0 || s.final(); });
  std::string id = m->q.id;
  messages_[id] = m;
  admit(m);
  route(m);
  finish_if_done(m);  // a recovered message may have nothing left but its report
}

void Dispatcher::set_state(const MessagePtr& m, size_t index, Status status, const std::string& reply,
                           int64_t next_attempt, const std::string& hop, queue::StateUpdate& update) {
  queue::RecipientState& st = m->q.state[index];
  st.status = status;
  st.last_reply = reply;
  st.next_attempt = next_attempt;
  if (status != Status::kDelivered || !hop.empty()) ++st.attempts;
  update.recipients.emplace_back(index, st);
  count_outcome(*m, index, status);
}

bool Dispatcher::hop_count_exceeded(const queue::QueuedMessage& q) {
  if (q.has_data()) return core::count_received_headers(q.data) > core::kMaxReceivedHeaders;
  // Recovered before it was ever routed: trace fields are at the top, a prefix is enough.
  constexpr uint64_t kTracePrefix = 1 << 20;
  auto head = spool_.load(q, kTracePrefix);
  if (!head) log_line("outbound: " + q.id + ": " + head.error());
  return head && core::count_received_headers(*head) > core::kMaxReceivedHeaders;
}

Result<std::string> Dispatcher::content_for_attempt(const queue::QueuedMessage& q) {
  if (q.has_data()) return q.data;
  return spool_.load(q);
}

void Dispatcher::record(queue::StateUpdate update) {
  if (update.recipients.empty() && !update.delay_notified && !update.attempt_began) return;
  std::string id = update.id;
  spool_.update(std::move(update), [id](Result<void> r) {
    if (!r) log_line("queue: " + id + ": " + r.error());
  });
}

void Dispatcher::route(const MessagePtr& m) {
  if (stopping_ || !config_ || m->finishing) return;
  const OutboundConfig& cfg = *config_;
  int64_t now = now_unix();
  const auto& rcpts = m->q.envelope.recipients;
  if (!m->routed_once) {
    m->routed_once = true;
    if (hop_count_exceeded(m->q)) {
      queue::StateUpdate update{m->q.id};
      for (size_t i = 0; i < rcpts.size(); ++i) {
        if (m->q.state[i].final() || m->busy[i]) continue;
        set_state(m, i, Status::kFailed,
                  "554 5.4.6 Hop count exceeded: more than 30 Received: header fields, a mail loop", 0, "",
                  update);
        log_line("outbound: " + m->q.id + " " + rcpts[i] + " failed: mail loop (Received: headers)");
      }
      record(std::move(update));
      m->q.release_data();
      return;
    }
  }
  // Copies for mailboxes here, by delivery target ("Maildir" or the LMTP target), one per
  // mailbox per target: recipients that are aliases or case variants of one mailbox share it.
  std::map<std::string, std::vector<LocalCopy>> copies;
  std::map<std::string, std::map<std::string, size_t>> copy_of;  // target -> mailbox -> copy
  std::vector<size_t> unknown;
  std::map<std::string, Batch> by_hop;
  std::map<std::string, core::Route> routes;
  const core::Directory* dir = cfg.directory.get();  // null: every accepted domain to Maildir, as before
  auto add_copy = [&](size_t i, const std::string& target, const std::string& mailbox, const std::string& address,
                      bool shared) {
    // Local delivery queues by the recipient's domain, as addressed (MailboxDelivery).
    if (hold(m, i, domain_of(rcpts[i]), "MailboxDelivery", "")) return;
    auto& list = copies[target];
    auto& index = copy_of[target];
    // Without a directory (the domain is all there is) each recipient keeps its own copy.
    std::string key = shared ? core::to_lower(mailbox) : mailbox + "\n" + std::to_string(i);
    auto [it, created] = index.try_emplace(key, list.size());
    if (created) list.push_back({mailbox, address, {}});
    LocalCopy& c = list[it->second];
    if (std::find(c.indices.begin(), c.indices.end(), i) == c.indices.end()) {
      c.indices.push_back(i);
      ++m->parts[i];
    }
  };
  // A mailbox's delivery target: its own, else its domain's (the domain of its primary address,
  // so that every address of one mailbox reaches the same store).
  auto target_of = [&](const core::Mailbox& mb) {
    if (!mb.delivery_target.empty()) return mb.delivery_target;
    const core::AcceptedDomain* d = dir->domain(domain_of(mb.primary_address));
    return d ? d->delivery_target : std::string("Maildir");
  };
  for (size_t i = 0; i < rcpts.size(); ++i) {
    if (m->q.state[i].final()) continue;
    if (m->busy[i] || m->unreachable[i]) continue;
    // Not due yet: routed only to learn its queue (a recovered message waiting for its retry).
    bool not_due = m->q.state[i].next_attempt > now;
    if (not_due && !m->queue_of[i].empty()) continue;
    std::set<std::string> accepted_here;
    const std::set<std::string>* accepted = &cfg.accepted_domains;
    if (dir) {
      using Kind = core::Directory::Resolution::Kind;
      core::Directory::Resolution res = dir->resolve(rcpts[i]);
      if (res.kind == Kind::kMailbox) {
        if (m->q.state[i].attempts == 0 && core::to_lower(res.mailbox->primary_address) != core::to_lower(rcpts[i])) {
          track(*m, "RESOLVE", "ROUTING", {}, {.recipients = {res.mailbox->primary_address}, .reference = rcpts[i]});
        }
        add_copy(i, target_of(*res.mailbox), res.mailbox->primary_address, rcpts[i], true);
        continue;
      }
      if (res.kind == Kind::kGroup) {
        // Groups are expanded at RCPT by the receiving side; one that reaches the queue (a
        // report to a group, a group made after the message came in) is expanded here, to its
        // member mailboxes. Members elsewhere are not sent on from here.
        for (const std::string& member : res.members) {
          core::Directory::Resolution mr = dir->resolve(member);
          if (mr.kind == Kind::kMailbox) {
            add_copy(i, target_of(*mr.mailbox), mr.mailbox->primary_address, member, true);
          } else {
            log_line("delivery: " + m->q.id + " " + rcpts[i] + ": group member " + member +
                     " is no mailbox here; not reached by this expansion");
          }
        }
        bool waits = m->held[i] || m->suspended || m->poison || not_due;
        if (m->q.state[i].attempts == 0 && !waits) {
          logs::TrackingEvent expanded{.recipients = res.members, .reference = rcpts[i]};
          track(*m, "EXPAND", "ROUTING", {}, std::move(expanded));
        }
        if (m->parts[i] == 0 && !waits) {
          queue::StateUpdate update{m->q.id};
          set_state(m, i, Status::kDelivered, "250 2.1.5 group expanded: no member mailbox here", 0, "", update);
          record(std::move(update));
        }
        continue;
      }
      if (res.kind == Kind::kUnknown) {
        unknown.push_back(i);
        continue;
      }
      // kRelay: an accepted domain whose recipient is not here goes through the send
      // connectors as any other domain would. kNotLocal: as it always went.
      if (res.kind == Kind::kRelay) accepted = &accepted_here;
    }
    core::Route r = core::route_recipient(domain_of(rcpts[i]), *accepted, cfg.send_connectors);
    switch (r.kind) {
      case core::Route::Kind::kLocal:
        add_copy(i, "Maildir", rcpts[i], rcpts[i], dir != nullptr);
        break;
      case core::Route::Kind::kConnector: {
        const SendConnectorRuntime* sc = cfg.connector(r.connector);
        bool dns = sc && sc->connector.dns_routing_enabled;
        if (hold(m, i, r.next_hop, dns ? "DnsConnectorDelivery" : "SmartHostConnectorDelivery", r.connector)) break;
        std::string key = r.connector + "\n" + r.next_hop;
        Batch& b = by_hop[key];
        b.message = m;
        b.recipients.push_back(i);
        routes[key] = r;
        break;
      }
      case core::Route::Kind::kNone: {
        m->unreachable[i] = true;
        unreachable_.insert(m->q.id);
        // A state line, so that a crash now does not count it as in flight (Poison).
        queue::StateUpdate update{m->q.id};
        queue::RecipientState& st = m->q.state[i];
        st.last_reply = "451 4.4.4 no send connector serves " + domain_of(rcpts[i]);
        update.recipients.emplace_back(i, st);
        record(std::move(update));
        log_line("outbound: " + m->q.id + " " + rcpts[i] + " unreachable: no send connector serves " +
                 domain_of(rcpts[i]) + "; it waits for one");
        break;
      }
    }
  }
  // A fresh message that waits (its queue suspended, its next hop in Retry) is not in flight:
  // without a line it would count as such at every crash while it waits (Poison).
  if (m->first_routing) {
    queue::StateUpdate waiting{m->q.id};
    for (size_t i = 0; i < rcpts.size(); ++i) {
      if (m->held[i]) waiting.recipients.emplace_back(i, m->q.state[i]);
    }
    for (const auto& [key, batch] : by_hop) {
      auto hop = hops_.find(key);
      if (hop == hops_.end() || now >= hop->second.retry_at) continue;
      for (size_t i : batch.recipients) waiting.recipients.emplace_back(i, m->q.state[i]);
    }
    record(std::move(waiting));
  }
  // A retry, or the first attempt after a restart: marked, so that a crash during it counts
  // (Poison). A fresh message's first attempt needs no mark (no state line means in flight).
  bool dispatched = !copies.empty() || !by_hop.empty();
  if (dispatched && !m->first_routing) record(queue::StateUpdate{.id = m->q.id, .attempt_began = true});
  m->first_routing = false;
  std::vector<std::pair<std::vector<LocalCopy>, smtp::Reply>> unusable;  // bad delivery targets
  for (auto& [target, list] : copies) {
    for (const LocalCopy& c : list) {
      for (size_t i : c.indices) m->busy[i] = true;
    }
    bool maildir = core::to_lower(target) == "maildir";
    if (maildir) {
      queue::QueuedMessage copy;
      copy.id = m->q.id;
      copy.envelope.mail_from = m->q.envelope.mail_from;
      std::vector<delivery::MaildirCopy> files;
      for (const LocalCopy& c : list) {
        copy.envelope.recipients.push_back(c.address);
        files.push_back({c.mailbox, c.address});
      }
      // The content of a message fresh from the receiving side serves this first attempt
      // without being read again (the plain local path); any other copy is read from the queue
      // by the mailbox agent, off this thread.
      copy.data = std::move(m->q.data);
      copy.content_offset = m->q.content_offset;
      copy.content_size = m->q.content_size;
      copy.content_crc = m->q.content_crc;
      local_inflight_[m->q.id].push_back({copy.envelope.recipients, list});
      local_.submit(std::move(copy), std::move(files));
      continue;
    }
    auto parsed = core::parse_delivery_target(target);
    if (!parsed || parsed->kind == core::DeliveryTarget::Kind::kMaildir) {
      std::string why = parsed ? "unexpected Maildir target" : parsed.error();
      log_line("delivery: " + m->q.id + ": delivery target " + target + " unusable: " + why);
      unusable.push_back({list, smtp::make_reply(451, "4.3.5", "delivery target " + target + " unusable: " + why)});
      continue;
    }
    auto [it, created] = lmtp_targets_.try_emplace(target);
    LmtpTarget& t = it->second;
    if (created) t.key = target;
    t.target = *parsed;
    t.ready.push_back({m, list});
    schedule_lmtp(t);
  }
  // Attempts after this one (LMTP, outbound, retries, reports) read the content from the queue:
  // a waiting message holds its envelope and state only.
  m->q.release_data();
  for (auto& [list, reply] : unusable) {
    local_done(m, list, std::vector<smtp::Reply>(list.size(), reply), "");
  }
  if (!unknown.empty()) {
    // Refused at RCPT normally; here when the mailbox went away while the message was queued.
    fail_batch(Batch{m, unknown}, smtp::make_reply(550, "5.1.1", "User unknown"), "mailbox", "");
  }
  for (auto& [key, batch] : by_hop) {
    for (size_t i : batch.recipients) m->busy[i] = true;
    auto [it, created] = hops_.try_emplace(key);
    Hop& hop = it->second;
    if (created) {
      hop.key = key;
      hop.connector = routes[key].connector;
      hop.next_hop = routes[key].next_hop;
    }
    hop.ready.push_back(std::move(batch));
    schedule_hop(hop);
  }
}

void Dispatcher::schedule_lmtp(LmtpTarget& t) {
  // A few connections per LMTP server: it is local, and each carries message after message.
  constexpr int kMaxLmtpConnections = 4;
  if (stopping_) return;
  while (!t.ready.empty() && t.connections < kMaxLmtpConnections &&
         t.ready.size() > static_cast<size_t>(t.connections)) {
    ++t.connections;
    ++lmtp_connections_;
    asio::co_spawn(io_, run_lmtp(t.key), asio::detached);
  }
}

void Dispatcher::schedule_hop(Hop& hop) {
  if (stopping_ || hop.ready.empty() || !config_) return;
  if (!hop.idle.empty()) {
    asio::steady_timer* t = hop.idle.front();
    hop.idle.pop_front();
    t->cancel();
    return;
  }
  if (now_unix() < hop.retry_at) return;
  const core::TransportSettings& ts = config_->transport;
  while (hop.connections < static_cast<int>(ts.max_per_domain_outbound_connections) &&
         connections_ < static_cast<int>(ts.max_outbound_connections) &&
         (hop.connections == 0 || hop.ready.size() > static_cast<size_t>(hop.connections))) {
    ++hop.connections;
    ++connections_;
    asio::co_spawn(io_, run_connection(hop.key), asio::detached);
    if (hop.failures > 0) break;  // one probe at a time while the next hop is failing
  }
}

void Dispatcher::fail_batch(const Batch& b, const smtp::Reply& reply, const std::string& hop,
                            const std::string& remote) {
  const MessagePtr& m = b.message;
  queue::StateUpdate update{m->q.id};
  std::string text = reply.text();
  for (size_t i : b.recipients) {
    m->busy[i] = false;
    m->remote[i] = remote;
    set_state(m, i, Status::kFailed, text, 0, hop, update);
    std::string rcpt = m->q.envelope.recipients[i];
    log_line("outbound: " + m->q.id + " " + rcpt + " failed (next hop " + hop + "): " + text);
    events_->log(events::kOutboundDeliveryFailed, m->q.id + ":" + rcpt,
                 {{"QueueId", m->q.id}, {"Recipient", rcpt}, {"NextHop", hop}, {"Reply", text}});
  }
  record(std::move(update));
  track(*m, "FAIL", hop == "mailbox" ? "MAILBOX" : "SMTP", b.recipients);
  finish_if_done(m);
}

void Dispatcher::defer_batch(const Batch& b, const smtp::Reply& reply, const std::string& hop,
                             int64_t next_attempt) {
  const MessagePtr& m = b.message;
  queue::StateUpdate update{m->q.id};
  std::string text = reply.text();
  int64_t wait = std::max<int64_t>(0, next_attempt - now_unix());
  for (size_t i : b.recipients) {
    m->busy[i] = false;
    set_state(m, i, Status::kPending, text, next_attempt, hop, update);
    std::string rcpt = m->q.envelope.recipients[i];
    log_line("outbound: " + m->q.id + " " + rcpt + " deferred (next hop " + hop + "): " + text +
             "; next attempt in " + std::to_string(wait) + " s");
    events_->log(events::kOutboundDeliveryDeferred, m->q.id + ":" + rcpt,
                 {{"QueueId", m->q.id}, {"Recipient", rcpt}, {"NextHop", hop}, {"Reply", text}});
  }
  record(std::move(update));
  if (!b.recipients.empty()) {
    QueueStats& stats = queue_stats_[m->queue_of[b.recipients.front()]];
    stats.last_error = text;
    stats.last_retry = now_unix();
  }
  track(*m, "DEFER", hop == "mailbox" || hop.starts_with("lmtp:") ? "MAILBOX" : "SMTP", b.recipients);
  // An attempt ended: a removal asked for during it applies now.
  if (m->pending_removal != queue::QueuedMessage::Removal::kNone) finish_if_done(m);
}

void Dispatcher::hop_failed(Hop& hop, const smtp::Reply& reply) {
  const core::TransportSettings& ts = config_->transport;
  int64_t now = now_unix();
  // Several connections may fail together: the next hop enters Retry once, not once each.
  if (now >= hop.retry_at) {
    ++hop.failures;
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    hop.retry_at = now + core::hop_retry_delay(ts, hop.failures, jitter(rng_)).count();
  }
  if (hop.connections > 0) return;  // those still trying take what waits; the last one defers
  std::string name = hop.connector + " -> " + hop.next_hop;
  hop.last_error = reply.text();
  // The messages leave the delivery queue until the retry is due, so that expiry and the delay
  // notice see them like any other waiting message.
  for (Batch& b : hop.ready) defer_batch(b, reply, name, hop.retry_at);
  hop.ready.clear();
}

void Dispatcher::finish_if_done(const MessagePtr& m) {
  if (m->finishing || settle_admin(m)) return;
  for (size_t i = 0; i < m->busy.size(); ++i) {
    if (m->busy[i] || !m->q.state[i].final()) return;
  }
  m->finishing = true;
  // The reports the sender is owed are queued first; they remove the message once durable.
  if (send_final_reports(m)) return;
  // `m` may be the map's only reference: erase it last, from a copy of its id.
  std::string id = m->q.id;
  spool_.remove(id);
  unreachable_.erase(id);
  messages_.erase(id);
}

void Dispatcher::tick() {
  if (stopping_) return;
  if (config_) {
    const core::TransportSettings& ts = config_->transport;
    int64_t now = now_unix();
    std::vector<MessagePtr> all;
    all.reserve(messages_.size());
    for (auto& [id, m] : messages_) all.push_back(m);
    for (const MessagePtr& m : all) {
      if (m->finishing || m->poison) continue;  // Poison waits for an administrator: no expiry, no notice
      bool due = false, waiting = false;
      bool stays = m->suspended || m->poison;  // routed only when an administrator says so
      for (size_t i = 0; i < m->busy.size(); ++i) {
        if (m->busy[i] || m->q.state[i].final()) continue;
        waiting = true;
        if (!stays && !m->unreachable[i] && !m->held[i] && m->q.state[i].next_attempt <= now) due = true;
      }
      if (waiting && core::expired(ts, m->q.arrival, now)) {
        queue::StateUpdate update{m->q.id};
        for (size_t i = 0; i < m->busy.size(); ++i) {
          if (m->busy[i] || m->q.state[i].final()) continue;
          std::string last = m->q.state[i].last_reply;
          std::string reply = "550 4.4.7 QUEUE.Expired; message expired" + (last.empty() ? "" : " (last error: " + last + ")");
          set_state(m, i, Status::kFailed, reply, 0, "", update);
          log_line("outbound: " + m->q.id + " " + m->q.envelope.recipients[i] + " failed: " + reply);
        }
        std::vector<size_t> expired;
        for (const auto& [i, st] : update.recipients) expired.push_back(i);
        record(std::move(update));
        track(*m, "FAIL", "QUEUE", expired);
      } else if (waiting && !m->q.envelope.mail_from.empty() &&
                 core::delay_notice_due(ts, m->q.arrival, now, m->q.delay_notified)) {
        send_report(m, true);
      }
      if (due) route(m);
      finish_if_done(m);
    }
    for (auto& [key, hop] : hops_) schedule_hop(hop);
  }
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](std::error_code ec) {
    if (!ec) tick();
  });
}

Resolver& Dispatcher::resolver_for(const SendConnectorRuntime& c) {
  const auto& servers = config_->transport.external_dns_servers;
  auto make = [&](const std::vector<std::string>& list) -> std::unique_ptr<Resolver> {
    if (make_resolver) return make_resolver(io_, list);
    std::string error;
    ResolverOptions options;
    options.servers = list;
    auto r = make_cares_resolver(io_, options, &error);
    if (!r) {
      std::string names;
      for (const auto& n : list) names += (names.empty() ? "" : ",") + n;
      log_line("outbound: DNS resolver with servers " + names + " unusable: " + error +
               "; using the system resolver");
      r = make_cares_resolver(io_, ResolverOptions{}, &error);
    }
    return r;
  };
  if (c.connector.use_external_dns_servers_enabled && !servers.empty()) {
    if (!external_resolver_ || external_servers_ != servers) {
      if (external_resolver_) external_resolver_->cancel();
      external_resolver_ = make(servers);
      external_servers_ = servers;
    }
    return *external_resolver_;
  }
  if (!system_resolver_) system_resolver_ = make({});
  return *system_resolver_;
}

}  // namespace starling::net
