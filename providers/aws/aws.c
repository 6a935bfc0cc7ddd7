/*
 * The `aws` provider: pod VMs are EC2 instances, confidential with AMD SEV-SNP
 * (CpuOptions.AmdSevSnp=enabled) unless DISABLECVM (upstream-providers.md §1).
 *
 * Start-up: options, IMDS fill-in of what is not configured, the credentials source, then
 * DescribeImages (root device and size of the AMI) and DescribeInstanceTypes (vCPUs, memory,
 * GPUs, SEV-SNP support of every allowed type, sorted for best-fit selection).
 *
 * The one idea: every instance carries the tags Name=<instance name>, peerpod-owner=<owner id>
 * and peerpod-sandbox-id=<sandbox>, on the instance and its root volume. The owner tag is what
 * list_instances filters on (so the reaper never sees another node's instances), and Name +
 * owner is how an instance is found again when its id was never learnt (a crash, a lost
 * answer): a failed create and a delete without an id both clean up by name. RunInstances
 * carries a fresh ClientToken per create, so lib/http may retry it without making two VMs.
 */
#include "providers/aws/aws_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "lib/cancel.h"
#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#define AWS_CLEANUP_TIMEOUT_MS 60000
#define AWS_MAX_ADDRESSES 16
#define AWS_CLIENT_TOKEN_BYTES 16

static struct aws_priv *aws_get(const struct provider *p)
{
	return provider_priv(p);
}

bool aws_instance_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (!str_has_prefix(id, "i-") || (n != 10 && n != 19))
		return false;
	for (size_t i = 2; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static struct cancel *aws_cleanup_cancel(void)
{
	return cancel_new((pp_monotonic_ms() + AWS_CLEANUP_TIMEOUT_MS) * 1000000ull);
}

/* ---- start-up ---- */

static int aws_describe_image(struct aws_priv *ap, const char *image_id, struct aws_image_info *ret,
			      struct cancel *cancel, struct pp_err *err)
{
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	int rc;

	aws_form_begin(&f, "DescribeImages");
	aws_form_describe_images(&f, image_id);
	rc = aws_ec2_call(ap, "DescribeImages", &f, true, cancel, &resp, NULL, err);
	http_form_free(&f);
	if (rc < 0)
		return -1;
	rc = aws_xml_describe_images((const char *)resp.body.data, resp.body.len, image_id, ret, err);
	http_response_free(&resp);
	if (rc == 0 && !ap->conf.disable_cvm && strcmp(ret->boot_mode, "legacy-bios") == 0)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "AMI %s boots with legacy-bios: AMD SEV-SNP needs uefi or "
				  "uefi-preferred (or set DISABLECVM=true)", image_id);
	return rc;
}

static int aws_init_image(struct aws_priv *ap, struct pp_err *err)
{
	struct aws_image_info img;

	ap->root_volume_gib = ap->conf.root_volume_gib;
	if (!ap->conf.ami[0] || ap->conf.root_volume_gib == 0)
		return 0;
	if (aws_describe_image(ap, ap->conf.ami, &img, NULL, err) < 0)
		return pp_err_prefix(err, "PODVM_AMI_ID");
	pp_strlcpy(ap->root_device, img.root_device, sizeof(ap->root_device));
	if (img.root_size_gib > ap->root_volume_gib)
		ap->root_volume_gib = img.root_size_gib;
	return 0;
}

static bool aws_type_allowed(const struct aws_priv *ap, const char *name)
{
	for (size_t i = 0; i < ap->conf.n_types; i++)
		if (strcmp(ap->conf.types[i], name) == 0)
			return true;
	return false;
}

static int aws_check_types(struct aws_priv *ap, const char (*want)[AWS_ID_MAX], size_t n,
			   struct pp_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct aws_type_info *t = NULL;

		for (size_t j = 0; j < ap->n_types && !t; j++)
			if (strcmp(ap->types[j].name, want[i]) == 0)
				t = &ap->types[j];
		if (!t)
			return pp_err_set(err, PP_NOT_FOUND,
					  "instance type %s: DescribeInstanceTypes did not return it", want[i]);
		if (!ap->conf.disable_cvm && t->features_known && !t->sev_snp)
			return pp_err_set(err, PP_FAILED_PRECONDITION,
					  "instance type %s does not support AMD SEV-SNP (no amd-sev-snp in "
					  "its supported features): use M6a, C6a or R6a types, or set "
					  "DISABLECVM=true", want[i]);
	}
	return 0;
}

static int aws_init_types(struct aws_priv *ap, struct pp_err *err)
{
	char (*want)[AWS_ID_MAX] = ap->conf.types;
	size_t n = ap->conf.n_types;
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	int rc;

	if (n == 0) {
		want = &ap->conf.instance_type;
		n = 1;
	} else if (!aws_type_allowed(ap, ap->conf.instance_type)) {
		log_warn("aws: PODVM_INSTANCE_TYPE is not in PODVM_INSTANCE_TYPES",
			 "instance_type=%s hint=%s", ap->conf.instance_type,
			 "pods without a size annotation will fail");
	}
	aws_form_begin(&f, "DescribeInstanceTypes");
	aws_form_describe_instance_types(&f, (const char (*)[AWS_ID_MAX])want, n);
	rc = aws_ec2_call(ap, "DescribeInstanceTypes", &f, true, NULL, &resp, NULL, err);
	http_form_free(&f);
	if (rc < 0)
		return -1;
	rc = aws_xml_describe_instance_types((const char *)resp.body.data, resp.body.len, ap->types,
					     AWS_MAX_TYPES, &ap->n_types, err);
	http_response_free(&resp);
	if (rc < 0 || aws_check_types(ap, (const char (*)[AWS_ID_MAX])want, n, err) < 0)
		return -1;
	for (size_t i = 0; i < ap->n_types; i++)
		ap->type_infos[i] = (struct instance_type_info){ .name = ap->types[i].name,
			.vcpus = ap->types[i].vcpus, .memory_mib = ap->types[i].memory_mib,
			.gpus = ap->types[i].gpus };
	instance_type_sort(ap->type_infos, ap->n_types);
	for (size_t i = 0; i < ap->conf.n_types; i++)
		ap->allowed[i] = ap->conf.types[i];
	return 0;
}

static int aws_init_clients(struct aws_priv *ap, const struct config *cfg, struct pp_err *err)
{
	struct http_client_config hc = {
		.name = "aws",
		.max_response = AWS_MAX_RESPONSE,
		.ca_file = ap->conf.ca_file[0] ? ap->conf.ca_file : NULL,
	};

	if (!ap->conf.imds_disabled) {
		ap->imds = aws_imds_new(ap->conf.imds_endpoint, err);
		if (!ap->imds)
			return -1;
	}
	if (!ap->conf.region[0] &&
	    aws_auth_profile_region(&ap->conf, ap->conf.region, sizeof(ap->conf.region), err) < 0)
		return -1;
	if (ap->imds && aws_conf_fill_from_imds(&ap->conf, ap->imds, err) < 0)
		return -1;
	if (aws_conf_finish(&ap->conf, err) < 0)
		return -1;
	snprintf(ap->sigv4, sizeof(ap->sigv4), "aws:amz:%s:ec2", ap->conf.region);
	ap->http = http_client_new(&hc, err);
	if (!ap->http)
		return -1;
	ap->auth = aws_auth_new(&ap->conf, cfg, ap->http, ap->imds, err);
	return ap->auth ? 0 : -1;
}

static void aws_priv_free(struct aws_priv *ap)
{
	if (!ap)
		return;
	aws_auth_free(ap->auth);
	http_client_free(ap->http);
	aws_imds_free(ap->imds);
	if (ap->http_global)
		http_global_fini();
	explicit_bzero(ap, sizeof(*ap));
	free(ap);
}

static int aws_init(struct provider *p, struct pp_err *err)
{
	struct aws_priv *ap = pp_xcalloc(1, sizeof(*ap));
	const struct config *cfg = provider_config(p);

	/* curl_global_init is reference-counted and thread-safe in the libcurl we require */
	if (http_global_init(err) < 0)
		goto fail;
	ap->http_global = true;
	xmlInitParser();
	if (aws_conf_load(&ap->conf, cfg, err) < 0)
		goto fail;
	if (!pp_strlcpy(ap->owner, provider_owner(p), sizeof(ap->owner))) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "owner id is longer than %d characters (EC2 tag value)",
			   AWS_TAG_VALUE_MAX);
		goto fail;
	}
	if (aws_init_clients(ap, cfg, err) < 0 || aws_init_image(ap, err) < 0 ||
	    (!ap->conf.use_lt && aws_init_types(ap, err) < 0))
		goto fail;
	log_info("aws: ready", "region=%s ami=%s root_device=%s root_gib=%lld types=%zu sev_snp=%s lt=%s "
		 "public_ip=%s", ap->conf.region, ap->conf.ami, ap->root_device,
		 (long long)ap->root_volume_gib, ap->n_types, ap->conf.disable_cvm ? "no" : "yes",
		 ap->conf.use_lt ? ap->conf.lt_name : "no", ap->conf.use_public_ip ? "yes" : "no");
	provider_set_priv(p, ap);
	return 0;
fail:
	aws_priv_free(ap);
	return -1;
}

static void aws_destroy(struct provider *p)
{
	aws_priv_free(aws_get(p));
	provider_set_priv(p, NULL);
}

/* ---- delete ---- */

static int aws_terminate(struct aws_priv *ap, const char *id, struct cancel *cancel,
			 struct pp_err *err)
{
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct aws_error e = { 0 };
	int rc;

	aws_form_begin(&f, "TerminateInstances");
	aws_form_terminate(&f, id);
	rc = aws_ec2_call(ap, "TerminateInstances", &f, true, cancel, &resp, &e, err);
	http_form_free(&f);
	http_response_free(&resp);
	if (rc < 0 && strcmp(e.code, "InvalidInstanceID.NotFound") == 0) {
		log_info("aws: instance already gone", "id=%s", id);
		pp_err_clear(err);
		return 0;
	}
	return rc;
}

static void aws_address_free(struct aws_priv *ap, const char *id, const struct aws_address_info *a,
			     struct cancel *cancel)
{
	char eip_name[AWS_ID_MAX + 8];
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err e = { 0 };

	if (a->association_id[0]) {
		aws_form_begin(&f, "DisassociateAddress");
		aws_form_disassociate_address(&f, a->association_id);
		if (aws_ec2_call(ap, "DisassociateAddress", &f, true, cancel, &resp, NULL, &e) < 0)
			log_warn("aws: disassociating an elastic IP failed", "id=%s ip=%s error=\"%s\"",
				 id, a->public_ip, e.msg);
		http_form_free(&f);
		http_response_free(&resp);
	}
	/* release only addresses made for this instance (upstream names them eip-<id>) or ours */
	snprintf(eip_name, sizeof(eip_name), "eip-%s", id);
	if (!a->allocation_id[0] ||
	    (strcmp(a->name_tag, eip_name) != 0 && strcmp(a->owner_tag, ap->owner) != 0))
		return;
	aws_form_begin(&f, "ReleaseAddress");
	aws_form_release_address(&f, a->allocation_id);
	if (aws_ec2_call(ap, "ReleaseAddress", &f, true, cancel, &resp, NULL, &e) < 0)
		log_warn("aws: releasing an elastic IP failed", "id=%s ip=%s error=\"%s\"", id,
			 a->public_ip, e.msg);
	http_form_free(&f);
	http_response_free(&resp);
}

/* Elastic IPs bound to the instance; errors are logged (as upstream), never fatal. */
static void aws_release_addresses(struct aws_priv *ap, const char *id, struct cancel *cancel)
{
	struct aws_address_info addrs[AWS_MAX_ADDRESSES];
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct pp_err e = { 0 };
	size_t n = 0;
	int rc;

	aws_form_begin(&f, "DescribeAddresses");
	aws_form_describe_addresses(&f, id);
	rc = aws_ec2_call(ap, "DescribeAddresses", &f, true, cancel, &resp, NULL, &e);
	http_form_free(&f);
	if (rc == 0)
		rc = aws_xml_describe_addresses((const char *)resp.body.data, resp.body.len, addrs,
						AWS_MAX_ADDRESSES, &n, &e);
	http_response_free(&resp);
	if (rc < 0) {
		log_warn("aws: listing elastic IPs failed", "id=%s error=\"%s\"", id, e.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		aws_address_free(ap, id, &addrs[i], cancel);
}

/* Live instances with the owner tag (and the Name tag when name is given), all pages. */
static int aws_describe_owned(struct aws_priv *ap, const char *name, struct aws_instance_list *ret,
			      struct cancel *cancel, struct pp_err *err)
{
	struct aws_instance_list all = { 0 };
	char token[sizeof(all.next_token)] = "";

	for (int page = 0; page < AWS_MAX_PAGES; page++) {
		struct aws_instance_list l = { 0 };
		struct http_form f;
		struct http_response resp = HTTP_RESPONSE_INIT;
		int rc;

		aws_form_begin(&f, "DescribeInstances");
		aws_form_describe_owned(&f, ap->owner, name, token);
		rc = aws_ec2_call(ap, "DescribeInstances", &f, true, cancel, &resp, NULL, err);
		http_form_free(&f);
		if (rc == 0)
			rc = aws_xml_describe_instances((const char *)resp.body.data, resp.body.len, &l, err);
		http_response_free(&resp);
		if (rc < 0) {
			aws_instance_list_free(&all);
			return -1;
		}
		for (size_t i = 0; i < l.n; i++) {
			/* never trust the filter alone with another node's instance */
			if (strcmp(l.items[i].owner, ap->owner) != 0 || (name && strcmp(l.items[i].name, name) != 0))
				continue;
			all.items = pp_xrealloc(all.items, (all.n + 1) * sizeof(*all.items));
			all.items[all.n++] = l.items[i];
		}
		pp_strlcpy(token, l.next_token, sizeof(token));
		aws_instance_list_free(&l);
		if (!token[0]) {
			*ret = all;
			return 0;
		}
	}
	aws_instance_list_free(&all);
	return pp_err_set(err, PP_INTERNAL, "DescribeInstances: more than %d pages", AWS_MAX_PAGES);
}

static int aws_delete_by_name(struct aws_priv *ap, const char *name, struct cancel *cancel,
			      struct pp_err *err)
{
	struct aws_instance_list l = { 0 };
	int rc = 0;

	if (aws_describe_owned(ap, name, &l, cancel, err) < 0)
		return pp_err_prefix(err, "finding instance %s by name", name);
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		log_info("aws: deleting instance found by name", "instance=%s id=%s", name, l.items[i].id);
		rc = aws_terminate(ap, l.items[i].id, cancel, err);
	}
	aws_instance_list_free(&l);
	return rc;
}

static int aws_delete_instance(struct provider *p, const char *id, const char *name,
			       struct cancel *cancel, struct pp_err *err)
{
	struct aws_priv *ap = aws_get(p);

	if (!id || !id[0]) {
		if (!name || !name[0])
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "delete_instance: neither an instance id nor a name");
		return aws_delete_by_name(ap, name, cancel, err);
	}
	if (!aws_instance_id_valid(id))
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "\"%.40s\" is not an EC2 instance id (i- and 8 or 17 hex digits)", id);
	aws_release_addresses(ap, id, cancel);
	return aws_terminate(ap, id, cancel, err);
}

/* ---- list ---- */

static int aws_list_instances(struct provider *p, struct owned_instance_list *ret,
			      struct cancel *cancel, struct pp_err *err)
{
	struct aws_priv *ap = aws_get(p);
	struct aws_instance_list l = { 0 };
	struct owned_instance_list out = { 0 };

	if (aws_describe_owned(ap, NULL, &l, cancel, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		struct owned_instance it = { .created_unix = l.items[i].launch_time };

		pp_strlcpy(it.id, l.items[i].id, sizeof(it.id));
		pp_strlcpy(it.name, l.items[i].name, sizeof(it.name));
		pp_strlcpy(it.sandbox_id, l.items[i].sandbox, sizeof(it.sandbox_id));
		if (owned_instance_list_add(&out, &it) < 0) {
			aws_instance_list_free(&l);
			owned_instance_list_free(&out);
			return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory listing instances");
		}
	}
	aws_instance_list_free(&l);
	*ret = out;
	return 0;
}

static int aws_check(struct provider *p, struct pp_err *err)
{
	struct owned_instance_list l = { 0 };
	struct cancel *c = aws_cleanup_cancel();
	int rc = aws_list_instances(p, &l, c, err);

	cancel_unref(c);
	owned_instance_list_free(&l);
	return rc < 0 ? pp_err_prefix(err, "CLOUD_CONFIG_VERIFY") : 0;
}

/* ---- create ---- */

static int aws_client_token(char *out, size_t size, struct pp_err *err)
{
	uint8_t r[AWS_CLIENT_TOKEN_BYTES];

	if (size < 2 * sizeof(r) + 1 || pp_random_bytes(r, sizeof(r), err) < 0)
		return -1;
	hex_encode_to(r, sizeof(r), out);
	return 0;
}

static size_t aws_build_tags(const struct aws_priv *ap, const struct create_request *req,
			     struct aws_tag *tags)
{
	size_t n = 0;

	pp_strlcpy(tags[n].key, "Name", sizeof(tags[n].key));
	pp_strlcpy(tags[n++].value, req->instance_name, sizeof(tags[0].value));
	for (size_t i = 0; i < ap->conf.n_tags; i++)
		tags[n++] = ap->conf.tags[i];
	pp_strlcpy(tags[n].key, AWS_OWNER_TAG, sizeof(tags[n].key));
	pp_strlcpy(tags[n++].value, ap->owner, sizeof(tags[0].value));
	pp_strlcpy(tags[n].key, AWS_SANDBOX_TAG, sizeof(tags[n].key));
	pp_strlcpy(tags[n++].value, req->sandbox_id ? req->sandbox_id : "", sizeof(tags[0].value));
	return n;
}

/* The image and its root device: the pod's own image brings its own root device and size. */
static int aws_create_image(struct aws_priv *ap, const struct create_request *req,
			    const char **ret_image, char *root_dev, size_t size, int64_t *ret_gib,
			    struct pp_err *err)
{
	const char *image = req->spec.image && req->spec.image[0] ? req->spec.image : ap->conf.ami;
	struct aws_image_info img;

	*ret_image = image;
	pp_strlcpy(root_dev, ap->root_device, size);
	*ret_gib = ap->root_volume_gib;
	if (ap->conf.use_lt || strcmp(image, ap->conf.ami) == 0 || ap->conf.root_volume_gib == 0)
		return 0;
	if (aws_describe_image(ap, image, &img, req->cancel, err) < 0)
		return pp_err_prefix(err, "image of the pod (annotation)");
	pp_strlcpy(root_dev, img.root_device, size);
	*ret_gib = img.root_size_gib > ap->conf.root_volume_gib ? img.root_size_gib :
		   ap->conf.root_volume_gib;
	return 0;
}

static int aws_create_check(const struct aws_priv *ap, const struct create_request *req,
			    const char **ret_type, struct pp_err *err)
{
	struct instance_type_policy pol = {
		.types = ap->type_infos, .n_types = ap->n_types,
		.allowed = ap->allowed, .n_allowed = ap->conf.n_types,
		.allowed_option = "PODVM_INSTANCE_TYPES",
		.def = ap->conf.instance_type, .default_option = "PODVM_INSTANCE_TYPE",
	};

	if (!req->instance_name || !req->instance_name[0] ||
	    strlen(req->instance_name) > INSTANCE_NAME_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name is empty or longer than %d",
				  INSTANCE_NAME_MAX);
	if (req->user_data_len > AWS_MAX_USER_DATA)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "user-data of %zu bytes exceeds the %d bytes EC2 accepts (16 KB before "
				  "base64): make INITDATA or the registry auth file smaller",
				  req->user_data_len, AWS_MAX_USER_DATA);
	*ret_type = "";
	if (ap->conf.use_lt)
		return 0;
	return instance_type_select(&req->spec, &pol, ret_type, err);
}

static bool aws_ips_ready(const struct aws_instance_info *in, bool want_public)
{
	return want_public ? strcmp(in->state, "running") == 0 && in->public_ip[0] :
			     in->n_private_ips > 0;
}

static int aws_poll_once(struct aws_priv *ap, const char *id, struct aws_instance_info *ret,
			 struct cancel *cancel, struct pp_err *err)
{
	struct aws_instance_list l = { 0 };
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct aws_error e = { 0 };
	int rc;

	aws_form_begin(&f, "DescribeInstances");
	aws_form_describe_instance(&f, id);
	rc = aws_ec2_call(ap, "DescribeInstances", &f, true, cancel, &resp, &e, err);
	http_form_free(&f);
	if (rc < 0) {
		/* just after RunInstances the id may not be visible yet (eventual consistency) */
		if (strcmp(e.code, "InvalidInstanceID.NotFound") == 0) {
			pp_err_clear(err);
			return 1;
		}
		return -1;
	}
	rc = aws_xml_describe_instances((const char *)resp.body.data, resp.body.len, &l, err);
	http_response_free(&resp);
	if (rc < 0)
		return -1;
	rc = 1;
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].id, id) == 0) {
			*ret = l.items[i];
			rc = 0;
		}
	aws_instance_list_free(&l);
	return rc;
}

/* Polls DescribeInstances until the instance has the addresses we need, bounded and
 * cancellable; the answer's addresses replace those of *inst. */
static int aws_wait_ips(struct aws_priv *ap, struct aws_instance_info *inst, bool want_public,
			struct cancel *cancel, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + ap->conf.public_ip_timeout_ms;
	uint64_t delay = AWS_POLL_FIRST_MS;
	struct aws_instance_info now;

	for (;;) {
		int rc = aws_poll_once(ap, inst->id, &now, cancel, err);

		if (rc < 0)
			return pp_err_prefix(err, "waiting for the addresses of %s", inst->id);
		if (rc == 0 && (strcmp(now.state, "shutting-down") == 0 ||
				strcmp(now.state, "terminated") == 0))
			return pp_err_set(err, PP_ABORTED,
					  "instance %s is %s while starting (see its state reason in "
					  "the EC2 console)", inst->id, now.state);
		if (rc == 0 && aws_ips_ready(&now, want_public)) {
			memcpy(inst->private_ips, now.private_ips, sizeof(now.private_ips));
			inst->n_private_ips = now.n_private_ips;
			pp_strlcpy(inst->public_ip, now.public_ip, sizeof(inst->public_ip));
			return 0;
		}
		if (pp_monotonic_ms() >= deadline)
			return pp_err_set(err, PP_DEADLINE_EXCEEDED,
					  "instance %s has no %s address after %llu s (AWS_PUBLIC_IP_TIMEOUT)",
					  inst->id, want_public ? "public" : "private",
					  (unsigned long long)(ap->conf.public_ip_timeout_ms / 1000));
		if (cancel_sleep_ms(cancel, delay))
			return pp_err_set(err, cancel_why(cancel) == CANCEL_DEADLINE ?
					  PP_DEADLINE_EXCEEDED : PP_CANCELLED,
					  "waiting for the addresses of %s: %s", inst->id,
					  cancel_reason_text(cancel_why(cancel)));
		delay = delay * 2 > AWS_POLL_MAX_MS ? AWS_POLL_MAX_MS : delay * 2;
	}
}

/* *sent tells whether RunInstances went out (so an instance may exist after a failure). */
static int aws_run(struct aws_priv *ap, const struct create_request *req, const char *type,
		   struct aws_instance_info *ret, struct aws_error *ec2, bool *sent,
		   struct pp_err *err)
{
	struct aws_tag tags[AWS_MAX_TAGS];
	char token[2 * AWS_CLIENT_TOKEN_BYTES + 1], root_dev[AWS_STR_MAX];
	struct aws_run_params rp = {
		.client_token = token, .instance_type = type, .key_name = ap->conf.key_name,
		.subnet = ap->conf.subnet, .sgs = (const char (*)[AWS_ID_MAX])ap->conf.sgs,
		.n_sgs = ap->conf.n_sgs, .sev_snp = !ap->conf.disable_cvm, .use_lt = ap->conf.use_lt,
		.lt_name = ap->conf.lt_name, .public_ip = ap->conf.use_public_ip,
		.root_device = root_dev, .tags = tags,
	};
	struct http_form f;
	struct http_response resp = HTTP_RESPONSE_INIT;
	char *b64;
	int rc;

	if (aws_create_image(ap, req, &rp.image_id, root_dev, sizeof(root_dev), &rp.root_volume_gib,
			     err) < 0 || aws_client_token(token, sizeof(token), err) < 0)
		return -1;
	rp.n_tags = aws_build_tags(ap, req, tags);
	b64 = base64_encode(req->user_data ? req->user_data : "", req->user_data_len);
	rp.user_data_b64 = b64;
	aws_form_begin(&f, "RunInstances");
	aws_form_run_instances(&f, &rp);
	*sent = true;
	rc = aws_ec2_call(ap, "RunInstances", &f, true, req->cancel, &resp, ec2, err);
	http_form_free(&f);
	explicit_bzero(b64, strlen(b64));
	free(b64);
	if (rc == 0) {
		rc = aws_xml_run_instances((const char *)resp.body.data, resp.body.len, ret, err);
		ec2->code[0] = '\0';
	}
	http_response_free(&resp);
	return rc;
}

/* After a failed create whose instance may exist: terminate it (by id, or by name). */
static void aws_create_cleanup(struct aws_priv *ap, const struct create_request *req,
			       const char *id)
{
	struct cancel *c = aws_cleanup_cancel();
	struct pp_err e = { 0 };
	int rc = id[0] ? aws_terminate(ap, id, c, &e) : aws_delete_by_name(ap, req->instance_name, c, &e);

	if (rc < 0)
		log_error("aws: cleanup after a failed create failed", "instance=%s id=%s error=\"%s\"",
			  req->instance_name, id, e.msg);
	else
		log_info("aws: cleaned up after a failed create", "instance=%s id=%s", req->instance_name,
			 id);
	cancel_unref(c);
}

static void aws_fill_instance(const struct aws_instance_info *in, const char *name, bool public_ip,
			      struct instance *ret)
{
	memset(ret, 0, sizeof(*ret));
	pp_strlcpy(ret->id, in->id, sizeof(ret->id));
	pp_strlcpy(ret->name, name, sizeof(ret->name));
	if (public_ip)   /* as upstream: the public address replaces the first private one */
		pp_strlcpy(ret->ips[ret->n_ips++], in->public_ip, PROVIDER_IP_MAX);
	for (int i = public_ip ? 1 : 0; i < in->n_private_ips && ret->n_ips < PROVIDER_MAX_IPS; i++)
		pp_strlcpy(ret->ips[ret->n_ips++], in->private_ips[i], PROVIDER_IP_MAX);
}

static int aws_create_instance(struct provider *p, const struct create_request *req,
			       struct instance *ret, struct pp_err *err)
{
	struct aws_priv *ap = aws_get(p);
	struct aws_instance_info in;
	struct aws_error ec2 = { 0 };
	const char *type;
	bool sent = false;

	if (aws_create_check(ap, req, &type, err) < 0)
		return -1;
	memset(&in, 0, sizeof(in));
	if (aws_run(ap, req, type, &in, &ec2, &sent, err) < 0) {
		/* An EC2 4xx error answer means nothing was created; anything else (a lost answer, a
		 * timeout, a 5xx, an unreadable body) may have left an instance behind. */
		if (sent && (!ec2.code[0] || ec2.status >= 500))
			aws_create_cleanup(ap, req, in.id);
		return -1;
	}
	log_debug("aws: instance launched", "instance=%s id=%s type=%s", req->instance_name, in.id,
		  type[0] ? type : "(launch template)");
	if ((ap->conf.use_public_ip || in.n_private_ips == 0) &&
	    aws_wait_ips(ap, &in, ap->conf.use_public_ip, req->cancel, err) < 0) {
		aws_create_cleanup(ap, req, in.id);
		return -1;
	}
	aws_fill_instance(&in, req->instance_name, ap->conf.use_public_ip, ret);
	return 0;
}

/* The metrics endpoint's per-operation counters. */
static struct http_client *aws_http_client(struct provider *p)
{
	return aws_get(p)->http;
}

const struct provider_ops aws_provider_ops = {
	.name = "aws",
	.options = aws_options,
	.max_user_data = AWS_MAX_USER_DATA,
	.init = aws_init,
	.check = aws_check,
	.create_instance = aws_create_instance,
	.delete_instance = aws_delete_instance,
	.list_instances = aws_list_instances,
	.destroy = aws_destroy,
	.http_client = aws_http_client,
};
