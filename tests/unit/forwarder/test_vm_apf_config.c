/* apf.json as upstream's Go code writes it (json.MarshalIndent, 4 spaces; route keys Dst/GW/Dev
 * because the Go struct has no tags) is read into the config struct; unknown keys are ignored,
 * wrong types and bad values are errors naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "forwarder/apf_config.h"
#include "vm_test_util.h"

static const char upstream_json[] =
	"{\n"
	"    \"pod-network\": {\n"
	"        \"podip\": \"10.244.1.5/24\",\n"
	"        \"pod-hw-addr\": \"0a:58:0a:f4:01:05\",\n"
	"        \"interface\": \"eth0\",\n"
	"        \"worker-node-ip\": \"192.168.122.10/24\",\n"
	"        \"tunnel-type\": \"vxlan\",\n"
	"        \"routes\": [\n"
	"            {\n"
	"                \"Dst\": \"\",\n"
	"                \"GW\": \"10.244.1.1\",\n"
	"                \"Dev\": \"eth0\"\n"
	"            },\n"
	"            {\n"
	"                \"Dst\": \"10.244.1.0/24\",\n"
	"                \"GW\": \"\",\n"
	"                \"Dev\": \"eth0\",\n"
	"                \"protocol\": \"kernel\",\n"
	"                \"scope\": \"link\"\n"
	"            }\n"
	"        ],\n"
	"        \"neighbors\": [\n"
	"            {\n"
	"                \"ip\": \"10.244.1.1\",\n"
	"                \"hw-addr\": \"ee:ee:ee:ee:ee:ee\",\n"
	"                \"dev\": \"eth0\",\n"
	"                \"state\": \"permanent\"\n"
	"            }\n"
	"        ],\n"
	"        \"mtu\": 1450,\n"
	"        \"index\": 3,\n"
	"        \"vxlan-port\": 4789,\n"
	"        \"vxlan-id\": 555003,\n"
	"        \"dedicated\": false,\n"
	"        \"external-net-via-pod-vm\": false\n"
	"    },\n"
	"    \"pod-namespace\": \"default\",\n"
	"    \"pod-name\": \"nginx-7d4f8\",\n"
	"    \"tls-server-key\": \"-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIA==\\n-----END PRIVATE KEY-----\\n\",\n"
	"    \"tls-server-cert\": \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\",\n"
	"    \"tls-client-ca\": \"-----BEGIN CERTIFICATE-----\\nMIIC\\n-----END CERTIFICATE-----\\n\",\n"
	"    \"tls-min-version\": \"VersionTLS13\",\n"
	"    \"tls-cipher-suites\": [\n"
	"        \"TLS_AES_128_GCM_SHA256\",\n"
	"        \"TLS_AES_256_GCM_SHA384\"\n"
	"    ]\n"
	"}\n";

static struct apf_config *parse_ok(const char *text)
{
	struct apf_config *c = NULL;
	struct pp_err err = { 0 };

	if (apf_config_parse(text, strlen(text), &c, &err) < 0)
		fail_msg("apf_config_parse: %s", err.msg);
	return c;
}

static void expect_error(const char *text, const char *want)
{
	struct apf_config *c = NULL;
	struct pp_err err = { 0 };

	if (apf_config_parse(text, strlen(text), &c, &err) == 0) {
		apf_config_free(c);
		fail_msg("accepted invalid apf.json: %s", text);
	}
	assert_null(c);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
	assert_null(strstr(err.msg, "MC4CAQAw"));  /* never the private key */
}

static void test_upstream_document(void **state)
{
	(void)state;
	struct apf_config *c = parse_ok(upstream_json);
	const struct apf_pod_network *pn = &c->pod_network;
	char a[64];

	assert_true(c->has_pod_network);
	assert_int_equal(pn->pod_ip.addr.family, AF_INET);
	assert_string_equal(apf_addr_format(&pn->pod_ip.addr, a, sizeof(a)), "10.244.1.5");
	assert_int_equal(pn->pod_ip.len, 24);
	assert_string_equal(pn->pod_hw_addr, "0a:58:0a:f4:01:05");
	assert_string_equal(pn->interface, "eth0");
	assert_string_equal(apf_addr_format(&pn->worker_node_ip.addr, a, sizeof(a)), "192.168.122.10");
	assert_string_equal(pn->tunnel_type, "vxlan");
	assert_int_equal(pn->n_routes, 2);
	assert_int_equal(pn->routes[0].dst.addr.family, 0);     /* default route */
	assert_string_equal(apf_addr_format(&pn->routes[0].gw, a, sizeof(a)), "10.244.1.1");
	assert_string_equal(pn->routes[0].dev, "eth0");
	assert_int_equal(pn->routes[0].protocol, 0);
	assert_string_equal(apf_addr_format(&pn->routes[1].dst.addr, a, sizeof(a)), "10.244.1.0");
	assert_int_equal(pn->routes[1].dst.len, 24);
	assert_int_equal(pn->routes[1].gw.family, 0);
	assert_int_equal(pn->routes[1].protocol, 2);   /* RTPROT_KERNEL */
	assert_int_equal(pn->routes[1].scope, 253);    /* RT_SCOPE_LINK */
	assert_int_equal(pn->n_neighbors, 1);
	assert_string_equal(apf_addr_format(&pn->neighbors[0].ip, a, sizeof(a)), "10.244.1.1");
	assert_string_equal(pn->neighbors[0].hw_addr, "ee:ee:ee:ee:ee:ee");
	assert_string_equal(pn->neighbors[0].dev, "eth0");
	assert_int_equal(pn->neighbors[0].state, 0x80); /* NUD_PERMANENT */
	assert_int_equal(pn->mtu, 1450);
	assert_int_equal(pn->index, 3);
	assert_int_equal(pn->vxlan_port, 4789);
	assert_int_equal(pn->vxlan_id, 555003);
	assert_false(pn->dedicated);
	assert_false(pn->external_net_via_pod_vm);
	assert_string_equal(c->pod_namespace, "default");
	assert_string_equal(c->pod_name, "nginx-7d4f8");
	assert_non_null(strstr(c->tls_server_key, "-----BEGIN PRIVATE KEY-----\nMC4C"));
	assert_non_null(strstr(c->tls_server_cert, "BEGIN CERTIFICATE-----\nMIIB\n"));
	assert_non_null(strstr(c->tls_client_ca, "MIIC"));
	assert_int_equal(c->tls_min_version, APF_TLS_1_3);
	assert_int_equal(c->n_tls_cipher_suites, 2);
	assert_string_equal(c->tls_cipher_suites[1], "TLS_AES_256_GCM_SHA384");
	apf_config_free(c);
}

static void test_minimal_and_nulls(void **state)
{
	(void)state;
	struct apf_config *c = parse_ok("{\"pod-network\":{\"podip\":\"fd00::5/64\",\"routes\":null,"
					"\"neighbors\":null,\"mtu\":1450,\"index\":0,\"dedicated\":true,"
					"\"external-net-via-pod-vm\":false},\"pod-namespace\":\"ns\",\"pod-name\":\"p\","
					"\"tls-server-key\":null}");
	char a[64];

	assert_true(c->has_pod_network);
	assert_int_equal(c->pod_network.pod_ip.addr.family, AF_INET6);
	assert_string_equal(apf_addr_format(&c->pod_network.pod_ip.addr, a, sizeof(a)), "fd00::5");
	assert_int_equal(c->pod_network.pod_ip.len, 64);
	assert_int_equal(c->pod_network.n_routes, 0);
	assert_true(c->pod_network.dedicated);
	assert_null(c->tls_server_key);
	assert_null(c->tls_client_ca);
	assert_int_equal(c->tls_min_version, 0);
	apf_config_free(c);

	c = parse_ok("{}");
	assert_false(c->has_pod_network);
	assert_null(c->pod_name);
	apf_config_free(c);
}

static void test_unknown_keys_and_case(void **state)
{
	(void)state;
	struct apf_config *c = parse_ok(
		"{\"sc-pp-prv\":\"AAAA\",\"future-option\":{\"x\":[1,2]},\"POD-NAME\":\"upper\","
		"\"pod-network\":{\"ROUTES\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\",\"dev\":\"eth0\","
		"\"metric\":5}],\"Neighbors\":[{\"IP\":\"10.0.0.1\",\"Hw-Addr\":\"aa:bb:cc:dd:ee:ff\"}]}}");

	assert_string_equal(c->pod_name, "upper");
	assert_int_equal(c->pod_network.n_routes, 1);
	assert_int_equal(c->pod_network.routes[0].dst.len, 0);
	assert_int_equal(c->pod_network.routes[0].dst.addr.family, AF_INET);
	assert_string_equal(c->pod_network.routes[0].dev, "eth0");
	assert_string_equal(c->pod_network.neighbors[0].hw_addr, "aa:bb:cc:dd:ee:ff");
	apf_config_free(c);
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_error("{\"pod-name\": 7}", "apf.json: pod-name must be a string");
	expect_error("{\"pod-network\": []}", "apf.json: pod-network must be an object");
	expect_error("{\"pod-network\": {\"mtu\": \"1450\"}}", "pod-network.mtu must be an integer");
	expect_error("{\"pod-network\": {\"mtu\": 1450.5}}", "pod-network.mtu must be an integer");
	expect_error("{\"pod-network\": {\"mtu\": 70000}}", "pod-network.mtu: 70000 is out of range (0..65535)");
	expect_error("{\"pod-network\": {\"index\": -1}}", "pod-network.index: -1 is out of range");
	expect_error("{\"pod-network\": {\"dedicated\": \"yes\"}}", "pod-network.dedicated must be true or false");
	expect_error("{\"pod-network\": {\"routes\": {}}}", "pod-network.routes must be an array");
	expect_error("{\"pod-network\": {\"routes\": [{\"Dst\": \"\"}, 5]}}",
		     "pod-network.routes[1] must be an object");
	expect_error("{\"pod-network\": {\"routes\": [{\"Dst\": \"\"}, null]}}", "routes[1] must be an object");
	expect_error("{\"tls-cipher-suites\": [\"A\", 1]}", "tls-cipher-suites[1] must be a string");
	expect_error("{\"tls-server-key\": [\"-----BEGIN PRIVATE KEY-----MC4CAQAw\"]}",
		     "tls-server-key must be a string");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_error("{\"pod-network\": {\"podip\": \"10.244.1.5\"}}",
		     "pod-network.podip: \"10.244.1.5\" is not an address with a prefix length");
	expect_error("{\"pod-network\": {\"podip\": \"10.244.1.5/33\"}}", "not an address with a prefix length");
	expect_error("{\"pod-network\": {\"podip\": \"10.244.1.500/24\"}}", "not an address with a prefix length");
	expect_error("{\"pod-network\": {\"worker-node-ip\": \"x/24\"}}", "worker-node-ip");
	expect_error("{\"pod-network\": {\"routes\": [{\"GW\": \"10.0.0.256\"}]}}",
		     "pod-network.routes[0].gw: \"10.0.0.256\" is not an IP address");
	expect_error("{\"pod-network\": {\"routes\": [{\"protocol\": \"bogus\"}]}}",
		     "pod-network.routes[0].protocol: unknown value \"bogus\"");
	expect_error("{\"pod-network\": {\"routes\": [{\"scope\": \"galaxy\"}]}}", "unknown value \"galaxy\"");
	expect_error("{\"pod-network\": {\"neighbors\": [{\"state\": \"happy\"}]}}",
		     "pod-network.neighbors[0].state: unknown value \"happy\"");
	expect_error("{\"tls-min-version\": \"VersionTLS10\"}",
		     "tls-min-version: \"VersionTLS10\" is not supported (expected VersionTLS12 or VersionTLS13)");
	expect_error("{\"pod-network\": {\"routes\": [{\"Dst\": \"\", \"dst\": \"\"}]}}",
		     "pod-network.routes[0].dst is given twice");
	expect_error("{\"pod-name\": \"a\", \"pod-name\": \"b\"}", "invalid JSON");
}

static void test_invalid_json_and_limits(void **state)
{
	(void)state;
	struct apf_config *c = NULL;
	struct pp_err err = { 0 };
	char *big;

	expect_error("{\"pod-name\": \"x\"", "apf.json line 1");
	expect_error("[1]", "the document must be an object");
	expect_error("{} trailing", "invalid JSON");
	expect_error("{\"pod-name\": \"a\\u0000b\"}", "invalid JSON");
	big = malloc(APF_MAX_SIZE + 2);
	memset(big, ' ', APF_MAX_SIZE + 1);
	big[0] = '{';
	big[APF_MAX_SIZE] = '}';
	assert_int_equal(apf_config_parse(big, APF_MAX_SIZE + 1, &c, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	free(big);
}

static void test_load(void **state)
{
	(void)state;
	char root[64], path[128];
	struct apf_config *c = NULL;
	struct pp_err err = { 0 };

	vt_tmpdir(root, sizeof(root));
	snprintf(path, sizeof(path), "%s/apf.json", root);
	assert_int_equal(apf_config_load(path, &c, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "reading forwarder config"));
	vt_write(root, "/apf.json", upstream_json);
	assert_int_equal(apf_config_load(path, &c, &err), 0);
	assert_string_equal(c->pod_name, "nginx-7d4f8");
	apf_config_free(c);
	apf_config_free(NULL);
	vt_rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_document),
		cmocka_unit_test(test_minimal_and_nulls),
		cmocka_unit_test(test_unknown_keys_and_case),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_invalid_json_and_limits),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
