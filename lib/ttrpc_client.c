/*
 * ttRPC client in the event loop (see ttrpc.h): many calls in flight on one connection, each
 * under a fresh odd, strictly increasing stream id; responses are matched by id in any order.
 *
 * The one idea: a pending call ends exactly once — its response, its local deadline, the
 * connection breaking, ttrpc_client_free(), or ttrpc_client_abandon() (which ends it silently).
 * The call is unlinked before its callback runs, so whatever the callback does to the client
 * (new calls, abandon, free) finds a consistent table. `busy` defers freeing the client until
 * the outermost callback returns.
 *
 * Everything runs in the loop thread; there are no locks.
 */
#include "lib/ttrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/ttrpc_conn.h"

#define CLIENT_BUCKETS 1024u   /* pending-call hash table; ids are spread by >> 1 */
#define CLIENT_LAST_ID 0xffffffffu

struct pending {
	uint32_t id;
	ttrpc_done_fn done;
	void *arg;
	struct ttrpc_client *cl;
	struct loop_timer *timer;       /* local deadline, NULL if none */
	struct pending *hnext;          /* hash chain */
	struct pending *prev, *next;    /* all pending calls, oldest first */
};

struct ttrpc_client {
	struct loop *loop;
	struct ttrpc_conn *conn;
	uint32_t next_id;
	uint32_t last_id;               /* id of the most recent call sent */
	bool ids_exhausted;
	bool closed;                    /* the connection broke or the client is being freed */
	struct pp_err why;              /* why it closed */
	ttrpc_closed_fn on_closed;
	void *closed_arg;
	int busy;
	bool free_requested;

	struct pending *buckets[CLIENT_BUCKETS];
	struct pending *head, *tail;
	unsigned npending;
};

static const struct ttrpc_conn_ops client_conn_ops;

/* ---- pending table ---- */

static struct pending **bucket_of(struct ttrpc_client *c, uint32_t id)
{
	return &c->buckets[(id >> 1) & (CLIENT_BUCKETS - 1)];
}

static void pending_link(struct ttrpc_client *c, struct pending *p)
{
	struct pending **b = bucket_of(c, p->id);

	p->hnext = *b;
	*b = p;
	p->prev = c->tail;
	p->next = NULL;
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	c->npending++;
}

static void pending_unlink(struct ttrpc_client *c, struct pending *p)
{
	struct pending **pp = bucket_of(c, p->id);

	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail = p->prev;
	c->npending--;
	loop_timer_cancel(c->loop, p->timer);
	p->timer = NULL;
}

static struct pending *pending_find(struct ttrpc_client *c, uint32_t id)
{
	struct pending *p = *bucket_of(c, id);

	while (p && p->id != id)
		p = p->hnext;
	return p;
}

/* ---- lifetime ---- */

static void client_destroy(struct ttrpc_client *c);

static void client_enter(struct ttrpc_client *c)
{
	c->busy++;
}

static void client_leave(struct ttrpc_client *c)
{
	if (--c->busy == 0 && c->free_requested)
		client_destroy(c);
}

/* Ends a call that is already unlinked: runs its callback with res, frees it. */
static void pending_end(struct ttrpc_client *c, struct pending *p, const struct ttrpc_result *res)
{
	client_enter(c);
	p->done(p->arg, res);
	free(p);
	client_leave(c);
}

static void pending_fail(struct ttrpc_client *c, struct pending *p, int code, const char *msg)
{
	struct ttrpc_result res = { .code = code, .message = msg };

	pending_end(c, p, &res);
}

static void client_fail_all(struct ttrpc_client *c, const char *msg)
{
	client_enter(c);
	while (c->head) {
		struct pending *p = c->head;

		pending_unlink(c, p);
		pending_fail(c, p, PP_UNAVAILABLE, msg);
	}
	client_leave(c);
}

static void client_destroy(struct ttrpc_client *c)
{
	c->busy = 1;   /* callbacks below may call ttrpc_client_free() again: ignored */
	c->closed = true;
	ttrpc_conn_free(c->conn);
	c->conn = NULL;
	while (c->head) {
		struct pending *p = c->head;
		struct ttrpc_result res = { .code = PP_UNAVAILABLE, .message = "connection closed" };

		pending_unlink(c, p);
		p->done(p->arg, &res);
		free(p);
	}
	free(c);
}

void ttrpc_client_free(struct ttrpc_client *c)
{
	if (!c)
		return;
	if (c->busy > 0) {
		c->free_requested = true;
		return;
	}
	client_destroy(c);
}

/* ---- connection events ---- */

static void client_on_frame(void *owner, const struct ttrpc_header *h, uint8_t *data)
{
	struct ttrpc_client *c = owner;
	struct ttrpc_result res;
	struct pp_err err;
	struct pending *p;
	void *storage = NULL;

	if (h->type != TTRPC_TYPE_RESPONSE) {
		free(data);   /* no streaming here: data frames and unknown types are ignored */
		return;
	}
	p = pending_find(c, h->stream_id);
	if (!p) {
		log_debug("ttRPC response for unknown stream dropped", "stream=%u", h->stream_id);
		free(data);
		return;
	}
	pending_unlink(c, p);
	if (ttrpc_response_decode(data ? data : (const uint8_t *)"", h->length, &res, &storage,
				  &err) < 0) {
		memset(&res, 0, sizeof(res));
		res.code = err.code;
		res.message = err.msg;
	}
	pending_end(c, p, &res);
	ttrpc_result_free_storage(storage);
	free(data);
}

static void client_on_oversize(void *owner, const struct ttrpc_header *h)
{
	struct ttrpc_client *c = owner;
	struct pending *p = pending_find(c, h->stream_id);
	char msg[128];

	if (h->type != TTRPC_TYPE_RESPONSE || !p)
		return;
	pending_unlink(c, p);
	snprintf(msg, sizeof(msg), "message length %u exceed maximum message size of %u",
		 h->length, TTRPC_MAX_DATA);
	pending_fail(c, p, PP_RESOURCE_EXHAUSTED, msg);
}

static void client_on_closed(void *owner, const struct pp_err *why)
{
	struct ttrpc_client *c = owner;

	c->closed = true;
	c->why = *why;
	c->why.code = PP_UNAVAILABLE;
	client_enter(c);
	client_fail_all(c, c->why.msg);
	if (!c->free_requested && c->on_closed)
		c->on_closed(c->closed_arg, &c->why);
	client_leave(c);
}

static const struct ttrpc_conn_ops client_conn_ops = {
	.frame = client_on_frame,
	.oversize = client_on_oversize,
	.closed = client_on_closed,
};

struct ttrpc_client *ttrpc_client_new(struct loop *l, struct stream *st, ttrpc_closed_fn on_closed,
				      void *arg, struct pp_err *err)
{
	struct ttrpc_client *c = calloc(1, sizeof(*c));

	if (!c) {
		stream_free(st);
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a ttRPC client");
		return NULL;
	}
	c->loop = l;
	c->next_id = 1;
	c->on_closed = on_closed;
	c->closed_arg = arg;
	c->conn = ttrpc_conn_new(l, st, 0, &client_conn_ops, c, err);
	if (!c->conn) {
		free(c);
		return NULL;
	}
	return c;
}

/* ---- calls ---- */

static void pending_on_deadline(void *arg)
{
	struct pending *p = arg;
	struct ttrpc_client *c = p->cl;

	p->timer = NULL;
	pending_unlink(c, p);
	pending_fail(c, p, PP_DEADLINE_EXCEEDED, "deadline exceeded waiting for the ttRPC response");
}

/* Sends Request bytes under the next stream id and records the call; returns the id or 0. */
static uint32_t client_send(struct ttrpc_client *c, const uint8_t *req, size_t len,
			    int64_t timeout_ns, ttrpc_done_fn done, void *arg, struct pp_err *err)
{
	struct pending *p;
	uint32_t id = c->next_id;

	if (c->closed || c->free_requested) {
		pp_err_set(err, PP_UNAVAILABLE, "%s", c->why.msg[0] ? c->why.msg : "connection closed");
		return 0;
	}
	if (c->ids_exhausted) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "stream ids exhausted on this connection %s",
			   ttrpc_conn_peer(c->conn));
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory starting a ttRPC call");
		return 0;
	}
	if (ttrpc_conn_send(c->conn, id, TTRPC_TYPE_REQUEST, 0, req, len, err) < 0) {
		free(p);
		return 0;
	}
	if (id == CLIENT_LAST_ID)
		c->ids_exhausted = true;
	c->next_id += 2;
	c->last_id = id;
	p->id = id;
	p->done = done;
	p->arg = arg;
	p->cl = c;
	if (timeout_ns > 0)
		p->timer = loop_timer_add(c->loop, ((uint64_t)timeout_ns + 999999) / 1000000,
					  pending_on_deadline, p);
	pending_link(c, p);
	return id;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
		      const uint8_t *payload, size_t len, int64_t timeout_ns, ttrpc_done_fn done,
		      void *arg, struct pp_err *err)
{
	uint8_t *req = NULL;
	size_t req_len = 0;
	uint32_t id;

	if (ttrpc_request_encode(service, method, payload, len, timeout_ns, &req, &req_len, err) < 0)
		return -1;
	id = client_send(c, req, req_len, timeout_ns, done, arg, err);
	free(req);
	return id ? 0 : -1;
}

uint32_t ttrpc_client_call_raw(struct ttrpc_client *c, const uint8_t *request, size_t len,
			       ttrpc_done_fn done, void *arg, struct pp_err *err)
{
	return client_send(c, request, len, 0, done, arg, err);
}

uint32_t ttrpc_client_last_id(const struct ttrpc_client *c)
{
	return c->last_id;
}

void ttrpc_client_abandon(struct ttrpc_client *c, uint32_t stream_id)
{
	struct pending *p = pending_find(c, stream_id);

	if (!p)
		return;
	pending_unlink(c, p);
	free(p);
}

unsigned ttrpc_client_pending(const struct ttrpc_client *c)
{
	return c->npending;
}
