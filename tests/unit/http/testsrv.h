/*
 * A loopback HTTP/1.1 server for the lib/http tests: listens on 127.0.0.1 with a port the
 * kernel picks, serves a script of canned responses in order (the last one repeats), and
 * records every request it receives (method, target, headers, body, which connection) so that
 * tests assert on what the client really sent. One thread per connection, keep-alive honoured,
 * so it also measures how many requests it was serving at once.
 */
#ifndef TESTSRV_H
#define TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

struct ts_response {
	int status;
	const char *headers;     /* extra header lines, each ending "\r\n", or NULL */
	const char *body;        /* or NULL */
	size_t fill;             /* if > 0: the body is this many 'x' bytes instead */
	unsigned delay_ms;       /* wait before answering */
	bool no_length;          /* no Content-Length: the body ends when the connection closes */
	bool close;              /* close the connection after this response */
	bool drop;               /* close the connection without answering */
};

struct ts_request {
	char method[16];
	char target[2048];       /* path and query */
	char headers[16384];     /* raw header lines, "\r\n" separated */
	char *body;              /* NUL-terminated */
	size_t body_len;
	unsigned conn;           /* connection number, from 1 */
};

struct testsrv;

struct testsrv *ts_start(void);
void ts_stop(struct testsrv *ts);
int ts_port(const struct testsrv *ts);
/* Copies the script; requests are answered by arrival order. */
void ts_script(struct testsrv *ts, const struct ts_response *r, size_t n);
size_t ts_count(struct testsrv *ts);
/* The i-th request received (stable until ts_stop). */
const struct ts_request *ts_request(struct testsrv *ts, size_t i);
int ts_max_concurrent(struct testsrv *ts);
/* Value of a request header (case-insensitive name) copied into out, or NULL. */
const char *ts_header(const struct ts_request *r, const char *name, char *out, size_t size);
/* A port on 127.0.0.1 where nothing listens (bound then closed). */
int ts_free_port(void);

#endif
