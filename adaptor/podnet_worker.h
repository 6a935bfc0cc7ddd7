/*
 * Pod networking on the worker node (upstream-podnetwork.md §1–2): at CreateVM, inspect the
 * pod's network namespace (podnet_worker_inspect -> struct podnet_info, rendered into apf.json
 * with podnet_worker_apf); at StartVM, join the pod's interface to the VM through a VXLAN
 * tunnel (podnet_worker_setup); at StopVM, undo it (podnet_worker_teardown); after a daemon
 * restart, keep or rebuild live tunnels (podnet_worker_reconcile).
 *
 * What Setup makes, all named so Teardown finds it again: in the node's namespace, the raw-table
 * NOTRACK rules for the VNI (podnet_ipt.h) and the VXLAN UDP socket; in the pod's namespace,
 * the device `vxlan1` (created from the node's namespace directly into the pod's, so its socket
 * and underlay stay on the node) and an ingress qdisc with a u32 match-all mirred redirect on
 * each of the pod's interface and vxlan1.
 *
 * Better than upstream: the index (VNI = vxlan-min-id + index) comes from the caller, who keeps
 * it in state.db (store_vxlan_alloc), so a restart never reuses a live VNI; a Setup that fails
 * part-way undoes what it made; Setup first removes a stale vxlan1 and stale rules of its VNI
 * (left by a crash); Teardown with the pod's namespace already gone succeeds (the device died
 * with it) and still removes the rules; Teardown goes on past an error and reports the first.
 *
 * All calls block (netlink, the iptables program): run them on a worker thread, never on the
 * event loop. They are safe to call from several threads at once for different sandboxes.
 */
#ifndef PP_ADAPTOR_PODNET_WORKER_H
#define PP_ADAPTOR_PODNET_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "adaptor/apf_json.h"
#include "lib/err.h"
#include "podnet/podnet.h"

struct podnet_worker_opts {
	const char *tunnel_type;        /* TUNNEL_TYPE; NULL or "" = "vxlan" (the only one) */
	const char *host_interface;     /* -host-interface; NULL or "" = the primary interface */
	uint16_t vxlan_port;            /* VXLAN_PORT; 0 = 4789 */
	uint32_t vxlan_min_id;          /* -vxlan-min-id; 0 = 555000 */
	const char *pod_subnet_cidrs;   /* POD_SUBNET_CIDRS, comma-separated; bad entries skipped */
	bool external_net_via_podvm;    /* EXTERNAL_NETWORK_VIA_PODVM (passed on to the VM) */
	const char *iptables;           /* the iptables program; NULL = "iptables" in PATH */
};

/* Indexes must stay below this (VNIs are 24 bits): the `limit` for store_vxlan_alloc. */
int64_t podnet_worker_index_limit(const struct podnet_worker_opts *o);

/* Reads the node's primary/host interface and the pod's namespace (read-only). NOT_FOUND if
 * the netns is missing, FAILED_PRECONDITION if the pod has no default route or not exactly one
 * IPv4 address, OUT_OF_RANGE if the VNI does not fit 24 bits. *ret: podnet_info_clear. */
int podnet_worker_inspect(const struct podnet_worker_opts *o, const char *netns_path,
			  uint32_t index, struct podnet_info *ret, struct pp_err *err);

/* The tunnel to make for a VM whose IPs the provider reported (comma-separated, as the store
 * keeps them): remote = the second IP when `dedicated`, else the first. */
int podnet_worker_tunnel(const struct podnet_info *info, const char *vm_ips,
			 struct podnet_tunnel *ret, struct pp_err *err);

/* Makes the tunnel (see above). On failure nothing it made is left. ALREADY_EXISTS when another
 * device in the node's namespace holds the VNI; FAILED_PRECONDITION when the pod's interface
 * already has an ingress qdisc that is not ours. */
int podnet_worker_setup(const struct podnet_worker_opts *o, const char *netns_path,
			const struct podnet_tunnel *t, struct pp_err *err);

/* Removes what Setup made; absent pieces (or a vanished netns) are fine. */
int podnet_worker_teardown(const struct podnet_worker_opts *o, const char *netns_path,
			   const struct podnet_tunnel *t, struct pp_err *err);

enum podnet_reconcile_result {
	PODNET_RECONCILE_INTACT = 0,    /* all there: left untouched (no packet lost) */
	PODNET_RECONCILE_REBUILT,       /* something was missing: Setup ran again */
	PODNET_RECONCILE_NETNS_GONE,    /* the pod is gone: its rules were removed */
};
/* For a sandbox the store says is running, after a restart. */
int podnet_worker_reconcile(const struct podnet_worker_opts *o, const char *netns_path,
			    const struct podnet_tunnel *t, enum podnet_reconcile_result *ret,
			    struct pp_err *err);

/* ---- apf.json (podnet_apf.c) ---- */

struct podnet_apf_route_text {
	char dst[PODNET_PREFIX_STRLEN];
	char gw[INET_ADDRSTRLEN];
	char dev[IFNAMSIZ];
};

struct podnet_apf_neigh_text {
	char ip[INET_ADDRSTRLEN];
	char mac[PODNET_MAC_STRLEN];
	char dev[IFNAMSIZ];
};

/* struct apf_pod_network (what apf_json_render takes) and the text it points into. */
struct podnet_apf {
	struct apf_pod_network pn;
	char pod_ip[PODNET_PREFIX_STRLEN];
	char pod_mac[PODNET_MAC_STRLEN];
	char worker_ip[PODNET_PREFIX_STRLEN];
	char interface[IFNAMSIZ];
	char tunnel_type[16];
	struct apf_route *routes;
	struct podnet_apf_route_text *route_text;
	struct apf_neighbor *neighbors;
	struct podnet_apf_neigh_text *neigh_text;
};

/* Fills *ret from info the way upstream's encoder writes it (default route dst in the plain
 * "0.0.0.0/0" form, which upstream's decoder accepts). ret->pn points into *ret: use it in
 * place (do not copy the struct). Free with podnet_apf_clear. */
int podnet_worker_apf(const struct podnet_info *info, struct podnet_apf *ret, struct pp_err *err);
void podnet_apf_clear(struct podnet_apf *a);     /* NULL ok */

#endif
