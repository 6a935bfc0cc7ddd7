/* Fuzz target: initdata (forwarder/initdata.c), both as the decompressed TOML document and as
 * the base64(gzip) text found in /run/peerpod/initdata. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "forwarder/initdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(struct initdata *id)
{
	/* An accepted document always has a known algorithm and a full-length hex digest. */
	size_t want = strcmp(id->algorithm, "sha256") == 0 ? 64 :
		      strcmp(id->algorithm, "sha384") == 0 ? 96 : 128;
	if (strlen(id->digest) != want)
		__builtin_trap();
	initdata_free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct initdata *id = NULL;

	if (initdata_parse_toml((const char *)data, size, &id, NULL) == 0)
		check(id);
	id = NULL;
	if (initdata_decode((const char *)data, size, &id, NULL) == 0)
		check(id);
	return 0;
}
