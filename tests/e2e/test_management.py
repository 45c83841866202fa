"""The management shell against a running starlingd (docs/certificates.md, docs/commands.md; docs/commands.md).

Output shapes (table, list, json), Exchange aliases and PowerShell-style options; refusals of bad
input with exit 1/2, one clear line on stderr and nothing changed; confirmations without a
terminal; the certificate life cycle new → export → remove → import → enable; events 13001 and
12002; --offline while the daemon is stopped. Every command runs with stdin = /dev/null.
"""

import hashlib
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import unittest
from pathlib import Path

from starling_cli import CliMixin, parse_list, port_accepts
from starling_fixture import FQDN, SERVER_NAME, DaemonTestCase, RawClient, free_port, unique_token

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"
CERT_PROPERTIES = ["Thumbprint", "Services", "Subject", "Issuer", "CertificateDomains",
                   "NotBefore", "NotAfter", "IsSelfSigned", "HasPrivateKey",
                   "PrivateKeyExportable", "FriendlyName", "SerialNumber", "PublicKeySize",
                   "KeyAlgorithm", "SignatureAlgorithm", "RootCAType", "Status"]
THUMBPRINT_RE = re.compile(r"^[0-9A-F]{40}$")
PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def parse_table(text):
    """A default-view table: header, dashes, rows; cells cut at the header columns."""
    lines = [l for l in text.splitlines() if l.strip()]
    header, dashes, rows = lines[0], lines[1], lines[2:]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    cells = []
    for row in rows:
        bounds = starts[1:] + [None]
        cells.append({n: row[s:e].strip() for n, s, e in zip(names, starts, bounds)})
    return names, dashes, starts, cells


def sha1_thumbprint(pem_text):
    der = ssl.PEM_cert_to_DER_cert(PEM_CERT_RE.search(pem_text).group(0))
    return hashlib.sha1(der).hexdigest().upper()


def banner(port):
    with RawClient(port) as c:
        return str(c.greeting())


class TempDirMixin:
    def tempdir(self):
        d = Path(tempfile.mkdtemp(prefix="starling-mgmt-"))
        self.addCleanup(shutil.rmtree, d, True)
        return d


# --- output shapes and aliases ---------------------------------------------------------------

class OutputShapes(CliMixin, TempDirMixin, DaemonTestCase):
    def setup_certificate(self):
        certs = self.cli_json("get-certificate")
        self.assertEqual(len(certs), 1, f"setup should leave one certificate: {certs}")
        return certs[0]

    def test_get_certificate_default_table(self):
        cert = self.setup_certificate()
        r = self.cli_ok("get-certificate")
        names, dashes, starts, rows = parse_table(r.stdout)
        self.assertEqual(names, ["Thumbprint", "Services", "Subject"], r.stdout)
        # The dash line underlines each header word, column by column.
        self.assertEqual([m.start() for m in re.finditer(r"-+", dashes)], starts, r.stdout)
        self.assertEqual([len(m.group(0)) for m in re.finditer(r"-+", dashes)],
                         [len(n) for n in names], r.stdout)
        self.assertEqual(rows, [{"Thumbprint": cert["Thumbprint"], "Services": "SMTP",
                                 "Subject": f"CN={SERVER_NAME}"}], r.stdout)

    def test_get_certificate_json_has_the_model_properties(self):
        cert = self.setup_certificate()
        self.assertEqual(list(cert.keys()), CERT_PROPERTIES)
        self.assertRegex(cert["Thumbprint"], THUMBPRINT_RE)
        self.assertEqual(cert["Services"], "SMTP")
        self.assertEqual(cert["Subject"], f"CN={SERVER_NAME}")
        self.assertEqual(cert["Issuer"], f"CN={SERVER_NAME}")
        self.assertEqual(cert["CertificateDomains"], [SERVER_NAME, FQDN])
        self.assertIs(cert["IsSelfSigned"], True)
        self.assertIs(cert["HasPrivateKey"], True)
        self.assertIs(cert["PrivateKeyExportable"], False)
        self.assertEqual(cert["FriendlyName"], "Starling")
        self.assertEqual(cert["PublicKeySize"], 2048)
        self.assertEqual(cert["KeyAlgorithm"], "RSA")
        self.assertEqual(cert["RootCAType"], "Registry")
        # The thumbprint is the SHA-1 of the DER certificate (export without a password: PEM).
        out = self.tempdir() / "setup.pem"
        self.cli_ok("export-certificate", cert["Thumbprint"], "--file", out)
        self.assertEqual(sha1_thumbprint(out.read_text()), cert["Thumbprint"])

    def test_get_certificate_list_all_properties_aligned(self):
        cert = self.setup_certificate()
        r = self.cli_ok("get-certificate", "--format", "list", "--property", "*")
        records = parse_list(r.stdout)
        self.assertEqual(len(records), 1, r.stdout)
        rec = records[0]
        self.assertEqual([name for name, _, _ in rec], CERT_PROPERTIES, r.stdout)
        self.assertEqual(len({col for _, _, col in rec}), 1, f"colons not aligned:\n{r.stdout}")
        values = {name: value for name, value, _ in rec}
        self.assertEqual(values["Thumbprint"], cert["Thumbprint"])
        self.assertEqual(values["CertificateDomains"], f"{{{SERVER_NAME}, {FQDN}}}")
        self.assertEqual(values["HasPrivateKey"], "True")
        self.assertEqual(values["PrivateKeyExportable"], "False")

    def test_alias_and_property_selection_gives_three_aligned_lines(self):
        r = self.cli_ok("Get-ReceiveConnector", "--format", "list",
                        "--property", "name,fqdn,objectClass")
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 3, r.stdout)
        records = parse_list(r.stdout)
        self.assertEqual([n for n, _, _ in records[0]], ["Name", "Fqdn", "ObjectClass"], r.stdout)
        self.assertEqual(len({c for _, _, c in records[0]}), 1, f"not aligned:\n{r.stdout}")
        values = {n: v for n, v, _ in records[0]}
        self.assertEqual(values["Name"], DEFAULT_CONNECTOR)
        self.assertEqual(values["ObjectClass"], "msExchSmtpReceiveConnector")

    def test_powershell_style_options_and_case_insensitive_names(self):
        thumb = self.setup_certificate()["Thumbprint"]
        r = self.cli_ok("Get-ExchangeCertificate", "-Thumbprint", thumb, "-Format", "list",
                        "-Property", "thumbprint,services")
        self.assertEqual([(n, v) for n, v, _ in parse_list(r.stdout)[0]],
                         [("Thumbprint", thumb), ("Services", "SMTP")], r.stdout)
        for name in ("get-receiveconnector", "GET-RECEIVECONNECTOR", "get-receive-connector"):
            got = self.cli_json(name)
            self.assertEqual([c["Name"] for c in got], [DEFAULT_CONNECTOR], name)

    def test_receive_connector_json(self):
        (c,) = self.cli_json("get-receive-connector")
        self.assertEqual(c["Identity"], f"{SERVER_NAME}\\{DEFAULT_CONNECTOR}")
        self.assertEqual(c["Name"], DEFAULT_CONNECTOR)
        self.assertEqual(c["Bindings"], [f"127.0.0.1:{self.starling.port}"])
        self.assertEqual(c["AuthMechanism"], "Tls")
        self.assertEqual(c["PermissionGroups"], ["AnonymousUsers", "ExchangeServers"])
        self.assertIs(c["RequireTLS"], False)
        self.assertIs(c["Enabled"], True)
        self.assertEqual(c["MaxMessageSize"], 10 * 1024 * 1024)
        self.assertEqual(c["ObjectClass"], "msExchSmtpReceiveConnector")
        # Identity "<server>\<name>" is accepted as well as the bare name.
        (same,) = self.cli_json("get-receive-connector", f"{SERVER_NAME}\\{DEFAULT_CONNECTOR}")
        self.assertEqual(same, c)

    def test_send_connector_object_class(self):
        name = unique_token("send")
        self.cli_ok("new-send-connector", "--name", name, "--address-spaces", "*",
                    "--fqdn", "out.example.test")
        self.addCleanup(self.cli, "remove-send-connector", name, "--yes")
        (s,) = [c for c in self.cli_json("get-send-connector") if c["Name"] == name]
        self.assertEqual(s["ObjectClass"], "msExchRoutingSMTPConnector")
        self.assertEqual(s["Fqdn"], "out.example.test")

    def test_usage_errors_exit_2(self):
        self.cli_fails(2, r"unknown command 'frobnicate'", "frobnicate")
        self.cli_fails(2, r"--format", "get-certificate", "--format", "yaml")
        self.cli_fails(2, r"no property 'bogus'", "get-certificate", "--property", "bogus")

    def test_unknown_identities_exit_1(self):
        self.cli_fails(1, r"no certificate .*0{40}", "get-certificate", "0" * 40)
        self.cli_fails(1, r"no receive connector named 'nosuch'", "get-receive-connector",
                       "nosuch")


# --- bad input changes nothing ---------------------------------------------------------------

class Validation(CliMixin, DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.before = self.snapshot()

    def assertUnchanged(self):
        self.assertEqual(self.snapshot(), self.before, "a refused command changed the store")
        # ... and the running server still says what it said.
        self.assertIn(f"220 {FQDN} ", banner(self.starling.port))

    def refused(self, code, message_re, *args):
        self.cli_fails(code, message_re, *args)
        self.assertUnchanged()

    def test_banner_must_start_with_220(self):
        self.refused(1, r"Banner.*220", "set-receive-connector", DEFAULT_CONNECTOR,
                     "--banner", "hello")

    def test_require_tls_needs_tls_auth_mechanism(self):
        self.refused(1, r"RequireTLS.*Tls", "set-receive-connector", DEFAULT_CONNECTOR,
                     "--require-tls", "true", "--auth-mechanism", "None")
        self.refused(1, r"RequireTLS.*Tls", "Set-ReceiveConnector", DEFAULT_CONNECTOR,
                     "-RequireTLS", "$true", "-AuthMechanism", "None")

    def test_auth_mechanism_combinations(self):
        self.refused((1, 2), r"AuthMechanism.*None", "set-receive-connector", DEFAULT_CONNECTOR,
                     "--auth-mechanism", "None,Tls")
        self.refused(1, r"BasicAuthRequireTLS.*BasicAuth", "set-receive-connector",
                     DEFAULT_CONNECTOR, "--auth-mechanism", "BasicAuthRequireTLS")

    def test_bogus_property(self):
        self.refused(2, r"unknown property 'bogusprop'.*Banner", "set-receive-connector",
                     DEFAULT_CONNECTOR, "--bogus-prop", "1")

    def test_binding_in_use_with_same_ranges(self):
        self.refused(1, rf"127\.0\.0\.1:{self.starling.port}.*already used.*{DEFAULT_CONNECTOR}",
                     "new-receive-connector", "--name", "Dup",
                     "--bindings", f"127.0.0.1:{self.starling.port}")

    def test_malformed_values(self):
        self.refused(1, r"RemoteIPRanges.*10\.0\.0\.300", "set-receive-connector",
                     DEFAULT_CONNECTOR, "--remote-ip-ranges", "10.0.0.300/8")
        self.refused(1, r"Fqdn.*bad fqdn", "set-receive-connector", DEFAULT_CONNECTOR,
                     "--fqdn", "bad fqdn!")
        self.refused((1, 2), r"MaxMessageSize.*20XB", "set-receive-connector",
                     DEFAULT_CONNECTOR, "--max-message-size", "20XB")

    def test_one_bad_property_rejects_the_whole_command(self):
        self.refused(1, r"Banner.*220", "set-receive-connector", DEFAULT_CONNECTOR,
                     "--fqdn", "other.example.test", "--banner", "hello")

    def test_duplicate_and_unknown_names(self):
        self.refused(1, rf"'{DEFAULT_CONNECTOR}' exists", "new-receive-connector",
                     "--name", DEFAULT_CONNECTOR, "--bindings", f"127.0.0.1:{free_port()}")
        self.refused(1, r"no receive connector named 'nosuch'", "set-receive-connector",
                     "nosuch", "--fqdn", "a.example.test")
        self.refused(1, r"no Unix user named", "new-role-assignment",
                     "--role", "ViewOnlyAdministrator", "--user", unique_token("nouser"))
        self.refused(2, r"--role.*ViewOnlyAdministrator", "new-role-assignment",
                     "--role", "Bogus", "--group", "root")

    def test_same_binding_with_other_ranges_is_allowed(self):
        # The control for test_binding_in_use_with_same_ranges: the binding alone is no reason.
        name = unique_token("partners")
        self.cli_ok("new-receive-connector", "--name", name,
                    "--bindings", f"127.0.0.1:{self.starling.port}",
                    "--remote-ip-ranges", "192.0.2.0/24")
        self.cli_ok("remove-receive-connector", name, "--yes")
        self.assertUnchanged()


# --- confirmations ---------------------------------------------------------------------------

class Confirmations(CliMixin, DaemonTestCase):
    NOT_CONFIRMED = r"--yes"

    def names(self, cmd, key="Name"):
        return [x[key] for x in self.cli_json(cmd)]

    def test_remove_receive_connector(self):
        name, port = unique_token("conf"), free_port()
        self.cli_ok("new-receive-connector", "--name", name, "--bindings", f"127.0.0.1:{port}")
        self.assertTrue(port_accepts(port))
        before = self.snapshot()
        self.cli_fails(1, self.NOT_CONFIRMED, "remove-receive-connector", name)
        self.assertEqual(self.snapshot(), before)
        self.assertTrue(port_accepts(port), "refused removal closed the port")
        self.cli_ok("remove-receive-connector", name, "--yes")
        self.assertNotIn(name, self.names("get-receive-connector"))
        self.assertFalse(port_accepts(port), "removed connector still listening")

    def test_remove_accepted_domain_powershell_confirm_false(self):
        domain = f"{unique_token('d')}.test".lower()
        self.cli_ok("new-accepted-domain", domain)
        before = self.snapshot()
        self.cli_fails(1, self.NOT_CONFIRMED, "remove-accepted-domain", domain)
        self.assertEqual(self.snapshot(), before)
        self.cli_ok("Remove-AcceptedDomain", domain, "-Confirm:$false")
        self.assertNotIn(domain, self.names("get-accepted-domain", "DomainName"))

    def test_remove_certificate(self):
        domain = f"{unique_token('c')}.example.test".lower()
        self.cli_ok("new-certificate", "--domain", domain)
        (cert,) = self.cli_json("get-certificate", "--domain", domain)
        before = self.snapshot()
        self.cli_fails(1, self.NOT_CONFIRMED, "remove-certificate", cert["Thumbprint"])
        self.assertEqual(self.snapshot(), before)
        self.cli_ok("remove-certificate", cert["Thumbprint"], "--yes")
        self.assertNotIn(cert["Thumbprint"], self.names("get-certificate", "Thumbprint"))

    def test_remove_role_assignment(self):
        self.cli_ok("new-role-assignment", "--role", "ViewOnlyAdministrator", "--group", "root")
        before = self.snapshot()
        self.cli_fails(1, self.NOT_CONFIRMED, "remove-role-assignment",
                       "--role", "ViewOnlyAdministrator", "--group", "root")
        self.assertEqual(self.snapshot(), before)
        self.cli_ok("remove-role-assignment", "--role", "ViewOnlyAdministrator",
                    "--group", "root", "--yes")
        self.assertEqual(self.cli_json("get-role-assignment"), [])

    def test_certificate_in_use_needs_force(self):
        (cert,) = [c for c in self.cli_json("get-certificate")
                   if c["Subject"] == f"CN={SERVER_NAME}"]
        before = self.snapshot()
        self.cli_fails(1, rf"in use.*{DEFAULT_CONNECTOR}.*--force", "remove-certificate",
                       cert["Thumbprint"], "--yes")
        self.assertEqual(self.snapshot(), before)


# --- certificate life cycle ------------------------------------------------------------------

class CertificateLifeCycle(CliMixin, TempDirMixin, DaemonTestCase):
    def cert(self, thumb):
        got = [c for c in self.cli_json("get-certificate") if c["Thumbprint"] == thumb]
        return got[0] if got else None

    def test_new_export_remove_import_enable(self):
        d = self.tempdir()
        domain = "lifecycle.example.test"
        self.cli_ok("new-certificate", "--domain", domain, "--exportable")
        (made,) = self.cli_json("get-certificate", "--domain", domain)
        thumb = made["Thumbprint"]
        self.assertEqual(made["Subject"], f"CN={domain}")
        self.assertIs(made["PrivateKeyExportable"], True)
        self.assertEqual(made["Services"], "SMTP")

        password = d / "password"
        password.write_text("s3cret-" + unique_token() + "\n")
        pfx = d / "lifecycle.pfx"
        self.cli_ok("export-certificate", thumb, "--file", pfx, "--password-file", password)
        self.assertEqual(pfx.stat().st_mode & 0o777, 0o600, "exported file must be 0600")
        opened = subprocess.run(["openssl", "pkcs12", "-in", str(pfx), "-nodes",
                                 "-passin", f"file:{password}"], capture_output=True, text=True)
        self.assertEqual(opened.returncode, 0, opened.stderr)
        self.assertIn("PRIVATE KEY-----", opened.stdout)
        self.assertEqual(sha1_thumbprint(opened.stdout), thumb)

        self.cli_ok("remove-certificate", thumb, "--yes")
        self.assertIsNone(self.cert(thumb))

        wrong = d / "wrong"
        wrong.write_text("not-the-password\n")
        self.cli_fails(1, r"password", "import-certificate", pfx, "--password-file", wrong)
        self.assertIsNone(self.cert(thumb), "a failed import added a certificate")

        self.cli_ok("import-certificate", pfx,
                    env={"STARLING_PASSWORD": password.read_text().rstrip("\n")})
        imported = self.cert(thumb)
        self.assertIsNotNone(imported, "import did not bring the certificate back")
        self.assertEqual(imported["Services"], "None")
        self.assertIs(imported["HasPrivateKey"], True)
        self.assertEqual(imported["CertificateDomains"], [domain])

        self.cli_ok("enable-certificate", thumb, "--services", "SMTP")
        self.assertEqual(self.cert(thumb)["Services"], "SMTP")
        # Services only accumulate; PowerShell spelling.
        self.cli_ok("Enable-ExchangeCertificate", "-Thumbprint", thumb, "-Services", "IMAP")
        self.assertEqual(self.cert(thumb)["Services"], "IMAP, SMTP")

    def test_export_of_non_exportable_key_refused(self):
        d = self.tempdir()
        (cert,) = [c for c in self.cli_json("get-certificate")
                   if c["Subject"] == f"CN={SERVER_NAME}"]
        self.assertIs(cert["PrivateKeyExportable"], False)
        password = d / "password"
        password.write_text("pw\n")
        out = d / "setup.pfx"
        self.cli_fails(1, r"not exportable", "export-certificate", cert["Thumbprint"],
                       "--file", out, "--password-file", password)
        self.assertFalse(out.exists(), "a refused export wrote a file")
        # Without a password: the certificate only, never the key.
        pem = d / "setup.pem"
        self.cli_ok("export-certificate", cert["Thumbprint"], "--file", pem)
        text = pem.read_text()
        self.assertIn("BEGIN CERTIFICATE", text)
        self.assertNotIn("PRIVATE KEY", text)

    def test_certificate_request_is_pending(self):
        d = self.tempdir()
        req = d / "req.pem"
        self.cli_fails(2, r"--services.*--request", "new-certificate", "--request", d / "x.pem",
                       "--domain", "req.example.test", "--services", "SMTP")
        self.assertFalse((d / "x.pem").exists())
        self.cli_ok("new-certificate", "--request", req, "--domain", "req.example.test")
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", req.read_text())
        pending = [c for c in self.cli_json("get-certificate") if c["Status"] == "PendingRequest"]
        self.assertEqual(len(pending), 1, pending)
        text = subprocess.run(["openssl", "req", "-in", str(req), "-noout", "-subject"],
                              capture_output=True, text=True)
        self.assertRegex(text.stdout, r"CN\s*=\s*req\.example\.test", text.stderr)


# --- events ----------------------------------------------------------------------------------

class Events(CliMixin, DaemonTestCase):
    def last_index(self):
        events = self.events()
        return max((e["Index"] for e in events), default=0)

    def test_change_recorded_as_13001_then_applied_as_12002(self):
        domain = f"{unique_token('ev')}.test".lower()
        self.cli_ok("new-accepted-domain", domain)
        change = self.wait_event(lambda e: domain in e.get("Result", ""), "--id", "13001")
        self.assertIsNotNone(change, f"no 13001 for new-accepted-domain {domain}: "
                                     f"{self.events('--id', '13001')}")
        self.assertEqual(change["EventId"], 13001)
        self.assertEqual(change["Name"], "ManagementChange")
        self.assertEqual(change["Category"], "Management")
        self.assertEqual(change["User"], "root")
        self.assertEqual(change["Command"], "new-accepted-domain")
        applied = self.wait_event(lambda e: domain in e.get("Change", ""), "--id", "12002")
        self.assertIsNotNone(applied, f"no 12002 after the change: {self.events()}")
        self.assertEqual(applied["Name"], "ConfigurationUpdated")
        self.assertGreater(applied["Index"], change["Index"])

    def test_refused_change_is_not_recorded(self):
        before = self.last_index()
        self.cli_fails(1, r"Banner", "set-receive-connector", DEFAULT_CONNECTOR,
                       "--banner", "hello")
        new = [e for e in self.events() if e["Index"] > before]
        self.assertEqual([e for e in new if e["EventId"] in (13001, 12002)], [],
                         f"a refused command was recorded as a change: {new}")

    def test_reads_are_not_recorded_as_changes(self):
        before = self.last_index()
        self.cli_json("get-receive-connector")
        self.assertEqual([e for e in self.events() if e["Index"] > before
                          and e["EventId"] == 13001], [])

    def test_filters(self):
        self.cli_ok("new-accepted-domain", f"{unique_token('f')}.test".lower())
        only = self.wait_event(lambda e: True, "--id", "12002")
        self.assertIsNotNone(only)
        self.assertEqual({e["EventId"] for e in self.events("--id", "13001")}, {13001})
        newest = self.events("--newest", "1")
        self.assertEqual(len(newest), 1, newest)
        self.assertEqual(newest[0]["Index"], self.last_index())
        self.assertTrue(self.events("--since", "1h"), "nothing since an hour ago")
        self.assertEqual({e["Level"] for e in self.events("--level", "Information")},
                         {"Information"})
        self.cli_fails(2, r"--since.*bogus", "get-event", "--since", "bogus")


# --- offline ---------------------------------------------------------------------------------

class Offline(CliMixin, DaemonTestCase):
    daemon_per_test = True

    def test_offline_change_applies_on_next_start(self):
        domain = "offline.example.net"
        self.starling.stop_checked()
        self.cli_fails(1, r"not running.*--offline", "set-receive-connector", DEFAULT_CONNECTOR,
                       "--fqdn", "offline.example.test")
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "offline.example.test",
                    "--offline")
        self.cli_ok("new-accepted-domain", domain, "--offline")
        self.cli_ok("new-mailbox", "--address", f"u@{domain}", "--offline")
        (c,) = self.cli_json("get-receive-connector", "--offline")
        self.assertEqual(c["Fqdn"], "offline.example.test")

        self.starling.start()
        (c,) = self.cli_json("get-receive-connector")
        self.assertEqual(c["Fqdn"], "offline.example.test")
        with RawClient(self.starling.port) as client:
            self.assertIn("220 offline.example.test ", str(client.greeting()))
            client.ehlo()
            self.assertEqual(client.cmd("MAIL FROM:<a@client.test>").code, 250)
            r = client.cmd(f"RCPT TO:<u@{domain}>")
            self.assertEqual(r.code, 250, f"offline accepted domain not applied: {r}")
        change = self.wait_event(lambda e: e.get("Command") == "new-accepted-domain",
                                 "--id", "13001")
        self.assertIsNotNone(change, "the offline change was not recorded as 13001")
        self.assertEqual(change["User"], "root")

    def test_offline_by_non_admin_is_permission_denied(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run the shell as another uid")
        self.starling.stop_checked()
        # The data directory is 0711 as in production: make the temporary parent the same.
        os.chmod(self.starling.root, 0o711)
        before = self.cli_json("get-receive-connector", "--offline")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        for args in (["get-certificate", "--offline"],
                     ["set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "x.example.test",
                      "--offline"]):
            self.cli_fails(77, r"permission denied.*--offline.*only root", *args, wrap=nobody)
        self.assertEqual(self.cli_json("get-receive-connector", "--offline"), before)
        self.starling.start()


if __name__ == "__main__":
    unittest.main()
