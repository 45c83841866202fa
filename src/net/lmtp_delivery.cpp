// Mailbox delivery over LMTP (RFC 2033): one connection of an LMTP delivery target (TCP
// "lmtp:HOST:PORT" or a Unix socket "lmtp:/path"), carrying the target's waiting transactions
// one after the other (one per message per target, RSET between) and QUIT when none is left.
// smtp::ClientSession in LMTP mode does the protocol; here the socket and the timeouts (RFC 5321
// §4.5.3.2 per wait, as on the way out). Per-recipient replies go back to the dispatcher like
// outbound ones: 2xx delivered, 4xx retried at MessageRetryInterval, 5xx reported. A server that
// cannot be reached or spoken to defers every waiting transaction: a delivery target is
// configured here, so its failure is ours to fix, never the sender's to hear about.
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "core/log.hpp"
#include "net/deadline.hpp"
#include "net/dispatcher.hpp"
#include "smtp/command.hpp"

namespace starling::net {
namespace {

constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);

struct Hooks {
  std::function<std::optional<smtp::OutboundMessage>()> next;  // the next transaction, if any
  std::function<void(const smtp::Outcome&)> done;               // the outcome of the last one
  std::function<bool()> stopping;
};

// Drives one LMTP session over a connected socket. Returns whether the server was ready for
// mail at some point, and otherwise why not.
template <typename Socket>
asio::awaitable<std::pair<bool, smtp::Reply>> lmtp_session(Socket& socket, const std::string& name, Hooks hooks) {
  smtp::ClientConfig cc;
  cc.helo_name = "localhost";
  cc.lmtp = true;
  cc.tls = smtp::ClientConfig::Tls::kIgnore;  // a local server: no STARTTLS (RFC 2033 §5)
  smtp::ClientSession session(cc);
  bool reached = false, carrying = false;
  std::array<char, 4096> buffer;
  for (;;) {
    if (session.has_output()) {
      std::string out = session.take_output();
      Deadline deadline(socket, std::chrono::seconds(180));  // RFC 5321 §4.5.3.2.5
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(out), kUse);
      if (ec) deadline.expired() ? session.timed_out() : session.peer_closed();
    }
    if (auto o = session.take_outcome(); o && carrying) {
      carrying = false;
      hooks.done(*o);
    }
    if (session.closed()) break;
    if (session.ready()) {
      reached = true;
      std::optional<smtp::OutboundMessage> m;
      if (!hooks.stopping()) m = hooks.next();
      if (!m) {
        session.quit();
        continue;
      }
      carrying = true;
      session.send(std::move(*m));
      continue;
    }
    std::error_code ec;
    size_t n = 0;
    bool expired = false;
    {
      Deadline deadline(socket, session.timeout());
      std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(buffer), kUse);
      expired = deadline.expired();
    }
    if (ec) {
      expired ? session.timed_out() : session.peer_closed();
      continue;
    }
    session.receive(std::string_view(buffer.data(), n));
  }
  if (carrying) {
    // Closed without an outcome (cannot happen: fail() gives one); try again later all the same.
    smtp::Outcome o;
    hooks.done(o);
  }
  smtp::Reply why = session.failure().value_or(smtp::make_reply(451, "4.4.0", "connection to " + name + " failed"));
  co_return std::pair{reached, why};
}

bool has_eight_bit(std::string_view data) {
  return std::any_of(data.begin(), data.end(), [](char c) { return static_cast<unsigned char>(c) > 127; });
}

}  // namespace

asio::awaitable<void> Dispatcher::run_lmtp(std::string key) {
  LmtpTarget& t = lmtp_targets_.at(key);  // never erased: the reference stays valid
  const std::string name = t.key;
  std::optional<LmtpJob> current;
  Hooks hooks;
  hooks.stopping = [this] { return stopping_; };
  hooks.next = [&]() -> std::optional<smtp::OutboundMessage> {
    while (!t.ready.empty()) {
      LmtpJob job = std::move(t.ready.front());
      t.ready.pop_front();
      // Read from the queue for this transaction only.
      auto content = content_for_attempt(job.message->q);
      if (!content) {
        log_line("delivery: " + job.message->q.id + ": " + content.error());
        smtp::Reply unreadable = smtp::make_reply(451, "4.3.0", "cannot read the queued message");
        local_done(job.message, job.copies, std::vector<smtp::Reply>(job.copies.size(), unreadable), name);
        continue;
      }
      current = std::move(job);
      const queue::QueuedMessage& q = current->message->q;
      smtp::OutboundMessage om;
      om.mail_from = q.envelope.mail_from;
      // The mailbox's primary address: the LMTP server need not know the aliases that led here.
      for (const LocalCopy& c : current->copies) om.recipients.push_back(c.mailbox);
      om.eight_bit = has_eight_bit(*content);
      om.data = std::move(*content);
      om.smtputf8 = smtp::has_non_ascii(om.mail_from);
      for (const auto& r : om.recipients) om.smtputf8 = om.smtputf8 || smtp::has_non_ascii(r);
      return om;
    }
    return std::nullopt;
  };
  hooks.done = [&](const smtp::Outcome& o) {
    LmtpJob job = std::move(*current);
    current.reset();
    std::vector<smtp::Reply> replies = o.recipients;
    replies.resize(job.copies.size(), smtp::make_reply(451, "4.4.2", "connection to " + name + " lost"));
    local_done(job.message, job.copies, replies, name);
  };

  uint64_t serial = ++lmtp_serial_;
  std::pair<bool, smtp::Reply> result{false, smtp::make_reply(451, "4.4.1", "cannot connect to " + name)};
  std::error_code ec;
  // Lets stop() cancel the socket this attempt is using.
  auto cancellable = [this, serial](auto& socket) {
    lmtp_cancel_[serial] = [&socket] {
      std::error_code ignored;
      socket.cancel(ignored);
    };
  };
  if (t.target.kind == core::DeliveryTarget::Kind::kLmtpUnix) {
    asio::local::stream_protocol::socket socket(io_);
    cancellable(socket);
    {
      Deadline deadline(socket, std::chrono::seconds(30));
      std::tie(ec) = co_await socket.async_connect(asio::local::stream_protocol::endpoint(t.target.host), kUse);
      if (ec && deadline.expired()) ec = asio::error::timed_out;
    }
    if (ec) {
      result.second = smtp::make_reply(451, "4.4.1", "cannot connect to " + name + ": " + ec.message());
    } else {
      result = co_await lmtp_session(socket, name, hooks);
    }
    lmtp_cancel_.erase(serial);
  } else {
    asio::ip::tcp::socket socket(io_);
    cancellable(socket);
    asio::ip::tcp::resolver resolver(io_);
    auto [rec, endpoints] = co_await resolver.async_resolve(t.target.host, std::to_string(t.target.port), kUse);
    if (rec) {
      result.second = smtp::make_reply(451, "4.4.3", "cannot resolve " + name + ": " + rec.message());
    } else {
      {
        Deadline deadline(socket, std::chrono::seconds(30));
        std::tie(ec, std::ignore) = co_await asio::async_connect(socket, endpoints, kUse);
        if (ec && deadline.expired()) ec = asio::error::timed_out;
      }
      if (ec) {
        result.second = smtp::make_reply(451, "4.4.1", "cannot connect to " + name + ": " + ec.message());
      } else {
        result = co_await lmtp_session(socket, name, hooks);
      }
    }
    lmtp_cancel_.erase(serial);
  }
  --t.connections;
  lmtp_ended();
  if (!result.first && !stopping_ && config_) {
    // The server could not be spoken to: everything waiting for it waits a MessageRetryInterval
    // (the tick routes it again then), unless another connection of it is still working.
    log_line("delivery: " + name + " unusable: " + result.second.text());
    if (t.connections == 0) {
      std::deque<LmtpJob> ready;
      ready.swap(t.ready);
      for (LmtpJob& job : ready) {
        local_done(job.message, job.copies, std::vector<smtp::Reply>(job.copies.size(), result.second), name);
      }
    }
    co_return;
  }
  if (!stopping_) schedule_lmtp(t);
}

}  // namespace starling::net
