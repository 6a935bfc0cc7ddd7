/* The sandbox store: insert/get, compare-and-set transitions, illegal ones refused, list,
 * delete, reopen, schema version, read-only access, four threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adaptor/store.h"
#include <sqlite3.h>

#include "lib/fileutil.h"

struct fixture {
	char dir[256];
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pp_err err = { 0 };
	char tmpl[] = "/tmp/pp-store-XXXXXX";

	if (!f || !mkdtemp(tmpl))
		return -1;
	/* a dir that does not exist yet, two levels down, to check it is created 0700 */
	snprintf(f->dir, sizeof(f->dir), "%s/var/state", tmpl);
	f->s = store_open(f->dir, &err);
	if (!f->s) {
		fprintf(stderr, "store_open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char top[256];

	store_close(f->s);
	snprintf(top, sizeof(top), "%.20s", f->dir);   /* /tmp/pp-store-XXXXXX */
	rm_rf(top, NULL);
	free(f);
	return 0;
}

static struct sandbox_row row(const char *id, const char *pod)
{
	struct sandbox_row r = {
		.sandbox_id = (char *)id, .pod_name = (char *)pod, .pod_namespace = (char *)"default",
		.netns = (char *)"/var/run/netns/cni-1", .instance_name = (char *)"podvm-x-12345678",
		.state = SANDBOX_CREATED, .agent_socket = (char *)"/run/peerpod/pods/x/agent.ttrpc",
		.spec = { .instance_type = (char *)"m6a.large", .vcpus = 2, .memory_mib = 4096,
			  .gpus = 0, .image = (char *)"ami-1" },
	};
	return r;
}

static void insert_ok(struct store *s, const char *id, const char *pod)
{
	struct sandbox_row r = row(id, pod);
	struct pp_err err = { 0 };

	if (store_sandbox_insert(s, &r, &err) != 0)
		fail_msg("insert %s: %s", id, err.msg);
}

static void test_insert_get(void **state)
{
	struct fixture *f = *state;
	struct sandbox_row *r = NULL;
	struct sandbox_row dup = row("sb1", "other");
	struct pp_err err = { 0 };
	struct stat st;

	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	insert_ok(f->s, "sb1", "web");
	assert_int_equal(store_sandbox_get(f->s, "sb1", &r, &err), 0);
	assert_string_equal(r->sandbox_id, "sb1");
	assert_string_equal(r->pod_name, "web");
	assert_string_equal(r->pod_namespace, "default");
	assert_string_equal(r->netns, "/var/run/netns/cni-1");
	assert_string_equal(r->instance_name, "podvm-x-12345678");
	assert_string_equal(r->instance_id, "");
	assert_string_equal(r->ips, "");
	assert_int_equal(r->state, SANDBOX_CREATED);
	assert_string_equal(r->agent_socket, "/run/peerpod/pods/x/agent.ttrpc");
	assert_string_equal(r->spec.instance_type, "m6a.large");
	assert_int_equal(r->spec.vcpus, 2);
	assert_int_equal(r->spec.memory_mib, 4096);
	assert_string_equal(r->spec.image, "ami-1");
	assert_string_equal(r->error, "");
	assert_true(r->created_at > 1600000000);
	assert_int_equal(r->created_at, r->updated_at);
	sandbox_row_free(r);

	assert_int_equal(store_sandbox_insert(f->s, &dup, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_string_equal(err.msg, "sandbox sb1 already exists");

	r = NULL;
	assert_int_equal(store_sandbox_get(f->s, "nope", &r, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_string_equal(err.msg, "sandbox nope does not exist");
	assert_null(r);
}

static enum sandbox_state state_of(struct store *s, const char *id)
{
	struct sandbox_row *r;
	enum sandbox_state st;
	struct pp_err err = { 0 };

	assert_int_equal(store_sandbox_get(s, id, &r, &err), 0);
	st = r->state;
	sandbox_row_free(r);
	return st;
}

static void test_transitions(void **state)
{
	struct fixture *f = *state;
	struct sandbox_row *r;
	struct pp_err err = { 0 };

	insert_ok(f->s, "sb1", "web");
	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_CREATED, SANDBOX_STARTING, &err), 0);
	assert_int_equal(store_sandbox_set_instance(f->s, "sb1", "i-0abc", "10.0.0.5,10.0.1.5", &err), 0);
	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_STARTING, SANDBOX_RUNNING, &err), 0);
	assert_int_equal(store_sandbox_get(f->s, "sb1", &r, &err), 0);
	assert_int_equal(r->state, SANDBOX_RUNNING);
	assert_string_equal(r->instance_id, "i-0abc");
	assert_string_equal(r->ips, "10.0.0.5,10.0.1.5");
	sandbox_row_free(r);

	/* compare-and-set: the caller's idea of the state is stale */
	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_STARTING, SANDBOX_STOPPING, &err), -1);
	assert_int_equal(err.code, PP_ABORTED);
	assert_string_equal(err.msg, "sandbox sb1 is running, not starting");
	assert_int_equal(state_of(f->s, "sb1"), SANDBOX_RUNNING);

	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_RUNNING, SANDBOX_STOPPING, &err), 0);
	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_STOPPING, SANDBOX_GONE, &err), 0);
	assert_int_equal(state_of(f->s, "sb1"), SANDBOX_GONE);

	assert_int_equal(store_sandbox_set_state(f->s, "ghost", SANDBOX_CREATED, SANDBOX_STARTING, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(store_sandbox_set_instance(f->s, "ghost", "i-1", "", &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
}

static void test_illegal_transition_refused(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };

	insert_ok(f->s, "sb1", "web");
	/* created -> running skips starting */
	assert_int_equal(store_sandbox_set_state(f->s, "sb1", SANDBOX_CREATED, SANDBOX_RUNNING, &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
	assert_string_equal(err.msg, "sandbox sb1: transition from created to running is not allowed");
	assert_int_equal(state_of(f->s, "sb1"), SANDBOX_CREATED);
	/* nothing leaves gone; nothing goes back */
	assert_false(store_transition_allowed(SANDBOX_GONE, SANDBOX_CREATED));
	assert_false(store_transition_allowed(SANDBOX_RUNNING, SANDBOX_STARTING));
	assert_false(store_transition_allowed(SANDBOX_RUNNING, SANDBOX_RUNNING));
	assert_true(store_transition_allowed(SANDBOX_FAILED, SANDBOX_STOPPING));

	assert_int_equal(store_sandbox_set_failed(f->s, "sb1", SANDBOX_CREATED,
						  "instance type m9.huge is not allowed", &err), 0);
	{
		struct sandbox_row *r;

		assert_int_equal(store_sandbox_get(f->s, "sb1", &r, &err), 0);
		assert_int_equal(r->state, SANDBOX_FAILED);
		assert_string_equal(r->error, "instance type m9.huge is not allowed");
		sandbox_row_free(r);
	}
	assert_int_equal(store_sandbox_set_failed(f->s, "sb1", SANDBOX_FAILED, "again", &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
}

static void test_list_find_delete(void **state)
{
	struct fixture *f = *state;
	struct sandbox_list l;
	struct pp_err err = { 0 };

	insert_ok(f->s, "a", "web");
	insert_ok(f->s, "b", "web");
	insert_ok(f->s, "c", "db");
	assert_int_equal(store_sandbox_set_state(f->s, "b", SANDBOX_CREATED, SANDBOX_STARTING, &err), 0);

	assert_int_equal(store_sandbox_list(f->s, SANDBOX_STATE_ANY, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].sandbox_id, "a");
	assert_string_equal(l.items[2].sandbox_id, "c");
	sandbox_list_free(&l);

	assert_int_equal(store_sandbox_list(f->s, SANDBOX_STARTING, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].sandbox_id, "b");
	sandbox_list_free(&l);

	assert_int_equal(store_sandbox_list(f->s, SANDBOX_RUNNING, &l, &err), 0);
	assert_int_equal(l.n, 0);
	sandbox_list_free(&l);

	assert_int_equal(store_find_by_pod(f->s, "default", "web", &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].sandbox_id, "b");   /* newest first (same second: by insertion) */
	sandbox_list_free(&l);
	assert_int_equal(store_find_by_pod(f->s, "other-ns", "web", &l, &err), 0);
	assert_int_equal(l.n, 0);
	sandbox_list_free(&l);

	assert_int_equal(store_sandbox_delete(f->s, "b", &err), 0);
	assert_int_equal(store_sandbox_delete(f->s, "b", &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(store_sandbox_list(f->s, SANDBOX_STATE_ANY, &l, &err), 0);
	assert_int_equal(l.n, 2);
	sandbox_list_free(&l);

	assert_int_equal(store_sandbox_list(f->s, 42, &l, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

static void test_reopen_keeps_rows(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };

	insert_ok(f->s, "keep", "web");
	assert_int_equal(store_sandbox_set_state(f->s, "keep", SANDBOX_CREATED, SANDBOX_STARTING, &err), 0);
	store_close(f->s);
	f->s = store_open(f->dir, &err);
	assert_non_null(f->s);
	assert_int_equal(state_of(f->s, "keep"), SANDBOX_STARTING);
	assert_int_equal(store_schema_version(f->s), store_schema_version_latest());
	assert_true(store_schema_version_latest() >= 1);
}

static void test_schema_version_newer_refused(void **state)
{
	struct fixture *f = *state;
	struct sandbox_row *r = NULL;
	struct pp_err err = { 0 };
	struct store *s2;
	char sql_path[512], cmd[700];

	insert_ok(f->s, "x", "web");
	store_close(f->s);
	f->s = NULL;
	/* Simulate a file written by a newer program, with the sqlite3 library itself. */
	{
		sqlite3 *db;

		snprintf(sql_path, sizeof(sql_path), "%s/state.db", f->dir);
		assert_int_equal(sqlite3_open(sql_path, &db), SQLITE_OK);
		snprintf(cmd, sizeof(cmd), "PRAGMA user_version = %d", store_schema_version_latest() + 1);
		assert_int_equal(sqlite3_exec(db, cmd, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	s2 = store_open(f->dir, &err);
	assert_null(s2);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "newer than this program"));
	s2 = store_open_readonly(f->dir, &err);
	assert_null(s2);
	(void)r;
	/* teardown closes f->s: reopen something harmless */
	{
		sqlite3 *db;

		assert_int_equal(sqlite3_open(sql_path, &db), SQLITE_OK);
		snprintf(cmd, sizeof(cmd), "PRAGMA user_version = %d", store_schema_version_latest());
		assert_int_equal(sqlite3_exec(db, cmd, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	f->s = store_open(f->dir, &err);
	assert_non_null(f->s);
}

/* `cloud-api-adaptor ls` reads while the daemon has the database open; it cannot write. */
static void test_readonly_while_open(void **state)
{
	struct fixture *f = *state;
	struct store *ro;
	struct sandbox_list l;
	struct sandbox_row r = row("ro-insert", "web");
	struct pp_err err = { 0 };

	insert_ok(f->s, "live", "web");
	ro = store_open_readonly(f->dir, &err);
	assert_non_null(ro);
	assert_int_equal(store_sandbox_list(ro, SANDBOX_STATE_ANY, &l, &err), 0);
	assert_int_equal(l.n, 1);
	sandbox_list_free(&l);
	/* the writer keeps working while the reader is open, and the reader sees it */
	assert_int_equal(store_sandbox_set_state(f->s, "live", SANDBOX_CREATED, SANDBOX_STARTING, &err), 0);
	assert_int_equal(state_of(ro, "live"), SANDBOX_STARTING);
	assert_int_equal(store_sandbox_insert(ro, &r, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	store_close(ro);
}

/* `ls` while the daemon is stopped: the WAL files are gone, the reader still works. */
static void test_readonly_after_close(void **state)
{
	struct fixture *f = *state;
	struct store *ro;
	struct sandbox_list l;
	struct pp_err err = { 0 };

	insert_ok(f->s, "left", "web");
	store_close(f->s);
	f->s = NULL;
	ro = store_open_readonly(f->dir, &err);
	if (!ro)
		fail_msg("read-only open: %s", err.msg);
	assert_int_equal(store_sandbox_list(ro, SANDBOX_STATE_ANY, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].sandbox_id, "left");
	sandbox_list_free(&l);
	store_close(ro);
}

static void test_readonly_missing_db(void **state)
{
	struct fixture *f = *state;
	char dir[300];
	struct pp_err err = { 0 };

	snprintf(dir, sizeof(dir), "%s/none", f->dir);
	assert_null(store_open_readonly(dir, &err));
	assert_non_null(strstr(err.msg, "state.db"));
}

#define THREADS 4
#define PER_THREAD 40

struct worker {
	struct store *s;
	int n;
	int failures;
	int cas_won;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pp_err err = { 0 };
	char id[32];

	for (int i = 0; i < PER_THREAD; i++) {
		struct sandbox_row r;

		snprintf(id, sizeof(id), "t%d-%d", w->n, i);
		r = row(id, "web");
		if (store_sandbox_insert(w->s, &r, &err) < 0 ||
		    store_sandbox_set_state(w->s, id, SANDBOX_CREATED, SANDBOX_STARTING, &err) < 0 ||
		    store_sandbox_set_instance(w->s, id, "i-1", "10.0.0.1", &err) < 0 ||
		    store_sandbox_set_state(w->s, id, SANDBOX_STARTING, SANDBOX_RUNNING, &err) < 0)
			w->failures++;
		/* every thread races for the same transition: exactly one may win */
		if (store_sandbox_set_state(w->s, "contended", SANDBOX_CREATED, SANDBOX_STARTING,
					    &err) == 0)
			w->cas_won++;
		else if (err.code != PP_ABORTED)
			w->failures++;
	}
	return NULL;
}

static void test_four_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[THREADS];
	struct worker w[THREADS];
	struct sandbox_list l;
	struct pp_err err = { 0 };
	int won = 0;

	insert_ok(f->s, "contended", "web");
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .s = f->s, .n = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
		won += w[i].cas_won;
	}
	assert_int_equal(won, 1);
	assert_int_equal(store_sandbox_list(f->s, SANDBOX_RUNNING, &l, &err), 0);
	assert_int_equal(l.n, THREADS * PER_THREAD);
	sandbox_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_insert_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_illegal_transition_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_find_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_while_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_missing_db, setup, teardown),
		cmocka_unit_test_setup_teardown(test_four_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
