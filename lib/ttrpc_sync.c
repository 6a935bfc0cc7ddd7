/*
 * Blocking ttRPC helper for tools and tests: dial a unix socket, run one call at a time.
 * Everything is bounded: the call's timeout (poll on the fd with the time left) and the frame
 * size (an oversize response is read and dropped, never buffered). Frames for other stream ids
 * are skipped, so a caller that abandoned a call after a timeout can keep using the fd.
 */
#include "lib/ttrpc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SYNC_DISCARD_CHUNK 65536

int ttrpc_sync_dial_unix(const char *path, struct pp_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	int fd;

	if (n >= sizeof(sa.sun_path))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "unix socket path %s is too long (%zu bytes, max %zu)", path, n,
				  sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "creating a unix socket for %s", path);
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		pp_err_errno(err, PP_UNAVAILABLE, errno, "connecting to %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits until fd is ready for `events` or the absolute deadline (0 = none) passes. */
static int sync_wait(int fd, short events, uint64_t deadline_ns, struct pp_err *err)
{
	struct pollfd p = { .fd = fd, .events = events };
	int timeout = -1;
	int r;

	for (;;) {
		if (deadline_ns) {
			uint64_t now = pp_now_ns();

			if (now >= deadline_ns)
				return pp_err_set(err, PP_DEADLINE_EXCEEDED,
						  "deadline exceeded waiting for the ttRPC server");
			timeout = (int)((deadline_ns - now + 999999) / 1000000);
		}
		r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return pp_err_errno(err, PP_UNAVAILABLE, errno, "waiting on the ttRPC connection");
	}
}

static int sync_write_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline_ns,
			  struct pp_err *err)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (sync_wait(fd, POLLOUT, deadline_ns, err) < 0)
				return -1;
			continue;
		}
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "writing a ttRPC request");
	}
	return 0;
}

/* Reads exactly len bytes into buf; buf NULL means read and drop them. */
static int sync_read_all(int fd, uint8_t *buf, size_t len, uint64_t deadline_ns,
			 struct pp_err *err)
{
	uint8_t scratch[SYNC_DISCARD_CHUNK];

	while (len > 0) {
		uint8_t *dst = buf ? buf : scratch;
		size_t want = buf ? len : (len < sizeof(scratch) ? len : sizeof(scratch));
		ssize_t n = recv(fd, dst, want, MSG_DONTWAIT);

		if (n > 0) {
			if (buf)
				buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return pp_err_set(err, PP_UNAVAILABLE, "connection closed by the ttRPC server");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (sync_wait(fd, POLLIN, deadline_ns, err) < 0)
				return -1;
			continue;
		}
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "reading a ttRPC response");
	}
	return 0;
}

static int sync_send_request(int fd, uint32_t id, const uint8_t *req, size_t req_len,
			     uint64_t deadline_ns, struct pp_err *err)
{
	struct ttrpc_header h = { .length = (uint32_t)req_len, .stream_id = id,
				  .type = TTRPC_TYPE_REQUEST };
	uint8_t hdr[TTRPC_HEADER_SIZE];

	ttrpc_header_encode(&h, hdr);
	if (sync_write_all(fd, hdr, sizeof(hdr), deadline_ns, err) < 0)
		return -1;
	return sync_write_all(fd, req, req_len, deadline_ns, err);
}

/* Reads frames until the Response for stream `id`; returns its bytes (heap) in *ret. */
static int sync_read_response(int fd, uint32_t id, uint64_t deadline_ns, uint8_t **ret,
			      size_t *ret_len, struct pp_err *err)
{
	for (;;) {
		uint8_t hdr[TTRPC_HEADER_SIZE];
		struct ttrpc_header h;
		uint8_t *data;

		if (sync_read_all(fd, hdr, sizeof(hdr), deadline_ns, err) < 0)
			return -1;
		ttrpc_header_decode(hdr, &h);
		if (h.length > TTRPC_MAX_DATA) {
			if (sync_read_all(fd, NULL, h.length, deadline_ns, err) < 0)
				return -1;
			if (h.stream_id == id && h.type == TTRPC_TYPE_RESPONSE)
				return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
						  "message length %u exceed maximum message size of %u",
						  h.length, TTRPC_MAX_DATA);
			continue;
		}
		data = malloc(h.length ? h.length : 1);
		if (!data)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory reading a ttRPC frame");
		if (sync_read_all(fd, data, h.length, deadline_ns, err) < 0) {
			free(data);
			return -1;
		}
		if (h.stream_id == id && h.type == TTRPC_TYPE_RESPONSE) {
			*ret = data;
			*ret_len = h.length;
			return 0;
		}
		free(data);
	}
}

/* Turns Response bytes into the caller's result: payload copy on OK, err on a status. */
static int sync_take_result(const uint8_t *buf, size_t len, uint8_t **ret_payload,
			    size_t *ret_len, struct pp_err *err)
{
	struct ttrpc_result res;
	void *storage = NULL;
	uint8_t *out;

	if (ttrpc_response_decode(buf, len, &res, &storage, err) < 0)
		return -1;
	if (res.code != PP_OK) {
		pp_err_set(err, res.code, "%s", res.message);
		ttrpc_result_free_storage(storage);
		return -1;
	}
	out = malloc(res.payload_len ? res.payload_len : 1);
	if (!out) {
		ttrpc_result_free_storage(storage);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory copying a ttRPC payload");
	}
	if (res.payload_len)
		memcpy(out, res.payload, res.payload_len);
	if (ret_payload)
		*ret_payload = out;
	else
		free(out);
	if (ret_len)
		*ret_len = res.payload_len;
	ttrpc_result_free_storage(storage);
	return 0;
}

int ttrpc_sync_call(int fd, uint32_t *next_stream_id, const char *service, const char *method,
		    const uint8_t *payload, size_t len, int64_t timeout_ns, uint8_t **ret_payload,
		    size_t *ret_len, struct pp_err *err)
{
	uint64_t deadline_ns = timeout_ns > 0 ? pp_now_ns() + (uint64_t)timeout_ns : 0;
	uint8_t *req = NULL, *resp = NULL;
	size_t req_len = 0, resp_len = 0;
	uint32_t id;
	int r = -1;

	if (*next_stream_id == 0 || *next_stream_id % 2 == 0)
		*next_stream_id |= 1;
	id = *next_stream_id;
	if (ttrpc_request_encode(service, method, payload, len, timeout_ns, &req, &req_len, err) < 0)
		return -1;
	*next_stream_id += 2;
	if (sync_send_request(fd, id, req, req_len, deadline_ns, err) < 0)
		goto out;
	if (sync_read_response(fd, id, deadline_ns, &resp, &resp_len, err) < 0)
		goto out;
	r = sync_take_result(resp, resp_len, ret_payload, ret_len, err);
out:
	free(req);
	free(resp);
	return r;
}
