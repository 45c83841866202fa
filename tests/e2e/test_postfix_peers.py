"""Postfix's own tools as real peers: smtp-source sends concurrent sessions of mail (pipelined
and not), and posttls-finger checks the STARTTLS negotiation and the certificate as a Postfix
SMTP client would see it."""

import shutil
import subprocess
import time
import unittest

from starling_fixture import DOMAIN, FQDN, HOST, DaemonTestCase

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
POSTTLS_FINGER = shutil.which("posttls-finger") or "/usr/sbin/posttls-finger"


@unittest.skipUnless(shutil.which(SMTP_SOURCE) and shutil.which(POSTTLS_FINGER),
                     "Postfix's tools are missing (scripts/install-deps installs postfix)")
class PostfixPeers(DaemonTestCase):
    def delivered_to(self, user):
        return self.starling.delivered(user=user, domain=DOMAIN)

    def wait_count(self, user, n, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.delivered_to(user)) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(self.delivered_to(user))

    def test_smtp_source_concurrent_sessions_all_delivered(self):
        r = subprocess.run([SMTP_SOURCE, "-s", "5", "-m", "60", "-l", "2048", "-M", "client.test",
                            "-f", "a@client.test", "-t", f"bulk@{DOMAIN}", self.starling.url()],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(self.wait_count("bulk", 60), 60)

    def test_smtp_source_several_messages_per_session(self):
        # -d: keep the session for the next message; -r 3: three recipients each.
        r = subprocess.run([SMTP_SOURCE, "-d", "-s", "2", "-m", "10", "-r", "3", "-M", "client.test",
                            "-f", "a@client.test", "-t", f"multi@{DOMAIN}", self.starling.url()],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        # smtp-source names the extra recipients 2multi@, 3multi@: each gets all 10 messages.
        for user in ("multi", "2multi", "3multi"):
            self.assertEqual(self.wait_count(user, 10), 10, user)

    def test_posttls_finger_sees_tls_and_the_setup_certificate(self):
        r = subprocess.run([POSTTLS_FINGER, "-c", "-l", "encrypt", "-P", "/etc/ssl/certs",
                            f"[{HOST}]:{self.starling.port}"],
                           capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode(errors="replace")
        self.assertIn("TLS connection established", out, out)
        self.assertRegex(out, r"TLSv1\.[23]")
        self.assertIn("CN=mx", out.replace(" ", ""), out)
        self.assertNotIn("Verified TLS connection", out)  # self-signed: encrypted, not verified


if __name__ == "__main__":
    unittest.main()
