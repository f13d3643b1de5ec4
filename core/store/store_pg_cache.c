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
 *    barrier's thread reads to the end, invalidating every notified
 *    resource (rcache_invalidate) before the read goes on. The first read
 *    to find the connection free runs the barrier itself; reads arriving
 *    while one is in flight wait for the next, so one round trip serves
 *    all the reads that arrived meanwhile.
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
 * The connection is held by one thread at a time (busy): a reader running a
 * barrier, or the listener thread, which reconnects and takes in
 * notifications while no barrier runs (so they never pile up unread). */
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
	pthread_cond_t cv; /* a barrier ended, the connection was handed back, up changed */
	int wake[2];       /* stop, or the connection was lost by a reader */
	/* under mu: sent counts the barriers started, done is the number of
	 * the last one answered with every notification before it consumed;
	 * busy: a thread holds db (a reader running a barrier, or the
	 * listener thread taking in notifications or reconnecting); up:
	 * listening */
	uint64_t sent, done;
	bool busy, up, ever_up, stop;
	PGconn *db; /* used by the thread that set busy only */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Invalidates every resource notified so far (the caller holds db). */
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

/* Takes db (waits while another thread holds it); under mu. */
static void take(struct pgs_listen *l)
{
	while (l->busy)
		pthread_cond_wait(&l->cv, &l->mu);
	l->busy = true;
}

/* Hands db back; under mu. */
static void give(struct pgs_listen *l)
{
	l->busy = false;
	pthread_cond_broadcast(&l->cv);
}

/* Not listening any more (the caller holds db): no read uses the cache
 * until it is back. */
static void lost(struct pgs_listen *l)
{
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	rcache_clear(l->cache);
	/* the listener thread may be polling the closed socket: it reconnects */
	ssize_t w = write(l->wake[1], "l", 1);
	(void)w;
	pthread_mutex_lock(&l->mu);
	bool was = l->up;
	l->up = false;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
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

/* Connects and listens (the caller holds db). */
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
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (was)
		log_event(LOG_INFO, "store.read_cache_on", "listening to the database's notifications again", NULL);
	return true;
}

/* One barrier on db (the caller holds it): a command sent now, its answer
 * read to the end, every notification before it consumed. false: the
 * connection is lost (lost() was called). */
static bool barrier(struct pgs_listen *l)
{
	bool ok = PQsendQuery(l->db, "SELECT 1") == 1;
	int64_t deadline = mono_ms() + l->ps->statement_timeout_ms;
	while (ok) {
		while (ok && PQisBusy(l->db)) {
			int left = (int)(deadline - mono_ms());
			struct pollfd p = {.fd = PQsocket(l->db), .events = POLLIN};
			int n = left > 0 ? poll(&p, 1, left) : 0;
			if (n < 0 && errno == EINTR)
				continue;
			/* no answer in time: it cannot vouch for anything */
			ok = n > 0 && PQconsumeInput(l->db) == 1;
		}
		if (!ok)
			break;
		PGresult *r = PQgetResult(l->db);
		if (!r)
			break; /* the command ended */
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	if (ok)
		consume_notifies(l);
	else
		lost(l);
	return ok;
}

static void drain_wake(int fd)
{
	char buf[64];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* The listener thread: (re)connects, and takes in notifications while no
 * read runs a barrier, so that they never pile up unread. */
static void *listen_main(void *arg)
{
	struct pgs_listen *l = arg;
	int backoff = 0;
	for (;;) {
		pthread_mutex_lock(&l->mu);
		take(l);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		int fd = -1;
		if (l->db || listen_again(l)) {
			backoff = 0;
			if (PQconsumeInput(l->db) == 1) {
				consume_notifies(l);
				fd = PQsocket(l->db);
			} else {
				lost(l);
			}
		} else {
			backoff = backoff ? backoff * 2 : RECONNECT_FIRST_MS;
			if (backoff > RECONNECT_MAX_MS)
				backoff = RECONNECT_MAX_MS;
		}
		pthread_mutex_lock(&l->mu);
		give(l);
		pthread_mutex_unlock(&l->mu);
		/* a reader may use the socket meanwhile: this only waits for
		 * something to read (or a stop), then takes db to read it */
		struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
		if (poll(p, fd >= 0 ? 2 : 1, fd >= 0 ? -1 : backoff) > 0 && p[0].revents)
			drain_wake(l->wake[0]);
	}
	if (l->db)
		PQfinish(l->db);
	l->db = NULL;
	pthread_mutex_lock(&l->mu);
	give(l);
	pthread_mutex_unlock(&l->mu);
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
	if (pthread_cond_init(&l->cv, NULL) != 0)
		goto fail_mutex;
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0)
		goto fail_cond;
	ps->listen = l;
	ps->base.cache = cache;
	return 0;
fail_cond:
	pthread_cond_destroy(&l->cv);
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
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	close(l->wake[0]);
	close(l->wake[1]);
	ps->base.cache = NULL;
	rcache_free(l->cache);
	free(l);
	ps->listen = NULL;
}

bool pg_cache_fresh(struct store *s)
{
	struct pgs_listen *l = pgs_of(s)->listen;
	if (!l)
		return false;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	int64_t ns = until.tv_nsec + (int64_t)l->ps->statement_timeout_ms * 1000000;
	until.tv_sec += ns / 1000000000;
	until.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&l->mu);
	/* a barrier started after this read arrived: the next one */
	uint64_t mine = l->sent + 1;
	while (l->up && l->done < mine) {
		if (!l->busy) {
			/* lead it: one round trip for every read waiting */
			l->busy = true;
			uint64_t n = ++l->sent;
			pthread_mutex_unlock(&l->mu);
			bool ok = l->db && barrier(l);
			pthread_mutex_lock(&l->mu);
			if (ok && n > l->done)
				l->done = n;
			give(l);
			continue;
		}
		if (pthread_cond_timedwait(&l->cv, &l->mu, &until) != 0)
			break;
	}
	bool fresh = l->up && l->done >= mine;
	pthread_mutex_unlock(&l->mu);
	return fresh;
}
