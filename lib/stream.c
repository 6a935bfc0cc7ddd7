/*
 * The plain-socket stream (see stream.h): read/write straight on a non-blocking fd. Writes use
 * send(MSG_NOSIGNAL) so a peer that went away is an EPIPE error, never a SIGPIPE; an fd that is
 * not a socket (a pipe in tests) falls back to write(2).
 */
#include "lib/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(struct stream *s, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(s->fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		s->want = EPOLLIN;
	}
	return r;
}

static ssize_t plain_write(struct stream *s, const void *buf, size_t n)
{
	ssize_t r;

	do {
		r = send(s->fd, buf, n, MSG_NOSIGNAL);
		if (r < 0 && errno == ENOTSOCK)
			r = write(s->fd, buf, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		s->want = EPOLLOUT;
	}
	return r;
}

static int plain_handshake(struct stream *s, struct pp_err *err)
{
	(void)s;
	(void)err;
	return 1;
}

static void plain_free(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static const struct stream_ops plain_ops = {
	.read = plain_read,
	.write = plain_write,
	.handshake = plain_handshake,
	.pending = NULL,
	.free = plain_free,
};

void stream_tcp_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void stream_peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";

	snprintf(buf, size, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_UNIX) {
		snprintf(buf, size, "unix");
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6_port));
	}
}

struct stream *stream_plain_new(int fd, struct pp_err *err)
{
	struct stream *s;
	int fl;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "making fd %d non-blocking", fd);
		close(fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a stream");
		close(fd);
		return NULL;
	}
	s->ops = &plain_ops;
	s->fd = fd;
	s->want = EPOLLIN;
	stream_peer_name(fd, s->peer, sizeof(s->peer));
	return s;
}

void stream_free(struct stream *s)
{
	if (s)
		s->ops->free(s);
}
