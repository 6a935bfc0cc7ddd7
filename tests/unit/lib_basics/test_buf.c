/* Tests for lib/buf: growth, the hard maximum, consume, steal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"

static void test_append_grows(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 100000);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10000);
	assert_true(b.cap <= b.max + 1);
	assert_memory_equal(b.data + 9990, "0123456789", 10);
	assert_int_equal(b.data[b.len], '\0');
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void test_max_enforced(void **state)
{
	struct buf b = BUF_INIT(8);

	(void)state;
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	assert_int_equal(buf_append(&b, "6789", 4), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(b.len, 5);   /* unchanged */
	assert_string_equal((char *)b.data, "12345");
	assert_int_equal(buf_append(&b, "678", 3), 0);   /* exactly max */
	assert_int_equal(b.len, 8);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_appendf(&b, "%s", "x"), -1);
	assert_int_equal(buf_append(&b, "", 0), 0);
	buf_free(&b);
}

static void test_appendf(void **state)
{
	struct buf b = BUF_INIT(64);

	(void)state;
	assert_int_equal(buf_appendf(&b, "id=%d name=%s", 42, "pod"), 0);
	assert_string_equal((char *)b.data, "id=42 name=pod");
	assert_int_equal(buf_appendf(&b, "%0100d", 1), -1);   /* would pass max */
	assert_string_equal((char *)b.data, "id=42 name=pod");
	assert_int_equal(buf_append_str(&b, "!"), 0);
	assert_string_equal((char *)b.data, "id=42 name=pod!");
	buf_free(&b);
}

static void test_consume_and_steal(void **state)
{
	struct buf b = BUF_INIT(1024);
	uint8_t *p;
	size_t n;

	(void)state;
	assert_int_equal(buf_append_str(&b, "headerbody"), 0);
	buf_consume(&b, 6);
	assert_int_equal(b.len, 4);
	assert_string_equal((char *)b.data, "body");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append_str(&b, "kept"), 0);
	p = buf_steal(&b, &n);
	assert_int_equal(n, 4);
	assert_string_equal((char *)p, "kept");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
	p = buf_steal(&b, &n);   /* empty buffer: an empty string, never NULL */
	assert_non_null(p);
	assert_int_equal(n, 0);
	assert_string_equal((char *)p, "");
	free(p);
	assert_int_equal(buf_reserve(&b, 2000), -1);
	assert_int_equal(buf_reserve(&b, 1024), 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_grows),
		cmocka_unit_test(test_max_enforced),
		cmocka_unit_test(test_appendf),
		cmocka_unit_test(test_consume_and_steal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
