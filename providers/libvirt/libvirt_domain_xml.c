/*
 * Domain XML for a pod VM, built with libxml2's tree API (never pasted strings: every name, path
 * and value is escaped by libxml2), and the few things read back from what libvirt returns: our
 * <metadata> element and the disks' file sources.
 *
 * The shapes follow spec §4.3 per architecture, with these decisions of ours:
 *  - x86_64 is q35 (SATA root sda + SATA cdrom sdb); UEFI from LIBVIRT_EFI_FIRMWARE as a
 *    read-only pflash loader. libvirt 9.0 rejects upstream's firmware='efi' + explicit loader.
 *  - SEV-SNP and TDX boot their firmware as a ROM (stateless, as measured launch wants), or let
 *    libvirt autoselect one (firmware='efi') when no path is configured; the initdata digest goes
 *    into <hostData> (SNP) or <mrConfigId> (TDX). Virtio devices get iommu='on' and the balloon
 *    is off under every x86 TEE; TDX also gets a split irqchip (<ioapic driver='qemu'/>).
 *  - s390x with s390-pv says so with <launchSecurity type='s390-pv'/>, so libvirt refuses a
 *    host without Secure Execution instead of booting an image that cannot run there.
 *  - no dumpCore='on' (upstream has it): a core dump of a pod VM writes its memory to the host.
 *  - domain type qemu (TCG) gets <cpu mode='maximum'>: host-model means nothing without KVM,
 *    and the default qemu64 model lacks RDRAND, which leaves the guest short of entropy.
 *
 * One idea: a builder that remembers the first allocation failure, so the straight-line
 * construction below needs no error check per node and a failure still cannot produce a
 * silently incomplete document.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "lib/encoding.h"

#define SEV_POLICY "0x0033"          /* NODBG | NOKS | DOMAIN | SEV */
#define SNP_POLICY "0x00030000"      /* SMT allowed, reserved bit 17 set */
#define TDX_POLICY "0x10000000"      /* SEPT_VE_DISABLE */

struct xb {
	xmlDocPtr doc;
	xmlNsPtr ns;
	bool failed;
};

static xmlNodePtr xb_check(struct xb *b, xmlNodePtr n)
{
	if (!n)
		b->failed = true;
	return n;
}

static xmlNodePtr el(struct xb *b, xmlNodePtr parent, const char *name, const char *text)
{
	if (!parent) {
		b->failed = true;
		return NULL;
	}
	return xb_check(b, xmlNewTextChild(parent, NULL, BAD_CAST name, text ? BAD_CAST text : NULL));
}

static void attr(struct xb *b, xmlNodePtr n, const char *name, const char *value)
{
	if (!n || !xmlNewProp(n, BAD_CAST name, BAD_CAST value))
		b->failed = true;
}

static xmlNodePtr el1(struct xb *b, xmlNodePtr parent, const char *name, const char *an,
		      const char *av)
{
	xmlNodePtr n = el(b, parent, name, NULL);

	attr(b, n, an, av);
	return n;
}

static bool tee_is_x86(enum libvirt_tee tee)
{
	return tee == LIBVIRT_TEE_SEV || tee == LIBVIRT_TEE_SEV_SNP || tee == LIBVIRT_TEE_TDX;
}

/* ---- metadata ---- */

static void add_metadata(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	xmlNodePtr md = el(b, dom, "metadata", NULL);
	xmlNodePtr inst = el(b, md, "instance", NULL);
	xmlNodePtr pod;
	char created[32];

	if (!inst)
		return;
	b->ns = xmlNewNs(inst, BAD_CAST LIBVIRT_META_NS, BAD_CAST LIBVIRT_META_PREFIX);
	if (!b->ns) {
		b->failed = true;
		return;
	}
	xmlSetNs(inst, b->ns);
	snprintf(created, sizeof(created), "%lld", (long long)d->created);
	xb_check(b, xmlNewTextChild(inst, b->ns, BAD_CAST "owner", BAD_CAST d->owner));
	xb_check(b, xmlNewTextChild(inst, b->ns, BAD_CAST "sandbox", BAD_CAST d->sandbox_id));
	pod = xb_check(b, xmlNewTextChild(inst, b->ns, BAD_CAST "pod", NULL));
	attr(b, pod, "namespace", d->pod_namespace ? d->pod_namespace : "");
	attr(b, pod, "name", d->pod_name ? d->pod_name : "");
	xb_check(b, xmlNewTextChild(inst, b->ns, BAD_CAST "created", BAD_CAST created));
}

/* ---- <os>, <features>, <cpu> ---- */

static const char *default_machine(enum libvirt_arch arch)
{
	switch (arch) {
	case LIBVIRT_ARCH_AARCH64:
		return "virt";
	case LIBVIRT_ARCH_S390X:
		return "s390-ccw-virtio";
	case LIBVIRT_ARCH_X86_64:
		break;
	}
	return "q35";
}

static void add_x86_loader(struct xb *b, xmlNodePtr os, const struct libvirt_domain_def *d)
{
	xmlNodePtr loader;

	if (d->tee == LIBVIRT_TEE_SEV_SNP || d->tee == LIBVIRT_TEE_TDX) {
		if (!d->firmware[0]) {
			attr(b, os, "firmware", "efi");
			return;
		}
		loader = el(b, os, "loader", d->firmware);
		attr(b, loader, "type", "rom");
		return;
	}
	if (!d->firmware[0])
		return;
	loader = el(b, os, "loader", d->firmware);
	attr(b, loader, "readonly", "yes");
	attr(b, loader, "type", "pflash");
}

static void add_os(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	xmlNodePtr os = el(b, dom, "os", NULL);
	xmlNodePtr type = el(b, os, "type", "hvm");

	attr(b, type, "arch", libvirt_arch_name(d->arch));
	attr(b, type, "machine", d->machine[0] ? d->machine : default_machine(d->arch));
	if (d->arch == LIBVIRT_ARCH_X86_64)
		add_x86_loader(b, os, d);
	else if (d->arch == LIBVIRT_ARCH_AARCH64)
		attr(b, os, "firmware", "efi");
	if (d->kernel[0]) {
		el(b, os, "kernel", d->kernel);
		if (d->initrd[0])
			el(b, os, "initrd", d->initrd);
		if (d->cmdline[0])
			el(b, os, "cmdline", d->cmdline);
	}
}

static void add_features(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	xmlNodePtr f;

	if (d->arch == LIBVIRT_ARCH_S390X)
		return;
	f = el(b, dom, "features", NULL);
	el(b, f, "acpi", NULL);
	if (d->arch != LIBVIRT_ARCH_X86_64)
		return;
	el(b, f, "apic", NULL);
	el1(b, f, "vmport", "state", "off");
	if (d->tee == LIBVIRT_TEE_TDX)
		el1(b, f, "ioapic", "driver", "qemu");
}

static void add_cpu(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	const char *mode = "host-model";
	xmlNodePtr cpu;

	if (strcmp(d->domain_type, "qemu") == 0) {
		/* everything TCG emulates, RDRAND included: with the default qemu64 model the guest's
		 * CRNG takes ~1.5 s to initialise and getrandom() (OpenSSL in the forwarder) blocks */
		cpu = el1(b, dom, "cpu", "mode", "maximum");
		attr(b, cpu, "check", "none");
		return;
	}
	if (d->arch == LIBVIRT_ARCH_AARCH64 || d->tee == LIBVIRT_TEE_TDX)
		mode = "host-passthrough";
	el1(b, dom, "cpu", "mode", mode);
}

/* ---- devices ---- */

static void add_iommu(struct xb *b, xmlNodePtr dev, bool on)
{
	if (on)
		el1(b, dev, "driver", "iommu", "on");
}

static xmlNodePtr add_disk(struct xb *b, xmlNodePtr devs, const char *device, const char *format,
			   const char *path, const char *dev, const char *bus, bool iommu)
{
	xmlNodePtr disk = el(b, devs, "disk", NULL);
	xmlNodePtr drv, target;

	attr(b, disk, "type", "file");
	attr(b, disk, "device", device);
	drv = el(b, disk, "driver", NULL);
	attr(b, drv, "name", "qemu");
	attr(b, drv, "type", format);
	if (iommu)
		attr(b, drv, "iommu", "on");
	el1(b, disk, "source", "file", path);
	target = el(b, disk, "target", NULL);
	attr(b, target, "dev", dev);
	attr(b, target, "bus", bus);
	return disk;
}

static void add_root_disk(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d,
			  const char *dev, const char *bus, bool iommu)
{
	xmlNodePtr disk = add_disk(b, devs, "disk", "qcow2", d->root_path, dev, bus, iommu);

	if (!d->kernel[0])
		el1(b, disk, "boot", "order", "1");
}

static void add_cidata_disk(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d,
			    const char *device, const char *dev, const char *bus, bool iommu)
{
	xmlNodePtr disk = add_disk(b, devs, device, "raw", d->cidata_path, dev, bus, iommu);

	el(b, disk, "readonly", NULL);
}

static void add_nic(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d, bool iommu)
{
	xmlNodePtr nic = el1(b, devs, "interface", "type", "network");

	el1(b, nic, "source", "network", d->network);
	el1(b, nic, "model", "type", "virtio");
	add_iommu(b, nic, iommu);
}

/* The console log (LIBVIRT_CONSOLE_LOG_DIR) goes on the first character device: the serial
 * port, or the console itself where there is none (sclp); virtlogd writes it. */
static void add_console_log(struct xb *b, xmlNodePtr chardev, const struct libvirt_domain_def *d)
{
	xmlNodePtr log;

	if (!d->console_log || !d->console_log[0])
		return;
	log = el1(b, chardev, "log", "file", d->console_log);
	attr(b, log, "append", "off");
}

static void add_console(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d,
			const char *type)
{
	xmlNodePtr serial, target, console;
	bool is_serial = strcmp(type, "serial") == 0;

	if (is_serial) {
		serial = el1(b, devs, "serial", "type", "pty");
		add_console_log(b, serial, d);
		el1(b, serial, "target", "port", "0");
	}
	console = el1(b, devs, "console", "type", "pty");
	if (!is_serial)
		add_console_log(b, console, d);
	target = el1(b, console, "target", "type", type);
	attr(b, target, "port", "0");
}

static void add_balloon(struct xb *b, xmlNodePtr devs, const char *model, bool iommu)
{
	xmlNodePtr mb = el1(b, devs, "memballoon", "model", model);

	add_iommu(b, mb, iommu);
}

static void add_devices_x86(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d)
{
	bool tee = tee_is_x86(d->tee);

	add_root_disk(b, devs, d, "sda", "sata", false);
	add_cidata_disk(b, devs, d, "cdrom", "sdb", "sata", false);
	add_nic(b, devs, d, tee);
	add_console(b, devs, d, "serial");
	if (tee)
		add_balloon(b, devs, "none", false);
}

static void add_devices_aarch64(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d)
{
	xmlNodePtr ctl;

	add_root_disk(b, devs, d, "vda", "virtio", true);
	add_cidata_disk(b, devs, d, "cdrom", "sda", "scsi", false);
	ctl = el1(b, devs, "controller", "type", "scsi");
	attr(b, ctl, "index", "0");
	attr(b, ctl, "model", "virtio-scsi");
	add_iommu(b, ctl, true);
	add_nic(b, devs, d, true);
	add_console(b, devs, d, "serial");
	add_balloon(b, devs, "virtio", true);
}

static void add_devices_s390x(struct xb *b, xmlNodePtr devs, const struct libvirt_domain_def *d)
{
	xmlNodePtr rng, backend;

	add_root_disk(b, devs, d, "vda", "virtio", true);
	add_cidata_disk(b, devs, d, "disk", "vdb", "virtio", true);
	add_nic(b, devs, d, true);
	add_console(b, devs, d, "sclp");
	add_balloon(b, devs, "virtio", true);
	rng = el1(b, devs, "rng", "model", "virtio");
	backend = el(b, rng, "backend", "/dev/urandom");
	attr(b, backend, "model", "random");
	add_iommu(b, rng, true);
}

static void add_devices(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	xmlNodePtr devs = el(b, dom, "devices", NULL);

	if (d->emulator[0])
		el(b, devs, "emulator", d->emulator);
	switch (d->arch) {
	case LIBVIRT_ARCH_AARCH64:
		add_devices_aarch64(b, devs, d);
		break;
	case LIBVIRT_ARCH_S390X:
		add_devices_s390x(b, devs, d);
		break;
	case LIBVIRT_ARCH_X86_64:
		add_devices_x86(b, devs, d);
		break;
	}
}

/* ---- <launchSecurity> ---- */

static void add_sev_bits(struct xb *b, xmlNodePtr ls, const struct libvirt_domain_def *d)
{
	char num[16];

	if (d->sev_cbitpos) {
		snprintf(num, sizeof(num), "%u", d->sev_cbitpos);
		el(b, ls, "cbitpos", num);
	}
	if (d->sev_reduced_phys_bits) {
		snprintf(num, sizeof(num), "%u", d->sev_reduced_phys_bits);
		el(b, ls, "reducedPhysBits", num);
	}
}

static void add_measure(struct xb *b, xmlNodePtr ls, const char *name, const struct libvirt_domain_def *d)
{
	char *b64;

	if (!d->measure || !d->measure_len)
		return;
	b64 = base64_encode(d->measure, d->measure_len);
	el(b, ls, name, b64);
	free(b64);
}

static void add_launch_security(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	xmlNodePtr ls;

	if (d->tee == LIBVIRT_TEE_NONE || d->tee == LIBVIRT_TEE_AUTO)
		return;
	ls = el1(b, dom, "launchSecurity", "type", libvirt_tee_name(d->tee));
	switch (d->tee) {
	case LIBVIRT_TEE_SEV:
		add_sev_bits(b, ls, d);
		el(b, ls, "policy", SEV_POLICY);
		break;
	case LIBVIRT_TEE_SEV_SNP:
		add_sev_bits(b, ls, d);
		el(b, ls, "policy", SNP_POLICY);
		add_measure(b, ls, "hostData", d);
		break;
	case LIBVIRT_TEE_TDX:
		el(b, ls, "policy", TDX_POLICY);
		add_measure(b, ls, "mrConfigId", d);
		break;
	default:
		break;
	}
}

/* ---- the document ---- */

/* Text that goes into the XML: libxml2 escapes markup, but control characters cannot be
 * represented in XML 1.0 at all. */
static int check_text(const char *what, const char *s, struct pp_err *err)
{
	if (!s)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "domain XML: %s is missing", what);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "domain XML: %s contains a control character", what);
	return 0;
}

static int check_def(const struct libvirt_domain_def *d, struct pp_err *err)
{
	const char *const fields[][2] = {
		{ "name", d->name }, { "owner", d->owner }, { "sandbox id", d->sandbox_id },
		{ "domain type", d->domain_type }, { "machine", d->machine },
		{ "emulator", d->emulator }, { "cpuset", d->cpuset }, { "firmware", d->firmware },
		{ "kernel", d->kernel }, { "initrd", d->initrd }, { "cmdline", d->cmdline },
		{ "root volume path", d->root_path }, { "cidata volume path", d->cidata_path },
		{ "network", d->network },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (check_text(fields[i][0], fields[i][1], err) < 0)
			return -1;
	if ((d->pod_name && check_text("pod name", d->pod_name, err) < 0) ||
	    (d->pod_namespace && check_text("pod namespace", d->pod_namespace, err) < 0))
		return -1;
	if (d->vcpus < 1 || d->memory_mib < 1)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "domain XML: %lld vCPUs, %lld MiB is not a VM",
				  (long long)d->vcpus, (long long)d->memory_mib);
	return 0;
}

static void build(struct xb *b, xmlNodePtr dom, const struct libvirt_domain_def *d)
{
	char num[32];
	xmlNodePtr n;

	attr(b, dom, "type", d->domain_type);
	el(b, dom, "name", d->name);
	el(b, dom, "description", LIBVIRT_DESCRIPTION);
	add_metadata(b, dom, d);
	snprintf(num, sizeof(num), "%lld", (long long)d->memory_mib);
	n = el(b, dom, "memory", num);
	attr(b, n, "unit", "MiB");
	snprintf(num, sizeof(num), "%lld", (long long)d->vcpus);
	n = el(b, dom, "vcpu", num);
	attr(b, n, "placement", "static");
	if (d->cpuset[0])
		attr(b, n, "cpuset", d->cpuset);
	add_os(b, dom, d);
	add_features(b, dom, d);
	add_cpu(b, dom, d);
	el1(b, dom, "clock", "offset", "utc");
	el(b, dom, "on_poweroff", "destroy");
	el(b, dom, "on_reboot", "restart");
	el(b, dom, "on_crash", "destroy");
	add_devices(b, dom, d);
	add_launch_security(b, dom, d);
}

int libvirt_domain_xml_build(const struct libvirt_domain_def *d, char **ret_xml, struct pp_err *err)
{
	struct xb b = { 0 };
	xmlNodePtr dom;
	xmlBufferPtr out = NULL;
	int rc = -1;

	if (check_def(d, err) < 0)
		return -1;
	b.doc = xmlNewDoc(BAD_CAST "1.0");
	dom = b.doc ? xmlNewNode(NULL, BAD_CAST "domain") : NULL;
	if (!dom) {
		xmlFreeDoc(b.doc);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building domain XML");
	}
	xmlDocSetRootElement(b.doc, dom);
	build(&b, dom, d);
	out = b.failed ? NULL : xmlBufferCreate();
	if (!out || xmlNodeDump(out, b.doc, dom, 0, 1) < 0) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building domain XML for %s", d->name);
		goto out;
	}
	if (xmlBufferAdd(out, BAD_CAST "\n", 1) != 0) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building domain XML for %s", d->name);
		goto out;
	}
	*ret_xml = strdup((const char *)xmlBufferContent(out));
	if (!*ret_xml) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building domain XML for %s", d->name);
		goto out;
	}
	rc = 0;
out:
	if (out)
		xmlBufferFree(out);
	xmlFreeDoc(b.doc);
	return rc;
}

/* ---- reading back ---- */

xmlDocPtr libvirt_xml_parse(const char *xml, const char *what, struct pp_err *err)
{
	size_t len = xml ? strlen(xml) : 0;
	xmlDocPtr doc;

	if (!xml || len > LIBVIRT_XML_MAX) {
		pp_err_set(err, PP_INTERNAL, "%s: missing or larger than %d bytes", what, LIBVIRT_XML_MAX);
		return NULL;
	}
	doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING);
	if (!doc || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		pp_err_set(err, PP_INTERNAL, "%s is not well-formed XML", what);
		return NULL;
	}
	return doc;
}

static xmlXPathObjectPtr xpath_eval(xmlDocPtr doc, const char *expr)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr obj;

	if (!ctx)
		return NULL;
	obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	xmlXPathFreeContext(ctx);
	return obj;
}

int libvirt_xpath_str(xmlDocPtr doc, const char *expr, char *out, size_t size)
{
	xmlXPathObjectPtr obj = xpath_eval(doc, expr);
	xmlChar *val = NULL;
	int rc = 0;

	if (!obj)
		return 0;
	if (obj->type == XPATH_STRING)
		val = xmlStrdup(obj->stringval);
	else if (obj->type == XPATH_NODESET && obj->nodesetval && obj->nodesetval->nodeNr > 0)
		val = xmlNodeGetContent(obj->nodesetval->nodeTab[0]);
	if (val && val[0]) {
		rc = snprintf(out, size, "%s", (const char *)val) < (int)size ? 1 : -1;
	}
	xmlFree(val);
	xmlXPathFreeObject(obj);
	return rc;
}

bool libvirt_xpath_exists(xmlDocPtr doc, const char *expr)
{
	xmlXPathObjectPtr obj = xpath_eval(doc, expr);
	bool found = obj && obj->type == XPATH_NODESET && obj->nodesetval &&
		     obj->nodesetval->nodeNr > 0;

	xmlXPathFreeObject(obj);
	return found;
}

int libvirt_domain_meta_parse(const char *xml, struct libvirt_domain_meta *ret, struct pp_err *err)
{
	struct libvirt_domain_meta m = { 0 };
	xmlDocPtr doc = libvirt_xml_parse(xml, "domain metadata", err);
	char created[32] = "";
	int rc = -1;

	if (!doc)
		return -1;
	if (libvirt_xpath_str(doc, "/*[local-name()='instance']/*[local-name()='owner']", m.owner,
			      sizeof(m.owner)) != 1 ||
	    libvirt_xpath_str(doc, "/*[local-name()='instance']/*[local-name()='sandbox']",
			      m.sandbox_id, sizeof(m.sandbox_id)) < 0) {
		pp_err_set(err, PP_INTERNAL, "domain metadata has no usable owner");
		goto out;
	}
	if (libvirt_xpath_str(doc, "/*[local-name()='instance']/*[local-name()='created']", created,
			      sizeof(created)) == 1) {
		char *end;
		long long v = strtoll(created, &end, 10);

		if (*end == '\0' && v > 0)
			m.created = v;
	}
	*ret = m;
	rc = 0;
out:
	xmlFreeDoc(doc);
	return rc;
}

void libvirt_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int libvirt_domain_xml_disks(const char *xml, char ***ret, struct pp_err *err)
{
	xmlDocPtr doc = libvirt_xml_parse(xml, "domain XML", err);
	xmlXPathObjectPtr obj;
	char **v = NULL;
	int n = 0, k = 0;

	if (!doc)
		return -1;
	obj = xpath_eval(doc, "/domain/devices/disk[@type='file']/source/@file");
	if (obj && obj->type == XPATH_NODESET && obj->nodesetval)
		n = obj->nodesetval->nodeNr;
	v = calloc((size_t)n + 1, sizeof(*v));
	for (int i = 0; v && i < n; i++) {
		xmlChar *s = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);

		if (s && s[0] && !(v[k++] = strdup((const char *)s))) {
			xmlFree(s);
			libvirt_strv_free(v);
			v = NULL;
			break;
		}
		xmlFree(s);
	}
	xmlXPathFreeObject(obj);
	xmlFreeDoc(doc);
	if (!v)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory reading domain disks");
	*ret = v;
	return 0;
}
