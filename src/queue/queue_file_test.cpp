// The queue file's delivery status notification lines (RFC 3461 requests): kept through a write
// and a read, absent from older files, and damage when malformed or out of place.
#include "queue/queue_file.hpp"

#include <gtest/gtest.h>

namespace starling::queue {
namespace {

// A complete queue file with `fields` as its CRC-covered header lines.
std::string file_with(const std::string& fields, const std::string& content = "Subject: x\r\n\r\nbody\r\n") {
  uint32_t crc = crc_combine(crc_update(0, fields), crc_update(0, content), content.size());
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return "STARLING-QUEUE 1\n" + fields + "crc32 " + hex + "\n\n" + content + "\nEND\n";
}

Envelope dsn_envelope() {
  Envelope e;
  e.mail_from = "a@b.example";
  e.recipients = {"c@d.example", "e@d.example", "f@d.example"};
  e.dsn_ret = "HDRS";
  e.dsn_envid = "QQ+2B1";
  e.dsn = {{RecipientDsn::kSuccess | RecipientDsn::kDelay, "rfc822;c+2Bx@d.example"},
           {},
           {RecipientDsn::kNever, ""}};
  return e;
}

TEST(QueueFile, DsnRequestsSurviveWriteAndRead) {
  Envelope e = dsn_envelope();
  ASSERT_EQ(envelope_problem(e), "");
  std::string fields = header_fields(e, 20);
  EXPECT_EQ(fields,
            "from a@b.example\nret HDRS\nenvid QQ+2B1\n"
            "rcpt c@d.example\nnotify SUCCESS,DELAY\norcpt rfc822;c+2Bx@d.example\n"
            "rcpt e@d.example\nrcpt f@d.example\nnotify NEVER\nsize 20\n");
  auto m = parse_queue_file("q1", file_with(fields));
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->envelope.dsn_ret, "HDRS");
  EXPECT_EQ(m->envelope.dsn_envid, "QQ+2B1");
  EXPECT_EQ(m->envelope.dsn, e.dsn);
  EXPECT_EQ(m->envelope.recipients, e.recipients);
}

TEST(QueueFile, FileWithoutDsnLinesReadsAsBefore) {
  auto m = parse_queue_file("q1", file_with("from a@b.example\nrcpt c@d.example\nsize 20\n"));
  ASSERT_TRUE(m) << m.error();
  EXPECT_TRUE(m->envelope.dsn.empty());
  EXPECT_EQ(m->envelope.dsn_ret, "");
  EXPECT_EQ(m->envelope.dsn_envid, "");
}

// Checksummed correctly, yet not what the writer writes: recovery calls it damage.
TEST(QueueFile, MalformedOrMisplacedDsnLinesAreDamage) {
  const std::string orcpt501 = "rfc822;" + std::string(494, 'a');
  for (std::string fields : {
           std::string("from a@b.example\nret BODY\nrcpt c@d.example\nsize 20\n"),
           std::string("from a@b.example\nenvid bad+ZZ\nrcpt c@d.example\nsize 20\n"),
           std::string("from a@b.example\nenvid x\nret HDRS\nrcpt c@d.example\nsize 20\n"),
           std::string("from a@b.example\nret HDRS\nret HDRS\nrcpt c@d.example\nsize 20\n"),
           std::string("from a@b.example\nnotify NEVER\nrcpt c@d.example\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\nret HDRS\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\nnotify NEVER,SUCCESS\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\nnotify SUCCESS\nnotify DELAY\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\norcpt x\nnotify DELAY\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\norcpt bob@d.example\nsize 20\n"),
           std::string("from a@b.example\nrcpt c@d.example\norcpt ") + orcpt501 + "\nsize 20\n",
           std::string("from a@b.example\nrcpt c@d.example\nnotify \nsize 20\n"),
       }) {
    EXPECT_FALSE(parse_queue_file("q1", file_with(fields))) << fields;
  }
}

TEST(QueueFile, WriterRefusesWhatRecoveryWouldCallDamage) {
  Envelope e = dsn_envelope();
  e.dsn.pop_back();
  EXPECT_NE(envelope_problem(e), "");  // not one per recipient
  e = dsn_envelope();
  e.dsn[0].notify = RecipientDsn::kNever | RecipientDsn::kSuccess;
  EXPECT_NE(envelope_problem(e), "");
  e = dsn_envelope();
  e.dsn[1].orcpt = "rfc822;a b";
  EXPECT_NE(envelope_problem(e), "");
  e = dsn_envelope();
  e.dsn_envid = std::string(101, 'e');
  EXPECT_NE(envelope_problem(e), "");
  e = dsn_envelope();
  e.dsn_ret = "hdrs";
  EXPECT_NE(envelope_problem(e), "");
}

}  // namespace
}  // namespace starling::queue
