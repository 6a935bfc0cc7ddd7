/*
 * Tests of lib/tls: mutual TLS between an adaptor-like client and a forwarder-like server over
 * loopback TCP, through the non-blocking stream API. What a user relies on: the right peers
 * connect and exchange data; a wrong client certificate, a server certificate for another
 * instance or from another CA are refused with a message that says so; the TLS profile
 * refuses what upstream refuses, and the suites it names are the ones negotiated.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/pki.h"
#include "lib/tls.h"
#include "tls_harness.h"

#define NAME "podvm-web-0-0123abcd"

struct ids {
	struct pki_identity *ca;
	struct pki_identity *client;
	struct pki_identity *server;   /* issued by ca for NAME */
};

static int ids_setup(void **state)
{
	struct pp_err err = { 0 };
	struct ids *ids = calloc(1, sizeof(*ids));

	ids->ca = pki_new_ca(&err);
	ids->client = pki_new_client(&err);
	ids->server = ids->ca ? pki_issue_server_cert(ids->ca, NAME, &err) : NULL;
	if (!ids->server || !ids->client)
		return -1;
	*state = ids;
	return 0;
}

static int ids_teardown(void **state)
{
	struct ids *ids = *state;

	pki_identity_free(ids->ca);
	pki_identity_free(ids->client);
	pki_identity_free(ids->server);
	free(ids);
	return 0;
}

/* Automatic mode: the server trusts exactly the self-signed client certificate. */
static SSL_CTX *server_ctx(const struct pki_identity *srv, X509 *client_anchor)
{
	struct pp_err err = { 0 };
	STACK_OF(X509) *anchors = client_anchor ? harness_stack1(client_anchor) : NULL;
	SSL_CTX *ctx = tls_server_ctx_new(NULL, srv, anchors, &err);

	tls_certs_free(anchors);
	assert_non_null(ctx);
	return ctx;
}

static SSL_CTX *client_ctx(const struct pki_identity *cli, X509 *ca)
{
	struct pp_err err = { 0 };
	STACK_OF(X509) *anchors = harness_stack1(ca);
	SSL_CTX *ctx = tls_client_ctx_new(NULL, cli, anchors, &err);

	tls_certs_free(anchors);
	assert_non_null(ctx);
	return ctx;
}

struct conn {
	struct stream *c;
	struct stream *s;
	struct harness_hs hs;
};

/* Connects a client and a server stream over loopback and runs both handshakes. */
static void connect_pair(SSL_CTX *cctx, SSL_CTX *sctx, const char *expect, struct conn *out)
{
	struct pp_err err = { 0 };
	int cfd, sfd;

	assert_int_equal(harness_tcp_pair(&cfd, &sfd), 0);
	out->c = tls_stream_new(cctx, cfd, false, expect, &err);
	assert_non_null(out->c);
	out->s = tls_stream_new(sctx, sfd, true, NULL, &err);
	assert_non_null(out->s);
	assert_true(strncmp(out->c->peer, "127.0.0.1:", 10) == 0);
	harness_handshake(out->c, out->s, &out->hs);
}

static void conn_close(struct conn *k)
{
	stream_free(k->c);
	stream_free(k->s);
}

/* ---- the good path ---- */

static void test_mutual_tls_data_round_trip(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->server, ids->client->cert);
	SSL_CTX *c = client_ctx(ids->client, ids->ca->cert);
	struct conn k;
	char buf[16];

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.client_rc, 1);
	assert_int_equal(k.hs.server_rc, 1);
	/* both directions, small and large (the large one takes many EAGAIN rounds) */
	assert_int_equal(stream_write(k.c, "ping", 4), 4);
	assert_int_equal(harness_read(k.s, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(stream_write(k.s, "pong!", 5), 5);
	assert_int_equal(harness_read(k.c, buf, 2), 2);
	assert_int_equal(stream_pending(k.c), 3);    /* the rest of the record is buffered */
	assert_int_equal(stream_read(k.c, buf + 2, sizeof(buf) - 2), 3);
	assert_memory_equal(buf, "pong!", 5);
	assert_int_equal(harness_transfer(k.c, k.s, 3u << 20), 0);
	assert_int_equal(harness_transfer(k.s, k.c, 1u << 20), 0);
	/* orderly close: the peer reads end of stream */
	stream_free(k.c);
	k.c = NULL;
	assert_int_equal(harness_read(k.s, buf, sizeof(buf)), 0);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* Writing to a peer that went away is an error, not a SIGPIPE that kills the daemon. */
static void test_write_after_peer_closed_is_error(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->server, ids->client->cert);
	SSL_CTX *c = client_ctx(ids->client, ids->ca->cert);
	static char chunk[16384];
	struct conn k;
	ssize_t r = 1;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.server_rc, 1);
	stream_free(k.s);
	k.s = NULL;
	for (int i = 0; i < 1000 && (r > 0 || errno == EAGAIN); i++)
		r = stream_write(k.c, chunk, sizeof(chunk));
	assert_int_equal(r, -1);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* The forwarder without tls-client-ca does not ask for a client certificate. */
static void test_server_without_client_ca(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->server, NULL);
	SSL_CTX *c = client_ctx(NULL, ids->ca->cert);
	struct conn k;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.client_rc, 1);
	assert_int_equal(k.hs.server_rc, 1);
	assert_int_equal(harness_transfer(k.c, k.s, 1000), 0);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* ---- refusals ---- */

/* After a refused client certificate, the client fails too: in its handshake (TLS 1.2) or
 * at its first read (TLS 1.3, where the client finishes before the server has checked it). */
static void assert_client_refused(struct conn *k)
{
	char buf[8];

	if (k->hs.client_rc == 1) {
		assert_int_equal(harness_read(k->c, buf, sizeof(buf)), -1);
		assert_int_not_equal(errno, EAGAIN);
	} else {
		assert_int_equal(k->hs.client_rc, -1);
	}
}

static void test_wrong_client_cert_refused(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct pki_identity *intruder = pki_new_client(&err);   /* same subject, other key */
	SSL_CTX *s = server_ctx(ids->server, ids->client->cert);
	SSL_CTX *c = client_ctx(intruder, ids->ca->cert);
	struct conn k;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.server_rc, -1);
	assert_int_equal(k.hs.server_err.code, PP_UNAUTHENTICATED);
	assert_non_null(strstr(k.hs.server_err.msg, "TLS handshake with 127.0.0.1:"));
	assert_non_null(strstr(k.hs.server_err.msg, "certificate verify failed"));
	assert_client_refused(&k);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	pki_identity_free(intruder);
}

static void test_missing_client_cert_refused(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->server, ids->client->cert);
	SSL_CTX *c = client_ctx(NULL, ids->ca->cert);
	struct conn k;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.server_rc, -1);
	assert_int_equal(k.hs.server_err.code, PP_UNAUTHENTICATED);
	assert_non_null(strstr(k.hs.server_err.msg, "peer did not return a certificate"));
	assert_client_refused(&k);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void test_server_cert_for_other_name_refused(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->server, ids->client->cert);
	SSL_CTX *c = client_ctx(ids->client, ids->ca->cert);
	struct conn k;
	char want[200];

	connect_pair(c, s, "podvm-x", &k);
	assert_int_equal(k.hs.client_rc, -1);
	assert_int_equal(k.hs.client_err.code, PP_UNAUTHENTICATED);
	snprintf(want, sizeof(want),
		 "TLS handshake with %s failed: certificate verify failed: hostname mismatch (expected podvm-x)",
		 k.c->peer);
	assert_string_equal(k.hs.client_err.msg, want);
	/* the server hears why: the client refused its certificate */
	assert_int_equal(k.hs.server_rc, -1);
	assert_int_equal(k.hs.server_err.code, PP_UNAUTHENTICATED);
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void test_server_cert_from_other_ca_refused(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct pki_identity *ca2 = pki_new_ca(&err);
	struct pki_identity *srv2 = pki_issue_server_cert(ca2, NAME, &err);   /* right name */
	SSL_CTX *s = server_ctx(srv2, ids->client->cert);
	SSL_CTX *c = client_ctx(ids->client, ids->ca->cert);
	struct conn k;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.client_rc, -1);
	assert_int_equal(k.hs.client_err.code, PP_UNAUTHENTICATED);
	assert_non_null(strstr(k.hs.client_err.msg, "certificate verify failed: unable to get local issuer certificate"));
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	pki_identity_free(srv2);
	pki_identity_free(ca2);
}

/* A client certificate presented as a server certificate: right key usage is checked too. */
static void test_client_cert_as_server_refused(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *s = server_ctx(ids->client, ids->client->cert);
	SSL_CTX *c = client_ctx(ids->client, ids->client->cert);   /* "trusts" it even */
	struct conn k;

	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.client_rc, -1);
	assert_non_null(strstr(k.hs.client_err.msg, "certificate verify failed"));
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void test_client_ctx_needs_ca(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };

	assert_null(tls_client_ctx_new(NULL, ids->client, NULL, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_null(tls_server_ctx_new(NULL, NULL, NULL, &err));
}

static void test_client_stream_needs_server_name(void **state)
{
	struct ids *ids = *state;
	SSL_CTX *c = client_ctx(ids->client, ids->ca->cert);
	struct pp_err err = { 0 };
	int cfd, sfd;

	assert_int_equal(harness_tcp_pair(&cfd, &sfd), 0);
	assert_null(tls_stream_new(c, cfd, false, "", &err));   /* cfd is closed by the call */
	assert_non_null(strstr(err.msg, "server name"));
	close(sfd);
	SSL_CTX_free(c);
}

/* ---- profile ---- */

static void test_profile_versions(void **state)
{
	(void)state;
	struct tls_profile p;
	struct pp_err err = { 0 };

	assert_int_equal(tls_profile_parse(NULL, NULL, 0, &p, &err), 0);
	assert_int_equal(p.min_version, TLS1_2_VERSION);
	assert_string_equal(p.cipher_list, "");
	assert_int_equal(tls_profile_parse("VersionTLS12", NULL, 0, &p, &err), 0);
	assert_int_equal(p.min_version, TLS1_2_VERSION);
	assert_int_equal(tls_profile_parse("VersionTLS13", NULL, 0, &p, &err), 0);
	assert_int_equal(p.min_version, TLS1_3_VERSION);
	assert_int_equal(tls_profile_parse("VersionTLS11", NULL, 0, &p, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "VersionTLS11"));
	assert_int_equal(tls_profile_parse("VersionTLS10", NULL, 0, &p, &err), -1);
	assert_non_null(strstr(err.msg, "VersionTLS10"));
	assert_int_equal(tls_profile_parse("TLS1.3", NULL, 0, &p, &err), -1);
	assert_non_null(strstr(err.msg, "TLS1.3"));
}

static void test_profile_suites(void **state)
{
	(void)state;
	struct tls_profile p;
	struct pp_err err = { 0 };
	const char *good[] = { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
			       "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
			       "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",     /* duplicate: once */
			       "TLS_AES_128_GCM_SHA256" };                    /* TLS 1.3: ignored */
	const char *bad[] = { "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA" };
	const char *only13[] = { "TLS_AES_256_GCM_SHA384" };

	const char *subs[] = { "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
			       "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" };   /* Go's alias */

	assert_int_equal(tls_profile_parse("VersionTLS12", good, 4, &p, &err), 0);
	assert_string_equal(p.cipher_list, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
	/* a name that is a substring of another one already listed is still added */
	assert_int_equal(tls_profile_parse(NULL, subs, 3, &p, &err), 0);
	assert_string_equal(p.cipher_list, "ECDHE-ECDSA-AES128-SHA:AES128-SHA:ECDHE-RSA-CHACHA20-POLY1305");
	assert_int_equal(tls_profile_parse(NULL, bad, 2, &p, &err), -1);
	assert_non_null(strstr(err.msg, "TLS_RSA_WITH_RC4_128_SHA"));
	assert_int_equal(tls_profile_parse("VersionTLS13", good, 1, &p, &err), -1);
	assert_non_null(strstr(err.msg, "VersionTLS13"));
	assert_int_equal(tls_profile_parse(NULL, only13, 1, &p, &err), -1);

	assert_int_equal(tls_profile_parse_csv(NULL, " TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ,"
					       "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", &p, &err), 0);
	assert_string_equal(p.cipher_list, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305");
	assert_int_equal(tls_profile_parse_csv("VersionTLS13", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
					       &p, &err), -1);
	assert_int_equal(tls_profile_parse_csv("VersionTLS13", "", &p, &err), 0);
	assert_int_equal(tls_profile_parse_csv(NULL, "TLS_BOGUS", &p, &err), -1);
	assert_non_null(strstr(err.msg, "TLS_BOGUS"));
	assert_string_equal(tls_cipher_openssl_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
			    "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_null(tls_cipher_openssl_name("TLS_NOPE"));
}

/* Both ends limited to TLS 1.2 with their own suites: they connect only if the suites meet.
 * This shows the profile is what the context negotiates, not just what it parses. */
static int connect_tls12(struct ids *ids, const char *client_suite, const char *server_suite)
{
	struct tls_profile cp, sp;
	struct pp_err err = { 0 };
	STACK_OF(X509) *ca = harness_stack1(ids->ca->cert), *cl = harness_stack1(ids->client->cert);
	SSL_CTX *c, *s;
	struct conn k;
	int ok;

	assert_int_equal(tls_profile_parse(NULL, &client_suite, 1, &cp, &err), 0);
	assert_int_equal(tls_profile_parse(NULL, &server_suite, 1, &sp, &err), 0);
	c = tls_client_ctx_new(&cp, ids->client, ca, &err);
	s = tls_server_ctx_new(&sp, ids->server, cl, &err);
	assert_non_null(c);
	assert_non_null(s);
	SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION);
	connect_pair(c, s, NAME, &k);
	ok = k.hs.client_rc == 1 && k.hs.server_rc == 1;
	if (!ok)
		assert_non_null(strstr(k.hs.server_err.msg, "no shared cipher"));
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	tls_certs_free(ca);
	tls_certs_free(cl);
	return ok;
}

static void test_profile_suites_negotiated(void **state)
{
	struct ids *ids = *state;

	assert_true(connect_tls12(ids, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
				  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"));
	assert_false(connect_tls12(ids, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
				   "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"));
}

/* A VersionTLS13 server refuses a client that stops at TLS 1.2. */
static void test_profile_min_version_enforced(void **state)
{
	struct ids *ids = *state;
	struct tls_profile p13;
	struct pp_err err = { 0 };
	STACK_OF(X509) *cl = harness_stack1(ids->client->cert);
	SSL_CTX *s, *c = client_ctx(ids->client, ids->ca->cert);
	struct conn k;

	assert_int_equal(tls_profile_parse("VersionTLS13", NULL, 0, &p13, &err), 0);
	s = tls_server_ctx_new(&p13, ids->server, cl, &err);
	assert_non_null(s);
	SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
	connect_pair(c, s, NAME, &k);
	assert_int_equal(k.hs.server_rc, -1);
	assert_int_equal(k.hs.client_rc, -1);
	assert_non_null(strstr(k.hs.server_err.msg, "protocol"));
	conn_close(&k);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	tls_certs_free(cl);
}

/* ---- trust anchors from PEM ---- */

static void test_certs_from_pem(void **state)
{
	struct ids *ids = *state;
	struct pp_err err = { 0 };
	struct pki_pem a, b;
	char bundle[16384];
	STACK_OF(X509) *st;

	assert_int_equal(pki_identity_to_pem(ids->ca, &a, &err), 0);
	assert_int_equal(pki_identity_to_pem(ids->client, &b, &err), 0);
	snprintf(bundle, sizeof(bundle), "%s%s", a.cert, b.cert);
	st = tls_certs_from_pem(bundle, &err);
	assert_non_null(st);
	assert_int_equal(sk_X509_num(st), 2);
	assert_int_equal(X509_cmp(sk_X509_value(st, 1), ids->client->cert), 0);
	tls_certs_free(st);

	assert_null(tls_certs_from_pem(a.key, &err));   /* a key is not a certificate */
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_null(tls_certs_from_pem("", &err));
	snprintf(bundle, sizeof(bundle), "%s-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
		 a.cert);
	assert_null(tls_certs_from_pem(bundle, &err));   /* a broken block is not skipped */
	pki_pem_free(&a);
	pki_pem_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutual_tls_data_round_trip),
		cmocka_unit_test(test_write_after_peer_closed_is_error),
		cmocka_unit_test(test_server_without_client_ca),
		cmocka_unit_test(test_wrong_client_cert_refused),
		cmocka_unit_test(test_missing_client_cert_refused),
		cmocka_unit_test(test_server_cert_for_other_name_refused),
		cmocka_unit_test(test_server_cert_from_other_ca_refused),
		cmocka_unit_test(test_client_cert_as_server_refused),
		cmocka_unit_test(test_client_ctx_needs_ca),
		cmocka_unit_test(test_client_stream_needs_server_name),
		cmocka_unit_test(test_profile_versions),
		cmocka_unit_test(test_profile_suites),
		cmocka_unit_test(test_profile_suites_negotiated),
		cmocka_unit_test(test_profile_min_version_enforced),
		cmocka_unit_test(test_certs_from_pem),
	};

	return cmocka_run_group_tests(tests, ids_setup, ids_teardown);
}
