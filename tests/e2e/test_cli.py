"""The command line that explains itself (docs/commands.md), and the man pages.

`starling --help` names every command, grouped; `COMMAND --help` and `help COMMAND` show that
command's own options and its Exchange alias; `--version` on both programs; global options
before or after the command; /var/lib/starling when no data directory is given; secrets refused
as arguments (nothing changes, nothing echoed); durations and sizes shown as Exchange shows them
while JSON keeps numbers; an inherited Fqdn shown as the effective one; --property with a
property some objects lack; starling(8) and starlingd(8) built, lint-clean, naming every command.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

from starling_cli import CliMixin, describe, parse_list, run_starling, starling_binary
from starling_fixture import FQDN, HOST, SERVER_NAME, DaemonTestCase, bin_dir, free_port

DEFAULT_CONNECTOR = f"Default {SERVER_NAME}"

# What starlingd knows (mgmt::command_names()) plus the shell's own setup, by group.
GROUPS = {
    "Certificates": ["get-certificate", "new-certificate", "import-certificate",
                     "enable-certificate", "export-certificate", "remove-certificate"],
    "Connectors and transport": [
        "get-receive-connector", "new-receive-connector", "set-receive-connector",
        "remove-receive-connector", "get-send-connector", "new-send-connector",
        "set-send-connector", "remove-send-connector", "get-transport-server",
        "set-transport-server"],
    "Accepted domains": ["get-accepted-domain", "new-accepted-domain", "set-accepted-domain",
                         "remove-accepted-domain"],
    "Recipients": ["get-mailbox", "new-mailbox", "set-mailbox", "remove-mailbox",
                   "get-distribution-group", "new-distribution-group",
                   "set-distribution-group", "remove-distribution-group"],
    "Roles": ["get-role-assignment", "new-role-assignment", "remove-role-assignment"],
    "Events": ["get-event"],
    "Diagnostics": ["test-starttls"],
    "Setup": ["setup"],
}
COMMANDS = [c for group in GROUPS.values() for c in group]

# A few options each command --help must show, and one it must not (another command's).
OWN_OPTIONS = {
    "set-receive-connector": (["--max-message-size SIZE", "--connection-timeout DURATION",
                               "--fqdn NAME"], "--newest"),
    "get-event": (["--newest N", "--since TIME", "--level LEVEL"], "--max-message-size"),
    "new-mailbox": (["--password-file FILE", "--address", "--primary-smtp-address"], "--newest"),
    "import-certificate": (["--password-file FILE", "--trusted-root"], "--members"),
    "setup": (["--server-name NAME", "--listen IP:PORT", "--user USER"], "--newest"),
}


def run_binary(name, *args, env=None):
    full_env = dict(os.environ)
    full_env.pop("STARLING_DATA_DIR", None)
    full_env.pop("STARLING_PASSWORD", None)
    if env:
        full_env.update(env)
    path = starling_binary() if name == "starling" else str(bin_dir() / name)
    return subprocess.run([path, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=full_env, timeout=60)


def group_of(help_text, command):
    """The heading of the group `command` is listed under in `starling --help`."""
    heading = None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            heading = line[:-1]
        elif re.match(rf"^  {re.escape(command)}\s", line):
            return heading
    return None


class HelpAndVersion(unittest.TestCase):
    def test_help_lists_every_command_in_its_group(self):
        for args in (["--help"], ["-h"], ["help"]):
            r = run_binary("starling", *args)
            self.assertEqual(r.returncode, 0, describe(r))
            for group, commands in GROUPS.items():
                for c in commands:
                    self.assertEqual(group_of(r.stdout, c), group, f"{c} in {args}:\n{r.stdout}")
            for option in ("--data-dir DIR", "--format", "--property", "--offline", "--version"):
                self.assertIn(option, r.stdout)

    def test_each_command_help_shows_its_own_options_and_alias(self):
        seen = set()
        for c in COMMANDS:
            with self.subTest(command=c):
                r = run_binary("starling", c, "--help")
                self.assertEqual(r.returncode, 0, describe(r))
                self.assertIn(f"usage: starling {c}", r.stdout)
                self.assertNotIn(r.stdout, seen, "two commands print the same help")
                seen.add(r.stdout)
                self.assertEqual(run_binary("starling", "help", c).stdout, r.stdout)
                if c in OWN_OPTIONS:
                    own, other = OWN_OPTIONS[c]
                    for option in own:
                        self.assertIn(option, r.stdout, r.stdout)
                    self.assertNotIn(other, r.stdout, r.stdout)
        r = run_binary("starling", "Get-EventLog", "-Help")
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertIn("usage: starling get-event", r.stdout)
        self.assertIn("Exchange: Get-EventLog", r.stdout)

    def test_unknown_command_and_option_say_where_to_look(self):
        r = run_binary("starling", "frobnicate")
        self.assertEqual(r.returncode, 2, describe(r))
        self.assertIn("starling --help", r.stderr)
        r = run_binary("starling", "get-event", "--colour", "red")
        self.assertEqual(r.returncode, 2, describe(r))
        self.assertIn("--newest", r.stderr)

    def test_version_on_both_programs(self):
        versions = {}
        for program in ("starling", "starlingd"):
            r = run_binary(program, "--version")
            self.assertEqual(r.returncode, 0, describe(r))
            m = re.fullmatch(rf"{program} (\d+\.\d+\.\d+)\n", r.stdout)
            self.assertIsNotNone(m, describe(r))
            versions[program] = m.group(1)
        self.assertEqual(versions["starling"], versions["starlingd"])

    def test_default_data_directory(self):
        # Nothing given: /var/lib/starling. Unless a real server lives there, the shell says it
        # found no starlingd at /var/lib/starling/control.sock.
        if os.path.exists("/var/lib/starling/control.sock"):
            self.skipTest("a starlingd runs in /var/lib/starling on this machine")
        r = run_binary("starling", "get-certificate")
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertIn("/var/lib/starling/control.sock", r.stderr)
        r = run_binary("starling", "get-certificate", env={"STARLING_DATA_DIR": "/nonexistent/sd"})
        self.assertIn("/nonexistent/sd/control.sock", r.stderr, describe(r))
        r = run_binary("starling", "--data-dir", "/nonexistent/arg", "get-certificate",
                       env={"STARLING_DATA_DIR": "/nonexistent/sd"})
        self.assertIn("/nonexistent/arg/control.sock", r.stderr, describe(r))


class ManPages(unittest.TestCase):
    def page(self, name):
        path = bin_dir().parent.parent / "man" / name
        self.assertTrue(path.is_file(), f"{path} is not built (target man)")
        return path, path.read_text()

    def test_pages_exist_and_name_every_command_and_option(self):
        _, text = self.page("starling.8")
        plain = text.replace("\\-", "-")
        for c in COMMANDS:
            self.assertTrue(re.search(rf"starling {re.escape(c)}(?![\w-])", plain), f"{c} is not in starling.8")
        for option in ("--data-dir", "--password-file", "--max-message-size", "--newest"):
            self.assertIn(option, plain)
        _, text = self.page("starlingd.8")
        plain = text.replace("\\-", "-")
        for option in ("--data-dir", "--shutdown-grace", "--receive-memory", "--version"):
            self.assertIn(option, plain)

    def test_pages_render_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("no groff")
        for name in ("starling.8", "starlingd.8"):
            path, _ = self.page(name)
            r = subprocess.run(["groff", "-ww", "-man", "-z", str(path)], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual((r.returncode, r.stderr), (0, ""), name)
            r = subprocess.run(["man", "-l", str(path)], capture_output=True, text=True,
                               timeout=60, env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("SYNOPSIS", r.stdout)


class AgainstTheDaemon(CliMixin, DaemonTestCase):
    def test_global_options_before_and_after_the_command(self):
        d = str(self.starling.data_dir)
        expected = self.cli_json("get-receive-connector")
        for args in (["--data-dir", d, "get-receive-connector", "--format", "json"],
                     ["--format", "json", "get-receive-connector", "--data-dir", d],
                     ["--data-dir=" + d, "--format=json", "Get-ReceiveConnector"]):
            r = run_binary("starling", *args)  # no STARLING_DATA_DIR
            self.assertEqual(r.returncode, 0, describe(r))
            self.assertEqual(json.loads(r.stdout), expected, args)

    def test_secrets_are_refused_as_arguments_and_change_nothing(self):
        before = self.snapshot()
        mailboxes = self.cli_json("get-mailbox")
        secret = "hunter2-on-the-command-line"
        cases = [
            ["new-mailbox", "--address", f"pw@{self.starling.domain}", "--password", secret],
            ["set-mailbox", f"postmaster@{self.starling.domain}", f"--password={secret}"],
            ["import-certificate", "/dev/null", "-Password", secret],
            ["get-certificate", "--password", secret],
            ["--password", secret, "get-event"],
        ]
        for args in cases:
            with self.subTest(args=args[:2]):
                r = self.cli_fails(2, r"--password is not accepted.*--password-file FILE.*"
                                      r"--password-file -.*STARLING_PASSWORD", *args)
                self.assertNotIn(secret, r.stderr + r.stdout)
        r = self.cli_fails(2, r"--authentication-credential-file", "new-send-connector",
                           "--name", "Relay", "--authentication-credential", f"u:{secret}")
        self.assertNotIn(secret, r.stderr)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.cli_json("get-mailbox"), mailboxes)

    def test_durations_and_sizes_in_lists_numbers_in_json(self):
        records = parse_list(self.cli_ok("get-receive-connector", DEFAULT_CONNECTOR,
                                         "--format", "list").stdout)
        shown = {n: v for n, v, _ in records[0]}
        as_json = self.cli_json("get-receive-connector", DEFAULT_CONNECTOR)[0]
        self.assertEqual(as_json["MaxMessageSize"], 10485760)
        self.assertEqual(shown["MaxMessageSize"], "10 MB (10,485,760 bytes)")
        self.assertEqual(as_json["ConnectionTimeout"], 600)
        self.assertEqual(shown["ConnectionTimeout"], "00:10:00")
        self.assertEqual(shown["MaxHeaderSize"], "64 KB (65,536 bytes)")
        self.assertEqual(shown["MaxRecipientsPerMessage"], str(as_json["MaxRecipientsPerMessage"]))
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--connection-timeout",
                    "1.02:03:04", "--max-message-size", "25MB")
        self.addCleanup(self.cli_ok, "set-receive-connector", DEFAULT_CONNECTOR,
                        "--connection-timeout", "00:10:00", "--max-message-size", "10MB")
        r = self.cli_ok("get-receive-connector", DEFAULT_CONNECTOR,
                        "--property", "Name,ConnectionTimeout,MaxMessageSize")
        self.assertIn("1.02:03:04", r.stdout)
        self.assertIn("25 MB (26,214,400 bytes)", r.stdout)
        transport = parse_list(self.cli_ok("get-transport-server", "--format", "list").stdout)[0]
        values = {n: v for n, v, _ in transport}
        self.assertEqual(values["MessageTrackingLogMaxDirectorySize"], "250 MB (262,144,000 bytes)")
        self.assertEqual(values["MessageExpirationTimeout"], "2.00:00:00")

    def test_inherited_fqdn_shows_the_effective_one(self):
        port = free_port()
        self.cli_ok("new-receive-connector", "--name", "Inherits", "--bindings", f"{HOST}:{port}",
                    "--remote-ip-ranges", "192.0.2.7")
        self.cli_ok("new-receive-connector", "--name", "Own", "--bindings", f"{HOST}:{free_port()}",
                    "--remote-ip-ranges", "192.0.2.8", "--fqdn", "own.example.test")
        for name in ("Inherits", "Own"):
            self.addCleanup(self.cli_ok, "remove-receive-connector", name, "--yes")
        listed = {n: v for n, v, _ in parse_list(self.cli_ok(
            "get-receive-connector", "Inherits", "--format", "list").stdout)[0]}
        self.assertEqual(listed["Fqdn"], f"{FQDN} (inherited)")
        self.assertEqual(listed["EffectiveFqdn"], FQDN)
        own = self.cli_ok("get-receive-connector", "Own", "--format", "list",
                          "--property", "fqdn").stdout
        self.assertEqual([(n, v) for n, v, _ in parse_list(own)[0]], [("Fqdn", "own.example.test")])
        # JSON keeps Fqdn as stored; EffectiveFqdn is what the connector really says.
        as_json = {c["Name"]: c for c in self.cli_json("get-receive-connector")}
        self.assertEqual((as_json["Inherits"]["Fqdn"], as_json["Inherits"]["EffectiveFqdn"]), ("", FQDN))
        self.assertEqual(as_json["Own"]["EffectiveFqdn"], "own.example.test")
        table = self.cli_ok("get-receive-connector", "--property", "Name,Fqdn").stdout
        self.assertRegex(table, rf"(?m)^Inherits +{re.escape(FQDN)} \(inherited\)$")

    def test_property_some_objects_lack_leaves_the_cell_empty(self):
        self.cli_ok("set-receive-connector", DEFAULT_CONNECTOR, "--banner", "220 cli test")
        self.addCleanup(self.cli_ok, "set-receive-connector", DEFAULT_CONNECTOR, "--banner", "$null")
        events = self.events()
        with_command = [e for e in events if "Command" in e]
        without = [e for e in events if "Command" not in e]
        self.assertTrue(with_command and without, f"need events with and without Command: {events}")
        picked = self.cli_json("get-event", "--property", "EventId,Command")
        self.assertEqual(len(picked), len(events))
        self.assertTrue(any(p["Command"] is None for p in picked), picked)
        r = self.cli_ok("get-event", "--property", "EventId,Command")
        self.assertIn("set-receive-connector", r.stdout)
        self.cli_fails(2, r"no property 'colour'", "get-event", "--property", "EventId,colour")


if __name__ == "__main__":
    unittest.main()
