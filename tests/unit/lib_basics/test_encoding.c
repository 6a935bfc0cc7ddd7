/* Tests for lib/encoding: RFC 4648 vectors, URL-safe form, strict decoding, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/encoding.h"
#include "lib/util.h"

struct vector {
	const char *plain;
	const char *b64;
};

/* RFC 4648 section 10 */
static const struct vector RFC4648[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_base64_rfc4648(void **state)
{
	struct pp_err err = { 0 };
	size_t i, n;
	uint8_t *d;
	char *e;

	(void)state;
	for (i = 0; i < PP_ARRAY_SIZE(RFC4648); i++) {
		e = base64_encode(RFC4648[i].plain, strlen(RFC4648[i].plain));
		assert_string_equal(e, RFC4648[i].b64);
		free(e);
		assert_int_equal(base64_decode(RFC4648[i].b64, strlen(RFC4648[i].b64), &d, &n,
					       &err), 0);
		assert_int_equal(n, strlen(RFC4648[i].plain));
		assert_memory_equal(d, RFC4648[i].plain, n);
		free(d);
	}
}

static void test_base64_binary_and_url(void **state)
{
	static const uint8_t bin[] = { 0xfb, 0xff, 0xbf, 0x00, 0x3e };
	struct pp_err err = { 0 };
	uint8_t *d;
	size_t n;
	char *e;

	(void)state;
	e = base64_encode(bin, sizeof(bin));
	assert_string_equal(e, "+/+/AD4=");
	free(e);
	e = base64url_encode(bin, sizeof(bin), true);
	assert_string_equal(e, "-_-_AD4=");
	free(e);
	e = base64url_encode(bin, sizeof(bin), false);
	assert_string_equal(e, "-_-_AD4");
	free(e);
	assert_int_equal(base64url_decode("-_-_AD4", 7, &d, &n, &err), 0);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(d, bin, n);
	free(d);
	assert_int_equal(base64url_decode("-_-_AD4=", 8, &d, &n, &err), 0);
	assert_memory_equal(d, bin, n);
	free(d);
	/* each alphabet rejects the other's characters */
	assert_int_equal(base64url_decode("+/+/AD4=", 8, &d, &n, &err), -1);
	assert_int_equal(base64_decode("-_-_AD4=", 8, &d, &n, &err), -1);
}

static void test_base64_whitespace(void **state)
{
	const char *s = "Zm9v\r\nYmFy\n Zm8=\n";
	struct pp_err err = { 0 };
	uint8_t *d;
	size_t n;

	(void)state;
	assert_int_equal(base64_decode(s, strlen(s), &d, &n, &err), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(d, "foobarfo", 8);
	free(d);
}

static void test_base64_rejects(void **state)
{
	static const char *const bad[] = {
		"Zm9v!",      /* bad character */
		"Zm9",        /* std: missing padding */
		"Zg=",        /* short padding */
		"Zg===",      /* too much padding */
		"Z===",       /* impossible length */
		"Zm=9",       /* '=' in the middle */
		"Zm8=Zm8=",   /* data after padding */
		"Z",          /* one char cannot be a byte */
		"Zm9v\x00",   /* NUL inside */
	};
	struct pp_err err = { 0 };
	uint8_t *d = NULL;
	size_t i, n;

	(void)state;
	for (i = 0; i < PP_ARRAY_SIZE(bad); i++) {
		size_t len = i == 8 ? 5 : strlen(bad[i]);

		assert_int_equal(base64_decode(bad[i], len, &d, &n, &err), -1);
		assert_int_equal(err.code, PP_INVALID_ARGUMENT);
		assert_null(d);
	}
	assert_int_equal(base64_decode("Zm9v!", 5, &d, &n, &err), -1);
	assert_string_equal(err.msg, "invalid base64: illegal character 0x21 at offset 4");
	assert_int_equal(base64url_decode("Z", 1, &d, &n, &err), -1);
	assert_int_equal(base64url_decode("Zg=", 3, &d, &n, &err), -1);
}

static void test_hex(void **state)
{
	static const uint8_t bin[] = { 0x00, 0x01, 0xab, 0xff };
	struct pp_err err = { 0 };
	uint8_t *d;
	size_t n;
	char *e;

	(void)state;
	e = hex_encode(bin, sizeof(bin));
	assert_string_equal(e, "0001abff");
	free(e);
	/* RFC 4648 base16 vector, upper case accepted on decode */
	assert_int_equal(hex_decode("666F6F626172", 12, &d, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(d, "foobar", 6);
	free(d);
	assert_int_equal(hex_decode("abc", 3, &d, &n, &err), -1);
	assert_string_equal(err.msg, "invalid hex: odd length 3");
	assert_int_equal(hex_decode("0g", 2, &d, &n, &err), -1);
	assert_string_equal(err.msg, "invalid hex: illegal character at offset 1");
	assert_int_equal(hex_decode("", 0, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_rfc4648),
		cmocka_unit_test(test_base64_binary_and_url),
		cmocka_unit_test(test_base64_whitespace),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
