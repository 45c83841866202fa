// The c-ares resolver against a real authoritative server (tests/e2e/dns_server.py, started
// here on a free loopback port), and the FakeResolver that routing tests use.
#include "net/resolver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace starling::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* name(DnsStatus s) {
  switch (s) {
    case DnsStatus::kOk: return "kOk";
    case DnsStatus::kNoRecords: return "kNoRecords";
    case DnsStatus::kNxDomain: return "kNxDomain";
    case DnsStatus::kTransient: return "kTransient";
  }
  return "?";
}

// MX as [preference, host]; names on purpose in mixed case with trailing dots.
constexpr const char* kZone = R"({
  "multi.test": {"MX": [[20, "MX2.Multi.TEST."], [10, "Mx1.multi.test."], [10, "mx1b.multi.test"]],
                 "A": ["192.0.2.1"]},
  "nullmx.test": {"MX": [[0, "."]], "A": ["192.0.2.2"]},
  "nomx.test": {"A": ["192.0.2.10"]},
  "servfail.test": "SERVFAIL",
  "refused.test": "REFUSED",
  "timeout.test": "TIMEOUT",
  "dual.test": {"A": ["192.0.2.20", "192.0.2.21"], "AAAA": ["2001:DB8::20"]},
  "v6only.test": {"AAAA": ["2001:db8::30"]},
  "half.test": {"A": ["192.0.2.40"], "AAAA": "SERVFAIL"},
  "halfdown.test": {"A": "SERVFAIL"},
  "mxonly.test": {"MX": [[10, "mx.mxonly.test"]]},
  "alias.test": {"CNAME": "dual.test"},
  "big.test": {"MX": [BIG_MX]}
})";

std::string zone_text() {
  // Thirty long exchanges: about 1.5 KB, over UDP's 512 octets, so the answer comes over TCP.
  std::string big;
  for (int i = 0; i < 30; ++i) {
    if (i) big += ", ";
    big += "[" + std::to_string(i) + ", \"a-rather-long-mail-exchanger-name-" + std::to_string(i) +
           ".big.test\"]";
  }
  std::string zone = kZone;
  zone.replace(zone.find("BIG_MX"), 6, big);
  return zone;
}

// dns_server.py as a child process: the zone in a file, queries logged to another.
class DnsServerProcess {
 public:
  explicit DnsServerProcess(const std::string& zone, std::string host = "127.0.0.1") : host_(host) {
    char tmpl[] = "/tmp/starling-dns-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(dir_ / "zone.json") << zone;
    std::ofstream(dir_ / "queries.log");
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test takes the server with it
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::string zone_path = (dir_ / "zone.json").string();
      std::string log_path = (dir_ / "queries.log").string();
      execl("/usr/bin/python3", "python3", STARLING_DNS_SERVER, "--host", host.c_str(), "--port", "0",
            "--zone", zone_path.c_str(), "--log", log_path.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    auto deadline = Clock::now() + 20s;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[64];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    port_ = static_cast<uint16_t>(std::atoi(line.c_str()));
    if (port_ == 0) throw std::runtime_error("dns_server.py did not start: \"" + line + "\"");
  }

  ~DnsServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const { return port_; }
  std::string address() const {
    return (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
  }

  // The queries asked so far, as "name TYPE" lines.
  std::vector<std::string> queries() const {
    std::ifstream in(dir_ / "queries.log");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }

 private:
  std::string host_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A loopback UDP port with nobody behind it: queries there are refused (ICMP unreachable).
uint16_t closed_udp_port() {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

class ResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new DnsServerProcess(zone_text()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::unique_ptr<Resolver> make(std::chrono::milliseconds timeout = 2000ms, int tries = 1,
                                 std::vector<std::string> servers = {}) {
    if (servers.empty()) servers = {server_->address()};
    std::string error;
    auto r = make_cares_resolver(io_, ResolverOptions{servers, timeout, tries}, &error);
    EXPECT_NE(r, nullptr) << error;
    return r;
  }

  // Runs the io_context until `done` holds or 10 s pass.
  template <typename T>
  void run_until(const std::optional<T>& done) {
    io_.restart();
    auto deadline = Clock::now() + 10s;
    while (!done && Clock::now() < deadline) {
      if (io_.run_one_for(100ms) == 0) io_.restart();
    }
  }

  MxAnswer mx(Resolver& r, const std::string& domain) {
    std::optional<MxAnswer> got;
    r.lookup_mx(domain, [&](MxAnswer a) { got = std::move(a); });
    run_until(got);
    EXPECT_TRUE(got) << "no answer for MX " << domain;
    return got.value_or(MxAnswer{});
  }

  AddressAnswer addresses(Resolver& r, const std::string& host) {
    std::optional<AddressAnswer> got;
    r.lookup_addresses(host, [&](AddressAnswer a) { got = std::move(a); });
    run_until(got);
    EXPECT_TRUE(got) << "no answer for A/AAAA " << host;
    return got.value_or(AddressAnswer{});
  }

  static std::vector<std::string> strings(const std::vector<asio::ip::address>& list) {
    std::vector<std::string> out;
    for (const auto& a : list) out.push_back(a.to_string());
    return out;
  }

  static DnsServerProcess* server_;
  asio::io_context io_;
};

DnsServerProcess* ResolverTest::server_ = nullptr;

TEST_F(ResolverTest, MxRecordsSortedByPreferenceLowerCaseWithoutTrailingDot) {
  auto r = make();
  for (const char* domain : {"multi.test", "MULTI.Test."}) {
    MxAnswer a = mx(*r, domain);
    ASSERT_EQ(a.status, DnsStatus::kOk) << name(a.status) << " " << a.error;
    ASSERT_EQ(a.records.size(), 3u);
    EXPECT_EQ(a.records[0].preference, 10);
    EXPECT_EQ(a.records[0].host, "mx1.multi.test");
    EXPECT_EQ(a.records[1].preference, 10);
    EXPECT_EQ(a.records[1].host, "mx1b.multi.test");
    EXPECT_EQ(a.records[2].preference, 20);
    EXPECT_EQ(a.records[2].host, "mx2.multi.test");
    EXPECT_EQ(a.error, "");
  }
}

TEST_F(ResolverTest, NullMxHasEmptyHost) {
  auto r = make();
  MxAnswer a = mx(*r, "nullmx.test");
  ASSERT_EQ(a.status, DnsStatus::kOk) << name(a.status) << " " << a.error;
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].preference, 0);
  EXPECT_EQ(a.records[0].host, "");
}

TEST_F(ResolverTest, NoMxButAddressIsNoRecords) {
  auto r = make();
  MxAnswer m = mx(*r, "nomx.test");
  EXPECT_EQ(m.status, DnsStatus::kNoRecords) << name(m.status) << " " << m.error;
  EXPECT_TRUE(m.records.empty());
  AddressAnswer a = addresses(*r, "nomx.test");
  ASSERT_EQ(a.status, DnsStatus::kOk) << name(a.status) << " " << a.error;
  EXPECT_EQ(strings(a.addresses), std::vector<std::string>{"192.0.2.10"});
}

TEST_F(ResolverTest, NxDomainIsPermanent) {
  auto r = make();
  MxAnswer m = mx(*r, "nosuch.test");
  EXPECT_EQ(m.status, DnsStatus::kNxDomain) << name(m.status);
  EXPECT_NE(m.error, "");
  AddressAnswer a = addresses(*r, "nosuch.test");
  EXPECT_EQ(a.status, DnsStatus::kNxDomain) << name(a.status);
  EXPECT_TRUE(a.addresses.empty());
}

TEST_F(ResolverTest, ServfailAndRefusedAreTransient) {
  auto r = make();
  for (const char* domain : {"servfail.test", "refused.test"}) {
    MxAnswer m = mx(*r, domain);
    EXPECT_EQ(m.status, DnsStatus::kTransient) << domain << " " << name(m.status);
    EXPECT_NE(m.error, "") << domain;
    AddressAnswer a = addresses(*r, domain);
    EXPECT_EQ(a.status, DnsStatus::kTransient) << domain << " " << name(a.status);
  }
}

TEST_F(ResolverTest, TimeoutIsTransientWithinTheConfiguredTime) {
  auto r = make(300ms, 1);
  auto start = Clock::now();
  MxAnswer m = mx(*r, "timeout.test");
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(m.status, DnsStatus::kTransient) << name(m.status);
  EXPECT_NE(m.error, "");
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(ResolverTest, LookupDoesNotBlockTheIoContext) {
  auto r = make(300ms, 1);
  std::optional<MxAnswer> got;
  std::optional<Clock::time_point> timer_fired;
  r->lookup_mx("timeout.test", [&](MxAnswer a) { got = std::move(a); });
  asio::steady_timer timer(io_, 50ms);
  timer.async_wait([&](std::error_code) { timer_fired = Clock::now(); });
  run_until(got);
  ASSERT_TRUE(timer_fired);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, DnsStatus::kTransient);
}

TEST_F(ResolverTest, AddressesIpv4FirstThenIpv6) {
  auto r = make();
  AddressAnswer a = addresses(*r, "dual.test");
  ASSERT_EQ(a.status, DnsStatus::kOk) << name(a.status) << " " << a.error;
  EXPECT_EQ(strings(a.addresses), (std::vector<std::string>{"192.0.2.20", "192.0.2.21", "2001:db8::20"}));
  AddressAnswer v6 = addresses(*r, "v6only.test");
  ASSERT_EQ(v6.status, DnsStatus::kOk);
  EXPECT_EQ(strings(v6.addresses), std::vector<std::string>{"2001:db8::30"});
  AddressAnswer alias = addresses(*r, "alias.test");  // CNAME to dual.test
  ASSERT_EQ(alias.status, DnsStatus::kOk) << name(alias.status);
  EXPECT_EQ(alias.addresses.size(), 3u);
}

TEST_F(ResolverTest, AddressesCombineTheTwoFamilies) {
  auto r = make();
  AddressAnswer half = addresses(*r, "half.test");  // A, and SERVFAIL for AAAA
  EXPECT_EQ(half.status, DnsStatus::kOk) << name(half.status);
  EXPECT_EQ(strings(half.addresses), std::vector<std::string>{"192.0.2.40"});
  AddressAnswer down = addresses(*r, "halfdown.test");  // SERVFAIL for A, no AAAA
  EXPECT_EQ(down.status, DnsStatus::kTransient) << name(down.status);
  EXPECT_NE(down.error, "");
  AddressAnswer none = addresses(*r, "mxonly.test");  // neither
  EXPECT_EQ(none.status, DnsStatus::kNoRecords) << name(none.status);
}

TEST_F(ResolverTest, IpLiteralsAndLocalhostAskNoQuery) {
  auto r = make();
  size_t before = server_->queries().size();
  struct Case {
    const char* host;
    std::vector<std::string> expected;
  };
  for (const Case& c : {Case{"192.0.2.7", {"192.0.2.7"}}, Case{"2001:db8::7", {"2001:db8::7"}},
                        Case{"[192.0.2.8]", {"192.0.2.8"}}, Case{"[IPv6:2001:db8::8]", {"2001:db8::8"}},
                        Case{"localhost", {"127.0.0.1", "::1"}}, Case{"mx.localhost.", {"127.0.0.1", "::1"}}}) {
    bool inline_answer = false;
    bool in_lookup = true;
    std::optional<AddressAnswer> got;
    r->lookup_addresses(c.host, [&](AddressAnswer a) {
      inline_answer = in_lookup;
      got = std::move(a);
    });
    in_lookup = false;
    run_until(got);
    ASSERT_TRUE(got) << c.host;
    EXPECT_FALSE(inline_answer) << c.host << ": answered inside lookup_addresses";
    EXPECT_EQ(got->status, DnsStatus::kOk) << c.host;
    EXPECT_EQ(strings(got->addresses), c.expected) << c.host;
  }
  EXPECT_EQ(server_->queries().size(), before);
  addresses(*r, "nomx.test");  // the log does work
  EXPECT_EQ(server_->queries().size(), before + 2);
}

TEST_F(ResolverTest, TruncatedUdpAnswerIsRetriedOverTcp) {
  auto r = make();
  MxAnswer m = mx(*r, "big.test");
  ASSERT_EQ(m.status, DnsStatus::kOk) << name(m.status) << " " << m.error;
  ASSERT_EQ(m.records.size(), 30u);
  EXPECT_EQ(m.records[29].host, "a-rather-long-mail-exchanger-name-29.big.test");
}

TEST_F(ResolverTest, UnreachableServerIsTransientAndTheNextServerIsTried) {
  std::string dead = "127.0.0.1:" + std::to_string(closed_udp_port());
  auto only_dead = make(2000ms, 1, {dead});
  auto start = Clock::now();
  MxAnswer m = mx(*only_dead, "multi.test");
  EXPECT_EQ(m.status, DnsStatus::kTransient) << name(m.status);
  EXPECT_LT(Clock::now() - start, 5s);
  auto fallback = make(2000ms, 2, {dead, server_->address()});
  MxAnswer ok = mx(*fallback, "multi.test");
  EXPECT_EQ(ok.status, DnsStatus::kOk) << name(ok.status) << " " << ok.error;
}

TEST_F(ResolverTest, ServerOverIpv6) {
  DnsServerProcess v6(zone_text(), "::1");
  ASSERT_EQ(v6.address().substr(0, 6), "[::1]:");
  auto r = make(2000ms, 1, {v6.address()});
  MxAnswer m = mx(*r, "multi.test");
  EXPECT_EQ(m.status, DnsStatus::kOk) << name(m.status) << " " << m.error;
  EXPECT_EQ(v6.queries(), std::vector<std::string>{"multi.test MX"});
}

TEST_F(ResolverTest, NameThatCannotBeEncodedIsPermanentWithoutQuery) {
  auto r = make();
  size_t before = server_->queries().size();
  MxAnswer m = mx(*r, std::string(64, 'a') + ".test");  // a label over 63 octets (RFC 1035 §2.3.4)
  EXPECT_EQ(m.status, DnsStatus::kNxDomain) << name(m.status) << " " << m.error;
  EXPECT_EQ(mx(*r, "").status, DnsStatus::kNxDomain);
  EXPECT_EQ(addresses(*r, ".").status, DnsStatus::kNxDomain);
  EXPECT_EQ(server_->queries().size(), before);
}

TEST_F(ResolverTest, ManyLookupsInFlight) {
  auto r = make();
  int answered = 0, ok = 0;
  for (int i = 0; i < 40; ++i) {
    r->lookup_mx(i % 2 ? "multi.test" : "MULTI.TEST", [&](MxAnswer a) {
      ++answered;
      ok += a.status == DnsStatus::kOk && a.records.size() == 3;
    });
    r->lookup_addresses("dual.test", [&](AddressAnswer a) {
      ++answered;
      ok += a.status == DnsStatus::kOk && a.addresses.size() == 3;
    });
  }
  io_.restart();
  auto deadline = Clock::now() + 10s;
  while (answered < 80 && Clock::now() < deadline) io_.run_one_for(100ms);
  EXPECT_EQ(answered, 80);
  EXPECT_EQ(ok, 80);
}

TEST_F(ResolverTest, BadServerStringsAreRejected) {
  for (const char* bad : {"", "not-an-ip", "mx.example.net", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:53x", "[::1", "[::1]53", "[127.0.0.1]:53", "1.2.3:53", "::1]:53"}) {
    std::string error;
    auto r = make_cares_resolver(io_, ResolverOptions{{bad}, 1000ms, 1}, &error);
    EXPECT_EQ(r, nullptr) << "accepted \"" << bad << "\"";
    EXPECT_NE(error.find("bad DNS server"), std::string::npos) << bad << ": " << error;
  }
  for (const char* good : {"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "[::1]", "::1", " 192.0.2.1:53 "}) {
    std::string error;
    auto r = make_cares_resolver(io_, ResolverOptions{{good}, 1000ms, 1}, &error);
    EXPECT_NE(r, nullptr) << "refused \"" << good << "\": " << error;
  }
  std::string error;
  EXPECT_EQ(make_cares_resolver(io_, ResolverOptions{{}, 0ms, 1}, &error), nullptr);
  EXPECT_EQ(make_cares_resolver(io_, ResolverOptions{{}, 1000ms, 0}, &error), nullptr);
}

TEST_F(ResolverTest, CancelRunsEachCallbackOnceAsTransient) {
  auto r = make(5000ms, 2);
  int mx_calls = 0, address_calls = 0;
  MxAnswer mx_answer;
  AddressAnswer address_answer;
  r->lookup_mx("timeout.test", [&](MxAnswer a) {
    ++mx_calls;
    mx_answer = std::move(a);
  });
  r->lookup_addresses("timeout.test", [&](AddressAnswer a) {
    ++address_calls;
    address_answer = std::move(a);
  });
  io_.restart();
  io_.run_for(50ms);  // the queries are out
  r->cancel();
  EXPECT_EQ(mx_calls + address_calls, 0) << "ran inside cancel()";
  auto start = Clock::now();
  io_.restart();
  io_.run_for(500ms);
  EXPECT_EQ(mx_calls, 1);
  EXPECT_EQ(address_calls, 1);
  EXPECT_EQ(mx_answer.status, DnsStatus::kTransient);
  EXPECT_EQ(mx_answer.error, "cancelled");
  EXPECT_EQ(address_answer.status, DnsStatus::kTransient);
  EXPECT_EQ(address_answer.error, "cancelled");
  EXPECT_LT(Clock::now() - start, 1s);
  // The resolver still works after a cancel.
  EXPECT_EQ(mx(*r, "multi.test").status, DnsStatus::kOk);
}

TEST_F(ResolverTest, DestructionRunsOutstandingCallbacksOnce) {
  auto r = make(5000ms, 2);
  int calls = 0;
  DnsStatus status = DnsStatus::kOk;
  r->lookup_mx("timeout.test", [&](MxAnswer a) {
    ++calls;
    status = a.status;
  });
  r->lookup_addresses("timeout.test", [&](AddressAnswer) { ++calls; });
  io_.restart();
  io_.run_for(50ms);
  r.reset();
  EXPECT_EQ(calls, 0);
  io_.restart();
  io_.run_for(200ms);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(status, DnsStatus::kTransient);
}

TEST_F(ResolverTest, CallbackMayDestroyTheResolver) {
  auto r = make();
  std::optional<MxAnswer> got;
  r->lookup_mx("multi.test", [&](MxAnswer a) {
    r.reset();
    got = std::move(a);
  });
  run_until(got);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, DnsStatus::kOk);
  EXPECT_EQ(r, nullptr);
  io_.restart();
  io_.run_for(50ms);  // nothing left that touches the dead resolver
}

TEST_F(ResolverTest, AwaitableForms) {
  auto r = make();
  std::optional<std::pair<MxAnswer, AddressAnswer>> got;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        MxAnswer m = co_await async_lookup_mx(*r, "multi.test");
        AddressAnswer a = co_await async_lookup_addresses(*r, m.records.empty() ? "" : "dual.test");
        got.emplace(std::move(m), std::move(a));
      },
      asio::detached);
  run_until(got);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first.status, DnsStatus::kOk);
  EXPECT_EQ(got->first.records.size(), 3u);
  EXPECT_EQ(got->second.status, DnsStatus::kOk);
  EXPECT_EQ(got->second.addresses.size(), 3u);
}

TEST(FakeResolverTest, AnswersFromTablesPostedNotInline) {
  asio::io_context io;
  FakeResolver fake(io);
  fake.mx["example.net"] = {{10, "mx1.example.net"}, {20, "mx2.example.net"}};
  fake.mx["nullmx.test"] = {{0, ""}};
  fake.addresses["mx1.example.net"] = {asio::ip::make_address("192.0.2.1")};
  fake.addresses["nomx.test"] = {asio::ip::make_address("192.0.2.2")};
  fake.transient = {"down.test"};

  std::vector<std::string> seen;
  auto on_mx = [&](std::string label) {
    return [&seen, label](MxAnswer a) {
      seen.push_back(label + " " + name(a.status) + " " + std::to_string(a.records.size()));
    };
  };
  auto on_addresses = [&](std::string label) {
    return [&seen, label](AddressAnswer a) {
      std::string text = label + " " + name(a.status);
      for (const auto& address : a.addresses) text += " " + address.to_string();
      seen.push_back(text);
    };
  };
  fake.lookup_mx("example.net", on_mx("mx"));
  fake.lookup_mx("Example.NET.", on_mx("mx-case"));
  fake.lookup_mx("nomx.test", on_mx("nomx"));
  fake.lookup_mx("nosuch.test", on_mx("nosuch"));
  fake.lookup_mx("down.test", on_mx("down"));
  fake.lookup_addresses("mx1.example.net", on_addresses("a"));
  fake.lookup_addresses("example.net", on_addresses("a-mxonly"));
  fake.lookup_addresses("nosuch.test", on_addresses("a-nosuch"));
  fake.lookup_addresses("down.test", on_addresses("a-down"));
  fake.lookup_addresses("[192.0.2.9]", on_addresses("literal"));
  EXPECT_TRUE(seen.empty()) << "answered inline";
  io.run();
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "mx kOk 2", "mx-case kOk 2", "nomx kNoRecords 0", "nosuch kNxDomain 0",
                      "down kTransient 0", "a kOk 192.0.2.1", "a-mxonly kNoRecords", "a-nosuch kNxDomain",
                      "a-down kTransient", "literal kOk 192.0.2.9"}));
  EXPECT_EQ(fake.queries.size(), 9u);  // the literal asked nothing
  EXPECT_EQ(fake.queries.front(), "MX example.net");
}

TEST(FakeResolverTest, AwaitableForms) {
  asio::io_context io;
  FakeResolver fake(io);
  fake.mx["example.net"] = {{10, "mx1.example.net"}};
  std::optional<MxAnswer> got;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await async_lookup_mx(fake, "example.net"); },
      asio::detached);
  io.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, DnsStatus::kOk);
  ASSERT_EQ(got->records.size(), 1u);
  EXPECT_EQ(got->records[0].host, "mx1.example.net");
}

}  // namespace
}  // namespace starling::net
