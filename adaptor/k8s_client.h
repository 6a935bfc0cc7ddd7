/*
 * A small Kubernetes API client on lib/http (libcurl) and jansson, for the few calls the daemon
 * makes (node patches, Pod/ServiceAccount/Secret reads, PeerPod create/patch, Pod list).
 *
 * The one idea: a client is only "where and who" — the API server URL, the CA, and the
 * credentials — read once from the in-cluster service account or from a kubeconfig file; every
 * call is one k8s_client_request() with a JSON body in and a JSON document out. The
 * service-account token is re-read whenever its file changes (kubelet rotates projected tokens),
 * so a long-running daemon never sends an expired token. API errors come back as a pp_err that
 * names the operation, the HTTP status and the API server's own message (Status.message).
 *
 * Thread-safe: any number of worker threads may call k8s_client_request() at once. Never call
 * it from the loop thread.
 */
#ifndef PP_ADAPTOR_K8S_CLIENT_H
#define PP_ADAPTOR_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lib/err.h"
#include "lib/http.h"

#define K8S_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_TOKEN_MAX 16384          /* bytes of a bearer token file */
#define K8S_KUBECONFIG_MAX (1024 * 1024)
#define K8S_RESPONSE_MAX (16u * 1024 * 1024)   /* a Pod list on a busy node */
#define K8S_TIMEOUT_MS 30000u

#define K8S_PATCH_JSON "application/json-patch+json"
#define K8S_PATCH_MERGE "application/merge-patch+json"
#define K8S_JSON "application/json"

struct k8s_client;

/* In-cluster configuration: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, and
 * <sa_dir>/token, <sa_dir>/ca.crt, <sa_dir>/namespace (sa_dir NULL = K8S_SA_DIR_DEFAULT).
 * FAILED_PRECONDITION when not running in a cluster (variables or token missing). */
struct k8s_client *k8s_client_new_incluster(const char *sa_dir, struct pp_err *err);

/* A kubeconfig file (the fields of its current-context): cluster server,
 * certificate-authority or certificate-authority-data, insecure-skip-tls-verify; user token,
 * tokenFile, or client-certificate(-data) + client-key(-data). Inline data is written to files
 * (0600) under scratch_dir, which must be private to this process. An unsupported
 * authentication (exec, auth-provider, username/password) is an error that names it. */
struct k8s_client *k8s_client_new_kubeconfig(const char *path, const char *scratch_dir,
					     struct pp_err *err);
void k8s_client_free(struct k8s_client *c);

const char *k8s_client_server(const struct k8s_client *c);
/* The namespace of the service account (in-cluster), else "" */
const char *k8s_client_namespace(const struct k8s_client *c);

/* One call. path starts with "/api/" or "/apis/" and is already escaped where needed
 * (k8s_path_segment_ok checks a segment). body NULL = none; content_type NULL = K8S_JSON.
 * On 2xx *ret (if ret not NULL) receives the decoded JSON document (NULL for an empty body).
 * Otherwise -1, err = "k8s <op> <path>: HTTP <status>: <Status.message>" with the code from
 * http_status_to_code() (404 = PP_NOT_FOUND, 409 = PP_ABORTED / ALREADY_EXISTS). */
int k8s_client_request(struct k8s_client *c, const char *op, enum http_method method,
		       const char *path, const char *content_type, const json_t *body,
		       json_t **ret, struct pp_err *err);

/* Counters of the client's HTTP layer (the metrics endpoint). */
struct http_client *k8s_client_http(struct k8s_client *c);

/* true if s is a valid name segment for a URL path (DNS-1123 subdomain characters only). */
bool k8s_path_segment_ok(const char *s);

#endif
