/*
 * The test tools tested: the shim library against an in-process hypervisor server (what the
 * adaptor receives from it), the real mock-agent binary through the library (what a shim gets
 * back, what the agent records), and the shim-client command line (exit codes, chaining).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/fileutil.h"
#include "lib/loop.h"
#include "lib/ttrpc.h"
#include "proto/hypervisor.pb-c.h"
#include "tests/tools/mock_agent/mock_pattern.h"
#include "tests/tools/shim_client/shim_lib.h"

#define STDOUT_LIMIT 100000
#define SEC (1000LL * 1000 * 1000)

struct agent_fixture {
	char dir[64];
	char sock[128];
	char record[128];
	pid_t pid;
};

static int wait_for_socket(const char *path)
{
	for (int i = 0; i < 300; i++) {
		int fd = ttrpc_sync_dial_unix(path, NULL);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

static int agent_setup(void **state)
{
	struct agent_fixture *f = calloc(1, sizeof(*f));
	char limit[32];

	snprintf(f->dir, sizeof(f->dir), "/tmp/pps.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	snprintf(f->record, sizeof(f->record), "%s/calls.jsonl", f->dir);
	snprintf(limit, sizeof(limit), "%d", STDOUT_LIMIT);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		execl(MOCK_AGENT_BIN, "mock-agent", "--socket", f->sock, "--record", f->record,
		      "--stdout-bytes", limit, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(wait_for_socket(f->sock), 0);
	*state = f;
	return 0;
}

static int agent_stop(struct agent_fixture *f)
{
	int status = -1;

	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, &status, 0);
		f->pid = 0;
	}
	return status;
}

static int agent_teardown(void **state)
{
	struct agent_fixture *f = *state;

	agent_stop(f);
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static void conn_open(struct shim_conn *c, const char *path, bool per_call)
{
	struct pp_err err = { 0 };

	if (shim_conn_open(c, path, per_call, &err) < 0)
		fail_msg("open %s: %s", path, err.msg);
}

/* The last line of the record file, parsed. */
static json_t *last_record(const struct agent_fixture *f)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *line;
	json_t *j;

	assert_int_equal(file_read_all(f->record, 1 << 20, &data, &len, NULL), 0);
	assert_true(len > 0 && data[len - 1] == '\n');
	data[len - 1] = '\0';
	line = strrchr((char *)data, '\n');
	j = json_loads(line ? line + 1 : (char *)data, 0, NULL);
	free(data);
	assert_non_null(j);
	return j;
}

/* ---- mock-agent through the library ---- */

static void test_agent_health_and_details(void **state)
{
	struct agent_fixture *f = *state;
	struct pp_err err = { 0 };
	struct shim_conn c;
	char version[128];
	int status = 0;

	conn_open(&c, f->sock, true);
	assert_int_equal(shim_agent_health(&c, 5 * SEC, &status, &err), 0);
	assert_int_equal(status, 1);
	assert_int_equal(shim_agent_guest_details(&c, 5 * SEC, version, sizeof(version), &err), 0);
	assert_true(strncmp(version, "mock-agent-", 11) == 0);
	assert_int_equal(c.fd, -1);   /* per call: nothing kept open */
	shim_conn_close(&c);
}

static void test_create_container_recorded(void **state)
{
	struct agent_fixture *f = *state;
	const char *anns[] = { "io.kubernetes.cri.sandbox-uid=uid-1", "empty=" };
	const char *mounts[] = { "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/v/mount:/data",
				 "tmpfs:/tmp:tmpfs" };
	const char *nss[] = { "network:/var/run/netns/cni-1", "pid" };
	struct shim_container_args a = {
		.container_id = "ctr-1", .annotations = anns, .n_annotations = 2, .mounts = mounts,
		.n_mounts = 2, .namespaces = nss, .n_namespaces = 2, .timeout_ns = 5 * SEC,
	};
	struct pp_err err = { 0 };
	struct shim_conn c;
	json_t *j, *oci, *m0, *n0;

	conn_open(&c, f->sock, false);
	assert_int_equal(shim_agent_create_container(&c, &a, &err), 0);
	shim_conn_close(&c);

	j = last_record(f);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "CreateContainer");
	assert_string_equal(json_string_value(json_object_get(j, "container_id")), "ctr-1");
	oci = json_object_get(j, "oci");
	assert_string_equal(json_string_value(json_object_get(json_object_get(oci, "annotations"),
							      "io.kubernetes.cri.sandbox-uid")), "uid-1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(oci, "annotations"),
							      "empty")), "");
	assert_int_equal(json_array_size(json_object_get(oci, "mounts")), 2);
	m0 = json_array_get(json_object_get(oci, "mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m0, "destination")), "/data");
	assert_string_equal(json_string_value(json_object_get(m0, "type")), "bind");
	n0 = json_array_get(json_object_get(oci, "namespaces"), 0);
	assert_string_equal(json_string_value(json_object_get(n0, "type")), "network");
	assert_string_equal(json_string_value(json_object_get(n0, "path")), "/var/run/netns/cni-1");
	json_decref(j);

	/* a malformed flag-string is refused before anything is sent */
	mounts[0] = "no-destination";
	assert_int_equal(shim_agent_create_container(&c, &a, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

static void test_create_sandbox_records_dns(void **state)
{
	struct agent_fixture *f = *state;
	const char *dns[] = { "nameserver 10.96.0.10", "search default.svc.cluster.local" };
	struct pp_err err = { 0 };
	struct shim_conn c;
	json_t *j;

	conn_open(&c, f->sock, true);
	assert_int_equal(shim_agent_create_sandbox(&c, "sb-1", dns, 2, 5 * SEC, &err), 0);
	j = last_record(f);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "CreateSandbox");
	assert_string_equal(json_string_value(json_object_get(j, "sandbox_id")), "sb-1");
	assert_int_equal(json_array_size(json_object_get(j, "dns")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "dns"), 1)),
			    "search default.svc.cluster.local");
	json_decref(j);
}

struct waiter {
	const char *sock;
	const char *cid, *eid;
	int64_t timeout_ns;
	int rc, status, code;
	volatile int done;
};

static void *waiter_run(void *arg)
{
	struct waiter *w = arg;
	struct pp_err err = { 0 };
	struct shim_conn c;

	conn_open(&c, w->sock, false);
	w->rc = shim_agent_wait(&c, w->cid, w->eid, w->timeout_ns, &w->status, &err);
	w->code = err.code;
	shim_conn_close(&c);
	w->done = 1;
	return NULL;
}

static void test_wait_until_signal(void **state)
{
	struct agent_fixture *f = *state;
	struct waiter w = { .sock = f->sock, .cid = "ctr-w", .eid = "exec-1", .timeout_ns = 10 * SEC };
	struct pp_err err = { 0 };
	struct shim_conn c;
	pthread_t t;
	int status = 0;

	assert_int_equal(pthread_create(&t, NULL, waiter_run, &w), 0);
	usleep(200000);
	assert_false(w.done);   /* held, and the agent still answers others meanwhile */
	conn_open(&c, f->sock, false);
	assert_int_equal(shim_agent_health(&c, 5 * SEC, &status, &err), 0);
	/* a signal to another process does not release it */
	assert_int_equal(shim_agent_signal(&c, "ctr-other", "", 9, 5 * SEC, &err), 0);
	usleep(100000);
	assert_false(w.done);
	/* a signal to the whole container does */
	assert_int_equal(shim_agent_signal(&c, "ctr-w", "", 15, 5 * SEC, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.status, 128 + 15);
	/* waiting for an exited process answers at once */
	assert_int_equal(shim_agent_wait(&c, "ctr-w", "exec-1", 5 * SEC, &status, &err), 0);
	assert_int_equal(status, 128 + 15);
	shim_conn_close(&c);
}

static void test_wait_gives_up_at_deadline(void **state)
{
	struct agent_fixture *f = *state;
	struct pp_err err = { 0 };
	struct shim_conn c;
	int status = 0;

	conn_open(&c, f->sock, false);
	assert_int_equal(shim_agent_wait(&c, "ctr-d", "e", SEC / 5, &status, &err), -1);
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	shim_conn_close(&c);
	/* the agent dropped the held call and still serves */
	conn_open(&c, f->sock, true);
	assert_int_equal(shim_agent_health(&c, 5 * SEC, &status, &err), 0);
	shim_conn_close(&c);
}

static void test_read_stdout_until_eof(void **state)
{
	struct agent_fixture *f = *state;
	struct pp_err err = { 0 };
	struct shim_conn c;
	uint64_t total = 0;

	conn_open(&c, f->sock, false);
	for (;;) {
		uint8_t *data = NULL;
		size_t n = 0;

		if (shim_agent_read_stdout(&c, "ctr-r", "e", 32768, 5 * SEC, &data, &n, &err) < 0)
			break;
		assert_true(n > 0 && n <= 32768);
		assert_int_equal(mock_pattern_check(data, n, total), n);
		total += n;
		free(data);
	}
	assert_int_equal(err.code, PP_OUT_OF_RANGE);
	assert_int_equal(total, STDOUT_LIMIT);
	shim_conn_close(&c);
}

static void test_other_methods(void **state)
{
	struct agent_fixture *f = *state;
	struct pp_err err = { 0 };
	struct shim_conn c;
	uint8_t *reply = NULL;
	size_t len = 99;

	conn_open(&c, f->sock, false);
	assert_int_equal(shim_call(&c, "grpc.AgentService", "SomeFutureMethod", NULL, 0, 5 * SEC, &reply,
				   &len, &err), 0);
	assert_int_equal(len, 0);
	free(reply);
	assert_int_equal(shim_call(&c, "grpc.Unknown", "Check", NULL, 0, 5 * SEC, &reply, &len, &err), -1);
	assert_int_equal(err.code, PP_UNIMPLEMENTED);
	shim_conn_close(&c);
}

static void test_sigterm_answers_held_calls_and_cleans_up(void **state)
{
	struct agent_fixture *f = *state;
	struct waiter w = { .sock = f->sock, .cid = "ctr-s", .eid = "e", .timeout_ns = 10 * SEC };
	pthread_t t;
	int status;

	assert_int_equal(pthread_create(&t, NULL, waiter_run, &w), 0);
	usleep(200000);
	status = agent_stop(f);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, -1);
	assert_int_equal(w.code, PP_UNAVAILABLE);   /* answered at shutdown, not timed out */
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(access(f->sock, F_OK), -1);
}

/* ---- the hypervisor side, against an in-process server ---- */

struct hv_server {
	struct loop *loop;
	struct ttrpc_server *srv;
	pthread_t thread;
	char dir[64], sock[128];
	/* what the handlers saw (read after the client got its answer) */
	char id[128], netns[128];
	size_t n_ann;
	char ann[16][2][128];
	int64_t start_timeout_ns;
	unsigned calls;
};

static void hv_create(struct ttrpc_call *call, void *arg)
{
	struct hv_server *s = arg;
	Hypervisor__CreateVMResponse resp = HYPERVISOR__CREATE_VMRESPONSE__INIT;
	Hypervisor__CreateVMRequest *req;
	const uint8_t *data;
	uint8_t out[256];
	size_t len;

	data = ttrpc_call_payload(call, &len);
	req = hypervisor__create_vmrequest__unpack(NULL, len, data);
	if (!req) {
		ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "bad CreateVM");
		return;
	}
	s->calls++;
	snprintf(s->id, sizeof(s->id), "%s", req->id);
	snprintf(s->netns, sizeof(s->netns), "%s", req->networknamespacepath);
	s->n_ann = req->n_annotations;
	for (size_t i = 0; i < req->n_annotations && i < 16; i++) {
		snprintf(s->ann[i][0], sizeof(s->ann[i][0]), "%s", req->annotations[i]->key);
		snprintf(s->ann[i][1], sizeof(s->ann[i][1]), "%s", req->annotations[i]->value);
	}
	hypervisor__create_vmrequest__free_unpacked(req, NULL);
	resp.agentsocketpath = "/run/peerpod/pods/x/agent.ttrpc";
	len = hypervisor__create_vmresponse__pack(&resp, out);
	ttrpc_call_reply(call, out, len);
}

static void hv_start(struct ttrpc_call *call, void *arg)
{
	struct hv_server *s = arg;

	s->calls++;
	s->start_timeout_ns = ttrpc_call_timeout_ns(call);
	ttrpc_call_reply(call, NULL, 0);
}

static void hv_stop(struct ttrpc_call *call, void *arg)
{
	struct hv_server *s = arg;

	s->calls++;
	ttrpc_call_reply_error(call, PP_NOT_FOUND, "sandbox %s not found", "nope");
}

static void *hv_run(void *arg)
{
	loop_run(((struct hv_server *)arg)->loop);
	return NULL;
}

static const char *hv_ann(const struct hv_server *s, const char *key)
{
	for (size_t i = 0; i < s->n_ann && i < 16; i++)
		if (strcmp(s->ann[i][0], key) == 0)
			return s->ann[i][1];
	return NULL;
}

static int hv_setup(void **state)
{
	struct hv_server *s = calloc(1, sizeof(*s));
	struct pp_err err = { 0 };

	snprintf(s->dir, sizeof(s->dir), "/tmp/pph.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->sock, sizeof(s->sock), "%s/hv.sock", s->dir);
	s->loop = loop_new(&err);
	assert_non_null(s->loop);
	s->srv = ttrpc_server_new(s->loop, &err);
	assert_non_null(s->srv);
	assert_int_equal(ttrpc_server_register(s->srv, "hypervisor.Hypervisor", "CreateVM", hv_create, s), 0);
	assert_int_equal(ttrpc_server_register(s->srv, "hypervisor.Hypervisor", "StartVM", hv_start, s), 0);
	assert_int_equal(ttrpc_server_register(s->srv, "hypervisor.Hypervisor", "StopVM", hv_stop, s), 0);
	assert_int_equal(ttrpc_server_listen_unix(s->srv, s->sock, &err), 0);
	assert_int_equal(pthread_create(&s->thread, NULL, hv_run, s), 0);
	*state = s;
	return 0;
}

static int hv_teardown(void **state)
{
	struct hv_server *s = *state;

	loop_stop(s->loop);
	pthread_join(s->thread, NULL);
	ttrpc_server_free(s->srv);
	loop_free(s->loop);
	rm_rf(s->dir, NULL);
	free(s);
	return 0;
}

static void hv_lifecycle(struct hv_server *s, bool per_call)
{
	const char *extra[] = { "io.katacontainers.config.hypervisor.default_vcpus=2", "x.y/z=1" };
	struct shim_create_args a = {
		.sandbox_id = "sid-123", .pod_name = "web", .pod_namespace = "prod",
		.netns = "/var/run/netns/cni-9", .annotations = extra, .n_annotations = 2,
	};
	struct pp_err err = { 0 };
	struct shim_conn c;
	char sock[256];

	conn_open(&c, s->sock, per_call);
	assert_int_equal(shim_create_vm(&c, &a, sock, sizeof(sock), &err), 0);
	assert_string_equal(sock, "/run/peerpod/pods/x/agent.ttrpc");
	assert_string_equal(s->id, "sid-123");
	assert_string_equal(s->netns, "/var/run/netns/cni-9");
	assert_int_equal(s->n_ann, 10);   /* the nine, one replaced, one added */
	assert_string_equal(hv_ann(s, SHIM_ANN_SANDBOX_NAME), "web");
	assert_string_equal(hv_ann(s, SHIM_ANN_SANDBOX_NAMESPACE), "prod");
	assert_string_equal(hv_ann(s, SHIM_ANN_VCPUS), "2");
	assert_string_equal(hv_ann(s, SHIM_ANN_MEMORY), "0");
	assert_string_equal(hv_ann(s, SHIM_ANN_GPUS), "0");
	assert_string_equal(hv_ann(s, SHIM_ANN_INITDATA), "");
	assert_string_equal(hv_ann(s, SHIM_ANN_MACHINE_TYPE), "");
	assert_string_equal(hv_ann(s, SHIM_ANN_IMAGE), "");
	assert_string_equal(hv_ann(s, SHIM_ANN_GPU_MODEL), "");
	assert_string_equal(hv_ann(s, "x.y/z"), "1");

	assert_int_equal(shim_start_vm(&c, "sid-123", SHIM_START_TIMEOUT_NS, &err), 0);
	assert_int_equal(s->start_timeout_ns, SHIM_START_TIMEOUT_NS);
	assert_int_equal(shim_stop_vm(&c, "sid-123", 0, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_string_equal(err.msg, "sandbox nope not found");
	assert_true(per_call ? c.fd == -1 : c.fd >= 0);
	shim_conn_close(&c);
}

static void test_hypervisor_per_call(void **state)
{
	hv_lifecycle(*state, true);
}

static void test_hypervisor_one_connection(void **state)
{
	hv_lifecycle(*state, false);
}

static void test_bad_annotation_refused(void **state)
{
	struct hv_server *s = *state;
	const char *extra[] = { "novalue" };
	struct shim_create_args a = { .sandbox_id = "sid", .annotations = extra, .n_annotations = 1 };
	struct pp_err err = { 0 };
	struct shim_conn c;
	char sock[256];

	conn_open(&c, s->sock, true);
	assert_int_equal(shim_create_vm(&c, &a, sock, sizeof(sock), &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(s->calls, 0);
	shim_conn_close(&c);
}

/* ---- the command line ---- */

static int run_cli(const char *args, const char *out)
{
	char cmd[1024];
	int status;

	snprintf(cmd, sizeof(cmd), "%s %s >%s 2>&1", SHIM_CLIENT_BIN, args, out);
	status = system(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define SCRIPT "# a comment\nhealth\n\ncall -service grpc.AgentService -method StatsContainer\n"

static void test_cli(void **state)
{
	struct agent_fixture *f = *state;
	char args[512], out[128], script[128];
	uint8_t *text = NULL;
	size_t len;

	snprintf(out, sizeof(out), "%s/out.txt", f->dir);
	snprintf(args, sizeof(args), "agent -socket %s -timeout 5s health then create-container "
		 "-container-id c9 -annotation a=b then read-stdout -container-id c9", f->sock);
	assert_int_equal(run_cli(args, out), 0);
	assert_int_equal(file_read_all(out, 65536, &text, &len, NULL), 0);
	assert_string_equal((char *)text, "health ok status=SERVING\ncreate-container ok container=c9\n"
			    "read-stdout ok bytes=100000 eof=true\n");
	free(text);

	snprintf(script, sizeof(script), "%s/script", f->dir);
	assert_int_equal(file_write_atomic(script, SCRIPT, strlen(SCRIPT), 0644, NULL), 0);
	snprintf(args, sizeof(args), "-socket %s -one-connection -script %s", f->sock, script);
	assert_int_equal(run_cli(args, out), 0);
	assert_int_equal(file_read_all(out, 65536, &text, &len, NULL), 0);
	assert_non_null(strstr((char *)text, "call ok method=grpc.AgentService/StatsContainer bytes=0\n"));
	free(text);

	snprintf(args, sizeof(args), "-socket %s call -service nope.Svc -method X", f->sock);
	assert_int_equal(run_cli(args, out), 1);
	assert_int_equal(file_read_all(out, 65536, &text, &len, NULL), 0);
	assert_non_null(strstr((char *)text, "error code=UNIMPLEMENTED"));
	free(text);

	snprintf(args, sizeof(args), "-socket %s create-container", f->sock);
	assert_int_equal(run_cli(args, out), 2);   /* missing -container-id */
	snprintf(args, sizeof(args), "-socket %s health -bogus 1", f->sock);
	assert_int_equal(run_cli(args, out), 2);
	snprintf(args, sizeof(args), "-socket %s/missing.sock health", f->dir);
	assert_int_equal(run_cli(args, out), 1);
}

int main(void)
{
	const struct CMUnitTest agent_tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_health_and_details, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_create_container_recorded, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_create_sandbox_records_dns, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_wait_until_signal, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_wait_gives_up_at_deadline, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_read_stdout_until_eof, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_other_methods, agent_setup, agent_teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_answers_held_calls_and_cleans_up, agent_setup,
						agent_teardown),
		cmocka_unit_test_setup_teardown(test_cli, agent_setup, agent_teardown),
	};
	const struct CMUnitTest hv_tests[] = {
		cmocka_unit_test_setup_teardown(test_hypervisor_per_call, hv_setup, hv_teardown),
		cmocka_unit_test_setup_teardown(test_hypervisor_one_connection, hv_setup, hv_teardown),
		cmocka_unit_test_setup_teardown(test_bad_annotation_refused, hv_setup, hv_teardown),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("mock-agent and shim-client", agent_tests, NULL, NULL);
	rc |= cmocka_run_group_tests_name("shim library, hypervisor side", hv_tests, NULL, NULL);
	return rc;
}
