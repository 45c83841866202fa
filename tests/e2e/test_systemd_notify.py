"""starlingd tells systemd it is ready (READY=1 on $NOTIFY_SOCKET) once it listens, and that it
is stopping (STOPPING=1) on SIGTERM."""

import os
import signal
import socket
import subprocess
import tempfile
import unittest

from starling_fixture import Starling, bin_dir, free_port


class SystemdNotify(unittest.TestCase):
    def test_ready_then_stopping(self):
        s = Starling()
        self.addCleanup(s.remove)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "notify")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(10)
            env = dict(os.environ, NOTIFY_SOCKET=path)
            proc = subprocess.Popen([str(bin_dir() / "starlingd"), "--data-dir", str(s.data_dir)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                ready = sock.recv(4096).decode()
                self.assertIn("READY=1", ready)
                # Ready means listening: a client is greeted at once.
                with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                    self.assertTrue(c.recv(100).startswith(b"220 "))
                proc.send_signal(signal.SIGTERM)
                self.assertIn("STOPPING=1", sock.recv(4096).decode())
                self.assertEqual(proc.wait(10), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                sock.close()


if __name__ == "__main__":
    unittest.main()
