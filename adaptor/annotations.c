/*
 * CreateVM annotations (see annotations.h): one lookup per key, strict numbers, bounded
 * strings. The struct owns copies so the protobuf request can be freed independently.
 */
#include "adaptor/annotations.h"

#include <stdlib.h>
#include <string.h>

#include "adaptor/naming.h"
#include "lib/util.h"

#define ANN_SHOWN_VALUE_MAX 64   /* how much of a bad value an error message quotes */

static const char *annotations_get(const struct annotation_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].key && strcmp(kv[i].key, key) == 0)
			return kv[i].value ? kv[i].value : "";
	return "";
}

int annotations_parse_count(const char *key, const char *value, int64_t *ret,
			    struct pp_err *err)
{
	char shown[ANN_SHOWN_VALUE_MAX];
	int64_t v = 0;

	if (value[0] != '\0' && (parse_int64(value, &v) < 0 || v < 0))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "annotation %s has the invalid value %s: "
				  "expected a non-negative decimal integer",
				  key, str_quote(shown, sizeof(shown), value));
	*ret = v;
	return 0;
}

/* Copies the value of key (bounded by max bytes) into *ret. */
static int annotations_copy(const struct annotation_kv *kv, size_t n, const char *key,
			    size_t max, char **ret, struct pp_err *err)
{
	const char *v = annotations_get(kv, n, key);
	size_t len = strnlen(v, max + 1);

	if (len > max)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "annotation %s is longer than %zu bytes", key, max);
	*ret = strndup(v, len);
	if (!*ret)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "annotation %s: out of memory", key);
	return 0;
}

static int annotations_pod_name(const struct annotation_kv *kv, size_t n, char **ret,
				struct pp_err *err)
{
	char name[NAMING_POD_NAME_MAX + 1];

	if (naming_pod_name(annotations_get(kv, n, ANN_SANDBOX_NAME), name, sizeof(name), err) < 0)
		return -1;
	if (name[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "pod name " ANN_SANDBOX_NAME " is missing in annotations");
	*ret = strdup(name);
	if (!*ret)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod name: out of memory");
	return 0;
}

static int annotations_namespace(const struct annotation_kv *kv, size_t n, char **ret,
				 struct pp_err *err)
{
	if (annotations_get(kv, n, ANN_SANDBOX_NAMESPACE)[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "pod namespace " ANN_SANDBOX_NAMESPACE " is missing in annotations");
	return annotations_copy(kv, n, ANN_SANDBOX_NAMESPACE, ANN_NAMESPACE_MAX, ret, err);
}

static int annotations_numbers(const struct annotation_kv *kv, size_t n,
			       struct pod_annotations *a, struct pp_err *err)
{
	if (annotations_parse_count(ANN_VCPUS, annotations_get(kv, n, ANN_VCPUS), &a->vcpus,
				    err) < 0 ||
	    annotations_parse_count(ANN_MEMORY, annotations_get(kv, n, ANN_MEMORY),
				    &a->memory_mib, err) < 0 ||
	    annotations_parse_count(ANN_GPUS, annotations_get(kv, n, ANN_GPUS), &a->gpus, err) < 0)
		return -1;
	return 0;
}

int annotations_parse(const struct annotation_kv *kv, size_t n, struct pod_annotations *ret,
		      struct pp_err *err)
{
	struct pod_annotations a = { 0 };

	if (annotations_pod_name(kv, n, &a.pod_name, err) < 0 ||
	    annotations_namespace(kv, n, &a.pod_namespace, err) < 0 ||
	    annotations_numbers(kv, n, &a, err) < 0 ||
	    annotations_copy(kv, n, ANN_MACHINE_TYPE, ANN_TEXT_MAX, &a.instance_type, err) < 0 ||
	    annotations_copy(kv, n, ANN_IMAGE, ANN_IMAGE_MAX, &a.image, err) < 0 ||
	    annotations_copy(kv, n, ANN_GPU_MODEL, ANN_TEXT_MAX, &a.gpu_model, err) < 0 ||
	    annotations_copy(kv, n, ANN_INITDATA, ANN_INITDATA_MAX, &a.initdata_toml, err) < 0) {
		pod_annotations_clear(&a);
		return -1;
	}
	*ret = a;
	return 0;
}

void pod_annotations_clear(struct pod_annotations *a)
{
	if (!a)
		return;
	free(a->pod_name);
	free(a->pod_namespace);
	free(a->instance_type);
	free(a->image);
	free(a->gpu_model);
	free(a->initdata_toml);
	memset(a, 0, sizeof(*a));
}

void pod_annotations_to_spec(const struct pod_annotations *a, struct instance_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->instance_type = a->instance_type;
	spec->vcpus = a->vcpus;
	spec->memory_mib = a->memory_mib;
	spec->gpus = a->gpus;
	spec->image = a->image;
	spec->multi_nic = false;
}
