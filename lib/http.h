/*
 * The one HTTP layer every cloud client uses (DESIGN idea 6), on libcurl. It knows nothing
 * about clouds: a provider creates one struct http_client (its name, its cap on requests in
 * flight, timeouts, retry policy, TLS settings, test overrides) and calls http_do() from any
 * number of worker threads.
 *
 * The one idea: http_do() is a whole *call*, not one transfer. It waits (cancellably) for a
 * free slot, performs the request on a pooled connection, and retries with exponential backoff
 * and full jitter on 429/500/502/503/504 and on connection errors, honouring Retry-After, for as
 * long as the retry policy, the request's idempotency and its cancel token allow. The cancel
 * token is watched during the transfer and during every sleep. What comes back is either a
 * final response or one error that names the operation, the URL without its query string
 * (SAS tokens and signatures live there), the status and a short sanitised body excerpt.
 *
 * Secrets (bearer tokens, SigV4 keys, headers, bodies, query strings) never reach a log line or
 * an error message. Per attempt one debug line is logged ("http request"), per retry one warn
 * line ("http retry"); a final failure is not logged here (the caller's boundary does that).
 *
 * Lifecycle: http_global_init() once from main before any thread uses HTTP,
 * http_global_fini() at exit.
 */
#ifndef PP_HTTP_H
#define PP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

struct cancel;

/* Defaults used when a config or request field is 0 / NULL. */
#define HTTP_DEFAULT_MAX_IN_FLIGHT     8u
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define HTTP_DEFAULT_TIMEOUT_MS        60000u          /* one attempt, connect included */
#define HTTP_DEFAULT_MAX_ATTEMPTS      5u              /* first try included */
#define HTTP_DEFAULT_BACKOFF_BASE_MS   200u
#define HTTP_DEFAULT_BACKOFF_MAX_MS    20000u
#define HTTP_DEFAULT_RETRY_AFTER_MAX_MS 60000u
#define HTTP_DEFAULT_MAX_RESPONSE      (8u * 1024 * 1024)
#define HTTP_DEFAULT_USER_AGENT        "cloud-api-adaptor-c"
#define HTTP_MAX_HEADER_BYTES          (64u * 1024)    /* all headers of one response */
#define HTTP_OP_NAME_MAX               48              /* longer operation names are cut */
#define HTTP_MAX_OPS                   64              /* distinct op names counted; then "other" */
#define HTTP_ERROR_EXCERPT_MAX         300             /* body bytes quoted in an error */

/* Process-wide libcurl setup (curl_global_init). Checks that the linked libcurl is thread-safe
 * and supports SigV4. Call once from main, before threads. */
int http_global_init(struct pp_err *err);
void http_global_fini(void);

/* ---- client ------------------------------------------------------------------------------ */

struct http_client_config {
	const char *name;               /* "aws", "azure", "gcp", "k8s": logs and metrics; required */
	unsigned max_in_flight;         /* requests performing at once; callers wait for a slot */
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;            /* per attempt (a request may override it) */
	unsigned max_attempts;          /* 1 = never retry */
	uint64_t backoff_base_ms;       /* delay before retry n: random in [0, min(max, base*2^(n-1))] */
	uint64_t backoff_max_ms;
	uint64_t retry_after_max_ms;    /* a longer Retry-After is cut to this */
	size_t max_response;            /* default body limit of a request */
	const char *user_agent;
	/* TLS. ca_file NULL = the system store. insecure skips peer verification: tests only. */
	const char *ca_file;
	const char *client_cert_file;   /* PEM client certificate (Kubernetes), or NULL */
	const char *client_key_file;    /* its PEM key, or NULL */
	bool insecure;
	/* Test and sovereign-cloud overrides. Providers also take an overridable base endpoint;
	 * these reroute connections without changing the URL (the Host header and the SigV4 scope
	 * stay those of the real endpoint). NULL-terminated arrays, libcurl syntax:
	 *   resolve:    "HOST:PORT:ADDRESS"                     (CURLOPT_RESOLVE)
	 *   connect_to: "HOST:PORT:CONNECT-HOST:CONNECT-PORT"   (CURLOPT_CONNECT_TO)   */
	const char *const *resolve;
	const char *const *connect_to;
	const char *unix_socket;        /* connect to this unix socket instead of TCP, or NULL */
};

struct http_client;

/* Copies everything from cfg. NULL with err on a bad config. */
struct http_client *http_client_new(const struct http_client_config *cfg, struct pp_err *err);
/* NULL ok. No request may be running on the client. */
void http_client_free(struct http_client *c);
const char *http_client_name(const struct http_client *c);

/* ---- request and response ---------------------------------------------------------------- */

enum http_method { HTTP_GET = 0, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE };

struct http_header {
	const char *name;
	const char *value;   /* may be a secret (x-amz-security-token): headers are never logged */
};

enum http_request_flags {
	/* Safe to send twice (a POST with a client token, a token request, EC2 Describe*).
	 * GET, HEAD, PUT and DELETE are idempotent anyway. A request that is not idempotent is
	 * retried only when the attempt failed before any byte of it was sent (DNS, connect). */
	HTTP_F_IDEMPOTENT = 1u << 0,
	/* Return a non-2xx final status as success (ret->status, body, headers filled) so that the
	 * caller can parse the cloud's own error body; see http_status_to_code(). Retryable
	 * statuses are still retried first. */
	HTTP_F_RAW_STATUS = 1u << 1,
};

struct http_request {
	const char *op;                   /* operation name for logs and metrics: "RunInstances" */
	enum http_method method;
	const char *url;                  /* http:// or https:// */
	const struct http_header *headers;
	size_t n_headers;
	const void *body;                 /* sent as is; NULL with body_len 0 = no body */
	size_t body_len;
	const char *content_type;         /* Content-Type of body, or NULL */
	size_t max_response;              /* body limit in bytes; 0 = client's; larger fails */
	uint64_t timeout_ms;              /* per attempt; 0 = client's */
	struct cancel *cancel;            /* watched while waiting, transferring, sleeping; may be NULL */
	unsigned flags;                   /* enum http_request_flags */
	/* libcurl SigV4 signing: "aws:amz:<region>:<service>" plus the access key id and secret
	 * key (secret). A session token goes in an x-amz-security-token header (it is signed). */
	const char *aws_sigv4;
	const char *aws_access_key_id;
	const char *aws_secret_access_key;
	const char *bearer_token;         /* "Authorization: Bearer <token>" (secret), or NULL */
};

struct http_response {
	long status;            /* HTTP status of the final attempt */
	struct buf body;        /* NUL-terminated (body.data may be NULL when empty) */
	struct buf headers;     /* private: "name\0value\0" pairs of the final response */
	size_t n_headers;
};

#define HTTP_RESPONSE_INIT { .status = 0, .body = BUF_INIT(0), .headers = BUF_INIT(0), .n_headers = 0 }

/* Performs req with retries (see the top of this file). On success (2xx, or any status with
 * HTTP_F_RAW_STATUS) fills *ret and returns 0; *ret must be HTTP_RESPONSE_INIT or hold the
 * response of an earlier call, which is freed first. Otherwise returns -1 and *ret is
 * untouched. Error codes: the status mapped by http_status_to_code(); PP_UNAVAILABLE for
 * connection errors and timeouts after retries; PP_CANCELLED / PP_DEADLINE_EXCEEDED when the
 * cancel token fired (at once, also mid-transfer or mid-sleep); PP_OUT_OF_RANGE when the
 * response is larger than max_response; PP_INVALID_ARGUMENT for a bad request (URL, header
 * with CR/LF). */
int http_do(struct http_client *c, const struct http_request *req, struct http_response *ret,
	    struct pp_err *err);

void http_response_free(struct http_response *r);   /* back to HTTP_RESPONSE_INIT; NULL ok */
/* First header of the final response with that name (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *r, const char *name);
/* i-th header in the order received; false past the end. */
bool http_response_header_at(const struct http_response *r, size_t i, const char **ret_name,
			     const char **ret_value);
/* The body as text ("" when empty). */
const char *http_response_text(const struct http_response *r);

/* gRPC-ish code for an HTTP status: 2xx OK; 400 INVALID_ARGUMENT; 401 UNAUTHENTICATED;
 * 403 PERMISSION_DENIED; 404, 410 NOT_FOUND; 409 ABORTED (conflict; a provider that knows the
 * cloud's error code turns "already exists" into ALREADY_EXISTS); 412 FAILED_PRECONDITION;
 * 429 RESOURCE_EXHAUSTED; 501 UNIMPLEMENTED; other 5xx UNAVAILABLE; other 4xx
 * FAILED_PRECONDITION; anything else UNKNOWN. */
int http_status_to_code(long status);
const char *http_method_name(enum http_method m);   /* "GET", ... */

/* ---- counters (for the metrics endpoint) -------------------------------------------------- */

/* Each attempt is counted once, by operation and class of its outcome. */
enum http_status_class {
	HTTP_CLASS_ERROR = 0,  /* no HTTP status: connection error, timeout, cancelled */
	HTTP_CLASS_1XX, HTTP_CLASS_2XX, HTTP_CLASS_3XX, HTTP_CLASS_4XX, HTTP_CLASS_5XX,
	HTTP_CLASS_COUNT
};

struct http_stats {
	uint64_t requests;    /* http_do calls */
	uint64_t attempts;    /* transfers started */
	uint64_t retries;     /* attempts after the first */
	uint64_t throttled;   /* 429 answers */
	uint64_t failures;    /* http_do calls that returned -1 */
	uint64_t in_flight;   /* transfers running now */
};

struct http_op_stats {
	char op[HTTP_OP_NAME_MAX];
	uint64_t attempts[HTTP_CLASS_COUNT];   /* by enum http_status_class */
};

void http_client_stats(struct http_client *c, struct http_stats *ret);
/* Copies up to max rows (one per operation name) into rows; returns how many there are. */
size_t http_client_op_stats(struct http_client *c, struct http_op_stats *rows, size_t max);
const char *http_status_class_name(enum http_status_class k);   /* "error", "1xx", ... "5xx" */

/* ---- URL and form encoding ---------------------------------------------------------------- */

/* Appends s (len bytes) percent-encoded to out: every byte but the RFC 3986 unreserved set
 * A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex), as SigV4 and the EC2 Query API require
 * ("+" "/" "=" of base64 included). -1 (errno EMSGSIZE) if out would pass its maximum. */
int http_urlencode(struct buf *out, const char *s, size_t len);
/* The same into a new string (abort on out-of-memory); free() it. */
char *http_urlencode_dup(const char *s);

/* An application/x-www-form-urlencoded body (or query string) built in insertion order:
 * "Action=RunInstances&Version=2016-11-15&SecurityGroupId.1=sg-1". Order is kept as given
 * (EC2 and OAuth do not care; SigV4 hashes the body as sent). Errors are sticky: add calls
 * after a failure do nothing and http_form_finish() reports the first one. The memory is
 * wiped when freed, since forms carry secrets (client_secret, WebIdentityToken). */
struct http_form {
	struct buf buf;
	int failed;          /* errno of the first failure, 0 if none */
};

void http_form_init(struct http_form *f, size_t max);
int http_form_add(struct http_form *f, const char *key, const char *value);
/* Key from a format ("TagSpecification.1.Tag.%zu.Key"), value as is. */
int http_form_addf(struct http_form *f, const char *value, const char *key_fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 0 and the encoded text ("" when empty) and its length, or -1 with err naming the failure. */
int http_form_finish(struct http_form *f, const char **ret_text, size_t *ret_len,
		     struct pp_err *err);
void http_form_free(struct http_form *f);

/* Writes url into out without userinfo, query string and fragment
 * ("https://h/p?sig=x" -> "https://h/p"): the form URLs take in logs and errors. */
const char *http_url_redact(char *out, size_t size, const char *url);

#endif
