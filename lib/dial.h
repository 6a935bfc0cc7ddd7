/*
 * Asynchronous TCP (+TLS) dialling in the event loop: non-blocking connect, wait until the
 * socket is writable, check SO_ERROR, then drive the TLS handshake until it completes — all
 * without blocking the loop thread. Used by the proxy to (re)dial the forwarder.
 *
 * The one idea: the caller hears back exactly once, always later from the loop (never from
 * inside dial_tcp_async), with either an established stream or an error — unless it cancels
 * first, in which case it never hears back.
 */
#ifndef PP_DIAL_H
#define PP_DIAL_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "lib/err.h"
#include "lib/loop.h"
#include "lib/stream.h"

struct dial;

/* s: the connected (and, with TLS, handshaken) stream, owned by the callee from now on, its fd
 * no longer watched by the loop; NULL on failure, with err saying what failed ("connecting to
 * 10.0.0.5:15150: Connection refused", "TLS handshake with ... failed: ...", "... timed out").
 * err is only valid during the call. */
typedef void (*dial_done_fn)(void *arg, struct stream *s, const struct pp_err *err);

/* Dials host:port (numeric IPv4 or IPv6 address and numeric port only). With ctx, the
 * connection is TLS and the server certificate must be valid for server_name. timeout_ms
 * (0 = none) covers connect and handshake together. Loop thread only. Returns a handle valid
 * until done runs or dial_cancel is called; NULL only if out of memory (done is then never
 * called). */
struct dial *dial_tcp_async(struct loop *l, const char *host, const char *port, SSL_CTX *ctx,
			    const char *server_name, uint64_t timeout_ms, dial_done_fn done,
			    void *arg);

/* Stops a dial in progress and frees it; done is not called. Must not be called after done
 * ran (the handle is gone then). NULL ok. Loop thread only. */
void dial_cancel(struct dial *d);

#endif
