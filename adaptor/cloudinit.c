/*
 * #cloud-config rendering (see cloudinit.h). Two passes over the same code: the first counts
 * bytes, the second writes into an exactly-sized buffer, so there is no growth logic to get wrong.
 */
#include "adaptor/cloudinit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CLOUDINIT_INDENT "      "   /* content lines: 6 spaces */

struct cloudinit_out {
	char *p;       /* NULL: count only */
	size_t len;
};

static void cloudinit_put(struct cloudinit_out *o, const char *s, size_t n)
{
	if (o->p)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void cloudinit_puts(struct cloudinit_out *o, const char *s)
{
	cloudinit_put(o, s, strlen(s));
}

static bool cloudinit_path_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '/' || c == '.' || c == '_' || c == '-';
}

static int cloudinit_check_path(const char *path, struct pp_err *err)
{
	size_t len = path ? strnlen(path, CLOUDINIT_PATH_MAX + 1) : 0;

	if (len == 0 || path[0] != '/' || len > CLOUDINIT_PATH_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "cloud-init file path \"%.64s\" is not an absolute path of at most %d bytes",
				  path ? path : "", CLOUDINIT_PATH_MAX);
	for (size_t i = 0; i < len; i++)
		if (!cloudinit_path_char_ok(path[i]))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "cloud-init file path %s has a character outside [A-Za-z0-9._/-]",
					  path);
	return 0;
}

static int cloudinit_check_content(const char *path, const char *c, size_t len,
				   struct pp_err *err)
{
	bool at_line_start = true, seen_text = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)c[i];

		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "content of %s has the control character 0x%02x at byte %zu",
					  path, ch, i);
		if (at_line_start && !seen_text && (ch == ' ' || ch == '\t'))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "content of %s starts with whitespace, which YAML's block "
					  "indentation cannot carry", path);
		if (ch != '\n')
			seen_text = true;
		at_line_start = ch == '\n';
	}
	return 0;
}

static void cloudinit_put_content(struct cloudinit_out *o, const char *c, size_t len)
{
	size_t start = 0;

	/* A trailing newline ends the last line; it does not start an empty one. */
	if (len > 0 && c[len - 1] == '\n')
		len--;
	while (start <= len) {
		const char *nl = memchr(c + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - c) : len;

		cloudinit_puts(o, CLOUDINIT_INDENT);
		cloudinit_put(o, c + start, end - start);
		cloudinit_puts(o, "\n");
		start = end + 1;
	}
}

static void cloudinit_emit(struct cloudinit_out *o, const struct cloudinit_file *files, size_t n)
{
	cloudinit_puts(o, CLOUDINIT_HEADER);
	if (n == 0)
		return;
	cloudinit_puts(o, "\nwrite_files:\n");
	for (size_t i = 0; i < n; i++) {
		cloudinit_puts(o, "  - path: ");
		cloudinit_puts(o, files[i].path);
		cloudinit_puts(o, "\n");
		if (files[i].content && files[i].content_len > 0) {
			cloudinit_puts(o, "    content: |\n");
			cloudinit_put_content(o, files[i].content, files[i].content_len);
		}
	}
}

int cloudinit_render(const struct cloudinit_file *files, size_t n, char **ret_text,
		     size_t *ret_len, struct pp_err *err)
{
	struct cloudinit_out o = { 0 };

	for (size_t i = 0; i < n; i++) {
		if (cloudinit_check_path(files[i].path, err) < 0)
			return -1;
		if (files[i].content &&
		    cloudinit_check_content(files[i].path, files[i].content, files[i].content_len,
					    err) < 0)
			return -1;
	}
	cloudinit_emit(&o, files, n);
	o.p = malloc(o.len + 1);
	if (!o.p)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "cloud-init: out of memory for %zu bytes",
				  o.len);
	o.len = 0;
	cloudinit_emit(&o, files, n);
	o.p[o.len] = '\0';
	*ret_text = o.p;
	*ret_len = o.len;
	return 0;
}
