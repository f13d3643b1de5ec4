/* store_sqlite_ckpt — the checkpointer: copies the write-ahead log back into
 * the database file on its own thread and connection, off the commit path.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold: that commit (and every answer waiting for it) waits for the
 * copy of thousands of pages and an fsync of the database file. Here every
 * writing connection has the automatic checkpoint off and a WAL hook
 * instead; after a commit that leaves SS_CKPT_PAGES or more frames in the
 * log, the hook wakes the checkpointer (a flag and a signal, nothing else on
 * the committing thread), which runs a PASSIVE checkpoint: it copies what no
 * reader still needs, takes no lock a writer waits for and never waits
 * itself.
 *
 * The log starts again: SQLite restarts a log from its beginning only when
 * the whole of it has been copied back, and a round copies only what was in
 * the log when it began; under a steady stream of commits the writers
 * always appended more meanwhile, so a log would only ever start again at
 * the bound below (a 32 MB file, commits extending it, and writers held off
 * there). So after a round the next commit's WAL hook copies the rest on
 * its own connection (copy_tail: the frames appended while the round ran,
 * at most SS_CKPT_TAIL_PAGES, else the thread runs another round, unless
 * the log is half way to its bound), and the
 * next write starts the log again; between restarts it holds about
 * SS_CKPT_PAGES frames, the automatic checkpoint's copy of thousands of
 * pages stays off the commit path, and a commit waits at most for that
 * tail and one sync of the database file once per round.
 *
 * Bounded growth: a reader holding an old snapshot stops a passive
 * checkpoint short, and the log would grow for as long as it holds it. When
 * the log holds SS_CKPT_HARD_PAGES frames or more and a passive checkpoint
 * could not copy them all, the checkpointer runs a RESTART checkpoint: it
 * holds off new writers while it waits (at most SS_CKPT_WAIT_MS) for the
 * readers to move on, copies everything and lets the next writer start the
 * log again from its beginning. A writer whose commit left the log past the
 * bound waits in the hook (its commit done, its locks released) for that
 * round, so the restarting checkpoint gets the writer lock at once; others
 * wait for it in their busy handler (less than their busy timeout). If the
 * reader holds on longer, writers go on and the next commit tries again,
 * so the log grows by at most one commit per writer per wait. When the log
 * starts again, its file is cut back to SS_CKPT_FILE_LIMIT bytes
 * (journal_size_limit, store_sqlite.c).
 *
 * Durability is SQLite's: a checkpoint copies committed frames and syncs
 * the database file before it marks them copied; a crash part way through
 * leaves them in the log, where the next open reads them. */
#include "store/store_sqlite_int.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "base/log.h"
#include "base/metrics.h"

/* The rest of a round, on the writer that just committed: the checkpointer
 * copied what was in the log when its round began, while writers went on
 * appending; a passive checkpoint here copies only what they appended since
 * (no other writer commits meanwhile on a store with one committer), so the
 * whole log is copied back and the next write starts it again from its
 * beginning. Without it a steady stream of commits keeps the log from ever
 * being copied in full: it grows to SS_CKPT_HARD_PAGES between restarts,
 * each commit extends its file, and the restart at the bound holds writers
 * off. Called with ss->ckpt.mu held; returns with it held. */
_Thread_local int64_t ss_tail_us;

int64_t ss_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void copy_tail(struct sqlite_store *ss, sqlite3 *db)
{
	ss->ckpt.tailing = true;
	pthread_mutex_unlock(&ss->ckpt.mu);
	int frames = 0, copied = 0;
	int64_t t0 = ss_mono_us();
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
	ss_tail_us += ss_mono_us() - t0;
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_event(LOG_ERROR, "store_checkpoint", "the write-ahead log could not be copied back", "reason",
			  sqlite3_errmsg(db), (const char *)NULL);
	pthread_mutex_lock(&ss->ckpt.mu);
	ss->ckpt.tailing = false;
	if (rc == SQLITE_OK)
		ss->ckpt.copied = copied;
	/* the thread waits while a tail is copied */
	pthread_cond_signal(&ss->ckpt.cv);
}

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
	(void)name;
	struct sqlite_store *ss = ctx;
	pthread_mutex_lock(&ss->ckpt.mu);
	if (frames < ss->ckpt.last_frames) {
		/* the log was restarted */
		ss->ckpt.woken_at = 0;
		ss->ckpt.tail_due = false;
	}
	ss->ckpt.last_frames = frames;
	if (frames < SS_CKPT_PAGES) {
		pthread_mutex_unlock(&ss->ckpt.mu);
		return SQLITE_OK;
	}
	if (ss->ckpt.tail_due && !ss->ckpt.want && !ss->ckpt.tailing && ss->ckpt.begun == ss->ckpt.ended &&
	    frames < SS_CKPT_HARD_PAGES) {
		ss->ckpt.tail_due = false;
		/* a log half way to its bound is copied whatever the tail:
		 * rounds slower than the writers (a starved thread) would
		 * otherwise chase the log to the bound */
		if (frames - ss->ckpt.copied <= SS_CKPT_TAIL_PAGES || frames >= SS_CKPT_HARD_PAGES / 2) {
			copy_tail(ss, db);
			pthread_mutex_unlock(&ss->ckpt.mu);
			return SQLITE_OK;
		}
		/* too much for a commit to wait for: another round first */
		ss->ckpt.woken_at = 0;
	}
	/* a log that is not copied back in full is not restarted, so it can
	 * stay past SS_CKPT_PAGES for many commits: wake the thread once per
	 * SS_CKPT_PAGES new frames, not after every commit (a checkpoint per
	 * commit syncs the database file per commit) */
	if (frames < SS_CKPT_HARD_PAGES && frames - ss->ckpt.woken_at < SS_CKPT_PAGES) {
		pthread_mutex_unlock(&ss->ckpt.mu);
		return SQLITE_OK;
	}
	ss->ckpt.woken_at = frames;
	ss->ckpt.want = true;
	pthread_cond_signal(&ss->ckpt.cv);
	if (frames >= SS_CKPT_HARD_PAGES && ss->ckpt.started) {
		/* past the bound: this writer waits (its commit is done, its
		 * locks released) for a round that starts after now, so that
		 * the restarting checkpoint finds the writer lock free */
		uint64_t after = ss->ckpt.begun;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SS_CKPT_WAIT_MS / 1000 + 1;
		int rc = 0;
		while (ss->ckpt.ended <= after && !ss->ckpt.stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&ss->ckpt.done, &ss->ckpt.mu, &ts);
	}
	pthread_mutex_unlock(&ss->ckpt.mu);
	return SQLITE_OK;
}

int ss_ckpt_init(struct sqlite_store *ss)
{
	if (pthread_mutex_init(&ss->ckpt.mu, NULL) != 0)
		return -1;
	if (pthread_cond_init(&ss->ckpt.cv, NULL) != 0) {
		pthread_mutex_destroy(&ss->ckpt.mu);
		return -1;
	}
	if (pthread_cond_init(&ss->ckpt.done, NULL) != 0) {
		pthread_cond_destroy(&ss->ckpt.cv);
		pthread_mutex_destroy(&ss->ckpt.mu);
		return -1;
	}
	ss->ckpt.inited = true;
	return 0;
}

void ss_ckpt_attach(struct sqlite_store *ss, sqlite3 *db)
{
	/* replaces the automatic checkpoint, which is also a WAL hook */
	sqlite3_wal_hook(db, wal_hook, ss);
}

/* One round: a passive checkpoint, and a restarting one when the log is
 * past its bound and the passive one stopped short. */
static int checkpoint(struct sqlite_store *ss)
{
	int frames = 0, copied = 0;
	int rc = sqlite3_wal_checkpoint_v2(ss->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
	int left_copied = rc == SQLITE_OK ? copied : -1;
	if (rc == SQLITE_OK && frames >= SS_CKPT_HARD_PAGES && copied < frames) {
		left_copied = -1;
		rc = sqlite3_wal_checkpoint_v2(ss->ckpt.db, NULL, SQLITE_CHECKPOINT_RESTART, &frames, &copied);
		if (rc == SQLITE_BUSY) {
			char n[32];
			snprintf(n, sizeof n, "%d", frames);
			log_event(LOG_WARN, "store_checkpoint_blocked",
				  "a reader holds an old snapshot: the write-ahead log cannot be copied back yet",
				  "frames", n, (const char *)NULL);
		}
	}
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_event(LOG_ERROR, "store_checkpoint", "the write-ahead log could not be copied back", "reason",
			  sqlite3_errmsg(ss->ckpt.db), (const char *)NULL);
	metrics_counter_add(METRICS_STORE_CHECKPOINTS, 1);
	return left_copied;
}

static void *ckpt_main(void *arg)
{
	struct sqlite_store *ss = arg;
	pthread_mutex_lock(&ss->ckpt.mu);
	for (;;) {
		while ((!ss->ckpt.want || ss->ckpt.tailing) && !ss->ckpt.stop)
			pthread_cond_wait(&ss->ckpt.cv, &ss->ckpt.mu);
		if (ss->ckpt.stop)
			break;
		ss->ckpt.want = false;
		ss->ckpt.tail_due = false;
		uint64_t round = ++ss->ckpt.begun;
		pthread_mutex_unlock(&ss->ckpt.mu);
		int copied = checkpoint(ss);
		pthread_mutex_lock(&ss->ckpt.mu);
		/* a passive round that copied what it found: the next commit
		 * copies the rest (copy_tail) */
		if (copied > 0) {
			ss->ckpt.copied = copied;
			ss->ckpt.tail_due = true;
		}
		ss->ckpt.ended = round;
		pthread_cond_broadcast(&ss->ckpt.done);
	}
	pthread_mutex_unlock(&ss->ckpt.mu);
	return NULL;
}

int ss_ckpt_start(struct sqlite_store *ss, char *err, size_t errlen)
{
	int rc = sqlite3_open_v2(ss->path, &ss->ckpt.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", ss->path,
			 ss->ckpt.db ? sqlite3_errmsg(ss->ckpt.db) : sqlite3_errstr(rc));
		sqlite3_close(ss->ckpt.db);
		ss->ckpt.db = NULL;
		return -1;
	}
	sqlite3_extended_result_codes(ss->ckpt.db, 1);
	/* how long a restarting checkpoint holds writers off waiting for readers */
	sqlite3_busy_timeout(ss->ckpt.db, SS_CKPT_WAIT_MS);
	sqlite3_wal_autocheckpoint(ss->ckpt.db, 0);
	/* a first read opens the log: a checkpoint on a connection that has
	 * not read yet does nothing (in the SQLite of Debian 12) */
	if (sqlite3_exec(ss->ckpt.db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", ss->path, sqlite3_errmsg(ss->ckpt.db));
		sqlite3_close(ss->ckpt.db);
		ss->ckpt.db = NULL;
		return -1;
	}
	if (pthread_create(&ss->ckpt.thread, NULL, ckpt_main, ss) != 0) {
		snprintf(err, errlen, "cannot start the store's checkpointer thread");
		sqlite3_close(ss->ckpt.db);
		ss->ckpt.db = NULL;
		return -1;
	}
	ss->ckpt.started = true;
	return 0;
}

void ss_ckpt_stop(struct sqlite_store *ss)
{
	if (!ss->ckpt.inited)
		return;
	if (ss->ckpt.started) {
		pthread_mutex_lock(&ss->ckpt.mu);
		ss->ckpt.stop = true;
		pthread_cond_signal(&ss->ckpt.cv);
		pthread_cond_broadcast(&ss->ckpt.done);
		pthread_mutex_unlock(&ss->ckpt.mu);
		pthread_join(ss->ckpt.thread, NULL);
		ss->ckpt.started = false;
	}
	sqlite3_close(ss->ckpt.db);
	ss->ckpt.db = NULL;
	pthread_mutex_destroy(&ss->ckpt.mu);
	pthread_cond_destroy(&ss->ckpt.cv);
	pthread_cond_destroy(&ss->ckpt.done);
	ss->ckpt.inited = false;
}

void ss_sync_full(struct conn *c)
{
	for (int tries = 0; sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK; tries++)
		if (tries == 0)
			log_event(LOG_ERROR, "store_sync", "the store could not turn fsync on commit back on", "reason",
				  sqlite3_errmsg(c->db), (const char *)NULL);
}
