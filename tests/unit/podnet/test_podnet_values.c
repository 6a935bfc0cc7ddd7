/*
 * podnet.c: the text forms and strict parsers both sides use, the enum spellings upstream
 * writes, and the route order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "podnet/podnet.h"

static void test_prefix_round_trip(void **state)
{
	struct podnet_prefix p;
	char out[PODNET_PREFIX_STRLEN];

	(void)state;
	assert_int_equal(podnet_prefix_parse("10.244.1.21/24", &p), 0);
	assert_int_equal(p.len, 24);
	assert_string_equal(podnet_prefix_format(&p, out, sizeof(out)), "10.244.1.21/24");
	assert_int_equal(podnet_prefix_parse("0.0.0.0/0", &p), 0);
	assert_string_equal(podnet_prefix_format(&p, out, sizeof(out)), "0.0.0.0/0");
	assert_int_equal(podnet_prefix_parse("255.255.255.255/32", &p), 0);
	assert_string_equal(podnet_prefix_format(&p, out, sizeof(out)), "255.255.255.255/32");
}

static void test_prefix_rejects(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1", "10.0.0.1/33", "10.0.0.1/01", "10.0.0.1/", "10.0.0.1/ 8", "/8",
		"10.0.0/8", "fd00::1/64", "10.0.0.1/8x", "", "10.0.0.1/-1",
	};
	struct podnet_prefix p = { .len = 7 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(podnet_prefix_parse(bad[i], &p), -1);
		assert_int_equal(p.len, 7);   /* output untouched on failure */
	}
	assert_int_equal(podnet_prefix_parse(NULL, &p), -1);
}

static void test_addr(void **state)
{
	struct in_addr a = { .s_addr = htonl(INADDR_ANY) };
	char out[INET_ADDRSTRLEN];

	(void)state;
	assert_string_equal(podnet_addr_format(a, out, sizeof(out)), "");
	assert_int_equal(podnet_addr_parse("169.254.1.1", &a), 0);
	assert_string_equal(podnet_addr_format(a, out, sizeof(out)), "169.254.1.1");
	assert_int_equal(podnet_addr_parse("169.254.1", &a), -1);
	assert_int_equal(podnet_addr_parse("::1", &a), -1);
}

static void test_mac(void **state)
{
	uint8_t mac[PODNET_MAC_LEN];
	char out[PODNET_MAC_STRLEN];

	(void)state;
	assert_int_equal(podnet_mac_parse("32:B9:59:6b:f0:d5", mac), 0);
	assert_string_equal(podnet_mac_format(mac, out, sizeof(out)), "32:b9:59:6b:f0:d5");
	assert_int_equal(podnet_mac_parse("32:b9:59:6b:f0", mac), -1);
	assert_int_equal(podnet_mac_parse("32:b9:59:6b:f0:d5:00", mac), -1);
	assert_int_equal(podnet_mac_parse("32-b9-59-6b-f0-d5", mac), -1);
	assert_int_equal(podnet_mac_parse("32:b9:59:6b:f0:dg", mac), -1);
	assert_int_equal(podnet_mac_parse(NULL, mac), -1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(podnet_protocol_name(RTPROT_BOOT), "boot");
	assert_string_equal(podnet_protocol_name(RTPROT_KERNEL), "kernel");
	assert_string_equal(podnet_protocol_name(RTPROT_STATIC), "static");
	assert_string_equal(podnet_protocol_name(RTPROT_DHCP), "dhcp");
	assert_null(podnet_protocol_name(RTPROT_RA));
	assert_string_equal(podnet_scope_name(RT_SCOPE_LINK), "link");
	assert_string_equal(podnet_scope_name(RT_SCOPE_UNIVERSE), "universe");
	assert_null(podnet_scope_name(17));
	assert_string_equal(podnet_nud_name(NUD_PERMANENT), "permanent");
	assert_string_equal(podnet_nud_name(NUD_NONE), "none");
	assert_null(podnet_nud_name(0x3));
}

static void test_network(void **state)
{
	struct podnet_prefix p;
	char out[INET_ADDRSTRLEN];

	(void)state;
	assert_int_equal(podnet_prefix_parse("10.244.1.21/24", &p), 0);
	assert_string_equal(podnet_addr_format(podnet_prefix_network(&p), out, sizeof(out)),
			    "10.244.1.0");
	assert_int_equal(podnet_prefix_parse("10.244.1.21/32", &p), 0);
	assert_string_equal(podnet_addr_format(podnet_prefix_network(&p), out, sizeof(out)),
			    "10.244.1.21");
	assert_int_equal(podnet_prefix_parse("10.244.1.21/0", &p), 0);
	assert_string_equal(podnet_addr_format(podnet_prefix_network(&p), out, sizeof(out)), "");
}

static void test_route_order(void **state)
{
	struct podnet_route def = { 0 }, def2 = { 0 }, net = { 0 }, host = { 0 };

	(void)state;
	podnet_prefix_parse("0.0.0.0/0", &def.dst);
	def2 = def;
	def2.metric = 100;
	podnet_prefix_parse("10.244.1.0/24", &net.dst);
	podnet_prefix_parse("10.244.1.0/32", &host.dst);
	assert_true(podnet_route_cmp(&def, &net) < 0);     /* dst bytes first */
	assert_true(podnet_route_cmp(&net, &host) < 0);    /* then length */
	assert_true(podnet_route_cmp(&def, &def2) < 0);    /* then metric */
	assert_int_equal(podnet_route_cmp(&def, &def), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_round_trip), cmocka_unit_test(test_prefix_rejects),
		cmocka_unit_test(test_addr),              cmocka_unit_test(test_mac),
		cmocka_unit_test(test_names),             cmocka_unit_test(test_network),
		cmocka_unit_test(test_route_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
