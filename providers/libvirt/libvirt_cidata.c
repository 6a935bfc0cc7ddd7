/*
 * The cloud-init NoCloud seed: an ISO 9660 image with volume id `cidata` holding `user-data`
 * (the #cloud-config text as is, not base64), `meta-data` (instance-id and local-hostname) and
 * an empty `vendor-data`, built in memory with libisofs.
 *
 * Names: Rock Ridge and Joliet carry the exact lower-case names for every reader that knows them
 * (Linux, cloud-init); the plain ISO 9660 names and the volume id are relaxed (lower case, '-',
 * no version suffix, no forced dot) so that a reader without extensions sees the same names, and
 * /dev/disk/by-label/cidata (what the pod VM image mounts, case-sensitive) exists.
 *
 * One idea: libisofs keeps process-wide state between iso_init() and iso_finish(). The ISO is a
 * few KiB and builds in well under a millisecond, so each build runs start to finish under one
 * mutex with its own init/finish pair: nothing stays allocated between builds, and concurrent
 * creates cannot finish the library under each other.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libisofs declares struct burn_source itself only when libburn.h is not used. */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

#include "lib/buf.h"

#define CIDATA_VOLUME_ID "cidata"
#define CIDATA_BLOCK 2048
#define CIDATA_ISO_MAX (LIBVIRT_MAX_USER_DATA + 1024 * 1024)   /* the files plus ISO overhead */
#define CIDATA_META_MAX 512

static pthread_mutex_t cidata_lock = PTHREAD_MUTEX_INITIALIZER;

static int cidata_add(IsoImage *image, const char *name, const void *data, size_t len,
		      struct pp_err *err)
{
	unsigned char *copy = malloc(len ? len : 1);
	IsoStream *stream = NULL;
	IsoFile *file = NULL;
	int rc;

	if (!copy)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory building the cidata ISO");
	if (len)
		memcpy(copy, data, len);
	rc = iso_memory_stream_new(copy, len, &stream);   /* the stream owns copy from here on */
	if (rc < 0) {
		free(copy);
		return pp_err_set(err, PP_INTERNAL, "cidata ISO: file %s: %s", name, iso_error_to_msg(rc));
	}
	rc = iso_image_add_new_file(image, iso_image_get_root(image), name, stream, &file);
	if (rc < 0) {
		iso_stream_unref(stream);
		return pp_err_set(err, PP_INTERNAL, "cidata ISO: adding %s: %s", name, iso_error_to_msg(rc));
	}
	iso_node_set_permissions((IsoNode *)file, 0444);
	return 0;
}

static int cidata_opts(IsoWriteOpts **ret, struct pp_err *err)
{
	IsoWriteOpts *opts = NULL;
	int rc = iso_write_opts_new(&opts, 0);

	if (rc < 0)
		return pp_err_set(err, PP_INTERNAL, "cidata ISO options: %s", iso_error_to_msg(rc));
	iso_write_opts_set_rockridge(opts, 1);
	iso_write_opts_set_joliet(opts, 1);
	iso_write_opts_set_iso_level(opts, 2);               /* names up to 31 characters */
	iso_write_opts_set_allow_lowercase(opts, 1);
	iso_write_opts_set_allow_7bit_ascii(opts, 1);
	iso_write_opts_set_omit_version_numbers(opts, 1);
	iso_write_opts_set_no_force_dots(opts, 3);            /* neither ISO 9660 nor Joliet */
	iso_write_opts_set_relaxed_vol_atts(opts, 1);         /* volume id stays lower-case */
	*ret = opts;
	return 0;
}

static int cidata_block(struct burn_source *src, unsigned char *block, int size)
{
	return src->read_xt ? src->read_xt(src, block, size) : src->read(src, block, size);
}

/* Reads the whole image from the generator's burn_source into out. */
static int cidata_read(IsoImage *image, IsoWriteOpts *opts, struct buf *out, struct pp_err *err)
{
	struct burn_source *src = NULL;
	unsigned char block[CIDATA_BLOCK];
	int rc = iso_image_create_burn_source(image, opts, &src), n;

	if (rc < 0)
		return pp_err_set(err, PP_INTERNAL, "cidata ISO: %s", iso_error_to_msg(rc));
	rc = 0;
	while ((n = cidata_block(src, block, sizeof(block))) > 0) {
		if (buf_append(out, block, (size_t)n) < 0) {
			src->cancel(src);
			rc = pp_err_set(err, PP_RESOURCE_EXHAUSTED, "cidata ISO is larger than %d bytes",
					CIDATA_ISO_MAX);
			/* drain so the generator thread ends before free_data */
			while (cidata_block(src, block, sizeof(block)) > 0)
				;
			break;
		}
	}
	if (n < 0 && rc == 0)
		rc = pp_err_set(err, PP_INTERNAL, "cidata ISO: the image generator failed");
	src->free_data(src);
	free(src);
	return rc;
}

static int cidata_build_locked(const char *user_data, size_t len, const char *meta, size_t meta_len,
			       struct buf *out, struct pp_err *err)
{
	IsoImage *image = NULL;
	IsoWriteOpts *opts = NULL;
	int rc = iso_image_new(CIDATA_VOLUME_ID, &image);

	if (rc < 0)
		return pp_err_set(err, PP_INTERNAL, "cidata ISO: %s", iso_error_to_msg(rc));
	rc = -1;
	if (cidata_add(image, "user-data", user_data, len, err) < 0 ||
	    cidata_add(image, "meta-data", meta, meta_len, err) < 0 ||
	    cidata_add(image, "vendor-data", "", 0, err) < 0 || cidata_opts(&opts, err) < 0)
		goto out;
	rc = cidata_read(image, opts, out, err);
out:
	iso_write_opts_free(opts);
	iso_image_unref(image);
	return rc;
}

int libvirt_cidata_build(const char *user_data, size_t len, const char *instance_id,
			 const char *hostname, uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	struct buf out = BUF_INIT(CIDATA_ISO_MAX);
	char meta[CIDATA_META_MAX];
	int n, rc;

	if (len > LIBVIRT_MAX_USER_DATA)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "user-data of %zu bytes exceeds the %d bytes "
				  "the libvirt provider accepts", len, LIBVIRT_MAX_USER_DATA);
	n = snprintf(meta, sizeof(meta), "instance-id: %s\nlocal-hostname: %s\n", instance_id, hostname);
	if (n < 0 || n >= (int)sizeof(meta))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name %.80s is too long for meta-data",
				  hostname);
	pthread_mutex_lock(&cidata_lock);
	rc = iso_init_with_flag(1);   /* bit0: leave the process locale alone */
	if (rc < 0) {
		pthread_mutex_unlock(&cidata_lock);
		return pp_err_set(err, PP_INTERNAL, "libisofs: %s", iso_error_to_msg(rc));
	}
	iso_set_msgs_severities("NEVER", "NEVER", "cidata");
	rc = cidata_build_locked(user_data ? user_data : "", len, meta, (size_t)n, &out, err);
	iso_finish();
	pthread_mutex_unlock(&cidata_lock);
	if (rc < 0) {
		buf_free(&out);
		return -1;
	}
	*ret = buf_steal(&out, ret_len);
	return 0;
}
