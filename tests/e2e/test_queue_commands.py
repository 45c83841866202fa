"""The queue commands through the shell: export-message writes the queued message, as received,
to a file of the caller's (in 1 MiB pieces: the message here is larger), refuses to replace a
file without --force, and the queue commands refuse --offline, saying they need the server.

A message relayed to a smart host on a port where nothing listens stays queued (Retry), which
is all these tests need of the queue; tests/e2e/test_queues.py covers what the queues do.
"""

import email
import email.policy
import os
import stat
import tempfile
import time
import unittest

from peers import free_port
from starling_cli import OutboundMixin
from starling_fixture import DaemonTestCase

WAIT = 20.0
BODY_LINES = 36_000  # about 2.6 MB: three pieces


class ExportMessage(OutboundMixin, DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.out = tempfile.TemporaryDirectory(prefix="starling-export-")

    @classmethod
    def tearDownClass(cls):
        cls.out.cleanup()
        super().tearDownClass()

    def setUp(self):
        if getattr(type(self), "queued", None) is None:
            self.allow_relay()
            self.smart_host_connector(f"[127.0.0.1]:{free_port()}")
            body = "".join(f"line {i:06d} of a message that waits in the queue for its next hop\r\n"
                           for i in range(BODY_LINES))
            data = self.make_message("export-e2e", body=body).encode()
            qid = self.submit("rcpt@example.net", data)
            type(self).queued = (qid, data)

    def find_message(self, qid):
        deadline = time.monotonic() + WAIT
        while True:
            found = self.cli_json("get-message", "--filter", f"InternalMessageId -eq '{qid}'")
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def test_export_is_the_message_as_received(self):
        qid, data = self.queued
        found = self.find_message(qid)
        self.assertEqual(len(found), 1, f"get-message by InternalMessageId: {found}")
        path = os.path.join(self.out.name, "by-identity.eml")
        r = self.cli_ok("export-message", found[0]["Identity"], "--file", path)
        self.assertIn("Exported message", r.stdout)
        with open(path, "rb") as f:
            written = f.read()
        self.assertTrue(written.endswith(data), "the file ends with the message as sent")
        self.assertGreater(len(written), 2 * 1024 * 1024, "larger than one piece")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        parsed = email.message_from_bytes(written, policy=email.policy.default)
        original = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(parsed["Message-ID"], original["Message-ID"])
        self.assertEqual(parsed["Subject"], "export-e2e")
        self.assertEqual(parsed.get_content(), original.get_content())
        self.assertTrue(parsed["Received"], "the trace header Starling added is there")

    def test_an_existing_file_needs_force(self):
        qid, data = self.queued
        self.assertTrue(self.find_message(qid))
        path = os.path.join(self.out.name, "existing.eml")
        with open(path, "w") as f:
            f.write("keep me\n")
        self.cli_fails(1, r"existing\.eml exists; add --force", "export-message", qid, "--file", path)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.cli_ok("export-message", qid, "--file", path, "--force")
        with open(path, "rb") as f:
            self.assertTrue(f.read().endswith(data))
        self.assertEqual(sorted(os.listdir(self.out.name)).count("existing.eml"), 1)
        leftovers = [n for n in os.listdir(self.out.name) if n.startswith("existing.eml.")]
        self.assertEqual(leftovers, [], "no temporary file left beside it")

    def test_refusals(self):
        self.cli_fails(2, r"--file FILE is needed", "export-message", "1")
        self.cli_fails(1, r"no message 'nosuchqueue\\1'", "export-message", "nosuchqueue\\1",
                       "--file", os.path.join(self.out.name, "none.eml"))
        self.assertFalse(os.path.exists(os.path.join(self.out.name, "none.eml")))
        self.cli_fails(2, r"--filter: position 12: 'Retry' is not a number", "get-queue",
                       "--filter", "Status -eq Retry")
        for args in (["get-queue"], ["get-message"], ["retry-queue", "Unreachable"],
                     ["export-message", "1", "--file", os.path.join(self.out.name, "off.eml")]):
            with self.subTest(args=args):
                self.cli_fails(1, rf"^starling: {args[0]} needs the running server: .*without --offline",
                               "--offline", *args)


if __name__ == "__main__":
    unittest.main()
