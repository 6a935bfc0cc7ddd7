/*
 * Instance-type selection (upstream-providers.md §0.4), shared by the cloud drivers.
 *
 * An explicit type from the pod wins; else GPUs, or vCPUs and memory together, pick the first
 * fitting entry of the provider's list sorted by (GPUs, memory, vCPUs); else the default. The
 * candidate must then be in the configured list, or be the default when that list is empty.
 * Upstream finds "the first fitting entry" with a binary search, which is wrong because "fits"
 * is not monotonic over a list sorted on three keys; we scan linearly, which gives the same
 * answer whenever upstream's is right and the smallest fitting type when it is not.
 */
#ifndef PP_ADAPTOR_INSTANCE_TYPE_H
#define PP_ADAPTOR_INSTANCE_TYPE_H

#include <stddef.h>
#include <stdint.h>

#include "adaptor/provider.h"
#include "lib/err.h"

struct instance_type_info {
	const char *name;        /* not owned */
	int64_t vcpus;
	int64_t memory_mib;
	int64_t gpus;
};

struct instance_type_policy {
	const struct instance_type_info *types;   /* sorted with instance_type_sort() */
	size_t n_types;
	const char *const *allowed;      /* the configured list (e.g. PODVM_INSTANCE_TYPES) */
	size_t n_allowed;
	const char *allowed_option;      /* its option name, for messages */
	const char *def;                 /* the default type (e.g. PODVM_INSTANCE_TYPE); "" = none */
	const char *default_option;      /* its option name, for messages */
};

/* Sorts ascending by GPUs, then memory, then vCPUs, then name (so the order is total). */
void instance_type_sort(struct instance_type_info *types, size_t n);

/* Chooses the instance type for spec. *ret points into spec, policy->types or policy->def;
 * written only on success. Errors (INVALID_ARGUMENT) name the requested type or resources and
 * the allowed list, e.g. "instance type m9.huge is not in PODVM_INSTANCE_TYPES (m6a.large,
 * c6a.xlarge)". */
int instance_type_select(const struct instance_spec *spec,
			 const struct instance_type_policy *policy, const char **ret,
			 struct pp_err *err);

#endif
