/*
 * The compiled-in provider drivers. This is the only file of the core that names a driver; it
 * is built as its own library (ppadaptor_registry) so unit tests link the core without drivers.
 * Adding a provider: declare its ops here and list it in the table.
 */
#include "adaptor/provider.h"
#include "adaptor/provider_priv.h"

extern const struct provider_ops local_provider_ops;
extern const struct provider_ops libvirt_provider_ops;
extern const struct provider_ops azure_provider_ops;
extern const struct provider_ops gcp_provider_ops;
extern const struct provider_ops aws_provider_ops;

const struct provider_ops *const provider_registry[] = {
	&local_provider_ops,
	&libvirt_provider_ops,
	&azure_provider_ops,
	&gcp_provider_ops,
	&aws_provider_ops,
	NULL,
};

const struct provider_ops *provider_lookup(const char *name)
{
	return provider_lookup_in(provider_registry, name);
}
