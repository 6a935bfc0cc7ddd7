/*
 * Netlink primitives for pod networking on libnl-route-3 (see podnet_nl.h).
 *
 * Each podnet_nl owns one connected socket, bound to the namespace it was opened in (setns on
 * the calling thread for the connect only; Linux keeps a netlink socket in the namespace that
 * created it). Dumps go through libnl caches allocated and freed within one call, so nothing
 * is cached between calls and callers on different threads use different sockets.
 */
#include "podnet/podnet_nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define PODNET_WHERE_MAX 256
#define PODNET_SELF_NS "/proc/thread-self/ns/net"
#define PODNET_TC_INGRESS_HANDLE 0xffff0000u   /* "ffff:", the ingress qdisc and its filters' parent */

struct podnet_nl {
	struct nl_sock *sock;
	char where[PODNET_WHERE_MAX];    /* "network namespace /run/netns/x" */
};

/* ---- errors ---- */

static int podnet_nl_code(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_EXIST:
		return PP_ALREADY_EXISTS;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return PP_NOT_FOUND;
	case NLE_PERM:
		return PP_PERMISSION_DENIED;
	case NLE_BUSY:
	case NLE_AGAIN:
		return PP_UNAVAILABLE;
	case NLE_NOMEM:
		return PP_RESOURCE_EXHAUSTED;
	default:
		return PP_INTERNAL;
	}
}

static bool podnet_nl_absent(int nlerr)
{
	return nlerr == -NLE_OBJ_NOTFOUND || nlerr == -NLE_NODEV;
}

/* "<what> in <where>: <libnl message>" */
static int podnet_nl_fail(const struct podnet_nl *nl, int nlerr, const char *what,
			  struct pp_err *err)
{
	return pp_err_set(err, podnet_nl_code(nlerr), "%s in %s: %s", what, nl->where,
			  nl_geterror(nlerr));
}

static int podnet_nomem(struct pp_err *err)
{
	return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
}

/* ---- namespaces ---- */

int podnet_netns_open(const char *netns_path, int *ret_fd, struct pp_err *err)
{
	int fd = open(netns_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return pp_err_errno(err, errno == ENOENT ? PP_NOT_FOUND : PP_INTERNAL, errno,
				    "cannot open network namespace %s", netns_path);
	*ret_fd = fd;
	return 0;
}

int podnet_netns_exists(const char *netns_path)
{
	struct statfs st;
	int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return 0;
	rc = fstatfs(fd, &st) == 0 && st.f_type == NSFS_MAGIC;
	close(fd);
	return rc;
}

/* Leaves the thread in its own namespace again. Failing here would leave a daemon thread in a
 * pod's namespace, where every later socket would silently go: that cannot be carried on. */
static void podnet_ns_return(int self_fd)
{
	if (setns(self_fd, CLONE_NEWNET) < 0) {
		log_error("cannot return to the original network namespace", "errno=%d", errno);
		abort();
	}
	close(self_fd);
}

static int podnet_ns_enter(const char *netns_path, int *ret_self, struct pp_err *err)
{
	int self = open(PODNET_SELF_NS, O_RDONLY | O_CLOEXEC);
	int target = -1;

	if (self < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "cannot open %s", PODNET_SELF_NS);
	if (podnet_netns_open(netns_path, &target, err) < 0) {
		close(self);
		return -1;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "cannot enter network namespace %s",
			     netns_path);
		close(target);
		close(self);
		return -1;
	}
	close(target);
	*ret_self = self;
	return 0;
}

int podnet_nl_open(const char *netns_path, struct podnet_nl **ret, struct pp_err *err)
{
	struct podnet_nl *nl = calloc(1, sizeof(*nl));
	int self = -1, rc;

	if (!nl || !(nl->sock = nl_socket_alloc())) {
		free(nl);
		return podnet_nomem(err);
	}
	snprintf(nl->where, sizeof(nl->where), "network namespace %s",
		 netns_path ? netns_path : "of the process");
	if (netns_path && podnet_ns_enter(netns_path, &self, err) < 0)
		goto fail;
	rc = nl_connect(nl->sock, NETLINK_ROUTE);
	if (self >= 0)
		podnet_ns_return(self);
	if (rc < 0) {
		podnet_nl_fail(nl, rc, "opening a netlink socket", err);
		goto fail;
	}
	*ret = nl;
	return 0;
fail:
	podnet_nl_close(nl);
	return -1;
}

void podnet_nl_close(struct podnet_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sock);
	free(nl);
}

const char *podnet_nl_where(const struct podnet_nl *nl)
{
	return nl->where;
}

/* Child of podnet_netns_ensure: only system calls between fork and _exit. */
static void podnet_netns_child(const char *path)
{
	if (unshare(CLONE_NEWNET) < 0)
		_exit(2);
	if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
		_exit(3);
	_exit(0);
}

static int podnet_netns_mount(const char *netns_path, struct pp_err *err)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "creating network namespace %s",
				    netns_path);
	if (pid == 0)
		podnet_netns_child(netns_path);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return pp_err_errno(err, PP_INTERNAL, errno, "creating network namespace %s",
					    netns_path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return pp_err_set(err, PP_INTERNAL,
				  "creating network namespace %s: %s failed in the helper process",
				  netns_path, WIFEXITED(status) && WEXITSTATUS(status) == 2 ?
				  "unshare" : "bind mount");
	return 0;
}

static int podnet_netns_lo_up(const char *netns_path, struct pp_err *err)
{
	struct podnet_nl *nl;
	int rc;

	if (podnet_nl_open(netns_path, &nl, err) < 0)
		return -1;
	rc = podnet_link_set_up(nl, "lo", err);
	podnet_nl_close(nl);
	return rc;
}

int podnet_netns_ensure(const char *netns_path, struct pp_err *err)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	if (podnet_netns_exists(netns_path))
		return 0;
	if (!pp_strlcpy(dir, netns_path, sizeof(dir)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "netns path %s is too long", netns_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755, err) < 0)
			return -1;
	}
	fd = open(netns_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "creating %s", netns_path);
	close(fd);
	if (podnet_netns_mount(netns_path, err) < 0)
		return -1;
	return podnet_netns_lo_up(netns_path, err);
}

/* ---- links ---- */

static void podnet_link_fill(struct rtnl_link *l, struct podnet_link *out)
{
	struct nl_addr *mac = rtnl_link_get_addr(l);
	const char *kind = rtnl_link_get_type(l);
	struct nl_addr *group = NULL;
	uint32_t v;

	memset(out, 0, sizeof(*out));
	out->ifindex = rtnl_link_get_ifindex(l);
	pp_strlcpy(out->name, rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "",
		   sizeof(out->name));
	pp_strlcpy(out->kind, kind ? kind : "", sizeof(out->kind));
	if (mac && nl_addr_get_len(mac) == PODNET_MAC_LEN)
		memcpy(out->mac, nl_addr_get_binary_addr(mac), PODNET_MAC_LEN);
	out->mtu = rtnl_link_get_mtu(l);
	out->up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
	if (!rtnl_link_is_vxlan(l))
		return;
	if (rtnl_link_vxlan_get_id(l, &v) == 0)
		out->vni = v;
	if (rtnl_link_vxlan_get_port(l, &v) == 0)
		out->port = (uint16_t)v;
	if (rtnl_link_vxlan_get_group(l, &group) == 0 && group) {
		if (nl_addr_get_family(group) == AF_INET && nl_addr_get_len(group) == 4)
			memcpy(&out->remote, nl_addr_get_binary_addr(group), 4);
		nl_addr_put(group);
	}
}

static int podnet_link_lookup(struct podnet_nl *nl, int ifindex, const char *name,
			      struct podnet_link *ret, struct pp_err *err)
{
	struct rtnl_link *l = NULL;
	int rc = rtnl_link_get_kernel(nl->sock, ifindex, name, &l);

	if (podnet_nl_absent(rc))
		return 0;
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "looking up device %s (index %d) in %s: %s",
				  name ? name : "", ifindex, nl->where, nl_geterror(rc));
	if (ret)
		podnet_link_fill(l, ret);
	rtnl_link_put(l);
	return 1;
}

int podnet_link_get(struct podnet_nl *nl, const char *name, struct podnet_link *ret,
		    struct pp_err *err)
{
	return podnet_link_lookup(nl, 0, name, ret, err);
}

int podnet_link_get_index(struct podnet_nl *nl, int ifindex, struct podnet_link *ret,
			  struct pp_err *err)
{
	return podnet_link_lookup(nl, ifindex, NULL, ret, err);
}

int podnet_link_del(struct podnet_nl *nl, const char *name, struct pp_err *err)
{
	struct rtnl_link *l = rtnl_link_alloc();
	int rc;

	if (!l)
		return podnet_nomem(err);
	rtnl_link_set_name(l, name);
	rc = rtnl_link_delete(nl->sock, l);
	rtnl_link_put(l);
	if (podnet_nl_absent(rc))
		return 0;
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "deleting device %s in %s: %s", name,
				  nl->where, nl_geterror(rc));
	return 1;
}

int podnet_link_set_up(struct podnet_nl *nl, const char *name, struct pp_err *err)
{
	struct rtnl_link *orig = NULL, *change = NULL;
	int rc = rtnl_link_get_kernel(nl->sock, 0, name, &orig);

	if (rc >= 0) {
		change = rtnl_link_alloc();
		if (!change) {
			rtnl_link_put(orig);
			return podnet_nomem(err);
		}
		rtnl_link_set_flags(change, IFF_UP);
		rc = rtnl_link_change(nl->sock, orig, change, 0);
	}
	rtnl_link_put(change);
	rtnl_link_put(orig);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "setting device %s up in %s: %s", name,
				  nl->where, nl_geterror(rc));
	return 0;
}

static struct nl_addr *podnet_v4_addr(struct in_addr a, unsigned len)
{
	struct nl_addr *n = nl_addr_build(AF_INET, &a, sizeof(a));

	if (n)
		nl_addr_set_prefixlen(n, (int)len);
	return n;
}

static int podnet_vxlan_attrs(struct rtnl_link *l, const struct podnet_vxlan *v)
{
	struct nl_addr *group = podnet_v4_addr(v->remote, 32);
	struct nl_addr *mac = NULL;

	if (!group)
		return -1;
	rtnl_link_set_name(l, v->name);
	rtnl_link_vxlan_set_id(l, v->vni);
	rtnl_link_vxlan_set_group(l, group);
	nl_addr_put(group);
	rtnl_link_vxlan_set_port(l, v->port);
	rtnl_link_vxlan_set_ttl(l, 0);
	rtnl_link_vxlan_set_tos(l, 0);
	rtnl_link_vxlan_set_learning(l, 0);
	rtnl_link_vxlan_set_proxy(l, 0);
	rtnl_link_vxlan_set_rsc(l, 0);
	rtnl_link_vxlan_set_l2miss(l, 0);
	rtnl_link_vxlan_set_l3miss(l, 0);
	rtnl_link_vxlan_set_udp_zero_csum6_tx(l, 0);
	rtnl_link_vxlan_set_udp_zero_csum6_rx(l, 0);
	if (v->mac) {
		mac = nl_addr_build(AF_LLC, v->mac, PODNET_MAC_LEN);
		if (!mac)
			return -1;
		rtnl_link_set_addr(l, mac);
		nl_addr_put(mac);
	}
	if (v->mtu)
		rtnl_link_set_mtu(l, v->mtu);
	if (v->netns_fd >= 0)
		rtnl_link_set_ns_fd(l, v->netns_fd);
	return 0;
}

int podnet_vxlan_add(struct podnet_nl *nl, const struct podnet_vxlan *v, struct pp_err *err)
{
	struct rtnl_link *l = rtnl_link_vxlan_alloc();
	char remote[INET_ADDRSTRLEN];
	int rc;

	if (!l || podnet_vxlan_attrs(l, v) < 0) {
		rtnl_link_put(l);
		return podnet_nomem(err);
	}
	rc = rtnl_link_add(nl->sock, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	if (rc == -NLE_EXIST)
		return pp_err_set(err, PP_ALREADY_EXISTS,
				  "creating VXLAN device %s: VXLAN id %u on UDP port %u is already "
				  "used by another device created in %s", v->name, v->vni, v->port,
				  nl->where);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc),
				  "creating VXLAN device %s (id %u, remote %s) from %s: %s", v->name,
				  v->vni, podnet_addr_format(v->remote, remote, sizeof(remote)),
				  nl->where, nl_geterror(rc));
	return 0;
}

/* ---- addresses ---- */

int podnet_addr_list(struct podnet_nl *nl, int ifindex, struct podnet_prefix *out, size_t max,
		     size_t *ret_n, struct pp_err *err)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	size_t n = 0;
	int rc = rtnl_addr_alloc_cache(nl->sock, &cache);

	if (rc < 0)
		return podnet_nl_fail(nl, rc, "listing addresses", err);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);

		if (rtnl_addr_get_family(a) != AF_INET || rtnl_addr_get_ifindex(a) != ifindex ||
		    !local || nl_addr_get_len(local) != 4)
			continue;
		if (n < max) {
			memcpy(&out[n].addr, nl_addr_get_binary_addr(local), 4);
			out[n].len = (unsigned)rtnl_addr_get_prefixlen(a);
		}
		n++;
	}
	nl_cache_free(cache);
	*ret_n = n < max ? n : max;
	return 0;
}

int podnet_addr_add(struct podnet_nl *nl, int ifindex, const struct podnet_prefix *p,
		    struct pp_err *err)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = podnet_v4_addr(p->addr, p->len);
	char text[PODNET_PREFIX_STRLEN];
	int rc = -NLE_NOMEM;

	if (a && local) {
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_local(a, local);
		rtnl_addr_set_prefixlen(a, (int)p->len);
		rc = rtnl_addr_add(nl->sock, a, NLM_F_CREATE | NLM_F_EXCL);
	}
	nl_addr_put(local);
	rtnl_addr_put(a);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "adding address %s in %s: %s",
				  podnet_prefix_format(p, text, sizeof(text)), nl->where,
				  nl_geterror(rc));
	return 0;
}

/* ---- routes ---- */

static int podnet_route_fill(struct rtnl_route *r, struct nl_cache *links,
			     struct podnet_route *out)
{
	struct nl_addr *dst = rtnl_route_get_dst(r);
	struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
	struct nl_addr *gw = nh ? rtnl_route_nh_get_gateway(nh) : NULL;

	memset(out, 0, sizeof(*out));
	if (dst && nl_addr_get_len(dst) == 4)
		memcpy(&out->dst.addr, nl_addr_get_binary_addr(dst), 4);
	out->dst.len = dst ? (unsigned)nl_addr_get_prefixlen(dst) : 0;
	if (gw && nl_addr_get_family(gw) == AF_INET && nl_addr_get_len(gw) == 4)
		memcpy(&out->gw, nl_addr_get_binary_addr(gw), 4);
	if (nh && !rtnl_link_i2name(links, rtnl_route_nh_get_ifindex(nh), out->dev,
				    sizeof(out->dev)))
		out->dev[0] = '\0';
	out->protocol = rtnl_route_get_protocol(r);
	out->scope = rtnl_route_get_scope(r);
	out->metric = rtnl_route_get_priority(r);
	return 0;
}

static int podnet_route_qsort_cmp(const void *a, const void *b)
{
	return podnet_route_cmp(a, b);
}

int podnet_route_list(struct podnet_nl *nl, struct podnet_route **ret, size_t *ret_n,
		      struct pp_err *err)
{
	struct nl_cache *cache = NULL, *links = NULL;
	struct podnet_route *out = NULL;
	struct nl_object *o;
	size_t n = 0;
	int rc = rtnl_link_alloc_cache(nl->sock, AF_UNSPEC, &links);

	if (rc >= 0)
		rc = rtnl_route_alloc_cache(nl->sock, AF_INET, 0, &cache);
	if (rc < 0) {
		nl_cache_free(links);
		return podnet_nl_fail(nl, rc, "listing routes", err);
	}
	out = calloc(PODNET_MAX_ROUTES, sizeof(*out));
	for (o = nl_cache_get_first(cache); out && o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;

		if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST)
			continue;
		if (n == PODNET_MAX_ROUTES)
			break;
		podnet_route_fill(r, links, &out[n++]);
	}
	nl_cache_free(cache);
	nl_cache_free(links);
	if (!out)
		return podnet_nomem(err);
	if (n == PODNET_MAX_ROUTES && o)
		log_warn("too many routes, the rest are ignored", "where=%s max=%d", nl->where,
			 PODNET_MAX_ROUTES);
	qsort(out, n, sizeof(*out), podnet_route_qsort_cmp);
	*ret = out;
	*ret_n = n;
	return 0;
}

static int podnet_route_build(struct podnet_nl *nl, const struct podnet_route *r,
			      struct rtnl_route **ret, struct pp_err *err)
{
	struct podnet_link dev;
	struct rtnl_route *route = NULL;
	struct rtnl_nexthop *nh;
	struct nl_addr *dst, *gw = NULL;
	int found = podnet_link_get(nl, r->dev, &dev, err);

	if (found < 0)
		return -1;
	if (found == 0)
		return pp_err_set(err, PP_NOT_FOUND, "route via device %s: no such device in %s",
				  r->dev, nl->where);
	route = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	dst = podnet_v4_addr(r->dst.addr, r->dst.len);
	if (r->gw.s_addr != htonl(INADDR_ANY))
		gw = podnet_v4_addr(r->gw, 32);
	if (!route || !nh || !dst || (r->gw.s_addr != htonl(INADDR_ANY) && !gw)) {
		rtnl_route_put(route);
		rtnl_route_nh_free(nh);
		nl_addr_put(dst);
		nl_addr_put(gw);
		return podnet_nomem(err);
	}
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_type(route, RTN_UNICAST);
	rtnl_route_set_protocol(route, (uint8_t)(r->protocol ? r->protocol : RTPROT_BOOT));
	rtnl_route_set_scope(route, (uint8_t)r->scope);
	rtnl_route_set_dst(route, dst);
	nl_addr_put(dst);
	rtnl_route_nh_set_ifindex(nh, dev.ifindex);
	if (gw) {
		rtnl_route_nh_set_gateway(nh, gw);
		nl_addr_put(gw);
	}
	rtnl_route_add_nexthop(route, nh);
	*ret = route;
	return 0;
}

int podnet_route_add(struct podnet_nl *nl, const struct podnet_route *r, struct pp_err *err)
{
	char dst[PODNET_PREFIX_STRLEN], gw[INET_ADDRSTRLEN];
	struct rtnl_route *route = NULL;
	int rc;

	if (podnet_route_build(nl, r, &route, err) < 0)
		return -1;
	rc = rtnl_route_add(nl->sock, route, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_route_put(route);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "adding route %s via \"%s\" dev %s in %s: %s",
				  podnet_prefix_format(&r->dst, dst, sizeof(dst)),
				  podnet_addr_format(r->gw, gw, sizeof(gw)), r->dev, nl->where,
				  nl_geterror(rc));
	return 0;
}

static bool podnet_route_matches(struct rtnl_route *r, int ifindex,
				 const struct podnet_prefix *dst)
{
	struct nl_addr *d = rtnl_route_get_dst(r);
	struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);

	return rtnl_route_get_table(r) == RT_TABLE_MAIN && d && nl_addr_get_len(d) == 4 &&
	       (unsigned)nl_addr_get_prefixlen(d) == dst->len &&
	       memcmp(nl_addr_get_binary_addr(d), &dst->addr, 4) == 0 && nh &&
	       rtnl_route_nh_get_ifindex(nh) == ifindex;
}

int podnet_route_del_dst(struct podnet_nl *nl, int ifindex, const struct podnet_prefix *dst,
			 struct pp_err *err)
{
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	int n = 0, rc = rtnl_route_alloc_cache(nl->sock, AF_INET, 0, &cache);

	if (rc < 0)
		return podnet_nl_fail(nl, rc, "listing routes", err);
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;

		if (!podnet_route_matches(r, ifindex, dst))
			continue;
		rc = rtnl_route_delete(nl->sock, r, 0);
		if (rc < 0)
			break;
		n++;
	}
	nl_cache_free(cache);
	if (rc < 0)
		return podnet_nl_fail(nl, rc, "deleting a connected route", err);
	return n;
}

/* ---- neighbours ---- */

int podnet_neigh_list(struct podnet_nl *nl, int ifindex, struct podnet_neigh **ret,
		      size_t *ret_n, struct pp_err *err)
{
	struct nl_cache *cache = NULL;
	struct podnet_neigh *out;
	struct nl_object *o;
	size_t n = 0;
	int rc = rtnl_neigh_alloc_cache(nl->sock, &cache);

	if (rc < 0)
		return podnet_nl_fail(nl, rc, "listing neighbours", err);
	out = calloc(PODNET_MAX_NEIGHBORS, sizeof(*out));
	for (o = nl_cache_get_first(cache); out && o && n < PODNET_MAX_NEIGHBORS;
	     o = nl_cache_get_next(o)) {
		struct rtnl_neigh *ne = (struct rtnl_neigh *)o;
		struct nl_addr *ip = rtnl_neigh_get_dst(ne), *ll = rtnl_neigh_get_lladdr(ne);

		if (rtnl_neigh_get_family(ne) != AF_INET || rtnl_neigh_get_ifindex(ne) != ifindex ||
		    !ip || nl_addr_get_len(ip) != 4)
			continue;
		memcpy(&out[n].ip, nl_addr_get_binary_addr(ip), 4);
		if (ll && nl_addr_get_len(ll) == PODNET_MAC_LEN)
			memcpy(out[n].mac, nl_addr_get_binary_addr(ll), PODNET_MAC_LEN);
		out[n].state = rtnl_neigh_get_state(ne);
		n++;
	}
	nl_cache_free(cache);
	if (!out)
		return podnet_nomem(err);
	*ret = out;
	*ret_n = n;
	return 0;
}

int podnet_neigh_add(struct podnet_nl *nl, const struct podnet_neigh *n, struct pp_err *err)
{
	struct rtnl_neigh *ne = NULL;
	struct nl_addr *ip = NULL, *ll = NULL;
	struct podnet_link dev;
	char text[INET_ADDRSTRLEN];
	int rc, found = podnet_link_get(nl, n->dev, &dev, err);

	if (found < 0)
		return -1;
	if (found == 0)
		return pp_err_set(err, PP_NOT_FOUND, "neighbour %s on device %s: no such device in %s",
				  podnet_addr_format(n->ip, text, sizeof(text)), n->dev, nl->where);
	ne = rtnl_neigh_alloc();
	ip = podnet_v4_addr(n->ip, 32);
	ll = nl_addr_build(AF_LLC, n->mac, PODNET_MAC_LEN);
	rc = -NLE_NOMEM;
	if (ne && ip && ll) {
		rtnl_neigh_set_ifindex(ne, dev.ifindex);
		rtnl_neigh_set_dst(ne, ip);
		rtnl_neigh_set_lladdr(ne, ll);
		rtnl_neigh_set_state(ne, n->state);
		rc = rtnl_neigh_add(nl->sock, ne, NLM_F_CREATE | NLM_F_EXCL);
	}
	nl_addr_put(ip);
	nl_addr_put(ll);
	rtnl_neigh_put(ne);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc), "adding neighbour %s on %s in %s: %s",
				  podnet_addr_format(n->ip, text, sizeof(text)), n->dev, nl->where,
				  nl_geterror(rc));
	return 0;
}

/* ---- tc ---- */

static int podnet_ingress_add(struct podnet_nl *nl, int ifindex, struct pp_err *err)
{
	struct rtnl_qdisc *q = rtnl_qdisc_alloc();
	int rc;

	if (!q)
		return podnet_nomem(err);
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
	rtnl_tc_set_handle(TC_CAST(q), PODNET_TC_INGRESS_HANDLE);
	rc = rtnl_tc_set_kind(TC_CAST(q), "ingress");
	if (rc >= 0)
		rc = rtnl_qdisc_add(nl->sock, q, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_qdisc_put(q);
	if (rc == -NLE_EXIST)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "device index %d in %s already has an ingress qdisc that pod "
				  "networking did not make (see `tc qdisc show`)", ifindex, nl->where);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc),
				  "adding an ingress qdisc to device index %d in %s: %s", ifindex,
				  nl->where, nl_geterror(rc));
	return 0;
}

static struct rtnl_act *podnet_mirred_alloc(int to_ifindex)
{
	struct rtnl_act *act = rtnl_act_alloc();

	if (!act)
		return NULL;
	if (rtnl_tc_set_kind(TC_CAST(act), "mirred") < 0) {
		rtnl_act_put(act);
		return NULL;
	}
	rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
	rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
	rtnl_mirred_set_ifindex(act, (uint32_t)to_ifindex);
	return act;
}

static int podnet_u32_fill(struct rtnl_cls *cls, struct rtnl_act *act, int from)
{
	int rc;

	rtnl_tc_set_ifindex(TC_CAST(cls), from);
	rtnl_tc_set_parent(TC_CAST(cls), PODNET_TC_INGRESS_HANDLE);
	rc = rtnl_tc_set_kind(TC_CAST(cls), "u32");
	if (rc < 0)
		return rc;
	rtnl_cls_set_protocol(cls, ETH_P_ALL);
	rtnl_cls_set_prio(cls, 0);
	rtnl_u32_set_cls_terminal(cls);
	rc = rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0);
	if (rc < 0)
		return rc;
	return rtnl_u32_add_action(cls, act);
}

static int podnet_u32_redirect_add(struct podnet_nl *nl, int from, int to, struct pp_err *err)
{
	struct rtnl_cls *cls = rtnl_cls_alloc();
	struct rtnl_act *act = podnet_mirred_alloc(to);
	int rc = -NLE_NOMEM;

	if (cls && act)
		rc = podnet_u32_fill(cls, act, from);
	if (rc >= 0)
		rc = rtnl_cls_add(nl->sock, cls, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_act_put(act);
	rtnl_cls_put(cls);
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc),
				  "adding a u32 redirect filter from device index %d to %d in %s: %s",
				  from, to, nl->where, nl_geterror(rc));
	return 0;
}

int podnet_tc_redirect_add(struct podnet_nl *nl, int from_ifindex, int to_ifindex,
			   struct pp_err *err)
{
	if (podnet_ingress_add(nl, from_ifindex, err) < 0)
		return -1;
	if (podnet_u32_redirect_add(nl, from_ifindex, to_ifindex, err) == 0)
		return 0;
	podnet_tc_ingress_del(nl, from_ifindex, NULL);   /* ours: made just above */
	return -1;
}

int podnet_tc_ingress_present(struct podnet_nl *nl, int ifindex, struct pp_err *err)
{
	struct nl_cache *cache = NULL;
	struct rtnl_qdisc *q;
	int rc = rtnl_qdisc_alloc_cache(nl->sock, &cache);

	if (rc < 0)
		return podnet_nl_fail(nl, rc, "listing qdiscs", err);
	q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_INGRESS);
	rc = q != NULL;
	rtnl_qdisc_put(q);
	nl_cache_free(cache);
	return rc;
}

int podnet_tc_ingress_del(struct podnet_nl *nl, int ifindex, struct pp_err *err)
{
	struct rtnl_qdisc *q;
	int rc = podnet_tc_ingress_present(nl, ifindex, err);

	if (rc <= 0)
		return rc;
	q = rtnl_qdisc_alloc();
	if (!q)
		return podnet_nomem(err);
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
	rtnl_tc_set_handle(TC_CAST(q), PODNET_TC_INGRESS_HANDLE);
	rc = rtnl_tc_set_kind(TC_CAST(q), "ingress");
	if (rc >= 0)
		rc = rtnl_qdisc_delete(nl->sock, q);
	rtnl_qdisc_put(q);
	if (podnet_nl_absent(rc))
		return 0;
	if (rc < 0)
		return pp_err_set(err, podnet_nl_code(rc),
				  "deleting the ingress qdisc of device index %d in %s: %s", ifindex,
				  nl->where, nl_geterror(rc));
	return 1;
}

/* ---- primary interface ---- */

/* "eth10" -> prefix length 3, number 10; no digits: number UINT64_MAX (upstream's +inf). */
static void podnet_name_split(const char *name, size_t *ret_plen, uint64_t *ret_num)
{
	size_t i = strcspn(name, "0123456789");
	uint64_t v;

	*ret_plen = i;
	*ret_num = (name[i] && parse_uint64(name + i, &v) == 0) ? v : UINT64_MAX;
}

/* Upstream: a later default route replaces the chosen one only if its device has the same
 * letter prefix and a smaller number. */
static bool podnet_name_better(const char *cand, const char *cur)
{
	size_t pc, pk;
	uint64_t nc, nk;

	podnet_name_split(cand, &pc, &nc);
	podnet_name_split(cur, &pk, &nk);
	return pc == pk && strncmp(cand, cur, pc) == 0 && nc < nk;
}

int podnet_primary_iface(struct podnet_nl *nl, char name[IFNAMSIZ], struct in_addr *ret_gw,
			 struct pp_err *err)
{
	struct podnet_route *routes, *best = NULL;
	size_t n;

	if (podnet_route_list(nl, &routes, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct podnet_route *r = &routes[i];

		if (r->dst.len != 0 || r->dev[0] == '\0')
			continue;
		if (!best || podnet_name_better(r->dev, best->dev))
			best = r;
	}
	if (!best) {
		free(routes);
		return pp_err_set(err, PP_NOT_FOUND, "no IPv4 default route in %s, so no primary "
				  "interface", nl->where);
	}
	pp_strlcpy(name, best->dev, IFNAMSIZ);
	*ret_gw = best->gw;
	free(routes);
	return 0;
}
