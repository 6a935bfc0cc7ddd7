/*
 * bench-lifecycle: sandbox lifecycles against a running cloud-api-adaptor (local provider).
 *
 *   bench-lifecycle cycle -socket HV -state-dir DIR -daemon-pid PID [-n N] [-parallel P]
 *                         [-max-seconds S] [-label L]
 *       N lifecycles (CreateVM, StartVM, StopVM), P at a time, each call on its own connection as
 *       the Go shim does. Prints lifecycles/s, the daemon's CPU time per lifecycle (its own
 *       utime+stime, and separately that of the children it waited for), StartVM latency, and
 *       the time from "forwarder listening" (the instance's console.log) to StartVM returning.
 *   bench-lifecycle up|down -socket HV -n K [-parallel P] [-tag HEX8] [-max-seconds S]
 *       starts (up) or stops (down) K sandboxes named by index and tag, and leaves them so.
 *
 * The one idea: the daemon's CPU is read from /proc/<pid>/stat around the whole run, so the
 * figure per lifecycle is what the daemon process itself spent — the provider's processes
 * (forwarder, agent) are not in it, the provider's calls made inside the daemon are.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bench/bench_util.h"
#include "lib/err.h"
#include "lib/util.h"
#include "tests/tools/shim_client/shim_lib.h"

#define CALL_TIMEOUT_NS (60 * BENCH_NS_PER_S)
#define LINE_MAX_BYTES 4096
#define MAX_PARALLEL 256

struct lc_opts {
	const char *mode, *socket, *state_dir, *label;
	uint64_t n, parallel, max_seconds, daemon_pid;
	uint32_t tag;
};

struct lc_run {
	const struct lc_opts *o;
	atomic_ullong next;
	uint64_t deadline_ns;
	pthread_mutex_t lock;            /* guards the fields below */
	struct bench_samples start_lat;  /* StartVM, ns */
	struct bench_samples ready_lat;  /* forwarder listening -> StartVM returned, ns */
	struct bench_samples cycle_lat;  /* whole lifecycle, ns */
	uint64_t done, errors, no_console;
	struct pp_err first_err;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-lifecycle cycle -socket HV -state-dir DIR -daemon-pid PID [-n N] [-parallel P]\n"
		"                             [-max-seconds S] [-label L]\n"
		"       bench-lifecycle up|down -socket HV -n K [-parallel P] [-tag HEX8] [-max-seconds S]\n");
	exit(2);
}

static void opts_parse(int argc, char **argv, struct lc_opts *o)
{
	*o = (struct lc_opts){ .label = "lifecycle", .n = 20, .parallel = 1, .max_seconds = 60,
			       .tag = 0xbe5c0000u };
	if (argc < 2)
		usage();
	o->mode = argv[1];
	for (int i = 2; i < argc; i += 2) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (strcmp(f, "-socket") == 0)
			o->socket = v;
		else if (strcmp(f, "-state-dir") == 0)
			o->state_dir = v;
		else if (strcmp(f, "-label") == 0)
			o->label = v;
		else if (strcmp(f, "-n") == 0)
			o->n = bench_arg_u64(f, v);
		else if (strcmp(f, "-parallel") == 0)
			o->parallel = bench_arg_u64(f, v);
		else if (strcmp(f, "-max-seconds") == 0)
			o->max_seconds = bench_arg_u64(f, v);
		else if (strcmp(f, "-daemon-pid") == 0)
			o->daemon_pid = bench_arg_u64(f, v);
		else if (strcmp(f, "-tag") == 0) {
			char *end;
			unsigned long t = strtoul(v, &end, 16);

			if (*v == '\0' || *end != '\0' || t > UINT32_MAX)
				usage();
			o->tag = (uint32_t)t;
		} else
			usage();
	}
	if (!o->socket || o->parallel < 1 || o->parallel > MAX_PARALLEL)
		usage();
	if (strcmp(o->mode, "cycle") == 0 && (!o->state_dir || !o->daemon_pid))
		usage();
}

static void sandbox_names(const struct lc_opts *o, uint64_t i, char *sid, size_t sid_size, char *pod,
			  size_t pod_size)
{
	snprintf(sid, sid_size, "%08llx%08x", (unsigned long long)(i & 0xffffffffu), o->tag);
	snprintf(pod, pod_size, "bench-%llu", (unsigned long long)i);
}

/* The wall time (ms) of the forwarder's "forwarder listening" line in the instance's console. */
static int64_t forwarder_listening_ms(const struct lc_opts *o, const char *pod, const char *sid)
{
	char path[4096], line[LINE_MAX_BYTES];
	int64_t ms = -1;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/local/podvm-%s-%.8s/console.log", o->state_dir, pod, sid) >=
	    (int)sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "msg=\"forwarder listening\"")) {
			ms = bench_log_time_ms(line);
			break;
		}
	fclose(f);
	return ms;
}

static void run_error(struct lc_run *r, const char *what, const char *sid, const struct pp_err *err)
{
	pthread_mutex_lock(&r->lock);
	if (r->errors++ == 0)
		pp_err_set(&r->first_err, err->code, "%s %s: %s", what, sid, err->msg);
	pthread_mutex_unlock(&r->lock);
}

static int hv_open(struct lc_run *r, struct shim_conn *c)
{
	struct pp_err err;

	if (shim_conn_open(c, r->o->socket, true, &err) < 0) {
		run_error(r, "connecting", r->o->socket, &err);
		return -1;
	}
	return 0;
}

static int do_create(struct lc_run *r, struct shim_conn *c, const char *sid, const char *pod)
{
	struct shim_create_args a = { .sandbox_id = sid, .pod_name = pod, .pod_namespace = "bench",
				      .timeout_ns = CALL_TIMEOUT_NS };
	char sock[SHIM_SOCKET_PATH_MAX];
	struct pp_err err;

	if (shim_create_vm(c, &a, sock, sizeof(sock), &err) < 0) {
		run_error(r, "CreateVM", sid, &err);
		return -1;
	}
	return 0;
}

static int do_start(struct lc_run *r, struct shim_conn *c, const char *sid, uint64_t *ret_ns)
{
	uint64_t t0 = bench_now_ns();
	struct pp_err err;

	if (shim_start_vm(c, sid, CALL_TIMEOUT_NS, &err) < 0) {
		run_error(r, "StartVM", sid, &err);
		return -1;
	}
	*ret_ns = bench_now_ns() - t0;
	return 0;
}

static int do_stop(struct lc_run *r, struct shim_conn *c, const char *sid)
{
	struct pp_err err;

	if (shim_stop_vm(c, sid, CALL_TIMEOUT_NS, &err) < 0) {
		run_error(r, "StopVM", sid, &err);
		return -1;
	}
	return 0;
}

static void cycle_one(struct lc_run *r, struct shim_conn *c, uint64_t i)
{
	char sid[32], pod[32];
	uint64_t t0 = bench_now_ns(), start_ns = 0;
	int64_t listen_ms, ret_ms;

	sandbox_names(r->o, i, sid, sizeof(sid), pod, sizeof(pod));
	if (do_create(r, c, sid, pod) < 0)
		return;
	if (do_start(r, c, sid, &start_ns) < 0) {
		do_stop(r, c, sid);
		return;
	}
	ret_ms = bench_wall_ms();
	listen_ms = forwarder_listening_ms(r->o, pod, sid);
	if (do_stop(r, c, sid) < 0)
		return;
	pthread_mutex_lock(&r->lock);
	bench_samples_add(&r->start_lat, start_ns);
	bench_samples_add(&r->cycle_lat, bench_now_ns() - t0);
	if (listen_ms < 0)
		r->no_console++;
	else
		bench_samples_add(&r->ready_lat, (uint64_t)(ret_ms > listen_ms ? ret_ms - listen_ms : 0) *
							 BENCH_NS_PER_MS);
	r->done++;
	pthread_mutex_unlock(&r->lock);
}

static void updown_one(struct lc_run *r, struct shim_conn *c, uint64_t i)
{
	char sid[32], pod[32];
	uint64_t start_ns = 0;
	int ok;

	sandbox_names(r->o, i, sid, sizeof(sid), pod, sizeof(pod));
	if (strcmp(r->o->mode, "up") == 0)
		ok = do_create(r, c, sid, pod) == 0 && do_start(r, c, sid, &start_ns) == 0;
	else
		ok = do_stop(r, c, sid) == 0;
	if (!ok)
		return;
	pthread_mutex_lock(&r->lock);
	if (start_ns)
		bench_samples_add(&r->start_lat, start_ns);
	r->done++;
	pthread_mutex_unlock(&r->lock);
}

static void *worker_run(void *arg)
{
	struct lc_run *r = arg;
	bool cycle = strcmp(r->o->mode, "cycle") == 0;
	struct shim_conn c;

	if (hv_open(r, &c) < 0)
		return NULL;
	for (;;) {
		uint64_t i = atomic_fetch_add(&r->next, 1);

		if (i >= r->o->n || bench_now_ns() >= r->deadline_ns)
			break;
		if (cycle)
			cycle_one(r, &c, i);
		else
			updown_one(r, &c, i);
	}
	shim_conn_close(&c);
	return NULL;
}

static void report(struct lc_run *r, uint64_t wall_ns, uint64_t cpu_self, uint64_t cpu_children)
{
	const struct lc_opts *o = r->o;
	double secs = (double)wall_ns / 1e9, n = r->done ? (double)r->done : 1.0;

	if (strcmp(o->mode, "cycle") != 0) {
		printf("label=%s mode=%s sandboxes=%llu seconds=%.3f startvm_p50_ms=%.1f errors=%llu\n",
		       o->label, o->mode, (unsigned long long)r->done, secs,
		       (double)bench_percentile(&r->start_lat, 50) / 1e6, (unsigned long long)r->errors);
		return;
	}
	printf("label=%s mode=cycle parallel=%llu lifecycles=%llu seconds=%.3f lifecycles_per_s=%.1f "
	       "cycle_p50_ms=%.1f startvm_p50_ms=%.1f startvm_p99_ms=%.1f "
	       "daemon_cpu_ms_per_lifecycle=%.3f children_cpu_ms_per_lifecycle=%.3f "
	       "listen_to_startvm_p50_ms=%.0f listen_to_startvm_p99_ms=%.0f listen_to_startvm_max_ms=%.0f "
	       "no_console=%llu errors=%llu\n",
	       o->label, (unsigned long long)o->parallel, (unsigned long long)r->done, secs,
	       (double)r->done / secs, (double)bench_percentile(&r->cycle_lat, 50) / 1e6,
	       (double)bench_percentile(&r->start_lat, 50) / 1e6,
	       (double)bench_percentile(&r->start_lat, 99) / 1e6, (double)cpu_self / 1e6 / n,
	       (double)cpu_children / 1e6 / n, (double)bench_percentile(&r->ready_lat, 50) / 1e6,
	       (double)bench_percentile(&r->ready_lat, 99) / 1e6,
	       (double)bench_percentile(&r->ready_lat, 100) / 1e6, (unsigned long long)r->no_console,
	       (unsigned long long)r->errors);
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_PARALLEL];
	uint64_t self0 = 0, child0 = 0, self1 = 0, child1 = 0, t0, t1;
	struct lc_opts o;
	struct lc_run r;
	pid_t dpid;

	pp_malloc_tune();
	opts_parse(argc, argv, &o);
	if (strcmp(o.mode, "cycle") != 0 && strcmp(o.mode, "up") != 0 && strcmp(o.mode, "down") != 0)
		usage();
	memset(&r, 0, sizeof(r));
	r.o = &o;
	atomic_init(&r.next, 0);
	pthread_mutex_init(&r.lock, NULL);
	bench_samples_init(&r.start_lat, o.n);
	bench_samples_init(&r.ready_lat, o.n);
	bench_samples_init(&r.cycle_lat, o.n);
	dpid = (pid_t)o.daemon_pid;
	if (dpid && bench_proc_cpu_ns(dpid, &self0, &child0) < 0) {
		fprintf(stderr, "bench-lifecycle: cannot read /proc/%d/stat\n", (int)dpid);
		return 1;
	}
	t0 = bench_now_ns();
	r.deadline_ns = t0 + o.max_seconds * BENCH_NS_PER_S;
	for (uint64_t i = 0; i < o.parallel; i++)
		if (pthread_create(&tids[i], NULL, worker_run, &r) != 0) {
			fprintf(stderr, "bench-lifecycle: pthread_create failed\n");
			return 1;
		}
	for (uint64_t i = 0; i < o.parallel; i++)
		pthread_join(tids[i], NULL);
	t1 = bench_now_ns();
	if (dpid && bench_proc_cpu_ns(dpid, &self1, &child1) < 0) {
		fprintf(stderr, "bench-lifecycle: cannot read /proc/%d/stat\n", (int)dpid);
		return 1;
	}
	report(&r, t1 - t0, self1 - self0, child1 - child0);
	if (r.errors)
		fprintf(stderr, "bench-lifecycle: %llu errors; first: %s\n", (unsigned long long)r.errors,
			r.first_err.msg);
	bench_samples_free(&r.start_lat);
	bench_samples_free(&r.ready_lat);
	bench_samples_free(&r.cycle_lat);
	pthread_mutex_destroy(&r.lock);
	return r.errors || r.done < o.n ? 1 : 0;
}
