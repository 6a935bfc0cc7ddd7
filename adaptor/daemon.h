/*
 * The node daemon's process-wide state, shared by the services (hypervisor.Hypervisor,
 * podvminfo.PodVMInfo), the sandbox lifecycle, the restart reconciler and the reaper.
 *
 * Threads: one loop thread owns every socket (the hypervisor socket, every agent proxy);
 * worker threads (d->pool) do the blocking work: cloud calls and SQLite writes. Results come
 * back to the loop with loop_post().
 *
 * Lock order: d->lock is the only daemon lock; it guards the sandbox table and the fields marked
 * [lock]. It is taken before the worker pool's queue lock, never after. It is never held across a cloud call, a SQLite call or any I/O. Fields marked [loop]
 * are touched only in the loop thread; fields marked [const] are set before the loop runs.
 */
#ifndef PP_ADAPTOR_DAEMON_H
#define PP_ADAPTOR_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "adaptor/podnet_worker.h"
#include "adaptor/provider.h"
#include "adaptor/sandbox_table.h"
#include "lib/config.h"
#include "lib/loop.h"
#include "lib/ttrpc.h"
#include "lib/workpool.h"

struct store;
struct tls_setup;
struct getinfo_waiter;
struct k8s_mode;

struct daemon {
	struct config *cfg;              /* [const] */
	const char *provider_name;       /* [const] */
	struct provider *provider;       /* [const]; its calls are thread-safe */
	struct loop *loop;               /* [const] */
	struct workpool *pool;           /* [const] */
	struct store *store;             /* [const]; the store serialises its own access */
	struct tls_setup *tls;           /* [const]; NULL with -disable-tls */
	struct k8s_mode *k8s;            /* [const] after start (k8s_mode.c); thread-safe calls */
	struct ttrpc_server *server;     /* [loop] */
	char owner[128];                 /* [const] */
	char state_dir[256];             /* [const] */
	char pods_dir[256];              /* [const] */
	char socket_path[256];           /* [const] */
	char forwarder_port[16];         /* [const] */
	uint64_t proxy_timeout_ms;       /* [const] */
	struct podnet_worker_opts net_opts;  /* [const] pod networking (sandbox_net.c) */
	char net_cidrs[1024];            /* [const] POD_SUBNET_CIDRS joined, for net_opts */

	pthread_mutex_t lock;
	struct sandbox_table sandboxes;  /* [lock] */
	bool shutting_down;              /* [lock] */
	struct cancel *shutdown;         /* fires at shutdown: long waits end */

	struct getinfo_waiter *waiters;  /* [loop] GetInfo calls with Wait */
	struct loop_timer *waiter_timer; /* [loop] */
	struct loop_timer *reaper_timer; /* [loop] */
	bool reaper_running;             /* [lock] */
	atomic_uint jobs_in_flight;      /* worker jobs not finished (atomic) */
	bool loop_done;                  /* [loop] the loop has stopped: posted work only cleans up */
};

/* Life of the daemon (daemon.c): init in a fixed order, run until a signal, finalise. */
int daemon_init(struct daemon *d, struct config *cfg, const struct provider_ops *ops,
		struct pp_err *err);
int daemon_run(struct daemon *d, struct pp_err *err);
void daemon_fini(struct daemon *d);

/* The agent proxy of one sandbox (sandbox_proxy.c), loop thread. */
struct agent_proxy *sandbox_proxy_start(struct daemon *d, struct sandbox *sb,
					void (*ready)(void *arg, const struct pp_err *err), void *arg,
					struct pp_err *err);

/* Admin commands (admin_cmds.c): `ls` and `gc`. */
int admin_ls(const char *state_dir, FILE *out, struct pp_err *err);
int admin_gc(struct config *cfg, const struct provider_ops *ops, bool dry_run, struct pp_err *err);

/* Services (hypervisor_service.c, podvminfo_service.c). */
int hypervisor_service_register(struct daemon *d, struct pp_err *err);
int podvminfo_service_register(struct daemon *d, struct pp_err *err);
/* Loop thread: an instance id became known; wake GetInfo waiters. */
void podvminfo_notify(struct daemon *d);
void podvminfo_fini(struct daemon *d);

/* Restart reconcile and reaper (reconcile.c). */
int reconcile_on_start(struct daemon *d, struct pp_err *err);
void reaper_schedule(struct daemon *d, uint64_t delay_ms);
/* One pass, blocking (worker thread or `gc`): deletes owned instances no sandbox refers to and
 * that are older than grace_ms. dry_run only reports. Returns the number reaped (or found). */
int reaper_run_once(struct provider *prov, struct store *st, uint64_t grace_ms, bool dry_run,
		    struct cancel *cancel, struct pp_err *err);

/* Job accounting, so that shutdown can wait for workers. */
void daemon_job_begin(struct daemon *d);
void daemon_job_end(struct daemon *d);

/* Test hook: PP_TEST_CRASH_AT=<point> makes the daemon SIGKILL itself at that point, so the
 * restart tests can crash it between two steps of a lifecycle. No-op otherwise. */
void daemon_crash_point(const char *point);

#endif
