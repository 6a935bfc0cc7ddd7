/*
 * One HTTP attempt on a pooled libcurl handle (see http_priv.h). The easy handle is reset and
 * configured from scratch for every attempt — nothing of the previous request (credentials,
 * headers, method) can leak into the next — while its multi handle keeps the connection cache,
 * and the client's share keeps DNS and TLS sessions.
 *
 * The one idea: we drive the transfer ourselves (curl_multi_perform + curl_multi_poll with a
 * short timeout) instead of curl_easy_perform, so the calling thread looks at its cancel token
 * every HTTP_CANCEL_POLL_MS even while the server says nothing; a fired token removes the
 * transfer at once (the connection is closed, not reused).
 */
#include "lib/http_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/cancel.h"
#include "lib/util.h"

#define HTTP_AUTH_HEADER_MAX 16384   /* "Authorization: Bearer <token>" */
#define HTTP_TIMEOUT_MAX_MS (31ull * 24 * 3600 * 1000)

int http_handle_init(struct http_handle *h, struct pp_err *err)
{
	h->next = NULL;
	h->easy = curl_easy_init();
	h->multi = curl_multi_init();
	if (!h->easy || !h->multi) {
		http_handle_cleanup(h);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "cannot create a libcurl handle");
	}
	return 0;
}

void http_handle_cleanup(struct http_handle *h)
{
	if (h->easy)
		curl_easy_cleanup(h->easy);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	h->easy = NULL;
	h->multi = NULL;
}

/* ---- headers we send ---- */

static bool http_header_text_ok(const char *s, bool is_name)
{
	if (!s || (is_name && !*s))
		return false;
	for (; *s; s++)
		if (*s == '\r' || *s == '\n' || (is_name && (*s == ':' || *s == ' ')))
			return false;
	return true;
}

static int http_slist_add(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return -1;
	*l = n;
	return 0;
}

/* Appends one formatted header line; the temporary copy is wiped (it may hold a token). */
static int http_slist_addf(struct curl_slist **l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int http_slist_addf(struct curl_slist **l, const char *fmt, ...)
{
	struct buf line = BUF_INIT(HTTP_AUTH_HEADER_MAX);
	va_list ap;
	int rc, n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	rc = n < 0 || buf_reserve(&line, (size_t)n) < 0 ? -1 : 0;
	if (rc == 0) {
		va_start(ap, fmt);
		n = vsnprintf((char *)line.data, line.cap, fmt, ap);
		va_end(ap);
		rc = n < 0 || (size_t)n >= line.cap ? -1 : http_slist_add(l, (const char *)line.data);
	}
	if (line.data)
		explicit_bzero(line.data, line.cap);
	buf_free(&line);
	return rc;
}

int http_xfer_headers(const struct http_request *req, struct curl_slist **ret,
		      struct pp_err *err)
{
	struct curl_slist *l = NULL;
	size_t i;

	for (i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];

		if (!http_header_text_ok(h->name, true) || !http_header_text_ok(h->value, false)) {
			http_xfer_headers_free(l);
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "request header %zu has an empty name or a name or value with CR, LF, ':' or space",
					  i + 1);
		}
		/* curl sends "name;" as an empty header; "name:" would remove it */
		if ((*h->value ? http_slist_addf(&l, "%s: %s", h->name, h->value)
			       : http_slist_addf(&l, "%s;", h->name)) < 0)
			goto too_long;
	}
	if (req->content_type) {
		if (!http_header_text_ok(req->content_type, false)) {
			http_xfer_headers_free(l);
			return pp_err_set(err, PP_INVALID_ARGUMENT, "content type has CR or LF");
		}
		if (http_slist_addf(&l, "Content-Type: %s", req->content_type) < 0)
			goto too_long;
	}
	if (req->bearer_token) {
		if (!http_header_text_ok(req->bearer_token, false)) {
			http_xfer_headers_free(l);
			return pp_err_set(err, PP_INVALID_ARGUMENT, "bearer token has CR or LF");
		}
		if (http_slist_addf(&l, "Authorization: Bearer %s", req->bearer_token) < 0)
			goto too_long;
	}
	/* No "Expect:" line to suppress 100-continue: libcurl 7.88's SigV4 would sign that
	 * removal directive as an empty "expect" header it never sends (a wrong signature), and
	 * it only asks for 100-continue above 1 MiB of body anyway. */
	*ret = l;
	return 0;
too_long:
	http_xfer_headers_free(l);
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "a request header is longer than %u bytes (or out of memory)",
			  HTTP_AUTH_HEADER_MAX);
}

void http_xfer_headers_free(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p; p = p->next)
		if (p->data)
			explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* ---- what we receive ---- */

struct http_xfer_ctx {
	struct http_response *resp;
	struct http_outcome *out;
};

static size_t http_on_body(char *data, size_t size, size_t n, void *ud)
{
	struct http_xfer_ctx *x = ud;

	if (buf_append(&x->resp->body, data, n) < 0) {
		x->out->too_large = true;
		return 0;
	}
	(void)size;
	return n;
}

/* Keeps the header block of the last response only (a 100 Continue, or a proxy's answer, come
 * first and start with their own status line). */
static size_t http_on_header(char *data, size_t size, size_t n, void *ud)
{
	struct http_xfer_ctx *x = ud;
	struct http_response *r = x->resp;
	size_t len = n, name_len;
	const char *colon, *v, *end;

	(void)size;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		buf_reset(&r->headers);
		r->n_headers = 0;
		return n;
	}
	end = data + len;
	while (end > data && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	colon = memchr(data, ':', (size_t)(end - data));
	if (!colon || colon == data || data[0] == ' ' || data[0] == '\t')
		return n;   /* blank line, obsolete folding, garbage: not a header we keep */
	name_len = (size_t)(colon - data);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (buf_append(&r->headers, data, name_len) < 0 || buf_append(&r->headers, "", 1) < 0 ||
	    buf_append(&r->headers, v, (size_t)(end - v)) < 0 ||
	    buf_append(&r->headers, "", 1) < 0) {
		x->out->headers_too_large = true;
		return 0;
	}
	r->n_headers++;
	return n;
}

/* ---- the transfer ---- */

static CURLcode http_setopt_method(CURL *e, const struct http_request *req)
{
	CURLcode cc = CURLE_OK;
	bool has_body = req->body_len > 0 || req->method == HTTP_POST || req->method == HTTP_PUT ||
			req->method == HTTP_PATCH;

	if (req->method == HTTP_HEAD)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (has_body) {
		cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	} else {
		cc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	if (cc == CURLE_OK && req->method != HTTP_POST && req->method != HTTP_GET)
		cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, http_method_name(req->method));
	return cc;
}

static CURLcode http_setopt_tls(CURL *e, const struct http_settings *s)
{
	CURLcode cc = CURLE_OK;

	if (s->ca_file)
		cc = curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
	if (cc == CURLE_OK && s->client_cert_file)
		cc = curl_easy_setopt(e, CURLOPT_SSLCERT, s->client_cert_file);
	if (cc == CURLE_OK && s->client_key_file)
		cc = curl_easy_setopt(e, CURLOPT_SSLKEY, s->client_key_file);
	if (cc == CURLE_OK && s->insecure) {
		cc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return cc;
}

static CURLcode http_setopt_routing(CURL *e, const struct http_settings *s)
{
	CURLcode cc = CURLE_OK;

	if (s->resolve)
		cc = curl_easy_setopt(e, CURLOPT_RESOLVE, s->resolve);
	if (cc == CURLE_OK && s->connect_to)
		cc = curl_easy_setopt(e, CURLOPT_CONNECT_TO, s->connect_to);
	if (cc == CURLE_OK && s->unix_socket)
		cc = curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, s->unix_socket);
	return cc;
}

static CURLcode http_setopt_auth(CURL *e, const struct http_request *req)
{
	CURLcode cc = CURLE_OK;

	if (!req->aws_sigv4)
		return CURLE_OK;
	cc = curl_easy_setopt(e, CURLOPT_AWS_SIGV4, req->aws_sigv4);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(e, CURLOPT_USERNAME,
				      req->aws_access_key_id ? req->aws_access_key_id : "");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(e, CURLOPT_PASSWORD,
				      req->aws_secret_access_key ? req->aws_secret_access_key : "");
	return cc;
}

/* libcurl takes milliseconds as a long; a month is longer than any call should wait. */
static long http_ms_long(uint64_t ms)
{
	return ms > HTTP_TIMEOUT_MAX_MS ? (long)HTTP_TIMEOUT_MAX_MS : (long)ms;
}

static CURLcode http_setopt_all(struct http_handle *h, const struct http_settings *s,
				const struct http_request *req, struct curl_slist *headers,
				uint64_t timeout_ms, size_t max_response, struct http_xfer_ctx *x)
{
	CURL *e = h->easy;
	CURLcode cc;

	curl_easy_reset(e);
#define SET(opt, val) do { if ((cc = curl_easy_setopt(e, opt, val)) != CURLE_OK) return cc; } while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SHARE, s->share);
	SET(CURLOPT_CONNECTTIMEOUT_MS, http_ms_long(s->connect_timeout_ms));
	SET(CURLOPT_TIMEOUT_MS, http_ms_long(timeout_ms));
	SET(CURLOPT_USERAGENT, s->user_agent);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_response);
	SET(CURLOPT_WRITEFUNCTION, http_on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, http_on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->out->errbuf);
#undef SET
	if ((cc = http_setopt_method(e, req)) != CURLE_OK || (cc = http_setopt_tls(e, s)) != CURLE_OK ||
	    (cc = http_setopt_routing(e, s)) != CURLE_OK)
		return cc;
	return http_setopt_auth(e, req);
}

/* Runs the transfer until it ends or the cancel token fires. */
static CURLcode http_xfer_run(struct http_handle *h, struct cancel *cancel, bool *ret_cancelled)
{
	CURLcode cc = CURLE_OK;
	CURLMsg *m;
	int running = 1, left;

	if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	for (;;) {
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
		if (!running)
			break;
		if (cancel_fired(cancel)) {
			*ret_cancelled = true;
			cc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_poll(h->multi, NULL, 0, HTTP_CANCEL_POLL_MS, NULL) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
	}
	while (!running && (m = curl_multi_info_read(h->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy)
			cc = m->data.result;
	curl_multi_remove_handle(h->multi, h->easy);
	return cc;
}

void http_xfer_perform(struct http_handle *h, const struct http_settings *s,
		       const struct http_request *req, struct curl_slist *headers,
		       uint64_t timeout_ms, size_t max_response, struct http_response *resp,
		       struct http_outcome *out)
{
	struct http_xfer_ctx x = { .resp = resp, .out = out };
	uint64_t t0 = pp_monotonic_ms();
	long status = 0, req_size = 0;

	memset(out, 0, sizeof(*out));
	buf_free(&resp->body);
	buf_init(&resp->body, max_response);
	buf_free(&resp->headers);
	buf_init(&resp->headers, HTTP_MAX_HEADER_BYTES);
	resp->n_headers = 0;
	resp->status = 0;

	out->cc = http_setopt_all(h, s, req, headers, timeout_ms, max_response, &x);
	if (out->cc == CURLE_OK)
		out->cc = http_xfer_run(h, req->cancel, &out->cancelled);
	if (out->cc == CURLE_FILESIZE_EXCEEDED)
		out->too_large = true;
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h->easy, CURLINFO_REQUEST_SIZE, &req_size);
	/* the buffers must not outlive this call inside the easy handle */
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
	if (out->cc != CURLE_OK && !out->errbuf[0])
		pp_strlcpy(out->errbuf, curl_easy_strerror(out->cc), sizeof(out->errbuf));
	http_scrub_query(out->errbuf);
	out->status = out->cc == CURLE_OK ? status : 0;
	resp->status = out->status;
	out->sent = req_size > 0 || status > 0;
	out->ms = pp_monotonic_ms() - t0;
}
