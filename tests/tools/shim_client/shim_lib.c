/*
 * The shim's side of the hypervisor and agent protocols: see shim_lib.h. Each call packs a
 * request with protobuf-c, runs one ttrpc_sync_call and unpacks the reply; per-call mode
 * wraps that in dial + close, exactly as the Go shim's remote hypervisor does.
 */
#include "tests/tools/shim_client/shim_lib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/ttrpc.h"
#include "lib/util.h"
#include "proto/agent.pb-c.h"
#include "proto/agent.pb-c.h"
#include "proto/health.pb-c.h"
#include "proto/hypervisor.pb-c.h"
#include "proto/podvminfo.pb-c.h"

#define SVC_HYPERVISOR "hypervisor.Hypervisor"
#define SVC_PODVMINFO "podvminfo.PodVMInfo"
#define SVC_AGENT "grpc.AgentService"
#define SVC_HEALTH "grpc.Health"

/* ---- connections ---- */

int shim_conn_open(struct shim_conn *c, const char *path, bool per_call, struct pp_err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_stream_id = 1;
	c->per_call = per_call;
	if (!pp_strlcpy(c->path, path, sizeof(c->path)))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "socket path %s is too long", path);
	if (per_call)
		return 0;
	c->fd = ttrpc_sync_dial_unix(path, err);
	if (c->fd < 0)
		return -1;
	c->own_fd = true;
	return 0;
}

void shim_conn_from_fd(struct shim_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->next_stream_id = 1;
}

void shim_conn_close(struct shim_conn *c)
{
	if (!c)
		return;
	if (c->own_fd && c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->own_fd = false;
}

int shim_call(struct shim_conn *c, const char *service, const char *method, const uint8_t *payload,
	      size_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	int rc;

	if (c->per_call) {
		c->fd = ttrpc_sync_dial_unix(c->path, err);
		if (c->fd < 0)
			return -1;
		c->next_stream_id = 1;
	}
	rc = ttrpc_sync_call(c->fd, &c->next_stream_id, service, method, payload, len, timeout_ns, ret,
			     ret_len, err);
	if (c->per_call) {
		close(c->fd);
		c->fd = -1;
	}
	return rc;
}

/* Packs msg, calls, and returns the raw reply for the caller to unpack. */
static int shim_call_msg(struct shim_conn *c, const char *service, const char *method,
			 const ProtobufCMessage *msg, int64_t timeout_ns, uint8_t **ret, size_t *ret_len,
			 struct pp_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	int rc;

	if (!buf)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	protobuf_c_message_pack(msg, buf);
	rc = shim_call(c, service, method, buf, len, timeout_ns, &reply, &reply_len, err);
	free(buf);
	if (rc < 0)
		return -1;
	if (ret) {
		*ret = reply;
		*ret_len = reply_len;
	} else {
		free(reply);
	}
	return 0;
}

static int shim_copy_out(char *out, size_t size, const char *s, const char *what, struct pp_err *err)
{
	if (!pp_strlcpy(out, s ? s : "", size))
		return pp_err_set(err, PP_OUT_OF_RANGE, "%s is longer than %zu bytes", what, size - 1);
	return 0;
}

static int shim_bad_reply(const char *method, struct pp_err *err)
{
	return pp_err_set(err, PP_INTERNAL, "cannot decode the %s response", method);
}

/* ---- hypervisor ---- */

struct shim_ann {
	Hypervisor__CreateVMRequest__AnnotationsEntry entries[SHIM_MAX_ANNOTATIONS];
	Hypervisor__CreateVMRequest__AnnotationsEntry *ptrs[SHIM_MAX_ANNOTATIONS];
	char *owned[SHIM_MAX_ANNOTATIONS];   /* copies of "key=value" items, split at '=' */
	size_t n, n_owned;
};

static void ann_set(struct shim_ann *a, const char *key, const char *value)
{
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->entries[i].key, key) == 0) {
			a->entries[i].value = (char *)value;
			return;
		}
	}
	hypervisor__create_vmrequest__annotations_entry__init(&a->entries[a->n]);
	a->entries[a->n].key = (char *)key;
	a->entries[a->n].value = (char *)value;
	a->ptrs[a->n] = &a->entries[a->n];
	a->n++;
}

static void ann_free(struct shim_ann *a)
{
	for (size_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
}

static int ann_build(struct shim_ann *a, const struct shim_create_args *args, struct pp_err *err)
{
	static const char *const zero_keys[] = { SHIM_ANN_VCPUS, SHIM_ANN_MEMORY, SHIM_ANN_GPUS };
	static const char *const empty_keys[] = { SHIM_ANN_MACHINE_TYPE, SHIM_ANN_IMAGE,
						  SHIM_ANN_INITDATA, SHIM_ANN_GPU_MODEL };

	memset(a, 0, sizeof(*a));
	ann_set(a, SHIM_ANN_SANDBOX_NAME, args->pod_name ? args->pod_name : "");
	ann_set(a, SHIM_ANN_SANDBOX_NAMESPACE, args->pod_namespace ? args->pod_namespace : "");
	for (size_t i = 0; i < PP_ARRAY_SIZE(empty_keys); i++)
		ann_set(a, empty_keys[i], "");
	for (size_t i = 0; i < PP_ARRAY_SIZE(zero_keys); i++)
		ann_set(a, zero_keys[i], "0");
	if (args->n_annotations > SHIM_MAX_ANNOTATIONS - a->n)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "more than %d annotations",
				  SHIM_MAX_ANNOTATIONS);
	for (size_t i = 0; i < args->n_annotations; i++) {
		char *kv = strdup(args->annotations[i]);
		char *eq = kv ? strchr(kv, '=') : NULL;

		if (!kv)
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
		a->owned[a->n_owned++] = kv;
		if (!eq || eq == kv)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "annotation \"%s\" is not key=value",
					  args->annotations[i]);
		*eq = '\0';
		ann_set(a, kv, eq + 1);
	}
	return 0;
}

int shim_create_vm(struct shim_conn *c, const struct shim_create_args *a, char *ret_socket,
		   size_t size, struct pp_err *err)
{
	Hypervisor__CreateVMRequest req = HYPERVISOR__CREATE_VMREQUEST__INIT;
	Hypervisor__CreateVMResponse *resp;
	struct shim_ann *ann = calloc(1, sizeof(*ann));
	uint8_t *reply = NULL;
	size_t len = 0;
	int rc = -1;

	if (!ann)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	if (ann_build(ann, a, err) < 0)
		goto out;
	req.id = (char *)(a->sandbox_id ? a->sandbox_id : "");
	req.networknamespacepath = (char *)(a->netns ? a->netns : "");
	req.n_annotations = ann->n;
	req.annotations = ann->ptrs;
	if (shim_call_msg(c, SVC_HYPERVISOR, "CreateVM", &req.base, a->timeout_ns, &reply, &len, err) < 0)
		goto out;
	resp = hypervisor__create_vmresponse__unpack(NULL, len, reply);
	if (!resp) {
		shim_bad_reply("CreateVM", err);
		goto out;
	}
	if (!resp->agentsocketpath[0])
		pp_err_set(err, PP_INTERNAL, "remote hypervisor does not return tunnel socket path");
	else
		rc = shim_copy_out(ret_socket, size, resp->agentsocketpath, "agentSocketPath", err);
	hypervisor__create_vmresponse__free_unpacked(resp, NULL);
out:
	free(reply);
	ann_free(ann);
	free(ann);
	return rc;
}

int shim_start_vm(struct shim_conn *c, const char *sandbox_id, int64_t timeout_ns, struct pp_err *err)
{
	Hypervisor__StartVMRequest req = HYPERVISOR__START_VMREQUEST__INIT;

	req.id = (char *)sandbox_id;
	return shim_call_msg(c, SVC_HYPERVISOR, "StartVM", &req.base, timeout_ns, NULL, NULL, err);
}

int shim_stop_vm(struct shim_conn *c, const char *sandbox_id, int64_t timeout_ns, struct pp_err *err)
{
	Hypervisor__StopVMRequest req = HYPERVISOR__STOP_VMREQUEST__INIT;

	req.id = (char *)sandbox_id;
	return shim_call_msg(c, SVC_HYPERVISOR, "StopVM", &req.base, timeout_ns, NULL, NULL, err);
}

int shim_version(struct shim_conn *c, const char *version, int64_t timeout_ns, char *ret, size_t size,
		 struct pp_err *err)
{
	Hypervisor__VersionRequest req = HYPERVISOR__VERSION_REQUEST__INIT;
	Hypervisor__VersionResponse *resp;
	uint8_t *reply = NULL;
	size_t len = 0;
	int rc;

	req.version = (char *)(version ? version : "");
	if (shim_call_msg(c, SVC_HYPERVISOR, "Version", &req.base, timeout_ns, &reply, &len, err) < 0)
		return -1;
	resp = hypervisor__version_response__unpack(NULL, len, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("Version", err);
	rc = shim_copy_out(ret, size, resp->version, "version", err);
	hypervisor__version_response__free_unpacked(resp, NULL);
	return rc;
}

int shim_get_info(struct shim_conn *c, const char *pod_name, const char *pod_namespace, bool wait,
		  int64_t timeout_ns, char *ret_vmid, size_t size, struct pp_err *err)
{
	Podvminfo__GetInfoRequest req = PODVMINFO__GET_INFO_REQUEST__INIT;
	Podvminfo__GetInfoResponse *resp;
	uint8_t *reply = NULL;
	size_t len = 0;
	int rc;

	req.podname = (char *)pod_name;
	req.podnamespace = (char *)pod_namespace;
	req.wait = wait;
	if (shim_call_msg(c, SVC_PODVMINFO, "GetInfo", &req.base, timeout_ns, &reply, &len, err) < 0)
		return -1;
	resp = podvminfo__get_info_response__unpack(NULL, len, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("GetInfo", err);
	rc = shim_copy_out(ret_vmid, size, resp->vmid, "VMID", err);
	podvminfo__get_info_response__free_unpacked(resp, NULL);
	return rc;
}

/* ---- agent ---- */

int shim_agent_health(struct shim_conn *c, int64_t timeout_ns, int *ret_status, struct pp_err *err)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
	Grpc__HealthCheckResponse *resp;
	uint8_t *reply = NULL;
	size_t len = 0;

	if (shim_call_msg(c, SVC_HEALTH, "Check", &req.base, timeout_ns, &reply, &len, err) < 0)
		return -1;
	resp = grpc__health_check_response__unpack(NULL, len, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("Check", err);
	*ret_status = (int)resp->status;
	grpc__health_check_response__free_unpacked(resp, NULL);
	return 0;
}

int shim_agent_guest_details(struct shim_conn *c, int64_t timeout_ns, char *ret_version, size_t size,
			     struct pp_err *err)
{
	Grpc__GetGuestDetailsRequest req = GRPC__GET_GUEST_DETAILS_REQUEST__INIT;
	Grpc__GuestDetailsResponse *resp;
	uint8_t *reply = NULL;
	size_t len = 0;
	int rc;

	req.mem_block_size = true;
	if (shim_call_msg(c, SVC_AGENT, "GetGuestDetails", &req.base, timeout_ns, &reply, &len, err) < 0)
		return -1;
	resp = grpc__guest_details_response__unpack(NULL, len, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("GetGuestDetails", err);
	rc = shim_copy_out(ret_version, size, resp->agent_details ? resp->agent_details->version : "",
			   "agent version", err);
	grpc__guest_details_response__free_unpacked(resp, NULL);
	return rc;
}

/* The OCI spec of a CreateContainer request, built from "a:b:c" strings. All pointers in it
 * point into `text` copies owned here. */
struct shim_spec {
	Grpc__Spec spec;
	Grpc__Linux linux_part;
	Grpc__Spec__AnnotationsEntry ann[SHIM_MAX_ANNOTATIONS], *ann_p[SHIM_MAX_ANNOTATIONS];
	Grpc__Mount mounts[SHIM_MAX_ANNOTATIONS], *mounts_p[SHIM_MAX_ANNOTATIONS];
	Grpc__LinuxNamespace ns[SHIM_MAX_ANNOTATIONS], *ns_p[SHIM_MAX_ANNOTATIONS];
	char *text[3 * SHIM_MAX_ANNOTATIONS];
	size_t n_text;
};

/* Copies s and splits it at each `sep` into at most max fields; returns the field count. */
static int spec_split(struct shim_spec *s, const char *in, char sep, char **fields, int max)
{
	char *copy = strdup(in);
	int n = 0;

	if (!copy)
		return -1;
	s->text[s->n_text++] = copy;
	fields[n++] = copy;
	for (char *p = copy; *p && n < max; p++) {
		if (*p == sep) {
			*p = '\0';
			fields[n++] = p + 1;
		}
	}
	return n;
}

static int spec_add_annotations(struct shim_spec *s, const struct shim_container_args *a,
				struct pp_err *err)
{
	for (size_t i = 0; i < a->n_annotations; i++) {
		char *f[2];

		if (spec_split(s, a->annotations[i], '=', f, 2) != 2 || !f[0][0])
			return pp_err_set(err, PP_INVALID_ARGUMENT, "annotation \"%s\" is not key=value",
					  a->annotations[i]);
		grpc__spec__annotations_entry__init(&s->ann[i]);
		s->ann[i].key = f[0];
		s->ann[i].value = f[1];
		s->ann_p[i] = &s->ann[i];
	}
	s->spec.n_annotations = a->n_annotations;
	s->spec.annotations = s->ann_p;
	return 0;
}

static int spec_add_mounts(struct shim_spec *s, const struct shim_container_args *a, struct pp_err *err)
{
	for (size_t i = 0; i < a->n_mounts; i++) {
		char *f[3];
		int n = spec_split(s, a->mounts[i], ':', f, 3);

		if (n < 2)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "mount \"%s\" is not source:destination[:type]", a->mounts[i]);
		grpc__mount__init(&s->mounts[i]);
		s->mounts[i].source = f[0];
		s->mounts[i].destination = f[1];
		s->mounts[i].type = n == 3 ? f[2] : "bind";
		s->mounts_p[i] = &s->mounts[i];
	}
	s->spec.n_mounts = a->n_mounts;
	s->spec.mounts = s->mounts_p;
	return 0;
}

static int spec_add_namespaces(struct shim_spec *s, const struct shim_container_args *a,
			       struct pp_err *err)
{
	for (size_t i = 0; i < a->n_namespaces; i++) {
		char *f[2];
		int n = spec_split(s, a->namespaces[i], ':', f, 2);

		if (n < 1 || !f[0][0])
			return pp_err_set(err, PP_INVALID_ARGUMENT, "namespace \"%s\" is not type[:path]",
					  a->namespaces[i]);
		grpc__linux_namespace__init(&s->ns[i]);
		s->ns[i].type = f[0];
		s->ns[i].path = n == 2 ? f[1] : "";
		s->ns_p[i] = &s->ns[i];
	}
	s->linux_part.n_namespaces = a->n_namespaces;
	s->linux_part.namespaces = s->ns_p;
	return 0;
}

static void spec_free(struct shim_spec *s)
{
	for (size_t i = 0; i < s->n_text; i++)
		free(s->text[i]);
	free(s);
}

int shim_agent_create_container(struct shim_conn *c, const struct shim_container_args *a,
				struct pp_err *err)
{
	Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	struct shim_spec *s;
	int rc = -1;

	if (a->n_annotations > SHIM_MAX_ANNOTATIONS || a->n_mounts > SHIM_MAX_ANNOTATIONS ||
	    a->n_namespaces > SHIM_MAX_ANNOTATIONS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "more than %d annotations, mounts or namespaces",
				  SHIM_MAX_ANNOTATIONS);
	s = calloc(1, sizeof(*s));
	if (!s)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	grpc__spec__init(&s->spec);
	grpc__linux__init(&s->linux_part);
	s->spec.version = "1.1.0";
	s->spec.linux_spec = &s->linux_part;
	if (spec_add_annotations(s, a, err) < 0 || spec_add_mounts(s, a, err) < 0 ||
	    spec_add_namespaces(s, a, err) < 0)
		goto out;
	req.container_id = (char *)a->container_id;
	req.exec_id = (char *)(a->exec_id ? a->exec_id : "");
	req.oci = &s->spec;
	rc = shim_call_msg(c, SVC_AGENT, "CreateContainer", &req.base, a->timeout_ns, NULL, NULL, err);
out:
	spec_free(s);
	return rc;
}

int shim_agent_create_sandbox(struct shim_conn *c, const char *sandbox_id, const char *const *dns,
			      size_t n_dns, int64_t timeout_ns, struct pp_err *err)
{
	Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;

	req.sandbox_id = (char *)sandbox_id;
	req.hostname = (char *)sandbox_id;
	req.n_dns = n_dns;
	req.dns = (char **)dns;
	return shim_call_msg(c, SVC_AGENT, "CreateSandbox", &req.base, timeout_ns, NULL, NULL, err);
}

int shim_agent_signal(struct shim_conn *c, const char *container_id, const char *exec_id,
		      uint32_t signal, int64_t timeout_ns, struct pp_err *err)
{
	Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;

	req.container_id = (char *)container_id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	req.signal = signal;
	return shim_call_msg(c, SVC_AGENT, "SignalProcess", &req.base, timeout_ns, NULL, NULL, err);
}

int shim_agent_wait(struct shim_conn *c, const char *container_id, const char *exec_id,
		    int64_t timeout_ns, int *ret_status, struct pp_err *err)
{
	Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
	Grpc__WaitProcessResponse *resp;
	uint8_t *reply = NULL;
	size_t len = 0;

	req.container_id = (char *)container_id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	if (shim_call_msg(c, SVC_AGENT, "WaitProcess", &req.base, timeout_ns, &reply, &len, err) < 0)
		return -1;
	resp = grpc__wait_process_response__unpack(NULL, len, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("WaitProcess", err);
	*ret_status = resp->status;
	grpc__wait_process_response__free_unpacked(resp, NULL);
	return 0;
}

int shim_agent_read_stdout(struct shim_conn *c, const char *container_id, const char *exec_id,
			   uint32_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len,
			   struct pp_err *err)
{
	Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
	Grpc__ReadStreamResponse *resp;
	uint8_t *reply = NULL, *data;
	size_t n = 0;

	req.container_id = (char *)container_id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	req.len = len;
	if (shim_call_msg(c, SVC_AGENT, "ReadStdout", &req.base, timeout_ns, &reply, &n, err) < 0)
		return -1;
	resp = grpc__read_stream_response__unpack(NULL, n, reply);
	free(reply);
	if (!resp)
		return shim_bad_reply("ReadStdout", err);
	data = malloc(resp->data.len ? resp->data.len : 1);
	if (!data) {
		grpc__read_stream_response__free_unpacked(resp, NULL);
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (resp->data.len)
		memcpy(data, resp->data.data, resp->data.len);
	*ret = data;
	*ret_len = resp->data.len;
	grpc__read_stream_response__free_unpacked(resp, NULL);
	return 0;
}
