/*
 * The ttRPC frame relay (see ttrpc_relay.h for the model). Life of a call:
 *
 *   relay_on_call ──rewrite?──> UP? ── relay_send ──> in flight ──> relay_on_response ─> reply
 *                                 └─ no ──> queued ── dial_done(ok) ──┘        (raw bytes)
 *
 * and, checked by the sweep timer every TTRPC_RELAY_SWEEP_MS: a queued or in-flight call whose
 * cancel token fired (client gone, deadline) or that waited longer than max_wait_ms for a
 * connection is answered by the relay and, if in flight, abandoned upstream.
 *
 * The upstream ttrpc_client fails its pending calls itself when the connection breaks (each
 * done callback sees a result with no raw Response), then calls relay_on_upstream_closed; the
 * relay frees the dead client from a zero-delay timer, never from inside the client's callback.
 */
#include "lib/ttrpc_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

enum relay_state { RELAY_IDLE, RELAY_DIALLING, RELAY_UP };

struct relay_call {
	struct relay_call *prev, *next;   /* in r->queue or r->inflight */
	struct ttrpc_relay *relay;
	struct ttrpc_call *down;          /* the downstream call; answered exactly once */
	const uint8_t *req;               /* Request bytes to send (owned or the call's own) */
	size_t req_len;
	uint8_t *owned;                   /* rewritten Request, or NULL */
	uint32_t up_id;                   /* upstream stream id; 0 while queued */
	uint64_t wait_until_ms;           /* queued: give up then (0 = only the deadline) */
};

struct relay_list {
	struct relay_call head;           /* sentinel */
	unsigned count;
};

struct relay_rewrite {
	struct relay_rewrite *next;
	char *service;
	char *method;
	ttrpc_relay_rewrite_fn fn;
	void *arg;
};

struct ttrpc_relay {
	struct loop *loop;
	char *name;
	char *peer;
	char name_q[64];                  /* name as a log value */
	char peer_q[PP_ERR_MSG_MAX];      /* peer as a log value */
	struct ttrpc_relay_config cfg;    /* name/peer point at the copies above */
	struct ttrpc_server *server;
	struct ttrpc_client *up;          /* NULL unless RELAY_UP */
	struct ttrpc_client *dead;        /* closed client waiting to be freed */
	enum relay_state state;
	bool ever_connected;
	bool freeing;
	struct relay_list queue;          /* FIFO: sent in arrival order once connected */
	struct relay_list inflight;
	struct loop_timer *sweep;
	struct loop_timer *after_break;
	struct relay_rewrite *rewrites;
	struct ttrpc_relay_stats stats;
};

/* ---- lists ---- */

static void relay_list_init(struct relay_list *l)
{
	l->head.next = l->head.prev = &l->head;
	l->count = 0;
}

static bool relay_list_empty(const struct relay_list *l)
{
	return l->head.next == &l->head;
}

static void relay_list_push(struct relay_list *l, struct relay_call *c)
{
	c->prev = l->head.prev;
	c->next = &l->head;
	l->head.prev->next = c;
	l->head.prev = c;
	l->count++;
}

static void relay_list_remove(struct relay_list *l, struct relay_call *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

static struct relay_call *relay_list_pop(struct relay_list *l)
{
	struct relay_call *c = l->head.next;

	if (c == &l->head)
		return NULL;
	relay_list_remove(l, c);
	return c;
}

/* ---- ending calls ---- */

static void relay_call_free(struct relay_call *c)
{
	free(c->owned);
	free(c);
}

/* Answers a call the relay gives up on (not in any list any more). */
static void relay_call_fail(struct ttrpc_relay *r, struct relay_call *c, const struct pp_err *e)
{
	r->stats.failed++;
	ttrpc_call_reply_err(c->down, e);
	relay_call_free(c);
}

static void relay_fail_queue(struct ttrpc_relay *r, const struct pp_err *e)
{
	struct relay_call *c;

	while ((c = relay_list_pop(&r->queue)))
		relay_call_fail(r, c, e);
}

/* ---- the sweep: deadlines, cancels, waiting too long ---- */

static void relay_sweep_fire(void *arg);

static void relay_sweep_arm(struct ttrpc_relay *r)
{
	if (r->sweep || (relay_list_empty(&r->queue) && relay_list_empty(&r->inflight)))
		return;
	r->sweep = loop_timer_add(r->loop, TTRPC_RELAY_SWEEP_MS, relay_sweep_fire, r);
}

/* Why a fired cancel token ends the call, as a status. */
static void relay_cancel_status(struct ttrpc_relay *r, struct cancel *tok, struct pp_err *e)
{
	enum cancel_reason why = cancel_why(tok);
	int code = PP_CANCELLED;

	if (why == CANCEL_DEADLINE)
		code = PP_DEADLINE_EXCEEDED;
	else if (why == CANCEL_SHUTDOWN)
		code = PP_UNAVAILABLE;
	pp_err_set(e, code, "%s: %s while waiting for %s", r->name, cancel_reason_text(why), r->peer);
}

static void relay_sweep_list(struct ttrpc_relay *r, struct relay_list *l, uint64_t now)
{
	struct relay_call *c = l->head.next, *next;
	struct pp_err e;

	for (; c != &l->head; c = next) {
		struct cancel *tok = ttrpc_call_cancel(c->down);

		next = c->next;
		if (tok && cancel_fired(tok))
			relay_cancel_status(r, tok, &e);
		else if (!c->up_id && c->wait_until_ms && now >= c->wait_until_ms)
			pp_err_set(&e, PP_UNAVAILABLE, "%s: no connection to %s after waiting %llu ms",
				   r->name, r->peer, (unsigned long long)r->cfg.max_wait_ms);
		else
			continue;
		relay_list_remove(l, c);
		if (c->up_id && r->up)
			ttrpc_client_abandon(r->up, c->up_id);
		log_debug("relay call dropped", "relay=%s code=%s", r->name_q, pp_code_name(e.code));
		relay_call_fail(r, c, &e);
	}
}

static void relay_sweep_fire(void *arg)
{
	struct ttrpc_relay *r = arg;
	uint64_t now = pp_now_ms();

	r->sweep = NULL;
	relay_sweep_list(r, &r->queue, now);
	relay_sweep_list(r, &r->inflight, now);
	relay_sweep_arm(r);
}

/* ---- upstream ---- */

static void relay_on_response(void *arg, const struct ttrpc_result *res)
{
	struct relay_call *c = arg;
	struct ttrpc_relay *r = c->relay;

	relay_list_remove(&r->inflight, c);
	if (res->raw || res->code == PP_OK) {
		/* The upstream's own Response, whatever its status: passed on untouched. */
		ttrpc_call_reply_raw(c->down, res->raw, res->raw_len);
		relay_call_free(c);
		return;
	}
	/* No Response bytes: the client failed the call itself (the connection broke, or the
	 * upstream's answer was not a Response). */
	r->stats.failed++;
	if (res->code == PP_UNAVAILABLE)
		ttrpc_call_reply_error(c->down, PP_UNAVAILABLE, "%s: connection to %s lost: %s",
				       r->name, r->peer, res->message ? res->message : "closed");
	else
		ttrpc_call_reply_error(c->down, res->code, "%s: no valid response from %s: %s",
				       r->name, r->peer, res->message ? res->message : "");
	relay_call_free(c);
}

static void relay_send(struct ttrpc_relay *r, struct relay_call *c)
{
	struct pp_err err = { 0 };
	uint32_t id;

	id = ttrpc_client_call_raw(r->up, c->req, c->req_len, relay_on_response, c, &err);
	if (!id) {
		r->stats.failed++;
		ttrpc_call_reply_err(c->down, &err);
		relay_call_free(c);
		return;
	}
	c->up_id = id;
	relay_list_push(&r->inflight, c);
	r->stats.relayed++;
	relay_sweep_arm(r);
}

static void relay_dial_start(struct ttrpc_relay *r)
{
	if (r->state != RELAY_IDLE || r->freeing)
		return;
	r->state = RELAY_DIALLING;
	log_debug("relay dialling upstream", "relay=%s peer=%s", r->name_q, r->peer_q);
	r->cfg.dial(r->cfg.dial_arg, r);   /* may answer (dial_done) before returning */
}

static void relay_after_break(void *arg)
{
	struct ttrpc_relay *r = arg;

	r->after_break = NULL;
	ttrpc_client_free(r->dead);
	r->dead = NULL;
	if (r->cfg.eager || !relay_list_empty(&r->queue))
		relay_dial_start(r);
}

static void relay_on_upstream_closed(void *arg, const struct pp_err *why)
{
	struct ttrpc_relay *r = arg;
	char q[PP_ERR_MSG_MAX];

	if (r->freeing)
		return;
	log_warn("relay upstream connection lost", "relay=%s peer=%s error=%s", r->name_q, r->peer_q,
		 log_quote(q, sizeof(q), why && why->msg[0] ? why->msg : "closed"));
	r->dead = r->up;
	r->up = NULL;
	r->state = RELAY_IDLE;
	if (!r->after_break)
		r->after_break = loop_timer_add(r->loop, 0, relay_after_break, r);
}

void ttrpc_relay_dial_done(struct ttrpc_relay *r, struct stream *st, const struct pp_err *why)
{
	struct pp_err err = { 0 }, e;
	char q[PP_ERR_MSG_MAX];
	struct relay_call *c;

	if (r->state != RELAY_DIALLING || r->freeing) {
		stream_free(st);
		return;
	}
	if (st) {
		r->up = ttrpc_client_new(r->loop, st, relay_on_upstream_closed, r, &err);
		if (!r->up)
			why = &err;
	}
	if (!r->up) {
		r->state = RELAY_IDLE;
		if (why && strstr(why->msg, r->peer))
			pp_err_set(&e, PP_UNAVAILABLE, "%s: %s", r->name, why->msg);
		else
			pp_err_set(&e, PP_UNAVAILABLE, "%s: cannot connect to %s: %s", r->name,
				   r->peer, why && why->msg[0] ? why->msg : "dial failed");
		log_warn("relay dial failed", "relay=%s peer=%s queued=%u error=%s", r->name_q, r->peer_q,
			 r->queue.count, log_quote(q, sizeof(q), e.msg));
		relay_fail_queue(r, &e);
		return;
	}
	r->state = RELAY_UP;
	if (r->ever_connected) {
		r->stats.reconnects++;
		log_info("relay upstream reconnected", "relay=%s peer=%s reconnects=%llu", r->name_q,
			 r->peer_q, (unsigned long long)r->stats.reconnects);
	} else {
		log_info("relay upstream connected", "relay=%s peer=%s", r->name_q, r->peer_q);
	}
	r->ever_connected = true;
	while (r->state == RELAY_UP && (c = relay_list_pop(&r->queue)))
		relay_send(r, c);
}

/* ---- downstream ---- */

static struct relay_rewrite *relay_rewrite_find(struct ttrpc_relay *r, const char *service,
						 const char *method)
{
	struct relay_rewrite *w;

	for (w = r->rewrites; w; w = w->next)
		if (!strcmp(w->service, service) && !strcmp(w->method, method))
			return w;
	return NULL;
}

/* Runs the method's rewrite hook, if any: c->req ends up pointing at the bytes to send. */
static int relay_call_rewrite(struct ttrpc_relay *r, struct relay_call *c, struct pp_err *err)
{
	const char *service = ttrpc_call_service(c->down), *method = ttrpc_call_method(c->down);
	struct relay_rewrite *w = relay_rewrite_find(r, service ? service : "", method ? method : "");
	const uint8_t *payload;
	uint8_t *out = NULL;
	size_t len = 0, out_len = 0;
	int rc;

	if (!w)
		return 0;
	payload = ttrpc_call_payload(c->down, &len);
	if (w->fn(w->arg, service, method, payload, len, &out, &out_len, err) < 0)
		return -1;
	if (!out)
		return 0;
	rc = ttrpc_relay_request_set_payload(c->req, c->req_len, out, out_len, &c->owned,
					     &c->req_len, err);
	free(out);
	if (rc < 0)
		return -1;
	c->req = c->owned;
	return 0;
}

static void relay_enqueue(struct ttrpc_relay *r, struct relay_call *c)
{
	struct pp_err e;

	if (r->queue.count >= r->cfg.max_queued) {
		pp_err_set(&e, PP_UNAVAILABLE, "%s: not connected to %s and %u calls are already waiting",
			   r->name, r->peer, r->queue.count);
		relay_call_fail(r, c, &e);
		return;
	}
	if (r->cfg.max_wait_ms)
		c->wait_until_ms = pp_now_ms() + r->cfg.max_wait_ms;
	relay_list_push(&r->queue, c);
	relay_sweep_arm(r);
	relay_dial_start(r);   /* no-op while dialling */
}

static void relay_on_call(struct ttrpc_call *call, void *arg)
{
	struct ttrpc_relay *r = arg;
	struct pp_err err = { 0 };
	struct relay_call *c;

	c = calloc(1, sizeof(*c));
	if (!c) {
		ttrpc_call_reply_error(call, PP_RESOURCE_EXHAUSTED, "%s: out of memory", r->name);
		return;
	}
	c->relay = r;
	c->down = call;
	c->req = ttrpc_call_request_raw(call, &c->req_len);
	if (relay_call_rewrite(r, c, &err) < 0) {
		r->stats.failed++;
		ttrpc_call_reply_err(call, &err);
		relay_call_free(c);
		return;
	}
	if (r->state == RELAY_UP)
		relay_send(r, c);
	else
		relay_enqueue(r, c);
}

/* ---- object ---- */

struct ttrpc_relay *ttrpc_relay_new(struct loop *l, const struct ttrpc_relay_config *cfg,
				    struct pp_err *err)
{
	struct ttrpc_relay *r;

	if (!cfg->dial) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "ttRPC relay needs a dialer");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a ttRPC relay");
		return NULL;
	}
	r->loop = l;
	r->cfg = *cfg;
	r->name = strdup(cfg->name ? cfg->name : "relay");
	r->peer = strdup(cfg->peer ? cfg->peer : "upstream");
	relay_list_init(&r->queue);
	relay_list_init(&r->inflight);
	if (!r->name || !r->peer) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a ttRPC relay");
		goto fail;
	}
	r->cfg.name = r->name;
	r->cfg.peer = r->peer;
	log_quote(r->name_q, sizeof(r->name_q), r->name);
	log_quote(r->peer_q, sizeof(r->peer_q), r->peer);
	if (!r->cfg.max_queued)
		r->cfg.max_queued = TTRPC_RELAY_MAX_QUEUED_DEFAULT;
	r->server = ttrpc_server_new(l, err);
	if (!r->server)
		goto fail;
	ttrpc_server_set_fallback(r->server, relay_on_call, r);
	return r;
fail:
	ttrpc_relay_free(r);
	return NULL;
}

struct ttrpc_server *ttrpc_relay_server(struct ttrpc_relay *r)
{
	return r->server;
}

int ttrpc_relay_add_rewrite(struct ttrpc_relay *r, const char *service, const char *method,
			    ttrpc_relay_rewrite_fn fn, void *arg, struct pp_err *err)
{
	struct relay_rewrite *w = calloc(1, sizeof(*w));

	if (w) {
		w->service = strdup(service);
		w->method = strdup(method);
	}
	if (!w || !w->service || !w->method) {
		if (w) {
			free(w->service);
			free(w->method);
		}
		free(w);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory adding a rewrite for %s/%s",
				  service, method);
	}
	w->fn = fn;
	w->arg = arg;
	w->next = r->rewrites;
	r->rewrites = w;
	return 0;
}

void ttrpc_relay_start(struct ttrpc_relay *r)
{
	if (r->cfg.eager)
		relay_dial_start(r);
}

void ttrpc_relay_get_stats(const struct ttrpc_relay *r, struct ttrpc_relay_stats *ret)
{
	*ret = r->stats;
	ret->in_flight = r->inflight.count;
	ret->queued = r->queue.count;
	ret->connected = r->state == RELAY_UP;
}

void ttrpc_relay_free(struct ttrpc_relay *r)
{
	struct relay_rewrite *w;
	struct relay_call *c;
	struct pp_err e;

	if (!r)
		return;
	r->freeing = true;
	loop_timer_cancel(r->loop, r->sweep);
	loop_timer_cancel(r->loop, r->after_break);
	if (r->state == RELAY_DIALLING && r->cfg.dial_cancel)
		r->cfg.dial_cancel(r->cfg.dial_arg, r);
	pp_err_set(&e, PP_UNAVAILABLE, "%s is shutting down", r->name ? r->name : "relay");
	while ((c = relay_list_pop(&r->inflight))) {
		if (r->up)
			ttrpc_client_abandon(r->up, c->up_id);
		relay_call_fail(r, c, &e);
	}
	relay_fail_queue(r, &e);
	ttrpc_client_free(r->up);
	ttrpc_client_free(r->dead);
	ttrpc_server_free(r->server);
	while ((w = r->rewrites)) {
		r->rewrites = w->next;
		free(w->service);
		free(w->method);
		free(w);
	}
	free(r->name);
	free(r->peer);
	free(r);
}

/* ---- Request payload splice (protobuf wire format) ---- */

#define PB_WIRE_VARINT 0
#define PB_WIRE_FIXED64 1
#define PB_WIRE_LEN 2
#define PB_WIRE_FIXED32 5
#define TTRPC_REQUEST_PAYLOAD_FIELD 3
#define PB_VARINT_MAX 10

static int pb_varint_get(const uint8_t *buf, size_t len, size_t *pos, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < PB_VARINT_MAX && *pos < len; i++) {
		uint8_t b = buf[(*pos)++];

		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -1;
}

static size_t pb_varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* Skips one field's value; returns -1 if it runs past the end or has an unknown wire type. */
static int pb_skip_value(const uint8_t *buf, size_t len, size_t *pos, unsigned wire)
{
	uint64_t v;

	switch (wire) {
	case PB_WIRE_VARINT:
		return pb_varint_get(buf, len, pos, &v);
	case PB_WIRE_FIXED64:
		v = 8;
		break;
	case PB_WIRE_FIXED32:
		v = 4;
		break;
	case PB_WIRE_LEN:
		if (pb_varint_get(buf, len, pos, &v) < 0)
			return -1;
		break;
	default:
		return -1;
	}
	if (v > len - *pos)
		return -1;
	*pos += v;
	return 0;
}

int ttrpc_relay_request_set_payload(const uint8_t *req, size_t len, const uint8_t *payload,
				    size_t payload_len, uint8_t **ret, size_t *ret_len,
				    struct pp_err *err)
{
	size_t pos = 0, n = 0, start;
	uint8_t *out;
	uint64_t key;

	if (payload_len > TTRPC_MAX_DATA)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "rewritten payload of %zu bytes exceeds the maximum message size of %u",
				  payload_len, TTRPC_MAX_DATA);
	out = malloc(len + payload_len + 2 * PB_VARINT_MAX);
	if (!out)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory rewriting a request");
	while (pos < len) {
		start = pos;
		if (pb_varint_get(req, len, &pos, &key) < 0 ||
		    pb_skip_value(req, len, &pos, (unsigned)(key & 7)) < 0) {
			free(out);
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "malformed ttRPC request: bad field at byte %zu", start);
		}
		if ((key >> 3) == TTRPC_REQUEST_PAYLOAD_FIELD)
			continue;   /* the old payload: dropped */
		memcpy(out + n, req + start, pos - start);
		n += pos - start;
	}
	if (payload_len) {
		n += pb_varint_put(out + n, (TTRPC_REQUEST_PAYLOAD_FIELD << 3) | PB_WIRE_LEN);
		n += pb_varint_put(out + n, payload_len);
		memcpy(out + n, payload, payload_len);
		n += payload_len;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}
