/*
 * initdata encoding and the minimal start-up check (see initdata.h). The check reads only the
 * top-level `key = "value"` lines before the first table header; everything else is skipped,
 * since the VM parses the document strictly anyway. Its job is to catch the common mistakes
 * early: INITDATA not base64, not gzip, or with a missing or unknown algorithm.
 */
#include "adaptor/initdata.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/encoding.h"
#include "lib/gzip.h"
#include "lib/util.h"

#define INITDATA_VALUE_MAX 64   /* longest algorithm/version value we look at */

int initdata_encode(const char *toml, size_t len, char **ret_b64, struct pp_err *err)
{
	uint8_t *gz;
	size_t gz_len;

	if (len > INITDATA_TOML_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata is %zu bytes, more than %d",
				  len, INITDATA_TOML_MAX);
	if (gzip_compress(toml, len, &gz, &gz_len, err) < 0)
		return pp_err_prefix(err, "encoding initdata");
	*ret_b64 = base64_encode(gz, gz_len);
	free(gz);
	return 0;
}

int initdata_decode(const char *b64, size_t len, char **ret_toml, size_t *ret_len,
		    struct pp_err *err)
{
	uint8_t *gz, *toml;
	size_t gz_len, toml_len;
	int rc;

	if (len > INITDATA_ENCODED_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata is %zu bytes, more than %d",
				  len, INITDATA_ENCODED_MAX);
	if (base64_decode(b64, len, &gz, &gz_len, err) < 0)
		return pp_err_prefix(err, "initdata is not base64");
	rc = gzip_decompress(gz, gz_len, INITDATA_TOML_MAX, &toml, &toml_len, err);
	free(gz);
	if (rc < 0)
		return pp_err_prefix(err, "initdata is not gzip");
	*ret_toml = (char *)toml;
	*ret_len = toml_len;
	return 0;
}

/* One top-level `key = "value"` line, copied out (both bounded). */
struct initdata_kv {
	char key[INITDATA_VALUE_MAX];
	char value[INITDATA_VALUE_MAX];
};

static bool initdata_bare_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Reads a quoted ("..." or '...') string without escapes at *p into out; false if not one. */
static bool initdata_read_quoted(const char **p, const char *end, char *out, size_t size)
{
	char q = **p;
	const char *s = *p + 1;
	size_t n = 0;

	if (q != '"' && q != '\'')
		return false;
	for (; s < end && *s != q; s++) {
		if (*s == '\\' || n + 1 >= size)
			return false;
		out[n++] = *s;
	}
	if (s >= end)
		return false;
	out[n] = '\0';
	*p = s + 1;
	return true;
}

static const char *initdata_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Parses line [p, end) as `key = "value"`; false if it is not that shape (other values). */
static bool initdata_parse_line(const char *p, const char *end, struct initdata_kv *kv)
{
	size_t n = 0;

	if (p < end && (*p == '"' || *p == '\'')) {
		if (!initdata_read_quoted(&p, end, kv->key, sizeof(kv->key)))
			return false;
	} else {
		while (p < end && initdata_bare_key_char(*p) && n + 1 < sizeof(kv->key))
			kv->key[n++] = *p++;
		kv->key[n] = '\0';
	}
	p = initdata_skip_ws(p, end);
	if (kv->key[0] == '\0' || p >= end || *p != '=')
		return false;
	p = initdata_skip_ws(p + 1, end);
	kv->value[0] = '\0';
	if (!initdata_read_quoted(&p, end, kv->value, sizeof(kv->value)))
		return false;
	p = initdata_skip_ws(p, end);
	return p == end || *p == '#';
}

static int initdata_check_algorithm(const char *alg, const char *what, struct pp_err *err)
{
	static const char *const algs[] = { "sha256", "sha384", "sha512" };
	char shown[INITDATA_VALUE_MAX + 8];

	for (size_t i = 0; i < PP_ARRAY_SIZE(algs); i++)
		if (strcmp(alg, algs[i]) == 0)
			return 0;
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "%s: algorithm %s is not sha256, sha384 or sha512", what,
			  str_quote(shown, sizeof(shown), alg));
}

/* Records a wanted key; a second occurrence is an error (TOML forbids duplicates). */
static int initdata_take(const struct initdata_kv *kv, const char *name, char *slot, bool *seen,
			 const char *what, struct pp_err *err)
{
	if (strcmp(kv->key, name) != 0)
		return 0;
	if (*seen)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s: key %s appears twice", what, name);
	*seen = true;
	memcpy(slot, kv->value, sizeof(kv->value));
	return 0;
}

int initdata_check_toml(const char *toml, size_t len, const char *what, struct pp_err *err)
{
	char alg[INITDATA_VALUE_MAX] = "", version[INITDATA_VALUE_MAX] = "";
	bool have_alg = false, have_version = false;
	const char *p = toml, *end = toml + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		struct initdata_kv kv;

		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		p = initdata_skip_ws(p, line_end);
		if (p < line_end && *p == '[')
			break;   /* first table: top-level keys are over */
		if (p < line_end && *p != '#' && initdata_parse_line(p, line_end, &kv) &&
		    (initdata_take(&kv, "algorithm", alg, &have_alg, what, err) < 0 ||
		     initdata_take(&kv, "version", version, &have_version, what, err) < 0))
			return -1;
		p = nl ? nl + 1 : end;
	}
	if (!have_alg)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s: no top-level algorithm = \"sha256|sha384|sha512\"", what);
	if (!have_version || version[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s: no top-level version string", what);
	return initdata_check_algorithm(alg, what, err);
}

int initdata_check_encoded(const char *b64, struct pp_err *err)
{
	char *toml;
	size_t len;
	int rc;

	if (initdata_decode(b64, strlen(b64), &toml, &len, err) < 0)
		return pp_err_prefix(err, "INITDATA");
	rc = initdata_check_toml(toml, len, "INITDATA", err);
	free(toml);
	return rc;
}
