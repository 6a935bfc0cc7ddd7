#!/usr/bin/env python3
"""End to end with a real VM: shim client -> cloud-api-adaptor (libvirt provider, mutual TLS)
-> a QEMU (TCG) domain that boots the pod VM of podvm/build.sh -> agent-protocol-forwarder in
the VM -> mock agent in the VM.

The test builds (or reuses) the pod VM from the build's own binaries, starts a private libvirt
host (podvm_host.py: libvirtd + virtlogd inside a network namespace it creates, a network with
STP off and dnsmasq without ping, a pool with a base volume) and runs the adaptor inside that
namespace, so every packet to the VM stays there. The mock agent in the VM writes each call it
receives as one JSON line on the console; the provider logs the console to a file
(LIBVIRT_CONSOLE_LOG_DIR), which is how the test reads what the agent saw.

Exit 77 (skipped) only when the packages cannot be installed (qemu-system-x86, libvirt-daemon
and friends, see podvm_host.missing_packages) or the kernel package cannot be downloaded.

Usage: python3 test_podvm.py <bin-dir> [unittest args]   (or PP_BIN_DIR=<bin-dir>)
PP_IT_KEEP=1 keeps the temporary directories.
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
sys.path.insert(0, HERE)

import pptest  # noqa: E402
from pptest import Env, sid, wait_for  # noqa: E402
import podvm_host  # noqa: E402
from podvm_host import LibvirtHost  # noqa: E402

SKIP = 77
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PROXY_TIMEOUT_S = 4
START_TIMEOUT = "120s"


def skip(msg):
    sys.stderr.write("SKIP: %s\n" % msg)
    sys.exit(SKIP)


def ensure_packages():
    """Installs what is missing (as root, with apt); skips the test when that is impossible."""
    missing = podvm_host.missing_packages()
    if not missing:
        return
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"):
        skip("needs the packages %s (not root or no apt-get to install them)" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or podvm_host.missing_packages():
        skip("cannot install %s:\n%s" % (" ".join(missing), r.stdout[-2000:]))


def build_podvm(bin_dir):
    """podvm/build.sh for the programs in bin_dir; returns its KEY=VALUE output as a dict."""
    r = subprocess.run([os.path.join(REPO, "podvm", "build.sh"), "--bin-dir", bin_dir, "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if r.returncode != 0:
        if "apt-get download" in r.stderr or "kernel package" in r.stderr:
            skip("cannot fetch the pod VM kernel: %s" % r.stderr.strip()[-1000:])
        raise RuntimeError("podvm/build.sh failed:\n%s%s" % (r.stdout, r.stderr))
    return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)


class NetnsDaemon(pptest.Daemon):
    """pptest.Daemon, run inside the libvirt host's network namespace."""

    def __init__(self, env, args, host, name, extra_env=None):  # pylint: disable=super-init-not-called
        self.env = env
        self.log_path = os.path.join(env.dir, name + ".log")
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PP_TEST_CRASH_AT", "NOTIFY_SOCKET", "CLOUD_API_ADAPTOR_CONFIG")}
        environ.update(extra_env or {})
        self.cmd = host.netns_cmd([pptest.bin_path("cloud-api-adaptor")] + list(args))
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=environ,
                                         start_new_session=True)
        self.pid = self.proc.pid


def agent_records(console):
    """The mock agent's JSON lines in a console log."""
    out = []
    for line in console.replace("\r", "").splitlines():
        i = line.find('{"')
        if i < 0:
            continue
        try:
            rec = json.loads(line[i:])
        except ValueError:
            continue
        if isinstance(rec, dict) and "method" in rec and "service" in rec:
            out.append(rec)
    return out


def log_field_ms(log, msg, field="ms"):
    m = re.search(r'msg="%s"[^\n]* %s=(\d+)' % (re.escape(msg), field), log)
    return int(m.group(1)) if m else None


def log_time_of(log, msg):
    """The time (s since the epoch) of the first log line with msg."""
    return podvm_host.log_time(podvm_host.log_line(log, msg))


class PodVMTest(unittest.TestCase):
    host = None
    podvm = None

    @classmethod
    def setUpClass(cls):
        cls.podvm = build_podvm(pptest.BIN)
        podvm_host.reap_stale()
        workdir = podvm_host.make_workdir()
        cache = os.path.join(os.path.dirname(cls.podvm["PODVM_KERNEL"]), "libvirt-cache")
        cls.host = LibvirtHost(workdir, cache)
        try:
            cls.host.up()
        except Exception:
            cls.host.down()
            if not os.environ.get("PP_IT_KEEP"):
                cls.host.remove_dir()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.host:
            cls.host.down()
            if os.environ.get("PP_IT_KEEP"):
                sys.stderr.write("kept %s\n" % cls.host.dir)
            else:
                cls.host.remove_dir()

    # ---- helpers
    def daemon(self, env, cmdline=None, proxy_timeout="60s"):
        h, p = self.host, self.podvm
        args = ["libvirt", "-socket", env.sock, "-pods-dir", env.pods, "-state-dir", env.state,
                "-owner-id", env.owner,
            "-uri", h.uri, "-pool-name", podvm_host.POOL_NAME, "-network-name", podvm_host.NET_NAME,
            "-vol-name", podvm_host.BASE_VOLUME, "-domain-type", "qemu", "-firmware", "",
            "-cpu", "1", "-memory", "384", "-kernel", p["PODVM_KERNEL"], "-initrd", p["PODVM_INITRD"],
            "-cmdline", cmdline or p["PODVM_CMDLINE"], "-console-log-dir", h.console_dir,
            "-ip-timeout", "90s", "-proxy-timeout", proxy_timeout, "-reaper=false"]
        d = NetnsDaemon(env, args, h, "daemon%d" % len(env.daemons))
        env.daemons.append(d)
        return d.wait_ready(timeout=60)

    def assert_instance_gone(self, name):
        h = self.host
        self.assertNotIn(name, h.domains())
        self.assertEqual(h.volumes(), [podvm_host.BASE_VOLUME], "volumes left after StopVM")

    def assert_console_clean(self, console):
        for mark in pptest.SANITIZER_MARKS:
            self.assertNotIn(mark, console, "sanitizer report in the VM's console:\n" + console[-4000:])

    def tls_without_client_cert(self, ip):
        """What a TLS client without a certificate gets from the forwarder, from inside the
        namespace: REFUSED (handshake or first read fails), or SESSION (the forwarder waits for
        a request: it accepted the client)."""
        code = ("import socket,ssl,sys\n"
                "c=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT);c.check_hostname=False;c.verify_mode=ssl.CERT_NONE\n"
                "s=socket.create_connection((sys.argv[1],15150),timeout=10)\n"
                "try:\n"
                " t=c.wrap_socket(s);t.settimeout(3);d=t.recv(1)\n"
                " print('CLOSED' if not d else 'DATA')\n"
                "except socket.timeout: print('SESSION')\n"
                "except (ssl.SSLError,OSError) as e: print('REFUSED',e)\n")
        r = subprocess.run(self.host.netns_cmd([sys.executable, "-c", code, ip]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        return r.stdout

    # ---- tests
    def test_1_pod_in_a_real_vm(self):
        h = self.host
        env = Env(self)
        daemon = self.daemon(env)
        s = sid(1, 64)
        name = "podvm-nginx-%s" % s[:8]
        env.create(s)
        t0 = time.monotonic()
        try:
            env.start(s, timeout=START_TIMEOUT)
        except AssertionError as e:
            raise AssertionError("%s\nVM console:\n%s\ndaemon log:\n%s" % (
                e, h.console_log(name)[-3000:], daemon.log()[-3000:])) from None
        start_s = time.monotonic() - t0
        sys.stderr.write("StartVM returned after %.2f s\n" % start_s)

        # the adaptor's view: running, the domain's UUID, a lease from the namespace's network
        row = env.rows_by_sandbox()[s[:16]]
        self.assertEqual(row["state"], "running")
        self.assertEqual(row["instance"], name)
        self.assertEqual(len(row["id"]), 36, row)
        self.assertTrue(row["ip"].startswith(podvm_host.SUBNET + "."), row)
        # libvirt's view: the provider's domain, direct kernel boot of the pod VM, TCG
        self.assertEqual(h.domains(), [name])
        xml = h.virsh("dumpxml", name).stdout
        self.assertIn("<uuid>%s</uuid>" % row["id"], xml)
        self.assertIn("<kernel>%s</kernel>" % self.podvm["PODVM_KERNEL"], xml)
        self.assertIn("<initrd>%s</initrd>" % self.podvm["PODVM_INITRD"], xml)
        self.assertIn("type='qemu'", xml)
        self.assertIn(name + "-cloudinit.iso", xml)
        self.assertEqual(h.volumes(), sorted([podvm_host.BASE_VOLUME, name + "-root.qcow2",
                                              name + "-cloudinit.iso"]))
        ud = os.path.join(env.state, "user-data", s)
        self.assertEqual(os.stat(ud).st_mode & 0o777, 0o600)

        # the VM booted the way /init says: cidata, user-data, DHCP, agent, forwarder (mTLS)
        console = h.console_log(name)
        for step in ("cidata mounted", "user-data provisioned", "network up addr=" + row["ip"] + "/",
                     "agent started", "PODVM READY"):
            self.assertIn(step, console, console[-3000:])
        self.assertIn("wrote /run/peerpod/apf.json", console)
        self.assertRegex(console, r'msg="forwarder listening"[^\n]*tls=mutual')
        self.assertRegex(daemon.log(), r'msg="agent proxy listening"[^\n]*tls=on')

        # agent calls through the proxy, mTLS, the forwarder, to the mock agent in the VM
        self.assertIn("status=SERVING", env.agent(s, "health").out)
        env.agent(s, "create-sandbox", "-sandbox-id", s, "-dns", "8.8.8.8")
        env.agent(s, "create-container", "-container-id", "c1", "-ns", "network:/var/run/netns/host",
                  "-ns", "pid", "-annotation", "a=b")
        recs = wait_for(lambda: [r for r in agent_records(h.console_log(name))
                                 if r["method"] == "CreateContainer"] and agent_records(h.console_log(name)),
                        20, "the CreateContainer record on the VM's console")
        self.assertEqual([r["method"] for r in recs], ["Check", "CreateSandbox", "CreateContainer"])
        self.assertEqual(recs[1]["dns"], [], "the forwarder clears CreateSandbox's dns: %s" % recs[1])
        cc = recs[2]
        self.assertEqual(cc["container_id"], "c1")
        nets = [n for n in cc["oci"]["namespaces"] if n["type"] == "network"]
        self.assertEqual(nets, [{"type": "network", "path": "/run/netns/podns"}],
                         "exactly one network namespace, the pod's: %s" % cc)
        self.assertIn("pid", [n["type"] for n in cc["oci"]["namespaces"]])
        self.assertEqual(cc["oci"]["annotations"].get("a"), "b")

        # the forwarder gives no session to a client without the adaptor's certificate
        out = self.tls_without_client_cert(row["ip"])
        self.assertTrue(out.startswith("REFUSED"), out)
        self.assertIn("status=SERVING", env.agent(s, "health").out)   # and still serves the proxy

        # StopVM: domain destroyed and undefined, its volumes deleted, no row
        env.stop(s)
        self.assert_instance_gone(name)
        self.assertEqual(env.ls(), [])
        self.assertIn('msg="libvirt domain deleted"', daemon.log())
        self.assert_console_clean(h.console_log(name))

    def test_2_vm_that_never_answers(self):
        """The forwarder is off (kernel command line): StartVM fails once PROXY_TIMEOUT has
        passed after the VM got its address, and the domain and its volumes are deleted."""
        h = self.host
        env = Env(self)
        daemon = self.daemon(env, cmdline=self.podvm["PODVM_CMDLINE"] + " podvm.forwarder=off",
                             proxy_timeout="%ds" % PROXY_TIMEOUT_S)
        s = sid(2, 64)
        name = "podvm-nginx-%s" % s[:8]
        env.create(s)
        t0 = time.monotonic()
        r = env.start(s, timeout=START_TIMEOUT, expect=None)
        total_ms = (time.monotonic() - t0) * 1000
        self.assertNotEqual(r.rc, 0, r)
        log = daemon.log()
        self.assertIn('msg="StartVM failed"', log)
        created_ms = log_field_ms(log, "instance created")
        self.assertIsNotNone(created_ms, log)
        listening = log_time_of(log, "agent proxy listening")
        gave_up = log_time_of(log, "agent proxy connection failed")
        self.assertIsNotNone(gave_up, log)
        waited_ms = (gave_up - listening) * 1000
        after_ms = total_ms - created_ms
        sys.stderr.write("VM up after %d ms; the proxy gave up %d ms later (PROXY_TIMEOUT %d s); "
                         "StartVM failed %d ms after the VM was up\n"
                         % (created_ms, waited_ms, PROXY_TIMEOUT_S, after_ms))
        # the proxy waited for the forwarder for PROXY_TIMEOUT, no less and not much more, and
        # StartVM failed right after deleting the domain
        self.assertGreaterEqual(waited_ms, PROXY_TIMEOUT_S * 1000 - 50)
        self.assertLessEqual(waited_ms, PROXY_TIMEOUT_S * 1000 + 2000)
        self.assertLessEqual(after_ms, PROXY_TIMEOUT_S * 1000 + 5000)
        self.assertIn("forwarder disabled", h.console_log(name))
        self.assertIn('msg="instance of a failed StartVM deleted"', log)
        self.assert_instance_gone(name)
        env.stop(s)
        self.assertEqual(env.ls(), [])

    def test_3_nothing_left(self):
        """Tearing the host down leaves no domain, no process in the namespace (libvirtd,
        virtlogd, dnsmasq, qemu) and no namespace."""
        h = self.host
        self.assertEqual(h.domains(), [])
        self.assertEqual(h.volumes(), [podvm_host.BASE_VOLUME])
        inode = h.netns_inode
        procs = [c for _, c in h.leftovers()]
        self.assertIn("libvirtd", procs)
        self.assertIn("dnsmasq", procs)
        forced = h.down()
        self.assertEqual(forced, [], "had to be removed by force")
        self.assertEqual(podvm_host.procs_in_netns(inode), [])
        self.assertNotIn(h.netns, subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                                                 text=True).stdout.split())


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("needs root (network namespaces, libvirtd)")
    ensure_packages()
    pptest.main()
