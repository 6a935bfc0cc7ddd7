/*
 * ttRPC codec tests: the worked byte examples of spec/upstream-protocols.md §2.7 encode and
 * decode to exactly those bytes; header round trip; status absent / code 0 both mean OK.
 * The hypervisor payloads are hand-encoded here on purpose (no dependency on that .proto).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/ttrpc.h"
#include "proto/ttrpc.pb-c.h"

/* CreateVMRequest{id="abc", annotations{k:v}, networkNamespacePath="/var/run/netns/x"} */
static const uint8_t createvm_payload[] = {
	0x0a, 0x03, 'a', 'b', 'c',
	0x12, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',
	0x1a, 0x10, '/', 'v', 'a', 'r', '/', 'r', 'u', 'n', '/', 'n', 'e', 't', 'n', 's', '/', 'x',
};

static const uint8_t createvm_frame[] = {
	0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00,
	0x0a, 0x15, 'h', 'y', 'p', 'e', 'r', 'v', 'i', 's', 'o', 'r', '.',
	'H', 'y', 'p', 'e', 'r', 'v', 'i', 's', 'o', 'r',
	0x12, 0x08, 'C', 'r', 'e', 'a', 't', 'e', 'V', 'M',
	0x1a, 0x1f,
	0x0a, 0x03, 'a', 'b', 'c',
	0x12, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',
	0x1a, 0x10, '/', 'v', 'a', 'r', '/', 'r', 'u', 'n', '/', 'n', 'e', 't', 'n', 's', '/', 'x',
};

#define SOCK_PATH "/run/peerpod/pods/abc/agent.ttrpc"

static void build_frame(uint32_t sid, uint8_t type, const uint8_t *data, size_t len,
			uint8_t *out)
{
	struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = sid, .type = type };

	ttrpc_header_encode(&h, out);
	memcpy(out + TTRPC_HEADER_SIZE, data, len);
}

static void test_createvm_request_bytes(void **state)
{
	uint8_t *req = NULL;
	size_t len = 0;
	uint8_t frame[sizeof(createvm_frame)];
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(sizeof(createvm_payload), 31);
	assert_int_equal(ttrpc_request_encode("hypervisor.Hypervisor", "CreateVM", createvm_payload,
					      sizeof(createvm_payload), 0, &req, &len, &err), 0);
	assert_int_equal(len, 0x42);
	build_frame(1, TTRPC_TYPE_REQUEST, req, len, frame);
	assert_memory_equal(frame, createvm_frame, sizeof(createvm_frame));
	free(req);
}

static void test_createvm_request_decodes(void **state)
{
	struct ttrpc_header h;
	Ttrpc__Request *r;

	(void)state;
	ttrpc_header_decode(createvm_frame, &h);
	assert_int_equal(h.length, 66);
	assert_int_equal(h.stream_id, 1);
	assert_int_equal(h.type, TTRPC_TYPE_REQUEST);
	assert_int_equal(h.flags, 0);
	r = ttrpc__request__unpack(NULL, h.length, createvm_frame + TTRPC_HEADER_SIZE);
	assert_non_null(r);
	assert_string_equal(r->service, "hypervisor.Hypervisor");
	assert_string_equal(r->method, "CreateVM");
	assert_int_equal(r->payload.len, sizeof(createvm_payload));
	assert_memory_equal(r->payload.data, createvm_payload, sizeof(createvm_payload));
	assert_int_equal(r->timeout_nano, 0);
	ttrpc__request__free_unpacked(r, NULL);
}

static void test_success_response_bytes(void **state)
{
	static const uint8_t want_hdr[] = { 0x00, 0x00, 0x00, 0x25, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00 };
	uint8_t payload[2 + sizeof(SOCK_PATH) - 1];
	uint8_t *resp = NULL, frame[64];
	size_t len = 0;
	struct ttrpc_result res;
	void *storage = NULL;
	struct pp_err err = { 0 };

	(void)state;
	payload[0] = 0x0a;   /* CreateVMResponse.agentSocketPath */
	payload[1] = 0x21;
	memcpy(payload + 2, SOCK_PATH, sizeof(SOCK_PATH) - 1);
	assert_int_equal(ttrpc_response_encode(PP_OK, NULL, payload, sizeof(payload), &resp, &len,
					       &err), 0);
	assert_int_equal(len, 0x25);
	build_frame(1, TTRPC_TYPE_RESPONSE, resp, len, frame);
	assert_memory_equal(frame, want_hdr, sizeof(want_hdr));
	assert_int_equal(frame[10], 0x12);
	assert_int_equal(frame[11], 0x23);
	assert_memory_equal(frame + 12, payload, sizeof(payload));

	assert_int_equal(ttrpc_response_decode(resp, len, &res, &storage, &err), 0);
	assert_int_equal(res.code, PP_OK);
	assert_string_equal(res.message, "");
	assert_int_equal(res.payload_len, sizeof(payload));
	assert_memory_equal(res.payload, payload, sizeof(payload));
	assert_ptr_equal(res.raw, resp);
	assert_int_equal(res.raw_len, len);
	ttrpc_result_free_storage(storage);
	free(resp);
}

static void test_error_response_bytes(void **state)
{
	static const uint8_t want[] = { 0x0a, 0x08, 0x08, 0x02, 0x12, 0x04, 'b', 'o', 'o', 'm' };
	uint8_t *resp = NULL;
	size_t len = 0;
	struct ttrpc_result res;
	void *storage = NULL;
	struct pp_err err = { 0 };

	(void)state;
	/* a payload given with an error is not sent: an error response carries the status only */
	assert_int_equal(ttrpc_response_encode(PP_UNKNOWN, "boom", (const uint8_t *)"x", 1, &resp,
					       &len, &err), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(resp, want, sizeof(want));
	free(resp);

	assert_int_equal(ttrpc_response_decode(want, sizeof(want), &res, &storage, &err), 0);
	assert_int_equal(res.code, PP_UNKNOWN);
	assert_string_equal(res.message, "boom");
	assert_int_equal(res.payload_len, 0);
	ttrpc_result_free_storage(storage);
}

static void test_startvm_timeout_bytes(void **state)
{
	static const uint8_t tail[] = { 0x20, 0x80, 0xe0, 0xa5, 0x96, 0xbb, 0x11 };
	static const uint8_t startvm_payload[] = { 0x0a, 0x03, 'a', 'b', 'c' };
	uint8_t *req = NULL;
	size_t len = 0;
	struct pp_err err = { 0 };
	Ttrpc__Request *r;

	(void)state;
	assert_int_equal(ttrpc_request_encode("hypervisor.Hypervisor", "StartVM", startvm_payload,
					      sizeof(startvm_payload), 600000000000LL, &req, &len,
					      &err), 0);
	/* service(23) + method(9) + payload(7) + timeout(7) */
	assert_int_equal(len, 23 + 9 + 7 + sizeof(tail));
	assert_memory_equal(req + len - sizeof(tail), tail, sizeof(tail));
	r = ttrpc__request__unpack(NULL, len, req);
	assert_non_null(r);
	assert_int_equal(r->timeout_nano, 600000000000LL);
	ttrpc__request__free_unpacked(r, NULL);
	free(req);
}

static void test_empty_success_is_zero_bytes(void **state)
{
	uint8_t *resp = NULL;
	size_t len = 99;
	struct ttrpc_result res;
	void *storage = NULL;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(ttrpc_response_encode(PP_OK, NULL, NULL, 0, &resp, &len, &err), 0);
	assert_int_equal(len, 0);
	free(resp);
	/* status absent */
	assert_int_equal(ttrpc_response_decode((const uint8_t *)"", 0, &res, &storage, &err), 0);
	assert_int_equal(res.code, PP_OK);
	assert_string_equal(res.message, "");
	ttrpc_result_free_storage(storage);
}

static void test_status_code_zero_is_ok(void **state)
{
	/* Response{status{code=0, message="fine"}, payload="xy"} as a Rust server might send */
	static const uint8_t buf[] = { 0x0a, 0x08, 0x08, 0x00, 0x12, 0x04, 'f', 'i', 'n', 'e',
				       0x12, 0x02, 'x', 'y' };
	static const uint8_t empty_status[] = { 0x0a, 0x00 };
	struct ttrpc_result res;
	void *storage = NULL;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(ttrpc_response_decode(buf, sizeof(buf), &res, &storage, &err), 0);
	assert_int_equal(res.code, PP_OK);
	assert_string_equal(res.message, "");
	assert_int_equal(res.payload_len, 2);
	assert_memory_equal(res.payload, "xy", 2);
	ttrpc_result_free_storage(storage);

	assert_int_equal(ttrpc_response_decode(empty_status, sizeof(empty_status), &res, &storage,
					       &err), 0);
	assert_int_equal(res.code, PP_OK);
	ttrpc_result_free_storage(storage);
}

static void test_garbage_response_is_error(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0x7f, 0x01 };   /* length runs past the end */
	struct ttrpc_result res;
	void *storage = NULL;
	struct pp_err err = { 0 };

	(void)state;
	assert_int_equal(ttrpc_response_decode(junk, sizeof(junk), &res, &storage, &err), -1);
	assert_int_equal(err.code, PP_INTERNAL);
	assert_non_null(strstr(err.msg, "unmarshal response error"));
	assert_null(storage);
}

static void test_header_round_trip(void **state)
{
	static const struct ttrpc_header cases[] = {
		{ 0, 1, TTRPC_TYPE_REQUEST, 0 },
		{ TTRPC_MAX_DATA, 0xfffffffdu, TTRPC_TYPE_RESPONSE, 0 },
		{ 0x00123456, 0x80000001u, TTRPC_TYPE_DATA, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA },
		{ 0xffffffffu, 7, 0xff, 0xff },
	};
	uint8_t buf[TTRPC_HEADER_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ttrpc_header back;

		ttrpc_header_encode(&cases[i], buf);
		ttrpc_header_decode(buf, &back);
		assert_int_equal(back.length, cases[i].length);
		assert_int_equal(back.stream_id, cases[i].stream_id);
		assert_int_equal(back.type, cases[i].type);
		assert_int_equal(back.flags, cases[i].flags);
	}
	ttrpc_header_encode(&cases[2], buf);
	assert_int_equal(buf[0], 0x00);
	assert_int_equal(buf[1], 0x12);
	assert_int_equal(buf[3], 0x56);
	assert_int_equal(buf[4], 0x80);
	assert_int_equal(buf[7], 0x01);
	assert_int_equal(buf[9], 0x05);
}

static void test_encode_refuses_oversize(void **state)
{
	size_t n = TTRPC_MAX_DATA;
	uint8_t *big = calloc(1, n);
	uint8_t *out = NULL;
	size_t len = 0;
	struct pp_err err = { 0 };

	(void)state;
	assert_non_null(big);
	assert_int_equal(ttrpc_request_encode("s.S", "M", big, n, 0, &out, &len, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "exceed maximum message size of 4194304"));
	assert_null(out);
	assert_int_equal(ttrpc_request_encode("", "M", NULL, 0, 0, &out, &len, &err), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_createvm_request_bytes),
		cmocka_unit_test(test_createvm_request_decodes),
		cmocka_unit_test(test_success_response_bytes),
		cmocka_unit_test(test_error_response_bytes),
		cmocka_unit_test(test_startvm_timeout_bytes),
		cmocka_unit_test(test_empty_success_is_zero_bytes),
		cmocka_unit_test(test_status_code_zero_is_ok),
		cmocka_unit_test(test_garbage_response_is_error),
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_encode_refuses_oversize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
