"""Python smtplib as a real client: plain, STARTTLS (TLS 1.2 and 1.3), several recipients,
8BITMIME, SMTPUTF8, and the Received: header Starling adds."""

import smtplib
import ssl
import unittest
import warnings
from email.message import EmailMessage

from starling_fixture import (DaemonTestCase, FQDN, HOST, QUEUED_RE, starts_as_delivered, tls_client_context,
                              unfolded_headers, unique_token)


class Smtplib(DaemonTestCase):
    def connect(self, helo="py.client.test"):
        s = smtplib.SMTP(HOST, self.starling.port, local_hostname=helo, timeout=15)
        self.addCleanup(self.close, s)
        return s

    @staticmethod
    def close(s):
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()

    def send(self, s, token, rcpts=("u@example.test",), body=None, mail_options=()):
        body = body or f"Subject: {token}\r\nFrom: a@client.test\r\n\r\nbody {token}\r\n".encode()
        code, resp = s.mail("a@client.test", list(mail_options))
        self.assertEqual(code, 250, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            self.assertEqual(code, 250, resp)
        code, resp = s.data(body)
        self.assertEqual(code, 250, resp)
        m = QUEUED_RE.match(resp.decode())
        self.assertIsNotNone(m, f"expected '2.0.0 OK queued as <id>', got {resp!r}")
        return m.group(1)

    def received(self, token, user="u"):
        (path,) = self.wait_delivered(token, user=user)
        data = self.starling.read(path)
        self.assertTrue(starts_as_delivered(data), data[:80])
        self.assertNotIn(b"\r", data)
        return data, [v for n, v in unfolded_headers(data) if n.lower() == "received"][0]

    def test_plain_message_and_received_header(self):
        token = unique_token("py")
        s = self.connect()
        s.ehlo()
        for ext in ("size", "pipelining", "8bitmime", "enhancedstatuscodes", "starttls",
                    "smtputf8", "chunking"):
            self.assertTrue(s.has_extn(ext), f"EHLO lacks {ext}: {s.esmtp_features}")
        qid = self.send(s, token)
        data, received = self.received(token)
        for part in ("py.client.test", "[127.0.0.1]", f"by {FQDN}", qid):
            self.assertIn(part, received, f"Received: {received}")
        self.assertRegex(received, r"\bwith ESMTP\b(?!S)", received)
        self.assertIn(f"\n\nbody {token}\n".encode(), data)

    def test_send_message_api(self):
        token = unique_token("py")
        msg = EmailMessage()
        msg["Subject"] = token
        msg["From"] = "a@client.test"
        msg["To"] = "u@example.test, v@example.test"
        msg.set_content(f"hello {token}\n.\n..\nend\n")
        s = self.connect()
        refused = s.send_message(msg)
        self.assertEqual(refused, {})
        for user in ("u", "v"):
            data, _ = self.received(token, user)
            self.assertIn(f"hello {token}\n.\n..\nend\n".encode(), data)

    def test_starttls_tls13_received_header(self):
        token = unique_token("py")
        s = self.connect()
        s.ehlo()
        code, resp = s.starttls(context=tls_client_context())
        self.assertEqual(code, 220, resp)
        self.assertEqual(s.sock.version(), "TLSv1.3")
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"), "STARTTLS offered inside TLS")
        qid = self.send(s, token)
        _, received = self.received(token)
        self.assertIn(qid, received)
        self.assertIn("[127.0.0.1]", received)
        self.assertIn(f"by {FQDN}", received)
        cipher = s.sock.cipher()[0]
        self.assertRegex(received, r"with ESMTPS \(TLSv1\.3 cipher \S+", received)
        self.assertIn(cipher, received, f"negotiated cipher {cipher} not in Received: {received}")

    def test_starttls_tls12_ecdhe(self):
        token = unique_token("py")
        s = self.connect()
        s.ehlo()
        v12 = ssl.TLSVersion.TLSv1_2
        s.starttls(context=tls_client_context(v12, v12))
        self.assertEqual(s.sock.version(), "TLSv1.2")
        cipher = s.sock.cipher()[0]
        self.assertTrue(cipher.startswith("ECDHE-"), cipher)
        s.ehlo()
        self.send(s, token)
        _, received = self.received(token)
        self.assertRegex(received, r"with ESMTPS \(TLSv1\.2 cipher \S+", received)

    def test_starttls_tls11_refused(self):
        s = self.connect()
        s.ehlo()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            v11 = ssl.TLSVersion.TLSv1_1
            ctx = tls_client_context(v11, v11)
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")  # the client is willing; only the server refuses
        with self.assertRaises((ssl.SSLError, OSError)):
            s.starttls(context=ctx)

    def test_recipient_outside_accepted_domains(self):
        token = unique_token("py")
        s = self.connect()
        body = f"Subject: {token}\r\n\r\nx\r\n"
        refused = s.sendmail("a@client.test", ["u@example.test", "x@elsewhere.test"], body)
        self.assertIn("x@elsewhere.test", refused)
        code, resp = refused["x@elsewhere.test"]
        self.assertEqual(code, 550, resp)
        self.assertTrue(resp.startswith(b"5.7.54"), resp)
        self.received(token)
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
            s.sendmail("a@client.test", ["y@elsewhere.test"], body)
        self.assertEqual(cm.exception.recipients["y@elsewhere.test"][0], 550)

    def test_8bitmime_body_kept_byte_for_byte(self):
        token = unique_token("py")
        body = (f"Subject: {token}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n"
                "Grüße aus Zürich — ½ € ✓\r\n\xff\xfe bytes? no: text\r\n").encode("utf-8")
        s = self.connect()
        s.ehlo()
        self.send(s, token, body=body, mail_options=["BODY=8BITMIME"])
        data, _ = self.received(token)
        self.assertTrue(data.endswith(body.replace(b"\r\n", b"\n")), data)

    def test_smtputf8_sender_and_headers(self):
        token = unique_token("py")
        s = self.connect()
        s.ehlo()
        s.command_encoding = "utf-8"
        code, resp = s.mail("jörg@bücher.client.test", ["SMTPUTF8", "BODY=8BITMIME"])
        self.assertEqual(code, 250, resp)
        code, resp = s.rcpt("u@example.test")
        self.assertEqual(code, 250, resp)
        body = f"From: Jörg <jörg@bücher.client.test>\r\nSubject: {token} ✓\r\n\r\nhej\r\n"
        code, resp = s.data(body.encode("utf-8"))
        self.assertEqual(code, 250, resp)
        data, _ = self.received(token)
        self.assertTrue(data.endswith(body.replace("\r\n", "\n").encode("utf-8")), data)

    def test_many_messages_one_session(self):
        s = self.connect()
        s.ehlo()
        tokens = [unique_token("py") for _ in range(20)]
        ids = [self.send(s, t) for t in tokens]
        self.assertEqual(len(set(ids)), len(ids), f"queue ids repeat: {ids}")
        for t in tokens:
            self.received(t)


if __name__ == "__main__":
    unittest.main()
