/*
 * What a pod VM is told at boot: apf.json (with its TLS material) and the rest of the
 * user-data, rendered at CreateVM so that a user-data that is too large for the provider is
 * refused before anything is created.
 */
#ifndef PP_ADAPTOR_VMCONFIG_H
#define PP_ADAPTOR_VMCONFIG_H

#include "adaptor/annotations.h"
#include "adaptor/daemon.h"

/* Also inspects the pod network (sandbox_net_prepare), which it keeps on sb. */
int vmconfig_render(struct daemon *d, struct sandbox *sb, const struct pod_annotations *ann,
		    char **ret_text, size_t *ret_len, struct pp_err *err);
/* After a restart: the user-data rendered at CreateVM, from the state dir. */
int vmconfig_load(struct daemon *d, const struct sandbox *sb, char **ret_text, size_t *ret_len,
		  struct pp_err *err);

#endif
