/*
 * The daemon's HTTP endpoint on 127.0.0.1:$PROBE_PORT (libmicrohttpd, its own thread):
 * GET /startup (the Kubernetes startup probe, spec §7.3) and GET /metrics (Prometheus text
 * format). It knows nothing about the daemon: both answers come from callbacks, which run in
 * the endpoint's thread and must not block for long (never on the daemon's loop).
 * SO_REUSEPORT is set, as upstream does, so that during a rolling update the new daemon can
 * bind while the old one still listens.
 */
#ifndef PP_ADAPTOR_PROBE_HTTP_H
#define PP_ADAPTOR_PROBE_HTTP_H

#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

#define PROBE_HTTP_MAX_CONNECTIONS 16
#define PROBE_HTTP_TIMEOUT_S 10
#define PROBE_HTTP_METRICS_MAX (4u * 1024 * 1024)

struct probe_http_config {
	const char *address;        /* "127.0.0.1" */
	uint16_t port;              /* 0 = any free port (tests): read it with probe_http_port() */
	/* HTTP status of /startup: 200 when started, 500 otherwise. */
	int (*startup)(void *arg);
	/* Appends the metrics text; -1 = 500. */
	int (*metrics)(void *arg, struct buf *out);
	void *arg;
};

struct probe_http;

struct probe_http *probe_http_start(const struct probe_http_config *cfg, struct pp_err *err);
uint16_t probe_http_port(const struct probe_http *p);
/* Stops the thread and closes the socket; NULL ok. */
void probe_http_stop(struct probe_http *p);

#endif
