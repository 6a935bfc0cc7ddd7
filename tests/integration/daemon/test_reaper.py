#!/usr/bin/env python3
"""The daemon's own reaper: with -reaper-grace 0s -reaper-interval 1s an instance no row refers
to is deleted without anyone asking, a referenced one is left alone.

The first pass runs REAPER_FIRST_DELAY_MS (30 s, adaptor/reconcile.c) after start-up whatever
REAPER_INTERVAL says, so this test waits up to 45 s; it is its own ctest test so that the wait
overlaps the others."""
import time
import unittest

import pptest
from pptest import Env, delete_rows, sid, wait_for

FIRST_PASS_S = 30


class ReaperTest(unittest.TestCase):
    def test_reaper_deletes_an_unreferenced_instance(self):
        env = Env(self)
        leak, kept = sid(1), sid(2)
        leak_name, kept_name = "podvm-leaky-%s" % leak[:8], "podvm-kept-%s" % kept[:8]
        d = env.daemon()
        env.create(leak, pod="leaky")
        env.create(kept, pod="kept")
        env.start(leak)
        env.start(kept)
        env.remember_all()
        d.kill9()
        delete_rows(env.state, [leak])

        d2 = env.daemon("-reaper-grace", "0s", "-reaper-interval", "1s")
        t0 = time.monotonic()
        # the instance is not deleted at start-up (only rows are reconciled then)...
        self.assertEqual(sorted(env.instances()), sorted([leak_name, kept_name]))
        wait_for(lambda: env.instances() == [kept_name], FIRST_PASS_S + 15,
                 "the reaper to delete %s" % leak_name, interval=0.25)
        took = time.monotonic() - t0
        print("reaped after %.1fs" % took)
        self.assertIn('msg="reaper: leaked instance deleted" instance=%s' % leak_name, d2.log())
        env.assert_procs_gone(env.metas[leak_name], timeout=5)
        # ...and the referenced pod is untouched, through more reaper passes
        time.sleep(2.5)
        self.assertEqual(env.instances(), [kept_name])
        env.assert_procs_alive(env.metas[kept_name])
        self.assertIn("status=SERVING", env.agent(kept, "health").out)
        self.assertEqual([r["state"] for r in env.ls()], ["running"])
        env.stop(kept)
        self.assertEqual(env.ls(), [])
        self.assertEqual(env.instances(), [])


if __name__ == "__main__":
    pptest.main()
