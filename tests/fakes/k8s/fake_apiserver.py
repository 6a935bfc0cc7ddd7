#!/usr/bin/env python3
"""A strict fake Kubernetes API server for the daemon's Kubernetes client (stdlib only).

It serves exactly the calls cloud-api-adaptor makes (node patches, Pod / ServiceAccount /
Secret reads, Pod list, PeerPod create and finalizer release) and checks each one: the path,
the verb, the bearer token, the patch content type (application/json-patch+json or
application/merge-patch+json) and the body, field by field. Anything else is refused with an
error status and recorded in `unexpected`, which the tests assert is empty: a fake that
accepts anything tests nothing.

Plain HTTP on 127.0.0.1 (the client accepts an http:// server in a kubeconfig, for tests), or
HTTPS with --tls-cert/--tls-key (a TLS server; the tests check the client's CA verification).

Control (no token, test-only, under /_fake/):
  GET  /_fake/state            the objects, the request log and the unexpected requests
  POST /_fake/objects          {"pods": [...], "serviceaccounts": [...], "secrets": [...],
                                "nodes": [...]} added (or replaced) by namespace/name
  POST /_fake/fail             {"method": "PATCH", "path_prefix": "/api/v1/nodes", "status": 500,
                                "times": 1} the next matching requests fail with that status

Usage: fake_apiserver.py --token TOKEN [--port 0] [--tls-cert FILE --tls-key FILE]; prints "port=<n>" on stdout once listening.
"""
import argparse
import json
import re
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PEERPOD_API = "confidentialcontainers.org/v1alpha1"
RESOURCE_PATH = "/status/capacity/kata.peerpods.io~1vm"
OWNER_ANNOTATION = "kata.peerpods.io/caa-owner"
NAME_RE = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class Refused(Exception):
    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class State:
    def __init__(self, token):
        self.token = token
        self.lock = threading.Lock()
        self.nodes = {}          # name -> node
        self.pods = {}           # (ns, name) -> pod
        self.sas = {}            # (ns, name) -> serviceaccount
        self.secrets = {}        # (ns, name) -> secret
        self.peerpods = {}       # (ns, name) -> peerpod
        self.requests = []       # {"method", "path", "content_type", "body"}
        self.unexpected = []     # what was refused as not part of the protocol
        self.failures = []       # injected failures

    def dump(self):
        return {
            "nodes": self.nodes,
            "pods": {"%s/%s" % k: v for k, v in self.pods.items()},
            "peerpods": {"%s/%s" % k: v for k, v in self.peerpods.items()},
            "requests": self.requests,
            "unexpected": self.unexpected,
        }


def not_found(kind, name):
    return Refused(404, "NotFound", '%s "%s" not found' % (kind, name))


def bad(message):
    return Refused(400, "BadRequest", message)


def expect(cond, message):
    if not cond:
        raise bad(message)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):   # quiet: the tests read the state instead
        pass

    # ------------------------------------------------------------ plumbing
    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_status(self, r):
        self.send_json(r.status, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": r.message, "reason": r.reason,
                                  "code": r.status})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        expect(n <= 1024 * 1024, "body too large")
        return self.rfile.read(n) if n else b""

    def handle_any(self, method):
        st = self.state
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_fake/"):
            return self.control(method, url.path, body)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        entry = {"method": method, "path": self.path, "content_type": ctype,
                 "body": body.decode(errors="replace")}
        with st.lock:
            st.requests.append(entry)
        try:
            if self.headers.get("Authorization") != "Bearer " + st.token:
                raise Refused(401, "Unauthorized", "Unauthorized")
            with st.lock:
                for f in st.failures:
                    if f["times"] > 0 and f["method"] == method and self.path.startswith(f["path_prefix"]):
                        f["times"] -= 1
                        raise Refused(f["status"], "InjectedFailure", "injected failure")
            parsed = json.loads(body) if body else None
            status, obj = self.route(method, url, ctype, parsed)
            self.send_json(status, obj)
        except Refused as r:
            if r.reason not in ("NotFound", "AlreadyExists", "InjectedFailure", "Unauthorized"):
                with st.lock:
                    st.unexpected.append(dict(entry, why=r.message))
            self.send_status(r)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            with st.lock:
                st.unexpected.append(dict(entry, why="malformed: %r" % e))
            self.send_status(bad("malformed request: %r" % e))

    do_GET = lambda self: self.handle_any("GET")
    do_POST = lambda self: self.handle_any("POST")
    do_PATCH = lambda self: self.handle_any("PATCH")
    do_PUT = lambda self: self.handle_any("PUT")
    do_DELETE = lambda self: self.handle_any("DELETE")

    # ------------------------------------------------------------ control
    def control(self, method, path, body):
        st = self.state
        with st.lock:
            if method == "GET" and path == "/_fake/state":
                return self.send_json(200, st.dump())
            if method == "POST" and path == "/_fake/objects":
                objs = json.loads(body)
                for n in objs.get("nodes", []):
                    st.nodes[n["metadata"]["name"]] = n
                for kind, table in (("pods", st.pods), ("serviceaccounts", st.sas),
                                    ("secrets", st.secrets)):
                    for o in objs.get(kind, []):
                        table[(o["metadata"]["namespace"], o["metadata"]["name"])] = o
                return self.send_json(200, {})
            if method == "POST" and path == "/_fake/fail":
                st.failures.append(json.loads(body))
                return self.send_json(200, {})
        self.send_json(404, {})

    # ------------------------------------------------------------ API
    def route(self, method, url, ctype, body):
        p = url.path
        q = urllib.parse.parse_qs(url.query, strict_parsing=False)
        m = re.fullmatch(r"/api/v1/nodes/(%s)(/status)?" % NAME_RE, p)
        if m:
            return self.node(method, m.group(1), m.group(2) is not None, ctype, body, url.query)
        m = re.fullmatch(r"/api/v1/namespaces/(%s)/(pods|serviceaccounts|secrets)/(%s)" % (NAME_RE, NAME_RE), p)
        if m:
            ns, kind, name = m.group(1), m.group(2), m.group(3)
            expect(method == "GET" and not url.query and body is None, "only GET of a %s" % kind)
            table = {"pods": self.state.pods, "serviceaccounts": self.state.sas,
                     "secrets": self.state.secrets}[kind]
            with self.state.lock:
                if (ns, name) not in table:
                    raise not_found(kind, name)
                return 200, table[(ns, name)]
        if p == "/api/v1/pods":
            expect(method == "GET" and body is None, "only GET of the pod list")
            sel = q.get("fieldSelector", [""])[0]
            m = re.fullmatch(r"spec\.nodeName=(%s)" % NAME_RE, sel)
            expect(m is not None and set(q) == {"fieldSelector"},
                   "pod list must be filtered by spec.nodeName only")
            with self.state.lock:
                items = [v for v in self.state.pods.values()
                         if v.get("spec", {}).get("nodeName") == m.group(1)]
            return 200, {"kind": "PodList", "apiVersion": "v1", "items": items}
        m = re.fullmatch(r"/apis/%s/namespaces/(%s)/peerpods(/(%s))?" % (re.escape(PEERPOD_API), NAME_RE, NAME_RE), p)
        if m:
            return self.peerpod(method, m.group(1), m.group(3), ctype, body, url.query)
        raise bad("unexpected path %s" % p)

    def node(self, method, name, status, ctype, body, query):
        st = self.state
        expect(not query, "no query expected")
        with st.lock:
            node = st.nodes.get(name)
            if node is None:
                raise not_found("nodes", name)
            if method == "GET" and not status:
                expect(body is None, "GET with a body")
                return 200, node
            expect(method == "PATCH", "%s on a node" % method)
            if not status:
                expect(ctype == MERGE_PATCH, "node patch must be %s, not %s" % (MERGE_PATCH, ctype))
                expect(set(body) == {"metadata"} and set(body["metadata"]) == {"annotations"},
                       "node merge patch may only set metadata.annotations")
                ann = body["metadata"]["annotations"]
                expect(set(ann) == {OWNER_ANNOTATION} and isinstance(ann[OWNER_ANNOTATION], str)
                       and ann[OWNER_ANNOTATION], "only %s may be set" % OWNER_ANNOTATION)
                node.setdefault("metadata", {}).setdefault("annotations", {}).update(ann)
                return 200, node
            expect(ctype == JSON_PATCH, "status patch must be %s, not %s" % (JSON_PATCH, ctype))
            expect(isinstance(body, list) and len(body) == 1, "one JSON patch operation expected")
            op = body[0]
            expect(op.get("path") == RESOURCE_PATH, "patch path must be %s" % RESOURCE_PATH)
            cap = node.setdefault("status", {}).setdefault("capacity", {})
            if op.get("op") == "add":
                expect(set(op) == {"op", "path", "value"} and isinstance(op["value"], str)
                       and re.fullmatch(r"[0-9]+", op["value"]), "add needs a quantity string")
                cap["kata.peerpods.io/vm"] = op["value"]
            elif op.get("op") == "remove":
                expect(set(op) == {"op", "path"}, "remove takes no value")
                if "kata.peerpods.io/vm" not in cap:
                    raise Refused(422, "Invalid", "remove of a missing capacity")
                del cap["kata.peerpods.io/vm"]
            else:
                raise bad("unexpected patch op %r" % op.get("op"))
            return 200, node

    def peerpod(self, method, ns, name, ctype, body, query):
        st = self.state
        expect(not query, "no query expected")
        if name is None:
            expect(method == "POST", "%s on the PeerPod collection" % method)
            expect(ctype == "application/json", "PeerPod create must be application/json")
            self.check_peerpod(ns, body)
            key = (ns, body["metadata"]["name"])
            with st.lock:
                if key in st.peerpods:
                    raise Refused(409, "AlreadyExists", 'peerpods "%s" already exists' % key[1])
                st.peerpods[key] = body
            return 201, body
        expect(method == "PATCH", "%s on a PeerPod" % method)
        expect(ctype == JSON_PATCH, "PeerPod patch must be %s, not %s" % (JSON_PATCH, ctype))
        expect(body == [{"op": "remove", "path": "/metadata/finalizers"}],
               "PeerPod patch must only remove /metadata/finalizers")
        with st.lock:
            pp = st.peerpods.get((ns, name))
            if pp is None:
                raise not_found("peerpods", name)
            if "finalizers" not in pp["metadata"]:
                raise Refused(422, "Invalid", "no finalizers to remove")
            del pp["metadata"]["finalizers"]
            return 200, pp

    def check_peerpod(self, ns, body):
        expect(set(body) == {"apiVersion", "kind", "metadata", "spec"}, "PeerPod top-level fields")
        expect(body["apiVersion"] == PEERPOD_API and body["kind"] == "PeerPod", "PeerPod type")
        md = body["metadata"]
        expect(set(md) == {"name", "namespace", "finalizers", "ownerReferences"}, "PeerPod metadata fields")
        expect(md["namespace"] == ns and re.fullmatch(NAME_RE, md["name"]), "PeerPod name/namespace")
        expect(md["finalizers"] == ["peer.pod/finalizer"], "PeerPod finalizer")
        refs = md["ownerReferences"]
        expect(isinstance(refs, list) and len(refs) == 1, "one owner reference")
        ref = refs[0]
        with self.state.lock:
            pod = self.state.pods.get((ns, ref.get("name")))
        expect(pod is not None, "owner pod %s/%s does not exist" % (ns, ref.get("name")))
        expect(ref == {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                       "uid": pod["metadata"]["uid"], "controller": True,
                       "blockOwnerDeletion": True}, "owner reference %r" % ref)
        spec = body["spec"]
        expect(set(spec) == {"cloudProvider", "instanceID"} and spec["cloudProvider"]
               and spec["instanceID"], "PeerPod spec %r" % spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    Handler.state = State(args.token)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens in the handler thread (on first read), so a client that
        # refuses the certificate does not stall the accept loop.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print("port=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
