// The SMTP listeners and their connections, on one Asio io_context (one thread). One listener
// per binding of each enabled receive connector; one coroutine per connection. Stopping is
// graceful: listeners close at once, sessions in flight get a grace period, then 421 4.3.2.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "core/result.hpp"
#include "net/runtime.hpp"
#include "queue/spool.hpp"

namespace starling::net {

class Connection;

class Server {
 public:
  Server(asio::io_context& io, queue::Spool& spool);
  ~Server();

  // Opens the listeners of `runtime`. Fails, changing nothing, when a binding cannot be opened.
  Result<void> start(Runtime runtime);
  // Applies a new configuration: new bindings start listening, removed or disabled connectors
  // stop accepting, and the next connection on a kept binding sees the new connectors.
  // Sessions in flight keep the configuration they started with. Returns the bindings that
  // could not be opened (the rest is applied).
  std::vector<std::string> apply(Runtime runtime);

  // The bound addresses, "IP:port" (after start; port 0 bindings show the chosen port).
  std::vector<std::string> listening() const;

  // Graceful stop; `done` runs on the io_context when every connection has closed.
  void stop(std::chrono::milliseconds grace, std::function<void()> done);

  // Connection bookkeeping (used by Connection).
  void connection_closed(Connection* c);
  queue::Spool& spool() { return spool_; }
  asio::io_context& io() { return io_; }

 private:
  struct Listener {
    asio::ip::tcp::acceptor acceptor;
    std::vector<std::shared_ptr<const ConnectorRuntime>> connectors;
  };
  struct Counters {
    uint32_t total = 0;
    std::map<std::string, uint32_t> per_source;
  };
  Result<Listener> open_listener(const core::Binding& b, std::shared_ptr<const ConnectorRuntime> cr);
  void accept_loop(Listener& l);
  void on_accept(Listener& l, asio::ip::tcp::socket socket);
  std::shared_ptr<const ConnectorRuntime> pick_connector(const Listener& l,
                                                         const asio::ip::address& remote) const;
  void maybe_finish_stop();

  asio::io_context& io_;
  queue::Spool& spool_;
  Runtime runtime_;
  std::list<Listener> listeners_;
  std::set<Connection*> connections_;
  std::map<std::string, Counters> counters_;  // by connector name
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  std::unique_ptr<asio::steady_timer> grace_timer_;
};

}  // namespace starling::net
