/*
 * The processes of a local instance: provisioning, start, stop, removal.
 *
 * How an instance "boots" (no supervisor process, no shell):
 *   1. process-user-data runs as a direct child in its own session, and create_instance waits
 *      for it (bounded, cancellable): it turns cidata/user-data into root/run/peerpod/apf.json,
 *      like the pod VM's oneshot unit. Its failure fails the create.
 *   2. An intermediate child calls setsid() and forks the agent and the forwarder, writes their
 *      pids into a pipe and exits (a double fork). Agent and forwarder are then orphans in their
 *      own session and process group (pgid = the intermediate child's pid): they survive the
 *      daemon being killed or restarted, receive none of its terminal signals, and are reaped by
 *      init, not by the daemon. meta.json records the pgid and each pid with its start time.
 * Stopping kills that process group: SIGTERM, then SIGKILL after LOCAL_KILL_GRACE_MS. A pid or
 * pgid read back from meta.json is only signalled while the start time proves it is still ours
 * (pids are recycled; after a reboot they mean nothing).
 *
 * The daemon is multi-threaded: between fork() and execve() a child only calls async-signal-safe
 * functions, so every argv, envp and fd is prepared before fork().
 */
#include "providers/local/local_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/loop.h"

#define SANDBOX_MAX_ARGV (16 + LOCAL_MAX_FORWARDER_ARGS)
#define SANDBOX_MAX_ENV 12
#define SANDBOX_POLL_MS 20
#define SANDBOX_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Environment variables an instance inherits from the daemon; everything else stays out (an
 * instance stands for a VM: it does not see the node's environment). */
static const char *const sandbox_env_keep[] = {
	"PATH", "LD_LIBRARY_PATH", "TMPDIR", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL,
};

struct sandbox_env {
	char *envp[SANDBOX_MAX_ENV];
	char agent_addr[PATH_MAX + 16];
};

static void sandbox_env_build(struct sandbox_env *e, const char *agent_sock)
{
	extern char **environ;
	int n = 0;
	bool have_path = false;

	for (char **v = environ; v && *v && n < SANDBOX_MAX_ENV - 3; v++) {
		for (int k = 0; sandbox_env_keep[k]; k++) {
			size_t len = strlen(sandbox_env_keep[k]);

			if (strncmp(*v, sandbox_env_keep[k], len) == 0 && (*v)[len] == '=') {
				e->envp[n++] = *v;
				have_path = have_path || k == 0;
			}
		}
	}
	if (!have_path)
		e->envp[n++] = (char *)SANDBOX_DEFAULT_PATH;
	/* A real kata agent takes its server address from here (the mock ignores it). */
	snprintf(e->agent_addr, sizeof(e->agent_addr), "KATA_AGENT_SERVER_ADDR=unix://%s", agent_sock);
	e->envp[n++] = e->agent_addr;
	e->envp[n] = NULL;
}

/* ---- the child side: async-signal-safe only ---- */

static void child_write(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));

	(void)r;
}

/* LOCAL_BOOT_DELAY, in the forwarder's child before exec: the instance exists and its agent
 * runs, but nothing answers on its address yet, like a VM that is still booting. The child
 * first drops every descriptor it inherited (they would close only at exec) so that it does
 * not hold the daemon's sockets while it waits; the signal mask is already reset, so SIGTERM
 * ends the wait. close_range and nanosleep are plain system calls (async-signal-safe). */
static void sandbox_boot_delay(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	if (!ms)
		return;
	close_range(3, ~0u, 0);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* stdin /dev/null, stdout+stderr the console, default signal state, (a boot delay,) then exec.
 * Never returns. */
static void child_exec(char *const argv[], char *const envp[], int null_fd, int console_fd,
		       uint64_t delay_ms)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(console_fd, STDOUT_FILENO) < 0 ||
	    dup2(console_fd, STDERR_FILENO) < 0)
		_exit(126);
	sandbox_boot_delay(delay_ms);
	execve(argv[0], argv, envp);
	child_write(STDERR_FILENO, "local provider: cannot execute ");
	child_write(STDERR_FILENO, argv[0]);
	child_write(STDERR_FILENO, "\n");
	_exit(127);
}

/* ---- /proc ---- */

static int proc_stat(pid_t pid, char *ret_state, pid_t *ret_pgrp, uint64_t *ret_start)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	int pgrp = 0;
	char state = 0;
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');   /* the command name may hold spaces and parentheses */
	if (!p)
		return -1;
	/* fields 3 (state), 5 (pgrp) and 22 (starttime) */
	if (sscanf(p + 1, " %c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &state, &pgrp, &start) != 3)
		return -1;
	*ret_state = state;
	*ret_pgrp = (pid_t)pgrp;
	*ret_start = start;
	return 0;
}

int local_proc_read(pid_t pid, struct local_proc *ret)
{
	char state;
	pid_t pgrp;
	uint64_t start;

	if (pid <= 0 || proc_stat(pid, &state, &pgrp, &start) < 0)
		return -1;
	ret->pid = pid;
	ret->start = start;
	return 0;
}

bool local_proc_alive(const struct local_proc *p)
{
	char state;
	pid_t pgrp;
	uint64_t start;

	if (p->pid <= 0 || proc_stat(p->pid, &state, &pgrp, &start) < 0)
		return false;
	if (state == 'Z' || state == 'X')
		return false;
	return p->start == 0 || p->start == start;
}

/* ---- provisioning ---- */

struct sandbox_fds {
	int null_fd;
	int console_fd;
};

static int sandbox_fds_open(const char *dir, struct sandbox_fds *f, struct pp_err *err)
{
	char path[PATH_MAX];

	f->null_fd = f->console_fd = -1;
	if (snprintf(path, sizeof(path), "%s/%s", dir, LOCAL_CONSOLE_FILE) >= (int)sizeof(path))
		return pp_err_set(err, PP_INTERNAL, "instance directory %s is too long", dir);
	f->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (f->null_fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "opening /dev/null");
	f->console_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f->console_fd < 0) {
		int e = errno;

		close(f->null_fd);
		return pp_err_errno(err, PP_INTERNAL, e, "opening %s", path);
	}
	return 0;
}

static void sandbox_fds_close(struct sandbox_fds *f)
{
	if (f->null_fd >= 0)
		close(f->null_fd);
	if (f->console_fd >= 0)
		close(f->console_fd);
}

/* Waits for a direct child; kills its process group on cancel or after timeout_ms. */
/* The instance directory is removed when its create fails, so the error carries the last line
 * the failing program printed rather than a path to a file that is about to disappear. */
static void console_last_line(const char *dir, char *out, size_t size)
{
	char path[PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0, end, start;

	snprintf(out, size, "no output");
	if (snprintf(path, sizeof(path), "%s/%s", dir, LOCAL_CONSOLE_FILE) >= (int)sizeof(path) ||
	    file_read_all(path, LOCAL_CONSOLE_READ_MAX, &data, &len, NULL) < 0)
		return;
	end = len;
	while (end > 0 && (data[end - 1] == '\n' || data[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	if (end > start)
		snprintf(out, size, "%.*s", (int)(end - start), (const char *)data + start);
	free(data);
}

static int sandbox_wait_child(pid_t pid, uint64_t timeout_ms, struct cancel *cancel, int *ret_status,
			      struct pp_err *err)
{
	uint64_t deadline = pp_now_ms() + timeout_ms;

	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			*ret_status = status;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return pp_err_errno(err, PP_INTERNAL, errno, "waiting for process %d", (int)pid);
		if (pp_now_ms() >= deadline || cancel_sleep_ms(cancel, SANDBOX_POLL_MS)) {
			bool cancelled = cancel_fired(cancel);

			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			if (cancelled)
				return pp_err_set(err, PP_CANCELLED, "%s while running %s",
						  cancel_reason_text(cancel_why(cancel)), LOCAL_BIN_USER_DATA);
			return pp_err_set(err, PP_DEADLINE_EXCEEDED, "%s did not finish within %llu ms",
					  LOCAL_BIN_USER_DATA, (unsigned long long)timeout_ms);
		}
	}
}

int local_sandbox_provision(const struct local_priv *lp, const char *dir, struct cancel *cancel,
			    struct pp_err *err)
{
	char root[PATH_MAX], cidata[PATH_MAX], sock[PATH_MAX], timeout[16];
	struct sandbox_env env;
	struct sandbox_fds fds;
	int status = 0;
	char last[LOCAL_CONSOLE_LINE_MAX];
	pid_t pid;

	if (snprintf(root, sizeof(root), "%s/root", dir) >= (int)sizeof(root) ||
	    snprintf(cidata, sizeof(cidata), "%s/cidata", dir) >= (int)sizeof(cidata) ||
	    snprintf(sock, sizeof(sock), "%s/%s", dir, LOCAL_AGENT_SOCKET) >= (int)sizeof(sock))
		return pp_err_set(err, PP_INTERNAL, "instance directory %s is too long", dir);
	snprintf(timeout, sizeof(timeout), "%d", LOCAL_USER_DATA_TIMEOUT_S);
	char *argv[] = { (char *)lp->bin_user_data, "provision-files", "--root", root, "--cidata", cidata,
			 "--provider", "cidata", "-t", timeout, NULL };

	sandbox_env_build(&env, sock);
	if (sandbox_fds_open(dir, &fds, err) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		sandbox_fds_close(&fds);
		return pp_err_errno(err, PP_RESOURCE_EXHAUSTED, e, "fork for %s", LOCAL_BIN_USER_DATA);
	}
	if (pid == 0) {
		setsid();
		child_exec(argv, env.envp, fds.null_fd, fds.console_fd, 0);
	}
	sandbox_fds_close(&fds);
	if (sandbox_wait_child(pid, (LOCAL_USER_DATA_TIMEOUT_S + 5) * 1000ull, cancel, &status, err) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	console_last_line(dir, last, sizeof(last));
	if (WIFSIGNALED(status))
		return pp_err_set(err, PP_INTERNAL, "%s was killed by signal %d: %s", LOCAL_BIN_USER_DATA,
				  WTERMSIG(status), last);
	return pp_err_set(err, PP_INVALID_ARGUMENT, "%s exited with status %d: %s", LOCAL_BIN_USER_DATA,
			  WEXITSTATUS(status), last);
}

/* ---- start: the double fork ---- */

struct sandbox_cmds {
	char *agent[8];
	char *forwarder[SANDBOX_MAX_ARGV];
	char sock[PATH_MAX], record[PATH_MAX], config[PATH_MAX], netns[PATH_MAX];
	char listen[PROVIDER_IP_MAX + 16];
	uint64_t boot_delay_ms;
};

static int sandbox_cmds_build(const struct local_priv *lp, const char *dir, const struct local_meta *m,
			      struct sandbox_cmds *c, struct pp_err *err)
{
	int n = 0;

	if (snprintf(c->sock, sizeof(c->sock), "%s/%s", dir, LOCAL_AGENT_SOCKET) >= (int)sizeof(c->sock) ||
	    snprintf(c->record, sizeof(c->record), "%s/agent-calls.jsonl", dir) >= (int)sizeof(c->record) ||
	    snprintf(c->config, sizeof(c->config), "%s/root/run/peerpod/apf.json", dir) >= (int)sizeof(c->config) ||
	    snprintf(c->netns, sizeof(c->netns), "%s/netns-placeholder", dir) >= (int)sizeof(c->netns) ||
	    snprintf(c->listen, sizeof(c->listen), "%s:%s", m->ip, lp->forwarder_port) >= (int)sizeof(c->listen))
		return pp_err_set(err, PP_INTERNAL, "instance directory %s is too long", dir);
	c->agent[n++] = (char *)lp->bin_agent;
	if (lp->agent_is_mock) {
		c->agent[n++] = "--socket";
		c->agent[n++] = c->sock;
		c->agent[n++] = "--record";
		c->agent[n++] = c->record;
	}
	c->agent[n] = NULL;
	n = 0;
	c->forwarder[n++] = (char *)lp->bin_forwarder;
	c->forwarder[n++] = "-config";
	c->forwarder[n++] = c->config;
	c->forwarder[n++] = "-listen";
	c->forwarder[n++] = c->listen;
	c->forwarder[n++] = "-kata-agent-socket";
	c->forwarder[n++] = c->sock;
	c->forwarder[n++] = "-pod-namespace";
	c->forwarder[n++] = c->netns;
	for (int i = 0; i < lp->n_fwd_args; i++)
		c->forwarder[n++] = lp->fwd_args[i];
	c->forwarder[n] = NULL;
	c->boot_delay_ms = lp->boot_delay_ms;
	return 0;
}

/* The intermediate child: new session, two grandchildren, their pids into the pipe. */
static void sandbox_intermediate(const struct sandbox_cmds *c, char *const envp[],
				 const struct sandbox_fds *fds, int pipe_w)
{
	pid_t pids[2] = { 0, 0 };
	ssize_t w;

	setsid();
	pids[0] = fork();
	if (pids[0] == 0)
		child_exec(c->agent, envp, fds->null_fd, fds->console_fd, 0);
	if (pids[0] > 0) {
		pids[1] = fork();
		if (pids[1] == 0)
			child_exec(c->forwarder, envp, fds->null_fd, fds->console_fd, c->boot_delay_ms);
	}
	w = write(pipe_w, pids, sizeof(pids));
	_exit(w == (ssize_t)sizeof(pids) ? 0 : 1);
}

static int sandbox_read_pids(int fd, pid_t pids[2])
{
	size_t got = 0;

	while (got < 2 * sizeof(pid_t)) {
		ssize_t r = read(fd, (char *)pids + got, 2 * sizeof(pid_t) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

int local_sandbox_start(const struct local_priv *lp, const char *dir, struct local_meta *m,
			struct pp_err *err)
{
	struct sandbox_cmds *c = calloc(1, sizeof(*c));
	struct sandbox_env env;
	struct sandbox_fds fds;
	pid_t pids[2] = { 0, 0 };
	int pfd[2], status, rc = -1;
	pid_t mid;

	if (!c)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	if (sandbox_cmds_build(lp, dir, m, c, err) < 0)
		goto out;
	sandbox_env_build(&env, c->sock);
	if (sandbox_fds_open(dir, &fds, err) < 0)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		pp_err_errno(err, PP_RESOURCE_EXHAUSTED, errno, "pipe for starting instance %s", m->name);
		sandbox_fds_close(&fds);
		goto out;
	}
	mid = fork();
	if (mid == 0)
		sandbox_intermediate(c, env.envp, &fds, pfd[1]);
	close(pfd[1]);
	sandbox_fds_close(&fds);
	if (mid < 0) {
		pp_err_errno(err, PP_RESOURCE_EXHAUSTED, errno, "fork for instance %s", m->name);
		close(pfd[0]);
		goto out;
	}
	if (sandbox_read_pids(pfd[0], pids) < 0)
		pids[0] = pids[1] = 0;
	close(pfd[0]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	m->pgid = mid;
	m->agent.pid = pids[0];
	m->forwarder.pid = pids[1];
	/* Start times: read now, while they cannot have been recycled. */
	if (pids[0] > 0 && local_proc_read(pids[0], &m->agent) < 0)
		m->agent.start = 0;
	if (pids[1] > 0 && local_proc_read(pids[1], &m->forwarder) < 0)
		m->forwarder.start = 0;
	if (pids[0] <= 0 || pids[1] <= 0) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "could not start the processes of instance %s",
			   m->name);
		goto out;
	}
	rc = 0;
out:
	free(c);
	return rc;
}

/* ---- stop ---- */

/* The instance's process group, while it provably is still ours; 0 otherwise. The number was
 * the intermediate child's pid, which died at start: Linux does not hand out a pid that is
 * still in use as a process group id, so while any process holds that number as its pid the
 * group is not ours any more. */
static pid_t sandbox_our_group(const struct local_meta *m)
{
	char state;
	pid_t pgrp;
	uint64_t start;

	if (m->pgid <= 1)
		return 0;
	if (proc_stat(m->pgid, &state, &pgrp, &start) == 0)
		return 0;
	return m->pgid;
}

static bool sandbox_any_alive(const struct local_meta *m)
{
	return local_proc_alive(&m->agent) || local_proc_alive(&m->forwarder);
}

static void sandbox_signal(const struct local_meta *m, pid_t group, int sig)
{
	if (group > 0)
		kill(-group, sig);
	/* A member that left the group (setsid of its own) is still ours by pid + start time. */
	if (m->agent.start && local_proc_alive(&m->agent))
		kill(m->agent.pid, sig);
	if (m->forwarder.start && local_proc_alive(&m->forwarder))
		kill(m->forwarder.pid, sig);
}

static bool sandbox_wait_gone(const struct local_meta *m, uint64_t ms, struct cancel *cancel)
{
	uint64_t deadline = pp_now_ms() + ms;

	while (sandbox_any_alive(m)) {
		if (pp_now_ms() >= deadline)
			return false;
		if (cancel && cancel_sleep_ms(cancel, SANDBOX_POLL_MS))
			return false;
		if (!cancel)
			usleep(SANDBOX_POLL_MS * 1000);
	}
	return true;
}

int local_sandbox_stop(const struct local_meta *m, struct cancel *cancel, struct pp_err *err)
{
	pid_t group = sandbox_our_group(m);

	if (group == 0 && !sandbox_any_alive(m))
		return 0;
	sandbox_signal(m, group, SIGTERM);
	if (sandbox_wait_gone(m, LOCAL_KILL_GRACE_MS, cancel)) {
		if (group > 0)
			kill(-group, SIGKILL);   /* stragglers the agent may have started */
		return 0;
	}
	/* Grace over or the caller gave up waiting: do not leave processes behind either way. */
	sandbox_signal(m, group, SIGKILL);
	if (sandbox_wait_gone(m, LOCAL_KILL_WAIT_MS, NULL))
		return 0;
	return pp_err_set(err, PP_UNAVAILABLE, "processes of instance %s (pids %d, %d) did not exit "
			  "after SIGKILL", m->name, (int)m->agent.pid, (int)m->forwarder.pid);
}
