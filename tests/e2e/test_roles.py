"""Who may do what (docs/roles.md, docs/roles.md), with real Unix users.

The module creates users and groups with random suffixes (useradd/groupadd), runs the shell as
them with runuser(1), and deletes them afterwards. The daemon authorizes by SO_PEERCRED, so these
are real callers. A refusal exits 77, names the role needed, changes nothing (the store as root
sees it is compared before and after) and is recorded as event 13002. Needs root.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from starling_cli import CliMixin, port_accepts, run_starling, skip_unless_usable_by, starling_binary
from starling_fixture import (DOMAIN, FQDN, HOST, SERVER_NAME, DaemonTestCase, Starling,
                              bin_dir, free_port, unique_token)

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"
DEFAULT_ADMIN_GROUP = "starling-admins"
VIEW, SERVER, ORG = "ViewOnlyAdministrator", "ServerAdministrator", "OrganizationAdministrator"
DENIED = 77
# A caller holding no role at all is refused at accept, before the daemon reads the command.
NO_ROLE = "holds no role on this server"


# --- Unix accounts ---------------------------------------------------------------------------

class Accounts:
    """Users and groups made for this run; all removed by remove()."""

    def __init__(self):
        self.suffix = f"{random.randrange(1 << 32):08x}"
        self.users, self.groups = [], []

    def _run(self, *cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")

    def group(self, base):
        name = f"st{base}{self.suffix}"
        self._run("groupadd", name)
        self.groups.append(name)
        return name

    def user(self, base, groups=()):
        name = f"st{base}{self.suffix}"
        cmd = ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin"]
        if groups:
            cmd += ["-G", ",".join(groups)]
        self._run(*cmd, name)
        self.users.append(name)
        return name

    def adopt_group(self, name):
        """Creates group `name` if it does not exist (then it is removed with the others)."""
        r = subprocess.run(["getent", "group", name], capture_output=True)
        if r.returncode != 0:
            self._run("groupadd", name)
            self.groups.append(name)

    def remove(self):
        for u in reversed(self.users):
            subprocess.run(["userdel", u], capture_output=True)
        for g in reversed(self.groups):
            subprocess.run(["groupdel", g], capture_output=True)
        self.users, self.groups = [], []


ACCOUNTS = None
U = {}  # role in the tests -> user name
G = {}  # role in the tests -> group name


def setUpModule():
    global ACCOUNTS
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root: creates Unix users and runs the shell as them")
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "runuser", "getent"):
        if not shutil.which(tool):
            raise unittest.SkipTest(f"{tool} is not installed")
    ACCOUNTS = Accounts()
    try:
        G["admins"] = ACCOUNTS.group("adm")
        G["servers"] = ACCOUNTS.group("srv")
        ACCOUNTS.adopt_group(DEFAULT_ADMIN_GROUP)
        U["none"] = ACCOUNTS.user("none")
        U["view"] = ACCOUNTS.user("view")
        U["server"] = ACCOUNTS.user("srv", [G["servers"]])
        U["org"] = ACCOUNTS.user("org")
        U["grantee"] = ACCOUNTS.user("gran")
        U["admin"] = ACCOUNTS.user("adm", [G["admins"]])
        U["default_admin"] = ACCOUNTS.user("dadm", [DEFAULT_ADMIN_GROUP])
        # The other users must be able to run the binary at all, or every test would say 77/126.
        skip_unless_usable_by(U["none"])
    except BaseException:
        ACCOUNTS.remove()
        raise


def tearDownModule():
    if ACCOUNTS is not None:
        ACCOUNTS.remove()


# --- servers ---------------------------------------------------------------------------------

class SetupStarling(Starling):
    """A fixture Starling whose `starling setup` gets extra options (--mode, --admin-group)."""

    def __init__(self, extra):
        self.extra = list(extra)
        super().__init__()

    def setup(self):
        cmd = [starling_binary(), "setup", "--data-dir", str(self.data_dir),
               "--server-name", SERVER_NAME, "--fqdn", FQDN, "--listen", f"{HOST}:{self.port}",
               "--submission-listen", "none", "--accepted-domain", DOMAIN, *self.extra]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        self._log(b"$ " + " ".join(cmd).encode() + b"\n" + r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"starling setup failed ({r.returncode}): {r.stdout}{r.stderr}")
        # The data directory is 0711 so that role holders reach control.sock; its temporary
        # parent must let them through as /var/lib does.
        os.chmod(self.root, 0o711)


class RolesCase(CliMixin, DaemonTestCase):
    setup_args = ()
    assignments = ()  # (role, "--user"/"--group", key in U/G), made by root before the tests

    @classmethod
    def setUpClass(cls):
        cls.starling = SetupStarling(cls.setup_args(G) if callable(cls.setup_args)
                                     else cls.setup_args)
        try:
            cls.starling.start()
            for role, kind, who in cls.assignments:
                name = U[who] if kind == "--user" else G[who]
                r = run_starling(cls.starling.data_dir, "new-role-assignment", "--role", role,
                                 kind, name)
                if r.returncode != 0:
                    raise RuntimeError(f"cannot assign {role} to {name}: {r.stderr}")
        except BaseException:
            print(cls.starling.log_text(), file=sys.stderr)
            cls.starling.remove()
            cls.starling = None
            raise

    def as_user(self, who, *args, **kw):
        return self.cli(*args, user=U[who], **kw)

    def assertDenied(self, who, role_re, *args):
        self.cli_fails(DENIED, rf"permission denied.*{role_re}", *args, user=U[who])

    def setup_thumbprint(self):
        (cert,) = [c for c in self.cli_json("get-certificate") if c["Subject"] == f"CN={SERVER_NAME}"]
        return cert["Thumbprint"]

    def readable_dir(self):
        d = Path(tempfile.mkdtemp(prefix="starling-roles-"))
        os.chmod(d, 0o777)
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def change_commands(self, tag):
        """(args, role needed) for commands that change something."""
        thumb = self.setup_thumbprint()
        d = self.readable_dir()
        self.export_dir = d / "out"
        self.export_dir.mkdir()
        os.chmod(self.export_dir, 0o777)
        pem = d / "cert.pem"
        self.cli_ok("export-certificate", thumb, "--file", pem)
        os.chmod(pem, 0o644)
        return [
            (["new-certificate", "--domain", f"{tag}.example.test"], SERVER),
            (["enable-certificate", thumb, "--services", "IMAP"], SERVER),
            (["remove-certificate", thumb, "--yes", "--force"], SERVER),
            (["import-certificate", str(pem)], SERVER),
            (["export-certificate", thumb, "--file", str(self.export_dir / f"{tag}.pem")], SERVER),
            (["new-receive-connector", "--name", tag, "--bindings", f"127.0.0.1:{free_port()}"],
             SERVER),
            (["set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", f"{tag}.example.test"], SERVER),
            (["remove-receive-connector", DEFAULT_CONNECTOR, "--yes"], SERVER),
            (["new-send-connector", "--name", tag, "--address-spaces", "*"], SERVER),
            (["new-accepted-domain", f"{tag}.example.net"], SERVER),
            (["remove-accepted-domain", f"{tag}.example.net", "--yes"], SERVER),
            (["new-role-assignment", "--role", ORG, "--user", U["none"]], ORG),
            (["remove-role-assignment", "--role", VIEW, "--user", U["view"], "--yes"], ORG),
        ]


def admin_group_args(groups):
    return ["--admin-group", groups["admins"]]


class HubRoles(RolesCase):
    setup_args = staticmethod(admin_group_args)
    assignments = ((VIEW, "--user", "view"), (SERVER, "--group", "servers"),
                   (ORG, "--user", "org"))

    def test_user_without_role_is_refused_everything(self):
        before = self.snapshot()
        reads = [["get-certificate"], ["get-receive-connector"], ["get-send-connector"],
                 ["get-accepted-domain"], ["get-role-assignment"], ["get-event"]]
        for args in reads:
            with self.subTest(args=args):
                r = self.cli_fails(DENIED, rf"permission denied: {U['none']} {NO_ROLE}",
                                   *args, user=U["none"])
                self.assertEqual(r.stdout, "", "a refused read printed something")
        for args, role in self.change_commands("none"):
            with self.subTest(args=args):
                self.assertDenied("none", NO_ROLE, *args)
        self.assertEqual(self.snapshot(), before, "a refused command changed the store")

    def test_view_only_lists_but_cannot_change(self):
        for cmd in ("get-certificate", "get-receive-connector", "get-send-connector",
                    "get-accepted-domain", "get-role-assignment"):
            with self.subTest(cmd=cmd):
                self.assertEqual(self.cli_json(cmd, user=U["view"]), self.cli_json(cmd))
        self.cli_json("get-event", user=U["view"])
        r = self.cli_ok("get-receive-connector", "--format", "list",
                        "--property", "name,fqdn,objectClass", user=U["view"])
        self.assertIn("msExchSmtpReceiveConnector", r.stdout)

        before = self.snapshot()
        for args, role in self.change_commands("view"):
            with self.subTest(args=args):
                self.assertDenied("view", rf"{args[0]} needs the {role} role", *args)
        self.assertEqual(self.snapshot(), before, "a view-only administrator changed the store")
        self.assertEqual(list(self.export_dir.iterdir()), [], "a refused export wrote a file")

    def test_server_administrator_by_group_can_create_and_remove(self):
        tag = unique_token("srv").replace("-", "")[:20].lower()
        port = free_port()
        self.cli_ok("new-accepted-domain", f"{tag}.example.net", user=U["server"])
        self.cli_ok("new-receive-connector", "--name", tag, "--bindings", f"127.0.0.1:{port}",
                    user=U["server"])
        self.assertTrue(port_accepts(port), "the server administrator's connector is not listening")
        self.cli_ok("set-receive-connector", tag, "--fqdn", f"{tag}.example.test", user=U["server"])
        self.cli_ok("new-certificate", "--domain", f"{tag}.example.test", user=U["server"])
        (cert,) = self.cli_json("get-certificate", "--domain", f"{tag}.example.test")
        self.cli_ok("enable-certificate", cert["Thumbprint"], "--services", "IMAP",
                    user=U["server"])
        self.assertEqual(self.cli_json("get-certificate", cert["Thumbprint"])[0]["Services"],
                         "IMAP, SMTP")
        self.cli_ok("remove-receive-connector", tag, "--yes", user=U["server"])
        self.cli_ok("remove-certificate", cert["Thumbprint"], "--yes", "--force", user=U["server"])
        self.cli_ok("remove-accepted-domain", f"{tag}.example.net", "--yes", user=U["server"])
        self.assertFalse(port_accepts(port))

        changes = [e for e in self.events("--id", "13001") if e.get("User") == U["server"]]
        self.assertEqual({e["Command"] for e in changes},
                         {"new-accepted-domain", "new-receive-connector", "set-receive-connector",
                          "new-certificate", "enable-certificate", "remove-receive-connector",
                          "remove-certificate", "remove-accepted-domain"}, changes)

        before = self.snapshot()
        self.assertDenied("server", rf"new-role-assignment needs the {ORG} role",
                          "new-role-assignment", "--role", VIEW, "--user", U["grantee"])
        self.assertDenied("server", rf"remove-role-assignment needs the {ORG} role",
                          "remove-role-assignment", "--role", VIEW, "--user", U["view"], "--yes")
        self.assertEqual(self.snapshot(), before)

    def test_organization_administrator_assigns_roles(self):
        grantee = U["grantee"]
        self.assertDenied("grantee", NO_ROLE, "get-certificate")
        self.cli_ok("new-role-assignment", "--role", VIEW, "--user", grantee, user=U["org"])
        self.assertEqual(self.cli_json("get-certificate", user=U["grantee"]),
                         self.cli_json("get-certificate"))
        self.assertDenied("grantee", rf"new-accepted-domain needs the {SERVER} role",
                          "new-accepted-domain", "grantee.example.net")
        self.cli_ok("remove-role-assignment", "--role", VIEW, "--user", grantee, "--yes",
                    user=U["org"])
        self.assertDenied("grantee", NO_ROLE, "get-certificate")
        # The organization administrator may also change the server.
        self.cli_ok("new-accepted-domain", "org.example.net", user=U["org"])
        self.cli_ok("remove-accepted-domain", "org.example.net", "--yes", user=U["org"])

    def test_admin_group_member_is_local_administrator(self):
        admin = U["admin"]
        self.cli_ok("new-role-assignment", "--role", VIEW, "--user", U["grantee"], user=admin)
        self.cli_ok("remove-role-assignment", "--role", VIEW, "--user", U["grantee"], "--yes",
                    user=admin)
        self.cli_ok("new-accepted-domain", "admin.example.net", user=admin)
        self.cli_ok("remove-accepted-domain", "admin.example.net", "--yes", user=admin)
        self.assertEqual(self.cli_json("get-certificate", user=admin), self.cli_json("get-certificate"))
        changes = [e for e in self.events("--id", "13001") if e.get("User") == admin]
        self.assertEqual(len(changes), 4, changes)
        # Membership of the default group means nothing on a server set up with another group.
        self.assertDenied("default_admin", NO_ROLE, "get-certificate")

    def test_refusals_are_recorded_as_13002(self):
        self.assertDenied("none", NO_ROLE, "new-accepted-domain", "refused.example.net")
        self.assertDenied("view", rf"new-certificate needs the {SERVER} role",
                          "new-certificate", "--domain", "refused.example.test")
        self.assertDenied("server", rf"new-role-assignment needs the {ORG} role",
                          "new-role-assignment", "--role", ORG, "--user", U["server"])
        for who, command, role in (("none", "any command", VIEW),
                                   ("view", "new-certificate", SERVER),
                                   ("server", "new-role-assignment", ORG)):
            with self.subTest(who=who):
                e = self.wait_event(lambda e: e.get("User") == U[who]
                                    and e.get("Command") == command, "--id", "13002")
                self.assertIsNotNone(e, f"no 13002 for {U[who]} {command}: "
                                        f"{self.events('--id', '13002')}")
                self.assertEqual(e["Name"], "ManagementAccessDenied")
                self.assertEqual(e["Level"], "Warning")
                self.assertEqual(e["RequiredRole"], role)
        self.assertEqual([e for e in self.events("--id", "13001") if e.get("User") == U["none"]],
                         [])


class EdgeRoles(RolesCase):
    setup_args = staticmethod(lambda groups: ["--mode", "edge", "--admin-group", groups["admins"]])
    assignments = ((VIEW, "--user", "view"), (SERVER, "--group", "servers"),
                   (ORG, "--user", "org"))

    EDGE_RE = r"edge.*only local administrators"

    def test_role_holders_are_refused_on_edge(self):
        before = self.snapshot()
        for who in ("view", "server", "org", "none"):
            for args in (["get-certificate"], ["get-receive-connector"],
                         ["new-accepted-domain", f"{who}.example.net"],
                         ["set-receive-connector", DEFAULT_CONNECTOR, "--fqdn", "e.example.test"]):
                with self.subTest(who=who, args=args):
                    r = self.cli_fails(DENIED, rf"permission denied.*{self.EDGE_RE}", *args,
                                       user=U[who])
                    self.assertEqual(r.stdout, "")
        self.assertEqual(self.snapshot(), before, "a refused command changed the edge store")
        for who in ("view", "server"):
            e = self.wait_event(lambda e: e.get("User") == U[who]
                                and e.get("Command") == "new-accepted-domain", "--id", "13002")
            self.assertIsNotNone(e, f"edge refusal of {U[who]} not recorded as 13002")

    def test_local_administrators_may_on_edge(self):
        admin = U["admin"]
        self.assertEqual(self.cli_json("get-certificate", user=admin), self.cli_json("get-certificate"))
        self.cli_ok("new-accepted-domain", "edge-admin.example.net", user=admin)
        self.cli_ok("remove-accepted-domain", "edge-admin.example.net", "--yes", user=admin)
        self.cli_ok("new-accepted-domain", "edge-root.example.net")
        self.cli_ok("remove-accepted-domain", "edge-root.example.net", "--yes")


class DefaultAdminGroup(RolesCase):
    """`starling setup` without --admin-group: members of starling-admins are local admins."""

    def test_member_of_starling_admins_is_local_administrator(self):
        who = U["default_admin"]
        self.cli_ok("new-accepted-domain", "default-admin.example.net", user=who)
        self.cli_ok("new-role-assignment", "--role", VIEW, "--user", U["grantee"], user=who)
        self.cli_ok("remove-role-assignment", "--role", VIEW, "--user", U["grantee"], "--yes",
                    user=who)
        self.assertIn("default-admin.example.net",
                      [d["DomainName"] for d in self.cli_json("get-accepted-domain")])
        self.assertDenied("admin", NO_ROLE, "get-certificate")


class OfflineRoles(RolesCase):
    """--offline is for root: the store belongs to the service user (docs/roles.md)."""

    setup_args = staticmethod(admin_group_args)
    assignments = ((ORG, "--user", "org"),)

    def stop_daemon(self):
        self.starling.stop_checked()
        self.addCleanup(lambda: self.starling.running() or self.starling.start())

    def test_offline_refused_with_77_for_everyone_else(self):
        self.stop_daemon()
        before = self.cli_json("get-receive-connector", "--offline")
        for who in ("none", "org"):
            for args in (["get-receive-connector", "--offline"],
                         ["set-receive-connector", DEFAULT_CONNECTOR,
                          "--fqdn", "refused.example.test", "--offline"]):
                with self.subTest(who=who, args=args):
                    self.cli_fails(DENIED, r"permission denied.*--offline.*only root",
                                   *args, user=U[who])
        self.assertEqual(self.cli_json("get-receive-connector", "--offline"), before)

    def test_offline_is_for_root_only(self):
        # The store belongs to the service user (0600): an admin group member goes through the
        # daemon, and --offline refuses them before anything is touched.
        self.stop_daemon()
        self.cli_fails(DENIED, r"--offline.*only root", "set-receive-connector", DEFAULT_CONNECTOR,
                       "--fqdn", "offline-admin.example.test", "--offline", user=U["admin"])
        self.starling.start()
        (c,) = self.cli_json("get-receive-connector")
        self.assertNotEqual(c["Fqdn"], "offline-admin.example.test")

if __name__ == "__main__":
    unittest.main()
