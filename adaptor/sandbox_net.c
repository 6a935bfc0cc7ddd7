/* Pod networking of one sandbox: see sandbox_net.h. */
#include "adaptor/sandbox_net.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "adaptor/store.h"
#include "lib/log.h"
#include "lib/util.h"

void sandbox_net_init(struct daemon *d)
{
	const struct config *c = d->cfg;
	size_t n = 0;
	const char *const *cidrs = config_list(c, "POD_SUBNET_CIDRS", &n);
	size_t off = 0;

	d->net_cidrs[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(d->net_cidrs + off, sizeof(d->net_cidrs) - off, "%s%s", i ? "," : "",
				 cidrs[i]);

		if (w < 0 || (size_t)w >= sizeof(d->net_cidrs) - off)
			break;
		off += (size_t)w;
	}
	d->net_opts.tunnel_type = config_str(c, "TUNNEL_TYPE");
	d->net_opts.host_interface = config_str(c, "HOST_INTERFACE");
	d->net_opts.vxlan_port = (uint16_t)config_int(c, "VXLAN_PORT");
	d->net_opts.vxlan_min_id = (uint32_t)config_int(c, "VXLAN_MIN_ID");
	d->net_opts.pod_subnet_cidrs = d->net_cidrs;
	d->net_opts.external_net_via_podvm = config_bool(c, "EXTERNAL_NETWORK_VIA_PODVM");
}

bool sandbox_net_wanted(const struct daemon *d, const struct sandbox *sb)
{
	return sb->netns[0] && !provider_get_ops(d->provider)->shares_node_network;
}

static int net_inspect(struct daemon *d, struct sandbox *sb, struct pp_err *err)
{
	int64_t index;
	struct podnet_info *info;

	if (sb->net_info)
		return 0;
	if (store_vxlan_alloc(d->store, sb->id, podnet_worker_index_limit(&d->net_opts), &index, err) < 0)
		return -1;
	info = pp_xcalloc(1, sizeof(*info));
	if (podnet_worker_inspect(&d->net_opts, sb->netns, (uint32_t)index, info, err) < 0) {
		free(info);
		store_vxlan_release(d->store, sb->id, NULL);
		return pp_err_prefix(err, "failed to inspect netns %s", sb->netns);
	}
	sb->net_info = info;
	return 0;
}

int sandbox_net_prepare(struct daemon *d, struct sandbox *sb, struct podnet_apf *ret, bool *ret_has,
			struct pp_err *err)
{
	*ret_has = false;
	if (!sandbox_net_wanted(d, sb))
		return 0;
	if (net_inspect(d, sb, err) < 0)
		return -1;
	if (podnet_worker_apf(sb->net_info, ret, err) < 0)
		return -1;
	*ret_has = true;
	return 0;
}

static void join_ips(const struct sandbox *sb, char *out, size_t size)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < sb->n_ips; i++) {
		int w = snprintf(out + off, size - off, "%s%s", i ? "," : "", sb->ips[i]);

		if (w < 0 || (size_t)w >= size - off)
			break;
		off += (size_t)w;
	}
}

int sandbox_net_setup(struct daemon *d, struct sandbox *sb, struct pp_err *err)
{
	struct podnet_tunnel t = { 0 };
	char ips[PROVIDER_MAX_IPS * PROVIDER_IP_MAX];
	char remote[INET_ADDRSTRLEN];
	uint64_t t0 = pp_now_ms();

	if (!sandbox_net_wanted(d, sb))
		return 0;
	if (net_inspect(d, sb, err) < 0)   /* after a restart between CreateVM and StartVM */
		return -1;
	join_ips(sb, ips, sizeof(ips));
	if (podnet_worker_tunnel(sb->net_info, ips, &t, err) < 0)
		return pp_err_prefix(err, "pod network of %s", sb->id);
	inet_ntop(AF_INET, &t.remote, remote, sizeof(remote));
	if (store_vxlan_set_tunnel(d->store, sb->id, t.vni, t.port, remote, t.pod_if, err) < 0)
		return -1;
	if (podnet_worker_setup(&d->net_opts, sb->netns, &t, err) < 0)
		return pp_err_prefix(err, "setting up the pod network of %s", sb->id);
	log_info("pod network up", "sandbox=%s vni=%u remote=%s pod_if=%s ms=%llu", sb->id, t.vni,
		 remote, t.pod_if, (unsigned long long)(pp_now_ms() - t0));
	return 0;
}

/* The tunnel as the row records it; -1 if none was recorded (Setup never ran). */
static int net_tunnel_from_row(struct daemon *d, const char *id, struct podnet_tunnel *t)
{
	struct store_vxlan v = { 0 };
	int rc = -1;

	if (store_vxlan_get(d->store, id, &v, NULL) < 0)
		return -1;
	if (v.vni > 0 && v.remote[0] && inet_pton(AF_INET, v.remote, &t->remote) == 1) {
		t->vni = (uint32_t)v.vni;
		t->port = (uint16_t)v.port;
		snprintf(t->pod_if, sizeof(t->pod_if), "%s", v.pod_if);
		rc = 0;
	}
	store_vxlan_clear(&v);
	return rc;
}

void sandbox_net_teardown(struct daemon *d, const struct sandbox *sb)
{
	struct podnet_tunnel t = { 0 };
	struct pp_err err = { 0 };

	if (!sandbox_net_wanted(d, sb))
		return;
	if (net_tunnel_from_row(d, sb->id, &t) == 0 &&
	    podnet_worker_teardown(&d->net_opts, sb->netns, &t, &err) < 0)
		log_error("pod network teardown failed", "sandbox=%s vni=%u error=\"%s\"", sb->id, t.vni,
			  err.msg);
	if (store_vxlan_release(d->store, sb->id, &err) < 0 && err.code != PP_NOT_FOUND)
		log_error("releasing the VXLAN index failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
}

void sandbox_net_reconcile(struct daemon *d, const struct sandbox *sb)
{
	struct podnet_tunnel t = { 0 };
	enum podnet_reconcile_result r = PODNET_RECONCILE_INTACT;
	struct pp_err err = { 0 };

	if (!sandbox_net_wanted(d, sb) || net_tunnel_from_row(d, sb->id, &t) < 0)
		return;
	if (podnet_worker_reconcile(&d->net_opts, sb->netns, &t, &r, &err) < 0) {
		log_error("pod network check after restart failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
		return;
	}
	if (r != PODNET_RECONCILE_INTACT)
		log_warn("pod network repaired after restart", "sandbox=%s result=%s", sb->id,
			 r == PODNET_RECONCILE_REBUILT ? "rebuilt" : "netns-gone");
}
