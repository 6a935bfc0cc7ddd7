/*
 * bench-agent: agent-protocol benchmarks against one agent socket — a pod's agent.ttrpc (the
 * relay: proxy + mutual TLS + forwarder) or a mock agent's own socket (the floor).
 *
 *   bench-agent rtt -socket PATH [-concurrency C] [-calls N] [-max-seconds S] [-label L]
 *       C threads, each with one long connection (runtime-rs style), send grpc.Health/Check
 *       one at a time; prints calls/s and the p50/p99 round trip.
 *   bench-agent stdout -socket PATH [-mib N] [-chunk BYTES] [-max-seconds S] [-label L]
 *       one connection streams ReadStdout of CHUNK bytes per call until N MiB arrived.
 *
 * The one idea: the same client code measures both paths, so the ratio relay/direct is the
 * cost of the relay. Loops are bounded in count and in time; traffic stays on the given unix
 * socket. Output: one line of key=value figures.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "lib/err.h"
#include "lib/util.h"
#include "tests/tools/mock_agent/mock_pattern.h"
#include "tests/tools/shim_client/shim_lib.h"

#define RTT_WARMUP_CALLS 50
#define RTT_CALL_TIMEOUT_NS (10 * BENCH_NS_PER_S)
#define BENCH_MAX_THREADS 256
#define STDOUT_CHECK_BYTES 64

struct bench_opts {
	const char *mode;
	const char *socket;
	const char *label;
	uint64_t concurrency, calls, max_seconds, mib, chunk;
};

struct rtt_thread {
	pthread_t tid;
	const struct bench_opts *o;
	pthread_barrier_t *start;
	uint64_t deadline_ns;
	uint64_t calls;
	struct bench_samples lat;
	uint64_t errors;
	struct pp_err first_err;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-agent rtt -socket PATH [-concurrency C] [-calls N] [-max-seconds S] [-label L]\n"
		"       bench-agent stdout -socket PATH [-mib N] [-chunk BYTES] [-max-seconds S] [-label L]\n");
	exit(2);
}

static void opts_parse(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ .label = "agent", .concurrency = 1, .calls = 10000, .max_seconds = 20,
				  .mib = 256, .chunk = 1u << 20 };
	if (argc < 2)
		usage();
	o->mode = argv[1];
	for (int i = 2; i < argc; i += 2) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (strcmp(f, "-socket") == 0)
			o->socket = v;
		else if (strcmp(f, "-label") == 0)
			o->label = v;
		else if (strcmp(f, "-concurrency") == 0)
			o->concurrency = bench_arg_u64(f, v);
		else if (strcmp(f, "-calls") == 0)
			o->calls = bench_arg_u64(f, v);
		else if (strcmp(f, "-max-seconds") == 0)
			o->max_seconds = bench_arg_u64(f, v);
		else if (strcmp(f, "-mib") == 0)
			o->mib = bench_arg_u64(f, v);
		else if (strcmp(f, "-chunk") == 0)
			o->chunk = bench_arg_u64(f, v);
		else
			usage();
	}
	if (!o->socket || o->concurrency < 1 || o->concurrency > BENCH_MAX_THREADS || o->calls < 1 ||
	    o->chunk < 1 || o->chunk > (4u << 20) - 1024)
		usage();
}

static void *rtt_thread_run(void *arg)
{
	struct rtt_thread *t = arg;
	uint64_t per_thread = t->o->calls / t->o->concurrency;
	struct shim_conn c;
	struct pp_err err;
	int status;

	if (shim_conn_open(&c, t->o->socket, false, &err) < 0) {
		t->errors++;
		t->first_err = err;
		pthread_barrier_wait(t->start);
		return NULL;
	}
	for (int i = 0; i < RTT_WARMUP_CALLS; i++)
		if (shim_agent_health(&c, RTT_CALL_TIMEOUT_NS, &status, &err) < 0)
			break;
	pthread_barrier_wait(t->start);
	for (uint64_t i = 0; i < per_thread && bench_now_ns() < t->deadline_ns; i++) {
		uint64_t t0 = bench_now_ns();

		if (shim_agent_health(&c, RTT_CALL_TIMEOUT_NS, &status, &err) < 0) {
			if (t->errors++ == 0)
				t->first_err = err;
			break;
		}
		bench_samples_add(&t->lat, bench_now_ns() - t0);
		t->calls++;
	}
	shim_conn_close(&c);
	return NULL;
}

static int bench_rtt(const struct bench_opts *o)
{
	struct rtt_thread *th = pp_xcalloc(o->concurrency, sizeof(*th));
	struct bench_samples all;
	pthread_barrier_t start;
	uint64_t t0, t1, calls = 0, errors = 0;
	const struct pp_err *first = NULL;

	pthread_barrier_init(&start, NULL, (unsigned)o->concurrency + 1);
	bench_samples_init(&all, o->calls);
	for (uint64_t i = 0; i < o->concurrency; i++) {
		th[i].o = o;
		th[i].start = &start;
		th[i].deadline_ns = UINT64_MAX;
		bench_samples_init(&th[i].lat, o->calls / o->concurrency);
	}
	/* The deadline is set before the threads start: warm-up counts against it too. */
	for (uint64_t i = 0; i < o->concurrency; i++)
		th[i].deadline_ns = bench_now_ns() + o->max_seconds * BENCH_NS_PER_S;
	for (uint64_t i = 0; i < o->concurrency; i++)
		if (pthread_create(&th[i].tid, NULL, rtt_thread_run, &th[i]) != 0) {
			fprintf(stderr, "bench-agent: pthread_create failed\n");
			exit(1);
		}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < o->concurrency; i++) {
		pthread_join(th[i].tid, NULL);
		calls += th[i].calls;
		errors += th[i].errors;
		if (th[i].errors && !first)
			first = &th[i].first_err;
		bench_samples_merge(&all, &th[i].lat);
	}
	t1 = bench_now_ns();
	printf("label=%s mode=rtt concurrency=%llu calls=%llu seconds=%.3f calls_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f errors=%llu\n",
	       o->label, (unsigned long long)o->concurrency, (unsigned long long)calls,
	       (double)(t1 - t0) / 1e9, (double)calls / ((double)(t1 - t0) / 1e9),
	       (double)bench_percentile(&all, 50) / 1e3, (double)bench_percentile(&all, 99) / 1e3,
	       (unsigned long long)errors);
	if (first)
		fprintf(stderr, "bench-agent: first error: %s: %s\n", pp_code_name(first->code), first->msg);
	for (uint64_t i = 0; i < o->concurrency; i++)
		bench_samples_free(&th[i].lat);
	bench_samples_free(&all);
	pthread_barrier_destroy(&start);
	free(th);
	return errors ? 1 : 0;
}

static int bench_stdout(const struct bench_opts *o)
{
	uint64_t want = o->mib << 20, got = 0, t0, t1, deadline;
	char cid[64];
	struct shim_conn c;
	struct pp_err err;
	int rc = 0;

	/* A fresh container id: the mock agent's stream offset starts at 0 for it. */
	if (snprintf(cid, sizeof(cid), "bench-stdout-%lld", (long long)bench_wall_ms()) >= (int)sizeof(cid))
		return 1;
	if (shim_conn_open(&c, o->socket, false, &err) < 0) {
		fprintf(stderr, "bench-agent: %s\n", err.msg);
		return 1;
	}
	t0 = bench_now_ns();
	deadline = t0 + o->max_seconds * BENCH_NS_PER_S;
	while (got < want && bench_now_ns() < deadline) {
		uint8_t *data = NULL;
		size_t len = 0, check;

		if (shim_agent_read_stdout(&c, cid, NULL, (uint32_t)o->chunk, RTT_CALL_TIMEOUT_NS, &data,
					   &len, &err) < 0) {
			fprintf(stderr, "bench-agent: ReadStdout after %llu bytes: %s: %s\n",
				(unsigned long long)got, pp_code_name(err.code), err.msg);
			rc = 1;
			break;
		}
		check = len < STDOUT_CHECK_BYTES ? len : STDOUT_CHECK_BYTES;
		if (mock_pattern_check(data, check, got) != check) {
			fprintf(stderr, "bench-agent: ReadStdout bytes at offset %llu are not the mock pattern\n",
				(unsigned long long)got);
			rc = 1;
		}
		free(data);
		if (rc || len == 0)
			break;
		got += len;
	}
	t1 = bench_now_ns();
	shim_conn_close(&c);
	printf("label=%s mode=stdout chunk=%llu bytes=%llu seconds=%.3f MB_per_s=%.0f MiB_per_s=%.0f\n",
	       o->label, (unsigned long long)o->chunk, (unsigned long long)got, (double)(t1 - t0) / 1e9,
	       (double)got / 1e6 / ((double)(t1 - t0) / 1e9),
	       (double)got / 1048576.0 / ((double)(t1 - t0) / 1e9));
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_opts o;

	pp_malloc_tune();
	opts_parse(argc, argv, &o);
	if (strcmp(o.mode, "rtt") == 0)
		return bench_rtt(&o);
	if (strcmp(o.mode, "stdout") == 0)
		return bench_stdout(&o);
	usage();
	return 2;
}
