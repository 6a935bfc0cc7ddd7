/* Fuzz target: the strict TOML subset parser (forwarder/toml.c) over arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "forwarder/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct toml_doc *doc = NULL;
	size_t i, j;

	if (toml_parse((const char *)data, size, &doc, NULL) < 0)
		return 0;
	/* Every string the parser returns must be a C string of the length it reports. */
	for (i = 0; i < doc->n_tables; i++) {
		const struct toml_table *t = &doc->tables[i];
		for (j = 0; j < t->n_kvs; j++) {
			const struct toml_value *v = toml_get(t, t->kvs[j].key);
			if (!v || (v->type == TOML_STRING && __builtin_strlen(v->str) != v->str_len))
				__builtin_trap();
		}
		if (i > 0 && toml_table_get(doc, t->name) != t)
			__builtin_trap();
	}
	toml_free(doc);
	return 0;
}
