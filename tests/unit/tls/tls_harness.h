/*
 * Test helpers for the TLS tests: loopback TCP socket pairs (port 0, read back), and a
 * single-threaded poll() driver that runs both ends of a handshake or a transfer through the
 * non-blocking stream API, so the tests exercise the same EAGAIN/want paths the loop uses.
 */
#ifndef PP_TEST_TLS_HARNESS_H
#define PP_TEST_TLS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "lib/err.h"
#include "lib/stream.h"

#define HARNESS_TIMEOUT_MS 5000

/* Listening TCP socket on 127.0.0.1, port chosen by the kernel. Returns fd, -1 on error. */
int harness_listen(uint16_t *ret_port);
/* Connected loopback pair (blocking fds; the streams make them non-blocking). */
int harness_tcp_pair(int *ret_client, int *ret_server);

struct harness_hs {
	int client_rc;    /* 1 done, -1 failed, 0 still running when the time ran out */
	int server_rc;
	struct pp_err client_err;
	struct pp_err server_err;
};

/* Drives both handshakes until each has finished or failed (or HARNESS_TIMEOUT_MS). */
void harness_handshake(struct stream *c, struct stream *s, struct harness_hs *ret);

/* Drives one side only (the other end is driven elsewhere). Returns 1, -1 or 0 (time ran out). */
int harness_handshake_one(struct stream *s, struct pp_err *err);

/* Moves n bytes from `from` to `to` (both non-blocking), polling. Returns 0 when all arrived
 * intact, -1 otherwise. */
int harness_transfer(struct stream *from, struct stream *to, size_t n);

/* Reads until data, EOF or error (polling). Returns what stream_read returned last (>0, 0, -1
 * with errno). */
ssize_t harness_read(struct stream *s, void *buf, size_t n);

/* A one-element stack holding a new reference to x. */
STACK_OF(X509) *harness_stack1(X509 *x);

#endif
