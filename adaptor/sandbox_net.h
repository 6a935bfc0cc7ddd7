/*
 * Pod networking of one sandbox, as the lifecycle needs it (docs/networking.md): the VXLAN
 * index is allocated in state.db and the pod's netns inspected when apf.json is rendered
 * (CreateVM); the tunnel is recorded, then set up, once the VM's IP is known (StartVM); it is
 * torn down and the index released after the VM is deleted (StopVM, failed StartVM, restart
 * clean-up); live tunnels are checked (and rebuilt if damaged) after a restart.
 *
 * Nothing is done for a sandbox without a network namespace path, or when the provider's
 * instances share the node's network (the local provider). All calls block: workers only.
 */
#ifndef PP_ADAPTOR_SANDBOX_NET_H
#define PP_ADAPTOR_SANDBOX_NET_H

#include <stdbool.h>

#include "adaptor/daemon.h"
#include "adaptor/podnet_worker.h"

/* Fills d->net_opts from the configuration (start-up). */
void sandbox_net_init(struct daemon *d);
bool sandbox_net_wanted(const struct daemon *d, const struct sandbox *sb);
/* CreateVM: allocates the index, inspects the netns, keeps the result on the sandbox and fills
 * *ret for apf.json (podnet_apf_clear it). *ret_has is false when networking is not wanted. */
int sandbox_net_prepare(struct daemon *d, struct sandbox *sb, struct podnet_apf *ret, bool *ret_has,
			struct pp_err *err);
/* StartVM, after the instance's IPs are recorded. */
int sandbox_net_setup(struct daemon *d, struct sandbox *sb, struct pp_err *err);
/* After the VM is gone: tears down what the row records and releases the index. Logs
 * failures (the VM is gone either way); never fails. */
void sandbox_net_teardown(struct daemon *d, const struct sandbox *sb);
/* Restart: a running sandbox's tunnel is checked and rebuilt if damaged. */
void sandbox_net_reconcile(struct daemon *d, const struct sandbox *sb);

#endif
