/*
 * Asynchronous TCP (+TLS) dial (see dial.h).
 *
 * The one idea: a dial is a small state machine (connecting -> handshaking -> done) owned by the
 * loop. Whatever ends it — success, a socket error, a TLS failure, the timeout — goes through
 * dial_finish(), which releases everything (watch, timers, fd) before calling done, so done may
 * freely start another dial. A failure noticed inside dial_tcp_async itself is reported through
 * a zero-delay timer, so done never runs inside the caller's own call.
 */
#include "lib/dial.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/tls.h"
#include "lib/util.h"

#define DIAL_ADDR_MAX 80   /* "[ipv6]:port" */

enum dial_state { DIAL_CONNECTING, DIAL_HANDSHAKING };

struct dial {
	struct loop *loop;
	enum dial_state state;
	int fd;                        /* watched by the loop while >= 0 and s == NULL */
	struct stream *s;              /* TLS stream while handshaking (owns fd) */
	bool watching;
	SSL_CTX *ctx;                  /* NULL: plain TCP; referenced while we live */
	char addr[DIAL_ADDR_MAX];      /* "host:port" for messages */
	char server_name[TLS_SERVER_NAME_MAX + 1];
	uint64_t timeout_ms;
	struct loop_timer *timeout;
	struct loop_timer *deferred;   /* reports a failure found inside dial_tcp_async */
	struct pp_err err;
	dial_done_fn done;
	void *arg;
};

static int dial_fd(const struct dial *d)
{
	return d->s ? d->s->fd : d->fd;
}

/* Releases everything but the stream being handed over (keep). */
static void dial_release(struct dial *d, struct stream *keep)
{
	if (d->watching)
		loop_fd_del(d->loop, dial_fd(d));
	loop_timer_cancel(d->loop, d->timeout);
	loop_timer_cancel(d->loop, d->deferred);
	if (d->s && d->s != keep)
		stream_free(d->s);
	else if (!d->s && d->fd >= 0)
		close(d->fd);
	SSL_CTX_free(d->ctx);
	free(d);
}

static void dial_finish(struct dial *d, struct stream *s)
{
	dial_done_fn done = d->done;
	void *arg = d->arg;
	struct pp_err err = d->err;

	dial_release(d, s);
	done(arg, s, s ? NULL : &err);
}

static void dial_on_timeout(void *arg)
{
	struct dial *d = arg;

	d->timeout = NULL;   /* fired: nothing to cancel */
	if (d->state == DIAL_HANDSHAKING)
		pp_err_set(&d->err, PP_DEADLINE_EXCEEDED, "TLS handshake with %s timed out after %llu ms",
			   d->addr, (unsigned long long)d->timeout_ms);
	else
		pp_err_set(&d->err, PP_DEADLINE_EXCEEDED, "connecting to %s timed out after %llu ms",
			   d->addr, (unsigned long long)d->timeout_ms);
	dial_finish(d, NULL);
}

static void dial_on_deferred(void *arg)
{
	struct dial *d = arg;

	d->deferred = NULL;
	dial_finish(d, NULL);
}

static void dial_on_fd(void *arg, uint32_t events);

/* One handshake step; finishes the dial when the handshake is over either way. */
static void dial_handshake_step(struct dial *d)
{
	int r = stream_handshake(d->s, &d->err);

	if (r == 0) {
		loop_fd_mod(d->loop, d->s->fd, d->s->want);
		return;
	}
	if (r < 0) {
		dial_finish(d, NULL);
		return;
	}
	loop_fd_del(d->loop, d->s->fd);
	d->watching = false;
	dial_finish(d, d->s);
}

/* The socket became writable: the connect finished, one way or the other. */
static void dial_connected(struct dial *d)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	struct stream *s;

	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		pp_err_errno(&d->err, PP_UNAVAILABLE, soerr, "connecting to %s", d->addr);
		dial_finish(d, NULL);
		return;
	}
	if (!d->ctx) {
		loop_fd_del(d->loop, d->fd);
		d->watching = false;
		s = stream_plain_new(d->fd, &d->err);
		d->fd = -1;   /* owned (and on failure closed) by stream_plain_new */
		dial_finish(d, s);
		return;
	}
	/* the TLS stream takes the fd (and closes it on failure): stop watching it first */
	loop_fd_del(d->loop, d->fd);
	d->watching = false;
	d->s = tls_stream_new(d->ctx, d->fd, false, d->server_name, &d->err);
	d->fd = -1;
	if (!d->s) {
		dial_finish(d, NULL);
		return;
	}
	if (loop_fd_add(d->loop, d->s->fd, d->s->want, dial_on_fd, d, &d->err) < 0) {
		dial_finish(d, NULL);
		return;
	}
	d->watching = true;
	d->state = DIAL_HANDSHAKING;
	dial_handshake_step(d);
}

static void dial_on_fd(void *arg, uint32_t events)
{
	struct dial *d = arg;

	(void)events;
	if (d->state == DIAL_CONNECTING)
		dial_connected(d);
	else
		dial_handshake_step(d);
}

/* Starts the non-blocking connect; -1 with d->err set when it fails at once. */
static int dial_start(struct dial *d, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);

	if (rc != 0)
		return pp_err_set(&d->err, PP_INVALID_ARGUMENT,
				  "dial address %s is not a numeric IP address and port: %s", d->addr,
				  gai_strerror(rc));
	d->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		rc = errno;
		freeaddrinfo(ai);
		return pp_err_errno(&d->err, PP_UNAVAILABLE, rc, "creating a socket for %s", d->addr);
	}
	stream_tcp_nodelay(d->fd);
	rc = connect(d->fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
	freeaddrinfo(ai);
	if (rc != 0 && rc != EINPROGRESS)
		return pp_err_errno(&d->err, PP_UNAVAILABLE, rc, "connecting to %s", d->addr);
	/* connected or in progress: writable tells us which, through SO_ERROR */
	if (loop_fd_add(d->loop, d->fd, EPOLLOUT, dial_on_fd, d, &d->err) < 0)
		return -1;
	d->watching = true;
	return 0;
}

static void dial_format_addr(char *buf, size_t size, const char *host, const char *port)
{
	int n = snprintf(buf, size, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);

	if (n < 0 || (size_t)n >= size)
		snprintf(buf, size, "(long address)");
}

struct dial *dial_tcp_async(struct loop *l, const char *host, const char *port, SSL_CTX *ctx,
			    const char *server_name, uint64_t timeout_ms, dial_done_fn done,
			    void *arg)
{
	struct dial *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->loop = l;
	d->fd = -1;
	d->done = done;
	d->arg = arg;
	d->timeout_ms = timeout_ms;
	dial_format_addr(d->addr, sizeof(d->addr), host ? host : "", port ? port : "");
	if (ctx && SSL_CTX_up_ref(ctx))
		d->ctx = ctx;
	if (server_name)
		pp_strlcpy(d->server_name, server_name, sizeof(d->server_name));

	if (!host || !port)
		pp_err_set(&d->err, PP_INVALID_ARGUMENT, "dial needs a host and a port");
	else if (ctx && !d->ctx)
		pp_err_set(&d->err, PP_INTERNAL, "referencing the TLS context failed");
	if (d->err.code == PP_OK && dial_start(d, host, port) == 0) {
		if (timeout_ms) {
			d->timeout = loop_timer_add(l, timeout_ms, dial_on_timeout, d);
			if (!d->timeout)
				goto oom;
		}
		return d;
	}
	d->deferred = loop_timer_add(l, 0, dial_on_deferred, d);
	if (d->deferred)
		return d;
oom:
	d->done = NULL;
	dial_release(d, NULL);
	return NULL;
}

void dial_cancel(struct dial *d)
{
	if (d)
		dial_release(d, NULL);
}
