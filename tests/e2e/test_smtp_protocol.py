"""The SMTP contract over a raw socket: banner, EHLO keywords, enhanced status codes, SIZE,
HTTP verbs, dot-unstuffing, and the delivered file (LF endings, Received: first)."""

import re
import unittest

from starling_fixture import (DaemonTestCase, FQDN, starts_as_delivered, tls_client_context, unfolded_headers,
                              unique_token)

EHLO_KEYWORDS = ["SIZE", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS",
                 "SMTPUTF8", "CHUNKING"]


def keywords(ehlo_reply):
    return {line.split()[0].upper(): line for line in ehlo_reply.lines[1:] if line.strip()}


class Protocol(DaemonTestCase):
    def test_banner_names_the_fqdn(self):
        c = self.client()
        r = c.reply()
        self.assertEqual(r.code, 220, str(r))
        self.assertEqual(r.lines[0].split()[0], FQDN, f"banner: {r}")

    def test_ehlo_lists_the_extensions(self):
        c = self.client()
        c.greeting()
        r = c.ehlo("client.test")
        self.assertEqual(r.lines[0].split()[0], FQDN, f"EHLO first line: {r}")
        kw = keywords(r)
        for k in EHLO_KEYWORDS:
            self.assertIn(k, kw, f"EHLO lacks {k}: {r}")
        size = kw["SIZE"].split()
        if len(size) > 1:
            self.assertTrue(size[1].isdigit() and int(size[1]) > 0, f"bad SIZE: {r}")

    def test_helo_works_without_extensions(self):
        c = self.client()
        c.greeting()
        r = c.cmd("HELO client.test")
        self.assertEqual(r.code, 250, str(r))
        self.assertEqual(len(r.lines), 1, f"HELO reply must be one line: {r}")
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250, "2.1.0")

    def test_every_reply_carries_an_enhanced_code(self):
        c = self.client()
        c.greeting()
        c.ehlo()
        token = unique_token()
        dialog = ["NOOP", "RSET", "MAIL FROM:<a@client.test>", "RCPT TO:<u@example.test>",
                  "RCPT TO:<x@elsewhere.test>", "MAIL FROM:<b@client.test>", "FROB",
                  "RCPT TO:<bad address"]
        for line in dialog:
            with self.subTest(command=line):
                self.assertEnhanced(c.cmd(line))
        r = c.cmd("DATA")
        self.assertEqual(r.code, 354, str(r))
        r = c.cmd(f"Subject: {token}\r\n\r\nbody\r\n.")
        self.assertQueued(r)
        self.assertEnhanced(r)
        r = c.cmd("QUIT")
        self.assertReply(r, 221, "2.0.0")
        c.expect_closed()

    def test_replies_and_codes(self):
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<x@elsewhere.test>"), 550, "5.7.54")
        self.assertReply(c.cmd("RCPT TO:<U@EXAMPLE.TEST>"), 250, "2.1.5")  # domains: any case
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")

    def test_null_sender_is_accepted(self):
        # RFC 5321 §4.5.5: bounces use MAIL FROM:<>.
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250, "2.1.5")

    def test_declared_size_over_the_limit_is_refused(self):
        # RFC 1870 §6.2: MAIL FROM with SIZE= above the advertised maximum gets 552.
        c = self.client()
        c.greeting()
        kw = keywords(c.ehlo())
        parts = kw.get("SIZE", "SIZE").split()
        if len(parts) < 2 or int(parts[1]) == 0:
            self.skipTest("no fixed SIZE limit advertised")
        limit = int(parts[1])
        self.assertReply(c.cmd(f"MAIL FROM:<a@client.test> SIZE={limit + 1}"), 552, "5.3.4")
        self.assertReply(c.cmd(f"MAIL FROM:<a@client.test> SIZE={limit}"), 250, "2.1.0")

    def test_http_request_gets_500_and_close(self):
        for verb in ("GET / HTTP/1.1", "POST /x HTTP/1.0", "CONNECT 127.0.0.1:25 HTTP/1.1"):
            with self.subTest(verb=verb):
                c = self.client()
                c.greeting()
                c.send(f"{verb}\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n")
                r = c.reply()
                self.assertEqual(r.code, 500, f"reply to {verb!r}: {r}")
                self.assertEnhanced(r)
                c.expect_closed(5)

    def test_http_request_after_ehlo_gets_500_and_close(self):
        c = self.client()
        c.greeting()
        c.ehlo()
        r = c.cmd("GET /index.html HTTP/1.1")
        self.assertEqual(r.code, 500, str(r))
        c.expect_closed(5)

    def test_delivered_file_format_and_dot_unstuffing(self):
        token = unique_token()
        body_in = (f"Subject: {token}\r\nFrom: a@client.test\r\n\r\n"
                   "line one\r\n..starts with one dot\r\n...two dots\r\n"
                   "last line\r\n")
        c = self.client()
        c.greeting()
        c.ehlo("proto.client.test")
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(body_in)
        qid = self.assertQueued(c.cmd("."))
        c.cmd("QUIT")
        (path,) = self.wait_delivered(token, user="u")
        data = self.starling.read(path)
        self.assertTrue(starts_as_delivered(data), f"first line: {data[:80]!r}")
        self.assertNotIn(b"\r", data, "delivered file must use LF line endings")
        expected = (body_in.replace("\r\n..", "\r\n.").replace("\r\n", "\n")).encode()
        self.assertTrue(data.endswith(expected),
                        f"content changed in transit:\n{data!r}\nexpected to end with\n"
                        f"{expected!r}")
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"][0]
        for part in ("proto.client.test", "[127.0.0.1]", f"by {FQDN}", qid):
            self.assertIn(part, received, f"Received: {received}")
        self.assertRegex(received, r"\bwith ESMTP\b(?!S)", f"Received: {received}")

    def test_starttls_not_offered_inside_tls_and_state_reset(self):
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)  # forgotten by STARTTLS
        r = c.cmd("STARTTLS")
        self.assertEqual(r.code, 220, str(r))
        self.assertEnhanced(r)
        c.starttls(tls_client_context())
        # RFC 3207 §4.2: the server discards all knowledge from before TLS; EHLO is required.
        self.assertEqual(c.cmd("RCPT TO:<u@example.test>").code, 503)
        kw = keywords(c.ehlo())
        self.assertNotIn("STARTTLS", kw, "STARTTLS offered again inside TLS")
        for k in ("PIPELINING", "8BITMIME", "CHUNKING", "SMTPUTF8", "ENHANCEDSTATUSCODES"):
            self.assertIn(k, kw)
        r = c.cmd("RCPT TO:<u@example.test>")
        self.assertEqual(r.code, 503, f"MAIL from before STARTTLS survived: {r}")
        r = c.cmd("STARTTLS")
        self.assertNotEqual(r.code, 220, "second STARTTLS accepted inside TLS")
        self.assertReply(c.cmd("QUIT"), 221)


if __name__ == "__main__":
    unittest.main()
