/* User-data sources against a loopback fake metadata service that checks the headers each
 * cloud requires, and provider detection from DMI, the hypervisor vendor and the cidata file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_http.h"
#include "forwarder/metadata.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "vm_test_util.h"

#define UD "#cloud-config\nwrite_files: []\n"
#define TOKEN "AQAEAKcx-token-value=="

static char *fetch(const struct metadata_opts *o, enum metadata_provider p, struct pp_err *err)
{
	char *text = NULL;
	size_t len = 0;

	if (metadata_fetch(o, p, &text, &len, err) < 0)
		return NULL;
	assert_int_equal(len, strlen(text));
	return text;
}

static void test_aws_imdsv2(void **state)
{
	(void)state;
	struct fake_route routes[] = {
		{ "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60", 200, TOKEN, 0, 0 },
		{ "GET", "/latest/user-data", "X-aws-ec2-metadata-token: " TOKEN, 200, UD, 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 2);
	char u1[128], u2[128], *text;
	struct metadata_opts o = { .aws_token_url = fake_http_url(s, "/latest/api/token", u1, sizeof(u1)),
				   .aws_userdata_url = fake_http_url(s, "/latest/user-data", u2, sizeof(u2)),
				   .timeout_ms = 5000 };
	struct pp_err err = { 0 };

	text = fetch(&o, METADATA_AWS, &err);
	assert_non_null(text);
	assert_string_equal(text, UD);
	free(text);
	assert_int_equal(fake_http_refused(s), 0);
	fake_http_stop(s);
	assert_int_equal(routes[0].hits, 1);
	assert_int_equal(routes[1].hits, 1);
}

/* No token service: the GET goes out without a token (IMDSv1). */
static void test_aws_imdsv1_fallback(void **state)
{
	(void)state;
	struct fake_route routes[] = {
		{ "GET", "/latest/user-data", NULL, 200, UD, 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 1);
	char u1[128], u2[128], *text;
	struct metadata_opts o = { .aws_token_url = fake_http_url(s, "/latest/api/token", u1, sizeof(u1)),
				   .aws_userdata_url = fake_http_url(s, "/latest/user-data", u2, sizeof(u2)) };
	struct pp_err err = { 0 };

	text = fetch(&o, METADATA_AWS, &err);
	assert_string_equal(text, UD);
	free(text);
	assert_int_equal(fake_http_refused(s), 1);   /* the PUT got 404 */
	fake_http_stop(s);
	assert_int_equal(routes[0].hits, 1);
}

/* The service wants a different token: a clear HTTP error that does not carry the token. */
static void test_aws_rejected(void **state)
{
	(void)state;
	struct fake_route routes[] = {
		{ "PUT", "/latest/api/token", NULL, 200, TOKEN, 0, 0 },
		{ "GET", "/latest/user-data", "X-aws-ec2-metadata-token: other", 200, UD, 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 2);
	char u1[128], u2[128];
	struct metadata_opts o = { .aws_token_url = fake_http_url(s, "/latest/api/token", u1, sizeof(u1)),
				   .aws_userdata_url = fake_http_url(s, "/latest/user-data", u2, sizeof(u2)) };
	struct pp_err err = { 0 };

	assert_null(fetch(&o, METADATA_AWS, &err));
	assert_int_equal(err.code, PP_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "/latest/user-data: HTTP status 401"));
	assert_null(strstr(err.msg, TOKEN));
	fake_http_stop(s);
}

static void test_azure_and_gcp_base64(void **state)
{
	(void)state;
	char *b64 = base64_encode(UD, strlen(UD));
	struct fake_route routes[] = {
		{ "GET", "/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
		  "Metadata: true", 200, b64, 0, 0 },
		{ "GET", "/computeMetadata/v1/instance/attributes/user-data", "Metadata-Flavor: Google",
		  200, b64, 0, 0 },
		{ "GET", "/bad-base64", NULL, 200, "#cloud-config", 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 3);
	char u1[256], u2[256], u3[128], *text;
	struct metadata_opts o = {
		.azure_url = fake_http_url(s, routes[0].target, u1, sizeof(u1)),
		.gcp_userdata_url = fake_http_url(s, routes[1].target, u2, sizeof(u2)),
	};
	struct pp_err err = { 0 };

	text = fetch(&o, METADATA_AZURE, &err);
	assert_string_equal(text, UD);
	free(text);
	text = fetch(&o, METADATA_GCP, &err);
	assert_string_equal(text, UD);
	free(text);
	o.azure_url = fake_http_url(s, "/bad-base64", u3, sizeof(u3));
	assert_null(fetch(&o, METADATA_AZURE, &err));
	assert_non_null(strstr(err.msg, "is not valid base64"));
	assert_int_equal(fake_http_refused(s), 0);
	fake_http_stop(s);
	free(b64);
}

static void test_errors(void **state)
{
	(void)state;
	char *big = malloc(METADATA_MAX_BODY + 2);
	struct fake_route routes[] = {
		{ "GET", "/big", NULL, 200, big, 0, 0 },
		{ "GET", "/down", NULL, 500, "oops", 0, 0 },
	};
	struct fake_http *s;
	char u[128];
	struct metadata_opts o = { 0 };
	struct pp_err err = { 0 };

	memset(big, 'a', METADATA_MAX_BODY + 1);
	big[METADATA_MAX_BODY + 1] = '\0';
	s = fake_http_start(routes, 2);
	o.alibaba_url = fake_http_url(s, "/big", u, sizeof(u));
	assert_null(fetch(&o, METADATA_ALIBABA, &err));
	assert_non_null(strstr(err.msg, "GET http://127.0.0.1:"));
	o.alibaba_url = fake_http_url(s, "/down", u, sizeof(u));
	assert_null(fetch(&o, METADATA_ALIBABA, &err));
	assert_non_null(strstr(err.msg, "/down: HTTP status 500"));
	fake_http_stop(s);
	free(big);

	assert_null(fetch(&o, METADATA_NONE, &err));
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
}

static void test_cidata(void **state)
{
	(void)state;
	char root[64], dir[128], *text;
	struct metadata_opts o = { 0 };
	struct pp_err err = { 0 };

	vt_tmpdir(root, sizeof(root));
	o.root = root;
	o.hypervisor_vendor = "";
	assert_int_equal(metadata_detect(&o), METADATA_NONE);
	assert_null(fetch(&o, METADATA_CIDATA, &err));
	assert_int_equal(err.code, PP_NOT_FOUND);

	snprintf(dir, sizeof(dir), "%s/media/cidata", root);
	assert_int_equal(mkdir_p(dir, 0755, NULL), 0);
	vt_write(root, "/media/cidata/user-data", UD);
	assert_int_equal(metadata_detect(&o), METADATA_CIDATA);
	text = fetch(&o, METADATA_CIDATA, &err);
	assert_string_equal(text, UD);
	free(text);

	/* --cidata: any directory */
	o.root = "/nonexistent";
	o.cidata_dir = dir;
	assert_int_equal(metadata_detect(&o), METADATA_CIDATA);
	text = fetch(&o, METADATA_CIDATA, &err);
	assert_string_equal(text, UD);
	free(text);
	vt_rmdir(root);
}

static void test_detect(void **state)
{
	(void)state;
	struct fake_route routes[] = {
		{ "GET", "/computeMetadata/v1/instance", "Metadata-Flavor: Google", 200, "{}", 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 1);
	char root[64], dir[128], probe[128], closed[128];
	struct metadata_opts o = { 0 };

	vt_tmpdir(root, sizeof(root));
	o.root = root;
	snprintf(dir, sizeof(dir), "%s/sys/class/dmi/id", root);
	assert_int_equal(mkdir_p(dir, 0755, NULL), 0);

	o.hypervisor_vendor = "Microsoft Hv";
	assert_int_equal(metadata_detect(&o), METADATA_AZURE);

	o.hypervisor_vendor = "KVMKVMKVM";
	vt_write(root, "/sys/class/dmi/id/sys_vendor", "Amazon EC2\n");
	assert_int_equal(metadata_detect(&o), METADATA_AWS);

	vt_write(root, "/sys/class/dmi/id/sys_vendor", "Google\n");
	o.gcp_probe_url = fake_http_url(s, "/computeMetadata/v1/instance", probe, sizeof(probe));
	assert_int_equal(metadata_detect(&o), METADATA_GCP);
	o.gcp_probe_url = fake_http_url(s, "/nothing-here", closed, sizeof(closed));
	assert_int_equal(metadata_detect(&o), METADATA_NONE);

	vt_write(root, "/sys/class/dmi/id/sys_vendor", "Alibaba Cloud\n");
	o.hypervisor_vendor = "";
	assert_int_equal(metadata_detect(&o), METADATA_ALIBABA);

	vt_write(root, "/sys/class/dmi/id/sys_vendor", "QEMU\n");
	assert_int_equal(metadata_detect(&o), METADATA_NONE);
	fake_http_stop(s);
	assert_int_equal(routes[0].hits, 1);
	vt_rmdir(root);
}

static void test_names(void **state)
{
	(void)state;
	enum metadata_provider p;

	assert_int_equal(metadata_provider_parse("aws", &p), 0);
	assert_int_equal(p, METADATA_AWS);
	assert_int_equal(metadata_provider_parse("cidata", &p), 0);
	assert_int_equal(p, METADATA_CIDATA);
	assert_int_equal(metadata_provider_parse("AWS", &p), -1);
	assert_int_equal(metadata_provider_parse("ibmcloud", &p), -1);
	assert_string_equal(metadata_provider_name(METADATA_GCP), "gcp");
	assert_string_equal(metadata_provider_name(METADATA_NONE), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_imdsv2),
		cmocka_unit_test(test_aws_imdsv1_fallback),
		cmocka_unit_test(test_aws_rejected),
		cmocka_unit_test(test_azure_and_gcp_base64),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_cidata),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_names),
	};
	int r;

	log_init("test", 2);
	log_set_level(LOG_LVL_ERROR);
	if (metadata_init(NULL) < 0)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	metadata_fini();
	return r;
}
