/*
 * The daemon's common options (upstream's flags and environment variables, spec §7.1, plus
 * ours). A provider's own options come from its provider_ops.options table; both tables feed
 * one struct config (lib/config.h).
 */
#ifndef PP_ADAPTOR_OPTIONS_H
#define PP_ADAPTOR_OPTIONS_H

#include "lib/config.h"

extern const struct config_option adaptor_options[];

#define ADAPTOR_DEFAULT_CONFIG_DIR "/etc/cloud-api-adaptor"
#define ADAPTOR_DEFAULT_STATE_DIR "/var/lib/cloud-api-adaptor"

#endif
