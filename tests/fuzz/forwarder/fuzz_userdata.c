/* Fuzz target: the strict #cloud-config user-data parser (forwarder/userdata.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "forwarder/userdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct userdata *ud = NULL;
	size_t i;

	if (userdata_parse((const char *)data, size, &ud, NULL) < 0)
		return 0;
	/* Whatever was accepted has absolute paths without ".." components and bounded content. */
	for (i = 0; i < ud->n_files; i++) {
		const struct userdata_file *f = &ud->files[i];
		if (f->path[0] != '/' || strstr(f->path, "/..") || strstr(f->path, "//") ||
		    f->content_len > USERDATA_MAX_FILE || strlen(f->content) != f->content_len)
			__builtin_trap();
	}
	userdata_free(ud);
	return 0;
}
