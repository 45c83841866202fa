// Fuzz target: smtp::Session, the server side, fed arbitrary client bytes through every state
// the sans-IO session has (after STARTTLS, inside AUTH, in DATA and BDAT, while queueing), with
// the driver answering as starlingd's does.
//
// Input: an option line (fuzz_support.hpp) of four hex digits for the connector's settings (bits
// below, the last digit is bits 0-3) and two for the seed of the piece sizes, then what the
// client sends. "=NEXT=" separates the client's
// turns: a STARTTLS answered 220 within a turn is followed by the handshake, and the rest of
// that turn is dropped (on the wire it would have been the TLS ClientHello).
//
// Checked besides memory and undefined behaviour: fed whole and in pieces, the session gives
// the same replies, trace and messages; replies are well-formed lines with nothing of the
// client's that could end them; an accepted message keeps the connector's rules (no open relay,
// send-as, RequireTLS, AUTH before MAIL), has an envelope without line ends (ASCII, or valid
// UTF-8 under SMTPUTF8), content with CRLF line ends only and within the size limit, and a
// Received header without control characters; the memory budget is all given back.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "smtp/received.hpp"
#include "smtp/session.hpp"

namespace starling::fuzz {
namespace {

using smtp::Address;
using smtp::RecipientVerdict;
using smtp::Session;
using smtp::SessionConfig;

constexpr std::string_view kAccepted = "fuzz.test";  // the accepted domain
constexpr std::string_view kRouted = "route.test";   // a send connector serves it
constexpr std::string_view kUser = "alice@fuzz.test", kPassword = "secret";

// Option bits: the connector's security settings,
enum : uint16_t {
  kTls = 1 << 0, kRequireTls = 1 << 1, kBasicAuth = 1 << 2, kAuthRequireTls = 1 << 3,
  kExchangeUsers = 1 << 4, kNoAnonymous = 1 << 5, kMayRelay = 1 << 6, kNameUser = 1 << 7,
  // extensions, limits and the driver's failures.
  kNoPipelining = 1 << 8, kNoChunking = 1 << 9, kNoSmtputf8 = 1 << 10, kNoEnhanced = 1 << 11,
  kNo8bitSize = 1 << 12, kSmallLimits = 1 << 13, kBudget = 1 << 14, kDriverFails = 1 << 15,
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

SessionConfig make_config(uint16_t o, std::shared_ptr<smtp::MemoryBudget> budget) {
  SessionConfig c;
  c.fqdn = "mx.fuzz.test";
  c.tls_available = o & kTls;
  c.require_tls = o & kRequireTls;
  c.basic_auth = o & (kBasicAuth | kAuthRequireTls);
  c.basic_auth_require_tls = o & kAuthRequireTls;
  c.exchange_users = o & kExchangeUsers;
  c.anonymous_users = !(o & kNoAnonymous);
  c.may_relay = o & kMayRelay;
  c.received_names_user = o & kNameUser;
  c.pipelining = !(o & kNoPipelining);
  c.chunking = !(o & kNoChunking);
  c.smtputf8 = !(o & kNoSmtputf8);
  c.enhanced_status_codes = !(o & kNoEnhanced);
  c.eight_bit_mime = c.size = !(o & kNo8bitSize);
  c.tarpit_interval = std::chrono::milliseconds(5);
  c.limits.max_message_size = 64 * 1024;
  if (o & kSmallLimits) {
    c.limits = {.max_message_size = 600, .max_header_size = 120, .max_line_length = 40};
    c.max_command_line = 64;
    c.max_recipients = 3;
    c.max_protocol_errors = 3;
    c.max_logon_failures = 2;
  }
  c.memory = std::move(budget);
  c.is_accepted_domain = [](std::string_view d) { return iequals(d, kAccepted); };
  c.has_route = [](std::string_view d) { return iequals(d, kRouted); };
  c.postmaster_domain = std::string(kAccepted);
  // A small directory: a group of two, a relayed recipient, an unknown one, mailboxes else.
  c.verify_recipient = [](const Address& a) {
    using Kind = RecipientVerdict::Kind;
    if (iequals(a.local_part, "group")) {
      return RecipientVerdict{Kind::kGroup, {{"bob", "fuzz.test"}, {"carol", "fuzz.test"}}};
    }
    if (iequals(a.local_part, "relay")) return RecipientVerdict{Kind::kRelay, {}};
    if (iequals(a.local_part, "nobody")) return RecipientVerdict{Kind::kUnknown, {}};
    return RecipientVerdict{Kind::kMailbox, {}};
  };
  return c;
}

smtp::AuthIdentity alice() { return {std::string(kUser), {"alice@fuzz.test", "sales@fuzz.test"}}; }

// What a run produced, compared between the whole and the split feed.
struct Run {
  std::string output;  // replies, with "<delay N>" where the driver waits
  std::string trace;
  std::vector<std::string> messages;
  bool closed = false;
  bool operator==(const Run&) const = default;
};

void check_replies(std::string_view out) {
  check(crlf_only(out), "a reply holds a bare CR or LF", out);
  for (size_t start = 0; start < out.size();) {
    size_t end = out.find("\r\n", start);
    check(end != std::string_view::npos, "output ends in the middle of a line", out.substr(start));
    std::string_view line = out.substr(start, end - start);
    start = end + 2;
    if (line.starts_with("<delay ")) continue;
    bool code = line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && std::isdigit(line[1]) &&
                std::isdigit(line[2]) && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
    check(code, "a reply line without a reply code", line);
  }
}

void check_message(const smtp::Message& m, uint16_t o, const SessionConfig& c) {
  auto check_address = [&](const Address& a) {
    std::string s = a.str();
    check(!has_line_end(s), "an envelope address holds CR or LF", s);
    if (m.smtputf8) {
      check(valid_utf8(s), "invalid UTF-8 in an envelope address under SMTPUTF8", s);
    } else {
      check(!smtp::has_non_ascii(s), "a non-ASCII envelope address without SMTPUTF8", s);
    }
  };
  check_address(m.mail_from);
  check(!m.recipients.empty(), "a message without recipients");
  check(m.recipients.size() <= 2 * c.max_recipients, "more recipients than allowed");
  bool authenticated = !m.authenticated_user.empty();
  bool relay_allowed = c.may_relay || (authenticated && c.exchange_users);
  for (const Address& r : m.recipients) {
    check_address(r);
    check(iequals(r.domain, kAccepted) || (relay_allowed && iequals(r.domain, kRouted)),
          "a recipient relayed without the right to relay", r.str());
  }
  check(!(o & kNoAnonymous) || c.may_relay || authenticated, "MAIL accepted without AUTH");
  check(!c.require_tls || m.tls.has_value(), "a message accepted in clear text under RequireTLS");
  if (authenticated && c.exchange_users && !c.may_relay && !m.mail_from.is_null()) {
    auto own = alice().send_as;
    bool ok = std::any_of(own.begin(), own.end(), [&](auto& a) { return iequals(a, m.mail_from.str()); });
    check(ok, "sent as someone else", m.mail_from.str());
  }
  check(crlf_only(m.content), "message content with a bare CR or LF", m.content);
  check(m.content.size() <= c.limits.max_message_size, "message content over the size limit");
  // DSN requests: what the queue file takes (RFC 3461 syntax), one per recipient when any.
  check(m.dsn_ret.empty() || m.dsn_ret == "FULL" || m.dsn_ret == "HDRS", "a bad RET kept", m.dsn_ret);
  check(m.dsn_envid.empty() || smtp::envid_problem(m.dsn_envid).empty(), "a bad ENVID kept", m.dsn_envid);
  check(m.dsn.empty() || m.dsn.size() == m.recipients.size(), "DSN requests not one per recipient");
  for (const smtp::DsnRequest& d : m.dsn) {
    check(d.notify == 0 || smtp::valid_notify(d.notify), "a bad NOTIFY kept");
    check(d.orcpt.empty() || smtp::orcpt_problem(d.orcpt).empty(), "a bad ORCPT kept", d.orcpt);
  }

  std::string received = smtp::format_received(m, c.fqdn, "0123456789ABCDEF", 0, c.received_names_user);
  check(received.starts_with("Received: ") && received.ends_with("\r\n"), "a malformed Received header", received);
  for (size_t i = 0; i < received.size(); ++i) {
    unsigned char ch = static_cast<unsigned char>(received[i]);
    if (ch == '\r') {
      bool fold = received[i + 1] == '\n' && (i + 2 == received.size() || received[i + 2] == '\t' ||
                                               received[i + 2] == ' ');
      check(fold, "a line end in the Received header that is no folding", received);
      ++i;
    } else {
      check(ch == '\t' || (ch >= 0x20 && ch != 0x7f), "a control character in the Received header", received);
    }
  }
}

Run play(std::string_view client, uint16_t o, Pieces pieces, const SessionConfig& config) {
  Session s(config, "192.0.2.7");
  Run r;
  s.trace = [&r](char direction, std::string_view line) {
    // Information lines may describe how the bytes arrived ("30 octets sent after STARTTLS
    // discarded": what was pipelined behind it so far), so only the lines sent and received
    // must be the same however the input is cut.
    if (direction == '*') return;
    r.trace += direction;
    r.trace += line;
    r.trace += '\n';
  };
  bool fails = o & kDriverFails;
  auto drain = [&] {
    while (s.has_output()) {
      if (auto d = s.take_delay(); d.count() > 0) r.output += "<delay " + std::to_string(d.count()) + ">\r\n";
      r.output += s.take_output();
    }
  };
  auto settle = [&] {
    for (;;) {
      drain();
      if (auto m = s.take_message()) {
        check_message(*m, o, config);
        r.messages.push_back(m->mail_from.str() + "\n" + m->content);
        // As the daemon's driver does: the message's memory goes back before the session goes
        // on, since going on may read the next, pipelined message at once.
        m.reset();
        if (fails) {
          s.message_failed();
        } else {
          s.message_queued("Q" + std::to_string(r.messages.size()));
        }
      } else if (auto a = s.take_auth_request()) {
        if (fails) {
          s.auth_unavailable();
        } else if (iequals(a->user, kUser) && a->password == kPassword) {
          s.auth_succeeded(alice());
        } else {
          s.auth_failed();
        }
      } else {
        return;
      }
    }
  };
  s.start();
  for (std::string_view turn : turns(client)) {
    while (!turn.empty() && !s.closing() && !s.wants_tls()) {
      size_t n = std::min(turn.size(), pieces.next());
      s.receive(turn.substr(0, n));
      turn.remove_prefix(n);
      settle();
    }
    if (s.wants_tls()) {
      if (fails) {
        s.tls_failed();
      } else {
        s.tls_started({"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
      }
      settle();
    }
    if (s.closing()) break;
  }
  drain();
  r.closed = s.closing();
  if (!r.closed) {
    s.timeout();
    drain();
    check(s.closing(), "a session that does not close on timeout");
  }
  check_replies(r.output);
  return r;
}

}  // namespace
}  // namespace starling::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling::fuzz;
  Input in(data, size);
  auto o = static_cast<uint16_t>(in.hex(4));
  auto seed = static_cast<uint8_t>(in.hex(2));
  Run runs[2];
  for (int i = 0; i < 2; ++i) {
    auto budget = o & kBudget ? std::make_shared<starling::smtp::MemoryBudget>(2000) : nullptr;
    runs[i] = play(in.rest, o, i == 0 ? Pieces::whole() : Pieces(seed), make_config(o, budget));
    check(!budget || budget->used() == 0, "receive memory not given back after the session");
  }
  show("replies", runs[0].output);
  show("trace", runs[0].trace);
  check_same(runs[0].output, runs[1].output, "fed in pieces, the session answers differently");
  check_same(runs[0].trace, runs[1].trace, "fed in pieces, the session's trace differs");
  check(runs[0] == runs[1], "fed in pieces, the session takes other messages");
  return 0;
}
