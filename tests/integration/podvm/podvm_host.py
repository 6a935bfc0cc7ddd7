"""A private libvirt host for the pod VM test, demo and benchmark: libvirtd and virtlogd (no
systemd) inside a network namespace this module creates, with a libvirt network whose bridge,
dnsmasq and addresses exist only there, a directory storage pool and a tiny base volume.

One idea: everything libvirt would share with the machine is made private. The network
namespace `ppvm-<pid>` holds the bridge, dnsmasq and the guests' addresses; a mount namespace
(unshare -m) gives libvirtd and virtlogd their own /etc/libvirt (qemu.conf with user = "root",
no cgroups, no security driver), /run/libvirt, /var/lib/libvirt and /var/log/libvirt, all under
the host's directory; only /var/cache/libvirt (QEMU's capabilities, 8-12 s to probe cold) is a
persistent cache shared between runs. A PID namespace whose init is pid1.py reaps QEMU at once
(virDomainDestroy waits for that) and takes every process of the host with it when it ends.
The libvirt socket is a file in that directory, reached with `qemu:///system?socket=...` from
any namespace; whatever talks to a guest address must run in the namespace (`netns_cmd`). No
packet leaves it (podvm-boot-notes.md, "Network rule").

`LibvirtHost.down()` undoes everything in reverse order and returns what it had to clean up by
force; `leftovers()` lists processes still in the namespace (libvirtd, virtlogd, dnsmasq, qemu).
"""
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = "/usr/bin/qemu-system-x86_64"
LIBVIRTD = "/usr/sbin/libvirtd"
VIRTLOGD = "/usr/sbin/virtlogd"

NET_NAME = "ppvm-net"
POOL_NAME = "ppvm-pool"
BASE_VOLUME = "podvm-base.qcow2"
SUBNET = "192.168.123"            # exists only inside the namespace

NETWORK_XML = """<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>%(name)s</name>
  <bridge name='%(bridge)s' stp='off' delay='0'/>
  <ip address='%(subnet)s.1' netmask='255.255.255.0'>
    <dhcp><range start='%(subnet)s.10' end='%(subnet)s.250'/></dhcp>
  </ip>
  <dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options>
</network>
"""

LIBVIRTD_CONF = """# private libvirtd for the pod VM tests (podvm_host.py)
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:stderr"
"""

# user/group root: the libvirt-qemu user cannot open /dev/kvm here, and libvirt then re-probes
# QEMU on every domain start (+4 s); no cgroups (ip netns exec remounts /sys without them), no
# security driver, no per-domain /dev namespace.
QEMU_CONF = """# private qemu.conf for the pod VM tests (podvm_host.py)
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
"""

VIRTLOGD_CONF = 'log_outputs = "3:stderr"\n'


def missing_packages():
    """What this machine lacks to run a real libvirt host (Debian package names)."""
    need = [(QEMU, "qemu-system-x86"), (LIBVIRTD, "libvirt-daemon-system"),
            (VIRTLOGD, "libvirt-daemon-system"), ("/usr/bin/virsh", "libvirt-clients"),
            ("/usr/sbin/dnsmasq", "dnsmasq-base"), ("/usr/bin/qemu-img", "qemu-utils"),
            ("/bin/busybox", "busybox-static"), ("/usr/bin/cpio", "cpio"),
            ("/sbin/ip", "iproute2"), ("/usr/bin/unshare", "util-linux")]
    drivers = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"
    out = sorted({pkg for path, pkg in need if not os.path.exists(path)})
    if not os.path.exists(drivers) and "libvirt-daemon-system" not in out:
        out.append("libvirt-daemon-driver-qemu")
    return out


def _run(cmd, timeout=60, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def _netns_inode(name):
    try:
        return os.stat("/run/netns/" + name).st_ino
    except OSError:
        return None


def procs_in_netns(inode):
    """[(pid, comm)] of the processes whose network namespace is inode."""
    found = []
    if not inode:
        return found
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % d).st_ino != inode:
                continue
            with open("/proc/%s/comm" % d) as f:
                found.append((int(d), f.read().strip()))
        except OSError:
            continue
    return found


def make_workdir():
    """A short directory for one host (the libvirt socket path must stay short), named after
    this process so that reap_stale can tell whether its owner is gone."""
    return tempfile.mkdtemp(prefix="ppvm.%d." % os.getpid(), dir="/tmp")


def reap_stale():
    """Removes what an earlier run that was killed (a test timeout's SIGKILL) left behind: the
    namespaces ppvm-<pid> and directories /tmp/ppvm.<pid>.* of processes that no longer exist,
    and every process still in such a namespace. Returns what was removed."""
    removed = []
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for n in names:
        tag = n[len("ppvm-"):]
        if not n.startswith("ppvm-") or not tag.isdigit() or os.path.exists("/proc/" + tag):
            continue
        for pid, comm in procs_in_netns(_netns_inode(n)):
            try:
                os.kill(pid, signal.SIGKILL)
                removed.append("process %d (%s)" % (pid, comm))
            except ProcessLookupError:
                pass
        _run(["ip", "netns", "del", n], check=False)
        removed.append("netns " + n)
    for d in os.listdir("/tmp"):
        parts = d.split(".")
        if len(parts) == 3 and parts[0] == "ppvm" and parts[1].isdigit() and \
                not os.path.exists("/proc/" + parts[1]):
            shutil.rmtree(os.path.join("/tmp", d), ignore_errors=True)
            removed.append("dir /tmp/" + d)
    return removed


class LibvirtHost:
    """libvirtd + virtlogd + a network + a pool, private to one directory and one namespace."""

    def __init__(self, workdir, cache_dir, tag=None):
        self.dir = workdir
        self.cache = cache_dir
        self.tag = tag or str(os.getpid())
        self.netns = "ppvm-" + self.tag
        self.bridge = ("ppbr" + self.tag)[:15]
        self.sock = os.path.join(self.dir, "run", "libvirt-sock")
        self.uri = "qemu:///system?socket=" + self.sock
        self.pool_dir = os.path.join(self.dir, "pool")
        self.console_dir = os.path.join(self.dir, "console")
        self.libvirtd = None
        self.netns_inode = None
        self.timings = {}

    # ---- commands
    def netns_cmd(self, cmd):
        """cmd run inside the namespace."""
        return ["ip", "netns", "exec", self.netns] + list(cmd)

    def virsh(self, *args, check=True, timeout=60):
        return _run(["virsh", "-q", "-c", self.uri] + list(args), check=check, timeout=timeout)

    # ---- up
    def _write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def _layout(self):
        for d in ("etc/qemu", "run", "lib", "log", "pool", "console"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.makedirs(self.cache, exist_ok=True)
        self._write("etc/libvirtd.conf", LIBVIRTD_CONF)
        self._write("etc/qemu.conf", QEMU_CONF)
        self._write("etc/virtlogd.conf", VIRTLOGD_CONF)
        self._write("etc/libvirt.conf", "")
        self._write("net.xml", NETWORK_XML % {"name": NET_NAME, "bridge": self.bridge, "subnet": SUBNET})

    def _start_daemons(self):
        """pid1.py as PID 1 of a new PID and mount namespace inside the network namespace; the
        shell before it bind-mounts the private directories over libvirt's."""
        d = self.dir
        binds = [("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
                 ("log", "/var/log/libvirt")]
        script = ["set -e"]
        for src, dst in binds:
            script.append("mkdir -p %s && mount --bind %s/%s %s" % (dst, d, src, dst))
        script.append("mkdir -p /var/cache/libvirt && mount --bind %s /var/cache/libvirt" % self.cache)
        script.append('exec "$@"')
        # (the pid files go to the private /run/libvirt: their defaults, /run/libvirtd.pid and
        # /run/virtlogd.pid, are shared with any other host running at the same time)
        argv = [sys.executable, os.path.join(HERE, "pid1.py"), d, "--",
                VIRTLOGD, "-f", "/etc/libvirt/virtlogd.conf", "-p", "/run/libvirt/virtlogd.pid", "--",
                LIBVIRTD, "-f", "/etc/libvirt/libvirtd.conf", "-p", "/run/libvirt/libvirtd.pid"]
        with open(os.path.join(d, "pid1.log"), "w") as err:
            self.libvirtd = subprocess.Popen(
                self.netns_cmd(["unshare", "-m", "--propagation", "private", "-p", "--fork",
                                "--kill-child=SIGTERM", "--mount-proc",
                                "sh", "-c", "\n".join(script), "sh"] + argv),
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.libvirtd.poll() is not None:
                raise RuntimeError("libvirtd exited with %d:\n%s" % (self.libvirtd.returncode, self.log()))
            if os.path.exists(self.sock) and self.virsh("version", check=False, timeout=30).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not answer within 60 s:\n" + self.log())
            time.sleep(0.05)

    def up(self):
        """Creates the namespace, starts the daemons, creates the network and the pool."""
        t0 = time.monotonic()
        self._layout()
        _run(["ip", "netns", "add", self.netns])
        self.netns_inode = _netns_inode(self.netns)
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        self._start_daemons()
        t1 = time.monotonic()
        self.virsh("net-create", os.path.join(self.dir, "net.xml"))
        self.virsh("pool-create-as", POOL_NAME, "dir", "--target", self.pool_dir)
        self.virsh("vol-create-as", POOL_NAME, BASE_VOLUME, "1M", "--format", "qcow2")
        t2 = time.monotonic()
        self.timings = {"libvirtd_ms": int((t1 - t0) * 1000), "network_pool_ms": int((t2 - t1) * 1000)}
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "libvirtd.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # ---- state, for assertions
    def domains(self):
        return [l.strip() for l in self.virsh("list", "--all", "--name").stdout.splitlines() if l.strip()]

    def volumes(self):
        self.virsh("pool-refresh", POOL_NAME, check=False)
        return sorted(l.split()[0] for l in self.virsh("vol-list", POOL_NAME).stdout.splitlines()
                      if l.strip())

    def networks(self):
        return [l.strip() for l in self.virsh("net-list", "--all", "--name").stdout.splitlines() if l.strip()]

    def console_log(self, name):
        try:
            with open(os.path.join(self.console_dir, name + "-console.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def leftovers(self):
        """Processes still in the namespace: [(pid, comm)]."""
        return procs_in_netns(self.netns_inode)

    # ---- down
    @staticmethod
    def _child_of(pid):
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return 0
        return int(kids[0]) if kids else 0

    def _alive(self, pid):
        return any(p == pid for p, _ in self.leftovers())

    def _stop(self, pid, proc=None, timeout=10):
        """SIGTERM, then SIGKILL, to a process of ours (checked: it is in our namespace)."""
        if pid <= 1 or not self._alive(pid):
            if proc is not None:
                proc.poll()
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            if proc is None and not self._alive(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc is not None:
            proc.wait(10)

    def down(self):
        """Tears everything down; returns a list of what had to be removed by force."""
        forced = []
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            for dom in self.domains():
                forced.append("domain " + dom)
                self.virsh("destroy", dom, check=False)
                self.virsh("undefine", dom, "--nvram", check=False)
            for net in self.networks():
                self.virsh("net-destroy", net, check=False)     # stops its dnsmasq
            self.virsh("pool-destroy", POOL_NAME, check=False)
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            # pid1.py (unshare's child) stops libvirtd, then virtlogd; unshare exits after it
            pid1 = self._child_of(self.libvirtd.pid)
            self._stop(pid1 or self.libvirtd.pid, None, timeout=20)
            self._stop(self.libvirtd.pid, self.libvirtd, timeout=5)
        for pid, comm in self.leftovers():
            forced.append("process %d (%s)" % (pid, comm))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        if _netns_inode(self.netns):
            _run(["ip", "netns", "del", self.netns], check=False)
        return forced

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- reading the daemon's log and the VM's console (test, demo, bench)

# /init's console lines (podvm/init), in boot order
CONSOLE_MARKS = {"init": "podvm: init started", "modules": "podvm: modules loaded",
                 "cidata": "podvm: cidata mounted", "userdata": "podvm: user-data provisioned",
                 "network": "podvm: network up", "agent": "podvm: agent started",
                 "ready": "PODVM READY"}


def log_time(line):
    """The time= of a logfmt line, in seconds since the epoch (UTC); None when absent."""
    m = re.search(r"time=(\S+)", line or "")
    if not m:
        return None
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def log_line(log, msg, key=None, value=None):
    """The first line of log with msg (and key=value, when given)."""
    for line in log.splitlines():
        if 'msg="%s"' % msg in line and (key is None or "%s=%s" % (key, value) in line):
            return line
    return None


def log_fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line or ""))


class ConsoleWatch(threading.Thread):
    """Polls a console log file every 5 ms and notes, for each of CONSOLE_MARKS, the host time
    it first appeared (`seen`) and the guest's own uptime printed with it (`guest`)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.seen, self.guest, self.stop = path, {}, {}, False

    def run(self):
        while not self.stop and "ready" not in self.seen:
            try:
                with open(self.path, errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
            now = time.time()
            for k, mark in CONSOLE_MARKS.items():
                if k not in self.seen and mark in text:
                    self.seen[k] = now
                    m = re.search(re.escape(mark) + r"[^\n]* t=([0-9.]+)", text)
                    if m:
                        self.guest[k] = float(m.group(1))
            time.sleep(0.005)
