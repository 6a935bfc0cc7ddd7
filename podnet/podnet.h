/*
 * Pod networking, the shared part (libpppodnet): plain data that describes a pod's network as
 * the worker sees it in the pod's network namespace, and that the pod VM rebuilds inside its
 * `podns` (upstream-podnetwork.md). The worker side (adaptor/podnet_worker.c) fills a
 * struct podnet_info by inspecting the pod netns; the VM side (forwarder/podnet_vm.c) gets one
 * from apf.json's `pod-network` and replays it. IPv4 only, as upstream.
 *
 * The one idea: everything here is values (addresses in network order, names, kernel enum
 * numbers); netlink (podnet_nl.h) and iptables (podnet_ipt.h) are separate modules, and
 * nothing in this folder knows the daemon, the store or the forwarder.
 */
#ifndef PP_PODNET_H
#define PP_PODNET_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PODNET_MAX_ROUTES     256        /* as apf.json's limit */
#define PODNET_MAX_NEIGHBORS  256
#define PODNET_MAX_ADDRS      64
#define PODNET_VXLAN_PORT     4789       /* VXLAN_PORT default */
#define PODNET_VXLAN_MIN_ID   555000     /* -vxlan-min-id default */
#define PODNET_VNI_LIMIT      (1u << 24) /* VNIs are 24 bits */
#define PODNET_VM_MTU_MAX     1450       /* VM side clamps the pod MTU to this */
#define PODNET_WORKER_DEV     "vxlan1"   /* fixed name of the tunnel in the pod netns */
#define PODNET_TUNNEL_VXLAN   "vxlan"
#define PODNET_MAC_LEN        6

struct podnet_prefix {
	struct in_addr addr;
	unsigned len;                 /* 0..32 */
};

struct podnet_route {
	struct podnet_prefix dst;     /* len 0 and 0.0.0.0: the default route */
	struct in_addr gw;            /* INADDR_ANY: no gateway */
	char dev[IFNAMSIZ];
	int protocol;                 /* RTPROT_*; 0 = not given */
	int scope;                    /* RT_SCOPE_* */
	uint32_t metric;              /* only used to sort; never sent */
};

struct podnet_neigh {
	struct in_addr ip;
	uint8_t mac[PODNET_MAC_LEN];
	char dev[IFNAMSIZ];
	int state;                    /* NUD_* */
};

/* What the VM needs to rebuild the pod's network (tunneler.Config). */
struct podnet_info {
	char tunnel_type[16];         /* "vxlan" */
	char pod_if[IFNAMSIZ];        /* "interface" */
	uint8_t pod_mac[PODNET_MAC_LEN];
	unsigned mtu;
	struct podnet_prefix pod_ip;  /* "podip" */
	struct in_addr pod_gw;        /* gateway of the pod's primary route (not sent) */
	struct podnet_prefix worker_ip;   /* "worker-node-ip" */
	struct podnet_route *routes;  /* heap; podnet_info_clear frees */
	size_t n_routes;
	struct podnet_neigh *neighs;
	size_t n_neighs;
	uint32_t index;
	uint32_t vni;                 /* "vxlan-id" */
	uint16_t port;                /* "vxlan-port" */
	bool dedicated;
	bool external_net_via_podvm;
};

void podnet_info_clear(struct podnet_info *info);   /* frees the arrays; NULL ok */

/* What the worker side made for one sandbox, enough to check, redo or undo it after a
 * restart (persisted in the adaptor's state.db). */
struct podnet_tunnel {
	uint32_t vni;
	uint16_t port;
	struct in_addr remote;        /* the VM's IP */
	char pod_if[IFNAMSIZ];        /* the pod's interface in its netns ("eth0") */
};

/* Text forms. Each returns out; out is "" when the value does not fit. */
#define PODNET_PREFIX_STRLEN 24   /* "255.255.255.255/32" */
#define PODNET_MAC_STRLEN    18
const char *podnet_prefix_format(const struct podnet_prefix *p, char *out, size_t size);
const char *podnet_addr_format(struct in_addr a, char *out, size_t size); /* INADDR_ANY: "" */
const char *podnet_mac_format(const uint8_t mac[PODNET_MAC_LEN], char *out, size_t size);
/* Strict parsers: 0 or -1. "a.b.c.d/n"; a bare address is refused. */
int podnet_prefix_parse(const char *s, struct podnet_prefix *ret);
int podnet_addr_parse(const char *s, struct in_addr *ret);
int podnet_mac_parse(const char *s, uint8_t mac[PODNET_MAC_LEN]);   /* "xx:xx:xx:xx:xx:xx" */
/* The network part of p (host bits cleared). */
struct in_addr podnet_prefix_network(const struct podnet_prefix *p);

/* Upstream's enum spellings (netlink names): NULL when the value has none. */
const char *podnet_protocol_name(int protocol);   /* "static" | "boot" | "dhcp" | "kernel" */
const char *podnet_scope_name(int scope);         /* "universe" | "site" | "link" | ... */
const char *podnet_nud_name(int state);           /* "permanent" | ... */

/* Route order used on both sides (upstream sorts by table, dst bytes, dst length, metric). */
int podnet_route_cmp(const struct podnet_route *a, const struct podnet_route *b);

#endif
