// Dialog transcripts run in memory against smtp::ClientSession. The peer's bytes are fed whole,
// byte by byte and in 20 random splits, and once more "in lock step" (each run of S: lines only
// after the client has sent everything written before it, as a real server would answer): the
// client's output, outcomes and failures must be the same every time.
//
// Transcript format (src/smtp/client_transcripts/*.txt), one item per line:
//   # comment
//   !helo=NAME  !tls=ignore|opportunistic|required  !no_tls_available  !auth=USER:PASSWORD
//   !auth_require_tls  !lmtp (LMTP mode, and TLS ignored as the LMTP driver sets it; a later
//   !tls= overrides)                         client configuration (before anything else)
//   S: line        the peer (server) sends line + CRLF
//   S~ bytes       the peer sends raw bytes, with \r \n \t \\ escapes, nothing appended
//   C: line        the client must have sent line + CRLF by the next = or ? item or the end
//   C~ bytes       raw client bytes, escapes as in S~
//   =send from=ADDR to=A[,B...] [utf8] [8bit] [data=BYTES]   the driver calls send(); ADDR may
//                  be empty (null path); data= (escapes as in S~) takes the rest of the line,
//                  default "Subject: test\r\n\r\nHello\r\n"
//   =tls           wants_tls() must be true; the handshake succeeds (tls_started())
//   =tls_failed REASON   =quit   =timeout   =eof (peer_closed())
//   ?outcome CODE... [message]   take_outcome() has these codes in recipient order;
//                  "message" means message_level is true (false otherwise)
//   ?reply N TEXT  recipient N (from 1) of the last ?outcome has Reply::text() == TEXT
//   ?no_outcome    take_outcome() is empty
//   ?failure none | ?failure TEXT   failure() is empty / its text() starts with TEXT
//   ?state NAME    state_name(state()) == NAME
//   ?tls_missing yes|no   ?in_tls yes|no
// Each = and ? item is applied once all the S: bytes before it are fed; then the client's whole
// output so far must equal every C: line before it.
#include "smtp/client_session.hpp"

#include <gtest/gtest.h>

#include "testing/unescape.hpp"

#include "smtp/data_reader.hpp"

#include <filesystem>
#include <fstream>
#include <random>

namespace starling::smtp {
namespace {

using testing::unescape;

ClientConfig default_config() {
  ClientConfig c;
  c.helo_name = "client.example";
  c.tls = ClientConfig::Tls::kOpportunistic;
  c.tls_available = true;
  return c;
}

void apply_setting(ClientConfig& c, const std::string& key, const std::string& value) {
  if (key == "helo") c.helo_name = value;
  else if (key == "tls" && value == "ignore") c.tls = ClientConfig::Tls::kIgnore;
  else if (key == "tls" && value == "opportunistic") c.tls = ClientConfig::Tls::kOpportunistic;
  else if (key == "tls" && value == "required") c.tls = ClientConfig::Tls::kRequired;
  else if (key == "no_tls_available") c.tls_available = false;
  else if (key == "auth" && value.find(':') != std::string::npos) {
    c.auth = ClientCredentials{value.substr(0, value.find(':')), value.substr(value.find(':') + 1)};
  } else if (key == "auth_require_tls") c.auth_require_tls = true;
  else if (key == "lmtp") c.lmtp = true, c.tls = ClientConfig::Tls::kIgnore;
  else FAIL() << "unknown setting " << key << "=" << value;
}

struct Item {
  enum class Kind { kPeer, kAction, kCheck } kind;
  std::string text;      // kPeer: the bytes; otherwise the verb
  std::string argument;  // the rest of the line after the verb
  std::string client;    // every C: byte before this item
  int line = 0;
};

struct Transcript {
  ClientConfig config = default_config();
  std::vector<Item> items;
  std::string client;  // every C: byte
};

Transcript load(const std::filesystem::path& path) {
  Transcript t;
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::string line;
  int number = 0;
  bool client_since_peer = true;  // a C: line ended the last run of S: lines
  auto add = [&](Item::Kind kind, std::string text, std::string argument) {
    t.items.push_back({kind, std::move(text), std::move(argument), t.client, number});
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::string rest = line.size() > 3 ? line.substr(3) : "";
    if (line[0] == '!') {
      size_t eq = line.find('=');
      apply_setting(t.config, line.substr(1, eq == std::string::npos ? eq : eq - 1),
                    eq == std::string::npos ? "" : line.substr(eq + 1));
    } else if (line.starts_with("S: ") || line.starts_with("S~ ")) {
      std::string bytes = line[1] == ':' ? rest + "\r\n" : unescape(rest);
      if (!client_since_peer && !t.items.empty() && t.items.back().kind == Item::Kind::kPeer) {
        t.items.back().text += bytes;
      } else {
        add(Item::Kind::kPeer, bytes, "");
      }
      client_since_peer = false;
    } else if (line.starts_with("C: ") || line == "C:") {
      t.client += rest + "\r\n";
      client_since_peer = true;
    } else if (line.starts_with("C~ ")) {
      t.client += unescape(rest);
      client_since_peer = true;
    } else if (line[0] == '=' || line[0] == '?') {
      size_t space = line.find(' ');
      add(line[0] == '=' ? Item::Kind::kAction : Item::Kind::kCheck, line.substr(0, space),
          space == std::string::npos ? "" : line.substr(space + 1));
      client_since_peer = true;
    } else {
      ADD_FAILURE() << path << ":" << number << ": cannot read line: " << line;
    }
  }
  return t;
}

OutboundMessage parse_send(std::string_view arg) {
  OutboundMessage m;
  m.data = "Subject: test\r\n\r\nHello\r\n";
  while (!arg.empty()) {
    if (arg.starts_with("data=")) {
      m.data = unescape(arg.substr(5));
      break;
    }
    size_t space = arg.find(' ');
    std::string_view word = arg.substr(0, space);
    arg.remove_prefix(space == std::string_view::npos ? arg.size() : space + 1);
    if (word.starts_with("from=")) {
      m.mail_from = std::string(word.substr(5));
    } else if (word.starts_with("to=")) {
      std::string_view list = word.substr(3);
      while (!list.empty()) {
        size_t comma = list.find(',');
        m.recipients.emplace_back(list.substr(0, comma));
        list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
      }
    } else if (word == "utf8") {
      m.smtputf8 = true;
    } else if (word == "8bit") {
      m.eight_bit = true;
    } else {
      ADD_FAILURE() << "unknown =send word " << word;
    }
  }
  return m;
}

std::string codes_of(const Outcome& o) {
  std::string out;
  for (const Reply& r : o.recipients) out += (out.empty() ? "" : " ") + std::to_string(r.code);
  if (o.message_level) out += " message";
  return out;
}

// Plays a transcript. `lock_step` feeds each run of S: lines alone and checks the output before
// it; otherwise the S: bytes between two = or ? items are fed in pieces of next_piece() octets.
// Returns false at the first mismatch (reported with `how`), so errors do not cascade.
template <typename NextPiece>
bool play(const Transcript& t, const std::string& how, bool lock_step, NextPiece next_piece) {
  ClientSession s(t.config);
  std::vector<std::string> traced;
  s.trace = [&](char dir, std::string_view line) { traced.push_back(dir + std::string(line)); };
  std::string out;
  std::optional<Outcome> last;
  std::string pending;  // S: bytes not yet fed
  auto feed = [&] {
    std::string_view data = pending;
    while (!data.empty()) {
      size_t n = std::min(data.size(), next_piece());
      s.receive(data.substr(0, n));
      data.remove_prefix(n);
      out += s.take_output();
    }
    pending.clear();
  };
  auto output_is = [&](const std::string& expected, int line) {
    EXPECT_EQ(out, expected) << how << ", at line " << line;
    return out == expected;
  };
  for (const Item& item : t.items) {
    std::string where = how + ", line " + std::to_string(item.line) + " " + item.text;
    if (item.kind == Item::Kind::kPeer) {
      if (lock_step) {
        if (!output_is(item.client, item.line)) return false;
        s.receive(item.text);
        out += s.take_output();
      } else {
        pending += item.text;
      }
      continue;
    }
    feed();
    if (!output_is(item.client, item.line)) return false;
    const std::string& v = item.text;
    const std::string& a = item.argument;
    bool ok = true;
    if (v == "=send") {
      EXPECT_TRUE(s.ready()) << where << ": state " << state_name(s.state());
      if (!s.ready()) return false;
      s.send(parse_send(a));
    } else if (v == "=tls") {
      EXPECT_TRUE(s.wants_tls()) << where;
      if (!s.wants_tls()) return false;
      s.tls_started();
    } else if (v == "=tls_failed") {
      s.tls_failed(a);
    } else if (v == "=quit") {
      s.quit();
    } else if (v == "=timeout") {
      s.timed_out();
    } else if (v == "=eof") {
      s.peer_closed();
    } else if (v == "?outcome") {
      last = s.take_outcome();
      EXPECT_TRUE(last) << where;
      if (!last) return false;
      EXPECT_EQ(codes_of(*last), a) << where;
      ok = codes_of(*last) == a;
    } else if (v == "?reply") {
      size_t n = std::stoul(a);
      std::string text = a.substr(a.find(' ') + 1);
      EXPECT_TRUE(last && n >= 1 && n <= last->recipients.size()) << where;
      if (!last || n < 1 || n > last->recipients.size()) return false;
      EXPECT_EQ(last->recipients[n - 1].text(), text) << where;
      ok = last->recipients[n - 1].text() == text;
    } else if (v == "?no_outcome") {
      auto o = s.take_outcome();
      EXPECT_FALSE(o) << where << ": " << codes_of(*o);
      ok = !o;
    } else if (v == "?failure") {
      if (a == "none") {
        EXPECT_FALSE(s.failure()) << where << ": " << s.failure()->text();
        ok = !s.failure();
      } else {
        EXPECT_TRUE(s.failure()) << where;
        if (!s.failure()) return false;
        EXPECT_TRUE(s.failure()->text().starts_with(a)) << where << ": " << s.failure()->text();
        ok = s.failure()->text().starts_with(a);
      }
    } else if (v == "?state") {
      EXPECT_EQ(state_name(s.state()), a) << where;
      ok = state_name(s.state()) == a;
    } else if (v == "?tls_missing") {
      EXPECT_EQ(s.tls_was_required_and_missing(), a == "yes") << where;
      ok = s.tls_was_required_and_missing() == (a == "yes");
    } else if (v == "?in_tls") {
      EXPECT_EQ(s.in_tls(), a == "yes") << where;
      ok = s.in_tls() == (a == "yes");
    } else {
      ADD_FAILURE() << where << ": unknown item";
      return false;
    }
    out += s.take_output();
    if (!ok) return false;
  }
  feed();
  if (!output_is(t.client, -1)) return false;
  // Secrets never reach the protocol log (it is written to disk at Verbose level).
  if (t.config.auth) {
    for (const std::string& line : traced) {
      EXPECT_EQ(line.find(t.config.auth->password), std::string::npos) << how << ": " << line;
      EXPECT_EQ(line.find("AUTH PLAIN A"), std::string::npos) << how << ": " << line;
    }
  }
  return true;
}

class ClientTranscriptTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClientTranscriptTest, SameResultWholeByteByByteRandomSplitsAndLockStep) {
  Transcript t = load(std::filesystem::path(STARLING_CLIENT_TRANSCRIPTS_DIR) / GetParam());
  ASSERT_FALSE(t.items.empty());
  play(t, "lock step", true, [] { return std::numeric_limits<size_t>::max(); });
  play(t, "whole", false, [] { return std::numeric_limits<size_t>::max(); });
  play(t, "byte by byte", false, [] { return size_t{1}; });
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<size_t> dist(1, 64);
    play(t, "in random splits, seed " + std::to_string(seed), false, [&] { return dist(rng); });
  }
}

std::vector<std::string> transcript_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(STARLING_CLIENT_TRANSCRIPTS_DIR)) {
    if (e.path().extension() == ".txt") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(ClientTranscripts, ClientTranscriptTest,
                         ::testing::ValuesIn(transcript_names()), [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.size() - 4);
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

// ---- Content transformations -------------------------------------------------------------

TEST(DotStuff, Table) {
  struct Case {
    std::string in, normalized;
  };
  std::vector<Case> cases{
      {"", ""},
      {"a", "a\r\n"},
      {"a\r\n", "a\r\n"},
      {"\n", "\r\n"},
      {"\r", "\r\n"},
      {"\r\r\n", "\r\n\r\n"},
      {"\n\r", "\r\n\r\n"},
      {"a\n.\nb", "a\r\n.\r\nb\r\n"},
      {".", ".\r\n"},
      {"x.\r\n.y", "x.\r\n.y\r\n"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(normalize_line_ends(c.in), c.normalized) << c.in;
  }
  EXPECT_EQ(dot_stuff(""), ".\r\n");
  EXPECT_EQ(dot_stuff("."), "..\r\n.\r\n");
  EXPECT_EQ(dot_stuff("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
  EXPECT_EQ(dot_stuff("x.\r\n.y\r\n..\r\n"), "x.\r\n..y\r\n...\r\n.\r\n");
  EXPECT_EQ(dot_stuff("a\r.b"), "a\r\n..b\r\n.\r\n");
}

// Whatever the queued content, the server's own strict DATA reader (which refuses every bare CR
// or LF) reads dot_stuff() back as exactly normalize_line_ends(), ending where it should.
TEST(DotStuff, ReadBackByTheStrictDataReader) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab..\r\n\n ";
  for (int round = 0; round < 2000; ++round) {
    std::string in(rng() % 60, ' ');
    for (char& c : in) c = alphabet[rng() % alphabet.size()];
    std::string wire = dot_stuff(in) + "NEXT COMMAND\r\n";
    DataReader reader(DataLimits{});
    size_t used = reader.consume(wire);
    ASSERT_TRUE(reader.done()) << ::testing::PrintToString(in);
    EXPECT_EQ(reader.problem(), DataReader::Problem::kNone) << ::testing::PrintToString(in);
    EXPECT_EQ(reader.content(), normalize_line_ends(in)) << ::testing::PrintToString(in);
    EXPECT_EQ(wire.substr(used), "NEXT COMMAND\r\n") << ::testing::PrintToString(in);
  }
}

// ---- Unit tests of single behaviours -------------------------------------------------------

// A session greeted with `ehlo_lines` (the lines after "250-"/"250 ") and ready.
ClientSession greeted(const std::vector<std::string>& ehlo_lines,
                      ClientConfig c = default_config()) {
  c.tls = ClientConfig::Tls::kIgnore;
  ClientSession s(c);
  s.receive("220 mx.example.net ESMTP\r\n");
  std::string reply;
  for (size_t i = 0; i < ehlo_lines.size(); ++i) {
    reply += (i + 1 < ehlo_lines.size() ? "250-" : "250 ") + ehlo_lines[i] + "\r\n";
  }
  s.receive(reply);
  EXPECT_TRUE(s.ready()) << state_name(s.state());
  s.take_output();
  return s;
}

TEST(ClientSession, ExtensionsAreCaseInsensitiveAndOnlyAfterTheFirstLine) {
  ClientSession s = greeted({"mx.example.net PIPELINING CHUNKING", "size 5000", "8bitmime",
                             "SmtpUtf8", "enhancedstatuscodes", "starttls", "Auth=login",
                             "AUTH cram-md5 plain", "X-UNKNOWN 1 2"});
  const Extensions& e = s.extensions();
  EXPECT_TRUE(e.esmtp);
  EXPECT_FALSE(e.pipelining);  // the words of the greeting line are no keywords
  EXPECT_FALSE(e.chunking);
  ASSERT_TRUE(e.size);
  EXPECT_EQ(*e.size, 5000u);
  EXPECT_TRUE(e.eight_bit_mime && e.smtputf8 && e.enhanced_status_codes && e.starttls);
  EXPECT_TRUE(e.auth_login && e.auth_plain);
}

TEST(ClientSession, SizeWithoutALimit) {
  for (const char* line : {"SIZE", "SIZE 0", "SIZE lots"}) {
    ClientSession s = greeted({"mx", line});
    ASSERT_TRUE(s.extensions().size) << line;
    EXPECT_EQ(*s.extensions().size, 0u) << line;
    // No limit: a big message is sent, with its size announced.
    s.send({"a@b.example", {"c@d.example"}, std::string(100000, 'x') + "\r\n"});
    EXPECT_EQ(s.take_output(), "MAIL FROM:<a@b.example> SIZE=100002\r\n") << line;
  }
  ClientSession none = greeted({"mx"});
  EXPECT_FALSE(none.extensions().size);
  EXPECT_FALSE(none.extensions().auth_plain || none.extensions().auth_login);
}

TEST(ClientSession, TimeoutsPerState) {
  using namespace std::chrono_literals;
  ClientSession s(default_config());
  EXPECT_EQ(s.timeout(), 300s);  // greeting, RFC 5321 §4.5.3.2.1
  s = greeted({"mx"});
  s.send({"a@b.example", {"c@d.example"}, "x\r\n"});
  EXPECT_EQ(s.state(), ClientSession::State::kMail);
  EXPECT_EQ(s.timeout(), 300s);  // MAIL, §4.5.3.2.2
  s.receive("250 OK\r\n");
  EXPECT_EQ(s.timeout(), 300s);  // RCPT, §4.5.3.2.3
  s.receive("250 OK\r\n");
  EXPECT_EQ(s.state(), ClientSession::State::kData);
  EXPECT_EQ(s.timeout(), 120s);  // DATA initiation, §4.5.3.2.4
  s.receive("354 go\r\n");
  EXPECT_EQ(s.state(), ClientSession::State::kDataEnd);
  EXPECT_EQ(s.timeout(), 600s);  // DATA termination, §4.5.3.2.6
  s.receive("250 OK\r\n");
  ASSERT_TRUE(s.take_outcome());
  s.quit();
  EXPECT_EQ(s.timeout(), 30s);
  // No answer to QUIT is no failure.
  s.timed_out();
  EXPECT_TRUE(s.closed());
  EXPECT_FALSE(s.failure());
}

TEST(ClientSession, PipelinedDataWaitsWithTheDataTimeout) {
  using namespace std::chrono_literals;
  ClientSession s = greeted({"mx", "PIPELINING"});
  s.send({"a@b.example", {"c@d.example"}, "x\r\n"});
  EXPECT_EQ(s.timeout(), 300s);
  s.receive("250 OK\r\n250 OK\r\n");
  EXPECT_EQ(s.state(), ClientSession::State::kData);
  EXPECT_EQ(s.timeout(), 120s);
}

TEST(ClientSession, TraceHidesSecretsAndContent) {
  for (const char* mechanisms : {"AUTH PLAIN", "AUTH LOGIN"}) {
    ClientConfig c = default_config();
    c.auth = ClientCredentials{"relay", "s3cret"};
    ClientSession s(c);
    std::vector<std::string> log;
    s.trace = [&](char dir, std::string_view line) { log.push_back(dir + std::string(line)); };
    s.receive("220 mx\r\n");
    s.receive(std::string("250-mx\r\n250 ") + mechanisms + "\r\n");
    bool plain = std::string_view(mechanisms) == "AUTH PLAIN";
    if (!plain) s.receive("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n");
    s.receive("235 2.7.0 OK\r\n");
    ASSERT_TRUE(s.ready()) << mechanisms;
    s.send({"a@b.example", {"c@d.example"}, "Subject: secret stuff\r\n"});
    s.receive("250 OK\r\n250 OK\r\n354 go\r\n");
    std::string all;
    for (const std::string& line : log) all += line + "\n";
    EXPECT_EQ(all.find("s3cret"), std::string::npos) << all;
    EXPECT_EQ(all.find("czNjcmV0"), std::string::npos) << all;  // base64 of the password
    EXPECT_EQ(all.find("cmVsYXk="), std::string::npos) << all;  // base64 of the user
    EXPECT_EQ(all.find("AHJlbGF5"), std::string::npos) << all;
    EXPECT_EQ(all.find("secret stuff"), std::string::npos) << all;
    EXPECT_NE(all.find("<220 mx\n"), std::string::npos) << all;
    EXPECT_NE(all.find(">EHLO client.example\n"), std::string::npos) << all;
    EXPECT_NE(all.find("=Greeting -> Ehlo\n"), std::string::npos) << all;
    EXPECT_NE(all.find(">[26 octets of content]\n"), std::string::npos) << all;
    if (plain) {
      EXPECT_NE(all.find(">AUTH PLAIN ****\n"), std::string::npos) << all;
    } else {
      EXPECT_NE(all.find(">AUTH LOGIN\n=Ehlo -> Auth\n<334 VXNlcm5hbWU6\n>****\n"
                         "<334 UGFzc3dvcmQ6\n>****\n"),
                std::string::npos)
          << all;
    }
  }
}

TEST(ClientSession, LineBreakInAnAddressIsNeverSent) {
  ClientSession s = greeted({"mx"});
  s.send({"a@b.example", {"c@d.example\r\nRCPT TO:<evil@x.example>"}, "x\r\n"});
  EXPECT_EQ(s.take_output(), "");
  auto o = s.take_outcome();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->recipients.size(), 1u);
  EXPECT_EQ(o->recipients[0].code, 553);
  EXPECT_TRUE(s.ready());
}

// RFC 3461 §5.2, §5.3: RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT, to a peer that offers DSN
// only; a value that is not what the receiving side accepts is never sent.
TEST(ClientSession, DsnRequestsGoOnlyToAPeerThatOffersDsn) {
  auto sent = [](std::vector<std::string> ehlo, std::string envid) {
    ClientSession s = greeted(ehlo);
    OutboundMessage m{"a@b.example", {"c@d.example", "e@d.example", "f@d.example"}, "x\r\n"};
    m.dsn_ret = "HDRS";
    m.dsn_envid = envid;
    m.dsn = {{DsnRequest::kSuccess | DsnRequest::kDelay, "rfc822;c+2Bx@d.example"},
             {},
             {DsnRequest::kNever | DsnRequest::kSuccess, "rfc822;x y"}};  // neither is valid
    s.send(std::move(m));
    return s.take_output();
  };
  EXPECT_EQ(sent({"mx", "DSN"}, "id+2B1"), "MAIL FROM:<a@b.example> RET=HDRS ENVID=id+2B1\r\n");
  EXPECT_EQ(sent({"mx", "PIPELINING", "dsn"}, "bad id"),
            "MAIL FROM:<a@b.example> RET=HDRS\r\n"
            "RCPT TO:<c@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c+2Bx@d.example\r\n"
            "RCPT TO:<e@d.example>\r\n"
            "RCPT TO:<f@d.example>\r\n"
            "DATA\r\n");
  EXPECT_EQ(sent({"mx", "PIPELINING"}, "id").find("RET="), std::string::npos);
  EXPECT_EQ(sent({"mx"}, "id"), "MAIL FROM:<a@b.example>\r\n");
}

TEST(ClientSession, NoRecipientsIsAnEmptyOutcome) {
  ClientSession s = greeted({"mx"});
  s.send({"a@b.example", {}, "x\r\n"});
  EXPECT_EQ(s.take_output(), "");
  auto o = s.take_outcome();
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->recipients.empty());
  EXPECT_TRUE(s.ready());
}

TEST(ClientSession, PeerGreetingIsTheFirstLine) {
  ClientSession s(default_config());
  s.receive("220-mx.example.net ESMTP Postfix\r\n220 second line\r\n");
  EXPECT_EQ(s.peer_greeting(), "mx.example.net ESMTP Postfix");
}

TEST(ClientSessionDeathTest, SendWhenNotReadyIsABug) {
  ClientSession s(default_config());
  EXPECT_DEATH(s.send({"a@b.example", {"c@d.example"}, "x"}), "send\\(\\) in state Greeting");
}

// Random replies, random bytes and random driver events: whatever the peer does, every outcome
// has one reply per recipient, every failure is a 4xx/5xx, and a closed session stays silent.
TEST(ClientSession, FuzzKeepsTheInvariants) {
  const std::vector<std::string> replies{
      "220 hi\r\n", "250 OK\r\n", "250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n",
      "250-mx\r\n250-SIZE 10\r\n250 AUTH PLAIN\r\n", "354 go\r\n", "334 x\r\n", "235 ok\r\n",
      "221 bye\r\n", "421 bye\r\n", "451 later\r\n", "454 no tls\r\n", "500 what\r\n",
      "502 no\r\n", "503 order\r\n", "550 no\r\n", "554 no\r\n", "garbage\r\n", "250-partial",
      "\n", "2"};
  std::mt19937 rng(42);
  for (int round = 0; round < 3000; ++round) {
    ClientConfig c = default_config();
    c.tls = static_cast<ClientConfig::Tls>(rng() % 3);
    if (rng() % 2) c.auth = ClientCredentials{"u", "p"};
    c.auth_require_tls = rng() % 2;
    ClientSession s(c);
    size_t recipients = 0;
    for (int step = 0; step < 40 && !s.closed(); ++step) {
      int what = rng() % 10;
      if (what < 7) {
        s.receive(replies[rng() % replies.size()]);
      } else if (what == 7 && s.ready()) {
        recipients = 1 + rng() % 3;
        OutboundMessage m{"a@b.example", {}, "Subject: x\r\n\r\nbody\r\n"};
        for (size_t i = 0; i < recipients; ++i) {
          m.recipients.push_back("r" + std::to_string(i) + "@x.example");
        }
        m.smtputf8 = rng() % 4 == 0;
        s.send(std::move(m));
      } else if (what == 8 && s.wants_tls()) {
        if (rng() % 4) s.tls_started(); else s.tls_failed("bad");
      } else if (what == 9) {
        switch (rng() % 3) {
          case 0: s.timed_out(); break;
          case 1: s.peer_closed(); break;
          default: s.quit(); break;
        }
      }
      s.take_output();
      if (auto o = s.take_outcome()) {
        EXPECT_EQ(o->recipients.size(), recipients) << "round " << round;
        for (const Reply& r : o->recipients) EXPECT_TRUE(r.code >= 200 && r.code < 600) << round;
      }
      if (s.failure()) {
        EXPECT_GE(s.failure()->code, 400) << "round " << round;
      }
    }
    if (s.closed()) {
      s.receive("250 OK\r\n");
      s.quit();
      s.timed_out();
      EXPECT_EQ(s.take_output(), "") << "round " << round;
      EXPECT_FALSE(s.take_outcome()) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace starling::smtp
