/*
 * Kubernetes API client: see k8s_client.h. The kubeconfig reader is deliberately small and
 * strict: it reads only the current context's cluster and user, and refuses what it does not
 * implement (exec plugins, auth providers, basic auth) with a message naming it, rather than
 * silently running unauthenticated.
 */
#include "adaptor/k8s_client.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/util.h"

#define K8S_PATH_MAX 1024
#define K8S_URL_MAX 2048
#define K8S_SERVER_MAX 512
#define K8S_FILE_PATH_MAX 1024
#define K8S_MAX_IN_FLIGHT 8u
#define K8S_STATUS_MSG_MAX 300

struct k8s_client {
	struct http_client *http;       /* [const] thread-safe */
	char server[K8S_SERVER_MAX];    /* [const] "https://10.0.0.1:443", no trailing slash */
	char namespace[256];            /* [const] */
	char token_file[K8S_FILE_PATH_MAX]; /* [const] "" = static token or none */
	pthread_mutex_t lock;
	char *token;                    /* [lock] current bearer token, or NULL */
	struct stat token_stat;         /* [lock] of the file the token was read from */
};

/* ------------------------------------------------------------------ token */

static int token_read(const char *path, char **ret, struct pp_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *tok;

	if (file_read_all(path, K8S_TOKEN_MAX, &data, &len, err) < 0)
		return pp_err_prefix(err, "reading the Kubernetes token");
	tok = pp_xstrndup((const char *)data, len);
	explicit_bzero(data, len);
	free(data);
	str_trim(tok);
	if (!*tok) {
		free(tok);
		return pp_err_set(err, PP_UNAUTHENTICATED, "Kubernetes token file %s is empty", path);
	}
	*ret = tok;
	return 0;
}

static void token_set(struct k8s_client *c, char *tok)
{
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	c->token = tok;
}

/* The current token, copied (caller wipes and frees); re-read when the file changed. */
static char *token_current(struct k8s_client *c, struct pp_err *err)
{
	struct stat st;
	char *tok = NULL;
	char *copy = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->token_file[0] && stat(c->token_file, &st) == 0 &&
	    (st.st_ino != c->token_stat.st_ino || st.st_size != c->token_stat.st_size ||
	     st.st_mtim.tv_sec != c->token_stat.st_mtim.tv_sec ||
	     st.st_mtim.tv_nsec != c->token_stat.st_mtim.tv_nsec)) {
		if (token_read(c->token_file, &tok, err) < 0) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		token_set(c, tok);
		c->token_stat = st;
	}
	if (c->token)
		copy = pp_xstrdup(c->token);
	pthread_mutex_unlock(&c->lock);
	if (!copy)
		copy = pp_xstrdup("");
	return copy;
}

/* ------------------------------------------------------------------ construction */

static struct k8s_client *client_alloc(void)
{
	struct k8s_client *c = pp_xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	http_client_free(c->http);
	token_set(c, NULL);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int client_http(struct k8s_client *c, const char *ca_file, const char *cert_file,
		       const char *key_file, bool insecure, struct pp_err *err)
{
	struct http_client_config hc = {
		.name = "k8s",
		.max_in_flight = K8S_MAX_IN_FLIGHT,
		.timeout_ms = K8S_TIMEOUT_MS,
		.max_attempts = 3,
		.max_response = K8S_RESPONSE_MAX,
		.ca_file = ca_file && *ca_file ? ca_file : NULL,
		.client_cert_file = cert_file && *cert_file ? cert_file : NULL,
		.client_key_file = key_file && *key_file ? key_file : NULL,
		.insecure = insecure,
	};
	size_t n = strlen(c->server);

	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	if (!str_has_prefix(c->server, "https://") && !str_has_prefix(c->server, "http://"))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "Kubernetes API server %s is not an http(s) URL", c->server);
	c->http = http_client_new(&hc, err);
	return c->http ? 0 : -1;
}

struct k8s_client *k8s_client_new_incluster(const char *sa_dir, struct pp_err *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct k8s_client *c;
	char ca[K8S_FILE_PATH_MAX];
	char ns_path[K8S_FILE_PATH_MAX];
	uint8_t *ns = NULL;
	size_t ns_len = 0;
	int n;

	if (!sa_dir)
		sa_dir = K8S_SA_DIR_DEFAULT;
	if (!host || !*host || !port || !*port) {
		pp_err_set(err, PP_FAILED_PRECONDITION,
			   "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
		return NULL;
	}
	c = client_alloc();
	/* An IPv6 service address needs brackets in the URL. */
	n = snprintf(c->server, sizeof(c->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		     host, port);
	if (n < 0 || (size_t)n >= sizeof(c->server) ||
	    snprintf(c->token_file, sizeof(c->token_file), "%s/token", sa_dir) >= (int)sizeof(c->token_file) ||
	    snprintf(ca, sizeof(ca), "%s/ca.crt", sa_dir) >= (int)sizeof(ca) ||
	    snprintf(ns_path, sizeof(ns_path), "%s/namespace", sa_dir) >= (int)sizeof(ns_path)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "Kubernetes service address or service-account path is too long");
		goto fail;
	}
	if (access(c->token_file, R_OK) < 0) {
		pp_err_errno(err, PP_FAILED_PRECONDITION, errno, "not in a cluster: no service-account token %s",
			     c->token_file);
		goto fail;
	}
	if (file_read_all(ns_path, sizeof(c->namespace) - 1, &ns, &ns_len, NULL) == 0) {
		snprintf(c->namespace, sizeof(c->namespace), "%.*s", (int)ns_len, (const char *)ns);
		str_trim(c->namespace);
		free(ns);
	}
	if (client_http(c, ca, NULL, NULL, false, err) < 0)
		goto fail;
	free(token_current(c, err));   /* read it once now: a broken token fails the start */
	if (!c->token)
		goto fail;
	return c;
fail:
	k8s_client_free(c);
	return NULL;
}

const char *k8s_client_server(const struct k8s_client *c)
{
	return c->server;
}

const char *k8s_client_namespace(const struct k8s_client *c)
{
	return c->namespace;
}

struct http_client *k8s_client_http(struct k8s_client *c)
{
	return c->http;
}

/* ------------------------------------------------------------------ kubeconfig */

struct kubeconfig {
	yaml_document_t doc;
	const char *path;
	char dir[K8S_FILE_PATH_MAX];
	const char *scratch;
};

static const char *yscalar(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static yaml_node_t *ymap_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = yscalar(yaml_document_get_node(doc, p->key));

		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *ymap_str(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	const char *s = yscalar(ymap_get(doc, map, key));

	return s && *s ? s : NULL;
}

/* The `inner` mapping of the entry named `name` in the list `list` ("clusters", "users",
 * "contexts"): [{name: x, cluster: {...}}]. */
static yaml_node_t *ylist_find(yaml_document_t *doc, yaml_node_t *root, const char *list,
			       const char *inner, const char *name)
{
	yaml_node_t *seq = ymap_get(doc, root, list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
		yaml_node_t *e = yaml_document_get_node(doc, *i);
		const char *n = ymap_str(doc, e, "name");

		if (n && strcmp(n, name) == 0)
			return ymap_get(doc, e, inner);
	}
	return NULL;
}

/* A file named by the kubeconfig, relative to the kubeconfig's directory. */
static int kc_path(const struct kubeconfig *kc, const char *name, char *out, size_t size,
		   struct pp_err *err)
{
	int n = name[0] == '/' ? snprintf(out, size, "%s", name) :
				 snprintf(out, size, "%s/%s", kc->dir, name);

	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "kubeconfig %s: path %s is too long", kc->path, name);
	return 0;
}

/* "<field>" (a path) or "<field>-data" (inline base64, written to scratch/<out_name>). */
static int kc_file(const struct kubeconfig *kc, yaml_node_t *map, const char *field,
		   const char *out_name, char *out, size_t size, struct pp_err *err)
{
	char data_key[64];
	const char *path = ymap_str((yaml_document_t *)&kc->doc, map, field);
	const char *data;
	uint8_t *bytes = NULL;
	size_t len = 0;
	int rc;

	snprintf(data_key, sizeof(data_key), "%s-data", field);
	data = ymap_str((yaml_document_t *)&kc->doc, map, data_key);
	out[0] = '\0';
	if (path)
		return kc_path(kc, path, out, size, err);
	if (!data)
		return 0;
	if (base64_decode(data, strlen(data), &bytes, &len, err) < 0)
		return pp_err_prefix(err, "kubeconfig %s: %s", kc->path, data_key);
	if (snprintf(out, size, "%s/%s", kc->scratch, out_name) >= (int)size) {
		free(bytes);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "kubeconfig scratch directory %s is too long", kc->scratch);
	}
	rc = file_write_atomic(out, bytes, len, 0600, err);
	explicit_bzero(bytes, len);
	free(bytes);
	return rc;
}

static int kc_load(struct kubeconfig *kc, const char *path, struct pp_err *err)
{
	yaml_parser_t p;
	uint8_t *data = NULL;
	size_t len = 0;
	char *slash;
	int ok;

	if (file_read_all(path, K8S_KUBECONFIG_MAX, &data, &len, err) < 0)
		return pp_err_prefix(err, "reading kubeconfig");
	snprintf(kc->dir, sizeof(kc->dir), "%s", path);
	slash = strrchr(kc->dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(kc->dir, sizeof(kc->dir), ".");
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, data, len);
	ok = yaml_parser_load(&p, &kc->doc);
	if (ok && !yaml_document_get_root_node(&kc->doc)) {
		yaml_document_delete(&kc->doc);
		ok = 0;
	}
	if (!ok)
		pp_err_set(err, PP_INVALID_ARGUMENT, "kubeconfig %s is not valid YAML (line %zu: %s)", path,
			   p.problem_mark.line + 1, p.problem ? p.problem : "empty document");
	yaml_parser_delete(&p);
	explicit_bzero(data, len);
	free(data);
	return ok ? 0 : -1;
}

static int kc_user(struct k8s_client *c, struct kubeconfig *kc, yaml_node_t *user, char *cert,
		   char *key, size_t size, struct pp_err *err)
{
	yaml_document_t *doc = &kc->doc;
	const char *token = ymap_str(doc, user, "token");
	const char *token_file = ymap_str(doc, user, "tokenFile");

	if (ymap_get(doc, user, "exec") || ymap_get(doc, user, "auth-provider") ||
	    ymap_get(doc, user, "username"))
		return pp_err_set(err, PP_UNIMPLEMENTED,
				  "kubeconfig %s: only token, tokenFile and client certificates are supported (not exec, auth-provider or username/password)",
				  kc->path);
	if (kc_file(kc, user, "client-certificate", "client.crt", cert, size, err) < 0 ||
	    kc_file(kc, user, "client-key", "client.key", key, size, err) < 0)
		return -1;
	if (!cert[0] != !key[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "kubeconfig %s: client-certificate and client-key go together", kc->path);
	if (token)
		token_set(c, pp_xstrdup(token));
	else if (token_file && kc_path(kc, token_file, c->token_file, sizeof(c->token_file), err) < 0)
		return -1;
	return 0;
}

struct k8s_client *k8s_client_new_kubeconfig(const char *path, const char *scratch_dir,
					     struct pp_err *err)
{
	struct kubeconfig kc = { .path = path, .scratch = scratch_dir };
	struct k8s_client *c = client_alloc();
	yaml_document_t *doc = &kc.doc;
	yaml_node_t *root, *ctx, *cluster, *user;
	const char *cur, *cname, *uname, *server, *insecure;
	char ca[K8S_FILE_PATH_MAX], cert[K8S_FILE_PATH_MAX], key[K8S_FILE_PATH_MAX];
	bool loaded = false;

	if (kc_load(&kc, path, err) < 0)
		goto fail;
	loaded = true;
	root = yaml_document_get_root_node(doc);
	cur = ymap_str(doc, root, "current-context");
	if (!cur) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "kubeconfig %s has no current-context", path);
		goto fail;
	}
	ctx = ylist_find(doc, root, "contexts", "context", cur);
	cname = ymap_str(doc, ctx, "cluster");
	uname = ymap_str(doc, ctx, "user");
	cluster = cname ? ylist_find(doc, root, "clusters", "cluster", cname) : NULL;
	user = uname ? ylist_find(doc, root, "users", "user", uname) : NULL;
	server = ymap_str(doc, cluster, "server");
	if (!ctx || !cluster || !server) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "kubeconfig %s: context %s does not name a cluster with a server", path, cur);
		goto fail;
	}
	if (snprintf(c->server, sizeof(c->server), "%s", server) >= (int)sizeof(c->server)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "kubeconfig %s: server URL is too long", path);
		goto fail;
	}
	cert[0] = key[0] = '\0';
	if (kc_file(&kc, cluster, "certificate-authority", "ca.crt", ca, sizeof(ca), err) < 0 ||
	    (user && kc_user(c, &kc, user, cert, key, sizeof(cert), err) < 0))
		goto fail;
	insecure = ymap_str(doc, cluster, "insecure-skip-tls-verify");
	if (ymap_str(doc, ctx, "namespace"))
		snprintf(c->namespace, sizeof(c->namespace), "%s", ymap_str(doc, ctx, "namespace"));
	if (client_http(c, ca, cert, key, insecure && strcmp(insecure, "true") == 0, err) < 0)
		goto fail;
	if (c->token_file[0]) {
		free(token_current(c, err));
		if (!c->token)
			goto fail;
	}
	yaml_document_delete(doc);
	return c;
fail:
	if (loaded)
		yaml_document_delete(doc);
	k8s_client_free(c);
	return NULL;
}

/* ------------------------------------------------------------------ requests */

bool k8s_path_segment_ok(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		char ch = s[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
			return false;
	}
	return n <= 253;
}

/* "HTTP 404: pods \"x\" not found" from a Status body, or the bare status. */
static void status_error(const struct http_response *r, const char *op, const char *path,
			 struct pp_err *err)
{
	json_t *j = json_loadb(r->body.data ? (const char *)r->body.data : "", r->body.len, 0, NULL);
	const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;

	pp_err_set(err, http_status_to_code(r->status), "k8s %s %s: HTTP %ld: %.*s", op, path, r->status,
		   K8S_STATUS_MSG_MAX, msg ? msg : "(no message)");
	json_decref(j);
}

int k8s_client_request(struct k8s_client *c, const char *op, enum http_method method,
		       const char *path, const char *content_type, const json_t *body,
		       json_t **ret, struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct http_request req = { 0 };
	char url[K8S_URL_MAX];
	char *text = NULL;
	char *token = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	int rc = -1;

	if (snprintf(url, sizeof(url), "%s%s", c->server, path) >= (int)sizeof(url))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "k8s %s: path is too long", op);
	token = token_current(c, err);
	if (!token)
		return -1;
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	req.op = op;
	req.method = method;
	req.url = url;
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	req.content_type = text ? (content_type ? content_type : K8S_JSON) : NULL;
	/* Every call we make may be repeated safely: patches set the same values, a repeated
	 * create answers 409 (treated as success), a repeated finalizer removal 404/422. */
	req.flags = HTTP_F_RAW_STATUS | HTTP_F_IDEMPOTENT;
	req.bearer_token = *token ? token : NULL;
	if (http_do(c->http, &req, &r, err) < 0) {
		pp_err_prefix(err, "k8s %s %s", op, path);
		goto out;
	}
	if (r.status < 200 || r.status > 299) {
		status_error(&r, op, path, err);
		goto out;
	}
	if (r.body.len > 0) {
		doc = json_loadb((const char *)r.body.data, r.body.len, 0, &jerr);
		if (!doc) {
			pp_err_set(err, PP_INTERNAL, "k8s %s %s: the answer is not JSON (%s)", op, path, jerr.text);
			goto out;
		}
	}
	if (ret)
		*ret = doc;
	else
		json_decref(doc);
	rc = 0;
out:
	explicit_bzero(token, strlen(token));
	free(token);
	free(text);
	http_response_free(&r);
	return rc;
}
