// starlingd — the Starling SMTP transport server.
//
// Exposure: listens on the TCP bindings of its enabled receive connectors (port 25 by default),
// open to any client allowed by the connectors' RemoteIPRanges, and on its control socket
// (DIR/control.sock, every request authorized by SO_PEERCRED). Reads and writes only its data
// directory.
// Privileges: started as root, it binds the control socket, makes the data directory the
// service user's, drops to that user (no_new_privs; no capability but CAP_NET_BIND_SERVICE,
// if kept) while it still has one thread, then binds its listeners and starts its threads.
// Started as any other user (systemd's User= with AmbientCapabilities=CAP_NET_BIND_SERVICE),
// it runs as that user. docs/security.md has the whole model.
// RFCs: 5321 (SMTP), 5322 (message format, Received), 1870 (SIZE), 2920 (PIPELINING),
// 3030 (CHUNKING), 3461 (DSN), 3207 (STARTTLS), 2034/3463 (enhanced status codes), 6152 (8BITMIME),
// 6531 (SMTPUTF8), 8446/5246 (TLS 1.3/1.2), 4954/4616 (AUTH PLAIN, LOGIN), 3848 (ESMTPSA).
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <systemd/sd-daemon.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <filesystem>
#include <optional>
#include <set>
#include <iostream>
#include <thread>

#include "app/daemon_options.hpp"
#include "app/management.hpp"
#include "app/privileges.hpp"
#include "core/log.hpp"
#include "delivery/maildir.hpp"
#include "diag/evaluation.hpp"
#include "events/event_log.hpp"
#include "logs/protocol_log.hpp"
#include "logs/tracking_log.hpp"
#include "mgmt/protocol.hpp"
#include "net/control_server.hpp"
#include "metrics/metrics.hpp"
#include "net/dispatcher.hpp"
#include "net/metrics_server.hpp"
#include "net/queue_admin.hpp"
#include "net/runtime.hpp"
#include "net/server.hpp"
#include "queue/spool.hpp"
#include "store/store.hpp"

namespace fs = std::filesystem;
using namespace starling;

namespace {

// Started as root: the service user recorded at setup, with the data directory made theirs.
// Otherwise nobody: starlingd runs as whoever started it.
Result<std::optional<app::ServiceUser>> service_user_for(const fs::path& dir) {
  if (::geteuid() != 0) return std::optional<app::ServiceUser>();
  auto name = app::recorded_service_user(dir);
  if (!name) return std::move(name).take_error();
  auto user = app::find_service_user(*name);
  if (!user) return make_error("started as root: " + user.error());
  if (auto given = app::give_data_directory(dir, *user); !given) return std::move(given).take_error();
  return std::optional<app::ServiceUser>(std::move(*user));
}

// sd_notify(3) through a socket connected at start, before the drop: the service user may not be
// able to reach $NOTIFY_SOCKET's path (a supervisor's private directory), but a connected socket
// needs no second look at it. Falls back to sd_notify when it cannot connect.
class SystemdNotifier {
 public:
  SystemdNotifier() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t n = path ? std::strlen(path) : 0;
    if (n == 0 || n >= sizeof addr.sun_path) return;
    std::memcpy(addr.sun_path, path, n);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~SystemdNotifier() {
    if (fd_ >= 0) ::close(fd_);
  }
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  void notify(const std::string& state) const {
    if (fd_ < 0 || ::send(fd_, state.data(), state.size(), MSG_NOSIGNAL) < 0) sd_notify(0, state.c_str());
  }

 private:
  int fd_ = -1;
};

// WATCHDOG=1 from the io thread at half the interval systemd asked for (WatchdogSec=): a stuck
// io thread stops the pings, and systemd restarts the service.
void keep_watchdog_fed(asio::steady_timer& timer, std::chrono::microseconds interval, const SystemdNotifier& systemd) {
  timer.expires_after(interval / 2);
  timer.async_wait([&timer, interval, &systemd](std::error_code ec) {
    if (ec) return;
    systemd.notify("WATCHDOG=1");
    keep_watchdog_fed(timer, interval, systemd);
  });
}

int fail(const std::string& message) {
  log_line(LogLevel::kError, "starlingd: " + message);
  return 1;
}

int run(const app::DaemonOptions& options) {
  const fs::path& dir = options.data_dir;
  auto grace = std::chrono::milliseconds(static_cast<int64_t>(options.shutdown_grace_seconds * 1000));
  // Privileged start, with one thread: the control socket (root's, so the daemon cannot widen
  // who may connect), then the drop. Requests wait for io.run(), after Management exists.
  auto user = service_user_for(dir);
  if (!user) return fail(user.error());
  SystemdNotifier systemd;
  asio::io_context io(1);
  app::Management* manager = nullptr;
  net::ControlServer control(io, dir / "control.sock",
                             [&manager](std::string line, net::PeerCredentials peer, auto reply) {
                               manager->handle(std::move(line), peer, std::move(reply));
                             });
  if (auto started = control.start(); !started) return fail(started.error());
  if (auto dropped = app::drop_privileges(*user, options.keep_net_bind_service); !dropped) {
    return fail(dropped.error());
  }
  if (*user) {
    // A data directory under a private one (a checkout in /root, say) is out of the user's reach.
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
      return fail("the service user " + (*user)->name + " cannot use " + dir.string() + " (" + std::strerror(errno) +
                  "): every directory above it must let that user through (chmod o+x)");
    }
    log_line("starlingd: running as " + (*user)->name);
  }

  auto store = store::Store::open(dir / "starling.db");
  if (!store) return fail(store.error());
  tls::ContextCache contexts;
  auto runtime = net::load_runtime(**store, contexts);
  if (!runtime) return fail(runtime.error());
  for (const auto& w : runtime->warnings) log_line(LogLevel::kWarning, "starlingd: warning: " + w);
  // Protocol logs (docs/protocol-logs.md): a directory we cannot write costs the logs, not the mail.
  for (auto kind : {logs::ProtocolLogKind::kReceive, logs::ProtocolLogKind::kSend}) {
    auto log = logs::open_protocol_log(kind, dir, runtime->settings.server_name);
    if (!log) log_line(LogLevel::kWarning, "starlingd: warning: " + log.error());
    logs::set_protocol_log(kind, log ? *log : nullptr);
  }
  // Message tracking (docs/tracking.md), written as the service user: after the drop (which
  // wants one thread; the log has its writer) and before the first message. Without it the
  // server still takes mail.
  if (runtime->outbound) {
    auto tracking = logs::TrackingLog::open(dir / "logs" / "tracking",
                                            logs::tracking_settings(runtime->outbound->transport));
    if (!tracking) log_line(LogLevel::kWarning, "starlingd: warning: no message tracking: " + tracking.error());
    logs::set_tracker(tracking ? *tracking : nullptr);
  }

  // Delivery runs on a thread of its own: the dispatcher with its outbound connections and DNS,
  // fed by the queue. It is declared before the queue so that it outlives it (the queue hands
  // its last batch over while it closes).
  asio::io_context outbound_io(1);
  auto outbound_store = store::Store::open(dir / "starling.db");
  if (!outbound_store) return fail(outbound_store.error());
  auto spool = queue::Spool::open(dir / "queue");
  if (!spool) return fail(spool.error());
  auto local = std::make_unique<delivery::MaildirDelivery>(dir / "mailboxes", **spool);
  local->remove_delivered = false;
  net::Dispatcher dispatcher(outbound_io, **spool, *local, std::move(*outbound_store));
  local->set_observer([&dispatcher](const queue::QueuedMessage& m, const Result<void>& r) {
    dispatcher.local_result(m, r);
  });
  dispatcher.configure(runtime->outbound);
  // Whatever was queued before a stop or a crash is delivered first, where it left off.
  auto recovered = (*spool)->recover();
  if (!recovered) return fail(recovered.error());
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
      logs::track({.event_id = "BADMAIL", .source = "QUEUE", .internal_message_id = file,
                   .message_info = d.substr(std::min(d.size(), file.size() + 2))});
    }
  }
  if (!recovered->messages.empty()) {
    log_line("queue: delivering " + std::to_string(recovered->messages.size()) +
             " message(s) left from before");
  }
  for (auto& m : recovered->messages) dispatcher.submit(std::move(m));
  (*spool)->set_sink([&dispatcher](queue::QueuedMessage m) { dispatcher.submit(std::move(m)); });
  // The queue gauges are computed at each scrape, from the delivery thread's state.
  net::QueueAdmin scrape_queues(dispatcher, std::chrono::seconds(2));
  metrics::set_collector([&scrape_queues](const metrics::GaugeSetter& set) {
    auto queues = scrape_queues.queues();
    if (!queues) return;
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    for (const core::QueueInfo& q : *queues) {
      set(metrics::kQueueLength, {{"queue", q.name}}, static_cast<double>(q.message_count));
      set(metrics::kQueueOldestAge, {{"queue", q.name}},
          q.oldest_arrival == 0 ? 0.0 : static_cast<double>(now.count() - q.oldest_arrival));
    }
  });

  // I/O thread 0 is this one (io); the others start after the drop, below.
  net::Server server(io, **spool, app::effective_io_threads(options.io_threads));
  server.set_receive_memory_limit(options.receive_memory_mib << 20);
  std::string metrics_listen = runtime->outbound ? runtime->outbound->transport.metrics_listen : "";
  if (auto started = server.start(std::move(*runtime)); !started) return fail(started.error());
  // The listeners are bound: the rest of the drop, before any connection or next hop is served.
  if (auto finished = app::finish_drop(); !finished) return fail(finished.error());
  server.start_io_threads();
  log_line("starlingd: " + std::to_string(server.io_threads()) + " I/O thread(s)");
  // Prometheus metrics on MetricsListen (docs/metrics.md); every applied change moves them.
  net::MetricsEndpoint metrics_endpoint;
  metrics_endpoint.configure(metrics_listen);
  std::thread outbound_thread([&outbound_io] { outbound_io.run(); });
  app::Management management(dir, io, server, contexts, dispatcher);
  management.on_applied = [&metrics_endpoint](const net::Runtime& rt) {
    if (rt.outbound) metrics_endpoint.configure(rt.outbound->transport.metrics_listen);
  };
  if (auto opened = management.open(); !opened) {
    log_line(LogLevel::kError, "starlingd: " + opened.error());
    dispatcher.stop();
    outbound_thread.join();
    return 1;
  }
  manager = &management;
  control.admit = [&management](const net::PeerCredentials& peer) { return management.admit(peer); };
  control.refusal = &app::Management::refuse;
  server.on_auth_failure = [&management](const net::AuthFailure& f) { management.auth_failed(f); };
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
  asio::steady_timer watchdog_timer(io);
  if (uint64_t usec = 0; sd_watchdog_enabled(0, &usec) > 0) {
    keep_watchdog_fed(watchdog_timer, std::chrono::microseconds(usec), systemd);
  }
  std::string where;
  for (const auto& l : server.listening()) where += (where.empty() ? "" : ", ") + l;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::chrono::steady_clock::time_point stop_asked{};
  signals.async_wait([&](std::error_code ec, int sig) {
    if (ec) return;
    stop_asked = std::chrono::steady_clock::now();
    log_line(std::string("starlingd: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
             ", stopping gracefully");
    systemd.notify("STOPPING=1");
    control.stop();
    evaluation_timer.cancel();
    watchdog_timer.cancel();
    server.stop(grace, [&io] { io.stop(); });
    signals.async_wait([&](std::error_code e, int) {
      if (!e) io.stop();  // a second signal: stop now
    });
  });
  log_line("starlingd: ready, listening on " + (where.empty() ? std::string("nothing") : where));
  systemd.notify("READY=1");
  io.run();
  // Sessions on the other I/O threads use the queue and the logs, which go below.
  server.join_io_threads();
  // The grace period bounds the whole stop, whatever the management thread is doing: a command
  // still running when it is over is abandoned (and the process ends with _Exit below).
  auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_asked);
  bool management_stopped = management.stop_within(std::max(grace - spent, std::chrono::milliseconds(100)));
  // Delivery stops before the queue it writes to: the dispatcher, then the mailbox agent, then
  // the queue (which finishes its last batch; the dispatcher object still takes it, unrun).
  metrics_endpoint.stop();     // no scrape asks the delivery thread from now on
  metrics::set_collector({});  // the delivery thread is about to stop answering
  dispatcher.stop();
  outbound_thread.join();
  local.reset();
  spool->reset();
  // The last sessions are over: what the protocol logs queued is written as their writers stop.
  logs::set_protocol_log(logs::ProtocolLogKind::kReceive, nullptr);
  logs::set_protocol_log(logs::ProtocolLogKind::kSend, nullptr);
  logs::set_tracker(nullptr);  // the last events (the queue's, as it closed) are written
  log_line("starlingd: stopped");
  if (!management_stopped) std::_Exit(0);  // the abandoned command still uses this frame's objects
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
    log_line(LogLevel::kError, std::string("starlingd: fatal: ") + e.what());
    return 1;
  }
}
