/*
 * The namespace test bed (see nettest.h). Commands run through posix_spawnp with argument
 * vectors; a child process per namespace call, so a crash or a stuck setns stays there.
 */
#include "nettest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define NT_LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define NT_LEAK_CHECK() 0
#endif

extern char **environ;

#define NT_ARGS_MAX 48

int nt_run(char *out, size_t size, const char *const *argv)
{
	posix_spawn_file_actions_t fa;
	int p[2], status;
	size_t len = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(p[0]);
		close(p[1]);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	for (;;) {
		char tmp[4096];
		ssize_t n = read(p[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && len + 1 < size) {
			size_t k = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;

			memcpy(out + len, tmp, k);
			len += k;
		}
	}
	if (out && size)
		out[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int nt_sh(char *out, size_t size, const char *fmt, ...)
{
	char line[1024], *save = NULL, *tok;
	const char *argv[NT_ARGS_MAX];
	size_t n = 0;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		return -1;
	for (tok = strtok_r(line, " ", &save); tok && n < NT_ARGS_MAX - 1;
	     tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
	return n ? nt_run(out, size, argv) : -1;
}

bool nt_supported(char *why, size_t size)
{
	char name[NT_NAME_MAX], out[1024];
	bool ok;

	if (geteuid() != 0) {
		snprintf(why, size, "not root");
		return false;
	}
	snprintf(name, sizeof(name), "ppn-probe-%d", (int)getpid());
	if (nt_sh(out, sizeof(out), "ip netns add %s", name) != 0) {
		snprintf(why, size, "ip netns add failed: %s", out);
		return false;
	}
	ok = nt_sh(out, sizeof(out), "ip -n %s link add vxp type vxlan id 1 remote 10.0.0.2 "
		   "dstport 4789", name) == 0;
	if (!ok)
		snprintf(why, size, "no VXLAN in the kernel: %s", out);
	else if (nt_sh(out, sizeof(out), "ip netns exec %s iptables -w 5 -t raw -S", name) != 0) {
		snprintf(why, size, "iptables does not work in a netns: %s", out);
		ok = false;
	}
	nt_sh(NULL, 0, "ip netns del %s", name);
	return ok;
}

static int nt_build(const struct nt_topo *t)
{
	static const char *const steps[] = {
		"ip netns add %1$s", "ip netns add %2$s", "ip netns add %3$s",
		"ip -n %1$s link set lo up", "ip -n %2$s link set lo up", "ip -n %3$s link set lo up",
		/* underlay */
		"ip -n %1$s link add uw0 type veth peer name uv0 netns %3$s",
		"ip -n %1$s addr add " NT_WORKER_IP "/24 dev uw0", "ip -n %1$s link set uw0 up",
		"ip -n %3$s addr add " NT_VM_IP "/24 dev uv0", "ip -n %3$s link set uv0 up",
		"ip -n %1$s route add default via " NT_VM_IP " dev uw0",
		"ip -n %3$s route add default via " NT_WORKER_IP " dev uv0",
		/* the "CNI": a bridge and a veth into the pod */
		"ip -n %1$s link add cni0 type bridge", "ip -n %1$s addr add " NT_POD_GW "/24 dev cni0",
		"ip -n %1$s link set cni0 up",
		"ip -n %1$s link add veth0 type veth peer name eth0 netns %2$s",
		"ip -n %1$s link set veth0 master cni0", "ip -n %1$s link set veth0 up",
		"ip -n %2$s link set eth0 address " NT_POD_MAC, "ip -n %2$s link set eth0 mtu 1450",
		"ip -n %2$s addr add " NT_POD_IP "/24 dev eth0", "ip -n %2$s link set eth0 up",
		"ip -n %2$s route add default via " NT_POD_GW " dev eth0",
		"ip -n %2$s neigh add 169.254.1.1 lladdr aa:bb:cc:00:00:01 dev eth0 nud permanent",
	};
	char out[1024];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), steps[i], t->w, t->p, t->v);
		if (nt_sh(out, sizeof(out), "%s", cmd) != 0) {
			fprintf(stderr, "topology: `%s` failed: %s\n", cmd, out);
			return -1;
		}
	}
	return 0;
}

int nt_topo_create(struct nt_topo *t, const char *tag)
{
	int pid = (int)getpid();

	memset(t, 0, sizeof(*t));
	snprintf(t->w, sizeof(t->w), "ppnW%s%d", tag, pid);
	snprintf(t->p, sizeof(t->p), "ppnP%s%d", tag, pid);
	snprintf(t->v, sizeof(t->v), "ppnV%s%d", tag, pid);
	snprintf(t->q, sizeof(t->q), "ppnQ%s%d", tag, pid);
	snprintf(t->w_path, sizeof(t->w_path), "/run/netns/%s", t->w);
	snprintf(t->p_path, sizeof(t->p_path), "/run/netns/%s", t->p);
	snprintf(t->v_path, sizeof(t->v_path), "/run/netns/%s", t->v);
	snprintf(t->q_path, sizeof(t->q_path), "/run/netns/%s", t->q);
	if (nt_build(t) < 0) {
		nt_topo_destroy(t);
		return -1;
	}
	return 0;
}

void nt_topo_destroy(struct nt_topo *t)
{
	const char *names[] = { t->p, t->q, t->v, t->w };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i][0])
			nt_sh(NULL, 0, "ip netns del %s", names[i]);
}

int nt_enter(const char *ns)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

int nt_in_ns(const char *ns, int (*fn)(void *arg, struct nt_result *r), void *arg,
	     struct nt_result *r)
{
	struct nt_result *shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int status;

	if (shared == MAP_FAILED)
		return -1;
	memset(shared, 0, sizeof(*shared));
	shared->rc = -100;
	pid = fork();
	if (pid == 0) {
		if (nt_enter(ns) < 0)
			_exit(3);
		shared->rc = fn(arg, shared);
		/* children end with _exit, so LeakSanitizer would never look: ask it here */
		_exit(NT_LEAK_CHECK() ? 7 : 0);
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	memcpy(r, shared, sizeof(*r));
	munmap(shared, sizeof(*shared));
	return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int nt_wait_pid(int pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int nt_listen(const char *addr, int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

static void nt_echo_serve(int lfd)
{
	char buf[65536];
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int c, one = 1;

	if (poll(&p, 1, 20000) <= 0)
		_exit(4);
	c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		_exit(5);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf)), off = 0;

		if (n <= 0)
			break;
		while (off < n) {
			ssize_t w = write(c, buf + off, (size_t)(n - off));

			if (w <= 0)
				_exit(6);
			off += w;
		}
	}
	_exit(0);
}

int nt_echo_server(const char *ns, const char *addr, int *port)
{
	int *shared = mmap(NULL, sizeof(int) * 2, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int p[2], pid;
	char c;

	if (shared == MAP_FAILED || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int lfd;

		close(p[0]);
		if (nt_enter(ns) < 0 || (lfd = nt_listen(addr, &shared[0])) < 0)
			_exit(3);
		if (write(p[1], "r", 1) != 1)
			_exit(3);
		close(p[1]);
		nt_echo_serve(lfd);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		pid = -1;
	close(p[0]);
	*port = shared[0];
	munmap(shared, sizeof(int) * 2);
	return pid;
}

struct nt_client_arg {
	const char *addr;
	int port;
	size_t n;
};

static int nt_client_run(void *arg, struct nt_result *r)
{
	const struct nt_client_arg *a = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)a->port) };
	struct timeval tv = { .tv_sec = 10 };
	char *out = malloc(a->n), *in = malloc(a->n);
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

	for (size_t i = 0; i < a->n; i++)
		out[i] = (char)(i * 7 + 3);
	inet_pton(AF_INET, a->addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, out, a->n) != (ssize_t)a->n) {
		snprintf(r->msg, sizeof(r->msg), "connect/send %s:%d: %s", a->addr, a->port,
			 strerror(errno));
		close(fd);
		free(out);
		free(in);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	while (got < a->n) {
		ssize_t k = read(fd, in + got, a->n - got);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	snprintf(r->msg, sizeof(r->msg), "echoed %zu of %zu bytes", got, a->n);
	rc = got == a->n && memcmp(in, out, a->n) == 0 ? 0 : -1;
	close(fd);
	free(out);
	free(in);
	return rc;
}

int nt_echo_client(const char *ns, const char *addr, int port, size_t n)
{
	struct nt_client_arg a = { addr, port, n };
	struct nt_result r;

	if (nt_in_ns(ns, nt_client_run, &a, &r) < 0 || r.rc != 0) {
		fprintf(stderr, "echo client in %s: %s\n", ns, r.msg);
		return -1;
	}
	return 0;
}
