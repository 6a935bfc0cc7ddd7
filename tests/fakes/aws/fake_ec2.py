#!/usr/bin/env python3
"""A strict fake of the AWS endpoints the `aws` provider calls (Python 3 stdlib only).

One server, one loopback port, three services told apart by path and form:
  POST /                    EC2 Query API (Version=2016-11-15), SigV4-signed; or
                            STS AssumeRoleWithWebIdentity (Version=2011-06-15), unsigned
  PUT  /latest/api/token    IMDSv2 token;  GET /latest/meta-data/...  IMDSv2 (token required)
  /_fake/...                control (JSON): state, faults, settings, seeding
                            faults: {"action", "times", "status", "code", "retry_after",
                            "delay_ms", "reset", "after" (process, then lose the answer)}

The one idea: it refuses anything a real endpoint would refuse *and* anything our client should
never send. Every EC2 request must carry a well-formed SigV4 Authorization header whose
signature the fake recomputes with the secret it knows for that access key (and the session
token it issued with it); every form parameter must be one the action's schema names, with a
value of the right shape; a refusal is HTTP 400 code FakeRejected with a message naming the
parameter, and is recorded in state["rejections"], which the tests assert empty.

Proxy mode (--proxy-to URL): the same checks and fault injection, then the request is
forwarded unchanged to the real mock (moto_server), whose answer is relayed. So moto, which
accepts anything, is fronted by a fake that accepts nothing it should not.

usage: fake_ec2.py --port-file F [--proxy-to URL] [--dump FILE] [--region R]
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import itertools
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

EC2_VERSION = "2016-11-15"
STS_VERSION = "2011-06-15"
OWNER_TAG = "peerpod-owner"
SANDBOX_TAG = "peerpod-sandbox-id"
MAX_USER_DATA = 16384
UNRESERVED = re.compile(r"^[A-Za-z0-9\-_.~%]*$")

STATIC_AKID = "AKIDFAKESTATIC000001"
STATIC_SECRET = "fakeSecretKey/For+Tests=0123456789abcdef"

IMAGES = {
    # id: (root device, size GiB, boot mode, has mapping)
    "ami-0123456789abcdef0": ("/dev/xvda", 8, "uefi", True),
    "ami-0fedcba987654321f": ("/dev/sda1", 50, "uefi-preferred", True),
    "ami-00000000000000b0d": ("/dev/xvda", 0, "uefi", False),       # no block-device mapping
    "ami-0000000000000b105": ("/dev/xvda", 8, "legacy-bios", True),  # no SEV-SNP
}

TYPES = {
    # name: (vcpus, MiB, gpus, sev-snp)
    "m6a.large": (2, 8192, 0, True),
    "m6a.xlarge": (4, 16384, 0, True),
    "c6a.xlarge": (4, 8192, 0, True),
    "c6a.2xlarge": (8, 16384, 0, True),
    "r6a.large": (2, 16384, 0, True),
    "t3.medium": (2, 4096, 0, False),
    "p3.8xlarge": (32, 249856, 4, False),
    "g5.xlarge": (4, 16384, 1, False),
}


class Reject(Exception):
    """The fake refuses the request: 400 FakeRejected (our client's bug)."""


class ApiError(Exception):
    """An EC2/STS error a real endpoint would answer."""

    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def now_iso(delta=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- form parsing --------------------------------------------------------------------------

def parse_form(body):
    """Strict application/x-www-form-urlencoded: RFC 3986 percent-encoding only (no '+' for
    space, no raw reserved characters), every key once."""
    out = {}
    if not body:
        return out
    for part in body.split("&"):
        if "=" not in part:
            raise Reject("form item %r has no '='" % part[:60])
        k, v = part.split("=", 1)
        for what, s in (("key", k), ("value", v)):
            if not UNRESERVED.match(s):
                bad = re.sub(r"[A-Za-z0-9\-_.~%]", "", s)[:10]
                raise Reject("form %s of %s is not RFC 3986 percent-encoded (raw %r)" % (what, k[:60], bad))
            if re.search(r"%(?![0-9A-F]{2})", s):
                raise Reject("form %s of %s has a bad or lower-case percent escape" % (what, k[:60]))
        k = urllib.parse.unquote(k)
        v = urllib.parse.unquote(v)
        if k in out:
            raise Reject("form key %s appears twice" % k)
        out[k] = v
    return out


# ---- SigV4 --------------------------------------------------------------------------------

AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9\-;]+), Signature=([0-9a-f]{64})$")


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_signature(secret, method, path, query, headers, signed, body, amzdate, scope):
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers[h].strip().split())) for h in signed)
    creq = "\n".join([method, path, query, canon_headers, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(creq.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    k = _hmac(k, "aws4_request")
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


# ---- parameter schemas ---------------------------------------------------------------------

def need(p, key, pattern=None, values=None):
    if key not in p:
        raise Reject("parameter %s is missing" % key)
    v = p[key]
    if pattern and not re.fullmatch(pattern, v):
        raise Reject("parameter %s=%r does not match %s" % (key, v[:80], pattern))
    if values is not None and v not in values:
        raise Reject("parameter %s=%r is not one of %s" % (key, v[:80], sorted(values)))
    return v


def indexed(p, fmt, min_count=0):
    """Values of fmt % 1, fmt % 2, ... (1-based, contiguous)."""
    out = []
    for i in itertools.count(1):
        if fmt % i not in p:
            break
        out.append(p[fmt % i])
    if len(out) < min_count:
        raise Reject("%s: at least %d expected" % (fmt.replace("%d", "N"), min_count))
    return out


def check_known(p, allowed):
    """Every key must match one of the allowed regexps."""
    for k in p:
        if k in ("Action", "Version"):
            continue
        if not any(re.fullmatch(a, k) for a in allowed):
            raise Reject("parameter %s is not expected by %s" % (k, p.get("Action")))


def tag_spec(p, n):
    pre = "TagSpecification.%d." % n
    rtype = need(p, pre + "ResourceType", values={"instance", "volume"})
    keys = indexed(p, pre + "Tag.%d.Key", 1)
    tags = {}
    for i, k in enumerate(keys, 1):
        v = need(p, pre + "Tag.%d.Value" % i)
        if k in tags:
            raise Reject("%s tag %s appears twice" % (pre, k))
        if not (1 <= len(k) <= 128) or len(v) > 256 or k.lower().startswith("aws:"):
            raise Reject("%s tag %r=%r is not a valid EC2 tag" % (pre, k[:40], v[:40]))
        tags[k] = v
    for k in ("Name", OWNER_TAG, SANDBOX_TAG):
        if k not in tags:
            raise Reject("%s has no %s tag" % (pre, k))
    if not re.fullmatch(r"podvm-[a-z0-9-]+", tags["Name"]) or len(tags["Name"]) > 63:
        raise Reject("%s Name tag %r is not a podvm- instance name" % (pre, tags["Name"][:80]))
    return rtype, tags


SG = r"sg-[0-9a-f]{8,17}"
SUBNET = r"subnet-[0-9a-f]{8,17}"
IID = r"i-[0-9a-f]{8,17}"


def check_run_instances(p, cfg):
    check_known(p, [r"ClientToken", r"MinCount", r"MaxCount", r"ImageId", r"InstanceType",
                    r"KeyName", r"SubnetId", r"SecurityGroupId\.\d+", r"UserData",
                    r"CpuOptions\.AmdSevSnp", r"LaunchTemplate\.LaunchTemplateName",
                    r"NetworkInterface\.1\.(DeviceIndex|AssociatePublicIpAddress|DeleteOnTermination|SubnetId)",
                    r"NetworkInterface\.1\.SecurityGroupId\.\d+",
                    r"BlockDeviceMapping\.1\.(DeviceName|Ebs\.VolumeSize|Ebs\.DeleteOnTermination)",
                    r"TagSpecification\.[12]\.ResourceType", r"TagSpecification\.[12]\.Tag\.\d+\.(Key|Value)"])
    need(p, "ClientToken", r"[0-9a-f]{32}")
    need(p, "MinCount", values={"1"})
    need(p, "MaxCount", values={"1"})
    lt = "LaunchTemplate.LaunchTemplateName" in p
    if lt:
        for k in p:
            if k in ("ImageId", "InstanceType", "CpuOptions.AmdSevSnp", "SubnetId", "KeyName") or \
               k.startswith("SecurityGroupId") or k.startswith("NetworkInterface"):
                raise Reject("launch-template mode must not send %s" % k)
        need(p, "LaunchTemplate.LaunchTemplateName", r"[A-Za-z0-9()./_-]{3,128}")
    else:
        need(p, "ImageId", r"ami-[0-9a-f]{8,17}")
        need(p, "InstanceType", r"[a-z0-9]+\.[a-z0-9]+")
        snp = p.get("CpuOptions.AmdSevSnp")
        if cfg["expect_sev_snp"] and snp != "enabled":
            raise Reject("CpuOptions.AmdSevSnp=enabled is missing (SEV-SNP expected)")
        if not cfg["expect_sev_snp"] and snp is not None:
            raise Reject("CpuOptions.AmdSevSnp sent although SEV-SNP is disabled")
        if "KeyName" in p:
            need(p, "KeyName", r"[\x20-\x7e]{1,255}")
        public = "NetworkInterface.1.DeviceIndex" in p
        if public != cfg["expect_public_ip"]:
            raise Reject("public-IP mode expected=%s but NetworkInterface.1 %s" %
                         (cfg["expect_public_ip"], "sent" if public else "absent"))
        if public:
            need(p, "NetworkInterface.1.DeviceIndex", values={"0"})
            need(p, "NetworkInterface.1.AssociatePublicIpAddress", values={"true"})
            need(p, "NetworkInterface.1.DeleteOnTermination", values={"true"})
            for k in p:
                if k == "SubnetId" or k.startswith("SecurityGroupId"):
                    raise Reject("%s must go inside NetworkInterface.1 in public-IP mode" % k)
            sub = "NetworkInterface.1.SubnetId"
            sgs = indexed(p, "NetworkInterface.1.SecurityGroupId.%d")
        else:
            sub = "SubnetId"
            sgs = indexed(p, "SecurityGroupId.%d")
        if sub in p:
            need(p, sub, SUBNET)
        for sg in sgs:
            if not re.fullmatch(SG, sg):
                raise Reject("security group %r is not an sg- id" % sg)
        if len(sgs) != len([k for k in p if "SecurityGroupId." in k]):
            raise Reject("SecurityGroupId.N are not numbered 1..n")
        if cfg["expect_subnet"] is not None and p.get(sub) != cfg["expect_subnet"]:
            raise Reject("%s=%r, expected %r" % (sub, p.get(sub), cfg["expect_subnet"]))
        if cfg["expect_sgs"] is not None and sgs != cfg["expect_sgs"]:
            raise Reject("security groups %r, expected %r" % (sgs, cfg["expect_sgs"]))
        if cfg["expect_key_name"] is not None and p.get("KeyName") != cfg["expect_key_name"]:
            raise Reject("KeyName=%r, expected %r" % (p.get("KeyName"), cfg["expect_key_name"]))
    bdm = [k for k in p if k.startswith("BlockDeviceMapping.")]
    if bdm:
        need(p, "BlockDeviceMapping.1.DeviceName", r"/dev/[a-z0-9]+")
        need(p, "BlockDeviceMapping.1.Ebs.VolumeSize", r"[1-9][0-9]{0,9}")
        need(p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", values={"true"})
    ud = need(p, "UserData")
    try:
        raw = base64.b64decode(ud, validate=True)
    except Exception:
        raise Reject("UserData is not standard padded base64")
    if base64.b64encode(raw).decode() != ud:
        raise Reject("UserData is not canonical base64")
    if len(raw) > MAX_USER_DATA:
        raise ApiError("InvalidParameterValue", "User data is limited to 16384 bytes")
    if not raw.startswith(b"#cloud-config"):
        raise Reject("UserData does not decode to a #cloud-config document")
    specs = {}
    for n in (1, 2):
        if "TagSpecification.%d.ResourceType" % n in p:
            rtype, tags = tag_spec(p, n)
            specs[rtype] = tags
    if set(specs) != {"instance", "volume"}:
        raise Reject("TagSpecification must tag the instance and its volume (got %s)" % sorted(specs))
    if specs["instance"] != specs["volume"]:
        raise Reject("instance and volume tags differ")
    if cfg["expect_owner"] is not None and specs["instance"][OWNER_TAG] != cfg["expect_owner"]:
        raise Reject("owner tag %r, expected %r" % (specs["instance"][OWNER_TAG], cfg["expect_owner"]))
    for k, v in (cfg["expect_tags"] or {}).items():
        if specs["instance"].get(k) != v:
            raise Reject("tag %s=%r, expected %r" % (k, specs["instance"].get(k), v))
    return raw, specs["instance"]


def check_describe_instances(p):
    check_known(p, [r"InstanceId\.1", r"Filter\.\d+\.Name", r"Filter\.\d+\.Value\.\d+",
                    r"MaxResults", r"NextToken"])
    filters = {}
    for i, name in enumerate(indexed(p, "Filter.%d.Name"), 1):
        if not (name.startswith("tag:") or name in ("instance-state-name", "instance-id")):
            raise Reject("filter %s is not one we expect" % name)
        vals = indexed(p, "Filter.%d.Value.%%d" % i, 1)
        filters[name] = vals
    if "InstanceId.1" in p:
        need(p, "InstanceId.1", IID)
        if filters or "MaxResults" in p:
            raise Reject("InstanceId with Filter/MaxResults")
    elif OWNER_TAG and ("tag:" + OWNER_TAG) not in filters:
        raise Reject("DescribeInstances without InstanceId must filter on tag:%s" % OWNER_TAG)
    if "MaxResults" in p:
        mr = int(need(p, "MaxResults", r"\d+"))
        if not 5 <= mr <= 1000:
            raise Reject("MaxResults %d is outside 5..1000" % mr)
    return filters


SCHEMAS = {
    "TerminateInstances": lambda p: (check_known(p, [r"InstanceId\.1"]), need(p, "InstanceId.1")),
    "DescribeImages": lambda p: (check_known(p, [r"ImageId\.1", r"Owner\.1"]),),
    "DescribeInstanceTypes": lambda p: (check_known(p, [r"InstanceType\.\d+"]),
                                        indexed(p, "InstanceType.%d", 1)),
    "DescribeAddresses": lambda p: (check_known(p, [r"Filter\.1\.Name", r"Filter\.1\.Value\.1"]),
                                    need(p, "Filter.1.Name", values={"instance-id"}),
                                    need(p, "Filter.1.Value.1", IID)),
    "DisassociateAddress": lambda p: (check_known(p, [r"AssociationId"]),
                                      need(p, "AssociationId", r"eipassoc-[0-9a-f]+")),
    "ReleaseAddress": lambda p: (check_known(p, [r"AllocationId"]),
                                 need(p, "AllocationId", r"eipalloc-[0-9a-f]+")),
    "DescribeInstanceAttribute": lambda p: (check_known(p, [r"InstanceId", r"Attribute"]),
                                            need(p, "InstanceId", IID),
                                            need(p, "Attribute", values={"userData"})),
}


# ---- XML -----------------------------------------------------------------------------------

def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_doc(action, inner):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="http://ec2.amazonaws.com/doc/%s/">'
            "<requestId>%s</requestId>%s</%sResponse>" % (action, EC2_VERSION, uuid.uuid4(), inner, action))


def xml_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
            "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>"
            % (esc(code), esc(message), uuid.uuid4()))


def sts_error(code, message):
    return ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            "<Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
            % (esc(code), esc(message), uuid.uuid4()))


def tags_xml(tags):
    return "<tagSet>%s</tagSet>" % "".join(
        "<item><key>%s</key><value>%s</value></item>" % (esc(k), esc(v)) for k, v in tags.items())


def instance_xml(i, cfg, in_run=False):
    nic = ""
    if not (in_run and cfg["omit_private_ip_in_run"]):
        assoc = ("<association><publicIp>%s</publicIp></association>" % i["public_ip"]) if i["public_ip"] else ""
        nic = ("<networkInterfaceSet><item><networkInterfaceId>eni-%s</networkInterfaceId>"
               "<privateIpAddress>%s</privateIpAddress>%s</item></networkInterfaceSet>"
               "<privateIpAddress>%s</privateIpAddress>" % (i["id"][2:], i["private_ip"], assoc, i["private_ip"]))
    pub = ("<ipAddress>%s</ipAddress>" % i["public_ip"]) if i["public_ip"] else ""
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopped": 80}
    return ("<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>%d</code>"
            "<name>%s</name></instanceState><instanceType>%s</instanceType><launchTime>%s</launchTime>"
            "%s%s%s</item>" % (i["id"], i["image"], codes[i["state"]], i["state"], esc(i["type"]),
                               i["launch"], nic, pub, tags_xml(i["tags"])))


# ---- the fake ------------------------------------------------------------------------------

class Fake:
    def __init__(self, region, proxy_to=None, dump=None):
        self.lock = threading.Lock()
        self.region = region
        self.proxy_to = proxy_to
        self.dump = dump
        self.cfg = {
            "expect_sev_snp": True, "expect_public_ip": False, "expect_subnet": None,
            "expect_sgs": None, "expect_key_name": None, "expect_owner": None, "expect_tags": None,
            "omit_private_ip_in_run": False, "pending_polls": 1, "page_size": 1000,
            "role_arn": "arn:aws:iam::123456789012:role/peerpods", "web_token": "web-token-1",
            "sts_duration": 3600, "imds_duration": 3600, "imds_role": "peerpods-node",
            "imds": {"placement/region": "us-east-1", "mac": "0e:00:00:00:00:01",
                     "network/interfaces/macs/0e:00:00:00:00:01/subnet-id": "subnet-0a1b2c3d",
                     "network/interfaces/macs/0e:00:00:00:00:01/security-group-ids": "sg-0a1b2c3d\nsg-0e0f1a2b",
                     "public-keys/": "0=node-key"},
        }
        self.creds = {STATIC_AKID: (STATIC_SECRET, None)}   # akid -> (secret, token)
        self.instances = {}   # id -> dict
        self.tokens = {}      # ClientToken -> id
        self.addresses = []
        self.calls = []       # (service, action)
        self.rejections = []
        self.faults = []
        self.imds_tokens = set()
        self.serial = itertools.count(1)

    # -- faults
    def take_fault(self, action):
        with self.lock:
            for f in self.faults:
                if f["action"] in (action, "*") and f["times"] > 0:
                    f["times"] -= 1
                    return dict(f)
        return None

    # -- control
    def control(self, method, path, body):
        with self.lock:
            if path == "/_fake/state":
                return {"instances": self.instances, "calls": self.calls, "rejections": self.rejections,
                        "addresses": self.addresses, "faults": self.faults}
            data = json.loads(body or b"{}")
            if path == "/_fake/config":
                for k, v in data.items():
                    if k not in self.cfg:
                        raise Reject("unknown fake setting %s" % k)
                    self.cfg[k] = v
            elif path == "/_fake/fault":
                data.setdefault("times", 1)
                self.faults.append(data)
            elif path == "/_fake/reset":
                self.calls, self.rejections, self.faults = [], [], []
            elif path == "/_fake/instance":
                iid = self._new_id()
                self.instances[iid] = self._instance(iid, data.get("image", "ami-0123456789abcdef0"),
                                                     data.get("type", "m6a.large"), data["tags"], b"",
                                                     data.get("state", "running"))
                return {"id": iid}
            elif path == "/_fake/address":
                self.addresses.append(data)
            elif path == "/_fake/creds":
                self.creds[data["akid"]] = (data["secret"], data.get("token"))
            else:
                raise Reject("unknown control path %s" % path)
            return {"ok": True}

    def _new_id(self):
        return "i-%017x" % (0x0abc0000000000000 + next(self.serial))

    def _instance(self, iid, image, itype, tags, user_data, state="pending"):
        n = next(self.serial)
        return {"id": iid, "image": image, "type": itype, "tags": tags, "state": state,
                "user_data": base64.b64encode(user_data).decode(), "polls": 0,
                "private_ip": "10.0.%d.%d" % (n // 250, n % 250 + 2), "public_ip": "",
                "want_public": False, "launch": now_iso(), "params": {}}

    # -- auth
    def check_sigv4(self, method, path, headers, body):
        auth = headers.get("authorization")
        if not auth:
            raise Reject("EC2 request without an Authorization header")
        m = AUTH_RE.match(auth)
        if not m:
            raise Reject("Authorization header is not SigV4-shaped: %r" % auth[:120])
        akid, date, region, service, signed, sig = m.groups()
        amzdate = headers.get("x-amz-date", "")
        if not re.fullmatch(r"\d{8}T\d{6}Z", amzdate) or amzdate[:8] != date:
            raise Reject("X-Amz-Date %r does not match the credential scope date %s" % (amzdate, date))
        t = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 300:
            raise ApiError("RequestExpired", "Request has expired.")
        if region != self.region or service != "ec2":
            raise Reject("credential scope %s/%s, expected %s/ec2" % (region, service, self.region))
        signed_list = signed.split(";")
        if signed_list != sorted(signed_list):
            raise Reject("SignedHeaders not sorted")
        token = headers.get("x-amz-security-token")
        for h in ("content-type", "host", "x-amz-date") + (("x-amz-security-token",) if token else ()):
            if h not in signed_list:
                raise Reject("SignedHeaders %s lacks %s" % (signed, h))
        for h in signed_list:
            if h not in headers:
                raise Reject("signed header %s is not in the request" % h)
        with self.lock:
            known = self.creds.get(akid)
        if not known:
            raise ApiError("AuthFailure", "AWS was not able to validate the provided access credentials")
        secret, want_token = known
        if want_token != token:
            raise ApiError("AuthFailure", "security token missing or not the one issued with this key")
        want = sigv4_signature(secret, method, path, "", headers, signed_list, body, amzdate,
                               "%s/%s/%s/aws4_request" % (date, region, service))
        if want != sig:
            raise ApiError("SignatureDoesNotMatch", "The request signature we calculated does not match")
        return akid

    # -- STS
    def sts(self, p):
        check_known(p, [r"RoleArn", r"RoleSessionName", r"WebIdentityToken"])
        need(p, "RoleSessionName", r"[\w+=,.@-]{2,64}")
        with self.lock:
            cfg = dict(self.cfg)
        if need(p, "RoleArn") != cfg["role_arn"]:
            raise ApiError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
        if need(p, "WebIdentityToken") != cfg["web_token"]:
            raise ApiError("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
        akid, secret, token = self.issue("ASIAWEB")
        return ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>%s</AccessKeyId>"
                "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                "<Expiration>%s</Expiration></Credentials><SubjectFromWebIdentityToken>system:serviceaccount:x:y"
                "</SubjectFromWebIdentityToken></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>%s"
                "</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
                % (akid, esc(secret), esc(token), now_iso(cfg["sts_duration"]), uuid.uuid4()))

    def issue(self, prefix):
        n = next(self.serial)
        akid = "%s%012d" % (prefix, n)
        secret = base64.b64encode(os.urandom(30)).decode()
        token = "FwoGZXIvYXdzE" + base64.b64encode(os.urandom(600)).decode()   # long, with + / =
        with self.lock:
            self.creds[akid] = (secret, token)
        return akid, secret, token

    # -- IMDS
    def imds(self, method, path, headers):
        if path == "/latest/api/token":
            if method != "PUT":
                raise ApiError("MethodNotAllowed", "token needs PUT", 405)
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                raise ApiError("BadRequest", "bad X-aws-ec2-metadata-token-ttl-seconds", 400)
            tok = base64.b64encode(os.urandom(30)).decode()
            with self.lock:
                self.imds_tokens.add(tok)
            return "text/plain", tok
        if method != "GET":
            raise ApiError("MethodNotAllowed", "GET only", 405)
        with self.lock:
            ok = headers.get("x-aws-ec2-metadata-token") in self.imds_tokens
            cfg = dict(self.cfg)
        if not ok:
            raise ApiError("Unauthorized", "IMDSv2 token missing or invalid (IMDSv1 is refused)", 401)
        key = path[len("/latest/meta-data/"):]
        role_base = "iam/security-credentials/"
        if cfg["imds_role"] and key == role_base:
            return "text/plain", cfg["imds_role"]
        if cfg["imds_role"] and key == role_base + cfg["imds_role"]:
            akid, secret, token = self.issue("ASIAIMDS")
            return "application/json", json.dumps({
                "Code": "Success", "LastUpdated": now_iso(), "Type": "AWS-HMAC", "AccessKeyId": akid,
                "SecretAccessKey": secret, "Token": token, "Expiration": now_iso(cfg["imds_duration"])})
        if key in cfg["imds"]:
            return "text/plain", cfg["imds"][key]
        raise ApiError("NotFound", "not found", 404)

    # -- EC2
    def ec2(self, action, p):
        with self.lock:
            cfg = dict(self.cfg)
        if action == "RunInstances":
            raw, tags = check_run_instances(p, cfg)
            return self.run_instances(p, raw, tags, cfg)
        if action == "DescribeInstances":
            return self.describe_instances(p, check_describe_instances(p), cfg)
        if action not in SCHEMAS:
            raise Reject("action %s is not one the provider should call" % action)
        SCHEMAS[action](p)
        return getattr(self, re.sub(r"(?<!^)([A-Z])", r"_\1", action).lower())(p, cfg)

    def run_instances(self, p, raw, tags, cfg):
        with self.lock:
            token = p["ClientToken"]
            if token in self.tokens:   # idempotent retry: same instance
                i = self.instances[self.tokens[token]]
                return xml_doc("RunInstances", "<reservationId>r-1</reservationId><instancesSet>%s</instancesSet>"
                               % instance_xml(i, cfg, True))
            if "ImageId" in p:
                img = IMAGES.get(p["ImageId"])
                if img is None:
                    raise ApiError("InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % p["ImageId"])
                if p["InstanceType"] not in TYPES:
                    raise ApiError("InvalidParameterValue", "Invalid value '%s' for InstanceType." % p["InstanceType"])
                if "CpuOptions.AmdSevSnp" in p and not TYPES[p["InstanceType"]][3]:
                    raise ApiError("InvalidParameterCombination", "SEV-SNP is not supported with %s" % p["InstanceType"])
                dev = p.get("BlockDeviceMapping.1.DeviceName")
                if dev is not None and (dev != img[0] or int(p["BlockDeviceMapping.1.Ebs.VolumeSize"]) < img[1]):
                    raise Reject("BlockDeviceMapping %s/%s does not fit image %s (%s, %d GiB)" %
                                 (dev, p["BlockDeviceMapping.1.Ebs.VolumeSize"], p["ImageId"], img[0], img[1]))
            iid = self._new_id()
            i = self._instance(iid, p.get("ImageId", "ami-from-template"), p.get("InstanceType", "m6a.large"),
                               tags, raw)
            i["want_public"] = "NetworkInterface.1.DeviceIndex" in p
            i["params"] = p
            self.instances[iid] = i
            self.tokens[token] = iid
            return xml_doc("RunInstances", "<reservationId>r-%s</reservationId><ownerId>123456789012</ownerId>"
                           "<instancesSet>%s</instancesSet>" % (iid[2:], instance_xml(i, cfg, True)))

    def _advance(self, i, cfg):
        i["polls"] += 1
        if i["state"] == "pending" and i["polls"] >= cfg["pending_polls"]:
            i["state"] = "running"
            if i["want_public"]:
                n = int(i["id"][-4:], 16)
                i["public_ip"] = "192.168.%d.%d" % (n // 250 % 250, n % 250 + 2)
        elif i["state"] == "shutting-down":
            i["state"] = "terminated"

    def describe_instances(self, p, filters, cfg):
        with self.lock:
            if "InstanceId.1" in p:
                i = self.instances.get(p["InstanceId.1"])
                if i is None:
                    raise ApiError("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % p["InstanceId.1"])
                self._advance(i, cfg)
                found = [i]
            else:
                found = []
                for i in self.instances.values():
                    ok = True
                    for name, vals in filters.items():
                        if name.startswith("tag:"):
                            v = i["tags"].get(name[4:])
                            ok = ok and any(v is not None and re.fullmatch(x.replace("*", ".*"), v) for x in vals)
                        elif name == "instance-state-name":
                            ok = ok and i["state"] in vals
                        elif name == "instance-id":
                            ok = ok and i["id"] in vals
                    if ok:
                        found.append(i)
            found.sort(key=lambda i: i["id"])
            start = int(p.get("NextToken", "0") or 0)
            size = min(int(p.get("MaxResults", "1000")), cfg["page_size"])
            page = found[start:start + size]
            nxt = ("<nextToken>%d</nextToken>" % (start + size)) if start + size < len(found) else ""
            items = "".join("<item><reservationId>r-%s</reservationId><instancesSet>%s</instancesSet></item>"
                            % (i["id"][2:], instance_xml(i, cfg)) for i in page)
            return xml_doc("DescribeInstances", "<reservationSet>%s</reservationSet>%s" % (items, nxt))

    def terminate_instances(self, p, cfg):
        iid = p["InstanceId.1"]
        if not re.fullmatch(IID, iid):
            raise ApiError("InvalidInstanceID.Malformed", "Invalid id: \"%s\"" % iid)
        with self.lock:
            i = self.instances.get(iid)
            if i is None:
                raise ApiError("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % iid)
            prev = i["state"]
            if prev != "terminated":
                i["state"] = "shutting-down"
        return xml_doc("TerminateInstances", "<instancesSet><item><instanceId>%s</instanceId><currentState>"
                       "<code>32</code><name>%s</name></currentState><previousState><code>16</code><name>%s</name>"
                       "</previousState></item></instancesSet>" % (iid, i["state"], prev))

    def describe_images(self, p, cfg):
        iid = p.get("ImageId.1")
        if iid not in IMAGES:
            raise ApiError("InvalidAMIID.NotFound", "The image id '[%s]' does not exist" % iid)
        dev, size, boot, has_map = IMAGES[iid]
        bdm = ("<blockDeviceMapping><item><deviceName>%s</deviceName><ebs><snapshotId>snap-1</snapshotId>"
               "<volumeSize>%d</volumeSize><deleteOnTermination>false</deleteOnTermination>"
               "<volumeType>gp3</volumeType></ebs></item></blockDeviceMapping>" % (dev, size)) if has_map else ""
        return xml_doc("DescribeImages", "<imagesSet><item><imageId>%s</imageId><imageState>available"
                       "</imageState><architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>"
                       "<rootDeviceName>%s</rootDeviceName>%s<bootMode>%s</bootMode></item></imagesSet>"
                       % (iid, dev, bdm, boot))

    def describe_instance_types(self, p, cfg):
        names = indexed(p, "InstanceType.%d", 1)
        bad = [n for n in names if n not in TYPES]
        if bad:
            raise ApiError("InvalidInstanceType", "The following supplied instance types do not exist: [%s]"
                           % ", ".join(bad))
        items = []
        for n in names:
            v, mem, gpus, snp = TYPES[n]
            gpu = ("<gpuInfo><gpus><item><name>V100</name><manufacturer>NVIDIA</manufacturer><count>%d</count>"
                   "</item></gpus></gpuInfo>" % gpus) if gpus else ""
            feat = "<supportedFeatures><item>amd-sev-snp</item></supportedFeatures>" if snp else ""
            items.append("<item><instanceType>%s</instanceType><processorInfo><supportedArchitectures><item>"
                         "x86_64</item></supportedArchitectures>%s</processorInfo><vCpuInfo><defaultVCpus>%d"
                         "</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>%d</sizeInMiB></memoryInfo>%s</item>"
                         % (n, feat, v, mem, gpu))
        return xml_doc("DescribeInstanceTypes", "<instanceTypeSet>%s</instanceTypeSet>" % "".join(items))

    def describe_addresses(self, p, cfg):
        iid = p["Filter.1.Value.1"]
        with self.lock:
            found = [a for a in self.addresses if a.get("instance") == iid]
        items = "".join("<item><publicIp>%s</publicIp><allocationId>%s</allocationId>%s<domain>vpc</domain>"
                        "<instanceId>%s</instanceId>%s</item>"
                        % (a["ip"], a["allocation"], ("<associationId>%s</associationId>" % a["association"])
                           if a.get("association") else "", iid, tags_xml(a.get("tags", {}))) for a in found)
        return xml_doc("DescribeAddresses", "<addressesSet>%s</addressesSet>" % items)

    def disassociate_address(self, p, cfg):
        with self.lock:
            for a in self.addresses:
                if a.get("association") == p["AssociationId"]:
                    a["association"] = ""
                    a["disassociated"] = True
                    return xml_doc("DisassociateAddress", "<return>true</return>")
        raise ApiError("InvalidAssociationID.NotFound", "association %s not found" % p["AssociationId"])

    def release_address(self, p, cfg):
        with self.lock:
            for a in self.addresses:
                if a["allocation"] == p["AllocationId"]:
                    if a.get("association"):
                        raise ApiError("InvalidIPAddress.InUse", "address in use")
                    a["released"] = True
                    return xml_doc("ReleaseAddress", "<return>true</return>")
        raise ApiError("InvalidAllocationID.NotFound", "allocation %s not found" % p["AllocationId"])

    def describe_instance_attribute(self, p, cfg):
        with self.lock:
            i = self.instances.get(p["InstanceId"])
        if i is None:
            raise ApiError("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % p["InstanceId"])
        return xml_doc("DescribeInstanceAttribute", "<instanceId>%s</instanceId><userData><value>%s</value>"
                       "</userData>" % (i["id"], i["user_data"]))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAWS/1.0"

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_AWS_VERBOSE"):
            sys.stderr.write("fake-aws: " + fmt % args + "\n")

    def answer(self, status, body, ctype="text/xml;charset=UTF-8", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path
        if path.startswith("/_fake/"):
            try:
                return self.answer(200, json.dumps(fake.control(method, path, body)), "application/json")
            except Exception as e:
                return self.answer(400, json.dumps({"error": str(e)}), "application/json")
        if path.startswith("/latest/"):
            return self.handle_imds(fake, method, path, headers)
        if method != "POST" or path != "/":
            return self.reject(fake, "unexpected %s %s" % (method, path), "?")
        self.handle_query(fake, headers, body)

    def reject(self, fake, msg, action):
        with fake.lock:
            fake.rejections.append("%s: %s" % (action, msg))
        sys.stderr.write("fake-aws: REJECTED %s: %s\n" % (action, msg))
        self.answer(400, xml_error("FakeRejected", msg))

    def handle_imds(self, fake, method, path, headers):
        with fake.lock:
            fake.calls.append(("imds", path))
        try:
            ctype, text = fake.imds(method, path, headers)
            self.answer(200, text, ctype)
        except ApiError as e:
            self.answer(e.status, e.message, "text/plain")

    def fault(self, f, sts):
        if f.get("delay_ms"):
            time.sleep(f["delay_ms"] / 1000.0)
        if f.get("reset"):
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return True
        if f.get("status"):
            extra = [("Retry-After", str(f["retry_after"]))] if "retry_after" in f else []
            body = (sts_error if sts else xml_error)(f.get("code", "InternalError"), f.get("message", "injected"))
            self.answer(f["status"], body, extra=extra)
            return True
        return False

    def handle_query(self, fake, headers, body):
        action = "?"
        try:
            if headers.get("content-type") != "application/x-www-form-urlencoded; charset=utf-8":
                raise Reject("Content-Type %r" % headers.get("content-type"))
            p = parse_form(body.decode("ascii"))
            action = p.get("Action", "?")
            sts = p.get("Version") == STS_VERSION
            if sts:
                if action != "AssumeRoleWithWebIdentity":
                    raise Reject("STS action %s" % action)
                if "authorization" in headers or "x-amz-security-token" in headers:
                    raise Reject("AssumeRoleWithWebIdentity must be unsigned")
            else:
                need(p, "Version", values={EC2_VERSION})
                fake.check_sigv4("POST", "/", headers, body)
            if fake.dump and not sts:
                with fake.lock, open(fake.dump, "a") as f:
                    f.write(json.dumps({"method": "POST", "path": "/", "headers": list(self.headers.items()),
                                        "body": body.decode("ascii")}) + "\n")
            with fake.lock:
                fake.calls.append(("sts" if sts else "ec2", action))
            f = fake.take_fault(action)
            if f and not f.get("after") and self.fault(f, sts):
                return
            if sts:
                return self.answer(200, fake.sts(p))
            if fake.proxy_to:
                return self.forward(fake, action, p, headers, body)
            text = fake.ec2(action, p)
            if f and f.get("after") and self.fault(f, sts):
                return   # processed, but the answer is lost
            self.answer(200, text)
        except Reject as e:
            self.reject(fake, str(e), action)
        except ApiError as e:
            body = sts_error(e.code, e.message) if action == "AssumeRoleWithWebIdentity" else xml_error(e.code, e.message)
            self.answer(e.status, body)

    def forward(self, fake, action, p, headers, body):
        """Proxy mode: the schema checks only (moto owns the state), then moto answers."""
        with fake.lock:
            cfg = dict(fake.cfg)
        if action == "RunInstances":
            check_run_instances(p, cfg)
        elif action == "DescribeInstances":
            check_describe_instances(p)
        elif action in SCHEMAS:
            SCHEMAS[action](p)
        else:
            raise Reject("action %s is not one the provider should call" % action)
        req = urllib.request.Request(fake.proxy_to, data=body, method="POST",
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() not in ("host", "content-length", "connection")})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "text/xml")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "text/xml")
        self.answer(status, data, ctype)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--proxy-to")
    ap.add_argument("--dump")
    ap.add_argument("--region", default="us-east-1")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.fake = Fake(a.region, a.proxy_to, a.dump)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
