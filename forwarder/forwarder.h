/*
 * The agent-protocol-forwarder's data path, inside the TEE: a TCP (+mTLS) listener whose
 * ttRPC calls are relayed (lib/ttrpc_relay) to the kata agent's unix socket.
 *
 * The one idea: every byte from the host is hostile. Frames are size-limited by the ttRPC
 * library, only CreateContainer and CreateSandbox are decoded (strictly, by protobuf-c) and
 * edited; everything else passes through byte-for-byte. The agent connection is made lazily
 * with retries, and re-made whenever it breaks (the agent restarted) — upstream's once-only
 * latch is not copied.
 *
 * Edits (spec §4.4): CreateContainer gets exactly one network namespace, the pod's (a network
 * entry sent by the host is replaced, because OCI forbids two entries of one type), and
 * missing sources of "bind" mounts with absolute paths are created; a source with a ".."
 * component is refused. CreateSandbox loses its dns list. Not done (yet): cloud volumes,
 * waiting for peer-pod volume mounts, DestroySandbox unmounts, pod network set-up.
 */
#ifndef PP_FORWARDER_H
#define PP_FORWARDER_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lib/err.h"
#include "lib/loop.h"
#include "lib/ttrpc_relay.h"

#define FORWARDER_DEFAULT_LISTEN "0.0.0.0:15150"
#define FORWARDER_DEFAULT_CONFIG "/run/peerpod/apf.json"
#define FORWARDER_DEFAULT_AGENT_SOCKET "/run/kata-containers/agent.sock"
#define FORWARDER_DEFAULT_POD_NAMESPACE "/run/netns/podns"

#define FORWARDER_MAX_CONNECTIONS 64          /* from the host at once */
#define FORWARDER_AGENT_RETRY_MIN_MS 100u     /* agent dial back-off: 100 ms doubling ... */
#define FORWARDER_AGENT_RETRY_MAX_MS 1000u    /* ... up to 1 s */
#define FORWARDER_AGENT_DIAL_BUDGET_MS (150u * 1000u)   /* then calls waiting fail */
#define FORWARDER_MAX_MOUNTS 4096             /* per CreateContainer */
#define FORWARDER_ADDR_MAX 64                 /* "[v6]:port" */

struct forwarder;

struct forwarder_config {
	const char *listen;          /* "host:port"; port 0 = ephemeral (tests) */
	const char *agent_socket;
	const char *pod_namespace;   /* network namespace path given to every container */
	SSL_CTX *tls;                /* server context (referenced); NULL = plain TCP */
};

/* Loop thread: listens, starts dialling the agent. */
struct forwarder *forwarder_start(struct loop *l, const struct forwarder_config *cfg,
				  struct pp_err *err);
/* The bound address, "ip:port" (the real port when the config asked for 0). */
const char *forwarder_listen_addr(const struct forwarder *f);
void forwarder_get_stats(const struct forwarder *f, struct ttrpc_relay_stats *ret);
void forwarder_stop(struct forwarder *f);   /* NULL ok */

/* The edits, pure functions over a request payload except for the directories created for
 * bind mounts. *ret is the re-encoded request (malloc'd). Bad input is INVALID_ARGUMENT. */
int forwarder_edit_create_container(const char *pod_namespace, const uint8_t *in, size_t len,
				    uint8_t **ret, size_t *ret_len, struct pp_err *err);
int forwarder_edit_create_sandbox(const uint8_t *in, size_t len, uint8_t **ret,
				  size_t *ret_len, struct pp_err *err);

/* "host:port" -> numeric address; host may be empty (all), an IPv4 or a [IPv6] literal. */
int forwarder_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
			   struct pp_err *err);

#endif
