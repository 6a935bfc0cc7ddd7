/* Tests for lib/digest: FIPS 180 vectors for sha256/384/512, unknown names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/digest.h"

static void test_abc_vectors(void **state)
{
	struct pp_err err = { 0 };
	char hex[DIGEST_MAX_HEX];

	(void)state;
	assert_int_equal(digest_hex("sha256", "abc", 3, hex, &err), 0);
	assert_string_equal(hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(digest_hex("sha384", "abc", 3, hex, &err), 0);
	assert_string_equal(hex,
		"cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
		"8086072ba1e7cc2358baeca134c825a7");
	assert_int_equal(digest_hex("sha512", "abc", 3, hex, &err), 0);
	assert_string_equal(hex,
		"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
		"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	assert_int_equal(digest_hex("sha256", "", 0, hex, &err), 0);
	assert_string_equal(hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_raw(void **state)
{
	static const uint8_t want[4] = { 0xba, 0x78, 0x16, 0xbf };
	uint8_t raw[DIGEST_MAX_SIZE];
	struct pp_err err = { 0 };
	size_t n = 0;

	(void)state;
	assert_int_equal(digest_compute("sha256", "abc", 3, raw, &n, &err), 0);
	assert_int_equal(n, 32);
	assert_memory_equal(raw, want, sizeof(want));
	assert_int_equal(digest_size("sha256", &err), 32);
	assert_int_equal(digest_size("sha384", &err), 48);
	assert_int_equal(digest_size("sha512", &err), 64);
}

static void test_unknown(void **state)
{
	uint8_t raw[DIGEST_MAX_SIZE];
	struct pp_err err = { 0 };
	char hex[DIGEST_MAX_HEX];
	size_t n = 99;

	(void)state;
	assert_int_equal(digest_compute("md5", "abc", 3, raw, &n, &err), -1);
	assert_int_equal(n, 99);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_string_equal(err.msg,
		"unknown digest algorithm \"md5\" (supported: sha256, sha384, sha512)");
	assert_int_equal(digest_hex("SHA256", "abc", 3, hex, &err), -1);
	assert_int_equal(digest_size("sha1", &err), -1);
	assert_non_null(strstr(err.msg, "\"sha1\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abc_vectors),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
