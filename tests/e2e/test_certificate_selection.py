"""Which certificate STARTTLS serves, event 12014 and the troubleshooter (docs/certificates.md,
§4, §6; docs/certificates.md), seen by real clients: `openssl s_client -starttls smtp` (the
served leaf's subject and SHA-1 thumbprint via `openssl x509 -fingerprint -sha1`) and the raw
SMTP client (is STARTTLS in the EHLO reply?). Test certificates come from a throw-away CA made
with the openssl CLI (cert_factory.py).

Each test has its own daemon; every change is applied live and the daemon's pid is checked
at the end. Events are looked for only after a mark (the newest event index before the change),
so an older 12014 never satisfies a newer expectation.

Choices where the model is silent, asserted here:
- A not-yet-valid certificate that is the only candidate is served (as an expired one is) and
  shows Status DateInvalid; no 12014 is logged for its name. When a currently valid certificate
  also qualifies, the valid one is served: a renewal imported ahead of its start date must not
  break STARTTLS for every client that checks dates.
- SNI naming the connector's own Fqdn gets the connector's certificate, so a TlsCertificateName
  pin is served to clients that send SNI too (most MTAs send the MX name).
- A certificate without a private key lists its name but cannot be used: condition (c), and the
  fix is a new certificate (enable-certificate refuses SMTP for it). Likewise clientAuth-only
  EKU, a key usage without digitalSignature/keyEncipherment, and X.509 v1, even when enabled.
- A pin names a certificate by issuer and subject and needs no SMTP enablement
  (docs/certificates.md); a pin that names nothing is a 12014 with the TlsCertificateName field.
"""

import datetime
import json
import re
import shlex
import shutil
import tempfile
import unittest
from pathlib import Path

from cert_factory import CertificateAuthority, now_utc, served_certificate
from starling_cli import CliMixin, describe
from starling_fixture import FQDN, SERVER_NAME, DaemonTestCase, RawClient

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"
CONTOSO = "mail.contoso.test"
CONDITION_A = "(a) no certificate lists {} in its CertificateDomains"
CONDITION_B = "(b) certificates list {} but are not enabled for SMTP"
CONDITION_C = ("(c) certificates list {} but lack a usable private key, are not X.509 v3, or "
               "their key usage forbids TLS server use")
DAY = datetime.timedelta(days=1)


class SelectionTestCase(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.pid = self.starling.proc.pid
        self.tmp = Path(tempfile.mkdtemp(prefix="starling-certsel-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self._ca = None

    # --- certificates -------------------------------------------------------------------------

    @property
    def ca(self):
        if self._ca is None:
            self._ca = CertificateAuthority(self.tmp / "ca")
        return self._ca

    def import_leaf(self, leaf, with_key=True):
        """Imports a CA-issued leaf (with its key unless told otherwise); returns its record."""
        self.cli_ok("import-certificate", leaf.with_key() if with_key else leaf.cert)
        (cert,) = self.cli_json("get-certificate", leaf.thumbprint)
        self.assertEqual(cert["Services"], "None", f"imported certificates start with None: {cert}")
        return cert

    def trust_ca(self):
        self.cli_ok("import-certificate", self.ca.cert, "--trusted-root")

    def enable_smtp(self, thumbprint):
        return self.cli_ok("enable-certificate", thumbprint, "--services", "SMTP")

    def new_self_signed(self, domain):
        """`new-certificate --domain D --services SMTP`; returns the thumbprint of the newest
        certificate whose subject is CN=D."""
        before = {c["Thumbprint"] for c in self.cli_json("get-certificate")}
        self.cli_ok("new-certificate", "--domain", domain, "--services", "SMTP")
        new = [c for c in self.cli_json("get-certificate") if c["Thumbprint"] not in before]
        self.assertEqual(len(new), 1, f"new-certificate made {len(new)} certificates: {new}")
        self.assertEqual(new[0]["Subject"], f"CN={domain}", new[0])
        return new[0]["Thumbprint"]

    def setup_thumbprint(self):
        (cert,) = [c for c in self.cli_json("get-certificate")
                   if c["Subject"] == f"CN={SERVER_NAME}"]
        return cert["Thumbprint"]

    # --- connectors and clients ---------------------------------------------------------------

    def set_fqdn(self, fqdn, connector=DEFAULT_CONNECTOR):
        self.cli_ok("set-receive-connector", connector, "--fqdn", fqdn)

    def ehlo(self):
        with RawClient(self.starling.port) as c:
            c.greeting()
            return c.ehlo()

    def assertStartTlsOffered(self, offered=True):
        reply = self.ehlo()
        if offered:
            self.assertIn("STARTTLS", reply.lines, f"STARTTLS not offered: {reply}")
        else:
            self.assertNotIn("STARTTLS", reply.lines, f"STARTTLS offered: {reply}")

    def served(self, servername):
        served, output = served_certificate(self.starling.port, servername, self.tmp)
        self.assertIsNotNone(served, f"no certificate presented:\n{output}")
        return served

    def assertServed(self, thumbprint, servername, subject=None):
        """The leaf presented to s_client with SNI `servername` (None: no SNI) is `thumbprint`."""
        served = self.served(servername)
        self.assertEqual(served.thumbprint, thumbprint,
                         f"SNI {servername!r}: served {served.subject} ({served.thumbprint}), "
                         f"expected {thumbprint}\n{self.describe_store()}\n{served.output}")
        if subject is not None:
            self.assertEqual(served.subject, subject)
        return served

    def describe_store(self):
        rows = [f"  {c['Thumbprint']} {c['Services']:<5} {c['Subject']} ({c['Status']}, "
                f"NotBefore {c['NotBefore']})" for c in self.cli_json("get-certificate")]
        return "certificates in the store:\n" + "\n".join(rows)

    def assertNotRestarted(self):
        self.assertTrue(self.starling.running(), "starlingd stopped")
        self.assertEqual(self.starling.proc.pid, self.pid, "starlingd was restarted")
        self.assertEqual(len(re.findall(r"starlingd: ready", self.starling.log_text())), 1,
                         "starlingd said 'ready' more than once")

    # --- events and the troubleshooter --------------------------------------------------------

    def mark(self):
        """The newest event index so far (events after it are 'new')."""
        return max((e["Index"] for e in self.events()), default=0)

    def new_event(self, event_id, since, timeout=10.0, **fields):
        """The first event `event_id` after index `since` whose fields equal `fields`."""
        def match(e):
            return e["Index"] > since and all(e.get(k) == v for k, v in fields.items())
        found = self.wait_event(match, "--id", str(event_id), timeout=timeout)
        self.assertIsNotNone(found, f"no event {event_id} with {fields} after index {since}; "
                                    f"events since:\n{self.events_since(since)}")
        return found

    def no_new_event(self, event_id, since, **fields):
        found = [e for e in self.events("--id", str(event_id)) if e["Index"] > since
                 and all(e.get(k) == v for k, v in fields.items())]
        self.assertEqual(found, [], f"unexpected event {event_id} with {fields}")

    def events_since(self, since):
        return "\n".join(f"  {e['Index']} {e['EventId']} {e['Level']} {e['Message']}"
                         for e in self.events() if e["Index"] > since)

    def troubleshoot(self, *args):
        """(exit status, entries) of `test-starttls --format json ARGS`."""
        r = self.cli("test-starttls", "--format", "json", *args)
        self.assertIn(r.returncode, (0, 1), describe(r))
        try:
            return r.returncode, json.loads(r.stdout), r
        except ValueError as e:
            self.fail(f"test-starttls printed no JSON ({e}):\n{describe(r)}")

    def troubleshooter_entry(self, connector, *args):
        code, entries, r = self.troubleshoot(*args)
        found = [e for e in entries if e["Connector"] == connector]
        self.assertEqual(len(found), 1, f"one entry for {connector!r} expected:\n{describe(r)}")
        return code, found[0], r

    def run_fix(self, fix):
        """Runs the command an event or the troubleshooter printed, as an administrator would."""
        argv = shlex.split(fix)
        self.assertEqual(argv[0], "starling", f"the fix is not a starling command: {fix!r}")
        return self.cli_ok(*argv[1:])

    def assertNotFound(self, event, fqdn, condition, kind="Receive", connector=DEFAULT_CONNECTOR):
        self.assertEqual(event["Level"], "Warning", event)
        self.assertEqual(event["Name"], "StartTlsCertificateNotFound", event)
        self.assertEqual(event["Fqdn"], fqdn, event)
        self.assertEqual(event["Connector"], connector, event)
        self.assertEqual(event["ConnectorKind"], kind, event)
        self.assertTrue(event["Condition"].startswith(condition.format(fqdn)),
                        f"Condition should start with {condition.format(fqdn)!r}: {event}")


def thumbprints(event):
    return [t.strip() for t in event["Thumbprints"].split(",")]


# --- 1. the two situations of the troubleshooting procedure ----------------------------------

class TroubleshootingSituations(SelectionTestCase):
    def test_fqdn_no_certificate_lists_then_fix_from_troubleshooter(self):
        self.assertStartTlsOffered()
        since = self.mark()
        self.set_fqdn(CONTOSO)
        self.assertStartTlsOffered(False)
        event = self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=CONTOSO)
        self.assertNotFound(event, CONTOSO, CONDITION_A)
        self.assertEqual(event["Thumbprints"], "none", event)
        fix = f"starling new-certificate --domain {CONTOSO} --services SMTP"
        self.assertEqual(event["Fix"], fix, event)

        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual(code, 1, f"unhealthy connector must exit 1:\n{describe(r)}")
        self.assertIs(entry["Healthy"], False, entry)
        self.assertEqual(entry["Kind"], "Receive", entry)
        self.assertEqual(entry["Fqdn"], CONTOSO, entry)
        self.assertTrue(entry["Condition"].startswith(CONDITION_A.format(CONTOSO)), entry)
        self.assertEqual(entry["Fix"], fix, entry)

        since = self.mark()
        self.run_fix(entry["Fix"])
        (first, *_) = self.cli_json("get-certificate", "--domain", CONTOSO)
        self.assertEqual(first["Subject"], f"CN={CONTOSO}", first)
        self.assertStartTlsOffered()
        self.assertServed(first["Thumbprint"], CONTOSO, subject=f"CN={CONTOSO}")

        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR, "--probe")
        self.assertEqual(code, 0, describe(r))
        self.assertIs(entry["Healthy"], True, entry)
        self.assertEqual(entry["Thumbprint"], first["Thumbprint"], entry)
        # Probed twice (docs/certificates.md): an RSA-only client and an ECDSA-first one both
        # get the RSA certificate when it is the only one.
        where = f"127.0.0.1:{self.starling.port}"
        served = f"TLSv1.3 with the selected RSA certificate {first['Thumbprint']}"
        self.assertEqual(entry["Probe"],
                         [f"{where} offering RSA only: {served}", f"{where} offering ECDSA first: {served}"],
                         entry)
        restored = self.new_event(12020, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(restored["Thumbprint"], first["Thumbprint"], restored)
        self.assertEqual(restored["Level"], "Information", restored)
        self.assertEqual(restored["Name"], "StartTlsCertificateRestored", restored)
        self.assertNotRestarted()

    def test_ca_issued_certificate_not_enabled_then_enabled_beats_newer_self_signed(self):
        self.set_fqdn(CONTOSO)
        leaf = self.ca.issue(CONTOSO)  # NotBefore a day ago: a later self-signed one is newer
        self.trust_ca()
        since = self.mark()
        cert = self.import_leaf(leaf)
        self.assertIs(cert["HasPrivateKey"], True, cert)
        self.assertEqual(cert["Status"], "Valid", f"chain to the imported root: {cert}")
        self.assertStartTlsOffered(False)
        event = self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=CONTOSO)
        self.assertNotFound(event, CONTOSO, CONDITION_B)
        self.assertIn(leaf.thumbprint, thumbprints(event), event)
        fix = f"starling enable-certificate {leaf.thumbprint} --services SMTP"
        self.assertEqual(event["Fix"], fix, event)
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual((code, entry["Healthy"], entry["Fix"]), (1, False, fix), describe(r))

        since = self.mark()
        self.run_fix(fix)
        self.assertStartTlsOffered()
        self.assertServed(leaf.thumbprint, CONTOSO, subject=f"CN={CONTOSO}")
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR, "--probe")
        self.assertEqual((code, entry["Healthy"], entry["Thumbprint"]),
                         (0, True, leaf.thumbprint), describe(r))
        restored = self.new_event(12020, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(restored["Thumbprint"], leaf.thumbprint, restored)

        # A newer self-signed certificate for the same name does not displace the trusted one.
        newer = self.new_self_signed(CONTOSO)
        self.assertServed(leaf.thumbprint, CONTOSO)
        ranking = [c["Thumbprint"] for c in self.cli_json("get-certificate", "--domain", CONTOSO)]
        self.assertEqual(ranking[:2], [leaf.thumbprint, newer], ranking)
        self.assertNotRestarted()

    def test_trusted_root_import_promotes_ca_issued_certificate(self):
        # Without its root the CA-issued certificate is ranked by date only, so the newer
        # self-signed one wins; importing the root is a change that re-ranks, no restart.
        self.set_fqdn(CONTOSO)
        leaf = self.ca.issue(CONTOSO)
        cert = self.import_leaf(leaf)
        self.assertEqual(cert["Status"], "Untrusted", cert)
        self.enable_smtp(leaf.thumbprint)
        self.assertServed(leaf.thumbprint, CONTOSO)
        newer = self.new_self_signed(CONTOSO)
        self.assertServed(newer, CONTOSO)
        self.trust_ca()
        self.assertServed(leaf.thumbprint, CONTOSO)
        ranking = [c["Thumbprint"] for c in self.cli_json("get-certificate", "--domain", CONTOSO)]
        self.assertEqual(ranking[:2], [leaf.thumbprint, newer], ranking)
        self.assertNotRestarted()


class Reporting(SelectionTestCase):
    def test_12014_logged_at_start_and_after_any_change_and_cleared_after_restart(self):
        since = self.mark()
        self.set_fqdn(CONTOSO)
        self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=CONTOSO)

        # Any configuration change logs it again (the one-hour suppression is lifted) ...
        since = self.mark()
        self.cli_ok("new-accepted-domain", "fabrikam.test")
        self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=CONTOSO)
        # ... a read-only command does not.
        since = self.mark()
        self.troubleshoot()
        self.cli_json("get-certificate", "--domain", CONTOSO)
        self.no_new_event(12014, since)

        # At start.
        self.starling.stop_checked()
        since = self.mark_offline()
        self.starling.start()
        self.pid = self.starling.proc.pid
        self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=CONTOSO)
        self.assertStartTlsOffered(False)

        # The daemon that started under 12014 says when it clears.
        since = self.mark()
        thumb = self.new_self_signed(CONTOSO)
        restored = self.new_event(12020, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(restored["Thumbprint"], thumb, restored)
        self.assertServed(thumb, CONTOSO)

    def mark_offline(self):
        r = self.cli_ok("get-event", "--offline", "--format", "json")
        return max((e["Index"] for e in json.loads(r.stdout)), default=0)


# --- 2. wildcards ----------------------------------------------------------------------------

class Wildcards(SelectionTestCase):
    def test_wildcard_covers_exactly_one_label(self):
        wildcard = self.new_self_signed("*.contoso.test")
        self.set_fqdn("smtp.contoso.test")
        self.assertStartTlsOffered()
        self.assertServed(wildcard, "smtp.contoso.test", subject="CN=*.contoso.test")
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual((code, entry["Thumbprint"]), (0, wildcard), describe(r))

        for name in ("a.b.contoso.test", "contoso.test"):
            with self.subTest(fqdn=name):
                since = self.mark()
                self.set_fqdn(name)
                self.assertStartTlsOffered(False)
                event = self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=name)
                self.assertNotFound(event, name, CONDITION_A)
                self.assertEqual(event["Thumbprints"], "none", event)
                code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
                self.assertEqual((code, entry["Healthy"]), (1, False), describe(r))
        self.assertNotRestarted()

    def test_exact_name_beats_trusted_wildcard(self):
        # The wildcard wins every other criterion (CA-issued, trusted chain); the exact name
        # still comes first.
        self.set_fqdn("smtp.contoso.test")
        exact = self.new_self_signed("smtp.contoso.test")
        self.trust_ca()
        wildcard = self.ca.issue("*.contoso.test")
        self.import_leaf(wildcard)
        self.enable_smtp(wildcard.thumbprint)
        self.assertServed(exact, "smtp.contoso.test", subject="CN=smtp.contoso.test")
        ranking = [c["Thumbprint"]
                   for c in self.cli_json("get-certificate", "--domain", "smtp.contoso.test")]
        self.assertEqual(ranking[0], exact, ranking)
        self.assertIn(wildcard.thumbprint, ranking, "the wildcard covers the name too")
        # ... and the wildcard is what a sibling name gets.
        self.set_fqdn("relay.contoso.test")
        self.assertServed(wildcard.thumbprint, "relay.contoso.test")
        self.assertNotRestarted()


# --- 3. dates --------------------------------------------------------------------------------

class Dates(SelectionTestCase):
    def test_expired_certificate_still_served_and_logs_12016(self):
        self.set_fqdn(CONTOSO)
        leaf = self.ca.issue(CONTOSO, not_before=now_utc() - 60 * DAY,
                             not_after=now_utc() - DAY)
        cert = self.import_leaf(leaf)
        self.assertEqual(cert["Status"], "DateInvalid", cert)
        since = self.mark()
        r = self.enable_smtp(leaf.thumbprint)  # allowed, with a warning
        self.assertRegex(r.stdout + r.stderr, re.compile(r"expired", re.I), describe(r))
        self.assertStartTlsOffered()
        self.assertServed(leaf.thumbprint, CONTOSO)
        event = self.new_event(12016, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(event["Level"], "Error", event)
        self.assertEqual(event["Name"], "StartTlsCertificateExpired", event)
        self.assertEqual(event["Thumbprint"], leaf.thumbprint, event)
        self.assertEqual(event["ConnectorKind"], "Receive", event)
        self.assertEqual(event["Fqdn"], CONTOSO, event)
        self.no_new_event(12014, since, Connector=DEFAULT_CONNECTOR)
        self.assertNotRestarted()

    def test_not_yet_valid_certificate_alone_is_served(self):
        self.set_fqdn(CONTOSO)
        leaf = self.ca.issue(CONTOSO, not_before=now_utc() + 10 * DAY,
                             not_after=now_utc() + 400 * DAY)
        cert = self.import_leaf(leaf)
        self.assertEqual(cert["Status"], "DateInvalid", cert)
        since = self.mark()
        self.enable_smtp(leaf.thumbprint)
        self.assertStartTlsOffered()
        self.assertServed(leaf.thumbprint, CONTOSO)
        self.no_new_event(12014, since, Connector=DEFAULT_CONNECTOR)
        self.assertNotRestarted()

    def assertValidServedBeforeRenewal(self, trusted):
        self.set_fqdn(CONTOSO)
        current = self.ca.issue(CONTOSO, not_before=now_utc() - 300 * DAY,
                                not_after=now_utc() + 60 * DAY)
        renewal = self.ca.issue(CONTOSO, not_before=now_utc() + 30 * DAY,
                                not_after=now_utc() + 430 * DAY)
        if trusted:
            self.trust_ca()
        for leaf in (current, renewal):
            self.import_leaf(leaf)
            self.enable_smtp(leaf.thumbprint)
        self.assertServed(current.thumbprint, CONTOSO)
        (first, *_) = self.cli_json("get-certificate", "--domain", CONTOSO)
        self.assertEqual(first["Thumbprint"], current.thumbprint,
                         "get-certificate --domain must rank the one in use first")
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual(entry["Thumbprint"], current.thumbprint, describe(r))
        self.assertNotRestarted()

    def test_valid_certificate_served_while_trusted_renewal_is_not_yet_valid(self):
        self.assertValidServedBeforeRenewal(trusted=True)

    def test_valid_certificate_served_while_untrusted_renewal_is_not_yet_valid(self):
        # Same CA, root not imported: both are ranked by date alone.
        self.assertValidServedBeforeRenewal(trusted=False)

    def test_certificate_expiring_within_30_days_logs_12018(self):
        self.set_fqdn(CONTOSO)
        safe = self.ca.issue(CONTOSO, not_before=now_utc() - 2 * DAY,
                             not_after=now_utc() + 60 * DAY)
        soon = self.ca.issue(CONTOSO, not_before=now_utc() - DAY,
                             not_after=now_utc() + 10 * DAY)
        self.import_leaf(safe)
        since = self.mark()
        self.enable_smtp(safe.thumbprint)
        self.assertServed(safe.thumbprint, CONTOSO)
        self.no_new_event(12018, since)  # 60 days left: outside the window

        self.import_leaf(soon)
        since = self.mark()
        self.enable_smtp(soon.thumbprint)  # newer NotBefore: chosen
        self.assertServed(soon.thumbprint, CONTOSO)
        event = self.new_event(12018, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(event["Level"], "Warning", event)
        self.assertEqual(event["Name"], "StartTlsCertificateExpiresSoon", event)
        self.assertEqual(event["Thumbprint"], soon.thumbprint, event)
        self.assertEqual(event["Fqdn"], CONTOSO, event)
        hours = int(event["HoursRemaining"])
        self.assertTrue(10 * 24 - 2 <= hours <= 10 * 24, f"HoursRemaining {hours}: {event}")
        self.no_new_event(12016, since)
        self.assertNotRestarted()


# --- 4. certificates that list the name but cannot serve it ----------------------------------

class Unusable(SelectionTestCase):
    def assertUnusable(self, name, thumbprint):
        since = self.mark()
        self.set_fqdn(name)
        self.assertStartTlsOffered(False)
        event = self.new_event(12014, since, Connector=DEFAULT_CONNECTOR, Fqdn=name)
        self.assertNotFound(event, name, CONDITION_C)
        self.assertIn(thumbprint, thumbprints(event), event)
        self.assertEqual(event["Fix"], f"starling new-certificate --domain {name} --services SMTP",
                         event)
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual((code, entry["Healthy"]), (1, False), describe(r))
        self.assertTrue(entry["Condition"].startswith(CONDITION_C.format(name)), entry)

    def test_certificate_without_private_key(self):
        leaf = self.ca.issue("nokey.contoso.test")
        cert = self.import_leaf(leaf, with_key=False)
        self.assertIs(cert["HasPrivateKey"], False, cert)
        self.cli_fails(1, r"private key", "enable-certificate", leaf.thumbprint,
                       "--services", "SMTP")
        (cert,) = self.cli_json("get-certificate", leaf.thumbprint)
        self.assertEqual(cert["Services"], "None", "a refused enable changed the services")
        self.assertUnusable("nokey.contoso.test", leaf.thumbprint)
        self.assertNotRestarted()

    def test_client_auth_only_certificate(self):
        leaf = self.ca.issue("client.contoso.test", eku="clientAuth")
        self.import_leaf(leaf)
        self.enable_smtp(leaf.thumbprint)
        self.assertUnusable("client.contoso.test", leaf.thumbprint)
        self.assertNotRestarted()

    def test_key_usage_without_signature_or_key_encipherment(self):
        leaf = self.ca.issue("nonrep.contoso.test", key_usage="critical,nonRepudiation")
        self.import_leaf(leaf)
        self.enable_smtp(leaf.thumbprint)
        self.assertUnusable("nonrep.contoso.test", leaf.thumbprint)
        self.assertNotRestarted()

    def test_x509_version_1_certificate(self):
        leaf = self.ca.issue("v1.contoso.test", v1=True)
        self.import_leaf(leaf)
        self.enable_smtp(leaf.thumbprint)
        self.assertUnusable("v1.contoso.test", leaf.thumbprint)
        self.assertNotRestarted()


# --- 5. TlsCertificateName -------------------------------------------------------------------

class Pinning(SelectionTestCase):
    def pin(self, value):
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--tls-certificate-name", value)

    def test_pin_overrides_fqdn_and_bogus_pin_logs_12014(self):
        # The connector keeps Fqdn mail.example.test, which the SMTP-enabled setup certificate
        # covers; the pin names a CA-issued certificate for another name (not enabled for SMTP:
        # docs/certificates.md, a pin does not need it).
        setup = self.setup_thumbprint()
        leaf = self.ca.issue("pinned.contoso.test")
        cert = self.import_leaf(leaf)
        self.assertEqual((cert["Issuer"], cert["Subject"]),
                         ("CN=Test CA", "CN=pinned.contoso.test"), cert)
        self.pin(f"<I>{cert['Issuer']}<S>{cert['Subject']}")
        self.assertStartTlsOffered()
        self.assertServed(leaf.thumbprint, None)
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual((code, entry["Thumbprint"]), (0, leaf.thumbprint), describe(r))

        since = self.mark()
        bogus = "<I>CN=Nobody CA<S>CN=nothing.contoso.test"
        self.pin(bogus)
        self.assertStartTlsOffered(False)
        event = self.new_event(12014, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(event["Fqdn"], FQDN, event)
        self.assertEqual(event.get("TlsCertificateName"), bogus, event)
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual((code, entry["Healthy"]), (1, False), describe(r))

        since = self.mark()
        self.pin("")  # cleared: the name rule again
        self.assertStartTlsOffered()
        self.assertServed(setup, FQDN)
        restored = self.new_event(12020, since, Connector=DEFAULT_CONNECTOR)
        self.assertEqual(restored["Thumbprint"], setup, restored)
        self.assertNotRestarted()

    def test_pinned_certificate_served_to_clients_sending_sni_for_the_fqdn(self):
        # Real MTAs send SNI = the MX name = the connector's Fqdn. The setup certificate covers
        # that name and is enabled for SMTP, but the connector pins another one.
        leaf = self.ca.issue("pinned.contoso.test")
        cert = self.import_leaf(leaf)
        self.enable_smtp(leaf.thumbprint)
        self.pin(f"<I>{cert['Issuer']}<S>{cert['Subject']}")
        self.assertServed(leaf.thumbprint, None)
        self.assertServed(leaf.thumbprint, FQDN)
        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR, "--probe")
        self.assertEqual((code, entry["Healthy"]), (0, True), describe(r))
        self.assertNotRestarted()


# --- 6. SNI ----------------------------------------------------------------------------------

class Sni(SelectionTestCase):
    def test_sni_picks_smtp_enabled_certificate_for_named_host(self):
        setup = self.setup_thumbprint()
        other = self.new_self_signed("other.contoso.test")
        # Covers its name but is not enabled for SMTP: never served through SNI.
        disabled = self.ca.issue("disabled.contoso.test")
        self.import_leaf(disabled)

        self.assertServed(other, "other.contoso.test", subject="CN=other.contoso.test")
        self.assertServed(setup, FQDN, subject=f"CN={SERVER_NAME}")
        self.assertServed(setup, "unknown.test")
        self.assertServed(setup, None)
        self.assertServed(setup, "disabled.contoso.test")

        # Enabled later: the next handshake naming it gets it.
        self.enable_smtp(disabled.thumbprint)
        self.assertServed(disabled.thumbprint, "disabled.contoso.test")
        self.assertServed(setup, None)
        self.assertNotRestarted()


# --- 7. send connectors ----------------------------------------------------------------------

class SendConnectors(SelectionTestCase):
    def test_send_connector_without_then_with_certificate(self):
        since = self.mark()
        self.cli_ok("new-send-connector", "--name", "Outbound", "--address-spaces", "*",
                    "--fqdn", "out.contoso.test")
        event = self.new_event(12014, since, Connector="Outbound")
        self.assertNotFound(event, "out.contoso.test", CONDITION_A, kind="Send",
                            connector="Outbound")
        self.assertEqual(event["Fix"], "starling new-certificate --domain out.contoso.test "
                                       "--services SMTP", event)
        # The receive side is not affected.
        self.assertStartTlsOffered()

        code, entries, r = self.troubleshoot()
        self.assertEqual(code, 1, describe(r))
        by_name = {e["Connector"]: e for e in entries}
        self.assertEqual(set(by_name), {DEFAULT_CONNECTOR, "Outbound"}, describe(r))
        self.assertEqual((by_name["Outbound"]["Kind"], by_name["Outbound"]["Healthy"]),
                         ("Send", False), describe(r))
        self.assertIs(by_name[DEFAULT_CONNECTOR]["Healthy"], True, describe(r))
        code, only, r = self.troubleshoot("--connector", "Outbound")
        self.assertEqual((code, [e["Connector"] for e in only]), (1, ["Outbound"]), describe(r))

        since = self.mark()
        thumb = self.new_self_signed("out.contoso.test")
        code, entry, r = self.troubleshooter_entry("Outbound")
        self.assertEqual((code, entry["Kind"], entry["Healthy"], entry["Thumbprint"]),
                         (0, "Send", True, thumb), describe(r))
        restored = self.new_event(12020, since, Connector="Outbound")
        self.assertEqual((restored["ConnectorKind"], restored["Thumbprint"]), ("Send", thumb),
                         restored)
        self.assertNotRestarted()


if __name__ == "__main__":
    unittest.main()
