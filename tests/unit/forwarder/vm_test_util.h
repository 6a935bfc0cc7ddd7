/* Helpers shared by the in-VM unit tests: temporary roots, reading back what was written, and
 * digests computed independently of lib/digest (straight OpenSSL), so a test compares the
 * module's answer with a second implementation rather than with itself. */
#ifndef PP_TEST_VM_TEST_UTIL_H
#define PP_TEST_VM_TEST_UTIL_H

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/fileutil.h"

/* mkdtemp under /tmp; aborts on failure. */
static inline char *vt_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/pp-vm-test-XXXXXX");
	if (!mkdtemp(buf))
		abort();
	return buf;
}

static inline void vt_rmdir(const char *dir)
{
	rm_rf(dir, NULL);
}

/* The file under dir (dir + "/" + rel or dir + rel when rel starts with '/'), NULL if absent. */
static inline char *vt_read(const char *dir, const char *rel, size_t *ret_len)
{
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s%s%s", dir, rel[0] == '/' ? "" : "/", rel);
	if (file_read_all(path, 16 * 1024 * 1024, &data, &len, NULL) < 0)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return (char *)data;
}

/* Permission bits of dir+rel, or -1 if it does not exist. */
static inline int vt_mode(const char *dir, const char *rel)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", dir, rel);
	if (stat(path, &st) < 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static inline void vt_write(const char *dir, const char *rel, const char *text)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s%s", dir, rel);
	if (file_write_atomic(path, text, strlen(text), 0644, NULL) < 0)
		abort();
}

/* Lower-case hex digest by OpenSSL name ("SHA256", "SHA384", "SHA512") into out[129]. */
static inline void vt_sha_hex(const char *alg, const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!EVP_Digest(data, len, md, &n, EVP_get_digestbyname(alg), NULL))
		abort();
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * n] = '\0';
}

#endif
