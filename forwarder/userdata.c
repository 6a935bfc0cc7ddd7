/*
 * Strict user-data parser over libyaml's event stream (see userdata.h). The expected shape is
 * walked event by event — stream, document, mapping {write_files: [ {path, content}... ]} — and
 * any event that does not fit the shape is an error at its line. Working on events (not
 * libyaml's document tree) means an unexpected construct is refused before it is built, and
 * anchors and aliases are refused outright, so no "billion laughs" expansion can happen.
 */
#include "forwarder/userdata.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "forwarder/vm_files.h"
#include "lib/log.h"
#include "lib/util.h"

#define USERDATA_QUOTE_MAX 80

struct ud_parser {
	yaml_parser_t yp;
	yaml_event_t ev;      /* the current event, owned */
	bool have_ev;
	struct userdata *ud;
	struct pp_err *err;
};

static const char *const userdata_allowed[] = {
	VM_APF_JSON, VM_AUTH_JSON, VM_INITDATA, VM_SCRATCH_MARKER, VM_AA_TOML, VM_CDH_TOML,
};

bool userdata_path_allowed(const char *path)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(userdata_allowed); i++)
		if (strcmp(path, userdata_allowed[i]) == 0)
			return true;
	return false;
}

/* apf.json carries the VM's TLS server key and auth.json the registry credentials: both are
 * readable by root only (upstream writes every file 0644). */
unsigned userdata_file_mode(const char *path)
{
	return strcmp(path, VM_APF_JSON) == 0 || strcmp(path, VM_AUTH_JSON) == 0 ? 0600 : 0644;
}

static unsigned ud_line(const struct ud_parser *p)
{
	return (unsigned)p->ev.start_mark.line + 1;
}

static int ud_fail(struct ud_parser *p, const char *what)
{
	return pp_err_set(p->err, PP_INVALID_ARGUMENT, "user-data line %u: %s", ud_line(p), what);
}

static int ud_fail_key(struct ud_parser *p, const char *what, const char *key)
{
	char q[USERDATA_QUOTE_MAX];

	return pp_err_set(p->err, PP_INVALID_ARGUMENT, "user-data line %u: %s %s", ud_line(p), what,
			  str_quote(q, sizeof(q), key));
}

static const char *ud_event_name(yaml_event_type_t t)
{
	switch (t) {
	case YAML_STREAM_START_EVENT: return "stream start";
	case YAML_STREAM_END_EVENT: return "end of input";
	case YAML_DOCUMENT_START_EVENT: return "document start";
	case YAML_DOCUMENT_END_EVENT: return "document end";
	case YAML_ALIAS_EVENT: return "alias";
	case YAML_SCALAR_EVENT: return "scalar";
	case YAML_SEQUENCE_START_EVENT: return "list";
	case YAML_SEQUENCE_END_EVENT: return "end of list";
	case YAML_MAPPING_START_EVENT: return "mapping";
	case YAML_MAPPING_END_EVENT: return "end of mapping";
	default: return "nothing";
	}
}

/* Anchors, aliases, explicit tags and %TAG/%YAML directives are all outside the format. */
static int ud_check_event(struct ud_parser *p)
{
	const yaml_event_t *e = &p->ev;

	switch (e->type) {
	case YAML_ALIAS_EVENT:
		return ud_fail(p, "YAML aliases are not allowed");
	case YAML_DOCUMENT_START_EVENT:
		if (e->data.document_start.version_directive ||
		    e->data.document_start.tag_directives.start)
			return ud_fail(p, "YAML directives are not allowed");
		return 0;
	case YAML_SCALAR_EVENT:
		if (e->data.scalar.anchor || e->data.scalar.tag)
			return ud_fail(p, "YAML anchors and tags are not allowed");
		return 0;
	case YAML_SEQUENCE_START_EVENT:
		if (e->data.sequence_start.anchor || e->data.sequence_start.tag)
			return ud_fail(p, "YAML anchors and tags are not allowed");
		return 0;
	case YAML_MAPPING_START_EVENT:
		if (e->data.mapping_start.anchor || e->data.mapping_start.tag)
			return ud_fail(p, "YAML anchors and tags are not allowed");
		return 0;
	default:
		return 0;
	}
}

/* Advances to the next event; a YAML syntax error is reported with libyaml's own words. */
static int ud_next(struct ud_parser *p)
{
	if (p->have_ev) {
		yaml_event_delete(&p->ev);
		p->have_ev = false;
	}
	if (!yaml_parser_parse(&p->yp, &p->ev)) {
		return pp_err_set(p->err, PP_INVALID_ARGUMENT,
				  "user-data line %u, column %u: invalid YAML: %s",
				  (unsigned)p->yp.problem_mark.line + 1,
				  (unsigned)p->yp.problem_mark.column + 1,
				  p->yp.problem ? p->yp.problem : "syntax error");
	}
	p->have_ev = true;
	return ud_check_event(p);
}

static int ud_expect(struct ud_parser *p, yaml_event_type_t type, const char *what)
{
	char msg[128];

	if (ud_next(p) < 0)
		return -1;
	if (p->ev.type == type)
		return 0;
	snprintf(msg, sizeof(msg), "expected %s, found %s", what, ud_event_name(p->ev.type));
	return ud_fail(p, msg);
}

static const char *ud_scalar(const struct ud_parser *p)
{
	return (const char *)p->ev.data.scalar.value;
}

static bool ud_scalar_is_null(const struct ud_parser *p)
{
	const char *v = ud_scalar(p);

	return p->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
}

/* After a mapping key: the value must be a scalar; returns a copy of it. */
static int ud_scalar_value(struct ud_parser *p, const char *key, size_t max, char **ret,
			   size_t *ret_len)
{
	char msg[128];
	size_t len;

	if (ud_next(p) < 0)
		return -1;
	if (p->ev.type != YAML_SCALAR_EVENT) {
		snprintf(msg, sizeof(msg), "write_files: %s must be a string, found a %s", key,
			 ud_event_name(p->ev.type));
		return ud_fail(p, msg);
	}
	len = p->ev.data.scalar.length;
	if (len > max || strlen(ud_scalar(p)) != len) {
		snprintf(msg, sizeof(msg), "write_files: %s is too long or contains NUL (limit %zu bytes)",
			 key, max);
		return ud_fail(p, msg);
	}
	*ret = pp_xstrndup(ud_scalar_is_null(p) ? "" : ud_scalar(p), len);
	*ret_len = strlen(*ret);
	return 0;
}

/*
 * A path we are willing to compare with the allow-list: absolute, printable ASCII, no empty,
 * "." or ".." component, no trailing slash. Anything else is an attempt to escape and fails
 * the whole document rather than being silently skipped.
 */
static bool ud_path_is_normal(const char *path)
{
	const char *c = path;

	if (path[0] != '/' || strlen(path) > USERDATA_MAX_PATH)
		return false;
	while (*c) {
		const char *end;
		size_t n;

		c++; /* past '/' */
		end = strchr(c, '/');
		n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c[i] <= 0x20 || (unsigned char)c[i] >= 0x7f)
				return false;
		c += n;
	}
	return true;
}

static struct userdata_file *ud_add_file(struct userdata *ud)
{
	ud->files = pp_xrealloc(ud->files, (ud->n_files + 1) * sizeof(*ud->files));
	memset(&ud->files[ud->n_files], 0, sizeof(*ud->files));
	return &ud->files[ud->n_files++];
}

static int ud_parse_file_key(struct ud_parser *p, struct userdata_file *f, bool *seen_path,
			     bool *seen_content)
{
	const char *key = ud_scalar(p);
	size_t len;

	if (strcmp(key, "path") == 0 && !*seen_path) {
		*seen_path = true;
		return ud_scalar_value(p, "path", USERDATA_MAX_PATH, &f->path, &len);
	}
	if (strcmp(key, "content") == 0 && !*seen_content) {
		*seen_content = true;
		free(f->content);
		f->content = NULL;
		return ud_scalar_value(p, "content", USERDATA_MAX_FILE, &f->content, &f->content_len);
	}
	if (strcmp(key, "path") == 0 || strcmp(key, "content") == 0)
		return ud_fail_key(p, "write_files: duplicate key", key);
	return ud_fail_key(p, "write_files: unknown key", key);
}

/* One list item: a mapping with "path" (required) and "content" (optional). */
static int ud_parse_file(struct ud_parser *p)
{
	struct userdata_file *f;
	bool seen_path = false, seen_content = false;
	char q[USERDATA_QUOTE_MAX];

	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return ud_fail(p, "write_files: each item must be a mapping with path and content");
	if (p->ud->n_files >= USERDATA_MAX_FILES)
		return ud_fail(p, "write_files: too many files");
	f = ud_add_file(p->ud);
	f->content = pp_xstrdup("");
	for (;;) {
		if (ud_next(p) < 0)
			return -1;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return ud_fail(p, "write_files: keys must be plain strings");
		if (ud_parse_file_key(p, f, &seen_path, &seen_content) < 0)
			return -1;
	}
	if (!f->path || !f->path[0])
		return ud_fail(p, "write_files: item without a path");
	if (!ud_path_is_normal(f->path))
		return pp_err_set(p->err, PP_INVALID_ARGUMENT,
				  "user-data line %u: write_files: path %s is not a normalised absolute path",
				  ud_line(p), str_quote(q, sizeof(q), f->path));
	return 0;
}

/* The value of write_files: a list of files, or null (no files). */
static int ud_parse_write_files(struct ud_parser *p)
{
	if (ud_next(p) < 0)
		return -1;
	if (p->ev.type == YAML_SCALAR_EVENT && ud_scalar_is_null(p))
		return 0;
	if (p->ev.type != YAML_SEQUENCE_START_EVENT)
		return ud_fail(p, "write_files must be a list");
	for (;;) {
		if (ud_next(p) < 0)
			return -1;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (ud_parse_file(p) < 0)
			return -1;
	}
}

static int ud_parse_top_mapping(struct ud_parser *p)
{
	bool seen = false;

	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return ud_fail(p, "the document must be a mapping with the key write_files");
	for (;;) {
		if (ud_next(p) < 0)
			return -1;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return ud_fail(p, "keys must be plain strings");
		if (strcmp(ud_scalar(p), "write_files") != 0)
			return ud_fail_key(p, "unknown key", ud_scalar(p));
		if (seen)
			return ud_fail_key(p, "duplicate key", "write_files");
		seen = true;
		if (ud_parse_write_files(p) < 0)
			return -1;
	}
}

/* stream-start [document-start mapping document-end] stream-end */
static int ud_parse_stream(struct ud_parser *p)
{
	if (ud_expect(p, YAML_STREAM_START_EVENT, "the start of the document") < 0 || ud_next(p) < 0)
		return -1;
	if (p->ev.type == YAML_STREAM_END_EVENT)
		return 0;  /* only comments: no files */
	if (p->ev.type != YAML_DOCUMENT_START_EVENT)
		return ud_fail(p, "expected a YAML document");
	if (ud_next(p) < 0 || ud_parse_top_mapping(p) < 0 ||
	    ud_expect(p, YAML_DOCUMENT_END_EVENT, "the end of the document") < 0)
		return -1;
	if (ud_next(p) < 0)
		return -1;
	if (p->ev.type != YAML_STREAM_END_EVENT)
		return ud_fail(p, "only one YAML document is allowed");
	return 0;
}

static int ud_check_header(const char *buf, size_t len, struct pp_err *err)
{
	size_t n = strlen(USERDATA_HEADER);

	if (len < n || memcmp(buf, USERDATA_HEADER, n) != 0 ||
	    (len > n && buf[n] != '\n' && buf[n] != '\r'))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "user-data does not start with the line " USERDATA_HEADER);
	return 0;
}

int userdata_parse(const char *buf, size_t len, struct userdata **ret, struct pp_err *err)
{
	struct ud_parser p = { .err = err };
	int r;

	if (len > USERDATA_MAX_SIZE)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "user-data too large: %zu bytes (limit %d)", len, USERDATA_MAX_SIZE);
	if (ud_check_header(buf, len, err) < 0)
		return -1;
	if (!yaml_parser_initialize(&p.yp))
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "user-data: out of memory");
	yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)buf, len);
	p.ud = pp_xcalloc(1, sizeof(*p.ud));
	r = ud_parse_stream(&p);
	if (p.have_ev)
		yaml_event_delete(&p.ev);
	yaml_parser_delete(&p.yp);
	if (r < 0) {
		userdata_free(p.ud);
		return -1;
	}
	*ret = p.ud;
	return 0;
}

void userdata_free(struct userdata *ud)
{
	size_t i;

	if (!ud)
		return;
	for (i = 0; i < ud->n_files; i++) {
		free(ud->files[i].path);
		free(ud->files[i].content);
	}
	free(ud->files);
	free(ud);
}

int userdata_write_files(const struct userdata *ud, const char *root, FILE *report,
			 struct pp_err *err)
{
	char q[USERDATA_QUOTE_MAX];
	size_t i;

	for (i = 0; i < ud->n_files; i++) {
		const struct userdata_file *f = &ud->files[i];

		if (!userdata_path_allowed(f->path)) {
			log_warn("skipping user-data file not in the allow-list", "path=%s",
				 str_quote(q, sizeof(q), f->path));
			continue;
		}
		if (vm_file_write(root, f->path, f->content, f->content_len,
				  userdata_file_mode(f->path), report, err) < 0)
			return pp_err_prefix(err, "writing user-data file %s", f->path);
	}
	return 0;
}
