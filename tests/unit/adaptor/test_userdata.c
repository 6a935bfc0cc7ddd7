/* User-data assembly: file order, initdata choice and re-encoding, size limits refused with
 * nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/initdata.h"
#include "adaptor/userdata.h"

#define APF "{\n    \"pod-name\": \"podtest\"\n}"
#define TOML "algorithm = \"sha256\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = ''\n"
#define GLOBAL_INITDATA "H4sIAAAAAAAA/0vMyS9KTVEoSy0qzszPs1IwMtAzAAC/rQUAEQAAAA=="

static char *render_ok(const struct userdata_input *in, size_t *len)
{
	char *text;
	struct pp_err err = { 0 };

	if (userdata_render(in, &text, len, &err) != 0)
		fail_msg("render failed: %s", err.msg);
	assert_int_equal(strlen(text), *len);
	return text;
}

/* The content line under `- path: <path>`, or NULL. */
static char *content_of(const char *text, const char *path)
{
	char key[256];
	const char *p, *end;

	snprintf(key, sizeof(key), "  - path: %s\n    content: |\n      ", path);
	p = strstr(text, key);
	if (!p)
		return NULL;
	p += strlen(key);
	end = strchr(p, '\n');
	return strndup(p, (size_t)(end - p));
}

static void test_order_and_files(void **state)
{
	struct userdata_input in = {
		.apf_json = APF, .auth_json = "{\"auths\":{}}", .initdata_toml = TOML,
		.default_initdata = GLOBAL_INITDATA, .scratch_space = true,
		.provider_name = "aws", .max_user_data = 16384,
	};
	size_t len;
	char *text = render_ok(&in, &len);
	const char *apf = strstr(text, "/run/peerpod/apf.json");
	const char *auth = strstr(text, "/run/peerpod/auth.json");
	const char *init = strstr(text, "/run/peerpod/initdata");
	const char *scratch = strstr(text, "/run/peerpod/scratch-space.marker");

	(void)state;
	assert_true(strncmp(text, "#cloud-config\n\nwrite_files:\n", 28) == 0);
	assert_non_null(apf);
	assert_true(apf < auth && auth < init && init < scratch);
	/* the marker has no content key and is last */
	assert_string_equal(scratch, "/run/peerpod/scratch-space.marker\n");
	free(text);
}

/* The pod's TOML wins over INITDATA and comes back intact after base64 + gunzip. */
static void test_annotation_initdata_reencoded(void **state)
{
	struct userdata_input in = { .apf_json = APF, .initdata_toml = TOML,
				     .default_initdata = GLOBAL_INITDATA };
	size_t len, toml_len;
	char *text = render_ok(&in, &len), *b64 = content_of(text, "/run/peerpod/initdata"), *toml;
	struct pp_err err = { 0 };

	(void)state;
	assert_non_null(b64);
	assert_string_not_equal(b64, GLOBAL_INITDATA);
	assert_int_equal(initdata_decode(b64, strlen(b64), &toml, &toml_len, &err), 0);
	assert_int_equal(toml_len, strlen(TOML));
	assert_memory_equal(toml, TOML, toml_len);
	free(toml);
	free(b64);
	free(text);
}

static void test_global_initdata_verbatim(void **state)
{
	struct userdata_input in = { .apf_json = APF, .initdata_toml = "",
				     .default_initdata = GLOBAL_INITDATA };
	size_t len;
	char *text = render_ok(&in, &len), *b64 = content_of(text, "/run/peerpod/initdata");

	(void)state;
	assert_string_equal(b64, GLOBAL_INITDATA);
	free(b64);
	free(text);
}

static void test_minimal(void **state)
{
	struct userdata_input in = { .apf_json = APF };
	size_t len;
	char *text = render_ok(&in, &len);

	(void)state;
	assert_string_equal(text, "#cloud-config\n\nwrite_files:\n"
				  "  - path: /run/peerpod/apf.json\n    content: |\n"
				  "      {\n          \"pod-name\": \"podtest\"\n      }\n");
	free(text);
}

static void test_size_limit(void **state)
{
	char *big = malloc(20000);
	struct userdata_input in = { .apf_json = APF, .initdata_toml = NULL,
				     .default_initdata = big, .provider_name = "aws",
				     .max_user_data = 16384 };
	char *text = (char *)"untouched";
	size_t len = 42;
	struct pp_err err = { 0 };
	char want[128];

	(void)state;
	memset(big, 'A', 19999);
	big[19999] = '\0';
	assert_int_equal(userdata_render(&in, &text, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	in.max_user_data = 0;     /* the same input, unlimited, to learn the real size */
	{
		char *t;
		size_t real;

		assert_int_equal(userdata_render(&in, &t, &real, &err), 0);
		free(t);
		snprintf(want, sizeof(want), "user-data is %zu bytes, more than the aws limit of 16384",
			 real);
	}
	in.max_user_data = 16384;
	assert_int_equal(userdata_render(&in, &text, &len, &err), -1);
	assert_string_equal(err.msg, want);
	assert_string_equal(text, "untouched");
	assert_int_equal(len, 42);
	free(big);
}

static void test_exact_limit_accepted(void **state)
{
	struct userdata_input in = { .apf_json = APF, .provider_name = "gcp" };
	size_t len, len2;
	char *text = render_ok(&in, &len), *text2;

	(void)state;
	in.max_user_data = len;
	text2 = render_ok(&in, &len2);
	assert_int_equal(len, len2);
	free(text2);
	in.max_user_data = len - 1;
	{
		struct pp_err err = { 0 };

		assert_int_equal(userdata_render(&in, &text2, &len2, &err), -1);
		assert_non_null(strstr(err.msg, "gcp limit"));
	}
	free(text);
}

static void test_auth_json_limit(void **state)
{
	char *big = malloc(USERDATA_AUTH_JSON_MAX + 2);
	struct userdata_input in = { .apf_json = APF, .auth_json = big };
	char *text = (char *)"untouched";
	size_t len;
	struct pp_err err = { 0 };

	(void)state;
	memset(big, 'x', USERDATA_AUTH_JSON_MAX + 1);
	big[USERDATA_AUTH_JSON_MAX + 1] = '\0';
	assert_int_equal(userdata_render(&in, &text, &len, &err), -1);
	assert_string_equal(err.msg, "auth.json is 12289 bytes, more than the limit of 12288");
	assert_string_equal(text, "untouched");
	big[USERDATA_AUTH_JSON_MAX] = '\0';      /* exactly at the limit: fine */
	text = render_ok(&in, &len);
	free(text);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_files),
		cmocka_unit_test(test_annotation_initdata_reencoded),
		cmocka_unit_test(test_global_initdata_verbatim),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_exact_limit_accepted),
		cmocka_unit_test(test_auth_json_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
