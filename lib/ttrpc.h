/*
 * ttRPC (containerd/ttrpc) over unix or TCP(+TLS) streams, driven by the event loop.
 *
 * Frame: 10-byte big-endian header {u32 length, u32 stream id, u8 type, u8 flags} + data,
 * data at most TTRPC_MAX_DATA. Request/Response are protobuf messages (proto/ttrpc.proto).
 * Many calls in flight per connection; responses out of order, matched by stream id; client
 * stream ids odd and strictly increasing.
 *
 * Server: handlers run in the loop thread and must not block. A handler answers exactly once
 * with ttrpc_call_reply*(), immediately or later from any thread (the reply is posted to the
 * loop). Each call has a cancel token that fires at the request's deadline (timeout_nano) or
 * when the client's connection closes. A reply after the connection closed is dropped.
 *
 * Client: loop-thread API (ttrpc_client_*), plus a blocking helper for tools and tests
 * (ttrpc_sync_*), which runs one call at a time on a blocking socket.
 */
#ifndef PP_TTRPC_H
#define PP_TTRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cancel.h"
#include "lib/err.h"
#include "lib/loop.h"
#include "lib/stream.h"

#define TTRPC_HEADER_SIZE 10
#define TTRPC_MAX_DATA (4u << 20)
/* How long an adopted stream (a TLS connection) may take to finish its handshake. */
#define TTRPC_HANDSHAKE_TIMEOUT_MS 10000u

enum ttrpc_msg_type { TTRPC_TYPE_REQUEST = 1, TTRPC_TYPE_RESPONSE = 2, TTRPC_TYPE_DATA = 3 };
enum ttrpc_flags { TTRPC_FLAG_REMOTE_CLOSED = 1, TTRPC_FLAG_REMOTE_OPEN = 2, TTRPC_FLAG_NO_DATA = 4 };

struct ttrpc_header {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *h);

/* Request/Response message bytes (heap, caller frees). */
int ttrpc_request_encode(const char *service, const char *method, const uint8_t *payload,
			 size_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len, struct pp_err *err);
int ttrpc_response_encode(int code, const char *message, const uint8_t *payload, size_t len,
			  uint8_t **ret, size_t *ret_len, struct pp_err *err);

/* A decoded response. Pointers are valid only while the callback that receives it runs. */
struct ttrpc_result {
	int code;                 /* PP_OK when status absent or code 0 */
	const char *message;      /* "" on success */
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *raw;       /* the whole Response message, for relays */
	size_t raw_len;
};
/* Decodes Response bytes; result pointers alias `buf` and *storage (free with ttrpc_result_free_storage). */
int ttrpc_response_decode(const uint8_t *buf, size_t len, struct ttrpc_result *res, void **storage,
			  struct pp_err *err);
void ttrpc_result_free_storage(void *storage);

/* ---- server ---- */

struct ttrpc_server;
struct ttrpc_call;
typedef void (*ttrpc_handler_fn)(struct ttrpc_call *call, void *arg);

struct ttrpc_server *ttrpc_server_new(struct loop *l, struct pp_err *err);
int ttrpc_server_register(struct ttrpc_server *s, const char *service, const char *method,
			  ttrpc_handler_fn fn, void *arg);
/* Called for any service/method not registered (relays); default: UNIMPLEMENTED. */
void ttrpc_server_set_fallback(struct ttrpc_server *s, ttrpc_handler_fn fn, void *arg);
/* Listens on a unix socket (stale socket file replaced; parent dir must exist). A socket that
 * another server still serves is refused, unless takeover is set. At shutdown the socket file
 * is removed only if the path still names it (a successor's socket is left alone). */
void ttrpc_server_set_takeover(struct ttrpc_server *s, bool takeover);
int ttrpc_server_listen_unix(struct ttrpc_server *s, const char *path, struct pp_err *err);
/* Serves an accepted stream (its handshake, if any, is driven first). Takes ownership. */
int ttrpc_server_adopt(struct ttrpc_server *s, struct stream *st, struct pp_err *err);
/* Overrides TTRPC_HANDSHAKE_TIMEOUT_MS for streams adopted from now on (0 = the default). */
void ttrpc_server_set_handshake_timeout(struct ttrpc_server *s, uint64_t ms);
unsigned ttrpc_server_inflight(const struct ttrpc_server *s);
unsigned ttrpc_server_connections(const struct ttrpc_server *s);
/* Stops listening (unlinks the unix socket it created), waits up to grace_ms for in-flight
 * calls to be answered, then closes every connection and calls done(arg) in the loop. */
void ttrpc_server_shutdown(struct ttrpc_server *s, uint64_t grace_ms, loop_fn done, void *arg);
void ttrpc_server_free(struct ttrpc_server *s);   /* closes everything at once; NULL ok */

const char *ttrpc_call_service(const struct ttrpc_call *c);
const char *ttrpc_call_method(const struct ttrpc_call *c);
const uint8_t *ttrpc_call_payload(const struct ttrpc_call *c, size_t *len);
const uint8_t *ttrpc_call_request_raw(const struct ttrpc_call *c, size_t *len);  /* whole Request */
int64_t ttrpc_call_timeout_ns(const struct ttrpc_call *c);   /* 0 = none */
struct cancel *ttrpc_call_cancel(const struct ttrpc_call *c); /* borrowed; cancel_ref to keep */
/* Exactly one of these, from any thread; the call is freed after. */
void ttrpc_call_reply(struct ttrpc_call *c, const uint8_t *payload, size_t len);
void ttrpc_call_reply_error(struct ttrpc_call *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ttrpc_call_reply_err(struct ttrpc_call *c, const struct pp_err *err);
void ttrpc_call_reply_raw(struct ttrpc_call *c, const uint8_t *response, size_t len);

/* ---- client (loop thread) ---- */

struct ttrpc_client;
typedef void (*ttrpc_done_fn)(void *arg, const struct ttrpc_result *res);
typedef void (*ttrpc_closed_fn)(void *arg, const struct pp_err *why);

/* Takes ownership of an established stream. on_closed runs (in the loop) when the connection
 * breaks, after every pending call got UNAVAILABLE; the client must then be freed. */
struct ttrpc_client *ttrpc_client_new(struct loop *l, struct stream *st, ttrpc_closed_fn on_closed,
				      void *arg, struct pp_err *err);
int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
		      const uint8_t *payload, size_t len, int64_t timeout_ns, ttrpc_done_fn done,
		      void *arg, struct pp_err *err);
/* Sends an already encoded Request message under a fresh stream id (relays). Returns the
 * stream id used (> 0) or 0 on error. */
uint32_t ttrpc_client_call_raw(struct ttrpc_client *c, const uint8_t *request, size_t len,
			       ttrpc_done_fn done, void *arg, struct pp_err *err);
/* The stream id of the most recent call sent (to abandon a ttrpc_client_call later). */
uint32_t ttrpc_client_last_id(const struct ttrpc_client *c);
/* Forgets a pending call: its done callback will not run (its response is dropped). */
void ttrpc_client_abandon(struct ttrpc_client *c, uint32_t stream_id);
unsigned ttrpc_client_pending(const struct ttrpc_client *c);
/* Fails pending calls with UNAVAILABLE ("connection closed"), closes, frees. NULL ok. */
void ttrpc_client_free(struct ttrpc_client *c);

/* ---- blocking helper (tools, tests) ---- */

int ttrpc_sync_dial_unix(const char *path, struct pp_err *err);   /* returns a blocking fd */
/* One call on a blocking fd; *next_stream_id starts at 1 and advances by 2. On a non-OK status
 * returns -1 with err->code = status code, err->msg = status message. *ret_payload is heap. */
int ttrpc_sync_call(int fd, uint32_t *next_stream_id, const char *service, const char *method,
		    const uint8_t *payload, size_t len, int64_t timeout_ns, uint8_t **ret_payload,
		    size_t *ret_len, struct pp_err *err);

#endif
