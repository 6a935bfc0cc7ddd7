/*
 * A non-blocking byte stream: a plain socket, or TLS over a socket (lib/tls.h). The ttRPC
 * connection code reads and writes through this, so it never knows whether TLS is there.
 *
 * read/write return >0 bytes, 0 for end of stream (read only), or -1 with errno: EAGAIN when the
 * call must be retried once the fd is ready in the direction(s) given by stream->want
 * (EPOLLIN/EPOLLOUT; TLS may need to write while reading and the other way round), anything else
 * is fatal for the stream. handshake() returns 1 when done, 0 when it must be called again once
 * `want` is ready, -1 on failure (with a message in err). A stream is used by one thread at a
 * time (OpenSSL forbids concurrent use of an SSL object).
 */
#ifndef PP_STREAM_H
#define PP_STREAM_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

struct stream;

struct stream_ops {
	ssize_t (*read)(struct stream *s, void *buf, size_t n);
	ssize_t (*write)(struct stream *s, const void *buf, size_t n);
	int (*handshake)(struct stream *s, struct pp_err *err);
	/* bytes already decrypted and buffered inside the stream (TLS), readable without the fd */
	size_t (*pending)(struct stream *s);
	void (*free)(struct stream *s);   /* closes the fd */
};

struct stream {
	const struct stream_ops *ops;
	int fd;
	uint32_t want;   /* EPOLLIN/EPOLLOUT the last EAGAIN waits for */
	char peer[64];   /* "unix" or "ip:port", for log lines */
};

/* Takes ownership of fd (made non-blocking, close-on-exec). */
struct stream *stream_plain_new(int fd, struct pp_err *err);

static inline ssize_t stream_read(struct stream *s, void *b, size_t n) { return s->ops->read(s, b, n); }
static inline ssize_t stream_write(struct stream *s, const void *b, size_t n) { return s->ops->write(s, b, n); }
static inline int stream_handshake(struct stream *s, struct pp_err *e) { return s->ops->handshake(s, e); }
static inline size_t stream_pending(struct stream *s) { return s->ops->pending ? s->ops->pending(s) : 0; }
void stream_free(struct stream *s);   /* NULL ok */
/* ttRPC frames are small request/response messages: Nagle's algorithm would hold each one
 * back waiting for the peer's ACK (40 ms on Linux). Call on every TCP socket. */
void stream_tcp_nodelay(int fd);
/* "unix", "ip:port" or "[ip6]:port" of a connected socket, for messages and log lines. */
void stream_peer_name(int fd, char *buf, size_t size);

#endif
