/*
 * apf.json decoding (see apf_config.h). Each JSON object is described by a const table of
 * fields (name, kind, offset into the struct); one generic routine walks an object's keys,
 * matches them case-insensitively against the table as Go does, and decodes each value by its
 * kind. Adding a field is one table line.
 */
#include "forwarder/apf_config.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/fileutil.h"
#include "lib/util.h"

#define APF_CTX_MAX 128
#define APF_MAX_FIELDS 16

enum apf_kind {
	APF_K_STRING,
	APF_K_INT,
	APF_K_BOOL,
	APF_K_PREFIX,
	APF_K_ADDR,
	APF_K_PROTOCOL,
	APF_K_SCOPE,
	APF_K_STATE,
	APF_K_TLS_VERSION,
	APF_K_STRING_LIST,   /* char ** at off, size_t count at aux */
	APF_K_ROUTES,        /* struct apf_route * at off, size_t count at aux */
	APF_K_NEIGHBORS,     /* struct apf_neighbor * at off, size_t count at aux */
	APF_K_POD_NETWORK,   /* struct apf_pod_network at off, bool "present" at aux */
};

struct apf_field {
	const char *name;
	enum apf_kind kind;
	size_t off;
	size_t aux;
	int64_t min, max;    /* APF_K_INT */
};

struct apf_enum_name {
	const char *name;
	int value;
};

/* Go's vishvananda/netlink names (spec §4.3) with the kernel's numbers. */
static const struct apf_enum_name apf_protocols[] = {
	{ "kernel", 2 }, { "boot", 3 }, { "static", 4 }, { "dhcp", 16 }, { NULL, 0 },
};
static const struct apf_enum_name apf_scopes[] = {
	{ "universe", 0 }, { "site", 200 }, { "link", 253 }, { "host", 254 }, { "nowhere", 255 },
	{ NULL, 0 },
};
static const struct apf_enum_name apf_states[] = {
	{ "none", 0x00 }, { "incomplete", 0x01 }, { "reachable", 0x02 }, { "stale", 0x04 },
	{ "delay", 0x08 }, { "probe", 0x10 }, { "failed", 0x20 }, { "noarp", 0x40 },
	{ "permanent", 0x80 }, { NULL, 0 },
};
static const struct apf_enum_name apf_tls_versions[] = {
	{ "VersionTLS12", APF_TLS_1_2 }, { "VersionTLS13", APF_TLS_1_3 }, { NULL, 0 },
};

static const struct apf_field apf_route_fields[] = {
	{ "dst", APF_K_PREFIX, offsetof(struct apf_route, dst), 0, 0, 0 },
	{ "gw", APF_K_ADDR, offsetof(struct apf_route, gw), 0, 0, 0 },
	{ "dev", APF_K_STRING, offsetof(struct apf_route, dev), 0, 0, 0 },
	{ "protocol", APF_K_PROTOCOL, offsetof(struct apf_route, protocol), 0, 0, 0 },
	{ "scope", APF_K_SCOPE, offsetof(struct apf_route, scope), 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, 0 },
};

static const struct apf_field apf_neighbor_fields[] = {
	{ "ip", APF_K_ADDR, offsetof(struct apf_neighbor, ip), 0, 0, 0 },
	{ "hw-addr", APF_K_STRING, offsetof(struct apf_neighbor, hw_addr), 0, 0, 0 },
	{ "dev", APF_K_STRING, offsetof(struct apf_neighbor, dev), 0, 0, 0 },
	{ "state", APF_K_STATE, offsetof(struct apf_neighbor, state), 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, 0 },
};

#define PN(f) offsetof(struct apf_pod_network, f)
static const struct apf_field apf_pod_network_fields[] = {
	{ "podip", APF_K_PREFIX, PN(pod_ip), 0, 0, 0 },
	{ "pod-hw-addr", APF_K_STRING, PN(pod_hw_addr), 0, 0, 0 },
	{ "interface", APF_K_STRING, PN(interface), 0, 0, 0 },
	{ "worker-node-ip", APF_K_PREFIX, PN(worker_node_ip), 0, 0, 0 },
	{ "tunnel-type", APF_K_STRING, PN(tunnel_type), 0, 0, 0 },
	{ "routes", APF_K_ROUTES, PN(routes), PN(n_routes), 0, 0 },
	{ "neighbors", APF_K_NEIGHBORS, PN(neighbors), PN(n_neighbors), 0, 0 },
	{ "mtu", APF_K_INT, PN(mtu), 0, 0, 65535 },
	{ "index", APF_K_INT, PN(index), 0, 0, INT32_MAX },
	{ "vxlan-port", APF_K_INT, PN(vxlan_port), 0, 0, 65535 },
	{ "vxlan-id", APF_K_INT, PN(vxlan_id), 0, 0, 0xffffff },
	{ "dedicated", APF_K_BOOL, PN(dedicated), 0, 0, 0 },
	{ "external-net-via-pod-vm", APF_K_BOOL, PN(external_net_via_pod_vm), 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, 0 },
};

#define CF(f) offsetof(struct apf_config, f)
static const struct apf_field apf_config_fields[] = {
	{ "pod-network", APF_K_POD_NETWORK, CF(pod_network), CF(has_pod_network), 0, 0 },
	{ "pod-namespace", APF_K_STRING, CF(pod_namespace), 0, 0, 0 },
	{ "pod-name", APF_K_STRING, CF(pod_name), 0, 0, 0 },
	{ "tls-server-key", APF_K_STRING, CF(tls_server_key), 0, 0, 0 },
	{ "tls-server-cert", APF_K_STRING, CF(tls_server_cert), 0, 0, 0 },
	{ "tls-client-ca", APF_K_STRING, CF(tls_client_ca), 0, 0, 0 },
	{ "tls-min-version", APF_K_TLS_VERSION, CF(tls_min_version), 0, 0, 0 },
	{ "tls-cipher-suites", APF_K_STRING_LIST, CF(tls_cipher_suites), CF(n_tls_cipher_suites), 0, 0 },
	{ NULL, 0, 0, 0, 0, 0 },
};

static int apf_decode_object(json_t *obj, const struct apf_field *fields, void *base,
			     const char *ctx, struct pp_err *err);

/* The name of a field for messages ("pod-network.routes[1].gw"); nesting is two levels deep,
 * so it always fits, but the check stays. */
static int apf_ctx_name(char *out, size_t size, struct pp_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int apf_ctx_name(char *out, size_t size, struct pp_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INTERNAL, "apf.json: field name too long");
	return 0;
}

static int apf_type_error(const char *ctx, const char *want, struct pp_err *err)
{
	return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s must be %s", ctx, want);
}

static int apf_get_string(json_t *v, const char *ctx, const char **ret, struct pp_err *err)
{
	if (!json_is_string(v))
		return apf_type_error(ctx, "a string", err);
	if (json_string_length(v) > APF_MAX_STRING)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s is too long (limit %d bytes)",
				  ctx, APF_MAX_STRING);
	*ret = json_string_value(v);
	return 0;
}

static int apf_parse_addr(const char *s, struct apf_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bytes) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->bytes) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

static int apf_decode_addr(json_t *v, struct apf_addr *a, const char *ctx, struct pp_err *err)
{
	const char *s;
	char q[64];

	if (apf_get_string(v, ctx, &s, err) < 0)
		return -1;
	if (s[0] == '\0') {
		memset(a, 0, sizeof(*a));
		return 0;
	}
	if (apf_parse_addr(s, a) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s: %s is not an IP address",
				  ctx, str_quote(q, sizeof(q), s));
	return 0;
}

/* "a.b.c.d/len" or "x::y/len"; "" is the zero prefix. */
static int apf_decode_prefix(json_t *v, struct apf_prefix *p, const char *ctx,
			     struct pp_err *err)
{
	char text[64], q[64];
	const char *s;
	char *slash;
	uint32_t len;

	if (apf_get_string(v, ctx, &s, err) < 0)
		return -1;
	memset(p, 0, sizeof(*p));
	if (s[0] == '\0')
		return 0;
	if (!pp_strlcpy(text, s, sizeof(text)) || !(slash = strchr(text, '/')))
		goto bad;
	*slash = '\0';
	if (apf_parse_addr(text, &p->addr) < 0 || parse_uint32(slash + 1, &len) < 0 ||
	    len > (p->addr.family == AF_INET ? 32u : 128u) || (slash[1] == '0' && slash[2]))
		goto bad;
	p->len = len;
	return 0;
bad:
	memset(p, 0, sizeof(*p));
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "apf.json: %s: %s is not an address with a prefix length (a.b.c.d/n)", ctx,
			  str_quote(q, sizeof(q), s));
}

static int apf_decode_enum(json_t *v, const struct apf_enum_name *names, int *ret,
			   const char *ctx, struct pp_err *err)
{
	const char *s;
	char q[64];
	size_t i;

	if (apf_get_string(v, ctx, &s, err) < 0)
		return -1;
	for (i = 0; names[i].name; i++) {
		if (strcmp(s, names[i].name) == 0) {
			*ret = names[i].value;
			return 0;
		}
	}
	return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s: unknown value %s", ctx,
			  str_quote(q, sizeof(q), s));
}

static int apf_decode_tls_version(json_t *v, int *ret, const char *ctx, struct pp_err *err)
{
	if (json_is_string(v) && json_string_length(v) == 0) {
		*ret = 0;
		return 0;
	}
	if (apf_decode_enum(v, apf_tls_versions, ret, ctx, err) < 0) {
		char q[64];
		if (!json_is_string(v))
			return -1;
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: %s: %s is not supported (expected VersionTLS12 or VersionTLS13)",
				  ctx, str_quote(q, sizeof(q), json_string_value(v)));
	}
	return 0;
}

static int apf_decode_int(json_t *v, const struct apf_field *f, int64_t *ret, const char *ctx,
			  struct pp_err *err)
{
	json_int_t n;

	if (!json_is_integer(v))
		return apf_type_error(ctx, "an integer", err);
	n = json_integer_value(v);
	if (n < f->min || n > f->max)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: %s: %lld is out of range (%lld..%lld)", ctx, (long long)n,
				  (long long)f->min, (long long)f->max);
	*ret = n;
	return 0;
}

/* Checks an array's type and size; returns its length. */
static int apf_check_array(json_t *v, size_t max, const char *ctx, size_t *ret_n,
			   struct pp_err *err)
{
	if (!json_is_array(v))
		return apf_type_error(ctx, "an array", err);
	if (json_array_size(v) > max)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s has more than %zu entries",
				  ctx, max);
	*ret_n = json_array_size(v);
	return 0;
}

static int apf_decode_string_list(json_t *v, char ***list, size_t *count, const char *ctx,
				  struct pp_err *err)
{
	char ictx[APF_CTX_MAX];
	size_t i, n;

	if (apf_check_array(v, APF_MAX_CIPHERS, ctx, &n, err) < 0)
		return -1;
	*list = pp_xcalloc(n ? n : 1, sizeof(**list));
	for (i = 0; i < n; i++) {
		const char *s;

		if (apf_ctx_name(ictx, sizeof(ictx), err, "%s[%zu]", ctx, i) < 0 ||
		    apf_get_string(json_array_get(v, i), ictx, &s, err) < 0)
			return -1;
		(*list)[i] = pp_xstrdup(s);
		(*count)++;
	}
	return 0;
}

/* An array of objects, each decoded with fields into elements of elem_size bytes. */
static int apf_decode_object_array(json_t *v, const struct apf_field *fields, size_t elem_size,
				   size_t max, void **arr, size_t *count, const char *ctx,
				   struct pp_err *err)
{
	char ictx[APF_CTX_MAX];
	size_t i, n;

	if (apf_check_array(v, max, ctx, &n, err) < 0)
		return -1;
	*arr = pp_xcalloc(n ? n : 1, elem_size);
	for (i = 0; i < n; i++) {
		if (apf_ctx_name(ictx, sizeof(ictx), err, "%s[%zu]", ctx, i) < 0)
			return -1;
		(*count)++;
		if (apf_decode_object(json_array_get(v, i), fields, (char *)*arr + i * elem_size, ictx,
				      err) < 0)
			return -1;
	}
	return 0;
}

static int apf_decode_field(const struct apf_field *f, json_t *v, char *base, const char *ctx,
			    struct pp_err *err)
{
	void *p = base + f->off;
	const char *s;

	switch (f->kind) {
	case APF_K_STRING:
		if (apf_get_string(v, ctx, &s, err) < 0)
			return -1;
		*(char **)p = pp_xstrdup(s);
		return 0;
	case APF_K_INT:
		return apf_decode_int(v, f, p, ctx, err);
	case APF_K_BOOL:
		if (!json_is_boolean(v))
			return apf_type_error(ctx, "true or false", err);
		*(bool *)p = json_is_true(v);
		return 0;
	case APF_K_PREFIX:
		return apf_decode_prefix(v, p, ctx, err);
	case APF_K_ADDR:
		return apf_decode_addr(v, p, ctx, err);
	case APF_K_PROTOCOL:
		return apf_decode_enum(v, apf_protocols, p, ctx, err);
	case APF_K_SCOPE:
		return apf_decode_enum(v, apf_scopes, p, ctx, err);
	case APF_K_STATE:
		return apf_decode_enum(v, apf_states, p, ctx, err);
	case APF_K_TLS_VERSION:
		return apf_decode_tls_version(v, p, ctx, err);
	case APF_K_STRING_LIST:
		return apf_decode_string_list(v, p, (size_t *)(base + f->aux), ctx, err);
	case APF_K_ROUTES:
		return apf_decode_object_array(v, apf_route_fields, sizeof(struct apf_route),
					       APF_MAX_ROUTES, p, (size_t *)(base + f->aux), ctx, err);
	case APF_K_NEIGHBORS:
		return apf_decode_object_array(v, apf_neighbor_fields, sizeof(struct apf_neighbor),
					       APF_MAX_NEIGHBORS, p, (size_t *)(base + f->aux), ctx,
					       err);
	case APF_K_POD_NETWORK:
		*(bool *)(base + f->aux) = true;
		return apf_decode_object(v, apf_pod_network_fields, p, ctx, err);
	}
	return pp_err_set(err, PP_INTERNAL, "apf.json: %s: unhandled field kind", ctx);
}

static int apf_find_field(const struct apf_field *fields, const char *key)
{
	int i;

	for (i = 0; fields[i].name; i++)
		if (strcasecmp(fields[i].name, key) == 0)
			return i;
	return -1;
}

/* Known keys (case-insensitive) are decoded, unknown keys ignored, null values skipped. */
static int apf_decode_object(json_t *obj, const struct apf_field *fields, void *base,
			     const char *ctx, struct pp_err *err)
{
	bool seen[APF_MAX_FIELDS] = { false };
	char fctx[APF_CTX_MAX];
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return apf_type_error(ctx[0] ? ctx : "the document", "an object", err);
	json_object_foreach(obj, key, v) {
		int i = apf_find_field(fields, key);

		if (i < 0)
			continue;
		if (apf_ctx_name(fctx, sizeof(fctx), err, "%s%s%s", ctx, ctx[0] ? "." : "",
				 fields[i].name) < 0)
			return -1;
		if (seen[i])
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "apf.json: %s is given twice (keys match case-insensitively)",
					  fctx);
		seen[i] = true;
		if (json_is_null(v))
			continue;
		if (apf_decode_field(&fields[i], v, base, fctx, err) < 0)
			return -1;
	}
	return 0;
}

int apf_config_parse(const char *buf, size_t len, struct apf_config **ret, struct pp_err *err)
{
	struct apf_config *cfg;
	json_error_t jerr;
	json_t *root;
	int r;

	if (len > APF_MAX_SIZE)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json too large: %zu bytes (limit %d)",
				  len, APF_MAX_SIZE);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json line %d, column %d: invalid JSON: %s", jerr.line, jerr.column,
				  jerr.text);
	cfg = pp_xcalloc(1, sizeof(*cfg));
	r = apf_decode_object(root, apf_config_fields, cfg, "", err);
	json_decref(root);
	if (r < 0) {
		apf_config_free(cfg);
		return -1;
	}
	*ret = cfg;
	return 0;
}

int apf_config_load(const char *path, struct apf_config **ret, struct pp_err *err)
{
	uint8_t *buf;
	size_t len;
	int r;

	if (file_read_all(path, APF_MAX_SIZE, &buf, &len, err) < 0)
		return pp_err_prefix(err, "reading forwarder config %s", path);
	r = apf_config_parse((const char *)buf, len, ret, err);
	explicit_bzero(buf, len);  /* it holds the TLS private key */
	free(buf);
	return r;
}

static void apf_pod_network_free(struct apf_pod_network *pn)
{
	size_t i;

	for (i = 0; i < pn->n_routes; i++)
		free(pn->routes[i].dev);
	free(pn->routes);
	for (i = 0; i < pn->n_neighbors; i++) {
		free(pn->neighbors[i].hw_addr);
		free(pn->neighbors[i].dev);
	}
	free(pn->neighbors);
	free(pn->pod_hw_addr);
	free(pn->interface);
	free(pn->tunnel_type);
}

void apf_config_free(struct apf_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	apf_pod_network_free(&cfg->pod_network);
	free(cfg->pod_namespace);
	free(cfg->pod_name);
	if (cfg->tls_server_key) {
		explicit_bzero(cfg->tls_server_key, strlen(cfg->tls_server_key));
		free(cfg->tls_server_key);
	}
	free(cfg->tls_server_cert);
	free(cfg->tls_client_ca);
	for (i = 0; i < cfg->n_tls_cipher_suites; i++)
		free(cfg->tls_cipher_suites[i]);
	free(cfg->tls_cipher_suites);
	free(cfg);
}

const char *apf_addr_format(const struct apf_addr *a, char *out, size_t size)
{
	if (size == 0)
		return out;
	out[0] = '\0';
	if (a->family && !inet_ntop(a->family, a->bytes, out, (socklen_t)size))
		out[0] = '\0';
	return out;
}
