/*
 * Private to lib/ttrpc_*.c: one ttRPC connection in the event loop — a frame reader and a
 * frame writer over a struct stream, shared by the server and the client.
 *
 * Reads loop until EAGAIN; each complete frame goes to ops->frame with its data on the heap
 * (ownership passes to the owner). A frame whose length exceeds TTRPC_MAX_DATA is read and
 * dropped in chunks, never buffered, and reported to ops->oversize; the connection goes on.
 * Writes go to a per-connection output buffer that is flushed at once and then whenever the fd
 * is writable; EPOLLOUT is watched only while output is pending (or the stream asks for it).
 *
 * Everything runs in the loop thread. The owner may call ttrpc_conn_free() from inside any of
 * its callbacks: the connection is closed at once and its memory released when the callback
 * returns.
 */
#ifndef PP_TTRPC_CONN_H
#define PP_TTRPC_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/loop.h"
#include "lib/stream.h"
#include "lib/ttrpc.h"

struct ttrpc_conn;

struct ttrpc_conn_ops {
	/* A complete frame. data is malloc'd (NULL when h->length is 0); the owner frees it. */
	void (*frame)(void *owner, const struct ttrpc_header *h, uint8_t *data);
	/* A frame over TTRPC_MAX_DATA arrived; its data was dropped. */
	void (*oversize)(void *owner, const struct ttrpc_header *h);
	/* The connection broke (end of stream, I/O or handshake error). Called once; no further
	 * callbacks follow. The owner frees the connection (possibly from inside this call). */
	void (*closed)(void *owner, const struct pp_err *why);
};

/* Takes ownership of st (freed on failure too). With handshake_ms > 0, stream_handshake() is
 * driven before anything else is read or written, and a handshake that has not finished after
 * handshake_ms fails the connection (a peer that never finishes would otherwise hold it). */
struct ttrpc_conn *ttrpc_conn_new(struct loop *l, struct stream *st, uint64_t handshake_ms,
				  const struct ttrpc_conn_ops *ops, void *owner, struct pp_err *err);
/* Queues one frame. Refuses data over TTRPC_MAX_DATA (RESOURCE_EXHAUSTED) and a closed
 * connection (UNAVAILABLE). A write error found while flushing is reported later, through
 * ops->closed, never from inside this call. */
int ttrpc_conn_send(struct ttrpc_conn *c, uint32_t stream_id, uint8_t type, uint8_t flags,
		    const uint8_t *data, size_t len, struct pp_err *err);
bool ttrpc_conn_alive(const struct ttrpc_conn *c);
const char *ttrpc_conn_peer(const struct ttrpc_conn *c);
/* Closes the stream and releases the connection. No callback runs after this. NULL ok. */
void ttrpc_conn_free(struct ttrpc_conn *c);

#endif
