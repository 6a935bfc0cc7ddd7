/*
 * PeerPod objects (spec §3.9): one per instance, in the pod's namespace, owned by the Pod (so
 * Kubernetes' garbage collector deletes it with the pod) and carrying a finalizer that
 * upstream's peerpod-ctrl honours by deleting the instance. We release the finalizer once we
 * deleted the instance ourselves; if we never do (the node died), the controller does it.
 * Names are deterministic so that a restarted daemon finds the object again.
 */
#include "adaptor/k8s_ops.h"

#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

#define PEERPOD_SUFFIX "-resource-"
#define PEERPOD_SID_CHARS 5
#define PEERPOD_PATH_MAX 1024

int k8s_peerpod_name(const char *pod, const char *sandbox_id, char *out, size_t size,
		     struct pp_err *err)
{
	size_t room = K8S_PEERPOD_NAME_MAX - strlen(PEERPOD_SUFFIX) - PEERPOD_SID_CHARS;
	char sid[PEERPOD_SID_CHARS + 1];
	int n;

	snprintf(sid, sizeof(sid), "%s", sandbox_id);
	for (char *p = sid; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	n = snprintf(out, size, "%.*s%s%s", (int)room, pod, PEERPOD_SUFFIX, sid);
	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "PeerPod name for pod %s does not fit", pod);
	if (!k8s_path_segment_ok(out))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "PeerPod name %s is not a valid object name", out);
	return 0;
}

static int peerpod_path(char *out, size_t size, const char *ns, const char *name, struct pp_err *err)
{
	if (!k8s_path_segment_ok(ns))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "namespace %s is not valid", ns);
	snprintf(out, size, "/apis/%s/namespaces/%s/peerpods%s%s", K8S_PEERPOD_API, ns, name ? "/" : "",
		 name ? name : "");
	return 0;
}

static json_t *peerpod_body(const char *name, const char *ns, const char *pod, const char *uid,
			    const char *cloud_provider, const char *instance_id)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:[s], s:[{s:s, s:s, s:s, s:s, s:b, s:b}]},"
			 " s:{s:s, s:s}}",
			 "apiVersion", K8S_PEERPOD_API, "kind", "PeerPod",
			 "metadata", "name", name, "namespace", ns, "finalizers", K8S_PEERPOD_FINALIZER,
			 "ownerReferences", "apiVersion", "v1", "kind", "Pod", "name", pod, "uid", uid,
			 "controller", 1, "blockOwnerDeletion", 1,
			 "spec", "cloudProvider", cloud_provider, "instanceID", instance_id);
}

int k8s_peerpod_create(struct k8s_client *c, const char *ns, const char *pod,
		       const char *sandbox_id, const char *cloud_provider, const char *instance_id,
		       struct pp_err *err)
{
	char name[K8S_PEERPOD_NAME_MAX + 1];
	char path[PEERPOD_PATH_MAX];
	json_t *doc = NULL;
	json_t *body = NULL;
	const char *uid;
	int rc = -1;

	if (!k8s_path_segment_ok(ns) || !k8s_path_segment_ok(pod))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "pod %s/%s has an invalid name", ns, pod);
	if (k8s_peerpod_name(pod, sandbox_id, name, sizeof(name), err) < 0)
		return -1;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, pod);
	if (k8s_client_request(c, "GetPod", HTTP_GET, path, NULL, NULL, &doc, err) < 0)
		return -1;
	uid = json_string_value(json_object_get(json_object_get(doc, "metadata"), "uid"));
	if (!uid) {
		pp_err_set(err, PP_INTERNAL, "pod %s/%s has no metadata.uid", ns, pod);
		goto out;
	}
	body = peerpod_body(name, ns, pod, uid, cloud_provider, instance_id);
	peerpod_path(path, sizeof(path), ns, NULL, err);
	rc = k8s_client_request(c, "CreatePeerPod", HTTP_POST, path, NULL, body, NULL, err);
	if (rc < 0 && (err->code == PP_ABORTED || err->code == PP_ALREADY_EXISTS)) {
		rc = 0;   /* created before a restart */
		pp_err_clear(err);
	}
out:
	json_decref(body);
	json_decref(doc);
	return rc;
}

int k8s_peerpod_release(struct k8s_client *c, const char *ns, const char *pod,
			const char *sandbox_id, struct pp_err *err)
{
	char name[K8S_PEERPOD_NAME_MAX + 1];
	char path[PEERPOD_PATH_MAX];
	json_t *patch;
	int rc;

	if (k8s_peerpod_name(pod, sandbox_id, name, sizeof(name), err) < 0 ||
	    peerpod_path(path, sizeof(path), ns, name, err) < 0)
		return -1;
	patch = json_pack("[{s:s, s:s}]", "op", "remove", "path", "/metadata/finalizers");
	rc = k8s_client_request(c, "ReleasePeerPod", HTTP_PATCH, path, K8S_PATCH_JSON, patch, NULL, err);
	json_decref(patch);
	if (rc < 0 && err->code == PP_NOT_FOUND) {
		pp_err_clear(err);
		return 0;
	}
	return rc;
}
