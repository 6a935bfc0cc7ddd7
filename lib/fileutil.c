/*
 * File helpers: see fileutil.h. rm_rf walks with openat/unlinkat relative to directory fds
 * opened with O_NOFOLLOW, so a symlink swapped in during the walk cannot redirect it outside
 * the tree.
 */
#include "lib/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/util.h"

#define RM_RF_MAX_DEPTH 128
#define FILE_READ_CHUNK 65536

static int errno_code(int e)
{
	switch (e) {
	case ENOENT: return PP_NOT_FOUND;
	case EEXIST: return PP_ALREADY_EXISTS;
	case EACCES:
	case EPERM:
	case EROFS: return PP_PERMISSION_DENIED;
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE: return PP_RESOURCE_EXHAUSTED;
	default: return PP_INTERNAL;
	}
}

static int write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir, struct pp_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return pp_err_errno(err, errno_code(errno), errno, "opening directory %s", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;

		close(fd);
		return pp_err_errno(err, errno_code(e), e, "syncing directory %s", dir);
	}
	close(fd);
	return 0;
}

/* Writes data into the open temp file fd and makes it durable. */
static int tmp_fill(int fd, const char *tmp, const void *data, size_t len, mode_t mode,
		    struct pp_err *err)
{
	if (fchmod(fd, mode) < 0)
		return pp_err_errno(err, errno_code(errno), errno, "setting mode of %s", tmp);
	if (write_full(fd, data, len) < 0)
		return pp_err_errno(err, errno_code(errno), errno, "writing %s", tmp);
	if (fsync(fd) < 0)
		return pp_err_errno(err, errno_code(errno), errno, "syncing %s", tmp);
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct pp_err *err)
{
	char dir[PATH_MAX], base[PATH_MAX], tmp[PATH_MAX];
	int fd, n, rc;

	if (!pp_strlcpy(dir, path, sizeof(dir)) || !pp_strlcpy(base, path, sizeof(base)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path too long: %s", path);
	dirname(dir);
	n = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, basename(base));
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path too long: %s", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return pp_err_errno(err, errno_code(errno), errno, "creating a temporary file in %s",
				    dir);
	rc = tmp_fill(fd, tmp, data, len, mode, err);
	if (close(fd) < 0 && rc == 0)
		rc = pp_err_errno(err, errno_code(errno), errno, "closing %s", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = pp_err_errno(err, errno_code(errno), errno, "renaming %s to %s", tmp, path);
	if (rc < 0) {
		unlink(tmp);
		return -1;
	}
	return fsync_dir(dir, err);
}

static int read_fd_all(int fd, const char *path, size_t max, struct buf *out, struct pp_err *err)
{
	uint8_t chunk[FILE_READ_CHUNK];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return pp_err_errno(err, errno_code(errno), errno, "reading %s", path);
		}
		if (n == 0)
			return 0;
		if (buf_append(out, chunk, (size_t)n) < 0) {
			if (errno == ENOMEM)
				return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
						  "reading %s: out of memory", path);
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
					  "%s is larger than the limit of %zu bytes", path, max);
		}
	}
}

int file_read_all(const char *path, size_t max, uint8_t **ret_data, size_t *ret_len,
		  struct pp_err *err)
{
	struct buf out = BUF_INIT(max);
	struct stat st;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pp_err_errno(err, errno_code(errno), errno, "opening %s", path);
	if (fstat(fd, &st) < 0) {
		pp_err_errno(err, errno_code(errno), errno, "stat %s", path);
		goto cleanup;
	}
	if (S_ISDIR(st.st_mode)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s is a directory", path);
		goto cleanup;
	}
	/* regular files: refuse early; others (pipes, /proc) are checked while reading */
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED,
			   "%s is larger than the limit of %zu bytes (%jd bytes)", path, max,
			   (intmax_t)st.st_size);
		goto cleanup;
	}
	if (read_fd_all(fd, path, max, &out, err) < 0)
		goto cleanup;
	*ret_data = buf_steal(&out, ret_len);
	rc = 0;
cleanup:
	close(fd);
	buf_free(&out);
	return rc;
}

static int mkdir_one(const char *path, mode_t mode, struct pp_err *err)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return pp_err_errno(err, errno_code(errno), errno, "creating directory %s", path);
	if (stat(path, &st) < 0)
		return pp_err_errno(err, errno_code(errno), errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return pp_err_set(err, PP_ALREADY_EXISTS, "%s exists and is not a directory", path);
	return 0;
}

int mkdir_p(const char *path, mode_t mode, struct pp_err *err)
{
	char p[PATH_MAX];
	size_t i;

	if (!*path)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "mkdir: empty path");
	if (!pp_strlcpy(p, path, sizeof(p)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path too long: %s", path);
	for (i = 1; p[i]; i++) {
		if (p[i] != '/' || p[i - 1] == '/')
			continue;
		p[i] = '\0';
		if (mkdir_one(p, mode, err) < 0)
			return -1;
		p[i] = '/';
	}
	return mkdir_one(p, mode, err);
}

static int rm_tree_at(int dfd, const char *path, int depth, struct pp_err *err);

/* Removes the entry `name` inside directory dfd (path is for messages). */
static int rm_entry_at(int dfd, const char *name, const char *path, int depth,
		       struct pp_err *err)
{
	struct stat st;
	int sub, rc;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return pp_err_errno(err, errno_code(errno), errno, "stat %s/%s", path, name);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return pp_err_errno(err, errno_code(errno), errno, "removing %s/%s", path,
					    name);
		return 0;
	}
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return pp_err_errno(err, errno_code(errno), errno, "opening %s/%s", path, name);
	rc = rm_tree_at(sub, path, depth + 1, err);   /* closes sub */
	if (rc < 0)
		return -1;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return pp_err_errno(err, errno_code(errno), errno, "removing %s/%s", path, name);
	return 0;
}

/* Empties the directory dfd (and closes it). */
static int rm_tree_at(int dfd, const char *path, int depth, struct pp_err *err)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > RM_RF_MAX_DEPTH) {
		close(dfd);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "removing %s: tree deeper than %d levels", path, RM_RF_MAX_DEPTH);
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return pp_err_errno(err, errno_code(errno), errno, "reading directory %s", path);
	}
	while (rc == 0) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = pp_err_errno(err, errno_code(errno), errno,
						  "reading directory %s", path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = rm_entry_at(dirfd(d), de->d_name, path, depth, err);
	}
	closedir(d);
	return rc;
}

int rm_rf(const char *path, struct pp_err *err)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return pp_err_errno(err, errno_code(errno), errno, "stat %s", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return pp_err_errno(err, errno_code(errno), errno, "removing %s", path);
		return 0;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pp_err_errno(err, errno_code(errno), errno, "opening %s", path);
	if (rm_tree_at(fd, path, 0, err) < 0)
		return -1;
	if (rmdir(path) < 0 && errno != ENOENT)
		return pp_err_errno(err, errno_code(errno), errno, "removing %s", path);
	return 0;
}
