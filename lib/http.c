/*
 * lib/http: the client object and http_do's retry loop (see http.h). The client holds a
 * counting semaphore of request slots, a free list of libcurl handles (each keeps its own
 * connections alive), a libcurl share of DNS and TLS sessions, and counters.
 *
 * The one idea: a slot is held for one attempt only, never across a backoff sleep, and no lock
 * is held across network I/O or a sleep: the client's mutex guards only lists and counters.
 *
 * Locks: http_client.mu (slots, free list, counters), and the share's per-data mutexes
 * (taken by libcurl itself, never while holding mu). They are never nested.
 */
#include "lib/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/cancel.h"
#include "lib/http_priv.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"

#define HTTP_URL_LOG_MAX 256
#define HTTP_NAME_MAX 32

struct http_client {
	char name[HTTP_NAME_MAX];
	struct http_settings s;        /* immutable after http_client_new */
	unsigned max_in_flight;
	unsigned max_attempts;
	uint64_t backoff_base_ms, backoff_max_ms, retry_after_max_ms;
	char *strings[5];              /* owned copies behind s.* */
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

	pthread_mutex_t mu;
	pthread_cond_t slot_cv;        /* signalled when a slot frees; with mu */
	unsigned in_flight;            /* guarded by mu */
	struct http_handle *free_list; /* guarded by mu */
	struct http_stats stats;       /* guarded by mu (except in_flight, copied from above) */
	struct http_op_stats ops[HTTP_MAX_OPS];   /* guarded by mu */
	size_t n_ops;                  /* guarded by mu */
};

int http_global_init(struct pp_err *err)
{
	curl_version_info_data *v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return pp_err_set(err, PP_INTERNAL, "curl_global_init failed");
	v = curl_version_info(CURLVERSION_NOW);
	if (!(v->features & CURL_VERSION_THREADSAFE) && !(v->features & CURL_VERSION_ASYNCHDNS)) {
		curl_global_cleanup();
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "libcurl %s has neither a threaded resolver nor thread-safe init",
				  v->version);
	}
	if (v->version_num < 0x074b00) {
		curl_global_cleanup();
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "libcurl %s is older than 7.75.0 (no AWS SigV4)", v->version);
	}
	return 0;
}

void http_global_fini(void)
{
	curl_global_cleanup();
}

/* ---- client ---- */

static void http_share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *ud)
{
	struct http_client *c = ud;

	(void)h;
	(void)a;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_mu[data]);
}

static void http_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct http_client *c = ud;

	(void)h;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_mu[data]);
}

static int http_share_setup(struct http_client *c, struct pp_err *err)
{
	CURLSH *sh = curl_share_init();

	if (!sh)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "cannot create a libcurl share");
	c->s.share = sh;
	if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, http_share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, http_share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		return pp_err_set(err, PP_INTERNAL, "cannot configure the libcurl share");
	return 0;
}

static int http_slist_copy(const char *const *items, struct curl_slist **ret, const char *what,
			   struct pp_err *err)
{
	struct curl_slist *l = NULL, *n;

	for (; items && *items; items++) {
		n = curl_slist_append(l, *items);
		if (!n) {
			curl_slist_free_all(l);
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory copying %s", what);
		}
		l = n;
	}
	*ret = l;
	return 0;
}

static const char *http_strdup_opt(struct http_client *c, size_t slot, const char *s)
{
	if (!s)
		return NULL;
	c->strings[slot] = pp_xstrdup(s);
	return c->strings[slot];
}

#define HTTP_DEF(v, d) ((v) ? (v) : (d))

static void http_client_copy_config(struct http_client *c, const struct http_client_config *cfg)
{
	pp_strlcpy(c->name, cfg->name, sizeof(c->name));
	c->s.name = c->name;
	c->max_in_flight = HTTP_DEF(cfg->max_in_flight, HTTP_DEFAULT_MAX_IN_FLIGHT);
	c->max_attempts = HTTP_DEF(cfg->max_attempts, HTTP_DEFAULT_MAX_ATTEMPTS);
	c->backoff_base_ms = HTTP_DEF(cfg->backoff_base_ms, HTTP_DEFAULT_BACKOFF_BASE_MS);
	c->backoff_max_ms = HTTP_DEF(cfg->backoff_max_ms, HTTP_DEFAULT_BACKOFF_MAX_MS);
	c->retry_after_max_ms = HTTP_DEF(cfg->retry_after_max_ms, HTTP_DEFAULT_RETRY_AFTER_MAX_MS);
	c->s.connect_timeout_ms = HTTP_DEF(cfg->connect_timeout_ms, HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
	c->s.timeout_ms = HTTP_DEF(cfg->timeout_ms, HTTP_DEFAULT_TIMEOUT_MS);
	c->s.max_response = HTTP_DEF(cfg->max_response, HTTP_DEFAULT_MAX_RESPONSE);
	c->s.user_agent = http_strdup_opt(c, 0, HTTP_DEF(cfg->user_agent, HTTP_DEFAULT_USER_AGENT));
	c->s.ca_file = http_strdup_opt(c, 1, cfg->ca_file);
	c->s.client_cert_file = http_strdup_opt(c, 2, cfg->client_cert_file);
	c->s.client_key_file = http_strdup_opt(c, 3, cfg->client_key_file);
	c->s.unix_socket = http_strdup_opt(c, 4, cfg->unix_socket);
	c->s.insecure = cfg->insecure;
}

struct http_client *http_client_new(const struct http_client_config *cfg, struct pp_err *err)
{
	struct http_client *c;
	size_t i;

	if (!cfg || !cfg->name || !*cfg->name || strlen(cfg->name) >= HTTP_NAME_MAX) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "http client needs a name of 1 to %d characters",
			   HTTP_NAME_MAX - 1);
		return NULL;
	}
	if (cfg->backoff_max_ms && cfg->backoff_base_ms > cfg->backoff_max_ms) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "http client %s: backoff base %llu ms is above the maximum %llu ms",
			   cfg->name, (unsigned long long)cfg->backoff_base_ms,
			   (unsigned long long)cfg->backoff_max_ms);
		return NULL;
	}
	if (!cfg->client_cert_file != !cfg->client_key_file) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "http client %s: a client certificate needs its key and the other way round",
			   cfg->name);
		return NULL;
	}
	c = pp_xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->slot_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_mu[i], NULL);
	http_client_copy_config(c, cfg);
	if (http_share_setup(c, err) < 0 ||
	    http_slist_copy(cfg->resolve, &c->s.resolve, "resolve overrides", err) < 0 ||
	    http_slist_copy(cfg->connect_to, &c->s.connect_to, "connect-to overrides", err) < 0) {
		http_client_free(c);
		return NULL;
	}
	return c;
}

void http_client_free(struct http_client *c)
{
	struct http_handle *h;
	size_t i;

	if (!c)
		return;
	while ((h = c->free_list)) {
		c->free_list = h->next;
		http_handle_cleanup(h);
		free(h);
	}
	if (c->s.share)
		curl_share_cleanup(c->s.share);
	curl_slist_free_all(c->s.resolve);
	curl_slist_free_all(c->s.connect_to);
	for (i = 0; i < PP_ARRAY_SIZE(c->strings); i++)
		free(c->strings[i]);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_mu[i]);
	pthread_cond_destroy(&c->slot_cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

const char *http_client_name(const struct http_client *c)
{
	return c->name;
}

/* ---- slots and handles ---- */

/* Waits for a free slot, waking every HTTP_CANCEL_POLL_MS to look at the cancel token. */
static bool http_slot_acquire(struct http_client *c, struct cancel *cancel)
{
	bool ok = true;

	pthread_mutex_lock(&c->mu);
	while (c->in_flight >= c->max_in_flight) {
		struct timespec ts;

		if (cancel_fired(cancel)) {
			ok = false;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += HTTP_CANCEL_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->slot_cv, &c->mu, &ts);
	}
	if (ok)
		c->in_flight++;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static void http_slot_release(struct http_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->in_flight--;
	pthread_cond_signal(&c->slot_cv);
	pthread_mutex_unlock(&c->mu);
}

/* The most recently used handle (its connections are the warmest), or a new one. */
static struct http_handle *http_handle_get(struct http_client *c, struct pp_err *err)
{
	struct http_handle *h;

	pthread_mutex_lock(&c->mu);
	h = c->free_list;
	if (h)
		c->free_list = h->next;
	pthread_mutex_unlock(&c->mu);
	if (h)
		return h;
	h = pp_xcalloc(1, sizeof(*h));
	if (http_handle_init(h, err) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

static void http_handle_put(struct http_client *c, struct http_handle *h)
{
	pthread_mutex_lock(&c->mu);
	h->next = c->free_list;
	c->free_list = h;
	pthread_mutex_unlock(&c->mu);
}

/* ---- counters ---- */

/* Called with mu held: the row named by the first n bytes of op, or NULL. */
static struct http_op_stats *http_op_find_locked(struct http_client *c, const char *op, size_t n)
{
	size_t i;

	for (i = 0; i < c->n_ops; i++)
		if (strncmp(c->ops[i].op, op, n) == 0 && c->ops[i].op[n] == '\0')
			return &c->ops[i];
	return NULL;
}

/* Called with mu held: the row of op (cut to HTTP_OP_NAME_MAX - 1 bytes), created on first
 * use; once the table has one free row left, new names all count as "other". */
static struct http_op_stats *http_op_row_locked(struct http_client *c, const char *op)
{
	static const char other[] = "other";
	struct http_op_stats *row;
	size_t n = strlen(op);

	if (n > HTTP_OP_NAME_MAX - 1)
		n = HTTP_OP_NAME_MAX - 1;
	row = http_op_find_locked(c, op, n);
	if (row)
		return row;
	if (c->n_ops >= HTTP_MAX_OPS - 1) {
		op = other;
		n = sizeof(other) - 1;
		row = http_op_find_locked(c, op, n);
		if (row)
			return row;
	}
	row = &c->ops[c->n_ops++];
	memset(row, 0, sizeof(*row));
	memcpy(row->op, op, n);
	return row;
}

static void http_count_attempt(struct http_client *c, const char *op, unsigned attempt,
			       long status)
{
	pthread_mutex_lock(&c->mu);
	c->stats.attempts++;
	if (attempt > 1)
		c->stats.retries++;
	if (status == 429)
		c->stats.throttled++;
	http_op_row_locked(c, op)->attempts[http_status_class_of(status)]++;
	pthread_mutex_unlock(&c->mu);
}

static void http_count_request(struct http_client *c, bool failed)
{
	pthread_mutex_lock(&c->mu);
	c->stats.requests++;
	if (failed)
		c->stats.failures++;
	pthread_mutex_unlock(&c->mu);
}

void http_client_stats(struct http_client *c, struct http_stats *ret)
{
	pthread_mutex_lock(&c->mu);
	*ret = c->stats;
	ret->in_flight = c->in_flight;
	pthread_mutex_unlock(&c->mu);
}

size_t http_client_op_stats(struct http_client *c, struct http_op_stats *rows, size_t max)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->n_ops;
	if (rows)
		memcpy(rows, c->ops, (n < max ? n : max) * sizeof(*rows));
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ---- response ---- */

void http_response_free(struct http_response *r)
{
	if (!r)
		return;
	buf_free(&r->body);
	buf_free(&r->headers);
	r->n_headers = 0;
	r->status = 0;
}

bool http_response_header_at(const struct http_response *r, size_t i, const char **ret_name,
			     const char **ret_value)
{
	const char *p = (const char *)r->headers.data;
	size_t k;

	if (i >= r->n_headers || !p)
		return false;
	for (k = 0; k < i; k++) {
		p += strlen(p) + 1;
		p += strlen(p) + 1;
	}
	*ret_name = p;
	*ret_value = p + strlen(p) + 1;
	return true;
}

const char *http_response_header(const struct http_response *r, const char *name)
{
	const char *n, *v;
	size_t i;

	for (i = 0; http_response_header_at(r, i, &n, &v); i++)
		if (strcasecmp(n, name) == 0)
			return v;
	return NULL;
}

const char *http_response_text(const struct http_response *r)
{
	return r->body.data ? (const char *)r->body.data : "";
}

/* ---- the call ---- */

/* What one http_do call needs to remember between attempts. */
struct http_call {
	struct http_client *c;
	const struct http_request *req;
	const char *op;
	char url[HTTP_URL_LOG_MAX];      /* without query string */
	char qurl[HTTP_URL_LOG_MAX + 8]; /* the same as a logfmt value */
	bool idempotent;
	uint64_t timeout_ms;             /* per attempt */
	size_t max_response;
};

static int http_cancel_error(const struct http_call *k, struct pp_err *err)
{
	enum cancel_reason why = cancel_why(k->req->cancel);

	/* libcurl's timer, cut to the deadline, may ring a hair before the token sees it pass */
	if (why == CANCEL_NONE)
		why = CANCEL_DEADLINE;
	return pp_err_set(err, why == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
			  "%s %s %s %s: %s", k->c->name, k->op, http_method_name(k->req->method),
			  k->url, cancel_reason_text(why));
}

/* The attempt's timeout: the per-attempt one, cut to what is left before the deadline
 * (*ret_cut tells which). */
static uint64_t http_attempt_timeout(const struct http_call *k, bool *ret_cut)
{
	uint64_t deadline = cancel_deadline_ns(k->req->cancel), now, left;

	*ret_cut = false;
	if (!deadline)
		return k->timeout_ms;
	now = pp_now_ns();
	left = deadline > now ? (deadline - now + 999999) / 1000000 : 1;
	if (left >= k->timeout_ms)
		return k->timeout_ms;
	*ret_cut = true;
	return left;
}

static bool http_should_retry(const struct http_call *k, const struct http_outcome *o)
{
	if (o->cancelled || o->too_large || o->headers_too_large)
		return false;
	if (o->cc != CURLE_OK)
		return http_curl_retryable(o->cc) && (k->idempotent || !o->sent);
	return http_status_retryable(o->status) && k->idempotent;
}

static uint64_t http_retry_delay(const struct http_call *k, const struct http_response *resp,
				 unsigned attempt)
{
	const char *ra = http_response_header(resp, "Retry-After");
	uint64_t ms, rnd = 0;

	if (ra && http_retry_after_ms(ra, pp_unix_time(), k->c->retry_after_max_ms, &ms) == 0)
		return ms;
	if (pp_random_bytes(&rnd, sizeof(rnd), NULL) < 0)
		rnd = (uint64_t)pp_monotonic_ms() * 2654435761u;
	return http_backoff_ms(k->c->backoff_base_ms, k->c->backoff_max_ms, attempt, rnd);
}

static void http_log_attempt(const struct http_call *k, const struct http_outcome *o,
			     unsigned attempt)
{
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	if (o->cc == CURLE_OK)
		log_debug("http request", "provider=%s op=%s method=%s url=%s status=%ld ms=%llu attempt=%u",
			  k->c->name, k->op, http_method_name(k->req->method), k->qurl, o->status,
			  (unsigned long long)o->ms, attempt);
	else
		log_debug("http request", "provider=%s op=%s method=%s url=%s error=%s ms=%llu attempt=%u",
			  k->c->name, k->op, http_method_name(k->req->method), k->qurl,
			  curl_easy_strerror(o->cc), (unsigned long long)o->ms, attempt);
}

static void http_log_retry(const struct http_call *k, const struct http_outcome *o,
			   unsigned attempt, uint64_t delay_ms)
{
	char reason[64];

	if (o->cc == CURLE_OK)
		snprintf(reason, sizeof(reason), "status=%ld", o->status);
	else
		snprintf(reason, sizeof(reason), "error=\"%s\"", curl_easy_strerror(o->cc));
	log_warn("http retry", "provider=%s op=%s method=%s url=%s %s attempt=%u delay_ms=%llu",
		 k->c->name, k->op, http_method_name(k->req->method), k->qurl, reason, attempt,
		 (unsigned long long)delay_ms);
}

/* The error for the final attempt (not cancelled: see http_cancel_error). */
static int http_final_error(const struct http_call *k, const struct http_outcome *o,
			    const struct http_response *resp, unsigned attempts, struct pp_err *err)
{
	const char *m = http_method_name(k->req->method), *nm = k->c->name;
	char excerpt[HTTP_ERROR_EXCERPT_MAX + 4];

	if (o->too_large)
		return pp_err_set(err, PP_OUT_OF_RANGE,
				  "%s %s %s %s: response body larger than %zu bytes", nm, k->op, m,
				  k->url, k->max_response);
	if (o->headers_too_large)
		return pp_err_set(err, PP_OUT_OF_RANGE,
				  "%s %s %s %s: response headers larger than %u bytes", nm, k->op, m,
				  k->url, HTTP_MAX_HEADER_BYTES);
	if (o->cc == CURLE_URL_MALFORMAT || o->cc == CURLE_UNSUPPORTED_PROTOCOL)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s %s %s %s: %s", nm, k->op, m, k->url,
				  o->errbuf);
	if (o->cc != CURLE_OK)
		return pp_err_set(err, PP_UNAVAILABLE, "%s %s %s %s: %s (after %u attempts)", nm,
				  k->op, m, k->url, o->errbuf, attempts);
	http_excerpt(excerpt, sizeof(excerpt), resp->body.data, resp->body.len,
		     HTTP_ERROR_EXCERPT_MAX);
	return pp_err_set(err, http_status_to_code(o->status),
			  "%s %s %s %s: HTTP status %ld (after %u attempts): %s", nm, k->op, m,
			  k->url, o->status, attempts, excerpt[0] ? excerpt : "(empty body)");
}

static int http_call_init(struct http_call *k, struct http_client *c,
			  const struct http_request *req, struct pp_err *err)
{
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->req = req;
	k->op = req->op && *req->op ? req->op : "request";
	if (!req->url)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s %s: request without a URL", c->name,
				  k->op);
	http_url_redact(k->url, sizeof(k->url), req->url);
	log_quote(k->qurl, sizeof(k->qurl), k->url);
	if ((unsigned)req->method > HTTP_DELETE)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s %s: unknown method %d", c->name,
				  k->op, (int)req->method);
	if (req->body_len && !req->body)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s %s: body_len without a body",
				  c->name, k->op);
	if (req->aws_sigv4 && (!req->aws_access_key_id || !req->aws_secret_access_key))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s %s: SigV4 signing needs an access key id and a secret key",
				  c->name, k->op);
	k->idempotent = (req->flags & HTTP_F_IDEMPOTENT) || req->method != HTTP_POST;
	if (req->method == HTTP_PATCH)
		k->idempotent = (req->flags & HTTP_F_IDEMPOTENT) != 0;
	k->timeout_ms = req->timeout_ms ? req->timeout_ms : c->s.timeout_ms;
	k->max_response = req->max_response ? req->max_response : c->s.max_response;
	return 0;
}

/* One attempt: slot, handle, transfer, counters, log. -1 only if no transfer could start. */
static int http_attempt(struct http_call *k, struct curl_slist *headers, unsigned attempt,
			struct http_response *resp, struct http_outcome *o, struct pp_err *err)
{
	struct http_handle *h;
	uint64_t timeout;
	bool cut;

	if (!http_slot_acquire(k->c, k->req->cancel))
		return http_cancel_error(k, err);
	h = http_handle_get(k->c, err);
	if (!h) {
		http_slot_release(k->c);
		return -1;
	}
	timeout = http_attempt_timeout(k, &cut);
	http_xfer_perform(h, &k->c->s, k->req, headers, timeout, k->max_response, resp, o);
	if (o->cc == CURLE_OPERATION_TIMEDOUT && cut)
		o->cancelled = true;   /* the deadline, not the attempt's own timeout */
	http_handle_put(k->c, h);
	http_slot_release(k->c);
	http_count_attempt(k->c, k->op, attempt, o->status);
	http_log_attempt(k, o, attempt);
	return 0;
}

static int http_call_run(struct http_call *k, struct curl_slist *headers,
			 struct http_response *resp, struct pp_err *err)
{
	struct http_outcome o;
	unsigned attempt;
	uint64_t delay;

	for (attempt = 1;; attempt++) {
		if (cancel_fired(k->req->cancel))
			return http_cancel_error(k, err);
		if (http_attempt(k, headers, attempt, resp, &o, err) < 0)
			return -1;
		if (o.cancelled)
			return http_cancel_error(k, err);
		if (attempt >= k->c->max_attempts || !http_should_retry(k, &o))
			break;
		delay = http_retry_delay(k, resp, attempt);
		http_log_retry(k, &o, attempt, delay);
		if (cancel_sleep_ms(k->req->cancel, delay))
			return http_cancel_error(k, err);
	}
	if (o.cc == CURLE_OK && !o.too_large && !o.headers_too_large &&
	    ((o.status >= 200 && o.status < 300) || (k->req->flags & HTTP_F_RAW_STATUS)))
		return 0;
	return http_final_error(k, &o, resp, attempt, err);
}

int http_do(struct http_client *c, const struct http_request *req, struct http_response *ret,
	    struct pp_err *err)
{
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct curl_slist *headers = NULL;
	struct http_call k;
	int rc;

	rc = http_call_init(&k, c, req, err);
	if (rc == 0)
		rc = http_xfer_headers(req, &headers, err);
	if (rc == 0)
		rc = http_call_run(&k, headers, &resp, err);
	http_xfer_headers_free(headers);
	http_count_request(c, rc < 0);
	if (rc < 0) {
		http_response_free(&resp);
		return -1;
	}
	http_response_free(ret);
	*ret = resp;
	return 0;
}
