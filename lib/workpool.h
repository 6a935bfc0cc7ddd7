/*
 * Worker threads for the work that blocks: cloud API calls, SQLite writes, waiting for an IP.
 * The loop never blocks; a handler submits a job, the job runs on a worker, and hands its result
 * back to the loop with loop_post(). Never hold a lock across a cloud call.
 */
#ifndef PP_WORKPOOL_H
#define PP_WORKPOOL_H

#include "lib/err.h"

struct workpool;

typedef void (*work_fn)(void *arg);

struct workpool *workpool_new(unsigned nthreads, struct pp_err *err);
/* Runs fn(arg) on a worker thread. Jobs start in submission order. Thread-safe. */
int workpool_submit(struct workpool *p, work_fn fn, void *arg);
/* Waits for queued and running jobs to finish, then joins the threads. NULL ok. */
void workpool_free(struct workpool *p);

#endif
