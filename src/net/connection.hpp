// One SMTP connection: the socket (plain, then TLS after STARTTLS), the sans-IO session, and a
// watchdog that enforces ConnectionTimeout and ConnectionInactivityTimeout. The driver only
// moves bytes and answers the session's requests (queue a message, check credentials against
// the Directory, wait out a tarpit); all protocol decisions are the session's.
// TLS is OpenSSL on the non-blocking socket itself, not asio::ssl::stream: the stream keeps
// about 68 KiB of its own buffers per connection, while a bare SSL object with
// SSL_MODE_RELEASE_BUFFERS holds none while the connection is idle.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <openssl/ssl.h>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "logs/protocol_log.hpp"
#include "net/runtime.hpp"
#include "smtp/session.hpp"

namespace starling::net {

class Server;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, asio::ip::tcp::socket socket,
             std::shared_ptr<const ConnectorRuntime> connector, std::string counter_key);
  ~Connection();

  // Starts the connection's coroutines; it keeps itself alive until closed.
  void start();
  // Server is stopping: say 421 4.3.2 at the next opportunity and close. Any thread: the work
  // is posted to the connection's own.
  void shutdown();
  const std::string& counter_key() const { return counter_key_; }
  const std::string& source() const { return peer_ip_; }
  const std::string& connector_name() const { return connector_->connector.name; }

 private:
  asio::awaitable<void> serve();
  asio::awaitable<void> watchdog();
  // Writes the session's output, waiting out the tarpit delays it asks for.
  asio::awaitable<bool> flush_output();
  asio::awaitable<bool> write_output(std::string out);
  asio::awaitable<bool> upgrade_to_tls();
  // Runs `op` (an SSL_* call) until it completes, waiting on the socket as OpenSSL asks.
  template <typename Op>
  asio::awaitable<std::pair<std::error_code, int>> tls_io(Op op);
  asio::awaitable<void> queue_message(smtp::Message m);
  asio::awaitable<void> authenticate(smtp::AuthRequest request);
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  void interrupt();

  Server& server_;
  asio::ip::tcp::socket socket_;
  struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  std::unique_ptr<SSL, SslFree> tls_;
  std::shared_ptr<const ConnectorRuntime> connector_;
  std::string counter_key_;
  std::string peer_ip_;
  std::optional<smtp::Session> session_;
  // ProtocolLoggingLevel Verbose only (null otherwise: the session formats nothing for it).
  std::unique_ptr<logs::ProtocolSession> protocol_log_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer tarpit_timer_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_activity_;
  bool received_names_user_ = false;
  bool timed_out_ = false;
  bool shutting_down_ = false;
  bool finished_ = false;
  uint64_t number_ = 0;
};

}  // namespace starling::net
