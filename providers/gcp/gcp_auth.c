/*
 * Credentials of the `gcp` provider: an OAuth2 access token, from one of (first found wins)
 *   1. GCP_CREDENTIALS, the content of a service-account key (what upstream's chart passes);
 *   2. the key file named by GOOGLE_APPLICATION_CREDENTIALS;
 *   3. the metadata server of the GCE VM we run on (its attached service account).
 * A key signs an RS256 JWT (RFC 7515/7523, Google's "OAuth 2.0 for server to server
 * applications") with OpenSSL and exchanges it at the key's token_uri.
 *
 * The one idea: one cached token for the process, refreshed GCP_TOKEN_REFRESH_MARGIN_MS before
 * it expires by exactly one thread at a time, with no lock held during the fetch; other threads
 * keep using the old token meanwhile, or wait (cancellably) when there is none. Keys, JWTs and
 * tokens are wiped when freed and never reach a log line or an error message.
 */
#include "providers/gcp/gcp_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define AUTH_WAIT_SLICE_MS 100
#define AUTH_METADATA_TIMEOUT_MS 5000

/* ---- service-account key ---- */

static void auth_wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void gcp_token_free(char *t)
{
	auth_wipe_free(t);
}

void gcp_key_free(struct gcp_key *k)
{
	if (!k)
		return;
	free(k->client_email);
	free(k->private_key_id);
	free(k->token_uri);
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

/* A required string member of the key; the error names the field, never its value. */
static int key_str(json_t *root, const char *field, bool required, char **ret, struct pp_err *err)
{
	json_t *v = json_object_get(root, field);

	if (!v || json_is_null(v)) {
		if (required)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "service-account key has no \"%s\"", field);
		*ret = pp_xstrdup("");
		return 0;
	}
	if (!json_is_string(v) || (required && json_string_length(v) == 0))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "service-account key: \"%s\" is not a non-empty string", field);
	*ret = pp_xstrdup(json_string_value(v));
	return 0;
}

static int key_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;    /* an encrypted key is an error, never a prompt on the terminal */
}

static int key_load_pem(const char *pem, EVP_PKEY **ret, struct pp_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pkey;

	if (!bio)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory reading the private key");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, key_no_passphrase, NULL);
	BIO_free(bio);
	if (!pkey)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "service-account key: \"private_key\" is not an unencrypted PEM private key");
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "service-account key: \"private_key\" is not an RSA key (RS256 needs one)");
	}
	*ret = pkey;
	return 0;
}

int gcp_key_parse(const char *json, size_t len, struct gcp_key *ret, struct pp_err *err)
{
	struct gcp_key k = { 0 };
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *type;
	char *pem = NULL;
	int rc = -1;

	if (!root)   /* jerr.text may quote the key: only the position is reported */
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "service-account key is not valid JSON (line %d, column %d)", jerr.line,
				  jerr.column);
	type = json_object_get(root, "type");
	if (!json_is_object(root) || !json_is_string(type)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "service-account key has no \"type\"");
		goto out;
	}
	if (strcmp(json_string_value(type), "service_account") != 0) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "credentials of type \"%.40s\" are not supported: use a service-account key "
			   "(\"type\": \"service_account\") or the metadata server",
			   json_string_value(type));
		goto out;
	}
	if (key_str(root, "client_email", true, &k.client_email, err) < 0 ||
	    key_str(root, "private_key_id", false, &k.private_key_id, err) < 0 ||
	    key_str(root, "token_uri", true, &k.token_uri, err) < 0 ||
	    key_str(root, "private_key", true, &pem, err) < 0 || key_load_pem(pem, &k.pkey, err) < 0)
		goto out;
	if (!str_has_prefix(k.token_uri, "https://") && !str_has_prefix(k.token_uri, "http://")) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "service-account key: token_uri \"%.200s\" is not an http(s) URL", k.token_uri);
		goto out;
	}
	*ret = k;
	memset(&k, 0, sizeof(k));
	rc = 0;
out:
	auth_wipe_free(pem);
	gcp_key_free(&k);
	json_decref(root);
	return rc;
}

/* ---- JWT ---- */

static char *jwt_part(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	char *enc;

	if (!text)
		return NULL;
	enc = base64url_encode(text, strlen(text), false);
	free(text);
	return enc;
}

static int jwt_sign(EVP_PKEY *pkey, const char *data, char **ret, struct pp_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int rc = -1;

	if (!ctx)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory signing the JWT");
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)data, strlen(data)) != 1) {
		pp_err_set(err, PP_INTERNAL, "signing the JWT with RS256 failed");
		goto out;
	}
	sig = pp_xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data, strlen(data)) != 1) {
		pp_err_set(err, PP_INTERNAL, "signing the JWT with RS256 failed");
		goto out;
	}
	*ret = base64url_encode(sig, siglen, false);
	rc = 0;
out:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int gcp_jwt_make(const struct gcp_key *k, const char *scope, int64_t now, char **ret,
		 struct pp_err *err)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", k->client_email, "scope", scope,
				   "aud", k->token_uri, "iat", (json_int_t)now, "exp",
				   (json_int_t)(now + GCP_JWT_LIFETIME_S));
	char *h = NULL, *c = NULL, *sig = NULL, *signing = NULL;
	size_t n;
	int rc = -1;

	if (hdr && k->private_key_id && k->private_key_id[0])
		json_object_set_new(hdr, "kid", json_string(k->private_key_id));
	if (!hdr || !claims || !(h = jwt_part(hdr)) || !(c = jwt_part(claims))) {
		pp_err_set(err, PP_INTERNAL, "building the JWT failed");
		goto out;
	}
	n = strlen(h) + 1 + strlen(c) + 1;
	signing = pp_xmalloc(n);
	snprintf(signing, n, "%s.%s", h, c);
	if (jwt_sign(k->pkey, signing, &sig, err) < 0)
		goto out;
	n = strlen(signing) + 1 + strlen(sig) + 1;
	*ret = pp_xmalloc(n);
	snprintf(*ret, n, "%s.%s", signing, sig);
	rc = 0;
out:
	free(h);
	free(c);
	free(sig);
	free(signing);
	json_decref(hdr);
	json_decref(claims);
	return rc;
}

/* ---- source selection ---- */

static int auth_use_key(struct gcp_auth *a, const char *json, size_t len, const char *source,
			const struct gcp_conf *c, struct pp_err *err)
{
	if (gcp_key_parse(json, len, &a->key, err) < 0)
		return pp_err_prefix(err, "%s", source);
	a->mode = GCP_AUTH_KEY;
	a->token_url = pp_xstrdup(c->token_endpoint[0] ? c->token_endpoint : a->key.token_uri);
	snprintf(a->source, sizeof(a->source), "%s", source);
	return 0;
}

static int auth_select(struct gcp_auth *a, const struct config *cfg, const struct gcp_conf *c,
		       struct pp_err *err)
{
	const char *content = config_secret(cfg, "GCP_CREDENTIALS");
	const char *file = config_str(cfg, "GOOGLE_APPLICATION_CREDENTIALS");
	uint8_t *data = NULL;
	size_t len = 0, n;
	int rc;

	if (content[0])
		return auth_use_key(a, content, strlen(content), "GCP_CREDENTIALS", c, err);
	if (file[0]) {
		if (file_read_all(file, GCP_KEY_FILE_MAX, &data, &len, err) < 0)
			return pp_err_prefix(err, "GOOGLE_APPLICATION_CREDENTIALS");
		rc = auth_use_key(a, (const char *)data, len, "GOOGLE_APPLICATION_CREDENTIALS file", c,
				  err);
		OPENSSL_cleanse(data, len);
		free(data);
		return rc;
	}
	a->mode = GCP_AUTH_METADATA;
	n = strlen(c->metadata_endpoint) + sizeof(GCP_METADATA_TOKEN_PATH);
	a->token_url = pp_xmalloc(n);
	snprintf(a->token_url, n, "%s%s", c->metadata_endpoint, GCP_METADATA_TOKEN_PATH);
	snprintf(a->source, sizeof(a->source), "metadata server");
	return 0;
}

int gcp_auth_init(struct gcp_auth *a, const struct config *cfg, const struct gcp_conf *c,
		  struct http_client *http, struct pp_err *err)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->http = http;
	if (auth_select(a, cfg, c, err) < 0) {
		gcp_auth_fini(a);
		return -1;
	}
	return 0;
}

void gcp_auth_fini(struct gcp_auth *a)
{
	if (!a)
		return;
	gcp_key_free(&a->key);
	free(a->token_url);
	auth_wipe_free(a->token);
	a->token_url = NULL;
	a->token = NULL;
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
}

/* ---- token fetch ---- */

static int auth_cancelled(struct cancel *cancel, const char *what, struct pp_err *err)
{
	enum cancel_reason why = cancel_why(cancel);

	return pp_err_set(err, why == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
			  "%s: %s", what, cancel_reason_text(why));
}

/* {"error": "invalid_grant", "error_description": "..."} of the token endpoint. The description
 * is Google's text about the request, never the assertion. */
static int auth_token_error(const struct gcp_auth *a, long status, const char *body,
			    struct pp_err *err)
{
	json_t *root = json_loads(body, 0, NULL);
	const char *e = json_string_value(json_object_get(root, "error"));
	const char *d = json_string_value(json_object_get(root, "error_description"));
	char url[256];
	int code = (status == 400 || status == 401) ? PP_UNAUTHENTICATED : http_status_to_code(status);

	http_url_redact(url, sizeof(url), a->token_url);
	pp_err_set(err, code, "GCP token request to %s (credentials from %s%s%s): HTTP %ld %.60s%s%.200s",
		   url, a->source, a->mode == GCP_AUTH_KEY ? ", " : "",
		   a->mode == GCP_AUTH_KEY ? a->key.client_email : "", status, e ? e : "error",
		   d ? ": " : "", d ? d : "");
	json_decref(root);
	return -1;
}

static int auth_token_parse(const struct gcp_auth *a, const char *body, char **ret_token,
			    int64_t *ret_expires_in, struct pp_err *err)
{
	json_t *root = json_loads(body, 0, NULL);
	json_t *tok = json_object_get(root, "access_token");
	json_t *exp = json_object_get(root, "expires_in");
	const char *type = json_string_value(json_object_get(root, "token_type"));
	int rc = -1;

	if (!json_is_string(tok) || json_string_length(tok) == 0 ||
	    json_string_length(tok) > GCP_TOKEN_MAX || !json_is_integer(exp) ||
	    json_integer_value(exp) <= 0 || (type && strcasecmp(type, "Bearer") != 0)) {
		pp_err_set(err, PP_UNAVAILABLE,
			   "GCP token answer from %s has no usable access_token, expires_in and "
			   "token_type Bearer", a->source);
		goto out;
	}
	for (const char *s = json_string_value(tok); *s; s++)
		if (*s <= ' ' || *s > '~') {
			pp_err_set(err, PP_UNAVAILABLE, "GCP token from %s has a character a bearer "
				   "token cannot hold", a->source);
			goto out;
		}
	*ret_token = pp_xstrdup(json_string_value(tok));
	*ret_expires_in = json_integer_value(exp);
	rc = 0;
out:
	if (tok && json_is_string(tok))
		OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
	json_decref(root);
	return rc;
}

static int auth_fetch_key(struct gcp_auth *a, struct cancel *cancel, struct http_response *r,
			  struct pp_err *err)
{
	struct http_form f;
	struct http_request req = { 0 };
	char *jwt = NULL;
	const char *body;
	size_t len;
	int rc = -1;

	http_form_init(&f, 64 * 1024);
	if (gcp_jwt_make(&a->key, GCP_SCOPE, pp_unix_time(), &jwt, err) < 0)
		goto out;
	http_form_add(&f, "grant_type", GCP_JWT_GRANT_TYPE);
	http_form_add(&f, "assertion", jwt);
	if (http_form_finish(&f, &body, &len, err) < 0)
		goto out;
	req.op = "oauth2.token";
	req.method = HTTP_POST;
	req.url = a->token_url;
	req.body = body;
	req.body_len = len;
	req.content_type = "application/x-www-form-urlencoded";
	req.max_response = GCP_TOKEN_RESPONSE_MAX;
	req.cancel = cancel;
	req.flags = HTTP_F_IDEMPOTENT | HTTP_F_RAW_STATUS;
	rc = http_do(a->http, &req, r, err);
out:
	auth_wipe_free(jwt);
	http_form_free(&f);
	return rc;
}

static int auth_fetch_metadata(struct gcp_auth *a, struct cancel *cancel, struct http_response *r,
			       struct pp_err *err)
{
	const struct http_header hdr = { "Metadata-Flavor", "Google" };
	struct http_request req = { 0 };
	const char *flavor;

	req.op = "metadata.token";
	req.method = HTTP_GET;
	req.url = a->token_url;
	req.headers = &hdr;
	req.n_headers = 1;
	req.max_response = GCP_TOKEN_RESPONSE_MAX;
	req.timeout_ms = AUTH_METADATA_TIMEOUT_MS;
	req.cancel = cancel;
	req.flags = HTTP_F_RAW_STATUS;
	if (http_do(a->http, &req, r, err) < 0)
		return pp_err_prefix(err, "no GCP credentials: GCP_CREDENTIALS and "
				     "GOOGLE_APPLICATION_CREDENTIALS are empty and the metadata server "
				     "(GCP_METADATA_ENDPOINT) did not answer");
	flavor = http_response_header(r, "Metadata-Flavor");
	if (r->status == 200 && (!flavor || strcmp(flavor, "Google") != 0))
		return pp_err_set(err, PP_UNAVAILABLE, "the metadata server at GCP_METADATA_ENDPOINT "
				  "did not answer with Metadata-Flavor: Google");
	return 0;
}

static int auth_fetch(struct gcp_auth *a, struct cancel *cancel, char **ret_token,
		      int64_t *ret_expires_in, struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	int rc;

	if (a->mode == GCP_AUTH_KEY)
		rc = auth_fetch_key(a, cancel, &r, err);
	else
		rc = auth_fetch_metadata(a, cancel, &r, err);
	if (rc == 0 && r.status != 200)
		rc = auth_token_error(a, r.status, http_response_text(&r), err);
	if (rc == 0)
		rc = auth_token_parse(a, http_response_text(&r), ret_token, ret_expires_in, err);
	if (r.body.data)
		OPENSSL_cleanse(r.body.data, r.body.len);
	http_response_free(&r);
	return rc;
}

/* ---- cache ---- */

/* Caller holds mu. */
static void auth_store(struct gcp_auth *a, char *token, int64_t expires_in)
{
	uint64_t now = pp_monotonic_ms();
	uint64_t life = (uint64_t)expires_in * 1000;
	uint64_t margin = life / 2 < GCP_TOKEN_REFRESH_MARGIN_MS ? life / 2 : GCP_TOKEN_REFRESH_MARGIN_MS;

	auth_wipe_free(a->token);
	a->token = token;
	a->expires_ms = now + life;
	a->refresh_at_ms = now + life - margin;
	a->fetches++;
}

/* Caller holds mu. A copy of the cached token if it may still be used (fresh enough, or, while
 * another thread refreshes or after a failed refresh, not yet expired). */
static char *auth_cached(struct gcp_auth *a, bool fresh)
{
	uint64_t now = pp_monotonic_ms();

	if (!a->token || now >= (fresh ? a->refresh_at_ms : a->expires_ms))
		return NULL;
	return pp_xstrdup(a->token);
}

static void auth_wait(struct gcp_auth *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += AUTH_WAIT_SLICE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

int gcp_auth_token(struct gcp_auth *a, struct cancel *cancel, char **ret, struct pp_err *err)
{
	char *tok = NULL, *fresh = NULL;
	int64_t expires_in = 0;
	int rc;

	pthread_mutex_lock(&a->mu);
	while (!(tok = auth_cached(a, true)) && a->refreshing) {
		if ((tok = auth_cached(a, false)) != NULL)
			break;
		if (cancel_fired(cancel)) {
			pthread_mutex_unlock(&a->mu);
			return auth_cancelled(cancel, "waiting for a GCP access token", err);
		}
		auth_wait(a);
	}
	if (tok) {
		pthread_mutex_unlock(&a->mu);
		*ret = tok;
		return 0;
	}
	a->refreshing = true;
	pthread_mutex_unlock(&a->mu);

	rc = auth_fetch(a, cancel, &fresh, &expires_in, err);

	pthread_mutex_lock(&a->mu);
	a->refreshing = false;
	if (rc == 0) {
		auth_store(a, fresh, expires_in);
		tok = pp_xstrdup(a->token);
	} else if ((tok = auth_cached(a, false)) != NULL) {
		log_warn("GCP token refresh failed; the current token is still valid",
			 "source=\"%s\" code=%s", a->source, pp_code_name(err ? err->code : PP_UNKNOWN));
		rc = 0;
	}
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (rc == 0)
		*ret = tok;
	return rc;
}

void gcp_auth_invalidate(struct gcp_auth *a, const char *token)
{
	pthread_mutex_lock(&a->mu);
	if (a->token && token && strcmp(a->token, token) == 0) {
		auth_wipe_free(a->token);
		a->token = NULL;
		a->expires_ms = a->refresh_at_ms = 0;
	}
	pthread_mutex_unlock(&a->mu);
}
