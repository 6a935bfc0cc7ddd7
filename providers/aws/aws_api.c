/*
 * EC2 Query API requests (Version 2016-11-15): form bodies built by pure functions, and the
 * one function that sends them, aws_ec2_call.
 *
 * Signing: libcurl's CURLOPT_AWS_SIGV4 (through lib/http) signs the POST exactly as botocore
 * does, the session token included when it travels as an x-amz-security-token header (it is
 * then among the SignedHeaders); tests/unit/aws recomputes the signature of the exact request
 * with botocore to keep that true.
 *
 * Retries: lib/http retries 5xx (EC2 answers throttling as 503 RequestLimitExceeded) and
 * connection errors; a throttling code in a 4xx answer is retried here, with full-jitter
 * backoff, watching the cancel token. RunInstances carries a ClientToken, so a retried create
 * never makes a second instance.
 */
#include "providers/aws/aws_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cancel.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- forms (pure) ---- */

void aws_form_begin(struct http_form *f, const char *action)
{
	http_form_init(f, AWS_FORM_MAX);
	http_form_add(f, "Action", action);
	http_form_add(f, "Version", AWS_EC2_API_VERSION);
}

static void form_tags(struct http_form *f, size_t spec, const char *type, const struct aws_tag *tags,
		      size_t n)
{
	http_form_addf(f, type, "TagSpecification.%zu.ResourceType", spec);
	for (size_t i = 0; i < n; i++) {
		http_form_addf(f, tags[i].key, "TagSpecification.%zu.Tag.%zu.Key", spec, i + 1);
		http_form_addf(f, tags[i].value, "TagSpecification.%zu.Tag.%zu.Value", spec, i + 1);
	}
}

static void form_network(struct http_form *f, const struct aws_run_params *p)
{
	if (p->public_ip) {
		http_form_add(f, "NetworkInterface.1.DeviceIndex", "0");
		http_form_add(f, "NetworkInterface.1.AssociatePublicIpAddress", "true");
		http_form_add(f, "NetworkInterface.1.DeleteOnTermination", "true");
		if (p->subnet[0])
			http_form_add(f, "NetworkInterface.1.SubnetId", p->subnet);
		for (size_t i = 0; i < p->n_sgs; i++)
			http_form_addf(f, p->sgs[i], "NetworkInterface.1.SecurityGroupId.%zu", i + 1);
		return;
	}
	if (p->subnet[0])
		http_form_add(f, "SubnetId", p->subnet);
	for (size_t i = 0; i < p->n_sgs; i++)
		http_form_addf(f, p->sgs[i], "SecurityGroupId.%zu", i + 1);
}

int aws_form_run_instances(struct http_form *f, const struct aws_run_params *p)
{
	http_form_add(f, "ClientToken", p->client_token);
	http_form_add(f, "MinCount", "1");
	http_form_add(f, "MaxCount", "1");
	if (p->use_lt) {
		http_form_add(f, "LaunchTemplate.LaunchTemplateName", p->lt_name);
	} else {
		http_form_add(f, "ImageId", p->image_id);
		http_form_add(f, "InstanceType", p->instance_type);
		if (p->key_name[0])
			http_form_add(f, "KeyName", p->key_name);
		form_network(f, p);
		if (p->sev_snp)
			http_form_add(f, "CpuOptions.AmdSevSnp", "enabled");
	}
	if (p->root_device[0] && p->root_volume_gib > 0) {
		char size[24];

		snprintf(size, sizeof(size), "%lld", (long long)p->root_volume_gib);
		http_form_add(f, "BlockDeviceMapping.1.DeviceName", p->root_device);
		http_form_add(f, "BlockDeviceMapping.1.Ebs.VolumeSize", size);
		/* the AMI's mapping may say false: the volume must not outlive the pod */
		http_form_add(f, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	}
	http_form_add(f, "UserData", p->user_data_b64);
	form_tags(f, 1, "instance", p->tags, p->n_tags);
	form_tags(f, 2, "volume", p->tags, p->n_tags);
	return f->failed ? -1 : 0;
}

int aws_form_describe_instance(struct http_form *f, const char *id)
{
	return http_form_add(f, "InstanceId.1", id);
}

int aws_form_describe_owned(struct http_form *f, const char *owner, const char *name,
			    const char *next_token)
{
	size_t n = 1;

	http_form_addf(f, "tag:" AWS_OWNER_TAG, "Filter.%zu.Name", n);
	http_form_addf(f, owner, "Filter.%zu.Value.1", n++);
	if (name && name[0]) {
		http_form_addf(f, "tag:Name", "Filter.%zu.Name", n);
		http_form_addf(f, name, "Filter.%zu.Value.1", n++);
	}
	http_form_addf(f, "instance-state-name", "Filter.%zu.Name", n);
	http_form_addf(f, "pending", "Filter.%zu.Value.1", n);
	http_form_addf(f, "running", "Filter.%zu.Value.2", n);
	http_form_addf(f, "stopping", "Filter.%zu.Value.3", n);
	http_form_addf(f, "stopped", "Filter.%zu.Value.4", n);
	http_form_add(f, "MaxResults", AWS_LIST_PAGE);
	if (next_token && next_token[0])
		http_form_add(f, "NextToken", next_token);
	return f->failed ? -1 : 0;
}

int aws_form_terminate(struct http_form *f, const char *id)
{
	return http_form_add(f, "InstanceId.1", id);
}

int aws_form_describe_images(struct http_form *f, const char *image_id)
{
	return http_form_add(f, "ImageId.1", image_id);
}

int aws_form_describe_instance_types(struct http_form *f, const char (*types)[AWS_ID_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++)
		http_form_addf(f, types[i], "InstanceType.%zu", i + 1);
	return f->failed ? -1 : 0;
}

int aws_form_describe_addresses(struct http_form *f, const char *instance_id)
{
	http_form_add(f, "Filter.1.Name", "instance-id");
	return http_form_add(f, "Filter.1.Value.1", instance_id);
}

int aws_form_disassociate_address(struct http_form *f, const char *association_id)
{
	return http_form_add(f, "AssociationId", association_id);
}

int aws_form_release_address(struct http_form *f, const char *allocation_id)
{
	return http_form_add(f, "AllocationId", allocation_id);
}

int aws_form_assume_role_web_identity(struct http_form *f, const char *role_arn,
				      const char *session_name, const char *token)
{
	http_form_init(f, AWS_FORM_MAX);
	http_form_add(f, "Action", "AssumeRoleWithWebIdentity");
	http_form_add(f, "Version", AWS_STS_API_VERSION);
	http_form_add(f, "RoleArn", role_arn);
	http_form_add(f, "RoleSessionName", session_name);
	return http_form_add(f, "WebIdentityToken", token);
}

/* ---- errors ---- */

bool aws_error_is_throttle(const char *code)
{
	static const char *const throttle[] = {
		"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
		"RequestThrottledException", "TooManyRequestsException", "EC2ThrottledException",
	};

	for (size_t i = 0; i < PP_ARRAY_SIZE(throttle); i++)
		if (strcmp(code, throttle[i]) == 0)
			return true;
	return false;
}

int aws_error_code_map(const char *code, long status)
{
	if (aws_error_is_throttle(code) || str_has_suffix(code, "LimitExceeded") ||
	    strcmp(code, "InsufficientInstanceCapacity") == 0)
		return PP_RESOURCE_EXHAUSTED;
	if (str_has_suffix(code, ".NotFound") || strcmp(code, "InvalidInstanceType") == 0)
		return PP_NOT_FOUND;
	if (strcmp(code, "AuthFailure") == 0 || strcmp(code, "InvalidClientTokenId") == 0 ||
	    strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "ExpiredToken") == 0 ||
	    strcmp(code, "InvalidIdentityToken") == 0 || strcmp(code, "RequestExpired") == 0)
		return PP_UNAUTHENTICATED;
	if (strcmp(code, "UnauthorizedOperation") == 0 || strcmp(code, "AccessDenied") == 0 ||
	    strcmp(code, "OptInRequired") == 0 || strcmp(code, "Blocked") == 0)
		return PP_PERMISSION_DENIED;
	if (str_has_prefix(code, "Invalid") || str_has_prefix(code, "Missing") ||
	    strcmp(code, "Unsupported") == 0 || strcmp(code, "UnsupportedOperation") == 0)
		return PP_INVALID_ARGUMENT;
	if (strcmp(code, "IncorrectInstanceState") == 0 || strcmp(code, "IncorrectState") == 0)
		return PP_FAILED_PRECONDITION;
	return http_status_to_code(status);
}

/* ---- the call ---- */

static int api_fail(const char *action, const struct http_response *resp, struct aws_error *e,
		    struct pp_err *err)
{
	char excerpt[128];

	e->status = resp->status;
	if (aws_xml_error((const char *)resp->body.data, resp->body.len, e) == 0)
		return pp_err_set(err, aws_error_code_map(e->code, resp->status), "EC2 %s: %s: %s",
				  action, e->code, e->message);
	str_quote(excerpt, sizeof(excerpt), http_response_text(resp));
	return pp_err_set(err, http_status_to_code(resp->status), "EC2 %s: HTTP %ld: %s", action,
			  resp->status, excerpt);
}

static bool api_retry_sleep(unsigned attempt, struct cancel *cancel)
{
	uint64_t cap = AWS_THROTTLE_BASE_MS << (attempt < 10 ? attempt : 10);
	uint32_t r = 0;

	if (cap > AWS_THROTTLE_MAX_MS)
		cap = AWS_THROTTLE_MAX_MS;
	pp_random_bytes(&r, sizeof(r), NULL);
	return !cancel_sleep_ms(cancel, cap ? r % (cap + 1) : 0);
}

static int api_send(struct aws_priv *ap, const char *action, const char *body, size_t len,
		    bool idempotent, struct cancel *cancel, struct http_response *resp,
		    struct pp_err *err)
{
	struct aws_creds cr;
	struct http_header h[1];
	struct http_request req = {
		.op = action, .method = HTTP_POST, .url = ap->conf.ec2_endpoint, .headers = h,
		.body = body, .body_len = len, .content_type = AWS_FORM_CONTENT_TYPE,
		.max_response = AWS_MAX_RESPONSE, .cancel = cancel,
		.flags = HTTP_F_RAW_STATUS | (idempotent ? HTTP_F_IDEMPOTENT : 0),
		.aws_sigv4 = ap->sigv4,
	};
	int rc;

	if (aws_auth_get(ap->auth, &cr, cancel, err) < 0)
		return pp_err_prefix(err, "EC2 %s: credentials", action);
	req.aws_access_key_id = cr.akid;
	req.aws_secret_access_key = cr.secret;
	if (cr.token[0]) {
		h[0].name = "x-amz-security-token";
		h[0].value = cr.token;
		req.n_headers = 1;
	}
	rc = http_do(ap->http, &req, resp, err);
	aws_creds_wipe(&cr);
	if (rc < 0)
		return pp_err_prefix(err, "EC2 %s", action);
	return 0;
}

int aws_ec2_call(struct aws_priv *ap, const char *action, struct http_form *form,
		 bool idempotent, struct cancel *cancel, struct http_response *ret_body,
		 struct aws_error *ret_ec2, struct pp_err *err)
{
	struct http_response resp = HTTP_RESPONSE_INIT;
	struct aws_error e = { 0 };
	const char *body;
	size_t len;
	bool renewed = false;

	if (http_form_finish(form, &body, &len, err) < 0)
		return pp_err_prefix(err, "EC2 %s", action);
	for (unsigned attempt = 1;; attempt++) {
		if (api_send(ap, action, body, len, idempotent, cancel, &resp, err) < 0)
			goto fail;
		if (resp.status >= 200 && resp.status < 300) {
			*ret_body = resp;
			return 0;
		}
		api_fail(action, &resp, &e, err);
		if (!renewed && (strcmp(e.code, "ExpiredToken") == 0 ||
				 strcmp(e.code, "RequestExpired") == 0)) {
			renewed = true;   /* temporary credentials ran out early: fetch new ones once */
			aws_auth_invalidate(ap->auth);
			continue;
		}
		if (resp.status >= 500 || !aws_error_is_throttle(e.code) ||
		    attempt >= AWS_THROTTLE_ATTEMPTS)
			goto fail;
		log_warn("aws: throttled, retrying", "action=%s attempt=%u code=%s", action, attempt,
			 e.code);
		if (!api_retry_sleep(attempt, cancel)) {
			pp_err_set(err, cancel_why(cancel) == CANCEL_DEADLINE ? PP_DEADLINE_EXCEEDED :
					PP_CANCELLED, "EC2 %s: %s while throttled", action,
				   cancel_reason_text(cancel_why(cancel)));
			goto fail;
		}
	}
fail:
	http_response_free(&resp);
	if (ret_ec2)
		*ret_ec2 = e;
	return -1;
}
