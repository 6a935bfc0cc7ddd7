/* Tests for lib/util: strict integer parsing, trimming, quoting, bounded copy, random, time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/util.h"

static void test_parse_int64_valid(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(parse_int64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_int64("-42", &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(parse_int64("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(parse_int64("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
}

static void test_parse_int64_rejects(void **state)
{
	static const char *const bad[] = { "", " 1", "1 ", "12x", "+1", "-", "0x10", "1.5",
					   "9223372036854775808", "-9223372036854775809", "\t3" };
	int64_t v = 77;
	size_t i;

	(void)state;
	for (i = 0; i < PP_ARRAY_SIZE(bad); i++) {
		assert_int_equal(parse_int64(bad[i], &v), -1);
		assert_true(v == 77);   /* not written on failure */
	}
	assert_int_equal(parse_int64("9223372036854775808", &v), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(parse_int64("12x", &v), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(parse_int64(NULL, &v), -1);
}

static void test_parse_unsigned(void **state)
{
	uint64_t u;
	uint32_t w;

	(void)state;
	assert_int_equal(parse_uint64("18446744073709551615", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(parse_uint64("18446744073709551616", &u), -1);
	assert_int_equal(parse_uint64("-1", &u), -1);
	assert_int_equal(parse_uint64(" 1", &u), -1);
	assert_int_equal(parse_uint64("", &u), -1);
	assert_int_equal(parse_uint32("4294967295", &w), 0);
	assert_true(w == UINT32_MAX);
	assert_int_equal(parse_uint32("4294967296", &w), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(parse_uint32("12x", &w), -1);
	assert_int_equal(parse_uint32("15150", &w), 0);
	assert_int_equal(w, 15150);
}

static void test_strings(void **state)
{
	char s[32] = "  \t hello world \r\n";
	char e[] = " \t ";

	(void)state;
	assert_ptr_equal(str_trim(s), s);
	assert_string_equal(s, "hello world");
	assert_string_equal(str_trim(e), "");
	assert_true(str_has_prefix("podvm-abc", "podvm-"));
	assert_false(str_has_prefix("pod", "podvm-"));
	assert_true(str_has_suffix("a.conf", ".conf"));
	assert_false(str_has_suffix("conf", ".conf"));
}

static void test_quote(void **state)
{
	char q[64], small[12];

	(void)state;
	assert_string_equal(str_quote(q, sizeof(q), "a \"b\"\\\n\x01"), "\"a \\\"b\\\"\\\\\\n\\x01\"");
	assert_string_equal(str_quote(q, sizeof(q), ""), "\"\"");
	assert_string_equal(str_quote(small, sizeof(small), "abcdefghijklmnop"), "\"abcdef...\"");
	assert_true(strlen(small) < sizeof(small));
	/* exactly fitting text is not cut */
	assert_string_equal(str_quote(small, sizeof(small), "abcdefghi"), "\"abcdefghi\"");
}

static void test_strlcpy(void **state)
{
	char d[6];

	(void)state;
	assert_true(pp_strlcpy(d, "hello", sizeof(d)));
	assert_string_equal(d, "hello");
	assert_false(pp_strlcpy(d, "hello!", sizeof(d)));
	assert_string_equal(d, "hello");
	assert_true(pp_strlcpy(d, "", sizeof(d)));
	assert_string_equal(d, "");
}

static void test_random_and_time(void **state)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(pp_random_bytes(a, sizeof(a), &err), 0);
	assert_int_equal(pp_random_bytes(b, sizeof(b), &err), 0);
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_true(pp_unix_time() > 1700000000);   /* after Nov 2023 */
	assert_true(pp_unix_time_ms() / 1000 - pp_unix_time() <= 1);
	assert_true(pp_monotonic_ms() <= pp_monotonic_ms());
}

static void test_xalloc(void **state)
{
	char *s = pp_xstrndup("abcdef", 3);
	char *t = pp_xstrdup("xyz");
	int *z = pp_xcalloc(4, sizeof(int));

	(void)state;
	assert_string_equal(s, "abc");
	assert_string_equal(t, "xyz");
	assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
	free(s);
	free(t);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_int64_valid),
		cmocka_unit_test(test_parse_int64_rejects),
		cmocka_unit_test(test_parse_unsigned),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_random_and_time),
		cmocka_unit_test(test_xalloc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
