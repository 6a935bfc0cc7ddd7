/* The provider framework: mandatory slots checked, lookup, lifecycle (init/destroy), the
 * accessors a driver sees, and the owned-instance list. Uses a fake driver, not the registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/provider.h"
#include "adaptor/provider_priv.h"

static int fake_inits, fake_destroys, fake_init_fails;

struct fake_priv {
	char owner[64];
};

static int fake_init(struct provider *p, struct pp_err *err)
{
	struct fake_priv *fp;

	fake_inits++;
	fp = calloc(1, sizeof(*fp));
	snprintf(fp->owner, sizeof(fp->owner), "%s", provider_owner(p));
	provider_set_priv(p, fp);
	if (fake_init_fails)
		return pp_err_set(err, PP_UNAUTHENTICATED, "fake: bad credentials");
	return 0;
}

static int fake_create(struct provider *p, const struct create_request *req, struct instance *ret,
		       struct pp_err *err)
{
	(void)p; (void)req; (void)ret;
	return pp_err_set(err, PP_UNIMPLEMENTED, "fake");
}

static int fake_delete(struct provider *p, const char *id, const char *name, struct cancel *c,
		       struct pp_err *err)
{
	(void)p; (void)id; (void)name; (void)c; (void)err;
	return 0;
}

static int fake_list(struct provider *p, struct owned_instance_list *ret, struct cancel *c,
		     struct pp_err *err)
{
	(void)p; (void)ret; (void)c; (void)err;
	return 0;
}

static void fake_destroy(struct provider *p)
{
	fake_destroys++;
	free(provider_priv(p));   /* init may have failed after setting it: still freed */
}

static const struct provider_ops fake_ops = {
	.name = "fake",
	.max_user_data = 16384,
	.init = fake_init,
	.create_instance = fake_create,
	.delete_instance = fake_delete,
	.list_instances = fake_list,
	.destroy = fake_destroy,
};

static const struct provider_ops other_ops = {
	.name = "other", .init = fake_init, .create_instance = fake_create,
	.delete_instance = fake_delete, .list_instances = fake_list,
};

static int reset(void **state)
{
	(void)state;
	fake_inits = fake_destroys = fake_init_fails = 0;
	return 0;
}

static void test_validate(void **state)
{
	struct provider_ops ops = fake_ops;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(provider_ops_validate(&fake_ops, &err), 0);
	ops.create_instance = NULL;
	assert_int_equal(provider_ops_validate(&ops, &err), -1);
	assert_string_equal(err.msg, "provider fake: mandatory operation create_instance is missing");
	ops = fake_ops;
	ops.list_instances = NULL;
	assert_int_equal(provider_ops_validate(&ops, &err), -1);
	assert_non_null(strstr(err.msg, "list_instances"));
	ops = fake_ops;
	ops.name = "";
	assert_int_equal(provider_ops_validate(&ops, &err), -1);
	ops = fake_ops;
	ops.check = NULL;     /* optional */
	ops.destroy = NULL;   /* optional */
	assert_int_equal(provider_ops_validate(&ops, &err), 0);
	/* provider_new refuses an invalid table */
	ops.init = NULL;
	assert_null(provider_new(&ops, NULL, "node-1", "/tmp", &err));
	assert_non_null(strstr(err.msg, "init"));
}

static void test_lookup(void **state)
{
	const struct provider_ops *const table[] = { &fake_ops, &other_ops, NULL };

	(void)state;
	assert_ptr_equal(provider_lookup_in(table, "fake"), &fake_ops);
	assert_ptr_equal(provider_lookup_in(table, "other"), &other_ops);
	assert_null(provider_lookup_in(table, "aws"));
	assert_null(provider_lookup_in(table, NULL));
}

static void test_lifecycle(void **state)
{
	struct pp_err err = { 0 };
	struct provider *p = provider_new(&fake_ops, NULL, "node-1", "/var/lib/caa", &err);
	struct fake_priv *fp;

	(void)state;
	assert_non_null(p);
	assert_ptr_equal(provider_get_ops(p), &fake_ops);
	assert_string_equal(provider_owner(p), "node-1");
	assert_string_equal(provider_state_dir(p), "/var/lib/caa");
	assert_null(provider_config(p));
	assert_int_equal(provider_start(p, &err), 0);
	fp = provider_priv(p);
	assert_string_equal(fp->owner, "node-1");
	assert_int_equal(provider_start(p, &err), -1);   /* twice is a bug */
	assert_int_equal(fake_inits, 1);
	provider_free(p);
	assert_int_equal(fake_destroys, 1);
	provider_free(NULL);
}

static void test_failed_init_still_destroyed(void **state)
{
	struct pp_err err = { 0 };
	struct provider *p = provider_new(&fake_ops, NULL, "node-1", NULL, &err);

	(void)state;
	fake_init_fails = 1;
	assert_int_equal(provider_start(p, &err), -1);
	assert_int_equal(err.code, PP_UNAUTHENTICATED);
	assert_string_equal(provider_state_dir(p), "");
	provider_free(p);   /* ASan would report the priv leak if destroy did not run */
	assert_int_equal(fake_destroys, 1);
}

static void test_never_started_not_destroyed(void **state)
{
	struct pp_err err = { 0 };
	struct provider *p = provider_new(&fake_ops, NULL, "node-1", NULL, &err);

	(void)state;
	provider_free(p);
	assert_int_equal(fake_destroys, 0);
	assert_null(provider_new(&fake_ops, NULL, "", NULL, &err));
	assert_non_null(strstr(err.msg, "owner"));
}

static void test_owned_list(void **state)
{
	struct owned_instance_list l = { 0 };
	struct owned_instance it = { 0 };

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(it.name, sizeof(it.name), "podvm-x-%d", i);
		it.created_unix = i;
		assert_int_equal(owned_instance_list_add(&l, &it), 0);
	}
	assert_int_equal(l.n, 100);
	for (int i = 0; i < 100; i++) {
		char want[32];

		snprintf(want, sizeof(want), "podvm-x-%d", i);
		assert_string_equal(l.items[i].name, want);
		assert_int_equal(l.items[i].created_unix, i);
	}
	owned_instance_list_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
	owned_instance_list_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_validate, reset),
		cmocka_unit_test_setup(test_lookup, reset),
		cmocka_unit_test_setup(test_lifecycle, reset),
		cmocka_unit_test_setup(test_failed_init_still_destroyed, reset),
		cmocka_unit_test_setup(test_never_started_not_destroyed, reset),
		cmocka_unit_test_setup(test_owned_list, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
