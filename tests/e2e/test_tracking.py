"""Message tracking end to end (docs/tracking.md): every message's life in DIR/logs/tracking/,
MSGTRK*.log files of JSON lines with Exchange's fields, searched by get-message-tracking-log.

What a test expects from the daemon: a message relayed to a scripted peer gives RECEIVE first
and SEND last (with the peer's 250 in RecipientStatus), one delivered locally RECEIVE first and
DELIVER last, all with the queue id of '250 ... queued as'; the search finds them by sender,
recipient, Message-ID and event id; tiny MessageTrackingLog* limits set with set-transport-server
apply at once: files stay under MaxFileSize, the directory under MaxDirectorySize (the oldest
entries go), files past MaxAge are removed; MessageTrackingLogEnabled false writes nothing.
"""

import json
import os
import pwd
import time
import unittest

from peers import Sink, wait_until
from starling_cli import OutboundMixin
from starling_fixture import SERVICE_USER, DaemonTestCase, unique_token

SENDER = "sender@example.test"
WAIT = 20.0


class TrackingCase(DaemonTestCase, OutboundMixin):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.tracking = self.starling.data_dir / "logs" / "tracking"

    def track(self, *filters):
        return self.cli_json("get-message-tracking-log", "--result-size", "unlimited", *filters)

    def wait_track(self, last_event, *filters, timeout=WAIT):
        """The entries matching `filters` once the newest is `last_event`."""
        found = {}

        def done():
            found["entries"] = self.track(*filters)
            return found["entries"] and found["entries"][-1]["EventId"] == last_event
        wait_until(done, timeout)
        entries = found["entries"]
        self.assertTrue(entries and entries[-1]["EventId"] == last_event,
                        f"no {last_event} last for {filters}: {[e['EventId'] for e in entries]}")
        return entries

    def files(self):
        return sorted(self.tracking.glob("MSGTRK*.log"))

    def local_message(self, token, to="alice@example.test"):
        data = self.make_message(token, to=to)
        queue_id = self.submit(to, data)
        self.starling.wait_for(token, user=to.split("@")[0], timeout=WAIT)
        return queue_id


class LifeOfAMessage(TrackingCase):
    def test_relayed_and_local_messages_are_tracked_in_order(self):
        self.allow_relay()
        sink = Sink()
        sink.start()
        self.addCleanup(sink.stop)
        self.smart_host_connector(f"[127.0.0.1]:{sink.port}")
        relayed = unique_token("relayed")
        relayed_id = self.submit("rcpt@example.net", self.make_message(relayed, to="rcpt@example.net"))
        self.assertTrue(sink.wait_messages(1, timeout=WAIT, token=relayed))
        local = unique_token("local")
        local_id = self.local_message(local)

        sent = self.wait_track("SEND", "--message-id", f"<{relayed}@client.test>")
        receive = sent[0]
        self.assertEqual(receive["EventId"], "RECEIVE")
        self.assertEqual(receive["Source"], "SMTP")
        self.assertEqual(receive["ClientIp"], "127.0.0.1")
        self.assertEqual(receive["ClientHostname"], "client.test")
        self.assertEqual(receive["ServerIp"], "127.0.0.1")
        self.assertEqual(receive["ServerHostname"], self.starling.fqdn)
        self.assertEqual(receive["ConnectorId"], f"Default {self.starling.server_name}")
        self.assertEqual(receive["Sender"], SENDER)
        self.assertEqual(receive["ReturnPath"], SENDER)
        self.assertEqual(receive["Recipients"], ["rcpt@example.net"])
        self.assertEqual(receive["RecipientCount"], 1)
        self.assertEqual(receive["MessageSubject"], relayed)
        self.assertEqual(receive["MessageInfo"], "TLS: none")
        self.assertGreater(receive["TotalBytes"], len(self.make_message(relayed)))
        self.assertTrue(sent[-1]["RecipientStatus"][0].startswith("250"), sent[-1])
        self.assertEqual({e["InternalMessageId"] for e in sent}, {relayed_id})
        stamps = [e["Timestamp"] for e in sent]
        self.assertEqual(stamps, sorted(stamps))

        delivered = self.wait_track("DELIVER", "--message-id", f"{local}@client.test")  # no < >
        self.assertEqual(delivered[0]["EventId"], "RECEIVE")
        self.assertEqual({e["InternalMessageId"] for e in delivered}, {local_id})
        self.assertEqual(delivered[-1]["Recipients"], ["alice@example.test"])

        # Found by sender, recipient and event id, and only those.
        by_sender = self.track("--sender", SENDER.upper())
        self.assertEqual({e["InternalMessageId"] for e in by_sender}, {relayed_id, local_id})
        by_recipient = self.track("--recipients", "nobody@example.test,ALICE@example.test")
        self.assertEqual({e["InternalMessageId"] for e in by_recipient}, {local_id})
        receives = self.track("--sender", SENDER, "--event-id", "receive")
        self.assertEqual([e["InternalMessageId"] for e in receives], [relayed_id, local_id])
        self.assertEqual(self.track("--internal-message-id", local_id), delivered)
        self.assertEqual(self.track("--sender", SENDER, "--end", "1d"), [])  # before yesterday

        # The files: JSON lines, the service user's.
        lines = [l for f in self.files() for l in f.read_text().splitlines()]
        self.assertGreaterEqual(len(lines), len(sent) + len(delivered))
        for line in lines:
            self.assertIn("EventId", json.loads(line))
        self.assertEqual(os.stat(self.tracking).st_uid, pwd.getpwnam(SERVICE_USER).pw_uid)

    def test_result_size_shows_the_first_and_warns(self):
        tokens = [unique_token("rs") for _ in range(3)]
        for t in tokens:
            self.local_message(t)
        self.wait_track("DELIVER", "--message-id", f"{tokens[-1]}@client.test")
        r = self.cli("get-message-tracking-log", "--event-id", "RECEIVE", "--result-size", "2",
                     "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = json.loads(r.stdout)
        self.assertEqual([e["MessageSubject"] for e in entries], tokens[:2])
        self.assertIn("only the first 2", r.stderr)

    def test_bad_filters_are_refused(self):
        self.cli_fails(2, "--event-id: 'ARRIVE' is not an event id", "get-message-tracking-log",
                       "--event-id", "ARRIVE")
        self.cli_fails(2, "--result-size: a number from 1", "get-message-tracking-log",
                       "--result-size", "0")
        self.cli_fails(2, "--start: 'yesterday' is not a time", "get-message-tracking-log",
                       "--start", "yesterday")
        self.cli_fails(2, "--end must be later than --start", "get-message-tracking-log",
                       "--start", "2026-12-02", "--end", "2026-12-01")


class RotationAndPruning(TrackingCase):
    def entries_on_disk(self):
        return [json.loads(l) for f in self.files() for l in f.read_text().splitlines()]

    def test_tiny_limits_rotate_and_prune_while_running(self):
        self.set_transport(message_tracking_log_max_file_size="1500",
                           message_tracking_log_max_directory_size="5000")
        tokens = [unique_token("rot") for _ in range(12)]
        for t in tokens:
            self.local_message(t)
        self.wait_track("DELIVER", "--message-id", f"{tokens[-1]}@client.test")  # written
        files = self.files()
        self.assertGreater(len(files), 2)
        for f in files:
            self.assertLessEqual(f.stat().st_size, 1500, f)
        self.assertLessEqual(sum(f.stat().st_size for f in files), 5000)
        subjects = {e["MessageSubject"] for e in self.entries_on_disk()}
        self.assertNotIn(tokens[0], subjects)  # the oldest are gone
        self.assertIn(tokens[-1], subjects)
        self.assertEqual(self.track("--message-id", f"{tokens[0]}@client.test"), [])

        # A file older than MessageTrackingLogMaxAge goes as soon as the setting changes.
        time.sleep(2.5)
        self.set_transport(message_tracking_log_max_age="00:00:02")
        self.assertTrue(wait_until(lambda: len(self.files()) == 1, WAIT), self.files())

    def test_file_size_above_directory_size_is_refused(self):
        self.cli_fails(1, "MessageTrackingLogMaxFileSize: cannot exceed", "set-transport-server",
                       "--message-tracking-log-max-file-size", "2MB",
                       "--message-tracking-log-max-directory-size", "1MB")
        settings = self.transport_settings()
        self.assertEqual(settings["MessageTrackingLogMaxFileSize"], 10 * 1024 * 1024)

    def test_disabled_writes_nothing_and_enabled_again_writes(self):
        self.set_transport(message_tracking_log_enabled="false")
        self.assertIs(self.transport_settings()["MessageTrackingLogEnabled"], False)
        quiet = unique_token("quiet")
        self.local_message(quiet)
        self.set_transport(message_tracking_log_enabled="true")
        loud = unique_token("loud")
        self.local_message(loud)
        self.wait_track("DELIVER", "--message-id", f"{loud}@client.test")
        # RECEIVE is written before the client's 250: there was none for the quiet one.
        self.assertEqual(self.track("--message-id", f"{quiet}@client.test", "--event-id", "RECEIVE"), [])


if __name__ == "__main__":
    unittest.main()
