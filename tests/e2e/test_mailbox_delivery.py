"""Mailbox delivery end to end (docs/mailbox-delivery.md): mail for a mailbox lands in the Maildir
named by its primary address, with Return-Path: and Delivered-To: prepended; a domain or a
mailbox whose DeliveryTarget is LMTP is delivered to a real LMTP server (aiosmtpd's LMTP class,
on TCP and on a Unix socket) with per-recipient outcomes (RFC 2033 §4.2): refused -> reported,
4xx -> retried, 2xx -> delivered; an InternalRelay domain sends recipients it does not hold
through its send connector.

Every test has its own starlingd (one-second retry intervals) and its own LMTP server.
"""

import os
import tempfile
import threading
import time
import unittest
from pathlib import Path

from peers import Rule, Script, Sink, free_port, quiet_peer_warnings, wait_until
from starling_cli import OutboundMixin
from starling_fixture import HOST, DaemonTestCase, unfolded_headers, unique_token

SENDER = "sender@example.test"
WAIT = 20.0


class LmtpServer:
    """aiosmtpd.lmtp.LMTP on 127.0.0.1:port or on a Unix socket. `refuse`: addresses refused at
    RCPT (550 5.1.1); `data_replies`: address -> list of replies given after the data, one per
    delivery attempt (then 250). Records (mail_from, rcpt_tos, content) per transaction, and every
    command line's verb."""

    def __init__(self, unix_socket=None, refuse=(), data_replies=None, port=None):
        quiet_peer_warnings()
        from aiosmtpd.controller import Controller, UnixSocketController
        from aiosmtpd.lmtp import LMTP
        self.lock = threading.Lock()
        self.transactions = []
        self.rcpt_log = []   # every RCPT TO address, in order
        self.refuse = {a.lower() for a in refuse}
        self.data_replies = {k.lower(): list(v) for k, v in (data_replies or {}).items()}
        record = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                with record.lock:
                    record.rcpt_log.append(address)
                if address.lower() in record.refuse:
                    return f"550 5.1.1 <{address}> User doesn't exist"
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_DATA(self, server, session, envelope):
                # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order (aiosmtpd sends
                # the handler's string as it is, so the lines are joined with CRLF).
                replies = []
                delivered = []
                with record.lock:
                    for rcpt in envelope.rcpt_tos:
                        queue = record.data_replies.get(rcpt.lower())
                        reply = queue.pop(0) if queue else f"250 2.0.0 <{rcpt}> Saved"
                        replies.append(reply)
                        if reply.startswith("2"):
                            delivered.append(rcpt)
                    record.transactions.append((envelope.mail_from, list(envelope.rcpt_tos),
                                                delivered, envelope.original_content))
                return "\r\n".join(replies)

        if unix_socket:
            class Lmtpd(UnixSocketController):
                def factory(self):
                    return LMTP(self.handler, **self.SMTP_kwargs)
            self._controller = Lmtpd(Handler(), unix_socket=str(unix_socket), ready_timeout=10)
            self.target = f"lmtp:{unix_socket}"
        else:
            self.port = port or free_port(HOST)

            class Lmtpd(Controller):
                def factory(self):
                    return LMTP(self.handler, **self.SMTP_kwargs)
            self._controller = Lmtpd(Handler(), hostname=HOST, port=self.port, ready_timeout=10)
            self.target = f"lmtp:{HOST}:{self.port}"

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        try:
            self._controller.stop()
        except (AssertionError, RuntimeError):
            pass

    def delivered_to(self, rcpt):
        with self.lock:
            return [t for t in self.transactions if rcpt in t[2]]

    def wait_delivered(self, rcpt, token, timeout=WAIT):
        found = []

        def seen():
            found[:] = [t for t in self.delivered_to(rcpt) if token.encode() in t[3]]
            return bool(found)
        wait_until(seen, timeout)
        return found


class MailboxCase(DaemonTestCase, OutboundMixin):
    mailboxes = ()  # these tests create the recipients they need
    submission = True
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.fast_retries()
        # The sender is a mailbox: reports come back to it, in its Maildir.
        self.cli_ok("new-mailbox", "--address", SENDER)

    def lmtp(self, **kw):
        server = LmtpServer(**kw).start()
        self.addCleanup(server.stop)
        return server

    def maildir(self, user, domain="example.test"):
        return self.starling.data_dir / "mailboxes" / domain / user / "new"

    def wait_files(self, user, count, domain="example.test", token=None, timeout=WAIT):
        files = self.starling.wait_for(token or b"", user=user, domain=domain, timeout=timeout,
                                       count=count)
        self.assertGreaterEqual(len(files), count,
                                f"{count} file(s) expected in {self.maildir(user, domain)}; "
                                f"mailboxes: {self.starling.delivered()}\n"
                                + "\n".join(self.delivery_lines()[-20:]))
        return files

    def delivery_lines(self):
        return [l for l in self.starling.log_text().splitlines()
                if "delivery: " in l or "outbound: " in l]


class MaildirDelivery(MailboxCase):
    def test_alias_and_case_variant_land_in_the_primary_maildir_with_headers(self):
        self.cli_ok("new-mailbox", "--address", "alice@example.test",
                    "--email-addresses", "smtp:al@example.test")
        token = unique_token("maildir")
        for rcpt in ("al@example.test", "ALICE@Example.Test"):
            self.submit([rcpt], self.make_message(token, to=rcpt), sender=SENDER)
        files = self.wait_files("alice", 2, token=token)
        delivered_to = set()
        for path in files:
            data = self.starling.read(path)
            headers = unfolded_headers(data)
            # Prepended: the first two lines, before the Received: line of this server.
            self.assertEqual(headers[0], ("Return-Path", f"<{SENDER}>"), data[:300])
            self.assertEqual(headers[1][0], "Delivered-To", data[:300])
            self.assertEqual(headers[2][0], "Received", data[:300])
            delivered_to.add(headers[1][1])
        self.assertEqual(delivered_to, {"al@example.test", "ALICE@Example.Test"})
        for other in ("al", "ALICE", "Alice"):
            self.assertFalse((self.starling.data_dir / "mailboxes/example.test" / other).exists(),
                             f"a Maildir named {other}: {self.starling.delivered()}")

    def test_null_reverse_path_gives_return_path_empty(self):
        self.cli_ok("new-mailbox", "--address", "bob@example.test")
        token = unique_token("nullpath")
        self.submit(["bob@example.test"], self.make_message(token, to="bob@example.test"),
                    sender="")
        files = self.wait_files("bob", 1, token=token)
        self.assertEqual(unfolded_headers(self.starling.read(files[0]))[0], ("Return-Path", "<>"))

    def test_report_to_a_group_is_expanded_to_its_member_mailboxes(self):
        # Groups are expanded at RCPT; a report addressed to a group reaches the queue whole and
        # is expanded when delivered: one copy per member mailbox.
        self.allow_relay()
        for box in ("alice", "bob"):
            self.cli_ok("new-mailbox", "--address", f"{box}@example.test")
        self.cli_ok("new-distribution-group", "--address", "team@example.test",
                    "--members", "alice@example.test,bob@example.test")
        sink = Sink(script=Script(Rule("RCPT", "550 5.1.1 <x@example.net>: no such user")))
        sink.start()
        self.addCleanup(sink.stop)
        self.smart_host_connector(sink.smart_host(), address_spaces="example.net")
        token = unique_token("group")
        self.submit(["x@example.net"], self.make_message(token, sender="team@example.test"),
                    sender="team@example.test")
        for box in ("alice", "bob"):
            files = self.wait_files(box, 1, token=token)
            headers = unfolded_headers(self.starling.read(files[0]))
            self.assertEqual(headers[0], ("Return-Path", "<>"))
            self.assertEqual(headers[1], ("Delivered-To", f"{box}@example.test"))
        self.assertFalse((self.starling.data_dir / "mailboxes/example.test/team").exists())


class LmtpDelivery(MailboxCase):
    def test_domain_target_one_recipient_refused_one_delivered(self):
        server = self.lmtp(refuse=("carol@lmtp.test",))
        self.cli_ok("new-accepted-domain", "lmtp.test", "--domain-type", "Authoritative")
        self.cli_ok("set-accepted-domain", "lmtp.test", "--delivery-target", server.target)
        self.cli_ok("new-mailbox", "--address", "bob@lmtp.test",
                    "--email-addresses", "smtp:robert@lmtp.test")
        self.cli_ok("new-mailbox", "--address", "carol@lmtp.test")
        token = unique_token("lmtp")
        qid = self.submit(["Robert@LMTP.test", "carol@lmtp.test"],
                          self.make_message(token, to="Robert@LMTP.test"), sender=SENDER)
        found = server.wait_delivered("bob@lmtp.test", token)
        self.assertTrue(found, f"not at the LMTP server; RCPTs {server.rcpt_log}\n"
                        + "\n".join(self.delivery_lines()[-20:]))
        mail_from, rcpts, delivered, content = found[0]
        self.assertEqual(mail_from, SENDER)
        # RCPT TO is the mailbox's primary address: the LMTP server need not know the aliases.
        self.assertEqual(rcpts, ["bob@lmtp.test"])
        # The LMTP server is the delivery agent: it adds Return-Path/Delivered-To, not Starling.
        self.assertNotIn(b"Delivered-To:", content)
        self.assertNotIn(b"Return-Path:", content)
        report = self.wait_report(token)
        self.assertReport(report, "carol@lmtp.test", "5.1.1")
        self.assertIsNone(report.recipient("Robert@LMTP.test"), report.recipients)
        self.assertFalse(list(self.starling.data_dir.glob("mailboxes/lmtp.test/*/new/*")),
                         "LMTP mail must not also go to a Maildir")
        wait_until(lambda: not (self.starling.data_dir / "queue" / qid).exists(), 10)
        self.assertFalse((self.starling.data_dir / "queue" / qid).exists(), "still queued")

    def test_per_recipient_final_replies_452_retried_alone(self):
        server = self.lmtp(data_replies={"dave@lmtp.test": ["452 4.2.2 <dave@lmtp.test> Mailbox full"]})
        self.cli_ok("new-accepted-domain", "lmtp.test", "--domain-type", "Authoritative")
        self.cli_ok("set-accepted-domain", "lmtp.test", "--delivery-target", server.target)
        for box in ("bob", "dave"):
            self.cli_ok("new-mailbox", "--address", f"{box}@lmtp.test")
        token = unique_token("lmtp452")
        self.submit(["bob@lmtp.test", "dave@lmtp.test"],
                    self.make_message(token, to="bob@lmtp.test"), sender=SENDER)
        self.assertTrue(server.wait_delivered("dave@lmtp.test", token),
                        f"dave never delivered; transactions {[t[:3] for t in server.transactions]}\n"
                        + "\n".join(self.delivery_lines()[-20:]))
        self.assertEqual(len(server.delivered_to("bob@lmtp.test")), 1, "bob got it twice")
        # The retry carried dave alone.
        self.assertEqual(server.transactions[-1][1], ["dave@lmtp.test"], server.transactions)
        self.assertEqual(self.reports(), [], "a 452 is not reported")

    def test_mailbox_target_over_a_unix_socket(self):
        sock_dir = Path(tempfile.mkdtemp(prefix="lmtp-", dir="/tmp"))
        os.chmod(sock_dir, 0o711)  # the daemon runs as its service user, not as root
        self.addCleanup(lambda: (os.path.exists(sock_dir / "lmtp") and os.unlink(sock_dir / "lmtp"),
                                 os.rmdir(sock_dir)))
        server = self.lmtp(unix_socket=sock_dir / "lmtp")
        os.chmod(sock_dir / "lmtp", 0o666)
        self.cli_ok("new-mailbox", "--address", "alice@example.test")
        self.cli_ok("set-mailbox", "alice@example.test", "--delivery-target", server.target)
        self.cli_ok("new-mailbox", "--address", "bob@example.test")
        token = unique_token("unix")
        self.submit(["alice@example.test", "bob@example.test"],
                    self.make_message(token, to="alice@example.test"), sender=SENDER)
        self.assertTrue(server.wait_delivered("alice@example.test", token),
                        "\n".join(self.delivery_lines()[-20:]))
        # bob has no target of his own: the domain's, Maildir.
        self.wait_files("bob", 1, token=token)
        self.assertFalse(self.maildir("alice").exists() and list(self.maildir("alice").iterdir()))

    def test_lmtp_server_down_is_retried_not_reported(self):
        port = free_port(HOST)
        self.cli_ok("new-accepted-domain", "lmtp.test", "--domain-type", "Authoritative")
        self.cli_ok("set-accepted-domain", "lmtp.test", "--delivery-target", f"lmtp:{HOST}:{port}")
        self.cli_ok("new-mailbox", "--address", "bob@lmtp.test")
        token = unique_token("down")
        self.submit(["bob@lmtp.test"], self.make_message(token, to="bob@lmtp.test"), sender=SENDER)
        wait_until(lambda: any("deferred" in l and "bob@lmtp.test" in l for l in self.delivery_lines()), 10)
        self.assertTrue(any("deferred" in l and "bob@lmtp.test" in l for l in self.delivery_lines()),
                        "\n".join(self.delivery_lines()[-20:]))
        # The server comes up on that port: the next retry delivers.
        server = self.lmtp(port=port)
        self.assertTrue(server.wait_delivered("bob@lmtp.test", token),
                        "\n".join(self.delivery_lines()[-20:]))
        self.assertEqual(self.reports(), [])


class DomainTypes(MailboxCase):
    def test_internal_relay_sends_unknown_recipients_through_the_connector(self):
        sink = Sink()
        sink.start()
        self.addCleanup(sink.stop)
        self.cli_ok("new-accepted-domain", "x.test")
        self.cli_ok("set-accepted-domain", "x.test", "--domain-type", "InternalRelay")
        self.cli_ok("new-mailbox", "--address", "here@x.test")
        self.smart_host_connector(sink.smart_host(), address_spaces="x.test")
        token = unique_token("irelay")
        self.submit(["elsewhere@x.test", "here@x.test"],
                    self.make_message(token, to="elsewhere@x.test"), sender=SENDER)
        msgs = sink.wait_messages(1, timeout=WAIT, token=token)
        self.assertTrue(msgs, "not relayed; " + "\n".join(self.delivery_lines()[-20:]))
        self.wait_files("here", 1, domain="x.test", token=token)
        self.assertFalse(list(self.starling.data_dir.glob("mailboxes/x.test/elsewhere/new/*")))

    def test_domain_made_internal_relay_while_queued_is_sent_on_not_delivered_here(self):
        # Queued for a domain that was not accepted (relayed), retried while x.test becomes an
        # InternalRelay accepted domain: the dispatcher resolves it again and sends it on, through
        # the connector, rather than into a Maildir.
        self.allow_relay()
        sink = Sink(script=Script(Rule("MAIL", "451 4.3.0 try later")))
        sink.start()
        self.addCleanup(sink.stop)
        self.smart_host_connector(sink.smart_host(), address_spaces="x.test")
        token = unique_token("retyped")
        qid = self.submit(["elsewhere@x.test"], self.make_message(token, to="elsewhere@x.test"),
                          sender=SENDER)
        self.wait_outbound("deferred", qid, "elsewhere@x.test")
        self.cli_ok("new-accepted-domain", "x.test", "--domain-type", "InternalRelay")
        time.sleep(2.5)  # retries at one-second intervals, now with x.test accepted
        sink.script.clear()
        msgs = sink.wait_messages(1, timeout=WAIT, token=token)
        self.assertTrue(msgs, "not relayed; " + "\n".join(self.delivery_lines()[-20:]))
        self.assertFalse(list(self.starling.data_dir.glob("mailboxes/x.test/*/new/*")),
                         self.starling.delivered())
        self.assertEqual(self.reports(), [])

    def test_unknown_at_authoritative_when_routed_fails_5_1_1(self):
        # Queued for a domain that was not accepted; retried after it became an Authoritative
        # accepted domain without that recipient (as after a mailbox removed): 550 5.1.1, reported.
        self.allow_relay()
        sink = Sink(script=Script(Rule("MAIL", "451 4.3.0 try later")))
        sink.start()
        self.addCleanup(sink.stop)
        self.smart_host_connector(sink.smart_host(), address_spaces="gone.test")
        token = unique_token("gone")
        qid = self.submit(["nobody@gone.test"], self.make_message(token, to="nobody@gone.test"),
                          sender=SENDER)
        self.wait_outbound("deferred", qid, "nobody@gone.test")
        self.cli_ok("new-accepted-domain", "gone.test", "--domain-type", "Authoritative")
        report = self.wait_report(token)
        self.assertReport(report, "nobody@gone.test", "5.1.1", diagnostic="User unknown")
        self.assertEqual(sink.all(), [])


if __name__ == "__main__":
    unittest.main()
