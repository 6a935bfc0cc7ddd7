/*
 * Configuration: see config.h. Each option has one current value (text plus its parsed form)
 * and the source it came from. Loading a source is all-or-nothing: every value of the source is
 * parsed into a batch first, and only when all of them are valid is the batch committed, so a
 * bad value changes nothing. A higher source simply overwrites; callers load the sources from
 * lowest to highest (file, environment, flags).
 */
#include "lib/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/fileutil.h"
#include "lib/util.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_FROM_MAX (PATH_MAX + 64)
#define CONFIG_QUOTE_MAX 128   /* how much of a bad value an error message shows */

extern char **environ;

enum cfg_src { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

static const char *const SRC_NAMES[] = { "default", "file", "env", "flag" };

static const char *const TYPE_NAMES[] = {
	[CFG_STRING] = "string", [CFG_INT] = "int", [CFG_BOOL] = "bool",
	[CFG_DURATION] = "duration", [CFG_LIST] = "list", [CFG_KEYVALUE] = "key=value,...",
};

/* A value in both forms: the text as given and what it means for its type. */
struct cfg_parsed {
	char *text;      /* NULL when empty */
	int64_t i;       /* CFG_INT */
	bool b;          /* CFG_BOOL */
	uint64_t ms;     /* CFG_DURATION */
	char **items;    /* CFG_LIST, CFG_KEYVALUE: NULL-terminated, or NULL when none */
	size_t n_items;
};

struct cfg_value {
	const struct config_option *opt;
	enum cfg_src src;
	struct cfg_parsed val;
};

struct config {
	struct cfg_value *v;
	size_t n;
};

/* Values of one source waiting to be committed together. */
struct cfg_batch {
	struct cfg_value **target;
	struct cfg_parsed *val;
	size_t n;
	enum cfg_src src;
};

static const char *const NO_ITEMS[] = { NULL };

static void cfg_parsed_free(struct cfg_parsed *p)
{
	size_t i;

	if (p->text) {
		explicit_bzero(p->text, strlen(p->text));
		free(p->text);
	}
	for (i = 0; i < p->n_items; i++) {
		explicit_bzero(p->items[i], strlen(p->items[i]));
		free(p->items[i]);
	}
	free(p->items);
	memset(p, 0, sizeof(*p));
}

int config_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "true", "yes" };
	static const char *const no[] = { "0", "false", "no" };
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -1;
}

struct duration_unit {
	const char *suffix;
	uint64_t ns;
};

/* Longer suffixes first, so that "ms" is not read as "m". */
static const struct duration_unit DURATION_UNITS[] = {
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
	{ "ms", 1000000 }, { "s", 1000000000ull }, { "m", 60000000000ull },
	{ "h", 3600000000000ull },
};

static const struct duration_unit *duration_unit_match(const char **s)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(DURATION_UNITS); i++) {
		if (str_has_prefix(*s, DURATION_UNITS[i].suffix)) {
			*s += strlen(DURATION_UNITS[i].suffix);
			return &DURATION_UNITS[i];
		}
	}
	return NULL;
}

/* One "<number>[.<fraction>]<unit>" component of a duration, in ns, added to *total. */
static int duration_component(const char **sp, uint64_t *total)
{
	const struct duration_unit *u;
	const char *s = *sp;
	uint64_t whole = 0, frac = 0, scale = 1, v;
	bool digits = false;

	for (; isdigit((unsigned char)*s); s++, digits = true)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*s - '0'), &whole))
			return -1;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++, digits = true)
			if (scale < 1000000000000000000ull) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
	if (!digits)
		return -1;
	u = duration_unit_match(&s);
	if (!u)
		return -1;
	if (__builtin_mul_overflow(whole, u->ns, &v) ||
	    __builtin_add_overflow(v, (uint64_t)((unsigned __int128)frac * u->ns / scale), &v) ||
	    __builtin_add_overflow(*total, v, total))
		return -1;
	*sp = s;
	return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *ret)
{
	uint64_t total = 0, secs;

	if (!s || !*s)
		return -1;
	if (parse_uint64(s, &secs) == 0) {   /* a bare number means seconds */
		if (secs > UINT64_MAX / 1000)
			return -1;
		*ret = secs * 1000;
		return 0;
	}
	while (*s)
		if (duration_component(&s, &total) < 0)
			return -1;
	*ret = total / 1000000;
	return 0;
}

/* Splits text at commas into trimmed, non-empty items. */
static void cfg_split(const char *text, struct cfg_parsed *p)
{
	char *copy = pp_xstrdup(text), *save = NULL, *tok;
	size_t n = 0;

	p->items = pp_xcalloc(strlen(text) / 2 + 2, sizeof(char *));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		str_trim(tok);
		if (*tok)
			p->items[n++] = pp_xstrdup(tok);
	}
	p->items[n] = NULL;
	p->n_items = n;
	explicit_bzero(copy, strlen(text));
	free(copy);
}

/* The error for a bad value: the option, the text (unless secret) and the source. */
static int cfg_bad_value(const struct config_option *opt, const char *text, const char *what,
			 const char *from, struct pp_err *err)
{
	char q[CONFIG_QUOTE_MAX];

	if (opt->flags & CFG_SECRET)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s: the value is not %s (from %s)",
				  opt->name, what, from);
	return pp_err_set(err, PP_INVALID_ARGUMENT, "%s: %s is not %s (from %s)", opt->name,
			  str_quote(q, sizeof(q), text), what, from);
}

static int cfg_parse_typed(const struct config_option *opt, const char *text, const char *from,
			   struct cfg_parsed *p, struct pp_err *err)
{
	size_t i;

	switch (opt->type) {
	case CFG_STRING:
		return 0;
	case CFG_INT:
		if (parse_int64(text, &p->i) < 0)
			return cfg_bad_value(opt, text, errno == ERANGE ?
					     "an integer in range" : "an integer", from, err);
		return 0;
	case CFG_BOOL:
		if (config_parse_bool(text, &p->b) < 0)
			return cfg_bad_value(opt, text, "a boolean (true/false, yes/no, 1/0)",
					     from, err);
		return 0;
	case CFG_DURATION:
		if (config_parse_duration_ms(text, &p->ms) < 0)
			return cfg_bad_value(opt, text, "a duration", from, err);
		return 0;
	case CFG_LIST:
		cfg_split(text, p);
		return 0;
	case CFG_KEYVALUE:
		cfg_split(text, p);
		for (i = 0; i < p->n_items; i++)
			if (p->items[i][0] == '=' || !strchr(p->items[i], '='))
				return cfg_bad_value(opt, text, "a list of key=value pairs", from,
						     err);
		return 0;
	}
	return pp_err_set(err, PP_INTERNAL, "%s: unknown option type %d", opt->name, opt->type);
}

/* Parses text for opt into *p. NULL text means empty (the zero value). */
static int cfg_parse(const struct config_option *opt, const char *text, const char *from,
		     struct cfg_parsed *p, struct pp_err *err)
{
	memset(p, 0, sizeof(*p));
	if (!text || (!*text && (opt->type == CFG_STRING || opt->type == CFG_LIST ||
				 opt->type == CFG_KEYVALUE)))
		return 0;
	p->text = pp_xstrdup(text);
	if (cfg_parse_typed(opt, text, from, p, err) < 0) {
		cfg_parsed_free(p);
		return -1;
	}
	return 0;
}

static struct cfg_value *cfg_find(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].opt->name, name) == 0)
			return &c->v[i];
	return NULL;
}

static struct cfg_value *cfg_find_flag(const struct config *c, const char *flag, size_t len)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		const char *f = c->v[i].opt->flag;

		if (f && strlen(f) == len && strncmp(f, flag, len) == 0)
			return &c->v[i];
	}
	return NULL;
}

static void cfg_batch_init(struct cfg_batch *b, enum cfg_src src)
{
	memset(b, 0, sizeof(*b));
	b->src = src;
}

static int cfg_batch_add(struct cfg_batch *b, struct cfg_value *v, const char *text,
			 const char *from, struct pp_err *err)
{
	struct cfg_parsed p;

	if (cfg_parse(v->opt, text, from, &p, err) < 0)
		return -1;
	b->target = pp_xrealloc(b->target, (b->n + 1) * sizeof(*b->target));
	b->val = pp_xrealloc(b->val, (b->n + 1) * sizeof(*b->val));
	b->target[b->n] = v;
	b->val[b->n] = p;
	b->n++;
	return 0;
}

static void cfg_batch_free(struct cfg_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		cfg_parsed_free(&b->val[i]);
	free(b->target);
	free(b->val);
	memset(b, 0, sizeof(*b));
}

/* Moves every value of the batch into its option (later entries win) and frees the batch. */
static void cfg_batch_commit(struct cfg_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		cfg_parsed_free(&b->target[i]->val);
		b->target[i]->val = b->val[i];
		b->target[i]->src = b->src;
		memset(&b->val[i], 0, sizeof(b->val[i]));
	}
	cfg_batch_free(b);
}

static int cfg_check_table(const struct config *c, const struct config_option *o,
			   struct pp_err *err)
{
	if (!o->name[0] || (unsigned)o->type > CFG_KEYVALUE)
		return pp_err_set(err, PP_INTERNAL, "option \"%s\" is malformed", o->name);
	if (cfg_find(c, o->name))
		return pp_err_set(err, PP_INTERNAL, "option %s is defined twice", o->name);
	if (o->flag && cfg_find_flag(c, o->flag, strlen(o->flag)))
		return pp_err_set(err, PP_INTERNAL, "flag -%s is defined twice", o->flag);
	return 0;
}

struct config *config_new(const struct config_option *const *tables, struct pp_err *err)
{
	struct config *c = pp_xcalloc(1, sizeof(*c));
	const struct config_option *o;
	size_t t, n = 0;

	for (t = 0; tables[t]; t++)
		for (o = tables[t]; o->name; o++)
			n++;
	c->v = pp_xcalloc(n ? n : 1, sizeof(*c->v));
	for (t = 0; tables[t]; t++) {
		for (o = tables[t]; o->name; o++) {
			if (cfg_check_table(c, o, err) < 0)
				goto fail;
			c->v[c->n].opt = o;
			if (cfg_parse(o, o->def, "default", &c->v[c->n].val, err) < 0)
				goto fail;
			c->n++;
		}
	}
	return c;
fail:
	config_free(c);
	return NULL;
}

void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		cfg_parsed_free(&c->v[i].val);
	free(c->v);
	free(c);
}

/* Removes one pair of matching single or double quotes around v, in place. */
static char *cfg_unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

/* One line of a config file (already a C string); adds its value to the batch. */
static int cfg_file_line(struct config *c, struct cfg_batch *b, const char *path, int lineno,
			 char *line, struct pp_err *err)
{
	char from[CONFIG_FROM_MAX], q[CONFIG_QUOTE_MAX];
	struct cfg_value *v;
	char *eq, *key, *val;

	str_trim(line);
	if (!*line || *line == '#')
		return 0;
	eq = strchr(line, '=');
	if (!eq || eq == line)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s:%d: expected KEY=VALUE", path,
				  lineno);
	*eq = '\0';
	key = str_trim(line);
	val = cfg_unquote(str_trim(eq + 1));
	v = cfg_find(c, key);
	if (!v)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s:%d: unknown option %s", path,
				  lineno, str_quote(q, sizeof(q), key));
	if (!*val)   /* like an empty environment variable: not set here */
		return 0;
	snprintf(from, sizeof(from), "file %s:%d", path, lineno);
	return cfg_batch_add(b, v, val, from, err);
}

static int cfg_load_text(struct config *c, const char *path, char *text, struct pp_err *err)
{
	struct cfg_batch b;
	char *line = text, *nl;
	int lineno = 0;

	cfg_batch_init(&b, SRC_FILE);
	for (; line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (cfg_file_line(c, &b, path, ++lineno, line, err) < 0) {
			cfg_batch_free(&b);
			return -1;
		}
	}
	cfg_batch_commit(&b);
	return 0;
}

int config_load_file(struct config *c, const char *path, bool must_exist, struct pp_err *err)
{
	struct pp_err e = { 0 };
	uint8_t *data;
	size_t len;
	int rc;

	if (file_read_all(path, CONFIG_FILE_MAX, &data, &len, &e) < 0) {
		if (e.code == PP_NOT_FOUND && !must_exist)
			return 0;
		return pp_err_set(err, e.code, "config file: %s", e.msg);
	}
	if (strlen((char *)data) != len) {
		free(data);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "config file %s contains a NUL byte",
				  path);
	}
	rc = cfg_load_text(c, path, (char *)data, err);
	explicit_bzero(data, len);
	free(data);
	return rc;
}

/* The value of variable name in envp, or NULL. */
static const char *cfg_env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

int config_load_env(struct config *c, char *const *envp, struct pp_err *err)
{
	struct cfg_batch b;
	size_t i;

	if (!envp)
		envp = environ;
	cfg_batch_init(&b, SRC_ENV);
	for (i = 0; i < c->n; i++) {
		const char *val;

		if (!c->v[i].opt->env)
			continue;
		val = cfg_env_lookup(envp, c->v[i].opt->env);
		if (!val || !*val)
			continue;
		if (cfg_batch_add(&b, &c->v[i], val, "environment", err) < 0) {
			cfg_batch_free(&b);
			return -1;
		}
	}
	cfg_batch_commit(&b);
	return 0;
}

static bool cfg_is_help(const char *name, size_t len)
{
	return (len == 1 && name[0] == 'h') || (len == 4 && strncmp(name, "help", 4) == 0);
}

/* One flag at argv[*i] (which starts with '-'); advances *i past its value. Returns 1 for
 * -help, 0 for a flag added to the batch, -1 on error. */
static int cfg_parse_flag(struct config *c, struct cfg_batch *b, int argc, char *const *argv,
			  int *i, struct pp_err *err)
{
	char from[CONFIG_FROM_MAX], q[CONFIG_QUOTE_MAX];
	const char *arg = argv[*i], *name = arg + 1, *eq, *val;
	struct cfg_value *v;
	size_t len;

	if (*name == '-')
		name++;
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	if (cfg_is_help(name, len))
		return 1;
	v = len ? cfg_find_flag(c, name, len) : NULL;
	if (!v) {
		char f[CONFIG_QUOTE_MAX];

		snprintf(f, sizeof(f), "%.*s", (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "unknown flag %s",
				  str_quote(q, sizeof(q), f));
	}
	if (eq)
		val = eq + 1;
	else if (v->opt->type == CFG_BOOL)
		val = "true";
	else if (*i + 1 < argc)
		val = argv[++*i];
	else
		return pp_err_set(err, PP_INVALID_ARGUMENT, "flag -%s needs a value", v->opt->flag);
	snprintf(from, sizeof(from), "flag -%s", v->opt->flag);
	return cfg_batch_add(b, v, val, from, err);
}

int config_parse_args(struct config *c, int argc, char *const *argv, int *ret_rest,
		      bool *ret_help, struct pp_err *err)
{
	struct cfg_batch b;
	bool help = false;
	int i, r;

	cfg_batch_init(&b, SRC_FLAG);
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		r = cfg_parse_flag(c, &b, argc, argv, &i, err);
		if (r < 0) {
			cfg_batch_free(&b);
			return -1;
		}
		if (r == 1) {
			help = true;
			i++;
			break;
		}
	}
	cfg_batch_commit(&b);
	if (ret_rest)
		*ret_rest = i;
	if (ret_help)
		*ret_help = help;
	return 0;
}

static bool cfg_is_empty(const struct cfg_value *v)
{
	return !v->val.text || !v->val.text[0];
}

int config_check_required(const struct config *c, struct pp_err *err)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct config_option *o = c->v[i].opt;

		if (!(o->flags & CFG_REQUIRED) || !cfg_is_empty(&c->v[i]))
			continue;
		if (o->flag && o->env)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "%s is required (set environment variable %s or flag -%s)",
					  o->name, o->env, o->flag);
		if (o->flag)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is required (set flag -%s)",
					  o->name, o->flag);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is required", o->name);
	}
	return 0;
}

static __attribute__((noreturn)) void cfg_misuse(const char *getter, const char *name,
						 const char *why)
{
	fprintf(stderr, "config: %s(\"%s\"): %s\n", getter, name, why);
	abort();
}

/* The value of name for a getter that accepts the types in type_mask. */
static const struct cfg_value *cfg_get(const struct config *c, const char *name,
				       unsigned type_mask, const char *getter)
{
	const struct cfg_value *v = cfg_find(c, name);

	if (!v)
		cfg_misuse(getter, name, "unknown option");
	if (!(type_mask & (1u << v->opt->type)))
		cfg_misuse(getter, name, "wrong type");
	return v;
}

const char *config_str(const struct config *c, const char *name)
{
	const struct cfg_value *v = cfg_get(c, name, 1u << CFG_STRING, "config_str");

	if (v->opt->flags & CFG_SECRET)
		cfg_misuse("config_str", name, "secret option: use config_secret");
	return v->val.text ? v->val.text : "";
}

const char *config_secret(const struct config *c, const char *name)
{
	const struct cfg_value *v = cfg_get(c, name, ~0u, "config_secret");

	if (!(v->opt->flags & CFG_SECRET))
		cfg_misuse("config_secret", name, "not a secret option");
	return v->val.text ? v->val.text : "";
}

int64_t config_int(const struct config *c, const char *name)
{
	return cfg_get(c, name, 1u << CFG_INT, "config_int")->val.i;
}

bool config_bool(const struct config *c, const char *name)
{
	return cfg_get(c, name, 1u << CFG_BOOL, "config_bool")->val.b;
}

uint64_t config_duration_ms(const struct config *c, const char *name)
{
	return cfg_get(c, name, 1u << CFG_DURATION, "config_duration_ms")->val.ms;
}

const char *const *config_list(const struct config *c, const char *name, size_t *ret_n)
{
	const struct cfg_value *v = cfg_get(c, name, 1u << CFG_LIST | 1u << CFG_KEYVALUE,
					    "config_list");

	if (ret_n)
		*ret_n = v->val.n_items;
	return v->val.items ? (const char *const *)v->val.items : NO_ITEMS;
}

bool config_has(const struct config *c, const char *name)
{
	return cfg_find(c, name) != NULL;
}

bool config_is_set(const struct config *c, const char *name)
{
	return cfg_get(c, name, ~0u, "config_is_set")->src != SRC_DEFAULT;
}

const char *config_source(const struct config *c, const char *name)
{
	return SRC_NAMES[cfg_get(c, name, ~0u, "config_source")->src];
}

int config_set(struct config *c, const char *name, const char *value, struct pp_err *err)
{
	struct cfg_value *v = cfg_find(c, name);
	char q[CONFIG_QUOTE_MAX];
	struct cfg_batch b;

	if (!v)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "unknown option %s",
				  str_quote(q, sizeof(q), name));
	cfg_batch_init(&b, SRC_FLAG);
	if (cfg_batch_add(&b, v, value, "the program", err) < 0)
		return -1;
	cfg_batch_commit(&b);
	return 0;
}

/* True when text would be misread if printed bare after NAME=. */
static bool cfg_print_needs_quotes(const char *s)
{
	size_t n = strlen(s);

	if (n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])))
		return true;
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == '"' || *s == '\'' || *s == '#')
			return true;
	return false;
}

void config_print(const struct config *c, FILE *out)
{
	char q[PP_ERR_MSG_MAX];
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct cfg_value *v = &c->v[i];
		const char *text = v->val.text ? v->val.text : "";

		if ((v->opt->flags & CFG_SECRET) && *text)
			text = "<redacted>";
		else if (cfg_print_needs_quotes(text))
			text = str_quote(q, sizeof(q), text);
		fprintf(out, "%s=%s # %s\n", v->opt->name, text, SRC_NAMES[v->src]);
	}
}

void config_usage(const struct config *c, FILE *out)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct config_option *o = c->v[i].opt;

		fprintf(out, "  ");
		if (o->flag)
			fprintf(out, "-%s%s", o->flag, o->env ? ", " : "");
		if (o->env)
			fprintf(out, "%s", o->env);
		if (!o->flag && !o->env)
			fprintf(out, "%s (config file)", o->name);
		fprintf(out, " <%s>  %s", TYPE_NAMES[o->type], o->help ? o->help : "");
		if (o->def && *o->def && !(o->flags & CFG_SECRET))
			fprintf(out, " (default \"%s\")", o->def);
		if (o->flags & CFG_REQUIRED)
			fprintf(out, " (required)");
		if (o->flags & CFG_SECRET)
			fprintf(out, " (secret)");
		fprintf(out, "\n");
	}
}
