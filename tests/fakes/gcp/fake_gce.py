#!/usr/bin/env python3
"""A strict fake of the Google APIs the `gcp` provider calls (Python 3 stdlib only).

    OAuth2 token endpoint   POST /token                   (RS256 JWT bearer grant)
    metadata server         GET  /computeMetadata/v1/instance/service-accounts/default/token
    Compute Engine v1       /compute/v1/projects/P/...    machineTypes.get, images.get,
                            instances.insert/get/delete/list, zoneOperations.get/wait
    Resource Manager v3     GET  /v3/tagValues/namespaced

The one idea: it checks what it receives and refuses anything unexpected, so that it tests the
client rather than mirroring it. The JWT's RS256 signature is verified with the test's public
key (RSA arithmetic done here, no third-party module), every call needs a bearer token this fake
issued and that has not expired, every body field is checked for name and JSON type (int64 as a
string, as the REST API has it), mutations need a requestId, operations go PENDING -> RUNNING ->
DONE over several polls. A refused request answers 400 (Google's error shape) and is recorded
as a violation; tests assert that there were none.

Control (no auth, for tests): GET /_fake/state, POST /_fake/config (JSON merged into the
settings), POST /_fake/inject (a failure rule: method, path regex, status, retry_after, count,
delay_ms, reset), POST /_fake/expire-tokens, POST /_fake/delete/<name> (an instance vanishes).

Usage: fake_gce.py --project P --zone Z --pubkey PUB.pem --client-email E [--kid K]
                   [--host 127.0.0.1] [--port 0] [--port-file F] [--metadata]
"""
import argparse
import base64
import binascii
import hashlib
import json
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
FILTER = re.compile(r'^labels\.peerpod-owner = "([a-z0-9_-]{1,63})"$')
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")
MAX_BODY = 1024 * 1024
MAX_USER_DATA_B64 = 256 * 1024

MACHINE_TYPES = {
    "e2-medium": (2, 4096, 0),
    "n2d-standard-2": (2, 8192, 0),
    "n2d-standard-4": (4, 16384, 0),
    "n2d-highmem-2": (2, 16384, 0),
    "c3-standard-4": (4, 16384, 0),
    "a2-highgpu-1g": (12, 87040, 1),
}
DISK_TYPES = ("pd-standard", "pd-balanced", "pd-ssd")


class Reject(Exception):
    def __init__(self, status, reason, message, violation=True):
        super().__init__(message)
        self.status, self.reason, self.message, self.violation = status, reason, message, violation


def bad(message, reason="invalid"):
    return Reject(400, reason, "fake gce: " + message)


# ---------------------------------------------------------------- RSA (RS256 verification)

def der_item(buf, pos):
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, buf[pos:pos + n], pos + n


def rsa_public_key(pem_text):
    """(n, e) from a PEM SubjectPublicKeyInfo of an RSA key."""
    body = "".join(l for l in pem_text.splitlines() if l and not l.startswith("-----"))
    der = base64.b64decode(body)
    _, spki, _ = der_item(der, 0)                    # SEQUENCE
    _, _alg, pos = der_item(spki, 0)                 # AlgorithmIdentifier
    tag, bits, _ = der_item(spki, pos)               # BIT STRING
    assert tag == 0x03 and bits[0] == 0
    _, rsakey, _ = der_item(bits[1:], 0)             # RSAPublicKey SEQUENCE
    _, n, pos = der_item(rsakey, 0)
    _, e, _ = der_item(rsakey, pos)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


def rs256_verify(key, message, sig):
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    m = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = SHA256_DIGESTINFO + hashlib.sha256(message).digest()
    return m == b"\x00\x01" + b"\xff" * (k - 3 - len(t)) + b"\x00" + t


def b64url(s, what):
    if not B64URL.match(s):
        raise bad("%s is not unpadded base64url" % what, "invalid_request")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        raise bad("%s is not base64url" % what, "invalid_request")


# ---------------------------------------------------------------- strict JSON checks

def want(obj, key, typ, where):
    if key not in obj:
        raise bad("%s: missing field %s" % (where, key))
    v = obj[key]
    # bool is an int in Python: never accept one for the other
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise bad("%s.%s must be a JSON integer" % (where, key))
    if typ is not int and not isinstance(v, typ):
        raise bad("%s.%s must be a JSON %s, got %s" % (where, key, typ.__name__, type(v).__name__))
    return v


def only_keys(obj, allowed, where, required=()):
    if not isinstance(obj, dict):
        raise bad("%s must be an object" % where)
    extra = set(obj) - set(allowed)
    if extra:
        raise bad("%s: unexpected field(s) %s" % (where, ", ".join(sorted(extra))))
    missing = set(required) - set(obj)
    if missing:
        raise bad("%s: missing field(s) %s" % (where, ", ".join(sorted(missing))))


def int64_string(v, where):
    if not isinstance(v, str) or not re.match(r"^[0-9]{1,18}$", v):
        raise bad("%s must be an int64 as a JSON string (the REST API's encoding)" % where)
    return int(v)


# ---------------------------------------------------------------- the fake

class Fake:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.project, self.zone = args.project, args.zone
        self.region = self.zone.rsplit("-", 1)[0]
        self.email, self.kid = args.client_email, args.kid
        self.key = rsa_public_key(open(args.pubkey).read()) if args.pubkey else None
        self.metadata = args.metadata
        self.token_uri = ""              # set once the port is known
        self.settings = {
            "token_expires_in": 3600,
            "op_polls": 2,               # wait/get answers before an operation is DONE
            "wait_hold_ms": 0,           # operations.wait holds this long when not DONE
            "insert_error": None,        # {"code", "message", "http"}: the next insert op fails
            "page_size": 500,
            "ip_prefix": "10.0.0.",
            "nat_prefix": "192.168.0.",
            "nat_delay_polls": 0,        # instances.get answers without natIP this many times
            "wait_hold_kind": None,      # hold only operations of this type ("insert")
            "keep_failed": False,        # a failed insert operation leaves its instance
        }
        self.images = {
            "projects/%s/global/images/podvm" % self.project: {"diskSizeGb": "12", "status": "READY"},
            "projects/%s/global/images/big" % self.project: {"diskSizeGb": "40", "status": "READY"},
            "projects/%s/global/images/family/podvm-fam" % self.project: {"diskSizeGb": "20", "status": "READY"},
            "projects/other-proj/global/images/shared": {"diskSizeGb": "8", "status": "READY"},
            "projects/%s/global/images/pending" % self.project: {"diskSizeGb": "10", "status": "PENDING"},
        }
        self.networks = {"default", "pp-net"}
        self.subnets = {"pp-subnet"}
        self.tags = {"%s/env/test" % self.project: ("tagKeys/101", "tagValues/201"),
                     "%s/team/pp" % self.project: ("tagKeys/102", "tagValues/202"),
                     "4242/org-key/v1": ("tagKeys/103", "tagValues/203")}
        self.tokens = {}                 # token -> expiry (time.time())
        self.instances = {}              # name -> instance JSON (+ private "_" fields)
        self.ops = {}                    # op name -> {"op": json, "left": n, "done": fn}
        self.request_ids = {}            # requestId -> op name
        self.rules = []
        self.log = []
        self.violations = []
        self.inserts = []
        self.counts = {"token": 0, "metadata_token": 0, "wait": 0, "op_get": 0}
        self.next_ip = 2
        self.next_op = 1
        self.next_id = 1000

    # -------------------------------------------------------- responses
    def error_body(self, status, reason, message):
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE"}
        return {"error": {"code": status, "message": message,
                          "errors": [{"message": message, "domain": "global", "reason": reason}],
                          "status": names.get(status, "UNKNOWN")}}

    # -------------------------------------------------------- auth
    def issue_token(self):
        tok = "ya29.fake-" + hashlib.sha256(str((time.time(), self.next_id)).encode()).hexdigest()[:40]
        self.next_id += 1
        self.tokens[tok] = time.time() + self.settings["token_expires_in"]
        return {"access_token": tok, "expires_in": self.settings["token_expires_in"],
                "token_type": "Bearer"}

    def check_bearer(self, headers):
        h = headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            raise Reject(401, "required", "fake gce: no bearer token")
        exp = self.tokens.get(h[7:])
        if exp is None:
            raise Reject(401, "authError", "fake gce: unknown bearer token")
        if exp <= time.time():
            raise Reject(401, "authError", "fake gce: expired bearer token", violation=False)

    def token(self, headers, body):
        self.counts["token"] += 1
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            raise bad("token request Content-Type must be application/x-www-form-urlencoded", "invalid_request")
        try:
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise bad("token request body is not a form", "invalid_request")
        if sorted(form) != ["assertion", "grant_type"] or any(len(v) != 1 for v in form.values()):
            raise bad("token form must hold exactly grant_type and assertion", "invalid_request")
        if form["grant_type"][0] != GRANT:
            raise bad("grant_type must be " + GRANT, "unsupported_grant_type")
        self.check_jwt(form["assertion"][0])
        return 200, self.issue_token()

    def check_jwt(self, jwt):
        parts = jwt.split(".")
        if len(parts) != 3:
            raise bad("assertion is not header.claims.signature", "invalid_grant")
        try:
            hdr = json.loads(b64url(parts[0], "JWT header"))
            claims = json.loads(b64url(parts[1], "JWT claims"))
        except ValueError:
            raise bad("JWT header or claims are not JSON", "invalid_grant")
        want_hdr = {"alg": "RS256", "typ": "JWT"}
        if self.kid:
            want_hdr["kid"] = self.kid
        if hdr != want_hdr:
            raise bad("JWT header %r, expected %r" % (hdr, want_hdr), "invalid_grant")
        only_keys(claims, ("iss", "scope", "aud", "iat", "exp"), "JWT claims",
                  required=("iss", "scope", "aud", "iat", "exp"))
        if want(claims, "iss", str, "claims") != self.email:
            raise bad("JWT iss is not the service account", "invalid_grant")
        if want(claims, "aud", str, "claims") != self.token_uri:
            raise bad("JWT aud %r is not the token_uri %r" % (claims["aud"], self.token_uri), "invalid_grant")
        if want(claims, "scope", str, "claims") != SCOPE:
            raise bad("JWT scope %r" % claims["scope"], "invalid_scope")
        iat, exp = want(claims, "iat", int, "claims"), want(claims, "exp", int, "claims")
        if abs(iat - time.time()) > 300 or not 0 < exp - iat <= 3600:
            raise bad("JWT iat/exp out of range", "invalid_grant")
        sig = b64url(parts[2], "JWT signature")
        if not self.key or not rs256_verify(self.key, (parts[0] + "." + parts[1]).encode(), sig):
            raise bad("Invalid JWT Signature.", "invalid_grant")

    def metadata_token(self, headers):
        if not self.metadata:
            raise Reject(404, "notFound", "fake gce: metadata server disabled", violation=False)
        self.counts["metadata_token"] += 1
        if headers.get("Metadata-Flavor") != "Google":
            raise Reject(403, "forbidden", "fake gce: missing Metadata-Flavor: Google")
        return 200, self.issue_token()

    # -------------------------------------------------------- operations
    def new_op(self, kind, target, done, error=None):
        name = "operation-%d-%06d" % (int(time.time()), self.next_op)
        self.next_op += 1
        op = {"kind": "compute#operation", "id": str(9000 + self.next_op), "name": name,
              "zone": "projects/%s/zones/%s" % (self.project, self.zone), "operationType": kind,
              "targetLink": "projects/%s/zones/%s/instances/%s" % (self.project, self.zone, target),
              "status": "PENDING", "progress": 0}
        rec = {"op": op, "left": self.settings["op_polls"], "done": done, "error": error}
        self.ops[name] = rec
        if rec["left"] <= 0:
            self.finish(rec)
        return op

    def finish(self, rec):
        op = rec["op"]
        op["status"], op["progress"] = "DONE", 100
        if rec["error"]:
            e = rec["error"]
            op["error"] = {"errors": [{"code": e["code"], "message": e["message"]}]}
            op["httpErrorStatusCode"] = e.get("http", 400)
            op["httpErrorMessage"] = "BAD REQUEST"
        rec["done"](rec["error"] is None)

    def advance(self, name):
        rec = self.ops.get(name)
        if not rec:
            raise Reject(404, "notFound", "fake gce: operation %s not found" % name, violation=False)
        if rec["op"]["status"] != "DONE":
            rec["left"] -= 1
            rec["op"]["status"] = "RUNNING"
            if rec["left"] <= 0:
                self.finish(rec)
        return rec["op"]

    # -------------------------------------------------------- compute
    def compute(self, method, path, query, headers, body):
        self.check_bearer(headers)
        m = re.match(r"^projects/([^/]+)/(.*)$", path)
        if not m:
            raise bad("unexpected compute path %s" % path)
        proj, rest = m.groups()
        if re.match(r"^global/images/", rest) and method == "GET":
            self.no_query(query)
            img = self.images.get("projects/%s/%s" % (proj, rest))
            if img is None:
                raise Reject(404, "notFound", "The resource 'projects/%s/%s' was not found" % (proj, rest),
                             violation=False)
            return 200, dict(img, name=rest.rsplit("/", 1)[1], kind="compute#image")
        if proj != self.project:
            raise bad("project %s, expected %s" % (proj, self.project))
        zm = re.match(r"^zones/([^/]+)/(.*)$", rest)
        if not zm or zm.group(1) != self.zone:
            raise bad("unexpected zone path %s" % rest)
        rest = zm.group(2)
        if method == "GET" and rest.startswith("machineTypes/"):
            self.no_query(query)
            t = MACHINE_TYPES.get(rest[len("machineTypes/"):])
            if not t:
                raise Reject(404, "notFound", "The resource '%s' was not found" % rest, violation=False)
            mt = {"kind": "compute#machineType", "name": rest[13:], "guestCpus": t[0], "memoryMb": t[1]}
            if t[2]:
                mt["accelerators"] = [{"guestAcceleratorType": "nvidia-tesla-a100",
                                       "guestAcceleratorCount": t[2]}]
            return 200, mt
        if rest == "instances" and method == "POST":
            return self.insert(query, headers, body)
        if rest == "instances" and method == "GET":
            return self.list(query)
        im = re.match(r"^instances/([^/]+)$", rest)
        if im and method == "GET":
            self.no_query(query)
            return self.get_instance(im.group(1))
        if im and method == "DELETE":
            return self.delete(im.group(1), query, body)
        om = re.match(r"^operations/([^/]+)(/wait)?$", rest)
        if om and (method == "GET" and not om.group(2) or method == "POST" and om.group(2)):
            self.no_query(query)
            if body:
                raise bad("operations.%s takes no body" % ("wait" if om.group(2) else "get"))
            return self.op_call(om.group(1), bool(om.group(2)))
        raise bad("unexpected %s %s" % (method, path))

    def no_query(self, query):
        if query:
            raise bad("unexpected query parameters %s" % sorted(query))

    def request_id(self, query, allowed=("requestId",)):
        if set(query) - set(allowed) or "requestId" not in query or len(query["requestId"]) != 1:
            raise bad("a mutation takes exactly one requestId query parameter")
        rid = query["requestId"][0]
        if not UUID4.match(rid):
            raise bad("requestId %r is not a UUID" % rid)
        return rid

    def op_call(self, name, wait):
        self.counts["wait" if wait else "op_get"] += 1
        rec = self.ops.get(name)
        kind = self.settings.get("wait_hold_kind")
        if wait and rec and rec["op"]["status"] != "DONE" and rec["left"] > 1 and \
                (not kind or rec["op"]["operationType"] == kind):
            hold = self.settings["wait_hold_ms"] / 1000.0
            if hold:
                self.lock.release()
                try:
                    time.sleep(hold)
                finally:
                    self.lock.acquire()
        return 200, dict(self.advance(name))

    def insert(self, query, headers, body):
        rid = self.request_id(query)
        if rid in self.request_ids:           # a retried POST: the same operation again
            return 200, dict(self.ops[self.request_ids[rid]]["op"])
        if headers.get("Content-Type") != "application/json":
            raise bad("instances.insert Content-Type must be application/json")
        try:
            inst = json.loads(body)
        except ValueError:
            raise bad("instances.insert body is not JSON")
        ud = self.check_insert(inst)
        name = inst["name"]
        if name in self.instances:
            raise Reject(409, "alreadyExists", "The resource 'projects/%s/zones/%s/instances/%s' already exists"
                         % (self.project, self.zone, name), violation=False)
        self.inserts.append(inst)
        err, self.settings["insert_error"] = self.settings["insert_error"], None
        stored = self.make_instance(inst, ud)
        self.instances[name] = stored

        def done(ok, name=name):
            if name in self.instances:
                if ok:
                    self.instances[name]["status"] = "RUNNING"
                elif not self.settings["keep_failed"]:
                    del self.instances[name]
        op = self.new_op("insert", name, done, err)
        self.request_ids[rid] = op["name"]
        return 200, dict(op)

    def make_instance(self, inst, ud):
        nics = []
        for nic in inst["networkInterfaces"]:
            n = {"name": "nic0", "network": nic["network"], "networkIP": self.settings["ip_prefix"] + str(self.next_ip),
                 "stackType": nic["stackType"]}
            if "subnetwork" in nic:
                n["subnetwork"] = nic["subnetwork"]
            if "accessConfigs" in nic:
                n["accessConfigs"] = [dict(nic["accessConfigs"][0],
                                           natIP=self.settings["nat_prefix"] + str(self.next_ip))]
            nics.append(n)
        self.next_ip += 1
        self.next_id += 1
        out = {k: v for k, v in inst.items() if k != "metadata"}
        out.update({"kind": "compute#instance", "id": str(7000000 + self.next_id), "status": "PROVISIONING",
                    "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime()),
                    "networkInterfaces": nics, "metadata": inst["metadata"], "_user_data": ud,
                    "_nat_hidden": self.settings["nat_delay_polls"]})
        return out

    def public(self, inst):
        out = {k: v for k, v in inst.items() if not k.startswith("_")}
        if inst.get("_nat_hidden", 0) > 0:
            inst["_nat_hidden"] -= 1
            out["networkInterfaces"] = [{k: v for k, v in n.items() if k != "accessConfigs"}
                                        for n in out["networkInterfaces"]]
        return out

    def get_instance(self, name):
        inst = self.instances.get(name)
        if not inst:
            raise Reject(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found"
                         % (self.project, self.zone, name), violation=False)
        return 200, self.public(inst)

    def delete(self, name, query, body):
        rid = self.request_id(query)
        if body:
            raise bad("instances.delete takes no body")
        if rid in self.request_ids:
            return 200, dict(self.ops[self.request_ids[rid]]["op"])
        if name not in self.instances:
            raise Reject(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found"
                         % (self.project, self.zone, name), violation=False)
        self.instances[name]["status"] = "STOPPING"

        def done(ok, name=name):
            self.instances.pop(name, None)
        op = self.new_op("delete", name, done)
        self.request_ids[rid] = op["name"]
        return 200, dict(op)

    def list(self, query):
        if set(query) - {"filter", "maxResults", "pageToken"} or "filter" not in query:
            raise bad("instances.list takes filter, maxResults and pageToken only (filter required)")
        m = FILTER.match(query["filter"][0])
        if not m:
            raise bad("instances.list filter %r is not labels.peerpod-owner = \"...\"" % query["filter"][0])
        mr = query.get("maxResults", ["500"])[0]
        if not re.match(r"^[0-9]+$", mr) or not 1 <= int(mr) <= 500:
            raise bad("maxResults %r is not in 1..500" % mr)
        size = min(int(mr), self.settings["page_size"])
        start = 0
        if "pageToken" in query:
            t = query["pageToken"][0]
            if not re.match(r"^page-[0-9]+$", t):
                raise bad("pageToken %r was not issued by this fake" % t)
            start = int(t[5:])
        items = [self.public(i) for n, i in sorted(self.instances.items())
                 if i["labels"].get("peerpod-owner") == m.group(1)]
        out = {"kind": "compute#instanceList", "items": items[start:start + size]}
        if start + size < len(items):
            out["nextPageToken"] = "page-%d" % (start + size)
        return 200, out

    # -------------------------------------------------------- the insert body, field by field
    def check_insert(self, inst):
        only_keys(inst, ("name", "description", "machineType", "disks", "networkInterfaces", "metadata",
                         "labels", "confidentialInstanceConfig", "minCpuPlatform", "scheduling", "params"),
                  "Instance", required=("name", "description", "machineType", "disks", "networkInterfaces",
                                        "metadata", "labels"))
        if not NAME.match(want(inst, "name", str, "Instance")):
            raise bad("Instance.name %r is not a GCE name" % inst["name"])
        if not want(inst, "description", str, "Instance").startswith("peer-pod VM of sandbox "):
            raise bad("Instance.description %r" % inst["description"])
        mt = want(inst, "machineType", str, "Instance")
        m = re.match(r"^zones/%s/machineTypes/([a-z0-9-]+)$" % re.escape(self.zone), mt)
        if not m or m.group(1) not in MACHINE_TYPES:
            raise bad("Instance.machineType %r is not zones/%s/machineTypes/<known type>" % (mt, self.zone))
        mtype = m.group(1)
        self.check_disks(want(inst, "disks", list, "Instance"))
        self.check_nics(want(inst, "networkInterfaces", list, "Instance"))
        ud = self.check_metadata(want(inst, "metadata", dict, "Instance"))
        self.check_labels(want(inst, "labels", dict, "Instance"))
        cvm = None
        if "confidentialInstanceConfig" in inst:
            cvm = self.check_cvm(inst, mtype)
        if "minCpuPlatform" in inst:
            want(inst, "minCpuPlatform", str, "Instance")
        needs_terminate = cvm is not None or MACHINE_TYPES[mtype][2] > 0
        if "scheduling" in inst:
            only_keys(inst["scheduling"], ("onHostMaintenance",), "Instance.scheduling",
                      required=("onHostMaintenance",))
            if want(inst["scheduling"], "onHostMaintenance", str, "scheduling") != "TERMINATE":
                raise bad("scheduling.onHostMaintenance must be TERMINATE")
        elif needs_terminate:
            raise bad("confidential or GPU VMs need scheduling.onHostMaintenance TERMINATE")
        if "params" in inst:
            self.check_params(inst["params"])
        return ud

    def check_disks(self, disks):
        if len(disks) != 1:
            raise bad("Instance.disks must hold exactly the boot disk")
        d = disks[0]
        only_keys(d, ("boot", "autoDelete", "type", "initializeParams"), "disks[0]",
                  required=("boot", "autoDelete", "type", "initializeParams"))
        if want(d, "boot", bool, "disks[0]") is not True or want(d, "autoDelete", bool, "disks[0]") is not True:
            raise bad("disks[0].boot and autoDelete must be true")
        if want(d, "type", str, "disks[0]") != "PERSISTENT":
            raise bad("disks[0].type must be PERSISTENT")
        ip = want(d, "initializeParams", dict, "disks[0]")
        only_keys(ip, ("diskSizeGb", "sourceImage", "diskType"), "disks[0].initializeParams",
                  required=("diskSizeGb", "sourceImage", "diskType"))
        size = int64_string(ip["diskSizeGb"], "initializeParams.diskSizeGb")
        img = self.images.get(want(ip, "sourceImage", str, "initializeParams"))
        if img is None:
            raise bad("initializeParams.sourceImage %r is not a known image path" % ip["sourceImage"])
        if size < int(img["diskSizeGb"]):
            raise bad("diskSizeGb %d is smaller than the image (%s)" % (size, img["diskSizeGb"]))
        dt = want(ip, "diskType", str, "initializeParams")
        if dt not in ["zones/%s/diskTypes/%s" % (self.zone, t) for t in DISK_TYPES]:
            raise bad("initializeParams.diskType %r" % dt)

    def check_nics(self, nics):
        if len(nics) != 1:
            raise bad("Instance.networkInterfaces must hold one interface")
        n = nics[0]
        only_keys(n, ("network", "subnetwork", "stackType", "accessConfigs"), "networkInterfaces[0]",
                  required=("network", "stackType"))
        net = want(n, "network", str, "networkInterfaces[0]")
        if net not in ["projects/%s/global/networks/%s" % (self.project, x) for x in self.networks]:
            raise bad("networkInterfaces[0].network %r is not a known network path" % net)
        if "subnetwork" in n:
            sub = want(n, "subnetwork", str, "networkInterfaces[0]")
            if sub not in ["projects/%s/regions/%s/subnetworks/%s" % (self.project, self.region, x)
                           for x in self.subnets]:
                raise bad("networkInterfaces[0].subnetwork %r is not a known subnetwork path" % sub)
        if want(n, "stackType", str, "networkInterfaces[0]") != "IPV4_ONLY":
            raise bad("networkInterfaces[0].stackType %r is not IPV4_ONLY" % n["stackType"])
        if "accessConfigs" in n:
            acs = want(n, "accessConfigs", list, "networkInterfaces[0]")
            if len(acs) != 1:
                raise bad("accessConfigs must hold one entry")
            only_keys(acs[0], ("name", "type", "networkTier"), "accessConfigs[0]",
                      required=("name", "type", "networkTier"))
            if acs[0]["type"] != "ONE_TO_ONE_NAT" or acs[0]["networkTier"] not in ("STANDARD", "PREMIUM") \
                    or not isinstance(acs[0]["name"], str):
                raise bad("accessConfigs[0] %r" % acs[0])

    def check_metadata(self, md):
        only_keys(md, ("items",), "Instance.metadata", required=("items",))
        items = want(md, "items", list, "metadata")
        seen = {}
        for i, it in enumerate(items):
            only_keys(it, ("key", "value"), "metadata.items[%d]" % i, required=("key", "value"))
            seen[want(it, "key", str, "item")] = want(it, "value", str, "item")
        if sorted(seen) != ["user-data", "user-data-encoding"] or len(items) != 2:
            raise bad("metadata.items must be user-data and user-data-encoding, got %s" % sorted(seen))
        if seen["user-data-encoding"] != "base64":
            raise bad("user-data-encoding must be base64")
        v = seen["user-data"]
        if len(v) > MAX_USER_DATA_B64:
            raise bad("metadata value user-data is %d bytes, over 256 KiB" % len(v))
        try:
            return base64.b64decode(v, validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise bad("user-data is not standard padded base64 of UTF-8 text")

    def check_labels(self, labels):
        if not 1 <= len(labels) <= 64:
            raise bad("labels: 1..64 entries")
        for k, v in labels.items():
            if not LABEL_KEY.match(k) or not isinstance(v, str) or not LABEL_VALUE.match(v):
                raise bad("label %r=%r is not a valid GCE label" % (k, v))
        if not labels.get("peerpod-owner"):
            raise bad("labels must carry peerpod-owner")

    def check_cvm(self, inst, mtype):
        c = inst["confidentialInstanceConfig"]
        only_keys(c, ("confidentialInstanceType", "enableConfidentialCompute"), "confidentialInstanceConfig",
                  required=("confidentialInstanceType",))
        t = want(c, "confidentialInstanceType", str, "confidentialInstanceConfig")
        if t not in ("SEV", "SEV_SNP", "TDX"):
            raise bad("confidentialInstanceType %r" % t)
        if "enableConfidentialCompute" in c:
            if want(c, "enableConfidentialCompute", bool, "confidentialInstanceConfig") is not True or t != "SEV":
                raise bad("enableConfidentialCompute goes with SEV only, as true")
        if t in ("SEV", "SEV_SNP") and not mtype.startswith("n2d-"):
            raise bad("%s needs an N2D machine type, not %s" % (t, mtype))
        if t == "TDX" and not mtype.startswith("c3-"):
            raise bad("TDX needs a C3 machine type, not %s" % mtype)
        if t == "SEV_SNP" and inst.get("minCpuPlatform") != "AMD Milan":
            raise bad("SEV_SNP needs minCpuPlatform AMD Milan")
        return t

    def check_params(self, params):
        only_keys(params, ("resourceManagerTags",), "Instance.params", required=("resourceManagerTags",))
        tags = want(params, "resourceManagerTags", dict, "params")
        known = dict(self.tags.values())
        for k, v in tags.items():
            if known.get(k) != v:
                raise bad("resourceManagerTags %r=%r is not a known tag key/value pair" % (k, v))

    # -------------------------------------------------------- resource manager
    def tag_value(self, query, headers):
        self.check_bearer(headers)
        if sorted(query) != ["name"] or len(query["name"]) != 1:
            raise bad("tagValues.getNamespaced takes exactly name=")
        ns = query["name"][0]
        if ns not in self.tags:
            raise Reject(403, "forbidden", "Permission denied on resource '%s' (or it may not exist)" % ns,
                         violation=False)
        k, v = self.tags[ns]
        return 200, {"name": v, "parent": k, "shortName": ns.rsplit("/", 1)[1], "namespacedName": ns}

    # -------------------------------------------------------- control
    def control(self, method, path, body):
        if path == "state" and method == "GET":
            return 200, {"instances": {n: dict(self.public(i), user_data=i["_user_data"])
                                       for n, i in self.instances.items()},
                         "violations": self.violations, "counts": self.counts, "inserts": self.inserts,
                         "log": self.log[-200:], "tokens": len(self.tokens), "ops": len(self.ops)}
        if path == "config" and method == "POST":
            self.settings.update(json.loads(body))
            return 200, {"settings": self.settings}
        if path == "inject" and method == "POST":
            rule = json.loads(body)
            rule.setdefault("count", 1)
            self.rules.append(rule)
            return 200, {"rules": len(self.rules)}
        if path == "expire-tokens" and method == "POST":
            for t in self.tokens:
                self.tokens[t] = 0
            return 200, {}
        if path.startswith("delete/") and method == "POST":
            self.instances.pop(path[7:], None)
            return 200, {}
        raise bad("unknown control %s %s" % (method, path))

    def match_rule(self, method, path):
        for r in self.rules:
            if r["count"] > 0 and r.get("method", method) == method and re.search(r["path"], path):
                r["count"] -= 1
                return dict(r)
        return None

    # -------------------------------------------------------- dispatch
    def handle(self, method, rawpath, headers, body):
        status, obj, rule = self.handle_one(method, rawpath, headers, body)
        if rule and rule.get("after") and 200 <= status < 300:
            return rule["status"], self.error_body(rule["status"], "backendError", "injected after processing"), rule
        return status, obj, rule

    def handle_one(self, method, rawpath, headers, body):
        u = urllib.parse.urlsplit(rawpath)
        path = u.path
        try:
            query = urllib.parse.parse_qs(u.query, keep_blank_values=True, strict_parsing=bool(u.query))
        except ValueError:
            return 400, self.error_body(400, "invalid", "fake gce: bad query string"), None
        if path.startswith("/_fake/"):
            return (*self.control(method, path[7:], body), None)
        self.log.append({"method": method, "path": path, "query": sorted(query)})
        rule = self.match_rule(method, path)
        if rule and rule.get("status") and not rule.get("after"):
            return rule["status"], self.error_body(rule["status"], rule.get("reason", "rateLimitExceeded"),
                                                   rule.get("message", "injected")), rule
        try:
            if path == "/token" and method == "POST":
                return (*self.token(headers, body), rule)
            if path == "/computeMetadata/v1/instance/service-accounts/default/token" and method == "GET":
                return (*self.metadata_token(headers), rule)
            if path.startswith("/compute/v1/"):
                return (*self.compute(method, path[len("/compute/v1/"):], query, headers, body), rule)
            if path == "/v3/tagValues/namespaced" and method == "GET":
                return (*self.tag_value(query, headers), rule)
            raise bad("unexpected request %s %s" % (method, path))
        except Reject as r:
            if rule and rule.get("after"):
                rule = None
            if r.violation:
                self.violations.append("%s %s: %s" % (method, path, r.message))
            if path == "/token":
                return r.status, {"error": r.reason, "error_description": r.message}, rule
            return r.status, self.error_body(r.status, r.reason, r.message), rule


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None

    def log_message(self, fmt, *args):
        pass

    def _do(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(n) if n else b""
        with self.fake.lock:
            status, obj, rule = self.fake.handle(method, self.path, self.headers, body)
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule and rule.get("reset"):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if rule and rule.get("retry_after") is not None:
            self.send_header("Retry-After", str(rule["retry_after"]))
        if self.path.startswith("/computeMetadata/"):
            self.send_header("Metadata-Flavor", "Google")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._do("GET")

    def do_POST(self):
        self._do("POST")

    def do_DELETE(self):
        self._do("DELETE")

    def do_PUT(self):
        self._do("PUT")

    def do_PATCH(self):
        self._do("PATCH")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--pubkey")
    ap.add_argument("--client-email", default="")
    ap.add_argument("--kid", default="")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--metadata", action="store_true", help="also serve the metadata server's token")
    args = ap.parse_args()
    fake = Fake(args)
    Handler.fake = fake
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    fake.token_uri = "http://%s:%d/token" % (args.host, port)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        import os
        os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
