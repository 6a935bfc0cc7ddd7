/*
 * Tests for lib/http against a loopback HTTP/1.1 server (testsrv.c) that serves scripted
 * answers and records what the client really sent: retries and their limits, Retry-After,
 * idempotency, size limits, cancellation and deadlines mid-transfer and mid-sleep, the cap on
 * requests in flight, connection reuse, SigV4 signing, and that secrets and query strings stay
 * out of logs and errors.
 */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/cancel.h"
#include "lib/http.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "testsrv.h"

static FILE *log_file;
static struct testsrv *srv;

static int group_setup(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	/* libcurl honours proxy variables; the loopback server must be reached directly */
	unsetenv("http_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("https_proxy");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	return http_global_init(&err);
}

static int group_teardown(void **state)
{
	(void)state;
	http_global_fini();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	log_file = tmpfile();
	if (!log_file)
		return -1;
	log_init("test", fileno(log_file));
	log_set_level(LOG_LVL_DEBUG);
	srv = ts_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_stop(srv);
	log_init("test", 2);
	fclose(log_file);
	return 0;
}

static char *log_text(void)
{
	long n = lseek(fileno(log_file), 0, SEEK_END);
	char *s = calloc(1, (size_t)n + 1);

	assert_int_equal(pread(fileno(log_file), s, (size_t)n, 0), n);
	return s;
}

static const char *url(const char *path)
{
	static char u[256];

	snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", ts_port(srv), path);
	return u;
}

static struct http_client *client(unsigned max_attempts, unsigned max_in_flight)
{
	struct http_client_config cfg = {
		.name = "aws",
		.max_attempts = max_attempts,
		.max_in_flight = max_in_flight,
		.backoff_base_ms = 5,
		.backoff_max_ms = 20,
		.timeout_ms = 10000,
	};
	struct pp_err err = { 0 };
	struct http_client *c = http_client_new(&cfg, &err);

	assert_non_null(c);
	return c;
}

static void script1(struct ts_response r)
{
	ts_script(srv, &r, 1);
}

static void test_success(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_header hdrs[] = { { "X-Test", "one" }, { "Accept", "application/json" } };
	struct http_request req = { .op = "GetThing", .method = HTTP_GET, .url = url("/thing?a=1"),
				    .headers = hdrs, .n_headers = 2 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	const struct ts_request *r;
	const char *n, *v;
	char tmp[128];

	(void)state;
	script1((struct ts_response){ .status = 200, .body = "{\"ok\":true}",
				      .headers = "X-Amz-Request-Id: rid-1\r\nContent-Type: application/json\r\n" });
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(http_response_text(&resp), "{\"ok\":true}");
	assert_int_equal(resp.body.len, 11);
	assert_string_equal(http_response_header(&resp, "x-amz-request-id"), "rid-1");
	assert_string_equal(http_response_header(&resp, "CONTENT-TYPE"), "application/json");
	assert_null(http_response_header(&resp, "Retry-After"));
	assert_true(http_response_header_at(&resp, 0, &n, &v));
	assert_string_equal(n, "X-Amz-Request-Id");
	assert_false(http_response_header_at(&resp, resp.n_headers, &n, &v));

	assert_int_equal(ts_count(srv), 1);
	r = ts_request(srv, 0);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->target, "/thing?a=1");
	assert_string_equal(ts_header(r, "X-Test", tmp, sizeof(tmp)), "one");
	assert_string_equal(ts_header(r, "User-Agent", tmp, sizeof(tmp)), HTTP_DEFAULT_USER_AGENT);
	assert_null(ts_header(r, "Authorization", tmp, sizeof(tmp)));

	/* a second call reuses the response struct (freed first) and the connection */
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(ts_count(srv), 2);
	assert_int_equal(ts_request(srv, 1)->conn, ts_request(srv, 0)->conn);
	http_response_free(&resp);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_methods_and_body(void **state)
{
	struct http_client *c = client(1, 4);
	const char *body = "{\"location\":\"eastus\"}";
	struct http_request req = { .op = "PutVM", .method = HTTP_PUT, .url = url("/vm"),
				    .body = body, .body_len = strlen(body),
				    .content_type = "application/json" };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	const struct ts_request *r;
	char tmp[128];

	(void)state;
	script1((struct ts_response){ .status = 201, .body = "{}" });
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	req = (struct http_request){ .op = "DeleteVM", .method = HTTP_DELETE, .url = url("/vm") };
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	req = (struct http_request){ .op = "Post", .method = HTTP_POST, .url = url("/p") };
	assert_int_equal(http_do(c, &req, &resp, &err), 0);

	r = ts_request(srv, 0);
	assert_string_equal(r->method, "PUT");
	assert_string_equal(r->body, body);
	assert_string_equal(ts_header(r, "Content-Type", tmp, sizeof(tmp)), "application/json");
	assert_null(ts_header(r, "Expect", tmp, sizeof(tmp)));
	r = ts_request(srv, 1);
	assert_string_equal(r->method, "DELETE");
	assert_int_equal(r->body_len, 0);
	r = ts_request(srv, 2);
	assert_string_equal(r->method, "POST");
	assert_string_equal(ts_header(r, "Content-Length", tmp, sizeof(tmp)), "0");
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_503_then_200(void **state)
{
	struct http_client *c = client(5, 4);
	struct http_request req = { .op = "DescribeInstances", .method = HTTP_GET, .url = url("/") };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_stats st;
	struct http_op_stats rows[4];
	char *log;

	(void)state;
	ts_script(srv, (struct ts_response[]){ { .status = 503, .body = "busy" },
					       { .status = 503, .body = "busy" },
					       { .status = 200, .body = "done" } }, 3);
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(http_response_text(&resp), "done");
	assert_int_equal(ts_count(srv), 3);

	http_client_stats(c, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.attempts, 3);
	assert_int_equal(st.retries, 2);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(http_client_op_stats(c, rows, 4), 1);
	assert_string_equal(rows[0].op, "DescribeInstances");
	assert_int_equal(rows[0].attempts[HTTP_CLASS_5XX], 2);
	assert_int_equal(rows[0].attempts[HTTP_CLASS_2XX], 1);

	log = log_text();
	assert_non_null(strstr(log, "msg=\"http retry\" provider=aws op=DescribeInstances"));
	assert_non_null(strstr(log, "status=503 attempt=2"));
	assert_non_null(strstr(log, "level=debug comp=test msg=\"http request\" provider=aws op=DescribeInstances method=GET"));
	assert_non_null(strstr(log, "status=200 ms="));
	assert_non_null(strstr(log, "attempt=3"));
	free(log);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_after_honoured(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_request req = { .op = "RunInstances", .method = HTTP_POST, .url = url("/"),
				    .flags = HTTP_F_IDEMPOTENT };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_stats st;
	uint64_t t0, ms;

	(void)state;
	ts_script(srv, (struct ts_response[]){ { .status = 429, .headers = "Retry-After: 1\r\n" },
					       { .status = 200, .body = "ok" } }, 2);
	t0 = pp_monotonic_ms();
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	ms = pp_monotonic_ms() - t0;
	/* the client backoff is at most 20 ms: only Retry-After explains a second */
	assert_true(ms >= 950);
	assert_true(ms < 5000);
	assert_int_equal(ts_count(srv), 2);
	http_client_stats(c, &st);
	assert_int_equal(st.throttled, 1);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_post_not_retried(void **state)
{
	struct http_client *c = client(5, 4);
	struct http_request req = { .op = "RunInstances", .method = HTTP_POST, .url = url("/"),
				    .body = "Action=RunInstances", .body_len = 19 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };

	(void)state;
	ts_script(srv, (struct ts_response[]){ { .status = 500, .body = "oops" },
					       { .status = 200, .body = "ok" } }, 2);
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_int_equal(ts_count(srv), 1);
	assert_non_null(strstr(err.msg, "HTTP status 500 (after 1 attempts): oops"));
	assert_null(resp.body.data);

	/* the same POST marked safe to repeat is retried */
	req.flags = HTTP_F_IDEMPOTENT;
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(ts_count(srv), 2);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_post_dropped_after_send(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_request req = { .op = "RunInstances", .method = HTTP_POST, .url = url("/"),
				    .body = "Action=RunInstances", .body_len = 19 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };

	(void)state;
	/* the server read the request and hung up: it may have acted on it */
	script1((struct ts_response){ .drop = true });
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "(after 1 attempts)"));
	assert_int_equal(ts_count(srv), 1);
	req.flags = HTTP_F_IDEMPOTENT;
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_non_null(strstr(err.msg, "(after 3 attempts)"));
	assert_int_equal(ts_count(srv), 4);
	http_client_free(c);
}

static void test_attempt_timeout(void **state)
{
	struct http_client *c = client(2, 4);
	struct http_request req = { .op = "GetSlow", .method = HTTP_GET, .url = url("/slow"),
				    .timeout_ms = 200 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	uint64_t t0, ms;

	(void)state;
	script1((struct ts_response){ .status = 200, .delay_ms = 5000 });
	t0 = pp_monotonic_ms();
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	ms = pp_monotonic_ms() - t0;
	/* a per-attempt timeout is a transient failure, retried, not the caller's deadline */
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "(after 2 attempts)"));
	assert_int_equal(ts_count(srv), 2);
	assert_true(ms >= 400 && ms < 2000);
	http_client_free(c);
}

static void test_max_attempts(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_request req = { .op = "TerminateInstances", .method = HTTP_GET,
				    .url = url("/ec2/path") };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_stats st;
	char body[600];

	(void)state;
	memset(body, 'B', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "<Error>\n  <Code>Unavailable</Code>\x01", 35);
	script1((struct ts_response){ .status = 503, .body = body });
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(ts_count(srv), 3);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "aws TerminateInstances GET http://127.0.0.1:"));
	assert_non_null(strstr(err.msg, "/ec2/path: HTTP status 503 (after 3 attempts): "
				       "<Error> <Code>Unavailable</Code>?BBB"));
	/* the excerpt is cut at 300 bytes and says so */
	assert_non_null(strstr(err.msg, "BBB..."));
	assert_true(strlen(strstr(err.msg, "<Error>")) <= 303);
	http_client_stats(c, &st);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.retries, 2);
	http_client_free(c);
}

static void test_raw_status(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_request req = { .op = "GetVM", .method = HTTP_GET, .url = url("/vm"),
				    .flags = HTTP_F_RAW_STATUS };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	const char *ej = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"gone\"}}";

	(void)state;
	script1((struct ts_response){ .status = 404, .body = ej });
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(http_response_text(&resp), ej);
	assert_int_equal(http_status_to_code(resp.status), PP_NOT_FOUND);
	assert_int_equal(ts_count(srv), 1);

	req.flags = 0;
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(ts_count(srv), 2);
	/* the failed call left the earlier response alone */
	assert_int_equal(resp.status, 404);

	/* retryable statuses are retried even in raw mode; the last one is handed back */
	ts_script(srv, (struct ts_response[]){ { .status = 502 } }, 1);
	req.flags = HTTP_F_RAW_STATUS;
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 502);
	assert_int_equal(ts_count(srv), 5);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_too_large(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_request req = { .op = "DescribeImages", .method = HTTP_GET, .url = url("/big"),
				    .max_response = 1000 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };

	(void)state;
	/* with a Content-Length, and streamed without one */
	ts_script(srv, (struct ts_response[]){ { .status = 200, .fill = 5000 },
					       { .status = 200, .fill = 5000, .no_length = true },
					       { .status = 200, .fill = 1000, .no_length = true } },
		  3);
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_OUT_OF_RANGE);
	assert_non_null(strstr(err.msg, "response body larger than 1000 bytes"));
	assert_int_equal(ts_count(srv), 1);
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_OUT_OF_RANGE);
	assert_int_equal(ts_count(srv), 2);
	/* exactly the limit is fine */
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.body.len, 1000);
	http_response_free(&resp);
	http_client_free(c);
}

struct fire_arg {
	struct cancel *cancel;
	unsigned after_ms;
};

static void *fire_main(void *p)
{
	struct fire_arg *a = p;

	usleep(a->after_ms * 1000);
	cancel_fire(a->cancel, CANCEL_CLOSED);
	return NULL;
}

static void test_cancel_mid_transfer(void **state)
{
	struct http_client *c = client(3, 4);
	struct cancel *cn = cancel_new(0);
	struct http_request req = { .op = "CreateVM", .method = HTTP_GET, .url = url("/slow"),
				    .cancel = cn };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct fire_arg fa = { cn, 200 };
	pthread_t t;
	uint64_t t0, ms;
	int rc;

	(void)state;
	script1((struct ts_response){ .status = 200, .delay_ms = 5000 });
	pthread_create(&t, NULL, fire_main, &fa);
	t0 = pp_monotonic_ms();
	rc = http_do(c, &req, &resp, &err);
	ms = pp_monotonic_ms() - t0;
	pthread_join(t, NULL);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_non_null(strstr(err.msg, "client went away"));
	assert_true(ms >= 150 && ms < 1000);
	assert_int_equal(ts_count(srv), 1);
	cancel_unref(cn);
	http_client_free(c);
}

static void test_cancel_mid_backoff(void **state)
{
	struct http_client *c = client(3, 4);
	struct cancel *cn = cancel_new(0);
	struct http_request req = { .op = "CreateVM", .method = HTTP_GET, .url = url("/"),
				    .cancel = cn };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct fire_arg fa = { cn, 200 };
	pthread_t t;
	uint64_t t0, ms;
	int rc;

	(void)state;
	script1((struct ts_response){ .status = 503, .headers = "Retry-After: 30\r\n" });
	pthread_create(&t, NULL, fire_main, &fa);
	t0 = pp_monotonic_ms();
	rc = http_do(c, &req, &resp, &err);
	ms = pp_monotonic_ms() - t0;
	pthread_join(t, NULL);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_true(ms < 1000);
	assert_int_equal(ts_count(srv), 1);
	/* an already-fired token sends nothing */
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_int_equal(ts_count(srv), 1);
	cancel_unref(cn);
	http_client_free(c);
}

static void test_deadline(void **state)
{
	struct http_client *c = client(3, 4);
	struct cancel *cn = cancel_new(pp_now_ns() + 300 * 1000000ull);
	struct http_request req = { .op = "CreateVM", .method = HTTP_GET, .url = url("/slow"),
				    .cancel = cn };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	uint64_t t0, ms;

	(void)state;
	script1((struct ts_response){ .status = 200, .delay_ms = 5000 });
	t0 = pp_monotonic_ms();
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	ms = pp_monotonic_ms() - t0;
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	assert_non_null(strstr(err.msg, "deadline exceeded"));
	assert_true(ms >= 250 && ms < 1500);
	assert_int_equal(ts_count(srv), 1);
	cancel_unref(cn);
	http_client_free(c);
}

struct par_arg {
	struct http_client *c;
	const char *url;
	int rc;
	struct pp_err err;
};

static void *par_main(void *p)
{
	struct par_arg *a = p;
	struct http_request req = { .op = "Slow", .method = HTTP_GET, .url = a->url };
	struct http_response resp = HTTP_RESPONSE_INIT;

	a->rc = http_do(a->c, &req, &resp, &a->err);
	http_response_free(&resp);
	return NULL;
}

static void test_in_flight_cap(void **state)
{
	struct http_client *c = client(1, 2);
	struct par_arg args[6];
	pthread_t t[6];
	uint64_t t0, ms;
	size_t i;

	(void)state;
	script1((struct ts_response){ .status = 200, .body = "ok", .delay_ms = 150 });
	t0 = pp_monotonic_ms();
	for (i = 0; i < 6; i++) {
		args[i].c = c;
		args[i].url = url("/slow");
		pthread_create(&t[i], NULL, par_main, &args[i]);
	}
	/* join them all before any assertion can leave this frame */
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 6; i++) {
		if (args[i].rc)
			print_error("request %zu: %s\n", i, args[i].err.msg);
		assert_int_equal(args[i].rc, 0);
	}
	ms = pp_monotonic_ms() - t0;
	assert_int_equal(ts_count(srv), 6);
	assert_int_equal(ts_max_concurrent(srv), 2);
	assert_true(ms >= 3 * 150 - 20);
	http_client_free(c);
}

static void *stress_main(void *p)
{
	struct par_arg *a = p;
	struct http_response resp = HTTP_RESPONSE_INIT;
	char u[128], op[32];
	int i;

	a->rc = 0;
	for (i = 0; i < 25; i++) {
		struct http_request req = { .method = HTTP_GET, .url = u, .op = op };

		snprintf(u, sizeof(u), "http://127.0.0.1:%d/s/%d", ts_port(srv), i);
		snprintf(op, sizeof(op), "Op%d", i % 3);
		if (http_do(a->c, &req, &resp, &a->err) < 0 || strcmp(http_response_text(&resp), "ok"))
			a->rc = -1;
	}
	http_response_free(&resp);
	return NULL;
}

static void test_threads_share_client(void **state)
{
	struct http_client *c = client(1, 3);
	struct par_arg args[4];
	struct http_op_stats rows[8];
	struct http_stats st;
	pthread_t t[4];
	size_t i, n;
	uint64_t total = 0;

	(void)state;
	script1((struct ts_response){ .status = 200, .body = "ok" });
	for (i = 0; i < 4; i++) {
		args[i].c = c;
		pthread_create(&t[i], NULL, stress_main, &args[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 4; i++) {
		if (args[i].rc)
			print_error("thread %zu: %s\n", i, args[i].err.msg);
		assert_int_equal(args[i].rc, 0);
	}
	assert_int_equal(ts_count(srv), 100);
	assert_true(ts_max_concurrent(srv) <= 3);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 100);
	n = http_client_op_stats(c, rows, 8);
	assert_int_equal(n, 3);
	for (i = 0; i < n; i++)
		total += rows[i].attempts[HTTP_CLASS_2XX];
	assert_int_equal(total, 100);
	http_client_free(c);
}

static void test_connection_refused(void **state)
{
	struct http_client *c = client(3, 4);
	char u[128];
	struct http_request req = { .op = "RunInstances", .method = HTTP_POST, .url = u,
				    .body = "x", .body_len = 1 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_stats st;
	struct http_op_stats row;

	(void)state;
	/* the handle first carries a request that reached a server */
	script1((struct ts_response){ .status = 200 });
	req.url = url("/");
	req.flags = HTTP_F_IDEMPOTENT;
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	http_response_free(&resp);
	req.url = u;
	req.flags = 0;
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/?X-Amz-Signature=SECRETSIG", ts_free_port());
	/* not idempotent, but nothing was sent: retried */
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "aws RunInstances POST http://127.0.0.1:"));
	assert_non_null(strstr(err.msg, "(after 3 attempts)"));
	assert_null(strstr(err.msg, "SECRETSIG"));
	assert_null(strchr(err.msg, '?'));
	http_client_stats(c, &st);
	assert_int_equal(st.attempts, 4);
	assert_int_equal(http_client_op_stats(c, &row, 1), 1);
	assert_int_equal(row.attempts[HTTP_CLASS_ERROR], 3);
	assert_int_equal(row.attempts[HTTP_CLASS_2XX], 1);
	http_client_free(c);
}

/* With PP_HTTP_SIGV4_DUMP=path, writes the signed request as received, for a cross-check of
 * the signature with botocore (the AWS provider's tests do that). */
static void dump_request(const struct ts_request *r)
{
	const char *path = getenv("PP_HTTP_SIGV4_DUMP");
	FILE *f;

	if (!path || !(f = fopen(path, "we")))
		return;
	fprintf(f, "%s %s\r\n%s\r\n\r\n", r->method, r->target, r->headers);
	fwrite(r->body, 1, r->body_len, f);
	fclose(f);
}

static void test_sigv4(void **state)
{
	struct http_client *c = client(1, 4);
	const char *form = "Action=DescribeInstances&Version=2016-11-15";
	struct http_header hdrs[] = { { "x-amz-security-token", "SESSIONTOKEN" } };
	struct http_request req = {
		.op = "DescribeInstances", .method = HTTP_POST, .url = url("/"),
		.body = form, .body_len = strlen(form),
		.content_type = "application/x-www-form-urlencoded; charset=utf-8",
		.headers = hdrs, .n_headers = 1,
		.aws_sigv4 = "aws:amz:us-east-1:ec2", .aws_access_key_id = "AKID",
		.aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	const struct ts_request *r;
	char auth[512], date[64], want[128];
	regex_t re;
	char *log;

	(void)state;
	script1((struct ts_response){ .status = 200, .body = "<ok/>" });
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	r = ts_request(srv, 0);
	assert_non_null(ts_header(r, "Authorization", auth, sizeof(auth)));
	assert_non_null(ts_header(r, "X-Amz-Date", date, sizeof(date)));
	assert_int_equal(regcomp(&re, "^[0-9]{8}T[0-9]{6}Z$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, date, 0, NULL, 0), 0);
	regfree(&re);
	snprintf(want, sizeof(want), "AWS4-HMAC-SHA256 Credential=AKID/%.8s/us-east-1/ec2/aws4_request, ",
		 date);
	assert_true(str_has_prefix(auth, want));
	assert_non_null(strstr(auth, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "));
	assert_int_equal(regcomp(&re, "Signature=[0-9a-f]{64}$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, auth, 0, NULL, 0), 0);
	regfree(&re);
	assert_string_equal(r->body, form);
	dump_request(r);
	/* the secret key is never sent, and no credential is logged */
	assert_null(strstr(r->headers, "wJalrXUtnFEMI"));
	log = log_text();
	assert_null(strstr(log, "wJalrXUtnFEMI"));
	assert_null(strstr(log, "SESSIONTOKEN"));
	assert_null(strstr(log, "AWS4-HMAC"));
	free(log);

	/* signing without a secret is refused before anything is sent */
	req.aws_secret_access_key = NULL;
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(ts_count(srv), 1);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_secrets_stay_out(void **state)
{
	struct http_client *c = client(2, 4);
	struct http_request req = { .op = "GetBlob", .method = HTTP_GET,
				    .url = url("/blob?sv=2020&sig=SASSECRET"),
				    .bearer_token = "eyJBEARERSECRET" };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	char auth[128];
	char *log;

	(void)state;
	ts_script(srv, (struct ts_response[]){ { .status = 503, .body = "later" },
					       { .status = 403, .body = "{\"error\":{\"message\":\"no\"}}" } },
		  2);
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_int_equal(ts_count(srv), 2);
	/* the token was sent */
	assert_string_equal(ts_header(ts_request(srv, 0), "Authorization", auth, sizeof(auth)),
			    "Bearer eyJBEARERSECRET");
	assert_string_equal(ts_request(srv, 1)->target, "/blob?sv=2020&sig=SASSECRET");
	/* ...but neither it nor the query string is in the error or the log */
	assert_non_null(strstr(err.msg, "/blob: HTTP status 403"));
	assert_null(strstr(err.msg, "SASSECRET"));
	assert_null(strstr(err.msg, "sig="));
	assert_null(strstr(err.msg, "BEARERSECRET"));
	log = log_text();
	assert_non_null(strstr(log, "op=GetBlob"));
	assert_non_null(strstr(log, "msg=\"http retry\""));
	assert_null(strstr(log, "BEARERSECRET"));
	assert_null(strstr(log, "SASSECRET"));
	assert_null(strstr(log, "sig="));
	free(log);
	http_client_free(c);
}

static void test_bad_requests(void **state)
{
	struct http_client *c = client(3, 4);
	struct http_header bad[] = { { "X-Inject", "a\r\nX-Evil: 1" } };
	struct http_header badname[] = { { "X Bad", "v" } };
	struct http_request req = { .op = "Op", .method = HTTP_GET, .url = url("/"),
				    .headers = bad, .n_headers = 1 };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_client_config cfg = { .name = "" };

	(void)state;
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	req.headers = badname;
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	req = (struct http_request){ .op = "Op", .method = HTTP_GET, .url = url("/"),
				     .bearer_token = "tok\nX-Evil: 1" };
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_null(strstr(err.msg, "X-Evil"));
	req = (struct http_request){ .op = "Op", .method = HTTP_GET, .url = "ftp://127.0.0.1/x" };
	assert_int_equal(http_do(c, &req, &resp, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(ts_count(srv), 0);

	assert_null(http_client_new(&cfg, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	cfg = (struct http_client_config){ .name = "x", .backoff_base_ms = 100, .backoff_max_ms = 10 };
	assert_null(http_client_new(&cfg, &err));
	http_client_free(c);
}

static void test_connect_to_override(void **state)
{
	char rule[128];
	const char *rules[] = { rule, NULL };
	struct http_client_config cfg = { .name = "aws", .connect_to = rules, .max_attempts = 1 };
	struct http_request req = { .op = "DescribeRegions", .method = HTTP_GET,
				    .url = "http://ec2.us-east-1.amazonaws.com/" };
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	struct http_client *c;
	char host[128];

	(void)state;
	snprintf(rule, sizeof(rule), "ec2.us-east-1.amazonaws.com:80:127.0.0.1:%d", ts_port(srv));
	c = http_client_new(&cfg, &err);
	assert_non_null(c);
	script1((struct ts_response){ .status = 200, .body = "ok" });
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(ts_count(srv), 1);
	assert_string_equal(ts_header(ts_request(srv, 0), "Host", host, sizeof(host)),
			    "ec2.us-east-1.amazonaws.com");
	http_response_free(&resp);
	http_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_methods_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_503_then_200, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_dropped_after_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attempt_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_mid_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_mid_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_flight_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_stay_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_to_override, setup, teardown),
	};

	if (getenv("PP_HTTP_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PP_HTTP_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
