/* CreateVM annotations: the nine keys, strict numbers, missing name/namespace messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adaptor/annotations.h"

#define TOML "algorithm = \"sha384\"\nversion = \"0.1.0\"\n[data]\n"

static struct annotation_kv full[] = {
	{ ANN_SANDBOX_NAME, "k8s_busybox_team-a_5d2c_1" },
	{ ANN_SANDBOX_NAMESPACE, "team-a" },
	{ ANN_MACHINE_TYPE, "m6a.large" },
	{ ANN_IMAGE, "ami-0123456789abcdef0" },
	{ ANN_VCPUS, "4" },
	{ ANN_MEMORY, "8192" },
	{ ANN_INITDATA, TOML },
	{ ANN_GPUS, "1" },
	{ ANN_GPU_MODEL, "nvidia-a100" },
	{ "io.kubernetes.cri.sandbox-uid", "ignored" },
};

static void test_all_nine(void **state)
{
	struct pod_annotations a;
	struct instance_spec spec;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(annotations_parse(full, sizeof(full) / sizeof(full[0]), &a, &err), 0);
	assert_string_equal(a.pod_name, "busybox");
	assert_string_equal(a.pod_namespace, "team-a");
	assert_string_equal(a.instance_type, "m6a.large");
	assert_string_equal(a.image, "ami-0123456789abcdef0");
	assert_int_equal(a.vcpus, 4);
	assert_int_equal(a.memory_mib, 8192);
	assert_int_equal(a.gpus, 1);
	assert_string_equal(a.gpu_model, "nvidia-a100");
	assert_string_equal(a.initdata_toml, TOML);

	pod_annotations_to_spec(&a, &spec);
	assert_string_equal(spec.instance_type, "m6a.large");
	assert_int_equal(spec.vcpus, 4);
	assert_int_equal(spec.memory_mib, 8192);
	assert_int_equal(spec.gpus, 1);
	assert_string_equal(spec.image, "ami-0123456789abcdef0");
	pod_annotations_clear(&a);
	assert_null(a.pod_name);
}

/* What the shim sends for a plain pod: everything empty or "0". */
static void test_empty_values(void **state)
{
	struct annotation_kv kv[] = {
		{ ANN_SANDBOX_NAME, "web" }, { ANN_SANDBOX_NAMESPACE, "default" },
		{ ANN_MACHINE_TYPE, "" },    { ANN_IMAGE, "" },
		{ ANN_VCPUS, "0" },          { ANN_MEMORY, "" },
		{ ANN_INITDATA, "" },        { ANN_GPUS, "0" },
		{ ANN_GPU_MODEL, "" },
	};
	struct pod_annotations a;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(annotations_parse(kv, 9, &a, &err), 0);
	assert_string_equal(a.pod_name, "web");
	assert_string_equal(a.instance_type, "");
	assert_int_equal(a.vcpus, 0);
	assert_int_equal(a.memory_mib, 0);
	assert_int_equal(a.gpus, 0);
	assert_string_equal(a.initdata_toml, "");
	pod_annotations_clear(&a);
}

static void bad_number(const char *key, const char *value)
{
	struct annotation_kv kv[] = {
		{ ANN_SANDBOX_NAME, "web" }, { ANN_SANDBOX_NAMESPACE, "default" }, { key, value },
	};
	struct pod_annotations a = { .pod_name = (char *)"sentinel" };
	struct pp_err err = { 0 };

	assert_int_equal(annotations_parse(kv, 3, &a, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, key));
	assert_non_null(strstr(err.msg, value));
	assert_string_equal(a.pod_name, "sentinel");   /* output untouched */
}

static void test_bad_numbers_named(void **state)
{
	(void)state;
	bad_number(ANN_VCPUS, "1.5");
	bad_number(ANN_MEMORY, "8Gi");
	bad_number(ANN_GPUS, "-1");
	bad_number(ANN_VCPUS, " 2");
	bad_number(ANN_MEMORY, "99999999999999999999");
}

static void test_missing_pod_name(void **state)
{
	struct annotation_kv kv[] = { { ANN_SANDBOX_NAMESPACE, "default" } };
	struct pod_annotations a;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(annotations_parse(kv, 1, &a, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_string_equal(err.msg,
			    "pod name io.kubernetes.cri.sandbox-name is missing in annotations");
}

static void test_missing_namespace(void **state)
{
	struct annotation_kv kv[] = { { ANN_SANDBOX_NAME, "web" }, { ANN_SANDBOX_NAMESPACE, "" } };
	struct pod_annotations a;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(annotations_parse(kv, 2, &a, &err), -1);
	assert_string_equal(err.msg, "pod namespace io.kubernetes.cri.sandbox-namespace is "
				     "missing in annotations");
}

static void test_too_long_refused(void **state)
{
	char *big = malloc(ANN_IMAGE_MAX + 2);
	struct annotation_kv kv[] = {
		{ ANN_SANDBOX_NAME, "web" }, { ANN_SANDBOX_NAMESPACE, "default" }, { ANN_IMAGE, big },
	};
	struct pod_annotations a;
	struct pp_err err = { 0 };

	(void)state;
	memset(big, 'i', ANN_IMAGE_MAX + 1);
	big[ANN_IMAGE_MAX + 1] = '\0';
	assert_int_equal(annotations_parse(kv, 3, &a, &err), -1);
	assert_non_null(strstr(err.msg, ANN_IMAGE));
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_nine),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_bad_numbers_named),
		cmocka_unit_test(test_missing_pod_name),
		cmocka_unit_test(test_missing_namespace),
		cmocka_unit_test(test_too_long_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
