/*
 * Internals shared by the files of the `aws` provider (and its unit tests).
 *
 *   aws.c        the provider_ops table and the lifecycle calls (init, create, delete, list)
 *   aws_conf.c   the options table and the settings read from it (and from IMDS)
 *   aws_auth.c   the credentials chain (static, shared files, web identity, instance role)
 *   aws_imds.c   the instance metadata service, IMDSv2 (token, then GET)
 *   aws_api.c    EC2 Query API requests: form bodies (pure) and the signed call
 *   aws_xml.c    EC2 and STS XML answers: pure parsers over a buffer (libxml2)
 *
 * The one idea: every request is built by a pure function from plain data (so its form body is
 * a golden file), sent by one function (aws_ec2_call) that signs it with the current
 * credentials through lib/http's SigV4 and turns an EC2 <Error> into a pp_err naming the action,
 * the EC2 code and its message; every answer is read by a pure parser.
 */
#ifndef PP_AWS_PRIV_H
#define PP_AWS_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adaptor/instance_type.h"
#include "adaptor/provider.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/http.h"

#define AWS_EC2_API_VERSION "2016-11-15"
#define AWS_STS_API_VERSION "2011-06-15"
#define AWS_FORM_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"
#define AWS_MAX_USER_DATA 16384            /* EC2: 16 KB of raw user data, before base64 */
#define AWS_MAX_RESPONSE (4u * 1024 * 1024)
#define AWS_FORM_MAX (128u * 1024)         /* base64 user data, percent-encoded, fits */
#define AWS_OWNER_TAG "peerpod-owner"      /* value: the node's owner id */
#define AWS_SANDBOX_TAG "peerpod-sandbox-id"
#define AWS_MAX_TAGS 50                    /* EC2 limit per resource */
#define AWS_TAG_KEY_MAX 128
#define AWS_TAG_VALUE_MAX 256
#define AWS_MAX_SGS 16
#define AWS_MAX_TYPES 64
#define AWS_MAX_NICS PROVIDER_MAX_IPS
#define AWS_ID_MAX 64                      /* i-..., ami-..., subnet-..., sg-... */
#define AWS_STR_MAX 256
#define AWS_URL_MAX 512
#define AWS_PATH_MAX 1024
#define AWS_AKID_MAX 128
#define AWS_SECRET_MAX 128
#define AWS_TOKEN_MAX 8192                 /* STS session tokens are long; no documented max */
#define AWS_WEB_TOKEN_MAX (16 * 1024)      /* the projected service-account token file */
#define AWS_SHARED_FILE_MAX (256 * 1024)
#define AWS_CRED_REFRESH_MARGIN_S 300      /* refresh temporary credentials 5 min early */
#define AWS_THROTTLE_ATTEMPTS 6            /* 4xx RequestLimitExceeded: first try included */
#define AWS_THROTTLE_BASE_MS 200
#define AWS_THROTTLE_MAX_MS 5000
#define AWS_POLL_FIRST_MS 250              /* DescribeInstances polling: 250ms doubling */
#define AWS_POLL_MAX_MS 5000
#define AWS_LIST_PAGE "1000"               /* DescribeInstances MaxResults */
#define AWS_MAX_PAGES 100
#define AWS_IMDS_DEFAULT "http://169.254.169.254"
#define AWS_IMDS_TOKEN_TTL "21600"
#define AWS_IMDS_TIMEOUT_MS 2000
#define AWS_DEFAULT_SESSION_NAME "cloud-api-adaptor"

/* ---- settings (aws_conf.c) ---- */

struct aws_tag {
	char key[AWS_TAG_KEY_MAX + 1];
	char value[AWS_TAG_VALUE_MAX + 1];
};

struct aws_conf {
	char region[AWS_ID_MAX];
	char ami[AWS_ID_MAX];
	char instance_type[AWS_ID_MAX];           /* PODVM_INSTANCE_TYPE */
	char types[AWS_MAX_TYPES][AWS_ID_MAX];    /* PODVM_INSTANCE_TYPES */
	size_t n_types;
	char subnet[AWS_ID_MAX];
	char sgs[AWS_MAX_SGS][AWS_ID_MAX];
	size_t n_sgs;
	char key_name[AWS_STR_MAX];
	char lt_name[AWS_STR_MAX];
	bool use_lt;
	bool use_public_ip;
	bool disable_cvm;
	int64_t root_volume_gib;                  /* 0 = no block-device mapping */
	struct aws_tag tags[AWS_MAX_TAGS];        /* TAGS */
	size_t n_tags;
	uint64_t public_ip_timeout_ms;
	/* credentials sources (secrets are read from the config when needed, not copied here) */
	char profile[AWS_STR_MAX];
	char role_arn[AWS_STR_MAX];
	char web_token_file[AWS_PATH_MAX];
	char session_name[AWS_STR_MAX];
	char credentials_file[AWS_PATH_MAX];
	char config_file[AWS_PATH_MAX];
	/* endpoints */
	char ec2_endpoint[AWS_URL_MAX];           /* "" = https://ec2.<region>.amazonaws.com/ */
	char sts_endpoint[AWS_URL_MAX];           /* "" = https://sts.<region>.amazonaws.com/ */
	char imds_endpoint[AWS_URL_MAX];
	bool imds_disabled;
	char ca_file[AWS_PATH_MAX];
};

extern const struct config_option aws_options[];

/* Reads the options into *c; checks every value (lengths, tag keys, list sizes). */
int aws_conf_load(struct aws_conf *c, const struct config *cfg, struct pp_err *err);
/* Fills region, subnet, security groups and key name from IMDS where not configured. IMDS
 * failures are logged, not fatal (as upstream); a region still missing afterwards is. */
struct aws_imds;
int aws_conf_fill_from_imds(struct aws_conf *c, struct aws_imds *imds, struct pp_err *err);
/* The endpoints with the region filled in. */
int aws_conf_finish(struct aws_conf *c, struct pp_err *err);

/* ---- IMDSv2 (aws_imds.c) ---- */

struct aws_imds *aws_imds_new(const char *endpoint, struct pp_err *err);
void aws_imds_free(struct aws_imds *m);
/* GET /latest/meta-data/<path> with a fresh session token; the text (trimmed) into out. A 404
 * is PP_NOT_FOUND. */
int aws_imds_get(struct aws_imds *m, const char *path, char *out, size_t size,
		 struct cancel *cancel, struct pp_err *err);

/* ---- credentials (aws_auth.c) ---- */

struct aws_creds {
	char akid[AWS_AKID_MAX];
	char secret[AWS_SECRET_MAX];
	char token[AWS_TOKEN_MAX];    /* "" when none */
	int64_t expires;              /* unix seconds; 0 = does not expire */
};

enum aws_cred_source {
	AWS_CRED_STATIC = 0,     /* AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) */
	AWS_CRED_PROFILE,        /* shared credentials/config files, AWS_PROFILE or "default" */
	AWS_CRED_WEB_IDENTITY,   /* AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE -> STS */
	AWS_CRED_IMDS,           /* the instance role */
};

struct aws_auth;

/* Chooses the source (see aws_auth.c for the order); no network. */
struct aws_auth *aws_auth_new(const struct aws_conf *conf, const struct config *cfg,
			      struct http_client *http, struct aws_imds *imds, struct pp_err *err);
void aws_auth_free(struct aws_auth *a);
enum aws_cred_source aws_auth_source(const struct aws_auth *a);
const char *aws_cred_source_name(enum aws_cred_source s);
/* Current credentials, refreshed when they expire within AWS_CRED_REFRESH_MARGIN_S. Thread-safe;
 * no lock is held during the refresh's network call. Wipe *ret after use. */
int aws_auth_get(struct aws_auth *a, struct aws_creds *ret, struct cancel *cancel,
		 struct pp_err *err);
/* Forgets cached temporary credentials (after ExpiredToken). */
void aws_auth_invalidate(struct aws_auth *a);
void aws_creds_wipe(struct aws_creds *c);
/* The region of the profile (AWS_PROFILE or "default") in the shared config file, or "". */
int aws_auth_profile_region(const struct aws_conf *c, char *out, size_t size, struct pp_err *err);

/* Shared files (pure). One profile of an INI text: `[name]` (credentials file) or
 * `[profile name]` / `[default]` (config file). Missing keys stay "". */
struct aws_profile {
	bool found;
	char akid[AWS_AKID_MAX];
	char secret[AWS_SECRET_MAX];
	char token[AWS_TOKEN_MAX];
	char region[AWS_ID_MAX];
	char role_arn[AWS_STR_MAX];
	char web_token_file[AWS_PATH_MAX];
	char session_name[AWS_STR_MAX];
};
int aws_profile_parse(const char *text, const char *profile, bool config_file,
		      struct aws_profile *ret, struct pp_err *err);
void aws_profile_wipe(struct aws_profile *p);

/* ---- EC2 requests (aws_api.c) ---- */

struct aws_priv;

/* What RunInstances sends; strings may be "" for "not sent". */
struct aws_run_params {
	const char *client_token;
	const char *image_id;
	const char *instance_type;
	const char *key_name;
	const char *subnet;
	const char (*sgs)[AWS_ID_MAX];
	size_t n_sgs;
	const char *user_data_b64;
	bool sev_snp;
	bool use_lt;
	const char *lt_name;
	bool public_ip;
	const char *root_device;      /* "" = no block-device mapping */
	int64_t root_volume_gib;
	const struct aws_tag *tags;   /* Name, TAGS, owner, sandbox */
	size_t n_tags;
};

/* Pure form builders: Action and Version first, then the action's parameters. */
void aws_form_begin(struct http_form *f, const char *action);
int aws_form_run_instances(struct http_form *f, const struct aws_run_params *p);
int aws_form_describe_instance(struct http_form *f, const char *id);
/* Owned, live instances: tag:<owner-key>=owner, optionally tag:Name=name; next_token may be "". */
int aws_form_describe_owned(struct http_form *f, const char *owner, const char *name,
			    const char *next_token);
int aws_form_terminate(struct http_form *f, const char *id);
int aws_form_describe_images(struct http_form *f, const char *image_id);
int aws_form_describe_instance_types(struct http_form *f, const char (*types)[AWS_ID_MAX],
				     size_t n);
int aws_form_describe_addresses(struct http_form *f, const char *instance_id);
int aws_form_disassociate_address(struct http_form *f, const char *association_id);
int aws_form_release_address(struct http_form *f, const char *allocation_id);
int aws_form_assume_role_web_identity(struct http_form *f, const char *role_arn,
				      const char *session_name, const char *token);

/* The EC2 error of a failed call (code "" when the answer was not an EC2 error). */
struct aws_error {
	long status;
	char code[AWS_STR_MAX];
	char message[AWS_STR_MAX];
};

/* Signs and sends an EC2 request (form from aws_form_*), retries throttling, parses the XML
 * answer. On success *ret_body holds the answer (free with http_response_free). On failure the
 * error names the action, the EC2 code and message; *ret_ec2 (may be NULL) gets the code. */
int aws_ec2_call(struct aws_priv *ap, const char *action, struct http_form *form,
		 bool idempotent, struct cancel *cancel, struct http_response *ret_body,
		 struct aws_error *ret_ec2, struct pp_err *err);
/* EC2 error code to a gRPC code. */
int aws_error_code_map(const char *ec2_code, long status);
bool aws_error_is_throttle(const char *ec2_code);

/* ---- XML answers (aws_xml.c), pure ---- */

struct aws_instance_info {
	char id[AWS_ID_MAX];
	char state[32];
	char name[INSTANCE_NAME_MAX + 1];     /* tag Name */
	char owner[AWS_TAG_VALUE_MAX + 1];    /* tag AWS_OWNER_TAG */
	char sandbox[128];                    /* tag AWS_SANDBOX_TAG */
	char private_ips[AWS_MAX_NICS][PROVIDER_IP_MAX];
	int n_private_ips;
	char public_ip[PROVIDER_IP_MAX];
	int64_t launch_time;                  /* unix seconds; 0 unknown */
};

struct aws_instance_list {
	struct aws_instance_info *items;
	size_t n;
	char next_token[1024];
};
void aws_instance_list_free(struct aws_instance_list *l);

struct aws_image_info {
	char root_device[AWS_STR_MAX];
	int64_t root_size_gib;   /* of the root device's EBS mapping */
	char boot_mode[32];      /* "" when the answer has none */
};

struct aws_type_info {
	char name[AWS_ID_MAX];
	int64_t vcpus;
	int64_t memory_mib;
	int64_t gpus;
	bool features_known;     /* processorInfo/supportedFeatures present */
	bool sev_snp;
};

struct aws_address_info {
	char public_ip[PROVIDER_IP_MAX];
	char allocation_id[AWS_ID_MAX];
	char association_id[AWS_ID_MAX];
	char name_tag[AWS_TAG_VALUE_MAX + 1];
	char owner_tag[AWS_TAG_VALUE_MAX + 1];
};

/* Each returns 0 or -1 with err (PP_INTERNAL) naming what was missing or malformed. */
int aws_xml_error(const char *body, size_t len, struct aws_error *ret);  /* -1: not an error doc */
int aws_xml_run_instances(const char *body, size_t len, struct aws_instance_info *ret,
			  struct pp_err *err);
/* Instances of every reservation; next_token filled. */
int aws_xml_describe_instances(const char *body, size_t len, struct aws_instance_list *ret,
			       struct pp_err *err);
/* The image whose id is image_id: root device and the size of its EBS mapping. An image
 * without a mapping for its root device is an error naming the image. */
int aws_xml_describe_images(const char *body, size_t len, const char *image_id,
			    struct aws_image_info *ret, struct pp_err *err);
/* Types in answer order; *ret_n <= max. */
int aws_xml_describe_instance_types(const char *body, size_t len, struct aws_type_info *ret,
				    size_t max, size_t *ret_n, struct pp_err *err);
int aws_xml_describe_addresses(const char *body, size_t len, struct aws_address_info *ret,
			       size_t max, size_t *ret_n, struct pp_err *err);
int aws_xml_sts_credentials(const char *body, size_t len, struct aws_creds *ret,
			    struct pp_err *err);
/* "2026-11-25T03:19:11Z" or with fractional seconds or an offset; -1 if malformed. */
int aws_parse_iso8601(const char *s, int64_t *ret);

/* ---- the provider's state (aws.c) ---- */

struct aws_priv {
	/* Set by init, read-only afterwards (so shared by worker threads without a lock). */
	struct aws_conf conf;
	char owner[AWS_TAG_VALUE_MAX + 1];
	char sigv4[AWS_STR_MAX];                  /* "aws:amz:<region>:ec2" */
	char root_device[AWS_STR_MAX];            /* of the configured AMI; "" = none */
	int64_t root_volume_gib;                  /* max(ROOT_VOLUME_SIZE, AMI root size) */
	struct aws_type_info types[AWS_MAX_TYPES];
	struct instance_type_info type_infos[AWS_MAX_TYPES];   /* names point into types[] */
	size_t n_types;
	const char *allowed[AWS_MAX_TYPES];       /* point into conf.types */
	struct http_client *http;                 /* EC2 and STS; thread-safe */
	struct aws_imds *imds;                    /* NULL when disabled */
	struct aws_auth *auth;                    /* thread-safe */
	bool http_global;                         /* http_global_init succeeded */
};

/* Valid EC2 instance id: "i-" and 8 or 17 lower-case hex digits. */
bool aws_instance_id_valid(const char *id);

#endif
