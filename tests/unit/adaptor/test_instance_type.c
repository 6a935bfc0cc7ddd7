/* Instance-type selection: explicit type in/out of the list, best fit by vCPUs+memory where a
 * binary search would pick wrongly, GPUs, and the "no list: only the default" rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adaptor/instance_type.h"

/* Unsorted on purpose; sorted by GPUs, memory, vCPUs it is:
 *   t.micro(1,2048) c.large(4,4096) r.large(2,8192) r.xlarge(2,16384) c.4xl(8,32768) g.xl(GPU) */
static struct instance_type_info types[] = {
	{ "c.4xl", 8, 32768, 0 },
	{ "g.xl", 4, 16384, 1 },
	{ "r.large", 2, 8192, 0 },
	{ "t.micro", 1, 2048, 0 },
	{ "r.xlarge", 2, 16384, 0 },
	{ "c.large", 4, 4096, 0 },
	{ "g.4xl", 16, 65536, 4 },
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

static const char *const allowed[] = { "t.micro", "c.large", "r.large", "r.xlarge", "c.4xl",
				       "g.xl", "g.4xl" };

static struct instance_type_policy policy(void)
{
	struct instance_type_policy p = {
		.types = types, .n_types = N_TYPES,
		.allowed = allowed, .n_allowed = sizeof(allowed) / sizeof(allowed[0]),
		.allowed_option = "PODVM_INSTANCE_TYPES",
		.def = "t.micro", .default_option = "PODVM_INSTANCE_TYPE",
	};
	return p;
}

static int setup(void **state)
{
	(void)state;
	instance_type_sort(types, N_TYPES);
	return 0;
}

static const char *select_ok(const struct instance_spec *spec, const struct instance_type_policy *p)
{
	const char *ret = NULL;
	struct pp_err err = { 0 };

	assert_int_equal(instance_type_select(spec, p, &ret, &err), 0);
	assert_non_null(ret);
	return ret;
}

static void test_sorted(void **state)
{
	const char *want[] = { "t.micro", "c.large", "r.large", "r.xlarge", "c.4xl", "g.xl", "g.4xl" };

	(void)state;
	for (size_t i = 0; i < N_TYPES; i++)
		assert_string_equal(types[i].name, want[i]);
}

static void test_explicit_type_in_list(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .instance_type = "r.large", .vcpus = 64, .memory_mib = 1 };

	(void)state;
	assert_string_equal(select_ok(&spec, &p), "r.large");   /* explicit wins over resources */
}

static void test_explicit_type_not_in_list(void **state)
{
	static const char *const two[] = { "m6a.large", "c6a.xlarge" };
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .instance_type = "m9.huge" };
	const char *ret = "untouched";
	struct pp_err err = { 0 };

	(void)state;
	p.allowed = two;
	p.n_allowed = 2;
	assert_int_equal(instance_type_select(&spec, &p, &ret, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_string_equal(err.msg,
			    "instance type m9.huge is not in PODVM_INSTANCE_TYPES (m6a.large, c6a.xlarge)");
	assert_string_equal(ret, "untouched");
}

/* 4 vCPUs + 4096 MiB: fits c.large (index 1) and c.4xl (index 4) but not r.large/r.xlarge in
 * between, so "fits" is not monotonic. Go's sort.Search over 5 non-GPU entries probes index 2
 * (no), then 4 (yes), then 3 (no) and answers c.4xl; the smallest fitting type is c.large. */
static void test_best_fit_not_binary_search(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .vcpus = 4, .memory_mib = 4096 };

	(void)state;
	assert_string_equal(select_ok(&spec, &p), "c.large");
}

static void test_best_fit_memory(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .vcpus = 2, .memory_mib = 10000 };

	(void)state;
	assert_string_equal(select_ok(&spec, &p), "r.xlarge");
}

/* GPU types are never chosen for a pod that asks for none, even if they fit. */
static void test_no_fit_without_gpus(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .vcpus = 12, .memory_mib = 4096 };
	const char *ret = NULL;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(instance_type_select(&spec, &p, &ret, &err), -1);
	assert_non_null(strstr(err.msg, "12 vCPUs"));
	assert_null(ret);
}

/* vCPUs alone (memory 0) does not select by resources: the default is used. */
static void test_vcpus_only_uses_default(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .vcpus = 8 };

	(void)state;
	assert_string_equal(select_ok(&spec, &p), "t.micro");
}

static void test_gpus(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec one = { .gpus = 1 };
	struct instance_spec two = { .gpus = 2, .vcpus = 4 };
	struct instance_spec eight = { .gpus = 8 };
	const char *ret = NULL;
	struct pp_err err = { 0 };

	(void)state;
	assert_string_equal(select_ok(&one, &p), "g.xl");
	assert_string_equal(select_ok(&two, &p), "g.4xl");
	assert_int_equal(instance_type_select(&eight, &p, &ret, &err), -1);
	assert_non_null(strstr(err.msg, "8 GPUs"));
}

static void test_no_list_only_default(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec none = { .instance_type = "" };
	struct instance_spec dflt = { .instance_type = "t.micro" };
	struct instance_spec other = { .instance_type = "c.large" };
	struct instance_spec by_res = { .vcpus = 4, .memory_mib = 4096 };
	const char *ret = NULL;
	struct pp_err err = { 0 };

	(void)state;
	p.allowed = NULL;
	p.n_allowed = 0;
	assert_string_equal(select_ok(&none, &p), "t.micro");
	assert_string_equal(select_ok(&dflt, &p), "t.micro");
	assert_int_equal(instance_type_select(&other, &p, &ret, &err), -1);
	assert_string_equal(err.msg, "instance type c.large is not the default PODVM_INSTANCE_TYPE "
				     "(t.micro) and PODVM_INSTANCE_TYPES is empty");
	/* the same when the type came from resources */
	assert_int_equal(instance_type_select(&by_res, &p, &ret, &err), -1);
	assert_non_null(strstr(err.msg, "c.large"));
}

static void test_nothing_to_choose(void **state)
{
	struct instance_type_policy p = policy();
	struct instance_spec none = { 0 };
	const char *ret = NULL;
	struct pp_err err = { 0 };

	(void)state;
	p.def = "";
	assert_int_equal(instance_type_select(&none, &p, &ret, &err), -1);
	assert_string_equal(err.msg, "no instance type requested and PODVM_INSTANCE_TYPE is not set");
}

static void test_long_list_truncated_in_message(void **state)
{
	static const char *many[40];
	struct instance_type_policy p = policy();
	struct instance_spec spec = { .instance_type = "nope" };
	const char *ret = NULL;
	struct pp_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < 40; i++)
		many[i] = "a-rather-long-instance-type-name";
	p.allowed = many;
	p.n_allowed = 40;
	assert_int_equal(instance_type_select(&spec, &p, &ret, &err), -1);
	assert_non_null(strstr(err.msg, "..."));
	assert_true(strlen(err.msg) < PP_ERR_MSG_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted),
		cmocka_unit_test(test_explicit_type_in_list),
		cmocka_unit_test(test_explicit_type_not_in_list),
		cmocka_unit_test(test_best_fit_not_binary_search),
		cmocka_unit_test(test_best_fit_memory),
		cmocka_unit_test(test_no_fit_without_gpus),
		cmocka_unit_test(test_vcpus_only_uses_default),
		cmocka_unit_test(test_gpus),
		cmocka_unit_test(test_no_list_only_default),
		cmocka_unit_test(test_nothing_to_choose),
		cmocka_unit_test(test_long_list_truncated_in_message),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
