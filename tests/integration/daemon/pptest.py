"""Harness for the daemon's integration tests: real binaries, real sockets, the `local` provider.

One idea: every test owns one fresh directory /tmp/ppit.XXXXXXXX (short, because a unix socket
path holds 107 bytes) holding the hypervisor socket, the pods dir, the state dir and
the logs, and everything the test started can be found from it again: daemons by the handle the
test keeps, instances by the meta.json files (pids + start times) seen during the test, and, as a
last resort, any process whose command line names that unique directory. `Env.cleanup` (added with
addCleanup, so it runs on failure too) stops them all, checks the logs for sanitizer reports and
removes the directory. Each Env also picks a free TCP port (bound with port 0 and read back)
as FORWARDER_PORT, so that instances of tests running in parallel, and of a demo, never collide
on 127.77.0.1:15150.

Usage: python3 test_x.py <bin-dir> [unittest args]   (or PP_BIN_DIR=<bin-dir>)
PP_IT_KEEP=1 keeps the temporary directories for inspection.
"""
import json
import os
import signal
import socket
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("PP_BIN_DIR", "")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer")


def main():
    global BIN
    if len(sys.argv) > 1 and os.path.isdir(sys.argv[1]):
        BIN = os.path.abspath(sys.argv.pop(1))
    if not BIN or not os.access(os.path.join(BIN, "cloud-api-adaptor"), os.X_OK):
        sys.stderr.write("usage: %s <bin-dir holding cloud-api-adaptor> [unittest args]\n" % sys.argv[0])
        sys.exit(2)
    unittest.main(verbosity=2)


def bin_path(name):
    return os.path.join(BIN, name)


def free_port():
    """A TCP port nobody listens on now (bound on loopback with port 0 and read back)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def sid(n, width=16):
    """A sandbox id like the shim's (hex), distinct per n in its first 8 characters (which go
    into the instance name)."""
    return (("%04xbeef" % n) + "0123456789abcdef" * 4)[:width]


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, pgrp, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field 5 pgrp -> rest[2]; field 22 starttime -> rest[19]
    return rest[0], int(rest[2]), int(rest[19])


def proc_alive(pid, start=0):
    """True if pid runs (not a zombie) and, when start is given, is the process that started then."""
    if not pid or pid <= 1:
        return False
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X", "x"):
        return False
    return start == 0 or st[2] == start


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until true; returns its value or raises AssertionError naming what."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Result:
    def __init__(self, cmd, rc, out, err):
        self.cmd, self.rc, self.out, self.err = cmd, rc, out, err

    @property
    def text(self):
        return self.out + self.err

    def __repr__(self):
        return "%s -> rc=%d\nstdout: %s\nstderr: %s" % (" ".join(self.cmd), self.rc, self.out, self.err)


def run(cmd, timeout=60, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return Result(cmd, p.returncode, p.stdout, p.stderr)


# ---------------------------------------------------------------- daemon

class Daemon:
    """One cloud-api-adaptor process, in its own session, logging to its own file."""

    def __init__(self, env, args, extra_env, name):
        self.env = env
        self.log_path = os.path.join(env.dir, name + ".log")
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("PP_TEST_CRASH_AT", "NOTIFY_SOCKET", "CLOUD_API_ADAPTOR_CONFIG")}
        environ.update(extra_env or {})
        self.cmd = [bin_path("cloud-api-adaptor")] + list(args)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=environ,
                                         start_new_session=True)
        self.pid = self.proc.pid

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=20):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %d before ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            return 'msg="ready"' in self.log()
        wait_for(ready, timeout, "the daemon to log ready")
        return self

    def wait_exit(self, timeout=20):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon %d did not exit within %ss:\n%s" % (self.pid, timeout, self.log()))

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def term(self, timeout=20):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        return self.wait_exit(timeout)

    def stop_any_way(self):
        if self.proc.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            # Still ours (not reaped): its process group is its own (start_new_session).
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


# ---------------------------------------------------------------- environment

class Env:
    """A temporary directory with a daemon's socket, pods dir and state dir, and helpers."""

    def __init__(self, tc, owner="node-a"):
        self.tc = tc
        # Short (socket paths), and not /tmp/pp.* which other tools create and clean up.
        self.dir = tempfile.mkdtemp(prefix="ppit.", dir="/tmp")
        self.sock = os.path.join(self.dir, "hv.sock")
        self.pods = os.path.join(self.dir, "pods")
        self.state = os.path.join(self.dir, "state")
        self.owner = owner
        self.port = free_port()       # every instance's forwarder listens on 127.77.x.y:<port>
        self.daemons = []
        self.metas = {}               # instance name -> last meta.json seen
        self.instance_reports = []    # sanitizer reports read from instances' consoles
        self._lock = threading.Lock()
        tc.addCleanup(self.cleanup)

    # -- daemon
    def base_args(self):
        return ["-socket", self.sock, "-pods-dir", self.pods, "-state-dir", self.state,
                "-owner-id", self.owner, "-forwarder-port", str(self.port)]

    def daemon(self, *extra, env=None, ready=True, provider="local", base=True):
        args = [provider] + (self.base_args() if base else []) + list(extra)
        d = Daemon(self, args, env, "daemon%d" % len(self.daemons))
        self.daemons.append(d)
        if ready:
            d.wait_ready()
        return d

    def adaptor(self, *args, timeout=60, env=None):
        """A one-shot cloud-api-adaptor command (ls, gc, -help, -print-config...)."""
        return run([bin_path("cloud-api-adaptor")] + list(args), timeout=timeout, env=env)

    # -- shim
    def shim(self, *args, sock=None, timeout=None, expect=0, proc_timeout=120):
        cmd = [bin_path("shim-client"), "-socket", sock or self.sock]
        if timeout:
            cmd += ["-timeout", timeout]
        r = run(cmd + list(args), timeout=proc_timeout)
        if expect is not None and r.rc != expect:
            raise AssertionError("expected exit %d: %r" % (expect, r))
        return r

    def create(self, sandbox, pod="nginx", namespace="default", extra=(), expect=0):
        args = ["create", "-sandbox-id", sandbox]
        if pod is not None:
            args += ["-pod", pod]
        if namespace is not None:
            args += ["-namespace", namespace]
        return self.shim(*(args + list(extra)), expect=expect)

    def start(self, sandbox, timeout="30s", expect=0):
        return self.shim("start", "-sandbox-id", sandbox, timeout=timeout, expect=expect)

    def stop(self, sandbox, timeout=None, expect=0):
        """StopVM. The instance's console.log is held open across the stop, so that what its
        processes print while exiting (sanitizer reports) is still read after the directory
        went away."""
        consoles = []
        for n in self.instances():
            try:
                if self.meta(n).get("sandbox_id") == sandbox:
                    consoles.append(open(os.path.join(self.local_root(), n, "console.log"),
                                         errors="replace"))
            except (OSError, ValueError):
                pass
        try:
            r = self.shim("stop", "-sandbox-id", sandbox, timeout=timeout, expect=expect)
        finally:
            for f in consoles:
                text = f.read()
                f.close()
                if any(m in text for m in SANITIZER_MARKS):
                    with self._lock:
                        self.instance_reports.append("console of %s's instance:\n%s"
                                                     % (sandbox, text[-6000:]))
        return r

    def agent_sock(self, sandbox):
        return os.path.join(self.pods, sandbox, "agent.ttrpc")

    def agent(self, sandbox, *args, expect=0, timeout="10s"):
        return self.shim("agent", *args, sock=self.agent_sock(sandbox), expect=expect, timeout=timeout)

    # -- state
    def ls(self):
        """Rows of `cloud-api-adaptor ls` as dicts; checks the closing count line."""
        r = self.adaptor("ls", "-state-dir", self.state)
        if r.rc != 0:
            raise AssertionError("ls failed: %r" % r)
        lines = [l for l in r.out.splitlines() if l.strip()]
        assert lines[0].split()[:3] == ["SANDBOX", "POD", "STATE"], r.out
        rows = []
        for l in lines[1:-1]:
            f = l.split()
            rows.append({"sandbox": f[0], "pod": f[1], "state": f[2], "instance": f[3],
                         "id": f[4], "ip": f[5], "line": " ".join(f[:6] + f[7:])})   # without AGE
        n = int(lines[-1].split()[0])
        assert n == len(rows), r.out
        return rows

    def rows_by_sandbox(self):
        """ls rows by sandbox id as ls prints it (its first 16 characters)."""
        return {r["sandbox"]: r for r in self.ls()}

    def local_root(self, state=None):
        return os.path.join(state or self.state, "local")

    def instances(self, state=None):
        root = self.local_root(state)
        if not os.path.isdir(root):
            return []
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))

    def meta(self, name, state=None):
        with open(os.path.join(self.local_root(state), name, "meta.json")) as f:
            m = json.load(f)
        with self._lock:
            self.metas[name] = m
        return m

    def remember_all(self, state=None):
        """Reads every instance's meta.json so that cleanup can find its processes later."""
        for n in self.instances(state):
            try:
                self.meta(n, state)
            except (FileNotFoundError, ValueError):
                pass

    def agent_calls(self, name):
        path = os.path.join(self.local_root(), name, "agent-calls.jsonl")
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    @staticmethod
    def meta_procs(m):
        return [(m.get(k, {}).get("pid", 0), m.get(k, {}).get("start", 0)) for k in ("agent", "forwarder")]

    def assert_procs_gone(self, m, timeout=0.0):
        """Every process of the instance is gone or a zombie (init here may not reap orphans)."""
        def gone():
            return not any(proc_alive(p, s) for p, s in self.meta_procs(m))
        if timeout:
            wait_for(gone, timeout, "the processes of %s to exit" % m["name"])
        elif not gone():
            raise AssertionError("processes of %s still run: %s" % (m["name"], self.meta_procs(m)))

    def assert_procs_alive(self, m):
        for p, s in self.meta_procs(m):
            if not proc_alive(p, s):
                raise AssertionError("process %d of %s is not running" % (p, m["name"]))

    def assert_nothing_left(self, metas=()):
        """No row, no instance directory, no pods dir entry, no instance process."""
        rows = self.ls()
        if rows:
            raise AssertionError("rows left: %s" % [r["line"] for r in rows])
        left = self.instances()
        if left:
            raise AssertionError("instance directories left under %s: %s" % (self.local_root(), left))
        if os.path.isdir(self.pods) and os.listdir(self.pods):
            raise AssertionError("pods dir entries left: %s" % os.listdir(self.pods))
        for m in metas or list(self.metas.values()):
            self.assert_procs_gone(m, timeout=5)

    # -- cleanup
    def _kill_instance_procs(self, m):
        """SIGKILL to the instance's processes (and group) that are provably still its own;
        returns the (pid, start) pairs signalled."""
        killed = []
        for pid, start in self.meta_procs(m):
            st = proc_stat(pid) if pid > 1 else None
            if st is None or st[0] == "Z" or (start and st[2] != start):
                continue
            killed.append((pid, start))
            pgid = m.get("pgid", 0)
            if pgid > 1 and st[1] == pgid:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return killed

    def _kill_strays(self):
        """Any process whose command line names this test's unique directory is one it started."""
        mark = (self.dir + "/").encode()
        me = os.getpid()
        killed = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            st = proc_stat(int(d))
            if mark in cmd and st and st[0] != "Z":
                try:
                    os.kill(int(d), signal.SIGKILL)
                    killed.append(cmd.replace(b"\0", b" ").decode(errors="replace")[:200])
                except ProcessLookupError:
                    pass
        return killed

    def sanitizer_reports(self):
        found = list(self.instance_reports)
        paths = [d.log_path for d in self.daemons]
        root = self.local_root()
        for n in self.instances():
            paths.append(os.path.join(root, n, "console.log"))
        for p in paths:
            try:
                with open(p, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if any(m in text for m in SANITIZER_MARKS):
                found.append("%s:\n%s" % (p, text[-6000:]))
        return found

    def cleanup(self):
        for d in self.daemons:
            d.stop_any_way()
        self.remember_all()
        reports = self.sanitizer_reports()
        killed = []
        for m in list(self.metas.values()):
            killed += self._kill_instance_procs(m)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(proc_alive(p, s) for p, s in killed):
            time.sleep(0.02)
        strays = self._kill_strays()
        if os.environ.get("PP_IT_KEEP"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))
        if strays:
            sys.stderr.write("note: killed stray processes: %s\n" % strays)


def delete_rows(state_dir, sandbox_ids):
    """Loses rows the way a wiped or restored state.db would (only while no daemon runs)."""
    db = sqlite3.connect(os.path.join(state_dir, "state.db"))
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(sandboxes)")]
        assert "sandbox_id" in cols, cols
        for s in sandbox_ids:
            n = db.execute("DELETE FROM sandboxes WHERE sandbox_id = ?", (s,)).rowcount
            assert n == 1, "no row for %s" % s
        db.commit()
    finally:
        db.close()


def parallel(fn, items, max_threads=100):
    """Runs fn(item) on threads; returns the list of exceptions raised (empty when all passed)."""
    errors = []
    lock = threading.Lock()
    it = iter(list(items))

    def worker():
        while True:
            with lock:
                try:
                    x = next(it)
                except StopIteration:
                    return
            try:
                fn(x)
            except Exception as e:  # noqa: BLE001 - collected and reported by the caller
                with lock:
                    errors.append("%s: %s" % (x, e))

    threads = [threading.Thread(target=worker) for _ in range(min(max_threads, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
