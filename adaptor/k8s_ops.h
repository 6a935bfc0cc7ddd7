/*
 * The daemon's Kubernetes calls, upstream-compatible (spec §3.9–3.11, §7.3), each one blocking
 * function over a struct k8s_client (worker threads only):
 *
 *  - the node's extended resource kata.peerpods.io/vm and the kata.peerpods.io/caa-owner
 *    annotation that decides, during a rolling update, which daemon may withdraw it (k8s_node.c);
 *  - one PeerPod object per instance, owned by the Pod, with a finalizer released after the
 *    instance is deleted, so that upstream's peerpod-ctrl keeps working (k8s_peerpod.c);
 *  - the pod's and its service account's image pull secrets as an auth.json (k8s_pullsecrets.c);
 *  - the startup probe's check that every peer pod on the node became Ready after our start.
 */
#ifndef PP_ADAPTOR_K8S_OPS_H
#define PP_ADAPTOR_K8S_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adaptor/k8s_client.h"

#define K8S_RESOURCE_VM "kata.peerpods.io/vm"
#define K8S_RESOURCE_VM_PATH "/status/capacity/kata.peerpods.io~1vm"
#define K8S_ANNOT_OWNER "kata.peerpods.io/caa-owner"
#define K8S_PEERPOD_API "confidentialcontainers.org/v1alpha1"
#define K8S_PEERPOD_FINALIZER "peer.pod/finalizer"
#define K8S_PEERPOD_NAME_MAX 253
#define K8S_PULL_SECRETS_MAX 64     /* secrets looked at per pod */
#define K8S_DOCKERCFG_MAX (64 * 1024)

/* Node (k8s_node.c). advertise: merge-patch the owner annotation (if pod_uid is set), then
 * JSON-patch the status capacity to `limit`. */
int k8s_node_advertise(struct k8s_client *c, const char *node, const char *pod_uid, int64_t limit,
		       struct pp_err *err);
/* *ret_owner: pod_uid empty, or the node's annotation equals pod_uid (no annotation = owner). */
int k8s_node_is_owner(struct k8s_client *c, const char *node, const char *pod_uid, bool *ret_owner,
		      struct pp_err *err);
/* Removes the capacity if this daemon is the owner; *ret_removed says whether it did. */
int k8s_node_withdraw(struct k8s_client *c, const char *node, const char *pod_uid,
		      bool *ret_removed, struct pp_err *err);

/* PeerPod (k8s_peerpod.c). The name is deterministic, "<pod>-resource-<sandbox-id[0:5]>", so
 * that a restarted daemon releases the PeerPod of a sandbox it did not create. */
int k8s_peerpod_name(const char *pod, const char *sandbox_id, char *out, size_t size,
		     struct pp_err *err);
/* GET the Pod (its uid), POST the PeerPod. An existing one (409) is success. */
int k8s_peerpod_create(struct k8s_client *c, const char *ns, const char *pod,
		       const char *sandbox_id, const char *cloud_provider, const char *instance_id,
		       struct pp_err *err);
/* JSON-patch remove /metadata/finalizers. A PeerPod that is gone (404) is success. */
int k8s_peerpod_release(struct k8s_client *c, const char *ns, const char *pod,
			const char *sandbox_id, struct pp_err *err);

/* Pull secrets (k8s_pullsecrets.c): {"auths":{"<registry>":{"auth":"..."}}}, or *ret NULL
 * when the pod has none. Secrets that are missing or malformed are skipped with a log line. */
int k8s_pull_secrets_auth_json(struct k8s_client *c, const char *ns, const char *pod, char **ret,
			       struct pp_err *err);
/* The registry map of one secret's data (.dockerconfigjson or .dockercfg) merged into auths.
 * Pure; exposed for tests. */
int k8s_pull_secret_merge(json_t *auths, const json_t *secret, struct pp_err *err);

/* Startup probe (k8s_node.c): every pod on `node` whose runtimeClassName is `runtime_class`
 * has condition Ready=True with lastTransitionTime >= since (unix seconds). */
int k8s_node_peer_pods_ready(struct k8s_client *c, const char *node, const char *runtime_class,
			     int64_t since, bool *ret_ready, struct pp_err *err);

#endif
