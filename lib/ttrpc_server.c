/*
 * ttRPC server (see ttrpc.h): unix listeners and adopted streams, one ttrpc_conn per client,
 * handlers looked up by service and method.
 *
 * The one idea: a call (struct ttrpc_call) lives from its Request frame until its handler
 * answers, however long that takes and from whatever thread, and independently of its
 * connection. The server keeps every unanswered call in one list; when a connection closes its
 * calls are detached (call->sc = NULL) and their cancel tokens fire, and a reply that arrives
 * later is simply dropped. A reply from another thread travels to the loop in a post item
 * embedded in the call, so answering can never fail.
 *
 * Threads: everything here runs in the loop thread except ttrpc_call_reply*() and the call
 * accessors, which only read fields that are immutable once the handler runs (the request) or
 * are thread-safe (the cancel token). The reply bytes are written by the replying thread
 * before loop_post_item() and read by the loop after it (the post queue's mutex orders them).
 */
#include "lib/ttrpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/ttrpc_conn.h"
#include "proto/ttrpc.pb-c.h"

#define SERVER_ACCEPTS_PER_EVENT 64
#define SERVER_ACCEPT_PAUSE_MS 100   /* out of fds: stop accepting for a moment */

struct handler {
	char *service;
	char *method;
	ttrpc_handler_fn fn;
	void *arg;
	struct handler *next;
};

struct listener {
	struct ttrpc_server *srv;
	int fd;
	char *path;                /* the socket file we created, unlinked on close */
	dev_t dev;                 /* ... if the path still names it (not a successor's socket) */
	ino_t ino;
	struct loop_timer *pause;
	struct listener *next;
};

struct server_conn {
	struct ttrpc_server *srv;
	struct ttrpc_conn *conn;
	uint32_t last_id;          /* highest stream id seen: ids must increase */
	struct server_conn *prev, *next;
};

struct ttrpc_call {
	struct loop *loop;
	struct ttrpc_server *srv;  /* loop thread only; NULL once the server is freed */
	struct server_conn *sc;    /* loop thread only; NULL once the connection is gone */
	uint32_t stream_id;
	uint8_t *raw;              /* the Request message bytes; immutable */
	size_t raw_len;
	Ttrpc__Request *req;       /* decoded raw; immutable */
	struct cancel *cancel;
	struct loop_timer *deadline;
	uint8_t *resp;             /* written by the replying thread, then posted */
	size_t resp_len;
	struct loop_post_item post;
	struct ttrpc_call *prev, *next;   /* srv->calls; loop thread only */
};

struct ttrpc_server {
	struct loop *loop;
	struct handler *handlers;
	ttrpc_handler_fn fallback;
	void *fallback_arg;
	struct listener *listeners;
	struct server_conn *conns;
	unsigned nconns;
	struct ttrpc_call *calls;  /* unanswered calls, attached or not */
	unsigned inflight;
	uint64_t handshake_ms;     /* deadline of an adopted stream's handshake */
	bool takeover;             /* listen_unix replaces a socket another server still serves */

	bool shutting_down;
	struct loop_timer *grace;
	struct loop_timer *finish;
	loop_fn done;
	void *done_arg;
};

static const struct ttrpc_conn_ops server_conn_ops;

/* ---- registration ---- */

struct ttrpc_server *ttrpc_server_new(struct loop *l, struct pp_err *err)
{
	struct ttrpc_server *s = calloc(1, sizeof(*s));

	if (!s) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a ttRPC server");
		return NULL;
	}
	s->loop = l;
	s->handshake_ms = TTRPC_HANDSHAKE_TIMEOUT_MS;
	return s;
}

void ttrpc_server_set_takeover(struct ttrpc_server *s, bool takeover)
{
	s->takeover = takeover;
}

void ttrpc_server_set_handshake_timeout(struct ttrpc_server *s, uint64_t ms)
{
	s->handshake_ms = ms ? ms : TTRPC_HANDSHAKE_TIMEOUT_MS;
}

static struct handler *handler_find(const struct ttrpc_server *s, const char *service,
				    const char *method, bool *service_known)
{
	*service_known = false;
	for (struct handler *h = s->handlers; h; h = h->next) {
		if (strcmp(h->service, service) != 0)
			continue;
		*service_known = true;
		if (strcmp(h->method, method) == 0)
			return h;
	}
	return NULL;
}

int ttrpc_server_register(struct ttrpc_server *s, const char *service, const char *method,
			  ttrpc_handler_fn fn, void *arg)
{
	struct handler *h;
	bool known;

	if (!service || !method || !fn || handler_find(s, service, method, &known))
		return -1;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->service = strdup(service);
	h->method = strdup(method);
	if (!h->service || !h->method) {
		free(h->service);
		free(h->method);
		free(h);
		return -1;
	}
	h->fn = fn;
	h->arg = arg;
	h->next = s->handlers;
	s->handlers = h;
	return 0;
}

void ttrpc_server_set_fallback(struct ttrpc_server *s, ttrpc_handler_fn fn, void *arg)
{
	s->fallback = fn;
	s->fallback_arg = arg;
}

unsigned ttrpc_server_inflight(const struct ttrpc_server *s)
{
	return s->inflight;
}

unsigned ttrpc_server_connections(const struct ttrpc_server *s)
{
	return s->nconns;
}

/* ---- calls ---- */

static void server_check_drained(struct ttrpc_server *s);

static void call_free(struct ttrpc_call *c)
{
	struct ttrpc_server *s = c->srv;

	loop_timer_cancel(c->loop, c->deadline);
	if (s) {
		if (c->prev)
			c->prev->next = c->next;
		else
			s->calls = c->next;
		if (c->next)
			c->next->prev = c->prev;
		s->inflight--;
	}
	cancel_unref(c->cancel);
	if (c->req)
		ttrpc__request__free_unpacked(c->req, NULL);
	free(c->raw);
	free(c->resp);
	free(c);
	if (s)
		server_check_drained(s);
}

/* In the loop: sends the reply if the connection is still there, then frees the call. */
static void call_deliver(void *arg)
{
	struct ttrpc_call *c = arg;
	struct pp_err err;

	if (c->sc && c->resp &&
	    ttrpc_conn_send(c->sc->conn, c->stream_id, TTRPC_TYPE_RESPONSE, 0, c->resp,
			    c->resp_len, &err) < 0)
		log_debug("ttRPC reply dropped", "stream=%u error=%s", c->stream_id, err.msg);
	call_free(c);
}

static void call_finish(struct ttrpc_call *c, uint8_t *resp, size_t len)
{
	c->resp = resp;
	c->resp_len = len;
	if (loop_in_thread(c->loop))
		call_deliver(c);
	else
		loop_post_item(c->loop, &c->post, call_deliver, c);
}

/* Encodes a Response; if that fails (oversize payload), the call gets the error instead. */
static void call_answer(struct ttrpc_call *c, int code, const char *msg, const uint8_t *payload,
			size_t len)
{
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	struct pp_err err;

	if (ttrpc_response_encode(code, msg, payload, len, &resp, &resp_len, &err) < 0 &&
	    ttrpc_response_encode(err.code, err.msg, NULL, 0, &resp, &resp_len, &err) < 0)
		resp = NULL;
	call_finish(c, resp, resp_len);
}

void ttrpc_call_reply(struct ttrpc_call *c, const uint8_t *payload, size_t len)
{
	call_answer(c, PP_OK, NULL, payload, len);
}

void ttrpc_call_reply_error(struct ttrpc_call *c, int code, const char *fmt, ...)
{
	char msg[PP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_answer(c, code, msg, NULL, 0);
}

void ttrpc_call_reply_err(struct ttrpc_call *c, const struct pp_err *err)
{
	/* an error without a code is a bug at the failure site; it still is an error */
	call_answer(c, err->code != PP_OK ? err->code : PP_UNKNOWN, err->msg, NULL, 0);
}

void ttrpc_call_reply_raw(struct ttrpc_call *c, const uint8_t *response, size_t len)
{
	uint8_t *copy;

	if (len > TTRPC_MAX_DATA) {
		ttrpc_call_reply_error(c, PP_RESOURCE_EXHAUSTED,
				       "message length %zu exceed maximum message size of %u", len,
				       TTRPC_MAX_DATA);
		return;
	}
	if (loop_in_thread(c->loop)) {
		/* In the loop (a relay answering from its upstream's callback) the bytes go straight
		 * into the connection's output buffer: no intermediate copy of a 1 MiB frame. */
		struct pp_err err;

		if (c->sc && ttrpc_conn_send(c->sc->conn, c->stream_id, TTRPC_TYPE_RESPONSE, 0,
					     response, len, &err) < 0)
			log_debug("ttRPC reply dropped", "stream=%u error=%s", c->stream_id, err.msg);
		call_free(c);
		return;
	}
	copy = malloc(len ? len : 1);
	if (copy && len)
		memcpy(copy, response, len);
	call_finish(c, copy, copy ? len : 0);
}

const char *ttrpc_call_service(const struct ttrpc_call *c)
{
	return c->req->service;
}

const char *ttrpc_call_method(const struct ttrpc_call *c)
{
	return c->req->method;
}

const uint8_t *ttrpc_call_payload(const struct ttrpc_call *c, size_t *len)
{
	*len = c->req->payload.len;
	return c->req->payload.data;
}

const uint8_t *ttrpc_call_request_raw(const struct ttrpc_call *c, size_t *len)
{
	*len = c->raw_len;
	return c->raw;
}

int64_t ttrpc_call_timeout_ns(const struct ttrpc_call *c)
{
	return c->req->timeout_nano > 0 ? c->req->timeout_nano : 0;
}

struct cancel *ttrpc_call_cancel(const struct ttrpc_call *c)
{
	return c->cancel;
}

static void call_on_deadline(void *arg)
{
	struct ttrpc_call *c = arg;

	c->deadline = NULL;
	cancel_fire(c->cancel, CANCEL_DEADLINE);
}

/* ---- requests ---- */

/* Answers a stream with an error status from the server itself (no call object). */
static void sc_send_status(struct server_conn *sc, uint32_t id, int code, const char *msg)
{
	uint8_t *resp = NULL;
	size_t len = 0;
	struct pp_err err;

	if (ttrpc_response_encode(code, msg, NULL, 0, &resp, &len, &err) == 0)
		ttrpc_conn_send(sc->conn, id, TTRPC_TYPE_RESPONSE, 0, resp, len, &err);
	free(resp);
}

static struct ttrpc_call *call_new(struct server_conn *sc, uint32_t id, uint8_t *data,
				   size_t len, Ttrpc__Request *req)
{
	struct ttrpc_server *s = sc->srv;
	struct ttrpc_call *c = calloc(1, sizeof(*c));
	uint64_t deadline = 0;

	if (!c)
		return NULL;
	if (req->timeout_nano > 0)
		deadline = pp_now_ns() + (uint64_t)req->timeout_nano;
	c->cancel = cancel_new(deadline);
	if (!c->cancel) {
		free(c);
		return NULL;
	}
	if (deadline)
		c->deadline = loop_timer_add(s->loop, ((uint64_t)req->timeout_nano + 999999) / 1000000,
					     call_on_deadline, c);
	c->loop = s->loop;
	c->srv = s;
	c->sc = sc;
	c->stream_id = id;
	c->raw = data;
	c->raw_len = len;
	c->req = req;
	c->next = s->calls;
	if (s->calls)
		s->calls->prev = c;
	s->calls = c;
	s->inflight++;
	return c;
}

/* Checks the stream id rules of the protocol; answers and returns false on a violation. */
static bool sc_check_stream_id(struct server_conn *sc, uint32_t id)
{
	if (id % 2 != 1) {
		sc_send_status(sc, id, PP_INVALID_ARGUMENT,
			       "StreamID must be odd for client initiated streams");
		return false;
	}
	if (id <= sc->last_id) {
		sc_send_status(sc, id, PP_INVALID_ARGUMENT,
			       "StreamID cannot be re-used and must increment");
		return false;
	}
	sc->last_id = id;
	return true;
}

/* Finds who serves the request, or answers UNIMPLEMENTED and returns NULL. */
static ttrpc_handler_fn sc_route(struct server_conn *sc, uint32_t id, const Ttrpc__Request *req,
				 void **ret_arg)
{
	struct ttrpc_server *s = sc->srv;
	char msg[PP_ERR_MSG_MAX];
	bool service_known;
	struct handler *h = handler_find(s, req->service, req->method, &service_known);

	if (h) {
		*ret_arg = h->arg;
		return h->fn;
	}
	if (s->fallback) {
		*ret_arg = s->fallback_arg;
		return s->fallback;
	}
	if (service_known)
		snprintf(msg, sizeof(msg), "method %s", req->method);
	else
		snprintf(msg, sizeof(msg), "service %s", req->service);
	sc_send_status(sc, id, PP_UNIMPLEMENTED, msg);
	return NULL;
}

static void sc_on_request(struct server_conn *sc, uint32_t id, uint8_t *data, size_t len)
{
	Ttrpc__Request *req;
	ttrpc_handler_fn fn;
	struct ttrpc_call *c;
	void *arg = NULL;

	if (sc->srv->shutting_down) {
		sc_send_status(sc, id, PP_UNAVAILABLE, "server is shutting down");
		goto drop;
	}
	req = ttrpc__request__unpack(NULL, len, data);
	if (!req) {
		sc_send_status(sc, id, PP_INVALID_ARGUMENT,
			       "unmarshal request error: not a valid ttrpc.Request message");
		goto drop;
	}
	fn = sc_route(sc, id, req, &arg);
	if (!fn) {
		ttrpc__request__free_unpacked(req, NULL);
		goto drop;
	}
	c = call_new(sc, id, data, len, req);
	if (!c) {
		ttrpc__request__free_unpacked(req, NULL);
		sc_send_status(sc, id, PP_RESOURCE_EXHAUSTED, "out of memory starting a call");
		goto drop;
	}
	fn(c, arg);   /* last: the handler may free the server or this connection */
	return;
drop:
	free(data);
}

static void sc_on_frame(void *owner, const struct ttrpc_header *h, uint8_t *data)
{
	struct server_conn *sc = owner;

	if (h->type != TTRPC_TYPE_REQUEST || !sc_check_stream_id(sc, h->stream_id)) {
		free(data);   /* data frames (no streaming here) and unknown types are ignored */
		return;
	}
	sc_on_request(sc, h->stream_id, data, h->length);
}

static void sc_on_oversize(void *owner, const struct ttrpc_header *h)
{
	struct server_conn *sc = owner;
	char msg[128];

	snprintf(msg, sizeof(msg), "message length %u exceed maximum message size of %u",
		 h->length, TTRPC_MAX_DATA);
	sc_send_status(sc, h->stream_id, PP_RESOURCE_EXHAUSTED, msg);
}

/* Detaches the connection's calls (their cancel tokens fire with `why`), closes, frees. */
static void sc_close(struct server_conn *sc, enum cancel_reason why)
{
	struct ttrpc_server *s = sc->srv;

	for (struct ttrpc_call *c = s->calls; c; c = c->next) {
		if (c->sc != sc)
			continue;
		c->sc = NULL;
		cancel_fire(c->cancel, why);
	}
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		s->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	s->nconns--;
	ttrpc_conn_free(sc->conn);
	free(sc);
}

static void sc_on_closed(void *owner, const struct pp_err *why)
{
	struct server_conn *sc = owner;

	log_debug("ttRPC client disconnected", "peer=%s reason=%s", ttrpc_conn_peer(sc->conn),
		  why->msg);
	sc_close(sc, CANCEL_CLOSED);
}

static const struct ttrpc_conn_ops server_conn_ops = {
	.frame = sc_on_frame,
	.oversize = sc_on_oversize,
	.closed = sc_on_closed,
};

int ttrpc_server_adopt(struct ttrpc_server *s, struct stream *st, struct pp_err *err)
{
	struct server_conn *sc;

	if (s->shutting_down) {
		stream_free(st);
		return pp_err_set(err, PP_UNAVAILABLE, "ttRPC server is shutting down");
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		stream_free(st);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory adopting a connection");
	}
	sc->srv = s;
	sc->conn = ttrpc_conn_new(s->loop, st, s->handshake_ms, &server_conn_ops, sc, err);
	if (!sc->conn) {
		free(sc);
		return -1;
	}
	sc->next = s->conns;
	if (s->conns)
		s->conns->prev = sc;
	s->conns = sc;
	s->nconns++;
	return 0;
}

/* ---- unix listener ---- */

static int unix_addr(const char *path, struct sockaddr_un *sa, struct pp_err *err)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sa->sun_path))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "unix socket path %s is too long or empty (%zu bytes, max %zu)",
				  path, n, sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* Removes a stale socket file; refuses to remove anything else, and a socket still served
 * unless takeover is set. */
static int unix_clear_stale(const char *path, const struct sockaddr_un *sa, bool takeover,
			    struct pp_err *err)
{
	struct stat stt;
	int fd, r;

	if (lstat(path, &stt) < 0)
		return errno == ENOENT ? 0 : pp_err_errno(err, PP_FAILED_PRECONDITION, errno,
							   "checking socket path %s", path);
	if (!S_ISSOCK(stt.st_mode))
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "%s exists and is not a socket; refusing to replace it", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "creating a unix socket for %s", path);
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if ((r == 0 || errno == EAGAIN) && !takeover) {
		close(fd);
		return pp_err_set(err, PP_ALREADY_EXISTS,
				  "another server is already listening on %s", path);
	}
	if (r == 0 || errno == EAGAIN)
		log_info("taking over a unix socket another server still listens on", "path=%s", path);
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT)
		return pp_err_errno(err, PP_FAILED_PRECONDITION, errno,
				    "removing stale socket %s", path);
	return 0;
}

static void listener_close(struct listener *ln)
{
	loop_timer_cancel(ln->srv->loop, ln->pause);
	loop_fd_del(ln->srv->loop, ln->fd);
	close(ln->fd);
	if (ln->path) {
		struct stat st;

		/* A successor may have taken the path over (a rolling update): its socket stays. */
		if (lstat(ln->path, &st) == 0 && st.st_dev == ln->dev && st.st_ino == ln->ino)
			unlink(ln->path);
	}
	free(ln->path);
	free(ln);
}

static void listener_resume(void *arg)
{
	struct listener *ln = arg;

	ln->pause = NULL;
	loop_fd_mod(ln->srv->loop, ln->fd, EPOLLIN);
}

/* Out of fds or memory: level-triggered epoll would spin, so stop accepting for a moment. */
static void listener_pause(struct listener *ln, int errnum)
{
	log_warn("ttRPC accept paused", "path=%s error=%s", ln->path, strerror(errnum));
	if (ln->pause)
		return;
	loop_fd_mod(ln->srv->loop, ln->fd, 0);
	ln->pause = loop_timer_add(ln->srv->loop, SERVER_ACCEPT_PAUSE_MS, listener_resume, ln);
}

static void listener_on_accept(void *arg, uint32_t events)
{
	struct listener *ln = arg;
	struct ttrpc_server *s = ln->srv;

	(void)events;
	for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(ln->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct stream *st;
		struct pp_err err;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				listener_pause(ln, errno);
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("ttRPC accept failed", "path=%s error=%s", ln->path,
					 strerror(errno));
			return;
		}
		st = stream_plain_new(fd, &err);
		if (!st || ttrpc_server_adopt(s, st, &err) < 0)
			log_warn("ttRPC connection refused", "path=%s error=%s", ln->path, err.msg);
	}
}

int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, struct pp_err *err)
{
	struct sockaddr_un sa;
	struct listener *ln;
	int fd;

	if (unix_addr(path, &sa, err) < 0 || unix_clear_stale(path, &sa, s->takeover, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "creating a unix socket for %s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pp_err_errno(err, PP_FAILED_PRECONDITION, errno, "binding unix socket %s", path);
		close(fd);
		return -1;
	}
	ln = calloc(1, sizeof(*ln));
	if (ln)
		ln->path = strdup(path);
	if (!ln || !ln->path) {
		free(ln);
		unlink(path);
		close(fd);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listening on %s", path);
	}
	ln->srv = s;
	ln->fd = fd;
	{
		struct stat st;

		if (lstat(path, &st) == 0) {
			ln->dev = st.st_dev;
			ln->ino = st.st_ino;
		}
	}
	if (listen(fd, SOMAXCONN) < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "listening on unix socket %s", path);
		listener_close(ln);
		return -1;
	}
	if (loop_fd_add(s->loop, fd, EPOLLIN, listener_on_accept, ln, err) < 0) {
		listener_close(ln);
		return -1;
	}
	ln->next = s->listeners;
	s->listeners = ln;
	return 0;
}

static void server_close_listeners(struct ttrpc_server *s)
{
	while (s->listeners) {
		struct listener *ln = s->listeners;

		s->listeners = ln->next;
		listener_close(ln);
	}
}

/* ---- shutdown ---- */

static void server_close_conns(struct ttrpc_server *s, enum cancel_reason why)
{
	for (struct ttrpc_call *c = s->calls; c; c = c->next)
		cancel_fire(c->cancel, why);
	while (s->conns)
		sc_close(s->conns, why);
}

static void server_finish(void *arg)
{
	struct ttrpc_server *s = arg;
	loop_fn done = s->done;

	s->finish = NULL;
	loop_timer_cancel(s->loop, s->grace);
	s->grace = NULL;
	server_close_conns(s, CANCEL_SHUTDOWN);
	s->done = NULL;
	if (done)
		done(s->done_arg);   /* may free the server */
}

static void server_check_drained(struct ttrpc_server *s)
{
	if (s->shutting_down && s->inflight == 0 && !s->finish && (s->grace || s->done))
		s->finish = loop_timer_add(s->loop, 0, server_finish, s);
}

static void server_grace_over(void *arg)
{
	struct ttrpc_server *s = arg;

	s->grace = NULL;
	log_warn("ttRPC shutdown grace period over", "inflight=%u", s->inflight);
	if (!s->finish)
		s->finish = loop_timer_add(s->loop, 0, server_finish, s);
}

void ttrpc_server_shutdown(struct ttrpc_server *s, uint64_t grace_ms, loop_fn done, void *arg)
{
	server_close_listeners(s);
	s->done = done;
	s->done_arg = arg;
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	if (s->inflight == 0) {
		s->finish = loop_timer_add(s->loop, 0, server_finish, s);
		return;
	}
	s->grace = loop_timer_add(s->loop, grace_ms, server_grace_over, s);
}

void ttrpc_server_free(struct ttrpc_server *s)
{
	if (!s)
		return;
	server_close_listeners(s);
	loop_timer_cancel(s->loop, s->grace);
	loop_timer_cancel(s->loop, s->finish);
	s->grace = s->finish = NULL;
	s->shutting_down = true;
	s->done = NULL;
	server_close_conns(s, CANCEL_SHUTDOWN);
	/* Unanswered calls outlive the server; their replies are dropped when they come. */
	while (s->calls) {
		struct ttrpc_call *c = s->calls;

		s->calls = c->next;
		c->srv = NULL;
		c->prev = c->next = NULL;
	}
	while (s->handlers) {
		struct handler *h = s->handlers;

		s->handlers = h->next;
		free(h->service);
		free(h->method);
		free(h);
	}
	free(s);
}
