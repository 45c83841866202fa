"""Relay crash test: nothing acknowledged is lost on the way out.

Eight concurrent smtplib senders relay mail through Starling (ExternalAuthoritative on the
receive connector) to a smart host: an aiosmtpd sink in a process of its own (peers.py sink)
that records the Message-ID of every message it accepts. While messages are being accepted and
relayed, starlingd is killed with SIGKILL, then restarted on the same data directory. Every
message that got 250 from Starling must reach the sink at least once (counted by Message-ID).
A message may reach it twice only when its first delivery came before the kill (the sink had
it, Starling's record of that was not yet on disk): once more, after the restart. Any other
duplicate is a bug, whatever the load.
"""

import collections
import smtplib
import sys
import threading
import time
import unittest

from peers import SinkProcess
from starling_cli import OutboundMixin
from starling_fixture import HOST, DaemonTestCase

SENDERS = 8
MIN_RUN = 1.5        # seconds of sending before the kill
MIN_ACKS = 40        # ...and at least this many acknowledged messages
MIN_RELAYED = 5      # ...of which the sink has this many already (deliveries under way)
MAX_RUN = 15.0
DELIVERY_WAIT = 45.0


class RelayRound:
    def __init__(self, port, name):
        self.port = port
        self.name = name
        self.lock = threading.Lock()
        self.acked = {}          # Message-ID -> (reply, time acknowledged)
        self.in_flight = []
        self.early_errors = []
        self.refused = []
        self.kill_time = None
        self.stop = threading.Event()
        self.seq = 0

    def next_id(self, n):
        with self.lock:
            self.seq += 1
            return f"<relaycrash-{self.name}-{n}-{self.seq}@client.test>"

    def sender(self, n):
        filler = "".join(f"filler line {i} of a relayed message with some size\r\n"
                         for i in range(30))
        while not self.stop.is_set():
            mid = None
            try:
                s = smtplib.SMTP(HOST, self.port, local_hostname=f"relay{n}.client.test",
                                 timeout=15)
                s.ehlo()
                for _ in range(20):
                    if self.stop.is_set():
                        break
                    mid = self.next_id(n)
                    code, resp = s.mail(f"sender{n}@example.test")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    code, resp = s.rcpt(f"dest{n % 3}@example.net")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    body = (f"From: sender{n}@example.test\r\nTo: dest{n % 3}@example.net\r\n"
                            f"Subject: relay crash {mid}\r\nMessage-ID: {mid}\r\n\r\n"
                            f"{filler}END\r\n")
                    code, resp = s.data(body.encode())
                    with self.lock:
                        if code == 250:
                            self.acked[mid] = (resp.decode(errors="replace"), time.monotonic())
                        else:
                            self.refused.append((mid, code, resp))
                    mid = None
                s.quit()
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    if mid:
                        self.in_flight.append(mid)
                    if self.kill_time is None or time.monotonic() < self.kill_time:
                        self.early_errors.append(f"{type(e).__name__}: {e}")
                if self.kill_time is not None:
                    return
                time.sleep(0.05)

    def run(self, starling, sink):
        threads = [threading.Thread(target=self.sender, args=(n,), daemon=True)
                   for n in range(SENDERS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while True:
            time.sleep(0.05)
            with self.lock:
                acks = len(self.acked)
            elapsed = time.monotonic() - t0
            ready = acks >= MIN_ACKS and len(sink.records()) >= MIN_RELAYED
            if (elapsed >= MIN_RUN and ready) or elapsed >= MAX_RUN:
                break
        self.relayed_at_kill = len(sink.records())
        with self.lock:
            self.kill_time = time.monotonic()
        starling.kill()  # SIGKILL while accepting and relaying
        time.sleep(0.3)  # the sink writes down what reached it before the kill
        self.delivered_before_restart = [r.get("message_id") for r in sink.records()]
        self.stop.set()
        for t in threads:
            t.join(20)
        return not any(t.is_alive() for t in threads)


class RelayCrash(DaemonTestCase, OutboundMixin):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.allow_relay()
        self.fast_retries()
        self.sink = SinkProcess(self.starling.root / "sink-record.jsonl")
        self.sink.start()
        self.addCleanup(self.sink.stop)
        self.smart_host_connector(self.sink.smart_host())

    def test_kill_9_while_relaying_loses_nothing_acknowledged(self):
        rnd = RelayRound(self.starling.port, "a")
        joined = rnd.run(self.starling, self.sink)
        self.assertTrue(joined, "sender threads hung after the kill")
        self.assertEqual(rnd.early_errors, [], "sessions failed before the kill")
        self.assertEqual(rnd.refused, [], "messages refused under load")
        self.assertGreaterEqual(len(rnd.acked), MIN_ACKS, "too few messages acknowledged")
        self.assertGreaterEqual(rnd.relayed_at_kill, MIN_RELAYED,
                                "the kill came before any relaying was under way")
        self.starling.start()  # recovery: the queue is delivered on

        deadline = time.monotonic() + DELIVERY_WAIT
        while True:
            ids = self.sink.message_ids()
            missing = sorted(set(rnd.acked) - set(ids))
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        if missing:
            self.fail(f"{len(missing)} of {len(rnd.acked)} acknowledged messages never reached "
                      f"the next hop after kill -9 (in flight at the kill: {len(rnd.in_flight)}"
                      f", at the sink then: {rnd.relayed_at_kill}):\n"
                      + "\n".join(f"  {m}: {rnd.acked[m][0]}" for m in missing[:30]))
        time.sleep(1.5)  # a retry interval: late duplicates would show up now
        ids = self.sink.message_ids()
        dupes = {m: n for m, n in ids.items() if n > 1}
        extra = sum(n - 1 for n in dupes.values())
        print(f"\nrelay crash test: acknowledged {len(rnd.acked)}, in flight at the kill "
              f"{len(rnd.in_flight)}, at the sink at the kill {rnd.relayed_at_kill}, relayed "
              f"{len(ids)} distinct, {extra} duplicate deliveries ({len(dupes)} messages)",
              file=sys.stderr)
        before = collections.Counter(rnd.delivered_before_restart)
        repeated = {m: n for m, n in dupes.items() if n > 2 or before[m] != 1}
        self.assertEqual(repeated, {}, "delivered twice without a crash in between, or more than twice")
        unknown = set(ids) - set(rnd.acked) - set(rnd.in_flight)
        self.assertEqual(unknown, set(), "the sink got messages nobody sent")


if __name__ == "__main__":
    unittest.main()
