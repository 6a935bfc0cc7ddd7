/*
 * The `#cloud-config` user-data text, byte for byte in upstream's shape (upstream-protocols.md
 * §5.1), because the stock process-user-data in the VM parses it with a strict YAML schema:
 *
 *   #cloud-config
 *   <blank line>
 *   write_files:
 *     - path: /run/peerpod/apf.json
 *       content: |
 *         <each content line, indented 6 spaces>
 *     - path: /run/peerpod/scratch-space.marker
 *
 * The blank line and `write_files:` appear only when there are files; a file with empty content
 * has no `content:` key; one trailing empty line of the content is dropped (YAML's `|` gives the
 * file exactly one final newline back). No other keys are ever written.
 */
#ifndef PP_ADAPTOR_CLOUDINIT_H
#define PP_ADAPTOR_CLOUDINIT_H

#include <stddef.h>

#include "lib/err.h"

#define CLOUDINIT_HEADER "#cloud-config\n"
#define CLOUDINIT_PATH_MAX 256

struct cloudinit_file {
	const char *path;        /* absolute; printable, no spaces, no YAML specials */
	const char *content;     /* may be NULL or "" */
	size_t content_len;
};

/* Renders the text; *ret_text is NUL-terminated, heap-allocated, its length in *ret_len.
 * INVALID_ARGUMENT (naming the path) for content whose first non-empty line starts with
 * whitespace (it would break YAML's indentation detection), content with NUL, CR or other
 * control characters except tab and newline, and unsafe paths. Outputs written on success only. */
int cloudinit_render(const struct cloudinit_file *files, size_t n, char **ret_text,
		     size_t *ret_len, struct pp_err *err);

#endif
