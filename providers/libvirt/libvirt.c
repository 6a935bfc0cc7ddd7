/*
 * The `libvirt` provider: pod VMs as libvirt domains on a local or remote libvirt host
 * (qemu:///system, qemu+ssh://, qemu+tcp://, and test:///default in tests).
 *
 * create: root volume over the base image, cidata ISO volume, domain defined and started, then
 * the address from the network's DHCP leases (or the guest agent), bounded and cancellable. A
 * failure at any step removes what this call made, by name, before returning. A domain of the
 * same name that is already there is reused when it is this sandbox's and running (a retried
 * StartVM), and is otherwise a clear ALREADY_EXISTS error.
 * delete: by UUID (the instance id) or by name; destroy, delete the volumes, undefine with NVRAM;
 * gone is success; another owner's domain is refused.
 * list: every domain whose <metadata> names this node's owner id.
 *
 * See libvirt_priv.h for the file map and the naming rule.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "lib/log.h"
#include "lib/util.h"

static struct libvirt_priv *lv_get(const struct provider *p)
{
	return provider_priv(p);
}

/* ---- lifecycle ---- */

static void lv_priv_free(struct libvirt_priv *lp)
{
	if (!lp)
		return;
	libvirt_conn_close(lp);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
}

static int lv_pool_exists(virConnectPtr c, const char *pool, struct pp_err *err)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);

	if (!p)
		return libvirt_err(err, PP_FAILED_PRECONDITION, "storage pool %s (LIBVIRT_POOL)", pool);
	virStoragePoolFree(p);
	return 0;
}

static int lv_init(struct provider *p, struct pp_err *err)
{
	struct libvirt_priv *lp = calloc(1, sizeof(*lp));
	virConnectPtr c = NULL;

	if (!lp)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	libvirt_lib_init();
	pthread_mutex_init(&lp->lock, NULL);
	if (libvirt_conf_load(&lp->conf, provider_config(p), err) < 0 ||
	    libvirt_conn_get(lp, &c, err) < 0 || libvirt_host_probe(c, &lp->host, err) < 0 ||
	    libvirt_tee_check(c, lp->conf.domain_type, lp->conf.tee, &lp->host, &lp->tee, err) < 0 ||
	    lv_pool_exists(c, lp->conf.pool, err) < 0)
		goto fail;
	libvirt_conn_put(c);
	log_info("libvirt provider ready", "uri=%s arch=%s libvirt=%lu launch_security=%s pool=%s network=%s",
		 lp->conf.uri, libvirt_arch_name(lp->host.arch), lp->host.lib_version,
		 libvirt_tee_name(lp->tee), lp->conf.pool, lp->conf.network);
	provider_set_priv(p, lp);
	return 0;
fail:
	libvirt_conn_put(c);
	lv_priv_free(lp);
	return -1;
}

/* CLOUD_CONFIG_VERIFY: the connection, the pool, the base volume and the network exist. */
static int lv_check(struct provider *p, struct pp_err *err)
{
	struct libvirt_priv *lp = lv_get(p);
	struct libvirt_base_info base;
	virStoragePoolPtr pool = NULL;
	virNetworkPtr net;
	virConnectPtr c;
	int rc = -1;

	if (libvirt_conn_get(lp, &c, err) < 0)
		return -1;
	if (libvirt_pool_open(c, lp->conf.pool, NULL, &pool, err) < 0 ||
	    libvirt_base_lookup(pool, lp->conf.pool, lp->conf.base_volume, &base, err) < 0)
		goto out;
	net = virNetworkLookupByName(c, lp->conf.network);
	if (!net) {
		libvirt_err(err, PP_FAILED_PRECONDITION, "network %s (LIBVIRT_NET)", lp->conf.network);
		goto out;
	}
	virNetworkFree(net);
	rc = 0;
out:
	if (pool)
		virStoragePoolFree(pool);
	libvirt_conn_put(c);
	return rc;
}

static void lv_destroy(struct provider *p)
{
	lv_priv_free(lv_get(p));
	provider_set_priv(p, NULL);
}

/* ---- domains ---- */

/* Our metadata of dom: 1 and *ret when present, 0 when the domain has none, -1 on error. */
static int lv_domain_meta(virDomainPtr dom, struct libvirt_domain_meta *ret, struct pp_err *err)
{
	const char *name = virDomainGetName(dom);   /* before: every call resets the last error */
	char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LIBVIRT_META_NS, 0);
	int rc;

	if (!xml) {
		if (libvirt_last_code() == VIR_ERR_NO_DOMAIN_METADATA)
			return 0;
		return libvirt_err(err, PP_UNAVAILABLE, "reading the metadata of domain %s",
				   name ? name : "?");
	}
	rc = libvirt_domain_meta_parse(xml, ret, NULL) == 0 ? 1 : 0;
	free(xml);
	return rc;
}

static int lv_domain_owned(const struct provider *p, virDomainPtr dom, struct libvirt_domain_meta *m,
			   struct pp_err *err)
{
	int rc = lv_domain_meta(dom, m, err);

	if (rc < 0)
		return -1;
	if (rc == 0)
		return pp_err_set(err, PP_PERMISSION_DENIED, "libvirt domain %s has no peer-pod metadata: "
				  "it was not created by this adaptor", virDomainGetName(dom));
	if (strcmp(m->owner, provider_owner(p)) != 0)
		return pp_err_set(err, PP_PERMISSION_DENIED, "libvirt domain %s belongs to owner %s, not to "
				  "this node", virDomainGetName(dom), m->owner);
	return 0;
}

static int lv_domain_disks_delete(virConnectPtr c, virDomainPtr dom, const char *name,
				  struct pp_err *err)
{
	char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	char **paths = NULL;
	int rc = 0;

	if (!xml)
		return libvirt_err(err, PP_UNAVAILABLE, "reading the XML of domain %s", name);
	if (libvirt_domain_xml_disks(xml, &paths, err) < 0) {
		free(xml);
		return -1;
	}
	for (char **p = paths; rc == 0 && *p; p++)
		rc = libvirt_volume_delete_path(c, *p, name, err);
	libvirt_strv_free(paths);
	free(xml);
	return rc;
}

static int lv_domain_undefine(virDomainPtr dom, const char *name, struct pp_err *err)
{
	if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_NVRAM) == 0)
		return 0;
	switch (libvirt_last_code()) {
	case VIR_ERR_NO_DOMAIN:
		return 0;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_INVALID_ARG:
		if (virDomainUndefine(dom) == 0 || libvirt_last_code() == VIR_ERR_NO_DOMAIN)
			return 0;
		break;
	default:
		break;
	}
	return libvirt_err(err, PP_UNAVAILABLE, "undefining domain %s", name);
}

/* Destroy if running, delete the volumes its disks use, undefine with NVRAM. */
static int lv_domain_teardown(virConnectPtr c, virDomainPtr dom, const char *name,
			      struct pp_err *err)
{
	if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0 &&
	    libvirt_last_code() != VIR_ERR_OPERATION_INVALID && libvirt_last_code() != VIR_ERR_NO_DOMAIN)
		return libvirt_err(err, PP_UNAVAILABLE, "stopping domain %s", name);
	if (lv_domain_disks_delete(c, dom, name, err) < 0)
		return -1;
	return lv_domain_undefine(dom, name, err);
}

/* Leftover volumes of an instance whose domain does not exist (a create that died early). */
static int lv_volumes_cleanup(const struct libvirt_priv *lp, virConnectPtr c, const char *name,
			      struct cancel *cancel, struct pp_err *err)
{
	virStoragePoolPtr pool;
	int rc;

	if (libvirt_pool_open(c, lp->conf.pool, cancel, &pool, err) < 0)
		return -1;
	rc = libvirt_volumes_delete_by_name(pool, name, err);
	virStoragePoolFree(pool);
	return rc;
}

/* ---- addresses ---- */

static bool lv_ip_usable(const virDomainIPAddress *a, int family)
{
	if (a->type != family || !a->addr || !a->addr[0])
		return false;
	if (family == VIR_IP_ADDR_TYPE_IPV4)
		return !str_has_prefix(a->addr, "127.");
	return !str_has_prefix(a->addr, "fe80:") && strcmp(a->addr, "::1") != 0;
}

/* IPv4 addresses first (what the forwarder is dialled at), then IPv6. */
static void lv_ips_add(virDomainInterfacePtr *ifs, int n, struct instance *ret)
{
	const int families[] = { VIR_IP_ADDR_TYPE_IPV4, VIR_IP_ADDR_TYPE_IPV6 };

	for (size_t f = 0; f < PP_ARRAY_SIZE(families); f++)
		for (int i = 0; i < n; i++)
			for (unsigned j = 0; j < ifs[i]->naddrs && ret->n_ips < PROVIDER_MAX_IPS; j++)
				if (lv_ip_usable(&ifs[i]->addrs[j], families[f]))
					pp_strlcpy(ret->ips[ret->n_ips++], ifs[i]->addrs[j].addr,
						   sizeof(ret->ips[0]));
}

static void lv_ips_collect(virDomainPtr dom, unsigned source, struct instance *ret)
{
	virDomainInterfacePtr *ifs = NULL;
	int n = virDomainInterfaceAddresses(dom, &ifs, source, 0);

	if (n < 0) {
		virResetLastError();   /* no lease yet, no agent yet: keep polling */
		return;
	}
	lv_ips_add(ifs, n, ret);
	for (int i = 0; i < n; i++)
		virDomainInterfaceFree(ifs[i]);
	free(ifs);
}

/* Polls the DHCP leases of the domain's network, then the guest agent, every
 * LIBVIRT_IP_POLL_MS until an address shows up, the timeout passes or the token fires. */
static int lv_ips_wait(const struct libvirt_priv *lp, virDomainPtr dom, const char *name,
		       struct cancel *cancel, struct instance *ret, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + lp->conf.ip_timeout_ms;

	for (;;) {
		uint64_t now;

		ret->n_ips = 0;
		lv_ips_collect(dom, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, ret);
		if (ret->n_ips == 0)
			lv_ips_collect(dom, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, ret);
		if (ret->n_ips > 0)
			return 0;
		if (libvirt_cancelled(cancel, "waiting for the address of domain", name, err) < 0)
			return -1;
		now = pp_monotonic_ms();
		if (now >= deadline)
			return pp_err_set(err, PP_DEADLINE_EXCEEDED, "domain %s has no IP address after %llu ms "
					  "(DHCP leases of network %s, guest agent; LIBVIRT_IP_TIMEOUT)", name,
					  (unsigned long long)lp->conf.ip_timeout_ms, lp->conf.network);
		cancel_sleep_ms(cancel, deadline - now < LIBVIRT_IP_POLL_MS ? deadline - now : LIBVIRT_IP_POLL_MS);
	}
}

static int lv_instance_fill(const struct libvirt_priv *lp, virDomainPtr dom, const char *name,
			    struct cancel *cancel, struct instance *ret, struct pp_err *err)
{
	struct instance inst;

	memset(&inst, 0, sizeof(inst));
	if (virDomainGetUUIDString(dom, inst.id) < 0)
		return libvirt_err(err, PP_UNAVAILABLE, "reading the UUID of domain %s", name);
	pp_strlcpy(inst.name, name, sizeof(inst.name));
	if (lv_ips_wait(lp, dom, name, cancel, &inst, err) < 0)
		return -1;
	*ret = inst;
	return 0;
}

/* ---- create ---- */

static bool lv_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > INSTANCE_NAME_MAX)
		return false;
	for (const char *s = name; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

static int lv_check_request(const struct create_request *req, struct pp_err *err)
{
	if (!req->instance_name || !lv_name_valid(req->instance_name))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name \"%.80s\" is not usable as a "
				  "libvirt domain name (letters, digits, '-', '.', '_'; at most %d)",
				  req->instance_name ? req->instance_name : "", INSTANCE_NAME_MAX);
	if (!req->sandbox_id || !req->sandbox_id[0] || strlen(req->sandbox_id) >= LIBVIRT_SANDBOX_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "sandbox id is empty or too long");
	if (req->user_data_len > LIBVIRT_MAX_USER_DATA)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "user-data of %zu bytes exceeds the %d bytes "
				  "the libvirt provider accepts", req->user_data_len, LIBVIRT_MAX_USER_DATA);
	if (req->spec.vcpus < 0 || req->spec.vcpus > LIBVIRT_MAX_VCPUS ||
	    req->spec.memory_mib < 0 || req->spec.memory_mib > LIBVIRT_MAX_MEMORY_MIB)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%lld vCPUs / %lld MiB is out of range",
				  (long long)req->spec.vcpus, (long long)req->spec.memory_mib);
	return 0;
}

/* 0: no such domain, go on; 1: ours and running, *ret filled; -1: error. */
static int lv_existing(const struct provider *p, virConnectPtr c, const struct create_request *req,
		       struct instance *ret, struct pp_err *err)
{
	virDomainPtr dom = virDomainLookupByName(c, req->instance_name);
	struct libvirt_domain_meta m;
	struct pp_err why = { 0 };
	int rc = -1;

	if (!dom)
		return libvirt_last_code() == VIR_ERR_NO_DOMAIN ? 0 :
		       libvirt_err(err, PP_UNAVAILABLE, "looking up domain %s", req->instance_name);
	if (lv_domain_owned(p, dom, &m, &why) < 0) {
		pp_err_set(err, why.code == PP_PERMISSION_DENIED ? PP_ALREADY_EXISTS : why.code,
			   "libvirt domain %s already exists: %s", req->instance_name, why.msg);
		goto out;
	}
	if (strcmp(m.sandbox_id, req->sandbox_id) != 0) {
		pp_err_set(err, PP_ALREADY_EXISTS, "libvirt domain %s already exists for sandbox %.64s, "
			   "not %.64s", req->instance_name, m.sandbox_id, req->sandbox_id);
		goto out;
	}
	if (virDomainIsActive(dom) != 1) {
		pp_err_set(err, PP_ALREADY_EXISTS, "libvirt domain %s of this sandbox already exists but "
			   "is not running: delete it first", req->instance_name);
		goto out;
	}
	if (lv_instance_fill(lv_get(p), dom, req->instance_name, req->cancel, ret, err) < 0)
		goto out;
	log_info("libvirt domain reused", "instance=%s id=%s ip=%s", ret->name, ret->id, ret->ips[0]);
	rc = 1;
out:
	virDomainFree(dom);
	return rc;
}

/* Everything a create builds, released by lv_create_free. */
struct lv_create {
	virStoragePoolPtr pool;
	virDomainPtr dom;
	uint8_t *iso;
	size_t iso_len;
	char *xml;
	char root_path[PATH_MAX];
	char cidata_path[PATH_MAX];
	char console_log[PATH_MAX];
	uint8_t measure[LIBVIRT_MEASURE_MAX];
	size_t measure_len;
	struct libvirt_base_info base;
	/* where the time went (ms), logged with "libvirt domain started" */
	uint64_t volumes_ms, upload_ms, define_ms, boot_ms, ip_ms;
};

static void lv_create_free(struct lv_create *cr)
{
	if (cr->pool)
		virStoragePoolFree(cr->pool);
	if (cr->dom)
		virDomainFree(cr->dom);
	free(cr->iso);
	free(cr->xml);
}

static int lv_measure(const struct libvirt_priv *lp, const struct create_request *req,
		      struct lv_create *cr, struct pp_err *err)
{
	bool found;

	if (lp->tee == LIBVIRT_TEE_SEV_SNP)
		cr->measure_len = LIBVIRT_SNP_HOST_DATA_SIZE;
	else if (lp->tee == LIBVIRT_TEE_TDX)
		cr->measure_len = LIBVIRT_TDX_MRCONFIGID_SIZE;
	else
		return 0;
	if (libvirt_initdata_measure(req->user_data, req->user_data_len, cr->measure_len, cr->measure,
				     &found, err) < 0)
		return -1;
	if (!found)
		cr->measure_len = 0;   /* no initdata: the field stays libvirt's default (zeros) */
	return 0;
}

static void lv_domain_def(const struct provider *p, const struct create_request *req,
			  const struct lv_create *cr, struct libvirt_domain_def *d)
{
	const struct libvirt_priv *lp = lv_get(p);

	memset(d, 0, sizeof(*d));
	d->name = req->instance_name;
	d->owner = provider_owner(p);
	d->sandbox_id = req->sandbox_id;
	d->pod_name = req->pod_name;
	d->pod_namespace = req->pod_namespace;
	d->created = pp_unix_time();
	d->arch = lp->host.arch;
	d->domain_type = lp->conf.domain_type;
	d->machine = lp->host.machine;
	d->emulator = lp->host.emulator;
	d->vcpus = req->spec.vcpus > 0 ? req->spec.vcpus : lp->conf.vcpus;
	d->memory_mib = req->spec.memory_mib > 0 ? req->spec.memory_mib : lp->conf.memory_mib;
	d->cpuset = lp->conf.cpuset;
	d->firmware = lp->conf.firmware;
	d->kernel = lp->conf.kernel;
	d->initrd = lp->conf.initrd;
	d->cmdline = lp->conf.cmdline;
	d->console_log = cr->console_log;
	d->root_path = cr->root_path;
	d->cidata_path = cr->cidata_path;
	d->network = lp->conf.network;
	d->tee = lp->tee;
	d->measure = cr->measure_len ? cr->measure : NULL;
	d->measure_len = cr->measure_len;
	d->sev_cbitpos = lp->host.sev_cbitpos;
	d->sev_reduced_phys_bits = lp->host.sev_reduced_phys_bits;
}

static int lv_create_volumes(const struct libvirt_priv *lp, virConnectPtr c,
			     const struct create_request *req, struct lv_create *cr, struct pp_err *err)
{
	const char *image = req->spec.image && req->spec.image[0] ? req->spec.image : lp->conf.base_volume;
	const char *name = req->instance_name;
	uint64_t t0 = pp_monotonic_ms(), t1;

	if (libvirt_pool_open(c, lp->conf.pool, req->cancel, &cr->pool, err) < 0 ||
	    libvirt_base_lookup(cr->pool, lp->conf.pool, image, &cr->base, err) < 0 ||
	    libvirt_volumes_delete_by_name(cr->pool, name, err) < 0 ||   /* a crashed create's */
	    libvirt_cancelled(req->cancel, "creating libvirt instance", name, err) < 0 ||
	    libvirt_root_create(cr->pool, name, lp->conf.root_disk_bytes, &cr->base, cr->root_path,
				sizeof(cr->root_path), err) < 0 ||
	    libvirt_cidata_build(req->user_data, req->user_data_len, name, name, &cr->iso,
				 &cr->iso_len, err) < 0)
		return -1;
	t1 = pp_monotonic_ms();
	if (libvirt_cidata_create(c, cr->pool, name, cr->iso, cr->iso_len, req->cancel, cr->cidata_path,
				  sizeof(cr->cidata_path), err) < 0)
		return -1;
	cr->upload_ms = pp_monotonic_ms() - t1;
	cr->volumes_ms = pp_monotonic_ms() - t0;
	return 0;
}

static int lv_create_domain(const struct provider *p, virConnectPtr c,
			    const struct create_request *req, struct lv_create *cr, struct pp_err *err)
{
	const struct libvirt_priv *lp = lv_get(p);
	struct libvirt_domain_def d;
	uint64_t t0 = pp_monotonic_ms(), t1;

	if (lp->conf.console_log_dir[0] &&
	    snprintf(cr->console_log, sizeof(cr->console_log), "%s/%s" LIBVIRT_CONSOLE_SUFFIX,
		     lp->conf.console_log_dir, req->instance_name) >= (int)sizeof(cr->console_log))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "LIBVIRT_CONSOLE_LOG_DIR %s is too long",
				  lp->conf.console_log_dir);
	lv_domain_def(p, req, cr, &d);
	if (libvirt_domain_xml_build(&d, &cr->xml, err) < 0 ||
	    libvirt_cancelled(req->cancel, "creating libvirt instance", d.name, err) < 0)
		return -1;
	cr->dom = virDomainDefineXML(c, cr->xml);
	if (!cr->dom)
		return libvirt_err(err, libvirt_last_code() == VIR_ERR_XML_ERROR ||
				   libvirt_last_code() == VIR_ERR_CONFIG_UNSUPPORTED ? PP_FAILED_PRECONDITION :
				   PP_UNAVAILABLE, "defining domain %s", d.name);
	t1 = pp_monotonic_ms();
	if (virDomainCreate(cr->dom) < 0)
		return libvirt_err(err, PP_UNAVAILABLE, "starting domain %s", d.name);
	cr->define_ms = t1 - t0;
	cr->boot_ms = pp_monotonic_ms() - t1;
	return 0;
}

/* A failed create leaves nothing behind: the domain it defined and the volumes named after it. */
static void lv_create_cleanup(const struct libvirt_priv *lp, virConnectPtr c, struct lv_create *cr,
			      const char *name)
{
	struct pp_err cerr = { 0 };

	if (cr->dom && lv_domain_teardown(c, cr->dom, name, &cerr) < 0)
		log_warn("libvirt cleanup after a failed create", "instance=%s error=\"%s\"", name, cerr.msg);
	if (lv_volumes_cleanup(lp, c, name, NULL, &cerr) < 0)
		log_warn("libvirt cleanup after a failed create", "instance=%s error=\"%s\"", name, cerr.msg);
}

static int lv_create(struct provider *p, const struct create_request *req, struct instance *ret,
		     struct pp_err *err)
{
	struct libvirt_priv *lp = lv_get(p);
	struct lv_create cr;
	virConnectPtr c;
	int rc;

	memset(&cr, 0, sizeof(cr));
	if (lv_check_request(req, err) < 0 || libvirt_conn_get(lp, &c, err) < 0)
		return -1;
	rc = lv_existing(p, c, req, ret, err);
	if (rc != 0) {
		libvirt_conn_put(c);
		return rc < 0 ? -1 : 0;
	}
	if (lv_measure(lp, req, &cr, err) < 0)
		goto fail_early;
	if (lv_create_volumes(lp, c, req, &cr, err) < 0 || lv_create_domain(p, c, req, &cr, err) < 0)
		goto fail;
	cr.ip_ms = pp_monotonic_ms();
	if (lv_instance_fill(lp, cr.dom, req->instance_name, req->cancel, ret, err) < 0)
		goto fail;
	cr.ip_ms = pp_monotonic_ms() - cr.ip_ms;
	log_info("libvirt domain started", "instance=%s id=%s ip=%s launch_security=%s volumes_ms=%llu "
		 "upload_ms=%llu define_ms=%llu start_ms=%llu ip_ms=%llu", ret->name, ret->id, ret->ips[0],
		 libvirt_tee_name(lp->tee), (unsigned long long)cr.volumes_ms,
		 (unsigned long long)cr.upload_ms, (unsigned long long)cr.define_ms,
		 (unsigned long long)cr.boot_ms, (unsigned long long)cr.ip_ms);
	lv_create_free(&cr);
	libvirt_conn_put(c);
	return 0;
fail:
	lv_create_cleanup(lp, c, &cr, req->instance_name);
fail_early:
	lv_create_free(&cr);
	libvirt_conn_put(c);
	return -1;
}

/* ---- delete ---- */

/* The domain by UUID (the instance id) or, without one, by name; NULL with *ret_gone when it is
 * not there. */
static virDomainPtr lv_lookup(virConnectPtr c, const char *id, const char *name, bool *ret_gone,
			      struct pp_err *err)
{
	virDomainPtr dom = id[0] ? virDomainLookupByUUIDString(c, id) : virDomainLookupByName(c, name);

	*ret_gone = false;
	if (dom)
		return dom;
	if (libvirt_last_code() == VIR_ERR_NO_DOMAIN)
		*ret_gone = true;
	else if (libvirt_last_code() == VIR_ERR_INVALID_ARG)
		pp_err_set(err, PP_INVALID_ARGUMENT, "instance id %.80s is not a libvirt domain UUID", id);
	else
		libvirt_err(err, PP_UNAVAILABLE, "looking up domain %s", id[0] ? id : name);
	return NULL;
}

/* The domain is gone; leftover volumes named after it go too, unless another domain of that
 * name exists (then they are that domain's). */
static int lv_delete_leftovers(const struct libvirt_priv *lp, virConnectPtr c, const char *name,
			       struct cancel *cancel, struct pp_err *err)
{
	virDomainPtr other;

	if (!name[0])
		return 0;
	other = virDomainLookupByName(c, name);
	if (other) {
		virDomainFree(other);
		return 0;
	}
	return lv_volumes_cleanup(lp, c, name, cancel, err);
}

static int lv_delete(struct provider *p, const char *id, const char *name, struct cancel *cancel,
		     struct pp_err *err)
{
	struct libvirt_priv *lp = lv_get(p);
	struct libvirt_domain_meta m;
	char dname[INSTANCE_NAME_MAX + 1];
	virDomainPtr dom;
	virConnectPtr c;
	bool gone;
	int rc = -1;

	id = id ? id : "";
	name = name ? name : "";
	if (!id[0] && !name[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "deleting a libvirt instance needs its id or name");
	if (libvirt_conn_get(lp, &c, err) < 0)
		return -1;
	dom = lv_lookup(c, id, name, &gone, err);
	if (!dom) {
		rc = gone ? lv_delete_leftovers(lp, c, name, cancel, err) : -1;
		goto out;
	}
	pp_strlcpy(dname, virDomainGetName(dom) ? virDomainGetName(dom) : name, sizeof(dname));
	if (lv_domain_owned(p, dom, &m, err) < 0 ||
	    libvirt_cancelled(cancel, "deleting libvirt domain", dname, err) < 0 ||
	    lv_domain_teardown(c, dom, dname, err) < 0 ||
	    lv_volumes_cleanup(lp, c, dname, cancel, err) < 0)
		goto out;
	log_info("libvirt domain deleted", "instance=%s id=%s", dname, id);
	rc = 0;
out:
	if (dom)
		virDomainFree(dom);
	libvirt_conn_put(c);
	return rc;
}

/* ---- list ---- */

static int lv_list_one(const struct provider *p, virDomainPtr dom, struct owned_instance_list *out,
		       struct pp_err *err)
{
	struct libvirt_domain_meta m;
	struct owned_instance it;
	int rc = lv_domain_meta(dom, &m, err);

	if (rc <= 0)
		return rc == 0 ? 0 : (libvirt_last_code() == VIR_ERR_NO_DOMAIN ? 0 : -1);
	if (strcmp(m.owner, provider_owner(p)) != 0)
		return 0;
	memset(&it, 0, sizeof(it));
	if (virDomainGetUUIDString(dom, it.id) < 0)
		return 0;   /* vanished meanwhile */
	pp_strlcpy(it.name, virDomainGetName(dom) ? virDomainGetName(dom) : "", sizeof(it.name));
	pp_strlcpy(it.sandbox_id, m.sandbox_id, sizeof(it.sandbox_id));
	it.created_unix = m.created;
	if (owned_instance_list_add(out, &it) < 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing libvirt domains");
	return 0;
}

static int lv_list(struct provider *p, struct owned_instance_list *ret, struct cancel *cancel,
		   struct pp_err *err)
{
	struct owned_instance_list found = { NULL, 0 };
	virDomainPtr *doms = NULL;
	virConnectPtr c;
	int n, rc = 0;

	if (libvirt_conn_get(lv_get(p), &c, err) < 0)
		return -1;
	n = virConnectListAllDomains(c, &doms, 0);
	if (n < 0)
		rc = libvirt_err(err, PP_UNAVAILABLE, "listing libvirt domains");
	for (int i = 0; i < n; i++) {
		if (rc == 0 && libvirt_cancelled(cancel, "listing libvirt domains at", lv_get(p)->conf.uri,
						 err) < 0)
			rc = -1;
		if (rc == 0)
			rc = lv_list_one(p, doms[i], &found, err);
		virDomainFree(doms[i]);
	}
	free(doms);
	libvirt_conn_put(c);
	if (rc < 0) {
		owned_instance_list_free(&found);
		return -1;
	}
	*ret = found;
	return 0;
}

const struct provider_ops libvirt_provider_ops = {
	.name = "libvirt",
	.options = libvirt_options,
	.max_user_data = LIBVIRT_MAX_USER_DATA,
	.init = lv_init,
	.check = lv_check,
	.create_instance = lv_create,
	.delete_instance = lv_delete,
	.list_instances = lv_list,
	.destroy = lv_destroy,
};
