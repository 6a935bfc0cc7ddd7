/*
 * hypervisor.Hypervisor on the hypervisor socket: what the kata shim calls (spec §1, §3.3–3.6).
 * The same handlers are also registered as remote.Hypervisor for runtime-rs shims built before
 * kata commit 80ef102a00.
 *
 * Handlers run in the loop thread and only decode, validate what can be checked without I/O,
 * and hand the call to the sandbox lifecycle (lifecycle.c), which does the blocking work on a
 * worker and answers from there.
 */
#include <stdlib.h>
#include <string.h>

#include "adaptor/daemon.h"
#include "adaptor/lifecycle.h"
#include "lib/log.h"
#include "proto/hypervisor.pb-c.h"

#define HYPERVISOR_VERSION "0.0.0"   /* what upstream answers; no shim checks it */

static const char *const hypervisor_services[] = { "hypervisor.Hypervisor", "remote.Hypervisor" };

/* Sandbox ids become path components (<pods-dir>/<id>/agent.ttrpc): only a conservative
 * alphabet is accepted, so that no id can walk out of the pods directory. */
int sandbox_id_check(const char *id, struct pp_err *err)
{
	size_t n = strlen(id);

	if (n == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "empty sandbox id");
	if (n >= SANDBOX_ID_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "sandbox id is %zu characters, more than the %d allowed", n,
				  SANDBOX_ID_MAX - 1);
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "sandbox id \"%s\" is not allowed", id);
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "sandbox id contains '%c' at offset %zu: only letters, digits, '-', '_' and '.' are allowed",
					  c, i);
	}
	return 0;
}

static void on_create_vm(struct ttrpc_call *call, void *arg)
{
	struct daemon *d = arg;
	struct pp_err err = { 0 };
	Hypervisor__CreateVMRequest *req;
	const uint8_t *p;
	size_t len;

	p = ttrpc_call_payload(call, &len);
	req = hypervisor__create_vmrequest__unpack(NULL, len, p);
	if (!req) {
		ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "CreateVM: request does not decode");
		return;
	}
	if (sandbox_id_check(req->id, &err) < 0) {
		log_warn("CreateVM refused", "error=\"%s\"", err.msg);
		ttrpc_call_reply_err(call, &err);
		hypervisor__create_vmrequest__free_unpacked(req, NULL);
		return;
	}
	lifecycle_create(d, call, req);   /* takes req */
}

static int decode_id(struct ttrpc_call *call, const char *what, char *id, size_t size)
{
	const uint8_t *p;
	size_t len;
	Hypervisor__StartVMRequest *req;   /* StartVM, StopVM: the same shape {string id = 1} */
	struct pp_err err = { 0 };

	p = ttrpc_call_payload(call, &len);
	req = hypervisor__start_vmrequest__unpack(NULL, len, p);
	if (!req) {
		ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "%s: request does not decode", what);
		return -1;
	}
	if (sandbox_id_check(req->id, &err) < 0) {
		hypervisor__start_vmrequest__free_unpacked(req, NULL);
		ttrpc_call_reply_err(call, &err);
		return -1;
	}
	snprintf(id, size, "%s", req->id);
	hypervisor__start_vmrequest__free_unpacked(req, NULL);
	return 0;
}

static void on_start_vm(struct ttrpc_call *call, void *arg)
{
	char id[SANDBOX_ID_MAX];

	if (decode_id(call, "StartVM", id, sizeof(id)) < 0)
		return;
	lifecycle_start(arg, call, id);
}

static void on_stop_vm(struct ttrpc_call *call, void *arg)
{
	char id[SANDBOX_ID_MAX];

	if (decode_id(call, "StopVM", id, sizeof(id)) < 0)
		return;
	lifecycle_stop(arg, call, id);
}

static void on_version(struct ttrpc_call *call, void *arg)
{
	Hypervisor__VersionResponse resp = HYPERVISOR__VERSION_RESPONSE__INIT;
	uint8_t buf[64];
	size_t n;

	(void)arg;
	resp.version = (char *)HYPERVISOR_VERSION;
	n = hypervisor__version_response__pack(&resp, buf);
	ttrpc_call_reply(call, buf, n);
}

int hypervisor_service_register(struct daemon *d, struct pp_err *err)
{
	for (size_t i = 0; i < sizeof(hypervisor_services) / sizeof(hypervisor_services[0]); i++) {
		const char *svc = hypervisor_services[i];

		if (ttrpc_server_register(d->server, svc, "CreateVM", on_create_vm, d) < 0 ||
		    ttrpc_server_register(d->server, svc, "StartVM", on_start_vm, d) < 0 ||
		    ttrpc_server_register(d->server, svc, "StopVM", on_stop_vm, d) < 0 ||
		    ttrpc_server_register(d->server, svc, "Version", on_version, d) < 0)
			return pp_err_set(err, PP_INTERNAL, "registering %s failed", svc);
	}
	return 0;
}
