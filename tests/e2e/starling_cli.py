"""Running the `starling` management shell from end-to-end tests.

The shell talks to the daemon of a fixture `Starling` over DIR/control.sock; the data directory
is passed the way an administrator would, in STARLING_DATA_DIR. stdin is /dev/null unless a test
says otherwise, so the shell never has a terminal to ask on. `user=` runs it as another Unix user
through runuser(1) (tests run as root). Standard library only.
"""

import json
import os
import re
import socket
import subprocess
import time

from starling_fixture import HOST, bin_dir

BINARY_WAIT = 120.0  # the binaries may be rebuilt while tests run: wait for them to come back


def starling_binary():
    path = bin_dir() / "starling"
    deadline = time.monotonic() + BINARY_WAIT
    while not os.access(path, os.X_OK):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} is missing or not executable")
        time.sleep(0.5)
    return str(path)


def run_starling(data_dir, *args, user=None, env=None, stdin=subprocess.DEVNULL, timeout=90,
                 wrap=None):
    """CompletedProcess (text) of `starling ARGS` for `data_dir`, as root or as `user` (or
    under the command prefix `wrap`, e.g. setpriv)."""
    full_env = dict(os.environ)
    full_env.pop("STARLING_PASSWORD", None)
    full_env["STARLING_DATA_DIR"] = str(data_dir)
    if env:
        full_env.update(env)
    cmd = [starling_binary(), *[str(a) for a in args]]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    if wrap:
        cmd = [*wrap, *cmd]
    return subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def describe(r):
    return (f"$ {' '.join(r.args)}\nexit {r.returncode}\n--- stdout ---\n{r.stdout}"
            f"--- stderr ---\n{r.stderr}")


def port_accepts(port, timeout=3.0):
    """True if a TCP connection to 127.0.0.1:port is accepted."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def parse_list(text):
    """`--format list` output: a list of records, each a list of (name, value, colon column)."""
    records, current = [], []
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current = []
            continue
        m = re.match(r"^(\S+)( +): ?(.*)$", line)
        if not m:
            raise AssertionError(f"not a 'Name : value' line: {line!r}\n{text}")
        current.append((m.group(1), m.group(3).rstrip(), len(m.group(1)) + len(m.group(2))))
    if current:
        records.append(current)
    return records


class CliMixin:
    """Assertions around the shell for a DaemonTestCase (uses self.starling)."""

    def cli(self, *args, user=None, env=None, stdin=subprocess.DEVNULL, data_dir=None, wrap=None):
        return run_starling(data_dir or self.starling.data_dir, *args, user=user, env=env,
                            stdin=stdin, wrap=wrap)

    def cli_ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, f"expected success:\n{describe(r)}")
        return r

    def cli_json(self, *args, **kw):
        r = self.cli_ok(*args, "--format", "json", **kw)
        try:
            value = json.loads(r.stdout)
        except ValueError as e:
            self.fail(f"--format json printed no JSON ({e}):\n{describe(r)}")
        self.assertIsInstance(value, list, f"--format json must print an array:\n{describe(r)}")
        return value

    def cli_fails(self, code, message_re, *args, **kw):
        """The command exits with `code` (an int or a tuple of ints) and one 'starling: ...'
        line on stderr matching `message_re` (case-insensitive)."""
        r = self.cli(*args, **kw)
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(r.returncode, codes, f"expected exit {code}:\n{describe(r)}")
        lines = r.stderr.strip("\n").splitlines()
        self.assertEqual(len(lines), 1, f"an error is one line on stderr:\n{describe(r)}")
        self.assertTrue(lines[0].startswith("starling: "), f"error without 'starling: ':\n{describe(r)}")
        self.assertRegex(lines[0], re.compile(message_re, re.I), describe(r))
        return r

    def snapshot(self, data_dir=None):
        """Everything a management command can change, as root sees it."""
        def get(cmd):
            return self.cli_json(cmd, data_dir=data_dir)
        return {
            "certificates": get("get-certificate"),
            "receive": get("get-receive-connector"),
            "send": get("get-send-connector"),
            "domains": get("get-accepted-domain"),
            "roles": get("get-role-assignment"),
        }

    def events(self, *filters, data_dir=None):
        return self.cli_json("get-event", *filters, data_dir=data_dir)

    def wait_event(self, predicate, *filters, timeout=10.0, data_dir=None):
        """The first event (oldest first) matching `predicate`, polling up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(*filters, data_dir=data_dir) if predicate(e)]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.2)
