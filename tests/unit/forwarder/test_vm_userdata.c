/* user-data in the VM: upstream's exact #cloud-config shape is read; anything else is refused
 * with the offending key or path named; only allow-listed files are written, with their modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "forwarder/userdata.h"
#include "lib/log.h"
#include "vm_test_util.h"

/* Byte for byte what the adaptor's template produces (spec §5.1). */
static const char upstream_doc[] =
	"#cloud-config\n"
	"\n"
	"write_files:\n"
	"  - path: /run/peerpod/apf.json\n"
	"    content: |\n"
	"      {\n"
	"          \"pod-network\": {\n"
	"              \"podip\": \"10.244.1.5/24\"\n"
	"          },\n"
	"          \"tls-server-key\": \"-----BEGIN PRIVATE KEY-----\\nMC4C\\n-----END PRIVATE KEY-----\\n\"\n"
	"      }\n"
	"  - path: /run/peerpod/auth.json\n"
	"    content: |\n"
	"      {\"auths\":{}}\n"
	"  - path: /run/peerpod/initdata\n"
	"    content: |\n"
	"      H4sIAAAAAAAA/0zLQQqAIBAF0H2n+Ad3bVq5\n"
	"  - path: /run/peerpod/scratch-space.marker\n";

static struct userdata *parse_ok(const char *text)
{
	struct userdata *ud = NULL;
	struct pp_err err = { 0 };

	if (userdata_parse(text, strlen(text), &ud, &err) < 0)
		fail_msg("userdata_parse: %s", err.msg);
	return ud;
}

static void expect_error(const char *text, const char *want)
{
	struct userdata *ud = NULL;
	struct pp_err err = { 0 };

	if (userdata_parse(text, strlen(text), &ud, &err) == 0) {
		userdata_free(ud);
		fail_msg("accepted invalid user-data:\n%s", text);
	}
	assert_null(ud);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

static void test_upstream_shape(void **state)
{
	(void)state;
	struct userdata *ud = parse_ok(upstream_doc);

	assert_int_equal(ud->n_files, 4);
	assert_string_equal(ud->files[0].path, "/run/peerpod/apf.json");
	assert_string_equal(ud->files[0].content,
			    "{\n    \"pod-network\": {\n        \"podip\": \"10.244.1.5/24\"\n    },\n"
			    "    \"tls-server-key\": \"-----BEGIN PRIVATE KEY-----\\nMC4C\\n-----END PRIVATE KEY-----\\n\"\n}\n");
	assert_string_equal(ud->files[1].path, "/run/peerpod/auth.json");
	assert_string_equal(ud->files[1].content, "{\"auths\":{}}\n");
	assert_string_equal(ud->files[2].content, "H4sIAAAAAAAA/0zLQQqAIBAF0H2n+Ad3bVq5\n");
	assert_string_equal(ud->files[3].path, "/run/peerpod/scratch-space.marker");
	assert_string_equal(ud->files[3].content, "");
	assert_int_equal(ud->files[3].content_len, 0);
	userdata_free(ud);
}

static void test_no_files(void **state)
{
	(void)state;
	struct userdata *ud = parse_ok("#cloud-config\n");
	assert_int_equal(ud->n_files, 0);
	userdata_free(ud);
	ud = parse_ok("#cloud-config\nwrite_files:\n");
	assert_int_equal(ud->n_files, 0);
	userdata_free(ud);
	ud = parse_ok("#cloud-config\r\nwrite_files: []\r\n");
	assert_int_equal(ud->n_files, 0);
	userdata_free(ud);
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    owner: root:root\n"
		     "    content: x\n", "user-data line 4: write_files: unknown key \"owner\"");
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    permissions: '0600'\n",
		     "unknown key \"permissions\"");
	expect_error("#cloud-config\nruncmd:\n  - [sh, -c, id]\n", "user-data line 2: unknown key \"runcmd\"");
	expect_error("#cloud-config\nwrite_files: []\nusers: []\n", "unknown key \"users\"");
	expect_error("#cloud-config\nwrite_files: []\nwrite_files: []\n", "duplicate key \"write_files\"");
	expect_error("#cloud-config\nwrite_files:\n  - path: /a\n    path: /b\n", "duplicate key \"path\"");
}

static void test_bad_shapes(void **state)
{
	(void)state;
	expect_error("write_files: []\n", "does not start with the line #cloud-config");
	expect_error("#cloud-configX\nwrite_files: []\n", "does not start with the line #cloud-config");
	expect_error("#cloud-config\n- a\n", "the document must be a mapping");
	expect_error("#cloud-config\nwrite_files: /run/x\n", "write_files must be a list");
	expect_error("#cloud-config\nwrite_files:\n  - /run/peerpod/apf.json\n", "each item must be a mapping");
	expect_error("#cloud-config\nwrite_files:\n  - content: x\n", "item without a path");
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: [a]\n",
		     "content must be a string, found a list");
	expect_error("#cloud-config\nwrite_files:\n  - path: {a: b}\n", "path must be a string");
	expect_error("#cloud-config\nwrite_files: []\n---\nwrite_files: []\n", "only one YAML document");
	expect_error("#cloud-config\nwrite_files: [\n", "invalid YAML");
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n   content: x\n",
		     "user-data line 4, column");
	expect_error("#cloud-config\n? [a]\n: b\n", "keys must be plain strings");
}

static void test_yaml_features_refused(void **state)
{
	(void)state;
	expect_error("#cloud-config\nwrite_files:\n  - path: &p /run/peerpod/apf.json\n", "anchors and tags are not allowed");
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: &c x\n"
		     "  - path: /run/peerpod/auth.json\n    content: *c\n", "not allowed");
	expect_error("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: !!binary aGk=\n",
		     "anchors and tags are not allowed");
	expect_error("#cloud-config\n%YAML 1.1\n---\nwrite_files: []\n", "YAML directives are not allowed");
}

static void test_paths(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"/run/peerpod/../../etc/passwd", "run/peerpod/apf.json", "/run//peerpod/apf.json",
		"/run/peerpod/./apf.json", "/run/peerpod/", "/run/peer pod", "/run/peerpod/..",
	};
	char doc[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(doc, sizeof(doc), "#cloud-config\nwrite_files:\n  - path: \"%s\"\n    content: x\n",
			 bad[i]);
		expect_error(doc, "is not a normalised absolute path");
	}
	expect_error("#cloud-config\nwrite_files:\n  - path: \"/run/peerpod/\\x01\"\n", "not a normalised");
	assert_true(userdata_path_allowed("/run/peerpod/apf.json"));
	assert_true(userdata_path_allowed("/run/peerpod/cdh.toml"));
	assert_false(userdata_path_allowed("/run/peerpod/policy.rego"));  /* only from initdata */
	assert_false(userdata_path_allowed("/etc/passwd"));
	assert_false(userdata_path_allowed("/run/peerpod/apf.json.bak"));
}

static void test_limits(void **state)
{
	(void)state;
	struct userdata *ud = NULL;
	struct pp_err err = { 0 };
	size_t big = USERDATA_MAX_FILE + 10, i, n;
	char *doc = malloc(big + 256);

	n = (size_t)snprintf(doc, 256, "#cloud-config\nwrite_files:\n  - path: /run/peerpod/auth.json\n    content: \"");
	memset(doc + n, 'a', big);
	memcpy(doc + n + big, "\"\n", 3);
	expect_error(doc, "content is too long");
	free(doc);

	doc = malloc(USERDATA_MAX_SIZE + 2);
	memset(doc, '#', USERDATA_MAX_SIZE + 1);
	assert_int_equal(userdata_parse(doc, USERDATA_MAX_SIZE + 1, &ud, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	free(doc);

	doc = calloc(1, 64 * (USERDATA_MAX_FILES + 2));
	n = (size_t)snprintf(doc, 64, "#cloud-config\nwrite_files:\n");
	for (i = 0; i <= USERDATA_MAX_FILES; i++)
		n += (size_t)snprintf(doc + n, 64, "  - path: /run/peerpod/f%zu\n", i);
	expect_error(doc, "too many files");
	free(doc);
}

static void test_write_files(void **state)
{
	(void)state;
	char root[64], *apf, *auth;
	struct pp_err err = { 0 };
	struct userdata *ud = parse_ok(
		"#cloud-config\n\nwrite_files:\n"
		"  - path: /run/peerpod/apf.json\n    content: |\n      {\"pod-name\": \"p\"}\n"
		"  - path: /run/peerpod/auth.json\n    content: |\n      {}\n"
		"  - path: /etc/passwd\n    content: |\n      root::0:0::/:/bin/sh\n"
		"  - path: /run/peerpod/scratch-space.marker\n");
	FILE *report = tmpfile();
	char line[512];
	int lines = 0;

	umask(022);
	vt_tmpdir(root, sizeof(root));
	assert_int_equal(userdata_write_files(ud, root, report, &err), 0);
	apf = vt_read(root, "/run/peerpod/apf.json", NULL);
	assert_string_equal(apf, "{\"pod-name\": \"p\"}\n");
	auth = vt_read(root, "/run/peerpod/auth.json", NULL);
	assert_string_equal(auth, "{}\n");
	assert_int_equal(vt_mode(root, "/run/peerpod/apf.json"), 0600);
	assert_int_equal(vt_mode(root, "/run/peerpod/auth.json"), 0600);
	assert_int_equal(vt_mode(root, "/run/peerpod/scratch-space.marker"), 0644);
	assert_int_equal(vt_mode(root, "/run/peerpod"), 0755);
	assert_int_equal(vt_mode(root, "/etc/passwd"), -1);
	assert_int_equal(vt_mode(root, "/etc"), -1);

	rewind(report);
	while (fgets(line, sizeof(line), report)) {
		assert_non_null(strstr(line, "wrote "));
		assert_null(strstr(line, "passwd"));
		lines++;
	}
	assert_int_equal(lines, 3);
	fclose(report);
	free(apf);
	free(auth);
	userdata_free(ud);
	vt_rmdir(root);
}

static void test_write_failure(void **state)
{
	(void)state;
	char root[64], blocker[128];
	struct pp_err err = { 0 };
	struct userdata *ud = parse_ok("#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: x\n");

	vt_tmpdir(root, sizeof(root));
	snprintf(blocker, sizeof(blocker), "%s/run", root);
	assert_int_equal(file_write_atomic(blocker, "x", 1, 0644, NULL), 0); /* "run" is a file */
	assert_int_equal(userdata_write_files(ud, root, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "writing user-data file /run/peerpod/apf.json"));
	userdata_free(ud);
	vt_rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_shape),
		cmocka_unit_test(test_no_files),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_yaml_features_refused),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_write_files),
		cmocka_unit_test(test_write_failure),
	};
	log_init("test", 2);
	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
