/*
 * The Kubernetes client (adaptor/k8s_client.c, k8s_node.c, k8s_peerpod.c, k8s_pullsecrets.c)
 * against the strict fake API server (tests/fakes/k8s/fake_apiserver.py), which refuses any
 * path, verb, content type, body or token that is not what the daemon should send, and records
 * it; every test ends by asserting that nothing unexpected arrived.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adaptor/k8s_client.h"
#include "adaptor/k8s_ops.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/http.h"
#include "lib/util.h"

#define TOKEN "test-token-1234"

struct fixture {
	pid_t pid;
	int port;
	char dir[64];
	char kubeconfig[128];
	struct http_client *ctl;    /* control requests (/_fake/...) */
	struct k8s_client *c;
};

static struct fixture F;

static void fake_start(void)
{
	const char *src = getenv("PP_SOURCE_DIR");
	char script[512];
	int fds[2];
	FILE *f;
	char line[64] = "";

	assert_non_null(src);
	snprintf(script, sizeof(script), "%s/tests/fakes/k8s/fake_apiserver.py", src);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	F.pid = fork();
	assert_true(F.pid >= 0);
	if (F.pid == 0) {
		dup2(fds[1], 1);
		execlp("python3", "python3", script, "--token", TOKEN, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(sscanf(line, "port=%d", &F.port), 1);
}

static void write_file(const char *path, const char *text)
{
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600, NULL), 0);
}

static void write_kubeconfig(const char *path, const char *user_yaml)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
		 "clusters:\n- name: other\n  cluster:\n    server: http://127.0.0.1:1\n"
		 "- name: fake\n  cluster:\n    server: http://127.0.0.1:%d/\n"
		 "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: u\n    namespace: caa\n"
		 "users:\n- name: u\n  user:\n%s",
		 F.port, user_yaml);
	write_file(path, text);
}

static int ctl(enum http_method m, const char *path, const char *body, json_t **ret)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct http_request req = { .op = "ctl", .method = m, .body = body,
				    .body_len = body ? strlen(body) : 0,
				    .content_type = body ? "application/json" : NULL };
	char url[256];
	int rc;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", F.port, path);
	req.url = url;
	rc = http_do(F.ctl, &req, &r, NULL);
	if (rc == 0 && ret)
		*ret = json_loads(http_response_text(&r), 0, NULL);
	http_response_free(&r);
	return rc;
}

static json_t *fake_state(void)
{
	json_t *st = NULL;

	assert_int_equal(ctl(HTTP_GET, "/_fake/state", NULL, &st), 0);
	assert_non_null(st);
	return st;
}

static void assert_nothing_unexpected(void)
{
	json_t *st = fake_state();
	json_t *u = json_object_get(st, "unexpected");

	if (json_array_size(u)) {
		char *s = json_dumps(u, JSON_INDENT(1));

		fprintf(stderr, "unexpected requests: %s\n", s);
		free(s);
	}
	assert_int_equal(json_array_size(u), 0);
	json_decref(st);
}

static char *b64(const char *s)
{
	return base64_encode(s, strlen(s));
}

static int setup(void **state)
{
	struct http_client_config hc = { .name = "ctl", .max_attempts = 1 };
	char path[256];
	struct pp_err err = { 0 };
	char *dockercfg, *dockercfg_old, *objects;

	(void)state;
	memset(&F, 0, sizeof(F));
	fake_start();
	F.ctl = http_client_new(&hc, NULL);
	snprintf(F.dir, sizeof(F.dir), "/tmp/ppk8s.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.kubeconfig, sizeof(F.kubeconfig), "%s/kubeconfig", F.dir);
	write_kubeconfig(F.kubeconfig, "    token: " TOKEN "\n");
	snprintf(path, sizeof(path), "%s/scratch", F.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	F.c = k8s_client_new_kubeconfig(F.kubeconfig, path, &err);
	if (!F.c)
		fail_msg("%s", err.msg);
	dockercfg = b64("{\"auths\":{\"quay.io\":{\"auth\":\"cXVheTpwdw==\",\"email\":\"x@y\"}}}");
	dockercfg_old = b64("{\"registry.local\":{\"username\":\"u\",\"password\":\"p\"}}");
	objects = pp_xmalloc(8192);
	snprintf(objects, 8192,
		 "{\"nodes\":[{\"metadata\":{\"name\":\"node-a\"},\"status\":{\"capacity\":{}}}],"
		 "\"pods\":[{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"uid-web\"},"
		 "  \"spec\":{\"nodeName\":\"node-a\",\"runtimeClassName\":\"kata-remote\",\"serviceAccountName\":\"builder\","
		 "   \"imagePullSecrets\":[{\"name\":\"old\"},{\"name\":\"missing\"}]},"
		 "  \"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"2030-01-01T00:00:00Z\"}]}},"
		 " {\"metadata\":{\"name\":\"plain\",\"namespace\":\"default\",\"uid\":\"uid-plain\"},\"spec\":{\"nodeName\":\"node-b\"}}],"
		 "\"serviceaccounts\":[{\"metadata\":{\"name\":\"builder\",\"namespace\":\"default\"},"
		 "  \"imagePullSecrets\":[{\"name\":\"quay\"}]}],"
		 "\"secrets\":[{\"metadata\":{\"name\":\"quay\",\"namespace\":\"default\"},\"type\":\"kubernetes.io/dockerconfigjson\","
		 "  \"data\":{\".dockerconfigjson\":\"%s\"}},"
		 " {\"metadata\":{\"name\":\"old\",\"namespace\":\"default\"},\"type\":\"kubernetes.io/dockercfg\","
		 "  \"data\":{\".dockercfg\":\"%s\"}}]}",
		 dockercfg, dockercfg_old);
	assert_int_equal(ctl(HTTP_POST, "/_fake/objects", objects, NULL), 0);
	free(objects);
	free(dockercfg);
	free(dockercfg_old);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	int rc;

	(void)state;
	k8s_client_free(F.c);
	http_client_free(F.ctl);
	kill(F.pid, SIGTERM);
	waitpid(F.pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
	rc = system(cmd);
	(void)rc;
	return 0;
}

/* ------------------------------------------------------------------ kubeconfig */

static void test_kubeconfig_fields(void **state)
{
	(void)state;
	assert_string_equal(k8s_client_namespace(F.c), "caa");
	assert_true(str_has_suffix(k8s_client_server(F.c), "/") == false);
}

static void test_kubeconfig_refuses(void **state)
{
	char path[256], scratch[256];
	struct pp_err err = { 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/bad", F.dir);
	snprintf(scratch, sizeof(scratch), "%s/scratch", F.dir);
	write_kubeconfig(path, "    exec:\n      command: aws\n");
	assert_null(k8s_client_new_kubeconfig(path, scratch, &err));
	assert_int_equal(err.code, PP_UNIMPLEMENTED);
	assert_non_null(strstr(err.msg, "exec"));

	write_file(path, "apiVersion: v1\nclusters: []\n");
	assert_null(k8s_client_new_kubeconfig(path, scratch, &err));
	assert_non_null(strstr(err.msg, "current-context"));

	write_file(path, "current-context: [unclosed\n");
	assert_null(k8s_client_new_kubeconfig(path, scratch, &err));
	assert_non_null(strstr(err.msg, "not valid YAML"));

	assert_null(k8s_client_new_kubeconfig("/nonexistent/kubeconfig", scratch, &err));
}

static void test_incluster_needs_env(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_null(k8s_client_new_incluster(F.dir, &err));
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
}

/* ------------------------------------------------------------------ node */

static void test_node_advertise_and_withdraw(void **state)
{
	struct pp_err err = { 0 };
	bool owner = false, removed = true;
	json_t *st, *node;

	(void)state;
	assert_int_equal(k8s_node_advertise(F.c, "node-a", "uid-new", 7, &err), 0);
	st = fake_state();
	node = json_object_get(json_object_get(st, "nodes"), "node-a");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(node, "status"), "capacity"),
							      K8S_RESOURCE_VM)), "7");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(node, "metadata"), "annotations"),
							      K8S_ANNOT_OWNER)), "uid-new");
	json_decref(st);

	/* The old daemon of a rolling update is not the owner: it leaves the resource. */
	assert_int_equal(k8s_node_is_owner(F.c, "node-a", "uid-old", &owner, &err), 0);
	assert_false(owner);
	assert_int_equal(k8s_node_withdraw(F.c, "node-a", "uid-old", &removed, &err), 0);
	assert_false(removed);
	assert_int_equal(k8s_node_withdraw(F.c, "node-a", "uid-new", &removed, &err), 0);
	assert_true(removed);
	st = fake_state();
	node = json_object_get(json_object_get(st, "nodes"), "node-a");
	assert_null(json_object_get(json_object_get(json_object_get(node, "status"), "capacity"), K8S_RESOURCE_VM));
	json_decref(st);

	/* A node that does not exist: the API's own message comes back. */
	assert_int_equal(k8s_node_advertise(F.c, "node-zz", "", 1, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "HTTP 404"));
	assert_non_null(strstr(err.msg, "nodes \"node-zz\" not found"));
	/* Names that are not valid never reach the server. */
	assert_int_equal(k8s_node_advertise(F.c, "../etc", "", 1, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_nothing_unexpected();
}

static void test_node_retries_5xx(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(ctl(HTTP_POST, "/_fake/fail",
			     "{\"method\":\"PATCH\",\"path_prefix\":\"/api/v1/nodes/node-a/status\",\"status\":503,\"times\":1}",
			     NULL), 0);
	assert_int_equal(k8s_node_advertise(F.c, "node-a", "", 3, &err), 0);
	assert_int_equal(ctl(HTTP_POST, "/_fake/fail",
			     "{\"method\":\"PATCH\",\"path_prefix\":\"/api/v1/nodes/node-a/status\",\"status\":403,\"times\":1}",
			     NULL), 0);
	assert_int_equal(k8s_node_advertise(F.c, "node-a", "", 3, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_nothing_unexpected();
}

/* ------------------------------------------------------------------ PeerPod */

static void test_peerpod_create_release(void **state)
{
	struct pp_err err = { 0 };
	char name[K8S_PEERPOD_NAME_MAX + 1];
	json_t *st, *pp;
	const char *sid = "ABCDEF0123456789";

	(void)state;
	assert_int_equal(k8s_peerpod_name("web", sid, name, sizeof(name), &err), 0);
	assert_string_equal(name, "web-resource-abcde");
	assert_int_equal(k8s_peerpod_create(F.c, "default", "web", sid, "aws", "i-0123", &err), 0);
	/* Again (a restarted daemon): 409 is success. */
	assert_int_equal(k8s_peerpod_create(F.c, "default", "web", sid, "aws", "i-0123", &err), 0);
	st = fake_state();
	pp = json_object_get(json_object_get(st, "peerpods"), "default/web-resource-abcde");
	assert_non_null(pp);
	assert_string_equal(json_string_value(json_object_get(json_object_get(pp, "spec"), "instanceID")), "i-0123");
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(pp, "metadata"),
									   "finalizers"), 0)), K8S_PEERPOD_FINALIZER);
	json_decref(st);

	assert_int_equal(k8s_peerpod_release(F.c, "default", "web", sid, &err), 0);
	st = fake_state();
	pp = json_object_get(json_object_get(st, "peerpods"), "default/web-resource-abcde");
	assert_null(json_object_get(json_object_get(pp, "metadata"), "finalizers"));
	json_decref(st);
	/* A PeerPod that is gone is released already. */
	assert_int_equal(k8s_peerpod_release(F.c, "default", "gone", sid, &err), 0);

	/* No pod: no PeerPod, and the error says why. */
	assert_int_equal(k8s_peerpod_create(F.c, "default", "nopod", sid, "aws", "i-1", &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "GetPod"));
	assert_nothing_unexpected();
}

/* ------------------------------------------------------------------ pull secrets */

static void test_pull_secrets(void **state)
{
	struct pp_err err = { 0 };
	char *auth = NULL;
	json_t *j, *auths;

	(void)state;
	assert_int_equal(k8s_pull_secrets_auth_json(F.c, "default", "web", &auth, &err), 0);
	assert_non_null(auth);
	j = json_loads(auth, 0, NULL);
	auths = json_object_get(j, "auths");
	assert_int_equal(json_object_size(auths), 2);
	/* Only "auth" is kept; username/password become base64("u:p"). */
	assert_int_equal(json_object_size(json_object_get(auths, "quay.io")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(auths, "quay.io"), "auth")), "cXVheTpwdw==");
	assert_string_equal(json_string_value(json_object_get(json_object_get(auths, "registry.local"), "auth")), "dTpw");
	json_decref(j);
	free(auth);

	/* No secrets (its "default" service account does not exist either): no auth.json. */
	assert_int_equal(k8s_pull_secrets_auth_json(F.c, "default", "plain", &auth, &err), 0);
	assert_null(auth);
	assert_nothing_unexpected();
}

static void test_pull_secret_merge_rejects(void **state)
{
	struct pp_err err = { 0 };
	json_t *auths = json_object();
	json_t *secret = json_pack("{s:{s:s}}", "data", ".dockerconfigjson", "!!!notbase64");

	(void)state;
	assert_int_equal(k8s_pull_secret_merge(auths, secret, &err), -1);
	json_decref(secret);
	secret = json_pack("{s:{s:s}}", "data", "other", "e30=");
	assert_int_equal(k8s_pull_secret_merge(auths, secret, &err), -1);
	assert_int_equal(json_object_size(auths), 0);
	json_decref(secret);
	json_decref(auths);
}

/* ------------------------------------------------------------------ probe */

static void test_peer_pods_ready(void **state)
{
	struct pp_err err = { 0 };
	bool ready = false;

	(void)state;
	/* web became Ready in 2030: after a start in 2020, not after one in 2031. */
	assert_int_equal(k8s_node_peer_pods_ready(F.c, "node-a", "kata-remote", 1577836800, &ready, &err), 0);
	assert_true(ready);
	assert_int_equal(k8s_node_peer_pods_ready(F.c, "node-a", "kata-remote", 1924992000 + 86400, &ready, &err), 0);
	assert_false(ready);
	/* Pods of another runtime class do not count. */
	assert_int_equal(k8s_node_peer_pods_ready(F.c, "node-a", "other", 1924992000 + 86400, &ready, &err), 0);
	assert_true(ready);
	assert_nothing_unexpected();
}

/* ------------------------------------------------------------------ tokens */

static void test_token_file_rotation(void **state)
{
	char kc[256], tok[256], scratch[256];
	struct pp_err err = { 0 };
	struct k8s_client *c;
	bool owner;

	(void)state;
	snprintf(kc, sizeof(kc), "%s/kc-tokenfile", F.dir);
	snprintf(tok, sizeof(tok), "%s/token", F.dir);
	snprintf(scratch, sizeof(scratch), "%s/scratch", F.dir);
	write_file(tok, "expired-token\n");
	write_kubeconfig(kc, "    tokenFile: token\n");   /* relative to the kubeconfig */
	c = k8s_client_new_kubeconfig(kc, scratch, &err);
	assert_non_null(c);
	assert_int_equal(k8s_node_is_owner(c, "node-a", "x", &owner, &err), -1);
	assert_int_equal(err.code, PP_UNAUTHENTICATED);
	assert_non_null(strstr(err.msg, "HTTP 401"));
	assert_null(strstr(err.msg, "expired-token"));
	write_file(tok, TOKEN "\n");   /* kubelet rotated it */
	assert_int_equal(k8s_node_is_owner(c, "node-a", "x", &owner, &err), 0);
	k8s_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig_fields),
		cmocka_unit_test(test_kubeconfig_refuses),
		cmocka_unit_test(test_incluster_needs_env),
		cmocka_unit_test(test_node_advertise_and_withdraw),
		cmocka_unit_test(test_node_retries_5xx),
		cmocka_unit_test(test_peerpod_create_release),
		cmocka_unit_test(test_pull_secrets),
		cmocka_unit_test(test_pull_secret_merge_rejects),
		cmocka_unit_test(test_peer_pods_ready),
		cmocka_unit_test(test_token_file_rotation),
	};

	if (http_global_init(NULL) < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
