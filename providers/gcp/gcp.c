/*
 * The `gcp` provider: pod VMs as Google Compute Engine instances, confidential (AMD SEV,
 * SEV-SNP or Intel TDX) unless DISABLECVM. Spec: upstream-providers.md §3 and §5.3.
 *
 * Start-up resolves everything a create needs once, and fails with a clear error if any of it is
 * wrong: credentials (a first token), the machine types pods may ask for (vCPUs, memory,
 * accelerators; sorted for best fit), the default image (and its size), the Resource Manager
 * tag values of TAGS. A create is then: user-data size check, machine type selection,
 * instances.insert (with a requestId, so a retried POST never makes a second VM), the zone
 * operation waited for, and the instance's IPs read. A create that fails once GCE may have
 * accepted it deletes the instance by name before returning.
 *
 * The one idea: the instance name is the id (as upstream, so peerpod-ctrl can delete from the
 * id alone); the label peerpod-owner says which node owns it, and list_instances filters on it.
 * Thread safety: struct gcp_priv is read-only after init; the token cache has its own lock
 * (gcp_auth.c) and lib/http is thread-safe.
 */
#include "providers/gcp/gcp_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#define GCP_URL_MAX 4096

static struct gcp_priv *gcp_get(const struct provider *p)
{
	return provider_priv(p);
}

static int gcp_cancelled(struct cancel *cancel, const char *what, struct pp_err *err)
{
	enum cancel_reason why = cancel_why(cancel);

	return pp_err_set(err, why == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
			  "GCP %s: %s", what, cancel_reason_text(why));
}

/* A GCE resource name: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63. */
static bool gcp_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > INSTANCE_NAME_MAX || !islower((unsigned char)s[0]) || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* <compute endpoint>/projects/<project>/<path> */
static int gcp_compute_url(const struct gcp_priv *g, char *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int gcp_compute_url(const struct gcp_priv *g, char *out, const char *fmt, ...)
{
	int n = snprintf(out, GCP_URL_MAX, "%s/projects/%s/", g->conf.compute_endpoint,
			 g->conf.project);
	va_list ap;
	int m;

	if (n < 0 || n >= GCP_URL_MAX)
		return -1;
	va_start(ap, fmt);
	m = vsnprintf(out + n, GCP_URL_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return (m < 0 || m >= GCP_URL_MAX - n) ? -1 : 0;
}

static int gcp_url_error(const char *what, struct pp_err *err)
{
	return pp_err_set(err, PP_INVALID_ARGUMENT, "GCP %s: URL longer than %d bytes", what,
			  GCP_URL_MAX);
}

/* ---- one call ---- */

int gcp_call(struct gcp_priv *g, enum http_method m, const char *url, const char *body,
	     const char *op, const char *what, unsigned flags, uint64_t timeout_ms,
	     struct cancel *cancel, struct http_response *ret, struct pp_err *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		struct http_request req = { 0 };
		char *tok = NULL;
		int rc;

		if (gcp_auth_token(&g->auth, cancel, &tok, err) < 0)
			return pp_err_prefix(err, "GCP %s", what);
		req.op = op;
		req.method = m;
		req.url = url;
		req.body = body;
		req.body_len = body ? strlen(body) : 0;
		req.content_type = body ? "application/json" : NULL;
		req.max_response = GCP_RESPONSE_MAX;
		req.timeout_ms = timeout_ms;
		req.cancel = cancel;
		req.flags = flags | HTTP_F_RAW_STATUS;
		req.bearer_token = tok;
		rc = http_do(g->http, &req, ret, err);
		if (rc == 0 && ret->status == 401 && attempt == 0) {
			/* revoked or expired early: one more try with a new token */
			gcp_auth_invalidate(&g->auth, tok);
			gcp_token_free(tok);
			continue;
		}
		gcp_token_free(tok);
		if (rc < 0)
			return pp_err_prefix(err, "GCP %s", what);
		if (ret->status / 100 == 2)
			return 0;
		return gcp_api_error(ret->status, http_response_text(ret), what, err);
	}
	return -1;   /* not reached */
}

/* ---- zone operations ---- */

int gcp_operation_wait(struct gcp_priv *g, struct gcp_operation *op, const char *what,
		       struct cancel *cancel, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + g->conf.op_timeout_ms;
	char url[GCP_URL_MAX];

	while (!op->done) {
		struct http_response r = HTTP_RESPONSE_INIT;
		struct gcp_operation next;
		uint64_t started = pp_monotonic_ms();
		int rc;

		if (cancel_fired(cancel))
			return gcp_cancelled(cancel, what, err);
		if (started >= deadline)
			return pp_err_set(err, PP_DEADLINE_EXCEEDED,
					  "GCP %s: operation %s still %s after %llu ms (GCP_OPERATION_TIMEOUT)",
					  what, op->name, op->status,
					  (unsigned long long)g->conf.op_timeout_ms);
		if (gcp_compute_url(g, url, "zones/%s/operations/%s/wait", g->conf.zone, op->name) < 0)
			return gcp_url_error(what, err);
		rc = gcp_call(g, HTTP_POST, url, NULL, "zoneOperations.wait", what, HTTP_F_IDEMPOTENT,
			      GCP_OP_WAIT_HTTP_TIMEOUT_MS, cancel, &r, err);
		if (rc == 0)
			rc = gcp_operation_parse(http_response_text(&r), &next, err);
		http_response_free(&r);
		if (rc < 0)
			return -1;
		if (strcmp(next.name, op->name) != 0)
			return pp_err_set(err, PP_UNAVAILABLE, "GCP %s: waiting for operation %s returned "
					  "operation %s", what, op->name, next.name);
		*op = next;
		if (!op->done && pp_monotonic_ms() - started < g->conf.poll_interval_ms &&
		    cancel_sleep_ms(cancel, g->conf.poll_interval_ms - (pp_monotonic_ms() - started)))
			return gcp_cancelled(cancel, what, err);
	}
	return 0;
}

/* How far a mutation got: whether GCE may have acted on it. */
enum gcp_stage {
	GCP_STAGE_UNKNOWN = 0,   /* no answer, a 5xx, or an answer we could not read: it may have */
	GCP_STAGE_REFUSED,       /* a 4xx answer: GCE did nothing */
	GCP_STAGE_ACCEPTED,      /* an Operation came back */
};

/* A mutation that answers with an Operation, which is then waited for. */
static int gcp_mutate(struct gcp_priv *g, enum http_method m, const char *url, const char *body,
		      const char *op_name, const char *what, struct cancel *cancel,
		      enum gcp_stage *ret_stage, struct gcp_operation *ret_op, struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	int rc = gcp_call(g, m, url, body, op_name, what, HTTP_F_IDEMPOTENT, 0, cancel, &r, err);

	*ret_stage = GCP_STAGE_UNKNOWN;
	if (rc < 0 && r.status >= 400 && r.status < 500)
		*ret_stage = GCP_STAGE_REFUSED;
	if (rc == 0)
		rc = gcp_operation_parse(http_response_text(&r), ret_op, err);
	http_response_free(&r);
	if (rc < 0)
		return -1;
	*ret_stage = GCP_STAGE_ACCEPTED;
	return gcp_operation_wait(g, ret_op, what, cancel, err);
}

/* ---- start-up ---- */

static int gcp_load_machine_type(struct gcp_priv *g, const char *name, struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct instance_type_info *t = &g->types[g->n_types];
	char url[GCP_URL_MAX], what[128];
	int rc;

	snprintf(what, sizeof(what), "machineTypes.get %.64s", name);
	if (!gcp_name_valid(name))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "machine type \"%.64s\" is not a valid name",
				  name);
	if (gcp_compute_url(g, url, "zones/%s/machineTypes/%s", g->conf.zone, name) < 0)
		return gcp_url_error(what, err);
	rc = gcp_call(g, HTTP_GET, url, NULL, "machineTypes.get", what, 0, 0, NULL, &r, err);
	if (rc == 0)
		rc = gcp_machine_type_parse(http_response_text(&r), t, err);
	http_response_free(&r);
	if (rc < 0)
		return pp_err_prefix(err, "machine type %s in zone %s", name, g->conf.zone);
	t->name = name;
	g->n_types++;
	return 0;
}

static int gcp_load_machine_types(struct gcp_priv *g, struct pp_err *err)
{
	const char *const *names = g->conf.machine_types;
	size_t n = g->conf.n_machine_types;

	if (n == 0) {
		names = &g->conf.machine_type;
		n = 1;
	}
	for (size_t i = 0; i < n; i++)
		if (gcp_load_machine_type(g, names[i], err) < 0)
			return -1;
	instance_type_sort(g->types, g->n_types);
	return 0;
}

static int gcp_image_size(struct gcp_priv *g, const char *image, struct cancel *cancel,
			  int64_t *ret_gb, struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	char url[GCP_URL_MAX], what[GCP_PATH_MAX + 16];
	int rc, n;

	snprintf(what, sizeof(what), "images.get %s", image);
	n = snprintf(url, sizeof(url), "%s/%s", g->conf.compute_endpoint, image);
	if (n < 0 || (size_t)n >= sizeof(url))
		return gcp_url_error(what, err);
	rc = gcp_call(g, HTTP_GET, url, NULL, "images.get", what, 0, 0, cancel, &r, err);
	if (rc == 0)
		rc = gcp_image_size_parse(http_response_text(&r), ret_gb, err);
	http_response_free(&r);
	return rc;
}

static int gcp_resolve_tag(struct gcp_priv *g, const char *item, struct gcp_tag *t,
			   struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	const char *eq = strchr(item, '=');
	char ns[512], url[GCP_URL_MAX], what[600];
	char *enc;
	int rc, n;

	memset(t, 0, sizeof(*t));
	t->key = eq ? str_trim(pp_xstrndup(item, (size_t)(eq - item))) : pp_xstrdup(item);
	t->value = str_trim(pp_xstrdup(eq ? eq + 1 : ""));
	if (!t->key[0] || !t->value[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS item \"%.100s\" is not key=value", item);
	n = strchr(t->key, '/') ? snprintf(ns, sizeof(ns), "%s/%s", t->key, t->value)
				: snprintf(ns, sizeof(ns), "%s/%s/%s", g->conf.project, t->key, t->value);
	if (n < 0 || (size_t)n >= sizeof(ns))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS item \"%.100s\" is too long", item);
	snprintf(what, sizeof(what), "tagValues.getNamespaced %s", ns);
	enc = http_urlencode_dup(ns);
	n = snprintf(url, sizeof(url), "%s/tagValues/namespaced?name=%s", g->conf.rm_endpoint, enc);
	free(enc);
	if (n < 0 || (size_t)n >= sizeof(url))
		return gcp_url_error(what, err);
	rc = gcp_call(g, HTTP_GET, url, NULL, "tagValues.getNamespaced", what, 0, 0, NULL, &r, err);
	if (rc == 0)
		rc = gcp_tag_value_parse(http_response_text(&r), t, err);
	http_response_free(&r);
	if (rc < 0)
		return pp_err_prefix(err, "TAGS %s=%s (GCP answers PERMISSION_DENIED also for a tag "
				     "value that does not exist)", t->key, t->value);
	return 0;
}

static int gcp_resolve_tags(struct gcp_priv *g, struct pp_err *err)
{
	for (size_t i = 0; i < g->conf.n_tags; i++) {
		g->n_tags = i + 1;   /* so that destroy frees the strings of a failed one too */
		if (gcp_resolve_tag(g, g->conf.tags[i], &g->tags[i], err) < 0)
			return -1;
	}
	return 0;
}

static void gcp_priv_free(struct gcp_priv *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_tags; i++) {
		free(g->tags[i].key);
		free(g->tags[i].value);
	}
	if (g->auth_ready)
		gcp_auth_fini(&g->auth);
	http_client_free(g->http);
	if (g->http_global)
		http_global_fini();
	gcp_conf_free(&g->conf);
	free(g);
}

static int gcp_http_setup(struct gcp_priv *g, struct pp_err *err)
{
	struct http_client_config hc = { 0 };

	/* curl_global_init is reference-counted: harmless if main did it already. */
	if (http_global_init(err) < 0)
		return -1;
	g->http_global = true;
	hc.name = "gcp";
	hc.max_response = GCP_RESPONSE_MAX;
	g->http = http_client_new(&hc, err);
	return g->http ? 0 : -1;
}

static int gcp_init_calls(struct gcp_priv *g, struct pp_err *err)
{
	char *tok = NULL;

	if (gcp_auth_token(&g->auth, NULL, &tok, err) < 0)
		return pp_err_prefix(err, "gcp provider: getting an access token with the credentials "
				     "from %s", g->auth.source);
	gcp_token_free(tok);
	if (gcp_load_machine_types(g, err) < 0 ||
	    gcp_image_size(g, g->conf.image, NULL, &g->image_size_gb, err) < 0 ||
	    gcp_resolve_tags(g, err) < 0)
		return pp_err_prefix(err, "gcp provider");
	return 0;
}

static int gcp_init(struct provider *p, struct pp_err *err)
{
	const struct config *cfg = provider_config(p);
	struct gcp_priv *g = pp_xcalloc(1, sizeof(*g));

	snprintf(g->owner, sizeof(g->owner), "%s", provider_owner(p));
	if (gcp_conf_load(&g->conf, cfg, err) < 0 ||
	    gcp_owner_label(g->owner, g->owner_label, sizeof(g->owner_label), err) < 0 ||
	    gcp_http_setup(g, err) < 0)
		goto fail;
	if (gcp_auth_init(&g->auth, cfg, &g->conf, g->http, err) < 0)
		goto fail;
	g->auth_ready = true;
	if (gcp_init_calls(g, err) < 0)
		goto fail;
	provider_set_priv(p, g);
	log_info("gcp provider ready", "project=%s zone=%s image=%s machine_types=%zu confidential=%s "
		 "credentials=\"%s\" owner_label=%s tags=%zu", g->conf.project, g->conf.zone,
		 g->conf.image, g->n_types,
		 g->conf.cvm ? gcp_confidential_name(g->conf.cvm) : "disabled", g->auth.source,
		 g->owner_label, g->n_tags);
	return 0;
fail:
	gcp_priv_free(g);
	return -1;
}

static void gcp_destroy(struct provider *p)
{
	gcp_priv_free(gcp_get(p));
	provider_set_priv(p, NULL);
}

/* CLOUD_CONFIG_VERIFY: the credentials still work and the image is still there. */
static int gcp_check(struct provider *p, struct pp_err *err)
{
	struct gcp_priv *g = gcp_get(p);
	int64_t gb;

	return gcp_image_size(g, g->conf.image, NULL, &gb, err);
}

/* ---- delete ---- */

static bool gcp_gone(const struct pp_err *e)
{
	return e->code == PP_NOT_FOUND;
}

static int gcp_delete_named(struct gcp_priv *g, const char *name, struct cancel *cancel,
			    struct pp_err *err)
{
	struct gcp_operation op = { 0 };
	char url[GCP_URL_MAX], rid[37], what[96];
	enum gcp_stage stage;
	struct pp_err e = { 0 };

	snprintf(what, sizeof(what), "instances.delete %s", name);
	if (gcp_request_id(rid, err) < 0)
		return -1;
	if (gcp_compute_url(g, url, "zones/%s/instances/%s?requestId=%s", g->conf.zone, name, rid) < 0)
		return gcp_url_error(what, err);
	if (gcp_mutate(g, HTTP_DELETE, url, NULL, "instances.delete", what, cancel, &stage, &op,
		       &e) < 0) {
		if (!gcp_gone(&e)) {
			*err = e;
			return -1;
		}
	} else if (op.failed && gcp_operation_error(&op, what, &e) < 0 && !gcp_gone(&e)) {
		*err = e;
		return -1;
	}
	log_info("GCP instance deleted", "instance=%s zone=%s%s", name, g->conf.zone,
		 e.code == PP_NOT_FOUND ? " already_gone=true" : "");
	return 0;
}

/* Name only (the create never answered): delete it only if it carries our owner label. */
static int gcp_delete_if_ours(struct gcp_priv *g, const char *name, struct cancel *cancel,
			      struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	char url[GCP_URL_MAX], what[96], owner[GCP_LABEL_VALUE_MAX + 1];
	struct pp_err e = { 0 };
	int rc;

	snprintf(what, sizeof(what), "instances.get %s", name);
	if (gcp_compute_url(g, url, "zones/%s/instances/%s", g->conf.zone, name) < 0)
		return gcp_url_error(what, err);
	rc = gcp_call(g, HTTP_GET, url, NULL, "instances.get", what, 0, 0, cancel, &r, &e);
	if (rc == 0)
		rc = gcp_instance_owner_parse(http_response_text(&r), owner, sizeof(owner), &e);
	http_response_free(&r);
	if (rc < 0) {
		if (gcp_gone(&e))
			return 0;
		*err = e;
		return -1;
	}
	if (strcmp(owner, g->owner_label) != 0) {
		log_warn("GCP instance with our name belongs to another owner; not deleted",
			 "instance=%s owner_label=%s", name, owner);
		return 0;
	}
	return gcp_delete_named(g, name, cancel, err);
}

static int gcp_delete(struct provider *p, const char *id, const char *name, struct cancel *cancel,
		      struct pp_err *err)
{
	struct gcp_priv *g = gcp_get(p);
	const char *target = (id && id[0]) ? id : name;

	if (!target || !target[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "GCP delete: neither id nor name given");
	if (!gcp_name_valid(target))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "GCP delete: \"%.80s\" is not a GCE instance name", target);
	if (id && id[0])
		return gcp_delete_named(g, target, cancel, err);
	return gcp_delete_if_ours(g, target, cancel, err);
}

/* A create failed after GCE may have made the VM: delete it by name (bounded, own deadline,
 * since the request's token may be what fired). */
static void gcp_cleanup(struct gcp_priv *g, const char *name)
{
	struct cancel *c;
	struct pp_err e = { 0 };

	if (g->conf.keep_failed) {
		log_warn("GCP instance of a failed create kept (KEEP_FAILED_VMS)", "instance=%s", name);
		return;
	}
	c = cancel_new((pp_monotonic_ms() + GCP_CLEANUP_TIMEOUT_MS) * 1000000ull);
	if (gcp_delete_if_ours(g, name, c, &e) < 0)
		log_error("GCP cleanup after a failed create failed", "instance=%s error=\"%s\"", name,
			  e.msg);
	cancel_unref(c);
}

/* ---- create ---- */

struct gcp_create {
	const struct create_request *req;
	const char *machine_type;
	int64_t type_gpus;
	char *image;                  /* annotation image, resolved; NULL = the default */
	int64_t image_gb;
	char *user_data_b64;
};

static int gcp_check_request(const struct create_request *req, struct pp_err *err)
{
	size_t b64 = (req->user_data_len + 2) / 3 * 4;

	if (b64 > GCP_USER_DATA_B64_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "user-data of %zu bytes is %zu bytes in base64, more than the %u bytes "
				  "GCP allows in a metadata value", req->user_data_len, b64,
				  GCP_USER_DATA_B64_MAX);
	if (!req->instance_name || !gcp_name_valid(req->instance_name))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "instance name \"%.80s\" is not a valid GCE name ([a-z]([-a-z0-9]*[a-z0-9])?, "
				  "at most 63)", req->instance_name ? req->instance_name : "");
	return 0;
}

static int gcp_pick(struct gcp_priv *g, struct gcp_create *c, struct pp_err *err)
{
	const struct create_request *req = c->req;
	struct instance_type_policy pol = {
		.types = g->types, .n_types = g->n_types,
		.allowed = g->conf.machine_types, .n_allowed = g->conf.n_machine_types,
		.allowed_option = "GCP_INSTANCE_TYPES",
		.def = g->conf.machine_type, .default_option = "GCP_MACHINE_TYPE",
	};

	if (instance_type_select(&req->spec, &pol, &c->machine_type, err) < 0)
		return -1;
	if (!gcp_name_valid(c->machine_type))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "machine type \"%.64s\" is not a valid name",
				  c->machine_type);
	for (size_t i = 0; i < g->n_types; i++)
		if (strcmp(g->types[i].name, c->machine_type) == 0)
			c->type_gpus = g->types[i].gpus;
	c->image_gb = g->image_size_gb;
	if (req->spec.image && req->spec.image[0]) {
		if (gcp_image_path(g->conf.project, req->spec.image, &c->image, err) < 0)
			return pp_err_prefix(err, "image annotation");
		if (gcp_image_size(g, c->image, req->cancel, &c->image_gb, err) < 0)
			return -1;
	}
	return 0;
}

static const char *gcp_min_cpu(const struct gcp_priv *g, const char *machine_type)
{
	if (g->conf.min_cpu_platform[0])
		return g->conf.min_cpu_platform;
	/* SEV-SNP on N2D requires AMD Milan (the create fails otherwise). */
	if (g->conf.cvm == GCP_CVM_SEV_SNP && str_has_prefix(machine_type, "n2d-"))
		return "AMD Milan";
	return "";
}

static char *gcp_body(struct gcp_priv *g, const struct gcp_create *c)
{
	const struct create_request *req = c->req;
	struct gcp_insert in = {
		.name = req->instance_name,
		.zone = g->conf.zone,
		.machine_type = c->machine_type,
		.image = c->image ? c->image : g->conf.image,
		.disk_size_gb = c->image_gb > g->conf.root_volume_gb ? c->image_gb : g->conf.root_volume_gb,
		.disk_type = g->conf.disk_type,
		.network = g->conf.network,
		.subnetwork = g->conf.subnetwork,
		.public_ip = g->conf.public_ip,
		.user_data_b64 = c->user_data_b64,
		.owner_label = g->owner_label,
		.sandbox_id = req->sandbox_id ? req->sandbox_id : "",
		.cvm = g->conf.cvm,
		.min_cpu_platform = gcp_min_cpu(g, c->machine_type),
		.terminate_on_maintenance = g->conf.cvm != GCP_CVM_NONE || req->spec.gpus > 0 ||
					    c->type_gpus > 0,
		.tags = g->tags,
		.n_tags = g->n_tags,
	};
	json_t *body = gcp_insert_body(&in);
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(body);
	return text;
}

/* The instance's IPs; GCE knows them once the insert is DONE, but a NAT IP may lag: a short
 * bounded poll. */
static int gcp_read_ips(struct gcp_priv *g, const char *name, struct cancel *cancel,
			struct instance *ret, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + GCP_IP_WAIT_MS;
	char url[GCP_URL_MAX], what[96];

	snprintf(what, sizeof(what), "instances.get %s", name);
	if (gcp_compute_url(g, url, "zones/%s/instances/%s", g->conf.zone, name) < 0)
		return gcp_url_error(what, err);
	for (;;) {
		struct http_response r = HTTP_RESPONSE_INIT;
		int rc = gcp_call(g, HTTP_GET, url, NULL, "instances.get", what, 0, 0, cancel, &r, err);

		if (rc == 0)
			rc = gcp_instance_ips_parse(http_response_text(&r), g->conf.public_ip, ret->ips,
						    PROVIDER_MAX_IPS, &ret->n_ips, err);
		http_response_free(&r);
		if (rc < 0 || ret->n_ips > 0)
			return rc;
		if (pp_monotonic_ms() >= deadline)
			return pp_err_set(err, PP_UNAVAILABLE, "GCP instance %s has no %s after %u s", name,
					  g->conf.public_ip ? "external IP (natIP)" : "internal IP (networkIP)",
					  GCP_IP_WAIT_MS / 1000);
		if (cancel_sleep_ms(cancel, g->conf.poll_interval_ms))
			return gcp_cancelled(cancel, what, err);
	}
}

static int gcp_insert(struct gcp_priv *g, struct gcp_create *c, struct pp_err *err)
{
	const char *name = c->req->instance_name;
	struct gcp_operation op = { 0 };
	char url[GCP_URL_MAX], rid[37], what[96];
	char *body;
	enum gcp_stage stage;
	int rc;

	snprintf(what, sizeof(what), "instances.insert %s", name);
	if (gcp_request_id(rid, err) < 0)
		return -1;
	if (gcp_compute_url(g, url, "zones/%s/instances?requestId=%s", g->conf.zone, rid) < 0)
		return gcp_url_error(what, err);
	body = gcp_body(g, c);
	if (!body)
		return pp_err_set(err, PP_INTERNAL, "GCP %s: building the request body failed", what);
	rc = gcp_mutate(g, HTTP_POST, url, body, "instances.insert", what, c->req->cancel, &stage,
			&op, err);
	free(body);
	if (rc == 0 && op.failed)
		rc = gcp_operation_error(&op, what, err);
	/* A 4xx answer (bad request, name taken by someone) created nothing; after anything else the
	 * VM may exist, and is deleted if it carries our label. */
	if (rc < 0 && stage != GCP_STAGE_REFUSED)
		gcp_cleanup(g, name);
	return rc;
}

static int gcp_create_instance(struct provider *p, const struct create_request *req,
			       struct instance *ret, struct pp_err *err)
{
	struct gcp_priv *g = gcp_get(p);
	struct gcp_create c = { .req = req };
	struct instance inst = { 0 };
	uint64_t t0 = pp_monotonic_ms();
	int rc = -1;

	if (gcp_check_request(req, err) < 0 || gcp_pick(g, &c, err) < 0)
		goto out;
	c.user_data_b64 = base64_encode(req->user_data ? req->user_data : "", req->user_data_len);
	if (gcp_insert(g, &c, err) < 0)
		goto out;
	if (gcp_read_ips(g, req->instance_name, req->cancel, &inst, err) < 0) {
		gcp_cleanup(g, req->instance_name);
		goto out;
	}
	snprintf(inst.id, sizeof(inst.id), "%s", req->instance_name);
	snprintf(inst.name, sizeof(inst.name), "%s", req->instance_name);
	*ret = inst;
	log_info("GCP instance created", "instance=%s zone=%s machine_type=%s ip=%s ms=%llu",
		 inst.name, g->conf.zone, c.machine_type, inst.ips[0],
		 (unsigned long long)(pp_monotonic_ms() - t0));
	rc = 0;
out:
	free(c.image);
	free(c.user_data_b64);
	return rc;
}

/* ---- list ---- */

static int gcp_list_page(struct gcp_priv *g, const char *filter, const char *page,
			 struct owned_instance_list *l, char **ret_next, struct cancel *cancel,
			 struct pp_err *err)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	char url[GCP_URL_MAX];
	char *tok = page ? http_urlencode_dup(page) : NULL;
	int rc;

	rc = gcp_compute_url(g, url, "zones/%s/instances?filter=%s&maxResults=%d%s%s", g->conf.zone,
			     filter, GCP_LIST_PAGE_SIZE, tok ? "&pageToken=" : "", tok ? tok : "");
	free(tok);
	if (rc < 0)
		return gcp_url_error("instances.list", err);
	rc = gcp_call(g, HTTP_GET, url, NULL, "instances.list", "instances.list", 0, 0, cancel, &r,
		      err);
	if (rc == 0)
		rc = gcp_instance_list_parse(http_response_text(&r), l, ret_next, err);
	http_response_free(&r);
	return rc;
}

static int gcp_list(struct provider *p, struct owned_instance_list *ret, struct cancel *cancel,
		    struct pp_err *err)
{
	struct gcp_priv *g = gcp_get(p);
	struct owned_instance_list l = { 0 };
	char expr[128];
	char *filter, *next = NULL;
	int pages = 0, rc = 0;

	snprintf(expr, sizeof(expr), "labels.%s = \"%s\"", GCP_LABEL_OWNER, g->owner_label);
	filter = http_urlencode_dup(expr);
	do {
		char *page = next;

		next = NULL;
		if (++pages > GCP_LIST_MAX_PAGES) {
			rc = pp_err_set(err, PP_OUT_OF_RANGE, "GCP instances.list: more than %d pages",
					GCP_LIST_MAX_PAGES);
		} else {
			rc = gcp_list_page(g, filter, page, &l, &next, cancel, err);
		}
		free(page);
	} while (rc == 0 && next);
	free(next);
	free(filter);
	if (rc < 0) {
		owned_instance_list_free(&l);
		return -1;
	}
	owned_instance_list_free(ret);
	*ret = l;
	return 0;
}

/* The metrics endpoint's per-operation counters. */
static struct http_client *gcp_http_client(struct provider *p)
{
	return gcp_get(p)->http;
}

const struct provider_ops gcp_provider_ops = {
	.name = "gcp",
	.options = gcp_options,
	.max_user_data = GCP_USER_DATA_MAX,
	.init = gcp_init,
	.check = gcp_check,
	.create_instance = gcp_create_instance,
	.delete_instance = gcp_delete,
	.list_instances = gcp_list,
	.destroy = gcp_destroy,
	.http_client = gcp_http_client,
};
