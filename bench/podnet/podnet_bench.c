/*
 * Pod networking benchmark (run by bench/podnet/run.sh, as root): in the namespace test bed of
 * tests/integration/podnet (nettest.h), measures
 *   - the time of worker Setup (Inspect included) and Teardown, and of the VM side's Setup,
 *     as the median of several cycles;
 *   - TCP throughput (one stream, a few seconds) and TCP round-trip latency (1-byte ping-pong,
 *     TCP_NODELAY) from the pod network (W) to the VM's pod namespace (Q) through the VXLAN
 *     tunnel, against the same between W and the VM namespace (V) over the bare veth underlay.
 * Output: one "name value unit" line per figure. No traffic leaves the namespaces.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ns_sides.h"

#define BENCH_CYCLES   10
#define BENCH_SECONDS  3
#define BENCH_PINGS    3000
#define BENCH_CHUNK    (128 * 1024)

static double bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double bench_pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), bench_cmp);
	return v[(size_t)(p * (double)(n - 1))];
}

/* ---- server: sink (mode 0) or echo (mode 1), one connection ---- */

static int bench_server(const char *ns, const char *addr, int mode, int *port)
{
	int p[2], pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		static char buf[BENCH_CHUNK];
		int l, c, one = 1;

		close(p[0]);
		inet_pton(AF_INET, addr, &sa.sin_addr);
		if (nt_enter(ns) < 0 || (l = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
		    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
			_exit(3);
		c = ntohs(sa.sin_port);
		if (write(p[1], &c, sizeof(c)) != sizeof(c) || (c = accept(l, NULL, NULL)) < 0)
			_exit(4);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (;;) {
			ssize_t n = read(c, buf, mode ? 1 : sizeof(buf));

			if (n <= 0)
				break;
			if (mode && write(c, buf, (size_t)n) != n)
				break;
		}
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], port, sizeof(*port)) != sizeof(*port))
		pid = -1;
	close(p[0]);
	return pid;
}

struct bench_client {
	const char *addr;
	int port;
};

static int bench_connect(const struct bench_client *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)a->port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, a->addr, &sa.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends for BENCH_SECONDS; r->ms = elapsed, r->value = MB sent. */
static int bench_blast(void *arg, struct nt_result *r)
{
	static char buf[BENCH_CHUNK];
	int fd = bench_connect(arg);
	double start = bench_now_ms(), bytes = 0;

	if (fd < 0)
		return -1;
	while (bench_now_ms() - start < BENCH_SECONDS * 1000.0) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n <= 0)
			return -1;
		bytes += (double)n;
	}
	close(fd);
	r->ms = bench_now_ms() - start;
	r->value = (int)(bytes / 1e6);
	return 0;
}

/* BENCH_PINGS 1-byte round trips; r->ms = median (µs), r->value = p99 (µs). */
static int bench_pingpong(void *arg, struct nt_result *r)
{
	double *rtt = calloc(BENCH_PINGS, sizeof(*rtt));
	int fd = bench_connect(arg);
	char c = 'x';

	if (fd < 0 || !rtt)
		return -1;
	for (int i = 0; i < BENCH_PINGS; i++) {
		double t0 = bench_now_ms();

		if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
			return -1;
		rtt[i] = (bench_now_ms() - t0) * 1000.0;
	}
	close(fd);
	r->ms = bench_pct(rtt, BENCH_PINGS, 0.5);
	r->value = (int)bench_pct(rtt, BENCH_PINGS, 0.99);
	free(rtt);
	return 0;
}

static int bench_tcp(const char *label, const char *from, const char *to_ns, const char *to_addr)
{
	struct bench_client a = { .addr = to_addr };
	struct nt_result r;
	int pid = bench_server(to_ns, to_addr, 0, &a.port);

	if (pid < 0 || nt_in_ns(from, bench_blast, &a, &r) < 0 || r.rc != 0)
		return -1;
	nt_wait_pid(pid);
	printf("%s_throughput %.0f Mbit/s\n", label, (double)r.value * 8.0 / (r.ms / 1000.0));
	pid = bench_server(to_ns, to_addr, 1, &a.port);
	if (pid < 0 || nt_in_ns(from, bench_pingpong, &a, &r) < 0 || r.rc != 0)
		return -1;
	nt_wait_pid(pid);
	printf("%s_rtt_median %.1f us\n%s_rtt_p99 %d us\n", label, r.ms, label, r.value);
	return 0;
}

/* ---- Setup / Teardown times ---- */

static int bench_cycles(struct nt_topo *t)
{
	double ws[BENCH_CYCLES], wt[BENCH_CYCLES], vs[BENCH_CYCLES];
	struct ns_worker_arg w = { .pod_path = t->p_path, .vm_ips = NT_VM_IP };
	struct ns_vm_arg v = { .podns = t->q_path };
	struct nt_result r;
	static char json[NT_JSON_MAX];

	for (int i = 0; i < BENCH_CYCLES; i++) {
		if (nt_in_ns(t->w, ns_worker_inspect_setup, &w, &r) < 0 || r.rc != 0)
			return fprintf(stderr, "worker setup: %s\n", r.msg), -1;
		ws[i] = r.ms;
		memcpy(json, r.json, sizeof(json));
		v.json = json;
		if (nt_in_ns(t->v, ns_vm_setup, &v, &r) < 0 || r.rc != 0)
			return fprintf(stderr, "VM setup: %s\n", r.msg), -1;
		vs[i] = r.ms;
		if (i == BENCH_CYCLES - 1)
			break;                              /* leave the last one up for traffic */
		if (nt_in_ns(t->w, ns_worker_teardown, &w, &r) < 0 || r.rc != 0)
			return fprintf(stderr, "worker teardown: %s\n", r.msg), -1;
		wt[i] = r.ms;
		if (nt_in_ns(t->v, ns_vm_teardown, &v, &r) < 0 || r.rc != 0)
			return fprintf(stderr, "VM teardown: %s\n", r.msg), -1;
	}
	printf("worker_setup_median %.1f ms\n", bench_pct(ws, BENCH_CYCLES, 0.5));
	printf("worker_teardown_median %.1f ms\n", bench_pct(wt, BENCH_CYCLES - 1, 0.5));
	printf("vm_setup_median %.1f ms\n", bench_pct(vs, BENCH_CYCLES, 0.5));
	return 0;
}

int main(void)
{
	struct nt_topo t;
	char why[256];
	int rc = 1;

	if (!nt_supported(why, sizeof(why))) {
		fprintf(stderr, "podnet-bench: cannot run here: %s\n", why);
		return 2;
	}
	if (nt_topo_create(&t, "b") < 0)
		return 1;
	if (bench_cycles(&t) == 0 && bench_tcp("tunnel", t.w, t.q, NT_POD_IP) == 0 &&
	    bench_tcp("underlay", t.w, t.v, NT_VM_IP) == 0)
		rc = 0;
	nt_topo_destroy(&t);
	return rc;
}
