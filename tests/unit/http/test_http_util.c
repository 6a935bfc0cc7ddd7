/*
 * Tests for the pure helpers of lib/http: status to code mapping, which outcomes are retried,
 * Retry-After parsing, full-jitter backoff bounds, RFC 3986 encoding and the form builder, and
 * the redaction of URLs, messages and body excerpts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/http_priv.h"
#include "lib/util.h"

static void test_status_to_code(void **state)
{
	static const struct { long status; int code; } cases[] = {
		{ 200, PP_OK }, { 201, PP_OK }, { 204, PP_OK }, { 400, PP_INVALID_ARGUMENT },
		{ 401, PP_UNAUTHENTICATED }, { 403, PP_PERMISSION_DENIED }, { 404, PP_NOT_FOUND },
		{ 410, PP_NOT_FOUND }, { 409, PP_ABORTED }, { 412, PP_FAILED_PRECONDITION },
		{ 422, PP_FAILED_PRECONDITION }, { 429, PP_RESOURCE_EXHAUSTED },
		{ 500, PP_UNAVAILABLE }, { 501, PP_UNIMPLEMENTED }, { 502, PP_UNAVAILABLE },
		{ 503, PP_UNAVAILABLE }, { 504, PP_UNAVAILABLE }, { 302, PP_UNKNOWN },
		{ 0, PP_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(http_status_to_code(cases[i].status), cases[i].code);
}

static void test_retryable(void **state)
{
	(void)state;
	assert_true(http_status_retryable(429));
	assert_true(http_status_retryable(500));
	assert_true(http_status_retryable(502));
	assert_true(http_status_retryable(503));
	assert_true(http_status_retryable(504));
	assert_false(http_status_retryable(501));
	assert_false(http_status_retryable(400));
	assert_false(http_status_retryable(404));
	assert_false(http_status_retryable(200));
	assert_true(http_curl_retryable(CURLE_COULDNT_CONNECT));
	assert_true(http_curl_retryable(CURLE_OPERATION_TIMEDOUT));
	assert_true(http_curl_retryable(CURLE_GOT_NOTHING));
	assert_false(http_curl_retryable(CURLE_PEER_FAILED_VERIFICATION));
	assert_false(http_curl_retryable(CURLE_URL_MALFORMAT));
	assert_false(http_curl_retryable(CURLE_WRITE_ERROR));
	assert_int_equal(http_status_class_of(204), HTTP_CLASS_2XX);
	assert_int_equal(http_status_class_of(503), HTTP_CLASS_5XX);
	assert_int_equal(http_status_class_of(0), HTTP_CLASS_ERROR);
	assert_string_equal(http_status_class_name(HTTP_CLASS_4XX), "4xx");
}

static void test_retry_after(void **state)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	const int64_t at = 1445412480;
	uint64_t ms = 0;

	(void)state;
	assert_int_equal(http_retry_after_ms("1", 0, 60000, &ms), 0);
	assert_int_equal(ms, 1000);
	assert_int_equal(http_retry_after_ms(" 0 ", 0, 60000, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(http_retry_after_ms("3600", 0, 60000, &ms), 0);
	assert_int_equal(ms, 60000);   /* cut to the maximum */
	assert_int_equal(http_retry_after_ms("99999999999999999999", 0, 5000, &ms), -1);
	assert_int_equal(http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", at - 7, 60000, &ms),
			 0);
	assert_int_equal(ms, 7000);
	assert_int_equal(http_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", at + 100, 60000,
					     &ms), 0);
	assert_int_equal(ms, 0);       /* in the past: go now */
	assert_int_equal(http_retry_after_ms("-1", 0, 60000, &ms), -1);
	assert_int_equal(http_retry_after_ms("soon", 0, 60000, &ms), -1);
	assert_int_equal(http_retry_after_ms("", 0, 60000, &ms), -1);
	assert_int_equal(http_retry_after_ms(NULL, 0, 60000, &ms), -1);
}

static void test_backoff(void **state)
{
	uint64_t r;

	(void)state;
	/* the cap doubles per retry up to the maximum; the value is rnd modulo cap+1 */
	assert_int_equal(http_backoff_ms(100, 10000, 1, UINT64_MAX), UINT64_MAX % 101);
	for (r = 0; r < 1000; r += 37) {
		assert_true(http_backoff_ms(100, 10000, 1, r * 7919) <= 100);
		assert_true(http_backoff_ms(100, 10000, 3, r * 7919) <= 400);
		assert_true(http_backoff_ms(100, 10000, 60, r * 7919) <= 10000);
	}
	assert_int_equal(http_backoff_ms(100, 10000, 3, 400), 400);
	assert_int_equal(http_backoff_ms(100, 10000, 3, 401), 0);
	assert_int_equal(http_backoff_ms(100, 10000, 200, 10000), 10000);
	assert_int_equal(http_backoff_ms(100, 10000, 200, 10001), 0);
}

static void test_urlencode(void **state)
{
	struct buf b = BUF_INIT(64);
	struct buf small = BUF_INIT(5);
	char *s;

	(void)state;
	assert_int_equal(http_urlencode(&b, "AZaz09-_.~", 10), 0);
	assert_string_equal((char *)b.data, "AZaz09-_.~");
	buf_reset(&b);
	assert_int_equal(http_urlencode(&b, "a b+/=\xc3\xa9*&%", 11), 0);
	assert_string_equal((char *)b.data, "a%20b%2B%2F%3D%C3%A9%2A%26%25");
	buf_free(&b);
	s = http_urlencode_dup("https://management.azure.com/.default");
	assert_string_equal(s, "https%3A%2F%2Fmanagement.azure.com%2F.default");
	free(s);
	/* past the maximum: fails and leaves the buffer as it was */
	assert_int_equal(http_urlencode(&small, "ab", 2), 0);
	assert_int_equal(http_urlencode(&small, "c/", 2), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_string_equal((char *)small.data, "ab");
	buf_free(&small);
}

static void test_form(void **state)
{
	struct http_form f;
	struct pp_err err = { 0 };
	const char *text;
	size_t len, i;

	(void)state;
	http_form_init(&f, 4096);
	assert_int_equal(http_form_finish(&f, &text, &len, &err), 0);
	assert_string_equal(text, "");
	assert_int_equal(http_form_add(&f, "Action", "RunInstances"), 0);
	assert_int_equal(http_form_add(&f, "Version", "2016-11-15"), 0);
	for (i = 1; i <= 2; i++)
		assert_int_equal(http_form_addf(&f, i == 1 ? "sg-1" : "sg-2", "SecurityGroupId.%zu", i),
				 0);
	assert_int_equal(http_form_add(&f, "UserData", "I2Nsb3VkLWNvbmZpZw+/="), 0);
	assert_int_equal(http_form_add(&f, "TagSpecification.1.Tag.1.Value", "podvm a"), 0);
	assert_int_equal(http_form_add(&f, "Empty", ""), 0);
	assert_int_equal(http_form_finish(&f, &text, &len, &err), 0);
	assert_string_equal(text, "Action=RunInstances&Version=2016-11-15&SecurityGroupId.1=sg-1&"
				  "SecurityGroupId.2=sg-2&UserData=I2Nsb3VkLWNvbmZpZw%2B%2F%3D&"
				  "TagSpecification.1.Tag.1.Value=podvm%20a&Empty=");
	assert_int_equal(len, strlen(text));
	http_form_free(&f);

	/* errors are sticky and reported once at the end */
	http_form_init(&f, 20);
	assert_int_equal(http_form_add(&f, "Action", "Run"), 0);
	assert_int_equal(http_form_add(&f, "Version", "2016-11-15"), -1);
	assert_int_equal(http_form_add(&f, "A", "b"), -1);
	assert_int_equal(http_form_finish(&f, &text, &len, &err), -1);
	assert_int_equal(err.code, PP_OUT_OF_RANGE);
	assert_non_null(strstr(err.msg, "20 bytes"));
	http_form_free(&f);
	http_form_init(&f, 100);
	assert_int_equal(http_form_add(&f, "", "x"), -1);
	assert_int_equal(http_form_finish(&f, &text, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	http_form_free(&f);
}

static void test_redaction(void **state)
{
	char out[128], msg[128], ex[32];

	(void)state;
	assert_string_equal(http_url_redact(out, sizeof(out), "https://h.example/p/a?sig=S&x=1"),
			    "https://h.example/p/a");
	assert_string_equal(http_url_redact(out, sizeof(out), "https://user:pw@h:8443/p#frag"),
			    "https://h:8443/p");
	assert_string_equal(http_url_redact(out, sizeof(out), "http://h?x=@y"), "http://h");
	assert_string_equal(http_url_redact(out, sizeof(out), "no-scheme/p?q"), "no-scheme/p");
	assert_string_equal(http_url_redact(out, 12, "https://h.example/long"), "https://h.e");

	pp_strlcpy(msg, "URL rejected: http://h/p?sig=S&t=1 bad 'q?x=1' end?", sizeof(msg));
	http_scrub_query(msg);
	assert_string_equal(msg, "URL rejected: http://h/p bad 'q' end");

	assert_string_equal(http_excerpt(ex, sizeof(ex), "  a\r\n\tb\x01 ", 9, 300), "a b?");
	assert_string_equal(http_excerpt(ex, sizeof(ex), "abcdefgh", 8, 4), "abcd...");
	assert_string_equal(http_excerpt(ex, sizeof(ex), "", 0, 4), "");
	/* the output buffer also bounds it */
	assert_string_equal(http_excerpt(ex, 8, "abcdefghijkl", 12, 300), "abcd...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_to_code), cmocka_unit_test(test_retryable),
		cmocka_unit_test(test_retry_after),    cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_urlencode),      cmocka_unit_test(test_form),
		cmocka_unit_test(test_redaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
