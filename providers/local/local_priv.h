/*
 * Internals shared by the files of the `local` provider (and its unit tests).
 *
 * An instance is a directory <state>/local/<instance-name>/ standing in for a VM:
 *   cidata/user-data   the rendered #cloud-config (0600), cidata/meta-data
 *   root/              the "VM filesystem" process-user-data provisions (root/run/peerpod/apf.json)
 *   meta.json          who owns it and which processes run it (written atomically)
 *   console.log        stdout/stderr of every process of the instance
 *   agent.sock         the agent's unix socket
 * The directory is the instance: it exists from the moment create_instance reserves the name
 * until delete_instance removed it, so list_instances (a directory scan) never misses a
 * half-created instance.
 */
#ifndef PP_LOCAL_PRIV_H
#define PP_LOCAL_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "lib/config.h"
#include "lib/err.h"

#define LOCAL_DIR_NAME "local"
#define LOCAL_META_FILE "meta.json"
#define LOCAL_COUNTER_FILE "next-ip"
#define LOCAL_AGENT_SOCKET "agent.sock"
#define LOCAL_CONSOLE_FILE "console.log"
#define LOCAL_CONSOLE_READ_MAX (1024 * 1024)   /* console.log read back for an error */
#define LOCAL_CONSOLE_LINE_MAX 400
#define LOCAL_DEFAULT_FORWARDER_PORT "15150"
#define LOCAL_MAX_USER_DATA (64 * 1024)
#define LOCAL_MAX_META_SIZE (64 * 1024)
#define LOCAL_MAX_FORWARDER_ARGS 16
#define LOCAL_UNIX_PATH_MAX 107          /* sun_path minus the NUL */
#define LOCAL_USER_DATA_TIMEOUT_S 30     /* process-user-data -t */
#define LOCAL_KILL_GRACE_MS 2000         /* SIGTERM -> SIGKILL */
#define LOCAL_KILL_WAIT_MS 1000          /* after SIGKILL */
#define LOCAL_IP_PREFIX "127.77"
#define LOCAL_IP_COUNT (256 * 256)

/* The binaries an instance runs, by the names other components install them under. */
#define LOCAL_BIN_USER_DATA "process-user-data"
#define LOCAL_BIN_FORWARDER "agent-protocol-forwarder"
#define LOCAL_BIN_MOCK_AGENT "mock-agent"

struct local_priv {
	/* Set once by init, read-only afterwards. */
	char root[PATH_MAX];                   /* <state>/local */
	char bin_user_data[PATH_MAX];
	char bin_forwarder[PATH_MAX];
	char bin_agent[PATH_MAX];
	bool agent_is_mock;                    /* mock-agent gets --socket; a kata agent other flags */
	char forwarder_port[16];
	char *fwd_args_buf;                    /* LOCAL_FORWARDER_ARGS, split in place */
	char *fwd_args[LOCAL_MAX_FORWARDER_ARGS];
	int n_fwd_args;
	uint64_t boot_delay_ms;                /* LOCAL_BOOT_DELAY: the forwarder starts this late */
	/* Serialises IP allocation and directory reservation (not held while processes start). */
	pthread_mutex_t lock;
};

/* A process of an instance: pid plus its start time (field 22 of /proc/<pid>/stat), so that a
 * recycled pid is never mistaken for ours. */
struct local_proc {
	pid_t pid;
	uint64_t start;
};

/* What meta.json holds. */
struct local_meta {
	char owner[256];
	char sandbox_id[128];
	char instance_id[PROVIDER_ID_MAX];
	char name[INSTANCE_NAME_MAX + 1];
	char pod_name[256];
	char pod_namespace[256];
	char ip[PROVIDER_IP_MAX];
	int64_t created;
	pid_t pgid;                  /* process group of agent + forwarder; 0 = not started */
	struct local_proc agent;
	struct local_proc forwarder;
};

extern const struct config_option local_options[];

/* local_conf.c */
int local_conf_load(struct local_priv *lp, const struct config *cfg, struct pp_err *err);
int local_conf_check_bins(const struct local_priv *lp, struct pp_err *err);
void local_conf_free(struct local_priv *lp);

/* local_meta.c */
int local_meta_write(const char *dir, const struct local_meta *m, struct pp_err *err);
int local_meta_read(const char *dir, struct local_meta *m, struct pp_err *err);
/* Returns 0 and fills *ret with the next IP that no instance of ours uses and on which
 * FORWARDER_PORT can be bound; the counter file is advanced. Caller holds lock. */
int local_ip_allocate(const struct local_priv *lp, char *ret, size_t size, struct pp_err *err);
/* Calls fn for every instance directory with a readable meta.json. fn returns 1 to stop. */
int local_meta_scan(const struct local_priv *lp,
		    int (*fn)(void *arg, const char *dir, const struct local_meta *m), void *arg,
		    struct pp_err *err);
bool local_name_valid(const char *name);

/* local_sandbox.c */
/* Runs process-user-data for the instance in dir and waits for it (bounded, cancellable). */
int local_sandbox_provision(const struct local_priv *lp, const char *dir, struct cancel *cancel,
			    struct pp_err *err);
/* Starts agent + forwarder detached (new session, double fork); fills pgid and pids of m. */
int local_sandbox_start(const struct local_priv *lp, const char *dir, struct local_meta *m,
			struct pp_err *err);
/* SIGTERM to the instance's processes, SIGKILL after a bounded wait. */
int local_sandbox_stop(const struct local_meta *m, struct cancel *cancel, struct pp_err *err);
/* True if pid runs (not a zombie) and, when start != 0, started at `start`. */
bool local_proc_alive(const struct local_proc *p);
int local_proc_read(pid_t pid, struct local_proc *ret);

#endif
