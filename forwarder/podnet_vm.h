/*
 * Pod networking inside the pod VM (upstream-podnetwork.md §3): rebuild the pod's interface
 * in the pod namespace (`-pod-namespace`, default /run/netns/podns) from apf.json's
 * `pod-network`, as the end of a VXLAN tunnel whose other end the adaptor made on the worker.
 *
 * Order (before the forwarder listens): wait (bounded) for the VM's primary interface and its
 * single IPv4 address; make sure the pod namespace exists (created as `ip netns add` would if
 * absent); NOTRACK rules for the tunnel (remote = the worker's IP); delete a stale device of
 * the pod's interface name left by an earlier run (so a restart does not crash-loop on
 * "VXLAN id exists", upstream #1909); create the VXLAN device from the VM's root namespace
 * directly into the pod namespace, named as the pod's interface, with the pod's MAC and
 * MTU min(pod MTU, 1450); the pod's address; up; routes without a gateway first, then the
 * others; permanent neighbours. A failure part-way removes the device and the rules again.
 *
 * tunnel-type "" means "no pod network" (the local provider and tests): nothing is done.
 * external-net-via-pod-vm is not implemented (a warning is logged).
 */
#ifndef PP_FORWARDER_PODNET_VM_H
#define PP_FORWARDER_PODNET_VM_H

#include <stdbool.h>

#include "forwarder/apf_config.h"
#include "lib/err.h"
#include "podnet/podnet.h"

#define PODNET_VM_PODNS_DEFAULT "/run/netns/podns"
#define PODNET_VM_WAIT_MS       (180 * 1000)    /* upstream: 3 min */
#define PODNET_VM_POLL_MS       1000

struct podnet_vm_opts {
	const char *podns_path;       /* NULL = PODNET_VM_PODNS_DEFAULT */
	const char *host_interface;   /* -host-interface; required when `dedicated` */
	unsigned wait_ms;             /* 0 = PODNET_VM_WAIT_MS */
	unsigned poll_ms;             /* 0 = PODNET_VM_POLL_MS */
	const char *iptables;         /* NULL = "iptables" in PATH */
};

/* apf.json's pod-network -> podnet_info (pure). Accepts the default route's dst as "",
 * "0.0.0.0/0" or "::ffff:0.0.0.0/0" (IPv4-mapped addresses in general); other IPv6 is
 * INVALID_ARGUMENT naming the route. *ret: podnet_info_clear. */
int podnet_vm_info(const struct apf_pod_network *pn, struct podnet_info *ret, struct pp_err *err);

/* Sets up the pod network (see above). *ret_configured = false when tunnel-type is "". */
int podnet_vm_setup(const struct podnet_vm_opts *o, const struct apf_pod_network *pn,
		    bool *ret_configured, struct pp_err *err);
int podnet_vm_setup_info(const struct podnet_vm_opts *o, const struct podnet_info *info,
			 struct pp_err *err);
/* Removes the pod's device and the rules (at forwarder exit). Absent pieces are fine. */
int podnet_vm_teardown(const struct podnet_vm_opts *o, const struct podnet_info *info,
		       struct pp_err *err);

#endif
