/*
 * Configuration: one table per component (DESIGN idea 7). Each option has a name (the key in
 * the config file, usually also the environment variable, upstream's names), an optional
 * command-line flag, a type, a default, and whether it is secret or required.
 *
 * Sources, lowest first: default < config file (KEY=VALUE lines, '#' comments, optional
 * quotes) < environment < flags. Every value is parsed and checked when it is loaded; a bad
 * value is an error naming the option, the bad text and where it came from. Secret values are
 * never printed (config_print shows "<redacted>") and are only reachable via config_secret().
 */
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/err.h"

enum config_type {
	CFG_STRING,
	CFG_INT,       /* int64, decimal */
	CFG_BOOL,      /* 1/0, true/false, yes/no (case-insensitive) */
	CFG_DURATION,  /* Go syntax: 300ms, 5s, 5m, 1h30m; a bare number means seconds */
	CFG_LIST,      /* comma-separated, items trimmed, empty items dropped */
	CFG_KEYVALUE,  /* comma-separated k=v items (TAGS); item without '=' is an error */
};

enum config_flags {
	CFG_SECRET = 1u << 0,    /* never printed, never logged */
	CFG_REQUIRED = 1u << 1,  /* config_check_required() fails when empty */
};

struct config_option {
	const char *name;     /* "PROXY_TIMEOUT": config-file key */
	const char *flag;     /* "proxy-timeout" (given as -proxy-timeout or --proxy-timeout), or NULL */
	const char *env;      /* environment variable, or NULL for flag-only options */
	enum config_type type;
	const char *def;      /* default as text, or NULL for empty */
	unsigned flags;       /* enum config_flags */
	const char *help;
};

struct config;

/* tables: NULL-terminated array of option tables, each ended by an entry with name == NULL
 * (for example the common table and a provider's table). */
struct config *config_new(const struct config_option *const *tables, struct pp_err *err);
void config_free(struct config *c);

int config_load_file(struct config *c, const char *path, bool must_exist, struct pp_err *err);
int config_load_env(struct config *c, char *const *envp, struct pp_err *err);
/* Parses flags from argv[0..argc); stops at the first non-flag argument or "--" and returns
 * its index in *ret_rest. Unknown flags are an error. "-h"/"-help"/"--help" set *ret_help. */
int config_parse_args(struct config *c, int argc, char *const *argv, int *ret_rest,
		      bool *ret_help, struct pp_err *err);
int config_check_required(const struct config *c, struct pp_err *err);

/* Typed getters. Asking for an unknown name or a wrong type aborts (programming error). */
const char *config_str(const struct config *c, const char *name);         /* "" when empty; not for secrets */
const char *config_secret(const struct config *c, const char *name);      /* secrets only */
int64_t config_int(const struct config *c, const char *name);
bool config_bool(const struct config *c, const char *name);
uint64_t config_duration_ms(const struct config *c, const char *name);
/* items of a CFG_LIST, or "k=v" items of a CFG_KEYVALUE */
const char *const *config_list(const struct config *c, const char *name, size_t *ret_n);
bool config_is_set(const struct config *c, const char *name);             /* not the default */
bool config_has(const struct config *c, const char *name);                /* the option exists */
const char *config_source(const struct config *c, const char *name);      /* default|file|env|flag */
/* Sets a value programmatically as source "flag" (tests, derived options). */
int config_set(struct config *c, const char *name, const char *value, struct pp_err *err);

/* NAME=value lines (secrets "<redacted>"), with the source as a trailing comment. */
void config_print(const struct config *c, FILE *out);
/* One line per option: flag, env, default, help. */
void config_usage(const struct config *c, FILE *out);

/* Helpers shared with other parsers. */
int config_parse_duration_ms(const char *s, uint64_t *ret);
int config_parse_bool(const char *s, bool *ret);

#endif
