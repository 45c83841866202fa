"""Disk full: a message that cannot be written gets 452 4.3.1, nothing half-written stays in
the queue, and once space is back mail flows again. The data directory is a small tmpfs, so
the disk really fills (needs root to mount; skipped otherwise)."""

import os
import smtplib
import subprocess
import unittest

from starling_fixture import DOMAIN, HOST, Starling, unique_token


class TmpfsStarling(Starling):
    def setup(self):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(self.data_dir)],
                           capture_output=True)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs: " + r.stderr.decode(errors="replace"))
        super().setup()

    def remove(self):
        subprocess.run(["umount", "-l", str(self.data_dir)], capture_output=True)
        super().remove()


def fill(path):
    """Writes a filler file until the file system refuses; returns its path."""
    filler = path / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class DiskFull(unittest.TestCase):
    def setUp(self):
        self.s = TmpfsStarling()
        self.addCleanup(self.s.remove)
        self.s.start()
        self.addCleanup(self.s.terminate)

    def send(self, body):
        token = unique_token()
        msg = f"Subject: {token}\r\n\r\n{body}\r\n"
        with smtplib.SMTP(HOST, self.s.port, timeout=20) as c:
            c.ehlo("client.test")
            try:
                c.sendmail("a@client.test", [f"u@{DOMAIN}"], msg)
                return token, (250, b"")
            except smtplib.SMTPDataError as e:
                return token, (e.smtp_code, e.smtp_error)

    def queue_files(self):
        q = self.s.data_dir / "queue"
        top = [p.name for p in q.iterdir() if p.is_file()]
        incomplete = list((q / "incomplete").iterdir()) if (q / "incomplete").exists() else []
        return top, incomplete

    def test_full_disk_refuses_with_452_and_keeps_nothing(self):
        token, (code, _) = self.send("first")
        self.assertEqual(code, 250)
        self.assertTrue(self.s.wait_for(token))

        filler = fill(self.s.data_dir)
        big = "x" * 60 + "\r\n"
        token2, (code, text) = self.send(big * 8000)  # ~500 KB: needs blocks it cannot get
        self.assertEqual(code, 452, text)
        self.assertTrue(text.startswith(b"4.3.1"), text)
        top, incomplete = self.queue_files()
        self.assertEqual(top, [], "a refused message left a queue file")
        self.assertEqual(incomplete, [])
        leftovers = [p for p in (self.s.data_dir / "queue").rglob("*")
                     if p.is_file() and token2.encode() in p.read_bytes()]
        self.assertEqual(leftovers, [], "part of the refused message stayed on disk")

        filler.unlink()
        token3, (code, text) = self.send("after the disk was freed")
        self.assertEqual(code, 250, text)
        self.assertTrue(self.s.wait_for(token3))
        self.assertFalse(self.s.find(token2), "the refused message was delivered anyway")


if __name__ == "__main__":
    unittest.main()
