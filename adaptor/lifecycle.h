/*
 * The sandbox lifecycle: CreateVM, StartVM, StopVM as the shim calls them, and the same steps
 * replayed by the restart reconciler. Each transition is committed to state.db before the side
 * effect that depends on it (docs/internals/lifecycle.md):
 *
 *   CreateVM  row "created" (instance name recorded)        no cloud call
 *   StartVM   "created" -> "starting"  then create_instance, record id+IPs, proxy up -> "running"
 *   StopVM    -> "stopping"  then delete_instance  -> row removed ("gone")
 *   failure   -> "failed" (instance deleted unless KEEP_FAILED_VMS)
 */
#ifndef PP_ADAPTOR_LIFECYCLE_H
#define PP_ADAPTOR_LIFECYCLE_H

#include "adaptor/daemon.h"
#include "proto/hypervisor.pb-c.h"

/* Loop thread. Each answers the call (now or later, from a worker). lifecycle_create takes
 * ownership of req. */
void lifecycle_create(struct daemon *d, struct ttrpc_call *call, Hypervisor__CreateVMRequest *req);
void lifecycle_start(struct daemon *d, struct ttrpc_call *call, const char *id);
void lifecycle_stop(struct daemon *d, struct ttrpc_call *call, const char *id);

/* Loop thread: brings back the agent proxy of a sandbox that was running before a restart. */
void lifecycle_restore_proxy(struct daemon *d, struct sandbox *sb);
/* Loop thread: stops every proxy (shutdown). The VMs keep running. */
void lifecycle_stop_all_proxies(struct daemon *d);

/* Sandbox ids become path components: checks the alphabet and length. */
int sandbox_id_check(const char *id, struct pp_err *err);

#endif
