/*
 * Cancel tokens (see cancel.h). A token is a small refcounted object with a mutex and a
 * condition variable on CLOCK_MONOTONIC: cancel_fire() records the first reason and wakes every
 * cancel_sleep_ms(). The deadline needs no timer of its own: whoever reads the token
 * (cancel_fired, cancel_why, a sleeper waking up) notices that it passed and records
 * CANCEL_DEADLINE. (The ttRPC server also fires the token from a loop timer at the deadline,
 * which only matters for code that waits on something else than the token.)
 */
#include "lib/cancel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "lib/loop.h"

struct cancel {
	atomic_uint refs;
	uint64_t deadline_ns;      /* immutable */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum cancel_reason why;    /* guarded by mu */
};

struct cancel *cancel_new(uint64_t deadline_ns)
{
	struct cancel *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->deadline_ns = deadline_ns;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	return c;
}

struct cancel *cancel_ref(struct cancel *c)
{
	if (c)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

void cancel_unref(struct cancel *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Called with mu held: records CANCEL_DEADLINE once the deadline has passed. */
static void cancel_check_deadline_locked(struct cancel *c)
{
	if (c->why == CANCEL_NONE && c->deadline_ns && pp_now_ns() >= c->deadline_ns) {
		c->why = CANCEL_DEADLINE;
		pthread_cond_broadcast(&c->cv);
	}
}

void cancel_fire(struct cancel *c, enum cancel_reason why)
{
	if (!c || why == CANCEL_NONE)
		return;
	pthread_mutex_lock(&c->mu);
	cancel_check_deadline_locked(c);
	if (c->why == CANCEL_NONE) {
		c->why = why;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

enum cancel_reason cancel_why(struct cancel *c)
{
	enum cancel_reason why;

	if (!c)
		return CANCEL_NONE;
	pthread_mutex_lock(&c->mu);
	cancel_check_deadline_locked(c);
	why = c->why;
	pthread_mutex_unlock(&c->mu);
	return why;
}

bool cancel_fired(struct cancel *c)
{
	return cancel_why(c) != CANCEL_NONE;
}

uint64_t cancel_deadline_ns(const struct cancel *c)
{
	return c ? c->deadline_ns : 0;
}

bool cancel_sleep_ms(struct cancel *c, uint64_t ms)
{
	uint64_t wake = pp_now_ns() + ms * 1000000u;
	struct timespec ts;
	bool fired;

	if (!c) {
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0)
			;
		return false;
	}
	if (c->deadline_ns && c->deadline_ns < wake)
		wake = c->deadline_ns;
	ts.tv_sec = (time_t)(wake / 1000000000u);
	ts.tv_nsec = (long)(wake % 1000000000u);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		cancel_check_deadline_locked(c);
		if (c->why != CANCEL_NONE || pp_now_ns() >= wake)
			break;
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	fired = c->why != CANCEL_NONE;
	pthread_mutex_unlock(&c->mu);
	return fired;
}

const char *cancel_reason_text(enum cancel_reason why)
{
	switch (why) {
	case CANCEL_NONE:
		return "not cancelled";
	case CANCEL_DEADLINE:
		return "deadline exceeded";
	case CANCEL_CLOSED:
		return "client went away";
	case CANCEL_SHUTDOWN:
		return "shutting down";
	case CANCEL_EXPLICIT:
		return "cancelled";
	}
	return "cancelled";
}
