/* Test helpers for the TLS tests: see tls_harness.h. */
#include "tls_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/loop.h"

int harness_listen(uint16_t *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*ret_port = ntohs(a.sin_port);
	return fd;
}

int harness_tcp_pair(int *ret_client, int *ret_server)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint16_t port;
	int l = harness_listen(&port);
	int c, s;

	if (l < 0)
		return -1;
	a.sin_port = htons(port);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (c >= 0)
			close(c);
		close(l);
		return -1;
	}
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (s < 0) {
		close(c);
		return -1;
	}
	*ret_client = c;
	*ret_server = s;
	return 0;
}

static short harness_events(uint32_t want)
{
	return (short)(((want & EPOLLIN) ? POLLIN : 0) | ((want & EPOLLOUT) ? POLLOUT : 0));
}

void harness_handshake(struct stream *c, struct stream *s, struct harness_hs *r)
{
	uint64_t end = pp_now_ms() + HARNESS_TIMEOUT_MS;

	memset(r, 0, sizeof(*r));
	while (pp_now_ms() < end && (r->client_rc == 0 || r->server_rc == 0)) {
		struct pollfd p[2];
		nfds_t n = 0;

		if (r->client_rc == 0)
			r->client_rc = stream_handshake(c, &r->client_err);
		if (r->server_rc == 0)
			r->server_rc = stream_handshake(s, &r->server_err);
		if (r->client_rc == 0)
			p[n++] = (struct pollfd){ .fd = c->fd, .events = harness_events(c->want) };
		if (r->server_rc == 0)
			p[n++] = (struct pollfd){ .fd = s->fd, .events = harness_events(s->want) };
		if (n)
			poll(p, n, 100);
	}
}

int harness_handshake_one(struct stream *s, struct pp_err *err)
{
	uint64_t end = pp_now_ms() + HARNESS_TIMEOUT_MS;
	int rc = 0;

	while (rc == 0 && pp_now_ms() < end) {
		struct pollfd p = { .fd = s->fd, .events = harness_events(s->want) };

		rc = stream_handshake(s, err);
		if (rc == 0)
			poll(&p, 1, 100);
	}
	return rc;
}

int harness_transfer(struct stream *from, struct stream *to, size_t n)
{
	uint8_t *src = malloc(n), *dst = malloc(n);
	size_t sent = 0, got = 0;
	uint64_t end = pp_now_ms() + HARNESS_TIMEOUT_MS;
	int rc = -1;

	if (!src || !dst)
		goto out;
	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 7 + (i >> 11));
	while (got < n && pp_now_ms() < end) {
		struct pollfd p[2] = {
			{ .fd = from->fd, .events = harness_events(from->want) },
			{ .fd = to->fd, .events = harness_events(to->want) },
		};
		ssize_t w = 0, r;

		while (sent < n && (w = stream_write(from, src + sent, n - sent)) > 0)
			sent += (size_t)w;
		if (w < 0 && errno != EAGAIN)
			goto out;
		while ((r = stream_read(to, dst + got, n - got)) > 0)
			got += (size_t)r;
		if (r == 0 || (r < 0 && errno != EAGAIN))
			break;
		if (got < n)
			poll(p, 2, 50);
	}
	rc = got == n && memcmp(src, dst, n) == 0 ? 0 : -1;
out:
	free(src);
	free(dst);
	return rc;
}

ssize_t harness_read(struct stream *s, void *buf, size_t n)
{
	uint64_t end = pp_now_ms() + HARNESS_TIMEOUT_MS;
	ssize_t r;

	for (;;) {
		struct pollfd p = { .fd = s->fd, .events = harness_events(s->want) };

		r = stream_read(s, buf, n);
		if (r >= 0 || errno != EAGAIN || pp_now_ms() >= end)
			return r;
		poll(&p, 1, 100);
	}
}

STACK_OF(X509) *harness_stack1(X509 *x)
{
	STACK_OF(X509) *st = sk_X509_new_null();

	if (st && X509_up_ref(x) && sk_X509_push(st, x))
		return st;
	sk_X509_pop_free(st, X509_free);
	return NULL;
}
