#!/usr/bin/env python3
"""Operating the daemon: configuration sources, start-up refusals, graceful SIGTERM (the pods keep
running and come back with the next start), and systemd's NOTIFY_SOCKET."""
import os
import signal
import socket
import unittest

import pptest
from pptest import Env, sid, wait_for


def print_config(env, *args, extra_env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("PROXY_TIMEOUT", "OWNER_ID", "CLOUD_API_ADAPTOR_CONFIG")}
    e.update(extra_env or {})
    r = env.adaptor("local", *args, "-print-config", env=e)
    if r.rc != 0:
        raise AssertionError(r)
    cfg = {}
    for line in r.out.splitlines():
        key, _, rest = line.partition("=")
        value, _, source = rest.partition(" # ")
        cfg[key] = (value, source.strip())
    return cfg


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)
        self.conf = os.path.join(self.env.dir, "local.conf")
        with open(self.conf, "w") as f:
            f.write("# peer-pods-cm style\n"
                    "PROXY_TIMEOUT=3m\n"
                    "OWNER_ID=from-file\n"
                    "REAPER_GRACE=1m\n"
                    "PODS_DIR=%s\n"
                    "REMOTE_HYPERVISOR_ENDPOINT=%s\n"
                    "STATE_DIR=%s\n"
                    "FORWARDER_PORT=%d\n" % (self.env.pods, self.env.sock, self.env.state, self.env.port))

    def test_file_then_env_then_flag(self):
        env = self.env
        cfg = print_config(env, "-config-file", self.conf)
        self.assertEqual(cfg["PROXY_TIMEOUT"], ("3m", "file"))
        self.assertEqual(cfg["OWNER_ID"], ("from-file", "file"))
        self.assertEqual(cfg["WORKERS"][1], "default")
        cfg = print_config(env, "-config-file", self.conf, extra_env={"PROXY_TIMEOUT": "2m"})
        self.assertEqual(cfg["PROXY_TIMEOUT"], ("2m", "env"))
        cfg = print_config(env, "-config-file", self.conf, "-proxy-timeout", "7s",
                           extra_env={"PROXY_TIMEOUT": "2m"})
        self.assertEqual(cfg["PROXY_TIMEOUT"], ("7s", "flag"))
        self.assertEqual(cfg["REAPER_GRACE"], ("1m", "file"))
        # the file can also be named by the environment
        cfg = print_config(env, extra_env={"CLOUD_API_ADAPTOR_CONFIG": self.conf})
        self.assertEqual(cfg["OWNER_ID"], ("from-file", "file"))

    def test_print_config_does_not_start_anything(self):
        env = self.env
        print_config(env, "-config-file", self.conf)
        self.assertFalse(os.path.exists(env.sock))
        self.assertFalse(os.path.exists(env.state))

    def test_daemon_honours_the_file_and_a_flag_beats_it(self):
        """Socket, pods dir, state dir and owner come from the file; -owner-id overrides."""
        env = self.env
        d = env.daemon("-config-file", self.conf, "-owner-id", "from-flag", base=False)
        self.assertIn("owner=from-flag", d.log())
        self.assertIn("socket=%s" % env.sock, d.log())
        s = sid(1)
        env.create(s)
        env.start(s)
        name = env.instances()[0]
        self.assertEqual(env.meta(name)["owner"], "from-flag")
        self.assertTrue(os.path.exists(env.agent_sock(s)))
        self.assertTrue(env.meta(name)["ip"].startswith("127."))
        env.stop(s)
        env.assert_nothing_left()

    def test_missing_config_file_is_an_error(self):
        r = self.env.adaptor("local", "-config-file", os.path.join(self.env.dir, "nope.conf"),
                             "-print-config")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("nope.conf", r.err)

    def test_bad_line_in_config_file(self):
        with open(self.conf, "a") as f:
            f.write("WORKERS=many\n")
        r = self.env.adaptor("local", "-config-file", self.conf, "-print-config")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("WORKERS", r.err)


class StartupTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)

    def refused(self, *args, base=True):
        env = self.env
        d = env.daemon(*args, ready=False, base=base)
        rc = d.wait_exit(15)
        self.assertEqual(rc, 1, d.log())
        self.assertFalse(os.path.exists(env.sock), "no socket may be left by a refused start")
        return d.log()

    def test_pods_dir_too_long(self):
        env = self.env
        long_pods = os.path.join(env.dir, "p" * 40)
        log = self.refused("-socket", env.sock, "-pods-dir", long_pods, "-state-dir", env.state,
                           "-owner-id", "node-a", base=False)
        self.assertIn("PODS_DIR", log)
        self.assertIn("too long", log)
        self.assertIn(long_pods, log)

    def test_pods_dir_length_boundary(self):
        """<pods-dir>/<64 hex>/agent.ttrpc must fit in 107 bytes: a 30-character pods dir is the
        longest that works (and a 64-character sandbox id then really runs), 31 is refused."""
        env = self.env
        ok = env.dir + "/" + "q" * (30 - len(env.dir) - 1)
        self.assertEqual(len(ok), 30)
        d = env.daemon("-pods-dir", ok)
        s = sid(1, 64)
        r = env.create(s)
        self.assertIn("agentSocketPath=%s/%s/agent.ttrpc" % (ok, s), r.out)
        env.start(s)
        self.assertIn("status=SERVING", env.shim("agent", "health", sock="%s/%s/agent.ttrpc" % (ok, s)).out)
        env.remember_all()
        env.stop(s)
        self.assertEqual(d.term(), 0)
        log = self.refused("-pods-dir", ok + "q")
        self.assertIn("PODS_DIR", log)

    def test_unknown_provider(self):
        r = self.env.adaptor("nope", "-socket", self.env.sock)
        self.assertEqual(r.rc, 1, r)
        self.assertIn('unknown provider "nope"', r.err)
        self.assertIn("providers: local", r.err)
        self.assertFalse(os.path.exists(self.env.sock))

    def test_unknown_flag(self):
        r = self.env.adaptor("local", "-no-such-flag", "1")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("no-such-flag", r.err)

    def test_bad_forwarder_port(self):
        log = self.refused("-forwarder-port", "99999")
        self.assertIn("FORWARDER_PORT", log)

    def test_bad_log_level(self):
        log = self.refused("-log-level", "chatty")
        self.assertIn("LOG_LEVEL", log)

    def test_help_lists_flags_and_exits_0(self):
        r = self.env.adaptor("local", "-help")
        self.assertEqual(r.rc, 0, r)
        for flag in ("-socket", "-pods-dir", "-state-dir", "-owner-id", "-reaper-grace"):
            self.assertIn(flag, r.out)

    def test_version(self):
        r = self.env.adaptor("version")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("cloud-api-adaptor", r.out)


class ShutdownTest(unittest.TestCase):
    def setUp(self):
        self.env = Env(self)

    def test_sigterm_leaves_pods_running_and_the_next_start_restores_them(self):
        env = self.env
        d = env.daemon()
        ids = [sid(1), sid(2)]
        for i, s in enumerate(ids):
            env.create(s, pod="p%d" % i)
            env.start(s)
        env.remember_all()
        metas = dict(env.metas)
        self.assertTrue(os.path.exists(env.sock))
        rc = d.term()
        self.assertEqual(rc, 0, d.log())
        self.assertIn('msg="stopped"', d.log())
        self.assertFalse(os.path.exists(env.sock), "the hypervisor socket must be removed")
        for m in metas.values():
            env.assert_procs_alive(m)
        self.assertEqual(sorted(r["state"] for r in env.ls()), ["running", "running"])
        self.assertEqual(sorted(env.instances()), sorted(metas))

        env.daemon()
        for s in ids:
            wait_for(lambda: env.agent(s, "health", expect=None).rc == 0, 10, "%s health" % s)
        for m in metas.values():
            env.assert_procs_alive(m)         # restored, not recreated
        for s in ids:
            env.stop(s)
        env.assert_nothing_left(list(metas.values()))

    def test_sigterm_while_idle(self):
        env = self.env
        d = env.daemon()
        self.assertEqual(d.term(), 0, d.log())
        self.assertFalse(os.path.exists(env.sock))
        self.assertEqual(env.ls(), [])

    def test_sigint_is_graceful_too(self):
        env = self.env
        d = env.daemon()
        os.kill(d.pid, signal.SIGINT)
        self.assertEqual(d.wait_exit(15), 0, d.log())
        self.assertIn('msg="stopped"', d.log())
        self.assertFalse(os.path.exists(env.sock))


class FilesTest(unittest.TestCase):
    def test_private_state_is_private(self):
        """TLS keys and the pods' user-data (which carries the forwarder's config and initdata)
        are readable by root only; the state dir is not listable by others."""
        env = Env(self)
        env.daemon()
        s = sid(1)
        env.create(s)
        env.start(s)
        env.remember_all()
        mode = lambda p: os.stat(p).st_mode & 0o777
        self.assertEqual(mode(env.state) & 0o077, 0, oct(mode(env.state)))
        keys = [f for f in os.listdir(os.path.join(env.state, "tls")) if f.endswith(".key")]
        self.assertTrue(keys)
        for k in keys:
            self.assertEqual(mode(os.path.join(env.state, "tls", k)), 0o600, k)
        ud = os.path.join(env.state, "user-data")
        for f in os.listdir(ud):
            self.assertEqual(mode(os.path.join(ud, f)) & 0o077, 0, f)
        name = env.instances()[0]
        self.assertEqual(mode(os.path.join(env.local_root(), name, "cidata", "user-data")) & 0o077, 0)
        env.stop(s)
        self.assertEqual(os.listdir(ud), [], "the user-data of a stopped pod is removed")
        env.assert_nothing_left()


class NotifyTest(unittest.TestCase):
    def test_ready_then_stopping(self):
        env = Env(self)
        path = os.path.join(env.dir, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(path)
        s.settimeout(15)
        d = env.daemon(env={"NOTIFY_SOCKET": path}, ready=False)
        msg = s.recv(4096).decode()
        self.assertIn("READY=1", msg)
        # READY means ready: the hypervisor socket answers at once
        self.assertIn("version=0.0.0", env.shim("version").out)
        os.kill(d.pid, signal.SIGTERM)
        msg = s.recv(4096).decode()
        self.assertIn("STOPPING=1", msg)
        self.assertEqual(d.wait_exit(15), 0, d.log())

    def test_abstract_notify_socket(self):
        env = Env(self)
        name = "\0pp-notify-%d" % os.getpid()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(name)
        s.settimeout(15)
        d = env.daemon(env={"NOTIFY_SOCKET": "@" + name[1:]}, ready=False)
        self.assertIn("READY=1", s.recv(4096).decode())
        self.assertEqual(d.term(), 0)


if __name__ == "__main__":
    pptest.main()
