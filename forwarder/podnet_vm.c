/*
 * Pod networking inside the pod VM (see podnet_vm.h). apf.json is hostile input: every value
 * is checked when converted (podnet_vm_info) before anything touches the kernel, and each
 * kernel call's failure names what it was doing.
 */
#include "forwarder/podnet_vm.h"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "podnet/podnet_ipt.h"
#include "podnet/podnet_nl.h"

/* ---- apf.json -> podnet_info ---- */

static const uint8_t podnet_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* An apf address as IPv4: unset is 0.0.0.0, IPv4-mapped IPv6 is unmapped. -1 for real IPv6. */
static int podnet_vm_v4(const struct apf_addr *a, struct in_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (a->family == 0)
		return 0;
	if (a->family == AF_INET) {
		memcpy(ret, a->bytes, 4);
		return 0;
	}
	if (a->family == AF_INET6 && memcmp(a->bytes, podnet_v4mapped, 12) == 0) {
		memcpy(ret, a->bytes + 12, 4);
		return 0;
	}
	return -1;
}

/* Go renders a missing RTA_DST as "::ffff:0.0.0.0/0": the length is the IPv4 one. */
static int podnet_vm_prefix(const struct apf_prefix *p, struct podnet_prefix *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (podnet_vm_v4(&p->addr, &ret->addr) < 0)
		return -1;
	if (p->addr.family == AF_INET6 && p->len > 32) {
		if (p->len < 96)
			return -1;
		ret->len = p->len - 96;
	} else {
		ret->len = p->len;
	}
	return ret->len <= 32 ? 0 : -1;
}

static int podnet_vm_ifname(const char *name, char out[IFNAMSIZ], const char *what,
			    struct pp_err *err)
{
	char q[64];

	if (!name || !name[0] || !pp_strlcpy(out, name, IFNAMSIZ) || strchr(name, '/'))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s: %s is not an interface name",
				  what, str_quote(q, sizeof(q), name ? name : ""));
	return 0;
}

static int podnet_vm_route(const struct apf_route *in, size_t i, struct podnet_route *out,
			   struct pp_err *err)
{
	char what[48];

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "pod-network.routes[%zu]", i);
	if (podnet_vm_prefix(&in->dst, &out->dst) < 0 || podnet_vm_v4(&in->gw, &out->gw) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: %s: only IPv4 routes are supported", what);
	out->protocol = in->protocol;
	out->scope = in->scope;
	return podnet_vm_ifname(in->dev, out->dev, what, err);
}

static int podnet_vm_neigh(const struct apf_neighbor *in, size_t i, struct podnet_neigh *out,
			   struct pp_err *err)
{
	char what[48];

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "pod-network.neighbors[%zu]", i);
	if (in->ip.family == 0 || podnet_vm_v4(&in->ip, &out->ip) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s: ip must be IPv4", what);
	if (podnet_mac_parse(in->hw_addr, out->mac) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: %s: hw-addr is not a MAC", what);
	out->state = in->state;
	return podnet_vm_ifname(in->dev, out->dev, what, err);
}

static int podnet_vm_lists(const struct apf_pod_network *pn, struct podnet_info *info,
			   struct pp_err *err)
{
	if (pn->n_routes > PODNET_MAX_ROUTES || pn->n_neighbors > PODNET_MAX_NEIGHBORS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "apf.json: too many routes or neighbours");
	info->routes = calloc(pn->n_routes ? pn->n_routes : 1, sizeof(*info->routes));
	info->neighs = calloc(pn->n_neighbors ? pn->n_neighbors : 1, sizeof(*info->neighs));
	if (!info->routes || !info->neighs)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
	for (; info->n_routes < pn->n_routes; info->n_routes++)
		if (podnet_vm_route(&pn->routes[info->n_routes], info->n_routes,
				    &info->routes[info->n_routes], err) < 0)
			return -1;
	for (; info->n_neighs < pn->n_neighbors; info->n_neighs++)
		if (podnet_vm_neigh(&pn->neighbors[info->n_neighs], info->n_neighs,
				    &info->neighs[info->n_neighs], err) < 0)
			return -1;
	return 0;
}

static int podnet_vm_scalars(const struct apf_pod_network *pn, struct podnet_info *info,
			     struct pp_err *err)
{
	if (podnet_vm_ifname(pn->interface, info->pod_if, "pod-network.interface", err) < 0)
		return -1;
	if (pn->pod_ip.addr.family == 0 || podnet_vm_prefix(&pn->pod_ip, &info->pod_ip) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: pod-network.podip must be an IPv4 address with a prefix");
	if (pn->worker_node_ip.addr.family == 0 ||
	    podnet_vm_prefix(&pn->worker_node_ip, &info->worker_ip) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: pod-network.worker-node-ip must be an IPv4 address");
	if (podnet_mac_parse(pn->pod_hw_addr, info->pod_mac) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: pod-network.pod-hw-addr is not a MAC address");
	if (pn->mtu < 0 || pn->mtu > 65535 || pn->vxlan_id < 0 || pn->vxlan_id >= PODNET_VNI_LIMIT ||
	    pn->vxlan_port < 0 || pn->vxlan_port > 65535 || pn->index < 0 || pn->index > UINT32_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: pod-network: mtu, index, vxlan-id or vxlan-port out of range");
	info->mtu = (unsigned)pn->mtu;
	info->vni = (uint32_t)pn->vxlan_id;
	info->port = pn->vxlan_port ? (uint16_t)pn->vxlan_port : PODNET_VXLAN_PORT;
	info->index = (uint32_t)pn->index;
	info->dedicated = pn->dedicated;
	info->external_net_via_podvm = pn->external_net_via_pod_vm;
	return 0;
}

int podnet_vm_info(const struct apf_pod_network *pn, struct podnet_info *ret, struct pp_err *err)
{
	struct podnet_info info;
	char q[64];

	memset(&info, 0, sizeof(info));
	if (!pn->tunnel_type || strcmp(pn->tunnel_type, PODNET_TUNNEL_VXLAN) != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "apf.json: pod-network.tunnel-type %s is not supported (only vxlan)",
				  str_quote(q, sizeof(q), pn->tunnel_type ? pn->tunnel_type : ""));
	pp_strlcpy(info.tunnel_type, pn->tunnel_type, sizeof(info.tunnel_type));
	if (podnet_vm_scalars(pn, &info, err) < 0 || podnet_vm_lists(pn, &info, err) < 0) {
		podnet_info_clear(&info);
		return -1;
	}
	*ret = info;
	return 0;
}

/* ---- waiting for the VM's own network ---- */

static void podnet_vm_sleep(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

struct podnet_wait {
	uint64_t deadline;
	unsigned poll_ms;
};

static bool podnet_wait_more(const struct podnet_wait *w)
{
	if (pp_monotonic_ms() + w->poll_ms > w->deadline)
		return false;
	podnet_vm_sleep(w->poll_ms);
	return true;
}

static int podnet_vm_wait_primary(struct podnet_nl *nl, const struct podnet_wait *w,
				  char name[IFNAMSIZ], struct pp_err *err)
{
	struct pp_err e = { 0 };
	struct in_addr gw;

	while (podnet_primary_iface(nl, name, &gw, &e) < 0)
		if (e.code != PP_NOT_FOUND || !podnet_wait_more(w)) {
			if (err)
				*err = e;
			return pp_err_prefix(err, "waiting for the VM's primary interface");
		}
	return 0;
}

/* Waits until ifname has exactly one IPv4 address; more than one is an error at once. */
static int podnet_vm_wait_addr(struct podnet_nl *nl, const struct podnet_wait *w,
			       const char *ifname, struct pp_err *err)
{
	struct podnet_prefix addrs[PODNET_MAX_ADDRS];
	struct podnet_link link;
	size_t n = 0;
	int found;

	for (;;) {
		found = podnet_link_get(nl, ifname, &link, err);
		if (found < 0)
			return -1;
		if (found && podnet_addr_list(nl, link.ifindex, addrs, PODNET_MAX_ADDRS, &n, err) < 0)
			return -1;
		if (found && n > 1)
			return pp_err_set(err, PP_FAILED_PRECONDITION,
					  "VM interface %s has %zu IPv4 addresses, want one", ifname, n);
		if (found && n == 1)
			return 0;
		if (!podnet_wait_more(w))
			return pp_err_set(err, PP_DEADLINE_EXCEEDED,
					  "VM interface %s got no IPv4 address in time", ifname);
	}
}

static int podnet_vm_wait_network(const struct podnet_vm_opts *o, const struct podnet_info *info,
				  struct podnet_nl *root, struct pp_err *err)
{
	struct podnet_wait w = { .poll_ms = o->poll_ms ? o->poll_ms : PODNET_VM_POLL_MS };
	char primary[IFNAMSIZ];

	w.deadline = pp_monotonic_ms() + (o->wait_ms ? o->wait_ms : PODNET_VM_WAIT_MS);
	if (podnet_vm_wait_primary(root, &w, primary, err) < 0 ||
	    podnet_vm_wait_addr(root, &w, primary, err) < 0)
		return -1;
	if (!info->dedicated)
		return 0;
	if (!o->host_interface || !o->host_interface[0] || strcmp(o->host_interface, primary) == 0)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "pod-network is dedicated but -host-interface is %s (primary %s)",
				  o->host_interface && o->host_interface[0] ? "the primary" : "unset",
				  primary);
	return podnet_vm_wait_addr(root, &w, o->host_interface, err);
}

/* ---- setting up podns ---- */

static const char *podnet_vm_podns(const struct podnet_vm_opts *o)
{
	return o->podns_path ? o->podns_path : PODNET_VM_PODNS_DEFAULT;
}

/* A device of the pod's interface name in podns is ours from an earlier run if it is a
 * VXLAN; anything else there is a conflict we do not resolve. */
static int podnet_vm_remove_stale(struct podnet_nl *pod, const char *name, struct pp_err *err)
{
	struct podnet_link l;
	int found = podnet_link_get(pod, name, &l, err);

	if (found <= 0)
		return found;
	if (strcmp(l.kind, "vxlan") != 0)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "pod namespace already has a %s device named %s", l.kind[0] ? l.kind :
				  "non-VXLAN", name);
	log_warn("removing a stale pod interface", "dev=%s vni=%u", name, l.vni);
	return podnet_link_del(pod, name, err) < 0 ? -1 : 0;
}

static int podnet_vm_make_device(const struct podnet_vm_opts *o, const struct podnet_info *info,
				 struct podnet_nl *root, struct pp_err *err)
{
	struct podnet_vxlan v = {
		.name = info->pod_if, .vni = info->vni, .port = info->port,
		.remote = info->worker_ip.addr, .mac = info->pod_mac,
		.mtu = info->mtu && info->mtu < PODNET_VM_MTU_MAX ? info->mtu : PODNET_VM_MTU_MAX,
	};
	int rc;

	if (podnet_netns_open(podnet_vm_podns(o), &v.netns_fd, err) < 0)
		return -1;
	rc = podnet_vxlan_add(root, &v, err);
	close(v.netns_fd);
	return rc;
}

static int podnet_vm_add_routes(struct podnet_nl *pod, const struct podnet_info *info,
				struct pp_err *err)
{
	for (int with_gw = 0; with_gw < 2; with_gw++)
		for (size_t i = 0; i < info->n_routes; i++) {
			struct podnet_route r = info->routes[i];
			bool has_gw = r.gw.s_addr != htonl(INADDR_ANY);

			if (has_gw != (with_gw == 1))
				continue;
			if (!has_gw)
				r.scope = RT_SCOPE_LINK;
			if (podnet_route_add(pod, &r, err) < 0)
				return -1;
		}
	return 0;
}

/* The pod side, once the device is in podns: address, up, routes, neighbours. */
static int podnet_vm_configure(struct podnet_nl *pod, const struct podnet_info *info,
			       struct pp_err *err)
{
	struct podnet_link dev;
	int found = podnet_link_get(pod, info->pod_if, &dev, err);

	if (found <= 0)
		return found < 0 ? -1 : pp_err_set(err, PP_INTERNAL, "%s vanished from %s",
						   info->pod_if, podnet_nl_where(pod));
	if (podnet_addr_add(pod, dev.ifindex, &info->pod_ip, err) < 0 ||
	    podnet_link_set_up(pod, info->pod_if, err) < 0)
		return -1;
	if (info->pod_ip.len != 32) {
		struct podnet_prefix net = { podnet_prefix_network(&info->pod_ip), info->pod_ip.len };
		int n = podnet_route_del_dst(pod, dev.ifindex, &net, err);

		if (n < 0)
			return -1;
		if (n == 0)
			return pp_err_set(err, PP_INTERNAL, "no connected route for the pod address on %s",
					  info->pod_if);
	}
	if (podnet_vm_add_routes(pod, info, err) < 0)
		return -1;
	for (size_t i = 0; i < info->n_neighs; i++)
		if (podnet_neigh_add(pod, &info->neighs[i], err) < 0)
			return -1;
	return 0;
}

static int podnet_vm_build(const struct podnet_vm_opts *o, const struct podnet_info *info,
			   struct podnet_nl *root, bool *made, struct pp_err *err)
{
	struct podnet_ipt_rule rule = { .vni = info->vni, .port = info->port,
					.remote = info->worker_ip.addr };
	struct podnet_nl *pod = NULL;
	int rc = -1;

	if (podnet_netns_ensure(podnet_vm_podns(o), err) < 0 ||
	    podnet_nl_open(podnet_vm_podns(o), &pod, err) < 0)
		return -1;
	if (podnet_vm_remove_stale(pod, info->pod_if, err) < 0)
		goto out;
	*made = true;
	if (podnet_ipt_add(o->iptables, &rule, err) < 0 ||
	    podnet_vm_make_device(o, info, root, err) < 0 || podnet_vm_configure(pod, info, err) < 0)
		goto out;
	rc = 0;
out:
	podnet_nl_close(pod);
	return rc;
}

int podnet_vm_setup_info(const struct podnet_vm_opts *o, const struct podnet_info *info,
			 struct pp_err *err)
{
	struct podnet_nl *root;
	bool made = false;
	int rc;

	if (info->external_net_via_podvm)
		log_warn("external-net-via-pod-vm is not supported; the pod's external traffic "
			 "goes through the worker", "dev=%s", info->pod_if);
	if (podnet_nl_open(NULL, &root, err) < 0)
		return -1;
	rc = podnet_vm_wait_network(o, info, root, err);
	if (rc == 0)
		rc = podnet_vm_build(o, info, root, &made, err);
	podnet_nl_close(root);
	if (rc < 0 && made)
		podnet_vm_teardown(o, info, NULL);
	if (rc == 0)
		log_info("pod network set up", "dev=%s vni=%u podns=%s", info->pod_if, info->vni,
			 podnet_vm_podns(o));
	return rc;
}

int podnet_vm_setup(const struct podnet_vm_opts *o, const struct apf_pod_network *pn,
		    bool *ret_configured, struct pp_err *err)
{
	struct podnet_info info;
	int rc;

	*ret_configured = false;
	if (!pn->tunnel_type || !pn->tunnel_type[0]) {
		log_info("no pod network in apf.json (tunnel-type is empty)", "podns=%s",
			 podnet_vm_podns(o));
		return 0;
	}
	if (podnet_vm_info(pn, &info, err) < 0)
		return -1;
	rc = podnet_vm_setup_info(o, &info, err);
	podnet_info_clear(&info);
	if (rc == 0)
		*ret_configured = true;
	return rc;
}

int podnet_vm_teardown(const struct podnet_vm_opts *o, const struct podnet_info *info,
		       struct pp_err *err)
{
	struct pp_err e = { 0 };
	struct podnet_nl *pod;
	int rc = 0;

	if (podnet_netns_exists(podnet_vm_podns(o)) &&
	    podnet_nl_open(podnet_vm_podns(o), &pod, &e) == 0) {
		struct podnet_link l;

		if (podnet_link_get(pod, info->pod_if, &l, &e) > 0 && strcmp(l.kind, "vxlan") == 0 &&
		    podnet_link_del(pod, info->pod_if, &e) < 0)
			rc = -1;
		podnet_nl_close(pod);
	}
	if (podnet_ipt_del(o->iptables, info->vni, rc < 0 ? NULL : &e) < 0)
		rc = -1;
	if (rc < 0 && err)
		*err = e;
	return rc;
}
