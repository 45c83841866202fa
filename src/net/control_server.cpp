#include "net/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <asio/post.hpp>
#include <asio/write.hpp>

#include <array>
#include <map>
#include <mutex>

#include "core/log.hpp"

namespace starling::net {
namespace {

using Socket = asio::local::stream_protocol::socket;

bool is_resource_shortage(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

// Writes `line` without waiting (a refusal fits in the socket buffer; a peer that does not read
// loses it) and closes: a turned-away caller holds nothing after this returns.
void send_and_close(Socket& socket, const std::string& line) {
  if (!line.empty()) ::send(socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  std::error_code ignored;
  socket.close(ignored);
}

}  // namespace

// What the connections share with the server, and outlive it with: the counters behind the
// limits, and the hooks. A connection's last reference may go on another thread (the reply
// callback), hence the mutex.
struct ControlServer::Shared {
  asio::io_context& io;
  ControlLimits limits;
  Handler handler;
  Refusal refusal;

  std::mutex mutex;
  size_t total = 0;
  std::map<uid_t, size_t> per_uid;
  size_t receiving = 0;
  std::map<uid_t, size_t> receiving_per_uid;  // bytes buffered for requests, by caller
  std::chrono::steady_clock::time_point last_logged{};

  // A connection slot for `uid`, or why there is none.
  std::optional<std::string> take(uid_t uid) {
    std::lock_guard lock(mutex);
    if (total >= limits.max_connections) {
      return "the server has " + std::to_string(total) + " management connections open (the limit); try again";
    }
    size_t& mine = per_uid[uid];
    if (mine >= limits.max_connections_per_uid) {
      return "you have " + std::to_string(mine) + " management connections open (the limit per user); try again";
    }
    ++mine;
    ++total;
    return std::nullopt;
  }
  void release(uid_t uid, size_t received) {
    std::lock_guard lock(mutex);
    --total;
    if (auto it = per_uid.find(uid); it != per_uid.end() && --it->second == 0) per_uid.erase(it);
    if (received == 0 || uid == limits.unbudgeted_uid) return;
    receiving -= received;
    if (auto it = receiving_per_uid.find(uid); it != receiving_per_uid.end() && (it->second -= received) == 0) {
      receiving_per_uid.erase(it);
    }
  }
  bool reserve(uid_t uid, size_t bytes) {
    std::lock_guard lock(mutex);
    if (uid == limits.unbudgeted_uid) return true;
    size_t& mine = receiving_per_uid[uid];
    if (receiving + bytes > limits.max_receiving_bytes || mine + bytes > limits.max_receiving_bytes_per_uid) {
      if (mine == 0) receiving_per_uid.erase(uid);
      return false;
    }
    receiving += bytes;
    mine += bytes;
    return true;
  }
  // One log line a minute at most: a flood must not flood the log too.
  void note(const PeerCredentials& peer, const std::string& reason) {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex);
      if (last_logged != std::chrono::steady_clock::time_point{} && now - last_logged < std::chrono::minutes(1)) return;
      last_logged = now;
    }
    log_line("starlingd: control socket: turned away uid " + std::to_string(peer.uid) + " (pid " +
             std::to_string(peer.pid) + "): " + reason + " (further ones are not logged for a minute)");
  }
  std::string refusal_line(const std::string& reason) { return refusal ? refusal(reason) : std::string(); }
};


class ControlServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, PeerCredentials peer, std::shared_ptr<Shared> shared)
      : socket_(std::move(socket)), timer_(shared->io), peer_(peer), shared_(std::move(shared)) {}
  ~Connection() { shared_->release(peer_.uid, received_); }

  void start() {
    arm(shared_->limits.request_timeout, [](Connection& c) {
      c.refuse("the request did not arrive whole within " +
               std::to_string(c.shared_->limits.request_timeout.count()) + " ms");
    });
    read();
  }

 private:
  template <typename OnExpiry>
  void arm(std::chrono::milliseconds limit, OnExpiry on_expiry) {
    timer_.expires_after(limit);
    timer_.async_wait([self = shared_from_this(), on_expiry](std::error_code ec) {
      if (!ec && self->socket_.is_open()) on_expiry(*self);
    });
  }

  void read() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](std::error_code ec, size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(std::error_code ec, size_t n) {
    if (ec) {  // the caller went away, or the timer closed the socket
      close();
      return;
    }
    const ControlLimits& limits = shared_->limits;
    if (request_.size() + n > limits.max_request_bytes) {
      refuse("the request is larger than " + std::to_string(limits.max_request_bytes) + " bytes");
      return;
    }
    if (!shared_->reserve(peer_.uid, n)) {
      refuse("the server is receiving too many large requests at once; try again");
      return;
    }
    received_ += n;
    size_t scanned = request_.size();
    request_.append(chunk_.data(), n);
    size_t end = request_.find('\n', scanned);
    if (end == std::string::npos) {
      read();
      return;
    }
    timer_.cancel();
    request_.resize(end + 1);
    dispatch();
  }

  void dispatch() {
    // The connection stays alive while the handler holds the callback: its slot and budget
    // still count until the reply is written.
    shared_->handler(std::move(request_), peer_, [self = shared_from_this()](std::string reply) {
      auto line = std::make_shared<std::string>(std::move(reply));
      asio::post(self->shared_->io, [self, line] { self->write(line); });
    });
  }

  void write(const std::shared_ptr<std::string>& line) {
    if (!socket_.is_open()) return;
    arm(shared_->limits.reply_timeout, [](Connection& c) { c.close(); });
    asio::async_write(socket_, asio::buffer(*line), [self = shared_from_this(), line](std::error_code, size_t) {
      self->timer_.cancel();
      std::error_code ignored;
      self->socket_.shutdown(Socket::shutdown_both, ignored);
      self->close();
    });
  }

  void refuse(const std::string& reason) {
    shared_->note(peer_, reason);
    timer_.cancel();
    send_and_close(socket_, shared_->refusal_line(reason));
  }

  void close() {
    timer_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
  }

  Socket socket_;
  asio::steady_timer timer_;
  PeerCredentials peer_;
  std::shared_ptr<Shared> shared_;
  std::array<char, 16384> chunk_{};
  std::string request_;
  size_t received_ = 0;  // bytes reserved from the receiving budget
};

ControlServer::ControlServer(asio::io_context& io, std::filesystem::path path, Handler handler, ControlLimits limits)
    : io_(io),
      path_(std::move(path)),
      handler_(std::move(handler)),
      limits_(limits),
      acceptor_(io),
      backoff_(io) {}

ControlServer::~ControlServer() { stop(); }

Result<void> ControlServer::start() {
  slots_ = std::make_shared<Shared>(io_, limits_, handler_, refusal);
  std::error_code ec;
  // A socket left by a daemon that died is stale: nobody answers on it.
  std::filesystem::remove(path_, ec);
  asio::local::stream_protocol::endpoint endpoint(path_.string());
  acceptor_.open(endpoint.protocol(), ec);
  // The socket is made 0666 by bind itself, never by a chmod of its name afterwards: the
  // directory may belong to the service user, who could swap the name for a link meanwhile.
  // (Called before starlingd starts its threads: the umask is the process's.)
  mode_t saved_umask = ::umask(0111);
  if (!ec) acceptor_.bind(endpoint, ec);
  ::umask(saved_umask);
  if (!ec) acceptor_.listen(64, ec);
  if (ec) return make_error("cannot open the control socket " + path_.string() + ": " + ec.message());
  accept_loop();
  return {};
}

void ControlServer::stop() {
  backoff_.cancel();
  if (!acceptor_.is_open()) return;
  std::error_code ec;
  acceptor_.close(ec);
  std::filesystem::remove(path_, ec);
}

size_t ControlServer::connections() const {
  if (!slots_) return 0;
  std::lock_guard lock(slots_->mutex);
  return slots_->total;
}

void ControlServer::accept_loop() {
  acceptor_.async_accept([this](std::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      backing_off_ = false;
      on_accept(std::move(socket));
      accept_loop();
      return;
    }
    // Out of descriptors (or memory), the pending connection stays queued and accept fails
    // again at once: retrying straight away spun at 95% CPU. Any other error waits too.
    ++accept_errors_;
    if (!backing_off_) {
      log_line("starlingd: control socket: accept failed (" + ec.message() + "); retrying every " +
               std::to_string(limits_.accept_backoff.count()) + " ms" +
               (is_resource_shortage(ec) ? " until descriptors are free" : ""));
      backing_off_ = true;
    }
    backoff_.expires_after(limits_.accept_backoff);
    backoff_.async_wait([this](std::error_code e) {
      if (!e && acceptor_.is_open()) accept_loop();
    });
  });
}

void ControlServer::on_accept(Socket socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  PeerCredentials peer{cred.uid, cred.gid, cred.pid};
  if (!slots_->refusal && refusal) slots_->refusal = refusal;  // set after start(), before io runs
  if (admit) {
    if (auto refused = admit(peer)) {
      send_and_close(socket, *refused);
      return;
    }
  }
  if (auto full = slots_->take(peer.uid)) {
    slots_->note(peer, *full);
    send_and_close(socket, slots_->refusal_line(*full));
    return;
  }
  std::make_shared<Connection>(std::move(socket), peer, slots_)->start();
}

}  // namespace starling::net
