/*
 * A tiny loopback HTTP/1.1 server for the in-VM tests: it stands in for a cloud metadata
 * service. It listens on 127.0.0.1 with a kernel-chosen port, answers only the routes it was
 * given, checks a required header on each, and refuses everything else (404, or 401 when the
 * header is missing or wrong), counting what it saw so tests can assert on it.
 */
#ifndef PP_TEST_FAKE_HTTP_H
#define PP_TEST_FAKE_HTTP_H

#include <stddef.h>

struct fake_route {
	const char *method;       /* "GET", "PUT" */
	const char *target;       /* request target, with query string */
	const char *need_header;  /* "Name: value" that must be present (name case-insensitive), or NULL */
	int status;               /* answer when matched */
	const char *body;
	unsigned fail_first;      /* answer 503 to this many matching requests first */
	unsigned hits;            /* matching requests seen (written by the server thread) */
};

struct fake_http;

/* routes must stay valid until fake_http_stop. */
struct fake_http *fake_http_start(struct fake_route *routes, size_t n_routes);
int fake_http_port(const struct fake_http *s);
/* Requests that matched no route or lacked the required header. */
unsigned fake_http_refused(struct fake_http *s);
/* Formats "http://127.0.0.1:<port><path>" into out. */
const char *fake_http_url(const struct fake_http *s, const char *path, char *out, size_t size);
void fake_http_stop(struct fake_http *s);

#endif
