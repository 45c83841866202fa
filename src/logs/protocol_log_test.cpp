#include "logs/protocol_log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace starling::logs {
namespace {

// The fields of one CSV line (quoted fields unquoted), for the checks below.
std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\n') {
      out.back() += c;
    }
  }
  return out;
}

struct Captured {
  std::vector<std::string> lines;
  std::shared_ptr<const ProtocolLog> log(ProtocolLogKind kind) {
    return std::make_shared<ProtocolLog>(kind, "EX1", [this](std::string l) { lines.push_back(std::move(l)); });
  }
  // event + data of every line, e.g. "<AUTH PLAIN ****".
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      auto f = fields(l);
      out.push_back(f.at(6) + f.at(7));
    }
    return out;
  }
};

TEST(ProtocolRecord, FieldsInExchangeOrderQuotedWhereNeeded) {
  std::string out;
  append_record(out, {1796161457123456, "EX1\\Default EX1", "08DF0000000000AB", 7, "10.0.0.1:25",
                      "10.0.0.2:40000", ProtocolEvent::kSent, "220 mx Hello, \"you\"", ""});
  EXPECT_EQ(out, "2026-12-01T21:44:17.123Z,EX1\\Default EX1,08DF0000000000AB,7,10.0.0.1:25,10.0.0.2:40000,>,"
                 "\"220 mx Hello, \"\"you\"\"\",\n");
}

TEST(ProtocolLogHeader, NamesTheFieldsAndTheDirection) {
  EXPECT_NE(protocol_log_header(ProtocolLogKind::kReceive).find("#Log-type: SMTP Receive Protocol Log\n"),
            std::string::npos);
  EXPECT_NE(protocol_log_header(ProtocolLogKind::kSend).find(
                "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,"
                "event,data,context\n"),
            std::string::npos);
  EXPECT_EQ(protocol_log_prefix(ProtocolLogKind::kSend), "SEND");
}

TEST(Printable, ControlCharactersAndBrokenUtf8BecomeQuestionMarks) {
  EXPECT_EQ(printable(std::string("EHLO a\r\nMAIL\x1b[2J\0x\x7f", 19)), "EHLO a??MAIL?[2J?x?");
  EXPECT_EQ(printable("RCPT TO:<j\xc3\xbcrgen@example.org>"), "RCPT TO:<j\xc3\xbcrgen@example.org>");
  EXPECT_EQ(printable("a\xc3"), "a?");              // cut sequence
  EXPECT_EQ(printable("\xc0\xaf\xed\xa0\x80"), "?????");  // overlong '/', a surrogate
  EXPECT_EQ(printable(std::string(5000, 'x')), std::string(kMaxDataLength, 'x') + "...");
}

TEST(FormatEndpoint, BracketsIpv6) {
  EXPECT_EQ(format_endpoint("127.0.0.1", 25), "127.0.0.1:25");
  EXPECT_EQ(format_endpoint("::1", 587), "[::1]:587");
}

TEST(ProtocolSession, SequenceNumbersCountFromZeroAndSessionIdsDiffer) {
  Captured c;
  ProtocolSession a(c.log(ProtocolLogKind::kReceive), "Default EX1", "10.0.0.1:25", "10.0.0.2:5000");
  ProtocolSession b(c.log(ProtocolLogKind::kReceive), "Default EX1", "10.0.0.1:25", "10.0.0.3:5000");
  a.connected();
  a.sent("220 mx ready");
  b.connected();
  a.received("EHLO client");
  a.trace('=', "Greeting -> Ready");  // state changes are not logged
  a.disconnected("Remote");
  ASSERT_EQ(c.lines.size(), 5u);
  std::vector<std::string> seq_a;
  for (size_t i : {0, 1, 3, 4}) {
    auto f = fields(c.lines[i]);
    ASSERT_EQ(f.size(), 9u) << c.lines[i];
    EXPECT_EQ(f[1], "EX1\\Default EX1");
    EXPECT_EQ(f[2], a.session_id());
    EXPECT_EQ(f[4], "10.0.0.1:25");
    EXPECT_EQ(f[5], "10.0.0.2:5000");
    seq_a.push_back(f[3]);
  }
  EXPECT_EQ(seq_a, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(fields(c.lines[2])[3], "0");
  EXPECT_NE(a.session_id(), b.session_id());
  EXPECT_EQ(a.session_id().size(), 16u);
  EXPECT_EQ(fields(c.lines[4])[8], "Remote");
}

TEST(ProtocolSession, SendConnectorIdIsTheName) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kSend), "Outbound", "10.0.0.1:40000", "10.0.0.9:25");
  s.connected();
  EXPECT_EQ(fields(c.lines[0])[1], "Outbound");
}

TEST(ProtocolSession, MasksAuthPlainInitialResponse) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received("auth plain AGFsaWNlAHNlY3JldA==");
  s.sent("235 2.7.0 Authentication successful");
  s.received("MAIL FROM:<alice@example.org>");
  EXPECT_EQ(c.events(), (std::vector<std::string>{"<auth plain ****", ">235 2.7.0 Authentication successful",
                                                  "<MAIL FROM:<alice@example.org>"}));
}

TEST(ProtocolSession, MasksAuthLoginContinuations) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received("AUTH LOGIN");
  s.sent("334 VXNlcm5hbWU6");
  s.received("YWxpY2U=");
  s.sent("334 UGFzc3dvcmQ6");
  s.received("c2VjcmV0");
  s.sent("535 5.7.8 Authentication credentials invalid");
  s.received("QUIT");
  EXPECT_EQ(c.events(), (std::vector<std::string>{"<AUTH LOGIN", ">334 VXNlcm5hbWU6", "<****",
                                                  ">334 UGFzc3dvcmQ6", "<****",
                                                  ">535 5.7.8 Authentication credentials invalid", "<QUIT"}));
}

TEST(ProtocolSession, MasksPlainContinuationAndKeepsCancel) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received("AUTH PLAIN");
  s.sent("334 ");
  s.received("AGFsaWNlAHNlY3JldA==");
  s.sent("235 2.7.0 Authentication successful");
  s.received("AUTH LOGIN");
  s.sent("334 VXNlcm5hbWU6");
  s.received("*");
  EXPECT_EQ(c.events()[2], "<****");
  EXPECT_EQ(c.events()[6], "<*");
}

// A SASL answer may read like a command ("HELP" is the base64 of three octets): after 334 it is
// masked whatever it looks like.
TEST(ProtocolSession, MasksContinuationsThatLookLikeCommands) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received("AUTH LOGIN");
  s.sent("334 VXNlcm5hbWU6");
  s.received("HELP");
  s.sent("334 UGFzc3dvcmQ6");
  s.received("QUIT");
  s.sent("535 5.7.8 Authentication credentials invalid");
  s.received("QUIT");
  EXPECT_EQ(c.events(), (std::vector<std::string>{"<AUTH LOGIN", ">334 VXNlcm5hbWU6", "<****",
                                                  ">334 UGFzc3dvcmQ6", "<****",
                                                  ">535 5.7.8 Authentication credentials invalid", "<QUIT"}));
}

// A pipelining client whose AUTH was refused still sends its SASL lines: they are no commands.
TEST(ProtocolSession, MasksSaslLinesSentWithoutWaitingFor334) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received("AUTH LOGIN");
  s.sent("538 5.7.11 Encryption required for requested authentication mechanism");
  s.received("YWxpY2U=");
  s.sent("500 5.5.2 Command not recognized");
  s.received("c2VjcmV0");
  s.sent("500 5.5.2 Command not recognized");
  s.received("NOOP");
  s.received("bm90IGEgc2VjcmV0");  // past the AUTH exchange: an ordinary unknown command
  EXPECT_EQ(c.events()[2], "<****");
  EXPECT_EQ(c.events()[4], "<****");
  EXPECT_EQ(c.events()[6], "<NOOP");
  EXPECT_EQ(c.events()[7], "<bm90IGEgc2VjcmV0");
}

// On the send side the client is this server: its lines are '>' and the peer's 334 are '<'.
TEST(ProtocolSession, SendLogMasksOurOwnAuthLines) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kSend), "Outbound", "l", "r");
  s.sent("AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=");
  s.received("235 2.7.0 OK");
  s.sent("AUTH LOGIN");
  s.received("334 VXNlcm5hbWU6");
  s.sent("dXNlcg==");
  s.received("334 UGFzc3dvcmQ6");
  s.sent("cGFzc3dvcmQ=");
  for (const std::string& line : c.lines) {
    EXPECT_EQ(line.find("cGFzc3dvcmQ"), std::string::npos) << line;
    EXPECT_EQ(line.find("AHVzZXIA"), std::string::npos) << line;
    EXPECT_EQ(line.find("dXNlcg"), std::string::npos) << line;
  }
  EXPECT_EQ(c.events()[0], ">AUTH PLAIN ****");
}

TEST(ProtocolSession, ClientLinesAreMadePrintable) {
  Captured c;
  ProtocolSession s(c.log(ProtocolLogKind::kReceive), "R", "l", "r");
  s.received(std::string("HELO a\x1b]0;x\x07\r\nQUIT", 18));
  s.information("authenticated as alice@example.org", "authenticated");
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.events()[0], "<HELO a?]0;x???QUIT");
  EXPECT_EQ(c.lines[0].find('\r'), std::string::npos);
  EXPECT_EQ(c.lines[0].back(), '\n');
  EXPECT_EQ(c.lines[0].find('\n'), c.lines[0].size() - 1);
  EXPECT_EQ(fields(c.lines[1])[8], "authenticated");
}

TEST(ProtocolLogRegistry, UnsetByDefaultAndReplaceable) {
  EXPECT_EQ(protocol_log(ProtocolLogKind::kSend), nullptr);
  Captured c;
  set_protocol_log(ProtocolLogKind::kSend, c.log(ProtocolLogKind::kSend));
  EXPECT_NE(protocol_log(ProtocolLogKind::kSend), nullptr);
  EXPECT_EQ(protocol_log(ProtocolLogKind::kReceive), nullptr);
  set_protocol_log(ProtocolLogKind::kSend, nullptr);
  EXPECT_EQ(protocol_log(ProtocolLogKind::kSend), nullptr);
}

}  // namespace
}  // namespace starling::logs
