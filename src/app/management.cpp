#include "app/management.hpp"

#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "diag/evaluation.hpp"
#include "events/event_log.hpp"
#include "logs/tracking_log.hpp"
#include "mgmt/protocol.hpp"
#include "net/queue_admin.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;

namespace starling::app {
namespace {

// How many distinct users refused at accept are remembered between two polls; past it the
// rest count under one entry (a flood from many uids must not grow the map).
constexpr size_t kMaxRefusedUsers = 1024;
const std::string kOtherUsers = "(other users)";

}  // namespace

Management::Management(const fs::path& dir, asio::io_context& io, net::Server& server, tls::ContextCache& contexts,
                       net::Dispatcher& dispatcher)
    : dir_(dir), io_(io), server_(server), contexts_(contexts), dispatcher_(dispatcher) {
  thread_ = std::thread([this] {
    for (;;) {
      try {
        work_.run();
        break;
      } catch (const std::exception& e) {  // the edge: one failed task must not end the thread
        log_line(LogLevel::kError, std::string("starlingd: management task failed: ") + e.what());
      }
    }
    finished_.set_value();
  });
}

Management::~Management() {
  if (abandoned_) {
    // The abandoned command still uses this object: ending the process now is the only safe
    // way on (stop_within's contract says the caller should have done it already).
    std::_Exit(0);
  }
  stop();
}

Result<void> Management::open() {
  auto store = store::Store::open(dir_ / "starling.db");
  if (!store) return std::move(store).take_error();
  store_ = std::move(*store);
  events_ = std::make_unique<events::EventLog>(store_.get());
  auto version = store_->data_version();
  auto generation = store_->generation();
  if (!version || !generation) return make_error(version ? generation.error() : version.error());
  data_version_ = *version;
  applied_generation_ = *generation;
  changes_since_mark();
  refresh_role_holders();
  asio::post(work_, [this] {
    events_->prune();
    schedule_poll();
  });
  return {};
}

void Management::handle(std::string line, net::PeerCredentials peer, std::function<void(std::string)> reply) {
  asio::post(work_, [this, line = std::move(line), peer, reply = std::move(reply)] {
    if (stopping_) return;
    mgmt::Reply r;
    try {
      r = run(line, peer);
    } catch (const std::exception& e) {  // the edge: a bug in one command must not stop the server
      log_line(LogLevel::kError, std::string("starlingd: management command failed: ") + e.what());
      r = mgmt::failure(mgmt::kExitFailed, std::string("internal error: ") + e.what());
    }
    reply(mgmt::encode_reply(r));
  });
}

std::optional<std::string> Management::admit(const net::PeerCredentials& peer) {
  std::shared_ptr<const mgmt::RoleHolders> holders;
  {
    std::lock_guard lock(gate_mutex_);
    holders = holders_;
  }
  if (!holders) return std::nullopt;  // not open yet: execute() decides alone
  mgmt::Caller caller = callers_.resolve(peer.uid, peer.gid, holders->admin_group);
  if (holders->admits(caller)) return std::nullopt;
  {
    std::lock_guard lock(gate_mutex_);
    bool known = refused_.contains(caller.user);
    ++refused_[known || refused_.size() < kMaxRefusedUsers ? caller.user : kOtherUsers];
  }
  return mgmt::encode_reply(mgmt::failure(mgmt::kExitDenied, mgmt::no_role_refusal(caller, *holders)));
}

std::string Management::refuse(const std::string& reason) {
  return mgmt::encode_reply(mgmt::failure(mgmt::kExitFailed, "starlingd turned the request away: " + reason));
}

void Management::evaluate_soon() {
  asio::post(work_, [this] {
    if (stopping_) return;
    auto runtime = net::load_runtime(*store_, contexts_);
    if (runtime) report(*runtime);
  });
}

void Management::auth_failed(net::AuthFailure f) {
  asio::post(work_, [this, f = std::move(f)] {
    events_->log(events::kSmtpAuthenticationFailed, "auth:" + f.connector + ":" + f.client_ip + ":" + f.user,
                 {{"Connector", f.connector}, {"ClientIp", f.client_ip}, {"User", f.user}});
  });
}

bool Management::stop_within(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return !abandoned_;
  stopping_ = true;
  work_guard_.reset();
  work_.stop();  // the running task finishes; none after it starts
  if (finished_future_.wait_for(timeout) != std::future_status::ready) {
    log_line(LogLevel::kWarning, "starlingd: a management command is still running after " +
                                     std::to_string(timeout.count()) + " ms; it is abandoned");
    thread_.detach();
    abandoned_ = true;
    return false;
  }
  thread_.join();
  return true;
}

void Management::stop() { stop_within(std::chrono::hours(24 * 365)); }

mgmt::Reply Management::run(const std::string& line, net::PeerCredentials peer) {
  auto request = mgmt::decode_request(line);
  if (!request) return mgmt::failure(mgmt::kExitUsage, request.error());
  auto settings = store_->server_settings();
  if (!settings) return mgmt::failure(mgmt::kExitFailed, settings.error());
  mgmt::Context ctx{*store_, *settings, mgmt::caller_from_credentials(peer.uid, peer.gid, settings->admin_group),
                    events_.get()};
  ctx.data_dir = dir_;  // get-message-tracking-log reads DIR/logs/tracking
  net::QueueAdmin queues(dispatcher_);  // asked on the delivery thread, answered within a bound
  ctx.queues = &queues;
  mgmt::Reply reply = mgmt::execute(ctx, *request);
  if (!reply.change.empty()) {
    changes_since_mark();  // its own 13001: not a change from elsewhere
    refresh_role_holders();
    if (reply.reconfigures) apply_change(reply.change);
  }
  return reply;
}

void Management::apply_change(const std::string& change) {
  if (stopping_) return;  // the server and the dispatcher may be gone
  auto runtime = net::load_runtime(*store_, contexts_);
  if (!runtime) {
    log_line(LogLevel::kError, "starlingd: the change is stored but cannot be applied: " + runtime.error());
    return;
  }
  for (const auto& w : runtime->warnings) log_line(LogLevel::kWarning, "starlingd: warning: " + w);
  auto shared = std::make_shared<net::Runtime>(std::move(*runtime));
  applied_generation_ = shared->generation;
  dispatcher_.configure(shared->outbound);
  // MessageTrackingLogEnabled and the MessageTrackingLogMax* limits apply from now on.
  if (shared->outbound) logs::configure_tracker(logs::tracking_settings(shared->outbound->transport));
  asio::post(io_, [this, shared] {
    for (const auto& f : server_.apply(*shared)) log_line("starlingd: " + f);
    if (on_applied) on_applied(*shared);
  });
  events_->log(events::kConfigurationUpdated, "configuration", {{"Change", change}}, shared->generation);
  events_->prune();  // EventLogMaxAge and EventLogMaxCount may be what changed
  report(*shared);
}

void Management::refresh_role_holders() {
  auto holders = mgmt::role_holders(*store_);
  if (!holders) {
    log_line(LogLevel::kError, "starlingd: cannot read the role assignments: " + holders.error());
    return;
  }
  auto snapshot = std::make_shared<const mgmt::RoleHolders>(std::move(*holders));
  std::lock_guard lock(gate_mutex_);
  holders_ = std::move(snapshot);
}

void Management::schedule_poll() {
  poll_timer_.expires_after(kPollInterval);
  poll_timer_.async_wait([this](std::error_code ec) {
    if (ec || stopping_) return;
    poll();
    schedule_poll();
  });
}

// Once a second: refusals counted at accept become 13002 records, counted events owed their
// record get it, and a change committed by another connection is applied like one made here.
// data_version moves with any other connection's commit (the dispatcher's events too); the
// generation only with configuration.
void Management::poll() {
  record_refusals();
  events_->flush_counts();
  if (++polls_ % kPruneEveryPolls == 0) events_->prune();
  auto version = store_->data_version();
  if (!version || *version == data_version_) return;
  data_version_ = *version;
  auto generation = store_->generation();
  if (!generation || *generation == applied_generation_) return;
  std::string change = changes_since_mark();
  refresh_role_holders();
  apply_change(change.empty() ? "a change written to the store by another program" : change);
}

void Management::record_refusals() {
  std::map<std::string, int64_t> refused;
  {
    std::lock_guard lock(gate_mutex_);
    refused.swap(refused_);
  }
  std::string required = "ViewOnlyAdministrator";
  {
    std::lock_guard lock(gate_mutex_);
    if (holders_ && holders_->edge) required = "local administrator (edge server)";
  }
  for (const auto& [user, count] : refused) {
    events_->count(events::kManagementAccessDenied, user + ":*",
                   {{"User", user}, {"Command", "any command"}, {"RequiredRole", required}},
                   mgmt::kRefusalRecordInterval, count);
  }
}

std::string Management::changes_since_mark() {
  auto found = store_->events({.event_id = events::kManagementChange, .after_record = change_mark_});
  if (!found) return {};
  std::string out;
  for (const auto& e : *found) {
    change_mark_ = std::max(change_mark_, e.record);
    auto data = nlohmann::json::parse(e.data_json, nullptr, false);
    if (!data.is_object()) continue;
    std::string what = data.value("Result", std::string()) + " (by " + data.value("User", std::string("?")) + ")";
    out += (out.empty() ? "" : "; ") + what;
  }
  return out;
}

void Management::report(const net::Runtime& rt) {
  for (const auto& v : rt.verdicts) {
    std::string key = v.kind + ":" + v.name;
    if (!v.selection.chosen) {
      events_->log(events::kStartTlsCertificateNotFound, key, diag::not_found_fields(v), rt.generation);
      missing_.insert(key);
      continue;
    }
    if (missing_.erase(key)) {
      events_->record(events::kStartTlsCertificateRestored, key, diag::chosen_fields(v));
    }
    for (const auto& w : diag::expiry_warnings(v)) {  // each served certificate: RSA, ECDSA
      events_->log(w.expired ? events::kStartTlsCertificateExpired : events::kStartTlsCertificateExpiresSoon,
                   key + w.object_suffix, w.fields, rt.generation);
    }
  }
  diag::publish_certificate_metrics(rt.verdicts);  // the 12014 gauge and the expiry countdown
}

}  // namespace starling::app
