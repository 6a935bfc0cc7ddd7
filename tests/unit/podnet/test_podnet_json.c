/*
 * The pod-network JSON both ways, against upstream-shaped fixtures (tests/fixtures/podnet):
 *   VM side:     apf.json as upstream writes it -> apf_config_parse -> podnet_vm_info
 *   worker side: podnet_info -> podnet_worker_apf -> apf_json_render == worker_apf.json (GOLDEN;
 *                PP_REGENERATE_GOLDEN=1 rewrites it)
 *   round trip:  what the worker renders, the VM reads back to the same podnet_info.
 * adaptor/apf_json.h and forwarder/apf_config.h both name their structs apf_*, so the worker's
 * rendering lives in its own file (test_podnet_render.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_podnet_render.h"
#include "forwarder/apf_config.h"
#include "forwarder/podnet_vm.h"
#include "lib/fileutil.h"
#include "lib/util.h"

#define FIXTURE_MAX (64 * 1024)

static char *fixture_path(const char *name)
{
	const char *src = getenv("PP_SOURCE_DIR");
	char *p = malloc(1024);

	snprintf(p, 1024, "%s/tests/fixtures/podnet/%s", src ? src : ".", name);
	return p;
}

static char *fixture_read(const char *name, size_t *len)
{
	char *path = fixture_path(name);
	uint8_t *data = NULL;
	size_t n = 0;

	assert_int_equal(file_read_all(path, FIXTURE_MAX, &data, &n, NULL), 0);
	free(path);
	*len = n;
	return (char *)data;
}

static int vm_info_from(const char *name, struct podnet_info *info, struct pp_err *err)
{
	struct apf_config *cfg = NULL;
	size_t len;
	char *text = fixture_read(name, &len);
	int rc = apf_config_parse(text, len, &cfg, err);

	free(text);
	if (rc == 0)
		rc = podnet_vm_info(&cfg->pod_network, info, err);
	apf_config_free(cfg);
	return rc;
}

static void expect_prefix(const struct podnet_prefix *p, const char *want)
{
	char out[PODNET_PREFIX_STRLEN];

	assert_string_equal(podnet_prefix_format(p, out, sizeof(out)), want);
}

static void expect_addr(struct in_addr a, const char *want)
{
	char out[INET_ADDRSTRLEN];

	assert_string_equal(podnet_addr_format(a, out, sizeof(out)), want);
}

/* The pod of upstream_apf.json, as the worker's Inspect would find it. */
static void spec_pod(struct podnet_info *info)
{
	memset(info, 0, sizeof(*info));
	pp_strlcpy(info->tunnel_type, "vxlan", sizeof(info->tunnel_type));
	pp_strlcpy(info->pod_if, "eth0", IFNAMSIZ);
	podnet_mac_parse("32:b9:59:6b:f0:d5", info->pod_mac);
	info->mtu = 1450;
	podnet_prefix_parse("10.244.1.21/24", &info->pod_ip);
	podnet_prefix_parse("192.168.100.1/24", &info->worker_ip);
	info->routes = calloc(2, sizeof(*info->routes));
	info->n_routes = 2;
	podnet_prefix_parse("0.0.0.0/0", &info->routes[0].dst);
	podnet_addr_parse("10.244.1.1", &info->routes[0].gw);
	pp_strlcpy(info->routes[0].dev, "eth0", IFNAMSIZ);
	info->routes[0].protocol = RTPROT_BOOT;
	podnet_prefix_parse("10.244.1.0/24", &info->routes[1].dst);
	pp_strlcpy(info->routes[1].dev, "eth0", IFNAMSIZ);
	info->routes[1].protocol = RTPROT_KERNEL;
	info->routes[1].scope = RT_SCOPE_LINK;
	info->neighs = calloc(1, sizeof(*info->neighs));
	info->n_neighs = 1;
	podnet_addr_parse("169.254.1.1", &info->neighs[0].ip);
	podnet_mac_parse("aa:bb:cc:00:00:01", info->neighs[0].mac);
	pp_strlcpy(info->neighs[0].dev, "eth0", IFNAMSIZ);
	info->neighs[0].state = NUD_PERMANENT;
	info->vni = 555000;
	info->port = 4789;
}

static void expect_same(const struct podnet_info *a, const struct podnet_info *b)
{
	assert_string_equal(a->tunnel_type, b->tunnel_type);
	assert_string_equal(a->pod_if, b->pod_if);
	assert_memory_equal(a->pod_mac, b->pod_mac, PODNET_MAC_LEN);
	assert_int_equal(a->mtu, b->mtu);
	assert_memory_equal(&a->pod_ip, &b->pod_ip, sizeof(a->pod_ip));
	assert_memory_equal(&a->worker_ip, &b->worker_ip, sizeof(a->worker_ip));
	assert_int_equal(a->n_routes, b->n_routes);
	for (size_t i = 0; i < a->n_routes; i++) {
		assert_memory_equal(&a->routes[i].dst, &b->routes[i].dst, sizeof(a->routes[i].dst));
		assert_int_equal(a->routes[i].gw.s_addr, b->routes[i].gw.s_addr);
		assert_string_equal(a->routes[i].dev, b->routes[i].dev);
		assert_int_equal(a->routes[i].protocol, b->routes[i].protocol);
		assert_int_equal(a->routes[i].scope, b->routes[i].scope);
	}
	assert_int_equal(a->n_neighs, b->n_neighs);
	for (size_t i = 0; i < a->n_neighs; i++)
		assert_memory_equal(&a->neighs[i], &b->neighs[i], sizeof(a->neighs[i]));
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->vni, b->vni);
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->dedicated, b->dedicated);
	assert_int_equal(a->external_net_via_podvm, b->external_net_via_podvm);
}

static void test_vm_reads_upstream(void **state)
{
	struct podnet_info info, want;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(vm_info_from("upstream_apf.json", &info, &err), 0);
	expect_prefix(&info.routes[0].dst, "0.0.0.0/0");   /* "::ffff:0.0.0.0/0" unmapped */
	expect_addr(info.routes[0].gw, "10.244.1.1");
	spec_pod(&want);
	expect_same(&info, &want);
	podnet_info_clear(&info);
	podnet_info_clear(&want);
}

static void test_vm_reads_go_test_keys(void **state)
{
	struct podnet_info info;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(vm_info_from("upstream_gotest_keys.json", &info, &err), 0);
	expect_prefix(&info.pod_ip, "10.244.2.7/32");
	assert_int_equal(info.n_routes, 3);
	expect_prefix(&info.routes[0].dst, "169.254.1.1/32");
	expect_addr(info.routes[0].gw, "");
	assert_int_equal(info.routes[0].scope, RT_SCOPE_LINK);
	assert_int_equal(info.routes[1].protocol, RTPROT_STATIC);
	assert_int_equal(info.routes[2].protocol, 0);      /* left out: BOOT when added */
	assert_int_equal(info.n_neighs, 0);
	assert_int_equal(info.port, PODNET_VXLAN_PORT);    /* vxlan-port left out */
	assert_int_equal(info.vni, 555003);
	assert_int_equal(info.index, 3);
	assert_int_equal(info.mtu, 9001);                  /* clamped only when applied */
	assert_true(info.dedicated);
	podnet_info_clear(&info);
}

static void test_vm_refuses_ipv6_route(void **state)
{
	struct podnet_info info;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(vm_info_from("upstream_ipv6_route.json", &info, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "routes[0]"));
}

static void test_bad_protocol_refused(void **state)
{
	struct podnet_info info;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(vm_info_from("upstream_bad_protocol.json", &info, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "protocol"));
}

static void test_vm_refuses_bad_values(void **state)
{
	struct apf_pod_network pn;
	struct podnet_info info;
	struct pp_err err = { 0 };

	(void)state;
	memset(&pn, 0, sizeof(pn));
	pn.tunnel_type = (char *)"geneve";
	assert_int_equal(podnet_vm_info(&pn, &info, &err), -1);
	assert_non_null(strstr(err.msg, "geneve"));
	pn.tunnel_type = (char *)"vxlan";
	pn.interface = (char *)"eth0";
	assert_int_equal(podnet_vm_info(&pn, &info, &err), -1);   /* no podip */
	assert_non_null(strstr(err.msg, "podip"));
	pn.interface = (char *)"../../etc";
	assert_int_equal(podnet_vm_info(&pn, &info, &err), -1);
	assert_non_null(strstr(err.msg, "interface"));
}

static void test_worker_golden(void **state)
{
	struct podnet_info info;
	char *text, *golden, *path;
	size_t len;

	(void)state;
	spec_pod(&info);
	text = render_worker(&info);
	if (getenv("PP_REGENERATE_GOLDEN")) {
		path = fixture_path("worker_apf.json");
		assert_int_equal(file_write_atomic(path, text, strlen(text), 0644, NULL), 0);
		free(path);
	}
	golden = fixture_read("worker_apf.json", &len);
	assert_string_equal(text, golden);
	assert_non_null(strstr(text, "\"dst\": \"0.0.0.0/0\""));
	assert_non_null(strstr(text, "\"gw\": \"\""));      /* always sent, as Go does */
	free(golden);
	/* byte for byte what upstream's encoder writes, but for the default route's rendering */
	golden = fixture_read("upstream_apf.json", &len);
	{
		char *mapped = strstr(golden, "::ffff:0.0.0.0/0");

		assert_non_null(mapped);
		memmove(mapped, mapped + 7, strlen(mapped + 7) + 1);
		assert_int_equal(golden[strlen(golden) - 1], '\n');
		golden[strlen(golden) - 1] = '\0';
		assert_string_equal(text, golden);
	}
	free(golden);
	free(text);
	podnet_info_clear(&info);
}

static void round_trip(const struct podnet_info *info)
{
	struct apf_config *cfg = NULL;
	struct podnet_info back;
	struct pp_err err = { 0 };
	char *text = render_worker(info);

	assert_int_equal(apf_config_parse(text, strlen(text), &cfg, &err), 0);
	assert_int_equal(podnet_vm_info(&cfg->pod_network, &back, &err), 0);
	expect_same(&back, info);
	podnet_info_clear(&back);
	apf_config_free(cfg);
	free(text);
}

static void test_round_trip(void **state)
{
	struct podnet_info info;

	(void)state;
	spec_pod(&info);
	round_trip(&info);
	/* empty lists are null; a /32 pod; dedicated; another port */
	info.n_routes = 0;
	info.n_neighs = 0;
	podnet_prefix_parse("10.244.2.7/32", &info.pod_ip);
	info.dedicated = true;
	info.port = 8472;
	info.index = 9;
	info.vni = 555009;
	round_trip(&info);
	podnet_info_clear(&info);
}

static void test_empty_lists_are_null(void **state)
{
	struct podnet_info info;
	char *text;

	(void)state;
	spec_pod(&info);
	info.n_routes = 0;
	info.n_neighs = 0;
	text = render_worker(&info);
	assert_non_null(strstr(text, "\"routes\": null"));
	assert_non_null(strstr(text, "\"neighbors\": null"));
	free(text);
	podnet_info_clear(&info);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_reads_upstream),
		cmocka_unit_test(test_vm_reads_go_test_keys),
		cmocka_unit_test(test_vm_refuses_ipv6_route),
		cmocka_unit_test(test_bad_protocol_refused),
		cmocka_unit_test(test_vm_refuses_bad_values),
		cmocka_unit_test(test_worker_golden),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_lists_are_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
