/* Fuzz target: the strict #cloud-config user-data parser (forwarder/userdata.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "forwarder/userdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when some component of path is empty, "." or "..". */
static int has_bad_component(const char *path)
{
	const char *c = path;

	while (*c == '/') {
		const char *end = strchr(c + 1, '/');
		size_t n = end ? (size_t)(end - c - 1) : strlen(c + 1);
		if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
			return 1;
		c += n + 1;
	}
	return *c != '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct userdata *ud = NULL;
	size_t i;

	if (userdata_parse((const char *)data, size, &ud, NULL) < 0)
		return 0;
	/* Whatever was accepted has absolute paths without ".." components and bounded content. */
	for (i = 0; i < ud->n_files; i++) {
		const struct userdata_file *f = &ud->files[i];
		if (f->path[0] != '/' || has_bad_component(f->path) ||
		    f->content_len > USERDATA_MAX_FILE || strlen(f->content) != f->content_len)
			__builtin_trap();
	}
	userdata_free(ud);
	return 0;
}
