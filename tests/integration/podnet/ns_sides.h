/*
 * The two sides of pod networking as run inside the test namespaces (through nt_in_ns): the
 * worker's calls (ns_worker.c, adaptor/podnet_worker.h) and the VM's (ns_vm.c,
 * forwarder/podnet_vm.h). Two files because the adaptor's and the forwarder's apf.json headers
 * both name their structs apf_*.
 */
#ifndef PP_NS_SIDES_H
#define PP_NS_SIDES_H

#include <stdint.h>

#include "nettest.h"

struct ns_worker_arg {
	const char *pod_path;      /* the pod netns file */
	uint32_t index;            /* VNI = 555000 + index */
	const char *vm_ips;        /* "192.168.100.2" */
	int fail_after;            /* enum podnet_setup_step, 0 = none */
};

/* Inspect (apf.json text into r->json), then Setup (r->ms = Setup's time). */
int ns_worker_inspect_setup(void *arg, struct nt_result *r);
/* Setup only, with the tunnel built from arg (eth0, 4789, vm_ips). */
int ns_worker_setup(void *arg, struct nt_result *r);
int ns_worker_teardown(void *arg, struct nt_result *r);      /* r->ms = time */
int ns_worker_reconcile(void *arg, struct nt_result *r);     /* r->value = the result */

struct ns_vm_arg {
	const char *json;          /* apf.json text */
	const char *podns;         /* podns path */
	unsigned wait_ms;          /* 0 = 5 s */
};

int ns_vm_setup(void *arg, struct nt_result *r);             /* r->ms = time */
int ns_vm_teardown(void *arg, struct nt_result *r);

#endif
