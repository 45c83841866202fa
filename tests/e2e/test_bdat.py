"""CHUNKING / BDAT (RFC 3030) over a raw socket.

swaks 20201014 (the Debian 12 version) has no BDAT option and smtplib has no BDAT support, so the
chunks are written by hand. BDAT content is counted, not dot-terminated: dots are not unstuffed
and a CRLF.CRLF inside a chunk is just content, never the end of the message.
"""

import unittest

from starling_fixture import DaemonTestCase, FQDN, unfolded_headers, unique_token, starts_as_delivered


class Bdat(DaemonTestCase):
    def envelope(self, c, user="u"):
        c.greeting()
        kw = c.ehlo()
        self.assertTrue(any(l.split()[0].upper() == "CHUNKING" for l in kw.lines[1:]), str(kw))
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250, "2.1.0")
        self.assertReply(c.cmd(f"RCPT TO:<{user}@example.test>"), 250, "2.1.5")

    def bdat(self, c, chunk, last=False):
        c.send(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk)
        return c.reply()

    def delivered_bytes(self, token, user="u"):
        (path,) = self.wait_delivered(token, user=user)
        data = self.starling.read(path)
        self.assertTrue(starts_as_delivered(data), data[:80])
        return data

    def test_single_chunk_last(self):
        token = unique_token("bdat")
        msg = f"Subject: {token}\r\n\r\nline\r\n..not unstuffed\r\n.\r\nafter a lone dot\r\n"
        c = self.client()
        self.envelope(c)
        qid = self.assertQueued(self.bdat(c, msg.encode(), last=True))
        self.assertReply(c.cmd("QUIT"), 221)
        data = self.delivered_bytes(token)
        self.assertTrue(data.endswith(msg.replace("\r\n", "\n").encode()),
                        f"content changed: {data!r}")
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"][0]
        self.assertIn(qid, received)
        self.assertIn(f"by {FQDN}", received)

    def test_many_chunks_split_anywhere(self):
        token = unique_token("bdat")
        msg = (f"Subject: {token}\r\nX-Filler: " + "\r\n\t".join(["x" * 900] * 4) + "\r\n\r\n" +
               "".join(f"line {i} of the body\r\n" for i in range(200))).encode()
        # Cuts inside a line, between CR and LF, and right after CRLF.
        crlf = msg.index(b"\r\n", 100)
        cuts = sorted({1, 7, crlf + 1, crlf + 2, 3100, 3101, len(msg) - 1})
        pieces = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
        c = self.client()
        self.envelope(c)
        for piece in pieces:
            r = self.bdat(c, piece)
            self.assertReply(r, 250, "2.", f"intermediate BDAT: {r}")
            self.assertIsNone(r.queue_id(), f"queued before LAST: {r}")
        self.assertQueued(self.bdat(c, b"", last=True))  # BDAT 0 LAST
        data = self.delivered_bytes(token)
        self.assertTrue(data.endswith(msg.replace(b"\r\n", b"\n")), "content changed")

    def test_pipelined_envelope_and_chunks(self):
        token = unique_token("bdat")
        part1 = f"Subject: {token}\r\n\r\nfirst ".encode()
        part2 = b"second\r\n"
        c = self.client()
        c.greeting()
        c.ehlo()
        c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<u@example.test>\r\n"
               b"RCPT TO:<x@elsewhere.test>\r\nRCPT TO:<v@example.test>\r\n" +
               f"BDAT {len(part1)}\r\n".encode() + part1 +
               f"BDAT {len(part2)} LAST\r\n".encode() + part2 + b"QUIT\r\n", "random")
        self.assertReply(c.reply(), 250, "2.1.0")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 550, "5.7.54")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 250, "2.")
        self.assertQueued(c.reply())
        self.assertReply(c.reply(), 221, "2.0.0")
        c.expect_closed()
        for user in ("u", "v"):
            data = self.delivered_bytes(token, user)
            self.assertTrue(data.endswith(b"\n\nfirst second\n"), data)

    def test_commands_inside_a_chunk_are_content(self):
        token = unique_token("bdat")
        evil = unique_token("evil")
        msg = (f"Subject: {token}\r\n\r\nhello\r\n.\r\nMAIL FROM:<x@evil.test>\r\n"
               f"RCPT TO:<victim@example.test>\r\nDATA\r\n{evil}\r\n.\r\n").encode()
        c = self.client()
        self.envelope(c)
        self.assertQueued(self.bdat(c, msg, last=True))
        c.expect_silence(0.5)
        self.assertReply(c.cmd("QUIT"), 221)
        data = self.delivered_bytes(token)
        self.assertTrue(data.endswith(msg.replace(b"\r\n", b"\n")), data)
        self.assertEqual(self.starling.delivered(user="victim"), [])

    def test_bdat_without_transaction_is_refused(self):
        c = self.client()
        c.greeting()
        c.ehlo()
        r = self.bdat(c, b"hello\r\n", last=True)
        self.assertEqual(r.code, 503, str(r))
        self.assertEnhanced(r)
        # The 7 octets were consumed as data, not read as a command: the session still works.
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_data_after_bdat_is_refused(self):
        c = self.client()
        self.envelope(c)
        self.assertReply(self.bdat(c, b"Subject: x\r\n"), 250, "2.")
        r = c.cmd("DATA")
        self.assertEqual(r.code, 503, f"RFC 3030 §3: DATA after BDAT must fail: {r}")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")

    def test_bad_bdat_size_argument(self):
        c = self.client()
        self.envelope(c)
        r = c.cmd("BDAT ten")
        self.assertEqual(r.code // 100, 5, str(r))
        self.assertEnhanced(r)


if __name__ == "__main__":
    unittest.main()
