/*
 * The forwarder's data path (see forwarder.h): listener -> ttrpc_relay -> kata agent socket.
 *
 * Three small parts: the TCP listener (accept, wrap in TLS, hand to the relay's server, at most
 * FORWARDER_MAX_CONNECTIONS at once), the agent dialer (a non-blocking unix connect, retried
 * with a doubling back-off for FORWARDER_AGENT_DIAL_BUDGET_MS each time the relay asks), and
 * the two request edits.
 */
#include "forwarder/forwarder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "proto/agent.pb-c.h"

#define AGENT_SERVICE "grpc.AgentService"
#define NS_NETWORK "network"
#define MOUNT_TYPE_BIND "bind"
#define FORWARDER_LISTEN_BACKLOG 64

struct forwarder {
	struct loop *loop;
	struct ttrpc_relay *relay;
	SSL_CTX *tls;
	int listen_fd;
	char listen_addr[FORWARDER_ADDR_MAX];
	char *agent_socket;
	char *pod_namespace;
	/* agent dialer */
	struct loop_timer *dial_timer;
	uint64_t dial_deadline_ms;
	unsigned dial_delay_ms;
	unsigned dial_attempts;
	struct pp_err dial_err;
};

/* ---- agent dialer ---- */

static void agent_dial_attempt(void *arg);

/* One non-blocking connect; a unix connect either completes at once or fails. */
static int agent_connect(const char *path, struct pp_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!pp_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "kata agent socket path too long: %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "socket for the kata agent");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pp_err_errno(err, PP_UNAVAILABLE, errno, "connecting to the kata agent at %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

static void agent_dial_attempt(void *arg)
{
	struct forwarder *f = arg;
	struct stream *st;
	int fd;

	f->dial_timer = NULL;
	f->dial_attempts++;
	fd = agent_connect(f->agent_socket, &f->dial_err);
	if (fd >= 0) {
		st = stream_plain_new(fd, &f->dial_err);
		if (st) {
			log_info("kata agent connected", "socket=%s attempts=%u", f->agent_socket,
				 f->dial_attempts);
			ttrpc_relay_dial_done(f->relay, st, NULL);
			return;
		}
	}
	if (pp_now_ms() + f->dial_delay_ms >= f->dial_deadline_ms) {
		ttrpc_relay_dial_done(f->relay, NULL, &f->dial_err);
		return;
	}
	if (f->dial_attempts == 1) {
		char q[PP_ERR_MSG_MAX];

		log_info("waiting for the kata agent", "socket=%s error=%s", f->agent_socket,
			 log_quote(q, sizeof(q), f->dial_err.msg));
	}
	f->dial_timer = loop_timer_add(f->loop, f->dial_delay_ms, agent_dial_attempt, f);
	f->dial_delay_ms *= 2;
	if (f->dial_delay_ms > FORWARDER_AGENT_RETRY_MAX_MS)
		f->dial_delay_ms = FORWARDER_AGENT_RETRY_MAX_MS;
}

/* The relay's dialer: answers later, from a timer, never from inside the relay's call. */
static void agent_dial(void *arg, struct ttrpc_relay *r)
{
	struct forwarder *f = arg;

	(void)r;
	f->dial_deadline_ms = pp_now_ms() + FORWARDER_AGENT_DIAL_BUDGET_MS;
	f->dial_delay_ms = FORWARDER_AGENT_RETRY_MIN_MS;
	f->dial_attempts = 0;
	pp_err_clear(&f->dial_err);
	f->dial_timer = loop_timer_add(f->loop, 0, agent_dial_attempt, f);
}

static void agent_dial_cancel(void *arg, struct ttrpc_relay *r)
{
	struct forwarder *f = arg;

	(void)r;
	loop_timer_cancel(f->loop, f->dial_timer);
	f->dial_timer = NULL;
}

/* ---- edits ---- */

static bool path_has_dotdot(const char *p)
{
	const char *s = p;

	while ((s = strstr(s, ".."))) {
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
		s += 2;
	}
	return false;
}

/* mkdir -p the source of each "bind" mount that has an absolute path and does not exist. */
static int forwarder_create_bind_sources(const Grpc__Spec *spec, struct pp_err *err)
{
	struct stat st;
	size_t i;

	if (spec->n_mounts > FORWARDER_MAX_MOUNTS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "CreateContainer: %zu mounts (at most %d)",
				  spec->n_mounts, FORWARDER_MAX_MOUNTS);
	for (i = 0; i < spec->n_mounts; i++) {
		const Grpc__Mount *m = spec->mounts[i];
		char q[256];

		if (!m->type || strcmp(m->type, MOUNT_TYPE_BIND) || !m->source || m->source[0] != '/')
			continue;
		if (path_has_dotdot(m->source))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "CreateContainer: bind mount source %s has a '..' component",
					  str_quote(q, sizeof(q), m->source));
		if (strlen(m->source) >= PATH_MAX)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "CreateContainer: bind mount source longer than %d bytes", PATH_MAX);
		if (lstat(m->source, &st) == 0)
			continue;
		if (mkdir_p(m->source, 0755, err) < 0)
			return pp_err_prefix(err, "CreateContainer: creating bind mount source");
		log_info("bind mount source created", "path=%s", str_quote(q, sizeof(q), m->source));
	}
	return 0;
}

/* Gives the container the pod's network namespace: network entries are replaced by one.
 * Builds new arrays (ns_out, linux_out) that the caller frees after packing and undoes before
 * protobuf-c frees the request. */
struct ns_edit {
	Grpc__Linux *orig_linux;
	Grpc__LinuxNamespace **orig_ns;
	size_t orig_n;
	Grpc__Linux linux_new;
	Grpc__LinuxNamespace **ns;
	Grpc__LinuxNamespace netns;
};

static int ns_edit_apply(Grpc__Spec *spec, const char *pod_ns, struct ns_edit *ed,
			 struct pp_err *err)
{
	Grpc__Linux *lx;
	size_t i, n = 0;

	ed->orig_linux = spec->linux_spec;
	if (!spec->linux_spec) {
		grpc__linux__init(&ed->linux_new);
		spec->linux_spec = &ed->linux_new;
	}
	lx = spec->linux_spec;
	ed->orig_ns = lx->namespaces;
	ed->orig_n = lx->n_namespaces;
	ed->ns = calloc(ed->orig_n + 1, sizeof(*ed->ns));
	if (!ed->ns)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory editing CreateContainer");
	for (i = 0; i < ed->orig_n; i++)
		if (!ed->orig_ns[i]->type || strcmp(ed->orig_ns[i]->type, NS_NETWORK))
			ed->ns[n++] = ed->orig_ns[i];
	grpc__linux_namespace__init(&ed->netns);
	ed->netns.type = (char *)NS_NETWORK;
	ed->netns.path = (char *)pod_ns;
	ed->ns[n++] = &ed->netns;
	lx->namespaces = ed->ns;
	lx->n_namespaces = n;
	return 0;
}

static void ns_edit_undo(Grpc__Spec *spec, struct ns_edit *ed)
{
	if (spec->linux_spec) {
		spec->linux_spec->namespaces = ed->orig_ns;
		spec->linux_spec->n_namespaces = ed->orig_n;
	}
	spec->linux_spec = ed->orig_linux;
	free(ed->ns);
}

static int pack_message(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len,
			struct pp_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *out = malloc(len ? len : 1);

	if (!out)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory re-encoding a request");
	protobuf_c_message_pack(m, out);
	*ret = out;
	*ret_len = len;
	return 0;
}

int forwarder_edit_create_container(const char *pod_namespace, const uint8_t *in, size_t len,
				    uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	Grpc__CreateContainerRequest *req;
	struct ns_edit ed = { 0 };
	int rc = -1;

	req = grpc__create_container_request__unpack(NULL, len, in);
	if (!req)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "CreateContainer: request is not a valid CreateContainerRequest (%zu bytes)", len);
	if (!req->oci) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "CreateContainer: request has no OCI spec");
		goto out;
	}
	if (forwarder_create_bind_sources(req->oci, err) < 0)
		goto out;
	if (ns_edit_apply(req->oci, pod_namespace, &ed, err) == 0)
		rc = pack_message(&req->base, ret, ret_len, err);
	ns_edit_undo(req->oci, &ed);
out:
	grpc__create_container_request__free_unpacked(req, NULL);
	return rc;
}

int forwarder_edit_create_sandbox(const uint8_t *in, size_t len, uint8_t **ret,
				  size_t *ret_len, struct pp_err *err)
{
	Grpc__CreateSandboxRequest *req;
	size_t n_dns;
	int rc;

	req = grpc__create_sandbox_request__unpack(NULL, len, in);
	if (!req)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "CreateSandbox: request is not a valid CreateSandboxRequest (%zu bytes)", len);
	n_dns = req->n_dns;
	req->n_dns = 0;   /* the VM keeps its own resolv.conf */
	rc = pack_message(&req->base, ret, ret_len, err);
	req->n_dns = n_dns;
	grpc__create_sandbox_request__free_unpacked(req, NULL);
	return rc;
}

static int forwarder_rewrite(void *arg, const char *service, const char *method,
			     const uint8_t *payload, size_t len, uint8_t **ret, size_t *ret_len,
			     struct pp_err *err)
{
	struct forwarder *f = arg;

	(void)service;
	if (!strcmp(method, "CreateContainer"))
		return forwarder_edit_create_container(f->pod_namespace, payload, len, ret, ret_len, err);
	return forwarder_edit_create_sandbox(payload, len, ret, ret_len, err);
}

/* ---- listener ---- */

int forwarder_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
			   struct pp_err *err)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	const char *colon = strrchr(s, ':');
	char host[FORWARDER_ADDR_MAX], q[128];
	struct addrinfo *ai = NULL;
	uint32_t port;
	size_t hlen;
	int rc;

	if (!colon || parse_uint32(colon + 1, &port) < 0 || port > 65535)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "listen address %s is not host:port", str_quote(q, sizeof(q), s));
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "listen host too long");
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &ai);
	if (rc || !ai || ai->ai_addrlen > sizeof(*ret)) {
		if (ai)
			freeaddrinfo(ai);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "listen address %s: %s",
				  str_quote(q, sizeof(q), host), rc ? gai_strerror(rc) : "unusable");
	}
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void forwarder_addr_format(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
	}
}

static int forwarder_listen(struct forwarder *f, const char *addr, struct pp_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (forwarder_parse_listen(addr, &ss, &len, err) < 0)
		return -1;
	f->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->listen_fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "socket for %s", addr);
	setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(f->listen_fd, (struct sockaddr *)&ss, len) < 0)
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "binding %s", addr);
	if (listen(f->listen_fd, FORWARDER_LISTEN_BACKLOG) < 0)
		return pp_err_errno(err, PP_UNAVAILABLE, errno, "listening on %s", addr);
	len = sizeof(ss);
	if (getsockname(f->listen_fd, (struct sockaddr *)&ss, &len) < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "getsockname %s", addr);
	forwarder_addr_format(&ss, f->listen_addr, sizeof(f->listen_addr));
	return 0;
}

static void forwarder_adopt(struct forwarder *f, int fd)
{
	struct ttrpc_server *srv = ttrpc_relay_server(f->relay);
	struct pp_err err = { 0 };
	char q[PP_ERR_MSG_MAX];
	struct stream *st;

	if (ttrpc_server_connections(srv) >= FORWARDER_MAX_CONNECTIONS) {
		log_warn("connection refused: too many connections", "max=%d",
			 FORWARDER_MAX_CONNECTIONS);
		close(fd);
		return;
	}
	st = f->tls ? tls_stream_new(f->tls, fd, true, NULL, &err) : stream_plain_new(fd, &err);
	if (!st || ttrpc_server_adopt(srv, st, &err) < 0)
		log_warn("connection dropped", "error=%s", log_quote(q, sizeof(q), err.msg));
	else
		log_debug("connection accepted", "peer=%s", st->peer);
}

static void forwarder_on_accept(void *arg, uint32_t events)
{
	struct forwarder *f = arg;
	int fd;

	(void)events;
	for (;;) {
		fd = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept failed", "errno=%d", errno);
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		stream_tcp_nodelay(fd);
		forwarder_adopt(f, fd);
	}
}

/* ---- lifecycle ---- */

static int forwarder_relay_setup(struct forwarder *f, struct pp_err *err)
{
	struct ttrpc_relay_config rc = {
		.name = "forwarder",
		.peer = f->agent_socket,
		.dial = agent_dial,
		.dial_cancel = agent_dial_cancel,
		.dial_arg = f,
		.eager = true,
		.max_wait_ms = FORWARDER_AGENT_DIAL_BUDGET_MS,
	};

	f->relay = ttrpc_relay_new(f->loop, &rc, err);
	if (!f->relay)
		return -1;
	if (ttrpc_relay_add_rewrite(f->relay, AGENT_SERVICE, "CreateContainer", forwarder_rewrite,
				    f, err) < 0 ||
	    ttrpc_relay_add_rewrite(f->relay, AGENT_SERVICE, "CreateSandbox", forwarder_rewrite,
				    f, err) < 0)
		return -1;
	return 0;
}

struct forwarder *forwarder_start(struct loop *l, const struct forwarder_config *cfg,
				  struct pp_err *err)
{
	struct forwarder *f = pp_xcalloc(1, sizeof(*f));

	f->loop = l;
	f->listen_fd = -1;
	f->agent_socket = pp_xstrdup(cfg->agent_socket ? cfg->agent_socket
					      : FORWARDER_DEFAULT_AGENT_SOCKET);
	f->pod_namespace = pp_xstrdup(cfg->pod_namespace ? cfg->pod_namespace
						: FORWARDER_DEFAULT_POD_NAMESPACE);
	if (cfg->tls && SSL_CTX_up_ref(cfg->tls))
		f->tls = cfg->tls;
	if (forwarder_relay_setup(f, err) < 0 ||
	    forwarder_listen(f, cfg->listen ? cfg->listen : FORWARDER_DEFAULT_LISTEN, err) < 0 ||
	    loop_fd_add(l, f->listen_fd, EPOLLIN, forwarder_on_accept, f, err) < 0) {
		forwarder_stop(f);
		return NULL;
	}
	log_info("forwarder listening", "addr=%s tls=%s agent=%s pod_namespace=%s", f->listen_addr,
		 f->tls ? "mutual" : "off", f->agent_socket, f->pod_namespace);
	ttrpc_relay_start(f->relay);
	return f;
}

const char *forwarder_listen_addr(const struct forwarder *f)
{
	return f->listen_addr;
}

void forwarder_get_stats(const struct forwarder *f, struct ttrpc_relay_stats *ret)
{
	ttrpc_relay_get_stats(f->relay, ret);
}

void forwarder_stop(struct forwarder *f)
{
	if (!f)
		return;
	if (f->listen_fd >= 0) {
		loop_fd_del(f->loop, f->listen_fd);
		close(f->listen_fd);
	}
	ttrpc_relay_free(f->relay);
	agent_dial_cancel(f, NULL);
	SSL_CTX_free(f->tls);
	free(f->agent_socket);
	free(f->pod_namespace);
	free(f);
}
