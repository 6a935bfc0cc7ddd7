/*
 * The libvirt provider against libvirt's own test driver (test:///default), from this process:
 * create (volumes, domain, metadata, address), list (this owner's domains only), delete and
 * delete-again, reuse of an existing domain, leftovers of a crashed create, and the errors a user
 * meets (unknown base volume, missing pool, confidential launch the host cannot do).
 *
 * The test driver keeps its state per process while a connection is open, so the fixture holds
 * one connection (g_conn) for the whole run and checks through it what the provider did.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "adaptor/options.h"
#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "providers/libvirt/libvirt_priv.h"

extern const struct provider_ops libvirt_provider_ops;

#define URI "test:///default"
#define POOL "default-pool"
#define BASE "podvm-base.qcow2"
#define USER_DATA "#cloud-config\n\nwrite_files:\n  - path: /run/peerpod/apf.json\n    content: |\n      {}\n"

static virConnectPtr g_conn;

struct fixture {
	struct config *cfg;
	struct provider *p;
};

/* ---- helpers ---- */

static struct config *make_config(const char *const *kv)
{
	const struct config_option *const tables[] = { adaptor_options, libvirt_options, NULL };
	struct pp_err err = { 0 };
	struct config *cfg = config_new(tables, &err);

	assert_non_null(cfg);
	assert_int_equal(config_set(cfg, "LIBVIRT_URI", URI, &err), 0);
	assert_int_equal(config_set(cfg, "LIBVIRT_POOL", POOL, &err), 0);
	assert_int_equal(config_set(cfg, "LIBVIRT_IP_TIMEOUT", "3s", &err), 0);
	for (; kv && kv[0]; kv += 2)
		if (config_set(cfg, kv[0], kv[1], &err) < 0)
			fail_msg("config_set %s: %s", kv[0], err.msg);
	return cfg;
}

/* Starts a provider; returns NULL with *err filled when init fails. */
static struct provider *start(struct config *cfg, const char *owner, struct pp_err *err)
{
	struct provider *p = provider_new(&libvirt_provider_ops, cfg, owner, "", err);

	assert_non_null(p);
	if (provider_start(p, err) < 0) {
		provider_free(p);
		return NULL;
	}
	return p;
}

static void make_volume(const char *name, unsigned long long capacity)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(g_conn, POOL);
	char xml[512];
	virStorageVolPtr v;

	assert_non_null(pool);
	snprintf(xml, sizeof(xml), "<volume><name>%s</name><capacity>%llu</capacity>"
		 "<target><format type='qcow2'/></target></volume>", name, capacity);
	v = virStorageVolCreateXML(pool, xml, 0);
	if (!v)
		fail_msg("creating volume %s: %s", name, virGetLastErrorMessage());
	virStorageVolFree(v);
	virStoragePoolFree(pool);
}

/* The volume's XML, or NULL when there is no such volume. */
static char *volume_xml(const char *name)
{
	virStoragePoolPtr pool = virStoragePoolLookupByName(g_conn, POOL);
	virStorageVolPtr v = virStorageVolLookupByName(pool, name);
	char *xml = v ? virStorageVolGetXMLDesc(v, 0) : NULL;

	if (v)
		virStorageVolFree(v);
	virStoragePoolFree(pool);
	return xml;
}

static bool volume_exists(const char *name)
{
	char *xml = volume_xml(name);

	free(xml);
	return xml != NULL;
}

static bool instance_volumes_exist(const char *name)
{
	char root[128], iso[128];

	snprintf(root, sizeof(root), "%s-root.qcow2", name);
	snprintf(iso, sizeof(iso), "%s-cloudinit.iso", name);
	return volume_exists(root) || volume_exists(iso);
}

static bool domain_exists(const char *name)
{
	virDomainPtr d = virDomainLookupByName(g_conn, name);

	if (d)
		virDomainFree(d);
	return d != NULL;
}

static char *domain_xml(const char *name)
{
	virDomainPtr d = virDomainLookupByName(g_conn, name);
	char *xml;

	assert_non_null(d);
	xml = virDomainGetXMLDesc(d, 0);
	virDomainFree(d);
	return xml;
}

static int create(struct provider *p, const char *name, const char *sid, const struct instance_spec *spec,
		  struct cancel *cancel, struct instance *ret, struct pp_err *err)
{
	struct create_request req = {
		.sandbox_id = sid, .pod_name = "pod", .pod_namespace = "default",
		.instance_name = name, .user_data = USER_DATA, .user_data_len = strlen(USER_DATA),
		.cancel = cancel,
	};

	if (spec)
		req.spec = *spec;
	return libvirt_provider_ops.create_instance(p, &req, ret, err);
}

static void create_ok(struct provider *p, const char *name, const char *sid, struct instance *ret)
{
	struct pp_err err = { 0 };

	if (create(p, name, sid, NULL, NULL, ret, &err) < 0)
		fail_msg("create_instance %s: %s", name, err.msg);
}

static bool listed(struct provider *p, const char *id, const char *sid)
{
	struct owned_instance_list l = { NULL, 0 };
	struct pp_err err = { 0 };
	bool found = false;

	if (libvirt_provider_ops.list_instances(p, &l, NULL, &err) < 0)
		fail_msg("list_instances: %s", err.msg);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].id, id) == 0) {
			found = true;
			if (sid)
				assert_string_equal(l.items[i].sandbox_id, sid);
			assert_true(l.items[i].created_unix > 0);
		}
	owned_instance_list_free(&l);
	return found;
}

static void delete_ok(struct provider *p, const char *id, const char *name)
{
	struct pp_err err = { 0 };

	if (libvirt_provider_ops.delete_instance(p, id, name, NULL, &err) < 0)
		fail_msg("delete_instance %s %s: %s", id, name, err.msg);
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
	(void)state;
	libvirt_lib_init();
	g_conn = virConnectOpen(URI);
	assert_non_null(g_conn);
	make_volume(BASE, 1048576);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	virConnectClose(g_conn);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pp_err err = { 0 };

	f->cfg = make_config(NULL);
	f->p = start(f->cfg, "owner-a", &err);
	if (!f->p)
		fail_msg("provider start: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct owned_instance_list l = { NULL, 0 };

	if (libvirt_provider_ops.list_instances(f->p, &l, NULL, NULL) == 0)
		for (size_t i = 0; i < l.n; i++)
			libvirt_provider_ops.delete_instance(f->p, l.items[i].id, l.items[i].name, NULL, NULL);
	owned_instance_list_free(&l);
	provider_free(f->p);
	config_free(f->cfg);
	free(f);
	return 0;
}

/* ---- tests ---- */

static void test_create_list_delete(void **state)
{
	struct fixture *f = *state;
	struct config *cfg_b = make_config(NULL);
	struct pp_err err = { 0 };
	struct provider *pb = start(cfg_b, "owner-b", &err);
	struct instance inst;
	char *xml;

	assert_non_null(pb);
	create_ok(f->p, "podvm-a-11110000", "11110000aaaa", &inst);
	assert_int_equal(strlen(inst.id), 36);                    /* the domain UUID */
	assert_string_equal(inst.name, "podvm-a-11110000");
	assert_true(inst.n_ips >= 1);
	assert_true(strncmp(inst.ips[0], "192.168.122.", 12) == 0);
	/* the volumes: root backed by the base, at least 10 GiB; the cidata ISO */
	xml = volume_xml("podvm-a-11110000-root.qcow2");
	assert_non_null(xml);
	assert_non_null(strstr(xml, "<path>/default-pool/" BASE "</path>"));
	assert_non_null(strstr(xml, ">10737418240</capacity>"));
	free(xml);
	assert_true(volume_exists("podvm-a-11110000-cloudinit.iso"));
	/* the domain: running, disks on those volumes, owner and sandbox in the metadata */
	xml = domain_xml("podvm-a-11110000");
	assert_non_null(strstr(xml, "/default-pool/podvm-a-11110000-root.qcow2"));
	assert_non_null(strstr(xml, "/default-pool/podvm-a-11110000-cloudinit.iso"));
	assert_non_null(strstr(xml, "<peerpod:owner>owner-a</peerpod:owner>"));
	assert_non_null(strstr(xml, "<peerpod:sandbox>11110000aaaa</peerpod:sandbox>"));
	assert_non_null(strstr(xml, "<memory unit='KiB'>8388608</memory>"));
	free(xml);
	/* list: ours for owner-a, invisible to owner-b (and the test driver's own domain is never) */
	assert_true(listed(f->p, inst.id, "11110000aaaa"));
	assert_false(listed(pb, inst.id, NULL));
	/* another owner may not delete it */
	assert_int_equal(libvirt_provider_ops.delete_instance(pb, inst.id, inst.name, NULL, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_true(domain_exists("podvm-a-11110000"));
	/* the test driver's own domain "test" is not ours either */
	assert_int_equal(libvirt_provider_ops.delete_instance(f->p, "", "test", NULL, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_true(domain_exists("test"));
	/* delete: domain and volumes gone; base volume kept */
	delete_ok(f->p, inst.id, inst.name);
	assert_false(domain_exists("podvm-a-11110000"));
	assert_false(instance_volumes_exist("podvm-a-11110000"));
	assert_true(volume_exists(BASE));
	assert_false(listed(f->p, inst.id, NULL));
	/* delete again: by id, by name, by both: already gone is success */
	delete_ok(f->p, inst.id, inst.name);
	delete_ok(f->p, inst.id, "");
	delete_ok(f->p, "", inst.name);
	/* a malformed id is the caller's error, not "gone" */
	assert_int_equal(libvirt_provider_ops.delete_instance(f->p, "not-a-uuid", "", NULL, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	provider_free(pb);
	config_free(cfg_b);
}

/* vCPUs and memory from the pod's annotations; the image annotation names the base volume; the
 * root disk is never smaller than its base. */
static void test_spec_overrides(void **state)
{
	struct fixture *f = *state;
	struct instance_spec spec = { .vcpus = 3, .memory_mib = 2048, .image = "other-base.qcow2" };
	struct pp_err err = { 0 };
	struct instance inst;
	char *xml;

	make_volume("other-base.qcow2", 20ULL << 30);
	if (create(f->p, "podvm-b-22220000", "22220000bbbb", &spec, NULL, &inst, &err) < 0)
		fail_msg("%s", err.msg);
	xml = domain_xml("podvm-b-22220000");
	assert_non_null(strstr(xml, "<memory unit='KiB'>2097152</memory>"));
	assert_non_null(strstr(xml, ">3</vcpu>"));
	free(xml);
	xml = volume_xml("podvm-b-22220000-root.qcow2");
	assert_non_null(strstr(xml, "<path>/default-pool/other-base.qcow2</path>"));
	assert_non_null(strstr(xml, ">21474836480</capacity>"));
	free(xml);
	delete_ok(f->p, inst.id, inst.name);
	assert_true(volume_exists("other-base.qcow2"));
}

/* LIBVIRT_CONSOLE_LOG_DIR: the serial port logs to <dir>/<name>-console.log; unset, no log. */
static void test_console_log(void **state)
{
	const char *kv[] = { "LIBVIRT_CONSOLE_LOG_DIR", "/var/log/podvm", NULL };
	struct fixture *f = *state;
	struct config *cfg = make_config(kv);
	struct pp_err err = { 0 };
	struct provider *p = start(cfg, "owner-a", &err);
	struct instance a, b;
	char *xml;

	if (!p)
		fail_msg("provider start: %s", err.msg);
	create_ok(p, "podvm-c-33330000", "33330000cccc", &a);
	xml = domain_xml("podvm-c-33330000");
	assert_non_null(strstr(xml, "<log file='/var/log/podvm/podvm-c-33330000-console.log' append='off'/>"));
	free(xml);
	create_ok(f->p, "podvm-d-44440000", "44440000dddd", &b);
	xml = domain_xml("podvm-d-44440000");
	assert_null(strstr(xml, "<log "));
	free(xml);
	delete_ok(p, a.id, a.name);
	delete_ok(f->p, b.id, b.name);
	provider_free(p);
	config_free(cfg);
}

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct instance_spec spec = { .image = "nope.qcow2" };
	struct pp_err err = { 0 };
	struct instance inst;
	struct cancel *c;
	struct create_request big = {
		.sandbox_id = "44440000", .instance_name = "podvm-d-44440000", .user_data = USER_DATA,
		.user_data_len = LIBVIRT_MAX_USER_DATA + 1,
	};

	/* unknown base volume: NOT_FOUND naming it and the pool; nothing left behind */
	assert_int_equal(create(f->p, "podvm-c-33330000", "33330000cccc", &spec, NULL, &inst, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "nope.qcow2"));
	assert_non_null(strstr(err.msg, POOL));
	assert_false(domain_exists("podvm-c-33330000"));
	assert_false(instance_volumes_exist("podvm-c-33330000"));
	/* cancelled: CANCELLED, nothing left behind */
	c = cancel_new(0);
	cancel_fire(c, CANCEL_CLOSED);
	assert_int_equal(create(f->p, "podvm-c-33330000", "33330000cccc", NULL, c, &inst, &err), -1);
	assert_int_equal(err.code, PP_CANCELLED);
	assert_false(domain_exists("podvm-c-33330000"));
	assert_false(instance_volumes_exist("podvm-c-33330000"));
	cancel_unref(c);
	/* user-data over the limit, and a name libvirt cannot take: refused up front */
	assert_int_equal(libvirt_provider_ops.create_instance(f->p, &big, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_int_equal(create(f->p, "podvm/../x", "1", NULL, NULL, &inst, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_false(domain_exists("podvm-d-44440000"));
}

/* An existing domain of that name: reused when it is this sandbox's and running, else refused. */
static void test_existing_domain(void **state)
{
	struct fixture *f = *state;
	struct instance a, again;
	struct pp_err err = { 0 };
	virDomainPtr d;

	create_ok(f->p, "podvm-e-55550000", "55550000eeee", &a);
	create_ok(f->p, "podvm-e-55550000", "55550000eeee", &again);
	assert_string_equal(again.id, a.id);
	assert_string_equal(again.ips[0], a.ips[0]);
	/* another sandbox with the same name */
	assert_int_equal(create(f->p, "podvm-e-55550000", "55550000ffff", NULL, NULL, &again, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, "55550000eeee"));
	/* ours but stopped */
	d = virDomainLookupByName(g_conn, "podvm-e-55550000");
	assert_int_equal(virDomainDestroy(d), 0);
	virDomainFree(d);
	assert_int_equal(create(f->p, "podvm-e-55550000", "55550000eeee", NULL, NULL, &again, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, "not running"));
	/* a stopped domain is deleted all the same */
	delete_ok(f->p, a.id, "");
	assert_false(domain_exists("podvm-e-55550000"));
	assert_false(instance_volumes_exist("podvm-e-55550000"));
	/* somebody else's domain with a peer-pod name: refused, untouched */
	d = virDomainDefineXML(g_conn, "<domain type='test'><name>podvm-f-66660000</name>"
			       "<memory>1024</memory><os><type>hvm</type></os></domain>");
	assert_non_null(d);
	assert_int_equal(create(f->p, "podvm-f-66660000", "66660000", NULL, NULL, &again, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_non_null(strstr(err.msg, "no peer-pod metadata"));
	assert_int_equal(libvirt_provider_ops.delete_instance(f->p, "", "podvm-f-66660000", NULL, &err), -1);
	assert_int_equal(err.code, PP_PERMISSION_DENIED);
	assert_true(domain_exists("podvm-f-66660000"));
	virDomainUndefine(d);
	virDomainFree(d);
}

/* A create that died after its volumes: delete by name removes them; a new create too. */
static void test_leftover_volumes(void **state)
{
	struct fixture *f = *state;
	struct instance inst;

	make_volume("podvm-g-77770000-root.qcow2", 4096);
	make_volume("podvm-g-77770000-cloudinit.iso", 4096);
	delete_ok(f->p, "", "podvm-g-77770000");
	assert_false(instance_volumes_exist("podvm-g-77770000"));
	make_volume("podvm-g-77770000-root.qcow2", 4096);
	create_ok(f->p, "podvm-g-77770000", "77770000", &inst);
	delete_ok(f->p, inst.id, inst.name);
	assert_false(instance_volumes_exist("podvm-g-77770000"));
}

static void expect_init_error(const char *const *kv, int code, const char *needle)
{
	struct config *cfg = make_config(kv);
	struct pp_err err = { 0 };
	struct provider *p = start(cfg, "owner-x", &err);

	if (p)
		fail_msg("init succeeded; expected an error containing \"%s\"", needle);
	assert_int_equal(err.code, code);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
	config_free(cfg);
}

static void test_init_errors(void **state)
{
	const char *bad_pool[] = { "LIBVIRT_POOL", "nope-pool", NULL };
	const char *snp[] = { "LIBVIRT_LAUNCH_SECURITY", "sev-snp", "DISABLECVM", "false", NULL };
	const char *tdx[] = { "LIBVIRT_LAUNCH_SECURITY", "tdx", "DISABLECVM", "false", NULL };
	const char *sev[] = { "LIBVIRT_LAUNCH_SECURITY", "sev", "DISABLECVM", "false", NULL };
	const char *pv[] = { "LIBVIRT_LAUNCH_SECURITY", "s390-pv", "DISABLECVM", "false", NULL };
	const char *cvm_off[] = { "LIBVIRT_LAUNCH_SECURITY", "sev-snp", NULL };
	const char *bad_ls[] = { "LIBVIRT_LAUNCH_SECURITY", "snp", "DISABLECVM", "false", NULL };
	const char *cpuset[] = { "LIBVIRT_CPUSET", "0-", NULL };
	const char *bad_uri[] = { "LIBVIRT_URI", "nosuchdriver:///x", NULL };
	const char *auto_ok[] = { "DISABLECVM", "false", NULL };
	const char *console_rel[] = { "LIBVIRT_CONSOLE_LOG_DIR", "logs", NULL };
	struct config *cfg;
	struct provider *p;
	struct pp_err err = { 0 };

	(void)state;
	expect_init_error(bad_pool, PP_FAILED_PRECONDITION, "nope-pool");
	expect_init_error(snp, PP_FAILED_PRECONDITION, "needs libvirt 10.5.0");
	expect_init_error(tdx, PP_FAILED_PRECONDITION, "tdx");
	expect_init_error(sev, PP_FAILED_PRECONDITION, "domain capabilities");
	expect_init_error(pv, PP_FAILED_PRECONDITION, "x86_64");
	expect_init_error(cvm_off, PP_INVALID_ARGUMENT, "DISABLECVM");
	expect_init_error(bad_ls, PP_INVALID_ARGUMENT, "snp");
	expect_init_error(cpuset, PP_INVALID_ARGUMENT, "LIBVIRT_CPUSET");
	expect_init_error(bad_uri, PP_UNAVAILABLE, "nosuchdriver:///x");
	expect_init_error(console_rel, PP_INVALID_ARGUMENT, "LIBVIRT_CONSOLE_LOG_DIR");
	/* DISABLECVM=false with no launch type: none on x86_64, and the test driver is fine */
	cfg = make_config(auto_ok);
	p = start(cfg, "owner-x", &err);
	if (!p)
		fail_msg("%s", err.msg);
	provider_free(p);
	config_free(cfg);
}

/* CLOUD_CONFIG_VERIFY: pool, base volume and network are checked. */
static void test_check(void **state)
{
	struct fixture *f = *state;
	const char *bad_vol[] = { "LIBVIRT_VOL_NAME", "missing.qcow2", NULL };
	const char *bad_net[] = { "LIBVIRT_NET", "nonet", NULL };
	struct pp_err err = { 0 };
	struct config *cfg;
	struct provider *p;

	assert_int_equal(libvirt_provider_ops.check(f->p, &err), 0);
	cfg = make_config(bad_vol);
	p = start(cfg, "owner-x", &err);
	assert_non_null(p);
	assert_int_equal(libvirt_provider_ops.check(p, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, "missing.qcow2"));
	provider_free(p);
	config_free(cfg);
	cfg = make_config(bad_net);
	p = start(cfg, "owner-x", &err);
	assert_non_null(p);
	assert_int_equal(libvirt_provider_ops.check(p, &err), -1);
	assert_non_null(strstr(err.msg, "nonet"));
	provider_free(p);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_list_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_volumes, setup, teardown),
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
