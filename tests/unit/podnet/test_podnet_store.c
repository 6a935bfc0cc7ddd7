/*
 * The VXLAN index allocation in state.db: lowest free index, never one a sandbox holds, the
 * same one back for the same sandbox, kept across a restart (close and reopen), exhaustion,
 * release, the recorded tunnel, and the prune that runs in the restart reconcile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/store.h"
#include "lib/fileutil.h"

struct fx {
	char dir[64];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/pp-podnet-store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->s = store_open(f->dir, NULL);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static int64_t alloc_ok(struct store *s, const char *id)
{
	struct pp_err err = { 0 };
	int64_t idx = -1;

	assert_int_equal(store_vxlan_alloc(s, id, 1000, &idx, &err), 0);
	return idx;
}

static void insert_sandbox(struct store *s, const char *id, enum sandbox_state st)
{
	struct sandbox_row r = { .sandbox_id = (char *)id, .pod_name = (char *)"p",
				 .pod_namespace = (char *)"ns", .instance_name = (char *)"i",
				 .state = st };

	assert_int_equal(store_sandbox_insert(s, &r, NULL), 0);
}

static void test_lowest_free_and_idempotent(void **state)
{
	struct fx *f = *state;

	assert_int_equal(alloc_ok(f->s, "a"), 0);
	assert_int_equal(alloc_ok(f->s, "b"), 1);
	assert_int_equal(alloc_ok(f->s, "c"), 2);
	assert_int_equal(alloc_ok(f->s, "b"), 1);          /* same sandbox, same index */
	assert_int_equal(store_vxlan_release(f->s, "b", NULL), 0);
	assert_int_equal(alloc_ok(f->s, "d"), 1);          /* the hole is reused ... */
	assert_int_equal(alloc_ok(f->s, "e"), 3);          /* ... never a held one */
	assert_int_equal(store_vxlan_release(f->s, "nobody", NULL), 0);
}

static void test_survives_restart(void **state)
{
	struct fx *f = *state;

	assert_int_equal(alloc_ok(f->s, "a"), 0);
	assert_int_equal(alloc_ok(f->s, "b"), 1);
	store_close(f->s);
	f->s = store_open(f->dir, NULL);
	assert_non_null(f->s);
	/* upstream's in-memory counter would start at 0 again and collide with "a" */
	assert_int_equal(alloc_ok(f->s, "c"), 2);
	assert_int_equal(alloc_ok(f->s, "a"), 0);
}

static void test_exhausted(void **state)
{
	struct fx *f = *state;
	struct pp_err err = { 0 };
	int64_t idx = 77;

	assert_int_equal(store_vxlan_alloc(f->s, "a", 2, &idx, &err), 0);
	assert_int_equal(store_vxlan_alloc(f->s, "b", 2, &idx, &err), 0);
	assert_int_equal(idx, 1);
	idx = 77;
	assert_int_equal(store_vxlan_alloc(f->s, "c", 2, &idx, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "no free VXLAN index"));
	assert_int_equal(idx, 77);
	assert_int_equal(store_vxlan_alloc(f->s, "", 2, &idx, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

static void test_tunnel_recorded(void **state)
{
	struct fx *f = *state;
	struct store_vxlan v;
	struct pp_err err = { 0 };

	assert_int_equal(alloc_ok(f->s, "a"), 0);
	assert_int_equal(store_vxlan_get(f->s, "a", &v, &err), 0);
	assert_int_equal(v.vni, 0);
	assert_string_equal(v.remote, "");
	store_vxlan_clear(&v);
	assert_int_equal(store_vxlan_set_tunnel(f->s, "a", 555000, 4789, "192.168.100.2", "eth0",
						&err), 0);
	store_close(f->s);
	f->s = store_open(f->dir, NULL);
	assert_int_equal(store_vxlan_get(f->s, "a", &v, &err), 0);
	assert_int_equal(v.index, 0);
	assert_int_equal(v.vni, 555000);
	assert_int_equal(v.port, 4789);
	assert_string_equal(v.remote, "192.168.100.2");
	assert_string_equal(v.pod_if, "eth0");
	assert_string_equal(v.sandbox_id, "a");
	store_vxlan_clear(&v);
	assert_int_equal(store_vxlan_set_tunnel(f->s, "zz", 1, 1, "x", "y", &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(store_vxlan_get(f->s, "zz", &v, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
}

static void test_list_and_prune(void **state)
{
	struct fx *f = *state;
	struct store_vxlan *v = NULL;
	size_t n = 0;
	int64_t pruned = -1;

	insert_sandbox(f->s, "live", SANDBOX_RUNNING);
	insert_sandbox(f->s, "dead", SANDBOX_GONE);
	assert_int_equal(alloc_ok(f->s, "live"), 0);
	assert_int_equal(alloc_ok(f->s, "dead"), 1);
	assert_int_equal(alloc_ok(f->s, "norow"), 2);
	assert_int_equal(store_vxlan_prune(f->s, &pruned, NULL), 0);
	assert_int_equal(pruned, 2);
	assert_int_equal(store_vxlan_list(f->s, &v, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].sandbox_id, "live");
	assert_int_equal(v[0].index, 0);
	store_vxlan_list_free(v, n);
}

static void test_schema_migrated(void **state)
{
	struct fx *f = *state;

	assert_true(store_schema_version_latest() >= 2);
	assert_int_equal(store_schema_version(f->s), store_schema_version_latest());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lowest_free_and_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunnel_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_migrated, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
