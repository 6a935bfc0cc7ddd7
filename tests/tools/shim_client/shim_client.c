/*
 * shim-client: plays the kata shim against the adaptor's hypervisor socket, or against a pod's
 * agent.ttrpc, for tests, benchmarks and the demo. See usage() for the commands.
 *
 * By default every call dials a new connection (the Go shim's style); with --one-connection all
 * calls of the run share one connection (runtime-rs' style). Several calls are given either as
 * a script (--script FILE, one command per line) or on the command line joined by "then".
 * Each successful call prints one line of key=value facts on stdout; a failed call prints
 * "<command>: error code=<CODE> msg=..." on stderr and ends the run with exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/util.h"
#include "tests/tools/mock_agent/mock_pattern.h"
#include "tests/tools/shim_client/shim_lib.h"

#define CLI_MAX_LIST 64
#define CLI_MAX_TOKENS 256
#define CLI_MAX_LINE 4096
#define CLI_DEFAULT_READ_LEN 32768

struct cli_global {
	const char *socket;
	int64_t timeout_ns;   /* -1: per command default */
	bool one_connection;
	const char *script;
};

struct cli_args {
	const char *sandbox_id, *pod, *ns, *netns, *container_id, *exec_id, *version, *service, *method;
	const char *anns[CLI_MAX_LIST], *mounts[CLI_MAX_LIST], *nss[CLI_MAX_LIST], *dns[CLI_MAX_LIST];
	size_t n_anns, n_mounts, n_nss, n_dns;
	bool wait;
	uint32_t signal, len;
	uint64_t total;
};

static void usage(FILE *out)
{
	fprintf(out,
"usage: shim-client -socket PATH [-timeout DUR] [-one-connection] [-script FILE|-]\n"
"                   [agent] COMMAND [FLAGS] [then COMMAND [FLAGS] ...]\n"
"hypervisor socket (hypervisor.Hypervisor, podvminfo.PodVMInfo):\n"
"  version [-version V]\n"
"  create -sandbox-id ID [-pod NAME] [-namespace NS] [-netns PATH] [-annotation K=V]...\n"
"  start -sandbox-id ID          (default timeout 600s, as the Go shim)\n"
"  stop -sandbox-id ID\n"
"  getinfo -pod NAME -namespace NS [-wait]\n"
"agent socket, <pods-dir>/<sandbox-id>/agent.ttrpc (grpc.Health, grpc.AgentService):\n"
"  health | guest-details\n"
"  create-sandbox -sandbox-id ID [-dns ADDR]...\n"
"  create-container -container-id ID [-exec-id ID] [-annotation K=V]...\n"
"                   [-mount SRC:DST[:TYPE]]... [-ns TYPE[:PATH]]...\n"
"  signal -container-id ID [-exec-id ID] [-signal N]\n"
"  wait -container-id ID [-exec-id ID]\n"
"  read-stdout -container-id ID [-exec-id ID] [-len N] [-total N]\n"
"      reads until EOF (or N bytes in total) and checks mock-agent's byte pattern\n"
"any socket:\n"
"  call -service NAME -method NAME   one call with an empty request\n"
"Without -one-connection every call uses a new connection. -timeout takes Go durations\n"
"(500ms, 5s, 2m). Exit status: 0 ok, 1 a call failed, 2 usage error.\n");
}

static int cli_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "shim-client: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	return 2;
}

/* ---- flags ---- */

/* "-x", "--x": the name without dashes, or NULL if tok is not a flag. */
static const char *cli_flag_name(const char *tok)
{
	if (tok[0] != '-' || tok[1] == '\0')
		return NULL;
	return tok[1] == '-' ? tok + 2 : tok + 1;
}

static int cli_list_add(const char **list, size_t *n, const char *v)
{
	if (*n == CLI_MAX_LIST)
		return cli_usage_error("too many values for a repeated flag", v);
	list[(*n)++] = v;
	return 0;
}

static int cli_u32(const char *v, uint32_t *out)
{
	if (parse_uint32(v, out) < 0)
		return cli_usage_error("not a number", v);
	return 0;
}

static int cli_set_flag(struct cli_args *a, const char *name, const char *v)
{
	const struct { const char *name; const char **slot; } strs[] = {
		{ "sandbox-id", &a->sandbox_id }, { "pod", &a->pod }, { "namespace", &a->ns },
		{ "netns", &a->netns }, { "container-id", &a->container_id }, { "exec-id", &a->exec_id },
		{ "version", &a->version }, { "service", &a->service }, { "method", &a->method },
	};

	for (size_t i = 0; i < PP_ARRAY_SIZE(strs); i++) {
		if (strcmp(name, strs[i].name) == 0) {
			*strs[i].slot = v;
			return 0;
		}
	}
	if (strcmp(name, "annotation") == 0)
		return cli_list_add(a->anns, &a->n_anns, v);
	if (strcmp(name, "mount") == 0)
		return cli_list_add(a->mounts, &a->n_mounts, v);
	if (strcmp(name, "ns") == 0)
		return cli_list_add(a->nss, &a->n_nss, v);
	if (strcmp(name, "dns") == 0)
		return cli_list_add(a->dns, &a->n_dns, v);
	if (strcmp(name, "signal") == 0)
		return cli_u32(v, &a->signal);
	if (strcmp(name, "len") == 0)
		return cli_u32(v, &a->len);
	if (strcmp(name, "total") == 0)
		return parse_uint64(v, &a->total) < 0 ? cli_usage_error("not a number", v) : 0;
	return cli_usage_error("unknown flag", name);
}

/* Parses the flags of one command: tok[0..n). */
static int cli_parse_args(char **tok, int n, struct cli_args *a)
{
	memset(a, 0, sizeof(*a));
	a->signal = 15;
	a->len = CLI_DEFAULT_READ_LEN;
	for (int i = 0; i < n; i++) {
		const char *name = cli_flag_name(tok[i]);
		char *eq;

		if (!name)
			return cli_usage_error("unexpected argument", tok[i]);
		if (strcmp(name, "wait") == 0) {
			a->wait = true;
			continue;
		}
		eq = strchr(tok[i], '=');
		if (eq) {
			*eq = '\0';
			if (cli_set_flag(a, cli_flag_name(tok[i]), eq + 1))
				return 2;
			continue;
		}
		if (i + 1 == n)
			return cli_usage_error("flag needs a value", tok[i]);
		if (cli_set_flag(a, name, tok[++i]))
			return 2;
	}
	return 0;
}

/* ---- commands ---- */

static int cli_fail(const char *cmd, const struct pp_err *err)
{
	fprintf(stderr, "%s: error code=%s msg=\"%s\"\n", cmd, pp_code_name(err->code), err->msg);
	return 1;
}

static int64_t cli_timeout(const struct cli_global *g, int64_t dflt)
{
	return g->timeout_ns >= 0 ? g->timeout_ns : dflt;
}

static int cli_need(const char *v, const char *flag)
{
	if (!v || !v[0])
		return cli_usage_error("missing flag", flag);
	return 0;
}

static int cmd_create(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
		      struct pp_err *err)
{
	struct shim_create_args ca = {
		.sandbox_id = a->sandbox_id, .pod_name = a->pod, .pod_namespace = a->ns,
		.netns = a->netns, .annotations = a->anns, .n_annotations = a->n_anns,
		.timeout_ns = cli_timeout(g, 0),
	};
	char sock[512];

	if (cli_need(a->sandbox_id, "-sandbox-id"))
		return 2;
	if (shim_create_vm(c, &ca, sock, sizeof(sock), err) < 0)
		return cli_fail("create", err);
	printf("create ok agentSocketPath=%s\n", sock);
	return 0;
}

static int cmd_lifecycle(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
			 bool start, struct pp_err *err)
{
	const char *name = start ? "start" : "stop";
	int rc;

	if (cli_need(a->sandbox_id, "-sandbox-id"))
		return 2;
	if (start)
		rc = shim_start_vm(c, a->sandbox_id, cli_timeout(g, SHIM_START_TIMEOUT_NS), err);
	else
		rc = shim_stop_vm(c, a->sandbox_id, cli_timeout(g, 0), err);
	if (rc < 0)
		return cli_fail(name, err);
	printf("%s ok sandbox=%s\n", name, a->sandbox_id);
	return 0;
}

static int cmd_version(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
		       struct pp_err *err)
{
	char v[256];

	if (shim_version(c, a->version, cli_timeout(g, 0), v, sizeof(v), err) < 0)
		return cli_fail("version", err);
	printf("version ok version=%s\n", v);
	return 0;
}

static int cmd_getinfo(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
		       struct pp_err *err)
{
	char id[512];

	if (cli_need(a->pod, "-pod") || cli_need(a->ns, "-namespace"))
		return 2;
	if (shim_get_info(c, a->pod, a->ns, a->wait, cli_timeout(g, 0), id, sizeof(id), err) < 0)
		return cli_fail("getinfo", err);
	printf("getinfo ok vmid=%s\n", id);
	return 0;
}

static int cmd_health(struct shim_conn *c, const struct cli_global *g, struct pp_err *err)
{
	int status = 0;

	if (shim_agent_health(c, cli_timeout(g, 0), &status, err) < 0)
		return cli_fail("health", err);
	printf("health ok status=%s\n", status == 1 ? "SERVING" : status == 2 ? "NOT_SERVING" : "UNKNOWN");
	return 0;
}

static int cmd_guest_details(struct shim_conn *c, const struct cli_global *g, struct pp_err *err)
{
	char v[256];

	if (shim_agent_guest_details(c, cli_timeout(g, 0), v, sizeof(v), err) < 0)
		return cli_fail("guest-details", err);
	printf("guest-details ok agent_version=%s\n", v);
	return 0;
}

static int cmd_create_container(struct shim_conn *c, const struct cli_global *g,
				const struct cli_args *a, struct pp_err *err)
{
	struct shim_container_args ca = {
		.container_id = a->container_id, .exec_id = a->exec_id,
		.annotations = a->anns, .n_annotations = a->n_anns,
		.mounts = a->mounts, .n_mounts = a->n_mounts,
		.namespaces = a->nss, .n_namespaces = a->n_nss,
		.timeout_ns = cli_timeout(g, 0),
	};

	if (cli_need(a->container_id, "-container-id"))
		return 2;
	if (shim_agent_create_container(c, &ca, err) < 0)
		return cli_fail("create-container", err);
	printf("create-container ok container=%s\n", a->container_id);
	return 0;
}

static int cmd_create_sandbox(struct shim_conn *c, const struct cli_global *g,
			      const struct cli_args *a, struct pp_err *err)
{
	if (cli_need(a->sandbox_id, "-sandbox-id"))
		return 2;
	if (shim_agent_create_sandbox(c, a->sandbox_id, a->dns, a->n_dns, cli_timeout(g, 0), err) < 0)
		return cli_fail("create-sandbox", err);
	printf("create-sandbox ok sandbox=%s\n", a->sandbox_id);
	return 0;
}

static int cmd_signal_wait(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
			   bool wait, struct pp_err *err)
{
	int status = 0;

	if (cli_need(a->container_id, "-container-id"))
		return 2;
	if (!wait) {
		if (shim_agent_signal(c, a->container_id, a->exec_id, a->signal, cli_timeout(g, 0), err) < 0)
			return cli_fail("signal", err);
		printf("signal ok container=%s signal=%u\n", a->container_id, a->signal);
		return 0;
	}
	if (shim_agent_wait(c, a->container_id, a->exec_id, cli_timeout(g, 0), &status, err) < 0)
		return cli_fail("wait", err);
	printf("wait ok container=%s status=%d\n", a->container_id, status);
	return 0;
}

static int cmd_read_stdout(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
			   struct pp_err *err)
{
	uint64_t total = 0;
	bool eof = false;

	if (cli_need(a->container_id, "-container-id"))
		return 2;
	while (!a->total || total < a->total) {
		uint32_t want = a->total && a->total - total < a->len ? (uint32_t)(a->total - total) : a->len;
		uint8_t *data = NULL;
		size_t n = 0, bad;

		if (shim_agent_read_stdout(c, a->container_id, a->exec_id, want, cli_timeout(g, 0), &data,
					   &n, err) < 0) {
			if (err->code != PP_OUT_OF_RANGE)
				return cli_fail("read-stdout", err);
			eof = true;
			break;
		}
		bad = mock_pattern_check(data, n, total);
		free(data);
		if (bad != n) {
			fprintf(stderr, "read-stdout: error code=DATA_LOSS msg=\"byte %llu differs from the "
				"pattern\"\n", (unsigned long long)(total + bad));
			return 1;
		}
		total += n;
		if (n == 0)
			break;
	}
	printf("read-stdout ok bytes=%llu eof=%s\n", (unsigned long long)total, eof ? "true" : "false");
	return 0;
}

static int cmd_call(struct shim_conn *c, const struct cli_global *g, const struct cli_args *a,
		    struct pp_err *err)
{
	uint8_t *reply = NULL;
	size_t len = 0;

	if (cli_need(a->service, "-service") || cli_need(a->method, "-method"))
		return 2;
	if (shim_call(c, a->service, a->method, NULL, 0, cli_timeout(g, 0), &reply, &len, err) < 0)
		return cli_fail("call", err);
	free(reply);
	printf("call ok method=%s/%s bytes=%zu\n", a->service, a->method, len);
	return 0;
}

static int cli_run_one(struct shim_conn *c, const struct cli_global *g, char **tok, int n)
{
	struct pp_err err = { 0 };
	struct cli_args a;
	const char *cmd;
	int rc;

	if (n > 0 && strcmp(tok[0], "agent") == 0) {
		tok++;
		n--;
	}
	if (n == 0)
		return cli_usage_error("missing command", NULL);
	cmd = tok[0];
	rc = cli_parse_args(tok + 1, n - 1, &a);
	if (rc)
		return rc;
	if (strcmp(cmd, "create") == 0) return cmd_create(c, g, &a, &err);
	if (strcmp(cmd, "start") == 0) return cmd_lifecycle(c, g, &a, true, &err);
	if (strcmp(cmd, "stop") == 0) return cmd_lifecycle(c, g, &a, false, &err);
	if (strcmp(cmd, "version") == 0) return cmd_version(c, g, &a, &err);
	if (strcmp(cmd, "getinfo") == 0) return cmd_getinfo(c, g, &a, &err);
	if (strcmp(cmd, "health") == 0) return cmd_health(c, g, &err);
	if (strcmp(cmd, "guest-details") == 0) return cmd_guest_details(c, g, &err);
	if (strcmp(cmd, "create-container") == 0) return cmd_create_container(c, g, &a, &err);
	if (strcmp(cmd, "create-sandbox") == 0) return cmd_create_sandbox(c, g, &a, &err);
	if (strcmp(cmd, "signal") == 0) return cmd_signal_wait(c, g, &a, false, &err);
	if (strcmp(cmd, "wait") == 0) return cmd_signal_wait(c, g, &a, true, &err);
	if (strcmp(cmd, "read-stdout") == 0) return cmd_read_stdout(c, g, &a, &err);
	if (strcmp(cmd, "call") == 0) return cmd_call(c, g, &a, &err);
	return cli_usage_error("unknown command", cmd);
}

/* Runs tok[0..n) as commands separated by "then". */
static int cli_run_chain(struct shim_conn *c, const struct cli_global *g, char **tok, int n)
{
	int start = 0;

	for (int i = 0; i <= n; i++) {
		if (i < n && strcmp(tok[i], "then") != 0)
			continue;
		int rc = cli_run_one(c, g, tok + start, i - start);

		fflush(stdout);
		if (rc)
			return rc;
		start = i + 1;
	}
	return 0;
}

static int cli_run_script(struct shim_conn *c, const struct cli_global *g)
{
	FILE *f = strcmp(g->script, "-") == 0 ? stdin : fopen(g->script, "re");
	char line[CLI_MAX_LINE];
	int rc = 0;

	if (!f)
		return cli_usage_error("cannot open the script", g->script);
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *tok[CLI_MAX_TOKENS], *save = NULL, *t;
		int n = 0;

		for (t = strtok_r(line, " \t\r\n", &save); t && n < CLI_MAX_TOKENS;
		     t = strtok_r(NULL, " \t\r\n", &save))
			tok[n++] = t;
		if (n == 0 || tok[0][0] == '#')
			continue;
		rc = cli_run_chain(c, g, tok, n);
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* ---- main ---- */

/* Global flags may come before the command and right after "agent". Returns the index of the
 * first command token, or -1 on a usage error. */
static int cli_parse_global(int argc, char **argv, struct cli_global *g)
{
	int i = 1;

	g->timeout_ns = -1;
	for (; i < argc; i++) {
		const char *name = cli_flag_name(argv[i]);
		uint64_t ms;

		if (!name) {
			if (strcmp(argv[i], "agent") == 0 && i + 1 < argc && cli_flag_name(argv[i + 1]))
				continue;   /* "agent -socket X health": flags after "agent" */
			break;
		}
		if (strcmp(name, "one-connection") == 0) {
			g->one_connection = true;
		} else if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
			usage(stdout);
			exit(0);
		} else if (i + 1 >= argc) {
			cli_usage_error("flag needs a value", argv[i]);
			return -1;
		} else if (strcmp(name, "socket") == 0) {
			g->socket = argv[++i];
		} else if (strcmp(name, "script") == 0) {
			g->script = argv[++i];
		} else if (strcmp(name, "timeout") == 0) {
			if (config_parse_duration_ms(argv[++i], &ms) < 0 || ms > INT64_MAX / 1000000) {
				cli_usage_error("-timeout is not a duration", argv[i]);
				return -1;
			}
			g->timeout_ns = (int64_t)ms * 1000000;
		} else {
			cli_usage_error("unknown flag", argv[i]);
			return -1;
		}
	}
	return i;
}

int main(int argc, char **argv)
{
	struct cli_global g = { 0 };
	struct pp_err err = { 0 };
	struct shim_conn c;
	int first = cli_parse_global(argc, argv, &g);
	int rc;

	pp_malloc_tune();
	if (first < 0)
		return 2;
	if (!g.socket) {
		usage(stderr);
		return cli_usage_error("-socket is required", NULL);
	}
	if (!g.script && first >= argc) {
		usage(stderr);
		return cli_usage_error("missing command", NULL);
	}
	if (shim_conn_open(&c, g.socket, !g.one_connection, &err) < 0)
		return cli_fail("connect", &err);
	if (g.script)
		rc = cli_run_script(&c, &g);
	else
		rc = cli_run_chain(&c, &g, argv + first, argc - first);
	shim_conn_close(&c);
	return rc;
}
