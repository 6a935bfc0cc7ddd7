#!/usr/bin/env python3
"""PID 1 of the private libvirt host's PID namespace (podvm_host.py): starts virtlogd and
libvirtd, reaps every process that ends in the namespace, and on SIGTERM stops libvirtd, then
virtlogd, then exits, which makes the kernel kill whatever is left in the namespace.

Why it exists: libvirt daemonizes QEMU, so a QEMU that exits is reaped by the PID namespace's
init, and virDomainDestroy waits until the QEMU process is gone. Reaped at once here, a destroy
takes milliseconds instead of the 1.5-2 s a slow system init takes to reap.

    pid1.py LOGDIR -- VIRTLOGD_ARGV... -- LIBVIRTD_ARGV...
"""
import os
import signal
import sys
import time


def spawn(argv, log):
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    pid = os.fork()
    if pid == 0:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execv(argv[0], argv)
    os.close(fd)
    return pid


def reap(alive):
    """Reaps every ended child (ours or re-parented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        alive.discard(pid)


def main():
    args = sys.argv[1:]
    logdir, rest = args[0], args[2:]
    sep = rest.index("--")
    virtlogd, libvirtd = rest[:sep], rest[sep + 1:]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})
    vl = spawn(virtlogd, os.path.join(logdir, "virtlogd.log"))
    time.sleep(0.05)                       # virtlogd's socket before libvirtd needs it
    lv = spawn(libvirtd, os.path.join(logdir, "libvirtd.log"))
    alive = {vl, lv}
    sent = set()
    stopping = None
    while vl in alive or lv in alive:
        reap(alive)
        if stopping is None and lv not in alive:
            stopping = time.monotonic()     # libvirtd died on its own: end the host
        if stopping is not None:
            nxt = lv if lv in alive else vl  # libvirtd first: it still talks to virtlogd
            if nxt not in sent:
                try:
                    os.kill(nxt, signal.SIGTERM)
                except ProcessLookupError:
                    pass                    # ended meanwhile: reaped next round
                sent.add(nxt)
            if time.monotonic() - stopping > 15:
                break                       # exiting kills the rest of the namespace
        info = signal.sigtimedwait({signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}, 0.5)
        if info and info.si_signo in (signal.SIGTERM, signal.SIGINT) and stopping is None:
            stopping = time.monotonic()
    return 0


if __name__ == "__main__":
    sys.exit(main())
