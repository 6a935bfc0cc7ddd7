/*
 * Options of the `gcp` provider: upstream's names (flags and environment, spec §3.1) plus the
 * endpoint overrides tests and sovereign clouds need, and the checks made once at start-up.
 *
 * The one idea: everything that can be known wrong before the first pod is refused here with a
 * message naming the option ("GCP_CONFIDENTIAL_TYPE is empty: set SEV, SEV_SNP or TDX, or
 * DISABLECVM=true"), where upstream would only fail at the first CreateInstance.
 */
#include "providers/gcp/gcp_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

const struct config_option gcp_options[] = {
	{ "GCP_CREDENTIALS", "gcp-credentials", "GCP_CREDENTIALS", CFG_STRING, NULL, CFG_SECRET,
	  "content of the service-account key JSON (else GOOGLE_APPLICATION_CREDENTIALS, else the "
	  "metadata server)" },
	{ "GOOGLE_APPLICATION_CREDENTIALS", "gcp-credentials-file", "GOOGLE_APPLICATION_CREDENTIALS",
	  CFG_STRING, NULL, 0, "path of a service-account key JSON file" },
	{ "GCP_PROJECT_ID", "gcp-project-id", "GCP_PROJECT_ID", CFG_STRING, NULL, 0,
	  "project id (required)" },
	{ "GCP_ZONE", "zone", "GCP_ZONE", CFG_STRING, NULL, 0, "zone, e.g. us-central1-a (required)" },
	{ "PODVM_IMAGE_NAME", "image-name", "PODVM_IMAGE_NAME", CFG_STRING, NULL, 0,
	  "pod VM image: name, projects/P/global/images/N, .../images/family/F or URL (required)" },
	{ "GCP_MACHINE_TYPE", "machine-type", "GCP_MACHINE_TYPE", CFG_STRING, "e2-medium", 0,
	  "default machine type" },
	{ "GCP_INSTANCE_TYPES", "machine-types", "GCP_INSTANCE_TYPES", CFG_LIST, NULL, 0,
	  "machine types pods may ask for (comma-separated)" },
	{ "GCP_NETWORK", "network", "GCP_NETWORK", CFG_STRING, NULL, 0,
	  "VPC network: name or path (required)" },
	{ "GCP_SUBNETWORK", "subnetwork", "GCP_SUBNETWORK", CFG_STRING, NULL, 0,
	  "subnetwork: name (in the zone's region) or path" },
	{ "GCP_DISK_TYPE", "disk-type", "GCP_DISK_TYPE", CFG_STRING, "pd-standard", 0,
	  "boot disk type" },
	{ "DISABLECVM", "disable-cvm", "DISABLECVM", CFG_BOOL, "false", 0,
	  "create plain VMs (no confidentialInstanceConfig)" },
	{ "GCP_CONFIDENTIAL_TYPE", "confidential-type", "GCP_CONFIDENTIAL_TYPE", CFG_STRING, NULL, 0,
	  "SEV, SEV_SNP or TDX (required unless DISABLECVM)" },
	{ "GCP_MIN_CPU_PLATFORM", "min-cpu-platform", "GCP_MIN_CPU_PLATFORM", CFG_STRING, NULL, 0,
	  "minCpuPlatform (default: \"AMD Milan\" for SEV_SNP on n2d machine types, else none)" },
	{ "ROOT_VOLUME_SIZE", "root-volume-size", "ROOT_VOLUME_SIZE", CFG_INT, "10", 0,
	  "boot disk GiB (the image's size if that is larger)" },
	{ "USE_PUBLIC_IP", "use-public-ip", "USE_PUBLIC_IP", CFG_BOOL, "false", 0,
	  "give the VM an ephemeral external IP and connect to it" },
	{ "TAGS", "tags", "TAGS", CFG_KEYVALUE, NULL, 0,
	  "Resource Manager tags k=v,... (short names of existing keys and values of the project, "
	  "or parent/k=v)" },
	{ "GCP_COMPUTE_ENDPOINT", "gcp-compute-endpoint", "GCP_COMPUTE_ENDPOINT", CFG_STRING,
	  GCP_DEFAULT_COMPUTE_ENDPOINT, 0, "Compute Engine API base URL" },
	{ "GCP_RESOURCE_MANAGER_ENDPOINT", "gcp-resource-manager-endpoint",
	  "GCP_RESOURCE_MANAGER_ENDPOINT", CFG_STRING, GCP_DEFAULT_RM_ENDPOINT, 0,
	  "Resource Manager v3 API base URL" },
	{ "GCP_METADATA_ENDPOINT", "gcp-metadata-endpoint", "GCP_METADATA_ENDPOINT", CFG_STRING,
	  GCP_DEFAULT_METADATA_ENDPOINT, 0, "metadata server (credentials when running on GCE)" },
	{ "GCP_TOKEN_ENDPOINT", "gcp-token-endpoint", "GCP_TOKEN_ENDPOINT", CFG_STRING, NULL, 0,
	  "where the signed JWT is exchanged (default: the key's token_uri)" },
	{ "GCP_OPERATION_TIMEOUT", "gcp-operation-timeout", "GCP_OPERATION_TIMEOUT", CFG_DURATION,
	  "10m", 0, "longest wait for a zone operation (insert, delete)" },
	{ "GCP_POLL_INTERVAL", "gcp-poll-interval", "GCP_POLL_INTERVAL", CFG_DURATION, "2s", 0,
	  "pause between operation polls when operations.wait answers early" },
	{ NULL, NULL, NULL, CFG_STRING, NULL, 0, NULL },
};

static const char *const gcp_cvm_names[] = {
	[GCP_CVM_NONE] = "", [GCP_CVM_SEV] = "SEV", [GCP_CVM_SEV_SNP] = "SEV_SNP", [GCP_CVM_TDX] = "TDX",
};

const char *gcp_confidential_name(enum gcp_confidential t)
{
	return (unsigned)t < PP_ARRAY_SIZE(gcp_cvm_names) ? gcp_cvm_names[t] : "";
}

int gcp_confidential_parse(const char *s, enum gcp_confidential *ret)
{
	for (size_t i = GCP_CVM_SEV; i < PP_ARRAY_SIZE(gcp_cvm_names); i++)
		if (strcmp(s, gcp_cvm_names[i]) == 0) {
			*ret = (enum gcp_confidential)i;
			return 0;
		}
	return -1;
}

static int conf_required(const struct config *cfg, const char *name, const char **ret,
			 struct pp_err *err)
{
	const char *v = config_str(cfg, name);

	if (!v[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "gcp provider: %s is required", name);
	*ret = v;
	return 0;
}

/* An endpoint: http(s) URL, kept without a trailing '/'. The string lives in the config; a
 * trailing slash is refused rather than edited, so what the user wrote is what we call. */
static int conf_endpoint(const struct config *cfg, const char *name, const char **ret,
			 struct pp_err *err)
{
	const char *v = config_str(cfg, name);

	*ret = v;
	if (!v[0] && strcmp(name, "GCP_TOKEN_ENDPOINT") == 0)
		return 0;
	if (!str_has_prefix(v, "https://") && !str_has_prefix(v, "http://"))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s \"%.200s\" is not an http:// or https:// URL", name, v);
	if (str_has_suffix(v, "/"))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s \"%.200s\" must not end with '/'",
				  name, v);
	return 0;
}

static int conf_cvm(struct gcp_conf *c, const struct config *cfg, struct pp_err *err)
{
	const char *t = config_str(cfg, "GCP_CONFIDENTIAL_TYPE");

	c->min_cpu_platform = config_str(cfg, "GCP_MIN_CPU_PLATFORM");
	if (config_bool(cfg, "DISABLECVM")) {
		c->cvm = GCP_CVM_NONE;
		return 0;
	}
	if (!t[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "gcp provider: GCP_CONFIDENTIAL_TYPE is empty: set SEV, SEV_SNP or TDX "
				  "(N2D machine types for SEV and SEV_SNP, C3 for TDX), or DISABLECVM=true "
				  "for plain VMs");
	if (gcp_confidential_parse(t, &c->cvm) < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "gcp provider: GCP_CONFIDENTIAL_TYPE \"%.40s\" is not one of SEV, SEV_SNP, TDX",
				  t);
	return 0;
}

static int conf_paths(struct gcp_conf *c, const struct config *cfg, struct pp_err *err)
{
	const char *image = NULL, *network = NULL, *subnet = config_str(cfg, "GCP_SUBNETWORK");

	if (conf_required(cfg, "PODVM_IMAGE_NAME", &image, err) < 0 ||
	    conf_required(cfg, "GCP_NETWORK", &network, err) < 0)
		return -1;
	if (gcp_image_path(c->project, image, &c->image, err) < 0)
		return pp_err_prefix(err, "PODVM_IMAGE_NAME");
	if (gcp_network_path(c->project, network, &c->network, err) < 0)
		return pp_err_prefix(err, "GCP_NETWORK");
	if (subnet[0] && gcp_subnetwork_path(c->project, c->region, subnet, &c->subnetwork, err) < 0)
		return pp_err_prefix(err, "GCP_SUBNETWORK");
	return 0;
}

static int conf_tags(struct gcp_conf *c, const struct config *cfg, struct pp_err *err)
{
	c->tags = config_list(cfg, "TAGS", &c->n_tags);
	if (c->n_tags > GCP_MAX_TAGS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS has %zu tags; GCP allows %d per VM",
				  c->n_tags, GCP_MAX_TAGS);
	return 0;
}

int gcp_conf_load(struct gcp_conf *c, const struct config *cfg, struct pp_err *err)
{
	memset(c, 0, sizeof(*c));
	if (conf_required(cfg, "GCP_PROJECT_ID", &c->project, err) < 0 ||
	    conf_required(cfg, "GCP_ZONE", &c->zone, err) < 0 ||
	    gcp_zone_region(c->zone, c->region, sizeof(c->region), err) < 0 ||
	    conf_required(cfg, "GCP_MACHINE_TYPE", &c->machine_type, err) < 0 ||
	    conf_required(cfg, "GCP_DISK_TYPE", &c->disk_type, err) < 0 ||
	    conf_cvm(c, cfg, err) < 0 || conf_paths(c, cfg, err) < 0 || conf_tags(c, cfg, err) < 0 ||
	    conf_endpoint(cfg, "GCP_COMPUTE_ENDPOINT", &c->compute_endpoint, err) < 0 ||
	    conf_endpoint(cfg, "GCP_RESOURCE_MANAGER_ENDPOINT", &c->rm_endpoint, err) < 0 ||
	    conf_endpoint(cfg, "GCP_METADATA_ENDPOINT", &c->metadata_endpoint, err) < 0 ||
	    conf_endpoint(cfg, "GCP_TOKEN_ENDPOINT", &c->token_endpoint, err) < 0)
		goto fail;
	c->machine_types = config_list(cfg, "GCP_INSTANCE_TYPES", &c->n_machine_types);
	if (c->n_machine_types > GCP_MAX_MACHINE_TYPES) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "GCP_INSTANCE_TYPES has %zu entries; at most %d",
			   c->n_machine_types, GCP_MAX_MACHINE_TYPES);
		goto fail;
	}
	c->root_volume_gb = config_int(cfg, "ROOT_VOLUME_SIZE");
	if (c->root_volume_gb < 0 || c->root_volume_gb > 65536) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "ROOT_VOLUME_SIZE %lld is not in 0..65536 GiB",
			   (long long)c->root_volume_gb);
		goto fail;
	}
	c->public_ip = config_bool(cfg, "USE_PUBLIC_IP");
	c->op_timeout_ms = config_duration_ms(cfg, "GCP_OPERATION_TIMEOUT");
	c->poll_interval_ms = config_duration_ms(cfg, "GCP_POLL_INTERVAL");
	if (c->op_timeout_ms == 0 || c->poll_interval_ms == 0) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "GCP_OPERATION_TIMEOUT and GCP_POLL_INTERVAL must be longer than 0");
		goto fail;
	}
	c->keep_failed = config_has(cfg, "KEEP_FAILED_VMS") && config_bool(cfg, "KEEP_FAILED_VMS");
	return 0;
fail:
	gcp_conf_free(c);
	return -1;
}

void gcp_conf_free(struct gcp_conf *c)
{
	if (!c)
		return;
	free(c->image);
	free(c->network);
	free(c->subnetwork);
	c->image = c->network = c->subnetwork = NULL;
}
