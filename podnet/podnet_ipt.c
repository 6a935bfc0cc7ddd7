/*
 * NOTRACK rules for VXLAN through the iptables program (see podnet_ipt.h).
 *
 * State is read with one `iptables -t raw -S` (chains are its "-N" lines, a chain's rules its
 * "-A <chain>" lines in order, numbered from 1), which every flavour prints alike; changes are
 * single iptables calls. The mutex makes each read-then-change sequence atomic among this
 * process's threads; only pod networking touches the peerpod chains.
 */
#include "podnet/podnet_ipt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define IPT_OUT_MAX     (1024 * 1024)    /* `-S` of the raw table */
#define IPT_ERR_MAX     512
#define IPT_ARGS_MAX    32
#define IPT_WAIT        "30"             /* seconds to wait for the xtables lock */
#define IPT_COMMENT_FMT "peerpod [vni:%u]"
#define IPT_COMMENT_MAX 32
#define IPT_RULES_MAX   4096

extern char **environ;

static pthread_mutex_t ipt_lock = PTHREAD_MUTEX_INITIALIZER;

struct ipt_out {
	char *text;                   /* stdout, NUL-terminated; NULL unless captured */
	size_t len;
	char err[IPT_ERR_MAX];        /* stderr, truncated */
	int status;                   /* exit status; -1 if killed */
};

struct ipt_chain_base {
	const char *chain;
	const char *base;
	const char *dir;              /* "-d" or "-s" */
};

static const struct ipt_chain_base ipt_chains[] = {
	{ PODNET_IPT_CHAIN_OUTPUT, "OUTPUT", "-d" },
	{ PODNET_IPT_CHAIN_PREROUTING, "PREROUTING", "-s" },
};

/* ---- running iptables ---- */

static int ipt_spawn(const char *prog, char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int rc;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return ENOMEM;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	if (rc == 0)
		rc = strchr(prog, '/') ? posix_spawn(pid, prog, &fa, NULL, argv, environ)
				       : posix_spawnp(pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* Appends what fd has to buf (at most max - 1 bytes kept); 0 at EOF, 1 if more may come. */
static int ipt_drain(int fd, char *buf, size_t *len, size_t max, bool *overflow)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (*len + (size_t)n >= max) {
		*overflow = true;
		n = (ssize_t)(max - 1 - *len);
	}
	memcpy(buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	buf[*len] = '\0';
	return 1;
}

static void ipt_collect(int out_fd, int err_fd, struct ipt_out *o, bool *overflow)
{
	struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = err_fd, .events = POLLIN } };
	size_t elen = 0;
	bool junk = false;

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].fd >= 0 && p[0].revents &&
		    !ipt_drain(out_fd, o->text, &o->len, IPT_OUT_MAX, overflow))
			p[0].fd = -1;
		if (p[1].fd >= 0 && p[1].revents &&
		    !ipt_drain(err_fd, o->err, &elen, sizeof(o->err), &junk))
			p[1].fd = -1;
	}
}

static int ipt_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void ipt_close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

/* Runs `prog -w N -t raw <args>`; o->status is its exit status. -1 only if it did not run. */
static int ipt_run(const char *prog, const char *const *args, struct ipt_out *o,
		   struct pp_err *err)
{
	char *argv[IPT_ARGS_MAX];
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	size_t n = 0;
	bool overflow = false;
	pid_t pid;
	int rc;

	memset(o, 0, sizeof(*o));
	argv[n++] = (char *)prog;
	argv[n++] = (char *)"-w";
	argv[n++] = (char *)IPT_WAIT;
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)"raw";
	for (; *args && n < IPT_ARGS_MAX - 1; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	o->text = malloc(IPT_OUT_MAX);
	if (!o->text)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
	o->text[0] = '\0';
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = errno;
		goto fail;
	}
	rc = ipt_spawn(prog, argv, out[1], errp[1], &pid);
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	if (rc != 0)
		goto fail;
	ipt_collect(out[0], errp[0], o, &overflow);
	ipt_close_pair(out);
	ipt_close_pair(errp);
	o->status = ipt_wait(pid);
	if (overflow && o->status == 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "%s -t raw printed more than %d bytes", prog, IPT_OUT_MAX);
	return 0;
fail:
	ipt_close_pair(out);
	ipt_close_pair(errp);
	free(o->text);
	o->text = NULL;
	return pp_err_set(err, PP_FAILED_PRECONDITION,
			  "cannot run %s (needed for the VXLAN NOTRACK rules; install iptables): %s",
			  prog, strerror(rc));
}

static void ipt_out_free(struct ipt_out *o)
{
	free(o->text);
	o->text = NULL;
}

/* Runs one change; a non-zero exit status is an error quoting iptables' own message. */
static int ipt_change(const char *prog, const char *const *args, const char *what,
		      struct pp_err *err)
{
	struct ipt_out o;
	char q[IPT_ERR_MAX];

	if (ipt_run(prog, args, &o, err) < 0)
		return -1;
	ipt_out_free(&o);
	if (o.status == 0)
		return 0;
	return pp_err_set(err, PP_INTERNAL, "iptables: %s failed (exit %d): %s", what, o.status,
			  str_quote(q, sizeof(q), str_trim(o.err)));
}

/* Runs a check (-C): 1 when it holds, 0 when not. */
static int ipt_test(const char *prog, const char *const *args, struct pp_err *err)
{
	struct ipt_out o;

	if (ipt_run(prog, args, &o, err) < 0)
		return -1;
	ipt_out_free(&o);
	return o.status == 0;
}

/* ---- reading the raw table ---- */

struct ipt_table {
	struct ipt_out out;           /* the `-S` text */
};

static int ipt_table_read(const char *prog, struct ipt_table *t, struct pp_err *err)
{
	static const char *const args[] = { "-S", NULL };
	char q[IPT_ERR_MAX];

	if (ipt_run(prog, args, &t->out, err) < 0)
		return -1;
	if (t->out.status != 0) {
		pp_err_set(err, PP_INTERNAL, "iptables: listing the raw table failed (exit %d): %s",
			   t->out.status, str_quote(q, sizeof(q), str_trim(t->out.err)));
		ipt_out_free(&t->out);
		return -1;
	}
	return 0;
}

/* Calls fn for each line of the listing; stops when fn returns non-zero. */
static void ipt_table_lines(const struct ipt_table *t, int (*fn)(const char *line, size_t len,
								  void *arg), void *arg)
{
	const char *p = t->out.text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (fn(p, len, arg))
			return;
		p += len + (nl ? 1 : 0);
	}
}

static bool ipt_line_is(const char *line, size_t len, const char *op, const char *chain)
{
	size_t ol = strlen(op), cl = strlen(chain);

	return len >= ol + cl && memcmp(line, op, ol) == 0 && memcmp(line + ol, chain, cl) == 0 &&
	       (len == ol + cl || line[ol + cl] == ' ');
}

struct ipt_scan {
	const char *chain;
	const char *needle;           /* the VNI's comment with its closing quote */
	bool chain_exists;
	size_t n_rules;               /* rules in the chain */
	size_t matches[IPT_RULES_MAX];/* 1-based numbers of the VNI's rules */
	size_t n_matches;
};

static bool ipt_contains(const char *line, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; i + nl <= len; i++)
		if (memcmp(line + i, needle, nl) == 0)
			return true;
	return false;
}

static int ipt_scan_line(const char *line, size_t len, void *arg)
{
	struct ipt_scan *s = arg;

	if (ipt_line_is(line, len, "-N ", s->chain))
		s->chain_exists = true;
	if (!ipt_line_is(line, len, "-A ", s->chain))
		return 0;
	s->n_rules++;
	if (s->needle && ipt_contains(line, len, s->needle) && s->n_matches < IPT_RULES_MAX)
		s->matches[s->n_matches++] = s->n_rules;
	return 0;
}

static void ipt_scan(const struct ipt_table *t, const char *chain, const char *needle,
		     struct ipt_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->chain = chain;
	s->needle = needle;
	ipt_table_lines(t, ipt_scan_line, s);
}

/* ---- operations (called with ipt_lock held) ---- */

static void ipt_comment(uint32_t vni, char *out, size_t size)
{
	snprintf(out, size, IPT_COMMENT_FMT, vni);
}

static void ipt_needle(uint32_t vni, char *out, size_t size)
{
	snprintf(out, size, IPT_COMMENT_FMT "\"", vni);
}

/* Deletes the chain and its jumps if it holds no rule. */
static int ipt_chain_drop_if_empty(const char *prog, const struct ipt_chain_base *c,
				   const struct ipt_scan *s, struct pp_err *err)
{
	const char *jump[] = { "-C", c->base, "-j", c->chain, NULL };
	const char *del[] = { "-D", c->base, "-j", c->chain, NULL };
	const char *drop[] = { "-X", c->chain, NULL };
	int rc;

	if (!s->chain_exists || s->n_rules > 0)
		return 0;
	while ((rc = ipt_test(prog, jump, err)) == 1)
		if (ipt_change(prog, del, "removing a jump to a peerpod chain", err) < 0)
			return -1;
	if (rc < 0)
		return -1;
	return ipt_change(prog, drop, "deleting an empty peerpod chain", err);
}

/* Deletes the VNI's rules in one chain, from the last so that numbers stay valid. */
static int ipt_chain_del_vni(const char *prog, const struct ipt_chain_base *c,
			     const struct ipt_table *t, uint32_t vni, bool drop_empty,
			     struct pp_err *err)
{
	char needle[IPT_COMMENT_MAX + 1], num[24];
	const char *del[] = { "-D", c->chain, num, NULL };
	struct ipt_scan *s = malloc(sizeof(*s));
	int rc = 0;

	if (!s)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
	ipt_needle(vni, needle, sizeof(needle));
	ipt_scan(t, c->chain, needle, s);
	for (size_t i = s->n_matches; i > 0 && rc == 0; i--) {
		snprintf(num, sizeof(num), "%zu", s->matches[i - 1]);
		rc = ipt_change(prog, del, "deleting a NOTRACK rule", err);
	}
	s->n_rules -= s->n_matches;
	if (rc == 0 && drop_empty)
		rc = ipt_chain_drop_if_empty(prog, c, s, err);
	free(s);
	return rc;
}

static int ipt_del_locked(const char *prog, uint32_t vni, bool drop_empty, struct pp_err *err)
{
	struct ipt_table t;
	int rc = 0;

	if (ipt_table_read(prog, &t, err) < 0)
		return -1;
	for (size_t i = 0; i < PP_ARRAY_SIZE(ipt_chains) && rc == 0; i++)
		rc = ipt_chain_del_vni(prog, &ipt_chains[i], &t, vni, drop_empty, err);
	ipt_out_free(&t.out);
	return rc;
}

static int ipt_chain_ensure(const char *prog, const struct ipt_chain_base *c,
			    const struct ipt_table *t, struct pp_err *err)
{
	const char *create[] = { "-N", c->chain, NULL };
	const char *check[] = { "-C", c->base, "-j", c->chain, NULL };
	const char *jump[] = { "-A", c->base, "-j", c->chain, NULL };
	struct ipt_scan *s = malloc(sizeof(*s));
	bool exists;
	int rc;

	if (!s)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
	ipt_scan(t, c->chain, NULL, s);
	exists = s->chain_exists;
	free(s);
	if (!exists && ipt_change(prog, create, "creating a peerpod chain", err) < 0)
		return -1;
	rc = ipt_test(prog, check, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	return ipt_change(prog, jump, "adding a jump to a peerpod chain", err);
}

/* The rule's arguments after the operation and chain. */
static void ipt_rule_args(const struct ipt_chain_base *c, const struct podnet_ipt_rule *r,
			  const char *op, char *comment, char *remote, char *port,
			  const char *out[IPT_ARGS_MAX])
{
	const char *a[] = { op, c->chain, "-m", "comment", "--comment", comment, c->dir, remote,
			    "-p", "udp", "-m", "udp", "--dport", port, "-j", "NOTRACK", NULL };

	ipt_comment(r->vni, comment, IPT_COMMENT_MAX);
	inet_ntop(AF_INET, &r->remote, remote, INET_ADDRSTRLEN);
	snprintf(port, 8, "%u", r->port);
	memcpy(out, a, sizeof(a));
}

static int ipt_rule_apply(const char *prog, const struct ipt_chain_base *c,
			  const struct podnet_ipt_rule *r, const char *op, struct pp_err *err)
{
	char comment[IPT_COMMENT_MAX], remote[INET_ADDRSTRLEN], port[8];
	const char *args[IPT_ARGS_MAX];

	ipt_rule_args(c, r, op, comment, remote, port, args);
	if (op[1] == 'C')
		return ipt_test(prog, args, err);
	return ipt_change(prog, args, "adding a NOTRACK rule", err);
}

/* 1 when the chain holds exactly one rule of the VNI and it is this one. */
static int ipt_chain_has_exactly(const char *prog, const struct ipt_chain_base *c,
				 const struct ipt_table *t, const struct podnet_ipt_rule *r,
				 struct pp_err *err)
{
	char needle[IPT_COMMENT_MAX + 1];
	struct ipt_scan *s = malloc(sizeof(*s));
	size_t n;

	if (!s)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "pod network: out of memory");
	ipt_needle(r->vni, needle, sizeof(needle));
	ipt_scan(t, c->chain, needle, s);
	n = s->n_matches;
	free(s);
	if (n != 1)
		return 0;
	return ipt_rule_apply(prog, c, r, "-C", err);
}

static int ipt_add_chain(const char *prog, const struct ipt_chain_base *c,
			 const struct ipt_table *t, const struct podnet_ipt_rule *r,
			 struct pp_err *err)
{
	int rc = ipt_chain_has_exactly(prog, c, t, r, err);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (ipt_chain_del_vni(prog, c, t, r->vni, false, err) < 0 ||
	    ipt_chain_ensure(prog, c, t, err) < 0)
		return -1;
	return ipt_rule_apply(prog, c, r, "-A", err);
}

static int ipt_add_locked(const char *prog, const struct podnet_ipt_rule *r, struct pp_err *err)
{
	int rc = 0;

	for (size_t i = 0; i < PP_ARRAY_SIZE(ipt_chains) && rc == 0; i++) {
		struct ipt_table t;

		/* re-read: the previous chain's changes renumber nothing here, but keep it simple */
		if (ipt_table_read(prog, &t, err) < 0)
			return -1;
		rc = ipt_add_chain(prog, &ipt_chains[i], &t, r, err);
		ipt_out_free(&t.out);
	}
	return rc;
}

/* ---- public ---- */

int podnet_ipt_add(const char *iptables, const struct podnet_ipt_rule *rule, struct pp_err *err)
{
	const char *prog = iptables ? iptables : PODNET_IPT_DEFAULT;
	int rc;

	pthread_mutex_lock(&ipt_lock);
	rc = ipt_add_locked(prog, rule, err);
	pthread_mutex_unlock(&ipt_lock);
	return rc;
}

int podnet_ipt_del(const char *iptables, uint32_t vni, struct pp_err *err)
{
	const char *prog = iptables ? iptables : PODNET_IPT_DEFAULT;
	int rc;

	pthread_mutex_lock(&ipt_lock);
	rc = ipt_del_locked(prog, vni, true, err);
	pthread_mutex_unlock(&ipt_lock);
	return rc;
}

int podnet_ipt_check(const char *iptables, const struct podnet_ipt_rule *rule,
		     struct pp_err *err)
{
	const char *prog = iptables ? iptables : PODNET_IPT_DEFAULT;
	int rc = 1;

	pthread_mutex_lock(&ipt_lock);
	for (size_t i = 0; i < PP_ARRAY_SIZE(ipt_chains) && rc == 1; i++)
		rc = ipt_rule_apply(prog, &ipt_chains[i], rule, "-C", err);
	pthread_mutex_unlock(&ipt_lock);
	return rc;
}
