/*
 * Internals of lib/http shared by http.c (client, slots, retry loop, counters), http_xfer.c
 * (one libcurl transfer) and http_util.c (pure helpers), and reachable by the unit tests. Not
 * for other modules: they use lib/http.h.
 *
 * The one idea: an attempt is a pure description in (request, client settings) and a pure
 * description out (struct http_outcome); the retry decision is made from the outcome alone.
 */
#ifndef PP_HTTP_PRIV_H
#define PP_HTTP_PRIV_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/http.h"

/* How often a running transfer looks at its cancel token, and a waiter for a slot. */
#define HTTP_CANCEL_POLL_MS 25

/* A pooled libcurl handle: the easy handle runs inside its own multi handle, so that the
 * caller's thread can watch the cancel token between short polls, and the multi handle's
 * connection cache keeps connections alive from one request to the next. */
struct http_handle {
	CURL *easy;
	CURLM *multi;
	struct http_handle *next;   /* free list; guarded by http_client.mu */
};

/* The client settings one transfer needs (immutable after http_client_new). */
struct http_settings {
	const char *name;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;
	size_t max_response;
	const char *user_agent;
	const char *ca_file;
	const char *client_cert_file;
	const char *client_key_file;
	bool insecure;
	const char *unix_socket;
	struct curl_slist *resolve;
	struct curl_slist *connect_to;
	CURLSH *share;
};

/* What one attempt produced. */
struct http_outcome {
	CURLcode cc;              /* CURLE_OK when an HTTP response arrived */
	long status;              /* 0 when none */
	bool sent;                /* some of the request reached the network */
	bool cancelled;           /* the cancel token fired during the transfer */
	bool too_large;           /* body passed max_response */
	bool headers_too_large;   /* headers passed HTTP_MAX_HEADER_BYTES */
	uint64_t ms;              /* duration */
	char errbuf[CURL_ERROR_SIZE];   /* libcurl's detail, query strings removed */
};

/* http_xfer.c: one transfer with handle h. resp is reset and filled with whatever arrived. */
int http_handle_init(struct http_handle *h, struct pp_err *err);
void http_handle_cleanup(struct http_handle *h);
void http_xfer_perform(struct http_handle *h, const struct http_settings *s,
		       const struct http_request *req, struct curl_slist *headers,
		       uint64_t timeout_ms, size_t max_response, struct http_response *resp,
		       struct http_outcome *out);
/* The request's header list (caller headers, Content-Type, Authorization: Bearer).
 * -1 with err on a header containing CR, LF or NUL, or a name with ':'. */
int http_xfer_headers(const struct http_request *req, struct curl_slist **ret,
		      struct pp_err *err);
/* Wipes (the Bearer token may be in it) and frees a header list. NULL ok. */
void http_xfer_headers_free(struct curl_slist *l);

/* http_util.c */
/* Retry-After as milliseconds: delta-seconds or an HTTP-date relative to now_unix; a date in
 * the past gives 0. Cut to max_ms. -1 when value is neither. */
int http_retry_after_ms(const char *value, int64_t now_unix, uint64_t max_ms, uint64_t *ret);
/* Full jitter: a value in [0, min(max_ms, base_ms * 2^(retry-1))] picked by rnd (retry >= 1). */
uint64_t http_backoff_ms(uint64_t base_ms, uint64_t max_ms, unsigned retry, uint64_t rnd);
/* Up to max bytes of data as one line of printable ASCII: runs of whitespace become one space,
 * other bytes '?', and "..." marks a cut. Returns out. */
const char *http_excerpt(char *out, size_t size, const void *data, size_t len, size_t max);
/* Removes query strings ("?..." up to the next space or quote) from a message in place. */
void http_scrub_query(char *s);
bool http_status_retryable(long status);
bool http_curl_retryable(CURLcode cc);
enum http_status_class http_status_class_of(long status);

#endif
