/*
 * The agent proxy of one sandbox, configured from the daemon's settings: listens on the
 * sandbox's agent.ttrpc and relays to the forwarder at <ips[0]>:FORWARDER_PORT, with the TLS
 * server name the TLS mode dictates (the instance name, or podvm-server in manual mode).
 */
#include <stdlib.h>

#include "adaptor/daemon.h"
#include "adaptor/proxy.h"
#include "adaptor/tls_setup.h"
#include "lib/util.h"

struct agent_proxy *sandbox_proxy_start(struct daemon *d, struct sandbox *sb,
					void (*ready)(void *arg, const struct pp_err *err), void *arg,
					struct pp_err *err)
{
	struct agent_proxy_config cfg = { 0 };
	uint32_t port = 0;

	if (sb->n_ips < 1) {
		pp_err_set(err, PP_UNAVAILABLE, "instance IP is not available");
		return NULL;
	}
	parse_uint32(d->forwarder_port, &port);   /* checked at start-up */
	cfg.pods_dir = d->pods_dir;
	cfg.sandbox_id = sb->id;
	cfg.host = sb->ips[0];
	cfg.port = (uint16_t)port;
	cfg.tls = d->tls ? d->tls->client_ctx : NULL;
	cfg.server_name = d->tls ? tls_setup_server_name(d->tls, sb->instance_name) : sb->instance_name;
	cfg.timeout_ms = d->proxy_timeout_ms;
	cfg.direct_volumes_dir = config_str(d->cfg, "DIRECT_VOLUMES_DIR");
	return agent_proxy_start(d->loop, &cfg, ready, arg, err);
}
