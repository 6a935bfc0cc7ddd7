/*
 * The agent proxy (adaptor/proxy.c): the CreateContainer edit (CSI target paths, GPU CDI
 * annotation, the cloud-volumes annotation built from a temporary direct-volumes directory,
 * unknown fields kept, nothing re-encoded when nothing changes, garbage refused),
 * and the proxy itself over plain TCP on loopback: the socket and its 0700 directory, a too
 * long socket path refused, the ~100 ms dial cadence (ready soon after the forwarder appears),
 * the timeout error, relaying, re-dial after the forwarder restarts, stop removing the socket.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <jansson.h>

#include "adaptor/proxy.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "proto/agent.pb-c.h"
#include "tests/unit/relay/relay_fixture.h"

#define CSI_SRC "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv-1/mount"
#define CSI_SRC_NODIR "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/pv-2/mount"

static struct rf F;
static char dv_dir[128];

/* ---- building requests ---- */

static size_t pb_key(uint8_t *o, unsigned field, unsigned wire)
{
	o[0] = (uint8_t)(field << 3 | wire);
	return 1;
}

static size_t pb_len_field(uint8_t *o, unsigned field, const void *data, size_t len)
{
	size_t n = pb_key(o, field, 2);

	assert_true(len < 16384);
	if (len < 128) {
		o[n++] = (uint8_t)len;
	} else {
		o[n++] = (uint8_t)(len | 0x80);
		o[n++] = (uint8_t)(len >> 7);
	}
	memcpy(o + n, data, len);
	return n + len;
}

/* A CreateContainerRequest with three mounts, the given annotations, and fields this project
 * does not declare: Spec.Process (2), devices (4), stderr_port (11). */
static size_t build_request(uint8_t *out, const char *const *annots, size_t n_annots)
{
	Grpc__Spec spec = GRPC__SPEC__INIT;
	Grpc__Mount m[3] = { GRPC__MOUNT__INIT, GRPC__MOUNT__INIT, GRPC__MOUNT__INIT };
	Grpc__Mount *mp[3] = { &m[0], &m[1], &m[2] };
	Grpc__Spec__AnnotationsEntry e[4];
	Grpc__Spec__AnnotationsEntry *ep[4];
	uint8_t specbuf[4096];
	size_t sl, n = 0, i;

	m[0].source = (char *)CSI_SRC;
	m[0].destination = (char *)"/data";
	m[1].source = (char *)CSI_SRC_NODIR;
	m[1].destination = (char *)"/data2";
	m[2].source = (char *)"/run/kata-containers/shared/containers/x-hostname";
	m[2].destination = (char *)"/etc/hostname";
	m[2].type = (char *)"bind";
	spec.n_mounts = 3;
	spec.mounts = mp;
	for (i = 0; i < n_annots; i++) {
		grpc__spec__annotations_entry__init(&e[i]);
		e[i].key = (char *)annots[2 * i];
		e[i].value = (char *)annots[2 * i + 1];
		ep[i] = &e[i];
	}
	spec.n_annotations = n_annots;
	spec.annotations = ep;
	sl = grpc__spec__pack(&spec, specbuf);
	specbuf[sl++] = 0x12;   /* Process { terminal: true } */
	specbuf[sl++] = 0x02;
	specbuf[sl++] = 0x08;
	specbuf[sl++] = 0x01;
	n += pb_len_field(out + n, 1, "c1", 2);
	n += pb_len_field(out + n, 4, "\x0a\x03" "dev", 5);
	n += pb_len_field(out + n, 6, specbuf, sl);
	out[n++] = 0x58;        /* stderr_port = 5 */
	out[n++] = 0x05;
	return n;
}

static const char *annot(const Grpc__Spec *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_annotations; i++)
		if (!strcmp(s->annotations[i]->key, key))
			return s->annotations[i]->value;
	return NULL;
}

static int setup_dv(void **state)
{
	char path[512];
	char *b64;

	(void)state;
	snprintf(dv_dir, sizeof(dv_dir), "/tmp/pp-dv-XXXXXX");
	assert_non_null(mkdtemp(dv_dir));
	b64 = base64url_encode(CSI_SRC, strlen(CSI_SRC), true);
	snprintf(path, sizeof(path), "%s/%s", dv_dir, b64);
	free(b64);
	assert_int_equal(mkdir(path, 0700), 0);
	return 0;
}

static int teardown_dv(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dv_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_edit_annotations(void **state)
{
	const char *const annots[] = { ANNOT_DEFAULT_GPUS, "1", "keep", "me" };
	uint8_t in[8192], *out = NULL;
	size_t len, out_len = 0;
	struct pp_err err = { 0 };
	Grpc__CreateContainerRequest *req;

	(void)state;
	len = build_request(in, annots, 2);
	assert_int_equal(agent_proxy_edit_create_container(dv_dir, in, len, &out, &out_len, &err), 0);
	assert_non_null(out);
	req = grpc__create_container_request__unpack(NULL, out_len, out);
	assert_non_null(req);
	assert_string_equal(req->container_id, "c1");
	/* only the CSI volume whose direct-volume dir exists */
	assert_string_equal(annot(req->oci, ANNOT_PEERPOD_VOLUMES_TARGET_PATH), CSI_SRC);
	assert_string_equal(annot(req->oci, ANNOT_CDI_PEER_PODS), ANNOT_CDI_PEER_PODS_VALUE);
	assert_string_equal(annot(req->oci, "keep"), "me");
	assert_int_equal(req->oci->n_annotations, 4);
	assert_int_equal(req->oci->n_mounts, 3);
	grpc__create_container_request__free_unpacked(req, NULL);
	/* fields we do not declare survive */
	assert_non_null(memmem(out, out_len, "\x22\x05\x0a\x03" "dev", 7));
	assert_non_null(memmem(out, out_len, "\x12\x02\x08\x01", 4));
	assert_non_null(memmem(out, out_len, "\x58\x05", 2));
	free(out);
}

static void test_edit_existing_annotation_replaced(void **state)
{
	const char *const annots[] = { ANNOT_PEERPOD_VOLUMES_TARGET_PATH, "old",
				       ANNOT_DEFAULT_GPUS, "" };
	uint8_t in[8192], *out = NULL;
	size_t len, out_len = 0;
	struct pp_err err = { 0 };
	Grpc__CreateContainerRequest *req;

	(void)state;
	len = build_request(in, annots, 2);
	assert_int_equal(agent_proxy_edit_create_container(dv_dir, in, len, &out, &out_len, &err), 0);
	assert_non_null(out);
	req = grpc__create_container_request__unpack(NULL, out_len, out);
	assert_non_null(req);
	assert_string_equal(annot(req->oci, ANNOT_PEERPOD_VOLUMES_TARGET_PATH), CSI_SRC);
	assert_null(annot(req->oci, ANNOT_CDI_PEER_PODS));   /* default_gpus empty */
	assert_int_equal(req->oci->n_annotations, 2);
	grpc__create_container_request__free_unpacked(req, NULL);
	free(out);
}

static void test_edit_nothing_to_change(void **state)
{
	const char *const annots[] = { "a", "b" };
	uint8_t in[8192], *out = (uint8_t *)"sentinel";
	size_t len, out_len = 0;
	struct pp_err err = { 0 };

	(void)state;
	len = build_request(in, annots, 1);
	/* no direct-volume dirs at all: nothing to add, so nothing is re-encoded */
	assert_int_equal(agent_proxy_edit_create_container("/nonexistent-dv", in, len, &out,
							   &out_len, &err), 0);
	assert_null(out);
	/* no OCI spec at all: passed on for the agent to judge */
	assert_int_equal(agent_proxy_edit_create_container(dv_dir, (const uint8_t *)"\x0a\x01x", 3,
							   &out, &out_len, &err), 0);
	assert_null(out);
}

static void test_edit_garbage(void **state)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(agent_proxy_edit_create_container(dv_dir, (const uint8_t *)"\x32\x7f\x01", 3,
							   &out, &out_len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "CreateContainer"));
	assert_null(out);
}


/* ---- cloud volumes ---- */

#define CV_POD1 "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/"
#define CV_POD2 "/var/lib/kubelet/pods/p2/volumes/kubernetes.io~csi/"

static char cv_dir[128];

static int setup_cv(void **state)
{
	(void)state;
	snprintf(cv_dir, sizeof(cv_dir), "/tmp/pp-cv-XXXXXX");
	assert_non_null(mkdtemp(cv_dir));
	return 0;
}

static int teardown_cv(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cv_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes <cv_dir>/<name>/mountInfo.json (when mount_info is not NULL). */
static void cv_add_named(const char *name, const char *mount_info)
{
	char path[1024];
	FILE *f;

	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", cv_dir, name) < sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	if (!mount_info)
		return;
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s/mountInfo.json", cv_dir, name) <
		    sizeof(path));
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fputs(mount_info, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The direct volume of `volume` (a path), named as the kata runtime names it. */
static void cv_add(const char *volume, const char *mount_info)
{
	char *b64 = base64url_encode(volume, strlen(volume), true);

	cv_add_named(b64, mount_info);
	free(b64);
}

/* True when a's direct-volume name sorts before b's. */
static bool cv_sorts_before(const char *a, const char *b)
{
	char *ea = base64url_encode(a, strlen(a), true), *eb = base64url_encode(b, strlen(b), true);
	bool r = strcmp(ea, eb) < 0;

	free(ea);
	free(eb);
	return r;
}

/* A CreateContainerRequest with mounts (source, destination pairs) and annotations. */
static size_t cv_request(uint8_t *out, size_t max, const char *const *mounts, size_t n_mounts,
			 const char *const *annots, size_t n_annots)
{
	Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	Grpc__Spec spec = GRPC__SPEC__INIT;
	Grpc__Mount m[8], *mp[8];
	Grpc__Spec__AnnotationsEntry e[4], *ep[4];
	size_t i;

	assert_true(n_mounts <= 8 && n_annots <= 4);
	for (i = 0; i < n_mounts; i++) {
		grpc__mount__init(&m[i]);
		m[i].source = (char *)mounts[2 * i];
		m[i].destination = (char *)mounts[2 * i + 1];
		mp[i] = &m[i];
	}
	for (i = 0; i < n_annots; i++) {
		grpc__spec__annotations_entry__init(&e[i]);
		e[i].key = (char *)annots[2 * i];
		e[i].value = (char *)annots[2 * i + 1];
		ep[i] = &e[i];
	}
	spec.n_mounts = n_mounts;
	spec.mounts = mp;
	spec.n_annotations = n_annots;
	spec.annotations = ep;
	req.container_id = (char *)"c1";
	req.oci = &spec;
	assert_true(grpc__create_container_request__get_packed_size(&req) <= max);
	return grpc__create_container_request__pack(&req, out);
}

/* Runs the edit; returns the parsed cloud_volumes annotation, or NULL when the request was not
 * re-encoded (*changed false) or carries no such annotation. */
static json_t *cv_edit(const char *const *mounts, size_t n_mounts, const char *const *annots,
		       size_t n_annots, bool *changed, char **text)
{
	uint8_t in[8192], *out = NULL;
	size_t len, out_len = 0;
	struct pp_err err = { 0 };
	Grpc__CreateContainerRequest *req;
	const char *v;
	json_t *j = NULL;

	len = cv_request(in, sizeof(in), mounts, n_mounts, annots, n_annots);
	assert_int_equal(agent_proxy_edit_create_container(cv_dir, in, len, &out, &out_len, &err),
			 0);
	*changed = out != NULL;
	if (text)
		*text = NULL;
	if (!out)
		return NULL;
	req = grpc__create_container_request__unpack(NULL, out_len, out);
	assert_non_null(req);
	assert_string_equal(req->container_id, "c1");
	assert_int_equal(req->oci->n_mounts, n_mounts);
	v = annot(req->oci, ANNOT_CLOUD_VOLUMES);
	if (v) {
		json_error_t jerr;

		j = json_loads(v, 0, &jerr);
		assert_non_null(j);
		assert_true(json_is_object(j));
		if (text)
			*text = strdup(v);
	}
	grpc__create_container_request__free_unpacked(req, NULL);
	free(out);
	return j;
}

static void cv_assert_vol(const json_t *vols, const char *key, const char *mount_point,
			  const char *fs_type, const char *lun, const char *disk_id)
{
	const json_t *v = json_object_get(vols, key);

	assert_non_null(v);
	assert_int_equal(json_object_size(v), 4);
	assert_string_equal(json_string_value(json_object_get(v, "mount_point")), mount_point);
	assert_string_equal(json_string_value(json_object_get(v, "fs_type")), fs_type);
	assert_string_equal(json_string_value(json_object_get(v, "lun")), lun);
	assert_string_equal(json_string_value(json_object_get(v, "disk_id")), disk_id);
}

/* vol-0 has no mount in this container: skipped, but vol-1 keeps LUN 1. */
static void test_cv_lun_alignment(void **state)
{
	const char *a = CV_POD1 "pv-a/mount", *b = CV_POD1 "pv-b/mount";
	const char *first = cv_sorts_before(a, b) ? a : b, *second = first == a ? b : a;
	const char *mounts[] = { second, "/mnt/second", "/proc", "/proc" };
	bool changed;
	char *text;
	json_t *j;

	(void)state;
	cv_add(first, "{\"device\":\"disk-first\",\"fstype\":\"xfs\"}");
	cv_add(second, "{\"volume-type\":\"block\",\"device\":\"disk-second\",\"fstype\":\"xfs\","
		       "\"metadata\":{},\"options\":[]}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, &text);
	assert_true(changed);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	assert_null(json_object_get(j, "vol-0"));
	cv_assert_vol(j, "vol-1", "/mnt/second", "xfs", "1", "disk-second");
	/* compact, keys sorted */
	assert_string_equal(text, "{\"vol-1\":{\"disk_id\":\"disk-second\",\"fs_type\":\"xfs\","
				  "\"lun\":\"1\",\"mount_point\":\"/mnt/second\"}}");
	free(text);
	json_decref(j);
}

/* Both volumes mounted: indexes follow the direct-volume name order, not the mount order. */
static void test_cv_name_order(void **state)
{
	const char *a = CV_POD1 "pv-a/mount", *b = CV_POD1 "pv-b/mount";
	const char *first = cv_sorts_before(a, b) ? a : b, *second = first == a ? b : a;
	const char *mounts[] = { second, "/mnt/second", first, "/mnt/first" };
	bool changed;
	json_t *j;

	(void)state;
	cv_add(second, "{\"device\":\"disk-second\"}");
	cv_add(first, "{\"device\":\"disk-first\"}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	cv_assert_vol(j, "vol-0", "/mnt/first", "ext4", "0", "disk-first");
	cv_assert_vol(j, "vol-1", "/mnt/second", "ext4", "1", "disk-second");
	json_decref(j);
}

/* With the sandbox uid annotation only this pod's volumes count (and take the indexes). */
static void test_cv_pod_uid_filter(void **state)
{
	const char *mine = CV_POD2 "pv-mine/mount", *other = CV_POD1 "pv-other/mount";
	const char *mounts[] = { mine, "/mine", other, "/other" };
	const char *uid[] = { ANNOT_SANDBOX_UID, "p2" };
	const char *no_uid[] = { ANNOT_SANDBOX_UID, "" };
	const char *first = cv_sorts_before(mine, other) ? mine : other;
	bool changed;
	json_t *j;

	(void)state;
	cv_add(mine, "{\"device\":\"disk-mine\"}");
	cv_add(other, "{\"device\":\"disk-other\"}");
	j = cv_edit(mounts, 2, uid, 1, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	cv_assert_vol(j, "vol-0", "/mine", "ext4", "0", "disk-mine");
	json_decref(j);
	/* an empty uid filters nothing */
	j = cv_edit(mounts, 2, no_uid, 1, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	cv_assert_vol(j, first == mine ? "vol-0" : "vol-1", "/mine", "ext4",
		      first == mine ? "0" : "1", "disk-mine");
	json_decref(j);
	/* a uid that is only a prefix of the pod's does not match */
	{
		const char *uid_prefix[] = { ANNOT_SANDBOX_UID, "p" };

		j = cv_edit(mounts, 2, uid_prefix, 1, &changed, NULL);
		assert_true(changed);   /* the target-path annotation still */
		assert_null(j);
	}
}

static void test_cv_fs_type_default(void **state)
{
	const char *a = CV_POD1 "pv-a/mount", *b = CV_POD1 "pv-b/mount";
	const char *c = CV_POD1 "pv-c/mount";
	const char *mounts[] = { a, "/a", b, "/b", c, "/c" };
	bool changed;
	json_t *j, *v;
	const char *key;

	(void)state;
	cv_add(a, "{\"device\":\"d-a\"}");                    /* no fstype */
	cv_add(b, "{\"device\":\"d-b\",\"fstype\":\"\"}");    /* empty */
	cv_add(c, "{\"device\":\"d-c\",\"fstype\":7}");       /* not a string */
	j = cv_edit(mounts, 3, NULL, 0, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 3);
	json_object_foreach(j, key, v)
		assert_string_equal(json_string_value(json_object_get(v, "fs_type")), "ext4");
	json_decref(j);
}

static void test_cv_disk_id_preference(void **state)
{
	const char *a = CV_POD1 "pv-a/mount", *b = CV_POD1 "pv-b/mount";
	const char *mounts[] = { a, "/a", b, "/b" };
	const char *ka, *kb;
	bool changed;
	json_t *j;

	(void)state;
	cv_add(a, "{\"device\":\"/dev/sdb\",\"metadata\":{\"cloud-volume-path\":\"vol-123\"}}");
	cv_add(b, "{\"device\":\"/dev/sdc\",\"metadata\":{\"cloud-volume-path\":\"\"}}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, NULL);
	assert_non_null(j);
	ka = cv_sorts_before(a, b) ? "vol-0" : "vol-1";
	kb = cv_sorts_before(a, b) ? "vol-1" : "vol-0";
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, ka), "disk_id")),
			    "vol-123");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, kb), "disk_id")),
			    "/dev/sdc");
	json_decref(j);
}

/* A volume without disk id does not take an index; neither does a non-CSI or foreign entry. */
static void test_cv_no_disk_id_not_counted(void **state)
{
	const char *nodisk = CV_POD1 "pv-a/mount", *ok = CV_POD1 "pv-b/mount";
	const char *mounts[] = { nodisk, "/nodisk", ok, "/ok" };
	bool changed;
	json_t *j;

	(void)state;
	cv_add(nodisk, "{\"fstype\":\"xfs\",\"metadata\":{\"other\":\"x\"}}");
	cv_add(ok, "{\"device\":\"d-ok\"}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	cv_assert_vol(j, "vol-0", "/ok", "ext4", "0", "d-ok");
	json_decref(j);
}

static void test_cv_non_csi_ignored(void **state)
{
	const char *csi = CV_POD1 "pv-z/mount";
	const char *empty_dir = "/var/lib/kubelet/pods/p1/volumes/kubernetes.io~empty-dir/e";
	const char *mounts[] = { empty_dir, "/e", csi, "/z" };
	char *unpadded, path[512];
	bool changed;
	json_t *j;
	FILE *f;

	(void)state;
	cv_add(empty_dir, "{\"device\":\"d-e\"}");
	cv_add_named("not base64!", "{\"device\":\"d-x\"}");
	unpadded = base64url_encode(CV_POD1 "pv-a/mount", strlen(CV_POD1 "pv-a/mount"), false);
	assert_null(strchr(unpadded, '='));
	assert_true(strlen(unpadded) % 4 != 0);   /* so it is not valid padded base64 */
	cv_add_named(unpadded, "{\"device\":\"d-unpadded\"}");
	free(unpadded);
	/* a plain file named like a CSI volume is not a direct volume */
	{
		char *b64 = base64url_encode(CV_POD1 "pv-0/mount", strlen(CV_POD1 "pv-0/mount"), true);

		snprintf(path, sizeof(path), "%s/%s", cv_dir, b64);
		free(b64);
		f = fopen(path, "we");
		assert_non_null(f);
		fclose(f);
	}
	cv_add(csi, "{\"device\":\"d-z\"}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	cv_assert_vol(j, "vol-0", "/z", "ext4", "0", "d-z");
	json_decref(j);
}

/* Unreadable, unparsable, oversized, non-object or FIFO mountInfo.json: skipped, index not
 * used. */
static void test_cv_bad_mount_info_skipped(void **state)
{
	const char *vols[] = { CV_POD1 "pv-a/mount", CV_POD1 "pv-b/mount", CV_POD1 "pv-c/mount",
			       CV_POD1 "pv-d/mount", CV_POD1 "pv-e/mount", CV_POD1 "pv-f/mount" };
	const char *mounts[] = { vols[0], "/a", vols[1], "/b", vols[2], "/c", vols[3], "/d",
				 vols[4], "/e", vols[5], "/f" };
	char *big, *b64, path[512];
	bool changed;
	json_t *j;

	(void)state;
	cv_add(vols[0], "{\"device\":");                      /* truncated */
	cv_add(vols[1], NULL);                                 /* missing */
	cv_add(vols[2], "[\"device\"]");                       /* not an object */
	big = malloc(70 * 1024 + 64);
	assert_non_null(big);
	snprintf(big, 64, "{\"device\":\"d-big\",\"pad\":\"");
	memset(big + strlen(big), 'x', 70 * 1024);
	snprintf(big + 70 * 1024 + 25, 3, "\"}");
	cv_add(vols[3], big);                                  /* over 64 KiB */
	free(big);
	cv_add(vols[4], NULL);                                 /* a FIFO: must not block */
	b64 = base64url_encode(vols[4], strlen(vols[4]), true);
	snprintf(path, sizeof(path), "%s/%s/mountInfo.json", cv_dir, b64);
	free(b64);
	assert_int_equal(mkfifo(path, 0600), 0);
	cv_add(vols[5], "{\"device\":\"d-f\"}");
	j = cv_edit(mounts, 6, NULL, 0, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	cv_assert_vol(j, "vol-0", "/f", "ext4", "0", "d-f");
	json_decref(j);
}

/* No cloud volume to announce: no annotation, and nothing re-encoded at all. */
static void test_cv_none_unchanged(void **state)
{
	const char *unmounted = CV_POD1 "pv-a/mount", *nodisk = CV_POD1 "pv-b/mount";
	const char *mounts[] = { "/run/kata-containers/shared/containers/h", "/etc/hostname",
				 nodisk, "/nodisk" };
	const char *gpus[] = { ANNOT_DEFAULT_GPUS, "1" };
	bool changed;
	json_t *j;

	(void)state;
	j = cv_edit(mounts, 1, NULL, 0, &changed, NULL);   /* empty directory */
	assert_null(j);
	assert_false(changed);
	cv_add(unmounted, "{\"device\":\"d-a\"}");
	j = cv_edit(mounts, 1, NULL, 0, &changed, NULL);   /* volume not mounted here */
	assert_null(j);
	assert_false(changed);
	/* another edit happens: still no cloud_volumes annotation */
	j = cv_edit(mounts, 1, gpus, 1, &changed, NULL);
	assert_true(changed);
	assert_null(j);
	/* a mounted volume without disk id: target path edit only */
	cv_add(nodisk, "{}");
	j = cv_edit(mounts, 2, NULL, 0, &changed, NULL);
	assert_true(changed);
	assert_null(j);
}

/* An annotation sent by the shim is replaced, not duplicated. */
static void test_cv_existing_annotation_replaced(void **state)
{
	const char *v = CV_POD1 "pv-a/mount";
	const char *mounts[] = { v, "/a" };
	const char *annots[] = { ANNOT_CLOUD_VOLUMES, "{\"vol-9\":{}}" };
	bool changed;
	json_t *j;

	(void)state;
	cv_add(v, "{\"device\":\"d-a\"}");
	j = cv_edit(mounts, 1, annots, 1, &changed, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 1);
	cv_assert_vol(j, "vol-0", "/a", "ext4", "0", "d-a");
	json_decref(j);
}

/* ---- the proxy over loopback TCP ---- */

struct tcp_fwd {
	int fd;               /* bound to 127.0.0.1:port; listening only once started */
	uint16_t port;
	bool watching;
	unsigned accepted;
};

static struct tcp_fwd T;

static void tcp_on_accept(void *arg, uint32_t events)
{
	struct tcp_fwd *t = arg;
	struct pp_err err = { 0 };
	struct stream *st;
	int fd;

	(void)events;
	while ((fd = accept4(t->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		t->accepted++;
		st = stream_plain_new(fd, &err);
		assert_non_null(st);
		assert_int_equal(ttrpc_server_adopt(F.ups, st, &err), 0);
	}
}

static void tcp_bind(struct tcp_fwd *t)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1;

	memset(t, 0, sizeof(*t));
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(t->fd, (struct sockaddr *)&sa, &len), 0);
	t->port = ntohs(sa.sin_port);
}

/* The test "forwarder": F's test upstream server, fed by connections accepted on T. */
static void tcp_listen(struct tcp_fwd *t)
{
	struct pp_err err = { 0 };

	if (!F.ups) {
		F.ups = ttrpc_server_new(F.loop, &err);
		ttrpc_server_set_fallback(F.ups, rf_ups_handle, &F);
	}
	assert_int_equal(listen(t->fd, 16), 0);
	assert_int_equal(loop_fd_add(F.loop, t->fd, EPOLLIN, tcp_on_accept, t, &err), 0);
	t->watching = true;
}

static void tcp_close(struct tcp_fwd *t)
{
	if (t->watching)
		loop_fd_del(F.loop, t->fd);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->watching = false;
}

struct ready_state {
	bool called;
	unsigned calls;
	struct pp_err err;
	bool ok;
	uint64_t at_ms;
};

static void on_ready(void *arg, const struct pp_err *err)
{
	struct ready_state *r = arg;

	r->called = true;
	r->calls++;
	r->ok = !err;
	r->at_ms = pp_now_ms();
	if (err)
		r->err = *err;
}

static bool ready_cond(struct rf *f, void *arg)
{
	(void)f;
	return ((struct ready_state *)arg)->called;
}

static int setup_rf(void **state)
{
	(void)state;
	rf_init(&F);
	T.fd = -1;
	return 0;
}

static int teardown_rf(void **state)
{
	char dir[256];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sb1", F.dir);
	rmdir(dir);
	tcp_close(&T);
	rf_fini(&F);
	return 0;
}

static struct agent_proxy *proxy_start(const char *pods_dir, uint64_t timeout_ms,
				       struct ready_state *rs, struct pp_err *err)
{
	struct agent_proxy_config cfg = {
		.pods_dir = pods_dir,
		.sandbox_id = "sb1",
		.host = "127.0.0.1",
		.port = T.port,
		.timeout_ms = timeout_ms,
		.direct_volumes_dir = "/nonexistent-dv",
	};

	return agent_proxy_start(F.loop, &cfg, on_ready, rs, err);
}

static void test_proxy_path_too_long(void **state)
{
	char pods[200];
	struct ready_state rs = { 0 };
	struct pp_err err = { 0 };

	(void)state;
	tcp_bind(&T);
	memset(pods, 'a', sizeof(pods));
	memcpy(pods, F.dir, strlen(F.dir));
	pods[strlen(F.dir)] = '/';
	pods[110] = '\0';
	assert_null(proxy_start(pods, 1000, &rs, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "limited to 107 bytes"));
	assert_false(rs.called);
}

static void test_proxy_timeout(void **state)
{
	struct ready_state rs = { 0 };
	struct pp_err err = { 0 };
	struct agent_proxy *p;
	uint64_t t0 = pp_now_ms();
	char want[64];

	(void)state;
	tcp_bind(&T);   /* bound, not listening: connections are refused */
	p = proxy_start(F.dir, 400, &rs, &err);
	assert_non_null(p);
	assert_true(rf_run_until(&F, ready_cond, &rs, 3000));
	assert_false(rs.ok);
	snprintf(want, sizeof(want), "to 127.0.0.1:%u: ", (unsigned)T.port);
	assert_non_null(strstr(rs.err.msg, "failed to establish agent proxy connection"));
	assert_non_null(strstr(rs.err.msg, want));
	assert_non_null(strstr(rs.err.msg, "refused"));
	assert_true(rs.at_ms - t0 >= 400 && rs.at_ms - t0 < 1500);
	rf_run_for(&F, 50);
	assert_int_equal(rs.calls, 1);
	agent_proxy_stop(p);
}

static bool client_connected(struct rf *f, void *arg)
{
	(void)arg;
	return f->ups && ttrpc_server_connections(f->ups) > 0;
}

static void test_proxy_relays_and_redials(void **state)
{
	struct ready_state rs = { 0 };
	struct pp_err err = { 0 };
	struct ttrpc_relay_stats st;
	struct agent_proxy *p;
	struct stat sb;
	char dir[256];
	uint64_t t_listen;

	(void)state;
	tcp_bind(&T);
	p = proxy_start(F.dir, 10000, &rs, &err);
	assert_non_null(p);
	snprintf(F.relay_path, sizeof(F.relay_path), "%s", agent_proxy_socket_path(p));
	snprintf(dir, sizeof(dir), "%s/sb1", F.dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(F.relay_path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));

	/* a call made before the forwarder answers waits for it */
	F.cl = rf_client_new(&F);
	assert_non_null(F.cl);
	assert_int_equal(rf_call(&F, F.cl, 0, "grpc.AgentService", "Echo", "early", 5, 0), 0);
	rf_run_for(&F, 600);   /* refused attempts every 50..150 ms: about 6 */
	assert_true(agent_proxy_dial_attempts(p) >= 4);   /* exponential from 100 ms: 3 */
	assert_false(rs.called);
	assert_false(F.res[0].done);
	tcp_listen(&T);
	t_listen = pp_now_ms();
	assert_true(rf_run_until(&F, ready_cond, &rs, 3000));
	assert_true(rs.ok);
	assert_true(rs.at_ms - t_listen < 1000);   /* ~100 ms cadence, not a long back-off */
	assert_true(RF_WAIT_DONE(&F, 0, 3000));
	assert_int_equal(F.res[0].code, PP_OK);
	assert_memory_equal(F.res[0].payload, "early", 5);

	/* the forwarder restarts: the proxy re-dials and calls work again */
	rf_ups_stop(&F);
	tcp_close(&T);
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(T.port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int one = 1;

		rf_run_for(&F, 300);
		T.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(T.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		assert_int_equal(bind(T.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	tcp_listen(&T);
	assert_true(rf_run_until(&F, client_connected, NULL, 3000));
	assert_int_equal(rf_call(&F, F.cl, 1, "grpc.AgentService", "Echo", "again", 5, 0), 0);
	assert_true(RF_WAIT_DONE(&F, 1, 3000));
	assert_int_equal(F.res[1].code, PP_OK);
	agent_proxy_get_stats(p, &st);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(st.relayed, 2);
	assert_int_equal(rs.calls, 1);

	ttrpc_client_free(F.cl);
	F.cl = NULL;
	agent_proxy_stop(p);
	assert_int_equal(stat(F.relay_path, &sb), -1);   /* socket removed */
	F.relay_path[0] = '\0';
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edit_annotations),
		cmocka_unit_test(test_edit_existing_annotation_replaced),
		cmocka_unit_test(test_edit_nothing_to_change),
		cmocka_unit_test(test_edit_garbage),
	};
	const struct CMUnitTest cv_tests[] = {
		cmocka_unit_test_setup_teardown(test_cv_lun_alignment, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_name_order, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_pod_uid_filter, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_fs_type_default, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_disk_id_preference, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_no_disk_id_not_counted, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_non_csi_ignored, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_bad_mount_info_skipped, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_none_unchanged, setup_cv, teardown_cv),
		cmocka_unit_test_setup_teardown(test_cv_existing_annotation_replaced, setup_cv,
						teardown_cv),
	};
	const struct CMUnitTest proxy_tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_path_too_long, setup_rf, teardown_rf),
		cmocka_unit_test_setup_teardown(test_proxy_timeout, setup_rf, teardown_rf),
		cmocka_unit_test_setup_teardown(test_proxy_relays_and_redials, setup_rf, teardown_rf),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	log_init("test", 2);
	log_set_level(LOG_LVL_WARN);
	rc = cmocka_run_group_tests_name("edit", tests, setup_dv, teardown_dv);
	rc |= cmocka_run_group_tests_name("cloud volumes", cv_tests, NULL, NULL);
	rc |= cmocka_run_group_tests_name("proxy", proxy_tests, NULL, NULL);
	return rc;
}
