// Dialog transcripts run in memory against smtp::Session, each fed whole, byte by byte and in
// random splits: the server's output must be the same every time.
//
// Transcript format (src/smtp/transcripts/*.txt):
//   # comment            !key=value   session setting (see apply_setting)
//   C: line              a client line, CRLF appended
//   C~ bytes             raw client bytes, with \r \n \\ escapes, nothing appended
//   S: line              an expected server line, CRLF appended
//   Q: bytes             expected content of the next queued message (escapes as in C~)
//   S: <delay N ms>      the session asks its driver to wait N ms before what follows (tarpit)
//   =tls                 the TLS handshake completes here
//   =closed              the session must be closing at the end
//
// How the test driver answers (SessionConfig settings beyond the obvious ones):
//   !user=ADDRESS PASSWORD [ALIAS...]  a mailbox that may AUTH; it may send as ADDRESS and the
//                        aliases. AUTH requests are answered at once: auth_succeeded(ADDRESS,
//                        addresses) when the user (any case, primary or alias) and password match,
//                        else auth_failed(). !auth_unavailable: auth_unavailable() instead.
//   !recipient=ADDRESS mailbox|relay|group [MEMBER...]  the directory: once any is given, every
//                        other address at an accepted domain is unknown (550 5.1.1).
//   !trace=LINE          an expected protocol log line, '<' '>' or '*' and the text (state changes
//                        '=' are not compared); once one is given, every line must be listed,
//                        in order. (tests/e2e/test_transcripts.py reads only C: S: Q: = and !
//                        lines, and skips a transcript with settings the daemon lacks.)
//   !basic_auth !basic_auth_require_tls !exchange_users !no_anonymous !tarpit=ms
//   !max_logon_failures=N
//   !receive_memory=BYTES  a MemoryBudget of BYTES for this session alone (fresh for each run);
//                        !hold=N: the first N queued messages keep their memory until the end
//                        of the run (as messages still being written by the queue would).
#include "smtp/session.hpp"

#include <gtest/gtest.h>

#include "testing/unescape.hpp"

#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <sstream>

namespace starling::smtp {
namespace {

using testing::unescape;

SessionConfig default_config() {
  SessionConfig c;
  c.fqdn = "mx.example.test";
  c.tls_available = true;
  c.is_accepted_domain = [](std::string_view d) {
    std::string l(d);
    for (char& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return l == "example.test" || l == "other.example.test";
  };
  c.postmaster_domain = "example.test";
  return c;
}

void apply_setting(SessionConfig& c, const std::string& key, const std::string& value) {
  if (key == "max_message_size") c.limits.max_message_size = std::stoull(value);
  else if (key == "max_header_size") c.limits.max_header_size = std::stoul(value);
  else if (key == "max_recipients") c.max_recipients = std::stoul(value);
  else if (key == "max_protocol_errors") c.max_protocol_errors = std::stoul(value);
  else if (key == "require_tls") c.require_tls = true;
  else if (key == "no_tls") c.tls_available = false;
  else if (key == "no_chunking") c.chunking = false;
  else if (key == "no_dsn") c.dsn = false;
  else if (key == "no_enhanced") c.enhanced_status_codes = false;
  else if (key == "banner") c.banner = value;
  else if (key == "may_relay") c.may_relay = true;
  else if (key == "basic_auth") c.basic_auth = true;
  else if (key == "basic_auth_require_tls") c.basic_auth = c.basic_auth_require_tls = true;
  else if (key == "exchange_users") c.exchange_users = true;
  else if (key == "no_anonymous") c.anonymous_users = false;
  else if (key == "tarpit") c.tarpit_interval = std::chrono::milliseconds(std::stoul(value));
  else if (key == "max_logon_failures") c.max_logon_failures = std::stoul(value);
  else if (key == "receive_memory") c.memory = std::make_shared<MemoryBudget>(std::stoull(value));
  else if (key == "routes") {
    // "!routes=a.example,b.example": the domains a send connector serves.
    c.has_route = [value](std::string_view d) {
      std::string list = "," + value + ",";
      return list.find("," + std::string(d) + ",") != std::string::npos;
    };
  }
  else FAIL() << "unknown setting " << key;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

Address to_address(const std::string& a) {
  size_t at = a.rfind('@');
  return {a.substr(0, at), at == std::string::npos ? "" : a.substr(at + 1)};
}

struct TestUser {
  std::string password;
  AuthIdentity identity;
};

struct Transcript {
  SessionConfig config = default_config();
  std::map<std::string, TestUser> users;  // by every address, lower-case
  std::map<std::string, RecipientVerdict> recipients;
  bool auth_unavailable = false;
  std::vector<std::string> expected_trace;
  std::vector<std::string> segments{""};  // client bytes, split at each =tls
  std::string expected_output;
  std::vector<std::string> expected_messages;
  bool expect_closed = false;
  size_t hold = 0;
};

Transcript load(const std::filesystem::path& path) {
  Transcript t;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '!') {
      size_t eq = line.find('=');
      std::string key = line.substr(1, eq == std::string::npos ? eq : eq - 1);
      std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
      if (key == "user") {
        auto w = words(value);
        TestUser u{w.at(1), {w.at(0), {}}};
        for (size_t i = 0; i < w.size(); ++i) {
          if (i != 1) u.identity.send_as.push_back(w[i]);
        }
        for (const auto& a : u.identity.send_as) t.users[lower(a)] = u;
      } else if (key == "recipient") {
        auto w = words(value);
        RecipientVerdict v;
        v.kind = w.at(1) == "group"   ? RecipientVerdict::Kind::kGroup
                 : w.at(1) == "relay" ? RecipientVerdict::Kind::kRelay
                                      : RecipientVerdict::Kind::kMailbox;
        for (size_t i = 2; i < w.size(); ++i) v.members.push_back(to_address(w[i]));
        t.recipients[lower(w.at(0))] = v;
      } else if (key == "trace") {
        t.expected_trace.push_back(value);
      } else if (key == "auth_unavailable") {
        t.auth_unavailable = true;
      } else if (key == "hold") {
        t.hold = std::stoul(value);
      } else {
        apply_setting(t.config, key, value);
      }
    } else if (line.rfind("C: ", 0) == 0 || line == "C:") {
      t.segments.back() += line.substr(std::min<size_t>(3, line.size())) + "\r\n";
    } else if (line.rfind("C~ ", 0) == 0) {
      t.segments.back() += unescape(line.substr(3));
    } else if (line.rfind("S: ", 0) == 0) {
      t.expected_output += line.substr(3) + "\r\n";
    } else if (line.rfind("Q: ", 0) == 0) {
      t.expected_messages.push_back(unescape(line.substr(3)));
    } else if (line == "=tls") {
      t.segments.emplace_back();
    } else if (line == "=closed") {
      t.expect_closed = true;
    } else {
      ADD_FAILURE() << path << ": cannot read line: " << line;
    }
  }
  if (!t.recipients.empty()) {
    t.config.verify_recipient = [dir = t.recipients](const Address& a) {
      auto it = dir.find(lower(a.str()));
      return it == dir.end() ? RecipientVerdict{RecipientVerdict::Kind::kUnknown, {}} : it->second;
    };
  }
  return t;
}

struct Outcome {
  std::vector<std::string> trace;
  std::string output;
  std::vector<std::string> messages;
  bool closed = false;
};

// Feeds every segment in pieces whose sizes `next_piece` chooses, answering the session's
// requests as a driver would.
template <typename NextPiece>
Outcome play(const Transcript& t, NextPiece next_piece) {
  SessionConfig config = t.config;
  if (config.memory) config.memory = std::make_shared<MemoryBudget>(config.memory->limit());
  Session s(config, "192.0.2.7");
  std::vector<Message> held;
  Outcome r;
  s.trace = [&r](char direction, std::string_view line) {
    if (direction != '=') r.trace.push_back(std::string(1, direction) + std::string(line));
  };
  int queued = 0;
  s.start();
  // Writes the output as a driver would, marking where it has to wait.
  auto drain = [&] {
    while (s.has_output()) {
      if (auto d = s.take_delay(); d.count() > 0) {
        r.output += "<delay " + std::to_string(d.count()) + " ms>\r\n";
      }
      r.output += s.take_output();
    }
  };
  auto settle = [&] {
    for (;;) {
      if (auto m = s.take_message()) {
        r.messages.push_back(m->content);
        if (held.size() < t.hold) held.push_back(std::move(*m));
        m.reset();  // written: its memory goes back before the session reads on, as in the driver
        s.message_queued("Q" + std::to_string(++queued));
      } else if (auto a = s.take_auth_request()) {
        auto it = t.users.find(lower(a->user));
        if (t.auth_unavailable) {
          s.auth_unavailable();
        } else if (it != t.users.end() && it->second.password == a->password) {
          s.auth_succeeded(it->second.identity);
        } else {
          s.auth_failed();
        }
      } else {
        break;
      }
    }
  };
  for (size_t seg = 0; seg < t.segments.size(); ++seg) {
    if (seg > 0) {
      EXPECT_TRUE(s.wants_tls()) << "=tls in the transcript, but no STARTTLS pending";
      drain();
      s.tls_started({"TLSv1.3", "TLS_AES_256_GCM_SHA384"});
    }
    std::string_view data = t.segments[seg];
    while (!data.empty()) {
      size_t n = std::min(data.size(), next_piece());
      s.receive(data.substr(0, n));
      data.remove_prefix(n);
      settle();
    }
  }
  drain();
  r.closed = s.closing();
  return r;
}

class TranscriptTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TranscriptTest, SameResultWholeByteByByteAndRandomSplits) {
  Transcript t = load(std::filesystem::path(STARLING_TRANSCRIPTS_DIR) / GetParam());
  auto check = [&](const Outcome& r, const std::string& how) {
    EXPECT_EQ(r.output, t.expected_output) << GetParam() << " fed " << how;
    EXPECT_EQ(r.messages, t.expected_messages) << GetParam() << " fed " << how;
    EXPECT_EQ(r.closed, t.expect_closed) << GetParam() << " fed " << how;
    if (!t.expected_trace.empty()) EXPECT_EQ(r.trace, t.expected_trace) << GetParam() << " fed " << how;
    // The protocol log has every line the server wrote, in order (banner, EHLO lines, 354).
    std::string written, traced;
    for (std::string_view rest = r.output; !rest.empty();) {
      size_t end = rest.find("\r\n") + 2;
      if (!rest.starts_with("<delay ")) written += rest.substr(0, end);
      rest.remove_prefix(end);
    }
    for (const std::string& line : r.trace) {
      if (line.front() == '>') traced += line.substr(1) + "\r\n";
    }
    EXPECT_EQ(traced, written) << GetParam() << " fed " << how;
  };
  check(play(t, [] { return std::numeric_limits<size_t>::max(); }), "whole");
  check(play(t, [] { return size_t{1}; }), "byte by byte");
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<size_t> dist(1, 64);
    check(play(t, [&] { return dist(rng); }), "in random splits, seed " + std::to_string(seed));
  }
}

std::vector<std::string> transcript_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(STARLING_TRANSCRIPTS_DIR)) {
    if (e.path().extension() == ".txt") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Transcripts, TranscriptTest, ::testing::ValuesIn(transcript_names()),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.size() - 4);
                           for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// Bytes pipelined after STARTTLS arrive in clear text and must never be executed after the
// handshake (STARTTLS command injection).
TEST(Session, CommandsPipelinedAfterStartTlsAreDiscarded) {
  Session s(default_config(), "192.0.2.7");
  s.start();
  s.receive("EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
  ASSERT_TRUE(s.wants_tls());
  std::string out = s.take_output();
  EXPECT_TRUE(out.ends_with("220 2.0.0 Ready to start TLS\r\n")) << out;
  s.tls_started({"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
  s.receive("RCPT TO:<user@example.test>\r\n");
  // Had the injected MAIL survived, this RCPT would be accepted.
  EXPECT_EQ(s.take_output(), "503 5.5.1 Send EHLO or HELO first\r\n");
}

TEST(Session, MessageCarriesEnvelopeAndTlsFacts) {
  Session s(default_config(), "192.0.2.7");
  s.start();
  s.receive("EHLO c.example\r\nSTARTTLS\r\n");
  s.tls_started({"TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"});
  s.receive("EHLO c2.example\r\nMAIL FROM:<a@b.example> SMTPUTF8\r\n"
            "RCPT TO:<x@example.test>\r\nRCPT TO:<POSTMASTER>\r\nDATA\r\nHi\r\n.\r\n");
  auto m = s.take_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->helo, "c2.example");
  EXPECT_EQ(m->protocol, "ESMTPS");
  ASSERT_TRUE(m->tls);
  EXPECT_EQ(m->tls->version, "TLSv1.2");
  EXPECT_TRUE(m->smtputf8);
  EXPECT_EQ(m->mail_from.str(), "a@b.example");
  ASSERT_EQ(m->recipients.size(), 2u);
  EXPECT_EQ(m->recipients[1].str(), "postmaster@example.test");
  EXPECT_EQ(m->content, "Hi\r\n");
  EXPECT_EQ(s.state(), Session::State::kQueueing);
}

// RFC 3461: what MAIL and RCPT asked for reaches the queue with the message, per recipient in
// recipient order; a group's members inherit its NOTIFY and name it as their ORCPT.
TEST(Session, MessageCarriesDsnRequests) {
  SessionConfig c = default_config();
  c.verify_recipient = [](const Address& a) {
    RecipientVerdict v;
    if (a.local_part == "team") {
      v.kind = RecipientVerdict::Kind::kGroup;
      v.members = {{"m1", "example.test"}, {"x", "example.test"}};
    }
    return v;
  };
  Session s(c, "192.0.2.7");
  s.start();
  s.receive("EHLO c\r\nMAIL FROM:<a@b.example> RET=FULL ENVID=QQ+2B1\r\n"
            "RCPT TO:<x@example.test> NOTIFY=SUCCESS ORCPT=rfc822;x@example.test\r\n"
            "RCPT TO:<y@example.test>\r\nRCPT TO:<team@example.test> NOTIFY=DELAY,FAILURE\r\n"
            "RCPT TO:<x@example.test> NOTIFY=NEVER\r\nDATA\r\nHi\r\n.\r\n");
  auto m = s.take_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->dsn_ret, "FULL");
  EXPECT_EQ(m->dsn_envid, "QQ+2B1");
  ASSERT_EQ(m->recipients.size(), 3u);  // x, y, m1 (x again is the same recipient)
  ASSERT_EQ(m->dsn.size(), 3u);
  EXPECT_EQ(m->dsn[0], (DsnRequest{DsnRequest::kSuccess, "rfc822;x@example.test"}));
  EXPECT_EQ(m->dsn[1], DsnRequest{});
  EXPECT_EQ(m->dsn[2], (DsnRequest{DsnRequest::kDelay | DsnRequest::kFailure, "rfc822;team@example.test"}));
  s.message_queued("Q1");
  s.receive("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nHi\r\n.\r\n");
  m = s.take_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->dsn_ret, "");  // nothing of the last transaction is left
  EXPECT_EQ(m->dsn_envid, "");
  EXPECT_TRUE(m->dsn.empty());
}

TEST(Session, FailedQueueWriteAnswers452AndKeepsGoing) {
  Session s(default_config(), "192.0.2.7");
  s.start();
  s.receive("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nHi\r\n.\r\nNOOP\r\n");
  ASSERT_TRUE(s.take_message());
  s.take_output();
  s.message_failed();
  EXPECT_EQ(s.take_output(), "452 4.3.1 Insufficient system storage, try again later\r\n250 2.0.0 OK\r\n");
}

TEST(Session, TimeoutAndShutdownSay421) {
  Session a(default_config(), "192.0.2.7");
  a.start();
  a.take_output();
  a.timeout();
  EXPECT_EQ(a.take_output(), "421 4.4.2 mx.example.test Timeout, closing connection\r\n");
  EXPECT_TRUE(a.closing());
  Session b(default_config(), "192.0.2.7");
  b.start();
  b.take_output();
  b.shutdown();
  EXPECT_EQ(b.take_output(), "421 4.3.2 mx.example.test Service shutting down, closing connection\r\n");
}

SessionConfig auth_config() {
  SessionConfig c = default_config();
  c.basic_auth = true;
  c.exchange_users = true;
  c.tarpit_interval = std::chrono::milliseconds(0);
  return c;
}

// docs/receive-path.md: AUTH payloads never appear in the protocol log, neither in clear nor in
// base64, whatever the mechanism and whether the logon succeeds.
TEST(Session, PasswordNeverReachesTheTrace) {
  const std::string password = "Tr0ub4dor&3";
  std::vector<std::string> trace;
  Session s(auth_config(), "192.0.2.7");
  s.trace = [&](char, std::string_view line) { trace.emplace_back(line); };
  s.start();
  // dGVzdEBleGFtcGxlLnRlc3Q= is "test@example.test"; VHIwdWI0ZG9yJjM= is the password.
  s.receive("EHLO c\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS50ZXN0AFRyMHViNGRvciYz\r\n");
  auto plain = s.take_auth_request();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->mechanism, "PLAIN");
  EXPECT_EQ(plain->user, "test@example.test");
  EXPECT_EQ(plain->password, password);
  s.auth_failed();
  s.receive("AUTH LOGIN\r\ndGVzdEBleGFtcGxlLnRlc3Q=\r\nVHIwdWI0ZG9yJjM=\r\n");
  auto login = s.take_auth_request();
  ASSERT_TRUE(login);
  EXPECT_EQ(login->mechanism, "LOGIN");
  EXPECT_EQ(login->user, "test@example.test");
  EXPECT_EQ(login->password, password);
  s.auth_succeeded({"test@example.test", {"test@example.test"}});
  ASSERT_FALSE(trace.empty());
  for (const auto& line : trace) {
    EXPECT_EQ(line.find(password), std::string::npos) << line;
    EXPECT_EQ(line.find("VHIwdWI0ZG9yJjM"), std::string::npos) << line;
    EXPECT_EQ(line.find("AHRlc3RA"), std::string::npos) << line;
  }
}

TEST(Session, AuthenticatedMessageSaysEsmtpaOrEsmtpsaAndWho) {
  for (bool tls : {false, true}) {
    Session s(auth_config(), "192.0.2.7");
    s.start();
    if (tls) {
      s.receive("EHLO c\r\nSTARTTLS\r\n");
      s.tls_started({"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
    }
    s.receive("EHLO c\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS50ZXN0AFRyMHViNGRvciYz\r\n");
    ASSERT_TRUE(s.take_auth_request());
    s.auth_succeeded({"test@example.test", {"test@example.test"}});
    s.receive("MAIL FROM:<test@example.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nHi\r\n.\r\n");
    auto m = s.take_message();
    ASSERT_TRUE(m) << s.take_output();
    EXPECT_EQ(m->protocol, tls ? "ESMTPSA" : "ESMTPA");
    EXPECT_EQ(m->authenticated_user, "test@example.test");
  }
}

// The handshake forgets an AUTH given in clear text before it (RFC 3207 §4.2).
TEST(Session, StartTlsForgetsTheIdentity) {
  Session s(auth_config(), "192.0.2.7");
  s.start();
  s.receive("EHLO c\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS50ZXN0AFRyMHViNGRvciYz\r\n");
  ASSERT_TRUE(s.take_auth_request());
  s.auth_succeeded({"test@example.test", {"test@example.test"}});
  s.receive("STARTTLS\r\n");
  s.tls_started({"TLSv1.3", "TLS_AES_128_GCM_SHA256"});
  EXPECT_FALSE(s.identity());
  s.take_output();
  s.receive("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\n");
  EXPECT_TRUE(s.take_output().ends_with("550 5.7.54 Unable to relay: elsewhere.example is not an accepted domain\r\n"));
}

// A group's members replace it in the envelope, without repeating a recipient already given.
TEST(Session, GroupIsExpandedIntoItsMembersAtRcpt) {
  SessionConfig c = default_config();
  c.verify_recipient = [](const Address& a) {
    if (a.local_part == "team") {
      return RecipientVerdict{RecipientVerdict::Kind::kGroup,
                              {{"bob", "example.test"}, {"carol", "example.test"},
                               {"dave", "example.test"}}};
    }
    return RecipientVerdict{RecipientVerdict::Kind::kMailbox, {}};
  };
  Session s(c, "192.0.2.7");
  s.start();
  s.receive("HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<Bob@example.test>\r\n"
            "RCPT TO:<team@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nHi\r\n.\r\n");
  auto m = s.take_message();
  ASSERT_TRUE(m) << s.take_output();
  std::vector<std::string> rcpts;
  for (const auto& r : m->recipients) rcpts.push_back(r.str());
  EXPECT_EQ(rcpts, (std::vector<std::string>{"Bob@example.test", "carol@example.test",
                                             "dave@example.test"}));
}

// The tarpit splits the output: what came before the failure is written at once.
TEST(Session, TarpitDelaysOnlyWhatFollowsTheFailure) {
  SessionConfig c = auth_config();
  c.tarpit_interval = std::chrono::milliseconds(250);
  Session s(c, "192.0.2.7");
  s.start();
  s.receive("EHLO c\r\nAUTH PLAIN AHRlc3RAZXhhbXBsZS50ZXN0AHdyb25n\r\nNOOP\r\n");
  ASSERT_TRUE(s.take_auth_request());
  s.auth_failed();
  EXPECT_EQ(s.take_delay().count(), 0);
  EXPECT_TRUE(s.take_output().ends_with("250 HELP\r\n"));
  EXPECT_EQ(s.take_delay().count(), 250);
  EXPECT_EQ(s.take_output(), "535 5.7.8 Authentication credentials invalid\r\n250 2.0.0 OK\r\n");
  EXPECT_EQ(s.take_delay().count(), 0);
  EXPECT_FALSE(s.has_output());
}

// A session greeted, in a transaction when `transaction`; its output so far discarded.
Session greeted(SessionConfig c, bool transaction = false) {
  Session s(std::move(c), "192.0.2.7");
  s.start();
  s.receive("EHLO client.example\r\n");
  if (transaction) s.receive("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.test>\r\n");
  s.take_output();
  return s;
}

// Inputs a transcript file cannot hold: NUL, ESC, DEL, TAB, 8-bit octets.
TEST(Session, HeloWithControlsOrEightBitIsRefused) {
  for (std::string arg : {std::string("x\0y", 3), std::string("x\x1b[2J"), std::string("host\ttab"),
                          std::string("x\x7f"), std::string("\xc3\xa9.example")}) {
    Session s(default_config(), "192.0.2.7");
    s.start();
    s.take_output();
    s.receive("EHLO " + arg + "\r\n");
    EXPECT_EQ(s.take_output(), "501 5.5.4 Invalid domain name or address literal\r\n")
        << ::testing::PrintToString(arg);
  }
}

TEST(Session, InvalidUtf8AddressesAreRefusedUnderSmtputf8) {
  for (std::string bad : {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                          "\xff"}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    Session s = greeted(default_config());
    s.receive("MAIL FROM:<x" + bad + "@client.example> SMTPUTF8\r\n");
    EXPECT_EQ(s.take_output(), "501 5.1.7 Address is not valid UTF-8\r\n");
    s.receive("MAIL FROM:<a@client.example> SMTPUTF8\r\nRCPT TO:<x" + bad + "@example.test>\r\n");
    EXPECT_EQ(s.take_output(), "250 2.1.0 Sender OK\r\n501 5.1.3 Address is not valid UTF-8\r\n");
    Session plain = greeted(default_config());
    plain.receive("MAIL FROM:<x" + bad + "@client.example>\r\n");
    EXPECT_EQ(plain.take_output(), "553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n");
  }
  Session s = greeted(default_config());
  s.receive("MAIL FROM:<d\xc3\xa9j\xc3\xa0@client.example> SMTPUTF8\r\n"
            "RCPT TO:<\xe2\x82\xac@example.test>\r\n");
  EXPECT_EQ(s.take_output(), "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n");
}

TEST(Session, MalformedBdatSizeIsRefusedAndCloses) {
  for (std::string arg : {"+5", "-1 LAST", "0x5", "", " 5", "5 MORE", "5 LAST junk", "5.0",
                          "99999999999999999999999", "18446744073709551616 LAST"}) {
    SCOPED_TRACE(arg);
    Session s = greeted(default_config(), true);
    s.receive("BDAT " + arg + "\r\n");
    EXPECT_EQ(s.take_output(), "501 5.5.4 Syntax: BDAT size [LAST]\r\n"
                               "421 4.7.0 mx.example.test closing after malformed BDAT\r\n");
    EXPECT_TRUE(s.closing());
  }
}

// A message of about `octets` octets: a short header, then lines of 1000 octets.
std::string lines_of(size_t octets) {
  std::string line = std::string(998, 'x') + "\r\n";
  std::string out = "Subject: big\r\n\r\n";
  while (out.size() < octets) out += line;
  return out;
}

// One budget for every session: a message that outgrows it mid-transfer is read to its end and
// refused; an accepted one holds its share until the driver drops it (the queue wrote it).
TEST(Session, ReceiveMemoryIsSharedAndGivenBack) {
  auto budget = std::make_shared<MemoryBudget>(400 * 1024);
  SessionConfig c = default_config();
  c.memory = budget;
  Session a = greeted(c, true);
  a.receive("DATA\r\n" + lines_of(300 * 1024) + ".\r\nNOOP\r\n");
  EXPECT_EQ(a.take_output(), "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
                             "452 4.3.1 Insufficient system resources, try again later\r\n"
                             "250 2.0.0 OK\r\n");
  EXPECT_EQ(budget->used(), 0u);

  a.receive("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n" +
            lines_of(200 * 1024) + ".\r\n");
  auto m = a.take_message();
  ASSERT_TRUE(m);
  EXPECT_GE(m->content.capacity(), m->content.size() + DataReader::kHeaderRoom);
  EXPECT_EQ(budget->used(), m->memory.held());
  EXPECT_GE(m->memory.held(), m->content.capacity());

  Session b = greeted(c, true);
  b.take_output();
  b.receive("RSET\r\nMAIL FROM:<a@client.example> SIZE=150000\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  EXPECT_TRUE(b.take_output().ends_with("452 4.3.1 Insufficient system resources, try again later\r\n"));
  m.reset();
  EXPECT_EQ(budget->used(), 0u);
  b.receive("DATA\r\n");
  EXPECT_EQ(b.take_output(), "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
  EXPECT_EQ(budget->used(), 150000u + DataReader::kHeaderRoom);
}

// A chunk announced beyond MaxMessageSize is read and thrown away; it reserves nothing.
TEST(Session, HugeBdatChunkReservesNothing) {
  auto budget = std::make_shared<MemoryBudget>(1 << 20);
  SessionConfig c = default_config();
  c.memory = budget;
  Session s = greeted(c, true);
  s.receive("BDAT 18446744073709551615 LAST\r\n" + lines_of(5000));
  EXPECT_EQ(budget->used(), 0u);
  EXPECT_EQ(s.state(), Session::State::kBdat);
  EXPECT_EQ(s.take_output(), "");
}

// A session that goes away mid-message gives its memory back.
TEST(Session, ClosedSessionGivesItsMemoryBack) {
  auto budget = std::make_shared<MemoryBudget>(1 << 20);
  SessionConfig c = default_config();
  c.memory = budget;
  {
    Session s = greeted(c, true);
    s.receive("BDAT 100000\r\n" + lines_of(50000));
    EXPECT_GT(budget->used(), 100000u);
  }
  EXPECT_EQ(budget->used(), 0u);
}

// The refusal names the line limit in force, not a fixed number.
TEST(Session, LongLineRefusalNamesTheLimit) {
  SessionConfig c = default_config();
  c.limits.max_line_length = 100;
  Session s = greeted(c, true);
  s.take_output();
  s.receive("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n" + std::string(150, 'x') +
            "\r\n.\r\n");
  EXPECT_TRUE(s.take_output().ends_with("554 5.6.0 Message refused: a line is longer than 100 octets\r\n"));
}

}  // namespace
}  // namespace starling::smtp
