/*
 * The sandbox store (see store.h): one SQLite connection, prepared statements, one mutex.
 * Every public function is a single statement (so a single implicit transaction) under the
 * lock; the compare-and-set of a transition is the UPDATE's WHERE clause, not a read followed by
 * a write. Schema changes are appended to store_migrations[], never edited.
 */
#include "adaptor/store.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fileutil.h"
#include "lib/util.h"

#define STORE_PATH_MAX 4096
#define STORE_DIR_MODE 0700
#define STORE_SPEC_MAX 8192       /* bytes of the spec JSON column */

/* Append only: migration i takes the schema from version i to i + 1. */
static const char *const store_migrations[] = {
	"CREATE TABLE sandboxes ("
	"  sandbox_id    TEXT PRIMARY KEY NOT NULL,"
	"  pod_name      TEXT NOT NULL,"
	"  pod_namespace TEXT NOT NULL,"
	"  netns         TEXT NOT NULL DEFAULT '',"
	"  instance_name TEXT NOT NULL,"
	"  instance_id   TEXT NOT NULL DEFAULT '',"
	"  ips           TEXT NOT NULL DEFAULT '',"
	"  state         TEXT NOT NULL CHECK (state IN"
	"                  ('created','starting','running','stopping','gone','failed')),"
	"  agent_socket  TEXT NOT NULL DEFAULT '',"
	"  spec          TEXT NOT NULL DEFAULT '{}',"
	"  error         TEXT NOT NULL DEFAULT '',"
	"  created_at    INTEGER NOT NULL,"
	"  updated_at    INTEGER NOT NULL"
	");"
	"CREATE INDEX sandboxes_by_state ON sandboxes (state);"
	"CREATE INDEX sandboxes_by_pod ON sandboxes (pod_namespace, pod_name);",
	/* 2: VXLAN indexes held by sandboxes, and the tunnel each one made (pod networking) */
	"CREATE TABLE vxlan_indexes ("
	"  idx        INTEGER PRIMARY KEY NOT NULL CHECK (idx >= 0),"
	"  sandbox_id TEXT NOT NULL UNIQUE,"
	"  vni        INTEGER NOT NULL DEFAULT 0,"
	"  port       INTEGER NOT NULL DEFAULT 0,"
	"  remote     TEXT NOT NULL DEFAULT '',"
	"  pod_if     TEXT NOT NULL DEFAULT '',"
	"  created_at INTEGER NOT NULL"
	");",
};
#define STORE_N_MIGRATIONS ((int)PP_ARRAY_SIZE(store_migrations))

#define STORE_COLUMNS "sandbox_id, pod_name, pod_namespace, netns, instance_name, instance_id, " \
		      "ips, state, agent_socket, spec, error, created_at, updated_at"

enum store_stmt_id {
	STMT_INSERT,
	STMT_GET,
	STMT_GET_STATE,
	STMT_SET_STATE,
	STMT_SET_FAILED,
	STMT_SET_INSTANCE,
	STMT_DELETE,
	STMT_LIST_ALL,
	STMT_LIST_STATE,
	STMT_FIND_BY_POD,
	STMT_COUNT,
};

static const char *const store_sql[STMT_COUNT] = {
	[STMT_INSERT] = "INSERT INTO sandboxes (" STORE_COLUMNS ") "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
	[STMT_GET] = "SELECT " STORE_COLUMNS " FROM sandboxes WHERE sandbox_id = ?1",
	[STMT_GET_STATE] = "SELECT state FROM sandboxes WHERE sandbox_id = ?1",
	[STMT_SET_STATE] = "UPDATE sandboxes SET state = ?3, updated_at = ?4 "
			   "WHERE sandbox_id = ?1 AND state = ?2",
	[STMT_SET_FAILED] = "UPDATE sandboxes SET state = 'failed', error = ?3, updated_at = ?4 "
			    "WHERE sandbox_id = ?1 AND state = ?2",
	[STMT_SET_INSTANCE] = "UPDATE sandboxes SET instance_id = ?2, ips = ?3, updated_at = ?4 "
			      "WHERE sandbox_id = ?1",
	[STMT_DELETE] = "DELETE FROM sandboxes WHERE sandbox_id = ?1",
	[STMT_LIST_ALL] = "SELECT " STORE_COLUMNS " FROM sandboxes ORDER BY created_at, rowid",
	[STMT_LIST_STATE] = "SELECT " STORE_COLUMNS " FROM sandboxes WHERE state = ?1 "
			    "ORDER BY created_at, rowid",
	[STMT_FIND_BY_POD] = "SELECT " STORE_COLUMNS " FROM sandboxes "
			     "WHERE pod_namespace = ?1 AND pod_name = ?2 "
			     "ORDER BY created_at DESC, rowid DESC",
};

struct store {
	pthread_mutex_t lock;
	sqlite3 *db;                         /* guarded by lock */
	sqlite3_stmt *stmt[STMT_COUNT];      /* guarded by lock */
	bool readonly;
};

static const char *const state_names[SANDBOX_STATE_COUNT] = {
	[SANDBOX_CREATED] = "created",   [SANDBOX_STARTING] = "starting",
	[SANDBOX_RUNNING] = "running",   [SANDBOX_STOPPING] = "stopping",
	[SANDBOX_GONE] = "gone",         [SANDBOX_FAILED] = "failed",
};

/* ---- states ---- */

const char *sandbox_state_name(enum sandbox_state s)
{
	if ((int)s < 0 || s >= SANDBOX_STATE_COUNT)
		return "invalid";
	return state_names[s];
}

int sandbox_state_parse(const char *name, enum sandbox_state *ret)
{
	for (int i = 0; i < SANDBOX_STATE_COUNT; i++)
		if (name && strcmp(name, state_names[i]) == 0) {
			*ret = (enum sandbox_state)i;
			return 0;
		}
	return -1;
}

bool store_transition_allowed(enum sandbox_state from, enum sandbox_state to)
{
	switch (from) {
	case SANDBOX_CREATED:
		return to == SANDBOX_STARTING || to == SANDBOX_STOPPING || to == SANDBOX_FAILED;
	case SANDBOX_STARTING:
		return to == SANDBOX_RUNNING || to == SANDBOX_STOPPING || to == SANDBOX_FAILED;
	case SANDBOX_RUNNING:
		return to == SANDBOX_STOPPING || to == SANDBOX_FAILED;
	case SANDBOX_STOPPING:
		return to == SANDBOX_GONE || to == SANDBOX_FAILED;
	case SANDBOX_FAILED:
		return to == SANDBOX_STOPPING;
	default:
		return false;
	}
}

/* ---- rows ---- */

void sandbox_row_clear(struct sandbox_row *r)
{
	if (!r)
		return;
	free(r->sandbox_id);
	free(r->pod_name);
	free(r->pod_namespace);
	free(r->netns);
	free(r->instance_name);
	free(r->instance_id);
	free(r->ips);
	free(r->agent_socket);
	free(r->spec.instance_type);
	free(r->spec.image);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

void sandbox_row_free(struct sandbox_row *r)
{
	sandbox_row_clear(r);
	free(r);
}

void sandbox_list_free(struct sandbox_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		sandbox_row_clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* ---- errors ---- */

static int store_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return PP_UNAVAILABLE;
	case SQLITE_FULL:
	case SQLITE_NOMEM:
		return PP_RESOURCE_EXHAUSTED;
	case SQLITE_READONLY:
		return PP_PERMISSION_DENIED;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return PP_DATA_LOSS;
	default:
		return PP_INTERNAL;
	}
}

static int store_fail(struct store *s, int rc, const char *what, struct pp_err *err)
{
	return pp_err_set(err, store_code(rc), "state.db: %s: %s", what,
			  s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

/* ---- opening ---- */

static int store_exec(struct store *s, const char *sql, const char *what, struct pp_err *err)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_fail(s, rc, what, err);
}

static int store_read_version(struct store *s, int *ret, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_fail(s, rc, "reading the schema version", err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_fail(s, rc, "reading the schema version", err);
}

static int store_check_version(int v, struct pp_err *err)
{
	if (v > STORE_N_MIGRATIONS)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "state.db has schema version %d, newer than this program's %d; "
				  "use a newer cloud-api-adaptor", v, STORE_N_MIGRATIONS);
	return 0;
}

/* Applies the missing migrations in one transaction. */
static int store_migrate(struct store *s, struct pp_err *err)
{
	char sql[64];
	int v;

	if (store_exec(s, "BEGIN IMMEDIATE", "starting the migration", err) < 0)
		return -1;
	if (store_read_version(s, &v, err) < 0 || store_check_version(v, err) < 0)
		goto rollback;
	for (; v < STORE_N_MIGRATIONS; v++) {
		if (store_exec(s, store_migrations[v], "migrating the schema", err) < 0)
			goto rollback;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(s, sql, "setting the schema version", err) < 0)
			goto rollback;
	}
	return store_exec(s, "COMMIT", "committing the migration", err);
rollback:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int store_prepare_all(struct store *s, struct pp_err *err)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->stmt[i], NULL);

		if (rc != SQLITE_OK)
			return store_fail(s, rc, "preparing a statement", err);
	}
	return 0;
}

static int store_setup_rw(struct store *s, struct pp_err *err)
{
	sqlite3_stmt *st;
	bool wal = false;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_fail(s, rc, "enabling WAL", err);
	if (sqlite3_step(st) == SQLITE_ROW)
		wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "state.db: the file system does not support WAL mode");
	if (store_exec(s, "PRAGMA synchronous = FULL", "setting synchronous", err) < 0)
		return -1;
	return store_migrate(s, err);
}

static struct store *store_open_flags(const char *state_dir, bool readonly, struct pp_err *err)
{
	char path[STORE_PATH_MAX];
	struct store *s;
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
		    (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int n = snprintf(path, sizeof(path), "%s/" STORE_DB_NAME, state_dir ? state_dir : "");
	int rc, v;

	if (n < 0 || (size_t)n >= sizeof(path)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "state dir path is too long");
		return NULL;
	}
	if (!readonly && mkdir_p(state_dir, STORE_DIR_MODE, err) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->readonly = readonly;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		pp_err_set(err, store_code(rc), "cannot open %s: %s", path,
			   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	if (!readonly && store_setup_rw(s, err) < 0)
		goto fail;
	if (readonly && (store_read_version(s, &v, err) < 0 || store_check_version(v, err) < 0))
		goto fail;
	if (readonly && v == 0) {
		pp_err_set(err, PP_FAILED_PRECONDITION, "%s has no schema (never opened by the daemon)",
			   path);
		goto fail;
	}
	if (store_prepare_all(s, err) < 0)
		goto fail;
	return s;
fail:
	store_close(s);
	return NULL;
}

struct store *store_open(const char *state_dir, struct pp_err *err)
{
	return store_open_flags(state_dir, false, err);
}

struct store *store_open_readonly(const char *state_dir, struct pp_err *err)
{
	return store_open_flags(state_dir, true, err);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int store_schema_version(struct store *s)
{
	int v = -1;

	pthread_mutex_lock(&s->lock);
	if (store_read_version(s, &v, NULL) < 0)
		v = -1;
	pthread_mutex_unlock(&s->lock);
	return v;
}

int store_schema_version_latest(void)
{
	return STORE_N_MIGRATIONS;
}

/* ---- statement helpers (called with the lock held) ---- */

static sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = s->stmt[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

static char *store_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return strdup(t ? (const char *)t : "");
}

static char *store_spec_json(const struct sandbox_spec *sp)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:s}",
			      "type", sp->instance_type ? sp->instance_type : "",
			      "vcpus", (json_int_t)sp->vcpus, "memory", (json_int_t)sp->memory_mib,
			      "gpus", (json_int_t)sp->gpus, "image", sp->image ? sp->image : "");
	char *text;

	if (!o)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

static int store_spec_parse(const char *text, struct sandbox_spec *sp)
{
	json_t *o = json_loadb(text, strnlen(text, STORE_SPEC_MAX), 0, NULL);
	const char *type = "", *image = "";
	json_int_t vcpus = 0, memory = 0, gpus = 0;
	int rc;

	if (!o)
		return -1;
	/* Keys missing in an older row are left at their zero value. */
	rc = json_unpack(o, "{s?s, s?I, s?I, s?I, s?s}", "type", &type, "vcpus", &vcpus,
			 "memory", &memory, "gpus", &gpus, "image", &image);
	if (rc == 0) {
		sp->instance_type = strdup(type);
		sp->image = strdup(image);
		sp->vcpus = vcpus;
		sp->memory_mib = memory;
		sp->gpus = gpus;
	}
	json_decref(o);
	return rc == 0 && sp->instance_type && sp->image ? 0 : -1;
}

/* Reads the current row of a SELECT STORE_COLUMNS statement. */
static int store_row_read(sqlite3_stmt *st, struct sandbox_row *r, struct pp_err *err)
{
	const char *state = (const char *)sqlite3_column_text(st, 7);
	const char *spec = (const char *)sqlite3_column_text(st, 9);

	memset(r, 0, sizeof(*r));
	r->sandbox_id = store_col_text(st, 0);
	r->pod_name = store_col_text(st, 1);
	r->pod_namespace = store_col_text(st, 2);
	r->netns = store_col_text(st, 3);
	r->instance_name = store_col_text(st, 4);
	r->instance_id = store_col_text(st, 5);
	r->ips = store_col_text(st, 6);
	r->agent_socket = store_col_text(st, 8);
	r->error = store_col_text(st, 10);
	r->created_at = sqlite3_column_int64(st, 11);
	r->updated_at = sqlite3_column_int64(st, 12);
	if (!r->sandbox_id || !r->pod_name || !r->pod_namespace || !r->netns || !r->instance_name ||
	    !r->instance_id || !r->ips || !r->agent_socket || !r->error) {
		sandbox_row_clear(r);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory reading a row");
	}
	if (sandbox_state_parse(state, &r->state) < 0 ||
	    store_spec_parse(spec ? spec : "{}", &r->spec) < 0) {
		pp_err_set(err, PP_DATA_LOSS, "state.db: sandbox %s has an unreadable state or spec",
			   r->sandbox_id);
		sandbox_row_clear(r);
		return -1;
	}
	return 0;
}

/* Steps a SELECT to the end, appending rows. */
static int store_rows_collect(struct store *s, sqlite3_stmt *st, struct sandbox_list *ret,
			      struct pp_err *err)
{
	struct sandbox_list l = { 0 };
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct sandbox_row *items = realloc(l.items, ncap * sizeof(*items));

			if (!items) {
				pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory listing");
				goto fail;
			}
			l.items = items;
			cap = ncap;
		}
		if (store_row_read(st, &l.items[l.n], err) < 0)
			goto fail;
		l.n++;
	}
	if (rc != SQLITE_DONE) {
		store_fail(s, rc, "listing sandboxes", err);
		goto fail;
	}
	sqlite3_reset(st);
	*ret = l;
	return 0;
fail:
	sqlite3_reset(st);
	sandbox_list_free(&l);
	return -1;
}

/* ---- public operations ---- */

static int store_insert_locked(struct store *s, const struct sandbox_row *row,
			       struct pp_err *err)
{
	sqlite3_stmt *st = store_stmt(s, STMT_INSERT);
	char *spec = store_spec_json(&row->spec);
	int rc;

	if (!spec)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory");
	store_bind_text(st, 1, row->sandbox_id);
	store_bind_text(st, 2, row->pod_name);
	store_bind_text(st, 3, row->pod_namespace);
	store_bind_text(st, 4, row->netns);
	store_bind_text(st, 5, row->instance_name);
	store_bind_text(st, 6, row->instance_id);
	store_bind_text(st, 7, row->ips);
	store_bind_text(st, 8, sandbox_state_name(row->state));
	store_bind_text(st, 9, row->agent_socket);
	store_bind_text(st, 10, spec);
	store_bind_text(st, 11, row->error);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)pp_unix_time());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(spec);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return pp_err_set(err, PP_ALREADY_EXISTS, "sandbox %s already exists", row->sandbox_id);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "inserting a sandbox", err);
	return 0;
}

int store_sandbox_insert(struct store *s, const struct sandbox_row *row, struct pp_err *err)
{
	int rc;

	if (!row->sandbox_id || row->sandbox_id[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT, "empty sandbox id");
	if ((int)row->state < 0 || row->state >= SANDBOX_STATE_COUNT)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "sandbox %s: invalid state %d",
				  row->sandbox_id, (int)row->state);
	pthread_mutex_lock(&s->lock);
	rc = store_insert_locked(s, row, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int store_get_locked(struct store *s, const char *id, struct sandbox_row **ret,
			    struct pp_err *err)
{
	sqlite3_stmt *st = store_stmt(s, STMT_GET);
	struct sandbox_row *r;
	int rc;

	store_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s does not exist", id);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_fail(s, rc, "reading a sandbox", err);
	}
	r = calloc(1, sizeof(*r));
	if (!r || store_row_read(st, r, err) < 0) {
		sqlite3_reset(st);
		free(r);
		return r ? -1 : pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory");
	}
	sqlite3_reset(st);
	*ret = r;
	return 0;
}

int store_sandbox_get(struct store *s, const char *sandbox_id, struct sandbox_row **ret,
		      struct pp_err *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = store_get_locked(s, sandbox_id, ret, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* After an UPDATE matched nothing: says why (no row, or the row is in another state). */
static int store_explain_miss(struct store *s, const char *id, enum sandbox_state from,
			      struct pp_err *err)
{
	sqlite3_stmt *st = store_stmt(s, STMT_GET_STATE);
	char actual[16] = "";
	int rc;

	store_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(actual, sizeof(actual), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s does not exist", id);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, "reading a sandbox state", err);
	return pp_err_set(err, PP_ABORTED, "sandbox %s is %s, not %s", id, actual,
			  sandbox_state_name(from));
}

/* Runs a prepared UPDATE; 1 if it changed a row, 0 if none, -1 on error. */
static int store_update_step(struct store *s, sqlite3_stmt *st, const char *what,
			     struct pp_err *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, what, err);
	return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

static int store_check_transition(const char *id, enum sandbox_state from,
				  enum sandbox_state to, struct pp_err *err)
{
	if (store_transition_allowed(from, to))
		return 0;
	return pp_err_set(err, PP_FAILED_PRECONDITION,
			  "sandbox %s: transition from %s to %s is not allowed", id,
			  sandbox_state_name(from), sandbox_state_name(to));
}

int store_sandbox_set_state(struct store *s, const char *sandbox_id, enum sandbox_state from,
			    enum sandbox_state to, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (to == SANDBOX_FAILED)
		return store_sandbox_set_failed(s, sandbox_id, from, "", err);
	if (store_check_transition(sandbox_id, from, to, err) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, STMT_SET_STATE);
	store_bind_text(st, 1, sandbox_id);
	store_bind_text(st, 2, sandbox_state_name(from));
	store_bind_text(st, 3, sandbox_state_name(to));
	sqlite3_bind_int64(st, 4, (sqlite3_int64)pp_unix_time());
	rc = store_update_step(s, st, "changing a sandbox state", err);
	if (rc == 0)
		rc = store_explain_miss(s, sandbox_id, from, err);
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? -1 : 0;
}

int store_sandbox_set_failed(struct store *s, const char *sandbox_id, enum sandbox_state from,
			     const char *error_msg, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (store_check_transition(sandbox_id, from, SANDBOX_FAILED, err) < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, STMT_SET_FAILED);
	store_bind_text(st, 1, sandbox_id);
	store_bind_text(st, 2, sandbox_state_name(from));
	store_bind_text(st, 3, error_msg);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)pp_unix_time());
	rc = store_update_step(s, st, "marking a sandbox failed", err);
	if (rc == 0)
		rc = store_explain_miss(s, sandbox_id, from, err);
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? -1 : 0;
}

int store_sandbox_set_instance(struct store *s, const char *sandbox_id, const char *instance_id,
			       const char *ips, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, STMT_SET_INSTANCE);
	store_bind_text(st, 1, sandbox_id);
	store_bind_text(st, 2, instance_id);
	store_bind_text(st, 3, ips);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)pp_unix_time());
	rc = store_update_step(s, st, "recording a sandbox's instance", err);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s does not exist", sandbox_id);
	return rc < 0 ? -1 : 0;
}

int store_sandbox_delete(struct store *s, const char *sandbox_id, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, STMT_DELETE);
	store_bind_text(st, 1, sandbox_id);
	rc = store_update_step(s, st, "deleting a sandbox", err);
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s does not exist", sandbox_id);
	return rc < 0 ? -1 : 0;
}

int store_sandbox_list(struct store *s, int state, struct sandbox_list *ret,
		       struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (state != SANDBOX_STATE_ANY && (state < 0 || state >= SANDBOX_STATE_COUNT))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "invalid sandbox state %d", state);
	pthread_mutex_lock(&s->lock);
	if (state == SANDBOX_STATE_ANY) {
		st = store_stmt(s, STMT_LIST_ALL);
	} else {
		st = store_stmt(s, STMT_LIST_STATE);
		store_bind_text(st, 1, sandbox_state_name((enum sandbox_state)state));
	}
	rc = store_rows_collect(s, st, ret, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_find_by_pod(struct store *s, const char *pod_namespace, const char *pod_name,
		      struct sandbox_list *ret, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, STMT_FIND_BY_POD);
	store_bind_text(st, 1, pod_namespace);
	store_bind_text(st, 2, pod_name);
	rc = store_rows_collect(s, st, ret, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- VXLAN indexes ----
 * Statements are prepared per call (a few per sandbox lifetime), so that a read-only opener
 * of an older schema does not fail on a table it never reads. */

#define STORE_VXLAN_COLUMNS "idx, sandbox_id, vni, port, remote, pod_if"

/* Lowest free index below ?2, unless the sandbox holds one already. */
static const char store_vxlan_alloc_sql[] =
	"INSERT INTO vxlan_indexes (idx, sandbox_id, created_at) "
	"SELECT i, ?1, ?3 FROM (SELECT CASE"
	"  WHEN NOT EXISTS (SELECT 1 FROM vxlan_indexes WHERE idx = 0) THEN 0"
	"  ELSE (SELECT MIN(a.idx) + 1 FROM vxlan_indexes a"
	"        WHERE NOT EXISTS (SELECT 1 FROM vxlan_indexes b WHERE b.idx = a.idx + 1))"
	"  END AS i) WHERE i < ?2 "
	"ON CONFLICT (sandbox_id) DO NOTHING";

void store_vxlan_clear(struct store_vxlan *v)
{
	if (!v)
		return;
	free(v->sandbox_id);
	free(v->remote);
	free(v->pod_if);
	memset(v, 0, sizeof(*v));
}

void store_vxlan_list_free(struct store_vxlan *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		store_vxlan_clear(&v[i]);
	free(v);
}

static int store_vx_prepare(struct store *s, const char *sql, sqlite3_stmt **st,
			    struct pp_err *err)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : store_fail(s, rc, "preparing a VXLAN index statement", err);
}

/* Runs a statement that returns no row; sqlite3_changes() or -1. */
static int store_vx_exec(struct store *s, sqlite3_stmt *st, const char *what, struct pp_err *err)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, what, err);
	return sqlite3_changes(s->db);
}

static int store_vx_read(sqlite3_stmt *st, struct store_vxlan *v)
{
	memset(v, 0, sizeof(*v));
	v->index = sqlite3_column_int64(st, 0);
	v->sandbox_id = store_col_text(st, 1);
	v->vni = sqlite3_column_int64(st, 2);
	v->port = sqlite3_column_int64(st, 3);
	v->remote = store_col_text(st, 4);
	v->pod_if = store_col_text(st, 5);
	if (!v->sandbox_id || !v->remote || !v->pod_if) {
		store_vxlan_clear(v);
		return -1;
	}
	return 0;
}

static int store_vx_get_locked(struct store *s, const char *sandbox_id, struct store_vxlan *ret,
			       struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (store_vx_prepare(s, "SELECT " STORE_VXLAN_COLUMNS " FROM vxlan_indexes "
			     "WHERE sandbox_id = ?1", &st, err) < 0)
		return -1;
	store_bind_text(st, 1, sandbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && store_vx_read(st, ret) < 0)
		rc = SQLITE_NOMEM;
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s holds no VXLAN index", sandbox_id);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, "reading a VXLAN index", err);
	return 0;
}

static int store_vx_alloc_locked(struct store *s, const char *sandbox_id, int64_t limit,
				 int64_t *ret_index, struct pp_err *err)
{
	struct pp_err e2 = { 0 };
	struct store_vxlan v;
	sqlite3_stmt *st;

	if (store_vx_prepare(s, store_vxlan_alloc_sql, &st, err) < 0)
		return -1;
	store_bind_text(st, 1, sandbox_id);
	sqlite3_bind_int64(st, 2, limit);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)pp_unix_time());
	if (store_vx_exec(s, st, "allocating a VXLAN index", err) < 0)
		return -1;
	if (store_vx_get_locked(s, sandbox_id, &v, &e2) < 0) {
		if (e2.code != PP_NOT_FOUND) {
			if (err)
				*err = e2;
			return -1;
		}
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "no free VXLAN index for sandbox %s: all %lld are held by live "
				  "sandboxes (lower -vxlan-min-id to get more)", sandbox_id,
				  (long long)limit);
	}
	*ret_index = v.index;
	store_vxlan_clear(&v);
	return 0;
}

int store_vxlan_alloc(struct store *s, const char *sandbox_id, int64_t limit, int64_t *ret_index,
		      struct pp_err *err)
{
	int rc;

	if (!sandbox_id || sandbox_id[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT, "empty sandbox id");
	pthread_mutex_lock(&s->lock);
	rc = store_vx_alloc_locked(s, sandbox_id, limit, ret_index, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_vxlan_set_tunnel(struct store *s, const char *sandbox_id, int64_t vni, int64_t port,
			   const char *remote, const char *pod_if, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	if (store_vx_prepare(s, "UPDATE vxlan_indexes SET vni = ?2, port = ?3, remote = ?4, "
			     "pod_if = ?5 WHERE sandbox_id = ?1", &st, err) == 0) {
		store_bind_text(st, 1, sandbox_id);
		sqlite3_bind_int64(st, 2, vni);
		sqlite3_bind_int64(st, 3, port);
		store_bind_text(st, 4, remote);
		store_bind_text(st, 5, pod_if);
		rc = store_vx_exec(s, st, "recording a VXLAN tunnel", err);
	}
	pthread_mutex_unlock(&s->lock);
	if (rc == 0)
		return pp_err_set(err, PP_NOT_FOUND, "sandbox %s holds no VXLAN index", sandbox_id);
	return rc < 0 ? -1 : 0;
}

int store_vxlan_get(struct store *s, const char *sandbox_id, struct store_vxlan *ret,
		    struct pp_err *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = store_vx_get_locked(s, sandbox_id, ret, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_vxlan_release(struct store *s, const char *sandbox_id, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	if (store_vx_prepare(s, "DELETE FROM vxlan_indexes WHERE sandbox_id = ?1", &st, err) == 0) {
		store_bind_text(st, 1, sandbox_id);
		rc = store_vx_exec(s, st, "releasing a VXLAN index", err);
	}
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? -1 : 0;
}

static int store_vx_list_locked(struct store *s, struct store_vxlan **ret, size_t *ret_n,
				struct pp_err *err)
{
	struct store_vxlan *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	if (store_vx_prepare(s, "SELECT " STORE_VXLAN_COLUMNS " FROM vxlan_indexes ORDER BY idx",
			     &st, err) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			struct store_vxlan *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		if (store_vx_read(st, &v[n]) < 0)
			break;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_vxlan_list_free(v, n);
		return rc == SQLITE_ROW ? pp_err_set(err, PP_RESOURCE_EXHAUSTED, "state.db: out of memory")
					: store_fail(s, rc, "listing VXLAN indexes", err);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int store_vxlan_list(struct store *s, struct store_vxlan **ret, size_t *ret_n,
		     struct pp_err *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = store_vx_list_locked(s, ret, ret_n, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int store_vxlan_prune(struct store *s, int64_t *ret_n, struct pp_err *err)
{
	sqlite3_stmt *st;
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	if (store_vx_prepare(s, "DELETE FROM vxlan_indexes WHERE sandbox_id NOT IN "
			     "(SELECT sandbox_id FROM sandboxes WHERE state != 'gone')", &st,
			     err) == 0)
		rc = store_vx_exec(s, st, "pruning VXLAN indexes", err);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return -1;
	if (ret_n)
		*ret_n = rc;
	return 0;
}
