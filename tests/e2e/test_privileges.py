"""Least privilege (docs/security.md): starlingd started as root drops to the service user before
it starts a thread, with no_new_privs and no capability but CAP_NET_BIND_SERVICE (none with
--keep-net-bind-service=false); what it writes is that user's; the store is 0600; root, the
admin group and role holders still manage it. Started directly as the service user with the
ambient capability (systemd's AmbientCapabilities), or as any other user, it runs as itself.
Read from /proc/PID/task/*/status of the running daemon. Needs root (skips otherwise)."""

import os
import pwd
import socket
import sqlite3
import subprocess
import unittest
from pathlib import Path

from starling_cli import describe, run_starling, skip_unless_usable_by
from starling_fixture import DOMAIN, HOST, SERVICE_USER, DaemonTestCase, RawClient, Starling, unique_token
from test_roles import Accounts

NET_BIND_SERVICE = 1 << 10  # CAP_NET_BIND_SERVICE, bit 10
DEFAULT_CONNECTOR = "Default mx"


def thread_status(pid):
    """{tid: {field: value}} of every thread of `pid`, from /proc/PID/task/TID/status."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = {}
        for line in (task / "status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        out[task.name] = fields
    return out


def caps(value):
    return int(value, 16)


def low_free_port():
    """A port below 1024 that nothing listens on (bound and released as root)."""
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
                return port
            except OSError:
                continue
    raise unittest.SkipTest("no free port below 1024")


@unittest.skipUnless(os.geteuid() == 0, "starts starlingd as root")
class PrivilegesCase(DaemonTestCase):
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        cls.starling = Starling()
        cls.user = pwd.getpwnam(SERVICE_USER)  # `starling setup` as root created it
        try:
            cls.starling.start(*cls.daemon_args)
        except BaseException:
            print(cls.starling.log_text())
            cls.starling.remove()
            raise

    def threads(self):
        status = thread_status(self.starling.proc.pid)
        self.assertGreater(len(status), 1, "expected the daemon's threads to be running")
        return status

    def assertServiceIdentity(self, status):
        uid, gid = str(self.user.pw_uid), str(self.user.pw_gid)
        for tid, f in status.items():
            with self.subTest(thread=tid, name=f.get("Name")):
                self.assertEqual(f["Uid"].split(), [uid] * 4, "real, effective, saved, fs uid")
                self.assertEqual(f["Gid"].split(), [gid] * 4, "real, effective, saved, fs gid")
                self.assertEqual(f["Groups"].split(), [gid], "root's supplementary groups must go")
                self.assertEqual(f["NoNewPrivs"], "1")
                self.assertEqual(caps(f["CapAmb"]), 0)

    def assertCapabilities(self, status, expected):
        for tid, f in status.items():
            with self.subTest(thread=tid, name=f.get("Name")):
                self.assertEqual(caps(f["CapEff"]), expected, f"CapEff {f['CapEff']}")
                self.assertEqual(caps(f["CapPrm"]), expected, f"CapPrm {f['CapPrm']}")
                self.assertEqual(caps(f["CapBnd"]), expected, f"CapBnd {f['CapBnd']}")

    def add_low_port_connector(self, port):
        return run_starling(self.starling.data_dir, "new-receive-connector", "--name", f"Low {port}",
                            "--bindings", f"{HOST}:{port}", "--remote-ip-ranges", "127.0.0.1")


class DroppedToServiceUser(PrivilegesCase):
    """Started as root with the defaults: the service user, CAP_NET_BIND_SERVICE kept."""

    def test_every_thread_runs_as_the_service_user_with_net_bind_service_only(self):
        status = self.threads()
        self.assertServiceIdentity(status)
        self.assertCapabilities(status, NET_BIND_SERVICE)

    def test_what_it_writes_belongs_to_the_service_user(self):
        token = unique_token("owner")
        with RawClient(self.starling.port) as c:
            self.send_message(c, token, "owned by the service user")
        (path,) = self.wait_delivered(token, user="u")
        for p in [path, *path.parents[:4]]:  # new/, u/, example.test/, mailboxes/
            with self.subTest(path=str(p)):
                self.assertEqual(p.stat().st_uid, self.user.pw_uid)
        queue = self.starling.data_dir / "queue"
        for p in [queue, *queue.rglob("*")]:
            with self.subTest(path=str(p)):
                self.assertEqual(p.lstat().st_uid, self.user.pw_uid)

    def test_the_store_is_the_service_users_alone(self):
        db = (self.starling.data_dir / "starling.db").stat()
        self.assertEqual(db.st_uid, self.user.pw_uid)
        self.assertEqual(db.st_mode & 0o777, 0o600)
        d = self.starling.data_dir.stat()
        self.assertEqual(d.st_uid, self.user.pw_uid)
        self.assertEqual(d.st_mode & 0o777, 0o711, "others pass through to control.sock only")

    def test_a_binding_added_live_may_use_a_port_below_1024(self):
        port = low_free_port()
        r = self.add_low_port_connector(port)
        self.assertEqual(r.returncode, 0, describe(r))
        self.addCleanup(run_starling, self.starling.data_dir, "remove-receive-connector", f"Low {port}", "--yes")
        with RawClient(port) as c:
            self.assertEqual(c.greeting().code, 220)

    def test_root_the_admin_group_and_role_holders_still_manage_it(self):
        accounts = Accounts()
        self.addCleanup(accounts.remove)
        admins = "starling-admins"
        accounts.adopt_group(admins)
        admin = accounts.user("padm", [admins])
        viewer = accounts.user("pview")
        nobody = accounts.user("pnone")
        skip_unless_usable_by(nobody)
        r = run_starling(self.starling.data_dir, "new-role-assignment", "--role", "ViewOnlyAdministrator",
                         "--user", viewer)
        self.assertEqual(r.returncode, 0, describe(r))
        for who in (None, admin, viewer):
            with self.subTest(user=who or "root"):
                r = run_starling(self.starling.data_dir, "get-receive-connector", user=who)
                self.assertEqual(r.returncode, 0, describe(r))
                self.assertIn(DEFAULT_CONNECTOR, r.stdout)
        r = run_starling(self.starling.data_dir, "get-receive-connector", user=nobody)
        self.assertEqual(r.returncode, 77, describe(r))


class KeptNothing(PrivilegesCase):
    """--keep-net-bind-service=false: no capability at all once the listeners are bound."""

    daemon_args = ("--keep-net-bind-service=false",)

    def test_every_thread_runs_as_the_service_user_without_capabilities(self):
        status = self.threads()
        self.assertServiceIdentity(status)  # the saved uid too: root cannot be taken back
        self.assertCapabilities(status, 0)

    def test_a_binding_added_live_below_1024_fails_and_the_rest_applies(self):
        port = low_free_port()
        self.add_low_port_connector(port)
        self.addCleanup(run_starling, self.starling.data_dir, "remove-receive-connector", f"Low {port}", "--yes")
        with self.assertRaises(OSError):
            RawClient(port, timeout=3).close()
        with RawClient(self.starling.port) as c:
            self.assertEqual(c.greeting().code, 220)


@unittest.skipUnless(os.geteuid() == 0, "creates users and starts starlingd as them")
class StartedAsAnotherUser(unittest.TestCase):
    def setUp(self):
        self.s = Starling()
        self.addCleanup(self.s.remove)
        self.addCleanup(self.s.kill)

    def status(self):
        return thread_status(self.s.proc.pid)

    def test_directly_as_the_service_user_with_the_ambient_capability(self):
        # What systemd does with User=starling and AmbientCapabilities=CAP_NET_BIND_SERVICE.
        self.s.start(wrap=("setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups",
                           "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"))
        user = pwd.getpwnam(SERVICE_USER)
        for tid, f in self.status().items():
            with self.subTest(thread=tid):
                self.assertEqual(f["Uid"].split(), [str(user.pw_uid)] * 4)
                self.assertEqual(caps(f["CapEff"]), NET_BIND_SERVICE)
                self.assertEqual(f["NoNewPrivs"], "1")
        token = unique_token("direct")
        with RawClient(self.s.port) as c:
            c.greeting()
            c.ehlo()
            for line in ("MAIL FROM:<a@client.test>", f"RCPT TO:<u@{DOMAIN}>", "DATA"):
                self.assertLess(c.cmd(line).code, 400)
            self.assertEqual(c.cmd(f"Subject: {token}\r\n\r\nx\r\n.").code, 250)
        self.assertTrue(self.s.wait_for(token, user="u"), self.s.log_text())
        self.s.stop_checked()

    def test_a_user_without_the_service_user_runs_as_itself(self):
        # A developer's `make run`: the data directory is theirs and starlingd does not drop.
        accounts = Accounts()
        self.addCleanup(accounts.remove)
        dev = pwd.getpwnam(accounts.user("pdev"))
        subprocess.run(["chown", "-R", f"{dev.pw_uid}:{dev.pw_gid}", str(self.s.data_dir)], check=True)
        self.s.start(wrap=("setpriv", f"--reuid={dev.pw_uid}", f"--regid={dev.pw_gid}", "--clear-groups"))
        for tid, f in self.status().items():
            with self.subTest(thread=tid):
                self.assertEqual(f["Uid"].split(), [str(dev.pw_uid)] * 4)
                self.assertEqual(caps(f["CapEff"]), 0)
        with RawClient(self.s.port) as c:
            self.assertEqual(c.greeting().code, 220)
        self.s.stop_checked()

    def test_root_refuses_when_the_service_user_is_missing(self):
        with sqlite3.connect(self.s.data_dir / "starling.db") as db:
            db.execute("UPDATE settings SET value = 'stnosuchuser' WHERE key = 'service_user'")
        db.close()
        with self.assertRaises(RuntimeError) as e:
            self.s.start()
        self.assertIn("service user 'stnosuchuser' does not exist", str(e.exception))
        self.assertEqual(self.s.proc.returncode, 1)

    def test_root_refuses_a_data_directory_the_service_user_cannot_reach(self):
        os.chmod(self.s.root, 0o700)  # like a checkout in /root
        with self.assertRaises(RuntimeError) as e:
            self.s.start()
        self.assertIn(f"the service user {SERVICE_USER} cannot use {self.s.data_dir}", str(e.exception))
        self.assertEqual(self.s.proc.returncode, 1)

    def test_files_planted_by_root_become_the_service_users_at_start(self):
        # A root `--offline` command or a restored queue leaves root's files behind.
        planted = self.s.data_dir / "queue" / "planted-by-root"
        planted.write_bytes(b"not a queue file")
        os.chown(self.s.data_dir / "starling.db", 0, 0)
        self.s.start()
        user = pwd.getpwnam(SERVICE_USER)
        self.assertEqual((self.s.data_dir / "starling.db").stat().st_uid, user.pw_uid)
        for p in (self.s.data_dir / "queue").rglob("*"):
            with self.subTest(path=str(p)):
                self.assertEqual(p.lstat().st_uid, user.pw_uid)
        with RawClient(self.s.port) as c:
            self.assertEqual(c.greeting().code, 220)
        self.s.stop_checked()


if __name__ == "__main__":
    unittest.main()
