#!/usr/bin/env python3
"""Recomputes the SigV4 Authorization header of every EC2 request in a dump written by
tests/fakes/aws/fake_ec2.py --dump (JSON lines: method, path, headers, body) with botocore's
SigV4Auth, for the same credentials and the same X-Amz-Date, and fails on any difference.
Requests with a session token must carry it signed. Exit 77 (skip) without botocore.
usage: sigv4_check.py DUMPFILE
"""
import datetime
import json
import sys

try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    print("botocore not installed: skipped")
    raise SystemExit(77)

# The keys the tests use (test_aws_provider.c): access key id -> secret.
SECRETS = {
    "AKIDFAKESTATIC000001": "fakeSecretKey/For+Tests=0123456789abcdef",
    "ASIATEMPORARY0000001": "tempSecret/+=abc",
}


def pin_clock(when):
    # botocore >= 1.3x reads the clock through get_current_datetime, older ones datetime.utcnow
    if hasattr(botocore.auth, "get_current_datetime"):
        botocore.auth.get_current_datetime = lambda *a, **k: when
    else:
        class Fixed(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when
        botocore.auth.datetime.datetime = Fixed


def main():
    checked = with_token = 0
    for line in open(sys.argv[1]):
        r = json.loads(line)
        h = {k.lower(): v for k, v in r["headers"]}
        auth = h["authorization"]
        akid = auth.split("Credential=")[1].split("/")[0]
        region = auth.split("Credential=")[1].split("/")[2]
        token = h.get("x-amz-security-token")
        pin_clock(datetime.datetime.strptime(h["x-amz-date"], "%Y%m%dT%H%M%SZ"))
        req = AWSRequest(method=r["method"], url="http://%s%s" % (h["host"], r["path"]),
                         data=r["body"].encode(), headers={"Content-Type": h["content-type"]})
        botocore.auth.SigV4Auth(Credentials(akid, SECRETS[akid], token), "ec2", region).add_auth(req)
        want = req.headers["Authorization"]
        if want != auth:
            print("MISMATCH for", r["body"][:80])
            print("  sent    :", auth)
            print("  botocore:", want)
            return 1
        checked += 1
        with_token += 1 if token else 0
    print("%d signatures match botocore (%d with a session token)" % (checked, with_token))
    return 0 if checked > 0 and with_token > 0 else 1


sys.exit(main())
