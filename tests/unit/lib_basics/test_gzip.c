/* Tests for lib/gzip: round trip, interoperability with zlib's gz format, bomb limit, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/gzip.h"

#define BIG (1024 * 1024)

static void test_round_trip(void **state)
{
	const char *text = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n[data]\n";
	struct pp_err err = { 0 };
	uint8_t *z, *out;
	size_t zn, n;

	(void)state;
	assert_int_equal(gzip_compress(text, strlen(text), &z, &zn, &err), 0);
	assert_true(zn > 18);
	assert_int_equal(z[0], 0x1f);   /* gzip magic */
	assert_int_equal(z[1], 0x8b);
	assert_int_equal(gzip_decompress(z, zn, 1024, &out, &n, &err), 0);
	assert_int_equal(n, strlen(text));
	assert_string_equal((char *)out, text);
	free(out);
	/* a limit of exactly the size is enough */
	assert_int_equal(gzip_decompress(z, zn, strlen(text), &out, &n, &err), 0);
	free(out);
	free(z);
}

static void test_empty_round_trip(void **state)
{
	struct pp_err err = { 0 };
	uint8_t *z, *out;
	size_t zn, n;

	(void)state;
	assert_int_equal(gzip_compress("", 0, &z, &zn, &err), 0);
	assert_int_equal(gzip_decompress(z, zn, 0, &out, &n, &err), 0);
	assert_int_equal(n, 0);
	free(out);
	free(z);
}

/* Output of `printf hello | gzip -n`. */
static const uint8_t GZ_HELLO[] = {
	0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9,
	0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00,
};

static void test_reference_and_concat(void **state)
{
	uint8_t two[2 * sizeof(GZ_HELLO)];
	struct pp_err err = { 0 };
	uint8_t *out;
	size_t n;

	(void)state;
	assert_int_equal(gzip_decompress(GZ_HELLO, sizeof(GZ_HELLO), 100, &out, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_string_equal((char *)out, "hello");
	free(out);
	memcpy(two, GZ_HELLO, sizeof(GZ_HELLO));
	memcpy(two + sizeof(GZ_HELLO), GZ_HELLO, sizeof(GZ_HELLO));
	assert_int_equal(gzip_decompress(two, sizeof(two), 100, &out, &n, &err), 0);
	assert_string_equal((char *)out, "hellohello");
	free(out);
}

static void test_bomb_refused(void **state)
{
	struct pp_err err = { 0 };
	uint8_t *zeros = calloc(1, BIG), *z, *out = NULL;
	size_t zn, n;

	(void)state;
	assert_int_equal(gzip_compress(zeros, BIG, &z, &zn, &err), 0);
	assert_true(zn < 4096);   /* 1 MiB of zeros compresses very well */
	assert_int_equal(gzip_decompress(z, zn, BIG - 1, &out, &n, &err), -1);
	assert_null(out);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_string_equal(err.msg,
			    "gzip: decompressed data is larger than the limit of 1048575 bytes");
	assert_int_equal(gzip_decompress(z, zn, BIG, &out, &n, &err), 0);
	assert_int_equal(n, BIG);
	assert_memory_equal(out, zeros, BIG);
	free(out);
	free(z);
	free(zeros);
}

static void test_garbage_refused(void **state)
{
	uint8_t trunc[sizeof(GZ_HELLO)], trailing[sizeof(GZ_HELLO) + 3];
	struct pp_err err = { 0 };
	uint8_t *out = NULL;
	size_t n;

	(void)state;
	assert_int_equal(gzip_decompress("not gzip at all", 15, 100, &out, &n, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "gzip: invalid data"));
	assert_int_equal(gzip_decompress("", 0, 100, &out, &n, &err), -1);
	memcpy(trunc, GZ_HELLO, sizeof(GZ_HELLO));
	assert_int_equal(gzip_decompress(trunc, sizeof(GZ_HELLO) - 6, 100, &out, &n, &err), -1);
	assert_string_equal(err.msg, "gzip: truncated data");
	trunc[sizeof(GZ_HELLO) - 5] ^= 1;   /* corrupt the CRC */
	assert_int_equal(gzip_decompress(trunc, sizeof(trunc), 100, &out, &n, &err), -1);
	memcpy(trailing, GZ_HELLO, sizeof(GZ_HELLO));
	memcpy(trailing + sizeof(GZ_HELLO), "xyz", 3);
	assert_int_equal(gzip_decompress(trailing, sizeof(trailing), 100, &out, &n, &err), -1);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_round_trip),
		cmocka_unit_test(test_reference_and_concat),
		cmocka_unit_test(test_bomb_refused),
		cmocka_unit_test(test_garbage_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
