/*
 * SHA-2 digests over a buffer with OpenSSL EVP, chosen by name as they appear in initdata and
 * attestation policies ("sha256", "sha384", "sha512"). An unknown name is an error naming it,
 * never a silent fallback to another algorithm.
 */
#ifndef PP_DIGEST_H
#define PP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define DIGEST_MAX_SIZE 64                         /* sha512 */
#define DIGEST_MAX_HEX (2 * DIGEST_MAX_SIZE + 1)   /* lowercase hex + NUL */

/* Digest size in bytes, or -1 (with err) for an unknown name. */
int digest_size(const char *alg, struct pp_err *err);
/* Raw digest into out[DIGEST_MAX_SIZE]; its length in *ret_len. */
int digest_compute(const char *alg, const void *data, size_t len, uint8_t *out, size_t *ret_len,
		   struct pp_err *err);
/* Lowercase hex digest into out[DIGEST_MAX_HEX]. */
int digest_hex(const char *alg, const void *data, size_t len, char *out, struct pp_err *err);

#endif
