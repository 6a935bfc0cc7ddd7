/*
 * Pod networking on the worker node: Inspect, Setup, Teardown, Reconcile (see
 * podnet_worker.h). Netlink and iptables are podnet/'s; this file holds the order of the steps
 * and what undoes each one.
 *
 * Setup records each step it completes in a bit set; on any failure the steps done are undone
 * in reverse order, so the pod's namespace and the node's raw table are as before the call.
 */
#include "adaptor/podnet_worker.h"

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adaptor/podnet_worker_priv.h"
#include "lib/log.h"
#include "lib/util.h"
#include "podnet/podnet_ipt.h"
#include "podnet/podnet_nl.h"

#define PODNET_VM_IPS_MAX 1024
#define PODNET_CIDRS_MAX  4096

static enum podnet_setup_step podnet_fail_step = PODNET_STEP_NONE;

void podnet_worker_fail_after(enum podnet_setup_step step)
{
	podnet_fail_step = step;
}

static uint16_t podnet_opt_port(const struct podnet_worker_opts *o)
{
	return o->vxlan_port ? o->vxlan_port : PODNET_VXLAN_PORT;
}

static uint32_t podnet_opt_min_id(const struct podnet_worker_opts *o)
{
	return o->vxlan_min_id ? o->vxlan_min_id : PODNET_VXLAN_MIN_ID;
}

int64_t podnet_worker_index_limit(const struct podnet_worker_opts *o)
{
	uint32_t min = podnet_opt_min_id(o);

	return min >= PODNET_VNI_LIMIT ? 0 : (int64_t)(PODNET_VNI_LIMIT - min);
}

/* ---- Inspect ---- */

/* The node side: primary or host interface and its first IPv4 address. */
static int podnet_inspect_node(const struct podnet_worker_opts *o, struct podnet_info *info,
			       struct pp_err *err)
{
	char primary[IFNAMSIZ];
	const char *host;
	struct podnet_prefix addrs[PODNET_MAX_ADDRS];
	struct podnet_link link;
	struct podnet_nl *nl;
	struct in_addr gw;
	size_t n = 0;
	int found, rc = -1;

	if (podnet_nl_open(NULL, &nl, err) < 0)
		return -1;
	if (podnet_primary_iface(nl, primary, &gw, err) < 0)
		goto out;
	host = o->host_interface && o->host_interface[0] ? o->host_interface : primary;
	info->dedicated = strcmp(host, primary) != 0;
	found = podnet_link_get(nl, host, &link, err);
	if (found == 0)
		pp_err_set(err, PP_NOT_FOUND, "host interface %s does not exist on the node", host);
	if (found <= 0 || podnet_addr_list(nl, link.ifindex, addrs, PODNET_MAX_ADDRS, &n, err) < 0)
		goto out;
	if (n == 0) {
		pp_err_set(err, PP_FAILED_PRECONDITION,
			   "host interface %s has no IPv4 address to carry the VXLAN tunnel", host);
		goto out;
	}
	info->worker_ip = addrs[0];
	rc = 0;
out:
	podnet_nl_close(nl);
	return rc;
}

static bool podnet_protocol_kept(int protocol)
{
	return protocol == RTPROT_STATIC || protocol == RTPROT_BOOT || protocol == RTPROT_DHCP ||
	       protocol == RTPROT_KERNEL;
}

static int podnet_inspect_routes(struct podnet_nl *nl, struct podnet_info *info,
				 struct pp_err *err)
{
	struct podnet_route *all;
	size_t n, kept = 0;

	if (podnet_route_list(nl, &all, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (podnet_protocol_kept(all[i].protocol))
			all[kept++] = all[i];
	info->routes = all;
	info->n_routes = kept;
	return 0;
}

/* POD_SUBNET_CIDRS: a route to each via the pod's gateway; entries that do not parse are
 * skipped with a warning, as upstream does. */
static void podnet_add_subnet_routes(const char *cidrs, struct podnet_info *info)
{
	char buf[PODNET_CIDRS_MAX], *save = NULL, *tok, q[64];

	if (!cidrs || !cidrs[0])
		return;
	if (!pp_strlcpy(buf, cidrs, sizeof(buf))) {
		log_warn("POD_SUBNET_CIDRS is too long, ignored", "max=%d", PODNET_CIDRS_MAX);
		return;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct podnet_route *r;
		struct podnet_prefix p;

		tok = str_trim(tok);
		if (podnet_prefix_parse(tok, &p) < 0) {
			log_warn("skipping a bad POD_SUBNET_CIDRS entry", "cidr=%s",
				 log_quote(q, sizeof(q), tok));
			continue;
		}
		if (info->n_routes == PODNET_MAX_ROUTES)
			return;
		r = &info->routes[info->n_routes++];
		memset(r, 0, sizeof(*r));
		r->dst = p;
		r->gw = info->pod_gw;
		pp_strlcpy(r->dev, info->pod_if, sizeof(r->dev));
	}
}

static int podnet_inspect_neighs(struct podnet_nl *nl, int ifindex, struct podnet_info *info,
				 struct pp_err *err)
{
	struct podnet_neigh *all;
	size_t n, kept = 0;

	if (podnet_neigh_list(nl, ifindex, &all, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (all[i].state == NUD_PERMANENT) {
			all[kept] = all[i];
			pp_strlcpy(all[kept].dev, info->pod_if, sizeof(all[kept].dev));
			kept++;
		}
	info->neighs = all;
	info->n_neighs = kept;
	return 0;
}

static int podnet_inspect_pod_if(struct podnet_nl *nl, struct podnet_info *info,
				 int *ret_ifindex, struct pp_err *err)
{
	struct podnet_prefix addrs[PODNET_MAX_ADDRS];
	struct podnet_link link;
	size_t n;
	int found;
	struct pp_err e = { 0 };

	if (podnet_primary_iface(nl, info->pod_if, &info->pod_gw, &e) < 0)
		return pp_err_set(err, e.code == PP_NOT_FOUND ? PP_FAILED_PRECONDITION : e.code,
				  "inspecting the pod: %s", e.msg);
	found = podnet_link_get(nl, info->pod_if, &link, err);
	if (found <= 0)
		return found < 0 ? -1 : pp_err_set(err, PP_NOT_FOUND, "pod interface %s vanished in %s",
						   info->pod_if, podnet_nl_where(nl));
	if (podnet_addr_list(nl, link.ifindex, addrs, PODNET_MAX_ADDRS, &n, err) < 0)
		return -1;
	if (n != 1)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "pod interface %s in %s has %zu IPv4 addresses, want exactly one",
				  info->pod_if, podnet_nl_where(nl), n);
	info->pod_ip = addrs[0];
	memcpy(info->pod_mac, link.mac, sizeof(info->pod_mac));
	info->mtu = link.mtu;
	*ret_ifindex = link.ifindex;
	return 0;
}

static int podnet_inspect_pod(const char *netns_path, struct podnet_info *info,
			      struct pp_err *err)
{
	struct podnet_nl *nl;
	int ifindex = 0, rc = -1;

	if (podnet_nl_open(netns_path, &nl, err) < 0)
		return -1;
	if (podnet_inspect_pod_if(nl, info, &ifindex, err) == 0 &&
	    podnet_inspect_routes(nl, info, err) == 0 &&
	    podnet_inspect_neighs(nl, ifindex, info, err) == 0)
		rc = 0;
	podnet_nl_close(nl);
	return rc;
}

static int podnet_check_opts(const struct podnet_worker_opts *o, uint32_t index,
			     struct pp_err *err)
{
	if (o->tunnel_type && o->tunnel_type[0] && strcmp(o->tunnel_type, PODNET_TUNNEL_VXLAN) != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "TUNNEL_TYPE %s is not supported (only vxlan)", o->tunnel_type);
	if ((int64_t)index >= podnet_worker_index_limit(o))
		return pp_err_set(err, PP_OUT_OF_RANGE,
				  "VXLAN id %u + index %u does not fit in 24 bits (max %u)",
				  podnet_opt_min_id(o), index, PODNET_VNI_LIMIT - 1);
	return 0;
}

int podnet_worker_inspect(const struct podnet_worker_opts *o, const char *netns_path,
			  uint32_t index, struct podnet_info *ret, struct pp_err *err)
{
	struct podnet_info info;

	memset(&info, 0, sizeof(info));
	if (podnet_check_opts(o, index, err) < 0)
		return -1;
	if (podnet_inspect_node(o, &info, err) < 0 || podnet_inspect_pod(netns_path, &info, err) < 0) {
		podnet_info_clear(&info);
		return -1;
	}
	podnet_add_subnet_routes(o->pod_subnet_cidrs, &info);
	pp_strlcpy(info.tunnel_type, PODNET_TUNNEL_VXLAN, sizeof(info.tunnel_type));
	info.index = index;
	info.vni = podnet_opt_min_id(o) + index;
	info.port = podnet_opt_port(o);
	info.external_net_via_podvm = o->external_net_via_podvm;
	*ret = info;
	return 0;
}

/* ---- the tunnel's parameters ---- */

int podnet_worker_tunnel(const struct podnet_info *info, const char *vm_ips,
			 struct podnet_tunnel *ret, struct pp_err *err)
{
	char buf[PODNET_VM_IPS_MAX], *save = NULL, *ips[2] = { NULL, NULL }, *tok, q[64];
	struct podnet_tunnel t;
	size_t n = 0;
	const char *remote;

	if (!vm_ips || !pp_strlcpy(buf, vm_ips, sizeof(buf)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "the VM's IP list is missing or too long");
	for (tok = strtok_r(buf, ",", &save); tok && n < 2; tok = strtok_r(NULL, ",", &save))
		ips[n++] = str_trim(tok);
	if (n < (info->dedicated ? 2u : 1u))
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "the VM has %zu IP addresses; %s", n, info->dedicated ?
				  "a dedicated host interface needs a second one" : "need one");
	remote = ips[info->dedicated ? 1 : 0];
	memset(&t, 0, sizeof(t));
	if (podnet_addr_parse(remote, &t.remote) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "the VM's address %s is not an IPv4 address", str_quote(q, sizeof(q), remote));
	t.vni = info->vni;
	t.port = info->port ? info->port : PODNET_VXLAN_PORT;
	pp_strlcpy(t.pod_if, info->pod_if, sizeof(t.pod_if));
	*ret = t;
	return 0;
}

/* ---- Setup ---- */

struct podnet_setup {
	const struct podnet_worker_opts *o;
	const char *netns_path;
	const struct podnet_tunnel *t;
	struct podnet_nl *pod;           /* socket in the pod's netns */
	int pod_ifindex;
	int vx_ifindex;
	unsigned done;                   /* bit (1 << step) per completed step */
};

static int podnet_step_done(struct podnet_setup *s, enum podnet_setup_step step,
			    struct pp_err *err)
{
	s->done |= 1u << step;
	if (podnet_fail_step == step)
		return pp_err_set(err, PP_INTERNAL, "injected failure after setup step %d", step);
	return 0;
}

static bool podnet_did(const struct podnet_setup *s, enum podnet_setup_step step)
{
	return (s->done & (1u << step)) != 0;
}

/* A vxlan1 in the pod's netns before Setup is ours from an earlier run (a crash, a StartVM
 * retried): remove it and the ingress qdisc we put on the pod's interface with it. */
static int podnet_remove_stale(struct podnet_setup *s, struct pp_err *err)
{
	struct podnet_link vx;
	int found = podnet_link_get(s->pod, PODNET_WORKER_DEV, &vx, err);

	if (found <= 0)
		return found;
	log_warn("removing a stale pod tunnel device", "netns=%s dev=%s vni=%u", s->netns_path,
		 PODNET_WORKER_DEV, vx.vni);
	if (podnet_tc_ingress_del(s->pod, s->pod_ifindex, err) < 0 ||
	    podnet_link_del(s->pod, PODNET_WORKER_DEV, err) < 0)
		return -1;
	return 0;
}

static int podnet_setup_rules(struct podnet_setup *s, struct pp_err *err)
{
	struct podnet_ipt_rule rule = { .vni = s->t->vni, .port = s->t->port,
					.remote = s->t->remote };

	if (podnet_ipt_add(s->o->iptables, &rule, err) < 0)
		return -1;
	return podnet_step_done(s, PODNET_STEP_RULES, err);
}

static int podnet_setup_link(struct podnet_setup *s, struct pp_err *err)
{
	struct podnet_vxlan v = { .name = PODNET_WORKER_DEV, .vni = s->t->vni, .port = s->t->port,
				  .remote = s->t->remote, .netns_fd = -1 };
	struct podnet_nl *root = NULL;
	struct podnet_link vx;
	int rc = -1, found;

	if (podnet_netns_open(s->netns_path, &v.netns_fd, err) < 0)
		return -1;
	if (podnet_nl_open(NULL, &root, err) == 0 && podnet_vxlan_add(root, &v, err) == 0)
		rc = 0;
	podnet_nl_close(root);
	close(v.netns_fd);
	if (rc < 0)
		return -1;
	s->done |= 1u << PODNET_STEP_LINK;
	found = podnet_link_get(s->pod, PODNET_WORKER_DEV, &vx, err);
	if (found <= 0)
		return found < 0 ? -1 : pp_err_set(err, PP_INTERNAL, "%s vanished right after it "
						   "was created in %s", PODNET_WORKER_DEV,
						   s->netns_path);
	s->vx_ifindex = vx.ifindex;
	if (podnet_step_done(s, PODNET_STEP_LINK, err) < 0)
		return -1;
	if (podnet_link_set_up(s->pod, PODNET_WORKER_DEV, err) < 0)
		return -1;
	return podnet_step_done(s, PODNET_STEP_UP, err);
}

static int podnet_setup_tc(struct podnet_setup *s, struct pp_err *err)
{
	if (podnet_tc_redirect_add(s->pod, s->pod_ifindex, s->vx_ifindex, err) < 0)
		return -1;
	if (podnet_step_done(s, PODNET_STEP_TC_POD, err) < 0)
		return -1;
	if (podnet_tc_redirect_add(s->pod, s->vx_ifindex, s->pod_ifindex, err) < 0)
		return -1;
	return podnet_step_done(s, PODNET_STEP_TC_VXLAN, err);
}

/* Undoes the completed steps, last first. Errors are logged: the caller reports the failure
 * that started the rollback. */
static void podnet_setup_rollback(struct podnet_setup *s)
{
	struct pp_err e = { 0 };

	if (podnet_did(s, PODNET_STEP_TC_POD) && podnet_tc_ingress_del(s->pod, s->pod_ifindex, &e) < 0)
		log_error("rollback: cannot remove the pod interface's ingress qdisc", "error=%s",
			  e.msg);
	if (podnet_did(s, PODNET_STEP_LINK) && podnet_link_del(s->pod, PODNET_WORKER_DEV, &e) < 0)
		log_error("rollback: cannot delete the tunnel device", "error=%s", e.msg);
	if (podnet_did(s, PODNET_STEP_RULES) && podnet_ipt_del(s->o->iptables, s->t->vni, &e) < 0)
		log_error("rollback: cannot remove the NOTRACK rules", "vni=%u error=%s", s->t->vni,
			  e.msg);
}

static int podnet_setup_pod_if(struct podnet_setup *s, struct pp_err *err)
{
	struct podnet_link link;
	int found = podnet_link_get(s->pod, s->t->pod_if, &link, err);

	if (found < 0)
		return -1;
	if (found == 0)
		return pp_err_set(err, PP_NOT_FOUND, "pod interface %s does not exist in %s",
				  s->t->pod_if, s->netns_path);
	s->pod_ifindex = link.ifindex;
	return 0;
}

int podnet_worker_setup(const struct podnet_worker_opts *o, const char *netns_path,
			const struct podnet_tunnel *t, struct pp_err *err)
{
	struct podnet_setup s = { .o = o, .netns_path = netns_path, .t = t };
	uint64_t start = pp_monotonic_ms();
	int rc = -1;

	if (podnet_nl_open(netns_path, &s.pod, err) < 0)
		return -1;
	if (podnet_setup_pod_if(&s, err) == 0 && podnet_remove_stale(&s, err) >= 0 &&
	    podnet_setup_rules(&s, err) == 0 && podnet_setup_link(&s, err) == 0 &&
	    podnet_setup_tc(&s, err) == 0)
		rc = 0;
	if (rc < 0)
		podnet_setup_rollback(&s);
	podnet_nl_close(s.pod);
	if (rc == 0)
		log_info("pod tunnel set up", "netns=%s vni=%u port=%u pod_if=%s ms=%llu", netns_path,
			 t->vni, t->port, t->pod_if, (unsigned long long)(pp_monotonic_ms() - start));
	return rc;
}

/* ---- Teardown ---- */

static void podnet_keep_first(struct pp_err *first, const struct pp_err *e)
{
	if (first && first->code == PP_OK)
		*first = *e;
}

static int podnet_teardown_pod(const char *netns_path, const struct podnet_tunnel *t,
			       struct pp_err *err)
{
	struct podnet_link vx, pod_if;
	struct podnet_nl *nl;
	int found, rc = 0;

	if (podnet_nl_open(netns_path, &nl, err) < 0)
		return -1;
	found = podnet_link_get(nl, PODNET_WORKER_DEV, &vx, err);
	if (found > 0 && vx.vni != t->vni)
		log_warn("the pod's tunnel device has another VNI than recorded", "netns=%s "
			 "recorded=%u found=%u", netns_path, t->vni, vx.vni);
	/* t comes from state.db: the ingress qdisc on the recorded pod interface is ours even when
	 * the tunnel device has already gone (deleted by hand, or half a crash). */
	if (found >= 0 && podnet_link_get(nl, t->pod_if, &pod_if, err) > 0 &&
	    podnet_tc_ingress_present(nl, pod_if.ifindex, NULL) > 0 &&
	    podnet_tc_ingress_del(nl, pod_if.ifindex, err) < 0)
		rc = -1;
	if (found > 0 && podnet_link_del(nl, PODNET_WORKER_DEV, rc < 0 ? NULL : err) < 0)
		rc = -1;
	podnet_nl_close(nl);
	return found < 0 ? -1 : rc;
}

int podnet_worker_teardown(const struct podnet_worker_opts *o, const char *netns_path,
			   const struct podnet_tunnel *t, struct pp_err *err)
{
	struct pp_err first = { 0 }, e = { 0 };

	if (netns_path && netns_path[0] && podnet_netns_exists(netns_path)) {
		if (podnet_teardown_pod(netns_path, t, &e) < 0)
			podnet_keep_first(&first, &e);
	} else {
		log_info("pod netns already gone; its tunnel device went with it", "netns=%s vni=%u",
			 netns_path ? netns_path : "", t->vni);
	}
	if (podnet_ipt_del(o->iptables, t->vni, &e) < 0)
		podnet_keep_first(&first, &e);
	if (first.code != PP_OK) {
		if (err)
			*err = first;
		return -1;
	}
	log_info("pod tunnel torn down", "netns=%s vni=%u", netns_path ? netns_path : "", t->vni);
	return 0;
}

/* ---- Reconcile ---- */

/* 1 when vxlan1 matches t and both redirects' qdiscs are there. */
static int podnet_tunnel_intact(struct podnet_nl *nl, const struct podnet_tunnel *t,
				struct pp_err *err)
{
	struct podnet_link vx, pod_if;
	int rc = podnet_link_get(nl, PODNET_WORKER_DEV, &vx, err);

	if (rc <= 0)
		return rc;
	if (vx.vni != t->vni || vx.port != t->port || vx.remote.s_addr != t->remote.s_addr || !vx.up)
		return 0;
	rc = podnet_link_get(nl, t->pod_if, &pod_if, err);
	if (rc <= 0)
		return rc;
	rc = podnet_tc_ingress_present(nl, pod_if.ifindex, err);
	if (rc <= 0)
		return rc;
	return podnet_tc_ingress_present(nl, vx.ifindex, err);
}

int podnet_worker_reconcile(const struct podnet_worker_opts *o, const char *netns_path,
			    const struct podnet_tunnel *t, enum podnet_reconcile_result *ret,
			    struct pp_err *err)
{
	struct podnet_ipt_rule rule = { .vni = t->vni, .port = t->port, .remote = t->remote };
	struct podnet_nl *nl;
	int rc;

	if (!podnet_netns_exists(netns_path)) {
		if (podnet_worker_teardown(o, netns_path, t, err) < 0)
			return -1;
		*ret = PODNET_RECONCILE_NETNS_GONE;
		return 0;
	}
	if (podnet_nl_open(netns_path, &nl, err) < 0)
		return -1;
	rc = podnet_tunnel_intact(nl, t, err);
	podnet_nl_close(nl);
	if (rc == 1)
		rc = podnet_ipt_check(o->iptables, &rule, err);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		*ret = PODNET_RECONCILE_INTACT;
		return 0;
	}
	log_warn("pod tunnel incomplete after restart, rebuilding it", "netns=%s vni=%u",
		 netns_path, t->vni);
	/* What is left of the recorded tunnel (our ingress qdisc, the device, the rules) goes
	 * first, so that Setup does not take its own leftovers for someone else's. */
	if (podnet_worker_teardown(o, netns_path, t, err) < 0)
		return -1;
	if (podnet_worker_setup(o, netns_path, t, err) < 0)
		return -1;
	*ret = PODNET_RECONCILE_REBUILT;
	return 0;
}
