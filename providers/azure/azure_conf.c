/*
 * Options of the `azure` provider. Names, flags and environment variables are upstream's
 * (spec §2.1) so that existing peer-pods-cm ConfigMaps and peer-pods-secret Secrets keep
 * working; the options after the "ours" marker are this implementation's (endpoint overrides for
 * sovereign clouds and tests, workload identity's file, operation polling).
 *
 * The one idea: everything is checked once at start-up, with a message naming the option, so
 * that a bad setting never surfaces as a cryptic ARM error when the first pod starts.
 */
#include "providers/azure/azure_priv.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define AZURE_DEFAULT_SIZE "Standard_DC2as_v5"
#define AZURE_DEFAULT_ARM "https://management.azure.com"
#define AZURE_DEFAULT_AUTHORITY "https://login.microsoftonline.com/"
#define AZURE_DEFAULT_IMDS "http://169.254.169.254"

const struct config_option azure_options[] = {
	{ "AZURE_CLIENT_ID", "clientid", "AZURE_CLIENT_ID", CFG_STRING, NULL, 0,
	  "application (client) id; with managed identity: a user-assigned identity's client id" },
	{ "AZURE_CLIENT_SECRET", "secret", "AZURE_CLIENT_SECRET", CFG_STRING, NULL, CFG_SECRET,
	  "client secret; empty: workload identity (AZURE_FEDERATED_TOKEN_FILE) or managed identity" },
	{ "AZURE_TENANT_ID", "tenantid", "AZURE_TENANT_ID", CFG_STRING, NULL, 0, "tenant id" },
	{ "AZURE_SUBSCRIPTION_ID", "subscriptionid", "AZURE_SUBSCRIPTION_ID", CFG_STRING, NULL,
	  CFG_REQUIRED, "subscription id" },
	{ "AZURE_REGION", "region", "AZURE_REGION", CFG_STRING, NULL, CFG_REQUIRED,
	  "region (location) of the VMs, e.g. eastus" },
	{ "AZURE_RESOURCE_GROUP", "resourcegroup", "AZURE_RESOURCE_GROUP", CFG_STRING, NULL,
	  CFG_REQUIRED, "resource group of the VMs" },
	{ "AZURE_INSTANCE_SIZE", "instance-size", "AZURE_INSTANCE_SIZE", CFG_STRING, AZURE_DEFAULT_SIZE, 0,
	  "default VM size" },
	{ "AZURE_INSTANCE_SIZES", "instance-sizes", "AZURE_INSTANCE_SIZES", CFG_LIST, NULL, 0,
	  "VM sizes pods may ask for (comma-separated)" },
	{ "AZURE_SUBNET_ID", "subnetid", "AZURE_SUBNET_ID", CFG_STRING, NULL, CFG_REQUIRED,
	  "ARM id of the subnet of the VMs' NIC" },
	{ "AZURE_NSG_ID", "securitygroupid", "AZURE_NSG_ID", CFG_STRING, NULL, 0,
	  "ARM id of a network security group for the NIC" },
	{ "AZURE_IMAGE_ID", "imageid", "AZURE_IMAGE_ID", CFG_STRING, NULL, CFG_REQUIRED,
	  "pod VM image id (gallery image version, /CommunityGalleries/... or /SharedGalleries/...)" },
	{ "SSH_USERNAME", "ssh-username", "SSH_USERNAME", CFG_STRING, "peerpod", 0, "admin user of the VM" },
	{ "SSH_KEY_PATH", "ssh-key-path", NULL, CFG_STRING, NULL, 0,
	  "SSH public key file for the admin user; empty: a generated key nobody holds" },
	{ "AZURE_ZONE", "zone", NULL, CFG_STRING, NULL, 0, "accepted for compatibility; unused" },
	{ "DISABLECVM", "disable-cvm", "DISABLECVM", CFG_BOOL, "false", 0,
	  "create plain VMs instead of confidential VMs (testing only)" },
	{ "ENABLE_SECURE_BOOT", "enable-secure-boot", "ENABLE_SECURE_BOOT", CFG_BOOL, "false", 0,
	  "UEFI secure boot on the confidential VM" },
	{ "USE_PUBLIC_IP", "use-public-ip", "USE_PUBLIC_IP", CFG_BOOL, "false", 0,
	  "give the VM a public IP and connect to it" },
	{ "ROOT_VOLUME_SIZE", "root-volume-size", "ROOT_VOLUME_SIZE", CFG_INT, "0", 0,
	  "OS disk size in GB (0: the image's size)" },
	{ "TAGS", "tags", "TAGS", CFG_KEYVALUE, NULL, 0, "tags of the VMs: key=value,..." },
	/* ours */
	{ "AZURE_FEDERATED_TOKEN_FILE", "federated-token-file", "AZURE_FEDERATED_TOKEN_FILE", CFG_STRING,
	  NULL, 0, "workload identity: the projected service account token (re-read at each refresh)" },
	{ "AZURE_AUTHORITY_HOST", "authority-host", "AZURE_AUTHORITY_HOST", CFG_STRING,
	  AZURE_DEFAULT_AUTHORITY, 0, "Microsoft Entra login endpoint" },
	{ "AZURE_ARM_ENDPOINT", "arm-endpoint", "AZURE_ARM_ENDPOINT", CFG_STRING, AZURE_DEFAULT_ARM, 0,
	  "Azure Resource Manager endpoint (sovereign clouds, tests)" },
	{ "AZURE_ARM_AUDIENCE", "arm-audience", "AZURE_ARM_AUDIENCE", CFG_STRING, AZURE_DEFAULT_ARM, 0,
	  "token audience of ARM (sovereign clouds)" },
	{ "AZURE_IMDS_ENDPOINT", "imds-endpoint", "AZURE_IMDS_ENDPOINT", CFG_STRING, AZURE_DEFAULT_IMDS, 0,
	  "instance metadata service for managed identity tokens" },
	{ "AZURE_POLL_INTERVAL", "poll-interval", "AZURE_POLL_INTERVAL", CFG_DURATION, "5s", 0,
	  "interval between polls of a long-running operation when ARM gives no Retry-After" },
	{ "AZURE_OPERATION_TIMEOUT", "operation-timeout", "AZURE_OPERATION_TIMEOUT", CFG_DURATION, "15m", 0,
	  "longest wait for one ARM operation (create, delete)" },
	{ NULL, NULL, NULL, CFG_STRING, NULL, 0, NULL },
};

/* An endpoint must be an http(s) URL; its trailing '/' is not part of the stored value. */
static int conf_endpoint(const struct config *cfg, const char *name, const char **ret,
			 struct pp_err *err)
{
	const char *v = config_str(cfg, name);

	if (!str_has_prefix(v, "https://") && !str_has_prefix(v, "http://"))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s \"%.200s\" is not an http(s) URL", name, v);
	if (strpbrk(v, "?# \t\r\n"))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "%s \"%.200s\" must not hold a query, fragment or whitespace", name, v);
	*ret = v;
	return 0;
}

static int conf_required(const struct config *cfg, struct pp_err *err)
{
	static const char *const names[] = { "AZURE_SUBSCRIPTION_ID", "AZURE_REGION",
		"AZURE_RESOURCE_GROUP", "AZURE_SUBNET_ID", "AZURE_IMAGE_ID" };
	char missing[256] = "";
	size_t off = 0;

	for (size_t i = 0; i < PP_ARRAY_SIZE(names); i++) {
		if (config_str(cfg, names[i])[0])
			continue;
		off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s", off ? ", " : "",
					names[i]);
		if (off >= sizeof(missing))
			break;
	}
	if (off)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "azure provider: required option(s) not set: %s",
				  missing);
	return 0;
}

/* Characters that would change an ARM URL's meaning when put into a path. */
static int conf_arm_name(const char *name, const char *v, struct pp_err *err)
{
	if (strpbrk(v, "/?#%\\ \t\r\n"))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s \"%.100s\" holds a character not allowed in "
				  "an ARM name", name, v);
	return 0;
}

static int conf_arm_id(const char *name, const char *v, const char *type, struct pp_err *err)
{
	if (!v[0])
		return 0;
	if (!str_has_prefix(v, "/subscriptions/") || strpbrk(v, "?# \t\r\n") ||
	    !strcasestr(v, type))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s \"%.200s\" is not an ARM id of a %s "
				  "(/subscriptions/.../providers/%s/...)", name, v, type, type);
	return 0;
}

static int conf_tags(struct azure_conf *c, const struct config *cfg, struct pp_err *err)
{
	c->tags = config_list(cfg, "TAGS", &c->n_tags);
	if (c->n_tags + 3 > AZURE_MAX_TAGS)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS has %zu tags; a VM holds at most %d "
				  "(3 are ours)", c->n_tags, AZURE_MAX_TAGS);
	for (size_t i = 0; i < c->n_tags; i++) {
		const char *t = c->tags[i];
		size_t klen = strcspn(t, "=");

		if ((klen == strlen(AZURE_TAG_OWNER) && strncasecmp(t, AZURE_TAG_OWNER, klen) == 0) ||
		    (klen == strlen(AZURE_TAG_SANDBOX) && strncasecmp(t, AZURE_TAG_SANDBOX, klen) == 0) ||
		    (klen == strlen(AZURE_TAG_POD) && strncasecmp(t, AZURE_TAG_POD, klen) == 0))
			return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS must not set %.*s: the adaptor "
					  "sets it", (int)klen, t);
		if (strlen(t + klen + 1) > AZURE_TAG_VALUE_MAX || klen > 512)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS item \"%.40s...\" is too long "
					  "(key 512, value 256 characters)", t);
	}
	return 0;
}

static int conf_ids(const struct azure_conf *c, struct pp_err *err)
{
	if (conf_arm_name("AZURE_SUBSCRIPTION_ID", c->subscription, err) < 0 ||
	    conf_arm_name("AZURE_REGION", c->region, err) < 0 ||
	    conf_arm_name("AZURE_RESOURCE_GROUP", c->resource_group, err) < 0 ||
	    conf_arm_name("AZURE_TENANT_ID", c->tenant_id, err) < 0 ||
	    conf_arm_id("AZURE_SUBNET_ID", c->subnet_id, "Microsoft.Network/virtualNetworks", err) < 0 ||
	    conf_arm_id("AZURE_NSG_ID", c->nsg_id, "Microsoft.Network/networkSecurityGroups", err) < 0)
		return -1;
	if (!c->image_id[0] || strpbrk(c->image_id, " \t\r\n"))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "AZURE_IMAGE_ID \"%.200s\" is not an image id",
				  c->image_id);
	if (c->root_volume_gb < 0 || c->root_volume_gb > 4095)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "ROOT_VOLUME_SIZE %lld is not 0..4095 GB",
				  (long long)c->root_volume_gb);
	if (!c->ssh_user[0] || strpbrk(c->ssh_user, "/ \t\r\n\"\\"))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "SSH_USERNAME \"%.64s\" is not a user name",
				  c->ssh_user);
	return 0;
}

static void conf_read(struct azure_conf *c, const struct config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->client_id = config_str(cfg, "AZURE_CLIENT_ID");
	c->client_secret = config_secret(cfg, "AZURE_CLIENT_SECRET");
	c->tenant_id = config_str(cfg, "AZURE_TENANT_ID");
	c->federated_token_file = config_str(cfg, "AZURE_FEDERATED_TOKEN_FILE");
	c->subscription = config_str(cfg, "AZURE_SUBSCRIPTION_ID");
	c->region = config_str(cfg, "AZURE_REGION");
	c->resource_group = config_str(cfg, "AZURE_RESOURCE_GROUP");
	c->default_size = config_str(cfg, "AZURE_INSTANCE_SIZE");
	c->sizes = config_list(cfg, "AZURE_INSTANCE_SIZES", &c->n_sizes);
	c->subnet_id = config_str(cfg, "AZURE_SUBNET_ID");
	c->nsg_id = config_str(cfg, "AZURE_NSG_ID");
	c->image_id = config_str(cfg, "AZURE_IMAGE_ID");
	c->ssh_user = config_str(cfg, "SSH_USERNAME");
	c->ssh_key_path = config_str(cfg, "SSH_KEY_PATH");
	c->disable_cvm = config_bool(cfg, "DISABLECVM");
	c->secure_boot = config_bool(cfg, "ENABLE_SECURE_BOOT");
	c->public_ip = config_bool(cfg, "USE_PUBLIC_IP");
	c->root_volume_gb = config_int(cfg, "ROOT_VOLUME_SIZE");
	c->poll_ms = config_duration_ms(cfg, "AZURE_POLL_INTERVAL");
	c->op_timeout_ms = config_duration_ms(cfg, "AZURE_OPERATION_TIMEOUT");
}

int azure_conf_load(struct azure_conf *c, const struct config *cfg, struct pp_err *err)
{
	conf_read(c, cfg);
	if (conf_required(cfg, err) < 0 || conf_ids(c, err) < 0 || conf_tags(c, cfg, err) < 0 ||
	    conf_endpoint(cfg, "AZURE_ARM_ENDPOINT", &c->arm_endpoint, err) < 0 ||
	    conf_endpoint(cfg, "AZURE_ARM_AUDIENCE", &c->arm_audience, err) < 0 ||
	    conf_endpoint(cfg, "AZURE_AUTHORITY_HOST", &c->authority_host, err) < 0 ||
	    conf_endpoint(cfg, "AZURE_IMDS_ENDPOINT", &c->imds_endpoint, err) < 0)
		return -1;
	/* Managed identity needs neither (a client id picks a user-assigned identity). */
	if ((c->client_secret[0] || c->federated_token_file[0]) && (!c->client_id[0] || !c->tenant_id[0]))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "AZURE_CLIENT_ID and AZURE_TENANT_ID are "
				  "required with %s", c->client_secret[0] ? "AZURE_CLIENT_SECRET" :
				  "AZURE_FEDERATED_TOKEN_FILE");
	if (!c->default_size[0] && c->n_sizes == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "neither AZURE_INSTANCE_SIZE nor AZURE_INSTANCE_SIZES is set");
	if (c->poll_ms == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "AZURE_POLL_INTERVAL must be more than 0");
	if (c->op_timeout_ms == 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "AZURE_OPERATION_TIMEOUT must be more than 0");
	return 0;
}
