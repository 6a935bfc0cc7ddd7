/*
 * The kata shim's side of the adaptor's protocols, as a small blocking library for tools,
 * integration tests and benchmarks (static library ppshim).
 *
 * A struct shim_conn talks to one unix socket in one of two styles the real shims use:
 *   - per call (the Go shim): every call dials a new connection and closes it afterwards;
 *   - one connection (runtime-rs): a single long-lived connection carries every call.
 * Calls are ttrpc_sync_call()s: one at a time, bounded by timeout_ns when it is > 0 (the value
 * is also sent as the request's timeout_nano, as the shims do). A failed call returns -1 with
 * err->code = the gRPC status the server answered (or UNAVAILABLE / DEADLINE_EXCEEDED for
 * transport problems) and err->msg its message.
 */
#ifndef PP_SHIM_LIB_H
#define PP_SHIM_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SHIM_SOCKET_PATH_MAX 108
#define SHIM_NS_PER_S 1000000000LL
/* The Go shim's StartVM deadline (remote_hypervisor_timeout default, spec §1.4). */
#define SHIM_START_TIMEOUT_NS (600 * SHIM_NS_PER_S)

/* The nine annotation keys the Go shim always sends with CreateVM (spec §1.4). */
#define SHIM_ANN_SANDBOX_NAME "io.kubernetes.cri.sandbox-name"
#define SHIM_ANN_SANDBOX_NAMESPACE "io.kubernetes.cri.sandbox-namespace"
#define SHIM_ANN_MACHINE_TYPE "io.katacontainers.config.hypervisor.machine_type"
#define SHIM_ANN_IMAGE "io.katacontainers.config.hypervisor.image"
#define SHIM_ANN_VCPUS "io.katacontainers.config.hypervisor.default_vcpus"
#define SHIM_ANN_MEMORY "io.katacontainers.config.hypervisor.default_memory"
#define SHIM_ANN_INITDATA "io.katacontainers.config.hypervisor.cc_init_data"
#define SHIM_ANN_GPUS "io.katacontainers.config.hypervisor.default_gpus"
#define SHIM_ANN_GPU_MODEL "io.katacontainers.config.hypervisor.default_gpu_model"
#define SHIM_MAX_ANNOTATIONS 64

struct shim_conn {
	int fd;                    /* the connection; -1 between calls in per-call mode */
	bool per_call;             /* dial for every call (Go shim style) */
	bool own_fd;               /* close fd in shim_conn_close */
	uint32_t next_stream_id;   /* odd, increasing, per connection */
	char path[SHIM_SOCKET_PATH_MAX];
};

/* per_call: true = a new connection for every call; false = dial once now and keep it. */
int shim_conn_open(struct shim_conn *c, const char *path, bool per_call, struct pp_err *err);
/* One long connection over an fd the caller connected; the caller keeps ownership. */
void shim_conn_from_fd(struct shim_conn *c, int fd);
void shim_conn_close(struct shim_conn *c);   /* NULL ok; closes only what it opened */

/* Any unary call: payload in, payload out (*ret heap, may be NULL when ret_len is 0). */
int shim_call(struct shim_conn *c, const char *service, const char *method, const uint8_t *payload,
	      size_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len, struct pp_err *err);

/* ---- hypervisor.Hypervisor and podvminfo.PodVMInfo ---- */

struct shim_create_args {
	const char *sandbox_id;
	const char *pod_name;        /* io.kubernetes.cri.sandbox-name */
	const char *pod_namespace;   /* io.kubernetes.cri.sandbox-namespace */
	const char *netns;           /* networkNamespacePath; NULL = "" */
	/* "key=value" items added to the nine defaults, or replacing one with the same key. */
	const char *const *annotations;
	size_t n_annotations;
	int64_t timeout_ns;          /* 0 = none, like the Go shim */
};

/* CreateVM; writes agentSocketPath into ret_socket. An empty agentSocketPath is an error, as
 * it is for the Go shim. */
int shim_create_vm(struct shim_conn *c, const struct shim_create_args *a, char *ret_socket,
		   size_t size, struct pp_err *err);
int shim_start_vm(struct shim_conn *c, const char *sandbox_id, int64_t timeout_ns, struct pp_err *err);
int shim_stop_vm(struct shim_conn *c, const char *sandbox_id, int64_t timeout_ns, struct pp_err *err);
int shim_version(struct shim_conn *c, const char *version, int64_t timeout_ns, char *ret, size_t size,
		 struct pp_err *err);
int shim_get_info(struct shim_conn *c, const char *pod_name, const char *pod_namespace, bool wait,
		  int64_t timeout_ns, char *ret_vmid, size_t size, struct pp_err *err);

/* ---- the agent protocol (grpc.Health, grpc.AgentService) on a pod's agent.ttrpc ---- */

/* grpc.Health/Check: *ret_status = 1 SERVING, 2 NOT_SERVING, 0 UNKNOWN. */
int shim_agent_health(struct shim_conn *c, int64_t timeout_ns, int *ret_status, struct pp_err *err);
/* GetGuestDetails: the agent's version (agent_details.version). */
int shim_agent_guest_details(struct shim_conn *c, int64_t timeout_ns, char *ret_version, size_t size,
			     struct pp_err *err);

struct shim_container_args {
	const char *container_id;
	const char *exec_id;               /* NULL = "" */
	const char *const *annotations;    /* "key=value" into OCI.Annotations */
	size_t n_annotations;
	const char *const *mounts;         /* "source:destination[:type]" into OCI.Mounts */
	size_t n_mounts;
	const char *const *namespaces;     /* "type[:path]" into OCI.Linux.Namespaces */
	size_t n_namespaces;
	int64_t timeout_ns;
};
int shim_agent_create_container(struct shim_conn *c, const struct shim_container_args *a,
				struct pp_err *err);
int shim_agent_create_sandbox(struct shim_conn *c, const char *sandbox_id, const char *const *dns,
			      size_t n_dns, int64_t timeout_ns, struct pp_err *err);
int shim_agent_signal(struct shim_conn *c, const char *container_id, const char *exec_id,
		      uint32_t signal, int64_t timeout_ns, struct pp_err *err);
int shim_agent_wait(struct shim_conn *c, const char *container_id, const char *exec_id,
		    int64_t timeout_ns, int *ret_status, struct pp_err *err);
/* ReadStdout of up to len bytes; *ret heap. EOF is err->code PP_OUT_OF_RANGE. */
int shim_agent_read_stdout(struct shim_conn *c, const char *container_id, const char *exec_id,
			   uint32_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len,
			   struct pp_err *err);

#endif
