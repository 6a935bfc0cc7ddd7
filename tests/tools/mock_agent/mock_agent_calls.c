/*
 * mock-agent's handlers: what a kata agent answers, minus the containers.
 *
 * Each call is recorded (one JSON line per call, --record) before it is answered, with the
 * details tests check for CreateContainer (OCI namespaces, annotations, mounts, storages) and
 * CreateSandbox (dns); ReadStdout and ReadStderr, the bulk of the traffic, are not recorded.
 * Methods without a handler of their own get an empty success, so a
 * newer shim's calls do not fail here. See mock_agent.h for held calls.
 */
#include "tests/tools/mock_agent/mock_agent.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "proto/agent.pb-c.h"
#include "proto/health.pb-c.h"
#include "proto/agent.pb-c.h"
#include "tests/tools/mock_agent/mock_pattern.h"

#define SVC_AGENT "grpc.AgentService"
#define SVC_HEALTH "grpc.Health"

/* ---- recording ---- */

static void record_write(struct mock_agent *m, json_t *j)
{
	char *text;
	size_t len;

	if (m->record_fd < 0 || !j)
		goto out;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		goto out;
	len = strlen(text);
	text[len] = '\n';   /* json_dumps' NUL becomes the line end: one write per line */
	if (write(m->record_fd, text, len + 1) != (ssize_t)(len + 1))
		log_warn("record write failed", "err=%d", errno);
	free(text);
out:
	json_decref(j);
}

static json_t *record_start(const struct ttrpc_call *call)
{
	return json_pack("{s:s, s:s}", "service", ttrpc_call_service(call), "method",
			 ttrpc_call_method(call));
}

static json_t *json_strv(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i] ? v[i] : ""));
	return a;
}

static json_t *record_spec(const Grpc__Spec *spec)
{
	json_t *ann = json_object(), *mounts = json_array(), *ns = json_array();

	for (size_t i = 0; spec && i < spec->n_annotations; i++)
		json_object_set_new(ann, spec->annotations[i]->key, json_string(spec->annotations[i]->value));
	for (size_t i = 0; spec && i < spec->n_mounts; i++) {
		const Grpc__Mount *mt = spec->mounts[i];

		json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:o}", "destination",
							mt->destination, "source", mt->source, "type",
							mt->type, "options", json_strv(mt->options, mt->n_options)));
	}
	for (size_t i = 0; spec && spec->linux_spec && i < spec->linux_spec->n_namespaces; i++) {
		const Grpc__LinuxNamespace *n = spec->linux_spec->namespaces[i];

		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", n->type, "path", n->path));
	}
	return json_pack("{s:o, s:o, s:o, s:s}", "annotations", ann, "mounts", mounts, "namespaces", ns,
			 "hostname", spec && spec->hostname ? spec->hostname : "");
}

static json_t *record_storages(Grpc__Storage **st, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "driver", st[i]->driver,
						   "source", st[i]->source, "fstype", st[i]->fstype,
						   "mount_point", st[i]->mount_point));
	return a;
}

/* ---- processes ---- */

static struct mock_proc *proc_find(struct mock_agent *m, const char *cid, const char *eid)
{
	for (struct mock_proc *p = m->procs; p; p = p->next)
		if (strcmp(p->cid, cid) == 0 && strcmp(p->eid, eid) == 0)
			return p;
	return NULL;
}

/* Finds or adds (cid, eid). A container killed as a whole (signal with exec_id "") makes every
 * process of it, even one heard of later, an exited one. */
static struct mock_proc *proc_get(struct mock_agent *m, const char *cid, const char *eid)
{
	struct mock_proc *p = proc_find(m, cid, eid), *all;

	if (p)
		return p;
	if (m->n_procs >= MOCK_MAX_PROCS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->cid = strdup(cid)) || !(p->eid = strdup(eid))) {
		if (p)
			free(p->cid);
		free(p);
		return NULL;
	}
	all = eid[0] ? proc_find(m, cid, "") : NULL;
	if (all && all->exited) {
		p->exited = true;
		p->status = all->status;
	}
	p->next = m->procs;
	m->procs = p;
	m->n_procs++;
	return p;
}

/* ---- replies ---- */

static void reply_msg(struct ttrpc_call *call, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		ttrpc_call_reply_error(call, PP_RESOURCE_EXHAUSTED, "mock-agent: out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	ttrpc_call_reply(call, buf, len);
	free(buf);
}

static void reply_empty(struct ttrpc_call *call)
{
	ttrpc_call_reply(call, NULL, 0);
}

static void reply_bad_request(struct ttrpc_call *call)
{
	ttrpc_call_reply_error(call, PP_INVALID_ARGUMENT, "mock-agent: cannot decode %s request",
			       ttrpc_call_method(call));
}

static void reply_eof(struct ttrpc_call *call)
{
	/* The Go agent client maps io.EOF to this code and message. */
	ttrpc_call_reply_error(call, PP_OUT_OF_RANGE, "EOF");
}

static void reply_wait(struct ttrpc_call *call, int status)
{
	Grpc__WaitProcessResponse r = GRPC__WAIT_PROCESS_RESPONSE__INIT;

	r.status = status;
	reply_msg(call, &r.base);
}

/* ---- held calls ---- */

static void sweep_fire(void *arg);

static void sweep_arm(struct mock_agent *m)
{
	if (!m->sweep && m->holds)
		m->sweep = loop_timer_add(m->loop, MOCK_SWEEP_MS, sweep_fire, m);
}

static void hold_add(struct mock_agent *m, struct ttrpc_call *call, enum mock_hold_kind kind,
		     struct mock_proc *p)
{
	struct mock_hold *h = calloc(1, sizeof(*h));

	if (!h) {
		ttrpc_call_reply_error(call, PP_RESOURCE_EXHAUSTED, "mock-agent: out of memory");
		return;
	}
	h->call = call;
	h->cancel = cancel_ref(ttrpc_call_cancel(call));
	h->kind = kind;
	h->proc = p;
	h->next = m->holds;
	m->holds = h;
	sweep_arm(m);
}

static void hold_answer(struct mock_hold *h)
{
	if (h->kind == MOCK_HOLD_WAIT)
		reply_wait(h->call, h->proc->status);
	else if (h->kind == MOCK_HOLD_STDERR)
		reply_eof(h->call);
	else
		ttrpc_call_reply_error(h->call, PP_CANCELLED, "mock-agent: no OOM event");
}

/* Answers and drops every held call for which done(h) says so. */
static void holds_settle(struct mock_agent *m, bool (*done)(const struct mock_hold *h, const void *arg),
			 const void *arg)
{
	struct mock_hold **pp = &m->holds;

	while (*pp) {
		struct mock_hold *h = *pp;

		if (!done(h, arg)) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		if (cancel_fired(h->cancel))
			ttrpc_call_reply_error(h->call, PP_CANCELLED, "mock-agent: %s",
					       cancel_reason_text(cancel_why(h->cancel)));
		else
			hold_answer(h);
		cancel_unref(h->cancel);
		free(h);
	}
}

static bool hold_cancelled(const struct mock_hold *h, const void *arg)
{
	(void)arg;
	return cancel_fired(h->cancel);
}

static bool hold_proc_exited(const struct mock_hold *h, const void *arg)
{
	(void)arg;
	return h->proc && h->proc->exited;
}

static void sweep_fire(void *arg)
{
	struct mock_agent *m = arg;

	m->sweep = NULL;
	holds_settle(m, hold_cancelled, NULL);
	sweep_arm(m);
}

/* ---- handlers ---- */

static void on_health_check(struct ttrpc_call *call, void *arg)
{
	Grpc__HealthCheckResponse r = GRPC__HEALTH_CHECK_RESPONSE__INIT;

	record_write(arg, record_start(call));
	r.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	reply_msg(call, &r.base);
}

static void on_health_version(struct ttrpc_call *call, void *arg)
{
	Grpc__VersionCheckResponse r = GRPC__VERSION_CHECK_RESPONSE__INIT;

	record_write(arg, record_start(call));
	r.grpc_version = "1.0.0";
	r.agent_version = MOCK_AGENT_VERSION;
	reply_msg(call, &r.base);
}

static void on_guest_details(struct ttrpc_call *call, void *arg)
{
	Grpc__GuestDetailsResponse r = GRPC__GUEST_DETAILS_RESPONSE__INIT;
	Grpc__AgentDetails d = GRPC__AGENT_DETAILS__INIT;

	record_write(arg, record_start(call));
	d.version = MOCK_AGENT_VERSION;
	r.mem_block_size_bytes = 128u << 20;
	r.agent_details = &d;
	reply_msg(call, &r.base);
}

static void on_create_container(struct ttrpc_call *call, void *arg)
{
	Grpc__CreateContainerRequest *req;
	const uint8_t *data;
	size_t len;
	json_t *j;

	data = ttrpc_call_payload(call, &len);
	req = grpc__create_container_request__unpack(NULL, len, data);
	if (!req) {
		reply_bad_request(call);
		return;
	}
	j = record_start(call);
	json_object_set_new(j, "container_id", json_string(req->container_id));
	json_object_set_new(j, "exec_id", json_string(req->exec_id));
	json_object_set_new(j, "oci", record_spec(req->oci));
	json_object_set_new(j, "storages", record_storages(req->storages, req->n_storages));
	record_write(arg, j);
	log_info("container created", "container=%s", req->container_id);
	grpc__create_container_request__free_unpacked(req, NULL);
	reply_empty(call);
}

static void on_create_sandbox(struct ttrpc_call *call, void *arg)
{
	Grpc__CreateSandboxRequest *req;
	const uint8_t *data;
	size_t len;
	json_t *j;

	data = ttrpc_call_payload(call, &len);
	req = grpc__create_sandbox_request__unpack(NULL, len, data);
	if (!req) {
		reply_bad_request(call);
		return;
	}
	j = record_start(call);
	json_object_set_new(j, "hostname", json_string(req->hostname));
	json_object_set_new(j, "sandbox_id", json_string(req->sandbox_id));
	json_object_set_new(j, "dns", json_strv(req->dns, req->n_dns));
	record_write(arg, j);
	grpc__create_sandbox_request__free_unpacked(req, NULL);
	reply_empty(call);
}

static void on_destroy_sandbox(struct ttrpc_call *call, void *arg)
{
	struct mock_agent *m = arg;

	record_write(m, record_start(call));
	/* Every process ends with the sandbox. */
	for (struct mock_proc *p = m->procs; p; p = p->next) {
		if (!p->exited) {
			p->exited = true;
			p->status = MOCK_SIGNAL_STATUS_BASE + 9;
		}
	}
	holds_settle(m, hold_proc_exited, NULL);
	reply_empty(call);
}

/* Decodes the (container_id, exec_id) head shared by WaitProcess and ReadStream requests. */
static struct mock_proc *call_proc(struct mock_agent *m, struct ttrpc_call *call, uint32_t *ret_len)
{
	Grpc__ReadStreamRequest *req;
	struct mock_proc *p;
	const uint8_t *data;
	size_t len;

	data = ttrpc_call_payload(call, &len);
	req = grpc__read_stream_request__unpack(NULL, len, data);
	if (!req) {
		reply_bad_request(call);
		return NULL;
	}
	p = proc_get(m, req->container_id, req->exec_id);
	if (ret_len)
		*ret_len = req->len;
	grpc__read_stream_request__free_unpacked(req, NULL);
	if (!p)
		ttrpc_call_reply_error(call, PP_RESOURCE_EXHAUSTED, "mock-agent: more than %d processes",
				       MOCK_MAX_PROCS);
	return p;
}

static void record_proc(struct mock_agent *m, struct ttrpc_call *call, const struct mock_proc *p)
{
	json_t *j = record_start(call);

	json_object_set_new(j, "container_id", json_string(p->cid));
	json_object_set_new(j, "exec_id", json_string(p->eid));
	record_write(m, j);
}

static void on_wait_process(struct ttrpc_call *call, void *arg)
{
	struct mock_agent *m = arg;
	struct mock_proc *p = call_proc(m, call, NULL);

	if (!p)
		return;
	record_proc(m, call, p);
	if (p->exited)
		reply_wait(call, p->status);
	else
		hold_add(m, call, MOCK_HOLD_WAIT, p);
}

static void proc_kill(struct mock_agent *m, const char *cid, const char *eid, uint32_t sig)
{
	struct mock_proc *target = proc_get(m, cid, eid);

	if (target && !target->exited) {
		target->exited = true;
		target->status = MOCK_SIGNAL_STATUS_BASE + (int)sig;
	}
	if (eid[0])
		return;
	for (struct mock_proc *p = m->procs; p; p = p->next) {
		if (!p->exited && strcmp(p->cid, cid) == 0) {
			p->exited = true;
			p->status = MOCK_SIGNAL_STATUS_BASE + (int)sig;
		}
	}
}

static void on_signal_process(struct ttrpc_call *call, void *arg)
{
	struct mock_agent *m = arg;
	Grpc__SignalProcessRequest *req;
	const uint8_t *data;
	size_t len;
	json_t *j;

	data = ttrpc_call_payload(call, &len);
	req = grpc__signal_process_request__unpack(NULL, len, data);
	if (!req) {
		reply_bad_request(call);
		return;
	}
	j = record_start(call);
	json_object_set_new(j, "container_id", json_string(req->container_id));
	json_object_set_new(j, "exec_id", json_string(req->exec_id));
	json_object_set_new(j, "signal", json_integer(req->signal));
	record_write(m, j);
	proc_kill(m, req->container_id, req->exec_id, req->signal);
	grpc__signal_process_request__free_unpacked(req, NULL);
	holds_settle(m, hold_proc_exited, NULL);
	reply_empty(call);
}

static void on_read_stdout(struct ttrpc_call *call, void *arg)
{
	Grpc__ReadStreamResponse r = GRPC__READ_STREAM_RESPONSE__INIT;
	struct mock_agent *m = arg;
	uint32_t want = 0;
	struct mock_proc *p = call_proc(m, call, &want);
	uint64_t n = want > MOCK_MAX_READ ? MOCK_MAX_READ : want;
	uint8_t *buf;

	if (!p)
		return;
	if (m->stdout_limited) {
		uint64_t left = p->stdout_off < m->stdout_bytes ? m->stdout_bytes - p->stdout_off : 0;

		if (left == 0) {
			reply_eof(call);
			return;
		}
		n = n < left ? n : left;
	}
	buf = malloc(n ? n : 1);
	if (!buf) {
		ttrpc_call_reply_error(call, PP_RESOURCE_EXHAUSTED, "mock-agent: out of memory");
		return;
	}
	mock_pattern_fill(buf, (size_t)n, p->stdout_off);
	p->stdout_off += n;
	r.data.data = buf;
	r.data.len = (size_t)n;
	reply_msg(call, &r.base);
	free(buf);
}

static void on_read_stderr(struct ttrpc_call *call, void *arg)
{
	struct mock_agent *m = arg;
	struct mock_proc *p = call_proc(m, call, NULL);

	if (!p)
		return;
	if (p->exited)
		reply_eof(call);
	else
		hold_add(m, call, MOCK_HOLD_STDERR, p);
}

static void on_oom_event(struct ttrpc_call *call, void *arg)
{
	record_write(arg, record_start(call));
	hold_add(arg, call, MOCK_HOLD_OOM, NULL);
}

/* Any other method: an AgentService method gets an empty success (forward compatible), any
 * other service UNIMPLEMENTED, as the real agent's server would answer. */
static void on_other(struct ttrpc_call *call, void *arg)
{
	record_write(arg, record_start(call));
	if (strcmp(ttrpc_call_service(call), SVC_AGENT) == 0) {
		reply_empty(call);
		return;
	}
	ttrpc_call_reply_error(call, PP_UNIMPLEMENTED, "%s/%s: service not found",
			       ttrpc_call_service(call), ttrpc_call_method(call));
}

int mock_agent_register(struct mock_agent *m)
{
	static const struct {
		const char *service, *method;
		ttrpc_handler_fn fn;
	} table[] = {
		{ SVC_HEALTH, "Check", on_health_check },
		{ SVC_HEALTH, "Version", on_health_version },
		{ SVC_AGENT, "GetGuestDetails", on_guest_details },
		{ SVC_AGENT, "CreateContainer", on_create_container },
		{ SVC_AGENT, "CreateSandbox", on_create_sandbox },
		{ SVC_AGENT, "DestroySandbox", on_destroy_sandbox },
		{ SVC_AGENT, "WaitProcess", on_wait_process },
		{ SVC_AGENT, "SignalProcess", on_signal_process },
		{ SVC_AGENT, "ReadStdout", on_read_stdout },
		{ SVC_AGENT, "ReadStderr", on_read_stderr },
		{ SVC_AGENT, "GetOOMEvent", on_oom_event },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (ttrpc_server_register(m->srv, table[i].service, table[i].method, table[i].fn, m) < 0)
			return -1;
	ttrpc_server_set_fallback(m->srv, on_other, m);
	return 0;
}

void mock_agent_release(struct mock_agent *m)
{
	struct mock_proc *p;
	struct mock_hold *h;

	while ((h = m->holds) != NULL) {
		m->holds = h->next;
		ttrpc_call_reply_error(h->call, PP_UNAVAILABLE, "mock-agent: shutting down");
		cancel_unref(h->cancel);
		free(h);
	}
	loop_timer_cancel(m->loop, m->sweep);
	m->sweep = NULL;
	while ((p = m->procs) != NULL) {
		m->procs = p->next;
		free(p->cid);
		free(p->eid);
		free(p);
	}
	m->n_procs = 0;
}
