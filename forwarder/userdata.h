/*
 * The user-data document the adaptor hands a pod VM (spec §5.1, §5.3): `#cloud-config` YAML with
 * exactly one key, `write_files`, a list of {path, content}. Inside the TEE this text comes from
 * the host, so the parser is strict: any other key at any level, YAML anchors/aliases/tags,
 * several documents or a path that is not a normalised absolute path ("/run/peerpod/../x") is an
 * error naming the offending thing. Only allow-listed paths are ever written (others are logged
 * and skipped), each with a size limit.
 *
 * Deliberate difference from upstream: /run/peerpod/apf.json carries the forwarder's TLS private
 * key and /run/peerpod/auth.json registry credentials, so both are written 0600 (upstream
 * writes every file 0644). Other files are 0644, new directories 0755.
 */
#ifndef PP_FORWARDER_USERDATA_H
#define PP_FORWARDER_USERDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/err.h"

#define USERDATA_MAX_SIZE   (1024 * 1024)  /* the whole document */
#define USERDATA_MAX_FILE   (512 * 1024)   /* one file's content */
#define USERDATA_MAX_FILES  32
#define USERDATA_MAX_PATH   256

#define USERDATA_HEADER "#cloud-config"

struct userdata_file {
	char *path;      /* normalised absolute path (checked by the parser) */
	char *content;   /* NUL-terminated; "" when the content key is absent */
	size_t content_len;
};

struct userdata {
	struct userdata_file *files;
	size_t n_files;
};

/* Parses len bytes of user-data (a pure function, fuzzed). On success *ret owns the result. */
int userdata_parse(const char *buf, size_t len, struct userdata **ret, struct pp_err *err);
void userdata_free(struct userdata *ud);

/* True when path is one of the files the VM accepts from user-data. */
bool userdata_path_allowed(const char *path);
/* Mode a written file gets: 0600 for apf.json (a private key) and auth.json (registry
 * credentials), else 0644. */
unsigned userdata_file_mode(const char *path);

/* Writes the allow-listed files under root ("" or NULL for "/"), creating directories 0755.
 * Each file written is reported as one line on report (may be NULL); skipped ones are logged.
 * Stops at the first failure. */
int userdata_write_files(const struct userdata *ud, const char *root, FILE *report,
			 struct pp_err *err);

#endif
