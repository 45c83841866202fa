"""TLS session resumption after STARTTLS (docs/receive-path.md, "TLS").

A client that kept the session of its last connection resumes it: TLS 1.3 with the session ticket
Starling sent, TLS 1.2 with its ticket or session id. Ticket keys live only in the daemon's memory,
so after a restart the same saved session gets a full handshake, and the mail still goes.
"""

import ssl
import unittest

from starling_cli import CliMixin
from starling_fixture import DOMAIN, FQDN, DaemonTestCase, RawClient, tls_client_context

SNI_NAME = "other.example.test"


class Resumption(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def mail_over_starttls(self, ctx, session=None, server_hostname=FQDN):
        """One STARTTLS session that queues a message. Returns (session_reused, session to keep)."""
        c = RawClient(self.starling.port)
        self.addCleanup(c.close)
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("STARTTLS"), 220)
        self.assertFalse(c.buf, "plaintext after the 220 to STARTTLS")
        c.sock.settimeout(c.timeout)
        c.sock = ctx.wrap_socket(c.sock, server_hostname=server_hostname, session=session)
        self.served = c.sock.getpeercert(binary_form=True)
        c.ehlo()  # its reply comes after the TLS 1.3 ticket, so the ticket has been read
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd(f"RCPT TO:<u@{DOMAIN}>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        self.assertQueued(c.cmd("Subject: resumption\r\n\r\nbody\r\n."))
        self.assertReply(c.cmd("QUIT"), 221)
        reused, kept = c.sock.session_reused, c.sock.session
        # An orderly close: OpenSSL will not resume a session whose connection just dropped.
        try:
            c.sock.unwrap()
        except (OSError, ssl.SSLError):
            pass
        return reused, kept

    def check_resumes(self, max_version):
        ctx = tls_client_context(max_version=max_version)
        reused, first = self.mail_over_starttls(ctx)
        self.assertFalse(reused, "the first connection cannot resume anything")
        self.assertIsNotNone(first)
        reused, second = self.mail_over_starttls(ctx, first)
        self.assertTrue(reused, f"{max_version.name}: the saved session was not resumed")
        reused, _ = self.mail_over_starttls(ctx, second)
        self.assertTrue(reused, f"{max_version.name}: the session of a resumed connection was not resumed")
        return ctx, second

    def test_tls13_ticket_resumes(self):
        self.check_resumes(ssl.TLSVersion.TLSv1_3)

    def test_tls12_session_resumes(self):
        self.check_resumes(ssl.TLSVersion.TLSv1_2)

    def test_session_with_a_certificate_chosen_by_sni_resumes(self):
        # The SNI certificate has its own TLS context, switched to during the handshake; the
        # session still belongs to the connector's context it started in, and resumes.
        ctx = tls_client_context(max_version=ssl.TLSVersion.TLSv1_3)
        self.mail_over_starttls(ctx)
        connector_certificate = self.served
        self.cli_ok("new-certificate", "--domain", SNI_NAME, "--services", "SMTP")
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = tls_client_context(max_version=version)
            reused, session = self.mail_over_starttls(ctx, server_hostname=SNI_NAME)
            self.assertFalse(reused)
            self.assertNotEqual(self.served, connector_certificate, "SNI did not choose the other certificate")
            reused, _ = self.mail_over_starttls(ctx, session, server_hostname=SNI_NAME)
            self.assertTrue(reused, f"{version.name}: a session with the SNI certificate was not resumed")

    def test_restart_forgets_the_ticket_keys(self):
        saved = {v: self.check_resumes(v) for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2)}
        self.starling.stop_checked()
        self.starling.start()
        for version, (ctx, session) in saved.items():
            reused, fresh = self.mail_over_starttls(ctx, session)
            self.assertFalse(reused, f"{version.name}: a ticket from before the restart was accepted")
            reused, _ = self.mail_over_starttls(ctx, fresh)
            self.assertTrue(reused, f"{version.name}: the new daemon's session was not resumed")
        self.starling.wait_for("Subject: resumption", user="u", count=10)


if __name__ == "__main__":
    unittest.main()
