/*
 * Tests of lib/dial: asynchronous TCP and TLS dials driven by the real event loop, against
 * loopback listeners. The caller hears back exactly once, never from inside dial_tcp_async,
 * with a working stream or an error that names the address and what went wrong; a cancelled
 * dial never calls back.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/dial.h"
#include "lib/loop.h"
#include "lib/pki.h"
#include "lib/tls.h"
#include "tls_harness.h"

#define NAME "podvm-dial-0"
#define SAFETY_MS 5000

struct ids {
	struct pki_identity *ca, *client, *server;
	SSL_CTX *cctx;   /* client: trusts ca, presents client */
	SSL_CTX *sctx;   /* server: presents server (for NAME), trusts client */
};

static int ids_setup(void **state)
{
	struct pp_err err = { 0 };
	struct ids *ids = calloc(1, sizeof(*ids));
	STACK_OF(X509) *ca, *cl;

	ids->ca = pki_new_ca(&err);
	ids->client = pki_new_client(&err);
	ids->server = pki_issue_server_cert(ids->ca, NAME, &err);
	if (!ids->server || !ids->client)
		return -1;
	ca = harness_stack1(ids->ca->cert);
	cl = harness_stack1(ids->client->cert);
	ids->cctx = tls_client_ctx_new(NULL, ids->client, ca, &err);
	ids->sctx = tls_server_ctx_new(NULL, ids->server, cl, &err);
	tls_certs_free(ca);
	tls_certs_free(cl);
	*state = ids;
	return ids->cctx && ids->sctx ? 0 : -1;
}

static int ids_teardown(void **state)
{
	struct ids *ids = *state;

	SSL_CTX_free(ids->cctx);
	SSL_CTX_free(ids->sctx);
	pki_identity_free(ids->ca);
	pki_identity_free(ids->client);
	pki_identity_free(ids->server);
	free(ids);
	return 0;
}

/* ---- what the callback saw ---- */

struct result {
	struct loop *loop;
	int calls;
	struct stream *s;
	struct pp_err err;
};

static void on_done(void *arg, struct stream *s, const struct pp_err *err)
{
	struct result *r = arg;

	r->calls++;
	r->s = s;
	if (err)
		r->err = *err;
	loop_stop(r->loop);
}

static void on_safety(void *arg)
{
	loop_stop(arg);
}

struct safety {
	struct loop *loop;
	bool fired;
};

static void on_safety_fired(void *arg)
{
	struct safety *sf = arg;

	sf->fired = true;
	loop_stop(sf->loop);
}

/* Runs the loop until the dial reports (or the safety timer). */
static void run(struct loop *l)
{
	struct safety sf = { .loop = l };
	struct loop_timer *t = loop_timer_add(l, SAFETY_MS, on_safety_fired, &sf);

	loop_run(l);
	if (!sf.fired)
		loop_timer_cancel(l, t);
}

/* ---- a TLS server in a thread: accept one connection, handshake, answer "ping" ---- */

struct server {
	pthread_t th;
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;
	int hs_rc;
	struct pp_err err;
};

static void *server_main(void *arg)
{
	struct server *sv = arg;
	int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
	struct stream *s = fd >= 0 ? tls_stream_new(sv->ctx, fd, true, NULL, &sv->err) : NULL;
	char buf[8];

	if (!s)
		return NULL;
	/* only the server side here: the client runs in the test's loop */
	sv->hs_rc = harness_handshake_one(s, &sv->err);
	if (sv->hs_rc == 1 && harness_read(s, buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0) {
		stream_write(s, "pong", 4);
		harness_read(s, buf, sizeof(buf));   /* until the client closes */
	}
	stream_free(s);
	return NULL;
}

static void server_start(struct server *sv, SSL_CTX *ctx)
{
	memset(sv, 0, sizeof(*sv));
	sv->ctx = ctx;
	sv->lfd = harness_listen(&sv->port);
	assert_true(sv->lfd >= 0);
	assert_int_equal(pthread_create(&sv->th, NULL, server_main, sv), 0);
}

static void server_join(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
}

static void port_str(char *buf, size_t size, uint16_t port)
{
	snprintf(buf, size, "%u", port);
}

/* ---- tests ---- */

static void test_dial_tls_succeeds(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	struct server sv;
	char port[8], buf[8];
	struct dial *d;

	server_start(&sv, ids->sctx);
	port_str(port, sizeof(port), sv.port);
	d = dial_tcp_async(l, "127.0.0.1", port, ids->cctx, NAME, 2000, on_done, &r);
	assert_non_null(d);
	assert_int_equal(r.calls, 0);
	run(l);
	assert_int_equal(r.calls, 1);
	assert_non_null(r.s);
	/* the stream is ready: data flows through it */
	assert_int_equal(stream_write(r.s, "ping", 4), 4);
	assert_int_equal(harness_read(r.s, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);
	stream_free(r.s);
	server_join(&sv);
	assert_int_equal(sv.hs_rc, 1);
	loop_free(l);
}

static void test_dial_closed_port_fails(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	uint16_t p;
	int lfd = harness_listen(&p);
	char port[8], want[96];

	close(lfd);   /* nothing listens there any more */
	port_str(port, sizeof(port), p);
	assert_non_null(dial_tcp_async(l, "127.0.0.1", port, NULL, NULL, 2000, on_done, &r));
	assert_int_equal(r.calls, 0);   /* never from inside dial_tcp_async */
	run(l);
	assert_int_equal(r.calls, 1);
	assert_null(r.s);
	assert_int_equal(r.err.code, PP_UNAVAILABLE);
	snprintf(want, sizeof(want), "connecting to 127.0.0.1:%u: Connection refused", p);
	assert_string_equal(r.err.msg, want);
	loop_free(l);
}

static void test_dial_wrong_server_name_fails(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	struct server sv;
	char port[8], want[160];

	server_start(&sv, ids->sctx);
	port_str(port, sizeof(port), sv.port);
	assert_non_null(dial_tcp_async(l, "127.0.0.1", port, ids->cctx, "podvm-other", 2000, on_done, &r));
	run(l);
	assert_int_equal(r.calls, 1);
	assert_null(r.s);
	assert_int_equal(r.err.code, PP_UNAUTHENTICATED);
	snprintf(want, sizeof(want),
		 "TLS handshake with 127.0.0.1:%u failed: certificate verify failed: hostname mismatch (expected podvm-other)",
		 sv.port);
	assert_string_equal(r.err.msg, want);
	server_join(&sv);
	assert_int_equal(sv.hs_rc, -1);
	loop_free(l);
}

/* A peer that accepts TCP but never speaks TLS: the timeout ends the dial. */
static void test_dial_handshake_timeout(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	uint16_t p;
	int lfd = harness_listen(&p);
	char port[8], want[128];
	uint64_t t0 = pp_now_ms();

	port_str(port, sizeof(port), p);
	assert_non_null(dial_tcp_async(l, "127.0.0.1", port, ids->cctx, NAME, 200, on_done, &r));
	run(l);
	assert_int_equal(r.calls, 1);
	assert_null(r.s);
	assert_int_equal(r.err.code, PP_DEADLINE_EXCEEDED);
	snprintf(want, sizeof(want), "TLS handshake with 127.0.0.1:%u timed out after 200 ms", p);
	assert_string_equal(r.err.msg, want);
	assert_true(pp_now_ms() - t0 >= 190);
	assert_true(pp_now_ms() - t0 < 2000);
	close(lfd);
	loop_free(l);
}

static void test_dial_plain_succeeds(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	uint16_t p;
	int lfd = harness_listen(&p), afd;
	char port[8], buf[8];

	port_str(port, sizeof(port), p);
	assert_non_null(dial_tcp_async(l, "127.0.0.1", port, NULL, NULL, 0, on_done, &r));
	run(l);
	assert_int_equal(r.calls, 1);
	assert_non_null(r.s);
	assert_int_equal(stream_write(r.s, "hi", 2), 2);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	assert_int_equal(read(afd, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	close(afd);
	close(lfd);
	stream_free(r.s);
	loop_free(l);
}

static void test_dial_bad_address_fails_async(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };

	assert_non_null(dial_tcp_async(l, "localhost", "15150", NULL, NULL, 1000, on_done, &r));
	assert_int_equal(r.calls, 0);
	run(l);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(r.err.msg, "localhost:15150"));
	assert_non_null(dial_tcp_async(l, "::1", "x", NULL, NULL, 1000, on_done, &r));
	run(l);
	assert_int_equal(r.calls, 2);
	assert_non_null(strstr(r.err.msg, "[::1]:x"));
	loop_free(l);
}

/* Cancelled: never calls back, releases everything (ASan checks the "everything"). */
static void test_dial_cancel(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	struct result r = { .loop = l };
	uint16_t p;
	int lfd = harness_listen(&p);
	char port[8];
	struct dial *d;

	port_str(port, sizeof(port), p);
	d = dial_tcp_async(l, "127.0.0.1", port, ids->cctx, NAME, 150, on_done, &r);
	assert_non_null(d);
	loop_timer_add(l, 50, on_safety, l);   /* let the dial reach the handshake */
	loop_run(l);
	dial_cancel(d);
	loop_timer_add(l, 300, on_safety, l);   /* past its own timeout: nothing may fire */
	loop_run(l);
	assert_int_equal(r.calls, 0);
	dial_cancel(NULL);
	close(lfd);
	loop_free(l);
}

/* done may start the next dial (the proxy re-dials from its callback). */
struct chain {
	struct loop *loop;
	const char *port_ok;
	const char *port_closed;
	int failures;
	struct result ok;
};

static void on_chain_done(void *arg, struct stream *s, const struct pp_err *err)
{
	struct chain *c = arg;

	(void)err;
	assert_null(s);
	if (++c->failures == 3) {
		assert_non_null(dial_tcp_async(c->loop, "127.0.0.1", c->port_ok, NULL, NULL, 1000,
					       on_done, &c->ok));
		return;
	}
	assert_non_null(dial_tcp_async(c->loop, "127.0.0.1", c->port_closed, NULL, NULL, 1000, on_chain_done, c));
}

static void test_dial_redial_from_callback(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct loop *l = loop_new(&err);
	uint16_t p, pc;
	int lfd = harness_listen(&p), cfd = harness_listen(&pc);
	char port[8], closed[8];
	struct chain c = { .loop = l, .port_ok = port, .port_closed = closed, .ok = { .loop = l } };

	close(cfd);
	port_str(port, sizeof(port), p);
	port_str(closed, sizeof(closed), pc);
	assert_non_null(dial_tcp_async(l, "127.0.0.1", closed, NULL, NULL, 1000, on_chain_done, &c));
	run(l);
	assert_int_equal(c.failures, 3);
	assert_int_equal(c.ok.calls, 1);
	assert_non_null(c.ok.s);
	stream_free(c.ok.s);
	close(lfd);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dial_tls_succeeds),
		cmocka_unit_test(test_dial_closed_port_fails),
		cmocka_unit_test(test_dial_wrong_server_name_fails),
		cmocka_unit_test(test_dial_handshake_timeout),
		cmocka_unit_test(test_dial_plain_succeeds),
		cmocka_unit_test(test_dial_bad_address_fails_async),
		cmocka_unit_test(test_dial_cancel),
		cmocka_unit_test(test_dial_redial_from_callback),
	};

	return cmocka_run_group_tests(tests, ids_setup, ids_teardown);
}
