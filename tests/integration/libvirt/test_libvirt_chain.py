#!/usr/bin/env python3
"""The whole chain with the libvirt provider: shim -> cloud-api-adaptor libvirt -> forwarder ->
mock agent, inside a private network namespace that owns the test driver's 192.168.122.x addresses.

The daemon talks to libvirt's test driver in its own process (test:///<node.xml>: a pool holding
a base volume and a DHCP network). The domain it creates is not a VM, so this test plays the VM:
a forwarder (-disable-tls) and a mock agent listen on 0.0.0.0:<port> of the namespace, which is
what the adaptor reaches when it dials the address the test driver handed out. The test re-runs
itself under `unshare -n` (root needed); no packet leaves the namespace (testing-notes.md).

Usage: python3 test_libvirt_chain.py <bin-dir> [unittest args]   (or PP_BIN_DIR=<bin-dir>)
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))

import pptest  # noqa: E402
from pptest import Env, bin_path, sid, wait_for  # noqa: E402

NETNS_MARK = "PP_LIBVIRT_CHAIN_NETNS"
SKIP = 77   # ctest's SKIP_RETURN_CODE

NODE_XML = """<node>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default-pool</name>
    <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
    <capacity unit='GiB'>100</capacity>
    <allocation>0</allocation>
    <available unit='GiB'>100</available>
    <source/>
    <target><path>/default-pool</path></target>
    <volume type='file'>
      <name>podvm-base.qcow2</name>
      <key>/default-pool/podvm-base.qcow2</key>
      <capacity unit='MiB'>1</capacity>
      <target><path>/default-pool/podvm-base.qcow2</path><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
"""


def enter_private_netns():
    """Re-runs this script under `unshare -n` once; inside, gives lo the 192.168/16 range."""
    if os.environ.get(NETNS_MARK) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "addr", "add", "192.168.0.1/16", "dev", "lo"], check=True)
        return
    env = dict(os.environ, **{NETNS_MARK: "1"})
    try:
        r = subprocess.run(["unshare", "-n", "--", sys.executable] + sys.argv, env=env)
    except FileNotFoundError:
        sys.stderr.write("SKIP: unshare not found\n")
        sys.exit(SKIP)
    sys.exit(r.returncode)


class LibvirtChainTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.procs = []
        self.addCleanup(self.stop_vm)
        d = self.env.dir
        self.node = os.path.join(d, "node.xml")
        with open(self.node, "w") as f:
            f.write(NODE_XML)
        with open(os.path.join(d, "apf.json"), "w") as f:
            f.write("{}\n")
        self.agent_sock = os.path.join(d, "agent.sock")
        self.record = os.path.join(d, "agent-calls.jsonl")

    def start_vm(self):
        """The stand-in for the pod VM: mock agent + forwarder on every address of the netns."""
        d = self.env.dir
        log = open(os.path.join(d, "vm.log"), "w")
        self.procs.append(subprocess.Popen(
            [bin_path("mock-agent"), "--socket", self.agent_sock, "--record", self.record],
            stdout=log, stderr=subprocess.STDOUT))
        wait_for(lambda: os.path.exists(self.agent_sock), 10, "the mock agent's socket")
        self.procs.append(subprocess.Popen(
            [bin_path("agent-protocol-forwarder"), "-config", os.path.join(d, "apf.json"),
             "-listen", "0.0.0.0:%d" % self.env.port, "-kata-agent-socket", self.agent_sock,
             "-pod-namespace", os.path.join(d, "netns-placeholder"), "-disable-tls"],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()

    def stop_vm(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def test_pod_through_libvirt_provider(self):
        env = self.env
        self.start_vm()
        daemon = env.daemon("-uri", "test://" + self.node, "-pool-name", "default-pool",
                            "-disable-tls", "-ip-timeout", "10s", provider="libvirt")
        s = sid(1)
        env.create(s)
        env.start(s)
        rows = env.rows_by_sandbox()
        self.assertEqual(list(rows), [s[:16]])
        row = rows[s[:16]]
        self.assertEqual(row["state"], "running")
        self.assertEqual(row["instance"], "podvm-nginx-%s" % s[:8])
        self.assertEqual(len(row["id"]), 36, row)                    # the domain UUID
        self.assertTrue(row["ip"].startswith("192.168.122."), row)   # the test driver's lease
        # agent calls reach the mock agent through the forwarder at that address
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        env.agent(s, "create-sandbox", "-sandbox-id", s)
        with open(self.record) as f:
            methods = [l for l in f if l.strip()]
        self.assertEqual(len(methods), 2, methods)
        self.assertIn('"Check"', methods[0])
        self.assertIn('"CreateSandbox"', methods[1])
        log = daemon.log()
        self.assertIn('msg="libvirt domain started"', log)
        env.stop(s)
        self.assertEqual(env.ls(), [])
        self.assertIn('msg="libvirt domain deleted"', daemon.log())


if __name__ == "__main__":
    if os.geteuid() != 0 and os.environ.get(NETNS_MARK) != "1":
        sys.stderr.write("SKIP: needs root for unshare -n\n")
        sys.exit(SKIP)
    enter_private_netns()
    pptest.main()
