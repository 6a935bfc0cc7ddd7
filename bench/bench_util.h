/*
 * Small helpers shared by the benchmark programs: clocks, latency statistics, /proc readers and
 * flag parsing. The one idea: every benchmark collects raw samples (nanoseconds) into a
 * struct bench_samples and reports percentiles from the sorted array, never averages of averages.
 */
#ifndef PP_BENCH_UTIL_H
#define PP_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_NS_PER_MS 1000000LL
#define BENCH_NS_PER_S 1000000000LL

uint64_t bench_now_ns(void);       /* CLOCK_MONOTONIC */
int64_t bench_wall_ms(void);       /* CLOCK_REALTIME, ms since the epoch */

struct bench_samples {
	uint64_t *v;     /* nanoseconds */
	size_t n, cap;
};
void bench_samples_init(struct bench_samples *s, size_t cap);
void bench_samples_add(struct bench_samples *s, uint64_t ns);   /* dropped when full */
/* Appends every sample of src to dst (dst grows as needed). */
void bench_samples_merge(struct bench_samples *dst, const struct bench_samples *src);
void bench_samples_free(struct bench_samples *s);
/* Sorts, then returns the p-th percentile (0 < p <= 100), nearest rank; 0 when empty. */
uint64_t bench_percentile(struct bench_samples *s, double p);

/* VmRSS / VmHWM of pid in KiB from /proc/<pid>/status; -1 if unreadable. */
long bench_proc_rss_kib(pid_t pid);
long bench_proc_hwm_kib(pid_t pid);
/* utime+stime (self) and cutime+cstime (waited-for children) of pid, in ns; -1 on error. */
int bench_proc_cpu_ns(pid_t pid, uint64_t *ret_self, uint64_t *ret_children);

/* Flag values: "-name value". Exits with status 2 and a message on a bad number. */
uint64_t bench_arg_u64(const char *flag, const char *value);

/* Parses the logfmt time= of a line ("time=2026-11-25T03:21:31.939Z ...") into ms since the
 * epoch; -1 when the line has none. */
int64_t bench_log_time_ms(const char *line);

#endif
