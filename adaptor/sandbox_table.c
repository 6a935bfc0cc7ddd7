/* The in-memory sandbox table: see sandbox_table.h. FNV-1a hash, chains, grows at load 1. */
#include "adaptor/sandbox_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define SANDBOX_TABLE_MIN_BUCKETS 64

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void sandbox_table_init(struct sandbox_table *t)
{
	t->nbuckets = SANDBOX_TABLE_MIN_BUCKETS;
	t->buckets = pp_xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->count = 0;
}

void sandbox_table_fini(struct sandbox_table *t)
{
	for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
		struct sandbox *s = t->buckets[i];

		while (s) {
			struct sandbox *next = s->next;

			sandbox_free(s);
			s = next;
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

static void table_grow(struct sandbox_table *t)
{
	size_t n = t->nbuckets * 2;
	struct sandbox **b = pp_xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct sandbox *s = t->buckets[i];

		while (s) {
			struct sandbox *next = s->next;
			size_t k = hash_id(s->id) % n;

			s->next = b[k];
			b[k] = s;
			s = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

struct sandbox *sandbox_table_get(struct sandbox_table *t, const char *id)
{
	struct sandbox *s = t->buckets[hash_id(id) % t->nbuckets];

	while (s && strcmp(s->id, id) != 0)
		s = s->next;
	return s;
}

int sandbox_table_add(struct sandbox_table *t, struct sandbox *s)
{
	size_t k;

	if (sandbox_table_get(t, s->id))
		return -1;
	if (t->count + 1 > t->nbuckets)
		table_grow(t);
	k = hash_id(s->id) % t->nbuckets;
	s->next = t->buckets[k];
	t->buckets[k] = s;
	t->count++;
	return 0;
}

struct sandbox *sandbox_table_remove(struct sandbox_table *t, const char *id)
{
	struct sandbox **pp = &t->buckets[hash_id(id) % t->nbuckets];

	for (; *pp; pp = &(*pp)->next) {
		struct sandbox *s = *pp;

		if (strcmp(s->id, id) == 0) {
			*pp = s->next;
			s->next = NULL;
			t->count--;
			return s;
		}
	}
	return NULL;
}

int sandbox_table_foreach(struct sandbox_table *t, int (*fn)(struct sandbox *s, void *arg), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct sandbox *s = t->buckets[i];

		while (s) {
			struct sandbox *next = s->next;
			int r = fn(s, arg);

			if (r)
				return r;
			s = next;
		}
	}
	return 0;
}

struct find_pod_arg {
	const char *ns;
	const char *name;
	struct sandbox *found;
};

static int match_pod(struct sandbox *s, void *arg)
{
	struct find_pod_arg *a = arg;

	if (strcmp(s->pod_namespace, a->ns) == 0 && strcmp(s->pod_name, a->name) == 0 &&
	    s->instance_id[0]) {
		a->found = s;
		return 1;
	}
	return 0;
}

struct sandbox *sandbox_table_find_pod(struct sandbox_table *t, const char *ns, const char *name)
{
	struct find_pod_arg a = { ns, name, NULL };

	sandbox_table_foreach(t, match_pod, &a);
	return a.found;
}

struct sandbox *sandbox_new(const char *id)
{
	struct sandbox *s = pp_xcalloc(1, sizeof(*s));

	snprintf(s->id, sizeof(s->id), "%s", id);
	return s;
}

void sandbox_free(struct sandbox *s)
{
	if (!s)
		return;
	free(s->user_data);
	if (s->net_info) {
		podnet_info_clear(s->net_info);
		free(s->net_info);
	}
	cancel_unref(s->start_cancel);
	free(s);
}

