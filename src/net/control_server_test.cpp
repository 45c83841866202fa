// The control socket's bounds, with real Unix sockets and tiny limits: a refused caller gets its
// line before sending anything, connections are limited in total and per user, a slow or
// oversize request is turned away, the receiving budget holds across connections, and accept
// backs off when the process is out of descriptors.
#include "net/control_server.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "testing/temp_dir.hpp"

namespace starling::net {
namespace {

class Control : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) {
      asio::post(io_, [this] { server_->stop(); });
      io_.stop();
    }
    if (thread_.joinable()) thread_.join();
    server_.reset();
    for (int fd : open_) ::close(fd);
  }

  // Starts a server whose handler answers "ok:<request>" from another thread.
  void start(ControlLimits limits, ControlServer::Admission admit = {}) {
    server_ = std::make_unique<ControlServer>(
        io_, dir_ / "control.sock",
        [this](std::string request, PeerCredentials, std::function<void(std::string)> reply) {
          ++handled_;
          std::thread([request = std::move(request), reply = std::move(reply)] {
            reply("ok:" + request);
          }).detach();
        },
        limits);
    server_->admit = std::move(admit);
    server_->refusal = [](const std::string& reason) { return "refused: " + reason + "\n"; };
    ASSERT_TRUE(server_->start());
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }

  int connect() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, (dir_ / "control.sock").c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    open_.push_back(fd);
    return fd;
  }
  static void send_all(int fd, const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  // Everything until the server closes (or 5 s pass).
  static std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // Waits (bounded) until the server counts `n` open connections.
  bool wait_connections(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (server_->connections() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  starling::testing::TempDir tmp_{"starling-control"};  // removed after everything below
  const std::filesystem::path& dir_ = tmp_.path;
  asio::io_context io_{1};
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
  std::vector<int> open_;
};

TEST_F(Control, RequestAndReply) {
  start({});
  int fd = connect();
  send_all(fd, "{\"command\":\"get-event\"}\n");
  EXPECT_EQ(read_all(fd), "ok:{\"command\":\"get-event\"}\n");
  EXPECT_TRUE(wait_connections(0)) << "the slot is given back";
}

TEST_F(Control, CallerWithoutRoleIsRefusedBeforeSendingAByte) {
  std::atomic<int> asked{0};
  start({}, [&](const PeerCredentials& peer) -> std::optional<std::string> {
    ++asked;
    EXPECT_EQ(peer.uid, getuid());
    return "denied\n";
  });
  int fd = connect();
  EXPECT_EQ(read_all(fd), "denied\n") << "the refusal comes without any request, then the close";
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(Control, ConnectionsAreLimitedPerUserAndInTotal) {
  start({.max_connections = 3, .max_connections_per_uid = 2});
  int a = connect();
  connect();
  ASSERT_TRUE(wait_connections(2));
  int third = connect();
  EXPECT_NE(read_all(third).find("limit per user"), std::string::npos);
  EXPECT_EQ(server_->connections(), 2u);
  ::shutdown(a, SHUT_RDWR);  // the caller leaves: its slot is free again
  ASSERT_TRUE(wait_connections(1));
  int again = connect();
  send_all(again, "x\n");
  EXPECT_EQ(read_all(again), "ok:x\n");
}

TEST_F(Control, TotalLimitHoldsWhateverTheUser) {
  start({.max_connections = 2, .max_connections_per_uid = 10});
  connect();
  connect();
  ASSERT_TRUE(wait_connections(2));
  EXPECT_NE(read_all(connect()).find("(the limit)"), std::string::npos);
}

TEST_F(Control, SlowSenderIsTurnedAwayAtTheTimeLimit) {
  start({.request_timeout = std::chrono::milliseconds(300)});
  int fd = connect();
  send_all(fd, "{\"command\":");  // and nothing more
  EXPECT_NE(read_all(fd).find("did not arrive whole within 300 ms"), std::string::npos);
  EXPECT_EQ(handled_, 0);
  EXPECT_TRUE(wait_connections(0));
}

TEST_F(Control, OversizeRequestIsRefused) {
  start({.max_request_bytes = 1000});
  int fd = connect();
  send_all(fd, std::string(1001, 'a'));
  EXPECT_NE(read_all(fd).find("larger than 1000 bytes"), std::string::npos);
  EXPECT_EQ(handled_, 0);
  int exact = connect();
  send_all(exact, std::string(999, 'b') + "\n");
  EXPECT_EQ(read_all(exact).size(), 3u + 1000u) << "a request of exactly the limit passes";
}

TEST_F(Control, ReceivingBudgetHoldsAcrossConnections) {
  start({.max_request_bytes = 2000, .max_receiving_bytes = 3000, .unbudgeted_uid = std::nullopt});
  int a = connect();
  send_all(a, std::string(1500, 'a'));
  ASSERT_TRUE(wait_connections(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server takes a's bytes
  int b = connect();
  send_all(b, std::string(1600, 'b'));
  EXPECT_NE(read_all(b).find("too many large requests"), std::string::npos);
  send_all(a, "\n");
  EXPECT_EQ(read_all(a).size(), 3u + 1501u) << "the first request is still served";
}

// One user holds at most its share of the budget, so one role holder cannot take it all.
TEST_F(Control, OneUserHoldsAtMostItsShareOfTheBudget) {
  start({.max_request_bytes = 2000, .max_receiving_bytes = 10000, .max_receiving_bytes_per_uid = 3000,
         .unbudgeted_uid = std::nullopt});
  int a = connect();
  send_all(a, std::string(1500, 'a'));
  ASSERT_TRUE(wait_connections(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server takes a's bytes
  int b = connect();
  send_all(b, std::string(1600, 'b'));
  EXPECT_NE(read_all(b).find("too many large requests"), std::string::npos);
  send_all(a, "\n");
  EXPECT_EQ(read_all(a).size(), 3u + 1501u);
}

// Root's requests are not counted: a budget others have used up does not hold them up.
TEST_F(Control, RootIsNotHeldUpByTheBudget) {
  if (getuid() != 0) GTEST_SKIP() << "needs root";
  start({.max_request_bytes = 2000, .max_receiving_bytes = 1000});
  int a = connect();
  send_all(a, std::string(1500, 'a') + "\n");
  EXPECT_EQ(read_all(a).size(), 3u + 1501u);
}

TEST_F(Control, AcceptBacksOffWhenOutOfDescriptors) {
  start({.accept_backoff = std::chrono::milliseconds(100)});
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  // Use up the descriptors below a low limit, then lower the limit to exactly that.
  std::vector<int> filler{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  while (filler.back() >= 0 && filler.back() < 200) filler.push_back(::dup(filler.front()));
  ASSERT_GE(filler.back(), 0);
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  rlimit low{static_cast<rlim_t>(client + 1), saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (dir_ / "control.sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  size_t errors = 0;
  asio::post(io_, [&] { errors = server_->accept_errors(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  setrlimit(RLIMIT_NOFILE, &saved);
  for (int fd : filler) ::close(fd);
  EXPECT_GE(errors, 1u) << "the accept did fail";
  EXPECT_LE(errors, 20u) << "one retry per back-off period, not a spin";
  timeval tv{5, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  open_.push_back(client);
  send_all(client, "late\n");
  EXPECT_EQ(read_all(client), "ok:late\n") << "served once descriptors are free";
}

}  // namespace
}  // namespace starling::net
