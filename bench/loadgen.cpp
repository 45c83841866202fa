// starling-loadgen: an SMTP load generator for bench/compare. It drives one server with N
// concurrent sessions (plain or STARTTLS, optionally authenticated with AUTH PLAIN) and prints
// accepted messages per second, or authenticated sessions per second (--auth-only), or bare TLS
// handshakes per second against a TLS server (--tls-only, the floor STARTTLS is compared with),
// or holds N idle sessions open so the server's memory per connection can be measured.
// Exposure: a client only; it connects to the one host it is given and needs no privileges.
// It trusts any server certificate on purpose: it measures servers, it does not authenticate them.
// RFCs: 5321 (EHLO, MAIL, RCPT, DATA, QUIT; one command, one reply, no PIPELINING), 3207 (STARTTLS),
// 4954 and 4616 (AUTH PLAIN with an initial response), 5322 (the generated message). Every reply
// code is checked; failures are counted and printed.

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>

#include <CLI/CLI.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using TlsSession = std::unique_ptr<SSL_SESSION, SessionFree>;

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
  bool tls_only = false;      // connect, TLS handshake, close_notify: no SMTP at all
  bool resume = false;        // each session offers the TLS session of its previous connection
  std::string sigalgs;        // the client's signature algorithms when not empty
  int idle = 0;
  bool idle_control = false;  // idle rounds driven by commands on stdin
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
  // A reply is quoted by describe(), so a quoted 4xx is a deferral the server asked for (the
  // receive memory budget's 452, say), not a connection or protocol error.
  void failed_message(std::string_view stage, std::string_view what) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    if (what.size() > 1 && what[0] == '"' && what[1] == '4') deferred_.fetch_add(1, std::memory_order_relaxed);
    note(stage, what);
  }
  void handshake(bool resumed) {
    handshakes_.fetch_add(1, std::memory_order_relaxed);
    if (resumed) resumed_.fetch_add(1, std::memory_order_relaxed);
  }
  // A protocol error that loses no message (a bad reply to QUIT after the 250).
  void note(std::string_view stage, std::string_view what) {
    std::lock_guard lock(mutex_);
    ++failures_[std::string(stage) + ": " + std::string(what)];
  }

  long sent_count() const { return sent_.load(); }
  long failed_count() const { return failed_.load(); }
  long deferred_count() const { return deferred_.load(); }
  long handshake_count() const { return handshakes_.load(); }
  long resumed_count() const { return resumed_.load(); }
  void print_failures(std::FILE* out) const {
    std::lock_guard lock(mutex_);
    for (const auto& [what, count] : failures_) std::fprintf(out, "loadgen: failure count=%ld %s\n", count, what.c_str());
  }

 private:
  const long total_;
  std::atomic<long> next_{0};
  std::atomic<long> sent_{0};
  std::atomic<long> failed_{0};
  std::atomic<long> deferred_{0};
  std::atomic<long> handshakes_{0};
  std::atomic<long> resumed_{0};
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

  // The message as its own header and the shared body, without copying the body per message.
  awaitable<std::error_code> write(std::string_view head, std::string_view body) {
    arm();
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body)};
    auto [ec, n] = tls_ ? co_await asio::async_write(stream_, buffers, use_tuple)
                        : co_await asio::async_write(socket(), buffers, use_tuple);
    co_return ec;
  }

  awaitable<Reply> command(std::string_view line) {
    if (auto ec = co_await write(line)) co_return Reply{0, ec.message()};
    co_return co_await read_reply();
  }

  // RFC 3207 §4: called after the 220 to STARTTLS. Bytes already buffered past that reply
  // would be a server injecting plaintext into the TLS session; it is reported, not used.
  // A session offered (--resume) is the server's to accept or not; resumed() says which.
  awaitable<std::string> start_tls(const std::string& sni, SSL_SESSION* offered) {
    if (!in_.empty()) co_return "server sent data after its 220 to STARTTLS";
    if (!sni.empty()) SSL_set_tlsext_host_name(stream_.native_handle(), sni.c_str());
    if (offered != nullptr) SSL_set_session(stream_.native_handle(), offered);
    arm();
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (ec) co_return "TLS handshake: " + ec.message();
    tls_ = true;
    co_return "";
  }

  bool tls() const { return tls_; }
  bool resumed() { return SSL_session_reused(stream_.native_handle()) == 1; }

  // The session to offer next time. Taken at the end of the connection because a TLS 1.3
  // server sends its tickets after the handshake; null when the server gave nothing resumable.
  // A copy: freeing a connection closed without close_notify (an SMTP client closes after 221)
  // marks its own session not resumable.
  TlsSession take_session() {
    SSL_SESSION* current = SSL_get_session(stream_.native_handle());
    if (current == nullptr || SSL_SESSION_is_resumable(current) != 1) return nullptr;
    return TlsSession(SSL_SESSION_dup(current));
  }

  // --tls-only: close_notify, then the server's close_notify or end of stream, whichever comes;
  // reading to the end also takes in the tickets a TLS 1.3 server sends after the handshake.
  awaitable<void> shutdown_tls() {
    arm();
    co_await stream_.async_shutdown(use_tuple);
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
    closed_here_ = true;
    watchdog_.cancel();
    std::error_code ignored;
    socket().close(ignored);
  }
  bool closed_here() const { return closed_here_; }

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
  bool closed_here_ = false;
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

  // Fills out with the header of message number id; body() follows it, dot-terminated.
  void render_head(std::string& out, long id, const std::string& helo) const {
    out.assign(head_);
    out += "Message-Id: <" + std::to_string(getpid()) + "." + std::to_string(id) + "@" + helo + ">\r\n\r\n";
  }
  std::string_view body() const { return body_; }

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
  bool starttls;             // per Context, because idle rounds may differ from --starttls
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

// The TLS handshake, counted (and whether the server resumed the session offered).
awaitable<std::string> handshake(Context& c, SmtpConnection& conn, SSL_SESSION* offered, const char* stage) {
  if (auto error = co_await conn.start_tls(c.options.sni, offered); !error.empty()) {
    co_return std::string(stage) + ": " + error;
  }
  c.tally.handshake(conn.resumed());
  co_return "";
}

// Connects, greets, upgrades to TLS and authenticates if asked (--tls-only: connects and shakes
// hands, nothing else). Returns the stage and reason on failure.
awaitable<std::string> open_session(Context& c, SmtpConnection& conn, SSL_SESSION* offered) {
  const Options& o = c.options;
  if (auto ec = co_await conn.connect(c.endpoints)) co_return "connect: " + ec.message();
  if (o.tls_only) co_return co_await handshake(c, conn, offered, "TLS");
  Reply r = co_await conn.read_reply();
  if (r.code != 220) co_return "banner: " + describe(r);
  const std::string ehlo = "EHLO " + o.helo + "\r\n";
  r = co_await conn.command(ehlo);
  if (r.code != 250) co_return "EHLO: " + describe(r);
  if (!c.starttls) co_return co_await authenticate(c, conn);
  r = co_await conn.command("STARTTLS\r\n");
  if (r.code != 220) co_return "STARTTLS: " + describe(r);
  if (auto error = co_await handshake(c, conn, offered, "STARTTLS"); !error.empty()) co_return error;
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
  c.message.render_head(scratch, c.message_ids.fetch_add(1, std::memory_order_relaxed), o.helo);
  if (auto ec = co_await conn.write(scratch, c.message.body())) co_return "message: " + ec.message();
  r = co_await conn.read_reply();
  if (r.code != 250) co_return "end of data: " + describe(r);
  co_return "";
}

void count_failure(Tally& tally, const std::string& error) {
  tally.failed_message(error.substr(0, error.find(':')), error.substr(error.find(':') + 2));
}

// One concurrent session: connection after connection until all messages are claimed.
// A failure costs the message in hand and the connection, never the run. With --auth-only
// each connection is one unit of work (a session that authenticated) and carries no mail; with
// --tls-only, one handshake. With --resume the session offers, on each connection, the TLS
// session its previous connection ended with.
awaitable<void> drive_session(Context& c) {
  auto ex = co_await asio::this_coro::executor;
  const Options& o = c.options;
  std::string scratch;
  const auto timeout = std::chrono::seconds(o.timeout_seconds);
  const bool mail = !o.auth_only && !o.tls_only;
  TlsSession previous;
  bool claimed = c.tally.claim();
  while (claimed) {
    SmtpConnection conn(ex, c.tls, timeout);
    if (auto error = co_await open_session(c, conn, previous.get()); !error.empty()) {
      count_failure(c.tally, error);
      previous.reset();
      claimed = c.tally.claim();
      continue;
    }
    bool healthy = true;
    if (!mail) {
      c.tally.sent();
      claimed = c.tally.claim();
    }
    for (int sent_here = 0; mail && claimed && sent_here < o.per_connection; ++sent_here) {
      if (auto error = co_await send_message(c, conn, scratch); !error.empty()) {
        count_failure(c.tally, error);
        healthy = false;
        claimed = c.tally.claim();
        break;
      }
      c.tally.sent();
      claimed = c.tally.claim();
    }
    if (o.tls_only) {
      co_await conn.shutdown_tls();
    } else if (healthy) {
      Reply r = co_await conn.command("QUIT\r\n");
      if (r.code != 221) c.tally.note("QUIT", describe(r));
    }
    if (o.resume && conn.tls()) previous = conn.take_session();
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
  // The unit: a message accepted ("sent="), a session that authenticated (--auth-only,
  // "sessions="), or a handshake (--tls-only, "connections="). deferred counts 4xx replies.
  const char* unit = o.tls_only ? "connections" : o.auth_only ? "sessions" : "sent";
  std::printf("loadgen: %s=%ld failed=%ld seconds=%.3f rate=%.1f handshakes=%ld resumed=%ld deferred=%ld\n", unit,
              sent, c.tally.failed_count(), seconds, seconds > 0 ? sent / seconds : 0.0, c.tally.handshake_count(),
              c.tally.resumed_count(), c.tally.deferred_count());
  return sent == o.messages && c.tally.failed_count() == 0 ? 0 : 1;
}

// Idle mode: the connections held, and how many of them the server closed first.
struct IdleState {
  std::vector<std::shared_ptr<SmtpConnection>> open;
  long closed_by_server = 0;
  long failed = 0;
  bool stopping = false;
};

// One round of --idle connections (all of them at start, or one "open" command), with its own
// count and STARTTLS setting. Rounds live until the program ends: their openers refer to them.
struct IdleRound {
  IdleRound(const Context& base, bool starttls)
      : tally(base.options.idle),
        context{base.options, base.endpoints, base.tls, base.message, tally, starttls, base.auth_command} {}
  Tally tally;
  Context context;
  int openers_left = 0;
};

// The frame owns the connection, so a connection closed and dropped by "close" is freed only
// once its pending read has completed.
awaitable<void> hold_idle(std::shared_ptr<SmtpConnection> conn, IdleState& state) {
  co_await conn->wait_closed_by_server();
  if (!conn->closed_here()) ++state.closed_by_server;
}

awaitable<void> open_idle(Context& c, IdleState& state) {
  auto ex = co_await asio::this_coro::executor;
  while (!state.stopping && c.tally.claim()) {
    auto conn = std::make_shared<SmtpConnection>(ex, c.tls, std::chrono::seconds(c.options.timeout_seconds));
    if (auto error = co_await open_session(c, *conn, nullptr); !error.empty()) {
      count_failure(c.tally, error);
      continue;
    }
    if (state.stopping) {  // stop() has already closed the others
      conn->close();
      break;
    }
    c.tally.sent();
    state.open.push_back(conn);
    asio::co_spawn(ex, hold_idle(conn, state), asio::detached);
  }
}

// Opens a round's connections, o.sessions at a time, and prints how many opened once all are.
void start_round(asio::io_context& io, IdleState& state, IdleRound& round) {
  round.openers_left = round.context.options.sessions;
  for (int i = 0; i < round.context.options.sessions; ++i) {
    asio::co_spawn(io, open_idle(round.context, state), [&state, &round](std::exception_ptr) {
      if (--round.openers_left > 0) return;
      round.tally.print_failures(stderr);
      state.failed += round.tally.failed_count();
      std::printf("idle: %ld connections open", round.tally.sent_count());
      if (round.tally.failed_count() > 0) std::printf(" (%ld failed)", round.tally.failed_count());
      std::printf("\n");
      std::fflush(stdout);
    });
  }
}

void close_idle(IdleState& state) {
  for (auto& conn : state.open) conn->close();
  std::printf("idle: closed %zu connections (%ld had been closed by the server)\n", state.open.size(),
              state.closed_by_server);
  std::fflush(stdout);
  state.open.clear();
  state.closed_by_server = 0;
}

// Idle mode: opens the connections (o.sessions at a time) and holds them until stdin closes or
// SIGTERM/SIGINT arrives, then closes them. With --idle-control nothing opens at start: each
// line on stdin is a command, "open" (a round of --idle connections, plain), "open-starttls"
// (the same with STARTTLS) or "close" (closes all held), answered by one line on stdout, so
// that bench/compare can warm a server up and measure it with one client process throughout.
int run_idle(const Options& o, Context& base) {
  asio::io_context io(1);
  IdleState state;
  std::vector<std::unique_ptr<IdleRound>> rounds;
  auto open_round = [&](bool starttls) {
    rounds.push_back(std::make_unique<IdleRound>(base, starttls));
    start_round(io, state, *rounds.back());
  };
  if (!o.idle_control) open_round(o.starttls);

  asio::signal_set signals(io, SIGTERM, SIGINT);
  auto stop = [&] {
    if (state.stopping) return;
    state.stopping = true;
    signals.cancel();
    close_idle(state);
  };
  auto command = [&](const std::string& line) {
    if (state.stopping) return;
    if (line == "open" || line == "open-starttls") {
      open_round(line == "open-starttls");
    } else if (line == "close") {
      close_idle(state);
    } else {
      std::printf("idle: unknown command \"%s\" (open, open-starttls, close)\n", line.c_str());
      std::fflush(stdout);
    }
  };
  signals.async_wait([&](std::error_code ec, int) {
    if (!ec) stop();
  });
  // stdin may be a file or /dev/null, which epoll cannot watch; a blocking reader thread can.
  std::thread([&io, &stop, &command, control = o.idle_control] {
    char buf[256];
    std::string pending;
    for (ssize_t n; (n = ::read(STDIN_FILENO, buf, sizeof buf)) > 0;) {
      if (!control) continue;
      pending.append(buf, static_cast<std::size_t>(n));
      for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos; pending.erase(0, eol + 1)) {
        asio::post(io, [&command, line = pending.substr(0, eol)] { command(line); });
      }
      if (pending.size() > 4096) pending.clear();  // no command is that long
    }
    asio::post(io, stop);
  }).detach();

  io.run();
  std::_Exit(state.failed == 0 ? 0 : 1);  // the stdin thread may still be blocked
}

// Thousands of idle connections need as many descriptors: the soft limit goes up to the hard one.
void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) std::fprintf(stderr, "loadgen: cannot raise RLIMIT_NOFILE: %s\n", std::strerror(errno));
}

}  // namespace
}  // namespace starling::bench

int main(int argc, char** argv) {
  using namespace starling::bench;
  Options o;
  CLI::App app{"starling-loadgen: SMTP load generator (plain or STARTTLS, or bare TLS handshakes) for bench/compare"};
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
  auto* tls_only = app.add_flag("--tls-only", o.tls_only,
                                "no SMTP: connect, TLS handshake, close_notify, close (against a TLS server such as "
                                "openssl s_server); --messages counts connections");
  app.add_flag("--resume", o.resume, "offer each connection the TLS session the session's previous one ended with");
  app.add_option("--sigalgs", o.sigalgs,
                 "signature algorithms the client offers (SSL_CTX_set1_sigalgs_list), e.g. "
                 "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256");
  auto* idle = app.add_option("--idle", o.idle, "open N idle connections, hold them until stdin closes or SIGTERM")
                   ->check(CLI::PositiveNumber);
  app.add_flag("--idle-control", o.idle_control,
               "open nothing at start; stdin lines \"open\", \"open-starttls\", \"close\" open or close a round of "
               "--idle connections")
      ->needs(idle);
  tls_only->excludes("--starttls")->excludes("--auth-plain")->excludes(idle);
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
    ERR_clear_error();
    if (!o.sigalgs.empty() && SSL_CTX_set1_sigalgs_list(tls.native_handle(), o.sigalgs.c_str()) != 1) {
      std::fprintf(stderr, "loadgen: --sigalgs %s: not a list OpenSSL accepts\n", o.sigalgs.c_str());
      return 2;
    }
    raise_descriptor_limit();

    asio::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    auto endpoints = resolver.resolve(o.host, o.port);

    MessageTemplate message(o);
    Tally tally(o.idle > 0 ? o.idle : o.messages);
    Context c{o, endpoints, tls, message, tally, o.starttls, o.auth_user.empty() ? "" : auth_plain_command(o)};
    return o.idle > 0 ? run_idle(o, c) : run_load(o, c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
}
