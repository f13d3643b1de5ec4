/* Unit tests: the SQLite store's checkpointer (core/store/store_sqlite_ckpt.c),
 * over a real SQLite file in a fresh temporary directory per test. The
 * write-ahead log is copied back by the checkpointer's thread, not inside a
 * commit; its growth stays bounded while a reader holds an old snapshot;
 * a process killed part way through a checkpoint loses no committed write
 * and leaves a store `crosswalk check` finds clean. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/metrics.h"
#include "store/store.h"
#include "testenv.h"

/* a WAL frame: a page and its header */
#define FRAME_BYTES (4096 + 24)

struct fixture {
	char dir[64];
	char data[96]; /* dir/data: created by the store */
	char db[128];  /* data/store.db */
	char wal[128]; /* data/store.db-wal */
	struct store *s;
};

static void open_store(struct fixture *f)
{
	char err[256];
	if (store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, err, sizeof err) != 0)
		fail_msg("open: %s", err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/cw-ckpt-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->data, sizeof f->data, "%s/data", f->dir);
	snprintf(f->db, sizeof f->db, "%s/store.db", f->data);
	snprintf(f->wal, sizeof f->wal, "%s/store.db-wal", f->data);
	open_store(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->s)
		store_close(f->s);
	run_shell("rm -rf '%s'", f->dir);
	free(f);
	return 0;
}

static long long file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A Patient named id whose name's text is text (the padding that sizes it). */
static cJSON *padded_patient(const char *id, const char *text)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "resourceType", "Patient");
	cJSON *hn = cJSON_CreateObject();
	cJSON_AddStringToObject(hn, "family", id);
	cJSON_AddStringToObject(hn, "text", text);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "name"), hn);
	return p;
}

/* One transaction of n Patients of about 2 KB each, ids prefix-first..; on
 * a caller's transaction, so it is one commit of many frames. */
static enum store_status write_batch(struct store *s, const char *prefix, int first, int n)
{
	static char text[2048];
	if (!text[0]) {
		memset(text, 'x', sizeof text - 1);
		text[sizeof text - 1] = '\0';
	}
	struct store_error err = {0};
	enum store_status st = store_begin(s, &err);
	for (int i = 0; st == STORE_OK && i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "%s-%d", prefix, first + i);
		cJSON *p = padded_patient(id, text);
		st = store_create(s, "Patient", p, id, NULL, &err);
		cJSON_Delete(p);
	}
	if (st == STORE_OK)
		return store_commit(s, &err);
	store_rollback(s, NULL);
	return st;
}

/* Commits that fill the log several times over are copied back by the
 * checkpointer's thread: crosswalk_store_checkpoints_total counts its
 * rounds (a checkpoint SQLite runs inside a commit is not counted), and the
 * database file grows with what was copied. */
static void log_is_checkpointed_by_its_own_thread(void **state)
{
	struct fixture *f = *state;
	unsigned long before = metrics_counter_get(METRICS_STORE_CHECKPOINTS);
	long long db0 = file_size(f->db);
	int written = 0;
	/* about 3 times the pages that wake the checkpointer */
	while ((long long)written * 2200 < 3LL * STORE_SQLITE_WAL_PAGES * 4096) {
		assert_int_equal(write_batch(f->s, "ck", written, 64), STORE_OK);
		written += 64;
	}
	double t0 = now_s();
	while (metrics_counter_get(METRICS_STORE_CHECKPOINTS) == before && now_s() - t0 < 20)
		usleep(10000);
	unsigned long ran = metrics_counter_get(METRICS_STORE_CHECKPOINTS) - before;
	if (ran == 0)
		fail_msg("no checkpoint ran on the checkpointer's thread after %d writes (log %lld bytes)", written,
			 file_size(f->wal));
	t0 = now_s();
	while (file_size(f->db) < db0 + (long long)STORE_SQLITE_WAL_PAGES * 4096 && now_s() - t0 < 20)
		usleep(10000);
	if (file_size(f->db) < db0 + (long long)STORE_SQLITE_WAL_PAGES * 4096)
		fail_msg("the database file stayed at %lld bytes: nothing was copied back", file_size(f->db));
	/* everything is there */
	struct store_error err = {0};
	for (int i = 0; i < written; i += 97) {
		char id[64];
		snprintf(id, sizeof id, "ck-%d", i);
		cJSON *out = NULL;
		assert_int_equal(store_read(f->s, "Patient", id, &out, &err), STORE_OK);
		cJSON_Delete(out);
	}
}

struct bounded {
	struct fixture *f;
	_Atomic long long max_wal;
	_Atomic bool released, done;
	enum store_status st;
	int written, after_release;
};

static void *writer_main(void *arg)
{
	struct bounded *b = arg;
	/* until 40 transactions have committed after the reader let go */
	while (b->after_release < 40) {
		bool released = atomic_load(&b->released);
		b->st = write_batch(b->f->s, "bd", b->written, 16);
		if (b->st != STORE_OK)
			break;
		b->written += 16;
		b->after_release += released;
		long long w = file_size(b->f->wal);
		if (w > atomic_load(&b->max_wal))
			atomic_store(&b->max_wal, w);
	}
	atomic_store(&b->done, true);
	return NULL;
}

/* A reader holds a snapshot from before a long run of writes (as a long
 * search would) and lets it go 3 s later: past the bound, writes wait for it
 * rather than grow the log, so the log's file never grows much beyond the
 * bound; once the reader has gone, the writes go on. */
static void log_stays_bounded_while_a_reader_holds_a_snapshot(void **state)
{
	struct fixture *f = *state;
	sqlite3 *r = NULL;
	assert_int_equal(sqlite3_open_v2(f->db, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM sqlite_master;", NULL, NULL, NULL), SQLITE_OK);
	struct bounded b = {.f = f};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &b), 0);
	long long bound = (long long)STORE_SQLITE_WAL_BOUND_PAGES * FRAME_BYTES;
	/* the reader lets go after 3 s (less than the 5 s writes wait for
	 * it), or at once when the log has grown half as far again as the
	 * bound (it cannot, when the bound holds) */
	double t0 = now_s();
	while (!atomic_load(&b.done) && atomic_load(&b.max_wal) < bound + bound / 2 && now_s() - t0 < 3)
		usleep(10000);
	int at_release = b.written;
	assert_int_equal(sqlite3_exec(r, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(r);
	atomic_store(&b.released, true);
	pthread_join(th, NULL);
	assert_int_equal(b.st, STORE_OK);
	print_message("written before the reader let go: %d, in all: %d; largest log: %lld bytes (bound %lld)\n",
		      at_release, b.written, (long long)atomic_load(&b.max_wal), bound);
	if (atomic_load(&b.max_wal) > bound + bound / 4)
		fail_msg("the log grew to %lld bytes while a reader held its snapshot (bound %lld)",
			 (long long)atomic_load(&b.max_wal), bound);
	/* the writes reached the bound while the reader held on */
	assert_true(atomic_load(&b.max_wal) > bound / 2);
	/* every write is there */
	struct store_error err = {0};
	for (int i = 0; i < b.written; i += 101) {
		char id[64];
		snprintf(id, sizeof id, "bd-%d", i);
		cJSON *out = NULL;
		assert_int_equal(store_read(f->s, "Patient", id, &out, &err), STORE_OK);
		cJSON_Delete(out);
	}
}

/* The log's restart count: the checkpoint sequence number of its header
 * (big-endian, at byte 12), which SQLite raises each time the log starts
 * again from its beginning; -1 while there is no header. */
static long long log_restarts(const char *wal)
{
	unsigned char h[16];
	FILE *fp = fopen(wal, "rb");
	if (!fp)
		return -1;
	size_t n = fread(h, 1, sizeof h, fp);
	fclose(fp);
	if (n != sizeof h)
		return -1;
	return (long long)h[12] << 24 | (long long)h[13] << 16 | (long long)h[14] << 8 | (long long)h[15];
}

#define CONCURRENT_WRITERS 8

struct concurrent {
	struct fixture *f;
	_Atomic bool stop;
	_Atomic int written;
	_Atomic enum store_status st;
	int n;
};

/* Single creates, each queued to the committer as a gateway's are: with
 * CONCURRENT_WRITERS of these the committer always has a group to commit. */
static void *creator_main(void *arg)
{
	struct concurrent *c = arg;
	char text[3000]; /* about a page per create */
	memset(text, 'x', sizeof text - 1);
	text[sizeof text - 1] = '\0';
	for (int i = 0; !atomic_load(&c->stop); i++) {
		char id[64];
		snprintf(id, sizeof id, "cw%d-%d", c->n, i);
		cJSON *p = padded_patient(id, text);
		struct store_error err = {0};
		enum store_status st = store_create(c->f->s, "Patient", p, id, NULL, &err);
		cJSON_Delete(p);
		if (st != STORE_OK) {
			atomic_store(&c->st, st);
			break;
		}
		atomic_fetch_add(&c->written, 1);
	}
	return NULL;
}

/* Under a steady stream of concurrent creates (the committer never idle,
 * no reader holding a snapshot), the log is copied back in full and starts
 * again from its beginning every STORE_SQLITE_WAL_PAGES frames or so, well
 * short of the bound that holds writers off. A checkpoint that only ever
 * copies what was committed before it started never catches up with such a
 * stream, and the log would grow to the bound between restarts. */
static void log_restarts_under_concurrent_creates(void **state)
{
	struct fixture *f = *state;
	struct concurrent c[CONCURRENT_WRITERS];
	pthread_t th[CONCURRENT_WRITERS];
	/* short of the bound, where a restarting checkpoint holds writers
	 * off: a log that only starts again there reaches it every time */
	long long limit = (long long)STORE_SQLITE_WAL_BOUND_PAGES * 9 / 10 * FRAME_BYTES;
	/* a create writes a page or more (its 3 KB row, index rows): this
	 * many fill the log to its bound many times over */
	int most = 10 * STORE_SQLITE_WAL_BOUND_PAGES;
	long long max_wal = 0, first = -1, last = -1;
	for (int i = 0; i < CONCURRENT_WRITERS; i++) {
		c[i] = (struct concurrent){.f = f, .n = i};
		atomic_store(&c[i].st, STORE_OK);
		assert_int_equal(pthread_create(&th[i], NULL, creator_main, &c[i]), 0);
	}
	int total = 0;
	for (;;) {
		usleep(2000);
		long long w = file_size(f->wal), r = log_restarts(f->wal);
		if (w > max_wal)
			max_wal = w;
		if (r >= 0 && first < 0)
			first = r;
		last = r;
		total = 0;
		bool failed = false;
		for (int i = 0; i < CONCURRENT_WRITERS; i++) {
			total += atomic_load(&c[i].written);
			failed |= atomic_load(&c[i].st) != STORE_OK;
		}
		if (failed || total >= most || max_wal > limit || (first >= 0 && last - first >= 4))
			break;
	}
	for (int i = 0; i < CONCURRENT_WRITERS; i++)
		atomic_store(&c[i].stop, true);
	for (int i = 0; i < CONCURRENT_WRITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(atomic_load(&c[i].st), STORE_OK);
	}
	print_message("%d creates; largest log %lld bytes (limit %lld); log restarts %lld\n", total, max_wal, limit,
		      last - first);
	if (max_wal > limit)
		fail_msg("the log grew to %lld bytes under concurrent creates after %d of them (restarted %lld times): "
			 "it is not started again once copied back",
			 max_wal, total, last - first);
	if (last - first < 4)
		fail_msg("the log started again %lld times in %d creates", last - first, total);
}

static void say_nothing(void *ctx, const char *line)
{
	(void)ctx;
	(void)line;
}

/* A process writing through the store is killed (SIGKILL) while the
 * checkpointer copies the log back (the database file is growing): every
 * transaction it had committed is read back after a reopen, and the check
 * finds the store clean. */
static void kill_9_during_a_checkpoint_loses_nothing(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	f->s = NULL;
	long long db0 = file_size(f->db);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		struct store *s = NULL;
		char err[256];
		if (store_open_sqlite(f->data, 0, 0, &s, err, sizeof err) != 0)
			_exit(3);
		for (int n = 0;; n += 64) {
			if (write_batch(s, "kl", n, 64) != STORE_OK)
				_exit(4);
			int done = n + 64; /* committed: told only after the commit returned */
			if (write(fds[1], &done, sizeof done) != (ssize_t)sizeof done)
				_exit(5);
		}
	}
	close(fds[1]);
	int acked = 0, got;
	bool copying = false;
	double t0 = now_s();
	/* kill once the database file grows (a checkpoint is copying pages) */
	while (now_s() - t0 < 60 && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got) {
		acked = got;
		if (file_size(f->db) > db0 + 64 * 4096) {
			copying = true;
			break;
		}
	}
	kill(pid, SIGKILL);
	int ws;
	waitpid(pid, &ws, 0);
	/* what was acknowledged before the kill, read to the end of the pipe */
	while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
		acked = got;
	close(fds[0]);
	if (!copying)
		fail_msg("no checkpoint copied pages to the database file within 60 s (%d writes)", acked);
	assert_true(WIFSIGNALED(ws));
	print_message("killed after %d acknowledged writes; log %lld bytes, database %lld bytes\n", acked,
		      file_size(f->wal), file_size(f->db));
	open_store(f);
	struct store_error err = {0};
	for (int i = 0; i < acked; i++) {
		char id[64];
		snprintf(id, sizeof id, "kl-%d", i);
		cJSON *out = NULL;
		if (store_read(f->s, "Patient", id, &out, &err) != STORE_OK)
			fail_msg("%s was acknowledged before the kill and is lost: %s", id, err.message);
		cJSON_Delete(out);
	}
	store_close(f->s);
	f->s = NULL;
	char cerr[256];
	assert_int_equal(store_check_sqlite(f->data, 0, say_nothing, NULL, cerr, sizeof cerr), 0);
	open_store(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(log_is_checkpointed_by_its_own_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(log_stays_bounded_while_a_reader_holds_a_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(kill_9_during_a_checkpoint_loses_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(log_restarts_under_concurrent_creates, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
