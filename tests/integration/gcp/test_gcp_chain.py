#!/usr/bin/env python3
"""The whole chain on the gcp provider against the strict GCE fake, in a private network namespace.

    shim-client -> cloud-api-adaptor gcp -> fake_gce.py (token, machine types, image, insert,
    operation wait, get) ... the instance's IP 10.0.0.x is an address of this namespace's lo, so
    the adaptor's proxy reaches agent-protocol-forwarder -listen 10.0.0.x:15150 -> mock-agent,
    provisioned by process-user-data from the user-data the fake received in instances.insert.

The script re-runs itself under `unshare -n` (root needed; exit 77 = skipped otherwise), brings lo
up and gives it 10.0.0.1/8, 172.16.0.1/12 and 192.168.0.1/16: no packet leaves the namespace
(testing-notes.md). Everything started is killed and the temporary directory removed at the end.

Usage: test_gcp_chain.py <bin-dir> <fake_gce.py>
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

SKIP = 77
SID = "0001beef" + "0123456789abcdef" * 3 + "01234567"
INSTANCE = "podvm-nginx-0001beef"


def in_namespace():
    if os.environ.get("PP_GCP_NETNS") == "1":
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", "10.0.0.1/8", "dev", "lo"],
                    ["ip", "addr", "add", "172.16.0.1/12", "dev", "lo"],
                    ["ip", "addr", "add", "192.168.0.1/16", "dev", "lo"]):
            subprocess.run(cmd, check=True)
        return True
    if os.geteuid() != 0 or not shutil.which("unshare"):
        sys.stderr.write("SKIP: needs root and unshare for a private network namespace\n")
        sys.exit(SKIP)
    env = dict(os.environ, PP_GCP_NETNS="1")
    r = subprocess.run(["unshare", "-n", "--", sys.executable] + sys.argv, env=env)
    sys.exit(r.returncode)


def wait_for(cond, timeout, what, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


class Chain:
    def __init__(self, bindir, fake):
        self.bin, self.fake_py = bindir, fake
        self.dir = tempfile.mkdtemp(prefix="pp.", dir="/tmp")
        self.procs = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def spawn(self, name, cmd, env=None):
        log = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        log.close()
        self.procs.append((name, p))
        return p

    def log(self, name):
        with open(self.path(name + ".log"), errors="replace") as f:
            return f.read()

    def run(self, cmd, timeout=60):
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def keys(self):
        key, pub = self.path("key.pem"), self.path("pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", key], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True)
        with open(key) as f:
            self.private_pem = f.read()
        return pub

    def start_fake(self):
        pub = self.keys()
        portf = self.path("fake.port")
        self.spawn("fake", [sys.executable, self.fake_py, "--project", "pp-proj", "--zone", "us-central1-a",
                            "--pubkey", pub, "--client-email", "caa@pp-proj.iam.gserviceaccount.com",
                            "--kid", "k1", "--port-file", portf])
        wait_for(lambda: os.path.exists(portf), 10, "the fake's port file")
        with open(portf) as f:
            self.base = "http://127.0.0.1:%d" % int(f.read())
        self.key_json = json.dumps({"type": "service_account", "project_id": "pp-proj",
                                    "private_key_id": "k1", "private_key": self.private_pem,
                                    "client_email": "caa@pp-proj.iam.gserviceaccount.com",
                                    "token_uri": self.base + "/token"})

    def fake(self, path, body=None):
        req = urllib.request.Request(self.base + "/_fake/" + path,
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def start_daemon(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GCP_", "GOOGLE_"))}
        env.update({"GCP_CREDENTIALS": self.key_json, "GCP_PROJECT_ID": "pp-proj", "GCP_ZONE": "us-central1-a",
                    "PODVM_IMAGE_NAME": "podvm", "GCP_NETWORK": "pp-net", "GCP_CONFIDENTIAL_TYPE": "SEV_SNP",
                    "GCP_MACHINE_TYPE": "n2d-standard-2", "GCP_INSTANCE_TYPES": "n2d-standard-2,n2d-standard-4",
                    "GCP_COMPUTE_ENDPOINT": self.base + "/compute/v1",
                    "GCP_RESOURCE_MANAGER_ENDPOINT": self.base + "/v3",
                    "GCP_METADATA_ENDPOINT": self.base, "GCP_POLL_INTERVAL": "50ms", "TAGS": "env=test"})
        self.sock = self.path("hv.sock")
        self.pods = self.path("pods")
        self.daemon = self.spawn("daemon", [os.path.join(self.bin, "cloud-api-adaptor"), "gcp", "-socket", self.sock,
                                            "-pods-dir", self.pods, "-state-dir", self.path("state"),
                                            "-owner-id", "node-a"], env=env)

        def ready():
            if self.daemon.poll() is not None:
                raise AssertionError("daemon exited:\n" + self.log("daemon"))
            return 'msg="ready"' in self.log("daemon")
        wait_for(ready, 30, "the daemon to be ready")

    def shim(self, *args, sock=None, timeout="60s"):
        return self.run([os.path.join(self.bin, "shim-client"), "-socket", sock or self.sock, "-timeout", timeout]
                        + list(args), timeout=120)

    def boot_vm(self, inst):
        """What the pod VM would do with the user-data GCE holds in its metadata."""
        root, cidata, agent = self.path("vm", "root"), self.path("vm", "cidata"), self.path("vm", "agent.sock")
        os.makedirs(root)
        os.makedirs(cidata)
        with open(os.path.join(cidata, "user-data"), "w") as f:
            f.write(inst["user_data"])
        with open(os.path.join(cidata, "meta-data"), "w") as f:
            f.write("instance-id: %s\nlocal-hostname: %s\n" % (INSTANCE, INSTANCE))
        r = self.run([os.path.join(self.bin, "process-user-data"), "provision-files", "--root", root,
                      "--cidata", cidata, "--provider", "cidata", "-t", "30"])
        assert r.returncode == 0, r.stdout
        ip = inst["networkInterfaces"][0]["networkIP"]
        self.spawn("mock-agent", [os.path.join(self.bin, "mock-agent"), "--socket", agent])
        wait_for(lambda: os.path.exists(agent), 10, "the mock agent's socket")
        self.spawn("forwarder", [os.path.join(self.bin, "agent-protocol-forwarder"), "-config",
                                 os.path.join(root, "run", "peerpod", "apf.json"), "-listen", ip + ":15150",
                                 "-kata-agent-socket", agent])

    def cleanup(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        if os.environ.get("PP_IT_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    in_namespace()
    c = Chain(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
    try:
        c.start_fake()
        c.start_daemon()
        r = c.shim("create", "-sandbox-id", SID, "-pod", "nginx", "-namespace", "default")
        check(r.returncode == 0, "create: " + r.stdout)
        start = subprocess.Popen([os.path.join(c.bin, "shim-client"), "-socket", c.sock, "-timeout", "90s",
                                  "start", "-sandbox-id", SID], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        c.procs.append(("start", start))
        inst = wait_for(lambda: c.fake("state")["instances"].get(INSTANCE), 30, "instances.insert")
        check(inst["user_data"].startswith("#cloud-config"), "user-data is not cloud-config")
        check(inst["labels"]["peerpod-owner"] == "node-a", "owner label")
        c.boot_vm(inst)
        out, _ = start.communicate(timeout=100)
        check(start.returncode == 0, "start failed: %s\ndaemon log:\n%s" % (out, c.log("daemon")))
        r = c.shim("health", sock=os.path.join(c.pods, SID, "agent.ttrpc"), timeout="10s")
        check(r.returncode == 0, "agent health through the chain: " + r.stdout)
        r = c.shim("stop", "-sandbox-id", SID)
        check(r.returncode == 0, "stop: " + r.stdout)
        st = c.fake("state")
        check(INSTANCE not in st["instances"], "the instance is still there after StopVM")
        check(st["violations"] == [], "fake violations: %r" % st["violations"])
        body = st["inserts"][0]
        check(body["params"]["resourceManagerTags"] == {"tagKeys/101": "tagValues/201"}, "tags")
        check(body["confidentialInstanceConfig"] == {"confidentialInstanceType": "SEV_SNP"}, "cvm")
        log = c.log("daemon")
        check("ERROR: AddressSanitizer" not in log and "runtime error:" not in log, "sanitizer report:\n" + log)
        check(c.key_json.split("PRIVATE KEY")[1][:40] not in log, "key material in the log")
        print("ok: create, start, agent health over mTLS to 10.0.0.x, stop; the fake saw no violation")
        return 0
    finally:
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())
