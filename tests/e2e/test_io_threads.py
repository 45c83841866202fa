"""starlingd --io-threads 4: sessions spread over four event loops, and everything that spans
connections still behaves as with one (docs/architecture.md, "Threads of starlingd").

Many concurrent plain and STARTTLS sessions each deliver once; MaxInboundConnectionPerSource
holds across threads; a binding added while running serves; a graceful stop says 421 to every
open session, whichever thread it is on. The thread count is checked in /proc (the I/O threads
are named starlingd-ioN), so that a daemon that ignored the option could not pass.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import unittest
from pathlib import Path

from starling_cli import CliMixin
from starling_fixture import (HOST, Background, DaemonTestCase, RawClient, bin_dir, free_port,
                              tls_client_context, unique_token)

THREADS = 4
DEFAULT_CONNECTOR = "Default mx"


class SourcedClient(RawClient):
    """A RawClient whose connection comes from `source` (any 127/8 address on loopback)."""

    def __init__(self, port, source, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""


def io_threads(pid):
    """{name: voluntary context switches} of the I/O threads beyond thread 0 (named starlingd-ioN)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        if name.startswith("starlingd-io"):
            out[name] = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
    return out


class IoThreads(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def setUp(self):
        # The fixture starts the daemon without options: start it again with ours.
        super().setUp()
        self.starling.stop_checked()
        self.starling.start("--io-threads", str(THREADS), "--shutdown-grace", "1")

    def session(self, tokens, starttls, port=None, source=HOST):
        """One session sending a message per token (STARTTLS first when asked)."""
        c = SourcedClient(port or self.starling.port, source, timeout=30)
        try:
            c.greeting()
            c.ehlo()
            if starttls:
                self.assertReply(c.cmd("STARTTLS"), 220)
                c.starttls(tls_client_context())
                c.ehlo()
            for token in tokens:
                self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
                self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250)
                self.assertReply(c.cmd("DATA"), 354)
                self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\n{token}\r\n."))
            self.assertReply(c.cmd("QUIT"), 221)
        finally:
            c.close()

    def open_sessions(self, n, starttls_every=0):
        """n sessions that have said EHLO (every starttls_every-th after STARTTLS), held open."""
        clients = []
        for i in range(n):
            c = self.client(timeout=30)
            c.greeting()
            c.ehlo()
            if starttls_every and i % starttls_every == starttls_every - 1:
                self.assertReply(c.cmd("STARTTLS"), 220)
                c.starttls(tls_client_context())
                c.ehlo()
            clients.append(c)
        return clients

    def test_runs_the_io_threads_it_was_asked_for(self):
        # Thread 0 is the main thread; the other three carry the names.
        self.assertEqual(sorted(io_threads(self.starling.proc.pid)),
                         [f"starlingd-io{i}" for i in range(1, THREADS)])
        self.assertIn(f"{THREADS} I/O thread(s)", self.starling.log_text())

    def test_concurrent_plain_and_starttls_sessions_each_deliver_once(self):
        sessions, per_session = 24, 3
        tokens = [[unique_token(f"s{i}m{j}") for j in range(per_session)] for i in range(sessions)]
        start = threading.Barrier(sessions)
        before = io_threads(self.starling.proc.pid)

        def run(i):
            start.wait(30)
            # Four client addresses: MaxInboundConnectionPerSource (20) is not what is tested here.
            self.session(tokens[i], starttls=i % 2 == 1, source=f"127.0.0.{1 + i % 4}")

        workers = [Background(run, i) for i in range(sessions)]
        for w in workers:
            w.join(120)
        # Every thread served some of them: each wakes from epoll_wait (a voluntary switch) for
        # every read of its sessions, while a thread given none sleeps through.
        after = io_threads(self.starling.proc.pid)
        for name, switches in before.items():
            self.assertGreaterEqual(after[name] - switches, sessions // THREADS,
                                    f"{name} served (almost) nothing: {before} -> {after}")
        for token in (t for ts in tokens for t in ts):
            self.wait_delivered(token, timeout=30)
        for token in (t for ts in tokens for t in ts):
            self.assertEqual(len(self.starling.find(token)), 1, f"{token} delivered more than once")

    def test_per_source_limit_holds_across_threads(self):
        limit = THREADS - 1  # so the sessions held open sit on different threads
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR,
                    "--max-inbound-connection-per-source", str(limit))
        held = self.open_sessions(limit)
        over = self.client(timeout=15)
        self.assertReply(over.reply(), 421, "4.3.2")
        over.expect_closed(5)
        # Another address is counted on its own.
        other = SourcedClient(self.starling.port, "127.0.0.2", timeout=15)
        self.addCleanup(other.close)
        other.greeting()
        # One leaves: its slot is free as soon as its close is seen, whatever thread it was on.
        self.assertReply(held[0].cmd("QUIT"), 221)
        held[0].expect_closed(5)
        again = self.client(timeout=15)
        again.greeting()
        over = self.client(timeout=15)
        self.assertReply(over.reply(), 421, "4.3.2")

    def test_binding_added_while_running_serves_beside_open_sessions(self):
        open_sessions = self.open_sessions(THREADS)
        port = free_port()
        self.cli_ok("new-receive-connector", "--name", "Extra", "--bindings", f"127.0.0.1:{port}",
                    "--fqdn", "extra.example.test")
        for i in range(THREADS):
            token = unique_token(f"extra{i}")
            self.session([token], starttls=False, port=port)
            self.wait_delivered(token, timeout=30)
        for c in open_sessions:
            self.assertReply(c.cmd("NOOP"), 250)

    def test_graceful_stop_says_421_to_sessions_on_every_thread(self):
        clients = self.open_sessions(2 * THREADS, starttls_every=2)
        self.starling.proc.send_signal(signal.SIGTERM)
        for c in clients:
            self.assertReply(c.reply(timeout=20), 421, "4.3.2")
            c.expect_closed(10)
        self.assertEqual(self.starling.wait_exit(20), 0)


class IoThreadsOption(unittest.TestCase):
    """Bad values are refused before anything starts."""

    def refused(self, *args, env=None):
        r = subprocess.run([str(bin_dir() / "starlingd"), "--data-dir", "/nonexistent", *args],
                           capture_output=True, text=True, timeout=30,
                           env={**os.environ, **(env or {})})
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("io-threads", r.stdout + r.stderr)
        self.assertNotIn("ready", r.stdout + r.stderr)

    def test_out_of_range_or_not_a_number(self):
        self.refused("--io-threads", "257")
        self.refused("--io-threads", "-1")
        self.refused("--io-threads", "two")
        self.refused(env={"STARLING_IO_THREADS": "1000"})

    def test_help_names_the_option_and_its_variable(self):
        r = subprocess.run([str(bin_dir() / "starlingd"), "--help"], capture_output=True, text=True,
                           timeout=30)
        self.assertIn("--io-threads", r.stdout)
        self.assertIn("STARLING_IO_THREADS", r.stdout)


if __name__ == "__main__":
    unittest.main()
