/*
 * Tests of lib/pki: the three kinds of certificates carry exactly the attributes of spec §6.2
 * (what a Go forwarder or adaptor checks), PEM round trips, and the persistent store in
 * <state_dir>/tls: same identities after a restart, 0600 keys, clear errors naming a corrupt
 * file, recovery from a crash between writing a key and its certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/fileutil.h"
#include "lib/pki.h"

#define DAY_SECS (24 * 60 * 60)

/* ---- helpers ---- */

static void subject_text(const X509 *x, int nid, char *buf, int size)
{
	buf[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, size);
}

static bool has_subject_entry(const X509 *x, int nid)
{
	return X509_NAME_get_index_by_NID(X509_get_subject_name(x), nid, -1) >= 0;
}

static void assert_common_attributes(X509 *x, EVP_PKEY *key)
{
	char group[32];
	size_t glen;
	int days = 0, secs = 0;
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	time_t now = time(NULL);

	/* ECDSA P-256 key, signed with ECDSA-SHA256 */
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	/* serial: random, at most 128 bits */
	assert_non_null(bn);
	assert_true(BN_num_bits(bn) <= 128);
	assert_true(BN_num_bits(bn) > 64);   /* 2^-64 chance of a false failure */
	BN_free(bn);
	/* notBefore = now - 5 min; notAfter = notBefore + 730 days */
	time_t lo = now - 5 * 60 - 60, hi = now - 5 * 60 + 60;
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &lo) > 0);
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &hi) < 0);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	assert_int_equal(days, 730);
	assert_int_equal(secs, 0);
	/* KeyUsage digitalSignature | keyCertSign, basicConstraints present */
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN);
	assert_true(X509_get_extension_flags(x) & EXFLAG_BCONS);
	assert_int_equal(X509_check_private_key(x, key), 1);
}

static void assert_serials_differ(X509 *a, X509 *b)
{
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
}

/* ---- certificate contents ---- */

static void test_ca_attributes(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *ca = pki_new_ca(&err), *ca2 = pki_new_ca(&err);
	char org[128];

	assert_non_null(ca);
	assert_non_null(ca2);
	assert_common_attributes(ca->cert, ca->key);
	assert_int_equal(X509_check_ca(ca->cert), 1);
	subject_text(ca->cert, NID_organizationName, org, sizeof(org));
	assert_string_equal(org, "agent-protocol-forwarder");
	assert_false(has_subject_entry(ca->cert, NID_commonName));
	assert_true(X509_get_extended_key_usage(ca->cert) & XKU_SSL_SERVER);
	assert_int_equal(X509_check_issued(ca->cert, ca->cert), X509_V_OK);   /* self-signed */
	assert_serials_differ(ca->cert, ca2->cert);
	pki_identity_free(ca);
	pki_identity_free(ca2);
}

static void test_client_attributes(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *c = pki_new_client(&err);
	char org[128];

	assert_non_null(c);
	assert_common_attributes(c->cert, c->key);
	assert_int_equal(X509_check_ca(c->cert), 0);
	subject_text(c->cert, NID_organizationName, org, sizeof(org));
	assert_string_equal(org, "cloud-api-adaptor");
	assert_false(has_subject_entry(c->cert, NID_commonName));
	assert_true(X509_get_ext_by_NID(c->cert, NID_subject_alt_name, -1) < 0);
	assert_int_equal(X509_get_extended_key_usage(c->cert), XKU_SSL_CLIENT);
	assert_int_equal(X509_check_issued(c->cert, c->cert), X509_V_OK);
	pki_identity_free(c);
}

static void test_server_attributes(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *ca = pki_new_ca(&err);
	struct pki_identity *s = pki_issue_server_cert(ca, "podvm-web-0-0123abcd", &err);
	struct pki_identity *other = pki_new_ca(&err);
	char org[128], cn[128];

	assert_non_null(s);
	assert_common_attributes(s->cert, s->key);
	assert_int_equal(X509_check_ca(s->cert), 0);
	subject_text(s->cert, NID_organizationName, org, sizeof(org));
	assert_string_equal(org, "agent-protocol-forwarder");
	subject_text(s->cert, NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "podvm-web-0-0123abcd");
	assert_int_equal(X509_check_host(s->cert, "podvm-web-0-0123abcd", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(s->cert, "podvm-web-1-0123abcd", 0, 0, NULL), 0);
	assert_int_equal(X509_get_extended_key_usage(s->cert), XKU_SSL_SERVER);
	/* issued and signed by the CA, not by another one */
	assert_int_equal(X509_check_issued(ca->cert, s->cert), X509_V_OK);
	assert_int_equal(X509_verify(s->cert, ca->key), 1);
	assert_int_not_equal(X509_verify(s->cert, other->key), 1);
	assert_false(X509_check_private_key(s->cert, ca->key) == 1);
	pki_identity_free(s);
	pki_identity_free(ca);
	pki_identity_free(other);
}

/* An issued certificate never outlives its CA. */
static void test_server_validity_clamped(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *ca = pki_new_ca(&err);
	struct pki_identity *s;
	time_t soon = time(NULL) + 3 * DAY_SECS;

	assert_non_null(ca);
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(ca->cert), 0, 0, &soon));
	assert_true(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
	s = pki_issue_server_cert(ca, "podvm-x", &err);
	assert_non_null(s);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(s->cert), X509_get0_notAfter(ca->cert)), 0);
	pki_identity_free(s);
	pki_identity_free(ca);
}

static void test_server_name_checked(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *ca = pki_new_ca(&err);
	char long_name[201];
	struct pki_identity *s;
	char cn[256];

	assert_null(pki_issue_server_cert(ca, "podvm-x,DNS:evil.example", &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "podvm-x,DNS:evil.example"));
	assert_null(pki_issue_server_cert(ca, "", &err));
	assert_null(pki_issue_server_cert(NULL, "podvm-x", &err));
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);

	/* names longer than X.520's 64-character CN bound still work (as in Go) */
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memcpy(long_name, "podvm-", 6);
	s = pki_issue_server_cert(ca, long_name, &err);
	assert_non_null(s);
	subject_text(s->cert, NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, long_name);
	assert_int_equal(X509_check_host(s->cert, long_name, 0, 0, NULL), 1);
	pki_identity_free(s);
	pki_identity_free(ca);
}

/* ---- PEM ---- */

static void test_pem_round_trip(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *c = pki_new_client(&err), *back;
	struct pki_pem pem;

	assert_int_equal(pki_identity_to_pem(c, &pem, &err), 0);
	assert_true(strncmp(pem.cert, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
	assert_true(strncmp(pem.key, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);   /* PKCS#8 */
	back = pki_identity_from_pem(pem.cert, pem.key, &err);
	assert_non_null(back);
	assert_int_equal(X509_cmp(back->cert, c->cert), 0);
	assert_int_equal(EVP_PKEY_eq(back->key, c->key), 1);
	pki_pem_free(&pem);
	assert_null(pem.key);
	pki_pem_free(&pem);   /* twice is harmless */
	pki_identity_free(back);
	pki_identity_free(c);
}

static void test_pem_errors(void **state)
{
	(void)state;
	struct pp_err err = { 0 };
	struct pki_identity *a = pki_new_client(&err), *b = pki_new_client(&err);
	struct pki_pem pa, pb;

	assert_int_equal(pki_identity_to_pem(a, &pa, &err), 0);
	assert_int_equal(pki_identity_to_pem(b, &pb, &err), 0);
	/* a certificate with someone else's key */
	assert_null(pki_identity_from_pem(pa.cert, pb.key, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "does not match"));
	/* not PEM at all; a key where the certificate should be */
	assert_null(pki_identity_from_pem("hello", pa.key, &err));
	assert_non_null(strstr(err.msg, "not a PEM certificate"));
	assert_null(pki_identity_from_pem(pa.cert, pa.cert, &err));
	assert_non_null(strstr(err.msg, "not a PEM private key"));
	assert_null(pki_identity_from_pem(NULL, pa.key, &err));
	pki_pem_free(&pa);
	pki_pem_free(&pb);
	pki_identity_free(a);
	pki_identity_free(b);
}

/* ---- persistence ---- */

struct tmpdir {
	char path[64];
};

static int tmpdir_setup(void **state)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	snprintf(t->path, sizeof(t->path), "/tmp/pp-pki-XXXXXX");
	if (!mkdtemp(t->path))
		return -1;
	*state = t;
	return 0;
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err;

	rm_rf(t->path, &err);
	free(t);
	return 0;
}

static void tpath(char *buf, size_t size, const struct tmpdir *t, const char *name)
{
	snprintf(buf, size, "%s/tls/%s", t->path, name);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_store_created_then_reused(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b;
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	assert_int_equal(X509_check_ca(a.ca->cert), 1);
	assert_int_equal(X509_get_extended_key_usage(a.client->cert), XKU_SSL_CLIENT);
	snprintf(p, sizeof(p), "%s/tls", t->path);
	assert_int_equal(file_mode(p), 0700);
	tpath(p, sizeof(p), t, "ca.key");
	assert_int_equal(file_mode(p), 0600);
	tpath(p, sizeof(p), t, "client.key");
	assert_int_equal(file_mode(p), 0600);
	tpath(p, sizeof(p), t, "ca.crt");
	assert_int_equal(file_mode(p) & 077, 044);   /* certificates are public */

	/* a restart: the same identities */
	assert_int_equal(pki_load_or_create(t->path, &b, &err), 0);
	assert_int_equal(X509_cmp(a.ca->cert, b.ca->cert), 0);
	assert_int_equal(X509_cmp(a.client->cert, b.client->cert), 0);
	assert_int_equal(EVP_PKEY_eq(a.ca->key, b.ca->key), 1);
	assert_int_equal(EVP_PKEY_eq(a.client->key, b.client->key), 1);
	pki_store_fini(&a);
	pki_store_fini(&b);
	pki_store_fini(&b);   /* idempotent */
}

static void test_store_corrupt_key_named(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b = { 0 };
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	pki_store_fini(&a);
	tpath(p, sizeof(p), t, "ca.key");
	write_text(p, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
	assert_int_equal(pki_load_or_create(t->path, &b, &err), -1);
	assert_non_null(strstr(err.msg, p));
	assert_null(b.ca);
	/* not replaced behind the operator's back */
	tpath(p, sizeof(p), t, "ca.crt");
	assert_int_equal(access(p, F_OK), 0);
}

static void test_store_corrupt_cert_named(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b = { 0 };
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	pki_store_fini(&a);
	tpath(p, sizeof(p), t, "client.crt");
	write_text(p, "garbage\n");
	assert_int_equal(pki_load_or_create(t->path, &b, &err), -1);
	assert_non_null(strstr(err.msg, p));
	assert_null(b.client);
}

/* A certificate without its key is an error naming the key file. */
static void test_store_missing_key_named(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b = { 0 };
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	pki_store_fini(&a);
	tpath(p, sizeof(p), t, "client.key");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(pki_load_or_create(t->path, &b, &err), -1);
	assert_non_null(strstr(err.msg, p));
}

/* A crash after writing ca.key but before ca.crt: the identity is simply made again. */
static void test_store_key_without_cert_regenerated(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b;
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	tpath(p, sizeof(p), t, "ca.crt");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(pki_load_or_create(t->path, &b, &err), 0);
	assert_int_not_equal(X509_cmp(a.ca->cert, b.ca->cert), 0);
	assert_int_equal(EVP_PKEY_eq(a.ca->key, b.ca->key) == 1, 0);
	assert_int_equal(X509_cmp(a.client->cert, b.client->cert), 0);   /* untouched */
	assert_int_equal(access(p, F_OK), 0);
	pki_store_fini(&a);
	pki_store_fini(&b);
}

/* Certificates in the wrong slot are refused, not used. */
static void test_store_wrong_kind_refused(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b = { 0 };
	struct pki_pem pem;
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	assert_int_equal(pki_identity_to_pem(a.client, &pem, &err), 0);
	tpath(p, sizeof(p), t, "ca.key");
	write_text(p, pem.key);
	tpath(p, sizeof(p), t, "ca.crt");
	write_text(p, pem.cert);
	assert_int_equal(pki_load_or_create(t->path, &b, &err), -1);
	assert_non_null(strstr(err.msg, "not a CA certificate"));
	assert_non_null(strstr(err.msg, p));
	pki_pem_free(&pem);
	pki_store_fini(&a);
}

/* An expired certificate is replaced by a fresh one. */
static void test_store_expired_replaced(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	struct pki_store a, b;
	time_t past = time(NULL) - 1000 * DAY_SECS;
	char *pem;
	char p[256];

	assert_int_equal(pki_load_or_create(t->path, &a, &err), 0);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(a.client->cert), 0, 0, &past));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(a.client->cert), 1, 0, &past));
	assert_true(X509_sign(a.client->cert, a.client->key, EVP_sha256()) > 0);
	pem = pki_cert_to_pem(a.client->cert, &err);
	assert_non_null(pem);
	tpath(p, sizeof(p), t, "client.crt");
	write_text(p, pem);
	free(pem);
	assert_int_equal(pki_load_or_create(t->path, &b, &err), 0);
	assert_int_not_equal(X509_cmp(a.client->cert, b.client->cert), 0);
	assert_true(X509_cmp_current_time(X509_get0_notAfter(b.client->cert)) > 0);
	assert_int_equal(X509_cmp(a.ca->cert, b.ca->cert), 0);
	pki_store_fini(&a);
	pki_store_fini(&b);
}

static void test_identity_from_files_errors(void **state)
{
	struct tmpdir *t = *state;
	struct pp_err err = { 0 };
	char crt[256], key[256];

	snprintf(crt, sizeof(crt), "%s/missing.crt", t->path);
	snprintf(key, sizeof(key), "%s/missing.key", t->path);
	assert_null(pki_identity_from_files(crt, key, &err));
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, crt));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_attributes),
		cmocka_unit_test(test_client_attributes),
		cmocka_unit_test(test_server_attributes),
		cmocka_unit_test(test_server_validity_clamped),
		cmocka_unit_test(test_server_name_checked),
		cmocka_unit_test(test_pem_round_trip),
		cmocka_unit_test(test_pem_errors),
		cmocka_unit_test_setup_teardown(test_store_created_then_reused, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_corrupt_key_named, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_corrupt_cert_named, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_missing_key_named, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_key_without_cert_regenerated, tmpdir_setup,
						tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_wrong_kind_refused, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_store_expired_replaced, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_identity_from_files_errors, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
