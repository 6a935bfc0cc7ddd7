/*
 * Test fixture shared by the ttRPC tests: an event loop running in its own thread, a private
 * temp dir for sockets, a way to run a function in the loop thread and wait for it, and raw
 * frame I/O on blocking fds (to send what a well-behaved client never would).
 */
#ifndef TTRPC_FIXTURE_H
#define TTRPC_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/ttrpc.h"

struct fixture {
	struct loop *loop;
	pthread_t thread;
	char dir[64];
	char sock[128];
};

static void *fixture_loop_main(void *arg)
{
	struct fixture *fx = arg;

	loop_run(fx->loop);
	return NULL;
}

/* Creates the loop and the temp dir; the loop thread starts with fixture_start(). */
static inline void fixture_init(struct fixture *fx)
{
	struct pp_err err = { 0 };

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pp-ttrpc-XXXXXX");
	if (!mkdtemp(fx->dir))
		abort();
	snprintf(fx->sock, sizeof(fx->sock), "%s/t.sock", fx->dir);
	fx->loop = loop_new(&err);
	if (!fx->loop)
		abort();
}

static inline void fixture_start(struct fixture *fx)
{
	if (pthread_create(&fx->thread, NULL, fixture_loop_main, fx) != 0)
		abort();
}

struct in_loop {
	void (*fn)(void *arg);
	void *arg;
	sem_t done;
};

static void in_loop_trampoline(void *arg)
{
	struct in_loop *il = arg;

	il->fn(il->arg);
	sem_post(&il->done);
}

/* Runs fn(arg) in the loop thread and waits until it returned. */
static inline void fixture_run(struct fixture *fx, void (*fn)(void *), void *arg)
{
	struct in_loop il = { .fn = fn, .arg = arg };

	sem_init(&il.done, 0, 0);
	if (loop_post(fx->loop, in_loop_trampoline, &il) < 0)
		abort();
	while (sem_wait(&il.done) < 0 && errno == EINTR)
		;
	sem_destroy(&il.done);
}

static void fixture_stop_fn(void *arg)
{
	loop_stop(arg);
}

/* Runs fn in the loop (to free what lives there), stops and frees the loop, removes the dir. */
static inline void fixture_fini(struct fixture *fx, void (*fn)(void *), void *arg)
{
	if (fn)
		fixture_run(fx, fn, arg);
	loop_post(fx->loop, fixture_stop_fn, fx->loop);
	pthread_join(fx->thread, NULL);
	loop_free(fx->loop);
	unlink(fx->sock);
	rmdir(fx->dir);
}

/* ---- raw frames on a blocking fd ---- */

static inline int raw_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int raw_send_frame(int fd, uint32_t id, uint8_t type, const void *data, size_t len)
{
	struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = id, .type = type };
	uint8_t hdr[TTRPC_HEADER_SIZE];

	ttrpc_header_encode(&h, hdr);
	if (raw_write_all(fd, hdr, sizeof(hdr)) < 0)
		return -1;
	return len ? raw_write_all(fd, data, len) : 0;
}

static inline int raw_send_request(int fd, uint32_t id, const char *service, const char *method,
				   const char *payload, int64_t timeout_ns)
{
	uint8_t *req = NULL;
	size_t len = 0;
	struct pp_err err;
	int r;

	if (ttrpc_request_encode(service, method, (const uint8_t *)payload,
				 payload ? strlen(payload) : 0, timeout_ns, &req, &len, &err) < 0)
		return -1;
	r = raw_send_frame(fd, id, TTRPC_TYPE_REQUEST, req, len);
	free(req);
	return r;
}

/* Reads exactly len bytes, waiting at most timeout_ms for each chunk. */
static inline int raw_read_all(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one frame (data malloc'd into *data, NUL-terminated for convenience). */
static inline int raw_read_frame(int fd, struct ttrpc_header *h, uint8_t **data, int timeout_ms)
{
	uint8_t hdr[TTRPC_HEADER_SIZE];

	if (raw_read_all(fd, hdr, sizeof(hdr), timeout_ms) < 0)
		return -1;
	ttrpc_header_decode(hdr, h);
	if (h->length > TTRPC_MAX_DATA)
		return -1;
	*data = malloc(h->length + 1);
	if (!*data)
		return -1;
	if (raw_read_all(fd, *data, h->length, timeout_ms) < 0) {
		free(*data);
		*data = NULL;
		return -1;
	}
	(*data)[h->length] = 0;
	return 0;
}

/* A decoded response, copied out of the frame, for assertions. */
struct raw_result {
	uint32_t id;
	int code;
	char message[PP_ERR_MSG_MAX];
	char payload[256];
};

static inline int raw_read_result(int fd, struct raw_result *r, int timeout_ms)
{
	struct ttrpc_header h;
	struct ttrpc_result res;
	struct pp_err err;
	uint8_t *data = NULL;
	void *storage = NULL;

	memset(r, 0, sizeof(*r));
	if (raw_read_frame(fd, &h, &data, timeout_ms) < 0)
		return -1;
	if (h.type != TTRPC_TYPE_RESPONSE ||
	    ttrpc_response_decode(data, h.length, &res, &storage, &err) < 0) {
		free(data);
		return -1;
	}
	r->id = h.stream_id;
	r->code = res.code;
	snprintf(r->message, sizeof(r->message), "%s", res.message);
	snprintf(r->payload, sizeof(r->payload), "%.*s", (int)res.payload_len,
		 res.payload ? (const char *)res.payload : "");
	ttrpc_result_free_storage(storage);
	free(data);
	return 0;
}

#endif
