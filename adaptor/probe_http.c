/* The probe and metrics endpoint on libmicrohttpd: see probe_http.h. */
#include "adaptor/probe_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "lib/util.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct probe_http {
	struct MHD_Daemon *mhd;
	struct probe_http_config cfg;   /* [const] */
	uint16_t port;                  /* [const] */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			     const char *content_type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
								 body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result serve_metrics(struct probe_http *p, struct MHD_Connection *conn)
{
	struct buf out;
	size_t len;
	uint8_t *text;

	buf_init(&out, PROBE_HTTP_METRICS_MAX);
	if (p->cfg.metrics(p->cfg.arg, &out) < 0) {
		buf_free(&out);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0, NULL);
	}
	text = buf_steal(&out, &len);
	return reply(conn, MHD_HTTP_OK, text, len, METRICS_CONTENT_TYPE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct probe_http *p = cls;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size)
		return MHD_NO;   /* GET only: a body is not expected */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0, NULL);
	if (strcmp(url, "/startup") == 0)
		return reply(conn, p->cfg.startup(p->cfg.arg) == 200 ? MHD_HTTP_OK :
				   MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0, NULL);
	if (strcmp(url, "/metrics") == 0 && p->cfg.metrics)
		return serve_metrics(p, conn);
	return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0, NULL);
}

struct probe_http *probe_http_start(const struct probe_http_config *cfg, struct pp_err *err)
{
	struct probe_http *p = pp_xcalloc(1, sizeof(*p));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(cfg->port) };
	const union MHD_DaemonInfo *info;

	p->cfg = *cfg;
	if (inet_pton(AF_INET, cfg->address, &sin.sin_addr) != 1) {
		free(p);
		pp_err_set(err, PP_INVALID_ARGUMENT, "probe address %s is not an IPv4 address", cfg->address);
		return NULL;
	}
	p->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, cfg->port, NULL, NULL,
				  on_request, p,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				  MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)PROBE_HTTP_MAX_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)PROBE_HTTP_TIMEOUT_S,
				  MHD_OPTION_END);
	if (!p->mhd) {
		free(p);
		pp_err_set(err, PP_UNAVAILABLE, "cannot listen on %s:%u for the probe (port in use?)",
			   cfg->address, (unsigned)cfg->port);
		return NULL;
	}
	info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_BIND_PORT);
	p->port = info ? info->port : cfg->port;
	return p;
}

uint16_t probe_http_port(const struct probe_http *p)
{
	return p->port;
}

void probe_http_stop(struct probe_http *p)
{
	if (!p)
		return;
	MHD_stop_daemon(p->mhd);
	free(p);
}
