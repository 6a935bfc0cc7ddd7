/*
 * The nine CreateVM annotations the kata shim sends (upstream-protocols.md §1.4), parsed into a
 * struct once, at the edge.
 *
 * Unlike upstream, a number that does not parse (vcpus "1.5", memory "lots") is not silently
 * taken as 0: it is INVALID_ARGUMENT naming the annotation and the bad value, because a pod that
 * asked for resources and silently got the default instance type is worse than a clear error.
 * Empty or missing numbers are 0 (the shim always sends all nine keys, often empty or "0").
 */
#ifndef PP_ADAPTOR_ANNOTATIONS_H
#define PP_ADAPTOR_ANNOTATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "adaptor/provider.h"
#include "lib/err.h"

#define ANN_SANDBOX_NAME      "io.kubernetes.cri.sandbox-name"
#define ANN_SANDBOX_NAMESPACE "io.kubernetes.cri.sandbox-namespace"
#define ANN_MACHINE_TYPE      "io.katacontainers.config.hypervisor.machine_type"
#define ANN_IMAGE             "io.katacontainers.config.hypervisor.image"
#define ANN_VCPUS             "io.katacontainers.config.hypervisor.default_vcpus"
#define ANN_MEMORY            "io.katacontainers.config.hypervisor.default_memory"
#define ANN_INITDATA          "io.katacontainers.config.hypervisor.cc_init_data"
#define ANN_GPUS              "io.katacontainers.config.hypervisor.default_gpus"
#define ANN_GPU_MODEL         "io.katacontainers.config.hypervisor.default_gpu_model"

/* Limits on what we accept (the shim is trusted, but its values end up in cloud requests). */
#define ANN_NAMESPACE_MAX   63          /* a DNS label */
#define ANN_TEXT_MAX        1024        /* machine type, GPU model */
#define ANN_IMAGE_MAX       4096        /* an AMI id, an Azure image id, a GCP image path */
#define ANN_INITDATA_MAX    (512 * 1024)   /* raw TOML; every cloud's user-data limit is lower */

struct annotation_kv {
	const char *key;
	const char *value;
};

/* Every string is heap-allocated and non-NULL ("" when absent). */
struct pod_annotations {
	char *pod_name;          /* CRI-O's k8s_<pod>_... form already reduced to <pod> */
	char *pod_namespace;
	char *instance_type;     /* machine_type */
	char *image;
	int64_t vcpus;           /* 0 = unspecified */
	int64_t memory_mib;      /* 0 = unspecified */
	int64_t gpus;            /* 0 = none */
	char *gpu_model;
	char *initdata_toml;     /* raw TOML as the shim decoded it; "" = none */
};

/* Parses the annotations of one CreateVM (keys not listed above are ignored). Missing pod name:
 * INVALID_ARGUMENT "pod name io.kubernetes.cri.sandbox-name is missing in annotations"; same
 * for the namespace. *ret is written only on success; free it with pod_annotations_clear(). */
int annotations_parse(const struct annotation_kv *kv, size_t n, struct pod_annotations *ret,
		      struct pp_err *err);
void pod_annotations_clear(struct pod_annotations *a);   /* NULL ok; leaves it zeroed */

/* Fills spec with pointers into a (a must outlive spec). multi_nic is left false. */
void pod_annotations_to_spec(const struct pod_annotations *a, struct instance_spec *spec);

/* Strict decimal int64 for an annotation: "" -> 0; sign, spaces, fractions, trailing text,
 * overflow and negative values are INVALID_ARGUMENT naming key and value. */
int annotations_parse_count(const char *key, const char *value, int64_t *ret,
			    struct pp_err *err);

#endif
