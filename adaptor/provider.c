/*
 * The core side of the provider framework (see provider.h): the core owns each struct provider
 * and a driver sees it only through the accessors below. The lookup of compiled-in drivers is in
 * provider_registry.c so that this file (and everything linked with it) does not depend on any
 * particular driver.
 */
#include "adaptor/provider.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/provider_priv.h"

#define OWNED_LIST_MIN_CAP 8

struct provider {
	const struct provider_ops *ops;
	const struct config *cfg;     /* not owned; outlives the provider */
	char *owner;
	char *state_dir;
	void *priv;                   /* the driver's; set in init, freed in destroy */
	bool init_called;             /* destroy runs only if init ran (even if it failed) */
};

void owned_instance_list_free(struct owned_instance_list *l)
{
	if (!l)
		return;
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* The list has no capacity field: capacity is OWNED_LIST_MIN_CAP, doubled each time n reaches
 * it, so it must grow exactly when n is 0 or a power of two >= OWNED_LIST_MIN_CAP. */
static bool owned_list_full(size_t n)
{
	return n == 0 || (n >= OWNED_LIST_MIN_CAP && (n & (n - 1)) == 0);
}

int owned_instance_list_add(struct owned_instance_list *l, const struct owned_instance *it)
{
	if (owned_list_full(l->n)) {
		size_t cap = l->n == 0 ? OWNED_LIST_MIN_CAP : l->n * 2;
		struct owned_instance *items;

		if (cap > SIZE_MAX / sizeof(*items))
			return -1;
		items = realloc(l->items, cap * sizeof(*items));
		if (!items)
			return -1;
		l->items = items;
	}
	l->items[l->n++] = *it;
	return 0;
}

const struct config *provider_config(const struct provider *p)
{
	return p->cfg;
}

const char *provider_owner(const struct provider *p)
{
	return p->owner;
}

const char *provider_state_dir(const struct provider *p)
{
	return p->state_dir;
}

void *provider_priv(const struct provider *p)
{
	return p->priv;
}

void provider_set_priv(struct provider *p, void *priv)
{
	p->priv = priv;
}

const struct provider_ops *provider_get_ops(const struct provider *p)
{
	return p->ops;
}

const struct provider_ops *provider_lookup_in(const struct provider_ops *const *table,
					      const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; table[i]; i++)
		if (table[i]->name && strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

int provider_ops_validate(const struct provider_ops *ops, struct pp_err *err)
{
	const char *name;

	if (!ops || !ops->name || ops->name[0] == '\0')
		return pp_err_set(err, PP_INTERNAL, "provider driver has no name");
	name = ops->name;
	if (!ops->init)
		return pp_err_set(err, PP_INTERNAL, "provider %s: mandatory operation init is missing",
				  name);
	if (!ops->create_instance)
		return pp_err_set(err, PP_INTERNAL,
				  "provider %s: mandatory operation create_instance is missing", name);
	if (!ops->delete_instance)
		return pp_err_set(err, PP_INTERNAL,
				  "provider %s: mandatory operation delete_instance is missing", name);
	if (!ops->list_instances)
		return pp_err_set(err, PP_INTERNAL,
				  "provider %s: mandatory operation list_instances is missing", name);
	return 0;
}

struct provider *provider_new(const struct provider_ops *ops, const struct config *cfg,
			      const char *owner, const char *state_dir, struct pp_err *err)
{
	struct provider *p;

	if (provider_ops_validate(ops, err) < 0)
		return NULL;
	if (!owner || owner[0] == '\0') {
		pp_err_set(err, PP_INVALID_ARGUMENT, "provider %s: owner id is empty", ops->name);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "provider %s: out of memory", ops->name);
		return NULL;
	}
	p->ops = ops;
	p->cfg = cfg;
	p->owner = strdup(owner);
	p->state_dir = strdup(state_dir ? state_dir : "");
	if (!p->owner || !p->state_dir) {
		provider_free(p);
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "provider %s: out of memory", ops->name);
		return NULL;
	}
	return p;
}

int provider_start(struct provider *p, struct pp_err *err)
{
	if (p->init_called)
		return pp_err_set(err, PP_INTERNAL, "provider %s: started twice", p->ops->name);
	p->init_called = true;
	return p->ops->init(p, err) < 0 ? -1 : 0;
}

void provider_free(struct provider *p)
{
	if (!p)
		return;
	if (p->init_called && p->ops->destroy)
		p->ops->destroy(p);
	free(p->owner);
	free(p->state_dir);
	free(p);
}
