/*
 * The `local` provider against stub binaries: small shell scripts named like the real ones
 * that record their argv into the instance directory and then sleep (exec, so the recorded pid
 * is the sleeping process). The test process is a child subreaper, so the instance processes
 * (orphans by design) are reparented to it and it can reap them before checking they are gone.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "adaptor/options.h"
#include "adaptor/provider.h"
#include "lib/fileutil.h"
#include "lib/ttrpc.h"
#include "providers/local/local_priv.h"
#include "tests/tools/shim_client/shim_lib.h"

extern const struct provider_ops local_provider_ops;

#define USER_DATA "#cloud-config\n\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n"

static const char STUB_USER_DATA[] =
	"#!/bin/sh\n"
	"bin=$(dirname \"$0\")\n"
	"[ -e \"$bin/fail-user-data\" ] && { echo 'user-data: refused' >&2; exit 3; }\n"
	"root=''\n"
	"args=\"$*\"\n"
	"while [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=$2; shift; done\n"
	"mkdir -p \"$root/run/peerpod\" && echo '{}' > \"$root/run/peerpod/apf.json\"\n"
	"echo \"$args\" > \"$root/../user-data.args\"\n";

static const char STUB_AGENT[] =
	"#!/bin/sh\n"
	"sock=''\n"
	"args=\"$*\"\n"
	"while [ $# -gt 0 ]; do [ \"$1\" = --socket ] && sock=$2; shift; done\n"
	"d=$(dirname \"$sock\")\n"
	"echo \"$args\" > \"$d/agent.args.tmp\" && mv \"$d/agent.args.tmp\" \"$d/agent.args\"\n"
	"exec sleep 1000\n";

static const char STUB_FORWARDER[] =
	"#!/bin/sh\n"
	"sock=''\n"
	"args=\"$*\"\n"
	"while [ $# -gt 0 ]; do [ \"$1\" = -kata-agent-socket ] && sock=$2; shift; done\n"
	"d=$(dirname \"$sock\")\n"
	"echo \"$args\" > \"$d/fwd.args.tmp\" && mv \"$d/fwd.args.tmp\" \"$d/fwd.args\"\n"
	"exec sleep 1000\n";

struct fixture {
	char tmp[64];
	char bin[128];
	char state[128];
	struct config *cfg;
	struct provider *p;
};

static void write_stub(const char *dir, const char *name, const char *text)
{
	char path[256];
	struct pp_err err = { 0 };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0755, &err), 0);
}

static struct config *make_config(const char *bin, const char *fwd_args, bool disable_tls)
{
	const struct config_option *const tables[] = { adaptor_options, local_options, NULL };
	struct pp_err err = { 0 };
	struct config *cfg = config_new(tables, &err);

	assert_non_null(cfg);
	assert_int_equal(config_set(cfg, "LOCAL_BIN_DIR", bin, &err), 0);
	if (fwd_args)
		assert_int_equal(config_set(cfg, "LOCAL_FORWARDER_ARGS", fwd_args, &err), 0);
	if (disable_tls)
		assert_int_equal(config_set(cfg, "DISABLE_TLS", "true", &err), 0);
	return cfg;
}

static struct provider *start_provider(struct config *cfg, const char *owner, const char *state)
{
	struct pp_err err = { 0 };
	struct provider *p = provider_new(&local_provider_ops, cfg, owner, state, &err);

	assert_non_null(p);
	if (provider_start(p, &err) < 0)
		fail_msg("provider_start: %s", err.msg);
	return p;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/ppl.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->bin, sizeof(f->bin), "%s/bin", f->tmp);
	snprintf(f->state, sizeof(f->state), "%s/st", f->tmp);
	assert_int_equal(mkdir(f->bin, 0755), 0);
	write_stub(f->bin, LOCAL_BIN_USER_DATA, STUB_USER_DATA);
	write_stub(f->bin, LOCAL_BIN_MOCK_AGENT, STUB_AGENT);
	write_stub(f->bin, LOCAL_BIN_FORWARDER, STUB_FORWARDER);
	f->cfg = make_config(f->bin, NULL, false);
	f->p = start_provider(f->cfg, "owner-a", f->state);
	*state = f;
	return 0;
}

/* Deletes whatever a test left running (also after a failed assertion). */
static void delete_all(struct provider *p)
{
	struct owned_instance_list l = { NULL, 0 };

	if (local_provider_ops.list_instances(p, &l, NULL, NULL) < 0)
		return;
	for (size_t i = 0; i < l.n; i++)
		local_provider_ops.delete_instance(p, l.items[i].id, l.items[i].name, NULL, NULL);
	owned_instance_list_free(&l);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (provider_priv(f->p))
		delete_all(f->p);
	provider_free(f->p);
	config_free(f->cfg);
	rm_rf(f->tmp, NULL);
	free(f);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return 0;
}

/* ---- helpers ---- */

static void create(struct provider *p, const char *name, const char *sid, struct instance *ret)
{
	struct create_request req = {
		.sandbox_id = sid, .pod_name = "pod", .pod_namespace = "default",
		.instance_name = name, .user_data = USER_DATA, .user_data_len = strlen(USER_DATA),
	};
	struct pp_err err = { 0 };

	if (local_provider_ops.create_instance(p, &req, ret, &err) < 0)
		fail_msg("create_instance %s: %s", name, err.msg);
}

static void instance_dir(const struct fixture *f, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/local/%s", f->state, name);
}

/* Reads a file the stubs write, waiting for it (the processes start asynchronously). */
static char *read_when_ready(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (int i = 0; i < 300; i++) {
		uint8_t *data = NULL;
		size_t len;

		if (file_read_all(path, 65536, &data, &len, NULL) == 0)
			return (char *)data;
		usleep(10000);
	}
	fail_msg("%s never appeared", path);
	return NULL;
}

static void read_meta(const char *dir, struct local_meta *m)
{
	struct pp_err err = { 0 };

	if (local_meta_read(dir, m, &err) < 0)
		fail_msg("meta: %s", err.msg);
}

/* Reaps whatever was reparented to us, then tells whether pid is gone. */
static bool pid_gone(pid_t pid)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static size_t count_listed(struct provider *p, const char *name)
{
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	size_t hits = 0;

	assert_int_equal(local_provider_ops.list_instances(p, &l, NULL, &err), 0);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].name, name) == 0)
			hits++;
	owned_instance_list_free(&l);
	return hits;
}

/* ---- tests ---- */

static void test_create_runs_the_sandbox(void **state)
{
	struct fixture *f = *state;
	struct instance inst;
	struct local_meta m;
	struct stat st;
	char dir[256], path[300], expect[1024];
	char *args;

	create(f->p, "podvm-web-abcd1234", "sid-1", &inst);
	assert_true(strncmp(inst.id, "local-", 6) == 0);
	assert_int_equal(strlen(inst.id), 6 + 16);
	assert_string_equal(inst.name, "podvm-web-abcd1234");
	assert_int_equal(inst.n_ips, 1);
	assert_true(strncmp(inst.ips[0], "127.77.", 7) == 0);

	instance_dir(f, inst.name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/cidata/user-data", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	args = read_when_ready(dir, "cidata/user-data");
	assert_string_equal(args, USER_DATA);
	free(args);

	args = read_when_ready(dir, "user-data.args");
	snprintf(expect, sizeof(expect), "provision-files --root %s/root --cidata %s/cidata --provider cidata -t 30\n",
		 dir, dir);
	assert_string_equal(args, expect);
	free(args);

	args = read_when_ready(dir, "fwd.args");
	snprintf(expect, sizeof(expect), "-config %s/root/run/peerpod/apf.json -listen %s:15150 "
		 "-kata-agent-socket %s/agent.sock -pod-namespace %s/netns-placeholder\n",
		 dir, inst.ips[0], dir, dir);
	assert_string_equal(args, expect);
	free(args);

	args = read_when_ready(dir, "agent.args");
	snprintf(expect, sizeof(expect), "--socket %s/agent.sock --record %s/agent-calls.jsonl\n", dir, dir);
	assert_string_equal(args, expect);
	free(args);

	read_meta(dir, &m);
	assert_string_equal(m.owner, "owner-a");
	assert_string_equal(m.sandbox_id, "sid-1");
	assert_string_equal(m.instance_id, inst.id);
	assert_string_equal(m.ip, inst.ips[0]);
	assert_true(m.agent.pid > 0 && m.forwarder.pid > 0 && m.pgid > 0);
	assert_true(local_proc_alive(&m.agent));
	assert_true(local_proc_alive(&m.forwarder));
	assert_int_equal(count_listed(f->p, inst.name), 1);
}

static void test_delete_kills_and_removes(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct instance inst;
	struct local_meta m;
	char dir[256];

	create(f->p, "podvm-a-11111111", "sid-a", &inst);
	instance_dir(f, inst.name, dir, sizeof(dir));
	free(read_when_ready(dir, "agent.args"));
	free(read_when_ready(dir, "fwd.args"));
	read_meta(dir, &m);

	assert_int_equal(local_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	assert_true(pid_gone(m.agent.pid));
	assert_true(pid_gone(m.forwarder.pid));
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(count_listed(f->p, inst.name), 0);
	/* already gone = success, by id and by name */
	assert_int_equal(local_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	assert_int_equal(local_provider_ops.delete_instance(f->p, inst.id, "", NULL, &err), 0);
	assert_int_equal(local_provider_ops.delete_instance(f->p, "", inst.name, NULL, &err), 0);
}

static void test_delete_by_name_or_id_only(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct instance a, b;
	struct local_meta ma, mb;
	char da[256], db[256];

	create(f->p, "podvm-n-22222222", "sid-n", &a);
	create(f->p, "podvm-i-33333333", "sid-i", &b);
	instance_dir(f, a.name, da, sizeof(da));
	instance_dir(f, b.name, db, sizeof(db));
	free(read_when_ready(da, "agent.args"));
	free(read_when_ready(db, "agent.args"));
	read_meta(da, &ma);
	read_meta(db, &mb);

	assert_int_equal(local_provider_ops.delete_instance(f->p, "", a.name, NULL, &err), 0);
	assert_true(pid_gone(ma.agent.pid));
	assert_int_equal(access(da, F_OK), -1);

	assert_int_equal(local_provider_ops.delete_instance(f->p, b.id, "", NULL, &err), 0);
	assert_true(pid_gone(mb.agent.pid));
	assert_int_equal(access(db, F_OK), -1);
}

static void test_other_owner_untouched(void **state)
{
	struct fixture *f = *state;
	struct provider *other = start_provider(f->cfg, "owner-b", f->state);
	struct pp_err err = { 0 };
	struct instance mine, theirs;
	struct local_meta m;
	char dir[256];

	create(f->p, "podvm-mine-44444444", "sid-m", &mine);
	create(other, "podvm-theirs-55555555", "sid-t", &theirs);
	assert_string_not_equal(mine.ips[0], theirs.ips[0]);
	assert_int_equal(count_listed(f->p, mine.name), 1);
	assert_int_equal(count_listed(f->p, theirs.name), 0);
	assert_int_equal(count_listed(other, theirs.name), 1);

	/* Deleting another node's instance is refused and leaves it running. */
	instance_dir(f, theirs.name, dir, sizeof(dir));
	free(read_when_ready(dir, "agent.args"));
	read_meta(dir, &m);
	assert_int_equal(local_provider_ops.delete_instance(f->p, theirs.id, theirs.name, NULL, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "owner-b"));
	assert_true(local_proc_alive(&m.agent));
	assert_int_equal(access(dir, F_OK), 0);

	assert_int_equal(local_provider_ops.delete_instance(other, theirs.id, theirs.name, NULL, &err), 0);
	assert_int_equal(local_provider_ops.delete_instance(f->p, mine.id, mine.name, NULL, &err), 0);
	provider_free(other);
}

static void test_ips_unique_and_persisted(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct instance a, b, c;
	struct provider *again;

	create(f->p, "podvm-x-66666666", "sid-x", &a);
	create(f->p, "podvm-y-77777777", "sid-y", &b);
	assert_string_not_equal(a.ips[0], b.ips[0]);
	/* a fresh provider (a daemon restart) continues from the persisted counter */
	again = start_provider(f->cfg, "owner-a", f->state);
	create(again, "podvm-z-88888888", "sid-z", &c);
	assert_string_not_equal(c.ips[0], a.ips[0]);
	assert_string_not_equal(c.ips[0], b.ips[0]);
	assert_int_equal(count_listed(again, a.name), 1);
	assert_int_equal(local_provider_ops.delete_instance(again, a.id, a.name, NULL, &err), 0);
	assert_int_equal(local_provider_ops.delete_instance(again, b.id, b.name, NULL, &err), 0);
	assert_int_equal(local_provider_ops.delete_instance(again, c.id, c.name, NULL, &err), 0);
	provider_free(again);
}

/* The instance outlives the process that created it (a daemon crash or restart), and the next
 * daemon finds it by listing and can delete it. */
static void test_instance_survives_its_creator(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct owned_instance_list l = { NULL, 0 };
	struct local_meta m;
	char dir[256];
	int status;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		struct instance inst;

		create(f->p, "podvm-orphan-13131313", "sid-o", &inst);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	instance_dir(f, "podvm-orphan-13131313", dir, sizeof(dir));
	free(read_when_ready(dir, "agent.args"));
	read_meta(dir, &m);
	assert_true(local_proc_alive(&m.agent));
	assert_true(local_proc_alive(&m.forwarder));

	assert_int_equal(local_provider_ops.list_instances(f->p, &l, NULL, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "podvm-orphan-13131313");
	assert_string_equal(l.items[0].sandbox_id, "sid-o");
	assert_true(l.items[0].created_unix > 0);
	assert_int_equal(local_provider_ops.delete_instance(f->p, l.items[0].id, "", NULL, &err), 0);
	owned_instance_list_free(&l);
	assert_true(pid_gone(m.agent.pid));
	assert_true(pid_gone(m.forwarder.pid));
}

/* With the real mock-agent in the bin dir, the instance's agent answers on <dir>/agent.sock,
 * and deleting the instance stops it. */
static void test_real_mock_agent_answers(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct instance inst;
	struct local_meta m;
	struct shim_conn c;
	char path[256], dir[256], sock[300];
	int status = 0, fd = -1;

	snprintf(path, sizeof(path), "%s/%s", f->bin, LOCAL_BIN_MOCK_AGENT);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(MOCK_AGENT_BIN, path), 0);
	create(f->p, "podvm-real-14141414", "sid-r", &inst);
	instance_dir(f, inst.name, dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/%s", dir, LOCAL_AGENT_SOCKET);
	for (int i = 0; i < 500 && fd < 0; i++) {
		fd = ttrpc_sync_dial_unix(sock, NULL);
		if (fd < 0)
			usleep(10000);
	}
	assert_true(fd >= 0);
	shim_conn_from_fd(&c, fd);
	assert_int_equal(shim_agent_health(&c, 5LL * 1000 * 1000 * 1000, &status, &err), 0);
	assert_int_equal(status, 1);
	close(fd);
	read_meta(dir, &m);
	assert_int_equal(local_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	assert_true(pid_gone(m.agent.pid));
	assert_int_equal(access(dir, F_OK), -1);
}

/* An address whose forwarder port is taken (another daemon's instance, another state
 * directory) is skipped. */
static void test_ip_with_busy_port_skipped(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct pp_err err = { 0 };
	struct instance inst;
	struct config *cfg;
	struct provider *p;
	char port[16];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, "127.77.0.1", &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
	cfg = make_config(f->bin, NULL, false);
	assert_int_equal(config_set(cfg, "FORWARDER_PORT", port, &err), 0);
	p = start_provider(cfg, "owner-a", f->state);
	create(p, "podvm-busy-15151515", "sid", &inst);
	assert_string_not_equal(inst.ips[0], "127.77.0.1");
	assert_int_equal(local_provider_ops.delete_instance(p, inst.id, inst.name, NULL, &err), 0);
	provider_free(p);
	config_free(cfg);
	close(fd);
}

static void test_user_data_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct create_request req = {
		.sandbox_id = "sid-f", .pod_name = "pod", .pod_namespace = "default",
		.instance_name = "podvm-f-99999999", .user_data = USER_DATA,
		.user_data_len = strlen(USER_DATA),
	};
	struct pp_err err = { 0 };
	struct instance inst;
	char dir[256];

	write_stub(f->bin, "fail-user-data", "");
	assert_int_equal(local_provider_ops.create_instance(f->p, &req, &inst, &err), -1);
	assert_non_null(strstr(err.msg, "process-user-data exited with status 3: user-data: refused"));
	instance_dir(f, req.instance_name, dir, sizeof(dir));
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(count_listed(f->p, req.instance_name), 0);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	struct create_request req = {
		.sandbox_id = "sid", .pod_name = "pod", .pod_namespace = "default",
		.instance_name = "../escape", .user_data = USER_DATA, .user_data_len = strlen(USER_DATA),
	};
	struct pp_err err = { 0 };
	struct instance inst;

	assert_int_equal(local_provider_ops.create_instance(f->p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "../escape"));

	req.instance_name = "podvm-dup-00000000";
	create(f->p, req.instance_name, "sid", &inst);
	assert_int_equal(local_provider_ops.create_instance(f->p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_int_equal(local_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);

	req.instance_name = "podvm-big-00000000";
	req.user_data_len = LOCAL_MAX_USER_DATA + 1;
	assert_int_equal(local_provider_ops.create_instance(f->p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(local_provider_ops.max_user_data, LOCAL_MAX_USER_DATA);
}

static void test_forwarder_args_from_config(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = make_config(f->bin, "-tls-skip-verify  -host-interface lo", true);
	struct provider *p;
	struct pp_err err = { 0 };
	struct instance inst;
	char dir[256], tail[256];
	char *args;

	assert_int_equal(config_set(cfg, "FORWARDER_PORT", "15999", &err), 0);
	p = start_provider(cfg, "owner-a", f->state);
	create(p, "podvm-args-12121212", "sid", &inst);
	instance_dir(f, inst.name, dir, sizeof(dir));
	args = read_when_ready(dir, "fwd.args");
	snprintf(tail, sizeof(tail), "-listen %s:15999 ", inst.ips[0]);
	assert_non_null(strstr(args, tail));
	assert_non_null(strstr(args, "/netns-placeholder -tls-skip-verify -host-interface lo -disable-tls\n"));
	free(args);
	assert_int_equal(local_provider_ops.delete_instance(p, inst.id, inst.name, NULL, &err), 0);
	provider_free(p);
	config_free(cfg);
}

static void test_missing_binary_fails_init(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	struct provider *p;
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->bin, LOCAL_BIN_FORWARDER);
	assert_int_equal(unlink(path), 0);
	p = provider_new(&local_provider_ops, f->cfg, "owner-a", f->state, &err);
	assert_non_null(p);
	assert_int_equal(provider_start(p, &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, LOCAL_BIN_FORWARDER));
	provider_free(p);

	/* present but not executable: also named */
	write_stub(f->bin, LOCAL_BIN_FORWARDER, STUB_FORWARDER);
	assert_int_equal(chmod(path, 0644), 0);
	p = provider_new(&local_provider_ops, f->cfg, "owner-a", f->state, &err);
	assert_int_equal(provider_start(p, &err), -1);
	assert_non_null(strstr(err.msg, "not an executable"));
	provider_free(p);
}

static void test_socket_path_too_long(void **state)
{
	struct fixture *f = *state;
	char state_dir[200];
	struct provider *p;
	struct pp_err err = { 0 };
	struct instance inst;
	struct create_request req = {
		.sandbox_id = "sid", .pod_name = "pod", .pod_namespace = "default",
		.instance_name = "podvm-a-very-long-pod-name-that-fills-the-socket-path-12345678",
		.user_data = USER_DATA, .user_data_len = strlen(USER_DATA),
	};

	snprintf(state_dir, sizeof(state_dir), "%s/a-rather-long-state-directory-name", f->tmp);
	p = start_provider(f->cfg, "owner-a", state_dir);
	assert_int_equal(local_provider_ops.create_instance(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "unix socket path"));
	provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_runs_the_sandbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_kills_and_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_by_name_or_id_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ips_unique_and_persisted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instance_survives_its_creator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_mock_agent_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_with_busy_port_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_data_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwarder_args_from_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_binary_fails_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_path_too_long, setup, teardown),
	};

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
