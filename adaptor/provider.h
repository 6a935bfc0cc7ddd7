/*
 * Providers are drivers (DESIGN idea 1). Each providers/<name>/ exports exactly one
 * `const struct provider_ops` with designated initialisers; the core checks at registration
 * that the mandatory slots are filled. The core owns each provider instance (struct provider)
 * and hands the driver an opaque handle with a small accessor API: drivers never reach into
 * the core's structures.
 *
 * Rules every driver keeps:
 *  - everything it creates carries the owner id (tag, label or metadata) and the sandbox id, so
 *    list_instances finds exactly this node's instances and never another node's;
 *  - delete_instance of an instance that is already gone is success;
 *  - a create that fails after the cloud accepted it cleans up by name before returning;
 *  - blocking calls watch the cancel token (libcurl progress callback, poll loops).
 * Calls may come from several worker threads at once: a driver guards its own state.
 */
#ifndef PP_PROVIDER_H
#define PP_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cancel.h"
#include "lib/config.h"
#include "lib/err.h"

#define PROVIDER_MAX_IPS 4
#define PROVIDER_ID_MAX 512
#define PROVIDER_IP_MAX 64
#define INSTANCE_NAME_MAX 63

struct provider;   /* opaque, owned by the core */

/* What the pod asks for (annotations), see upstream-providers.md §0.5. */
struct instance_spec {
	const char *instance_type;   /* "" = choose */
	int64_t vcpus;               /* 0 = unspecified */
	int64_t memory_mib;          /* 0 = unspecified */
	int64_t gpus;
	const char *image;           /* "" = provider default */
	bool multi_nic;
};

struct create_request {
	const char *sandbox_id;
	const char *pod_name;
	const char *pod_namespace;
	const char *instance_name;   /* podvm-<pod>-<sid8>, decided and recorded by the core */
	const char *user_data;       /* rendered #cloud-config text */
	size_t user_data_len;
	struct instance_spec spec;
	struct cancel *cancel;
};

struct instance {
	char id[PROVIDER_ID_MAX];              /* what delete_instance takes */
	char name[INSTANCE_NAME_MAX + 1];
	char ips[PROVIDER_MAX_IPS][PROVIDER_IP_MAX];   /* ips[0] is dialled at :15150 */
	int n_ips;
};

/* An instance this node owns, as list_instances reports it. */
struct owned_instance {
	char id[PROVIDER_ID_MAX];
	char name[INSTANCE_NAME_MAX + 1];
	char sandbox_id[128];     /* from the tag/metadata; "" if unknown */
	int64_t created_unix;     /* 0 if unknown */
};

struct owned_instance_list {
	struct owned_instance *items;
	size_t n;
};
void owned_instance_list_free(struct owned_instance_list *l);
/* Appends one entry (used by drivers). */
int owned_instance_list_add(struct owned_instance_list *l, const struct owned_instance *it);

struct provider_ops {
	const char *name;                          /* "aws", "local", ... (mandatory) */
	const struct config_option *options;       /* the driver's options table (may be NULL) */
	size_t max_user_data;                      /* bytes of user-data text; 0 = no limit */
	/* Instances share the node's network (local processes): no pod network tunnel. */
	bool shares_node_network;
	/* Reads options (provider_config), makes start-up calls, sets private state. (mandatory) */
	int (*init)(struct provider *p, struct pp_err *err);
	/* CLOUD_CONFIG_VERIFY: a real check of credentials and settings (optional). */
	int (*check)(struct provider *p, struct pp_err *err);
	int (*create_instance)(struct provider *p, const struct create_request *req,
			       struct instance *ret, struct pp_err *err);       /* mandatory */
	/* id may be "" when only the name is known (crash before the create answered). */
	int (*delete_instance)(struct provider *p, const char *id, const char *name,
			       struct cancel *cancel, struct pp_err *err);      /* mandatory */
	int (*list_instances)(struct provider *p, struct owned_instance_list *ret,
			      struct cancel *cancel, struct pp_err *err);       /* mandatory */
	void (*destroy)(struct provider *p);                                /* optional */
	/* The driver's HTTP client, for the metrics endpoint's per-operation counters
	 * (http_client_stats, http_client_op_stats); optional, NULL for drivers without one. */
	struct http_client *(*http_client)(struct provider *p);
};

/* ---- accessors for drivers ---- */
const struct config *provider_config(const struct provider *p);
const char *provider_owner(const struct provider *p);      /* owner id to tag with */
const char *provider_state_dir(const struct provider *p);  /* persistent dir the driver may use */
void *provider_priv(const struct provider *p);
void provider_set_priv(struct provider *p, void *priv);

/* ---- core side ---- */
/* The compiled-in drivers; NULL-terminated. */
extern const struct provider_ops *const provider_registry[];
const struct provider_ops *provider_lookup(const char *name);
/* Checks the mandatory slots; returns -1 naming the missing one. */
int provider_ops_validate(const struct provider_ops *ops, struct pp_err *err);
struct provider *provider_new(const struct provider_ops *ops, const struct config *cfg,
			      const char *owner, const char *state_dir, struct pp_err *err);
int provider_start(struct provider *p, struct pp_err *err);  /* calls init */
void provider_free(struct provider *p);                       /* calls destroy; NULL ok */
const struct provider_ops *provider_get_ops(const struct provider *p);

#endif
