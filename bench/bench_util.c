/*
 * Benchmark helpers: clocks, percentiles over raw samples, /proc readers, flag parsing. See
 * bench_util.h. Nothing here talks to the network.
 */
#include "bench/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * BENCH_NS_PER_S + (uint64_t)ts.tv_nsec;
}

int64_t bench_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / BENCH_NS_PER_MS;
}

void bench_samples_init(struct bench_samples *s, size_t cap)
{
	s->v = pp_xcalloc(cap ? cap : 1, sizeof(*s->v));
	s->n = 0;
	s->cap = cap ? cap : 1;
}

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->v[s->n++] = ns;
}

void bench_samples_merge(struct bench_samples *dst, const struct bench_samples *src)
{
	if (dst->n + src->n > dst->cap) {
		dst->cap = dst->n + src->n;
		dst->v = pp_xrealloc(dst->v, dst->cap * sizeof(*dst->v));
	}
	memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n += src->n;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_percentile(struct bench_samples *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	rank = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

static long proc_status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kib = -1;
	FILE *f;

	if (snprintf(path, sizeof(path), "/proc/%d/status", (int)pid) >= (int)sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			char *end;
			long v = strtol(line + klen + 1, &end, 10);

			if (end != line + klen + 1)
				kib = v;
			break;
		}
	}
	fclose(f);
	return kib;
}

long bench_proc_rss_kib(pid_t pid)
{
	return proc_status_kib(pid, "VmRSS");
}

long bench_proc_hwm_kib(pid_t pid)
{
	return proc_status_kib(pid, "VmHWM");
}

int bench_proc_cpu_ns(pid_t pid, uint64_t *ret_self, uint64_t *ret_children)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	long long cut, cst;
	long hz = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	if (hz <= 0 || snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid) >= (int)sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name (which may hold spaces) start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
		   &ut, &st, &cut, &cst) != 4)
		return -1;
	*ret_self = (uint64_t)(ut + st) * (uint64_t)(BENCH_NS_PER_S / hz);
	*ret_children = (uint64_t)(cut + cst) * (uint64_t)(BENCH_NS_PER_S / hz);
	return 0;
}

uint64_t bench_arg_u64(const char *flag, const char *value)
{
	uint64_t v;

	if (!value || parse_uint64(value, &v) < 0) {
		fprintf(stderr, "%s needs a non-negative integer, got %s\n", flag, value ? value : "nothing");
		exit(2);
	}
	return v;
}

int64_t bench_log_time_ms(const char *line)
{
	const char *t = strstr(line, "time=");
	struct tm tm;
	const char *rest;
	int ms = 0;

	if (!t)
		return -1;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(t + 5, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	if (*rest == '.') {
		int digits = 0;

		for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*rest - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	return (int64_t)timegm(&tm) * 1000 + ms;
}
