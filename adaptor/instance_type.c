/*
 * Instance-type selection (see instance_type.h): a linear scan over a sorted list, then a check
 * against the configured list. The lists are a few dozen entries; clarity beats cleverness.
 */
#include "adaptor/instance_type.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_TEXT_MAX 256   /* how much of the allowed list an error message shows */

static int instance_type_cmp_i64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

static int instance_type_cmp(const void *pa, const void *pb)
{
	const struct instance_type_info *a = pa, *b = pb;
	int c;

	if ((c = instance_type_cmp_i64(a->gpus, b->gpus)) != 0)
		return c;
	if ((c = instance_type_cmp_i64(a->memory_mib, b->memory_mib)) != 0)
		return c;
	if ((c = instance_type_cmp_i64(a->vcpus, b->vcpus)) != 0)
		return c;
	return strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

void instance_type_sort(struct instance_type_info *types, size_t n)
{
	if (n > 1)
		qsort(types, n, sizeof(*types), instance_type_cmp);
}

static bool instance_type_fits(const struct instance_type_info *t, const struct instance_spec *s,
			       bool with_gpus)
{
	if (with_gpus ? t->gpus < s->gpus : t->gpus > 0)
		return false;
	return t->vcpus >= s->vcpus && t->memory_mib >= s->memory_mib;
}

/* The first (smallest) type that fits, or NULL. */
static const struct instance_type_info *
instance_type_first_fit(const struct instance_type_policy *p, const struct instance_spec *s,
			bool with_gpus)
{
	for (size_t i = 0; i < p->n_types; i++)
		if (instance_type_fits(&p->types[i], s, with_gpus))
			return &p->types[i];
	return NULL;
}

/* "a, b, c" (truncated with "..." if long) into buf. */
static const char *instance_type_list_text(char *buf, size_t size, const char *const *list,
					   size_t n)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", list[i]);

		if (w < 0 || (size_t)w >= size - pos) {
			if (size >= 4)
				memcpy(buf + size - 4, "...", 4);
			break;
		}
		pos += (size_t)w;
	}
	return buf;
}

static bool instance_type_in_list(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static const char *instance_type_or(const char *s, const char *fallback)
{
	return s && s[0] != '\0' ? s : fallback;
}

/* Step 4 of the upstream rules: the candidate must be allowed. */
static int instance_type_verify(const char *cand, const struct instance_type_policy *p,
				struct pp_err *err)
{
	const char *list_opt = instance_type_or(p->allowed_option, "the instance type list");
	const char *def_opt = instance_type_or(p->default_option, "instance type");
	char list[LIST_TEXT_MAX];

	if (p->n_allowed == 0) {
		if (strcmp(cand, p->def ? p->def : "") == 0)
			return 0;
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "instance type %s is not the default %s (%s) and %s is empty",
				  cand, def_opt, p->def ? p->def : "", list_opt);
	}
	if (instance_type_in_list(cand, p->allowed, p->n_allowed))
		return 0;
	return pp_err_set(err, PP_INVALID_ARGUMENT, "instance type %s is not in %s (%s)", cand,
			  list_opt,
			  instance_type_list_text(list, sizeof(list), p->allowed, p->n_allowed));
}

/* Steps 2 and 3: a candidate from resources, NULL when the spec asks for none. */
static int instance_type_from_resources(const struct instance_spec *s,
					const struct instance_type_policy *p, const char **ret,
					struct pp_err *err)
{
	const struct instance_type_info *t;

	*ret = NULL;
	if (s->gpus > 0) {
		t = instance_type_first_fit(p, s, true);
		if (!t)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "no instance type has %lld GPUs, %lld vCPUs and %lld MiB "
					  "of memory or more",
					  (long long)s->gpus, (long long)s->vcpus,
					  (long long)s->memory_mib);
		*ret = t->name;
	} else if (s->vcpus != 0 && s->memory_mib != 0) {
		t = instance_type_first_fit(p, s, false);
		if (!t)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "no instance type without GPUs has %lld vCPUs and %lld MiB "
					  "of memory or more",
					  (long long)s->vcpus, (long long)s->memory_mib);
		*ret = t->name;
	}
	return 0;
}

int instance_type_select(const struct instance_spec *spec,
			 const struct instance_type_policy *policy, const char **ret,
			 struct pp_err *err)
{
	const char *cand = NULL;

	if (spec->instance_type && spec->instance_type[0] != '\0')
		cand = spec->instance_type;
	else if (instance_type_from_resources(spec, policy, &cand, err) < 0)
		return -1;
	if (!cand || cand[0] == '\0')
		cand = policy->def ? policy->def : "";
	if (cand[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "no instance type requested and %s is not set",
				  instance_type_or(policy->default_option, "a default instance type"));
	if (instance_type_verify(cand, policy, err) < 0)
		return -1;
	*ret = cand;
	return 0;
}
