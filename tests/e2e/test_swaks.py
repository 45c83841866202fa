"""swaks as a real client: plain, STARTTLS, PIPELINING, and both together.

swaks 20201014 (Debian 12) has no BDAT/CHUNKING option, so BDAT is driven over a raw socket in
test_bdat.py. swaks needs Net::SSLeay (Debian: libnet-ssleay-perl) for --tls.
"""

import re
import subprocess
import unittest

from starling_fixture import DaemonTestCase, FQDN, SERVER_NAME, unfolded_headers, unique_token


def swaks_has_tls():
    r = subprocess.run(["swaks", "--support"], capture_output=True, text=True)
    return "=== TLS supported" in (r.stdout + r.stderr)


class Swaks(DaemonTestCase):
    def swaks(self, *args, to="u@example.test", token=None):
        token = token or unique_token("swaks")
        cmd = ["swaks", "--server", "127.0.0.1", "--port", str(self.starling.port),
               "--to", to, "--from", "a@client.test", "--helo", "swaks.client.test",
               "--header", f"Subject: {token}", "--body", f"body {token}",
               "--timeout", "20", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr, token

    def require_tls(self):
        self.assertTrue(swaks_has_tls(),
                        "swaks cannot do TLS: Net::SSLeay missing (apt install libnet-ssleay-perl)")

    def delivered_received(self, token, user="u"):
        (path,) = self.wait_delivered(token, user=user)
        data = self.starling.read(path)
        return [v for n, v in unfolded_headers(data) if n.lower() == "received"][0]

    def queued_id(self, out):
        m = re.search(r"<[-~]  250 2\.0\.0 OK queued as (\S+)", out)
        self.assertIsNotNone(m, f"no '250 2.0.0 OK queued as' in swaks output:\n{out}")
        return m.group(1)

    def test_plain(self):
        code, out, token = self.swaks()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"<-  220 " + re.escape(FQDN), out)
        qid = self.queued_id(out)
        received = self.delivered_received(token)
        for part in ("swaks.client.test", "[127.0.0.1]", f"by {FQDN}", qid):
            self.assertIn(part, received, f"Received: {received}")
        self.assertRegex(received, r"\bwith ESMTP\b(?!S)", received)

    def test_starttls(self):
        self.require_tls()
        code, out, token = self.swaks("--tls")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"=== TLS started with cipher TLSv1\.3:", out)
        self.assertRegex(out, r"TLS peer DN=\"/CN=" + SERVER_NAME + r"\"", out)
        self.assertRegex(out, r" -> STARTTLS\n<-  220 2\.", out)
        self.assertRegex(out, r" ~> EHLO swaks\.client\.test\n<~  250-", out)
        self.assertNotRegex(out, r"<~  250[- ]STARTTLS", "STARTTLS offered inside TLS")
        qid = self.queued_id(out)
        received = self.delivered_received(token)
        self.assertIn(qid, received)
        self.assertRegex(received, r"with ESMTPS \(TLSv1\.3 cipher \S+", received)

    def test_starttls_tls12(self):
        self.require_tls()
        code, out, token = self.swaks("--tls", "--tls-protocol", "tlsv1_2")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"=== TLS started with cipher TLSv1\.2:ECDHE-", out)
        self.queued_id(out)
        received = self.delivered_received(token)
        self.assertRegex(received, r"with ESMTPS \(TLSv1\.2 cipher \S+", received)

    def test_starttls_tls11_refused(self):
        self.require_tls()
        code, out, token = self.swaks("--tls", "--tls-protocol", "tlsv1_1",
                                      "--tls-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(code, 0, out)
        self.assertNotIn("TLS started", out, out)
        self.assertNotRegex(out, r"queued as", out)

    def test_pipeline(self):
        code, out, token = self.swaks("--pipeline", to="u@example.test,v@example.test")
        self.assertEqual(code, 0, out)
        # Pipelined: MAIL, both RCPTs and DATA are sent before the first reply arrives.
        self.assertRegex(out, r" -> MAIL FROM:<a@client\.test>\n -> RCPT TO:<u@example\.test>\n"
                              r" -> RCPT TO:<v@example\.test>\n -> DATA\n<-  250 2\.1\.0", out)
        self.queued_id(out)
        self.wait_delivered(token, user="u")
        self.wait_delivered(token, user="v")

    def test_pipeline_with_refused_recipient(self):
        code, out, token = self.swaks("--pipeline", to="u@example.test,x@elsewhere.test")
        self.assertRegex(out, r"<\*\* 550 5\.7\.54", out)
        self.queued_id(out)
        self.wait_delivered(token, user="u")
        self.assertEqual(self.starling.delivered(user="x"), [])
        self.assertEqual(self.starling.delivered(domain="elsewhere.test"), [])

    def test_starttls_and_pipeline(self):
        self.require_tls()
        code, out, token = self.swaks("--tls", "--pipeline")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r" ~> MAIL FROM:<a@client\.test>\n ~> RCPT TO:<u@example\.test>\n"
                              r" ~> DATA\n", out)
        qid = self.queued_id(out)
        received = self.delivered_received(token)
        self.assertIn(qid, received)
        self.assertRegex(received, r"with ESMTPS \(TLSv1\.3 cipher ", received)

    def test_relay_refused(self):
        code, out, token = self.swaks(to="someone@elsewhere.test")
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, r"<\*\* 550 5\.7\.54", out)
        self.assertNotRegex(out, r"queued as", out)


if __name__ == "__main__":
    unittest.main()
