/*
 * The libvirt provider's pure parts, no libvirt connection: domain XML per architecture and
 * launch type against golden files (tests/fixtures/libvirt/NAME.xml; PP_REGENERATE_GOLDEN=1
 * rewrites them), validated with virt-xml-validate where libvirt 9.0's schema knows the
 * elements (not SEV-SNP/TDX); volume XML; capabilities parsing; the initdata digest from
 * user-data rendered by the adaptor itself; the cidata ISO read back with isoinfo.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "adaptor/initdata.h"
#include "adaptor/userdata.h"
#include "lib/buf.h"
#include "lib/digest.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/util.h"
#include "providers/libvirt/libvirt_priv.h"

#ifndef FIXTURE_DIR
#error FIXTURE_DIR must name tests/fixtures/libvirt
#endif

/* ---- helpers ---- */

/* Runs argv with stdout captured (at most 1 MiB) and stderr discarded; returns the exit status,
 * or -1 when the program could not be run. */
static int run_capture(char *const argv[], struct buf *out)
{
	int pfd[2], status;
	pid_t pid;
	char chunk[4096];
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(pfd[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0)
		if (out)
			assert_int_equal(buf_append(out, chunk, (size_t)n), 0);
	close(pfd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool have_program(const char *name)
{
	char *const argv[] = { "sh", "-c", "command -v \"$0\" >/dev/null", (char *)name, NULL };

	return run_capture(argv, NULL) == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	struct pp_err err = { 0 };

	if (file_write_atomic(path, data, len, 0644, &err) < 0)
		fail_msg("%s", err.msg);
}

/* ---- golden domain XML ---- */

static const uint8_t measure48[48] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
	0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
	0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
};

static struct libvirt_domain_def base_def(void)
{
	struct libvirt_domain_def d = {
		.name = "podvm-nginx-1234abcd", .owner = "node-a/0123", .sandbox_id = "1234abcd5678",
		.pod_name = "nginx", .pod_namespace = "default", .created = 1764000000,
		.arch = LIBVIRT_ARCH_X86_64, .domain_type = "kvm", .machine = "", .emulator = "",
		.vcpus = 2, .memory_mib = 8192, .cpuset = "", .firmware = "/usr/share/OVMF/OVMF_CODE_4M.fd",
		.kernel = "", .initrd = "", .cmdline = "", .console_log = "",
		.root_path = "/var/lib/libvirt/images/podvm-nginx-1234abcd-root.qcow2",
		.cidata_path = "/var/lib/libvirt/images/podvm-nginx-1234abcd-cloudinit.iso",
		.network = "default", .tee = LIBVIRT_TEE_NONE,
	};
	return d;
}

struct golden {
	const char *file;
	bool schema;            /* libvirt 9.0's schema covers every element */
	void (*edit)(struct libvirt_domain_def *d);
};

static void edit_none(struct libvirt_domain_def *d) { (void)d; }

static void edit_bios(struct libvirt_domain_def *d)
{
	d->firmware = "";
	d->cpuset = "0-3,8";
	d->vcpus = 4;
	d->memory_mib = 2048;
}

static void edit_kernel(struct libvirt_domain_def *d)
{
	d->domain_type = "qemu";
	d->firmware = "";
	d->kernel = "/srv/podvm/vmlinux";
	d->initrd = "/srv/podvm/initramfs.cpio.gz";
	d->cmdline = "console=ttyS0 panic=-1 quiet";
	d->console_log = "/var/log/podvm/podvm-nginx-1234abcd-console.log";
}

static void edit_sev(struct libvirt_domain_def *d)
{
	d->tee = LIBVIRT_TEE_SEV;
	d->sev_cbitpos = 51;
	d->sev_reduced_phys_bits = 1;
}

static void edit_snp(struct libvirt_domain_def *d)
{
	d->tee = LIBVIRT_TEE_SEV_SNP;
	d->firmware = "/usr/share/ovmf/OVMF.amdsev.fd";
	d->measure = measure48;
	d->measure_len = LIBVIRT_SNP_HOST_DATA_SIZE;
	d->sev_cbitpos = 51;
	d->sev_reduced_phys_bits = 1;
}

static void edit_tdx(struct libvirt_domain_def *d)
{
	d->tee = LIBVIRT_TEE_TDX;
	d->firmware = "";
	d->measure = measure48;
	d->measure_len = LIBVIRT_TDX_MRCONFIGID_SIZE;
}

static void edit_aarch64(struct libvirt_domain_def *d)
{
	d->arch = LIBVIRT_ARCH_AARCH64;
	d->machine = "virt-7.2";
	d->firmware = "";
}

static void edit_s390x(struct libvirt_domain_def *d)
{
	d->arch = LIBVIRT_ARCH_S390X;
	d->machine = "s390-ccw-virtio-7.2";
	d->emulator = "/usr/bin/qemu-system-s390x";
	d->firmware = "";
}

static void edit_s390x_pv(struct libvirt_domain_def *d)
{
	edit_s390x(d);
	d->tee = LIBVIRT_TEE_S390_PV;
}

static const struct golden goldens[] = {
	{ "x86_64.xml", true, edit_none },
	{ "x86_64-bios-cpuset.xml", true, edit_bios },
	{ "x86_64-kernel-tcg.xml", true, edit_kernel },
	{ "x86_64-sev.xml", true, edit_sev },
	{ "x86_64-sev-snp.xml", false, edit_snp },
	{ "x86_64-tdx.xml", false, edit_tdx },
	{ "aarch64.xml", true, edit_aarch64 },
	{ "s390x.xml", true, edit_s390x },
	{ "s390x-pv.xml", true, edit_s390x_pv },
};

static bool regenerate(void)
{
	const char *v = getenv("PP_REGENERATE_GOLDEN");

	return v && strcmp(v, "1") == 0;
}

static void check_golden(const struct golden *g, const char *xml)
{
	char path[512];
	uint8_t *want = NULL;
	size_t len;
	struct pp_err err = { 0 };

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, g->file);
	if (regenerate()) {
		write_file(path, xml, strlen(xml));
		return;
	}
	if (file_read_all(path, LIBVIRT_XML_MAX, &want, &len, &err) < 0)
		fail_msg("%s (PP_REGENERATE_GOLDEN=1 writes it)", err.msg);
	if (strcmp((const char *)want, xml) != 0)
		fail_msg("domain XML differs from %s:\n%s", path, xml);
	free(want);
}

static void check_schema(const struct golden *g, const char *xml)
{
	char tmp[] = "/tmp/pplv-xml.XXXXXX";
	int fd = mkstemp(tmp);
	char *const argv[] = { "virt-xml-validate", tmp, "domain", NULL };

	assert_true(fd >= 0);
	close(fd);
	write_file(tmp, xml, strlen(xml));
	if (run_capture(argv, NULL) != 0)
		fail_msg("virt-xml-validate rejects the XML of %s:\n%s", g->file, xml);
	unlink(tmp);
}

static void test_golden_domains(void **state)
{
	bool validate = have_program("virt-xml-validate");

	(void)state;
	if (!validate)
		fprintf(stderr, "virt-xml-validate not installed: schema checks skipped\n");
	for (size_t i = 0; i < PP_ARRAY_SIZE(goldens); i++) {
		struct libvirt_domain_def d = base_def();
		struct pp_err err = { 0 };
		char *xml = NULL;

		goldens[i].edit(&d);
		if (libvirt_domain_xml_build(&d, &xml, &err) < 0)
			fail_msg("%s: %s", goldens[i].file, err.msg);
		check_golden(&goldens[i], xml);
		if (validate && goldens[i].schema)
			check_schema(&goldens[i], xml);
		free(xml);
	}
}

/* What a user checks in the XML, independently of the golden files. */
static void test_domain_facts(void **state)
{
	struct libvirt_domain_def d = base_def();
	struct libvirt_domain_meta m;
	struct pp_err err = { 0 };
	char *xml = NULL, **disks = NULL;
	char *b64 = base64_encode(measure48, LIBVIRT_SNP_HOST_DATA_SIZE);
	char want[128];

	(void)state;
	edit_snp(&d);
	d.pod_name = "a<b>&\"c'";
	assert_int_equal(libvirt_domain_xml_build(&d, &xml, &err), 0);
	snprintf(want, sizeof(want), "<hostData>%s</hostData>", b64);
	assert_non_null(strstr(xml, want));
	assert_non_null(strstr(xml, "<launchSecurity type=\"sev-snp\">"));
	assert_non_null(strstr(xml, "name=\"a&lt;b&gt;&amp;&quot;c'\""));   /* escaped, not pasted */
	assert_non_null(strstr(xml, "xmlns:" LIBVIRT_META_PREFIX "=\"" LIBVIRT_META_NS "\""));
	/* the disks read back are the two volumes */
	assert_int_equal(libvirt_domain_xml_disks(xml, &disks, &err), 0);
	assert_string_equal(disks[0], d.root_path);
	assert_string_equal(disks[1], d.cidata_path);
	assert_null(disks[2]);
	libvirt_strv_free(disks);
	free(xml);
	free(b64);
	/* the metadata as virDomainGetMetadata returns it (namespace prefix dropped) */
	assert_int_equal(libvirt_domain_meta_parse("<instance><owner>node-a</owner><sandbox>s1</sandbox>"
						   "<created>42</created></instance>", &m, &err), 0);
	assert_string_equal(m.owner, "node-a");
	assert_string_equal(m.sandbox_id, "s1");
	assert_int_equal(m.created, 42);
	assert_int_equal(libvirt_domain_meta_parse("<instance><sandbox>s1</sandbox></instance>", &m, &err), -1);
	assert_int_equal(libvirt_domain_meta_parse("<instance", &m, &err), -1);
	/* control characters cannot be expressed in XML: refused, naming the field */
	d = base_def();
	d.network = "def\x01";
	assert_int_equal(libvirt_domain_xml_build(&d, &xml, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "network"));
}

/* ---- options ---- */

static void test_cpuset_and_names(void **state)
{
	enum libvirt_tee t;

	(void)state;
	assert_true(libvirt_cpuset_valid("0"));
	assert_true(libvirt_cpuset_valid("0-3,8,10-11"));
	assert_false(libvirt_cpuset_valid(""));
	assert_false(libvirt_cpuset_valid("0-"));
	assert_false(libvirt_cpuset_valid("0,,1"));
	assert_false(libvirt_cpuset_valid("1,"));
	assert_false(libvirt_cpuset_valid("a"));
	assert_false(libvirt_cpuset_valid("^0"));
	assert_int_equal(libvirt_tee_parse("sev-snp", &t), 0);
	assert_int_equal(t, LIBVIRT_TEE_SEV_SNP);
	assert_int_equal(libvirt_tee_parse("", &t), 0);
	assert_int_equal(t, LIBVIRT_TEE_AUTO);
	assert_int_equal(libvirt_tee_parse("snp", &t), -1);
	assert_true(libvirt_tee_min_version(LIBVIRT_TEE_SEV_SNP) > 9000000);
	assert_true(libvirt_tee_min_version(LIBVIRT_TEE_SEV) <= 9000000);
}

/* ---- volumes ---- */

static void test_volume_xml(void **state)
{
	struct libvirt_base_info b;
	struct pp_err err = { 0 };
	char *xml = NULL;

	(void)state;
	assert_int_equal(libvirt_volume_xml_build("x-root.qcow2", 10 * LIBVIRT_GIB, "qcow2",
						  "/p/base.qcow2", "qcow2", &xml, &err), 0);
	assert_non_null(strstr(xml, "<capacity unit=\"bytes\">10737418240</capacity>"));
	assert_non_null(strstr(xml, "<backingStore>"));
	assert_non_null(strstr(xml, "<path>/p/base.qcow2</path>"));
	assert_non_null(strstr(xml, "<mode>0644</mode>"));
	free(xml);
	assert_int_equal(libvirt_volume_xml_parse(
		"<volume type='file'><name>b</name><capacity unit='bytes'>1048576</capacity>"
		"<target><path>/default-pool/b</path><format type='qcow2'/></target></volume>", &b, &err), 0);
	assert_int_equal(b.capacity, 1048576);
	assert_string_equal(b.path, "/default-pool/b");
	assert_string_equal(b.format, "qcow2");
	assert_int_equal(libvirt_volume_xml_parse("<volume><name>b</name></volume>", &b, &err), -1);
	/* capacity = max(configured, base) */
	assert_int_equal(libvirt_root_capacity(10 * LIBVIRT_GIB, 1048576), 10 * LIBVIRT_GIB);
	assert_int_equal(libvirt_root_capacity(10 * LIBVIRT_GIB, 20 * LIBVIRT_GIB), 20 * LIBVIRT_GIB);
}

/* ---- host facts ---- */

static const char caps_s390x[] =
	"<capabilities><host><cpu><arch>s390x</arch></cpu></host>"
	"<guest><os_type>hvm</os_type><arch name='s390x'><wordsize>64</wordsize>"
	"<emulator>/usr/bin/qemu-system-s390x</emulator>"
	"<machine maxCpus='248'>s390-ccw-virtio-7.2</machine>"
	"<machine canonical='s390-ccw-virtio-7.2' maxCpus='248'>s390-ccw-virtio</machine>"
	"<domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";

static const char domcaps_snp[] =
	"<domainCapabilities><features><sev supported='yes'><cbitpos>51</cbitpos>"
	"<reducedPhysBits>1</reducedPhysBits></sev>"
	"<launchSecurity supported='yes'><enum name='sectype'><value>sev</value>"
	"<value>sev-snp</value></enum></launchSecurity></features></domainCapabilities>";

static const char domcaps_none[] =
	"<domainCapabilities><features><sev supported='no'/></features></domainCapabilities>";

static void test_caps(void **state)
{
	char machine[128], emulator[256];
	unsigned cbit = 0, rpb = 0;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(libvirt_caps_machine(caps_s390x, "s390x", "s390-ccw-virtio", machine,
					      sizeof(machine), emulator, sizeof(emulator), &err), 0);
	assert_string_equal(machine, "s390-ccw-virtio-7.2");
	assert_string_equal(emulator, "/usr/bin/qemu-system-s390x");
	assert_int_equal(libvirt_caps_machine(caps_s390x, "aarch64", "virt", machine, sizeof(machine),
					      emulator, sizeof(emulator), &err), 0);
	assert_string_equal(machine, "");
	assert_int_equal(libvirt_domcaps_check(domcaps_snp, LIBVIRT_TEE_SEV_SNP, &cbit, &rpb, &err), 0);
	assert_int_equal(cbit, 51);
	assert_int_equal(rpb, 1);
	assert_int_equal(libvirt_domcaps_check(domcaps_snp, LIBVIRT_TEE_TDX, &cbit, &rpb, &err), -1);
	assert_int_equal(err.code, PP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "tdx"));
	assert_int_equal(libvirt_domcaps_check(domcaps_none, LIBVIRT_TEE_SEV, &cbit, &rpb, &err), -1);
	assert_non_null(strstr(err.msg, "<sev supported='yes'>"));
}

/* ---- initdata ---- */

static const char initdata_toml[] =
	"algorithm = \"sha384\"\n"
	"version = \"0.1.0\"\n"
	"\n"
	"[data]\n"
	"\"aa.toml\" = '''\n"
	"[token_configs.kbs]\n"
	"url = \"https://kbs.example:8080\"\n"
	"'''\n";

/* User-data as the adaptor renders it, with the initdata passed through as an already encoded
 * document (INITDATA's path), so that documents the adaptor would refuse at CreateVM still
 * reach the provider's own checks. */
static char *render(const char *toml)
{
	struct userdata_input in = { .apf_json = "{\"pod-network\":{}}", .provider_name = "libvirt" };
	struct pp_err err = { 0 };
	char *enc = NULL;
	char *text = NULL;
	size_t len;

	if (toml && initdata_encode(toml, strlen(toml), &enc, &err) < 0)
		fail_msg("initdata_encode: %s", err.msg);
	in.default_initdata = enc;
	if (userdata_render(&in, &text, &len, &err) < 0)
		fail_msg("userdata_render: %s", err.msg);
	free(enc);
	return text;
}

static void test_initdata_measure(void **state)
{
	uint8_t out[LIBVIRT_MEASURE_MAX], dg[DIGEST_MAX_SIZE], zero[LIBVIRT_MEASURE_MAX] = { 0 };
	size_t dglen;
	bool found;
	struct pp_err err = { 0 };
	char *ud = render(initdata_toml);
	char *ud256;
	char toml256[sizeof(initdata_toml) + 8];

	(void)state;
	assert_int_equal(digest_compute("sha384", initdata_toml, strlen(initdata_toml), dg, &dglen, &err), 0);
	/* TDX: sha384 fills MRCONFIGID exactly */
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), LIBVIRT_TDX_MRCONFIGID_SIZE, out, &found,
						  &err), 0);
	assert_true(found);
	assert_memory_equal(out, dg, 48);
	/* SNP: the first 32 bytes */
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), LIBVIRT_SNP_HOST_DATA_SIZE, out, &found,
						  &err), 0);
	assert_memory_equal(out, dg, 32);
	free(ud);
	/* sha256 into TDX: 32 bytes then 16 zero bytes */
	snprintf(toml256, sizeof(toml256), "%s", initdata_toml);
	memcpy(strstr(toml256, "sha384"), "sha256", 6);
	ud256 = render(toml256);
	assert_int_equal(digest_compute("sha256", toml256, strlen(toml256), dg, &dglen, &err), 0);
	assert_int_equal(libvirt_initdata_measure(ud256, strlen(ud256), 48, out, &found, &err), 0);
	assert_memory_equal(out, dg, 32);
	assert_memory_equal(out + 32, zero, 16);
	free(ud256);
	/* no initdata in the user-data: found = false, zeros */
	ud = render(NULL);
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), 32, out, &found, &err), 0);
	assert_false(found);
	assert_memory_equal(out, zero, 32);
	free(ud);
	/* no algorithm line: an error naming it */
	ud = render("version = \"0.1.0\"\n[data]\nalgorithm = \"sha256\"\n");
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), 32, out, &found, &err), -1);
	assert_non_null(strstr(err.msg, "algorithm"));
	free(ud);
	/* an unknown algorithm is never silently replaced */
	ud = render("algorithm = \"md5\"\nversion = \"0.1.0\"\n");
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), 32, out, &found, &err), -1);
	free(ud);
	/* not base64 */
	ud = "#cloud-config\n\nwrite_files:\n  - path: /run/peerpod/initdata\n    content: |\n      !!!\n";
	assert_int_equal(libvirt_initdata_measure(ud, strlen(ud), 32, out, &found, &err), -1);
}

/* ---- cidata ISO ---- */

static void iso_extract(const char *iso, const char *file, bool rr, struct buf *out)
{
	char *const argv_rr[] = { "isoinfo", "-i", (char *)iso, "-R", "-x", (char *)file, NULL };
	char *const argv_plain[] = { "isoinfo", "-i", (char *)iso, "-x", (char *)file, NULL };

	buf_reset(out);
	assert_int_equal(run_capture(rr ? argv_rr : argv_plain, out), 0);
}

static void test_cidata_iso(void **state)
{
	const char *ud = "#cloud-config\n\nwrite_files:\n  - path: /run/peerpod/apf.json\n"
			 "    content: |\n      {}\n";
	char tmp[] = "/tmp/pplv-iso.XXXXXX";
	char *const argv_d[] = { "isoinfo", "-d", "-i", tmp, NULL };
	struct buf out = BUF_INIT(1 << 20);
	struct pp_err err = { 0 };
	uint8_t *iso = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	assert_int_equal(libvirt_cidata_build(ud, strlen(ud), "podvm-x-1", "podvm-x-1", &iso, &len, &err), 0);
	assert_true(len >= 16 * 2048 && len % 2048 == 0);
	assert_memory_equal(iso + 16 * 2048 + 1, "CD001", 5);   /* primary volume descriptor */
	/* too large user-data: refused before anything is built */
	assert_int_equal(libvirt_cidata_build(ud, LIBVIRT_MAX_USER_DATA + 1, "a", "a", &iso, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!have_program("isoinfo")) {
		fprintf(stderr, "isoinfo (genisoimage) not installed: ISO read-back skipped\n");
		free(iso);
		return;
	}
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	write_file(tmp, iso, len);
	free(iso);
	assert_int_equal(run_capture(argv_d, &out), 0);
	assert_non_null(strstr((const char *)out.data, "Volume id: cidata"));
	/* the same three names in every directory tree: Rock Ridge, Joliet, plain ISO 9660 */
	for (int i = 0; i < 3; i++) {
		char *const argv_f[] = { "isoinfo", "-i", tmp, "-f", i == 0 ? "-R" : i == 1 ? "-J" : NULL, NULL };

		buf_reset(&out);
		assert_int_equal(run_capture(argv_f, &out), 0);
		assert_string_equal((const char *)out.data, "/meta-data\n/user-data\n/vendor-data\n");
	}
	/* contents with Rock Ridge (what Linux and cloud-init see) and without */
	for (int rr = 1; rr >= 0; rr--) {
		iso_extract(tmp, "/user-data", rr, &out);
		assert_int_equal(out.len, strlen(ud));
		assert_memory_equal(out.data, ud, out.len);
		iso_extract(tmp, "/meta-data", rr, &out);
		assert_string_equal((const char *)out.data, "instance-id: podvm-x-1\nlocal-hostname: podvm-x-1\n");
		iso_extract(tmp, "/vendor-data", rr, &out);
		assert_int_equal(out.len, 0);
	}
	unlink(tmp);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_domains),
		cmocka_unit_test(test_domain_facts),
		cmocka_unit_test(test_cpuset_and_names),
		cmocka_unit_test(test_volume_xml),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_initdata_measure),
		cmocka_unit_test(test_cidata_iso),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
