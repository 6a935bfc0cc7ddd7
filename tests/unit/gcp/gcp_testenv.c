/*
 * The gcp tests' environment (see gcp_testenv.h): key generation with OpenSSL, the fake as a
 * child process (python3 fake_gce.py --port 0 --port-file), control calls through lib/http.
 */
#include "gcp_testenv.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "lib/fileutil.h"
#include "lib/util.h"
#include "providers/gcp/gcp_priv.h"

static char *te_priv_pem, *te_pub_pem;

static char *te_bio_text(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = pp_xmalloc((size_t)n + 1);

	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static void te_keygen(void)
{
	EVP_PKEY *k;
	BIO *b;

	if (te_priv_pem)
		return;
	k = EVP_RSA_gen(2048);
	if (!k)
		abort();
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	te_priv_pem = te_bio_text(b);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, k);
	te_pub_pem = te_bio_text(b);
	BIO_free(b);
	EVP_PKEY_free(k);
}

const char *te_private_pem(void)
{
	te_keygen();
	return te_priv_pem;
}

const char *te_public_pem(void)
{
	te_keygen();
	return te_pub_pem;
}

char *te_key_json(const char *pem, const char *token_uri)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
			      "project_id", TE_PROJECT, "private_key_id", TE_KID, "private_key", pem,
			      "client_email", TE_EMAIL, "token_uri", token_uri);
	char *s = json_dumps(o, JSON_INDENT(2));

	json_decref(o);
	return s;
}

static int te_wait_port(struct testenv *te, const char *file)
{
	for (int i = 0; i < 200; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		struct pp_err err = { 0 };
		int64_t port;

		if (file_read_all(file, 64, &data, &len, &err) == 0) {
			str_trim((char *)data);
			if (parse_int64((char *)data, &port) == 0 && port > 0 && port < 65536) {
				te->port = (int)port;
				free(data);
				return 0;
			}
			free(data);
		}
		usleep(50 * 1000);
	}
	return -1;
}

int te_start(struct testenv *te, bool metadata)
{
	char pub[128], portf[128], uri[128];
	struct http_client_config hc = { .name = "gcp-test-ctl", .max_attempts = 1 };
	struct pp_err err = { 0 };

	memset(te, 0, sizeof(*te));
	snprintf(te->dir, sizeof(te->dir), "/tmp/pp.gcpXXXXXX");
	if (!mkdtemp(te->dir))
		return -1;
	snprintf(pub, sizeof(pub), "%s/pub.pem", te->dir);
	snprintf(portf, sizeof(portf), "%s/port", te->dir);
	if (file_write_atomic(pub, te_public_pem(), strlen(te_public_pem()), 0600, &err) < 0)
		return -1;
	te->fake_pid = fork();
	if (te->fake_pid == 0) {
		execlp(PYTHON3, PYTHON3, FAKE_GCE_PY, "--project", TE_PROJECT, "--zone", TE_ZONE,
		       "--pubkey", pub, "--client-email", TE_EMAIL, "--kid", TE_KID, "--port-file", portf,
		       metadata ? "--metadata" : NULL, (char *)NULL);
		_exit(127);
	}
	if (te->fake_pid < 0 || te_wait_port(te, portf) < 0) {
		fprintf(stderr, "fake_gce.py did not start\n");
		return -1;
	}
	snprintf(te->base, sizeof(te->base), "http://127.0.0.1:%d", te->port);
	snprintf(uri, sizeof(uri), "%s/token", te->base);
	te->key_json = te_key_json(te_private_pem(), uri);
	te->ctl = http_client_new(&hc, &err);
	return te->ctl ? 0 : -1;
}

void te_stop(struct testenv *te)
{
	json_t *st;

	if (te->prov)
		provider_free(te->prov);
	te->prov = NULL;
	config_free(te->cfg);
	te->cfg = NULL;
	if (te->ctl && te->fake_pid > 0 && !te->expect_violations) {
		st = te_state(te);
		json_t *v = json_object_get(st, "violations");

		if (json_array_size(v) > 0) {
			char *s = json_dumps(v, JSON_INDENT(2));

			fprintf(stderr, "fake_gce violations:\n%s\n", s);
			free(s);
			json_decref(st);
			kill(te->fake_pid, SIGTERM);
			abort();
		}
		json_decref(st);
	}
	if (te->fake_pid > 0) {
		kill(te->fake_pid, SIGTERM);
		waitpid(te->fake_pid, NULL, 0);
	}
	http_client_free(te->ctl);
	free(te->key_json);
	rm_rf(te->dir, NULL);
	memset(te, 0, sizeof(*te));
}

struct config *te_config(struct testenv *te, const char *const *kv)
{
	const struct config_option *tables[] = { gcp_options, NULL };
	struct pp_err err = { 0 };
	struct config *cfg = config_new(tables, &err);
	char v[256];

	if (!cfg)
		abort();
#define TE_SET(k, val) do { if (config_set(cfg, k, val, &err) < 0) { fprintf(stderr, "%s\n", err.msg); abort(); } } while (0)
	TE_SET("GCP_PROJECT_ID", TE_PROJECT);
	TE_SET("GCP_ZONE", TE_ZONE);
	TE_SET("PODVM_IMAGE_NAME", "podvm");
	TE_SET("GCP_NETWORK", "pp-net");
	TE_SET("GCP_CONFIDENTIAL_TYPE", "SEV_SNP");
	TE_SET("GCP_MACHINE_TYPE", "n2d-standard-2");
	TE_SET("GCP_INSTANCE_TYPES", "n2d-standard-2,n2d-standard-4,n2d-highmem-2");
	TE_SET("GCP_CREDENTIALS", te->key_json);
	TE_SET("GCP_POLL_INTERVAL", "20ms");
	snprintf(v, sizeof(v), "%s/compute/v1", te->base);
	TE_SET("GCP_COMPUTE_ENDPOINT", v);
	snprintf(v, sizeof(v), "%s/v3", te->base);
	TE_SET("GCP_RESOURCE_MANAGER_ENDPOINT", v);
	TE_SET("GCP_METADATA_ENDPOINT", te->base);
	for (; kv && *kv; kv++) {
		const char *eq = strchr(*kv, '=');
		char key[128];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
		TE_SET(key, eq + 1);
	}
#undef TE_SET
	return cfg;
}

struct provider *te_provider(struct testenv *te, struct config *cfg, const char *owner,
			     struct pp_err *err)
{
	struct provider *p = provider_new(&gcp_provider_ops, cfg, owner, te->dir, err);

	if (!p)
		return NULL;
	if (provider_start(p, err) < 0) {
		provider_free(p);
		return NULL;
	}
	return p;
}

static json_t *te_call(struct testenv *te, enum http_method m, const char *path, const char *body)
{
	struct http_request req = { 0 };
	struct http_response r = HTTP_RESPONSE_INIT;
	struct pp_err err = { 0 };
	char url[256];
	json_t *j;

	snprintf(url, sizeof(url), "%s/_fake/%s", te->base, path);
	req.op = "ctl";
	req.method = m;
	req.url = url;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.content_type = body ? "application/json" : NULL;
	if (http_do(te->ctl, &req, &r, &err) < 0) {
		fprintf(stderr, "fake control %s: %s\n", path, err.msg);
		abort();
	}
	j = json_loads(http_response_text(&r), 0, NULL);
	http_response_free(&r);
	return j;
}

void te_ctl(struct testenv *te, const char *path, const char *json_body)
{
	json_decref(te_call(te, HTTP_POST, path, json_body ? json_body : "{}"));
}

json_t *te_state(struct testenv *te)
{
	return te_call(te, HTTP_GET, "state", NULL);
}

int te_count(struct testenv *te, const char *name)
{
	json_t *st = te_state(te);
	int n = (int)json_integer_value(json_object_get(json_object_get(st, "counts"), name));

	json_decref(st);
	return n;
}
