/*
 * Keys and certificates for automatic mutual TLS (see pki.h and spec §6.2).
 *
 * The one idea: every certificate is built by one function (pki_cert_build) from a small
 * description (subject, CA or not, extended key usage, optional DNS name, issuer), so the
 * three kinds differ only in that description. Persistence writes the key before the
 * certificate: a crash between the two leaves a key without a certificate, which is treated as
 * "absent" and regenerated, never as a half-valid identity.
 */
#include "lib/pki.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/fileutil.h"
#include "lib/log.h"

#define PKI_SERIAL_BITS 128
#define PKI_DNS_NAME_MAX 253
#define PKI_PATH_MAX 4096
#define PKI_TLS_SUBDIR "tls"

/* What distinguishes the certificates we make. */
struct cert_desc {
	const char *org;
	const char *cn;           /* NULL: no CN */
	const char *dns_name;     /* NULL: no SAN */
	bool is_ca;
	int ext_key_usage;        /* NID_server_auth or NID_client_auth */
};

/* The first queued OpenSSL error as text (never contains key material), or a fallback. */
static const char *pki_ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown OpenSSL error";
}

static int pki_ssl_err(struct pp_err *err, const char *what)
{
	pp_err_set(err, PP_INTERNAL, "%s: %s", what, pki_ssl_reason());
	ERR_clear_error();
	return -1;
}

static EVP_PKEY *pki_key_new(struct pp_err *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!key)
		pki_ssl_err(err, "generating an ECDSA P-256 key");
	return key;
}

static int pki_set_serial(X509 *x, struct pp_err *err)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, PKI_SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
		 BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));

	BN_free(bn);
	return ok ? 0 : pki_ssl_err(err, "choosing a certificate serial number");
}

/* notBefore = now - 5 min, notAfter = notBefore + 730 days, clamped inside the issuer's. */
static int pki_set_validity(X509 *x, const X509 *issuer, struct pp_err *err)
{
	time_t nb = time(NULL) - PKI_BACKDATE_SECS;

	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), PKI_VALIDITY_DAYS, 0, &nb))
		return pki_ssl_err(err, "setting certificate validity");
	if (!issuer)
		return 0;
	if (ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(issuer)) < 0 &&
	    !X509_set1_notBefore(x, X509_get0_notBefore(issuer)))
		return pki_ssl_err(err, "clamping certificate validity");
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(issuer)))
		return pki_ssl_err(err, "clamping certificate validity");
	return 0;
}

static int pki_set_subject(X509 *x, const struct cert_desc *d, struct pp_err *err)
{
	X509_NAME *n = X509_get_subject_name(x);

	/* UTF8String without MBSTRING conversion: no upper bound on the CN length is applied, as
	 * with Go's x509 (instance names can be longer than X.520's 64 characters). */
	if (!X509_NAME_add_entry_by_NID(n, NID_organizationName, V_ASN1_UTF8STRING,
					(const unsigned char *)d->org, -1, -1, 0))
		return pki_ssl_err(err, "setting certificate organization");
	if (d->cn && !X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
						 (const unsigned char *)d->cn, -1, -1, 0))
		return pki_ssl_err(err, "setting certificate common name");
	return 0;
}

static int pki_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct pp_err *err)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);

	X509_EXTENSION_free(ext);
	return ok ? 0 : pki_ssl_err(err, "adding a certificate extension");
}

/* DNS SAN built as a value, not through the config syntax, so no name can inject options. */
static int pki_add_dns_san(X509 *x, const char *name, struct pp_err *err)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ok = 0;

	if (gens && gen && ia5 && ASN1_STRING_set(ia5, name, -1)) {
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		ia5 = NULL;
		if (sk_GENERAL_NAME_push(gens, gen)) {
			gen = NULL;
			ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1;
		}
	}
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : pki_ssl_err(err, "adding the certificate DNS name");
}

static int pki_add_extensions(X509 *x, const X509 *issuer, const struct cert_desc *d,
			      struct pp_err *err)
{
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, (X509 *)(issuer ? issuer : x), x, NULL, NULL, 0);
	if (pki_add_ext(x, &ctx, NID_basic_constraints, d->is_ca ? "critical,CA:TRUE" :
			"critical,CA:FALSE", err) < 0 ||
	    pki_add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign", err) < 0 ||
	    pki_add_ext(x, &ctx, NID_ext_key_usage, d->ext_key_usage == NID_server_auth ?
			"serverAuth" : "clientAuth", err) < 0 ||
	    pki_add_ext(x, &ctx, NID_subject_key_identifier, "hash", err) < 0)
		return -1;
	if (issuer && pki_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err) < 0)
		return -1;
	if (d->dns_name && pki_add_dns_san(x, d->dns_name, err) < 0)
		return -1;
	return 0;
}

/* Builds and signs a certificate for key; issuer NULL means self-signed. */
static X509 *pki_cert_build(EVP_PKEY *key, const struct pki_identity *issuer,
			    const struct cert_desc *d, struct pp_err *err)
{
	X509 *x = X509_new();
	const X509 *icert = issuer ? issuer->cert : NULL;

	if (!x) {
		pki_ssl_err(err, "allocating a certificate");
		return NULL;
	}
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key)) {
		pki_ssl_err(err, "building a certificate");
		goto fail;
	}
	if (pki_set_serial(x, err) < 0 || pki_set_validity(x, icert, err) < 0 ||
	    pki_set_subject(x, d, err) < 0)
		goto fail;
	if (!X509_set_issuer_name(x, icert ? X509_get_subject_name(icert) : X509_get_subject_name(x))) {
		pki_ssl_err(err, "setting certificate issuer");
		goto fail;
	}
	if (pki_add_extensions(x, icert, d, err) < 0)
		goto fail;
	if (!X509_sign(x, issuer ? issuer->key : key, EVP_sha256())) {
		pki_ssl_err(err, "signing a certificate");
		goto fail;
	}
	return x;
fail:
	X509_free(x);
	return NULL;
}

static struct pki_identity *pki_identity_make(const struct pki_identity *issuer,
					      const struct cert_desc *d, struct pp_err *err)
{
	struct pki_identity *id = calloc(1, sizeof(*id));

	if (!id) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building a certificate");
		return NULL;
	}
	id->key = pki_key_new(err);
	if (id->key)
		id->cert = pki_cert_build(id->key, issuer, d, err);
	if (!id->cert) {
		pki_identity_free(id);
		return NULL;
	}
	return id;
}

struct pki_identity *pki_new_ca(struct pp_err *err)
{
	const struct cert_desc d = { .org = PKI_CA_ORG, .is_ca = true,
				     .ext_key_usage = NID_server_auth };

	return pki_identity_make(NULL, &d, err);
}

struct pki_identity *pki_new_client(struct pp_err *err)
{
	const struct cert_desc d = { .org = PKI_CLIENT_ORG, .ext_key_usage = NID_client_auth };

	return pki_identity_make(NULL, &d, err);
}

/* A DNS name as it can appear in a certificate and be checked by a TLS client. */
static bool pki_dns_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > PKI_DNS_NAME_MAX || name[0] == '.' || name[0] == '-' || name[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

struct pki_identity *pki_issue_server_cert(const struct pki_identity *ca, const char *name,
					   struct pp_err *err)
{
	const struct cert_desc d = { .org = PKI_CA_ORG, .cn = name, .dns_name = name,
				     .ext_key_usage = NID_server_auth };

	if (!ca || !ca->key || !ca->cert) {
		pp_err_set(err, PP_FAILED_PRECONDITION, "issuing a server certificate: no CA");
		return NULL;
	}
	if (!name || !pki_dns_name_valid(name)) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "server certificate name %.260s is not a DNS name (letters, digits, '-', '.'; at most 253)",
			   name ? name : "(null)");
		return NULL;
	}
	return pki_identity_make(ca, &d, err);
}

void pki_identity_free(struct pki_identity *id)
{
	if (!id)
		return;
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	free(id);
}

/* Copies a memory BIO's contents into a NUL-terminated heap string. */
static char *pki_bio_to_string(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

char *pki_cert_to_pem(const X509 *cert, struct pp_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio && PEM_write_bio_X509(bio, (X509 *)cert))
		s = pki_bio_to_string(bio);
	BIO_free(bio);
	if (!s)
		pki_ssl_err(err, "encoding a certificate as PEM");
	return s;
}

/* PKCS#8 "PRIVATE KEY". The BIO is a secure-memory one, cleansed when freed. */
static char *pki_key_to_pem(EVP_PKEY *key, struct pp_err *err)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		s = pki_bio_to_string(bio);
	BIO_free(bio);
	if (!s)
		pki_ssl_err(err, "encoding a private key as PEM");
	return s;
}

int pki_identity_to_pem(const struct pki_identity *id, struct pki_pem *ret, struct pp_err *err)
{
	struct pki_pem pem = { 0 };

	pem.cert = pki_cert_to_pem(id->cert, err);
	if (pem.cert)
		pem.key = pki_key_to_pem(id->key, err);
	if (!pem.key) {
		pki_pem_free(&pem);
		return -1;
	}
	*ret = pem;
	return 0;
}

void pki_pem_free(struct pki_pem *pem)
{
	if (!pem)
		return;
	if (pem->key) {
		OPENSSL_cleanse(pem->key, strlen(pem->key));
		free(pem->key);
	}
	free(pem->cert);
	pem->key = NULL;
	pem->cert = NULL;
}

/* Parses; `what` names the source in errors ("certificate /x/ca.crt"). */
static X509 *pki_cert_parse(const char *pem, size_t len, const char *what, struct pp_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (!x) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not a PEM certificate: %s", what,
			   pki_ssl_reason());
		ERR_clear_error();
	}
	return x;
}

static EVP_PKEY *pki_key_parse(const char *pem, size_t len, const char *what, struct pp_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (!k) {
		/* the reason string names a format problem, never key bytes */
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not a PEM private key: %s", what,
			   pki_ssl_reason());
		ERR_clear_error();
	}
	return k;
}

static struct pki_identity *pki_identity_parse(const char *cert_pem, size_t cert_len,
					       const char *cert_what, const char *key_pem,
					       size_t key_len, const char *key_what,
					       struct pp_err *err)
{
	struct pki_identity *id = calloc(1, sizeof(*id));

	if (!id) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory loading %s", cert_what);
		return NULL;
	}
	if (cert_len > PKI_PEM_MAX || key_len > PKI_PEM_MAX) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s or %s is larger than %d bytes", cert_what,
			   key_what, PKI_PEM_MAX);
		goto fail;
	}
	id->cert = pki_cert_parse(cert_pem, cert_len, cert_what, err);
	if (!id->cert)
		goto fail;
	id->key = pki_key_parse(key_pem, key_len, key_what, err);
	if (!id->key)
		goto fail;
	if (X509_check_private_key(id->cert, id->key) != 1) {
		ERR_clear_error();
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s does not match the key in %s", cert_what,
			   key_what);
		goto fail;
	}
	return id;
fail:
	pki_identity_free(id);
	return NULL;
}

struct pki_identity *pki_identity_from_pem(const char *cert_pem, const char *key_pem,
					   struct pp_err *err)
{
	if (!cert_pem || !key_pem) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "certificate and key PEM are both required");
		return NULL;
	}
	return pki_identity_parse(cert_pem, strlen(cert_pem), "the certificate", key_pem,
				  strlen(key_pem), "the private key", err);
}

static void pki_buf_wipe(uint8_t *data, size_t len)
{
	if (!data)
		return;
	OPENSSL_cleanse(data, len);
	free(data);
}

struct pki_identity *pki_identity_from_files(const char *cert_path, const char *key_path,
					     struct pp_err *err)
{
	char cert_what[PKI_PATH_MAX + 16], key_what[PKI_PATH_MAX + 16];
	uint8_t *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	struct pki_identity *id = NULL;

	snprintf(cert_what, sizeof(cert_what), "certificate file %s", cert_path);
	snprintf(key_what, sizeof(key_what), "key file %s", key_path);
	if (file_read_all(cert_path, PKI_PEM_MAX, &cert, &cert_len, err) == 0 &&
	    file_read_all(key_path, PKI_PEM_MAX, &key, &key_len, err) == 0)
		id = pki_identity_parse((const char *)cert, cert_len, cert_what, (const char *)key,
					key_len, key_what, err);
	free(cert);
	pki_buf_wipe(key, key_len);
	return id;
}

/* ---- persistence ---- */

static int pki_path(char *buf, size_t size, const char *dir, const char *name, struct pp_err *err)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path %s/%s is too long", dir, name);
	return 0;
}

static bool pki_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int pki_identity_save(const struct pki_identity *id, const char *cert_path,
			     const char *key_path, struct pp_err *err)
{
	struct pki_pem pem;
	int rc;

	if (pki_identity_to_pem(id, &pem, err) < 0)
		return -1;
	/* key first: a certificate on disk always has its key next to it */
	rc = file_write_atomic(key_path, pem.key, strlen(pem.key), 0600, err);
	if (rc == 0)
		rc = file_write_atomic(cert_path, pem.cert, strlen(pem.cert), 0644, err);
	pki_pem_free(&pem);
	return rc;
}

static bool pki_cert_expired(const X509 *cert)
{
	return X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0;
}

/* Checks a loaded identity is what pki_load_or_create made: a CA for the CA slot, a
 * client-auth certificate for the client slot. */
static int pki_identity_check_kind(const struct pki_identity *id, bool want_ca,
				   const char *cert_path, struct pp_err *err)
{
	int is_ca = X509_check_ca(id->cert) != 0;

	if (want_ca && !is_ca)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "certificate file %s is not a CA certificate", cert_path);
	if (!want_ca && is_ca)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "certificate file %s is a CA certificate, expected a client certificate",
				  cert_path);
	return 0;
}

/* Loads one identity, or creates and saves it when its certificate file is absent or
 * expired. */
static struct pki_identity *pki_load_or_create_one(const char *dir, const char *base, bool is_ca,
						   struct pp_err *err)
{
	char cert_path[PKI_PATH_MAX], key_path[PKI_PATH_MAX], name[32];
	struct pki_identity *id = NULL;

	snprintf(name, sizeof(name), "%s.crt", base);
	if (pki_path(cert_path, sizeof(cert_path), dir, name, err) < 0)
		return NULL;
	snprintf(name, sizeof(name), "%s.key", base);
	if (pki_path(key_path, sizeof(key_path), dir, name, err) < 0)
		return NULL;

	if (pki_file_exists(cert_path)) {
		id = pki_identity_from_files(cert_path, key_path, err);
		if (!id)
			return NULL;
		if (pki_identity_check_kind(id, is_ca, cert_path, err) < 0) {
			pki_identity_free(id);
			return NULL;
		}
		if (!pki_cert_expired(id->cert))
			return id;
		log_warn("TLS certificate expired, replacing it", "cert=%s", cert_path);
		pki_identity_free(id);
	}
	id = is_ca ? pki_new_ca(err) : pki_new_client(err);
	if (id && pki_identity_save(id, cert_path, key_path, err) < 0) {
		pki_identity_free(id);
		return NULL;
	}
	if (id)
		log_info("TLS identity created", "cert=%s", cert_path);
	return id;
}

static int pki_tls_dir(const char *state_dir, char *dir, size_t size, struct pp_err *err)
{
	if (pki_path(dir, size, state_dir, PKI_TLS_SUBDIR, err) < 0)
		return -1;
	if (mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (chmod(dir, 0700) < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "chmod 0700 %s", dir);
	return 0;
}

int pki_load_or_create(const char *state_dir, struct pki_store *ret, struct pp_err *err)
{
	char dir[PKI_PATH_MAX];
	struct pki_store st = { 0 };

	if (pki_tls_dir(state_dir, dir, sizeof(dir), err) < 0)
		return -1;
	st.ca = pki_load_or_create_one(dir, "ca", true, err);
	if (st.ca)
		st.client = pki_load_or_create_one(dir, "client", false, err);
	if (!st.client) {
		pki_store_fini(&st);
		return -1;
	}
	*ret = st;
	return 0;
}

void pki_store_fini(struct pki_store *st)
{
	if (!st)
		return;
	pki_identity_free(st->ca);
	pki_identity_free(st->client);
	st->ca = NULL;
	st->client = NULL;
}
