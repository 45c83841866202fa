// The Prometheus endpoint: HTTP/1.1 on the transport server's MetricsListen address, serving
// GET (and HEAD) /metrics with the registry in the text format 0.0.4 (metrics/metrics.hpp).
// Exposure: anyone who reaches the address may read the counters (no addresses, no message ids
// are in them); bind it to loopback or a management network. What a client can make it hold is
// bounded: a request head of at most kMaxHeadBytes, one time limit for reading it and one for
// writing the reply, a limit on open connections, and every connection closes after its reply.
// Only the request line is interpreted; the headers are read to the blank line and ignored, and
// a request body is never read. Thread safety: everything runs on the io_context's thread.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/result.hpp"

namespace starling::net {

struct MetricsLimits {
  size_t max_head_bytes = 8 * 1024;            // request line and headers
  size_t max_connections = 16;                 // open at once; past it: 503 and close
  std::chrono::milliseconds read_timeout{10'000};   // to receive the request head whole
  std::chrono::milliseconds write_timeout{10'000};  // to write the reply whole
};

// What a request head asks for, or the status that refuses it.
struct HttpRequest {
  std::string method;
  std::string path;  // the target without its query
};
struct HttpReply {
  int status = 200;
  std::string reason;
  std::string content_type;
  std::string body;
  std::string extra_headers;  // whole lines with their CRLF ("Allow: GET, HEAD\r\n")
  bool head_only = false;  // HEAD: the headers of the GET reply, no body
};

// Where the head ends (after CRLF CRLF, or LF LF from lax clients), or nothing yet.
std::optional<size_t> find_head_end(std::string_view buffer);
// "GET /metrics HTTP/1.1" (the first line of `head`): 400 for a malformed line, 505 for a version
// other than HTTP/1.x.
Result<HttpRequest> parse_request_line(std::string_view head, int& refusal_status);
// The reply to a parsed request: /metrics for GET and HEAD (`render` makes the body), 405 with
// Allow for another method, 404 for another path.
HttpReply answer(const HttpRequest& request, const std::function<std::string()>& render);
// The bytes on the wire: status line, Content-Type, Content-Length, Connection: close.
std::string format_reply(const HttpReply& reply);

class MetricsServer {
 public:
  explicit MetricsServer(asio::io_context& io, MetricsLimits limits = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Serves on `address` ("IP:port", "[IPv6]:port"; empty: nowhere). The same address again
  // changes nothing; another one opens the new listener first and then closes the old, so a
  // refused address (in use, not ours) leaves the old one serving. Connections being served
  // finish on their own.
  Result<void> listen(const std::string& address);
  void stop();
  // The bound address ("127.0.0.1:9325"; with port 0 asked, the chosen port), or empty.
  std::string address() const;
  size_t connections() const;  // open now

  // Makes the body of /metrics (tests replace it); the process registry by default.
  void set_render(std::function<std::string()> render);

  struct Shared;  // what the connections share with the server, and outlive it with

 private:
  Result<std::unique_ptr<asio::ip::tcp::acceptor>> open_acceptor(const std::string& address);
  void adopt(std::unique_ptr<asio::ip::tcp::acceptor> acceptor, const std::string& address);
  void accept_loop();

  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::string asked_;  // the address as configured
  asio::steady_timer backoff_;  // after a failed accept (out of descriptors)
};

// starlingd's endpoint: a MetricsServer on a thread of its own, because a scrape asks the
// delivery thread for the queue gauges (up to its time limit) and the SMTP io thread must never
// wait for that. Thread safety: configure() and stop() may be called from any thread.
class MetricsEndpoint {
 public:
  MetricsEndpoint();
  ~MetricsEndpoint();  // stop()
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Serves on `address` (MetricsListen) from now on, without waiting; the outcome is logged
  // ("metrics: serving http://127.0.0.1:9325/metrics", "metrics: off", or why not).
  void configure(std::string address);
  // Closes the listener and ends the thread once the scrape being rendered, if any, is over.
  void stop();

 private:
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
};

}  // namespace starling::net
