/*
 * podvminfo.PodVMInfo/GetInfo on the hypervisor socket (spec §8): the instance id of a pod's
 * VM. With Wait, the call is parked (never blocking the loop) until the sandbox has an instance
 * id or the call's token fires; waiters are re-checked whenever an instance id becomes known
 * and swept once a second for deadlines and closed connections.
 */
#include <stdlib.h>
#include <string.h>

#include "adaptor/daemon.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/podvminfo.pb-c.h"

#define GETINFO_SWEEP_MS 1000
#define GETINFO_NAME_MAX 256

struct getinfo_waiter {
	struct getinfo_waiter *next;
	struct ttrpc_call *call;
	char ns[GETINFO_NAME_MAX];
	char name[GETINFO_NAME_MAX];
};

/* Answers the call if the pod's instance id is known; returns 1 if answered. */
static int getinfo_try(struct daemon *d, struct ttrpc_call *call, const char *ns, const char *name)
{
	Podvminfo__GetInfoResponse resp = PODVMINFO__GET_INFO_RESPONSE__INIT;
	char id[PROVIDER_ID_MAX];
	uint8_t buf[PROVIDER_ID_MAX + 16];
	struct sandbox *sb;
	size_t n;

	pthread_mutex_lock(&d->lock);
	sb = sandbox_table_find_pod(&d->sandboxes, ns, name);
	if (sb)
		snprintf(id, sizeof(id), "%s", sb->instance_id);
	pthread_mutex_unlock(&d->lock);
	if (!sb)
		return 0;
	resp.vmid = id;
	n = podvminfo__get_info_response__pack(&resp, buf);
	ttrpc_call_reply(call, buf, n);
	return 1;
}

static void getinfo_sweep(void *arg);

static void getinfo_arm(struct daemon *d)
{
	if (!d->waiter_timer && d->waiters)
		d->waiter_timer = loop_timer_add(d->loop, GETINFO_SWEEP_MS, getinfo_sweep, d);
}

static void getinfo_sweep(void *arg)
{
	struct daemon *d = arg;
	struct getinfo_waiter **pp = &d->waiters;

	d->waiter_timer = NULL;
	while (*pp) {
		struct getinfo_waiter *w = *pp;
		struct cancel *c = ttrpc_call_cancel(w->call);

		if (cancel_fired(c)) {
			enum cancel_reason why = cancel_why(c);

			ttrpc_call_reply_error(w->call, why == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED : PP_CANCELLED,
					       "VM ID for %s:%s: %s", w->ns, w->name, cancel_reason_text(why));
			*pp = w->next;
			free(w);
			continue;
		}
		pp = &w->next;
	}
	getinfo_arm(d);
}

void podvminfo_notify(struct daemon *d)
{
	struct getinfo_waiter **pp = &d->waiters;

	while (*pp) {
		struct getinfo_waiter *w = *pp;

		if (getinfo_try(d, w->call, w->ns, w->name)) {
			*pp = w->next;
			free(w);
			continue;
		}
		pp = &w->next;
	}
}

void podvminfo_fini(struct daemon *d)
{
	while (d->waiters) {
		struct getinfo_waiter *w = d->waiters;

		d->waiters = w->next;
		ttrpc_call_reply_error(w->call, PP_UNAVAILABLE, "the adaptor is shutting down");
		free(w);
	}
	if (d->waiter_timer) {
		loop_timer_cancel(d->loop, d->waiter_timer);
		d->waiter_timer = NULL;
	}
}

static void on_get_info(struct ttrpc_call *call, void *arg)
{
	struct daemon *d = arg;
	Podvminfo__GetInfoRequest *req;
	struct getinfo_waiter *w;
	const uint8_t *p;
	size_t len;

	p = ttrpc_call_payload(call, &len);
	req = podvminfo__get_info_request__unpack(NULL, len, p);
	if (!req) {
		ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "GetInfo: request does not decode");
		return;
	}
	if (strlen(req->podname) >= GETINFO_NAME_MAX || strlen(req->podnamespace) >= GETINFO_NAME_MAX) {
		ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "GetInfo: pod name or namespace too long");
	} else if (!getinfo_try(d, call, req->podnamespace, req->podname)) {
		if (!req->wait) {
			ttrpc_call_reply_error(call, PP_NOT_FOUND, "VM ID for %s:%s was not found",
					       req->podnamespace, req->podname);
		} else {
			w = pp_xcalloc(1, sizeof(*w));
			w->call = call;
			snprintf(w->ns, sizeof(w->ns), "%s", req->podnamespace);
			snprintf(w->name, sizeof(w->name), "%s", req->podname);
			w->next = d->waiters;
			d->waiters = w;
			getinfo_arm(d);
		}
	}
	podvminfo__get_info_request__free_unpacked(req, NULL);
}

int podvminfo_service_register(struct daemon *d, struct pp_err *err)
{
	if (ttrpc_server_register(d->server, "podvminfo.PodVMInfo", "GetInfo", on_get_info, d) < 0)
		return pp_err_set(err, PP_INTERNAL, "registering podvminfo.PodVMInfo failed");
	return 0;
}
