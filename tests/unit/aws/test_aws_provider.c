/*
 * The `aws` provider end to end against the strict fake (tests/fakes/aws/fake_ec2.py), one
 * fresh fake per test on a loopback port it picks itself. The fake refuses anything the
 * provider should not send (and records it: teardown asserts no refusal unless the test
 * expected one); the tests then check what a user would: the instance the provider returns,
 * what the fake holds (tags, user-data, parameters), what was called and how often.
 *
 * PP_AWS_FAKE_DUMP=<file> makes the fake append every signed EC2 request to <file> (for the
 * botocore signature cross-check, sigv4_botocore.sh). PP_AWS_TEST_FILTER selects tests.
 */
#include <errno.h>
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
#include <jansson.h>

#include "adaptor/options.h"
#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/http.h"
#include "lib/util.h"
#include "providers/aws/aws_priv.h"

extern const struct provider_ops aws_provider_ops;

#define STATIC_AKID "AKIDFAKESTATIC000001"
#define STATIC_SECRET "fakeSecretKey/For+Tests=0123456789abcdef"
#define AMI "ami-0123456789abcdef0"
#define AMI_POD "ami-0fedcba987654321f"
#define OWNER "node-a"
#define USER_DATA "#cloud-config\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: '{}'\n"
#define MAX_KV 48

struct fx {
	char tmp[64];
	char url[64];
	pid_t fake;
	struct http_client *ctl;
	struct config *cfg;
	struct provider *p;
	bool rejections_expected;
	const char *kv[MAX_KV][2];
	size_t n_kv;
};

/* ---- the fake ---- */

static void fake_start(struct fx *f)
{
	const char *src = getenv("PP_SOURCE_DIR");
	const char *dump = getenv("PP_AWS_FAKE_DUMP");
	char script[512], portfile[128];
	uint8_t *port = NULL;
	size_t len = 0;
	struct pp_err err = { 0 };
	struct http_client_config hc = { .name = "fake-control", .max_attempts = 1 };

	assert_non_null(src);
	snprintf(script, sizeof(script), "%s/tests/fakes/aws/fake_ec2.py", src);
	snprintf(portfile, sizeof(portfile), "%s/port", f->tmp);
	f->fake = fork();
	assert_true(f->fake >= 0);
	if (f->fake == 0) {
		if (dump)
			execlp("python3", "python3", script, "--port-file", portfile, "--dump", dump, (char *)NULL);
		else
			execlp("python3", "python3", script, "--port-file", portfile, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(portfile, F_OK) != 0; i++)
		usleep(25000);
	assert_int_equal(file_read_all(portfile, 16, &port, &len, &err), 0);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%s", (char *)port);
	free(port);
	f->ctl = http_client_new(&hc, &err);
	assert_non_null(f->ctl);
}

static json_t *fake_call(struct fx *f, enum http_method m, const char *path, const char *body)
{
	char url[128];
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct http_request req = { .op = "control", .method = m, .url = url,
				    .body = body, .body_len = body ? strlen(body) : 0,
				    .content_type = "application/json" };
	struct pp_err err = { 0 };
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", f->url, path);
	if (http_do(f->ctl, &req, &resp, &err) < 0)
		fail_msg("fake control %s: %s", path, err.msg);
	j = json_loads(http_response_text(&resp), 0, NULL);
	assert_non_null(j);
	http_response_free(&resp);
	return j;
}

static void fake_post(struct fx *f, const char *path, const char *json)
{
	json_decref(fake_call(f, HTTP_POST, path, json));
}

static json_t *fake_state(struct fx *f)
{
	return fake_call(f, HTTP_GET, "/_fake/state", NULL);
}

static int fake_count(struct fx *f, const char *service, const char *action)
{
	json_t *st = fake_state(f), *c;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(st, "calls"), i, c)
		if (strcmp(json_string_value(json_array_get(c, 0)), service) == 0 &&
		    (!action || strcmp(json_string_value(json_array_get(c, 1)), action) == 0))
			n++;
	json_decref(st);
	return n;
}

static int fake_rejections(struct fx *f)
{
	json_t *st = fake_state(f);
	int n = (int)json_array_size(json_object_get(st, "rejections"));

	json_decref(st);
	return n;
}

/* The fake's record of instance id (a new reference). */
static json_t *fake_instance(struct fx *f, const char *id)
{
	json_t *st = fake_state(f);
	json_t *i = json_incref(json_object_get(json_object_get(st, "instances"), id));

	json_decref(st);
	assert_non_null(i);
	return i;
}

static const char *jstr(json_t *o, const char *path)
{
	char key[128];
	const char *dot;

	while ((dot = strchr(path, '.')) && strncmp(path, "params.", 7) != 0) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	if (strncmp(path, "params.", 7) == 0) {
		o = json_object_get(o, "params");
		path += 7;
	}
	return json_string_value(json_object_get(o, path));
}

/* ---- fixture ---- */

static void kv_set(struct fx *f, const char *key, const char *value)
{
	for (size_t i = 0; i < f->n_kv; i++)
		if (strcmp(f->kv[i][0], key) == 0) {
			f->kv[i][1] = value;
			return;
		}
	assert_true(f->n_kv < MAX_KV);
	f->kv[f->n_kv][0] = key;
	f->kv[f->n_kv++][1] = value;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char cred[160], conf[160];
	static char cred_s[160], conf_s[160];

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/pp.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	fake_start(f);
	snprintf(cred, sizeof(cred), "%s/credentials", f->tmp);
	snprintf(conf, sizeof(conf), "%s/config", f->tmp);
	memcpy(cred_s, cred, sizeof(cred));
	memcpy(conf_s, conf, sizeof(conf));
	kv_set(f, "AWS_ACCESS_KEY_ID", STATIC_AKID);
	kv_set(f, "AWS_SECRET_ACCESS_KEY", STATIC_SECRET);
	kv_set(f, "AWS_REGION", "us-east-1");
	kv_set(f, "PODVM_AMI_ID", AMI);
	kv_set(f, "AWS_SUBNET_ID", "subnet-0a1b2c3d");
	kv_set(f, "AWS_SG_IDS", "sg-0a1b2c3d,sg-0e0f1a2b");
	kv_set(f, "SSH_KP_NAME", "test-key");
	kv_set(f, "PODVM_INSTANCE_TYPES", "m6a.large,c6a.xlarge,r6a.large");
	kv_set(f, "TAGS", "team=peerpods,env=test");
	kv_set(f, "AWS_ENDPOINT_URL_EC2", f->url);
	kv_set(f, "AWS_ENDPOINT_URL_STS", f->url);
	kv_set(f, "AWS_EC2_METADATA_SERVICE_ENDPOINT", f->url);
	kv_set(f, "AWS_EC2_METADATA_DISABLED", "true");
	kv_set(f, "AWS_SHARED_CREDENTIALS_FILE", cred_s);
	kv_set(f, "AWS_CONFIG_FILE", conf_s);
	kv_set(f, "AWS_PUBLIC_IP_TIMEOUT", "20s");
	fake_post(f, "/_fake/config", "{\"expect_owner\": \"" OWNER "\", \"expect_subnet\": "
		  "\"subnet-0a1b2c3d\", \"expect_sgs\": [\"sg-0a1b2c3d\", \"sg-0e0f1a2b\"], "
		  "\"expect_key_name\": \"test-key\", \"expect_tags\": {\"team\": \"peerpods\", "
		  "\"env\": \"test\"}}");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int status;

	provider_free(f->p);
	config_free(f->cfg);
	if (!f->rejections_expected)
		assert_int_equal(fake_rejections(f), 0);
	http_client_free(f->ctl);
	kill(f->fake, SIGTERM);
	waitpid(f->fake, &status, 0);
	rm_rf(f->tmp, NULL);
	free(f);
	return 0;
}

/* Builds the config from the fixture's key/values ("" = left at its default) and starts the
 * provider; returns provider_start's result (err filled). */
static int fx_start(struct fx *f, struct pp_err *err)
{
	const struct config_option *const tables[] = { adaptor_options, aws_options, NULL };

	f->cfg = config_new(tables, err);
	assert_non_null(f->cfg);
	for (size_t i = 0; i < f->n_kv; i++)
		if (f->kv[i][1][0] && config_set(f->cfg, f->kv[i][0], f->kv[i][1], err) < 0)
			fail_msg("config_set %s: %s", f->kv[i][0], err->msg);
	f->p = provider_new(&aws_provider_ops, f->cfg, OWNER, f->tmp, err);
	assert_non_null(f->p);
	return provider_start(f->p, err);
}

static void fx_start_ok(struct fx *f)
{
	struct pp_err err = { 0 };

	if (fx_start(f, &err) < 0)
		fail_msg("provider init: %s", err.msg);
}

static struct create_request mkreq(const char *sandbox, const char *name)
{
	struct create_request r = {
		.sandbox_id = sandbox, .pod_name = "nginx", .pod_namespace = "default",
		.instance_name = name, .user_data = USER_DATA, .user_data_len = strlen(USER_DATA),
		.spec = { .instance_type = "", .image = "" },
	};

	return r;
}

static void create_ok(struct fx *f, const struct create_request *r, struct instance *inst)
{
	struct pp_err err = { 0 };

	if (aws_provider_ops.create_instance(f->p, r, inst, &err) < 0)
		fail_msg("create_instance: %s", err.msg);
	assert_true(aws_instance_id_valid(inst->id));
	assert_string_equal(inst->name, r->instance_name);
	assert_true(inst->n_ips >= 1);
}

/* ---- start-up ---- */

static void test_init_and_create(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("0123abcd0123abcd", "podvm-nginx-0123abcd");
	struct instance inst;
	json_t *i;
	uint8_t *ud = NULL;
	size_t ud_len = 0;
	struct pp_err err = { 0 };

	fx_start_ok(f);
	assert_int_equal(fake_count(f, "ec2", "DescribeImages"), 1);
	assert_int_equal(fake_count(f, "ec2", "DescribeInstanceTypes"), 1);
	assert_int_equal(fake_count(f, "imds", NULL), 0);          /* disabled: never called */
	create_ok(f, &r, &inst);
	assert_true(str_has_prefix(inst.ips[0], "10.0."));
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "type"), "m6a.large");         /* the default */
	assert_string_equal(jstr(i, "tags.Name"), "podvm-nginx-0123abcd");
	assert_string_equal(jstr(i, "tags.peerpod-owner"), OWNER);
	assert_string_equal(jstr(i, "tags.peerpod-sandbox-id"), "0123abcd0123abcd");
	assert_string_equal(jstr(i, "tags.team"), "peerpods");
	assert_string_equal(jstr(i, "params.CpuOptions.AmdSevSnp"), "enabled");
	assert_string_equal(jstr(i, "params.BlockDeviceMapping.1.DeviceName"), "/dev/xvda");
	assert_string_equal(jstr(i, "params.BlockDeviceMapping.1.Ebs.VolumeSize"), "30");
	assert_string_equal(jstr(i, "params.KeyName"), "test-key");
	assert_int_equal(base64_decode(jstr(i, "user_data"), strlen(jstr(i, "user_data")), &ud, &ud_len,
				       &err), 0);
	assert_int_equal(ud_len, strlen(USER_DATA));
	assert_memory_equal(ud, USER_DATA, ud_len);
	free(ud);
	json_decref(i);
}

static void test_best_fit_and_allowed_list(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("1111aaaa", "podvm-big-1111aaaa");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *i;

	fx_start_ok(f);
	r.spec.vcpus = 4;
	r.spec.memory_mib = 8000;
	create_ok(f, &r, &inst);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "type"), "c6a.xlarge");       /* smallest fitting */
	json_decref(i);
	r = mkreq("2222bbbb", "podvm-mem-2222bbbb");
	r.spec.vcpus = 2;
	r.spec.memory_mib = 12000;
	create_ok(f, &r, &inst);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "type"), "r6a.large");
	json_decref(i);
	r = mkreq("3333cccc", "podvm-gpu-3333cccc");
	r.spec.instance_type = "t3.medium";
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "t3.medium"));
	assert_non_null(strstr(err.msg, "PODVM_INSTANCE_TYPES"));
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 2);
}

static void expect_init_error(struct fx *f, int code, const char *text)
{
	struct pp_err err = { 0 };

	assert_int_equal(fx_start(f, &err), -1);
	if (!strstr(err.msg, text))
		fail_msg("init error \"%s\" does not contain \"%s\"", err.msg, text);
	if (code >= 0)
		assert_int_equal(err.code, code);
	assert_null(strstr(err.msg, STATIC_SECRET));
}

static void test_init_errors(void **state)
{
	struct fx *f = *state;

	kv_set(f, "PODVM_AMI_ID", "ami-0badbadbadbadbad0");
	expect_init_error(f, PP_NOT_FOUND, "EC2 DescribeImages: InvalidAMIID.NotFound");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "PODVM_AMI_ID", "ami-00000000000000b0d");
	expect_init_error(f, PP_FAILED_PRECONDITION, "no EBS block-device mapping");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "PODVM_AMI_ID", "ami-0000000000000b105");
	expect_init_error(f, PP_FAILED_PRECONDITION, "legacy-bios");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "PODVM_AMI_ID", AMI);
	kv_set(f, "PODVM_INSTANCE_TYPES", "m6a.large,t3.medium");
	expect_init_error(f, PP_FAILED_PRECONDITION, "t3.medium does not support AMD SEV-SNP");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "PODVM_INSTANCE_TYPES", "m6a.large,m9.huge");
	expect_init_error(f, PP_NOT_FOUND, "InvalidInstanceType");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "PODVM_INSTANCE_TYPES", "");
	kv_set(f, "TAGS", "Name=evil");
	expect_init_error(f, PP_INVALID_ARGUMENT, "TAGS key Name is reserved");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "TAGS", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	expect_init_error(f, PP_INVALID_ARGUMENT, "static credentials need both");
	provider_free(f->p);
	config_free(f->cfg);
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "wrong-secret-value");
	expect_init_error(f, PP_UNAUTHENTICATED, "SignatureDoesNotMatch");
	provider_free(f->p);
	config_free(f->cfg);
	f->p = NULL;
	f->cfg = NULL;
}

static void test_disable_cvm(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("4444dddd", "podvm-plain-4444dddd");
	struct instance inst;
	json_t *i;

	kv_set(f, "DISABLECVM", "true");
	kv_set(f, "PODVM_INSTANCE_TYPES", "t3.medium,m6a.large");
	fake_post(f, "/_fake/config", "{\"expect_sev_snp\": false}");
	fx_start_ok(f);
	r.spec.instance_type = "t3.medium";
	create_ok(f, &r, &inst);
	i = fake_instance(f, inst.id);
	assert_null(jstr(i, "params.CpuOptions.AmdSevSnp"));
	assert_string_equal(jstr(i, "type"), "t3.medium");
	json_decref(i);
}

static void test_pod_image_root_device(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("5555eeee", "podvm-img-5555eeee");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *i;

	fx_start_ok(f);
	r.spec.image = AMI_POD;
	create_ok(f, &r, &inst);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "image"), AMI_POD);
	assert_string_equal(jstr(i, "params.BlockDeviceMapping.1.DeviceName"), "/dev/sda1");
	assert_string_equal(jstr(i, "params.BlockDeviceMapping.1.Ebs.VolumeSize"), "50");
	json_decref(i);
	r = mkreq("6666ffff", "podvm-img-6666ffff");
	r.spec.image = "ami-0badbadbadbadbad0";
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_non_null(strstr(err.msg, "InvalidAMIID.NotFound"));
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 1);
}

static void test_public_ip(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("7777aaaa", "podvm-pub-7777aaaa");
	struct instance inst;
	json_t *i;

	kv_set(f, "USE_PUBLIC_IP", "true");
	fake_post(f, "/_fake/config", "{\"expect_public_ip\": true, \"expect_subnet\": null, "
		  "\"expect_sgs\": null, \"pending_polls\": 3}");
	fx_start_ok(f);
	create_ok(f, &r, &inst);
	assert_true(str_has_prefix(inst.ips[0], "192.168."));   /* the public IP replaces IPs[0] */
	assert_int_equal(inst.n_ips, 1);
	assert_int_equal(fake_count(f, "ec2", "DescribeInstances"), 3);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "params.NetworkInterface.1.SubnetId"), "subnet-0a1b2c3d");
	assert_string_equal(jstr(i, "params.NetworkInterface.1.SecurityGroupId.2"), "sg-0e0f1a2b");
	json_decref(i);
}

static void test_public_ip_timeout_cleans_up(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("8888bbbb", "podvm-slow-8888bbbb");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *st, *it;
	const char *id;

	kv_set(f, "USE_PUBLIC_IP", "true");
	kv_set(f, "AWS_PUBLIC_IP_TIMEOUT", "1s");
	fake_post(f, "/_fake/config", "{\"expect_public_ip\": true, \"expect_subnet\": null, "
		  "\"expect_sgs\": null, \"pending_polls\": 100000}");
	fx_start_ok(f);
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	assert_non_null(strstr(err.msg, "AWS_PUBLIC_IP_TIMEOUT"));
	st = fake_state(f);
	json_object_foreach(json_object_get(st, "instances"), id, it)
		assert_string_equal(json_string_value(json_object_get(it, "state")), "shutting-down");
	assert_int_equal(json_object_size(json_object_get(st, "instances")), 1);
	json_decref(st);
}

static void test_cancel_cleans_up(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("9999cccc", "podvm-cancel-9999cccc");
	struct instance inst;
	struct pp_err err = { 0 };
	uint64_t t0;

	kv_set(f, "USE_PUBLIC_IP", "true");
	fake_post(f, "/_fake/config", "{\"expect_public_ip\": true, \"expect_subnet\": null, "
		  "\"expect_sgs\": null, \"pending_polls\": 100000}");
	fx_start_ok(f);
	r.cancel = cancel_new((pp_monotonic_ms() + 700) * 1000000ull);
	t0 = pp_monotonic_ms();
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_true(pp_monotonic_ms() - t0 < 5000);
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	assert_int_equal(fake_count(f, "ec2", "TerminateInstances"), 1);   /* cleanup ignores the token */
	cancel_unref(r.cancel);
}

static void test_launch_template(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("aaaa1111", "podvm-lt-aaaa1111");
	struct instance inst;
	json_t *i;

	kv_set(f, "USE_PODVM_LAUNCHTEMPLATE", "true");
	kv_set(f, "PODVM_LAUNCHTEMPLATE_NAME", "kata-snp");
	fx_start_ok(f);
	assert_int_equal(fake_count(f, "ec2", "DescribeInstanceTypes"), 0);
	create_ok(f, &r, &inst);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "params.LaunchTemplate.LaunchTemplateName"), "kata-snp");
	assert_null(jstr(i, "params.ImageId"));
	assert_string_equal(jstr(i, "params.BlockDeviceMapping.1.DeviceName"), "/dev/xvda");
	json_decref(i);
}

static void test_user_data_limit(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("bbbb2222", "podvm-big-bbbb2222");
	struct instance inst;
	struct pp_err err = { 0 };
	char *ud = pp_xmalloc(AWS_MAX_USER_DATA + 1);

	fx_start_ok(f);
	memset(ud, 'x', AWS_MAX_USER_DATA + 1);
	memcpy(ud, "#cloud-config\n", 14);
	r.user_data = ud;
	r.user_data_len = AWS_MAX_USER_DATA + 1;
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "16385 bytes"));
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 0);     /* checked before the call */
	r.user_data_len = AWS_MAX_USER_DATA;                           /* exactly the limit: fine */
	create_ok(f, &r, &inst);
	free(ud);
}

/* ---- failures on the wire ---- */

static void test_throttling(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("cccc3333", "podvm-thr-cccc3333");
	struct instance inst;
	json_t *st;

	fx_start_ok(f);
	/* EC2's own form (503), retried by lib/http, and a 400 form, retried by the provider */
	fake_post(f, "/_fake/fault", "{\"action\": \"RunInstances\", \"status\": 503, \"code\": "
		  "\"RequestLimitExceeded\", \"times\": 2}");
	fake_post(f, "/_fake/fault", "{\"action\": \"RunInstances\", \"status\": 400, \"code\": "
		  "\"RequestLimitExceeded\", \"times\": 2}");
	create_ok(f, &r, &inst);
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 5);
	st = fake_state(f);
	assert_int_equal(json_object_size(json_object_get(st, "instances")), 1);
	json_decref(st);
}

static void test_throttling_gives_up(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("dddd4444", "podvm-thr-dddd4444");
	struct instance inst;
	struct pp_err err = { 0 };

	fx_start_ok(f);
	fake_post(f, "/_fake/fault", "{\"action\": \"RunInstances\", \"status\": 400, \"code\": "
		  "\"RequestLimitExceeded\", \"message\": \"Request limit exceeded.\", \"times\": 100}");
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "EC2 RunInstances: RequestLimitExceeded: Request limit exceeded."));
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), AWS_THROTTLE_ATTEMPTS);
	assert_int_equal(fake_count(f, "ec2", "TerminateInstances"), 0);   /* nothing was created */
}

/* The instance is created but the answer is lost: the retry with the same ClientToken gets the
 * same instance back, never a second one. */
static void test_lost_answer_is_idempotent(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("eeee5555", "podvm-lost-eeee5555");
	struct instance inst;
	json_t *st;

	fx_start_ok(f);
	fake_post(f, "/_fake/fault", "{\"action\": \"RunInstances\", \"reset\": true, \"after\": true, "
		  "\"times\": 1}");
	create_ok(f, &r, &inst);
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 2);
	st = fake_state(f);
	assert_int_equal(json_object_size(json_object_get(st, "instances")), 1);
	json_decref(st);
}

/* Every answer lost: the create fails, and the instance it made is found by name and deleted. */
static void test_lost_answers_clean_up_by_name(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("ffff6666", "podvm-lost-ffff6666");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *st, *it;
	const char *id;

	fx_start_ok(f);
	fake_post(f, "/_fake/instance", "{\"tags\": {\"Name\": \"podvm-lost-ffff6666\", "
		  "\"peerpod-owner\": \"node-b\", \"peerpod-sandbox-id\": \"x\"}}");
	fake_post(f, "/_fake/fault", "{\"action\": \"RunInstances\", \"reset\": true, \"after\": true, "
		  "\"times\": 100}");
	assert_int_equal(aws_provider_ops.create_instance(f->p, &r, &inst, &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	st = fake_state(f);
	json_object_foreach(json_object_get(st, "instances"), id, it) {
		const char *owner = json_string_value(json_object_get(json_object_get(it, "tags"), "peerpod-owner"));
		const char *s = json_string_value(json_object_get(it, "state"));

		/* ours is terminated; node-b's instance of the same name is untouched */
		assert_string_equal(s, strcmp(owner, OWNER) == 0 ? "shutting-down" : "running");
	}
	assert_int_equal(json_object_size(json_object_get(st, "instances")), 2);
	json_decref(st);
}

/* ---- delete and list ---- */

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("abcd7777", "podvm-del-abcd7777");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *i;

	fx_start_ok(f);
	create_ok(f, &r, &inst);
	assert_int_equal(aws_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "state"), "shutting-down");
	json_decref(i);
	/* again, and an id EC2 never heard of: both already gone = success */
	assert_int_equal(aws_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	assert_int_equal(aws_provider_ops.delete_instance(f->p, "i-0000000000000dead", "x", NULL, &err), 0);
	/* a malformed id is refused without a call */
	assert_int_equal(aws_provider_ops.delete_instance(f->p, "podvm-x", "x", NULL, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(fake_count(f, "ec2", "TerminateInstances"), 3);
}

static void test_delete_by_name(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("abcd8888", "podvm-name-abcd8888");
	struct instance inst;
	struct pp_err err = { 0 };
	json_t *i, *other;
	char other_id[64];

	fx_start_ok(f);
	other = fake_call(f, HTTP_POST, "/_fake/instance", "{\"tags\": {\"Name\": \"podvm-name-abcd8888\", "
			  "\"peerpod-owner\": \"node-b\", \"peerpod-sandbox-id\": \"x\"}}");
	pp_strlcpy(other_id, json_string_value(json_object_get(other, "id")), sizeof(other_id));
	json_decref(other);
	create_ok(f, &r, &inst);
	assert_int_equal(aws_provider_ops.delete_instance(f->p, "", inst.name, NULL, &err), 0);
	i = fake_instance(f, inst.id);
	assert_string_equal(jstr(i, "state"), "shutting-down");
	json_decref(i);
	i = fake_instance(f, other_id);
	assert_string_equal(jstr(i, "state"), "running");
	json_decref(i);
	/* nothing of that name left: success */
	assert_int_equal(aws_provider_ops.delete_instance(f->p, "", "podvm-none-00000000", NULL, &err), 0);
	assert_int_equal(aws_provider_ops.delete_instance(f->p, "", "", NULL, &err), -1);
}

static void test_delete_releases_elastic_ips(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("abcd9999", "podvm-eip-abcd9999");
	struct instance inst;
	struct pp_err err = { 0 };
	char body[2048];
	json_t *st, *a;
	size_t idx;

	fx_start_ok(f);
	create_ok(f, &r, &inst);
	snprintf(body, sizeof(body), "{\"instance\": \"%s\", \"ip\": \"3.3.3.3\", \"allocation\": "
		 "\"eipalloc-0001\", \"association\": \"eipassoc-0001\", \"tags\": {\"Name\": \"eip-%s\"}}",
		 inst.id, inst.id);
	fake_post(f, "/_fake/address", body);
	snprintf(body, sizeof(body), "{\"instance\": \"%s\", \"ip\": \"4.4.4.4\", \"allocation\": "
		 "\"eipalloc-0002\", \"association\": \"eipassoc-0002\", \"tags\": {\"Name\": \"users\"}}",
		 inst.id);
	fake_post(f, "/_fake/address", body);
	assert_int_equal(aws_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
	st = fake_state(f);
	json_array_foreach(json_object_get(st, "addresses"), idx, a) {
		assert_true(json_is_true(json_object_get(a, "disassociated")));
		/* only the address made for this instance is released, not a user's */
		assert_int_equal(json_is_true(json_object_get(a, "released")), idx == 0);
	}
	json_decref(st);
}

static void test_list_owned(void **state)
{
	struct fx *f = *state;
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };
	struct instance inst[5];
	char sid[5][32], name[5][64];
	int found = 0;

	fx_start_ok(f);
	fake_post(f, "/_fake/config", "{\"page_size\": 2}");
	fake_post(f, "/_fake/instance", "{\"tags\": {\"Name\": \"podvm-other-1\", \"peerpod-owner\": "
		  "\"node-b\", \"peerpod-sandbox-id\": \"x\"}}");
	for (int k = 0; k < 5; k++) {
		struct create_request r;

		snprintf(sid[k], sizeof(sid[k]), "%08x%08x", 0x10 + k, k);
		snprintf(name[k], sizeof(name[k]), "podvm-list-%08x", 0x10 + k);
		r = mkreq(sid[k], name[k]);
		create_ok(f, &r, &inst[k]);
	}
	assert_int_equal(aws_provider_ops.delete_instance(f->p, inst[4].id, name[4], NULL, &err), 0);
	assert_int_equal(aws_provider_ops.list_instances(f->p, &l, NULL, &err), 0);
	assert_int_equal(l.n, 4);                   /* node-b's and the terminated one are not ours */
	for (size_t i = 0; i < l.n; i++)
		for (int k = 0; k < 4; k++)
			if (strcmp(l.items[i].id, inst[k].id) == 0) {
				assert_string_equal(l.items[i].name, name[k]);
				assert_string_equal(l.items[i].sandbox_id, sid[k]);
				assert_true(l.items[i].created_unix > 1700000000);
				found++;
			}
	assert_int_equal(found, 4);
	assert_true(fake_count(f, "ec2", "DescribeInstances") >= 2);   /* paginated */
	owned_instance_list_free(&l);
	assert_int_equal(aws_provider_ops.check(f->p, &err), 0);
}

/* ---- credentials ---- */

static void write_file(struct fx *f, const char *name, const char *text, char *path, size_t size)
{
	struct pp_err err = { 0 };

	snprintf(path, size, "%s/%s", f->tmp, name);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600, &err), 0);
}

static void test_session_token(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("1234abcd", "podvm-tok-1234abcd");
	struct instance inst;

	kv_set(f, "AWS_ACCESS_KEY_ID", "ASIATEMPORARY0000001");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "tempSecret/+=abc");
	kv_set(f, "AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjE+/=token==");
	fake_post(f, "/_fake/creds", "{\"akid\": \"ASIATEMPORARY0000001\", \"secret\": "
		  "\"tempSecret/+=abc\", \"token\": \"IQoJb3JpZ2luX2VjE+/=token==\"}");
	fx_start_ok(f);
	create_ok(f, &r, &inst);
}

static void test_web_identity(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("2345abcd", "podvm-web-2345abcd");
	struct instance inst;
	char path[256];

	write_file(f, "token", "web-token-1\n", path, sizeof(path));
	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/peerpods");
	kv_set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", path);
	fx_start_ok(f);
	create_ok(f, &r, &inst);
	/* one hour credentials: fetched once for init and create */
	assert_int_equal(fake_count(f, "sts", "AssumeRoleWithWebIdentity"), 1);
}

static void test_web_identity_refresh(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("3456abcd", "podvm-web-3456abcd");
	struct instance inst;
	struct pp_err err = { 0 };
	char path[256];
	int before;

	write_file(f, "token", "web-token-1", path, sizeof(path));
	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/peerpods");
	kv_set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", path);
	/* credentials that expire within the refresh margin: every call refreshes first */
	fake_post(f, "/_fake/config", "{\"sts_duration\": 60}");
	fx_start_ok(f);
	before = fake_count(f, "sts", NULL);
	assert_int_equal(before, 2);                       /* DescribeImages, DescribeInstanceTypes */
	/* the kubelet rotates the token file: the next refresh must read the new one */
	write_file(f, "token", "web-token-2", path, sizeof(path));
	fake_post(f, "/_fake/config", "{\"web_token\": \"web-token-2\"}");
	create_ok(f, &r, &inst);
	assert_int_equal(fake_count(f, "sts", NULL), before + 1);
	/* STS refuses now: the old credentials expire within a minute but are still valid */
	fake_post(f, "/_fake/config", "{\"web_token\": \"web-token-3\"}");
	assert_int_equal(aws_provider_ops.delete_instance(f->p, inst.id, inst.name, NULL, &err), 0);
}

static void test_web_identity_bad_token(void **state)
{
	struct fx *f = *state;
	char path[256];

	write_file(f, "token", "not-the-token", path, sizeof(path));
	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/peerpods");
	kv_set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", path);
	expect_init_error(f, PP_UNAUTHENTICATED, "STS AssumeRoleWithWebIdentity: InvalidIdentityToken");
	provider_free(f->p);
	config_free(f->cfg);
	f->p = NULL;
	f->cfg = NULL;
	kv_set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", "");
	expect_init_error(f, PP_INVALID_ARGUMENT, "no web identity token file");
}

static void test_profile(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("4567abcd", "podvm-prof-4567abcd");
	struct instance inst;
	char path[256];

	write_file(f, "credentials", "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = x\n"
		   "[peer]\naws_access_key_id = " STATIC_AKID "\naws_secret_access_key = " STATIC_SECRET "\n",
		   path, sizeof(path));
	write_file(f, "config", "[profile peer]\nregion = us-east-1\n", path, sizeof(path));
	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_REGION", "");
	kv_set(f, "AWS_PROFILE", "peer");
	fx_start_ok(f);
	create_ok(f, &r, &inst);
	provider_free(f->p);
	config_free(f->cfg);
	f->p = NULL;
	f->cfg = NULL;
	kv_set(f, "AWS_PROFILE", "missing");
	kv_set(f, "AWS_REGION", "us-east-1");
	expect_init_error(f, PP_INVALID_ARGUMENT, "AWS_PROFILE missing is in neither");
}

static void test_imds(void **state)
{
	struct fx *f = *state;
	struct create_request r = mkreq("5678abcd", "podvm-imds-5678abcd");
	struct instance inst;

	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_REGION", "");
	kv_set(f, "AWS_SUBNET_ID", "");
	kv_set(f, "AWS_SG_IDS", "");
	kv_set(f, "SSH_KP_NAME", "");
	kv_set(f, "AWS_EC2_METADATA_DISABLED", "false");
	fake_post(f, "/_fake/config", "{\"expect_sgs\": [\"sg-0a1b2c3d\", \"sg-0e0f1a2b\"], "
		  "\"expect_key_name\": \"node-key\"}");
	fx_start_ok(f);
	create_ok(f, &r, &inst);
	assert_true(fake_count(f, "imds", "/latest/api/token") >= 6);
	assert_int_equal(fake_count(f, "imds", "/latest/meta-data/iam/security-credentials/peerpods-node"), 1);
}

static void test_imds_absent(void **state)
{
	struct fx *f = *state;

	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	expect_init_error(f, PP_UNAUTHENTICATED, "no AWS credentials");
	provider_free(f->p);
	config_free(f->cfg);
	f->p = NULL;
	f->cfg = NULL;
	/* IMDS enabled but answering nothing useful: no region */
	kv_set(f, "AWS_ACCESS_KEY_ID", STATIC_AKID);
	kv_set(f, "AWS_SECRET_ACCESS_KEY", STATIC_SECRET);
	kv_set(f, "AWS_REGION", "");
	kv_set(f, "AWS_EC2_METADATA_DISABLED", "false");
	fake_post(f, "/_fake/config", "{\"imds\": {}}");
	expect_init_error(f, PP_INVALID_ARGUMENT, "no AWS region");
}

/* ---- threads ---- */

struct par {
	struct fx *f;
	int k;
	int rc;
	struct instance inst;
};

static void *par_create(void *arg)
{
	struct par *a = arg;
	char sid[32], name[64];
	struct create_request r;
	struct pp_err err = { 0 };

	snprintf(sid, sizeof(sid), "%08xcafe", 0x100 + a->k);
	snprintf(name, sizeof(name), "podvm-par-%08x", 0x100 + a->k);
	r = mkreq(sid, name);
	a->rc = aws_provider_ops.create_instance(a->f->p, &r, &a->inst, &err);
	if (a->rc == 0)
		a->rc = aws_provider_ops.delete_instance(a->f->p, a->inst.id, name, NULL, &err);
	return NULL;
}

static void test_parallel_web_identity(void **state)
{
	struct fx *f = *state;
	struct par a[6];
	pthread_t t[6];
	char path[256];

	write_file(f, "token", "web-token-1", path, sizeof(path));
	kv_set(f, "AWS_ACCESS_KEY_ID", "");
	kv_set(f, "AWS_SECRET_ACCESS_KEY", "");
	kv_set(f, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/peerpods");
	kv_set(f, "AWS_WEB_IDENTITY_TOKEN_FILE", path);
	fake_post(f, "/_fake/config", "{\"sts_duration\": 60}");
	fx_start_ok(f);
	for (int k = 0; k < 6; k++) {
		a[k] = (struct par){ .f = f, .k = k };
		assert_int_equal(pthread_create(&t[k], NULL, par_create, &a[k]), 0);
	}
	for (int k = 0; k < 6; k++) {
		pthread_join(t[k], NULL);
		assert_int_equal(a[k].rc, 0);
	}
	assert_int_equal(fake_count(f, "ec2", "RunInstances"), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_and_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_best_fit_and_allowed_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disable_cvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_image_root_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_ip_timeout_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_launch_template, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_data_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttling_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_answer_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_answers_clean_up_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_releases_elastic_ips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_web_identity_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_web_identity_bad_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_imds_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_web_identity, setup, teardown),
	};

	if (getenv("PP_AWS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PP_AWS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
