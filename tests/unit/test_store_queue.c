/* The commit queue (core/store/store_queue.h) with two committers: a
 * committer held back (sq_set_hold) leaves what is queued to gather while
 * the other runs a group, and takes it once hold items wait or that group
 * ends; without a hold it takes the queue at once. Real threads; the run
 * function blocks its first group until the test lets it go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <time.h>

#include "store/store_queue.h"

struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int groups;       /* groups begun */
	size_t sizes[16]; /* items per group, in the order begun */
	bool release;     /* the first group may end */
	size_t finished;  /* items handed to finish */
};

static void probe_run(void *ctx, struct sq_item *group)
{
	struct probe *p = ctx;
	size_t n = 0;
	for (struct sq_item *i = group; i; i = i->next)
		n++;
	pthread_mutex_lock(&p->mu);
	int mine = p->groups++;
	if (mine < 16)
		p->sizes[mine] = n;
	pthread_cond_broadcast(&p->cv);
	while (mine == 0 && !p->release)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static void probe_finish(void *ctx, struct sq_item *item)
{
	(void)item;
	struct probe *p = ctx;
	pthread_mutex_lock(&p->mu);
	p->finished++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Waits up to ms for p->groups to reach want (p->mu held): whether it did. */
static bool wait_groups(struct probe *p, int want, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	while (p->groups < want && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	return p->groups >= want;
}

/* Queues one item, blocks the first group, then queues more: with hold 3
 * the second committer takes nothing until 3 wait, and takes them together;
 * with no hold it takes the next item at once. Each step's outcome is
 * checked once the first group is let go and the queue drained, so that a
 * failure ends the case instead of leaving a committer blocked. */
static void run_case(size_t hold)
{
	struct probe p = {.groups = 0};
	assert_int_equal(pthread_mutex_init(&p.mu, NULL), 0);
	assert_int_equal(pthread_cond_init(&p.cv, NULL), 0);
	struct sq_queue q;
	assert_int_equal(sq_init(&q, probe_run, probe_finish, &p), 0);
	if (hold)
		sq_set_hold(&q, hold);
	assert_int_equal(sq_start(&q, 2), 0);
	struct sq_item items[8] = {{0}};
	for (size_t i = 0; i < 8; i++)
		items[i].async = true;
	bool first = false, second = false, gathering = false, grown = false, held_again = false, last = false;
	size_t queued = 1;

	sq_enqueue(&q, &items[0], false);
	pthread_mutex_lock(&p.mu);
	first = wait_groups(&p, 1, 5000); /* the first group runs, blocked */
	pthread_mutex_unlock(&p.mu);
	sq_enqueue(&q, &items[queued++], false);
	pthread_mutex_lock(&p.mu);
	if (!hold) {
		second = wait_groups(&p, 2, 5000) && p.sizes[1] == 1; /* taken at once */
	} else {
		gathering = !wait_groups(&p, 2, 300); /* held back */
		pthread_mutex_unlock(&p.mu);
		sq_enqueue(&q, &items[queued++], false);
		pthread_mutex_lock(&p.mu);
		gathering = gathering && !wait_groups(&p, 2, 300);
		pthread_mutex_unlock(&p.mu);
		sq_enqueue(&q, &items[queued++], false); /* hold reached */
		pthread_mutex_lock(&p.mu);
		grown = wait_groups(&p, 2, 5000) && p.sizes[1] == 3;
		pthread_mutex_unlock(&p.mu);
		/* held back again; the first group's end lets the next one go */
		sq_enqueue(&q, &items[queued++], false);
		pthread_mutex_lock(&p.mu);
		held_again = !wait_groups(&p, 3, 300);
	}
	p.release = true;
	pthread_cond_broadcast(&p.cv);
	if (hold)
		last = wait_groups(&p, 3, 5000) && p.sizes[2] == 1;
	pthread_mutex_unlock(&p.mu);
	sq_drain(&q);
	size_t finished = p.finished;
	sq_destroy(&q);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	assert_true(first);
	assert_int_equal(finished, queued);
	if (!hold) {
		assert_true(second);
		return;
	}
	assert_true(gathering);
	assert_true(grown);
	assert_true(held_again);
	assert_true(last);
}

static void held_committer_lets_the_group_grow(void **state)
{
	(void)state;
	run_case(3);
}

static void unheld_committer_takes_the_queue_at_once(void **state)
{
	(void)state;
	run_case(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(held_committer_lets_the_group_grow),
		cmocka_unit_test(unheld_committer_takes_the_queue_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
