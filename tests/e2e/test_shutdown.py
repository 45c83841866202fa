"""Graceful stop: SIGTERM with sessions open gives each client 421 4.3.2 (after a short grace
period) and the daemon exits 0; what was acknowledged before the stop is delivered."""

import signal
import time
import unittest

from starling_fixture import DaemonTestCase, unique_token

GRACE = 20.0  # upper bound we accept for the grace period before 421


class GracefulStop(DaemonTestCase):
    daemon_per_test = True

    def test_sigterm_with_idle_session_sends_421_and_exits_0(self):
        c = self.client(timeout=GRACE + 5)
        c.greeting()
        c.ehlo()
        t0 = time.monotonic()
        self.starling.proc.send_signal(signal.SIGTERM)
        r = c.reply(timeout=GRACE)
        self.assertReply(r, 421, "4.3.2")
        c.expect_closed(5)
        code = self.starling.wait_exit(10)
        self.assertEqual(code, 0, f"exit status after SIGTERM: {code}")
        self.assertLess(time.monotonic() - t0, GRACE + 10)

    def test_sigterm_mid_transaction_sends_421(self):
        c = self.client(timeout=GRACE + 5)
        c.greeting()
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<a@client.test>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@example.test>"), 250)
        self.starling.proc.send_signal(signal.SIGTERM)
        self.assertReply(c.reply(timeout=GRACE), 421, "4.3.2")
        c.expect_closed(5)
        self.assertEqual(self.starling.wait_exit(10), 0)

    def test_several_sessions_all_get_421(self):
        clients = []
        for _ in range(5):
            c = self.client(timeout=GRACE + 5)
            c.greeting()
            c.ehlo()
            clients.append(c)
        self.starling.proc.send_signal(signal.SIGTERM)
        for c in clients:
            self.assertReply(c.reply(timeout=GRACE), 421, "4.3.2")
        self.assertEqual(self.starling.wait_exit(10), 0)

    def test_no_new_connections_after_sigterm(self):
        c = self.client(timeout=GRACE + 5)
        c.greeting()
        self.starling.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            late = self.client(timeout=3)
            r = late.reply(timeout=3)
            self.assertNotEqual(r.code, 220, f"new session accepted during shutdown: {r}")
        except (ConnectionRefusedError, EOFError, ConnectionResetError):
            pass
        self.assertReply(c.reply(timeout=GRACE), 421, "4.3.2")
        self.assertEqual(self.starling.wait_exit(10), 0)

    def test_acknowledged_message_survives_a_stop(self):
        token = unique_token("stop")
        c = self.client()
        self.send_message(c, token, token)
        c.cmd("QUIT")
        c.close()
        self.starling.stop_checked()  # right away: delivery may not have run yet
        self.starling.start()
        self.wait_delivered(token, user="u")


if __name__ == "__main__":
    unittest.main()
