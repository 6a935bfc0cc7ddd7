/*
 * The two volumes of an instance, in the configured storage pool:
 *   <name>-root.qcow2      qcow2 over the base volume (<backingStore>), mode 0644, capacity
 *                          max(LIBVIRT_ROOT_DISK_SIZE, base capacity)
 *   <name>-cloudinit.iso   raw, the cidata ISO, uploaded through a libvirt stream
 * Both are named from the instance name, so a create that died half-way is cleaned up by name.
 * Deleting by path (what a domain's disks point at) only ever removes a volume whose name starts
 * with "<instance name>-": the base volume, shared by every VM, is never a candidate.
 *
 * The test driver (test:///default) has no volume upload; there the cidata volume stays empty,
 * which is all a driver without real storage can offer.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "lib/log.h"
#include "lib/util.h"

uint64_t libvirt_root_capacity(uint64_t configured, uint64_t base)
{
	return configured > base ? configured : base;
}

static int vol_name(char *out, size_t size, const char *name, const char *suffix, struct pp_err *err)
{
	if (snprintf(out, size, "%s%s", name, suffix) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "volume name %s%s is too long", name, suffix);
	return 0;
}

int libvirt_volume_xml_parse(const char *xml, struct libvirt_base_info *ret, struct pp_err *err)
{
	struct libvirt_base_info b;
	xmlDocPtr doc = libvirt_xml_parse(xml, "base volume XML", err);
	char cap[32];
	int rc = -1;

	if (!doc)
		return -1;
	memset(&b, 0, sizeof(b));
	if (libvirt_xpath_str(doc, "/volume/capacity", cap, sizeof(cap)) != 1 ||
	    parse_uint64(cap, &b.capacity) < 0) {
		pp_err_set(err, PP_INTERNAL, "base volume XML has no usable <capacity>");
		goto out;
	}
	if (libvirt_xpath_str(doc, "/volume/target/path", b.path, sizeof(b.path)) != 1) {
		pp_err_set(err, PP_INTERNAL, "base volume XML has no usable <target><path>");
		goto out;
	}
	if (libvirt_xpath_str(doc, "string(/volume/target/format/@type)", b.format, sizeof(b.format)) != 1)
		snprintf(b.format, sizeof(b.format), "raw");
	*ret = b;
	rc = 0;
out:
	xmlFreeDoc(doc);
	return rc;
}

static void vx_text(xmlNodePtr parent, const char *name, const char *text, bool *failed)
{
	if (!parent || !xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text))
		*failed = true;
}

static xmlNodePtr vx_format(xmlNodePtr parent, const char *format, bool *failed)
{
	xmlNodePtr f = parent ? xmlNewChild(parent, NULL, BAD_CAST "format", NULL) : NULL;

	if (!f || !xmlNewProp(f, BAD_CAST "type", BAD_CAST format))
		*failed = true;
	return f;
}

int libvirt_volume_xml_build(const char *name, uint64_t capacity, const char *format,
			     const char *backing_path, const char *backing_format, char **ret_xml,
			     struct pp_err *err)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr vol = doc ? xmlNewNode(NULL, BAD_CAST "volume") : NULL;
	xmlNodePtr target, perms, backing, cap;
	xmlBufferPtr out = NULL;
	char num[32];
	bool failed = !vol;
	int rc = -1;

	if (vol) {
		xmlDocSetRootElement(doc, vol);
		xmlNewProp(vol, BAD_CAST "type", BAD_CAST "file");
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)capacity);
	vx_text(vol, "name", name, &failed);
	cap = vol ? xmlNewTextChild(vol, NULL, BAD_CAST "capacity", BAD_CAST num) : NULL;
	if (!cap || !xmlNewProp(cap, BAD_CAST "unit", BAD_CAST "bytes"))
		failed = true;
	target = vol ? xmlNewChild(vol, NULL, BAD_CAST "target", NULL) : NULL;
	vx_format(target, format, &failed);
	perms = target ? xmlNewChild(target, NULL, BAD_CAST "permissions", NULL) : NULL;
	vx_text(perms, "mode", "0644", &failed);
	if (backing_path) {
		backing = xmlNewChild(vol, NULL, BAD_CAST "backingStore", NULL);
		vx_text(backing, "path", backing_path, &failed);
		vx_format(backing, backing_format, &failed);
	}
	out = failed ? NULL : xmlBufferCreate();
	if (!out || xmlNodeDump(out, doc, vol, 0, 1) < 0 || !(*ret_xml = strdup((const char *)xmlBufferContent(out))))
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building volume XML for %s", name);
	else
		rc = 0;
	if (out)
		xmlBufferFree(out);
	xmlFreeDoc(doc);
	return rc;
}

int libvirt_pool_open(virConnectPtr c, const char *pool, struct cancel *cancel,
		      virStoragePoolPtr *ret, struct pp_err *err)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);

	if (!p)
		return libvirt_err(err, libvirt_last_code() == VIR_ERR_NO_STORAGE_POOL ?
				   PP_FAILED_PRECONDITION : PP_UNAVAILABLE,
				   "storage pool %s (LIBVIRT_POOL)", pool);
	/* A refresh fails while the pool has jobs running (another VM's volume being built). */
	for (int i = 0;; i++) {
		if (virStoragePoolRefresh(p, 0) == 0)
			break;
		if (i + 1 == LIBVIRT_REFRESH_TRIES || cancel_sleep_ms(cancel, LIBVIRT_REFRESH_RETRY_MS)) {
			if (cancel_fired(cancel))
				pp_err_set(err, PP_CANCELLED, "refreshing storage pool %s: %s", pool,
					   cancel_reason_text(cancel_why(cancel)));
			else
				libvirt_err(err, PP_UNAVAILABLE, "refreshing storage pool %s", pool);
			virStoragePoolFree(p);
			return -1;
		}
	}
	*ret = p;
	return 0;
}

int libvirt_base_lookup(virStoragePoolPtr pool, const char *pool_name, const char *volume,
			struct libvirt_base_info *ret, struct pp_err *err)
{
	virStorageVolPtr v = virStorageVolLookupByName(pool, volume);
	char *xml;
	int rc;

	if (!v)
		return libvirt_err(err, libvirt_last_code() == VIR_ERR_NO_STORAGE_VOL ? PP_NOT_FOUND :
				   PP_UNAVAILABLE, "base volume %s in storage pool %s", volume, pool_name);
	xml = virStorageVolGetXMLDesc(v, 0);
	virStorageVolFree(v);
	if (!xml)
		return libvirt_err(err, PP_UNAVAILABLE, "reading base volume %s", volume);
	rc = libvirt_volume_xml_parse(xml, ret, err);
	free(xml);
	return rc;
}

static int vol_create(virStoragePoolPtr pool, const char *xml, const char *vname, char *ret_path,
		      size_t size, virStorageVolPtr *ret_vol, struct pp_err *err)
{
	virStorageVolPtr v = virStorageVolCreateXML(pool, xml, 0);
	char *path;

	if (!v)
		return libvirt_err(err, PP_UNAVAILABLE, "creating volume %s", vname);
	path = virStorageVolGetPath(v);
	if (!path || snprintf(ret_path, size, "%s", path) >= (int)size) {
		free(path);
		virStorageVolFree(v);
		return pp_err_set(err, PP_INTERNAL, "volume %s has no usable path", vname);
	}
	free(path);
	if (ret_vol)
		*ret_vol = v;
	else
		virStorageVolFree(v);
	return 0;
}

int libvirt_root_create(virStoragePoolPtr pool, const char *name, uint64_t capacity,
			const struct libvirt_base_info *base, char *ret_path, size_t size,
			struct pp_err *err)
{
	char vname[LIBVIRT_VOL_NAME_MAX];
	char *xml = NULL;
	int rc;

	if (vol_name(vname, sizeof(vname), name, LIBVIRT_ROOT_SUFFIX, err) < 0 ||
	    libvirt_volume_xml_build(vname, libvirt_root_capacity(capacity, base->capacity), "qcow2",
				     base->path, base->format, &xml, err) < 0)
		return -1;
	rc = vol_create(pool, xml, vname, ret_path, size, NULL, err);
	free(xml);
	return rc;
}

static int cidata_upload(virConnectPtr c, virStorageVolPtr v, const char *vname, const uint8_t *iso,
			 size_t len, struct cancel *cancel, struct pp_err *err)
{
	virStreamPtr st = virStreamNew(c, 0);
	size_t off = 0;

	if (!st)
		return libvirt_err(err, PP_UNAVAILABLE, "opening a stream for volume %s", vname);
	if (virStorageVolUpload(v, st, 0, len, 0) < 0) {
		if (libvirt_last_code() == VIR_ERR_NO_SUPPORT && libvirt_conn_is_test(c)) {
			log_debug("test driver: cidata volume left empty", "volume=%s", vname);
			virStreamFree(st);
			return 0;
		}
		libvirt_err(err, PP_UNAVAILABLE, "uploading volume %s", vname);
		virStreamFree(st);
		return -1;
	}
	while (off < len) {
		size_t n = len - off < LIBVIRT_UPLOAD_CHUNK ? len - off : LIBVIRT_UPLOAD_CHUNK;
		int sent;

		if (libvirt_cancelled(cancel, "uploading volume", vname, err) < 0)
			goto abort;
		sent = virStreamSend(st, (const char *)iso + off, n);
		if (sent <= 0) {
			libvirt_err(err, PP_UNAVAILABLE, "uploading volume %s", vname);
			goto abort;
		}
		off += (size_t)sent;
	}
	if (virStreamFinish(st) < 0) {
		libvirt_err(err, PP_UNAVAILABLE, "finishing the upload of volume %s", vname);
		goto abort;
	}
	virStreamFree(st);
	return 0;
abort:
	virStreamAbort(st);
	virStreamFree(st);
	return -1;
}

int libvirt_cidata_create(virConnectPtr c, virStoragePoolPtr pool, const char *name,
			  const uint8_t *iso, size_t len, struct cancel *cancel, char *ret_path,
			  size_t size, struct pp_err *err)
{
	char vname[LIBVIRT_VOL_NAME_MAX];
	virStorageVolPtr v = NULL;
	char *xml = NULL;
	int rc;

	if (vol_name(vname, sizeof(vname), name, LIBVIRT_CIDATA_SUFFIX, err) < 0 ||
	    libvirt_volume_xml_build(vname, len, "raw", NULL, NULL, &xml, err) < 0)
		return -1;
	rc = vol_create(pool, xml, vname, ret_path, size, &v, err);
	free(xml);
	if (rc < 0)
		return -1;
	rc = cidata_upload(c, v, vname, iso, len, cancel, err);
	virStorageVolFree(v);
	return rc;
}

static int vol_delete(virStorageVolPtr v, const char *vname, struct pp_err *err)
{
	if (virStorageVolDelete(v, 0) < 0 && libvirt_last_code() != VIR_ERR_NO_STORAGE_VOL)
		return libvirt_err(err, PP_UNAVAILABLE, "deleting volume %s", vname);
	log_info("libvirt volume deleted", "volume=%s", vname);
	return 0;
}

int libvirt_volumes_delete_by_name(virStoragePoolPtr pool, const char *name, struct pp_err *err)
{
	const char *const suffixes[] = { LIBVIRT_ROOT_SUFFIX, LIBVIRT_CIDATA_SUFFIX };
	char vname[LIBVIRT_VOL_NAME_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		virStorageVolPtr v;
		int rc;

		if (vol_name(vname, sizeof(vname), name, suffixes[i], err) < 0)
			return -1;
		v = virStorageVolLookupByName(pool, vname);
		if (!v) {
			if (libvirt_last_code() == VIR_ERR_NO_STORAGE_VOL)
				continue;
			return libvirt_err(err, PP_UNAVAILABLE, "looking up volume %s", vname);
		}
		rc = vol_delete(v, vname, err);
		virStorageVolFree(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int libvirt_volume_delete_path(virConnectPtr c, const char *path, const char *name,
			       struct pp_err *err)
{
	virStorageVolPtr v = virStorageVolLookupByPath(c, path);
	const char *vname;
	size_t nlen = strlen(name);
	int rc = 0;

	if (!v)
		return 0;   /* not a volume of any pool, or already gone */
	vname = virStorageVolGetName(v);
	if (vname && strncmp(vname, name, nlen) == 0 && vname[nlen] == '-')
		rc = vol_delete(v, vname, err);
	else
		log_info("libvirt volume kept: not named after the instance", "path=%s instance=%s",
			 path, name);
	virStorageVolFree(v);
	return rc;
}
