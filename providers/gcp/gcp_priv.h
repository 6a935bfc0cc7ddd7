/*
 * Internals shared by the files of the `gcp` provider (Google Compute Engine) and its unit
 * tests. The files keep the roles every provider has:
 *   gcp.c       the provider_ops table and the lifecycle (init, create, delete, list)
 *   gcp_api.c   Compute Engine and Resource Manager requests and responses (JSON via jansson),
 *               resource path resolution, Google API errors and the zone-operation protocol
 *   gcp_auth.c  credentials: service-account key -> RS256 JWT -> access token, or the
 *               metadata server's token; one cache, refreshed before expiry
 *   gcp_conf.c  options (upstream's names) and their checks
 *
 * The one idea: the instance *name* is the instance id (as upstream, so that peerpod-ctrl can
 * delete from the id alone), and what makes an instance ours is the label peerpod-owner; every
 * mutation carries a requestId so that a retried POST is never a second VM.
 */
#ifndef PP_GCP_PRIV_H
#define PP_GCP_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "adaptor/instance_type.h"
#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/http.h"

#define GCP_DEFAULT_COMPUTE_ENDPOINT "https://compute.googleapis.com/compute/v1"
#define GCP_DEFAULT_RM_ENDPOINT "https://cloudresourcemanager.googleapis.com/v3"
#define GCP_DEFAULT_METADATA_ENDPOINT "http://metadata.google.internal"
#define GCP_METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define GCP_JWT_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"

#define GCP_JWT_LIFETIME_S 3600             /* Google's maximum */
#define GCP_TOKEN_REFRESH_MARGIN_MS (5 * 60 * 1000)
#define GCP_TOKEN_MAX 4096                  /* an access token longer than this is refused */
#define GCP_KEY_FILE_MAX (64 * 1024)        /* service-account key JSON */
#define GCP_RESPONSE_MAX (4u * 1024 * 1024)
#define GCP_TOKEN_RESPONSE_MAX (64u * 1024)

/* Metadata item values are limited to 256 KiB (Compute API, Metadata.items): the base64 of the
 * user-data must fit, so the text may be at most 3/4 of it. */
#define GCP_USER_DATA_B64_MAX (256u * 1024)
#define GCP_USER_DATA_MAX (GCP_USER_DATA_B64_MAX / 4 * 3)

#define GCP_LABEL_OWNER "peerpod-owner"
#define GCP_LABEL_VALUE_MAX 63
#define GCP_DESCRIPTION_PREFIX "peer-pod VM of sandbox "
#define GCP_MAX_MACHINE_TYPES 64
#define GCP_MAX_TAGS 50                     /* tags per resource */
#define GCP_MAX_IPS PROVIDER_MAX_IPS
#define GCP_LIST_PAGE_SIZE 500
#define GCP_LIST_MAX_PAGES 100
#define GCP_NAME_MAX 256                    /* operation and resource names */
#define GCP_PATH_MAX 1024

#define GCP_OP_WAIT_HTTP_TIMEOUT_MS (150u * 1000)   /* operations.wait holds up to 2 min */
#define GCP_IP_WAIT_MS (60u * 1000)
#define GCP_CLEANUP_TIMEOUT_MS (5u * 60 * 1000)

/* ---- options (gcp_conf.c) ---- */

enum gcp_confidential { GCP_CVM_NONE = 0, GCP_CVM_SEV, GCP_CVM_SEV_SNP, GCP_CVM_TDX };

struct gcp_conf {
	const char *project;          /* the strings point into the struct config */
	const char *zone;
	char region[64];              /* zone minus its last "-x" */
	char *image;                  /* resolved: projects/P/global/images/N (or .../family/F) */
	const char *machine_type;     /* default */
	const char *const *machine_types;
	size_t n_machine_types;
	char *network;                /* resolved: projects/P/global/networks/N */
	char *subnetwork;             /* resolved, or NULL */
	const char *disk_type;
	enum gcp_confidential cvm;
	const char *min_cpu_platform; /* "" = automatic ("AMD Milan" for SEV_SNP on n2d) */
	int64_t root_volume_gb;
	bool public_ip;
	const char *const *tags;      /* "k=v" */
	size_t n_tags;
	const char *compute_endpoint; /* no trailing '/' */
	const char *rm_endpoint;
	const char *metadata_endpoint;
	const char *token_endpoint;   /* "" = the key's token_uri */
	uint64_t op_timeout_ms;
	uint64_t poll_interval_ms;
	bool keep_failed;             /* the core's KEEP_FAILED_VMS, if it has one */
};

extern const struct config_option gcp_options[];

int gcp_conf_load(struct gcp_conf *c, const struct config *cfg, struct pp_err *err);
void gcp_conf_free(struct gcp_conf *c);
const char *gcp_confidential_name(enum gcp_confidential t);   /* "SEV", ...; "" for none */
int gcp_confidential_parse(const char *s, enum gcp_confidential *ret);

/* ---- credentials (gcp_auth.c) ---- */

struct gcp_key {
	char *client_email;
	char *private_key_id;
	char *token_uri;
	EVP_PKEY *pkey;               /* RSA */
};

/* Parses a service-account key (JSON text). Anything but "type": "service_account" with an RSA
 * private key is an error naming what is wrong; the key material never appears in it. */
int gcp_key_parse(const char *json, size_t len, struct gcp_key *ret, struct pp_err *err);
void gcp_key_free(struct gcp_key *k);
/* header.claims.signature, RS256, iat = now, exp = now + GCP_JWT_LIFETIME_S. */
int gcp_jwt_make(const struct gcp_key *k, const char *scope, int64_t now, char **ret,
		 struct pp_err *err);

enum gcp_auth_mode { GCP_AUTH_KEY = 1, GCP_AUTH_METADATA };

struct gcp_auth {
	enum gcp_auth_mode mode;      /* set once by init */
	struct gcp_key key;           /* GCP_AUTH_KEY */
	char *token_url;              /* where the JWT is exchanged, or the metadata token URL */
	char source[64];              /* "GCP_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS file", ... */
	struct http_client *http;     /* not owned */

	pthread_mutex_t mu;
	pthread_cond_t cv;            /* signalled when a refresh ends; with mu */
	char *token;                  /* guarded by mu; NULL = none */
	uint64_t expires_ms;          /* guarded by mu; CLOCK_MONOTONIC */
	uint64_t refresh_at_ms;       /* guarded by mu */
	bool refreshing;              /* guarded by mu: one thread fetches, no lock held meanwhile */
	uint64_t fetches;             /* guarded by mu; for tests */
};

/* Chooses the credential source: GCP_CREDENTIALS content, else the GOOGLE_APPLICATION_CREDENTIALS
 * file, else the metadata server. Does not fetch a token. */
int gcp_auth_init(struct gcp_auth *a, const struct config *cfg, const struct gcp_conf *c,
		  struct http_client *http, struct pp_err *err);
void gcp_auth_fini(struct gcp_auth *a);
/* A valid access token (malloc'd; free with gcp_token_free): the cached one, or a new one when
 * it is missing or about to expire. Thread-safe; cancellable. */
int gcp_auth_token(struct gcp_auth *a, struct cancel *cancel, char **ret, struct pp_err *err);
/* Forgets the cached token (after a 401) unless a newer one replaced it already. */
void gcp_auth_invalidate(struct gcp_auth *a, const char *token);
void gcp_token_free(char *t);

/* ---- API (gcp_api.c) ---- */

/* Path resolution (upstream-providers.md §3.3). Results are malloc'd. */
int gcp_image_path(const char *project, const char *image, char **ret, struct pp_err *err);
int gcp_network_path(const char *project, const char *network, char **ret, struct pp_err *err);
int gcp_subnetwork_path(const char *project, const char *region, const char *subnet, char **ret,
			struct pp_err *err);
int gcp_zone_region(const char *zone, char *out, size_t size, struct pp_err *err);
/* The owner id as a label value ([a-z0-9_-], at most 63): the id itself when it already is one,
 * else its sanitised prefix and 8 hex digits of its SHA-256, so two owners never share one. */
int gcp_owner_label(const char *owner, char *out, size_t size, struct pp_err *err);
/* A random UUID (v4) for requestId. */
int gcp_request_id(char out[37], struct pp_err *err);

struct gcp_tag {
	char *key;                    /* short name, or "parent/key" */
	char *value;
	char key_id[GCP_NAME_MAX];    /* tagKeys/N */
	char value_id[GCP_NAME_MAX];  /* tagValues/N */
};

/* Everything an instances.insert body is made of. */
struct gcp_insert {
	const char *name;
	const char *zone;
	const char *machine_type;
	const char *image;            /* resolved path */
	int64_t disk_size_gb;
	const char *disk_type;
	const char *network;
	const char *subnetwork;       /* or NULL */
	bool public_ip;
	const char *user_data_b64;
	const char *owner_label;
	const char *sandbox_id;
	enum gcp_confidential cvm;
	const char *min_cpu_platform; /* or "" */
	bool terminate_on_maintenance;
	const struct gcp_tag *tags;
	size_t n_tags;
};

/* The JSON body (new reference). */
json_t *gcp_insert_body(const struct gcp_insert *in);

/* Parses a Google API error body into err, e.g. "GCP instances.insert podvm-x: HTTP 409
 * alreadyExists: The resource ... already exists"; the code from the status (409 with
 * alreadyExists -> ALREADY_EXISTS). Always returns -1. */
int gcp_api_error(long status, const char *body, const char *what, struct pp_err *err);

struct gcp_operation {
	char name[GCP_NAME_MAX];
	char status[16];              /* PENDING, RUNNING, DONE */
	bool done;
	bool failed;                  /* DONE with error.errors[] */
	long http_error;              /* httpErrorStatusCode, 0 if none */
	char error_code[64];          /* errors[0].code */
	char error_msg[256];          /* errors[0].message */
};

int gcp_operation_parse(const char *body, struct gcp_operation *ret, struct pp_err *err);
/* Fills err from a failed operation (code from httpErrorStatusCode and errors[0].code). */
int gcp_operation_error(const struct gcp_operation *op, const char *what, struct pp_err *err);

int gcp_machine_type_parse(const char *body, struct instance_type_info *ret, struct pp_err *err);
int gcp_image_size_parse(const char *body, int64_t *ret_gb, struct pp_err *err);
/* IPs of an instance: every NIC's networkIP, or, when public, every accessConfigs[].natIP.
 * *ret_n = 0 when none is assigned yet. Also the instance's numeric id (string) if wanted. */
int gcp_instance_ips_parse(const char *body, bool public_ip, char ips[][PROVIDER_IP_MAX],
			   int max, int *ret_n, struct pp_err *err);
/* The owner label of an instance ("" if none). */
int gcp_instance_owner_parse(const char *body, char *out, size_t size, struct pp_err *err);
/* One page of instances.list: appends the items to l; *ret_next = next page token or NULL. */
int gcp_instance_list_parse(const char *body, struct owned_instance_list *l, char **ret_next,
			    struct pp_err *err);
/* RFC 3339 ("2026-08-01T10:00:00.123-07:00") to Unix seconds; -1 if unparsable. */
int64_t gcp_time_parse(const char *s);
/* A TagValue (tagValues.getNamespaced answer): its name and its parent key. */
int gcp_tag_value_parse(const char *body, struct gcp_tag *t, struct pp_err *err);

/* ---- the provider (gcp.c) ---- */

struct gcp_priv {
	struct gcp_conf conf;                 /* read-only after init */
	struct http_client *http;
	struct gcp_auth auth;
	bool auth_ready;
	bool http_global;                     /* http_global_init was called by us */
	struct instance_type_info types[GCP_MAX_MACHINE_TYPES];   /* sorted; read-only after init */
	size_t n_types;
	struct gcp_tag tags[GCP_MAX_TAGS];    /* resolved at init; read-only after */
	size_t n_tags;
	int64_t image_size_gb;                /* of conf.image, read at init */
	char owner_label[GCP_LABEL_VALUE_MAX + 1];
	char owner[256];
};

/* One authenticated call: token, request, one retry after a 401 with a fresh token, Google error
 * parsed on failure. what names the call in errors ("instances.insert podvm-x"). A 404 answer is
 * PP_NOT_FOUND. */
int gcp_call(struct gcp_priv *g, enum http_method m, const char *url, const char *body,
	     const char *op, const char *what, unsigned flags, uint64_t timeout_ms,
	     struct cancel *cancel, struct http_response *ret, struct pp_err *err);
/* Waits for a zone operation: operations.wait repeated (bounded by GCP_OPERATION_TIMEOUT and the
 * cancel token). Fills *op with the final state; -1 if it could not be waited for. */
int gcp_operation_wait(struct gcp_priv *g, struct gcp_operation *op, const char *what,
		       struct cancel *cancel, struct pp_err *err);

extern const struct provider_ops gcp_provider_ops;

#endif
