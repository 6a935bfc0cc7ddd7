/*
 * apf.json rendering (see apf_json.h) with jansson. Objects keep insertion order, so the output
 * follows upstream's field order and a golden test can compare it.
 */
#include "adaptor/apf_json.h"

#include <jansson.h>
#include <string.h>

#define APF_JSON_INDENT 4

static const char *const apf_protocols[] = { "kernel", "boot", "static", "dhcp", NULL };
static const char *const apf_scopes[] = { "universe", "site", "link", "host", "nowhere", NULL };
static const char *const apf_states[] = { "none", "incomplete", "reachable", "stale", "delay",
					  "probe", "failed", "noarp", "permanent", NULL };

static const char *apf_str(const char *s)
{
	return s ? s : "";
}

static int apf_set(json_t *obj, const char *key, json_t *v, struct pp_err *err)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: cannot encode %s (out of memory or not UTF-8)", key);
	return 0;
}

static int apf_set_str(json_t *obj, const char *key, const char *s, struct pp_err *err)
{
	return apf_set(obj, key, json_string(apf_str(s)), err);
}

/* An enum field: "" (and the zero name, e.g. "universe") is left out, an unknown name refused. */
static int apf_set_enum(json_t *obj, const char *key, const char *v, const char *const *names,
			bool zero_is_first, struct pp_err *err)
{
	if (!v || v[0] == '\0' || (zero_is_first && strcmp(v, names[0]) == 0))
		return 0;
	for (size_t i = zero_is_first ? 1 : 0; names[i]; i++)
		if (strcmp(v, names[i]) == 0)
			return apf_set_str(obj, key, v, err);
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "apf.json: %s \"%.32s\" is not a value the forwarder accepts", key, v);
}

static json_t *apf_route_json(const struct apf_route *r, struct pp_err *err)
{
	json_t *o = json_object();

	if (!o) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory at routes");
		return NULL;
	}
	if (apf_set_str(o, "dst", r->dst, err) < 0 || apf_set_str(o, "gw", r->gw, err) < 0 ||
	    apf_set_str(o, "dev", r->dev, err) < 0 ||
	    apf_set_enum(o, "protocol", r->protocol, apf_protocols, false, err) < 0 ||
	    apf_set_enum(o, "scope", r->scope, apf_scopes, true, err) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *apf_neighbor_json(const struct apf_neighbor *nb, struct pp_err *err)
{
	json_t *o = json_object();

	if (!o) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory at neighbors");
		return NULL;
	}
	if (apf_set_str(o, "ip", nb->ip, err) < 0 || apf_set_str(o, "hw-addr", nb->hw_addr, err) < 0 ||
	    apf_set_str(o, "dev", nb->dev, err) < 0 ||
	    apf_set_enum(o, "state", nb->state, apf_states, true, err) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int apf_set_routes(json_t *net, const struct apf_pod_network *pn, struct pp_err *err)
{
	json_t *a;

	if (pn->n_routes == 0)
		return apf_set(net, "routes", json_null(), err);
	a = json_array();
	if (apf_set(net, "routes", a, err) < 0)
		return -1;
	for (size_t i = 0; i < pn->n_routes; i++) {
		json_t *r = apf_route_json(&pn->routes[i], err);

		if (!r)
			return -1;
		if (json_array_append_new(a, r) < 0)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory at routes");
	}
	return 0;
}

static int apf_set_neighbors(json_t *net, const struct apf_pod_network *pn, struct pp_err *err)
{
	json_t *a;

	if (pn->n_neighbors == 0)
		return apf_set(net, "neighbors", json_null(), err);
	a = json_array();
	if (apf_set(net, "neighbors", a, err) < 0)
		return -1;
	for (size_t i = 0; i < pn->n_neighbors; i++) {
		json_t *nb = apf_neighbor_json(&pn->neighbors[i], err);

		if (!nb)
			return -1;
		if (json_array_append_new(a, nb) < 0)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
					  "apf.json: out of memory at neighbors");
	}
	return 0;
}

static int apf_set_ints(json_t *net, const struct apf_pod_network *pn, struct pp_err *err)
{
	if (apf_set(net, "mtu", json_integer(pn->mtu), err) < 0 ||
	    apf_set(net, "index", json_integer(pn->index), err) < 0)
		return -1;
	if (pn->vxlan_port != 0 && apf_set(net, "vxlan-port", json_integer(pn->vxlan_port), err) < 0)
		return -1;
	if (pn->vxlan_id != 0 && apf_set(net, "vxlan-id", json_integer(pn->vxlan_id), err) < 0)
		return -1;
	return 0;
}

static int apf_set_pod_network(json_t *root, const struct apf_pod_network *pn,
			       struct pp_err *err)
{
	static const struct apf_pod_network zero;
	json_t *net = json_object();

	if (apf_set(root, "pod-network", net, err) < 0)
		return -1;
	if (!pn)
		pn = &zero;
	if (apf_set_str(net, "podip", pn->pod_ip, err) < 0 ||
	    apf_set_str(net, "pod-hw-addr", pn->pod_hw_addr, err) < 0 ||
	    apf_set_str(net, "interface", pn->interface, err) < 0 ||
	    apf_set_str(net, "worker-node-ip", pn->worker_node_ip, err) < 0 ||
	    apf_set_str(net, "tunnel-type", pn->tunnel_type, err) < 0 ||
	    apf_set_routes(net, pn, err) < 0 || apf_set_neighbors(net, pn, err) < 0 ||
	    apf_set_ints(net, pn, err) < 0 ||
	    apf_set(net, "dedicated", json_boolean(pn->dedicated), err) < 0 ||
	    apf_set(net, "external-net-via-pod-vm", json_boolean(pn->external_net_via_pod_vm),
		    err) < 0)
		return -1;
	return 0;
}

static int apf_set_optional(json_t *root, const char *key, const char *v, struct pp_err *err)
{
	if (!v || v[0] == '\0')
		return 0;
	return apf_set_str(root, key, v, err);
}

static int apf_set_tls(json_t *root, const struct apf_config *c, struct pp_err *err)
{
	const char *v = c->tls_min_version;
	json_t *a;

	if (v && v[0] != '\0' && strcmp(v, "VersionTLS12") != 0 && strcmp(v, "VersionTLS13") != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: tls-min-version \"%.32s\" is not VersionTLS12 or VersionTLS13",
				  v);
	if (apf_set_optional(root, "tls-server-key", c->tls_server_key, err) < 0 ||
	    apf_set_optional(root, "tls-server-cert", c->tls_server_cert, err) < 0 ||
	    apf_set_optional(root, "tls-client-ca", c->tls_client_ca, err) < 0 ||
	    apf_set_optional(root, "tls-min-version", v, err) < 0)
		return -1;
	if (c->n_tls_cipher_suites == 0)
		return 0;
	a = json_array();
	if (apf_set(root, "tls-cipher-suites", a, err) < 0)
		return -1;
	for (size_t i = 0; i < c->n_tls_cipher_suites; i++)
		if (json_array_append_new(a, json_string(apf_str(c->tls_cipher_suites[i]))) < 0)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
					  "apf.json: out of memory at tls-cipher-suites");
	return 0;
}

int apf_json_render(const struct apf_config *cfg, char **ret_text, struct pp_err *err)
{
	json_t *root = json_object();
	char *text;

	if (!root)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory");
	if (apf_set_pod_network(root, cfg->pod_network, err) < 0 ||
	    apf_set_str(root, "pod-namespace", cfg->pod_namespace, err) < 0 ||
	    apf_set_str(root, "pod-name", cfg->pod_name, err) < 0 || apf_set_tls(root, cfg, err) < 0) {
		json_decref(root);
		return -1;
	}
	text = json_dumps(root, JSON_INDENT(APF_JSON_INDENT) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory");
	*ret_text = text;
	return 0;
}
