/*
 * The `azure` provider: pod VMs as Azure confidential VMs (AMD SEV-SNP or Intel TDX sizes)
 * created through Azure Resource Manager.
 *
 * create_instance is one PUT of the VM with its NIC (and public IP) declared inline, followed
 * to the end of its long-running operation; the IPs are then read from the NIC. The instance id
 * is the VM's ARM id. Every VM carries the owner tag (list_instances filters on it) and the
 * sandbox tag. A create that fails after ARM may have accepted it is undone by name before
 * returning, and delete_instance takes the NIC, public IP and OS disk with the VM (their
 * deleteOption, or explicit deletes), treats "already gone" as success and never touches a VM
 * tagged with another owner.
 */
#include "providers/azure/azure_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#define AZURE_SSH_KEY_BITS 3072

struct azure_priv {
	/* Set once by init, read-only afterwards. */
	struct azure_conf conf;
	struct http_client *http;
	struct azure_auth auth;              /* has its own lock */
	struct azure_arm arm;
	struct instance_type_info *types;    /* the region's allowed sizes, sorted */
	size_t n_types;
	const char *owner;
	bool http_inited;

	pthread_mutex_t key_mu;              /* leaf lock */
	char *ssh_key;                       /* guarded by key_mu: the file's key, or generated once */
};

static struct azure_priv *az_get(const struct provider *p)
{
	return provider_priv(p);
}

/* ---- lifecycle ---- */

static void az_priv_free(struct azure_priv *az)
{
	if (!az)
		return;
	azure_auth_fini(&az->auth);
	http_client_free(az->http);
	azure_vm_sizes_free(az->types, az->n_types);
	free(az->ssh_key);
	pthread_mutex_destroy(&az->key_mu);
	if (az->http_inited)
		http_global_fini();
	free(az);
}

static int az_http_new(struct azure_priv *az, struct pp_err *err)
{
	struct http_client_config hc = { .name = "azure", .max_response = AZURE_MAX_RESPONSE };

	if (http_global_init(err) < 0)
		return -1;
	az->http_inited = true;
	az->http = http_client_new(&hc, err);
	return az->http ? 0 : -1;
}

/* The sizes this node may use, as the region describes them (spec §2.2). */
static int az_load_sizes(struct azure_priv *az, struct pp_err *err)
{
	const struct azure_conf *c = &az->conf;
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	const char **want = pp_xcalloc(c->n_sizes + 1, sizeof(*want));
	char url[AZURE_URL_MAX];
	size_t n_want = 0;
	int rc = -1;

	for (size_t i = 0; i < c->n_sizes; i++)
		want[n_want++] = c->sizes[i];
	if (c->default_size[0])
		want[n_want++] = c->default_size;
	if (azure_url_vm_sizes(c, url, sizeof(url), err) < 0 ||
	    azure_arm_call(&az->arm, "ListVMSizes", HTTP_GET, url, NULL, NULL, &r, err) < 0)
		goto out;
	if (r.status != 200) {
		azure_arm_error(&r, "listing the VM sizes of AZURE_REGION", err);
		goto out;
	}
	if (azure_vm_sizes_parse(http_response_text(&r.resp), want, n_want, &az->types, &az->n_types,
				 err) < 0)
		goto out;
	for (size_t i = 0; i < n_want; i++) {
		bool found = false;

		for (size_t k = 0; k < az->n_types; k++)
			found = found || strcmp(az->types[k].name, want[i]) == 0;
		if (!found)
			log_warn("azure: configured VM size not offered in the region", "size=%s region=%s",
				 want[i], c->region);
	}
	instance_type_sort(az->types, az->n_types);
	rc = 0;
out:
	azure_result_free(&r);
	free(want);
	return rc;
}

static int azure_init(struct provider *p, struct pp_err *err)
{
	struct azure_priv *az = pp_xcalloc(1, sizeof(*az));

	pthread_mutex_init(&az->key_mu, NULL);
	az->owner = provider_owner(p);
	if (!az->owner || !az->owner[0] || strlen(az->owner) > AZURE_TAG_VALUE_MAX) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "azure provider: the owner id must be 1..%d characters",
			   AZURE_TAG_VALUE_MAX);
		goto fail;
	}
	if (azure_conf_load(&az->conf, provider_config(p), err) < 0 || az_http_new(az, err) < 0 ||
	    azure_auth_init(&az->auth, &az->conf, az->http, err) < 0)
		goto fail;
	az->arm = (struct azure_arm){ &az->conf, &az->auth, az->http };
	if (az->conf.ssh_key_path[0] && azure_sshkey_load(az->conf.ssh_key_path, &az->ssh_key, err) < 0)
		goto fail;
	if (az_load_sizes(az, err) < 0) {
		pp_err_prefix(err, "azure provider");
		goto fail;
	}
	log_info("azure provider ready", "region=%s resource_group=%s credentials=%s sizes=%zu",
		 az->conf.region, az->conf.resource_group, azure_cred_kind_name(az->auth.kind),
		 az->n_types);
	provider_set_priv(p, az);
	return 0;
fail:
	az_priv_free(az);
	return -1;
}

static void azure_destroy(struct provider *p)
{
	az_priv_free(az_get(p));
	provider_set_priv(p, NULL);
}

/* CLOUD_CONFIG_VERIFY: the key file as upstream checks it, a token, and the resource group. */
static int azure_check(struct provider *p, struct pp_err *err)
{
	struct azure_priv *az = az_get(p);
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	char url[AZURE_URL_MAX];
	int rc = -1;

	if (az->conf.ssh_key_path[0] && azure_sshkey_check_file(az->conf.ssh_key_path, err) < 0)
		return -1;
	if (azure_url_resource_group(&az->conf, url, sizeof(url), err) < 0 ||
	    azure_arm_call(&az->arm, "GetResourceGroup", HTTP_GET, url, NULL, NULL, &r, err) < 0)
		goto out;
	if (r.status != 200)
		azure_arm_error(&r, "checking AZURE_RESOURCE_GROUP", err);
	else
		rc = 0;
out:
	azure_result_free(&r);
	return rc;
}

/* ---- delete ---- */

static bool az_gone(long status)
{
	return status == 404 || status == 204;
}

/* DELETE url and follow the operation; already gone is success. */
static int az_delete_url(struct azure_priv *az, const char *op, const char *what, const char *url,
			 struct cancel *cancel, struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	int rc = -1;

	if (azure_arm_call(&az->arm, op, HTTP_DELETE, url, NULL, cancel, &r, err) < 0)
		goto out;
	if (az_gone(r.status))
		rc = 0;
	else if (r.status == 200 || r.status == 202)
		rc = azure_lro_wait(&az->arm, what, url, false, &r, cancel, err);
	else
		azure_arm_error(&r, what, err);
out:
	azure_result_free(&r);
	return rc;
}

static int az_delete_id(struct azure_priv *az, const char *op, const char *id, const char *api,
			struct cancel *cancel, struct pp_err *err)
{
	char url[AZURE_URL_MAX], what[PROVIDER_ID_MAX + 16];

	snprintf(what, sizeof(what), "deleting %s", id);
	if (azure_url_from_id(&az->conf, id, api, url, sizeof(url), err) < 0)
		return -1;
	return az_delete_url(az, op, what, url, cancel, err);
}

static int az_delete_named(struct azure_priv *az, const char *op, const char *type, const char *name,
			   const char *api, struct cancel *cancel, struct pp_err *err)
{
	char url[AZURE_URL_MAX], what[AZURE_NAME_MAX + 64];

	snprintf(what, sizeof(what), "deleting %s %s", type, name);
	if (azure_url_resource(&az->conf, url, sizeof(url), type, name, api, err) < 0)
		return -1;
	return az_delete_url(az, op, what, url, cancel, err);
}

/* What a create that died half-way may leave without a VM: the NIC, public IP, OS disk. */
static int az_delete_strays(struct azure_priv *az, const char *vm, struct cancel *cancel,
			    struct pp_err *err)
{
	char nic[AZURE_NAME_MAX], pip[AZURE_NAME_MAX], disk[AZURE_NAME_MAX];

	if (azure_names(vm, nic, pip, disk, sizeof(nic), err) < 0)
		return -1;
	if (az_delete_named(az, "DeleteNIC", "Microsoft.Network/networkInterfaces", nic, AZURE_API_NETWORK,
			    cancel, err) < 0 ||
	    az_delete_named(az, "DeletePublicIP", "Microsoft.Network/publicIPAddresses", pip,
			    AZURE_API_NETWORK, cancel, err) < 0 ||
	    az_delete_named(az, "DeleteDisk", "Microsoft.Compute/disks", disk, AZURE_API_DISK, cancel, err) < 0)
		return -1;
	return 0;
}

/* A NIC the VM does not delete itself, and the public IPs on it. */
static int az_delete_nic(struct azure_priv *az, const char *nic_id, struct cancel *cancel,
			 struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	struct azure_nic nic = { .n_public = 0 };
	char url[AZURE_URL_MAX];
	int rc = -1;

	if (azure_url_from_id(&az->conf, nic_id, AZURE_API_NETWORK, url, sizeof(url), err) < 0 ||
	    azure_arm_call(&az->arm, "GetNIC", HTTP_GET, url, NULL, cancel, &r, err) < 0)
		goto out;
	if (r.status == 404) {
		rc = 0;
		goto out;
	}
	if (r.status != 200) {
		azure_arm_error(&r, "reading the NIC to delete", err);
		goto out;
	}
	azure_nic_parse(http_response_text(&r.resp), &nic, NULL);
	if (az_delete_url(az, "DeleteNIC", "deleting the NIC", url, cancel, err) < 0)
		goto out;
	for (int i = 0; i < nic.n_public; i++)
		if (az_delete_id(az, "DeletePublicIP", nic.public_ids[i], AZURE_API_NETWORK, cancel, err) < 0)
			goto out;
	rc = 0;
out:
	azure_result_free(&r);
	return rc;
}

static int az_owner_check(const struct azure_priv *az, const struct azure_vm *vm, struct pp_err *err)
{
	if (strcmp(vm->owner, az->owner) == 0)
		return 0;
	return pp_err_set(err, PP_PERMISSION_DENIED, "VM %s is tagged %s=\"%.64s\", not this node's "
			  "owner id \"%.64s\": not deleting it", vm->name, AZURE_TAG_OWNER, vm->owner,
			  az->owner);
}

static int az_delete_vm(struct azure_priv *az, const char *name, struct cancel *cancel,
			struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	char url[AZURE_URL_MAX], what[AZURE_NAME_MAX + 32];
	struct azure_vm vm;
	int rc = -1;

	snprintf(what, sizeof(what), "deleting VM %s", name);
	if (azure_url_resource(&az->conf, url, sizeof(url), "Microsoft.Compute/virtualMachines", name,
			       AZURE_API_COMPUTE, err) < 0 ||
	    azure_arm_call(&az->arm, "GetVM", HTTP_GET, url, NULL, cancel, &r, err) < 0)
		goto out;
	if (r.status == 404) {
		rc = az_delete_strays(az, name, cancel, err);
		goto out;
	}
	if (r.status != 200) {
		azure_arm_error(&r, what, err);
		goto out;
	}
	if (azure_vm_parse(http_response_text(&r.resp), &vm, err) < 0 || az_owner_check(az, &vm, err) < 0 ||
	    az_delete_url(az, "DeleteVM", what, url, cancel, err) < 0)
		goto out;
	for (int i = 0; i < vm.n_nics; i++)
		if (!vm.nics[i].delete_with_vm && az_delete_nic(az, vm.nics[i].id, cancel, err) < 0)
			goto out;
	if (vm.os_disk.id[0] && !vm.os_disk.delete_with_vm &&
	    az_delete_id(az, "DeleteDisk", vm.os_disk.id, AZURE_API_DISK, cancel, err) < 0)
		goto out;
	rc = 0;
out:
	azure_result_free(&r);
	return rc;
}

static bool az_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < AZURE_NAME_MAX - 8 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static int azure_delete(struct provider *p, const char *id, const char *name, struct cancel *cancel,
			struct pp_err *err)
{
	struct azure_priv *az = az_get(p);
	char vm[AZURE_NAME_MAX];
	uint64_t t0 = pp_monotonic_ms();

	if (id && id[0]) {
		if (azure_vm_name_from_id(id, vm, sizeof(vm), err) < 0)
			return -1;
	} else if (name && name[0]) {
		pp_strlcpy(vm, name, sizeof(vm));
	} else {
		return pp_err_set(err, PP_INVALID_ARGUMENT, "deleting an Azure VM: neither id nor name given");
	}
	if (!az_name_valid(vm))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "\"%.80s\" is not a VM name this provider "
				  "creates", vm);
	if (az_delete_vm(az, vm, cancel, err) < 0)
		return -1;
	log_info("azure VM deleted", "instance=%s ms=%llu", vm,
		 (unsigned long long)(pp_monotonic_ms() - t0));
	return 0;
}

/* ---- create ---- */

/* A failed create leaves nothing behind: undone by name, even when the caller's token fired. */
static void az_cleanup(struct azure_priv *az, const char *name)
{
	struct cancel *c = cancel_new((pp_monotonic_ms() + AZURE_CLEANUP_TIMEOUT_MS) * 1000000ull);
	struct pp_err e = { 0 };

	if (az_delete_vm(az, name, c, &e) < 0)
		log_error("azure: cleaning up after a failed create failed; the reaper will retry",
			  "instance=%s error=\"%s\"", name, e.msg);
	else
		log_info("azure: failed create cleaned up", "instance=%s", name);
	cancel_unref(c);
}

static int az_ssh_key(struct azure_priv *az, char **ret, struct pp_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&az->key_mu);
	if (!az->ssh_key)
		rc = azure_sshkey_generate(AZURE_SSH_KEY_BITS, &az->ssh_key, err);
	if (rc == 0)
		*ret = pp_xstrdup(az->ssh_key);
	pthread_mutex_unlock(&az->key_mu);
	return rc;
}

static int az_user_data(const struct create_request *req, char **ret, struct pp_err *err)
{
	char *b64 = base64_encode(req->user_data ? req->user_data : "", req->user_data_len);

	if (strlen(b64) > AZURE_MAX_USER_DATA_B64) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "user-data is %zu bytes, %zu in base64, more than the "
			   "%u bytes of base64 Azure accepts", req->user_data_len, strlen(b64),
			   AZURE_MAX_USER_DATA_B64);
		free(b64);
		return -1;
	}
	*ret = b64;
	return 0;
}

static int az_size(const struct azure_priv *az, const struct instance_spec *spec, const char **ret,
		   struct pp_err *err)
{
	struct instance_type_policy pol = {
		.types = az->types, .n_types = az->n_types,
		.allowed = az->conf.sizes, .n_allowed = az->conf.n_sizes,
		.allowed_option = "AZURE_INSTANCE_SIZES",
		.def = az->conf.default_size, .default_option = "AZURE_INSTANCE_SIZE",
	};

	return instance_type_select(spec, &pol, ret, err);
}

/* The serialised body of the VM PUT. */
static int az_body(struct azure_priv *az, const struct create_request *req, const char *size,
		   char **ret, struct pp_err *err)
{
	struct azure_vm_params vp = {
		.name = req->instance_name, .location = az->conf.region, .size = size,
		.image = req->spec.image && req->spec.image[0] ? req->spec.image : az->conf.image_id,
		.subnet_id = az->conf.subnet_id, .nsg_id = az->conf.nsg_id,
		.admin_user = az->conf.ssh_user, .cvm = !az->conf.disable_cvm,
		.secure_boot = az->conf.secure_boot, .public_ip = az->conf.public_ip,
		.os_disk_gb = az->conf.root_volume_gb, .tags = az->conf.tags, .n_tags = az->conf.n_tags,
		.owner = az->owner, .sandbox_id = req->sandbox_id,
	};
	char pod[AZURE_TAG_VALUE_MAX + 1], *key = NULL, *ud = NULL;
	json_t *body = NULL;
	int rc = -1;

	if (req->pod_name && req->pod_name[0])
		snprintf(pod, sizeof(pod), "%s/%s", req->pod_namespace ? req->pod_namespace : "",
			 req->pod_name);
	else
		pod[0] = '\0';
	vp.pod = pod;
	if (az_user_data(req, &ud, err) < 0 || az_ssh_key(az, &key, err) < 0)
		goto out;
	vp.user_data_b64 = ud;
	vp.ssh_key = key;
	body = azure_vm_body(&vp, err);
	if (!body)
		goto out;
	*ret = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	rc = *ret ? 0 : pp_err_set(err, PP_INTERNAL, "serialising the VM body failed");
out:
	json_decref(body);
	free(key);
	free(ud);
	return rc;
}

/* A GET of an id ARM returned; the body in r. */
static int az_get_id(struct azure_priv *az, const char *op, const char *id, const char *api,
		     struct cancel *cancel, struct azure_result *r, struct pp_err *err)
{
	char url[AZURE_URL_MAX];

	if (azure_url_from_id(&az->conf, id, api, url, sizeof(url), err) < 0 ||
	    azure_arm_call(&az->arm, op, HTTP_GET, url, NULL, cancel, r, err) < 0)
		return -1;
	if (r->status != 200)
		return azure_arm_error(r, op, err);
	return 0;
}

static void az_add_ip(struct instance *ret, const char *ip)
{
	if (ret->n_ips < PROVIDER_MAX_IPS)
		pp_strlcpy(ret->ips[ret->n_ips++], ip, PROVIDER_IP_MAX);
}

/* Public IPs of one NIC (prepended, spec §2.3); 1 when one is not allocated yet. */
static int az_public_ips(struct azure_priv *az, const struct azure_nic *nic, struct cancel *cancel,
			 struct instance *ret, struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	char ip[PROVIDER_IP_MAX];
	int rc = 0;

	for (int i = 0; i < nic->n_public && rc == 0; i++) {
		if (az_get_id(az, "GetPublicIP", nic->public_ids[i], AZURE_API_NETWORK, cancel, &r, err) < 0 ||
		    azure_pip_parse(http_response_text(&r.resp), ip, sizeof(ip), err) < 0)
			rc = -1;
		else if (!ip[0])
			rc = 1;
		else
			az_add_ip(ret, ip);
	}
	azure_result_free(&r);
	return rc;
}

/* One pass over the VM's NICs: 0 all addresses known, 1 some still pending, -1 error. */
static int az_ips_once(struct azure_priv *az, const struct azure_vm *vm, struct cancel *cancel,
		       struct instance *ret, struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	struct azure_nic nics[AZURE_MAX_NICS];
	int rc = 0;

	ret->n_ips = 0;
	for (int i = 0; i < vm->n_nics && rc == 0; i++) {
		if (az_get_id(az, "GetNIC", vm->nics[i].id, AZURE_API_NETWORK, cancel, &r, err) < 0 ||
		    azure_nic_parse(http_response_text(&r.resp), &nics[i], err) < 0)
			rc = -1;
		else if (nics[i].n_private == 0)
			rc = 1;
		else if (az->conf.public_ip)
			rc = az_public_ips(az, &nics[i], cancel, ret, err);
	}
	for (int i = 0; i < vm->n_nics && rc == 0; i++)
		for (int k = 0; k < nics[i].n_private; k++)
			az_add_ip(ret, nics[i].private_ips[k]);
	azure_result_free(&r);
	return rc;
}

static int az_ips(struct azure_priv *az, const struct azure_vm *vm, struct cancel *cancel,
		  struct instance *ret, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + AZURE_IP_WAIT_MS;
	int rc;

	if (vm->n_nics == 0)
		return pp_err_set(err, PP_INTERNAL, "VM %s has no network interface", vm->name);
	while ((rc = az_ips_once(az, vm, cancel, ret, err)) == 1) {
		if (pp_monotonic_ms() >= deadline)
			return pp_err_set(err, PP_UNAVAILABLE, "VM %s: its NIC has no IP address %d s after "
					  "the VM was created", vm->name, AZURE_IP_WAIT_MS / 1000);
		if (cancel_sleep_ms(cancel, AZURE_IP_POLL_MS))
			return pp_err_set(err, PP_CANCELLED, "VM %s: %s while waiting for its IP address",
					  vm->name, cancel_reason_text(cancel_why(cancel)));
	}
	if (rc == 0 && ret->n_ips == 0)
		return pp_err_set(err, PP_UNAVAILABLE, "VM %s: no IP address", vm->name);
	return rc;
}

/* The PUT and its operation. *ret_accepted tells whether ARM may have created something. */
static int az_put_vm(struct azure_priv *az, const char *url, const char *body, const char *name,
		     struct cancel *cancel, bool *ret_accepted, struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	char what[AZURE_NAME_MAX + 32];
	int rc = -1;

	snprintf(what, sizeof(what), "creating VM %s", name);
	*ret_accepted = true;   /* a PUT without an answer may have reached ARM */
	if (azure_arm_call(&az->arm, "CreateVM", HTTP_PUT, url, body, cancel, &r, err) < 0) {
		pp_err_prefix(err, "%s", what);
		goto out;
	}
	if (r.status != 200 && r.status != 201) {
		/* ARM refused the request itself: nothing was created */
		*ret_accepted = r.status >= 500 || r.status == 409 || r.status == 429;
		azure_arm_error(&r, what, err);
		goto out;
	}
	rc = azure_lro_wait(&az->arm, what, url, true, &r, cancel, err);
out:
	azure_result_free(&r);
	return rc;
}

static int az_get_vm(struct azure_priv *az, const char *url, struct cancel *cancel, struct azure_vm *vm,
		     struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	int rc = -1;

	if (azure_arm_call(&az->arm, "GetVM", HTTP_GET, url, NULL, cancel, &r, err) < 0)
		goto out;
	if (r.status != 200)
		azure_arm_error(&r, "reading the created VM", err);
	else
		rc = azure_vm_parse(http_response_text(&r.resp), vm, err);
out:
	azure_result_free(&r);
	return rc;
}

static int azure_create(struct provider *p, const struct create_request *req, struct instance *ret,
			struct pp_err *err)
{
	struct azure_priv *az = az_get(p);
	char url[AZURE_URL_MAX], *body = NULL;
	const char *size;
	struct azure_vm vm;
	struct instance inst;
	bool accepted = false;
	uint64_t t0 = pp_monotonic_ms();

	if (!az_name_valid(req->instance_name))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name \"%.80s\" is not a valid Azure "
				  "VM name", req->instance_name);
	if (az_size(az, &req->spec, &size, err) < 0 || az_body(az, req, size, &body, err) < 0 ||
	    azure_url_resource(&az->conf, url, sizeof(url), "Microsoft.Compute/virtualMachines",
			       req->instance_name, AZURE_API_COMPUTE, err) < 0)
		goto fail;
	memset(&inst, 0, sizeof(inst));
	if (az_put_vm(az, url, body, req->instance_name, req->cancel, &accepted, err) < 0 ||
	    az_get_vm(az, url, req->cancel, &vm, err) < 0 || az_ips(az, &vm, req->cancel, &inst, err) < 0)
		goto fail;
	pp_strlcpy(inst.id, vm.id, sizeof(inst.id));
	pp_strlcpy(inst.name, req->instance_name, sizeof(inst.name));
	log_info("azure VM created", "instance=%s size=%s ip=%s ms=%llu", inst.name, size, inst.ips[0],
		 (unsigned long long)(pp_monotonic_ms() - t0));
	*ret = inst;
	free(body);
	return 0;
fail:
	free(body);
	if (accepted)
		az_cleanup(az, req->instance_name);
	return -1;
}

/* ---- list ---- */

static int az_list_page(struct azure_priv *az, const char *url, struct owned_instance_list *found,
			char **ret_next, struct cancel *cancel, struct pp_err *err)
{
	struct azure_result r = { HTTP_RESPONSE_INIT, 0 };
	int rc = -1;

	if (azure_arm_call(&az->arm, "ListVMs", HTTP_GET, url, NULL, cancel, &r, err) < 0)
		goto out;
	if (r.status != 200)
		azure_arm_error(&r, "listing the VMs of AZURE_RESOURCE_GROUP", err);
	else
		rc = azure_vm_list_parse(http_response_text(&r.resp), az->owner, found, ret_next, err);
out:
	azure_result_free(&r);
	return rc;
}

static int azure_list(struct provider *p, struct owned_instance_list *ret, struct cancel *cancel,
		      struct pp_err *err)
{
	struct azure_priv *az = az_get(p);
	struct owned_instance_list found = { NULL, 0 };
	char url[AZURE_URL_MAX], *next = NULL;
	int pages = 0;

	if (azure_url_vm_list(&az->conf, url, sizeof(url), err) < 0)
		return -1;
	for (;;) {
		if (az_list_page(az, url, &found, &next, cancel, err) < 0)
			goto fail;
		if (!next)
			break;
		if (++pages == AZURE_LIST_MAX_PAGES || !pp_strlcpy(url, next, sizeof(url))) {
			pp_err_set(err, PP_INTERNAL, "listing VMs: more than %d pages or an overlong nextLink",
				   AZURE_LIST_MAX_PAGES);
			goto fail;
		}
		free(next);
		next = NULL;
	}
	*ret = found;
	return 0;
fail:
	free(next);
	owned_instance_list_free(&found);
	return -1;
}

/* The metrics endpoint's per-operation counters. */
static struct http_client *azure_http_client(struct provider *p)
{
	return az_get(p)->http;
}

const struct provider_ops azure_provider_ops = {
	.name = "azure",
	.options = azure_options,
	.max_user_data = AZURE_MAX_USER_DATA,
	.init = azure_init,
	.check = azure_check,
	.create_instance = azure_create,
	.delete_instance = azure_delete,
	.list_instances = azure_list,
	.destroy = azure_destroy,
	.http_client = azure_http_client,
};
