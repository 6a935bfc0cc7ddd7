/* The pod VM's configuration: see vmconfig.h. */
#include "adaptor/vmconfig.h"

#include <stdlib.h>
#include <string.h>

#include "adaptor/apf_json.h"
#include "adaptor/k8s_mode.h"
#include "adaptor/sandbox_db.h"
#include "adaptor/sandbox_net.h"
#include "adaptor/tls_setup.h"
#include "adaptor/userdata.h"
#include "lib/pki.h"

int vmconfig_render(struct daemon *d, struct sandbox *sb, const struct pod_annotations *ann,
		    char **ret_text, size_t *ret_len, struct pp_err *err)
{
	struct apf_config apf = { 0 };
	struct userdata_input in = { 0 };
	struct pki_pem server = { 0 };
	struct podnet_apf net = { 0 };
	bool has_net = false;
	const struct provider_ops *ops = provider_get_ops(d->provider);
	char *apf_text = NULL;
	char *auth = NULL;
	int rc = -1;

	apf.pod_namespace = sb->pod_namespace;
	apf.pod_name = sb->pod_name;
	if (sandbox_net_prepare(d, sb, &net, &has_net, err) < 0)
		goto out;
	if (has_net)
		apf.pod_network = &net.pn;
	if (d->tls) {
		if (tls_setup_issue_vm(d->tls, sb->instance_name, &server, err) < 0)
			goto out;
		apf.tls_server_cert = server.cert;
		apf.tls_server_key = server.key;
		apf.tls_client_ca = d->tls->client_ca_pem;
		apf.tls_min_version = d->tls->min_version;
		apf.tls_cipher_suites = d->tls->suites;
		apf.n_tls_cipher_suites = d->tls->n_suites;
	}
	if (apf_json_render(&apf, &apf_text, err) < 0)
		goto out;
	in.apf_json = apf_text;
	auth = k8s_mode_auth_json(d, sb);   /* Kubernetes mode: the pod's pull secrets */
	in.auth_json = auth;
	in.initdata_toml = ann->initdata_toml;
	in.default_initdata = config_str(d->cfg, "INITDATA");
	in.scratch_space = config_bool(d->cfg, "ENABLE_SCRATCH_SPACE");
	in.provider_name = ops->name;
	in.max_user_data = ops->max_user_data;
	rc = userdata_render(&in, ret_text, ret_len, err);
out:
	if (apf_text) {
		/* it holds the server key */
		explicit_bzero(apf_text, strlen(apf_text));
		free(apf_text);
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	pki_pem_free(&server);
	if (has_net)
		podnet_apf_clear(&net);
	return rc;
}

int vmconfig_load(struct daemon *d, const struct sandbox *sb, char **ret_text, size_t *ret_len,
		  struct pp_err *err)
{
	return sandbox_db_load_user_data(d, sb->id, ret_text, ret_len, err);
}
