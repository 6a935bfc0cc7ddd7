/*
 * The node's extended resource kata.peerpods.io/vm (spec §3.10) and the startup probe's pod
 * check (§7.3). During a rolling update two daemons run on one node: the annotation
 * kata.peerpods.io/caa-owner (the newest daemon's POD_UID) decides which of them may withdraw
 * the resource when it stops, so that the old one leaving does not take it from the new one.
 */
#include "adaptor/k8s_ops.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

#define NODE_PATH_MAX 512

static int node_path(char *out, size_t size, const char *node, const char *suffix, struct pp_err *err)
{
	if (!k8s_path_segment_ok(node))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "NODE_NAME %s is not a valid node name", node);
	if (snprintf(out, size, "/api/v1/nodes/%s%s", node, suffix) >= (int)size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "node name is too long");
	return 0;
}

static int node_status_patch(struct k8s_client *c, const char *node, const char *op, int64_t limit,
			     struct pp_err *err)
{
	char path[NODE_PATH_MAX];
	char value[32];
	json_t *patch;
	int rc;

	if (node_path(path, sizeof(path), node, "/status", err) < 0)
		return -1;
	snprintf(value, sizeof(value), "%lld", (long long)limit);
	if (strcmp(op, "add") == 0)
		patch = json_pack("[{s:s, s:s, s:s}]", "op", op, "path", K8S_RESOURCE_VM_PATH, "value", value);
	else
		patch = json_pack("[{s:s, s:s}]", "op", op, "path", K8S_RESOURCE_VM_PATH);
	rc = k8s_client_request(c, "PatchNodeStatus", HTTP_PATCH, path, K8S_PATCH_JSON, patch, NULL, err);
	json_decref(patch);
	return rc;
}

int k8s_node_advertise(struct k8s_client *c, const char *node, const char *pod_uid, int64_t limit,
		       struct pp_err *err)
{
	char path[NODE_PATH_MAX];

	if (pod_uid && *pod_uid) {
		json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", K8S_ANNOT_OWNER, pod_uid);
		int rc;

		if (node_path(path, sizeof(path), node, "", err) < 0) {
			json_decref(patch);
			return -1;
		}
		rc = k8s_client_request(c, "PatchNode", HTTP_PATCH, path, K8S_PATCH_MERGE, patch, NULL, err);
		json_decref(patch);
		if (rc < 0)
			return -1;
	}
	return node_status_patch(c, node, "add", limit, err);
}

int k8s_node_is_owner(struct k8s_client *c, const char *node, const char *pod_uid, bool *ret_owner,
		      struct pp_err *err)
{
	char path[NODE_PATH_MAX];
	json_t *doc = NULL;
	const char *owner;

	if (!pod_uid || !*pod_uid) {
		*ret_owner = true;
		return 0;
	}
	if (node_path(path, sizeof(path), node, "", err) < 0 ||
	    k8s_client_request(c, "GetNode", HTTP_GET, path, NULL, NULL, &doc, err) < 0)
		return -1;
	owner = json_string_value(json_object_get(json_object_get(json_object_get(doc, "metadata"),
								  "annotations"), K8S_ANNOT_OWNER));
	*ret_owner = !owner || strcmp(owner, pod_uid) == 0;
	json_decref(doc);
	return 0;
}

int k8s_node_withdraw(struct k8s_client *c, const char *node, const char *pod_uid,
		      bool *ret_removed, struct pp_err *err)
{
	bool owner = false;

	*ret_removed = false;
	if (k8s_node_is_owner(c, node, pod_uid, &owner, err) < 0)
		return -1;
	if (!owner)
		return 0;
	if (node_status_patch(c, node, "remove", 0, err) < 0)
		return -1;
	*ret_removed = true;
	return 0;
}

/* RFC 3339 as the API server writes it ("2025-01-02T03:04:05Z"); -1 if unparsable. */
static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

	if (!end || (*end != 'Z' && *end != '.' && *end != '+' && *end != '-'))
		return -1;
	return (int64_t)timegm(&tm);
}

static bool pod_ready_since(const json_t *pod, int64_t since)
{
	const json_t *conds = json_object_get(json_object_get(pod, "status"), "conditions");
	size_t i;
	json_t *cnd;

	json_array_foreach(conds, i, cnd) {
		const char *type = json_string_value(json_object_get(cnd, "type"));
		const char *status = json_string_value(json_object_get(cnd, "status"));

		if (!type || strcmp(type, "Ready") != 0)
			continue;
		return status && strcmp(status, "True") == 0 &&
		       parse_time(json_string_value(json_object_get(cnd, "lastTransitionTime"))) >= since;
	}
	return false;
}

int k8s_node_peer_pods_ready(struct k8s_client *c, const char *node, const char *runtime_class,
			     int64_t since, bool *ret_ready, struct pp_err *err)
{
	char path[NODE_PATH_MAX];
	json_t *doc = NULL;
	json_t *pod;
	size_t i;
	bool ready = true;

	if (!k8s_path_segment_ok(node))
		return pp_err_set(err, PP_INVALID_ARGUMENT, "NODE_NAME %s is not a valid node name", node);
	snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", node);
	if (k8s_client_request(c, "ListPods", HTTP_GET, path, NULL, NULL, &doc, err) < 0)
		return -1;
	json_array_foreach(json_object_get(doc, "items"), i, pod) {
		const char *rc = json_string_value(json_object_get(json_object_get(pod, "spec"), "runtimeClassName"));

		if (rc && strcmp(rc, runtime_class) == 0 && !pod_ready_since(pod, since)) {
			ready = false;
			break;
		}
	}
	json_decref(doc);
	*ret_ready = ready;
	return 0;
}
