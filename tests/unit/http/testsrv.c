/*
 * Loopback HTTP/1.1 test server (see testsrv.h). Every blocking call waits at most
 * TS_POLL_MS so that ts_stop() ends all threads quickly even while a scripted response is
 * being delayed for seconds.
 */
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TS_POLL_MS 10
#define TS_MAX_REQUESTS 512
#define TS_MAX_CONNS 128
#define TS_MAX_SCRIPT 16
#define TS_MAX_BODY (1u << 20)

struct ts_conn {
	struct testsrv *ts;
	int fd;
	unsigned id;
	pthread_t thread;
};

struct testsrv {
	int lfd;
	int port;
	atomic_bool stop;
	pthread_t accept_thread;
	pthread_mutex_t mu;
	struct ts_response script[TS_MAX_SCRIPT];   /* guarded by mu */
	size_t n_script;
	struct ts_request *reqs[TS_MAX_REQUESTS];   /* guarded by mu */
	size_t n_reqs;
	struct ts_conn *conns[TS_MAX_CONNS];        /* guarded by mu */
	size_t n_conns;
	int concurrent, max_concurrent;             /* guarded by mu */
};

static void ts_sleep_ms(struct testsrv *ts, unsigned ms)
{
	struct timespec d = { 0, TS_POLL_MS * 1000000L };
	unsigned waited;

	for (waited = 0; waited < ms && !atomic_load(&ts->stop); waited += TS_POLL_MS)
		nanosleep(&d, NULL);
}

/* Reads into buf until it holds n bytes; false on EOF, error or stop. */
static bool ts_read_more(struct testsrv *ts, int fd, char *buf, size_t *len, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (!atomic_load(&ts->stop)) {
		if (poll(&p, 1, TS_POLL_MS) <= 0)
			continue;
		n = recv(fd, buf + *len, cap - *len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		*len += (size_t)n;
		return true;
	}
	return false;
}

static bool ts_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

const char *ts_header(const struct ts_request *r, const char *name, char *out, size_t size)
{
	const char *p = r->headers;
	size_t nl = strlen(name);

	while (*p) {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1;
			size_t vl;

			while (*v == ' ')
				v++;
			vl = (size_t)(p + len - v);
			if (vl >= size)
				vl = size - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return out;
		}
		p += len + (eol ? 2 : 0);
	}
	return NULL;
}

/* Parses one request from buf (head complete); reads the body. NULL on a bad request. */
static struct ts_request *ts_parse(struct testsrv *ts, int fd, char *buf, size_t *len,
				   size_t cap, struct ts_conn *c)
{
	struct ts_request *r = calloc(1, sizeof(*r));
	char *end = strstr(buf, "\r\n\r\n"), *line_end = strstr(buf, "\r\n"), cl[32];
	size_t head = (size_t)(end - buf) + 4, body_len = 0;

	r->conn = c->id;
	if (sscanf(buf, "%15s %2047s", r->method, r->target) != 2)
		goto bad;
	memcpy(r->headers, line_end + 2,
	       (size_t)(end - line_end - 2) < sizeof(r->headers) - 1 ? (size_t)(end - line_end - 2)
								     : sizeof(r->headers) - 1);
	if (ts_header(r, "Content-Length", cl, sizeof(cl)))
		body_len = strtoul(cl, NULL, 10);
	if (body_len > TS_MAX_BODY || head + body_len > cap)
		goto bad;
	while (*len < head + body_len)
		if (!ts_read_more(ts, fd, buf, len, cap))
			goto bad;
	r->body = calloc(1, body_len + 1);
	memcpy(r->body, buf + head, body_len);
	r->body_len = body_len;
	memmove(buf, buf + head + body_len, *len - head - body_len);
	*len -= head + body_len;
	buf[*len] = '\0';
	return r;
bad:
	free(r);
	return NULL;
}

static bool ts_respond(int fd, const struct ts_response *rs)
{
	char head[4096];
	size_t body_len = rs->fill ? rs->fill : (rs->body ? strlen(rs->body) : 0);
	int n;

	if (rs->no_length)
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sConnection: close\r\n\r\n",
			     rs->status, rs->headers ? rs->headers : "");
	else
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n%s\r\n",
			     rs->status, rs->headers ? rs->headers : "", body_len,
			     rs->close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) || !ts_send_all(fd, head, (size_t)n))
		return false;
	if (rs->fill) {
		char chunk[4096];
		size_t left = rs->fill;

		memset(chunk, 'x', sizeof(chunk));
		while (left > 0) {
			size_t k = left < sizeof(chunk) ? left : sizeof(chunk);

			if (!ts_send_all(fd, chunk, k))
				return false;
			left -= k;
		}
	} else if (body_len && !ts_send_all(fd, rs->body, body_len)) {
		return false;
	}
	return !rs->no_length && !rs->close;
}

/* Records r and picks its response; tracks how many requests are being served at once. */
static struct ts_response ts_begin(struct testsrv *ts, struct ts_request *r)
{
	struct ts_response rs = { .status = 500, .body = "no script" };

	pthread_mutex_lock(&ts->mu);
	if (ts->n_script)
		rs = ts->script[ts->n_reqs < ts->n_script ? ts->n_reqs : ts->n_script - 1];
	if (ts->n_reqs < TS_MAX_REQUESTS)
		ts->reqs[ts->n_reqs++] = r;
	else
		free(r->body), free(r);
	if (++ts->concurrent > ts->max_concurrent)
		ts->max_concurrent = ts->concurrent;
	pthread_mutex_unlock(&ts->mu);
	return rs;
}

static void ts_end(struct testsrv *ts)
{
	pthread_mutex_lock(&ts->mu);
	ts->concurrent--;
	pthread_mutex_unlock(&ts->mu);
}

static void *ts_conn_main(void *arg)
{
	struct ts_conn *c = arg;
	struct testsrv *ts = c->ts;
	size_t cap = TS_MAX_BODY + 65536, len = 0;
	char *buf = malloc(cap + 1);
	bool keep = true;

	buf[0] = '\0';
	while (keep && !atomic_load(&ts->stop)) {
		struct ts_request *r;
		struct ts_response rs;

		while (!strstr(buf, "\r\n\r\n")) {
			if (len >= cap || !ts_read_more(ts, c->fd, buf, &len, cap))
				goto out;
			buf[len] = '\0';
		}
		r = ts_parse(ts, c->fd, buf, &len, cap, c);
		if (!r)
			break;
		rs = ts_begin(ts, r);
		ts_sleep_ms(ts, rs.delay_ms);
		keep = !rs.drop && !atomic_load(&ts->stop) && ts_respond(c->fd, &rs);
		ts_end(ts);
	}
out:
	free(buf);
	close(c->fd);
	return NULL;
}

static void *ts_accept_main(void *arg)
{
	struct testsrv *ts = arg;
	struct pollfd p = { .fd = ts->lfd, .events = POLLIN };

	while (!atomic_load(&ts->stop)) {
		struct ts_conn *c;
		int fd;

		if (poll(&p, 1, TS_POLL_MS) <= 0)
			continue;
		fd = accept4(ts->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		c->ts = ts;
		c->fd = fd;
		pthread_mutex_lock(&ts->mu);
		if (ts->n_conns == TS_MAX_CONNS) {
			pthread_mutex_unlock(&ts->mu);
			close(fd);
			free(c);
			continue;
		}
		ts->conns[ts->n_conns++] = c;
		c->id = (unsigned)ts->n_conns;
		pthread_mutex_unlock(&ts->mu);
		pthread_create(&c->thread, NULL, ts_conn_main, c);
	}
	return NULL;
}

struct testsrv *ts_start(void)
{
	struct testsrv *ts = calloc(1, sizeof(*ts));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ts->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ts->lfd < 0 || bind(ts->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(ts->lfd, 64) < 0 || getsockname(ts->lfd, (struct sockaddr *)&a, &alen) < 0) {
		perror("testsrv");
		abort();
	}
	ts->port = ntohs(a.sin_port);
	pthread_mutex_init(&ts->mu, NULL);
	atomic_init(&ts->stop, false);
	pthread_create(&ts->accept_thread, NULL, ts_accept_main, ts);
	return ts;
}

void ts_stop(struct testsrv *ts)
{
	size_t i;

	atomic_store(&ts->stop, true);
	pthread_join(ts->accept_thread, NULL);
	for (i = 0; i < ts->n_conns; i++) {
		pthread_join(ts->conns[i]->thread, NULL);
		free(ts->conns[i]);
	}
	for (i = 0; i < ts->n_reqs; i++) {
		free(ts->reqs[i]->body);
		free(ts->reqs[i]);
	}
	close(ts->lfd);
	pthread_mutex_destroy(&ts->mu);
	free(ts);
}

int ts_port(const struct testsrv *ts)
{
	return ts->port;
}

void ts_script(struct testsrv *ts, const struct ts_response *r, size_t n)
{
	pthread_mutex_lock(&ts->mu);
	ts->n_script = n < TS_MAX_SCRIPT ? n : TS_MAX_SCRIPT;
	memcpy(ts->script, r, ts->n_script * sizeof(*r));
	pthread_mutex_unlock(&ts->mu);
}

size_t ts_count(struct testsrv *ts)
{
	size_t n;

	pthread_mutex_lock(&ts->mu);
	n = ts->n_reqs;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

const struct ts_request *ts_request(struct testsrv *ts, size_t i)
{
	const struct ts_request *r;

	pthread_mutex_lock(&ts->mu);
	r = i < ts->n_reqs ? ts->reqs[i] : NULL;
	pthread_mutex_unlock(&ts->mu);
	return r;
}

int ts_max_concurrent(struct testsrv *ts)
{
	int n;

	pthread_mutex_lock(&ts->mu);
	n = ts->max_concurrent;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

int ts_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
		abort();
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}
