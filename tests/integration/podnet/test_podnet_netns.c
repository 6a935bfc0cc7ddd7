/*
 * Pod networking end to end, as root, in network namespaces this test creates and deletes
 * (nettest.h): the real worker code (adaptor/podnet_worker.c) runs in the worker namespace W
 * against the pod namespace P; the apf.json text it renders goes to the real VM code
 * (forwarder/podnet_vm.c) in the VM namespace V, which builds the pod namespace Q. Then TCP and
 * ping between the pod network (W's cni0, 10.244.1.1) and a server in Q (10.244.1.21) both
 * ways; Teardown must leave no link, qdisc, filter, rule or socket (checked with ip, tc,
 * iptables-save, ss). Negative cases: VNI in use, a foreign ingress qdisc, a failure after
 * each Setup step (rolled back), Teardown with the pod's netns gone, restart reconcile with a
 * live and with a damaged tunnel, the VM side re-run over a live set-up, the bounded wait.
 *
 * Skipped (with the reason) when the machine cannot do it: not root, no `ip netns`, no VXLAN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/podnet_worker.h"
#include "adaptor/podnet_worker_priv.h"
#include "lib/err.h"
#include "ns_sides.h"

static char out[NT_OUT_MAX];
static bool supported;
static char why[512];

struct fx {
	struct nt_topo t;
	char json[NT_JSON_MAX];
	struct ns_worker_arg w;
};

static int group_setup(void **state)
{
	(void)state;
	supported = nt_supported(why, sizeof(why));
	if (!supported)
		fprintf(stderr, "pod networking tests skipped: %s\n", why);
	return 0;
}

static int setup(void **state)
{
	static int n;
	struct fx *f = calloc(1, sizeof(*f));
	char tag[8];

	*state = f;
	if (!supported)
		return 0;
	snprintf(tag, sizeof(tag), "%d-", n++);
	if (nt_topo_create(&f->t, tag) < 0)
		return -1;
	f->w = (struct ns_worker_arg){ .pod_path = f->t.p_path, .index = 0, .vm_ips = NT_VM_IP };
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (supported)
		nt_topo_destroy(&f->t);
	free(f);
	return 0;
}

#define SKIP_UNSUPPORTED() do { if (!supported) skip(); } while (0)

/* ---- checks ---- */

static const char *sh(const char *fmt, const char *a, const char *b)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	nt_sh(out, sizeof(out), "%s", cmd);
	return out;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void expect_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, text);
}

static void expect_lacks(const char *text, const char *needle)
{
	if (strstr(text, needle))
		fail_msg("did not expect \"%s\" in:\n%s", needle, text);
}

/* Nothing of the worker side left: P holds lo and eth0 only, no ingress qdisc or filter on
 * eth0, no peerpod rule or chain and no VXLAN socket in W. */
static void expect_worker_clean(struct fx *f)
{
	sh("ip -n %s -o link show", f->t.p, "");
	assert_int_equal(count_lines(out), 2);
	expect_lacks(out, "vxlan1");
	expect_lacks(sh("tc -n %s qdisc show dev eth0", f->t.p, ""), "ingress");
	assert_string_equal(sh("tc -n %s filter show dev eth0 ingress", f->t.p, ""), "");
	expect_lacks(sh("ip netns exec %s iptables-save -t raw", f->t.w, ""), "peerpod");
	expect_lacks(sh("ip netns exec %s ss -uan", f->t.w, ""), ":4789");
	/* the pod's own routes are untouched */
	expect_has(sh("ip -n %s route show", f->t.p, ""), "default via 10.244.1.1 dev eth0");
}

static void expect_vm_clean(struct fx *f)
{
	expect_lacks(sh("ip netns exec %s iptables-save -t raw", f->t.v, ""), "peerpod");
	expect_lacks(sh("ip netns exec %s ss -uan", f->t.v, ""), ":4789");
	sh("ip -n %s -o link show", f->t.q, "");
	assert_int_equal(count_lines(out), 1);            /* lo */
}

static void expect_worker_objects(struct fx *f, const char *vni)
{
	char want[64];

	sh("ip -n %s -d link show vxlan1", f->t.p, "");
	snprintf(want, sizeof(want), "vxlan id %s remote " NT_VM_IP, vni);
	expect_has(out, want);
	expect_has(out, "dstport 4789");
	expect_has(out, "nolearning");
	expect_has(out, "mtu 1500");
	expect_has(out, "link-netns");
	sh("tc -n %s filter show dev eth0 ingress", f->t.p, "");
	expect_has(out, "pref 49152 u32");
	expect_has(out, "800::800");
	expect_has(out, "mirred (Egress Redirect to device vxlan1) stolen");
	expect_has(sh("tc -n %s filter show dev vxlan1 ingress", f->t.p, ""),
		   "mirred (Egress Redirect to device eth0) stolen");
	sh("ip netns exec %s iptables-save -t raw", f->t.w, "");
	snprintf(want, sizeof(want), "\"peerpod [vni:%s]\"", vni);
	expect_has(out, want);
	expect_has(out, "-A OUTPUT -j peerpod-OUTPUT");
	expect_has(out, "-A PREROUTING -j peerpod-PREROUTING");
	expect_has(out, "-A peerpod-OUTPUT -d " NT_VM_IP "/32 -p udp");
	expect_has(out, "-A peerpod-PREROUTING -s " NT_VM_IP "/32 -p udp");
	expect_has(sh("ip netns exec %s ss -uan", f->t.w, ""), "0.0.0.0:4789");
}

static void expect_vm_objects(struct fx *f)
{
	sh("ip -n %s -d link show eth0", f->t.q, "");
	expect_has(out, "link/ether " NT_POD_MAC);
	expect_has(out, "mtu 1450");
	expect_has(out, "vxlan id 555000 remote " NT_WORKER_IP);
	sh("ip -n %s route show", f->t.q, "");
	expect_has(out, "default via 10.244.1.1 dev eth0");
	expect_has(out, "10.244.1.0/24 dev eth0 proto kernel scope link");
	expect_has(sh("ip -n %s neigh show", f->t.q, ""), "169.254.1.1 dev eth0 lladdr "
		   "aa:bb:cc:00:00:01 PERMANENT");
	expect_has(sh("bridge -n %s fdb show dev eth0", f->t.q, ""),
		   "00:00:00:00:00:00 dst " NT_WORKER_IP);
	expect_has(sh("ip netns exec %s iptables-save -t raw", f->t.v, ""),
		   "-A peerpod-OUTPUT -d " NT_WORKER_IP "/32 -p udp");
	expect_has(sh("ip netns exec %s ss -uan", f->t.v, ""), "0.0.0.0:4789");
}

/* ---- steps ---- */

static void worker_setup(struct fx *f)
{
	struct nt_result r;

	assert_int_equal(nt_in_ns(f->t.w, ns_worker_inspect_setup, &f->w, &r), 0);
	if (r.rc != 0)
		fail_msg("worker setup: %s", r.msg);
	memcpy(f->json, r.json, sizeof(f->json));
}

static void vm_setup(struct fx *f)
{
	struct ns_vm_arg a = { .json = f->json, .podns = f->t.q_path };
	struct nt_result r;

	assert_int_equal(nt_in_ns(f->t.v, ns_vm_setup, &a, &r), 0);
	if (r.rc != 0)
		fail_msg("VM setup: %s", r.msg);
	assert_int_equal(r.value, 1);
}

static void worker_teardown(struct fx *f)
{
	struct nt_result r;

	assert_int_equal(nt_in_ns(f->t.w, ns_worker_teardown, &f->w, &r), 0);
	if (r.rc != 0)
		fail_msg("worker teardown: %s", r.msg);
}

static void vm_teardown(struct fx *f)
{
	struct ns_vm_arg a = { .json = f->json, .podns = f->t.q_path };
	struct nt_result r;

	assert_int_equal(nt_in_ns(f->t.v, ns_vm_teardown, &a, &r), 0);
	if (r.rc != 0)
		fail_msg("VM teardown: %s", r.msg);
}

/* TCP both ways (5 KB and 20 KB) and ping both ways. */
static void expect_traffic(struct fx *f)
{
	int port, pid;

	pid = nt_echo_server(f->t.q, NT_POD_IP, &port);
	assert_true(pid > 0);
	assert_int_equal(nt_echo_client(f->t.w, NT_POD_IP, port, 20 * 1024), 0);
	assert_int_equal(nt_wait_pid(pid), 0);
	pid = nt_echo_server(f->t.w, NT_POD_GW, &port);
	assert_true(pid > 0);
	assert_int_equal(nt_echo_client(f->t.q, NT_POD_GW, port, 5 * 1024), 0);
	assert_int_equal(nt_wait_pid(pid), 0);
	if (nt_sh(out, sizeof(out), "ip netns exec %s ping -c 2 -i 0.2 -W 2 " NT_POD_IP,
		  f->t.w) != 0)
		fail_msg("ping from the pod network to the pod in the VM: %s", out);
	if (nt_sh(out, sizeof(out), "ip netns exec %s ping -c 2 -i 0.2 -W 2 " NT_POD_GW,
		  f->t.q) != 0)
		fail_msg("ping from the VM's pod namespace to the pod network: %s", out);
}

static void expect_no_traffic(struct fx *f)
{
	assert_int_not_equal(nt_sh(out, sizeof(out), "ip netns exec %s ping -c 1 -W 1 " NT_POD_IP,
				   f->t.w), 0);
}

/* ---- tests ---- */

static void test_end_to_end(void **state)
{
	struct fx *f = *state;

	SKIP_UNSUPPORTED();
	worker_setup(f);
	expect_worker_objects(f, "555000");
	vm_setup(f);
	expect_vm_objects(f);
	expect_traffic(f);
	/* path MTU: the VM side's MTU is 1450, so 1422 bytes of ICMP payload fit, 1423 not */
	if (nt_sh(out, sizeof(out), "ip netns exec %s ping -c 1 -W 2 -M do -s 1422 " NT_POD_GW,
		  f->t.q) != 0)
		fail_msg("1450-byte ping: %s", out);
	assert_int_not_equal(nt_sh(out, sizeof(out), "ip netns exec %s ping -c 1 -W 1 -M do -s "
				   "1423 " NT_POD_GW, f->t.q), 0);
	worker_teardown(f);
	vm_teardown(f);
	expect_worker_clean(f);
	expect_vm_clean(f);
	/* a second teardown finds nothing and is fine */
	worker_teardown(f);
}

static void test_vni_in_use(void **state)
{
	struct fx *f = *state;
	struct nt_result r;

	SKIP_UNSUPPORTED();
	assert_int_equal(nt_sh(out, sizeof(out), "ip -n %s link add vxdup type vxlan id 555001 "
			       "remote 192.168.100.9 dstport 4789", f->t.w), 0);
	f->w.index = 1;
	assert_int_equal(nt_in_ns(f->t.w, ns_worker_setup, &f->w, &r), 0);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.code, PP_ALREADY_EXISTS);
	expect_has(r.msg, "VXLAN id 555001");
	expect_worker_clean(f);                         /* rolled back: rules gone too */
	expect_has(sh("ip -n %s link show vxdup", f->t.w, ""), "vxdup");   /* not ours: kept */
}

static void test_foreign_ingress_qdisc(void **state)
{
	struct fx *f = *state;
	struct nt_result r;

	SKIP_UNSUPPORTED();
	assert_int_equal(nt_sh(out, sizeof(out), "tc -n %s qdisc add dev eth0 ingress", f->t.p), 0);
	assert_int_equal(nt_in_ns(f->t.w, ns_worker_setup, &f->w, &r), 0);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.code, PP_FAILED_PRECONDITION);
	expect_has(r.msg, "ingress qdisc");
	expect_has(sh("tc -n %s qdisc show dev eth0", f->t.p, ""), "ingress");  /* kept */
	assert_int_equal(nt_sh(out, sizeof(out), "tc -n %s qdisc del dev eth0 ingress", f->t.p), 0);
	expect_worker_clean(f);
}

static void test_rollback_each_step(void **state)
{
	struct fx *f = *state;

	SKIP_UNSUPPORTED();
	for (int step = PODNET_STEP_RULES; step <= PODNET_STEP_TC_VXLAN; step++) {
		struct nt_result r;

		f->w.fail_after = step;
		assert_int_equal(nt_in_ns(f->t.w, ns_worker_setup, &f->w, &r), 0);
		assert_int_equal(r.rc, -1);
		expect_has(r.msg, "injected failure");
		expect_worker_clean(f);
	}
	f->w.fail_after = 0;
	worker_setup(f);                                /* and it still works after all that */
	expect_worker_objects(f, "555000");
	worker_teardown(f);
	expect_worker_clean(f);
}

static void test_teardown_netns_gone(void **state)
{
	struct fx *f = *state;

	SKIP_UNSUPPORTED();
	worker_setup(f);
	assert_int_equal(nt_sh(out, sizeof(out), "ip netns del %s", f->t.p), 0);
	worker_teardown(f);                             /* succeeds, and removes the rules */
	expect_lacks(sh("ip netns exec %s iptables-save -t raw", f->t.w, ""), "peerpod");
	expect_lacks(sh("ip netns exec %s ss -uan", f->t.w, ""), ":4789");
	f->t.p[0] = '\0';                               /* already deleted */
}

static void reconcile(struct fx *f, int want)
{
	struct nt_result r;

	assert_int_equal(nt_in_ns(f->t.w, ns_worker_reconcile, &f->w, &r), 0);
	if (r.rc != 0)
		fail_msg("reconcile: %s", r.msg);
	assert_int_equal(r.value, want);
}

static void test_restart_keeps_tunnels(void **state)
{
	struct fx *f = *state;
	struct nt_result r;

	SKIP_UNSUPPORTED();
	worker_setup(f);
	vm_setup(f);
	expect_traffic(f);
	/* daemon restart: the tunnel is intact and is left alone */
	reconcile(f, PODNET_RECONCILE_INTACT);
	expect_traffic(f);
	/* damaged (a qdisc lost): rebuilt */
	assert_int_equal(nt_sh(out, sizeof(out), "tc -n %s qdisc del dev vxlan1 ingress",
			       f->t.p), 0);
	expect_no_traffic(f);
	reconcile(f, PODNET_RECONCILE_REBUILT);
	expect_worker_objects(f, "555000");
	expect_traffic(f);
	/* StartVM retried over a live tunnel (a crash between Setup and the state write) */
	assert_int_equal(nt_in_ns(f->t.w, ns_worker_setup, &f->w, &r), 0);
	assert_int_equal(r.rc, 0);
	/* forwarder restarted over a live set-up: upstream crash-loops on "VXLAN id exists" */
	vm_setup(f);
	expect_vm_objects(f);
	expect_traffic(f);
	/* the pod went away while the daemon was down */
	assert_int_equal(nt_sh(out, sizeof(out), "ip netns del %s", f->t.p), 0);
	f->t.p[0] = '\0';
	reconcile(f, PODNET_RECONCILE_NETNS_GONE);
	expect_lacks(sh("ip netns exec %s iptables-save -t raw", f->t.w, ""), "peerpod");
}

static void test_vm_wait_bounded(void **state)
{
	struct fx *f = *state;
	struct ns_vm_arg a = { .podns = f->t.q_path, .wait_ms = 400 };
	struct nt_result r;

	SKIP_UNSUPPORTED();
	worker_setup(f);
	a.json = f->json;
	assert_int_equal(nt_sh(out, sizeof(out), "ip -n %s route del default", f->t.v), 0);
	assert_int_equal(nt_in_ns(f->t.v, ns_vm_setup, &a, &r), 0);
	assert_int_equal(r.rc, -1);
	expect_has(r.msg, "primary interface");
	expect_lacks(sh("ip netns exec %s iptables-save -t raw", f->t.v, ""), "peerpod");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vni_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_ingress_qdisc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_each_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_netns_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_tunnels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_wait_bounded, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
