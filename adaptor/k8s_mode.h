/*
 * The daemon's Kubernetes mode and its HTTP endpoint, as hooks the daemon calls.
 *
 * Kubernetes mode is on when NODE_NAME is set and a client can be built (-kubeconfig /
 * KUBECONFIG, else the in-cluster service account); otherwise everything Kubernetes is off with
 * one log line and the hooks do nothing. In Kubernetes mode: the node's extended resource at
 * start (a failure fails the start, as upstream) and its withdrawal at shutdown if we are still
 * the owner; a PeerPod per instance (failures logged, not fatal); pull secrets into auth.json
 * at CreateVM. Every call blocks and runs on a worker thread (or before/after the loop runs).
 *
 * The endpoint (/startup, /metrics) runs in Kubernetes mode, and outside it when PROBE_PORT
 * is set explicitly.
 */
#ifndef PP_ADAPTOR_K8S_MODE_H
#define PP_ADAPTOR_K8S_MODE_H

#include "adaptor/daemon.h"

#define K8S_MODE_PROBE_ADDRESS "127.0.0.1"

/* Before the hypervisor socket listens (main thread, loop not running). */
int k8s_mode_start(struct daemon *d, struct pp_err *err);
/* After the loop stopped: withdraw the node resource if still owner, stop the endpoint. */
void k8s_mode_stop(struct daemon *d);
/* Frees what k8s_mode_start made (daemon_fini). */
void k8s_mode_free(struct daemon *d);
/* true if this daemon may remove the hypervisor socket at shutdown (not in Kubernetes mode,
 * or still the node's owner). Blocking. */
bool k8s_mode_owns_node(struct daemon *d);

/* Worker threads. */
void k8s_mode_instance_created(struct daemon *d, const struct sandbox *sb);
void k8s_mode_instance_deleted(struct daemon *d, const struct sandbox *sb);
/* auth.json for the pod (malloc'd), or NULL (none, too large — dropped with a log line — or
 * not in Kubernetes mode). */
char *k8s_mode_auth_json(struct daemon *d, const struct sandbox *sb);

#endif
