/*
 * mock-agent: a kata agent stand-in for tests and the local provider's demo. It serves
 * grpc.AgentService and grpc.Health over ttRPC on a unix socket, in one event loop, and can
 * record every call it receives as JSON lines so tests assert on what the agent really saw
 * after the adaptor, the proxy and the forwarder had their say.
 *
 *   mock-agent --socket PATH [--record FILE] [--stdout-bytes N] [--log-level LEVEL]
 *
 * SIGTERM or SIGINT stops it: held calls are answered UNAVAILABLE, the socket is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/tools/mock_agent/mock_agent.h"

struct mock_opts {
	const char *socket;
	const char *record;
	const char *log_level;
	bool stdout_limited;
	uint64_t stdout_bytes;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mock-agent --socket PATH [--record FILE] [--stdout-bytes N] [--log-level LEVEL]\n"
		"  --socket PATH       unix socket to serve grpc.AgentService and grpc.Health on\n"
		"  --record FILE       append one JSON line per call received\n"
		"  --stdout-bytes N    ReadStdout gives N bytes per process, then EOF (OUT_OF_RANGE)\n"
		"  --log-level LEVEL   error, warn, info (default) or debug\n");
}

static int opts_parse(int argc, char **argv, struct mock_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "record", required_argument, NULL, 'r' },
		{ "stdout-bytes", required_argument, NULL, 'b' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->log_level = "info";
	while ((c = getopt_long_only(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'r': o->record = optarg; break;
		case 'l': o->log_level = optarg; break;
		case 'b':
			if (parse_uint64(optarg, &o->stdout_bytes) < 0) {
				fprintf(stderr, "mock-agent: --stdout-bytes %s is not a byte count\n", optarg);
				return 2;
			}
			o->stdout_limited = true;
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o->socket) {
		fprintf(stderr, "mock-agent: %s\n", optind != argc ? "unexpected argument" : "--socket is required");
		usage(stderr);
		return 2;
	}
	return 0;
}

struct mock_signals {
	int fd;
	struct loop *loop;
};

static void on_signal(void *arg, uint32_t events)
{
	struct mock_signals *s = arg;
	struct signalfd_siginfo si;

	(void)events;
	if (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		log_info("stopping on signal", "signal=%u", si.ssi_signo);
	loop_stop(s->loop);
}

static int signals_setup(struct mock_signals *s, struct loop *l, struct pp_err *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->loop = l;
	s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "signalfd");
	return loop_fd_add(l, s->fd, EPOLLIN, on_signal, s, err);
}

static int agent_serve(struct mock_agent *m, const struct mock_opts *o, struct pp_err *err)
{
	struct mock_signals sig = { .fd = -1 };
	int rc = -1;

	m->loop = loop_new(err);
	if (!m->loop)
		return -1;
	m->srv = ttrpc_server_new(m->loop, err);
	if (!m->srv)
		goto out;
	if (mock_agent_register(m) < 0) {
		pp_err_set(err, PP_INTERNAL, "registering handlers failed");
		goto out;
	}
	if (signals_setup(&sig, m->loop, err) < 0 || ttrpc_server_listen_unix(m->srv, o->socket, err) < 0)
		goto out;
	log_info("mock agent listening", "socket=%s", o->socket);
	loop_run(m->loop);
	rc = 0;
out:
	mock_agent_release(m);
	ttrpc_server_free(m->srv);
	if (sig.fd >= 0) {
		loop_fd_del(m->loop, sig.fd);
		close(sig.fd);
	}
	loop_free(m->loop);
	unlink(o->socket);
	return rc;
}

int main(int argc, char **argv)
{
	struct mock_agent m = { .record_fd = -1 };
	struct pp_err err = { 0 };
	struct mock_opts o;
	enum log_level lvl;
	int rc = opts_parse(argc, argv, &o);

	pp_malloc_tune();
	if (rc)
		return rc == 1 ? 0 : 2;
	log_init("mock-agent", STDERR_FILENO);
	if (log_level_parse(o.log_level, &lvl) < 0) {
		fprintf(stderr, "mock-agent: --log-level %s is not error, warn, info or debug\n", o.log_level);
		return 2;
	}
	log_set_level(lvl);
	m.stdout_limited = o.stdout_limited;
	m.stdout_bytes = o.stdout_bytes;
	if (o.record) {
		m.record_fd = open(o.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (m.record_fd < 0) {
			fprintf(stderr, "mock-agent: opening --record %s: %s\n", o.record, strerror(errno));
			return 1;
		}
	}
	rc = agent_serve(&m, &o, &err);
	if (m.record_fd >= 0)
		close(m.record_fd);
	if (rc < 0) {
		char q[PP_ERR_MSG_MAX + 16];

		log_error("mock agent failed", "code=%s err=%s", pp_code_name(err.code),
			  log_quote(q, sizeof(q), err.msg));
		return 1;
	}
	return 0;
}
