// Dialog transcripts run in memory against smtp::Session, each fed whole, byte by byte and in
// random splits: the server's output must be the same every time.
//
// Transcript format (src/smtp/transcripts/*.txt):
//   # comment            !key=value   session setting (see apply_setting)
//   C: line              a client line, CRLF appended
//   C~ bytes             raw client bytes, with \r \n \\ escapes, nothing appended
//   S: line              an expected server line, CRLF appended
//   Q: bytes             expected content of the next queued message (escapes as in C~)
//   =tls                 the TLS handshake completes here
//   =closed              the session must be closing at the end
#include "smtp/session.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace starling::smtp {
namespace {

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out += n == 'r' ? '\r' : n == 'n' ? '\n' : n == 't' ? '\t' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

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
  else if (key == "no_enhanced") c.enhanced_status_codes = false;
  else if (key == "banner") c.banner = value;
  else if (key == "may_relay") c.may_relay = true;
  else if (key == "routes") {
    // "!routes=a.example,b.example": the domains a send connector serves.
    c.has_route = [value](std::string_view d) {
      std::string list = "," + value + ",";
      return list.find("," + std::string(d) + ",") != std::string::npos;
    };
  }
  else FAIL() << "unknown setting " << key;
}

struct Transcript {
  SessionConfig config = default_config();
  std::vector<std::string> segments{""};  // client bytes, split at each =tls
  std::string expected_output;
  std::vector<std::string> expected_messages;
  bool expect_closed = false;
};

Transcript load(const std::filesystem::path& path) {
  Transcript t;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '!') {
      size_t eq = line.find('=');
      apply_setting(t.config, line.substr(1, eq == std::string::npos ? eq : eq - 1),
                    eq == std::string::npos ? "" : line.substr(eq + 1));
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
  return t;
}

struct Outcome {
  std::string output;
  std::vector<std::string> messages;
  bool closed = false;
};

// Feeds every segment in pieces whose sizes `next_piece` chooses, answering the session's
// requests as a driver would.
template <typename NextPiece>
Outcome play(const Transcript& t, NextPiece next_piece) {
  Session s(t.config, "192.0.2.7");
  Outcome r;
  int queued = 0;
  s.start();
  auto settle = [&] {
    while (auto m = s.take_message()) {
      r.messages.push_back(m->content);
      s.message_queued("Q" + std::to_string(++queued));
    }
  };
  for (size_t seg = 0; seg < t.segments.size(); ++seg) {
    if (seg > 0) {
      EXPECT_TRUE(s.wants_tls()) << "=tls in the transcript, but no STARTTLS pending";
      r.output += s.take_output();
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
  r.output += s.take_output();
  r.closed = s.closing();
  return r;
}

class TranscriptTest : public testing::TestWithParam<std::string> {};

TEST_P(TranscriptTest, SameResultWholeByteByByteAndRandomSplits) {
  Transcript t = load(std::filesystem::path(STARLING_TRANSCRIPTS_DIR) / GetParam());
  auto check = [&](const Outcome& r, const std::string& how) {
    EXPECT_EQ(r.output, t.expected_output) << GetParam() << " fed " << how;
    EXPECT_EQ(r.messages, t.expected_messages) << GetParam() << " fed " << how;
    EXPECT_EQ(r.closed, t.expect_closed) << GetParam() << " fed " << how;
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

INSTANTIATE_TEST_SUITE_P(Transcripts, TranscriptTest, testing::ValuesIn(transcript_names()),
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

}  // namespace
}  // namespace starling::smtp
