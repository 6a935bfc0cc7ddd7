/* initdata: gzip+base64 round trip, and the start-up check of INITDATA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adaptor/initdata.h"
#include "lib/encoding.h"
#include "lib/gzip.h"

static const char toml[] =
	"# initdata\n"
	"algorithm = \"sha384\"\n"
	"version = \"0.1.0\"\n"
	"\n"
	"[data]\n"
	"\"aa.toml\" = '''\n"
	"[token_configs]\n"
	"[token_configs.kbs]\n"
	"url = \"https://kbs.example:8080\"\n"
	"'''\n"
	"\"policy.rego\" = '''\n"
	"package agent_policy\n"
	"default AllowRequestsFailingPolicy := true\n"
	"'''\n";

static char *encode(const char *text)
{
	char *b64;
	struct pp_err err = { 0 };

	assert_int_equal(initdata_encode(text, strlen(text), &b64, &err), 0);
	return b64;
}

static void test_round_trip(void **state)
{
	char *b64 = encode(toml), *back;
	size_t len;
	struct pp_err err = { 0 };

	(void)state;
	assert_null(strchr(b64, '\n'));
	assert_int_equal(strlen(b64) % 4, 0);    /* padded standard base64 */
	assert_int_equal(initdata_decode(b64, strlen(b64), &back, &len, &err), 0);
	assert_int_equal(len, strlen(toml));
	assert_memory_equal(back, toml, len);
	free(back);
	assert_int_equal(initdata_check_encoded(b64, &err), 0);
	free(b64);
}

/* The VM side reads the file with the newline YAML's `|` adds; decoding must not mind. */
static void test_decode_skips_newline(void **state)
{
	char *b64 = encode(toml), *with_nl, *back;
	size_t n = strlen(b64), len;
	struct pp_err err = { 0 };

	(void)state;
	with_nl = malloc(n + 2);
	memcpy(with_nl, b64, n);
	memcpy(with_nl + n, "\n", 2);
	assert_int_equal(initdata_decode(with_nl, n + 1, &back, &len, &err), 0);
	assert_memory_equal(back, toml, len);
	free(back);
	free(with_nl);
	free(b64);
}

static void check_fails(const char *text, const char *want)
{
	struct pp_err err = { 0 };

	assert_int_equal(initdata_check_toml(text, strlen(text), "INITDATA", &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!strstr(err.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void check_ok(const char *text)
{
	struct pp_err err = { 0 };

	if (initdata_check_toml(text, strlen(text), "INITDATA", &err) != 0)
		fail_msg("refused: %s", err.msg);
}

static void test_toml_check(void **state)
{
	(void)state;
	check_ok("algorithm = \"sha256\"\nversion = \"0.1.0\"\n");
	check_ok("version='0.1.0'\r\nalgorithm='sha512' # comment\r\n[data]\n");
	check_ok("  \"algorithm\" = \"sha384\"\n version = \"0.1.0\"\n");
	check_fails("algorithm = \"md5\"\nversion = \"0.1.0\"\n", "algorithm \"md5\" is not sha256");
	check_fails("version = \"0.1.0\"\n", "no top-level algorithm");
	check_fails("algorithm = \"sha256\"\n", "no top-level version");
	/* keys inside a table are not top-level */
	check_fails("version = \"0.1.0\"\n[data]\nalgorithm = \"sha256\"\n", "no top-level algorithm");
	check_fails("algorithm = \"sha256\"\nalgorithm = \"sha512\"\nversion = \"1\"\n",
		    "key algorithm appears twice");
	check_fails("algorithm = sha256\nversion = \"1\"\n", "no top-level algorithm");
}

static void encoded_fails(const char *b64, const char *want)
{
	struct pp_err err = { 0 };

	assert_int_equal(initdata_check_encoded(b64, &err), -1);
	assert_non_null(strstr(err.msg, "INITDATA"));
	if (!strstr(err.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void test_check_encoded_failures(void **state)
{
	char *plain = base64_encode(toml, strlen(toml));     /* base64 but not gzip */
	char *bad_alg = encode("algorithm = \"sha1\"\nversion = \"0.1.0\"\n");

	(void)state;
	encoded_fails("not base64!", "not base64");
	encoded_fails(plain, "not gzip");
	encoded_fails(bad_alg, "algorithm \"sha1\"");
	free(plain);
	free(bad_alg);
}

/* A gzip bomb is refused, not inflated. */
static void test_decompressed_limit(void **state)
{
	size_t big = INITDATA_TOML_MAX + 1;
	char *zeros = calloc(1, big), *b64, *back = NULL;
	uint8_t *gz;
	size_t gz_len, len;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(gzip_compress(zeros, big, &gz, &gz_len, &err), 0);
	b64 = base64_encode(gz, gz_len);
	assert_int_equal(initdata_decode(b64, strlen(b64), &back, &len, &err), -1);
	assert_null(back);
	free(b64);
	free(gz);
	free(zeros);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_decode_skips_newline),
		cmocka_unit_test(test_toml_check),
		cmocka_unit_test(test_check_encoded_failures),
		cmocka_unit_test(test_decompressed_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
