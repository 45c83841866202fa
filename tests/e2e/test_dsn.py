"""Delivery status notifications (RFC 3461, RFC 3464) end to end: the DSN extension on the
receiving side, success, failure and delay reports as NOTIFY asks, and the requests passed on to
a next hop that offers DSN (Postfix's smtp-sink, and the scripted raw peer of peers.py), or
"Action: relayed" for one that does not (aiosmtpd).

Reports go to the local sender, sender@example.test: DIR/mailboxes/example.test/sender/new/.
"""

import shutil
import smtplib
import subprocess
import time
import unittest
from pathlib import Path

from peers import RawPeer, Rule, Script, Sink, free_port, wait_until
from starling_cli import DeliveryReport, OutboundMixin
from starling_fixture import HOST, DaemonTestCase, unique_token

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SENDER = "sender@example.test"
REPORT_WAIT = 20.0
# EHLO of a scripted raw peer that offers DSN (peers.RawPeer offers no DSN of its own).
DSN_EHLO = "250-raw.example.net\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN"


class DsnCase(DaemonTestCase, OutboundMixin):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.allow_relay()
        self.fast_retries()

    def send(self, rcpts, token, mail_options=(), sender=SENDER):
        """One transaction over smtplib. `rcpts`: [(address, [RCPT options])]. Returns the
        queue id."""
        data = self.make_message(token, sender=sender, to=rcpts[0][0]).encode()
        with smtplib.SMTP(HOST, self.starling.port, local_hostname="client.test", timeout=20) as c:
            c.ehlo()
            self.assertTrue(c.has_extn("dsn"), f"DSN not in EHLO: {c.esmtp_features}")
            code, resp = c.mail(sender, list(mail_options))
            self.assertEqual(code, 250, resp)
            for address, options in rcpts:
                code, resp = c.rcpt(address, list(options))
                self.assertEqual(code, 250, f"RCPT TO:<{address}> {options}: {code} {resp!r}")
            code, resp = c.data(data)
            self.assertEqual(code, 250, resp)
            return resp.decode().rsplit(" ", 1)[-1]

    def start_peer(self, peer):
        peer.start()
        self.addCleanup(peer.stop)
        return peer

    def reports_for(self, token):
        return [r for r in self.reports() if token in r.text]

    def assert_no_report(self, token, quiet=3.0):
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            found = self.reports_for(token)
            self.assertEqual(found, [], f"unexpected report: {found[:1]}")
            time.sleep(0.1)

    def dsn_lines(self, qid):
        return [l for l in self.starling.log_text().splitlines()
                if qid in l and ("report" in l or "notice" in l)]


class ReceiveSide(DsnCase):
    daemon_per_test = False

    def setUp(self):
        DaemonTestCase.setUp(self)

    def test_refusals_name_the_broken_rule(self):
        with smtplib.SMTP(HOST, self.starling.port, local_hostname="client.test", timeout=20) as c:
            c.ehlo()
            self.assertTrue(c.has_extn("dsn"))
            code, resp = c.mail(SENDER, ["RET=HDRS", "RET=FULL"])
            self.assertEqual((code, resp), (501, b"5.5.4 Duplicate RET parameter"))
            code, resp = c.mail(SENDER, ["ENVID=" + "x" * 101])
            self.assertEqual((code, resp), (501, b"5.5.4 ENVID parameter longer than 100 characters"))
            self.assertEqual(c.mail(SENDER, ["RET=HDRS", "ENVID=abc+2B1"])[0], 250)
            code, resp = c.rcpt("u@example.test", ["NOTIFY=NEVER,DELAY"])
            self.assertEqual(code, 501)
            self.assertIn(b"NEVER cannot be combined", resp)
            code, resp = c.rcpt("u@example.test", ["ORCPT=rfc822;a=b"])
            self.assertEqual((code, resp), (501, b"5.5.4 Invalid ORCPT parameter: the address is not valid xtext"))
            self.assertEqual(c.rcpt("u@example.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;" + "u" * 480])[0], 250)

    def test_connector_can_turn_dsn_off(self):
        name = f"Default {self.starling.server_name}"
        self.cli_ok("set-receive-connector", name, "--delivery-status-notification-enabled", "false",
                    data_dir=self.starling.data_dir)
        self.addCleanup(self.cli_ok, "set-receive-connector", name,
                        "--delivery-status-notification-enabled", "true", data_dir=self.starling.data_dir)
        shown = self.cli_json("get-receive-connector", name, data_dir=self.starling.data_dir)
        self.assertIs(shown[0]["DeliveryStatusNotificationEnabled"], False, shown)
        with smtplib.SMTP(HOST, self.starling.port, local_hostname="client.test", timeout=20) as c:
            c.ehlo()
            self.assertFalse(c.has_extn("dsn"), c.esmtp_features)
            code, resp = c.mail(SENDER, ["RET=HDRS"])
            self.assertEqual((code, resp), (555, b"5.5.4 Unsupported parameter RET"))


class Reports(DsnCase):
    def test_notify_success_on_local_delivery_gives_a_delivered_report(self):
        token = unique_token("dsn-success")
        qid = self.send([("bob@example.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob+2Bsales@example.test"]),
                         ("carol@example.test", [])],
                        token, ["RET=FULL", "ENVID=env+2B" + token])
        self.assertTrue(self.starling.wait_for(token, user="bob", domain="example.test"))
        report = self.wait_report(token)
        self.assertReport(report, "bob@example.test", "2.0.0", action="delivered")
        self.assertEqual(report.per_message.get("original-envelope-id"), "env+" + token)
        self.assertEqual(report.recipient("bob@example.test").get("original-recipient"),
                         "rfc822; Bob+sales@example.test")
        self.assertIsNone(report.recipient("carol@example.test"), "carol asked for no success report")
        self.assertTrue(report.header("Subject").startswith("Delivered:"), report.header("Subject"))
        self.assertEqual(report.message.get("Return-Path"), "<>")
        # Success reports carry the header only, whatever RET says (RFC 3461 §4.3).
        self.assertNotIn(f"body of {token}", report.text)
        self.assertEqual(len(self.reports_for(token)), 1)

    def test_notify_never_suppresses_the_failure_report(self):
        peer = self.start_peer(Sink(script=Script(Rule("RCPT", "550 5.1.1 no such user"))))
        self.smart_host_connector([f"[{HOST}]:{peer.port}"])
        never, default = unique_token("dsn-never"), unique_token("dsn-default")
        self.send([("gone@example.net", ["NOTIFY=NEVER"])], never)
        self.send([("gone@example.net", [])], default)
        report = self.wait_report(default)  # the control: without NOTIFY a failure is reported
        self.assertReport(report, "gone@example.net", "5.1.1", action="failed")
        self.wait_outbound("failed", "gone@example.net", count=2)
        self.assert_no_report(never)

    def test_ret_hdrs_returns_only_the_header_of_a_failure(self):
        peer = self.start_peer(Sink(script=Script(Rule("RCPT", "550 5.1.1 no such user"))))
        self.smart_host_connector([f"[{HOST}]:{peer.port}"])
        token = unique_token("dsn-hdrs")
        self.send([("gone@example.net", ["NOTIFY=FAILURE"])], token, ["RET=HDRS"])
        report = self.wait_report(token)
        self.assertReport(report, "gone@example.net", "5.1.1", action="failed")
        self.assertIn("text/rfc822-headers", report.text)
        self.assertNotIn(f"body of {token}", report.text)

    def test_delay_report_once_and_only_where_notify_allows_it(self):
        peer = self.start_peer(Sink(script=Script(Rule("RCPT", "451 4.3.0 try again later"))))
        self.smart_host_connector([f"[{HOST}]:{peer.port}"])
        self.set_transport(delay_notification_timeout="00:00:02")
        delayed, quiet = unique_token("dsn-delay"), unique_token("dsn-nodelay")
        self.send([("slow@example.net", [])], delayed)
        self.send([("slow@example.net", ["NOTIFY=FAILURE"])], quiet)
        report = self.wait_report(delayed)
        self.assertReport(report, "slow@example.net", "4.3.0", action="delayed")
        self.assertTrue(report.header("Subject").startswith("Delivery delayed:"))
        # Once: the message is retried every second and stays queued, the report is not repeated.
        time.sleep(3)
        self.assertEqual(len(self.reports_for(delayed)), 1)
        self.assertEqual(self.reports_for(quiet), [])

    def test_relayed_when_the_next_hop_does_not_offer_dsn(self):
        peer = self.start_peer(Sink())  # aiosmtpd: no DSN in its EHLO
        self.smart_host_connector([f"[{HOST}]:{peer.port}"])
        token = unique_token("dsn-relayed")
        self.send([("far@example.net", ["NOTIFY=SUCCESS,FAILURE"])], token, ["ENVID=" + token])
        msgs = peer.wait_messages(1, timeout=REPORT_WAIT, token=token)
        self.assertEqual(len(msgs), 1)
        self.assertEqual([o for o in msgs[0].mail_options if o.upper().startswith(("RET", "ENVID"))], [])
        report = self.wait_report(token)
        block = self.assertReport(report, "far@example.net", "2.0.0", action="relayed")
        self.assertIn(HOST, block.get("remote-mta", ""), block)
        self.assertTrue(report.header("Subject").startswith("Relayed:"), report.header("Subject"))


class PassedOn(DsnCase):
    def test_requests_reach_a_dsn_capable_raw_peer_and_no_report_is_sent(self):
        peer = self.start_peer(RawPeer(script=Script(Rule("EHLO", DSN_EHLO))))
        self.smart_host_connector([f"[{HOST}]:{peer.port}"])
        token = unique_token("dsn-passed")
        self.send([("a@example.net", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;A+2Bx@example.net"]),
                   ("b@example.net", [])],
                  token, ["RET=HDRS", "ENVID=id+2B" + token])
        msgs = peer.wait_messages(1, timeout=REPORT_WAIT, token=token)
        self.assertEqual(len(msgs), 1)
        commands = [c for _, c in peer.commands]
        self.assertIn(f"MAIL FROM:<{SENDER}> RET=HDRS ENVID=id+2B{token}", commands)
        self.assertIn("RCPT TO:<a@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;A+2Bx@example.net", commands)
        self.assertIn("RCPT TO:<b@example.net>", commands)
        # The next hop took the request on: no "relayed" report from here.
        self.assert_no_report(token)

    @unittest.skipUnless(Path(SMTP_SINK).exists(), "Postfix's smtp-sink is missing (scripts/install-deps)")
    def test_requests_reach_postfix(self):
        for offers_dsn in (True, False):
            with self.subTest(offers_dsn=offers_dsn):
                dumps = self.starling.root / f"sink-{offers_dsn}"
                dumps.mkdir()
                shutil.chown(dumps, "nobody")
                port = free_port()
                args = [SMTP_SINK, "-u", "nobody", "-d", f"{dumps}/%H%M%S."]
                if not offers_dsn:
                    args.append("-N")
                sink = subprocess.Popen(args + [f"{HOST}:{port}", "10"], stderr=subprocess.DEVNULL)
                self.addCleanup(sink.wait, 10)
                self.addCleanup(sink.terminate)
                wait_until(lambda: self._accepts(port), 10)
                name = f"Postfix{int(offers_dsn)}"
                space = f"pf{int(offers_dsn)}.example.net"
                self.smart_host_connector([f"[{HOST}]:{port}"], name=name, address_spaces=space)
                token = unique_token("dsn-postfix")
                self.send([(f"x@{space}", ["NOTIFY=SUCCESS", "ORCPT=rfc822;x@" + space])],
                          token, ["RET=FULL", "ENVID=" + token])
                self.assertTrue(wait_until(lambda: any(token in p.read_text(errors="replace")
                                                       for p in dumps.iterdir()), REPORT_WAIT),
                                "nothing in smtp-sink's dump\n" + "\n".join(self.outbound_lines()[-10:]))
                dump = next(p.read_text(errors="replace") for p in dumps.iterdir()
                            if token in p.read_text(errors="replace"))
                if offers_dsn:
                    self.assertIn(f"X-Mail-Args: <{SENDER}> RET=FULL ENVID={token}\n", dump)
                    self.assertIn(f"X-Rcpt-Args: <x@{space}> NOTIFY=SUCCESS ORCPT=rfc822;x@{space}\n", dump)
                    self.assert_no_report(token)
                else:
                    self.assertNotIn("NOTIFY=", dump)
                    self.assertNotIn("ENVID=", dump)
                    self.assertReport(self.wait_report(token), f"x@{space}", "2.0.0", action="relayed")

    @staticmethod
    def _accepts(port):
        import socket
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return True
        except OSError:
            return False


if __name__ == "__main__":
    unittest.main()
