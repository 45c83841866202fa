"""The systemd unit debian/starlingd.service: `systemd-analyze verify` accepts it without a word,
and it says what docs/security.md promises (Type=notify with a watchdog, the service user, only
CAP_NET_BIND_SERVICE, the sandbox). systemd need not be running: the unit is verified in a
scratch root holding the system's units and the built starlingd at /usr/sbin/starlingd."""

import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from starling_fixture import bin_dir

UNIT = Path(__file__).resolve().parents[2] / "debian" / "starlingd.service"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")

EXPECTED = {
    "Type": ["notify"],
    "User": ["starling"],
    "AmbientCapabilities": ["CAP_NET_BIND_SERVICE"],
    "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"],
    "NoNewPrivileges": ["yes"],
    "ProtectSystem": ["strict"],
    "ReadWritePaths": ["/var/lib/starling"],
    "PrivateTmp": ["yes"],
    "ProtectHome": ["yes"],
    "PrivateDevices": ["yes"],
    "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
    "ExecStart": ["/usr/sbin/starlingd --data-dir /var/lib/starling"],
}


def directives(text):
    """{name: [values]} of the unit's Key=value lines (comments and sections skipped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
@unittest.skipUnless(SYSTEM_UNITS.is_dir(), f"{SYSTEM_UNITS} is missing (no systemd units to verify against)")
class Verify(unittest.TestCase):
    def verify(self, unit_text):
        """(exit status, output) of `systemd-analyze verify` on `unit_text` in a scratch root."""
        with tempfile.TemporaryDirectory(prefix="unit-root-") as d:
            root = Path(d)
            shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
            (root / "lib").symlink_to("usr/lib")
            sbin = root / "usr/sbin"
            sbin.mkdir(parents=True)
            shutil.copy(bin_dir() / "starlingd", sbin / "starlingd")
            etc = root / "etc/systemd/system"
            etc.mkdir(parents=True)
            (etc / "starlingd.service").write_text(unit_text)
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "starlingd.service"],
                               capture_output=True, text=True, timeout=120)
            return r.returncode, (r.stdout + r.stderr).strip()

    def test_verify_accepts_the_unit_without_a_warning(self):
        code, out = self.verify(UNIT.read_text())
        self.assertEqual((code, out), (0, ""))

    def test_verify_here_does_report_a_broken_unit(self):
        # The check above could pass by verifying nothing: a mistyped value must show.
        code, out = self.verify(UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=stric"))
        self.assertRegex(out, r"starlingd\.service:\d+: .*stric$")

    def test_the_unit_runs_starlingd_least_privileged_and_sandboxed(self):
        d = directives(UNIT.read_text())
        for key, values in EXPECTED.items():
            with self.subTest(key=key):
                self.assertEqual(d.get(key), values)
        self.assertIn("@system-service", d.get("SystemCallFilter", []))
        self.assertTrue(d.get("WatchdogSec"), "the watchdog starlingd feeds is not asked for")


if __name__ == "__main__":
    unittest.main()
