/*
 * How the adaptor authenticates to the forwarders (spec §6), decided once at start-up:
 *
 *  automatic (default): the adaptor's CA issues each VM a server certificate for its instance
 *    name; apf.json carries it with tls-client-ca = the adaptor's client certificate. The CA and
 *    the client identity live in <state-dir>/tls (keys 0600) and survive restarts, so running
 *    VMs stay reachable after the daemon is restarted.
 *  mixed (CERT_FILE/CERT_KEY, no CACERT_FILE): as automatic, but with the operator's client
 *    identity; it is loaded at start-up, so the first VM gets its tls-client-ca too (upstream
 *    loads it lazily and the first VM goes without).
 *  manual (CACERT_FILE): the VM image carries its own certificate for "podvm-server"; no server
 *    certificate and no tls-client-ca are sent.
 *
 * TLS_SKIP_VERIFY is refused together with CACERT_FILE (as upstream) and has no effect in
 * automatic mode (where upstream's version of it broke every dial): we never dial unverified.
 */
#ifndef PP_ADAPTOR_TLS_SETUP_H
#define PP_ADAPTOR_TLS_SETUP_H

#include <stdbool.h>
#include <openssl/ssl.h>

#include "lib/config.h"
#include "lib/pki.h"
#include "lib/tls.h"

struct tls_setup {
	SSL_CTX *client_ctx;          /* dials the forwarders */
	bool ca_service;              /* issue a server certificate per VM */
	struct pki_store pki;         /* ca (used when ca_service) and the auto client identity */
	struct pki_identity *client_files;   /* CERT_FILE/CERT_KEY when given */
	char *client_ca_pem;          /* tls-client-ca for apf.json; NULL in manual mode */
	const char *mode;             /* "automatic" | "mixed" | "manual" */
	const char *min_version;      /* TLS_MIN_VERSION as given, or NULL */
	const char *const *suites;    /* TLS_CIPHER_SUITES items */
	size_t n_suites;
};

struct tls_setup *tls_setup_new(const struct config *cfg, const char *state_dir, struct pp_err *err);
void tls_setup_free(struct tls_setup *t);
/* The name the forwarder's certificate must carry. */
const char *tls_setup_server_name(const struct tls_setup *t, const char *instance_name);
/* A fresh server certificate and key for one VM (automatic/mixed mode); ret->cert and ret->key
 * are NULL in manual mode. Free with pki_pem_free. */
int tls_setup_issue_vm(const struct tls_setup *t, const char *instance_name, struct pki_pem *ret,
		       struct pp_err *err);

#endif
