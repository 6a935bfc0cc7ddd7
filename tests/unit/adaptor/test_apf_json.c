/* apf.json: upstream's key names, 4-space indentation, Go's zero-value forms, omitted keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/apf_json.h"

/* What Go's json.MarshalIndent(cfg, "", "    ") gives for a zero tunneler.Config and no TLS. */
static const char zero_network[] =
	"{\n"
	"    \"pod-network\": {\n"
	"        \"podip\": \"\",\n"
	"        \"pod-hw-addr\": \"\",\n"
	"        \"interface\": \"\",\n"
	"        \"worker-node-ip\": \"\",\n"
	"        \"tunnel-type\": \"\",\n"
	"        \"routes\": null,\n"
	"        \"neighbors\": null,\n"
	"        \"mtu\": 0,\n"
	"        \"index\": 0,\n"
	"        \"dedicated\": false,\n"
	"        \"external-net-via-pod-vm\": false\n"
	"    },\n"
	"    \"pod-namespace\": \"default\",\n"
	"    \"pod-name\": \"podtest\"\n"
	"}";

static void test_zero_network_no_tls(void **state)
{
	struct apf_config cfg = { .pod_namespace = "default", .pod_name = "podtest",
				  .tls_server_key = "", .tls_min_version = "" };
	char *text;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(apf_json_render(&cfg, &text, &err), 0);
	assert_string_equal(text, zero_network);
	free(text);
}

static json_t *render_parse(const struct apf_config *cfg)
{
	char *text;
	json_t *root;
	struct pp_err err = { 0 };

	assert_int_equal(apf_json_render(cfg, &text, &err), 0);
	root = json_loads(text, 0, NULL);
	assert_non_null(root);
	free(text);
	return root;
}

static void test_tls_keys(void **state)
{
	static const char *const suites[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384" };
	struct apf_config cfg = {
		.pod_namespace = "ns", .pod_name = "p",
		.tls_server_key = "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n",
		.tls_server_cert = "-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n",
		.tls_client_ca = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
		.tls_min_version = "VersionTLS13",
		.tls_cipher_suites = suites, .n_tls_cipher_suites = 2,
	};
	json_t *root = render_parse(&cfg);
	const char *key = NULL;
	json_t *v;
	size_t i = 0;
	static const char *const order[] = { "pod-network", "pod-namespace", "pod-name",
					     "tls-server-key", "tls-server-cert", "tls-client-ca",
					     "tls-min-version", "tls-cipher-suites" };

	(void)state;
	json_object_foreach(root, key, v) {
		assert_true(i < 8);
		assert_string_equal(key, order[i]);
		i++;
	}
	assert_int_equal(i, 8);
	assert_string_equal(json_string_value(json_object_get(root, "tls-server-key")),
			    cfg.tls_server_key);
	assert_string_equal(json_string_value(json_object_get(root, "tls-min-version")),
			    "VersionTLS13");
	v = json_object_get(root, "tls-cipher-suites");
	assert_int_equal(json_array_size(v), 2);
	assert_string_equal(json_string_value(json_array_get(v, 1)), "TLS_AES_256_GCM_SHA384");
	json_decref(root);
}

static void test_full_network(void **state)
{
	struct apf_route routes[] = {
		{ .dst = "0.0.0.0/0", .gw = "10.244.1.1", .dev = "eth0", .protocol = "boot" },
		{ .dst = "10.244.1.0/24", .gw = "", .dev = "eth0", .protocol = "kernel",
		  .scope = "link" },
		{ .dst = "10.96.0.0/12", .gw = "10.244.1.1", .dev = "eth0", .scope = "universe" },
	};
	struct apf_neighbor nbs[] = {
		{ .ip = "169.254.1.1", .hw_addr = "aa:bb:cc:00:00:01", .dev = "eth0",
		  .state = "permanent" },
	};
	struct apf_pod_network pn = {
		.pod_ip = "10.244.1.21/24", .pod_hw_addr = "32:b9:59:6b:f0:d5", .interface = "eth0",
		.worker_node_ip = "192.168.100.1/24", .tunnel_type = "vxlan",
		.routes = routes, .n_routes = 3, .neighbors = nbs, .n_neighbors = 1,
		.mtu = 1450, .index = 3, .vxlan_port = 4789, .vxlan_id = 555003,
		.dedicated = false, .external_net_via_pod_vm = true,
	};
	struct apf_config cfg = { .pod_network = &pn, .pod_namespace = "default", .pod_name = "mypod" };
	json_t *root = render_parse(&cfg), *net, *r;

	(void)state;
	net = json_object_get(root, "pod-network");
	assert_string_equal(json_string_value(json_object_get(net, "podip")), "10.244.1.21/24");
	assert_string_equal(json_string_value(json_object_get(net, "pod-hw-addr")),
			    "32:b9:59:6b:f0:d5");
	assert_string_equal(json_string_value(json_object_get(net, "worker-node-ip")),
			    "192.168.100.1/24");
	assert_string_equal(json_string_value(json_object_get(net, "tunnel-type")), "vxlan");
	assert_int_equal(json_integer_value(json_object_get(net, "mtu")), 1450);
	assert_int_equal(json_integer_value(json_object_get(net, "index")), 3);
	assert_int_equal(json_integer_value(json_object_get(net, "vxlan-port")), 4789);
	assert_int_equal(json_integer_value(json_object_get(net, "vxlan-id")), 555003);
	assert_true(json_is_true(json_object_get(net, "external-net-via-pod-vm")));
	assert_true(json_is_false(json_object_get(net, "dedicated")));

	r = json_array_get(json_object_get(net, "routes"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "gw")), "10.244.1.1");
	assert_string_equal(json_string_value(json_object_get(r, "protocol")), "boot");
	assert_null(json_object_get(r, "scope"));
	r = json_array_get(json_object_get(net, "routes"), 1);
	assert_string_equal(json_string_value(json_object_get(r, "gw")), "");   /* always sent */
	assert_string_equal(json_string_value(json_object_get(r, "scope")), "link");
	r = json_array_get(json_object_get(net, "routes"), 2);
	assert_null(json_object_get(r, "protocol"));   /* 0: left out */
	assert_null(json_object_get(r, "scope"));      /* universe = 0: left out */

	r = json_array_get(json_object_get(net, "neighbors"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "hw-addr")), "aa:bb:cc:00:00:01");
	assert_string_equal(json_string_value(json_object_get(r, "state")), "permanent");
	json_decref(root);
}

static void refused(const struct apf_config *cfg, const char *want)
{
	char *text = (char *)"untouched";
	struct pp_err err = { 0 };

	assert_int_equal(apf_json_render(cfg, &text, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!strstr(err.msg, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
	assert_string_equal(text, "untouched");
}

/* Spellings the Go decoder rejects would stop the forwarder from starting: refuse them here. */
static void test_bad_enums_refused(void **state)
{
	struct apf_route bad_proto = { .dst = "0.0.0.0/0", .protocol = "ra" };
	struct apf_route bad_scope = { .dst = "0.0.0.0/0", .scope = "global" };
	struct apf_neighbor bad_state = { .ip = "1.2.3.4", .state = "PERMANENT" };
	struct apf_pod_network pn = { .routes = &bad_proto, .n_routes = 1 };
	struct apf_config cfg = { .pod_network = &pn, .pod_namespace = "n", .pod_name = "p" };

	(void)state;
	refused(&cfg, "protocol \"ra\"");
	pn.routes = &bad_scope;
	refused(&cfg, "scope \"global\"");
	pn.n_routes = 0;
	pn.neighbors = &bad_state;
	pn.n_neighbors = 1;
	refused(&cfg, "state \"PERMANENT\"");
	pn.n_neighbors = 0;
	cfg.tls_min_version = "TLS1.3";
	refused(&cfg, "tls-min-version \"TLS1.3\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_network_no_tls),
		cmocka_unit_test(test_tls_keys),
		cmocka_unit_test(test_full_network),
		cmocka_unit_test(test_bad_enums_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
