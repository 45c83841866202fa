"""Protocol logs end to end (docs/protocol-logs.md): connectors with ProtocolLoggingLevel Verbose
write every line of their sessions, in both directions, with connect, disconnect, TLS and
authentication events, to DIR/logs/protocol/receive/RECV*.log and DIR/logs/protocol/send/SEND*.log:
CSV lines under a #Fields header, Exchange's fields (date-time, connector-id, session-id,
sequence-number, local-endpoint, remote-endpoint, event, data, context).

What a test expects from the daemon: a STARTTLS + AUTH session on the submission connector logs
the banner, every EHLO line (both EHLOs), STARTTLS and its 220, TLS negotiated, the AUTH exchange
as ****, MAIL, RCPT, DATA, 354, the queued reply and QUIT, in order, with sequence numbers
0, 1, 2, ...; client control characters come out as '?'; no password and no base64 form of it
appears anywhere under DIR/logs; a message relayed through a Verbose send connector (with smart
host AUTH) gives a send log of that conversation; a connector left at None logs nothing.
"""

import csv
import smtplib
import unittest

from cert_factory import CertificateAuthority
from peers import Sink, wait_until
from starling_cli import RecipientMixin, secret_forms
from starling_fixture import HOST, DaemonTestCase, RawClient, tls_client_context, unique_token

FIELDS = ["date-time", "connector-id", "session-id", "sequence-number", "local-endpoint",
          "remote-endpoint", "event", "data", "context"]
WAIT = 20.0
ALICE = "alice@example.test"


def read_log(directory, prefix):
    """(headers, rows) of every PREFIX*.log file in `directory`, oldest first; rows are dicts."""
    headers, rows = [], []
    for path in sorted(directory.glob(f"{prefix}*.log")):
        text = path.read_bytes().decode("utf-8")
        lines = text.splitlines()
        headers.append([l for l in lines if l.startswith("#")])
        data = [l for l in lines if not l.startswith("#")]
        for fields in csv.reader(data):
            rows.append(dict(zip(FIELDS, fields)) | {"_count": len(fields)})
    return headers, rows


class ProtocolLogCase(DaemonTestCase, RecipientMixin):
    mailboxes = ()
    submission = True
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.alice_pw = "pl-" + unique_token("pw") + ":S3cr#t"
        self.new_mailbox(ALICE, password=self.alice_pw, name="Alice")
        self.port = self.submission_port()
        self.connector = self.client_connector()
        self.cli_ok("set-receive-connector", self.connector, "--protocol-logging-level", "Verbose")
        self.logs = self.starling.data_dir / "logs"
        self.addCleanup(self.assert_no_secret)

    def assert_no_secret(self):
        forms = secret_forms(ALICE, self.alice_pw)
        for path in self.logs.rglob("*") if self.logs.exists() else []:
            if path.is_file():
                text = path.read_bytes().decode("utf-8", "replace")
                for what, secret in forms.items():
                    self.assertNotIn(secret, text, f"{what} in {path}")

    def session_rows(self, kind, prefix, predicate, timeout=WAIT):
        """The rows of the first session (by session id) whose rows satisfy `predicate`, once
        its '-' disconnect line is written."""
        found = {}

        def done():
            _, rows = read_log(self.logs / "protocol" / kind, prefix)
            by_id = {}
            for r in rows:
                by_id.setdefault(r["session-id"], []).append(r)
            for rs in by_id.values():
                if rs[-1]["event"] == "-" and predicate(rs):
                    found["rows"] = rs
                    return True
            return False

        ok = wait_until(done, timeout)
        _, rows = read_log(self.logs / "protocol" / kind, prefix)
        self.assertTrue(ok, f"no finished {kind} session as expected; rows: {rows[-40:]}")
        return found["rows"]

    def assertWellFormed(self, rows):
        for r in rows:
            self.assertEqual(r["_count"], 9, r)
        self.assertEqual([int(r["sequence-number"]) for r in rows], list(range(len(rows))))
        self.assertEqual(len({r["session-id"] for r in rows}), 1)
        self.assertRegex(rows[0]["date-time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class ReceiveLog(ProtocolLogCase):
    def ehlo_lines(self, resp):
        lines = resp.decode().split("\n")
        return [f"250-{l}" for l in lines[:-1]] + [f"250 {lines[-1]}"]

    def test_starttls_auth_session_has_every_line_and_no_secret(self):
        token = unique_token("plog")
        s = smtplib.SMTP(HOST, self.port, local_hostname="sub.client.test", timeout=WAIT)
        client_port = s.sock.getsockname()[1]
        s.ehlo()
        first_ehlo = self.ehlo_lines(s.ehlo_resp)
        self.assertEqual(s.starttls(context=tls_client_context())[0], 220)
        s.ehlo()
        second_ehlo = self.ehlo_lines(s.ehlo_resp)
        s.user, s.password = ALICE, self.alice_pw
        self.assertEqual(s.auth("PLAIN", s.auth_plain)[0], 235)
        s.sendmail(ALICE, [ALICE], f"Subject: {token}\r\n\r\nbody\r\n")
        s.quit()
        rows = self.session_rows("receive", "RECV",
                                 lambda rs: rs[0]["remote-endpoint"].endswith(f":{client_port}"))
        self.assertWellFormed(rows)
        self.assertEqual(rows[0]["connector-id"], f"{self.starling.server_name}\\{self.connector}")
        self.assertEqual(rows[0]["local-endpoint"], f"{HOST}:{self.port}")
        self.assertEqual(rows[0]["remote-endpoint"], f"{HOST}:{client_port}")
        # smtplib writes some verbs in lower case ("ehlo", "mail FROM:"): logged as sent.
        got = [(r["event"], r["data"].upper() if r["event"] == "<" else r["data"]) for r in rows]
        data = [d for _, d in got]
        i = data.index("STARTTLS")
        self.assertEqual(got[0], ("+", ""))
        self.assertEqual(got[1][0], ">")
        self.assertRegex(got[1][1], r"^220 ")
        self.assertEqual(got[2], ("<", "EHLO SUB.CLIENT.TEST"))
        self.assertEqual(got[3:i], [(">", l) for l in first_ehlo])
        self.assertEqual(got[i + 1][0], ">")
        self.assertRegex(got[i + 1][1], r"^220 2\.0\.0 ")
        self.assertEqual(got[i + 2][0], "*")
        self.assertRegex(got[i + 2][1], r"^TLSv1\.[23] ")
        self.assertEqual(rows[i + 2]["context"], "TLS negotiated")
        self.assertEqual(got[i + 3], ("<", "EHLO SUB.CLIENT.TEST"))
        j = i + 4 + len(second_ehlo)
        self.assertEqual(got[i + 4:j], [(">", l) for l in second_ehlo])
        self.assertIn("250-AUTH PLAIN LOGIN", second_ehlo)
        rest = got[j:]
        self.assertEqual(rest[0], ("<", "AUTH PLAIN ****"))
        self.assertEqual(rest[1], ("*", f"authenticated as {ALICE}"))
        self.assertEqual(rest[2][1].split()[:2], ["235", "2.7.0"])
        self.assertEqual(rest[3][0], "<")
        self.assertTrue(rest[3][1].startswith(f"MAIL FROM:<{ALICE.upper()}>"), rest[3])
        self.assertEqual(rest[4][1].split()[0], "250")
        self.assertEqual(rest[5], ("<", f"RCPT TO:<{ALICE.upper()}>"))
        self.assertEqual(rest[6][1].split()[0], "250")
        self.assertEqual(rest[7], ("<", "DATA"))
        self.assertEqual(rest[8][0], ">")
        self.assertTrue(rest[8][1].startswith("354 "), rest[8])
        self.assertEqual(rest[9][0], ">")
        self.assertRegex(rest[9][1], r"^250 2\.0\.0 OK queued as \S+$")
        self.assertEqual(rest[10], ("<", "QUIT"))
        self.assertEqual(rest[11][1].split()[0], "221")
        self.assertEqual(rest[12], ("-", ""))
        self.assertEqual(rows[-1]["context"], "Local")
        self.assertEqual(len(rest), 13, rest)
        headers, _ = read_log(self.logs / "protocol" / "receive", "RECV")
        for h in headers:
            self.assertIn("#Fields: " + ",".join(FIELDS), h)
            self.assertIn("#Log-type: SMTP Receive Protocol Log", h)

    def test_auth_login_continuations_masked(self):
        c = RawClient(self.port, timeout=WAIT)
        self.addCleanup(c.close)
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls()
        c.ehlo()
        import base64
        self.assertReply(c.cmd("AUTH LOGIN"), 334)
        self.assertReply(c.cmd(base64.b64encode(ALICE.encode()).decode()), 334)
        self.assertReply(c.cmd(base64.b64encode(self.alice_pw.encode()).decode()), 235)
        # Controls from the client come out as '?': no terminal escapes, no forged lines.
        self.assertReply(c.cmd("NOOP \x1b[31mred\x07,\"x\""), 250)
        c.cmd("QUIT")
        rows = self.session_rows("receive", "RECV", lambda rs: any(r["data"] == "AUTH LOGIN" for r in rs))
        self.assertWellFormed(rows)
        data = [r["data"] for r in rows]
        k = data.index("AUTH LOGIN")
        self.assertEqual(data[k + 1:k + 5], ["334 VXNlcm5hbWU6", "****", "334 UGFzc3dvcmQ6", "****"])
        self.assertIn("NOOP ?[31mred?,\"x\"", data)
        self.assertEqual(rows[-1]["context"], "Local")

    def test_connector_at_none_logs_nothing(self):
        self.cli_ok("set-receive-connector", self.connector, "--protocol-logging-level", "None")
        self.cli_ok("set-receive-connector", f"Default {self.starling.server_name}",
                    "--protocol-logging-level", "Verbose")
        c = RawClient(self.port, timeout=WAIT)
        c.greeting()
        c.cmd("QUIT")
        c.close()
        d = RawClient(self.starling.port, timeout=WAIT)
        d.greeting()
        d.cmd("QUIT")
        d.close()
        rows = self.session_rows("receive", "RECV", lambda rs: True)
        _, every = read_log(self.logs / "protocol" / "receive", "RECV")
        self.assertEqual({r["local-endpoint"] for r in every}, {rows[0]["local-endpoint"]})
        self.assertEqual(rows[0]["local-endpoint"], f"{HOST}:{self.starling.port}")

    def test_bad_level_is_refused(self):
        self.cli_fails(2, r"ProtocolLoggingLevel: None or Verbose", "set-receive-connector",
                       self.connector, "--protocol-logging-level", "Loud")
        shown = self.cli_json("get-receive-connector", self.connector)[0]
        self.assertEqual(shown["ProtocolLoggingLevel"], "Verbose")


class SendLog(ProtocolLogCase):
    def test_relayed_message_through_verbose_send_connector(self):
        relay_pw = "relay-" + unique_token("pw")
        ca = CertificateAuthority(self.starling.root / "ca", "Protocol Log Test CA")
        sink = Sink(tls=ca.issue("sink.example.net"), auth=("relayuser", relay_pw))
        sink.start()
        self.addCleanup(sink.stop)
        cred = self.starling.root / "relay-credential.txt"
        cred.write_text(f"relayuser\n{relay_pw}\n")
        self.smart_host_connector(sink.smart_host(), smart_host_auth_mechanism="BasicAuth",
                                  authentication_credential_file=cred,
                                  protocol_logging_level="Verbose")
        self.allow_relay()
        token = unique_token("sendlog")
        self.submit(["rcpt@example.net"], self.make_message(token))
        msgs = sink.wait_messages(1, timeout=WAIT, token=token)
        self.assertEqual(len(msgs), 1)
        rows = self.session_rows("send", "SEND", lambda rs: any(r["data"] == "DATA" for r in rs))
        self.assertWellFormed(rows)
        self.assertEqual(rows[0]["connector-id"], "Out")
        self.assertEqual(rows[0]["remote-endpoint"], f"{sink.host}:{sink.port}")
        got = [(r["event"], r["data"]) for r in rows]
        self.assertEqual(got[0], ("+", ""))
        self.assertEqual(got[1][0], "<")
        self.assertRegex(got[1][1], r"^220 ")
        self.assertEqual(got[2][0], ">")
        self.assertRegex(got[2][1], r"^EHLO ")
        data = [d for _, d in got]
        self.assertIn(("*", "TLS negotiated"),
                      [(r["event"], r["context"]) for r in rows])
        auth = [d for e, d in got if e == ">" and d.upper().startswith("AUTH")]
        self.assertEqual(len(auth), 1, got)
        self.assertIn(auth[0], ("AUTH PLAIN ****", "AUTH LOGIN"))
        for needle in ("MAIL FROM:<sender@example.test>", "RCPT TO:<rcpt@example.net>", "QUIT"):
            self.assertTrue(any(d.startswith(needle) for d in data), f"{needle}: {got}")
        self.assertEqual(got[-1][0], "-")
        text = "".join(p.read_text() for p in (self.logs / "protocol" / "send").glob("SEND*.log"))
        import base64
        for secret in (relay_pw, base64.b64encode(relay_pw.encode()).decode(),
                       base64.b64encode(f"\0relayuser\0{relay_pw}".encode()).decode().rstrip("=")):
            self.assertNotIn(secret, text)

    def test_send_connector_level_shown_and_refused_when_bad(self):
        self.smart_host_connector(f"[{HOST}]:2")
        shown = self.cli_json("get-send-connector", "Out")[0]
        self.assertEqual(shown["ProtocolLoggingLevel"], "None")
        self.set_send_connector("Out", protocol_logging_level="verbose")
        self.assertEqual(self.cli_json("get-send-connector", "Out")[0]["ProtocolLoggingLevel"], "Verbose")
        self.cli_fails(2, r"ProtocolLoggingLevel: None or Verbose", "set-send-connector", "Out",
                       "--protocol-logging-level", "Everything")


if __name__ == "__main__":
    unittest.main()
