/*
 * The azure provider's pure parts: the VM body against golden files (tests/fixtures/azure/,
 * regenerated with PP_REGENERATE_GOLDEN=1), the parsers of what ARM and the token endpoints
 * answer (good and hostile input), VM ids, URLs, options and SSH keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "providers/azure/azure_priv.h"

/* ---- golden files ---- */

static void golden_check(const char *name, const char *text)
{
	const char *src = getenv("PP_SOURCE_DIR");
	char path[1024];
	uint8_t *want = NULL;
	size_t len = 0;
	struct pp_err err = { 0 };

	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/tests/fixtures/azure/%s", src, name);
	if (getenv("PP_REGENERATE_GOLDEN")) {
		assert_int_equal(file_write_atomic(path, text, strlen(text), 0644, &err), 0);
		return;
	}
	if (file_read_all(path, 1 << 20, &want, &len, &err) < 0)
		fail_msg("golden file %s: %s (regenerate with PP_REGENERATE_GOLDEN=1)", path, err.msg);
	if (strcmp((char *)want, text) != 0)
		fail_msg("%s differs from what we send now:\n%s", path, text);
	free(want);
}

static const char *const test_tags[] = { "team=peerpods", " cost center = 42 " };

static struct azure_vm_params vm_params(void)
{
	struct azure_vm_params p = {
		.name = "podvm-nginx-0123abcd", .location = "eastus", .size = "Standard_DC2as_v5",
		.image = "/subscriptions/sub-1/resourceGroups/img/providers/Microsoft.Compute/galleries/g/"
			 "images/podvm/versions/1.0.0",
		.subnet_id = "/subscriptions/sub-1/resourceGroups/net-rg/providers/Microsoft.Network/"
			     "virtualNetworks/vnet/subnets/default",
		.nsg_id = "", .admin_user = "peerpod", .ssh_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEY",
		.user_data_b64 = "I2Nsb3VkLWNvbmZpZwo=", .cvm = true, .secure_boot = false,
		.public_ip = false, .os_disk_gb = 0, .tags = test_tags, .n_tags = 2,
		.owner = "node-a", .sandbox_id = "0123abcdef", .pod = "default/nginx",
	};
	return p;
}

static void golden_body(const struct azure_vm_params *p, const char *file)
{
	struct pp_err err = { 0 };
	json_t *b = azure_vm_body(p, &err);
	char *text, *nl;

	assert_non_null(b);
	text = json_dumps(b, JSON_INDENT(2) | JSON_SORT_KEYS);
	nl = malloc(strlen(text) + 2);
	assert_non_null(nl);
	snprintf(nl, strlen(text) + 2, "%s\n", text);
	golden_check(file, nl);
	free(nl);
	free(text);
	json_decref(b);
}

static void test_vm_body_cvm(void **state)
{
	struct azure_vm_params p = vm_params();

	(void)state;
	golden_body(&p, "vm_put_cvm.json");
}

static void test_vm_body_plain_public_ip(void **state)
{
	struct azure_vm_params p = vm_params();

	(void)state;
	p.cvm = false;
	p.public_ip = true;
	p.os_disk_gb = 64;
	p.nsg_id = "/subscriptions/sub-1/resourceGroups/net-rg/providers/Microsoft.Network/"
		   "networkSecurityGroups/nsg";
	p.image = "/CommunityGalleries/cococommunity-42/Images/peerpod-podvm/Versions/latest";
	p.n_tags = 0;
	p.pod = "";
	golden_body(&p, "vm_put_plain_public_ip.json");
}

static void test_vm_body_secure_boot_and_shapes(void **state)
{
	struct azure_vm_params p = vm_params();
	struct pp_err err = { 0 };
	json_t *b, *props;

	(void)state;
	p.secure_boot = true;
	p.image = "/SharedGalleries/abc/Images/x/Versions/1";
	b = azure_vm_body(&p, &err);
	assert_non_null(b);
	props = json_object_get(b, "properties");
	assert_true(json_is_true(json_object_get(json_object_get(json_object_get(props, "securityProfile"),
				"uefiSettings"), "secureBootEnabled")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(props,
		"storageProfile"), "imageReference"), "sharedGalleryImageId")), p.image);
	/* our tags win over nothing, and TAGS keys and values are trimmed */
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tags"), "cost center")), "42");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "tags"), AZURE_TAG_OWNER)),
			    "node-a");
	json_decref(b);
	/* not UTF-8: refused with a message, not a crash or a silently dropped field */
	p.image = "\xff\xfe";
	assert_null(azure_vm_body(&p, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

/* ---- ids, URLs, times ---- */

static void test_vm_name_from_id(void **state)
{
	char name[AZURE_NAME_MAX];
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(azure_vm_name_from_id("/subscriptions/s/resourceGroups/rg/providers/"
					       "Microsoft.Compute/virtualMachines/podvm-a-1", name,
					       sizeof(name), &err), 0);
	assert_string_equal(name, "podvm-a-1");
	/* ARM ids come back in any case (upstream's case-sensitive regexp leaked VMs, #1847) */
	assert_int_equal(azure_vm_name_from_id("/SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/PROVIDERS/"
					       "microsoft.compute/VIRTUALMACHINES/podvm-B-2", name,
					       sizeof(name), &err), 0);
	assert_string_equal(name, "podvm-B-2");
	assert_int_equal(azure_vm_name_from_id("/subscriptions/s/resourceGroups/rg/providers/"
					       "Microsoft.Network/networkInterfaces/x", name, sizeof(name),
					       &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "networkInterfaces/x"));
	assert_int_equal(azure_vm_name_from_id("/subscriptions/s/resourceGroups/rg/providers/"
					       "Microsoft.Compute/virtualMachines/a/extra", name,
					       sizeof(name), &err), -1);
	assert_int_equal(azure_vm_name_from_id("/subscriptions//resourceGroups/rg/providers/"
					       "Microsoft.Compute/virtualMachines/a", name, sizeof(name),
					       &err), -1);
	assert_int_equal(azure_vm_name_from_id("i-12345", name, sizeof(name), &err), -1);
	assert_int_equal(azure_vm_name_from_id("", name, sizeof(name), &err), -1);
}

static struct azure_conf url_conf(void)
{
	struct azure_conf c;

	memset(&c, 0, sizeof(c));
	c.subscription = "sub-1";
	c.resource_group = "rg (prod)";
	c.region = "eastus";
	c.arm_endpoint = "https://management.azure.com/";
	return c;
}

static void test_urls(void **state)
{
	struct azure_conf c = url_conf();
	char url[AZURE_URL_MAX];
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(azure_url_resource(&c, url, sizeof(url), "Microsoft.Compute/virtualMachines",
					    "podvm-a", AZURE_API_COMPUTE, &err), 0);
	assert_string_equal(url, "https://management.azure.com/subscriptions/sub-1/resourceGroups/"
			    "rg%20%28prod%29/providers/Microsoft.Compute/virtualMachines/podvm-a"
			    "?api-version=2022-11-01");
	assert_int_equal(azure_url_vm_sizes(&c, url, sizeof(url), &err), 0);
	assert_string_equal(url, "https://management.azure.com/subscriptions/sub-1/providers/"
			    "Microsoft.Compute/locations/eastus/vmSizes?api-version=2022-11-01");
	assert_int_equal(azure_url_from_id(&c, "/subscriptions/s/resourceGroups/r/providers/"
					   "Microsoft.Network/networkInterfaces/n", AZURE_API_NETWORK, url,
					   sizeof(url), &err), 0);
	assert_string_equal(url, "https://management.azure.com/subscriptions/s/resourceGroups/r/"
			    "providers/Microsoft.Network/networkInterfaces/n?api-version=2022-09-01");
	assert_int_equal(azure_url_from_id(&c, "https://evil.example/x", AZURE_API_NETWORK, url,
					   sizeof(url), &err), -1);
	assert_int_equal(azure_url_from_id(&c, "/subscriptions/s/x?y=1", AZURE_API_NETWORK, url,
					   sizeof(url), &err), -1);
	assert_int_equal(azure_url_resource(&c, url, 40, "Microsoft.Compute/virtualMachines", "podvm-a",
					    AZURE_API_COMPUTE, &err), -1);
	/* the token only ever goes to the ARM endpoint */
	assert_true(azure_url_is_arm(&c, "https://management.azure.com/subscriptions/x/operations/1"));
	assert_true(azure_url_is_arm(&c, "https://MANAGEMENT.azure.com/x"));
	assert_false(azure_url_is_arm(&c, "https://management.azure.com.evil.example/x"));
	assert_false(azure_url_is_arm(&c, "http://management.azure.com/x"));
	assert_false(azure_url_is_arm(&c, "https://management.azure.com"));
}

static void test_parse_time_and_retry_after(void **state)
{
	(void)state;
	assert_true(azure_parse_time("2026-01-02T03:04:05Z") == 1767323045);
	assert_true(azure_parse_time("2026-01-02T03:04:05.1234567+00:00") == 1767323045);
	assert_true(azure_parse_time("2026-01-02T04:04:05+01:00") == 1767323045);
	assert_true(azure_parse_time("yesterday") == -1);
	assert_true(azure_parse_time("2026-01-02T03:04:05+01") == -1);
	assert_true(azure_parse_time("") == -1);
	assert_true(azure_retry_after_ms("3", 500, 60000) == 3000);
	assert_true(azure_retry_after_ms(NULL, 500, 60000) == 500);
	assert_true(azure_retry_after_ms("soon", 500, 60000) == 500);
	assert_true(azure_retry_after_ms("-1", 500, 60000) == 500);
	assert_true(azure_retry_after_ms("99999999", 500, 60000) == 60000);
}

/* ---- responses ---- */

static void test_token_parse(void **state)
{
	struct pp_err err = { 0 };
	char *tok = NULL;
	int64_t exp = 0;

	(void)state;
	assert_int_equal(azure_token_parse("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
					   "\"access_token\":\"eyJ0.abc\"}", &tok, &exp, &err), 0);
	assert_string_equal(tok, "eyJ0.abc");
	assert_true(exp == 3599);
	azure_secret_free(tok);
	/* IMDS: numbers as strings */
	assert_int_equal(azure_token_parse("{\"token_type\":\"Bearer\",\"expires_in\":\"86399\","
					   "\"access_token\":\"t\"}", &tok, &exp, &err), 0);
	assert_true(exp == 86399);
	azure_secret_free(tok);
	assert_int_equal(azure_token_parse("{\"token_type\":\"Bearer\",\"expires_in\":3599}", &tok, &exp,
					   &err), -1);
	assert_int_equal(err.code, PP_UNAUTHENTICATED);
	assert_int_equal(azure_token_parse("{\"token_type\":\"mac\",\"expires_in\":1,\"access_token\":\"t\"}",
					   &tok, &exp, &err), -1);
	assert_int_equal(azure_token_parse("{\"expires_in\":\"x\",\"access_token\":\"t\"}", &tok, &exp,
					   &err), -1);
	assert_int_equal(azure_token_parse("{\"expires_in\":0,\"access_token\":\"t\"}", &tok, &exp, &err), -1);
	assert_int_equal(azure_token_parse("{\"expires_in\":10,\"access_token\":\"a b\"}", &tok, &exp,
					   &err), -1);
	assert_int_equal(azure_token_parse("<html>", &tok, &exp, &err), -1);
	assert_int_equal(azure_token_parse("", &tok, &exp, &err), -1);
}

static void test_arm_errors(void **state)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 409 };
	struct pp_err err = { 0 };
	char code[64], msg[64];
	const char *body = "{\"error\":{\"code\":\"SkuNotAvailable\",\"message\":\"The requested size "
			   "for resource 'x' is currently not available\\nin location 'eastus'\"}}";

	(void)state;
	assert_true(azure_arm_error_parse(body, code, sizeof(code), msg, sizeof(msg)));
	assert_string_equal(code, "SkuNotAvailable");
	assert_null(strchr(msg, '\n'));
	assert_int_equal((int)strlen(msg), 63);
	assert_string_equal(msg + 60, "...");
	assert_false(azure_arm_error_parse("{\"message\":\"x\"}", code, sizeof(code), msg, sizeof(msg)));
	assert_false(azure_arm_error_parse("not json", code, sizeof(code), msg, sizeof(msg)));

	r.resp.body.max = 4096;
	assert_int_equal(buf_append_str(&r.resp.body, body), 0);
	assert_int_equal(azure_arm_error(&r, "creating VM podvm-a", &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "creating VM podvm-a: ARM SkuNotAvailable: The requested size"));
	assert_non_null(strstr(err.msg, "(HTTP 409)"));
	buf_reset(&r.resp.body);
	assert_int_equal(buf_append_str(&r.resp.body, "<html>gateway</html>"), 0);
	r.status = 502;
	assert_int_equal(azure_arm_error(&r, "x", &err), -1);
	assert_int_equal(err.code, PP_UNAVAILABLE);
	azure_result_free(&r);

	assert_int_equal(azure_arm_code_map(404, "ResourceNotFound"), PP_NOT_FOUND);
	assert_int_equal(azure_arm_code_map(403, "AuthorizationFailed"), PP_PERMISSION_DENIED);
	assert_int_equal(azure_arm_code_map(409, "OperationNotAllowed"), PP_ABORTED);
	assert_int_equal(azure_arm_code_map(409, "QuotaExceeded"), PP_RESOURCE_EXHAUSTED);
	assert_int_equal(azure_arm_code_map(400, "InvalidParameter"), PP_INVALID_ARGUMENT);
}

static void test_op_status(void **state)
{
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(azure_op_status_parse("{\"status\":\"InProgress\"}", "w", &err), 0);
	assert_int_equal(azure_op_status_parse("{\"status\":\"succeeded\"}", "w", &err), 1);
	assert_int_equal(azure_op_status_parse("{\"status\":\"Failed\",\"error\":{\"code\":"
					       "\"AllocationFailed\",\"message\":\"no capacity\"}}",
					       "creating VM x", &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_string_equal(err.msg, "creating VM x: operation Failed: ARM AllocationFailed: no capacity");
	assert_int_equal(azure_op_status_parse("{\"status\":\"Canceled\"}", "w", &err), -1);
	assert_int_equal(err.code, PP_ABORTED);
	assert_int_equal(azure_op_status_parse("{}", "w", &err), -1);
	assert_int_equal(azure_op_status_parse("[", "w", &err), -1);
}

static void test_vm_parse(void **state)
{
	struct azure_vm vm;
	struct pp_err err = { 0 };
	const char *body =
		"{\"id\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v\","
		"\"name\":\"v\",\"tags\":{\"peerpods-owner\":\"node-a\",\"peerpods-sandbox\":\"sb1\"},"
		"\"properties\":{\"provisioningState\":\"Succeeded\",\"timeCreated\":\"2026-01-02T03:04:05Z\","
		"\"storageProfile\":{\"osDisk\":{\"deleteOption\":\"Detach\",\"managedDisk\":{\"id\":\"/d\"}}},"
		"\"networkProfile\":{\"networkInterfaces\":[{\"id\":\"/n1\",\"properties\":{\"deleteOption\":"
		"\"Delete\"}},{\"id\":\"/n2\"},{\"nope\":1}]}}}";

	(void)state;
	assert_int_equal(azure_vm_parse(body, &vm, &err), 0);
	assert_string_equal(vm.name, "v");
	assert_string_equal(vm.owner, "node-a");
	assert_string_equal(vm.sandbox_id, "sb1");
	assert_string_equal(vm.state, "Succeeded");
	assert_true(vm.created_unix == 1767323045);
	assert_int_equal(vm.n_nics, 2);
	assert_true(vm.nics[0].delete_with_vm);
	assert_false(vm.nics[1].delete_with_vm);
	assert_string_equal(vm.os_disk.id, "/d");
	assert_false(vm.os_disk.delete_with_vm);
	assert_int_equal(azure_vm_parse("{\"name\":\"v\"}", &vm, &err), -1);
	assert_int_equal(azure_vm_parse("{\"id\":5}", &vm, &err), -1);
	assert_int_equal(azure_vm_parse("", &vm, &err), -1);
}

static void test_nic_and_pip_parse(void **state)
{
	struct azure_nic nic;
	struct pp_err err = { 0 };
	char ip[PROVIDER_IP_MAX];

	(void)state;
	assert_int_equal(azure_nic_parse("{\"properties\":{\"ipConfigurations\":["
					 "{\"properties\":{\"privateIPAddress\":\"10.0.0.9\"}},"
					 "{\"properties\":{\"primary\":true,\"privateIPAddress\":\"10.0.0.5\","
					 "\"publicIPAddress\":{\"id\":\"/pip\"}}}]}}", &nic, &err), 0);
	assert_int_equal(nic.n_private, 2);
	assert_string_equal(nic.private_ips[0], "10.0.0.5");   /* primary first */
	assert_string_equal(nic.private_ips[1], "10.0.0.9");
	assert_int_equal(nic.n_public, 1);
	assert_string_equal(nic.public_ids[0], "/pip");
	assert_int_equal(azure_nic_parse("{\"properties\":{\"ipConfigurations\":[{\"properties\":"
					 "{\"privateIPAddress\":\"0.0.0.0\"}}]}}", &nic, &err), 0);
	assert_int_equal(nic.n_private, 0);
	assert_true(nic.private_pending);
	assert_int_equal(azure_nic_parse("{\"properties\":{}}", &nic, &err), -1);
	assert_int_equal(azure_pip_parse("{\"properties\":{\"ipAddress\":\"20.1.2.3\"}}", ip, sizeof(ip),
					 &err), 0);
	assert_string_equal(ip, "20.1.2.3");
	assert_int_equal(azure_pip_parse("{\"properties\":{}}", ip, sizeof(ip), &err), 0);
	assert_string_equal(ip, "");
	assert_int_equal(azure_pip_parse("x", ip, sizeof(ip), &err), -1);
}

static void test_vm_sizes_parse(void **state)
{
	static const char *const want[] = { "Standard_DC4as_v5", "standard_dc2as_v5", "Standard_X" };
	struct instance_type_info *t = NULL;
	size_t n = 0;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(azure_vm_sizes_parse("{\"value\":[{\"name\":\"Standard_DC2as_v5\",\"numberOfCores\":2,"
					      "\"memoryInMB\":8192},{\"name\":\"Standard_D2s_v5\","
					      "\"numberOfCores\":2,\"memoryInMB\":8192},{\"name\":"
					      "\"Standard_DC4as_v5\",\"numberOfCores\":\"4\",\"memoryInMB\":1},"
					      "{\"name\":\"Standard_DC4as_v5\",\"numberOfCores\":4,"
					      "\"memoryInMB\":16384},{\"name\":\"Standard_DC4as_v5\","
					      "\"numberOfCores\":4,\"memoryInMB\":16384}]}",
					      want, 3, &t, &n, &err), 0);
	assert_int_equal((int)n, 2);
	assert_string_equal(t[0].name, "standard_dc2as_v5");   /* the configured spelling */
	assert_true(t[0].vcpus == 2 && t[0].memory_mib == 8192 && t[0].gpus == 0);
	assert_string_equal(t[1].name, "Standard_DC4as_v5");
	assert_true(t[1].vcpus == 4 && t[1].memory_mib == 16384);
	azure_vm_sizes_free(t, n);
	assert_int_equal(azure_vm_sizes_parse("{\"values\":[]}", want, 3, &t, &n, &err), -1);
}

static void test_vm_list_parse(void **state)
{
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	char *next = NULL;
	const char *page =
		"{\"value\":[{\"id\":\"/subscriptions/s/x/a\",\"name\":\"a\",\"tags\":{\"peerpods-owner\":"
		"\"node-a\",\"peerpods-sandbox\":\"sa\"},\"properties\":{\"timeCreated\":"
		"\"2026-01-02T03:04:05Z\"}},{\"id\":\"/subscriptions/s/x/b\",\"name\":\"b\",\"tags\":"
		"{\"peerpods-owner\":\"node-b\"}},{\"id\":\"/subscriptions/s/x/c\",\"name\":\"c\"},"
		"{\"bogus\":true}],\"nextLink\":\"https://management.azure.com/next\"}";

	(void)state;
	assert_int_equal(azure_vm_list_parse(page, "node-a", &l, &next, &err), 0);
	assert_int_equal((int)l.n, 1);
	assert_string_equal(l.items[0].name, "a");
	assert_string_equal(l.items[0].sandbox_id, "sa");
	assert_true(l.items[0].created_unix == 1767323045);
	assert_string_equal(next, "https://management.azure.com/next");
	free(next);
	assert_int_equal(azure_vm_list_parse("{\"value\":[]}", "node-a", &l, &next, &err), 0);
	assert_null(next);
	assert_int_equal(azure_vm_list_parse("{}", "node-a", &l, &next, &err), -1);
	owned_instance_list_free(&l);
}

/* ---- SSH keys ---- */

static void test_sshkey(void **state)
{
	struct pp_err err = { 0 };
	char *key = NULL, *again = NULL;
	char dir[] = "/tmp/pp.azkXXXXXX", path[64];

	(void)state;
	assert_int_equal(azure_sshkey_generate(2048, &key, &err), 0);
	assert_true(strncmp(key, "ssh-rsa AAAAB3NzaC1yc2E", 23) == 0);
	assert_int_equal(azure_sshkey_parse_line(key, &again, &err), 0);
	assert_string_equal(again, key);
	free(again);
	/* a comment is dropped, the key is kept */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/id.pub", dir);
	{
		char text[4096];

		snprintf(text, sizeof(text), "# my key\n\n%s  me@host\n", key);
		assert_int_equal(file_write_atomic(path, text, strlen(text), 0644, &err), 0);
	}
	assert_int_equal(azure_sshkey_load(path, &again, &err), 0);
	assert_string_equal(again, key);
	free(again);
	/* upstream's config check: mode exactly 0600 */
	assert_int_equal(azure_sshkey_check_file(path, &err), -1);
	assert_non_null(strstr(err.msg, "0644"));
	chmod(path, 0600);
	assert_int_equal(azure_sshkey_check_file(path, &err), 0);
	free(key);

	assert_int_equal(azure_sshkey_parse_line("ssh-dss AAAA", &key, &err), -1);
	assert_int_equal(azure_sshkey_parse_line("ssh-rsa", &key, &err), -1);
	assert_int_equal(azure_sshkey_parse_line("ssh-rsa !!!!", &key, &err), -1);
	/* an ed25519 blob labelled ssh-rsa */
	assert_int_equal(azure_sshkey_parse_line("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKEY", &key, &err), -1);
	assert_non_null(strstr(err.msg, "another type"));
	assert_int_equal(file_write_atomic(path, "# nothing\n", 10, 0600, &err), 0);
	assert_int_equal(azure_sshkey_load(path, &key, &err), -1);
	assert_non_null(strstr(err.msg, "holds no key"));
	unlink(path);
	assert_int_equal(azure_sshkey_load(path, &key, &err), -1);
	rmdir(dir);
}

/* ---- options ---- */

static struct config *conf_new(void)
{
	const struct config_option *tables[] = { azure_options, NULL };
	struct pp_err err = { 0 };
	struct config *c = config_new(tables, &err);

	assert_non_null(c);
	assert_int_equal(config_set(c, "AZURE_SUBSCRIPTION_ID", "sub-1", &err), 0);
	assert_int_equal(config_set(c, "AZURE_REGION", "eastus", &err), 0);
	assert_int_equal(config_set(c, "AZURE_RESOURCE_GROUP", "rg-1", &err), 0);
	assert_int_equal(config_set(c, "AZURE_SUBNET_ID", "/subscriptions/sub-1/resourceGroups/n/providers/"
				    "Microsoft.Network/virtualNetworks/v/subnets/s", &err), 0);
	assert_int_equal(config_set(c, "AZURE_IMAGE_ID", "/CommunityGalleries/x/Images/y/Versions/1", &err), 0);
	return c;
}

static void conf_expect_error(struct config *c, const char *needle)
{
	struct azure_conf ac;
	struct pp_err err = { 0 };

	assert_int_equal(azure_conf_load(&ac, c, &err), -1);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not name \"%s\"", err.msg, needle);
	config_free(c);
}

static void test_conf(void **state)
{
	struct azure_conf ac;
	struct pp_err err = { 0 };
	struct config *c = conf_new();

	(void)state;
	assert_int_equal(azure_conf_load(&ac, c, &err), 0);
	assert_string_equal(ac.default_size, "Standard_DC2as_v5");
	assert_string_equal(ac.ssh_user, "peerpod");
	assert_string_equal(ac.arm_endpoint, "https://management.azure.com");
	assert_false(ac.disable_cvm);
	config_free(c);

	c = config_new((const struct config_option *[]){ azure_options, NULL }, &err);
	conf_expect_error(c, "AZURE_SUBSCRIPTION_ID, AZURE_REGION, AZURE_RESOURCE_GROUP, AZURE_SUBNET_ID, "
			  "AZURE_IMAGE_ID");
	c = conf_new();
	config_set(c, "TAGS", "a=b,peerpods-owner=evil", &err);
	conf_expect_error(c, "TAGS must not set peerpods-owner");
	c = conf_new();
	config_set(c, "AZURE_SUBNET_ID", "subnet-1", &err);
	conf_expect_error(c, "AZURE_SUBNET_ID");
	c = conf_new();
	config_set(c, "AZURE_RESOURCE_GROUP", "rg/../other", &err);
	conf_expect_error(c, "AZURE_RESOURCE_GROUP");
	c = conf_new();
	config_set(c, "AZURE_CLIENT_SECRET", "shh-secret", &err);
	conf_expect_error(c, "AZURE_CLIENT_ID and AZURE_TENANT_ID are required with AZURE_CLIENT_SECRET");
	c = conf_new();
	config_set(c, "AZURE_ARM_ENDPOINT", "management.azure.com", &err);
	conf_expect_error(c, "AZURE_ARM_ENDPOINT");
	c = conf_new();
	config_set(c, "ROOT_VOLUME_SIZE", "-1", &err);
	conf_expect_error(c, "ROOT_VOLUME_SIZE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_body_cvm),
		cmocka_unit_test(test_vm_body_plain_public_ip),
		cmocka_unit_test(test_vm_body_secure_boot_and_shapes),
		cmocka_unit_test(test_vm_name_from_id),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_parse_time_and_retry_after),
		cmocka_unit_test(test_token_parse),
		cmocka_unit_test(test_arm_errors),
		cmocka_unit_test(test_op_status),
		cmocka_unit_test(test_vm_parse),
		cmocka_unit_test(test_nic_and_pip_parse),
		cmocka_unit_test(test_vm_sizes_parse),
		cmocka_unit_test(test_vm_list_parse),
		cmocka_unit_test(test_sshkey),
		cmocka_unit_test(test_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
