#include "smtp/received.hpp"

#include <gtest/gtest.h>

namespace starling::smtp {
namespace {

TEST(Received, DateIsRfc5322) {
  EXPECT_EQ(format_rfc5322_date(1795628186), "Wed, 25 Nov 2026 17:36:26 +0000");
}

// The date is kept from one message to the next within a second: a new second, or a clock
// stepped back, still gets its own.
TEST(Received, DateFollowsTheClockAcrossSeconds) {
  EXPECT_EQ(format_rfc5322_date(1795628186), "Wed, 25 Nov 2026 17:36:26 +0000");
  EXPECT_EQ(format_rfc5322_date(1795628186), "Wed, 25 Nov 2026 17:36:26 +0000");
  EXPECT_EQ(format_rfc5322_date(1795628187), "Wed, 25 Nov 2026 17:36:27 +0000");
  EXPECT_EQ(format_rfc5322_date(1795541786), "Tue, 24 Nov 2026 17:36:26 +0000");
  EXPECT_EQ(format_rfc5322_date(1795628187), "Wed, 25 Nov 2026 17:36:27 +0000");
}

TEST(Received, ControlCharactersInEveryFieldBecomeQuestionMarks) {
  Message m;
  m.helo = "evil\r\nX-Injected: yes";
  m.peer_ip = std::string("192.0.2.7\0\x7f", 11);
  m.protocol = "ESMTP";
  m.recipients.push_back({"bob\x1b", "example.test"});
  std::string h = format_received(m, "mx\n.example.test", "Q\t1", 1795628186);
  EXPECT_EQ(h, "Received: from evil??X-Injected: yes ([192.0.2.7??])\r\n"
               "\tby mx?.example.test (Starling) with ESMTP id Q?1\r\n"
               "\tfor <bob?@example.test>; Wed, 25 Nov 2026 17:36:26 +0000\r\n");
}

TEST(Received, NamesHeloIpTlsIdAndSingleRecipient) {
  Message m;
  m.helo = "client.example";
  m.peer_ip = "192.0.2.7";
  m.protocol = "ESMTPS";
  m.tls = TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
  m.recipients.push_back({"bob", "example.test"});
  EXPECT_EQ(format_received(m, "mx.example.test", "Q1", 1795628186),
            "Received: from client.example ([192.0.2.7])\r\n"
            "\tby mx.example.test (Starling) with ESMTPS (TLSv1.3 cipher TLS_AES_256_GCM_SHA384)"
            " id Q1\r\n\tfor <bob@example.test>; Wed, 25 Nov 2026 17:36:26 +0000\r\n");
  m.recipients.push_back({"carol", "example.test"});
  EXPECT_EQ(format_received(m, "mx", "Q2", 0).find("for <"), std::string::npos);
}

TEST(Received, AuthenticatedSessionNamesTheUserOnlyWhenAsked) {
  Message m;
  m.helo = "laptop";
  m.peer_ip = "192.0.2.9";
  m.protocol = "ESMTPSA";
  m.authenticated_user = "alice@example.test";
  std::string hidden = format_received(m, "mx", "Q3", 0);
  EXPECT_NE(hidden.find("with ESMTPSA id Q3"), std::string::npos) << hidden;
  EXPECT_EQ(hidden.find("alice"), std::string::npos) << hidden;
  std::string shown = format_received(m, "mx", "Q3", 0, true);
  EXPECT_NE(shown.find("with ESMTPSA (authenticated as alice@example.test) id Q3"),
            std::string::npos) << shown;
}

// Whatever reaches it, the header's only controls are its own CRLF + TAB folds: a CR, LF, NUL,
// ESC or DEL in any field (HELO name, addresses, user, TLS facts) cannot start a new header.
TEST(Received, NoFieldCanInjectAControlCharacter) {
  const std::string evil = std::string("x\rX-Injected: yes\n\0\x1b[31m\x7f", 25);
  Message m;
  m.helo = evil;
  m.peer_ip = evil;
  m.protocol = evil;
  m.tls = TlsInfo{evil, evil};
  m.authenticated_user = evil;
  m.recipients.push_back({evil, evil});
  std::string h = format_received(m, evil, evil, 0, true);
  std::string structure;
  for (size_t i = 0; i < h.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(h[i]);
    if (c < 0x20 || c == 0x7f) structure += h.substr(i, 1);
  }
  EXPECT_EQ(structure, "\r\n\t\r\n\t\r\n") << h;
  EXPECT_EQ(h.find("\r\nX-Injected"), std::string::npos) << h;
}

}  // namespace
}  // namespace starling::smtp
