// The /metrics endpoint: the request line parser, the replies, and a live server on loopback
// with tiny limits: an oversized head gets 431, a head that never ends 408, one connection too
// many 503, and every connection is closed after its reply. Moving and stopping the listener.
#include "net/metrics_server.hpp"

#include <gtest/gtest.h>

#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <future>
#include <thread>

namespace starling::net {
namespace {

using asio::ip::tcp;

TEST(MetricsHttp, TheHeadEndsAtTheFirstBlankLine) {
  EXPECT_FALSE(find_head_end("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\n\r\nbody"), 18u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\n\n"), 16u) << "lax clients end lines with LF";
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nA: b\r\n\r\n\n\n"), 24u);
}

TEST(MetricsHttp, RequestLinesAreParsedStrictly) {
  int status = 0;
  auto r = parse_request_line("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", status);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics") << "the query is ignored";
  EXPECT_TRUE(parse_request_line("HEAD /metrics HTTP/1.0\n\n", status));
  for (const char* bad : {"", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/1.1 extra\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n",
                          "GET metrics HTTP/1.1\r\n\r\n", "GET http://a/metrics HTTP/1.1\r\n\r\n",
                          "GET /met\x01rics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1\r\n\r\n",
                          "GET /metrics http/1.1\r\n\r\n", "GET /metrics HTTP/1.10\r\n\r\n"}) {
    EXPECT_FALSE(parse_request_line(bad, status)) << bad;
    EXPECT_EQ(status, 400) << bad;
  }
  EXPECT_FALSE(parse_request_line("GET /metrics HTTP/2.0\r\n\r\n", status));
  EXPECT_EQ(status, 505);
}

TEST(MetricsHttp, OnlyGetAndHeadOfMetricsAreServed) {
  auto render = [] { return std::string("starling_x 1\n"); };
  HttpReply ok = answer({"GET", "/metrics"}, render);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4");
  std::string wire = format_reply(ok);
  EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << wire;
  EXPECT_NE(wire.find("\r\nContent-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << wire;
  EXPECT_NE(wire.find("\r\nContent-Length: 13\r\n"), std::string::npos) << wire;
  EXPECT_NE(wire.find("\r\nConnection: close\r\n"), std::string::npos) << wire;
  EXPECT_EQ(wire.substr(wire.size() - 17), "\r\n\r\nstarling_x 1\n");

  std::string head = format_reply(answer({"HEAD", "/metrics"}, render));
  EXPECT_NE(head.find("Content-Length: 13\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD: no body";

  EXPECT_EQ(answer({"GET", "/"}, render).status, 404);
  EXPECT_EQ(answer({"GET", "/metrics/"}, render).status, 404);
  HttpReply post = answer({"POST", "/metrics"}, render);
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(format_reply(post).find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
}

// A MetricsServer on its own io thread; the test talks to it with blocking sockets.
class MetricsServerTest : public ::testing::Test {
 protected:
  void start(MetricsLimits limits = {}) {
    server_ = std::make_unique<MetricsServer>(io_, limits);
    server_->set_render([] { return std::string("starling_test_total 7\n"); });
    thread_ = std::thread([this] { io_.run(); });
  }
  template <typename F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(io_, [&task] { task(); });
    return result.get();
  }
  void TearDown() override {
    if (thread_.joinable()) on_io([this] { server_.reset(); });
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Result<void> listen(const std::string& address) {
    return on_io([&] { return server_->listen(address); });
  }
  std::string address() {
    return on_io([this] { return server_->address(); });
  }
  uint16_t port() {
    std::string a = address();
    return static_cast<uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
  }

  tcp::socket connect(uint16_t port) {
    tcp::socket s(client_io_);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    return s;
  }
  // Sends `request`, then reads until the server closes; the reply.
  std::string exchange(const std::string& request, uint16_t port) {
    tcp::socket s = connect(port);
    asio::write(s, asio::buffer(request));
    return read_to_close(s);
  }
  static std::string read_to_close(tcp::socket& s) {
    std::string out;
    std::error_code ec;
    asio::read(s, asio::dynamic_buffer(out), ec);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    return out;
  }
  // Polls (up to 5 s) until the server has `n` connections open.
  bool connections_become(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (on_io([this] { return server_->connections(); }) == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  bool accepts(uint16_t port) {
    tcp::socket s(client_io_);
    std::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    return !ec;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
  asio::io_context client_io_;
};

TEST_F(MetricsServerTest, AScrapeGetsTheRegistryAndTheConnectionCloses) {
  start();
  ASSERT_TRUE(listen("127.0.0.1:0"));
  std::string reply = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("\r\n\r\nstarling_test_total 7\n"), std::string::npos) << reply;
  reply = exchange("GET /other HTTP/1.1\r\n\r\n", port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 404 ", 0), 0u) << reply;
  reply = exchange("DELETE /metrics HTTP/1.1\r\n\r\n", port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 405 ", 0), 0u) << reply;
  reply = exchange(std::string("\x16\x03\x01\x02\x00\x01\r\n\r\n", 10), port());  // TLS, NUL included
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << reply;
  // Each connection ends once the client has closed its side too (the server drains first).
  EXPECT_TRUE(connections_become(0));
}

TEST_F(MetricsServerTest, AnOversizedHeadGets431AfterTheLimitOnly) {
  start({.max_head_bytes = 1024});
  ASSERT_TRUE(listen("127.0.0.1:0"));
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(4000, 'a') + "\r\n\r\n";
  std::string reply = exchange(huge, port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply;
  // A head of exactly the limit is served.
  std::string fits = "GET /metrics HTTP/1.1\r\nX: ";
  fits += std::string(1024 - fits.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 1024u);
  reply = exchange(fits, port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
}

TEST_F(MetricsServerTest, AHeadThatNeverEndsGets408) {
  start({.read_timeout = std::chrono::milliseconds(100)});
  ASSERT_TRUE(listen("127.0.0.1:0"));
  tcp::socket s = connect(port());
  asio::write(s, asio::buffer(std::string("GET /metrics HTTP/1.1\r\nHost: ")));
  std::string reply = read_to_close(s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 408 ", 0), 0u) << reply;
}

TEST_F(MetricsServerTest, OneConnectionTooManyGets503) {
  start({.max_connections = 2});
  ASSERT_TRUE(listen("127.0.0.1:0"));
  tcp::socket a = connect(port()), b = connect(port());
  asio::write(a, asio::buffer(std::string("GET")));
  asio::write(b, asio::buffer(std::string("GET")));
  ASSERT_TRUE(connections_become(2));
  std::string reply = exchange("GET /metrics HTTP/1.1\r\n\r\n", port());
  EXPECT_EQ(reply.rfind("HTTP/1.1 503 ", 0), 0u) << reply;
  // The held ones still get their answer.
  asio::write(a, asio::buffer(std::string(" /metrics HTTP/1.1\r\n\r\n")));
  EXPECT_EQ(read_to_close(a).rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST_F(MetricsServerTest, TheListenerMovesStopsAndKeepsItsAddress) {
  start();
  ASSERT_TRUE(listen("127.0.0.1:0"));
  uint16_t first = port();
  ASSERT_TRUE(listen("127.0.0.1:0")) << "the same address again";
  EXPECT_EQ(port(), first) << "the same address again changes nothing";
  // Another address: the new one serves, the old one is closed.
  ASSERT_TRUE(listen("127.0.0.2:0"));
  EXPECT_EQ(address().rfind("127.0.0.2:", 0), 0u) << address();
  EXPECT_FALSE(accepts(first));
  // Empty: nothing is served.
  ASSERT_TRUE(listen(""));
  EXPECT_EQ(address(), "");
}

TEST_F(MetricsServerTest, AnAddressInUseIsRefusedAndTheOldOneKeepsServing) {
  start();
  ASSERT_TRUE(listen("127.0.0.1:0"));
  uint16_t serving = port();
  tcp::acceptor taken(client_io_, {asio::ip::make_address("127.0.0.1"), 0});
  std::string busy = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  auto r = listen(busy);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find(busy), std::string::npos) << r.error();
  EXPECT_EQ(port(), serving);
  EXPECT_EQ(exchange("GET /metrics HTTP/1.1\r\n\r\n", serving).rfind("HTTP/1.1 200 ", 0), 0u);
  // Overlapping the old address (the same port on every address) frees it first.
  auto wide = listen("0.0.0.0:" + std::to_string(serving));
  ASSERT_TRUE(wide) << wide.error();
  EXPECT_EQ(address(), "0.0.0.0:" + std::to_string(serving));
}

}  // namespace
}  // namespace starling::net
