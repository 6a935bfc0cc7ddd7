/*
 * Options of the `aws` provider. Names, flags and environment variables are upstream's
 * (upstream-providers.md §1.1) so that existing peer-pods-cm ConfigMaps keep working; the ones
 * after the "ours" marker use the AWS SDKs' standard environment names (AWS_ROLE_ARN,
 * AWS_ENDPOINT_URL_EC2, AWS_EC2_METADATA_SERVICE_ENDPOINT, ...), so that an operator who knows
 * the AWS CLI already knows them.
 *
 * The one idea: every value is checked once, here, at start-up, so that a bad tag or a list
 * that is too long is an error naming the option rather than a failed RunInstances later.
 */
#include "providers/aws/aws_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

const struct config_option aws_options[] = {
	{ "AWS_ACCESS_KEY_ID", "aws-access-key-id", "AWS_ACCESS_KEY_ID", CFG_STRING, NULL, CFG_SECRET,
	  "static access key id" },
	{ "AWS_SECRET_ACCESS_KEY", "aws-secret-key", "AWS_SECRET_ACCESS_KEY", CFG_STRING, NULL, CFG_SECRET,
	  "static secret access key" },
	{ "AWS_SESSION_TOKEN", "aws-session-token", "AWS_SESSION_TOKEN", CFG_STRING, NULL, CFG_SECRET,
	  "session token of temporary static credentials" },
	{ "AWS_REGION", "aws-region", "AWS_REGION", CFG_STRING, NULL, 0,
	  "region (default: the profile's, else IMDS placement/region)" },
	{ "AWS_PROFILE", "aws-profile", "AWS_PROFILE", CFG_STRING, NULL, 0,
	  "profile of the shared config/credentials files" },
	{ "PODVM_LAUNCHTEMPLATE_NAME", "aws-lt-name", "PODVM_LAUNCHTEMPLATE_NAME", CFG_STRING, "kata", 0,
	  "launch template name (with USE_PODVM_LAUNCHTEMPLATE)" },
	{ "USE_PODVM_LAUNCHTEMPLATE", "use-lt", "USE_PODVM_LAUNCHTEMPLATE", CFG_BOOL, "false", 0,
	  "launch from the template instead of explicit parameters (it must request SEV-SNP)" },
	{ "PODVM_AMI_ID", "imageid", "PODVM_AMI_ID", CFG_STRING, NULL, 0,
	  "AMI of the pod VM (required unless a launch template is used)" },
	{ "PODVM_INSTANCE_TYPE", "instance-type", "PODVM_INSTANCE_TYPE", CFG_STRING, "m6a.large", 0,
	  "default instance type" },
	{ "PODVM_INSTANCE_TYPES", "instance-types", "PODVM_INSTANCE_TYPES", CFG_LIST, NULL, 0,
	  "instance types pods may ask for, comma-separated" },
	{ "SSH_KP_NAME", "keyname", "SSH_KP_NAME", CFG_STRING, NULL, 0,
	  "EC2 key pair (default: the node's, from IMDS)" },
	{ "AWS_SUBNET_ID", "subnetid", "AWS_SUBNET_ID", CFG_STRING, NULL, 0,
	  "subnet (default: the node's, from IMDS)" },
	{ "AWS_SG_IDS", "securitygroupids", "AWS_SG_IDS", CFG_LIST, NULL, 0,
	  "security group ids, comma-separated (default: the node's, from IMDS)" },
	{ "USE_PUBLIC_IP", "use-public-ip", "USE_PUBLIC_IP", CFG_BOOL, "false", 0,
	  "give the pod VM a public IP and connect to it" },
	{ "ROOT_VOLUME_SIZE", "root-volume-size", "ROOT_VOLUME_SIZE", CFG_INT, "30", 0,
	  "root volume GiB (raised to the AMI's size; 0 = the AMI's mapping as is)" },
	{ "DISABLECVM", "disable-cvm", "DISABLECVM", CFG_BOOL, "false", 0,
	  "do not request AMD SEV-SNP (CpuOptions.AmdSevSnp)" },
	{ "TAGS", "tags", "TAGS", CFG_KEYVALUE, NULL, 0, "extra instance tags, k=v,k2=v2" },
	/* ours */
	{ "AWS_ROLE_ARN", "aws-role-arn", "AWS_ROLE_ARN", CFG_STRING, NULL, 0,
	  "web identity (IRSA): role to assume with AWS_WEB_IDENTITY_TOKEN_FILE" },
	{ "AWS_WEB_IDENTITY_TOKEN_FILE", "aws-web-identity-token-file", "AWS_WEB_IDENTITY_TOKEN_FILE",
	  CFG_STRING, NULL, 0, "web identity (IRSA): the projected service-account token" },
	{ "AWS_ROLE_SESSION_NAME", "aws-role-session-name", "AWS_ROLE_SESSION_NAME", CFG_STRING,
	  AWS_DEFAULT_SESSION_NAME, 0, "web identity: the role session name" },
	{ "AWS_SHARED_CREDENTIALS_FILE", "aws-shared-credentials-file", "AWS_SHARED_CREDENTIALS_FILE",
	  CFG_STRING, NULL, 0, "shared credentials file (default ~/.aws/credentials)" },
	{ "AWS_CONFIG_FILE", "aws-config-file", "AWS_CONFIG_FILE", CFG_STRING, NULL, 0,
	  "shared config file (default ~/.aws/config)" },
	{ "AWS_ENDPOINT_URL_EC2", "aws-endpoint-url-ec2", "AWS_ENDPOINT_URL_EC2", CFG_STRING, NULL, 0,
	  "EC2 endpoint (default https://ec2.<region>.amazonaws.com/)" },
	{ "AWS_ENDPOINT_URL_STS", "aws-endpoint-url-sts", "AWS_ENDPOINT_URL_STS", CFG_STRING, NULL, 0,
	  "STS endpoint (default https://sts.<region>.amazonaws.com/)" },
	{ "AWS_EC2_METADATA_SERVICE_ENDPOINT", "aws-imds-endpoint", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	  CFG_STRING, AWS_IMDS_DEFAULT, 0, "instance metadata service (IMDSv2)" },
	{ "AWS_EC2_METADATA_DISABLED", "aws-imds-disabled", "AWS_EC2_METADATA_DISABLED", CFG_BOOL,
	  "false", 0, "never call the instance metadata service" },
	{ "AWS_CA_BUNDLE", "aws-ca-bundle", "AWS_CA_BUNDLE", CFG_STRING, NULL, 0,
	  "CA certificates for the AWS endpoints (default: the system store)" },
	{ "AWS_PUBLIC_IP_TIMEOUT", "aws-public-ip-timeout", "AWS_PUBLIC_IP_TIMEOUT", CFG_DURATION,
	  "2m", 0, "how long a create waits for the instance's public IP (USE_PUBLIC_IP)" },
	{ NULL, NULL, NULL, CFG_STRING, NULL, 0, NULL },
};

static int conf_copy(char *out, size_t size, const char *value, const char *option,
		     struct pp_err *err)
{
	if (!pp_strlcpy(out, value ? value : "", size))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s is longer than %zu bytes", option,
				  size - 1);
	return 0;
}

static int conf_list(char (*out)[AWS_ID_MAX], size_t max, size_t *ret_n, const struct config *cfg,
		     const char *option, struct pp_err *err)
{
	size_t n = 0;
	const char *const *items = config_list(cfg, option, &n);

	if (n > max)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "%s has %zu items, at most %zu are allowed",
				  option, n, max);
	for (size_t i = 0; i < n; i++)
		if (conf_copy(out[i], AWS_ID_MAX, items[i], option, err) < 0)
			return -1;
	*ret_n = n;
	return 0;
}

static bool conf_tag_reserved(const char *key)
{
	return strcmp(key, "Name") == 0 || strcmp(key, AWS_OWNER_TAG) == 0 ||
	       strcmp(key, AWS_SANDBOX_TAG) == 0 || strncasecmp(key, "aws:", 4) == 0;
}

static int conf_tags(struct aws_conf *c, const struct config *cfg, struct pp_err *err)
{
	size_t n = 0;
	const char *const *items = config_list(cfg, "TAGS", &n);

	/* Name, owner and sandbox tags come on top. */
	if (n > AWS_MAX_TAGS - 3)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "TAGS has %zu tags, at most %d are allowed",
				  n, AWS_MAX_TAGS - 3);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(items[i], '=');
		size_t klen = eq ? (size_t)(eq - items[i]) : 0;
		struct aws_tag *t = &c->tags[i];

		if (!eq || klen == 0 || klen > AWS_TAG_KEY_MAX)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "TAGS item \"%.64s\": the key must be 1 to %d characters",
					  items[i], AWS_TAG_KEY_MAX);
		memcpy(t->key, items[i], klen);
		t->key[klen] = '\0';
		if (conf_tag_reserved(t->key))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "TAGS key %s is reserved (Name, %s, %s and aws:* are set by the "
					  "adaptor)", t->key, AWS_OWNER_TAG, AWS_SANDBOX_TAG);
		if (!pp_strlcpy(t->value, eq + 1, sizeof(t->value)))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "TAGS value of %s is longer than %d characters", t->key,
					  AWS_TAG_VALUE_MAX);
	}
	c->n_tags = n;
	return 0;
}

static int conf_home_file(char *out, size_t size, const char *configured, const char *name,
			  const char *option, struct pp_err *err)
{
	const char *home = getenv("HOME");

	if (configured[0])
		return conf_copy(out, size, configured, option, err);
	if (!home || !home[0]) {
		out[0] = '\0';
		return 0;
	}
	if (snprintf(out, size, "%s/.aws/%s", home, name) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "$HOME/.aws/%s is too long", name);
	return 0;
}

static int conf_strings(struct aws_conf *c, const struct config *cfg, struct pp_err *err)
{
	static const struct {
		const char *option;
		size_t off;
		size_t size;
	} fields[] = {
#define F(opt, field) { opt, offsetof(struct aws_conf, field), sizeof(((struct aws_conf *)0)->field) }
		F("AWS_REGION", region), F("PODVM_AMI_ID", ami), F("PODVM_INSTANCE_TYPE", instance_type),
		F("AWS_SUBNET_ID", subnet), F("SSH_KP_NAME", key_name),
		F("PODVM_LAUNCHTEMPLATE_NAME", lt_name), F("AWS_PROFILE", profile),
		F("AWS_ROLE_ARN", role_arn), F("AWS_WEB_IDENTITY_TOKEN_FILE", web_token_file),
		F("AWS_ROLE_SESSION_NAME", session_name), F("AWS_ENDPOINT_URL_EC2", ec2_endpoint),
		F("AWS_ENDPOINT_URL_STS", sts_endpoint),
		F("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds_endpoint), F("AWS_CA_BUNDLE", ca_file),
#undef F
	};

	for (size_t i = 0; i < PP_ARRAY_SIZE(fields); i++)
		if (conf_copy((char *)c + fields[i].off, fields[i].size,
			      config_str(cfg, fields[i].option), fields[i].option, err) < 0)
			return -1;
	if (conf_home_file(c->credentials_file, sizeof(c->credentials_file),
			   config_str(cfg, "AWS_SHARED_CREDENTIALS_FILE"), "credentials",
			   "AWS_SHARED_CREDENTIALS_FILE", err) < 0 ||
	    conf_home_file(c->config_file, sizeof(c->config_file), config_str(cfg, "AWS_CONFIG_FILE"),
			   "config", "AWS_CONFIG_FILE", err) < 0)
		return -1;
	return 0;
}

int aws_conf_load(struct aws_conf *c, const struct config *cfg, struct pp_err *err)
{
	memset(c, 0, sizeof(*c));
	if (conf_strings(c, cfg, err) < 0 ||
	    conf_list(c->types, AWS_MAX_TYPES, &c->n_types, cfg, "PODVM_INSTANCE_TYPES", err) < 0 ||
	    conf_list(c->sgs, AWS_MAX_SGS, &c->n_sgs, cfg, "AWS_SG_IDS", err) < 0 ||
	    conf_tags(c, cfg, err) < 0)
		return -1;
	c->use_lt = config_bool(cfg, "USE_PODVM_LAUNCHTEMPLATE");
	c->use_public_ip = config_bool(cfg, "USE_PUBLIC_IP");
	c->disable_cvm = config_bool(cfg, "DISABLECVM");
	c->imds_disabled = config_bool(cfg, "AWS_EC2_METADATA_DISABLED");
	c->public_ip_timeout_ms = config_duration_ms(cfg, "AWS_PUBLIC_IP_TIMEOUT");
	c->root_volume_gib = config_int(cfg, "ROOT_VOLUME_SIZE");
	if (c->root_volume_gib < 0 || c->root_volume_gib > INT32_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "ROOT_VOLUME_SIZE %lld is out of range (0 to %d GiB)",
				  (long long)c->root_volume_gib, INT32_MAX);
	if (!c->use_lt && !c->ami[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "PODVM_AMI_ID is not set (required unless USE_PODVM_LAUNCHTEMPLATE)");
	if (c->use_lt && !c->lt_name[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "USE_PODVM_LAUNCHTEMPLATE is set but PODVM_LAUNCHTEMPLATE_NAME is empty");
	if (!c->instance_type[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "PODVM_INSTANCE_TYPE is empty");
	if (!c->session_name[0])
		pp_strlcpy(c->session_name, AWS_DEFAULT_SESSION_NAME, sizeof(c->session_name));
	return 0;
}

/* ---- IMDS fill-in ---- */

static void conf_imds_warn(const char *what, const struct pp_err *e)
{
	log_warn("aws: IMDS lookup failed", "what=%s error=\"%s\"", what, e->msg);
}

/* "0=my-key" (public-keys listing) -> "my-key". */
static void conf_key_from_listing(char *out, size_t size, const char *listing)
{
	const char *eq = strchr(listing, '=');
	const char *nl;
	size_t n;

	out[0] = '\0';
	if (!eq)
		return;
	nl = strchr(eq + 1, '\n');
	n = nl ? (size_t)(nl - eq - 1) : strlen(eq + 1);
	if (n >= size)
		return;
	memcpy(out, eq + 1, n);
	out[n] = '\0';
}

static int conf_sgs_from_text(struct aws_conf *c, const char *text)
{
	char copy[AWS_MAX_SGS * AWS_ID_MAX];
	char *save = NULL;

	if (!pp_strlcpy(copy, text, sizeof(copy)))
		return -1;
	c->n_sgs = 0;
	for (char *tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (c->n_sgs == AWS_MAX_SGS || !pp_strlcpy(c->sgs[c->n_sgs], tok, AWS_ID_MAX))
			return -1;
		c->n_sgs++;
	}
	return 0;
}

static void conf_imds_network(struct aws_conf *c, struct aws_imds *imds)
{
	char mac[64], path[256], text[AWS_MAX_SGS * AWS_ID_MAX];
	struct pp_err e = { 0 };

	if (aws_imds_get(imds, "mac", mac, sizeof(mac), NULL, &e) < 0) {
		conf_imds_warn("mac", &e);
		return;
	}
	if (!c->subnet[0]) {
		snprintf(path, sizeof(path), "network/interfaces/macs/%s/subnet-id", mac);
		if (aws_imds_get(imds, path, c->subnet, sizeof(c->subnet), NULL, &e) < 0)
			conf_imds_warn("subnet-id", &e);
	}
	if (c->n_sgs == 0) {
		snprintf(path, sizeof(path), "network/interfaces/macs/%s/security-group-ids", mac);
		if (aws_imds_get(imds, path, text, sizeof(text), NULL, &e) < 0)
			conf_imds_warn("security-group-ids", &e);
		else if (conf_sgs_from_text(c, text) < 0)
			log_warn("aws: IMDS security-group-ids unusable", "count_max=%d", AWS_MAX_SGS);
	}
}

int aws_conf_fill_from_imds(struct aws_conf *c, struct aws_imds *imds, struct pp_err *err)
{
	char text[AWS_STR_MAX];
	struct pp_err e = { 0 };

	if (!c->region[0] && aws_imds_get(imds, "placement/region", c->region, sizeof(c->region),
					  NULL, &e) < 0)
		conf_imds_warn("placement/region", &e);
	if (!c->use_lt && (!c->subnet[0] || c->n_sgs == 0))
		conf_imds_network(c, imds);
	if (!c->use_lt && !c->key_name[0]) {
		if (aws_imds_get(imds, "public-keys/", text, sizeof(text), NULL, &e) < 0) {
			if (e.code != PP_NOT_FOUND)
				conf_imds_warn("public-keys", &e);
		} else {
			conf_key_from_listing(c->key_name, sizeof(c->key_name), text);
		}
	}
	(void)err;
	return 0;
}

int aws_conf_finish(struct aws_conf *c, struct pp_err *err)
{
	if (!c->region[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "no AWS region: set AWS_REGION (or a region in the profile, or run "
				  "on EC2 with IMDS reachable)");
	for (const char *s = c->region; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "AWS_REGION \"%.40s\" is not a region name", c->region);
	if (!c->ec2_endpoint[0] &&
	    snprintf(c->ec2_endpoint, sizeof(c->ec2_endpoint), "https://ec2.%s.amazonaws.com/",
		     c->region) >= (int)sizeof(c->ec2_endpoint))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "EC2 endpoint URL too long");
	if (!c->sts_endpoint[0] &&
	    snprintf(c->sts_endpoint, sizeof(c->sts_endpoint), "https://sts.%s.amazonaws.com/",
		     c->region) >= (int)sizeof(c->sts_endpoint))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "STS endpoint URL too long");
	if (!c->use_lt && !c->subnet[0])
		log_warn("aws: no subnet configured", "hint=%s", "set AWS_SUBNET_ID; EC2 picks the default subnet");
	return 0;
}
