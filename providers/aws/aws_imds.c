/*
 * The EC2 instance metadata service, IMDSv2 only: PUT /latest/api/token with a TTL header gives
 * a session token, which every GET /latest/meta-data/<path> then carries. IMDSv1 (GET without a
 * token) is never used: instances that require tokens refuse it, and it is the form SSRF abuses.
 *
 * The one idea: IMDS is local and either answers at once or is not there (off EC2, or the hop
 * limit is 1 and we run in a pod), so its client has short timeouts and few attempts; a missing
 * IMDS costs start-up seconds, not minutes.
 */
#include "providers/aws/aws_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define IMDS_MAX_RESPONSE (64u * 1024)
#define IMDS_TOKEN_MAX 256
#define IMDS_ATTEMPTS 2

struct aws_imds {
	char endpoint[AWS_URL_MAX];     /* without a trailing '/' */
	struct http_client *http;
};

struct aws_imds *aws_imds_new(const char *endpoint, struct pp_err *err)
{
	struct http_client_config hc = {
		.name = "aws-imds",
		.max_in_flight = 2,
		.connect_timeout_ms = AWS_IMDS_TIMEOUT_MS,
		.timeout_ms = AWS_IMDS_TIMEOUT_MS,
		.max_attempts = IMDS_ATTEMPTS,
		.backoff_base_ms = 100,
		.backoff_max_ms = 500,
		.max_response = IMDS_MAX_RESPONSE,
	};
	struct aws_imds *m = pp_xcalloc(1, sizeof(*m));
	size_t n;

	if (!pp_strlcpy(m->endpoint, endpoint, sizeof(m->endpoint))) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "AWS_EC2_METADATA_SERVICE_ENDPOINT is too long");
		goto fail;
	}
	n = strlen(m->endpoint);
	while (n > 0 && m->endpoint[n - 1] == '/')
		m->endpoint[--n] = '\0';
	if (!str_has_prefix(m->endpoint, "http://") && !str_has_prefix(m->endpoint, "https://")) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "AWS_EC2_METADATA_SERVICE_ENDPOINT \"%.80s\" is not an http(s) URL", endpoint);
		goto fail;
	}
	m->http = http_client_new(&hc, err);
	if (!m->http)
		goto fail;
	return m;
fail:
	free(m);
	return NULL;
}

void aws_imds_free(struct aws_imds *m)
{
	if (!m)
		return;
	http_client_free(m->http);
	free(m);
}

static int imds_token(struct aws_imds *m, char *out, size_t size, struct cancel *cancel,
		      struct pp_err *err)
{
	char url[AWS_URL_MAX + 32];
	const struct http_header h[] = { { "X-aws-ec2-metadata-token-ttl-seconds", AWS_IMDS_TOKEN_TTL } };
	struct http_request req = {
		.op = "IMDSToken", .method = HTTP_PUT, .url = url, .headers = h, .n_headers = 1,
		.cancel = cancel, .max_response = IMDS_TOKEN_MAX,
	};
	struct http_response resp = HTTP_RESPONSE_INIT;
	int rc;

	snprintf(url, sizeof(url), "%s/latest/api/token", m->endpoint);
	if (http_do(m->http, &req, &resp, err) < 0)
		return pp_err_prefix(err, "IMDSv2 token");
	rc = pp_strlcpy(out, http_response_text(&resp), size) && out[0] ? 0 :
	     pp_err_set(err, PP_INTERNAL, "IMDSv2 token: empty or too long answer");
	http_response_free(&resp);
	return rc;
}

int aws_imds_get(struct aws_imds *m, const char *path, char *out, size_t size,
		 struct cancel *cancel, struct pp_err *err)
{
	char token[IMDS_TOKEN_MAX], url[AWS_URL_MAX + 512];
	struct http_header h[] = { { "X-aws-ec2-metadata-token", token } };
	struct http_request req = {
		.op = "IMDSGet", .method = HTTP_GET, .url = url, .headers = h, .n_headers = 1,
		.cancel = cancel, .max_response = IMDS_MAX_RESPONSE,
	};
	struct http_response resp = HTTP_RESPONSE_INIT;
	const char *text;
	int rc;

	if (!m)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "IMDS is disabled (AWS_EC2_METADATA_DISABLED)");
	if (snprintf(url, sizeof(url), "%s/latest/meta-data/%s", m->endpoint, path) >= (int)sizeof(url))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "IMDS path %.80s is too long", path);
	if (imds_token(m, token, sizeof(token), cancel, err) < 0)
		return -1;
	rc = http_do(m->http, &req, &resp, err);
	explicit_bzero(token, sizeof(token));
	if (rc < 0)
		return pp_err_prefix(err, "IMDS %s", path);
	text = resp.body.data ? str_trim((char *)resp.body.data) : "";
	rc = pp_strlcpy(out, text, size) ? 0 :
	     pp_err_set(err, PP_OUT_OF_RANGE, "IMDS %s: answer longer than %zu bytes", path, size - 1);
	http_response_free(&resp);
	return rc;
}
