"""A DaemonSet rolling update (maxSurge 1): the new daemon starts while the old one still runs,
on the same sockets and the same state dir. The new one takes the hypervisor socket and every
running pod's agent socket over; when the old one then exits, it leaves them in place. The
running pod never loses its agent socket, and the new daemon stops it normally."""
import os
import unittest

from pptest import Env, main, sid


class RollingUpdateTest(unittest.TestCase):
    def test_new_daemon_takes_over_old_one_exits_cleanly(self):
        env = Env(self)
        old = env.daemon()
        s = sid(1)
        env.create(s)
        env.start(s)
        self.assertIn("SERVING", env.agent(s, "health").text)

        new = env.daemon()          # same socket, pods dir and state dir
        self.assertIn("SERVING", env.agent(s, "health").text)
        old.term()
        self.assertEqual(old.proc.returncode, 0)
        # the old daemon's shutdown left the new daemon's sockets alone
        self.assertTrue(os.path.exists(env.sock))
        self.assertTrue(os.path.exists(env.agent_sock(s)))
        self.assertIn("version", env.shim("version").text)
        self.assertIn("SERVING", env.agent(s, "health").text)
        self.assertIn("taking over", new.log())

        env.remember_all()
        env.stop(s)
        env.assert_nothing_left()
        new.term()
        self.assertFalse(os.path.exists(env.sock))


if __name__ == "__main__":
    main()
