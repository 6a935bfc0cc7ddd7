/* The worker side's rendering for test_podnet_json.c (its own file: see there). */
#ifndef PP_TEST_PODNET_RENDER_H
#define PP_TEST_PODNET_RENDER_H

#include "podnet/podnet.h"

/* apf.json text for info with pod-namespace "default" and pod-name "mypod"; free() it. */
char *render_worker(const struct podnet_info *info);

#endif
