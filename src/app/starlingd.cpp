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

#include "app/daemon_options.hpp"
#include "app/management.hpp"
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

int run(const app::DaemonOptions& options) {
  const fs::path& dir = options.data_dir;
  auto grace = std::chrono::milliseconds(static_cast<int64_t>(options.shutdown_grace_seconds * 1000));
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
  server.set_receive_memory_limit(options.receive_memory_mib << 20);
  if (auto started = server.start(std::move(*runtime)); !started) {
    log_line("starlingd: " + started.error());
    return 1;
  }
  app::Management management(dir, io, server, contexts, dispatcher);
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
  CLI::App app;
  app::DaemonOptions options;
  app::add_daemon_options(app, options);
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(options);
  } catch (const std::exception& e) {
    log_line(std::string("starlingd: fatal: ") + e.what());
    return 1;
  }
}
