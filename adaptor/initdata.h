/*
 * initdata (upstream-protocols.md §5.4): a TOML document (`algorithm`, `version`, `[data]`)
 * carried to the VM as base64(gzip(TOML)) in /run/peerpod/initdata.
 *
 * The pod's annotation arrives as plain TOML (the shim already decoded it) and is re-encoded
 * here; the global INITDATA option is already encoded and is used verbatim, so it is checked once
 * at start-up instead of failing inside every VM. That check is deliberately minimal (top-level
 * `algorithm` one of sha256/sha384/sha512 and a `version` string): the strict TOML parser lives
 * with the forwarder, which the node daemon must not depend on.
 */
#ifndef PP_ADAPTOR_INITDATA_H
#define PP_ADAPTOR_INITDATA_H

#include <stddef.h>

#include "lib/err.h"

#define INITDATA_TOML_MAX (1024 * 1024)        /* decompressed */
#define INITDATA_ENCODED_MAX (2 * 1024 * 1024)  /* base64 text */

/* base64(std, padded) of gzip(toml). *ret_b64 is NUL-terminated and heap-allocated. */
int initdata_encode(const char *toml, size_t len, char **ret_b64, struct pp_err *err);
/* The reverse, bounded by INITDATA_TOML_MAX; whitespace in the base64 is skipped. *ret_toml is
 * NUL-terminated (not counted in *ret_len). */
int initdata_decode(const char *b64, size_t len, char **ret_toml, size_t *ret_len,
		    struct pp_err *err);
/* The minimal check of the TOML text. `what` names the source in messages ("INITDATA"). */
int initdata_check_toml(const char *toml, size_t len, const char *what, struct pp_err *err);
/* decode + check: for the global INITDATA at start-up. INVALID_ARGUMENT names INITDATA. */
int initdata_check_encoded(const char *b64, struct pp_err *err);

#endif
