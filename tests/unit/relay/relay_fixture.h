/*
 * Fixture for the relay tests: everything (test upstream server, relay, downstream client)
 * lives in one event loop driven by the test thread through rf_run_until(), which runs the loop
 * until a condition holds or a time limit passes. Sockets are unix sockets in a private temp dir.
 *
 * The test upstream ("ups") answers by method: Echo (payload back at once), Delay (4-byte
 * big-endian index, answered after (count - index) / 10 ms, so late calls finish first), Hold
 * (kept until the test answers or drops it), Raw (a fixed Response with an unknown field). It
 * records the raw Request bytes of the last call it got.
 */
#ifndef RELAY_FIXTURE_H
#define RELAY_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/ttrpc.h"
#include "lib/ttrpc_relay.h"

#define RF_MAX_HELD 64
#define RF_MAX_CALLS 1100

/* A Response with payload "hi" and an unknown field 7 (varint 1): relayed untouched. */
static const uint8_t rf_raw_response[] = { 0x12, 0x02, 'h', 'i', 0x38, 0x01 };

struct rf_result {
	bool done;
	int code;
	char msg[PP_ERR_MSG_MAX];
	uint8_t payload[64];
	size_t payload_len;
	uint8_t raw[64];
	size_t raw_len;
	unsigned order;     /* completion rank */
};

struct rf {
	struct loop *loop;
	char dir[64];
	char ups_path[128];
	char relay_path[128];
	/* upstream */
	struct ttrpc_server *ups;
	unsigned ups_calls;
	uint8_t last_req[4096];
	size_t last_req_len;
	char last_method[64];
	struct ttrpc_call *held[RF_MAX_HELD];
	unsigned n_held;
	unsigned delay_count;
	/* relay */
	struct ttrpc_relay *relay;
	bool dial_give_up;           /* the dialer reports failure instead of retrying */
	unsigned dial_retries_left;
	struct loop_timer *dial_timer;
	unsigned dials;
	/* downstream */
	struct ttrpc_client *cl;
	struct rf_result res[RF_MAX_CALLS];
	unsigned completed;
};

static inline int rf_unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- running the loop ---- */

struct rf_wait {
	struct rf *f;
	bool (*cond)(struct rf *f, void *arg);
	void *arg;
	uint64_t until;
	bool met;
};

static inline void rf_wait_tick(void *arg)
{
	struct rf_wait *w = arg;

	if (w->cond(w->f, w->arg)) {
		w->met = true;
		loop_stop(w->f->loop);
		return;
	}
	if (pp_now_ms() >= w->until) {
		loop_stop(w->f->loop);
		return;
	}
	loop_timer_add(w->f->loop, 2, rf_wait_tick, w);
}

/* Runs the loop until cond holds (true) or timeout_ms passed (false). */
static inline bool rf_run_until(struct rf *f, bool (*cond)(struct rf *, void *), void *arg,
			 uint64_t timeout_ms)
{
	struct rf_wait w = { .f = f, .cond = cond, .arg = arg, .until = pp_now_ms() + timeout_ms };

	loop_timer_add(f->loop, 0, rf_wait_tick, &w);
	loop_run(f->loop);
	return w.met;
}

static inline bool rf_never(struct rf *f, void *arg)
{
	(void)f;
	(void)arg;
	return false;
}

/* Runs the loop for ms milliseconds. */
static inline void rf_run_for(struct rf *f, uint64_t ms)
{
	rf_run_until(f, rf_never, NULL, ms);
}

/* ---- the test upstream ---- */

struct rf_delayed {
	struct ttrpc_call *call;
	uint8_t payload[4];
};

static inline void rf_delayed_fire(void *arg)
{
	struct rf_delayed *d = arg;

	ttrpc_call_reply(d->call, d->payload, sizeof(d->payload));
	free(d);
}

static inline void rf_ups_handle(struct ttrpc_call *call, void *arg)
{
	struct rf *f = arg;
	const char *m = ttrpc_call_method(call);
	const uint8_t *raw, *p;
	size_t len, plen;

	f->ups_calls++;
	raw = ttrpc_call_request_raw(call, &len);
	if (len <= sizeof(f->last_req)) {
		memcpy(f->last_req, raw, len);
		f->last_req_len = len;
	}
	snprintf(f->last_method, sizeof(f->last_method), "%s", m);
	p = ttrpc_call_payload(call, &plen);
	if (!strcmp(m, "Delay") && plen == 4) {
		struct rf_delayed *d = calloc(1, sizeof(*d));
		uint32_t idx = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		uint64_t ms = idx < f->delay_count ? (f->delay_count - idx) / 10 : 0;

		d->call = call;
		memcpy(d->payload, p, 4);
		loop_timer_add(f->loop, ms, rf_delayed_fire, d);
	} else if (!strcmp(m, "Hold") && f->n_held < RF_MAX_HELD) {
		f->held[f->n_held++] = call;
	} else if (!strcmp(m, "Raw")) {
		ttrpc_call_reply_raw(call, rf_raw_response, sizeof(rf_raw_response));
	} else if (!strcmp(m, "Fail")) {
		ttrpc_call_reply_error(call, PP_NOT_FOUND, "upstream says no");
	} else {
		ttrpc_call_reply(call, p, plen);   /* Echo and everything else */
	}
}

static inline int rf_ups_start(struct rf *f)
{
	struct pp_err err = { 0 };

	f->ups = ttrpc_server_new(f->loop, &err);
	if (!f->ups)
		return -1;
	ttrpc_server_set_fallback(f->ups, rf_ups_handle, f);
	return ttrpc_server_listen_unix(f->ups, f->ups_path, &err);
}

static inline void rf_ups_stop(struct rf *f)
{
	ttrpc_server_free(f->ups);   /* held calls outlive it; their replies are dropped */
	f->ups = NULL;
}

static inline void rf_ups_release_held(struct rf *f)
{
	while (f->n_held > 0)
		ttrpc_call_reply(f->held[--f->n_held], (const uint8_t *)"late", 4);
}

/* ---- the relay's dialer: a unix connect retried every 10 ms ---- */

static inline void rf_dial_try(void *arg)
{
	struct rf *f = arg;
	struct pp_err err = { 0 };
	struct stream *st;
	int fd;

	f->dial_timer = NULL;
	fd = rf_unix_connect(f->ups_path);
	if (fd >= 0) {
		st = stream_plain_new(fd, &err);
		ttrpc_relay_dial_done(f->relay, st, st ? NULL : &err);
		return;
	}
	if (f->dial_give_up || f->dial_retries_left == 0) {
		pp_err_set(&err, PP_UNAVAILABLE, "test upstream %s not listening", f->ups_path);
		ttrpc_relay_dial_done(f->relay, NULL, &err);
		return;
	}
	f->dial_retries_left--;
	f->dial_timer = loop_timer_add(f->loop, 10, rf_dial_try, f);
}

static inline void rf_dial(void *arg, struct ttrpc_relay *r)
{
	struct rf *f = arg;

	(void)r;
	f->dials++;
	f->dial_retries_left = 500;
	f->dial_timer = loop_timer_add(f->loop, 0, rf_dial_try, f);
}

static inline void rf_dial_cancel(void *arg, struct ttrpc_relay *r)
{
	struct rf *f = arg;

	(void)r;
	loop_timer_cancel(f->loop, f->dial_timer);
	f->dial_timer = NULL;
}

/* ---- set-up ---- */

static inline void rf_init(struct rf *f)
{
	struct pp_err err = { 0 };

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/pp-relay-XXXXXX");
	if (!mkdtemp(f->dir))
		abort();
	snprintf(f->ups_path, sizeof(f->ups_path), "%s/ups.sock", f->dir);
	snprintf(f->relay_path, sizeof(f->relay_path), "%s/relay.sock", f->dir);
	f->loop = loop_new(&err);
	if (!f->loop)
		abort();
}

static inline struct ttrpc_relay *rf_relay_start(struct rf *f, bool eager, unsigned max_queued,
					  uint64_t max_wait_ms)
{
	struct ttrpc_relay_config cfg = {
		.name = "test relay",
		.peer = f->ups_path,
		.dial = rf_dial,
		.dial_cancel = rf_dial_cancel,
		.dial_arg = f,
		.eager = eager,
		.max_queued = max_queued,
		.max_wait_ms = max_wait_ms,
	};
	struct pp_err err = { 0 };

	f->relay = ttrpc_relay_new(f->loop, &cfg, &err);
	if (!f->relay)
		return NULL;
	if (ttrpc_server_listen_unix(ttrpc_relay_server(f->relay), f->relay_path, &err) < 0)
		return NULL;
	ttrpc_relay_start(f->relay);
	return f->relay;
}

static inline void rf_client_closed(void *arg, const struct pp_err *why)
{
	(void)arg;
	(void)why;
}

static inline struct ttrpc_client *rf_client_new(struct rf *f)
{
	struct pp_err err = { 0 };
	int fd = rf_unix_connect(f->relay_path);
	struct stream *st;

	if (fd < 0)
		return NULL;
	st = stream_plain_new(fd, &err);
	if (!st)
		return NULL;
	return ttrpc_client_new(f->loop, st, rf_client_closed, f, &err);
}

static inline void rf_fini(struct rf *f)
{
	rf_ups_release_held(f);
	ttrpc_client_free(f->cl);
	ttrpc_relay_free(f->relay);
	rf_ups_stop(f);
	rf_run_for(f, 5);
	loop_free(f->loop);
	unlink(f->ups_path);
	unlink(f->relay_path);
	rmdir(f->dir);
}

/* ---- downstream calls ---- */

struct rf_slot {
	struct rf *f;
	unsigned i;
};

static struct rf_slot rf_slots[RF_MAX_CALLS];

static inline void rf_on_done(void *arg, const struct ttrpc_result *res)
{
	struct rf_slot *s = arg;
	struct rf_result *r = &s->f->res[s->i];

	r->done = true;
	r->code = res->code;
	snprintf(r->msg, sizeof(r->msg), "%s", res->message ? res->message : "");
	r->payload_len = res->payload_len < sizeof(r->payload) ? res->payload_len : 0;
	if (r->payload_len)
		memcpy(r->payload, res->payload, r->payload_len);
	r->raw_len = res->raw_len < sizeof(r->raw) ? res->raw_len : 0;
	if (r->raw_len)
		memcpy(r->raw, res->raw, r->raw_len);
	r->order = s->f->completed++;
}

static inline int rf_call(struct rf *f, struct ttrpc_client *cl, unsigned i, const char *service,
		   const char *method, const void *payload, size_t len, int64_t timeout_ns)
{
	struct pp_err err = { 0 };

	rf_slots[i].f = f;
	rf_slots[i].i = i;
	memset(&f->res[i], 0, sizeof(f->res[i]));
	return ttrpc_client_call(cl, service, method, payload, len, timeout_ns, rf_on_done,
				 &rf_slots[i], &err);
}

static inline int rf_call_raw(struct rf *f, struct ttrpc_client *cl, unsigned i, const uint8_t *req,
		       size_t len)
{
	struct pp_err err = { 0 };

	rf_slots[i].f = f;
	rf_slots[i].i = i;
	memset(&f->res[i], 0, sizeof(f->res[i]));
	return ttrpc_client_call_raw(cl, req, len, rf_on_done, &rf_slots[i], &err) ? 0 : -1;
}

static inline bool rf_done_cond(struct rf *f, void *arg)
{
	return f->res[(unsigned)(uintptr_t)arg].done;
}

static inline bool rf_all_done_cond(struct rf *f, void *arg)
{
	unsigned n = (unsigned)(uintptr_t)arg, i;

	for (i = 0; i < n; i++)
		if (!f->res[i].done)
			return false;
	return true;
}

#define RF_WAIT_DONE(f, i, ms) rf_run_until((f), rf_done_cond, (void *)(uintptr_t)(i), (ms))
#define RF_WAIT_ALL(f, n, ms) rf_run_until((f), rf_all_done_cond, (void *)(uintptr_t)(n), (ms))

#endif
