#!/usr/bin/env python3
"""The whole chain with the `aws` provider, inside a private network namespace.

shim-client -> cloud-api-adaptor aws -> (EC2 Query API) -> the strict fake, or moto_server
fronted by the fake in proxy mode (which checks every parameter and injects throttling) ->
the "instance" the cloud created is played by process-user-data (fed the user-data EC2 stored,
read back with DescribeInstanceAttribute), agent-protocol-forwarder listening on the very IP the
cloud returned (:15150) and mock-agent -> shim-client's agent calls through the daemon's proxy
over mTLS.

The one idea: the test re-executes itself under `unshare -n` (root) or `unshare -rn`, brings lo
up and adds 10/8, 172.16/12 and 192.168/16 to it, so the instance addresses the cloud hands out
are local to the namespace and no packet ever leaves it.

Backends: "fake" always; "moto" when moto_server is installed (skipped with a message
otherwise; moto is a PyPI package, not a Debian one).

usage: test_aws_chain.py <bin-dir> [unittest args]     (exit 77 = skipped)
"""
import base64
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FAKE = os.path.join(SRC, "tests", "fakes", "aws", "fake_ec2.py")
sys.path.insert(0, os.path.dirname(FAKE))
import fake_ec2  # noqa: E402  (the fake's SigV4 signer, to sign the test's own calls)

BIN = ""
AKID, SECRET = fake_ec2.STATIC_AKID, fake_ec2.STATIC_SECRET
OWNER = "node-chain"
FAKE_AMI = "ami-0123456789abcdef0"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def reexec_in_netns():
    if os.environ.get("PP_AWS_NETNS") == "1":
        return
    env = dict(os.environ, PP_AWS_NETNS="1")
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run(cmd + ["true"], stderr=subprocess.DEVNULL).returncode == 0:
            os.execvpe(cmd[0], cmd + ["--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    print("cannot create a network namespace (unshare -n / -rn): skipped")
    sys.exit(77)


def setup_netns():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in ("10.0.0.1/8", "172.16.0.1/12", "192.168.0.1/16"):
        subprocess.run(["ip", "addr", "add", a, "dev", "lo"], check=True)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def xml_items(xml, path):
    """Elements at path (local names, namespaces ignored) of an EC2 answer."""
    root = ET.fromstring(xml)
    for e in root.iter():
        e.tag = e.tag.split("}")[-1]
    return root.findall(path)


def wait_for(cond, timeout, what, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Procs:
    """Every process the test starts, stopped (by pid) at the end."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.items = []

    def start(self, name, cmd, env=None):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        log.close()
        self.items.append((name, p))
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
            return f.read()

    def stop_all(self):
        for name, p in reversed(self.items):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)


class Ec2:
    """Signed EC2 calls of the test itself (static keys), and the fake's control API."""

    def __init__(self, url):
        self.url = url.rstrip("/") + "/"

    def call(self, action, **params):
        body = "&".join("%s=%s" % (urllib.parse.quote(k, safe=""), urllib.parse.quote(str(v), safe=""))
                        for k, v in [("Action", action), ("Version", fake_ec2.EC2_VERSION)] + list(params.items()))
        amzdate = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        host = self.url.split("/")[2]
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": host,
                   "x-amz-date": amzdate}
        scope = "%s/us-east-1/ec2/aws4_request" % amzdate[:8]
        signed = sorted(headers)
        sig = fake_ec2.sigv4_signature(SECRET, "POST", "/", "", headers, signed, body.encode(), amzdate, scope)
        req = urllib.request.Request(self.url, data=body.encode(), method="POST", headers={
            "Content-Type": headers["content-type"], "X-Amz-Date": amzdate,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                             % (AKID, scope, ";".join(signed), sig)})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError("EC2 %s: HTTP %d: %s" % (action, e.code, e.read().decode()[:500]))

    def control(self, path, data=None):
        req = urllib.request.Request(self.url + "_fake/" + path, method="POST" if data is not None else "GET",
                                     data=json.dumps(data).encode() if data is not None else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def owned(self):
        """[(id, state, private ip, tags)] of this owner's instances."""
        xml = self.call("DescribeInstances", **{"Filter.1.Name": "tag:peerpod-owner", "Filter.1.Value.1": OWNER})
        out = []
        for inst in xml_items(xml, "reservationSet/item/instancesSet/item"):
            tags = {t.findtext("key"): t.findtext("value") for t in inst.findall("tagSet/item")}
            out.append((inst.findtext("instanceId"), inst.findtext("instanceState/name"),
                        inst.findtext("privateIpAddress") or "", tags))
        return out

    def user_data(self, iid):
        xml = self.call("DescribeInstanceAttribute", InstanceId=iid, Attribute="userData")
        return base64.b64decode(xml_items(xml, "userData/value")[0].text)


class ChainBase:
    backend = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pp.", dir="/tmp")
        self.procs = Procs(self.tmp)
        self.addCleanup(self.cleanup)
        self.url = self.start_backend()
        self.ec2 = Ec2(self.url)

    def cleanup(self):
        texts = {}
        try:
            self.procs.stop_all()
            texts = {n: self.procs.log(n)[-6000:] for n, _ in self.procs.items
                     if any(m in self.procs.log(n) for m in SANITIZER_MARKS)}
        finally:
            if os.environ.get("PP_IT_KEEP") != "1":
                shutil.rmtree(self.tmp, ignore_errors=True)
        reports = list(texts)
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join("%s:\n%s" % kv for kv in texts.items()))

    def start_fake(self, extra=()):
        pf = os.path.join(self.tmp, "fake.port")
        self.procs.start("fake", [sys.executable, FAKE, "--port-file", pf] + list(extra))
        port = wait_for(lambda: read_text(pf), 10, "the fake's port")
        return "http://127.0.0.1:%s/" % port

    def daemon_env(self, ami):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                    "PODVM_AMI_ID": ami, "AWS_ENDPOINT_URL_EC2": self.url, "AWS_EC2_METADATA_DISABLED": "true",
                    "PODVM_INSTANCE_TYPES": "m6a.large,c6a.xlarge", "TAGS": "team=chain",
                    "HOME": self.tmp})
        return env

    def start_daemon(self, ami, ready=True):
        self.sock = os.path.join(self.tmp, "hv.sock")
        self.pods = os.path.join(self.tmp, "pods")
        d = self.procs.start("daemon", [os.path.join(BIN, "cloud-api-adaptor"), "aws", "-socket", self.sock,
                                        "-pods-dir", self.pods, "-state-dir", os.path.join(self.tmp, "state"),
                                        "-owner-id", OWNER], env=self.daemon_env(ami))
        if ready:
            wait_for(lambda: d.poll() is None and 'msg="ready"' in self.procs.log("daemon")
                     or (d.poll() is not None and self.fail("daemon exited:\n" + self.procs.log("daemon"))),
                     30, "the daemon to be ready")
        return d

    def shim(self, *args, sock=None, timeout=60):
        r = subprocess.run([os.path.join(BIN, "shim-client"), "-socket", sock or self.sock] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, "shim-client %s: %s %s" % (args, r.stdout, r.stderr))
        return r.stdout

    def boot_instance(self, iid, ip):
        """What the pod VM would do: provision from the stored user-data, run agent + forwarder."""
        root = os.path.join(self.tmp, "vm-root")
        cidata = os.path.join(self.tmp, "vm-cidata")
        os.makedirs(root)
        os.makedirs(cidata)
        ud = self.ec2.user_data(iid)
        self.assertTrue(ud.startswith(b"#cloud-config"), ud[:40])
        with open(os.path.join(cidata, "user-data"), "wb") as f:
            f.write(ud)
        with open(os.path.join(cidata, "meta-data"), "w") as f:
            f.write("instance-id: %s\n" % iid)
        r = subprocess.run([os.path.join(BIN, "process-user-data"), "provision-files", "--root", root,
                            "--cidata", cidata, "--provider", "cidata", "-t", "10"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        agent_sock = os.path.join(self.tmp, "agent.sock")
        self.procs.start("mock-agent", [os.path.join(BIN, "mock-agent"), "--socket", agent_sock])
        wait_for(lambda: os.path.exists(agent_sock), 10, "mock-agent's socket")
        self.procs.start("forwarder", [os.path.join(BIN, "agent-protocol-forwarder"), "-config",
                                       os.path.join(root, "run", "peerpod", "apf.json"), "-listen",
                                       "%s:15150" % ip, "-kata-agent-socket", agent_sock])

    def run_chain(self, ami, faults=()):
        self.start_daemon(ami)
        for f in faults:
            self.ec2.control("fault", f)
        sandbox = "c0ffee00" + "0123456789abcdef" * 3 + "01234567"
        self.shim("create", "-sandbox-id", sandbox, "-pod", "nginx", "-namespace", "default")
        start = subprocess.Popen([os.path.join(BIN, "shim-client"), "-socket", self.sock, "-timeout", "90s",
                                  "start", "-sandbox-id", sandbox], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        try:
            inst = wait_for(lambda: [i for i in self.ec2.owned() if i[2]], 30, "the instance to exist")[0]
            iid, _, ip, tags = inst
            self.assertEqual(tags.get("Name"), "podvm-nginx-c0ffee00")
            self.assertEqual(tags.get("peerpod-sandbox-id"), sandbox)
            self.assertEqual(tags.get("team"), "chain")
            self.boot_instance(iid, ip)
            out, _ = start.communicate(timeout=90)
        finally:
            if start.poll() is None:
                start.kill()
                start.wait()
        self.assertEqual(start.returncode, 0, "StartVM: %s\ndaemon:\n%s" % (out, self.procs.log("daemon")[-3000:]))
        agent = os.path.join(self.pods, sandbox, "agent.ttrpc")
        self.shim("health", sock=agent)
        self.shim("create-sandbox", "-sandbox-id", sandbox, sock=agent)
        self.shim("stop", "-sandbox-id", sandbox)
        states = {i[0]: i[1] for i in self.ec2.owned()}
        self.assertIn(states[iid], ("shutting-down", "terminated"))
        self.assertEqual(len(states), 1, states)
        return iid

    def assert_no_rejections(self):
        st = self.ec2.control("state")
        self.assertEqual(st["rejections"], [])
        return st


class FakeChain(ChainBase, unittest.TestCase):
    def start_backend(self):
        return self.start_fake()

    def test_chain(self):
        self.ec2.control("config", {"expect_owner": OWNER, "expect_tags": {"team": "chain"}})
        self.run_chain(FAKE_AMI)
        self.assert_no_rejections()

    def test_chain_throttled(self):
        self.run_chain(FAKE_AMI, faults=[
            {"action": "RunInstances", "status": 503, "code": "RequestLimitExceeded", "times": 1},
            {"action": "RunInstances", "status": 400, "code": "RequestLimitExceeded", "times": 2}])
        st = self.assert_no_rejections()
        self.assertEqual(sum(1 for c in st["calls"] if c == ["ec2", "RunInstances"]), 4)

    def test_unknown_ami(self):
        d = self.start_daemon("ami-0badbadbadbadbad0", ready=False)
        self.assertNotEqual(d.wait(30), 0)
        self.assertIn("InvalidAMIID.NotFound", self.procs.log("daemon"))
        self.assertNotIn(SECRET, self.procs.log("daemon"))


class MotoBase(ChainBase):
    """moto_server (signatures unchecked, any parameter accepted) behind the fake in proxy mode."""

    moto_env = {}

    def start_backend(self):
        if not shutil.which("moto_server"):
            self.skipTest("moto_server is not installed (PyPI package moto; not in Debian)")
        log = os.path.join(self.tmp, "moto.log")
        env = dict(os.environ, **self.moto_env)
        self.procs.start("moto", ["moto_server", "-H", "127.0.0.1", "-p", "0"], env=env)
        port = wait_for(lambda: (re.findall(r"127\.0\.0\.1:(\d+)", read_text(log)) or [None])[0], 30,
                        "moto_server to listen")
        self.moto_url = "http://127.0.0.1:%s/" % port
        url = self.start_fake(["--proxy-to", self.moto_url])
        # moto picks the default VPC's subnet: no subnet/security-group expectations
        Ec2(url).control("config", {"expect_owner": OWNER, "expect_tags": {"team": "chain"}})
        return url

    def moto_ami(self):
        """A moto default AMI that has a root EBS mapping and boots with UEFI."""
        xml = self.ec2.call("DescribeImages", **{"Owner.1": "amazon"})
        for img in xml_items(xml, "imagesSet/item"):
            if img.findtext("bootMode") == "uefi" and img.find("blockDeviceMapping/item/ebs/volumeSize") is not None \
                    and img.findtext("rootDeviceName") == img.findtext("blockDeviceMapping/item/deviceName"):
                return img.findtext("imageId")
        self.skipTest("moto has no UEFI AMI with a block-device mapping")



class MotoChain(MotoBase, unittest.TestCase):
    def test_chain(self):
        self.run_chain(self.moto_ami())
        self.assert_no_rejections()

    def test_chain_throttled(self):
        self.run_chain(self.moto_ami(), faults=[
            {"action": "RunInstances", "status": 400, "code": "RequestLimitExceeded", "times": 2}])
        st = self.assert_no_rejections()
        self.assertEqual(sum(1 for c in st["calls"] if c == ["ec2", "RunInstances"]), 3)


class MotoValidating(MotoBase, unittest.TestCase):
    """moto with its AMI and instance-type validation on: an unknown AMI is a clear error."""

    moto_env = {"MOTO_ENABLE_AMI_VALIDATION": "1", "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "1"}

    def test_unknown_ami(self):
        d = self.start_daemon("ami-0badbadbadbadbad0", ready=False)
        self.assertNotEqual(d.wait(30), 0)
        log = self.procs.log("daemon")
        self.assertTrue("InvalidAMIID.NotFound" in log or "ami-0badbadbadbadbad0 not found" in log, log[-2000:])


def main():
    global BIN
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.stderr.write("usage: %s <bin-dir> [unittest args]\n" % sys.argv[0])
        sys.exit(2)
    reexec_in_netns()
    BIN = os.path.abspath(sys.argv.pop(1))
    setup_netns()
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
