"""Configuration changes reach the running server without a restart (docs/commands.md: "a change
applies to the next connection"), seen by real SMTP clients: the raw client, openssl s_client.

Each test gets its own daemon. The daemon's pid is checked after every change: a restart would
pass the other checks but is exactly what must not happen. Sessions opened before a change keep
working through it.
"""

import re
import subprocess
import unittest

from starling_cli import CliMixin, port_accepts
from starling_fixture import (FQDN, SERVER_NAME, DaemonTestCase, RawClient, free_port,
                              unfolded_headers, unique_token)

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"


class LiveApply(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.pid = self.starling.proc.pid

    def assertNotRestarted(self):
        self.assertTrue(self.starling.running(), "starlingd stopped")
        self.assertEqual(self.starling.proc.pid, self.pid, "starlingd was restarted")
        self.assertEqual(len(re.findall(r"starlingd: ready", self.starling.log_text())), 1,
                         f"starlingd said 'ready' more than once:\n{self.starling.log_text()}")

    def connect(self, port=None):
        c = RawClient(port or self.starling.port)
        self.addCleanup(c.close)
        return c

    def send_message(self, c, token, rcpt="u@example.test"):
        """MAIL/RCPT/DATA on an open session that has said EHLO; returns the queue id."""
        self.assertReply(c.cmd("MAIL FROM:<sender@client.test>"), 250)
        self.assertReply(c.cmd(f"RCPT TO:<{rcpt}>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        return self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\n{token}\r\n."))

    def test_fqdn_change_shows_in_next_banner_and_ehlo(self):
        c = self.connect()
        self.assertRegex(str(c.greeting()), rf"^220 {re.escape(FQDN)} ")
        c.close()

        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "live.example.test")
        c = self.connect()
        self.assertRegex(str(c.greeting()), r"^220 live\.example\.test ")
        ehlo = c.ehlo()
        self.assertRegex(ehlo.lines[0], r"^live\.example\.test\b", str(ehlo))
        token = unique_token("fqdn")
        self.send_message(c, token)
        (path,) = self.wait_delivered(token)
        received = [v for n, v in unfolded_headers(self.starling.read(path)) if n == "Received"]
        self.assertTrue(received, "no Received header")
        self.assertRegex(received[0], r"\bby live\.example\.test\b", received[0])
        self.assertNotRestarted()

    def test_banner_change_shows_in_next_greeting(self):
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR,
                    "--banner", "220 Contoso mail relay, no UCE")
        c = self.connect()
        self.assertEqual(str(c.greeting()), "220 Contoso mail relay, no UCE")
        self.assertNotRestarted()

    def test_new_connector_listens_and_disable_or_remove_closes_it(self):
        port = free_port()
        self.assertFalse(port_accepts(port), f"something already listens on {port}")
        self.cli_ok("new-receive-connector", "--name", "Extra", "--bindings", f"127.0.0.1:{port}",
                    "--fqdn", "extra.example.test")
        c = self.connect(port)
        self.assertRegex(str(c.greeting()), r"^220 extra\.example\.test ")
        c.ehlo()
        self.assertReply(c.cmd("QUIT"), 221)
        c.close()

        self.cli_ok("set-receive-connector", "Extra", "--enabled", "false")
        self.assertFalse(port_accepts(port), "a disabled connector still accepts connections")
        self.cli_ok("set-receive-connector", "Extra", "--enabled", "true")
        c = self.connect(port)
        self.assertRegex(str(c.greeting()), r"^220 extra\.example\.test ")
        c.close()

        self.cli_ok("remove-receive-connector", "Extra", "--yes")
        self.assertFalse(port_accepts(port), "a removed connector still accepts connections")
        # The default connector was never touched.
        self.assertRegex(str(self.connect().greeting()), rf"^220 {re.escape(FQDN)} ")
        self.assertNotRestarted()

    def test_session_opened_before_a_change_keeps_working(self):
        port = free_port()
        self.cli_ok("new-receive-connector", "--name", "Extra", "--bindings", f"127.0.0.1:{port}")
        on_extra = self.connect(port)
        on_extra.greeting()
        on_extra.ehlo()
        on_default = self.connect()
        on_default.greeting()
        on_default.ehlo()
        self.assertReply(on_default.cmd("MAIL FROM:<early@client.test>"), 250)

        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "changed.example.test")
        self.cli_ok("new-accepted-domain", "later.example.net")
        self.cli_ok("remove-receive-connector", "Extra", "--yes")
        self.assertFalse(port_accepts(port), "removed connector still listening")

        # The transaction begun before the change completes ...
        self.assertReply(on_default.cmd("RCPT TO:<u@example.test>"), 250)
        self.assertReply(on_default.cmd("DATA"), 354)
        t1 = unique_token("before-default")
        self.assertQueued(on_default.cmd(f"Subject: {t1}\r\n\r\n{t1}\r\n."))
        # ... and so does a whole new one on the session of the connector that is gone.
        t2 = unique_token("before-extra")
        self.send_message(on_extra, t2)
        self.assertReply(on_extra.cmd("QUIT"), 221)
        self.wait_delivered(t1)
        self.wait_delivered(t2)
        self.assertNotRestarted()

    def s_client(self, servername):
        cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect",
               f"127.0.0.1:{self.starling.port}", "-servername", servername, "-brief"]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        return r.stdout + r.stderr

    def test_new_certificate_for_new_fqdn_served_on_next_starttls(self):
        out = self.s_client(FQDN)
        self.assertIn("CONNECTION ESTABLISHED", out, out)
        self.assertRegex(out, rf"Peer certificate: .*CN\s*=\s*{SERVER_NAME}\b", out)

        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "mail.contoso.test")
        c = self.connect()
        c.greeting()
        ehlo = c.ehlo()
        self.assertNotIn("STARTTLS", ehlo.lines,
                         f"STARTTLS offered though no certificate covers the FQDN: {ehlo}")
        c.close()

        self.cli_ok("new-certificate", "--domain", "mail.contoso.test", "--force")
        c = self.connect()
        c.greeting()
        ehlo = c.ehlo()
        self.assertIn("STARTTLS", ehlo.lines, f"STARTTLS not offered with the new certificate: {ehlo}")
        c.close()
        out = self.s_client("mail.contoso.test")
        self.assertIn("CONNECTION ESTABLISHED", out, out)
        self.assertRegex(out, r"Peer certificate: .*CN\s*=\s*mail\.contoso\.test\b", out)
        self.assertNotRestarted()

    def test_new_accepted_domain_accepted_on_next_transaction(self):
        domain = "fabrikam.test"
        c = self.connect()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<sender@client.test>"), 250)
        self.assertReply(c.cmd(f"RCPT TO:<u@{domain}>"), 550, "5.7.54")
        self.assertReply(c.cmd("QUIT"), 221)
        c.close()

        self.cli_ok("new-accepted-domain", domain)
        self.cli_ok("new-mailbox", "--address", f"u@{domain}")  # Authoritative: recipients must exist
        c = self.connect()
        c.greeting()
        c.ehlo()
        token = unique_token("fabrikam")
        self.send_message(c, token, rcpt=f"u@{domain}")
        found = self.starling.wait_for(token, user="u", domain=domain)
        self.assertEqual(len(found), 1, f"not delivered to {domain}/u: {self.starling.delivered()}")
        c.close()

        self.cli_ok("remove-mailbox", f"u@{domain}", "--yes")
        self.cli_ok("remove-accepted-domain", domain, "--yes")
        c = self.connect()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<sender@client.test>"), 250)
        self.assertReply(c.cmd(f"RCPT TO:<u@{domain}>"), 550, "5.7.54")
        self.assertNotRestarted()


if __name__ == "__main__":
    unittest.main()
