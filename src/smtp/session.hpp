// The SMTP server session (RFC 5321) as a sans-IO state machine: bytes in, reply bytes out, and
// a few requests to its driver (start TLS, queue this message, close). It never blocks, never
// touches a socket, a file or a clock, so the same transcripts run in memory and on the wire.
// Extensions: PIPELINING (RFC 2920), SIZE (1870), 8BITMIME (6152), ENHANCEDSTATUSCODES (2034,
// 3463), STARTTLS (3207), SMTPUTF8 (6531), CHUNKING (3030), AUTH PLAIN and LOGIN (4954, 4616),
// DSN (3461: its MAIL and RCPT parameters are checked and handed over with the message).
//
// Driver contract: call start(), then receive() with whatever arrives. After each call write
// the output: take_delay() (wait that long first; the tarpit), take_output(), again until both
// are empty. Then: take_message() non-empty -> queue it and call message_queued() or
// message_failed(); take_auth_request() non-empty -> verify the credentials (slowly, elsewhere)
// and call auth_succeeded(), auth_failed() or auth_unavailable(); wants_tls() -> handshake and
// call tls_started(); closing() -> close after the output is written. Input is not processed
// while a message, a credential check or the TLS handshake is pending.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"

namespace starling::smtp {

// What a recipient at an accepted domain is here (the driver asks core::Directory).
struct RecipientVerdict {
  enum class Kind {
    kMailbox,  // delivered here: the address is kept as given
    kGroup,    // a distribution group: the envelope gets `members` instead
    kRelay,    // InternalRelay/ExternalRelay without such a recipient: on through a send connector
    kUnknown,  // Authoritative domain, no such recipient: 550 5.1.1
  };
  Kind kind = Kind::kMailbox;
  std::vector<Address> members;  // kGroup: expanded, nested groups too
};

// Credentials for the driver to check (the password hash check is slow: Argon2id).
struct AuthRequest {
  std::string mechanism;  // "PLAIN", "LOGIN"
  std::string user;       // authentication identity as the client gave it (an address)
  std::string password;   // never logged
};

// A successful check: who the client is and the addresses it may send as.
struct AuthIdentity {
  std::string user;                   // as it is logged and shown: the mailbox's primary address
  std::vector<std::string> send_as;   // addresses MAIL FROM may name (any case)
};

struct SessionConfig {
  std::string fqdn;                 // banner, EHLO reply, Received header
  std::string banner;               // full "220 ..." line without CRLF; empty: the default
  DataLimits limits;
  uint32_t max_recipients = 200;
  uint32_t max_protocol_errors = 5;
  uint32_t max_command_line = 512;  // octets including CRLF, RFC 5321 §4.5.3.1.4
  bool tls_available = false;       // a certificate is there: advertise STARTTLS
  bool require_tls = false;
  bool pipelining = true, eight_bit_mime = true, chunking = true, size = true,
       enhanced_status_codes = true, smtputf8 = true;
  // DSN (RFC 3461): advertised, and RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT accepted.
  bool dsn = true;
  // True when mail for this domain is accepted here (RFC 5321 domains, any case).
  std::function<bool(std::string_view domain)> is_accepted_domain;
  // Domain for the bare <postmaster> recipient.
  std::string postmaster_domain;
  // The client may relay (send to domains that are not accepted here): the connector's
  // AuthMechanism has ExternalAuthoritative with the ExchangeServers group, or (later) the client
  // authenticated on a connector granting ExchangeUsers.
  bool may_relay = false;
  // True when an enabled send connector routes this domain; a relayed recipient without a route
  // is refused at RCPT (550 5.4.4) rather than queued to wait for nothing.
  std::function<bool(std::string_view domain)> has_route;
  // What a recipient at an accepted domain is. Unset: every such recipient is accepted.
  std::function<RecipientVerdict(const Address&)> verify_recipient;

  // AUTH (RFC 4954). BasicAuth offers PLAIN and LOGIN; BasicAuthRequireTLS only after STARTTLS.
  bool basic_auth = false;
  bool basic_auth_require_tls = false;
  // PermissionGroups has ExchangeUsers: an authenticated client may relay and send only as its
  // own addresses. Without it, authenticating grants nothing beyond the anonymous rights.
  bool exchange_users = false;
  // PermissionGroups has AnonymousUsers or Partners: clients that did not authenticate may submit
  // mail for the accepted domains. Without it MAIL needs AUTH first (530 5.7.1).
  bool anonymous_users = true;
  uint32_t max_logon_failures = 3;  // MaxLogonFailures: then 421 4.7.0 and close
  // TarpitInterval: how long the driver waits before a reply to a failed AUTH or an unknown
  // recipient (a dictionary attack slows down; a client that made a typo barely notices).
  std::chrono::milliseconds tarpit_interval{5000};
  // The Received header names the authenticated user (Exchange hides it: off by default).
  bool received_names_user = false;
  // Memory for message content being received, shared by every session of the server: DATA
  // and BDAT are answered 452 4.3.1 when it cannot cover the message. Unset: unbounded.
  std::shared_ptr<MemoryBudget> memory;
};

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

// An accepted message, ready to be queued.
struct Message {
  std::string helo;
  std::string peer_ip;
  std::string protocol;  // SMTP, ESMTP, ESMTPS
  std::optional<TlsInfo> tls;
  Address mail_from;
  std::vector<Address> recipients;
  bool smtputf8 = false;
  std::string authenticated_user;  // empty: the client did not authenticate
  // RFC 3461: RET ("FULL", "HDRS" or "" when not given) and ENVID (xtext) of MAIL, and one
  // NOTIFY/ORCPT request per recipient, in `recipients` order; empty when no RCPT gave either.
  std::string dsn_ret;
  std::string dsn_envid;
  std::vector<DsnRequest> dsn;
  std::string content;   // CRLF line endings, as received
  // The share of the receive memory budget the content holds: given back when the message is
  // destroyed, i.e. once the queue has written it or it is dropped.
  Reservation memory;
};

class Session {
 public:
  enum class State {
    kGreeting,   // banner sent, waiting for EHLO/HELO
    kReady,      // greeted, no transaction
    kMail,       // MAIL accepted
    kRcpt,       // at least one recipient accepted
    kData,       // reading DATA content
    kBdat,       // reading a BDAT chunk
    kQueueing,   // message handed to the driver, waiting for its verdict
    kStartTls,   // 220 sent for STARTTLS, waiting for the handshake
    kAuthResponse,    // 334 sent, waiting for the client's SASL response line
    kAuthenticating,  // credentials handed to the driver, waiting for its verdict
    kClosed,
  };

  Session(SessionConfig config, std::string peer_ip);

  void start();
  void receive(std::string_view bytes);
  // The output up to the next tarpit point (all of it when there is none).
  std::string take_output();
  bool has_output() const { return !out_.empty(); }
  // How long to wait before writing what take_output() returns next; zero: write at once.
  std::chrono::milliseconds take_delay();

  std::optional<Message> take_message();
  void message_queued(std::string_view queue_id);
  void message_failed();  // 452 4.3.1, nothing kept

  std::optional<AuthRequest> take_auth_request();
  void auth_succeeded(AuthIdentity identity);  // 235 2.7.0
  void auth_failed();       // 535 5.7.8, tarpitted; the last allowed failure also closes (421)
  void auth_unavailable();  // 454 4.7.0: the check could not run (no directory, throttled)
  const std::optional<AuthIdentity>& identity() const { return identity_; }

  bool wants_tls() const { return state_ == State::kStartTls; }
  void tls_started(TlsInfo info);
  void tls_failed();  // handshake failed: the connection is unusable

  void timeout();   // 421 4.4.2 and close
  void shutdown();  // 421 4.3.2 and close
  bool closing() const { return state_ == State::kClosed; }
  State state() const { return state_; }
  bool in_tls() const { return tls_.has_value(); }

  // Protocol log hook: called with '<' for each client command line as it is processed, '>' for
  // every line the server writes (the banner, each EHLO line and 354 included), '=' for state
  // changes and '*' for information (authenticated as, input discarded). AUTH payloads appear as
  // "****". Unset, the session formats nothing for it.
  std::function<void(char direction, std::string_view line)> trace;

 private:
  void enter(State next);
  void process();
  bool process_command_line();
  void dispatch(std::string_view line);
  void reply(int code, std::string_view enhanced, std::string_view text);
  // A line without reply()'s form (line + rest, no copy), traced as '>'.
  void write_line(std::string_view line, std::string_view rest = {});
  void trace_client_line(std::string_view line);
  void tarpit();  // the next reply waits TarpitInterval
  void protocol_error(int code, std::string_view enhanced, std::string_view text);
  void close_with(std::string_view enhanced, std::string_view text);
  void reset_transaction();
  bool require_greeting();
  bool require_tls_first();

  void on_ehlo(std::string_view arg, bool extended);
  void on_mail(std::string_view arg);
  void on_rcpt(std::string_view arg);
  // RFC 3461 parameters of MAIL and RCPT; false when one was refused (the reply is written).
  using Parameters = std::vector<std::pair<std::string, std::string>>;
  bool check_rcpt_parameters(const Parameters& params, DsnRequest& dsn);
  void add_recipient(Address rcpt, DsnRequest dsn);
  void on_data(std::string_view arg);
  void on_bdat(std::string_view arg);
  void on_starttls(std::string_view arg);
  void on_auth(std::string_view arg);
  void on_auth_response(std::string_view line);
  void auth_step(std::string_view response);
  void fail_logon();
  bool may_relay() const;
  size_t line_limit(std::string_view line_start) const;
  void line_too_long(std::string_view line_start);
  void finish_data();
  void refuse_content(DataReader::Problem problem);
  void finish_bdat_chunk();
  void hand_over();

  SessionConfig config_;
  std::string peer_ip_;
  State state_ = State::kGreeting;
  std::string in_;     // input left unprocessed by an earlier receive()
  // The input being worked on: in_, or during receive() the driver's bytes when nothing was
  // left over (what remains of them is copied to in_ before receive() returns).
  std::string_view input_;
  size_t in_pos_ = 0;  // first unprocessed byte of input_
  std::string out_;
  bool discarding_line_ = false;  // dropping the rest of an over-long command line
  uint32_t errors_ = 0;

  std::string helo_;
  bool extended_ = false;
  std::optional<TlsInfo> tls_;
  std::optional<Address> mail_from_;
  std::vector<Address> recipients_;
  std::vector<DsnRequest> recipient_dsn_;  // recipients_[i]'s NOTIFY/ORCPT
  std::string dsn_ret_, dsn_envid_;        // RET/ENVID of MAIL
  bool smtputf8_ = false;
  bool used_bdat_ = false;
  struct Refusal {
    int code;
    std::string enhanced;
    std::string text;
  };
  std::optional<Refusal> bdat_error_;  // verdict on the chunk being read, sent once it is read
  State bdat_return_ = State::kReady;
  uint64_t bdat_remaining_ = 0;
  bool bdat_last_ = false;
  uint64_t declared_size_ = 0;  // SIZE= of MAIL; 0: not given
  std::optional<DataReader> data_;  // the content of DATA, or of the BDAT chunks so far
  std::optional<Message> pending_;
  uint32_t given_recipients_ = 0;  // accepted RCPTs, for MaxRecipientsPerMessage (not expansions)

  struct Delay {
    size_t offset;  // in out_
    std::chrono::milliseconds length;
  };
  std::vector<Delay> delays_;
  std::string auth_mechanism_;  // the exchange in progress
  std::optional<std::string> auth_user_;  // LOGIN: the user name, once given
  std::optional<AuthRequest> auth_request_;
  std::optional<AuthIdentity> identity_;
  uint32_t logon_failures_ = 0;
};

std::string_view state_name(Session::State s);

}  // namespace starling::smtp
