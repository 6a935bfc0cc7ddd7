/* initdata in the VM: base64(gzip(TOML)) decoded, checked and digested (compared with OpenSSL
 * over the TOML bytes), the dummy document when none was given, and what gets written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <zlib.h>

#include "forwarder/initdata.h"
#include "lib/encoding.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "vm_test_util.h"

static const char sample_toml[] =
	"algorithm = \"%s\"\n"
	"version = \"0.1.0\"\n"
	"\n"
	"[data]\n"
	"\"aa.toml\" = '''\n"
	"[token_configs]\n"
	"[token_configs.kbs]\n"
	"url = \"http://kbs:8080\"\n"
	"cert = \"\"\"\n"
	"-----BEGIN CERTIFICATE-----\n"
	"MIIB\n"
	"-----END CERTIFICATE-----\n"
	"\"\"\"\n"
	"'''\n"
	"\n"
	"\"cdh.toml\"  = '''\n"
	"socket = 'unix:///run/confidential-containers/cdh.sock'\n"
	"credentials = []\n"
	"'''\n"
	"\"policy.rego\" = \"\"\"\n"
	"package agent_policy\n"
	"default AllowRequestsFailingPolicy := true\n"
	"\"\"\"\n"
	"role = \"basic\"\n";

/* base64(gzip(toml)), made with the lib helpers the adaptor side uses; wrap > 0 inserts a
 * newline every wrap characters and at the end, as the user-data content block does. */
static char *encode(const char *toml, size_t wrap)
{
	uint8_t *gz;
	size_t gz_len, i, n = 0;
	char *b64, *out;

	assert_int_equal(gzip_compress(toml, strlen(toml), &gz, &gz_len, NULL), 0);
	b64 = base64_encode(gz, gz_len);
	free(gz);
	if (!wrap)
		return b64;
	out = malloc(strlen(b64) * 2 + 2);
	for (i = 0; b64[i]; i++) {
		out[n++] = b64[i];
		if ((i + 1) % wrap == 0)
			out[n++] = '\n';
	}
	out[n++] = '\n';
	out[n] = '\0';
	free(b64);
	return out;
}

static struct initdata *decode_ok(const char *text)
{
	struct initdata *id = NULL;
	struct pp_err err = { 0 };

	if (initdata_decode(text, strlen(text), &id, &err) < 0)
		fail_msg("initdata_decode: %s", err.msg);
	return id;
}

static void check_algorithm(const char *alg, const char *openssl_name)
{
	char toml[2048], want[129];
	struct initdata *id;
	char *enc;

	snprintf(toml, sizeof(toml), sample_toml, alg);
	enc = encode(toml, 76);
	id = decode_ok(enc);
	vt_sha_hex(openssl_name, toml, strlen(toml), want);
	assert_string_equal(id->algorithm, alg);
	assert_string_equal(id->digest, want);
	assert_int_equal(id->n_data, 4);
	assert_string_equal(id->data[0].name, "aa.toml");
	assert_non_null(strstr(id->data[0].content, "url = \"http://kbs:8080\"\ncert = \"\"\"\n-----BEGIN"));
	assert_string_equal(id->data[1].name, "cdh.toml");
	assert_string_equal(id->data[1].content,
			    "socket = 'unix:///run/confidential-containers/cdh.sock'\ncredentials = []\n");
	assert_string_equal(id->data[2].name, "policy.rego");
	assert_string_equal(id->data[3].name, "role");
	initdata_free(id);
	free(enc);
}

static void test_decode_digests(void **state)
{
	(void)state;
	check_algorithm("sha256", "SHA256");
	check_algorithm("sha384", "SHA384");
	check_algorithm("sha512", "SHA512");
}

/* gzip at compression level 0 (stored blocks): different bytes from lib's gzip_compress. */
static char *encode_stored(const char *toml)
{
	z_stream z = { 0 };
	uint8_t out[8192];
	char *b64;

	assert_int_equal(deflateInit2(&z, 0, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)toml;
	z.avail_in = (uInt)strlen(toml);
	z.next_out = out;
	z.avail_out = sizeof(out);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	b64 = base64_encode(out, z.total_out);
	deflateEnd(&z);
	return b64;
}

/* The digest is over the TOML bytes, so two different gzip encodings give the same digest. */
static void test_digest_independent_of_gzip(void **state)
{
	(void)state;
	char toml[2048];
	struct initdata *a, *b;
	char *e1, *e2;

	snprintf(toml, sizeof(toml), sample_toml, "sha256");
	e1 = encode(toml, 0);
	e2 = encode_stored(toml);
	assert_string_not_equal(e1, e2);
	a = decode_ok(e1);
	b = decode_ok(e2);
	assert_string_equal(a->digest, b->digest);
	initdata_free(a);
	initdata_free(b);
	free(e1);
	free(e2);
}

static void expect_toml_error(const char *toml, const char *want)
{
	struct initdata *id = NULL;
	struct pp_err err = { 0 };
	char *enc = encode(toml, 0);

	assert_int_equal(initdata_decode(enc, strlen(enc), &id, &err), -1);
	assert_null(id);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
	free(enc);
}

static void test_invalid_documents(void **state)
{
	(void)state;
	expect_toml_error("algorithm = \"md5\"\nversion = \"0.1.0\"\n",
			  "initdata line 1: unknown algorithm \"md5\" (expected sha256, sha384 or sha512)");
	expect_toml_error("algorithm = \"SHA256\"\nversion = \"0.1.0\"\n", "unknown algorithm");
	expect_toml_error("version = \"0.1.0\"\n[data]\n", "algorithm is missing");
	expect_toml_error("algorithm = \"sha256\"\n", "version is missing");
	expect_toml_error("algorithm = \"sha256\"\nversion = \"9.9\"\n", "unsupported version \"9.9\"");
	expect_toml_error("algorithm = 256\nversion = \"0.1.0\"\n", "algorithm must be a string, not a integer");
	expect_toml_error("algorithm = \"sha256\"\nversion = \"0.1.0\"\nextra = true\n",
			  "initdata line 3: unknown key \"extra\"");
	expect_toml_error("algorithm = \"sha256\"\nversion = \"0.1.0\"\n[other]\n", "unknown table [\"other\"]");
	expect_toml_error("algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"aa.toml\" = 1\n",
			  "data entry \"aa.toml\" must be a string");
	expect_toml_error("algorithm = \"sha256\"\nversion = \"0.1.0\"\n[data]\n\"aa.toml\" = '''\n",
			  "initdata: TOML line 5, column 1: unterminated string");
}

static void test_invalid_encodings(void **state)
{
	(void)state;
	struct initdata *id = NULL;
	struct pp_err err = { 0 };
	uint8_t *bomb_gz;
	size_t bomb_len;
	char *zeros, *b64;

	assert_int_equal(initdata_decode("not base64!", 11, &id, &err), -1);
	assert_non_null(strstr(err.msg, "initdata is not valid base64"));

	b64 = base64_encode("plain text, not gzip", 20);
	assert_int_equal(initdata_decode(b64, strlen(b64), &id, &err), -1);
	assert_non_null(strstr(err.msg, "initdata is not valid gzip"));
	free(b64);

	/* A small gzip that inflates past the limit is refused, not allocated. */
	zeros = calloc(1, INITDATA_MAX_TOML + 4096);
	memset(zeros, ' ', INITDATA_MAX_TOML + 4095);
	assert_int_equal(gzip_compress(zeros, INITDATA_MAX_TOML + 4095, &bomb_gz, &bomb_len, NULL), 0);
	assert_true(bomb_len < 64 * 1024);
	b64 = base64_encode(bomb_gz, bomb_len);
	assert_int_equal(initdata_decode(b64, strlen(b64), &id, &err), -1);
	assert_non_null(strstr(err.msg, "initdata is not valid gzip"));
	assert_null(id);
	free(b64);
	free(bomb_gz);
	free(zeros);
}

static void test_encode_roundtrip(void **state)
{
	(void)state;
	struct initdata *id;
	char *enc, want[129];

	assert_int_equal(initdata_encode(initdata_dummy_toml, strlen(initdata_dummy_toml), &enc, NULL), 0);
	id = decode_ok(enc);
	vt_sha_hex("SHA256", initdata_dummy_toml, strlen(initdata_dummy_toml), want);
	assert_string_equal(id->digest, want);
	assert_int_equal(id->n_data, 1);
	assert_string_equal(id->data[0].name, "aa.toml");
	assert_string_equal(id->data[0].content, "");
	initdata_free(id);
	free(enc);
}

static void test_provision_dummy(void **state)
{
	(void)state;
	char root[64], want[129], *digest, *aa, *enc;
	struct pp_err err = { 0 };

	vt_tmpdir(root, sizeof(root));
	assert_int_equal(initdata_provision(root, NULL, &err), 0);
	enc = vt_read(root, "/run/peerpod/initdata", NULL);
	assert_non_null(enc);
	digest = vt_read(root, "/run/peerpod/initdata.digest", NULL);
	vt_sha_hex("SHA256", initdata_dummy_toml, strlen(initdata_dummy_toml), want);
	assert_string_equal(digest, want);
	aa = vt_read(root, "/run/peerpod/aa.toml", NULL);
	assert_string_equal(aa, "");
	assert_null(vt_read(root, "/run/peerpod/cdh.toml", NULL));
	assert_int_equal(vt_mode(root, "/run/peerpod/initdata.digest"), 0644);
	free(enc);
	free(digest);
	free(aa);
	vt_rmdir(root);
}

static void test_provision_given(void **state)
{
	(void)state;
	char root[64], toml[2048], want[129], *enc, *digest, *cdh, *pol;
	struct pp_err err = { 0 };

	vt_tmpdir(root, sizeof(root));
	snprintf(toml, sizeof(toml), sample_toml, "sha384");
	enc = encode(toml, 76);
	snprintf(want, sizeof(want), "%s/run/peerpod", root);
	assert_int_equal(mkdir_p(want, 0755, NULL), 0);
	vt_write(root, "/run/peerpod/initdata", enc);
	assert_int_equal(initdata_provision(root, NULL, &err), 0);

	digest = vt_read(root, "/run/peerpod/initdata.digest", NULL);
	vt_sha_hex("SHA384", toml, strlen(toml), want);
	assert_string_equal(digest, want);
	cdh = vt_read(root, "/run/peerpod/cdh.toml", NULL);
	assert_string_equal(cdh, "socket = 'unix:///run/confidential-containers/cdh.sock'\ncredentials = []\n");
	pol = vt_read(root, "/run/peerpod/policy.rego", NULL);
	assert_non_null(strstr(pol, "package agent_policy\n"));
	assert_int_equal(vt_mode(root, "/run/peerpod/policy.rego"), 0644);
	assert_int_equal(vt_mode(root, "/run/peerpod/role"), -1);  /* not in the allow-list */
	free(enc);
	free(digest);
	free(cdh);
	free(pol);
	vt_rmdir(root);
}

static void test_provision_invalid(void **state)
{
	(void)state;
	char root[64], dir[128], *enc;
	struct pp_err err = { 0 };

	vt_tmpdir(root, sizeof(root));
	snprintf(dir, sizeof(dir), "%s/run/peerpod", root);
	assert_int_equal(mkdir_p(dir, 0755, NULL), 0);
	enc = encode("algorithm = \"sha1\"\nversion = \"0.1.0\"\n[data]\n\"aa.toml\" = 'x'\n", 0);
	vt_write(root, "/run/peerpod/initdata", enc);
	assert_int_equal(initdata_provision(root, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "unknown algorithm \"sha1\""));
	assert_int_equal(vt_mode(root, "/run/peerpod/initdata.digest"), -1);
	assert_int_equal(vt_mode(root, "/run/peerpod/aa.toml"), -1);
	free(enc);
	vt_rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_digests),
		cmocka_unit_test(test_digest_independent_of_gzip),
		cmocka_unit_test(test_invalid_documents),
		cmocka_unit_test(test_invalid_encodings),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_provision_dummy),
		cmocka_unit_test(test_provision_given),
		cmocka_unit_test(test_provision_invalid),
	};
	log_init("test", 2);
	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
