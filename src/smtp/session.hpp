// The SMTP server session (RFC 5321) as a sans-IO state machine: bytes in, reply bytes out, and
// a few requests to its driver (start TLS, queue this message, close). It never blocks, never
// touches a socket, a file or a clock, so the same transcripts run in memory and on the wire.
// Extensions: PIPELINING (RFC 2920), SIZE (1870), 8BITMIME (6152), ENHANCEDSTATUSCODES (2034,
// 3463), STARTTLS (3207), SMTPUTF8 (6531), CHUNKING (3030).
//
// Driver contract: call start(), then receive() with whatever arrives. After each call send
// take_output(). Then: take_message() non-empty -> queue it and call message_queued() or
// message_failed(); wants_tls() -> handshake and call tls_started(); closing() -> close after
// the output is written. Input is not processed while a message or the TLS handshake is pending.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"

namespace starling::smtp {

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
  std::string content;   // CRLF line endings, as received
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
    kClosed,
  };

  Session(SessionConfig config, std::string peer_ip);

  void start();
  void receive(std::string_view bytes);
  std::string take_output();
  bool has_output() const { return !out_.empty(); }

  std::optional<Message> take_message();
  void message_queued(std::string_view queue_id);
  void message_failed();  // 452 4.3.1, nothing kept

  bool wants_tls() const { return state_ == State::kStartTls; }
  void tls_started(TlsInfo info);
  void tls_failed();  // handshake failed: the connection is unusable

  void timeout();   // 421 4.4.2 and close
  void shutdown();  // 421 4.3.2 and close
  bool closing() const { return state_ == State::kClosed; }
  State state() const { return state_; }
  bool in_tls() const { return tls_.has_value(); }

  // Protocol log hook: called with "<" for client lines and ">" for replies (Verbose logging).
  std::function<void(char direction, std::string_view line)> trace;

 private:
  void enter(State next);
  void process();
  bool process_command_line();
  void dispatch(std::string_view line);
  void reply(int code, std::string_view enhanced, std::string_view text);
  void protocol_error(int code, std::string_view enhanced, std::string_view text);
  void close_with(std::string_view enhanced, std::string_view text);
  void reset_transaction();
  bool require_greeting();
  bool require_tls_first();

  void on_ehlo(std::string_view arg, bool extended);
  void on_mail(std::string_view arg);
  void on_rcpt(std::string_view arg);
  void on_data(std::string_view arg);
  void on_bdat(std::string_view arg);
  void on_starttls(std::string_view arg);
  void finish_data();
  void finish_bdat_chunk();
  void hand_over();

  SessionConfig config_;
  std::string peer_ip_;
  State state_ = State::kGreeting;
  std::string in_;     // unprocessed input
  size_t in_pos_ = 0;  // first unprocessed byte of in_
  std::string out_;
  bool discarding_line_ = false;  // dropping the rest of an over-long command line
  uint32_t errors_ = 0;

  std::string helo_;
  bool extended_ = false;
  std::optional<TlsInfo> tls_;
  std::optional<Address> mail_from_;
  std::vector<Address> recipients_;
  bool smtputf8_ = false;
  bool used_bdat_ = false;
  struct Refusal {
    int code;
    std::string enhanced;
    std::string text;
  };
  std::optional<Refusal> bdat_error_;  // verdict on the chunk being read, sent once it is read
  bool bdat_too_big_ = false;          // 552 already sent for the chunk being read
  State bdat_return_ = State::kReady;
  uint64_t bdat_remaining_ = 0;
  bool bdat_last_ = false;
  std::optional<DataReader> data_;
  std::string bdat_content_;
  std::optional<Message> pending_;
};

std::string_view state_name(Session::State s);

}  // namespace starling::smtp
