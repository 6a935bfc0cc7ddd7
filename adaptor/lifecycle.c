/*
 * The sandbox lifecycle (see lifecycle.h and docs/internals/lifecycle.md).
 *
 * Every step that blocks runs as a job on a worker: the row in state.db is updated first, then
 * the cloud is called, then the result is posted back to the loop, which owns the agent proxy
 * and answers the call. A sandbox is `busy` while a start or stop job holds it; the pointer
 * stays valid for the job because only a finished stop frees it.
 *
 * Cancellation: StartVM's cancel token fires when the shim's deadline passes or its connection
 * closes; the provider's create and the wait for the proxy watch it, and a cancelled start
 * deletes the VM. StopVM does not use the request's token: the deletion runs to its end even if
 * the client gave up (runtime-rs waits one second), and is recorded.
 */
#include "adaptor/lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "adaptor/annotations.h"
#include "adaptor/k8s_mode.h"
#include "adaptor/metrics.h"
#include "adaptor/naming.h"
#include "adaptor/proxy.h"
#include "adaptor/sandbox_db.h"
#include "adaptor/sandbox_net.h"
#include "adaptor/vmconfig.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define START_POLL_MS 50          /* how often a StartVM waiting for the proxy checks its token */
#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct start_job {
	struct daemon *d;
	struct sandbox *sb;
	struct pp_err err;
	bool attempted;     /* create_instance was called: the VM may exist */
};

struct stop_job {
	struct daemon *d;
	struct sandbox *sb;
	struct ttrpc_call *call;
	enum sandbox_state prev;
	bool removed;       /* row gone, sandbox to be freed */
};

static void submit(struct daemon *d, work_fn fn, void *arg)
{
	daemon_job_begin(d);
	if (workpool_submit(d->pool, fn, arg) < 0) {
		/* Out of memory queueing a job: run it here rather than lose the call. */
		fn(arg);
	}
}

static void set_state(struct daemon *d, struct sandbox *sb, enum sandbox_state p, bool busy)
{
	pthread_mutex_lock(&d->lock);
	sb->state = p;
	sb->busy = busy;
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ CreateVM */

struct create_job {
	struct daemon *d;
	struct ttrpc_call *call;
	Hypervisor__CreateVMRequest *req;
};

static int create_fill(struct daemon *d, struct sandbox *sb, const Hypervisor__CreateVMRequest *req,
		       struct pod_annotations *ann, struct pp_err *err)
{
	struct annotation_kv *kv = pp_xcalloc(req->n_annotations + 1, sizeof(*kv));
	int n;

	for (size_t i = 0; i < req->n_annotations; i++) {
		kv[i].key = req->annotations[i]->key;
		kv[i].value = req->annotations[i]->value;
	}
	n = annotations_parse(kv, req->n_annotations, ann, err);
	free(kv);
	if (n < 0)
		return -1;
	if (strlen(req->networknamespacepath) >= sizeof(sb->netns))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "network namespace path is too long (%zu bytes)",
				  strlen(req->networknamespacepath));
	snprintf(sb->pod_name, sizeof(sb->pod_name), "%s", ann->pod_name);
	snprintf(sb->pod_namespace, sizeof(sb->pod_namespace), "%s", ann->pod_namespace);
	snprintf(sb->netns, sizeof(sb->netns), "%s", req->networknamespacepath);
	if (naming_instance_name(ann->pod_name, sb->id, sb->instance_name, sizeof(sb->instance_name), err) < 0)
		return -1;
	n = snprintf(sb->agent_socket, sizeof(sb->agent_socket), "%s/%s/agent.ttrpc", d->pods_dir, sb->id);
	if (n < 0 || (size_t)n > UNIX_PATH_MAX_LEN || (size_t)n >= sizeof(sb->agent_socket))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "agent socket path %s/%s/agent.ttrpc is longer than the %zu bytes a unix socket allows: use a shorter PODS_DIR",
				  d->pods_dir, sb->id, UNIX_PATH_MAX_LEN);
	snprintf(sb->spec_type, sizeof(sb->spec_type), "%s", ann->instance_type);
	snprintf(sb->spec_image, sizeof(sb->spec_image), "%s", ann->image);
	sb->spec.instance_type = sb->spec_type;
	sb->spec.image = sb->spec_image;
	sb->spec.vcpus = ann->vcpus;
	sb->spec.memory_mib = ann->memory_mib;
	sb->spec.gpus = ann->gpus;
	return vmconfig_render(d, sb, ann, &sb->user_data, &sb->user_data_len, err);
}

static void create_job_run(void *arg)
{
	struct create_job *j = arg;
	struct daemon *d = j->d;
	struct pp_err err = { 0 };
	struct pod_annotations ann = { 0 };
	struct sandbox *sb = sandbox_new(j->req->id);
	char dir[2 * SANDBOX_PATH_MAX];
	uint64_t t0 = pp_now_ms();
	bool exists;

	pthread_mutex_lock(&d->lock);
	exists = sandbox_table_get(&d->sandboxes, sb->id) != NULL;
	pthread_mutex_unlock(&d->lock);
	if (exists) {
		pp_err_set(&err, PP_ALREADY_EXISTS, "adding sandbox: sandbox %s already exists", sb->id);
		goto fail;
	}
	if (create_fill(d, sb, j->req, &ann, &err) < 0)
		goto fail_net;
	if (sandbox_db_insert(d, sb, &err) < 0) {
		if (err.code == PP_ALREADY_EXISTS)
			goto fail;   /* the index belongs to the sandbox that exists */
		goto fail_net;
	}
	snprintf(dir, sizeof(dir), "%s/%s", d->pods_dir, sb->id);
	if (mkdir_p(dir, 0700, &err) < 0) {
		sandbox_db_remove(d, sb->id, NULL);
		goto fail_net;
	}
	pthread_mutex_lock(&d->lock);
	if (sandbox_table_add(&d->sandboxes, sb) < 0) {
		pthread_mutex_unlock(&d->lock);
		pp_err_set(&err, PP_ALREADY_EXISTS, "adding sandbox: sandbox %s already exists", sb->id);
		goto fail;   /* a concurrent CreateVM for the same id won; its row stays */
	}
	pthread_mutex_unlock(&d->lock);
	log_info("sandbox created", "sandbox=%s pod=%s/%s instance=%s user_data_bytes=%zu", sb->id,
		 sb->pod_namespace, sb->pod_name, sb->instance_name, sb->user_data_len);
	{
		Hypervisor__CreateVMResponse resp = HYPERVISOR__CREATE_VMRESPONSE__INIT;
		uint8_t buf[SANDBOX_PATH_MAX + 16];
		size_t n;

		resp.agentsocketpath = sb->agent_socket;
		n = hypervisor__create_vmresponse__pack(&resp, buf);
		ttrpc_call_reply(j->call, buf, n);
	}
	metrics_observe(METRICS_CREATE, pp_now_ms() - t0, true);
	sb = NULL;
	goto out;
fail_net:
	if (sb->net_info)
		store_vxlan_release(d->store, sb->id, NULL);
fail:
	log_warn("CreateVM failed", "sandbox=%s code=%s error=\"%s\"", j->req->id,
		 pp_code_name(err.code), err.msg);
	ttrpc_call_reply_err(j->call, &err);
	metrics_observe(METRICS_CREATE, pp_now_ms() - t0, false);
out:
	sandbox_free(sb);
	pod_annotations_clear(&ann);
	hypervisor__create_vmrequest__free_unpacked(j->req, NULL);
	daemon_job_end(d);
	free(j);
}

void lifecycle_create(struct daemon *d, struct ttrpc_call *call, Hypervisor__CreateVMRequest *req)
{
	struct create_job *j = pp_xcalloc(1, sizeof(*j));

	j->d = d;
	j->call = call;
	j->req = req;
	submit(d, create_job_run, j);
}

/* ------------------------------------------------------------------ StartVM */

static void start_failed(struct start_job *j);
static void start_proxy(void *arg);

static void start_job_run(void *arg)
{
	struct start_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;
	struct create_request req = { 0 };
	struct instance inst = { 0 };
	const struct provider_ops *ops = provider_get_ops(d->provider);

	if (sandbox_db_transition(d, sb->id, SANDBOX_CREATED, SANDBOX_STARTING, NULL, &j->err) < 0)
		goto fail;
	daemon_crash_point("start:before-create");
	if (!sb->user_data && vmconfig_load(d, sb, &sb->user_data, &sb->user_data_len, &j->err) < 0)
		goto fail;
	req.sandbox_id = sb->id;
	req.pod_name = sb->pod_name;
	req.pod_namespace = sb->pod_namespace;
	req.instance_name = sb->instance_name;
	req.user_data = sb->user_data;
	req.user_data_len = sb->user_data_len;
	req.spec = sb->spec;
	req.cancel = sb->start_cancel;
	j->attempted = true;
	if (ops->create_instance(d->provider, &req, &inst, &j->err) < 0) {
		pp_err_prefix(&j->err, "creating instance %s", sb->instance_name);
		goto fail;
	}
	pthread_mutex_lock(&d->lock);
	snprintf(sb->instance_id, sizeof(sb->instance_id), "%s", inst.id);
	sb->n_ips = inst.n_ips;
	for (int i = 0; i < inst.n_ips && i < PROVIDER_MAX_IPS; i++)
		snprintf(sb->ips[i], sizeof(sb->ips[i]), "%s", inst.ips[i]);
	pthread_mutex_unlock(&d->lock);
	if (sandbox_db_set_instance(d, sb, &j->err) < 0)
		goto fail;
	log_info("instance created", "sandbox=%s instance=%s id=%s ip=%s ms=%llu", sb->id,
		 sb->instance_name, sb->instance_id, sb->n_ips ? sb->ips[0] : "",
		 (unsigned long long)(pp_now_ms() - sb->started_ms));
	daemon_crash_point("start:after-create");
	k8s_mode_instance_created(d, sb);   /* PeerPod: failures are logged, not fatal (upstream) */
	if (sb->n_ips == 0) {
		pp_err_set(&j->err, PP_UNAVAILABLE, "instance IP is not available");
		goto fail;
	}
	if (sandbox_net_setup(d, sb, &j->err) < 0)
		goto fail;
	loop_post(d->loop, start_proxy, j);
	daemon_job_end(d);
	return;
fail:
	loop_post(d->loop, (loop_fn)start_failed, j);
	daemon_job_end(d);
}

/* Loop thread: the start is over (state is RUNNING or FAILED). Answers StartVM, then runs a
 * StopVM that arrived meanwhile. */
static void start_finish(struct start_job *j, enum sandbox_state state)
{
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;
	struct ttrpc_call *call = sb->start_call;
	struct ttrpc_call *stop = sb->pending_stop;

	sb->start_call = NULL;
	sb->pending_stop = NULL;
	cancel_unref(sb->start_cancel);
	sb->start_cancel = NULL;
	set_state(d, sb, state, false);
	metrics_observe(METRICS_START, pp_now_ms() - sb->started_ms, state == SANDBOX_RUNNING);
	if (state == SANDBOX_RUNNING) {
		log_info("VM started", "sandbox=%s instance=%s ms=%llu", sb->id, sb->instance_name,
			 (unsigned long long)(pp_now_ms() - sb->started_ms));
		ttrpc_call_reply(call, NULL, 0);
		podvminfo_notify(d);
	} else {
		log_error("StartVM failed", "sandbox=%s instance=%s code=%s error=\"%s\"", sb->id,
			  sb->instance_name, pp_code_name(j->err.code), j->err.msg);
		if (call)
			ttrpc_call_reply_err(call, &j->err);
	}
	free(j);
	if (stop && !d->loop_done)
		lifecycle_stop(d, stop, sb->id);
	else if (stop)
		ttrpc_call_reply_error(stop, PP_UNAVAILABLE, "the adaptor is shutting down");
}

static void start_done(void *arg)
{
	start_finish(arg, SANDBOX_RUNNING);
}

static void mark_running_run(void *arg)
{
	struct start_job *j = arg;
	struct daemon *d = j->d;   /* j belongs to the loop once posted (start_done frees it) */

	if (sandbox_db_transition(d, j->sb->id, SANDBOX_STARTING, SANDBOX_RUNNING, NULL, &j->err) < 0) {
		loop_post(d->loop, (loop_fn)start_failed, j);
	} else {
		daemon_crash_point("start:after-running");
		loop_post(d->loop, start_done, j);
	}
	daemon_job_end(d);
}

static void start_stop_waiting(struct sandbox *sb, struct daemon *d)
{
	if (sb->start_poll) {
		loop_timer_cancel(d->loop, sb->start_poll);
		sb->start_poll = NULL;
	}
}

static void on_proxy_ready(void *arg, const struct pp_err *err)
{
	struct start_job *j = arg;
	struct sandbox *sb = j->sb;

	start_stop_waiting(sb, j->d);
	if (err) {
		j->err = *err;
		start_failed(j);
		return;
	}
	metrics_add_proxy_connection();
	submit(j->d, mark_running_run, j);
}

static void start_poll(void *arg)
{
	struct start_job *j = arg;
	struct sandbox *sb = j->sb;

	sb->start_poll = NULL;
	if (cancel_fired(j->d->shutdown)) {
		/* The daemon is stopping: answer now rather than hold shutdown for its grace period.
		 * The row stays "starting", so the next start deletes the instance. */
		if (sb->proxy) {
			agent_proxy_stop(sb->proxy);
			sb->proxy = NULL;
		}
		pp_err_set(&j->err, PP_UNAVAILABLE, "the adaptor is shutting down");
		start_finish(j, SANDBOX_STARTING);
		return;
	}
	if (cancel_fired(sb->start_cancel)) {
		pp_err_set(&j->err, cancel_why(sb->start_cancel) == CANCEL_DEADLINE ?
				    PP_DEADLINE_EXCEEDED : PP_CANCELLED,
			   "StartVM cancelled while waiting for the forwarder of %s: %s",
			   sb->instance_name, cancel_reason_text(cancel_why(sb->start_cancel)));
		start_failed(j);
		return;
	}
	sb->start_poll = loop_timer_add(j->d->loop, START_POLL_MS, start_poll, j);
}

static void start_proxy(void *arg)
{
	struct start_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;

	if (d->loop_done) {
		/* Shut down meanwhile: the VM stays, the row says "starting"; the next start cleans up. */
		pp_err_set(&j->err, PP_UNAVAILABLE, "the adaptor is shutting down");
		start_finish(j, SANDBOX_STARTING);
		return;
	}
	if (cancel_fired(sb->start_cancel)) {
		pp_err_set(&j->err, PP_CANCELLED, "StartVM cancelled: %s",
			   cancel_reason_text(cancel_why(sb->start_cancel)));
		start_failed(j);
		return;
	}
	sb->proxy = sandbox_proxy_start(d, sb, on_proxy_ready, j, &j->err);
	if (!sb->proxy) {
		start_failed(j);
		return;
	}
	sb->start_poll = loop_timer_add(d->loop, START_POLL_MS, start_poll, j);
}

static void start_fail_done(void *arg)
{
	start_finish(arg, SANDBOX_FAILED);
}

static void start_cleanup_run(void *arg)
{
	struct start_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;
	struct pp_err derr = { 0 };
	bool keep = config_bool(d->cfg, "KEEP_FAILED_VMS");

	if (j->attempted && !keep) {
		if (provider_get_ops(d->provider)->delete_instance(d->provider, sb->instance_id,
								  sb->instance_name, d->shutdown, &derr) < 0)
			log_error("deleting the instance of a failed StartVM failed", "sandbox=%s instance=%s error=\"%s\"",
				  sb->id, sb->instance_name, derr.msg);
		else {
			log_info("instance of a failed StartVM deleted", "sandbox=%s instance=%s", sb->id,
				 sb->instance_name);
			k8s_mode_instance_deleted(d, sb);
		}
		sandbox_net_teardown(d, sb);
	} else if (j->attempted) {
		log_warn("instance of a failed StartVM kept for inspection (KEEP_FAILED_VMS)",
			 "sandbox=%s instance=%s id=%s", sb->id, sb->instance_name, sb->instance_id);
	}
	sandbox_db_transition(d, sb->id, SANDBOX_STARTING, SANDBOX_FAILED, j->err.msg, NULL);
	loop_post(d->loop, start_fail_done, j);
	daemon_job_end(d);
}

/* Loop thread: any failure after StartVM was accepted. */
static void start_failed(struct start_job *j)
{
	struct sandbox *sb = j->sb;

	if (j->d->loop_done) {
		start_finish(j, SANDBOX_STARTING);
		return;
	}
	start_stop_waiting(sb, j->d);
	if (sb->proxy) {
		agent_proxy_stop(sb->proxy);
		sb->proxy = NULL;
	}
	submit(j->d, start_cleanup_run, j);
}

void lifecycle_start(struct daemon *d, struct ttrpc_call *call, const char *id)
{
	struct sandbox *sb;
	struct start_job *j;
	enum sandbox_state phase;

	pthread_mutex_lock(&d->lock);
	sb = sandbox_table_get(&d->sandboxes, id);
	if (!sb) {
		pthread_mutex_unlock(&d->lock);
		ttrpc_call_reply_error(call, PP_NOT_FOUND, "getting sandbox: sandbox %s does not exist", id);
		return;
	}
	phase = sb->state;
	if (sb->busy || phase != SANDBOX_CREATED) {
		pthread_mutex_unlock(&d->lock);
		ttrpc_call_reply_error(call, PP_FAILED_PRECONDITION,
				       "sandbox %s is %s%s: StartVM needs a sandbox that was created and not started",
				       id, sandbox_state_name(phase), sb->busy ? " (busy)" : "");
		return;
	}
	sb->busy = true;
	sb->state = SANDBOX_STARTING;
	pthread_mutex_unlock(&d->lock);
	sb->started_ms = pp_now_ms();
	sb->start_call = call;
	sb->start_cancel = cancel_ref(ttrpc_call_cancel(call));
	j = pp_xcalloc(1, sizeof(*j));
	j->d = d;
	j->sb = sb;
	submit(d, start_job_run, j);
}

/* ------------------------------------------------------------------ StopVM */

static void stop_done(void *arg)
{
	struct stop_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;

	if (j->removed) {
		pthread_mutex_lock(&d->lock);
		sandbox_table_remove(&d->sandboxes, sb->id);
		pthread_mutex_unlock(&d->lock);
		sandbox_free(sb);
	} else {
		set_state(d, sb, SANDBOX_STOPPING, false);
	}
	/* Upstream answers StopVM with success even when the deletion failed: the shim cannot do
	 * anything about it. We keep the row in "stopping" and the reaper retries. */
	if (j->call)
		ttrpc_call_reply(j->call, NULL, 0);
	free(j);
}

static void stop_job_run(void *arg)
{
	struct stop_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;
	struct pp_err err = { 0 };
	bool keep = j->prev == SANDBOX_FAILED && config_bool(d->cfg, "KEEP_FAILED_VMS");
	bool has_vm = sb->instance_id[0] || j->prev != SANDBOX_CREATED;
	char dir[2 * SANDBOX_PATH_MAX];

	if (sandbox_db_transition(d, sb->id, j->prev, SANDBOX_STOPPING, NULL, &err) < 0) {
		log_error("StopVM: recording the stop failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
		goto out;
	}
	daemon_crash_point("stop:before-delete");
	if (has_vm && !keep) {
		uint64_t t0 = pp_now_ms();

		if (provider_get_ops(d->provider)->delete_instance(d->provider, sb->instance_id,
								  sb->instance_name, d->shutdown, &err) < 0) {
			log_error("deleting instance failed; the reaper will retry", "sandbox=%s instance=%s id=%s error=\"%s\"",
				  sb->id, sb->instance_name, sb->instance_id, err.msg);
			metrics_observe(METRICS_DELETE, pp_now_ms() - t0, false);
			goto out;
		}
		metrics_observe(METRICS_DELETE, pp_now_ms() - t0, true);
		k8s_mode_instance_deleted(d, sb);   /* release the PeerPod's finalizer */
		log_info("instance deleted", "sandbox=%s instance=%s id=%s ms=%llu", sb->id,
			 sb->instance_name, sb->instance_id, (unsigned long long)(pp_now_ms() - t0));
	}
	if (!keep)
		sandbox_net_teardown(d, sb);
	daemon_crash_point("stop:after-delete");
	if (keep) {
		/* Developer mode: the failed VM stays, and so does its row (as "failed"), so that
		 * `cloud-api-adaptor ls` shows it and `gc` can remove it later. */
		sandbox_db_transition(d, sb->id, SANDBOX_STOPPING, SANDBOX_FAILED, "kept for inspection", NULL);
		log_warn("failed VM kept for inspection (KEEP_FAILED_VMS)", "sandbox=%s instance=%s id=%s",
			 sb->id, sb->instance_name, sb->instance_id);
	} else if (sandbox_db_remove(d, sb->id, &err) < 0) {
		log_error("StopVM: removing the row failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", d->pods_dir, sb->id);
	if (rm_rf(dir, &err) < 0)
		log_warn("removing the sandbox directory failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
	j->removed = true;
	log_info("VM stopped", "sandbox=%s instance=%s", sb->id, sb->instance_name);
out:
	loop_post(d->loop, stop_done, j);
	daemon_job_end(d);
}

void lifecycle_stop(struct daemon *d, struct ttrpc_call *call, const char *id)
{
	struct sandbox *sb;
	struct stop_job *j;

	pthread_mutex_lock(&d->lock);
	sb = sandbox_table_get(&d->sandboxes, id);
	if (!sb) {
		pthread_mutex_unlock(&d->lock);
		ttrpc_call_reply_error(call, PP_NOT_FOUND, "stopping VM: sandbox %s does not exist", id);
		return;
	}
	if (sb->busy) {
		bool starting = sb->state == SANDBOX_STARTING && !sb->pending_stop;

		pthread_mutex_unlock(&d->lock);
		if (starting) {
			/* StopVM during StartVM: cancel the start; the stop runs once it unwound. */
			sb->pending_stop = call;
			cancel_fire(sb->start_cancel, CANCEL_EXPLICIT);
			return;
		}
		ttrpc_call_reply_error(call, PP_FAILED_PRECONDITION,
				       "stopping VM: sandbox %s is already being stopped", id);
		return;
	}
	j = pp_xcalloc(1, sizeof(*j));
	j->prev = sb->state;
	sb->busy = true;
	sb->state = SANDBOX_STOPPING;
	pthread_mutex_unlock(&d->lock);
	if (sb->proxy) {
		agent_proxy_stop(sb->proxy);
		sb->proxy = NULL;
	}
	j->d = d;
	j->sb = sb;
	j->call = call;
	log_info("stopping VM", "sandbox=%s instance=%s id=%s", sb->id, sb->instance_name, sb->instance_id);
	submit(d, stop_job_run, j);
}

/* ------------------------------------------------------------------ restart */

static void on_restored_proxy_ready(void *arg, const struct pp_err *err)
{
	struct sandbox *sb = arg;

	if (err)
		log_warn("agent proxy of a restored sandbox could not reach its VM yet; it keeps dialling",
			 "sandbox=%s instance=%s error=\"%s\"", sb->id, sb->instance_name, err->msg);
	else {
		metrics_add_proxy_connection();
		log_info("agent proxy restored", "sandbox=%s instance=%s", sb->id, sb->instance_name);
	}
}

void lifecycle_restore_proxy(struct daemon *d, struct sandbox *sb)
{
	struct pp_err err = { 0 };

	sb->proxy = sandbox_proxy_start(d, sb, on_restored_proxy_ready, sb, &err);
	if (!sb->proxy)
		log_error("restoring the agent proxy failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
}

static int stop_proxy_one(struct sandbox *sb, void *arg)
{
	(void)arg;
	if (sb->proxy) {
		agent_proxy_stop(sb->proxy);
		sb->proxy = NULL;
	}
	return 0;
}

void lifecycle_stop_all_proxies(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	sandbox_table_foreach(&d->sandboxes, stop_proxy_one, NULL);
	pthread_mutex_unlock(&d->lock);
}
