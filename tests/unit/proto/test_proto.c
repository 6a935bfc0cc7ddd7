/*
 * Tests of our .proto files: every declared message survives encode -> decode with its fields,
 * and a CreateContainerRequest carrying fields we do not declare (at the top level, inside Spec
 * and inside Linux) keeps them through decode -> edit -> encode -> decode. That last property
 * is what lets the proxy edit CreateContainer without knowing the whole agent protocol.
 *
 * The undeclared fields are checked with a small wire scanner written here, independent of
 * protobuf-c, so that the test reads the bytes the forwarder would receive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/agent.pb-c.h"
#include "proto/health.pb-c.h"
#include "proto/hypervisor.pb-c.h"
#include "proto/podvminfo.pb-c.h"

#define ENC_MAX 4096

/* ---- a minimal protobuf writer and reader for hand-made messages ---- */

struct enc {
	uint8_t b[ENC_MAX];
	size_t n;
};

static void enc_varint(struct enc *e, uint64_t v)
{
	do {
		assert_true(e->n < ENC_MAX);
		e->b[e->n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void enc_tag(struct enc *e, uint32_t field, uint32_t wire)
{
	enc_varint(e, ((uint64_t)field << 3) | wire);
}

static void enc_uint(struct enc *e, uint32_t field, uint64_t v)
{
	enc_tag(e, field, 0);
	enc_varint(e, v);
}

static void enc_bytes(struct enc *e, uint32_t field, const void *p, size_t len)
{
	enc_tag(e, field, 2);
	enc_varint(e, len);
	assert_true(e->n + len <= ENC_MAX);
	memcpy(e->b + e->n, p, len);
	e->n += len;
}

static void enc_str(struct enc *e, uint32_t field, const char *s)
{
	enc_bytes(e, field, s, strlen(s));
}

static void enc_msg(struct enc *e, uint32_t field, const struct enc *sub)
{
	enc_bytes(e, field, sub->b, sub->n);
}

static int dec_varint(const uint8_t *b, size_t len, size_t *pos, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*pos < len && shift < 64) {
		uint8_t c = b[(*pos)++];

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
		shift += 7;
	}
	return -1;
}

/* The idx-th occurrence of `field` in a message: its wire type, its varint value or its
 * length-delimited bytes. Returns 0 if found, -1 if not (or the bytes are malformed). */
struct wire_field {
	uint32_t wire;
	uint64_t value;
	const uint8_t *data;
	size_t len;
};

static int wire_find(const uint8_t *b, size_t len, uint32_t field, int idx, struct wire_field *ret)
{
	size_t pos = 0;

	while (pos < len) {
		uint64_t key, v;
		struct wire_field f = { 0 };

		if (dec_varint(b, len, &pos, &key) < 0)
			return -1;
		f.wire = key & 7;
		if (f.wire == 0) {
			if (dec_varint(b, len, &pos, &f.value) < 0)
				return -1;
		} else if (f.wire == 2) {
			if (dec_varint(b, len, &pos, &v) < 0 || v > len - pos)
				return -1;
			f.data = b + pos;
			f.len = v;
			pos += v;
		} else {
			return -1;   /* the test only writes varint and length-delimited fields */
		}
		if ((key >> 3) == field && idx-- == 0) {
			*ret = f;
			return 0;
		}
	}
	return -1;
}

static void assert_wire_bytes(const uint8_t *b, size_t len, uint32_t field, int idx, const char *want)
{
	struct wire_field f;

	assert_int_equal(wire_find(b, len, field, idx, &f), 0);
	assert_int_equal(f.wire, 2);
	assert_int_equal(f.len, strlen(want));
	assert_memory_equal(f.data, want, f.len);
}

static void assert_wire_varint(const uint8_t *b, size_t len, uint32_t field, uint64_t want)
{
	struct wire_field f;

	assert_int_equal(wire_find(b, len, field, 0, &f), 0);
	assert_int_equal(f.wire, 0);
	assert_int_equal(f.value, want);
}

/* Sub-message bytes of the idx-th `field`. */
static struct wire_field wire_sub(const uint8_t *b, size_t len, uint32_t field, int idx)
{
	struct wire_field f;

	assert_int_equal(wire_find(b, len, field, idx, &f), 0);
	assert_int_equal(f.wire, 2);
	return f;
}

/* pack into a fresh heap buffer */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), *len);
	return buf;
}

/* Encodes m, decodes it again and checks re-encoding gives the same bytes. */
static ProtobufCMessage *round_trip(const ProtobufCMessage *m)
{
	size_t len, len2;
	uint8_t *buf = pack(m, &len);
	ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	uint8_t *buf2;

	assert_non_null(out);
	buf2 = pack(out, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf);
	free(buf2);
	return out;
}

/* ---- round trips of every declared message ---- */

static void test_hypervisor_round_trip(void **state)
{
	(void)state;
	Hypervisor__CreateVMRequest__AnnotationsEntry e1 = HYPERVISOR__CREATE_VMREQUEST__ANNOTATIONS_ENTRY__INIT;
	Hypervisor__CreateVMRequest__AnnotationsEntry e2 = HYPERVISOR__CREATE_VMREQUEST__ANNOTATIONS_ENTRY__INIT;
	Hypervisor__CreateVMRequest__AnnotationsEntry *ents[] = { &e1, &e2 };
	Hypervisor__CreateVMRequest cr = HYPERVISOR__CREATE_VMREQUEST__INIT;
	Hypervisor__CreateVMResponse crs = HYPERVISOR__CREATE_VMRESPONSE__INIT;
	Hypervisor__StartVMRequest sr = HYPERVISOR__START_VMREQUEST__INIT;
	Hypervisor__StartVMResponse srs = HYPERVISOR__START_VMRESPONSE__INIT;
	Hypervisor__StopVMRequest st = HYPERVISOR__STOP_VMREQUEST__INIT;
	Hypervisor__StopVMResponse sts = HYPERVISOR__STOP_VMRESPONSE__INIT;
	Hypervisor__VersionRequest vr = HYPERVISOR__VERSION_REQUEST__INIT;
	Hypervisor__VersionResponse vrs = HYPERVISOR__VERSION_RESPONSE__INIT;

	e1.key = "io.kubernetes.cri.sandbox-name";
	e1.value = "nginx";
	e2.key = "io.katacontainers.config.hypervisor.machine_type";
	e2.value = "m6a.large";
	cr.id = "0123456789abcdef";
	cr.n_annotations = 2;
	cr.annotations = ents;
	cr.networknamespacepath = "/var/run/netns/cni-1";
	Hypervisor__CreateVMRequest *c = (void *)round_trip(&cr.base);
	assert_string_equal(c->id, "0123456789abcdef");
	assert_int_equal(c->n_annotations, 2);
	assert_string_equal(c->annotations[1]->key, "io.katacontainers.config.hypervisor.machine_type");
	assert_string_equal(c->annotations[1]->value, "m6a.large");
	assert_string_equal(c->networknamespacepath, "/var/run/netns/cni-1");
	protobuf_c_message_free_unpacked(&c->base, NULL);

	crs.agentsocketpath = "/run/peerpod/pods/x/agent.ttrpc";
	Hypervisor__CreateVMResponse *cs = (void *)round_trip(&crs.base);
	assert_string_equal(cs->agentsocketpath, "/run/peerpod/pods/x/agent.ttrpc");
	protobuf_c_message_free_unpacked(&cs->base, NULL);

	sr.id = "sid-start";
	Hypervisor__StartVMRequest *s = (void *)round_trip(&sr.base);
	assert_string_equal(s->id, "sid-start");
	protobuf_c_message_free_unpacked(&s->base, NULL);
	protobuf_c_message_free_unpacked(round_trip(&srs.base), NULL);

	st.id = "sid-stop";
	Hypervisor__StopVMRequest *t = (void *)round_trip(&st.base);
	assert_string_equal(t->id, "sid-stop");
	protobuf_c_message_free_unpacked(&t->base, NULL);
	protobuf_c_message_free_unpacked(round_trip(&sts.base), NULL);

	vr.version = "0.0.1";
	Hypervisor__VersionRequest *v = (void *)round_trip(&vr.base);
	assert_string_equal(v->version, "0.0.1");
	protobuf_c_message_free_unpacked(&v->base, NULL);
	vrs.version = "0.0.0";
	Hypervisor__VersionResponse *vs = (void *)round_trip(&vrs.base);
	assert_string_equal(vs->version, "0.0.0");
	protobuf_c_message_free_unpacked(&vs->base, NULL);
}

/* Field numbers on the wire are upstream's: check a hand-made CreateVMRequest decodes. */
static void test_hypervisor_wire_numbers(void **state)
{
	(void)state;
	struct enc entry = { 0 }, e = { 0 };

	enc_str(&entry, 1, "k");
	enc_str(&entry, 2, "v");
	enc_str(&e, 1, "sid");
	enc_msg(&e, 2, &entry);
	enc_str(&e, 3, "/netns");
	Hypervisor__CreateVMRequest *c = hypervisor__create_vmrequest__unpack(NULL, e.n, e.b);
	assert_non_null(c);
	assert_string_equal(c->id, "sid");
	assert_int_equal(c->n_annotations, 1);
	assert_string_equal(c->annotations[0]->key, "k");
	assert_string_equal(c->annotations[0]->value, "v");
	assert_string_equal(c->networknamespacepath, "/netns");
	hypervisor__create_vmrequest__free_unpacked(c, NULL);
}

static void test_podvminfo_round_trip(void **state)
{
	(void)state;
	Podvminfo__GetInfoRequest rq = PODVMINFO__GET_INFO_REQUEST__INIT;
	Podvminfo__GetInfoResponse rs = PODVMINFO__GET_INFO_RESPONSE__INIT;
	struct enc e = { 0 };

	rq.podname = "web-0";
	rq.podnamespace = "default";
	rq.wait = 1;
	Podvminfo__GetInfoRequest *q = (void *)round_trip(&rq.base);
	assert_string_equal(q->podname, "web-0");
	assert_string_equal(q->podnamespace, "default");
	assert_true(q->wait);
	protobuf_c_message_free_unpacked(&q->base, NULL);

	rs.vmid = "i-0abc";
	Podvminfo__GetInfoResponse *s = (void *)round_trip(&rs.base);
	assert_string_equal(s->vmid, "i-0abc");
	protobuf_c_message_free_unpacked(&s->base, NULL);

	enc_str(&e, 1, "p");
	enc_str(&e, 2, "ns");
	enc_uint(&e, 3, 1);
	q = podvminfo__get_info_request__unpack(NULL, e.n, e.b);
	assert_non_null(q);
	assert_string_equal(q->podname, "p");
	assert_string_equal(q->podnamespace, "ns");
	assert_true(q->wait);
	podvminfo__get_info_request__free_unpacked(q, NULL);
}

static void test_health_round_trip(void **state)
{
	(void)state;
	Grpc__CheckRequest cq = GRPC__CHECK_REQUEST__INIT;
	Grpc__HealthCheckResponse hr = GRPC__HEALTH_CHECK_RESPONSE__INIT;
	Grpc__VersionCheckResponse vr = GRPC__VERSION_CHECK_RESPONSE__INIT;
	size_t len;
	uint8_t *buf;

	cq.service = "grpc.AgentService";
	Grpc__CheckRequest *c = (void *)round_trip(&cq.base);
	assert_string_equal(c->service, "grpc.AgentService");
	protobuf_c_message_free_unpacked(&c->base, NULL);

	hr.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	buf = pack(&hr.base, &len);
	assert_int_equal(len, 2);          /* field 1 varint 1: 08 01 */
	assert_int_equal(buf[0], 0x08);
	assert_int_equal(buf[1], 0x01);
	free(buf);
	Grpc__HealthCheckResponse *h = (void *)round_trip(&hr.base);
	assert_int_equal(h->status, 1);
	protobuf_c_message_free_unpacked(&h->base, NULL);

	vr.grpc_version = "0.0.1";
	vr.agent_version = "3.2.0";
	Grpc__VersionCheckResponse *v = (void *)round_trip(&vr.base);
	assert_string_equal(v->grpc_version, "0.0.1");
	assert_string_equal(v->agent_version, "3.2.0");
	protobuf_c_message_free_unpacked(&v->base, NULL);
}

static void test_agent_small_messages_round_trip(void **state)
{
	(void)state;
	Grpc__DestroySandboxRequest ds = GRPC__DESTROY_SANDBOX_REQUEST__INIT;
	Grpc__GetGuestDetailsRequest gq = GRPC__GET_GUEST_DETAILS_REQUEST__INIT;
	Grpc__GuestDetailsResponse gr = GRPC__GUEST_DETAILS_RESPONSE__INIT;
	Grpc__AgentDetails ad = GRPC__AGENT_DETAILS__INIT;
	Grpc__SignalProcessRequest sq = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
	Grpc__WaitProcessRequest wq = GRPC__WAIT_PROCESS_REQUEST__INIT;
	Grpc__WaitProcessResponse wr = GRPC__WAIT_PROCESS_RESPONSE__INIT;
	Grpc__ReadStreamRequest rq = GRPC__READ_STREAM_REQUEST__INIT;
	Grpc__ReadStreamResponse rr = GRPC__READ_STREAM_RESPONSE__INIT;
	static uint8_t data[] = { 0, 1, 2, 0xff, 'x' };

	protobuf_c_message_free_unpacked(round_trip(&ds.base), NULL);

	gq.mem_block_size = 1;
	gq.mem_hotplug_probe = 1;
	Grpc__GetGuestDetailsRequest *g = (void *)round_trip(&gq.base);
	assert_true(g->mem_block_size);
	assert_true(g->mem_hotplug_probe);
	protobuf_c_message_free_unpacked(&g->base, NULL);

	gr.mem_block_size_bytes = 128ull << 20;
	gr.support_mem_hotplug_probe = 1;
	ad.version = "3.19.0";
	ad.init_daemon = 1;
	gr.agent_details = &ad;
	Grpc__GuestDetailsResponse *gd = (void *)round_trip(&gr.base);
	assert_int_equal(gd->mem_block_size_bytes, 128ull << 20);
	assert_true(gd->support_mem_hotplug_probe);
	assert_non_null(gd->agent_details);
	assert_string_equal(gd->agent_details->version, "3.19.0");
	assert_true(gd->agent_details->init_daemon);
	protobuf_c_message_free_unpacked(&gd->base, NULL);

	/* upstream's numbering: agent_details = 2 (message), support_mem_hotplug_probe = 3 */
	{
		static const uint8_t wire[] = { 0x12, 0x03, 0x0a, 0x01, 'v', 0x18, 0x01 };
		Grpc__GuestDetailsResponse *w = grpc__guest_details_response__unpack(NULL, sizeof(wire), wire);

		assert_non_null(w);
		assert_string_equal(w->agent_details->version, "v");
		assert_true(w->support_mem_hotplug_probe);
		grpc__guest_details_response__free_unpacked(w, NULL);
	}

	sq.container_id = "c1";
	sq.exec_id = "e1";
	sq.signal = 9;
	Grpc__SignalProcessRequest *sg = (void *)round_trip(&sq.base);
	assert_string_equal(sg->exec_id, "e1");
	assert_int_equal(sg->signal, 9);
	protobuf_c_message_free_unpacked(&sg->base, NULL);

	wq.container_id = "c1";
	wq.exec_id = "e1";
	Grpc__WaitProcessRequest *w = (void *)round_trip(&wq.base);
	assert_string_equal(w->container_id, "c1");
	assert_string_equal(w->exec_id, "e1");
	protobuf_c_message_free_unpacked(&w->base, NULL);

	wr.status = -9;   /* int32: negative values are sign-extended on the wire */
	Grpc__WaitProcessResponse *ws = (void *)round_trip(&wr.base);
	assert_int_equal(ws->status, -9);
	protobuf_c_message_free_unpacked(&ws->base, NULL);

	rq.container_id = "c2";
	rq.exec_id = "e2";
	rq.len = 32768;
	Grpc__ReadStreamRequest *r = (void *)round_trip(&rq.base);
	assert_string_equal(r->container_id, "c2");
	assert_string_equal(r->exec_id, "e2");
	assert_int_equal(r->len, 32768);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	rr.data.data = data;
	rr.data.len = sizeof(data);
	Grpc__ReadStreamResponse *rs = (void *)round_trip(&rr.base);
	assert_int_equal(rs->data.len, sizeof(data));
	assert_memory_equal(rs->data.data, data, sizeof(data));
	protobuf_c_message_free_unpacked(&rs->base, NULL);
}

static void test_create_sandbox_round_trip(void **state)
{
	(void)state;
	Grpc__CreateSandboxRequest q = GRPC__CREATE_SANDBOX_REQUEST__INIT;
	Grpc__Storage st = GRPC__STORAGE__INIT;
	Grpc__Storage *sts[] = { &st };
	char *dns[] = { "nameserver 10.96.0.10", "search default.svc" };
	char *params[] = { "NVreg_OpenRmEnableUnsupportedGpus=1" };
	Grpc__KernelModule km = GRPC__KERNEL_MODULE__INIT;
	Grpc__KernelModule *mods[] = { &km };
	char *dopts[] = { "a=b" };
	char *opts[] = { "ro" };

	st.driver = "image_guest_pull";
	st.n_driver_options = 1;
	st.driver_options = dopts;
	st.source = "docker.io/library/nginx";
	st.fstype = "overlay";
	st.n_options = 1;
	st.options = opts;
	st.mount_point = "/run/kata-containers/c1/rootfs";
	q.hostname = "web-0";
	q.n_dns = 2;
	q.dns = dns;
	q.n_storages = 1;
	q.storages = sts;
	q.sandbox_pidns = 1;
	q.sandbox_id = "sid";
	q.guest_hook_path = "/usr/share/oci/hooks";
	km.name = "nvidia";
	km.n_parameters = 1;
	km.parameters = params;
	q.n_kernel_modules = 1;
	q.kernel_modules = mods;
	Grpc__CreateSandboxRequest *c = (void *)round_trip(&q.base);
	assert_string_equal(c->hostname, "web-0");
	assert_int_equal(c->n_dns, 2);
	assert_string_equal(c->dns[1], "search default.svc");
	assert_int_equal(c->n_storages, 1);
	assert_string_equal(c->storages[0]->driver, "image_guest_pull");
	assert_string_equal(c->storages[0]->driver_options[0], "a=b");
	assert_string_equal(c->storages[0]->source, "docker.io/library/nginx");
	assert_string_equal(c->storages[0]->fstype, "overlay");
	assert_string_equal(c->storages[0]->options[0], "ro");
	assert_string_equal(c->storages[0]->mount_point, "/run/kata-containers/c1/rootfs");
	assert_true(c->sandbox_pidns);
	assert_string_equal(c->sandbox_id, "sid");
	assert_string_equal(c->guest_hook_path, "/usr/share/oci/hooks");
	assert_int_equal(c->n_kernel_modules, 1);
	assert_string_equal(c->kernel_modules[0]->name, "nvidia");
	assert_string_equal(c->kernel_modules[0]->parameters[0], "NVreg_OpenRmEnableUnsupportedGpus=1");
	protobuf_c_message_free_unpacked(&c->base, NULL);
}

static void test_create_container_round_trip(void **state)
{
	(void)state;
	Grpc__CreateContainerRequest q = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	Grpc__Spec spec = GRPC__SPEC__INIT;
	Grpc__Mount m = GRPC__MOUNT__INIT;
	Grpc__Mount *ms[] = { &m };
	Grpc__Spec__AnnotationsEntry a = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
	Grpc__Spec__AnnotationsEntry *as[] = { &a };
	Grpc__Linux lx = GRPC__LINUX__INIT;
	Grpc__LinuxNamespace ns = GRPC__LINUX_NAMESPACE__INIT;
	Grpc__LinuxNamespace *nss[] = { &ns };
	Grpc__Storage st = GRPC__STORAGE__INIT;
	Grpc__Storage *sts[] = { &st };
	char *mopts[] = { "rbind", "ro" };

	m.destination = "/data";
	m.source = "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv1/mount";
	m.type = "bind";
	m.n_options = 2;
	m.options = mopts;
	a.key = "io.kubernetes.cri.sandbox-uid";
	a.value = "u";
	ns.type = "network";
	ns.path = "/var/run/netns/x";
	lx.n_namespaces = 1;
	lx.namespaces = nss;
	spec.version = "1.1.0";
	spec.hostname = "web-0";
	spec.n_mounts = 1;
	spec.mounts = ms;
	spec.n_annotations = 1;
	spec.annotations = as;
	spec.linux_spec = &lx;
	st.driver = "overlayfs";
	q.container_id = "c1";
	q.exec_id = "c1";
	q.n_storages = 1;
	q.storages = sts;
	q.oci = &spec;
	q.sandbox_pidns = 1;
	Grpc__CreateContainerRequest *c = (void *)round_trip(&q.base);
	assert_string_equal(c->container_id, "c1");
	assert_string_equal(c->exec_id, "c1");
	assert_string_equal(c->storages[0]->driver, "overlayfs");
	assert_true(c->sandbox_pidns);
	assert_non_null(c->oci);
	assert_string_equal(c->oci->version, "1.1.0");
	assert_string_equal(c->oci->hostname, "web-0");
	assert_int_equal(c->oci->n_mounts, 1);
	assert_string_equal(c->oci->mounts[0]->destination, "/data");
	assert_string_equal(c->oci->mounts[0]->source, m.source);
	assert_string_equal(c->oci->mounts[0]->type, "bind");
	assert_int_equal(c->oci->mounts[0]->n_options, 2);
	assert_string_equal(c->oci->mounts[0]->options[1], "ro");
	assert_int_equal(c->oci->n_annotations, 1);
	assert_string_equal(c->oci->annotations[0]->key, "io.kubernetes.cri.sandbox-uid");
	assert_non_null(c->oci->linux_spec);
	assert_int_equal(c->oci->linux_spec->n_namespaces, 1);
	assert_string_equal(c->oci->linux_spec->namespaces[0]->type, "network");
	assert_string_equal(c->oci->linux_spec->namespaces[0]->path, "/var/run/netns/x");
	protobuf_c_message_free_unpacked(&c->base, NULL);
}

/* ---- undeclared fields survive decode -> edit -> encode ---- */

#define PROCESS_BYTES "\x0a\x03" "abc" "\x12\x01/"   /* opaque Process (field 2 of Spec) */

static void build_create_container(struct enc *out)
{
	struct enc ns = { 0 }, lx = { 0 }, mnt = { 0 }, ann = { 0 }, spec = { 0 };
	struct enc st = { 0 }, user = { 0 }, dev1 = { 0 }, dev2 = { 0 };

	enc_str(&ns, 1, "pid");
	enc_str(&lx, 5, "/kubepods/besteffort/pod-u");    /* Linux.CgroupsPath: undeclared */
	enc_msg(&lx, 6, &ns);
	enc_bytes(&lx, 99, "linux-future", 12);          /* unknown to everyone */
	enc_uint(&lx, 12, 5);

	enc_str(&mnt, 1, "/etc/hosts");
	enc_str(&mnt, 2, "/run/kata/hosts");
	enc_str(&mnt, 3, "bind");
	enc_str(&mnt, 4, "rbind");
	enc_str(&ann, 1, "io.kubernetes.cri.sandbox-uid");
	enc_str(&ann, 2, "u-1");

	enc_str(&spec, 1, "1.1.0");
	enc_bytes(&spec, 2, PROCESS_BYTES, sizeof(PROCESS_BYTES) - 1);   /* undeclared */
	enc_str(&spec, 4, "web-0");
	enc_msg(&spec, 5, &mnt);
	enc_msg(&spec, 7, &ann);
	enc_msg(&spec, 8, &lx);
	enc_uint(&spec, 12, 7);
	enc_bytes(&spec, 99, "spec-future", 11);

	enc_str(&st, 1, "image_guest_pull");
	enc_str(&st, 3, "nginx:latest");
	enc_bytes(&st, 7, "\x08\xe8\x07", 3);             /* Storage.fs_group: undeclared */

	enc_uint(&user, 1, 1000);
	enc_str(&dev1, 1, "/dev/vda");
	enc_str(&dev2, 1, "/dev/vdb");

	enc_str(out, 1, "ctr-1");
	enc_str(out, 2, "exec-1");
	enc_msg(out, 3, &user);                          /* string_user: undeclared */
	enc_msg(out, 4, &dev1);                          /* devices: undeclared, repeated */
	enc_msg(out, 4, &dev2);
	enc_msg(out, 5, &st);
	enc_msg(out, 6, &spec);
	enc_uint(out, 7, 1);
	enc_uint(out, 9, 3);                             /* stdin_port: undeclared */
	enc_uint(out, 12, 42);
	enc_bytes(out, 99, "top-future", 10);
}

/* What the proxy does: add an annotation, append a namespace. Memory comes from malloc so that
 * free_unpacked (default allocator) releases it with the rest. */
static void edit_create_container(Grpc__CreateContainerRequest *c)
{
	Grpc__Spec *s = c->oci;
	Grpc__Linux *lx = s->linux_spec;
	Grpc__Spec__AnnotationsEntry *a = malloc(sizeof(*a));
	Grpc__LinuxNamespace *ns = malloc(sizeof(*ns));
	void *p;

	assert_non_null(a);
	assert_non_null(ns);
	grpc__spec__annotations_entry__init(a);
	a->key = strdup("cdi.k8s.io/peer-pods");
	a->value = strdup("nvidia.com/gpu=all");
	p = realloc(s->annotations, (s->n_annotations + 1) * sizeof(*s->annotations));
	assert_non_null(p);
	s->annotations = p;
	s->annotations[s->n_annotations++] = a;

	grpc__linux_namespace__init(ns);
	ns->type = strdup("network");
	ns->path = strdup("/var/run/netns/pod");
	p = realloc(lx->namespaces, (lx->n_namespaces + 1) * sizeof(*lx->namespaces));
	assert_non_null(p);
	lx->namespaces = p;
	lx->namespaces[lx->n_namespaces++] = ns;
}

static void check_undeclared_on_wire(const uint8_t *b, size_t len)
{
	struct wire_field spec, lx, st, user, dev;

	/* top level */
	assert_wire_varint(b, len, 12, 42);
	assert_wire_varint(b, len, 9, 3);
	assert_wire_bytes(b, len, 99, 0, "top-future");
	user = wire_sub(b, len, 3, 0);
	assert_wire_varint(user.data, user.len, 1, 1000);
	dev = wire_sub(b, len, 4, 0);
	assert_wire_bytes(dev.data, dev.len, 1, 0, "/dev/vda");
	dev = wire_sub(b, len, 4, 1);                    /* order of a repeated field is kept */
	assert_wire_bytes(dev.data, dev.len, 1, 0, "/dev/vdb");
	st = wire_sub(b, len, 5, 0);
	assert_wire_bytes(st.data, st.len, 7, 0, "\x08\xe8\x07");
	/* Spec */
	spec = wire_sub(b, len, 6, 0);
	assert_wire_bytes(spec.data, spec.len, 2, 0, PROCESS_BYTES);
	assert_wire_varint(spec.data, spec.len, 12, 7);
	assert_wire_bytes(spec.data, spec.len, 99, 0, "spec-future");
	/* Linux */
	lx = wire_sub(spec.data, spec.len, 8, 0);
	assert_wire_bytes(lx.data, lx.len, 5, 0, "/kubepods/besteffort/pod-u");
	assert_wire_bytes(lx.data, lx.len, 99, 0, "linux-future");
	assert_wire_varint(lx.data, lx.len, 12, 5);
}

static void test_create_container_keeps_undeclared_fields(void **state)
{
	(void)state;
	struct enc in = { 0 };
	Grpc__CreateContainerRequest *c, *c2;
	uint8_t *out;
	size_t len;

	build_create_container(&in);
	check_undeclared_on_wire(in.b, in.n);   /* the scanner itself reads the input right */

	c = grpc__create_container_request__unpack(NULL, in.n, in.b);
	assert_non_null(c);
	assert_string_equal(c->container_id, "ctr-1");
	assert_non_null(c->oci);
	assert_non_null(c->oci->linux_spec);
	assert_int_equal(c->oci->n_annotations, 1);
	assert_int_equal(c->oci->linux_spec->n_namespaces, 1);
	edit_create_container(c);

	out = pack(&c->base, &len);
	grpc__create_container_request__free_unpacked(c, NULL);
	check_undeclared_on_wire(out, len);

	c2 = grpc__create_container_request__unpack(NULL, len, out);
	assert_non_null(c2);
	assert_string_equal(c2->container_id, "ctr-1");
	assert_string_equal(c2->exec_id, "exec-1");
	assert_true(c2->sandbox_pidns);
	assert_int_equal(c2->n_storages, 1);
	assert_string_equal(c2->storages[0]->driver, "image_guest_pull");
	assert_string_equal(c2->storages[0]->source, "nginx:latest");
	assert_string_equal(c2->oci->version, "1.1.0");
	assert_string_equal(c2->oci->hostname, "web-0");
	assert_int_equal(c2->oci->n_mounts, 1);
	assert_string_equal(c2->oci->mounts[0]->destination, "/etc/hosts");
	assert_string_equal(c2->oci->mounts[0]->options[0], "rbind");
	assert_int_equal(c2->oci->n_annotations, 2);
	assert_string_equal(c2->oci->annotations[0]->key, "io.kubernetes.cri.sandbox-uid");
	assert_string_equal(c2->oci->annotations[0]->value, "u-1");
	assert_string_equal(c2->oci->annotations[1]->key, "cdi.k8s.io/peer-pods");
	assert_string_equal(c2->oci->annotations[1]->value, "nvidia.com/gpu=all");
	assert_int_equal(c2->oci->linux_spec->n_namespaces, 2);
	assert_string_equal(c2->oci->linux_spec->namespaces[0]->type, "pid");
	assert_string_equal(c2->oci->linux_spec->namespaces[1]->type, "network");
	assert_string_equal(c2->oci->linux_spec->namespaces[1]->path, "/var/run/netns/pod");
	/* protobuf-c still sees them as unknown fields after a second trip */
	assert_int_equal(c2->base.n_unknown_fields, 6);   /* 3, 4, 4, 9, 12, 99 */
	assert_int_equal(c2->oci->base.n_unknown_fields, 3);
	assert_int_equal(c2->oci->linux_spec->base.n_unknown_fields, 3);
	grpc__create_container_request__free_unpacked(c2, NULL);
	free(out);
}

/* A message cut short is refused, not half-decoded. */
static void test_create_container_truncated_refused(void **state)
{
	(void)state;
	struct enc in = { 0 };

	build_create_container(&in);
	for (size_t cut = 1; cut < 12; cut++)
		assert_null(grpc__create_container_request__unpack(NULL, in.n - cut, in.b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hypervisor_round_trip),
		cmocka_unit_test(test_hypervisor_wire_numbers),
		cmocka_unit_test(test_podvminfo_round_trip),
		cmocka_unit_test(test_health_round_trip),
		cmocka_unit_test(test_agent_small_messages_round_trip),
		cmocka_unit_test(test_create_sandbox_round_trip),
		cmocka_unit_test(test_create_container_round_trip),
		cmocka_unit_test(test_create_container_keeps_undeclared_fields),
		cmocka_unit_test(test_create_container_truncated_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
