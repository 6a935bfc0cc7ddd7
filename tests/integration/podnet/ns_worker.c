/* The worker side inside the test's worker namespace (see ns_sides.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adaptor/apf_json.h"
#include "adaptor/podnet_worker.h"
#include "adaptor/podnet_worker_priv.h"
#include "lib/util.h"
#include "ns_sides.h"

static const struct podnet_worker_opts ns_opts = { .vxlan_port = 4789, .vxlan_min_id = 555000 };

static double ns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int ns_fail(struct nt_result *r, const struct pp_err *err)
{
	r->code = err->code;
	snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
	return -1;
}

static void ns_tunnel(const struct ns_worker_arg *a, struct podnet_tunnel *t)
{
	memset(t, 0, sizeof(*t));
	t->vni = 555000 + a->index;
	t->port = 4789;
	podnet_addr_parse(a->vm_ips, &t->remote);
	pp_strlcpy(t->pod_if, "eth0", sizeof(t->pod_if));
}

static int ns_render(const struct podnet_info *info, struct nt_result *r, struct pp_err *err)
{
	struct apf_config cfg = { .pod_namespace = "default", .pod_name = "mypod" };
	struct podnet_apf apf;
	char *text = NULL;
	int rc;

	if (podnet_worker_apf(info, &apf, err) < 0)
		return -1;
	cfg.pod_network = &apf.pn;
	rc = apf_json_render(&cfg, &text, err);
	podnet_apf_clear(&apf);
	if (rc == 0)
		pp_strlcpy(r->json, text, sizeof(r->json));
	free(text);
	return rc;
}

int ns_worker_setup(void *arg, struct nt_result *r)
{
	const struct ns_worker_arg *a = arg;
	struct pp_err err = { 0 };
	struct podnet_tunnel t;
	double start = ns_now_ms();

	ns_tunnel(a, &t);
	podnet_worker_fail_after((enum podnet_setup_step)a->fail_after);
	if (podnet_worker_setup(&ns_opts, a->pod_path, &t, &err) < 0)
		return ns_fail(r, &err);
	r->ms = ns_now_ms() - start;
	return 0;
}

int ns_worker_inspect_setup(void *arg, struct nt_result *r)
{
	const struct ns_worker_arg *a = arg;
	struct pp_err err = { 0 };
	struct podnet_info info;
	struct podnet_tunnel t;
	int rc;

	if (podnet_worker_inspect(&ns_opts, a->pod_path, a->index, &info, &err) < 0)
		return ns_fail(r, &err);
	rc = ns_render(&info, r, &err);
	if (rc == 0)
		rc = podnet_worker_tunnel(&info, a->vm_ips, &t, &err);
	podnet_info_clear(&info);
	if (rc < 0)
		return ns_fail(r, &err);
	return ns_worker_setup(arg, r);
}

int ns_worker_teardown(void *arg, struct nt_result *r)
{
	const struct ns_worker_arg *a = arg;
	struct pp_err err = { 0 };
	struct podnet_tunnel t;
	double start = ns_now_ms();

	ns_tunnel(a, &t);
	if (podnet_worker_teardown(&ns_opts, a->pod_path, &t, &err) < 0)
		return ns_fail(r, &err);
	r->ms = ns_now_ms() - start;
	return 0;
}

int ns_worker_reconcile(void *arg, struct nt_result *r)
{
	const struct ns_worker_arg *a = arg;
	enum podnet_reconcile_result res;
	struct pp_err err = { 0 };
	struct podnet_tunnel t;

	ns_tunnel(a, &t);
	if (podnet_worker_reconcile(&ns_opts, a->pod_path, &t, &res, &err) < 0)
		return ns_fail(r, &err);
	r->value = (int)res;
	return 0;
}
