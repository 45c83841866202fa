"""Outbound STARTTLS against real next hops: a private Postfix instance (peers.PostfixInstance:
its own config, queue and Maildir, smtpd on a free loopback port with a certificate from a test
CA, TLS logged with smtpd_tls_loglevel=1) and a second Starling. Checks that relayed mail
arrives over TLS, that DomainValidation and CertificateValidation hold (right name and trusted
CA deliver; a wrong TlsDomain or an untrusted CA keep the message queued with a reply saying
why), and that the certificate Starling presents as a TLS client is the one its send connector's
Fqdn selects (the receiving Starling logs `TLS client certificate` with its thumbprint).
"""

import re
import shutil
import sys
import tempfile
import time
import unittest
from pathlib import Path

from cert_factory import CertificateAuthority
from peers import PostfixInstance, postfix_available
from starling_cli import OutboundMixin
from starling_fixture import HOST, DaemonTestCase, Starling, unfolded_headers, unique_token

SENDER = "sender@example.test"
PF_DOMAIN = "postfix.test"
PF_HOST = "mx.postfix.test"


def norm_thumb(text):
    return re.sub(r"[^0-9A-F]", "", text.upper())


class TlsCase(DaemonTestCase, OutboundMixin):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.allow_relay()
        self.fast_retries()


@unittest.skipUnless(postfix_available(), "needs root and Postfix (scripts/install-deps)")
class PostfixNextHop(TlsCase):
    """One Postfix for the class (it takes a few seconds to start); a Starling per test."""

    postfix = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = Path(tempfile.mkdtemp(prefix="starling-pfca-"))
        cls.ca = CertificateAuthority(cls.tmp / "ca", "Postfix Test CA")
        cls.leaf = cls.ca.issue(PF_HOST)
        cls.postfix = PostfixInstance(cls.leaf, domains=(PF_DOMAIN,), hostname=PF_HOST,
                                      client_ca=cls.ca.cert)
        try:
            cls.postfix.start()
        except BaseException:
            print(cls.postfix.log_text(), file=sys.stderr)
            cls.postfix.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.postfix is not None:
            cls.postfix.remove()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if self.postfix is not None and len(result.failures) + len(result.errors) > before:
                print(f"\n===== postfix log ({self.postfix.log_path}) =====\n"
                      + "\n".join(self.postfix.log_text().splitlines()[-60:])
                      + "\n===== end of postfix log =====", file=sys.stderr)

    def connector(self, **props):
        self.smart_host_connector(self.postfix.smart_host(), address_spaces=PF_DOMAIN, **props)

    def send(self, token):
        rcpt = f"user@{PF_DOMAIN}"
        return self.submit([rcpt], self.make_message(token, to=rcpt))

    def wait_postfix(self, token, timeout=20.0):
        found = self.postfix.wait_delivered(token, timeout)
        self.assertTrue(found, f"{token} not delivered by Postfix within {timeout} s\n"
                        "outbound lines:\n" + "\n".join(self.outbound_lines()[-20:]))
        return found[0].read_bytes()

    def postfix_session_lines(self, token):
        """Postfix's log lines of the smtpd process that received the message with `token`."""
        log = self.postfix.log_text()
        m = re.search(rf"postfix/cleanup\[\d+\]: (\w+): message-id=<{re.escape(token)}@", log)
        self.assertIsNotNone(m, f"Postfix did not log the message:\n{log[-3000:]}")
        qid = m.group(1)
        m = re.search(rf"postfix/smtpd\[(\d+)\]: {qid}: client=", log)
        self.assertIsNotNone(m, f"no smtpd line for {qid}:\n{log[-3000:]}")
        pid = m.group(1)
        return qid, [l for l in log.splitlines() if f"postfix/smtpd[{pid}]" in l]

    def trust_ca(self):
        self.cli_ok("import-certificate", self.ca.cert, "--trusted-root")

    def test_relayed_mail_arrives_over_tls(self):
        self.connector()
        token = unique_token("pf")
        qid = self.send(token)
        data = self.wait_postfix(token)
        pf_qid, lines = self.postfix_session_lines(token)
        tls = [l for l in lines if "TLS connection established from" in l]
        self.assertTrue(tls, "Postfix logged no TLS session for Starling:\n" + "\n".join(lines))
        self.assertRegex(tls[-1], r"TLSv1\.[23] with cipher")
        # Postfix's own Received: header says TLS too (smtpd_tls_received_header).
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"]
        self.assertRegex(received[0], r"using TLSv1\.[23]", received[0])
        self.assertIn(f"by {PF_HOST}", received[0])
        (line,) = self.wait_outbound("delivered", qid, f"user@{PF_DOMAIN}")[:1]
        self.assertIn(pf_qid, line, "the delivered line carries Postfix's reply (its queue id)")

    def test_domain_validation_with_the_right_tls_domain_delivers(self):
        self.trust_ca()
        self.connector(require_tls=True, tls_auth_level="DomainValidation", tls_domain=PF_HOST)
        token = unique_token("pfdv")
        qid = self.send(token)
        self.wait_postfix(token)
        self.wait_outbound("delivered", qid)

    def test_domain_validation_with_a_wrong_tls_domain_stays_queued(self):
        self.trust_ca()
        self.connector(require_tls=True, tls_auth_level="DomainValidation",
                       tls_domain="other.postfix.test")
        mark = self.event_mark()
        token = unique_token("pfwrong")
        qid = self.send(token)
        lines = self.wait_outbound("deferred", qid, count=2)
        self.assertRegex(lines[0], r"(?i)certificate|name|domain|verif|match",
                         f"the deferral does not say why: {lines[0]}")
        self.assertIn("other.postfix.test", "\n".join(lines) + str(self.events("--id", "2015")),
                      "neither the log nor event 2015 names the TlsDomain that did not match")
        event = self.event_after(2015, mark)
        self.assertTrue(event.get("Reason"), event)
        self.assertEqual(self.postfix.wait_delivered(token, timeout=1.0), [])
        self.assertEqual(self.outbound_lines(qid, word="failed"), [])
        self.assertEqual(self.starling.delivered(user="sender"), [], "no report: still queued")
        # Fixing the connector lets the next retry through, without a restart.
        self.set_send_connector("Out", tls_domain=PF_HOST)
        self.wait_postfix(token)
        self.wait_outbound("delivered", qid)

    def test_certificate_validation_needs_the_ca_as_trusted_root(self):
        self.connector(require_tls=True, tls_auth_level="CertificateValidation")
        token = unique_token("pfcv")
        qid = self.send(token)
        self.wait_outbound("deferred", qid)
        self.assertEqual(self.postfix.wait_delivered(token, timeout=1.0), [])
        self.trust_ca()
        self.wait_postfix(token)
        self.wait_outbound("delivered", qid)


class StarlingToStarling(TlsCase):
    """A second Starling (mx2, mail.remote.test, accepted domain remote.test) is the next hop."""

    def setUp(self):
        super().setUp()
        self.remote = Starling(server_name="mx2", fqdn="mail.remote.test", domain="remote.test")
        self.addCleanup(self.remote.remove)
        self.remote.start()
        self.addCleanup(self.remote.stop_checked)

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            remote = getattr(self, "remote", None)
            if remote is not None and len(result.failures) + len(result.errors) > before:
                print(f"\n===== remote starlingd log ({remote.log_path}) =====\n"
                      + "\n".join(remote.log_text().splitlines()[-80:])
                      + "\n===== end of remote log =====", file=sys.stderr)

    def connector(self, **props):
        self.smart_host_connector(f"[{HOST}]:{self.remote.port}", address_spaces="remote.test",
                                  **props)

    def relay(self, token):
        qid = self.submit(["user@remote.test"], self.make_message(token, to="user@remote.test"))
        found = self.remote.wait_for(token, user="user", domain="remote.test", timeout=20)
        self.assertTrue(found, f"{token} did not reach the second Starling\noutbound lines:\n"
                        + "\n".join(self.outbound_lines()[-20:]))
        self.wait_outbound("delivered", qid, "user@remote.test")
        return self.remote.read(found[0])

    def client_cert_lines(self):
        return [l for l in self.remote.log_text().splitlines() if "TLS client certificate" in l]

    def thumbprints(self):
        return {c["Thumbprint"] for c in self.cli_json("get-certificate")}

    def assertPresented(self, thumbprint, subject_cn):
        lines = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = self.client_cert_lines()
            if lines:
                break
            time.sleep(0.1)
        self.assertTrue(lines, "the second Starling logged no 'TLS client certificate' line")
        wait_lines = [l for l in lines if thumbprint in norm_thumb(l)]
        self.assertTrue(wait_lines, f"no 'TLS client certificate' line with {thumbprint}: {lines}")
        self.assertRegex(wait_lines[-1], rf"CN\s*=\s*{re.escape(subject_cn)}\b", wait_lines[-1])

    def test_connector_fqdn_selects_the_client_certificate(self):
        before = self.thumbprints()
        self.cli_ok("new-certificate", "--domain", "out.example.test", "--services", "SMTP")
        (thumb,) = self.thumbprints() - before
        self.connector(fqdn="out.example.test")
        token = unique_token("s2s")
        data = self.relay(token)
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"]
        self.assertIn("out.example.test", received[0], "the EHLO name is the connector's Fqdn")
        self.assertRegex(received[0], r"\bwith ESMTPS\b", received[0])
        self.assertPresented(norm_thumb(thumb), "out.example.test")

    def test_default_certificate_without_connector_fqdn(self):
        (default,) = self.thumbprints()  # the one setup made: CN=mx, mail.example.test
        self.connector()
        token = unique_token("s2sdef")
        data = self.relay(token)
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"]
        self.assertRegex(received[0], r"\bwith ESMTPS\b", received[0])
        self.assertPresented(norm_thumb(default), "mx")

    def test_ignore_starttls_sends_in_the_clear(self):
        self.connector(ignore_starttls=True)
        token = unique_token("s2splain")
        data = self.relay(token)
        received = [v for n, v in unfolded_headers(data) if n.lower() == "received"]
        self.assertRegex(received[0], r"\bwith ESMTP\b(?!S)", received[0])
        self.assertEqual(self.client_cert_lines(), [])


if __name__ == "__main__":
    unittest.main()
