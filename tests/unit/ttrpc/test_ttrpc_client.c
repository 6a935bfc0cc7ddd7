/*
 * ttRPC loop client tests. Two kinds of peer: our own server in the same loop (1000 calls in
 * flight, answered in a shuffled order, partly from a worker thread), and a scripted peer on
 * the other end of a socketpair, driven from the test thread, that answers out of order, with
 * an unknown id, an oversize frame, late, or not at all, and drops the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "lib/workpool.h"
#include "proto/ttrpc.pb-c.h"
#include "ttrpc_fixture.h"

#define NCALLS 1000
#define SVC "test.Defer"

struct call_rec {
	int idx;
	int done;               /* times the callback ran */
	int code;
	char message[PP_ERR_MSG_MAX];
	char payload[64];
	uint8_t raw[64];
	size_t raw_len;
	int order;              /* sequence number of the callback */
};

struct env {
	struct fixture fx;
	struct ttrpc_server *srv;
	struct ttrpc_client *cl;
	struct workpool *pool;
	int peer;               /* scripted peer's end of the socketpair, -1 if none */
	struct ttrpc_call *held[NCALLS];
	int nheld;
	struct call_rec rec[NCALLS];
	int ndone;
	int seq;
	sem_t all_done;
	int want_done;
	sem_t closed;
	int closed_order;
	char closed_msg[PP_ERR_MSG_MAX];
	int free_in_done;       /* the first callback frees the client */
};

static struct env E;

/* ---- callbacks ---- */

static void on_done(void *arg, const struct ttrpc_result *res)
{
	struct call_rec *r = arg;

	r->done++;
	r->code = res->code;
	r->order = ++E.seq;
	snprintf(r->message, sizeof(r->message), "%s", res->message);
	snprintf(r->payload, sizeof(r->payload), "%.*s", (int)res->payload_len,
		 res->payload ? (const char *)res->payload : "");
	if (res->raw && res->raw_len <= sizeof(r->raw)) {
		memcpy(r->raw, res->raw, res->raw_len);
		r->raw_len = res->raw_len;
	}
	if (E.free_in_done) {
		E.free_in_done = 0;
		ttrpc_client_free(E.cl);
		E.cl = NULL;
	}
	if (++E.ndone == E.want_done)
		sem_post(&E.all_done);
}

static void on_closed(void *arg, const struct pp_err *why)
{
	(void)arg;
	E.closed_order = ++E.seq;
	snprintf(E.closed_msg, sizeof(E.closed_msg), "%s", why->msg);
	sem_post(&E.closed);
}

static void wait_sem(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	while (sem_timedwait(s, &ts) < 0) {
		if (errno != EINTR)
			fail_msg("timed out waiting for callbacks (%d of %d done)", E.ndone, E.want_done);
	}
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	memset(&E, 0, sizeof(E));
	E.peer = -1;
	fixture_init(&E.fx);
	sem_init(&E.all_done, 0, 0);
	sem_init(&E.closed, 0, 0);
	E.pool = workpool_new(2, &err);
	assert_non_null(E.pool);
	for (int i = 0; i < NCALLS; i++)
		E.rec[i].idx = i;
	return 0;
}

static void free_all(void *arg)
{
	(void)arg;
	ttrpc_client_free(E.cl);
	E.cl = NULL;
	ttrpc_server_free(E.srv);
	E.srv = NULL;
}

static int teardown(void **state)
{
	(void)state;
	fixture_fini(&E.fx, free_all, NULL);
	workpool_free(E.pool);
	if (E.peer >= 0)
		close(E.peer);
	sem_destroy(&E.all_done);
	sem_destroy(&E.closed);
	return 0;
}

/* Client on one end of a socketpair, the scripted peer on the other; starts the loop. */
static void start_with_peer(void)
{
	struct pp_err err = { 0 };
	int sv[2];
	struct stream *st;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	st = stream_plain_new(sv[0], &err);
	assert_non_null(st);
	E.cl = ttrpc_client_new(E.fx.loop, st, on_closed, NULL, &err);
	assert_non_null(E.cl);
	E.peer = sv[1];
	fixture_start(&E.fx);
}

struct issue {
	int from, n;
	int64_t timeout_ns;
	int expect_fail;
};

static void issue_calls(void *arg)
{
	struct issue *is = arg;

	for (int i = is->from; i < is->from + is->n; i++) {
		char payload[32];
		struct pp_err err = { 0 };
		int r;

		snprintf(payload, sizeof(payload), "req-%d", i);
		r = ttrpc_client_call(E.cl, SVC, "Hold", (const uint8_t *)payload, strlen(payload),
				      is->timeout_ns, on_done, &E.rec[i], &err);
		if (r != (is->expect_fail ? -1 : 0))
			fail_msg("ttrpc_client_call %d: %s", i, err.msg);
	}
}

static void issue(int from, int n, int64_t timeout_ns)
{
	struct issue is = { .from = from, .n = n, .timeout_ns = timeout_ns };

	fixture_run(&E.fx, issue_calls, &is);
}

/* Reads one Request frame on the peer; checks it and returns its stream id. */
static uint32_t peer_read_request(char *payload, size_t size, int64_t *timeout_ns)
{
	struct ttrpc_header h;
	uint8_t *data = NULL;
	Ttrpc__Request *req;
	uint32_t id;

	assert_int_equal(raw_read_frame(E.peer, &h, &data, 5000), 0);
	assert_int_equal(h.type, TTRPC_TYPE_REQUEST);
	assert_int_equal(h.flags, 0);
	req = ttrpc__request__unpack(NULL, h.length, data);
	assert_non_null(req);
	assert_string_equal(req->service, SVC);
	assert_string_equal(req->method, "Hold");
	if (payload)
		snprintf(payload, size, "%.*s", (int)req->payload.len, (const char *)req->payload.data);
	if (timeout_ns)
		*timeout_ns = req->timeout_nano;
	id = h.stream_id;
	ttrpc__request__free_unpacked(req, NULL);
	free(data);
	return id;
}

static void peer_respond(uint32_t id, int code, const char *msg, const char *payload)
{
	uint8_t *resp = NULL;
	size_t len = 0;
	struct pp_err err;

	assert_int_equal(ttrpc_response_encode(code, msg, (const uint8_t *)payload,
					       payload ? strlen(payload) : 0, &resp, &len, &err), 0);
	assert_int_equal(raw_send_frame(E.peer, id, TTRPC_TYPE_RESPONSE, resp, len), 0);
	free(resp);
}

struct counts {
	unsigned pending;
	uint32_t last_id;
};

static void read_counts(void *arg)
{
	struct counts *c = arg;

	c->pending = E.cl ? ttrpc_client_pending(E.cl) : 0;
	c->last_id = E.cl ? ttrpc_client_last_id(E.cl) : 0;
}

/* ---- 1000 calls against our own server, answered in a shuffled order ---- */

static void reply_job(void *arg)
{
	struct ttrpc_call *c = arg;
	size_t len;
	const uint8_t *p = ttrpc_call_payload(c, &len);
	char out[64];

	snprintf(out, sizeof(out), "resp-%.*s", (int)len, (const char *)p);
	ttrpc_call_reply(c, (const uint8_t *)out, strlen(out));   /* from a worker thread */
}

static void h_defer(struct ttrpc_call *c, void *arg)
{
	unsigned seed = 12345;

	(void)arg;
	E.held[E.nheld++] = c;
	if (E.nheld < NCALLS)
		return;
	for (int i = NCALLS - 1; i > 0; i--) {   /* Fisher-Yates with a fixed seed */
		int j = (int)(rand_r(&seed) % (unsigned)(i + 1));
		struct ttrpc_call *t = E.held[i];

		E.held[i] = E.held[j];
		E.held[j] = t;
	}
	for (int i = 0; i < NCALLS; i++) {
		if (i % 3 == 0)
			assert_int_equal(workpool_submit(E.pool, reply_job, E.held[i]), 0);
		else
			reply_job(E.held[i]);
	}
}

static void test_thousand_interleaved_calls(void **state)
{
	struct pp_err err = { 0 };
	struct stream *st;
	struct counts c;
	int fd;

	(void)state;
	E.srv = ttrpc_server_new(E.fx.loop, &err);
	assert_non_null(E.srv);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Hold", h_defer, NULL), 0);
	assert_int_equal(ttrpc_server_listen_unix(E.srv, E.fx.sock, &err), 0);
	fd = ttrpc_sync_dial_unix(E.fx.sock, &err);
	assert_true(fd >= 0);
	st = stream_plain_new(fd, &err);
	assert_non_null(st);
	E.cl = ttrpc_client_new(E.fx.loop, st, on_closed, NULL, &err);
	assert_non_null(E.cl);
	E.want_done = NCALLS;
	fixture_start(&E.fx);

	issue(0, NCALLS, 0);
	wait_sem(&E.all_done);
	for (int i = 0; i < NCALLS; i++) {
		char want[32];

		snprintf(want, sizeof(want), "resp-req-%d", i);
		assert_int_equal(E.rec[i].done, 1);
		assert_int_equal(E.rec[i].code, PP_OK);
		assert_string_equal(E.rec[i].payload, want);
	}
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.pending, 0);
	assert_int_equal(c.last_id, 2 * NCALLS - 1);   /* 1, 3, 5, ... */
	assert_int_equal(E.closed_order, 0);
}

/* ---- scripted peer ---- */

static void test_out_of_order_unknown_oversize(void **state)
{
	size_t n = TTRPC_MAX_DATA + 1;
	uint8_t *big = malloc(n);
	uint32_t ids[4];
	char payload[32];
	struct counts c;

	(void)state;
	start_with_peer();
	E.want_done = 4;
	issue(0, 4, 0);
	for (int i = 0; i < 4; i++) {
		ids[i] = peer_read_request(payload, sizeof(payload), NULL);
		assert_int_equal(ids[i], 2 * i + 1);
	}
	peer_respond(99, PP_OK, NULL, "nobody's");              /* unknown id: dropped */
	peer_respond(ids[3], PP_OK, NULL, "seven");             /* status absent */
	{	/* status present with code 0 (as other servers may send) */
		static const uint8_t st0[] = { 0x0a, 0x04, 0x08, 0x00, 0x12, 0x00, 0x12, 0x05,
					       't', 'h', 'r', 'e', 'e' };

		assert_int_equal(raw_send_frame(E.peer, ids[1], TTRPC_TYPE_RESPONSE, st0,
						sizeof(st0)), 0);
	}
	assert_non_null(big);
	memset(big, 0x12, n);
	assert_int_equal(raw_send_frame(E.peer, ids[2], TTRPC_TYPE_RESPONSE, big, n), 0);
	free(big);
	peer_respond(ids[0], PP_NOT_FOUND, "nf", NULL);
	wait_sem(&E.all_done);

	assert_int_equal(E.rec[3].code, PP_OK);
	assert_string_equal(E.rec[3].payload, "seven");
	assert_int_equal(E.rec[3].order, 1);
	assert_int_equal(E.rec[1].code, PP_OK);
	assert_string_equal(E.rec[1].message, "");
	assert_string_equal(E.rec[1].payload, "three");
	assert_int_equal(E.rec[2].code, PP_RESOURCE_EXHAUSTED);
	assert_string_equal(E.rec[2].message,
			    "message length 4194305 exceed maximum message size of 4194304");
	assert_int_equal(E.rec[0].code, PP_NOT_FOUND);
	assert_string_equal(E.rec[0].message, "nf");
	for (int i = 0; i < 4; i++)
		assert_int_equal(E.rec[i].done, 1);

	/* the connection is still usable */
	E.want_done = 5;
	issue(4, 1, 0);
	assert_int_equal(peer_read_request(NULL, 0, NULL), 9);
	peer_respond(9, PP_OK, NULL, "nine");
	wait_sem(&E.all_done);
	assert_string_equal(E.rec[4].payload, "nine");
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.pending, 0);
	assert_int_equal(E.closed_order, 0);
}

static void test_drop_fails_pending_unavailable(void **state)
{
	struct counts c;

	(void)state;
	start_with_peer();
	E.want_done = 3;
	issue(0, 3, 0);
	for (int i = 0; i < 3; i++)
		peer_read_request(NULL, 0, NULL);
	close(E.peer);
	E.peer = -1;
	wait_sem(&E.all_done);
	wait_sem(&E.closed);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(E.rec[i].done, 1);
		assert_int_equal(E.rec[i].code, PP_UNAVAILABLE);
		assert_non_null(strstr(E.rec[i].message, "connection closed"));
		assert_true(E.rec[i].order < E.closed_order);   /* calls first, then on_closed */
	}
	assert_non_null(strstr(E.closed_msg, "connection closed"));
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.pending, 0);
	{	/* a call on a closed client fails at once */
		struct issue is = { .from = 3, .n = 1, .expect_fail = 1 };

		fixture_run(&E.fx, issue_calls, &is);
		assert_int_equal(E.rec[3].done, 0);
	}
}

static void test_free_inside_done_callback(void **state)
{
	(void)state;
	start_with_peer();
	E.want_done = 3;
	E.free_in_done = 1;
	issue(0, 3, 0);
	for (int i = 0; i < 3; i++)
		peer_read_request(NULL, 0, NULL);
	peer_respond(3, PP_OK, NULL, "first");   /* its callback frees the client */
	wait_sem(&E.all_done);
	assert_int_equal(E.rec[1].code, PP_OK);
	assert_int_equal(E.rec[1].order, 1);
	for (int i = 0; i < 3; i += 2) {
		assert_int_equal(E.rec[i].done, 1);
		assert_int_equal(E.rec[i].code, PP_UNAVAILABLE);
		assert_string_equal(E.rec[i].message, "connection closed");
	}
	assert_int_equal(E.closed_order, 0);   /* freed by its owner: no on_closed */
	/* the peer sees the connection closed */
	{
		struct ttrpc_header h;
		uint8_t *d = NULL;

		assert_int_equal(raw_read_frame(E.peer, &h, &d, 2000), -1);
	}
}

static void free_client(void *arg)
{
	(void)arg;
	ttrpc_client_free(E.cl);
	E.cl = NULL;
}

static void test_free_fails_pending(void **state)
{
	(void)state;
	start_with_peer();
	E.want_done = 2;
	issue(0, 2, 0);
	fixture_run(&E.fx, free_client, NULL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(E.rec[i].done, 1);
		assert_int_equal(E.rec[i].code, PP_UNAVAILABLE);
	}
}

static void test_local_deadline_and_late_response(void **state)
{
	int64_t timeout = 0;
	uint64_t t0 = pp_now_ms(), dt;
	struct counts c;

	(void)state;
	start_with_peer();
	E.want_done = 1;
	issue(0, 1, 100 * 1000000LL);
	assert_int_equal(peer_read_request(NULL, 0, &timeout), 1);
	assert_int_equal(timeout, 100 * 1000000LL);
	wait_sem(&E.all_done);
	dt = pp_now_ms() - t0;
	assert_int_equal(E.rec[0].code, PP_DEADLINE_EXCEEDED);
	assert_true(dt >= 95 && dt < 3000);
	peer_respond(1, PP_OK, NULL, "too late");   /* dropped */
	E.want_done = 2;
	issue(1, 1, 0);
	assert_int_equal(peer_read_request(NULL, 0, NULL), 3);
	peer_respond(3, PP_OK, NULL, "on time");
	wait_sem(&E.all_done);
	assert_int_equal(E.rec[0].done, 1);
	assert_string_equal(E.rec[1].payload, "on time");
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.pending, 0);
}

struct raw_call {
	uint8_t *req;
	size_t len;
	uint32_t id, id2;
};

static void issue_raw_and_abandon(void *arg)
{
	struct raw_call *rc = arg;
	struct pp_err err;

	rc->id = ttrpc_client_call_raw(E.cl, rc->req, rc->len, on_done, &E.rec[0], &err);
	rc->id2 = ttrpc_client_call_raw(E.cl, rc->req, rc->len, on_done, &E.rec[1], &err);
	ttrpc_client_abandon(E.cl, rc->id2);
	ttrpc_client_abandon(E.cl, 12345);   /* unknown: no-op */
}

static void test_call_raw_and_abandon(void **state)
{
	static const uint8_t resp[] = { 0x12, 0x03, 'r', 'a', 'w' };
	struct raw_call rc = { 0 };
	struct pp_err err;
	struct ttrpc_header h;
	uint8_t *data = NULL;
	struct counts c;

	(void)state;
	assert_int_equal(ttrpc_request_encode(SVC, "Hold", (const uint8_t *)"p", 1, 5, &rc.req,
					      &rc.len, &err), 0);
	start_with_peer();
	E.want_done = 1;
	fixture_run(&E.fx, issue_raw_and_abandon, &rc);
	assert_int_equal(rc.id, 1);
	assert_int_equal(rc.id2, 3);
	for (uint32_t id = 1; id <= 3; id += 2) {   /* relayed byte for byte */
		assert_int_equal(raw_read_frame(E.peer, &h, &data, 2000), 0);
		assert_int_equal(h.stream_id, id);
		assert_int_equal(h.length, rc.len);
		assert_memory_equal(data, rc.req, rc.len);
		free(data);
	}
	assert_int_equal(raw_send_frame(E.peer, 3, TTRPC_TYPE_RESPONSE, resp, sizeof(resp)), 0);
	assert_int_equal(raw_send_frame(E.peer, 1, TTRPC_TYPE_RESPONSE, resp, sizeof(resp)), 0);
	wait_sem(&E.all_done);
	assert_string_equal(E.rec[0].payload, "raw");
	assert_int_equal(E.rec[0].raw_len, sizeof(resp));
	assert_memory_equal(E.rec[0].raw, resp, sizeof(resp));
	assert_int_equal(E.rec[1].done, 0);   /* abandoned */
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.pending, 0);
	free(rc.req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thousand_interleaved_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order_unknown_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_fails_pending_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_inside_done_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_fails_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_deadline_and_late_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_raw_and_abandon, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
