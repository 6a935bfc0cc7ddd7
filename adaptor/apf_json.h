/*
 * apf.json: the agent-protocol-forwarder's configuration, written into the VM as
 * /run/peerpod/apf.json (upstream-protocols.md §4.3, upstream-podnetwork.md §4). Keys, enum
 * spellings and the 4-space indentation follow upstream's Go encoder so that a stock forwarder
 * reads what we write.
 *
 * `pod-network` is always an object, as Go's *tunneler.Config always is (the stock forwarder
 * dereferences it unconditionally). Its fields are emitted the way Go emits them: addresses as
 * text and "" for an unset one, `routes`/`neighbors` null when empty, `vxlan-port`/`vxlan-id`
 * left out when 0, protocol/scope/state left out when 0 ("", "universe", "none"). Until the
 * pod-networking work fills struct apf_pod_network, the object is Go's zero value. That decodes
 * fine in the stock Go forwarder, but its network set-up then stops at `unknown tunnel type ""`,
 * so a stock pod VM image needs the real network; a forwarder that wants to run without pod
 * networking (tests, the local provider) must treat an empty tunnel-type as "no set-up".
 */
#ifndef PP_ADAPTOR_APF_JSON_H
#define PP_ADAPTOR_APF_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct apf_route {
	const char *dst;         /* "10.244.1.0/24"; "" allowed */
	const char *gw;          /* "" = none; always emitted */
	const char *dev;
	const char *protocol;    /* "" | kernel | boot | static | dhcp */
	const char *scope;       /* "" | universe | site | link | host | nowhere */
};

struct apf_neighbor {
	const char *ip;
	const char *hw_addr;
	const char *dev;
	const char *state;       /* "" | none | incomplete | reachable | stale | delay | probe |
				  * failed | noarp | permanent */
};

/* tunneler.Config. NULL strings are "". */
struct apf_pod_network {
	const char *pod_ip;          /* "a.b.c.d/len" */
	const char *pod_hw_addr;     /* "xx:xx:xx:xx:xx:xx" */
	const char *interface;       /* "eth0" */
	const char *worker_node_ip;  /* "a.b.c.d/len" */
	const char *tunnel_type;     /* "vxlan" */
	const struct apf_route *routes;
	size_t n_routes;
	const struct apf_neighbor *neighbors;
	size_t n_neighbors;
	int mtu;
	int index;
	int vxlan_port;              /* 0 = omitted */
	int vxlan_id;                /* 0 = omitted */
	bool dedicated;
	bool external_net_via_pod_vm;
};

struct apf_config {
	const struct apf_pod_network *pod_network;   /* NULL = Go's zero value */
	const char *pod_namespace;
	const char *pod_name;
	/* Omitted when NULL or "". */
	const char *tls_server_key;      /* PEM (secret: never logged) */
	const char *tls_server_cert;     /* PEM */
	const char *tls_client_ca;       /* PEM */
	const char *tls_min_version;     /* "VersionTLS12" | "VersionTLS13" */
	const char *const *tls_cipher_suites;   /* IANA names; omitted when n == 0 */
	size_t n_tls_cipher_suites;
};

/* Renders the JSON text (no trailing newline). INVALID_ARGUMENT for an enum spelling the Go
 * decoder would reject (naming the field and value) or a TLS version other than the two above. */
int apf_json_render(const struct apf_config *cfg, char **ret_text, struct pp_err *err);

#endif
