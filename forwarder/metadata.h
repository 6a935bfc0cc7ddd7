/*
 * Where the pod VM gets its user-data from (spec §5.3): the cidata volume that libvirt attaches,
 * or the cloud's instance metadata service (Azure IMDS, AWS IMDSv2 with IMDSv1 fallback, GCP,
 * Alibaba). The provider is detected as upstream does — cidata file, CPUID hypervisor vendor,
 * DMI system vendor, a GCP probe — or named explicitly. Every endpoint can be overridden so tests
 * point them at a loopback server. Requests are plain HTTP to a link-local address, never through
 * a proxy, never redirected, with timeouts and a cap on the body size.
 */
#ifndef PP_FORWARDER_METADATA_H
#define PP_FORWARDER_METADATA_H

#include <stddef.h>

#include "lib/err.h"

#define METADATA_MAX_BODY          (2 * 1024 * 1024)
#define METADATA_MAX_TOKEN         256
#define METADATA_DEFAULT_TIMEOUT_MS 10000
#define METADATA_AWS_TOKEN_TIMEOUT_MS 5000

#define METADATA_AZURE_URL \
	"http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text"
#define METADATA_AWS_TOKEN_URL     "http://169.254.169.254/latest/api/token"
#define METADATA_AWS_USERDATA_URL  "http://169.254.169.254/latest/user-data"
#define METADATA_GCP_PROBE_URL     "http://metadata.google.internal/computeMetadata/v1/instance"
#define METADATA_GCP_USERDATA_URL \
	"http://metadata.google.internal/computeMetadata/v1/instance/attributes/user-data"
#define METADATA_ALIBABA_URL       "http://100.100.100.200/latest/user-data"

enum metadata_provider {
	METADATA_NONE,
	METADATA_CIDATA,
	METADATA_AZURE,
	METADATA_AWS,
	METADATA_GCP,
	METADATA_ALIBABA,
};

struct metadata_opts {
	const char *root;              /* prefix for /sys and /media/cidata; NULL or "" = "/" */
	const char *cidata_dir;        /* directory holding user-data; NULL = <root>/media/cidata */
	const char *hypervisor_vendor; /* NULL = read CPUID; tests set e.g. "Microsoft Hv" */
	const char *azure_url;         /* each NULL = the default above */
	const char *aws_token_url;
	const char *aws_userdata_url;
	const char *gcp_probe_url;
	const char *gcp_userdata_url;
	const char *alibaba_url;
	long timeout_ms;               /* per request; 0 = METADATA_DEFAULT_TIMEOUT_MS */
};

/* Process-wide libcurl set-up; main calls init first and fini last. */
int metadata_init(struct pp_err *err);
void metadata_fini(void);

enum metadata_provider metadata_detect(const struct metadata_opts *o);
/* Fetches the user-data text (base64 bodies already decoded). *ret is malloc'd and
 * NUL-terminated. */
int metadata_fetch(const struct metadata_opts *o, enum metadata_provider p, char **ret,
		   size_t *ret_len, struct pp_err *err);

const char *metadata_provider_name(enum metadata_provider p);
/* "cidata" | "azure" | "aws" | "gcp" | "alibaba" | "none"; -1 on anything else. */
int metadata_provider_parse(const char *s, enum metadata_provider *ret);

#endif
