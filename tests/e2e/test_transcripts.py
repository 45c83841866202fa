"""Dialog transcripts end to end against the real daemon.

Two sets: tests/transcripts/*.txt (format: tests/transcripts/README.md), and the session's own
in-memory transcripts, src/smtp/transcripts/*.txt (format: src/smtp/session_test.cpp), replayed
over TCP with the names the daemon uses. Every transcript is fed whole, byte by byte, and in
random splits (fixed seeds, so a failure can be replayed): the replies must not change.
"""

import codecs
import random
import re
import socket
import time
import unittest
from pathlib import Path

from starling_fixture import (DaemonTestCase, FQDN, ProtocolError, RawClient, tls_client_context,
                              unfolded_headers, unique_token)

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
SESSION_TRANSCRIPTS = Path(__file__).resolve().parents[2] / "src" / "smtp" / "transcripts"
SPLITS = [("whole", None), ("bytewise", None), ("random", 1), ("random", 2)]


def parse(path):
    """[(kind, value)]: ('send', bytes) or ('expect', (code, prefix)) or ('expect', '*close')."""
    steps = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        tag, rest = line[:2], line[3:] if len(line) > 2 else ""
        if tag == "C:":
            steps.append(("send", rest.encode() + b"\r\n"))
        elif tag == "B:":
            steps.append(("send", codecs.escape_decode(rest.encode())[0]))
        elif tag == "S:":
            if rest.startswith("*"):
                if rest not in ("*close", "*silence"):
                    raise ValueError(f"{path.name}:{n}: unknown directive {rest!r}")
                steps.append(("expect", rest))
            else:
                code, _, prefix = rest.partition(" ")
                if not (len(code) == 3 and code.isdigit()):
                    raise ValueError(f"{path.name}:{n}: bad reply code {code!r}")
                steps.append(("expect", (int(code), prefix)))
        else:
            raise ValueError(f"{path.name}:{n}: unknown line {line!r}")
    return steps


def run_transcript(port, steps, split, seed):
    """Runs one transcript; raises ProtocolError with a readable trace on mismatch."""
    rng = random.Random(seed)
    trace = []
    pending = b""
    with RawClient(port, timeout=10) as c:
        for kind, value in steps:
            if kind == "send":
                pending += value
                continue
            if pending:
                trace.append(f"C> {pending!r}")
                try:
                    c.send(pending, split, rng)
                except (BrokenPipeError, ConnectionResetError) as e:
                    trace.append(f"   (send failed: {e})")
                pending = b""
            try:
                if value == "*close":
                    c.expect_closed(5)
                    trace.append("S> <closed>")
                elif value == "*silence":
                    c.expect_silence(0.5)
                    trace.append("S> <silence>")
                else:
                    code, prefix = value
                    r = c.reply()
                    trace.append(f"S> {r}")
                    if r.code != code or not r.lines[0].startswith(prefix):
                        raise ProtocolError(f"expected {code} {prefix!r}")
            except (ProtocolError, EOFError, socket.timeout, OSError) as e:
                trace.append(f"!! {type(e).__name__}: {e}")
                raise ProtocolError("\n".join(trace)) from None


class Transcripts(DaemonTestCase):
    def test_transcripts_whole_bytewise_and_random_splits(self):
        files = sorted(TRANSCRIPTS.glob("*.txt"))
        self.assertGreater(len(files), 5, f"no transcripts found in {TRANSCRIPTS}")
        for path in files:
            steps = parse(path)
            for split, seed in SPLITS:
                with self.subTest(transcript=path.name, split=split, seed=seed):
                    run_transcript(self.starling.port, steps, split, seed)

    def test_smuggled_commands_never_delivered(self):
        # The smuggling transcripts hide MAIL FROM:<x@evil.test> / RCPT TO:<victim@...> in DATA.
        for path in sorted(TRANSCRIPTS.glob("smuggling_*.txt")):
            run_transcript(self.starling.port, parse(path), "whole", None)
        # A sentinel sent afterwards: once it is delivered, anything smuggled would be too.
        token = unique_token("sentinel")
        with RawClient(self.starling.port) as c:
            self.send_message(c, token, token)
        self.wait_delivered(token, user="u")
        self.assertEqual(self.starling.delivered(user="victim"), [],
                         "a smuggled message reached victim@example.test")
        self.assertEqual(self.starling.find("smuggled"), [], "smuggled content was delivered")
        self.assertEqual(self.starling.find("x@evil.test"), [], "evil sender was delivered")


# --- src/smtp/transcripts ---------------------------------------------------------------------

# Session settings (`!key=value`) that equal the daemon's defaults for the setup connector; a
# transcript with any other setting needs a configuration the daemon does not have: skipped.
DAEMON_DEFAULTS = {"max_protocol_errors": "5", "max_recipients": "200",
                   "max_message_size": str(10 * 1024 * 1024), "max_header_size": str(64 * 1024)}
UNIT_FQDN, UNIT_PEER = "mx.example.test", "192.0.2.7"


def unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"r": "\r", "n": "\n", "t": "\t"}.get(n, n))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out).encode("utf-8")


def parse_session(path):
    """{'segments': [bytes], 'expect': [[line regex]], 'messages': [bytes], 'closed': bool,
    'settings': {k: v}} -- one `expect` list per segment (segments split at =tls)."""
    t = {"segments": [b""], "expect": [[]], "messages": [], "closed": False, "settings": {}}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            key, _, value = line[1:].partition("=")
            t["settings"][key] = value
        elif line.startswith("C: ") or line == "C:":
            t["segments"][-1] += line[3:].encode("utf-8") + b"\r\n"
        elif line.startswith("C~ "):
            t["segments"][-1] += unescape(line[3:])
        elif line.startswith("S: "):
            text = line[3:].replace(UNIT_FQDN, FQDN).replace(f"[{UNIT_PEER}]", "[127.0.0.1]")
            pattern = re.escape(text).replace(r"queued\ as\ Q", r"queued\ as\ (?P<qid>\S+)#")
            pattern = re.sub(r"\(\?P<qid>\\S\+\)#\d+", r"(?P<qid>\\S+)", pattern)
            t["expect"][-1].append(re.compile(pattern + "$"))
        elif line.startswith("Q: "):
            t["messages"].append(unescape(line[3:]))
        elif line == "=tls":
            t["segments"].append(b"")
            t["expect"].append([])
        elif line == "=closed":
            t["closed"] = True
        else:
            raise ValueError(f"{path.name}: cannot read line {line!r}")
    return t


def run_session_transcript(port, t, split, seed):
    """Returns the queue ids seen, in order; raises ProtocolError with a trace on mismatch."""
    rng = random.Random(seed)
    trace, qids = [], []
    with RawClient(port, timeout=10) as c:
        try:
            for n, (data, expect) in enumerate(zip(t["segments"], t["expect"])):
                if n > 0:
                    c.starttls(tls_client_context())
                    trace.append("== TLS")
                if data:
                    trace.append(f"C> {data!r}")
                    try:
                        c.send(data, split, rng)
                    except (BrokenPipeError, ConnectionResetError) as e:
                        trace.append(f"   (send failed: {e})")
                for pattern in expect:
                    line = c.read_line().decode("utf-8", errors="replace")
                    trace.append(f"S> {line}")
                    m = pattern.match(line)
                    if not m:
                        raise ProtocolError(f"expected /{pattern.pattern}/")
                    if "qid" in pattern.groupindex:
                        qids.append(m.group("qid"))
            if t["closed"]:
                c.expect_closed(5)
                trace.append("S> <closed>")
            else:
                c.expect_silence(0.3)
        except (ProtocolError, EOFError, socket.timeout, OSError) as e:
            trace.append(f"!! {type(e).__name__}: {e}")
            raise ProtocolError("\n".join(trace)) from None
    return qids


class SessionTranscripts(DaemonTestCase):
    def test_session_transcripts_over_tcp(self):
        files = sorted(SESSION_TRANSCRIPTS.glob("*.txt"))
        self.assertGreater(len(files), 0, f"no transcripts in {SESSION_TRANSCRIPTS}")
        ran = 0
        for path in files:
            t = parse_session(path)
            other = {k: v for k, v in t["settings"].items() if DAEMON_DEFAULTS.get(k) != v}
            if other:
                print(f"\n  {path.name}: skipped, needs settings {other}", end="")
                continue
            ran += 1
            for split, seed in SPLITS:
                with self.subTest(transcript=path.name, split=split, seed=seed):
                    qids = run_session_transcript(self.starling.port, t, split, seed)
                    self.assertEqual(len(qids), len(t["messages"]),
                                     f"{path.name}: queued {qids}, expected "
                                     f"{len(t['messages'])} messages")
                    for qid, content in zip(qids, t["messages"]):
                        self.check_delivered(qid, content)
        self.assertGreater(ran, 0, "every session transcript was skipped")

    def check_delivered(self, qid, content):
        """The message queued as `qid` is delivered with the content the session queued."""
        deadline = time.monotonic() + 10
        while True:
            for path in self.starling.delivered():
                data = self.starling.read(path)
                received = [v for k, v in unfolded_headers(data) if k.lower() == "received"]
                if received and re.search(rf"\b{re.escape(qid)}\b", received[0]):
                    expected = content.replace(b"\r\n", b"\n")
                    self.assertTrue(data.endswith(expected) or
                                    not expected.endswith(b"\n") and
                                    data.endswith(expected + b"\n"),
                                    f"{qid}: delivered {data!r}, expected to end with "
                                    f"{expected!r}")
                    return
            if time.monotonic() > deadline:
                self.fail(f"message queued as {qid} not delivered within 10 s")
            time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
