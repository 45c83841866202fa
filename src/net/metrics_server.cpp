#include "net/metrics_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <sys/socket.h>

#include <array>

#include "core/connector.hpp"
#include "core/log.hpp"
#include "metrics/metrics.hpp"
#include "net/deadline.hpp"

namespace starling::net {
namespace {

constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);
using Socket = asio::ip::tcp::socket;

// After the reply, what the client still sends is read and dropped for a little while before
// the close: closing with unread input makes the kernel send RST, which can destroy the reply
// (a 431 to an oversized head) before the client has read it.
constexpr size_t kMaxDrainBytes = 64 * 1024;
constexpr std::chrono::milliseconds kMaxDrainTime{1000};

HttpReply text_reply(int status, std::string reason, std::string body) {
  HttpReply r;
  r.status = status;
  r.reason = std::move(reason);
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body) + "\n";
  return r;
}

HttpReply refusal(int status) {
  switch (status) {
    case 408: return text_reply(408, "Request Timeout", "the request head did not arrive in time");
    case 431: return text_reply(431, "Request Header Fields Too Large", "the request head is too large");
    case 503: return text_reply(503, "Service Unavailable", "too many scrapes at once; try again");
    case 505: return text_reply(505, "HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1 are served");
    default: return text_reply(400, "Bad Request", "the request line is not METHOD /path HTTP/1.1");
  }
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_target_char(char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; }

// Writes without waiting and closes: a refused client holds nothing after this returns.
void send_and_close(Socket& socket, const std::string& bytes) {
  ::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  std::error_code ignored;
  socket.close(ignored);
}

}  // namespace

std::optional<size_t> find_head_end(std::string_view buffer) {
  size_t crlf = buffer.find("\r\n\r\n");
  size_t lf = buffer.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::nullopt;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf)) return crlf + 4;
  return lf + 2;
}

Result<HttpRequest> parse_request_line(std::string_view head, int& refusal_status) {
  refusal_status = 400;
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return make_error("not METHOD SP target SP version");
  }
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), is_token_char)) {
    return make_error("bad method");
  }
  // Origin form only (RFC 9112 §3.2.1): a proxy's absolute form is not for this endpoint.
  if (target.empty() || target.front() != '/' || !std::all_of(target.begin(), target.end(), is_target_char)) {
    return make_error("bad target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return make_error("bad version");
  }
  if (version[5] != '1') {
    refusal_status = 505;
    return make_error("unsupported version");
  }
  return HttpRequest{std::string(method), std::string(target.substr(0, target.find('?')))};
}

HttpReply answer(const HttpRequest& request, const std::function<std::string()>& render) {
  if (request.path != "/metrics") return text_reply(404, "Not Found", "not found: metrics are at /metrics");
  if (request.method != "GET" && request.method != "HEAD") {
    HttpReply r = text_reply(405, "Method Not Allowed", "only GET and HEAD are served");
    r.extra_headers = "Allow: GET, HEAD\r\n";
    return r;
  }
  HttpReply r;
  r.reason = "OK";
  r.content_type = "text/plain; version=0.0.4";
  r.body = render();
  r.head_only = request.method == "HEAD";
  return r;
}

std::string format_reply(const HttpReply& reply) {
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reply.reason + "\r\n" +
                    "Content-Type: " + reply.content_type + "\r\n" +
                    "Content-Length: " + std::to_string(reply.body.size()) + "\r\n" +
                    reply.extra_headers + "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!reply.head_only) out += reply.body;
  return out;
}

// What the connections share with the server, and outlive it with.
struct MetricsServer::Shared {
  MetricsLimits limits;
  std::function<std::string()> render = [] { return metrics::render(); };
  size_t open = 0;
};

namespace {

// One scrape: read the head (bounded in size and time), answer, close.
asio::awaitable<void> serve_scrape(std::shared_ptr<MetricsServer::Shared> shared, Socket socket);

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, MetricsLimits limits)
    : io_(io), shared_(std::make_shared<Shared>()), backoff_(io) {
  shared_->limits = limits;
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::set_render(std::function<std::string()> render) { shared_->render = std::move(render); }

size_t MetricsServer::connections() const { return shared_->open; }

std::string MetricsServer::address() const {
  if (!acceptor_) return {};
  std::error_code ec;
  auto ep = acceptor_->local_endpoint(ec);
  return ec ? std::string() : core::format_binding({ep.address().to_string(), ep.port()});
}

Result<std::unique_ptr<asio::ip::tcp::acceptor>> MetricsServer::open_acceptor(const std::string& address) {
  auto binding = core::parse_binding(address);
  if (!binding) return make_error("MetricsListen " + address + ": " + binding.error());
  std::error_code ec;
  auto ip = asio::ip::make_address(binding->address, ec);
  if (ec) return make_error("MetricsListen " + address + ": not an IP address");
  asio::ip::tcp::endpoint endpoint(ip, binding->port);
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec && ip.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(64, ec);
  if (ec) return make_error("cannot serve metrics on " + address + ": " + ec.message());
  return acceptor;
}

Result<void> MetricsServer::listen(const std::string& address) {
  if (acceptor_ && address == asked_) return {};
  if (address.empty()) {
    stop();
    return {};
  }
  auto opened = open_acceptor(address);
  auto old = core::parse_binding(this->address()), wanted = core::parse_binding(address);
  if (!opened && old && wanted && old->port == wanted->port) {
    // The new address overlaps the old one (127.0.0.1:9325 -> 0.0.0.0:9325): free it and try
    // again; if the new one still fails, the old one comes back.
    std::string previous = asked_;
    stop();
    opened = open_acceptor(address);
    if (!opened) {
      if (auto back = open_acceptor(previous)) adopt(std::move(*back), previous);
      return std::move(opened).take_error();
    }
  }
  if (!opened) return std::move(opened).take_error();
  adopt(std::move(*opened), address);
  return {};
}

void MetricsServer::adopt(std::unique_ptr<asio::ip::tcp::acceptor> acceptor, const std::string& address) {
  stop();
  acceptor_ = std::move(acceptor);
  asked_ = address;
  accept_loop();
}

void MetricsServer::stop() {
  backoff_.cancel();
  if (!acceptor_) return;
  std::error_code ignored;
  acceptor_->close(ignored);
  // The pending accept completes later with operation_aborted, touching nothing of this object.
  acceptor_.reset();
  asked_.clear();
}

void MetricsServer::accept_loop() {
  auto* acceptor = acceptor_.get();
  acceptor->async_accept([this, acceptor, shared = shared_](std::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || acceptor_.get() != acceptor) return;
    if (ec) {
      // Out of descriptors: the pending connection stays queued, so retrying at once would spin.
      backoff_.expires_after(std::chrono::milliseconds(200));
      backoff_.async_wait([this, acceptor](std::error_code e) {
        if (!e && acceptor_.get() == acceptor) accept_loop();
      });
      return;
    }
    if (shared->open >= shared->limits.max_connections) {
      send_and_close(socket, format_reply(refusal(503)));
    } else {
      asio::co_spawn(io_, serve_scrape(shared, std::move(socket)), asio::detached);
    }
    accept_loop();
  });
}

MetricsEndpoint::MetricsEndpoint() : server_(std::make_unique<MetricsServer>(io_)) {
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {  // the edge: one failed scrape must not end the endpoint
        log_line(LogLevel::kError, std::string("metrics: a scrape failed: ") + e.what());
      }
    }
  });
}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

void MetricsEndpoint::configure(std::string address) {
  asio::post(io_, [this, address = std::move(address)] {
    std::string before = server_->address();
    auto r = server_->listen(address);
    std::string now = server_->address();
    if (!r) {
      log_line(LogLevel::kError, "metrics: " + r.error() +
                                     (now.empty() ? "; metrics are not served" : "; still serving on " + now));
    } else if (now != before) {
      log_line(now.empty() ? std::string("metrics: off") : "metrics: serving http://" + now + "/metrics");
    }
  });
}

void MetricsEndpoint::stop() {
  if (!thread_.joinable()) return;
  // Scrapes still reading or writing are dropped with the io_context; one inside the collector
  // finishes first (io_context::stop waits for the handler that runs).
  io_.stop();
  thread_.join();
  server_.reset();
}

namespace {

// The request head, or the status refusing it (408, 431), or nothing: the client went away.
asio::awaitable<std::pair<std::string, int>> read_head(Socket& socket, const MetricsLimits& limits) {
  std::string head;
  std::array<char, 2048> chunk;
  Deadline deadline(socket, limits.read_timeout);
  while (!find_head_end(head)) {
    if (head.size() >= limits.max_head_bytes) co_return std::pair{std::string(), 431};
    size_t room = std::min(chunk.size(), limits.max_head_bytes - head.size());
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk.data(), room), kUse);
    if (ec) co_return std::pair{std::string(), deadline.expired() ? 408 : 0};
    head.append(chunk.data(), n);
  }
  co_return std::pair{std::move(head), 200};
}

asio::awaitable<void> drain_and_close(Socket& socket) {
  std::error_code ec;
  socket.shutdown(Socket::shutdown_send, ec);
  std::array<char, 4096> chunk;
  size_t drained = 0;
  Deadline deadline(socket, kMaxDrainTime);
  while (!ec && drained < kMaxDrainBytes) {
    size_t n = 0;
    std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(chunk), kUse);
    drained += n;
  }
  socket.close(ec);
}

asio::awaitable<void> serve_scrape(std::shared_ptr<MetricsServer::Shared> shared, Socket socket) {
  ++shared->open;
  struct Release {
    MetricsServer::Shared& s;
    ~Release() { --s.open; }
  } release{*shared};
  auto [head, status] = co_await read_head(socket, shared->limits);
  if (status == 0) co_return;
  HttpReply reply;
  if (status != 200) {
    reply = refusal(status);
  } else if (auto request = parse_request_line(head, status)) {
    reply = answer(*request, shared->render);
  } else {
    reply = refusal(status);
  }
  std::string bytes = format_reply(reply);
  {
    Deadline deadline(socket, shared->limits.write_timeout);
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(bytes), kUse);
    if (ec) co_return;
  }
  co_await drain_and_close(socket);
}

}  // namespace

}  // namespace starling::net
