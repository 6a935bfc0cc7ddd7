/*
 * The event loop: one thread owns every socket (epoll), as redis and haproxy own theirs.
 * Callbacks run in the loop thread. Other threads talk to the loop only through loop_post(),
 * which queues a function and wakes the loop through an eventfd. Timers are one-shot, on the
 * monotonic clock, kept in a min-heap.
 *
 * Thread-safety: loop_post() and loop_stop() may be called from any thread; everything else only
 * from the loop thread (or before loop_run starts).
 */
#ifndef PP_LOOP_H
#define PP_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "lib/err.h"

struct loop;
struct loop_timer;

typedef void (*loop_fd_fn)(void *arg, uint32_t events);   /* events: EPOLLIN|EPOLLOUT|EPOLLERR|EPOLLHUP */
typedef void (*loop_fn)(void *arg);

struct loop *loop_new(struct pp_err *err);
void loop_free(struct loop *l);

/* Watches fd for events (EPOLLIN/EPOLLOUT; level-triggered). One watcher per fd. */
int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg, struct pp_err *err);
int loop_fd_mod(struct loop *l, int fd, uint32_t events);
void loop_fd_del(struct loop *l, int fd);

/* One-shot timer after ms milliseconds. The returned handle is valid until the timer fires or
 * is cancelled; loop_timer_cancel(NULL) is a no-op. */
struct loop_timer *loop_timer_add(struct loop *l, uint64_t ms, loop_fn fn, void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* Thread-safe: runs fn(arg) in the loop thread soon. Returns -1 only if out of memory. */
int loop_post(struct loop *l, loop_fn fn, void *arg);

/* Like loop_post, but with caller-provided storage, so it cannot fail: for messages that must
 * not be lost (a ttRPC reply). *item must stay valid until fn runs; fn may free it. */
struct loop_post_item {
	loop_fn fn;
	void *arg;
	struct loop_post_item *next;
	int heap;   /* internal: allocated by loop_post */
};
void loop_post_item(struct loop *l, struct loop_post_item *item, loop_fn fn, void *arg);

/* Runs until loop_stop(); returns 0. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);   /* thread-safe */
/* True in the thread running loop_run(l); while the loop is not running, true in the thread
 * that created it (set-up and tear-down). */
int loop_in_thread(const struct loop *l);

uint64_t pp_now_ms(void);   /* CLOCK_MONOTONIC in ms */
uint64_t pp_now_ns(void);   /* CLOCK_MONOTONIC in ns */

#endif
