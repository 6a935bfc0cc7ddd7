/* #cloud-config text, compared byte for byte with hand-written golden files in
 * tests/fixtures/cloudinit/. PP_REGENERATE_GOLDEN=1 rewrites them from the code instead (then
 * review the diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/cloudinit.h"
#include "lib/fileutil.h"

#define APF "{\n    \"pod-namespace\": \"default\",\n    \"pod-name\": \"podtest\"\n}"
#define AUTH "{\"auths\":{\"registry.example.com\":{\"auth\":\"dXNlcjpwYXNz\"}}}"
#define INITDATA "H4sIAAAAAAAA/0vMyS9KTVEoSy0qzszPs1IwMtAzAAC/rQUAEQAAAA=="

static void golden_path(char *out, size_t size, const char *name)
{
	const char *src = getenv("PP_SOURCE_DIR");

	assert_non_null(src);
	assert_true(snprintf(out, size, "%s/tests/fixtures/cloudinit/%s", src, name) < (int)size);
}

static void check_golden(const char *name, const struct cloudinit_file *files, size_t n)
{
	char path[4096], *text;
	uint8_t *want;
	size_t len, want_len;
	struct pp_err err = { 0 };

	golden_path(path, sizeof(path), name);
	assert_int_equal(cloudinit_render(files, n, &text, &len, &err), 0);
	assert_int_equal(strlen(text), len);
	if (getenv("PP_REGENERATE_GOLDEN"))
		assert_int_equal(file_write_atomic(path, text, len, 0644, &err), 0);
	assert_int_equal(file_read_all(path, 1 << 20, &want, &want_len, &err), 0);
	if (want_len != len || memcmp(want, text, len) != 0)
		fail_msg("%s differs from the rendered text:\n%s", name, text);
	free(want);
	free(text);
}

static struct cloudinit_file file(const char *path, const char *content)
{
	struct cloudinit_file f = { path, content, content ? strlen(content) : 0 };
	return f;
}

static void test_no_files(void **state)
{
	(void)state;
	check_golden("no-files.txt", NULL, 0);
}

static void test_four_files(void **state)
{
	struct cloudinit_file files[] = {
		file("/run/peerpod/apf.json", APF),
		file("/run/peerpod/auth.json", AUTH "\n"),    /* one trailing newline is dropped */
		file("/run/peerpod/initdata", INITDATA),
		file("/run/peerpod/scratch-space.marker", ""),   /* no content key */
	};

	(void)state;
	check_golden("four-files.txt", files, 4);
}

static void test_blank_lines(void **state)
{
	struct cloudinit_file files[] = {
		file("/run/peerpod/a.txt", "first\n\nthird\n\n"),
		file("/run/peerpod/b.txt", "no final newline"),
	};

	(void)state;
	check_golden("blank-lines.txt", files, 2);
}

static void render_fails(const struct cloudinit_file *f, const char *want_in_msg)
{
	char *text = (char *)"untouched";
	size_t len = 7;
	struct pp_err err = { 0 };

	assert_int_equal(cloudinit_render(f, 1, &text, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!strstr(err.msg, want_in_msg))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want_in_msg);
	assert_string_equal(text, "untouched");
	assert_int_equal(len, 7);
}

static void test_refused(void **state)
{
	struct cloudinit_file lead_space = file("/run/peerpod/x", "  indented\nrest\n");
	struct cloudinit_file lead_tab = file("/run/peerpod/x", "\n\tindented\n");
	struct cloudinit_file cr = file("/run/peerpod/x", "dos\r\nline\r\n");
	struct cloudinit_file nul = { "/run/peerpod/x", "a\0b", 3 };
	struct cloudinit_file rel = file("run/peerpod/x", "a");
	struct cloudinit_file yaml = file("/run/x: y", "a");
	struct cloudinit_file nopath = file(NULL, "a");

	(void)state;
	render_fails(&lead_space, "/run/peerpod/x starts with whitespace");
	render_fails(&lead_tab, "starts with whitespace");
	render_fails(&cr, "control character 0x0d");
	render_fails(&nul, "control character 0x00");
	render_fails(&rel, "not an absolute path");
	render_fails(&yaml, "outside [A-Za-z0-9._/-]");
	render_fails(&nopath, "not an absolute path");
}

/* Whitespace after the first line is fine (YAML takes the indentation from the first line). */
static void test_later_indentation_kept(void **state)
{
	struct cloudinit_file f = file("/run/peerpod/x", "{\n  \"a\": 1\n}\n");
	char *text;
	size_t len;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(cloudinit_render(&f, 1, &text, &len, &err), 0);
	assert_non_null(strstr(text, "\n      {\n        \"a\": 1\n      }\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_files),
		cmocka_unit_test(test_four_files),
		cmocka_unit_test(test_blank_lines),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_later_indentation_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
