/*
 * Durable sandbox state: <state-dir>/state.db, SQLite in WAL mode (DESIGN idea 2).
 *
 * One row per sandbox, moving through created -> starting -> running -> stopping -> gone (or
 * failed). Transitions are compare-and-set (store_sandbox_set_state names the state the caller
 * believes the row is in) and only the edges of store_transition_allowed() exist, so two
 * workers cannot both act on one sandbox and a bug cannot move a row backwards. Each call is one
 * transaction, committed (synchronous=FULL) before it returns: the caller writes the transition,
 * then does the side effect (create or delete a VM).
 *
 * Threads: one sqlite3 connection and its prepared statements, guarded by store.lock; every
 * public function takes it for the whole call, never across anything but SQLite. Another process
 * (`cloud-api-adaptor ls`) may open the same file read-only with store_open_readonly() while
 * the daemon runs (WAL readers do not block the writer). The schema is versioned with
 * PRAGMA user_version and an ordered list of migrations; a newer file than this program knows
 * is refused.
 */
#ifndef PP_ADAPTOR_STORE_H
#define PP_ADAPTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define STORE_DB_NAME "state.db"
#define STORE_BUSY_TIMEOUT_MS 5000

enum sandbox_state {
	SANDBOX_CREATED = 0,  /* CreateVM recorded it; no instance yet */
	SANDBOX_STARTING,     /* StartVM: the create call may be in flight */
	SANDBOX_RUNNING,      /* instance up, proxy serving */
	SANDBOX_STOPPING,     /* delete in progress */
	SANDBOX_GONE,         /* instance deleted */
	SANDBOX_FAILED,       /* a step failed; error says which; an instance may need deleting */
	SANDBOX_STATE_COUNT,
};
#define SANDBOX_STATE_ANY (-1)    /* store_sandbox_list: every state */

const char *sandbox_state_name(enum sandbox_state s);           /* "created", ... */
int sandbox_state_parse(const char *name, enum sandbox_state *ret);  /* -1 if unknown */
bool store_transition_allowed(enum sandbox_state from, enum sandbox_state to);

/* What the pod asked for (annotations), kept as a JSON column. */
struct sandbox_spec {
	char *instance_type;
	int64_t vcpus;
	int64_t memory_mib;
	int64_t gpus;
	char *image;
};

/* All strings heap-allocated, never NULL in rows returned by the store ("" when unset). */
struct sandbox_row {
	char *sandbox_id;
	char *pod_name;
	char *pod_namespace;
	char *netns;
	char *instance_name;
	char *instance_id;
	char *ips;             /* comma-separated, ips[0] first */
	enum sandbox_state state;
	char *agent_socket;
	struct sandbox_spec spec;
	char *error;           /* why it failed; "" otherwise */
	int64_t created_at;    /* unix seconds */
	int64_t updated_at;
};
void sandbox_row_clear(struct sandbox_row *r);   /* frees the strings; NULL ok */
void sandbox_row_free(struct sandbox_row *r);    /* clear + free(r); NULL ok */

struct sandbox_list {
	struct sandbox_row *items;
	size_t n;
};
void sandbox_list_free(struct sandbox_list *l);  /* frees the rows; NULL ok */

struct store;

/* Opens (creating state_dir with mode 0700 and the database if needed) and migrates. */
struct store *store_open(const char *state_dir, struct pp_err *err);
/* Opens an existing database read-only (another process while the daemon runs). */
struct store *store_open_readonly(const char *state_dir, struct pp_err *err);
void store_close(struct store *s);               /* NULL ok */
int store_schema_version(struct store *s);       /* PRAGMA user_version; -1 on error */
/* The version this program writes (= number of migrations). */
int store_schema_version_latest(void);

/* Inserts row (created_at/updated_at are set here; NULL strings are stored as "").
 * Duplicate id: ALREADY_EXISTS "sandbox <id> already exists". */
int store_sandbox_insert(struct store *s, const struct sandbox_row *row, struct pp_err *err);
/* NOT_FOUND "sandbox <id> does not exist". *ret is allocated; free with sandbox_row_free. */
int store_sandbox_get(struct store *s, const char *sandbox_id, struct sandbox_row **ret,
		      struct pp_err *err);
/* Moves the row from `from` to `to` if it is in `from`. A transition not in the state machine
 * is FAILED_PRECONDITION and changes nothing; a row in another state is ABORTED "sandbox <id> is
 * <actual>, not <from>"; a missing row is NOT_FOUND. */
int store_sandbox_set_state(struct store *s, const char *sandbox_id, enum sandbox_state from,
			    enum sandbox_state to, struct pp_err *err);
/* Same as set_state to SANDBOX_FAILED, recording why (error_msg, never a secret). */
int store_sandbox_set_failed(struct store *s, const char *sandbox_id, enum sandbox_state from,
			     const char *error_msg, struct pp_err *err);
int store_sandbox_set_instance(struct store *s, const char *sandbox_id, const char *instance_id,
			       const char *ips, struct pp_err *err);
/* Deleting a missing row is NOT_FOUND. */
int store_sandbox_delete(struct store *s, const char *sandbox_id, struct pp_err *err);
/* state: a sandbox_state or SANDBOX_STATE_ANY; rows in insertion order. */
int store_sandbox_list(struct store *s, int state, struct sandbox_list *ret,
		       struct pp_err *err);
/* All rows of one pod (a pod may have had several sandboxes), newest first. */
int store_find_by_pod(struct store *s, const char *pod_namespace, const char *pod_name,
		      struct sandbox_list *ret, struct pp_err *err);

/* ---- VXLAN indexes (pod networking) ----
 * A sandbox's VXLAN index (VNI = vxlan-min-id + index) is allocated in the database, so that an
 * index is never handed out while a sandbox holds it, across restarts too (upstream keeps a
 * counter in memory and reuses live VNIs after a restart). Allocation takes the lowest free
 * index. The row also records the tunnel the worker made (VNI, port, the VM's IP, the pod's
 * interface), written before the tunnel is set up, so that a restarted daemon can check, redo
 * or undo it. Released when the sandbox's network is torn down; store_vxlan_prune drops rows
 * whose sandbox row is gone (for the restart reconcile). */
struct store_vxlan {
	int64_t index;
	char *sandbox_id;
	int64_t vni;             /* 0 until store_vxlan_set_tunnel */
	int64_t port;
	char *remote;            /* "" until store_vxlan_set_tunnel */
	char *pod_if;
};
void store_vxlan_clear(struct store_vxlan *v);                /* frees the strings; NULL ok */
void store_vxlan_list_free(struct store_vxlan *v, size_t n);  /* NULL ok */

/* The sandbox's index: the one it holds, else the lowest free one below limit (then
 * RESOURCE_EXHAUSTED "no free VXLAN index"). */
int store_vxlan_alloc(struct store *s, const char *sandbox_id, int64_t limit, int64_t *ret_index,
		      struct pp_err *err);
/* Records the tunnel; NOT_FOUND if the sandbox holds no index. */
int store_vxlan_set_tunnel(struct store *s, const char *sandbox_id, int64_t vni, int64_t port,
			   const char *remote, const char *pod_if, struct pp_err *err);
/* NOT_FOUND "sandbox <id> holds no VXLAN index". */
int store_vxlan_get(struct store *s, const char *sandbox_id, struct store_vxlan *ret,
		    struct pp_err *err);
/* Frees the sandbox's index; one it does not hold is success. */
int store_vxlan_release(struct store *s, const char *sandbox_id, struct pp_err *err);
/* All rows, by index. */
int store_vxlan_list(struct store *s, struct store_vxlan **ret, size_t *ret_n,
		     struct pp_err *err);
/* Releases the indexes of sandboxes that have no row or whose row is gone; *ret_n = count. */
int store_vxlan_prune(struct store *s, int64_t *ret_n, struct pp_err *err);

#endif
