// The management side of starlingd: runs control-socket requests on a thread of its own, with
// its own store connection, so that a slow command (generating an RSA key) never holds up SMTP
// sessions. After a change it re-reads the store and hands the new runtime to the io thread and
// the dispatcher: changes apply without a restart, also those another program wrote to the store
// (the shell with --offline), found by polling every second. It also evaluates the TLS
// connectors (events 12014/12016/12018/12020), records failed SMTP AUTH (12040) and refusals
// (13002, counted), and prunes the event log. The io thread asks admit() at accept, which never
// waits for this thread. Stopping never waits for a running command longer than it is told.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "mgmt/caller.hpp"
#include "mgmt/request.hpp"
#include "net/control_server.hpp"
#include "net/dispatcher.hpp"
#include "net/runtime.hpp"
#include "net/server.hpp"

namespace starling::events {
class EventLog;
}
namespace starling::store {
class Store;
}

namespace starling::app {

class Management {
 public:
  Management(const std::filesystem::path& dir, asio::io_context& io, net::Server& server,
             tls::ContextCache& contexts, net::Dispatcher& dispatcher);
  ~Management();

  Result<void> open();

  // Runs one control-socket request on the management thread; `reply` gets the answer line.
  void handle(std::string line, net::PeerCredentials peer, std::function<void(std::string)> reply);

  // ControlServer::admit, on the io thread: the refusal line (exit 77) for a caller who is
  // neither a local administrator nor holds any role, or nothing. Reads the snapshot of role
  // holders and a short-lived cache of Unix users; never the store, never this thread's queue.
  std::optional<std::string> admit(const net::PeerCredentials& peer);
  // ControlServer::refusal: the reply line for a caller turned away by a limit (exit 1).
  static std::string refuse(const std::string& reason);

  // Evaluates every TLS connector and logs 12014/12016/12018/12020: at start, after every
  // change, and periodically while the daemon runs (repeats are suppressed for an hour unless
  // the configuration changed).
  void evaluate_soon();

  // Called on the io thread after each applied change with the runtime the listeners now serve
  // (starlingd moves the metrics endpoint with it). Set before open().
  std::function<void(const net::Runtime&)> on_applied;

  // Event 12040 for a failed SMTP AUTH, on the management thread (the EventLog's own). One per
  // connector, address and user an hour; the server log has every one.
  void auth_failed(net::AuthFailure f);

  // Closes the queue (requests not started are dropped unanswered) and waits up to `timeout`
  // for a command that is running. True when the thread has ended. False: the thread is
  // abandoned, still inside the command. REQUIRES then: the process ends with std::_Exit
  // without destroying this object or the server, context cache and dispatcher it was given,
  // which the abandoned command may still touch. Changes the command makes after the call are
  // no longer applied to the running server.
  bool stop_within(std::chrono::milliseconds timeout);
  void stop();  // stop_within without a limit

  static constexpr std::chrono::milliseconds kPollInterval{1000};
  static constexpr int kPruneEveryPolls = 60;

 private:
  mgmt::Reply run(const std::string& line, net::PeerCredentials peer);
  void apply_change(const std::string& change);
  void report(const net::Runtime& rt);
  void refresh_role_holders();
  void schedule_poll();
  void poll();
  void record_refusals();
  std::string changes_since_mark();  // the 13001 records after the last one seen, as one line

  std::filesystem::path dir_;
  asio::io_context& io_;
  net::Server& server_;
  tls::ContextCache& contexts_;
  net::Dispatcher& dispatcher_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<events::EventLog> events_;
  std::set<std::string> missing_;  // connectors under 12014, to say when it clears

  // Read by the io thread (admit), written by the management thread.
  std::mutex gate_mutex_;
  std::shared_ptr<const mgmt::RoleHolders> holders_;
  std::map<std::string, int64_t> refused_;  // refusals at accept not yet recorded, by user
  mgmt::CallerCache callers_;

  // The management thread's own state.
  int64_t data_version_ = -1;
  int64_t applied_generation_ = -1;
  int64_t change_mark_ = 0;  // the newest 13001 record already accounted for
  int polls_ = 0;

  asio::io_context work_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_guard_{work_.get_executor()};
  asio::steady_timer poll_timer_{work_};
  std::atomic<bool> stopping_{false};
  std::promise<void> finished_;
  std::future<void> finished_future_ = finished_.get_future();
  std::thread thread_;
  bool abandoned_ = false;
};

}  // namespace starling::app
