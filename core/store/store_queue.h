/* store_queue — the commit queue both SQL backends group single writes
 * through; internal to core/store.
 *
 * Writers on any thread queue an item; a committer thread takes
 * everything queued as one group and hands it to the backend's run (one
 * transaction, a savepoint per write, one COMMIT: one fsync for the
 * group), while the next group gathers. A queue has one committer (SQLite:
 * one writer at a time) or several (PostgreSQL: while one group commits,
 * another runs its statements on another connection); each runs its own
 * groups in the order it took them. After run returns, each queued
 * item (async) is handed to finish on the committer; a writer waiting in
 * sq_wait is released (its item, often on its stack, is not touched once
 * marked done). The group size follows the load, not the number of threads
 * writing.
 *
 * A backend may give the committers background work (sq_set_idle, before
 * sq_start): idle(ctx, busy) runs on a committer, outside the lock, after
 * every group (busy true: the queue may hold more; do only what cannot
 * wait) and whenever idle_ms pass with nothing queued (busy false). It
 * answers whether work remains; while it does and nothing is queued, it is
 * called again at once. Items queued meanwhile wait for the call to end.
 *
 * A queue of several committers may hold them back (sq_set_hold, before
 * sq_start): while one committer runs a group, another takes what is queued
 * only once hold items are waiting, else when that group ends. The next
 * group then gathers for a whole group's time, not from whenever the other
 * committer came free, so groups grow with the load (fewer commits per
 * write); a queue that fills faster than one group commits still runs two
 * groups at once.
 *
 * Threads: sq_enqueue, sq_wait and sq_drain from any thread; run, finish
 * and idle on a committer only. Errors: sq_init/sq_start answer -1 when a
 * lock or the thread cannot be made; sq_enqueue false when the queue is
 * stopping (or draining, when asked). */
#ifndef CW_STORE_QUEUE_H
#define CW_STORE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

struct sq_item {
	struct sq_item *next;
	bool async; /* handed to finish after its group; else a waiter in sq_wait */
	bool done;  /* a waiter's group has ended */
};

typedef void sq_run_fn(void *ctx, struct sq_item *group);
typedef void sq_finish_fn(void *ctx, struct sq_item *item);
typedef bool sq_idle_fn(void *ctx, bool busy);

#define SQ_MAX_COMMITTERS 8

struct sq_queue {
	pthread_mutex_t mu;
	pthread_cond_t ended; /* a group ended (waiters, drain) */
	pthread_cond_t work;  /* something was queued, or stop (committer) */
	struct sq_item *head, *tail;
	int running;   /* committers holding a group or doing idle work */
	int groups;    /* committers holding a group */
	size_t queued; /* items from head to tail */
	size_t hold;   /* sq_set_hold; 0: none */
	bool stop;     /* the committer ends once the queue is empty */
	bool draining; /* submissions are refused */
	int started;   /* committer threads running */
	pthread_t threads[SQ_MAX_COMMITTERS];
	sq_run_fn *run;
	sq_finish_fn *finish;
	sq_idle_fn *idle; /* NULL: none */
	int idle_ms;
	void *ctx;
};

/* Locks and conditions (no thread yet): 0, or -1. */
int sq_init(struct sq_queue *q, sq_run_fn *run, sq_finish_fn *finish, void *ctx);
/* Gives the committers background work (see above); before sq_start. */
void sq_set_idle(struct sq_queue *q, sq_idle_fn *idle, int idle_ms);
/* Holds committers back while another runs a group, until hold items are
 * queued (see above); before sq_start. */
void sq_set_hold(struct sq_queue *q, size_t hold);
/* Starts n committers (1 .. SQ_MAX_COMMITTERS): 0, or -1 when not one could
 * start (the queue then refuses every item). */
int sq_start(struct sq_queue *q, int n);
/* Queues item; false when the committer is not running or stopping, or
 * (refuse_when_draining) once sq_drain has been called. */
bool sq_enqueue(struct sq_queue *q, struct sq_item *item, bool refuse_when_draining);
/* Waits until the group that holds item (not async) has ended. */
void sq_wait(struct sq_queue *q, struct sq_item *item);
/* Refuses new submissions; returns once the queue is empty and no group runs. */
void sq_drain(struct sq_queue *q);
/* Lets the committer empty the queue, joins it, and frees the locks. */
void sq_destroy(struct sq_queue *q);

#endif
