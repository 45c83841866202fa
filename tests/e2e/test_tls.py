"""STARTTLS with a real peer: `openssl s_client -starttls smtp`.

The setup certificate is presented (self-signed, subject CN=mx, SANs mx and mail.example.test);
TLS 1.2 and 1.3 negotiate with ECDHE; TLS 1.1 and static-RSA key exchange are refused. The
client's own security level is lowered for the refusal checks, so that only the server can be
the one saying no.
"""

import re
import subprocess
import tempfile
import unittest
from pathlib import Path

from starling_fixture import DaemonTestCase, FQDN, SERVER_NAME, tls_client_context

CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


class OpenSslClient(DaemonTestCase):
    def s_client(self, *args, timeout=20):
        cmd = ["openssl", "s_client", "-starttls", "smtp",
               "-connect", f"127.0.0.1:{self.starling.port}", "-servername", FQDN, *args]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        return r.returncode, out, r.stdout

    def handshake(self, version_flag, expected):
        code, out, _ = self.s_client(version_flag, "-brief")
        self.assertIn("CONNECTION ESTABLISHED", out, out)
        self.assertIn(f"Protocol version: {expected}", out, out)
        self.assertRegex(out, r"Peer certificate: .*CN\s*=\s*" + SERVER_NAME + r"\b", out)
        # ECDHE: the ephemeral key is an elliptic curve (X25519, X448 or a NIST curve).
        self.assertRegex(out, r"(Server|Peer) Temp Key: (X25519|X448|ECDH)", out)
        return out

    def test_tls13_negotiated(self):
        out = self.handshake("-tls1_3", "TLSv1.3")
        self.assertRegex(out, r"Ciphersuite: TLS_(AES_\d+_GCM_SHA\d+|CHACHA20_POLY1305_SHA256)")

    def test_tls12_negotiated_with_ecdhe(self):
        out = self.handshake("-tls1_2", "TLSv1.2")
        m = re.search(r"Ciphersuite: (\S+)", out)
        self.assertIsNotNone(m, out)
        self.assertTrue(m.group(1).startswith("ECDHE-"), f"not ECDHE: {m.group(1)}")
        self.assertRegex(m.group(1), r"(GCM|CHACHA20)", "TLS 1.2 cipher without AEAD")

    def test_tls11_refused(self):
        code, out, _ = self.s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief")
        self.assertNotIn("Protocol version: TLSv1.1", out, out)
        self.assertNotIn("CONNECTION ESTABLISHED", out, out)
        self.assertNotEqual(code, 0, out)

    def test_tls10_refused(self):
        code, out, _ = self.s_client("-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief")
        self.assertNotIn("CONNECTION ESTABLISHED", out, out)
        self.assertNotEqual(code, 0, out)

    def test_static_rsa_key_exchange_refused(self):
        # No forward secrecy without (EC)DHE: plain-RSA key exchange must not be negotiated.
        code, out, _ = self.s_client("-tls1_2", "-cipher",
                                     "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA"
                                     ":@SECLEVEL=0", "-brief")
        self.assertNotIn("CONNECTION ESTABLISHED", out, out)

    def test_presented_certificate_is_the_setup_certificate(self):
        code, out, raw = self.s_client("-tls1_3", "-showcerts")
        certs = CERT_RE.findall(raw)
        self.assertGreaterEqual(len(certs), 1, f"no certificate in s_client output:\n{out}")
        with tempfile.TemporaryDirectory() as d:
            pem = Path(d) / "leaf.pem"
            pem.write_bytes(certs[0])
            info = subprocess.run(
                ["openssl", "x509", "-in", str(pem), "-noout", "-subject", "-issuer",
                 "-ext", "subjectAltName"], capture_output=True, text=True, check=True).stdout
            subject = re.search(r"subject=(.*)", info).group(1).strip()
            self.assertRegex(subject, r"(^|,\s*)CN\s*=\s*" + SERVER_NAME + r"(\s*,|$)", info)
            issuer = re.search(r"issuer=(.*)", info).group(1).strip()
            self.assertEqual(subject, issuer, f"not self-signed: {info}")
            sans = re.search(r"Subject Alternative Name:\s*\n\s*(.*)", info)
            self.assertIsNotNone(sans, f"no SAN extension: {info}")
            names = {s.strip() for s in sans.group(1).split(",")}
            self.assertIn(f"DNS:{SERVER_NAME}", names, info)
            self.assertIn(f"DNS:{FQDN}", names, info)
            # Self-signed means it verifies against itself.
            v = subprocess.run(["openssl", "verify", "-CAfile", str(pem), str(pem)],
                               capture_output=True, text=True)
            self.assertEqual(v.returncode, 0, f"does not verify against itself: {v.stdout}"
                                              f"{v.stderr}")

    def test_same_certificate_for_tls12_and_tls13(self):
        _, _, raw13 = self.s_client("-tls1_3", "-showcerts")
        _, _, raw12 = self.s_client("-tls1_2", "-showcerts")
        c13, c12 = CERT_RE.findall(raw13), CERT_RE.findall(raw12)
        self.assertTrue(c13 and c12)
        self.assertEqual(c13[0], c12[0])

    def test_python_tls12_and_tls13_agree_with_openssl(self):
        import ssl
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                              (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                c = self.client()
                c.greeting()
                c.ehlo()
                self.assertEqual(c.cmd("STARTTLS").code, 220)
                s = c.starttls(tls_client_context(version, version))
                self.assertEqual(s.version(), name)
                der = s.getpeercert(binary_form=True)
                self.assertTrue(der)
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")


if __name__ == "__main__":
    unittest.main()
