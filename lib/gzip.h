/*
 * gzip (RFC 1952) compression and decompression with zlib, for initdata and user-data.
 * Decompression takes the largest output the caller accepts and stops with an error as soon as
 * the output would pass it, so a small "gzip bomb" cannot make us allocate gigabytes.
 */
#ifndef PP_GZIP_H
#define PP_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* On success *ret is malloc'd. */
int gzip_compress(const void *data, size_t len, uint8_t **ret, size_t *ret_len,
		  struct pp_err *err);
/* Accepts one or more concatenated gzip members; anything else (zlib or raw deflate data,
 * trailing garbage, a truncated stream) is an error. *ret is NUL-terminated (not counted). */
int gzip_decompress(const void *data, size_t len, size_t max_out, uint8_t **ret,
		    size_t *ret_len, struct pp_err *err);

#endif
