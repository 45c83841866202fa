"""The control socket under attack, the event log's bounds, and stopping (docs/roles.md).

An unprivileged local user floods DIR/control.sock (thousands of idle connections, unfinished
large requests, thousands of refused requests): the daemon still greets SMTP clients, root's own
commands work, its descriptors and memory stay bounded and the store does not grow per refusal.
Also: a change made with --offline while the daemon runs is applied within seconds; get-event
--newest lists newest first; events are pruned to EventLogMaxCount and EventLogMaxAge; SIGTERM
stops the daemon within its grace period while the management thread is stuck on a locked store.

The flood runs as temporary Unix users (useradd, removed afterwards): skips unless run as root.
"""

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

from starling_cli import CliMixin, port_accepts, run_starling, skip_unless_usable_by, starling_binary
from starling_fixture import (HOST, SERVER_NAME, DaemonTestCase, RawClient, Starling, bin_dir,
                              free_port, proc_status_kib, unique_token)

VIEW = "ViewOnlyAdministrator"
DENIED = 77

# Run as the attacking user: opens COUNT connections to PATH (each sending SIZE bytes without a
# newline, as far as the daemon takes them), prints one JSON line of what happened, then holds
# every connection open until its stdin closes.
FLOODER = r"""
import json, resource, select, socket, sys, time
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
deadline = time.monotonic() + 30
socks, connected, failed = [], 0, 0
for i in range(count):
    if time.monotonic() > deadline:
        break
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    give_up = time.monotonic() + 5
    while True:
        try:
            s.connect(path)
            connected += 1
            socks.append([s, size, b""])
            break
        except BlockingIOError:  # the listen backlog is full: wait for the daemon to accept
            if time.monotonic() > give_up:
                failed += 1
                s.close()
                break
            time.sleep(0.001)
        except OSError:
            failed += 1
            s.close()
            break
chunk = b"x" * 65536
while size and time.monotonic() < deadline:
    progress = False
    for entry in socks:
        if entry[1] <= 0:
            continue
        try:
            n = entry[0].send(chunk[:entry[1]])
            entry[1] -= n
            progress = progress or n > 0
        except BlockingIOError:
            pass
        except OSError:
            entry[1] = 0
    if not progress:
        break
time.sleep(1)
closed, lines = 0, []
for entry in socks:
    try:
        data = entry[0].recv(65536)
        if data == b"":
            closed += 1
        else:
            lines.append(data.decode(errors="replace"))
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(json.dumps({"connected": connected, "failed": failed, "closed": closed,
                  "replies": len(lines), "first_reply": lines[0] if lines else ""}), flush=True)
sys.stdin.read()
"""

# Run as the refused user: COUNT whole requests, one connection each; prints the first reply.
REQUESTER = r"""
import json, socket, sys
path, count = sys.argv[1], int(sys.argv[2])
line = json.dumps({"command": "get-event", "args": {}}).encode() + b"\n"
first, answered = "", 0
for i in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(line)
    except OSError:
        pass
    data = b""
    try:
        while not data.endswith(b"\n"):
            got = s.recv(65536)
            if not got:
                break
            data += got
    except OSError:
        pass
    s.close()
    if data:
        answered += 1
        first = first or data.decode(errors="replace")
print(json.dumps({"answered": answered, "first_reply": first}), flush=True)
"""

ACCOUNTS = []
NOROLE = VIEWER = REFUSED = None  # no role; ViewOnlyAdministrator; no role, only for counting


def _run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")


def setUpModule():
    global NOROLE, VIEWER, REFUSED
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root: creates Unix users and floods as them")
    for tool in ("useradd", "userdel", "runuser"):
        if not shutil.which(tool):
            raise unittest.SkipTest(f"{tool} is not installed")
    suffix = f"{random.randrange(1 << 32):08x}"
    for base in ("ctln", "ctlv", "ctlr"):
        name = f"st{base}{suffix}"
        _run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name)
        ACCOUNTS.append(name)
    NOROLE, VIEWER, REFUSED = ACCOUNTS


def tearDownModule():
    for name in ACCOUNTS:
        subprocess.run(["userdel", name], capture_output=True)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def control_connections(sock):
    """Connections the daemon has open on control.sock: its accepted sockets carry the socket's
    path in /proc/net/unix, like the listening one (not counted)."""
    with open("/proc/net/unix") as f:
        return max(0, sum(1 for line in f if line.rstrip().endswith(str(sock))) - 1)


def store_bytes(data_dir):
    return sum(os.path.getsize(data_dir / n) for n in ("starling.db", "starling.db-wal")
               if (data_dir / n).exists())


class Flood:
    """FLOODER running as `user`: started, its report read, then released by stop()."""

    def __init__(self, user, sock, count, size):
        self.proc = subprocess.Popen(
            ["runuser", "-u", user, "--", sys.executable, "-c", FLOODER, str(sock), str(count),
             str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise AssertionError(f"the flooder ended without a report (exit {self.proc.returncode})")
        self.report = json.loads(line)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ControlSocketFlood(CliMixin, DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = run_starling(cls.starling.data_dir, "new-role-assignment", "--role", VIEW, "--user", VIEWER)
        if r.returncode != 0:
            raise RuntimeError(f"cannot assign {VIEW} to {VIEWER}: {r.stderr}")

    @property
    def sock(self):
        return self.starling.data_dir / "control.sock"

    @property
    def pid(self):
        return self.starling.proc.pid

    def assertServing(self):
        """SMTP greets and root's own command is answered, while the flood holds."""
        with RawClient(self.starling.port, timeout=5.0) as c:
            self.assertEqual(c.greeting().code, 220)
        r = self.cli("get-event", "--newest", "1", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)

    def flood(self, user, count, size):
        f = Flood(user, self.sock, count, size)
        self.addCleanup(f.stop)
        return f

    def test_idle_connections_of_a_user_without_role_cost_nothing(self):
        before = open_fds(self.pid)
        f = self.flood(NOROLE, 3000, 0)
        self.assertGreaterEqual(f.report["connected"], 2900, f.report)
        self.assertEqual(control_connections(self.sock), 0, "the daemon holds the idle connections")
        self.assertLess(open_fds(self.pid), before + 50)
        self.assertGreaterEqual(f.report["closed"] + f.report["replies"], f.report["connected"] - 50,
                                f"connections were left open: {f.report}")
        self.assertServing()

    def test_refusal_comes_before_the_request_with_the_shells_reply_shape(self):
        skip_unless_usable_by(NOROLE)  # runs the shell as that user
        f = self.flood(NOROLE, 1, 0)  # connects and sends nothing at all
        reply = json.loads(f.report["first_reply"])
        self.assertEqual(reply["exit_code"], DENIED)
        self.assertIn(f"{NOROLE} holds no role", reply["error"])
        r = self.cli("get-certificate", user=NOROLE)
        self.assertEqual(r.returncode, DENIED, r.stderr)
        self.assertRegex(r.stderr, r"permission denied: .* holds no role")
        self.assertEqual(r.stdout, "")

    def test_unfinished_large_requests_stay_within_the_memory_bounds(self):
        rss_before = proc_status_kib(self.pid, "VmRSS")
        for user in (NOROLE, VIEWER):
            with self.subTest(user=user):
                f = self.flood(user, 100, 8 << 20)
                self.assertServing()
                grown_mb = (proc_status_kib(self.pid, "VmHWM") - rss_before) / 1024
                self.assertLess(grown_mb, 150, f"100 unfinished 8 MB requests: +{grown_mb:.0f} MB")
                f.stop()

    def test_connections_of_a_role_holder_are_limited(self):
        skip_unless_usable_by(NOROLE)  # runs the shell as that user
        f = self.flood(VIEWER, 50, 0)
        self.assertGreaterEqual(f.report["replies"], 40, f"the limit per user: {f.report}")
        reply = json.loads(f.report["first_reply"])
        self.assertEqual(reply["exit_code"], 1)
        self.assertIn("limit per user", reply["error"])
        self.assertEqual(control_connections(self.sock), 8, "ControlLimits.max_connections_per_uid")
        self.assertServing()
        r = self.cli("get-event", "--newest", "1", user=VIEWER)
        self.assertEqual(r.returncode, 1, "the holder's ninth connection: " + r.stderr)
        self.assertIn("limit per user", r.stderr)

    def test_refused_requests_are_counted_not_each_stored(self):
        size_before = store_bytes(self.starling.data_dir)
        r = subprocess.run(["runuser", "-u", REFUSED, "--", sys.executable, "-c", REQUESTER,
                            str(self.sock), "3000"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertGreaterEqual(report["answered"], 2900, report)
        self.assertEqual(json.loads(report["first_reply"])["exit_code"], DENIED)
        record = self.wait_event(lambda e: e.get("User") == REFUSED, "--id", "13002")
        self.assertIsNotNone(record, "the refusals are not recorded at all")
        time.sleep(2.5)  # a poll or two: whatever would be stored is
        mine = [e for e in self.events("--id", "13002") if e.get("User") == REFUSED]
        self.assertLessEqual(len(mine), 2, f"{len(mine)} records for 3000 refusals")
        counted = sum(int(e["Count"]) for e in mine)
        self.assertGreaterEqual(counted, 1)
        self.assertLessEqual(counted, 3000)
        self.assertIn(f"{mine[0]['Count']} refusal(s) of {REFUSED}", mine[0]["Message"])
        grown = store_bytes(self.starling.data_dir) - size_before
        self.assertLess(grown, 256 * 1024, f"the store grew by {grown} bytes for 3000 refusals")

    def test_a_slow_request_is_turned_away(self):
        f = self.flood(VIEWER, 1, 100)  # a request that never ends
        self.assertEqual(f.report["replies"], 0)
        self.assertEqual(control_connections(self.sock), 1)
        deadline = time.monotonic() + 15  # the limit to receive a request is 10 s
        while control_connections(self.sock) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(control_connections(self.sock), 0, "an unfinished request is kept open")
        self.assertServing()


class OfflineChanges(CliMixin, DaemonTestCase):
    def test_offline_change_reaches_the_running_daemon(self):
        port = free_port()
        name = unique_token("off")
        self.cli_ok("new-receive-connector", "--name", name, "--bindings", f"{HOST}:{port}",
                    "--offline")
        deadline = time.monotonic() + 10
        while not port_accepts(port, timeout=1.0):
            self.assertLess(time.monotonic(), deadline,
                            "the --offline connector is not listening 10 s later")
            time.sleep(0.2)
        applied = self.wait_event(lambda e: name in e.get("Change", ""), "--id", "12002")
        self.assertIsNotNone(applied, f"no 12002 naming the change: {self.events('--newest', '5')}")
        self.assertIn("(by root)", applied["Change"])


class EventLogBounds(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def make_changes(self, n):
        for i in range(n):
            self.cli_ok("new-accepted-domain", f"{unique_token('ev')}.test".lower())

    def test_newest_lists_newest_first(self):
        self.make_changes(3)
        newest = self.events("--newest", "4")
        indexes = [e["Index"] for e in newest]
        self.assertEqual(len(indexes), 4, newest)
        self.assertEqual(indexes, sorted(indexes, reverse=True), "--newest is newest first")
        self.assertEqual(indexes[0], max(e["Index"] for e in self.events()))
        whole = [e["Index"] for e in self.events()]
        self.assertEqual(whole, sorted(whole), "the whole log reads oldest first")

    def test_settings_are_shown_validated_and_applied(self):
        (shown,) = self.cli_json("get-transport-server")
        self.assertEqual(shown["EventLogMaxAge"], "30.00:00:00")
        self.assertEqual(shown["EventLogMaxCount"], 100000)
        for bad in (["--event-log-max-count", "0"], ["--event-log-max-age", "00:00:00"],
                    ["--event-log-max-count", "10000001"]):
            with self.subTest(bad=bad):
                self.cli_fails(1, "EventLog", "set-transport-server", *bad)
        self.cli_ok("set-transport-server", "--event-log-max-count", "12")
        self.make_changes(10)
        count = len(self.events())
        self.assertLessEqual(count, 12, "more events than EventLogMaxCount")
        self.assertGreaterEqual(count, 10)

    def test_old_events_are_pruned_by_age(self):
        self.make_changes(3)
        self.cli_ok("set-transport-server", "--event-log-max-age", "00:00:03")
        mark = max(e["Index"] for e in self.events())
        time.sleep(4)
        self.make_changes(1)
        kept = self.events()
        self.assertTrue(kept, "the newest change is kept")
        self.assertEqual([e for e in kept if e["Index"] <= mark], [],
                         "events older than EventLogMaxAge are kept")


class StopWhileManagementIsBusy(CliMixin, unittest.TestCase):
    """The management thread waits on a store another process has locked (5 s per command, the
    SQLite busy timeout); SIGTERM with --shutdown-grace 2 must not wait for the queue of them."""

    def test_sigterm_stops_within_the_grace_period(self):
        s = Starling()
        self.addCleanup(s.remove)
        proc = subprocess.Popen([str(bin_dir() / "starlingd"), "--data-dir", str(s.data_dir),
                                 "--shutdown-grace", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        output = []
        ready = threading.Event()

        def drain():
            for line in proc.stdout:
                output.append(line)
                if "ready" in line:
                    ready.set()
        threading.Thread(target=drain, daemon=True).start()
        self.assertTrue(ready.wait(15), "".join(output))
        lock = sqlite3.connect(s.data_dir / "starling.db", timeout=1, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # every write of the daemon now waits, then fails
        self.addCleanup(lock.close)
        results = []

        def change(i):
            results.append(run_starling(s.data_dir, "new-accepted-domain", f"busy{i}.test", timeout=120))
        workers = [threading.Thread(target=change, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        time.sleep(2)  # the first command is inside its busy wait, the others queued
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)  # the queue alone would take 6 x 5 s
        except subprocess.TimeoutExpired:
            self.fail("starlingd still runs 15 s after SIGTERM:\n" + "".join(output))
        for w in workers:
            w.join(60)
        lock.execute("ROLLBACK")
        unanswered = [r for r in results if "without answering" in r.stderr or "lost" in r.stderr]
        self.assertGreaterEqual(len(unanswered), 4, "queued commands ran after SIGTERM: "
                                + "\n".join(r.stderr for r in results))
        self.assertIn("abandoned", "".join(output))


if __name__ == "__main__":
    unittest.main()
