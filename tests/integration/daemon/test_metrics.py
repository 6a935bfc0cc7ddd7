"""/metrics outside Kubernetes (PROBE_PORT set): after a lifecycle the operation histograms and
counters are there, and a forwarder that restarts under a running pod shows up as an agent proxy
reconnect (the proxy re-dials it, and the pod's agent calls work again)."""
import http.client
import os
import re
import signal
import subprocess
import time
import unittest

from pptest import Env, main, sid, wait_for


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    r = c.getresponse()
    return r.status, r.read().decode()


def value(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


class MetricsTest(unittest.TestCase):
    def test_lifecycle_and_proxy_reconnect_counted(self):
        env = Env(self)
        d = env.daemon("-probe-port", "0")
        m = re.search(r'msg="probe listening" address=127\.0\.0\.1 port=(\d+)', d.log())
        self.assertIsNotNone(m, d.log())
        port = int(m.group(1))
        s = sid(1)
        env.create(s)
        env.start(s)
        status, text = metrics(port)
        self.assertEqual(status, 200)
        self.assertEqual(value(text, "caa_agent_proxy_connections_total"), 1)
        self.assertEqual(value(text, "caa_agent_proxy_reconnects_total"), 0)
        self.assertIn("caa_vm_operation_seconds_bucket", text)

        # the forwarder restarts (same command line), as systemd would restart it in a VM
        name = env.instances()[0]
        fwd = env.meta(name)["forwarder"]["pid"]
        with open("/proc/%d/cmdline" % fwd, "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        os.kill(fwd, signal.SIGTERM)
        wait_for(lambda: not os.path.exists("/proc/%d/cmdline" % fwd) or
                 open("/proc/%d/stat" % fwd).read().split(") ")[1].startswith("Z"), 10,
                 "the forwarder to exit")
        console = open(os.path.join(env.local_root(), name, "console.log"), "ab")
        newfwd = subprocess.Popen(argv, stdout=console, stderr=console, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        self.addCleanup(lambda: (newfwd.poll() is None and newfwd.kill(), newfwd.wait()))
        wait_for(lambda: env.agent(s, "health", expect=None).rc == 0, 20,
                 "the pod's agent socket to answer through the restarted forwarder")
        _, text = metrics(port)
        self.assertEqual(value(text, "caa_agent_proxy_reconnects_total"), 1)

        env.stop(s)
        # started by the test, not by the provider: the test stops it
        newfwd.terminate()
        self.assertEqual(newfwd.wait(timeout=10), 0)
        console.close()


if __name__ == "__main__":
    main()
