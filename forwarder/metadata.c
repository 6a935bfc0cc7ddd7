/*
 * User-data sources (see metadata.h). One small libcurl helper does every request: HTTP only,
 * no proxy, no redirects, bounded body, timeouts. The AWS session token is a credential: it is
 * held in a local buffer, sent as a header and never logged or put in an error message.
 */
#include "forwarder/metadata.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "forwarder/vm_files.h"
#include "lib/buf.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define MD_VENDOR_MAX 128
#define MD_HEADER_MAX (METADATA_MAX_TOKEN + 64)
#define MD_MAX_HEADERS 2

static const char *const md_names[] = {
	[METADATA_NONE] = "none",   [METADATA_CIDATA] = "cidata", [METADATA_AZURE] = "azure",
	[METADATA_AWS] = "aws",     [METADATA_GCP] = "gcp",       [METADATA_ALIBABA] = "alibaba",
};

const char *metadata_provider_name(enum metadata_provider p)
{
	if ((size_t)p >= PP_ARRAY_SIZE(md_names))
		return "unknown";
	return md_names[p];
}

int metadata_provider_parse(const char *s, enum metadata_provider *ret)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(md_names); i++) {
		if (strcmp(s, md_names[i]) == 0) {
			*ret = (enum metadata_provider)i;
			return 0;
		}
	}
	return -1;
}

int metadata_init(struct pp_err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return pp_err_set(err, PP_INTERNAL, "libcurl initialisation failed");
	return 0;
}

void metadata_fini(void)
{
	curl_global_cleanup();
}

/* ---- HTTP ---- */

struct md_request {
	const char *method;                 /* "GET" or "PUT" */
	const char *url;
	const char *headers[MD_MAX_HEADERS]; /* NULL-padded */
	long timeout_ms;
};

static size_t md_write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct buf *b = ctx;

	if (buf_append(b, data, size * nmemb) < 0)
		return 0;  /* past the maximum: libcurl aborts the transfer */
	return size * nmemb;
}

static int md_setup(CURL *c, const struct md_request *r, struct curl_slist *hdrs, struct buf *body)
{
	int bad = 0;

	bad |= curl_easy_setopt(c, CURLOPT_URL, r->url) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body->max) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, md_write_cb) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, body) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
	if (strcmp(r->method, "GET") != 0)
		bad |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method) != CURLE_OK;
	return bad ? -1 : 0;
}

/* One request; anything but HTTP 200 is an error naming the URL (never a header value). */
static int md_http(const struct md_request *r, struct buf *body, struct pp_err *err)
{
	struct curl_slist *hdrs = NULL, *n;
	CURLcode cc = CURLE_OUT_OF_MEMORY;
	long status = 0;
	size_t i;
	CURL *c;
	int ret = -1;

	if (!(c = curl_easy_init()))
		return pp_err_set(err, PP_INTERNAL, "libcurl: cannot create a handle");
	for (i = 0; i < MD_MAX_HEADERS && r->headers[i]; i++) {
		if (!(n = curl_slist_append(hdrs, r->headers[i])))
			goto out;
		hdrs = n;
	}
	if (md_setup(c, r, hdrs, body) < 0) {
		pp_err_set(err, PP_INTERNAL, "%s %s: libcurl rejected an option", r->method, r->url);
		goto out;
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		pp_err_set(err, PP_UNAVAILABLE, "%s %s: %s", r->method, r->url, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		pp_err_set(err, PP_UNAVAILABLE, "%s %s: HTTP status %ld", r->method, r->url, status);
		goto out;
	}
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return ret;
}

static long md_timeout(const struct metadata_opts *o)
{
	return o->timeout_ms > 0 ? o->timeout_ms : METADATA_DEFAULT_TIMEOUT_MS;
}

static const char *md_url(const char *override, const char *def)
{
	return override && override[0] ? override : def;
}

/* GET url with one optional header; the body, optionally base64-decoded, into *ret. */
static int md_get(const struct metadata_opts *o, const char *url, const char *header, bool b64,
		  char **ret, size_t *ret_len, struct pp_err *err)
{
	struct md_request r = { .method = "GET", .url = url, .headers = { header },
				.timeout_ms = md_timeout(o) };
	struct buf body = BUF_INIT(METADATA_MAX_BODY);
	uint8_t *dec;
	size_t len;

	if (md_http(&r, &body, err) < 0) {
		buf_free(&body);
		return -1;
	}
	if (!b64) {
		*ret = (char *)buf_steal(&body, ret_len);
		return 0;
	}
	if (base64_decode((const char *)body.data, body.len, &dec, &len, err) < 0) {
		buf_free(&body);
		return pp_err_prefix(err, "user-data from %s is not valid base64", url);
	}
	buf_free(&body);
	*ret = (char *)dec;
	*ret_len = len;
	return 0;
}

/* ---- providers ---- */

/* <cidata dir>/user-data: --cidata when given, else <root>/media/cidata. */
static int md_cidata_path(const struct metadata_opts *o, char *out, size_t size,
			  struct pp_err *err)
{
	char dir[VM_PATH_MAX];

	if (o->cidata_dir && o->cidata_dir[0]) {
		if (!pp_strlcpy(dir, o->cidata_dir, sizeof(dir)))
			return pp_err_set(err, PP_INVALID_ARGUMENT, "cidata directory path too long");
	} else if (vm_path_join(dir, sizeof(dir), o->root, VM_CIDATA_DIR, err) < 0) {
		return -1;
	}
	if (snprintf(out, size, "%s/user-data", dir) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "cidata path too long");
	return 0;
}

static int md_fetch_cidata(const struct metadata_opts *o, char **ret, size_t *ret_len,
			   struct pp_err *err)
{
	char path[VM_PATH_MAX];
	uint8_t *data;

	if (md_cidata_path(o, path, sizeof(path), err) < 0 ||
	    file_read_all(path, METADATA_MAX_BODY, &data, ret_len, err) < 0)
		return -1;
	*ret = (char *)data;
	return 0;
}

/* IMDSv2 session token; false when the service does not give one (then IMDSv1 is used). */
static bool md_aws_token(const struct metadata_opts *o, char *token, size_t size)
{
	struct md_request r = {
		.method = "PUT",
		.url = md_url(o->aws_token_url, METADATA_AWS_TOKEN_URL),
		.headers = { "X-aws-ec2-metadata-token-ttl-seconds: 60" },
		.timeout_ms = md_timeout(o) < METADATA_AWS_TOKEN_TIMEOUT_MS ? md_timeout(o)
								   : METADATA_AWS_TOKEN_TIMEOUT_MS,
	};
	struct buf body = BUF_INIT(METADATA_MAX_TOKEN);
	struct pp_err err = { 0 };
	bool ok = false;
	size_t i;

	if (md_http(&r, &body, &err) < 0) {
		log_warn("IMDSv2 token request failed, falling back to IMDSv1", "error=\"%s\"", err.msg);
		goto out;
	}
	for (i = 0; i < body.len; i++)
		if (body.data[i] <= 0x20 || body.data[i] >= 0x7f)
			goto out;  /* a header value must be one printable token */
	if (body.len == 0 || body.len >= size)
		goto out;
	memcpy(token, body.data, body.len);
	token[body.len] = '\0';
	ok = true;
out:
	if (body.data)
		explicit_bzero(body.data, body.len);
	buf_free(&body);
	return ok;
}

static int md_fetch_aws(const struct metadata_opts *o, char **ret, size_t *ret_len,
			struct pp_err *err)
{
	char token[METADATA_MAX_TOKEN + 1], header[MD_HEADER_MAX];
	bool have = md_aws_token(o, token, sizeof(token));
	int r;

	if (have)
		snprintf(header, sizeof(header), "X-aws-ec2-metadata-token: %s", token);
	r = md_get(o, md_url(o->aws_userdata_url, METADATA_AWS_USERDATA_URL), have ? header : NULL,
		   false, ret, ret_len, err);
	explicit_bzero(token, sizeof(token));
	explicit_bzero(header, sizeof(header));
	return r;
}

int metadata_fetch(const struct metadata_opts *o, enum metadata_provider p, char **ret,
		   size_t *ret_len, struct pp_err *err)
{
	switch (p) {
	case METADATA_CIDATA:
		return md_fetch_cidata(o, ret, ret_len, err);
	case METADATA_AZURE:
		return md_get(o, md_url(o->azure_url, METADATA_AZURE_URL), "Metadata: true", true, ret,
			      ret_len, err);
	case METADATA_AWS:
		return md_fetch_aws(o, ret, ret_len, err);
	case METADATA_GCP:
		return md_get(o, md_url(o->gcp_userdata_url, METADATA_GCP_USERDATA_URL),
			      "Metadata-Flavor: Google", true, ret, ret_len, err);
	case METADATA_ALIBABA:
		return md_get(o, md_url(o->alibaba_url, METADATA_ALIBABA_URL), NULL, false, ret,
			      ret_len, err);
	case METADATA_NONE:
		break;
	}
	return pp_err_set(err, PP_FAILED_PRECONDITION, "no user-data provider");
}

/* ---- detection ---- */

/* The CPUID hypervisor vendor ("Microsoft Hv", "KVMKVMKVM"), "" when not in a VM. */
static void md_cpuid_vendor(char out[13])
{
	out[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 31)))
		return;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(out, &b, 4);
	memcpy(out + 4, &c, 4);
	memcpy(out + 8, &d, 4);
	out[12] = '\0';
#endif
}

static void md_dmi_vendor(const struct metadata_opts *o, char *out, size_t size)
{
	char path[VM_PATH_MAX];
	uint8_t *data;
	size_t len;

	out[0] = '\0';
	if (vm_path_join(path, sizeof(path), o->root, VM_DMI_SYS_VENDOR, NULL) < 0 ||
	    file_read_all(path, MD_VENDOR_MAX, &data, &len, NULL) < 0)
		return;
	pp_strlcpy(out, str_trim((char *)data), size);
	free(data);
}

static bool md_cidata_present(const struct metadata_opts *o)
{
	char path[VM_PATH_MAX];
	struct stat st;

	return md_cidata_path(o, path, sizeof(path), NULL) == 0 && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

static bool md_gcp_probe(const struct metadata_opts *o)
{
	struct md_request r = { .method = "GET", .url = md_url(o->gcp_probe_url, METADATA_GCP_PROBE_URL),
				.headers = { "Metadata-Flavor: Google" }, .timeout_ms = md_timeout(o) };
	struct buf body = BUF_INIT(METADATA_MAX_BODY);
	int r2 = md_http(&r, &body, NULL);

	buf_free(&body);
	return r2 == 0;
}

enum metadata_provider metadata_detect(const struct metadata_opts *o)
{
	char hv[13], dmi[MD_VENDOR_MAX];

	if (md_cidata_present(o))
		return METADATA_CIDATA;
	if (o->hypervisor_vendor)
		pp_strlcpy(hv, o->hypervisor_vendor, sizeof(hv));
	else
		md_cpuid_vendor(hv);
	md_dmi_vendor(o, dmi, sizeof(dmi));
	if (strcmp(hv, "Microsoft Hv") == 0)
		return METADATA_AZURE;
	if (strcmp(dmi, "Amazon EC2") == 0)
		return METADATA_AWS;
	if (strcmp(hv, "KVMKVMKVM") == 0 && md_gcp_probe(o))
		return METADATA_GCP;
	if (strcmp(dmi, "Alibaba Cloud") == 0)
		return METADATA_ALIBABA;
	return METADATA_NONE;
}
