/*
 * Pure helpers of lib/http: status mapping and classes, retry decisions (which statuses and
 * libcurl errors are worth another attempt, Retry-After, full-jitter backoff), URL and form
 * encoding, and the redaction that keeps query strings and odd bytes out of logs and errors.
 *
 * The one idea: nothing here does I/O or keeps state, so each rule is tested as a table.
 */
#include "lib/http_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define HTTP_FORM_KEY_MAX 256

int http_status_to_code(long status)
{
	if (status >= 200 && status < 300)
		return PP_OK;
	switch (status) {
	case 400:
		return PP_INVALID_ARGUMENT;
	case 401:
		return PP_UNAUTHENTICATED;
	case 403:
		return PP_PERMISSION_DENIED;
	case 404:
	case 410:
		return PP_NOT_FOUND;
	case 409:
		return PP_ABORTED;
	case 412:
		return PP_FAILED_PRECONDITION;
	case 429:
		return PP_RESOURCE_EXHAUSTED;
	case 501:
		return PP_UNIMPLEMENTED;
	default:
		break;
	}
	if (status >= 500 && status < 600)
		return PP_UNAVAILABLE;
	if (status >= 400 && status < 500)
		return PP_FAILED_PRECONDITION;
	return PP_UNKNOWN;
}

const char *http_method_name(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
		return "GET";
	case HTTP_HEAD:
		return "HEAD";
	case HTTP_POST:
		return "POST";
	case HTTP_PUT:
		return "PUT";
	case HTTP_PATCH:
		return "PATCH";
	case HTTP_DELETE:
		return "DELETE";
	}
	return "GET";
}

enum http_status_class http_status_class_of(long status)
{
	if (status < 100 || status > 599)
		return HTTP_CLASS_ERROR;
	return (enum http_status_class)(HTTP_CLASS_1XX + (status / 100 - 1));
}

const char *http_status_class_name(enum http_status_class k)
{
	static const char *const names[HTTP_CLASS_COUNT] = { "error", "1xx", "2xx", "3xx", "4xx",
							      "5xx" };

	return (unsigned)k < HTTP_CLASS_COUNT ? names[k] : "error";
}

bool http_status_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool http_curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* ---- Retry-After and backoff ---- */

int http_retry_after_ms(const char *value, int64_t now_unix, uint64_t max_ms, uint64_t *ret)
{
	char tmp[64];
	uint64_t secs, ms;
	time_t when;

	if (!value || !pp_strlcpy(tmp, value, sizeof(tmp)))
		return -1;
	str_trim(tmp);
	if (parse_uint64(tmp, &secs) == 0) {
		ms = secs > UINT64_MAX / 1000 ? UINT64_MAX : secs * 1000;
	} else {
		/* an HTTP-date: "Wed, 21 Oct 2015 07:28:00 GMT" */
		if (!strchr(tmp, ' ') || (when = curl_getdate(tmp, NULL)) == (time_t)-1)
			return -1;
		ms = (int64_t)when <= now_unix ? 0 : (uint64_t)((int64_t)when - now_unix) * 1000;
	}
	*ret = ms < max_ms ? ms : max_ms;
	return 0;
}

uint64_t http_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned retry, uint64_t rnd)
{
	uint64_t cap = base_ms;
	unsigned i;

	for (i = 1; i < retry && cap < max_ms; i++)
		cap = cap > UINT64_MAX / 2 ? UINT64_MAX : cap * 2;
	if (cap > max_ms)
		cap = max_ms;
	return cap == UINT64_MAX ? rnd : rnd % (cap + 1);
}

/* ---- redaction ---- */

const char *http_excerpt(char *out, size_t size, const void *data, size_t len, size_t max)
{
	const unsigned char *p = data;
	size_t i, o = 0;
	bool space = false, cut = len > max;

	if (size == 0)
		return out;
	if (cut)
		len = max;
	for (i = 0; i < len && o + 4 < size; i++) {
		unsigned char ch = p[i];

		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
			if (!space && o > 0)
				out[o++] = ' ';
			space = true;
			continue;
		}
		space = false;
		out[o++] = (ch > ' ' && ch < 0x7f) ? (char)ch : '?';
	}
	if (i < len)
		cut = true;
	while (o > 0 && out[o - 1] == ' ')
		o--;
	if (cut && o + 3 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

void http_scrub_query(char *s)
{
	char *w = s;

	while (*s) {
		if (*s == '?') {
			while (*s && *s != ' ' && *s != '"' && *s != '\'')
				s++;
			continue;
		}
		*w++ = *s++;
	}
	*w = '\0';
}

const char *http_url_redact(char *out, size_t size, const char *url)
{
	const char *start = url, *scheme, *end, *at, *slash;
	size_t n = 0, len;

	if (size == 0)
		return out;
	out[0] = '\0';
	if (!url)
		return out;
	end = url + strcspn(url, "?#");
	scheme = strstr(url, "://");
	if (scheme && scheme < end) {
		start = scheme + 3;
		len = (size_t)(start - url);
		n = len < size - 1 ? len : size - 1;
		memcpy(out, url, n);
		/* drop "user:password@" of the authority */
		slash = start + strcspn(start, "/?#");
		at = memchr(start, '@', (size_t)(slash - start));
		if (at)
			start = at + 1;
	}
	len = (size_t)(end - start);
	if (len > size - 1 - n)
		len = size - 1 - n;
	memcpy(out + n, start, len);
	out[n + len] = '\0';
	return out;
}

/* ---- URL and form encoding ---- */

static bool http_unreserved(unsigned char ch)
{
	return isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

int http_urlencode(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, need = 0;

	for (i = 0; i < len; i++)
		need += http_unreserved((unsigned char)s[i]) ? 1 : 3;
	if (buf_reserve(out, need) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (http_unreserved(ch)) {
			out->data[out->len++] = ch;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = (uint8_t)hex[ch >> 4];
			out->data[out->len++] = (uint8_t)hex[ch & 15];
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

char *http_urlencode_dup(const char *s)
{
	struct buf b = BUF_INIT(SIZE_MAX / 4);

	if (http_urlencode(&b, s, strlen(s)) < 0) {
		fprintf(stderr, "out of memory in http_urlencode_dup\n");
		abort();
	}
	return (char *)buf_steal(&b, NULL);
}

void http_form_init(struct http_form *f, size_t max)
{
	buf_init(&f->buf, max);
	f->failed = 0;
}

int http_form_add(struct http_form *f, const char *key, const char *value)
{
	size_t mark = f->buf.len;

	if (f->failed)
		return -1;
	if (!key || !*key || !value) {
		f->failed = EINVAL;
		return -1;
	}
	if ((mark > 0 && buf_append(&f->buf, "&", 1) < 0) ||
	    http_urlencode(&f->buf, key, strlen(key)) < 0 || buf_append(&f->buf, "=", 1) < 0 ||
	    http_urlencode(&f->buf, value, strlen(value)) < 0) {
		f->failed = errno == ENOMEM ? ENOMEM : EMSGSIZE;
		f->buf.len = mark;
		if (f->buf.data)
			f->buf.data[mark] = '\0';
		return -1;
	}
	return 0;
}

int http_form_addf(struct http_form *f, const char *value, const char *key_fmt, ...)
{
	char key[HTTP_FORM_KEY_MAX];
	va_list ap;
	int n;

	if (f->failed)
		return -1;
	va_start(ap, key_fmt);
	n = vsnprintf(key, sizeof(key), key_fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		f->failed = EINVAL;
		return -1;
	}
	return http_form_add(f, key, value);
}

int http_form_finish(struct http_form *f, const char **ret_text, size_t *ret_len,
		     struct pp_err *err)
{
	if (f->failed == EMSGSIZE)
		return pp_err_set(err, PP_OUT_OF_RANGE, "form body longer than %zu bytes", f->buf.max);
	if (f->failed == ENOMEM)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building a form body");
	if (f->failed)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "form field without a key or value, or with a key longer than %d bytes",
				  HTTP_FORM_KEY_MAX - 1);
	*ret_text = f->buf.data ? (const char *)f->buf.data : "";
	*ret_len = f->buf.len;
	return 0;
}

void http_form_free(struct http_form *f)
{
	if (f->buf.data)
		explicit_bzero(f->buf.data, f->buf.cap);
	buf_free(&f->buf);
	f->failed = 0;
}
