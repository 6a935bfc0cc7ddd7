/*
 * Test environment of the gcp provider's unit tests: a fresh RSA key and service-account JSON,
 * the strict fake (tests/fakes/gcp/fake_gce.py) started on 127.0.0.1 with port 0, its control
 * API, and a provider configured against it.
 */
#ifndef PP_GCP_TESTENV_H
#define PP_GCP_TESTENV_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "adaptor/provider.h"
#include "lib/config.h"
#include "lib/http.h"

#define TE_PROJECT "pp-proj"
#define TE_ZONE "us-central1-a"
#define TE_EMAIL "caa@pp-proj.iam.gserviceaccount.com"
#define TE_KID "0123456789abcdef"

struct testenv {
	char dir[64];
	pid_t fake_pid;
	int port;
	char base[64];                 /* http://127.0.0.1:PORT */
	char *key_json;                /* service-account key with token_uri on the fake */
	struct http_client *ctl;
	struct config *cfg;
	struct provider *prov;
	bool expect_violations;
};

/* The process-wide test key (generated once): PEM private key (PKCS#8) and public key. */
const char *te_private_pem(void);
const char *te_public_pem(void);
/* A service-account key JSON for token_uri with the given private key PEM. malloc'd. */
char *te_key_json(const char *pem, const char *token_uri);

/* Starts the fake (metadata: also serve the metadata server). 0 or -1. */
int te_start(struct testenv *te, bool metadata);
/* Stops the provider and the fake, checks the fake saw no violations (unless expected),
 * removes the directory. */
void te_stop(struct testenv *te);
/* A config with the gcp options pointed at the fake and the given KEY=VALUE overrides
 * (NULL-terminated); credentials from the key JSON unless "GCP_CREDENTIALS=" is overridden. */
struct config *te_config(struct testenv *te, const char *const *kv);
/* provider_new + provider_start with owner; NULL and err on failure. */
struct provider *te_provider(struct testenv *te, struct config *cfg, const char *owner,
			     struct pp_err *err);
/* Control API: POST /_fake/<path> with a JSON body; GET /_fake/state. */
void te_ctl(struct testenv *te, const char *path, const char *json_body);
json_t *te_state(struct testenv *te);
int te_count(struct testenv *te, const char *name);   /* state.counts[name] */

#endif
