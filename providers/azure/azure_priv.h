/*
 * Internals shared by the files of the `azure` provider and its unit tests.
 *
 *   azure.c        the provider_ops table and the lifecycle calls (create, delete, list)
 *   azure_api.c    ARM requests and responses: URLs, the VM body, parsers, the long-running
 *                  operation protocol (Azure-AsyncOperation / Location / provisioningState)
 *   azure_auth.c   bearer tokens: client secret, workload identity, managed identity (IMDS),
 *                  cached and refreshed before expiry
 *   azure_conf.c   options (upstream's names) and their checks
 *   azure_sshkey.c the SSH public key the VM is given (a file, or one generated per process)
 *
 * The one idea: every ARM call is "token, request, parse the ARM error if any", and every
 * mutation is followed to its end; a create that fails after ARM accepted it is undone by
 * name, so nothing is ever left behind to be billed.
 */
#ifndef PP_AZURE_PRIV_H
#define PP_AZURE_PRIV_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adaptor/instance_type.h"
#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/http.h"

/* API versions of the pinned upstream SDKs (spec §5.2). */
#define AZURE_API_COMPUTE "2022-11-01"       /* virtualMachines, vmSizes */
#define AZURE_API_NETWORK "2022-09-01"       /* networkInterfaces, publicIPAddresses */
#define AZURE_API_DISK "2022-07-02"          /* disks */
#define AZURE_API_RESOURCES "2021-04-01"     /* resourcegroups (the config check) */
#define AZURE_API_IMDS "2018-02-01"          /* managed identity token */
#define AZURE_NETWORK_API_FOR_VM "2020-11-01" /* networkProfile.networkApiVersion */

/* userData is base64 and at most 64 KB of it (Azure docs); the text limit follows. */
#define AZURE_MAX_USER_DATA_B64 65536u
#define AZURE_MAX_USER_DATA (AZURE_MAX_USER_DATA_B64 / 4u * 3u)

/* Tags on every VM: the reaper's owner filter and what an operator reads in the portal. */
#define AZURE_TAG_OWNER "peerpods-owner"
#define AZURE_TAG_SANDBOX "peerpods-sandbox"
#define AZURE_TAG_POD "peerpods-pod"
#define AZURE_TAG_VALUE_MAX 256              /* ARM limit on a tag value */
#define AZURE_MAX_TAGS 50                    /* ARM limit per resource */

#define AZURE_URL_MAX 4096
#define AZURE_NAME_MAX 80                    /* ARM resource names we build */
#define AZURE_TOKEN_MAX (16u * 1024)         /* an access token */
#define AZURE_TOKEN_FILE_MAX (64u * 1024)    /* a federated (Kubernetes) token */
#define AZURE_MAX_RESPONSE (8u * 1024 * 1024)
#define AZURE_TOKEN_RESPONSE_MAX (64u * 1024)
#define AZURE_TOKEN_REFRESH_S 300            /* refresh this long before expiry ... */
#define AZURE_TOKEN_MIN_LIFETIME_S 1         /* ... or half-way for short-lived tokens */
#define AZURE_MAX_NICS 4
#define AZURE_IP_WAIT_MS 30000               /* private IP not yet on the NIC */
#define AZURE_IP_POLL_MS 1000
#define AZURE_CLEANUP_TIMEOUT_MS (10u * 60 * 1000)
#define AZURE_LIST_MAX_PAGES 1000
#define AZURE_ERR_TEXT_MAX 300               /* ARM error message quoted in our errors */

/* ---- options (azure_conf.c) ---- */

struct azure_conf {
	/* Pointers into the provider's config (it outlives the provider). */
	const char *client_id, *client_secret, *tenant_id, *federated_token_file;
	const char *subscription, *region, *resource_group;
	const char *default_size;
	const char *const *sizes;
	size_t n_sizes;
	const char *subnet_id, *nsg_id, *image_id;
	const char *ssh_user, *ssh_key_path;
	bool disable_cvm, secure_boot, public_ip;
	int64_t root_volume_gb;
	const char *const *tags;          /* "k=v" items of TAGS */
	size_t n_tags;
	const char *arm_endpoint;         /* no trailing '/' */
	const char *arm_audience;         /* token scope = audience + "/.default" */
	const char *authority_host;
	const char *imds_endpoint;
	uint64_t poll_ms;                 /* operation polls without Retry-After */
	uint64_t op_timeout_ms;           /* one long-running operation at most */
};

extern const struct config_option azure_options[];
int azure_conf_load(struct azure_conf *c, const struct config *cfg, struct pp_err *err);

/* ---- tokens (azure_auth.c) ---- */

enum azure_cred_kind {
	AZURE_CRED_CLIENT_SECRET,   /* AZURE_CLIENT_SECRET set */
	AZURE_CRED_WORKLOAD,        /* AZURE_FEDERATED_TOKEN_FILE set (AKS workload identity) */
	AZURE_CRED_MANAGED,         /* neither: the VM's or the node's managed identity (IMDS) */
};

/* The token cache. Lock order: mu is a leaf lock, never held across a network call: one thread
 * refreshes (refreshing = true) with mu released, the others use the still-valid token or wait
 * on cv. */
struct azure_auth {
	/* Set once by azure_auth_init, read-only afterwards. */
	enum azure_cred_kind kind;
	const char *client_id, *client_secret, *token_file;
	char token_url[AZURE_URL_MAX];
	char scope[AZURE_URL_MAX];
	struct http_client *http;

	pthread_mutex_t mu;
	pthread_cond_t cv;          /* refresh finished; with mu */
	char *token;                /* guarded by mu; NULL until the first token */
	uint64_t expires_ms;        /* guarded by mu: monotonic time the token expires */
	uint64_t refresh_ms;        /* guarded by mu: monotonic time from which to refresh */
	bool refreshing;            /* guarded by mu */
	uint64_t generation;        /* guarded by mu: refresh attempts finished */
	struct pp_err last_err;     /* guarded by mu: the last failed refresh */
	uint64_t fetches;           /* guarded by mu: token requests made (tests) */
};

int azure_auth_init(struct azure_auth *a, const struct azure_conf *c, struct http_client *http,
		    struct pp_err *err);
void azure_auth_fini(struct azure_auth *a);
/* A valid access token (malloc'd; wipe with azure_secret_free). Thread-safe. */
int azure_auth_token(struct azure_auth *a, struct cancel *cancel, char **ret, struct pp_err *err);
/* ARM refused token (401): the next call fetches a new one (if token is still the cached one). */
void azure_auth_invalidate(struct azure_auth *a, const char *token);
const char *azure_cred_kind_name(enum azure_cred_kind k);
void azure_secret_free(char *s);
/* Parses a token response (AAD or IMDS: expires_in a number or a string). */
int azure_token_parse(const char *body, char **ret_token, int64_t *ret_expires_in,
		      struct pp_err *err);

/* ---- SSH key (azure_sshkey.c) ---- */

/* The first key line of an authorized_keys-style file, checked ("<type> <base64>[ comment]"). */
int azure_sshkey_load(const char *path, char **ret, struct pp_err *err);
/* The file exists, has mode 0600 and holds a valid key (upstream's config check). */
int azure_sshkey_check_file(const char *path, struct pp_err *err);
/* Checks one authorized_keys line; returns its "<type> <base64>" part in *ret (malloc'd). */
int azure_sshkey_parse_line(const char *line, char **ret, struct pp_err *err);
/* A new RSA key's "ssh-rsa <base64>" line; the private key is discarded. */
int azure_sshkey_generate(unsigned bits, char **ret, struct pp_err *err);

/* ---- ARM requests and responses (azure_api.c) ---- */

struct azure_arm {
	const struct azure_conf *conf;
	struct azure_auth *auth;
	struct http_client *http;
};

/* What one ARM call returned. */
struct azure_result {
	struct http_response resp;
	long status;
};

/* Builds endpoint + path + "?api-version=" into out. The path's %s arguments are ARM names and
 * are percent-encoded (sub, rg, name); -1 if it does not fit. */
int azure_url_resource(const struct azure_conf *c, char *out, size_t size, const char *provider_type,
		       const char *name, const char *api, struct pp_err *err);
int azure_url_vm_list(const struct azure_conf *c, char *out, size_t size, struct pp_err *err);
int azure_url_vm_sizes(const struct azure_conf *c, char *out, size_t size, struct pp_err *err);
int azure_url_resource_group(const struct azure_conf *c, char *out, size_t size, struct pp_err *err);
/* An id ARM returned ("/subscriptions/...") as a URL on our endpoint. */
int azure_url_from_id(const struct azure_conf *c, const char *id, const char *api, char *out,
		      size_t size, struct pp_err *err);
/* True if url is on the configured ARM endpoint (we never send the token anywhere else). */
bool azure_url_is_arm(const struct azure_conf *c, const char *url);

/* One ARM call with a fresh token; any HTTP status is returned in res (after lib/http's
 * retries of 429/5xx). -1 only when no answer came (connection, cancel, token). */
int azure_arm_call(struct azure_arm *arm, const char *op, enum http_method method, const char *url,
		   const char *body, struct cancel *cancel, struct azure_result *res,
		   struct pp_err *err);
void azure_result_free(struct azure_result *res);
/* An error from a non-2xx answer: "<what>: ARM <code>: <message> (HTTP <status>)". */
int azure_arm_error(const struct azure_result *res, const char *what, struct pp_err *err);
/* ARM error body {"error":{"code","message"}} -> code, message (cut). false if not that shape. */
bool azure_arm_error_parse(const char *body, char *code, size_t code_size, char *msg,
			   size_t msg_size);
int azure_arm_code_map(long status, const char *code);

/* Follows a long-running operation started by the answer `first` to url (PUT or DELETE) to its
 * end: Azure-AsyncOperation, else Location, else (PUT) the resource's provisioningState.
 * Honours Retry-After. 0 when it succeeded. */
int azure_lro_wait(struct azure_arm *arm, const char *what, const char *url, bool is_put,
		   const struct azure_result *first, struct cancel *cancel, struct pp_err *err);
/* Retry-After (delta seconds) in ms, or def when absent/unparsable; cut to max_ms. */
uint64_t azure_retry_after_ms(const char *value, uint64_t def, uint64_t max_ms);
/* Operation status body -> 1 succeeded, 0 still running, -1 failed/canceled (err filled). */
int azure_op_status_parse(const char *body, const char *what, struct pp_err *err);

/* The VM body of the one PUT (spec §2.3). */
struct azure_vm_params {
	const char *name, *location, *size, *image;
	const char *subnet_id, *nsg_id;          /* nsg "" = none */
	const char *admin_user, *ssh_key;
	const char *user_data_b64;
	bool cvm, secure_boot, public_ip;
	int64_t os_disk_gb;                      /* 0 = the image's size */
	const char *const *tags;                 /* "k=v" items */
	size_t n_tags;
	const char *owner, *sandbox_id, *pod;    /* our tags */
};
json_t *azure_vm_body(const struct azure_vm_params *p, struct pp_err *err);
/* Resource names derived from the VM name. */
int azure_names(const char *vm, char *nic, char *pip, char *disk, size_t size, struct pp_err *err);

struct azure_ref {
	char id[PROVIDER_ID_MAX];
	bool delete_with_vm;                     /* deleteOption "Delete" */
};

/* The parts of a VM we use. */
struct azure_vm {
	char id[PROVIDER_ID_MAX];
	char name[AZURE_NAME_MAX];
	char state[32];                          /* provisioningState */
	char owner[AZURE_TAG_VALUE_MAX + 1];
	char sandbox_id[128];
	int64_t created_unix;                    /* properties.timeCreated, 0 if absent */
	struct azure_ref nics[AZURE_MAX_NICS];
	int n_nics;
	struct azure_ref os_disk;                /* id "" if unknown */
};
int azure_vm_parse(const char *body, struct azure_vm *ret, struct pp_err *err);
int azure_vm_parse_json(const json_t *vm, struct azure_vm *ret, struct pp_err *err);

/* A NIC: its private IPs in order and the ids of its public IPs. */
struct azure_nic {
	char private_ips[PROVIDER_MAX_IPS][PROVIDER_IP_MAX];
	int n_private;
	bool private_pending;                    /* an ipConfiguration without an address yet */
	char public_ids[PROVIDER_MAX_IPS][PROVIDER_ID_MAX];
	int n_public;
};
int azure_nic_parse(const char *body, struct azure_nic *ret, struct pp_err *err);
/* properties.ipAddress of a public IP ("" while not allocated). */
int azure_pip_parse(const char *body, char *ip, size_t size, struct pp_err *err);

/* vmSizes: keeps entries named in want (n_want names); names are strdup'd. */
int azure_vm_sizes_parse(const char *body, const char *const *want, size_t n_want,
			 struct instance_type_info **ret, size_t *ret_n, struct pp_err *err);
void azure_vm_sizes_free(struct instance_type_info *t, size_t n);

/* One page of a VM list: VMs tagged with owner are appended; *ret_next is the nextLink
 * (malloc'd) or NULL. */
int azure_vm_list_parse(const char *body, const char *owner, struct owned_instance_list *out,
			char **ret_next, struct pp_err *err);

/* The VM name of an ARM VM id (provider and type matched case-insensitively). */
int azure_vm_name_from_id(const char *id, char *out, size_t size, struct pp_err *err);
/* RFC 3339 UTC time ("2026-01-02T03:04:05.123+00:00") to Unix seconds; -1 if unparsable. */
int64_t azure_parse_time(const char *s);

#endif
