/*
 * The forwarder's request edits (forwarder/forwarder.c): CreateContainer gets exactly one
 * network namespace, the pod's (a host-sent one is replaced; other namespaces and unknown
 * fields kept), missing bind-mount sources are created (only "bind" with absolute paths), a
 * ".." component is refused, garbage and a missing OCI spec are refused; CreateSandbox loses
 * its dns and keeps the rest; listen addresses parse strictly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "forwarder/forwarder.h"
#include "lib/log.h"
#include "proto/agent.pb-c.h"

static char tmp[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/pp-fwd-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* CreateContainerRequest{container_id, OCI{mounts, linux{namespaces}}} + unknown field 11. */
static size_t build(uint8_t *out, Grpc__Mount **mounts, size_t n_mounts,
		    Grpc__LinuxNamespace **ns, size_t n_ns, bool with_linux)
{
	Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	Grpc__Spec spec = GRPC__SPEC__INIT;
	Grpc__Linux lx = GRPC__LINUX__INIT;
	size_t n;

	req.container_id = (char *)"c1";
	req.oci = &spec;
	spec.mounts = mounts;
	spec.n_mounts = n_mounts;
	if (with_linux) {
		lx.namespaces = ns;
		lx.n_namespaces = n_ns;
		spec.linux_spec = &lx;
	}
	n = grpc__create_container_request__pack(&req, out);
	out[n++] = 0x58;   /* stderr_port = 9: not declared here, must survive */
	out[n++] = 0x09;
	return n;
}

static Grpc__CreateContainerRequest *edit_ok(const uint8_t *in, size_t len, uint8_t **out,
					      size_t *out_len)
{
	struct pp_err err = { 0 };
	Grpc__CreateContainerRequest *r;

	assert_int_equal(forwarder_edit_create_container("/run/netns/podns", in, len, out, out_len,
							 &err), 0);
	r = grpc__create_container_request__unpack(NULL, *out_len, *out);
	assert_non_null(r);
	return r;
}

static void test_netns_added_and_replaced(void **state)
{
	Grpc__LinuxNamespace a = GRPC__LINUX_NAMESPACE__INIT, b = GRPC__LINUX_NAMESPACE__INIT;
	Grpc__LinuxNamespace *ns[2] = { &a, &b };
	Grpc__CreateContainerRequest *r;
	uint8_t in[4096], *out = NULL;
	size_t len, out_len = 0;

	(void)state;
	a.type = (char *)"pid";
	b.type = (char *)"network";
	b.path = (char *)"/proc/1/ns/net";   /* what a hostile host might send */
	len = build(in, NULL, 0, ns, 2, true);
	r = edit_ok(in, len, &out, &out_len);
	assert_int_equal(r->oci->linux_spec->n_namespaces, 2);
	assert_string_equal(r->oci->linux_spec->namespaces[0]->type, "pid");
	assert_string_equal(r->oci->linux_spec->namespaces[1]->type, "network");
	assert_string_equal(r->oci->linux_spec->namespaces[1]->path, "/run/netns/podns");
	assert_string_equal(r->container_id, "c1");
	grpc__create_container_request__free_unpacked(r, NULL);
	assert_non_null(memmem(out, out_len, "\x58\x09", 2));
	free(out);

	/* no Linux section at all: one is made */
	len = build(in, NULL, 0, NULL, 0, false);
	r = edit_ok(in, len, &out, &out_len);
	assert_non_null(r->oci->linux_spec);
	assert_int_equal(r->oci->linux_spec->n_namespaces, 1);
	assert_string_equal(r->oci->linux_spec->namespaces[0]->path, "/run/netns/podns");
	grpc__create_container_request__free_unpacked(r, NULL);
	free(out);
}

static void test_bind_sources(void **state)
{
	Grpc__Mount m[4] = { GRPC__MOUNT__INIT, GRPC__MOUNT__INIT, GRPC__MOUNT__INIT,
			     GRPC__MOUNT__INIT };
	Grpc__Mount *mp[4] = { &m[0], &m[1], &m[2], &m[3] };
	char bind_src[128], other_src[128];
	Grpc__CreateContainerRequest *r;
	uint8_t in[4096], *out = NULL;
	size_t len, out_len = 0;
	struct stat st;

	(void)state;
	snprintf(bind_src, sizeof(bind_src), "%s/shared/containers/c1/rootfs-x", tmp);
	snprintf(other_src, sizeof(other_src), "%s/not-a-bind", tmp);
	m[0].type = (char *)"bind";
	m[0].source = bind_src;
	m[1].type = (char *)"tmpfs";
	m[1].source = other_src;
	m[2].type = (char *)"bind";
	m[2].source = (char *)"relative/path";
	m[3].type = (char *)"bind";
	m[3].source = (char *)"/proc";   /* exists: left alone */
	len = build(in, mp, 4, NULL, 0, true);
	r = edit_ok(in, len, &out, &out_len);
	grpc__create_container_request__free_unpacked(r, NULL);
	free(out);
	assert_int_equal(stat(bind_src, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(other_src, &st), -1);
	assert_int_equal(stat("relative", &st), -1);
}

static void test_bind_dotdot_refused(void **state)
{
	Grpc__Mount m = GRPC__MOUNT__INIT;
	Grpc__Mount *mp[1] = { &m };
	char src[256], escaped[128];
	uint8_t in[4096], *out = NULL;
	size_t len, out_len = 0;
	struct pp_err err = { 0 };
	struct stat st;

	(void)state;
	snprintf(src, sizeof(src), "%s/a/../../escaped-%s", tmp, tmp + 5);
	snprintf(escaped, sizeof(escaped), "/tmp/escaped-%s", tmp + 5);
	m.type = (char *)"bind";
	m.source = src;
	len = build(in, mp, 1, NULL, 0, true);
	assert_int_equal(forwarder_edit_create_container("/run/netns/podns", in, len, &out,
							 &out_len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "'..'"));
	assert_null(out);
	assert_int_equal(stat(escaped, &st), -1);
	/* a name that merely contains two dots is fine */
	snprintf(src, sizeof(src), "%s/a..b/..c", tmp);
	len = build(in, mp, 1, NULL, 0, true);
	assert_int_equal(forwarder_edit_create_container("/run/netns/podns", in, len, &out,
							 &out_len, &err), 0);
	free(out);
	assert_int_equal(stat(src, &st), 0);
}

static void test_garbage_and_missing_oci(void **state)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(forwarder_edit_create_container("/n", (const uint8_t *)"\x32\x7f\x01", 3,
							 &out, &out_len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "not a valid CreateContainerRequest"));
	assert_int_equal(forwarder_edit_create_container("/n", (const uint8_t *)"\x0a\x01x", 3,
							 &out, &out_len, &err), -1);
	assert_non_null(strstr(err.msg, "no OCI spec"));
	assert_int_equal(forwarder_edit_create_sandbox((const uint8_t *)"\x12\xff", 2, &out,
						       &out_len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_null(out);
}

static void test_sandbox_dns_cleared(void **state)
{
	Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT, *r;
	char *dns[2] = { (char *)"nameserver 10.0.0.10", (char *)"search x.svc" };
	uint8_t in[1024], *out = NULL;
	size_t len, out_len = 0;
	struct pp_err err = { 0 };

	(void)state;
	req.hostname = (char *)"pod1";
	req.dns = dns;
	req.n_dns = 2;
	req.sandbox_id = (char *)"sb1";
	len = grpc__create_sandbox_request__pack(&req, in);
	in[len++] = 0x40;   /* field 8, varint: unknown, kept */
	in[len++] = 0x01;
	assert_int_equal(forwarder_edit_create_sandbox(in, len, &out, &out_len, &err), 0);
	r = grpc__create_sandbox_request__unpack(NULL, out_len, out);
	assert_non_null(r);
	assert_int_equal(r->n_dns, 0);
	assert_string_equal(r->hostname, "pod1");
	assert_string_equal(r->sandbox_id, "sb1");
	grpc__create_sandbox_request__free_unpacked(r, NULL);
	assert_null(memmem(out, out_len, "nameserver", 10));
	assert_non_null(memmem(out, out_len, "\x40\x01", 2));
	free(out);
}

static void test_parse_listen(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct pp_err err = { 0 };
	socklen_t len;

	(void)state;
	assert_int_equal(forwarder_parse_listen("0.0.0.0:15150", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(in4->sin_port), 15150);
	assert_int_equal(forwarder_parse_listen("127.0.0.1:0", &ss, &len, &err), 0);
	assert_int_equal(forwarder_parse_listen("[::1]:15150", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(forwarder_parse_listen(":15150", &ss, &len, &err), 0);
	assert_int_equal(forwarder_parse_listen("127.0.0.1", &ss, &len, &err), -1);
	assert_int_equal(forwarder_parse_listen("127.0.0.1:70000", &ss, &len, &err), -1);
	assert_int_equal(forwarder_parse_listen("127.0.0.1:80x", &ss, &len, &err), -1);
	assert_int_equal(forwarder_parse_listen("localhost:80", &ss, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netns_added_and_replaced),
		cmocka_unit_test(test_bind_sources),
		cmocka_unit_test(test_bind_dotdot_refused),
		cmocka_unit_test(test_garbage_and_missing_oci),
		cmocka_unit_test(test_sandbox_dns_cleared),
		cmocka_unit_test(test_parse_listen),
	};

	log_init("test", 2);
	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
