/*
 * TLS profile, SSL_CTX construction and the TLS stream (see tls.h).
 *
 * The one idea: an SSL object is a state machine the event loop drives. Every SSL_* call that
 * cannot make progress says which direction it waits for (SSL_ERROR_WANT_READ/WRITE); the
 * stream records that in `want` and returns EAGAIN, and the caller calls again once the fd is
 * ready. The socket is reached through a tiny BIO of our own that uses send(MSG_NOSIGNAL), so
 * a vanished peer is an EPIPE error and never a SIGPIPE, as for plain streams.
 */
#include "lib/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/util.h"

#define TLS_NAME_MAX 128      /* longest cipher suite name we accept in a list */

/* Used when no suites are configured: forward-secret AEAD suites only, both key types. */
#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* ---- profile ---- */

struct tls_cipher_name {
	const char *iana;
	const char *openssl;   /* NULL: a TLS 1.3 suite, accepted and ignored */
};

/* The names Kubernetes' component-base (and therefore upstream) accepts that OpenSSL 3 can
 * still offer, plus Go's short CHACHA20 aliases. */
static const struct tls_cipher_name tls_ciphers[] = {
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305" },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256" },
	{ "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256" },
	{ "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384" },
	{ "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA" },
	{ "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA" },
	{ "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256" },
	{ "TLS_AES_128_GCM_SHA256", NULL },
	{ "TLS_AES_256_GCM_SHA384", NULL },
	{ "TLS_CHACHA20_POLY1305_SHA256", NULL },
};

static const struct tls_cipher_name *tls_cipher_find(const char *iana)
{
	for (size_t i = 0; i < PP_ARRAY_SIZE(tls_ciphers); i++)
		if (strcmp(tls_ciphers[i].iana, iana) == 0)
			return &tls_ciphers[i];
	return NULL;
}

const char *tls_cipher_openssl_name(const char *iana)
{
	const struct tls_cipher_name *c = iana ? tls_cipher_find(iana) : NULL;

	return c ? c->openssl : NULL;
}

static int tls_min_version_parse(const char *s, int *ret, struct pp_err *err)
{
	if (!s || !*s || strcmp(s, "VersionTLS12") == 0) {
		*ret = TLS1_2_VERSION;
		return 0;
	}
	if (strcmp(s, "VersionTLS13") == 0) {
		*ret = TLS1_3_VERSION;
		return 0;
	}
	if (strcmp(s, "VersionTLS10") == 0 || strcmp(s, "VersionTLS11") == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "TLS minimum version %s is not allowed (TLS 1.2 is the floor): use VersionTLS12 or VersionTLS13",
				  s);
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "unknown TLS minimum version %.64s (expected VersionTLS12 or VersionTLS13)", s);
}

/* Whether the ':'-separated list holds name as a whole element ("AES128-SHA" is not in
 * "ECDHE-RSA-AES128-SHA"). */
static bool tls_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p; p += strcspn(p, ":"), p += *p == ':') {
		if (strncmp(p, name, n) == 0 && (p[n] == ':' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* Appends ":name" (or "name") to list; fails if the list would not fit. */
static int tls_list_append(char *list, size_t size, const char *name, struct pp_err *err)
{
	size_t n = strlen(list);
	int w = snprintf(list + n, size - n, "%s%s", n ? ":" : "", name);

	if (w < 0 || (size_t)w >= size - n)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "too many TLS cipher suites");
	return 0;
}

int tls_profile_parse(const char *min_version, const char *const *suites, size_t n_suites,
		      struct tls_profile *ret, struct pp_err *err)
{
	struct tls_profile p = { 0 };

	if (tls_min_version_parse(min_version, &p.min_version, err) < 0)
		return -1;
	if (n_suites && p.min_version == TLS1_3_VERSION)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "TLS cipher suites cannot be set with minimum version VersionTLS13 (TLS 1.3 suites are not configurable)");
	for (size_t i = 0; i < n_suites; i++) {
		const struct tls_cipher_name *c = tls_cipher_find(suites[i]);

		if (!c)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "unknown or unsupported TLS cipher suite %.128s", suites[i]);
		if (c->openssl && !tls_list_has(p.cipher_list, c->openssl) &&
		    tls_list_append(p.cipher_list, sizeof(p.cipher_list), c->openssl, err) < 0)
			return -1;
	}
	if (n_suites && !p.cipher_list[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "TLS cipher suites name only TLS 1.3 suites; name at least one TLS 1.2 suite");
	*ret = p;
	return 0;
}

int tls_profile_parse_csv(const char *min_version, const char *suites_csv,
			  struct tls_profile *ret, struct pp_err *err)
{
	char copy[TLS_CIPHER_LIST_MAX * 2];
	const char *names[PP_ARRAY_SIZE(tls_ciphers) * 2];
	size_t n = 0;
	char *save = NULL;

	if (!suites_csv || !*suites_csv)
		return tls_profile_parse(min_version, NULL, 0, ret, err);
	if (!pp_strlcpy(copy, suites_csv, sizeof(copy)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TLS cipher suite list is too long");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok = str_trim(tok);
		if (!*tok)
			continue;
		if (n == PP_ARRAY_SIZE(names))
			return pp_err_set(err, PP_INVALID_ARGUMENT, "too many TLS cipher suites");
		names[n++] = tok;
	}
	return tls_profile_parse(min_version, names, n, ret, err);
}

/* ---- certificates ---- */

STACK_OF(X509) *tls_certs_from_pem(const char *pem, struct pp_err *err)
{
	size_t len = pem ? strlen(pem) : 0;
	BIO *bio;
	STACK_OF(X509) *certs;
	X509 *x;

	if (len == 0 || len > PKI_PEM_MAX) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "CA certificate PEM is empty or larger than %d bytes",
			   PKI_PEM_MAX);
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	certs = sk_X509_new_null();
	if (!bio || !certs)
		goto fail;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			goto fail;
		}
	}
	/* the loop ends at end of data (PEM_R_NO_START_LINE) or at a broken block */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || sk_X509_num(certs) == 0)
		goto fail;
	ERR_clear_error();
	BIO_free(bio);
	return certs;
fail:
	pp_err_set(err, PP_INVALID_ARGUMENT, "CA certificate PEM is not a list of valid certificates: %s",
		   ERR_peek_last_error() ? ERR_reason_error_string(ERR_peek_last_error()) : "empty");
	ERR_clear_error();
	BIO_free(bio);
	tls_certs_free(certs);
	return NULL;
}

void tls_certs_free(STACK_OF(X509) *certs)
{
	sk_X509_pop_free(certs, X509_free);
}

/* ---- contexts ---- */

static int tls_ssl_err(struct pp_err *err, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	pp_err_set(err, PP_INVALID_ARGUMENT, "%s: %s", what, r ? r : "unknown OpenSSL error");
	ERR_clear_error();
	return -1;
}

static SSL_CTX *tls_ctx_base(const SSL_METHOD *m, const struct tls_profile *p, struct pp_err *err)
{
	struct tls_profile def;
	SSL_CTX *ctx = SSL_CTX_new(m);

	if (!ctx) {
		tls_ssl_err(err, "creating a TLS context");
		return NULL;
	}
	if (!p) {
		tls_profile_parse(NULL, NULL, 0, &def, NULL);
		p = &def;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, p->min_version) ||
	    !SSL_CTX_set_cipher_list(ctx, p->cipher_list[0] ? p->cipher_list : TLS_DEFAULT_CIPHERS)) {
		tls_ssl_err(err, "setting the TLS version and cipher suites");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
			    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static int tls_ctx_use_identity(SSL_CTX *ctx, const struct pki_identity *id, struct pp_err *err)
{
	if (!id)
		return 0;
	if (!id->cert || !id->key)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TLS identity has no certificate or key");
	if (SSL_CTX_use_certificate(ctx, id->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, id->key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return tls_ssl_err(err, "loading the TLS certificate and key");
	return 0;
}

/* Trusts exactly the given certificates. A self-signed one (the client certificate in
 * automatic mode) is an anchor as it is; PARTIAL_CHAIN lets any other configured certificate
 * (an intermediate CA) end a chain too, as a certificate in Go's root pool does. */
static int tls_ctx_trust(SSL_CTX *ctx, STACK_OF(X509) *anchors, bool send_ca_names,
			 struct pp_err *err)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);

	for (int i = 0; i < sk_X509_num(anchors); i++) {
		X509 *x = sk_X509_value(anchors, i);

		if (X509_STORE_add_cert(store, x) != 1)
			return tls_ssl_err(err, "adding a trusted certificate");
		if (send_ca_names && SSL_CTX_add_client_CA(ctx, x) != 1)
			return tls_ssl_err(err, "adding a client CA name");
	}
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	return 0;
}

SSL_CTX *tls_server_ctx_new(const struct tls_profile *p, const struct pki_identity *id,
			    STACK_OF(X509) *client_anchors, struct pp_err *err)
{
	SSL_CTX *ctx;

	if (!id) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "a TLS server needs a certificate and key");
		return NULL;
	}
	ctx = tls_ctx_base(TLS_server_method(), p, err);
	if (!ctx)
		return NULL;
	SSL_CTX_set_num_tickets(ctx, 0);
	if (tls_ctx_use_identity(ctx, id, err) < 0)
		goto fail;
	if (client_anchors && sk_X509_num(client_anchors) > 0) {
		if (tls_ctx_trust(ctx, client_anchors, true, err) < 0)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_ctx_new(const struct tls_profile *p, const struct pki_identity *id,
			    STACK_OF(X509) *server_anchors, struct pp_err *err)
{
	SSL_CTX *ctx;

	if (!server_anchors || sk_X509_num(server_anchors) == 0) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "a TLS client needs a CA certificate to verify the server");
		return NULL;
	}
	ctx = tls_ctx_base(TLS_client_method(), p, err);
	if (!ctx)
		return NULL;
	if (tls_ctx_use_identity(ctx, id, err) < 0 || tls_ctx_trust(ctx, server_anchors, false, err) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* ---- a socket BIO that never raises SIGPIPE ---- */

/* The fd lives in the BIO's data pointer slot as an int. */
static int tls_bio_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int tls_bio_write(BIO *b, const char *buf, int n)
{
	ssize_t r;

	BIO_clear_retry_flags(b);
	do
		r = send(tls_bio_fd(b), buf, (size_t)n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)r;
}

static int tls_bio_read(BIO *b, char *buf, int n)
{
	ssize_t r;

	BIO_clear_retry_flags(b);
	do
		r = recv(tls_bio_fd(b), buf, (size_t)n, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	return (int)r;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = tls_bio_fd(b);
		return tls_bio_fd(b);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static void tls_bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
				     "pp-socket");

	if (m && BIO_meth_set_write(m, tls_bio_write) && BIO_meth_set_read(m, tls_bio_read) &&
	    BIO_meth_set_ctrl(m, tls_bio_ctrl))
		tls_bio_method = m;
	else
		BIO_meth_free(m);
}

static BIO *tls_bio_new(int fd)
{
	BIO *b;

	pthread_once(&tls_bio_once, tls_bio_method_init);
	if (!tls_bio_method)
		return NULL;
	b = BIO_new(tls_bio_method);
	if (!b)
		return NULL;
	BIO_set_data(b, (void *)(intptr_t)fd);
	BIO_set_init(b, 1);
	return b;
}

/* ---- the stream ---- */

struct tls_stream {
	struct stream base;
	SSL *ssl;
	bool is_server;
	char server_name[TLS_SERVER_NAME_MAX + 1];
};

static struct tls_stream *tls_of(struct stream *s)
{
	return (struct tls_stream *)s;
}

/* Maps an SSL_ERROR_* to the stream convention: -1 with errno, want set for EAGAIN. */
static ssize_t tls_io_result(struct tls_stream *t, int ret)
{
	int e = SSL_get_error(t->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		t->base.want = EPOLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->base.want = EPOLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = ECONNRESET;
		ERR_clear_error();
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

static ssize_t tls_read(struct stream *s, void *buf, size_t n)
{
	struct tls_stream *t = tls_of(s);
	int r;

	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_read(t->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0)
		return r;
	return tls_io_result(t, r);
}

/* After EAGAIN, OpenSSL wants the same bytes again (the buffer may move). */
static ssize_t tls_write(struct stream *s, const void *buf, size_t n)
{
	struct tls_stream *t = tls_of(s);
	int r;

	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = SSL_write(t->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0)
		return r;
	r = (int)tls_io_result(t, r);
	if (r == 0) {   /* the peer closed while we write */
		errno = EPIPE;
		return -1;
	}
	return r;
}

/* Whether a handshake failure is about identities (ours refused by the peer, or the peer
 * sending none) rather than the connection: the caller may not want to retry those. */
static bool tls_reason_is_auth(unsigned long e)
{
	switch (ERR_GET_REASON(e)) {
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return ERR_GET_LIB(e) == ERR_LIB_SSL;
	default:
		return false;
	}
}

/* "certificate verify failed: hostname mismatch (expected podvm-x)" and the like. */
static int tls_handshake_error(struct tls_stream *t, int e, int saved_errno, struct pp_err *err)
{
	long v = SSL_get_verify_result(t->ssl);
	unsigned long ssl_e = ERR_peek_error();
	const char *reason = ssl_e ? ERR_reason_error_string(ssl_e) : NULL;
	int code = PP_UNAVAILABLE;

	if (e == SSL_ERROR_SYSCALL && !ssl_e) {
		if (saved_errno)
			pp_err_errno(err, code, saved_errno, "TLS handshake with %s failed", t->base.peer);
		else
			pp_err_set(err, code, "TLS handshake with %s failed: connection closed by peer",
				   t->base.peer);
	} else if (v != X509_V_OK) {
		bool host = v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH;

		code = PP_UNAUTHENTICATED;
		pp_err_set(err, code, "TLS handshake with %s failed: %s: %s%s%s%s", t->base.peer,
			   reason ? reason : "certificate verify failed",
			   X509_verify_cert_error_string(v), host ? " (expected " : "",
			   host ? t->server_name : "", host ? ")" : "");
	} else {
		if (tls_reason_is_auth(ssl_e))
			code = PP_UNAUTHENTICATED;
		pp_err_set(err, code, "TLS handshake with %s failed: %s", t->base.peer,
			   reason ? reason : "unknown TLS error");
	}
	ERR_clear_error();
	return -1;
}

static int tls_handshake(struct stream *s, struct pp_err *err)
{
	struct tls_stream *t = tls_of(s);
	int r, e;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return 1;
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		s->want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return 0;
	}
	return tls_handshake_error(t, e, errno, err);
}

static size_t tls_pending(struct stream *s)
{
	int n = SSL_pending(tls_of(s)->ssl);

	return n > 0 ? (size_t)n : 0;
}

/* Best effort close_notify (one non-blocking attempt), then close. */
static void tls_free(struct stream *s)
{
	struct tls_stream *t = tls_of(s);

	if (t->ssl) {
		if (SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl);
		ERR_clear_error();
		SSL_free(t->ssl);
	}
	if (s->fd >= 0)
		close(s->fd);
	free(t);
}

static const struct stream_ops tls_ops = {
	.read = tls_read,
	.write = tls_write,
	.handshake = tls_handshake,
	.pending = tls_pending,
	.free = tls_free,
};

/* The name the server certificate must carry: DNS name (also sent as SNI) or IP address. */
static int tls_expect_server(struct tls_stream *t, const char *name, struct pp_err *err)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!name || !*name)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TLS client needs the expected server name");
	if (!pp_strlcpy(t->server_name, name, sizeof(t->server_name)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TLS server name %.64s... is too long", name);
	if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
			return tls_ssl_err(err, "setting the expected server address");
		return 0;
	}
	SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(t->ssl, name) != 1 || SSL_set_tlsext_host_name(t->ssl, name) != 1)
		return tls_ssl_err(err, "setting the expected server name");
	return 0;
}

static int tls_fd_prepare(int fd, struct pp_err *err)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "making fd %d non-blocking", fd);
	return 0;
}

struct stream *tls_stream_new(SSL_CTX *ctx, int fd, bool is_server, const char *server_name,
			      struct pp_err *err)
{
	struct tls_stream *t = NULL;
	BIO *bio;

	if (!ctx || fd < 0) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "TLS stream needs a context and a socket");
		goto fail;
	}
	if (tls_fd_prepare(fd, err) < 0)
		goto fail;
	t = calloc(1, sizeof(*t));
	if (!t) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a TLS stream");
		goto fail;
	}
	t->base.ops = &tls_ops;
	t->base.fd = fd;
	t->base.want = is_server ? EPOLLIN : EPOLLOUT;
	t->is_server = is_server;
	stream_peer_name(fd, t->base.peer, sizeof(t->base.peer));
	t->ssl = SSL_new(ctx);
	bio = t->ssl ? tls_bio_new(fd) : NULL;
	if (!bio) {
		tls_ssl_err(err, "creating a TLS connection");
		goto fail;
	}
	SSL_set_bio(t->ssl, bio, bio);
	if (is_server) {
		SSL_set_accept_state(t->ssl);
		return &t->base;
	}
	if (tls_expect_server(t, server_name, err) < 0)
		goto fail;
	SSL_set_connect_state(t->ssl);
	return &t->base;
fail:
	if (t)
		tls_free(&t->base);
	else if (fd >= 0)
		close(fd);
	return NULL;
}
