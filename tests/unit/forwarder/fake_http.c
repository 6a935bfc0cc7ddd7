/* Loopback fake metadata server (see fake_http.h): one thread, one connection at a time. */
#include "fake_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_REQ_MAX 8192

struct fake_http {
	int lfd;
	int stop_pipe[2];
	int port;
	pthread_t thread;
	pthread_mutex_t lock;          /* guards hits in routes and refused */
	struct fake_route *routes;
	size_t n_routes;
	unsigned refused;
};

/* Reads until the blank line that ends the headers. */
static ssize_t fake_read_request(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return (ssize_t)len;
	}
	return -1;
}

/* True when the header block contains "Name: value" (name case-insensitive, value exact). */
static bool fake_has_header(const char *req, const char *want)
{
	const char *colon = strchr(want, ':');
	size_t nlen = (size_t)(colon - want);
	const char *value = colon + 2;
	const char *line = strstr(req, "\r\n");

	while (line && line[2] != '\r') {
		const char *l = line + 2, *end = strstr(l, "\r\n");
		if (strncasecmp(l, want, nlen) == 0 && l[nlen] == ':') {
			const char *v = l + nlen + 1;
			while (*v == ' ')
				v++;
			if ((size_t)(end - v) == strlen(value) && strncmp(v, value, strlen(value)) == 0)
				return true;
		}
		line = end;
	}
	return false;
}

static void fake_respond(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
			 strlen(body));

	/* MSG_NOSIGNAL: a client that hung up early must not kill the test with SIGPIPE. */
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(fd, body, strlen(body), MSG_NOSIGNAL) < 0)
		return;
}

static void fake_serve(struct fake_http *s, int fd)
{
	char req[FAKE_REQ_MAX], method[16], target[1024];
	int status = 404;
	const char *body = "not found";
	size_t i;

	if (fake_read_request(fd, req, sizeof(req)) < 0 ||
	    sscanf(req, "%15s %1023s", method, target) != 2)
		return;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->n_routes; i++) {
		struct fake_route *r = &s->routes[i];
		if (strcmp(r->method, method) != 0 || strcmp(r->target, target) != 0)
			continue;
		if (r->need_header && !fake_has_header(req, r->need_header)) {
			status = 401;
			body = "missing or wrong header";
			break;
		}
		r->hits++;
		if (r->hits <= r->fail_first) {
			status = 503;
			body = "try again";
		} else {
			status = r->status;
			body = r->body;
		}
		break;
	}
	if (status == 404 || status == 401)
		s->refused++;
	pthread_mutex_unlock(&s->lock);
	fake_respond(fd, status, body);
}

static void *fake_thread(void *arg)
{
	struct fake_http *s = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN },
				       { .fd = s->stop_pipe[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			return NULL;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		fake_serve(s, fd);
		close(fd);
	}
}

struct fake_http *fake_http_start(struct fake_route *routes, size_t n_routes)
{
	struct fake_http *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	if (!s)
		abort();
	s->routes = routes;
	s->n_routes = n_routes;
	pthread_mutex_init(&s->lock, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 16) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0 || pipe2(s->stop_pipe, O_CLOEXEC) < 0)
		abort();
	s->port = ntohs(a.sin_port);
	if (pthread_create(&s->thread, NULL, fake_thread, s) != 0)
		abort();
	return s;
}

int fake_http_port(const struct fake_http *s)
{
	return s->port;
}

unsigned fake_http_refused(struct fake_http *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->refused;
	pthread_mutex_unlock(&s->lock);
	return n;
}

const char *fake_http_url(const struct fake_http *s, const char *path, char *out, size_t size)
{
	snprintf(out, size, "http://127.0.0.1:%d%s", s->port, path);
	return out;
}

void fake_http_stop(struct fake_http *s)
{
	if (!s)
		return;
	if (write(s->stop_pipe[1], "x", 1) < 0)
		abort();
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
