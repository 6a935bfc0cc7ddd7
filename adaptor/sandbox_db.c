/* Persisting a sandbox: see sandbox_db.h. */
#include "adaptor/sandbox_db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/util.h"

#define USER_DATA_DIR "user-data"
#define USER_DATA_READ_MAX (1024 * 1024)

static int user_data_path(const struct daemon *d, const char *id, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s/%s", d->state_dir, USER_DATA_DIR, id);

	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

static char *join_ips(const struct sandbox *sb)
{
	size_t cap = PROVIDER_MAX_IPS * PROVIDER_IP_MAX + 1;
	char *s = pp_xcalloc(1, cap);
	size_t off = 0;

	for (int i = 0; i < sb->n_ips; i++) {
		int n = snprintf(s + off, cap - off, "%s%s", i ? "," : "", sb->ips[i]);

		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return s;
}

int sandbox_db_insert(struct daemon *d, const struct sandbox *sb, struct pp_err *err)
{
	struct sandbox_row row = { 0 };
	char path[SANDBOX_PATH_MAX * 2];
	char dir[SANDBOX_PATH_MAX * 2];

	snprintf(dir, sizeof(dir), "%s/%s", d->state_dir, USER_DATA_DIR);
	if (user_data_path(d, sb->id, path, sizeof(path)) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "state dir path too long for sandbox %s", sb->id);
	if (sb->user_data) {
		if (mkdir_p(dir, 0700, err) < 0 ||
		    file_write_atomic(path, sb->user_data, sb->user_data_len, 0600, err) < 0)
			return -1;
	}
	row.sandbox_id = (char *)sb->id;
	row.pod_name = (char *)sb->pod_name;
	row.pod_namespace = (char *)sb->pod_namespace;
	row.netns = (char *)sb->netns;
	row.instance_name = (char *)sb->instance_name;
	row.instance_id = (char *)"";
	row.ips = (char *)"";
	row.state = SANDBOX_CREATED;
	row.agent_socket = (char *)sb->agent_socket;
	row.spec.instance_type = (char *)sb->spec_type;
	row.spec.image = (char *)sb->spec_image;
	row.spec.vcpus = sb->spec.vcpus;
	row.spec.memory_mib = sb->spec.memory_mib;
	row.spec.gpus = sb->spec.gpus;
	row.error = (char *)"";
	if (store_sandbox_insert(d->store, &row, err) < 0) {
		if (err && err->code == PP_ALREADY_EXISTS)
			pp_err_prefix(err, "adding sandbox");
		else if (sb->user_data)
			unlink(path);
		return -1;
	}
	return 0;
}

int sandbox_db_transition(struct daemon *d, const char *id, enum sandbox_state from,
			  enum sandbox_state to, const char *error_text, struct pp_err *err)
{
	if (from == to)
		return 0;
	if (to == SANDBOX_FAILED)
		return store_sandbox_set_failed(d->store, id, from, error_text ? error_text : "", err);
	return store_sandbox_set_state(d->store, id, from, to, err);
}

int sandbox_db_set_instance(struct daemon *d, const struct sandbox *sb, struct pp_err *err)
{
	char *ips = join_ips(sb);
	int rc = store_sandbox_set_instance(d->store, sb->id, sb->instance_id, ips, err);

	free(ips);
	return rc;
}

int sandbox_db_remove(struct daemon *d, const char *id, struct pp_err *err)
{
	char path[SANDBOX_PATH_MAX * 2];
	struct pp_err e = { 0 };

	if (store_sandbox_delete(d->store, id, &e) < 0 && e.code != PP_NOT_FOUND) {
		if (err)
			*err = e;
		return -1;
	}
	if (user_data_path(d, id, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
		return pp_err_errno(err, PP_INTERNAL, errno, "removing %s", path);
	return 0;
}

int sandbox_db_load_user_data(struct daemon *d, const char *id, char **ret, size_t *ret_len,
			      struct pp_err *err)
{
	char path[SANDBOX_PATH_MAX * 2];
	uint8_t *data = NULL;
	size_t len = 0;
	char *text;

	if (user_data_path(d, id, path, sizeof(path)) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "state dir path too long for sandbox %s", id);
	if (file_read_all(path, USER_DATA_READ_MAX, &data, &len, err) < 0)
		return pp_err_prefix(err, "sandbox %s: the user-data saved at CreateVM is not readable", id);
	text = pp_xmalloc(len + 1);
	memcpy(text, data, len);
	text[len] = '\0';
	free(data);
	*ret = text;
	*ret_len = len;
	return 0;
}

static void split_ips(struct sandbox *sb, const char *ips)
{
	const char *p = ips;

	sb->n_ips = 0;
	while (*p && sb->n_ips < PROVIDER_MAX_IPS) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n > 0 && n < PROVIDER_IP_MAX) {
			memcpy(sb->ips[sb->n_ips], p, n);
			sb->ips[sb->n_ips][n] = '\0';
			sb->n_ips++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
}

void sandbox_from_row(struct sandbox *sb, const struct sandbox_row *row)
{
	snprintf(sb->pod_name, sizeof(sb->pod_name), "%s", row->pod_name);
	snprintf(sb->pod_namespace, sizeof(sb->pod_namespace), "%s", row->pod_namespace);
	snprintf(sb->netns, sizeof(sb->netns), "%s", row->netns);
	snprintf(sb->instance_name, sizeof(sb->instance_name), "%s", row->instance_name);
	snprintf(sb->instance_id, sizeof(sb->instance_id), "%s", row->instance_id);
	snprintf(sb->agent_socket, sizeof(sb->agent_socket), "%s", row->agent_socket);
	snprintf(sb->spec_type, sizeof(sb->spec_type), "%s", row->spec.instance_type);
	snprintf(sb->spec_image, sizeof(sb->spec_image), "%s", row->spec.image);
	sb->spec.instance_type = sb->spec_type;
	sb->spec.image = sb->spec_image;
	sb->spec.vcpus = row->spec.vcpus;
	sb->spec.memory_mib = row->spec.memory_mib;
	sb->spec.gpus = row->spec.gpus;
	split_ips(sb, row->ips);
	sb->state = row->state;
}
