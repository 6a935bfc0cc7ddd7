/*
 * Base64 (RFC 4648 standard and URL-safe alphabets) and lowercase hex. Encoders return a new
 * NUL-terminated string (they abort on out-of-memory, like pp_xmalloc). Decoders are strict
 * about what they accept, because they read untrusted input: a character outside the alphabet,
 * padding in the wrong place or a length that cannot be valid is an error, not skipped.
 */
#ifndef PP_ENCODING_H
#define PP_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

char *base64_encode(const void *data, size_t len);
/* URL-safe alphabet ('-' '_'); pad = false leaves out the '=' padding (JWT, RFC 7515). */
char *base64url_encode(const void *data, size_t len, bool pad);

/* Standard alphabet; padding required. '\r', '\n', '\t' and ' ' are skipped anywhere.
 * On success *ret (NUL-terminated for convenience, not counted in *ret_len) is malloc'd. */
int base64_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len,
		  struct pp_err *err);
/* URL-safe alphabet; padding optional, but if present it must be correct. */
int base64url_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len,
		     struct pp_err *err);

/* Lowercase. hex_encode_to writes 2*len+1 bytes into out. */
char *hex_encode(const void *data, size_t len);
void hex_encode_to(const void *data, size_t len, char *out);
/* Accepts upper and lower case; odd length or a non-hex character is an error. */
int hex_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len, struct pp_err *err);

#endif
