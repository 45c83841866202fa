// starlingd — the Starling SMTP transport server.
//
// Exposure: listens on the TCP bindings of its enabled receive connectors (port 25 by default),
// open to any client allowed by the connectors' RemoteIPRanges. Reads and writes only its data
// directory. Runs with the privileges it is started with; binding port 25 needs root or
// CAP_NET_BIND_SERVICE (ports above 1023 need neither).
// RFCs: 5321 (SMTP), 5322 (message format, Received), 1870 (SIZE), 2920 (PIPELINING),
// 3030 (CHUNKING), 3207 (STARTTLS), 2034/3463 (enhanced status codes), 6152 (8BITMIME),
// 6531 (SMTPUTF8), 8446/5246 (TLS 1.3/1.2), 4954/4616 (AUTH PLAIN, LOGIN), 3848 (ESMTPSA).
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <systemd/sd-daemon.h>

#include <filesystem>
#include <set>
#include <iostream>
#include <thread>

#include "core/log.hpp"
#include "delivery/maildir.hpp"
#include "diag/evaluation.hpp"
#include "events/event_log.hpp"
#include "mgmt/protocol.hpp"
#include "net/control_server.hpp"
#include "net/dispatcher.hpp"
#include "net/runtime.hpp"
#include "net/server.hpp"
#include "queue/spool.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;
using namespace starling;

namespace {

// Management runs on a thread of its own, with its own store connection, so that a slow command
// (generating an RSA key) never holds up SMTP sessions. After a change it re-reads the store and
// hands the new runtime to the io thread: changes apply without a restart.
class Management {
 public:
  Management(const fs::path& dir, asio::io_context& io, net::Server& server, tls::ContextCache& contexts,
             net::Dispatcher& dispatcher)
      : dir_(dir), io_(io), server_(server), contexts_(contexts), dispatcher_(dispatcher) {}

  Result<void> open() {
    auto store = store::Store::open(dir_ / "starling.db");
    if (!store) return std::move(store).take_error();
    store_ = std::move(*store);
    events_ = std::make_unique<events::EventLog>(store_.get());
    return {};
  }

  void handle(std::string line, net::PeerCredentials peer, std::function<void(std::string)> reply) {
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

  // Evaluates every TLS connector and logs 12014/12016/12018/12020: at start, after every
  // change, and periodically while the daemon runs (repeats are suppressed for an hour unless
  // the configuration changed).
  void evaluate_soon() {
    asio::post(pool_, [this] {
      auto runtime = net::load_runtime(*store_, contexts_);
      if (runtime) report(*runtime);
    });
  }

  // Event 12040 for a failed SMTP AUTH, on the management thread (the EventLog's own). One per
  // connector, address and user an hour; the server log has every one.
  void auth_failed(net::AuthFailure f) {
    asio::post(pool_, [this, f = std::move(f)] {
      events_->log(events::kSmtpAuthenticationFailed,
                   "auth:" + f.connector + ":" + f.client_ip + ":" + f.user,
                   {{"Connector", f.connector}, {"ClientIp", f.client_ip}, {"User", f.user}});
    });
  }

  void stop() { pool_.join(); }

 private:
  mgmt::Reply run(const std::string& line, net::PeerCredentials peer) {
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

  void apply_change(const std::string& change) {
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

  void report(const net::Runtime& rt) {
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

  fs::path dir_;
  asio::io_context& io_;
  net::Server& server_;
  tls::ContextCache& contexts_;
  net::Dispatcher& dispatcher_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<events::EventLog> events_;
  std::set<std::string> missing_;  // connectors under 12014, to say when it clears
  asio::thread_pool pool_{1};
};

int run(const fs::path& dir, std::chrono::milliseconds grace) {
  auto store = store::Store::open(dir / "starling.db");
  if (!store) {
    log_line("starlingd: " + store.error());
    return 1;
  }
  tls::ContextCache contexts;
  auto runtime = net::load_runtime(**store, contexts);
  if (!runtime) {
    log_line("starlingd: " + runtime.error());
    return 1;
  }
  for (const auto& w : runtime->warnings) log_line("starlingd: warning: " + w);

  // Delivery runs on a thread of its own: the dispatcher with its outbound connections and DNS,
  // fed by the queue. It is declared before the queue so that it outlives it (the queue hands
  // its last batch over while it closes).
  asio::io_context outbound_io(1);
  auto outbound_store = store::Store::open(dir / "starling.db");
  if (!outbound_store) {
    log_line("starlingd: " + outbound_store.error());
    return 1;
  }
  auto spool = queue::Spool::open(dir / "queue");
  if (!spool) {
    log_line("starlingd: " + spool.error());
    return 1;
  }
  auto local = std::make_unique<delivery::MaildirDelivery>(dir / "mailboxes", **spool);
  local->remove_delivered = false;
  net::Dispatcher dispatcher(outbound_io, **spool, *local, std::move(*outbound_store));
  local->set_observer([&dispatcher](const queue::QueuedMessage& m, const Result<void>& r) {
    dispatcher.local_result(m, r);
  });
  dispatcher.configure(runtime->outbound);
  // Whatever was queued before a stop or a crash is delivered first, where it left off.
  auto recovered = (*spool)->recover();
  if (!recovered) {
    log_line("starlingd: " + recovered.error());
    return 1;
  }
  for (const auto& d : recovered->discarded) {
    log_line("queue: set aside an incomplete file, never acknowledged: " + d);
  }
  if (!recovered->corrupt.empty()) {
    events::EventLog queue_events(store->get());
    for (const auto& d : recovered->corrupt) {
      std::string file = d.substr(0, d.find(':'));
      queue_events.record(events::kQueueFileCorrupt, "queue:" + file,
                          {{"File", (dir / "queue" / file).string()},
                           {"Reason", d.substr(std::min(d.size(), file.size() + 2))},
                           {"MovedTo", (dir / "queue" / "corrupt" / file).string()}});
    }
  }
  if (!recovered->messages.empty()) {
    log_line("queue: delivering " + std::to_string(recovered->messages.size()) +
             " message(s) left from before");
  }
  for (auto& m : recovered->messages) dispatcher.submit(std::move(m));
  (*spool)->set_sink([&dispatcher](queue::QueuedMessage m) { dispatcher.submit(std::move(m)); });
  std::thread outbound_thread([&outbound_io] { outbound_io.run(); });

  asio::io_context io(1);
  net::Server server(io, **spool);
  if (auto started = server.start(std::move(*runtime)); !started) {
    log_line("starlingd: " + started.error());
    return 1;
  }
  Management management(dir, io, server, contexts, dispatcher);
  if (auto opened = management.open(); !opened) {
    log_line("starlingd: " + opened.error());
    return 1;
  }
  server.on_auth_failure = [&management](const net::AuthFailure& f) { management.auth_failed(f); };
  net::ControlServer control(io, dir / "control.sock",
                             [&management](std::string line, net::PeerCredentials peer, auto reply) {
                               management.handle(std::move(line), peer, std::move(reply));
                             });
  if (auto started = control.start(); !started) {
    log_line("starlingd: " + started.error());
    return 1;
  }
  management.evaluate_soon();
  // Re-evaluate every five minutes: certificates expire and enter the warning window by time alone.
  asio::steady_timer evaluation_timer(io);
  std::function<void()> schedule = [&] {
    evaluation_timer.expires_after(std::chrono::minutes(5));
    evaluation_timer.async_wait([&](std::error_code ec) {
      if (ec) return;
      management.evaluate_soon();
      schedule();
    });
  };
  schedule();
  std::string where;
  for (const auto& l : server.listening()) where += (where.empty() ? "" : ", ") + l;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int sig) {
    if (ec) return;
    log_line(std::string("starlingd: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
             ", stopping gracefully");
    sd_notify(0, "STOPPING=1");
    control.stop();
    evaluation_timer.cancel();
    server.stop(grace, [&io] { io.stop(); });
    signals.async_wait([&](std::error_code e, int) {
      if (!e) io.stop();  // a second signal: stop now
    });
  });
  log_line("starlingd: ready, listening on " + (where.empty() ? std::string("nothing") : where));
  sd_notify(0, "READY=1");
  io.run();
  management.stop();
  // Delivery stops before the queue it writes to: the dispatcher, then the mailbox agent, then
  // the queue (which finishes its last batch; the dispatcher object still takes it, unrun).
  dispatcher.stop();
  outbound_thread.join();
  local.reset();
  spool->reset();
  log_line("starlingd: stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"starlingd: the Starling SMTP transport server"};
  std::string dir;
  double grace_seconds = 5;
  app.add_option("--data-dir", dir, "data directory made by 'starling setup'")
      ->envname("STARLING_DATA_DIR")
      ->required();
  app.add_option("--shutdown-grace", grace_seconds,
                 "seconds sessions in flight may take to finish when stopping")
      ->check(CLI::Range(0.0, 3600.0));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(dir, std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000)));
  } catch (const std::exception& e) {
    log_line(std::string("starlingd: fatal: ") + e.what());
    return 1;
  }
}
