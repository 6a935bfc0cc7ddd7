/*
 * Network-namespace test bed for pod networking (used by the podnet integration test and by
 * bench/podnet): the topology of upstream-podnetwork.md §6, built with iproute2 in namespaces
 * this process creates under unique names and always deletes:
 *
 *   W (worker root)  cni0 10.244.1.1/24 (bridge) --veth0 ~ eth0-- P (pod) 10.244.1.21/24
 *                    uw0 192.168.100.1/24 ~~~~ underlay veth ~~~~ uv0 192.168.100.2/24  V (VM root)
 *   Q (the VM's podns): not created here; the VM side creates it at q_path.
 *
 * Code under test runs "inside" a namespace through nt_in_ns: a forked child enters it with
 * setns and reports into shared memory. No traffic leaves these namespaces.
 */
#ifndef PP_NETTEST_H
#define PP_NETTEST_H

#include <stdbool.h>
#include <stddef.h>

#define NT_NAME_MAX 40
#define NT_OUT_MAX  (64 * 1024)
#define NT_JSON_MAX (32 * 1024)

#define NT_POD_IP     "10.244.1.21"
#define NT_POD_GW     "10.244.1.1"
#define NT_POD_MAC    "32:b9:59:6b:f0:d5"
#define NT_WORKER_IP  "192.168.100.1"
#define NT_VM_IP      "192.168.100.2"

struct nt_topo {
	char w[NT_NAME_MAX], p[NT_NAME_MAX], v[NT_NAME_MAX], q[NT_NAME_MAX];
	char p_path[64], q_path[64], w_path[64], v_path[64];
};

/* What a child reports back. */
struct nt_result {
	int rc;
	int code;              /* pp_err code */
	char msg[512];
	char json[NT_JSON_MAX];
	int port;
	int value;
	double ms;
};

/* Runs argv (NULL-terminated), stdout+stderr into out (if non-NULL); returns the exit status
 * (or -1 if it could not run). */
int nt_run(char *out, size_t size, const char *const *argv);
/* Same, built from a printf format split on spaces (no quoting). */
int nt_sh(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* true when this machine can do it (root, ip netns add, vxlan); *why says what is missing. */
bool nt_supported(char *why, size_t size);

/* Builds the topology with names unique to this process and tag. */
int nt_topo_create(struct nt_topo *t, const char *tag);
void nt_topo_destroy(struct nt_topo *t);    /* deletes every namespace it created (and Q) */

/* Moves the calling thread into netns `ns` (a name under /run/netns); 0 or -1. */
int nt_enter(const char *ns);

/* Forks; the child enters netns `ns` (by name under /run/netns) and runs fn, whose return
 * value becomes r->rc. r lives in shared memory. Returns 0 when the child ran to completion. */
int nt_in_ns(const char *ns, int (*fn)(void *arg, struct nt_result *r), void *arg,
	     struct nt_result *r);

/* A TCP echo server in ns on addr:0: returns its pid, the port in *port; it serves one
 * connection (echoing everything until EOF), then exits. */
int nt_echo_server(const char *ns, const char *addr, int *port);
/* Connects from ns to addr:port, sends n bytes and reads them back; 0 when they match. */
int nt_echo_client(const char *ns, const char *addr, int port, size_t n);
int nt_wait_pid(int pid);

#endif
