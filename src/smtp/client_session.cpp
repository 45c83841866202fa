#include "smtp/client_session.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "smtp/base64.hpp"

namespace starling::smtp {
namespace {

using namespace std::chrono_literals;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t start = s.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    size_t end = s.find(' ');
    out.push_back(s.substr(0, end));
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
  }
  return out;
}

// The EHLO keywords (RFC 5321 §4.1.1.1): the first line is the greeting, each further line one
// keyword with its parameters, matched without regard to case.
Extensions parse_extensions(const Reply& r) {
  Extensions e;
  e.esmtp = true;
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string line = upper(r.lines[i]);
    std::vector<std::string_view> w = words(line);
    if (w.empty()) continue;
    std::string_view keyword = w[0];
    std::vector<std::string_view> params(w.begin() + 1, w.end());
    if (keyword.starts_with("AUTH=")) {
      // The pre-RFC 4954 form some servers still send, "AUTH=LOGIN PLAIN".
      params.insert(params.begin(), keyword.substr(5));
      keyword = "AUTH";
    }
    if (keyword == "PIPELINING") e.pipelining = true;
    else if (keyword == "8BITMIME") e.eight_bit_mime = true;
    else if (keyword == "SMTPUTF8") e.smtputf8 = true;
    else if (keyword == "CHUNKING") e.chunking = true;
    else if (keyword == "ENHANCEDSTATUSCODES") e.enhanced_status_codes = true;
    else if (keyword == "STARTTLS") e.starttls = true;
    else if (keyword == "DSN") e.dsn = true;
    else if (keyword == "SIZE") {
      // RFC 1870 §4: "SIZE" alone or "SIZE 0" announces the parameter without a fixed limit.
      uint64_t limit = 0;
      if (!params.empty()) {
        std::string_view p = params[0];
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), limit);
        if (ec != std::errc{} || end != p.data() + p.size()) limit = 0;
      }
      e.size = limit;
    } else if (keyword == "AUTH") {
      for (std::string_view m : params) {
        if (m == "PLAIN") e.auth_plain = true;
        if (m == "LOGIN") e.auth_login = true;
      }
    }
  }
  return e;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// RFC 3461 §5: the requests go on to a peer that offers DSN as they came. Each value is checked
// again with the receiving side's grammar, so nothing can add a word or a line to the command.
std::string mail_dsn_parameters(const OutboundMessage& m) {
  std::string out;
  if (m.dsn_ret == "FULL" || m.dsn_ret == "HDRS") out += " RET=" + m.dsn_ret;
  if (!m.dsn_envid.empty() && envid_problem(m.dsn_envid).empty()) out += " ENVID=" + m.dsn_envid;
  return out;
}

std::string rcpt_dsn_parameters(const DsnRequest& d) {
  std::string out;
  if (valid_notify(d.notify)) out += " NOTIFY=" + format_notify(d.notify);
  if (!d.orcpt.empty() && orcpt_problem(d.orcpt).empty()) out += " ORCPT=" + d.orcpt;
  return out;
}

// Both content transformations in one pass; `stuff` adds the DATA transparency dot.
std::string normalize(std::string_view data, bool stuff) {
  std::string out;
  out.reserve(data.size() + data.size() / 32 + 5);
  bool line_start = true;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (c == '\r' || c == '\n') {
      // CRLF stays, a bare CR or bare LF becomes CRLF: never a line end the next hop might
      // read differently from us (SMTP smuggling, outbound half).
      if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && stuff && c == '.') out += '.';  // RFC 5321 §4.5.2
    out += c;
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  return out;
}

}  // namespace

std::string dot_stuff(std::string_view data) { return normalize(data, true) + ".\r\n"; }

std::string normalize_line_ends(std::string_view data) { return normalize(data, false); }

std::string_view state_name(ClientSession::State s) {
  using S = ClientSession::State;
  switch (s) {
    case S::kGreeting: return "Greeting";
    case S::kEhlo: return "Ehlo";
    case S::kHelo: return "Helo";
    case S::kStartTls: return "StartTls";
    case S::kTlsHandshake: return "TlsHandshake";
    case S::kAuth: return "Auth";
    case S::kReady: return "Ready";
    case S::kMail: return "Mail";
    case S::kData: return "Data";
    case S::kDataEnd: return "DataEnd";
    case S::kQuit: return "Quit";
    case S::kClosed: return "Closed";
  }
  return "?";
}

ClientSession::ClientSession(ClientConfig config) : config_(std::move(config)) {}

// Every state change passes here, so a trace shows the whole life of a connection.
void ClientSession::enter(State next) {
  if (trace && next != state_) {
    trace('=', std::string(state_name(state_)) + " -> " + std::string(state_name(next)));
  }
  state_ = next;
}

void ClientSession::write_line(std::string_view line, std::string_view traced) {
  out_ += line;
  out_ += "\r\n";
  if (trace) trace('>', traced.empty() ? line : traced);
}

std::string ClientSession::take_output() { return std::exchange(out_, {}); }

void ClientSession::receive(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kTlsHandshake) {
    // Sent after the 220 to STARTTLS but before the handshake, in clear text: whatever it is,
    // it must never be taken for a reply inside TLS (STARTTLS response injection, as in Exim's
    // client, CVE-2021-38371; RFC 3207 §4.2 discards what was learned before TLS).
    if (trace) trace('<', "[" + std::to_string(bytes.size()) + " octets before TLS discarded]");
    return;
  }
  parser_.feed(bytes);
  while (state_ != State::kClosed && state_ != State::kTlsHandshake) {
    std::optional<Reply> r = parser_.next();
    if (!r) break;
    if (trace) {
      std::string text = r->format();
      for (std::string_view rest = text; !rest.empty();) {
        size_t end = rest.find("\r\n");
        trace('<', rest.substr(0, end));
        rest.remove_prefix(end + 2);
      }
    }
    on_reply(*r);
  }
  if (state_ == State::kTlsHandshake) {
    parser_ = ReplyParser{};  // the same purge, for what came in the same read as the 220
  } else if (state_ == State::kQuit && parser_.failed()) {
    enter(State::kClosed);  // whatever the answer to QUIT, we are done
  } else if (state_ != State::kClosed && parser_.failed()) {
    protocol_error("malformed reply (" + parser_.error() + ")");
  }
}

void ClientSession::on_reply(const Reply& r) {
  switch (state_) {
    case State::kGreeting: return on_greeting(r);
    case State::kEhlo: return on_ehlo(r);
    case State::kHelo: return on_helo(r);
    case State::kStartTls: return on_starttls(r);
    case State::kAuth: return on_auth(r);
    case State::kMail: return on_envelope_reply(r);
    case State::kData:
      // With PIPELINING the DATA reply is the last planned one; otherwise DATA went alone.
      return plan_answered_ < plan_.size() ? on_envelope_reply(r) : on_data_reply(r);
    case State::kDataEnd: return on_data_end(r);
    case State::kQuit: return enter(State::kClosed);  // 221 or not, the connection is over
    case State::kReady:
      // RFC 5321 §3.8: a server shutting down may say 421 at any time, unasked.
      if (r.code == 421) return fail(r);
      return protocol_error("the peer sent an unsolicited " + r.text());
    case State::kTlsHandshake:
    case State::kClosed: return;
  }
}

// What the client is waiting for, for the texts of synthesized replies.
std::string ClientSession::waiting_for() const {
  switch (state_) {
    case State::kGreeting: return "waiting for the greeting";
    case State::kEhlo: return config_.lmtp ? "waiting for the reply to LHLO" : "waiting for the reply to EHLO";
    case State::kHelo: return "waiting for the reply to HELO";
    case State::kStartTls: return "waiting for the reply to STARTTLS";
    case State::kTlsHandshake: return "during the TLS handshake";
    case State::kAuth: return "waiting for the reply to AUTH";
    case State::kReady: return "while idle";
    case State::kMail:
    case State::kData:
      if (plan_answered_ < plan_.size()) {
        switch (plan_[plan_answered_].step) {
          case Step::kRset: return "waiting for the reply to RSET";
          case Step::kMail: return "waiting for the reply to MAIL FROM";
          case Step::kRcpt: return "waiting for the reply to RCPT TO";
          case Step::kData: return "waiting for the reply to DATA";
        }
      }
      return "waiting for the reply to DATA";
    case State::kDataEnd: return "waiting for the reply to the end of data";
    case State::kQuit: return "waiting for the reply to QUIT";
    case State::kClosed: return "after the connection closed";
  }
  return "?";
}

void ClientSession::fail(Reply why, bool send_quit, std::optional<Reply> for_recipients) {
  if (state_ == State::kClosed) return;
  if (message_) {
    const Reply& r = for_recipients ? *for_recipients : why;
    for (size_t i = 0; i < replies_.size(); ++i) {
      if (!decided_[i]) {
        replies_[i] = r;
        decided_[i] = true;
      }
    }
    finish_transaction();
  }
  if (!failure_) failure_ = std::move(why);
  if (send_quit) write_line("QUIT");
  enter(State::kClosed);
}

// The peer broke the protocol: we are out of step with it, so nothing more is sent, not even
// QUIT (it might be read as part of something else). Transient: another try may meet a saner
// peer, and no mail is lost by waiting.
void ClientSession::protocol_error(std::string_view detail) {
  fail(make_reply(451, "4.5.0", "Protocol error " + waiting_for() + ": " + std::string(detail)));
}

// ---- Connection setup: greeting, EHLO/HELO, STARTTLS, AUTH ----------------------------------

void ClientSession::on_greeting(const Reply& r) {
  if (r.code == 220) {
    greeting_ = r.lines.empty() ? std::string() : r.lines.front();
    return send_ehlo();
  }
  // RFC 5321 §3.1: after a 554 greeting the server waits for QUIT; 421 as well gets one.
  if (r.code >= 400) return fail(r, /*send_quit=*/true);
  protocol_error("the peer sent " + r.text());
}

void ClientSession::send_ehlo() {
  write_line((config_.lmtp ? "LHLO " : "EHLO ") + config_.helo_name);
  enter(State::kEhlo);
}

void ClientSession::on_ehlo(const Reply& r) {
  if (r.code == 250) {
    ext_ = parse_extensions(r);
    return after_hello();
  }
  if (r.code == 421) return fail(r);
  if (r.code >= 500 && config_.lmtp) {
    // RFC 2033 §4.1: LMTP has no HELO; a server refusing LHLO cannot be spoken to.
    return fail(r, true);
  }
  if (r.code >= 500) {
    // RFC 5321 §3.2: a server that does not know EHLO gets HELO, and no extension is used.
    write_line("HELO " + config_.helo_name);
    return enter(State::kHelo);
  }
  if (r.code >= 400) return fail(r, true);
  protocol_error("the peer sent " + r.text());
}

void ClientSession::on_helo(const Reply& r) {
  if (r.code == 250) {
    ext_ = Extensions{};
    return after_hello();
  }
  if (r.code == 421) return fail(r);
  if (r.code >= 400) return fail(r, true);
  protocol_error("the peer sent " + r.text());
}

// After each accepted EHLO/HELO: STARTTLS if wanted and possible, then AUTH, then ready.
void ClientSession::after_hello() {
  using Tls = ClientConfig::Tls;
  if (!tls_ && config_.tls != Tls::kIgnore && !starttls_refused_) {
    if (config_.tls_available && ext_.starttls) {
      write_line("STARTTLS");
      return enter(State::kStartTls);
    }
    if (config_.tls == Tls::kRequired) {
      tls_missing_ = true;
      return fail(make_reply(451, "4.7.0",
                             config_.tls_available
                                 ? "TLS is required for this connection, but the peer does not "
                                   "offer STARTTLS"
                                 : "TLS is required for this connection, but TLS is not available "
                                   "here"),
                  true);
    }
  }
  if (config_.auth && !authenticated_) return start_auth();
  enter(State::kReady);
}

void ClientSession::on_starttls(const Reply& r) {
  if (r.code == 220) return enter(State::kTlsHandshake);  // receive() purges the input
  if (r.code == 421) return fail(r);
  if (r.code >= 400) {
    if (config_.tls == ClientConfig::Tls::kRequired) {
      tls_missing_ = true;
      return fail(make_reply(451, "4.7.0",
                             "TLS is required for this connection, but the peer refused "
                             "STARTTLS: " + r.text()),
                  true);
    }
    // Opportunistic TLS: the session is unchanged (RFC 3207 §4), carry on in clear text.
    starttls_refused_ = true;
    return after_hello();
  }
  protocol_error("the peer sent " + r.text());
}

void ClientSession::tls_started() {
  if (state_ != State::kTlsHandshake) {
    std::fprintf(stderr, "ClientSession::tls_started() in state %s\n",
                 std::string(state_name(state_)).c_str());
    std::abort();
  }
  // RFC 3207 §4.2: forget what the peer said in clear text and ask again.
  tls_ = true;
  ext_ = Extensions{};
  send_ehlo();
}

void ClientSession::tls_failed(std::string reason) {
  // No QUIT: the TLS layer is in an unknown state, the socket is closed as it is.
  fail(make_reply(451, "4.7.5", "TLS negotiation with the peer failed: " + reason));
}

void ClientSession::start_auth() {
  const ClientCredentials& c = *config_.auth;
  if (config_.auth_require_tls && !tls_) {
    // BasicAuthRequireTLS: the password is never sent in clear text.
    return fail(make_reply(451, "4.7.0",
                           "Authentication requires TLS, but the connection is not encrypted"),
                true);
  }
  if (ext_.auth_plain) {
    // RFC 4616 §2: authzid (empty) NUL authcid NUL passwd, as an initial response (RFC 4954).
    std::string response;
    response += '\0';
    response += c.user;
    response += '\0';
    response += c.password;
    write_line("AUTH PLAIN " + base64_encode(response), "AUTH PLAIN ****");
    auth_step_ = AuthStep::kPlain;
  } else if (ext_.auth_login) {
    write_line("AUTH LOGIN");
    auth_step_ = AuthStep::kLoginStart;
  } else {
    return fail(make_reply(451, "4.7.0",
                           "Authentication is configured, but the peer does not offer AUTH PLAIN "
                           "or LOGIN"),
                true);
  }
  enter(State::kAuth);
}

void ClientSession::on_auth(const Reply& r) {
  if (r.code == 421) return fail(r);
  const ClientCredentials& c = *config_.auth;
  bool done = false;
  switch (auth_step_) {
    case AuthStep::kPlain:
    case AuthStep::kLoginPassword:
      done = r.code == 235;
      break;
    case AuthStep::kLoginStart:
      if (r.code != 334) break;
      write_line(base64_encode(c.user), "****");
      auth_step_ = AuthStep::kLoginUser;
      return;
    case AuthStep::kLoginUser:
      if (r.code != 334) break;
      write_line(base64_encode(c.password), "****");
      auth_step_ = AuthStep::kLoginPassword;
      return;
  }
  if (!done) {
    // Transient even after a 535: a wrong password is fixed by the administrator, and the mail
    // waits in the queue meanwhile rather than bouncing.
    return fail(make_reply(451, "4.7.0", "Authentication to the peer failed: " + r.text()), true);
  }
  authenticated_ = true;
  enter(State::kReady);
}

// ---- Transactions ----------------------------------------------------------------------------

void ClientSession::send(OutboundMessage message) {
  if (state_ != State::kReady) {
    std::fprintf(stderr, "ClientSession::send() in state %s\n",
                 std::string(state_name(state_)).c_str());
    std::abort();
  }
  size_t n = message.recipients.size();
  replies_.assign(n, std::nullopt);
  accepted_.assign(n, false);
  decided_.assign(n, false);
  mail_refusal_.reset();
  message_level_ = false;
  ignore_final_ = false;
  plan_.clear();
  plan_sent_ = plan_answered_ = 0;
  content_ = normalize_line_ends(message.data);
  outcome_.reset();

  // Local checks first: what the next hop would refuse anyway is refused here, without a
  // command sent (RFC 1870 §6, RFC 6531 §3.2).
  if (ext_.size && *ext_.size > 0 && content_.size() > *ext_.size) {
    return refuse_locally(make_reply(552, "5.3.4",
                                     "Message too big for the next hop (SIZE limit " +
                                         std::to_string(*ext_.size) + ")"));
  }
  if (message.smtputf8 && !ext_.smtputf8) {
    return refuse_locally(
        make_reply(553, "5.6.7", "Message needs SMTPUTF8, which the next hop does not offer"));
  }
  bool bad_address = has_line_break(message.mail_from);
  for (const std::string& r : message.recipients) bad_address = bad_address || has_line_break(r);
  if (bad_address) {
    // Never reached from the queue, whose addresses were parsed; stops command injection anyway.
    return refuse_locally(make_reply(553, "5.1.0", "Address contains a line break"));
  }
  if (n == 0) {
    outcome_ = Outcome{};
    return;
  }

  if (used_) plan_.push_back({Step::kRset, 0, "RSET"});
  std::string mail = "MAIL FROM:<" + message.mail_from + ">";
  if (ext_.size) mail += " SIZE=" + std::to_string(content_.size());
  // Without 8BITMIME, 8-bit content goes as it is: there is no MIME downgrade here, which
  // RFC 6152 §3 would have the client do (or return the message); most servers take it.
  if (message.eight_bit && ext_.eight_bit_mime) mail += " BODY=8BITMIME";
  if (message.smtputf8) mail += " SMTPUTF8";
  if (ext_.dsn) mail += mail_dsn_parameters(message);
  plan_.push_back({Step::kMail, 0, std::move(mail)});
  for (size_t i = 0; i < n; ++i) {
    std::string rcpt = "RCPT TO:<" + message.recipients[i] + ">";
    if (ext_.dsn && i < message.dsn.size()) rcpt += rcpt_dsn_parameters(message.dsn[i]);
    plan_.push_back({Step::kRcpt, i, std::move(rcpt)});
  }
  // RFC 2920 §3.1: DATA may close the pipelined group; BDAT content waits for the RCPT replies
  // so that no content goes to a server that has refused every recipient.
  if (ext_.pipelining && !ext_.chunking) plan_.push_back({Step::kData, 0, "DATA"});
  message.data = {};  // content_ is the copy that goes out; a big message is not held twice
  message_ = std::move(message);
  used_ = true;
  enter(State::kMail);
  send_planned();
}

void ClientSession::refuse_locally(const Reply& r) {
  Outcome o;
  o.recipients.assign(replies_.size(), r);
  outcome_ = std::move(o);
}

// With PIPELINING everything planned goes in one write; without, one command per reply.
void ClientSession::send_planned() {
  while (plan_sent_ < plan_.size() && (ext_.pipelining || plan_sent_ == plan_answered_)) {
    write_line(plan_[plan_sent_++].line);
  }
}

bool ClientSession::any_accepted() const {
  for (bool a : accepted_) {
    if (a) return true;
  }
  return false;
}

void ClientSession::on_envelope_reply(const Reply& r) {
  if (r.code == 421) return fail(r);
  const Planned& p = plan_[plan_answered_];
  switch (p.step) {
    case Step::kRset:
      if (r.code != 250) return protocol_error("the peer sent " + r.text());
      break;
    case Step::kMail:
      if (r.code >= 400) mail_refusal_ = r;
      else if (r.code / 100 != 2) return protocol_error("the peer sent " + r.text());
      break;
    case Step::kRcpt:
      if (r.code / 100 == 2) {
        accepted_[p.rcpt] = true;
      } else if (r.code >= 400) {
        decided_[p.rcpt] = true;
      } else {
        return protocol_error("the peer sent " + r.text());
      }
      replies_[p.rcpt] = r;
      break;
    case Step::kData:
      ++plan_answered_;
      return on_data_reply(r);
  }
  ++plan_answered_;
  if (plan_answered_ < plan_.size()) {
    if (!ext_.pipelining && mail_refusal_) {
      // One by one, nothing more is sent after a refused MAIL.
      finish_transaction();
      return enter(State::kReady);
    }
    send_planned();
    if (plan_[plan_answered_].step == Step::kData) enter(State::kData);
    return;
  }
  after_envelope();
}

// Every RCPT answered, DATA not pipelined: send DATA or BDAT, or end here.
void ClientSession::after_envelope() {
  if (mail_refusal_ || !any_accepted()) {
    finish_transaction();
    return enter(State::kReady);
  }
  if (ext_.chunking) {
    // RFC 3030 §2: the octets as they are, no dot-stuffing, in one LAST chunk.
    write_line("BDAT " + std::to_string(content_.size()) + " LAST");
    out_ += content_;
    if (trace) trace('>', "[" + std::to_string(content_.size()) + " octets of content]");
    content_ = {};
    after_content_sent();
    return enter(State::kDataEnd);
  }
  write_line("DATA");
  enter(State::kData);
}

void ClientSession::on_data_reply(const Reply& r) {
  if (r.code == 421) return fail(r);
  bool go = !mail_refusal_ && any_accepted();
  if (r.code == 354) {
    if (go) {
      std::string stuffed = dot_stuff(content_);
      out_ += stuffed;
      if (trace) trace('>', "[" + std::to_string(stuffed.size()) + " octets of content]");
      content_ = {};
      after_content_sent();
    } else if (config_.lmtp) {
      // RFC 2033 §4.2: with no successful RCPT, DATA MUST fail with 503; after "." there would
      // be no reply to wait for, so a 354 here leaves us out of step with the peer.
      return protocol_error("the peer sent " + r.text() + " to DATA with no recipient accepted");
    } else {
      // RFC 2920 §3.1: the pipelined DATA got 354 although no recipient was accepted; end the
      // empty data at once and ignore the reply to it.
      write_line(".");
      ignore_final_ = true;
    }
    return enter(State::kDataEnd);
  }
  if (r.code >= 400) {
    if (go) {
      for (size_t i = 0; i < accepted_.size(); ++i) {
        if (accepted_[i]) replies_[i] = r, decided_[i] = true;
      }
      message_level_ = true;
    }
    // Otherwise this is the expected 503/554 to a pipelined DATA without recipients.
    finish_transaction();
    return enter(State::kReady);
  }
  protocol_error("the peer sent " + r.text());
}

// LMTP: the replies to come after the content, one per accepted recipient in RCPT order.
void ClientSession::after_content_sent() {
  lmtp_waiting_.clear();
  lmtp_next_ = 0;
  if (!config_.lmtp) return;
  for (size_t i = 0; i < accepted_.size(); ++i) {
    if (accepted_[i]) lmtp_waiting_.push_back(i);
  }
}

void ClientSession::on_data_end(const Reply& r) {
  if (ignore_final_) {
    if (r.code == 421) return fail(r);
    finish_transaction();
    return enter(State::kReady);
  }
  if (r.code / 100 != 2 && r.code < 400) {
    return protocol_error("the peer sent " + r.text());
  }
  if (config_.lmtp) {
    // RFC 2033 §4.2: this reply is the next accepted recipient's alone. A 421 may be that
    // recipient's reply or the server closing; either way the rest get it too (fail()).
    size_t i = lmtp_waiting_[lmtp_next_++];
    replies_[i] = r;
    decided_[i] = true;
    if (r.code == 421) return fail(r);
    if (lmtp_next_ < lmtp_waiting_.size()) return;
    finish_transaction();
    return enter(State::kReady);
  }
  if (r.code == 421) return fail(r);
  for (size_t i = 0; i < accepted_.size(); ++i) {
    if (accepted_[i]) replies_[i] = r, decided_[i] = true;
  }
  if (r.code >= 400) message_level_ = true;
  finish_transaction();
  enter(State::kReady);
}

// Makes the outcome of the transaction in progress; every recipient has its reply by now.
void ClientSession::finish_transaction() {
  Outcome o;
  o.message_level = message_level_;
  if (mail_refusal_) {
    o.recipients.assign(replies_.size(), *mail_refusal_);
    o.message_level = true;
  } else {
    for (auto& r : replies_) o.recipients.push_back(r ? std::move(*r) : Reply{});
  }
  outcome_ = std::move(o);
  message_.reset();
  plan_.clear();
  plan_sent_ = plan_answered_ = 0;
  content_.clear();
}

std::optional<Outcome> ClientSession::take_outcome() {
  return std::exchange(outcome_, std::nullopt);
}

void ClientSession::quit() {
  if (state_ == State::kClosed || state_ == State::kQuit) return;
  if (state_ == State::kReady) {
    write_line("QUIT");
    return enter(State::kQuit);
  }
  std::string text = "Connection closed by this side " + waiting_for();
  fail(make_reply(421, "4.4.2", text), false, make_reply(451, "4.4.2", text));
}

// ---- Timeouts and lost connections -----------------------------------------------------------

std::chrono::seconds ClientSession::timeout() const {
  switch (state_) {
    case State::kData: return 120s;     // RFC 5321 §4.5.3.2.3 DATA initiation
    case State::kDataEnd: return 600s;  // §4.5.3.2.6 DATA termination (and BDAT LAST)
    case State::kQuit: return 30s;      // nothing rides on the answer to QUIT
    case State::kClosed: return 0s;
    default: return 300s;  // §4.5.3.2.1 greeting, .2 MAIL, .3 RCPT; the rest likewise 5 min
  }
}

void ClientSession::timed_out() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kQuit) return enter(State::kClosed);
  // RFC 5321 §3.8: a transaction cut off is treated as if 451 had been received.
  std::string text = "Connection timed out " + waiting_for();
  fail(make_reply(421, "4.4.2", text), false, make_reply(451, "4.4.2", text));
}

void ClientSession::peer_closed() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kQuit) return enter(State::kClosed);
  std::string text = "Connection lost " + waiting_for();
  fail(make_reply(421, "4.4.2", text), false, make_reply(451, "4.4.2", text));
}

}  // namespace starling::smtp
