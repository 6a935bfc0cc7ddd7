/*
 * Strict TOML subset parser (see toml.h). A hand-written recursive-descent reader over a byte
 * buffer: one function per grammar rule, each either consumes its rule or fails with the line
 * and column where the input stopped making sense. Nothing is skipped or guessed: an input this
 * parser accepts is one a full TOML 1.0 parser reads the same way.
 */
#include "forwarder/toml.h"

#include <stdlib.h>
#include <string.h>

struct toml_parser {
	const char *buf;
	size_t len;
	size_t pos;
	unsigned line;         /* 1-based line of pos */
	size_t line_start;     /* offset of the first byte of that line */
	size_t n_keys;         /* key/value pairs so far, for TOML_MAX_KEYS */
	struct toml_doc *doc;
	struct toml_table *cur;
	struct pp_err *err;
};

/* A growing byte buffer for string values; bounded by the document size. */
struct toml_sbuf {
	char *p;
	size_t len;
	size_t cap;
};

#define TOML_KEY_SHOW_MAX 64

static int toml_fail(struct toml_parser *p, const char *what, const char *detail)
{
	unsigned col = (unsigned)(p->pos - p->line_start) + 1;

	return pp_err_set(p->err, PP_INVALID_ARGUMENT, "TOML line %u, column %u: %s%s", p->line, col,
			  what, detail ? detail : "");
}

/* Copies a key for an error message: printable ASCII kept, anything else shown as '?'. */
static const char *toml_key_show(char *out, size_t size, const char *key)
{
	size_t i, n = 0;

	for (i = 0; key[i] && n + 1 < size && i < TOML_KEY_SHOW_MAX; i++) {
		unsigned char c = (unsigned char)key[i];
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
	return out;
}

static int toml_fail_key(struct toml_parser *p, const char *fmt_what, const char *key,
			 unsigned first_line)
{
	char shown[TOML_KEY_SHOW_MAX + 1];
	unsigned col = (unsigned)(p->pos - p->line_start) + 1;

	toml_key_show(shown, sizeof(shown), key);
	return pp_err_set(p->err, PP_INVALID_ARGUMENT,
			  "TOML line %u, column %u: %s \"%s\" (first defined on line %u)", p->line, col,
			  fmt_what, shown, first_line);
}

static int toml_peek(const struct toml_parser *p, size_t ahead)
{
	if (p->pos + ahead >= p->len)
		return -1;
	return (unsigned char)p->buf[p->pos + ahead];
}

/* Consumes one byte; keeps line/column bookkeeping right across newlines. */
static void toml_advance(struct toml_parser *p)
{
	if (p->buf[p->pos] == '\n') {
		p->line++;
		p->line_start = p->pos + 1;
	}
	p->pos++;
}

static bool toml_at_newline(const struct toml_parser *p)
{
	int c = toml_peek(p, 0);

	return c == '\n' || (c == '\r' && toml_peek(p, 1) == '\n');
}

/* Consumes "\n" or "\r\n"; the caller checked toml_at_newline. */
static void toml_eat_newline(struct toml_parser *p)
{
	if (toml_peek(p, 0) == '\r')
		p->pos++;
	toml_advance(p);
}

static bool toml_is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void toml_skip_ws(struct toml_parser *p)
{
	while (toml_peek(p, 0) == ' ' || toml_peek(p, 0) == '\t')
		p->pos++;
}

/* '#' to the end of the line; control characters other than tab are not allowed in it. */
static int toml_skip_comment(struct toml_parser *p)
{
	if (toml_peek(p, 0) != '#')
		return 0;
	while (p->pos < p->len && !toml_at_newline(p)) {
		if (toml_is_control(toml_peek(p, 0)))
			return toml_fail(p, "control character in comment", NULL);
		p->pos++;
	}
	return 0;
}

/* After a value or a table header: optional whitespace and comment, then newline or EOF. */
static int toml_end_of_line(struct toml_parser *p)
{
	toml_skip_ws(p);
	if (toml_skip_comment(p) < 0)
		return -1;
	if (p->pos >= p->len)
		return 0;
	if (!toml_at_newline(p))
		return toml_fail(p, "expected the end of the line", NULL);
	toml_eat_newline(p);
	return 0;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid (overlong forms,
 * surrogates and values above U+10FFFF are invalid). */
static size_t toml_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static int toml_check_utf8(struct toml_parser *p)
{
	const unsigned char *s = (const unsigned char *)p->buf;

	while (p->pos < p->len) {
		size_t n = toml_utf8_seq(s + p->pos, p->len - p->pos);
		if (n == 0)
			return toml_fail(p, "invalid UTF-8", NULL);
		if (n == 1 && s[p->pos] == '\n')
			toml_advance(p);
		else
			p->pos += n;
	}
	p->pos = 0;
	p->line = 1;
	p->line_start = 0;
	return 0;
}

static size_t toml_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- string buffer ---- */

static int toml_sbuf_add(struct toml_parser *p, struct toml_sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return pp_err_set(p->err, PP_RESOURCE_EXHAUSTED, "TOML: out of memory");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Hands the buffer over as a C string (an empty string when nothing was added). */
static char *toml_sbuf_take(struct toml_parser *p, struct toml_sbuf *b)
{
	char *s;

	if (!b->p && toml_sbuf_add(p, b, "", 0) < 0)
		return NULL;
	s = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return s;
}

/* ---- strings ---- */

static int toml_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* After "\u" or "\U": exactly ndigits hex digits naming a Unicode scalar value other than NUL. */
static int toml_parse_unicode_escape(struct toml_parser *p, struct toml_sbuf *b, int ndigits)
{
	uint32_t cp = 0;
	char utf8[4];
	int i;

	for (i = 0; i < ndigits; i++) {
		int v = toml_hex_value(toml_peek(p, 0));
		if (v < 0)
			return toml_fail(p, "bad unicode escape: expected a hex digit", NULL);
		cp = (cp << 4) | (uint32_t)v;
		p->pos++;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return toml_fail(p, "bad unicode escape: not a Unicode scalar value", NULL);
	if (cp == 0)
		return toml_fail(p, "bad unicode escape: NUL is not supported", NULL);
	return toml_sbuf_add(p, b, utf8, toml_utf8_encode(cp, utf8));
}

/* In a multi-line basic string, "\" followed by whitespace and a newline trims all whitespace
 * and newlines up to the next visible character. Returns 1 if that was the case. */
static int toml_line_ending_backslash(struct toml_parser *p)
{
	size_t save = p->pos;

	toml_skip_ws(p);
	if (!toml_at_newline(p)) {
		p->pos = save;
		return 0;
	}
	for (;;) {
		toml_skip_ws(p);
		if (!toml_at_newline(p))
			return 1;
		toml_eat_newline(p);
	}
}

/* Called with pos just after a backslash. */
static int toml_parse_escape(struct toml_parser *p, struct toml_sbuf *b, bool multiline)
{
	static const char from[] = "btnfr\"\\";
	static const char to[] = "\b\t\n\f\r\"\\";
	int c = toml_peek(p, 0);
	const char *hit;

	if (c < 0)
		return toml_fail(p, "unterminated string", NULL);
	if (multiline && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
		if (toml_line_ending_backslash(p))
			return 0;
		return toml_fail(p, "bad escape: a backslash before whitespace must end the line", NULL);
	}
	p->pos++;
	if (c == 'u')
		return toml_parse_unicode_escape(p, b, 4);
	if (c == 'U')
		return toml_parse_unicode_escape(p, b, 8);
	hit = c ? strchr(from, c) : NULL;
	if (!hit) {
		p->pos--;
		return toml_fail(p, "bad escape sequence", NULL);
	}
	return toml_sbuf_add(p, b, &to[hit - from], 1);
}

/* Counts a run of delimiter quotes q at pos. */
static size_t toml_quote_run(const struct toml_parser *p, int q)
{
	size_t n = 0;

	while (toml_peek(p, n) == q)
		n++;
	return n;
}

/*
 * Reads a string body after its opening delimiter. q is '"' or '\''; escapes only in basic
 * strings. In multi-line strings newlines are content, and up to two quotes may sit right
 * before the closing triple (`"""a"""""` is `a""`).
 */
static int toml_parse_string_body(struct toml_parser *p, int q, bool multiline, char **ret)
{
	struct toml_sbuf b = { 0 };
	int c;

	if (multiline && toml_at_newline(p))
		toml_eat_newline(p);  /* a newline right after the opening delimiter is trimmed */
	for (;;) {
		c = toml_peek(p, 0);
		if (c < 0)
			goto unterminated;
		if (c == q) {
			size_t run = multiline ? toml_quote_run(p, q) : 1;
			if (run >= 3 || !multiline) {
				if (run > 5) {
					free(b.p);
					return toml_fail(p, "too many quotes at the end of a multi-line string", NULL);
				}
				if (multiline && toml_sbuf_add(p, &b, p->buf + p->pos, run - 3) < 0)
					goto fail;
				p->pos += run;
				break;
			}
			if (toml_sbuf_add(p, &b, p->buf + p->pos, run) < 0)
				goto fail;
			p->pos += run;
			continue;
		}
		if (q == '"' && c == '\\') {
			p->pos++;
			if (toml_parse_escape(p, &b, multiline) < 0)
				goto fail;
			continue;
		}
		if (multiline && toml_at_newline(p)) {
			size_t nl = toml_peek(p, 0) == '\r' ? 2 : 1;
			if (toml_sbuf_add(p, &b, p->buf + p->pos, nl) < 0)
				goto fail;
			toml_eat_newline(p);
			continue;
		}
		if (c == '\n' || (c == '\r' && !multiline))
			goto unterminated;
		if (toml_is_control(c)) {
			free(b.p);
			return toml_fail(p, "control character in string (use an escape)", NULL);
		}
		if (toml_sbuf_add(p, &b, p->buf + p->pos, 1) < 0)
			goto fail;
		p->pos++;
	}
	*ret = toml_sbuf_take(p, &b);
	return *ret ? 0 : -1;
unterminated:
	free(b.p);
	return toml_fail(p, "unterminated string", NULL);
fail:
	free(b.p);
	return -1;
}

/* A string of any of the four forms at pos. */
static int toml_parse_string(struct toml_parser *p, char **ret, bool allow_multiline)
{
	int q = toml_peek(p, 0);
	bool multiline = toml_peek(p, 1) == q && toml_peek(p, 2) == q;

	if (multiline && !allow_multiline)
		return toml_fail(p, "multi-line strings cannot be keys", NULL);
	p->pos += multiline ? 3 : 1;
	return toml_parse_string_body(p, q, multiline, ret);
}

/* ---- keys ---- */

static bool toml_is_bare_key_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static int toml_parse_key(struct toml_parser *p, char **ret)
{
	int c = toml_peek(p, 0);
	size_t start = p->pos;
	char *key;

	if (c == '"' || c == '\'') {
		if (toml_parse_string(p, &key, false) < 0)
			return -1;
	} else {
		while (toml_is_bare_key_char(toml_peek(p, 0)))
			p->pos++;
		if (p->pos == start)
			return toml_fail(p, "expected a key", NULL);
		key = strndup(p->buf + start, p->pos - start);
		if (!key)
			return pp_err_set(p->err, PP_RESOURCE_EXHAUSTED, "TOML: out of memory");
	}
	if (strlen(key) > TOML_MAX_KEY) {
		free(key);
		p->pos = start;
		return toml_fail(p, "key too long", NULL);
	}
	toml_skip_ws(p);
	if (toml_peek(p, 0) == '.') {
		free(key);
		return toml_fail(p, "dotted keys are not supported", NULL);
	}
	*ret = key;
	return 0;
}

/* ---- scalars ---- */

static bool toml_is_value_end(int c)
{
	return c < 0 || c == ' ' || c == '\t' || c == '#' || c == '\n' || c == '\r';
}

static int toml_parse_bool(struct toml_parser *p, struct toml_value *v)
{
	static const struct { const char *word; bool value; } words[] = {
		{ "true", true }, { "false", false },
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if (p->len - p->pos >= n && memcmp(p->buf + p->pos, words[i].word, n) == 0 &&
		    toml_is_value_end(toml_peek(p, n))) {
			p->pos += n;
			v->type = TOML_BOOLEAN;
			v->boolean = words[i].value;
			return 0;
		}
	}
	return toml_fail(p, "unsupported value (expected a string, integer or boolean)", NULL);
}

static int toml_integer_tail_error(struct toml_parser *p)
{
	int c = toml_peek(p, 0);

	if (c == '.' || c == 'e' || c == 'E')
		return toml_fail(p, "floats are not supported", NULL);
	if (c == 'x' || c == 'o' || c == 'b')
		return toml_fail(p, "only decimal integers are supported", NULL);
	if (c == '-' || c == ':')
		return toml_fail(p, "dates and times are not supported", NULL);
	return toml_fail(p, "invalid integer", NULL);
}

/* Decimal: [+-]? (0 | [1-9] (_? [0-9])*), range of int64. */
static int toml_parse_integer(struct toml_parser *p, struct toml_value *v)
{
	bool neg = false;
	uint64_t acc = 0, limit;
	size_t digits = 0;
	int c = toml_peek(p, 0);

	if (c == '+' || c == '-') {
		neg = c == '-';
		p->pos++;
	}
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (;;) {
		c = toml_peek(p, 0);
		if (c == '_' && digits > 0 && toml_peek(p, 1) >= '0' && toml_peek(p, 1) <= '9') {
			p->pos++;
			continue;
		}
		if (c < '0' || c > '9')
			break;
		if (digits == 1 && acc == 0)
			return toml_integer_tail_error(p);  /* leading zero: "012", "0x1f", "0o7" */
		if (acc > (limit - (uint64_t)(c - '0')) / 10)
			return toml_fail(p, "integer out of range", NULL);
		acc = acc * 10 + (uint64_t)(c - '0');
		digits++;
		p->pos++;
	}
	if (digits == 0 || !toml_is_value_end(c))
		return toml_integer_tail_error(p);
	v->type = TOML_INTEGER;
	v->integer = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

static int toml_parse_value(struct toml_parser *p, struct toml_value *v)
{
	int c = toml_peek(p, 0);

	memset(v, 0, sizeof(*v));
	if (c == '"' || c == '\'') {
		v->type = TOML_STRING;
		if (toml_parse_string(p, &v->str, true) < 0)
			return -1;
		v->str_len = strlen(v->str);
		return 0;
	}
	if (c == '+' || c == '-' || (c >= '0' && c <= '9'))
		return toml_parse_integer(p, v);
	if (c == '[')
		return toml_fail(p, "arrays are not supported", NULL);
	if (c == '{')
		return toml_fail(p, "inline tables are not supported", NULL);
	if (c < 0 || c == '\n' || c == '\r' || c == '#')
		return toml_fail(p, "missing value after '='", NULL);
	return toml_parse_bool(p, v);
}

/* ---- document ---- */

static int toml_grow(struct toml_parser *p, void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	np = realloc(*arr, ncap * elem);
	if (!np)
		return pp_err_set(p->err, PP_RESOURCE_EXHAUSTED, "TOML: out of memory");
	memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = np;
	*cap = ncap;
	return 0;
}

static const struct toml_kv *toml_find_kv(const struct toml_table *t, const char *key)
{
	size_t i;

	for (i = 0; t && i < t->n_kvs; i++)
		if (strcmp(t->kvs[i].key, key) == 0)
			return &t->kvs[i];
	return NULL;
}

static int toml_parse_keyval(struct toml_parser *p)
{
	struct toml_table *t = p->cur;
	const struct toml_kv *dup;
	struct toml_kv kv = { .line = p->line };

	if (toml_parse_key(p, &kv.key) < 0)
		return -1;
	if ((dup = toml_find_kv(t, kv.key))) {
		int r = toml_fail_key(p, "duplicate key", kv.key, dup->line);
		free(kv.key);
		return r;
	}
	if (toml_peek(p, 0) != '=') {
		free(kv.key);
		return toml_fail(p, "expected '=' after the key", NULL);
	}
	p->pos++;
	toml_skip_ws(p);
	if (toml_parse_value(p, &kv.value) < 0 || toml_end_of_line(p) < 0)
		goto fail;
	if (++p->n_keys > TOML_MAX_KEYS) {
		toml_fail(p, "too many keys", NULL);
		goto fail;
	}
	if (toml_grow(p, (void **)&t->kvs, &t->cap_kvs, t->n_kvs, sizeof(*t->kvs)) < 0)
		goto fail;
	t->kvs[t->n_kvs++] = kv;
	return 0;
fail:
	free(kv.key);
	free(kv.value.str);
	return -1;
}

static struct toml_table *toml_add_table(struct toml_parser *p, char *name, unsigned line)
{
	struct toml_doc *d = p->doc;
	struct toml_table *t;

	if (toml_grow(p, (void **)&d->tables, &d->cap_tables, d->n_tables, sizeof(*d->tables)) < 0)
		return NULL;
	t = &d->tables[d->n_tables++];
	t->name = name;
	t->line = line;
	return t;
}

/* "[" ws key ws "]" — the key is bare or quoted; the table must be new. */
static int toml_parse_table_header(struct toml_parser *p)
{
	unsigned line = p->line;
	const struct toml_table *old;
	const struct toml_kv *clash;
	char *name;

	p->pos++;
	if (toml_peek(p, 0) == '[')
		return toml_fail(p, "arrays of tables are not supported", NULL);
	toml_skip_ws(p);
	if (toml_parse_key(p, &name) < 0)
		return -1;
	if (toml_peek(p, 0) != ']') {
		free(name);
		return toml_fail(p, "expected ']' to close the table header", NULL);
	}
	if ((old = toml_table_get(p->doc, name))) {
		int r = toml_fail_key(p, "duplicate table", name, old->line);
		free(name);
		return r;
	}
	if ((clash = toml_find_kv(&p->doc->tables[0], name))) {
		int r = toml_fail_key(p, "table redefines key", name, clash->line);
		free(name);
		return r;
	}
	if (p->doc->n_tables > TOML_MAX_TABLES) {
		free(name);
		return toml_fail(p, "too many tables", NULL);
	}
	p->pos++;
	if (!(p->cur = toml_add_table(p, name, line))) {
		free(name);
		return -1;
	}
	return toml_end_of_line(p);
}

static int toml_parse_line(struct toml_parser *p)
{
	int c;

	toml_skip_ws(p);
	c = toml_peek(p, 0);
	if (c == '[')
		return toml_parse_table_header(p);
	if (c == '#' || c == '\n' || c == '\r' || c < 0)
		return toml_end_of_line(p);
	return toml_parse_keyval(p);
}

int toml_parse(const char *buf, size_t len, struct toml_doc **ret_doc, struct pp_err *err)
{
	struct toml_parser p = { .buf = buf, .len = len, .line = 1, .err = err };

	if (len > TOML_MAX_DOC)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "TOML document too large: %zu bytes (limit %d)",
				  len, TOML_MAX_DOC);
	p.doc = calloc(1, sizeof(*p.doc));
	if (!p.doc)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "TOML: out of memory");
	if (toml_check_utf8(&p) < 0 || !(p.cur = toml_add_table(&p, NULL, 1)))
		goto fail;
	while (p.pos < p.len)
		if (toml_parse_line(&p) < 0)
			goto fail;
	*ret_doc = p.doc;
	return 0;
fail:
	toml_free(p.doc);
	return -1;
}

void toml_free(struct toml_doc *doc)
{
	size_t i, j;

	if (!doc)
		return;
	for (i = 0; i < doc->n_tables; i++) {
		struct toml_table *t = &doc->tables[i];
		for (j = 0; j < t->n_kvs; j++) {
			free(t->kvs[j].key);
			free(t->kvs[j].value.str);
		}
		free(t->kvs);
		free(t->name);
	}
	free(doc->tables);
	free(doc);
}

const struct toml_table *toml_table_get(const struct toml_doc *doc, const char *name)
{
	size_t i;

	if (!doc || doc->n_tables == 0)
		return NULL;
	if (!name)
		return &doc->tables[0];
	for (i = 1; i < doc->n_tables; i++)
		if (strcmp(doc->tables[i].name, name) == 0)
			return &doc->tables[i];
	return NULL;
}

const struct toml_value *toml_get(const struct toml_table *table, const char *key)
{
	const struct toml_kv *kv = toml_find_kv(table, key);

	return kv ? &kv->value : NULL;
}

const char *toml_type_name(enum toml_type type)
{
	switch (type) {
	case TOML_STRING:
		return "string";
	case TOML_INTEGER:
		return "integer";
	case TOML_BOOLEAN:
		return "boolean";
	}
	return "unknown";
}
