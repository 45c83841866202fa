"""Shared fixture for Starling's end-to-end tests: a real starlingd on loopback.

Each Starling instance gets a fresh data directory (made by `starling setup`) and its own free
port on 127.0.0.1, so test files can run in parallel. The daemon's stderr and stdout are drained
to DIR/../daemon.log; when a test fails, the log is printed. Also: a raw SMTP client that sends
bytes exactly as given (for smuggling and injection tests), and helpers to find delivered mail in
DIR/mailboxes/<domain>/<user>/new/. Standard library only.

Tests run as root, so `starling setup` creates the service user `starling` (once) and gives it
the data directory, and starlingd drops to it; the temporary directory above the data directory
lets others pass through (0711) so that the service user and role holders reach it. Files a
test plants in the queue as root become the service user's when the daemon starts.

Environment: STARLING_BIN = directory holding `starlingd` and `starling` (required).
STARLING_KEEP=1 keeps the temporary directories for inspection.
"""

import ctypes
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HOST = "127.0.0.1"
SERVER_NAME = "mx"
FQDN = "mail.example.test"
DOMAIN = "example.test"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SERVICE_USER = "starling"  # `starling setup --user` default: the daemon started as root runs as it

# "250 2.0.0 OK queued as <id>" (RFC 3463 enhanced code; the id is the last word).
QUEUED_RE = re.compile(r"^2\.0\.0 OK queued as (\S+)")
ENHANCED_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


# Mailboxes that `starling setup` creates for a test daemon, so that tests written before
# recipients existed (any address at an accepted domain used to be taken) find their recipients.
# Tests about recipients pass mailboxes=() and create their own.
TEST_MAILBOXES = ("u", "v", "alice", "al", "bob", "carol", "dave", "erin", "frank", "b", "c", "d",
                  "x", "y", "admin", "bounces", "early", "later", "mailer-daemon", "nobody", "null",
                  "rgen", "sales", "sender", "someone", "victim", "user", "bulk", "multi",
                  "crash0", "crash1", "crash2", "1multi", "2multi", "3multi")


# A file delivered to a Maildir starts with the envelope (Return-Path, Delivered-To), then the
# trace header Starling added when it accepted the message.
DELIVERED_START = re.compile(rb"Return-Path: <[^>\n]*>\nDelivered-To: [^\n]+\nReceived:")


def starts_as_delivered(data):
    return DELIVERED_START.match(data) is not None


def proc_status_kib(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM, ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def bin_dir():
    value = os.environ.get("STARLING_BIN")
    if not value:
        raise RuntimeError("STARLING_BIN is not set (directory holding starlingd and starling)")
    return Path(value)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent():
    # If the test runner is killed (CTest timeout), take the daemon with it.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Starling:
    """One data directory plus (at most) one running starlingd."""

    def __init__(self, server_name=SERVER_NAME, fqdn=FQDN, domain=DOMAIN, mailboxes=TEST_MAILBOXES,
                 submission=False):
        # Defaults: the usual mx / mail.example.test / example.test. A second instance (a next
        # hop for outbound tests) passes its own names.
        self.server_name = server_name
        self.fqdn = fqdn
        self.domain = domain
        self.mailboxes = tuple(mailboxes)
        self.submission = submission  # also set up the "Client <server>" connector
        self.root = Path(tempfile.mkdtemp(prefix="starling-e2e-"))
        # mkdtemp makes it 0700: the daemon's user must reach the data directory inside it.
        os.chmod(self.root, 0o711)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir()
        self.log_path = self.root / "daemon.log"
        self.port = free_port()
        # The "Client <server>" submission connector (587 in production) gets its own free port:
        # parallel test daemons must not all bind 0.0.0.0:587.
        self.submission_port = free_port()
        while self.submission_port == self.port:
            self.submission_port = free_port()
        self.proc = None
        self._drain = None
        self._ready = threading.Event()
        self._log_lock = threading.Lock()
        self._content_cache = {}
        try:
            self.setup()
        except BaseException:
            self.remove()
            raise

    # --- lifecycle ---------------------------------------------------------------------------

    def setup(self):
        cmd = [str(bin_dir() / "starling"), "setup",
               "--data-dir", str(self.data_dir),
               "--server-name", self.server_name,
               "--fqdn", self.fqdn,
               "--listen", f"{HOST}:{self.port}",
               "--submission-listen", f"{HOST}:{self.submission_port}" if self.submission else "none",
               "--accepted-domain", self.domain]
        for local in self.mailboxes:
            cmd += ["--mailbox", f"{local}@{self.domain}"]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        self._log(b"$ " + " ".join(cmd).encode() + b"\n" + r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"starling setup failed (exit {r.returncode}):\n"
                               f"{r.stdout.decode(errors='replace')}"
                               f"{r.stderr.decode(errors='replace')}")

    def new_mailbox(self, address, password=None, *extra):
        """Creates a mailbox (with `password` for AUTH, if given) through the management shell:
        over the control socket while the daemon runs, else with --offline. Returns stdout."""
        cmd = [str(bin_dir() / "starling"), "new-mailbox", "--address", address,
               "--data-dir", str(self.data_dir), *extra]
        if password is not None:
            pw = self.root / f"password-{len(list(self.root.glob('password-*')))}"
            pw.write_text(password + "\n")
            pw.chmod(0o600)
            cmd += ["--password-file", str(pw)]
        if not self.running():
            cmd.append("--offline")
        r = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        self._log(b"$ " + " ".join(cmd).encode() + b"\n" + r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"starling new-mailbox failed (exit {r.returncode}):\n"
                               f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}")
        return r.stdout.decode(errors="replace")

    def start(self, *args, wrap=()):
        """Starts starlingd with its extra options `args`, under the command prefix `wrap`
        (e.g. setpriv, to start it as another user; it must exec, keeping the pid)."""
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self._ready.clear()
        self._log(f"--- starting starlingd on {HOST}:{self.port} ---\n".encode())
        self.proc = subprocess.Popen(
            [*wrap, str(bin_dir() / "starlingd"), "--data-dir", str(self.data_dir), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        self._drain = threading.Thread(target=self._drain_output, args=(self.proc,), daemon=True)
        self._drain.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._drain.join(2)
                raise RuntimeError(f"starlingd exited with {self.proc.returncode} before ready:\n"
                                   + self.log_text())
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"starlingd not ready within {READY_TIMEOUT} s:\n"
                                   + self.log_text())

    def _drain_output(self, proc):
        for line in iter(proc.stdout.readline, b""):
            self._log(line)
            if b"ready" in line:
                self._ready.set()
        proc.stdout.close()

    def _log(self, data):
        with self._log_lock, open(self.log_path, "ab") as f:
            f.write(data)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM; returns the exit status, or None if still running after `timeout`."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits without signalling; returns the exit status, or None if still running."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._drain:
            self._drain.join(2)
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._drain:
            self._drain.join(2)

    def stop_checked(self):
        """SIGTERM and require a clean exit (status 0) within STOP_TIMEOUT."""
        code = self.terminate()
        if code is None:
            self.kill()
            raise AssertionError(f"starlingd did not exit within {STOP_TIMEOUT} s of SIGTERM\n"
                                 + self.log_text())
        if code != 0:
            raise AssertionError(f"starlingd exited with {code} after SIGTERM (expected 0)\n"
                                 + self.log_text())

    def remove(self):
        self.kill()
        if os.environ.get("STARLING_KEEP"):
            print(f"[kept {self.root}]", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- delivered mail ----------------------------------------------------------------------

    def delivered(self, user=None, domain=None):
        """Paths of delivered messages, DIR/mailboxes/<domain>/<user>/new/*."""
        base = self.data_dir / "mailboxes"
        dom = domain if domain is not None else "*"
        usr = user if user is not None else "*"
        return sorted(p for p in base.glob(f"{dom}/{usr}/new/*") if p.is_file())

    def read(self, path):
        data = self._content_cache.get(path)
        if data is None:
            data = path.read_bytes()
            self._content_cache[path] = data  # files in new/ never change
        return data

    def find(self, token, user=None, domain=None):
        needle = token.encode() if isinstance(token, str) else token
        return [p for p in self.delivered(user, domain) if needle in self.read(p)]

    def wait_for(self, token, user=None, domain=None, timeout=10.0, count=1):
        """Delivered files containing `token`; waits until at least `count` exist."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(token, user, domain)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def url(self):
        return f"{HOST}:{self.port}"


# --- raw SMTP client -------------------------------------------------------------------------

class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "ddd-" / "ddd "

    @property
    def text(self):
        return self.lines[-1] if self.lines else ""

    def enhanced(self):
        m = ENHANCED_RE.match(self.lines[0]) if self.lines else None
        return m.group(0).strip() if m else None

    def queue_id(self):
        m = QUEUED_RE.match(self.text)
        return m.group(1) if m else None

    def __str__(self):
        return "\n".join(f"{self.code}{'-' if i < len(self.lines) - 1 else ' '}{line}"
                         for i, line in enumerate(self.lines))

    __repr__ = __str__


class ProtocolError(AssertionError):
    pass


def tls_client_context(min_version=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


class RawClient:
    """Sends exactly the bytes given; reads SMTP replies. Not a conforming client on purpose."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data, split="whole", rng=None):
        """split: 'whole' (one write), 'bytewise' (one write per byte), 'random' (random cuts)."""
        if isinstance(data, str):
            data = data.encode()
        if split == "whole":
            self.sock.sendall(data)
        elif split == "bytewise":
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
        elif split == "random":
            rng = rng or random.Random()
            i = 0
            while i < len(data):
                n = rng.randint(1, 17)
                self.sock.sendall(data[i:i + n])
                i += n
                if rng.random() < 0.2:
                    time.sleep(0.002)
        else:
            raise ValueError(split)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def read_line(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line")
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=None):
        lines = []
        code = None
        while True:
            raw = self.read_line(timeout)
            text = raw.decode("utf-8", errors="replace")
            m = re.match(r"^(\d{3})([ -])(.*)$", text) or re.match(r"^(\d{3})()$", text)
            if not m:
                raise ProtocolError(f"malformed reply line {raw!r}")
            if code is not None and int(m.group(1)) != code:
                raise ProtocolError(f"reply code changed inside a multiline reply: {raw!r}")
            code = int(m.group(1))
            lines.append(m.group(3))
            if m.group(2) != "-":
                return Reply(code, lines)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd(f"EHLO {name}")
        if r.code != 250:
            raise ProtocolError(f"EHLO refused: {r}")
        return r

    def greeting(self):
        r = self.reply()
        if r.code != 220:
            raise ProtocolError(f"greeting: {r}")
        return r

    def expect_silence(self, wait=0.5):
        """Nothing more arrives within `wait` s (and the connection is still open)."""
        if self.buf:
            raise ProtocolError(f"unexpected data from server: {self.buf!r}")
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return
        if chunk:
            self.buf += chunk
            raise ProtocolError(f"unexpected data from server: {chunk!r}")
        raise ProtocolError("connection closed by server (expected it to stay open)")

    def expect_closed(self, timeout=5.0):
        """The server closes the connection without sending anything more."""
        if self.buf:
            raise ProtocolError(f"unexpected data before close: {self.buf!r}")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"connection still open after {timeout} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return
            except socket.timeout:
                continue
            if not chunk:
                return
            raise ProtocolError(f"unexpected data before close: {chunk!r}")

    def starttls(self, ctx=None, server_hostname=FQDN):
        """Upgrades the socket after a 220 to STARTTLS has been read by the caller."""
        if self.buf:
            raise ProtocolError(f"plaintext bytes after the 220 to STARTTLS: {self.buf!r}")
        ctx = ctx or tls_client_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock


# --- unittest base ---------------------------------------------------------------------------

class DaemonTestCase(unittest.TestCase):
    """One daemon per class (default) or per test (`daemon_per_test = True`).

    The daemon is stopped with SIGTERM and must exit 0 within 10 s. When a test fails, the
    daemon log is printed to stderr.
    """

    daemon_per_test = False
    starling = None
    mailboxes = TEST_MAILBOXES  # those `starling setup` creates; () for recipient tests
    submission = False          # True: the "Client <server>" connector on submission_port

    @classmethod
    def setUpClass(cls):
        if not cls.daemon_per_test:
            cls.starling = Starling(mailboxes=cls.mailboxes, submission=cls.submission)
            try:
                cls.starling.start()
            except BaseException:
                print(cls.starling.log_text(), file=sys.stderr)
                cls.starling.remove()
                raise

    @classmethod
    def tearDownClass(cls):
        if not cls.daemon_per_test and cls.starling is not None:
            try:
                cls.starling.stop_checked()
            finally:
                cls.starling.remove()
                cls.starling = None

    def setUp(self):
        if self.daemon_per_test:
            self.starling = Starling(mailboxes=self.mailboxes, submission=self.submission)
            # Registered first, so it runs last: after the test's own clients are closed.
            self.addCleanup(self._stop_per_test_daemon)
            self.starling.start()

    def _stop_per_test_daemon(self):
        if self.starling is not None and self.starling.proc is not None:
            self.starling.stop_checked()

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            s = self.starling
            if s is not None and len(result.failures) + len(result.errors) > before:
                lines = s.log_text().splitlines()[-300:]
                print(f"\n===== starlingd log for {self.id()} ({s.log_path}) =====",
                      file=sys.stderr)
                print("\n".join(lines), file=sys.stderr)
                print("===== end of log =====", file=sys.stderr)
            if self.daemon_per_test and s is not None:
                s.remove()
                self.starling = None

    # --- shared assertions -------------------------------------------------------------------

    def client(self, timeout=10.0):
        c = RawClient(self.starling.port, timeout)
        self.addCleanup(c.close)
        return c

    def assertReply(self, reply, code, enhanced=None, msg=None):
        """Code must match; `enhanced` is a prefix of the enhanced status code ("5.7.54")."""
        self.assertEqual(reply.code, code, msg or f"reply was: {reply}")
        if enhanced is not None:
            got = reply.enhanced()
            self.assertIsNotNone(got, f"no enhanced status code in: {reply}")
            self.assertTrue(got == enhanced or got.startswith(enhanced) and enhanced.endswith("."),
                            f"enhanced code {got!r}, expected {enhanced!r}: {reply}")

    def assertEnhanced(self, reply):
        """RFC 2034/3463: an enhanced code whose class matches the reply's first digit."""
        got = reply.enhanced()
        self.assertIsNotNone(got, f"reply lacks an enhanced status code: {reply}")
        self.assertEqual(got[0], str(reply.code)[0], f"class mismatch: {reply}")

    def assertQueued(self, reply):
        self.assertEqual(reply.code, 250, f"reply was: {reply}")
        qid = reply.queue_id()
        self.assertIsNotNone(qid, f"expected '250 2.0.0 OK queued as <id>', got: {reply}")
        return qid

    def send_message(self, c, subject, body, rcpt="u@example.test"):
        """Greets on a fresh client `c` and sends one message; asserts it was queued."""
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd(f"RCPT TO:<{rcpt}>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        return self.assertQueued(c.cmd(f"Subject: {subject}\r\n\r\n{body}\r\n."))

    def wait_delivered(self, token, user=None, count=1, timeout=10.0):
        found = self.starling.wait_for(token, user=user, timeout=timeout, count=count)
        self.assertGreaterEqual(len(found), count,
                                f"message with {token!r} not delivered within {timeout} s "
                                f"(mailboxes: {self.starling.delivered()})")
        return found


def unfolded_headers(message_bytes):
    """[(name, value)] of the header section, continuation lines joined (LF or CRLF input)."""
    text = message_bytes.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head = text.split("\n\n", 1)[0]
    out = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            out.append((name, value.strip()))
    return out


def unique_token(prefix="tok"):
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}-{random.randrange(1 << 30):08x}"


class Background:
    """Runs fn in a thread; join() re-raises what it raised (assertions included)."""

    def __init__(self, fn, *args):
        self.error = None
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args):
        try:
            self.result = fn(*args)
        except BaseException as e:  # noqa: B036 - handed to the test thread
            self.error = e

    def join(self, timeout=90):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"background task still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


def assert_same_daemon(test, starling, pid):
    """starlingd still runs as process `pid`: a change was applied without a restart."""
    test.assertTrue(starling.running(), "starlingd stopped")
    test.assertEqual(starling.proc.pid, pid, "starlingd was restarted")
