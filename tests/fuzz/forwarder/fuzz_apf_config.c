/* Fuzz target: apf.json decoding (forwarder/apf_config.c). */
#include <stddef.h>
#include <stdint.h>

#include "forwarder/apf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apf_config *cfg = NULL;

	if (apf_config_parse((const char *)data, size, &cfg, NULL) < 0)
		return 0;
	if (cfg->pod_network.n_routes > APF_MAX_ROUTES ||
	    cfg->pod_network.n_neighbors > APF_MAX_NEIGHBORS)
		__builtin_trap();
	apf_config_free(cfg);
	return 0;
}
