"""SMTP AUTH (RFC 4954) end to end on the submission connector `starling setup` creates,
`Client <server>` (AuthMechanism `Tls, BasicAuth, BasicAuthRequireTLS`, PermissionGroups
`ExchangeUsers`, RequireTLS), with swaks, Python smtplib and a raw client (docs/mailbox-delivery.md).

What a test expects from the daemon: AUTH PLAIN and LOGIN offered only after STARTTLS (before it
`538 5.7.11`); `235 2.7.0` on success; `535 5.7.8` for a wrong password or an unknown user after
the tarpit (TarpitInterval, 5 s by default); after three failures on one connection
(MaxLogonFailures) `421 4.7.0` and the connection closed; an authenticated user may relay to any
domain with a send connector (an anonymous client may not: `550 5.7.54`) but may send only as its
own addresses (`550 5.7.60`); the Received header says `with ESMTPSA`; log lines
`smtp[N] authenticated as <user>` and `smtp[N] AUTH failed for <user> from <ip>`; event 12040
SmtpAuthenticationFailed (Connector, ClientIp, User). No password or AUTH payload, in clear or
base64, ever reaches daemon.log, the Verbose protocol log, an event, a file of the data directory
or the output of a command: every test checks that before its daemon stops.

Failures are slow on purpose (the tarpit cannot be shortened), so the few failure cases run side
by side in threads.
"""

import random
import re
import smtplib
import string
import subprocess
import time
import unittest

from peers import Sink
from starling_cli import RecipientMixin, auth_plain_blob, b64, run_starling, secret_forms
from starling_fixture import (Background, HOST, DaemonTestCase, RawClient, tls_client_context,
                              unfolded_headers, unique_token)

TARPIT = 5.0          # the default TarpitInterval
TARPIT_MIN = 4.0      # what a tarpitted reply must at least take (timer slack)
PROMPT = 3.5          # what an untarpitted exchange may take (on two busy cores)
REPLY_WAIT = TARPIT + 15
DELIVERY_WAIT = 20.0

ALICE = "alice@example.test"
BOB = "bob@example.test"


def password(tag):
    rng = random.SystemRandom()
    tail = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))
    return f"{tag}-{tail}:S3cr#t"


def swaks_has_tls():
    r = subprocess.run(["swaks", "--support"], capture_output=True, text=True)
    return "=== TLS supported" in (r.stdout + r.stderr)


class AuthCase(DaemonTestCase, RecipientMixin):
    mailboxes = ()  # these tests create the recipients they need
    submission = True
    daemon_per_test = True

    def setUp(self):
        self.outputs = []                 # (args, stdout + stderr) of every command run
        self.tried = set()                # (user, password) pairs a client has sent
        super().setUp()
        self.alice_pw = password("alice")
        self.bob_pw = password("bob")
        self.tried |= {(ALICE, self.alice_pw), (BOB, self.bob_pw)}
        self.new_mailbox(ALICE, password=self.alice_pw, name="Alice",
                         email_addresses=["al@example.test"])
        self.new_mailbox(BOB, password=self.bob_pw, name="Bob")
        self.port = self.submission_port()
        self.cli_ok("set-receive-connector", self.client_connector(),
                    "--protocol-logging-level", "Verbose")
        # Registered after the daemon's own cleanup, so it runs first: the daemon still runs.
        self.addCleanup(self.assert_no_secrets)

    def cli(self, *args, **kw):
        r = super().cli(*args, **kw)
        self.outputs.append((args, r.stdout + r.stderr))
        return r

    # --- clients -----------------------------------------------------------------------------

    def smtp(self, port=None, tls=True, helo="sub.client.test"):
        """smtplib on the submission port (or `port`), after STARTTLS unless tls=False."""
        s = smtplib.SMTP(HOST, port or self.port, local_hostname=helo, timeout=REPLY_WAIT)
        self.addCleanup(self.close_smtp, s)
        s.ehlo()
        if tls:
            code, resp = s.starttls(context=tls_client_context())
            self.assertEqual(code, 220, resp)
            s.ehlo()
        return s

    @staticmethod
    def close_smtp(s):
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()

    def auth_plain(self, s, user, pw, initial_response=True):
        """One AUTH PLAIN (smtplib.login() would go on to LOGIN after a failure): (code, text)
        whatever the outcome."""
        self.tried.add((user, pw))
        s.user, s.password = user, pw
        try:
            code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=initial_response)
        except smtplib.SMTPAuthenticationError as e:
            code, resp = e.smtp_code, e.smtp_error
        return code, resp.decode(errors="replace") if isinstance(resp, bytes) else str(resp)

    def raw_tls(self, port=None, timeout=REPLY_WAIT):
        """A raw client after EHLO, STARTTLS and EHLO again; returns (client, EHLO reply)."""
        c = RawClient(port or self.port, timeout=timeout)
        self.addCleanup(c.close)
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls()
        return c, c.ehlo()

    def login_exchange(self, c, user, pw):
        """AUTH LOGIN step by step on a raw client; returns the final reply."""
        self.tried.add((user, pw))
        r = c.cmd("AUTH LOGIN")
        self.assertReply(r, 334, msg=f"AUTH LOGIN: {r}")  # the prompts' text is not standard
        r = c.cmd(b64(user))
        self.assertReply(r, 334, msg=f"after the username: {r}")
        return c.cmd(b64(pw), timeout=REPLY_WAIT)

    def swaks(self, mechanism, user, pw, to=BOB, sender=None, token=None):
        self.tried.add((user, pw))
        token = token or unique_token(f"swaks{mechanism}")
        cmd = ["swaks", "--server", f"{HOST}:{self.port}", "--tls",
               "--auth", mechanism, "--auth-user", user, "--auth-password", pw,
               "--to", to, "--from", sender or user, "--helo", "swaks.client.test",
               "--header", f"Subject: {token}", "--body", f"body {token}", "--timeout", "30"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        return r.returncode, r.stdout + r.stderr, token

    def transaction(self, s, sender, rcpts, token):
        """MAIL, RCPT..., DATA on an open smtplib session: ('queued', 250, text) or the first
        refusal as (stage, code, text)."""
        rcpts = [rcpts] if isinstance(rcpts, str) else rcpts
        code, resp = s.mail(sender)
        if code != 250:
            s.rset()
            return "MAIL", code, resp.decode(errors="replace")
        for r in rcpts:
            code, resp = s.rcpt(r)
            if code not in (250, 251):
                s.rset()
                return f"RCPT {r}", code, resp.decode(errors="replace")
        msg = self.make_message(token, sender=sender, to=rcpts[0])
        try:
            code, resp = s.data(msg.encode())
        except smtplib.SMTPDataError as e:
            s.rset()
            return "DATA", e.smtp_code, e.smtp_error.decode(errors="replace")
        return ("queued" if code == 250 else "DATA end"), code, resp.decode(errors="replace")

    def delivered_to(self, token, user="bob"):
        found = self.starling.wait_for(token, user=user, timeout=DELIVERY_WAIT)
        self.assertEqual(len(found), 1, f"{token} not delivered once to {user}: {found}; "
                         f"all: {self.starling.delivered()}")
        return self.starling.read(found[0])

    def received_of(self, data):
        return [v for n, v in unfolded_headers(data) if n.lower() == "received"]

    def sink(self, **kw):
        peer = Sink(**kw)
        peer.start()
        self.addCleanup(peer.stop)
        return peer

    def log_lines(self, pattern):
        return [l for l in self.starling.log_text().splitlines() if re.search(pattern, l)]

    def wait_log(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            found = self.log_lines(pattern)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    # --- the secrets check ---------------------------------------------------------------------

    def secret_sources(self):
        """{name: text} of everything an administrator can read: daemon.log (the Verbose
        protocol log is in it), get-event as JSON, every file of the data directory but the
        store, and the output of every command the test ran."""
        s = self.starling
        sources = {"daemon.log": s.log_text()}
        if s.running():
            r = run_starling(s.data_dir, "get-event", "--format", "json")
            sources["get-event --format json"] = r.stdout + r.stderr
        for path in sorted(s.data_dir.rglob("*")):
            if not path.is_file() or path.name.startswith("starling.db"):
                continue
            try:
                sources[str(path.relative_to(s.data_dir))] = path.read_bytes().decode("latin-1")
            except OSError:
                pass
        for args, out in self.outputs:
            sources["output of starling " + " ".join(str(a) for a in args)] = out
        return sources

    def secrets(self):
        forms = {}
        for user, pw in sorted(self.tried):
            for what, text in secret_forms(user, pw).items():
                forms[f"{what} [{user} / {pw}]"] = text
        return forms

    def leaks(self):
        found = []
        sources = self.secret_sources()
        for what, text in self.secrets().items():
            for name, content in sources.items():
                i = content.find(text)
                if i >= 0:
                    excerpt = content[max(0, i - 100):i + len(text) + 40]
                    found.append(f"{what} in {name}: ...{excerpt!r}...")
        return found

    def assert_no_secrets(self):
        found = self.leaks()
        self.assertEqual(found, [], "secrets leaked:\n" + "\n".join(found))


class AuthOffer(AuthCase):
    def test_auth_offered_only_after_starttls_and_538_before(self):
        c = RawClient(self.port, timeout=REPLY_WAIT)
        self.addCleanup(c.close)
        c.greeting()
        before = c.ehlo()
        self.assertIn("STARTTLS", [l.upper() for l in before.lines], before)
        self.assertEqual([l for l in before.lines if l.upper().startswith("AUTH")], [],
                         f"AUTH offered before STARTTLS (BasicAuthRequireTLS): {before}")
        r = c.cmd("AUTH PLAIN " + auth_plain_blob(ALICE, self.alice_pw))
        self.assertReply(r, 538, "5.7.11")
        r = c.cmd("AUTH LOGIN")
        self.assertReply(r, 538, "5.7.11")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.test>"), 530, "5.7.0")  # RequireTLS
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.starttls()
        after = c.ehlo()
        auth = [l for l in after.lines if l.upper().startswith("AUTH")]
        self.assertEqual(len(auth), 1, f"one AUTH line after STARTTLS: {after}")
        self.assertEqual(set(auth[0].upper().split()[1:]), {"PLAIN", "LOGIN"}, after)
        r = c.cmd("AUTH PLAIN " + auth_plain_blob(ALICE, self.alice_pw))
        self.assertReply(r, 235, "2.7.0")
        self.assertReply(c.cmd("AUTH PLAIN " + auth_plain_blob(ALICE, self.alice_pw)), 503,
                         msg="a second AUTH after success: RFC 4954 §4 says 503")

    def test_default_connector_offers_no_auth(self):
        c, ehlo = self.raw_tls(port=self.starling.port)
        self.assertEqual([l for l in ehlo.lines if l.upper().startswith("AUTH")], [],
                         f"AUTH offered on a connector without BasicAuth: {ehlo}")
        r = c.cmd("AUTH PLAIN " + auth_plain_blob(ALICE, self.alice_pw))
        self.assertEqual(r.code, 503, r)

    def test_client_connector_as_setup_made_it(self):
        (conn,) = self.cli_json("get-receive-connector", self.client_connector())
        mech = {m.strip() for m in str(conn["AuthMechanism"]).split(",")}
        self.assertEqual(mech, {"Tls", "BasicAuth", "BasicAuthRequireTLS"}, conn)
        groups = conn["PermissionGroups"]
        groups = groups if isinstance(groups, list) else [g.strip() for g in groups.split(",")]
        self.assertEqual(groups, ["ExchangeUsers"], conn)
        self.assertTrue(conn["RequireTLS"], conn)
        self.assertEqual(conn["Bindings"], [f"{HOST}:{self.port}"], conn)


class AuthSuccess(AuthCase):
    def setUp(self):
        super().setUp()
        if not swaks_has_tls() and self._testMethodName.startswith("test_swaks"):
            self.fail("swaks cannot do TLS: Net::SSLeay missing (apt install libnet-ssleay-perl)")

    def check_swaks(self, mechanism):
        code, out, token = self.swaks(mechanism, ALICE, self.alice_pw)
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"=== TLS started", out)
        self.assertRegex(out, rf" ~> AUTH {mechanism}", out)
        self.assertRegex(out, r"<~  235 2\.7\.0", out)
        self.assertRegex(out, r"<~  250 2\.0\.0 OK queued as \S+", out)
        data = self.delivered_to(token)
        received = self.received_of(data)[0]
        self.assertRegex(received, r"\bwith ESMTPSA\b", received)
        self.assertTrue(self.wait_log(r"smtp\[\d+\] authenticated as alice@example\.test"),
                        "no 'smtp[N] authenticated as alice@example.test' in daemon.log")

    def test_swaks_auth_plain(self):
        self.check_swaks("PLAIN")

    def test_swaks_auth_login(self):
        self.check_swaks("LOGIN")

    def test_smtplib_starttls_login(self):
        s = self.smtp()
        self.assertEqual(set(s.esmtp_features.get("auth", "").upper().split()),
                         {"PLAIN", "LOGIN"}, s.esmtp_features)
        code, resp = s.login(ALICE, self.alice_pw)
        self.assertEqual(code, 235, resp)
        self.assertTrue(resp.startswith(b"2.7.0"), resp)
        token = unique_token("pylogin")
        stage, code, text = self.transaction(s, ALICE, BOB, token)
        self.assertEqual((stage, code), ("queued", 250), text)
        data = self.delivered_to(token)
        received = self.received_of(data)[0]
        self.assertRegex(received, r"\bwith ESMTPSA\b", received)
        self.assertIn("sub.client.test", received)

    def test_plain_after_334_and_login_step_by_step(self):
        c, _ = self.raw_tls()
        r = c.cmd("AUTH PLAIN")
        self.assertReply(r, 334)
        self.assertEqual(r.text.strip(), "", f"PLAIN's challenge is empty: {r}")
        self.assertReply(c.cmd(auth_plain_blob(ALICE, self.alice_pw)), 235, "2.7.0")
        c, _ = self.raw_tls()
        self.assertReply(self.login_exchange(c, BOB, self.bob_pw), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<bob@example.test>"), 250)

    def test_cancelled_exchange_is_501(self):
        # RFC 4954 §4: "*" cancels; the server MUST answer 501. AUTH may then be tried again.
        c, _ = self.raw_tls()
        self.assertReply(c.cmd("AUTH LOGIN"), 334)
        self.assertReply(c.cmd("*", timeout=REPLY_WAIT), 501)
        self.assertReply(c.cmd("AUTH PLAIN " + auth_plain_blob(ALICE, self.alice_pw),
                               timeout=REPLY_WAIT), 235, "2.7.0")


class AuthFailure(AuthCase):
    def wrong_then_right(self):
        """alice with a wrong password, then (same connection) the right one."""
        s = self.smtp()
        t0 = time.monotonic()
        code, text = self.auth_plain(s, ALICE, password("wrong"))
        took = time.monotonic() - t0
        retry = self.auth_plain(s, ALICE, self.alice_pw)
        return code, text, took, retry

    def unknown_user(self):
        s = self.smtp()
        t0 = time.monotonic()
        code, text = self.auth_plain(s, "nobody@example.test", password("nobody"))
        return code, text, time.monotonic() - t0

    def test_wrong_password_or_unknown_user_is_535_tarpitted_logged_with_event(self):
        mark = self.event_mark()
        wrong = Background(self.wrong_then_right)
        unknown = Background(self.unknown_user)
        s = self.smtp()
        time.sleep(0.5)
        # While both sit in the tarpit, a third client authenticates at once (a password check
        # is slow on purpose, Argon2id, but nowhere near a tarpit).
        t0 = time.monotonic()
        code, text = self.auth_plain(s, ALICE, self.alice_pw)
        took = time.monotonic() - t0
        self.assertEqual(code, 235, text)
        self.assertLess(took, PROMPT, f"a good AUTH took {took:.2f} s while others were tarpitted")
        code, text, took, retry = wrong.join()
        self.assertEqual(code, 535, text)
        self.assertTrue(text.startswith("5.7.8"), f"expected 535 5.7.8, got {code} {text}")
        self.assertGreaterEqual(took, TARPIT_MIN, f"535 after {took:.2f} s: not tarpitted")
        self.assertEqual(retry[0], 235, f"the right password after one failure: {retry}")
        code, text, took = unknown.join()
        self.assertEqual(code, 535, f"an unknown user is answered like a wrong password: {text}")
        self.assertTrue(text.startswith("5.7.8"), text)
        self.assertGreaterEqual(took, TARPIT_MIN, f"535 after {took:.2f} s: not tarpitted")
        for user in (ALICE, "nobody@example.test"):
            pattern = rf"smtp\[\d+\] AUTH failed for {re.escape(user)} from 127\.0\.0\.1"
            self.assertTrue(self.wait_log(pattern), f"no '{pattern}' in daemon.log")
            event = self.event_after(12040, mark, lambda e, u=user: e.get("User") == u)
            self.assertEqual(event.get("Name"), "SmtpAuthenticationFailed", event)
            self.assertIn(self.client_connector(), str(event.get("Connector")), event)
            self.assertEqual(event.get("ClientIp"), "127.0.0.1", event)
        self.assertTrue(self.log_lines(r"smtp\[\d+\] authenticated as alice@example\.test"))

    def three_plain_failures(self):
        c, _ = self.raw_tls()
        replies = []
        for _ in range(3):
            replies.append(c.cmd("AUTH PLAIN " + self.wrong_blob(), timeout=REPLY_WAIT))
        if replies[-1].code != 421:
            replies.append(c.reply(timeout=REPLY_WAIT))
        c.expect_closed(timeout=REPLY_WAIT)
        return replies

    def three_login_failures(self):
        c, _ = self.raw_tls()
        replies = []
        for i in range(3):
            replies.append(self.login_exchange(c, BOB, password(f"badlogin{i}")))
        if replies[-1].code != 421:
            replies.append(c.reply(timeout=REPLY_WAIT))
        c.expect_closed(timeout=REPLY_WAIT)
        return replies

    def wrong_blob(self):
        pw = password("badplain")
        self.tried.add((ALICE, pw))
        return auth_plain_blob(ALICE, pw)

    def test_three_failures_then_421_and_closed(self):
        t0 = time.monotonic()
        plain = Background(self.three_plain_failures)
        login = Background(self.three_login_failures)
        for name, task in (("PLAIN", plain), ("LOGIN", login)):
            replies = task.join()
            codes = [r.code for r in replies]
            self.assertEqual(codes[:2], [535, 535], f"{name}: {replies}")
            self.assertIn(codes[2:], ([535, 421], [421]),
                          f"{name}: after the third failure expected 421 and a close: {replies}")
            self.assertReply(replies[-1], 421, "4.7.0")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 2 * TARPIT_MIN, f"three failures took only {took:.2f} s")
        # The user is not locked out: a new connection may authenticate.
        code, text = self.auth_plain(self.smtp(), ALICE, self.alice_pw)
        self.assertEqual(code, 235, text)

    def test_changed_password_and_disabled_mailbox(self):
        old = self.alice_pw
        self.alice_pw = password("alice-new")
        self.tried.add((ALICE, self.alice_pw))
        self.set_mailbox(ALICE, password=self.alice_pw)
        self.set_mailbox(BOB, enabled=False)
        with_old = Background(lambda: self.auth_plain(self.smtp(), ALICE, old))
        disabled = Background(lambda: self.auth_plain(self.smtp(), BOB, self.bob_pw))
        code, text = self.auth_plain(self.smtp(), ALICE, self.alice_pw)
        self.assertEqual(code, 235, f"the new password: {text}")
        code, text = with_old.join()
        self.assertEqual(code, 535, f"the old password still works: {code} {text}")
        code, text = disabled.join()
        self.assertEqual(code, 535, f"a disabled mailbox authenticated: {code} {text}")


class AuthPermissions(AuthCase):
    def test_authenticated_user_relays_anonymous_cannot(self):
        sink = self.sink()
        self.smart_host_connector(sink.smart_host(), address_spaces="example.net")
        self.fast_retries()
        # Anonymous, on the Default connector: no relay.
        code, text = self.rcpt_reply("rcpt@example.net")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.7.54"), f"expected 550 5.7.54, got {code} {text}")
        # TLS but no AUTH, on the submission connector: nothing goes out either.
        noauth = unique_token("noauth")
        stage, code, text = self.transaction(self.smtp(), ALICE, "rcpt@example.net", noauth)
        self.assertNotEqual(stage, "queued", f"an unauthenticated client relayed: {code} {text}")
        self.assertEqual(code // 100, 5, f"{stage}: {code} {text}")
        # Authenticated: relayed through the send connector.
        s = self.smtp()
        self.assertEqual(self.auth_plain(s, ALICE, self.alice_pw)[0], 235)
        token = unique_token("authrelay")
        stage, code, qid_text = self.transaction(s, ALICE, "rcpt@example.net", token)
        self.assertEqual((stage, code), ("queued", 250), qid_text)
        msgs = sink.wait_messages(1, timeout=DELIVERY_WAIT, token=token)
        self.assertEqual(len(msgs), 1, f"not at the next hop: {sink.commands[-20:]}\n"
                         + "\n".join(self.outbound_lines()[-20:]))
        msg = msgs[0]
        self.assertEqual(msg.mail_from, ALICE)
        self.assertEqual(msg.rcpt_tos, ["rcpt@example.net"])
        received = self.received_of(msg.data)[0]
        self.assertRegex(received, r"\bwith ESMTPSA\b", received)
        self.assertEqual(sink.find(noauth), [], "the unauthenticated message went out")

    def test_send_only_as_own_addresses(self):
        s = self.smtp()
        self.assertEqual(self.auth_plain(s, ALICE, self.alice_pw)[0], 235)
        for sender in (ALICE, "al@example.test", "ALICE@Example.TEST"):
            token = unique_token("own")
            stage, code, text = self.transaction(s, sender, BOB, token)
            self.assertEqual((stage, code), ("queued", 250), f"as {sender}: {text}")
            self.delivered_to(token)
        for sender in (BOB, "someone@elsewhere.test"):
            token = unique_token("sendas")
            stage, code, text = self.transaction(s, sender, BOB, token)
            self.assertEqual(code, 550, f"alice sent as {sender}: {stage} {code} {text}")
            self.assertTrue(text.startswith("5.7.60"),
                            f"as {sender}: expected 550 5.7.60, got {stage} {code} {text}")
            time.sleep(0.5)
            self.assertEqual(self.starling.find(token), [], f"sent as {sender} anyway")


class Secrets(AuthCase):
    def test_get_mailbox_shows_has_password_never_the_password(self):
        self.new_mailbox("carol@example.test")
        for identity, has in ((ALICE, True), ("carol@example.test", False)):
            (mb,) = self.cli_json("get-mailbox", identity, "--property", "*")
            self.assertIs(mb.get("HasPassword"), has, mb)
            keys = [k for k in mb if "password" in k.lower() and k != "HasPassword"]
            self.assertEqual(keys, [], f"get-mailbox shows {keys}: {mb}")
        self.cli_ok("get-mailbox")
        self.cli_ok("get-mailbox", ALICE, "--format", "list", "--property", "*")
        self.assert_no_secrets()

    def test_password_not_stored_in_clear(self):
        store = b"".join(p.read_bytes() for p in self.starling.data_dir.glob("starling.db*")
                         if p.is_file())
        self.assertTrue(store, "no starling.db in the data directory")
        for pw in (self.alice_pw, self.bob_pw):
            for form in (pw, b64(pw), b64(pw).rstrip("=")):
                self.assertNotIn(form.encode(), store, f"the store holds {form!r} in clear")

    def test_no_secret_in_any_log_after_every_kind_of_auth(self):
        self.assertTrue(swaks_has_tls(), "swaks cannot do TLS (libnet-ssleay-perl)")
        mark = self.event_mark()
        # Failures first, side by side (each costs a tarpit).
        plain_wrong = Background(lambda: self.auth_plain(self.smtp(), ALICE, password("leak1")))
        plain_334_wrong = Background(lambda: self.auth_plain(self.smtp(), BOB, password("leak2"),
                                                             initial_response=False))

        def login_wrong():
            c, _ = self.raw_tls()
            return self.login_exchange(c, ALICE, password("leak3"))

        login_wrong_task = Background(login_wrong)
        # Successes meanwhile: swaks PLAIN and LOGIN, smtplib, PLAIN after 334, raw LOGIN.
        for mechanism in ("PLAIN", "LOGIN"):
            code, out, token = self.swaks(mechanism, ALICE, self.alice_pw)
            self.assertEqual(code, 0, out)
            self.delivered_to(token)
        s = self.smtp()
        self.assertEqual(s.login(BOB, self.bob_pw)[0], 235)
        self.assertEqual(self.auth_plain(self.smtp(), ALICE, self.alice_pw,
                                         initial_response=False)[0], 235)
        c, _ = self.raw_tls()
        self.assertReply(self.login_exchange(c, BOB, self.bob_pw), 235)
        # Before TLS (refused with 538, but the payload was sent in clear to the server).
        c = RawClient(self.port, timeout=REPLY_WAIT)
        self.addCleanup(c.close)
        c.greeting()
        c.ehlo()
        self.assertEqual(c.cmd("AUTH PLAIN " + auth_plain_blob(BOB, self.bob_pw)).code, 538)
        self.assertEqual(plain_wrong.join()[0], 535)
        self.assertEqual(plain_334_wrong.join()[0], 535)
        self.assertEqual(login_wrong_task.join().code, 535)
        self.event_after(12040, mark)
        # The Verbose protocol log did record the sessions (else this test proves little).
        logged = [name for name, text in self.secret_sources().items()
                  if not name.startswith("output of") and re.search(r"AUTH (PLAIN|LOGIN)", text)]
        self.assertTrue(logged, "no AUTH command in the Verbose protocol log (daemon.log or a "
                        "file of the data directory)")
        self.cli_ok("get-mailbox", "--property", "*")
        self.cli_ok("get-receive-connector", self.client_connector(), "--property", "*")
        self.assert_no_secrets()


if __name__ == "__main__":
    unittest.main()
