/*
 * gzip with zlib: see gzip.h. Decompression inflates into a struct buf whose maximum is the
 * caller's limit, so the limit is enforced in one place.
 */
#include "lib/gzip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/buf.h"

#define GZIP_WINDOW_BITS (15 + 16)   /* 32K window, gzip wrapper */
#define GZIP_CHUNK 16384

int gzip_compress(const void *data, size_t len, uint8_t **ret, size_t *ret_len,
		  struct pp_err *err)
{
	z_stream zs;
	uLong bound;
	uint8_t *out;
	int rc;

	if (len > UINT_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "gzip: input of %zu bytes is too large",
				  len);
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return pp_err_set(err, PP_INTERNAL, "gzip: deflateInit2 failed");
	bound = deflateBound(&zs, (uLong)len);
	out = malloc(bound + 1);
	if (!out) {
		deflateEnd(&zs);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "gzip: out of memory");
	}
	zs.next_in = (Bytef *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	rc = deflate(&zs, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return pp_err_set(err, PP_INTERNAL, "gzip: deflate failed (%d)", rc);
	}
	*ret_len = zs.total_out;
	*ret = out;
	deflateEnd(&zs);
	return 0;
}

/* Inflates zs's remaining input into out until the end of one gzip member. */
static int gzip_inflate_member(z_stream *zs, struct buf *out, struct pp_err *err)
{
	uint8_t chunk[GZIP_CHUNK];

	for (;;) {
		size_t produced;
		int rc;

		zs->next_out = chunk;
		zs->avail_out = sizeof(chunk);
		rc = inflate(zs, Z_NO_FLUSH);
		produced = sizeof(chunk) - zs->avail_out;
		if (buf_append(out, chunk, produced) < 0)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
					  "gzip: decompressed data is larger than the limit of %zu bytes",
					  out->max);
		if (rc == Z_STREAM_END)
			return 0;
		if (rc == Z_BUF_ERROR && zs->avail_in == 0)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "gzip: truncated data");
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "gzip: invalid data: %s",
					  zs->msg ? zs->msg : "inflate failed");
	}
}

int gzip_decompress(const void *data, size_t len, size_t max_out, uint8_t **ret,
		    size_t *ret_len, struct pp_err *err)
{
	struct buf out = BUF_INIT(max_out);
	z_stream zs;
	int rc = -1;

	if (len > UINT_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "gzip: input of %zu bytes is too large",
				  len);
	if (len == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "gzip: empty input");
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, GZIP_WINDOW_BITS) != Z_OK)
		return pp_err_set(err, PP_INTERNAL, "gzip: inflateInit2 failed");
	zs.next_in = (Bytef *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (gzip_inflate_member(&zs, &out, err) < 0)
			goto cleanup;
		if (zs.avail_in == 0)
			break;
		if (inflateReset(&zs) != Z_OK) {
			pp_err_set(err, PP_INTERNAL, "gzip: inflateReset failed");
			goto cleanup;
		}
	}
	*ret = buf_steal(&out, ret_len);
	rc = 0;
cleanup:
	inflateEnd(&zs);
	buf_free(&out);
	return rc;
}
