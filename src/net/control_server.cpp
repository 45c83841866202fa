#include "net/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include "core/log.hpp"

namespace starling::net {
namespace {

constexpr size_t kMaxRequest = 32 * 1024 * 1024;  // a PKCS#12 or chain file, base64

}  // namespace

ControlServer::ControlServer(asio::io_context& io, std::filesystem::path path, Handler handler)
    : io_(io), path_(std::move(path)), handler_(std::move(handler)), acceptor_(io) {}

ControlServer::~ControlServer() { stop(); }

Result<void> ControlServer::start() {
  std::error_code ec;
  // A socket left by a daemon that died is stale: nobody answers on it.
  std::filesystem::remove(path_, ec);
  asio::local::stream_protocol::endpoint endpoint(path_.string());
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(64, ec);
  if (ec) return make_error("cannot open the control socket " + path_.string() + ": " + ec.message());
  ::chmod(path_.c_str(), 0666);
  accept_loop();
  return {};
}

void ControlServer::stop() {
  if (!acceptor_.is_open()) return;
  std::error_code ec;
  acceptor_.close(ec);
  std::filesystem::remove(path_, ec);
}

void ControlServer::accept_loop() {
  acceptor_.async_accept([this](std::error_code ec, asio::local::stream_protocol::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) serve(std::make_shared<asio::local::stream_protocol::socket>(std::move(socket)));
    accept_loop();
  });
}

void ControlServer::serve(std::shared_ptr<asio::local::stream_protocol::socket> socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(socket->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  PeerCredentials peer{cred.uid, cred.gid, cred.pid};
  auto buffer = std::make_shared<asio::streambuf>(kMaxRequest);
  asio::async_read_until(*socket, *buffer, '\n', [this, socket, buffer, peer](std::error_code ec, size_t n) {
    if (ec) return;  // closed, or a request over the limit: nothing to answer
    std::string line(asio::buffers_begin(buffer->data()), asio::buffers_begin(buffer->data()) + n);
    handler_(std::move(line), peer, [this, socket](std::string reply) {
      // Back on the io_context to write: the handler may have answered from another thread.
      asio::post(io_, [socket, reply = std::make_shared<std::string>(std::move(reply))] {
        asio::async_write(*socket, asio::buffer(*reply), [socket, reply](std::error_code, size_t) {
          std::error_code ignored;
          socket->shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
        });
      });
    });
  });
}

}  // namespace starling::net
