"""Dual RSA and ECDSA certificates (docs/certificates.md, "Dual certificates"), seen by real
clients: `starling setup --ecdsa` and `new-certificate --ecdsa` make the pair; `openssl s_client
-starttls smtp -sigalgs ...` offering ECDSA gets the ECDSA certificate and one offering RSA only
gets the RSA one (the served leaf's key type read with `openssl x509 -text`); Python smtplib
sends mail over STARTTLS; `test-starttls --probe` names both; and an ECDSA certificate expiring
beside a valid RSA one logs 12018 for the ECDSA one.
"""

import hashlib
import json
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from cert_factory import PEM_CERT_RE, thumbprint_of
from starling_cli import CliMixin, describe
from starling_fixture import HOST, SERVER_NAME, DaemonTestCase, Starling, tls_client_context, unique_token

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"
ECDSA_ONLY = "ECDSA+SHA256"
RSA_ONLY = "RSA-PSS+SHA256:RSA+SHA256"


class DualStarling(Starling):
    """A test daemon whose data directory was made by `starling setup ... --ecdsa`."""

    def setup(self):
        run = subprocess.run

        def with_ecdsa(cmd, *args, **kw):
            return run([*cmd, "--ecdsa"] if cmd[1:2] == ["setup"] else cmd, *args, **kw)

        # The fixture's own setup command, with one more option: no copy of it to drift.
        with mock.patch("subprocess.run", with_ecdsa):
            super().setup()


def served_leaf(port, sigalgs, workdir):
    """(thumbprint, key type "RSA"/"ECDSA", s_client output) of the leaf presented to `openssl
    s_client -starttls smtp -sigalgs SIGALGS`; (None, None, output) when none was."""
    cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect", f"{HOST}:{port}", "-sigalgs", sigalgs]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    output = f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}"
    certs = PEM_CERT_RE.findall(r.stdout)
    if not certs:
        return None, None, output
    leaf = Path(workdir) / f"served-{sigalgs.replace(':', '_').replace('+', '-')}.pem"
    leaf.write_text(certs[0])
    text = subprocess.run(["openssl", "x509", "-in", str(leaf), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    key_type = "ECDSA" if "id-ecPublicKey" in text else "RSA" if "rsaEncryption" in text else text
    return thumbprint_of(leaf), key_type, output


class EcdsaTestCase(CliMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="starling-ecdsa-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def certificates_by_type(self):
        by_type = {}
        for c in self.cli_json("get-certificate"):
            by_type.setdefault(c["KeyAlgorithm"], []).append(c)
        return by_type

    def assertServedType(self, sigalgs, key_type, thumbprint):
        served, served_type, output = served_leaf(self.starling.port, sigalgs, self.tmp)
        self.assertIsNotNone(served, f"no certificate presented:\n{output}")
        self.assertEqual((served_type, served), (key_type, thumbprint), f"-sigalgs {sigalgs}:\n{output}")

    def troubleshooter_entry(self, *args):
        r = self.cli("test-starttls", "--format", "json", *args)
        self.assertIn(r.returncode, (0, 1), describe(r))
        entries = [e for e in json.loads(r.stdout) if e["Connector"] == DEFAULT_CONNECTOR]
        self.assertEqual(len(entries), 1, describe(r))
        return r.returncode, entries[0], r


class SetupWithEcdsa(EcdsaTestCase):
    """One daemon set up with --ecdsa, shared by the tests of this class (none changes it)."""

    @classmethod
    def setUpClass(cls):
        cls.starling = DualStarling(mailboxes=cls.mailboxes)
        try:
            cls.starling.start()
        except BaseException:
            cls.starling.remove()
            raise

    def pair(self):
        by_type = self.certificates_by_type()
        self.assertEqual(sorted(by_type), ["ECDSA", "RSA"], by_type)
        (rsa,), (ecdsa,) = by_type["RSA"], by_type["ECDSA"]
        return rsa, ecdsa

    def test_setup_creates_both_for_the_same_names_enabled_for_smtp(self):
        rsa, ecdsa = self.pair()
        for c in (rsa, ecdsa):
            self.assertEqual(c["Services"], "SMTP", c)
            self.assertEqual(c["Subject"], f"CN={SERVER_NAME}", c)
            self.assertEqual(c["RootCAType"], "Registry", c)
        self.assertEqual(rsa["CertificateDomains"], ecdsa["CertificateDomains"])
        # Made with one issue time: they rank equal, so the RSA one is the primary (never the
        # ECDSA one because a second ticked between the two).
        self.assertEqual((rsa["NotBefore"], rsa["NotAfter"]), (ecdsa["NotBefore"], ecdsa["NotAfter"]))
        self.assertEqual(ecdsa["PublicKeySize"], 256, ecdsa)
        by_domain = self.cli_json("get-certificate", "--domain", self.starling.fqdn)
        self.assertEqual([(c["Thumbprint"], c["StartTls"]) for c in by_domain],
                         [(rsa["Thumbprint"], "selected"), (ecdsa["Thumbprint"], "selected")],
                         "both selected, RSA first")

    def test_a_client_offering_ecdsa_gets_ecdsa_and_others_get_rsa(self):
        rsa, ecdsa = self.pair()
        self.assertServedType(ECDSA_ONLY, "ECDSA", ecdsa["Thumbprint"])
        self.assertServedType(RSA_ONLY, "RSA", rsa["Thumbprint"])

    def test_smtplib_sends_over_starttls(self):
        token = unique_token("ecdsa")
        with smtplib.SMTP(HOST, self.starling.port, local_hostname="py.client.test", timeout=15) as s:
            s.starttls(context=tls_client_context())
            s.ehlo()
            s.sendmail("a@client.test", ["u@example.test"],
                       f"Subject: {token}\r\nFrom: a@client.test\r\n\r\nbody {token}\r\n")
            _, ecdsa = self.pair()
            served = s.sock.getpeercert(binary_form=True)
            self.assertEqual(hashlib.sha1(served).hexdigest().upper(), ecdsa["Thumbprint"],
                             "Python's default client offers ECDSA first")
        self.wait_delivered(token)

    def test_test_starttls_names_both_and_probes_each(self):
        rsa, ecdsa = self.pair()
        code, entry, r = self.troubleshooter_entry("--probe")
        self.assertEqual(code, 0, describe(r))
        self.assertIs(entry["Healthy"], True, entry)
        self.assertEqual((entry["Thumbprint"], entry["KeyType"]), (rsa["Thumbprint"], "RSA"), entry)
        certificates = entry["Certificates"]
        self.assertEqual(len(certificates), 2, entry)
        self.assertTrue(certificates[0].startswith(f"RSA {rsa['Thumbprint']} "), certificates)
        self.assertTrue(certificates[1].startswith(f"ECDSA {ecdsa['Thumbprint']} "), certificates)
        where = f"127.0.0.1:{self.starling.port}"
        self.assertEqual(entry["Probe"], [
            f"{where} offering RSA only: TLSv1.3 with the selected RSA certificate {rsa['Thumbprint']}",
            f"{where} offering ECDSA first: TLSv1.3 with the selected ECDSA certificate {ecdsa['Thumbprint']}",
        ], entry)
        text = self.cli_ok("test-starttls", "--probe", "--format", "list").stdout
        for needle in (rsa["Thumbprint"], ecdsa["Thumbprint"], "ECDSA", "RSA"):
            self.assertIn(needle, text)


class EcdsaBesideRsa(EcdsaTestCase):
    daemon_per_test = True

    def test_new_certificate_ecdsa_creates_the_pair(self):
        before = {c["Thumbprint"] for c in self.cli_json("get-certificate")}
        r = self.cli_ok("new-certificate", "--domain", "mail.contoso.test", "--ecdsa", "--exportable",
                        "--format", "json")
        made = json.loads(r.stdout)
        self.assertEqual([c["KeyAlgorithm"] for c in made], ["RSA", "ECDSA"], describe(r))
        for c in made:
            self.assertEqual((c["Subject"], c["Services"], c["PrivateKeyExportable"]),
                             ("CN=mail.contoso.test", "SMTP", True), c)
        self.assertNotEqual(made[0]["Thumbprint"], made[1]["Thumbprint"])
        after = {c["Thumbprint"] for c in self.cli_json("get-certificate")}
        self.assertEqual(after - before, {c["Thumbprint"] for c in made})
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "mail.contoso.test")
        self.assertServedType(ECDSA_ONLY, "ECDSA", made[1]["Thumbprint"])
        self.assertServedType(RSA_ONLY, "RSA", made[0]["Thumbprint"])

    def test_new_certificate_ecdsa_with_an_ecdsa_key_type_is_a_usage_error(self):
        before = self.cli_json("get-certificate")
        self.cli_fails(2, r"--ecdsa.*--key-type", "new-certificate", "--ecdsa", "--key-type", "ecdsa-p256")
        self.cli_fails(2, r"--ecdsa.*--request", "new-certificate", "--ecdsa", "--request",
                       str(self.tmp / "req.pem"))
        self.assertEqual(self.cli_json("get-certificate"), before, "a refused command changes nothing")

    def test_an_expiring_ecdsa_certificate_beside_a_valid_rsa_one_logs_12018_for_it(self):
        (rsa,) = self.certificates_by_type()["RSA"]
        since = max((e["Index"] for e in self.events()), default=0)
        # A second later than the RSA one, so that it is the newer (NotBefore has whole seconds):
        # then the rule makes it the primary, expiring soon or not.
        time.sleep(1.1)
        self.cli_ok("new-certificate", "--key-type", "ecdsa-p256", "--validity-days", "10")
        (ecdsa,) = self.certificates_by_type()["ECDSA"]

        def match(e):
            return e["Index"] > since and e.get("Connector") == DEFAULT_CONNECTOR
        event = self.wait_event(match, "--id", "12018")
        self.assertIsNotNone(event, f"no 12018 after {since}: {self.events()}")
        self.assertEqual((event["Thumbprint"], event["KeyType"]), (ecdsa["Thumbprint"], "ECDSA"), event)
        self.assertIn("ECDSA certificate", event["Message"], event)
        hours = int(event["HoursRemaining"])
        self.assertTrue(10 * 24 - 2 <= hours <= 10 * 24, event)
        self.assertIn(f"RSA {rsa['Thumbprint']}", event["Certificates"], event)
        later = [e for e in self.events("--id", "12018") if e["Index"] > since]
        self.assertEqual([e["Thumbprint"] for e in later], [ecdsa["Thumbprint"]], "no 12018 for the RSA one")
        # Both are served; the troubleshooter names the ECDSA one's state, and it stays healthy.
        self.assertServedType(ECDSA_ONLY, "ECDSA", ecdsa["Thumbprint"])
        self.assertServedType(RSA_ONLY, "RSA", rsa["Thumbprint"])
        code, entry, r = self.troubleshooter_entry()
        self.assertEqual(code, 0, describe(r))
        # The primary is the rule's choice over both key types: the newer, though it expires soon.
        self.assertEqual(entry["Thumbprint"], ecdsa["Thumbprint"], entry)
        self.assertEqual(len(entry["Certificates"]), 2, entry)
        self.assertRegex(entry["Condition"], rf"^ECDSA {ecdsa['Thumbprint']} expires in \d+ hours \(event 12018\)$")
        self.assertIn("--key-type ecdsa-p256", entry["Fix"], entry)

    def test_only_an_ecdsa_certificate_is_served_alone(self):
        (rsa,) = self.certificates_by_type()["RSA"]
        self.cli_ok("new-certificate", "--domain", "ecdsa.contoso.test", "--key-type", "ecdsa-p256")
        (ecdsa,) = self.certificates_by_type()["ECDSA"]
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "ecdsa.contoso.test")
        self.assertServedType(ECDSA_ONLY, "ECDSA", ecdsa["Thumbprint"])
        served, _, output = served_leaf(self.starling.port, RSA_ONLY, self.tmp)
        self.assertIsNone(served, f"an RSA-only client cannot be served an ECDSA certificate:\n{output}")
        code, entry, r = self.troubleshooter_entry("--probe")
        self.assertEqual(code, 0, describe(r))
        self.assertEqual((entry["Thumbprint"], entry["KeyType"]), (ecdsa["Thumbprint"], "ECDSA"), entry)
        self.assertRegex(entry["Probe"][0], r"offering RSA only: .*\(expected: no RSA certificate is selected\)$")
        self.assertNotEqual(rsa["Thumbprint"], ecdsa["Thumbprint"])


if __name__ == "__main__":
    unittest.main()
