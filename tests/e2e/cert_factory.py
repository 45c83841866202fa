"""Test certificates made with the openssl CLI, and what a real STARTTLS client is served.

`CertificateAuthority` is a throw-away CA (CA:TRUE) in a temporary directory; it issues leaf
certificates through `openssl ca`, which can back-date and post-date them (-startdate,
-enddate) and can leave out every extension (an X.509 v1 certificate). `served_certificate`
runs `openssl s_client -starttls smtp` and returns the subject and SHA-1 thumbprint of the
certificate the server presented (`openssl x509 -fingerprint -sha1`). Standard library only.
"""

import datetime
import re
import subprocess
from pathlib import Path

from starling_fixture import HOST

PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)
OPENSSL_TIMEOUT = 60


def openssl(*args, stdin=subprocess.DEVNULL, check=True, timeout=OPENSSL_TIMEOUT):
    r = subprocess.run(["openssl", *[str(a) for a in args]], stdin=stdin, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(str(a) for a in args)} failed "
                           f"(exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def asn1_time(when):
    """YYYYMMDDHHMMSSZ, as `openssl ca -startdate/-enddate` want it."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def thumbprint_of(pem_path):
    """Upper-case hex SHA-1 of the DER of the first certificate in `pem_path`."""
    out = openssl("x509", "-in", pem_path, "-noout", "-fingerprint", "-sha1").stdout
    m = re.search(r"=([0-9A-Fa-f:]+)", out)
    return m.group(1).replace(":", "").upper()


def subject_of(pem_path):
    out = openssl("x509", "-in", pem_path, "-noout", "-subject", "-nameopt", "RFC2253").stdout
    return out.split("=", 1)[1].strip()


class Leaf:
    def __init__(self, cert, key, thumbprint, subject):
        self.cert = cert  # PEM certificate (the leaf only)
        self.key = key    # PEM private key
        self.thumbprint = thumbprint
        self.subject = subject

    def with_key(self):
        """A PEM file holding the certificate and its private key."""
        path = self.cert.with_suffix(".withkey.pem")
        path.write_text(self.cert.read_text() + self.key.read_text())
        return path


class CertificateAuthority:
    """A certificate authority for tests: CN=<name>, RSA 2048, CA:TRUE."""

    def __init__(self, directory, name="Test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        (self.dir / "newcerts").mkdir(exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        self.config = self.dir / "ca.cnf"
        self.config.write_text(
            "[ ca ]\ndefault_ca = test_ca\n"
            "[ test_ca ]\n"
            f"dir = {self.dir}\n"
            "database = $dir/index.txt\n"
            "new_certs_dir = $dir/newcerts\n"
            "serial = $dir/serial\n"
            f"certificate = {self.cert}\n"
            f"private_key = {self.key}\n"
            "default_md = sha256\n"
            "default_days = 365\n"
            "policy = any_name\n"
            "unique_subject = no\n"
            "copy_extensions = none\n"
            "email_in_dn = no\n"
            "[ any_name ]\ncommonName = supplied\n"
            "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = unused\n")
        self._count = 0
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.cert, "-subj", f"/CN={name}", "-days", "3650",
                "-config", self.config,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.thumbprint = thumbprint_of(self.cert)

    def issue(self, cn, sans=None, eku="serverAuth",
              key_usage="critical,digitalSignature,keyEncipherment",
              not_before=None, not_after=None, v1=False):
        """A leaf for `cn` (SAN DNS names `sans`, default [cn]) valid from `not_before`
        (default: one day ago) to `not_after` (default: in a year). v1=True: no extensions at
        all, which makes `openssl ca` write an X.509 version 1 certificate."""
        self._count += 1
        base = self.dir / f"leaf{self._count}"
        key, csr, cert, ext = (base.with_suffix(s) for s in (".key", ".csr", ".pem", ".ext"))
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", f"/CN={cn}", "-config", self.config)
        start = not_before or now_utc() - datetime.timedelta(days=1)
        end = not_after or now_utc() + datetime.timedelta(days=365)
        args = ["ca", "-config", self.config, "-batch", "-notext", "-in", csr, "-out", cert,
                "-startdate", asn1_time(start), "-enddate", asn1_time(end)]
        if not v1:
            names = sans if sans is not None else [cn]
            lines = ["[ leaf ]", "basicConstraints = critical,CA:FALSE"]
            if key_usage:
                lines.append(f"keyUsage = {key_usage}")
            if eku:
                lines.append(f"extendedKeyUsage = {eku}")
            if names:
                lines.append("subjectAltName = " + ",".join(f"DNS:{n}" for n in names))
            ext.write_text("\n".join(lines) + "\n")
            args += ["-extfile", ext, "-extensions", "leaf"]
        openssl(*args)
        return Leaf(cert, key, thumbprint_of(cert), subject_of(cert))


# --- what a client is served -----------------------------------------------------------------

class Served:
    def __init__(self, subject, thumbprint, output):
        self.subject = subject
        self.thumbprint = thumbprint
        self.output = output  # s_client's whole output, for failure messages

    def __repr__(self):
        return f"Served(subject={self.subject!r}, thumbprint={self.thumbprint})"


def served_certificate(port, servername=None, workdir=None, timeout=30):
    """The leaf presented after `openssl s_client -starttls smtp` to 127.0.0.1:port, with SNI
    `servername` (None: no SNI). Returns (Served, output), or (None, output) when no
    certificate was presented (STARTTLS not offered, or the handshake failed)."""
    cmd = ["openssl", "s_client", "-starttls", "smtp", "-connect", f"{HOST}:{port}",
           "-showcerts"]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    output = f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}"
    certs = PEM_CERT_RE.findall(r.stdout)
    if not certs:
        return None, output
    leaf = Path(workdir) / f"served-{port}-{servername or 'nosni'}.pem"
    leaf.write_text(certs[0])
    return Served(subject_of(leaf), thumbprint_of(leaf), output), output
