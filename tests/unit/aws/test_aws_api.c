/*
 * The `aws` provider's pure parts: request serialisation against golden files
 * (tests/fixtures/aws/NAME.form, one encoded parameter per line; PP_REGENERATE_GOLDEN=1 rewrites
 * them), the XML parsers on EC2/STS answers (well-formed, missing fields, malformed, hostile),
 * the shared-file profile parser, ISO 8601 times, id checks and the error-code mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/http.h"
#include "lib/util.h"
#include "providers/aws/aws_priv.h"

/* ---- golden files ---- */

static void golden_check(const char *name, struct http_form *f)
{
	const char *src = getenv("PP_SOURCE_DIR");
	char path[1024];
	const char *body;
	size_t len;
	struct pp_err err = { 0 };
	char *text;
	uint8_t *want = NULL;
	size_t want_len = 0;

	assert_non_null(src);
	assert_int_equal(http_form_finish(f, &body, &len, &err), 0);
	text = pp_xmalloc(len + 2);
	memcpy(text, body, len);
	for (size_t i = 0; i < len; i++)
		if (text[i] == '&')
			text[i] = '\n';
	text[len] = '\n';
	text[len + 1] = '\0';
	snprintf(path, sizeof(path), "%s/tests/fixtures/aws/%s.form", src, name);
	if (getenv("PP_REGENERATE_GOLDEN") && strcmp(getenv("PP_REGENERATE_GOLDEN"), "1") == 0) {
		assert_int_equal(file_write_atomic(path, text, len + 1, 0644, &err), 0);
	} else {
		if (file_read_all(path, 1 << 20, &want, &want_len, &err) < 0)
			fail_msg("golden file %s: %s (regenerate with PP_REGENERATE_GOLDEN=1)", path, err.msg);
		if (want_len != len + 1 || memcmp(want, text, want_len) != 0) {
			fprintf(stderr, "--- golden %s\n%s--- sent\n%s", path, (char *)want, text);
			fail_msg("request %s differs from its golden file", name);
		}
	}
	free(want);
	free(text);
	http_form_free(f);
}

static const char USER_DATA_B64[] = "I2Nsb3VkLWNvbmZpZwp3cml0ZV9maWxlczogW10K";   /* +/= free */
static const char TOKEN[] = "0123456789abcdef0123456789abcdef";

static size_t std_tags(struct aws_tag *t)
{
	static const char *const kv[][2] = {
		{ "Name", "podvm-nginx-0123abcd" }, { "team", "a b&c=d/e+f" },
		{ AWS_OWNER_TAG, "node-a" }, { AWS_SANDBOX_TAG, "0123abcd" },
	};

	for (size_t i = 0; i < PP_ARRAY_SIZE(kv); i++) {
		pp_strlcpy(t[i].key, kv[i][0], sizeof(t[i].key));
		pp_strlcpy(t[i].value, kv[i][1], sizeof(t[i].value));
	}
	return PP_ARRAY_SIZE(kv);
}

static const char SGS[][AWS_ID_MAX] = { "sg-0a1b2c3d", "sg-0e0f1a2b" };

static struct aws_run_params std_run(struct aws_tag *tags)
{
	struct aws_run_params p = {
		.client_token = TOKEN, .image_id = "ami-0123456789abcdef0", .instance_type = "m6a.large",
		.key_name = "my key", .subnet = "subnet-0a1b2c3d", .sgs = SGS, .n_sgs = 2,
		.user_data_b64 = "I2Nsb3VkLWNvbmZpZwo+Pz8/PQ==", .sev_snp = true, .lt_name = "kata",
		.root_device = "/dev/xvda", .root_volume_gib = 30, .tags = tags,
	};

	p.n_tags = std_tags(tags);
	return p;
}

static void test_form_run_instances(void **state)
{
	struct aws_tag tags[AWS_MAX_TAGS];
	struct aws_run_params p = std_run(tags);
	struct http_form f;

	(void)state;
	aws_form_begin(&f, "RunInstances");
	assert_int_equal(aws_form_run_instances(&f, &p), 0);
	golden_check("run_instances", &f);

	p.sev_snp = false;
	p.key_name = "";
	p.root_device = "";
	p.user_data_b64 = USER_DATA_B64;
	aws_form_begin(&f, "RunInstances");
	assert_int_equal(aws_form_run_instances(&f, &p), 0);
	golden_check("run_instances_disablecvm", &f);

	p = std_run(tags);
	p.public_ip = true;
	aws_form_begin(&f, "RunInstances");
	assert_int_equal(aws_form_run_instances(&f, &p), 0);
	golden_check("run_instances_public_ip", &f);

	p = std_run(tags);
	p.use_lt = true;
	aws_form_begin(&f, "RunInstances");
	assert_int_equal(aws_form_run_instances(&f, &p), 0);
	golden_check("run_instances_launch_template", &f);
}

static void test_form_others(void **state)
{
	static const char types[][AWS_ID_MAX] = { "m6a.large", "c6a.xlarge", "p3.8xlarge" };
	struct http_form f;

	(void)state;
	aws_form_begin(&f, "DescribeInstances");
	aws_form_describe_owned(&f, "node-a", NULL, "");
	golden_check("describe_owned", &f);
	aws_form_begin(&f, "DescribeInstances");
	aws_form_describe_owned(&f, "node-a", "podvm-nginx-0123abcd", "tok/en+1=");
	golden_check("describe_owned_by_name", &f);
	aws_form_begin(&f, "DescribeInstances");
	aws_form_describe_instance(&f, "i-0123456789abcdef0");
	golden_check("describe_instance", &f);
	aws_form_begin(&f, "TerminateInstances");
	aws_form_terminate(&f, "i-0123456789abcdef0");
	golden_check("terminate_instances", &f);
	aws_form_begin(&f, "DescribeImages");
	aws_form_describe_images(&f, "ami-0123456789abcdef0");
	golden_check("describe_images", &f);
	aws_form_begin(&f, "DescribeInstanceTypes");
	aws_form_describe_instance_types(&f, types, 3);
	golden_check("describe_instance_types", &f);
	aws_form_begin(&f, "DescribeAddresses");
	aws_form_describe_addresses(&f, "i-0123456789abcdef0");
	golden_check("describe_addresses", &f);
	aws_form_begin(&f, "DisassociateAddress");
	aws_form_disassociate_address(&f, "eipassoc-12345678");
	golden_check("disassociate_address", &f);
	aws_form_begin(&f, "ReleaseAddress");
	aws_form_release_address(&f, "eipalloc-12345678");
	golden_check("release_address", &f);
	aws_form_assume_role_web_identity(&f, "arn:aws:iam::123456789012:role/peerpods",
					  "cloud-api-adaptor", "eyJhbGciOi.JSUzI1NiJ9.sig-_");
	golden_check("assume_role_with_web_identity", &f);
}

static void test_form_user_data_limit(void **state)
{
	struct aws_tag tags[AWS_MAX_TAGS];
	struct aws_run_params p = std_run(tags);
	struct http_form f;
	struct pp_err err = { 0 };
	const char *body;
	size_t len;
	char *raw = pp_xmalloc(AWS_MAX_USER_DATA), *b64;

	(void)state;
	/* the worst case: 16 KB whose base64 is all '+' '/' (each percent-encoded to 3 bytes) */
	memset(raw, 0xff, AWS_MAX_USER_DATA);
	b64 = base64_encode(raw, AWS_MAX_USER_DATA);
	p.user_data_b64 = b64;
	aws_form_begin(&f, "RunInstances");
	assert_int_equal(aws_form_run_instances(&f, &p), 0);
	assert_int_equal(http_form_finish(&f, &body, &len, &err), 0);
	assert_non_null(strstr(body, "UserData=%2F%2F%2F"));
	http_form_free(&f);
	free(b64);
	free(raw);
}

/* ---- XML ---- */

#define EC2NS "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""

static const char RUN_XML[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RunInstancesResponse " EC2NS ">"
	"<requestId>r</requestId><reservationId>r-1</reservationId><instancesSet><item>"
	"<instanceId>i-0abc1234567890def</instanceId><imageId>ami-1</imageId>"
	"<instanceState><code>0</code><name>pending</name></instanceState>"
	"<privateIpAddress>10.0.0.9</privateIpAddress>"
	"<networkInterfaceSet><item><privateIpAddress>10.0.1.5</privateIpAddress></item>"
	"<item><privateIpAddress>10.0.2.6</privateIpAddress></item></networkInterfaceSet>"
	"<launchTime>2026-11-25T03:19:11.000Z</launchTime>"
	"<tagSet><item><key>Name</key><value>podvm-a-1</value></item>"
	"<item><key>peerpod-owner</key><value>node-a</value></item>"
	"<item><key>peerpod-sandbox-id</key><value>sb1</value></item></tagSet>"
	"</item></instancesSet></RunInstancesResponse>";

static void test_xml_run_instances(void **state)
{
	struct aws_instance_info in;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(aws_xml_run_instances(RUN_XML, strlen(RUN_XML), &in, &err), 0);
	assert_string_equal(in.id, "i-0abc1234567890def");
	assert_string_equal(in.state, "pending");
	assert_int_equal(in.n_private_ips, 2);       /* interfaces first, instance field ignored */
	assert_string_equal(in.private_ips[0], "10.0.1.5");
	assert_string_equal(in.private_ips[1], "10.0.2.6");
	assert_string_equal(in.name, "podvm-a-1");
	assert_string_equal(in.owner, "node-a");
	assert_string_equal(in.sandbox, "sb1");
	assert_int_equal(in.launch_time, 1795576751);
	assert_string_equal(in.public_ip, "");
}

static void test_xml_run_instances_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"not xml",
		"<RunInstancesResponse><instancesSet></instancesSet></RunInstancesResponse>",
		"<RunInstancesResponse><instancesSet><item><instanceId></instanceId></item></instancesSet>"
		"</RunInstancesResponse>",
		"<RunInstancesResponse><instancesSet><item><instanceId>i-1",     /* truncated */
		"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><RunInstancesResponse><instancesSet>"
		"<item><instanceId>&e;</instanceId></item></instancesSet></RunInstancesResponse>",
	};
	struct aws_instance_info in;
	struct pp_err err = { 0 };
	char longid[600];

	(void)state;
	for (size_t i = 0; i < PP_ARRAY_SIZE(bad); i++) {
		pp_err_clear(&err);
		assert_int_equal(aws_xml_run_instances(bad[i], strlen(bad[i]), &in, &err), -1);
		assert_true(err.msg[0]);
	}
	/* an id longer than its field is an error, never cut */
	snprintf(longid, sizeof(longid), "<R><instancesSet><item><instanceId>i-%0300d</instanceId>"
		 "</item></instancesSet></R>", 7);
	assert_int_equal(aws_xml_run_instances(longid, strlen(longid), &in, &err), -1);
	assert_non_null(strstr(err.msg, "longer"));
}

static const char DESCRIBE_XML[] =
	"<DescribeInstancesResponse " EC2NS "><requestId>r</requestId><reservationSet>"
	"<item><reservationId>r-1</reservationId><instancesSet>"
	"<item><instanceId>i-00000000000000001</instanceId><instanceState><code>16</code><name>running</name>"
	"</instanceState><privateIpAddress>10.0.0.1</privateIpAddress><ipAddress>54.1.2.3</ipAddress>"
	"<tagSet><item><key>Name</key><value>podvm-x-1</value></item></tagSet></item>"
	"<item><instanceId>i-00000000000000002</instanceId><instanceState><code>0</code><name>pending</name>"
	"</instanceState><networkInterfaceSet><item><privateIpAddress>0.0.0.0</privateIpAddress>"
	"<association><publicIp>3.3.3.3</publicIp></association></item></networkInterfaceSet></item>"
	"</instancesSet></item><item><reservationId>r-2</reservationId><instancesSet>"
	"<item><instanceId>i-00000000000000003</instanceId><launchTime>bogus</launchTime></item>"
	"</instancesSet></item></reservationSet><nextToken>page2</nextToken></DescribeInstancesResponse>";

static void test_xml_describe_instances(void **state)
{
	struct aws_instance_list l = { 0 };
	struct pp_err err = { 0 };
	const char *empty = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
	const char *none = "<DescribeInstancesResponse></DescribeInstancesResponse>";

	(void)state;
	assert_int_equal(aws_xml_describe_instances(DESCRIBE_XML, strlen(DESCRIBE_XML), &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].public_ip, "54.1.2.3");
	assert_string_equal(l.items[0].private_ips[0], "10.0.0.1");
	assert_string_equal(l.items[0].name, "podvm-x-1");
	assert_int_equal(l.items[1].n_private_ips, 0);          /* 0.0.0.0 is no address */
	assert_string_equal(l.items[1].public_ip, "3.3.3.3");
	assert_string_equal(l.items[2].id, "i-00000000000000003");
	assert_int_equal(l.items[2].launch_time, 0);
	assert_string_equal(l.next_token, "page2");
	aws_instance_list_free(&l);
	assert_int_equal(aws_xml_describe_instances(empty, strlen(empty), &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_string_equal(l.next_token, "");
	aws_instance_list_free(&l);
	assert_int_equal(aws_xml_describe_instances(none, strlen(none), &l, &err), -1);
}

static void test_xml_describe_images(void **state)
{
	const char *ok =
		"<DescribeImagesResponse " EC2NS "><imagesSet><item><imageId>ami-1</imageId>"
		"<rootDeviceName>/dev/sda1</rootDeviceName><bootMode>uefi</bootMode><blockDeviceMapping>"
		"<item><deviceName>/dev/sdb</deviceName><ebs><volumeSize>100</volumeSize></ebs></item>"
		"<item><deviceName>/dev/sda1</deviceName><ebs><volumeSize>15</volumeSize></ebs></item>"
		"</blockDeviceMapping></item></imagesSet></DescribeImagesResponse>";
	const char *nobdm =
		"<DescribeImagesResponse><imagesSet><item><imageId>ami-2</imageId>"
		"<rootDeviceName>/dev/xvda</rootDeviceName></item></imagesSet></DescribeImagesResponse>";
	const char *noroot =
		"<DescribeImagesResponse><imagesSet><item><imageId>ami-3</imageId></item></imagesSet>"
		"</DescribeImagesResponse>";
	const char *empty = "<DescribeImagesResponse><imagesSet/></DescribeImagesResponse>";
	const char *badsize =
		"<DescribeImagesResponse><imagesSet><item><imageId>ami-4</imageId><rootDeviceName>/dev/a"
		"</rootDeviceName><blockDeviceMapping><item><deviceName>/dev/a</deviceName><ebs><volumeSize>"
		"-3</volumeSize></ebs></item></blockDeviceMapping></item></imagesSet></DescribeImagesResponse>";
	struct aws_image_info img;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(aws_xml_describe_images(ok, strlen(ok), "ami-1", &img, &err), 0);
	assert_string_equal(img.root_device, "/dev/sda1");
	assert_int_equal(img.root_size_gib, 15);     /* the root device's mapping, not the first */
	assert_string_equal(img.boot_mode, "uefi");
	assert_int_equal(aws_xml_describe_images(nobdm, strlen(nobdm), "ami-2", &img, &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "ami-2 has no EBS block-device mapping"));
	assert_int_equal(aws_xml_describe_images(noroot, strlen(noroot), "ami-3", &img, &err), -1);
	assert_non_null(strstr(err.msg, "ami-3 has no root device"));
	assert_int_equal(aws_xml_describe_images(empty, strlen(empty), "ami-9", &img, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_int_equal(aws_xml_describe_images(ok, strlen(ok), "ami-other", &img, &err), -1);
	assert_int_equal(aws_xml_describe_images(badsize, strlen(badsize), "ami-4", &img, &err), -1);
}

static void test_xml_instance_types(void **state)
{
	const char *xml =
		"<DescribeInstanceTypesResponse " EC2NS "><instanceTypeSet>"
		"<item><instanceType>m6a.large</instanceType><processorInfo><supportedFeatures>"
		"<item>amd-sev-snp</item></supportedFeatures></processorInfo><vCpuInfo><defaultVCpus>2"
		"</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>8192</sizeInMiB></memoryInfo></item>"
		"<item><instanceType>p3.8xlarge</instanceType><processorInfo><supportedArchitectures><item>"
		"x86_64</item></supportedArchitectures></processorInfo><vCpuInfo><defaultVCpus>32</defaultVCpus>"
		"</vCpuInfo><memoryInfo><sizeInMiB>249856</sizeInMiB></memoryInfo><gpuInfo><gpus>"
		"<item><count>2</count></item><item><count>2</count></item></gpus></gpuInfo></item>"
		"<item><instanceType>x.old</instanceType><vCpuInfo><defaultVCpus>1</defaultVCpus></vCpuInfo>"
		"<memoryInfo><sizeInMiB>512</sizeInMiB></memoryInfo></item>"
		"</instanceTypeSet></DescribeInstanceTypesResponse>";
	const char *nomem = "<R><instanceTypeSet><item><instanceType>a.b</instanceType><vCpuInfo>"
			    "<defaultVCpus>2</defaultVCpus></vCpuInfo></item></instanceTypeSet></R>";
	struct aws_type_info t[4];
	struct pp_err err = { 0 };
	size_t n = 0;

	(void)state;
	assert_int_equal(aws_xml_describe_instance_types(xml, strlen(xml), t, 4, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_true(t[0].sev_snp && t[0].features_known);
	assert_int_equal(t[0].memory_mib, 8192);
	assert_int_equal(t[1].gpus, 4);
	assert_int_equal(t[1].vcpus, 32);
	assert_false(t[1].sev_snp);
	assert_true(t[1].features_known);
	assert_false(t[2].features_known);
	assert_int_equal(aws_xml_describe_instance_types(xml, strlen(xml), t, 2, &n, &err), -1);
	assert_int_equal(aws_xml_describe_instance_types(nomem, strlen(nomem), t, 4, &n, &err), -1);
	assert_non_null(strstr(err.msg, "memoryInfo/sizeInMiB"));
}

static void test_xml_errors_and_sts(void **state)
{
	const char *ec2 = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidAMIID.NotFound</Code>"
			  "<Message>The image id '[ami-1]' does not exist</Message></Error></Errors>"
			  "<RequestID>x</RequestID></Response>";
	const char *sts = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
			  "<Message>bad</Message></Error></ErrorResponse>";
	const char *creds =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>"
		"<SecretAccessKey>s/+=</SecretAccessKey><SessionToken>tok+/=</SessionToken>"
		"<Expiration>2026-11-25T04:00:00Z</Expiration></Credentials>"
		"</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
	const char *nocred = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
			     "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
	struct aws_error e;
	struct aws_creds c;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(aws_xml_error(ec2, strlen(ec2), &e), 0);
	assert_string_equal(e.code, "InvalidAMIID.NotFound");
	assert_string_equal(e.message, "The image id '[ami-1]' does not exist");
	assert_int_equal(aws_xml_error(sts, strlen(sts), &e), 0);
	assert_string_equal(e.code, "InvalidIdentityToken");
	assert_int_equal(aws_xml_error(RUN_XML, strlen(RUN_XML), &e), -1);
	assert_int_equal(aws_xml_error("<html>503</html>", 16, &e), -1);
	assert_int_equal(aws_xml_sts_credentials(creds, strlen(creds), &c, &err), 0);
	assert_string_equal(c.akid, "ASIA1");
	assert_string_equal(c.secret, "s/+=");
	assert_string_equal(c.token, "tok+/=");
	assert_int_equal(c.expires, 1795579200);
	assert_int_equal(aws_xml_sts_credentials(nocred, strlen(nocred), &c, &err), -1);
	/* the error never quotes the answer (it holds secrets) */
	assert_null(strstr(err.msg, "ASIA"));
}

static void test_xml_addresses(void **state)
{
	const char *xml = "<DescribeAddressesResponse><addressesSet><item><publicIp>1.2.3.4</publicIp>"
			  "<allocationId>eipalloc-1</allocationId><associationId>eipassoc-1</associationId>"
			  "<tagSet><item><key>Name</key><value>eip-i-1</value></item></tagSet></item>"
			  "<item><publicIp>5.6.7.8</publicIp></item></addressesSet></DescribeAddressesResponse>";
	struct aws_address_info a[4];
	struct pp_err err = { 0 };
	size_t n = 0;

	(void)state;
	assert_int_equal(aws_xml_describe_addresses(xml, strlen(xml), a, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(a[0].allocation_id, "eipalloc-1");
	assert_string_equal(a[0].association_id, "eipassoc-1");
	assert_string_equal(a[0].name_tag, "eip-i-1");
	assert_string_equal(a[1].allocation_id, "");
	assert_int_equal(aws_xml_describe_addresses("<x/>", 4, a, 4, &n, &err), -1);
}

/* Hostile answers: every prefix and a few byte flips of each canned answer must parse or fail
 * cleanly (ASan watches). A small, deterministic stand-in for the fuzzer. */
static void test_xml_mutations(void **state)
{
	const char *docs[] = { RUN_XML, DESCRIBE_XML };
	struct pp_err err = { 0 };

	(void)state;
	for (size_t d = 0; d < PP_ARRAY_SIZE(docs); d++) {
		size_t len = strlen(docs[d]);
		char *m = pp_xmalloc(len + 1);

		for (size_t cut = 0; cut <= len; cut += 7) {
			struct aws_instance_info in;
			struct aws_instance_list l = { 0 };

			/* every 7th prefix, then the whole text with one byte changed */
			memcpy(m, docs[d], len + 1);
			aws_xml_run_instances(m, cut, &in, &err);
			if (aws_xml_describe_instances(m, cut, &l, &err) == 0)
				aws_instance_list_free(&l);
			if (cut < len)
				m[cut] = cut % 2 ? '<' : '\0';
			aws_xml_run_instances(m, len, &in, &err);
			if (aws_xml_describe_instances(m, len, &l, &err) == 0)
				aws_instance_list_free(&l);
		}
		free(m);
	}
}

/* ---- shared files ---- */

static void test_profile_parse(void **state)
{
	const char *cred = "# comment\n[default]\naws_access_key_id = AKID0\naws_secret_access_key=S0\n"
			   "\n[peer]\r\n  aws_access_key_id =  AKID1 \r\naws_secret_access_key = S/1+\n"
			   "aws_session_token = T1\n; other\n[peer2]\naws_access_key_id = AKID2\n";
	const char *cfg = "[default]\nregion = eu-west-1\n[profile peer]\nregion = us-east-2\n"
			  "role_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t\n[peer]\nregion = bad\n";
	struct aws_profile p;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(aws_profile_parse(cred, "peer", false, &p, &err), 0);
	assert_true(p.found);
	assert_string_equal(p.akid, "AKID1");
	assert_string_equal(p.secret, "S/1+");
	assert_string_equal(p.token, "T1");
	assert_int_equal(aws_profile_parse(cred, "default", false, &p, &err), 0);
	assert_string_equal(p.akid, "AKID0");
	assert_string_equal(p.token, "");
	assert_int_equal(aws_profile_parse(cred, "nope", false, &p, &err), 0);
	assert_false(p.found);
	/* config file: "[profile x]", except "[default]"; a bare "[peer]" is not the profile */
	assert_int_equal(aws_profile_parse(cfg, "peer", true, &p, &err), 0);
	assert_string_equal(p.region, "us-east-2");
	assert_string_equal(p.role_arn, "arn:aws:iam::1:role/r");
	assert_string_equal(p.web_token_file, "/t");
	assert_int_equal(aws_profile_parse(cfg, "default", true, &p, &err), 0);
	assert_string_equal(p.region, "eu-west-1");
	aws_profile_wipe(&p);
}

/* ---- small pieces ---- */

static void test_iso8601(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(aws_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(aws_parse_iso8601("2026-11-25T03:19:11.123456Z", &t), 0);
	assert_int_equal(t, 1795576751);
	assert_int_equal(aws_parse_iso8601("2026-11-25T05:19:11+02:00", &t), 0);
	assert_int_equal(t, 1795576751);
	assert_int_equal(aws_parse_iso8601("2026-11-25T03:19:11", &t), -1);
	assert_int_equal(aws_parse_iso8601("2026-13-25T03:19:11Z", &t), -1);
	assert_int_equal(aws_parse_iso8601("2026-11-25T03:19:11Zjunk", &t), -1);
	assert_int_equal(aws_parse_iso8601("", &t), -1);
}

static void test_ids_and_codes(void **state)
{
	(void)state;
	assert_true(aws_instance_id_valid("i-0123456789abcdef0"));
	assert_true(aws_instance_id_valid("i-0123abcd"));
	assert_false(aws_instance_id_valid("i-0123456789ABCDEF0"));
	assert_false(aws_instance_id_valid("i-0123"));
	assert_false(aws_instance_id_valid("podvm-x"));
	assert_false(aws_instance_id_valid(""));
	assert_false(aws_instance_id_valid("i-0123456789abcdef0 "));
	assert_int_equal(aws_error_code_map("InvalidInstanceID.NotFound", 400), PP_NOT_FOUND);
	assert_int_equal(aws_error_code_map("RequestLimitExceeded", 503), PP_RESOURCE_EXHAUSTED);
	assert_int_equal(aws_error_code_map("InstanceLimitExceeded", 400), PP_RESOURCE_EXHAUSTED);
	assert_int_equal(aws_error_code_map("InsufficientInstanceCapacity", 500), PP_RESOURCE_EXHAUSTED);
	assert_int_equal(aws_error_code_map("AuthFailure", 401), PP_UNAUTHENTICATED);
	assert_int_equal(aws_error_code_map("UnauthorizedOperation", 403), PP_PERMISSION_DENIED);
	assert_int_equal(aws_error_code_map("InvalidParameterValue", 400), PP_INVALID_ARGUMENT);
	assert_int_equal(aws_error_code_map("InternalError", 500), PP_UNAVAILABLE);
	assert_true(aws_error_is_throttle("RequestLimitExceeded"));
	assert_false(aws_error_is_throttle("InstanceLimitExceeded"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_run_instances),
		cmocka_unit_test(test_form_others),
		cmocka_unit_test(test_form_user_data_limit),
		cmocka_unit_test(test_xml_run_instances),
		cmocka_unit_test(test_xml_run_instances_bad),
		cmocka_unit_test(test_xml_describe_instances),
		cmocka_unit_test(test_xml_describe_images),
		cmocka_unit_test(test_xml_instance_types),
		cmocka_unit_test(test_xml_errors_and_sts),
		cmocka_unit_test(test_xml_addresses),
		cmocka_unit_test(test_xml_mutations),
		cmocka_unit_test(test_profile_parse),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_ids_and_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
