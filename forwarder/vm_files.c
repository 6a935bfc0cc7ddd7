/* In-VM paths under a root prefix, and atomic provisioning writes: see vm_files.h. */
#include "forwarder/vm_files.h"

#include <string.h>

#include "lib/fileutil.h"

int vm_path_join(char *out, size_t size, const char *root, const char *path, struct pp_err *err)
{
	size_t rlen = root ? strlen(root) : 0;
	int n;

	if (path[0] != '/')
		return pp_err_set(err, PP_INTERNAL, "in-VM path %s is not absolute", path);
	while (rlen > 0 && root[rlen - 1] == '/')
		rlen--;
	n = snprintf(out, size, "%.*s%s", (int)rlen, rlen ? root : "", path);
	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path %s under root is too long", path);
	return 0;
}

static int vm_parent_mkdir(const char *full, struct pp_err *err)
{
	char dir[VM_PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", full) >= (int)sizeof(dir))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path too long");
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return mkdir_p(dir, VM_DIR_MODE, err);
}

int vm_file_write(const char *root, const char *path, const void *data, size_t len,
		  unsigned mode, FILE *report, struct pp_err *err)
{
	char full[VM_PATH_MAX];

	if (vm_path_join(full, sizeof(full), root, path, err) < 0 ||
	    vm_parent_mkdir(full, err) < 0 ||
	    file_write_atomic(full, data, len, (mode_t)mode, err) < 0)
		return -1;
	if (report) {
		fprintf(report, "wrote %s (%zu bytes, mode %04o)\n", full, len, mode);
		fflush(report);
	}
	return 0;
}
