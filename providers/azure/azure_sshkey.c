/*
 * The SSH public key of the VM's admin user. ARM requires one when password login is disabled;
 * the pod VM image does not run sshd for peer pods, so unless the operator gives a key file
 * (SSH_KEY_PATH, for debugging), the key is generated once per process and its private half
 * is thrown away: a key nobody holds.
 *
 * The one idea: a key line is checked the way sshd would read it (type, base64 blob whose first
 * field repeats the type), so a wrong file is reported at start-up, not by ARM at the first pod.
 */
#include "providers/azure/azure_priv.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/util.h"

#define SSHKEY_FILE_MAX (16u * 1024)
#define SSHKEY_BLOB_MAX (16u * 1024)

static const char *const sshkey_types[] = {
	"ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
};

static bool sshkey_type_known(const char *t, size_t len)
{
	for (size_t i = 0; i < PP_ARRAY_SIZE(sshkey_types); i++)
		if (strlen(sshkey_types[i]) == len && memcmp(sshkey_types[i], t, len) == 0)
			return true;
	return false;
}

/* The blob starts with uint32 length + the type name again. */
static bool sshkey_blob_matches(const uint8_t *b, size_t len, const char *type, size_t tlen)
{
	uint32_t n;

	if (len < 4)
		return false;
	n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return n == tlen && len >= 4 + tlen && memcmp(b + 4, type, tlen) == 0;
}

int azure_sshkey_parse_line(const char *line, char **ret, struct pp_err *err)
{
	size_t tlen = strcspn(line, " \t"), blen;
	const char *b64 = line + tlen;
	uint8_t *blob = NULL;
	size_t len = 0;
	bool ok;

	if (!sshkey_type_known(line, tlen))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "SSH key type \"%.*s\" is not one of ssh-rsa, "
				  "ssh-ed25519, ecdsa-sha2-*", (int)(tlen > 40 ? 40 : tlen), line);
	b64 += strspn(b64, " \t");
	blen = strcspn(b64, " \t\r\n");
	if (blen == 0 || blen > SSHKEY_BLOB_MAX ||
	    base64_decode(b64, blen, &blob, &len, NULL) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "SSH key of type %.*s has no valid base64 key",
				  (int)tlen, line);
	ok = sshkey_blob_matches(blob, len, line, tlen);
	free(blob);
	if (!ok)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "SSH key of type %.*s holds a key of another type",
				  (int)tlen, line);
	/* "<type> <base64>": one space, no comment (ARM stores keyData as given) */
	*ret = pp_xmalloc(tlen + 1 + blen + 1);
	memcpy(*ret, line, tlen);
	(*ret)[tlen] = ' ';
	memcpy(*ret + tlen + 1, b64, blen);
	(*ret)[tlen + 1 + blen] = '\0';
	return 0;
}

int azure_sshkey_load(const char *path, char **ret, struct pp_err *err)
{
	uint8_t *data;
	size_t len;
	char *save = NULL, *line;
	int rc = -1;

	if (file_read_all(path, SSHKEY_FILE_MAX, &data, &len, err) < 0)
		return pp_err_prefix(err, "reading SSH_KEY_PATH");
	for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line = str_trim(line);
		if (!line[0] || line[0] == '#')
			continue;
		rc = azure_sshkey_parse_line(line, ret, err);
		if (rc < 0)
			pp_err_prefix(err, "SSH_KEY_PATH %s", path);
		break;
	}
	if (!line)
		pp_err_set(err, PP_INVALID_ARGUMENT, "SSH_KEY_PATH %s holds no key", path);
	free(data);
	return rc;
}

int azure_sshkey_check_file(const char *path, struct pp_err *err)
{
	struct stat st;
	char *key = NULL;

	if (stat(path, &st) < 0)
		return pp_err_errno(err, PP_FAILED_PRECONDITION, errno, "SSH_KEY_PATH %s", path);
	if ((st.st_mode & 07777) != 0600)
		return pp_err_set(err, PP_FAILED_PRECONDITION, "SSH_KEY_PATH %s has mode %04o, not 0600",
				  path, (unsigned)(st.st_mode & 07777));
	if (azure_sshkey_load(path, &key, err) < 0)
		return -1;
	free(key);
	return 0;
}

/* ---- generation ---- */

/* SSH string: uint32 big-endian length, then the bytes. */
static int sshkey_put_string(struct buf *b, const void *data, size_t len)
{
	uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };

	return buf_append(b, n, 4) < 0 || buf_append(b, data, len) < 0 ? -1 : 0;
}

/* SSH mpint: big-endian, a leading zero byte when the top bit is set. */
static int sshkey_put_mpint(struct buf *b, const BIGNUM *bn)
{
	int n = BN_num_bytes(bn);
	uint8_t *tmp = pp_xmalloc((size_t)n + 1);
	int rc;

	tmp[0] = 0;
	BN_bn2bin(bn, tmp + 1);
	if (n > 0 && (tmp[1] & 0x80))
		rc = sshkey_put_string(b, tmp, (size_t)n + 1);
	else
		rc = sshkey_put_string(b, tmp + 1, (size_t)n);
	free(tmp);
	return rc;
}

int azure_sshkey_generate(unsigned bits, char **ret, struct pp_err *err)
{
	EVP_PKEY *pkey = EVP_RSA_gen(bits);
	BIGNUM *n = NULL, *e = NULL;
	struct buf b = BUF_INIT(SSHKEY_BLOB_MAX);
	char *b64 = NULL;
	int rc = -1;

	if (!pkey)
		return pp_err_set(err, PP_INTERNAL, "generating an RSA-%u SSH key failed", bits);
	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e)) {
		pp_err_set(err, PP_INTERNAL, "reading the generated RSA key failed");
		goto out;
	}
	if (sshkey_put_string(&b, "ssh-rsa", 7) < 0 || sshkey_put_mpint(&b, e) < 0 ||
	    sshkey_put_mpint(&b, n) < 0) {
		pp_err_set(err, PP_INTERNAL, "encoding the generated SSH key failed");
		goto out;
	}
	b64 = base64_encode(b.data, b.len);
	*ret = pp_xmalloc(strlen(b64) + 9);
	snprintf(*ret, strlen(b64) + 9, "ssh-rsa %s", b64);
	rc = 0;
out:
	free(b64);
	buf_free(&b);
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pkey);   /* the private key is never kept */
	return rc;
}
