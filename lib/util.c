/*
 * Small helpers: see util.h. The integer parsers wrap strtoll/strtoull and add the checks those
 * leave to the caller (empty input, leading whitespace or sign, trailing text, errno).
 */
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int parse_check_start(const char *s, bool allow_minus)
{
	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)s[0]))
		return 0;
	if (allow_minus && s[0] == '-' && isdigit((unsigned char)s[1]))
		return 0;
	return -1;
}

/* After strto*(): overflow (errno ERANGE) or trailing text (errno EINVAL) fail. */
static int parse_check_end(const char *end)
{
	if (errno == ERANGE)
		return -1;
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int parse_int64(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (parse_check_start(s, true) < 0) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (parse_check_end(end) < 0)
		return -1;
	*ret = v;
	return 0;
}

int parse_uint64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (parse_check_start(s, false) < 0) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (parse_check_end(end) < 0)
		return -1;
	*ret = v;
	return 0;
}

int parse_uint32(const char *s, uint32_t *ret)
{
	uint64_t v;

	if (parse_uint64(s, &v) < 0)
		return -1;
	if (v > UINT32_MAX) {
		errno = ERANGE;
		return -1;
	}
	*ret = (uint32_t)v;
	return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

char *str_trim(char *s)
{
	size_t start = 0, end = strlen(s);

	while (start < end && isspace((unsigned char)s[start]))
		start++;
	while (end > start && isspace((unsigned char)s[end - 1]))
		end--;
	memmove(s, s + start, end - start);
	s[end - start] = '\0';
	return s;
}

/* The escape for one byte ("\\n", "\\x01", or the byte itself) into out[5]. */
static void quote_char(unsigned char ch, char out[5])
{
	switch (ch) {
	case '"': memcpy(out, "\\\"", 3); return;
	case '\\': memcpy(out, "\\\\", 3); return;
	case '\n': memcpy(out, "\\n", 3); return;
	case '\r': memcpy(out, "\\r", 3); return;
	case '\t': memcpy(out, "\\t", 3); return;
	default: break;
	}
	if (ch < 0x20 || ch == 0x7f) {
		snprintf(out, 5, "\\x%02x", ch);
		return;
	}
	out[0] = (char)ch;
	out[1] = '\0';
}

/* Length of s once escaped, without quotes. */
static size_t quoted_len(const char *s)
{
	char esc[5];
	size_t n = 0;

	for (; *s; s++) {
		quote_char((unsigned char)*s, esc);
		n += strlen(esc);
	}
	return n;
}

const char *str_quote(char *buf, size_t size, const char *s)
{
	static const char cut[] = "...\"";
	bool fits = quoted_len(s) + 3 <= size;   /* two quotes and the NUL */
	size_t n = 0;
	char esc[5];

	if (size < sizeof(cut) + 1) {
		if (size)
			buf[0] = '\0';
		return buf;
	}
	buf[n++] = '"';
	for (; *s; s++) {
		size_t l;

		quote_char((unsigned char)*s, esc);
		l = strlen(esc);
		if (!fits && n + l + sizeof(cut) > size)
			break;
		memcpy(buf + n, esc, l);
		n += l;
	}
	if (!fits) {
		memcpy(buf + n, cut, sizeof(cut));
		return buf;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

static void oom(size_t n)
{
	fprintf(stderr, "out of memory allocating %zu bytes\n", n);
	abort();
}

void *pp_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *pp_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom(nmemb * size);
	return p;
}

void *pp_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *pp_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom(strlen(s) + 1);
	return p;
}

char *pp_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom(n + 1);
	return p;
}

bool pp_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size == 0)
		return n == 0;
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

int pp_random_bytes(void *buf, size_t n, struct pp_err *err)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return pp_err_errno(err, PP_INTERNAL, errno, "reading random bytes");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int64_t pp_unix_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t pp_unix_time_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t pp_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pp_malloc_tune(void)
{
	mallopt(M_MMAP_THRESHOLD, (int)PP_MALLOC_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, (int)PP_MALLOC_TRIM_THRESHOLD);
}
