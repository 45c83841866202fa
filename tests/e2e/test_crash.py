"""Crash test: nothing acknowledged is lost.

Eight concurrent smtplib senders stream messages (a unique token in each Subject); every message
whose DATA got 250 is recorded. The daemon is killed with SIGKILL mid-stream, restarted on the
same data directory, and every recorded token must then be delivered (duplicates are allowed:
at-least-once). Done twice; the second kill lands while the restarted daemon may still be
delivering the first round's backlog.
"""

import re
import smtplib
import threading
import time
import unittest

from starling_fixture import DaemonTestCase, HOST, starts_as_delivered

SENDERS = 8
MIN_RUN = 1.5        # seconds of sending before the kill
MIN_ACKS = 20        # ...and at least this many acknowledged messages
MAX_RUN = 15.0
DELIVERY_WAIT = 15.0
TOKEN_RE = re.compile(rb"^Subject: (crash-\S+)$", re.M)


class Round:
    """One burst of concurrent senders, ended by kill -9."""

    def __init__(self, port, name):
        self.port = port
        self.name = name
        self.lock = threading.Lock()
        self.acked = {}          # token -> (queue reply, time acknowledged)
        self.in_flight = []      # transactions cut off by the kill
        self.early_errors = []   # failures before the kill: the server misbehaved
        self.refused = []        # non-250 replies to the end of data
        self.kill_time = None
        self.stop = threading.Event()
        self.seq = 0

    def next_token(self, n):
        with self.lock:
            self.seq += 1
            return f"crash-{self.name}-{n}-{self.seq}"

    def failed(self, token, exc):
        with self.lock:
            if token:
                self.in_flight.append(token)
            if self.kill_time is None or time.monotonic() < self.kill_time:
                self.early_errors.append(f"{type(exc).__name__}: {exc}")

    def sender(self, n):
        filler = "".join(f"filler line {i} of a message that has some size\r\n" for i in range(40))
        while not self.stop.is_set():
            token = None
            try:
                s = smtplib.SMTP(HOST, self.port, local_hostname=f"crash{n}.client.test",
                                 timeout=15)
                s.ehlo()
                for _ in range(25):  # reconnect now and then: exercise accept under load too
                    if self.stop.is_set():
                        break
                    token = self.next_token(n)
                    code, resp = s.mail(f"sender{n}@client.test")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    code, resp = s.rcpt(f"crash{n % 3}@example.test")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    body = (f"Subject: {token}\r\nFrom: sender{n}@client.test\r\n\r\n"
                            f"{filler}END {token}\r\n")
                    code, resp = s.data(body.encode())
                    with self.lock:
                        if code == 250:
                            self.acked[token] = (resp.decode(errors="replace"),
                                                 time.monotonic())
                        else:
                            self.refused.append((token, code, resp))
                    token = None
                s.quit()
            except (OSError, smtplib.SMTPException) as e:  # SMTPException is an OSError too
                self.failed(token, e)
                if self.kill_time is not None:
                    return
                time.sleep(0.05)

    def run(self, starling):
        threads = [threading.Thread(target=self.sender, args=(n,), daemon=True)
                   for n in range(SENDERS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while True:
            time.sleep(0.05)
            with self.lock:
                enough = len(self.acked) >= MIN_ACKS
            elapsed = time.monotonic() - t0
            if (elapsed >= MIN_RUN and enough) or elapsed >= MAX_RUN:
                break
        with self.lock:
            self.kill_time = time.monotonic()
        starling.kill()  # SIGKILL, mid-stream
        self.stop.set()
        for t in threads:
            t.join(20)
        return not any(t.is_alive() for t in threads)


class CrashRecovery(DaemonTestCase):
    daemon_per_test = True

    def delivered_tokens(self):
        found = {}
        for path in self.starling.delivered():
            data = self.starling.read(path)
            m = TOKEN_RE.search(data)
            if m:
                found.setdefault(m.group(1).decode(), []).append((path, data))
        return found

    def check_round(self, rnd, joined):
        self.assertTrue(joined, "sender threads hung after the kill")
        self.assertEqual(rnd.early_errors, [],
                         f"round {rnd.name}: sessions failed before the kill")
        self.assertEqual(rnd.refused, [], f"round {rnd.name}: messages refused under load")
        self.assertGreater(len(rnd.acked), 0, f"round {rnd.name}: nothing acknowledged")
        self.assertGreaterEqual(len(rnd.in_flight), 1,
                                f"round {rnd.name}: no transaction was cut by the kill")
        last_ack = max(t for _, t in rnd.acked.values())
        self.assertLess(rnd.kill_time - last_ack, 3.0,
                        f"round {rnd.name}: acknowledgements had stopped before the kill")
        for token, (reply, _) in rnd.acked.items():
            self.assertRegex(reply, r"^2\.0\.0 OK queued as \S+", token)

    def wait_all_delivered(self, acked):
        deadline = time.monotonic() + DELIVERY_WAIT
        while True:
            found = self.delivered_tokens()
            missing = sorted(set(acked) - set(found))
            if not missing or time.monotonic() > deadline:
                return found, missing
            time.sleep(0.2)

    def test_kill_9_mid_stream_loses_nothing_acknowledged(self):
        port = self.starling.port

        first = Round(port, "a")
        self.check_round(first, first.run(self.starling))
        self.starling.start()  # recovery: delivers what DIR/queue holds

        second = Round(port, "b")  # kill again, possibly during the recovery deliveries
        self.check_round(second, second.run(self.starling))
        self.starling.start()

        acked = {**first.acked, **second.acked}
        found, missing = self.wait_all_delivered(acked)
        detail = "\n".join(f"  {t}: {acked[t][0]}" for t in missing[:30])
        if missing:
            self.fail(f"{len(missing)} of {len(acked)} acknowledged messages lost after "
                      f"kill -9 (in flight at the kills: {len(first.in_flight)}, "
                      f"{len(second.in_flight)}):\n{detail}")

        # Every delivered file is whole: a Received: header first and the body to its end.
        for token, copies in found.items():
            for path, data in copies:
                self.assertTrue(starts_as_delivered(data), f"{path}: {data[:60]!r}")
                self.assertTrue(data.endswith(f"END {token}\n".encode()),
                                f"{path}: truncated delivery: {data[-80:]!r}")
        dupes = sum(len(c) - 1 for c in found.values())
        print(f"\ncrash test: acknowledged {len(first.acked)} + {len(second.acked)}, "
              f"in flight {len(first.in_flight)} + {len(second.in_flight)}, "
              f"delivered {len(found)} distinct, {dupes} duplicates")


if __name__ == "__main__":
    unittest.main()
