/*
 * The daemon's counters for the Prometheus endpoint (probe_http.c). Process-wide, lock-free:
 * every counter and histogram bucket is an atomic, so the lifecycle (worker and loop threads)
 * updates them without a lock and a scrape reads them without stopping anyone.
 *
 * Latency histograms (seconds, cumulative "le" buckets as Prometheus wants):
 *   0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 +Inf
 * chosen to cover a local CreateVM (milliseconds) up to a slow cloud StartVM (PROXY_TIMEOUT,
 * 5 minutes by default).
 *
 * Families (all prefixed caa_): see docs/kubernetes.md "Reading the metrics".
 */
#ifndef PP_ADAPTOR_METRICS_H
#define PP_ADAPTOR_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"

struct http_client;

enum metrics_op {
	METRICS_CREATE = 0,   /* CreateVM */
	METRICS_START,        /* StartVM, until the proxy is up */
	METRICS_DELETE,       /* the provider's delete_instance in StopVM */
	METRICS_OP_COUNT
};

#define METRICS_BUCKETS 16

void metrics_init(const char *version, const char *provider);
void metrics_fini(void);

/* One finished operation: its latency goes in the histogram, its outcome in
 * caa_operations_total{op, result="ok"|"error"}. */
void metrics_observe(enum metrics_op op, uint64_t ms, bool ok);
void metrics_add_reaped(uint64_t n);
void metrics_add_proxy_connection(void);      /* an agent proxy reached its VM */
void metrics_add_proxy_reconnect(void);       /* ... and again after its connection broke */
void metrics_add_peerpod(bool ok);            /* a PeerPod create call */

/* Appends the process-wide families (histograms, operations, reaped, proxy connections,
 * PeerPods, build info) in the text exposition format. */
int metrics_render(struct buf *out);
/* Appends caa_<family>_requests_total{<label>="<values[i]>",operation,status} and
 * caa_<family>_retries_total{<label>} for n HTTP clients (status is the class: 2xx, 4xx,
 * 5xx, error). */
int metrics_render_http(struct buf *out, const char *family, const char *label,
			const char *const *values, struct http_client *const *clients, size_t n);

#endif
