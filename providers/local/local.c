/*
 * The `local` provider: the embedded default for trying the daemon without a cloud. An
 * instance is a process sandbox on this machine standing in for a pod VM: a directory under
 * <state>/local/<instance-name>/ holding the cidata (user-data) the daemon rendered, a root/
 * that process-user-data provisions as it would a VM's filesystem, and two long-lived
 * processes, the agent (mock-agent, or a real kata agent) and agent-protocol-forwarder,
 * listening on a loopback address of its own, 127.77.x.y:FORWARDER_PORT.
 *
 * The directory is the instance (see local_priv.h); local_sandbox.c runs its processes.
 * Instances outlive the daemon: destroy() stops nothing, and the daemon's reconcile finds them
 * again through list_instances.
 */
#include "providers/local/local_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

static struct local_priv *local_get(const struct provider *p)
{
	return provider_priv(p);
}

static int local_mkdir(const char *path, mode_t mode, struct pp_err *err)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return pp_err_errno(err, PP_INTERNAL, errno, "creating directory %s", path);
	return 0;
}

static int local_instance_dir(const struct local_priv *lp, const char *name, char *out, size_t size,
			      struct pp_err *err)
{
	if (!local_name_valid(name))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "instance name \"%.80s\" is not usable as a directory name "
				  "(letters, digits, '-', '.', '_'; at most %d)", name, INSTANCE_NAME_MAX);
	if (snprintf(out, size, "%s/%s", lp->root, name) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance directory %s/%s is too long",
				  lp->root, name);
	return 0;
}

/* ---- lifecycle ---- */

static void local_priv_free(struct local_priv *lp)
{
	if (!lp)
		return;
	local_conf_free(lp);
	pthread_mutex_destroy(&lp->lock);
	free(lp);
}

static int local_read_common(struct local_priv *lp, const struct config *cfg, struct pp_err *err)
{
	const char *port = config_has(cfg, "FORWARDER_PORT") ? config_str(cfg, "FORWARDER_PORT") : "";

	if (!port[0])
		port = LOCAL_DEFAULT_FORWARDER_PORT;
	if (snprintf(lp->forwarder_port, sizeof(lp->forwarder_port), "%s", port) >=
	    (int)sizeof(lp->forwarder_port))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "FORWARDER_PORT %.20s is too long", port);
	/* The adaptor speaks plain TCP to the forwarder: so must the forwarder. */
	if (config_has(cfg, "DISABLE_TLS") && config_bool(cfg, "DISABLE_TLS")) {
		if (lp->n_fwd_args == LOCAL_MAX_FORWARDER_ARGS)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "LOCAL_FORWARDER_ARGS has too many arguments to add -disable-tls");
		lp->fwd_args[lp->n_fwd_args++] = "-disable-tls";
	}
	return 0;
}

static int local_init(struct provider *p, struct pp_err *err)
{
	const char *state = provider_state_dir(p);
	struct local_priv *lp;

	if (!state[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "local provider: no state directory");
	lp = calloc(1, sizeof(*lp));
	if (!lp)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	pthread_mutex_init(&lp->lock, NULL);
	if (snprintf(lp->root, sizeof(lp->root), "%s/%s", state, LOCAL_DIR_NAME) >= (int)sizeof(lp->root)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "state directory %s is too long", state);
		goto fail;
	}
	if (local_conf_load(lp, provider_config(p), err) < 0 ||
	    local_read_common(lp, provider_config(p), err) < 0 || local_conf_check_bins(lp, err) < 0 ||
	    mkdir_p(state, 0700, err) < 0 || local_mkdir(lp->root, 0700, err) < 0)
		goto fail;
	provider_set_priv(p, lp);
	return 0;
fail:
	local_priv_free(lp);
	return -1;
}

static int local_check(struct provider *p, struct pp_err *err)
{
	return local_conf_check_bins(local_get(p), err);
}

static void local_destroy(struct provider *p)
{
	local_priv_free(local_get(p));
	provider_set_priv(p, NULL);
}

/* ---- create ---- */

static int local_random_id(char *out, size_t size, struct pp_err *err)
{
	uint8_t r[8];

	if (pp_random_bytes(r, sizeof(r), err) < 0)
		return -1;
	snprintf(out, size, "local-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
		 r[5], r[6], r[7]);
	return 0;
}

static int local_copy(char *out, size_t size, const char *s, const char *what, struct pp_err *err)
{
	if (snprintf(out, size, "%s", s ? s : "") >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is longer than %zu bytes", what, size - 1);
	return 0;
}

static int local_check_request(const struct local_priv *lp, const struct create_request *req,
			       char *dir, size_t size, struct pp_err *err)
{
	if (local_instance_dir(lp, req->instance_name, dir, size, err) < 0)
		return -1;
	if (strlen(dir) + 1 + strlen(LOCAL_AGENT_SOCKET) > LOCAL_UNIX_PATH_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "agent socket %s/%s would exceed the %d bytes of a unix socket path: "
				  "use a shorter state directory", dir, LOCAL_AGENT_SOCKET,
				  LOCAL_UNIX_PATH_MAX);
	if (req->user_data_len > LOCAL_MAX_USER_DATA)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "user-data of %zu bytes exceeds the %d "
				  "bytes the local provider accepts", req->user_data_len, LOCAL_MAX_USER_DATA);
	return 0;
}

/* Takes the name (the directory) and an address under the lock, and records both in meta.json
 * before anything runs: list_instances sees the instance from here on. */
static int local_reserve(struct provider *p, const struct create_request *req, const char *dir,
			 struct local_meta *m, struct pp_err *err)
{
	struct local_priv *lp = local_get(p);
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (local_copy(m->owner, sizeof(m->owner), provider_owner(p), "owner id", err) < 0 ||
	    local_copy(m->sandbox_id, sizeof(m->sandbox_id), req->sandbox_id, "sandbox id", err) < 0 ||
	    local_copy(m->name, sizeof(m->name), req->instance_name, "instance name", err) < 0 ||
	    local_copy(m->pod_name, sizeof(m->pod_name), req->pod_name, "pod name", err) < 0 ||
	    local_copy(m->pod_namespace, sizeof(m->pod_namespace), req->pod_namespace, "pod namespace", err) < 0 ||
	    local_random_id(m->instance_id, sizeof(m->instance_id), err) < 0)
		return -1;
	m->created = pp_unix_time();
	pthread_mutex_lock(&lp->lock);
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			pp_err_set(err, PP_ALREADY_EXISTS, "local instance %s already exists (%s)", m->name, dir);
		else
			pp_err_errno(err, PP_INTERNAL, errno, "creating directory %s", dir);
		goto out;
	}
	if (local_ip_allocate(lp, m->ip, sizeof(m->ip), err) < 0 || local_meta_write(dir, m, err) < 0) {
		rm_rf(dir, NULL);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&lp->lock);
	return rc;
}

static int local_write_cidata(const char *dir, const struct create_request *req, struct pp_err *err)
{
	char path[PATH_MAX], meta[INSTANCE_NAME_MAX + 32];
	int n;

	if (snprintf(path, sizeof(path), "%s/root", dir) >= (int)sizeof(path) ||
	    local_mkdir(path, 0755, err) < 0)
		return pp_err_set(err, PP_INTERNAL, "creating %s/root failed", dir);
	if (snprintf(path, sizeof(path), "%s/cidata", dir) >= (int)sizeof(path) ||
	    local_mkdir(path, 0700, err) < 0)
		return pp_err_set(err, PP_INTERNAL, "creating %s/cidata failed", dir);
	snprintf(path, sizeof(path), "%s/cidata/user-data", dir);
	if (file_write_atomic(path, req->user_data ? req->user_data : "", req->user_data_len, 0600, err) < 0)
		return -1;
	n = snprintf(meta, sizeof(meta), "local-hostname: %s\n", req->instance_name);
	snprintf(path, sizeof(path), "%s/cidata/meta-data", dir);
	return file_write_atomic(path, meta, (size_t)n, 0600, err);
}

static int local_create(struct provider *p, const struct create_request *req, struct instance *ret,
			struct pp_err *err)
{
	struct local_priv *lp = local_get(p);
	struct local_meta m;
	char dir[PATH_MAX];

	if (local_check_request(lp, req, dir, sizeof(dir), err) < 0 ||
	    local_reserve(p, req, dir, &m, err) < 0)
		return -1;
	if (local_write_cidata(dir, req, err) < 0 ||
	    local_sandbox_provision(lp, dir, req->cancel, err) < 0)
		goto fail;
	if (cancel_fired(req->cancel)) {
		pp_err_set(err, PP_CANCELLED, "creating local instance %s: %s", m.name,
			   cancel_reason_text(cancel_why(req->cancel)));
		goto fail;
	}
	if (local_sandbox_start(lp, dir, &m, err) < 0 || local_meta_write(dir, &m, err) < 0)
		goto fail;
	log_info("local instance started", "instance=%s id=%s ip=%s pgid=%d agent_pid=%d forwarder_pid=%d",
		 m.name, m.instance_id, m.ip, (int)m.pgid, (int)m.agent.pid, (int)m.forwarder.pid);
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->id, sizeof(ret->id), "%s", m.instance_id);
	snprintf(ret->name, sizeof(ret->name), "%s", m.name);
	snprintf(ret->ips[0], sizeof(ret->ips[0]), "%s", m.ip);
	ret->n_ips = 1;
	return 0;
fail:
	/* A failed create leaves nothing behind: no process, no directory. */
	local_sandbox_stop(&m, NULL, NULL);
	rm_rf(dir, NULL);
	return -1;
}

/* ---- delete ---- */

struct local_find {
	const char *id;
	char dir[PATH_MAX];
	struct local_meta m;
	bool found;
};

static int local_find_one(void *arg, const char *dir, const struct local_meta *m)
{
	struct local_find *f = arg;

	if (strcmp(m->instance_id, f->id) != 0)
		return 0;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	f->m = *m;
	f->found = true;
	return 1;
}

/* By name first (the directory), then by id (a scan). A directory without meta.json is a
 * create that died before reserving; it is found by name only. */
static int local_find(const struct local_priv *lp, const char *id, const char *name,
		      struct local_find *f, bool *ret_bare_dir, struct pp_err *err)
{
	struct pp_err rerr;

	*ret_bare_dir = false;
	f->id = id;
	f->found = false;
	if (name[0] && local_instance_dir(lp, name, f->dir, sizeof(f->dir), NULL) == 0) {
		if (local_meta_read(f->dir, &f->m, &rerr) == 0) {
			if (!id[0] || strcmp(id, f->m.instance_id) == 0) {
				f->found = true;
				return 0;
			}
		} else if (rerr.code != PP_NOT_FOUND) {
			/* damaged: which processes to stop is unknown, so say so rather than guess */
			if (err)
				*err = rerr;
			return -1;
		} else if (!id[0] && access(f->dir, F_OK) == 0) {
			*ret_bare_dir = true;
			return 0;
		}
	}
	if (!id[0])
		return 0;
	return local_meta_scan(lp, local_find_one, f, err);
}

static int local_delete(struct provider *p, const char *id, const char *name, struct cancel *cancel,
			struct pp_err *err)
{
	struct local_priv *lp = local_get(p);
	struct local_find f;
	bool bare;

	id = id ? id : "";
	name = name ? name : "";
	if (local_find(lp, id, name, &f, &bare, err) < 0)
		return -1;
	if (bare)
		return rm_rf(f.dir, err);
	if (!f.found)
		return 0;   /* already gone */
	if (strcmp(f.m.owner, provider_owner(p)) != 0)
		return pp_err_set(err, PP_PERMISSION_DENIED, "local instance %s (%s) belongs to owner %s, "
				  "not to this node", f.m.name, f.m.instance_id, f.m.owner);
	if (local_sandbox_stop(&f.m, cancel, err) < 0 || rm_rf(f.dir, err) < 0)
		return -1;
	log_info("local instance deleted", "instance=%s id=%s", f.m.name, f.m.instance_id);
	return 0;
}

/* ---- list ---- */

struct local_list {
	const char *owner;
	struct owned_instance_list *out;
	struct cancel *cancel;
	int rc;
};

static int local_list_one(void *arg, const char *dir, const struct local_meta *m)
{
	struct local_list *l = arg;
	struct owned_instance it;

	(void)dir;
	if (cancel_fired(l->cancel)) {
		l->rc = -2;
		return 1;
	}
	if (strcmp(m->owner, l->owner) != 0)
		return 0;
	memset(&it, 0, sizeof(it));
	snprintf(it.id, sizeof(it.id), "%s", m->instance_id);
	snprintf(it.name, sizeof(it.name), "%s", m->name);
	snprintf(it.sandbox_id, sizeof(it.sandbox_id), "%s", m->sandbox_id);
	it.created_unix = m->created;
	if (owned_instance_list_add(l->out, &it) < 0) {
		l->rc = -1;
		return 1;
	}
	return 0;
}

static int local_list(struct provider *p, struct owned_instance_list *ret, struct cancel *cancel,
		      struct pp_err *err)
{
	struct owned_instance_list found = { NULL, 0 };
	struct local_list l = { provider_owner(p), &found, cancel, 0 };

	if (local_meta_scan(local_get(p), local_list_one, &l, err) < 0)
		goto fail;
	if (l.rc == -2) {
		pp_err_set(err, PP_CANCELLED, "listing local instances: %s",
			   cancel_reason_text(cancel_why(cancel)));
		goto fail;
	}
	if (l.rc < 0) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing local instances");
		goto fail;
	}
	*ret = found;
	return 0;
fail:
	owned_instance_list_free(&found);
	return -1;
}

const struct provider_ops local_provider_ops = {
	.name = "local",
	.options = local_options,
	.max_user_data = LOCAL_MAX_USER_DATA,
	.shares_node_network = true,   /* a process sandbox has no network of its own */
	.init = local_init,
	.check = local_check,
	.create_instance = local_create,
	.delete_instance = local_delete,
	.list_instances = local_list,
	.destroy = local_destroy,
};
