/*
 * The Compute Engine v1 and Resource Manager v3 shapes the `gcp` provider sends and reads
 * (upstream-providers.md §3.3, §5.3): resource path resolution, the instances.insert body,
 * Google API errors, zone operations, machine types, images, instances and tag values.
 *
 * The one idea: these are pure functions over strings and JSON, so the unit tests pin every
 * request body (golden files) and feed every parser hostile answers without a server. Answers
 * are untrusted: a field of the wrong type is an error naming the field, never a guess, and
 * only the characters a resource name can hold are ever put into a URL.
 */
#include "providers/gcp/gcp_priv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/digest.h"
#include "lib/util.h"

#define API_TEXT_MAX 240

/* ---- small helpers ---- */

/* Copies s into out with control characters replaced by ' ', cut to fit: text from an answer
 * put into an error message. */
static const char *api_clean(char *out, size_t size, const char *s)
{
	size_t i;

	if (size == 0)
		return out;
	for (i = 0; s && s[i] && i + 1 < size; i++)
		out[i] = ((unsigned char)s[i] < ' ' || s[i] == 0x7f) ? ' ' : s[i];
	out[i] = '\0';
	return out;
}

/* A path segment we are willing to put into a URL: project ids ("google.com:p"), names. */
static bool api_segment_ok(const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.:", s[i]))
			return false;
	return true;
}

/* True if path is "seg/seg/..." with n segments, all acceptable, where the fixed ones (non-NULL
 * entries of shape) match literally. */
static bool api_path_matches(const char *path, const char *const *shape, size_t n)
{
	const char *p = path;

	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if ((i + 1 < n) != (slash != NULL))
			return false;
		if (shape[i] ? (strlen(shape[i]) != len || strncmp(p, shape[i], len) != 0)
			     : !api_segment_ok(p, len))
			return false;
		p = slash ? slash + 1 : p + len;
	}
	return true;
}

/* "https://host/compute/v1/projects/..." and "/projects/..." -> "projects/...". */
static const char *api_strip(const char *s)
{
	if (str_has_prefix(s, "https://") || str_has_prefix(s, "http://")) {
		const char *p = strstr(s, "/projects/");

		return p ? p + 1 : NULL;
	}
	return s[0] == '/' ? s + 1 : s;
}

static char *api_join(const char *a, const char *b, const char *c, const char *d)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
	char *s = pp_xmalloc(n);

	snprintf(s, n, "%s%s%s%s", a, b, c, d);
	return s;
}

/* ---- path resolution ---- */

int gcp_image_path(const char *project, const char *image, char **ret, struct pp_err *err)
{
	static const char *const by_name[] = { "projects", NULL, "global", "images", NULL };
	static const char *const by_family[] = { "projects", NULL, "global", "images", "family", NULL };
	const char *s = api_strip(image);
	char *path;

	if (!s)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "image URL \"%.200s\" has no /projects/ path",
				  image);
	if (str_has_prefix(s, "projects/"))
		path = pp_xstrdup(s);
	else if (str_has_prefix(s, "global/images/"))
		path = api_join("projects/", project, "/", s);
	else
		path = api_join("projects/", project, "/global/images/", s);
	if (!api_path_matches(path, by_name, PP_ARRAY_SIZE(by_name)) &&
	    !api_path_matches(path, by_family, PP_ARRAY_SIZE(by_family))) {
		free(path);
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "image \"%.200s\" is not a name, projects/P/global/images/NAME or "
				  "projects/P/global/images/family/FAMILY", image);
	}
	*ret = path;
	return 0;
}

int gcp_network_path(const char *project, const char *network, char **ret, struct pp_err *err)
{
	static const char *const shape[] = { "projects", NULL, "global", "networks", NULL };
	const char *s = api_strip(network);
	char *path;

	if (!s)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "network URL \"%.200s\" has no /projects/ path", network);
	if (str_has_prefix(s, "projects/"))
		path = pp_xstrdup(s);
	else if (str_has_prefix(s, "global/networks/"))
		path = api_join("projects/", project, "/", s);
	else
		path = api_join("projects/", project, "/global/networks/", s);
	if (!api_path_matches(path, shape, PP_ARRAY_SIZE(shape))) {
		free(path);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "network \"%.200s\" is not a name or "
				  "projects/P/global/networks/NAME", network);
	}
	*ret = path;
	return 0;
}

int gcp_subnetwork_path(const char *project, const char *region, const char *subnet, char **ret,
			struct pp_err *err)
{
	static const char *const shape[] = { "projects", NULL, "regions", NULL, "subnetworks", NULL };
	const char *s = api_strip(subnet);
	char *path;

	if (!s)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "subnetwork URL \"%.200s\" has no /projects/ path", subnet);
	if (str_has_prefix(s, "projects/")) {
		path = pp_xstrdup(s);
	} else if (str_has_prefix(s, "regions/")) {
		path = api_join("projects/", project, "/", s);
	} else {
		char tail[GCP_PATH_MAX];

		snprintf(tail, sizeof(tail), "/regions/%s/subnetworks/", region);
		path = api_join("projects/", project, tail, s);
	}
	if (!api_path_matches(path, shape, PP_ARRAY_SIZE(shape))) {
		free(path);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "subnetwork \"%.200s\" is not a name, "
				  "regions/R/subnetworks/NAME or projects/P/regions/R/subnetworks/NAME",
				  subnet);
	}
	*ret = path;
	return 0;
}

int gcp_zone_region(const char *zone, char *out, size_t size, struct pp_err *err)
{
	const char *dash = strrchr(zone, '-');
	size_t n = dash ? (size_t)(dash - zone) : 0;

	if (!api_segment_ok(zone, strlen(zone)) || n == 0 || !dash[1] || n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "GCP_ZONE \"%.80s\" is not a zone name like us-central1-a", zone);
	memcpy(out, zone, n);
	out[n] = '\0';
	return 0;
}

/* ---- labels and ids ---- */

static bool api_label_value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > GCP_LABEL_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return false;
	return true;
}

int gcp_owner_label(const char *owner, char *out, size_t size, struct pp_err *err)
{
	char hex[DIGEST_MAX_HEX];
	char head[GCP_LABEL_VALUE_MAX + 1];
	size_t i, keep = GCP_LABEL_VALUE_MAX - 9;     /* "-" + 8 hex digits */

	if (!owner[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "gcp provider: the owner id is empty");
	if (size < GCP_LABEL_VALUE_MAX + 1)
		return pp_err_set(err, PP_INTERNAL, "owner label buffer too small");
	if (api_label_value_ok(owner)) {
		snprintf(out, size, "%s", owner);
		return 0;
	}
	if (digest_hex("sha256", owner, strlen(owner), hex, err) < 0)
		return -1;
	for (i = 0; owner[i] && i < keep; i++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)owner[i]);

		head[i] = (islower(ch) || isdigit(ch) || ch == '_') ? (char)ch : '-';
	}
	head[i] = '\0';
	snprintf(out, size, "%s-%.8s", head, hex);
	return 0;
}

int gcp_request_id(char out[37], struct pp_err *err)
{
	uint8_t b[16];

	if (pp_random_bytes(b, sizeof(b), err) < 0)
		return -1;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);     /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

/* ---- instances.insert ---- */

static json_t *api_disks(const struct gcp_insert *in)
{
	char size[32], type[GCP_PATH_MAX];

	snprintf(size, sizeof(size), "%lld", (long long)in->disk_size_gb);   /* int64: a string */
	snprintf(type, sizeof(type), "zones/%s/diskTypes/%s", in->zone, in->disk_type);
	return json_pack("[{s:b, s:b, s:s, s:{s:s, s:s, s:s}}]", "boot", 1, "autoDelete", 1, "type",
			 "PERSISTENT", "initializeParams", "diskSizeGb", size, "sourceImage", in->image,
			 "diskType", type);
}

static json_t *api_nics(const struct gcp_insert *in)
{
	json_t *nic = json_pack("{s:s, s:s}", "network", in->network, "stackType", "IPV4_ONLY");

	if (in->subnetwork)
		json_object_set_new(nic, "subnetwork", json_string(in->subnetwork));
	if (in->public_ip)
		json_object_set_new(nic, "accessConfigs",
				    json_pack("[{s:s, s:s, s:s}]", "name", "External NAT", "type",
					      "ONE_TO_ONE_NAT", "networkTier", "STANDARD"));
	return json_pack("[o]", nic);
}

static json_t *api_confidential(enum gcp_confidential cvm)
{
	json_t *c = json_pack("{s:s}", "confidentialInstanceType", gcp_confidential_name(cvm));

	/* enableConfidentialCompute is the older switch for AMD SEV; with SEV_SNP or TDX the type
	 * alone says it (upstream sends both). */
	if (cvm == GCP_CVM_SEV)
		json_object_set_new(c, "enableConfidentialCompute", json_true());
	return c;
}

json_t *gcp_insert_body(const struct gcp_insert *in)
{
	char mt[GCP_PATH_MAX], desc[256];
	json_t *body, *tags;

	snprintf(mt, sizeof(mt), "zones/%s/machineTypes/%s", in->zone, in->machine_type);
	snprintf(desc, sizeof(desc), "%s%s", GCP_DESCRIPTION_PREFIX, in->sandbox_id);
	body = json_pack("{s:s, s:s, s:s, s:o, s:o, s:{s:[{s:s, s:s}, {s:s, s:s}]}, s:{s:s}}",
			 "name", in->name, "description", desc, "machineType", mt, "disks",
			 api_disks(in), "networkInterfaces", api_nics(in), "metadata", "items", "key",
			 "user-data", "value", in->user_data_b64, "key", "user-data-encoding", "value",
			 "base64", "labels", GCP_LABEL_OWNER, in->owner_label);
	if (!body)
		return NULL;
	if (in->cvm != GCP_CVM_NONE)
		json_object_set_new(body, "confidentialInstanceConfig", api_confidential(in->cvm));
	if (in->min_cpu_platform && in->min_cpu_platform[0])
		json_object_set_new(body, "minCpuPlatform", json_string(in->min_cpu_platform));
	if (in->terminate_on_maintenance)
		json_object_set_new(body, "scheduling", json_pack("{s:s}", "onHostMaintenance", "TERMINATE"));
	if (in->n_tags > 0) {
		tags = json_object();
		for (size_t i = 0; i < in->n_tags; i++)
			json_object_set_new(tags, in->tags[i].key_id, json_string(in->tags[i].value_id));
		json_object_set_new(body, "params", json_pack("{s:o}", "resourceManagerTags", tags));
	}
	return body;
}

/* ---- errors ---- */

static int api_code_for(long status, const char *reason)
{
	if (reason && (strcmp(reason, "alreadyExists") == 0 ||
		       strcmp(reason, "ALREADY_EXISTS") == 0 ||
		       strcmp(reason, "RESOURCE_ALREADY_EXISTS") == 0))
		return PP_ALREADY_EXISTS;
	if (reason && (strcmp(reason, "QUOTA_EXCEEDED") == 0 || strcmp(reason, "quotaExceeded") == 0 ||
		       str_has_prefix(reason, "ZONE_RESOURCE_POOL_EXHAUSTED")))
		return PP_RESOURCE_EXHAUSTED;
	if (reason && strcmp(reason, "RESOURCE_NOT_FOUND") == 0)
		return PP_NOT_FOUND;
	return status ? http_status_to_code(status) : PP_UNKNOWN;
}

int gcp_api_error(long status, const char *body, const char *what, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *e = json_object_get(root, "error");
	json_t *first = json_array_get(json_object_get(e, "errors"), 0);
	const char *reason = json_string_value(json_object_get(first, "reason"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	char text[API_TEXT_MAX], rtext[64];

	if (!reason)
		reason = json_string_value(json_object_get(e, "status"));
	if (!msg)   /* not Google's error shape: a short excerpt of what came */
		msg = json_is_object(root) ? "" : (body ? body : "");
	pp_err_set(err, api_code_for(status, reason), "GCP %s: HTTP %ld %s: %s", what, status,
		   api_clean(rtext, sizeof(rtext), reason ? reason : "error"),
		   api_clean(text, sizeof(text), msg));
	json_decref(root);
	return -1;
}

/* ---- operations ---- */

static bool api_name_ok(const char *s)
{
	return s && api_segment_ok(s, strlen(s)) && strlen(s) < GCP_NAME_MAX;
}

int gcp_operation_parse(const char *body, struct gcp_operation *ret, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *name = json_string_value(json_object_get(root, "name"));
	const char *status = json_string_value(json_object_get(root, "status"));
	json_t *errors = json_object_get(json_object_get(root, "error"), "errors");
	json_t *http = json_object_get(root, "httpErrorStatusCode");
	struct gcp_operation op = { 0 };
	int rc = -1;

	if (!api_name_ok(name) || !status) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP answer is not an Operation (no usable name and status)");
		goto out;
	}
	if (strcmp(status, "PENDING") != 0 && strcmp(status, "RUNNING") != 0 &&
	    strcmp(status, "DONE") != 0) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP operation %s has unknown status \"%.20s\"", name,
			   status);
		goto out;
	}
	snprintf(op.name, sizeof(op.name), "%s", name);
	snprintf(op.status, sizeof(op.status), "%s", status);
	op.done = strcmp(status, "DONE") == 0;
	if (json_is_integer(http))
		op.http_error = (long)json_integer_value(http);
	if (json_array_size(errors) > 0) {
		json_t *e0 = json_array_get(errors, 0);

		op.failed = true;
		api_clean(op.error_code, sizeof(op.error_code),
			  json_string_value(json_object_get(e0, "code")));
		api_clean(op.error_msg, sizeof(op.error_msg),
			  json_string_value(json_object_get(e0, "message")));
	}
	*ret = op;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int gcp_operation_error(const struct gcp_operation *op, const char *what, struct pp_err *err)
{
	int code = api_code_for(op->http_error, op->error_code[0] ? op->error_code : NULL);

	if (code == PP_OK || code == PP_UNKNOWN)
		code = PP_UNAVAILABLE;
	return pp_err_set(err, code, "GCP %s: operation %s failed: %s: %s", what, op->name,
			  op->error_code[0] ? op->error_code : "error",
			  op->error_msg[0] ? op->error_msg : "(no message)");
}

/* ---- machine types, images ---- */

static int api_int(json_t *v, bool allow_string, int64_t *ret)
{
	if (json_is_integer(v)) {
		*ret = json_integer_value(v);
		return 0;
	}
	if (allow_string && json_is_string(v))
		return parse_int64(json_string_value(v), ret);
	return -1;
}

int gcp_machine_type_parse(const char *body, struct instance_type_info *ret, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *acc = json_object_get(root, "accelerators");
	int64_t cpus, mem, gpus = 0, n;
	int rc = -1;

	if (api_int(json_object_get(root, "guestCpus"), false, &cpus) < 0 || cpus <= 0 ||
	    api_int(json_object_get(root, "memoryMb"), false, &mem) < 0 || mem <= 0) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP MachineType has no positive integer guestCpus and memoryMb");
		goto out;
	}
	if (acc && !json_is_array(acc)) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP MachineType: accelerators is not a list");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(acc); i++) {
		if (api_int(json_object_get(json_array_get(acc, i), "guestAcceleratorCount"), false,
			    &n) < 0 || n < 0 || n > 1024) {
			pp_err_set(err, PP_UNAVAILABLE,
				   "GCP MachineType: accelerators[%zu].guestAcceleratorCount is not a count", i);
			goto out;
		}
		gpus += n;
	}
	ret->vcpus = cpus;
	ret->memory_mib = mem;
	ret->gpus = gpus;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int gcp_image_size_parse(const char *body, int64_t *ret_gb, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *status = json_string_value(json_object_get(root, "status"));
	const char *name = json_string_value(json_object_get(root, "name"));
	char text[80];
	int64_t gb;
	int rc = -1;

	if (api_int(json_object_get(root, "diskSizeGb"), true, &gb) < 0 || gb <= 0) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP Image has no positive diskSizeGb");
		goto out;
	}
	if (status && strcmp(status, "READY") != 0) {
		pp_err_set(err, PP_FAILED_PRECONDITION, "GCP image %s is %s, not READY",
			   api_clean(text, sizeof(text), name ? name : "?"), status);
		goto out;
	}
	*ret_gb = gb;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- instances ---- */

static bool api_ip_ok(const char *s)
{
	unsigned char b[16];

	return s && strlen(s) < PROVIDER_IP_MAX &&
	       (inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1);
}

static int api_add_ip(const char *ip, const char *field, char ips[][PROVIDER_IP_MAX], int max,
		      int *n, struct pp_err *err)
{
	if (!ip)
		return 0;
	if (!api_ip_ok(ip))
		return pp_err_set(err, PP_UNAVAILABLE, "GCP instance: %s \"%.60s\" is not an IP address",
				  field, ip);
	if (*n < max)
		snprintf(ips[(*n)++], PROVIDER_IP_MAX, "%s", ip);
	return 0;
}

int gcp_instance_ips_parse(const char *body, bool public_ip, char ips[][PROVIDER_IP_MAX],
			   int max, int *ret_n, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *nics = json_object_get(root, "networkInterfaces");
	int n = 0, rc = -1;

	if (!json_is_object(root) || (nics && !json_is_array(nics))) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP answer is not an Instance with networkInterfaces");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(nics); i++) {
		json_t *nic = json_array_get(nics, i);
		json_t *acs = json_object_get(nic, "accessConfigs");

		if (!public_ip) {
			if (api_add_ip(json_string_value(json_object_get(nic, "networkIP")),
				       "networkIP", ips, max, &n, err) < 0)
				goto out;
			continue;
		}
		for (size_t j = 0; j < json_array_size(acs); j++)
			if (api_add_ip(json_string_value(json_object_get(json_array_get(acs, j), "natIP")),
				       "natIP", ips, max, &n, err) < 0)
				goto out;
	}
	*ret_n = n;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int gcp_instance_owner_parse(const char *body, char *out, size_t size, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *owner = json_string_value(json_object_get(json_object_get(root, "labels"),
							       GCP_LABEL_OWNER));

	if (!json_is_object(root)) {
		json_decref(root);
		return pp_err_set(err, PP_UNAVAILABLE, "GCP answer is not an Instance");
	}
	snprintf(out, size, "%s", owner ? owner : "");
	json_decref(root);
	return 0;
}

static int api_list_item(json_t *it, struct owned_instance_list *l, struct pp_err *err)
{
	struct owned_instance o = { 0 };
	const char *name = json_string_value(json_object_get(it, "name"));
	const char *desc = json_string_value(json_object_get(it, "description"));
	const char *created = json_string_value(json_object_get(it, "creationTimestamp"));

	if (!api_name_ok(name) || strlen(name) > INSTANCE_NAME_MAX)
		return pp_err_set(err, PP_UNAVAILABLE, "GCP instances.list: an item has no usable name");
	snprintf(o.id, sizeof(o.id), "%s", name);
	snprintf(o.name, sizeof(o.name), "%s", name);
	if (desc && str_has_prefix(desc, GCP_DESCRIPTION_PREFIX)) {
		const char *sid = desc + strlen(GCP_DESCRIPTION_PREFIX);

		if (api_segment_ok(sid, strlen(sid)) && strlen(sid) < sizeof(o.sandbox_id))
			snprintf(o.sandbox_id, sizeof(o.sandbox_id), "%s", sid);
	}
	if (created) {
		int64_t t = gcp_time_parse(created);

		o.created_unix = t > 0 ? t : 0;
	}
	if (owned_instance_list_add(l, &o) < 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing instances");
	return 0;
}

int gcp_instance_list_parse(const char *body, struct owned_instance_list *l, char **ret_next,
			    struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	json_t *items = json_object_get(root, "items");
	json_t *next = json_object_get(root, "nextPageToken");
	int rc = -1;

	if (!json_is_object(root) || (items && !json_is_array(items)) ||
	    (next && !json_is_string(next))) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP answer is not an InstanceList");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(items); i++)
		if (api_list_item(json_array_get(items, i), l, err) < 0)
			goto out;
	*ret_next = NULL;
	if (next && json_string_length(next) > 0) {
		if (json_string_length(next) > 4096) {
			pp_err_set(err, PP_UNAVAILABLE, "GCP instances.list: nextPageToken is too long");
			goto out;
		}
		*ret_next = pp_xstrdup(json_string_value(next));
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int64_t gcp_time_parse(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, n = 0;
	const char *p;
	int64_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return -1;
	p = s + n;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (*p == '+' || *p == '-') {
		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
		    !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]) || p[6])
			return -1;
		oh = (p[1] - '0') * 10 + (p[2] - '0');
		om = (p[4] - '0') * 10 + (p[5] - '0');
		if (*p == '-') {
			oh = -oh;
			om = -om;
		}
	} else if (strcmp(p, "Z") != 0) {
		return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	return t - (int64_t)oh * 3600 - (int64_t)om * 60;
}

int gcp_tag_value_parse(const char *body, struct gcp_tag *t, struct pp_err *err)
{
	json_t *root = json_loads(body ? body : "", 0, NULL);
	const char *name = json_string_value(json_object_get(root, "name"));
	const char *parent = json_string_value(json_object_get(root, "parent"));
	int rc = -1;

	if (!name || !parent || !str_has_prefix(name, "tagValues/") ||
	    !str_has_prefix(parent, "tagKeys/") || !api_name_ok(name + 10) ||
	    !api_name_ok(parent + 8)) {
		pp_err_set(err, PP_UNAVAILABLE, "GCP TagValue for %s=%s has no tagValues/N name and "
			   "tagKeys/N parent", t->key, t->value);
		goto out;
	}
	snprintf(t->value_id, sizeof(t->value_id), "%s", name);
	snprintf(t->key_id, sizeof(t->key_id), "%s", parent);
	rc = 0;
out:
	json_decref(root);
	return rc;
}
