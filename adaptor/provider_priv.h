/*
 * Provider framework internals that tests and the registry need but drivers must not use.
 */
#ifndef PP_ADAPTOR_PROVIDER_PRIV_H
#define PP_ADAPTOR_PROVIDER_PRIV_H

#include "adaptor/provider.h"

/* Looks name up in a NULL-terminated table (provider_lookup() uses provider_registry). */
const struct provider_ops *provider_lookup_in(const struct provider_ops *const *table,
					      const char *name);

#endif
