// The management side of starlingd: runs control-socket requests on a thread of its own, with
// its own store connection, so that a slow command (generating an RSA key) never holds up SMTP
// sessions. After a change it re-reads the store and hands the new runtime to the io thread and
// the dispatcher: changes apply without a restart. It also evaluates the TLS connectors (events
// 12014/12016/12018/12020) and records failed SMTP AUTH (12040).
#pragma once

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "core/result.hpp"
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

  // Evaluates every TLS connector and logs 12014/12016/12018/12020: at start, after every
  // change, and periodically while the daemon runs (repeats are suppressed for an hour unless
  // the configuration changed).
  void evaluate_soon();

  // Event 12040 for a failed SMTP AUTH, on the management thread (the EventLog's own). One per
  // connector, address and user an hour; the server log has every one.
  void auth_failed(net::AuthFailure f);

  void stop();

 private:
  mgmt::Reply run(const std::string& line, net::PeerCredentials peer);
  void apply_change(const std::string& change);
  void report(const net::Runtime& rt);

  std::filesystem::path dir_;
  asio::io_context& io_;
  net::Server& server_;
  tls::ContextCache& contexts_;
  net::Dispatcher& dispatcher_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<events::EventLog> events_;
  std::set<std::string> missing_;  // connectors under 12014, to say when it clears
  asio::thread_pool pool_{1};
};

}  // namespace starling::app
