"""TLS modes between the adaptor and the forwarder (spec §6), from an operator's view:

- manual (CACERT_FILE + CERT_FILE/CERT_KEY): the VM image carries its own certificate for
  `podvm-server`; the adaptor sends none, and the whole chain still works over mutual TLS;
- mixed (CERT_FILE/CERT_KEY, no CACERT_FILE): the adaptor's CA issues the server certificate and
  the operator's client certificate is the one the forwarder trusts — from the very first VM
  (upstream's first VM went without it);
- TLS_SKIP_VERIFY together with CACERT_FILE is refused at start-up;
- a forwarder whose certificate is for another name is refused by the adaptor: StartVM fails.

Certificates are made with the openssl command (ECDSA P-256), in the test's own directory.
"""
import json
import os
import subprocess
import unittest

from pptest import Env, main, sid


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_pki(d, server_name="podvm-server"):
    """ca.crt/key, server.crt/key (SAN server_name) and client.crt/key, all from one CA."""
    os.makedirs(d, exist_ok=True)
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/O=test-ca", "-days", "2",
            "-out", "ca.crt", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth" % server_name),
                      ("client", "extendedKeyUsage=clientAuth")):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".key", cwd=d)
        openssl("req", "-new", "-key", name + ".key", "-subj", "/O=test/CN=" + name,
                "-out", name + ".csr", cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt",
                cwd=d)
    for k in ("ca.key", "server.key", "client.key"):
        os.chmod(os.path.join(d, k), 0o600)
    return {k: os.path.join(d, k) for k in
            ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")}


class TlsModesTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)

    def lifecycle_works(self, s):
        env = self.env
        env.create(s)
        env.start(s)
        self.assertIn("SERVING", env.agent(s, "health").text)
        name = env.instances()[0]
        with open(os.path.join(env.local_root(), name, "root", "run", "peerpod", "apf.json")) as f:
            apf = json.load(f)
        env.remember_all()
        env.stop(s)
        env.assert_nothing_left()
        return apf

    def test_manual_mode_podvm_server(self):
        env = self.env
        pki = make_pki(os.path.join(env.dir, "pki"))
        fwd_args = "-cert-file %s -cert-key %s -ca-cert-file %s" % (
            pki["server.crt"], pki["server.key"], pki["ca.crt"])
        env.daemon("-ca-cert-file", pki["ca.crt"], "-cert-file", pki["client.crt"],
                   "-cert-key", pki["client.key"], env={"LOCAL_FORWARDER_ARGS": fwd_args})
        apf = self.lifecycle_works(sid(1))
        # manual mode: nothing of the VM's identity travels in the user-data
        for key in ("tls-server-cert", "tls-server-key", "tls-client-ca"):
            self.assertNotIn(key, apf)

    def test_mixed_mode_first_vm_gets_client_ca(self):
        env = self.env
        pki = make_pki(os.path.join(env.dir, "pki"))
        env.daemon("-cert-file", pki["client.crt"], "-cert-key", pki["client.key"])
        apf = self.lifecycle_works(sid(2))
        with open(pki["client.crt"]) as f:
            client_pem = f.read()
        self.assertEqual(apf["tls-client-ca"].strip(), client_pem.strip())
        self.assertIn("BEGIN CERTIFICATE", apf["tls-server-cert"])

    def test_skip_verify_with_ca_file_refused(self):
        env = self.env
        pki = make_pki(os.path.join(env.dir, "pki"))
        d = env.daemon("-ca-cert-file", pki["ca.crt"], "-tls-skip-verify", ready=False)
        d.wait_exit()
        self.assertNotEqual(d.proc.returncode, 0)
        self.assertIn("insecure", d.log())
        self.assertFalse(os.path.exists(env.sock))

    def test_forwarder_with_wrong_name_refused(self):
        """Manual mode, but the VM's certificate is for another name: the adaptor never
        connects, StartVM fails and the VM is deleted."""
        env = self.env
        pki = make_pki(os.path.join(env.dir, "pki"), server_name="someone-else")
        fwd_args = "-cert-file %s -cert-key %s -ca-cert-file %s" % (
            pki["server.crt"], pki["server.key"], pki["ca.crt"])
        env.daemon("-ca-cert-file", pki["ca.crt"], "-cert-file", pki["client.crt"],
                   "-cert-key", pki["client.key"], "-proxy-timeout", "2s",
                   env={"LOCAL_FORWARDER_ARGS": fwd_args})
        s = sid(3)
        env.create(s)
        r = env.start(s, expect=1)
        self.assertIn("podvm-server", r.err)
        self.assertEqual(env.instances(), [])
        env.stop(s)


if __name__ == "__main__":
    main()
