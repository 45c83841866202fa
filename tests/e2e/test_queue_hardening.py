"""The queue directory and queued content, end to end (docs/outbound.md, "The queue on disk").

A daemon whose next hop answers 451 to every message holds 1 MB messages in its queue: their
content stays on disk, so its resident memory (VmRSS in /proc/PID/status) does not grow by their
size. Then, with the daemon stopped, what an attacker with write access to the queue directory
plants there: a symbolic link to a queue file elsewhere, a symbolic link in queue/free/, a
1 GB sparse file and a FIFO. At the restart none of them is followed or read whole: the link
targets are unchanged byte for byte, each planted entry is set aside with event 12032, the
daemon's peak memory (VmHWM) stays far below the sparse file's size, and every message queued
before the restart is delivered once, its content intact, read back from its queue file.
"""

import hashlib
import os
import shutil
import unittest

from peers import Rule, Script, Sink
from starling_cli import OutboundMixin
from starling_fixture import DaemonTestCase, proc_status_kib, unique_token

# Large allocations are returned to the kernel when freed (no dynamic mmap threshold), so that
# VmRSS measures what the daemon holds rather than what malloc keeps for reuse. Inherited by the
# daemons this module starts.
os.environ["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)

MB = 1024 * 1024
MESSAGES = 40
SENDER = "sender@example.test"


def big_body(token):
    """About 1 MB of CRLF lines, different for every message."""
    line = (token + " " + "x" * 60 + "\r\n").encode()
    return line * (MB // len(line))


class QueueHardening(DaemonTestCase, OutboundMixin):
    daemon_per_test = True

    def setUp(self):
        super().setUp()
        self.allow_relay()
        # One connection to the next hop: one message in an attempt at a time.
        self.fast_retries(max_per_domain_outbound_connections="1")
        self.sink = Sink(script=Script(Rule("DATA_END", "451 4.3.0 not now")))
        self.sink.start()
        self.addCleanup(self.sink.stop)
        self.smart_host_connector(self.sink.smart_host())

    def queue_big(self, token):
        body = big_body(token)
        data = (f"From: <{SENDER}>\r\nTo: <rcpt@example.net>\r\nSubject: {token}\r\n"
                f"Message-ID: <{token}@client.test>\r\n\r\n").encode() + body
        return self.submit(["rcpt@example.net"], data, sender=SENDER), hashlib.sha256(body).hexdigest()

    def pid(self):
        return self.starling.proc.pid

    def test_queued_messages_stay_on_disk_and_planted_entries_are_never_followed(self):
        # Warm-up: the receiving and sending paths have run once before the baseline.
        sent = {}
        for i in range(2):
            token = unique_token(f"warm{i}")
            sent[token] = self.queue_big(token)
        for qid, _ in sent.values():
            self.wait_outbound("deferred", qid, timeout=30)
        before = proc_status_kib(self.pid(), "VmRSS")
        for i in range(MESSAGES):
            token = unique_token(f"big{i}")
            sent[token] = self.queue_big(token)
        for qid, _ in sent.values():
            self.wait_outbound("deferred", qid, timeout=60)
        after = proc_status_kib(self.pid(), "VmRSS")
        held_mb = MESSAGES  # what the queue would hold in memory if it kept the content
        self.assertLess(after - before, held_mb * 1024 // 2,
                        f"VmRSS grew from {before} to {after} KiB with {MESSAGES} messages of 1 MB "
                        "waiting in the queue")

        print(f"\nVmRSS {before} KiB before, {after} KiB with {MESSAGES} x 1 MB queued")

        # The daemon stops; the queue directory gets hostile entries.
        mark = self.event_mark()
        self.starling.stop_checked()
        queue = self.starling.data_dir / "queue"
        # Writable by the daemon whatever user it runs as: only not following a link keeps
        # these files intact, not their permissions.
        outside = self.starling.root / "outside"
        outside.mkdir()
        outside.chmod(0o777)
        # A symbolic link to a copy of a real queue file: followed, its message would go twice
        # and state lines would be appended to the copy.
        real = sorted(p for p in queue.iterdir() if p.is_file() and not p.is_symlink())[0]
        shutil.copyfile(real, outside / "copy")
        (outside / "copy").chmod(0o666)
        copy_bytes = (outside / "copy").read_bytes()
        (queue / "FFFFFFFFFFFFF000").symlink_to(outside / "copy")
        # A symbolic link as the only recyclable file: followed, the next message would be
        # written over its target.
        precious = b"root:x:0:0:root:/root:/bin/bash\n"
        (outside / "precious").write_bytes(precious)
        (outside / "precious").chmod(0o666)
        free = queue / "free"
        for p in free.iterdir():
            p.unlink()
        (free / "0000000000001000").symlink_to(outside / "precious")
        # A 1 GB sparse file (read whole, it cost 2 GB) and a FIFO (an open would block).
        with open(queue / "0000000000002000", "wb") as f:
            f.truncate(1 << 30)
        os.mkfifo(queue / "0000000000003000")

        self.starling.start()
        # A new message now takes a file: never the link in free/.
        local = unique_token("local")
        self.submit(["u@example.test"], self.make_message(local, to="u@example.test"), sender=SENDER)
        self.assertEqual(len(self.starling.wait_for(local, user="u", timeout=20)), 1)
        self.sink.script.clear()
        for token in sent:
            self.sink.wait_messages(1, timeout=60, token=token)
        got = {}
        for m in self.sink.all():
            token = m.headers("Subject")[0]
            got.setdefault(token, []).append(hashlib.sha256(m.body()).hexdigest())
        for token, (qid, digest) in sent.items():
            self.assertEqual(got.get(token), [digest], f"{token} ({qid}) at the next hop: {got.get(token)}")
        self.assertEqual(len(got), len(sent), f"messages at the next hop: {sorted(got)}")

        peak = proc_status_kib(self.pid(), "VmHWM")
        print(f"VmHWM {peak} KiB after the restart with a 1 GB sparse file in the queue")
        self.assertLess(peak, 256 * 1024, f"VmHWM {peak} KiB after recovering a 1 GB sparse file")
        self.assertEqual((outside / "copy").read_bytes(), copy_bytes, "written through a link")
        self.assertEqual((outside / "precious").read_bytes(), precious, "written through a link in free/")
        for name in ("FFFFFFFFFFFFF000", "0000000000002000", "0000000000003000"):
            event = self.event_after(12032, mark, lambda e, n=name: str(e.get("File", "")).endswith(n))
            self.assertTrue(os.path.lexists(queue / "corrupt" / name), f"{name} not set aside: {event}")
        self.assertTrue((queue / "corrupt" / "FFFFFFFFFFFFF000").is_symlink())
        self.assertTrue((free / "0000000000001000").is_symlink(), "the planted link stays a link")


if __name__ == "__main__":
    unittest.main()
