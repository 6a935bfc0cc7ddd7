/*
 * Names derived from what the shim sends: the pod name (containerd's plain form or CRI-O's
 * `k8s_<pod>_<ns>_<uid>_<n>`) and the instance name `podvm-<pod>-<sid8>`.
 *
 * The instance name is deterministic on purpose: the core records it before the cloud call, so
 * after a crash a half-created instance is found by name and deleted. It is also the TLS server
 * name the proxy checks. Same rule as upstream: lower-case, every character outside [a-z0-9-]
 * becomes '-', the pod part keeps at most NAMING_POD_PART_MAX characters and the sandbox part at
 * most NAMING_SID_PART_MAX, so the whole name fits INSTANCE_NAME_MAX (63, a DNS label).
 */
#ifndef PP_ADAPTOR_NAMING_H
#define PP_ADAPTOR_NAMING_H

#include <stddef.h>

#include "adaptor/provider.h"
#include "lib/err.h"

#define NAMING_PREFIX "podvm-"
#define NAMING_POD_PART_MAX 48
#define NAMING_SID_PART_MAX 8
#define NAMING_POD_NAME_MAX 253    /* a Kubernetes object name */

/* Writes podvm-<pod>-<sid8> into out (out_size >= INSTANCE_NAME_MAX + 1). Empty pod name or
 * sandbox id is INVALID_ARGUMENT. out is written only on success. */
int naming_instance_name(const char *pod_name, const char *sandbox_id, char *out,
			 size_t out_size, struct pp_err *err);

/* The pod name from the value of io.kubernetes.cri.sandbox-name: the value itself, or, in
 * CRI-O's form `k8s_<pod>_<ns>_<uid>_<n>`, the <pod> field. Writes "" if there is none. Longer
 * than NAMING_POD_NAME_MAX is INVALID_ARGUMENT. */
int naming_pod_name(const char *sandbox_name, char *out, size_t out_size, struct pp_err *err);

#endif
