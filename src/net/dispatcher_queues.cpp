// The dispatcher's queues as the administrator sees and steers them (core::QueueControl, through
// net::QueueAdmin): every view is computed from the delivery thread's state of the moment, and
// every action changes that state and, where it must survive a restart (a message suspended or
// removed, a crash count reset), appends it to the message's queue file before it is answered.
// Also the message tracking entries and the delivery metrics the dispatcher gives.
#include <asio/post.hpp>

#include <algorithm>

#include "core/log.hpp"
#include "core/names.hpp"
#include "metrics/metrics.hpp"
#include "net/dispatcher.hpp"

namespace starling::net {
namespace {

using Status = queue::RecipientState::Status;
using Removal = queue::QueuedMessage::Removal;

const std::string kSubmission = "Submission", kUnreachable = "Unreachable", kPoison = "Poison";
// Exchange drops a delivery queue that has been empty for its QueueMaxIdleTime (3 minutes).
constexpr int64_t kQueueMaxIdle = 180;

bool is_special(const std::string& queue) {
  return queue == kSubmission || queue == kUnreachable || queue == kPoison;
}
// Exchange's text for a message removed by an administrator (RFC 3463 4.3.2: system not
// accepting messages; the class is 5: the recipient fails).
const std::string kAdminRemoval = "550 4.3.2 QUEUE.Admin; message deleted by administrative action";

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* status_name(Status s) {
  return s == Status::kDelivered ? "delivered" : s == Status::kFailed ? "failed" : "deferred";
}

}  // namespace

void Dispatcher::RateWindow::add(int64_t now) {
  size_t slot = static_cast<size_t>(now % 60);
  if (second[slot] != now) {
    second[slot] = now;
    count[slot] = 0;
  }
  ++count[slot];
}

double Dispatcher::RateWindow::rate(int64_t now) const {
  uint64_t total = 0;
  for (size_t i = 0; i < 60; ++i) {
    if (now - second[i] < 60) total += count[i];
  }
  return static_cast<double>(total) / 60.0;
}

bool Dispatcher::hold(const MessagePtr& m, size_t index, const std::string& queue, const std::string& kind,
                      const std::string& connector) {
  enter_queue(m, index, queue, kind, connector);
  m->held[index] = suspended_queues_.contains(core::to_lower(queue));
  return m->held[index] || m->suspended || m->poison || m->q.state[index].next_attempt > now_unix();
}

void Dispatcher::enter_queue(const MessagePtr& m, size_t index, const std::string& queue, const std::string& kind,
                             const std::string& connector) {
  int64_t now = now_unix();
  drop_idle_queues(now);
  QueueStats& stats = queue_stats_[queue];
  stats.delivery_type = kind;
  stats.connector = connector;
  stats.last_used = now;
  if (m->queue_of[index] == queue) return;
  bool already = std::find(m->queue_of.begin(), m->queue_of.end(), queue) != m->queue_of.end();
  m->queue_of[index] = queue;
  if (!already) stats.in.add(now);
}

void Dispatcher::drop_idle_queues(int64_t now) {
  if (now < idle_check_at_) return;
  idle_check_at_ = now + 60;
  std::set<std::string> in_use;
  for (const auto& [id, m] : messages_) {
    for (size_t i = 0; i < m->q.state.size(); ++i) {
      if (!m->q.state[i].final() && !m->queue_of[i].empty()) in_use.insert(m->queue_of[i]);
    }
  }
  for (const auto& [key, hop] : hops_) {
    if (hop.connections > 0 || !hop.ready.empty() || hop.retry_at > now) in_use.insert(hop.next_hop);
  }
  // A suspended queue stays listed, so that resume-queue still finds it.
  std::erase_if(queue_stats_, [&](const auto& entry) {
    return now - entry.second.last_used >= kQueueMaxIdle && !in_use.contains(entry.first) &&
           !suspended_queues_.contains(core::to_lower(entry.first));
  });
}

std::string Dispatcher::queue_name(const Message& m, size_t index) const {
  if (m.poison) return kPoison;
  if (m.unreachable[index]) return kUnreachable;
  return m.queue_of[index].empty() ? kSubmission : m.queue_of[index];
}

void Dispatcher::count_outcome(const Message& m, size_t index, Status status) {
  std::string queue = queue_name(m, index);
  metrics::Labels hop{{"next_hop", queue}};
  metrics::count(status == Status::kDelivered ? metrics::kMessagesDelivered
                 : status == Status::kFailed  ? metrics::kMessagesFailed
                                              : metrics::kMessagesDeferred,
                 hop);
  metrics::count(metrics::kDeliveries, {{"next_hop", queue}, {"result", status_name(status)}});
  // Submission, Unreachable and Poison have no next hop: their figures are not kept here.
  auto stats = queue_stats_.find(queue);
  if (status == Status::kPending || stats == queue_stats_.end()) return;
  // The message leaves this queue when no other recipient of it waits there.
  for (size_t j = 0; j < m.q.state.size(); ++j) {
    if (j != index && !m.q.state[j].final() && queue_name(m, j) == queue) return;
  }
  int64_t now = now_unix();
  stats->second.out.add(now);
  stats->second.last_used = now;
}

void Dispatcher::track(const Message& m, std::string event, std::string source, const std::vector<size_t>& indices,
                       logs::TrackingEvent e) {
  e.event_id = std::move(event);
  e.source = std::move(source);
  e.internal_message_id = m.q.id;
  e.message_id = m.q.message_id;
  e.message_subject = m.q.subject;
  e.sender = m.q.envelope.mail_from;
  e.return_path = m.q.envelope.mail_from;
  e.total_bytes = m.q.content_size;
  bool replies = e.recipient_status.empty() &&
                 (e.event_id == "DELIVER" || e.event_id == "DEFER" || e.event_id == "FAIL");
  for (size_t i : indices) {
    e.recipients.push_back(m.q.envelope.recipients[i]);
    if (replies) e.recipient_status.push_back(m.q.state[i].last_reply);
  }
  logs::track(std::move(e));
}

void Dispatcher::track_send(const Message& m, const std::vector<size_t>& indices, const smtp::Outcome& outcome,
                            const std::string& host, const std::string& remote, const std::string& tls,
                            const std::string& connector) {
  logs::TrackingEvent e;
  size_t open = remote.find('['), close = remote.find(']');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    e.server_ip = remote.substr(open + 1, close - open - 1);
  }
  e.server_hostname = host;
  e.connector_id = connector;
  e.message_info = tls;
  for (size_t j = 0; j < indices.size(); ++j) {
    e.recipient_status.push_back(j < outcome.recipients.size() ? outcome.recipients[j].text() : "");
  }
  track(m, "SEND", "SMTP", indices, std::move(e));
}

void Dispatcher::admit(const MessagePtr& m) {
  m->number = ++last_number_;
  m->first_routing = !m->q.recovered;
  m->suspended = m->q.suspended;
  std::vector<size_t> all(m->q.envelope.recipients.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (!m->q.recovered) track(*m, "SUBMIT", "QUEUE", all);
  if (m->q.removal == Removal::kWithReport) {
    // Removed with a report while in an attempt, just before the stop: the removal completes.
    queue::StateUpdate update{m->q.id};
    remove_recipients(m, update);
    record(std::move(update));
    return;
  }
  uint32_t threshold = config_ ? config_->transport.poison_threshold : 2;
  if (threshold > 0 && m->q.crashes >= threshold) {
    m->poison = true;
    log_line("queue: " + m->q.id + " was in flight during " + std::to_string(m->q.crashes) +
             " crashes: set aside in Poison (resume-message or remove-message takes it out)");
    track(*m, "POISONMESSAGE", "QUEUE", all);
  }
}

void Dispatcher::remove_recipients(const MessagePtr& m, queue::StateUpdate& update) {
  std::vector<size_t> removed;
  for (size_t i = 0; i < m->q.state.size(); ++i) {
    if (m->q.state[i].final() || m->busy[i]) continue;
    m->unreachable[i] = false;
    m->held[i] = false;
    set_state(m, i, Status::kFailed, kAdminRemoval, 0, "", update);
    removed.push_back(i);
  }
  m->poison = false;
  if (!removed.empty()) track(*m, "FAIL", "ADMIN", removed);
}

bool Dispatcher::settle_admin(const MessagePtr& m) {
  if (m->pending_removal == Removal::kNone) return false;
  if (std::any_of(m->busy.begin(), m->busy.end(), [](bool b) { return b; })) return false;  // still in an attempt
  Removal removal = std::exchange(m->pending_removal, Removal::kNone);
  if (removal == Removal::kWithReport) {
    queue::StateUpdate update{m->q.id};
    remove_recipients(m, update);
    record(std::move(update));
    return false;  // finish_if_done goes on: the report
  }
  // Without a report: its "x 0" line is durable already; recovery would drop it too.
  MessagePtr keep = m;
  keep->finishing = true;
  spool_.remove(keep->q.id);
  unreachable_.erase(keep->q.id);
  messages_.erase(keep->q.id);
  return true;
}

void Dispatcher::take_back(const MessagePtr& m, const std::function<bool(size_t)>& which) {
  take_back_lmtp(m, which);
  for (auto& [key, hop] : hops_) {
    for (auto it = hop.ready.begin(); it != hop.ready.end();) {
      if (it->message != m) {
        ++it;
        continue;
      }
      std::erase_if(it->recipients, [&](size_t i) {
        if (!which(i)) return false;
        m->busy[i] = false;
        return true;
      });
      it = it->recipients.empty() ? hop.ready.erase(it) : std::next(it);
    }
  }
}

void Dispatcher::take_back_lmtp(const MessagePtr& m, const std::function<bool(size_t)>& which) {
  // Undoes what route() did for a copy: one part fewer. A recipient whose other copies are out
  // still (a group expanded at delivery to several targets) waits when they are back, so that
  // all its copies are made again, as after any copy refused for now.
  auto give_back = [&](size_t i) {
    if (--m->parts[i] > 0) {
      m->part_reply[i] = smtp::make_reply(451, "4.3.2", "a copy was taken back by an administrator");
      return;
    }
    m->parts[i] = 0;
    m->part_reply[i].reset();
    m->busy[i] = false;
  };
  for (auto& [key, target] : lmtp_targets_) {
    for (auto job = target.ready.begin(); job != target.ready.end();) {
      if (job->message != m) {
        ++job;
        continue;
      }
      std::erase_if(job->copies, [&](const LocalCopy& c) {
        if (std::none_of(c.indices.begin(), c.indices.end(), which)) return false;
        for (size_t i : c.indices) give_back(i);
        return true;
      });
      job = job->copies.empty() ? target.ready.erase(job) : std::next(job);
    }
  }
}

Dispatcher::MessagePtr Dispatcher::find_message(const core::MessageRef& ref, std::string& error) {
  for (auto& [id, m] : messages_) {
    bool match = ref.number ? m->number == *ref.number : core::iequals(id, ref.internal_id);
    if (!match || m->finishing) continue;
    if (ref.queue.empty()) return m;
    for (size_t i = 0; i < m->q.state.size(); ++i) {
      if (!m->q.state[i].final() && core::iequals(queue_name(*m, i), ref.queue)) return m;
    }
  }
  std::string name = ref.number ? std::to_string(*ref.number) : ref.internal_id;
  error = "no message " + name + (ref.queue.empty() ? "" : " in queue " + ref.queue) +
          " (get-message lists them)";
  return nullptr;
}

Result<queue::QueuedMessage> Dispatcher::message_for(const core::MessageRef& ref) {
  std::string error;
  MessagePtr m = find_message(ref, error);
  if (!m) return make_error(error);
  queue::QueuedMessage copy;
  copy.id = m->q.id;
  copy.envelope = m->q.envelope;
  copy.content_offset = m->q.content_offset;
  copy.content_size = m->q.content_size;
  copy.content_crc = m->q.content_crc;
  return copy;
}

struct Dispatcher::QueueGroup {
  std::vector<size_t> indices;  // its recipients waiting in this queue
  bool active = false;          // some recipient is in an attempt
  bool retry = false;           // some recipient waits for its retry
  int64_t next_retry = 0;
};

std::set<std::pair<const Dispatcher::Message*, size_t>> Dispatcher::waiting_recipients() const {
  std::set<std::pair<const Message*, size_t>> waiting;
  for (const auto& [key, hop] : hops_) {
    for (const Batch& b : hop.ready) {
      for (size_t i : b.recipients) waiting.emplace(b.message.get(), i);
    }
  }
  for (const auto& [key, target] : lmtp_targets_) {
    for (const LmtpJob& job : target.ready) {
      for (const LocalCopy& c : job.copies) {
        for (size_t i : c.indices) waiting.emplace(job.message.get(), i);
      }
    }
  }
  return waiting;
}

std::map<std::string, Dispatcher::QueueGroup> Dispatcher::groups_of(
    const Message& m, const std::set<std::pair<const Message*, size_t>>& waiting, int64_t now) const {
  std::map<std::string, QueueGroup> groups;
  for (size_t i = 0; i < m.q.state.size(); ++i) {
    const queue::RecipientState& st = m.q.state[i];
    if (st.final()) continue;
    QueueGroup& g = groups[queue_name(m, i)];
    g.indices.push_back(i);
    if (m.busy[i] && !waiting.contains({&m, i})) g.active = true;
    if (!m.busy[i] && st.attempts > 0 && st.next_attempt > now) {
      g.retry = true;
      g.next_retry = g.next_retry == 0 ? st.next_attempt : std::min(g.next_retry, st.next_attempt);
    }
  }
  return groups;
}

std::string Dispatcher::group_status(const Message& m, const QueueGroup& g) const {
  if (m.pending_removal != Removal::kNone) return "PendingRemove";
  if (m.suspended) return g.active ? "PendingSuspend" : "Suspended";
  if (m.poison) return "Suspended";
  if (g.active) return "Active";
  return g.retry ? "Retry" : "Ready";
}

core::MessageInfo Dispatcher::message_info(const Message& m, const std::string& queue, const QueueGroup& g,
                                           bool include_recipients) const {
  core::MessageInfo info;
  info.number = m.number;
  info.queue = queue;
  info.internal_id = m.q.id;
  info.from_address = m.q.envelope.mail_from;
  info.subject = m.q.subject;
  info.size = m.q.content_size;
  info.status = group_status(m, g);
  info.date_received = m.q.arrival;
  if (config_) info.expiration_time = m.q.arrival + config_->transport.message_expiration_timeout.count();
  info.internet_message_id = m.q.message_id;
  for (size_t i : g.indices) {
    const queue::RecipientState& st = m.q.state[i];
    if (st.attempts >= info.retry_count && st.attempts > 0) {
      info.retry_count = st.attempts;
      info.last_error = st.last_reply;
    }
  }
  if (!include_recipients) return info;
  for (size_t i = 0; i < m.q.state.size(); ++i) {
    const queue::RecipientState& st = m.q.state[i];
    core::RecipientInfo r{m.q.envelope.recipients[i], "", st.last_reply, st.final() ? "" : queue_name(m, i)};
    bool here = std::find(g.indices.begin(), g.indices.end(), i) != g.indices.end();
    r.status = st.status == Status::kDelivered ? "Delivered"
               : st.status == Status::kFailed  ? "Failed"
               : here                          ? info.status
               : m.held[i]                     ? "Ready"
                                               : (st.attempts > 0 ? "Retry" : "Ready");
    info.recipients.push_back(std::move(r));
  }
  return info;
}

std::vector<core::MessageInfo> Dispatcher::message_views(bool include_recipients) {
  int64_t now = now_unix();
  auto waiting = waiting_recipients();
  std::vector<core::MessageInfo> out;
  for (const auto& [id, m] : messages_) {
    if (m->finishing) continue;
    for (const auto& [queue, g] : groups_of(*m, waiting, now)) {
      out.push_back(message_info(*m, queue, g, include_recipients));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.number < b.number; });
  return out;
}

std::vector<core::QueueInfo> Dispatcher::queue_views() {
  int64_t now = now_unix();
  drop_idle_queues(now);
  std::map<std::string, core::QueueInfo> by_name;  // lower-case name
  std::map<std::string, bool> all_retry;
  auto info = [&](const std::string& name, const std::string& type) -> core::QueueInfo& {
    auto [it, created] = by_name.try_emplace(core::to_lower(name));
    if (created) {
      it->second.name = name;
      it->second.delivery_type = type;
      it->second.status = "Ready";
      all_retry[it->first] = true;
    }
    return it->second;
  };
  info(kSubmission, "Undefined");
  info(kUnreachable, "Unreachable");
  info(kPoison, "Undefined");
  for (const auto& [name, stats] : queue_stats_) {
    core::QueueInfo& q = info(name, stats.delivery_type);
    q.next_hop_domain = name;
    q.next_hop_connector = stats.connector;
    q.last_error = stats.last_error;
    q.last_retry_time = stats.last_retry;
    q.incoming_rate = stats.in.rate(now);
    q.outgoing_rate = stats.out.rate(now);
  }
  auto waiting = waiting_recipients();
  for (const auto& [id, m] : messages_) {
    if (m->finishing) continue;
    for (const auto& [queue, g] : groups_of(*m, waiting, now)) {
      core::QueueInfo& q = info(queue, "Undefined");
      ++q.message_count;
      if (q.oldest_arrival == 0 || m->q.arrival < q.oldest_arrival) q.oldest_arrival = m->q.arrival;
      if (g.active) q.status = "Active";
      bool retry = g.retry && !g.active;
      all_retry[core::to_lower(queue)] = all_retry[core::to_lower(queue)] && retry;
      if (retry && (q.next_retry_time == 0 || g.next_retry < q.next_retry_time)) q.next_retry_time = g.next_retry;
    }
  }
  {
    std::lock_guard lock(inbox_mutex_);
    info(kSubmission, "Undefined").message_count += inbox_.size();
  }
  core::QueueInfo& submission = info(kSubmission, "Undefined");
  submission.incoming_rate = submission.outgoing_rate = submission_in_.rate(now);
  for (const auto& [key, hop] : hops_) {
    bool idle = hop.connections == 0 && hop.ready.empty() && hop.retry_at <= now;
    if (idle && !by_name.contains(core::to_lower(hop.next_hop))) continue;  // dropped as idle
    core::QueueInfo& q = info(hop.next_hop, "Undefined");
    if (hop.connections > 0) q.status = "Active";
    if (hop.retry_at > now) {
      q.status = "Retry";
      q.next_retry_time = hop.retry_at;
      q.last_error = hop.last_error;
    }
  }
  // A suspended queue is listed even while empty (after a restart it has no statistics yet).
  for (const std::string& name : suspended_queues_) {
    if (!by_name.contains(name)) info(name, "Undefined").next_hop_domain = name;
  }
  std::vector<core::QueueInfo> out;
  for (auto& [key, q] : by_name) {
    if (q.status == "Ready" && q.message_count > 0 && all_retry[key]) q.status = "Retry";
    if (q.status != "Retry") q.next_retry_time = 0;
    if (suspended_queues_.contains(key)) q.status = "Suspended";
    out.push_back(std::move(q));
  }
  return out;
}

std::string Dispatcher::retry_queue(const std::string& queue, bool resubmit) {
  for (auto& [key, hop] : hops_) {
    if (core::iequals(hop.next_hop, queue)) hop.retry_at = 0;
  }
  std::vector<MessagePtr> touched;
  for (auto& [id, m] : messages_) {
    if (m->finishing || m->poison || m->suspended) continue;
    auto here = [&](size_t i) { return !m->q.state[i].final() && core::iequals(queue_name(*m, i), queue); };
    if (resubmit) take_back(m, here);
    bool in = false;
    for (size_t i = 0; i < m->q.state.size(); ++i) {
      if (!here(i) || m->busy[i]) continue;
      in = true;
      m->q.state[i].next_attempt = 0;
      if (!resubmit) continue;
      m->unreachable[i] = false;
      m->held[i] = false;
      m->queue_of[i].clear();
    }
    if (in) touched.push_back(m);
  }
  for (const MessagePtr& m : touched) {
    if (resubmit) {
      unreachable_.erase(m->q.id);  // route() puts it back if it still has no route
      track(*m, "RESUBMIT", "ADMIN", {}, {.reference = queue});
    }
    route(m);
  }
  for (auto& [key, hop] : hops_) {
    if (core::iequals(hop.next_hop, queue)) schedule_hop(hop);
  }
  return std::to_string(touched.size()) + " message(s) of queue " + queue +
         (resubmit ? " routed again" : " will be retried now");
}

Result<std::string> Dispatcher::act_on_queue(const std::string& name, core::QueueAction action) {
  std::string queue;
  for (const std::string& special : {kSubmission, kUnreachable, kPoison}) {
    if (core::iequals(name, special)) queue = special;
  }
  for (const auto& [known, stats] : queue_stats_) {
    if (queue.empty() && core::iequals(name, known)) queue = known;
  }
  for (const std::string& known : suspended_queues_) {
    if (queue.empty() && core::iequals(name, known)) queue = known;
  }
  if (queue.empty()) return make_error("no queue named " + name + " (get-queue lists them)");
  bool special = is_special(queue);
  using A = core::QueueAction;
  if (queue == kPoison && (action == A::kRetry || action == A::kResubmit)) {
    return make_error("Poison messages are never tried again by the queue: resume-message or remove-message takes one out");
  }
  if (queue == kSubmission && (action == A::kRetry || action == A::kResubmit)) {
    return std::string("Submission holds nothing to retry: messages are routed as they arrive");
  }
  if ((action == A::kSuspend || action == A::kResume) && special) {
    return make_error(queue + " cannot be suspended or resumed: only delivery queues can");
  }
  if (action == A::kRetry || action == A::kResubmit) {
    // Unreachable's messages wait for a route: trying again is routing again.
    return retry_queue(queue, action == A::kResubmit || queue == kUnreachable);
  }
  std::string key = core::to_lower(queue);
  size_t count = 0;
  std::set<std::string> names = suspended_queues_;
  bool changes = action == A::kSuspend ? names.insert(key).second : names.erase(key) > 0;
  if (changes) {
    if (auto saved = save_suspended_queues(names); !saved) {
      return make_error("queue " + queue + " unchanged: cannot record it: " + saved.error());
    }
  }
  if (action == A::kSuspend) {
    if (!changes) return "queue " + queue + " is suspended already";
    suspended_queues_ = std::move(names);
    for (auto& [id, m] : messages_) {
      auto here = [&](size_t i) { return !m->q.state[i].final() && m->queue_of[i] == queue; };
      take_back(m, here);
      bool in = false;
      for (size_t i = 0; i < m->q.state.size(); ++i) {
        if (here(i) && !m->busy[i]) m->held[i] = in = true;
      }
      count += in;
    }
    return "queue " + queue + " suspended: its " + std::to_string(count) +
           " message(s) stay, messages still enter, none leaves until resume-queue";
  }
  if (!changes) return "queue " + queue + " is not suspended";
  suspended_queues_ = std::move(names);
  std::vector<MessagePtr> again;
  for (auto& [id, m] : messages_) {
    bool in = false;
    for (size_t i = 0; i < m->q.state.size(); ++i) {
      if (m->held[i] && m->queue_of[i] == queue) {
        m->held[i] = false;
        in = true;
      }
    }
    if (in) again.push_back(m);
  }
  for (const MessagePtr& m : again) route(m);
  return "queue " + queue + " resumed: " + std::to_string(again.size()) + " message(s) go on";
}

void Dispatcher::act_on_message(const core::MessageRef& ref, core::MessageAction action,
                                std::function<void(Result<std::vector<core::MessageInfo>>)> done) {
  std::string error;
  MessagePtr m = find_message(ref, error);
  if (!m) return done(make_error(error));
  if (m->acting) return done(make_error("another change to message " + m->q.id + " is being made; try again"));
  using A = core::MessageAction;
  queue::StateUpdate update{m->q.id};
  if (action == A::kSuspend) {
    if (m->poison) return done(make_error("message " + m->q.id + " is in Poison: resume-message or remove-message"));
    if (!m->suspended) update.suspended = true;
  } else if (action == A::kResume) {
    if (m->suspended) update.suspended = false;
    if (m->poison) update.crashes = 0;
  } else if (m->pending_removal == Removal::kNone) {
    update.removal = action == A::kRemoveWithNdr ? Removal::kWithReport : Removal::kWithoutReport;
  }
  // Nothing changes until the change is in the queue file: a failed write leaves the message
  // as it was, and the administrator hears why.
  m->acting = true;
  spool_.update(std::move(update), [this, m, action, done = std::move(done)](Result<void> r) mutable {
    asio::post(io_, [this, m, action, r = std::move(r), done = std::move(done)]() mutable {
      m->acting = false;
      if (!r) return done(std::move(r).take_error());
      if (m->finishing || !messages_.contains(m->q.id)) {
        return done(make_error("message " + m->q.id + " left the queue before the change applied"));
      }
      done(apply_message_action(m, action));
    });
  });
}

std::vector<core::MessageInfo> Dispatcher::apply_message_action(const MessagePtr& m, core::MessageAction action) {
  using A = core::MessageAction;
  auto all = [](size_t) { return true; };
  if (action == A::kSuspend) {
    m->suspended = true;
    take_back(m, all);
  } else if (action == A::kResume) {
    if (m->poison) {
      m->q.crashes = 0;
      log_line("queue: " + m->q.id + " taken out of Poison by an administrator");
    }
    m->suspended = m->poison = false;
  } else if (m->pending_removal == Removal::kNone) {
    m->pending_removal = action == A::kRemoveWithNdr ? Removal::kWithReport : Removal::kWithoutReport;
    take_back(m, all);
  }
  // What the caller sees: the message as the action leaves it (a removal in an attempt waits).
  std::vector<core::MessageInfo> acted;
  auto waiting = waiting_recipients();
  bool busy = std::any_of(m->busy.begin(), m->busy.end(), [](bool b) { return b; });
  for (const auto& [queue, g] : groups_of(*m, waiting, now_unix())) {
    acted.push_back(message_info(*m, queue, g, false));
    if (m->pending_removal != Removal::kNone && !busy) acted.back().status = "Removed";
  }
  if (action == A::kResume) route(m);
  if (m->pending_removal != Removal::kNone) finish_if_done(m);
  return acted;
}

void Dispatcher::load_suspended_queues() {
  // Written by this program, but in a directory the service user can write: bounded, and only
  // ever compared with queue names.
  constexpr size_t kMaxNames = 10000, kMaxName = 1024;
  auto text = spool_.read_file(queue::kSuspendedQueuesFile, kMaxNames * (kMaxName + 1));
  if (!text) log_line("outbound: the suspended queues are not known: " + text.error());
  std::string_view rest = text ? std::string_view(*text) : std::string_view();
  while (suspended_queues_.size() < kMaxNames && !rest.empty()) {
    size_t end = std::min(rest.find('\n'), rest.size());
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (!line.empty() && line.size() <= kMaxName) suspended_queues_.insert(core::to_lower(line));
  }
  if (!suspended_queues_.empty()) {
    log_line("outbound: " + std::to_string(suspended_queues_.size()) + " queue(s) suspended before the restart stay suspended");
  }
}

Result<void> Dispatcher::save_suspended_queues(const std::set<std::string>& names) {
  std::string text;
  for (const std::string& n : names) text += n + "\n";
  return spool_.replace_file(queue::kSuspendedQueuesFile, text);
}

}  // namespace starling::net
