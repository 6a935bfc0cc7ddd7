/*
 * Azure Resource Manager requests and responses: URLs, the one VM body, the parsers of what ARM
 * answers, ARM's error shape, and the long-running operation protocol (spec §5.2).
 *
 * The one idea: everything ARM sends back is untrusted input parsed by pure functions over a
 * buffer (unit-tested and fuzzable), and every URL ARM hands us to follow (Azure-AsyncOperation,
 * Location, nextLink, resource ids) must lie on the configured ARM endpoint before we send our
 * bearer token to it.
 */
#include "providers/azure/azure_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"

#define API_RETRY_AFTER_MAX_MS 60000u
#define API_ERR_CODE_MAX 96

/* ---- URLs ---- */

static int api_base_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return (int)n;
}

static int api_url_done(int n, size_t size, struct pp_err *err)
{
	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "ARM URL longer than %zu bytes", size - 1);
	return 0;
}

int azure_url_resource(const struct azure_conf *c, char *out, size_t size, const char *provider_type,
		       const char *name, const char *api, struct pp_err *err)
{
	char *sub = http_urlencode_dup(c->subscription);
	char *rg = http_urlencode_dup(c->resource_group);
	char *nm = name ? http_urlencode_dup(name) : NULL;
	int n = snprintf(out, size, "%.*s/subscriptions/%s/resourceGroups/%s/providers/%s%s%s?api-version=%s",
			 api_base_len(c->arm_endpoint), c->arm_endpoint, sub, rg, provider_type,
			 nm ? "/" : "", nm ? nm : "", api);

	free(sub);
	free(rg);
	free(nm);
	return api_url_done(n, size, err);
}

int azure_url_vm_list(const struct azure_conf *c, char *out, size_t size, struct pp_err *err)
{
	return azure_url_resource(c, out, size, "Microsoft.Compute/virtualMachines", NULL,
				  AZURE_API_COMPUTE, err);
}

int azure_url_vm_sizes(const struct azure_conf *c, char *out, size_t size, struct pp_err *err)
{
	char *sub = http_urlencode_dup(c->subscription);
	char *loc = http_urlencode_dup(c->region);
	int n = snprintf(out, size, "%.*s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/"
			 "vmSizes?api-version=%s", api_base_len(c->arm_endpoint), c->arm_endpoint, sub,
			 loc, AZURE_API_COMPUTE);

	free(sub);
	free(loc);
	return api_url_done(n, size, err);
}

int azure_url_resource_group(const struct azure_conf *c, char *out, size_t size, struct pp_err *err)
{
	char *sub = http_urlencode_dup(c->subscription);
	char *rg = http_urlencode_dup(c->resource_group);
	int n = snprintf(out, size, "%.*s/subscriptions/%s/resourcegroups/%s?api-version=%s",
			 api_base_len(c->arm_endpoint), c->arm_endpoint, sub, rg, AZURE_API_RESOURCES);

	free(sub);
	free(rg);
	return api_url_done(n, size, err);
}

int azure_url_from_id(const struct azure_conf *c, const char *id, const char *api, char *out,
		      size_t size, struct pp_err *err)
{
	if (!str_has_prefix(id, "/subscriptions/") || strpbrk(id, "?#%\\ \t\r\n") || strstr(id, "/../") ||
	    strlen(id) >= PROVIDER_ID_MAX)
		return pp_err_set(err, PP_INTERNAL, "ARM returned an unusable resource id \"%.200s\"", id);
	return api_url_done(snprintf(out, size, "%.*s%s?api-version=%s", api_base_len(c->arm_endpoint),
				     c->arm_endpoint, id, api), size, err);
}

bool azure_url_is_arm(const struct azure_conf *c, const char *url)
{
	int n = api_base_len(c->arm_endpoint);

	return strncasecmp(url, c->arm_endpoint, (size_t)n) == 0 && url[n] == '/' &&
	       !strpbrk(url, " \t\r\n");
}

/* ---- calls and errors ---- */

void azure_result_free(struct azure_result *res)
{
	http_response_free(&res->resp);
	res->status = 0;
}

int azure_arm_call(struct azure_arm *arm, const char *op, enum http_method method, const char *url,
		   const char *body, struct cancel *cancel, struct azure_result *res,
		   struct pp_err *err)
{
	struct http_request req = {
		.op = op, .method = method, .url = url, .cancel = cancel,
		.flags = HTTP_F_RAW_STATUS, .max_response = AZURE_MAX_RESPONSE,
	};
	char *token = NULL;
	int rc;

	if (!azure_url_is_arm(arm->conf, url))
		return pp_err_set(err, PP_INTERNAL, "%s: refusing to send the ARM token to a URL outside "
				  "AZURE_ARM_ENDPOINT", op);
	if (body) {
		req.body = body;
		req.body_len = strlen(body);
		req.content_type = "application/json";
	}
	/* A 401 means the cached token was revoked or expired early: once more with a new one. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (azure_auth_token(arm->auth, cancel, &token, err) < 0)
			return pp_err_prefix(err, "%s", op);
		req.bearer_token = token;
		rc = http_do(arm->http, &req, &res->resp, err);
		if (rc == 0 && res->resp.status == 401 && attempt == 0)
			azure_auth_invalidate(arm->auth, token);
		azure_secret_free(token);
		token = NULL;
		if (rc < 0)
			return -1;
		if (res->resp.status != 401)
			break;
	}
	res->status = res->resp.status;
	return 0;
}

/* Printable one-line copy of text ARM wrote (messages quote user input), cut with "...". */
static void api_clean(char *out, size_t size, const char *s)
{
	size_t i, n = 0;

	for (i = 0; s[i] && n + 1 < size; i++)
		out[n++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	out[n] = '\0';
	if (s[i] && size > 4)
		memcpy(out + size - 4, "...", 4);
}

bool azure_arm_error_parse(const char *body, char *code, size_t code_size, char *msg,
			   size_t msg_size)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *e = json_object_get(root, "error");
	const char *c = json_string_value(json_object_get(e, "code"));
	const char *m = json_string_value(json_object_get(e, "message"));
	bool ok = c != NULL;

	if (ok) {
		api_clean(code, code_size, c);
		api_clean(msg, msg_size, m ? m : "");
	}
	json_decref(root);
	return ok;
}

int azure_arm_code_map(long status, const char *code)
{
	if (code && (strcasestr(code, "QuotaExceeded") || strcasestr(code, "AllocationFailed") ||
		     strcasestr(code, "SkuNotAvailable") || strcasecmp(code, "TooManyRequests") == 0))
		return PP_RESOURCE_EXHAUSTED;
	if (code && (strcasecmp(code, "ResourceNotFound") == 0 || strcasecmp(code, "NotFound") == 0 ||
		     strcasecmp(code, "ResourceGroupNotFound") == 0))
		return PP_NOT_FOUND;
	if (code && (strcasecmp(code, "AuthorizationFailed") == 0 ||
		     strcasecmp(code, "LinkedAuthorizationFailed") == 0))
		return PP_PERMISSION_DENIED;
	if (code && strcasecmp(code, "InvalidAuthenticationToken") == 0)
		return PP_UNAUTHENTICATED;
	return http_status_to_code(status);
}

int azure_arm_error(const struct azure_result *res, const char *what, struct pp_err *err)
{
	char code[API_ERR_CODE_MAX], msg[AZURE_ERR_TEXT_MAX];

	if (azure_arm_error_parse(http_response_text(&res->resp), code, sizeof(code), msg, sizeof(msg)))
		return pp_err_set(err, azure_arm_code_map(res->status, code), "%s: ARM %s: %s (HTTP %ld)",
				  what, code, msg, res->status);
	return pp_err_set(err, http_status_to_code(res->status), "%s: HTTP %ld without an ARM error body",
			  what, res->status);
}

/* ---- long-running operations ---- */

uint64_t azure_retry_after_ms(const char *value, uint64_t def, uint64_t max_ms)
{
	uint64_t s;

	if (!value || parse_uint64(value, &s) < 0)
		return def;
	if (s > max_ms / 1000)
		return max_ms;
	return s * 1000;
}

static bool api_streq(const char *a, const char *b)
{
	return a && strcasecmp(a, b) == 0;
}

/* The error object of a failed operation as our error. */
static int api_op_failed(const json_t *root, const char *what, const char *status, struct pp_err *err)
{
	json_t *e = json_object_get(root, "error");
	const char *c = json_string_value(json_object_get(e, "code"));
	const char *m = json_string_value(json_object_get(e, "message"));
	char qc[96], qm[AZURE_ERR_TEXT_MAX];
	int code = c ? azure_arm_code_map(0, c) : PP_ABORTED;

	api_clean(qc, sizeof(qc), c ? c : "no error code");
	api_clean(qm, sizeof(qm), m ? m : "no message");
	return pp_err_set(err, code == PP_UNKNOWN ? PP_ABORTED : code, "%s: operation %.20s: ARM %s: %s",
			  what, status, qc, qm);
}

int azure_op_status_parse(const char *body, const char *what, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *st = json_string_value(json_object_get(root, "status"));
	int rc;

	if (!st) {
		rc = pp_err_set(err, PP_INTERNAL, "%s: operation status without \"status\"", what);
	} else if (api_streq(st, "Succeeded")) {
		rc = 1;
	} else if (api_streq(st, "Failed") || api_streq(st, "Canceled")) {
		rc = api_op_failed(root, what, st, err);
	} else {
		rc = 0;
	}
	json_decref(root);
	return rc;
}

/* provisioningState of a resource body: 1 Succeeded, -1 Failed/Canceled, 0 otherwise. */
static int api_state_parse(const char *body, const char *what, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *st = json_string_value(json_object_get(json_object_get(root, "properties"),
							   "provisioningState"));
	int rc = 0;

	if (api_streq(st, "Succeeded"))
		rc = 1;
	else if (api_streq(st, "Failed") || api_streq(st, "Canceled"))
		rc = pp_err_set(err, PP_ABORTED, "%s: provisioningState %s", what, st);
	json_decref(root);
	return rc;
}

enum lro_mode { LRO_ASYNC, LRO_LOCATION, LRO_STATE };

struct lro {
	enum lro_mode mode;
	const char *url;
	uint64_t delay_ms;
};

/* What the first answer tells: 1 done already, 0 poll lro->url, -1 error. */
static int lro_start(struct azure_arm *arm, const char *what, const char *url, bool is_put,
		     const struct azure_result *first, struct lro *l, struct pp_err *err)
{
	const char *async = http_response_header(&first->resp, "Azure-AsyncOperation");
	const char *loc = http_response_header(&first->resp, "Location");

	l->delay_ms = azure_retry_after_ms(http_response_header(&first->resp, "Retry-After"),
					   arm->conf->poll_ms, API_RETRY_AFTER_MAX_MS);
	if (first->status == 204)
		return 1;
	if (async && async[0]) {
		l->mode = LRO_ASYNC;
		l->url = async;
	} else if (loc && loc[0]) {
		l->mode = LRO_LOCATION;
		l->url = loc;
	} else if (is_put) {
		int st = api_state_parse(http_response_text(&first->resp), what, err);

		if (st != 0)
			return st;
		l->mode = LRO_STATE;
		l->url = url;
	} else {
		return first->status == 200 ? 1 : pp_err_set(err, PP_INTERNAL, "%s: HTTP %ld without "
				"Azure-AsyncOperation or Location to follow", what, first->status);
	}
	if (!azure_url_is_arm(arm->conf, l->url))
		return pp_err_set(err, PP_INTERNAL, "%s: ARM asked us to poll a URL outside "
				  "AZURE_ARM_ENDPOINT", what);
	return 0;
}

/* One poll's answer: 1 done, 0 keep polling, -1 error. */
static int lro_poll_result(const struct lro *l, const struct azure_result *r, const char *what,
			   struct pp_err *err)
{
	switch (l->mode) {
	case LRO_ASYNC:
		if (r->status != 200)
			return azure_arm_error(r, what, err);
		return azure_op_status_parse(http_response_text(&r->resp), what, err);
	case LRO_LOCATION:
		if (r->status == 202)
			return 0;
		if (r->status == 200 || r->status == 201 || r->status == 204)
			return 1;
		return azure_arm_error(r, what, err);
	case LRO_STATE:
		if (r->status != 200)
			return azure_arm_error(r, what, err);
		return api_state_parse(http_response_text(&r->resp), what, err);
	}
	return pp_err_set(err, PP_INTERNAL, "%s: bad polling mode", what);
}

static int lro_cancelled(struct cancel *cancel, const char *what, struct pp_err *err)
{
	return pp_err_set(err, cancel_why(cancel) == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
			  "%s: %s while the ARM operation ran", what, cancel_reason_text(cancel_why(cancel)));
}

int azure_lro_wait(struct azure_arm *arm, const char *what, const char *url, bool is_put,
		   const struct azure_result *first, struct cancel *cancel, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + arm->conf->op_timeout_ms;
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	char poll_url[AZURE_URL_MAX];
	struct lro l = { LRO_ASYNC, NULL, 0 };
	int rc = lro_start(arm, what, url, is_put, first, &l, err);

	if (rc != 0)
		return rc > 0 ? 0 : -1;
	/* the header lives in `first`; keep our own copy while r is reused */
	if (!pp_strlcpy(poll_url, l.url, sizeof(poll_url)))
		return pp_err_set(err, PP_INTERNAL, "%s: operation URL is too long", what);
	l.url = poll_url;
	for (;;) {
		if (cancel_sleep_ms(cancel, l.delay_ms)) {
			rc = lro_cancelled(cancel, what, err);
			break;
		}
		if (pp_monotonic_ms() >= deadline) {
			rc = pp_err_set(err, PP_DEADLINE_EXCEEDED, "%s: the ARM operation did not finish "
					"within AZURE_OPERATION_TIMEOUT (%llu s)", what,
					(unsigned long long)(arm->conf->op_timeout_ms / 1000));
			break;
		}
		if (azure_arm_call(arm, "PollOperation", HTTP_GET, l.url, NULL, cancel, &r, err) < 0) {
			rc = -1;
			break;
		}
		rc = lro_poll_result(&l, &r, what, err);
		if (rc != 0)
			break;
		l.delay_ms = azure_retry_after_ms(http_response_header(&r.resp, "Retry-After"),
						  arm->conf->poll_ms, API_RETRY_AFTER_MAX_MS);
	}
	azure_result_free(&r);
	return rc > 0 ? 0 : -1;
}

/* ---- the VM body ---- */

struct body {
	bool failed;
};

static json_t *b_str(struct body *b, const char *s)
{
	json_t *v = json_string(s ? s : "");

	if (!v)
		b->failed = true;   /* not UTF-8 */
	return v;
}

static void b_set(struct body *b, json_t *o, const char *k, json_t *v)
{
	if (!o || !v || json_object_set_new(o, k, v) < 0)
		b->failed = true;
}

static json_t *b_obj(void)
{
	return json_object();
}

static json_t *body_tags(struct body *b, const struct azure_vm_params *p)
{
	json_t *t = b_obj();

	for (size_t i = 0; i < p->n_tags; i++) {
		char *kv = pp_xstrdup(p->tags[i]);
		char *eq = strchr(kv, '=');

		if (eq) {
			*eq = '\0';
			b_set(b, t, str_trim(kv), b_str(b, str_trim(eq + 1)));
		}
		free(kv);
	}
	b_set(b, t, AZURE_TAG_OWNER, b_str(b, p->owner));
	b_set(b, t, AZURE_TAG_SANDBOX, b_str(b, p->sandbox_id));
	if (p->pod && p->pod[0])
		b_set(b, t, AZURE_TAG_POD, b_str(b, p->pod));
	return t;
}

static json_t *body_image(struct body *b, const char *image)
{
	json_t *o = b_obj();

	if (strncasecmp(image, "/CommunityGalleries/", 20) == 0)
		b_set(b, o, "communityGalleryImageId", b_str(b, image));
	else if (strncasecmp(image, "/SharedGalleries/", 17) == 0)
		b_set(b, o, "sharedGalleryImageId", b_str(b, image));
	else
		b_set(b, o, "id", b_str(b, image));
	return o;
}

static json_t *body_storage(struct body *b, const struct azure_vm_params *p, const char *disk)
{
	json_t *st = b_obj(), *os = b_obj(), *md = b_obj();

	b_set(b, st, "imageReference", body_image(b, p->image));
	b_set(b, os, "name", b_str(b, disk));
	b_set(b, os, "createOption", b_str(b, "FromImage"));
	b_set(b, os, "caching", b_str(b, "ReadWrite"));
	b_set(b, os, "deleteOption", b_str(b, "Delete"));
	if (p->os_disk_gb > 0)
		b_set(b, os, "diskSizeGB", json_integer(p->os_disk_gb));
	b_set(b, md, "storageAccountType", b_str(b, "Premium_LRS"));
	if (p->cvm) {
		json_t *sp = b_obj();

		b_set(b, sp, "securityEncryptionType", b_str(b, "VMGuestStateOnly"));
		b_set(b, md, "securityProfile", sp);
	}
	b_set(b, os, "managedDisk", md);
	b_set(b, st, "osDisk", os);
	return st;
}

static json_t *body_os(struct body *b, const struct azure_vm_params *p)
{
	json_t *os = b_obj(), *lin = b_obj(), *ssh = b_obj(), *keys = json_array(), *key = b_obj();
	char path[256];

	snprintf(path, sizeof(path), "/home/%s/.ssh/authorized_keys", p->admin_user);
	b_set(b, key, "path", b_str(b, path));
	b_set(b, key, "keyData", b_str(b, p->ssh_key));
	if (json_array_append_new(keys, key) < 0)
		b->failed = true;
	b_set(b, ssh, "publicKeys", keys);
	b_set(b, lin, "disablePasswordAuthentication", json_true());
	b_set(b, lin, "ssh", ssh);
	b_set(b, os, "adminUsername", b_str(b, p->admin_user));
	b_set(b, os, "computerName", b_str(b, p->name));
	b_set(b, os, "linuxConfiguration", lin);
	return os;
}

static json_t *body_ipconfig(struct body *b, const struct azure_vm_params *p, const char *pip)
{
	json_t *ipc = b_obj(), *props = b_obj(), *subnet = b_obj();

	b_set(b, subnet, "id", b_str(b, p->subnet_id));
	b_set(b, props, "subnet", subnet);
	b_set(b, props, "primary", json_true());
	if (p->public_ip) {
		json_t *pc = b_obj(), *pprops = b_obj();

		b_set(b, pprops, "deleteOption", b_str(b, "Delete"));
		b_set(b, pc, "name", b_str(b, pip));
		b_set(b, pc, "properties", pprops);
		b_set(b, props, "publicIPAddressConfiguration", pc);
	}
	b_set(b, ipc, "name", b_str(b, "ip-config"));
	b_set(b, ipc, "properties", props);
	return ipc;
}

static json_t *body_network(struct body *b, const struct azure_vm_params *p, const char *nic,
			    const char *pip)
{
	json_t *np = b_obj(), *cfgs = json_array(), *cfg = b_obj(), *props = b_obj(), *ipcs = json_array();

	if (json_array_append_new(ipcs, body_ipconfig(b, p, pip)) < 0)
		b->failed = true;
	b_set(b, props, "primary", json_true());
	b_set(b, props, "deleteOption", b_str(b, "Delete"));
	if (p->nsg_id && p->nsg_id[0]) {
		json_t *nsg = b_obj();

		b_set(b, nsg, "id", b_str(b, p->nsg_id));
		b_set(b, props, "networkSecurityGroup", nsg);
	}
	b_set(b, props, "ipConfigurations", ipcs);
	b_set(b, cfg, "name", b_str(b, nic));
	b_set(b, cfg, "properties", props);
	if (json_array_append_new(cfgs, cfg) < 0)
		b->failed = true;
	b_set(b, np, "networkApiVersion", b_str(b, AZURE_NETWORK_API_FOR_VM));
	b_set(b, np, "networkInterfaceConfigurations", cfgs);
	return np;
}

static json_t *body_security(struct body *b, const struct azure_vm_params *p)
{
	json_t *sp = b_obj(), *uefi = b_obj();

	b_set(b, uefi, "secureBootEnabled", json_boolean(p->secure_boot));
	b_set(b, uefi, "vTpmEnabled", json_true());
	b_set(b, sp, "securityType", b_str(b, "ConfidentialVM"));
	b_set(b, sp, "uefiSettings", uefi);
	return sp;
}

int azure_names(const char *vm, char *nic, char *pip, char *disk, size_t size, struct pp_err *err)
{
	if (snprintf(nic, size, "%s-net", vm) >= (int)size || snprintf(pip, size, "%s-pip", vm) >= (int)size ||
	    snprintf(disk, size, "%s-disk", vm) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "VM name %.80s is too long", vm);
	return 0;
}

json_t *azure_vm_body(const struct azure_vm_params *p, struct pp_err *err)
{
	char nic[AZURE_NAME_MAX], pip[AZURE_NAME_MAX], disk[AZURE_NAME_MAX];
	struct body b = { false };
	json_t *root, *props, *diag, *boot;

	if (azure_names(p->name, nic, pip, disk, sizeof(nic), err) < 0)
		return NULL;
	root = b_obj();
	props = b_obj();
	b_set(&b, root, "location", b_str(&b, p->location));
	b_set(&b, root, "tags", body_tags(&b, p));
	b_set(&b, props, "hardwareProfile", json_pack("{s:s}", "vmSize", p->size));
	b_set(&b, props, "storageProfile", body_storage(&b, p, disk));
	b_set(&b, props, "osProfile", body_os(&b, p));
	b_set(&b, props, "networkProfile", body_network(&b, p, nic, pip));
	if (p->cvm)
		b_set(&b, props, "securityProfile", body_security(&b, p));
	diag = b_obj();
	boot = b_obj();
	b_set(&b, boot, "enabled", json_true());
	b_set(&b, diag, "bootDiagnostics", boot);
	b_set(&b, props, "diagnosticsProfile", diag);
	b_set(&b, props, "userData", b_str(&b, p->user_data_b64));
	b_set(&b, root, "properties", props);
	if (b.failed) {
		json_decref(root);
		pp_err_set(err, PP_INVALID_ARGUMENT, "VM %s: a setting (tag, image, size, name) is not "
			   "valid UTF-8", p->name);
		return NULL;
	}
	return root;
}

/* ---- parsers ---- */

static const char *j_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool api_copy(char *out, size_t size, const char *s)
{
	return pp_strlcpy(out, s ? s : "", size);
}

static void api_ref(const json_t *o, const char *id_holder_key, struct azure_ref *ref)
{
	const json_t *holder = id_holder_key ? json_object_get(o, id_holder_key) : o;
	const char *opt = j_str(o, "deleteOption");

	if (!opt[0])
		opt = j_str(json_object_get(o, "properties"), "deleteOption");
	api_copy(ref->id, sizeof(ref->id), j_str(holder, "id"));
	ref->delete_with_vm = strcasecmp(opt, "Delete") == 0;
}

int azure_vm_parse_json(const json_t *vm, struct azure_vm *ret, struct pp_err *err)
{
	const json_t *props = json_object_get(vm, "properties");
	const json_t *tags = json_object_get(vm, "tags");
	const json_t *nics = json_object_get(json_object_get(props, "networkProfile"), "networkInterfaces");
	const json_t *os = json_object_get(json_object_get(props, "storageProfile"), "osDisk");
	size_t i;
	json_t *n;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(vm) || !j_str(vm, "id")[0] ||
	    !api_copy(ret->id, sizeof(ret->id), j_str(vm, "id")))
		return pp_err_set(err, PP_INTERNAL, "ARM VM without a usable id");
	api_copy(ret->name, sizeof(ret->name), j_str(vm, "name"));
	api_copy(ret->state, sizeof(ret->state), j_str(props, "provisioningState"));
	api_copy(ret->owner, sizeof(ret->owner), j_str(tags, AZURE_TAG_OWNER));
	api_copy(ret->sandbox_id, sizeof(ret->sandbox_id), j_str(tags, AZURE_TAG_SANDBOX));
	ret->created_unix = azure_parse_time(j_str(props, "timeCreated"));
	if (ret->created_unix < 0)
		ret->created_unix = 0;
	json_array_foreach(nics, i, n) {
		if (ret->n_nics == AZURE_MAX_NICS)
			break;
		api_ref(n, NULL, &ret->nics[ret->n_nics]);
		if (ret->nics[ret->n_nics].id[0])
			ret->n_nics++;
	}
	if (os)
		api_ref(os, "managedDisk", &ret->os_disk);
	return 0;
}

int azure_vm_parse(const char *body, struct azure_vm *ret, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	int rc = azure_vm_parse_json(root, ret, err);

	json_decref(root);
	return rc;
}

/* One ipConfiguration of a NIC. */
static void nic_ipconfig(const json_t *ipc, struct azure_nic *ret)
{
	const json_t *props = json_object_get(ipc, "properties");
	const char *ip = j_str(props, "privateIPAddress");
	const char *pub = j_str(json_object_get(props, "publicIPAddress"), "id");

	if (!ip[0] || strcmp(ip, "0.0.0.0") == 0)
		ret->private_pending = true;
	else if (ret->n_private < PROVIDER_MAX_IPS)
		api_copy(ret->private_ips[ret->n_private++], PROVIDER_IP_MAX, ip);
	if (pub[0] && ret->n_public < PROVIDER_MAX_IPS)
		api_copy(ret->public_ids[ret->n_public++], PROVIDER_ID_MAX, pub);
}

int azure_nic_parse(const char *body, struct azure_nic *ret, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const json_t *ipcs = json_object_get(json_object_get(root, "properties"), "ipConfigurations");
	size_t i;
	json_t *ipc;
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_array(ipcs) || json_array_size(ipcs) == 0) {
		rc = pp_err_set(err, PP_INTERNAL, "ARM NIC without ipConfigurations");
		goto out;
	}
	/* the primary configuration's address is the one the adaptor dials */
	json_array_foreach(ipcs, i, ipc)
		if (json_is_true(json_object_get(json_object_get(ipc, "properties"), "primary")))
			nic_ipconfig(ipc, ret);
	json_array_foreach(ipcs, i, ipc)
		if (!json_is_true(json_object_get(json_object_get(ipc, "properties"), "primary")))
			nic_ipconfig(ipc, ret);
out:
	json_decref(root);
	return rc;
}

int azure_pip_parse(const char *body, char *ip, size_t size, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	int rc = 0;

	if (!json_is_object(root))
		rc = pp_err_set(err, PP_INTERNAL, "ARM public IP answer is not a JSON object");
	else
		api_copy(ip, size, j_str(json_object_get(root, "properties"), "ipAddress"));
	json_decref(root);
	return rc;
}

void azure_vm_sizes_free(struct instance_type_info *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free((char *)t[i].name);
	free(t);
}

static const char *sizes_wanted(const char *name, const char *const *want, size_t n_want)
{
	for (size_t i = 0; i < n_want; i++)
		if (strcasecmp(name, want[i]) == 0)
			return want[i];
	return NULL;
}

int azure_vm_sizes_parse(const char *body, const char *const *want, size_t n_want,
			 struct instance_type_info **ret, size_t *ret_n, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const json_t *value = json_object_get(root, "value");
	struct instance_type_info *t = NULL;
	size_t i, n = 0;
	json_t *s;

	if (!json_is_array(value)) {
		json_decref(root);
		return pp_err_set(err, PP_INTERNAL, "ARM vmSizes answer without a \"value\" array");
	}
	t = pp_xcalloc(n_want ? n_want : 1, sizeof(*t));
	json_array_foreach(value, i, s) {
		const char *w = sizes_wanted(j_str(s, "name"), want, n_want);
		json_t *cores = json_object_get(s, "numberOfCores"), *mem = json_object_get(s, "memoryInMB");

		if (!w || n == n_want)
			continue;
		if (!json_is_integer(cores) || !json_is_integer(mem))
			continue;
		for (size_t k = 0; k < n; k++)
			if (strcmp(t[k].name, w) == 0)
				w = NULL;
		if (!w)
			continue;
		t[n].name = pp_xstrdup(w);
		t[n].vcpus = (int64_t)json_integer_value(cores);
		t[n].memory_mib = (int64_t)json_integer_value(mem);
		t[n].gpus = 0;   /* ARM does not say; a GPU request never matches (as upstream) */
		n++;
	}
	json_decref(root);
	*ret = t;
	*ret_n = n;
	return 0;
}

static void list_add_vm(const json_t *v, const char *owner, struct owned_instance_list *out,
			int *rc)
{
	struct azure_vm vm;
	struct owned_instance it;

	if (azure_vm_parse_json(v, &vm, NULL) < 0 || strcmp(vm.owner, owner) != 0)
		return;
	memset(&it, 0, sizeof(it));
	api_copy(it.id, sizeof(it.id), vm.id);
	api_copy(it.name, sizeof(it.name), vm.name);
	api_copy(it.sandbox_id, sizeof(it.sandbox_id), vm.sandbox_id);
	it.created_unix = vm.created_unix;
	if (owned_instance_list_add(out, &it) < 0)
		*rc = -1;
}

int azure_vm_list_parse(const char *body, const char *owner, struct owned_instance_list *out,
			char **ret_next, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const json_t *value = json_object_get(root, "value");
	const char *next = j_str(root, "nextLink");
	size_t i;
	json_t *v;
	int rc = 0;

	if (!json_is_array(value)) {
		json_decref(root);
		return pp_err_set(err, PP_INTERNAL, "ARM VM list without a \"value\" array");
	}
	json_array_foreach(value, i, v)
		list_add_vm(v, owner, out, &rc);
	*ret_next = next[0] ? pp_xstrdup(next) : NULL;
	json_decref(root);
	if (rc < 0) {
		free(*ret_next);
		*ret_next = NULL;
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing VMs");
	}
	return 0;
}

/* ---- ids and times ---- */

int azure_vm_name_from_id(const char *id, char *out, size_t size, struct pp_err *err)
{
	/* /subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/NAME */
	static const char *const lit[] = { "subscriptions", NULL, "resourceGroups", NULL, "providers",
					   "Microsoft.Compute", "virtualMachines" };
	const char *p = id;
	size_t i, len;

	for (i = 0; i < PP_ARRAY_SIZE(lit); i++) {
		if (*p != '/')
			goto bad;
		p++;
		len = strcspn(p, "/");
		if (len == 0 || (lit[i] && (len != strlen(lit[i]) || strncasecmp(p, lit[i], len) != 0)))
			goto bad;
		p += len;
	}
	if (*p != '/' || !p[1] || strchr(p + 1, '/') || strlen(p + 1) >= size ||
	    strlen(p + 1) >= AZURE_NAME_MAX)
		goto bad;
	memcpy(out, p + 1, strlen(p + 1) + 1);
	return 0;
bad:
	return pp_err_set(err, PP_INVALID_ARGUMENT, "\"%.200s\" is not the ARM id of a virtual machine "
			  "(/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/"
			  "virtualMachines/<name>)", id);
}

int64_t azure_parse_time(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t t;
	int oh, om;

	if (!s || !s[0])
		return -1;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	t = (int64_t)timegm(&tm);
	if (*p == 'Z' && !p[1])
		return t;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 && strlen(p) == 6)
		return *p == '+' ? t - (oh * 3600 + om * 60) : t + (oh * 3600 + om * 60);
	return -1;
}
