/*
 * Operator commands that do not need the daemon running:
 *   cloud-api-adaptor ls                   the sandboxes in state.db: states, instances, ages
 *                                          (read-only; safe while the daemon runs)
 *   cloud-api-adaptor gc <provider> [--dry-run]
 *                                          deletes this node's instances that no sandbox refers
 *                                          to, and the VMs kept by KEEP_FAILED_VMS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adaptor/daemon.h"
#include "adaptor/sandbox_db.h"
#include "adaptor/store.h"
#include "lib/log.h"
#include "lib/util.h"

static void format_age(int64_t secs, char *buf, size_t size)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, size, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, size, "%lldm", (long long)(secs / 60));
	else if (secs < 172800)
		snprintf(buf, size, "%lldh", (long long)(secs / 3600));
	else
		snprintf(buf, size, "%lldd", (long long)(secs / 86400));
}

int admin_ls(const char *state_dir, FILE *out, struct pp_err *err)
{
	struct store *st = store_open_readonly(state_dir, err);
	struct sandbox_list rows = { 0 };
	int64_t now = pp_unix_time();

	if (!st)
		return -1;
	if (store_sandbox_list(st, SANDBOX_STATE_ANY, &rows, err) < 0) {
		store_close(st);
		return -1;
	}
	fprintf(out, "%-16s %-30s %-9s %-34s %-22s %-15s %s\n", "SANDBOX", "POD", "STATE",
		"INSTANCE", "ID", "IP", "AGE");
	for (size_t i = 0; i < rows.n; i++) {
		const struct sandbox_row *r = &rows.items[i];
		char pod[600], age[32], ip[64];
		const char *comma = strchr(r->ips, ',');
		size_t iplen = comma ? (size_t)(comma - r->ips) : strlen(r->ips);

		snprintf(pod, sizeof(pod), "%s/%s", r->pod_namespace, r->pod_name);
		snprintf(ip, sizeof(ip), "%.*s", (int)(iplen < sizeof(ip) ? iplen : sizeof(ip) - 1), r->ips);
		format_age(now - r->created_at, age, sizeof(age));
		fprintf(out, "%-16.16s %-30s %-9s %-34s %-22s %-15s %s%s%s\n", r->sandbox_id, pod,
			sandbox_state_name(r->state), r->instance_name, *r->instance_id ? r->instance_id : "-",
			*ip ? ip : "-", age, *r->error ? "  error: " : "", r->error);
	}
	fprintf(out, "%zu sandbox%s\n", rows.n, rows.n == 1 ? "" : "es");
	sandbox_list_free(&rows);
	store_close(st);
	return 0;
}

/* Deletes the instances of rows that KEEP_FAILED_VMS left, then their rows. */
static int gc_failed_rows(struct provider *prov, struct store *st, bool dry_run, struct pp_err *err)
{
	const struct provider_ops *ops = provider_get_ops(prov);
	struct sandbox_list rows = { 0 };
	int count = 0;

	if (store_sandbox_list(st, SANDBOX_FAILED, &rows, err) < 0)
		return -1;
	for (size_t i = 0; i < rows.n; i++) {
		const struct sandbox_row *r = &rows.items[i];
		struct pp_err e = { 0 };

		count++;
		if (dry_run) {
			printf("would delete %s (id %s, failed sandbox %s)\n", r->instance_name,
			       *r->instance_id ? r->instance_id : "-", r->sandbox_id);
			continue;
		}
		if (ops->delete_instance(prov, r->instance_id, r->instance_name, NULL, &e) < 0) {
			fprintf(stderr, "deleting %s failed: %s\n", r->instance_name, e.msg);
			continue;
		}
		store_sandbox_delete(st, r->sandbox_id, NULL);
		printf("deleted %s (failed sandbox %s)\n", r->instance_name, r->sandbox_id);
	}
	sandbox_list_free(&rows);
	return count;
}

int admin_gc(struct config *cfg, const struct provider_ops *ops, bool dry_run, struct pp_err *err)
{
	const char *state_dir = config_str(cfg, "STATE_DIR");
	const char *owner = config_str(cfg, "OWNER_ID");
	char host[128] = "";
	struct provider *prov = NULL;
	struct store *st = NULL;
	int n1, n2, rc = -1;

	if (!*owner)
		owner = config_str(cfg, "NODE_NAME");
	if (!*owner) {
		gethostname(host, sizeof(host) - 1);
		owner = host;
	}
	st = store_open(state_dir, err);
	if (!st)
		goto out;
	prov = provider_new(ops, cfg, owner, state_dir, err);
	if (!prov || provider_start(prov, err) < 0)
		goto out;
	n1 = gc_failed_rows(prov, st, dry_run, err);
	if (n1 < 0)
		goto out;
	n2 = reaper_run_once(prov, st, 0, dry_run, NULL, err);
	if (n2 < 0)
		goto out;
	printf("%d instance%s %s\n", n1 + n2, n1 + n2 == 1 ? "" : "s",
	       dry_run ? "would be deleted" : "deleted or attempted");
	rc = 0;
out:
	provider_free(prov);
	store_close(st);
	return rc;
}
