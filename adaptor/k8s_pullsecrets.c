/*
 * Image pull secrets → auth.json (spec §3.11): the secrets named by the pod's service account,
 * then by the pod, each a kubernetes.io/dockerconfigjson ({"auths":{...}}) or the older
 * kubernetes.io/dockercfg (the bare map). Per registry only `auth` is kept (built from
 * username:password when absent), so the VM gets one small, uniform file. A later secret's
 * entry for the same registry wins, as in upstream. Secrets are never logged.
 */
#include "adaptor/k8s_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/encoding.h"
#include "lib/log.h"
#include "lib/util.h"

#define PULL_PATH_MAX 1024

static json_t *auth_entry(const json_t *cred)
{
	const char *auth = json_string_value(json_object_get(cred, "auth"));
	const char *user = json_string_value(json_object_get(cred, "username"));
	const char *pass = json_string_value(json_object_get(cred, "password"));
	json_t *e;
	char *plain, *b64;
	size_t n;

	if (auth && *auth)
		return json_pack("{s:s}", "auth", auth);
	if (!user || !pass)
		return NULL;
	n = strlen(user) + strlen(pass) + 2;
	plain = pp_xmalloc(n);
	snprintf(plain, n, "%s:%s", user, pass);
	b64 = base64_encode(plain, n - 1);
	e = json_pack("{s:s}", "auth", b64);
	explicit_bzero(plain, n);
	explicit_bzero(b64, strlen(b64));
	free(plain);
	free(b64);
	return e;
}

/* The decoded JSON of data[key], or NULL. */
static json_t *secret_data_json(const json_t *secret, const char *key, struct pp_err *err)
{
	const char *b64 = json_string_value(json_object_get(json_object_get(secret, "data"), key));
	uint8_t *raw = NULL;
	size_t len = 0;
	json_t *j;

	if (!b64)
		return NULL;
	if (strlen(b64) > K8S_DOCKERCFG_MAX || base64_decode(b64, strlen(b64), &raw, &len, err) < 0) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not base64 of at most %d bytes", key, K8S_DOCKERCFG_MAX);
		return NULL;
	}
	j = json_loadb((const char *)raw, len, 0, NULL);
	explicit_bzero(raw, len);
	free(raw);
	if (!j)
		pp_err_set(err, PP_INVALID_ARGUMENT, "%s is not JSON", key);
	return j;
}

int k8s_pull_secret_merge(json_t *auths, const json_t *secret, struct pp_err *err)
{
	json_t *doc;
	const json_t *map;
	const char *reg;
	json_t *cred;

	pp_err_clear(err);
	doc = secret_data_json(secret, ".dockerconfigjson", err);
	if (doc)
		map = json_object_get(doc, "auths");
	else if (err->code == PP_OK && (doc = secret_data_json(secret, ".dockercfg", err)) != NULL)
		map = doc;
	else
		return err->code == PP_OK ?
		       pp_err_set(err, PP_INVALID_ARGUMENT, "neither .dockerconfigjson nor .dockercfg") : -1;
	if (!json_is_object(map)) {
		json_decref(doc);
		return pp_err_set(err, PP_INVALID_ARGUMENT, "no registry map");
	}
	json_object_foreach((json_t *)map, reg, cred) {
		json_t *e = auth_entry(cred);

		if (e)
			json_object_set_new(auths, reg, e);
	}
	json_decref(doc);
	return 0;
}

static void collect_names(const json_t *list, const char **names, size_t *n)
{
	size_t i;
	json_t *ref;

	json_array_foreach(list, i, ref) {
		const char *name = json_string_value(json_object_get(ref, "name"));

		if (name && *n < K8S_PULL_SECRETS_MAX)
			names[(*n)++] = name;
	}
}

static void merge_secret(struct k8s_client *c, const char *ns, const char *name, json_t *auths)
{
	char path[PULL_PATH_MAX];
	struct pp_err err = { 0 };
	json_t *secret = NULL;

	if (!k8s_path_segment_ok(name)) {
		log_warn("image pull secret skipped: invalid name", "namespace=%s", ns);
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
	if (k8s_client_request(c, "GetSecret", HTTP_GET, path, NULL, NULL, &secret, &err) < 0 ||
	    k8s_pull_secret_merge(auths, secret, &err) < 0)
		log_warn("image pull secret skipped", "namespace=%s secret=%s error=\"%s\"", ns, name, err.msg);
	json_decref(secret);
}

int k8s_pull_secrets_auth_json(struct k8s_client *c, const char *ns, const char *pod, char **ret,
			       struct pp_err *err)
{
	char path[PULL_PATH_MAX];
	const char *names[2 * K8S_PULL_SECRETS_MAX];
	size_t n = 0;
	json_t *p = NULL, *sa = NULL, *auths = json_object();
	const char *sa_name;
	struct pp_err sa_err = { 0 };
	int rc = -1;

	*ret = NULL;
	if (!k8s_path_segment_ok(ns) || !k8s_path_segment_ok(pod)) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "pod %s/%s has an invalid name", ns, pod);
		goto out;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, pod);
	if (k8s_client_request(c, "GetPod", HTTP_GET, path, NULL, NULL, &p, err) < 0)
		goto out;
	sa_name = json_string_value(json_object_get(json_object_get(p, "spec"), "serviceAccountName"));
	if (!sa_name || !*sa_name)
		sa_name = "default";
	if (k8s_path_segment_ok(sa_name)) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, sa_name);
		if (k8s_client_request(c, "GetServiceAccount", HTTP_GET, path, NULL, NULL, &sa, &sa_err) < 0)
			log_warn("service account not readable; its pull secrets are skipped",
				 "namespace=%s serviceaccount=%s error=\"%s\"", ns, sa_name, sa_err.msg);
		collect_names(json_object_get(sa, "imagePullSecrets"), names, &n);
	}
	collect_names(json_object_get(json_object_get(p, "spec"), "imagePullSecrets"), names, &n);
	for (size_t i = 0; i < n; i++)
		merge_secret(c, ns, names[i], auths);
	if (json_object_size(auths) > 0) {
		json_t *doc = json_pack("{s:O}", "auths", auths);

		*ret = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
	}
	rc = 0;
out:
	json_decref(auths);
	json_decref(sa);
	json_decref(p);
	return rc;
}
