// The SMTP client (RFC 5321) as a sans-IO state machine, the mirror of smtp::Session: reply bytes
// in, command bytes out, no socket, no clock. One ClientSession is one connection to one host; it
// carries one message (transaction) at a time and may carry several in turn (RSET between).
// Extensions used when the peer offers them: PIPELINING (RFC 2920), SIZE (1870), 8BITMIME (6152),
// SMTPUTF8 (6531), CHUNKING/BDAT (3030), ENHANCEDSTATUSCODES (2034), STARTTLS (3207), AUTH PLAIN
// and LOGIN (4954, 4616), DSN (3461: the requests are passed on). With ClientConfig::lmtp it speaks
// LMTP (RFC 2033) to a final delivery agent instead: LHLO (no HELO fallback), and after the end
// of data (or the last BDAT chunk) one reply per accepted recipient, in RCPT order (§4.2).
//
// Driver contract: after connecting, feed whatever arrives to receive(); after every call write
// take_output(). wants_tls() -> do the client handshake and call tls_started() or tls_failed().
// ready() -> the connection is idle and usable: send() a message or quit(). take_outcome() gives
// the per-recipient result of the last send(). closed() -> close the socket; failure() says why
// the connection could not be used (nullopt after a normal QUIT). The driver enforces timeout()
// on every wait for the peer and calls timed_out() or peer_closed() when it expires or on EOF;
// a transaction in progress then ends with a synthesized transient reply for each recipient.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/command.hpp"
#include "smtp/reply.hpp"

namespace starling::smtp {

struct ClientCredentials {
  std::string user;
  std::string password;
};

struct ClientConfig {
  std::string helo_name;  // the EHLO/HELO argument: the send connector's Fqdn or the server FQDN
  enum class Tls {
    kIgnore,         // IgnoreSTARTTLS: never start TLS
    kOpportunistic,  // STARTTLS when offered (and tls_available); plain otherwise
    kRequired,       // RequireTLS: no STARTTLS offered, or 454 to it -> failure 4.7.x, no mail sent
  };
  Tls tls = Tls::kOpportunistic;
  bool tls_available = true;  // the driver can do TLS now (false after a failed handshake)
  std::optional<ClientCredentials> auth;  // smart host AUTH (PLAIN, or LOGIN if that is all offered)
  bool auth_require_tls = false;          // BasicAuthRequireTLS: authenticate only inside TLS
  // LMTP (RFC 2033): LHLO instead of EHLO, never HELO; per-recipient replies after the data.
  // STARTTLS follows `tls` as for SMTP: an LMTP driver sets Tls::kIgnore unless TLS is wanted.
  bool lmtp = false;
};

struct Extensions {
  bool esmtp = false;  // EHLO (or LHLO) was accepted (false after the HELO fallback)
  bool pipelining = false, eight_bit_mime = false, smtputf8 = false, chunking = false,
       enhanced_status_codes = false, starttls = false;
  bool dsn = false;  // RFC 3461: the peer takes RET/ENVID/NOTIFY/ORCPT and reports on its own
  std::optional<uint64_t> size;  // SIZE limit; 0 or absent: no limit announced
  bool auth_plain = false, auth_login = false;
};

struct OutboundMessage {
  std::string mail_from;                // "" for the null reverse path
  std::vector<std::string> recipients;  // "local@domain"
  std::string data;                     // the message, CRLF lines, as queued (not dot-stuffed)
  bool smtputf8 = false;                // an address or header needs SMTPUTF8
  bool eight_bit = false;               // the content has octets above 127
  // RFC 3461 requests, sent only to a peer that offers DSN: RET ("" none) and ENVID (xtext) on
  // MAIL; NOTIFY/ORCPT per recipient (in `recipients` order, or empty: none) on RCPT.
  std::string dsn_ret, dsn_envid;
  std::vector<DsnRequest> dsn;
};

// What became of one send(): one reply per recipient, in the order of message.recipients. A
// recipient refused at RCPT keeps that reply; an accepted one gets the reply to the end of data.
// Replies made here (SIZE exceeded: 552 5.3.4; SMTPUTF8 not offered: 553 5.6.7; connection lost
// or timed out: 451 4.4.2) are indistinguishable in kind from the peer's: 2xx delivered, 4xx try
// again, 5xx failed. `message_level` is true when the peer refused the transaction as a whole
// (MAIL, DATA or the end of data), which is retried at MessageRetryInterval.
struct Outcome {
  std::vector<Reply> recipients;
  bool message_level = false;
};

class ClientSession {
 public:
  enum class State {
    kGreeting,  // connected, waiting for 220
    kEhlo, kHelo, kStartTls, kTlsHandshake, kAuth,
    kReady,     // idle between transactions
    kMail,      // MAIL/RSET/RCPT sent (possibly pipelined), collecting replies
    kData,      // DATA sent (alone, or the last of a pipelined group), waiting for 354
    kDataEnd,   // content sent (after 354, or as one BDAT LAST chunk), waiting for the final reply
    kQuit,
    kClosed,
  };

  explicit ClientSession(ClientConfig config);

  void receive(std::string_view bytes);
  std::string take_output();
  bool has_output() const { return !out_.empty(); }

  bool wants_tls() const { return state_ == State::kTlsHandshake; }
  void tls_started();
  // The handshake or the driver's certificate check (TlsAuthLevel) failed: the connection is
  // closed with failure 4.7.x naming `reason`. The driver decides whether to retry in plain text.
  void tls_failed(std::string reason);
  bool in_tls() const { return tls_; }

  bool ready() const { return state_ == State::kReady; }
  // REQUIRES: ready(). Starts a transaction for `message`.
  void send(OutboundMessage message);
  std::optional<Outcome> take_outcome();
  void quit();  // QUIT when ready; close at once otherwise

  bool closed() const { return state_ == State::kClosed; }
  // Why the connection could not be used (greeting refused, EHLO and HELO refused, TLS required
  // but not available, AUTH refused, protocol violation, timeout, lost connection): a reply whose
  // code is 4xx or 5xx as the peer gave it, or synthesized (421 4.4.2, 451 4.7.x, ...).
  const std::optional<Reply>& failure() const { return failure_; }
  bool tls_was_required_and_missing() const { return tls_missing_; }  // for event 2015

  // RFC 5321 §4.5.3.2: how long to wait for the peer in the current state (greeting 5 min, MAIL
  // 5 min, RCPT 5 min, DATA initiation 2 min, end of data 10 min; the driver applies 3 min per
  // data block write).
  std::chrono::seconds timeout() const;
  void timed_out();
  void peer_closed();

  const Extensions& extensions() const { return ext_; }
  State state() const { return state_; }
  // The greeting line of the peer (for logs and Remote-MTA), e.g. "mx.example.net ESMTP".
  const std::string& peer_greeting() const { return greeting_; }

  // Protocol log hook: ">" for lines sent, "<" for reply lines received, "=" for state changes.
  // AUTH secrets are never passed to it ("AUTH PLAIN ****"), nor the message content.
  std::function<void(char direction, std::string_view line)> trace;

 private:
  // One command of the transaction's envelope, sent at once (PIPELINING) or one by one.
  enum class Step { kRset, kMail, kRcpt, kData };
  struct Planned {
    Step step;
    size_t rcpt;  // index into message_->recipients for kRcpt
    std::string line;
  };
  enum class AuthStep { kPlain, kLoginStart, kLoginUser, kLoginPassword };

  void enter(State next);
  void on_reply(const Reply& r);
  // Closes with `why` as failure(); recipients still undecided get `for_recipients` (or `why`).
  // QUIT is sent only where the peer is still in step with us (a refusal, not a violation).
  void fail(Reply why, bool send_quit = false, std::optional<Reply> for_recipients = {});
  void protocol_error(std::string_view detail);
  void write_line(std::string_view line, std::string_view traced = {});
  std::string waiting_for() const;

  void send_ehlo();
  void after_hello();
  void start_auth();
  void on_greeting(const Reply& r);
  void on_ehlo(const Reply& r);
  void on_helo(const Reply& r);
  void on_starttls(const Reply& r);
  void on_auth(const Reply& r);
  void on_envelope_reply(const Reply& r);
  void after_envelope();
  void on_data_reply(const Reply& r);
  void on_data_end(const Reply& r);
  void after_content_sent();
  void send_planned();
  void refuse_locally(const Reply& r);
  void finish_transaction();
  bool any_accepted() const;

  ClientConfig config_;
  State state_ = State::kGreeting;
  ReplyParser parser_;
  std::string out_;
  Extensions ext_;
  bool tls_ = false;
  bool tls_missing_ = false;
  std::string greeting_;
  std::optional<Reply> failure_;
  std::optional<OutboundMessage> message_;
  std::optional<Outcome> outcome_;

  bool starttls_refused_ = false;  // opportunistic STARTTLS got 4xx/5xx: go on in plain text
  bool authenticated_ = false;
  AuthStep auth_step_ = AuthStep::kPlain;
  bool used_ = false;  // a MAIL was sent on this connection: RSET before the next one

  // The transaction in progress (message_ set). replies_[i] is recipient i's reply so far,
  // final once decided_[i]; an accepted recipient waits for the end-of-data reply.
  std::vector<Planned> plan_;
  size_t plan_sent_ = 0, plan_answered_ = 0;
  std::vector<std::optional<Reply>> replies_;
  std::vector<bool> accepted_, decided_;
  std::optional<Reply> mail_refusal_;
  bool message_level_ = false;
  bool ignore_final_ = false;  // "." sent after a 354 with no recipient: its reply means nothing
  std::string content_;        // the message with CRLF line ends, not dot-stuffed
  // LMTP: the accepted recipients still waiting for their reply to the end of data, in RCPT
  // order (RFC 2033 §4.2: one reply each, in that order).
  std::vector<size_t> lmtp_waiting_;
  size_t lmtp_next_ = 0;
};

std::string_view state_name(ClientSession::State s);

// Dot-stuffs `data` for DATA (RFC 5321 §4.5.2) and makes every line end CRLF: a bare CR or LF
// becomes CRLF, so no bare line ending reaches the next hop (the outbound half of SMTP
// smuggling). Appends the final CRLF if missing and the terminating ".\r\n".
std::string dot_stuff(std::string_view data);
// The same line-end normalization without dot-stuffing (for BDAT).
std::string normalize_line_ends(std::string_view data);

}  // namespace starling::smtp
