#!/usr/bin/env python3
"""`cloud-api-adaptor gc local`: instances this node owns that no row refers to are listed by
--dry-run (and left alone), deleted without it; instances a row refers to and instances of
another owner are never touched.

A leak is made the way a real one happens: pods run, the daemon is killed -9, and the rows are
lost (deleted from state.db with the sqlite3 module while no daemon runs)."""
import os
import subprocess
import unittest

import pptest
from pptest import Env, delete_rows, sid, wait_for


class GcTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)

    def gc(self, *extra, owner="node-a", state=None, dry=False):
        args = ["gc", "local", "-state-dir", state or self.env.state, "-owner-id", owner]
        if dry:
            args.append("--dry-run")
        r = self.env.adaptor(*(args + list(extra)))
        self.assertEqual(r.rc, 0, r)
        return r

    def leak_one_of_two(self):
        """Two running pods, the daemon killed, the row of the first one lost."""
        env = self.env
        leak, kept = sid(1), sid(2)
        d = env.daemon()
        env.create(leak, pod="leaky")
        env.create(kept, pod="kept")
        env.start(leak)
        env.start(kept)
        env.remember_all()
        d.kill9()
        delete_rows(env.state, [leak])
        rows = env.ls()
        self.assertEqual([r["sandbox"] for r in rows], [kept])
        return leak, kept, "podvm-leaky-%s" % leak[:8], "podvm-kept-%s" % kept[:8]

    def test_gc_dry_run_lists_then_gc_deletes_only_the_leak(self):
        env = self.env
        leak, kept, leak_name, kept_name = self.leak_one_of_two()
        m_leak, m_kept = env.metas[leak_name], env.metas[kept_name]

        r = self.gc(dry=True)
        self.assertIn("would delete %s" % leak_name, r.out)
        self.assertNotIn(kept_name, r.out)
        self.assertIn("1 instance would be deleted", r.out)
        self.assertEqual(sorted(env.instances()), sorted([leak_name, kept_name]), "dry run deleted")
        env.assert_procs_alive(m_leak)

        r = self.gc()
        self.assertIn("1 instance deleted", r.out)
        self.assertEqual(env.instances(), [kept_name])
        env.assert_procs_gone(m_leak)
        env.assert_procs_alive(m_kept)

        r = self.gc(dry=True)                  # nothing more to do
        self.assertIn("0 instances would be deleted", r.out)

        # the referenced pod is intact and works after a restart
        env.daemon()
        wait_for(lambda: env.agent(kept, "health", expect=None).rc == 0, 10, "kept pod health")
        env.stop(kept)
        # The lost row's <pods-dir>/<sid> directory is not the instance: gc does not know it.
        self.assertEqual(env.ls(), [])
        self.assertEqual(env.instances(), [])
        self.assertFalse(os.path.exists(os.path.join(env.pods, kept)))
        for m in env.metas.values():
            env.assert_procs_gone(m)

    def test_gc_while_a_start_is_in_progress(self):
        """The row names its instance before the VM is created: gc run in the middle of a slow
        StartVM (here: while the VM "boots") does not take the VM away."""
        env = self.env
        env.daemon("-local-boot-delay", "2s")
        s = sid(3)
        env.create(s)
        p = subprocess.Popen([pptest.bin_path("shim-client"), "-socket", env.sock, "-timeout", "30s",
                              "start", "-sandbox-id", s], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: env.instances(), 10, "the VM to exist")
            self.assertEqual([r["state"] for r in env.ls()], ["starting"])
            r = self.gc()
            self.assertIn("0 instances", r.out)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        env.remember_all()
        env.stop(s)
        env.assert_nothing_left()

    def test_gc_of_another_owner_touches_nothing(self):
        env = self.env
        leak, kept, leak_name, kept_name = self.leak_one_of_two()
        for dry in (True, False):
            r = self.gc(owner="node-b", dry=dry)
            self.assertNotIn(leak_name, r.out)
            self.assertIn("0 instances", r.out)
        self.assertEqual(sorted(env.instances()), sorted([leak_name, kept_name]))
        for m in env.metas.values():
            env.assert_procs_alive(m)
        self.assertEqual(env.meta(leak_name)["owner"], "node-a")

    def test_two_nodes_do_not_reap_each_other(self):
        """node-b runs its own daemon with its own state dir; gc of node-a leaves it alone."""
        env = self.env
        b = Env(self, owner="node-b")
        b.daemon()
        sb = sid(5)
        b.create(sb, pod="bpod")
        b.start(sb)
        b.remember_all()
        leak, kept, leak_name, kept_name = self.leak_one_of_two()
        self.gc()
        self.assertEqual(env.instances(), [kept_name])
        self.assertEqual(b.instances(), ["podvm-bpod-%s" % sb[:8]])
        self.assertIn("status=SERVING", b.agent(sb, "health").out)
        # and node-b's gc on node-a's state dir deletes nothing there either
        r = self.gc(owner="node-b")
        self.assertIn("0 instances", r.out)
        self.assertEqual(env.instances(), [kept_name])
        b.stop(sb)
        b.assert_nothing_left()


if __name__ == "__main__":
    pptest.main()
