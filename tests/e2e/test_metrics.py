"""Prometheus metrics at /metrics on the transport server's MetricsListen (docs/metrics.md),
scraped from a running starlingd while real clients use it.

- Off by default; `set-transport-server --metrics-listen` starts, moves and (empty) stops the
  endpoint without a restart; an address that is not IP:port is refused and changes nothing.
- A message received over STARTTLS and delivered moves the connection, message, TLS and delivery
  counters; the queue gauges are there; no label carries an address or a message id.
- A receive connector without a certificate shows the 12014 gauge at 1; the default connector
  at 0, with its certificate's seconds to expiry.
- Hostile requests get a bounded answer: an 8 KiB+ head 431, other methods 405, other paths 404,
  garbage 400, connections past the limit 503, and the endpoint (and SMTP) go on serving.
"""

import http.client
import re
import socket
import time

from starling_cli import CliMixin, port_accepts
from starling_fixture import (HOST, SERVER_NAME, DaemonTestCase, assert_same_daemon, free_port,
                              unique_token)

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"
APPLY_WAIT = 10.0  # the endpoint moves on its own thread after the change is applied

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text):
    """{(name, ((label, value), ...)): float} of a text-format 0.0.4 body; fails on a bad line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("# ") and not re.match(r"^# (HELP|TYPE) \S+ ", line):
                raise AssertionError(f"bad comment line {line!r}")
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"bad sample line {line!r}")
        labels, rest = [], m.group(2) or ""
        while rest:
            lm = LABEL_RE.match(rest)
            if not lm:
                raise AssertionError(f"bad labels in {line!r}")
            value = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), lm.group(2))
            labels.append((lm.group(1), value))
            rest = rest[lm.end():]
        samples[(m.group(1), tuple(labels))] = float(m.group(3))
    return samples


def total(samples, name, **labels):
    """The sum of `name` over the series whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all((k, val) in ls for k, val in labels.items()))


class Metrics(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.pid = self.starling.proc.pid

    def assertNotRestarted(self):
        assert_same_daemon(self, self.starling, self.pid)

    def set_listen(self, address):
        self.cli_ok("set-transport-server", "--metrics-listen", address)

    def enable(self):
        port = free_port()
        self.set_listen(f"{HOST}:{port}")
        self.wait_until(lambda: port_accepts(port, 1.0), f"nothing listens on {port}")
        return port

    def wait_until(self, predicate, what, timeout=APPLY_WAIT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"{what} after {timeout} s")
            time.sleep(0.1)

    def get(self, port, path="/metrics", method="GET"):
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            conn.close()

    def scrape(self, port):
        status, headers, body = self.get(port)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("Content-Type"), "text/plain; version=0.0.4")
        self.assertEqual(headers.get("Connection"), "close")
        return parse_exposition(body), body

    def raw_exchange(self, port, data, timeout=10.0):
        """Sends `data`, reads until the server closes; the bytes read."""
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out

    # --- the setting ---------------------------------------------------------------------------

    def test_off_by_default_then_served_once_set_without_restart(self):
        (props,) = self.cli_json("get-transport-server")
        self.assertEqual(props["MetricsListen"], "", "metrics must be off by default")
        port = free_port()
        self.assertFalse(port_accepts(port))
        self.set_listen(f"{HOST}:{port}")
        self.wait_until(lambda: port_accepts(port, 1.0), f"nothing listens on {port}")
        samples, body = self.scrape(port)
        self.assertIn("# TYPE starling_messages_received_total counter", body)
        self.assertIn("# HELP starling_connector_certificate_missing ", body)
        (props,) = self.cli_json("get-transport-server")
        self.assertEqual(props["MetricsListen"], f"{HOST}:{port}")
        self.assertNotRestarted()

    def test_empty_stops_it_and_a_second_address_moves_it(self):
        first = self.enable()
        self.scrape(first)
        second = free_port()
        while second == first:
            second = free_port()
        self.set_listen(f"{HOST}:{second}")
        self.wait_until(lambda: port_accepts(second, 1.0), f"the endpoint did not move to {second}")
        self.wait_until(lambda: not port_accepts(first, 1.0), f"{first} still serves after the move")
        self.scrape(second)
        self.set_listen("")
        self.wait_until(lambda: not port_accepts(second, 1.0), f"{second} still serves after MetricsListen ''")
        (props,) = self.cli_json("get-transport-server")
        self.assertEqual(props["MetricsListen"], "")
        self.assertIn(f"metrics: serving http://{HOST}:{second}/metrics", self.starling.log_text())
        self.assertIn("metrics: off", self.starling.log_text())
        self.assertNotRestarted()

    def test_an_address_that_is_not_ip_port_is_refused_and_changes_nothing(self):
        port = self.enable()
        for bad in ("9325", ":9325", "localhost:9325", "127.0.0.1:0", "::1:9325", "127.0.0.1:99999"):
            self.cli_fails((1, 2), r"MetricsListen", "set-transport-server", "--metrics-listen", bad)
        (props,) = self.cli_json("get-transport-server")
        self.assertEqual(props["MetricsListen"], f"{HOST}:{port}")
        self.scrape(port)

    # --- what it shows -------------------------------------------------------------------------

    def send_over_starttls(self, token):
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls()
        c.ehlo()
        qid = self.send_message_on(c, token)
        self.assertReply(c.cmd("QUIT"), 221)
        c.close()
        return qid

    def send_message_on(self, c, token):
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        return self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\n{token}\r\n."))

    def test_a_message_moves_the_counters(self):
        port = self.enable()
        before, _ = self.scrape(port)
        token = unique_token("metrics")
        qid = self.send_over_starttls(token)
        self.wait_delivered(token)
        conn = {"connector": DEFAULT_CONNECTOR}
        # Delivery is counted as the attempt ends, just after the file lands: poll for it.
        deadline = time.monotonic() + 10
        while True:
            after, body = self.scrape(port)
            delivered = total(after, "starling_messages_delivered_total") - total(before, "starling_messages_delivered_total")
            if delivered >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(delivered, 1, body)
        self.assertEqual(total(after, "starling_receive_connections_accepted_total", **conn)
                         - total(before, "starling_receive_connections_accepted_total", **conn), 1, body)
        self.assertEqual(total(after, "starling_messages_received_total", **conn)
                         - total(before, "starling_messages_received_total", **conn), 1, body)
        self.assertEqual(total(after, "starling_tls_handshakes_total", direction="receive", version="TLSv1.3")
                         - total(before, "starling_tls_handshakes_total", direction="receive", version="TLSv1.3"),
                         1, body)
        self.assertGreaterEqual(total(after, "starling_deliveries_total", result="delivered"), 1, body)
        # The session is over: nothing open on the connector (the scrape itself is not SMTP).
        self.assertEqual(total(after, "starling_receive_connections_open", **conn), 0, body)
        self.assertIn("# TYPE starling_queue_messages gauge", body)
        # Bounded labels: never the client's address nor the queue id.
        for (name, labels), _ in after.items():
            for k, v in labels:
                self.assertNotIn(HOST, v, f"an address as a label: {name} {labels}")
                self.assertNotIn(qid, v, f"a queue id as a label: {name} {labels}")

    def test_an_open_session_shows_in_the_open_gauge(self):
        port = self.enable()
        c = self.client()
        c.greeting()
        samples, body = self.scrape(port)
        self.assertEqual(total(samples, "starling_receive_connections_open", connector=DEFAULT_CONNECTOR), 1, body)
        c.close()

    def test_a_connector_without_certificate_shows_the_12014_gauge(self):
        port = self.enable()
        samples, body = self.scrape(port)
        default = {"kind": "receive", "connector": DEFAULT_CONNECTOR}
        self.assertEqual(total(samples, "starling_connector_certificate_missing", **default), 0, body)
        self.assertGreater(total(samples, "starling_connector_certificate_expiry_seconds", **default), 86400, body)
        self.cli_ok("new-receive-connector", "--name", "NoCert", "--bindings", f"{HOST}:{free_port()}",
                    "--fqdn", "nocert.example.test")
        samples, body = self.scrape(port)
        nocert = {"kind": "receive", "connector": "NoCert"}
        self.assertEqual(total(samples, "starling_connector_certificate_missing", **nocert), 1, body)
        self.assertFalse(any(n == "starling_connector_certificate_expiry_seconds" and ("connector", "NoCert") in ls
                             for n, ls in samples), "no expiry without a certificate")
        # The certificate arrives: the gauge goes to 0 without a restart.
        self.cli_ok("new-certificate", "--domain", "nocert.example.test", "--force")
        samples, body = self.scrape(port)
        self.assertEqual(total(samples, "starling_connector_certificate_missing", **nocert), 0, body)
        self.assertNotRestarted()

    # --- hostile requests ----------------------------------------------------------------------

    def test_hostile_requests_get_a_bounded_answer(self):
        port = self.enable()
        huge = b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * 32768 + b"\r\n\r\n"
        reply = self.raw_exchange(port, huge)
        self.assertTrue(reply.startswith(b"HTTP/1.1 431 "), reply[:200])
        self.assertEqual(self.get(port, method="POST")[0], 405)
        self.assertEqual(self.get(port, path="/")[0], 404)
        self.assertEqual(self.get(port, path="/metrics/../etc/passwd")[0], 404)
        reply = self.raw_exchange(port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply[:200])
        reply = self.raw_exchange(port, b"GET /metrics HTTP/2.0\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 505 "), reply[:200])
        # Past the connection limit (16), further scrapers are told 503 at once.
        held = []
        try:
            for _ in range(16):
                s = socket.create_connection((HOST, port), timeout=10)
                s.sendall(b"GET /metr")
                held.append(s)
            # Once the server has accepted them all, the next one is refused.
            self.wait_until(lambda: self.raw_exchange(port, b"GET /metrics HTTP/1.1\r\n\r\n")
                            .startswith(b"HTTP/1.1 503 "), "no 503 past the connection limit")
            # SMTP is not held up by them.
            c = self.client()
            c.greeting()
            c.ehlo()
        finally:
            for s in held:
                s.close()
        self.wait_until(lambda: self.get(port)[0] == 200, "the endpoint did not come back after the flood")
        self.assertNotRestarted()
