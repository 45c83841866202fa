#include "smtp/session.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "smtp/base64.hpp"

namespace starling::smtp {
namespace {

// RFC 4954 §4: an AUTH command line and each SASL response line may be 12288 octets long (the
// 512 of RFC 5321 is too short for some mechanisms' responses).
constexpr size_t kAuthLineLimit = 12288;
constexpr size_t kDsnLineAllowance = 29 + 7 + kMaxOrcpt;

// ASCII case, as SMTP keywords and domains have it (and as tolower() does in the C locale the
// daemon runs in), without allocating: these run on every command line.
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool same_address(const Address& a, const Address& b) {
  return a.local_part == b.local_part && iequals(a.domain, b.domain);
}

bool is_auth_line(std::string_view line) {
  return line.size() >= 5 && iequals(line.substr(0, 5), "AUTH ");
}

}  // namespace

std::string_view state_name(Session::State s) {
  switch (s) {
    case Session::State::kGreeting: return "Greeting";
    case Session::State::kReady: return "Ready";
    case Session::State::kMail: return "Mail";
    case Session::State::kRcpt: return "Rcpt";
    case Session::State::kData: return "Data";
    case Session::State::kBdat: return "Bdat";
    case Session::State::kQueueing: return "Queueing";
    case Session::State::kStartTls: return "StartTls";
    case Session::State::kAuthResponse: return "AuthResponse";
    case Session::State::kAuthenticating: return "Authenticating";
    case Session::State::kClosed: return "Closed";
  }
  return "?";
}

Session::Session(SessionConfig config, std::string peer_ip)
    : config_(std::move(config)), peer_ip_(std::move(peer_ip)) {}

// Every state change passes here, so a trace shows the whole life of a session.
void Session::enter(State next) {
  if (trace && next != state_) {
    std::string line = std::string(state_name(state_)) + " -> " + std::string(state_name(next));
    trace('=', line);
  }
  state_ = next;
}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
  size_t start = out_.size();
  out_ += std::to_string(code);
  out_ += ' ';
  if (config_.enhanced_status_codes && !enhanced.empty()) {
    out_ += enhanced;
    out_ += ' ';
  }
  out_ += text;
  if (trace) trace('>', std::string_view(out_).substr(start));
  out_ += "\r\n";
}

// Every line the server writes that is not a reply() goes through here, so the protocol log
// has them all: the banner, each EHLO line, 354 and the 334 challenges.
void Session::write_line(std::string_view line, std::string_view rest) {
  size_t start = out_.size();
  out_ += line;
  out_ += rest;
  if (trace) trace('>', std::string_view(out_).substr(start));
  out_ += "\r\n";
}

void Session::tarpit() {
  if (config_.tarpit_interval.count() <= 0) return;
  if (!delays_.empty() && delays_.back().offset == out_.size()) {
    delays_.back().length += config_.tarpit_interval;
  } else {
    delays_.push_back({out_.size(), config_.tarpit_interval});
  }
}

void Session::protocol_error(int code, std::string_view enhanced, std::string_view text) {
  reply(code, enhanced, text);
  if (++errors_ >= config_.max_protocol_errors && state_ != State::kClosed) {
    close_with("4.7.0", config_.fqdn + " Too many errors on this connection, closing");
  }
}

void Session::close_with(std::string_view enhanced, std::string_view text) {
  reply(421, enhanced, text);
  enter(State::kClosed);
}

void Session::start() {
  if (!config_.banner.empty()) {
    write_line(config_.banner);
  } else {
    // RFC 2034 §3: no enhanced code on the greeting.
    write_line("220 " + config_.fqdn + " Starling ESMTP service ready");
  }
}

std::string Session::take_output() {
  if (delays_.empty()) return std::exchange(out_, {});
  size_t n = delays_.front().offset;
  std::string head = out_.substr(0, n);
  out_.erase(0, n);
  for (Delay& d : delays_) d.offset -= n;
  return head;
}

std::chrono::milliseconds Session::take_delay() {
  if (delays_.empty() || delays_.front().offset != 0) return std::chrono::milliseconds{0};
  auto length = delays_.front().length;
  delays_.erase(delays_.begin());
  return length;
}

void Session::receive(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  if (in_pos_ < in_.size()) {
    in_.append(bytes);
    input_ = in_;
  } else {
    // Nothing left over: the bytes are read where the driver has them, and only what stays
    // unprocessed is copied (DATA content goes straight to the DataReader, copied once).
    in_.clear();
    in_pos_ = 0;
    input_ = bytes;
  }
  process();
  if (input_.data() != in_.data()) {
    in_.assign(input_.substr(in_pos_));
    in_pos_ = 0;
    input_ = in_;
  }
}

void Session::process() {
  while (in_pos_ < input_.size()) {
    std::string_view rest = input_.substr(in_pos_);
    switch (state_) {
      case State::kQueueing:
      case State::kStartTls:
      case State::kAuthenticating:
      case State::kClosed:
        return;  // paused: the driver has to act first
      case State::kData: {
        in_pos_ += data_->consume(rest);
        if (data_->done()) finish_data();
        break;
      }
      case State::kBdat: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(bdat_remaining_, rest.size()));
        if (!bdat_error_) data_->consume(rest.substr(0, n));
        bdat_remaining_ -= n;
        in_pos_ += n;
        if (bdat_remaining_ == 0) finish_bdat_chunk();
        break;
      }
      default:
        if (!process_command_line()) return;  // need more input
    }
  }
  in_.clear();
  in_pos_ = 0;
  input_ = in_;
}

// Takes one CRLF-terminated line off the input and acts on it. Returns false when no complete
// line is there yet.
bool Session::process_command_line() {
  std::string_view rest = input_.substr(in_pos_);
  size_t lf = rest.find('\n');
  size_t limit = line_limit(rest);
  if (lf == std::string_view::npos) {
    if (rest.size() >= limit && !discarding_line_) {
      discarding_line_ = true;
      line_too_long(rest);
    }
    if (discarding_line_) in_pos_ = input_.size();
    return false;
  }
  in_pos_ += lf + 1;
  if (discarding_line_) {
    discarding_line_ = false;
    return true;
  }
  std::string_view line = rest.substr(0, lf);
  // Too long first, whatever else is wrong with the line: the same verdict as when the line
  // arrives in pieces and its first bytes already reach the limit.
  if (lf >= limit) {
    line_too_long(line);
    return true;
  }
  // Only CRLF ends a line (RFC 5321 §2.3.8). A bare LF still ends the line it is in, so that a
  // client sending LF alone is answered rather than left waiting; the line is refused. A bare
  // CR inside the line is refused too: it would reach headers we write (Received: from HELO).
  bool bare_lf = line.empty() || line.back() != '\r';
  if (!bare_lf) line.remove_suffix(1);
  trace_client_line(line);  // refused or not, the log shows what the client said
  if (bare_lf || line.find('\r') != std::string_view::npos) {
    if (state_ == State::kAuthResponse) enter(State::kReady);  // the exchange is over
    protocol_error(500, "5.5.2", bare_lf ? "Command lines must end with CRLF"
                                         : "Bare CR in a command line refused");
    return true;
  }
  if (state_ == State::kAuthResponse) {
    on_auth_response(line);
    return true;
  }
  dispatch(line);
  return true;
}

void Session::trace_client_line(std::string_view line) {
  if (!trace) return;
  // SASL responses and AUTH initial responses carry the password: never in the protocol log
  // (docs/protocol-logs.md).
  if (state_ == State::kAuthResponse) return trace('<', line == "*" ? "*" : "****");
  if (is_auth_line(line) && line.find(' ', 5) != std::string_view::npos) {
    return trace('<', std::string(line.substr(0, line.find(' ', 5))) + " ****");
  }
  trace('<', line);
}

size_t Session::line_limit(std::string_view line_start) const {
  if (state_ == State::kAuthResponse || (config_.basic_auth && is_auth_line(line_start))) {
    return std::max<size_t>(kAuthLineLimit, config_.max_command_line);
  }
  // RFC 3461 §5: DSN lengthens MAIL (" RET=HDRS ENVID=" and 100) and RCPT (" NOTIFY=SUCCESS,
  // FAILURE,DELAY ORCPT=" and 500) beyond RFC 5321's 512 octets.
  if (config_.dsn && line_start.size() >= 5 &&
      (iequals(line_start.substr(0, 5), "MAIL ") || iequals(line_start.substr(0, 5), "RCPT "))) {
    return config_.max_command_line + kDsnLineAllowance;
  }
  return config_.max_command_line;
}

void Session::line_too_long(std::string_view line_start) {
  // Not logged as '<': the line may be an AUTH payload, and its rest is never read.
  if (trace) trace('*', "command line too long, discarded");
  if (state_ == State::kAuthResponse || (config_.basic_auth && is_auth_line(line_start))) {
    if (state_ == State::kAuthResponse) enter(State::kReady);  // the exchange is over
    return protocol_error(500, "5.5.6", "Authentication exchange line is too long");
  }
  protocol_error(500, "5.5.2", "Line too long");
}

void Session::dispatch(std::string_view line) {
  Command cmd = parse_command(line);
  switch (cmd.verb) {
    case Verb::kEhlo: return on_ehlo(cmd.argument, true);
    case Verb::kHelo: return on_ehlo(cmd.argument, false);
    case Verb::kMail: return on_mail(cmd.argument);
    case Verb::kRcpt: return on_rcpt(cmd.argument);
    case Verb::kData: return on_data(cmd.argument);
    case Verb::kBdat: return on_bdat(cmd.argument);
    case Verb::kStartTls: return on_starttls(cmd.argument);
    case Verb::kRset:
      reset_transaction();
      if (state_ != State::kGreeting) enter(State::kReady);
      return reply(250, "2.0.0", "OK");
    case Verb::kNoop: return reply(250, "2.0.0", "OK");
    case Verb::kQuit:
      reply(221, "2.0.0", config_.fqdn + " closing connection");
      return enter(State::kClosed);
    case Verb::kVrfy:
      return reply(252, "2.5.0", "Cannot verify the user, but will accept the message");
    case Verb::kExpn: return protocol_error(502, "5.5.1", "EXPN is not supported");
    case Verb::kHelp:
      return reply(214, "2.0.0",
                   "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS");
    case Verb::kAuth: return on_auth(cmd.argument);
    case Verb::kHttp:
      reply(500, "5.5.1", "HTTP request to an SMTP server refused, closing connection");
      return enter(State::kClosed);
    case Verb::kUnknown: return protocol_error(500, "5.5.2", "Command not recognized");
  }
}

void Session::reset_transaction() {
  mail_from_.reset();
  recipients_.clear();
  recipient_dsn_.clear();
  dsn_ret_.clear();
  dsn_envid_.clear();
  smtputf8_ = false;
  used_bdat_ = false;
  given_recipients_ = 0;
  declared_size_ = 0;
  data_.reset();
}

bool Session::require_greeting() {
  if (state_ != State::kGreeting) return true;
  protocol_error(503, "5.5.1", "Send EHLO or HELO first");
  return false;
}

bool Session::require_tls_first() {
  if (!config_.require_tls || tls_) return true;
  protocol_error(530, "5.7.0", "Must issue a STARTTLS command first");
  return false;
}

void Session::on_ehlo(std::string_view arg, bool extended) {
  while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
  if (arg.empty()) {
    return protocol_error(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
  }
  // The name goes into the Received header: only a domain or an address literal will do.
  if (!valid_helo_argument(arg)) {
    return protocol_error(501, "5.5.4", "Invalid domain name or address literal");
  }
  reset_transaction();
  helo_ = std::string(arg);
  extended_ = extended;
  enter(State::kReady);
  std::string greeting = config_.fqdn + " Hello [" + peer_ip_ + "]";
  if (!extended) {
    write_line("250 " + greeting);  // RFC 2034 §3: no enhanced code on HELO/EHLO replies
    return;
  }
  std::vector<std::string> lines{greeting};
  if (config_.size) lines.push_back("SIZE " + std::to_string(config_.limits.max_message_size));
  if (config_.pipelining) lines.push_back("PIPELINING");
  if (config_.eight_bit_mime) lines.push_back("8BITMIME");
  if (config_.enhanced_status_codes) lines.push_back("ENHANCEDSTATUSCODES");
  if (config_.tls_available && !tls_) lines.push_back("STARTTLS");
  if (config_.basic_auth && (!config_.basic_auth_require_tls || tls_)) {
    lines.push_back("AUTH PLAIN LOGIN");
  }
  if (config_.smtputf8) lines.push_back("SMTPUTF8");
  if (config_.chunking) lines.push_back("CHUNKING");
  if (config_.dsn) lines.push_back("DSN");
  lines.push_back("HELP");
  for (size_t i = 0; i < lines.size(); ++i) {
    write_line(i + 1 < lines.size() ? "250-" : "250 ", lines[i]);
  }
}

void Session::on_mail(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (mail_from_) return protocol_error(503, "5.5.1", "Sender already specified");
  if (!identity_ && !config_.anonymous_users && !config_.may_relay) {
    // A connector for ExchangeUsers only (the "Client" connector on 587): AUTH first.
    return protocol_error(530, "5.7.1", "Client was not authenticated");
  }
  std::string error;
  auto path = parse_path_argument(arg, "FROM", error);
  if (!path) return protocol_error(501, "5.1.7", error);
  bool smtputf8 = false;
  uint64_t declared = 0;
  std::string ret, envid;
  for (const auto& [key, value] : path->params) {
    if (key == "SIZE" && config_.size) {
      uint64_t size = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), size);
      if (ec != std::errc{} || p != value.data() + value.size()) {
        return protocol_error(501, "5.5.4", "Invalid SIZE parameter");
      }
      if (size > config_.limits.max_message_size) {
        return reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
      }
      declared = size;
    } else if (key == "BODY" && config_.eight_bit_mime) {
      if (value != "7BIT" && value != "8BITMIME" && !(value == "BINARYMIME" && false)) {
        return protocol_error(501, "5.5.4", "Invalid BODY parameter");
      }
    } else if (key == "SMTPUTF8" && config_.smtputf8 && value.empty()) {
      smtputf8 = true;
    } else if (key == "AUTH" && config_.basic_auth) {
      // RFC 4954 §5: the submitter's identity as another MTA saw it. Accepted and not trusted:
      // it is not passed on, which the RFC allows ("AUTH=<>" in effect).
    } else if (key == "RET" && config_.dsn) {
      // RFC 3461 §4.3: FULL or HDRS, once.
      if (!ret.empty()) return protocol_error(501, "5.5.4", "Duplicate RET parameter");
      if (iequals(value, "FULL") || iequals(value, "HDRS")) {
        ret = iequals(value, "FULL") ? "FULL" : "HDRS";
      } else {
        return protocol_error(501, "5.5.4", "Invalid RET parameter: expected FULL or HDRS");
      }
    } else if (key == "ENVID" && config_.dsn) {
      if (!envid.empty()) return protocol_error(501, "5.5.4", "Duplicate ENVID parameter");
      if (std::string why = envid_problem(value); !why.empty()) return protocol_error(501, "5.5.4", why);
      envid = value;
    } else {
      return protocol_error(555, "5.5.4", "Unsupported parameter " + key);
    }
  }
  if (has_non_ascii(path->address.str()) && !smtputf8) {
    return protocol_error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  if (!valid_utf8(path->address.str())) {
    return protocol_error(501, "5.1.7", "Address is not valid UTF-8");
  }
  if (identity_ && config_.exchange_users && !config_.may_relay && !path->address.is_null()) {
    // ExchangeUsers may send only as their own addresses. The null reverse path stays allowed:
    // message disposition notifications are sent with it (RFC 8098 §3), and it names nobody.
    std::string from = lower(path->address.str());
    bool own = std::any_of(identity_->send_as.begin(), identity_->send_as.end(),
                           [&](const std::string& a) { return lower(a) == from; });
    if (!own) {
      return reply(550, "5.7.60", "SMTP; Client does not have permissions to send as this sender");
    }
  }
  mail_from_ = std::move(path->address);
  smtputf8_ = smtputf8;
  declared_size_ = declared;
  dsn_ret_ = std::move(ret);
  dsn_envid_ = std::move(envid);
  enter(State::kMail);
  reply(250, "2.1.0", "Sender OK");
}

void Session::on_rcpt(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (!mail_from_) return protocol_error(503, "5.5.1", "Need MAIL before RCPT");
  std::string error;
  auto path = parse_path_argument(arg, "TO", error);
  if (!path) return protocol_error(501, "5.1.3", error);
  DsnRequest dsn;
  if (!check_rcpt_parameters(path->params, dsn)) return;
  Address& rcpt = path->address;
  if (has_non_ascii(rcpt.str()) && !smtputf8_) {
    return protocol_error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  if (!valid_utf8(rcpt.str())) return protocol_error(501, "5.1.3", "Address is not valid UTF-8");
  if (rcpt.domain.empty()) rcpt.domain = config_.postmaster_domain;  // bare <postmaster>
  auto no_route = [&] {
    return !config_.has_route || !config_.has_route(rcpt.domain);
  };
  std::optional<std::vector<Address>> members;  // a group's, instead of the address given
  if (!config_.is_accepted_domain || !config_.is_accepted_domain(rcpt.domain)) {
    // No open relay: only clients the connector trusts may send beyond the accepted domains.
    if (!may_relay()) {
      return reply(550, "5.7.54", "Unable to relay: " + rcpt.domain + " is not an accepted domain");
    }
    if (no_route()) {
      return reply(550, "5.4.4", "Unable to route: no send connector serves " + rcpt.domain);
    }
  } else if (config_.verify_recipient) {
    RecipientVerdict v = config_.verify_recipient(rcpt);
    switch (v.kind) {
      case RecipientVerdict::Kind::kMailbox: break;
      case RecipientVerdict::Kind::kGroup: members = std::move(v.members); break;
      case RecipientVerdict::Kind::kRelay:
        // InternalRelay/ExternalRelay: an accepted domain, so anyone may send here, but the
        // recipient lives behind a send connector.
        if (no_route()) {
          return reply(550, "5.4.4", "Unable to route: no send connector serves " + rcpt.domain);
        }
        break;
      case RecipientVerdict::Kind::kUnknown:
        // RFC 5321 §4.5.1: postmaster is always accepted, even where nobody set it up.
        if (iequals(rcpt.local_part, "postmaster")) break;
        // Directory harvesting: each miss costs the client TarpitInterval and counts as an
        // error, so a dictionary run ends after MaxProtocolErrors guesses.
        tarpit();
        return protocol_error(550, "5.1.1", "Recipient address rejected: User unknown");
    }
  }
  // Addresses the directory knows are compared without regard to case (core::Directory looks
  // them up that way): BOB@ and a group's bob@ are one recipient, delivered once.
  bool directory_local = config_.verify_recipient && config_.is_accepted_domain &&
                         config_.is_accepted_domain(rcpt.domain);
  auto known = [&](const Address& r) {
    return std::any_of(recipients_.begin(), recipients_.end(), [&](const Address& a) {
      return directory_local ? lower(a.str()) == lower(r.str()) : same_address(a, r);
    });
  };
  if (members) {
    // The group is expanded here; MaxRecipientsPerMessage counts the address given, not its
    // members (Exchange counts a group as one recipient at RCPT).
    if (given_recipients_ >= config_.max_recipients) {
      return reply(452, "4.5.3", "Too many recipients");
    }
    ++given_recipients_;
    // The members inherit the group's NOTIFY (RFC 3461 §6.2.7.1, as for an alias) and keep the
    // group as their original recipient, so that a report names the address the sender used.
    DsnRequest member_dsn = dsn;
    if (member_dsn.orcpt.empty() && !has_non_ascii(rcpt.str())) {
      std::string orcpt = "rfc822;" + xtext_encode(rcpt.str());
      if (orcpt.size() <= kMaxOrcpt) member_dsn.orcpt = std::move(orcpt);
    }
    for (Address& m : *members) {
      if (!known(m)) add_recipient(std::move(m), member_dsn);
    }
  } else if (!known(rcpt)) {
    if (given_recipients_ >= config_.max_recipients) {
      return reply(452, "4.5.3", "Too many recipients");
    }
    ++given_recipients_;
    add_recipient(std::move(rcpt), std::move(dsn));
  }
  enter(State::kRcpt);
  reply(250, "2.1.5", "Recipient OK");
}

void Session::add_recipient(Address rcpt, DsnRequest dsn) {
  recipients_.push_back(std::move(rcpt));
  recipient_dsn_.push_back(std::move(dsn));
}

// RFC 3461 §4.1, §4.2: NOTIFY and ORCPT, each at most once; any other parameter is unknown.
bool Session::check_rcpt_parameters(const Parameters& params, DsnRequest& dsn) {
  bool notify = false, orcpt = false;
  for (const auto& [key, value] : params) {
    std::string why;
    if (key == "NOTIFY" && config_.dsn) {
      if (notify) why = "Duplicate NOTIFY parameter";
      notify = true;
      if (why.empty()) dsn.notify = parse_notify(value, why);
    } else if (key == "ORCPT" && config_.dsn) {
      if (orcpt) why = "Duplicate ORCPT parameter";
      orcpt = true;
      if (why.empty()) why = orcpt_problem(value);
      dsn.orcpt = value;
    } else {
      protocol_error(555, "5.5.4", "Unsupported parameter " + key);
      return false;
    }
    if (!why.empty()) {
      protocol_error(501, "5.5.4", why);
      return false;
    }
  }
  return true;
}

bool Session::may_relay() const {
  return config_.may_relay || (identity_ && config_.exchange_users);
}

void Session::on_data(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (!arg.empty()) return protocol_error(501, "5.5.4", "DATA takes no arguments");
  if (!mail_from_) return protocol_error(503, "5.5.1", "Need MAIL before DATA");
  if (used_bdat_) return protocol_error(503, "5.5.1", "DATA cannot follow BDAT");
  if (recipients_.empty()) return protocol_error(554, "5.5.1", "No valid recipients");
  data_.emplace(config_.limits, config_.memory, declared_size_);
  if (data_->problem() == DataReader::Problem::kNoMemory) {
    // Said before 354, the client has sent nothing yet and may try again later.
    data_.reset();
    return reply(452, "4.3.1", "Insufficient system resources, try again later");
  }
  enter(State::kData);
  write_line("354 Start mail input; end with <CRLF>.<CRLF>");
}

void Session::finish_data() {
  if (data_->problem() == DataReader::Problem::kNone) return hand_over();
  refuse_content(data_->problem());
}

// The same answers for DATA and BDAT: the message is dropped, the transaction is over.
void Session::refuse_content(DataReader::Problem problem) {
  using Problem = DataReader::Problem;
  reset_transaction();
  enter(State::kReady);
  switch (problem) {
    case Problem::kBareLineEnding:
      return reply(554, "5.6.0",
                   "Message refused: bare CR or LF in the content (RFC 5321 §2.3.8)");
    case Problem::kLineTooLong:
      return reply(554, "5.6.0", "Message refused: a line is longer than " +
                                     std::to_string(config_.limits.max_line_length) + " octets");
    case Problem::kTooBig:
      return reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    case Problem::kHeaderTooBig:
      return reply(552, "5.3.4", "Header size exceeds fixed maximum size");
    case Problem::kNoMemory:
      return reply(452, "4.3.1", "Insufficient system resources, try again later");
    case Problem::kNone: break;
  }
}

void Session::on_bdat(std::string_view arg) {
  // Parse "size [LAST]" first: the chunk's octets follow whatever we answer (RFC 3030 §2).
  size_t space = arg.find(' ');
  std::string_view size_text = arg.substr(0, space);
  std::string_view last = space == std::string_view::npos ? "" : arg.substr(space + 1);
  uint64_t size = 0;
  auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
  if (size_text.empty() || ec != std::errc{} || p != size_text.data() + size_text.size() ||
      !(last.empty() || last == "LAST" || last == "last")) {
    // Without a size we cannot know where the chunk ends: the connection cannot continue.
    reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
    return close_with("4.7.0", config_.fqdn + " closing after malformed BDAT");
  }
  bdat_remaining_ = size;
  bdat_last_ = !last.empty();
  // Decide the verdict now, answer once the chunk has been read (and discarded when refused).
  if (!config_.chunking) {
    bdat_error_ = {502, "5.5.1", "CHUNKING is not enabled"};
  } else if (state_ == State::kGreeting) {
    bdat_error_ = {503, "5.5.1", "Send EHLO or HELO first"};
  } else if (config_.require_tls && !tls_) {
    bdat_error_ = {530, "5.7.0", "Must issue a STARTTLS command first"};
  } else if (!mail_from_) {
    bdat_error_ = {503, "5.5.1", "Need MAIL before BDAT"};
  } else if (recipients_.empty()) {
    bdat_error_ = {554, "5.5.1", "No valid recipients"};
  } else if (!data_) {
    data_.emplace(config_.limits, config_.memory, size, DataReader::Framing::kChunked);
  } else {
    data_->expect(size);
  }
  used_bdat_ = true;
  bdat_return_ = state_;
  enter(State::kBdat);
  if (bdat_remaining_ == 0) finish_bdat_chunk();
}

void Session::finish_bdat_chunk() {
  if (bdat_error_) {
    // A refused chunk ends the transaction; later chunks of it meet "Need MAIL" (RFC 3030 §3).
    auto error = *std::exchange(bdat_error_, std::nullopt);
    protocol_error(error.code, error.enhanced, error.text);
    if (state_ == State::kClosed) return;
    reset_transaction();
    return enter(bdat_return_ == State::kGreeting ? State::kGreeting : State::kReady);
  }
  if (bdat_last_) data_->finish();
  if (data_->problem() != DataReader::Problem::kNone) return refuse_content(data_->problem());
  if (!bdat_last_) {
    enter(State::kRcpt);
    return reply(250, "2.0.0", std::to_string(data_->received()) + " octets received");
  }
  hand_over();
}

void Session::hand_over() {
  Message m;
  m.helo = helo_;
  m.peer_ip = peer_ip_;
  // RFC 3848: ESMTPA / ESMTPSA for an authenticated session.
  m.protocol = !extended_ ? "SMTP" : std::string("ESMTP") + (tls_ ? "S" : "") + (identity_ ? "A" : "");
  if (identity_) m.authenticated_user = identity_->user;
  m.tls = tls_;
  m.mail_from = *mail_from_;
  m.recipients = std::move(recipients_);
  m.smtputf8 = smtputf8_;
  m.dsn_ret = dsn_ret_;
  m.dsn_envid = dsn_envid_;
  if (std::any_of(recipient_dsn_.begin(), recipient_dsn_.end(), [](const DsnRequest& d) { return d != DsnRequest{}; })) {
    m.dsn = std::move(recipient_dsn_);
  }
  m.content = std::move(data_->content());
  m.memory = data_->take_reservation();
  data_.reset();
  pending_ = std::move(m);
  enter(State::kQueueing);
}

std::optional<Message> Session::take_message() {
  if (!pending_) return std::nullopt;
  return std::exchange(pending_, std::nullopt);
}

void Session::message_queued(std::string_view queue_id) {
  reply(250, "2.0.0", "OK queued as " + std::string(queue_id));
  reset_transaction();
  enter(State::kReady);
  process();
}

void Session::message_failed() {
  reply(452, "4.3.1", "Insufficient system storage, try again later");
  reset_transaction();
  enter(State::kReady);
  process();
}

void Session::on_starttls(std::string_view arg) {
  if (!arg.empty()) return protocol_error(501, "5.5.4", "STARTTLS takes no arguments");
  if (tls_) return protocol_error(503, "5.5.1", "TLS is already active");
  if (!config_.tls_available) return reply(454, "4.7.0", "TLS not available");
  if (!require_greeting()) return;
  reply(220, "2.0.0", "Ready to start TLS");
  // Whatever the client pipelined after STARTTLS was sent in clear text and must not be
  // executed inside the TLS session (STARTTLS command injection, CVE-2011-0411).
  if (trace && in_pos_ < input_.size()) {
    trace('*', std::to_string(input_.size() - in_pos_) + " octets sent after STARTTLS discarded");
  }
  in_.clear();
  in_pos_ = 0;
  input_ = in_;
  enter(State::kStartTls);
}

void Session::tls_started(TlsInfo info) {
  // RFC 3207 §4.2: forget everything learned before the handshake, the client greets again.
  reset_transaction();
  helo_.clear();
  extended_ = false;
  identity_.reset();  // an AUTH before the handshake was in clear text: forget it too
  tls_ = std::move(info);
  enter(State::kGreeting);
}

void Session::tls_failed() { enter(State::kClosed); }

void Session::timeout() {
  if (state_ == State::kClosed) return;
  close_with("4.4.2", config_.fqdn + " Timeout, closing connection");
}

void Session::shutdown() {
  if (state_ == State::kClosed) return;
  close_with("4.3.2", config_.fqdn + " Service shutting down, closing connection");
}

// AUTH (RFC 4954 §4), mechanisms PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login).
// SCRAM-SHA-256 would need HMAC and PBKDF2, which src/smtp cannot link: not offered.
void Session::on_auth(std::string_view arg) {
  if (!config_.basic_auth) return protocol_error(503, "5.5.1", "AUTH is not offered on this connector");
  if (!require_greeting()) return;
  if (!extended_) return protocol_error(503, "5.5.1", "AUTH needs EHLO first");
  if (config_.basic_auth_require_tls && !tls_) {
    // Credentials in clear text are refused before they are sent (RFC 4954 §6).
    return protocol_error(538, "5.7.11", "Encryption required for requested authentication mechanism");
  }
  if (!require_tls_first()) return;
  if (identity_) return protocol_error(503, "5.5.1", "Already authenticated");
  if (mail_from_) return protocol_error(503, "5.5.1", "AUTH is not permitted during a mail transaction");
  size_t space = arg.find(' ');
  std::string mechanism(arg.substr(0, space));
  for (char& c : mechanism) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (mechanism != "PLAIN" && mechanism != "LOGIN") {
    return protocol_error(504, "5.5.4", "Unrecognized authentication type");
  }
  auth_mechanism_ = mechanism;
  auth_user_.reset();
  if (space == std::string_view::npos) {
    // No initial response: ask for it ("334 " with an empty challenge for PLAIN).
    enter(State::kAuthResponse);
    write_line(mechanism == "PLAIN" ? "334 " : "334 VXNlcm5hbWU6");  // "Username:"
    return;
  }
  std::string_view initial = arg.substr(space + 1);
  // RFC 4954 §4: "=" is an initial response of zero length.
  auto decoded = initial == "=" ? std::optional<std::string>("") : base64_decode(initial);
  if (!decoded) return protocol_error(501, "5.5.2", "Invalid base64 data in the initial response");
  auth_step(*decoded);
}

void Session::on_auth_response(std::string_view line) {
  enter(State::kReady);
  if (line == "*") return reply(501, "5.7.0", "Authentication cancelled");  // RFC 4954 §4
  auto decoded = line.empty() || line == "=" ? std::optional<std::string>("") : base64_decode(line);
  if (!decoded) return protocol_error(501, "5.5.2", "Invalid base64 data in the response");
  auth_step(*decoded);
}

void Session::auth_step(std::string_view response) {
  if (auth_mechanism_ == "LOGIN" && !auth_user_) {
    auth_user_ = std::string(response);
    enter(State::kAuthResponse);
    write_line("334 UGFzc3dvcmQ6");  // "Password:"
    return;
  }
  AuthRequest request;
  request.mechanism = auth_mechanism_;
  if (auth_mechanism_ == "LOGIN") {
    request.user = *std::exchange(auth_user_, std::nullopt);
    request.password = std::string(response);
  } else {
    // RFC 4616 §2: [authzid] NUL authcid NUL passwd.
    size_t a = response.find('\0');
    size_t b = a == std::string_view::npos ? a : response.find('\0', a + 1);
    if (b == std::string_view::npos || response.find('\0', b + 1) != std::string_view::npos ||
        b == a + 1) {
      enter(State::kReady);
      return protocol_error(501, "5.5.2", "Malformed PLAIN response");
    }
    std::string_view authzid = response.substr(0, a);
    request.user = std::string(response.substr(a + 1, b - a - 1));
    request.password = std::string(response.substr(b + 1));
    if (!authzid.empty() && !iequals(authzid, request.user)) {
      // Acting for somebody else (a proxy authorization) is not supported: a failed logon.
      return fail_logon();
    }
  }
  auth_request_ = std::move(request);
  enter(State::kAuthenticating);
}

std::optional<AuthRequest> Session::take_auth_request() {
  return std::exchange(auth_request_, std::nullopt);
}

void Session::auth_succeeded(AuthIdentity identity) {
  if (state_ != State::kAuthenticating) return;
  if (trace) trace('*', "authenticated as " + identity.user);
  identity_ = std::move(identity);
  enter(State::kReady);
  reply(235, "2.7.0", "Authentication successful");
  process();
}

void Session::auth_failed() {
  if (state_ != State::kAuthenticating) return;
  fail_logon();
  process();
}

void Session::fail_logon() {
  enter(State::kReady);
  tarpit();
  reply(535, "5.7.8", "Authentication credentials invalid");
  if (++logon_failures_ >= config_.max_logon_failures) {
    // MaxLogonFailures: a password guesser gets a few tries per connection, not a session.
    close_with("4.7.0", config_.fqdn + " Too many authentication failures, closing connection");
  }
}

void Session::auth_unavailable() {
  if (state_ != State::kAuthenticating) return;
  enter(State::kReady);
  reply(454, "4.7.0", "Temporary authentication failure");
  process();
}

}  // namespace starling::smtp
