/*
 * ttRPC codec: the 10-byte frame header and the Request/Response envelopes (proto/ttrpc.proto).
 * Pure functions over buffers, shared by the server, the loop client and the blocking helper.
 * The one idea: a successful Response has no status at all (so an empty one is 0 bytes), and a
 * decoder treats "status absent" and "status.code == 0" alike.
 */
#include "lib/ttrpc.h"

#include <stdlib.h>
#include <string.h>

#include "proto/ttrpc.pb-c.h"

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE])
{
	out[0] = (uint8_t)(h->length >> 24);
	out[1] = (uint8_t)(h->length >> 16);
	out[2] = (uint8_t)(h->length >> 8);
	out[3] = (uint8_t)h->length;
	out[4] = (uint8_t)(h->stream_id >> 24);
	out[5] = (uint8_t)(h->stream_id >> 16);
	out[6] = (uint8_t)(h->stream_id >> 8);
	out[7] = (uint8_t)h->stream_id;
	out[8] = h->type;
	out[9] = h->flags;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *h)
{
	h->length = be32(in);
	h->stream_id = be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

/* Packs any protobuf-c message into a fresh heap buffer (malloc(0) avoided for empty ones). */
static int pack_message(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len,
			struct pp_err *err)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;

	if (n > TTRPC_MAX_DATA)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "message length %zu exceed maximum message size of %u", n,
				  TTRPC_MAX_DATA);
	buf = malloc(n ? n : 1);
	if (!buf)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory encoding a ttRPC message");
	protobuf_c_message_pack(m, buf);
	*ret = buf;
	*ret_len = n;
	return 0;
}

int ttrpc_request_encode(const char *service, const char *method, const uint8_t *payload,
			 size_t len, int64_t timeout_ns, uint8_t **ret, size_t *ret_len,
			 struct pp_err *err)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;

	if (!service || !method || !*service || !*method)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "ttRPC request needs a service and a method");
	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = payload ? len : 0;
	req.timeout_nano = timeout_ns > 0 ? timeout_ns : 0;
	return pack_message(&req.base, ret, ret_len, err);
}

int ttrpc_response_encode(int code, const char *message, const uint8_t *payload, size_t len,
			  uint8_t **ret, size_t *ret_len, struct pp_err *err)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;

	if (code != PP_OK) {
		status.code = code;
		status.message = (char *)(message ? message : "");
		resp.status = &status;
	} else {
		resp.payload.data = (uint8_t *)payload;
		resp.payload.len = payload ? len : 0;
	}
	return pack_message(&resp.base, ret, ret_len, err);
}

int ttrpc_response_decode(const uint8_t *buf, size_t len, struct ttrpc_result *res, void **storage,
			  struct pp_err *err)
{
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, len, buf);

	if (!resp)
		return pp_err_set(err, PP_INTERNAL,
				  "unmarshal response error: %zu bytes are not a ttrpc.Response", len);
	memset(res, 0, sizeof(*res));
	res->code = PP_OK;
	res->message = "";
	if (resp->status && resp->status->code != 0) {
		res->code = resp->status->code;
		res->message = resp->status->message ? resp->status->message : "";
	}
	res->payload = resp->payload.data;
	res->payload_len = resp->payload.len;
	res->raw = buf;
	res->raw_len = len;
	*storage = resp;
	return 0;
}

void ttrpc_result_free_storage(void *storage)
{
	if (storage)
		ttrpc__response__free_unpacked(storage, NULL);
}
