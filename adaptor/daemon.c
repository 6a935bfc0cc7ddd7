/*
 * The daemon's life: set-up in a fixed order (config → state dir → TLS → store → provider →
 * loop and workers → services → reconcile → listen → READY=1), one loop run, and a graceful
 * shutdown on SIGINT/SIGTERM (a second signal exits at once). Running VMs and their rows are
 * left alone at shutdown: the next start restores their agent sockets.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "adaptor/daemon.h"
#include "adaptor/initdata.h"
#include "adaptor/k8s_mode.h"
#include "adaptor/lifecycle.h"
#include "adaptor/metrics.h"
#include "adaptor/sandbox_net.h"
#include "adaptor/store.h"
#include "adaptor/tls_setup.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/sdnotify.h"
#include "lib/util.h"

#define SANDBOX_ID_LEN_TYPICAL 64        /* containerd sandbox ids are 64 hex characters */
#define SHUTDOWN_POLL_MS 50
#ifndef PP_VERSION
#define PP_VERSION "dev"
#endif

void daemon_job_begin(struct daemon *d)
{
	atomic_fetch_add(&d->jobs_in_flight, 1);
}

void daemon_job_end(struct daemon *d)
{
	atomic_fetch_sub(&d->jobs_in_flight, 1);
}

void daemon_crash_point(const char *point)
{
	const char *at = getenv("PP_TEST_CRASH_AT");

	if (at && strcmp(at, point) == 0) {
		log_warn("test hook: crashing on purpose", "point=%s", point);
		raise(SIGKILL);
	}
}

static int copy_opt(char *dst, size_t size, const struct config *cfg, const char *name,
		    struct pp_err *err)
{
	const char *v = config_str(cfg, name);
	int n = snprintf(dst, size, "%s", v);

	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is too long (%zu bytes, at most %zu)",
				  name, strlen(v), size - 1);
	return 0;
}

static int daemon_owner(struct daemon *d, struct pp_err *err)
{
	const char *owner = config_str(d->cfg, "OWNER_ID");
	char host[128] = "";

	if (!*owner)
		owner = config_str(d->cfg, "NODE_NAME");
	if (!*owner) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			return pp_err_set(err, PP_FAILED_PRECONDITION,
					  "cannot tell which node this is: set OWNER_ID or NODE_NAME");
		owner = host;
	}
	if (strlen(owner) >= sizeof(d->owner))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "OWNER_ID is too long: at most %zu characters",
				  sizeof(d->owner) - 1);
	snprintf(d->owner, sizeof(d->owner), "%s", owner);
	return 0;
}

static int daemon_check_paths(struct daemon *d, struct pp_err *err)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	size_t need = strlen(d->pods_dir) + 1 + SANDBOX_ID_LEN_TYPICAL + strlen("/agent.ttrpc");

	if (need > max)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "PODS_DIR %s is too long: <pods-dir>/<64-character sandbox id>/agent.ttrpc needs %zu bytes, a unix socket path holds %zu; use a directory of at most %zu characters",
				  d->pods_dir, need, max, max - (need - strlen(d->pods_dir)));
	if (strlen(d->socket_path) > max)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "REMOTE_HYPERVISOR_ENDPOINT %s is longer than the %zu bytes of a unix socket path",
				  d->socket_path, max);
	return 0;
}

/* INITDATA often comes from a ConfigMap with a trailing newline: keep only the base64 text. */
static int daemon_trim_initdata(struct daemon *d, struct pp_err *err)
{
	char *v = pp_xstrdup(config_str(d->cfg, "INITDATA"));
	int rc = 0;

	if (strcmp(str_trim(v), config_str(d->cfg, "INITDATA")) != 0)
		rc = config_set(d->cfg, "INITDATA", v, err);
	free(v);
	return rc;
}

static int daemon_check_options(struct daemon *d, struct pp_err *err)
{
	const char *initdata;
	const char *tunnel = config_str(d->cfg, "TUNNEL_TYPE");
	uint32_t port;

	if (daemon_trim_initdata(d, err) < 0)
		return -1;
	initdata = config_str(d->cfg, "INITDATA");
	if (*initdata && initdata_check_encoded(initdata, err) < 0)
		return pp_err_prefix(err, "INITDATA");
	if (strcmp(tunnel, "vxlan") != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TUNNEL_TYPE %s is not supported (only vxlan)", tunnel);
	if (parse_uint32(d->forwarder_port, &port) < 0 || port == 0 || port > 65535)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "FORWARDER_PORT %s is not a TCP port", d->forwarder_port);
	if (config_int(d->cfg, "WORKERS") < 1 || config_int(d->cfg, "WORKERS") > 1024)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "WORKERS must be between 1 and 1024");
	return 0;
}

static int parent_dir_make(const char *path, struct pp_err *err)
{
	char dir[512];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return mkdir_p(dir, 0755, err);
}

/* SIGINT/SIGTERM are read from a signalfd in the loop: they must be blocked in every thread,
 * so before the first thread (workers, provider threads) is created. */
static void daemon_block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int daemon_init(struct daemon *d, struct config *cfg, const struct provider_ops *ops,
		struct pp_err *err)
{
	daemon_block_signals();
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->provider_name = ops->name;
	metrics_init(PP_VERSION, ops->name);
	pthread_mutex_init(&d->lock, NULL);
	sandbox_table_init(&d->sandboxes);
	d->shutdown = cancel_new(0);
	if (copy_opt(d->state_dir, sizeof(d->state_dir), cfg, "STATE_DIR", err) < 0 ||
	    copy_opt(d->pods_dir, sizeof(d->pods_dir), cfg, "PODS_DIR", err) < 0 ||
	    copy_opt(d->socket_path, sizeof(d->socket_path), cfg, "REMOTE_HYPERVISOR_ENDPOINT", err) < 0 ||
	    copy_opt(d->forwarder_port, sizeof(d->forwarder_port), cfg, "FORWARDER_PORT", err) < 0)
		return -1;
	d->proxy_timeout_ms = config_duration_ms(cfg, "PROXY_TIMEOUT");
	sandbox_net_init(d);
	if (daemon_owner(d, err) < 0 || daemon_check_paths(d, err) < 0 || daemon_check_options(d, err) < 0)
		return -1;
	if (mkdir_p(d->state_dir, 0700, err) < 0 || mkdir_p(d->pods_dir, 0755, err) < 0)
		return -1;
	if (!config_bool(cfg, "DISABLE_TLS")) {
		d->tls = tls_setup_new(cfg, d->state_dir, err);
		if (!d->tls)
			return pp_err_prefix(err, "setting up TLS");
	}
	d->store = store_open(d->state_dir, err);
	if (!d->store)
		return -1;
	d->provider = provider_new(ops, cfg, d->owner, d->state_dir, err);
	if (!d->provider || provider_start(d->provider, err) < 0)
		return pp_err_prefix(err, "starting the %s provider", ops->name);
	if (config_bool(cfg, "CLOUD_CONFIG_VERIFY") && ops->check && ops->check(d->provider, err) < 0)
		return pp_err_prefix(err, "CLOUD_CONFIG_VERIFY: the %s provider's configuration", ops->name);
	d->loop = loop_new(err);
	if (!d->loop)
		return -1;
	d->pool = workpool_new((unsigned)config_int(cfg, "WORKERS"), err);
	if (!d->pool)
		return -1;
	d->server = ttrpc_server_new(d->loop, err);
	if (!d->server)
		return -1;
	if (hypervisor_service_register(d, err) < 0 || podvminfo_service_register(d, err) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ shutdown */

struct shutdown_state {
	struct daemon *d;
	uint64_t deadline_ms;
	int signal_fd;
	int signals;
};

static void shutdown_wait_jobs(void *arg)
{
	struct shutdown_state *s = arg;

	if (atomic_load(&s->d->jobs_in_flight) == 0 || pp_now_ms() >= s->deadline_ms) {
		if (atomic_load(&s->d->jobs_in_flight))
			log_warn("shutdown grace ended with work in flight", "jobs=%u",
				 atomic_load(&s->d->jobs_in_flight));
		loop_stop(s->d->loop);
		return;
	}
	loop_timer_add(s->d->loop, SHUTDOWN_POLL_MS, shutdown_wait_jobs, s);
}

static void shutdown_after_server(void *arg)
{
	struct shutdown_state *s = arg;

	lifecycle_stop_all_proxies(s->d);
	shutdown_wait_jobs(s);
}

static void on_signal(void *arg, uint32_t events)
{
	struct shutdown_state *s = arg;
	struct daemon *d = s->d;
	struct signalfd_siginfo si;
	uint64_t grace = config_duration_ms(d->cfg, "SHUTDOWN_GRACE");

	(void)events;
	if (read(s->signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (++s->signals > 1) {
		log_warn("second signal: exiting now", "signal=%u", si.ssi_signo);
		_exit(1);
	}
	log_info("shutting down", "signal=%u grace_ms=%llu", si.ssi_signo, (unsigned long long)grace);
	sd_notify_send("STOPPING=1");
	pthread_mutex_lock(&d->lock);
	d->shutting_down = true;
	pthread_mutex_unlock(&d->lock);
	cancel_fire(d->shutdown, CANCEL_SHUTDOWN);
	podvminfo_fini(d);
	if (d->reaper_timer) {
		loop_timer_cancel(d->loop, d->reaper_timer);
		d->reaper_timer = NULL;
	}
	s->deadline_ms = pp_now_ms() + grace;
	ttrpc_server_shutdown(d->server, grace, shutdown_after_server, s);
}

static void final_stop(void *arg)
{
	loop_stop(arg);
}

int daemon_run(struct daemon *d, struct pp_err *err)
{
	struct shutdown_state s = { .d = d, .signal_fd = -1 };
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	s.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.signal_fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "signalfd");
	if (loop_fd_add(d->loop, s.signal_fd, EPOLLIN, on_signal, &s, err) < 0)
		goto fail;
	if (reconcile_on_start(d, err) < 0)
		goto fail;
	/* Kubernetes mode: the node's extended resource before we serve (a failure fails the
	 * start, as upstream), and the probe/metrics endpoint. */
	if (k8s_mode_start(d, err) < 0)
		goto fail;
	/* A rolling update starts the new daemon while the old one still serves: take the socket
	 * over (as upstream); the old one leaves it in place when it exits. */
	ttrpc_server_set_takeover(d->server, true);
	if (parent_dir_make(d->socket_path, err) < 0 ||
	    ttrpc_server_listen_unix(d->server, d->socket_path, err) < 0)
		goto fail;
	reaper_schedule(d, 0);
	log_info("ready", "provider=%s socket=%s pods_dir=%s state_dir=%s owner=%s tls=%s",
		 d->provider_name, d->socket_path, d->pods_dir, d->state_dir, d->owner,
		 d->tls ? d->tls->mode : "disabled");
	sd_notify_send("READY=1");
	loop_run(d->loop);
	d->loop_done = true;
	/* Let the workers finish (they watch d->shutdown), then run what they posted back. */
	workpool_free(d->pool);
	d->pool = NULL;
	loop_post(d->loop, final_stop, d->loop);
	loop_run(d->loop);
	loop_post(d->loop, final_stop, d->loop);
	loop_run(d->loop);
	loop_fd_del(d->loop, s.signal_fd);
	close(s.signal_fd);
	k8s_mode_stop(d);
	log_info("stopped", "sandboxes=%zu", d->sandboxes.count);
	return 0;
fail:
	if (s.signal_fd >= 0) {
		loop_fd_del(d->loop, s.signal_fd);
		close(s.signal_fd);
	}
	return -1;
}

void daemon_fini(struct daemon *d)
{
	workpool_free(d->pool);
	d->pool = NULL;
	if (d->server)
		ttrpc_server_free(d->server);
	d->server = NULL;
	/* Proxies are loop objects: stop them before the loop goes. */
	if (d->loop)
		lifecycle_stop_all_proxies(d);
	loop_free(d->loop);
	d->loop = NULL;
	k8s_mode_free(d);
	provider_free(d->provider);
	store_close(d->store);
	tls_setup_free(d->tls);
	sandbox_table_fini(&d->sandboxes);
	cancel_unref(d->shutdown);
	pthread_mutex_destroy(&d->lock);
}
