/*
 * Restart reconcile and the reaper (DESIGN idea 2; docs/internals/lifecycle.md).
 *
 * On start, every row of state.db is brought back:
 *   created   -> in the table, waiting for StartVM (its user-data is on disk);
 *   running   -> in the table, its agent socket listening again and its proxy re-dialling the
 *                VM with the persisted TLS identities: the shim's agent calls work again;
 *   starting  -> the StartVM that owned it died with the old process: its instance is deleted
 *                (by id, else by name) and the row marked failed, so that StopVM finds it;
 *   stopping  -> the deletion is finished and the row removed;
 *   failed    -> in the table for StopVM.
 *
 * The reaper lists the instances this node owns (owner tag) and deletes those that no row
 * refers to, once they are older than the grace period; it also retries deletions of rows left
 * in "stopping". Instances of other owners are never listed, so never touched.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adaptor/daemon.h"
#include "adaptor/lifecycle.h"
#include "adaptor/metrics.h"
#include "adaptor/sandbox_db.h"
#include "adaptor/sandbox_net.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/util.h"

#define REAPER_FIRST_DELAY_MS 30000     /* first pass after start-up */
#define REAPER_SEEN_MAX 4096

struct finish_job {
	struct daemon *d;
	struct sandbox *sb;
	enum sandbox_state from;
	bool removed;
};

static void finish_done(void *arg)
{
	struct finish_job *j = arg;
	struct daemon *d = j->d;

	pthread_mutex_lock(&d->lock);
	if (j->removed) {
		sandbox_table_remove(&d->sandboxes, j->sb->id);
		pthread_mutex_unlock(&d->lock);
		sandbox_free(j->sb);
	} else {
		j->sb->busy = false;
		pthread_mutex_unlock(&d->lock);
	}
	free(j);
}

/* Worker: finishes what a dead process left half-done for one sandbox. */
static void finish_run(void *arg)
{
	struct finish_job *j = arg;
	struct daemon *d = j->d;
	struct sandbox *sb = j->sb;
	struct pp_err err = { 0 };
	char dir[2 * SANDBOX_PATH_MAX];
	int rc;

	rc = provider_get_ops(d->provider)->delete_instance(d->provider, sb->instance_id,
							    sb->instance_name, d->shutdown, &err);
	if (rc == 0)
		sandbox_net_teardown(d, sb);
	if (rc < 0) {
		log_error("reconcile: deleting an instance failed; the reaper will retry",
			  "sandbox=%s instance=%s error=\"%s\"", sb->id, sb->instance_name, err.msg);
	} else if (j->from == SANDBOX_STARTING) {
		sandbox_db_transition(d, sb->id, SANDBOX_STARTING, SANDBOX_FAILED,
				      "the adaptor restarted during StartVM; the instance was deleted", NULL);
		pthread_mutex_lock(&d->lock);
		sb->state = SANDBOX_FAILED;
		pthread_mutex_unlock(&d->lock);
		log_info("reconcile: half-started sandbox cleaned up", "sandbox=%s instance=%s", sb->id,
			 sb->instance_name);
	} else {
		if (sandbox_db_remove(d, sb->id, &err) < 0)
			log_error("reconcile: removing a row failed", "sandbox=%s error=\"%s\"", sb->id, err.msg);
		snprintf(dir, sizeof(dir), "%s/%s", d->pods_dir, sb->id);
		rm_rf(dir, NULL);
		j->removed = true;
		log_info("reconcile: interrupted StopVM finished", "sandbox=%s instance=%s", sb->id,
			 sb->instance_name);
	}
	loop_post(d->loop, finish_done, j);
	daemon_job_end(d);
}

static void finish_submit(struct daemon *d, struct sandbox *sb, enum sandbox_state from)
{
	struct finish_job *j = pp_xcalloc(1, sizeof(*j));

	j->d = d;
	j->sb = sb;
	j->from = from;
	sb->busy = true;
	daemon_job_begin(d);
	workpool_submit(d->pool, finish_run, j);
}

/* <pods-dir>/<sid> directories whose sandbox has no row any more (a row removed by hand, or a
 * crash between removing the row and the directory) are removed: nothing will serve them. */
static void reconcile_pods_dir(struct daemon *d)
{
	DIR *dir = opendir(d->pods_dir);
	struct dirent *e;
	char path[2 * SANDBOX_PATH_MAX];

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		bool known;

		if (e->d_name[0] == '.' || sandbox_id_check(e->d_name, NULL) < 0)
			continue;
		pthread_mutex_lock(&d->lock);
		known = sandbox_table_get(&d->sandboxes, e->d_name) != NULL;
		pthread_mutex_unlock(&d->lock);
		if (known)
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->pods_dir, e->d_name);
		if (rm_rf(path, NULL) == 0)
			log_info("reconcile: removed the directory of an unknown sandbox", "path=%s", path);
	}
	closedir(dir);
}

int reconcile_on_start(struct daemon *d, struct pp_err *err)
{
	struct sandbox_list rows = { 0 };
	unsigned restored = 0, finishing = 0;

	if (store_sandbox_list(d->store, SANDBOX_STATE_ANY, &rows, err) < 0)
		return pp_err_prefix(err, "reading state.db");
	for (size_t i = 0; i < rows.n; i++) {
		const struct sandbox_row *row = &rows.items[i];
		struct sandbox *sb;

		if (row->state == SANDBOX_GONE) {
			sandbox_db_remove(d, row->sandbox_id, NULL);
			continue;
		}
		sb = sandbox_new(row->sandbox_id);
		sandbox_from_row(sb, row);
		pthread_mutex_lock(&d->lock);
		sandbox_table_add(&d->sandboxes, sb);
		pthread_mutex_unlock(&d->lock);
		switch (row->state) {
		case SANDBOX_RUNNING:
			sandbox_net_reconcile(d, sb);
			lifecycle_restore_proxy(d, sb);
			restored++;
			break;
		case SANDBOX_STARTING:
		case SANDBOX_STOPPING:
			finish_submit(d, sb, row->state);
			finishing++;
			break;
		default:
			break;
		}
	}
	reconcile_pods_dir(d);
	{
		int64_t pruned = 0;

		/* indexes held by sandboxes that no longer have a row */
		if (store_vxlan_prune(d->store, &pruned, NULL) == 0 && pruned > 0)
			log_info("reconcile: released VXLAN indexes of vanished sandboxes", "count=%lld",
				 (long long)pruned);
	}
	log_info("state reconciled", "sandboxes=%zu running_restored=%u unfinished=%u", rows.n,
		 restored, finishing);
	sandbox_list_free(&rows);
	return 0;
}

/* ------------------------------------------------------------------ reaper */

/* When an instance without a creation time was first seen unreferenced (by name). */
struct reaper_seen {
	char name[INSTANCE_NAME_MAX + 1];
	int64_t first_seen;
};
static pthread_mutex_t reaper_seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reaper_seen reaper_seen[REAPER_SEEN_MAX];   /* [reaper_seen_lock] */
static size_t reaper_nseen;                               /* [reaper_seen_lock] */

static int64_t reaper_first_seen(const char *name, int64_t now)
{
	int64_t t = now;
	size_t i;

	pthread_mutex_lock(&reaper_seen_lock);
	for (i = 0; i < reaper_nseen; i++)
		if (strcmp(reaper_seen[i].name, name) == 0)
			break;
	if (i < reaper_nseen) {
		t = reaper_seen[i].first_seen;
	} else if (reaper_nseen < REAPER_SEEN_MAX) {
		snprintf(reaper_seen[reaper_nseen].name, sizeof(reaper_seen[0].name), "%s", name);
		reaper_seen[reaper_nseen].first_seen = now;
		reaper_nseen++;
	}
	pthread_mutex_unlock(&reaper_seen_lock);
	return t;
}

static bool row_refers_to(const struct sandbox_list *rows, const struct owned_instance *it)
{
	for (size_t i = 0; i < rows->n; i++) {
		const struct sandbox_row *r = &rows->items[i];

		if (r->state == SANDBOX_GONE)
			continue;
		if ((it->id[0] && strcmp(r->instance_id, it->id) == 0) ||
		    (it->name[0] && strcmp(r->instance_name, it->name) == 0))
			return true;
	}
	return false;
}

int reaper_run_once(struct provider *prov, struct store *st, uint64_t grace_ms, bool dry_run,
		    struct cancel *cancel, struct pp_err *err)
{
	const struct provider_ops *ops = provider_get_ops(prov);
	struct owned_instance_list owned = { 0 };
	struct sandbox_list rows = { 0 };
	int64_t now = pp_unix_time();
	int count = 0;

	if (ops->list_instances(prov, &owned, cancel, err) < 0)
		return pp_err_prefix(err, "listing the instances this node owns");
	if (store_sandbox_list(st, SANDBOX_STATE_ANY, &rows, err) < 0) {
		owned_instance_list_free(&owned);
		return -1;
	}
	for (size_t i = 0; i < owned.n; i++) {
		const struct owned_instance *it = &owned.items[i];
		int64_t born = it->created_unix ? it->created_unix : reaper_first_seen(it->name, now);
		struct pp_err derr = { 0 };

		if (row_refers_to(&rows, it))
			continue;
		if ((uint64_t)(now - born) * 1000 < grace_ms)
			continue;
		count++;
		if (dry_run) {
			printf("would delete %s (id %s, sandbox %s): no sandbox refers to it\n", it->name,
			       it->id, it->sandbox_id[0] ? it->sandbox_id : "unknown");
			continue;
		}
		if (ops->delete_instance(prov, it->id, it->name, cancel, &derr) < 0)
			log_error("reaper: deleting a leaked instance failed", "instance=%s id=%s error=\"%s\"",
				  it->name, it->id, derr.msg);
		else
			log_info("reaper: leaked instance deleted", "instance=%s id=%s sandbox=%s age_s=%lld",
				 it->name, it->id, it->sandbox_id, (long long)(now - born));
	}
	owned_instance_list_free(&owned);
	sandbox_list_free(&rows);
	return count;
}

struct reaper_job {
	struct daemon *d;
};

static int retry_stopping(struct sandbox *sb, void *arg)
{
	struct daemon *d = arg;

	if (sb->state == SANDBOX_STOPPING && !sb->busy)
		finish_submit(d, sb, SANDBOX_STOPPING);
	return 0;
}

static void reaper_done(void *arg)
{
	struct reaper_job *j = arg;
	struct daemon *d = j->d;

	pthread_mutex_lock(&d->lock);
	d->reaper_running = false;
	if (!d->shutting_down)
		sandbox_table_foreach(&d->sandboxes, retry_stopping, d);
	pthread_mutex_unlock(&d->lock);
	free(j);
	if (!d->shutting_down)
		reaper_schedule(d, config_duration_ms(d->cfg, "REAPER_INTERVAL"));
}

static void reaper_job_run(void *arg)
{
	struct reaper_job *j = arg;
	struct daemon *d = j->d;
	struct pp_err err = { 0 };
	int reaped = reaper_run_once(d->provider, d->store, config_duration_ms(d->cfg, "REAPER_GRACE"),
				     false, d->shutdown, &err);

	if (reaped < 0)
		log_warn("reaper pass failed", "error=\"%s\"", err.msg);
	else
		metrics_add_reaped((uint64_t)reaped);
	loop_post(d->loop, reaper_done, j);
	daemon_job_end(d);
}

static void reaper_fire(void *arg)
{
	struct daemon *d = arg;
	struct reaper_job *j;

	d->reaper_timer = NULL;
	pthread_mutex_lock(&d->lock);
	if (d->reaper_running || d->shutting_down) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->reaper_running = true;
	pthread_mutex_unlock(&d->lock);
	j = pp_xcalloc(1, sizeof(*j));
	j->d = d;
	daemon_job_begin(d);
	workpool_submit(d->pool, reaper_job_run, j);
}

void reaper_schedule(struct daemon *d, uint64_t delay_ms)
{
	uint64_t interval = config_duration_ms(d->cfg, "REAPER_INTERVAL");

	if (!config_bool(d->cfg, "REAPER"))
		return;
	if (d->reaper_timer)
		loop_timer_cancel(d->loop, d->reaper_timer);
	/* The first pass waits a little (the daemon has just reconciled), never longer than the
	 * interval itself. */
	if (!delay_ms)
		delay_ms = interval && interval < REAPER_FIRST_DELAY_MS ? interval : REAPER_FIRST_DELAY_MS;
	d->reaper_timer = loop_timer_add(d->loop, delay_ms, reaper_fire, d);
}
