#!/usr/bin/env python3
"""A pod's whole life through the real daemon, as the Go shim and as runtime-rs drive it.

CreateVM -> StartVM -> agent calls through <pods-dir>/<sid>/agent.ttrpc (relayed over mTLS to the
instance's forwarder and mock agent, whose record shows what really arrived) -> StopVM, and then
nothing is left: no row, no instance directory, no pods dir entry, no instance process.
"""
import os
import subprocess

import pptest
from pptest import Env, bin_path, sid, wait_for

import unittest


def forwarder_pod_namespace(m):
    """The -pod-namespace the instance's forwarder was started with (what it injects)."""
    with open("/proc/%d/cmdline" % m["forwarder"]["pid"], "rb") as f:
        argv = f.read().split(b"\0")
    return argv[argv.index(b"-pod-namespace") + 1].decode()


class LongConnection:
    """shim-client -one-connection -script -: one hypervisor connection for the pod's whole life,
    fed one command at a time (runtime-rs keeps one ttRPC client)."""

    def __init__(self, env):
        self.p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "-one-connection",
                                   "-script", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)

    def call(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            rc = self.p.wait(10)
            raise AssertionError("%r failed (exit %d): %s" % (line, rc, self.p.stderr.read()))
        return out.strip()

    def close(self):
        try:
            if self.p.poll() is None:
                self.p.stdin.close()
                try:
                    self.p.wait(10)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait()
        finally:
            for f in (self.p.stdin, self.p.stdout, self.p.stderr):
                if not f.closed:
                    f.close()
        return self.p.returncode


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.daemon = self.env.daemon()

    def check_running(self, s, pod, namespace):
        env = self.env
        rows = env.rows_by_sandbox()
        self.assertEqual(list(rows), [s[:16]])   # ls shows the first 16 characters
        row = rows[s[:16]]
        self.assertEqual(row["state"], "running")
        self.assertEqual(row["pod"], "%s/%s" % (namespace, pod))
        name = "podvm-%s-%s" % (pod, s[:8])
        self.assertEqual(row["instance"], name)
        self.assertEqual(env.instances(), [name])
        m = env.meta(name)
        self.assertEqual(m["owner"], "node-a")
        self.assertEqual(m["sandbox_id"], s)
        self.assertEqual(row["id"], m["instance_id"])
        self.assertEqual(row["ip"], m["ip"])
        self.assertTrue(m["ip"].startswith("127."), m["ip"])   # loopback only
        env.assert_procs_alive(m)
        self.assertTrue(os.path.exists(env.agent_sock(s)))
        return name, m

    def check_agent_calls(self, s, name, m):
        """health, guest-details, CreateSandbox (dns cleared), CreateContainer (netns injected)."""
        env = self.env
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        self.assertIn("agent_version=", env.agent(s, "guest-details").out)
        env.agent(s, "create-sandbox", "-sandbox-id", s, "-dns", "8.8.8.8", "-dns", "1.1.1.1")
        env.agent(s, "create-container", "-container-id", "c1", "-ns", "network:/var/run/netns/host",
                  "-ns", "pid", "-annotation", "a=b")
        calls = env.agent_calls(name)
        methods = [c["method"] for c in calls]
        self.assertEqual(methods, ["Check", "GetGuestDetails", "CreateSandbox", "CreateContainer"])
        cs = calls[2]
        self.assertEqual(cs["dns"], [], "the forwarder must clear CreateSandbox's dns: %s" % cs)
        self.assertEqual(cs["sandbox_id"], s)
        cc = calls[3]
        self.assertEqual(cc["container_id"], "c1")
        netns = forwarder_pod_namespace(m)
        nets = [n for n in cc["oci"]["namespaces"] if n["type"] == "network"]
        self.assertEqual(nets, [{"type": "network", "path": netns}],
                         "exactly one network namespace, the pod's: %s" % cc)
        self.assertIn("pid", [n["type"] for n in cc["oci"]["namespaces"]])
        self.assertEqual(cc["oci"]["annotations"].get("a"), "b")

    def check_gone(self, s, m):
        env = self.env
        env.assert_nothing_left([m])
        self.assertFalse(os.path.exists(os.path.join(env.pods, s)))
        # The agent socket no longer answers.
        r = env.shim("agent", "health", sock=env.agent_sock(s), expect=1, timeout="2s")
        self.assertTrue(r.err, r)

    def test_go_shim_style_new_connection_per_call(self):
        env = self.env
        s = sid(1, 64)
        r = env.shim("version")
        self.assertIn("version=0.0.0", r.out)
        r = env.create(s, pod="nginx", namespace="default",
                       extra=["-netns", "/var/run/netns/cni-1234"])
        self.assertIn("agentSocketPath=%s" % env.agent_sock(s), r.out)
        rows = env.rows_by_sandbox()
        self.assertEqual([r["state"] for r in rows.values()], ["created"])
        self.assertEqual(env.instances(), [], "CreateVM must not create an instance")
        env.start(s, timeout="30s")
        name, m = self.check_running(s, "nginx", "default")
        r = env.shim("getinfo", "-pod", "nginx", "-namespace", "default")   # podvminfo.PodVMInfo
        self.assertIn(m["instance_id"], r.out)
        self.check_agent_calls(s, name, m)
        env.stop(s)
        self.check_gone(s, m)
        self.assertIn('msg="VM stopped"', self.daemon.log())

    def test_runtime_rs_style_one_long_connection(self):
        env = self.env
        s = sid(2)
        conn = LongConnection(env)
        try:
            self.assertIn("version=0.0.0", conn.call("version"))
            out = conn.call("create -sandbox-id %s -pod web-0 -namespace shop" % s)
            self.assertIn("agentSocketPath=%s" % env.agent_sock(s), out)
            self.assertIn("start ok", conn.call("start -sandbox-id %s" % s))
            name, m = self.check_running(s, "web-0", "shop")
            # agent traffic on its own socket while the hypervisor connection stays open
            self.check_agent_calls(s, name, m)
            self.assertIn("bytes=7", conn.call("call -service remote.Hypervisor -method Version"))
            self.assertIn("stop ok", conn.call("stop -sandbox-id %s" % s))
            self.check_gone(s, m)
            # the same connection still serves calls after the pod is gone
            self.assertIn("version=0.0.0", conn.call("version"))
        finally:
            rc = conn.close()
        self.assertEqual(rc, 0)

    def test_remote_hypervisor_service_name(self):
        """Older runtime-rs shims call remote.Hypervisor: the same four methods answer there."""
        env = self.env
        r = env.shim("call", "-service", "remote.Hypervisor", "-method", "Version")
        self.assertIn("call ok method=remote.Hypervisor/Version bytes=7", r.out)
        for method in ("CreateVM", "StartVM", "StopVM"):
            r = env.shim("call", "-service", "remote.Hypervisor", "-method", method, expect=1)
            self.assertIn("empty sandbox id", r.err, r)    # reached the handler, which validated
            self.assertNotIn("UNIMPLEMENTED", r.err, r)
        r = env.shim("call", "-service", "remote.Hypervisor", "-method", "UpdateVM", expect=1)
        self.assertIn("UNIMPLEMENTED", r.err)
        r = env.shim("call", "-service", "nope.Hypervisor", "-method", "Version", expect=1)
        self.assertIn("UNIMPLEMENTED", r.err)
        self.assertEqual(env.ls(), [])
        self.assertEqual(env.instances(), [])

    def test_two_pods_side_by_side_are_independent(self):
        """Stopping one pod leaves the other's instance and agent socket working."""
        env = self.env
        a, b = sid(3), sid(4)
        env.create(a, pod="alpha")
        env.create(b, pod="beta")
        env.start(a)
        env.start(b)
        rows = env.rows_by_sandbox()
        self.assertEqual(sorted(r["state"] for r in rows.values()), ["running", "running"])
        self.assertNotEqual(rows[a]["ip"], rows[b]["ip"])
        env.remember_all()
        mb = env.meta("podvm-beta-%s" % b[:8])
        env.stop(a)
        self.assertEqual(list(env.rows_by_sandbox()), [b[:16]])
        self.assertEqual(env.instances(), ["podvm-beta-%s" % b[:8]])
        self.assertIn("status=SERVING", env.agent(b, "health").out)
        env.assert_procs_alive(mb)
        env.stop(b)
        env.assert_nothing_left()


class AgentTrafficTest(unittest.TestCase):
    """The agent socket next to the lifecycle: held calls, and StopVM while calls are in flight."""

    def setUp(self):
        self.env = Env(self)
        self.daemon = self.env.daemon()
        self.s = sid(20)
        self.env.create(self.s)
        self.env.start(self.s)
        self.env.remember_all()
        self.env.agent(self.s, "create-container", "-container-id", "c1")

    def held_wait(self):
        env = self.env
        return subprocess.Popen([bin_path("shim-client"), "-socket", env.agent_sock(self.s), "agent",
                                 "wait", "-container-id", "c1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def finish(self, p, timeout):
        try:
            return p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()

    def test_held_call_does_not_block_others(self):
        env = self.env
        p = self.held_wait()
        try:
            wait_for(lambda: any(c["method"] == "WaitProcess" for c in env.agent_calls(env.instances()[0])),
                     10, "WaitProcess to reach the agent")
            self.assertIsNone(p.poll(), "WaitProcess must be held until the process exits")
            self.assertIn("status=SERVING", env.agent(self.s, "health").out)   # answered meanwhile
            env.agent(self.s, "signal", "-container-id", "c1", "-signal", "9")
            out, err = self.finish(p, 10)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, out + err)
        env.stop(self.s)
        env.assert_nothing_left()

    def test_stop_with_a_call_in_flight(self):
        env = self.env
        p = self.held_wait()
        try:
            wait_for(lambda: any(c["method"] == "WaitProcess" for c in env.agent_calls(env.instances()[0])),
                     10, "WaitProcess to reach the agent")
            env.stop(self.s)
            out, err = self.finish(p, 10)     # the held call ends (with an error), it does not hang
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertNotEqual(p.returncode, 0)
        env.assert_nothing_left()

    def test_getinfo_wait_returns_when_the_vm_id_is_known(self):
        env = self.env
        s = sid(21)
        env.create(s, pod="later", namespace="ns1")
        r = env.shim("getinfo", "-pod", "later", "-namespace", "ns1", expect=1)
        self.assertIn("NOT_FOUND", r.err)
        p = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "-timeout", "20s", "getinfo",
                              "-pod", "later", "-namespace", "ns1", "-wait"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            env.start(s)
            out, err = self.finish(p, 15)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        env.remember_all()
        m = env.meta("podvm-later-%s" % s[:8])
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn(m["instance_id"], out)
        env.stop(s)
        env.stop(self.s)
        env.assert_nothing_left()

    def test_vm_died_on_its_own(self):
        """The instance's processes die (a VM crash): the agent socket fails, StopVM still cleans up."""
        env = self.env
        m = env.meta(env.instances()[0])
        for pid, _ in env.meta_procs(m):
            os.kill(pid, 9)
        env.assert_procs_gone(m, timeout=5)
        r = env.agent(self.s, "health", expect=None, timeout="3s")
        self.assertNotEqual(r.rc, 0)
        env.stop(self.s)
        env.assert_nothing_left()


if __name__ == "__main__":
    pptest.main()
