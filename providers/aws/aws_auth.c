/*
 * AWS credentials: where they come from, and keeping temporary ones fresh.
 *
 * The chain (first that applies wins; the choice is made once, at start-up, and logged):
 *   1. static keys: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); one without
 *      the other is an error, not a silent fall-through;
 *   2. AWS_PROFILE: that profile of the shared credentials/config files (keys, or role_arn +
 *      web_identity_token_file); a profile that does not exist is an error;
 *   3. web identity (IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE -> STS
 *      AssumeRoleWithWebIdentity (unsigned); the token file is re-read at every refresh, since
 *      the kubelet rotates it;
 *   4. the "default" profile of the shared files, if it holds keys;
 *   5. the instance role, from IMDSv2 (unless AWS_EC2_METADATA_DISABLED).
 *
 * The one idea: temporary credentials (3, 5) are cached and refreshed AWS_CRED_REFRESH_MARGIN_S
 * before they expire, by one thread at a time with no lock held during the network call; other
 * callers wait for that refresh (cancellably) rather than start their own. If a refresh fails
 * while the old credentials are still valid, the old ones are used and a warning is logged.
 * Credentials never reach a log line or an error message.
 */
#include "providers/aws/aws_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/cancel.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define AUTH_WAIT_STEP_MS 100

struct aws_auth {
	/* Set by aws_auth_new, read-only afterwards. */
	enum aws_cred_source source;
	char role_arn[AWS_STR_MAX];
	char token_file[AWS_PATH_MAX];
	char session_name[AWS_STR_MAX];
	char sts_endpoint[AWS_URL_MAX];
	struct http_client *http;     /* not owned */
	struct aws_imds *imds;        /* not owned; NULL when disabled */

	pthread_mutex_t mu;
	pthread_cond_t cv;            /* signalled when a refresh ends; with mu */
	bool refreshing;              /* guarded by mu: a thread is fetching */
	bool have;                    /* guarded by mu */
	struct aws_creds cached;      /* guarded by mu */
};

void aws_creds_wipe(struct aws_creds *c)
{
	explicit_bzero(c, sizeof(*c));
}

void aws_profile_wipe(struct aws_profile *p)
{
	explicit_bzero(p, sizeof(*p));
}

const char *aws_cred_source_name(enum aws_cred_source s)
{
	switch (s) {
	case AWS_CRED_STATIC: return "static";
	case AWS_CRED_PROFILE: return "profile";
	case AWS_CRED_WEB_IDENTITY: return "web-identity";
	case AWS_CRED_IMDS: return "instance-role";
	}
	return "unknown";
}

/* ---- shared files (pure) ---- */

/* "[profile x]" / "[x]" header -> is it the wanted profile? */
static bool profile_header_matches(char *line, const char *profile, bool config_file)
{
	char *end = strrchr(line, ']');
	char *name;

	if (!end)
		return false;
	*end = '\0';
	name = str_trim(line + 1);
	if (config_file && strcmp(profile, "default") != 0) {
		if (!str_has_prefix(name, "profile ") && !str_has_prefix(name, "profile\t"))
			return false;
		name = str_trim(name + 8);
	} else if (config_file && str_has_prefix(name, "profile ")) {
		name = str_trim(name + 8);   /* "[profile default]" is accepted too */
	}
	return strcmp(name, profile) == 0;
}

static int profile_set(struct aws_profile *p, const char *key, const char *value,
		       struct pp_err *err)
{
	static const struct {
		const char *key;
		size_t off;
		size_t size;
	} keys[] = {
#define K(k, field) { k, offsetof(struct aws_profile, field), sizeof(((struct aws_profile *)0)->field) }
		K("aws_access_key_id", akid), K("aws_secret_access_key", secret),
		K("aws_session_token", token), K("region", region), K("role_arn", role_arn),
		K("web_identity_token_file", web_token_file), K("role_session_name", session_name),
#undef K
	};

	for (size_t i = 0; i < PP_ARRAY_SIZE(keys); i++) {
		if (strcmp(key, keys[i].key) != 0)
			continue;
		if (!pp_strlcpy((char *)p + keys[i].off, value, keys[i].size))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "shared AWS file: value of %s is longer than %zu bytes", key,
					  keys[i].size - 1);
		return 0;
	}
	return 0;   /* other keys (output, sso_*, ...) are not ours */
}

int aws_profile_parse(const char *text, const char *profile, bool config_file,
		      struct aws_profile *ret, struct pp_err *err)
{
	char *copy = pp_xstrdup(text), *save = NULL;
	struct aws_profile p;
	bool in = false;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	for (char *line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
		char *eq, *t = str_trim(line);

		if (!*t || *t == '#' || *t == ';')
			continue;
		if (*t == '[') {
			in = profile_header_matches(t, profile, config_file);
			p.found = p.found || in;
			continue;
		}
		eq = strchr(t, '=');
		if (!in || !eq)
			continue;
		*eq = '\0';
		rc = profile_set(&p, str_trim(t), str_trim(eq + 1), err);
	}
	explicit_bzero(copy, strlen(text));
	free(copy);
	if (rc == 0)
		*ret = p;
	aws_profile_wipe(&p);
	return rc;
}

/* Merges the profile from both files (credentials file wins for keys). A missing file is no
 * error; ret->found tells whether either file has the profile. */
static int profile_load(const struct aws_conf *c, const char *profile, struct aws_profile *ret,
			struct pp_err *err)
{
	struct aws_profile fromcfg, fromcred;
	const char *paths[2] = { c->config_file, c->credentials_file };
	struct aws_profile *outs[2] = { &fromcfg, &fromcred };
	int rc = -1;

	memset(&fromcfg, 0, sizeof(fromcfg));
	memset(&fromcred, 0, sizeof(fromcred));
	for (int i = 0; i < 2; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		struct pp_err e = { 0 };

		if (!paths[i][0])
			continue;
		if (file_read_all(paths[i], AWS_SHARED_FILE_MAX, &data, &len, &e) < 0) {
			if (e.code == PP_NOT_FOUND)
				continue;
			*err = e;
			goto out;
		}
		rc = aws_profile_parse((const char *)data, profile, i == 0, outs[i], err);
		explicit_bzero(data, len);
		free(data);
		if (rc < 0) {
			pp_err_prefix(err, "%s", paths[i]);
			goto out;
		}
		rc = -1;
	}
	*ret = fromcfg;
	ret->found = fromcfg.found || fromcred.found;
	if (fromcred.akid[0] || fromcred.secret[0]) {
		memcpy(ret->akid, fromcred.akid, sizeof(ret->akid));
		memcpy(ret->secret, fromcred.secret, sizeof(ret->secret));
		memcpy(ret->token, fromcred.token, sizeof(ret->token));
	}
	rc = 0;
out:
	aws_profile_wipe(&fromcfg);
	aws_profile_wipe(&fromcred);
	return rc;
}

int aws_auth_profile_region(const struct aws_conf *c, char *out, size_t size, struct pp_err *err)
{
	struct aws_profile p;
	int rc;

	if (profile_load(c, c->profile[0] ? c->profile : "default", &p, err) < 0)
		return -1;
	rc = pp_strlcpy(out, p.region, size) ? 0 :
	     pp_err_set(err, PP_INVALID_ARGUMENT, "profile region is too long");
	aws_profile_wipe(&p);
	return rc;
}

/* ---- source selection ---- */

static int auth_copy(char *out, size_t size, const char *value, const char *what,
		     struct pp_err *err)
{
	if (!pp_strlcpy(out, value, size))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is longer than %zu bytes", what, size - 1);
	return 0;
}

static int auth_static(struct aws_auth *a, const struct config *cfg, struct pp_err *err)
{
	const char *id = config_secret(cfg, "AWS_ACCESS_KEY_ID");
	const char *secret = config_secret(cfg, "AWS_SECRET_ACCESS_KEY");

	if (!id[0] || !secret[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s is set but %s is not: static credentials need both",
				  id[0] ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				  id[0] ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	a->source = AWS_CRED_STATIC;
	if (auth_copy(a->cached.akid, sizeof(a->cached.akid), id, "AWS_ACCESS_KEY_ID", err) < 0 ||
	    auth_copy(a->cached.secret, sizeof(a->cached.secret), secret, "AWS_SECRET_ACCESS_KEY", err) < 0 ||
	    auth_copy(a->cached.token, sizeof(a->cached.token), config_secret(cfg, "AWS_SESSION_TOKEN"),
		      "AWS_SESSION_TOKEN", err) < 0)
		return -1;
	a->have = true;
	return 0;
}

static int auth_web_identity(struct aws_auth *a, const char *role, const char *file,
			     const char *session, const char *where, struct pp_err *err)
{
	if (!file[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s: a role ARN is set but no web identity token file "
				  "(AWS_WEB_IDENTITY_TOKEN_FILE)", where);
	a->source = AWS_CRED_WEB_IDENTITY;
	if (auth_copy(a->role_arn, sizeof(a->role_arn), role, "role ARN", err) < 0 ||
	    auth_copy(a->token_file, sizeof(a->token_file), file, "web identity token file", err) < 0 ||
	    auth_copy(a->session_name, sizeof(a->session_name), session, "role session name", err) < 0)
		return -1;
	return 0;
}

/* 1 when the profile gave a source, 0 when it has nothing usable, -1 on error. */
static int auth_profile(struct aws_auth *a, const struct aws_conf *c, const char *name,
			bool must_exist, struct pp_err *err)
{
	struct aws_profile p;
	int rc = 0;

	if (profile_load(c, name, &p, err) < 0)
		return -1;
	if (!p.found && must_exist) {
		rc = pp_err_set(err, PP_INVALID_ARGUMENT,
				"AWS_PROFILE %s is in neither %s nor %s", name,
				c->credentials_file[0] ? c->credentials_file : "(no credentials file)",
				c->config_file[0] ? c->config_file : "(no config file)");
	} else if (p.akid[0] && p.secret[0]) {
		a->source = AWS_CRED_PROFILE;
		memcpy(a->cached.akid, p.akid, sizeof(p.akid));
		memcpy(a->cached.secret, p.secret, sizeof(p.secret));
		memcpy(a->cached.token, p.token, sizeof(p.token));
		a->have = true;
		rc = 1;
	} else if (p.role_arn[0]) {
		rc = auth_web_identity(a, p.role_arn, p.web_token_file,
				       p.session_name[0] ? p.session_name : c->session_name,
				       "shared config profile", err) < 0 ? -1 : 1;
	} else if (must_exist) {
		rc = pp_err_set(err, PP_INVALID_ARGUMENT,
				"AWS_PROFILE %s has neither keys (aws_access_key_id, aws_secret_access_key) "
				"nor role_arn + web_identity_token_file", name);
	}
	aws_profile_wipe(&p);
	return rc;
}

static int auth_choose(struct aws_auth *a, const struct aws_conf *c, const struct config *cfg,
		       struct pp_err *err)
{
	int rc;

	if (config_secret(cfg, "AWS_ACCESS_KEY_ID")[0] || config_secret(cfg, "AWS_SECRET_ACCESS_KEY")[0])
		return auth_static(a, cfg, err);
	if (c->profile[0])
		return auth_profile(a, c, c->profile, true, err) < 0 ? -1 : 0;
	if (c->role_arn[0])
		return auth_web_identity(a, c->role_arn, c->web_token_file, c->session_name,
					 "AWS_ROLE_ARN", err);
	rc = auth_profile(a, c, "default", false, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (a->imds) {
		a->source = AWS_CRED_IMDS;
		return 0;
	}
	return pp_err_set(err, PP_UNAUTHENTICATED,
			  "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
			  "AWS_PROFILE, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IMDS is disabled)");
}

struct aws_auth *aws_auth_new(const struct aws_conf *conf, const struct config *cfg,
			      struct http_client *http, struct aws_imds *imds, struct pp_err *err)
{
	struct aws_auth *a = pp_xcalloc(1, sizeof(*a));

	a->http = http;
	a->imds = imds;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (auth_copy(a->sts_endpoint, sizeof(a->sts_endpoint), conf->sts_endpoint, "STS endpoint",
		      err) < 0 || auth_choose(a, conf, cfg, err) < 0) {
		aws_auth_free(a);
		return NULL;
	}
	log_info("aws: credentials source", "source=%s", aws_cred_source_name(a->source));
	return a;
}

void aws_auth_free(struct aws_auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

enum aws_cred_source aws_auth_source(const struct aws_auth *a)
{
	return a->source;
}

/* ---- fetching temporary credentials ---- */

static int sts_fail(const struct http_response *resp, struct pp_err *err)
{
	struct aws_error e = { 0 };
	char excerpt[128];

	if (aws_xml_error((const char *)resp->body.data, resp->body.len, &e) == 0)
		return pp_err_set(err, aws_error_code_map(e.code, resp->status),
				  "STS AssumeRoleWithWebIdentity: %s: %s", e.code, e.message);
	str_quote(excerpt, sizeof(excerpt), http_response_text(resp));
	return pp_err_set(err, http_status_to_code(resp->status),
			  "STS AssumeRoleWithWebIdentity: HTTP %ld: %s", resp->status, excerpt);
}

static int fetch_web_identity(struct aws_auth *a, struct aws_creds *ret, struct cancel *cancel,
			      struct pp_err *err)
{
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct http_request req = {
		.op = "AssumeRoleWithWebIdentity", .method = HTTP_POST, .url = a->sts_endpoint,
		.content_type = AWS_FORM_CONTENT_TYPE, .max_response = AWS_MAX_RESPONSE,
		.cancel = cancel, .flags = HTTP_F_RAW_STATUS | HTTP_F_IDEMPOTENT,
	};
	uint8_t *token = NULL;
	const char *body;
	size_t len = 0, body_len;
	int rc = -1;

	if (file_read_all(a->token_file, AWS_WEB_TOKEN_MAX, &token, &len, err) < 0)
		return pp_err_prefix(err, "web identity token file");
	aws_form_assume_role_web_identity(&f, a->role_arn, a->session_name, str_trim((char *)token));
	explicit_bzero(token, len);
	free(token);
	if (http_form_finish(&f, &body, &body_len, err) < 0)
		goto out;
	req.body = body;
	req.body_len = body_len;
	if (http_do(a->http, &req, &resp, err) < 0) {
		pp_err_prefix(err, "STS AssumeRoleWithWebIdentity");
		goto out;
	}
	if (resp.status < 200 || resp.status >= 300)
		sts_fail(&resp, err);
	else
		rc = aws_xml_sts_credentials((const char *)resp.body.data, resp.body.len, ret, err);
out:
	if (resp.body.data)
		explicit_bzero(resp.body.data, resp.body.len);
	http_response_free(&resp);
	http_form_free(&f);
	return rc;
}

static int imds_json_str(json_t *o, const char *key, char *out, size_t size, struct pp_err *err)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (!v || !v[0])
		return pp_err_set(err, PP_INTERNAL, "IMDS instance-role credentials have no %s", key);
	if (!pp_strlcpy(out, v, size))
		return pp_err_set(err, PP_INTERNAL, "IMDS instance-role credentials: %s too long", key);
	return 0;
}

static int fetch_imds(struct aws_auth *a, struct aws_creds *ret, struct cancel *cancel,
		      struct pp_err *err)
{
	char role[AWS_STR_MAX], path[AWS_STR_MAX + 32], *text, *nl, when[64];
	struct aws_creds c;
	json_error_t je;
	json_t *o;
	int rc = -1;

	if (aws_imds_get(a->imds, "iam/security-credentials/", role, sizeof(role), cancel, err) < 0)
		return pp_err_prefix(err, "instance role");
	nl = strchr(role, '\n');
	if (nl)
		*nl = '\0';
	if (!role[0])
		return pp_err_set(err, PP_UNAUTHENTICATED, "the instance has no IAM role (IMDS)");
	snprintf(path, sizeof(path), "iam/security-credentials/%s", role);
	text = pp_xmalloc(AWS_TOKEN_MAX * 2);
	memset(&c, 0, sizeof(c));
	if (aws_imds_get(a->imds, path, text, AWS_TOKEN_MAX * 2, cancel, err) < 0)
		goto out;
	o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		pp_err_set(err, PP_INTERNAL, "IMDS instance-role credentials are not a JSON object");
	} else if (!json_string_value(json_object_get(o, "Code")) ||
		   strcmp(json_string_value(json_object_get(o, "Code")), "Success") != 0) {
		pp_err_set(err, PP_UNAUTHENTICATED, "IMDS instance-role credentials: Code is not Success");
	} else if (imds_json_str(o, "AccessKeyId", c.akid, sizeof(c.akid), err) == 0 &&
		   imds_json_str(o, "SecretAccessKey", c.secret, sizeof(c.secret), err) == 0 &&
		   imds_json_str(o, "Token", c.token, sizeof(c.token), err) == 0 &&
		   imds_json_str(o, "Expiration", when, sizeof(when), err) == 0) {
		if (aws_parse_iso8601(when, &c.expires) < 0) {
			pp_err_set(err, PP_INTERNAL, "IMDS instance-role credentials: bad Expiration");
		} else {
			*ret = c;
			rc = 0;
		}
	}
	json_decref(o);
out:
	explicit_bzero(text, AWS_TOKEN_MAX * 2);
	free(text);
	aws_creds_wipe(&c);
	return rc;
}

static bool creds_fresh(const struct aws_creds *c, int64_t now)
{
	return c->expires == 0 || c->expires - now > AWS_CRED_REFRESH_MARGIN_S;
}

/* Waits (with mu held) while another thread refreshes; -1 if the cancel token fired. */
static int auth_wait_refresh(struct aws_auth *a, struct cancel *cancel, struct pp_err *err)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += AUTH_WAIT_STEP_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
	if (cancel_fired(cancel))
		return pp_err_set(err, cancel_why(cancel) == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED :
				  PP_CANCELLED, "waiting for AWS credentials: %s",
				  cancel_reason_text(cancel_why(cancel)));
	return 0;
}

static int auth_fetch(struct aws_auth *a, struct aws_creds *ret, struct cancel *cancel,
		      struct pp_err *err)
{
	if (a->source == AWS_CRED_WEB_IDENTITY)
		return fetch_web_identity(a, ret, cancel, err);
	if (a->source == AWS_CRED_IMDS)
		return fetch_imds(a, ret, cancel, err);
	return pp_err_set(err, PP_INTERNAL, "AWS credentials source %s has no credentials",
			  aws_cred_source_name(a->source));
}

int aws_auth_get(struct aws_auth *a, struct aws_creds *ret, struct cancel *cancel,
		 struct pp_err *err)
{
	struct aws_creds fresh;
	int rc;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (a->have && creds_fresh(&a->cached, pp_unix_time())) {
			*ret = a->cached;
			pthread_mutex_unlock(&a->mu);
			return 0;
		}
		if (!a->refreshing)
			break;
		if (auth_wait_refresh(a, cancel, err) < 0) {
			pthread_mutex_unlock(&a->mu);
			return -1;
		}
	}
	a->refreshing = true;
	pthread_mutex_unlock(&a->mu);

	memset(&fresh, 0, sizeof(fresh));
	rc = auth_fetch(a, &fresh, cancel, err);

	pthread_mutex_lock(&a->mu);
	a->refreshing = false;
	if (rc == 0) {
		a->cached = fresh;
		a->have = true;
		log_debug("aws: credentials refreshed", "source=%s expires=%lld",
			  aws_cred_source_name(a->source), (long long)fresh.expires);
	} else if (a->have && a->cached.expires > pp_unix_time()) {
		log_warn("aws: credentials refresh failed, using the current ones until they expire",
			 "source=%s expires=%lld", aws_cred_source_name(a->source),
			 (long long)a->cached.expires);
		rc = 0;
	}
	if (rc == 0)
		*ret = a->cached;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	aws_creds_wipe(&fresh);
	return rc;
}

void aws_auth_invalidate(struct aws_auth *a)
{
	pthread_mutex_lock(&a->mu);
	if (a->source == AWS_CRED_WEB_IDENTITY || a->source == AWS_CRED_IMDS) {
		aws_creds_wipe(&a->cached);
		a->have = false;
	}
	pthread_mutex_unlock(&a->mu);
}
