/*
 * The per-sandbox agent proxy: the kata shim's `<pods-dir>/<sid>/agent.ttrpc` socket, relayed
 * frame by frame (lib/ttrpc_relay) over one TCP (+mTLS) connection to the
 * agent-protocol-forwarder in the pod VM (DESIGN idea 4, spec §3.5).
 *
 * The one idea: the proxy decodes nothing but CreateContainer, which it edits as upstream CAA
 * does (CSI target-path annotation, GPU CDI annotation, cloud-volumes annotation) and
 * re-encodes; protobuf-c keeps every field it does not declare. The upstream is dialled on a short fixed cadence (every ~100 ms,
 * jittered ±50%, each attempt bounded by AGENT_PROXY_ATTEMPT_MS) until it answers or the proxy
 * timeout ends, and re-dialled with the same cadence, forever, whenever it breaks.
 */
#ifndef PP_ADAPTOR_PROXY_H
#define PP_ADAPTOR_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lib/err.h"
#include "lib/loop.h"
#include "lib/ttrpc_relay.h"

#define AGENT_PROXY_SOCKET_NAME "agent.ttrpc"
#define AGENT_PROXY_SOCKET_PATH_MAX 107            /* sun_path minus the NUL */
#define AGENT_PROXY_TIMEOUT_DEFAULT_MS (5u * 60u * 1000u)   /* PROXY_TIMEOUT */
#define AGENT_PROXY_RETRY_MS 100u                  /* dial cadence, jittered ±50% */
#define AGENT_PROXY_ATTEMPT_MS 2000u               /* one connect + TLS handshake */
#define AGENT_PROXY_DIRECT_VOLUMES_DIR "/run/kata-containers/shared/direct-volumes"
#define AGENT_PROXY_MANUAL_SERVER_NAME "podvm-server"

#define ANNOT_PEERPOD_VOLUMES_TARGET_PATH "io.confidentialcontainers.org.peerpodvolumes.target_path"
#define ANNOT_DEFAULT_GPUS "io.katacontainers.config.hypervisor.default_gpus"
#define ANNOT_CDI_PEER_PODS "cdi.k8s.io/peer-pods"
#define ANNOT_CDI_PEER_PODS_VALUE "nvidia.com/gpu=all"
#define ANNOT_SANDBOX_UID "io.kubernetes.cri.sandbox-uid"
#define ANNOT_CLOUD_VOLUMES "io.confidentialcontainers.org.cloud_volumes"
#define CSI_VOLUME_PATH_MARK "/volumes/kubernetes.io~csi/"

struct agent_proxy;

struct agent_proxy_config {
	const char *pods_dir;            /* "/run/peerpod/pods" */
	const char *sandbox_id;
	const char *host;                /* forwarder address (the VM's IP) */
	uint16_t port;                   /* forwarder port (15150) */
	SSL_CTX *tls;                    /* client context (referenced); NULL = plain TCP */
	const char *server_name;         /* instance name, or "podvm-server" in manual mode */
	uint64_t timeout_ms;             /* first connection; 0 = AGENT_PROXY_TIMEOUT_DEFAULT_MS */
	const char *direct_volumes_dir;  /* NULL = AGENT_PROXY_DIRECT_VOLUMES_DIR */
};

/* Called exactly once in the loop: err NULL when the socket listens and the upstream
 * connection (TLS handshake included) is up, or an error once the timeout has passed. It may
 * call agent_proxy_stop(). Not called if the proxy is stopped first. */
typedef void (*agent_proxy_ready_fn)(void *arg, const struct pp_err *err);

/* Loop thread. Creates <pods_dir>/<sid>/ (0700), listens on agent.ttrpc in it, starts
 * dialling. NULL with err filled if the socket cannot be set up (e.g. the path is longer than
 * AGENT_PROXY_SOCKET_PATH_MAX). */
struct agent_proxy *agent_proxy_start(struct loop *l, const struct agent_proxy_config *cfg,
				      agent_proxy_ready_fn ready, void *arg, struct pp_err *err);
/* Loop thread: answers outstanding calls, closes both sides, unlinks the socket, frees.
 * NULL ok. */
void agent_proxy_stop(struct agent_proxy *p);

const char *agent_proxy_socket_path(const struct agent_proxy *p);
void agent_proxy_get_stats(const struct agent_proxy *p, struct ttrpc_relay_stats *ret);
/* TCP(+TLS) dial attempts since the start (each ~100 ms apart while the forwarder is away). */
unsigned agent_proxy_dial_attempts(const struct agent_proxy *p);

/* The CreateContainer edit (a function of the request payload and of what lies under
 * direct_volumes_dir, exposed for tests): *ret NULL when nothing had to change, else the
 * re-encoded request (malloc'd).
 * A payload that is not a CreateContainerRequest is INVALID_ARGUMENT. */
int agent_proxy_edit_create_container(const char *direct_volumes_dir, const uint8_t *in,
				      size_t len, uint8_t **ret, size_t *ret_len,
				      struct pp_err *err);

#endif
