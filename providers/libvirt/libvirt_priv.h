/*
 * Internals shared by the files of the `libvirt` provider (and its unit tests).
 *
 * The files, as in every provider (STYLE.md):
 *   libvirt.c             the provider_ops table and the lifecycle calls (create/delete/list)
 *   libvirt_conf.c        options (upstream's flags and env names) and their checks
 *   libvirt_conn.c        the shared connection (opened once, re-opened when it drops), errors
 *   libvirt_host.c        host facts: architecture, machine, emulator, confidential support
 *   libvirt_domain_xml.c  domain XML built with libxml2's tree API; metadata and disks read back
 *   libvirt_volume.c      root volume (qcow2 over the base image), cidata volume upload
 *   libvirt_cidata.c      the cloud-init `cidata` ISO image, built in memory with libisofs
 *   libvirt_initdata.c    the initdata digest bound into the launch measurement
 *
 * One idea: the domain is the instance. Its name is the instance name, its id the domain UUID,
 * and its <metadata> element (namespace LIBVIRT_META_NS) carries the owner id and the sandbox
 * id, so list_instances finds exactly this node's domains. Its volumes are named
 * <name>-root.qcow2 and <name>-cloudinit.iso, so a half-created instance is cleaned up by name.
 */
#ifndef PP_LIBVIRT_PRIV_H
#define PP_LIBVIRT_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <libxml/tree.h>

#include "adaptor/provider.h"
#include "lib/cancel.h"
#include "lib/config.h"
#include "lib/err.h"

/* user-data travels in an ISO volume; 256 KiB is far above any rendered #cloud-config (apf.json
 * with certificates plus an initdata document) and keeps the in-memory ISO small. */
#define LIBVIRT_MAX_USER_DATA (256 * 1024)
#define LIBVIRT_META_NS "https://confidentialcontainers.org/peerpod/libvirt/1"
#define LIBVIRT_META_PREFIX "peerpod"
#define LIBVIRT_DESCRIPTION "This Virtual Machine is the peer-pod VM"
#define LIBVIRT_ROOT_SUFFIX "-root.qcow2"
#define LIBVIRT_CIDATA_SUFFIX "-cloudinit.iso"
#define LIBVIRT_CONSOLE_SUFFIX "-console.log"
#define LIBVIRT_VOL_NAME_MAX (INSTANCE_NAME_MAX + 32)
#define LIBVIRT_GIB (1024ULL * 1024 * 1024)
#define LIBVIRT_MAX_ROOT_DISK_GIB (1024 * 1024)   /* 1 PiB: keeps GiB -> bytes far from overflow */
#define LIBVIRT_MAX_VCPUS 4096
#define LIBVIRT_MAX_MEMORY_MIB (16LL * 1024 * 1024)
#define LIBVIRT_IP_POLL_MS 250      /* a lease shows up ~0.3 s before the forwarder listens */
#define LIBVIRT_REFRESH_TRIES 10
#define LIBVIRT_REFRESH_RETRY_MS 1000
#define LIBVIRT_UPLOAD_CHUNK (64 * 1024)
#define LIBVIRT_XML_MAX (4 * 1024 * 1024)          /* domain/volume/caps XML we parse */
#define LIBVIRT_SNP_HOST_DATA_SIZE 32
#define LIBVIRT_TDX_MRCONFIGID_SIZE 48
#define LIBVIRT_MEASURE_MAX 48
#define LIBVIRT_OWNER_MAX 256
#define LIBVIRT_SANDBOX_MAX 128

enum libvirt_arch { LIBVIRT_ARCH_X86_64 = 0, LIBVIRT_ARCH_AARCH64, LIBVIRT_ARCH_S390X };

enum libvirt_tee {
	LIBVIRT_TEE_NONE = 0,
	LIBVIRT_TEE_SEV,
	LIBVIRT_TEE_SEV_SNP,
	LIBVIRT_TEE_TDX,
	LIBVIRT_TEE_S390_PV,
	LIBVIRT_TEE_AUTO,   /* option value "" with DISABLECVM=false: s390-pv on s390x, else none */
};

/* The options, read once by init; read-only afterwards. */
struct libvirt_conf {
	char uri[1024];
	char pool[256];
	char network[256];
	char base_volume[256];
	char firmware[PATH_MAX];
	char cpuset[256];
	char domain_type[16];      /* kvm | qemu */
	char kernel[PATH_MAX];     /* direct kernel boot: "" = boot the root disk */
	char initrd[PATH_MAX];
	char cmdline[1024];
	char console_log_dir[PATH_MAX]; /* serial console logs on the libvirt host: "" = none */
	int64_t vcpus;
	int64_t memory_mib;
	uint64_t root_disk_bytes;
	enum libvirt_tee tee;      /* LIBVIRT_TEE_AUTO until the host arch is known */
	uint64_t ip_timeout_ms;
};

/* What init learnt from the host; read-only afterwards. */
struct libvirt_host {
	enum libvirt_arch arch;
	char machine[128];         /* "" = libvirt's default */
	char emulator[PATH_MAX];   /* "" = libvirt's default */
	unsigned long lib_version; /* major * 1000000 + minor * 1000 + micro */
	unsigned sev_cbitpos;      /* from domain capabilities (SEV family), 0 = unknown */
	unsigned sev_reduced_phys_bits;
};

struct libvirt_priv {
	struct libvirt_conf conf;  /* read-only after init */
	struct libvirt_host host;  /* read-only after init */
	enum libvirt_tee tee;      /* effective launch security; read-only after init */
	pthread_mutex_t lock;      /* guards conn (only the pointer swap: never held across a call) */
	virConnectPtr conn;        /* guarded by lock; NULL until connected */
};

extern const struct config_option libvirt_options[];

/* ---- libvirt_conf.c ---- */
int libvirt_conf_load(struct libvirt_conf *c, const struct config *cfg, struct pp_err *err);
/* "^(\d+(-\d+)?)(,\d+(-\d+)?)*$" (upstream's cpuset check). */
bool libvirt_cpuset_valid(const char *s);
const char *libvirt_tee_name(enum libvirt_tee tee);
int libvirt_tee_parse(const char *s, enum libvirt_tee *ret);
const char *libvirt_arch_name(enum libvirt_arch arch);

/* ---- libvirt_conn.c ---- */
/* Silences libvirt's default stderr error printer and initialises the library (once). */
void libvirt_lib_init(void);
/* A reference to the shared connection, (re)opened when absent or dead. Release it with
 * libvirt_conn_put. Never holds lp->lock across libvirt I/O. */
int libvirt_conn_get(struct libvirt_priv *lp, virConnectPtr *ret, struct pp_err *err);
void libvirt_conn_put(virConnectPtr c);
void libvirt_conn_close(struct libvirt_priv *lp);
/* Like pp_err_set, appending ": <libvirt's last error message of this thread>". */
int libvirt_err(struct pp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int libvirt_last_code(void);     /* virGetLastErrorCode() of this thread */
/* True when the connection is the in-process test driver (test:///...). */
bool libvirt_conn_is_test(virConnectPtr c);
/* Fails with CANCELLED naming what was being done when the token fired. */
int libvirt_cancelled(struct cancel *cancel, const char *what, const char *name, struct pp_err *err);

/* ---- libvirt_host.c ---- */
/* Architecture (virNodeGetInfo), machine and emulator (capabilities), library version. */
int libvirt_host_probe(virConnectPtr c, struct libvirt_host *ret, struct pp_err *err);
/* Resolves LIBVIRT_TEE_AUTO and checks that the confidential launch type fits the host arch,
 * the libvirt version and the domain capabilities; the error names what is missing. */
int libvirt_tee_check(virConnectPtr c, const char *domain_type, enum libvirt_tee requested,
		      struct libvirt_host *host, enum libvirt_tee *ret, struct pp_err *err);
/* Pure parts, for tests: capabilities and domain capabilities XML. */
int libvirt_caps_machine(const char *caps_xml, const char *arch, const char *machine,
			 char *ret_machine, size_t msize, char *ret_emulator, size_t esize,
			 struct pp_err *err);
int libvirt_domcaps_check(const char *domcaps_xml, enum libvirt_tee tee, unsigned *ret_cbitpos,
			  unsigned *ret_rpb, struct pp_err *err);
/* Minimum libvirt version for a launch type (major * 1000000 + minor * 1000 + micro). */
unsigned long libvirt_tee_min_version(enum libvirt_tee tee);

/* ---- libvirt_domain_xml.c ---- */
/* Everything a domain is built from: plain data, so golden tests need no libvirt. */
struct libvirt_domain_def {
	const char *name;
	const char *owner;
	const char *sandbox_id;
	const char *pod_name;
	const char *pod_namespace;
	int64_t created;            /* unix seconds */
	enum libvirt_arch arch;
	const char *domain_type;    /* "kvm" | "qemu" */
	const char *machine;        /* "" = libvirt's default */
	const char *emulator;       /* "" = libvirt's default */
	int64_t vcpus;
	int64_t memory_mib;
	const char *cpuset;         /* "" = none */
	const char *firmware;       /* x86_64: loader path, "" = BIOS (or autoselect for a TEE) */
	const char *kernel;         /* "" = boot the root disk */
	const char *initrd;
	const char *cmdline;
	const char *console_log;    /* serial console log file on the host (virtlogd), "" = none */
	const char *root_path;
	const char *cidata_path;
	const char *network;
	enum libvirt_tee tee;       /* never AUTO here */
	const uint8_t *measure;     /* SNP host data / TDX MRCONFIGID, already sized; NULL = none */
	size_t measure_len;
	unsigned sev_cbitpos;       /* 0 = leave to libvirt */
	unsigned sev_reduced_phys_bits;
};
int libvirt_domain_xml_build(const struct libvirt_domain_def *d, char **ret_xml, struct pp_err *err);

struct libvirt_domain_meta {
	char owner[LIBVIRT_OWNER_MAX];
	char sandbox_id[LIBVIRT_SANDBOX_MAX];
	int64_t created;
};
/* Parses the element virDomainGetMetadata returns for LIBVIRT_META_NS. */
int libvirt_domain_meta_parse(const char *xml, struct libvirt_domain_meta *ret, struct pp_err *err);
/* The file sources of the domain's disks (<disk type='file'><source file=...>). *ret is a
 * NULL-terminated array of strings; free with libvirt_strv_free. */
int libvirt_domain_xml_disks(const char *xml, char ***ret, struct pp_err *err);
void libvirt_strv_free(char **v);
/* XML helpers for what libvirt hands back: parsed without network access or entity
 * substitution, bounded by LIBVIRT_XML_MAX; `what` names the document in errors. */
xmlDocPtr libvirt_xml_parse(const char *xml, const char *what, struct pp_err *err);
/* String value of an XPath expression (first node's content, or a string() result).
 * Returns 1 and fills out when found and non-empty, 0 when absent, -1 when too long. */
int libvirt_xpath_str(xmlDocPtr doc, const char *expr, char *out, size_t size);
bool libvirt_xpath_exists(xmlDocPtr doc, const char *expr);

/* ---- libvirt_volume.c ---- */
struct libvirt_base_info {
	uint64_t capacity;
	char path[PATH_MAX];
	char format[32];
};
/* Pure parts, for tests. */
int libvirt_volume_xml_parse(const char *xml, struct libvirt_base_info *ret, struct pp_err *err);
int libvirt_volume_xml_build(const char *name, uint64_t capacity, const char *format,
			     const char *backing_path, const char *backing_format, char **ret_xml,
			     struct pp_err *err);
uint64_t libvirt_root_capacity(uint64_t configured, uint64_t base);
/* Pool lookup (missing = FAILED_PRECONDITION naming it) and refresh (bounded retries). */
int libvirt_pool_open(virConnectPtr c, const char *pool, struct cancel *cancel,
		      virStoragePoolPtr *ret, struct pp_err *err);
/* The base volume (NOT_FOUND naming volume and pool). */
int libvirt_base_lookup(virStoragePoolPtr pool, const char *pool_name, const char *volume,
			struct libvirt_base_info *ret, struct pp_err *err);
/* <name>-root.qcow2, backed by the base; *ret_path receives its path. */
int libvirt_root_create(virStoragePoolPtr pool, const char *name, uint64_t capacity,
			const struct libvirt_base_info *base, char *ret_path, size_t size,
			struct pp_err *err);
/* <name>-cloudinit.iso holding iso; uploaded with a stream (cancellable between chunks). */
int libvirt_cidata_create(virConnectPtr c, virStoragePoolPtr pool, const char *name,
			  const uint8_t *iso, size_t len, struct cancel *cancel, char *ret_path,
			  size_t size, struct pp_err *err);
/* Deletes <name>-root.qcow2 and <name>-cloudinit.iso from the pool; missing ones are fine. */
int libvirt_volumes_delete_by_name(virStoragePoolPtr pool, const char *name, struct pp_err *err);
/* Deletes the volume at path if it exists and its name starts with "<name>-". */
int libvirt_volume_delete_path(virConnectPtr c, const char *path, const char *name,
			       struct pp_err *err);

/* ---- libvirt_cidata.c ---- */
/* An ISO 9660 image, volume id "cidata", with user-data, meta-data (instance-id and
 * local-hostname) and an empty vendor-data. *ret is malloc'd. */
int libvirt_cidata_build(const char *user_data, size_t len, const char *instance_id,
			 const char *hostname, uint8_t **ret, size_t *ret_len, struct pp_err *err);

/* ---- libvirt_initdata.c ---- */
/* Finds /run/peerpod/initdata in the #cloud-config text, decodes it (base64 of gzip of TOML),
 * digests the TOML with its `algorithm` and fits the digest into `size` bytes (truncated, or
 * zero-padded at the end). *ret_found = false (and out zeroed) when there is no initdata. */
int libvirt_initdata_measure(const char *user_data, size_t len, size_t size, uint8_t *out,
			     bool *ret_found, struct pp_err *err);

#endif
