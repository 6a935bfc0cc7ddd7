/*
 * Base64 and hex: see encoding.h. The base64 decoder first collects the significant characters
 * (skipping whitespace), then checks the padding as a whole, then decodes 4-character groups;
 * keeping those steps apart keeps each check simple.
 */
#include "lib/encoding.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *alpha, const uint8_t *in, size_t len, bool pad)
{
	char *out = pp_xmalloc((len + 2) / 3 * 4 + 1);
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = alpha[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *base64_encode(const void *data, size_t len)
{
	return b64_encode(B64_STD, data, len, true);
}

char *base64url_encode(const void *data, size_t len, bool pad)
{
	return b64_encode(B64_URL, data, len, pad);
}

static int b64_value(const char *alpha, char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(alpha, c);
	return p ? (int)(p - alpha) : -1;
}

static bool b64_is_space(char c)
{
	return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

/* Copies the significant characters of s into a new string; rejects characters outside the
 * alphabet (other than '=') with their offset. */
static char *b64_collect(const char *alpha, const char *s, size_t slen, size_t *ret_n,
			 struct pp_err *err)
{
	char *sig = pp_xmalloc(slen + 1);
	size_t i, n = 0;

	for (i = 0; i < slen; i++) {
		if (b64_is_space(s[i]))
			continue;
		if (s[i] != '=' && b64_value(alpha, s[i]) < 0) {
			free(sig);
			pp_err_set(err, PP_INVALID_ARGUMENT,
				   "invalid base64: illegal character 0x%02x at offset %zu",
				   (unsigned char)s[i], i);
			return NULL;
		}
		sig[n++] = s[i];
	}
	sig[n] = '\0';
	*ret_n = n;
	return sig;
}

/* Checks the padding and returns the number of data characters in *ret_data. */
static int b64_check_padding(const char *sig, size_t n, bool pad_required, size_t *ret_data,
			     struct pp_err *err)
{
	size_t data = n, npad;

	while (data > 0 && sig[data - 1] == '=')
		data--;
	npad = n - data;
	if (memchr(sig, '=', data))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "invalid base64: '=' before the end");
	if (data % 4 == 1)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "invalid base64: truncated input");
	if (npad == 0 && !pad_required) {
		*ret_data = data;
		return 0;
	}
	if (npad > 2 || n % 4 != 0 || (npad > 0 && npad != 4 - data % 4))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "invalid base64: bad padding");
	*ret_data = data;
	return 0;
}

static int b64_decode(const char *alpha, bool pad_required, const char *s, size_t slen,
		      uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	size_t n = 0, data = 0, i, o = 0;
	uint8_t *out;
	char *sig;

	sig = b64_collect(alpha, s, slen, &n, err);
	if (!sig)
		return -1;
	if (b64_check_padding(sig, n, pad_required, &data, err) < 0) {
		free(sig);
		return -1;
	}
	out = pp_xmalloc(data / 4 * 3 + 3);
	for (i = 0; i < data; i += 4) {
		size_t k, m = data - i < 4 ? data - i : 4;
		uint32_t v = 0;

		for (k = 0; k < 4; k++)
			v = v << 6 | (k < m ? (uint32_t)b64_value(alpha, sig[i + k]) : 0);
		out[o++] = (uint8_t)(v >> 16);
		if (m > 2)
			out[o++] = (uint8_t)(v >> 8);
		if (m > 3)
			out[o++] = (uint8_t)v;
	}
	out[o] = '\0';
	free(sig);
	*ret = out;
	*ret_len = o;
	return 0;
}

int base64_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	return b64_decode(B64_STD, true, s, slen, ret, ret_len, err);
}

int base64url_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len,
		     struct pp_err *err)
{
	return b64_decode(B64_URL, false, s, slen, ret, ret_len, err);
}

void hex_encode_to(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *in = data;
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

char *hex_encode(const void *data, size_t len)
{
	char *out = pp_xmalloc(2 * len + 1);

	hex_encode_to(data, len, out);
	return out;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, size_t slen, uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	uint8_t *out;
	size_t i;

	if (slen % 2)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "invalid hex: odd length %zu", slen);
	out = pp_xmalloc(slen / 2 + 1);
	for (i = 0; i < slen; i += 2) {
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);

		if (hi < 0 || lo < 0) {
			free(out);
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "invalid hex: illegal character at offset %zu",
					  hi < 0 ? i : i + 1);
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	out[slen / 2] = '\0';
	*ret = out;
	*ret_len = slen / 2;
	return 0;
}
