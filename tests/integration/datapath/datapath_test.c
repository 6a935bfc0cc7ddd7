/*
 * The agent data path end to end, with the real binaries and real mutual TLS on loopback:
 *
 *   this test (shim side, blocking ttRPC) -> agent proxy (adaptor/proxy.c, in this process's
 *   event loop thread) ==mTLS/TCP==> agent-protocol-forwarder ---> mock-agent --record FILE
 *
 * Certificates come from lib/pki exactly as the adaptor makes them (a CA, a server certificate
 * for the instance name, a self-signed client certificate) and reach the forwarder in apf.json
 * rendered by the adaptor's own apf_json_render. What the agent really received is read back
 * from mock-agent's record file.
 *
 * usage: datapath-test FORWARDER_BINARY MOCK_AGENT_BINARY
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "adaptor/apf_json.h"
#include "adaptor/proxy.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/pki.h"
#include "lib/tls.h"
#include "lib/ttrpc.h"
#include "lib/util.h"
#include "proto/agent.pb-c.h"

#define INSTANCE "podvm-datapath-test"
#define POD_NS "/run/netns/podns-test"
#define AGENT_SVC "grpc.AgentService"
#define CALL_TIMEOUT_NS (20LL * 1000000000LL)
#define WAIT_MS 15000
#define CSI_SRC "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv-1/mount"

struct harness {
	const char *fwd_bin, *agent_bin;
	char dir[64];
	char agent_sock[128], record[128], apf[128], notify[128], pods[128], dv[128];
	char port[8];
	pid_t fwd_pid, agent_pid;
	int notify_fd;
	struct pki_identity *ca, *client, *server, *other_ca, *other_client;
	SSL_CTX *client_ctx;       /* the adaptor's: client cert, trusts the CA */
	struct loop *loop;
	pthread_t thread;
	struct agent_proxy *proxy;
	sem_t ready_sem;
	struct pp_err ready_err;
	bool ready_ok;
};

static struct harness H;

static uint16_t port_num(void)
{
	uint32_t v = 0;

	assert_int_equal(parse_uint32(H.port, &v), 0);
	assert_true(v > 0 && v <= 65535);
	return (uint16_t)v;
}

/* ---- processes ---- */

static pid_t spawn(const char *log_name, char *const argv[], bool notify)
{
	char log_path[192];
	pid_t pid;
	int fd;

	snprintf(log_path, sizeof(log_path), "%s/%s.log", H.dir, log_name);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (notify)
			setenv("NOTIFY_SOCKET", H.notify, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int stop_process(pid_t *pid)
{
	int status = -1;

	if (*pid <= 0)
		return 0;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	*pid = 0;
	return status;
}

static bool process_alive(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

static void start_agent(void)
{
	char *argv[] = { (char *)H.agent_bin, (char *)"--socket", H.agent_sock, (char *)"--record",
			 H.record, NULL };
	struct pp_err err = { 0 };
	int i, fd = -1;

	H.agent_pid = spawn("mock-agent", argv, false);
	for (i = 0; i < WAIT_MS / 10 && fd < 0; i++) {
		fd = ttrpc_sync_dial_unix(H.agent_sock, &err);
		if (fd < 0)
			usleep(10000);
	}
	assert_true(fd >= 0);
	close(fd);
}

/* Starts the forwarder on `port` ("0" = ephemeral) and waits for READY=1; H.port is set from
 * the STATUS line. */
static void start_forwarder(const char *port)
{
	char listen[32], buf[512];
	char *argv[] = { (char *)H.fwd_bin, (char *)"-config", H.apf, (char *)"-listen", listen,
			 (char *)"-kata-agent-socket", H.agent_sock, (char *)"-pod-namespace",
			 (char *)POD_NS, NULL };
	struct pollfd pfd = { .fd = H.notify_fd, .events = POLLIN };
	const char *s;
	ssize_t n;

	snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
	H.fwd_pid = spawn("forwarder", argv, true);
	do {   /* skip a previous forwarder's STOPPING=1 */
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		n = recv(H.notify_fd, buf, sizeof(buf) - 1, 0);
		assert_true(n > 0);
		buf[n] = '\0';
	} while (!strstr(buf, "READY=1"));
	s = strstr(buf, "STATUS=listening on 127.0.0.1:");
	assert_non_null(s);
	s += strlen("STATUS=listening on 127.0.0.1:");
	snprintf(H.port, sizeof(H.port), "%.*s", (int)strcspn(s, "\n"), s);
	assert_true(strlen(H.port) > 0);
}

/* ---- certificates and apf.json ---- */

static char *cert_pem(const struct pki_identity *id)
{
	struct pp_err err = { 0 };
	char *pem = pki_cert_to_pem(id->cert, &err);

	assert_non_null(pem);
	return pem;
}

static SSL_CTX *client_ctx_for(const struct pki_identity *id, const struct pki_identity *trust)
{
	struct pp_err err = { 0 };
	char *pem = cert_pem(trust);
	STACK_OF(X509) *anchors = tls_certs_from_pem(pem, &err);
	SSL_CTX *ctx;

	free(pem);
	assert_non_null(anchors);
	ctx = tls_client_ctx_new(NULL, id, anchors, &err);
	tls_certs_free(anchors);
	assert_non_null(ctx);
	return ctx;
}

static void write_apf(void)
{
	struct pki_pem server = { 0 };
	struct apf_config cfg = { .pod_namespace = POD_NS, .pod_name = "pod1",
				  .tls_min_version = "VersionTLS13" };
	struct pp_err err = { 0 };
	char *client_pem = cert_pem(H.client), *text = NULL;

	assert_int_equal(pki_identity_to_pem(H.server, &server, &err), 0);
	cfg.tls_server_cert = server.cert;
	cfg.tls_server_key = server.key;
	cfg.tls_client_ca = client_pem;   /* the forwarder trusts exactly our client cert */
	assert_int_equal(apf_json_render(&cfg, &text, &err), 0);
	assert_int_equal(file_write_atomic(H.apf, text, strlen(text), 0600, &err), 0);
	free(text);
	free(client_pem);
	pki_pem_free(&server);
}

/* ---- the loop thread and the proxy ---- */

static void *loop_main(void *arg)
{
	(void)arg;
	loop_run(H.loop);
	return NULL;
}

struct in_loop {
	void (*fn)(void *);
	void *arg;
	sem_t done;
};

static void in_loop_tramp(void *arg)
{
	struct in_loop *il = arg;

	il->fn(il->arg);
	sem_post(&il->done);
}

static void run_in_loop(void (*fn)(void *), void *arg)
{
	struct in_loop il = { .fn = fn, .arg = arg };

	sem_init(&il.done, 0, 0);
	assert_int_equal(loop_post(H.loop, in_loop_tramp, &il), 0);
	while (sem_wait(&il.done) < 0 && errno == EINTR)
		;
	sem_destroy(&il.done);
}

static void on_proxy_ready(void *arg, const struct pp_err *err)
{
	(void)arg;
	H.ready_ok = !err;
	if (err)
		H.ready_err = *err;
	sem_post(&H.ready_sem);
}

struct proxy_args {
	const char *sid;
	SSL_CTX *ctx;
	uint64_t timeout_ms;
	struct agent_proxy *ret;
	struct pp_err err;
};

static void proxy_start_fn(void *arg)
{
	struct proxy_args *a = arg;
	struct agent_proxy_config cfg = {
		.pods_dir = H.pods,
		.sandbox_id = a->sid,
		.host = "127.0.0.1",
		.port = port_num(),
		.tls = a->ctx,
		.server_name = INSTANCE,
		.timeout_ms = a->timeout_ms,
		.direct_volumes_dir = H.dv,
	};

	a->ret = agent_proxy_start(H.loop, &cfg, on_proxy_ready, NULL, &a->err);
}

static void proxy_stop_fn(void *arg)
{
	agent_proxy_stop(arg);
}

/* Starts a proxy and waits for its ready callback; returns it (stopped already on failure). */
static struct agent_proxy *proxy_start_wait(const char *sid, SSL_CTX *ctx, uint64_t timeout_ms)
{
	struct proxy_args a = { .sid = sid, .ctx = ctx, .timeout_ms = timeout_ms };
	struct timespec ts;

	run_in_loop(proxy_start_fn, &a);
	assert_non_null(a.ret);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (timeout_ms / 1000) + 10;
	assert_int_equal(sem_timedwait(&H.ready_sem, &ts), 0);
	return a.ret;
}

struct stats_args {
	struct agent_proxy *p;
	struct ttrpc_relay_stats st;
};

static void proxy_stats_fn(void *arg)
{
	struct stats_args *a = arg;

	agent_proxy_get_stats(a->p, &a->st);
}

/* ---- calls, as the shim makes them ---- */

static char proxy_sock[192];

static int shim_call(const char *service, const char *method, const uint8_t *payload,
		     size_t len, struct pp_err *err)
{
	uint32_t next = 1;
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int fd, rc;

	fd = ttrpc_sync_dial_unix(proxy_sock, err);
	if (fd < 0)
		return -1;
	rc = ttrpc_sync_call(fd, &next, service, method, payload, len, CALL_TIMEOUT_NS, &resp,
			     &resp_len, err);
	free(resp);
	close(fd);
	return rc;
}

static size_t pack_create_container(uint8_t **out, const char *bind_src, bool gpu)
{
	Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	Grpc__Spec spec = GRPC__SPEC__INIT;
	Grpc__Linux lx = GRPC__LINUX__INIT;
	Grpc__LinuxNamespace pid = GRPC__LINUX_NAMESPACE__INIT;
	Grpc__LinuxNamespace *ns[1] = { &pid };
	Grpc__Mount m[2] = { GRPC__MOUNT__INIT, GRPC__MOUNT__INIT };
	Grpc__Mount *mp[2] = { &m[0], &m[1] };
	Grpc__Spec__AnnotationsEntry e = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
	Grpc__Spec__AnnotationsEntry *ep[1] = { &e };
	size_t len;

	req.container_id = (char *)"ctr1";
	req.oci = &spec;
	pid.type = (char *)"pid";
	lx.namespaces = ns;
	lx.n_namespaces = 1;
	spec.linux_spec = &lx;
	m[0].type = (char *)"bind";
	m[0].source = (char *)bind_src;
	m[0].destination = (char *)"/data";
	m[1].source = (char *)CSI_SRC;
	m[1].destination = (char *)"/csi";
	spec.mounts = mp;
	spec.n_mounts = 2;
	e.key = (char *)ANNOT_DEFAULT_GPUS;
	e.value = (char *)"1";
	if (gpu) {
		spec.annotations = ep;
		spec.n_annotations = 1;
	}
	len = grpc__create_container_request__get_packed_size(&req);
	*out = malloc(len);
	grpc__create_container_request__pack(&req, *out);
	return len;
}

/* The last record line for `method`, parsed (caller decrefs), or NULL. */
static json_t *last_record(const char *method)
{
	struct pp_err err = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	json_t *found = NULL;
	char *line, *save = NULL;

	if (file_read_all(H.record, 16 << 20, &data, &len, &err) < 0)
		return NULL;
	for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "method"));

		if (m && !strcmp(m, method)) {
			json_decref(found);
			found = j;
		} else {
			json_decref(j);
		}
	}
	free(data);
	return found;
}

static unsigned record_lines(void)
{
	struct pp_err err = { 0 };
	uint8_t *data = NULL;
	size_t len = 0, i;
	unsigned n = 0;

	if (file_read_all(H.record, 16 << 20, &data, &len, &err) < 0)
		return 0;
	for (i = 0; i < len; i++)
		n += data[i] == '\n';
	free(data);
	return n;
}

/* ---- raw TLS to the forwarder (for what a proxy would never send) ---- */

struct raw_tls {
	int fd;
	SSL *ssl;
};

/* Returns 0 when the handshake completed, -1 when the client side already refused. */
static int raw_tls_open(struct raw_tls *t, SSL_CTX *ctx)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port_num()),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 10 };

	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t->ssl = SSL_new(ctx);
	assert_non_null(t->ssl);
	SSL_set_fd(t->ssl, t->fd);
	SSL_set_tlsext_host_name(t->ssl, INSTANCE);
	SSL_set1_host(t->ssl, INSTANCE);
	return SSL_connect(t->ssl) == 1 ? 0 : -1;
}

static void raw_tls_close(struct raw_tls *t)
{
	SSL_free(t->ssl);
	close(t->fd);
}

static int raw_tls_write(struct raw_tls *t, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		int n = SSL_write(t->ssl, p, len > (1u << 20) ? (1 << 20) : (int)len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_tls_read(struct raw_tls *t, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		int n = SSL_read(t->ssl, p, (int)len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int raw_frame(struct raw_tls *t, uint32_t id, const uint8_t *data, size_t len)
{
	struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = id,
				  .type = TTRPC_TYPE_REQUEST };
	uint8_t hdr[TTRPC_HEADER_SIZE];

	ttrpc_header_encode(&h, hdr);
	if (raw_tls_write(t, hdr, sizeof(hdr)) < 0)
		return -1;
	return len ? raw_tls_write(t, data, len) : 0;
}

/* Reads one response; returns its status code (or -1 if the connection ended). */
static int raw_response(struct raw_tls *t, uint32_t want_id, char *msg, size_t msg_size)
{
	uint8_t hdr[TTRPC_HEADER_SIZE], *data;
	struct ttrpc_header h;
	struct ttrpc_result res;
	struct pp_err err;
	void *storage = NULL;
	int code;

	if (raw_tls_read(t, hdr, sizeof(hdr)) < 0)
		return -1;
	ttrpc_header_decode(hdr, &h);
	assert_int_equal(h.stream_id, want_id);
	assert_true(h.length <= TTRPC_MAX_DATA);
	data = malloc(h.length + 1);
	assert_int_equal(raw_tls_read(t, data, h.length), 0);
	assert_int_equal(ttrpc_response_decode(data, h.length, &res, &storage, &err), 0);
	code = res.code;
	snprintf(msg, msg_size, "%s", res.message ? res.message : "");
	ttrpc_result_free_storage(storage);
	free(data);
	return code;
}

/* ---- set-up ---- */

static int group_setup(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pp_err err = { 0 };
	char path[256];
	char *b64;

	(void)state;
	snprintf(H.dir, sizeof(H.dir), "/tmp/pp-dp-XXXXXX");
	assert_non_null(mkdtemp(H.dir));
	snprintf(H.agent_sock, sizeof(H.agent_sock), "%s/agent.sock", H.dir);
	snprintf(H.record, sizeof(H.record), "%s/record.jsonl", H.dir);
	snprintf(H.apf, sizeof(H.apf), "%s/apf.json", H.dir);
	snprintf(H.notify, sizeof(H.notify), "%s/notify.sock", H.dir);
	snprintf(H.pods, sizeof(H.pods), "%s/pods", H.dir);
	snprintf(H.dv, sizeof(H.dv), "%s/direct-volumes", H.dir);
	b64 = base64url_encode(CSI_SRC, strlen(CSI_SRC), true);
	snprintf(path, sizeof(path), "%s/%s", H.dv, b64);
	free(b64);
	assert_int_equal(mkdir_p(path, 0700, &err), 0);

	H.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memcpy(sa.sun_path, H.notify, strlen(H.notify) + 1);
	assert_int_equal(bind(H.notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	H.ca = pki_new_ca(&err);
	H.client = pki_new_client(&err);
	assert_non_null(H.ca);
	assert_non_null(H.client);
	H.server = pki_issue_server_cert(H.ca, INSTANCE, &err);
	assert_non_null(H.server);
	H.other_ca = pki_new_ca(&err);
	H.other_client = pki_new_client(&err);
	assert_non_null(H.other_ca);
	assert_non_null(H.other_client);
	H.client_ctx = client_ctx_for(H.client, H.ca);
	write_apf();

	start_agent();
	start_forwarder("0");

	H.loop = loop_new(&err);
	assert_non_null(H.loop);
	sem_init(&H.ready_sem, 0, 0);
	assert_int_equal(pthread_create(&H.thread, NULL, loop_main, NULL), 0);
	H.proxy = proxy_start_wait("sb1", H.client_ctx, 10000);
	assert_true(H.ready_ok);
	snprintf(proxy_sock, sizeof(proxy_sock), "%s/sb1/agent.ttrpc", H.pods);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];
	int st;

	(void)state;
	run_in_loop(proxy_stop_fn, H.proxy);
	loop_stop(H.loop);
	pthread_join(H.thread, NULL);
	loop_free(H.loop);
	st = stop_process(&H.fwd_pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "forwarder ended with status %d (see %s/forwarder.log)\n", st, H.dir);
	stop_process(&H.agent_pid);
	close(H.notify_fd);
	SSL_CTX_free(H.client_ctx);
	pki_identity_free(H.ca);
	pki_identity_free(H.client);
	pki_identity_free(H.server);
	pki_identity_free(H.other_ca);
	pki_identity_free(H.other_client);
	sem_destroy(&H.ready_sem);
	if (getenv("PP_KEEP_TMP"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", H.dir);
	return system(cmd) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- the tests ---- */

static void test_create_sandbox_dns_cleared(void **state)
{
	Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;
	char *dns[1] = { (char *)"nameserver 10.96.0.10" };
	struct pp_err err = { 0 };
	uint8_t buf[512];
	size_t len;
	json_t *rec;

	(void)state;
	req.hostname = (char *)"pod1";
	req.sandbox_id = (char *)"sb1";
	req.dns = dns;
	req.n_dns = 1;
	len = grpc__create_sandbox_request__pack(&req, buf);
	assert_int_equal(shim_call(AGENT_SVC, "CreateSandbox", buf, len, &err), 0);
	rec = last_record("CreateSandbox");
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "hostname")), "pod1");
	assert_int_equal(json_array_size(json_object_get(rec, "dns")), 0);
	json_decref(rec);
}

static bool has_netns(json_t *rec)
{
	json_t *ns = json_object_get(json_object_get(rec, "oci"), "namespaces"), *v;
	size_t i, net = 0;
	bool ok = false;

	json_array_foreach(ns, i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));

		if (type && !strcmp(type, "network")) {
			net++;
			ok = !strcmp(json_string_value(json_object_get(v, "path")), POD_NS);
		}
	}
	return ok && net == 1 && json_array_size(ns) == 2;
}

static void test_create_container_edited_both_ends(void **state)
{
	struct pp_err err = { 0 };
	char bind_src[192];
	json_t *rec, *ann;
	uint8_t *req;
	size_t len;
	struct stat st;

	(void)state;
	snprintf(bind_src, sizeof(bind_src), "%s/vm/shared/ctr1-hostname", H.dir);
	len = pack_create_container(&req, bind_src, true);
	assert_int_equal(shim_call(AGENT_SVC, "CreateContainer", req, len, &err), 0);
	free(req);
	rec = last_record("CreateContainer");
	assert_non_null(rec);
	assert_true(has_netns(rec));                                   /* forwarder's edit */
	ann = json_object_get(json_object_get(rec, "oci"), "annotations");
	assert_string_equal(json_string_value(json_object_get(ann, ANNOT_PEERPOD_VOLUMES_TARGET_PATH)),
			    CSI_SRC);                                      /* proxy's edits */
	assert_string_equal(json_string_value(json_object_get(ann, ANNOT_CDI_PEER_PODS)),
			    ANNOT_CDI_PEER_PODS_VALUE);
	json_decref(rec);
	assert_int_equal(stat(bind_src, &st), 0);                      /* source created */
	assert_true(S_ISDIR(st.st_mode));
}

static void test_other_methods_pass(void **state)
{
	struct pp_err err = { 0 };
	json_t *rec;

	(void)state;
	assert_int_equal(shim_call("grpc.Health", "Check", NULL, 0, &err), 0);
	rec = last_record("Check");
	assert_non_null(rec);
	json_decref(rec);
	/* garbage CreateContainer is refused by the proxy with a clear error */
	assert_int_equal(shim_call(AGENT_SVC, "CreateContainer", (const uint8_t *)"\x32\x7f", 2, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "CreateContainer"));
}

static void test_wrong_client_cert_refused(void **state)
{
	SSL_CTX *bad = client_ctx_for(H.other_client, H.ca), *none = client_ctx_for(NULL, H.ca);
	SSL_CTX *ctxs[2] = { bad, none };
	unsigned before = record_lines(), i;
	char msg[256];

	(void)state;
	for (i = 0; i < 2; i++) {
		struct raw_tls t;

		/* TLS 1.3: the client may finish before the server rejects its certificate; the
		 * first read then fails. Either way, no call gets through. */
		if (raw_tls_open(&t, ctxs[i]) == 0 &&
		    raw_frame(&t, 1, (const uint8_t *)"\x0a\x0bgrpc.Health\x12\x05" "Check", 20) == 0)
			assert_int_equal(raw_response(&t, 1, msg, sizeof(msg)), -1);
		raw_tls_close(&t);
	}
	SSL_CTX_free(bad);
	SSL_CTX_free(none);
	assert_int_equal(record_lines(), before);
	assert_true(process_alive(H.fwd_pid));
}

/* apf.json says tls-min-version VersionTLS13: a TLS 1.2 client is turned away. */
static void test_tls_min_version_from_apf(void **state)
{
	SSL_CTX *old = client_ctx_for(H.client, H.ca);
	struct raw_tls t;

	(void)state;
	assert_int_equal(SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION), 1);
	assert_int_equal(raw_tls_open(&t, old), -1);
	raw_tls_close(&t);
	SSL_CTX_free(old);
	assert_int_equal(raw_tls_open(&t, H.client_ctx), 0);
	assert_int_equal(SSL_version(t.ssl), TLS1_3_VERSION);
	raw_tls_close(&t);
}

static void test_wrong_ca_refused_by_proxy(void **state)
{
	SSL_CTX *wrong = client_ctx_for(H.client, H.other_ca);
	struct agent_proxy *p;
	struct raw_tls t;

	(void)state;
	/* the forwarder's certificate does not chain to the CA the proxy trusts */
	assert_int_equal(raw_tls_open(&t, wrong), -1);
	raw_tls_close(&t);
	p = proxy_start_wait("sb-wrong-ca", wrong, 800);
	assert_false(H.ready_ok);
	assert_non_null(strstr(H.ready_err.msg, "failed to establish agent proxy connection to 127.0.0.1:"));
	run_in_loop(proxy_stop_fn, p);
	SSL_CTX_free(wrong);
}

static void test_hostile_frames_to_forwarder(void **state)
{
	struct raw_tls t;
	uint8_t *big, *req = NULL;
	size_t req_len = 0;
	struct pp_err err = { 0 };
	char msg[512];
	int code;

	(void)state;
	assert_int_equal(raw_tls_open(&t, H.client_ctx), 0);
	/* a frame over 4 MiB: RESOURCE_EXHAUSTED on its stream, the connection goes on */
	big = calloc(1, TTRPC_MAX_DATA + 16);
	assert_int_equal(raw_frame(&t, 1, big, TTRPC_MAX_DATA + 16), 0);
	free(big);
	code = raw_response(&t, 1, msg, sizeof(msg));
	assert_int_equal(code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(msg, "exceed maximum message size"));
	/* garbage protobuf as CreateContainer: INVALID_ARGUMENT naming it */
	assert_int_equal(ttrpc_request_encode(AGENT_SVC, "CreateContainer",
					      (const uint8_t *)"\x32\x7f\x01\x02", 4, 0, &req,
					      &req_len, &err), 0);
	assert_int_equal(raw_frame(&t, 3, req, req_len), 0);
	free(req);
	code = raw_response(&t, 3, msg, sizeof(msg));
	assert_int_equal(code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "CreateContainer"));
	/* a CreateContainer with a ".." bind source: refused */
	{
		uint8_t *cc;
		size_t cl = pack_create_container(&cc, "/tmp/../etc/evil", false);

		assert_int_equal(ttrpc_request_encode(AGENT_SVC, "CreateContainer", cc, cl, 0, &req,
						      &req_len, &err), 0);
		free(cc);
		assert_int_equal(raw_frame(&t, 5, req, req_len), 0);
		free(req);
		assert_int_equal(raw_response(&t, 5, msg, sizeof(msg)), PP_INVALID_ARGUMENT);
		assert_non_null(strstr(msg, "'..'"));
	}
	/* not a Request at all */
	assert_int_equal(raw_frame(&t, 7, (const uint8_t *)"\xff\xff\xff", 3), 0);
	assert_int_equal(raw_response(&t, 7, msg, sizeof(msg)), PP_INVALID_ARGUMENT);
	/* truncated: a header promising 1 MiB, 100 bytes, then the connection closes */
	{
		uint8_t part[100] = { 0 };
		struct ttrpc_header h = { .length = 1u << 20, .stream_id = 9,
					  .type = TTRPC_TYPE_REQUEST };
		uint8_t hdr[TTRPC_HEADER_SIZE];

		ttrpc_header_encode(&h, hdr);
		assert_int_equal(raw_tls_write(&t, hdr, sizeof(hdr)), 0);
		assert_int_equal(raw_tls_write(&t, part, sizeof(part)), 0);
	}
	raw_tls_close(&t);
	/* a header claiming 4 GiB, then gone */
	assert_int_equal(raw_tls_open(&t, H.client_ctx), 0);
	{
		uint8_t hdr[TTRPC_HEADER_SIZE] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 11, 1, 0 };

		assert_int_equal(raw_tls_write(&t, hdr, sizeof(hdr)), 0);
	}
	raw_tls_close(&t);
	/* the forwarder is still there and the data path works */
	usleep(100000);
	assert_true(process_alive(H.fwd_pid));
	assert_int_equal(shim_call("grpc.Health", "Check", NULL, 0, &err), 0);
}

static void test_agent_restart(void **state)
{
	struct pp_err err = { 0 };
	int st;

	(void)state;
	st = stop_process(&H.agent_pid);
	assert_true(WIFEXITED(st));
	/* while the agent is away, a call fails or waits; it must not hang the forwarder */
	start_agent();
	assert_int_equal(shim_call("grpc.Health", "Check", NULL, 0, &err), 0);
	assert_true(process_alive(H.fwd_pid));
}

static void test_forwarder_restart(void **state)
{
	struct stats_args sa = { .p = H.proxy };
	struct pp_err err = { 0 };
	char port[8];
	int st;

	(void)state;
	st = stop_process(&H.fwd_pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);   /* clean exit on SIGTERM, no leak under ASan */
	snprintf(port, sizeof(port), "%s", H.port);
	start_forwarder(port);
	assert_string_equal(H.port, port);
	/* the proxy re-dials on its own; a call made now goes through */
	assert_int_equal(shim_call("grpc.Health", "Check", NULL, 0, &err), 0);
	run_in_loop(proxy_stats_fn, &sa);
	assert_true(sa.st.reconnects >= 1);
	assert_true(sa.st.connected);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_sandbox_dns_cleared),
		cmocka_unit_test(test_create_container_edited_both_ends),
		cmocka_unit_test(test_other_methods_pass),
		cmocka_unit_test(test_wrong_client_cert_refused),
		cmocka_unit_test(test_tls_min_version_from_apf),
		cmocka_unit_test(test_wrong_ca_refused_by_proxy),
		cmocka_unit_test(test_hostile_frames_to_forwarder),
		cmocka_unit_test(test_agent_restart),
		cmocka_unit_test(test_forwarder_restart),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s FORWARDER_BINARY MOCK_AGENT_BINARY\n", argv[0]);
		return 2;
	}
	H.fwd_bin = argv[1];
	H.agent_bin = argv[2];
	signal(SIGPIPE, SIG_IGN);
	log_init("datapath-test", 2);
	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
