/*
 * ttRPC server tests, driven from outside the loop like a real client would: with the blocking
 * helper (ttrpc_sync_*) and with raw frames for what a well-behaved client never sends
 * (even/reused ids, garbage, oversize and truncated frames). Covers the protocol's error
 * statuses and texts, cancellation (client gone, deadline), graceful shutdown and many
 * concurrent connections.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "lib/cancel.h"
#include "lib/workpool.h"
#include "ttrpc_fixture.h"

#define SVC "test.Echo"

/* What the Hold handler does with the call, on a worker thread. */
enum hold_mode { HOLD_WAIT_CANCEL, HOLD_REPLY_LATE };

struct env {
	struct fixture fx;
	struct ttrpc_server *srv;
	struct workpool *pool;
	enum hold_mode mode;
	sem_t held;             /* a Hold call reached its worker */
	sem_t hold_done;        /* the worker finished */
	enum cancel_reason why; /* what the worker saw */
	uint64_t waited_ms;     /* how long the worker waited for the token */
	sem_t shut;             /* shutdown's done callback ran */
	uint64_t shut_at_ms;
};

static struct env E;

static void h_echo(struct ttrpc_call *c, void *arg)
{
	size_t len;
	const uint8_t *p = ttrpc_call_payload(c, &len);

	(void)arg;
	ttrpc_call_reply(c, p, len);
}

static void h_fail(struct ttrpc_call *c, void *arg)
{
	(void)arg;
	ttrpc_call_reply_error(c, PP_NOT_FOUND, "sandbox %s not found", "abc");
}

static void h_empty(struct ttrpc_call *c, void *arg)
{
	(void)arg;
	ttrpc_call_reply(c, NULL, 0);
}

static void hold_job(void *arg)
{
	struct ttrpc_call *c = arg;
	struct cancel *tok = cancel_ref(ttrpc_call_cancel(c));
	uint64_t t0 = pp_now_ms();

	sem_post(&E.held);
	if (E.mode == HOLD_WAIT_CANCEL) {
		cancel_sleep_ms(tok, 10000);
		E.waited_ms = pp_now_ms() - t0;
		E.why = cancel_why(tok);
		ttrpc_call_reply_error(c, E.why == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
				       "%s", cancel_reason_text(E.why));
	} else {
		cancel_sleep_ms(NULL, 300);
		E.why = cancel_why(tok);
		ttrpc_call_reply(c, (const uint8_t *)"late", 4);
	}
	cancel_unref(tok);
	sem_post(&E.hold_done);
}

static void h_hold(struct ttrpc_call *c, void *arg)
{
	(void)arg;
	assert_int_equal(workpool_submit(E.pool, hold_job, c), 0);
}

static void h_fallback(struct ttrpc_call *c, void *arg)
{
	(void)arg;
	ttrpc_call_reply_error(c, PP_ABORTED, "fallback %s/%s", ttrpc_call_service(c),
			       ttrpc_call_method(c));
}

static int setup(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	memset(&E, 0, sizeof(E));
	fixture_init(&E.fx);
	sem_init(&E.held, 0, 0);
	sem_init(&E.hold_done, 0, 0);
	sem_init(&E.shut, 0, 0);
	E.pool = workpool_new(2, &err);
	E.srv = ttrpc_server_new(E.fx.loop, &err);
	assert_non_null(E.pool);
	assert_non_null(E.srv);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Echo", h_echo, NULL), 0);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Fail", h_fail, NULL), 0);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Empty", h_empty, NULL), 0);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Hold", h_hold, NULL), 0);
	assert_int_equal(ttrpc_server_register(E.srv, SVC, "Echo", h_echo, NULL), -1);
	assert_int_equal(ttrpc_server_listen_unix(E.srv, E.fx.sock, &err), 0);
	fixture_start(&E.fx);
	return 0;
}

static void free_server(void *arg)
{
	ttrpc_server_free(arg);
}

static int teardown(void **state)
{
	(void)state;
	fixture_fini(&E.fx, free_server, E.srv);
	workpool_free(E.pool);
	sem_destroy(&E.held);
	sem_destroy(&E.hold_done);
	sem_destroy(&E.shut);
	return 0;
}

static int dial(void)
{
	struct pp_err err = { 0 };
	int fd = ttrpc_sync_dial_unix(E.fx.sock, &err);

	assert_true(fd >= 0);
	return fd;
}

struct counts {
	unsigned conns, inflight;
};

static void read_counts(void *arg)
{
	struct counts *c = arg;

	c->conns = ttrpc_server_connections(E.srv);
	c->inflight = ttrpc_server_inflight(E.srv);
}

/* Waits until the server has no connection left (closing is asynchronous). */
static void wait_no_connections(void)
{
	struct counts c;

	for (int i = 0; i < 500; i++) {
		fixture_run(&E.fx, read_counts, &c);
		if (c.conns == 0)
			return;
		usleep(10000);
	}
	fail_msg("server still has %u connections", c.conns);
}

static void test_echo_and_statuses(void **state)
{
	struct pp_err err = { 0 };
	uint32_t next = 1;
	uint8_t *out = NULL;
	size_t len = 0;
	int fd = dial();

	(void)state;
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Echo", (const uint8_t *)"hello", 5, 0,
					 &out, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "hello", 5);
	free(out);
	assert_int_equal(next, 3);

	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Empty", NULL, 0, 0, &out, &len, &err), 0);
	assert_int_equal(len, 0);
	free(out);

	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Fail", NULL, 0, 0, &out, &len, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_string_equal(err.msg, "sandbox abc not found");
	close(fd);
}

static void test_unimplemented_texts(void **state)
{
	struct pp_err err = { 0 };
	uint32_t next = 1;
	int fd = dial();

	(void)state;
	assert_int_equal(ttrpc_sync_call(fd, &next, "nope.Svc", "Echo", NULL, 0, 0, NULL, NULL, &err), -1);
	assert_int_equal(err.code, PP_UNIMPLEMENTED);
	assert_string_equal(err.msg, "service nope.Svc");
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Nope", NULL, 0, 0, NULL, NULL, &err), -1);
	assert_int_equal(err.code, PP_UNIMPLEMENTED);
	assert_string_equal(err.msg, "method Nope");
	/* the connection is still good */
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Empty", NULL, 0, 0, NULL, NULL, &err), 0);
	close(fd);
}

static void set_fallback(void *arg)
{
	ttrpc_server_set_fallback(E.srv, arg ? h_fallback : NULL, NULL);
}

static void test_fallback_gets_unknown(void **state)
{
	struct pp_err err = { 0 };
	uint32_t next = 1;
	int fd = dial();

	(void)state;
	fixture_run(&E.fx, set_fallback, (void *)1);
	assert_int_equal(ttrpc_sync_call(fd, &next, "grpc.AgentService", "CreateContainer", NULL, 0,
					 0, NULL, NULL, &err), -1);
	assert_int_equal(err.code, PP_ABORTED);
	assert_string_equal(err.msg, "fallback grpc.AgentService/CreateContainer");
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Other", NULL, 0, 0, NULL, NULL, &err), -1);
	assert_string_equal(err.msg, "fallback test.Echo/Other");
	/* registered methods still go to their handlers */
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Empty", NULL, 0, 0, NULL, NULL, &err), 0);
	fixture_run(&E.fx, set_fallback, NULL);
	close(fd);
}

static void test_stream_id_rules(void **state)
{
	struct raw_result r;
	int fd = dial();

	(void)state;
	assert_int_equal(raw_send_request(fd, 2, SVC, "Echo", "x", 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.id, 2);
	assert_int_equal(r.code, PP_INVALID_ARGUMENT);
	assert_string_equal(r.message, "StreamID must be odd for client initiated streams");

	assert_int_equal(raw_send_request(fd, 5, SVC, "Echo", "five", 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.id, 5);
	assert_int_equal(r.code, PP_OK);
	assert_string_equal(r.payload, "five");

	for (uint32_t id = 5; id >= 3; id -= 2) {   /* same id again, then a smaller one */
		assert_int_equal(raw_send_request(fd, id, SVC, "Echo", "again", 0), 0);
		assert_int_equal(raw_read_result(fd, &r, 2000), 0);
		assert_int_equal(r.id, id);
		assert_int_equal(r.code, PP_INVALID_ARGUMENT);
		assert_string_equal(r.message, "StreamID cannot be re-used and must increment");
	}
	assert_int_equal(raw_send_request(fd, 7, SVC, "Echo", "seven", 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.id, 7);
	assert_string_equal(r.payload, "seven");
	close(fd);
}

static void test_garbage_request(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0x7f, 'x' };   /* string runs past the end */
	struct raw_result r;
	int fd = dial();

	(void)state;
	assert_int_equal(raw_send_frame(fd, 1, TTRPC_TYPE_REQUEST, junk, sizeof(junk)), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.id, 1);
	assert_int_equal(r.code, PP_INVALID_ARGUMENT);
	assert_true(strncmp(r.message, "unmarshal request error: ", 25) == 0);
	/* an empty Request names no service */
	assert_int_equal(raw_send_frame(fd, 3, TTRPC_TYPE_REQUEST, NULL, 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.code, PP_UNIMPLEMENTED);
	assert_string_equal(r.message, "service ");
	close(fd);
}

static void test_unknown_types_ignored(void **state)
{
	struct raw_result r;
	int fd = dial();

	(void)state;
	assert_int_equal(raw_send_frame(fd, 1, 0x07, "zz", 2), 0);
	assert_int_equal(raw_send_frame(fd, 1, TTRPC_TYPE_DATA, "dd", 2), 0);
	assert_int_equal(raw_send_request(fd, 3, SVC, "Echo", "after", 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 2000), 0);
	assert_int_equal(r.id, 3);
	assert_string_equal(r.payload, "after");
	close(fd);
}

static void test_oversize_frame_keeps_connection(void **state)
{
	size_t n = TTRPC_MAX_DATA + 1;
	uint8_t *big = malloc(n);
	struct raw_result r;
	int fd = dial();

	(void)state;
	assert_non_null(big);
	memset(big, 0x0a, n);   /* would even parse as protobuf garbage if it were buffered */
	assert_int_equal(raw_send_frame(fd, 1, TTRPC_TYPE_REQUEST, big, n), 0);
	free(big);
	assert_int_equal(raw_send_request(fd, 3, SVC, "Echo", "still here", 0), 0);
	assert_int_equal(raw_read_result(fd, &r, 5000), 0);
	assert_int_equal(r.id, 1);
	assert_int_equal(r.code, PP_RESOURCE_EXHAUSTED);
	assert_string_equal(r.message, "message length 4194305 exceed maximum message size of 4194304");
	assert_int_equal(raw_read_result(fd, &r, 5000), 0);
	assert_int_equal(r.id, 3);
	assert_int_equal(r.code, PP_OK);
	assert_string_equal(r.payload, "still here");
	close(fd);
}

static void test_max_size_frame_accepted(void **state)
{
	/* a Request of exactly TTRPC_MAX_DATA bytes is served */
	size_t plen = TTRPC_MAX_DATA - 64;
	uint8_t *payload = malloc(plen);
	uint8_t *req = NULL, *out = NULL;
	size_t len = 0, out_len = 0;
	struct pp_err err = { 0 };
	uint32_t next = 1;
	int fd = dial();

	(void)state;
	memset(payload, 'p', plen);
	assert_int_equal(ttrpc_request_encode(SVC, "Empty", payload, plen, 0, &req, &len, &err), 0);
	assert_true(len <= TTRPC_MAX_DATA);
	free(req);
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Echo", payload, plen, 0, &out, &out_len,
					 &err), 0);
	assert_int_equal(out_len, plen);
	assert_memory_equal(out, payload, plen);
	free(out);
	free(payload);
	close(fd);
}

static void test_truncated_frames_then_close(void **state)
{
	static const uint8_t half_header[] = { 0, 0, 0, 20, 0 };
	struct pp_err err = { 0 };
	uint8_t hdr[TTRPC_HEADER_SIZE];
	struct ttrpc_header h = { .length = 100, .stream_id = 1, .type = TTRPC_TYPE_REQUEST };
	uint32_t next = 1;
	int fd = dial();

	(void)state;
	ttrpc_header_encode(&h, hdr);
	assert_int_equal(raw_write_all(fd, hdr, sizeof(hdr)), 0);
	assert_int_equal(raw_write_all(fd, "0123456789", 10), 0);
	close(fd);
	fd = dial();
	assert_int_equal(raw_write_all(fd, half_header, sizeof(half_header)), 0);
	close(fd);
	h.length = TTRPC_MAX_DATA + 100;   /* in the middle of discarding */
	ttrpc_header_encode(&h, hdr);
	fd = dial();
	assert_int_equal(raw_write_all(fd, hdr, sizeof(hdr)), 0);
	assert_int_equal(raw_write_all(fd, "0123456789", 10), 0);
	close(fd);
	wait_no_connections();
	fd = dial();
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Empty", NULL, 0, 0, NULL, NULL, &err), 0);
	close(fd);
}

static void test_client_close_cancels_call(void **state)
{
	struct counts c;
	int fd = dial();

	(void)state;
	E.mode = HOLD_WAIT_CANCEL;
	assert_int_equal(raw_send_request(fd, 1, SVC, "Hold", NULL, 0), 0);
	sem_wait(&E.held);
	close(fd);
	sem_wait(&E.hold_done);
	assert_int_equal(E.why, CANCEL_CLOSED);
	assert_true(E.waited_ms < 5000);
	/* the reply found no connection: dropped, and the call freed */
	for (int i = 0; i < 200; i++) {
		fixture_run(&E.fx, read_counts, &c);
		if (c.inflight == 0)
			break;
		usleep(5000);
	}
	assert_int_equal(c.inflight, 0);
	assert_int_equal(c.conns, 0);
}

static void test_deadline_fires_cancel(void **state)
{
	struct raw_result r;
	uint64_t t0 = pp_now_ms(), dt;
	int fd = dial();

	(void)state;
	E.mode = HOLD_WAIT_CANCEL;
	assert_int_equal(raw_send_request(fd, 1, SVC, "Hold", NULL, 200 * 1000000LL), 0);
	assert_int_equal(raw_read_result(fd, &r, 5000), 0);
	dt = pp_now_ms() - t0;
	sem_wait(&E.hold_done);
	assert_int_equal(E.why, CANCEL_DEADLINE);
	assert_int_equal(r.code, PP_DEADLINE_EXCEEDED);
	assert_string_equal(r.message, "deadline exceeded");
	assert_true(dt >= 190);
	assert_true(dt < 2000);
	close(fd);
}

static void test_sync_client_timeout(void **state)
{
	struct pp_err err = { 0 };
	uint32_t next = 1;
	uint64_t t0 = pp_now_ms(), dt;
	int fd = dial();

	(void)state;
	E.mode = HOLD_REPLY_LATE;   /* answers after 300 ms, the client gives up at 100 ms */
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Hold", NULL, 0, 100 * 1000000LL, NULL,
					 NULL, &err), -1);
	dt = pp_now_ms() - t0;
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	assert_true(dt >= 95 && dt < 2000);
	sem_wait(&E.hold_done);
	/* the late reply for stream 1 is skipped by the next call on the same fd */
	assert_int_equal(ttrpc_sync_call(fd, &next, SVC, "Echo", (const uint8_t *)"ok", 2, 0, NULL,
					 NULL, &err), 0);
	close(fd);
}

/* ---- many connections ---- */

#define MANY_THREADS 4
#define MANY_PER_THREAD 50

static void *many_main(void *arg)
{
	int fds[MANY_PER_THREAD];
	uintptr_t t = (uintptr_t)arg;
	long failures = 0;

	for (int i = 0; i < MANY_PER_THREAD; i++) {
		struct pp_err err;

		fds[i] = ttrpc_sync_dial_unix(E.fx.sock, &err);
		if (fds[i] < 0)
			failures++;
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < MANY_PER_THREAD; i++) {
			char msg[32], *out = NULL;
			size_t len = 0;
			uint32_t next = 1 + 2 * (uint32_t)round;
			struct pp_err err;

			if (fds[i] < 0)
				continue;
			snprintf(msg, sizeof(msg), "t%lu-c%d-r%d", (unsigned long)t, i, round);
			if (ttrpc_sync_call(fds[i], &next, SVC, "Echo", (const uint8_t *)msg,
					    strlen(msg), 5000000000LL, (uint8_t **)&out, &len, &err) < 0 ||
			    len != strlen(msg) || memcmp(out, msg, len) != 0)
				failures++;
			free(out);
		}
	}
	for (int i = 0; i < MANY_PER_THREAD; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return (void *)failures;
}

static void test_many_connections(void **state)
{
	pthread_t th[MANY_THREADS];

	(void)state;
	for (uintptr_t i = 0; i < MANY_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, many_main, (void *)i), 0);
	for (int i = 0; i < MANY_THREADS; i++) {
		void *failures;

		pthread_join(th[i], &failures);
		assert_int_equal((long)failures, 0);
	}
	wait_no_connections();
}

/* ---- shutdown ---- */

static void on_shutdown_done(void *arg)
{
	(void)arg;
	E.shut_at_ms = pp_now_ms();
	sem_post(&E.shut);
}

static void start_shutdown(void *arg)
{
	ttrpc_server_shutdown(E.srv, (uint64_t)(uintptr_t)arg, on_shutdown_done, NULL);
}

static void test_shutdown_waits_for_inflight(void **state)
{
	struct raw_result r;
	struct stat st;
	uint64_t t0;
	int fd = dial();

	(void)state;
	E.mode = HOLD_REPLY_LATE;
	assert_int_equal(raw_send_request(fd, 1, SVC, "Hold", NULL, 0), 0);
	sem_wait(&E.held);
	t0 = pp_now_ms();
	fixture_run(&E.fx, start_shutdown, (void *)(uintptr_t)5000);
	assert_int_equal(stat(E.fx.sock, &st), -1);   /* listener gone, socket file unlinked */
	assert_int_equal(raw_read_result(fd, &r, 5000), 0);
	assert_int_equal(r.code, PP_OK);
	assert_string_equal(r.payload, "late");
	sem_wait(&E.shut);
	assert_true(E.shut_at_ms - t0 >= 150);   /* waited for the reply (300 ms after start) */
	assert_true(E.shut_at_ms - t0 < 4000);   /* ... not for the grace period */
	sem_wait(&E.hold_done);
	assert_int_equal(E.why, CANCEL_NONE);
	/* then the connection was closed */
	assert_int_equal(raw_read_result(fd, &r, 2000), -1);
	close(fd);
}

static void test_shutdown_bounded_by_grace(void **state)
{
	struct raw_result r;
	uint64_t t0;
	int fd = dial();

	(void)state;
	E.mode = HOLD_WAIT_CANCEL;   /* never answers until its token fires */
	assert_int_equal(raw_send_request(fd, 1, SVC, "Hold", NULL, 0), 0);
	sem_wait(&E.held);
	t0 = pp_now_ms();
	fixture_run(&E.fx, start_shutdown, (void *)(uintptr_t)300);
	sem_wait(&E.shut);
	assert_true(E.shut_at_ms - t0 >= 290);
	assert_true(E.shut_at_ms - t0 < 3000);
	sem_wait(&E.hold_done);
	assert_int_equal(E.why, CANCEL_SHUTDOWN);
	assert_int_equal(raw_read_result(fd, &r, 2000), -1);   /* closed, reply dropped */
	close(fd);
}

/* A stream whose handshake never finishes (a peer that connects and goes silent). */
static ssize_t stuck_io(struct stream *st, void *buf, size_t n)
{
	(void)st;
	(void)buf;
	(void)n;
	errno = EAGAIN;
	return -1;
}

static ssize_t stuck_write(struct stream *st, const void *buf, size_t n)
{
	(void)st;
	(void)buf;
	(void)n;
	errno = EAGAIN;
	return -1;
}

static int stuck_handshake(struct stream *st, struct pp_err *err)
{
	(void)err;
	st->want = EPOLLIN;
	return 0;
}

static void stuck_free(struct stream *st)
{
	close(st->fd);
	free(st);
}

static const struct stream_ops stuck_ops = {
	.read = stuck_io, .write = stuck_write, .handshake = stuck_handshake, .free = stuck_free,
};

static void adopt_stuck(void *arg)
{
	struct stream *st = calloc(1, sizeof(*st));
	struct pp_err err = { 0 };

	st->ops = &stuck_ops;
	st->fd = *(int *)arg;
	snprintf(st->peer, sizeof(st->peer), "stuck");
	ttrpc_server_set_handshake_timeout(E.srv, 200);
	assert_int_equal(ttrpc_server_adopt(E.srv, st, &err), 0);
}

static void test_handshake_deadline_closes(void **state)
{
	int sv[2];
	struct counts c;
	uint64_t t0 = pp_now_ms();

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fixture_run(&E.fx, adopt_stuck, &sv[0]);
	fixture_run(&E.fx, read_counts, &c);
	assert_int_equal(c.conns, 1);
	wait_no_connections();
	assert_true(pp_now_ms() - t0 >= 150);
	close(sv[1]);
}

struct takeover_arg {
	struct ttrpc_server *b;
	int rc_refused, rc_taken;
	int code_refused;
};

static void takeover_in_loop(void *arg)
{
	struct takeover_arg *t = arg;
	struct pp_err err = { 0 };

	t->b = ttrpc_server_new(E.fx.loop, &err);
	t->rc_refused = ttrpc_server_listen_unix(t->b, E.fx.sock, &err);
	t->code_refused = err.code;
	ttrpc_server_set_takeover(t->b, true);
	t->rc_taken = ttrpc_server_listen_unix(t->b, E.fx.sock, &err);
	/* the predecessor goes away: it must leave the successor's socket file alone */
	ttrpc_server_free(E.srv);
	E.srv = t->b;
}

static void test_takeover_keeps_successor_socket(void **state)
{
	struct takeover_arg t = { 0 };
	struct pp_err err = { 0 };
	uint32_t sid = 1;
	uint8_t *resp = NULL;
	size_t len = 0;
	struct stat st;
	int fd;

	(void)state;
	fixture_run(&E.fx, takeover_in_loop, &t);
	assert_int_equal(t.rc_refused, -1);
	assert_int_equal(t.code_refused, PP_ALREADY_EXISTS);
	assert_int_equal(t.rc_taken, 0);
	assert_int_equal(lstat(E.fx.sock, &st), 0);
	fd = ttrpc_sync_dial_unix(E.fx.sock, &err);
	assert_true(fd >= 0);
	/* the successor answers (it has no services) */
	assert_int_equal(ttrpc_sync_call(fd, &sid, SVC, "Echo", NULL, 0, 0, &resp, &len, &err), -1);
	assert_int_equal(err.code, PP_UNIMPLEMENTED);
	close(fd);
}

static void test_listen_errors(void **state)
{
	struct pp_err err = { 0 };
	char longpath[200];
	char file[160];
	FILE *f;

	(void)state;
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	/* the loop is running: listen from its thread */
	assert_int_equal(ttrpc_sync_dial_unix(longpath, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "/aaaa"));
	assert_non_null(strstr(err.msg, "max 107"));

	snprintf(file, sizeof(file), "%s/plain", E.fx.dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	{
		struct ttrpc_server *s2 = ttrpc_server_new(E.fx.loop, &err);

		assert_int_equal(ttrpc_server_listen_unix(s2, longpath, &err), -1);
		assert_non_null(strstr(err.msg, "max 107"));
		assert_non_null(strstr(err.msg, longpath));
		assert_int_equal(ttrpc_server_listen_unix(s2, file, &err), -1);
		assert_int_equal(err.code, PP_FAILED_PRECONDITION);
		assert_non_null(strstr(err.msg, "is not a socket"));
		assert_int_equal(ttrpc_server_listen_unix(s2, E.fx.sock, &err), -1);
		assert_int_equal(err.code, PP_ALREADY_EXISTS);
		ttrpc_server_free(s2);   /* did not create anything: the live socket stays */
	}
	unlink(file);
	{
		int fd = dial();

		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_echo_and_statuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unimplemented_texts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_gets_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_id_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_types_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize_frame_keeps_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_size_frame_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_frames_then_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_close_cancels_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_fires_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_client_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_waits_for_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_bounded_by_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_deadline_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_keeps_successor_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
