// The control socket, DIR/control.sock: one JSON request line in, one JSON reply line out per
// connection. The caller's identity comes from the socket (SO_PEERCRED), never from the request;
// what the caller may do is decided by the handler. The socket is mode 0666 on purpose: users
// holding a role but outside the admin group must reach it to be authorized (or refused) there.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace starling::net {

struct PeerCredentials {
  uid_t uid;
  gid_t gid;
  pid_t pid;
};

class ControlServer {
 public:
  // Runs on a thread of its own choosing; `reply` is called exactly once with the answer line.
  using Handler = std::function<void(std::string request, PeerCredentials peer,
                                     std::function<void(std::string reply)> reply)>;

  ControlServer(asio::io_context& io, std::filesystem::path path, Handler handler);
  ~ControlServer();
  Result<void> start();
  void stop();

 private:
  void accept_loop();
  void serve(std::shared_ptr<asio::local::stream_protocol::socket> socket);

  asio::io_context& io_;
  std::filesystem::path path_;
  Handler handler_;
  asio::local::stream_protocol::acceptor acceptor_;
};

}  // namespace starling::net
