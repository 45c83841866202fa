"""Certificate limits and the CA condition (docs/certificates.md), against the real daemon.

- A CA certificate (basicConstraints CA:TRUE, what `openssl req -x509` makes by default) is not
  a STARTTLS candidate: condition (d) in event 12014 and test-starttls, and get-certificate
  --domain says why it is not used. It was served before, even over the certificate in use.
- Starling's own certificates (setup, new-certificate) and cert_factory's leaves are CA:FALSE.
- Import refuses, with the limit named: more than 1,000 names, an RSA key under 2048 bits, a
  PKCS#12 file whose iteration count is over 1,000,000. new-certificate makes RSA keys of 2048
  to 8192 bits only.
- A certificate with 60,000 names left in the store by an older version (written straight into
  SQLite here) neither slows start-up (the daemon is ready within the fixture's 10 s; it took
  183 s) nor a reconfiguration, and is explained instead of served.
"""

import hashlib
import json
import shutil
import sqlite3
import ssl
import tempfile
import unittest
from pathlib import Path

from cert_factory import CertificateAuthority, openssl, thumbprint_of
from starling_cli import CliMixin, describe
from starling_fixture import FQDN, DaemonTestCase, Starling
from test_certificate_selection import DEFAULT_CONNECTOR, SelectionTestCase, thumbprints

CONDITION_D = ("(d) certificates list {} but are CA certificates (basicConstraints CA:TRUE), "
               "which are not served for STARTTLS")
CA_REASON = "it is a CA certificate (basicConstraints CA:TRUE)"


def basic_constraints(pem_path):
    """'CA:TRUE', 'CA:FALSE' or None, from `openssl x509 -text`."""
    text = openssl("x509", "-in", pem_path, "-noout", "-ext", "basicConstraints").stdout
    for word in ("CA:TRUE", "CA:FALSE"):
        if word in text:
            return word
    return None


def self_signed_req_x509(directory, name, extra=()):
    """What an administrator gets from `openssl req -x509` with its default configuration: a
    self-signed certificate carrying v3_ca's basicConstraints CA:TRUE. Returns (pem with key,
    certificate pem)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-subj", f"/CN={name}", "-days", "30",
            "-addext", f"subjectAltName=DNS:{name}", *extra)
    both = directory / f"{name}.withkey.pem"
    both.write_text(cert.read_text() + key.read_text())
    return both, cert


def leaf_with_names(directory, stem, count):
    """A self-signed CA:FALSE server certificate for stem0.contoso.test .. stem<count-1>, its
    names in a configuration file (one argument could not hold 60,000). Returns (key, cert)."""
    config = directory / f"{stem}.cnf"
    names = "\n".join(f"DNS.{i} = {stem}{i}.contoso.test" for i in range(count))
    config.write_text("[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n"
                      f"[dn]\nCN = {stem}0.contoso.test\n"
                      "[leaf]\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
                      "extendedKeyUsage = serverAuth\nsubjectAltName = @names\n"
                      f"[names]\n{names}\n")
    key, cert = directory / f"{stem}.key", directory / f"{stem}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-config", config)
    return key, cert


class CaCertificateIsNotACandidate(SelectionTestCase):
    def test_ca_certificate_is_explained_by_12014_test_starttls_and_get_certificate(self):
        name = "ca.contoso.test"
        both, cert = self_signed_req_x509(self.tmp, name)
        self.assertEqual(basic_constraints(cert), "CA:TRUE", "precondition: openssl made a CA")
        thumb = thumbprint_of(cert)
        self.cli_ok("import-certificate", both)
        r = self.enable_smtp(thumb)
        self.assertIn("is a CA certificate (basicConstraints CA:TRUE)", r.stderr, describe(r))
        since = self.mark()
        self.set_fqdn(name)

        event = self.new_event(12014, since, Fqdn=name)
        self.assertNotFound(event, name, CONDITION_D)
        self.assertEqual(thumbprints(event), [thumb])
        self.assertIn(f"({thumb}: {CA_REASON})", event["Condition"], event)
        self.assertStartTlsOffered(False)

        code, entry, r = self.troubleshooter_entry(DEFAULT_CONNECTOR)
        self.assertEqual(code, 1, describe(r))
        self.assertFalse(entry["Healthy"], entry)
        self.assertTrue(entry["Condition"].startswith(CONDITION_D.format(name)), entry)
        self.assertIn(thumb, entry["Condition"], entry)

        (listed,) = self.cli_json("get-certificate", "--domain", name)
        self.assertEqual(listed["Thumbprint"], thumb)
        self.assertEqual(listed["StartTls"], "not a candidate: " + CA_REASON, listed)

        # The fix printed is a leaf certificate, which is then served.
        self.run_fix(entry["Fix"])
        (fixed,) = [c for c in self.cli_json("get-certificate", "--domain", name)
                    if c["StartTls"] == "selected"]
        self.assertNotEqual(fixed["Thumbprint"], thumb)
        self.assertServed(fixed["Thumbprint"], None)
        self.assertNotRestarted()

    def test_a_newer_ca_certificate_does_not_displace_the_certificate_in_use(self):
        in_use = self.setup_thumbprint()
        self.assertServed(in_use, None)
        both, cert = self_signed_req_x509(self.tmp, FQDN)
        self.cli_ok("import-certificate", both)
        self.enable_smtp(thumbprint_of(cert))
        self.assertServed(in_use, None)
        self.assertServed(in_use, FQDN)
        by_domain = {c["Thumbprint"]: c["StartTls"] for c in self.cli_json("get-certificate", "--domain", FQDN)}
        self.assertEqual(by_domain[in_use], "selected")
        self.assertEqual(by_domain[thumbprint_of(cert)], "not a candidate: " + CA_REASON)


class OurCertificatesAreLeaves(CliMixin, DaemonTestCase):
    def export(self, thumbprint, tmp):
        path = tmp / f"{thumbprint}.pem"
        self.cli_ok("export-certificate", thumbprint, "--file", path)
        return path

    def test_setup_and_new_certificate_make_ca_false_leaves(self):
        tmp = Path(tempfile.mkdtemp(prefix="starling-leaf-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        self.cli_ok("new-certificate", "--domain", "new.contoso.test", "--services", "SMTP")
        certs = self.cli_json("get-certificate")
        self.assertGreaterEqual(len(certs), 2, certs)
        for c in certs:
            self.assertEqual(basic_constraints(self.export(c["Thumbprint"], tmp)), "CA:FALSE", c)

    def test_cert_factory_leaves_are_ca_false_and_its_ca_is_a_ca(self):
        tmp = Path(tempfile.mkdtemp(prefix="starling-leaf-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        ca = CertificateAuthority(tmp / "ca")
        self.assertEqual(basic_constraints(ca.cert), "CA:TRUE")
        self.assertEqual(basic_constraints(ca.issue("leaf.contoso.test").cert), "CA:FALSE")


class ImportLimits(CliMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="starling-limits-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def assertRefused(self, message_re, *args):
        before = self.cli_json("get-certificate")
        self.cli_fails(1, message_re, *args)
        self.assertEqual(self.cli_json("get-certificate"), before, "a refused import changed the store")

    def test_more_than_a_thousand_names(self):
        _, cert = leaf_with_names(self.tmp, "host", 1001)
        self.assertRefused(r"'host0\.contoso\.test': it lists 1,002 names \(subject CN and "
                           r"subjectAltName\); Starling accepts at most 1,000$",
                           "import-certificate", cert)

    def test_rsa_key_under_2048_bits(self):
        key, cert = self.tmp / "small.key", self.tmp / "small.pem"
        openssl("req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", key, "-out", cert,
                "-subj", "/CN=small.contoso.test", "-days", "30")
        self.assertRefused(r"its RSA key has 1024 bits; Starling accepts 2048 to 8192$",
                           "import-certificate", cert)

    def test_pkcs12_with_too_many_iterations(self):
        _, cert = self_signed_req_x509(self.tmp, "p12.contoso.test", ("-addext", "basicConstraints=CA:FALSE"))
        p12 = self.tmp / "slow.p12"
        # 2,000,000 iterations for the key and the certificates: a second or two to write here;
        # the daemon must refuse it without deriving a single key.
        openssl("pkcs12", "-export", "-in", cert, "-inkey", self.tmp / "p12.contoso.test.key",
                "-out", p12, "-passout", "pass:pw", "-iter", "2000000")
        password = self.tmp / "pw"
        password.write_text("pw\n")
        password.chmod(0o600)
        self.assertRefused(r"is encrypted with 2,000,000 iterations; Starling accepts at most 1,000,000$",
                           "import-certificate", p12, "--password-file", password)

    def test_new_certificate_rsa_sizes(self):
        self.cli_fails(2, r"--key-size: 2048 to 8192 bits", "new-certificate", "--domain",
                       "big.contoso.test", "--key-size", "16384")
        self.cli_fails(2, r"--key-size: 2048 to 8192 bits", "new-certificate", "--domain",
                       "small.contoso.test", "--key-size", "1024")
        self.cli_ok("new-certificate", "--domain", "three.contoso.test", "--key-size", "3072")
        (made,) = [c for c in self.cli_json("get-certificate", "--domain", "three.contoso.test")]
        self.assertEqual(made["PublicKeySize"], 3072, made)


class StoredCertificateOverTheLimits(CliMixin, DaemonTestCase):
    """A 60,000-name certificate in the store before the daemon starts, as an older version,
    which imported it, would have left it."""

    NAMES = 60000

    @classmethod
    def setUpClass(cls):
        cls.starling = Starling()
        try:
            cls.thumbprint = cls.store_big_certificate(cls.starling)
            cls.starling.start()  # READY_TIMEOUT: start-up stays within seconds
        except BaseException:
            cls.starling.remove()
            raise

    @classmethod
    def store_big_certificate(cls, starling):
        key, cert = leaf_with_names(starling.root, "big", cls.NAMES)
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        thumbprint = hashlib.sha1(der).hexdigest().upper()
        with sqlite3.connect(starling.data_dir / "starling.db") as db:
            db.execute("INSERT INTO certificates (thumbprint, certificate_pem, key_pem, services) "
                       "VALUES (?, ?, ?, 16)", (thumbprint, cert.read_text(), key.read_text()))
        return thumbprint

    def test_it_is_listed_explained_and_not_served(self):
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "big5.contoso.test")
        r = self.cli("test-starttls", "--format", "json")
        self.assertEqual(r.returncode, 1, describe(r))
        (entry,) = [e for e in json.loads(r.stdout) if e["Connector"] == DEFAULT_CONNECTOR]
        self.assertTrue(entry["Condition"].startswith("(c) certificates list big5.contoso.test"), entry)
        self.assertIn(f"{self.thumbprint}: it lists 60,001 names (subject CN and subjectAltName); "
                      "Starling accepts at most 1,000", entry["Condition"])
        (listed,) = self.cli_json("get-certificate", "--domain", "big5.contoso.test")
        self.assertEqual(len(listed["CertificateDomains"]), self.NAMES)
        self.assertTrue(listed["StartTls"].startswith("not a candidate: it lists 60,001 names"), listed)
        # Reconfigured back: the setup certificate serves again, the daemon answered throughout.
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", FQDN)
        r = self.cli("test-starttls", "--format", "json")
        self.assertEqual(r.returncode, 0, describe(r))


if __name__ == "__main__":
    unittest.main()
