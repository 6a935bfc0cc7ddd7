/*
 * The initdata digest that SEV-SNP (<hostData>, 32 bytes) and TDX (<mrConfigId>, 48 bytes) bind
 * into the launch measurement, so that the attestation report covers the pod's configuration.
 *
 * The provider receives the rendered #cloud-config text; the initdata is the content of its
 * /run/peerpod/initdata file (base64 of gzip of a TOML document). The digest is the one the VM
 * computes for /run/peerpod/initdata.digest (upstream-protocols.md §5.4): the TOML's own
 * `algorithm` (sha256, sha384 or sha512) over the decompressed TOML bytes.
 *
 * Fitting the digest into the field (the convention of the CoCo attesters, which compare the
 * field with the digest the same way): a longer digest is truncated to the field size, a shorter
 * one is zero-padded at the end. So SNP + sha256 and TDX + sha384 are exact; SNP + sha384/512
 * keeps the first 32 bytes; TDX + sha256 is the 32 bytes followed by 16 zero bytes.
 *
 * Only the top-level `algorithm = "..."` line of the TOML is read here (the strict TOML parser
 * lives with the forwarder); a document without one is an error, as it is in the VM.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/digest.h"
#include "lib/encoding.h"
#include "lib/gzip.h"

#define INITDATA_PATH_LINE "  - path: /run/peerpod/initdata"
#define INITDATA_CONTENT_LINE "    content: |"
#define INITDATA_INDENT "      "
#define INITDATA_TOML_MAX (1024 * 1024)
#define INITDATA_ALG_MAX 16

/* Returns the line starting at p (without '\n') and advances *next past it. */
static size_t line_at(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

	*next = nl ? nl + 1 : end;
	return n;
}

static bool line_is(const char *p, size_t n, const char *want)
{
	size_t w = strlen(want);

	while (n > w && (p[n - 1] == ' ' || p[n - 1] == '\r'))
		n--;
	return n == w && memcmp(p, want, w) == 0;
}

/* The base64 text of the initdata file; 0 with ret->len == 0 when there is none. */
static int initdata_extract(const char *ud, size_t len, struct buf *ret, struct pp_err *err)
{
	const char *end = ud + len, *p, *next;
	const size_t ind = sizeof(INITDATA_INDENT) - 1;
	size_t n;

	for (p = ud; p < end; p = next) {
		n = line_at(p, end, &next);
		if (!line_is(p, n, INITDATA_PATH_LINE))
			continue;
		p = next;
		if (p >= end)
			return 0;
		n = line_at(p, end, &next);
		if (!line_is(p, n, INITDATA_CONTENT_LINE))
			return 0;   /* an empty initdata file */
		for (p = next; p < end; p = next) {
			n = line_at(p, end, &next);
			if (n > 0 && (n < ind || memcmp(p, INITDATA_INDENT, ind) != 0))
				break;
			if (n > ind && buf_append(ret, p + ind, n - ind) < 0)
				return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata in user-data is too large");
		}
		return 0;
	}
	return 0;
}

/* The value of the top-level `algorithm = "..."`, before the first [table]. */
static int initdata_algorithm(const char *toml, size_t len, char *alg, size_t size, struct pp_err *err)
{
	const char *end = toml + len, *p = toml, *next;

	for (; p < end; p = next) {
		size_t n = line_at(p, end, &next);
		const char *s = p, *e = p + n, *v;
		char quote;

		while (s < e && isspace((unsigned char)*s))
			s++;
		if (s < e && *s == '[')
			break;
		if ((size_t)(e - s) < 9 || memcmp(s, "algorithm", 9) != 0)
			continue;
		s += 9;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s >= e || *s++ != '=')
			continue;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s >= e || (*s != '"' && *s != '\''))
			break;
		quote = *s++;
		v = memchr(s, quote, (size_t)(e - s));
		if (!v || (size_t)(v - s) >= size)
			break;
		memcpy(alg, s, (size_t)(v - s));
		alg[v - s] = '\0';
		return 0;
	}
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "initdata has no top-level algorithm = \"sha256|sha384|sha512\" line");
}

static int initdata_digest(const uint8_t *b64, size_t b64len, uint8_t *dg, size_t *dglen,
			   struct pp_err *err)
{
	uint8_t *gz = NULL, *toml = NULL;
	size_t gzlen, tomllen;
	char alg[INITDATA_ALG_MAX];
	int rc = -1;

	if (base64_decode((const char *)b64, b64len, &gz, &gzlen, err) < 0) {
		pp_err_prefix(err, "initdata in user-data is not base64");
		return -1;
	}
	if (gzip_decompress(gz, gzlen, INITDATA_TOML_MAX, &toml, &tomllen, err) < 0) {
		pp_err_prefix(err, "initdata in user-data is not gzip");
		goto out;
	}
	if (initdata_algorithm((const char *)toml, tomllen, alg, sizeof(alg), err) < 0 ||
	    digest_compute(alg, toml, tomllen, dg, dglen, err) < 0)
		goto out;
	rc = 0;
out:
	free(gz);
	free(toml);
	return rc;
}

int libvirt_initdata_measure(const char *user_data, size_t len, size_t size, uint8_t *out,
			     bool *ret_found, struct pp_err *err)
{
	struct buf b64 = BUF_INIT(LIBVIRT_MAX_USER_DATA);
	uint8_t dg[DIGEST_MAX_SIZE];
	size_t dglen = 0;
	int rc = -1;

	memset(out, 0, size);
	*ret_found = false;
	if (!user_data)
		return 0;
	if (initdata_extract(user_data, len, &b64, err) < 0)
		goto out;
	if (b64.len == 0) {
		rc = 0;
		goto out;
	}
	if (initdata_digest(b64.data, b64.len, dg, &dglen, err) < 0)
		goto out;
	memcpy(out, dg, dglen < size ? dglen : size);
	*ret_found = true;
	rc = 0;
out:
	buf_free(&b64);
	return rc;
}
