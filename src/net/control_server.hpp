// The control socket, DIR/control.sock: one JSON request line in, one JSON reply line out per
// connection. The caller's identity comes from the socket (SO_PEERCRED), never from the request.
// The socket is mode 0666 on purpose: users holding a role but outside the admin group must reach
// it. What an unprivileged local user can make the daemon hold is therefore bounded here: the
// caller is admitted (or refused with one reply line and closed) at accept, before a byte is
// read; connections are limited in total and per Unix user; a request has a size limit, the
// bytes being received by all connections together a budget, and reading it and writing the
// reply each a time limit. Failing accepts (EMFILE) back off instead of spinning.
// Thread safety: everything runs on the io_context's thread, except the handler's reply callback,
// which may be called from any thread.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.hpp"

namespace starling::net {

struct PeerCredentials {
  uid_t uid;
  gid_t gid;
  pid_t pid;
};

// import-certificate carries its file base64-encoded in the request (4/3 of
// tls::kMaxCertificateFileBytes, 1 MB): 4 MB leaves room for that and the other options.
inline constexpr size_t kMaxControlRequestBytes = 4 * 1024 * 1024;

// The defaults are documented in docs/roles.md ("The control socket").
struct ControlLimits {
  size_t max_connections = 64;          // open at once, all callers together
  size_t max_connections_per_uid = 8;   // open at once by one Unix user (root included)
  size_t max_request_bytes = kMaxControlRequestBytes;
  size_t max_receiving_bytes = 32 * 1024 * 1024;  // buffered for requests, all connections together
  size_t max_receiving_bytes_per_uid = 8 * 1024 * 1024;  // of which one Unix user may hold this much
  // Root's requests are never held up by what others send (its connections are limited
  // per uid like everyone's, so what it may buffer is bounded all the same).
  std::optional<uid_t> unbudgeted_uid = 0;
  std::chrono::milliseconds request_timeout{10'000};  // to receive the request whole
  std::chrono::milliseconds reply_timeout{10'000};    // to write the reply whole
  std::chrono::milliseconds accept_backoff{200};      // after EMFILE, ENFILE, ENOBUFS, ENOMEM
};

class ControlServer {
 public:
  // Called once per request; `reply` exactly once with the answer line, from any thread.
  using Handler = std::function<void(std::string request, PeerCredentials peer,
                                     std::function<void(std::string reply)> reply)>;
  // At accept, on the io thread, before anything is read: the reply line refusing the caller, or
  // nothing to go on and read the request. Must not block (no store, no waiting on a busy thread).
  using Admission = std::function<std::optional<std::string>(const PeerCredentials&)>;
  // The reply line for a caller turned away by a limit; `reason` says which.
  using Refusal = std::function<std::string(const std::string& reason)>;

  ControlServer(asio::io_context& io, std::filesystem::path path, Handler handler, ControlLimits limits = {});
  ~ControlServer();
  Result<void> start();
  void stop();

  // Set before the first connection is accepted (after start() is fine: accepting needs the
  // io_context to run). Without admit every caller is read; without refusal a caller turned away
  // by a limit is closed without a reply.
  Admission admit;
  Refusal refusal;

  size_t connections() const;    // open now
  size_t accept_errors() const { return accept_errors_; }  // failed accepts so far (io thread)

 private:
  struct Shared;
  class Connection;
  void accept_loop();
  void on_accept(asio::local::stream_protocol::socket socket);

  asio::io_context& io_;
  std::filesystem::path path_;
  Handler handler_;
  ControlLimits limits_;
  asio::local::stream_protocol::acceptor acceptor_;
  asio::steady_timer backoff_;
  bool backing_off_ = false;
  size_t accept_errors_ = 0;
  std::shared_ptr<Shared> slots_;
};

}  // namespace starling::net
