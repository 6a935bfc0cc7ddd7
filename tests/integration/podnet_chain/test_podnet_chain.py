#!/usr/bin/env python3
"""Pod networking end to end: the daemon's wiring (CreateVM inspect, StartVM tunnel, StopVM
teardown, restart reconcile) and the forwarder's VM-side set-up, with the real programs.

One idea: five network namespaces this test creates stand in for a node and a pod VM, joined by
a veth "underlay" that owns the address libvirt's test driver hands out, so every packet the
daemon and the tunnel send stays inside them (testing-notes.md, network rule):

  W (worker)  cloud-api-adaptor libvirt -uri test:///<node.xml>, uw0 192.168.122.1/24, cni0 bridge
              10.244.1.1/24 with veth ports into P and R; the NOTRACK rules go here
  P (pod)     eth0 10.244.1.5/24, default via 10.244.1.1 (the CNI's work); vxlan1 + tc go here
  R (peer)    eth0 10.244.1.6/24, another pod on the same bridge
  V (VM)      uv0 <the instance IP, once the daemon logged it>; process-user-data on the user-data
              the daemon saved, agent-protocol-forwarder (mTLS, apf.json's certificates), mock agent
  Q (podns)   made by the forwarder (-pod-namespace /run/netns/<Q>): eth0 = VXLAN device, pod IP

The daemon runs under `nsenter --net` (no new mount namespace, so the pod netns files and the
podns the forwarder bind-mounts are visible to everyone). Cleanup (also on failure): forwarder,
agent, helpers, daemons, then the namespaces, then the temporary directory.

Usage: python3 test_podnet_chain.py <bin-dir> [unittest args]   (or PP_BIN_DIR=<bin-dir>)
Helper modes (run inside a namespace by the test): --serve ADDR, --connect ADDR PORT NBYTES.
"""
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))

SKIP = 77   # ctest's SKIP_RETURN_CODE

POD_IP, PEER_IP, POD_GW = "10.244.1.5", "10.244.1.6", "10.244.1.1"
POD_MAC = "0a:58:0a:f4:01:05"
WORKER_IP = "192.168.122.1"
VNI = 555000                      # vxlan-min-id + index 0

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


# ---------------------------------------------------------------- helper modes (in a netns)

def pattern(n):
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def serve(addr):
    """Echo server on addr:0; prints the port; each connection echoed until the peer's EOF."""
    s = socket.socket()
    s.bind((addr, 0))
    s.listen(8)
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        c.settimeout(10)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        c.close()


def connect(addr, port, n):
    data = pattern(n)
    c = socket.create_connection((addr, port), timeout=5)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
    c.close()
    if bytes(got) != data:
        sys.stderr.write("echo mismatch: sent %d bytes, got %d back\n" % (n, len(got)))
        return 1
    return 0


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] in ("--serve", "--connect"):
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    sys.exit(connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))

import pptest  # noqa: E402
from pptest import Env, bin_path, sid, wait_for  # noqa: E402


# ---------------------------------------------------------------- namespaces

def sh(*cmd, check=True, timeout=30):
    p = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("`%s` failed (%d): %s" % (" ".join(cmd), p.returncode, p.stdout))
    return p.stdout


def ns_exec(ns, *cmd, **kw):
    return sh("ip", "netns", "exec", ns, *cmd, **kw)


def why_unsupported():
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nsenter", "iptables-save", "ping", "tc"):
        if not shutil.which(tool):
            return "%s not found" % tool
    probe = "ppcprobe%d" % os.getpid()
    try:
        sh("ip", "netns", "add", probe)
    except AssertionError as e:
        return "no network namespaces: %s" % e
    try:
        try:
            sh("ip", "-n", probe, "link", "add", "vxp", "type", "vxlan", "id", "1",
               "dstport", "4789")
        except AssertionError as e:
            return "no VXLAN in the kernel: %s" % e
        try:
            ns_exec(probe, "iptables", "-w", "5", "-t", "raw", "-S")
        except AssertionError as e:
            return "iptables raw table does not work in a netns: %s" % e
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


class Topology:
    """The namespaces W, P, R, V (Q is made by the forwarder) and the links between them."""

    def __init__(self):
        tag = str(os.getpid())
        self.w, self.p, self.r, self.v, self.q = ("ppc%s%s" % (x, tag) for x in "WPRVQ")
        self.made = []

    def path(self, ns):
        return "/run/netns/" + ns

    def build(self):
        for ns in (self.w, self.p, self.r, self.v):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        w, p, r, v = self.w, self.p, self.r, self.v
        steps = [
            # underlay: the VM's end gets its address once the test driver handed it out
            "ip -n %s link add uw0 type veth peer name uv0 netns %s" % (w, v),
            "ip -n %s addr add %s/24 dev uw0" % (w, WORKER_IP),
            "ip -n %s link set uw0 up" % w, "ip -n %s link set uv0 up" % v,
            "ip -n %s route add default dev uw0" % w,     # the node's primary interface
            # the "CNI": a bridge, the pod and a peer pod on it
            "ip -n %s link add cni0 type bridge" % w,
            "ip -n %s addr add %s/24 dev cni0" % (w, POD_GW), "ip -n %s link set cni0 up" % w,
            "ip -n %s link add vp0 type veth peer name eth0 netns %s" % (w, p),
            "ip -n %s link set vp0 master cni0" % w, "ip -n %s link set vp0 up" % w,
            "ip -n %s link set eth0 address %s" % (p, POD_MAC),
            "ip -n %s link set eth0 mtu 1450" % p,
            "ip -n %s addr add %s/24 dev eth0" % (p, POD_IP), "ip -n %s link set eth0 up" % p,
            "ip -n %s route add default via %s dev eth0" % (p, POD_GW),
            "ip -n %s link add vr0 type veth peer name eth0 netns %s" % (w, r),
            "ip -n %s link set vr0 master cni0" % w, "ip -n %s link set vr0 up" % w,
            "ip -n %s link set eth0 mtu 1450" % r,
            "ip -n %s addr add %s/24 dev eth0" % (r, PEER_IP), "ip -n %s link set eth0 up" % r,
            "ip -n %s route add default via %s dev eth0" % (r, POD_GW),
        ]
        for s in steps:
            sh(*s.split())

    def vm_gets_ip(self, ip):
        sh("ip", "-n", self.v, "addr", "add", ip + "/24", "dev", "uv0")
        sh("ip", "-n", self.v, "route", "add", "default", "dev", "uv0")

    def destroy(self):
        for ns in [self.q] + self.made:
            if os.path.exists(self.path(ns)):
                sh("ip", "netns", "del", ns, check=False)
        self.made = []


# ---------------------------------------------------------------- the daemon in W

class NsDaemon(pptest.Daemon):
    """pptest.Daemon, run in the worker namespace (nsenter execs: the pid is the daemon's)."""

    def __init__(self, env, ns_path, args, name):
        self.env = env
        self.log_path = os.path.join(env.dir, name + ".log")
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PP_TEST_CRASH_AT", "NOTIFY_SOCKET", "CLOUD_API_ADAPTOR_CONFIG")}
        self.cmd = ["nsenter", "--net=" + ns_path, bin_path("cloud-api-adaptor")] + list(args)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=environ,
                                         start_new_session=True)
        self.pid = self.proc.pid


class PodnetChainTest(unittest.TestCase):
    def setUp(self):
        self.topo = Topology()
        self.addCleanup(self.topo.destroy)          # runs last
        self.root_vxlans = self.root_vxlan_devices()
        self.env = Env(self)
        self.procs = []                              # VM side and helpers, stopped first
        self.addCleanup(self.stop_procs)
        d = self.env.dir
        self.node = os.path.join(d, "node.xml")
        with open(self.node, "w") as f:
            f.write(NODE_XML)
        self.topo.build()

    # -- processes
    def spawn(self, cmd, log_name):
        log = open(os.path.join(self.env.dir, log_name), "a")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(p)
        return p

    def stop_procs(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        reports = []
        for n in ("forwarder.log", "agent.log", "pud.log"):
            try:
                with open(os.path.join(self.env.dir, n), errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if any(m in text for m in pptest.SANITIZER_MARKS):
                reports.append("%s:\n%s" % (n, text[-6000:]))
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))

    def daemon(self):
        env = self.env
        args = ["libvirt"] + env.base_args() + [
            "-uri", "test://" + self.node, "-pool-name", "default-pool", "-ip-timeout", "10s",
            "-proxy-timeout", "60s", "-reaper=false"]
        d = NsDaemon(env, self.topo.path(self.topo.w), args, "daemon%d" % len(env.daemons))
        env.daemons.append(d)
        return d.wait_ready()

    # -- observations
    @staticmethod
    def root_vxlan_devices():
        return sh("ip", "-o", "link", "show", "type", "vxlan")

    def raw_rules(self, ns):
        return [l for l in ns_exec(ns, "iptables-save", "-t", "raw").splitlines()
                if l.startswith("-A ")]

    def vxlan_rows(self):
        db = sqlite3.connect(os.path.join(self.env.state, "state.db"), timeout=10)
        try:
            return db.execute("SELECT * FROM vxlan_indexes").fetchall()
        finally:
            db.close()

    def link(self, ns, dev):
        return sh("ip", "-n", ns, "-d", "link", "show", dev, check=False)

    def ifindex(self, ns, dev):
        out = sh("ip", "-n", ns, "-o", "link", "show", dev)
        return int(out.split(":", 1)[0])

    # -- traffic
    def server(self, ns, addr):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, __file__, "--serve", addr],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        line = p.stdout.readline()
        self.assertTrue(line.strip().isdigit(), "echo server in %s did not start" % ns)
        return int(line)

    def assert_traffic(self, what):
        """TCP both ways (20 KB echoed) and ping both ways between the peer pod R and the pod
        IP, which lives in the VM's podns Q."""
        for cli, srv_addr, port in ((self.topo.r, POD_IP, self.port_q),
                                    (self.topo.q, PEER_IP, self.port_r)):
            r = subprocess.run(["ip", "netns", "exec", cli, sys.executable, __file__, "--connect",
                                srv_addr, str(port), "20000"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, "%s: TCP %s -> %s:%d failed: %s"
                             % (what, cli, srv_addr, port, r.stdout))
        for cli, dst in ((self.topo.r, POD_IP), (self.topo.q, PEER_IP)):
            out = ns_exec(cli, "ping", "-c", "2", "-i", "0.2", "-W", "3", dst, check=False)
            self.assertIn(" 0% packet loss", out, "%s: ping %s -> %s" % (what, cli, dst))

    # -- a running pod
    def bring_up(self):
        """CreateVM + StartVM with the pod netns; the VM side started once the daemon logged
        the instance's address. Checks each side's objects; returns (daemon, sandbox, vm_ip,
        forwarder) with echo servers in Q and R (self.port_q, self.port_r)."""
        env, topo = self.env, self.topo
        daemon = self.daemon()
        s = sid(1, 64)
        pod_netns = "/var/run/netns/" + topo.p

        # CreateVM: index allocated, netns inspected, the pod's network in the saved user-data
        env.create(s, extra=("-netns", pod_netns))
        rows = self.vxlan_rows()
        self.assertEqual(len(rows), 1, rows)
        self.assertIn(s, rows[0])
        ud = os.path.join(env.state, "user-data", s)
        self.assertEqual(stat.S_IMODE(os.stat(ud).st_mode), 0o600)
        self.assertNotIn("vxlan1", sh("ip", "-n", topo.p, "-o", "link"))   # nothing before StartVM

        # StartVM: the shim waits while the "VM" comes up once its address is known
        start = subprocess.Popen([bin_path("shim-client"), "-socket", env.sock, "-timeout", "60s",
                                  "start", "-sandbox-id", s], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        self.procs.append(start)
        m = wait_for(lambda: re.search(r'msg="instance created" .*ip=(192\.168\.122\.\d+)',
                                       daemon.log()), 20, "the instance's IP in the log")
        vm_ip = m.group(1)
        wait_for(lambda: 'msg="pod network up"' in daemon.log() or start.poll() is not None, 20,
                 "the worker side of the tunnel")
        self.assertIn('msg="pod network up" sandbox=%s vni=%d remote=%s pod_if=eth0' % (s, VNI, vm_ip),
                      daemon.log())
        link = self.link(topo.p, "vxlan1")
        for want in ("vxlan id %d remote %s" % (VNI, vm_ip), "dstport 4789", "link-netns " + topo.w):
            self.assertIn(want, link)
        self.assertIn("mirred (Egress Redirect to device vxlan1)",
                      sh("tc", "-n", topo.p, "filter", "show", "dev", "eth0", "ingress"))
        rules = self.raw_rules(topo.w)
        self.assertEqual(len([l for l in rules if "peerpod [vni:%d]" % VNI in l and "NOTRACK" in l]),
                         2, rules)

        # the VM: its address, provisioning from the user-data the daemon saved, agent, forwarder
        topo.vm_gets_ip(vm_ip)
        root, cidata = os.path.join(env.dir, "vmroot"), os.path.join(env.dir, "cidata")
        os.makedirs(cidata)
        shutil.copyfile(ud, os.path.join(cidata, "user-data"))
        pud = subprocess.run(["nsenter", "--net=" + topo.path(topo.v), bin_path("process-user-data"),
                              "provision-files", "--root", root, "--cidata", cidata, "--provider",
                              "cidata", "-t", "10"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=30)
        with open(os.path.join(env.dir, "pud.log"), "w") as f:
            f.write(pud.stdout)
        self.assertEqual(pud.returncode, 0, pud.stdout)
        apf_path = os.path.join(root, "run", "peerpod", "apf.json")
        with open(apf_path) as f:
            apf = json.load(f)
        pn = apf["pod-network"]
        self.assertEqual((pn["podip"], pn["pod-hw-addr"], pn["worker-node-ip"], pn["tunnel-type"],
                          pn["vxlan-id"], pn["mtu"]),
                         (POD_IP + "/24", POD_MAC, WORKER_IP + "/24", "vxlan", VNI, 1450))
        self.assertTrue(apf.get("tls-server-cert") and apf.get("tls-client-ca"), sorted(apf))
        agent_sock = os.path.join(env.dir, "agent.sock")
        self.spawn([bin_path("mock-agent"), "--socket", agent_sock,
                    "--record", os.path.join(env.dir, "agent-calls.jsonl")], "agent.log")
        wait_for(lambda: os.path.exists(agent_sock), 10, "the mock agent's socket")
        fwd = self.spawn(["nsenter", "--net=" + topo.path(topo.v),
                          bin_path("agent-protocol-forwarder"), "-config", apf_path,
                          "-listen", "0.0.0.0:%d" % env.port, "-kata-agent-socket", agent_sock,
                          "-pod-namespace", topo.path(topo.q)], "forwarder.log")
        try:
            out, _ = start.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            start.kill()
            out, _ = start.communicate()
        self.assertEqual(start.returncode, 0, "StartVM: %s\ndaemon:\n%s" % (out, daemon.log()[-3000:]))
        with open(os.path.join(env.dir, "forwarder.log")) as f:
            self.assertIn('msg="pod network set up" dev=eth0 vni=%d' % VNI, f.read())
        self.assertIn("status=SERVING", env.agent(s, "health").out)    # through mTLS
        qlink = self.link(topo.q, "eth0")
        for want in ("vxlan id %d remote %s" % (VNI, WORKER_IP), POD_MAC, "mtu 1450"):
            self.assertIn(want, qlink)

        # traffic: peer pod <-> the pod IP, whose stack is the VM's podns
        self.port_q = self.server(topo.q, POD_IP)
        self.port_r = self.server(topo.r, PEER_IP)
        self.assertNotIn(POD_IP, sh("ss", "-N", topo.p, "-tln"))   # nothing listens on the node
        self.assertIn("%s:%d" % (POD_IP, self.port_q), sh("ss", "-N", topo.q, "-tln"))
        self.assert_traffic("after StartVM")
        return daemon, s, vm_ip, fwd

    def stop_and_check(self, daemon, s, fwd):
        """StopVM: the worker side is torn down, the index released; then the forwarder's exit
        tears the VM side down."""
        env, topo = self.env, self.topo
        env.stop(s)
        self.assertEqual(env.ls(), [])
        self.assertNotIn("vxlan1", sh("ip", "-n", topo.p, "-o", "link"))
        self.assertNotIn("ingress", sh("tc", "-n", topo.p, "qdisc", "show", "dev", "eth0"))
        self.assertEqual([l for l in self.raw_rules(topo.w) if "peerpod" in l or "NOTRACK" in l], [])
        self.assertEqual(self.vxlan_rows(), [])
        self.assertNotIn("level=error", daemon.log())
        r = subprocess.run(["ip", "netns", "exec", topo.r, sys.executable, __file__, "--connect",
                            POD_IP, str(self.port_q), "100"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0, "the pod IP still answers after StopVM")
        fwd.terminate()
        self.assertEqual(fwd.wait(10), 0)
        self.assertNotIn("eth0", sh("ip", "-n", topo.q, "-o", "link"))
        self.assertEqual([l for l in self.raw_rules(topo.v) if "peerpod" in l], [])
        # and nothing of this reached the test's own namespace
        self.assertEqual(self.root_vxlan_devices(), self.root_vxlans)

    # -- the tests
    def test_pod_network_through_daemon_and_forwarder(self):
        env, topo = self.env, self.topo
        daemon, s, vm_ip, fwd = self.bring_up()

        # kill -9 and restart with the tunnel intact: left alone, traffic flows, proxy restored
        before = self.ifindex(topo.p, "vxlan1")
        daemon.kill9()
        daemon = self.daemon()
        self.assertIn("running_restored=1", daemon.log())
        self.assertNotIn("pod network", daemon.log())          # neither repaired nor failed
        self.assertEqual(self.ifindex(topo.p, "vxlan1"), before)
        self.assertEqual(len(self.vxlan_rows()), 1)
        self.assert_traffic("after a restart")
        self.assertIn("status=SERVING", env.agent(s, "health").out)

        # kill -9, the tunnel damaged meanwhile (device down, NOTRACK rules gone): rebuilt
        daemon.kill9()
        sh("ip", "-n", topo.p, "link", "set", "vxlan1", "down")
        for l in self.raw_rules(topo.w):
            if "peerpod [vni:%d]" % VNI in l:
                ns_exec(topo.w, "iptables", "-w", "5", "-t", "raw", "-D", *shlex.split(l)[1:])
        self.assertEqual([l for l in self.raw_rules(topo.w) if "NOTRACK" in l], [])
        daemon = self.daemon()
        self.assertIn('msg="pod network repaired after restart" sandbox=%s result=rebuilt' % s,
                      daemon.log())
        self.assertIn("vxlan id %d remote %s" % (VNI, vm_ip), self.link(topo.p, "vxlan1"))
        self.assertNotEqual(self.ifindex(topo.p, "vxlan1"), before)
        self.assertEqual(len([l for l in self.raw_rules(topo.w) if "NOTRACK" in l]), 2)
        self.assert_traffic("after a restart that rebuilt the tunnel")
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        self.stop_and_check(daemon, s, fwd)

    # Regression: the rebuild used to refuse the ingress qdisc it had made itself on the pod's
    # eth0 when vxlan1 was gone ("already has an ingress qdisc that pod networking did not
    # make"); the reconcile now removes what is left of the recorded tunnel first.
    def test_restart_rebuilds_a_deleted_tunnel_device(self):
        topo = self.topo
        daemon, s, vm_ip, fwd = self.bring_up()
        daemon.kill9()
        sh("ip", "-n", topo.p, "link", "del", "vxlan1")
        daemon = self.daemon()
        self.assertIn('msg="pod network repaired after restart" sandbox=%s result=rebuilt' % s,
                      daemon.log())
        self.assertIn("vxlan id %d remote %s" % (VNI, vm_ip), self.link(topo.p, "vxlan1"))
        self.assert_traffic("after a restart that rebuilt a deleted tunnel device")
        self.stop_and_check(daemon, s, fwd)

if __name__ == "__main__":
    why = why_unsupported()
    if why:
        sys.stderr.write("SKIP: %s\n" % why)
        sys.exit(SKIP)
    pptest.main()
