/*
 * SHA-2 digests: see digest.h. The name-to-algorithm table is ours (not EVP_get_digestbyname)
 * so that only the algorithms we mean to support are reachable by name.
 */
#include "lib/digest.h"

#include <string.h>

#include <openssl/evp.h>

#include "lib/encoding.h"
#include "lib/util.h"

struct digest_alg {
	const char *name;
	const EVP_MD *(*md)(void);
};

static const struct digest_alg DIGEST_ALGS[] = {
	{ "sha256", EVP_sha256 },
	{ "sha384", EVP_sha384 },
	{ "sha512", EVP_sha512 },
};

static const struct digest_alg *digest_find(const char *alg, struct pp_err *err)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(DIGEST_ALGS); i++)
		if (alg && strcmp(alg, DIGEST_ALGS[i].name) == 0)
			return &DIGEST_ALGS[i];
	pp_err_set(err, PP_INVALID_ARGUMENT,
		   "unknown digest algorithm \"%s\" (supported: sha256, sha384, sha512)",
		   alg ? alg : "");
	return NULL;
}

int digest_size(const char *alg, struct pp_err *err)
{
	const struct digest_alg *a = digest_find(alg, err);

	return a ? EVP_MD_get_size(a->md()) : -1;
}

int digest_compute(const char *alg, const void *data, size_t len, uint8_t *out, size_t *ret_len,
		   struct pp_err *err)
{
	const struct digest_alg *a = digest_find(alg, err);
	unsigned int n = 0;

	if (!a)
		return -1;
	if (EVP_Digest(data, len, out, &n, a->md(), NULL) != 1)
		return pp_err_set(err, PP_INTERNAL, "computing %s digest failed", a->name);
	*ret_len = n;
	return 0;
}

int digest_hex(const char *alg, const void *data, size_t len, char *out, struct pp_err *err)
{
	uint8_t raw[DIGEST_MAX_SIZE];
	size_t n;

	if (digest_compute(alg, data, len, raw, &n, err) < 0)
		return -1;
	hex_encode_to(raw, n, out);
	return 0;
}
