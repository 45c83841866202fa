"""The queues as the administrator sees and steers them, end to end (issue 10's queue tests).

Mail relays through a smart-host send connector to scripted peers (peers.py) on loopback:
- a peer that answers 4xx puts its message in Retry, with the peer's reply as LastError, and
  retry-queue delivers it once the peer recovers;
- suspend-/resume-queue and suspend-/resume-message hold mail and let it go; a suspended queue and
  a suspended message stay suspended across a restart;
- remove-message with a report (the sender gets a non-delivery report, 4.3.2) and without;
- export-message writes a file that parses as the message sent;
- retry-queue --resubmit routes a queue's messages again: one whose route has gone moves to
  Unreachable, and Unreachable drains with `retry-queue Unreachable --resubmit` once a connector
  serves it again;
- Poison: a message in flight (the peer holds it after its data) during two kill -9 of the
  daemon is set aside in Poison, never tried again, and resume-message sends it;
- suspend-message and remove-message also stop a transaction waiting for its LMTP server (a
  gate holds the connection before the greeting, so the transaction is queued, not in flight).
Every assertion is on states and counts; waits poll with a bound.
"""

import email
import email.policy
import os
import socket
import tempfile
import threading
import time
import unittest

from peers import DISCONNECT, SILENCE, RawPeer, Rule, Script, Sink, free_port, wait_until
from starling_cli import OutboundMixin
from starling_fixture import HOST, DaemonTestCase
from test_mailbox_delivery import LmtpServer

WAIT = 20.0
LONG_RETRY = "01:00:00"  # a deferred message waits, unless an administrator says otherwise


class QueueTestCase(OutboundMixin, DaemonTestCase):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.allow_relay()
        self.set_transport(message_retry_interval=LONG_RETRY)

    def peer(self, *rules):
        sink = Sink(script=Script(*rules)).start()
        self.addCleanup(sink.stop)
        return sink

    def queue_name(self, peer):
        return f"[127.0.0.1]:{peer.port}"

    def queue(self, name):
        found = [q for q in self.cli_json("get-queue") if q["Identity"].lower().endswith("\\" + name.lower())]
        return found[0] if found else None

    def wait_queue(self, name, predicate, what):
        q = wait_until(lambda: (lambda q: q if q and predicate(q) else None)(self.queue(name)), WAIT, 0.2)
        self.assertTrue(q, f"queue {name}: {what}; get-queue: {self.cli_json('get-queue')}")
        return q

    def messages(self, qid):
        return [m for m in self.cli_json("get-message", "--include-recipient-info")
                if m.get("InternalMessageId") == qid]

    def wait_message(self, qid, predicate, what):
        found = wait_until(lambda: [m for m in self.messages(qid) if predicate(m)], WAIT, 0.2)
        self.assertTrue(found, f"message {qid}: {what}; get-message: {self.cli_json('get-message')}")
        return found[0]

    def wait_gone(self, qid):
        self.assertTrue(wait_until(lambda: not self.messages(qid), WAIT, 0.2),
                        f"message {qid} still queued: {self.messages(qid)}")

    def deferred_message(self, peer, token):
        """A message that the peer refused for now (451 to RCPT), waiting in Retry."""
        qid = self.submit("rcpt@example.net", self.make_message(token))
        self.wait_message(qid, lambda m: m["Status"] == "Retry", "in Retry")
        return qid


class RetryAndSuspend(QueueTestCase):
    def test_a_4xx_peer_puts_the_queue_in_retry_and_retry_queue_delivers_after_it_recovers(self):
        peer = self.peer(Rule("RCPT", "451 4.7.1 greylisted, come back later"))
        self.smart_host_connector(peer.smart_host())
        qid = self.deferred_message(peer, "retry-e2e")
        name = self.queue_name(peer)
        q = self.wait_queue(name, lambda q: q["Status"] == "Retry", "Status Retry")
        self.assertIn("4.7.1 greylisted, come back later", q["LastError"])
        self.assertEqual(q["DeliveryType"], "SmartHostConnectorDelivery")
        self.assertEqual(q["MessageCount"], 1)
        m = self.messages(qid)[0]
        self.assertIn("4.7.1 greylisted", m["LastError"])
        self.assertEqual(m["Queue"].split("\\")[-1].lower(), name.lower())
        self.assertEqual(m["FromAddress"], "sender@example.test")
        self.assertEqual(m["Subject"], "retry-e2e")
        self.assertEqual(len(peer.all()), 0)
        peer.script.clear()  # the peer recovers; the message would wait an hour on its own
        self.cli_ok("retry-queue", name)
        peer.wait_messages(1, timeout=WAIT, token=b"retry-e2e")
        self.wait_gone(qid)
        self.wait_queue(name, lambda q: q["MessageCount"] == 0 and q["Status"] != "Retry", "empty, not in Retry")

    def test_a_suspended_queue_takes_messages_in_and_lets_none_out_until_resumed(self):
        peer = self.peer()
        self.smart_host_connector(peer.smart_host())
        self.submit("rcpt@example.net", self.make_message("before-suspend"))
        peer.wait_messages(1, timeout=WAIT)
        name = self.queue_name(peer)
        self.cli_ok("suspend-queue", name)
        self.assertEqual(self.queue(name)["Status"], "Suspended")
        qid = self.submit("rcpt@example.net", self.make_message("while-suspended"))
        m = self.wait_message(qid, lambda m: True, "in its queue")
        self.assertEqual(m["Queue"].split("\\")[-1].lower(), name.lower())
        self.cli_ok("retry-queue", name)  # still suspended: nothing leaves
        self.assertFalse(wait_until(lambda: peer.find(b"while-suspended"), 2.0),
                         "a message left a suspended queue")
        self.assertEqual(self.queue(name)["MessageCount"], 1)
        # The suspension is kept: after a restart the queue is still suspended.
        self.starling.terminate()
        self.starling.start()
        self.assertEqual(self.queue(name)["Status"], "Suspended")
        self.assertFalse(wait_until(lambda: peer.find(b"while-suspended"), 2.0),
                         "a message left a suspended queue after the restart")
        self.cli_ok("resume-queue", name)
        peer.wait_messages(2, timeout=WAIT, token=b"while-suspended")
        self.wait_gone(qid)
        self.starling.terminate()
        self.starling.start()
        after = self.queue(name)  # an empty queue that is not suspended may not be listed
        self.assertTrue(after is None or after["Status"] != "Suspended", f"resumed before the restart: {after}")

    def test_a_suspended_message_stays_suspended_across_a_restart_until_resumed(self):
        peer = self.peer(Rule("RCPT", "451 4.3.0 not now"))
        self.smart_host_connector(peer.smart_host())
        qid = self.deferred_message(peer, "suspend-message-e2e")
        self.cli_ok("suspend-message", qid)
        self.wait_message(qid, lambda m: m["Status"] == "Suspended", "Suspended")
        peer.script.clear()
        self.cli_ok("retry-queue", self.queue_name(peer))
        self.assertFalse(wait_until(lambda: peer.find(b"suspend-message-e2e"), 2.0),
                         "a suspended message was sent")
        self.starling.terminate()
        self.starling.start()
        self.wait_message(qid, lambda m: m["Status"] == "Suspended", "Suspended after the restart")
        self.cli_ok("resume-message", qid)
        self.cli_ok("retry-queue", self.queue_name(peer))
        peer.wait_messages(1, timeout=WAIT, token=b"suspend-message-e2e")
        self.wait_gone(qid)


class RemoveAndExport(QueueTestCase):
    def test_remove_with_a_report_fails_it_for_the_sender_and_without_one_it_is_just_gone(self):
        peer = self.peer(Rule("RCPT", "451 4.3.0 not now"))
        self.smart_host_connector(peer.smart_host())
        silent = self.deferred_message(peer, "remove-silent-e2e")
        reported = self.deferred_message(peer, "remove-report-e2e")
        self.cli_ok("remove-message", silent, "--with-ndr", "false", "--yes")
        self.wait_gone(silent)
        self.cli_ok("remove-message", reported, "--yes")
        report = self.wait_report("remove-report-e2e")
        self.assertReport(report, "rcpt@example.net", "4.3.2")
        self.assertIn("QUEUE.Admin", report.data.decode(errors="replace"))
        self.wait_gone(reported)
        # The report for the second came; none ever comes for the first (queued before it).
        self.assertEqual([r for r in self.reports() if b"remove-silent-e2e" in r.data], [])
        self.assertEqual(len(peer.all()), 0)

    def test_removal_without_a_report_survives_a_restart(self):
        peer = self.peer(Rule("RCPT", "451 4.3.0 not now"))
        self.smart_host_connector(peer.smart_host())
        qid = self.deferred_message(peer, "remove-restart-e2e")
        self.cli_ok("remove-message", qid, "--with-ndr", "false", "--yes")
        self.starling.kill()  # at once: the removal must already be on disk
        self.starling.start()
        self.assertEqual(self.messages(qid), [])
        self.assertEqual(self.queue("Submission")["MessageCount"], 0)
        self.assertFalse(os.path.exists(os.path.join(self.starling.data_dir, "queue", qid)))

    def test_export_parses_as_the_message_sent(self):
        peer = self.peer(Rule("RCPT", "451 4.3.0 not now"))
        self.smart_host_connector(peer.smart_host())
        data = self.make_message("export-queue-e2e", body="first line\r\nsecond line\r\n").encode()
        qid = self.submit("rcpt@example.net", data)
        self.wait_message(qid, lambda m: m["Status"] == "Retry", "in Retry")
        with tempfile.TemporaryDirectory() as out:
            path = os.path.join(out, "m.eml")
            self.cli_ok("export-message", qid, "--file", path)
            with open(path, "rb") as f:
                written = f.read()
        parsed = email.message_from_bytes(written, policy=email.policy.default)
        original = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(parsed["Message-ID"], original["Message-ID"])
        self.assertEqual(parsed["Subject"], original["Subject"])
        self.assertEqual(parsed.get_content(), original.get_content())


class Resubmit(QueueTestCase):
    def test_resubmit_follows_a_changed_route_and_unreachable_drains_with_resubmit(self):
        old = self.peer(Rule("RCPT", "451 4.3.0 not now"))
        new = self.peer()
        self.smart_host_connector(old.smart_host())
        first = self.deferred_message(old, "resubmit-moved-e2e")
        # The connector now points elsewhere; the waiting message keeps its queue until resubmitted.
        self.set_send_connector("Out", smart_hosts=new.smart_host())
        self.cli_ok("retry-queue", self.queue_name(old), "--resubmit")
        new.wait_messages(1, timeout=WAIT, token=b"resubmit-moved-e2e")
        self.wait_gone(first)

        new.script.add(Rule("RCPT", "451 4.3.0 not now"))
        second = self.deferred_message(new, "resubmit-unreachable-e2e")
        self.cli_ok("remove-send-connector", "Out", "--yes")
        self.cli_ok("retry-queue", self.queue_name(new), "--resubmit")
        self.wait_queue("Unreachable", lambda q: q["MessageCount"] == 1, "one message")
        m = self.wait_message(second, lambda m: m["Queue"].endswith("\\Unreachable"), "in Unreachable")
        self.assertEqual(m["Status"], "Ready")
        new.script.clear()
        self.smart_host_connector(new.smart_host(), name="Again")
        self.cli_ok("retry-queue", "Unreachable", "--resubmit")
        new.wait_messages(2, timeout=WAIT, token=b"resubmit-unreachable-e2e")
        self.wait_gone(second)
        self.assertEqual(self.queue("Unreachable")["MessageCount"], 0)


class PoisonMessages(QueueTestCase):
    def test_a_message_in_flight_during_two_crashes_goes_to_poison_until_resumed(self):
        peer = RawPeer(script=Script(Rule("DATA_END", SILENCE))).start()
        self.addCleanup(peer.stop)
        # Long enough that the attempt is still waiting for the peer when the daemon dies.
        self.smart_host_connector(f"[127.0.0.1]:{peer.port}", connection_inactivity_timeout="00:05:00")
        self.assertEqual(self.transport_settings()["PoisonThreshold"], 2)
        qid = self.submit("rcpt@example.net", self.make_message("poison-e2e"))
        for crash in (1, 2):
            self.assertTrue(wait_until(lambda: len(peer.verbs("DATA")) >= crash, WAIT),
                            f"attempt {crash} reached DATA: {peer.all()}")
            time.sleep(0.3)  # the attempt's mark is committed with the queue's next flush
            self.starling.kill()
            self.starling.start()
        q = self.wait_queue("Poison", lambda q: q["MessageCount"] == 1, "the message")
        self.assertEqual(q["MessageCount"], 1)
        m = self.wait_message(qid, lambda m: m["Queue"].endswith("\\Poison"), "in Poison")
        self.assertEqual(m["Status"], "Suspended")
        self.cli_ok("retry-queue", self.queue_name(peer))
        self.assertFalse(wait_until(lambda: len(peer.verbs("DATA")) > 2, 2.0), "a Poison message was tried")
        self.cli_fails(1, "Poison", "retry-queue", "Poison")
        peer.behave()
        self.cli_ok("resume-message", qid)
        peer.wait_messages(1, timeout=WAIT, token=b"poison-e2e")
        self.wait_gone(qid)


class LmtpGate:
    """A TCP relay in front of an LMTP server that holds every connection, before the server's
    greeting, until `opened` is set; `connections` counts those accepted."""

    def __init__(self, port):
        self.upstream = port
        self.opened = threading.Event()
        self.connections = 0
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.opened.set()
        for s in [self.listener] + self.sockets:
            s.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.sockets.append(conn)
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn):
        self.opened.wait()
        try:
            up = socket.create_connection((HOST, self.upstream))
        except OSError:
            return conn.close()
        self.sockets.append(up)
        threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()
        self._pump(conn, up)

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class LmtpWaiting(QueueTestCase):
    def waiting_for_lmtp(self, token):
        """A message for an LMTP mailbox whose transaction waits for the server's greeting."""
        self.server = LmtpServer().start()
        self.addCleanup(self.server.stop)
        self.gate = LmtpGate(self.server.port).start()
        self.addCleanup(self.gate.stop)
        self.cli_ok("new-accepted-domain", "lmtp.test", "--domain-type", "Authoritative")
        self.cli_ok("set-accepted-domain", "lmtp.test", "--delivery-target", f"lmtp:{HOST}:{self.gate.port}")
        self.cli_ok("new-mailbox", "--address", "bob@lmtp.test")
        qid = self.submit("bob@lmtp.test", self.make_message(token, to="bob@lmtp.test"))
        self.assertTrue(wait_until(lambda: self.gate.connections >= 1, WAIT), "no LMTP connection")
        return qid

    def assertNotDelivered(self, what):
        self.gate.opened.set()
        self.assertFalse(wait_until(lambda: self.server.delivered_to("bob@lmtp.test"), 2.0), what)

    def test_a_suspended_message_waiting_for_lmtp_is_not_delivered_until_resumed(self):
        qid = self.waiting_for_lmtp("lmtp-suspend-e2e")
        self.cli_ok("suspend-message", qid)
        self.wait_message(qid, lambda m: m["Status"] == "Suspended", "Suspended")
        self.assertNotDelivered("a suspended message was delivered over LMTP")
        self.cli_ok("resume-message", qid)
        self.assertTrue(self.server.wait_delivered("bob@lmtp.test", "lmtp-suspend-e2e"), "not delivered")
        self.wait_gone(qid)

    def test_a_removed_message_waiting_for_lmtp_is_never_delivered(self):
        qid = self.waiting_for_lmtp("lmtp-remove-e2e")
        self.cli_ok("remove-message", qid, "--with-ndr", "false", "--yes")
        self.wait_gone(qid)
        self.assertNotDelivered("a removed message was delivered over LMTP")


if __name__ == "__main__":
    unittest.main()
