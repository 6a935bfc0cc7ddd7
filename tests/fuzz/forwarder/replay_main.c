/*
 * Replays a fuzz corpus through a target's LLVMFuzzerTestOneInput with a plain main(), so the
 * corpus runs in the normal test suite (and under ASan/UBSan) with any compiler. Arguments are
 * corpus directories or files; an empty corpus is a failure, so a lost corpus cannot pass.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fileutil.h"

#define REPLAY_MAX_INPUT (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	uint8_t *data;
	size_t len;
	uint8_t *copy;

	if (file_read_all(path, REPLAY_MAX_INPUT, &data, &len, NULL) < 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return -1;
	}
	/* An exact-size copy, so ASan catches any read past the end of the input. */
	copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	free(data);
	return 0;
}

static int replay_dir(const char *dir, unsigned *count)
{
	struct dirent *e;
	char path[4096];
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "replay: cannot open corpus %s\n", dir);
		return -1;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) < 0) {
			closedir(d);
			return -1;
		}
		(*count)++;
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int i;

	for (i = 1; i < argc; i++)
		if (replay_dir(argv[i], &count) < 0)
			return 1;
	printf("replayed %u inputs\n", count);
	return count > 0 ? 0 : 1;
}
