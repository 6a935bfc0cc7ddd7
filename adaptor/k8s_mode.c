/*
 * Kubernetes mode and the HTTP endpoint, wired into the daemon: see k8s_mode.h.
 *
 * The Kubernetes client is [const] once k8s_mode_start returned, and thread-safe, so the
 * lifecycle's workers and the endpoint's thread call it without a daemon lock. The startup
 * probe's "all peer pods became Ready after our start" check stops once it has succeeded
 * (upstream's semantics, spec §7.3).
 */
#include "adaptor/k8s_mode.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "adaptor/k8s_ops.h"
#include "adaptor/metrics.h"
#include "adaptor/probe_http.h"
#include "adaptor/userdata.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

struct k8s_mode {
	struct k8s_client *client;     /* [const] NULL outside Kubernetes mode */
	struct probe_http *probe;      /* [const] NULL when not serving */
	char node[256];                /* [const] */
	char pod_uid[128];             /* [const] */
	char cloud_provider[64];       /* [const] */
	char runtime_class[128];       /* [const] */
	int64_t limit;                 /* [const] */
	int64_t start_unix;            /* [const] */
	atomic_bool started;           /* /startup succeeded once */
};

/* ------------------------------------------------------------------ endpoint */

static bool hypervisor_socket_answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = -1;
	bool ok;
	size_t n = strlen(path);

	if (n >= sizeof(sa.sun_path))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, n + 1);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int probe_startup(void *arg)
{
	struct daemon *d = arg;
	struct k8s_mode *k = d->k8s;
	struct pp_err err = { 0 };
	bool ready = false;

	if (!hypervisor_socket_answers(d->socket_path))
		return 500;
	if (!k->client || atomic_load(&k->started))
		return 200;
	if (k8s_node_peer_pods_ready(k->client, k->node, k->runtime_class, k->start_unix, &ready, &err) < 0) {
		log_warn("startup probe: listing the node's pods failed", "error=\"%s\"", err.msg);
		return 500;
	}
	if (!ready)
		return 500;
	atomic_store(&k->started, true);
	log_info("startup probe succeeded", "node=%s", k->node);
	return 200;
}

static int count_state(struct sandbox *sb, void *arg)
{
	uint64_t *counts = arg;

	if ((int)sb->state >= 0 && sb->state < SANDBOX_STATE_COUNT)
		counts[sb->state]++;
	return 0;
}

static int metrics_sandboxes(struct daemon *d, struct buf *out)
{
	uint64_t counts[SANDBOX_STATE_COUNT] = { 0 };
	int rc;

	pthread_mutex_lock(&d->lock);
	sandbox_table_foreach(&d->sandboxes, count_state, counts);
	pthread_mutex_unlock(&d->lock);
	rc = buf_append_str(out, "# HELP caa_sandboxes Sandboxes known to the daemon, by state.\n"
			    "# TYPE caa_sandboxes gauge\n");
	for (int s = 0; s < SANDBOX_STATE_COUNT && rc == 0; s++)
		rc = buf_appendf(out, "caa_sandboxes{state=\"%s\"} %llu\n",
				 sandbox_state_name((enum sandbox_state)s), (unsigned long long)counts[s]);
	return rc;
}

static int probe_metrics(void *arg, struct buf *out)
{
	struct daemon *d = arg;
	const struct provider_ops *ops = provider_get_ops(d->provider);
	struct http_client *hc = ops->http_client ? ops->http_client(d->provider) : NULL;
	const char *names[1] = { ops->name };

	if (metrics_sandboxes(d, out) < 0 || metrics_render(out) < 0)
		return -1;
	if (metrics_render_http(out, "cloud_api", "provider", names, &hc, hc ? 1 : 0) < 0)
		return -1;
	if (d->k8s->client) {
		struct http_client *kc = k8s_client_http(d->k8s->client);
		const char *kn[1] = { "k8s" };

		if (metrics_render_http(out, "kube_api", "client", kn, &kc, 1) < 0)
			return -1;
	}
	return 0;
}

static int endpoint_start(struct daemon *d, struct pp_err *err)
{
	struct probe_http_config pc = {
		.address = K8S_MODE_PROBE_ADDRESS,
		.startup = probe_startup,
		.metrics = probe_metrics,
		.arg = d,
	};
	int64_t port = config_int(d->cfg, "PROBE_PORT");

	if (port < 0 || port > 65535)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "PROBE_PORT %lld is not a TCP port", (long long)port);
	pc.port = (uint16_t)port;
	d->k8s->probe = probe_http_start(&pc, err);
	if (!d->k8s->probe)
		return -1;
	log_info("probe listening", "address=%s port=%u", K8S_MODE_PROBE_ADDRESS,
		 (unsigned)probe_http_port(d->k8s->probe));
	return 0;
}

/* ------------------------------------------------------------------ start and stop */

static struct k8s_client *client_new(struct daemon *d, struct pp_err *err)
{
	const char *kubeconfig = config_str(d->cfg, "KUBECONFIG");
	char scratch[512];

	if (!*kubeconfig)
		return k8s_client_new_incluster(NULL, err);
	if (snprintf(scratch, sizeof(scratch), "%s/k8s", d->state_dir) >= (int)sizeof(scratch)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "STATE_DIR is too long");
		return NULL;
	}
	if (mkdir_p(scratch, 0700, err) < 0)
		return NULL;
	return k8s_client_new_kubeconfig(kubeconfig, scratch, err);
}

static int copy_str(char *dst, size_t size, const char *src, const char *what, struct pp_err *err)
{
	if (snprintf(dst, size, "%s", src) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is too long", what);
	return 0;
}

static int k8s_mode_enter(struct daemon *d, struct k8s_mode *k, struct pp_err *err)
{
	struct pp_err cerr = { 0 };
	const char *cp = config_str(d->cfg, "CLOUD_PROVIDER");

	if (!*config_str(d->cfg, "NODE_NAME")) {
		log_info("Kubernetes integration off: NODE_NAME is not set", "probe=%s",
			 config_is_set(d->cfg, "PROBE_PORT") ? "on" : "off");
		return 0;
	}
	k->client = client_new(d, &cerr);
	if (!k->client) {
		log_warn("Kubernetes integration off: no usable Kubernetes configuration", "error=\"%s\"", cerr.msg);
		return 0;
	}
	if (copy_str(k->node, sizeof(k->node), config_str(d->cfg, "NODE_NAME"), "NODE_NAME", err) < 0 ||
	    copy_str(k->pod_uid, sizeof(k->pod_uid), config_str(d->cfg, "POD_UID"), "POD_UID", err) < 0 ||
	    copy_str(k->cloud_provider, sizeof(k->cloud_provider), *cp ? cp : d->provider_name,
		     "CLOUD_PROVIDER", err) < 0 ||
	    copy_str(k->runtime_class, sizeof(k->runtime_class), config_str(d->cfg, "RUNTIMECLASS_NAME"),
		     "RUNTIMECLASS_NAME", err) < 0)
		return -1;
	k->limit = config_int(d->cfg, "PEERPODS_LIMIT_PER_NODE");
	log_info("Kubernetes integration on", "node=%s server=%s limit=%lld", k->node,
		 k8s_client_server(k->client), (long long)k->limit);
	if (k->limit >= 0 && k8s_node_advertise(k->client, k->node, k->pod_uid, k->limit, err) < 0)
		return pp_err_prefix(err, "advertising %s on node %s", K8S_RESOURCE_VM, k->node);
	return 0;
}

int k8s_mode_start(struct daemon *d, struct pp_err *err)
{
	struct k8s_mode *k = pp_xcalloc(1, sizeof(*k));

	d->k8s = k;
	k->start_unix = pp_unix_time();
	if (k8s_mode_enter(d, k, err) < 0)
		return -1;
	if (k->client || config_is_set(d->cfg, "PROBE_PORT"))
		return endpoint_start(d, err);
	return 0;
}

bool k8s_mode_owns_node(struct daemon *d)
{
	struct k8s_mode *k = d->k8s;
	struct pp_err err = { 0 };
	bool owner = true;

	if (!k || !k->client)
		return true;
	if (k8s_node_is_owner(k->client, k->node, k->pod_uid, &owner, &err) < 0) {
		log_warn("reading the node's owner annotation failed", "node=%s error=\"%s\"", k->node, err.msg);
		return false;
	}
	return owner;
}

void k8s_mode_stop(struct daemon *d)
{
	struct k8s_mode *k = d->k8s;
	struct pp_err err = { 0 };
	bool removed = false;

	if (!k)
		return;
	probe_http_stop(k->probe);
	k->probe = NULL;
	if (!k->client)
		return;
	if (k8s_node_withdraw(k->client, k->node, k->pod_uid, &removed, &err) < 0)
		log_warn("withdrawing the node's extended resource failed", "node=%s error=\"%s\"", k->node, err.msg);
	else if (removed)
		log_info("node extended resource withdrawn", "node=%s resource=%s", k->node, K8S_RESOURCE_VM);
	else
		log_info("node extended resource left to its new owner", "node=%s", k->node);
}

void k8s_mode_free(struct daemon *d)
{
	struct k8s_mode *k = d->k8s;

	if (!k)
		return;
	probe_http_stop(k->probe);
	k8s_client_free(k->client);
	free(k);
	d->k8s = NULL;
}

/* ------------------------------------------------------------------ lifecycle hooks */

static struct k8s_client *client_of(struct daemon *d)
{
	return d->k8s ? d->k8s->client : NULL;
}

void k8s_mode_instance_created(struct daemon *d, const struct sandbox *sb)
{
	struct k8s_client *c = client_of(d);
	struct pp_err err = { 0 };
	int rc;

	if (!c)
		return;
	rc = k8s_peerpod_create(c, sb->pod_namespace, sb->pod_name, sb->id, d->k8s->cloud_provider,
				sb->instance_id, &err);
	metrics_add_peerpod(rc == 0);
	if (rc < 0)
		log_warn("creating the PeerPod failed", "sandbox=%s pod=%s/%s error=\"%s\"", sb->id,
			 sb->pod_namespace, sb->pod_name, err.msg);
	else
		log_info("PeerPod created", "sandbox=%s pod=%s/%s instance=%s", sb->id, sb->pod_namespace,
			 sb->pod_name, sb->instance_id);
}

void k8s_mode_instance_deleted(struct daemon *d, const struct sandbox *sb)
{
	struct k8s_client *c = client_of(d);
	struct pp_err err = { 0 };

	if (!c)
		return;
	if (k8s_peerpod_release(c, sb->pod_namespace, sb->pod_name, sb->id, &err) < 0)
		log_warn("releasing the PeerPod's finalizer failed", "sandbox=%s pod=%s/%s error=\"%s\"",
			 sb->id, sb->pod_namespace, sb->pod_name, err.msg);
	else
		log_info("PeerPod released", "sandbox=%s pod=%s/%s", sb->id, sb->pod_namespace, sb->pod_name);
}

char *k8s_mode_auth_json(struct daemon *d, const struct sandbox *sb)
{
	struct k8s_client *c = client_of(d);
	struct pp_err err = { 0 };
	char *auth = NULL;

	if (!c)
		return NULL;
	if (k8s_pull_secrets_auth_json(c, sb->pod_namespace, sb->pod_name, &auth, &err) < 0) {
		log_warn("reading the pod's image pull secrets failed; the VM gets no auth.json",
			 "sandbox=%s pod=%s/%s error=\"%s\"", sb->id, sb->pod_namespace, sb->pod_name, err.msg);
		return NULL;
	}
	if (auth && strlen(auth) > USERDATA_AUTH_JSON_MAX) {
		log_warn("auth.json dropped: larger than the limit", "sandbox=%s pod=%s/%s bytes=%zu limit=%d",
			 sb->id, sb->pod_namespace, sb->pod_name, strlen(auth), USERDATA_AUTH_JSON_MAX);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		return NULL;
	}
	return auth;
}
