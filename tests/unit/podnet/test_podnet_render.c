/* podnet_info -> apf.json text through the adaptor's path (podnet_worker_apf, apf_json_render). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "adaptor/apf_json.h"
#include "adaptor/podnet_worker.h"
#include "test_podnet_render.h"

char *render_worker(const struct podnet_info *info)
{
	struct apf_config cfg = { .pod_namespace = "default", .pod_name = "mypod" };
	struct podnet_apf apf;
	struct pp_err err = { 0 };
	char *text = NULL;

	assert_int_equal(podnet_worker_apf(info, &apf, &err), 0);
	cfg.pod_network = &apf.pn;
	assert_int_equal(apf_json_render(&cfg, &text, &err), 0);
	podnet_apf_clear(&apf);
	return text;
}
