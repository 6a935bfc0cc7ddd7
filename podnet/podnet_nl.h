/*
 * Netlink primitives for pod networking, on libnl-3 / libnl-route-3, behind a header that
 * shows no libnl type (so that code including it needs no libnl include path).
 *
 * The one idea: a struct podnet_nl is a rtnetlink socket bound to ONE network namespace. It is
 * opened by entering that namespace on the calling thread (setns), connecting, and returning
 * at once; from then on every request on it acts in that namespace, whatever the thread's
 * namespace is. A VXLAN device is created from the socket of the namespace that must own its
 * UDP socket and underlay route (the root one) and placed directly into the target namespace
 * (IFLA_NET_NS_FD at creation) under its final name, so no temporary device ever exists.
 *
 * Return convention: -1 with *err filled on failure; lookups and deletions return 1 when the
 * object was found/removed and 0 when it was absent.
 */
#ifndef PP_PODNET_NL_H
#define PP_PODNET_NL_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "podnet/podnet.h"

struct podnet_nl;

/* netns_path NULL: the calling thread's namespace. A missing netns file is NOT_FOUND. */
int podnet_nl_open(const char *netns_path, struct podnet_nl **ret, struct pp_err *err);
void podnet_nl_close(struct podnet_nl *nl);                 /* NULL ok */
const char *podnet_nl_where(const struct podnet_nl *nl);    /* for messages */

/* An O_CLOEXEC fd of the netns file (NOT_FOUND when missing). */
int podnet_netns_open(const char *netns_path, int *ret_fd, struct pp_err *err);
/* 1 if path names a live network namespace (a bind-mounted nsfs file), else 0. */
int podnet_netns_exists(const char *netns_path);
/* Makes path a new network namespace (as `ip netns add`) unless it already is one; brings its
 * lo up. The parent directory is created (0755) if needed. */
int podnet_netns_ensure(const char *netns_path, struct pp_err *err);

struct podnet_link {
	int ifindex;
	char name[IFNAMSIZ];
	char kind[16];               /* "vxlan", "veth", ... or "" */
	uint8_t mac[PODNET_MAC_LEN];
	unsigned mtu;
	bool up;
	uint32_t vni;                /* vxlan only */
	uint16_t port;               /* vxlan only */
	struct in_addr remote;       /* vxlan only */
};

int podnet_link_get(struct podnet_nl *nl, const char *name, struct podnet_link *ret,
		    struct pp_err *err);
int podnet_link_get_index(struct podnet_nl *nl, int ifindex, struct podnet_link *ret,
			  struct pp_err *err);
int podnet_link_del(struct podnet_nl *nl, const char *name, struct pp_err *err);
int podnet_link_set_up(struct podnet_nl *nl, const char *name, struct pp_err *err);

struct podnet_vxlan {
	const char *name;            /* final name, in the target namespace */
	uint32_t vni;
	uint16_t port;
	struct in_addr remote;
	int netns_fd;                /* target namespace; -1 = the socket's own */
	const uint8_t *mac;          /* NULL: kernel's random MAC */
	unsigned mtu;                /* 0: kernel default (1500) */
};
/* Upstream's attributes (learning off, ttl/tos 0, no device binding). EEXIST is
 * ALREADY_EXISTS naming the VNI. */
int podnet_vxlan_add(struct podnet_nl *nl, const struct podnet_vxlan *v, struct pp_err *err);

/* IPv4 addresses of ifindex, in dump order; at most max. */
int podnet_addr_list(struct podnet_nl *nl, int ifindex, struct podnet_prefix *out, size_t max,
		     size_t *ret_n, struct pp_err *err);
int podnet_addr_add(struct podnet_nl *nl, int ifindex, const struct podnet_prefix *p,
		    struct pp_err *err);

/* IPv4 unicast routes of the main table, sorted with podnet_route_cmp; *ret is heap. */
int podnet_route_list(struct podnet_nl *nl, struct podnet_route **ret, size_t *ret_n,
		      struct pp_err *err);
/* Adds r (CREATE|EXCL, main table, unicast); r->dev is looked up by name. */
int podnet_route_add(struct podnet_nl *nl, const struct podnet_route *r, struct pp_err *err);
/* Deletes the routes with this destination on ifindex; returns how many. */
int podnet_route_del_dst(struct podnet_nl *nl, int ifindex, const struct podnet_prefix *dst,
			 struct pp_err *err);

/* IPv4 neighbours of ifindex; *ret is heap. */
int podnet_neigh_list(struct podnet_nl *nl, int ifindex, struct podnet_neigh **ret,
		      size_t *ret_n, struct pp_err *err);
int podnet_neigh_add(struct podnet_nl *nl, const struct podnet_neigh *n, struct pp_err *err);

/* tc: an ingress qdisc on `from` (EXCL: FAILED_PRECONDITION if one exists) and a u32
 * match-all filter redirecting every frame to `to`'s egress (mirred, stolen). If the filter
 * fails, the qdisc just made is removed again. */
int podnet_tc_redirect_add(struct podnet_nl *nl, int from_ifindex, int to_ifindex,
			   struct pp_err *err);
int podnet_tc_ingress_present(struct podnet_nl *nl, int ifindex, struct pp_err *err);
int podnet_tc_ingress_del(struct podnet_nl *nl, int ifindex, struct pp_err *err);

/* The primary interface: upstream's rule over the IPv4 default routes of the main table
 * (first in route order; a later one wins only with the same name prefix and a smaller
 * number). NOT_FOUND when there is no default route. gw is INADDR_ANY without a gateway. */
int podnet_primary_iface(struct podnet_nl *nl, char name[IFNAMSIZ], struct in_addr *ret_gw,
			 struct pp_err *err);

#endif
