/*
 * Where things live inside the pod VM (spec §5.2) and the one way the in-VM programs write a
 * provisioned file. Every in-VM path is absolute and is placed under a "root" prefix, which is ""
 * (meaning "/") in the VM and a temporary directory in tests and local runs, so the same code
 * provisions a real VM and a test sandbox.
 */
#ifndef PP_FORWARDER_VM_FILES_H
#define PP_FORWARDER_VM_FILES_H

#include <stddef.h>
#include <stdio.h>

#include "lib/err.h"

#define VM_PEERPOD_DIR        "/run/peerpod"
#define VM_APF_JSON           "/run/peerpod/apf.json"
#define VM_AUTH_JSON          "/run/peerpod/auth.json"
#define VM_INITDATA           "/run/peerpod/initdata"
#define VM_INITDATA_DIGEST    "/run/peerpod/initdata.digest"
#define VM_SCRATCH_MARKER     "/run/peerpod/scratch-space.marker"
#define VM_AA_TOML            "/run/peerpod/aa.toml"
#define VM_CDH_TOML           "/run/peerpod/cdh.toml"
#define VM_POLICY_REGO        "/run/peerpod/policy.rego"
#define VM_CIDATA_DIR         "/media/cidata"
#define VM_DMI_SYS_VENDOR     "/sys/class/dmi/id/sys_vendor"

#define VM_PATH_MAX 4096
#define VM_DIR_MODE 0755

/* out = root + path (root NULL or "" means "/"; a trailing '/' on root is ignored). path must
 * be absolute. -1 when the result does not fit in size bytes. */
int vm_path_join(char *out, size_t size, const char *root, const char *path, struct pp_err *err);

/* Writes data to root+path atomically with mode, creating missing parent directories 0755,
 * and reports "wrote <path> (<n> bytes, mode 0644)" on report (may be NULL). */
int vm_file_write(const char *root, const char *path, const void *data, size_t len,
		  unsigned mode, FILE *report, struct pp_err *err);

#endif
