/*
 * meta.json of a local instance, the IP counter, and the directory scan.
 *
 * Every file is written atomically (file_write_atomic), so a crash leaves either
 * the old or the new content and a scan never reads half a file. meta.json is read with a size
 * limit and strict types: it is our own file, but a damaged one must give a clear error rather
 * than a wrong kill.
 */
#include "providers/local/local_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/util.h"

bool local_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > INSTANCE_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static json_t *meta_proc_json(const struct local_proc *p)
{
	return json_pack("{s:I, s:I}", "pid", (json_int_t)p->pid, "start", (json_int_t)p->start);
}

int local_meta_write(const char *dir, const struct local_meta *m, struct pp_err *err)
{
	char path[PATH_MAX];
	json_t *j;
	char *text;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, LOCAL_META_FILE) >= (int)sizeof(path))
		return pp_err_set(err, PP_INTERNAL, "instance directory %s is too long", dir);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o}",
		      "owner", m->owner, "sandbox_id", m->sandbox_id, "instance_id", m->instance_id,
		      "name", m->name, "pod_name", m->pod_name, "pod_namespace", m->pod_namespace,
		      "ip", m->ip, "created", (json_int_t)m->created, "pgid", (json_int_t)m->pgid,
		      "agent", meta_proc_json(&m->agent), "forwarder", meta_proc_json(&m->forwarder));
	if (!j)
		return pp_err_set(err, PP_INTERNAL, "encoding %s failed", path);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory encoding %s", path);
	rc = file_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

static int meta_get_str(json_t *j, const char *key, char *out, size_t size)
{
	json_t *v = json_object_get(j, key);

	if (!json_is_string(v) || json_string_length(v) >= size)
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int meta_get_int(json_t *j, const char *key, int64_t *out)
{
	json_t *v = json_object_get(j, key);

	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int meta_get_proc(json_t *j, const char *key, struct local_proc *out)
{
	json_t *o = json_object_get(j, key);
	int64_t pid, start;

	if (!json_is_object(o) || meta_get_int(o, "pid", &pid) < 0 ||
	    meta_get_int(o, "start", &start) < 0 || pid < 0 || pid > INT32_MAX || start < 0)
		return -1;
	out->pid = (pid_t)pid;
	out->start = (uint64_t)start;
	return 0;
}

static int meta_from_json(json_t *j, struct local_meta *m)
{
	int64_t pgid;

	memset(m, 0, sizeof(*m));
	if (meta_get_str(j, "owner", m->owner, sizeof(m->owner)) < 0 ||
	    meta_get_str(j, "sandbox_id", m->sandbox_id, sizeof(m->sandbox_id)) < 0 ||
	    meta_get_str(j, "instance_id", m->instance_id, sizeof(m->instance_id)) < 0 ||
	    meta_get_str(j, "name", m->name, sizeof(m->name)) < 0 ||
	    meta_get_str(j, "pod_name", m->pod_name, sizeof(m->pod_name)) < 0 ||
	    meta_get_str(j, "pod_namespace", m->pod_namespace, sizeof(m->pod_namespace)) < 0 ||
	    meta_get_str(j, "ip", m->ip, sizeof(m->ip)) < 0 ||
	    meta_get_int(j, "created", &m->created) < 0 || meta_get_int(j, "pgid", &pgid) < 0 ||
	    pgid < 0 || pgid > INT32_MAX || meta_get_proc(j, "agent", &m->agent) < 0 ||
	    meta_get_proc(j, "forwarder", &m->forwarder) < 0)
		return -1;
	m->pgid = (pid_t)pgid;
	return 0;
}

int local_meta_read(const char *dir, struct local_meta *m, struct pp_err *err)
{
	char path[PATH_MAX];
	json_error_t jerr;
	uint8_t *data;
	size_t len;
	json_t *j;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, LOCAL_META_FILE) >= (int)sizeof(path))
		return pp_err_set(err, PP_INTERNAL, "instance directory %s is too long", dir);
	if (file_read_all(path, LOCAL_MAX_META_SIZE, &data, &len, err) < 0)
		return -1;
	j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (!j)
		return pp_err_set(err, PP_DATA_LOSS, "%s: invalid JSON at line %d: %s", path, jerr.line,
				  jerr.text);
	rc = meta_from_json(j, m);
	json_decref(j);
	if (rc < 0)
		return pp_err_set(err, PP_DATA_LOSS, "%s: missing or mistyped field", path);
	return 0;
}

int local_meta_scan(const struct local_priv *lp,
		    int (*fn)(void *arg, const char *dir, const struct local_meta *m), void *arg,
		    struct pp_err *err)
{
	DIR *d = opendir(lp->root);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return pp_err_errno(err, PP_INTERNAL, errno, "opening %s", lp->root);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char dir[PATH_MAX];
		struct local_meta m;

		if (de->d_type != DT_DIR || !local_name_valid(de->d_name))
			continue;
		if (snprintf(dir, sizeof(dir), "%s/%s", lp->root, de->d_name) >= (int)sizeof(dir))
			continue;
		if (local_meta_read(dir, &m, NULL) < 0)
			continue;   /* being created or damaged: not an instance we can vouch for */
		rc = fn(arg, dir, &m);
	}
	closedir(d);
	return 0;
}

/* ---- IP allocation ---- */

struct ip_in_use {
	uint8_t bits[LOCAL_IP_COUNT / 8];
};

static int ip_mark_one(void *arg, const char *dir, const struct local_meta *m)
{
	struct ip_in_use *u = arg;
	unsigned x, y;
	char tail;

	(void)dir;
	if (sscanf(m->ip, LOCAL_IP_PREFIX ".%3u.%3u%c", &x, &y, &tail) == 2 && x < 256 && y < 256)
		u->bits[(x << 5) | (y >> 3)] |= (uint8_t)(1u << (y & 7));
	return 0;
}

static bool ip_is_used(const struct ip_in_use *u, uint32_t n)
{
	return u->bits[n >> 3] & (1u << (n & 7));
}

static void ip_format(uint32_t n, char *out, size_t size)
{
	snprintf(out, size, "%s.%u.%u", LOCAL_IP_PREFIX, (n >> 8) & 0xff, n & 0xff);
}

static uint32_t ip_counter_read(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	unsigned long v;
	char *end;

	if (n <= 0)
		return 1;
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || v >= LOCAL_IP_COUNT)
		return 1;
	return (uint32_t)v;
}

static int ip_counter_store(int fd, uint32_t next)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%u\n", next);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}

/* Whether ip:port can be listened on right now. Other daemons (other state directories) hand
 * out the same 127.77.x.y addresses, so a free slot in our own counter proves nothing; a probe
 * bind does. (A daemon allocating at the very same moment can still collide: the forwarder then
 * fails to bind, logs it in console.log, and StartVM fails.) */
static bool ip_port_free(const char *ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, rc;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return false;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;   /* cannot probe: rely on our own bookkeeping */
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* Addresses x.0 and x.255 are skipped: legal on loopback, but confusing to read. */
static bool ip_usable(uint32_t n)
{
	return (n & 0xff) != 0 && (n & 0xff) != 0xff;
}

int local_ip_allocate(const struct local_priv *lp, char *ret, size_t size, struct pp_err *err)
{
	char path[PATH_MAX];
	struct ip_in_use *used;
	uint32_t n, port;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", lp->root, LOCAL_COUNTER_FILE) >= (int)sizeof(path))
		return pp_err_set(err, PP_INTERNAL, "state directory %s is too long", lp->root);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "opening %s", path);
	if (flock(fd, LOCK_EX) < 0) {
		int e = errno;

		close(fd);
		return pp_err_errno(err, PP_INTERNAL, e, "locking %s", path);
	}
	used = calloc(1, sizeof(*used));
	if (!used) {
		close(fd);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (local_meta_scan(lp, ip_mark_one, used, err) < 0) {
		close(fd);
		free(used);
		return -1;
	}
	if (parse_uint32(lp->forwarder_port, &port) < 0 || port == 0 || port > UINT16_MAX)
		port = 0;
	n = ip_counter_read(fd);
	for (uint32_t tries = 0; tries < LOCAL_IP_COUNT; tries++, n = (n + 1) % LOCAL_IP_COUNT) {
		char ip[PROVIDER_IP_MAX];

		if (!ip_usable(n) || ip_is_used(used, n))
			continue;
		ip_format(n, ip, sizeof(ip));
		if (port && !ip_port_free(ip, (uint16_t)port))
			continue;
		free(used);
		if (ip_counter_store(fd, (n + 1) % LOCAL_IP_COUNT) < 0) {
			int e = errno;

			close(fd);
			return pp_err_errno(err, PP_INTERNAL, e, "writing %s", path);
		}
		close(fd);
		ip_format(n, ret, size);
		return 0;
	}
	close(fd);
	free(used);
	return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "no free address left in %s.0.0/16",
			  LOCAL_IP_PREFIX);
}
