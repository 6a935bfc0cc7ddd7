/*
 * apf.json, the forwarder's configuration as the adaptor writes it through user-data
 * (spec §4.3, Go `forwarder.Config` and `tunneler.Config`). Read with jansson into plain
 * structs; like Go's encoding/json, keys match case-insensitively (upstream writes route keys
 * as "Dst"/"GW"/"Dev"), unknown keys are ignored and null means "not set". Unlike Go, a value of
 * the wrong type, an address that does not parse, an unknown enum name, a duplicated key or a
 * number out of range is an error naming the field ("pod-network.routes[1].GW: ...").
 *
 * tls-server-key is a private key: apf_config_free wipes it; it never appears in a message.
 */
#ifndef PP_FORWARDER_APF_CONFIG_H
#define PP_FORWARDER_APF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define APF_MAX_SIZE       (1024 * 1024)
#define APF_MAX_STRING     (64 * 1024)   /* one PEM bundle */
#define APF_MAX_ROUTES     256
#define APF_MAX_NEIGHBORS  256
#define APF_MAX_CIPHERS    64

#define APF_TLS_1_2 0x0303
#define APF_TLS_1_3 0x0304

struct apf_addr {
	int family;          /* 0 when unset (""), AF_INET or AF_INET6 */
	uint8_t bytes[16];   /* network order; 4 used for AF_INET */
};

struct apf_prefix {
	struct apf_addr addr;
	unsigned len;        /* prefix length */
};

struct apf_route {
	struct apf_prefix dst;   /* family 0: default route */
	struct apf_addr gw;      /* family 0: no gateway */
	char *dev;
	int protocol;            /* RTPROT_* value; 0 when omitted */
	int scope;               /* RT_SCOPE_* value; 0 (universe) when omitted */
};

struct apf_neighbor {
	struct apf_addr ip;
	char *hw_addr;           /* "xx:xx:..." as written */
	char *dev;
	int state;               /* NUD_* value; 0 when omitted */
};

struct apf_pod_network {
	struct apf_prefix pod_ip;          /* "podip" */
	char *pod_hw_addr;                 /* "pod-hw-addr" */
	char *interface;                   /* "interface" */
	struct apf_prefix worker_node_ip;  /* "worker-node-ip" */
	char *tunnel_type;                 /* "tunnel-type" */
	struct apf_route *routes;
	size_t n_routes;
	struct apf_neighbor *neighbors;
	size_t n_neighbors;
	int64_t mtu;
	int64_t index;
	int64_t vxlan_port;                /* 0 when omitted */
	int64_t vxlan_id;                  /* 0 when omitted */
	bool dedicated;
	bool external_net_via_pod_vm;
};

struct apf_config {
	bool has_pod_network;
	struct apf_pod_network pod_network;
	char *pod_namespace;
	char *pod_name;
	char *tls_server_key;              /* secret */
	char *tls_server_cert;
	char *tls_client_ca;
	int tls_min_version;               /* 0 (unset), APF_TLS_1_2 or APF_TLS_1_3 */
	char **tls_cipher_suites;
	size_t n_tls_cipher_suites;
};

/* Parses len bytes of JSON (a pure function, fuzzed). Unset strings are NULL. */
int apf_config_parse(const char *buf, size_t len, struct apf_config **ret, struct pp_err *err);
/* Reads path (at most APF_MAX_SIZE bytes) and parses it. */
int apf_config_load(const char *path, struct apf_config **ret, struct pp_err *err);
void apf_config_free(struct apf_config *cfg);

/* Text form of an address ("" when unset) into out[INET6_ADDRSTRLEN]. */
const char *apf_addr_format(const struct apf_addr *a, char *out, size_t size);

#endif
