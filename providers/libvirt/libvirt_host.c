/*
 * What the provider learns from the libvirt host at start-up: its architecture (virNodeGetInfo's
 * model, as upstream: s390x, aarch64, anything else takes the x86_64 path), the canonical machine
 * type and emulator from the capabilities XML, and whether the requested confidential launch type
 * can work there: the architecture, the connected libvirt's version and the domain capabilities
 * (virConnectGetDomainCapabilities) are checked, and the error names what is missing.
 *
 * Drivers without domain capabilities (the test driver) are fine as long as no confidential
 * launch is asked for; with one, "cannot confirm" is an error, never a guess.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "lib/util.h"

#define LIBVIRT_VERSION(a, b, c) ((unsigned long)(a) * 1000000UL + (unsigned long)(b) * 1000UL + (c))

unsigned long libvirt_tee_min_version(enum libvirt_tee tee)
{
	switch (tee) {
	case LIBVIRT_TEE_SEV:
		return LIBVIRT_VERSION(4, 5, 0);
	case LIBVIRT_TEE_S390_PV:
		return LIBVIRT_VERSION(7, 6, 0);
	case LIBVIRT_TEE_SEV_SNP:
		return LIBVIRT_VERSION(10, 5, 0);
	case LIBVIRT_TEE_TDX:
		return LIBVIRT_VERSION(11, 5, 0);
	default:
		return 0;
	}
}

static enum libvirt_arch arch_from_model(const char *model)
{
	if (strcmp(model, "s390x") == 0)
		return LIBVIRT_ARCH_S390X;
	if (strcmp(model, "aarch64") == 0)
		return LIBVIRT_ARCH_AARCH64;
	return LIBVIRT_ARCH_X86_64;
}

int libvirt_caps_machine(const char *caps_xml, const char *arch, const char *machine,
			 char *ret_machine, size_t msize, char *ret_emulator, size_t esize,
			 struct pp_err *err)
{
	xmlDocPtr doc = libvirt_xml_parse(caps_xml, "libvirt capabilities", err);
	char expr[256];

	if (!doc)
		return -1;
	ret_machine[0] = ret_emulator[0] = '\0';
	snprintf(expr, sizeof(expr),
		 "string(/capabilities/guest/arch[@name='%s']/machine[text()='%s']/@canonical)", arch,
		 machine);
	if (libvirt_xpath_str(doc, expr, ret_machine, msize) == 0) {
		snprintf(expr, sizeof(expr), "/capabilities/guest/arch[@name='%s']/machine[text()='%s']",
			 arch, machine);
		if (libvirt_xpath_exists(doc, expr))
			snprintf(ret_machine, msize, "%s", machine);
	}
	snprintf(expr, sizeof(expr), "/capabilities/guest[os_type='hvm']/arch[@name='%s']/emulator", arch);
	if (libvirt_xpath_str(doc, expr, ret_emulator, esize) < 0)
		ret_emulator[0] = '\0';   /* absurdly long: let libvirt choose */
	xmlFreeDoc(doc);
	return 0;
}

int libvirt_host_probe(virConnectPtr c, struct libvirt_host *ret, struct pp_err *err)
{
	struct libvirt_host h;
	virNodeInfo ni;
	char *caps;
	int rc = 0;

	memset(&h, 0, sizeof(h));
	if (virNodeGetInfo(c, &ni) < 0)
		return libvirt_err(err, PP_UNAVAILABLE, "reading the libvirt host's node info");
	h.arch = arch_from_model(ni.model);
	if (virConnectGetLibVersion(c, &h.lib_version) < 0)
		return libvirt_err(err, PP_UNAVAILABLE, "reading the libvirt version");
	if (h.arch != LIBVIRT_ARCH_X86_64) {
		const char *want = h.arch == LIBVIRT_ARCH_S390X ? "s390-ccw-virtio" : "virt";

		caps = virConnectGetCapabilities(c);
		if (!caps)
			return libvirt_err(err, PP_UNAVAILABLE, "reading the libvirt host's capabilities");
		rc = libvirt_caps_machine(caps, libvirt_arch_name(h.arch), want, h.machine,
					  sizeof(h.machine), h.emulator, sizeof(h.emulator), err);
		free(caps);
	}
	if (rc == 0)
		*ret = h;
	return rc;
}

/* ---- confidential launch ---- */

static bool domcaps_sectype(xmlDocPtr doc, const char *name)
{
	char expr[200];

	snprintf(expr, sizeof(expr),
		 "/domainCapabilities/features/launchSecurity[@supported='yes']"
		 "/enum[@name='sectype']/value[text()='%s']", name);
	return libvirt_xpath_exists(doc, expr);
}

static unsigned domcaps_uint(xmlDocPtr doc, const char *expr)
{
	char v[16];
	uint32_t n;

	if (libvirt_xpath_str(doc, expr, v, sizeof(v)) != 1 || parse_uint32(v, &n) < 0)
		return 0;
	return n;
}

int libvirt_domcaps_check(const char *domcaps_xml, enum libvirt_tee tee, unsigned *ret_cbitpos,
			  unsigned *ret_rpb, struct pp_err *err)
{
	xmlDocPtr doc = libvirt_xml_parse(domcaps_xml, "libvirt domain capabilities", err);
	bool ok = false;
	const char *missing = "";

	if (!doc)
		return -1;
	switch (tee) {
	case LIBVIRT_TEE_SEV:
		ok = libvirt_xpath_exists(doc, "/domainCapabilities/features/sev[@supported='yes']");
		missing = "<features><sev supported='yes'>";
		break;
	case LIBVIRT_TEE_SEV_SNP:
		ok = domcaps_sectype(doc, "sev-snp");
		missing = "sev-snp in <features><launchSecurity supported='yes'><enum name='sectype'>";
		break;
	case LIBVIRT_TEE_TDX:
		ok = domcaps_sectype(doc, "tdx") ||
		     libvirt_xpath_exists(doc, "/domainCapabilities/features/tdx[@supported='yes']");
		missing = "tdx in <features><launchSecurity supported='yes'><enum name='sectype'>";
		break;
	case LIBVIRT_TEE_S390_PV:
		ok = domcaps_sectype(doc, "s390-pv") ||
		     libvirt_xpath_exists(doc, "/domainCapabilities/features/s390-pv[@supported='yes']");
		missing = "<features><s390-pv supported='yes'>";
		break;
	default:
		ok = true;
		break;
	}
	*ret_cbitpos = domcaps_uint(doc, "/domainCapabilities/features/sev/cbitpos");
	*ret_rpb = domcaps_uint(doc, "/domainCapabilities/features/sev/reducedPhysBits");
	xmlFreeDoc(doc);
	if (!ok)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "LIBVIRT_LAUNCH_SECURITY=%s: the host's domain capabilities lack %s "
				  "(check the firmware/BIOS settings, the kernel's kvm module parameters "
				  "and the QEMU version)", libvirt_tee_name(tee), missing);
	return 0;
}

static int tee_check_arch(enum libvirt_tee tee, enum libvirt_arch arch, struct pp_err *err)
{
	bool ok = tee == LIBVIRT_TEE_NONE ||
		  (tee == LIBVIRT_TEE_S390_PV ? arch == LIBVIRT_ARCH_S390X : arch == LIBVIRT_ARCH_X86_64);

	if (!ok)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "LIBVIRT_LAUNCH_SECURITY=%s is not available on a %s libvirt host",
				  libvirt_tee_name(tee), libvirt_arch_name(arch));
	return 0;
}

static int tee_check_version(enum libvirt_tee tee, unsigned long have, struct pp_err *err)
{
	unsigned long need = libvirt_tee_min_version(tee);

	if (have >= need)
		return 0;
	return pp_err_set(err, PP_FAILED_PRECONDITION,
			  "LIBVIRT_LAUNCH_SECURITY=%s needs libvirt %lu.%lu.%lu or newer; the host runs "
			  "%lu.%lu.%lu", libvirt_tee_name(tee), need / 1000000, need / 1000 % 1000,
			  need % 1000, have / 1000000, have / 1000 % 1000, have % 1000);
}

int libvirt_tee_check(virConnectPtr c, const char *domain_type, enum libvirt_tee requested,
		      struct libvirt_host *host, enum libvirt_tee *ret, struct pp_err *err)
{
	enum libvirt_tee tee = requested;
	char *domcaps;
	int rc;

	if (tee == LIBVIRT_TEE_AUTO)
		tee = host->arch == LIBVIRT_ARCH_S390X ? LIBVIRT_TEE_S390_PV : LIBVIRT_TEE_NONE;
	if (tee == LIBVIRT_TEE_NONE) {
		*ret = tee;
		return 0;
	}
	if (tee_check_arch(tee, host->arch, err) < 0 ||
	    tee_check_version(tee, host->lib_version, err) < 0)
		return -1;
	domcaps = virConnectGetDomainCapabilities(c, host->emulator[0] ? host->emulator : NULL,
						  libvirt_arch_name(host->arch),
						  host->machine[0] ? host->machine : NULL, domain_type, 0);
	if (!domcaps)
		return libvirt_err(err, PP_FAILED_PRECONDITION,
				   "LIBVIRT_LAUNCH_SECURITY=%s: cannot read the host's domain "
				   "capabilities to confirm support", libvirt_tee_name(tee));
	rc = libvirt_domcaps_check(domcaps, tee, &host->sev_cbitpos, &host->sev_reduced_phys_bits, err);
	free(domcaps);
	if (rc == 0)
		*ret = tee;
	return rc;
}
