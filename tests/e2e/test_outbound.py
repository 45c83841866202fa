"""Outbound delivery end to end: Starling relays through send connectors to real SMTP peers on
loopback (peers.py: aiosmtpd sinks and raw-socket peers with scripted faults), with DNS MX
routing against a private authoritative DNS server (dns_server.py), the retrying queue, and
RFC 3464 non-delivery reports delivered back to the (local) sender.

Every test has its own starlingd, its own peers and ports; retry intervals are one second and
the connector's ConnectionInactivityTimeout three, so retries and timeouts come quickly. What a
test expects from the daemon: `outbound: ` lines in daemon.log with the queue id, recipient,
next hop, reply and one of delivered/deferred/failed; events 12030/12031/2015; reports from
postmaster@example.test in DIR/mailboxes/example.test/<sender>/new/.
"""

import threading
import time
import unittest
from pathlib import Path

from cert_factory import CertificateAuthority
from peers import (DISCONNECT_IN_DATA, GREETING_421, SILENCE, SILENT, RawPeer, Rule, Script, Sink,
                   free_port, wait_until)
from starling_cli import DeliveryReport, OutboundMixin
from starling_fixture import FQDN, HOST, DaemonTestCase, unfolded_headers, unique_token

try:
    from dns_server import DnsServer
except ImportError:  # written by another change; the DNS tests skip until it exists
    DnsServer = None

SENDER = "sender@example.test"     # local: reports land in mailboxes/example.test/sender/new/
DELIVERY_WAIT = 20.0


class OutboundCase(DaemonTestCase, OutboundMixin):
    daemon_per_test = True
    relay = True            # the default receive connector lets 127.0.0.1 relay
    fast = True             # one-second retry intervals

    def setUp(self):
        super().setUp()
        if self.relay:
            self.allow_relay()
        if self.fast:
            self.fast_retries()

    def start_peer(self, peer):
        peer.start()
        self.addCleanup(peer.stop)
        return peer

    def sink(self, **kw):
        return self.start_peer(Sink(**kw))

    def raw(self, **kw):
        return self.start_peer(RawPeer(**kw))

    def ca(self):
        if not hasattr(self, "_ca"):
            self._ca = CertificateAuthority(self.starling.root / "ca", "Outbound Test CA")
        return self._ca

    def wait_sink(self, peer, token, count=1, timeout=DELIVERY_WAIT):
        msgs = peer.wait_messages(count, timeout=timeout, token=token)
        self.assertGreaterEqual(len(msgs), count,
                                f"{token} not at the peer within {timeout} s; peer saw "
                                f"{peer.connections} connection(s), commands {peer.commands[-20:]}"
                                "\noutbound lines:\n" + "\n".join(self.outbound_lines()[-20:]))
        return msgs

    def relay_one(self, token, rcpts=("rcpt@example.net",), sender=SENDER, extra_headers="",
                  body=None, mail_options=()):
        data = self.make_message(token, extra_headers, body, sender or "null@example.test",
                                 rcpts[0])
        return self.submit(list(rcpts), data, sender=sender, mail_options=mail_options)


# --- relay permission and routing at RCPT ---------------------------------------------------

class RelayPermission(OutboundCase):
    relay = False

    def test_relay_refused_without_external_authoritative(self):
        self.smart_host_connector(f"[{HOST}]:{free_port()}")  # a route exists: only permission
        code, text = self.rcpt_reply("rcpt@example.net")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.7.54"), f"expected 550 5.7.54, got {code} {text}")
        code, text = self.rcpt_reply("u@example.test")
        self.assertEqual(code, 250, f"an accepted domain needs no relay right: {code} {text}")

    def test_relay_allowed_with_external_authoritative(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host())
        self.assertEqual(self.rcpt_reply("rcpt@example.net")[0], 550)
        self.allow_relay()
        conn = self.cli_json("get-receive-connector", "Default mx")[0]
        self.assertIn("ExternalAuthoritative", str(conn["AuthMechanism"]))
        token = unique_token("relay")
        qid = self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertEqual(msg.rcpt_tos, ["rcpt@example.net"])
        self.wait_outbound("delivered", qid, "rcpt@example.net")

    def test_no_route_is_550_5_4_4_naming_the_domain(self):
        self.allow_relay()
        code, text = self.rcpt_reply("someone@example.org")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.4.4"), f"expected 550 5.4.4, got {code} {text}")
        self.assertIn("example.org", text)
        # A connector for another domain, and a disabled one for this domain: still no route.
        dead = f"[{HOST}]:{free_port()}"
        self.smart_host_connector(dead, name="Other", address_spaces="example.net")
        self.smart_host_connector(dead, name="Off", address_spaces="example.org", enabled=False)
        code, text = self.rcpt_reply("someone@example.org")
        self.assertEqual((code, text[:5]), (550, "5.4.4"), text)
        # "*.example.org" covers example.org itself and its subdomains.
        self.smart_host_connector(dead, name="Wild", address_spaces="*.example.org")
        self.assertEqual(self.rcpt_reply("someone@example.org")[0], 250)
        self.assertEqual(self.rcpt_reply("someone@sub.example.org")[0], 250)


# --- smart hosts -------------------------------------------------------------------------------

class SmartHost(OutboundCase):
    def test_delivered_with_content_envelope_and_received_intact(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host())
        token = unique_token("intact")
        body_lines = ["first line", ".leading dot", "..two dots", ".", "...", " space first",
                      "tab\tinside", "x" * 990, "Grüße, 8-bit text", "last line"]
        body = "".join(l + "\r\n" for l in body_lines)
        data = self.make_message(token, "X-Custom: kept as is\r\n", body, SENDER,
                                 "rcpt1@example.net").encode()
        qid = self.submit(["rcpt1@example.net", "rcpt2@example.net"], data,
                          mail_options=["BODY=8BITMIME"])
        msgs = self.wait_sink(sink, token)
        time.sleep(0.5)  # a second copy would come right behind the first
        msgs = sink.find(token)
        self.assertEqual(len(msgs), 1, f"one transaction for both recipients: {msgs}")
        msg = msgs[0]
        self.assertEqual(msg.mail_from, SENDER)
        self.assertEqual(sorted(msg.rcpt_tos), ["rcpt1@example.net", "rcpt2@example.net"])
        self.assertIn("BODY=8BITMIME", [o.upper() for o in msg.mail_options], msg.mail_options)
        self.assertEqual(msg.helo, FQDN, "EHLO names the server FQDN by default")
        # The body arrives byte for byte: dot-stuffing undone, CRLF line ends, 8-bit kept.
        self.assertEqual(msg.body(), body.encode(), msg.data[-600:])
        self.assertNotRegex(msg.data, rb"(?<!\r)\n", "bare LF at the next hop")
        # The original header follows Starling's Received: header, unchanged.
        self.assertTrue(msg.data.startswith(b"Received:"), msg.data[:200])
        headers = unfolded_headers(msg.data)
        received = headers[0][1]
        self.assertIn(f"by {FQDN}", received)
        self.assertIn(qid, received)
        self.assertIn("client.test", received)
        names = [n for n, _ in headers]
        self.assertEqual(names[1:], ["From", "To", "Subject", "Message-ID", "X-Custom"],
                         f"headers: {headers}")
        self.assertEqual(msg.message_id(), f"<{token}@client.test>")
        for rcpt in ("rcpt1@example.net", "rcpt2@example.net"):
            (line,) = self.wait_outbound("delivered", qid, rcpt)[:1]
            self.assertIn(str(sink.port), line, f"next hop missing: {line}")
            self.assertIn("250", line, f"reply missing: {line}")

    def test_connector_fqdn_is_the_ehlo_name(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host(), fqdn="out.example.test")
        token = unique_token("fqdn")
        self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertEqual(msg.helo, "out.example.test")

    def test_smart_hosts_tried_in_order(self):
        first, second = self.sink(), self.sink()
        closed = f"[{HOST}]:{free_port()}"
        self.smart_host_connector([closed, first.smart_host(), second.smart_host()])
        token = unique_token("order")
        t0 = time.monotonic()
        qid = self.relay_one(token)
        self.wait_sink(first, token)
        self.assertLess(time.monotonic() - t0, 10.0,
                        "the next smart host is tried at once, not after a retry interval")
        self.assertEqual(second.all(), [], "the third smart host was used though the second works")
        self.wait_outbound("delivered", qid, str(first.port))

    def test_smart_host_by_name_and_port(self):
        sink = self.sink()
        self.smart_host_connector(f"localhost:{sink.port}")  # resolved by the system (/etc/hosts)
        token = unique_token("byname")
        qid = self.relay_one(token)
        self.wait_sink(sink, token)
        self.wait_outbound("delivered", qid)

    def queue_while_down(self, count, **connector_props):
        """Queues `count` messages for a smart host whose port is closed (they are deferred),
        then starts the sink on that port; returns (sink, tokens)."""
        port = free_port()
        self.smart_host_connector(f"[{HOST}]:{port}", **connector_props)
        tokens = [unique_token(f"reuse{i}") for i in range(count)]
        qids = [self.relay_one(t) for t in tokens]
        self.wait_outbound("deferred", qids[0])
        sink = self.sink(port=port)
        return sink, tokens

    def test_refused_next_hop_is_retried_at_the_interval_not_in_a_loop(self):
        # Ten messages submitted at once: several connections to the hop fail together. Each
        # must end with the hop in Retry (1 s here), not with an immediate reconnect.
        port = free_port()
        self.smart_host_connector(f"[{HOST}]:{port}")
        qids, errors = [], []

        def one(i):
            try:
                qids.append(self.relay_one(unique_token(f"burst{i}")))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        t0 = time.monotonic()
        wait_until(lambda: all(self.outbound_lines(q, word="deferred") for q in qids), 4.0, 0.2)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))  # a window of three retry intervals
        window = time.monotonic() - t0
        attempts = sum(1 for line in self.starling.log_text().splitlines()
                       if "outbound: " in line and "cannot connect" in line
                       and f":{port}:" in line)
        self.assertLess(attempts, 100, f"{attempts} connection attempts to a refusing next hop in "
                        f"{window:.1f} s with a 1 s retry interval")
        for qid in qids:
            self.wait_outbound("deferred", qid, timeout=5)

    def test_connection_reuse(self):
        sink, tokens = self.queue_while_down(10)
        msgs = sink.wait_messages(10, timeout=DELIVERY_WAIT)
        self.assertEqual(len(msgs), 10, f"delivered {len(msgs)} of 10")
        ids = sink.message_ids()
        self.assertEqual(sorted(ids), sorted(f"<{t}@client.test>" for t in tokens))
        self.assertTrue(all(n == 1 for n in ids.values()), f"duplicates: {ids}")
        self.assertLessEqual(sink.connections, 3,
                             f"10 queued messages took {sink.connections} connections "
                             f"(per connection: {sink.messages_per_connection()})")

    def test_max_messages_per_connection(self):
        sink, tokens = self.queue_while_down(10, smtp_max_messages_per_connection=3)
        msgs = sink.wait_messages(10, timeout=DELIVERY_WAIT)
        self.assertEqual(len(msgs), 10)
        per = sink.messages_per_connection()
        self.assertLessEqual(max(per.values()), 3, f"per connection: {per}")
        self.assertGreaterEqual(sink.connections, 4, f"per connection: {per}")

    def test_connector_max_message_size_is_reported_5_3_4(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host(), max_message_size="2KB")
        token = unique_token("connsize")
        qid = self.relay_one(token, body="".join(f"line {i:04d} " + "z" * 60 + "\r\n"
                                                 for i in range(80)))
        report = self.wait_report(token)
        self.assertReport(report, "rcpt@example.net", "5.3.4")
        self.wait_outbound("failed", qid)
        self.assertEqual(sink.verbs("MAIL"), [])

    def test_max_per_domain_outbound_connections(self):
        self.set_transport(max_per_domain_outbound_connections="2")
        sink = self.sink(data_delay=0.4)  # slow: connections would pile up
        self.smart_host_connector(sink.smart_host())
        tokens = [unique_token(f"limit{i}") for i in range(8)]
        threads = [threading.Thread(target=self.relay_one, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        msgs = sink.wait_messages(8, timeout=DELIVERY_WAIT)
        self.assertEqual(len(msgs), 8, f"delivered {len(msgs)} of 8")
        self.assertLessEqual(sink.max_active, 2, f"{sink.max_active} connections at once to one "
                             "next hop with MaxPerDomainOutboundConnections 2")

    def credentials(self, user, password):
        path = self.starling.root / "relay-credential.txt"
        path.write_text(f"{user}\n{password}\n")
        return path

    def check_auth(self, mechanism):
        sink = self.sink(auth=("relayuser", "s3cret pass"), auth_mechanisms=(mechanism,))
        self.smart_host_connector(sink.smart_host(), smart_host_auth_mechanism="BasicAuth",
                                  authentication_credential_file=self.credentials(
                                      "relayuser", "s3cret pass"))
        token = unique_token(f"auth{mechanism}")
        qid = self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertEqual(msg.auth, (mechanism, "relayuser"))
        self.assertEqual(sink.auth_log, [(mechanism, "relayuser", True)])
        self.wait_outbound("delivered", qid)
        # The password is not shown by get-send-connector.
        shown = self.cli_ok("get-send-connector", "Out", "--format", "json", "--property", "*")
        self.assertNotIn("s3cret pass", shown.stdout)

    def test_smart_host_auth_plain(self):
        self.check_auth("PLAIN")

    def test_smart_host_auth_login(self):
        self.check_auth("LOGIN")

    def test_smart_host_auth_require_tls(self):
        leaf = self.ca().issue("sink.example.net")
        sink = self.sink(tls=leaf, auth=("relayuser", "pw"), auth_require_tls=True)
        self.smart_host_connector(sink.smart_host(),
                                  smart_host_auth_mechanism="BasicAuthRequireTLS",
                                  authentication_credential_file=self.credentials("relayuser",
                                                                                  "pw"))
        token = unique_token("authtls")
        self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertIsNotNone(msg.tls, "AUTH after STARTTLS")
        self.assertEqual(msg.auth[1], "relayuser")
        verbs = [line.split()[0] for _, line in sink.commands]
        self.assertLess(verbs.index("STARTTLS"), verbs.index("AUTH"), verbs)

    def test_opportunistic_starttls(self):
        leaf = self.ca().issue("sink.example.net")
        sink = self.sink(tls=leaf)
        self.smart_host_connector(sink.smart_host())
        token = unique_token("tls")
        self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertIsNotNone(msg.tls, "STARTTLS was offered and not used")
        self.assertIn(msg.tls["version"], ("TLSv1.2", "TLSv1.3"))

    def test_ignore_starttls(self):
        sink = self.sink(tls=self.ca().issue("sink.example.net"))
        self.smart_host_connector(sink.smart_host(), ignore_starttls=True)
        token = unique_token("notls")
        self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertIsNone(msg.tls, "IgnoreSTARTTLS true, yet the session used TLS")
        self.assertEqual(sink.verbs("STARTTLS"), [])

    def test_require_tls_set_later_is_not_bypassed_by_a_cached_connection(self):
        # A connection opened before the connector changed must not carry mail the new
        # settings forbid: after --require-tls true, nothing more goes out in the clear.
        sink = self.sink()  # offers no STARTTLS
        self.smart_host_connector(sink.smart_host())
        first = unique_token("clear")
        self.relay_one(first)
        self.wait_sink(sink, first)
        self.set_send_connector("Out", require_tls=True)
        mark = self.event_mark()
        second = unique_token("mustbetls")
        qid = self.relay_one(second)
        wait_until(lambda: sink.find(second) or self.outbound_lines(qid, word="deferred"), 15)
        self.assertEqual(sink.find(second), [],
                         f"sent in the clear after RequireTLS was set (connections: "
                         f"{sink.connections}, per connection {sink.messages_per_connection()})")
        self.event_after(2015, mark)
        self.wait_outbound("deferred", qid)

    def test_require_tls_delivers_over_starttls(self):
        sink = self.sink(tls=self.ca().issue("sink.example.net"))
        self.smart_host_connector(sink.smart_host(), require_tls=True)
        token = unique_token("reqtls")
        self.relay_one(token)
        (msg,) = self.wait_sink(sink, token)
        self.assertIsNotNone(msg.tls)

    def test_require_tls_without_starttls_stays_queued_with_event_2015(self):
        sink = self.sink()  # offers no STARTTLS
        self.smart_host_connector(sink.smart_host(), require_tls=True)
        mark = self.event_mark()
        token = unique_token("notoffered")
        qid = self.relay_one(token)
        event = self.event_after(2015, mark)
        self.assertEqual(event.get("Connector"), "Out", event)
        self.assertIn(HOST, str(event.get("RemoteHost")), event)
        self.assertTrue(event.get("Reason"), event)
        self.wait_outbound("deferred", qid, count=2)  # stays queued and is retried
        self.assertEqual(sink.verbs("MAIL"), [], "MAIL was sent without TLS")
        self.assertEqual(self.outbound_lines(qid, word="failed"), [])
        self.assertEqual(self.starling.delivered(user="sender"), [], "no report: still queued")

    def test_message_bigger_than_next_hop_size_is_reported_5_3_4(self):
        sink = self.sink(size_limit=1000)
        self.smart_host_connector(sink.smart_host())
        token = unique_token("big")
        qid = self.relay_one(token, body="".join(f"line {i:04d} " + "y" * 60 + "\r\n"
                                                 for i in range(50)))
        report = self.wait_report(token)
        self.assertReport(report, "rcpt@example.net", "5.3.4")
        self.wait_outbound("failed", qid, "rcpt@example.net")
        self.assertEqual(sink.verbs("MAIL"), [], f"sent anyway: {sink.commands}")
        self.assertEqual(sink.all(), [])

    def test_smtputf8_message_to_peer_without_smtputf8_is_reported_5_6_7(self):
        sink = self.sink(smtputf8=False)
        self.smart_host_connector(sink.smart_host())
        token = unique_token("utf8")
        data = self.make_message(token, to="jörg@example.net").encode()
        qid = self.submit(["jörg@example.net"], data, mail_options=["SMTPUTF8"])
        report = self.wait_report(token)
        self.assertEqual(len(report.recipients), 1, report.recipients)
        self.assertEqual(report.recipients[0].get("status"), "5.6.7", report.recipients)
        self.wait_outbound("failed", qid)
        self.assertEqual(sink.all(), [])

    def test_too_many_received_headers_is_a_loop_5_4_6(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host())
        token = unique_token("loop")
        hops = "".join(f"Received: from hop{i}.example.net by hop{i + 1}.example.net; "
                       f"Tue, 1 Dec 2026 10:00:{i:02d} +0000\r\n" for i in range(31))
        # The Received: lines come first, as relays prepend them.
        data = hops + self.make_message(token)
        qid = self.submit(["rcpt@example.net"], data)
        report = self.wait_report(token)
        self.assertReport(report, "rcpt@example.net", "5.4.6")
        self.wait_outbound("failed", qid)
        self.assertEqual(sink.all(), [], "a looping message was sent on")


# --- failures at the next hop, retries, reports ----------------------------------------------

class NextHopFailures(OutboundCase):
    def test_4xx_then_250_is_delivered_on_a_retry(self):
        sink = self.sink(script=Script(Rule("DATA_END", "451 4.3.0 try again later", times=1)))
        self.smart_host_connector(sink.smart_host())
        mark = self.event_mark()
        token = unique_token("retry")
        qid = self.relay_one(token)
        (deferred,) = self.wait_outbound("deferred", qid, "rcpt@example.net")[:1]
        self.assertIn("451", deferred)
        event = self.event_after(12030, mark, lambda e: e.get("QueueId") == qid)
        self.assertEqual(event.get("Recipient"), "rcpt@example.net", event)
        self.assertIn(str(sink.port), str(event.get("NextHop")), event)
        self.assertIn("451 4.3.0 try again later", str(event.get("Reply")), event)
        self.wait_sink(sink, token)
        self.wait_outbound("delivered", qid, "rcpt@example.net")
        time.sleep(1.5)  # a retry interval: nothing more is sent
        self.assertEqual(sink.message_ids()[f"<{token}@client.test>"], 1)
        self.assertEqual(self.starling.delivered(user="sender"), [], "no report for a retry")

    def test_4xx_for_one_of_two_recipients_retries_only_that_one(self):
        sink = self.sink(script=Script(Rule("RCPT", "451 4.2.1 <slow@example.net> try later",
                                            match=r"^slow@", times=1)))
        self.smart_host_connector(sink.smart_host())
        token = unique_token("partial4xx")
        qid = self.relay_one(token, rcpts=("fast@example.net", "slow@example.net"))
        msgs = sink.wait_messages(2, timeout=DELIVERY_WAIT, token=token)
        self.assertEqual(len(msgs), 2, f"expected two transactions: {msgs}")
        self.assertEqual([m.rcpt_tos for m in msgs],
                         [["fast@example.net"], ["slow@example.net"]])
        self.wait_outbound("deferred", qid, "slow@example.net")
        self.wait_outbound("delivered", qid, "slow@example.net")
        time.sleep(1.5)  # a retry interval: fast@ is not sent again
        rcpts = [r for m in sink.find(token) for r in m.rcpt_tos]
        self.assertEqual(sorted(rcpts), ["fast@example.net", "slow@example.net"], rcpts)

    def test_5xx_to_mail_from_fails_every_recipient(self):
        sink = self.sink(script=Script(Rule("MAIL", "550 5.7.1 sender refused")))
        self.smart_host_connector(sink.smart_host())
        token = unique_token("mail5xx")
        qid = self.relay_one(token, rcpts=("one@example.net", "two@example.net"))
        report = self.wait_report(token)
        for rcpt in ("one@example.net", "two@example.net"):
            self.assertReport(report, rcpt, "5.7.1", diagnostic="550 5.7.1 sender refused")
            self.wait_outbound("failed", qid, rcpt)
        self.assertEqual(sink.all(), [])

    def test_peer_silent_after_the_end_of_data_times_out_and_is_deferred(self):
        peer = self.raw(script=Script(Rule("DATA_END", SILENCE, times=1)))
        self.smart_host_connector(peer.smart_host())  # ConnectionInactivityTimeout 00:00:03
        token = unique_token("nodot")
        t0 = time.monotonic()
        qid = self.relay_one(token)
        self.wait_outbound("deferred", qid, timeout=15)
        self.assertLess(time.monotonic() - t0, 12.0, "the wait for the reply to the end of "
                        "data was not capped by the 3 s ConnectionInactivityTimeout")
        self.wait_sink(peer, token)
        self.wait_outbound("delivered", qid)

    def test_5xx_for_one_of_two_recipients(self):
        sink = self.sink(script=Script(Rule("RCPT", "550 5.1.1 <bad@example.net>: no such user",
                                            match=r"^bad@")))
        self.smart_host_connector(sink.smart_host())
        mark = self.event_mark()
        token = unique_token("partial")
        qid = self.relay_one(token, rcpts=("good@example.net", "bad@example.net"))
        (msg,) = self.wait_sink(sink, token)
        self.assertEqual(msg.rcpt_tos, ["good@example.net"])
        report = self.wait_report(token)
        block = self.assertReport(report, "bad@example.net", "5.1.1",
                                  diagnostic="550 5.1.1 <bad@example.net>: no such user")
        self.assertIsNone(report.recipient("good@example.net"),
                          f"the delivered recipient is in the report: {report.recipients}")
        self.assertTrue(block.get("remote-mta"), f"no Remote-MTA: {block}")
        self.assertIn(token, report.original or "", "the report returns the original")
        self.assertIn(SENDER, (report.header("To") or "").lower(), report.text[:500])
        self.wait_outbound("failed", qid, "bad@example.net")
        self.wait_outbound("delivered", qid, "good@example.net")
        event = self.event_after(12031, mark, lambda e: e.get("QueueId") == qid)
        self.assertEqual(event.get("Recipient"), "bad@example.net", event)
        self.assertIn("550 5.1.1", str(event.get("Reply")), event)
        time.sleep(1.0)
        self.assertEqual(len(self.reports()), 1, "one report per message")

    def test_report_to_a_remote_sender_goes_out_from_the_null_reverse_path(self):
        sink = self.sink(script=Script(Rule("RCPT", "550 5.1.1 unknown user", match=r"^bad@")))
        self.smart_host_connector(sink.smart_host())
        self.set_transport(external_postmaster_address="mailer-daemon@example.test")
        token = unique_token("remote")
        self.relay_one(token, rcpts=("bad@example.net",), sender="origin@example.net")
        (report_msg,) = self.wait_sink(sink, token)  # only the report carries the token
        self.assertEqual(report_msg.mail_from, "", "a report goes out with MAIL FROM:<>")
        self.assertEqual(report_msg.rcpt_tos, ["origin@example.net"])
        report = DeliveryReport("peer", report_msg.data)
        self.assertReport(report, "bad@example.net", "5.1.1", diagnostic="550 5.1.1",
                          postmaster="mailer-daemon@example.test")

    def test_failure_of_mail_from_null_sender_makes_no_report(self):
        sink = self.sink(script=Script(Rule("RCPT", "550 5.1.1 unknown user")))
        self.smart_host_connector(sink.smart_host())
        token = unique_token("nullsender")
        qid = self.relay_one(token, sender="")
        self.wait_outbound("failed", qid, "rcpt@example.net")
        self.wait_no_new_mail(quiet=2.5, peers=[sink])
        self.assertEqual(sink.all(), [])
        self.assertEqual(self.starling.delivered(), [], "a report for mail from <>")

    def test_disconnect_in_the_middle_of_data_is_deferred_then_delivered(self):
        peer = self.raw(faults=[DISCONNECT_IN_DATA])
        self.smart_host_connector(peer.smart_host())
        token = unique_token("cut")
        body = "".join(f"line {i} of a message long enough to be cut\r\n" for i in range(200))
        qid = self.relay_one(token, body=body)
        self.wait_outbound("deferred", qid)
        msgs = self.wait_sink(peer, token)
        self.assertEqual(msgs[0].body(), body.encode())
        self.wait_outbound("delivered", qid)
        self.assertEqual(peer.message_ids()[f"<{token}@client.test>"], 1)
        self.assertEqual(peer.fault_log[0], (1, DISCONNECT_IN_DATA))

    def test_peer_that_never_answers_times_out_and_is_deferred(self):
        peer = self.raw(default_fault=SILENT)
        self.smart_host_connector(peer.smart_host())  # ConnectionInactivityTimeout 00:00:03
        mark = self.event_mark()
        token = unique_token("silent")
        t0 = time.monotonic()
        qid = self.relay_one(token)
        self.wait_outbound("deferred", qid, timeout=15)
        took = time.monotonic() - t0
        self.assertGreater(took, 2.5, "deferred before the 3 s inactivity timeout")
        self.assertLess(took, 12.0, "the 3 s ConnectionInactivityTimeout did not cap the wait")
        self.event_after(12030, mark, lambda e: e.get("QueueId") == qid)
        peer.behave()
        self.wait_sink(peer, token, timeout=25)
        self.wait_outbound("delivered", qid)

    def test_421_greeting_is_deferred_then_delivered(self):
        peer = self.raw(faults=[GREETING_421])
        self.smart_host_connector(peer.smart_host())
        token = unique_token("g421")
        qid = self.relay_one(token)
        (line,) = self.wait_outbound("deferred", qid)[:1]
        self.assertIn("421", line)
        self.wait_sink(peer, token)
        self.wait_outbound("delivered", qid)

    def test_expired_message_is_reported_4_4_7(self):
        sink = self.sink(script=Script(Rule("DATA_END", "451 4.3.0 still not")))
        self.smart_host_connector(sink.smart_host())
        self.set_transport(message_expiration_timeout="00:00:06")
        token = unique_token("expire")
        t0 = time.monotonic()
        qid = self.relay_one(token)
        report = self.wait_report(token, timeout=30)
        took = time.monotonic() - t0
        self.assertGreater(took, 5.0, f"reported after {took:.1f} s, before it expired")
        self.assertReport(report, "rcpt@example.net", "4.4.7")
        self.wait_outbound("failed", qid)
        attempts = len(sink.verbs("DATA"))
        self.assertGreaterEqual(attempts, 2, "retried before expiring")
        time.sleep(2.0)
        self.assertEqual(len(sink.verbs("DATA")), attempts, "still tried after it expired")
        self.assertEqual(sink.all(), [])

    def test_delay_notice_then_delivery(self):
        sink = self.sink(script=Script(Rule("DATA_END", "451 4.3.0 busy")))
        self.smart_host_connector(sink.smart_host())
        self.set_transport(delay_notification_timeout="00:00:02")
        token = unique_token("delay")
        qid = self.relay_one(token)
        notice = self.wait_report(token, timeout=20)
        block = self.assertReport(notice, "rcpt@example.net", "4.", action="delayed")
        self.assertTrue(block.get("status", "").startswith("4."), block)
        sink.script.clear()
        self.wait_sink(sink, token)
        self.wait_outbound("delivered", qid)
        time.sleep(1.5)
        self.assertEqual(len(self.reports()), 1, "one delay notice, and no failure report")

    def test_retry_state_survives_a_restart(self):
        sink = self.sink(script=Script(Rule("DATA_END", "451 4.3.0 later", match=r"^later@")))
        self.smart_host_connector(sink.smart_host())
        early = unique_token("early")
        early_qid = self.relay_one(early, sender="early@example.test")
        self.wait_sink(sink, early)
        self.wait_outbound("delivered", early_qid)
        late = unique_token("late")
        late_qid = self.relay_one(late, sender="later@example.test")
        self.wait_outbound("deferred", late_qid)
        self.starling.stop_checked()
        sink.script.clear()
        self.starling.start()
        self.wait_sink(sink, late, timeout=25)
        self.wait_outbound("delivered", late_qid)
        time.sleep(2.0)  # two retry intervals: nothing is sent again
        ids = sink.message_ids()
        self.assertEqual(ids[f"<{early}@client.test>"], 1, f"resent after the restart: {ids}")
        self.assertEqual(ids[f"<{late}@client.test>"], 1, f"sent twice: {ids}")
        self.assertEqual(self.starling.delivered(), [], "no report")

    def test_corrupt_queue_file_is_set_aside_with_event_12032(self):
        sink = self.sink(script=Script(Rule("DATA_END", "451 4.3.0 not yet")))
        self.smart_host_connector(sink.smart_host())
        bad, good = unique_token("corrupt"), unique_token("intact")
        bad_qid, good_qid = self.relay_one(bad), self.relay_one(good)
        self.wait_outbound("deferred", bad_qid)
        self.wait_outbound("deferred", good_qid)
        mark = self.event_mark()
        self.starling.stop_checked()
        queue = self.starling.data_dir / "queue"
        needle = f"body of {bad}".encode()
        files = [p for p in queue.iterdir() if p.is_file() and needle in p.read_bytes()]
        self.assertEqual(len(files), 1, f"queue files holding {bad}: {files} "
                         f"(queue: {sorted(p.name for p in queue.iterdir())})")
        damaged = files[0].read_bytes().replace(needle, needle.upper(), 1)  # same size, bad CRC
        files[0].write_bytes(damaged)
        sink.script.clear()
        self.starling.start()
        event = self.event_after(12032, mark)
        self.assertTrue(str(event.get("File", "")).endswith(files[0].name), event)
        moved = str(event.get("MovedTo", ""))
        self.assertTrue(moved, event)
        self.assertTrue(Path(moved).exists(), f"{moved} does not exist: {event}")
        self.wait_sink(sink, good)
        self.wait_outbound("delivered", good_qid)
        time.sleep(1.0)
        self.assertEqual(sink.find(bad) + sink.find(bad.upper()), [],
                         "the damaged message was delivered")
        self.assertTrue(self.starling.running())

# --- DNS routing ------------------------------------------------------------------------------

class DnsRouting(OutboundCase):
    def setUp(self):
        if DnsServer is None:
            self.skipTest("tests/e2e/dns_server.py is not there yet")
        super().setUp()

    def route(self, zone, sink_port, address_spaces="*"):
        dns = DnsServer(port=0, zone=zone)
        dns.start()
        self.addCleanup(dns.stop)
        self._dns = dns
        self.set_transport(external_dns_servers=f"{HOST}:{dns.port}")
        self.new_send_connector("Internet", address_spaces, port=sink_port,
                                use_external_dns_servers_enabled=True)
        return dns

    def test_mx_preference_order(self):
        port = free_port()
        low = self.sink(host="127.0.0.3", port=port, hostname="mx-b.pref.test")
        high = self.sink(host=HOST, port=port, hostname="mx-a.pref.test")
        self.route({"pref.test": {"MX": [(20, "mx-a.pref.test"), (10, "mx-b.pref.test")]},
                    "mx-a.pref.test": {"A": [HOST]},
                    "mx-b.pref.test": {"A": ["127.0.0.3"]}}, port)
        token = unique_token("pref")
        qid = self.submit(["user@pref.test"], self.make_message(token, to="user@pref.test"))
        self.wait_sink(low, token)
        self.assertEqual(high.all(), [], "the higher MX preference was used first")
        (line,) = self.wait_outbound("delivered", qid, "user@pref.test")[:1]
        self.assertIn("pref.test", line)

    def test_next_mx_when_the_first_refuses_connections(self):
        sink = self.sink()
        self.route({"fallback.test": {"MX": [(10, "mx1.fallback.test"),
                                             (20, "mx2.fallback.test")]},
                    "mx1.fallback.test": {"A": ["127.0.0.2"]},   # nothing listens there
                    "mx2.fallback.test": {"A": [HOST]}}, sink.port)
        token = unique_token("fallback")
        qid = self.submit(["user@fallback.test"],
                          self.make_message(token, to="user@fallback.test"))
        self.wait_sink(sink, token)
        self.wait_outbound("delivered", qid, "user@fallback.test")

    def test_implicit_mx_from_the_a_record(self):
        sink = self.sink()
        self.route({"amx.test": {"A": [HOST]}}, sink.port)
        token = unique_token("amx")
        self.submit(["user@amx.test"], self.make_message(token, to="user@amx.test"))
        self.wait_sink(sink, token)

    def test_null_mx_is_reported_5_1_10(self):
        sink = self.sink()
        self.route({"nullmx.test": {"MX": [(0, ".")]}}, sink.port)
        token = unique_token("nullmx")
        qid = self.submit(["user@nullmx.test"], self.make_message(token, to="user@nullmx.test"))
        report = self.wait_report(token)
        self.assertReport(report, "user@nullmx.test", "5.1.10")
        self.wait_outbound("failed", qid, "user@nullmx.test")
        self.assertEqual(sink.connections, 0)

    def test_nxdomain_is_reported(self):
        sink = self.sink()
        self.route({"exists.test": {"A": [HOST]}}, sink.port)
        token = unique_token("nxdomain")
        qid = self.submit(["user@nosuch.test"], self.make_message(token, to="user@nosuch.test"))
        report = self.wait_report(token)
        self.assertReport(report, "user@nosuch.test", "5.")
        self.wait_outbound("failed", qid, "user@nosuch.test")
        self.assertEqual(sink.connections, 0)

    def test_servfail_is_deferred_and_stays_queued(self):
        sink = self.sink()
        self.route({"servfail.test": "SERVFAIL"}, sink.port)
        token = unique_token("servfail")
        qid = self.submit(["user@servfail.test"],
                          self.make_message(token, to="user@servfail.test"))
        dns = self._dns
        self.wait_outbound("deferred", qid, "user@servfail.test", count=2, timeout=20)
        self.assertGreaterEqual(dns.query_count("servfail.test"), 2, dns.queries)
        self.assertEqual(self.outbound_lines(qid, word="failed"), [])
        self.assertEqual(self.starling.delivered(), [], "reported though only deferred")
        self.assertEqual(sink.connections, 0)

    def test_mx_pointing_back_here_is_a_loop_5_4_6(self):
        sink = self.sink()
        self.route({"loop.test": {"MX": [(10, FQDN)]}, FQDN: {"A": [HOST]}}, sink.port)
        token = unique_token("mxloop")
        qid = self.submit(["user@loop.test"], self.make_message(token, to="user@loop.test"))
        report = self.wait_report(token)
        self.assertReport(report, "user@loop.test", "5.4.6")
        self.wait_outbound("failed", qid, "user@loop.test")


# --- transport server settings -----------------------------------------------------------------

class TransportServerSettings(OutboundCase):
    relay = False
    fast = False

    def test_defaults(self):
        s = self.transport_settings()
        expected = {"TransientFailureRetryCount": "6", "TransientFailureRetryInterval": "00:05:00",
                    "OutboundConnectionFailureRetryInterval": "00:10:00",
                    "MessageRetryInterval": "00:05:00", "MessageExpirationTimeout": "2.00:00:00",
                    "DelayNotificationTimeout": "04:00:00", "MaxOutboundConnections": "1000",
                    "MaxPerDomainOutboundConnections": "20"}
        got = {k: str(s.get(k)) for k in expected}
        self.assertEqual(got, expected, s)

    def test_set_shows_durations_as_exchange_does(self):
        self.set_transport(message_retry_interval="90", message_expiration_timeout="1.00:00:00",
                           transient_failure_retry_interval="00:00:30",
                           transient_failure_retry_count="3",
                           external_dns_servers="127.0.0.1:5353,127.0.0.2",
                           external_postmaster_address="bounces@example.test",
                           max_per_domain_outbound_connections="5")
        s = self.transport_settings()
        self.assertEqual(str(s["MessageRetryInterval"]), "00:01:30")
        self.assertEqual(str(s["MessageExpirationTimeout"]), "1.00:00:00")
        self.assertEqual(str(s["TransientFailureRetryInterval"]), "00:00:30")
        self.assertEqual(str(s["TransientFailureRetryCount"]), "3")
        self.assertEqual(str(s["MaxPerDomainOutboundConnections"]), "5")
        self.assertIn("127.0.0.1:5353", str(s["ExternalDNSServers"]))
        self.assertIn("127.0.0.2", str(s["ExternalDNSServers"]))
        self.assertEqual(s["ExternalPostmasterAddress"], "bounces@example.test")
        # The change is in the event log and survives a restart.
        self.starling.stop_checked()
        self.starling.start()
        self.assertEqual(str(self.transport_settings()["MessageRetryInterval"]), "00:01:30")

    def test_bad_values_are_refused_naming_the_setting(self):
        before = self.transport_settings()
        cases = [
            ("--transient-failure-retry-interval", "0", r"transient-?failure-?retry-?interval"),
            ("--transient-failure-retry-interval", "soon", r"transient-?failure-?retry-?interval"),
            ("--message-retry-interval", "1.2.3", r"message-?retry-?interval"),
            ("--message-expiration-timeout", "00:00:00", r"message-?expiration-?timeout"),
            ("--outbound-connection-failure-retry-interval", "1:2:3:4",
             r"outbound-?connection-?failure-?retry-?interval"),
            ("--delay-notification-timeout", "0", r"delay-?notification-?timeout"),
            ("--transient-failure-retry-count", "1.5", r"transient-?failure-?retry-?count"),
            ("--transient-failure-retry-count", "many", r"transient-?failure-?retry-?count"),
            ("--max-outbound-connections", "0", r"max-?outbound-?connections"),
            ("--max-per-domain-outbound-connections", "5000",
             r"max-?(per-?domain-?)?outbound-?connections"),
            ("--external-dns-servers", "not-an-address", r"external-?dns-?servers"),
            ("--external-dns-servers", "127.0.0.1:99999", r"external-?dns-?servers"),
            ("--external-postmaster-address", "no-at-sign", r"external-?postmaster-?address"),
        ]
        for option, value, name_re in cases:
            with self.subTest(option=option, value=value):
                self.cli_fails((1, 2), name_re, "set-transport-server", option, value)
        self.assertEqual(self.transport_settings(), before, "a refused change changed something")


if __name__ == "__main__":
    unittest.main()
