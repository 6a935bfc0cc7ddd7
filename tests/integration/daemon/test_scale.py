#!/usr/bin/env python3
"""100 pods at once on one daemon: 100 concurrent CreateVM+StartVM (each a shim-client process on
its own connections, as 100 Go shims would), every agent socket answers, `ls` shows 100 running,
100 concurrent StopVMs, and nothing is left."""
import time
import unittest

import pptest
from pptest import Env, parallel, sid

N = 100


class ScaleTest(unittest.TestCase):
    def test_hundred_sandboxes_at_once(self):
        env = Env(self)
        env.daemon()
        ids = [sid(i, 64) for i in range(N)]
        t0 = time.monotonic()

        def up(s):
            env.create(s, pod="pod-%s" % s[:4], namespace="scale")
            env.start(s, timeout="60s")
        errors = parallel(up, ids)
        t_up = time.monotonic() - t0
        self.assertEqual(errors, [], "create+start failures")

        rows = env.ls()
        self.assertEqual(len(rows), N)
        self.assertEqual({r["state"] for r in rows}, {"running"})
        self.assertEqual(len({r["ip"] for r in rows}), N, "every instance has its own address")
        self.assertEqual(len(env.instances()), N)
        env.remember_all()

        def health(s):
            r = env.agent(s, "health")
            if "status=SERVING" not in r.out:
                raise AssertionError(r.out)
        self.assertEqual(parallel(health, ids), [])
        # each pod's calls reached its own agent and no other
        for name in env.instances():
            calls = env.agent_calls(name)
            self.assertEqual([c["method"] for c in calls], ["Check"], name)

        t1 = time.monotonic()
        self.assertEqual(parallel(env.stop, ids), [], "stop failures")
        t_down = time.monotonic() - t1
        env.assert_nothing_left()
        sys_msg = "100 up in %.1fs, 100 down in %.1fs" % (t_up, t_down)
        print(sys_msg)
        self.assertLess(t_up, 45, sys_msg)


if __name__ == "__main__":
    pptest.main()
