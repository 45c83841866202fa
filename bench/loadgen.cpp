// starling-loadgen: an SMTP load generator for bench/compare. It drives one server with N
// concurrent sessions (plain or STARTTLS, optionally authenticated with AUTH PLAIN) and prints
// accepted messages per second, or authenticated sessions per second (--auth-only), or holds N
// idle sessions open so the server's memory per connection can be measured.
// Exposure: a client only; it connects to the one host it is given and needs no privileges.
// It trusts any server certificate on purpose: it measures servers, it does not authenticate them.
// RFCs: 5321 (EHLO, MAIL, RCPT, DATA, QUIT; one command, one reply, no PIPELINING), 3207 (STARTTLS),
// 4954 and 4616 (AUTH PLAIN with an initial response), 5322 (the generated message). Every reply
// code is checked; failures are counted and printed.

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>

#include <CLI/CLI.hpp>
#include <openssl/ssl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace starling::bench {
namespace {

using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "25";
  int sessions = 20;
  long messages = 1000;
  std::size_t size = 4096;
  bool starttls = false;
  std::string domain = "bench.test";
  std::string local_part = "user";
  std::string from = "a@client.test";
  std::string helo = "client.test";
  std::string sni;
  int per_connection = 1;
  std::string auth_user;      // AUTH PLAIN after the last EHLO when not empty
  std::string auth_password;
  bool auth_only = false;     // sessions of EHLO, STARTTLS, EHLO, AUTH, QUIT: no mail
  int idle = 0;
  int threads = 1;
  int timeout_seconds = 30;
};

// One SMTP reply. code 0 means no reply was read; text then says why (an I/O error).
struct Reply {
  int code = 0;
  std::string text;
};

// What every session shares: the message counter it claims work from, the totals, and the
// failures, kept by stage and reply so a run of 20,000 identical errors prints as one line.
class Tally {
 public:
  explicit Tally(long total) : total_(total) {}

  // Claims the next message. False once all have been claimed.
  bool claim() { return next_.fetch_add(1, std::memory_order_relaxed) < total_; }
  void sent() { sent_.fetch_add(1, std::memory_order_relaxed); }
  void failed_message(std::string_view stage, std::string_view what) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    note(stage, what);
  }
  // A protocol error that loses no message (a bad reply to QUIT after the 250).
  void note(std::string_view stage, std::string_view what) {
    std::lock_guard lock(mutex_);
    ++failures_[std::string(stage) + ": " + std::string(what)];
  }

  long sent_count() const { return sent_.load(); }
  long failed_count() const { return failed_.load(); }
  void print_failures(std::FILE* out) const {
    std::lock_guard lock(mutex_);
    for (const auto& [what, count] : failures_) std::fprintf(out, "loadgen: failure count=%ld %s\n", count, what.c_str());
  }

 private:
  const long total_;
  std::atomic<long> next_{0};
  std::atomic<long> sent_{0};
  std::atomic<long> failed_{0};
  mutable std::mutex mutex_;
  std::map<std::string, long> failures_;
};

std::string describe(const Reply& r) { return r.code == 0 ? r.text : "\"" + r.text + "\""; }

// RFC 4648 §4 base64, with padding: what AUTH's initial response is encoded in (RFC 4954 §4).
std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// The AUTH PLAIN command with its initial response: authorization identity empty (act as the
// authenticated user), then the user and the password, NUL-separated (RFC 4616 §2).
std::string auth_plain_command(const Options& o) {
  std::string response;
  response += '\0';
  response += o.auth_user;
  response += '\0';
  response += o.auth_password;
  return "AUTH PLAIN " + base64(response) + "\r\n";
}

// One client connection, plain until start_tls() succeeds. A watchdog timer closes the socket
// when one operation takes longer than the timeout, so a stalled server fails the session
// instead of hanging the run.
class SmtpConnection {
 public:
  SmtpConnection(const asio::any_io_executor& ex, asio::ssl::context& tls, std::chrono::seconds timeout)
      : stream_(ex, tls), watchdog_(ex), timeout_(timeout) {}

  awaitable<std::error_code> connect(const tcp::resolver::results_type& endpoints) {
    arm();
    auto [ec, endpoint] = co_await asio::async_connect(socket(), endpoints, use_tuple);
    if (!ec) socket().set_option(tcp::no_delay(true));
    co_return ec;
  }

  // Reads one possibly multi-line reply (RFC 5321 §4.2.1); the text kept is the last line.
  awaitable<Reply> read_reply() {
    Reply reply;
    for (;;) {
      arm();
      auto [ec, n] = tls_ ? co_await asio::async_read_until(stream_, asio::dynamic_buffer(in_, 65536), "\r\n", use_tuple)
                          : co_await asio::async_read_until(socket(), asio::dynamic_buffer(in_, 65536), "\r\n", use_tuple);
      if (ec) co_return Reply{0, ec == asio::error::operation_aborted ? "timeout" : ec.message()};
      std::string line = in_.substr(0, n - 2);
      in_.erase(0, n);
      bool well_formed = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                         std::isdigit(static_cast<unsigned char>(line[1])) &&
                         std::isdigit(static_cast<unsigned char>(line[2])) &&
                         (line.size() == 3 || line[3] == ' ' || line[3] == '-');
      if (!well_formed) co_return Reply{0, "malformed reply \"" + line + "\""};
      reply.code = std::stoi(line.substr(0, 3));
      bool last = line.size() == 3 || line[3] == ' ';
      reply.text = std::move(line);
      if (last) co_return reply;
    }
  }

  awaitable<std::error_code> write(std::string_view data) {
    arm();
    auto [ec, n] = tls_ ? co_await asio::async_write(stream_, asio::buffer(data), use_tuple)
                        : co_await asio::async_write(socket(), asio::buffer(data), use_tuple);
    co_return ec;
  }

  awaitable<Reply> command(std::string_view line) {
    if (auto ec = co_await write(line)) co_return Reply{0, ec.message()};
    co_return co_await read_reply();
  }

  // RFC 3207 §4: called after the 220 to STARTTLS. Bytes already buffered past that reply
  // would be a server injecting plaintext into the TLS session; it is reported, not used.
  awaitable<std::string> start_tls(const std::string& sni) {
    if (!in_.empty()) co_return "server sent data after its 220 to STARTTLS";
    if (!sni.empty()) SSL_set_tlsext_host_name(stream_.native_handle(), sni.c_str());
    arm();
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (ec) co_return "TLS handshake: " + ec.message();
    tls_ = true;
    co_return "";
  }

  // Idle mode: no more timeouts, and completes when the server closes or sends anything.
  awaitable<void> wait_closed_by_server() {
    watchdog_.cancel();
    char byte;
    if (tls_) {
      co_await stream_.async_read_some(asio::buffer(&byte, 1), use_tuple);
    } else {
      co_await socket().async_read_some(asio::buffer(&byte, 1), use_tuple);
    }
  }

  void close() {
    watchdog_.cancel();
    std::error_code ignored;
    socket().close(ignored);
  }

 private:
  tcp::socket& socket() { return stream_.next_layer(); }

  // Restarts the timeout for the next operation. A superseded wait completes with
  // operation_aborted and does nothing, so the handler never touches a destroyed connection.
  void arm() {
    watchdog_.expires_after(timeout_);
    watchdog_.async_wait([this](std::error_code ec) {
      if (!ec) socket().close(ec);
    });
  }

  asio::ssl::stream<tcp::socket> stream_;
  asio::steady_timer watchdog_;
  std::chrono::seconds timeout_;
  bool tls_ = false;
  std::string in_;
};

// The message, built once: headers, a per-message Message-Id, and a body of 78-column lines of
// exactly --size bytes (like smtp-source -l, the size excludes the header).
class MessageTemplate {
 public:
  explicit MessageTemplate(const Options& o) {
    char date[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    head_ = "From: <" + o.from + ">\r\nTo: <" + o.local_part + "@" + o.domain +
            ">\r\nSubject: starling-loadgen\r\nDate: " + date + "\r\n";
    std::size_t left = o.size;
    for (int line = 1; left > 0; ++line) {
      std::size_t chunk = std::min<std::size_t>(80, left);
      std::size_t text = chunk > 2 ? chunk - 2 : 0;
      if (text > 0) {
        body_ += static_cast<char>('0' + line % 10);
        body_.append(text - 1, 'X');
      }
      body_ += "\r\n";
      left -= std::min(left, text + 2);
    }
    body_ += ".\r\n";
  }

  // Fills out with message number id, dot-terminated and ready for DATA.
  void render(std::string& out, long id, const std::string& helo) const {
    out.assign(head_);
    out += "Message-Id: <" + std::to_string(getpid()) + "." + std::to_string(id) + "@" + helo + ">\r\n\r\n";
    out += body_;
  }

 private:
  std::string head_;
  std::string body_;
};

struct Context {
  const Options& options;
  tcp::resolver::results_type endpoints;
  asio::ssl::context& tls;
  const MessageTemplate& message;
  Tally& tally;
  std::string auth_command;  // "AUTH PLAIN ...\r\n", built once; empty without --auth-plain
  std::atomic<long> message_ids{0};
};

// RFC 4954 §4: AUTH PLAIN after the last EHLO, when asked; 235 is success. Nothing is sent
// without a user.
awaitable<std::string> authenticate(Context& c, SmtpConnection& conn) {
  if (c.options.auth_user.empty()) co_return "";
  Reply r = co_await conn.command(c.auth_command);
  if (r.code != 235) co_return "AUTH: " + describe(r);
  co_return "";
}

// Connects, greets, upgrades to TLS and authenticates if asked. Returns the stage and reason on
// failure.
awaitable<std::string> open_session(Context& c, SmtpConnection& conn) {
  const Options& o = c.options;
  if (auto ec = co_await conn.connect(c.endpoints)) co_return "connect: " + ec.message();
  Reply r = co_await conn.read_reply();
  if (r.code != 220) co_return "banner: " + describe(r);
  const std::string ehlo = "EHLO " + o.helo + "\r\n";
  r = co_await conn.command(ehlo);
  if (r.code != 250) co_return "EHLO: " + describe(r);
  if (!o.starttls) co_return co_await authenticate(c, conn);
  r = co_await conn.command("STARTTLS\r\n");
  if (r.code != 220) co_return "STARTTLS: " + describe(r);
  if (auto error = co_await conn.start_tls(o.sni); !error.empty()) co_return "STARTTLS: " + error;
  r = co_await conn.command(ehlo);
  if (r.code != 250) co_return "EHLO after STARTTLS: " + describe(r);
  co_return co_await authenticate(c, conn);
}

// Sends one message; returns the stage and reason on failure.
awaitable<std::string> send_message(Context& c, SmtpConnection& conn, std::string& scratch) {
  const Options& o = c.options;
  Reply r = co_await conn.command("MAIL FROM:<" + o.from + ">\r\n");
  if (r.code != 250) co_return "MAIL: " + describe(r);
  r = co_await conn.command("RCPT TO:<" + o.local_part + "@" + o.domain + ">\r\n");
  if (r.code != 250 && r.code != 251) co_return "RCPT: " + describe(r);
  r = co_await conn.command("DATA\r\n");
  if (r.code != 354) co_return "DATA: " + describe(r);
  c.message.render(scratch, c.message_ids.fetch_add(1, std::memory_order_relaxed), o.helo);
  if (auto ec = co_await conn.write(scratch)) co_return "message: " + ec.message();
  r = co_await conn.read_reply();
  if (r.code != 250) co_return "end of data: " + describe(r);
  co_return "";
}

// One concurrent session: connection after connection until all messages are claimed.
// A failure costs the message in hand and the connection, never the run. With --auth-only
// each connection is one unit of work (a session that authenticated) and carries no mail.
awaitable<void> drive_session(Context& c) {
  auto ex = co_await asio::this_coro::executor;
  std::string scratch;
  const auto timeout = std::chrono::seconds(c.options.timeout_seconds);
  bool claimed = c.tally.claim();
  while (claimed) {
    SmtpConnection conn(ex, c.tls, timeout);
    if (auto error = co_await open_session(c, conn); !error.empty()) {
      c.tally.failed_message(error.substr(0, error.find(':')), error.substr(error.find(':') + 2));
      claimed = c.tally.claim();
      continue;
    }
    bool healthy = true;
    if (c.options.auth_only) {
      c.tally.sent();
      claimed = c.tally.claim();
    }
    for (int sent_here = 0; !c.options.auth_only && claimed && sent_here < c.options.per_connection; ++sent_here) {
      if (auto error = co_await send_message(c, conn, scratch); !error.empty()) {
        c.tally.failed_message(error.substr(0, error.find(':')), error.substr(error.find(':') + 2));
        healthy = false;
        claimed = c.tally.claim();
        break;
      }
      c.tally.sent();
      claimed = c.tally.claim();
    }
    if (healthy) {
      Reply r = co_await conn.command("QUIT\r\n");
      if (r.code != 221) c.tally.note("QUIT", describe(r));
    }
    conn.close();
  }
}

int run_load(const Options& o, Context& c) {
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int i = 0; i < o.threads; ++i) ios.push_back(std::make_unique<asio::io_context>(1));
  for (int i = 0; i < o.sessions; ++i) {
    asio::co_spawn(*ios[i % o.threads], drive_session(c), asio::detached);
  }
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i) threads.emplace_back([&io = *ios[i]] { io.run(); });
  ios[0]->run();
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  c.tally.print_failures(stderr);
  long sent = c.tally.sent_count();
  // With --auth-only the unit is a session that authenticated: "sessions=" instead of "sent=".
  std::printf("loadgen: %s=%ld failed=%ld seconds=%.3f rate=%.1f\n", o.auth_only ? "sessions" : "sent", sent,
              c.tally.failed_count(), seconds, seconds > 0 ? sent / seconds : 0.0);
  return sent == o.messages && c.tally.failed_count() == 0 ? 0 : 1;
}

// Idle mode: opens the connections (o.sessions at a time), holds them until stdin closes or
// SIGTERM/SIGINT arrives, then closes them.
int run_idle(const Options& o, Context& c) {
  asio::io_context io(1);
  std::vector<std::unique_ptr<SmtpConnection>> open;
  long closed_by_server = 0;
  bool stopping = false;

  auto opener = [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    while (!stopping && c.tally.claim()) {
      auto conn = std::make_unique<SmtpConnection>(ex, c.tls, std::chrono::seconds(o.timeout_seconds));
      if (auto error = co_await open_session(c, *conn); !error.empty()) {
        c.tally.failed_message(error.substr(0, error.find(':')), error.substr(error.find(':') + 2));
        continue;
      }
      if (stopping) {  // stop() has already closed the others
        conn->close();
        break;
      }
      c.tally.sent();
      SmtpConnection* held = conn.get();
      open.push_back(std::move(conn));
      asio::co_spawn(ex, [&, held]() -> awaitable<void> {
        co_await held->wait_closed_by_server();
        if (!stopping) ++closed_by_server;
      }, asio::detached);
    }
  };
  int openers_left = o.sessions;
  auto report = [&] {
    c.tally.print_failures(stderr);
    std::printf("idle: %ld connections open", c.tally.sent_count());
    if (c.tally.failed_count() > 0) std::printf(" (%ld failed)", c.tally.failed_count());
    std::printf("\n");
    std::fflush(stdout);
  };
  for (int i = 0; i < o.sessions; ++i) {
    asio::co_spawn(io, opener(), [&](std::exception_ptr) {
      if (--openers_left == 0) report();
    });
  }

  asio::signal_set signals(io, SIGTERM, SIGINT);
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    signals.cancel();
    for (auto& conn : open) conn->close();
  };
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) stop();
  });
  // stdin may be a file or /dev/null, which epoll cannot watch; a blocking reader thread can.
  std::thread([&io, &stop] {
    char buf[256];
    while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    asio::post(io, stop);
  }).detach();

  io.run();
  std::printf("idle: closed %zu connections (%ld had been closed by the server)\n", open.size(), closed_by_server);
  std::fflush(stdout);
  std::_Exit(c.tally.failed_count() == 0 ? 0 : 1);  // the stdin thread may still be blocked
}

}  // namespace
}  // namespace starling::bench

int main(int argc, char** argv) {
  using namespace starling::bench;
  Options o;
  CLI::App app{"starling-loadgen: SMTP load generator (plain or STARTTLS) for bench/compare"};
  app.add_option("--host", o.host, "server address")->capture_default_str();
  app.add_option("--port", o.port, "server port")->capture_default_str();
  app.add_option("--sessions", o.sessions, "concurrent sessions")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--messages", o.messages, "messages to send in all")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--size", o.size, "message body bytes, headers excluded (as smtp-source -l)")->capture_default_str();
  app.add_flag("--starttls", o.starttls, "upgrade every connection with STARTTLS before MAIL");
  app.add_option("--domain", o.domain, "recipient domain")->capture_default_str();
  app.add_option("--to-user", o.local_part, "recipient local part")->capture_default_str();
  app.add_option("--from", o.from, "envelope sender")->capture_default_str();
  app.add_option("--helo", o.helo, "EHLO name")->capture_default_str();
  app.add_option("--sni", o.sni, "TLS server name to send (none by default)");
  app.add_option("--messages-per-connection", o.per_connection, "messages sent over one connection")
      ->capture_default_str()->check(CLI::PositiveNumber);
  std::string auth_plain;
  auto* auth_option = app.add_option("--auth-plain", auth_plain,
                                     "USER:PASSWORD: AUTH PLAIN after the last EHLO, 235 expected, before MAIL");
  app.add_flag("--auth-only", o.auth_only,
               "sessions without mail (EHLO, STARTTLS, EHLO, AUTH, QUIT); --messages counts sessions")
      ->needs(auth_option);
  app.add_option("--idle", o.idle, "open N idle connections, hold them until stdin closes or SIGTERM")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "client threads")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--timeout", o.timeout_seconds, "seconds allowed for each network operation")
      ->capture_default_str()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (!auth_plain.empty()) {
    auto colon = auth_plain.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "loadgen: --auth-plain takes USER:PASSWORD\n");
      return 2;
    }
    o.auth_user = auth_plain.substr(0, colon);
    o.auth_password = auth_plain.substr(colon + 1);
  }

  try {
    asio::ssl::context tls(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    tls.set_verify_mode(asio::ssl::verify_none);  // self-signed benchmark certificates

    asio::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    auto endpoints = resolver.resolve(o.host, o.port);

    MessageTemplate message(o);
    Tally tally(o.idle > 0 ? o.idle : o.messages);
    Context c{o, endpoints, tls, message, tally, o.auth_user.empty() ? "" : auth_plain_command(o)};
    return o.idle > 0 ? run_idle(o, c) : run_load(o, c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
}
