/*
 * initdata: decode, check, digest and write out (see initdata.h). The digest is taken over the
 * very bytes handed to the TOML parser, after decompression, so the value attestation sees is
 * the value of the document we acted on.
 */
#include "forwarder/initdata.h"

#include <stdlib.h>
#include <string.h>

#include "forwarder/toml.h"
#include "forwarder/vm_files.h"
#include "lib/encoding.h"
#include "lib/fileutil.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "lib/util.h"

#define INITDATA_FILE_MODE 0644
#define INITDATA_QUOTE_MAX 80

const char initdata_dummy_toml[] =
	"algorithm = \"sha256\"\n"
	"version = \"" INITDATA_VERSION "\"\n"
	"\n"
	"[data]\n"
	"\"aa.toml\" = '''\n"
	"'''\n";

static const char *const initdata_algorithms[] = { "sha256", "sha384", "sha512" };
static const char *const initdata_allowed[] = { "aa.toml", "cdh.toml", "policy.rego" };

bool initdata_name_allowed(const char *name)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(initdata_allowed); i++)
		if (strcmp(name, initdata_allowed[i]) == 0)
			return true;
	return false;
}

static int initdata_string(const struct toml_kv *kv, struct pp_err *err)
{
	if (kv->value.type != TOML_STRING)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "initdata line %u: %s must be a string, not a %s", kv->line, kv->key,
				  toml_type_name(kv->value.type));
	return 0;
}

static int initdata_set_algorithm(struct initdata *id, const struct toml_kv *kv,
				  struct pp_err *err)
{
	char q[INITDATA_QUOTE_MAX];
	size_t i;

	if (initdata_string(kv, err) < 0)
		return -1;
	for (i = 0; i < PP_ARRAY_SIZE(initdata_algorithms); i++) {
		if (strcmp(kv->value.str, initdata_algorithms[i]) == 0) {
			pp_strlcpy(id->algorithm, initdata_algorithms[i], sizeof(id->algorithm));
			return 0;
		}
	}
	return pp_err_set(err, PP_INVALID_ARGUMENT,
			  "initdata line %u: unknown algorithm %s (expected sha256, sha384 or sha512)",
			  kv->line, str_quote(q, sizeof(q), kv->value.str));
}

static int initdata_check_version(const struct toml_kv *kv, struct pp_err *err)
{
	char q[INITDATA_QUOTE_MAX];

	if (initdata_string(kv, err) < 0)
		return -1;
	if (strcmp(kv->value.str, INITDATA_VERSION) != 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "initdata line %u: unsupported version %s (expected " INITDATA_VERSION ")",
				  kv->line, str_quote(q, sizeof(q), kv->value.str));
	return 0;
}

/* Top level: exactly algorithm and version. */
static int initdata_read_root(struct initdata *id, const struct toml_table *root,
			      struct pp_err *err)
{
	bool have_version = false;
	char q[INITDATA_QUOTE_MAX];
	size_t i;

	for (i = 0; i < root->n_kvs; i++) {
		const struct toml_kv *kv = &root->kvs[i];

		if (strcmp(kv->key, "algorithm") == 0) {
			if (initdata_set_algorithm(id, kv, err) < 0)
				return -1;
		} else if (strcmp(kv->key, "version") == 0) {
			if (initdata_check_version(kv, err) < 0)
				return -1;
			have_version = true;
		} else {
			return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata line %u: unknown key %s",
					  kv->line, str_quote(q, sizeof(q), kv->key));
		}
	}
	if (!id->algorithm[0])
		return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata: algorithm is missing");
	if (!have_version)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata: version is missing");
	return 0;
}

/* [data]: every value a string. */
static int initdata_read_data(struct initdata *id, const struct toml_table *t,
			      struct pp_err *err)
{
	size_t i;

	id->data = pp_xcalloc(t->n_kvs ? t->n_kvs : 1, sizeof(*id->data));
	for (i = 0; i < t->n_kvs; i++) {
		const struct toml_kv *kv = &t->kvs[i];

		if (kv->value.type != TOML_STRING) {
			char q[INITDATA_QUOTE_MAX];
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "initdata line %u: data entry %s must be a string, not a %s",
					  kv->line, str_quote(q, sizeof(q), kv->key),
					  toml_type_name(kv->value.type));
		}
		id->data[i].name = pp_xstrdup(kv->key);
		id->data[i].content = pp_xstrndup(kv->value.str, kv->value.str_len);
		id->data[i].len = kv->value.str_len;
		id->n_data++;
	}
	return 0;
}

static int initdata_read_doc(struct initdata *id, const struct toml_doc *doc, struct pp_err *err)
{
	const struct toml_table *data = NULL;
	size_t i;

	if (initdata_read_root(id, toml_table_get(doc, NULL), err) < 0)
		return -1;
	for (i = 1; i < doc->n_tables; i++) {
		char q[INITDATA_QUOTE_MAX];

		if (strcmp(doc->tables[i].name, "data") != 0)
			return pp_err_set(err, PP_INVALID_ARGUMENT, "initdata line %u: unknown table [%s]",
					  doc->tables[i].line,
					  str_quote(q, sizeof(q), doc->tables[i].name));
		data = &doc->tables[i];
	}
	if (!data) {
		id->data = NULL;
		return 0;
	}
	return initdata_read_data(id, data, err);
}

int initdata_parse_toml(const char *toml, size_t len, struct initdata **ret, struct pp_err *err)
{
	struct toml_doc *doc = NULL;
	struct initdata *id;

	if (len > INITDATA_MAX_TOML)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "initdata too large: %zu bytes (limit %d)",
				  len, INITDATA_MAX_TOML);
	if (toml_parse(toml, len, &doc, err) < 0)
		return pp_err_prefix(err, "initdata");
	id = pp_xcalloc(1, sizeof(*id));
	if (initdata_read_doc(id, doc, err) < 0 ||
	    digest_hex(id->algorithm, toml, len, id->digest, err) < 0) {
		toml_free(doc);
		initdata_free(id);
		return -1;
	}
	toml_free(doc);
	*ret = id;
	return 0;
}

int initdata_decode(const char *text, size_t len, struct initdata **ret, struct pp_err *err)
{
	uint8_t *gz = NULL, *toml = NULL;
	size_t gz_len, toml_len;
	int r = -1;

	if (len > INITDATA_MAX_ENCODED)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED,
				  "initdata too large: %zu bytes of base64 (limit %d)", len,
				  INITDATA_MAX_ENCODED);
	if (base64_decode(text, len, &gz, &gz_len, err) < 0) {
		pp_err_prefix(err, "initdata is not valid base64");
		goto out;
	}
	if (gzip_decompress(gz, gz_len, INITDATA_MAX_TOML, &toml, &toml_len, err) < 0) {
		pp_err_prefix(err, "initdata is not valid gzip");
		goto out;
	}
	r = initdata_parse_toml((const char *)toml, toml_len, ret, err);
out:
	free(gz);
	free(toml);
	return r;
}

int initdata_encode(const char *toml, size_t len, char **ret, struct pp_err *err)
{
	uint8_t *gz;
	size_t gz_len;

	if (gzip_compress(toml, len, &gz, &gz_len, err) < 0)
		return -1;
	*ret = base64_encode(gz, gz_len);
	free(gz);
	return 0;
}

void initdata_free(struct initdata *id)
{
	size_t i;

	if (!id)
		return;
	for (i = 0; i < id->n_data; i++) {
		free(id->data[i].name);
		free(id->data[i].content);
	}
	free(id->data);
	free(id);
}

/* Reads /run/peerpod/initdata, first writing the dummy document when there is none. */
static int initdata_load(const char *root, FILE *report, char **ret, size_t *ret_len,
			 struct pp_err *err)
{
	char path[VM_PATH_MAX];
	struct pp_err rerr = { 0 };
	uint8_t *buf;
	char *enc;

	if (vm_path_join(path, sizeof(path), root, VM_INITDATA, err) < 0)
		return -1;
	if (file_read_all(path, INITDATA_MAX_ENCODED, &buf, ret_len, &rerr) == 0) {
		*ret = (char *)buf;
		return 0;
	}
	if (rerr.code != PP_NOT_FOUND)
		return pp_err_set(err, rerr.code, "%s", rerr.msg);
	log_info("no initdata, writing the default document", "path=%s", VM_INITDATA);
	if (initdata_encode(initdata_dummy_toml, strlen(initdata_dummy_toml), &enc, err) < 0)
		return -1;
	if (vm_file_write(root, VM_INITDATA, enc, strlen(enc), INITDATA_FILE_MODE, report, err) < 0) {
		free(enc);
		return -1;
	}
	*ret = enc;
	*ret_len = strlen(enc);
	return 0;
}

static int initdata_write_entries(const struct initdata *id, const char *root, FILE *report,
				  struct pp_err *err)
{
	char path[VM_PATH_MAX], q[INITDATA_QUOTE_MAX];
	size_t i;

	for (i = 0; i < id->n_data; i++) {
		const struct initdata_entry *e = &id->data[i];

		if (!initdata_name_allowed(e->name)) {
			log_warn("skipping initdata entry not in the allow-list", "name=%s",
				 str_quote(q, sizeof(q), e->name));
			continue;
		}
		snprintf(path, sizeof(path), VM_PEERPOD_DIR "/%s", e->name);
		if (vm_file_write(root, path, e->content, e->len, INITDATA_FILE_MODE, report, err) < 0)
			return -1;
	}
	return 0;
}

int initdata_provision(const char *root, FILE *report, struct pp_err *err)
{
	struct initdata *id = NULL;
	char *text = NULL;
	size_t len;
	int r = -1;

	if (initdata_load(root, report, &text, &len, err) < 0)
		return -1;
	if (initdata_decode(text, len, &id, err) < 0 ||
	    initdata_write_entries(id, root, report, err) < 0 ||
	    vm_file_write(root, VM_INITDATA_DIGEST, id->digest, strlen(id->digest),
			  INITDATA_FILE_MODE, report, err) < 0)
		goto out;
	log_info("initdata processed", "algorithm=%s digest=%s", id->algorithm, id->digest);
	r = 0;
out:
	free(text);
	initdata_free(id);
	return r;
}
