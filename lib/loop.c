/*
 * The event loop (see loop.h): epoll for fds, a min-heap of one-shot timers that sets the
 * epoll_wait timeout, and an eventfd that wakes the loop for loop_post()/loop_stop().
 *
 * The one idea: callbacks may add and remove fds and timers (their own included) while the loop
 * is dispatching. Each fd watcher carries a generation number that travels in the epoll event,
 * so an event that was already returned by epoll_wait for a watcher that has since been removed
 * (or replaced by a new watcher on a reused fd number) is recognised and skipped. A timer is
 * taken off the heap before its callback runs and freed after it, so cancelling it from inside
 * its own callback is a no-op.
 *
 * Locks: post_mu guards the post queue only; it is never held while a callback runs.
 */
#include "lib/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 64
#define LOOP_WAKE_TAG UINT64_MAX
#define TIMER_FIRING SIZE_MAX

struct fd_watch {
	loop_fd_fn fn;
	void *arg;
	uint32_t gen;
	bool active;
};

struct loop_timer {
	uint64_t deadline_ns;
	uint64_t seq;        /* tie-break: equal deadlines fire in the order they were added */
	size_t idx;          /* position in the heap, TIMER_FIRING while its callback runs */
	loop_fn fn;
	void *arg;
};

struct loop {
	int epfd;
	int wakefd;
	pthread_t owner;              /* the creating thread; immutable */
	atomic_bool running;          /* inside loop_run */
	atomic_bool stop;

	struct fd_watch *watch;       /* indexed by fd */
	size_t nwatch;

	struct loop_timer **heap;
	size_t nheap, capheap;
	uint64_t timer_seq;

	pthread_mutex_t post_mu;
	struct loop_post_item *post_head;  /* guarded by post_mu */
	struct loop_post_item *post_tail;  /* guarded by post_mu */
};

uint64_t pp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pp_now_ms(void)
{
	return pp_now_ns() / 1000000u;
}

struct loop *loop_new(struct pp_err *err)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LOOP_WAKE_TAG };

	if (!l) {
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating the event loop");
		return NULL;
	}
	l->epfd = -1;
	l->wakefd = -1;
	pthread_mutex_init(&l->post_mu, NULL);
	l->owner = pthread_self();
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "creating the epoll instance");
		goto fail;
	}
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wakefd < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "creating the loop's eventfd");
		goto fail;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
		pp_err_errno(err, PP_INTERNAL, errno, "watching the loop's eventfd");
		goto fail;
	}
	return l;
fail:
	loop_free(l);
	return NULL;
}

static struct loop_post_item *post_take_all(struct loop *l)
{
	struct loop_post_item *head;

	pthread_mutex_lock(&l->post_mu);
	head = l->post_head;
	l->post_head = l->post_tail = NULL;
	pthread_mutex_unlock(&l->post_mu);
	return head;
}

/* Runs posted functions in order; functions posted meanwhile run in the next round. */
static void post_run(struct loop *l)
{
	struct loop_post_item *it = post_take_all(l);

	while (it) {
		struct loop_post_item *next = it->next;
		loop_fn fn = it->fn;
		void *arg = it->arg;

		if (it->heap)
			free(it);
		fn(arg);   /* may free a caller-provided item: not touched after */
		it = next;
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	/* Posted functions still queued run now, so that what they own (replies, results) is
	 * released; they must not rely on anything already freed. */
	while (l->post_head)
		post_run(l);
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->watch);
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0)
		close(l->epfd);
	pthread_mutex_destroy(&l->post_mu);
	free(l);
}

/* ---- fds ---- */

static int watch_reserve(struct loop *l, int fd)
{
	size_t n;
	struct fd_watch *w;

	if ((size_t)fd < l->nwatch)
		return 0;
	n = l->nwatch ? l->nwatch : 64;
	while (n <= (size_t)fd)
		n *= 2;
	w = realloc(l->watch, n * sizeof(*w));
	if (!w)
		return -1;
	memset(w + l->nwatch, 0, (n - l->nwatch) * sizeof(*w));
	l->watch = w;
	l->nwatch = n;
	return 0;
}

static uint64_t watch_tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg, struct pp_err *err)
{
	struct epoll_event ev = { .events = events };
	struct fd_watch *w;

	if (fd < 0)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "loop_fd_add: invalid fd %d", fd);
	if (watch_reserve(l, fd) < 0)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory watching fd %d", fd);
	w = &l->watch[fd];
	if (w->active)
		return pp_err_set(err, PP_ALREADY_EXISTS, "fd %d is already watched by the loop", fd);
	w->gen++;
	ev.data.u64 = watch_tag(fd, w->gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "adding fd %d to epoll", fd);
	w->fn = fn;
	w->arg = arg;
	w->active = true;
	return 0;
}

int loop_fd_mod(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	if (fd < 0 || (size_t)fd >= l->nwatch || !l->watch[fd].active)
		return -1;
	ev.data.u64 = watch_tag(fd, l->watch[fd].gen);
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void loop_fd_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nwatch || !l->watch[fd].active)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->watch[fd].active = false;
	l->watch[fd].fn = NULL;
	l->watch[fd].arg = NULL;
}

static void watch_dispatch(struct loop *l, uint64_t tag, uint32_t events)
{
	int fd = (int)(uint32_t)tag;
	uint32_t gen = (uint32_t)(tag >> 32);
	struct fd_watch *w;

	if ((size_t)fd >= l->nwatch)
		return;
	w = &l->watch[fd];
	if (!w->active || w->gen != gen)
		return;   /* removed (or replaced) by an earlier callback of this round */
	w->fn(w->arg, events);
}

/* ---- timers: binary min-heap on (deadline, seq) ---- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, l->heap[parent]))
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static void heap_remove(struct loop *l, size_t i)
{
	struct loop_timer *last = l->heap[--l->nheap];

	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	heap_down(l, i);
	heap_up(l, last->idx);
}

struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_fn fn, void *arg)
{
	struct loop_timer *t;

	if (l->nheap == l->capheap) {
		size_t n = l->capheap ? l->capheap * 2 : 16;
		struct loop_timer **h = realloc(l->heap, n * sizeof(*h));

		if (!h)
			return NULL;
		l->heap = h;
		l->capheap = n;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->deadline_ns = pp_now_ns() + ms * 1000000u;
	t->seq = l->timer_seq++;
	t->fn = fn;
	t->arg = arg;
	heap_set(l, l->nheap++, t);
	heap_up(l, t->idx);
	return t;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!t || t->idx == TIMER_FIRING)
		return;
	heap_remove(l, t->idx);
	free(t);
}

/* Milliseconds until the first timer (rounded up), -1 if none. */
static int timers_timeout(const struct loop *l)
{
	uint64_t now, d;

	if (l->nheap == 0)
		return -1;
	now = pp_now_ns();
	d = l->heap[0]->deadline_ns;
	if (d <= now)
		return 0;
	d = (d - now + 999999) / 1000000;
	return d > 60000 ? 60000 : (int)d;
}

/* Fires the timers that were due when this round started; a timer added by a callback waits
 * for the next round even if it is due at once, so a 0 ms re-arm cannot starve the fds. */
static void timers_run(struct loop *l)
{
	uint64_t now = pp_now_ns();
	uint64_t seq_limit = l->timer_seq;

	while (l->nheap > 0 && l->heap[0]->deadline_ns <= now && l->heap[0]->seq < seq_limit) {
		struct loop_timer *t = l->heap[0];

		heap_remove(l, 0);
		t->idx = TIMER_FIRING;
		t->fn(t->arg);
		free(t);
	}
}

/* ---- cross-thread ---- */

static void loop_wake(struct loop *l)
{
	uint64_t one = 1;
	ssize_t r;

	do
		r = write(l->wakefd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: the loop is awake anyway. */
}

static void post_enqueue(struct loop *l, struct loop_post_item *it, loop_fn fn, void *arg, int heap)
{
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	it->heap = heap;
	pthread_mutex_lock(&l->post_mu);
	if (l->post_tail)
		l->post_tail->next = it;
	else
		l->post_head = it;
	l->post_tail = it;
	pthread_mutex_unlock(&l->post_mu);
	loop_wake(l);
}

int loop_post(struct loop *l, loop_fn fn, void *arg)
{
	struct loop_post_item *it = malloc(sizeof(*it));

	if (!it)
		return -1;
	post_enqueue(l, it, fn, arg, 1);
	return 0;
}

void loop_post_item(struct loop *l, struct loop_post_item *it, loop_fn fn, void *arg)
{
	post_enqueue(l, it, fn, arg, 0);
}

void loop_stop(struct loop *l)
{
	atomic_store(&l->stop, true);
	loop_wake(l);
}

/* The loop the current thread is running, if any. */
static __thread const struct loop *loop_current;

int loop_in_thread(const struct loop *l)
{
	if (loop_current == l)
		return 1;
	/* Not running: its creator owns it (set-up before loop_run, tear-down after). */
	return !atomic_load(&l->running) && pthread_equal(l->owner, pthread_self());
}

static void wake_drain(struct loop *l)
{
	uint64_t v;

	while (read(l->wakefd, &v, sizeof(v)) > 0)
		;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	const struct loop *outer = loop_current;

	loop_current = l;
	atomic_store(&l->running, true);
	while (!atomic_load(&l->stop)) {
		int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timers_timeout(l));
		bool woken = false;

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == LOOP_WAKE_TAG)
				woken = true;
			else
				watch_dispatch(l, evs[i].data.u64, evs[i].events);
		}
		if (woken)
			wake_drain(l);
		post_run(l);
		timers_run(l);
	}
	atomic_store(&l->running, false);
	atomic_store(&l->stop, false);
	loop_current = outer;
	return 0;
}
