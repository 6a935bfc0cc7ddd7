/* Instance and pod names: upstream's example, truncation to 63, sanitising, CRI-O's form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adaptor/naming.h"

static void name_ok(const char *pod, const char *sid, const char *want)
{
	char out[INSTANCE_NAME_MAX + 1];
	struct pp_err err = { 0 };

	assert_int_equal(naming_instance_name(pod, sid, out, sizeof(out), &err), 0);
	assert_string_equal(out, want);
	assert_true(strlen(out) <= INSTANCE_NAME_MAX);
}

static void test_upstream_example(void **state)
{
	(void)state;
	name_ok("podtest", "123", "podvm-podtest-123");
}

static void test_sandbox_id_cut_to_8(void **state)
{
	(void)state;
	name_ok("nginx", "0123456789abcdef0123456789abcdef", "podvm-nginx-01234567");
}

static void test_long_pod_name_truncated(void **state)
{
	char pod[101], want[64];

	(void)state;
	memset(pod, 'a', 100);
	pod[100] = '\0';
	/* podvm- (6) + 48 pod chars + '-' + 8 id chars = 63 */
	snprintf(want, sizeof(want), "podvm-%.48s-deadbeef", pod);
	name_ok(pod, "deadbeefcafe", want);
	assert_int_equal(strlen(want), 63);
}

static void test_sanitised(void **state)
{
	(void)state;
	name_ok("My_Pod.Name", "ABC_def!", "podvm-my-pod-name-abc-def-");
	name_ok("\xc3\xbcn\xc3\xaf", "1", "podvm---n---1");   /* each UTF-8 byte of "ünï" -> "-" */
}

static void test_empty_is_error(void **state)
{
	char out[INSTANCE_NAME_MAX + 1] = "untouched";
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(naming_instance_name("", "123", out, sizeof(out), &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "pod name"));
	assert_int_equal(naming_instance_name("pod", "", out, sizeof(out), &err), -1);
	assert_non_null(strstr(err.msg, "sandbox id"));
	assert_string_equal(out, "untouched");
}

static void test_small_buffer_refused(void **state)
{
	char out[10] = "untouched";
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(naming_instance_name("podtest", "123", out, sizeof(out), &err), -1);
	assert_string_equal(out, "untouched");
}

static void pod_ok(const char *value, const char *want)
{
	char out[NAMING_POD_NAME_MAX + 1];
	struct pp_err err = { 0 };

	assert_int_equal(naming_pod_name(value, out, sizeof(out), &err), 0);
	assert_string_equal(out, want);
}

static void test_pod_name_forms(void **state)
{
	(void)state;
	pod_ok("nginx-7d9f", "nginx-7d9f");                          /* containerd */
	pod_ok("k8s_nginx-7d9f_default_0f1e-22_0", "nginx-7d9f");    /* CRI-O */
	pod_ok("k8s_nginx", "nginx");
	pod_ok("k8s", "k8s");            /* one field: not the CRI-O form */
	pod_ok("k8s_", "");              /* CRI-O form with an empty pod: missing */
	pod_ok("", "");
	pod_ok(NULL, "");
	pod_ok("K8S_x_y", "K8S_x_y");    /* the prefix is case-sensitive, as upstream */
}

static void test_pod_name_too_long(void **state)
{
	char value[NAMING_POD_NAME_MAX + 10], out[NAMING_POD_NAME_MAX + 1];
	struct pp_err err = { 0 };

	(void)state;
	memset(value, 'p', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	assert_int_equal(naming_pod_name(value, out, sizeof(out), &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "io.kubernetes.cri.sandbox-name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_example),
		cmocka_unit_test(test_sandbox_id_cut_to_8),
		cmocka_unit_test(test_long_pod_name_truncated),
		cmocka_unit_test(test_sanitised),
		cmocka_unit_test(test_empty_is_error),
		cmocka_unit_test(test_small_buffer_refused),
		cmocka_unit_test(test_pod_name_forms),
		cmocka_unit_test(test_pod_name_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
