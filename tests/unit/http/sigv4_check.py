#!/usr/bin/env python3
# Recomputes the SigV4 Authorization header of a request that libcurl signed (dumped by
# test_http's test_sigv4 with PP_HTTP_SIGV4_DUMP) with botocore's SigV4Auth, its clock pinned to
# the request's X-Amz-Date, and fails when the two differ. Exit 77 (skip) without botocore.
# usage: sigv4_check.py DUMPFILE
try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    print("botocore not installed: skipped")
    raise SystemExit(77)
import datetime
import sys

raw = open(sys.argv[1], 'rb').read()
head, body = raw.split(b'\r\n\r\n', 1)
lines = head.decode().split('\r\n')
method, target = lines[0].split(' ', 1)
hdrs = {}
for l in lines[1:]:
    k, v = l.split(':', 1); hdrs[k.strip()] = v.strip()
auth = hdrs['Authorization']; amzdate = hdrs['X-Amz-Date']
fixed = datetime.datetime.strptime(amzdate, '%Y%m%dT%H%M%SZ')
# botocore >= 1.3x reads the clock through get_current_datetime, older ones datetime.utcnow
if hasattr(botocore.auth, 'get_current_datetime'):
    botocore.auth.get_current_datetime = lambda *a, **k: fixed
else:
    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls): return fixed
    botocore.auth.datetime.datetime = Fixed
req = AWSRequest(method=method, url='http://%s%s' % (hdrs['Host'], target), data=body,
                 headers={'Content-Type': hdrs['Content-Type']})
creds = Credentials('AKID', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', hdrs.get('x-amz-security-token'))
botocore.auth.SigV4Auth(creds, 'ec2', 'us-east-1').add_auth(req)
want = req.headers['Authorization']
print('curl    :', auth); print('botocore:', want)
sys.exit(0 if want == auth else 1)
