/*
 * Event loop, cancel token and worker pool tests: timer order and cancellation (also from
 * inside callbacks), fds removed by an earlier callback of the same round, loop_post from many
 * threads, loop_stop from another thread; cancel reasons, deadlines, early wake-up; FIFO jobs
 * and a pool that drains before it is freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <cmocka.h>

#include "lib/cancel.h"
#include "lib/workpool.h"
#include "ttrpc_fixture.h"

static void stop_cb(void *arg)
{
	loop_stop(arg);
}

static void never_cb(void *arg)
{
	(void)arg;
	fail_msg("a timer that should not fire fired");
}

/* ---- timers ---- */

struct tstate {
	struct loop *l;
	int fired[8];
	int order[8];
	int n;
	struct loop_timer *t[8];
};

static void t_fire(void *arg);

static struct tstate TS;

static void t_record(int i)
{
	TS.fired[i]++;
	TS.order[TS.n++] = i;
}

static void t_fire(void *arg)
{
	int i = (int)(intptr_t)arg;

	t_record(i);
	if (i == 1) {
		loop_timer_cancel(TS.l, TS.t[1]);   /* itself: no-op */
		loop_timer_cancel(TS.l, TS.t[2]);   /* due in the same round: must not fire */
		TS.t[2] = NULL;
	}
	if (i == 3)
		loop_stop(TS.l);
}

static void test_timers_order_and_cancel(void **state)
{
	struct pp_err err;
	uint64_t t0;

	(void)state;
	memset(&TS, 0, sizeof(TS));
	TS.l = loop_new(&err);
	assert_non_null(TS.l);
	TS.t[3] = loop_timer_add(TS.l, 60, t_fire, (void *)3);
	TS.t[0] = loop_timer_add(TS.l, 10, t_fire, (void *)0);
	TS.t[1] = loop_timer_add(TS.l, 20, t_fire, (void *)1);
	TS.t[2] = loop_timer_add(TS.l, 20, t_fire, (void *)2);
	TS.t[4] = loop_timer_add(TS.l, 30, t_fire, (void *)4);
	TS.t[5] = loop_timer_add(TS.l, 5000, t_fire, (void *)5);
	loop_timer_cancel(TS.l, TS.t[4]);
	loop_timer_cancel(TS.l, NULL);
	t0 = pp_now_ms();
	assert_int_equal(loop_run(TS.l), 0);
	assert_true(pp_now_ms() - t0 >= 55);
	assert_int_equal(TS.n, 3);
	assert_int_equal(TS.order[0], 0);
	assert_int_equal(TS.order[1], 1);
	assert_int_equal(TS.order[2], 3);
	assert_int_equal(TS.fired[2], 0);
	assert_int_equal(TS.fired[4], 0);
	assert_int_equal(TS.fired[5], 0);
	loop_free(TS.l);   /* frees the pending 5 s timer */
}

/* ---- fds ---- */

struct fdstate {
	struct loop *l;
	int p1[2], p2[2];
	int runs1, runs2;
};

static struct fdstate FS;

static void fd_cb(void *arg, uint32_t events)
{
	int which = (int)(intptr_t)arg;
	int other = which == 1 ? FS.p2[0] : FS.p1[0];

	(void)events;
	if (which == 1)
		FS.runs1++;
	else
		FS.runs2++;
	/* remove both (the other one first): the other's pending event must be skipped */
	loop_fd_del(FS.l, other);
	loop_fd_del(FS.l, which == 1 ? FS.p1[0] : FS.p2[0]);
	loop_timer_add(FS.l, 0, stop_cb, FS.l);
}

static void test_fd_removed_during_dispatch(void **state)
{
	struct pp_err err;

	(void)state;
	memset(&FS, 0, sizeof(FS));
	FS.l = loop_new(&err);
	assert_int_equal(pipe2(FS.p1, O_CLOEXEC), 0);
	assert_int_equal(pipe2(FS.p2, O_CLOEXEC), 0);
	assert_int_equal(loop_fd_add(FS.l, FS.p1[0], EPOLLIN, fd_cb, (void *)1, &err), 0);
	assert_int_equal(loop_fd_add(FS.l, FS.p2[0], EPOLLIN, fd_cb, (void *)2, &err), 0);
	assert_int_equal(loop_fd_add(FS.l, FS.p2[0], EPOLLIN, fd_cb, (void *)2, &err), -1);
	assert_int_equal(err.code, PP_ALREADY_EXISTS);
	assert_int_equal(write(FS.p1[1], "x", 1), 1);
	assert_int_equal(write(FS.p2[1], "y", 1), 1);
	loop_run(FS.l);
	assert_int_equal(FS.runs1 + FS.runs2, 1);
	loop_free(FS.l);
	for (int i = 0; i < 2; i++) {
		close(FS.p1[i]);
		close(FS.p2[i]);
	}
}

/* ---- loop_post from many threads ---- */

#define POSTERS 4
#define POSTS 2000

struct poststate {
	struct loop *l;
	int last[POSTERS];
	int total;
	int out_of_order;
	int in_loop_thread;
};

static struct poststate PS;

static void post_cb(void *arg)
{
	intptr_t v = (intptr_t)arg;
	int t = (int)(v / POSTS), i = (int)(v % POSTS);

	if (i != PS.last[t] + 1)
		PS.out_of_order++;
	PS.last[t] = i;
	PS.in_loop_thread += loop_in_thread(PS.l) ? 1 : 0;
	if (++PS.total == POSTERS * POSTS)
		loop_stop(PS.l);
}

static void *poster(void *arg)
{
	intptr_t t = (intptr_t)arg;

	for (intptr_t i = 0; i < POSTS; i++)
		if (loop_post(PS.l, post_cb, (void *)(t * POSTS + i)) < 0)
			abort();
	return NULL;
}

static void test_post_from_threads(void **state)
{
	struct pp_err err;
	pthread_t th[POSTERS];

	(void)state;
	memset(&PS, 0, sizeof(PS));
	for (int i = 0; i < POSTERS; i++)
		PS.last[i] = -1;
	PS.l = loop_new(&err);
	for (intptr_t i = 0; i < POSTERS; i++)
		pthread_create(&th[i], NULL, poster, (void *)i);
	loop_run(PS.l);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(PS.total, POSTERS * POSTS);
	assert_int_equal(PS.out_of_order, 0);
	assert_int_equal(PS.in_loop_thread, POSTERS * POSTS);
	loop_free(PS.l);
}

static void *stopper(void *arg)
{
	usleep(50000);
	loop_stop(arg);
	return NULL;
}

static void test_stop_from_other_thread(void **state)
{
	struct pp_err err;
	struct loop *l = loop_new(&err);
	pthread_t th;
	uint64_t t0 = pp_now_ms();

	(void)state;
	loop_timer_add(l, 10000, never_cb, NULL);
	pthread_create(&th, NULL, stopper, l);
	loop_run(l);
	pthread_join(th, NULL);
	assert_true(pp_now_ms() - t0 < 5000);
	loop_free(l);
}

/* ---- cancel ---- */

static void test_cancel_reasons(void **state)
{
	struct cancel *c = cancel_new(0);

	(void)state;
	assert_false(cancel_fired(c));
	assert_int_equal(cancel_why(c), CANCEL_NONE);
	cancel_fire(c, CANCEL_CLOSED);
	cancel_fire(c, CANCEL_SHUTDOWN);   /* first reason wins */
	assert_true(cancel_fired(c));
	assert_int_equal(cancel_why(c), CANCEL_CLOSED);
	assert_string_equal(cancel_reason_text(cancel_why(c)), "client went away");
	assert_true(cancel_sleep_ms(c, 10000));   /* returns at once */
	assert_ptr_equal(cancel_ref(c), c);
	cancel_unref(c);
	cancel_unref(c);

	assert_false(cancel_fired(NULL));
	assert_int_equal(cancel_deadline_ns(NULL), 0);
	cancel_unref(NULL);
}

static void test_cancel_deadline(void **state)
{
	uint64_t t0 = pp_now_ns();
	struct cancel *c = cancel_new(t0 + 50 * 1000000ull);

	(void)state;
	assert_int_equal(cancel_deadline_ns(c), t0 + 50 * 1000000ull);
	assert_false(cancel_fired(c));
	assert_true(cancel_sleep_ms(c, 10000));   /* bounded by the deadline */
	assert_true(pp_now_ns() - t0 >= 50 * 1000000ull);
	assert_true(pp_now_ns() - t0 < 5000 * 1000000ull);
	assert_int_equal(cancel_why(c), CANCEL_DEADLINE);
	cancel_fire(c, CANCEL_EXPLICIT);
	assert_int_equal(cancel_why(c), CANCEL_DEADLINE);
	cancel_unref(c);

	c = cancel_new(0);
	assert_false(cancel_sleep_ms(c, 20));   /* plain sleep, not fired */
	cancel_unref(c);
}

static void *firer(void *arg)
{
	usleep(50000);
	cancel_fire(arg, CANCEL_EXPLICIT);
	return NULL;
}

static void test_cancel_wakes_sleeper(void **state)
{
	struct cancel *c = cancel_new(0);
	pthread_t th;
	uint64_t t0 = pp_now_ms();

	(void)state;
	pthread_create(&th, NULL, firer, c);
	assert_true(cancel_sleep_ms(c, 10000));
	assert_true(pp_now_ms() - t0 < 5000);
	assert_int_equal(cancel_why(c), CANCEL_EXPLICIT);
	pthread_join(th, NULL);
	cancel_unref(c);
}

/* ---- workpool ---- */

static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
static int job_seen[200];
static int job_n;

static void job(void *arg)
{
	usleep(200);
	pthread_mutex_lock(&job_mu);
	job_seen[job_n++] = (int)(intptr_t)arg;
	pthread_mutex_unlock(&job_mu);
}

static void test_workpool_fifo_and_drain(void **state)
{
	struct pp_err err;
	struct workpool *p = workpool_new(1, &err);

	(void)state;
	job_n = 0;
	assert_non_null(p);
	for (intptr_t i = 0; i < 100; i++)
		assert_int_equal(workpool_submit(p, job, (void *)i), 0);
	workpool_free(p);   /* drains first */
	assert_int_equal(job_n, 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(job_seen[i], i);

	job_n = 0;
	p = workpool_new(4, &err);
	for (intptr_t i = 0; i < 200; i++)
		assert_int_equal(workpool_submit(p, job, (void *)i), 0);
	workpool_free(p);
	assert_int_equal(job_n, 200);

	assert_null(workpool_new(0, &err));
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	workpool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_order_and_cancel),
		cmocka_unit_test(test_fd_removed_during_dispatch),
		cmocka_unit_test(test_post_from_threads),
		cmocka_unit_test(test_stop_from_other_thread),
		cmocka_unit_test(test_cancel_reasons),
		cmocka_unit_test(test_cancel_deadline),
		cmocka_unit_test(test_cancel_wakes_sleeper),
		cmocka_unit_test(test_workpool_fifo_and_drain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
