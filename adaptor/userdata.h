/*
 * The user-data a pod VM boots with: the #cloud-config text carrying, in this order,
 * /run/peerpod/apf.json, /run/peerpod/auth.json, /run/peerpod/initdata and
 * /run/peerpod/scratch-space.marker (upstream-protocols.md §3.3 step 14).
 *
 * It is rendered and its size checked against the provider's limit before anything is created,
 * so a pod whose initdata is too large gets a clear error from CreateVM and nothing exists in
 * the cloud, in the store or on disk.
 */
#ifndef PP_ADAPTOR_USERDATA_H
#define PP_ADAPTOR_USERDATA_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

#define USERDATA_PATH_APF_JSON  "/run/peerpod/apf.json"
#define USERDATA_PATH_AUTH_JSON "/run/peerpod/auth.json"
#define USERDATA_PATH_INITDATA  "/run/peerpod/initdata"
#define USERDATA_PATH_SCRATCH   "/run/peerpod/scratch-space.marker"
#define USERDATA_AUTH_JSON_MAX  12288   /* upstream's DefaultAuthfileLimit */

struct userdata_input {
	const char *apf_json;          /* rendered apf.json (mandatory) */
	const char *auth_json;         /* registry credentials; NULL or "" = none */
	const char *initdata_toml;     /* the pod's annotation (plain TOML); NULL or "" = none */
	const char *default_initdata;  /* INITDATA (already base64+gzip); NULL or "" = none */
	bool scratch_space;            /* ENABLE_SCRATCH_SPACE */
	const char *provider_name;     /* for the size message */
	size_t max_user_data;          /* provider_ops.max_user_data; 0 = no limit */
};

/* Renders the #cloud-config text. Errors (INVALID_ARGUMENT), with nothing written to the outputs:
 *  "user-data is N bytes, more than the <provider> limit of M";
 *  "auth.json is N bytes, more than the limit of 12288" (the caller decides whether to drop
 *  the credentials, as upstream does, and retry without them). */
int userdata_render(const struct userdata_input *in, char **ret_text, size_t *ret_len,
		    struct pp_err *err);

#endif
