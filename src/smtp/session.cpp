#include "smtp/session.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace starling::smtp {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool same_address(const Address& a, const Address& b) {
  return a.local_part == b.local_part && lower(a.domain) == lower(b.domain);
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
    out_ += config_.banner;
    out_ += "\r\n";
  } else {
    // RFC 2034 §3: no enhanced code on the greeting.
    out_ += "220 " + config_.fqdn + " Starling ESMTP service ready\r\n";
  }
}

std::string Session::take_output() { return std::exchange(out_, {}); }

void Session::receive(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  in_.append(bytes);
  process();
}

void Session::process() {
  while (in_pos_ < in_.size()) {
    std::string_view rest = std::string_view(in_).substr(in_pos_);
    switch (state_) {
      case State::kQueueing:
      case State::kStartTls:
      case State::kClosed:
        return;  // paused: the driver has to act first
      case State::kData: {
        in_pos_ += data_->consume(rest);
        if (data_->done()) finish_data();
        break;
      }
      case State::kBdat: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(bdat_remaining_, rest.size()));
        if (!bdat_error_ && !bdat_too_big_) {
          if (bdat_content_.size() + n > config_.limits.max_message_size) {
            bdat_too_big_ = true;
            bdat_content_.clear();
            reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
          } else {
            bdat_content_.append(rest.substr(0, n));
          }
        }
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
}

// Takes one CRLF-terminated line off the input and acts on it. Returns false when no complete
// line is there yet.
bool Session::process_command_line() {
  std::string_view rest = std::string_view(in_).substr(in_pos_);
  size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    if (rest.size() >= config_.max_command_line && !discarding_line_) {
      discarding_line_ = true;
      protocol_error(500, "5.5.2", "Line too long");
    }
    if (discarding_line_) in_pos_ = in_.size();
    return false;
  }
  in_pos_ += lf + 1;
  if (discarding_line_) {
    discarding_line_ = false;
    return true;
  }
  std::string_view line = rest.substr(0, lf);
  if (line.empty() || line.back() != '\r') {
    // A command line must end in CRLF (RFC 5321 §2.3.8); refuse bare LF.
    protocol_error(500, "5.5.2", "Command lines must end with CRLF");
    return true;
  }
  line.remove_suffix(1);
  if (line.size() + 2 > config_.max_command_line) {
    protocol_error(500, "5.5.2", "Line too long");
    return true;
  }
  if (trace) trace('<', line);
  dispatch(line);
  return true;
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
    case Verb::kAuth: return protocol_error(503, "5.5.1", "AUTH is not offered on this connector");
    case Verb::kHttp:
      reply(500, "5.5.1", "HTTP request to an SMTP server refused, closing connection");
      return enter(State::kClosed);
    case Verb::kUnknown: return protocol_error(500, "5.5.2", "Command not recognized");
  }
}

void Session::reset_transaction() {
  mail_from_.reset();
  recipients_.clear();
  smtputf8_ = false;
  used_bdat_ = false;
  bdat_content_.clear();
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
  reset_transaction();
  helo_ = std::string(arg.substr(0, arg.find(' ')));
  extended_ = extended;
  enter(State::kReady);
  std::string greeting = config_.fqdn + " Hello [" + peer_ip_ + "]";
  if (!extended) {
    out_ += "250 " + greeting + "\r\n";  // RFC 2034 §3: no enhanced code on HELO/EHLO replies
    return;
  }
  std::vector<std::string> lines{greeting};
  if (config_.size) lines.push_back("SIZE " + std::to_string(config_.limits.max_message_size));
  if (config_.pipelining) lines.push_back("PIPELINING");
  if (config_.eight_bit_mime) lines.push_back("8BITMIME");
  if (config_.enhanced_status_codes) lines.push_back("ENHANCEDSTATUSCODES");
  if (config_.tls_available && !tls_) lines.push_back("STARTTLS");
  if (config_.smtputf8) lines.push_back("SMTPUTF8");
  if (config_.chunking) lines.push_back("CHUNKING");
  lines.push_back("HELP");
  for (size_t i = 0; i < lines.size(); ++i) {
    out_ += i + 1 < lines.size() ? "250-" : "250 ";
    out_ += lines[i];
    out_ += "\r\n";
  }
}

void Session::on_mail(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (mail_from_) return protocol_error(503, "5.5.1", "Sender already specified");
  std::string error;
  auto path = parse_path_argument(arg, "FROM", error);
  if (!path) return protocol_error(501, "5.1.7", error);
  bool smtputf8 = false;
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
    } else if (key == "BODY" && config_.eight_bit_mime) {
      if (value != "7BIT" && value != "8BITMIME" && !(value == "BINARYMIME" && false)) {
        return protocol_error(501, "5.5.4", "Invalid BODY parameter");
      }
    } else if (key == "SMTPUTF8" && config_.smtputf8 && value.empty()) {
      smtputf8 = true;
    } else {
      return protocol_error(555, "5.5.4", "Unsupported parameter " + key);
    }
  }
  if (has_non_ascii(path->address.str()) && !smtputf8) {
    return protocol_error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  mail_from_ = std::move(path->address);
  smtputf8_ = smtputf8;
  enter(State::kMail);
  reply(250, "2.1.0", "Sender OK");
}

void Session::on_rcpt(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (!mail_from_) return protocol_error(503, "5.5.1", "Need MAIL before RCPT");
  std::string error;
  auto path = parse_path_argument(arg, "TO", error);
  if (!path) return protocol_error(501, "5.1.3", error);
  if (!path->params.empty()) {
    return protocol_error(555, "5.5.4", "Unsupported parameter " + path->params.front().first);
  }
  Address& rcpt = path->address;
  if (has_non_ascii(rcpt.str()) && !smtputf8_) {
    return protocol_error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  if (rcpt.domain.empty()) rcpt.domain = config_.postmaster_domain;  // bare <postmaster>
  if (!config_.is_accepted_domain || !config_.is_accepted_domain(rcpt.domain)) {
    // No open relay: only clients the connector trusts may send beyond the accepted domains.
    if (!config_.may_relay) {
      return reply(550, "5.7.54", "Unable to relay: " + rcpt.domain + " is not an accepted domain");
    }
    if (!config_.has_route || !config_.has_route(rcpt.domain)) {
      return reply(550, "5.4.4", "Unable to route: no send connector serves " + rcpt.domain);
    }
  }
  bool duplicate = std::any_of(recipients_.begin(), recipients_.end(),
                               [&](const Address& a) { return same_address(a, rcpt); });
  if (!duplicate) {
    if (recipients_.size() >= config_.max_recipients) {
      return reply(452, "4.5.3", "Too many recipients");
    }
    recipients_.push_back(std::move(rcpt));
  }
  enter(State::kRcpt);
  reply(250, "2.1.5", "Recipient OK");
}

void Session::on_data(std::string_view arg) {
  if (!require_greeting() || !require_tls_first()) return;
  if (!arg.empty()) return protocol_error(501, "5.5.4", "DATA takes no arguments");
  if (!mail_from_) return protocol_error(503, "5.5.1", "Need MAIL before DATA");
  if (used_bdat_) return protocol_error(503, "5.5.1", "DATA cannot follow BDAT");
  if (recipients_.empty()) return protocol_error(554, "5.5.1", "No valid recipients");
  data_.emplace(config_.limits);
  enter(State::kData);
  out_ += "354 Start mail input; end with <CRLF>.<CRLF>\r\n";
}

void Session::finish_data() {
  using Problem = DataReader::Problem;
  Problem problem = data_->problem();
  if (problem == Problem::kNone) {
    bdat_content_ = std::move(data_->content());
    data_.reset();
    return hand_over();
  }
  reset_transaction();
  enter(State::kReady);
  switch (problem) {
    case Problem::kBareLineEnding:
      return reply(554, "5.6.0",
                   "Message refused: bare CR or LF in the content (RFC 5321 §2.3.8)");
    case Problem::kLineTooLong:
      return reply(554, "5.6.0", "Message refused: a line is longer than 1000 octets");
    case Problem::kTooBig:
      return reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    case Problem::kHeaderTooBig:
      return reply(552, "5.3.4", "Header size exceeds fixed maximum size");
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
  }
  used_bdat_ = true;
  bdat_return_ = state_;
  enter(State::kBdat);
  if (bdat_remaining_ == 0) finish_bdat_chunk();
}

void Session::finish_bdat_chunk() {
  if (bdat_error_ || bdat_too_big_) {
    // A refused chunk ends the transaction; later chunks of it meet "Need MAIL" (RFC 3030 §3).
    if (bdat_error_) {
      auto error = *std::exchange(bdat_error_, std::nullopt);
      protocol_error(error.code, error.enhanced, error.text);
    }
    bdat_too_big_ = false;
    if (state_ == State::kClosed) return;
    reset_transaction();
    return enter(bdat_return_ == State::kGreeting ? State::kGreeting : State::kReady);
  }
  if (!bdat_last_) {
    enter(State::kRcpt);
    return reply(250, "2.0.0", std::to_string(bdat_content_.size()) + " octets received");
  }
  hand_over();
}

void Session::hand_over() {
  Message m;
  m.helo = helo_;
  m.peer_ip = peer_ip_;
  m.protocol = !extended_ ? "SMTP" : (tls_ ? "ESMTPS" : "ESMTP");
  m.tls = tls_;
  m.mail_from = *mail_from_;
  m.recipients = std::move(recipients_);
  m.smtputf8 = smtputf8_;
  m.content = std::move(bdat_content_);
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
  in_.clear();
  in_pos_ = 0;
  enter(State::kStartTls);
}

void Session::tls_started(TlsInfo info) {
  // RFC 3207 §4.2: forget everything learned before the handshake, the client greets again.
  reset_transaction();
  helo_.clear();
  extended_ = false;
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

}  // namespace starling::smtp
