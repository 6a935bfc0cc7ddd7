/*
 * initdata inside the pod VM (spec §5.4): /run/peerpod/initdata holds base64(gzip(TOML)), where
 * the TOML is
 *
 *   algorithm = "sha256" | "sha384" | "sha512"
 *   version = "0.1.0"
 *   [data]
 *   "aa.toml" = '''...'''      "cdh.toml" = '''...'''      "policy.rego" = '''...'''
 *
 * The digest of the decompressed TOML bytes with the named algorithm (lower-case hex) goes to
 * /run/peerpod/initdata.digest; attestation binds the VM to it, so it is computed over exactly
 * the bytes we parsed. Only aa.toml, cdh.toml and policy.rego are written out; other data keys
 * are reported and ignored. Any other top-level key or table is an error.
 *
 * When no initdata file exists, a dummy document (DUMMY_TOML below) is written first, as
 * upstream does, so the digest file always exists.
 */
#ifndef PP_FORWARDER_INITDATA_H
#define PP_FORWARDER_INITDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/digest.h"
#include "lib/err.h"

#define INITDATA_MAX_ENCODED (2 * 1024 * 1024) /* the base64 file */
#define INITDATA_MAX_TOML    (1024 * 1024)     /* decompressed TOML (= TOML_MAX_DOC) */
#define INITDATA_VERSION     "0.1.0"

struct initdata_entry {
	char *name;      /* key in [data] */
	char *content;   /* NUL-terminated */
	size_t len;
};

struct initdata {
	char algorithm[8];             /* "sha256", "sha384" or "sha512" */
	char digest[DIGEST_MAX_HEX];   /* lower-case hex over the TOML bytes */
	struct initdata_entry *data;   /* in document order */
	size_t n_data;
};

/* The dummy written when the VM got no initdata (algorithm sha256, empty aa.toml). */
extern const char initdata_dummy_toml[];

/* Parses decompressed TOML and computes its digest (pure; fuzzed). */
int initdata_parse_toml(const char *toml, size_t len, struct initdata **ret, struct pp_err *err);
/* base64 text (newlines allowed) → gunzip (INITDATA_MAX_TOML) → initdata_parse_toml. */
int initdata_decode(const char *text, size_t len, struct initdata **ret, struct pp_err *err);
/* gzip + base64 of a TOML document, as the adaptor produces it. *ret is malloc'd. */
int initdata_encode(const char *toml, size_t len, char **ret, struct pp_err *err);
void initdata_free(struct initdata *id);

/* True for the data keys that are written to /run/peerpod/<name>. */
bool initdata_name_allowed(const char *name);

/* The whole in-VM step under root ("" = "/"): write the dummy if /run/peerpod/initdata is
 * missing, decode it, write the allowed data files (0644) and initdata.digest. Every file
 * written is reported on report (may be NULL). */
int initdata_provision(const char *root, FILE *report, struct pp_err *err);

#endif
