/*
 * Keys and certificates for the adaptor <-> forwarder mutual TLS (automatic mode).
 *
 * The adaptor owns two identities: a CA (O=agent-protocol-forwarder) that issues one server
 * certificate per pod VM (CN and DNS SAN = the instance name), and a self-signed client
 * certificate (O=cloud-api-adaptor) that the forwarder trusts directly. Both are persisted under
 * <state_dir>/tls/ so that a restarted daemon can still talk to the VMs it started before.
 * Keys are ECDSA P-256, written as PKCS#8 PEM ("PRIVATE KEY"); certificates are valid from
 * now - 5 min for 730 days, with a random 128-bit serial. Key material never reaches a log line
 * or an error message.
 */
#ifndef PP_PKI_H
#define PP_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/err.h"

#define PKI_CA_ORG "agent-protocol-forwarder"
#define PKI_CLIENT_ORG "cloud-api-adaptor"
#define PKI_VALIDITY_DAYS 730
#define PKI_BACKDATE_SECS (5 * 60)
#define PKI_PEM_MAX (64 * 1024)     /* largest certificate or key file we read */

struct pki_identity {
	EVP_PKEY *key;
	X509 *cert;
};

/* PEM text of an identity (heap strings, NUL-terminated). The key is secret: free it with
 * pki_pem_free, which wipes it. */
struct pki_pem {
	char *cert;
	char *key;
};

/* New identities (fresh P-256 key). NULL on failure, err filled. */
struct pki_identity *pki_new_ca(struct pp_err *err);
struct pki_identity *pki_new_client(struct pp_err *err);
/* Server certificate for `name` (CN and DNS SAN), issued and signed by ca, validity clamped
 * inside the CA's. */
struct pki_identity *pki_issue_server_cert(const struct pki_identity *ca, const char *name,
					   struct pp_err *err);
void pki_identity_free(struct pki_identity *id);   /* NULL ok */

int pki_identity_to_pem(const struct pki_identity *id, struct pki_pem *ret, struct pp_err *err);
void pki_pem_free(struct pki_pem *pem);              /* wipes the key; fields set to NULL */

/* Parses a certificate PEM and its private key PEM; fails if the key does not match the
 * certificate. */
struct pki_identity *pki_identity_from_pem(const char *cert_pem, const char *key_pem,
					   struct pp_err *err);
/* Same, from files; errors name the file that is missing, unreadable or corrupt. */
struct pki_identity *pki_identity_from_files(const char *cert_path, const char *key_path,
					     struct pp_err *err);

/* PEM encoding of just a certificate (heap string) — e.g. the client certificate sent as
 * tls-client-ca. */
char *pki_cert_to_pem(const X509 *cert, struct pp_err *err);

/* The adaptor's persistent identities. */
struct pki_store {
	struct pki_identity *ca;
	struct pki_identity *client;
};

/* Loads <state_dir>/tls/{ca,client}.{crt,key}, creating (and writing) any identity whose files
 * are absent. Directory is made 0700, keys 0600. A file that exists but does not parse, or a
 * certificate that does not match its key or has expired, is an error naming the file. */
int pki_load_or_create(const char *state_dir, struct pki_store *ret, struct pp_err *err);
void pki_store_fini(struct pki_store *st);

#endif
