#!/usr/bin/env python3
"""The whole chain on the `azure` provider, against the strict ARM fake, in a private network
namespace: shim-client -> cloud-api-adaptor azure -> (fake ARM creates the "VM") ->
process-user-data on the user-data the fake received -> agent-protocol-forwarder listening on the
IP the fake handed out -> mock-agent; then agent calls through the daemon's per-pod socket over
mutual TLS, StopVM, and the fake's resource table must be empty.

The one idea: the test re-executes itself under `unshare -n` so that the namespace's loopback
owns 10/8, 172.16/12 and 192.168/16; the forwarder binds exactly the address the adaptor dials,
and no packet can leave the namespace. Without the privilege to make a namespace it skips (77).

Usage: test_azure_chain.py <bin-dir>     (PP_IT_KEEP=1 keeps the temporary directory)
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "..", "fakes", "azure", "fake_azure.py")
SKIP = 77
MARK = "PP_AZURE_IN_NETNS"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def reexec_in_netns():
    unshare = shutil.which("unshare")
    if not unshare:
        print("SKIP: no unshare(1)")
        sys.exit(SKIP)
    env = dict(os.environ, **{MARK: "1"})
    args = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-rn"]
    probe = subprocess.run(args + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        print("SKIP: cannot create a network namespace here")
        sys.exit(SKIP)
    os.execve(unshare, args + [sys.executable] + sys.argv, env)


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def netns_setup():
    sh("ip", "link", "set", "lo", "up")
    for net in ("10.0.0.1/8", "172.16.0.1/12", "192.168.0.1/16"):
        sh("ip", "addr", "add", net, "dev", "lo")
    # the namespace is private: only lo exists, so nothing can leave it
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert [l.split(":")[1].strip() for l in links.splitlines()] == ["lo"], links


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Chain:
    def __init__(self, bindir):
        self.bin = bindir
        self.dir = tempfile.mkdtemp(prefix="pp.", dir="/tmp")
        self.procs = []
        self.logs = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def spawn(self, name, cmd, env=None):
        log = self.path(name + ".log")
        self.logs.append(log)
        with open(log, "w") as out:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env or os.environ.copy(), start_new_session=True)
        self.procs.append((name, p))
        return p

    def run(self, *args, timeout=60, expect=0):
        r = subprocess.run([os.path.join(self.bin, "shim-client")] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if expect is not None and r.returncode != expect:
            raise AssertionError("shim-client %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    # -- the fake
    def fake_start(self):
        port_file = self.path("fake.port")
        self.spawn("fake", [sys.executable, FAKE, "--port-file", port_file])
        wait_for(lambda: os.path.exists(port_file), 10, "the fake's port")
        with open(port_file) as f:
            self.base = "http://127.0.0.1:%d" % int(f.read())

    def fake_state(self):
        with urllib.request.urlopen(self.base + "/_fake/state", timeout=10) as r:
            return json.load(r)

    # -- the daemon
    def daemon_start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
        env.update({
            "AZURE_CLIENT_ID": "client-1", "AZURE_CLIENT_SECRET": "s3cret-value",
            "AZURE_TENANT_ID": "tenant-1", "AZURE_SUBSCRIPTION_ID": "sub-1", "AZURE_REGION": "eastus",
            "AZURE_RESOURCE_GROUP": "rg-1",
            "AZURE_SUBNET_ID": "/subscriptions/sub-1/resourceGroups/net-rg/providers/"
                               "Microsoft.Network/virtualNetworks/vnet/subnets/default",
            "AZURE_IMAGE_ID": "/CommunityGalleries/cocopodvm-1/Images/podvm/Versions/latest",
            "AZURE_ARM_ENDPOINT": self.base, "AZURE_AUTHORITY_HOST": self.base,
            "AZURE_POLL_INTERVAL": "50ms",
        })
        self.daemon = self.spawn("daemon", [
            os.path.join(self.bin, "cloud-api-adaptor"), "azure", "-socket", self.path("hv.sock"),
            "-pods-dir", self.path("pods"), "-state-dir", self.path("state"), "-owner-id", "node-a",
            "-reaper=false"], env)
        wait_for(lambda: self.daemon.poll() is not None or 'msg="ready"' in self.log("daemon"), 30,
                 "the daemon to be ready")
        if self.daemon.poll() is not None:
            raise AssertionError("daemon exited:\n" + self.log("daemon"))

    def log(self, name):
        with open(self.path(name + ".log"), errors="replace") as f:
            return f.read()

    # -- the "VM"
    def boot_vm(self, vm_name, ip):
        """What the pod VM image does at boot, from the user-data ARM holds."""
        ud = self.fake_state()["user_data"][vm_name]
        root, cidata = self.path("vm", "root"), self.path("vm", "cidata")
        os.makedirs(root)
        os.makedirs(cidata)
        with open(os.path.join(cidata, "user-data"), "wb") as f:
            f.write(base64.b64decode(ud))
        with open(os.path.join(cidata, "meta-data"), "w") as f:
            f.write("local-hostname: %s\n" % vm_name)
        r = subprocess.run([os.path.join(self.bin, "process-user-data"), "provision-files", "--root", root,
                            "--cidata", cidata, "--provider", "cidata", "-t", "10"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        sock = self.path("vm", "agent.sock")
        self.spawn("mock-agent", [os.path.join(self.bin, "mock-agent"), "--socket", sock])
        wait_for(lambda: os.path.exists(sock), 10, "the mock agent's socket")
        self.spawn("forwarder", [os.path.join(self.bin, "agent-protocol-forwarder"),
                                 "-config", os.path.join(root, "run", "peerpod", "apf.json"),
                                 "-listen", "%s:15150" % ip, "-kata-agent-socket", sock,
                                 "-pod-namespace", self.path("vm", "netns-placeholder")])

    def cleanup(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(5)
        bad = []
        for log in self.logs:
            with open(log, errors="replace") as f:
                text = f.read()
            if any(m in text for m in SANITIZER_MARKS):
                bad.append("%s:\n%s" % (log, text[-4000:]))
        if os.environ.get("PP_IT_KEEP"):
            print("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if bad:
            raise AssertionError("sanitizer reports:\n" + "\n".join(bad))


def scenario(c):
    sid = "a2f0beef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
    vm = "podvm-nginx-a2f0beef"
    c.fake_start()
    c.daemon_start()
    hv = c.path("hv.sock")
    c.run("-socket", hv, "create", "-sandbox-id", sid, "-pod", "nginx", "-namespace", "default")
    start = subprocess.Popen([os.path.join(c.bin, "shim-client"), "-socket", hv, "-timeout", "90s", "start",
                              "-sandbox-id", sid], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    c.procs.append(("start", start))

    def vm_ip():
        st = c.fake_state()
        nic = st["resources"].get(("/subscriptions/sub-1/resourceGroups/rg-1/providers/"
                                   "Microsoft.Network/networkInterfaces/%s-net" % vm).lower())
        if vm in st["user_data"] and nic:
            return nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
        return None
    ip = wait_for(vm_ip, 60, "the fake to hold the VM")
    assert ip.startswith("10.0.0."), ip
    c.boot_vm(vm, ip)
    out, _ = start.communicate(timeout=120)
    assert start.returncode == 0, "StartVM failed:\n%s\n%s" % (out, c.log("daemon"))

    agent = os.path.join(c.path("pods"), sid, "agent.ttrpc")
    r = c.run("-socket", agent, "-timeout", "10s", "agent", "health")
    assert "status=SERVING" in r.stdout, r.stdout
    r = c.run("-socket", agent, "-timeout", "10s", "agent", "guest-details")
    assert "agent_version=" in r.stdout, r.stdout

    st = c.fake_state()
    vms = [v for v in st["resources"].values() if v["type"] == "Microsoft.Compute/virtualMachines"]
    assert len(vms) == 1 and vms[0]["tags"]["peerpods-owner"] == "node-a", vms
    assert vms[0]["properties"]["storageProfile"]["imageReference"] == {
        "communityGalleryImageId": "/CommunityGalleries/cocopodvm-1/Images/podvm/Versions/latest"}
    assert st["refusals"] == [], st["refusals"]

    c.run("-socket", hv, "-timeout", "60s", "stop", "-sandbox-id", sid)
    st = c.fake_state()
    assert st["resources"] == {}, "left in ARM after StopVM: %s" % list(st["resources"])
    assert st["refusals"] == [], st["refusals"]
    # the secret never reached the daemon's log
    assert "s3cret-value" not in c.log("daemon")
    print("ok: create, start (VM %s at %s), agent health over mTLS, stop, nothing left" % (vm, ip))


def main():
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.stderr.write("usage: %s <bin-dir>\n" % sys.argv[0])
        return 2
    if os.environ.get(MARK) != "1":
        reexec_in_netns()
    netns_setup()
    c = Chain(os.path.abspath(sys.argv[1]))
    try:
        scenario(c)
    except Exception:
        for log in ("daemon", "forwarder", "mock-agent", "fake"):
            try:
                sys.stderr.write("---- %s.log\n%s\n" % (log, c.log(log)[-3000:]))
            except OSError:
                pass
        c.cleanup()
        raise
    c.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
