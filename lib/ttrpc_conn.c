/*
 * One ttRPC connection in the event loop: frame reader + frame writer (see ttrpc_conn.h).
 *
 * The reader is a three-state machine fed from a 64 KiB input buffer: HEADER (10 bytes),
 * DATA (copied into a buffer of exactly the announced size, at most TTRPC_MAX_DATA, read
 * directly into it when it is large) and DISCARD (an oversize frame, skipped chunk by chunk).
 * The one idea for safety: `busy` counts how deep we are inside loop callbacks, so an owner that
 * frees the connection from one of its callbacks only marks it; the memory goes when the
 * outermost callback unwinds.
 */
#include "lib/ttrpc_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONN_IN_CAP 65536u
#define CONN_READS_PER_EVENT 256      /* then yield to other fds (16 MiB) */
#define CONN_OUT_KEEP (256u * 1024)   /* an idle output buffer above this is released */

enum conn_rstate { RS_HEADER, RS_DATA, RS_DISCARD };

struct ttrpc_conn {
	struct loop *loop;
	struct stream *st;
	const struct ttrpc_conn_ops *ops;
	void *owner;

	bool handshaken;
	bool dead;          /* broken or closing: no more I/O, no more callbacks but `closed` */
	bool reported;      /* ops->closed has been called */
	bool freed;         /* ttrpc_conn_free() called while busy */
	int busy;
	uint32_t events;    /* what the loop watches now */
	uint32_t read_want; /* direction the last read EAGAIN waits for */
	uint32_t write_want;
	struct loop_timer *later;   /* deferred work: a broken write's report, or more reading */
	struct loop_timer *hs_timer; /* handshake deadline, until handshaken */
	struct pp_err broken;       /* why a write failed, reported by `later` */

	uint8_t *in;
	size_t in_len;
	enum conn_rstate rstate;
	struct ttrpc_header cur;
	uint8_t *data;      /* RS_DATA: cur.length bytes */
	size_t have;        /* RS_DATA: bytes of data received; RS_DISCARD: bytes left */

	uint8_t *out;
	size_t out_off, out_len, out_cap;
};

static void conn_on_event(void *arg, uint32_t events);

static void conn_destroy(struct ttrpc_conn *c)
{
	loop_timer_cancel(c->loop, c->later);
	loop_timer_cancel(c->loop, c->hs_timer);
	if (c->st) {
		loop_fd_del(c->loop, c->st->fd);
		stream_free(c->st);
	}
	free(c->in);
	free(c->data);
	free(c->out);
	free(c);
}

static void conn_enter(struct ttrpc_conn *c)
{
	c->busy++;
}

static void conn_leave(struct ttrpc_conn *c)
{
	if (--c->busy == 0 && c->freed)
		conn_destroy(c);
}

/* Stops all I/O and tells the owner, once. */
static void conn_fail(struct ttrpc_conn *c, const struct pp_err *why)
{
	if (c->reported || c->freed)
		return;
	c->reported = true;
	if (!c->dead) {
		c->dead = true;
		loop_fd_del(c->loop, c->st->fd);
	}
	c->ops->closed(c->owner, why);
}

static void conn_fail_msg(struct ttrpc_conn *c, int code, const char *msg)
{
	struct pp_err e;

	pp_err_set(&e, code, "%s", msg);
	conn_fail(c, &e);
}

static void conn_fail_errno(struct ttrpc_conn *c, int errnum, const char *what)
{
	struct pp_err e;

	pp_err_errno(&e, PP_UNAVAILABLE, errnum, "%s %s", what, c->st->peer);
	conn_fail(c, &e);
}

static void conn_update_events(struct ttrpc_conn *c)
{
	uint32_t want;

	if (c->dead || c->freed)
		return;
	if (!c->handshaken)
		want = c->st->want ? c->st->want : EPOLLIN;
	else
		want = c->read_want | (c->out_len > c->out_off ? c->write_want : 0);
	if (want != c->events && loop_fd_mod(c->loop, c->st->fd, want) == 0)
		c->events = want;
}

/* ---- reading ---- */

static bool conn_gone(const struct ttrpc_conn *c)
{
	return c->dead || c->freed;
}

static void conn_deliver(struct ttrpc_conn *c)
{
	struct ttrpc_header h = c->cur;
	uint8_t *d = c->data;

	c->data = NULL;
	c->have = 0;
	c->rstate = RS_HEADER;
	c->ops->frame(c->owner, &h, d);
}

static void conn_start_frame(struct ttrpc_conn *c, const uint8_t *hdr)
{
	ttrpc_header_decode(hdr, &c->cur);
	c->have = 0;
	if (c->cur.length > TTRPC_MAX_DATA) {
		c->rstate = RS_DISCARD;
		c->have = c->cur.length;
		return;
	}
	if (c->cur.length == 0) {
		conn_deliver(c);
		return;
	}
	c->data = malloc(c->cur.length);
	if (!c->data) {
		conn_fail_msg(c, PP_RESOURCE_EXHAUSTED, "out of memory for a ttRPC frame");
		return;
	}
	c->rstate = RS_DATA;
}

/* Consumes what it can of the input buffer; callbacks may kill or free the connection. */
static void conn_parse(struct ttrpc_conn *c)
{
	size_t off = 0;

	while (!conn_gone(c)) {
		size_t avail = c->in_len - off, n;

		if (c->rstate == RS_HEADER) {
			if (avail < TTRPC_HEADER_SIZE)
				break;
			off += TTRPC_HEADER_SIZE;
			conn_start_frame(c, c->in + off - TTRPC_HEADER_SIZE);
		} else if (c->rstate == RS_DATA) {
			if (avail == 0)
				break;
			n = c->cur.length - c->have;
			n = n < avail ? n : avail;
			memcpy(c->data + c->have, c->in + off, n);
			off += n;
			c->have += n;
			if (c->have == c->cur.length)
				conn_deliver(c);
		} else {
			if (avail == 0)
				break;
			n = c->have < avail ? c->have : avail;
			off += n;
			c->have -= n;
			if (c->have == 0) {
				struct ttrpc_header h = c->cur;

				c->rstate = RS_HEADER;
				c->ops->oversize(c->owner, &h);
			}
		}
	}
	if (c->freed)
		return;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

/* Large frame bodies are read straight into their buffer, skipping the copy. */
static bool conn_read_direct(const struct ttrpc_conn *c)
{
	return c->rstate == RS_DATA && c->in_len == 0 && c->cur.length - c->have >= CONN_IN_CAP;
}

static void conn_resume(void *arg);

static void conn_read(struct ttrpc_conn *c)
{
	for (int i = 0; i < CONN_READS_PER_EVENT; i++) {
		ssize_t n;

		if (conn_read_direct(c)) {
			n = stream_read(c->st, c->data + c->have, c->cur.length - c->have);
			if (n > 0) {
				c->have += (size_t)n;
				if (c->have == c->cur.length)
					conn_deliver(c);
				if (conn_gone(c))
					return;
				continue;
			}
		} else {
			n = stream_read(c->st, c->in + c->in_len, CONN_IN_CAP - c->in_len);
			if (n > 0) {
				c->in_len += (size_t)n;
				conn_parse(c);
				if (conn_gone(c))
					return;
				continue;
			}
		}
		if (n == 0) {
			conn_fail_msg(c, PP_UNAVAILABLE, "connection closed");
			return;
		}
		if (errno != EAGAIN) {
			conn_fail_errno(c, errno, "reading from");
			return;
		}
		c->read_want = c->st->want ? c->st->want : EPOLLIN;
		if (stream_pending(c->st) == 0)
			return;
	}
	/* Budget spent with data still inside the stream (TLS): the fd may never become
	 * readable again for it, so come back through a timer. */
	if (!c->later)
		c->later = loop_timer_add(c->loop, 0, conn_resume, c);
}

/* ---- writing ---- */

static void conn_report_broken(void *arg)
{
	struct ttrpc_conn *c = arg;

	c->later = NULL;
	conn_enter(c);
	conn_fail(c, &c->broken);
	conn_leave(c);
}

/* Writes pending output until EAGAIN. Returns -1 after a fatal error (the connection is then
 * dead; the error is reported by a timer so that no caller is re-entered). */
static int conn_flush(struct ttrpc_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = stream_write(c->st, c->out + c->out_off, c->out_len - c->out_off);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			c->write_want = c->st->want ? c->st->want : EPOLLOUT;
			return 0;
		}
		pp_err_errno(&c->broken, PP_UNAVAILABLE, n < 0 ? errno : EPIPE, "writing to %s",
			     c->st->peer);
		c->dead = true;
		loop_fd_del(c->loop, c->st->fd);
		loop_timer_cancel(c->loop, c->later);
		c->later = loop_timer_add(c->loop, 0, conn_report_broken, c);
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > CONN_OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

static int conn_out_reserve(struct ttrpc_conn *c, size_t n)
{
	size_t used = c->out_len - c->out_off, cap;
	uint8_t *p;

	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, used);
		c->out_off = 0;
		c->out_len = used;
	}
	if (c->out_cap - used >= n)
		return 0;
	cap = c->out_cap ? c->out_cap : 4096;
	while (cap - used < n)
		cap *= 2;
	p = realloc(c->out, cap);
	if (!p)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

int ttrpc_conn_send(struct ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags,
		    const uint8_t *data, size_t len, struct pp_err *err)
{
	struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = stream_id, .type = type,
				  .flags = flags };

	if (len > TTRPC_MAX_DATA)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "message length %zu exceed maximum message size of %u", len,
				  TTRPC_MAX_DATA);
	if (conn_gone(c))
		return pp_err_set(err, PP_UNAVAILABLE, "connection closed");
	if (conn_out_reserve(c, TTRPC_HEADER_SIZE + len) < 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory queueing a ttRPC frame");
	ttrpc_header_encode(&h, c->out + c->out_len);
	if (len)
		memcpy(c->out + c->out_len + TTRPC_HEADER_SIZE, data, len);
	c->out_len += TTRPC_HEADER_SIZE + len;
	if (c->handshaken && conn_flush(c) < 0)
		return 0;   /* queued; the break is reported through ops->closed */
	conn_update_events(c);
	return 0;
}

/* ---- events ---- */

static void conn_handshake(struct ttrpc_conn *c)
{
	struct pp_err e = { 0 };
	int r = stream_handshake(c->st, &e);

	if (r < 0) {
		conn_fail(c, &e);
		return;
	}
	if (r == 1) {
		c->handshaken = true;
		loop_timer_cancel(c->loop, c->hs_timer);
		c->hs_timer = NULL;
	}
}

static void conn_handshake_expired(void *arg)
{
	struct ttrpc_conn *c = arg;

	c->hs_timer = NULL;
	conn_enter(c);
	if (!c->handshaken && !conn_gone(c))
		conn_fail_msg(c, PP_DEADLINE_EXCEEDED, "the TLS handshake did not finish in time");
	conn_leave(c);
}

static void conn_run(struct ttrpc_conn *c)
{
	if (!c->handshaken) {
		conn_handshake(c);
		if (!c->handshaken || conn_gone(c)) {
			conn_update_events(c);
			return;
		}
	}
	conn_read(c);
	if (!conn_gone(c))
		conn_flush(c);
	conn_update_events(c);
}

static void conn_on_event(void *arg, uint32_t events)
{
	struct ttrpc_conn *c = arg;

	/* Level-triggered: trying both directions is cheap and TLS-safe. */
	conn_enter(c);
	conn_run(c);
	/* An error or hang-up that reading did not surface would make epoll report it forever. */
	if (!conn_gone(c) && !c->later && (events & (EPOLLERR | EPOLLHUP)))
		conn_fail_msg(c, PP_UNAVAILABLE, "connection closed");
	conn_leave(c);
}

static void conn_resume(void *arg)
{
	struct ttrpc_conn *c = arg;

	c->later = NULL;
	conn_enter(c);
	if (!conn_gone(c))
		conn_run(c);
	conn_leave(c);
}

struct ttrpc_conn *ttrpc_conn_new(struct loop *l, struct stream *st, uint64_t handshake_ms,
				  const struct ttrpc_conn_ops *ops, void *owner, struct pp_err *err)
{
	struct ttrpc_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->in = malloc(CONN_IN_CAP);
	if (!c || !c->in) {
		if (c)
			free(c);
		stream_free(st);
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory for a ttRPC connection");
		return NULL;
	}
	c->loop = l;
	c->st = st;
	c->ops = ops;
	c->owner = owner;
	c->handshaken = handshake_ms == 0;
	c->read_want = EPOLLIN;
	c->write_want = EPOLLOUT;
	c->events = handshake_ms ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
	if (loop_fd_add(l, st->fd, c->events, conn_on_event, c, err) < 0) {
		c->st = NULL;
		stream_free(st);
		conn_destroy(c);
		return NULL;
	}
	if (handshake_ms)
		c->hs_timer = loop_timer_add(l, handshake_ms, conn_handshake_expired, c);
	return c;
}

bool ttrpc_conn_alive(const struct ttrpc_conn *c)
{
	return c && !conn_gone(c);
}

const char *ttrpc_conn_peer(const struct ttrpc_conn *c)
{
	return c->st ? c->st->peer : "closed";
}

void ttrpc_conn_free(struct ttrpc_conn *c)
{
	if (!c)
		return;
	if (c->busy == 0) {
		conn_destroy(c);
		return;
	}
	/* Inside one of our callbacks: close now, release the memory when it unwinds. */
	c->freed = true;
	c->dead = true;
	loop_timer_cancel(c->loop, c->later);
	c->later = NULL;
	loop_fd_del(c->loop, c->st->fd);
	stream_free(c->st);
	c->st = NULL;
}
