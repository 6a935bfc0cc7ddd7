/* The adaptor's side of the forwarder mTLS: see tls_setup.h. */
#include "adaptor/tls_setup.h"

#include <stdlib.h>
#include <string.h>

#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define MANUAL_SERVER_NAME "podvm-server"
#define CA_FILE_MAX (256 * 1024)

static STACK_OF(X509) *anchors_from_file(const char *path, struct pp_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *text;
	STACK_OF(X509) *certs;

	if (file_read_all(path, CA_FILE_MAX, &data, &len, err) < 0)
		return NULL;
	text = pp_xmalloc(len + 1);
	memcpy(text, data, len);
	text[len] = '\0';
	free(data);
	certs = tls_certs_from_pem(text, err);
	free(text);
	if (!certs)
		pp_err_prefix(err, "CACERT_FILE %s", path);
	return certs;
}

static STACK_OF(X509) *anchors_from_cert(X509 *cert)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (!certs)
		return NULL;
	X509_up_ref(cert);
	if (!sk_X509_push(certs, cert)) {
		X509_free(cert);
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
}

static int tls_setup_client_identity(struct tls_setup *t, const struct config *cfg, struct pp_err *err)
{
	const char *cert = config_str(cfg, "CERT_FILE");
	const char *key = config_str(cfg, "CERT_KEY");

	if (!*cert && !*key)
		return 0;
	if (!*cert || !*key)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "CERT_FILE and CERT_KEY go together: %s is set, %s is not",
				  *cert ? "CERT_FILE" : "CERT_KEY", *cert ? "CERT_KEY" : "CERT_FILE");
	t->client_files = pki_identity_from_files(cert, key, err);
	return t->client_files ? 0 : -1;
}

struct tls_setup *tls_setup_new(const struct config *cfg, const char *state_dir, struct pp_err *err)
{
	struct tls_setup *t = pp_xcalloc(1, sizeof(*t));
	const char *ca_file = config_str(cfg, "CACERT_FILE");
	struct tls_profile profile;
	STACK_OF(X509) *anchors = NULL;
	const struct pki_identity *client;

	t->min_version = config_str(cfg, "TLS_MIN_VERSION");
	t->suites = config_list(cfg, "TLS_CIPHER_SUITES", &t->n_suites);
	if (tls_profile_parse(t->min_version, t->suites, t->n_suites, &profile, err) < 0)
		goto fail;
	if (*ca_file && config_bool(cfg, "TLS_SKIP_VERIFY")) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "specifying a root certificates file (CACERT_FILE) with the insecure flag (TLS_SKIP_VERIFY) is not allowed");
		goto fail;
	}
	if (config_bool(cfg, "TLS_SKIP_VERIFY"))
		log_warn("TLS_SKIP_VERIFY has no effect: the adaptor issues the forwarders' certificates itself and always verifies them", "");
	if (tls_setup_client_identity(t, cfg, err) < 0)
		goto fail;
	if (pki_load_or_create(state_dir, &t->pki, err) < 0)
		goto fail;
	client = t->client_files ? t->client_files : t->pki.client;
	if (*ca_file) {
		t->mode = "manual";
		anchors = anchors_from_file(ca_file, err);
	} else {
		t->mode = t->client_files ? "mixed" : "automatic";
		t->ca_service = true;
		anchors = anchors_from_cert(t->pki.ca->cert);
		t->client_ca_pem = pki_cert_to_pem(client->cert, err);
		if (!t->client_ca_pem)
			goto fail;
	}
	if (!anchors) {
		if (err && !err->msg[0])
			pp_err_set(err, PP_INTERNAL, "building the TLS trust anchors failed");
		goto fail;
	}
	t->client_ctx = tls_client_ctx_new(&profile, client, anchors, err);
	tls_certs_free(anchors);
	if (!t->client_ctx)
		goto fail;
	log_info("TLS to the forwarders", "mode=%s min_version=%s", t->mode,
		 *t->min_version ? t->min_version : "VersionTLS12");
	return t;
fail:
	tls_setup_free(t);
	return NULL;
}

void tls_setup_free(struct tls_setup *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->client_ctx);
	pki_store_fini(&t->pki);
	pki_identity_free(t->client_files);
	free(t->client_ca_pem);
	free(t);
}

const char *tls_setup_server_name(const struct tls_setup *t, const char *instance_name)
{
	return t->ca_service ? instance_name : MANUAL_SERVER_NAME;
}

int tls_setup_issue_vm(const struct tls_setup *t, const char *instance_name, struct pki_pem *ret,
		       struct pp_err *err)
{
	struct pki_identity *srv;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!t->ca_service)
		return 0;
	srv = pki_issue_server_cert(t->pki.ca, instance_name, err);
	if (!srv)
		return -1;
	rc = pki_identity_to_pem(srv, ret, err);
	pki_identity_free(srv);
	return rc;
}
