/*
 * ttrpc_relay: calls relayed over one upstream connection, out of order, byte-for-byte except
 * for rewritten methods; upstream restarts (in-flight calls fail UNAVAILABLE naming the peer,
 * later calls work after the re-dial); calls waiting for a connection (bounded queue, own
 * deadline); a client going away abandons its upstream call; hostile frames from downstream.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/log.h"
#include "tests/unit/relay/relay_fixture.h"

#define N_MANY 1000

static struct rf F;

static int setup(void **state)
{
	(void)state;
	rf_init(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rf_fini(&F);
	return 0;
}

static void start_all(bool eager)
{
	assert_int_equal(rf_ups_start(&F), 0);
	assert_non_null(rf_relay_start(&F, eager, 0, 0));
	F.cl = rf_client_new(&F);
	assert_non_null(F.cl);
}

/* 1000 concurrent calls through one relay, answered in roughly reverse order. */
static void test_many_out_of_order(void **state)
{
	struct ttrpc_relay_stats st;
	unsigned i, inversions = 0;

	(void)state;
	start_all(true);
	F.delay_count = N_MANY;
	for (i = 0; i < N_MANY; i++) {
		uint8_t p[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };

		assert_int_equal(rf_call(&F, F.cl, i, "test.Svc", "Delay", p, 4, 0), 0);
	}
	assert_true(RF_WAIT_ALL(&F, N_MANY, 10000));
	for (i = 0; i < N_MANY; i++) {
		uint32_t got;

		assert_int_equal(F.res[i].code, PP_OK);
		assert_int_equal(F.res[i].payload_len, 4);
		got = (uint32_t)F.res[i].payload[0] << 24 | (uint32_t)F.res[i].payload[1] << 16 |
		      (uint32_t)F.res[i].payload[2] << 8 | F.res[i].payload[3];
		assert_int_equal(got, i);   /* each answer reached its own caller */
		if (i >= 20 && F.res[i].order < F.res[i - 20].order)
			inversions++;
	}
	/* later calls (shorter upstream delays) overtook earlier ones */
	assert_true(F.res[N_MANY - 1].order < F.res[0].order);
	assert_true(inversions > N_MANY / 2);
	ttrpc_relay_get_stats(F.relay, &st);
	assert_int_equal(st.relayed, N_MANY);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.reconnects, 0);
	assert_int_equal(F.dials, 1);           /* one upstream connection for all */
}

/* A Request with metadata and an unknown field, to an unknown service: relayed untouched. */
static const uint8_t req_unknown[] = {
	0x0a, 0x0b, 'n', 'o', '.', 'S', 'u', 'c', 'h', 'S', 'v', 'c', '.',   /* service (11) */
	0x12, 0x03, 'R', 'a', 'w',                                         /* method */
	0x1a, 0x03, 0x01, 0x02, 0x03,                                      /* payload */
	0x2a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',                      /* metadata k=v */
	0x48, 0x07,                                                        /* field 9: unknown */
};

static void test_unknown_method_byte_for_byte(void **state)
{
	(void)state;
	start_all(true);
	assert_int_equal(req_unknown[1], 11);
	assert_int_equal(rf_call_raw(&F, F.cl, 0, req_unknown, sizeof(req_unknown)), 0);
	assert_true(RF_WAIT_DONE(&F, 0, 3000));
	assert_int_equal(F.res[0].code, PP_OK);
	/* upstream got the very bytes the client sent */
	assert_int_equal(F.last_req_len, sizeof(req_unknown));
	assert_memory_equal(F.last_req, req_unknown, sizeof(req_unknown));
	/* and the client got the very Response bytes upstream sent */
	assert_int_equal(F.res[0].raw_len, sizeof(rf_raw_response));
	assert_memory_equal(F.res[0].raw, rf_raw_response, sizeof(rf_raw_response));

	/* an upstream error status passes through too */
	assert_int_equal(rf_call(&F, F.cl, 1, "x.Y", "Fail", NULL, 0, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 3000));
	assert_int_equal(F.res[1].code, PP_NOT_FOUND);
	assert_string_equal(F.res[1].msg, "upstream says no");
}

/* Rewrite hook: CreateContainer's payload gets "+edited"; "bad" payloads are refused. */
static int edit_hook(void *arg, const char *service, const char *method, const uint8_t *payload,
		     size_t len, uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	unsigned *count = arg;

	(*count)++;
	assert_string_equal(service, "grpc.AgentService");
	assert_string_equal(method, "CreateContainer");
	if (len == 3 && !memcmp(payload, "bad", 3))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "CreateContainer: bad payload");
	if (len == 4 && !memcmp(payload, "same", 4))
		return 0;   /* unchanged */
	*ret = malloc(len + 7);
	memcpy(*ret, payload, len);
	memcpy(*ret + len, "+edited", 7);
	*ret_len = len + 7;
	return 0;
}

static void test_rewrite_hook(void **state)
{
	struct pp_err err = { 0 };
	unsigned hooks = 0, calls;
	uint8_t *req = NULL, *with_meta;
	size_t req_len = 0;
	const uint8_t meta[] = { 0x2a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v' };

	(void)state;
	start_all(true);
	assert_int_equal(ttrpc_relay_add_rewrite(F.relay, "grpc.AgentService", "CreateContainer",
						 edit_hook, &hooks, &err), 0);

	/* CreateContainer with a deadline and metadata: payload edited, the rest kept */
	assert_int_equal(ttrpc_request_encode("grpc.AgentService", "CreateContainer",
					      (const uint8_t *)"spec", 4, 7000000000LL, &req,
					      &req_len, &err), 0);
	with_meta = malloc(req_len + sizeof(meta));
	memcpy(with_meta, req, req_len);
	memcpy(with_meta + req_len, meta, sizeof(meta));
	assert_int_equal(rf_call_raw(&F, F.cl, 0, with_meta, req_len + sizeof(meta)), 0);
	assert_true(RF_WAIT_DONE(&F, 0, 3000));
	assert_int_equal(F.res[0].code, PP_OK);
	assert_int_equal(F.res[0].payload_len, 11);
	assert_memory_equal(F.res[0].payload, "spec+edited", 11);   /* echoed by upstream */
	assert_non_null(memmem(F.last_req, F.last_req_len, meta, sizeof(meta)));
	assert_non_null(memmem(F.last_req, F.last_req_len, "\x20\x80\x8c\xee\x89\x1a", 6));
	assert_int_equal(hooks, 1);
	free(req);
	free(with_meta);

	/* another method of the same service: byte-for-byte, hook not called */
	assert_int_equal(ttrpc_request_encode("grpc.AgentService", "StartContainer",
					      (const uint8_t *)"abc", 3, 0, &req, &req_len, &err), 0);
	assert_int_equal(rf_call_raw(&F, F.cl, 1, req, req_len), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 3000));
	assert_int_equal(F.last_req_len, req_len);
	assert_memory_equal(F.last_req, req, req_len);
	assert_int_equal(hooks, 1);
	free(req);

	/* hook says "unchanged": byte-for-byte */
	assert_int_equal(ttrpc_request_encode("grpc.AgentService", "CreateContainer",
					      (const uint8_t *)"same", 4, 0, &req, &req_len, &err), 0);
	assert_int_equal(rf_call_raw(&F, F.cl, 2, req, req_len), 0);
	assert_true(RF_WAIT_DONE(&F, 2, 3000));
	assert_int_equal(F.last_req_len, req_len);
	assert_memory_equal(F.last_req, req, req_len);
	free(req);

	/* hook refuses: the caller gets its error, upstream never sees the call */
	calls = F.ups_calls;
	assert_int_equal(rf_call(&F, F.cl, 3, "grpc.AgentService", "CreateContainer", "bad", 3, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 3, 3000));
	assert_int_equal(F.res[3].code, PP_INVALID_ARGUMENT);
	assert_string_equal(F.res[3].msg, "CreateContainer: bad payload");
	assert_int_equal(F.ups_calls, calls);
}

static bool held_cond(struct rf *f, void *arg)
{
	return f->n_held >= (unsigned)(uintptr_t)arg;
}

static bool connected_cond(struct rf *f, void *arg)
{
	struct ttrpc_relay_stats st;

	(void)arg;
	ttrpc_relay_get_stats(f->relay, &st);
	return st.connected;
}

/* Upstream goes away with calls in flight, then comes back. */
static void test_upstream_restart(void **state)
{
	struct ttrpc_relay_stats st;
	unsigned i;

	(void)state;
	start_all(true);
	for (i = 0; i < 3; i++)
		assert_int_equal(rf_call(&F, F.cl, i, "grpc.AgentService", "Hold", NULL, 0, 0), 0);
	assert_true(rf_run_until(&F, held_cond, (void *)3, 3000));
	rf_ups_stop(&F);
	rf_ups_release_held(&F);   /* answered after the server went: dropped */
	assert_true(RF_WAIT_ALL(&F, 3, 3000));
	for (i = 0; i < 3; i++) {
		assert_int_equal(F.res[i].code, PP_UNAVAILABLE);
		assert_non_null(strstr(F.res[i].msg, F.ups_path));   /* names the peer */
	}
	/* a call while the upstream is down waits for the re-dial */
	assert_int_equal(rf_call(&F, F.cl, 3, "x.Y", "Echo", "again", 5, 5000000000LL), 0);
	rf_run_for(&F, 100);
	assert_false(F.res[3].done);
	assert_int_equal(rf_ups_start(&F), 0);
	assert_true(RF_WAIT_DONE(&F, 3, 3000));
	assert_int_equal(F.res[3].code, PP_OK);
	assert_memory_equal(F.res[3].payload, "again", 5);
	ttrpc_relay_get_stats(F.relay, &st);
	assert_int_equal(st.reconnects, 1);
	assert_true(st.connected);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.failed, 3);
}

/* No upstream yet: calls wait in a bounded queue, each up to its own deadline. */
static void test_queue_while_dialling(void **state)
{
	struct pp_err err = { 0 };
	struct ttrpc_relay_stats st;
	uint8_t *req = NULL;
	size_t req_len = 0;

	(void)state;
	assert_non_null(rf_relay_start(&F, true, 2, 0));
	F.cl = rf_client_new(&F);
	assert_non_null(F.cl);
	/* a call with a 200 ms deadline (sent raw: the client keeps no timer of its own) */
	assert_int_equal(ttrpc_request_encode("x.Y", "Echo", (const uint8_t *)"a", 1, 200000000LL,
					      &req, &req_len, &err), 0);
	assert_int_equal(rf_call_raw(&F, F.cl, 0, req, req_len), 0);
	free(req);
	assert_int_equal(rf_call(&F, F.cl, 1, "x.Y", "Echo", "b", 1, 0), 0);
	/* the queue holds 2: the third is refused at once */
	assert_int_equal(rf_call(&F, F.cl, 2, "x.Y", "Echo", "c", 1, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 2, 2000));
	assert_int_equal(F.res[2].code, PP_UNAVAILABLE);
	assert_non_null(strstr(F.res[2].msg, "already waiting"));
	assert_false(F.res[0].done);
	/* the first one's deadline passes while waiting */
	assert_true(RF_WAIT_DONE(&F, 0, 2000));
	assert_int_equal(F.res[0].code, PP_DEADLINE_EXCEEDED);
	assert_false(F.res[1].done);
	ttrpc_relay_get_stats(F.relay, &st);
	assert_int_equal(st.queued, 1);
	/* the upstream appears: the waiting call goes through */
	assert_int_equal(rf_ups_start(&F), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 3000));
	assert_int_equal(F.res[1].code, PP_OK);
	assert_true(rf_run_until(&F, connected_cond, NULL, 1000));
}

/* The dialer gives up: waiting calls fail naming the peer; the next call dials again. */
static void test_dial_failure(void **state)
{
	(void)state;
	F.dial_give_up = true;
	assert_non_null(rf_relay_start(&F, false, 0, 0));
	F.cl = rf_client_new(&F);
	assert_int_equal(F.dials, 0);   /* lazy: nothing dialled before the first call */
	assert_int_equal(rf_call(&F, F.cl, 0, "x.Y", "Echo", "a", 1, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 0, 2000));
	assert_int_equal(F.res[0].code, PP_UNAVAILABLE);
	assert_non_null(strstr(F.res[0].msg, "test relay: "));
	assert_non_null(strstr(F.res[0].msg, "not listening"));
	assert_non_null(strstr(F.res[0].msg, F.ups_path));
	assert_int_equal(rf_ups_start(&F), 0);
	assert_int_equal(rf_call(&F, F.cl, 1, "x.Y", "Echo", "b", 1, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 2000));
	assert_int_equal(F.res[1].code, PP_OK);
	assert_int_equal(F.dials, 2);
}

/* A queued call waits at most max_wait_ms even without a deadline of its own. */
static void test_max_wait(void **state)
{
	(void)state;
	assert_non_null(rf_relay_start(&F, true, 0, 150));
	F.cl = rf_client_new(&F);
	assert_int_equal(rf_call(&F, F.cl, 0, "x.Y", "Echo", "a", 1, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 0, 2000));
	assert_int_equal(F.res[0].code, PP_UNAVAILABLE);
	assert_non_null(strstr(F.res[0].msg, "after waiting 150 ms"));
}

static bool inflight_zero_cond(struct rf *f, void *arg)
{
	struct ttrpc_relay_stats st;

	(void)arg;
	ttrpc_relay_get_stats(f->relay, &st);
	return st.in_flight == 0 && st.queued == 0;
}

/* The client goes away: its upstream call is abandoned, the late answer is dropped. */
static void test_client_gone(void **state)
{
	struct ttrpc_relay_stats st;

	(void)state;
	start_all(true);
	assert_int_equal(rf_call(&F, F.cl, 0, "x.Y", "Hold", NULL, 0, 0), 0);
	assert_true(rf_run_until(&F, held_cond, (void *)1, 3000));
	ttrpc_relay_get_stats(F.relay, &st);
	assert_int_equal(st.in_flight, 1);
	ttrpc_client_free(F.cl);   /* our own callback runs with "connection closed" */
	F.cl = NULL;
	assert_true(rf_run_until(&F, inflight_zero_cond, NULL, 2000));
	rf_ups_release_held(&F);   /* late answer upstream: dropped by the relay */
	rf_run_for(&F, 20);
	F.cl = rf_client_new(&F);
	assert_int_equal(rf_call(&F, F.cl, 1, "x.Y", "Echo", "ok", 2, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 2000));
	assert_int_equal(F.res[1].code, PP_OK);
}

/* ---- hostile frames from downstream, on a raw socket ---- */

struct raw_io {
	int fd;
	const uint8_t *out;
	size_t out_len, sent;
	size_t zeros;       /* then this many zero bytes */
	uint8_t in[256];
	size_t in_len;
	bool eof;
};

static bool raw_io_cond(struct rf *f, void *arg)
{
	struct raw_io *io = arg;
	static const uint8_t zero[65536];
	ssize_t n;

	(void)f;
	while (io->sent < io->out_len) {
		n = send(io->fd, io->out + io->sent, io->out_len - io->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		io->sent += (size_t)n;
	}
	while (io->zeros > 0) {
		n = send(io->fd, zero, io->zeros < sizeof(zero) ? io->zeros : sizeof(zero),
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		io->zeros -= (size_t)n;
	}
	n = recv(io->fd, io->in + io->in_len, sizeof(io->in) - io->in_len, MSG_DONTWAIT);
	if (n > 0)
		io->in_len += (size_t)n;
	if (n == 0)
		io->eof = true;
	return io->in_len >= TTRPC_HEADER_SIZE || io->eof;
}

static void test_hostile_frames(void **state)
{
	uint8_t hdr[TTRPC_HEADER_SIZE];
	struct ttrpc_header h = { .length = TTRPC_MAX_DATA + 1, .stream_id = 1,
				  .type = TTRPC_TYPE_REQUEST };
	struct raw_io io = { 0 };
	struct ttrpc_header got;
	struct ttrpc_result res;
	struct pp_err err;
	void *storage = NULL;
	uint8_t trunc[TTRPC_HEADER_SIZE + 10] = { 0 };

	(void)state;
	start_all(true);

	/* oversize: RESOURCE_EXHAUSTED on that stream, the connection goes on */
	ttrpc_header_encode(&h, hdr);
	io.fd = rf_unix_connect(F.relay_path);
	assert_true(io.fd >= 0);
	io.out = hdr;
	io.out_len = sizeof(hdr);
	io.zeros = TTRPC_MAX_DATA + 1;
	assert_true(rf_run_until(&F, raw_io_cond, &io, 5000));
	assert_true(io.in_len >= TTRPC_HEADER_SIZE);
	ttrpc_header_decode(io.in, &got);
	assert_int_equal(got.stream_id, 1);
	assert_int_equal(got.type, TTRPC_TYPE_RESPONSE);
	for (int tries = 0; tries < 100 && io.in_len < TTRPC_HEADER_SIZE + got.length; tries++)
		rf_run_until(&F, raw_io_cond, &io, 10);   /* the rest of the response */
	assert_true(io.in_len >= TTRPC_HEADER_SIZE + got.length);
	assert_int_equal(ttrpc_response_decode(io.in + TTRPC_HEADER_SIZE, got.length, &res,
					       &storage, &err), 0);
	assert_int_equal(res.code, PP_RESOURCE_EXHAUSTED);
	ttrpc_result_free_storage(storage);
	close(io.fd);

	/* truncated: a header promising 100 bytes, 10 sent, then the socket closes */
	h.length = 100;
	h.stream_id = 3;
	ttrpc_header_encode(&h, trunc);
	memset(&io, 0, sizeof(io));
	io.fd = rf_unix_connect(F.relay_path);
	io.out = trunc;
	io.out_len = sizeof(trunc);
	rf_run_until(&F, raw_io_cond, &io, 50);
	close(io.fd);

	/* garbage where a Request should be */
	h.length = 5;
	h.stream_id = 1;
	ttrpc_header_encode(&h, hdr);
	{
		uint8_t g[TTRPC_HEADER_SIZE + 5];

		memcpy(g, hdr, TTRPC_HEADER_SIZE);
		memcpy(g + TTRPC_HEADER_SIZE, "\xff\xff\xff\xff\xff", 5);
		memset(&io, 0, sizeof(io));
		io.fd = rf_unix_connect(F.relay_path);
		io.out = g;
		io.out_len = sizeof(g);
		assert_true(rf_run_until(&F, raw_io_cond, &io, 3000));
		close(io.fd);
	}
	assert_int_equal(F.ups_calls, 0);   /* nothing of that reached upstream */

	/* the relay still works */
	assert_int_equal(rf_call(&F, F.cl, 0, "x.Y", "Echo", "fine", 4, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 0, 2000));
	assert_int_equal(F.res[0].code, PP_OK);
	assert_true(rf_run_until(&F, inflight_zero_cond, NULL, 1000));
}

/* ---- the payload splice ---- */

static void test_request_set_payload(void **state)
{
	struct pp_err err = { 0 };
	uint8_t *out = NULL;
	size_t out_len = 0;
	const uint8_t want[] = {
		0x0a, 0x0b, 'n', 'o', '.', 'S', 'u', 'c', 'h', 'S', 'v', 'c', '.',
		0x12, 0x03, 'R', 'a', 'w',
		0x2a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',
		0x48, 0x07,
		0x1a, 0x02, 'n', 'p',
	};
	const uint8_t bad[] = { 0x0a, 0x20, 'x' };   /* length past the end */

	(void)state;
	assert_int_equal(ttrpc_relay_request_set_payload(req_unknown, sizeof(req_unknown),
							 (const uint8_t *)"np", 2, &out, &out_len,
							 &err), 0);
	assert_int_equal(out_len, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	free(out);
	/* empty payload: the field is left out */
	assert_int_equal(ttrpc_relay_request_set_payload(req_unknown, sizeof(req_unknown), NULL, 0,
							 &out, &out_len, &err), 0);
	assert_int_equal(out_len, sizeof(want) - 4);
	free(out);
	assert_int_equal(ttrpc_relay_request_set_payload(bad, sizeof(bad), (const uint8_t *)"x", 1,
							 &out, &out_len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_method_byte_for_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_while_dialling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_frames, setup, teardown),
		cmocka_unit_test(test_request_set_payload),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test", 2);
	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
