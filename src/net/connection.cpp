#include "net/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <asio/ssl/error.hpp>
#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <ctime>
#include <memory>
#include <set>

#include "core/directory.hpp"
#include "core/log.hpp"
#include "core/message_header.hpp"
#include "core/names.hpp"
#include "core/routing.hpp"
#include "logs/tracking.hpp"
#include "metrics/metrics.hpp"
#include "net/server.hpp"
#include "smtp/received.hpp"
#include "tls/client_context.hpp"

namespace starling::net {
namespace {

constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadBuffer = 4096;

bool has_group(const core::ReceiveConnector& c, std::string_view group) {
  return std::any_of(c.permission_groups.begin(), c.permission_groups.end(),
                     [&](const std::string& g) { return core::iequals(g, group); });
}

smtp::Address split_address(std::string_view a) {
  size_t at = a.rfind('@');
  if (at == std::string_view::npos) return {std::string(a), ""};
  return {std::string(a.substr(0, at)), std::string(a.substr(at + 1))};
}

// Client-chosen text for the server log: printable, bounded (no log injection).
std::string printable(std::string_view s, size_t limit = 256) {
  std::string out;
  for (char c : s.substr(0, limit)) {
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  }
  return out;
}

smtp::RecipientVerdict verdict_of(const core::Directory& dir, const smtp::Address& a) {
  using Kind = core::Directory::Resolution::Kind;
  using V = smtp::RecipientVerdict::Kind;
  auto r = dir.resolve(a.str());
  smtp::RecipientVerdict v;
  switch (r.kind) {
    case Kind::kMailbox:
    case Kind::kNotLocal: v.kind = V::kMailbox; break;  // kNotLocal: the domain lists disagree
    case Kind::kUnknown: v.kind = V::kUnknown; break;
    case Kind::kRelay: v.kind = V::kRelay; break;
    case Kind::kGroup:
      v.kind = V::kGroup;
      for (const auto& m : r.members) v.members.push_back(split_address(m));
      break;
  }
  return v;
}

smtp::SessionConfig session_config(const ConnectorRuntime& rt) {
  const core::ReceiveConnector& c = rt.connector;
  smtp::SessionConfig s;
  s.fqdn = rt.fqdn;
  s.banner = c.banner;
  s.limits.max_message_size = c.max_message_size;
  s.limits.max_header_size = c.max_header_size;
  s.max_recipients = c.max_recipients_per_message;
  s.max_protocol_errors = c.max_protocol_errors;
  s.tls_available = rt.tls != nullptr;
  s.require_tls = c.require_tls;
  s.pipelining = c.pipelining_enabled;
  s.eight_bit_mime = c.eight_bit_mime_enabled;
  s.chunking = c.chunking_enabled;
  s.size = c.size_enabled;
  s.enhanced_status_codes = c.enhanced_status_codes_enabled;
  s.smtputf8 = c.smtp_utf8_enabled;
  s.dsn = c.delivery_status_notification_enabled;
  s.postmaster_domain = rt.postmaster_domain;
  s.is_accepted_domain = [domains = rt.accepted_domains](std::string_view d) {
    return domains->contains(core::normalize_name(d));
  };
  s.may_relay = rt.may_relay;
  // Asked for domains outside the accepted ones and for recipients of InternalRelay/ExternalRelay
  // domains that are not here: the send connectors alone decide (an accepted domain would
  // otherwise always route "locally").
  s.has_route = [outbound = rt.outbound](std::string_view d) {
    static const std::set<std::string> kNoLocalDomains;
    if (!outbound) return false;
    return core::route_recipient(d, kNoLocalDomains, outbound->send_connectors).kind ==
           core::Route::Kind::kConnector;
  };
  // Without a Directory (a runtime built by hand, as in tests) every recipient at an accepted
  // domain is accepted and AUTH answers 454 4.7.0.
  if (auto dir = rt.directory) {
    s.verify_recipient = [dir](const smtp::Address& a) { return verdict_of(*dir, a); };
  }
  // docs/mailbox-delivery.md: AUTH with BasicAuth (BasicAuthRequireTLS implies it, after STARTTLS).
  s.basic_auth = (c.auth_mechanism & (core::kAuthBasic | core::kAuthBasicRequireTls)) != 0;
  s.basic_auth_require_tls = (c.auth_mechanism & core::kAuthBasicRequireTls) != 0;
  s.exchange_users = has_group(c, "ExchangeUsers");
  s.anonymous_users = has_group(c, "AnonymousUsers") || has_group(c, "Partners");
  s.max_logon_failures = 3;                        // MaxLogonFailures (no connector property yet)
  s.tarpit_interval = std::chrono::seconds(5);     // TarpitInterval (no connector property yet)
  s.received_names_user = false;                   // Exchange hides the user (no property yet)
  return s;
}

// Bridges the spool's completion callback (the queue's flush thread) back onto the connection's
// executor as an awaitable.
template <typename Token>
auto async_enqueue(queue::Spool& spool, std::string id, queue::Envelope envelope,
                   std::string header, std::string content, Token&& token) {
  return asio::async_initiate<Token, void(bool, std::string)>(
      [&spool](auto handler, std::string id, queue::Envelope envelope, std::string header,
               std::string content) {
        auto ex = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = std::make_shared<asio::executor_work_guard<decltype(ex)>>(ex);
        spool.enqueue(std::move(id), std::move(envelope), std::move(header), std::move(content),
                      [ex, shared, work](Result<std::string> r) {
                        asio::post(ex, [shared, work, ok = r.ok(),
                                        text = r.ok() ? r.value() : r.error()]() mutable {
                          (*shared)(ok, std::move(text));
                        });
                      });
      },
      token, std::move(id), std::move(envelope), std::move(header), std::move(content));
}

// Bridges Server::verify_password (the verifier pool) to an awaitable on the connection.
template <typename Token>
auto async_verify_password(Server& server, std::string hash, std::string password, Token&& token) {
  return asio::async_initiate<Token, void(bool)>(
      [&server](auto handler, std::string hash, std::string password) {
        auto ex = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        server.verify_password(std::move(hash), std::move(password), ex,
                               [shared](bool ok) { (*shared)(ok); });
      },
      token, std::move(hash), std::move(password));
}

uint64_t next_connection_number() {
  static std::atomic<uint64_t> n = 0;  // made on thread 0 today; atomic, so that no thread rule rests on it
  return ++n;
}

}  // namespace

Connection::Connection(Server& server, asio::ip::tcp::socket socket,
                       std::shared_ptr<const ConnectorRuntime> connector, std::string counter_key)
    : server_(server),
      socket_(std::move(socket)),
      connector_(std::move(connector)),
      counter_key_(std::move(counter_key)),
      watchdog_timer_(socket_.get_executor()),
      tarpit_timer_(socket_.get_executor()),
      number_(next_connection_number()) {
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  peer_ip_ = ec ? "unknown" : remote.address().to_string();
  if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
    peer_ip_ = asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string();
  }
  smtp::SessionConfig config = session_config(*connector_);
  config.memory = server_.receive_budget();
  received_names_user_ = config.received_names_user;
  session_.emplace(std::move(config), peer_ip_);
  auto log = connector_->connector.protocol_logging_verbose ? logs::protocol_log(logs::ProtocolLogKind::kReceive)
                                                             : nullptr;
  if (log) {
    auto local = socket_.local_endpoint(ec);
    protocol_log_ = std::make_unique<logs::ProtocolSession>(
        std::move(log), connector_->connector.name,
        logs::format_endpoint(ec ? "unknown" : local.address().to_string(), ec ? 0 : local.port()),
        logs::format_endpoint(peer_ip_, remote.port()));
    session_->trace = [p = protocol_log_.get()](char dir, std::string_view line) { p->trace(dir, line); };
  }
  started_ = last_activity_ = std::chrono::steady_clock::now();
}

Connection::~Connection() = default;

void Connection::start() {
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self]() { return self->serve(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self]() { return self->watchdog(); }, asio::detached);
}

void Connection::interrupt() {
  std::error_code ec;
  socket_.cancel(ec);
  tarpit_timer_.cancel();
}

void Connection::shutdown() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->shutting_down_ = true;
    self->interrupt();
  });
}

asio::awaitable<void> Connection::watchdog() {
  const auto& c = connector_->connector;
  while (!finished_) {
    auto deadline = std::min(last_activity_ + c.connection_inactivity_timeout,
                             started_ + c.connection_timeout);
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out_ = true;
      interrupt();
      co_return;
    }
    watchdog_timer_.expires_at(deadline);
    co_await watchdog_timer_.async_wait(kUse);
  }
}

template <typename Op>
asio::awaitable<std::pair<std::error_code, int>> Connection::tls_io(Op op) {
  for (;;) {
    ERR_clear_error();
    int n = op(tls_.get());
    if (n > 0) co_return std::pair{std::error_code{}, n};
    int err = SSL_get_error(tls_.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      auto wait = err == SSL_ERROR_WANT_READ ? asio::ip::tcp::socket::wait_read
                                             : asio::ip::tcp::socket::wait_write;
      auto [ec] = co_await socket_.async_wait(wait, kUse);
      if (ec) co_return std::pair{ec, 0};
      continue;
    }
    std::error_code ec = err == SSL_ERROR_ZERO_RETURN
                             ? std::error_code(asio::error::eof)
                             : std::error_code(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    ERR_clear_error();
    co_return std::pair{ec ? ec : std::error_code(asio::error::connection_reset), 0};
  }
}

asio::awaitable<bool> Connection::flush_output() {
  while (session_->has_output()) {
    if (auto delay = session_->take_delay(); delay.count() > 0 && !shutting_down_ && !timed_out_) {
      // The tarpit: the reply to a failed AUTH or an unknown recipient waits on a timer (the
      // thread serves the other connections meanwhile). interrupt() cuts it short.
      tarpit_timer_.expires_after(delay);
      co_await tarpit_timer_.async_wait(kUse);
    }
    if (!co_await write_output(session_->take_output())) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Connection::write_output(std::string out) {
  std::error_code ec;
  if (tls_) {
    size_t done = 0;
    while (!ec && done < out.size()) {
      int n = 0;
      std::tie(ec, n) = co_await tls_io([&](SSL* ssl) {
        return SSL_write(ssl, out.data() + done, static_cast<int>(out.size() - done));
      });
      done += static_cast<size_t>(n);
    }
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(socket_, asio::buffer(out), kUse);
  }
  if (!ec) touch();
  co_return !ec;
}

asio::awaitable<bool> Connection::upgrade_to_tls() {
  tls_.reset(SSL_new(connector_->tls->native_handle()));
  std::error_code ec;
  socket_.non_blocking(true, ec);
  if (!tls_ || ec || SSL_set_fd(tls_.get(), socket_.native_handle()) != 1) {
    log_line("smtp[" + std::to_string(number_) + "] cannot start TLS: out of memory or bad socket");
    session_->tls_failed();
    co_return false;
  }
  tls::attach_sni(tls_.get(), connector_->sni.get(), connector_->contexts, connector_->fqdn);
  SSL_set_accept_state(tls_.get());
  std::tie(ec, std::ignore) = co_await tls_io([](SSL* ssl) { return SSL_do_handshake(ssl); });
  if (ec) {
    log_line("smtp[" + std::to_string(number_) + "] TLS handshake with " + peer_ip_ +
             " failed: " + ec.message());
    if (protocol_log_) protocol_log_->information(ec.message(), "TLS negotiation failed");
    metrics::count(metrics::kTlsHandshakeFailures, {{"direction", "receive"}});
    session_->tls_failed();
    co_return false;
  }
  touch();
  if (X509* peer = SSL_get0_peer_certificate(tls_.get())) {
    (void)peer;
    log_line("smtp[" + std::to_string(number_) + "] TLS client certificate from " + peer_ip_ + ": " +
             tls::describe_peer_certificate(tls_.get()));
  }
  if (protocol_log_) {
    protocol_log_->information(std::string(SSL_get_version(tls_.get())) + " " + SSL_get_cipher_name(tls_.get()),
                               "TLS negotiated");
  }
  metrics::count(metrics::kTlsHandshakes, {{"direction", "receive"}, {"version", SSL_get_version(tls_.get())}});
  session_->tls_started({SSL_get_version(tls_.get()), SSL_get_cipher_name(tls_.get())});
  co_return true;
}

namespace {

// Message tracking's RECEIVE (docs/tracking.md), built and timed before the content goes to the
// queue and recorded once the queue has it: timed then, it sorts before what the delivery side
// records, which may run before this coroutine resumes.
logs::TrackingEvent receive_event(const smtp::Message& m, const ConnectorRuntime& rt,
                                  const std::string& server_ip, const std::string& id, uint64_t bytes) {
  logs::TrackingEvent e;
  e.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  e.event_id = "RECEIVE";
  e.source = "SMTP";
  e.client_ip = m.peer_ip;
  e.client_hostname = m.helo;
  e.server_ip = server_ip;
  e.server_hostname = rt.fqdn;
  e.connector_id = rt.connector.name;
  e.internal_message_id = id;
  core::HeaderSummary summary = core::summarize_header(std::string_view(m.content).substr(0, core::kMaxHeaderScan));
  e.message_id = std::move(summary.message_id);
  e.message_subject = std::move(summary.subject);
  e.sender = m.mail_from.str();
  e.return_path = e.sender;
  for (const auto& r : m.recipients) e.recipients.push_back(r.str());
  e.total_bytes = bytes;
  e.message_info = m.tls ? "TLS: " + m.tls->version + " " + m.tls->cipher : "TLS: none";
  if (!m.authenticated_user.empty()) e.message_info += "; AUTH: " + m.authenticated_user;
  return e;
}

}  // namespace

asio::awaitable<void> Connection::queue_message(smtp::Message m) {
  queue::Spool& spool = server_.spool();
  std::string id = spool.new_id();
  std::string header = smtp::format_received(m, connector_->fqdn, id, std::time(nullptr),
                                            received_names_user_);
  std::error_code local_ec;
  auto local = socket_.local_endpoint(local_ec);
  logs::TrackingEvent received = receive_event(m, *connector_, local_ec ? "" : local.address().to_string(), id,
                                               header.size() + m.content.size());
  queue::Envelope envelope;
  envelope.mail_from = m.mail_from.str();
  for (const auto& r : m.recipients) envelope.recipients.push_back(r.str());
  envelope.dsn_ret = std::move(m.dsn_ret);
  envelope.dsn_envid = std::move(m.dsn_envid);
  for (auto& d : m.dsn) envelope.dsn.push_back({d.notify, std::move(d.orcpt)});
  // Counted against the receive budget until the queue has written the content (its Done).
  smtp::Reservation memory = std::move(m.memory);
  auto [ok, text] = co_await async_enqueue(spool, id, std::move(envelope), std::move(header),
                                           std::move(m.content), asio::use_awaitable);
  memory = smtp::Reservation();  // given back before the session reads the next message
  if (ok) {
    logs::track(std::move(received));  // durably queued: the message's life starts here
    metrics::count(metrics::kMessagesReceived, {{"connector", connector_->connector.name}});
    session_->message_queued(text);
  } else {
    log_line("queue: message from " + peer_ip_ + " refused: " + text);
    session_->message_failed();
  }
}

asio::awaitable<void> Connection::authenticate(smtp::AuthRequest request) {
  std::string who = "smtp[" + std::to_string(number_) + "] ";
  std::string user = printable(request.user);
  std::shared_ptr<const core::Directory> dir = connector_->directory;  // kept across the check
  if (!dir) {
    log_line(who + "AUTH for " + user + " from " + peer_ip_ + ": no directory, answered 454");
    session_->auth_unavailable();
    co_return;
  }
  if (server_.auth_blocked(peer_ip_)) {
    log_line(who + "AUTH for " + user + " from " + peer_ip_ +
             " refused: too many failures from this address");
    session_->auth_unavailable();
    co_return;
  }
  // The user name is a mailbox address, primary or alias, any case. Unknown, disabled or
  // without a password: the same dummy check and the same 535 (no user enumeration).
  const core::Mailbox* mailbox = dir->mailbox_by_address(request.user);
  if (mailbox && (!mailbox->enabled || mailbox->password_hash.empty())) mailbox = nullptr;
  std::string hash = mailbox ? mailbox->password_hash : std::string();
  bool ok = co_await async_verify_password(server_, std::move(hash), std::move(request.password),
                                           asio::use_awaitable);
  if (ok && mailbox) {
    smtp::AuthIdentity identity;
    identity.user = mailbox->primary_address;
    identity.send_as.push_back(mailbox->primary_address);
    for (const auto& a : mailbox->email_addresses) identity.send_as.push_back(a);
    log_line(who + "authenticated as " + identity.user);
    session_->auth_succeeded(std::move(identity));
    co_return;
  }
  log_line(who + "AUTH failed for " + user + " from " + peer_ip_);
  if (protocol_log_) protocol_log_->information(user, "authentication failed");
  server_.auth_failed({connector_->connector.name, peer_ip_, user});
  session_->auth_failed();
}

asio::awaitable<void> Connection::serve() {
  std::array<char, kReadBuffer> buffer;
  if (protocol_log_) protocol_log_->connected();
  session_->start();
  bool open = co_await flush_output();
  while (open && !session_->closing()) {
    if (shutting_down_) {
      session_->shutdown();
      break;
    }
    std::error_code ec;
    size_t n = 0;
    if (tls_) {
      int got = 0;
      std::tie(ec, got) = co_await tls_io([&](SSL* ssl) {
        return SSL_read(ssl, buffer.data(), static_cast<int>(buffer.size()));
      });
      n = static_cast<size_t>(got);
    } else {
      std::tie(ec, n) = co_await socket_.async_read_some(asio::buffer(buffer), kUse);
    }
    if (ec) {
      if (ec == asio::error::operation_aborted && (timed_out_ || shutting_down_)) {
        timed_out_ ? session_->timeout() : session_->shutdown();
        // The 421 gets a bounded time: a client that stopped reading must not keep the
        // connection (and its memory) forever.
        auto closer = std::make_shared<asio::steady_timer>(socket_.get_executor(), std::chrono::seconds(10));
        closer->async_wait([self = shared_from_this(), closer](std::error_code e) {
          if (!e && !self->finished_) self->interrupt();
        });
        break;
      }
      open = false;  // the client went away
      break;
    }
    touch();
    session_->receive(std::string_view(buffer.data(), n));
    // Answer the session's requests until it waits for more input.
    while (open) {
      if (auto m = session_->take_message()) {
        open = co_await flush_output();  // replies before the message (pipelined RCPTs)
        co_await queue_message(std::move(*m));
      } else if (auto a = session_->take_auth_request()) {
        open = co_await flush_output();
        co_await authenticate(std::move(*a));
      } else if (session_->wants_tls()) {
        open = co_await flush_output();
        if (open) open = co_await upgrade_to_tls();
      } else {
        break;
      }
    }
    if (open) open = co_await flush_output();
  }
  if (open) co_await flush_output();
  finished_ = true;
  watchdog_timer_.cancel();
  std::error_code ec;
  if (tls_ && open) {
    // Best effort close_notify, without waiting: a client that vanished must not hold us up.
    ERR_clear_error();
    SSL_shutdown(tls_.get());
    ERR_clear_error();
  }
  // Counted out before the close: a client that sees it may connect again at once, on any thread.
  server_.connection_closed(this);
  socket_.close(ec);
  // Remote: the client went away (or broke TLS) before we were done with it.
  if (protocol_log_) protocol_log_->disconnected(session_->closing() ? "Local" : "Remote");
}

}  // namespace starling::net
