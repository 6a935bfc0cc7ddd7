#!/usr/bin/env python3
"""A strict fake of the few Azure endpoints the `azure` provider uses (Python 3 stdlib only).

Login (Microsoft Entra token endpoint), IMDS (managed identity token) and Azure Resource
Manager: VM sizes, resource group, virtual machines (PUT/GET/DELETE/list with paging), network
interfaces, public IPs, disks, and the long-running operation protocol (Azure-AsyncOperation,
Location, or provisioningState polling), all on one loopback port.

The one idea: it checks what it receives and refuses anything unexpected with HTTP 400 and a
message naming the problem (and records the refusal): the bearer token must be one it issued and
not expired, every ARM call carries the api-version of its resource type, the VM body has exactly
the fields the spec lists with their types and values, operations are polled as ARM expects.
It models ARM's state: an inline NIC/public IP/OS disk is created with the VM and removed with it
according to its deleteOption; a NIC in use cannot be deleted; a missing resource's DELETE is 204.

Control endpoints (no auth), for tests:
  GET  /_fake/state    resources, request log, refusals, issued tokens, user-data by VM name
  POST /_fake/config   merge settings (see DEFAULTS), e.g. {"lro_mode": "location"}
  POST /_fake/fault    queue a fault: {"method": "PUT", "path": "virtualMachines", "status": 429,
                       "retry_after": "1", "times": 1, "delay_ms": 0}
  POST /_fake/seed     add a raw VM: {"name": ..., "tags": {...}}
  POST /_fake/expire   expire every issued token at once

Usage: fake_azure.py [--host 127.0.0.1] [--port 0] [--port-file F] [--config JSON]
"""
import argparse
import base64
import copy
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_COMPUTE = "2022-11-01"
API_NETWORK = "2022-09-01"
API_DISK = "2022-07-02"
API_RESOURCES = "2021-04-01"
API_IMDS = "2018-02-01"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

DEFAULTS = {
    "tenant": "tenant-1",
    "client_id": "client-1",
    "client_secret": "s3cret-value",
    "assertion": None,            # expected client_assertion (workload identity), or None
    "audience": "https://management.azure.com",
    "subscription": "sub-1",
    "resource_group": "rg-1",
    "region": "eastus",
    "subnet_id": "/subscriptions/sub-1/resourceGroups/net-rg/providers/Microsoft.Network/"
                 "virtualNetworks/vnet/subnets/default",
    "sizes": [
        {"name": "Standard_DC2as_v5", "numberOfCores": 2, "memoryInMB": 8192, "maxDataDiskCount": 4},
        {"name": "Standard_DC4as_v5", "numberOfCores": 4, "memoryInMB": 16384, "maxDataDiskCount": 8},
        {"name": "Standard_DC8as_v5", "numberOfCores": 8, "memoryInMB": 32768, "maxDataDiskCount": 16},
        {"name": "Standard_EC4es_v5", "numberOfCores": 4, "memoryInMB": 32768, "maxDataDiskCount": 8},
        {"name": "Standard_D2s_v5", "numberOfCores": 2, "memoryInMB": 8192, "maxDataDiskCount": 4},
    ],
    "token_lifetime": 3600,
    "lro_mode": "async",          # async | location | state | sync
    "lro_polls": 1,               # InProgress answers before the terminal one
    "retry_after": "0",           # Retry-After on operation answers (None: no header)
    "provision_fail": None,       # {"code": ..., "message": ...}: the VM operation fails
    "ip_pending_gets": 0,         # NIC GETs answered without a private IP first
    "page_size": 100,
    "private_prefix": "10.0.0.",
    "public_prefix": "192.168.77.",
}


class Refused(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def refuse(msg, code="FakeRefused", status=400):
    raise Refused(status, code, msg)


# ---------------------------------------------------------------- body schema

OPT = object()


def check(schema, value, path):
    """schema: a type, a literal, a dict (keys ending '?' optional, no other key allowed), a list
    with one element schema, or a callable(value, path)."""
    if callable(schema) and not isinstance(schema, type):
        schema(value, path)
    elif isinstance(schema, type):
        if type(value) is not schema:   # bool is not int here, int is not bool
            refuse("%s: expected %s, got %s %r" % (path, schema.__name__, type(value).__name__, value))
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            refuse("%s: expected an object, got %r" % (path, value))
        keys = {k.rstrip("?"): k.endswith("?") for k in schema}
        for k in value:
            if k not in keys:
                refuse("%s: unexpected field %r" % (path, k))
        for k, optional in keys.items():
            if k not in value:
                if not optional:
                    refuse("%s: missing field %r" % (path, k))
                continue
            check(schema[k + "?" if optional else k], value[k], path + "." + k)
    elif isinstance(schema, list):
        if not isinstance(value, list) or not value:
            refuse("%s: expected a non-empty array, got %r" % (path, value))
        for i, v in enumerate(value):
            check(schema[0], v, "%s[%d]" % (path, i))
    else:
        if type(value) is not type(schema) or value != schema:
            refuse("%s: expected %r, got %r" % (path, schema, value))


def one_of(*schemas):
    def f(value, path):
        errs = []
        for s in schemas:
            try:
                check(s, value, path)
                return
            except Refused as e:
                errs.append(e.message)
        refuse("%s: matches none of the allowed shapes (%s)" % (path, "; ".join(errs)))
    return f


def arm_id_of(kind):
    def f(value, path):
        check(str, value, path)
        if not value.startswith("/subscriptions/") or ("/providers/" + kind).lower() not in value.lower():
            refuse("%s: %r is not an ARM id of %s" % (path, value, kind))
    return f


def ssh_key(value, path):
    check(str, value, path)
    parts = value.split(" ")
    if len(parts) != 2 or parts[0] not in ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256"):
        refuse("%s: %r is not '<type> <base64>'" % (path, value[:40]))
    blob = base64.b64decode(parts[1], validate=True)
    n = int.from_bytes(blob[:4], "big")
    if blob[4:4 + n].decode() != parts[0]:
        refuse("%s: key blob does not start with its type" % path)


def user_data(value, path):
    check(str, value, path)
    if len(value) > 65536:
        refuse("%s: %d bytes of base64, more than 65536" % (path, len(value)), "InvalidParameter")
    text = base64.b64decode(value, validate=True)
    if not text.startswith(b"#cloud-config"):
        refuse("%s: decoded user-data does not start with #cloud-config" % path)


def tags(value, path):
    check(dict, value, path)
    if len(value) > 50:
        refuse("%s: more than 50 tags" % path)
    for k, v in value.items():
        if type(v) is not str or len(v) > 256 or len(k) > 512 or not k:
            refuse("%s: bad tag %r=%r" % (path, k, v))


VM_SCHEMA = {
    "location": str,
    "tags": tags,
    "properties": {
        "hardwareProfile": {"vmSize": str},
        "storageProfile": {
            "imageReference": one_of({"id": str}, {"communityGalleryImageId": str},
                                     {"sharedGalleryImageId": str}),
            "osDisk": {"name": str, "createOption": "FromImage", "caching": "ReadWrite",
                       "deleteOption": "Delete", "diskSizeGB?": int,
                       "managedDisk": {"storageAccountType": "Premium_LRS",
                                       "securityProfile?": {"securityEncryptionType": "VMGuestStateOnly"}}},
        },
        "osProfile": {"adminUsername": str, "computerName": str,
                      "linuxConfiguration": {"disablePasswordAuthentication": True,
                                             "ssh": {"publicKeys": [{"path": str, "keyData": ssh_key}]}}},
        "networkProfile": {
            "networkApiVersion": "2020-11-01",
            "networkInterfaceConfigurations": [{
                "name": str,
                "properties": {
                    "primary?": bool, "deleteOption": "Delete",
                    "networkSecurityGroup?": {"id": arm_id_of("Microsoft.Network/networkSecurityGroups")},
                    "ipConfigurations": [{
                        "name": str,
                        "properties": {
                            "primary?": bool,
                            "subnet": {"id": arm_id_of("Microsoft.Network/virtualNetworks")},
                            "publicIPAddressConfiguration?": {"name": str,
                                                              "properties": {"deleteOption": "Delete"}},
                        }}]}}]},
        "securityProfile?": {"securityType": "ConfidentialVM",
                             "uefiSettings": {"secureBootEnabled": bool, "vTpmEnabled": bool}},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": bool}},
        "userData": user_data,
    },
}


# ---------------------------------------------------------------- the fake's state

class Fake:
    def __init__(self, cfg):
        self.lock = threading.Lock()
        self.cfg = copy.deepcopy(DEFAULTS)
        self.cfg.update(cfg or {})
        self.base = ""
        self.tokens = {}          # token -> expiry (time.time())
        self.token_count = 0
        self.resources = {}       # lower-case id -> resource dict
        self.user_data = {}       # vm name -> base64 user-data
        self.ops = {}             # op id -> dict
        self.op_count = 0
        self.ip_count = 3
        self.requests = []
        self.refusals = []
        self.faults = []
        self.nic_gets = 0

    # -- helpers
    def rg_prefix(self):
        return "/subscriptions/%s/resourceGroups/%s/providers/" % (self.cfg["subscription"],
                                                                  self.cfg["resource_group"])

    def rid(self, kind, name):
        return self.rg_prefix() + kind + "/" + name

    def get(self, rid):
        return self.resources.get(rid.lower())

    def put(self, res):
        self.resources[res["id"].lower()] = res

    def remove(self, rid):
        return self.resources.pop(rid.lower(), None)

    def new_ip(self, prefix):
        self.ip_count += 1
        return "%s%d" % (prefix, self.ip_count)

    def new_op(self, kind, target, final, error=None):
        self.op_count += 1
        op = "op-%d" % self.op_count
        self.ops[op] = {"kind": kind, "target": target, "polls": self.cfg["lro_polls"],
                        "final": final, "error": error, "done": False}
        return op

    def op_urls(self, op):
        loc = "/subscriptions/%s/providers/Microsoft.Compute/locations/%s" % (
            self.cfg["subscription"], self.cfg["region"])
        return (self.base + loc + "/operations/" + op + "?api-version=" + API_COMPUTE,
                self.base + loc + "/operationResults/" + op + "?api-version=" + API_COMPUTE)


# ---------------------------------------------------------------- ARM semantics

def vm_create(f, name, body):
    cfg = f.cfg
    props = body["properties"]
    if body["location"] != cfg["region"]:
        refuse("location %r is not the region %r" % (body["location"], cfg["region"]), "InvalidParameter")
    size = props["hardwareProfile"]["vmSize"]
    if size not in [s["name"] for s in cfg["sizes"]]:
        refuse("vmSize %r is not offered in %s" % (size, cfg["region"]), "SkuNotAvailable", 409)
    osp = props["osProfile"]
    if osp["computerName"] != name:
        refuse("computerName %r is not the VM name %r" % (osp["computerName"], name))
    keypath = osp["linuxConfiguration"]["ssh"]["publicKeys"][0]["path"]
    if keypath != "/home/%s/.ssh/authorized_keys" % osp["adminUsername"]:
        refuse("ssh key path %r does not belong to %r" % (keypath, osp["adminUsername"]))
    disk = props["storageProfile"]["osDisk"]
    cvm = "securityProfile" in props
    if cvm != ("securityProfile" in disk["managedDisk"]):
        refuse("securityProfile and osDisk.managedDisk.securityProfile must come together")
    if cvm and props["securityProfile"]["uefiSettings"]["vTpmEnabled"] is not True:
        refuse("a confidential VM needs vTpmEnabled", "InvalidParameter")
    if not props["diagnosticsProfile"]["bootDiagnostics"]["enabled"]:
        refuse("bootDiagnostics should be enabled")
    nics = props["networkProfile"]["networkInterfaceConfigurations"]
    if len(nics) != 1 or len(nics[0]["properties"]["ipConfigurations"]) != 1:
        refuse("expected exactly one NIC configuration with one ipConfiguration")
    ipc = nics[0]["properties"]["ipConfigurations"][0]["properties"]
    if ipc["subnet"]["id"] != cfg["subnet_id"]:
        refuse("subnet %r is not the configured %r" % (ipc["subnet"]["id"], cfg["subnet_id"]))
    if f.get(f.rid("Microsoft.Compute/virtualMachines", name)):
        refuse("VM %s exists already (this fake does not update VMs)" % name, "Conflict", 409)

    nic_name = nics[0]["name"]
    nic_id = f.rid("Microsoft.Network/networkInterfaces", nic_name)
    if f.get(nic_id):
        refuse("NIC %s exists already" % nic_name, "Conflict", 409)
    ipconf = {"name": nics[0]["properties"]["ipConfigurations"][0]["name"],
              "properties": {"privateIPAddress": f.new_ip(cfg["private_prefix"]),
                             "privateIPAllocationMethod": "Dynamic", "primary": True,
                             "subnet": {"id": cfg["subnet_id"]}}}
    pip_del = None
    if "publicIPAddressConfiguration" in ipc:
        pc = ipc["publicIPAddressConfiguration"]
        pip_id = f.rid("Microsoft.Network/publicIPAddresses", pc["name"])
        f.put({"id": pip_id, "name": pc["name"], "type": "Microsoft.Network/publicIPAddresses",
               "properties": {"ipAddress": f.new_ip(cfg["public_prefix"]), "provisioningState": "Succeeded",
                              "deleteOption": pc["properties"]["deleteOption"],
                              "ipConfiguration": {"id": nic_id + "/ipConfigurations/" + ipconf["name"]}}})
        ipconf["properties"]["publicIPAddress"] = {"id": pip_id}
        pip_del = pip_id
    vm_id = f.rid("Microsoft.Compute/virtualMachines", name)
    f.put({"id": nic_id, "name": nic_name, "type": "Microsoft.Network/networkInterfaces",
           "properties": {"ipConfigurations": [ipconf], "provisioningState": "Succeeded",
                          "virtualMachine": {"id": vm_id}}})
    disk_id = f.rid("Microsoft.Compute/disks", disk["name"])
    f.put({"id": disk_id, "name": disk["name"], "type": "Microsoft.Compute/disks",
           "properties": {"diskState": "Attached"}, "managedBy": vm_id})
    vm = {"id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines",
          "location": body["location"], "tags": body["tags"],
          "properties": copy.deepcopy(props)}
    vp = vm["properties"]
    del vp["userData"]            # ARM returns it only with $expand=userData
    vp["vmId"] = "00000000-0000-0000-0000-%012d" % f.op_count
    vp["timeCreated"] = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime())
    vp["provisioningState"] = "Creating"
    vp["storageProfile"]["osDisk"]["managedDisk"]["id"] = disk_id
    vp["networkProfile"]["networkInterfaces"] = [{"id": nic_id, "properties": {"primary": True,
                                                                             "deleteOption": "Delete"}}]
    vm["_pip"] = pip_del
    f.put(vm)
    f.user_data[name] = props["userData"]
    return vm


def vm_delete_now(f, vm):
    """Removes the VM and what its deleteOptions take with it."""
    f.remove(vm["id"])
    vp = vm["properties"]
    for n in vp["networkProfile"].get("networkInterfaces", []):
        nic = f.get(n["id"])
        if not nic:
            continue
        nic["properties"].pop("virtualMachine", None)
        if n["properties"].get("deleteOption") == "Delete":
            f.remove(n["id"])
            for ipc in nic["properties"]["ipConfigurations"]:
                pid = ipc["properties"].get("publicIPAddress", {}).get("id")
                pip = f.get(pid) if pid else None
                if pip and pip["properties"].get("deleteOption") == "Delete":
                    f.remove(pid)
                elif pip:
                    pip["properties"].pop("ipConfiguration", None)
    osd = vp["storageProfile"]["osDisk"]
    disk = f.get(osd["managedDisk"]["id"])
    if disk:
        disk.pop("managedBy", None)
        disk["properties"]["diskState"] = "Unattached"
        if osd.get("deleteOption") == "Delete":
            f.remove(disk["id"])


def op_finish(f, op):
    o = f.ops[op]
    if o["done"]:
        return
    o["done"] = True
    res = f.get(o["target"])
    if o["kind"] == "create" and res:
        res["properties"]["provisioningState"] = "Failed" if o["error"] else "Succeeded"
    elif o["kind"] == "delete" and res:
        if res["type"] == "Microsoft.Compute/virtualMachines":
            vm_delete_now(f, res)
        else:
            f.remove(res["id"])


def lro_headers(f, op, is_put):
    mode = f.cfg["lro_mode"]
    async_url, loc_url = f.op_urls(op)
    h = {}
    if f.cfg["retry_after"] is not None:
        h["Retry-After"] = str(f.cfg["retry_after"])
    if mode == "async":
        h["Azure-AsyncOperation"] = async_url
        if not is_put:
            h["Location"] = loc_url
    elif mode == "location":
        h["Location"] = loc_url
    return h


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-azure"

    def log_message(self, fmt, *args):
        pass

    @property
    def fake(self):
        return self.server.fake

    # -- plumbing
    def send(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self, method):
        f = self.fake
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        body = self.read_body()
        if url.path.startswith("/_fake/"):
            return self.control(method, url.path, body)
        entry = {"method": method, "path": url.path, "query": {k: v[0] for k, v in query.items()},
                 "auth": bool(self.headers.get("Authorization")), "time": time.time()}
        with f.lock:
            f.requests.append(entry)
            fault = self.take_fault(method, url.path)
        if fault and fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault and fault.get("status"):
            h = {"Retry-After": fault["retry_after"]} if fault.get("retry_after") is not None else {}
            code = "TooManyRequests" if fault["status"] == 429 else "InternalServerError"
            return self.send(fault["status"], {"error": {"code": fault.get("code", code),
                                                         "message": "injected fault"}}, h)
        try:
            with f.lock:
                status, rbody, headers = self.route(method, url.path, query, body)
        except Refused as e:
            with f.lock:
                if e.status == 400 or e.code == "FakeRefused":
                    f.refusals.append("%s %s: %s" % (method, url.path, e.message))
                entry["refused"] = e.message
            if url.path.endswith("/oauth2/v2.0/token") or url.path == "/metadata/identity/oauth2/token":
                # Entra ID and IMDS answer errors in the OAuth2 shape, not ARM's
                return self.send(e.status, {"error": e.code, "error_description": e.message}, e.headers)
            return self.send(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)
        entry["status"] = status
        self.send(status, rbody, headers)

    def take_fault(self, method, path):
        for fl in self.fake.faults:
            if fl.get("method", method) == method and re.search(fl.get("path", ""), path) and fl["times"] > 0:
                fl["times"] -= 1
                return fl
        return None

    do_GET = lambda self: self.handle_any("GET")
    do_PUT = lambda self: self.handle_any("PUT")
    do_POST = lambda self: self.handle_any("POST")
    do_DELETE = lambda self: self.handle_any("DELETE")
    do_PATCH = lambda self: self.handle_any("PATCH")

    # -- control
    def control(self, method, path, body):
        f = self.fake
        with f.lock:
            if path == "/_fake/state" and method == "GET":
                return self.send(200, {"resources": {k: v for k, v in f.resources.items()},
                                       "requests": f.requests, "refusals": f.refusals,
                                       "tokens_issued": f.token_count, "user_data": f.user_data,
                                       "config": f.cfg})
            data = json.loads(body or b"{}")
            if path == "/_fake/config" and method == "POST":
                f.cfg.update(data)
            elif path == "/_fake/fault" and method == "POST":
                data.setdefault("times", 1)
                f.faults.append(data)
            elif path == "/_fake/seed" and method == "POST":
                vm_id = f.rid("Microsoft.Compute/virtualMachines", data["name"])
                f.put({"id": vm_id, "name": data["name"], "type": "Microsoft.Compute/virtualMachines",
                       "location": f.cfg["region"], "tags": data.get("tags", {}),
                       "properties": {"provisioningState": "Succeeded",
                                      "timeCreated": data.get("timeCreated", "2026-01-01T00:00:00+00:00"),
                                      "networkProfile": {"networkInterfaces": []},
                                      "storageProfile": {"osDisk": {"name": data["name"] + "-disk",
                                                                    "deleteOption": "Delete",
                                                                    "managedDisk": {"id": ""}}}}})
            elif path == "/_fake/expire" and method == "POST":
                for t in f.tokens:
                    f.tokens[t] = 0
            else:
                return self.send(404, {"error": "no such control endpoint"})
        self.send(200, {"ok": True})

    # -- routing
    def route(self, method, path, query, body):
        f = self.fake
        if method == "POST" and path == "/%s/oauth2/v2.0/token" % f.cfg["tenant"]:
            return self.token_login(body)
        if method == "GET" and path == "/metadata/identity/oauth2/token":
            return self.token_imds(query)
        if not path.lower().startswith("/subscriptions/"):
            refuse("unknown path %s" % path, "NotFound", 404)
        self.check_bearer()
        return self.arm(method, path, query, body)

    def token_issue(self, lifetime):
        f = self.fake
        f.token_count += 1
        tok = "fake-token-%d-%s" % (f.token_count, os.urandom(6).hex())
        f.tokens[tok] = time.time() + lifetime
        return tok

    def token_login(self, body):
        f = self.fake
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            refuse("token request Content-Type %r is not a form" % ctype, "invalid_request")
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
        form = {k: v[0] for k, v in form.items()}
        allowed = {"grant_type", "client_id", "scope", "client_secret", "client_assertion_type",
                   "client_assertion"}
        if set(form) - allowed:
            refuse("unexpected form fields %s" % sorted(set(form) - allowed), "invalid_request")
        if form.get("grant_type") != "client_credentials":
            refuse("grant_type %r" % form.get("grant_type"), "unsupported_grant_type")
        if form.get("scope") != f.cfg["audience"] + "/.default":
            refuse("scope %r is not %r" % (form.get("scope"), f.cfg["audience"] + "/.default"), "invalid_scope")
        if form.get("client_id") != f.cfg["client_id"]:
            raise Refused(400, "invalid_client", "unknown client_id")
        if "client_secret" in form:
            if "client_assertion" in form or form["client_secret"] != f.cfg["client_secret"]:
                raise Refused(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        else:
            if form.get("client_assertion_type") != JWT_BEARER:
                refuse("client_assertion_type %r" % form.get("client_assertion_type"), "invalid_request")
            if f.cfg["assertion"] is None or form.get("client_assertion") != f.cfg["assertion"]:
                raise Refused(401, "invalid_client", "AADSTS700024: Client assertion is not valid.")
        lifetime = int(f.cfg["token_lifetime"])
        return 200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                     "access_token": self.token_issue(lifetime)}, {}

    def token_imds(self, query):
        f = self.fake
        if self.headers.get("Metadata") != "true":
            refuse("IMDS token request without 'Metadata: true'", "invalid_request")
        q = {k: v[0] for k, v in query.items()}
        if q.get("api-version") != API_IMDS:
            refuse("IMDS api-version %r" % q.get("api-version"), "invalid_request")
        if q.get("resource") != f.cfg["audience"] + "/":
            refuse("IMDS resource %r" % q.get("resource"), "invalid_resource")
        if set(q) - {"api-version", "resource", "client_id"}:
            refuse("unexpected IMDS parameters %s" % sorted(q), "invalid_request")
        if "client_id" in q and q["client_id"] != f.cfg["client_id"]:
            refuse("no identity with client_id %r" % q["client_id"], "invalid_request")
        lifetime = int(f.cfg["token_lifetime"])
        return 200, {"token_type": "Bearer", "expires_in": str(lifetime), "expires_on": str(int(time.time()) + lifetime),
                     "resource": f.cfg["audience"] + "/", "access_token": self.token_issue(lifetime)}, {}

    def check_bearer(self):
        f = self.fake
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise Refused(401, "AuthenticationFailed", "no bearer token")
        exp = f.tokens.get(auth[7:])
        if exp is None:
            raise Refused(401, "InvalidAuthenticationToken", "the access token is not one this fake issued")
        if exp < time.time():
            raise Refused(401, "ExpiredAuthenticationToken", "the access token has expired")

    def api(self, query, want):
        got = query.get("api-version", [None])[0]
        if got != want:
            refuse("api-version %r, expected %r" % (got, want), "InvalidApiVersionParameter")
        extra = set(query) - {"api-version", "$skiptoken"}
        if extra:
            refuse("unexpected query parameters %s" % sorted(extra))

    def arm(self, method, path, query, body):
        f = self.fake
        cfg = f.cfg
        segs = path.split("/")[1:]
        low = [s.lower() for s in segs]
        if low[1] != cfg["subscription"].lower():
            raise Refused(404, "SubscriptionNotFound", "subscription %s not found" % segs[1])
        # /subscriptions/S/providers/Microsoft.Compute/locations/R/...
        if low[2:5] == ["providers", "microsoft.compute", "locations"] and len(segs) >= 7:
            if low[5] != cfg["region"].lower():
                refuse("location %s is not %s" % (segs[5], cfg["region"]))
            self.api(query, API_COMPUTE)
            if low[6] == "vmsizes" and len(segs) == 7 and method == "GET":
                return 200, {"value": cfg["sizes"]}, {}
            if low[6] in ("operations", "operationresults") and len(segs) == 8 and method == "GET":
                return self.op_poll(low[6], segs[7])
            refuse("unknown compute location path %s" % path, "NotFound", 404)
        # /subscriptions/S/resourcegroups/RG
        if low[2] == "resourcegroups" and len(segs) == 4 and method == "GET":
            self.api(query, API_RESOURCES)
            if low[3] != cfg["resource_group"].lower():
                raise Refused(404, "ResourceGroupNotFound", "resource group %s not found" % segs[3])
            return 200, {"id": "/subscriptions/%s/resourceGroups/%s" % (segs[1], segs[3]),
                         "name": segs[3], "location": cfg["region"]}, {}
        if len(segs) < 7 or low[2] != "resourcegroups" or low[4] != "providers":
            refuse("unknown ARM path %s" % path, "NotFound", 404)
        if low[3] != cfg["resource_group"].lower():
            raise Refused(404, "ResourceGroupNotFound", "resource group %s not found" % segs[3])
        kind = (low[5], low[6])
        name = segs[7] if len(segs) == 8 else None
        if len(segs) > 8:
            refuse("unknown ARM path %s" % path, "NotFound", 404)
        if kind == ("microsoft.compute", "virtualmachines"):
            self.api(query, API_COMPUTE)
            return self.vm(method, name, query, body)
        if kind == ("microsoft.network", "networkinterfaces") and name:
            self.api(query, API_NETWORK)
            return self.simple(method, "Microsoft.Network/networkInterfaces", name)
        if kind == ("microsoft.network", "publicipaddresses") and name:
            self.api(query, API_NETWORK)
            return self.simple(method, "Microsoft.Network/publicIPAddresses", name)
        if kind == ("microsoft.compute", "disks") and name:
            self.api(query, API_DISK)
            return self.simple(method, "Microsoft.Compute/disks", name)
        refuse("unknown resource type %s/%s" % (segs[5], segs[6]), "NotFound", 404)

    def op_poll(self, which, op):
        f = self.fake
        o = f.ops.get(op)
        if not o:
            refuse("no operation %s" % op, "NotFound", 404)
        mode_ok = {"operations": "async", "operationresults": "location"}[which]
        if f.cfg["lro_mode"] != mode_ok and not (which == "operationresults" and o["kind"] == "delete"):
            refuse("operation %s polled through %s, but this answer offered %s" % (op, which, f.cfg["lro_mode"]))
        h = {"Retry-After": str(f.cfg["retry_after"])} if f.cfg["retry_after"] is not None else {}
        if o["polls"] > 0:
            o["polls"] -= 1
            if which == "operations":
                return 200, {"status": "InProgress", "name": op}, h
            return 202, None, dict(h, Location=f.op_urls(op)[1])
        op_finish(f, op)
        if which == "operations":
            if o["error"]:
                return 200, {"status": "Failed", "name": op, "error": o["error"]}, {}
            return 200, {"status": "Succeeded", "name": op}, {}
        if o["error"]:
            return 400, {"error": o["error"]}, {}
        return (200, f.get(o["target"]), {}) if o["kind"] == "create" else (204, None, {})

    def vm(self, method, name, query, body):
        f = self.fake
        if name is None:
            if method != "GET":
                refuse("%s on the VM collection" % method, "MethodNotAllowed", 405)
            return self.vm_list(query)
        vm_id = f.rid("Microsoft.Compute/virtualMachines", name)
        if method == "PUT":
            return self.vm_put(name, body)
        vm = f.get(vm_id)
        if method == "GET":
            if not vm:
                raise Refused(404, "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/%s' "
                              "under resource group '%s' was not found." % (name, f.cfg["resource_group"]))
            if f.cfg["lro_mode"] == "state" and vm["properties"]["provisioningState"] == "Creating":
                ops = [k for k, o in f.ops.items() if o["target"].lower() == vm_id.lower() and not o["done"]]
                if ops:
                    o = f.ops[ops[-1]]
                    if o["polls"] > 0:
                        o["polls"] -= 1
                    else:
                        op_finish(f, ops[-1])
            return 200, self.public(vm), {}
        if method == "DELETE":
            if not vm:
                return 204, None, {}
            return self.delete_lro(vm)
        refuse("%s on a VM" % method, "MethodNotAllowed", 405)

    @staticmethod
    def public(res):
        return {k: v for k, v in res.items() if not k.startswith("_")}

    def vm_put(self, name, body):
        f = self.fake
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            refuse("VM PUT Content-Type %r" % self.headers.get("Content-Type"))
        try:
            doc = json.loads(body)
        except ValueError as e:
            refuse("VM body is not JSON: %s" % e, "InvalidRequestContent")
        check(VM_SCHEMA, doc, "body")
        vm = vm_create(f, name, doc)
        op = f.new_op("create", vm["id"], "Succeeded", f.cfg["provision_fail"])
        if f.cfg["lro_mode"] == "sync":
            op_finish(f, op)
            return 200, self.public(vm), {}
        return 201, self.public(vm), lro_headers(f, op, True)

    def delete_lro(self, res):
        f = self.fake
        op = f.new_op("delete", res["id"], "Succeeded")
        if f.cfg["lro_mode"] in ("sync", "state"):
            op_finish(f, op)
            return 200, None, {}
        return 202, None, lro_headers(f, op, False)

    def vm_list(self, query):
        f = self.fake
        vms = sorted((r for r in f.resources.values() if r["type"] == "Microsoft.Compute/virtualMachines"),
                     key=lambda r: r["name"])
        skip = int(query.get("$skiptoken", ["0"])[0])
        n = int(f.cfg["page_size"])
        page = {"value": [self.public(v) for v in vms[skip:skip + n]]}
        if skip + n < len(vms):
            page["nextLink"] = "%s%sMicrosoft.Compute/virtualMachines?api-version=%s&$skiptoken=%d" % (
                f.base, f.rg_prefix(), API_COMPUTE, skip + n)
        return 200, page, {}

    def simple(self, method, kind, name):
        f = self.fake
        rid = f.rid(kind, name)
        res = f.get(rid)
        if method == "GET":
            if not res:
                raise Refused(404, "ResourceNotFound", "%s %s not found" % (kind, name))
            if kind == "Microsoft.Network/networkInterfaces" and f.cfg["ip_pending_gets"] > 0:
                f.cfg["ip_pending_gets"] -= 1
                pending = copy.deepcopy(res)
                for ipc in pending["properties"]["ipConfigurations"]:
                    ipc["properties"].pop("privateIPAddress", None)
                return 200, pending, {}
            return 200, self.public(res), {}
        if method == "DELETE":
            if not res:
                return 204, None, {}
            if kind == "Microsoft.Network/networkInterfaces" and res["properties"].get("virtualMachine"):
                refuse("NIC %s is attached to a VM" % name, "NicInUse")
            if kind == "Microsoft.Network/publicIPAddresses" and res["properties"].get("ipConfiguration") \
                    and f.get(res["properties"]["ipConfiguration"]["id"].split("/ipConfigurations/")[0]):
                refuse("public IP %s is in use" % name, "PublicIPAddressInUse")
            if kind == "Microsoft.Compute/disks" and res.get("managedBy"):
                raise Refused(409, "OperationNotAllowed", "disk %s is attached to a VM" % name)
            return self.delete_lro(res)
        refuse("%s on %s" % (method, kind), "MethodNotAllowed", 405)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--config", default="{}")
    a = ap.parse_args()
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    srv.fake = Fake(json.loads(a.config))
    port = srv.server_address[1]
    srv.fake.base = "http://%s:%d" % (a.host, port)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    else:
        print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
