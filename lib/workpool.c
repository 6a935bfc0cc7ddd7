/*
 * A fixed pool of worker threads with one FIFO queue (see workpool.h). Jobs start in submission
 * order; workpool_free() lets the queue drain, then joins. Results go back to the loop with
 * loop_post(), never through shared state.
 *
 * Locks: mu guards the queue and `stopping`; no job runs with mu held.
 */
#include "lib/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define WORKPOOL_MAX_THREADS 256

struct job {
	work_fn fn;
	void *arg;
	struct job *next;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head;      /* guarded by mu */
	struct job *tail;      /* guarded by mu */
	bool stopping;         /* guarded by mu */
	unsigned nthreads;     /* threads started; immutable after workpool_new */
	pthread_t *threads;
};

static void *workpool_main(void *arg)
{
	struct workpool *p = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		j = p->head;
		if (j) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->mu);
		if (!j)
			return NULL;   /* stopping and drained */
		j->fn(j->arg);
		free(j);
	}
}

struct workpool *workpool_new(unsigned nthreads, struct pp_err *err)
{
	struct workpool *p;

	if (nthreads == 0 || nthreads > WORKPOOL_MAX_THREADS) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "worker pool size %u is not in 1..%d", nthreads,
			   WORKPOOL_MAX_THREADS);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p)
		p->threads = calloc(nthreads, sizeof(*p->threads));
	if (!p || !p->threads) {
		free(p);
		pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory creating a worker pool");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		int r = pthread_create(&p->threads[i], NULL, workpool_main, p);

		if (r != 0) {
			pp_err_errno(err, PP_RESOURCE_EXHAUSTED, r, "starting worker thread %u", i);
			workpool_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

int workpool_submit(struct workpool *p, work_fn fn, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return -1;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return -1;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void workpool_free(struct workpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
