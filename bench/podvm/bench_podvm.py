#!/usr/bin/env python3
"""Pod start on libvirt with a real VM (QEMU TCG), and the daemon's cost over N lifecycles.

    bench/podvm/bench_podvm.py [--build DIR] [-n 10] [--json FILE]

Runs the pod VM of podvm/build.sh on the private libvirt host of the end-to-end test
(tests/integration/podvm/podvm_host.py: libvirtd inside a network namespace it creates, nothing
leaves it) with cloud-api-adaptor on the libvirt provider (mutual TLS), then N times:
CreateVM, StartVM, one agent call (Check) through the proxy, StopVM. For each pod it reports

  start      CreateVM sent -> StartVM returned (what the shim waits for)
  volumes    root volume + cidata ISO built and uploaded (upload: the ISO upload alone)
  define     domain XML built + virDomainDefineXML
  create     virDomainCreate (QEMU started)
  boot       QEMU started -> "PODVM READY" on the console (the forwarder listens)
  ip         virDomainCreate returned -> DHCP lease seen by the provider
  connect    forwarder listening -> the adaptor's proxy connected (dial cadence + mTLS)
  stop       StopVM sent -> returned (domain destroyed, volumes deleted)

with the guest's own timeline (seconds since its kernel started, from /init's console lines),
and the daemon's CPU time and RSS (VmRSS after each lifecycle, VmHWM at the end). The console
is watched every 5 ms from the host, so "boot" and "connect" are good to about 10 ms.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration", "podvm"))

import podvm_host  # noqa: E402
from podvm_host import ConsoleWatch, LibvirtHost, log_fields, log_line, log_time  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK          # utime + stime
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                rss = int(l.split()[1])
            elif l.startswith("VmHWM:"):
                hwm = int(l.split()[1])
    return cpu, rss, hwm


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    return "%6.0f %6.0f %6.0f" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build", "normal"),
                    help="build directory (its bin/ has the programs)")
    ap.add_argument("-n", type=int, default=10, help="lifecycles (default 10)")
    ap.add_argument("--json", help="write the raw figures here")
    a = ap.parse_args()
    bin_dir = os.path.join(os.path.abspath(a.build), "bin")
    if os.geteuid() != 0:
        sys.exit("bench_podvm: needs root (network namespaces, libvirtd)")
    missing = podvm_host.missing_packages()
    if missing:
        sys.exit("bench_podvm: install %s first" % " ".join(missing))

    t = time.monotonic()
    r = sh([os.path.join(REPO, "podvm", "build.sh"), "--bin-dir", bin_dir, "--quiet"])
    if r.returncode != 0:
        sys.exit("podvm/build.sh failed:\n" + r.stderr)
    pv = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    build_ms = (time.monotonic() - t) * 1000

    podvm_host.reap_stale()
    host = LibvirtHost(podvm_host.make_workdir(),
                       os.path.join(os.path.dirname(pv["PODVM_KERNEL"]), "libvirt-cache"))
    d = host.dir
    results, samples = [], []
    daemon = None
    try:
        host.up()
        args = [os.path.join(bin_dir, "cloud-api-adaptor"), "libvirt", "-socket", d + "/hv.sock",
                "-pods-dir", d + "/pods", "-state-dir", d + "/state", "-owner-id", "bench",
                "-uri", host.uri, "-pool-name", podvm_host.POOL_NAME,
                "-network-name", podvm_host.NET_NAME, "-vol-name", podvm_host.BASE_VOLUME,
                "-domain-type", "qemu", "-firmware", "", "-cpu", "1", "-memory", "384",
                "-kernel", pv["PODVM_KERNEL"], "-initrd", pv["PODVM_INITRD"],
                "-cmdline", pv["PODVM_CMDLINE"], "-console-log-dir", host.console_dir,
                "-ip-timeout", "90s", "-proxy-timeout", "60s", "-reaper=false"]
        log = open(d + "/daemon.log", "w")
        daemon = subprocess.Popen(host.netns_cmd(args), stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while 'msg="ready"' not in open(d + "/daemon.log").read():
            if daemon.poll() is not None or time.monotonic() > deadline:
                sys.exit("daemon did not start:\n" + open(d + "/daemon.log").read())
            time.sleep(0.02)
        shim = os.path.join(bin_dir, "shim-client")
        cpu0, rss0, _ = proc_cpu_rss(daemon.pid)
        libvirtd_pid = next(p for p, c in host.leftovers() if c == "libvirtd")
        libvirtd_cpu0 = proc_cpu_rss(libvirtd_pid)[0]
        for i in range(a.n):
            s = ("%04x" % (i + 1)) + "beef" + "0123456789abcdef" * 3 + "01234567"
            name = "podvm-bench-%s" % s[:8]
            watch = ConsoleWatch(os.path.join(host.console_dir, name + "-console.log"))
            watch.start()
            t0 = time.time()
            r = sh([shim, "-socket", d + "/hv.sock", "create", "-sandbox-id", s, "-pod", "bench",
                    "-namespace", "default"])
            t1 = time.time()
            r2 = sh([shim, "-socket", d + "/hv.sock", "-timeout", "120s", "start", "-sandbox-id", s])
            t2 = time.time()
            if r.returncode or r2.returncode:
                sys.exit("lifecycle %d failed: %s %s\ndaemon log:\n%s\nVM console:\n%s" % (
                    i, r.stderr, r2.stderr, open(d + "/daemon.log").read()[-2000:],
                    host.console_log(name)[-3000:]))
            r = sh([shim, "-socket", "%s/pods/%s/agent.ttrpc" % (d, s), "agent", "health"])
            t3 = time.time()
            r2 = sh([shim, "-socket", d + "/hv.sock", "stop", "-sandbox-id", s])
            t4 = time.time()
            watch.stop = True
            watch.join(1)
            if r.returncode or r2.returncode:
                sys.exit("lifecycle %d: agent call or stop failed: %s %s" % (i, r.stderr, r2.stderr))
            dlog = open(d + "/daemon.log").read()
            started = log_line(dlog, "libvirt domain started", "instance", name)
            f = log_fields(started)
            connected = log_line(dlog, "agent proxy connected", "socket", "%s/pods/%s/agent.ttrpc" % (d, s))
            qemu_up = log_time(started) - int(f.get("ip_ms", 0)) / 1000.0
            ready = watch.seen.get("ready")
            res = {
                "start_ms": (t2 - t0) * 1000, "create_call_ms": (t1 - t0) * 1000,
                "volumes_ms": int(f.get("volumes_ms", 0)), "upload_ms": int(f.get("upload_ms", 0)),
                "define_ms": int(f.get("define_ms", 0)), "domain_create_ms": int(f.get("start_ms", 0)),
                "ip_ms": int(f.get("ip_ms", 0)),
                "boot_ms": (ready - qemu_up) * 1000 if ready else None,
                "connect_ms": (log_time(connected) - ready) * 1000 if ready and connected else None,
                "agent_call_ms": (t3 - t2) * 1000, "stop_ms": (t4 - t3) * 1000,
                "guest": watch.guest,
            }
            results.append(res)
            cpu, rss, hwm = proc_cpu_rss(daemon.pid)
            samples.append({"cpu_s": cpu - cpu0, "rss_kib": rss, "hwm_kib": hwm})
            print("pod %2d: start %5.0f ms (volumes %d, define %d, create %d, ip %d, boot %s, connect %s) "
                  "stop %4.0f ms  daemon cpu %.2f s rss %d KiB" %
                  (i + 1, res["start_ms"], res["volumes_ms"], res["define_ms"], res["domain_create_ms"],
                   res["ip_ms"], "%.0f" % res["boot_ms"] if res["boot_ms"] else "-",
                   "%.0f" % res["connect_ms"] if res["connect_ms"] is not None else "-",
                   res["stop_ms"], cpu - cpu0, rss), flush=True)
        libvirtd_cpu = proc_cpu_rss(libvirtd_pid)[0] - libvirtd_cpu0
    finally:
        if daemon and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(30)
        forced = host.down()
        left = host.leftovers()
        host.remove_dir()
    if forced or left:
        print("WARNING: cleanup had to force %s; left %s" % (forced, left))

    print()
    print("pod start on libvirt (QEMU TCG, 1 vCPU, 384 MiB), %d pods; ms: median min max" % len(results))
    for k, label in (("start_ms", "CreateVM -> StartVM returned"), ("create_call_ms", "  CreateVM call"),
                     ("volumes_ms", "  volumes (root + cidata ISO)"), ("upload_ms", "    of which ISO upload"),
                     ("define_ms", "  define (XML + virDomainDefineXML)"),
                     ("domain_create_ms", "  virDomainCreate (QEMU up)"),
                     ("boot_ms", "  boot to forwarder listening"), ("ip_ms", "  (DHCP lease seen after)"),
                     ("connect_ms", "  forwarder listening -> proxy connected"),
                     ("agent_call_ms", "first agent call (shim process)"), ("stop_ms", "StopVM")):
        print("  %-42s %s" % (label, stats([r[k] for r in results])))
    print("guest timeline (s since its kernel started), median:")
    for k in ("init", "modules", "cidata", "userdata", "network", "agent", "ready"):
        vals = [r["guest"].get(k) for r in results if r["guest"].get(k) is not None]
        if vals:
            print("  %-10s %.2f" % (k, statistics.median(vals)))
    last = samples[-1] if samples else {"cpu_s": 0, "rss_kib": 0, "hwm_kib": 0}
    print("daemon over %d lifecycles: CPU %.2f s (%.0f ms per pod), RSS %d -> %d KiB, peak %d KiB; "
          "libvirtd CPU %.2f s" % (len(samples), last["cpu_s"], 1000 * last["cpu_s"] / max(1, len(samples)),
                                   rss0, last["rss_kib"], last["hwm_kib"], libvirtd_cpu))
    print("host: libvirtd up %d ms, network + pool %d ms; podvm/build.sh %.0f ms; load average %s" %
          (host.timings.get("libvirtd_ms", 0), host.timings.get("network_pool_ms", 0), build_ms,
           open("/proc/loadavg").read().split()[0]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"pods": results, "daemon": samples, "host": host.timings}, f, indent=1)


if __name__ == "__main__":
    main()
