#!/usr/bin/env python3
"""Bad or missing input gets a clear error naming what was wrong, and changes nothing: no row, no
instance directory, no pods dir entry, no cloud call."""
import os
import re
import unittest

import pptest
from pptest import Env, sid

VCPUS = "io.katacontainers.config.hypervisor.default_vcpus"
MEMORY = "io.katacontainers.config.hypervisor.default_memory"
INITDATA = "io.katacontainers.config.hypervisor.cc_init_data"
GOOD_INITDATA = 'version = "0.1.0"\nalgorithm = "sha256"\n[data]\n"aa.toml" = "x"\n'


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.daemon = self.env.daemon()

    def assert_unchanged(self, rows_before=()):
        env = self.env
        self.assertEqual([r["line"] for r in env.ls()], [r["line"] for r in rows_before])
        self.assertEqual(env.instances(), [])
        pods = sorted(os.listdir(env.pods)) if os.path.isdir(env.pods) else []
        self.assertEqual(pods, sorted(r["sandbox"] for r in rows_before))

    def test_missing_pod_name(self):
        r = self.env.create(sid(1), pod=None, expect=1)
        self.assertIn("pod name io.kubernetes.cri.sandbox-name is missing in annotations", r.err)
        self.assert_unchanged()

    def test_missing_pod_namespace(self):
        r = self.env.create(sid(1), namespace=None, expect=1)
        self.assertIn("io.kubernetes.cri.sandbox-namespace", r.err)
        self.assert_unchanged()

    def test_bad_vcpus_annotation(self):
        r = self.env.create(sid(1), extra=["-annotation", VCPUS + "=1.5"], expect=1)
        self.assertIn(VCPUS, r.err)
        self.assertIn("1.5", r.err)
        self.assertIn("INVALID_ARGUMENT", r.err)
        self.assert_unchanged()

    def test_bad_memory_annotation(self):
        r = self.env.create(sid(1), extra=["-annotation", MEMORY + "=-2048"], expect=1)
        self.assertIn(MEMORY, r.err)
        self.assert_unchanged()

    def test_bad_initdata_fails_start_and_leaks_nothing(self):
        """Initdata that passes the adaptor's check but that the VM's strict parser refuses:
        StartVM fails (in the VM's provisioning) with the VM's reason, nothing leaks, and StopVM
        removes the failed row."""
        env = self.env
        s = sid(2)
        vm_refuses = 'algorithm = "sha256"\nversion = "0.1.0"\n[data]\n"aa.toml" = 5\n'
        env.create(s, extra=["-annotation", INITDATA + "=" + vm_refuses])
        r = env.start(s, expect=1)
        self.assertIn("process-user-data", r.err)
        self.assertIn("aa.toml", r.err)
        self.assertEqual([r["state"] for r in env.ls()], ["failed"])
        self.assertEqual(env.instances(), [])
        env.stop(s)
        self.assert_unchanged()

    def test_bad_initdata_refused_at_create(self):
        """Initdata that is not an initdata document is refused by CreateVM, naming the
        annotation, and nothing is created."""
        env = self.env
        s = sid(3)
        err = env.create(s, extra=["-annotation", INITDATA + "=not toml ["], expect=1).err
        self.assertIn("cc_init_data", err)
        self.assertIn("algorithm", err)
        self.assert_unchanged()

    def test_good_initdata_reaches_the_vm(self):
        env = self.env
        s = sid(4)
        env.create(s, extra=["-annotation", INITDATA + "=" + GOOD_INITDATA])
        env.start(s)
        name = env.instances()[0]
        path = os.path.join(env.local_root(), name, "root", "run", "peerpod", "aa.toml")
        with open(path) as f:
            self.assertEqual(f.read(), "x")
        env.remember_all()
        env.stop(s)
        self.assert_unchanged()

    def test_sandbox_id_that_walks_out_of_the_pods_dir(self):
        env = self.env
        for bad in ("../escape", "a/b", "..", ".", "/abs", "x" * 300):
            r = env.create(bad, expect=1)
            self.assertIn("INVALID_ARGUMENT", r.err, bad)
            self.assertIn("sandbox id", r.err, bad)
        r = env.shim("call", "-service", "hypervisor.Hypervisor", "-method", "CreateVM", expect=1)
        self.assertIn("empty sandbox id", r.err)
        for bad in ("../escape", "a/b"):
            self.assertIn("sandbox id", env.start(bad, expect=1).err)
            self.assertIn("sandbox id", env.stop(bad, expect=1).err)
        self.assertFalse(os.path.exists(os.path.join(env.dir, "escape")))
        self.assertFalse(os.path.exists(os.path.join(env.pods, "a")))
        self.assert_unchanged()

    def test_duplicate_create(self):
        env = self.env
        s = sid(7)
        env.create(s, pod="first")
        before = env.ls()
        self.assertEqual([r["state"] for r in before], ["created"])
        r = env.create(s, pod="second", expect=1)
        self.assertIn("already exists", r.err)
        self.assertIn(s, r.err)
        self.assertIn("ALREADY_EXISTS", r.err)
        self.assert_unchanged(before)        # the first one is untouched (still pod "first")
        self.assertIn("/first", before[0]["pod"])
        env.stop(s)                           # a created-only sandbox stops cleanly
        self.assert_unchanged()

    def test_concurrent_duplicate_creates(self):
        """Ten shims race to create the same sandbox: exactly one wins, one row."""
        env = self.env
        s = sid(8)
        results = []
        errors = pptest.parallel(lambda i: results.append(env.create(s, pod="race%d" % i, expect=None)),
                                 range(10))
        self.assertEqual(errors, [])
        self.assertEqual(sorted(r.rc for r in results), [0] + [1] * 9, results)
        for r in results:
            if r.rc:
                self.assertIn("already exists", r.err)
        rows = env.ls()
        self.assertEqual(len(rows), 1)
        self.assertEqual(os.listdir(env.pods), [s])
        env.stop(s)
        self.assert_unchanged()

    def test_start_and_stop_of_unknown_sandbox(self):
        env = self.env
        s = sid(9)
        r = env.start(s, expect=1)
        self.assertIn("sandbox %s does not exist" % s, r.err)
        self.assertIn("NOT_FOUND", r.err)
        r = env.stop(s, expect=1)
        self.assertIn("sandbox %s does not exist" % s, r.err)
        self.assertIn("NOT_FOUND", r.err)
        self.assert_unchanged()

    def test_second_start_is_refused_and_harmless(self):
        env = self.env
        s = sid(10)
        env.create(s)
        env.start(s)
        before = env.ls()
        r = env.start(s, expect=1)
        self.assertIn("FAILED_PRECONDITION", r.err)
        self.assertEqual([r["line"] for r in env.ls()], [r["line"] for r in before])
        self.assertEqual(len(env.instances()), 1, "a second StartVM must not create a VM")
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        env.stop(s)
        env.assert_nothing_left()

    def test_errors_do_not_disturb_a_running_pod(self):
        """A storm of bad calls next to a running pod: the pod keeps working."""
        env = self.env
        s = sid(11)
        env.create(s)
        env.start(s)
        before = env.ls()
        env.create(s, expect=1)
        env.create("../" + s, expect=1)
        env.create(sid(12), pod=None, expect=1)
        env.stop(sid(13), expect=1)
        env.shim("call", "-service", "hypervisor.Hypervisor", "-method", "Nope", expect=1)
        self.assertEqual([r["line"] for r in env.ls()], [r["line"] for r in before])
        self.assertEqual(len(env.instances()), 1)
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        env.stop(s)
        env.assert_nothing_left()


if __name__ == "__main__":
    pptest.main()
