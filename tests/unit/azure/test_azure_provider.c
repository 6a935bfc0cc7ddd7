/*
 * The azure driver end to end against the strict ARM fake (tests/fakes/azure/fake_azure.py,
 * started per test on a loopback port the kernel picks): tokens from the three sources and
 * their refresh, create in every long-running-operation style ARM uses, IPs, throttling and
 * 5xx, ARM errors surfaced, cleanup after a failed or cancelled create, delete (cascade,
 * already gone, by name, by an id in another case, another owner's VM refused), list by owner
 * with paging. Every test ends by asking the fake whether it refused anything it did not expect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/http.h"
#include "lib/util.h"
#include "providers/azure/azure_priv.h"

extern const struct provider_ops azure_provider_ops;
extern char **environ;

#define OWNER "node-a"
#define USER_DATA "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  content: '{}'\n"

struct fake {
	pid_t pid;
	int port;
	char dir[64];
	char base[64];
	struct http_client *http;
};

struct env {
	struct fake fk;
	struct config *cfg;
	struct provider *p;
};

/* ---- the fake ---- */

static void fake_start(struct fake *f, const char *config)
{
	char port_file[96], *argv[8];
	struct pp_err err = { 0 };
	struct http_client_config hc = { .name = "fake-control", .max_attempts = 1 };
	uint8_t *data = NULL;
	size_t len;
	int64_t port = 0;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/pp.azfXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(port_file, sizeof(port_file), "%s/port", f->dir);
	argv[0] = PP_PYTHON3;
	argv[1] = AZURE_FAKE;
	argv[2] = "--port-file";
	argv[3] = port_file;
	argv[4] = "--config";
	argv[5] = (char *)(config ? config : "{}");
	argv[6] = NULL;
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execv(PP_PYTHON3, argv);
		_exit(127);
	}
	for (int i = 0; i < 200 && file_read_all(port_file, 64, &data, &len, NULL) < 0; i++)
		usleep(25000);
	assert_non_null(data);
	data[strcspn((char *)data, "\n")] = '\0';
	assert_int_equal(parse_int64((char *)data, &port), 0);
	free(data);
	f->port = (int)port;
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->port);
	f->http = http_client_new(&hc, &err);
	assert_non_null(f->http);
}

static void fake_stop(struct fake *f)
{
	char path[96];

	http_client_free(f->http);
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		waitpid(f->pid, NULL, 0);
	}
	snprintf(path, sizeof(path), "%s/port", f->dir);
	unlink(path);
	rmdir(f->dir);
}

static json_t *fake_call(struct fake *f, enum http_method m, const char *path, const char *body)
{
	struct http_response r = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	char url[256];
	struct http_request req = { .op = "fake", .method = m, .url = url, .flags = HTTP_F_RAW_STATUS };
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", f->base, path);
	if (body) {
		req.body = body;
		req.body_len = strlen(body);
		req.content_type = "application/json";
	}
	if (http_do(f->http, &req, &r, &err) < 0)
		fail_msg("fake control %s: %s", path, err.msg);
	assert_int_equal(r.status, 200);
	j = json_loads(http_response_text(&r), 0, NULL);
	assert_non_null(j);
	http_response_free(&r);
	return j;
}

static void fake_post(struct fake *f, const char *path, const char *body)
{
	json_decref(fake_call(f, HTTP_POST, path, body));
}

static json_t *fake_state(struct fake *f)
{
	return fake_call(f, HTTP_GET, "/_fake/state", NULL);
}

/* Number of resources of a type ("Microsoft.Compute/virtualMachines"), or all with NULL. */
static int fake_count(struct fake *f, const char *type)
{
	json_t *st = fake_state(f), *res = json_object_get(st, "resources"), *v;
	const char *k;
	int n = 0;

	json_object_foreach(res, k, v)
		if (!type || strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
			n++;
	json_decref(st);
	return n;
}

/* Requests matching method and a path substring. */
static int fake_requests(struct fake *f, const char *method, const char *path_part)
{
	json_t *st = fake_state(f), *reqs = json_object_get(st, "requests"), *r;
	size_t i;
	int n = 0;

	json_array_foreach(reqs, i, r)
		if (strcmp(json_string_value(json_object_get(r, "method")), method) == 0 &&
		    strstr(json_string_value(json_object_get(r, "path")), path_part))
			n++;
	json_decref(st);
	return n;
}

static int fake_tokens(struct fake *f)
{
	json_t *st = fake_state(f);
	int n = (int)json_integer_value(json_object_get(st, "tokens_issued"));

	json_decref(st);
	return n;
}

/* The fake refused nothing (a refusal means we sent something ARM would not accept). */
static void fake_no_refusals(struct fake *f)
{
	json_t *st = fake_state(f), *r = json_object_get(st, "refusals");

	if (json_array_size(r) != 0) {
		char *t = json_dumps(r, 0);

		fail_msg("the fake refused requests: %s", t);
	}
	json_decref(st);
}

/* ---- the provider ---- */

static void cfg_set(struct config *c, const char *k, const char *v)
{
	struct pp_err err = { 0 };

	if (config_set(c, k, v, &err) < 0)
		fail_msg("config_set %s: %s", k, err.msg);
}

static struct config *cfg_new(const struct fake *f)
{
	const struct config_option *tables[] = { azure_options, NULL };
	struct pp_err err = { 0 };
	struct config *c = config_new(tables, &err);

	assert_non_null(c);
	cfg_set(c, "AZURE_CLIENT_ID", "client-1");
	cfg_set(c, "AZURE_CLIENT_SECRET", "s3cret-value");
	cfg_set(c, "AZURE_TENANT_ID", "tenant-1");
	cfg_set(c, "AZURE_SUBSCRIPTION_ID", "sub-1");
	cfg_set(c, "AZURE_REGION", "eastus");
	cfg_set(c, "AZURE_RESOURCE_GROUP", "rg-1");
	cfg_set(c, "AZURE_SUBNET_ID", "/subscriptions/sub-1/resourceGroups/net-rg/providers/"
		"Microsoft.Network/virtualNetworks/vnet/subnets/default");
	cfg_set(c, "AZURE_IMAGE_ID", "/subscriptions/sub-1/resourceGroups/img/providers/"
		"Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0");
	cfg_set(c, "AZURE_INSTANCE_SIZES", "Standard_DC2as_v5,Standard_DC4as_v5,Standard_EC4es_v5");
	cfg_set(c, "TAGS", "team=peerpods");
	cfg_set(c, "AZURE_ARM_ENDPOINT", f->base);
	cfg_set(c, "AZURE_AUTHORITY_HOST", f->base);
	cfg_set(c, "AZURE_IMDS_ENDPOINT", f->base);
	cfg_set(c, "AZURE_POLL_INTERVAL", "20ms");
	return c;
}

static int prov_start(struct env *e, const char *owner, struct pp_err *err)
{
	e->p = provider_new(&azure_provider_ops, e->cfg, owner, "/tmp", err);
	assert_non_null(e->p);
	return provider_start(e->p, err);
}

/* The one live env, for the teardown after a failed assertion (cmocka longjmps out). */
static struct env *g_env;

static struct env *env_new(void)
{
	g_env = calloc(1, sizeof(*g_env));
	assert_non_null(g_env);
	return g_env;
}

static struct env *env_up(const char *fake_config)
{
	struct pp_err err = { 0 };
	struct env *e = env_new();

	fake_start(&e->fk, fake_config);
	e->cfg = cfg_new(&e->fk);
	if (prov_start(e, OWNER, &err) < 0)
		fail_msg("provider start: %s", err.msg);
	return e;
}

static void env_down(struct env *e)
{
	if (!e)
		return;
	provider_free(e->p);
	config_free(e->cfg);
	if (e->fk.pid > 0)
		fake_stop(&e->fk);
	free(e);
	g_env = NULL;
}

static int teardown(void **state)
{
	(void)state;
	env_down(g_env);
	return 0;
}

static const struct provider_ops *ops(void)
{
	return &azure_provider_ops;
}

struct creq {
	struct create_request req;
	char name[INSTANCE_NAME_MAX + 1];
};

static void creq_init(struct creq *c, const char *sid)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "podvm-nginx-%.8s", sid);
	c->req.sandbox_id = sid;
	c->req.pod_name = "nginx";
	c->req.pod_namespace = "default";
	c->req.instance_name = c->name;
	c->req.user_data = USER_DATA;
	c->req.user_data_len = strlen(USER_DATA);
	c->req.spec.instance_type = "";
	c->req.spec.image = "";
}

static int create(struct env *e, const char *sid, struct instance *inst, struct pp_err *err)
{
	struct creq c;

	creq_init(&c, sid);
	return ops()->create_instance(e->p, &c.req, inst, err);
}

static void create_ok(struct env *e, const char *sid, struct instance *inst)
{
	struct pp_err err = { 0 };

	if (create(e, sid, inst, &err) < 0)
		fail_msg("create %s: %s", sid, err.msg);
}

/* ---- tests ---- */

static void test_create_list_delete(void **state)
{
	struct env *e;
	struct instance inst;
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	json_t *st, *vm, *tags, *ud;
	uint8_t *text = NULL;
	size_t len;

	(void)state;
	e = env_up(NULL);
	create_ok(e, "aaaa1111bbbb", &inst);
	assert_string_equal(inst.name, "podvm-nginx-aaaa1111");
	assert_string_equal(inst.id, "/subscriptions/sub-1/resourceGroups/rg-1/providers/"
			    "Microsoft.Compute/virtualMachines/podvm-nginx-aaaa1111");
	assert_int_equal(inst.n_ips, 1);
	assert_true(strncmp(inst.ips[0], "10.0.0.", 7) == 0);

	/* what ARM holds: the VM (succeeded, tagged), its NIC and OS disk; the user-data we sent */
	st = fake_state(&e->fk);
	vm = json_object_get(json_object_get(st, "resources"), "/subscriptions/sub-1/resourcegroups/rg-1/"
			     "providers/microsoft.compute/virtualmachines/podvm-nginx-aaaa1111");
	assert_non_null(vm);
	assert_string_equal(json_string_value(json_object_get(json_object_get(vm, "properties"),
				"provisioningState")), "Succeeded");
	tags = json_object_get(vm, "tags");
	assert_string_equal(json_string_value(json_object_get(tags, "peerpods-owner")), OWNER);
	assert_string_equal(json_string_value(json_object_get(tags, "peerpods-sandbox")), "aaaa1111bbbb");
	assert_string_equal(json_string_value(json_object_get(tags, "peerpods-pod")), "default/nginx");
	assert_string_equal(json_string_value(json_object_get(tags, "team")), "peerpods");
	assert_non_null(json_object_get(json_object_get(vm, "properties"), "securityProfile"));
	ud = json_object_get(json_object_get(st, "user_data"), "podvm-nginx-aaaa1111");
	assert_int_equal(base64_decode(json_string_value(ud), json_string_length(ud), &text, &len, &err), 0);
	assert_string_equal((char *)text, USER_DATA);
	free(text);
	json_decref(st);
	assert_int_equal(fake_count(&e->fk, NULL), 3);   /* VM, NIC, disk */

	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal((int)l.n, 1);
	assert_string_equal(l.items[0].id, inst.id);
	assert_string_equal(l.items[0].sandbox_id, "aaaa1111bbbb");
	assert_true(l.items[0].created_unix > 1700000000);
	owned_instance_list_free(&l);

	assert_int_equal(ops()->delete_instance(e->p, inst.id, inst.name, NULL, &err), 0);
	assert_int_equal(fake_count(&e->fk, NULL), 0);   /* cascade: NIC and disk went with the VM */
	/* already gone: success, twice */
	assert_int_equal(ops()->delete_instance(e->p, inst.id, inst.name, NULL, &err), 0);
	assert_int_equal(ops()->delete_instance(e->p, "", inst.name, NULL, &err), 0);
	assert_int_equal(fake_tokens(&e->fk), 1);   /* one token, cached */
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void lro_mode_case(const char *config)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };

	e = env_up(config);
	create_ok(e, "bbbb2222", &inst);
	assert_int_equal(fake_count(&e->fk, "Microsoft.Compute/virtualMachines"), 1);
	assert_int_equal(ops()->delete_instance(e->p, inst.id, "", NULL, &err), 0);
	assert_int_equal(fake_count(&e->fk, NULL), 0);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_lro_styles(void **state)
{
	(void)state;
	lro_mode_case("{\"lro_mode\": \"async\", \"lro_polls\": 3}");
	lro_mode_case("{\"lro_mode\": \"location\", \"lro_polls\": 2}");
	lro_mode_case("{\"lro_mode\": \"state\", \"lro_polls\": 2, \"retry_after\": null}");
	lro_mode_case("{\"lro_mode\": \"sync\"}");
}

static void test_retry_after_honoured(void **state)
{
	struct env *e;
	struct instance inst;
	uint64_t t0;

	(void)state;
	e = env_up("{\"lro_polls\": 1, \"retry_after\": \"1\"}");
	t0 = pp_monotonic_ms();
	create_ok(e, "cccc3333", &inst);
	/* the PUT's Retry-After: 1 and the one InProgress poll's Retry-After: 1 */
	assert_true(pp_monotonic_ms() - t0 >= 2000);
	assert_int_equal(fake_requests(&e->fk, "GET", "/operations/"), 2);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_throttling_and_5xx(void **state)
{
	struct env *e;
	struct instance inst;
	uint64_t t0;

	(void)state;
	e = env_up(NULL);
	fake_post(&e->fk, "/_fake/fault", "{\"method\":\"PUT\",\"path\":\"virtualMachines\",\"status\":429,"
		  "\"retry_after\":\"1\",\"times\":1}");
	fake_post(&e->fk, "/_fake/fault", "{\"method\":\"GET\",\"path\":\"networkInterfaces\",\"status\":503,"
		  "\"times\":2}");
	t0 = pp_monotonic_ms();
	create_ok(e, "dddd4444", &inst);
	assert_true(pp_monotonic_ms() - t0 >= 1000);
	assert_int_equal(fake_requests(&e->fk, "PUT", "virtualMachines"), 2);
	assert_int_equal(fake_requests(&e->fk, "GET", "networkInterfaces"), 3);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_public_ip_first(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };

	(void)state;
	e = env_new();
	fake_start(&e->fk, NULL);
	e->cfg = cfg_new(&e->fk);
	cfg_set(e->cfg, "USE_PUBLIC_IP", "true");
	cfg_set(e->cfg, "DISABLECVM", "true");
	cfg_set(e->cfg, "ROOT_VOLUME_SIZE", "50");
	assert_int_equal(prov_start(e, OWNER, &err), 0);
	create_ok(e, "eeee5555", &inst);
	assert_int_equal(inst.n_ips, 2);
	assert_true(strncmp(inst.ips[0], "192.168.77.", 11) == 0);
	assert_true(strncmp(inst.ips[1], "10.0.0.", 7) == 0);
	assert_int_equal(fake_count(&e->fk, "Microsoft.Network/publicIPAddresses"), 1);
	assert_int_equal(ops()->delete_instance(e->p, inst.id, inst.name, NULL, &err), 0);
	assert_int_equal(fake_count(&e->fk, NULL), 0);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_ip_pending_then_ready(void **state)
{
	struct env *e;
	struct instance inst;

	(void)state;
	e = env_up("{\"ip_pending_gets\": 2}");
	create_ok(e, "ffff6666", &inst);
	assert_int_equal(inst.n_ips, 1);
	assert_int_equal(fake_requests(&e->fk, "GET", "networkInterfaces"), 3);
	env_down(e);
}

static void test_provision_failure_cleans_up(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };

	(void)state;
	e = env_up("{\"provision_fail\": {\"code\": \"AllocationFailed\", \"message\": "
	       "\"Allocation failed. We do not have sufficient capacity\"}}");
	assert_int_equal(create(e, "1111aaaa", &inst, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "creating VM podvm-nginx-1111aaaa"));
	assert_non_null(strstr(err.msg, "ARM AllocationFailed: Allocation failed."));
	/* the failed VM, its NIC and disk were deleted by name before create returned */
	assert_int_equal(fake_count(&e->fk, NULL), 0);
	assert_int_equal(fake_requests(&e->fk, "DELETE", "podvm-nginx-1111aaaa"), 1);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_arm_error_surfaced(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };

	(void)state;
	e = env_up(NULL);
	/* the region stops offering the size between start-up and the create */
	fake_post(&e->fk, "/_fake/config", "{\"sizes\": []}");
	assert_int_equal(create(e, "2222bbbb", &inst, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "ARM SkuNotAvailable: vmSize 'Standard_DC2as_v5' is not offered"));
	assert_non_null(strstr(err.msg, "(HTTP 409)"));
	assert_int_equal(fake_count(&e->fk, NULL), 0);
	env_down(e);
}

static void test_put_never_answered_cleans_up_by_name(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };

	(void)state;
	e = env_up(NULL);
	fake_post(&e->fk, "/_fake/fault", "{\"method\":\"PUT\",\"path\":\"virtualMachines\",\"status\":500,"
		  "\"times\":20}");
	assert_int_equal(create(e, "3333cccc", &inst, &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	/* ARM may have created parts: looked up and deleted by name (VM gone -> NIC, IP, disk) */
	assert_int_equal(fake_requests(&e->fk, "GET", "virtualMachines/podvm-nginx-3333cccc"), 1);
	assert_int_equal(fake_requests(&e->fk, "DELETE", "networkInterfaces/podvm-nginx-3333cccc-net"), 1);
	assert_int_equal(fake_requests(&e->fk, "DELETE", "publicIPAddresses/podvm-nginx-3333cccc-pip"), 1);
	assert_int_equal(fake_requests(&e->fk, "DELETE", "disks/podvm-nginx-3333cccc-disk"), 1);
	env_down(e);
}

static void test_user_data_limit_checked_first(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };
	struct creq c;
	size_t n = AZURE_MAX_USER_DATA + 1;
	char *big = malloc(n + 1);

	(void)state;
	e = env_up(NULL);
	memset(big, 'x', n);
	memcpy(big, "#cloud-config\n", 14);
	big[n] = '\0';
	creq_init(&c, "4444dddd");
	c.req.user_data = big;
	c.req.user_data_len = n;
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "65536 bytes of base64"));
	assert_int_equal(fake_requests(&e->fk, "PUT", "virtualMachines"), 0);
	/* exactly at the limit: accepted */
	c.req.user_data_len = AZURE_MAX_USER_DATA;
	big[AZURE_MAX_USER_DATA] = '\0';
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), 0);
	fake_no_refusals(&e->fk);
	free(big);
	env_down(e);
}

static void test_size_selection(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };
	struct creq c;
	json_t *st, *vm;

	(void)state;
	e = env_up(NULL);
	creq_init(&c, "5555eeee");
	c.req.spec.vcpus = 3;
	c.req.spec.memory_mib = 12000;
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), 0);
	st = fake_state(&e->fk);
	vm = json_object_get(json_object_get(st, "resources"), "/subscriptions/sub-1/resourcegroups/rg-1/"
			     "providers/microsoft.compute/virtualmachines/podvm-nginx-5555eeee");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(vm,
		"properties"), "hardwareProfile"), "vmSize")), "Standard_DC4as_v5");
	json_decref(st);
	/* a size outside AZURE_INSTANCE_SIZES: refused before any ARM call */
	creq_init(&c, "6666ffff");
	c.req.spec.instance_type = "Standard_D2s_v5";
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "AZURE_INSTANCE_SIZES"));
	/* a GPU request never fits on Azure (ARM does not report GPUs) */
	creq_init(&c, "7777aaaa");
	c.req.spec.gpus = 1;
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), -1);
	assert_int_equal(fake_requests(&e->fk, "PUT", "virtualMachines"), 1);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_delete_owner_and_ids(void **state)
{
	struct env *e;
	struct instance inst;
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	char upper[PROVIDER_ID_MAX];

	(void)state;
	e = env_up(NULL);
	fake_post(&e->fk, "/_fake/seed", "{\"name\":\"podvm-other-1\",\"tags\":{\"peerpods-owner\":\"node-b\"}}");
	fake_post(&e->fk, "/_fake/seed", "{\"name\":\"unrelated-vm\"}");
	create_ok(e, "8888bbbb", &inst);
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal((int)l.n, 1);
	assert_string_equal(l.items[0].name, "podvm-nginx-8888bbbb");
	owned_instance_list_free(&l);
	/* another node's VM, by name or by id: refused, untouched */
	assert_int_equal(ops()->delete_instance(e->p, "", "podvm-other-1", NULL, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "node-b"));
	assert_int_equal(ops()->delete_instance(e->p, "/subscriptions/sub-1/resourceGroups/rg-1/providers/"
						"Microsoft.Compute/virtualMachines/unrelated-vm", "", NULL,
						&err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_int_equal(fake_count(&e->fk, "Microsoft.Compute/virtualMachines"), 3);
	/* a bad id is an error naming it, not a silent success */
	assert_int_equal(ops()->delete_instance(e->p, "i-0123", "", NULL, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	/* our VM by its id in another case */
	for (size_t i = 0; i < sizeof(upper) && (upper[i] = inst.id[i]); i++)
		if (inst.id[i] >= 'a' && inst.id[i] <= 'z' && i < 60)
			upper[i] = (char)(inst.id[i] - 32);
	assert_int_equal(ops()->delete_instance(e->p, upper, "", NULL, &err), 0);
	assert_int_equal(fake_count(&e->fk, "Microsoft.Compute/virtualMachines"), 2);
	assert_int_equal(fake_count(&e->fk, "Microsoft.Network/networkInterfaces"), 0);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_list_paging(void **state)
{
	struct env *e;
	struct instance inst;
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	char sid[16];

	(void)state;
	e = env_up("{\"page_size\": 2}");
	for (int i = 0; i < 5; i++) {
		snprintf(sid, sizeof(sid), "%04x9999", i);
		create_ok(e, sid, &inst);
	}
	fake_post(&e->fk, "/_fake/seed", "{\"name\":\"podvm-zz-other\",\"tags\":{\"peerpods-owner\":\"node-b\"}}");
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal((int)l.n, 5);
	assert_int_equal(fake_requests(&e->fk, "GET", "/virtualMachines"), 3 + 5);   /* 3 pages + 5 creates */
	owned_instance_list_free(&l);
	fake_no_refusals(&e->fk);
	env_down(e);
}

struct canceller {
	struct cancel *c;
	unsigned ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;

	usleep(k->ms * 1000);
	cancel_fire(k->c, CANCEL_CLOSED);
	return NULL;
}

static void test_cancel_during_operation(void **state)
{
	struct env *e;
	struct instance inst;
	struct pp_err err = { 0 };
	struct creq c;
	struct canceller k;
	pthread_t t;

	(void)state;
	e = env_up("{\"lro_polls\": 1000, \"retry_after\": null}");
	creq_init(&c, "9999cccc");
	c.req.cancel = cancel_new(0);
	k.c = c.req.cancel;
	k.ms = 300;
	pthread_create(&t, NULL, cancel_later, &k);
	assert_int_equal(ops()->create_instance(e->p, &c.req, &inst, &err), -1);
	pthread_join(t, NULL);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_non_null(strstr(err.msg, "client went away"));
	/* StartVM cancelled => the VM is deleted */
	assert_int_equal(fake_count(&e->fk, NULL), 0);
	cancel_unref(c.req.cancel);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_token_refresh_and_401(void **state)
{
	struct env *e;
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };

	(void)state;
	e = env_up("{\"token_lifetime\": 2}");
	assert_int_equal(fake_tokens(&e->fk), 1);
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal(fake_tokens(&e->fk), 1);
	usleep(1200 * 1000);   /* past half of the 2 s lifetime: refreshed before expiry */
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal(fake_tokens(&e->fk), 2);
	/* ARM revokes the token early: one 401, a new token, the call succeeds */
	fake_post(&e->fk, "/_fake/expire", "{}");
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal(fake_tokens(&e->fk), 3);
	assert_int_equal(fake_requests(&e->fk, "GET", "/virtualMachines"), 4);
	owned_instance_list_free(&l);
	env_down(e);
}

static void test_bad_secret(void **state)
{
	struct env *e;
	struct pp_err err = { 0 };

	(void)state;
	e = env_new();
	fake_start(&e->fk, NULL);
	e->cfg = cfg_new(&e->fk);
	cfg_set(e->cfg, "AZURE_CLIENT_SECRET", "wrong-secret-XYZ");
	assert_int_equal(prov_start(e, OWNER, &err), -1);
	assert_int_equal(err.code, PP_UNAUTHENTICATED);
	assert_non_null(strstr(err.msg, "client-secret"));
	assert_non_null(strstr(err.msg, "invalid_client: AADSTS7000215"));
	assert_null(strstr(err.msg, "wrong-secret"));
	assert_int_equal(fake_requests(&e->fk, "GET", "vmSizes"), 0);
	env_down(e);
}

static void test_workload_identity(void **state)
{
	struct env *e;
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	char path[96];

	(void)state;
	e = env_new();
	fake_start(&e->fk, "{\"assertion\": \"eyJhbGciOi.first.sig\", \"token_lifetime\": 2}");
	snprintf(path, sizeof(path), "%s/token", e->fk.dir);
	assert_int_equal(file_write_atomic(path, "eyJhbGciOi.first.sig\n", 21, 0600, &err), 0);
	e->cfg = cfg_new(&e->fk);
	cfg_set(e->cfg, "AZURE_CLIENT_SECRET", "");
	cfg_set(e->cfg, "AZURE_FEDERATED_TOKEN_FILE", path);
	if (prov_start(e, OWNER, &err) < 0)
		fail_msg("start: %s", err.msg);
	/* the kubelet rotates the file: the next refresh reads the new one */
	assert_int_equal(file_write_atomic(path, "eyJhbGciOi.second.sig", 21, 0600, &err), 0);
	fake_post(&e->fk, "/_fake/config", "{\"assertion\": \"eyJhbGciOi.second.sig\"}");
	usleep(1200 * 1000);
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal(fake_tokens(&e->fk), 2);
	owned_instance_list_free(&l);
	fake_no_refusals(&e->fk);
	unlink(path);
	env_down(e);
}

static void test_managed_identity(void **state)
{
	struct env *e;
	struct pp_err err = { 0 };

	(void)state;
	e = env_new();
	fake_start(&e->fk, NULL);
	e->cfg = cfg_new(&e->fk);
	cfg_set(e->cfg, "AZURE_CLIENT_SECRET", "");
	if (prov_start(e, OWNER, &err) < 0)
		fail_msg("start: %s", err.msg);
	assert_int_equal(fake_requests(&e->fk, "GET", "/metadata/identity/oauth2/token"), 1);
	assert_int_equal(ops()->check(e->p, &err), 0);
	fake_no_refusals(&e->fk);
	env_down(e);
}

static void test_check(void **state)
{
	struct env *e;
	struct pp_err err = { 0 };

	(void)state;
	e = env_new();
	fake_start(&e->fk, NULL);
	e->cfg = cfg_new(&e->fk);
	cfg_set(e->cfg, "AZURE_RESOURCE_GROUP", "rg-missing");
	assert_int_equal(prov_start(e, OWNER, &err), 0);
	assert_int_equal(ops()->check(e->p, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "ResourceGroupNotFound"));
	env_down(e);
}

struct par {
	struct env *e;
	char sid[16];
	int rc;
	struct pp_err err;
};

static void *par_create(void *arg)
{
	struct par *pa = arg;
	struct instance inst;

	pa->rc = create(pa->e, pa->sid, &inst, &pa->err);
	return NULL;
}

static void test_parallel_creates_share_one_token(void **state)
{
	struct env *e;
	struct par pa[4];
	pthread_t t[4];
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };

	(void)state;
	e = env_up("{\"lro_polls\": 2}");
	fake_post(&e->fk, "/_fake/expire", "{}");   /* every thread finds no valid token at first... */
	fake_post(&e->fk, "/_fake/config", "{\"token_lifetime\": 3600}");
	for (int i = 0; i < 4; i++) {
		pa[i].e = e;
		snprintf(pa[i].sid, sizeof(pa[i].sid), "%04xdddd", i);
		pthread_create(&t[i], NULL, par_create, &pa[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (pa[i].rc != 0)
			fail_msg("create %d: %s", i, pa[i].err.msg);
	}
	/* ...but the cache still holds one that looks valid: the 401 path fetched new tokens, at most
	 * a few, not one per call */
	assert_true(fake_tokens(&e->fk) <= 1 + 4);
	assert_int_equal(ops()->list_instances(e->p, &l, NULL, &err), 0);
	assert_int_equal((int)l.n, 4);
	owned_instance_list_free(&l);
	fake_no_refusals(&e->fk);
	env_down(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_create_list_delete, teardown),
		cmocka_unit_test_teardown(test_lro_styles, teardown),
		cmocka_unit_test_teardown(test_retry_after_honoured, teardown),
		cmocka_unit_test_teardown(test_throttling_and_5xx, teardown),
		cmocka_unit_test_teardown(test_public_ip_first, teardown),
		cmocka_unit_test_teardown(test_ip_pending_then_ready, teardown),
		cmocka_unit_test_teardown(test_provision_failure_cleans_up, teardown),
		cmocka_unit_test_teardown(test_arm_error_surfaced, teardown),
		cmocka_unit_test_teardown(test_put_never_answered_cleans_up_by_name, teardown),
		cmocka_unit_test_teardown(test_user_data_limit_checked_first, teardown),
		cmocka_unit_test_teardown(test_size_selection, teardown),
		cmocka_unit_test_teardown(test_delete_owner_and_ids, teardown),
		cmocka_unit_test_teardown(test_list_paging, teardown),
		cmocka_unit_test_teardown(test_cancel_during_operation, teardown),
		cmocka_unit_test_teardown(test_token_refresh_and_401, teardown),
		cmocka_unit_test_teardown(test_bad_secret, teardown),
		cmocka_unit_test_teardown(test_workload_identity, teardown),
		cmocka_unit_test_teardown(test_managed_identity, teardown),
		cmocka_unit_test_teardown(test_check, teardown),
		cmocka_unit_test_teardown(test_parallel_creates_share_one_token, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
