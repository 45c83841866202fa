"""Attacks that must fail against the real daemon.

SMTP smuggling: bare LF / bare CR around the end-of-data dot must not end DATA; the message is
refused with 554 5.6.0 and the commands hidden in it never run (no evil message is delivered).
STARTTLS command injection (CVE-2011-0411 class): plaintext pipelined after STARTTLS is discarded
and has no effect inside the TLS session (RFC 3207 §4.2).
"""

import unittest

from starling_fixture import DaemonTestCase, FQDN, tls_client_context, unique_token

SMUGGLED = ("MAIL FROM:<x@evil.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
            "Subject: {tag}\r\n\r\nsmuggled {tag}\r\n.\r\n")


class Smuggling(DaemonTestCase):
    def send_sentinel_and_check_no_evil(self, tags):
        token = unique_token("sentinel")
        c = self.client()
        self.send_message(c, token, token, rcpt="victim@example.test")
        c.cmd("QUIT")
        self.wait_delivered(token, user="victim")
        for tag in tags:
            self.assertEqual(self.starling.find(tag), [],
                             f"smuggled/injected message {tag} was delivered")
        self.assertEqual(self.starling.find("x@evil.test"), [], "evil sender delivered")

    def smuggle(self, lead_in, split="whole"):
        """DATA content = `lead_in` + hidden transaction + the real end of data."""
        tag = unique_token("evil")
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(f"Subject: outer {tag}\r\n\r\n{lead_in}" + SMUGGLED.format(tag=tag), split)
        r = c.reply()
        self.assertReply(r, 554, "5.6.0", f"message with bare CR/LF not refused: {r}")
        c.expect_silence(0.5)  # no replies to the hidden MAIL/RCPT/DATA
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221)
        return tag

    def test_issue_example_bare_lf_dot(self):
        tag = self.smuggle("hi\n.\r\n")
        self.send_sentinel_and_check_no_evil([tag])

    def test_variants_in_all_splits(self):
        tags = []
        for lead_in in ("hi\n.\r\n", "hi\n.\n", "hi\r\n.\n", "hi\r.\r\n", "hi\r\n.\r",
                        "hi\r.\r", "hi\n\n.\n\n", "hi\r\n\n.\r\n"):
            for split in ("whole", "bytewise", "random"):
                with self.subTest(lead_in=lead_in, split=split):
                    tags.append(self.smuggle(lead_in, split))
        self.send_sentinel_and_check_no_evil(tags)

    def test_correct_message_after_refused_one_is_accepted(self):
        self.smuggle("hi\n.\r\n")
        token = unique_token()
        c = self.client()
        self.send_message(c, token, "fine")
        self.wait_delivered(token, user="u")


class StartTlsInjection(DaemonTestCase):
    def inject(self, injected):
        c = self.client()
        c.greeting()
        c.ehlo()
        c.send(b"STARTTLS\r\n" + injected)  # one packet: TCP_NODELAY, one sendall
        r = c.reply()
        self.assertEqual(r.code, 220, f"STARTTLS: {r}")
        c.starttls(tls_client_context())  # fails if a reply to the injection came in clear
        c.expect_silence(1.0)  # nothing pipelined gets an answer inside TLS
        return c

    def test_injected_rset_gets_no_answer(self):
        c = self.inject(b"RSET\r\n")
        r = c.cmd("EHLO client.test")
        self.assertEqual(r.code, 250, str(r))
        self.assertEqual(r.lines[0].split()[0], FQDN,
                         f"first reply inside TLS is not the EHLO reply: {r}")
        self.assertGreater(len(r.lines), 1, f"not an EHLO reply: {r}")
        self.assertReply(c.cmd("QUIT"), 221)

    def test_injected_mail_from_has_no_effect(self):
        c = self.inject(b"MAIL FROM:<x@evil.test>\r\n")
        c.ehlo()
        r = c.cmd("RCPT TO:<u@example.test>")
        self.assertEqual(r.code, 503, f"injected MAIL FROM took effect: {r}")
        self.assertReply(c.cmd("QUIT"), 221)

    def test_injected_ehlo_and_mail_have_no_effect(self):
        c = self.inject(b"EHLO evil.test\r\nMAIL FROM:<x@evil.test>\r\n")
        r = c.cmd("RCPT TO:<u@example.test>")  # no EHLO, no MAIL inside TLS
        self.assertEqual(r.code, 503, f"injected commands took effect: {r}")
        self.assertReply(c.cmd("QUIT"), 221)

    def test_injected_transaction_is_not_delivered(self):
        tag = unique_token("evil")
        c = self.inject(SMUGGLED.format(tag=tag).encode())
        token = unique_token("sentinel")
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<victim@example.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\n{token}\r\n."))
        c.cmd("QUIT")
        self.wait_delivered(token, user="victim")
        self.assertEqual(self.starling.find(tag), [], "injected plaintext message delivered")


if __name__ == "__main__":
    unittest.main()
