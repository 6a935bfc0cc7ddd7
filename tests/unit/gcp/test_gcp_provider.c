/*
 * The gcp provider against the strict fake (tests/fakes/gcp/fake_gce.py on 127.0.0.1): start-up
 * (token, machine types, image, tags), create / list / delete, the operation protocol, failure
 * injection (429 with Retry-After, 500, a lost answer, slow waits), Google errors surfaced,
 * token refresh and 401, the metadata server, cancellation with cleanup by name, owners.
 * Each test gets its own fake; teardown fails the test if the fake saw anything unexpected.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gcp_testenv.h"
#include "lib/cancel.h"
#include "lib/util.h"
#include "providers/gcp/gcp_priv.h"

#define SID1 "0001beef0123456789abcdef0123456789abcdef0123456789abcdef01234567"

static int setup(void **state)
{
	struct testenv *te = pp_xcalloc(1, sizeof(*te));

	if (te_start(te, true) < 0)
		return -1;
	*state = te;
	return 0;
}

static int teardown(void **state)
{
	struct testenv *te = *state;

	te_stop(te);
	free(te);
	return 0;
}

static struct provider *start_ok(struct testenv *te, const char *const *kv)
{
	struct pp_err err = { 0 };

	te->cfg = te_config(te, kv);
	te->prov = te_provider(te, te->cfg, "node-a", &err);
	if (!te->prov)
		fail_msg("provider start: %s", err.msg);
	return te->prov;
}

static void start_fails(struct testenv *te, const char *const *kv, int code, const char *needle)
{
	struct pp_err err = { 0 };

	te->cfg = te_config(te, kv);
	assert_null(te_provider(te, te->cfg, "node-a", &err));
	if (!strstr(err.msg, needle))
		fail_msg("start error \"%s\" does not mention \"%s\"", err.msg, needle);
	assert_int_equal(err.code, code);
}

static void request(struct create_request *req, const char *name, const char *ud)
{
	memset(req, 0, sizeof(*req));
	req->sandbox_id = SID1;
	req->pod_name = "nginx";
	req->pod_namespace = "default";
	req->instance_name = name;
	req->user_data = ud;
	req->user_data_len = strlen(ud);
}

static int create(struct provider *p, struct create_request *req, struct instance *ret,
		  struct pp_err *err)
{
	return provider_get_ops(p)->create_instance(p, req, ret, err);
}

static int delete(struct provider *p, const char *id, const char *name, struct pp_err *err)
{
	return provider_get_ops(p)->delete_instance(p, id, name, NULL, err);
}

static json_t *fake_instance(struct testenv *te, json_t *st, const char *name)
{
	(void)te;
	return json_object_get(json_object_get(st, "instances"), name);
}

static json_t *last_insert(json_t *st)
{
	json_t *a = json_object_get(st, "inserts");

	return json_array_get(a, json_array_size(a) - 1);
}

/* ---- tests ---- */

static void test_create_list_delete(void **state)
{
	struct testenv *te = *state;
	struct provider *p = start_ok(te, NULL);
	struct create_request req;
	struct instance inst = { 0 };
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };
	json_t *st, *in, *body;

	request(&req, "podvm-nginx-0001beef", "#cloud-config\nwrite_files: []\n");
	req.spec.vcpus = 4;
	req.spec.memory_mib = 16384;
	assert_int_equal(create(p, &req, &inst, &err), 0);
	assert_string_equal(inst.id, "podvm-nginx-0001beef");
	assert_string_equal(inst.name, "podvm-nginx-0001beef");
	assert_int_equal(inst.n_ips, 1);
	assert_true(strncmp(inst.ips[0], "10.0.0.", 7) == 0);

	st = te_state(te);
	in = fake_instance(te, st, "podvm-nginx-0001beef");
	assert_non_null(in);
	assert_string_equal(json_string_value(json_object_get(in, "status")), "RUNNING");
	assert_string_equal(json_string_value(json_object_get(in, "user_data")),
			    "#cloud-config\nwrite_files: []\n");
	body = last_insert(st);
	/* best fit: 4 vCPUs / 16 GiB is n2d-standard-4, not the larger-memory n2d-highmem-2 */
	assert_string_equal(json_string_value(json_object_get(body, "machineType")),
			    "zones/" TE_ZONE "/machineTypes/n2d-standard-4");
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "confidentialInstanceConfig"),
							      "confidentialInstanceType")), "SEV_SNP");
	assert_string_equal(json_string_value(json_object_get(body, "minCpuPlatform")), "AMD Milan");
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "labels"), "peerpod-owner")),
			    "node-a");
	/* boot disk: max(image 12, ROOT_VOLUME_SIZE 10) */
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(
		json_object_get(body, "disks"), 0), "initializeParams"), "diskSizeGb")), "12");
	assert_true(json_integer_value(json_object_get(json_object_get(st, "counts"), "wait")) >= 1);
	json_decref(st);

	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].id, "podvm-nginx-0001beef");
	assert_string_equal(l.items[0].sandbox_id, SID1);
	assert_true(l.items[0].created_unix > 1700000000);
	owned_instance_list_free(&l);

	assert_int_equal(delete(p, inst.id, inst.name, &err), 0);
	st = te_state(te);
	assert_null(fake_instance(te, st, "podvm-nginx-0001beef"));
	json_decref(st);
	/* already gone: success */
	assert_int_equal(delete(p, inst.id, inst.name, &err), 0);
	assert_int_equal(delete(p, "", inst.name, &err), 0);
	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(l.n, 0);
	owned_instance_list_free(&l);
	/* one token for all of it */
	assert_int_equal(te_count(te, "token"), 1);
}

static void test_failures_retried(void **state)
{
	struct testenv *te = *state;
	struct provider *p = start_ok(te, NULL);
	struct create_request req;
	struct instance inst = { 0 };
	struct pp_err err = { 0 };
	json_t *st;

	te_ctl(te, "inject", "{\"method\":\"POST\",\"path\":\"/instances$\",\"status\":429,\"retry_after\":0}");
	/* the insert is done, but its answer is lost: the retry carries the same requestId */
	te_ctl(te, "inject", "{\"method\":\"POST\",\"path\":\"/instances$\",\"status\":503,\"after\":true}");
	te_ctl(te, "inject", "{\"method\":\"POST\",\"path\":\"/wait$\",\"status\":500,\"count\":2}");
	te_ctl(te, "inject", "{\"method\":\"GET\",\"path\":\"/instances/podvm\",\"delay_ms\":300}");
	request(&req, "podvm-retry-0002beef", "#cloud-config\n");
	assert_int_equal(create(p, &req, &inst, &err), 0);
	st = te_state(te);
	assert_int_equal(json_array_size(json_object_get(st, "inserts")), 1);
	assert_non_null(fake_instance(te, st, "podvm-retry-0002beef"));
	json_decref(st);
	te_ctl(te, "inject", "{\"method\":\"DELETE\",\"path\":\"/instances/\",\"status\":503,\"retry_after\":0}");
	assert_int_equal(delete(p, inst.id, inst.name, &err), 0);
}

static void test_errors_surfaced(void **state)
{
	struct testenv *te = *state;
	struct provider *p = start_ok(te, NULL);
	struct create_request req;
	struct instance inst = { 0 };
	struct pp_err err = { 0 };
	json_t *st;
	char big[GCP_USER_DATA_MAX + 2];

	/* an image that does not exist: Google's 404 and message, nothing created */
	request(&req, "podvm-img-0003beef", "#cloud-config\n");
	req.spec.image = "projects/" TE_PROJECT "/global/images/missing";
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "HTTP 404 notFound"));
	assert_non_null(strstr(err.msg, "global/images/missing' was not found"));
	/* a type outside GCP_INSTANCE_TYPES */
	req.spec.image = "";
	req.spec.instance_type = "e2-medium";
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "GCP_INSTANCE_TYPES"));
	req.spec.instance_type = "";
	/* the operation fails: its error surfaces, the instance it left is cleaned up by name */
	te_ctl(te, "config", "{\"insert_error\":{\"code\":\"ZONE_RESOURCE_POOL_EXHAUSTED\","
	       "\"message\":\"The zone does not have enough resources\",\"http\":503},\"keep_failed\":true}");
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "ZONE_RESOURCE_POOL_EXHAUSTED: The zone does not have enough"));
	st = te_state(te);
	assert_null(fake_instance(te, st, "podvm-img-0003beef"));
	json_decref(st);
	/* the name is taken: ALREADY_EXISTS, and the existing VM is left alone */
	te_ctl(te, "config", "{\"keep_failed\":false}");
	assert_int_equal(create(p, &req, &inst, &err), 0);
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, "alreadyExists"));
	st = te_state(te);
	assert_non_null(fake_instance(te, st, "podvm-img-0003beef"));
	json_decref(st);
	/* user-data over 256 KiB of base64: refused before any request */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	st = te_state(te);
	size_t before = json_array_size(json_object_get(st, "log"));
	json_decref(st);
	request(&req, "podvm-big-0004beef", big);
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "metadata value"));
	st = te_state(te);
	assert_int_equal(json_array_size(json_object_get(st, "log")), before);
	json_decref(st);
	/* exactly at the limit is fine */
	big[GCP_USER_DATA_MAX] = '\0';
	request(&req, "podvm-big-0004beef", big);
	assert_int_equal(create(p, &req, &inst, &err), 0);
}

static void test_start_errors(void **state)
{
	struct testenv *te = *state;
	const char *bad_type[] = { "GCP_INSTANCE_TYPES=n2d-standard-2,n9-giant", NULL };
	const char *bad_tag[] = { "TAGS=env=test,env=nope", NULL };
	const char *bad_image[] = { "PODVM_IMAGE_NAME=pending", NULL };
	char *other = NULL;
	char uri[128];

	start_fails(te, bad_type, PP_NOT_FOUND, "machine type n9-giant in zone " TE_ZONE);
	config_free(te->cfg);
	start_fails(te, bad_tag, PP_PERMISSION_DENIED, "TAGS env=nope");
	config_free(te->cfg);
	start_fails(te, bad_image, PP_FAILED_PRECONDITION, "not READY");
	config_free(te->cfg);
	/* a key the fake does not know: the JWT signature is refused */
	{
		EVP_PKEY *k = EVP_RSA_gen(2048);
		BIO *b = BIO_new(BIO_s_mem());
		char *data, *pem;
		long n;

		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
		n = BIO_get_mem_data(b, &data);
		pem = strndup(data, (size_t)n);
		snprintf(uri, sizeof(uri), "%s/token", te->base);
		other = te_key_json(pem, uri);
		free(pem);
		BIO_free(b);
		EVP_PKEY_free(k);
	}
	{
		char *kv0 = NULL;
		const char *kv[2] = { NULL, NULL };

		if (asprintf(&kv0, "GCP_CREDENTIALS=%s", other) < 0)
			abort();
		kv[0] = kv0;
		start_fails(te, kv, PP_UNAUTHENTICATED, "Invalid JWT Signature");
		free(kv0);
	}
	free(other);
	te->expect_violations = true;    /* the bad signature was one, on purpose */
}

static void test_tags_public_ip_gpu(void **state)
{
	struct testenv *te = *state;
	const char *kv[] = { "TAGS=env=test,team = pp,4242/org-key=v1", "USE_PUBLIC_IP=true",
			     "DISABLECVM=true", "GCP_INSTANCE_TYPES=e2-medium,a2-highgpu-1g",
			     "GCP_MACHINE_TYPE=e2-medium", "GCP_SUBNETWORK=pp-subnet",
			     "PODVM_IMAGE_NAME=family/podvm-fam", NULL };
	struct provider *p;
	struct create_request req;
	struct instance inst = { 0 };
	struct pp_err err = { 0 };
	json_t *st, *body, *tags;

	(void)kv;
	/* family/x is not a valid bare name: the family path must be spelled out */
	kv[6] = "PODVM_IMAGE_NAME=projects/" TE_PROJECT "/global/images/family/podvm-fam";
	p = start_ok(te, kv);
	te_ctl(te, "config", "{\"nat_delay_polls\":2}");
	request(&req, "podvm-gpu-0005beef", "#cloud-config\n");
	req.spec.gpus = 1;
	assert_int_equal(create(p, &req, &inst, &err), 0);
	assert_true(strncmp(inst.ips[0], "192.168.0.", 10) == 0);   /* natIP only */
	assert_int_equal(inst.n_ips, 1);
	st = te_state(te);
	body = last_insert(st);
	assert_string_equal(json_string_value(json_object_get(body, "machineType")),
			    "zones/" TE_ZONE "/machineTypes/a2-highgpu-1g");
	assert_null(json_object_get(body, "confidentialInstanceConfig"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "scheduling"),
							      "onHostMaintenance")), "TERMINATE");
	tags = json_object_get(json_object_get(body, "params"), "resourceManagerTags");
	assert_int_equal(json_object_size(tags), 3);
	assert_string_equal(json_string_value(json_object_get(tags, "tagKeys/102")), "tagValues/202");
	assert_string_equal(json_string_value(json_object_get(tags, "tagKeys/103")), "tagValues/203");
	/* boot disk from the family image (20 GiB) */
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(
		json_object_get(body, "disks"), 0), "initializeParams"), "diskSizeGb")), "20");
	json_decref(st);
	/* no GPU asked: the plain default, no TERMINATE needed */
	request(&req, "podvm-cpu-0006beef", "#cloud-config\n");
	assert_int_equal(create(p, &req, &inst, &err), 0);
	st = te_state(te);
	assert_null(json_object_get(last_insert(st), "scheduling"));
	json_decref(st);
}

static void test_token_refresh_and_401(void **state)
{
	struct testenv *te = *state;
	struct provider *p;
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };

	te_ctl(te, "config", "{\"token_expires_in\":2}");
	p = start_ok(te, NULL);
	assert_int_equal(te_count(te, "token"), 1);
	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(te_count(te, "token"), 1);
	usleep(1100 * 1000);   /* past the refresh point (half the life of a short token) */
	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(te_count(te, "token"), 2);
	/* revoked under us: one 401, a new token, success */
	te_ctl(te, "config", "{\"token_expires_in\":3600}");
	te_ctl(te, "expire-tokens", NULL);
	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(te_count(te, "token"), 3);
	owned_instance_list_free(&l);
}

struct lister {
	struct provider *p;
	int rc;
};

static void *lister_run(void *arg)
{
	struct lister *l = arg;
	struct owned_instance_list out = { 0 };
	struct pp_err err = { 0 };

	for (int i = 0; i < 5 && l->rc == 0; i++)
		l->rc = provider_get_ops(l->p)->list_instances(l->p, &out, NULL, &err);
	owned_instance_list_free(&out);
	return NULL;
}

static void test_threads_share_token(void **state)
{
	struct testenv *te = *state;
	struct provider *p = start_ok(te, NULL);
	pthread_t th[4];
	struct lister ls[4];

	te_ctl(te, "expire-tokens", NULL);
	for (int i = 0; i < 4; i++) {
		ls[i] = (struct lister){ .p = p };
		pthread_create(&th[i], NULL, lister_run, &ls[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ls[i].rc, 0);
	}
	/* the token was revoked once; threads that met the 401 together fetch at most a few */
	assert_in_range(te_count(te, "token"), 2, 5);
}

static void test_metadata_server(void **state)
{
	struct testenv *te = *state;
	const char *kv[] = { "GCP_CREDENTIALS=", NULL };
	struct provider *p = start_ok(te, kv);
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };

	assert_int_equal(provider_get_ops(p)->list_instances(p, &l, NULL, &err), 0);
	assert_int_equal(te_count(te, "metadata_token"), 1);
	assert_int_equal(te_count(te, "token"), 0);
}

struct canceller {
	struct cancel *c;
	unsigned ms;
};

static void *canceller_run(void *arg)
{
	struct canceller *c = arg;

	usleep(c->ms * 1000);
	cancel_fire(c->c, CANCEL_CLOSED);
	return NULL;
}

static void test_cancel_cleans_up(void **state)
{
	struct testenv *te = *state;
	struct provider *p = start_ok(te, NULL);
	struct create_request req;
	struct instance inst = { 0 };
	struct pp_err err = { 0 };
	struct canceller c = { .c = cancel_new(0), .ms = 300 };
	uint64_t t0;
	pthread_t th;
	json_t *st;

	te_ctl(te, "config", "{\"op_polls\":4,\"wait_hold_ms\":5000,\"wait_hold_kind\":\"insert\"}");
	request(&req, "podvm-cancel-0007beef", "#cloud-config\n");
	req.cancel = c.c;
	pthread_create(&th, NULL, canceller_run, &c);
	t0 = pp_monotonic_ms();
	assert_int_equal(create(p, &req, &inst, &err), -1);
	pthread_join(th, NULL);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_true(pp_monotonic_ms() - t0 < 4000);
	st = te_state(te);
	assert_null(fake_instance(te, st, "podvm-cancel-0007beef"));   /* deleted by name */
	json_decref(st);
	cancel_unref(c.c);
}

static void test_operation_timeout(void **state)
{
	struct testenv *te = *state;
	const char *kv[] = { "GCP_OPERATION_TIMEOUT=300ms", NULL };
	struct provider *p = start_ok(te, kv);
	struct create_request req;
	struct instance inst = { 0 };
	struct pp_err err = { 0 };

	te_ctl(te, "config", "{\"op_polls\":1000}");
	request(&req, "podvm-slow-0008beef", "#cloud-config\n");
	assert_int_equal(create(p, &req, &inst, &err), -1);
	assert_int_equal(err.code, PP_DEADLINE_EXCEEDED);
	assert_non_null(strstr(err.msg, "GCP_OPERATION_TIMEOUT"));
}

static void test_owners_and_paging(void **state)
{
	struct testenv *te = *state;
	struct provider *a = start_ok(te, NULL);
	struct provider *b;
	struct config *cfg_b = te_config(te, NULL);
	struct create_request req;
	struct instance inst = { 0 };
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };
	char name[64];
	json_t *st;

	b = te_provider(te, cfg_b, "Node-B.example", &err);
	assert_non_null(b);
	te_ctl(te, "config", "{\"page_size\":2,\"op_polls\":0}");
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "podvm-a%d-000%dbeef", i, i);
		request(&req, name, "#cloud-config\n");
		assert_int_equal(create(a, &req, &inst, &err), 0);
	}
	request(&req, "podvm-b-0009beef", "#cloud-config\n");
	assert_int_equal(create(b, &req, &inst, &err), 0);
	assert_int_equal(provider_get_ops(a)->list_instances(a, &l, NULL, &err), 0);
	assert_int_equal(l.n, 5);
	owned_instance_list_free(&l);
	assert_int_equal(provider_get_ops(b)->list_instances(b, &l, NULL, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "podvm-b-0009beef");
	owned_instance_list_free(&l);
	/* by name only, a's driver leaves b's instance alone; b's deletes it */
	assert_int_equal(delete(a, "", "podvm-b-0009beef", &err), 0);
	st = te_state(te);
	assert_non_null(fake_instance(te, st, "podvm-b-0009beef"));
	json_decref(st);
	assert_int_equal(delete(b, "", "podvm-b-0009beef", &err), 0);
	st = te_state(te);
	assert_null(fake_instance(te, st, "podvm-b-0009beef"));
	json_decref(st);
	/* a bad id is refused before any request */
	assert_int_equal(delete(a, "../x", "", &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	provider_free(b);
	config_free(cfg_b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_list_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_surfaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tags_public_ip_gpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_refresh_and_401, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_share_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_operation_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owners_and_paging, setup, teardown),
	};
	struct pp_err err = { 0 };

	if (http_global_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
