// The reports the dispatcher owes a sender (RFC 3461, RFC 3464): non-delivery reports for failed
// recipients, the delay notice, and success reports for NOTIFY=SUCCESS ("delivered" into a
// mailbox here, "relayed" to a next hop that does not offer DSN; a next hop that does took the
// request on). NOTIFY decides per recipient: not given means FAILURE,DELAY (§4.1), NEVER means
// none. Every report goes from ExternalPostmasterAddress with the null reverse path (so it is
// never reported on), and is durable before the original leaves the queue: a crash in between
// sends it again rather than never.
#include <asio/post.hpp>

#include <array>
#include <chrono>
#include <memory>

#include "core/log.hpp"
#include "delivery/report.hpp"
#include "metrics/metrics.hpp"
#include "net/dispatcher.hpp"

namespace starling::net {
namespace {

using Status = queue::RecipientState::Status;
using Kind = delivery::ReportInput::Kind;
using Dsn = queue::RecipientDsn;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "550 5.1.1 User unknown" -> "5.1.1"; a reply without an enhanced code gets its class's.
std::string status_of(const std::string& reply) {
  if (reply.size() >= 9 && reply[3] == ' ' && reply[4] >= '2' && reply[4] <= '5' && reply[5] == '.') {
    size_t end = reply.find(' ', 4);
    return reply.substr(4, end == std::string::npos ? std::string::npos : end - 4);
  }
  if (!reply.empty() && reply[0] == '2') return "2.0.0";
  return !reply.empty() && reply[0] == '4' ? "4.0.0" : "5.0.0";
}

// RFC 3461 §4.1: a recipient without NOTIFY gets failure and delay reports, never success ones.
bool wants(const queue::Envelope& e, size_t index, uint8_t flag) {
  uint8_t notify = index < e.dsn.size() ? e.dsn[index].notify : 0;
  if (notify == 0) return flag != Dsn::kSuccess;
  return (notify & flag) != 0;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kDelay: return "delay";
    case Kind::kDelivered: return "success";
    case Kind::kRelayed: return "relayed";
    case Kind::kFailure: break;
  }
  return "failure";
}

const char* kind_description(Kind kind) {
  switch (kind) {
    case Kind::kDelay: return "delay notice";
    case Kind::kDelivered: return "delivery report";
    case Kind::kRelayed: return "relay report";
    case Kind::kFailure: break;
  }
  return "non-delivery report";
}

// The final reports, as bits of Message::reports_queued.
constexpr std::array<Kind, 3> kFinalKinds{Kind::kFailure, Kind::kDelivered, Kind::kRelayed};

}  // namespace

void Dispatcher::note_delivered(const MessagePtr& m, size_t index, DeliveredAs how) {
  if (m->delivered_as.size() < m->q.envelope.recipients.size()) {
    m->delivered_as.resize(m->q.envelope.recipients.size(), DeliveredAs::kUnknown);
  }
  m->delivered_as[index] = how;
}

void Dispatcher::send_report(const MessagePtr& m, bool delay) {
  if (!delay) {
    send_final_reports(m);
    return;
  }
  std::vector<size_t> recipients;
  for (size_t i = 0; i < m->q.state.size(); ++i) {
    if (m->q.state[i].status == Status::kPending && wants(m->q.envelope, i, Dsn::kDelay)) recipients.push_back(i);
  }
  // Once, whether anybody wants it or not (RFC 3461: NOTIFY without DELAY asks for none).
  m->q.delay_notified = true;
  if (recipients.empty()) return;
  std::string id = m->q.id;
  queue_report(m, static_cast<int>(Kind::kDelay), recipients, [this, id](bool ok) {
    if (ok) record(queue::StateUpdate{id, {}, true});
  });
}

bool Dispatcher::send_final_reports(const MessagePtr& m) {
  // Mail from <> is never reported on: no bounce of a bounce.
  if (m->q.envelope.mail_from.empty() || !config_) return false;
  const queue::Envelope& e = m->q.envelope;
  std::array<std::vector<size_t>, kFinalKinds.size()> due;
  for (size_t i = 0; i < m->q.state.size(); ++i) {
    Status status = m->q.state[i].status;
    if (status == Status::kFailed && wants(e, i, Dsn::kFailure)) due[0].push_back(i);
    if (status != Status::kDelivered || !wants(e, i, Dsn::kSuccess)) continue;
    DeliveredAs how = i < m->delivered_as.size() ? m->delivered_as[i] : DeliveredAs::kUnknown;
    // Delivered before a restart: whether the next hop took the request is forgotten, and a
    // possibly second notice is better than none.
    if (how == DeliveredAs::kMailbox) due[1].push_back(i);
    if (how == DeliveredAs::kRelayed || how == DeliveredAs::kUnknown) due[2].push_back(i);
  }
  auto pending = std::make_shared<size_t>(0);
  auto all_ok = std::make_shared<bool>(true);
  for (size_t k = 0; k < kFinalKinds.size(); ++k) {
    if (due[k].empty() || (m->reports_queued & (1u << k))) continue;
    ++*pending;
  }
  if (*pending == 0) return false;
  std::string id = m->q.id;
  for (size_t k = 0; k < kFinalKinds.size(); ++k) {
    if (due[k].empty() || (m->reports_queued & (1u << k))) continue;
    queue_report(m, static_cast<int>(kFinalKinds[k]), due[k], [this, id, k, pending, all_ok](bool ok) {
      auto it = messages_.find(id);
      if (it == messages_.end()) return;
      MessagePtr msg = it->second;
      if (ok) msg->reports_queued |= static_cast<uint8_t>(1u << k);
      *all_ok = *all_ok && ok;
      if (--*pending > 0) return;
      if (!*all_ok) {
        msg->finishing = false;  // the tick tries the missing ones again
        return;
      }
      spool_.remove(id);
      unreachable_.erase(id);
      messages_.erase(it);
    });
  }
  return true;
}

// Makes one report and queues it; `done` runs on the delivery thread with whether it is durable.
void Dispatcher::queue_report(const MessagePtr& m, int kind_value, const std::vector<size_t>& recipients,
                              std::function<void(bool ok)> done) {
  const OutboundConfig& cfg = *config_;
  const Kind kind = static_cast<Kind>(kind_value);
  const queue::Envelope& e = m->q.envelope;
  delivery::ReportInput in;
  in.kind = kind;
  in.reporting_mta = cfg.server.fqdn;
  in.postmaster = cfg.postmaster;
  in.return_path = e.mail_from;
  in.queue_id = m->q.id;
  in.arrival = m->q.arrival;
  in.now = now_unix();
  in.headers_only = e.dsn_ret == "HDRS";
  in.envid = e.dsn_envid;
  // Larger originals are returned as headers only: no need to read more than that limit.
  auto original = m->q.has_data() ? Result<std::string>(m->q.data) : spool_.load(m->q, in.max_full_original + 1);
  if (original) {
    in.original = std::move(*original);
  } else {
    log_line("outbound: " + m->q.id + ": the report goes without the original: " + original.error());
  }
  for (size_t i : recipients) {
    const auto& st = m->q.state[i];
    std::string status = status_of(st.last_reply);
    if (kind == Kind::kDelay && status[0] != '4') status = "4.4.7";
    if (kind == Kind::kFailure && st.last_reply.find("4.4.7") != std::string::npos) status = "4.4.7";
    std::string orcpt = i < e.dsn.size() ? e.dsn[i].orcpt : std::string();
    in.recipients.push_back({e.recipients[i], status, m->remote[i], st.last_reply, std::move(orcpt)});
  }
  delivery::Report report = delivery::make_report(in);
  std::string id = m->q.id;
  log_line("outbound: " + id + " " + kind_description(kind) + " " + report.message_id + " to " + in.return_path);
  logs::TrackingEvent event;
  event.event_id = "DSN";
  event.source = "DSN";
  event.internal_message_id = id;
  event.message_id = m->q.message_id;
  event.message_subject = m->q.subject;
  event.reference = report.message_id;
  event.sender = "";
  event.return_path = "";
  event.recipients = report.recipients;
  event.total_bytes = report.data.size();
  event.message_info = kind_name(kind);
  spool_.enqueue(spool_.new_id(), queue::Envelope{"", report.recipients}, "", std::move(report.data),
                 [this, id, kind, event = std::move(event), done = std::move(done)](Result<std::string> r) mutable {
                   asio::post(io_, [id, kind, ok = r.ok(), why = r.ok() ? std::string() : r.error(),
                                    event = std::move(event), done = std::move(done)]() mutable {
                     if (!ok) {
                       log_line("outbound: " + id + ": cannot queue the " + kind_description(kind) + ": " + why +
                                "; trying again");
                     } else {
                       logs::track(std::move(event));
                       metrics::count(metrics::kReportsSent, {{"kind", kind_name(kind)}});
                     }
                     done(ok);
                   });
                 });
}

}  // namespace starling::net
