/* The VM side inside the test's VM namespace (see ns_sides.h): apf.json text -> podnet_vm. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "forwarder/apf_config.h"
#include "forwarder/podnet_vm.h"
#include "ns_sides.h"

static double ns_vm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int ns_vm_fail(struct nt_result *r, const struct pp_err *err)
{
	r->code = err->code;
	snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
	return -1;
}

static int ns_vm_call(const struct ns_vm_arg *a, bool teardown, struct nt_result *r)
{
	struct podnet_vm_opts o = { .podns_path = a->podns, .wait_ms = a->wait_ms ? a->wait_ms : 5000,
				    .poll_ms = 100 };
	struct apf_config *cfg = NULL;
	struct podnet_info info;
	struct pp_err err = { 0 };
	bool configured = false;
	double start = ns_vm_now_ms();
	int rc;

	if (apf_config_parse(a->json, strlen(a->json), &cfg, &err) < 0)
		return ns_vm_fail(r, &err);
	if (!teardown) {
		rc = podnet_vm_setup(&o, &cfg->pod_network, &configured, &err);
		r->value = configured;
	} else {
		rc = podnet_vm_info(&cfg->pod_network, &info, &err);
		if (rc == 0) {
			rc = podnet_vm_teardown(&o, &info, &err);
			podnet_info_clear(&info);
		}
	}
	apf_config_free(cfg);
	if (rc < 0)
		return ns_vm_fail(r, &err);
	r->ms = ns_vm_now_ms() - start;
	return 0;
}

int ns_vm_setup(void *arg, struct nt_result *r)
{
	return ns_vm_call(arg, false, r);
}

int ns_vm_teardown(void *arg, struct nt_result *r)
{
	return ns_vm_call(arg, true, r);
}
