/*
 * A small strict TOML subset, enough for initdata (spec §5.4), parsed inside the TEE from bytes
 * the host controls. Everything outside the subset is an error with "line L, column C", never
 * silently skipped:
 *
 *   key = "basic \t string"   'literal'   """multi-line basic"""   '''multi-line literal'''
 *   key = 42   key = -7   key = 1_000   key = true   key = false   # comments
 *   [table]   ["quoted table"]   bare-key   "quoted key"   'literal key'
 *
 * Not supported (rejected): dotted keys, arrays, inline tables, floats, dates, hex/octal/binary
 * integers, [[array tables]]. Duplicate keys and duplicate tables are errors. The document must
 * be valid UTF-8 and at most TOML_MAX_DOC bytes. Strings may not contain NUL (\u0000), so every
 * string value is also a C string.
 *
 * The parser is a pure function over a buffer (a fuzz target drives it directly).
 */
#ifndef PP_FORWARDER_TOML_H
#define PP_FORWARDER_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define TOML_MAX_DOC     (1024 * 1024)  /* bytes of TOML text */
#define TOML_MAX_KEY     256            /* bytes of one key or table name, after unescaping */
#define TOML_MAX_KEYS    1024           /* key/value pairs in the whole document */
#define TOML_MAX_TABLES  64             /* [table] headers */

enum toml_type { TOML_STRING, TOML_INTEGER, TOML_BOOLEAN };

struct toml_value {
	enum toml_type type;
	char *str;        /* TOML_STRING: NUL-terminated, no embedded NUL */
	size_t str_len;   /* TOML_STRING: strlen(str) */
	int64_t integer;  /* TOML_INTEGER */
	bool boolean;     /* TOML_BOOLEAN */
};

struct toml_kv {
	char *key;
	struct toml_value value;
	unsigned line;    /* where the key was defined, for the caller's messages */
};

struct toml_table {
	char *name;       /* NULL for the root table */
	struct toml_kv *kvs;
	size_t n_kvs;
	size_t cap_kvs;
	unsigned line;
};

struct toml_doc {
	struct toml_table *tables;  /* tables[0] is the root table; then in document order */
	size_t n_tables;
	size_t cap_tables;
};

/* Parses len bytes (need not be NUL-terminated). On success *ret_doc owns the result. */
int toml_parse(const char *buf, size_t len, struct toml_doc **ret_doc, struct pp_err *err);
void toml_free(struct toml_doc *doc);

/* name NULL → the root table. NULL when there is no such table. */
const struct toml_table *toml_table_get(const struct toml_doc *doc, const char *name);
/* NULL when the table has no such key (table may be NULL). */
const struct toml_value *toml_get(const struct toml_table *table, const char *key);
const char *toml_type_name(enum toml_type type);

#endif
