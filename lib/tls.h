/*
 * TLS for the adaptor <-> forwarder link (OpenSSL 3, non-blocking): the TLS profile (minimum
 * version, TLS 1.2 cipher suites by IANA name, as upstream's TLS_MIN_VERSION /
 * TLS_CIPHER_SUITES and apf.json), SSL_CTX construction for both ends, and a TLS `struct
 * stream` driven by the event loop.
 *
 * The one idea: both ends always verify. The client checks the server certificate against the
 * CA and the expected instance name (SNI + hostname check); the server requires a client
 * certificate and checks it against its trust anchors, which in automatic mode is the adaptor's
 * self-signed, non-CA client certificate itself (OpenSSL accepts a self-signed certificate in
 * the trust store as an anchor whatever its CA flag; X509_V_FLAG_PARTIAL_CHAIN is set as well
 * so that any configured certificate, e.g. an intermediate CA, ends a chain, as Go's roots do).
 * Only the forwarder without a tls-client-ca (upstream's manual mode) skips client
 * verification, because it has nothing to verify against.
 *
 * The process must ignore SIGPIPE: OpenSSL writes to the socket with write(2).
 */
#ifndef PP_TLS_H
#define PP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/pki.h"
#include "lib/stream.h"

#define TLS_CIPHER_LIST_MAX 1024
#define TLS_SERVER_NAME_MAX 253

struct tls_profile {
	int min_version;                        /* TLS1_2_VERSION or TLS1_3_VERSION */
	char cipher_list[TLS_CIPHER_LIST_MAX];  /* OpenSSL TLS 1.2 cipher list; "" = our default */
};

/* min_version: NULL or "" (TLS 1.2), "VersionTLS12", "VersionTLS13"; "VersionTLS10" and
 * "VersionTLS11" are refused. suites: IANA names (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ...);
 * TLS 1.3 names are accepted and ignored (TLS 1.3 suites are not configurable, as in Go).
 * Suites together with VersionTLS13 is an error. Errors name the offending value. */
int tls_profile_parse(const char *min_version, const char *const *suites, size_t n_suites,
		      struct tls_profile *ret, struct pp_err *err);
/* Same with suites as one comma-separated string (the TLS_CIPHER_SUITES form; NULL or "" =
 * none; spaces around names ignored). */
int tls_profile_parse_csv(const char *min_version, const char *suites_csv,
			  struct tls_profile *ret, struct pp_err *err);
/* The OpenSSL name of an IANA TLS 1.2 cipher suite name; NULL if we do not know it. */
const char *tls_cipher_openssl_name(const char *iana);

/* Certificates from a PEM bundle (one or more "CERTIFICATE" blocks; other block types are
 * skipped; no certificate or a broken block is an error). Free with tls_certs_free. */
STACK_OF(X509) *tls_certs_from_pem(const char *pem, struct pp_err *err);
void tls_certs_free(STACK_OF(X509) *certs);

/* Server context: presents id; when client_anchors is non-NULL (and non-empty) every client
 * must present a certificate that chains to one of them (or is one of them). NULL profile =
 * defaults. The context keeps its own references; the caller keeps its arguments. */
SSL_CTX *tls_server_ctx_new(const struct tls_profile *p, const struct pki_identity *id,
			    STACK_OF(X509) *client_anchors, struct pp_err *err);
/* Client context: verifies the server against server_anchors (required: we never dial
 * unverified); presents id when given. */
SSL_CTX *tls_client_ctx_new(const struct tls_profile *p, const struct pki_identity *id,
			    STACK_OF(X509) *server_anchors, struct pp_err *err);

/* A TLS stream over a connected socket. Takes ownership of fd (made non-blocking and
 * close-on-exec; closed on failure too). A client (is_server false) sends server_name as SNI
 * and accepts only a certificate for it; server_name is ignored for a server. Call
 * stream_handshake() until it returns 1 before reading or writing. */
struct stream *tls_stream_new(SSL_CTX *ctx, int fd, bool is_server, const char *server_name,
			      struct pp_err *err);

#endif
