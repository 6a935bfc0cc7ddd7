#!/usr/bin/env python3
"""Cancellation. A StartVM whose deadline passes, or whose client goes away, while it waits for
the instance's forwarder deletes the VM and leaves a failed row for StopVM to remove. A StopVM
whose client gives up after one second (runtime-rs) still deletes the VM and removes the row.

A slow boot is simulated with the local provider's LOCAL_BOOT_DELAY (the forwarder starts that
much later); a slow delete by stopping the instance's processes with SIGSTOP, so that SIGTERM has
no effect and the provider waits its grace period before SIGKILL."""
import os
import signal
import subprocess
import time
import unittest

import pptest
from pptest import Env, bin_path, sid, wait_for

BOOT_DELAY = "20s"      # much longer than any deadline below: the forwarder never comes up in time


class StartCancelTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)

    def slow_daemon(self, *extra):
        return self.env.daemon("-local-boot-delay", BOOT_DELAY, *extra)

    def wait_instance(self):
        """Waits until the instance's processes run (create_instance is done) and returns its meta."""
        env = self.env
        def started():
            for n in env.instances():
                try:
                    m = env.meta(n)
                except (FileNotFoundError, ValueError):
                    return None
                if m.get("forwarder", {}).get("pid"):
                    return m
            return None
        return wait_for(started, 15, "the instance to be created")

    def assert_failed_then_stop_cleans(self, s, m):
        env = self.env
        wait_for(lambda: not env.instances(), 10, "the VM of the cancelled StartVM to be deleted")
        env.assert_procs_gone(m, timeout=5)
        rows = env.ls()
        self.assertEqual([r["state"] for r in rows], ["failed"], rows)
        env.stop(s)
        env.assert_nothing_left([m])

    def test_deadline_passes_while_waiting_for_the_forwarder(self):
        env = self.env
        d = self.slow_daemon()
        s = sid(1)
        env.create(s)
        t0 = time.monotonic()
        p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "-timeout", "2s", "start",
                              "-sandbox-id", s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            m = self.wait_instance()          # the VM exists; its forwarder is still "booting"
            out, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 1, out + err)
        self.assertLess(took, 5, "StartVM must end at its deadline, not at the proxy timeout")
        self.assert_failed_then_stop_cleans(s, m)
        self.assertRegex(d.log(), r"StartVM failed.*code=(DEADLINE_EXCEEDED|CANCELLED)")

    def test_client_disconnects_during_start(self):
        env = self.env
        d = self.slow_daemon()
        s = sid(2)
        env.create(s)
        p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "start", "-sandbox-id", s],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            m = self.wait_instance()
            time.sleep(0.2)                    # StartVM is now waiting for the forwarder
            self.assertEqual([r["state"] for r in env.ls()], ["starting"])
        finally:
            p.kill()
            p.wait()
        self.assert_failed_then_stop_cleans(s, m)
        self.assertRegex(d.log(), r"StartVM failed.*code=CANCELLED")

    def test_stop_during_start_cancels_the_start(self):
        env = self.env
        self.slow_daemon()
        s = sid(3)
        env.create(s)
        p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "start", "-sandbox-id", s],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            m = self.wait_instance()
            t0 = time.monotonic()
            env.stop(s)
            self.assertLess(time.monotonic() - t0, 8)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 1, "the StartVM must fail: " + out + err)
        env.assert_nothing_left([m])

    def test_sigterm_during_start(self):
        """The daemon is stopped while a StartVM waits: it exits within its grace, the shim gets an
        error, and the next daemon deletes the half-started VM and marks the row failed."""
        env = self.env
        d = self.slow_daemon("-shutdown-grace", "1s")
        s = sid(8)
        env.create(s)
        p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "start", "-sandbox-id", s],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            m = self.wait_instance()
            wait_for(lambda: 'msg="agent proxy listening"' in d.log(), 10,
                     "StartVM to wait for the forwarder")
            t0 = time.monotonic()
            rc = d.term()
            self.assertLess(time.monotonic() - t0, 6)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(rc, 0, d.log())
        self.assertEqual(p.returncode, 1, "the StartVM must fail: " + out + err)
        self.assertEqual([r["state"] for r in env.ls()], ["starting"])
        env.daemon()
        self.assert_failed_then_stop_cleans(s, m)

    def test_proxy_timeout(self):
        """No deadline from the shim, but the forwarder does not answer within PROXY_TIMEOUT."""
        env = self.env
        d = self.slow_daemon("-proxy-timeout", "1s")
        s = sid(4)
        env.create(s)
        t0 = time.monotonic()
        r = env.start(s, timeout="60s", expect=1)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertTrue(r.err)
        env.remember_all()
        self.assertIn("StartVM failed", d.log())
        m = next(iter(env.metas.values()), None)
        if m is None:
            wait_for(lambda: not env.instances(), 10, "the VM to be deleted")
            self.assertEqual([r["state"] for r in env.ls()], ["failed"])
            env.stop(s)
            env.assert_nothing_left()
        else:
            self.assert_failed_then_stop_cleans(s, m)

    def test_keep_failed_vms(self):
        """Developer mode: the VM of a cancelled StartVM is kept for inspection; gc removes it."""
        env = self.env
        self.slow_daemon("-keep-failed-vms")
        s = sid(5)
        env.create(s)
        env.start(s, timeout="1s", expect=1)
        time.sleep(0.5)
        names = env.instances()
        self.assertEqual(len(names), 1, "the failed VM must be kept")
        m = env.meta(names[0])
        env.assert_procs_alive(m)
        env.stop(s)
        rows = env.ls()
        self.assertEqual([r["state"] for r in rows], ["failed"])
        self.assertEqual(env.instances(), names)
        r = env.adaptor("gc", "local", "-state-dir", env.state, "-owner-id", env.owner, "--dry-run")
        self.assertIn("would delete %s" % names[0], r.out)
        r = env.adaptor("gc", "local", "-state-dir", env.state, "-owner-id", env.owner)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(env.instances(), [])
        self.assertEqual(env.ls(), [])
        env.assert_procs_gone(m, timeout=5)


class StopTimeoutTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.daemon = self.env.daemon()

    def test_stop_with_one_second_timeout_and_a_slow_delete(self):
        env = self.env
        s = sid(6)
        env.create(s)
        env.start(s)
        m = env.meta(env.instances()[0])
        for pid, _ in env.meta_procs(m):
            os.kill(pid, signal.SIGSTOP)      # SIGTERM now has no effect: the delete is slow
        t0 = time.monotonic()
        r = env.stop(s, timeout="1s", expect=None)
        took = time.monotonic() - t0
        self.assertLess(took, 3, "the client gives up after one second")
        # runtime-rs only logs the error; the deletion goes on and is recorded
        wait_for(lambda: not env.instances() and not env.ls(), 15,
                 "the VM to be deleted and the row removed after the client gave up")
        env.assert_procs_gone(m, timeout=5)
        env.assert_nothing_left([m])
        self.assertIn('msg="VM stopped"', self.daemon.log())
        print("stop client rc=%d after %.1fs: %s" % (r.rc, took, r.err.strip()))

    def test_stop_with_one_second_timeout_normal_delete(self):
        env = self.env
        s = sid(7)
        env.create(s)
        env.start(s)
        m = env.meta(env.instances()[0])
        env.stop(s, timeout="1s")
        env.assert_nothing_left([m])


if __name__ == "__main__":
    pptest.main()
