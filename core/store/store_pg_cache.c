/* The PostgreSQL backend's read cache across gateways: the change trigger,
 * the listening connection and the read barrier (store_pg_int.h).
 *
 * Why a read from the cache is never older than an acknowledged write of
 * any gateway:
 *  - Every new version of an existing resource updates its resource row;
 *    the trigger cw_resource_changed, on that row, queues a notification
 *    "type/id" on the channel cw_resource in the writing transaction.
 *    PostgreSQL adds it to its notification queue before the commit is
 *    recorded and, still before the writer gets its COMMIT's answer,
 *    signals every listening session (commands/async.c: PreCommit_Notify,
 *    SignalBackends). A create of a new id needs none: no gateway can hold
 *    a version of a resource that did not exist (misses are not cached).
 *  - A listening session that gets the signal while idle sends the
 *    notification at once; otherwise it sends it "just before we next go
 *    idle", that is before the ReadyForQuery that ends its next command.
 *    So a command sent on the listening connection after a write was
 *    acknowledged is answered after that write's notification.
 *  - A read that may use the cache first waits for such a command (the
 *    barrier): one sent after the read arrived, whose answer the listener
 *    thread reads to the end, invalidating every notified resource
 *    (rcache_invalidate) before the read is let go on. The read does not
 *    hold a thread meanwhile (store_fresh_wait: the REST layer defers its
 *    request). A read arriving while no barrier is in flight asks the
 *    listener thread for one; reads arriving while one is in flight wait
 *    for the next, sent as soon as that one is answered, so one round trip
 *    serves all the reads that arrived meanwhile.
 *  - A read that misses reads the database after taking a ticket
 *    (rcache.h). If what it read is older than a version committed since,
 *    that version's notification is consumed after the ticket was taken and
 *    voids it: the older text is not cached.
 *  - The listening connection lost (a database restart, a broken link, a
 *    barrier not answered within the statement timeout): notifications may
 *    have been missed. Until it is back no read uses the cache; once it
 *    listens again the whole cache is dropped (and every ticket voided)
 *    before reads use it again.
 *
 * The connection is the listener thread's alone: it reconnects, sends the
 * barriers and reads their answers, and takes in notifications as they come
 * (so they never pile up unread). */
#include "store/store_pg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "store/rcache.h"

#define CHANNEL "cw_resource"
/* between attempts to listen again: doubling from the first to the last */
#define RECONNECT_FIRST_MS 50
#define RECONNECT_MAX_MS 2000

/* Idempotent (run at every start, under the schema lock): the function
 * and the trigger are added when missing. */
static const char trigger_sql[] =
	"DO $cw$ BEGIN"
	" IF to_regprocedure('cw_resource_changed()') IS NULL THEN"
	"  CREATE FUNCTION cw_resource_changed() RETURNS trigger LANGUAGE plpgsql AS"
	"  $f$BEGIN PERFORM pg_notify('" CHANNEL "', NEW.type || '/' || NEW.id); RETURN NULL; END$f$;"
	" END IF;"
	" IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'cw_resource_changed'"
	"  AND tgrelid = 'resource'::regclass) THEN"
	"  CREATE TRIGGER cw_resource_changed AFTER UPDATE ON resource FOR EACH ROW"
	"  EXECUTE FUNCTION cw_resource_changed();"
	" END IF;"
	" END $cw$";

struct pgs_listen {
	struct pg_store *ps;
	struct rcache *cache;
	pthread_t thread;
	pthread_mutex_t mu;
	int wake[2]; /* a read wants a barrier, or stop */
	/* under mu: sent counts the barriers sent, done is the number of the
	 * last one answered with every notification before it consumed;
	 * inflight: barrier number sent is sent and not yet answered; wanted: a
	 * read waits for barrier sent + 1; kicked: wake holds a byte not yet
	 * taken; waiting: the reads waiting, each for barrier f->after; up:
	 * listening. inflight is changed by the listener thread only. */
	uint64_t sent, done;
	bool inflight, wanted, kicked, up, ever_up, stop;
	struct store_fresh *waiting;
	PGconn *db;       /* the listener thread's only */
	int64_t deadline; /* the barrier in flight's answer is due (listener thread) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Invalidates every resource notified so far. */
static void consume_notifies(struct pgs_listen *l)
{
	PGnotify *n;
	while ((n = PQnotifies(l->db))) {
		char *slash = strchr(n->extra, '/');
		if (slash) {
			*slash = '\0';
			rcache_invalidate(l->cache, n->extra, slash + 1);
		} else {
			rcache_clear(l->cache); /* not ours to parse: drop all */
		}
		PQfreemem(n);
	}
}

/* Takes out of the waiting list (under mu) every read waiting for a barrier
 * up to upto (UINT64_MAX: all). */
static struct store_fresh *detach(struct pgs_listen *l, uint64_t upto)
{
	struct store_fresh *ready = NULL, **p = &l->waiting;
	while (*p) {
		struct store_fresh *f = *p;
		if (f->after <= upto) {
			*p = f->next;
			f->next = ready;
			ready = f;
		} else {
			p = &f->next;
		}
	}
	return ready;
}

/* Lets the detached reads go on (not under mu): each may be gone once its
 * done has run. */
static void let_go(struct store_fresh *f, bool fresh)
{
	while (f) {
		struct store_fresh *next = f->next;
		f->fresh = fresh;
		f->done(f->ctx);
		f = next;
	}
}

/* Not listening any more: no read uses the cache until it is back, and the
 * reads waiting read the database. */
static void lost(struct pgs_listen *l)
{
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	rcache_clear(l->cache);
	pthread_mutex_lock(&l->mu);
	bool was = l->up;
	l->up = l->inflight = l->wanted = false;
	struct store_fresh *ready = detach(l, UINT64_MAX);
	pthread_mutex_unlock(&l->mu);
	let_go(ready, false);
	if (was)
		log_event(LOG_WARN, "store.read_cache_off",
			  "the database's notifications are not listened to: reads ask the database until they are",
			  NULL);
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Connects and listens. */
static bool listen_again(struct pgs_listen *l)
{
	/* named, so that pg_stat_activity tells it from the pool */
	const char *const keys[] = {"dbname", "application_name", NULL};
	const char *const vals[] = {l->ps->conninfo, "crosswalk-listen", NULL};
	l->db = PQconnectdbParams(keys, vals, 1);
	PGresult *r = NULL;
	if (l->db)
		PQsetNoticeProcessor(l->db, quiet, NULL); /* a shutdown's notice: lost() says it */
	if (PQstatus(l->db) == CONNECTION_OK)
		r = PQexec(l->db, "LISTEN " CHANNEL);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(l->db);
		l->db = NULL;
		return false;
	}
	/* whatever was cached may have missed a notification */
	rcache_clear(l->cache);
	pthread_mutex_lock(&l->mu);
	bool was = l->ever_up;
	l->up = l->ever_up = true;
	pthread_mutex_unlock(&l->mu);
	if (was)
		log_event(LOG_INFO, "store.read_cache_on", "listening to the database's notifications again", NULL);
	return true;
}

/* Under mu: whether a read waits for a barrier not yet sent and none is in
 * flight; if so that barrier is counted as sent (sent after every read now
 * waiting arrived), and the caller sends it (send_barrier) after mu. */
static bool next_barrier(struct pgs_listen *l)
{
	if (!l->wanted || l->inflight)
		return false;
	l->wanted = false;
	l->inflight = true;
	l->sent++;
	return true;
}

/* Sends the barrier next_barrier counted (the listener thread only). */
static void send_barrier(struct pgs_listen *l)
{
	l->deadline = mono_ms() + l->ps->statement_timeout_ms;
	/* an empty query: the server answers it without parsing, planning or
	 * executing anything, and still sends the notifications it holds
	 * before the ReadyForQuery that ends it */
	if (PQsendQuery(l->db, "") != 1)
		lost(l);
}

/* Reads what came on db: notifications, and the barrier's answer; once it
 * is answered to the end, every read waiting for it goes on (after the next
 * barrier is sent, when reads wait for one). */
static void take_in(struct pgs_listen *l)
{
	if (PQconsumeInput(l->db) != 1) {
		lost(l);
		return;
	}
	bool ended = false, ok = true;
	while (l->inflight && !PQisBusy(l->db)) {
		PGresult *r = PQgetResult(l->db);
		if (!r) {
			ended = true; /* the command ended */
			break;
		}
		ok = ok && PQresultStatus(r) == PGRES_EMPTY_QUERY;
		PQclear(r);
	}
	consume_notifies(l);
	if (ended && !ok) {
		lost(l); /* it cannot vouch for anything */
		return;
	}
	if (!ended)
		return;
	pthread_mutex_lock(&l->mu);
	l->done = l->sent;
	l->inflight = false;
	struct store_fresh *ready = detach(l, l->done);
	/* the reads that arrived meanwhile: their barrier goes out before
	 * these reads are woken, so its round trip overlaps their wake-ups */
	bool go = next_barrier(l);
	pthread_mutex_unlock(&l->mu);
	if (go)
		send_barrier(l);
	let_go(ready, true);
}

static void drain_wake(int fd)
{
	char buf[64];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* The listener thread: (re)connects, sends a barrier when a read wants one
 * and none is in flight, and takes in notifications as they come. */
static void *listen_main(void *arg)
{
	struct pgs_listen *l = arg;
	int backoff = 0;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		if (!l->db && listen_again(l)) {
			backoff = 0;
		} else if (!l->db) {
			backoff = backoff ? backoff * 2 : RECONNECT_FIRST_MS;
			if (backoff > RECONNECT_MAX_MS)
				backoff = RECONNECT_MAX_MS;
		}
		if (l->db) {
			pthread_mutex_lock(&l->mu);
			bool go = next_barrier(l);
			pthread_mutex_unlock(&l->mu);
			if (go)
				send_barrier(l);
		}
		int fd = l->db ? PQsocket(l->db) : -1;
		int timeout = fd < 0 ? backoff : -1;
		if (fd >= 0 && l->inflight) {
			int64_t left = l->deadline - mono_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
		int n = poll(p, fd >= 0 ? 2 : 1, timeout);
		if (n > 0 && p[0].revents) {
			drain_wake(l->wake[0]);
			pthread_mutex_lock(&l->mu);
			l->kicked = false;
			pthread_mutex_unlock(&l->mu);
		}
		if (fd >= 0 && n > 0 && p[1].revents)
			take_in(l);
		else if (fd >= 0 && l->inflight && mono_ms() >= l->deadline)
			lost(l); /* no answer in time: it cannot vouch for anything */
	}
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	pthread_mutex_lock(&l->mu);
	l->up = l->inflight = false;
	struct store_fresh *ready = detach(l, UINT64_MAX);
	pthread_mutex_unlock(&l->mu);
	let_go(ready, false);
	return NULL;
}

static enum store_status install_trigger(struct pgconn *c, struct store_error *err)
{
	char sql[96];
	snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", PGS_LOCK_SCHEMA);
	enum store_status st = pgs_run(c, sql, err, "locking the schema");
	if (st != STORE_OK)
		return st;
	st = pgs_run(c, trigger_sql, err, "adding the change trigger");
	snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", PGS_LOCK_SCHEMA);
	pgs_run(c, sql, NULL, "unlocking the schema");
	return st;
}

int pgs_cache_open(struct pg_store *ps, struct pgconn *c, size_t cache_bytes, char *err, size_t errlen)
{
	struct store_error e;
	if (install_trigger(c, &e) != STORE_OK) {
		snprintf(err, errlen, "%s", e.message);
		return -1;
	}
	struct rcache *cache = rcache_new(cache_bytes);
	if (!cache)
		return 0; /* none asked for, or no memory: every read asks the database */
	struct pgs_listen *l = calloc(1, sizeof *l);
	if (!l) {
		rcache_free(cache);
		return 0;
	}
	l->ps = ps;
	l->cache = cache;
	if (pipe2(l->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		goto fail;
	if (pthread_mutex_init(&l->mu, NULL) != 0)
		goto fail_pipe;
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0)
		goto fail_mutex;
	ps->listen = l;
	ps->base.cache = cache;
	return 0;
fail_mutex:
	pthread_mutex_destroy(&l->mu);
fail_pipe:
	close(l->wake[0]);
	close(l->wake[1]);
fail:
	free(l);
	rcache_free(cache);
	snprintf(err, errlen, "cannot start the read cache's listener");
	return -1;
}

void pgs_cache_close(struct pg_store *ps)
{
	struct pgs_listen *l = ps->listen;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_mutex_unlock(&l->mu);
	ssize_t w = write(l->wake[1], "s", 1);
	(void)w;
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->mu);
	close(l->wake[0]);
	close(l->wake[1]);
	ps->base.cache = NULL;
	rcache_free(l->cache);
	free(l);
	ps->listen = NULL;
}

bool pg_cache_wait(struct store *s, struct store_fresh *f)
{
	struct pgs_listen *l = pgs_of(s)->listen;
	f->fresh = false;
	if (!l)
		return true;
	pthread_mutex_lock(&l->mu);
	if (!l->up || l->stop) {
		pthread_mutex_unlock(&l->mu);
		return true; /* not listening: the database */
	}
	/* a barrier sent after this read arrived: the next one */
	f->after = l->sent + 1;
	f->next = l->waiting;
	l->waiting = f;
	l->wanted = true;
	/* while one is in flight the listener sends the next once it is
	 * answered; else it is woken to send it */
	bool kick = !l->inflight && !l->kicked;
	l->kicked = l->kicked || kick;
	pthread_mutex_unlock(&l->mu);
	if (kick) {
		ssize_t w = write(l->wake[1], "r", 1);
		(void)w;
	}
	return false;
}
