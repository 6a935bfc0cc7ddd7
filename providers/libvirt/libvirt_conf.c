/*
 * Options of the `libvirt` provider: upstream's flags and environment names (spec §4.1), plus a
 * few of ours for direct kernel boot, TCG hosts, the console log and the IP wait. Every value is
 * checked once at init, so a bad setting stops the daemon with a message naming it instead of
 * failing a pod.
 *
 * Launch security: DISABLECVM=true (upstream's default) means no confidential launch; asking for
 * one while DISABLECVM is true is an error rather than a silently unprotected VM.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const struct config_option libvirt_options[] = {
	{ "LIBVIRT_URI", "uri", "LIBVIRT_URI", CFG_STRING,
	  "qemu+ssh://root@192.168.122.1/system?no_verify=1", 0, "libvirt connection URI" },
	{ "LIBVIRT_POOL", "pool-name", "LIBVIRT_POOL", CFG_STRING, "default", 0,
	  "storage pool holding the base volume and the per-VM volumes" },
	{ "LIBVIRT_NET", "network-name", "LIBVIRT_NET", CFG_STRING, "default", 0,
	  "libvirt network of the VM's NIC (must hand out DHCP leases)" },
	{ "LIBVIRT_VOL_NAME", "vol-name", "LIBVIRT_VOL_NAME", CFG_STRING, "podvm-base.qcow2", 0,
	  "base (backing) volume of the pod VM image" },
	{ "LIBVIRT_LAUNCH_SECURITY", "launch-security", "LIBVIRT_LAUNCH_SECURITY", CFG_STRING, NULL, 0,
	  "confidential launch: none, sev, sev-snp, tdx, s390-pv (empty: s390-pv on s390x, else none); "
	  "needs DISABLECVM=false" },
	{ "LIBVIRT_EFI_FIRMWARE", "firmware", "LIBVIRT_EFI_FIRMWARE", CFG_STRING,
	  "/usr/share/OVMF/OVMF_CODE_4M.fd", 0, "x86_64 UEFI firmware path (empty: BIOS)" },
	{ "LIBVIRT_CPU", "cpu", "LIBVIRT_CPU", CFG_INT, "2", 0, "vCPUs (when the pod names none)" },
	{ "LIBVIRT_MEMORY", "memory", "LIBVIRT_MEMORY", CFG_INT, "8192", 0,
	  "memory in MiB (when the pod names none)" },
	{ "LIBVIRT_CPUSET", "cpuset", "LIBVIRT_CPUSET", CFG_STRING, NULL, 0,
	  "host CPUs the vCPUs may run on, e.g. 0-3,8" },
	{ "LIBVIRT_ROOT_DISK_SIZE", "root-disk-size", "LIBVIRT_ROOT_DISK_SIZE", CFG_INT, "10", 0,
	  "root disk size in GiB (0: 10); never smaller than the base volume" },
	{ "DATA_DIR", "data-dir", NULL, CFG_STRING, "/var/lib/libvirt/images", 0,
	  "accepted for compatibility; unused" },
	{ "DISABLECVM", "disable-cvm", "DISABLECVM", CFG_BOOL, "true", 0,
	  "launch VMs without confidential computing" },
	{ "LIBVIRT_DOMAIN_TYPE", "domain-type", "LIBVIRT_DOMAIN_TYPE", CFG_STRING, "kvm", 0,
	  "domain type: kvm, or qemu (TCG, for hosts without usable KVM)" },
	{ "LIBVIRT_KERNEL", "kernel", "LIBVIRT_KERNEL", CFG_STRING, NULL, 0,
	  "direct kernel boot: kernel path on the libvirt host (empty: boot the root disk)" },
	{ "LIBVIRT_INITRD", "initrd", "LIBVIRT_INITRD", CFG_STRING, NULL, 0,
	  "direct kernel boot: initrd path on the libvirt host" },
	{ "LIBVIRT_CMDLINE", "cmdline", "LIBVIRT_CMDLINE", CFG_STRING, NULL, 0,
	  "direct kernel boot: kernel command line" },
	{ "LIBVIRT_CONSOLE_LOG_DIR", "console-log-dir", "LIBVIRT_CONSOLE_LOG_DIR", CFG_STRING, NULL, 0,
	  "directory on the libvirt host for each VM's serial console log, <name>-console.log "
	  "(empty: none)" },
	{ "LIBVIRT_IP_TIMEOUT", "ip-timeout", "LIBVIRT_IP_TIMEOUT", CFG_DURATION, "2m", 0,
	  "how long to wait for the VM's address (DHCP lease, then guest agent)" },
	{ NULL, NULL, NULL, CFG_STRING, NULL, 0, NULL },
};

static const char *const tee_names[] = {
	[LIBVIRT_TEE_NONE] = "none",
	[LIBVIRT_TEE_SEV] = "sev",
	[LIBVIRT_TEE_SEV_SNP] = "sev-snp",
	[LIBVIRT_TEE_TDX] = "tdx",
	[LIBVIRT_TEE_S390_PV] = "s390-pv",
	[LIBVIRT_TEE_AUTO] = "",
};

const char *libvirt_tee_name(enum libvirt_tee tee)
{
	return (size_t)tee < sizeof(tee_names) / sizeof(tee_names[0]) ? tee_names[tee] : "?";
}

int libvirt_tee_parse(const char *s, enum libvirt_tee *ret)
{
	for (size_t i = 0; i < sizeof(tee_names) / sizeof(tee_names[0]); i++) {
		if (strcmp(s, tee_names[i]) == 0) {
			*ret = (enum libvirt_tee)i;
			return 0;
		}
	}
	return -1;
}

const char *libvirt_arch_name(enum libvirt_arch arch)
{
	switch (arch) {
	case LIBVIRT_ARCH_AARCH64:
		return "aarch64";
	case LIBVIRT_ARCH_S390X:
		return "s390x";
	case LIBVIRT_ARCH_X86_64:
		break;
	}
	return "x86_64";
}

/* One "N" or "N-M" item; advances *p past it. */
static bool cpuset_item(const char **p)
{
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	if (*s == '-') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	*p = s;
	return true;
}

bool libvirt_cpuset_valid(const char *s)
{
	if (!cpuset_item(&s))
		return false;
	while (*s == ',') {
		s++;
		if (!cpuset_item(&s))
			return false;
	}
	return *s == '\0';
}

static int conf_copy(char *out, size_t size, const struct config *cfg, const char *name,
		     struct pp_err *err)
{
	const char *v = config_str(cfg, name);

	if (snprintf(out, size, "%s", v) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is longer than %zu bytes", name, size - 1);
	return 0;
}

static int conf_strings(struct libvirt_conf *c, const struct config *cfg, struct pp_err *err)
{
	if (conf_copy(c->uri, sizeof(c->uri), cfg, "LIBVIRT_URI", err) < 0 ||
	    conf_copy(c->pool, sizeof(c->pool), cfg, "LIBVIRT_POOL", err) < 0 ||
	    conf_copy(c->network, sizeof(c->network), cfg, "LIBVIRT_NET", err) < 0 ||
	    conf_copy(c->base_volume, sizeof(c->base_volume), cfg, "LIBVIRT_VOL_NAME", err) < 0 ||
	    conf_copy(c->firmware, sizeof(c->firmware), cfg, "LIBVIRT_EFI_FIRMWARE", err) < 0 ||
	    conf_copy(c->cpuset, sizeof(c->cpuset), cfg, "LIBVIRT_CPUSET", err) < 0 ||
	    conf_copy(c->domain_type, sizeof(c->domain_type), cfg, "LIBVIRT_DOMAIN_TYPE", err) < 0 ||
	    conf_copy(c->kernel, sizeof(c->kernel), cfg, "LIBVIRT_KERNEL", err) < 0 ||
	    conf_copy(c->initrd, sizeof(c->initrd), cfg, "LIBVIRT_INITRD", err) < 0 ||
	    conf_copy(c->cmdline, sizeof(c->cmdline), cfg, "LIBVIRT_CMDLINE", err) < 0 ||
	    conf_copy(c->console_log_dir, sizeof(c->console_log_dir), cfg, "LIBVIRT_CONSOLE_LOG_DIR",
		      err) < 0)
		return -1;
	if (!c->uri[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_URI is empty");
	if (!c->pool[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_POOL is empty");
	if (!c->network[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_NET is empty");
	if (!c->base_volume[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_VOL_NAME is empty");
	if (c->cpuset[0] && !libvirt_cpuset_valid(c->cpuset))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_CPUSET \"%.80s\" is not a CPU list like 0-3,8", c->cpuset);
	if (strcmp(c->domain_type, "kvm") != 0 && strcmp(c->domain_type, "qemu") != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_DOMAIN_TYPE \"%.20s\" is not kvm or qemu", c->domain_type);
	if (c->console_log_dir[0] && c->console_log_dir[0] != '/')
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_CONSOLE_LOG_DIR \"%.80s\" is not an absolute path", c->console_log_dir);
	if (!c->kernel[0] && (c->initrd[0] || c->cmdline[0]))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_INITRD and LIBVIRT_CMDLINE need LIBVIRT_KERNEL");
	return 0;
}

static int conf_numbers(struct libvirt_conf *c, const struct config *cfg, struct pp_err *err)
{
	int64_t disk = config_int(cfg, "LIBVIRT_ROOT_DISK_SIZE");

	c->vcpus = config_int(cfg, "LIBVIRT_CPU");
	c->memory_mib = config_int(cfg, "LIBVIRT_MEMORY");
	if (c->vcpus < 1 || c->vcpus > LIBVIRT_MAX_VCPUS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_CPU %lld is not between 1 and %d",
				  (long long)c->vcpus, LIBVIRT_MAX_VCPUS);
	if (c->memory_mib < 1 || c->memory_mib > LIBVIRT_MAX_MEMORY_MIB)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_MEMORY %lld MiB is not between 1 and %lld",
				  (long long)c->memory_mib, (long long)LIBVIRT_MAX_MEMORY_MIB);
	if (disk < 0 || disk > LIBVIRT_MAX_ROOT_DISK_GIB)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_ROOT_DISK_SIZE %lld GiB is not between 0 and %d",
				  (long long)disk, LIBVIRT_MAX_ROOT_DISK_GIB);
	if (disk == 0)
		disk = 10;   /* upstream: 0 means the default */
	c->root_disk_bytes = (uint64_t)disk * LIBVIRT_GIB;
	c->ip_timeout_ms = config_duration_ms(cfg, "LIBVIRT_IP_TIMEOUT");
	if (c->ip_timeout_ms == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_IP_TIMEOUT must be more than 0");
	return 0;
}

static int conf_tee(struct libvirt_conf *c, const struct config *cfg, struct pp_err *err)
{
	const char *ls = config_str(cfg, "LIBVIRT_LAUNCH_SECURITY");
	enum libvirt_tee tee;

	if (libvirt_tee_parse(ls, &tee) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "LIBVIRT_LAUNCH_SECURITY \"%.40s\" is not one of none, sev, sev-snp, tdx, "
				  "s390-pv (or empty)", ls);
	if (config_bool(cfg, "DISABLECVM")) {
		if (tee != LIBVIRT_TEE_NONE && tee != LIBVIRT_TEE_AUTO)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "LIBVIRT_LAUNCH_SECURITY=%s asks for a confidential VM but "
					  "DISABLECVM is true: set DISABLECVM=false", ls);
		tee = LIBVIRT_TEE_NONE;
	}
	c->tee = tee;
	return 0;
}

int libvirt_conf_load(struct libvirt_conf *c, const struct config *cfg, struct pp_err *err)
{
	memset(c, 0, sizeof(*c));
	if (conf_strings(c, cfg, err) < 0 || conf_numbers(c, cfg, err) < 0 || conf_tee(c, cfg, err) < 0)
		return -1;
	return 0;
}
