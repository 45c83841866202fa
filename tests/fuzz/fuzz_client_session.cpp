// Fuzz target: smtp::ClientSession, the outbound side, fed arbitrary replies from a server (or
// an LMTP agent) while it carries up to two messages, with the driver acting as starlingd's.
//
// Input: an option line (fuzz_support.hpp) of two hex digits for the client's settings, two for
// the messages and two for the seed of the piece sizes (bits below; the second digit of a pair
// is bits 0-3), then what the server sends. "=NEXT=" separates the server's turns; between two
// turns the driver does what the session asks: the TLS handshake, the next message, QUIT. At the
// end of the input the connection is lost (or times out).
//
// Checked besides memory and undefined behaviour: fed whole and in pieces, the client sends the
// same commands and reaches the same outcomes; its commands never carry a bare CR or LF, nor
// an address with a line break in it; every message sent gets exactly one outcome with one
// reply per recipient, and failure() is a 4xx or 5xx; no mail goes out without TLS under
// RequireTLS, no credentials in clear text under BasicAuthRequireTLS, no STARTTLS when ignored.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "smtp/client_session.hpp"

namespace starling::fuzz {
namespace {

using smtp::ClientConfig;
using smtp::ClientSession;
using smtp::OutboundMessage;

enum : uint32_t {
  // The client (first pair of digits): bits 0-1 choose the TLS policy.
  kTlsMask = 3, kNoTlsAvailable = 1 << 2, kAuth = 1 << 3, kAuthRequireTls = 1 << 4, kLmtp = 1 << 5,
  kHandshakeFails = 1 << 6, kTimesOut = 1 << 7,
  // The messages (second pair).
  kUtf8 = 1 << 8, kEightBit = 1 << 9, kNullSender = 1 << 10, kThreeRecipients = 1 << 11,
  kSecondMessage = 1 << 12, kLarge = 1 << 13, kDotsAndBareEnds = 1 << 14, kBadAddress = 1 << 15,
};

// Only an address given to the client holds this; it must never reach the wire.
constexpr std::string_view kInjected = "INJECTED";

ClientConfig make_config(uint32_t o) {
  ClientConfig c;
  c.helo_name = "out.fuzz.test";
  static constexpr ClientConfig::Tls kPolicies[] = {
      ClientConfig::Tls::kIgnore, ClientConfig::Tls::kOpportunistic, ClientConfig::Tls::kRequired,
      ClientConfig::Tls::kOpportunistic};
  c.tls = kPolicies[o & kTlsMask];
  c.tls_available = !(o & kNoTlsAvailable);
  if (o & kAuth) c.auth = smtp::ClientCredentials{"relay@fuzz.test", "secret"};
  c.auth_require_tls = o & kAuthRequireTls;
  c.lmtp = o & kLmtp;
  return c;
}

std::vector<OutboundMessage> make_messages(uint32_t o) {
  OutboundMessage m;
  m.mail_from = o & kNullSender ? "" : o & kUtf8 ? "j\xc3\xb6rg@example.org" : "sender@example.org";
  m.recipients = {o & kUtf8 ? "b\xc3\xb8" "b@example.net" : "bob@example.net"};
  if (o & kThreeRecipients) {
    m.recipients.push_back("carol@example.net");
    m.recipients.push_back(o & kBadAddress ? "x@example.net>\r\nRSET " + std::string(kInjected) : "dave@example.net");
  }
  m.data = "Subject: fuzz\r\n\r\nHello\r\n";
  if (o & kDotsAndBareEnds) m.data += ".\r\n..\r\nbare\nends\r.\n.\r";
  if (o & kEightBit) m.data += "caf\xc3\xa9\r\n";
  if (o & kLarge) m.data += std::string(1500, 'x') + "\r\n";
  m.smtputf8 = o & kUtf8;
  m.eight_bit = o & kEightBit;
  std::vector<OutboundMessage> out{m};
  if (o & kSecondMessage) {
    m.recipients = {"erin@example.net"};
    m.data = "Subject: second\r\n\r\n.\r\n";
    out.push_back(m);
  }
  return out;
}

std::string text_of(const smtp::Reply& r) { return r.text(); }

// What a run produced, compared between the whole and the split feed.
struct Run {
  std::string output;    // the client's commands
  std::string outcomes;  // one line per reply of every outcome, then the failure
  std::string trace;
  bool operator==(const Run&) const = default;
};

Run play(std::string_view server, uint32_t o, Pieces pieces) {
  ClientConfig config = make_config(o);
  std::vector<OutboundMessage> messages = make_messages(o);
  ClientSession s(config);
  Run r;
  s.trace = [&r](char direction, std::string_view line) {
    // How much was dropped before the handshake depends on how the bytes arrived; not what.
    if (direction == '<' && line.starts_with("[")) return;
    r.trace += direction;
    r.trace += line;
    r.trace += '\n';
  };
  size_t sent = 0, outcomes = 0;
  auto drain = [&] {
    std::string out = s.take_output();
    check(crlf_only(out), "a command with a bare CR or LF", out);
    check(out.find(kInjected) == std::string::npos, "an address with a line break reached the wire", out);
    for (size_t at = 0; (at = out.find("AUTH ", at)) != std::string::npos; ++at) {
      if (at != 0 && out[at - 1] != '\n') continue;
      check(!config.auth_require_tls || s.in_tls(), "credentials sent in clear text under BasicAuthRequireTLS", out);
    }
    check(config.tls != ClientConfig::Tls::kIgnore || out.find("STARTTLS") == std::string::npos,
          "STARTTLS sent although ignored", out);
    r.output += out;
  };
  auto collect = [&] {
    auto outcome = s.take_outcome();
    if (!outcome) return;
    check(outcomes < sent, "an outcome for no message");
    const OutboundMessage& m = messages[outcomes++];
    check(outcome->recipients.size() == m.recipients.size(), "an outcome without one reply per recipient");
    for (const smtp::Reply& reply : outcome->recipients) {
      check(reply.code >= 200 && reply.code <= 599, "a recipient's reply code out of range", text_of(reply));
      r.outcomes += text_of(reply) + "\n";
    }
    r.outcomes += outcome->message_level ? "message level\n" : "\n";
  };
  // Between the server's turns: what a driver does when the session waits for it.
  auto act = [&] {
    collect();
    if (s.wants_tls()) {
      if (o & kHandshakeFails) {
        s.tls_failed("handshake failed (fuzz)");
      } else {
        s.tls_started();
      }
    }
    while (s.ready()) {
      if (sent == messages.size()) {
        s.quit();
        break;
      }
      check(config.tls != ClientConfig::Tls::kRequired || s.in_tls(), "ready to send without TLS under RequireTLS");
      s.send(messages[sent++]);
      drain();
      collect();
    }
    drain();
  };
  for (std::string_view turn : turns(server)) {
    while (!turn.empty() && !s.closed()) {
      size_t n = std::min(turn.size(), pieces.next());
      s.receive(turn.substr(0, n));
      turn.remove_prefix(n);
      drain();
    }
    if (s.closed()) break;
    act();
  }
  if (!s.closed()) {
    if (o & kTimesOut) {
      s.timed_out();
    } else {
      s.peer_closed();
    }
  }
  drain();
  collect();
  check(s.closed(), "not closed after the connection ended");
  check(outcomes == sent, "a message sent without an outcome");
  if (const auto& f = s.failure()) {
    check(f->code >= 400 && f->code <= 599, "a failure that is no 4xx or 5xx", text_of(*f));
    r.outcomes += "failure " + text_of(*f) + "\n";
  }
  return r;
}

}  // namespace
}  // namespace starling::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace starling::fuzz;
  Input in(data, size);
  uint32_t o = in.hex(2);
  o |= in.hex(2) << 8;
  auto seed = static_cast<uint8_t>(in.hex(2));
  Run whole = play(in.rest, o, Pieces::whole());
  Run split = play(in.rest, o, Pieces(seed));
  show("commands", whole.output);
  show("outcomes", whole.outcomes);
  show("trace", whole.trace);
  check_same(whole.output, split.output, "fed in pieces, the client sends other commands");
  check_same(whole.outcomes, split.outcomes, "fed in pieces, the client reaches other outcomes");
  check_same(whole.trace, split.trace, "fed in pieces, the client's trace differs");
  return 0;
}
