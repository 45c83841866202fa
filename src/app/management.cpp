#include "app/management.hpp"

#include <asio/post.hpp>

#include "core/log.hpp"
#include "diag/evaluation.hpp"
#include "events/event_log.hpp"
#include "mgmt/protocol.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;

namespace starling::app {

Management::Management(const fs::path& dir, asio::io_context& io, net::Server& server, tls::ContextCache& contexts,
                       net::Dispatcher& dispatcher)
    : dir_(dir), io_(io), server_(server), contexts_(contexts), dispatcher_(dispatcher) {}

Management::~Management() { stop(); }

Result<void> Management::open() {
  auto store = store::Store::open(dir_ / "starling.db");
  if (!store) return std::move(store).take_error();
  store_ = std::move(*store);
  events_ = std::make_unique<events::EventLog>(store_.get());
  return {};
}

void Management::handle(std::string line, net::PeerCredentials peer, std::function<void(std::string)> reply) {
  asio::post(pool_, [this, line = std::move(line), peer, reply = std::move(reply)] {
    mgmt::Reply r;
    try {
      r = run(line, peer);
    } catch (const std::exception& e) {  // the edge: a bug in one command must not stop the server
      log_line(std::string("starlingd: management command failed: ") + e.what());
      r = mgmt::failure(mgmt::kExitFailed, std::string("internal error: ") + e.what());
    }
    reply(mgmt::encode_reply(r));
  });
}

void Management::evaluate_soon() {
  asio::post(pool_, [this] {
    auto runtime = net::load_runtime(*store_, contexts_);
    if (runtime) report(*runtime);
  });
}

void Management::auth_failed(net::AuthFailure f) {
  asio::post(pool_, [this, f = std::move(f)] {
    events_->log(events::kSmtpAuthenticationFailed, "auth:" + f.connector + ":" + f.client_ip + ":" + f.user,
                 {{"Connector", f.connector}, {"ClientIp", f.client_ip}, {"User", f.user}});
  });
}

void Management::stop() { pool_.join(); }

mgmt::Reply Management::run(const std::string& line, net::PeerCredentials peer) {
  auto request = mgmt::decode_request(line);
  if (!request) return mgmt::failure(mgmt::kExitUsage, request.error());
  auto settings = store_->server_settings();
  if (!settings) return mgmt::failure(mgmt::kExitFailed, settings.error());
  mgmt::Context ctx{*store_, *settings, mgmt::caller_from_credentials(peer.uid, peer.gid, settings->admin_group),
                    events_.get()};
  mgmt::Reply reply = mgmt::execute(ctx, *request);
  if (!reply.change.empty() && reply.reconfigures) apply_change(reply.change);
  return reply;
}

void Management::apply_change(const std::string& change) {
  auto runtime = net::load_runtime(*store_, contexts_);
  if (!runtime) {
    log_line("starlingd: the change is stored but cannot be applied: " + runtime.error());
    return;
  }
  for (const auto& w : runtime->warnings) log_line("starlingd: warning: " + w);
  auto shared = std::make_shared<net::Runtime>(std::move(*runtime));
  dispatcher_.configure(shared->outbound);
  asio::post(io_, [this, shared] {
    for (const auto& f : server_.apply(*shared)) log_line("starlingd: " + f);
  });
  events_->log(events::kConfigurationUpdated, "configuration", {{"Change", change}}, shared->generation);
  report(*shared);
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
    if (v.selection.expired) {
      events_->log(events::kStartTlsCertificateExpired, key, diag::chosen_fields(v), rt.generation);
    } else if (v.selection.expires_soon) {
      events_->log(events::kStartTlsCertificateExpiresSoon, key, diag::chosen_fields(v), rt.generation);
    }
  }
}

}  // namespace starling::app
