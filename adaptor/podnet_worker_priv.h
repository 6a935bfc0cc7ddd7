/*
 * Test-only access to podnet_worker.c: make Setup fail after a given step, to check that
 * everything made before it is undone.
 */
#ifndef PP_ADAPTOR_PODNET_WORKER_PRIV_H
#define PP_ADAPTOR_PODNET_WORKER_PRIV_H

enum podnet_setup_step {
	PODNET_STEP_NONE = 0,
	PODNET_STEP_RULES,        /* NOTRACK rules added */
	PODNET_STEP_LINK,         /* vxlan1 created in the pod netns */
	PODNET_STEP_UP,           /* vxlan1 up */
	PODNET_STEP_TC_POD,       /* redirect pod interface -> vxlan1 */
	PODNET_STEP_TC_VXLAN,     /* redirect vxlan1 -> pod interface (the last) */
};

/* Setup fails with INTERNAL right after this step (PODNET_STEP_NONE: never). Not thread-safe:
 * tests only. */
void podnet_worker_fail_after(enum podnet_setup_step step);

#endif
