/*
 * The per-sandbox agent proxy (see proxy.h): a ttrpc_relay whose dialer is a TCP(+TLS) dial
 * to the forwarder repeated on a fixed, jittered cadence, plus the CreateContainer edit.
 *
 * Dial cycle: proxy_attempt -> dial_tcp_async -> proxy_on_dialled: success hands the stream to
 * the relay (and calls `ready` the first time); failure waits 50..150 ms (proxy_retry) and tries
 * again — until the first connection's deadline passes, after which the relay and `ready` get
 * "failed to establish agent proxy connection to <addr>: <last error>". Re-dials after a break
 * have no deadline: they go on while the proxy lives.
 */
#include "adaptor/proxy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "adaptor/metrics.h"
#include "lib/dial.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/agent.pb-c.h"

#define AGENT_SERVICE "grpc.AgentService"
#define PROXY_ADDR_MAX 300

struct agent_proxy {
	struct loop *loop;
	struct ttrpc_relay *relay;
	char socket_path[AGENT_PROXY_SOCKET_PATH_MAX + 1];
	char addr[PROXY_ADDR_MAX];       /* host:port, for messages */
	char *host;
	char port_text[8];
	char *server_name;
	char *direct_volumes_dir;
	uint16_t port;
	SSL_CTX *tls;
	uint64_t first_deadline_ms;      /* the first connection must be up by then */
	struct dial *dial;               /* attempt in progress */
	struct loop_timer *retry;        /* waiting before the next attempt */
	bool dialling;                   /* the relay asked and has not been answered */
	bool ready_done;
	bool listening;                  /* the socket was set up (for the log line) */
	agent_proxy_ready_fn ready;
	void *ready_arg;
	unsigned attempts;               /* in the current dial cycle */
	unsigned attempts_total;
	uint64_t rng;
	struct pp_err last_err;
};

/* ---- dialling ---- */

static uint64_t proxy_random(struct agent_proxy *p)
{
	/* xorshift64: jitter only, not security */
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

static uint64_t proxy_retry_delay_ms(struct agent_proxy *p)
{
	uint64_t half = AGENT_PROXY_RETRY_MS / 2;

	return half + proxy_random(p) % (AGENT_PROXY_RETRY_MS + 1);   /* 50..150 ms */
}

static void proxy_attempt(void *arg);

static void proxy_first_failed(struct agent_proxy *p)
{
	char q[PP_ERR_MSG_MAX];
	struct pp_err e;

	pp_err_set(&e, PP_UNAVAILABLE, "failed to establish agent proxy connection to %s: %s",
		   p->addr, p->last_err.msg[0] ? p->last_err.msg : "timed out");
	log_error("agent proxy connection failed", "socket=%s addr=%s attempts=%u error=%s",
		  p->socket_path, p->addr, p->attempts, log_quote(q, sizeof(q), p->last_err.msg));
	p->dialling = false;
	p->ready_done = true;
	ttrpc_relay_dial_done(p->relay, NULL, &e);
	p->ready(p->ready_arg, &e);   /* last: it may stop the proxy */
}

static void proxy_on_dialled(void *arg, struct stream *st, const struct pp_err *err)
{
	struct agent_proxy *p = arg;
	bool first = !p->ready_done;

	p->dial = NULL;
	if (!st) {
		if (err)
			p->last_err = *err;
		if (first && pp_now_ms() >= p->first_deadline_ms) {
			proxy_first_failed(p);
			return;
		}
		if (log_enabled(LOG_LVL_DEBUG)) {
			char q[PP_ERR_MSG_MAX];

			log_debug("agent proxy dial failed", "addr=%s attempt=%u error=%s", p->addr,
				  p->attempts, log_quote(q, sizeof(q), err ? err->msg : ""));
		}
		p->retry = loop_timer_add(p->loop, proxy_retry_delay_ms(p), proxy_attempt, p);
		return;
	}
	p->dialling = false;
	log_info("agent proxy connected", "socket=%s addr=%s attempts=%u", p->socket_path, p->addr,
		 p->attempts);
	p->attempts = 0;
	ttrpc_relay_dial_done(p->relay, st, NULL);
	if (first) {
		p->ready_done = true;
		p->ready(p->ready_arg, NULL);   /* last: it may stop the proxy */
	} else {
		metrics_add_proxy_reconnect();
	}
}

static void proxy_attempt(void *arg)
{
	struct agent_proxy *p = arg;
	uint64_t timeout = AGENT_PROXY_ATTEMPT_MS, now = pp_now_ms();
	struct pp_err err;
	struct dial *d;

	p->retry = NULL;
	if (!p->ready_done) {
		if (now >= p->first_deadline_ms) {
			proxy_first_failed(p);
			return;
		}
		if (p->first_deadline_ms - now < timeout)
			timeout = p->first_deadline_ms - now;
	}
	p->attempts++;
	p->attempts_total++;
	d = dial_tcp_async(p->loop, p->host, p->port_text, p->tls,
			   p->tls ? p->server_name : NULL, timeout, proxy_on_dialled, p);
	if (!d) {
		pp_err_set(&err, PP_RESOURCE_EXHAUSTED, "out of memory dialling %s", p->addr);
		proxy_on_dialled(p, NULL, &err);
		return;
	}
	p->dial = d;
}

/* The relay's dialer. */
static void proxy_dial(void *arg, struct ttrpc_relay *r)
{
	struct agent_proxy *p = arg;

	(void)r;
	p->dialling = true;
	if (p->ready_done)
		log_info("agent proxy reconnecting", "socket=%s addr=%s", p->socket_path, p->addr);
	proxy_attempt(p);
}

static void proxy_dial_stop(struct agent_proxy *p)
{
	loop_timer_cancel(p->loop, p->retry);
	p->retry = NULL;
	dial_cancel(p->dial);
	p->dial = NULL;
	p->dialling = false;
}

static void proxy_dial_cancel(void *arg, struct ttrpc_relay *r)
{
	(void)r;
	proxy_dial_stop(arg);
}

/* ---- CreateContainer edit ---- */

#define PROXY_ANNOT_EDITS 3   /* target_path, cdi, cloud_volumes */
#define PROXY_MOUNT_INFO_MAX (64u * 1024u)      /* one mountInfo.json */
#define PROXY_DIRECT_VOLUMES_MAX 4096           /* sub-directories of direct_volumes_dir */
#define PROXY_B64URL_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="

/* Edits of a decoded Spec's annotations that can be undone before protobuf-c frees it. */
struct annot_edit {
	Grpc__Spec *spec;
	Grpc__Spec__AnnotationsEntry **orig;
	size_t n_orig;
	Grpc__Spec__AnnotationsEntry **grown;           /* our longer array, or NULL */
	Grpc__Spec__AnnotationsEntry added[PROXY_ANNOT_EDITS];
	struct { Grpc__Spec__AnnotationsEntry *e; char *old; } replaced[PROXY_ANNOT_EDITS * 4];
	unsigned n_replaced;
	char *owned[PROXY_ANNOT_EDITS];                  /* values we allocated */
	unsigned n_owned;
	bool changed;
};

static const char *annot_get(const Grpc__Spec *spec, const char *key)
{
	const char *v = NULL;
	size_t i;

	for (i = 0; i < spec->n_annotations; i++)   /* last one wins, as in a Go map */
		if (spec->annotations[i]->key && !strcmp(spec->annotations[i]->key, key))
			v = spec->annotations[i]->value;
	return v;
}

/* Sets key=value; value must outlive the pack. */
static int annot_set(struct annot_edit *ed, const char *key, char *value, struct pp_err *err)
{
	Grpc__Spec *spec = ed->spec;
	bool found = false;
	size_t i;

	for (i = 0; i < spec->n_annotations; i++) {
		Grpc__Spec__AnnotationsEntry *e = spec->annotations[i];

		if (!e->key || strcmp(e->key, key))
			continue;
		if (ed->n_replaced >= PP_ARRAY_SIZE(ed->replaced))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "annotation %s is repeated too often in CreateContainer", key);
		ed->replaced[ed->n_replaced].e = e;
		ed->replaced[ed->n_replaced++].old = e->value;
		e->value = value;
		found = true;
	}
	if (!found) {
		Grpc__Spec__AnnotationsEntry *e;
		size_t n = spec->n_annotations;

		if (!ed->grown) {
			ed->grown = calloc(ed->n_orig + PROXY_ANNOT_EDITS, sizeof(*ed->grown));
			if (!ed->grown)
				return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory editing annotations");
			if (ed->n_orig)
				memcpy(ed->grown, ed->orig, ed->n_orig * sizeof(*ed->grown));
			spec->annotations = ed->grown;
		}
		e = &ed->added[n - ed->n_orig];
		grpc__spec__annotations_entry__init(e);
		e->key = (char *)key;
		e->value = value;
		ed->grown[n] = e;
		spec->n_annotations = n + 1;
	}
	ed->changed = true;
	return 0;
}

/* annot_set with a malloc'd value that ed owns from now on (also on failure); annot_undo
 * frees it, after the pack. At most one owned value per edit. */
static int annot_set_owned(struct annot_edit *ed, const char *key, char *value,
			   struct pp_err *err)
{
	ed->owned[ed->n_owned++] = value;
	return annot_set(ed, key, value, err);
}

static void annot_undo(struct annot_edit *ed)
{
	while (ed->n_replaced > 0) {
		ed->n_replaced--;
		ed->replaced[ed->n_replaced].e->value = ed->replaced[ed->n_replaced].old;
	}
	ed->spec->annotations = ed->orig;
	ed->spec->n_annotations = ed->n_orig;
	free(ed->grown);
	ed->grown = NULL;
	while (ed->n_owned > 0)
		free(ed->owned[--ed->n_owned]);
}

/* Is `source` a CSI volume that the CSI wrapper published under direct_volumes_dir? */
static bool proxy_is_peerpod_volume(const char *direct_volumes_dir, const char *source)
{
	char path[4096];
	struct stat st;
	char *b64;
	int n;

	if (!source || !strstr(source, CSI_VOLUME_PATH_MARK))
		return false;
	b64 = base64url_encode(source, strlen(source), true);
	n = snprintf(path, sizeof(path), "%s/%s", direct_volumes_dir, b64);
	free(b64);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "a,b,c" of the sources of every peer-pod CSI volume, or NULL when there is none. */
static char *proxy_volume_target_paths(const char *dir, const Grpc__Spec *spec)
{
	size_t i, len = 0, n = 0;
	char *out;

	for (i = 0; i < spec->n_mounts; i++)
		if (proxy_is_peerpod_volume(dir, spec->mounts[i]->source))
			len += strlen(spec->mounts[i]->source) + 1;
	if (!len)
		return NULL;
	out = pp_xmalloc(len);
	for (i = 0; i < spec->n_mounts; i++) {
		const char *src = spec->mounts[i]->source;
		size_t sl;

		if (!proxy_is_peerpod_volume(dir, src))
			continue;
		sl = strlen(src);
		if (n)
			out[n++] = ',';
		memcpy(out + n, src, sl);
		n += sl;
	}
	out[n] = '\0';
	return out;
}

/* ---- cloud volumes (io.confidentialcontainers.org.cloud_volumes) ----
 *
 * Every sub-directory of direct_volumes_dir whose name is the padded URL-safe base64 of a CSI
 * volume path (of this pod, when the sandbox uid is known) is one disk the provider attached,
 * in name order. Each one that has a disk id takes the next index, whether or not this
 * container mounts it, so "vol-<i>"/"lun" stay aligned with the provider's disk order. */

struct dir_names {
	char **v;
	size_t n;
};

static void dir_names_free(struct dir_names *d)
{
	while (d->n > 0)
		free(d->v[--d->n]);
	free(d->v);
	d->v = NULL;
}

static int dir_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);   /* bytes, as Go sorts */
}

/* A real directory, not a symlink to one (Go's DirEntry.IsDir). */
static bool proxy_dirent_is_dir(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* The names of dir's sub-directories, sorted. A missing dir has none; a dir with more than
 * PROXY_DIRECT_VOLUMES_MAX is treated as having none (logged). */
static void proxy_subdirs_list(const char *dir, struct dir_names *ret)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	ret->v = NULL;
	ret->n = 0;
	d = opendir(dir);   /* glibc opens it O_CLOEXEC */
	if (!d) {
		if (errno != ENOENT)
			log_warn("direct volumes not readable", "dir=%s errno=%d", dir, errno);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !proxy_dirent_is_dir(d, de))
			continue;
		if (ret->n == PROXY_DIRECT_VOLUMES_MAX) {
			log_warn("too many direct volumes, cloud volumes ignored", "dir=%s max=%d",
				 dir, PROXY_DIRECT_VOLUMES_MAX);
			dir_names_free(ret);
			break;
		}
		if (ret->n == cap) {
			cap = cap ? 2 * cap : 16;
			ret->v = pp_xrealloc(ret->v, cap * sizeof(*ret->v));
		}
		ret->v[ret->n++] = pp_xstrdup(de->d_name);
	}
	closedir(d);
	if (ret->n > 1)
		qsort(ret->v, ret->n, sizeof(*ret->v), dir_names_cmp);
}

/* The path a direct-volumes entry name stands for (padded URL-safe base64, like Go's
 * base64.URLEncoding), or NULL. */
static char *proxy_volume_path_decode(const char *name)
{
	size_t len = strlen(name), plen = 0;
	uint8_t *path = NULL;
	struct pp_err e;

	if (!len || len % 4 || strspn(name, PROXY_B64URL_CHARS) != len ||
	    base64url_decode(name, len, &path, &plen, &e) < 0)
		return NULL;
	if (memchr(path, '\0', plen)) {   /* cannot equal any mount source */
		free(path);
		return NULL;
	}
	return (char *)path;
}

/* "/pods/<uid>/" when OCI annotations carry a non-empty sandbox uid, else NULL. */
static char *proxy_pod_mark(const Grpc__Spec *spec)
{
	const char *uid = annot_get(spec, ANNOT_SANDBOX_UID);
	size_t n;
	char *mark;

	if (!uid || !*uid)
		return NULL;
	n = strlen(uid) + sizeof("/pods//");
	mark = pp_xmalloc(n);
	if ((size_t)snprintf(mark, n, "/pods/%s/", uid) >= n)
		mark[0] = '\0';   /* not reached: n is exact */
	return mark;
}

/* Is path (decoded from an entry name) one of this pod's CSI volumes? */
static bool proxy_is_cloud_volume(const char *path, const char *pod_mark)
{
	return path && strstr(path, CSI_VOLUME_PATH_MARK) &&
	       (!pod_mark || strstr(path, pod_mark));
}

static const char *json_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));   /* NULL unless a string */
}

/* Disk id and fs type (both malloc'd) from <dir>/<name>/mountInfo.json: disk id =
 * metadata["cloud-volume-path"] if non-empty, else "device"; fs type = "fstype", default ext4.
 * -1 with err when the file is unreadable, not a JSON object, or names no disk. */
static int proxy_mount_info_read(const char *dir, const char *name, char **ret_disk,
				 char **ret_fstype, struct pp_err *err)
{
	const char *disk, *fstype;
	char path[PATH_MAX];
	json_error_t jerr;
	uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;
	json_t *mi;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s/mountInfo.json", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "mountInfo.json path too long");
	/* we read it in the loop thread: a FIFO left there must not block us */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not a regular file", path);
	if (file_read_all(path, PROXY_MOUNT_INFO_MAX, &data, &len, err) < 0)
		return -1;
	mi = json_loadb((const char *)data, len, 0, &jerr);
	free(data);
	if (!mi)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not valid JSON: %s", path,
				  jerr.text);
	if (!json_is_object(mi)) {
		json_decref(mi);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not a JSON object", path);
	}
	disk = json_str(json_object_get(mi, "metadata"), "cloud-volume-path");
	if (!disk || !*disk)
		disk = json_str(mi, "device");
	fstype = json_str(mi, "fstype");
	if (!disk || !*disk) {
		json_decref(mi);
		return pp_err_set(err, PP_NOT_FOUND,
				  "%s has neither metadata.cloud-volume-path nor device", path);
	}
	*ret_disk = pp_xstrdup(disk);
	*ret_fstype = pp_xstrdup(fstype && *fstype ? fstype : "ext4");
	json_decref(mi);
	return 0;
}

/* The destination of the first mount whose source is path, or NULL. */
static const char *proxy_mount_destination(const Grpc__Spec *spec, const char *path)
{
	size_t i;

	for (i = 0; i < spec->n_mounts; i++)
		if (spec->mounts[i]->source && !strcmp(spec->mounts[i]->source, path))
			return spec->mounts[i]->destination ? spec->mounts[i]->destination : "";
	return NULL;
}

/* Adds "vol-<index>" to vols; a destination jansson cannot encode (not UTF-8) is logged and
 * skipped. */
static void proxy_cloud_volume_put(json_t *vols, unsigned index, const char *dest,
				  const char *fstype, const char *disk)
{
	char key[32], lun[16];
	json_t *v;

	if ((size_t)snprintf(key, sizeof(key), "vol-%u", index) >= sizeof(key) ||
	    (size_t)snprintf(lun, sizeof(lun), "%u", index) >= sizeof(lun))
		return;   /* not reached: an unsigned has at most 10 digits */
	v = json_pack("{s:s, s:s, s:s, s:s}", "mount_point", dest, "fs_type", fstype, "lun", lun,
		      "disk_id", disk);
	if (!v || json_object_set_new(vols, key, v) < 0)
		log_warn("cloud volume skipped: mount point not encodable", "key=%s", key);
}

/* One kept entry: true when it counts (has a disk id), whether or not it was added. */
static bool proxy_cloud_volume_add(const char *dir, const char *name, const char *path,
				   const Grpc__Spec *spec, unsigned index, json_t *vols)
{
	char *disk = NULL, *fstype = NULL, q[PP_ERR_MSG_MAX], qp[PATH_MAX];
	struct pp_err err = { 0 };
	const char *dest;

	if (proxy_mount_info_read(dir, name, &disk, &fstype, &err) < 0) {
		log_warn("cloud volume skipped", "volume=%s error=%s",
			 log_quote(qp, sizeof(qp), path), log_quote(q, sizeof(q), err.msg));
		return false;
	}
	dest = proxy_mount_destination(spec, path);
	if (!dest)
		log_debug("cloud volume not mounted by this container", "volume=%s lun=%u",
			  log_quote(qp, sizeof(qp), path), index);
	else
		proxy_cloud_volume_put(vols, index, dest, fstype, disk);
	free(disk);
	free(fstype);
	return true;
}

/* *ret = the cloud_volumes annotation value (compact JSON, sorted keys, malloc'd), or NULL
 * when there is no volume to announce. */
static int proxy_cloud_volumes(const char *dir, const Grpc__Spec *spec, char **ret,
			       struct pp_err *err)
{
	char *pod_mark, *text = NULL;
	struct dir_names names;
	unsigned index = 0;
	json_t *vols;
	size_t i;
	int rc = 0;

	*ret = NULL;
	vols = json_object();
	if (!vols)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing cloud volumes");
	pod_mark = proxy_pod_mark(spec);
	proxy_subdirs_list(dir, &names);
	for (i = 0; i < names.n; i++) {
		char *path = proxy_volume_path_decode(names.v[i]);

		if (proxy_is_cloud_volume(path, pod_mark) &&
		    proxy_cloud_volume_add(dir, names.v[i], path, spec, index, vols))
			index++;
		free(path);
	}
	if (json_object_size(vols) > 0) {
		text = json_dumps(vols, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			rc = pp_err_set(err, PP_RESOURCE_EXHAUSTED,
					"out of memory encoding cloud volumes");
	}
	json_decref(vols);
	dir_names_free(&names);
	free(pod_mark);
	*ret = text;
	return rc;
}

static void proxy_log_guest_pull(const Grpc__CreateContainerRequest *req)
{
	size_t i;

	for (i = 0; i < req->n_storages; i++)
		if (req->storages[i]->driver && !strcmp(req->storages[i]->driver, "image_guest_pull")) {
			log_debug("agent proxy container image pulled in guest", "container=%s",
				  req->container_id ? req->container_id : "");
			return;
		}
}

static int proxy_edit_spec(const char *dir, struct annot_edit *ed, struct pp_err *err)
{
	char *targets, *cloud;
	const char *gpus;

	targets = proxy_volume_target_paths(dir, ed->spec);
	if (targets && annot_set_owned(ed, ANNOT_PEERPOD_VOLUMES_TARGET_PATH, targets, err) < 0)
		return -1;
	gpus = annot_get(ed->spec, ANNOT_DEFAULT_GPUS);
	if (gpus && *gpus &&
	    annot_set(ed, ANNOT_CDI_PEER_PODS, (char *)ANNOT_CDI_PEER_PODS_VALUE, err) < 0)
		return -1;
	if (proxy_cloud_volumes(dir, ed->spec, &cloud, err) < 0)
		return -1;
	if (cloud && annot_set_owned(ed, ANNOT_CLOUD_VOLUMES, cloud, err) < 0)
		return -1;
	return 0;
}

int agent_proxy_edit_create_container(const char *direct_volumes_dir, const uint8_t *in,
				      size_t len, uint8_t **ret, size_t *ret_len,
				      struct pp_err *err)
{
	Grpc__CreateContainerRequest *req;
	struct annot_edit ed = { 0 };
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = -1;

	*ret = NULL;
	req = grpc__create_container_request__unpack(NULL, len, in);
	if (!req)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "CreateContainer: request is not a valid CreateContainerRequest (%zu bytes)", len);
	proxy_log_guest_pull(req);
	if (!req->oci) {   /* nothing to annotate; the agent judges the request */
		rc = 0;
		goto out;
	}
	ed.spec = req->oci;
	ed.orig = req->oci->annotations;
	ed.n_orig = req->oci->n_annotations;
	if (proxy_edit_spec(direct_volumes_dir, &ed, err) < 0)
		goto undo;
	rc = 0;
	if (!ed.changed)
		goto undo;
	out_len = grpc__create_container_request__get_packed_size(req);
	out = malloc(out_len ? out_len : 1);
	if (!out) {
		rc = pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory re-encoding CreateContainer");
		goto undo;
	}
	grpc__create_container_request__pack(req, out);
	*ret = out;
	*ret_len = out_len;
undo:
	annot_undo(&ed);
out:
	grpc__create_container_request__free_unpacked(req, NULL);
	return rc;
}

static int proxy_rewrite_create_container(void *arg, const char *service, const char *method,
					  const uint8_t *payload, size_t len, uint8_t **ret,
					  size_t *ret_len, struct pp_err *err)
{
	struct agent_proxy *p = arg;

	(void)service;
	(void)method;
	return agent_proxy_edit_create_container(p->direct_volumes_dir, payload, len, ret, ret_len,
						 err);
}

/* ---- lifecycle ---- */

static int proxy_socket_prepare(struct agent_proxy *p, const struct agent_proxy_config *cfg,
				struct pp_err *err)
{
	char dir[PATH_MAX];
	int n;

	if (!cfg->pods_dir || !*cfg->pods_dir || !cfg->sandbox_id || !*cfg->sandbox_id ||
	    strchr(cfg->sandbox_id, '/') || !strcmp(cfg->sandbox_id, "..") ||
	    !strcmp(cfg->sandbox_id, "."))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "agent proxy needs a pods directory and a sandbox id without '/'");
	n = snprintf(dir, sizeof(dir), "%s/%s", cfg->pods_dir, cfg->sandbox_id);
	if (n < 0 || (size_t)n >= sizeof(dir))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "pods directory path too long");
	n = snprintf(p->socket_path, sizeof(p->socket_path), "%s/%s", dir, AGENT_PROXY_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(p->socket_path))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "agent socket path %s/%s is %zu bytes long; a unix socket path "
				  "is limited to %d bytes (use a shorter pods directory)",
				  dir, AGENT_PROXY_SOCKET_NAME,
				  strlen(dir) + 1 + strlen(AGENT_PROXY_SOCKET_NAME),
				  AGENT_PROXY_SOCKET_PATH_MAX);
	if (mkdir_p(dir, 0700, err) < 0)
		return pp_err_prefix(err, "agent proxy socket directory");
	return 0;
}

static int proxy_relay_setup(struct agent_proxy *p, struct pp_err *err)
{
	struct ttrpc_relay_config rc = {
		.name = "agent proxy",
		.peer = p->addr,
		.dial = proxy_dial,
		.dial_cancel = proxy_dial_cancel,
		.dial_arg = p,
		.eager = true,
		.max_wait_ms = p->first_deadline_ms - pp_now_ms(),
	};

	p->relay = ttrpc_relay_new(p->loop, &rc, err);
	if (!p->relay)
		return -1;
	if (ttrpc_relay_add_rewrite(p->relay, AGENT_SERVICE, "CreateContainer",
				    proxy_rewrite_create_container, p, err) < 0)
		return -1;
	/* The sandbox's socket may still be served by the daemon this one replaces (a rolling
	 * update): take it over; the predecessor leaves our socket file alone when it exits. */
	ttrpc_server_set_takeover(ttrpc_relay_server(p->relay), true);
	if (ttrpc_server_listen_unix(ttrpc_relay_server(p->relay), p->socket_path, err) < 0)
		return -1;
	p->listening = true;
	return 0;
}

struct agent_proxy *agent_proxy_start(struct loop *l, const struct agent_proxy_config *cfg,
				      agent_proxy_ready_fn ready, void *arg, struct pp_err *err)
{
	uint64_t timeout = cfg->timeout_ms ? cfg->timeout_ms : AGENT_PROXY_TIMEOUT_DEFAULT_MS;
	struct agent_proxy *p;
	int n;

	if (!cfg->host || !*cfg->host || !cfg->port || !ready) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "agent proxy needs the forwarder's host and port");
		return NULL;
	}
	p = pp_xcalloc(1, sizeof(*p));
	p->loop = l;
	p->ready = ready;
	p->ready_arg = arg;
	p->port = cfg->port;
	snprintf(p->port_text, sizeof(p->port_text), "%u", (unsigned)cfg->port);
	p->host = pp_xstrdup(cfg->host);
	p->server_name = pp_xstrdup(cfg->server_name ? cfg->server_name : AGENT_PROXY_MANUAL_SERVER_NAME);
	p->direct_volumes_dir = pp_xstrdup(cfg->direct_volumes_dir ? cfg->direct_volumes_dir
						  : AGENT_PROXY_DIRECT_VOLUMES_DIR);
	p->rng = pp_now_ns() | 1;
	p->first_deadline_ms = pp_now_ms() + timeout;
	if (cfg->tls && SSL_CTX_up_ref(cfg->tls))
		p->tls = cfg->tls;
	n = snprintf(p->addr, sizeof(p->addr), strchr(p->host, ':') ? "[%s]:%u" : "%s:%u", p->host,
		     (unsigned)p->port);
	if (n < 0 || (size_t)n >= sizeof(p->addr)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "forwarder host name too long");
		goto fail;
	}
	if (proxy_socket_prepare(p, cfg, err) < 0 || proxy_relay_setup(p, err) < 0)
		goto fail;
	log_info("agent proxy listening", "socket=%s addr=%s tls=%s", p->socket_path, p->addr,
		 p->tls ? "on" : "off");
	ttrpc_relay_start(p->relay);
	return p;
fail:
	agent_proxy_stop(p);
	return NULL;
}

void agent_proxy_stop(struct agent_proxy *p)
{
	if (!p)
		return;
	/* Freeing the relay's server closes the listener and removes the socket file, unless a
	 * successor daemon took the path over meanwhile (ttrpc_server_set_takeover). */
	ttrpc_relay_free(p->relay);   /* cancels our dial through proxy_dial_cancel */
	proxy_dial_stop(p);
	if (p->listening)
		log_info("agent proxy stopped", "socket=%s addr=%s", p->socket_path, p->addr);
	SSL_CTX_free(p->tls);
	free(p->host);
	free(p->server_name);
	free(p->direct_volumes_dir);
	free(p);
}

const char *agent_proxy_socket_path(const struct agent_proxy *p)
{
	return p->socket_path;
}

void agent_proxy_get_stats(const struct agent_proxy *p, struct ttrpc_relay_stats *ret)
{
	ttrpc_relay_get_stats(p->relay, ret);
}

unsigned agent_proxy_dial_attempts(const struct agent_proxy *p)
{
	return p->attempts_total;
}
