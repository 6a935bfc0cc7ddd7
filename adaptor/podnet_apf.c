/*
 * struct podnet_info -> struct apf_pod_network, the input of apf_json_render (see
 * podnet_worker.h). Text as upstream's Go encoder writes it: prefixes "a.b.c.d/n", no gateway
 * as "", MACs in lower case, enum names for protocol/scope/state ("" when 0: left out). One
 * deliberate difference: the default route's dst is "0.0.0.0/0", where upstream prints
 * "::ffff:0.0.0.0/0" (a Go rendering accident); both decoders accept both.
 */
#include "adaptor/podnet_worker.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void podnet_apf_clear(struct podnet_apf *a)
{
	if (!a)
		return;
	free(a->routes);
	free(a->route_text);
	free(a->neighbors);
	free(a->neigh_text);
	memset(a, 0, sizeof(*a));
}

static const char *podnet_enum_text(const char *name)
{
	return name ? name : "";
}

static void podnet_apf_route(const struct podnet_route *r, struct apf_route *out,
			     struct podnet_apf_route_text *text)
{
	podnet_prefix_format(&r->dst, text->dst, sizeof(text->dst));
	podnet_addr_format(r->gw, text->gw, sizeof(text->gw));
	pp_strlcpy(text->dev, r->dev, sizeof(text->dev));
	out->dst = text->dst;
	out->gw = text->gw;
	out->dev = text->dev;
	out->protocol = r->protocol ? podnet_enum_text(podnet_protocol_name(r->protocol)) : "";
	out->scope = r->scope ? podnet_enum_text(podnet_scope_name(r->scope)) : "";
}

static void podnet_apf_neigh(const struct podnet_neigh *n, struct apf_neighbor *out,
			     struct podnet_apf_neigh_text *text)
{
	podnet_addr_format(n->ip, text->ip, sizeof(text->ip));
	podnet_mac_format(n->mac, text->mac, sizeof(text->mac));
	pp_strlcpy(text->dev, n->dev, sizeof(text->dev));
	out->ip = text->ip;
	out->hw_addr = text->mac;
	out->dev = text->dev;
	out->state = n->state ? podnet_enum_text(podnet_nud_name(n->state)) : "";
}

static int podnet_apf_alloc(const struct podnet_info *info, struct podnet_apf *a)
{
	size_t nr = info->n_routes ? info->n_routes : 1, nn = info->n_neighs ? info->n_neighs : 1;

	a->routes = calloc(nr, sizeof(*a->routes));
	a->route_text = calloc(nr, sizeof(*a->route_text));
	a->neighbors = calloc(nn, sizeof(*a->neighbors));
	a->neigh_text = calloc(nn, sizeof(*a->neigh_text));
	return a->routes && a->route_text && a->neighbors && a->neigh_text ? 0 : -1;
}

/* ret's pointers point into ret itself: it must not be copied (`ret` stays where it is). */
int podnet_worker_apf(const struct podnet_info *info, struct podnet_apf *ret, struct pp_err *err)
{
	struct apf_pod_network *pn = &ret->pn;

	memset(ret, 0, sizeof(*ret));
	if (podnet_apf_alloc(info, ret) < 0) {
		podnet_apf_clear(ret);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "apf.json: out of memory");
	}
	for (size_t i = 0; i < info->n_routes; i++)
		podnet_apf_route(&info->routes[i], &ret->routes[i], &ret->route_text[i]);
	for (size_t i = 0; i < info->n_neighs; i++)
		podnet_apf_neigh(&info->neighs[i], &ret->neighbors[i], &ret->neigh_text[i]);
	pp_strlcpy(ret->interface, info->pod_if, sizeof(ret->interface));
	pp_strlcpy(ret->tunnel_type, info->tunnel_type, sizeof(ret->tunnel_type));
	pn->pod_ip = podnet_prefix_format(&info->pod_ip, ret->pod_ip, sizeof(ret->pod_ip));
	pn->pod_hw_addr = podnet_mac_format(info->pod_mac, ret->pod_mac, sizeof(ret->pod_mac));
	pn->interface = ret->interface;
	pn->worker_node_ip = podnet_prefix_format(&info->worker_ip, ret->worker_ip,
						  sizeof(ret->worker_ip));
	pn->tunnel_type = ret->tunnel_type;
	pn->routes = ret->routes;
	pn->n_routes = info->n_routes;
	pn->neighbors = ret->neighbors;
	pn->n_neighbors = info->n_neighs;
	pn->mtu = (int)info->mtu;
	pn->index = (int)info->index;
	pn->vxlan_port = info->port;
	pn->vxlan_id = (int)info->vni;
	pn->dedicated = info->dedicated;
	pn->external_net_via_pod_vm = info->external_net_via_podvm;
	return 0;
}
