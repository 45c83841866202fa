// The outbound connection of a next hop: resolves its hosts (smart hosts, or MX by RFC 5321 §5.1
// with null MX by RFC 7505), connects to them in order, and drives one smtp::ClientSession per
// connection, carrying as many of the next hop's messages as SmtpMaxMessagesPerConnection
// allows and waiting ConnectionInactivityTimeout for more before QUIT. Every wait on the peer
// has a timeout (RFC 5321 §4.5.3.2, capped by the connector's ConnectionInactivityTimeout).
// TLS is OpenSSL on the non-blocking socket, as on the receiving side.
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <openssl/err.h>
#include <sys/socket.h>

#include "core/log.hpp"
#include "net/deadline.hpp"
#include "core/names.hpp"
#include "core/routing.hpp"
#include "events/catalog.hpp"
#include "logs/protocol_log.hpp"
#include "metrics/metrics.hpp"
#include "net/dispatcher.hpp"
#include "smtp/command.hpp"

namespace starling::net {
namespace {

constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);
using Status = queue::RecipientState::Status;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// Runs an SSL_* call until it completes, waiting on the socket as OpenSSL asks.
template <typename Op>
asio::awaitable<std::pair<std::error_code, int>> tls_io(asio::ip::tcp::socket& socket, SSL* ssl, Op op) {
  for (;;) {
    ERR_clear_error();
    int n = op(ssl);
    if (n > 0) co_return std::pair{std::error_code{}, n};
    int err = SSL_get_error(ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      auto [ec] = co_await socket.async_wait(err == SSL_ERROR_WANT_READ ? asio::ip::tcp::socket::wait_read
                                                                        : asio::ip::tcp::socket::wait_write,
                                             kUse);
      if (ec) co_return std::pair{ec, 0};
      continue;
    }
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    std::error_code ec = err == SSL_ERROR_ZERO_RETURN ? std::error_code(asio::error::eof)
                         : code ? std::error_code(static_cast<int>(code), asio::error::get_ssl_category())
                                : std::error_code(asio::error::connection_reset);
    co_return std::pair{ec, 0};
  }
}

bool needs_smtputf8(const queue::QueuedMessage& m, const std::vector<size_t>& rcpts) {
  if (smtp::has_non_ascii(m.envelope.mail_from)) return true;
  for (size_t i : rcpts) {
    if (smtp::has_non_ascii(m.envelope.recipients[i])) return true;
  }
  return false;
}

bool has_eight_bit(std::string_view data) {
  return std::any_of(data.begin(), data.end(), [](char c) { return static_cast<unsigned char>(c) > 127; });
}

// Whether an idle connection is still usable: the peer sent nothing and did not close. For TLS,
// records that carry no data (TLS 1.3 session tickets) are consumed and do not count.
bool peer_went_away(asio::ip::tcp::socket& socket, SSL* ssl) {
  if (ssl) {
    char byte;
    ERR_clear_error();
    int n = SSL_read(ssl, &byte, 1);
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
    ERR_clear_error();
    return !(n <= 0 && err == SSL_ERROR_WANT_READ);
  }
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// The send protocol log of one connection, when the connector is Verbose (null otherwise).
std::unique_ptr<logs::ProtocolSession> open_protocol_session(const core::SendConnector& c,
                                                             asio::ip::tcp::socket& socket,
                                                             smtp::ClientSession& session) {
  auto log = c.protocol_logging_verbose ? logs::protocol_log(logs::ProtocolLogKind::kSend) : nullptr;
  if (!log) return nullptr;
  std::error_code ec;
  auto local = socket.local_endpoint(ec);
  auto remote = socket.remote_endpoint(ec);
  auto p = std::make_unique<logs::ProtocolSession>(
      std::move(log), c.name, logs::format_endpoint(local.address().to_string(), local.port()),
      logs::format_endpoint(remote.address().to_string(), remote.port()));
  session.trace = [raw = p.get()](char dir, std::string_view line) { raw->trace(dir, line); };
  p->connected();
  return p;
}

bool is_ip_literal(const std::string& host) {
  std::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

asio::awaitable<void> Dispatcher::run_connection(std::string hop_key) {
  Hop& hop = hops_.at(hop_key);  // hops are never erased: the reference stays valid
  auto cfg = config_;
  const SendConnectorRuntime* sc = cfg ? cfg->connector(hop.connector) : nullptr;
  Attempt result;
  result.failure = smtp::make_reply(451, "4.4.0", "no host of next hop " + hop.next_hop + " could be tried");
  if (!sc) {
    result.failure = smtp::make_reply(451, "4.4.4", "send connector " + hop.connector + " is gone");
  } else if (sc->pinned_certificate_missing && !sc->connector.ignore_starttls) {
    // The pinned client certificate is not in the store: no session without it.
    result.failure = smtp::make_reply(451, "4.7.0", "the client certificate pinned by TlsCertificateName " +
                                                         sc->connector.tls_certificate_name + " is not in the store");
  } else {
    std::shared_ptr<const OutboundConfig> keep = cfg;  // sc lives as long as this snapshot
    std::vector<core::HostTarget> targets;
    bool permanent_dns = false;
    if (!sc->connector.dns_routing_enabled) {
      for (const auto& entry : sc->connector.smart_hosts) {
        auto h = core::parse_smart_host(entry);
        if (!h) continue;
        targets.push_back({h->host, h->port ? h->port : sc->connector.port, 0});
      }
    } else {
      MxAnswer mx = co_await async_lookup_mx(resolver_for(*sc), hop.next_hop);
      std::vector<core::MxEntry> entries;
      for (const auto& r : mx.records) entries.push_back({r.preference, r.host});
      if (mx.status == DnsStatus::kNxDomain) {
        result.permanent = true;
        result.failure = smtp::make_reply(550, "5.1.2", "DNS: the domain " + hop.next_hop + " does not exist");
      } else if (mx.status == DnsStatus::kTransient) {
        result.failure = smtp::make_reply(451, "4.4.3", "DNS: cannot look up the MX of " + hop.next_hop + ": " + mx.error);
      } else {
        if (mx.status == DnsStatus::kNoRecords) entries.clear();
        core::MxPlan plan = core::plan_mx(hop.next_hop, entries, sc->connector.port, cfg->local_names, rng_);
        if (plan.kind == core::MxPlan::Kind::kNullMx) {
          result.permanent = true;
          result.failure = smtp::make_reply(556, "5.1.10", "the domain " + hop.next_hop + " accepts no mail (null MX)");
        } else if (plan.kind == core::MxPlan::Kind::kLoop) {
          result.permanent = true;
          result.failure = smtp::make_reply(554, "5.4.6", "mail loop: the MX of " + hop.next_hop + " points back to this server");
        } else {
          targets = plan.hosts;
          permanent_dns = true;  // until some host resolves or fails for a transient reason
        }
      }
    }
    for (const auto& target : targets) {
      if (stopping_ || result.reached) break;
      AddressAnswer a = co_await async_lookup_addresses(resolver_for(*sc), target.host);
      if (a.status != DnsStatus::kOk) {
        if (a.status == DnsStatus::kTransient) permanent_dns = false;
        result.failure = smtp::make_reply(a.status == DnsStatus::kTransient ? 451 : 550,
                                          a.status == DnsStatus::kTransient ? "4.4.3" : "5.4.4",
                                          "DNS: no address for " + target.host +
                                              (a.error.empty() ? "" : " (" + a.error + ")"));
        continue;
      }
      permanent_dns = false;
      for (const auto& address : a.addresses) {
        if (stopping_) break;
        std::string remote = (is_ip_literal(target.host) ? "" : target.host) + "[" + address.to_string() + "]:" +
                             std::to_string(target.port);
        asio::ip::tcp::socket socket(io_);
        sockets_.insert(&socket);
        std::error_code ec;
        {
          Deadline deadline(socket, std::min<std::chrono::steady_clock::duration>(
                                        std::chrono::seconds(30), sc->connector.connection_inactivity_timeout));
          std::tie(ec) = co_await socket.async_connect({address, target.port}, kUse);
          if (ec && deadline.expired()) ec = asio::error::timed_out;
        }
        if (ec) {
          sockets_.erase(&socket);
          result.failure = smtp::make_reply(451, "4.4.1", "cannot connect to " + remote + ": " + ec.message());
          log_line("outbound: " + result.failure.text());
          continue;
        }
        Attempt attempt = co_await converse(hop, *sc, socket, target.host, remote);
        sockets_.erase(&socket);
        socket.close(ec);
        result = attempt;
        if (result.reached) break;
        log_line("outbound: " + remote + " unusable: " + result.failure.text());
      }
    }
    if (!result.reached && permanent_dns && !targets.empty()) result.permanent = true;
  }
  --hop.connections;
  connection_ended();
  if (!result.reached && !stopping_ && config_) {
    std::string name = hop.connector + " -> " + hop.next_hop;
    if (result.permanent) {
      std::deque<Batch> ready;
      ready.swap(hop.ready);
      for (const Batch& b : ready) fail_batch(b, result.failure, name, "");
    } else {
      hop_failed(hop, result.failure);
    }
  }
  if (!stopping_) schedule_hop(hop);
}

asio::awaitable<Dispatcher::Attempt> Dispatcher::converse(Hop& hop, const SendConnectorRuntime& sc,
                                                          asio::ip::tcp::socket& socket, const std::string& host,
                                                          const std::string& remote) {
  const core::SendConnector& c = sc.connector;
  smtp::ClientConfig cc;
  cc.helo_name = sc.fqdn;
  cc.tls = c.ignore_starttls ? smtp::ClientConfig::Tls::kIgnore
           : c.require_tls   ? smtp::ClientConfig::Tls::kRequired
                             : smtp::ClientConfig::Tls::kOpportunistic;
  // After a failed handshake with this host, the next attempt goes in plain text (unless TLS is
  // required: then there is no next attempt without it).
  cc.tls_available = sc.tls != nullptr && (c.require_tls || !hop.tls_failed.contains(remote));
  if ((c.smart_host_auth_mechanism == "BasicAuth" || c.smart_host_auth_mechanism == "BasicAuthRequireTLS") &&
      !c.dns_routing_enabled) {
    cc.auth = smtp::ClientCredentials{c.authentication_user, c.authentication_password};
    cc.auth_require_tls = c.smart_host_auth_mechanism == "BasicAuthRequireTLS";
  }
  smtp::ClientSession session(cc);
  auto protocol_log = open_protocol_session(c, socket, session);
  bool peer_ended = false;  // for the log's disconnect: Remote, else Local
  std::unique_ptr<SSL, SslFree> ssl;
  auto cap = [&](std::chrono::seconds limit) {
    return std::min<std::chrono::seconds>(limit, c.connection_inactivity_timeout);
  };
  std::optional<Batch> current;
  uint32_t sent = 0;
  Attempt attempt;
  std::array<char, 4096> buffer;
  std::string name = hop.connector + " -> " + hop.next_hop;

  auto apply = [&](const smtp::Outcome& o) {
    Batch b = std::move(*current);
    current.reset();
    const MessagePtr& m = b.message;
    queue::StateUpdate update{m->q.id};
    int64_t now = now_unix();
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    Batch failed{m, {}}, deferred{m, {}};
    std::optional<smtp::Reply> fail_reply, defer_reply;
    for (size_t j = 0; j < b.recipients.size(); ++j) {
      size_t i = b.recipients[j];
      const smtp::Reply& r = j < o.recipients.size() ? o.recipients[j]
                                                     : smtp::make_reply(451, "4.4.0", "no reply for this recipient");
      if (r.positive()) {
        m->busy[i] = false;
        set_state(m, i, Status::kDelivered, r.text(), 0, name, update);
        m->remote[i] = host;  // Remote-MTA of a relayed report
        note_delivered(m, i, session.extensions().dsn ? DeliveredAs::kPassedOn : DeliveredAs::kRelayed);
        log_line("outbound: " + m->q.id + " " + m->q.envelope.recipients[i] + " delivered via " + remote + ": " +
                 r.text());
      } else if (r.permanent()) {
        m->busy[i] = false;
        m->remote[i] = host;
        set_state(m, i, Status::kFailed, r.text(), 0, name, update);
        failed.recipients.push_back(i);
        log_line("outbound: " + m->q.id + " " + m->q.envelope.recipients[i] + " failed (next hop " + name + ", " +
                 remote + "): " + r.text());
        events_->log(events::kOutboundDeliveryFailed, m->q.id + ":" + m->q.envelope.recipients[i],
                     {{"QueueId", m->q.id}, {"Recipient", m->q.envelope.recipients[i]}, {"NextHop", name},
                      {"Reply", r.text()}});
      } else {
        deferred.recipients.push_back(i);
        if (!defer_reply) defer_reply = r;
      }
    }
    track_send(*m, b.recipients, o, host, remote,
               ssl ? std::string(SSL_get_version(ssl.get())) + " " + SSL_get_cipher_name(ssl.get()) : "plain",
               hop.connector);
    if (!failed.recipients.empty()) track(*m, "FAIL", "SMTP", failed.recipients);
    bool all_delivered = std::all_of(m->q.state.begin(), m->q.state.end(),
                                     [](const auto& s) { return s.status == Status::kDelivered; });
    // Delivered in full: the removal (flushed) is the record; otherwise the state is.
    if (!all_delivered || !deferred.recipients.empty()) record(std::move(update));
    if (!deferred.recipients.empty()) {
      int64_t next = now + core::message_retry_delay(config_->transport, jitter(rng_)).count();
      defer_batch(deferred, *defer_reply, name, next);
    }
    finish_if_done(m);
  };

  for (;;) {
    if (session.has_output()) {
      std::string out = session.take_output();
      std::error_code ec;
      Deadline deadline(socket, cap(std::chrono::seconds(180)));  // RFC 5321 §4.5.3.2.5: data block
      if (ssl) {
        size_t done = 0;
        while (!ec && done < out.size()) {
          int n = 0;
          std::tie(ec, n) = co_await tls_io(socket, ssl.get(), [&](SSL* s) {
            return SSL_write(s, out.data() + done, static_cast<int>(std::min<size_t>(out.size() - done, 1 << 20)));
          });
          done += static_cast<size_t>(n);
        }
      } else {
        std::tie(ec, std::ignore) = co_await asio::async_write(socket, asio::buffer(out), kUse);
      }
      if (ec) {
        peer_ended = !deadline.expired();
        deadline.expired() ? session.timed_out() : session.peer_closed();
      }
    }
    if (auto o = session.take_outcome(); o && current) apply(*o);
    if (session.closed()) break;
    if (session.wants_tls()) {
      std::string reason;
      ssl.reset(SSL_new(sc.tls.get()));
      std::error_code ec;
      socket.non_blocking(true, ec);
      if (!ssl || ec || SSL_set_fd(ssl.get(), socket.native_handle()) != 1) {
        reason = "cannot set up TLS here";
      } else {
        if (!is_ip_literal(host)) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
        SSL_set_connect_state(ssl.get());
        Deadline deadline(socket, cap(std::chrono::seconds(120)));
        std::tie(ec, std::ignore) = co_await tls_io(socket, ssl.get(), [](SSL* s) { return SSL_do_handshake(s); });
        if (ec) reason = "TLS handshake failed: " + (deadline.expired() ? std::string("timed out") : ec.message());
      }
      if (reason.empty() && c.require_tls) {
        // TlsAuthLevel applies to connectors that require TLS.
        std::string domain = !c.tls_domain.empty() ? c.tls_domain : hop.next_hop;
        if (auto bad = tls::check_peer(ssl.get(), tls::parse_peer_check(c.tls_auth_level), domain)) reason = *bad;
      }
      if (!reason.empty()) {
        if (protocol_log) protocol_log->information(reason, "TLS negotiation failed");
        if (!c.require_tls) hop.tls_failed.insert(remote);
        if (c.require_tls) {
          events_->log(events::kSmtpSendTlsRequiredFailed, c.name + ":" + remote,
                       {{"Connector", c.name}, {"RemoteHost", remote}, {"Reason", reason}});
        }
        ssl.reset();
        metrics::count(metrics::kTlsHandshakeFailures, {{"direction", "send"}});
        session.tls_failed(reason);
        continue;
      }
      log_line("outbound: TLS with " + remote + ": " + SSL_get_version(ssl.get()) + " " +
               SSL_get_cipher_name(ssl.get()) + "; peer certificate " + tls::describe_peer_certificate(ssl.get()) +
               (sc.client_thumbprint.empty() ? "" : "; client certificate " + sc.client_thumbprint));
      if (protocol_log) {
        protocol_log->information(std::string(SSL_get_version(ssl.get())) + " " + SSL_get_cipher_name(ssl.get()),
                                  "TLS negotiated");
      }
      metrics::count(metrics::kTlsHandshakes, {{"direction", "send"}, {"version", SSL_get_version(ssl.get())}});
      session.tls_started();
      continue;
    }
    if (session.ready()) {
      if (!attempt.reached) {
        attempt.reached = true;
        hop.failures = 0;
        hop.retry_at = 0;
      }
      // A configuration change ends the connection: the next message goes with the new settings
      // (a connector that now requires TLS must not reuse a plain connection).
      if (stopping_ || sent >= c.smtp_max_messages_per_connection || !config_ ||
          config_->connector(hop.connector) != &sc) {
        session.quit();
        continue;
      }
      if (hop.ready.empty()) {
        // Kept open for the next message to this hop, up to ConnectionInactivityTimeout. A wake-up
        // whose message another connection took already goes back to waiting.
        auto until = std::chrono::steady_clock::now() + c.connection_inactivity_timeout;
        while (hop.ready.empty() && !stopping_ && config_ && config_->connector(hop.connector) == &sc &&
               std::chrono::steady_clock::now() < until) {
          asio::steady_timer idle(io_);
          idle.expires_at(until);
          hop.idle.push_back(&idle);
          co_await idle.async_wait(kUse);
          hop.idle.remove(&idle);
        }
        if (hop.ready.empty() || stopping_ || !config_ || config_->connector(hop.connector) != &sc) {
          session.quit();
          continue;
        }
      }
      if (sent > 0 && peer_went_away(socket, ssl.get())) {
        // The peer closed the reused connection (or said 421) while it was idle: nothing is
        // lost, the next message takes a fresh connection.
        peer_ended = true;
        break;
      }
      current = std::move(hop.ready.front());
      hop.ready.pop_front();
      const queue::QueuedMessage& q = current->message->q;
      if (q.content_size > c.max_message_size) {
        Batch b = std::move(*current);
        current.reset();
        fail_batch(b, smtp::make_reply(552, "5.3.4", "message size " + std::to_string(q.content_size) +
                                                         " exceeds the send connector's MaxMessageSize " +
                                                         std::to_string(c.max_message_size)),
                   name, "");
        continue;
      }
      // Read from the queue for this attempt only; the session lets it go when it is sent.
      auto content = content_for_attempt(q);
      if (!content) {
        Batch b = std::move(*current);
        current.reset();
        log_line("outbound: " + b.message->q.id + ": " + content.error());
        std::uniform_real_distribution<double> jitter(0.0, 1.0);
        defer_batch(b, smtp::make_reply(451, "4.3.0", "cannot read the queued message"), name,
                    now_unix() + core::message_retry_delay(config_->transport, jitter(rng_)).count());
        continue;
      }
      smtp::OutboundMessage om;
      om.mail_from = q.envelope.mail_from;
      for (size_t i : current->recipients) om.recipients.push_back(q.envelope.recipients[i]);
      om.eight_bit = has_eight_bit(*content);
      om.data = std::move(*content);
      om.smtputf8 = needs_smtputf8(q, current->recipients);
      // RFC 3461 requests, for the session to pass on if the next hop offers DSN.
      om.dsn_ret = q.envelope.dsn_ret;
      om.dsn_envid = q.envelope.dsn_envid;
      if (!q.envelope.dsn.empty()) {
        for (size_t i : current->recipients) om.dsn.push_back({q.envelope.dsn[i].notify, q.envelope.dsn[i].orcpt});
      }
      ++sent;
      session.send(std::move(om));
      continue;
    }
    // Wait for the peer.
    std::error_code ec;
    size_t n = 0;
    bool expired = false;
    {
      Deadline deadline(socket, cap(session.timeout()));
      if (ssl) {
        int got = 0;
        std::tie(ec, got) = co_await tls_io(socket, ssl.get(), [&](SSL* s) {
          return SSL_read(s, buffer.data(), static_cast<int>(buffer.size()));
        });
        n = static_cast<size_t>(got);
      } else {
        std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(buffer), kUse);
      }
      expired = deadline.expired();
    }
    if (ec) {
      peer_ended = !expired;
      expired ? session.timed_out() : session.peer_closed();
      continue;
    }
    session.receive(std::string_view(buffer.data(), n));
  }
  if (current) {
    // The session ended without an outcome for the message it carried: try it again later.
    Batch b = std::move(*current);
    current.reset();
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    defer_batch(b, smtp::make_reply(451, "4.4.2", "connection to " + remote + " lost"), name,
                now_unix() + core::message_retry_delay(config_->transport, jitter(rng_)).count());
  }
  if (ssl) {
    ERR_clear_error();
    SSL_shutdown(ssl.get());
    ERR_clear_error();
  }
  if (protocol_log) protocol_log->disconnected(peer_ended ? "Remote" : "Local");
  if (!attempt.reached) {
    attempt.failure = session.failure().value_or(smtp::make_reply(451, "4.4.0", "connection to " + remote + " failed"));
    if (session.tls_was_required_and_missing()) {
      events_->log(events::kSmtpSendTlsRequiredFailed, c.name + ":" + remote,
                   {{"Connector", c.name}, {"RemoteHost", remote}, {"Reason", attempt.failure.text()}});
    }
  }
  co_return attempt;
}

}  // namespace starling::net
