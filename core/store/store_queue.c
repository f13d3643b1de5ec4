/* The commit queue shared by the SQL backends (see store_queue.h). */
#include "store/store_queue.h"

#include <errno.h>
#include <time.h>

int sq_init(struct sq_queue *q, sq_run_fn *run, sq_finish_fn *finish, void *ctx)
{
	*q = (struct sq_queue){.run = run, .finish = finish, .ctx = ctx};
	if (pthread_mutex_init(&q->mu, NULL) != 0)
		return -1;
	if (pthread_cond_init(&q->ended, NULL) != 0) {
		pthread_mutex_destroy(&q->mu);
		return -1;
	}
	if (pthread_cond_init(&q->work, NULL) != 0) {
		pthread_cond_destroy(&q->ended);
		pthread_mutex_destroy(&q->mu);
		return -1;
	}
	return 0;
}

void sq_set_idle(struct sq_queue *q, sq_idle_fn *idle, int idle_ms)
{
	q->idle = idle;
	q->idle_ms = idle_ms > 0 ? idle_ms : 1;
}

void sq_set_hold(struct sq_queue *q, size_t hold) { q->hold = hold; }

/* Whether a committer leaves what is queued to gather (q->mu held): another
 * committer runs a group and fewer than q->hold items wait. Stopping takes
 * everything at once. */
static bool held_back(const struct sq_queue *q) { return q->hold && q->groups > 0 && q->queued < q->hold && !q->stop; }

/* Runs q's idle work (q->mu held on entry and on return); its answer. */
static bool run_idle(struct sq_queue *q, bool busy)
{
	q->running++;
	pthread_mutex_unlock(&q->mu);
	bool more = q->idle(q->ctx, busy);
	pthread_mutex_lock(&q->mu);
	q->running--;
	pthread_cond_broadcast(&q->ended);
	return more;
}

static void *committer_main(void *arg)
{
	struct sq_queue *q = arg;
	pthread_mutex_lock(&q->mu);
	bool more = q->idle != NULL; /* idle work may be left from before */
	for (;;) {
		while ((!q->head && !q->stop) || (q->head && held_back(q))) {
			if (q->head) { /* held back: woken by the other group's end or more items */
				pthread_cond_wait(&q->work, &q->mu);
				continue;
			}
			if (!more) {
				pthread_cond_wait(&q->work, &q->mu);
				continue;
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			long ns = ts.tv_nsec + (long)(q->idle_ms % 1000) * 1000000L;
			ts.tv_sec += q->idle_ms / 1000 + ns / 1000000000L;
			ts.tv_nsec = ns % 1000000000L;
			int rc = 0;
			while (!q->head && !q->stop && rc != ETIMEDOUT)
				rc = pthread_cond_timedwait(&q->work, &q->mu, &ts);
			while (!q->head && !q->stop && more)
				more = run_idle(q, false);
		}
		if (!q->head)
			break; /* stopping, and nothing is left */
		struct sq_item *group = q->head;
		q->head = q->tail = NULL;
		q->queued = 0;
		q->running++;
		q->groups++;
		pthread_mutex_unlock(&q->mu);
		q->run(q->ctx, group);
		/* queued items are called back; waiters are released together
		 * below */
		struct sq_item *waiting = NULL;
		for (struct sq_item *r = group, *next; r; r = next) {
			next = r->next;
			if (r->async) {
				q->finish(q->ctx, r);
			} else {
				r->next = waiting;
				waiting = r;
			}
		}
		pthread_mutex_lock(&q->mu);
		for (struct sq_item *r = waiting, *next; r; r = next) {
			next = r->next;
			r->done = true;
		}
		q->running--;
		q->groups--;
		pthread_cond_broadcast(&q->ended);
		if (q->hold && q->head)
			pthread_cond_signal(&q->work); /* a committer held back takes it now */
		if (q->idle)
			more = run_idle(q, true);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int sq_start(struct sq_queue *q, int n)
{
	if (n < 1)
		n = 1;
	if (n > SQ_MAX_COMMITTERS)
		n = SQ_MAX_COMMITTERS;
	pthread_mutex_lock(&q->mu);
	while (q->started < n && pthread_create(&q->threads[q->started], NULL, committer_main, q) == 0)
		q->started++;
	int started = q->started;
	pthread_mutex_unlock(&q->mu);
	return started > 0 ? 0 : -1;
}

bool sq_enqueue(struct sq_queue *q, struct sq_item *item, bool refuse_when_draining)
{
	pthread_mutex_lock(&q->mu);
	if (!q->started || q->stop || (refuse_when_draining && q->draining)) {
		pthread_mutex_unlock(&q->mu);
		return false;
	}
	item->next = NULL;
	item->done = false;
	if (q->tail)
		q->tail->next = item;
	else
		q->head = item;
	q->tail = item;
	q->queued++;
	if (!held_back(q) || q->queued == q->hold)
		pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	return true;
}

void sq_wait(struct sq_queue *q, struct sq_item *item)
{
	pthread_mutex_lock(&q->mu);
	while (!item->done)
		pthread_cond_wait(&q->ended, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void sq_drain(struct sq_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->draining = true;
	while (q->head || q->running)
		pthread_cond_wait(&q->ended, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void sq_destroy(struct sq_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	int n = q->started;
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < n; i++)
		pthread_join(q->threads[i], NULL);
	q->started = 0;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->ended);
	pthread_cond_destroy(&q->work);
}
