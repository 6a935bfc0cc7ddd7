/*
 * Files written so that a crash never leaves a half-written one (temp file in the same
 * directory, fsync, rename, fsync of the directory), files read with a size limit, and
 * directory trees created and removed without following symlinks out of the tree.
 */
#ifndef PP_FILEUTIL_H
#define PP_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* Replaces path with data atomically. The file has `mode` from its creation on (secrets written
 * with 0600 are never readable by others, not even briefly). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct pp_err *err);
/* Reads the whole file; a file larger than max bytes is an error (PP_RESOURCE_EXHAUSTED), a
 * missing one PP_NOT_FOUND. *ret_data is malloc'd and NUL-terminated (not counted). */
int file_read_all(const char *path, size_t max, uint8_t **ret_data, size_t *ret_len,
		  struct pp_err *err);
/* Creates path and its missing parents with mode; an existing directory is success. */
int mkdir_p(const char *path, mode_t mode, struct pp_err *err);
/* Removes path and everything below it. Symlinks are removed, never followed. A missing path
 * is success. */
int rm_rf(const char *path, struct pp_err *err);

#endif
