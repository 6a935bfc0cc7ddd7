/*
 * The gcp provider's pure parts: resource path resolution, owner labels, the RS256 JWT (its
 * signature verified with the public key), service-account key errors (no key material in
 * them), the instances.insert body against golden files (PP_REGENERATE_GOLDEN=1 rewrites
 * the files in tests/fixtures/gcp/), and the parsers of Google's answers fed wrong shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gcp_testenv.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "providers/gcp/gcp_priv.h"

static void test_image_paths(void **state)
{
	struct pp_err err = { 0 };
	char *p = NULL;

	(void)state;
	assert_int_equal(gcp_image_path("proj", "podvm", &p, &err), 0);
	assert_string_equal(p, "projects/proj/global/images/podvm");
	free(p);
	assert_int_equal(gcp_image_path("proj", "projects/other/global/images/x", &p, &err), 0);
	assert_string_equal(p, "projects/other/global/images/x");
	free(p);
	assert_int_equal(gcp_image_path("proj", "/projects/o/global/images/family/f", &p, &err), 0);
	assert_string_equal(p, "projects/o/global/images/family/f");
	free(p);
	assert_int_equal(gcp_image_path("proj", "https://www.googleapis.com/compute/v1/projects/o/global/images/y",
					&p, &err), 0);
	assert_string_equal(p, "projects/o/global/images/y");
	free(p);
	assert_int_equal(gcp_image_path("proj", "global/images/z", &p, &err), 0);
	assert_string_equal(p, "projects/proj/global/images/z");
	free(p);
	/* what must never reach a URL */
	assert_int_equal(gcp_image_path("proj", "a/b", &p, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "a/b"));
	assert_int_equal(gcp_image_path("proj", "x?y=1", &p, &err), -1);
	assert_int_equal(gcp_image_path("proj", "projects/../global/images/x", &p, &err), -1);
	assert_int_equal(gcp_image_path("proj", "https://example.com/x", &p, &err), -1);
	assert_int_equal(gcp_image_path("proj", "", &p, &err), -1);
}

static void test_network_paths(void **state)
{
	struct pp_err err = { 0 };
	char region[64];
	char *p = NULL;

	(void)state;
	assert_int_equal(gcp_network_path("proj", "default", &p, &err), 0);
	assert_string_equal(p, "projects/proj/global/networks/default");
	free(p);
	assert_int_equal(gcp_network_path("proj", "global/networks/n1", &p, &err), 0);
	assert_string_equal(p, "projects/proj/global/networks/n1");
	free(p);
	assert_int_equal(gcp_network_path("proj", "projects/host/global/networks/shared", &p, &err), 0);
	assert_string_equal(p, "projects/host/global/networks/shared");
	free(p);
	assert_int_equal(gcp_network_path("proj", "regions/x/networks/y", &p, &err), -1);

	assert_int_equal(gcp_zone_region("europe-west4-b", region, sizeof(region), &err), 0);
	assert_string_equal(region, "europe-west4");
	assert_int_equal(gcp_zone_region("nozone", region, sizeof(region), &err), -1);
	assert_non_null(strstr(err.msg, "GCP_ZONE"));
	assert_int_equal(gcp_zone_region("us-central1-", region, sizeof(region), &err), -1);

	assert_int_equal(gcp_subnetwork_path("proj", "us-central1", "sub", &p, &err), 0);
	assert_string_equal(p, "projects/proj/regions/us-central1/subnetworks/sub");
	free(p);
	assert_int_equal(gcp_subnetwork_path("proj", "us-central1", "regions/eu/subnetworks/s", &p, &err), 0);
	assert_string_equal(p, "projects/proj/regions/eu/subnetworks/s");
	free(p);
	assert_int_equal(gcp_subnetwork_path("proj", "r", "https://compute.googleapis.com/compute/v1/projects/h/regions/r/subnetworks/s",
					     &p, &err), 0);
	assert_string_equal(p, "projects/h/regions/r/subnetworks/s");
	free(p);
	assert_int_equal(gcp_subnetwork_path("proj", "r", "projects/h/global/networks/s", &p, &err), -1);
}

static void test_owner_label(void **state)
{
	struct pp_err err = { 0 };
	char a[64], b[64];

	(void)state;
	assert_int_equal(gcp_owner_label("node-a", a, sizeof(a), &err), 0);
	assert_string_equal(a, "node-a");
	assert_int_equal(gcp_owner_label("Node-A.example.com", a, sizeof(a), &err), 0);
	assert_true(strncmp(a, "node-a-example-com-", 19) == 0);
	assert_int_equal(strlen(a), strlen("node-a-example-com-") + 8);
	assert_int_equal(gcp_owner_label("node-a.example.com", b, sizeof(b), &err), 0);
	assert_string_not_equal(a, b);   /* same sanitised text, different owners */
	char longname[200];
	memset(longname, 'X', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(gcp_owner_label(longname, a, sizeof(a), &err), 0);
	assert_true(strlen(a) <= 63);
	assert_int_equal(gcp_owner_label("", a, sizeof(a), &err), -1);
}

static char *decode_part(const char *s, size_t len)
{
	uint8_t *out = NULL;
	size_t n = 0;
	struct pp_err err = { 0 };

	assert_int_equal(base64url_decode(s, len, &out, &n, &err), 0);
	return (char *)out;
}

static void test_jwt(void **state)
{
	struct gcp_key k = { 0 };
	struct pp_err err = { 0 };
	char *key = te_key_json(te_private_pem(), "https://oauth2.googleapis.com/token");
	char *jwt = NULL, *hdr, *claims;
	const char *dot1, *dot2;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	BIO *bio;
	EVP_PKEY *pub;
	EVP_MD_CTX *ctx;
	json_t *h, *c;

	(void)state;
	assert_int_equal(gcp_key_parse(key, strlen(key), &k, &err), 0);
	assert_int_equal(gcp_jwt_make(&k, GCP_SCOPE, 1700000000, &jwt, &err), 0);
	dot1 = strchr(jwt, '.');
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(jwt, '='));   /* unpadded */
	hdr = decode_part(jwt, (size_t)(dot1 - jwt));
	claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	h = json_loads(hdr, 0, NULL);
	c = json_loads(claims, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), TE_KID);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), TE_EMAIL);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://oauth2.googleapis.com/token");
	assert_string_equal(json_string_value(json_object_get(c, "scope")), GCP_SCOPE);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700003600);
	/* the signature verifies with the public key over header.claims */
	assert_int_equal(base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &siglen, &err), 0);
	bio = BIO_new_mem_buf(te_public_pem(), -1);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)jwt,
					  (size_t)(dot2 - jwt)), 1);
	/* and not over anything else */
	EVP_MD_CTX_reset(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_not_equal(EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)jwt,
					      (size_t)(dot2 - jwt - 1)), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	json_decref(h);
	json_decref(c);
	free(hdr);
	free(claims);
	free(sig);
	free(jwt);
	free(key);
	gcp_key_free(&k);
}

static void expect_key_error(const char *json, const char *needle)
{
	struct gcp_key k = { 0 };
	struct pp_err err = { 0 };

	assert_int_equal(gcp_key_parse(json, strlen(json), &k, &err), -1);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	assert_null(strstr(err.msg, "PRIVATE KEY"));
	assert_null(strstr(err.msg, "MII"));
}

static void test_key_errors(void **state)
{
	char *good = te_key_json(te_private_pem(), "https://oauth2.googleapis.com/token");
	char buf[8192];
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	BIO *b = BIO_new(BIO_s_mem());
	char *ecpem, *data;
	long n;
	json_t *o;

	(void)state;
	/* a syntax error right inside the key text must not quote it */
	snprintf(buf, sizeof(buf), "%.*s,,", (int)(strstr(good, "MII") - good + 10), good);
	expect_key_error(buf, "not valid JSON");
	expect_key_error("{\"type\": \"authorized_user\"}", "authorized_user");
	expect_key_error("{\"type\": \"service_account\"}", "client_email");
	o = json_loads(good, 0, NULL);
	json_object_set_new(o, "private_key", json_string("-----BEGIN PRIVATE KEY-----\nMIIxx\n-----END PRIVATE KEY-----\n"));
	data = json_dumps(o, 0);
	expect_key_error(data, "not an unencrypted PEM private key");
	free(data);
	PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &data);
	ecpem = strndup(data, (size_t)n);
	json_object_set_new(o, "private_key", json_string(ecpem));
	data = json_dumps(o, 0);
	expect_key_error(data, "not an RSA key");
	free(data);
	json_object_set_new(o, "private_key", json_string(te_private_pem()));
	json_object_set_new(o, "token_uri", json_string("file:///etc/passwd"));
	data = json_dumps(o, 0);
	expect_key_error(data, "token_uri");
	free(data);
	free(ecpem);
	BIO_free(b);
	EVP_PKEY_free(ec);
	json_decref(o);
	free(good);
}

/* ---- golden request bodies ---- */

static void check_golden(const char *name, const struct gcp_insert *in)
{
	const char *src = getenv("PP_SOURCE_DIR");
	json_t *body = gcp_insert_body(in);
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);
	char path[512];
	uint8_t *want = NULL;
	size_t len = 0;
	struct pp_err err = { 0 };
	size_t tl;

	assert_non_null(src);
	assert_non_null(text);
	tl = strlen(text);
	text = realloc(text, tl + 2);
	text[tl] = '\n';
	text[tl + 1] = '\0';
	snprintf(path, sizeof(path), "%s/tests/fixtures/gcp/%s.json", src, name);
	if (getenv("PP_REGENERATE_GOLDEN")) {
		assert_int_equal(file_write_atomic(path, text, strlen(text), 0644, &err), 0);
	} else {
		if (file_read_all(path, 1 << 20, &want, &len, &err) < 0)
			fail_msg("%s: %s (regenerate with PP_REGENERATE_GOLDEN=1)", path, err.msg);
		if (strcmp((char *)want, text) != 0)
			fail_msg("insert body differs from %s:\n%s", path, text);
	}
	free(want);
	free(text);
	json_decref(body);
}

static void test_insert_golden(void **state)
{
	static const struct gcp_tag tags[] = {
		{ .key = "env", .value = "test", .key_id = "tagKeys/101", .value_id = "tagValues/201" },
		{ .key = "team", .value = "pp", .key_id = "tagKeys/102", .value_id = "tagValues/202" },
	};
	struct gcp_insert in = {
		.name = "podvm-nginx-0001beef",
		.zone = "us-central1-a",
		.machine_type = "n2d-standard-4",
		.image = "projects/pp-proj/global/images/podvm",
		.disk_size_gb = 12,
		.disk_type = "pd-balanced",
		.network = "projects/pp-proj/global/networks/pp-net",
		.subnetwork = "projects/pp-proj/regions/us-central1/subnetworks/pp-subnet",
		.user_data_b64 = "I2Nsb3VkLWNvbmZpZwo=",
		.owner_label = "node-a",
		.sandbox_id = "0001beef0123456789abcdef",
		.cvm = GCP_CVM_SEV_SNP,
		.min_cpu_platform = "AMD Milan",
		.terminate_on_maintenance = true,
		.tags = tags,
		.n_tags = 2,
	};

	(void)state;
	check_golden("insert_sev_snp_tags_subnet", &in);
	in.cvm = GCP_CVM_NONE;
	in.min_cpu_platform = "";
	in.terminate_on_maintenance = false;
	in.public_ip = true;
	in.subnetwork = NULL;
	in.n_tags = 0;
	in.machine_type = "e2-medium";
	check_golden("insert_plain_public_ip", &in);
	in.public_ip = false;
	in.cvm = GCP_CVM_SEV;
	in.machine_type = "n2d-standard-2";
	in.terminate_on_maintenance = true;
	check_golden("insert_sev", &in);
	in.cvm = GCP_CVM_TDX;
	in.machine_type = "c3-standard-4";
	in.disk_size_gb = 40;
	check_golden("insert_tdx", &in);
}

/* ---- parsers ---- */

static void test_operation_parse(void **state)
{
	struct gcp_operation op;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(gcp_operation_parse("{\"name\":\"operation-1\",\"status\":\"RUNNING\"}", &op, &err), 0);
	assert_false(op.done);
	assert_int_equal(gcp_operation_parse("{\"name\":\"operation-1\",\"status\":\"DONE\","
					     "\"httpErrorStatusCode\":503,\"error\":{\"errors\":[{\"code\":"
					     "\"ZONE_RESOURCE_POOL_EXHAUSTED\",\"message\":\"no n2d\\nleft\"}]}}",
					     &op, &err), 0);
	assert_true(op.done && op.failed);
	assert_int_equal(gcp_operation_error(&op, "instances.insert x", &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "ZONE_RESOURCE_POOL_EXHAUSTED: no n2d left"));
	assert_int_equal(gcp_operation_parse("{\"name\":\"op\",\"status\":\"WEIRD\"}", &op, &err), -1);
	assert_int_equal(gcp_operation_parse("{\"name\":\"../x\",\"status\":\"DONE\"}", &op, &err), -1);
	assert_int_equal(gcp_operation_parse("{\"status\":\"DONE\"}", &op, &err), -1);
	assert_int_equal(gcp_operation_parse("not json", &op, &err), -1);
	assert_int_equal(gcp_operation_parse(NULL, &op, &err), -1);
}

static void test_api_error(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	gcp_api_error(409, "{\"error\":{\"code\":409,\"message\":\"The resource 'x' already exists\","
		      "\"errors\":[{\"reason\":\"alreadyExists\",\"message\":\"m\"}]}}",
		      "instances.insert podvm-x", &err);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_string_equal(err.msg, "GCP instances.insert podvm-x: HTTP 409 alreadyExists: The resource 'x' already exists");
	gcp_api_error(403, "{\"error\":{\"code\":403,\"message\":\"Required 'compute.instances.create'\","
		      "\"status\":\"PERMISSION_DENIED\"}}", "instances.insert y", &err);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "PERMISSION_DENIED: Required 'compute.instances.create'"));
	gcp_api_error(502, "<html>bad\ngateway</html>", "images.get i", &err);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "HTTP 502 error: <html>bad gateway</html>"));
	gcp_api_error(404, "", "instances.get z", &err);
	assert_int_equal(err.code, PP_NOT_FOUND);
}

static void test_machine_type_parse(void **state)
{
	struct instance_type_info t = { 0 };
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(gcp_machine_type_parse("{\"guestCpus\":12,\"memoryMb\":87040,\"accelerators\":"
						"[{\"guestAcceleratorType\":\"a100\",\"guestAcceleratorCount\":2},"
						"{\"guestAcceleratorCount\":1}]}", &t, &err), 0);
	assert_int_equal(t.vcpus, 12);
	assert_int_equal(t.memory_mib, 87040);
	assert_int_equal(t.gpus, 3);
	assert_int_equal(gcp_machine_type_parse("{\"guestCpus\":\"2\",\"memoryMb\":4096}", &t, &err), -1);
	assert_int_equal(gcp_machine_type_parse("{\"guestCpus\":2}", &t, &err), -1);
	assert_int_equal(gcp_machine_type_parse("{\"guestCpus\":2,\"memoryMb\":4096,\"accelerators\":{}}", &t, &err), -1);
	assert_int_equal(gcp_machine_type_parse("{\"guestCpus\":2,\"memoryMb\":4096,\"accelerators\":"
						"[{\"guestAcceleratorCount\":-1}]}", &t, &err), -1);
}

static void test_image_instance_parse(void **state)
{
	char ips[PROVIDER_MAX_IPS][PROVIDER_IP_MAX];
	struct pp_err err = { 0 };
	int64_t gb = 0;
	int n = -1;
	const char *inst = "{\"networkInterfaces\":[{\"networkIP\":\"10.1.2.3\",\"accessConfigs\":"
			   "[{\"natIP\":\"34.1.2.3\"}]},{\"networkIP\":\"10.9.9.9\"}]}";

	(void)state;
	assert_int_equal(gcp_image_size_parse("{\"diskSizeGb\":\"20\",\"status\":\"READY\"}", &gb, &err), 0);
	assert_int_equal(gb, 20);
	assert_int_equal(gcp_image_size_parse("{\"diskSizeGb\":\"20x\"}", &gb, &err), -1);
	assert_int_equal(gcp_image_size_parse("{\"diskSizeGb\":\"10\",\"status\":\"PENDING\",\"name\":\"i\"}",
					      &gb, &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);

	assert_int_equal(gcp_instance_ips_parse(inst, false, ips, PROVIDER_MAX_IPS, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ips[0], "10.1.2.3");
	assert_string_equal(ips[1], "10.9.9.9");
	assert_int_equal(gcp_instance_ips_parse(inst, true, ips, PROVIDER_MAX_IPS, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ips[0], "34.1.2.3");
	assert_int_equal(gcp_instance_ips_parse("{\"networkInterfaces\":[{}]}", false, ips,
						PROVIDER_MAX_IPS, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gcp_instance_ips_parse("{\"networkInterfaces\":[{\"networkIP\":\"10.0.0.1; rm\"}]}",
						false, ips, PROVIDER_MAX_IPS, &n, &err), -1);
	assert_int_equal(gcp_instance_ips_parse("[]", false, ips, PROVIDER_MAX_IPS, &n, &err), -1);
}

static void test_list_and_time(void **state)
{
	struct owned_instance_list l = { 0 };
	struct pp_err err = { 0 };
	char *next = NULL;

	(void)state;
	assert_int_equal(gcp_time_parse("1970-01-01T00:00:10Z"), 10);
	assert_int_equal(gcp_time_parse("2026-08-01T10:00:00.123-07:00"),
			 gcp_time_parse("2026-08-01T17:00:00Z"));
	assert_int_equal(gcp_time_parse("2026-08-01T10:00:00+01:30"), gcp_time_parse("2026-08-01T08:30:00Z"));
	assert_int_equal(gcp_time_parse("2026-08-01 10:00:00Z"), -1);
	assert_int_equal(gcp_time_parse("2026-13-01T10:00:00Z"), -1);
	assert_int_equal(gcp_time_parse("2026-08-01T10:00:00"), -1);

	assert_int_equal(gcp_instance_list_parse(
		"{\"items\":[{\"name\":\"podvm-a-1\",\"description\":\"peer-pod VM of sandbox abc\","
		"\"creationTimestamp\":\"1970-01-01T00:01:00Z\"},{\"name\":\"podvm-b-2\"}],"
		"\"nextPageToken\":\"t1\"}", &l, &next, &err), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[0].id, "podvm-a-1");
	assert_string_equal(l.items[0].sandbox_id, "abc");
	assert_int_equal(l.items[0].created_unix, 60);
	assert_string_equal(l.items[1].sandbox_id, "");
	assert_string_equal(next, "t1");
	free(next);
	assert_int_equal(gcp_instance_list_parse("{}", &l, &next, &err), 0);
	assert_null(next);
	assert_int_equal(gcp_instance_list_parse("{\"items\":[{\"name\":\"a/b\"}]}", &l, &next, &err), -1);
	assert_int_equal(gcp_instance_list_parse("{\"items\":{}}", &l, &next, &err), -1);
	owned_instance_list_free(&l);
}

static void test_tag_value_parse(void **state)
{
	struct gcp_tag t = { .key = "env", .value = "test" };
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(gcp_tag_value_parse("{\"name\":\"tagValues/201\",\"parent\":\"tagKeys/101\"}", &t, &err), 0);
	assert_string_equal(t.value_id, "tagValues/201");
	assert_string_equal(t.key_id, "tagKeys/101");
	assert_int_equal(gcp_tag_value_parse("{\"name\":\"tagKeys/201\",\"parent\":\"tagKeys/101\"}", &t, &err), -1);
	assert_non_null(strstr(err.msg, "env=test"));
}

/* ---- options ---- */

static int conf_with(const char *const *kv, struct pp_err *err)
{
	const struct config_option *tables[] = { gcp_options, NULL };
	struct config *cfg = config_new(tables, err);
	struct gcp_conf c;
	int rc = 0;

	for (; *kv && rc == 0; kv += 2)
		rc = config_set(cfg, kv[0], kv[1], err);
	if (rc == 0)
		rc = gcp_conf_load(&c, cfg, err);
	if (rc == 0)
		gcp_conf_free(&c);
	config_free(cfg);
	return rc;
}

static void test_conf(void **state)
{
	struct pp_err err = { 0 };
	const char *ok[] = { "GCP_PROJECT_ID", "p", "GCP_ZONE", "us-central1-a", "PODVM_IMAGE_NAME", "img",
			     "GCP_NETWORK", "default", "GCP_CONFIDENTIAL_TYPE", "TDX", NULL };
	const char *no_cvm_type[] = { "GCP_PROJECT_ID", "p", "GCP_ZONE", "us-central1-a",
				      "PODVM_IMAGE_NAME", "img", "GCP_NETWORK", "default", NULL };
	const char *disabled[] = { "GCP_PROJECT_ID", "p", "GCP_ZONE", "us-central1-a",
				   "PODVM_IMAGE_NAME", "img", "GCP_NETWORK", "default", "DISABLECVM",
				   "true", NULL };
	const char *bad_type[] = { "GCP_PROJECT_ID", "p", "GCP_ZONE", "us-central1-a",
				   "PODVM_IMAGE_NAME", "img", "GCP_NETWORK", "default",
				   "GCP_CONFIDENTIAL_TYPE", "sev-snp", NULL };
	const char *no_project[] = { "GCP_ZONE", "us-central1-a", NULL };
	const char *bad_endpoint[] = { "GCP_PROJECT_ID", "p", "GCP_ZONE", "us-central1-a",
				       "PODVM_IMAGE_NAME", "img", "GCP_NETWORK", "default",
				       "DISABLECVM", "1", "GCP_COMPUTE_ENDPOINT", "ftp://x", NULL };

	(void)state;
	assert_int_equal(conf_with(ok, &err), 0);
	assert_int_equal(conf_with(disabled, &err), 0);
	assert_int_equal(conf_with(no_cvm_type, &err), -1);
	assert_non_null(strstr(err.msg, "GCP_CONFIDENTIAL_TYPE is empty"));
	assert_non_null(strstr(err.msg, "DISABLECVM"));
	assert_int_equal(conf_with(bad_type, &err), -1);
	assert_non_null(strstr(err.msg, "\"sev-snp\" is not one of SEV, SEV_SNP, TDX"));
	assert_int_equal(conf_with(no_project, &err), -1);
	assert_non_null(strstr(err.msg, "GCP_PROJECT_ID is required"));
	assert_int_equal(conf_with(bad_endpoint, &err), -1);
	assert_non_null(strstr(err.msg, "GCP_COMPUTE_ENDPOINT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_image_paths),
		cmocka_unit_test(test_network_paths),
		cmocka_unit_test(test_owner_label),
		cmocka_unit_test(test_jwt),
		cmocka_unit_test(test_key_errors),
		cmocka_unit_test(test_insert_golden),
		cmocka_unit_test(test_operation_parse),
		cmocka_unit_test(test_api_error),
		cmocka_unit_test(test_machine_type_parse),
		cmocka_unit_test(test_image_instance_parse),
		cmocka_unit_test(test_list_and_time),
		cmocka_unit_test(test_tag_value_parse),
		cmocka_unit_test(test_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
