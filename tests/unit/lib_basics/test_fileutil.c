/* Tests for lib/fileutil: atomic write with mode, read limits, mkdir_p, rm_rf and symlinks. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/fileutil.h"

struct tmp {
	char dir[PATH_MAX];
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	snprintf(t->dir, sizeof(t->dir), "/tmp/pp-test-fileutil-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	int rc = rm_rf(t->dir, &err);

	free(t);
	return rc;
}

static void path_in(char *out, const struct tmp *t, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", t->dir, name);

	assert_true(n > 0 && n < PATH_MAX);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_write_atomic_mode(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	char p[PATH_MAX];
	struct stat st;
	uint8_t *data;
	size_t n;

	path_in(p, t, "client.key");
	umask(022);
	assert_int_equal(file_write_atomic(p, "secret-key", 10, 0600, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 10);
	/* replacing keeps the new mode and content, and leaves no temp file behind */
	assert_int_equal(file_write_atomic(p, "new", 3, 0644, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(file_read_all(p, 100, &data, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal((char *)data, "new");
	free(data);
	assert_int_equal(count_entries(t->dir), 1);
}

static void test_write_atomic_fails(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	char p[PATH_MAX];

	path_in(p, t, "missing-dir/file");
	assert_int_equal(file_write_atomic(p, "x", 1, 0600, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "missing-dir"));
}

static void test_read_all_limits(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	uint8_t *data = NULL;
	char p[PATH_MAX];
	size_t n;

	path_in(p, t, "ten");
	assert_int_equal(file_write_atomic(p, "0123456789", 10, 0644, &err), 0);
	assert_int_equal(file_read_all(p, 10, &data, &n, &err), 0);
	assert_int_equal(n, 10);
	assert_memory_equal(data, "0123456789", 10);
	free(data);
	data = NULL;
	assert_int_equal(file_read_all(p, 9, &data, &n, &err), -1);
	assert_null(data);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "is larger than the limit of 9 bytes"));
	assert_non_null(strstr(err.msg, p));
	path_in(p, t, "nope");
	assert_int_equal(file_read_all(p, 9, &data, &n, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(file_read_all(t->dir, 9, &data, &n, &err), -1);
	assert_non_null(strstr(err.msg, "is a directory"));
}

static void test_read_all_stream_limit(void **state)
{
	struct pp_err err = { 0 };
	uint8_t *data = NULL;
	size_t n;

	(void)state;
	/* /proc files report size 0: the limit is enforced while reading */
	assert_int_equal(file_read_all("/proc/self/status", 16, &data, &n, &err), -1);
	assert_null(data);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_int_equal(file_read_all("/proc/self/status", 1 << 20, &data, &n, &err), 0);
	assert_true(n > 16);
	free(data);
}

static void test_mkdir_p(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	char p[PATH_MAX], f[PATH_MAX];
	struct stat st;

	path_in(p, t, "a/b//c/d");
	assert_int_equal(mkdir_p(p, 0750, &err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(mkdir_p(p, 0750, &err), 0);   /* existing: fine */
	path_in(f, t, "a/file");
	assert_int_equal(file_write_atomic(f, "x", 1, 0600, &err), 0);
	path_in(p, t, "a/file/sub");
	assert_int_equal(mkdir_p(p, 0750, &err), -1);
	assert_non_null(strstr(err.msg, "a/file"));
}

static void test_rm_rf_keeps_symlink_targets(void **state)
{
	struct tmp *t = *state;
	struct pp_err err = { 0 };
	char tree[PATH_MAX], outside[PATH_MAX], p[PATH_MAX];
	struct stat st;

	path_in(tree, t, "tree");
	path_in(outside, t, "outside");
	path_in(p, t, "tree/x/y/z");
	assert_int_equal(mkdir_p(p, 0755, &err), 0);
	assert_int_equal(mkdir_p(outside, 0755, &err), 0);
	path_in(p, t, "outside/keep");
	assert_int_equal(file_write_atomic(p, "k", 1, 0600, &err), 0);
	path_in(p, t, "tree/x/y/z/f");
	assert_int_equal(file_write_atomic(p, "f", 1, 0600, &err), 0);
	path_in(p, t, "tree/x/link-to-outside");
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(rm_rf(tree, &err), 0);
	assert_int_equal(lstat(tree, &st), -1);
	path_in(p, t, "outside/keep");
	assert_int_equal(stat(p, &st), 0);   /* the symlink was removed, not followed */
	/* a symlink given as the root is removed itself */
	path_in(p, t, "rootlink");
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(rm_rf(p, &err), 0);
	assert_int_equal(lstat(p, &st), -1);
	path_in(p, t, "outside/keep");
	assert_int_equal(stat(p, &st), 0);
	/* missing path: success */
	assert_int_equal(rm_rf(tree, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_atomic_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_all_limits, setup, teardown),
		cmocka_unit_test(test_read_all_stream_limit),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rm_rf_keeps_symlink_targets, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
