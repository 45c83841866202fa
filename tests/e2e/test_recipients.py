"""Recipients end to end: mailboxes with aliases, distribution groups, and the three accepted
domain types (docs/mailbox-delivery.md), driven over SMTP against a real starlingd.

What a test expects from the daemon: an unknown recipient at an Authoritative domain gets
`550 5.1.1` after the tarpit (5 s by default) and counts as a protocol error; every address of a
mailbox (primary, aliases, any case) lands in one Maildir named after the primary address,
DIR/mailboxes/<domain>/<primary local part>/new/, once per message; a distribution group is
expanded to its members; an InternalRelay domain delivers the recipients it knows and sends the
rest on through the matching send connector; an ExternalRelay domain delivers nothing here;
`starling setup` creates postmaster@<each accepted domain>; delivered files start with
`Return-Path:` and carry one `Delivered-To:`.

Each test has its own daemon (starting one takes half a second); next hops are aiosmtpd sinks
(peers.Sink) behind smart-host send connectors, as in test_outbound.py.
"""

import json
import time
import unittest

from peers import Sink
from starling_cli import RecipientMixin, run_starling, describe
from starling_fixture import (Background, HOST, SERVER_NAME, DaemonTestCase, RawClient, free_port,
                              unfolded_headers, unique_token)

TARPIT = 5.0          # the default TarpitInterval
TARPIT_MIN = 4.0      # what a tarpitted reply must at least take (timer slack)
PROMPT = 3.0          # what an untarpitted reply (or a whole short transaction) may take
DELIVERY_WAIT = 20.0
SENDER = "sender@client.test"


def header_values(data, name):
    return [v for n, v in unfolded_headers(data) if n.lower() == name.lower()]


class RecipientCase(DaemonTestCase, RecipientMixin):
    mailboxes = ()  # these tests create the recipients they need
    submission = True
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.new_mailbox("alice@example.test", name="Alice",
                         email_addresses=["al@example.test", "alice.smith@example.test"])
        self.new_mailbox("bob@example.test", name="Bob")

    # --- helpers ---------------------------------------------------------------------------

    def sink(self, **kw):
        peer = Sink(**kw)
        peer.start()
        self.addCleanup(peer.stop)
        return peer

    def maildirs_with_mail(self):
        """'domain/user' of every Maildir holding a message in new/."""
        base = self.starling.data_dir / "mailboxes"
        return sorted(f"{d.parent.parent.name}/{d.parent.name}" for d in base.glob("*/*/new")
                      if any(p.is_file() for p in d.iterdir()))

    def send(self, rcpts, token, sender=SENDER, extra_headers=""):
        """One transaction on the Default connector (anonymous); every RCPT must get 250."""
        rcpts = [rcpts] if isinstance(rcpts, str) else list(rcpts)
        data = self.make_message(token, extra_headers, sender=sender or "null@client.test",
                                 to=rcpts[0])
        return self.submit(rcpts, data, sender=sender)

    def copies(self, token, user, domain="example.test", count=1, settle=1.0):
        """The files with `token` in <user>@<domain>'s Maildir: waits for `count`, then
        `settle` s more so that a duplicate would have arrived too."""
        found = self.starling.wait_for(token, user=user, domain=domain, timeout=DELIVERY_WAIT,
                                       count=count)
        self.assertGreaterEqual(len(found), count,
                                f"{token} not in {domain}/{user}/new within {DELIVERY_WAIT} s; "
                                f"Maildirs with mail: {self.maildirs_with_mail()}")
        time.sleep(settle)
        return self.starling.find(token, user=user, domain=domain)

    def wait_sink(self, peer, token, count=1):
        msgs = peer.wait_messages(count, timeout=DELIVERY_WAIT, token=token)
        self.assertGreaterEqual(len(msgs), count,
                                f"{token} not at the next hop within {DELIVERY_WAIT} s; it saw "
                                f"{peer.connections} connection(s), commands "
                                f"{peer.commands[-20:]}\noutbound lines:\n"
                                + "\n".join(self.outbound_lines()[-20:]))
        return msgs

    def timed(self, c, line):
        t0 = time.monotonic()
        r = c.cmd(line)
        return r, time.monotonic() - t0

    def relay_domain(self, domain, domain_type, peer):
        """Accepted domain `domain` of `domain_type` whose mail leaves through a smart-host send
        connector to `peer`; one-second retries."""
        self.new_accepted_domain(domain, domain_type)
        self.smart_host_connector(peer.smart_host(), name=f"Out {domain_type}",
                                  address_spaces=domain)
        self.fast_retries()


class UnknownRecipients(RecipientCase):
    def test_unknown_recipient_is_550_5_1_1_after_the_tarpit_and_a_protocol_error(self):
        # Two protocol errors close the connection: the 550 5.1.1 and then one EXPN.
        self.cli_ok("set-receive-connector", f"Default {SERVER_NAME}",
                    "--max-protocol-errors", "2")
        token = unique_token("unknown")
        meanwhile_token = unique_token("meanwhile")

        def meanwhile():
            # Another client, during the tarpit, is served at once: the tarpit holds one
            # connection, not the daemon.
            time.sleep(1.0)
            t0 = time.monotonic()
            with RawClient(self.starling.port, timeout=20) as o:
                self.send_message(o, meanwhile_token, meanwhile_token, rcpt="bob@example.test")
            return time.monotonic() - t0

        c = self.client(timeout=30)
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        other = Background(meanwhile)
        r, took = self.timed(c, "RCPT TO:<nobody@example.test>")
        self.assertReply(r, 550, "5.1.1")
        self.assertGreaterEqual(took, TARPIT_MIN,
                                f"550 5.1.1 came after {took:.2f} s: not tarpitted ({TARPIT} s)")
        self.assertLess(took, TARPIT + 10, f"550 5.1.1 took {took:.2f} s")
        other_took = other.join()
        self.assertLess(other_took, PROMPT,
                        f"a second client's transaction took {other_took:.2f} s while the first "
                        "connection was tarpitted")
        # The transaction goes on for the known recipient, without a delay.
        r, took = self.timed(c, "RCPT TO:<alice@example.test>")
        self.assertReply(r, 250)
        self.assertLess(took, PROMPT, f"a known recipient after an unknown one took {took:.2f} s")
        self.assertReply(c.cmd("DATA"), 354)
        self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\nbody {token}\r\n."))
        self.assertEqual(len(self.copies(token, "alice", settle=0)), 1)
        # The 550 counted: one more protocol error reaches MaxProtocolErrors 2.
        r = c.cmd("EXPN staff")
        self.assertEqual(r.code // 100, 5, f"EXPN: {r}")
        closing = c.reply(timeout=TARPIT + 10)
        self.assertReply(closing, 421, "4.7.0",
                         msg=f"the 550 5.1.1 was not counted as a protocol error (MaxProtocolErrors"
                             f" 2): after EXPN's {r.code} came {closing}")
        c.expect_closed()
        self.assertFalse((self.starling.data_dir / "mailboxes/example.test/nobody").exists(),
                         "a Maildir was made for an unknown recipient")
        self.assertEqual(len(self.copies(meanwhile_token, "bob", settle=0)), 1)

    def test_removed_mailbox_becomes_unknown(self):
        self.new_mailbox("gone@example.test")
        token = unique_token("before")
        self.send("gone@example.test", token)
        self.copies(token, "gone", settle=0)
        self.remove_mailbox("gone@example.test")
        self.assertEqual([m for m in self.get_mailbox() if "gone@example.test" in
                          json.dumps(m).lower()], [], "get-mailbox still lists it")
        code, text = self.rcpt_reply("gone@example.test")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), f"expected 550 5.1.1, got {code} {text}")


class Mailboxes(RecipientCase):
    def test_primary_alias_and_case_variants_share_one_maildir(self):
        mailbox = self.get_mailbox("alice@example.test")
        self.assertEqual(len(mailbox), 1, mailbox)
        shown = json.dumps(mailbox).lower()
        for a in ("alice@example.test", "al@example.test", "alice.smith@example.test"):
            self.assertIn(a, shown, f"get-mailbox does not show {a}: {mailbox}")
        addresses = ["alice@example.test", "al@example.test", "ALICE@EXAMPLE.TEST",
                     "Al@Example.Test", "alice.smith@EXAMPLE.test"]
        tokens = []
        for a in addresses:
            token = unique_token("alias")
            tokens.append(token)
            self.send(a, token)
        for a, token in zip(addresses, tokens):
            self.assertEqual(len(self.copies(token, "alice", settle=0)), 1,
                             f"mail to {a} is not in example.test/alice/new once")
        time.sleep(0.5)
        self.assertEqual(self.maildirs_with_mail(), ["example.test/alice"],
                         "mail to aliases or case variants made Maildirs of their own")

    def test_one_copy_per_mailbox_however_many_of_its_addresses_are_named(self):
        self.new_distribution_group("team@example.test",
                                    ["alice@example.test", "bob@example.test"])
        token = unique_token("dedup")
        self.send(["alice@example.test", "al@example.test", "ALICE@example.test",
                   "team@example.test"], token)
        alice = self.copies(token, "alice", settle=1.5)
        self.assertEqual(len(alice), 1, f"alice got {len(alice)} copies: {alice}")
        self.assertEqual(len(self.copies(token, "bob", settle=0)), 1)

    def test_distribution_group_expanded_one_copy_per_member(self):
        self.new_mailbox("carol@example.test")
        self.new_distribution_group("team@example.test",
                                    ["alice@example.test", "bob@example.test",
                                     "carol@example.test"])
        token = unique_token("group")
        self.send("team@example.test", token)
        for member in ("alice", "bob", "carol"):
            got = self.copies(token, member, settle=0)
            self.assertEqual(len(got), 1, f"{member}: {got}")
        time.sleep(1.0)
        for member in ("alice", "bob", "carol"):
            (path,) = self.starling.find(token, user=member)
            data = self.starling.read(path)
            self.assertEqual(header_values(data, "Delivered-To"), [f"{member}@example.test"],
                             f"{member}'s copy:\n{data[:600]!r}")
            self.assertIn(b"To: <team@example.test>", data, "the header was rewritten")
        self.assertEqual(self.maildirs_with_mail(),
                         ["example.test/alice", "example.test/bob", "example.test/carol"],
                         "a group got a Maildir of its own")

    def test_return_path_and_delivered_to(self):
        token = unique_token("trace")
        self.send("alice@example.test", token)
        (path,) = self.copies(token, "alice")
        data = self.starling.read(path)
        headers = unfolded_headers(data)
        names = [n.lower() for n, _ in headers]
        self.assertEqual(headers[0], ("Return-Path", f"<{SENDER}>"),
                         f"the first header must be Return-Path (RFC 5321 §4.4):\n{data[:600]!r}")
        self.assertEqual(names.count("return-path"), 1, data[:600])
        self.assertEqual(header_values(data, "Delivered-To"), ["alice@example.test"],
                         data[:600])
        self.assertIn("received", names, data[:600])
        self.assertLess(names.index("delivered-to"), names.index("received"),
                        f"Delivered-To comes before Received:\n{data[:600]!r}")
        # The null reverse path is <>.
        token = unique_token("null")
        self.send("bob@example.test", token, sender="")
        (path,) = self.copies(token, "bob")
        data = self.starling.read(path)
        self.assertEqual(unfolded_headers(data)[0], ("Return-Path", "<>"), data[:600])
        self.assertEqual(header_values(data, "Delivered-To"), ["bob@example.test"], data[:600])
        # Through an alias: one Delivered-To, naming the mailbox (or the alias).
        token = unique_token("viaalias")
        self.send("al@example.test", token)
        (path,) = self.copies(token, "alice")
        got = header_values(self.starling.read(path), "Delivered-To")
        self.assertEqual(len(got), 1, got)
        self.assertIn(got[0].lower(), ("alice@example.test", "al@example.test"), got)


class Postmaster(RecipientCase):
    def test_postmaster_exists_after_setup_and_receives_mail(self):
        found = self.get_mailbox("postmaster@example.test")
        self.assertEqual(len(found), 1, f"get-mailbox postmaster@example.test: {found}")
        self.assertIn("postmaster@example.test", json.dumps(found).lower())
        tokens = [unique_token("pm"), unique_token("pmcase")]
        self.send("postmaster@example.test", tokens[0])
        self.send("PostMaster@Example.Test", tokens[1])
        for token in tokens:
            self.assertEqual(len(self.copies(token, "postmaster", settle=0)), 1)

    def test_bare_postmaster_is_accepted(self):
        # RFC 5321 §4.5.1: RCPT TO:<Postmaster> without a domain must be accepted.
        token = unique_token("barepm")
        c = self.client()
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        self.assertReply(c.cmd("RCPT TO:<Postmaster>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        self.assertQueued(c.cmd(f"Subject: {token}\r\n\r\nbody {token}\r\n."))
        self.assertEqual(len(self.copies(token, "postmaster", settle=0)), 1)

    def test_setup_creates_postmaster_for_each_accepted_domain(self):
        d = self.starling.root / "two-domains"
        cmd = ["setup", "--data-dir", str(d), "--server-name", "mx2",
               "--fqdn", "mail.a.test", "--listen", f"{HOST}:{free_port()}",
               "--submission-listen", f"{HOST}:{free_port()}",
               "--accepted-domain", "a.test", "--accepted-domain", "b.test"]
        r = run_starling(d, *cmd)
        self.assertEqual(r.returncode, 0, describe(r))
        r = run_starling(d, "get-mailbox", "--offline", "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))
        shown = json.loads(r.stdout)
        text = json.dumps(shown).lower()
        for a in ("postmaster@a.test", "postmaster@b.test"):
            self.assertIn(a, text, f"setup made no {a}: {shown}")
        self.assertEqual(len(shown), 2, f"setup makes exactly the postmaster mailboxes: {shown}")


class RelayDomains(RecipientCase):
    def test_internal_relay_delivers_known_recipients_and_sends_the_rest_on(self):
        sink = self.sink()
        self.relay_domain("relay.test", "InternalRelay", sink)
        self.new_mailbox("erin@relay.test")
        token = unique_token("internal")
        t0 = time.monotonic()
        qid = self.send(["erin@relay.test", "ghost@relay.test"], token)
        took = time.monotonic() - t0
        self.assertLess(took, PROMPT, f"the transaction took {took:.2f} s: an unknown recipient "
                        "at an InternalRelay domain is not tarpitted")
        self.assertEqual(len(self.copies(token, "erin", domain="relay.test", settle=0)), 1)
        (msg,) = self.wait_sink(sink, token)
        self.assertEqual(msg.rcpt_tos, ["ghost@relay.test"],
                         "only the unknown recipient goes to the next hop")
        self.assertEqual(msg.mail_from, SENDER)
        names = [n.lower() for n, _ in unfolded_headers(msg.data)]
        self.assertNotIn("return-path", names, "a relayed message got Return-Path")
        self.assertNotIn("delivered-to", names, "a relayed message got Delivered-To")
        self.wait_outbound("delivered", qid, "ghost@relay.test")
        time.sleep(1.0)
        self.assertEqual(self.maildirs_with_mail(), ["relay.test/erin"])
        self.assertEqual(len(sink.find(token)), 1, "sent on twice")

    def test_external_relay_delivers_nothing_here(self):
        sink = self.sink()
        self.relay_domain("ext.test", "ExternalRelay", sink)
        rcpts = ["postmaster@ext.test", "someone@ext.test"]
        # A mailbox may not take an ext.test address (the shell says why); were it allowed,
        # mail to that address must still leave.
        r = self.cli("new-mailbox", "--address", "frank@example.test",
                     "--email-addresses", "smtp:frank@ext.test")
        if r.returncode == 0:
            rcpts.append("frank@ext.test")
        else:
            self.assertIn("ExternalRelay", r.stderr, describe(r))
        token = unique_token("external")
        qid = self.send(rcpts, token)
        msgs = self.wait_sink(sink, token)
        got = sorted(r for m in msgs for r in m.rcpt_tos)
        self.assertEqual(got, sorted(rcpts), f"at the next hop: {msgs}")
        for rcpt in rcpts:
            self.wait_outbound("delivered", qid, rcpt)
        time.sleep(1.0)
        self.assertEqual(self.maildirs_with_mail(), [],
                         "an ExternalRelay domain delivered mail here")
        self.assertEqual(self.starling.find(token), [])

    def test_authoritative_domain_added_later_refuses_unknown(self):
        self.new_accepted_domain("auth2.test", "Authoritative")
        self.new_mailbox("gina@auth2.test")
        token = unique_token("auth2")
        self.send("gina@auth2.test", token)
        self.assertEqual(len(self.copies(token, "gina", domain="auth2.test", settle=0)), 1)
        code, text = self.rcpt_reply("nobody@auth2.test")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), f"expected 550 5.1.1, got {code} {text}")


if __name__ == "__main__":
    unittest.main()
