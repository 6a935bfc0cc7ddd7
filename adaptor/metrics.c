/* Counters for /metrics: see metrics.h. */
#include "adaptor/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http.h"
#include "lib/util.h"

#define METRICS_LABEL_MAX 64
#define METRICS_HTTP_ROWS HTTP_MAX_OPS

static const double bucket_le[METRICS_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
};
static const char *const op_names[METRICS_OP_COUNT] = { "create", "start", "delete" };

struct histogram {
	atomic_uint_fast64_t buckets[METRICS_BUCKETS];   /* non-cumulative; summed when rendered */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ms;
	atomic_uint_fast64_t errors;
};

static struct {
	struct histogram ops[METRICS_OP_COUNT];
	atomic_uint_fast64_t reaped;
	atomic_uint_fast64_t proxy_connections;
	atomic_uint_fast64_t proxy_reconnects;
	atomic_uint_fast64_t peerpods_ok;
	atomic_uint_fast64_t peerpods_failed;
	char version[METRICS_LABEL_MAX];   /* set by metrics_init, before threads */
	char provider[METRICS_LABEL_MAX];
} m;

void metrics_init(const char *version, const char *provider)
{
	memset(&m, 0, sizeof(m));
	snprintf(m.version, sizeof(m.version), "%s", version ? version : "unknown");
	snprintf(m.provider, sizeof(m.provider), "%s", provider ? provider : "");
}

void metrics_fini(void)
{
}

void metrics_observe(enum metrics_op op, uint64_t ms, bool ok)
{
	struct histogram *h = &m.ops[op];
	size_t i = 0;

	while (i < METRICS_BUCKETS && (double)ms / 1000.0 > bucket_le[i])
		i++;
	if (i < METRICS_BUCKETS)
		atomic_fetch_add(&h->buckets[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_ms, ms);
	if (!ok)
		atomic_fetch_add(&h->errors, 1);
}

void metrics_add_reaped(uint64_t n)
{
	atomic_fetch_add(&m.reaped, n);
}

void metrics_add_proxy_connection(void)
{
	atomic_fetch_add(&m.proxy_connections, 1);
}

void metrics_add_proxy_reconnect(void)
{
	atomic_fetch_add(&m.proxy_reconnects, 1);
}

void metrics_add_peerpod(bool ok)
{
	atomic_fetch_add(ok ? &m.peerpods_ok : &m.peerpods_failed, 1);
}

static int render_histograms(struct buf *out)
{
	int rc = buf_append_str(out,
		"# HELP caa_vm_operation_seconds Latency of CreateVM (create), StartVM until the agent proxy is up (start), and the cloud deletion in StopVM (delete).\n"
		"# TYPE caa_vm_operation_seconds histogram\n");

	for (int op = 0; op < METRICS_OP_COUNT && rc == 0; op++) {
		struct histogram *h = &m.ops[op];
		uint64_t cum = 0;

		for (int i = 0; i < METRICS_BUCKETS && rc == 0; i++) {
			cum += atomic_load(&h->buckets[i]);
			rc = buf_appendf(out, "caa_vm_operation_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
					 op_names[op], bucket_le[i], (unsigned long long)cum);
		}
		if (rc == 0)
			rc = buf_appendf(out,
					 "caa_vm_operation_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n"
					 "caa_vm_operation_seconds_sum{op=\"%s\"} %.3f\n"
					 "caa_vm_operation_seconds_count{op=\"%s\"} %llu\n",
					 op_names[op], (unsigned long long)atomic_load(&h->count), op_names[op],
					 (double)atomic_load(&h->sum_ms) / 1000.0, op_names[op],
					 (unsigned long long)atomic_load(&h->count));
	}
	if (rc == 0)
		rc = buf_append_str(out, "# HELP caa_vm_operations_total Finished VM operations by outcome.\n"
				    "# TYPE caa_vm_operations_total counter\n");
	for (int op = 0; op < METRICS_OP_COUNT && rc == 0; op++) {
		uint64_t n = atomic_load(&m.ops[op].count), e = atomic_load(&m.ops[op].errors);

		rc = buf_appendf(out, "caa_vm_operations_total{op=\"%s\",result=\"ok\"} %llu\n"
				 "caa_vm_operations_total{op=\"%s\",result=\"error\"} %llu\n",
				 op_names[op], (unsigned long long)(n - e), op_names[op], (unsigned long long)e);
	}
	return rc;
}

int metrics_render(struct buf *out)
{
	if (render_histograms(out) < 0)
		return -1;
	return buf_appendf(out,
		"# HELP caa_reaped_instances_total Leaked instances deleted by the reaper.\n"
		"# TYPE caa_reaped_instances_total counter\n"
		"caa_reaped_instances_total %llu\n"
		"# HELP caa_agent_proxy_connections_total Agent proxies that reached their pod VM's forwarder (first connection).\n"
		"# TYPE caa_agent_proxy_connections_total counter\n"
		"caa_agent_proxy_connections_total %llu\n"
		"# HELP caa_agent_proxy_reconnects_total Agent proxies that reconnected to their pod VM after the connection broke.\n"
		"# TYPE caa_agent_proxy_reconnects_total counter\n"
		"caa_agent_proxy_reconnects_total %llu\n"
		"# HELP caa_peerpods_total PeerPod objects created, by outcome.\n"
		"# TYPE caa_peerpods_total counter\n"
		"caa_peerpods_total{result=\"ok\"} %llu\n"
		"caa_peerpods_total{result=\"error\"} %llu\n"
		"# HELP caa_build_info Build information.\n"
		"# TYPE caa_build_info gauge\n"
		"caa_build_info{version=\"%s\",provider=\"%s\"} 1\n",
		(unsigned long long)atomic_load(&m.reaped),
		(unsigned long long)atomic_load(&m.proxy_connections),
		(unsigned long long)atomic_load(&m.proxy_reconnects),
		(unsigned long long)atomic_load(&m.peerpods_ok),
		(unsigned long long)atomic_load(&m.peerpods_failed), m.version, m.provider);
}

/* Operation names come from our own code, but keep label values safe anyway. */
static void label_clean(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || *s == '\n')
			*s = '_';
}

static int render_http_rows(struct buf *out, const char *family, const char *label,
			    const char *value, struct http_client *c)
{
	struct http_op_stats *rows = pp_xcalloc(METRICS_HTTP_ROWS, sizeof(*rows));
	size_t n = http_client_op_stats(c, rows, METRICS_HTTP_ROWS);
	int rc = 0;

	if (n > METRICS_HTTP_ROWS)
		n = METRICS_HTTP_ROWS;
	for (size_t i = 0; i < n && rc == 0; i++) {
		label_clean(rows[i].op);
		for (int k = 0; k < HTTP_CLASS_COUNT && rc == 0; k++) {
			if (rows[i].attempts[k] == 0)
				continue;
			rc = buf_appendf(out, "caa_%s_requests_total{%s=\"%s\",operation=\"%s\",status=\"%s\"} %llu\n",
					 family, label, value, rows[i].op,
					 http_status_class_name((enum http_status_class)k),
					 (unsigned long long)rows[i].attempts[k]);
		}
	}
	free(rows);
	return rc;
}

int metrics_render_http(struct buf *out, const char *family, const char *label,
			const char *const *values, struct http_client *const *clients, size_t n)
{
	int rc = buf_appendf(out, "# HELP caa_%s_requests_total HTTP attempts by operation and status class.\n"
			     "# TYPE caa_%s_requests_total counter\n", family, family);

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = render_http_rows(out, family, label, values[i], clients[i]);
	if (rc == 0)
		rc = buf_appendf(out, "# HELP caa_%s_retries_total HTTP attempts after the first (429, 5xx, connection errors).\n"
				 "# TYPE caa_%s_retries_total counter\n", family, family);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct http_stats st;

		http_client_stats(clients[i], &st);
		rc = buf_appendf(out, "caa_%s_retries_total{%s=\"%s\"} %llu\n", family, label, values[i],
				 (unsigned long long)st.retries);
	}
	return rc;
}
