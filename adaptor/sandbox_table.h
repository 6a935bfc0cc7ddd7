/*
 * The in-memory view of the sandboxes this daemon serves: runtime objects (the agent proxy, the
 * pending StartVM call, the rendered user-data) that the durable row in state.db does not hold.
 * The row in the store is the truth about the lifecycle; this table caches it and adds what
 * only a live process has. A plain chained hash on the sandbox id; the daemon's lock guards it.
 */
#ifndef PP_ADAPTOR_SANDBOX_TABLE_H
#define PP_ADAPTOR_SANDBOX_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adaptor/provider.h"
#include "adaptor/store.h"
#include "podnet/podnet.h"
#include "lib/cancel.h"
#include "lib/ttrpc.h"

#define SANDBOX_ID_MAX 128
#define SANDBOX_NAME_MAX 256
#define SANDBOX_PATH_MAX 256

struct agent_proxy;

struct sandbox {
	struct sandbox *next;                  /* hash chain */
	char id[SANDBOX_ID_MAX];
	char pod_name[SANDBOX_NAME_MAX];
	char pod_namespace[SANDBOX_NAME_MAX];
	char netns[SANDBOX_PATH_MAX];
	char instance_name[INSTANCE_NAME_MAX + 1];
	char instance_id[PROVIDER_ID_MAX];     /* "" until the create answered */
	char ips[PROVIDER_MAX_IPS][PROVIDER_IP_MAX];
	int n_ips;
	char agent_socket[SANDBOX_PATH_MAX];
	enum sandbox_state state;              /* mirrors the row in state.db */
	struct instance_spec spec;             /* strings below own the spec's text */
	char spec_type[128];
	char spec_image[512];
	char *user_data;                       /* rendered at CreateVM; NULL after a restart */
	size_t user_data_len;
	uint64_t started_ms;                   /* pp_now_ms() when StartVM began */
	struct podnet_info *net_info;          /* pod netns as inspected; NULL = not yet / none */

	/* [loop] */
	struct agent_proxy *proxy;
	struct ttrpc_call *start_call;         /* StartVM waiting for the proxy */
	struct ttrpc_call *pending_stop;       /* StopVM that arrived during StartVM */
	struct cancel *start_cancel;
	struct loop_timer *start_poll;
	bool busy;                             /* a start or stop job holds it */
};

struct sandbox_table {
	struct sandbox **buckets;
	size_t nbuckets;
	size_t count;
};

void sandbox_table_init(struct sandbox_table *t);
void sandbox_table_fini(struct sandbox_table *t);   /* frees every sandbox */
struct sandbox *sandbox_table_get(struct sandbox_table *t, const char *id);
/* Inserts s (the table takes ownership); -1 if the id exists. */
int sandbox_table_add(struct sandbox_table *t, struct sandbox *s);
/* Unlinks and returns it (caller frees with sandbox_free), or NULL. */
struct sandbox *sandbox_table_remove(struct sandbox_table *t, const char *id);
struct sandbox *sandbox_table_find_pod(struct sandbox_table *t, const char *ns, const char *name);
/* Calls fn for each sandbox; stops early if fn returns non-zero. */
int sandbox_table_foreach(struct sandbox_table *t, int (*fn)(struct sandbox *s, void *arg), void *arg);

struct sandbox *sandbox_new(const char *id);
void sandbox_free(struct sandbox *s);

#endif
