#!/usr/bin/env python3
"""The daemon in Kubernetes mode (NODE_NAME + -kubeconfig pointing at the strict fake API
server), with the local provider: the node's extended resource advertised at start and withdrawn
at shutdown, a PeerPod per started sandbox owned by its Pod and released after StopVM, the pod's
pull secret in the instance's /run/peerpod/auth.json (0600), /startup with upstream's semantics
and /metrics with non-zero counts after a lifecycle. The fake refuses anything unexpected and
the test asserts nothing was refused.
"""
import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
import pptest  # noqa: E402
from pptest import Env, sid, wait_for  # noqa: E402

FAKE = os.path.join(HERE, "..", "..", "fakes", "k8s", "fake_apiserver.py")
TOKEN = "it-token-5678"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FakeAPI:
    def __init__(self, tc):
        self.p = subprocess.Popen([sys.executable, FAKE, "--token", TOKEN], stdout=subprocess.PIPE,
                                  text=True)
        tc.addCleanup(self.close)
        self.port = int(self.p.stdout.readline().strip().split("=")[1])

    def close(self):
        self.p.terminate()
        self.p.wait(10)
        self.p.stdout.close()

    def ctl(self, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def state(self):
        return self.ctl("/_fake/state")


def pod(name, ready_at, uid):
    return {"metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"nodeName": "node-a", "runtimeClassName": "kata-remote"},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                                       "lastTransitionTime": rfc3339(ready_at)}]}}


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class K8sDaemonTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.api = FakeAPI(self)
        self.kubeconfig = os.path.join(self.env.dir, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:%d\n"
                    "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
                    "users:\n- name: u\n  user:\n    token: %s\n" % (self.api.port, TOKEN))
        cfg = base64.b64encode(json.dumps(
            {"auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}}}).encode()).decode()
        self.api.ctl("/_fake/objects", {
            "nodes": [{"metadata": {"name": "node-a"}, "status": {"capacity": {}}}],
            # An old peer pod on the node: Ready before this daemon started.
            "pods": [pod("nginx", time.time() - 3600, "uid-nginx")],
            "serviceaccounts": [{"metadata": {"name": "default", "namespace": "default"},
                                 "imagePullSecrets": [{"name": "regcred"}]}],
            "secrets": [{"metadata": {"name": "regcred", "namespace": "default"},
                         "type": "kubernetes.io/dockerconfigjson",
                         "data": {".dockerconfigjson": cfg}}],
        })

    def daemon(self):
        return self.env.daemon("-kubeconfig", self.kubeconfig, "-probe-port", "0",
                               env={"NODE_NAME": "node-a", "POD_UID": "uid-caa-1",
                                    "PEERPODS_LIMIT_PER_NODE": "7"})

    def probe_port(self, d):
        m = re.search(r'msg="probe listening" address=127\.0\.0\.1 port=(\d+)', d.log())
        self.assertIsNotNone(m, d.log())
        return int(m.group(1))

    def node(self):
        return self.api.state()["nodes"]["node-a"]

    def test_lifecycle_in_kubernetes_mode(self):
        d = self.daemon()
        node = self.node()
        self.assertEqual(node["status"]["capacity"].get("kata.peerpods.io/vm"), "7")
        self.assertEqual(node["metadata"]["annotations"]["kata.peerpods.io/caa-owner"], "uid-caa-1")
        port = self.probe_port(d)

        # /startup: the old peer pod has not become Ready since our start.
        self.assertEqual(http_get(port, "/startup")[0], 500)
        self.api.ctl("/_fake/objects", {"pods": [pod("nginx", time.time() + 5, "uid-nginx")]})
        self.assertEqual(http_get(port, "/startup")[0], 200)
        # Once succeeded, the pod check is skipped (upstream's semantics).
        self.api.ctl("/_fake/objects", {"pods": [pod("nginx", time.time() - 3600, "uid-nginx")]})
        self.assertEqual(http_get(port, "/startup")[0], 200)
        self.assertEqual(http_get(port, "/nothing")[0], 404)

        s = sid(1, 64)
        self.env.create(s, pod="nginx", namespace="default")
        self.env.start(s)
        names = self.env.instances()
        self.assertEqual(len(names), 1)
        auth = os.path.join(self.env.local_root(), names[0], "root", "run", "peerpod", "auth.json")
        wait_for(lambda: os.path.exists(auth), 20, "auth.json in the instance")
        self.assertEqual(stat.S_IMODE(os.stat(auth).st_mode), 0o600)
        with open(auth) as f:
            self.assertEqual(json.load(f), {"auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}}})

        pps = self.api.state()["peerpods"]
        self.assertEqual(list(pps), ["default/nginx-resource-%s" % s[:5]])
        pp = pps["default/nginx-resource-%s" % s[:5]]
        self.assertEqual(pp["metadata"]["ownerReferences"][0]["uid"], "uid-nginx")
        self.assertEqual(pp["metadata"]["finalizers"], ["peer.pod/finalizer"])
        self.assertEqual(pp["spec"]["cloudProvider"], "local")
        self.assertTrue(pp["spec"]["instanceID"])

        self.env.stop(s)
        pp = self.api.state()["peerpods"]["default/nginx-resource-%s" % s[:5]]
        self.assertNotIn("finalizers", pp["metadata"])

        status, text = http_get(port, "/metrics")
        self.assertEqual(status, 200)
        for op in ("create", "start", "delete"):
            self.assertEqual(metric(text, "caa_vm_operation_seconds_count", '{op="%s"}' % op), 1, text)
            self.assertEqual(metric(text, "caa_vm_operations_total", '{op="%s",result="ok"}' % op), 1)
        self.assertEqual(metric(text, "caa_sandboxes", '{state="running"}'), 0)
        self.assertEqual(metric(text, "caa_agent_proxy_connections_total"), 1)
        self.assertEqual(metric(text, "caa_peerpods_total", '{result="ok"}'), 1)
        self.assertIn('caa_build_info{version="', text)
        self.assertIn('provider="local"} 1', text)
        self.assertGreaterEqual(metric(text, "caa_kube_api_requests_total",
                                       '{client="k8s",operation="CreatePeerPod",status="2xx"}'), 1)
        self.assertIn("# TYPE caa_reaped_instances_total counter", text)
        self.assertIn("# TYPE caa_cloud_api_requests_total counter", text)

        self.assertEqual(d.term(), 0)
        self.assertNotIn("kata.peerpods.io/vm", self.node()["status"]["capacity"])
        self.assertIn("node extended resource withdrawn", d.log())
        self.assertEqual(self.api.state()["unexpected"], [])

    def test_not_owner_leaves_resource(self):
        d = self.daemon()
        # A newer daemon of a rolling update took the node over.
        node = self.node()
        node["metadata"]["annotations"]["kata.peerpods.io/caa-owner"] = "uid-caa-2"
        self.api.ctl("/_fake/objects", {"nodes": [node]})
        self.assertEqual(d.term(), 0)
        self.assertEqual(self.node()["status"]["capacity"].get("kata.peerpods.io/vm"), "7")
        self.assertEqual(self.api.state()["unexpected"], [])

    def test_start_fails_when_node_patch_fails(self):
        self.api.ctl("/_fake/fail", {"method": "PATCH", "path_prefix": "/api/v1/nodes/node-a/status",
                                     "status": 403, "times": 1})
        d = self.env.daemon("-kubeconfig", self.kubeconfig, "-probe-port", "0",
                            env={"NODE_NAME": "node-a"}, ready=False)
        self.assertNotEqual(d.wait_exit(), 0)
        self.assertIn("advertising kata.peerpods.io/vm on node node-a", d.log())

    def test_without_node_name_k8s_is_off(self):
        d = self.env.daemon("-kubeconfig", self.kubeconfig)
        self.assertIn("Kubernetes integration off: NODE_NAME is not set", d.log())
        self.assertNotIn("probe listening", d.log())
        self.assertEqual(d.term(), 0)
        self.assertEqual(self.api.state()["requests"], [])


if __name__ == "__main__":
    pptest.main()
