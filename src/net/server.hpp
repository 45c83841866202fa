// The SMTP listeners and their connections. One listener per binding of each enabled receive
// connector; one coroutine per connection. The listeners and the bookkeeping live on the main
// io_context (I/O thread 0); each accepted connection is given to the I/O thread with the fewest
// open connections and lives there, timers and TLS included (docs/architecture.md, "Threads").
// Stopping is graceful: listeners close at once, sessions in flight get a grace period, then
// 421 4.3.2, each on its own thread.
// AUTH passwords are checked on a small thread pool of the server's (Argon2id takes tens of
// milliseconds and 64 MiB; the io thread must not wait for it), and failed logons are counted
// per client address across connections (docs/receive-path.md, "Authentication").
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "net/runtime.hpp"
#include "queue/spool.hpp"
#include "smtp/data_reader.hpp"

namespace starling::net {

class Connection;

// A failed SMTP AUTH, for event 12040 SmtpAuthenticationFailed. Never carries the password.
struct AuthFailure {
  std::string connector;
  std::string client_ip;
  std::string user;  // as the client gave it (printable, at most 256 characters)
};

// Thread safety: start, apply, listening and stop are called on `io`'s thread (thread 0);
// connection_closed, verify_password, auth_blocked, auth_failed, spool and receive_budget on any
// I/O thread.
class Server {
 public:
  // `io_threads` (at least 1) counts `io` itself: with 1, everything runs on `io` as before.
  Server(asio::io_context& io, queue::Spool& spool, unsigned io_threads = 1);
  ~Server();

  // Runs the I/O threads beyond thread 0 (call once, after the privileges are dropped; their
  // connections wait until then). join_io_threads stops and joins them; call it once `io` has
  // stopped, before anything their connections use (the queue, the logs) goes away.
  void start_io_threads();
  void join_io_threads();
  unsigned io_threads() const { return static_cast<unsigned>(extra_io_.size()) + 1; }

  // Opens the listeners of `runtime`. Fails, changing nothing, when a binding cannot be opened.
  Result<void> start(Runtime runtime);
  // Applies a new configuration: new bindings start listening, removed or disabled connectors
  // stop accepting, and the next connection on a kept binding sees the new connectors.
  // Sessions in flight keep the configuration they started with. Returns the bindings that
  // could not be opened (the rest is applied).
  std::vector<std::string> apply(Runtime runtime);

  // The bound addresses, "IP:port" (after start; port 0 bindings show the chosen port).
  std::vector<std::string> listening() const;

  // Graceful stop; `done` runs on the main io_context when every connection has closed.
  void stop(std::chrono::milliseconds grace, std::function<void()> done);

  // Bytes of message content that sessions receiving may hold, all together; past it new data
  // gets 452 4.3.1. 0: automatic (a quarter of physical memory, at most 1 GiB).
  void set_receive_memory_limit(uint64_t bytes);
  // The budget every session's content is counted against (docs/receive-path.md).
  const std::shared_ptr<smtp::MemoryBudget>& receive_budget() const { return receive_budget_; }

  // Connection bookkeeping (used by Connection, on its own thread, before its socket closes:
  // a client that saw the close finds its slot free).
  void connection_closed(Connection* c);
  queue::Spool& spool() { return spool_; }

  // Checks `password` against `hash` (libsodium crypto_pwhash_str form) on the verifier pool;
  // `done(ok)` then runs on `ex` (the connection's own thread). An empty hash (unknown user,
  // disabled mailbox, no password) is checked against a dummy hash and fails: every failure
  // takes the same time.
  void verify_password(std::string hash, std::string password, asio::any_io_executor ex,
                       std::function<void(bool)> done);
  // True while AUTH from `client_ip` is refused (454 4.7.0) after too many failures.
  bool auth_blocked(const std::string& client_ip);
  // Counts a failed logon against its client address, logs it and reports it (on_auth_failure).
  void auth_failed(AuthFailure failure);
  // Called on the connection's I/O thread for every failed logon (any of them: it must be
  // thread-safe); starlingd logs event 12040 from it.
  std::function<void(const AuthFailure&)> on_auth_failure;

  // Per-address policy: kAuthFailureLimit failures within kAuthFailureWindow block AUTH from
  // that address for kAuthBlock.
  static constexpr uint32_t kAuthFailureLimit = 10;
  static constexpr std::chrono::minutes kAuthFailureWindow{10};
  static constexpr std::chrono::minutes kAuthBlock{10};

 private:
  struct Listener {
    asio::ip::tcp::acceptor acceptor;
    std::vector<std::shared_ptr<const ConnectorRuntime>> connectors;
  };
  struct Counters {
    uint32_t total = 0;
    std::map<std::string, uint32_t> per_source;
  };
  struct Open {
    std::weak_ptr<Connection> connection;  // expires once its thread is done with it
    unsigned thread = 0;
  };
  Result<Listener> open_listener(const core::Binding& b, std::shared_ptr<const ConnectorRuntime> cr);
  void accept_loop(Listener& l);
  void on_accept(Listener& l, unsigned thread, asio::ip::tcp::socket socket);
  std::shared_ptr<const ConnectorRuntime> pick_connector(const Listener& l,
                                                         const asio::ip::address& remote) const;
  // The I/O thread the next connection goes to: the fewest open connections, ties in turn.
  unsigned pick_thread();
  asio::io_context& thread_io(unsigned thread) { return thread == 0 ? io_ : *extra_io_[thread - 1]; }
  void shutdown_connections();
  void maybe_finish_stop();

  asio::io_context& io_;
  queue::Spool& spool_;
  Runtime runtime_;
  std::list<Listener> listeners_;
  // I/O threads 1..N-1: an io_context each (kept busy by its guard until joined) and its thread.
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> extra_io_;
  std::vector<WorkGuard> extra_work_;
  std::vector<std::thread> extra_threads_;
  // Guards connections_, counters_ and open_per_thread_: touched once per connection opened or
  // closed, by thread 0 and by the connection's own thread.
  std::mutex mutex_;
  std::map<Connection*, Open> connections_;
  std::map<std::string, Counters> counters_;  // by connector name
  std::vector<uint32_t> open_per_thread_;
  unsigned next_thread_ = 0;
  std::atomic<bool> stopping_ = false;
  uint64_t receive_memory_limit_ = 0;
  std::shared_ptr<smtp::MemoryBudget> receive_budget_;
  std::function<void()> on_stopped_;
  std::unique_ptr<asio::steady_timer> grace_timer_;
  struct AuthFailures {
    std::deque<std::chrono::steady_clock::time_point> recent;  // within kAuthFailureWindow
    std::chrono::steady_clock::time_point blocked_until{};
  };
  void forget_old_auth_failures(std::chrono::steady_clock::time_point now);
  std::mutex auth_mutex_;  // guards auth_failures_ (touched once per AUTH, from any I/O thread)
  std::map<std::string, AuthFailures> auth_failures_;  // by client address
  // Last member: joined first on destruction, before the io_context references it holds go.
  asio::thread_pool verifier_{1};
};

}  // namespace starling::net
