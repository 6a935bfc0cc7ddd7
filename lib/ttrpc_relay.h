/*
 * A ttRPC frame relay: a downstream ttRPC server whose calls are forwarded, as the raw Request
 * bytes, over ONE upstream ttRPC client connection; each upstream Response is handed back to
 * the downstream caller as raw bytes. Nothing is decoded or re-encoded except the methods that
 * have a rewrite hook. Knows nothing about pods: the agent proxy (adaptor/proxy.c) and the
 * forwarder (forwarder/forwarder.c) are both built on it.
 *
 * The one idea: every downstream call becomes one relay_call that is either waiting for an
 * upstream connection (queued) or in flight upstream under a fresh stream id (the ttRPC client
 * allocates odd, increasing ids, which remaps ids of many downstream connections onto one
 * upstream connection). Responses come back out of order and are routed by that id. A call
 * ends exactly once: upstream answered, the upstream broke (UNAVAILABLE naming the peer), its
 * deadline passed, it waited too long for a connection, or its client went away (then the
 * upstream call is abandoned and its late response dropped).
 *
 * The upstream connection comes from a pluggable dialer. The relay asks for one (at start when
 * `eager`, on the first call otherwise, and again right after a break when `eager`); the
 * dialer answers once with ttrpc_relay_dial_done(). The dialer owns the retry cadence.
 *
 * Everything runs in the loop thread; there are no locks.
 */
#ifndef PP_TTRPC_RELAY_H
#define PP_TTRPC_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/loop.h"
#include "lib/stream.h"
#include "lib/ttrpc.h"

#define TTRPC_RELAY_MAX_QUEUED_DEFAULT 1024u   /* calls that may wait for a connection */
#define TTRPC_RELAY_SWEEP_MS 100u              /* how often deadlines/cancels are checked */

struct ttrpc_relay;

/* Asks the dialer to connect. It must answer exactly once, in the loop thread, with
 * ttrpc_relay_dial_done() — possibly before returning. */
typedef void (*ttrpc_relay_dial_fn)(void *arg, struct ttrpc_relay *r);
/* Stops a dial in progress (the relay is being freed); the dialer must not answer after. */
typedef void (*ttrpc_relay_dial_cancel_fn)(void *arg, struct ttrpc_relay *r);

/* Rewrites one method's request payload (the method's own message, not the ttRPC Request).
 * Return 0 and leave *ret NULL to pass the request through unchanged; return 0 with *ret set
 * (malloc'd, the relay frees it) to send that payload instead; return -1 with err filled to
 * answer the call with that error without forwarding it. */
typedef int (*ttrpc_relay_rewrite_fn)(void *arg, const char *service, const char *method,
				      const uint8_t *payload, size_t len, uint8_t **ret,
				      size_t *ret_len, struct pp_err *err);

struct ttrpc_relay_config {
	const char *name;       /* for log lines and messages: "agent proxy", "forwarder" */
	const char *peer;       /* upstream address, named in errors: "10.0.0.5:15150" */
	ttrpc_relay_dial_fn dial;
	ttrpc_relay_dial_cancel_fn dial_cancel;   /* may be NULL if dial always answers at once */
	void *dial_arg;
	bool eager;             /* dial at start and re-dial right after a break */
	unsigned max_queued;    /* 0 = TTRPC_RELAY_MAX_QUEUED_DEFAULT */
	uint64_t max_wait_ms;   /* longest a call waits for a connection; 0 = its deadline only */
};

struct ttrpc_relay_stats {
	uint64_t relayed;       /* calls sent upstream */
	uint64_t reconnects;    /* upstream connections established after the first */
	uint64_t failed;        /* calls answered by the relay itself with an error */
	unsigned in_flight;     /* calls sent upstream, not answered yet */
	unsigned queued;        /* calls waiting for an upstream connection */
	bool connected;
};

struct ttrpc_relay *ttrpc_relay_new(struct loop *l, const struct ttrpc_relay_config *cfg,
				    struct pp_err *err);
/* The downstream server: the owner makes it listen (ttrpc_server_listen_unix) or adopts
 * accepted streams (ttrpc_server_adopt). Owned by the relay. */
struct ttrpc_server *ttrpc_relay_server(struct ttrpc_relay *r);
/* Registers a rewrite hook for one service/method (copied strings). */
int ttrpc_relay_add_rewrite(struct ttrpc_relay *r, const char *service, const char *method,
			    ttrpc_relay_rewrite_fn fn, void *arg, struct pp_err *err);
/* Starts the first dial when the config says eager (separate from _new so that the owner can
 * finish its set-up first, e.g. when the dialer answers synchronously). */
void ttrpc_relay_start(struct ttrpc_relay *r);
/* The dialer's answer: st is an established stream (ownership passes to the relay) or NULL,
 * with why saying what failed; then every queued call fails with UNAVAILABLE. */
void ttrpc_relay_dial_done(struct ttrpc_relay *r, struct stream *st, const struct pp_err *why);
void ttrpc_relay_get_stats(const struct ttrpc_relay *r, struct ttrpc_relay_stats *ret);
/* Answers every outstanding call with UNAVAILABLE, cancels a dial, closes the upstream and the
 * downstream server (unlinking its unix socket), frees. NULL ok. Loop thread. */
void ttrpc_relay_free(struct ttrpc_relay *r);

/* Replaces field 3 (payload) of an encoded ttRPC Request, keeping every other field (service,
 * method, timeout_nano, metadata, unknown fields) byte-for-byte. Exposed for tests. */
int ttrpc_relay_request_set_payload(const uint8_t *req, size_t len, const uint8_t *payload,
				    size_t payload_len, uint8_t **ret, size_t *ret_len,
				    struct pp_err *err);

#endif
