/*
 * Bearer tokens for ARM, from one of three sources chosen once at start-up:
 *
 *   client secret       AZURE_CLIENT_SECRET set: OAuth2 client credentials grant
 *   workload identity   AZURE_FEDERATED_TOKEN_FILE set (AKS webhook): the same grant with the
 *                       file's Kubernetes token as client_assertion; the file is re-read at every
 *                       refresh because the kubelet rotates it
 *   managed identity    neither: IMDS on the VM or node (upstream lacks this one)
 *
 * The one idea: the token is cached and refreshed before it expires (five minutes before, or
 * half-way through a short lifetime), by one thread at a time and without holding the lock
 * across the network call. While one thread refreshes, the others keep using the old token as
 * long as it is valid, and wait only when there is none. Tokens and secrets are wiped when
 * freed and never reach a log line or an error message.
 */
#include "providers/azure/azure_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define AUTH_WAIT_SLICE_MS 50
#define AUTH_FORM_MAX (128u * 1024)
#define AUTH_ERR_DESC_MAX 200
#define AUTH_JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const char *azure_cred_kind_name(enum azure_cred_kind k)
{
	switch (k) {
	case AZURE_CRED_CLIENT_SECRET: return "client-secret";
	case AZURE_CRED_WORKLOAD: return "workload-identity";
	case AZURE_CRED_MANAGED: return "managed-identity";
	}
	return "unknown";
}

void azure_secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ---- parsing ---- */

static int token_expires_in(const json_t *v, int64_t *ret)
{
	int64_t n;

	if (json_is_integer(v)) {
		*ret = (int64_t)json_integer_value(v);
		return *ret > 0 ? 0 : -1;
	}
	/* IMDS sends numbers as strings */
	if (json_is_string(v) && parse_int64(json_string_value(v), &n) == 0 && n > 0) {
		*ret = n;
		return 0;
	}
	return -1;
}

int azure_token_parse(const char *body, char **ret_token, int64_t *ret_expires_in,
		      struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *type, *tok;
	int64_t exp;
	int rc = -1;

	if (!json_is_object(root)) {
		pp_err_set(err, PP_UNAUTHENTICATED, "token response is not a JSON object");
		goto out;
	}
	type = json_string_value(json_object_get(root, "token_type"));
	tok = json_string_value(json_object_get(root, "access_token"));
	if (!tok || !tok[0] || strlen(tok) > AZURE_TOKEN_MAX || strpbrk(tok, " \t\r\n")) {
		pp_err_set(err, PP_UNAUTHENTICATED, "token response has no usable access_token");
		goto out;
	}
	if (type && strcasecmp(type, "Bearer") != 0) {
		pp_err_set(err, PP_UNAUTHENTICATED, "token response has token_type \"%.20s\", not Bearer", type);
		goto out;
	}
	if (token_expires_in(json_object_get(root, "expires_in"), &exp) < 0) {
		pp_err_set(err, PP_UNAUTHENTICATED, "token response has no valid expires_in");
		goto out;
	}
	*ret_token = pp_xstrdup(tok);
	*ret_expires_in = exp;
	rc = 0;
out:
	if (root) {
		/* the token inside the parsed tree is a copy: wipe it too */
		json_t *t = json_object_get(root, "access_token");

		if (json_is_string(t))
			explicit_bzero((char *)json_string_value(t), json_string_length(t));
		json_decref(root);
	}
	return rc;
}

/* AAD: {"error":"invalid_client","error_description":"AADSTS..."}; IMDS the same names. */
static int token_error(const struct http_response *r, const char *source, const char *url,
		       struct pp_err *err)
{
	json_t *root = json_loads(http_response_text(r), 0, NULL);
	const char *e = json_string_value(json_object_get(root, "error"));
	const char *d = json_string_value(json_object_get(root, "error_description"));
	char safe[AZURE_URL_MAX];
	int code = r->status == 400 || r->status == 401 ? PP_UNAUTHENTICATED : http_status_to_code(r->status);

	http_url_redact(safe, sizeof(safe), url);
	pp_err_set(err, code, "getting an Azure token (%s) from %s: %.60s: %.*s (HTTP %ld)", source,
		   safe, e ? e : "no error code", AUTH_ERR_DESC_MAX, d ? d : "no description", r->status);
	json_decref(root);
	return -1;
}

/* ---- fetching ---- */

static void auth_strip_slash(const char *s, size_t *ret_len)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	*ret_len = n;
}

static int auth_urls(struct azure_auth *a, const struct azure_conf *c, struct pp_err *err)
{
	size_t alen, ilen, hlen;
	int n;

	auth_strip_slash(c->arm_audience, &alen);
	if (snprintf(a->scope, sizeof(a->scope), "%.*s/.default", (int)alen, c->arm_audience) >=
	    (int)sizeof(a->scope))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "AZURE_ARM_AUDIENCE is too long");
	if (a->kind == AZURE_CRED_MANAGED) {
		char *res, *id = NULL;
		char aud[AZURE_URL_MAX];

		auth_strip_slash(c->imds_endpoint, &ilen);
		snprintf(aud, sizeof(aud), "%.*s/", (int)alen, c->arm_audience);
		res = http_urlencode_dup(aud);
		if (c->client_id[0])
			id = http_urlencode_dup(c->client_id);
		n = snprintf(a->token_url, sizeof(a->token_url),
			     "%.*s/metadata/identity/oauth2/token?api-version=%s&resource=%s%s%s",
			     (int)ilen, c->imds_endpoint, AZURE_API_IMDS, res, id ? "&client_id=" : "",
			     id ? id : "");
		free(res);
		free(id);
	} else {
		auth_strip_slash(c->authority_host, &hlen);
		n = snprintf(a->token_url, sizeof(a->token_url), "%.*s/%s/oauth2/v2.0/token", (int)hlen,
			     c->authority_host, c->tenant_id);
	}
	if (n < 0 || (size_t)n >= sizeof(a->token_url))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "the token endpoint URL is too long");
	return 0;
}

/* The federated token: the file as it is now (the kubelet rewrites it), trimmed. */
static int auth_read_assertion(const struct azure_auth *a, char **ret, struct pp_err *err)
{
	uint8_t *data;
	size_t len;
	char *t;

	if (file_read_all(a->token_file, AZURE_TOKEN_FILE_MAX, &data, &len, err) < 0)
		return pp_err_prefix(err, "reading AZURE_FEDERATED_TOKEN_FILE");
	t = str_trim((char *)data);
	if (!t[0] || strlen(t) != strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					      "0123456789-_.=")) {
		explicit_bzero(data, len);
		free(data);
		return pp_err_set(err, PP_UNAUTHENTICATED, "AZURE_FEDERATED_TOKEN_FILE %s does not hold a "
				  "JWT", a->token_file);
	}
	*ret = (char *)data;
	return 0;
}

static int auth_form(const struct azure_auth *a, struct http_form *f, struct pp_err *err)
{
	char *assertion = NULL;

	http_form_add(f, "grant_type", "client_credentials");
	http_form_add(f, "client_id", a->client_id);
	http_form_add(f, "scope", a->scope);
	if (a->kind == AZURE_CRED_CLIENT_SECRET) {
		http_form_add(f, "client_secret", a->client_secret);
	} else {
		if (auth_read_assertion(a, &assertion, err) < 0)
			return -1;
		http_form_add(f, "client_assertion_type", AUTH_JWT_BEARER);
		http_form_add(f, "client_assertion", assertion);
		azure_secret_free(assertion);
	}
	return 0;
}

static int auth_fetch(struct azure_auth *a, struct cancel *cancel, char **ret_token,
		      int64_t *ret_expires, struct pp_err *err)
{
	static const struct http_header imds_hdr[] = { { "Metadata", "true" } };
	struct http_response r = HTTP_RESPONSE_INIT;
	struct http_request req = {
		.op = "GetToken", .url = a->token_url, .cancel = cancel,
		.flags = HTTP_F_IDEMPOTENT | HTTP_F_RAW_STATUS, .max_response = AZURE_TOKEN_RESPONSE_MAX,
	};
	struct http_form f;
	const char *body;
	size_t len;
	int rc = -1;

	http_form_init(&f, AUTH_FORM_MAX);
	if (a->kind == AZURE_CRED_MANAGED) {
		req.method = HTTP_GET;
		req.headers = imds_hdr;
		req.n_headers = 1;
	} else {
		if (auth_form(a, &f, err) < 0 || http_form_finish(&f, &body, &len, err) < 0)
			goto out;
		req.method = HTTP_POST;
		req.body = body;
		req.body_len = len;
		req.content_type = "application/x-www-form-urlencoded";
	}
	if (http_do(a->http, &req, &r, err) < 0) {
		pp_err_prefix(err, "getting an Azure token (%s)", azure_cred_kind_name(a->kind));
		goto out;
	}
	if (r.status != 200)
		token_error(&r, azure_cred_kind_name(a->kind), a->token_url, err);
	else if (azure_token_parse(http_response_text(&r), ret_token, ret_expires, err) == 0)
		rc = 0;
	else
		pp_err_prefix(err, "getting an Azure token (%s)", azure_cred_kind_name(a->kind));
out:
	if (r.body.data)
		explicit_bzero(r.body.data, r.body.len);
	http_response_free(&r);
	http_form_free(&f);
	return rc;
}

/* ---- the cache ---- */

int azure_auth_init(struct azure_auth *a, const struct azure_conf *c, struct http_client *http,
		    struct pp_err *err)
{
	pthread_condattr_t ca;

	memset(a, 0, sizeof(*a));
	a->http = http;
	a->client_id = c->client_id;
	a->client_secret = c->client_secret;
	a->token_file = c->federated_token_file;
	if (c->client_secret[0])
		a->kind = AZURE_CRED_CLIENT_SECRET;
	else if (c->federated_token_file[0])
		a->kind = AZURE_CRED_WORKLOAD;
	else
		a->kind = AZURE_CRED_MANAGED;
	if (auth_urls(a, c, err) < 0)
		return -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void azure_auth_fini(struct azure_auth *a)
{
	if (!a || !a->http)
		return;
	azure_secret_free(a->token);
	a->token = NULL;
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	a->http = NULL;
}

static void auth_wait_slice(struct azure_auth *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += AUTH_WAIT_SLICE_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

/* Stores a new token; caller holds mu. */
static void auth_store(struct azure_auth *a, char *token, int64_t expires_in, uint64_t now)
{
	int64_t early = expires_in / 2 < AZURE_TOKEN_REFRESH_S ? expires_in / 2 : AZURE_TOKEN_REFRESH_S;

	azure_secret_free(a->token);
	a->token = token;
	a->expires_ms = now + (uint64_t)expires_in * 1000;
	a->refresh_ms = now + (uint64_t)(expires_in - early) * 1000;
}

/* One refresh by this thread; caller holds mu and set refreshing. Returns with mu held. */
static int auth_refresh(struct azure_auth *a, struct cancel *cancel, struct pp_err *err)
{
	char *tok = NULL;
	int64_t exp = 0;
	uint64_t t0 = pp_monotonic_ms();
	int rc;

	a->fetches++;
	pthread_mutex_unlock(&a->mu);
	rc = auth_fetch(a, cancel, &tok, &exp, err);
	pthread_mutex_lock(&a->mu);
	a->refreshing = false;
	a->generation++;
	if (rc == 0) {
		auth_store(a, tok, exp < AZURE_TOKEN_MIN_LIFETIME_S ? AZURE_TOKEN_MIN_LIFETIME_S : exp, t0);
		log_debug("azure token refreshed", "source=%s expires_in_s=%lld",
			  azure_cred_kind_name(a->kind), (long long)exp);
	} else if (err) {
		a->last_err = *err;
	}
	pthread_cond_broadcast(&a->cv);
	return rc;
}

int azure_auth_token(struct azure_auth *a, struct cancel *cancel, char **ret, struct pp_err *err)
{
	uint64_t gen, now;
	int rc = -1;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		now = pp_monotonic_ms();
		if (a->token && now < a->refresh_ms)
			break;
		if (!a->refreshing) {
			a->refreshing = true;
			if (auth_refresh(a, cancel, err) == 0)
				break;
			if (a->token && pp_monotonic_ms() < a->expires_ms) {
				log_warn("azure token refresh failed; the current token is still valid",
					 "source=%s", azure_cred_kind_name(a->kind));
				break;
			}
			goto out;
		}
		if (a->token && now < a->expires_ms)
			break;   /* someone refreshes; the old token still works */
		gen = a->generation;
		while (a->refreshing && a->generation == gen && !cancel_fired(cancel))
			auth_wait_slice(a);
		if (cancel_fired(cancel)) {
			pp_err_set(err, cancel_why(cancel) == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED :
				   PP_CANCELLED, "waiting for an Azure token: %s",
				   cancel_reason_text(cancel_why(cancel)));
			goto out;
		}
		if (a->generation != gen && !(a->token && pp_monotonic_ms() < a->expires_ms)) {
			if (err)
				*err = a->last_err;
			goto out;
		}
	}
	*ret = pp_xstrdup(a->token);
	rc = 0;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void azure_auth_invalidate(struct azure_auth *a, const char *token)
{
	pthread_mutex_lock(&a->mu);
	if (a->token && strcmp(a->token, token) == 0) {
		a->refresh_ms = 0;
		a->expires_ms = 0;
	}
	pthread_mutex_unlock(&a->mu);
}
