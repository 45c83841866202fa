#include "delivery/report.hpp"

#include <gtest/gtest.h>

#include <map>

namespace starling::delivery {
namespace {

constexpr int64_t kNow = 1796141109;      // Tue, 01 Dec 2026 16:05:09 +0000
constexpr int64_t kArrival = 1709251199;  // Thu, 29 Feb 2024 23:59:59 +0000

const char* const kOriginal =
    "Received: from client.fabrikam.test by mail.contoso.test; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@fabrikam.test>\r\n"
    "To: bob@example.test, carol@example.test\r\n"
    "Subject: Quarterly\r\n"
    "\tfigures, revised\r\n"
    "Message-ID: <orig-1@fabrikam.test>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "the numbers are attached.\r\n";

ReportInput input() {
  ReportInput in;
  in.reporting_mta = "mail.contoso.test";
  in.postmaster = "postmaster@contoso.test";
  in.return_path = "alice@fabrikam.test";
  in.queue_id = "Q1A2B3";
  in.arrival = kArrival;
  in.now = kNow;
  in.recipients = {
      {"bob@example.test", "5.1.1", "mx.example.test", "550 5.1.1 <bob@example.test>: User unknown"},
      {"carol@example.test", "5.4.4", "", "no route to example.test"},
  };
  in.original = kOriginal;
  return in;
}

// --- a small MIME reader, enough to take the report apart -------------------------------------

struct Part {
  std::map<std::string, std::string> headers;  // lower-case name -> unfolded value
  std::string header_text;
  std::string body;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Part parse_entity(const std::string& text) {
  Part p;
  size_t split = text.find("\r\n\r\n");
  EXPECT_NE(split, std::string::npos) << "no header/body separator in:\n" << text;
  if (split == std::string::npos) return p;
  p.header_text = text.substr(0, split + 2);
  p.body = text.substr(split + 4);
  std::string name, value;
  auto flush = [&] {
    if (!name.empty()) p.headers.emplace(lower(name), value);
    name.clear();
  };
  size_t pos = 0;
  while (pos < p.header_text.size()) {
    size_t eol = p.header_text.find("\r\n", pos);
    std::string line = p.header_text.substr(pos, eol - pos);
    pos = eol + 2;
    if (line[0] == ' ' || line[0] == '\t') {
      value += line;  // unfold
      continue;
    }
    flush();
    size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    name = line.substr(0, colon);
    value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
  }
  flush();
  return p;
}

std::string param(const std::string& content_type, const std::string& name) {
  size_t at = content_type.find(name + "=\"");
  if (at == std::string::npos) return "";
  size_t start = at + name.size() + 2;
  return content_type.substr(start, content_type.find('"', start) - start);
}

struct ParsedReport {
  Part top;
  std::string boundary;
  std::vector<Part> parts;
};

ParsedReport parse_report(const std::string& data) {
  ParsedReport r;
  r.top = parse_entity(data);
  const std::string& ct = r.top.headers["content-type"];
  EXPECT_EQ(ct.rfind("multipart/report;", 0), 0u) << ct;
  EXPECT_NE(ct.find("report-type=delivery-status"), std::string::npos) << ct;
  r.boundary = param(ct, "boundary");
  EXPECT_FALSE(r.boundary.empty());
  EXPECT_LE(r.boundary.size(), 70u);
  const std::string delim = "\r\n--" + r.boundary;
  const std::string& body = r.top.body;
  size_t pos = body.find("--" + r.boundary + "\r\n") == 0 ? 0 : body.find(delim);
  EXPECT_NE(pos, std::string::npos);
  if (pos == std::string::npos) return r;
  pos = body.find('\n', pos + 2) + 1;
  while (true) {
    size_t next = body.find(delim, pos);
    EXPECT_NE(next, std::string::npos) << "unterminated part";
    if (next == std::string::npos) break;
    r.parts.push_back(parse_entity(body.substr(pos, next - pos)));
    size_t after = next + delim.size();
    if (body.compare(after, 2, "--") == 0) {
      EXPECT_EQ(body.substr(after), "--\r\n") << "text after the close delimiter";
      break;
    }
    EXPECT_EQ(body.compare(after, 2, "\r\n"), 0);
    pos = after + 2;
  }
  return r;
}

// Blocks of "Name: value" fields separated by blank lines (RFC 3464 §2.1).
std::vector<std::map<std::string, std::string>> status_blocks(const std::string& body) {
  std::vector<std::map<std::string, std::string>> blocks(1);
  size_t pos = 0;
  std::string last;
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    std::string line = body.substr(pos, eol - pos);
    pos = eol == std::string::npos ? body.size() : eol + 2;
    if (line.empty()) {
      if (!blocks.back().empty()) blocks.emplace_back();
      continue;
    }
    if (line[0] == ' ') {
      blocks.back()[last] += line;
      continue;
    }
    size_t colon = line.find(": ");
    EXPECT_NE(colon, std::string::npos) << line;
    last = lower(line.substr(0, colon));
    blocks.back()[last] = line.substr(colon + 2);
  }
  if (blocks.back().empty()) blocks.pop_back();
  return blocks;
}

void expect_crlf_only(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      ASSERT_TRUE(i > 0 && s[i - 1] == '\r') << "bare LF at " << i;
    } else if (s[i] == '\r') {
      ASSERT_TRUE(i + 1 < s.size() && s[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  ASSERT_TRUE(s.ends_with("\r\n"));
}

void expect_short_lines(const std::string& s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) eol = s.size();
    EXPECT_LE(eol - pos, 998u) << "line at " << pos << ": " << s.substr(pos, 80);
    pos = eol + 2;
  }
}

void expect_7bit(const std::string& s, const char* what) {
  for (size_t i = 0; i < s.size(); ++i) {
    ASSERT_LT(static_cast<unsigned char>(s[i]), 0x80) << what << ": 8-bit octet at " << i;
  }
}

// --- tests --------------------------------------------------------------------------------------

TEST(Report, EnvelopeAndTopHeaders) {
  Report rep = make_report(input());
  EXPECT_EQ(rep.mail_from, "");
  EXPECT_EQ(rep.recipients, std::vector<std::string>{"alice@fabrikam.test"});
  ParsedReport p = parse_report(rep.data);
  auto& h = p.top.headers;
  EXPECT_EQ(h["date"], "Tue, 01 Dec 2026 16:05:09 +0000");
  EXPECT_EQ(h["from"], "Mail Delivery System <postmaster@contoso.test>");
  EXPECT_EQ(h["to"], "<alice@fabrikam.test>");
  EXPECT_EQ(h["subject"], "Undeliverable: Quarterly figures, revised");
  EXPECT_EQ(h["message-id"], rep.message_id);
  EXPECT_TRUE(rep.message_id.starts_with("<") && rep.message_id.ends_with("@mail.contoso.test>"))
      << rep.message_id;
  EXPECT_NE(rep.message_id.find("Q1A2B3"), std::string::npos);
  EXPECT_EQ(h["auto-submitted"], "auto-replied");
  EXPECT_EQ(h["mime-version"], "1.0");
  EXPECT_EQ(make_report(input()).message_id, rep.message_id);  // pure: same input, same report
  ReportInput later = input();
  later.now += 1;
  EXPECT_NE(make_report(later).message_id, rep.message_id);
}

TEST(Report, ThreePartsWithDeliveryStatusFields) {
  Report rep = make_report(input());
  ParsedReport p = parse_report(rep.data);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[0].headers["content-type"], "text/plain; charset=us-ascii");
  EXPECT_EQ(p.parts[1].headers["content-type"], "message/delivery-status");
  EXPECT_EQ(p.parts[2].headers["content-type"], "message/rfc822");

  auto blocks = status_blocks(p.parts[1].body);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0]["reporting-mta"], "dns; mail.contoso.test");
  EXPECT_EQ(blocks[0]["arrival-date"], "Thu, 29 Feb 2024 23:59:59 +0000");
  EXPECT_FALSE(blocks[0].contains("final-recipient"));

  EXPECT_EQ(blocks[1]["final-recipient"], "rfc822; bob@example.test");
  EXPECT_EQ(blocks[1]["action"], "failed");
  EXPECT_EQ(blocks[1]["status"], "5.1.1");
  EXPECT_EQ(blocks[1]["remote-mta"], "dns; mx.example.test");
  EXPECT_EQ(blocks[1]["diagnostic-code"], "smtp; 550 5.1.1 <bob@example.test>: User unknown");

  EXPECT_EQ(blocks[2]["final-recipient"], "rfc822; carol@example.test");
  EXPECT_EQ(blocks[2]["status"], "5.4.4");
  EXPECT_FALSE(blocks[2].contains("remote-mta"));  // nobody answered
  EXPECT_EQ(blocks[2]["diagnostic-code"], "X-Starling; no route to example.test");

  // The whole original comes back.
  EXPECT_EQ(p.parts[2].body, std::string(kOriginal));

  // The text names each failed recipient, the remote host and its reply.
  const std::string& text = p.parts[0].body;
  EXPECT_NE(text.find("could not be delivered"), std::string::npos) << text;
  EXPECT_NE(text.find("bob@example.test"), std::string::npos);
  EXPECT_NE(text.find("mx.example.test"), std::string::npos);
  EXPECT_NE(text.find("User unknown"), std::string::npos);
  EXPECT_NE(text.find("carol@example.test"), std::string::npos);
  EXPECT_NE(text.find("send connector"), std::string::npos);  // what to do about 5.4.4
}

TEST(Report, EmptyRemoteAndDiagnosticOmitted) {
  ReportInput in = input();
  in.recipients = {{"dave@example.test", "4.4.7", "", ""}};
  auto blocks = status_blocks(parse_report(make_report(in).data).parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[1]["status"], "4.4.7");
  EXPECT_FALSE(blocks[1].contains("remote-mta"));
  EXPECT_FALSE(blocks[1].contains("diagnostic-code"));
}

TEST(Report, LargeOriginalReturnsHeadersOnly) {
  ReportInput in = input();
  in.original += std::string(200, 'x') + "\r\n";
  in.max_full_original = in.original.size();
  ParsedReport full = parse_report(make_report(in).data);
  ASSERT_EQ(full.parts.size(), 3u);
  EXPECT_EQ(full.parts[2].headers["content-type"], "message/rfc822");

  in.max_full_original = in.original.size() - 1;
  Report rep = make_report(in);
  ParsedReport p = parse_report(rep.data);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].headers["content-type"], "text/rfc822-headers");
  EXPECT_NE(p.parts[2].body.find("Message-ID: <orig-1@fabrikam.test>"), std::string::npos);
  EXPECT_EQ(p.parts[2].body.find("Hello Bob"), std::string::npos);
  EXPECT_EQ(rep.data.find("Hello Bob"), std::string::npos);
  EXPECT_NE(p.parts[0].body.find("too large"), std::string::npos);
}

TEST(Report, DelayReportSaysDelayed) {
  ReportInput in = input();
  in.kind = ReportInput::Kind::kDelay;
  in.recipients = {{"bob@example.test", "4.4.1", "mx.example.test", "421 4.4.1 try later"}};
  ParsedReport p = parse_report(make_report(in).data);
  EXPECT_EQ(p.top.headers["subject"], "Delivery delayed: Quarterly figures, revised");
  ASSERT_EQ(p.parts.size(), 3u);
  auto blocks = status_blocks(p.parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[1]["action"], "delayed");
  EXPECT_EQ(blocks[1]["status"], "4.4.1");
  EXPECT_NE(p.parts[0].body.find("delayed"), std::string::npos);
  EXPECT_NE(p.parts[0].body.find("still trying"), std::string::npos);
  EXPECT_EQ(p.parts[0].body.find("could not be delivered"), std::string::npos);
}

// RFC 3461 §4.3: RET=HDRS returns the header only, even of a small message.
TEST(Report, RetHdrsReturnsHeadersOnly) {
  ReportInput in = input();
  in.headers_only = true;
  Report rep = make_report(in);
  ParsedReport p = parse_report(rep.data);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].headers["content-type"], "text/rfc822-headers");
  EXPECT_EQ(rep.data.find("Hello Bob"), std::string::npos);
}

// RFC 3464 §2.2.1, §2.3.1: ENVID and ORCPT come back decoded from xtext; an encoded line break
// does not start a field of its own.
TEST(Report, EnvelopeIdAndOriginalRecipient) {
  ReportInput in = input();
  in.envid = "QQ+2B1+0D+0AX-Evil:+20yes";
  in.recipients[0].orcpt = "rfc822;Bob+2Bsales@example.test";
  ParsedReport p = parse_report(make_report(in).data);
  ASSERT_EQ(p.parts.size(), 3u);
  auto blocks = status_blocks(p.parts[1].body);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0]["original-envelope-id"], "QQ+1 X-Evil: yes");
  EXPECT_EQ(blocks[0].count("x-evil"), 0u);
  EXPECT_EQ(blocks[1]["original-recipient"], "rfc822; Bob+sales@example.test");
  EXPECT_EQ(blocks[2].count("original-recipient"), 0u);
}

// NOTIFY=SUCCESS (RFC 3461 §6.2): "delivered" into a mailbox here, "relayed" to a next hop
// without DSN; either returns the header only, whatever RET says (§4.3).
TEST(Report, SuccessReportsSayDeliveredOrRelayed) {
  for (auto kind : {ReportInput::Kind::kDelivered, ReportInput::Kind::kRelayed}) {
    ReportInput in = input();
    in.kind = kind;
    bool relayed = kind == ReportInput::Kind::kRelayed;
    in.recipients = {{"bob@example.test", "2.0.0", relayed ? "mx.example.test" : "", "250 2.0.0 OK"}};
    Report rep = make_report(in);
    ParsedReport p = parse_report(rep.data);
    EXPECT_EQ(p.top.headers["subject"], std::string(relayed ? "Relayed: " : "Delivered: ") + "Quarterly figures, revised");
    EXPECT_EQ(rep.message_id.rfind(relayed ? "<relayed." : "<delivered.", 0), 0u) << rep.message_id;
    ASSERT_EQ(p.parts.size(), 3u);
    auto blocks = status_blocks(p.parts[1].body);
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[1]["action"], relayed ? "relayed" : "delivered");
    EXPECT_EQ(blocks[1]["status"], "2.0.0");
    EXPECT_EQ(p.parts[2].headers["content-type"], "text/rfc822-headers");
    EXPECT_EQ(rep.data.find("Hello Bob"), std::string::npos);
    EXPECT_EQ(p.parts[0].body.find("could not be delivered"), std::string::npos);
    EXPECT_EQ(p.parts[0].body.find("What to do"), std::string::npos);
  }
}

TEST(Report, SubjectAbsentOrEmpty) {
  ReportInput in = input();
  in.original = "From: a@b.test\r\n\r\nSubject: in the body\r\n";
  EXPECT_EQ(parse_report(make_report(in).data).top.headers["subject"], "Undeliverable: (no subject)");
  in.original = "SUBJECT:   \r\nFrom: a@b.test\r\n\r\nbody\r\n";
  EXPECT_EQ(parse_report(make_report(in).data).top.headers["subject"], "Undeliverable: (no subject)");
  in.original = "subject: Hi\r\n\r\nbody\r\n";
  EXPECT_EQ(parse_report(make_report(in).data).top.headers["subject"], "Undeliverable: Hi");
}

TEST(Report, Utf8SubjectEncodedAndAddressesIn7Bit) {
  ReportInput in = input();
  in.original = "Subject: Gr\xC3\xBC\xC3\x9F" "e aus K\xC3\xB6ln\r\n\r\nbody\r\n";
  in.recipients = {{"j\xC3\xBCrgen@example.test", "5.1.1", "mx.example.test",
                    "550 5.1.1 J\xC3\xBCrgen unknown\r\n"}};
  Report rep = make_report(in);
  ParsedReport p = parse_report(rep.data);
  expect_7bit(p.top.header_text, "report header");
  EXPECT_EQ(p.top.headers["subject"], "Undeliverable: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=");
  ASSERT_EQ(p.parts.size(), 3u);
  expect_7bit(p.parts[0].body, "text part");
  expect_7bit(p.parts[1].body, "status part");
  auto blocks = status_blocks(p.parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[1]["final-recipient"], "utf-8; j\\x{FC}rgen@example.test");  // RFC 6533
  EXPECT_EQ(blocks[1]["diagnostic-code"], "smtp; 550 5.1.1 J??rgen unknown");
}

TEST(Report, CrlfEverywhereAndShortLines) {
  ReportInput in = input();
  // An original with LF-only lines; a long multi-line reply; a reply trying to add a field
  // with a bare CR; one word far longer than a line may be.
  in.original = "Subject: lf\nFrom: a@b.test\n\nbody line\nlast";
  std::string words = "550-5.7.1 first line\r\n550 5.7.1 ";
  for (int i = 0; i < 300; ++i) words += "word" + std::to_string(i) + " ";
  in.recipients = {{"bob@example.test", "5.7.1", "mx.example.test", words},
                   {"carol@example.test", "5.1.1", "mx.example.test", "550 5.1.1 no\rInjected: x"},
                   {"dave@example.test", "5.1.1", "mx.example.test", "550 " + std::string(2000, 'z')}};
  Report rep = make_report(in);
  expect_crlf_only(rep.data);
  expect_short_lines(rep.data);
  ParsedReport p = parse_report(rep.data);
  ASSERT_EQ(p.parts.size(), 3u);
  expect_7bit(p.parts[0].body, "text part");
  expect_7bit(p.parts[1].body, "status part");
  // Fields are folded to about 78 columns (RFC 5322 §2.1.1); only the unbreakable word is longer.
  for (const Part& part : {p.parts[0], p.parts[1]}) {
    size_t pos = 0;
    while (pos < part.body.size()) {
      size_t eol = part.body.find("\r\n", pos);
      std::string line = part.body.substr(pos, eol - pos);
      pos = eol + 2;
      if (line.find("zzzz") == std::string::npos) EXPECT_LE(line.size(), 78u) << line;
    }
  }
  auto blocks = status_blocks(p.parts[1].body);
  ASSERT_EQ(blocks.size(), 4u);
  EXPECT_TRUE(blocks[1]["diagnostic-code"].starts_with("smtp; 550-5.7.1 first line 550 5.7.1 word0 word1"))
      << blocks[1]["diagnostic-code"];
  EXPECT_FALSE(blocks[2].contains("injected"));
  EXPECT_EQ(blocks[2]["diagnostic-code"], "smtp; 550 5.1.1 no Injected: x");
  EXPECT_TRUE(blocks[3]["diagnostic-code"].ends_with("zzz...")) << "long reply is cut, and says so";
  EXPECT_EQ(p.parts[2].body, "Subject: lf\r\nFrom: a@b.test\r\n\r\nbody line\r\nlast\r\n");
}

TEST(Report, BoundaryAvoidsTheOriginal) {
  ReportInput in = input();
  std::string first = parse_report(make_report(in).data).boundary;
  in.original = std::string(kOriginal) + "--" + first + "\r\n--" + first + "_1--\r\n";
  Report rep = make_report(in);
  ParsedReport p = parse_report(rep.data);
  EXPECT_NE(p.boundary, first);
  EXPECT_EQ(in.original.find(p.boundary), std::string::npos);
  ASSERT_EQ(p.parts.size(), 3u);
  EXPECT_EQ(p.parts[2].body, in.original);
}

}  // namespace
}  // namespace starling::delivery
