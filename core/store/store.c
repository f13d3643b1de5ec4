/* store — argument checks and dispatch to the backend; helpers backends
 * share. */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "fhir/fhir_helpers.h"
#include "base/log.h"
#include "base/metrics.h"
#include "fhir/model_query.h"
#include "store/rcache.h"
#include "store/store_version.h"

static atomic_bool full_flag;

bool store_full(void) { return atomic_load(&full_flag); }

void store_note_full(bool full)
{
	if (full && !atomic_exchange(&full_flag, true))
		metrics_counter_add(METRICS_STORE_FULL, 1);
	else if (!full)
		atomic_store(&full_flag, false);
}

static atomic_bool corrupt_flag;

bool store_corrupt(void) { return atomic_load(&corrupt_flag); }

enum store_status store_note_corrupt(struct store_error *err, const char *type, const char *id, int64_t version)
{
	metrics_counter_add(METRICS_STORE_CORRUPT, 1);
	if (!atomic_exchange(&corrupt_flag, true))
		log_msgf(LOG_ERROR, "store",
			 "stored content of %s/%s version %lld failed its integrity check: it is not served; "
			 "restore the data directory from a backup, `crosswalk check` (gateway stopped) lists every "
			 "damaged version (further ones are counted in crosswalk_store_corrupt_total)",
			 type, id, (long long)version);
	return store_fail(err, STORE_CORRUPT,
			  "stored content of %s/%s version %lld failed its integrity check; restore from backup or "
			  "run `crosswalk check`",
			  type, id, (long long)version);
}

const char *store_status_text(enum store_status st)
{
	switch (st) {
#define STORE_TEXT(name, num, http, text) \
	case name:                        \
		return text;
		STORE_STATUSES(STORE_TEXT)
#undef STORE_TEXT
	}
	return "unknown status";
}

int store_status_http(enum store_status st)
{
	switch (st) {
#define STORE_HTTP(name, num, http, text) \
	case name:                        \
		return http;
		STORE_STATUSES(STORE_HTTP)
#undef STORE_HTTP
	}
	return 500;
}

void store_sayf(const struct store_say *out, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (out->say)
		out->say(out->ctx, line);
}

enum store_status store_fail(struct store_error *err, enum store_status st, const char *fmt, ...)
{
	if (err) {
		err->status = st;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
	}
	return st;
}

static enum store_status ok(struct store_error *err)
{
	if (err) {
		err->status = STORE_OK;
		err->message[0] = '\0';
	}
	return STORE_OK;
}

/* A new UUID's text: random bits from the CSPRNG of base/crypto (seeded
 * from the system once, per thread; not a system call per id), the first
 * 48 of them replaced by the Unix time in ms when ms >= 0, then the
 * version digit and the RFC 4122 variant. */
static int new_uuid(int version, int64_t ms, char out[STORE_ID_SIZE])
{
	uint8_t u[16];
	if (crypto_random(u, sizeof u) != 0)
		return -1;
	for (int i = 5; ms >= 0 && i >= 0; i--, ms >>= 8)
		u[i] = (uint8_t)(ms & 0xff);
	u[6] = (uint8_t)((u[6] & 0x0f) | (version << 4));
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	char text[CRYPTO_UUID_TEXT];
	crypto_uuid_format(u, text);
	memcpy(out, text, sizeof text);
	return 0;
}

int store_new_id(char out[STORE_ID_SIZE]) { return new_uuid(4, -1, out); }

int store_new_ordered_id(char out[STORE_ID_SIZE])
{
	/* RFC 9562 version 7: 48 bits of Unix time in ms, then 74 random bits.
	 * Ids made one after the other sort (as text) in the order they were
	 * made, to the millisecond: an index on them grows at its end rather
	 * than at a random leaf per id. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return new_uuid(7, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

void store_time_text(int64_t ms, char out[STORE_TIME_SIZE])
{
	int64_t milli = ms % 1000;
	if (milli < 0)
		milli += 1000;
	time_t secs = (time_t)((ms - milli) / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999) {
		/* out of the instant range: the nearest end */
		snprintf(out, STORE_TIME_SIZE, "%s", ms < 0 ? "0001-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
		return;
	}
	size_t n = strftime(out, STORE_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, STORE_TIME_SIZE - n, ".%03lldZ", (long long)milli);
}

void store_now(char out[STORE_TIME_SIZE], int64_t *ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	long milli = ts.tv_nsec / 1000000;
	size_t n = strftime(out, STORE_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, STORE_TIME_SIZE - n, ".%03ldZ", milli);
	if (ms)
		*ms = (int64_t)ts.tv_sec * 1000 + milli;
}

/* --- argument checks --------------------------------------------------------- */

static enum store_status check_type(const char *type, struct store_error *err)
{
	if (!type || !fhir_is_type_name(type) || strlen(type) >= STORE_TYPE_SIZE || !model_query_type_known(type))
		return store_fail(err, STORE_INVALID, "'%.64s' is not a FHIR resource type", type ? type : "(none)");
	return STORE_OK;
}

static enum store_status check_id(const char *id, struct store_error *err)
{
	if (!id || !fhir_is_id(id))
		return store_fail(err, STORE_INVALID, "'%.64s' is not a valid FHIR id", id ? id : "(none)");
	return STORE_OK;
}

static enum store_status check_body(const char *type, const cJSON *resource, struct store_error *err)
{
	if (!cJSON_IsObject(resource))
		return store_fail(err, STORE_INVALID, "the resource is not a JSON object");
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(resource, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, type) != 0)
		return store_fail(err, STORE_INVALID, "resourceType must be '%s'", type);
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(resource, "meta");
	if (meta && !cJSON_IsObject(meta))
		return store_fail(err, STORE_INVALID, "meta must be an object");
	return STORE_OK;
}

/* A create's text (store_write.text): its opening names the type; what a
 * backend does not take as text (anything but an appended record, or a
 * backend without append_text) becomes the tree. */
static enum store_status check_text(const struct store *s, struct store_write *w)
{
	if (w->kind != STORE_WRITE_CREATE || w->id[0] || w->resource)
		return store_fail(&w->err, STORE_INVALID,
				  "only a create with a new id is given as text, and not also as a tree");
	static const char open[] = "{\"resourceType\":\"";
	size_t n = strlen(w->type);
	const char *t = w->text;
	if (strncmp(t, open, sizeof open - 1) != 0 || strncmp(t + sizeof open - 1, w->type, n) != 0 ||
	    t[sizeof open - 1 + n] != '"' || (t[sizeof open + n] != ',' && t[sizeof open + n] != '}'))
		return store_fail(&w->err, STORE_INVALID, "the record's text must begin with its resourceType '%s'",
				  w->type);
	if (w->append && s->ops->append_text)
		return STORE_OK;
	enum store_status st = sver_parse(w->text, strlen(w->text), &w->resource, &w->err);
	if (st == STORE_OK) {
		free(w->text);
		w->text = NULL;
		st = check_body(w->type, w->resource, &w->err);
	}
	return st;
}

/* "3" or W/"3" → 3; 0 when text is no version number. */
static int64_t parse_version(const char *text)
{
	size_t n = strlen(text);
	if (n >= 4 && text[0] == 'W' && text[1] == '/' && text[2] == '"' && text[n - 1] == '"') {
		text += 3;
		n -= 4;
	}
	if (n == 0 || n > 18)
		return 0;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return 0;
		v = v * 10 + (text[i] - '0');
	}
	return v;
}

#define CHECK(expr)                                   \
	do {                                          \
		enum store_status st_ = (expr);       \
		if (st_ != STORE_OK)                  \
			return st_;                   \
	} while (0)

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

/* --- cache coherence (rcache.h) ------------------------------------------------------------
 * A write outside a transaction is committed when the backend returns, so its
 * resource is invalidated right then; writes inside this thread's transaction
 * are remembered and invalidated when it ends, whichever way. Reads inside a
 * transaction bypass the cache. */

struct txn_keys {
	const struct store *s; /* the store with a transaction open on this thread */
	char **keys;           /* "type\0id" */
	size_t n, cap;
	bool lost;             /* a key could not be remembered: clear the cache at the end */
};

static _Thread_local struct txn_keys tk;

static bool in_txn(const struct store *s)
{
	return tk.s == s;
}

static void txn_flush(struct store *s)
{
	for (size_t i = 0; i < tk.n; i++) {
		if (s->cache)
			rcache_invalidate(s->cache, tk.keys[i], tk.keys[i] + strlen(tk.keys[i]) + 1);
		free(tk.keys[i]);
	}
	free(tk.keys);
	memset(&tk, 0, sizeof tk);
}

/* After a write of type/id returned (whatever its status). */
static void written(struct store *s, const char *type, const char *id)
{
	if (!s->cache || !id)
		return;
	if (!in_txn(s)) {
		rcache_invalidate(s->cache, type, id);
		return;
	}
	if (tk.lost)
		goto now;
	if (tk.n == tk.cap) {
		size_t cap = tk.cap ? tk.cap * 2 : 16;
		char **k = realloc(tk.keys, cap * sizeof *k);
		if (!k)
			goto now;
		tk.keys = k;
		tk.cap = cap;
	}
	size_t tl = strlen(type), il = strlen(id);
	char *key = malloc(tl + il + 2);
	if (!key)
		goto now;
	memcpy(key, type, tl + 1);
	memcpy(key + tl + 1, id, il + 1);
	tk.keys[tk.n++] = key;
	return;
now:
	/* no memory to remember it: invalidating early is still safe against
	 * readers outside the transaction (they read committed versions), and the
	 * end of the transaction flushes the whole cache instead */
	rcache_invalidate(s->cache, type, id);
	tk.lost = true;
}

enum store_status store_begin(struct store *s, struct store_error *err)
{
	ok(err);
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	enum store_status st = s->ops->begin(s, err);
	if (st == STORE_OK) {
		txn_flush(s);
		tk.s = s;
	}
	return st;
}

static void txn_end(struct store *s)
{
	if (!in_txn(s))
		return;
	if (tk.lost && s->cache)
		rcache_clear(s->cache);
	txn_flush(s);
}

enum store_status store_commit(struct store *s, struct store_error *err)
{
	ok(err);
	enum store_status st = s->ops->commit(s, err);
	txn_end(s);
	return st;
}

enum store_status store_rollback(struct store *s, struct store_error *err)
{
	ok(err);
	enum store_status st = s->ops->rollback(s, err);
	txn_end(s);
	return st;
}

enum store_status store_create(struct store *s, const char *type, const cJSON *resource, const char *id,
			       cJSON **out, struct store_error *err)
{
	if (out)
		*out = NULL;
	ok(err);
	CHECK(check_type(type, err));
	CHECK(check_body(type, resource, err));
	if (id)
		CHECK(check_id(id, err));
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	/* a fresh id was never read, so only a client id can be cached */
	enum store_status st = s->ops->create(s, type, resource, id, out, err);
	written(s, type, id);
	return st;
}

enum store_status store_update(struct store *s, const char *type, const char *id, const cJSON *resource,
			       const char *if_match, bool *created, cJSON **out, struct store_error *err)
{
	if (out)
		*out = NULL;
	if (created)
		*created = false;
	ok(err);
	CHECK(check_type(type, err));
	CHECK(check_id(id, err));
	CHECK(check_body(type, resource, err));
	const cJSON *body_id = cJSON_GetObjectItemCaseSensitive(resource, "id");
	if (body_id && (!cJSON_IsString(body_id) || strcmp(body_id->valuestring, id) != 0))
		return store_fail(err, STORE_INVALID, "the resource's id does not match the id '%s'", id);
	int64_t want = 0;
	if (if_match) {
		want = parse_version(if_match);
		if (want <= 0)
			return store_fail(err, STORE_INVALID, "'%.32s' is not a version id", if_match);
	}
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	enum store_status st = s->ops->update(s, type, id, resource, want, created, out, err);
	written(s, type, id);
	return st;
}

enum store_status store_read(struct store *s, const char *type, const char *id, cJSON **out,
			     struct store_error *err)
{
	*out = NULL;
	ok(err);
	CHECK(check_type(type, err));
	if (!id || !fhir_is_id(id))
		return store_fail(err, STORE_NOT_FOUND, "no %s with that id", type);
	CHECK(store_settle(s, type, err));
	return s->ops->read(s, type, id, 0, out, err);
}

enum store_status store_vread(struct store *s, const char *type, const char *id, const char *vid, cJSON **out,
			      struct store_error *err)
{
	*out = NULL;
	ok(err);
	CHECK(check_type(type, err));
	int64_t v = vid ? parse_version(vid) : 0;
	if (!id || !fhir_is_id(id) || v <= 0)
		return store_fail(err, STORE_NOT_FOUND, "no such version of %s", type);
	CHECK(store_settle(s, type, err));
	return s->ops->read(s, type, id, v, out, err);
}

enum store_status store_delete(struct store *s, const char *type, const char *id, int64_t *version,
			       struct store_error *err)
{
	if (version)
		*version = 0;
	ok(err);
	CHECK(check_type(type, err));
	if (!id || !fhir_is_id(id))
		return store_fail(err, STORE_NOT_FOUND, "no %s with that id", type);
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	enum store_status st = s->ops->del(s, type, id, version, err);
	written(s, type, id);
	return st;
}

enum store_status store_submit(struct store *s, struct store_write *w, const char *if_match)
{
	w->status = STORE_OK;
	w->stored = NULL;
	w->created = false;
	w->version = 0;
	w->if_match_version = 0;
	w->impl = NULL;
	ok(&w->err);
	enum store_status st = check_type(w->type, &w->err);
	if (st == STORE_OK && w->text)
		st = check_text(s, w);
	else if (st == STORE_OK && w->kind != STORE_WRITE_DELETE)
		st = check_body(w->type, w->resource, &w->err);
	if (st == STORE_OK && (w->id[0] || w->kind != STORE_WRITE_CREATE))
		st = check_id(w->id, &w->err);
	if (st == STORE_OK && w->kind == STORE_WRITE_UPDATE) {
		const cJSON *body_id = cJSON_GetObjectItemCaseSensitive(w->resource, "id");
		if (body_id && (!cJSON_IsString(body_id) || strcmp(body_id->valuestring, w->id) != 0))
			st = store_fail(&w->err, STORE_INVALID, "the resource's id does not match the id '%s'", w->id);
		if (st == STORE_OK && if_match) {
			w->if_match_version = parse_version(if_match);
			if (w->if_match_version <= 0)
				st = store_fail(&w->err, STORE_INVALID, "'%.32s' is not a version id", if_match);
		}
	}
	if (st == STORE_OK && s->readonly)
		st = store_fail(&w->err, STORE_INVALID, "the store is open read-only");
	if (st == STORE_OK && w->append && (w->kind != STORE_WRITE_CREATE || w->id[0] || w->deliver))
		st = store_fail(&w->err, STORE_INVALID, "an appended record is a create with a new id, not delivered");
	if (st == STORE_OK && in_txn(s))
		st = store_fail(&w->err, STORE_INVALID, "a queued write cannot join this thread's transaction");
	if (st == STORE_OK && !s->ops->submit)
		st = store_fail(&w->err, STORE_INVALID, "this store does not queue writes");
	if (st != STORE_OK) {
		w->status = st;
		return st;
	}
	/* once queued, w is done's: it may have run, and w be gone, already */
	return s->ops->submit(s, w);
}

enum store_status store_settle(struct store *s, const char *type, struct store_error *err)
{
	ok(err);
	if (!s->ops->settle || s->readonly || in_txn(s))
		return STORE_OK;
	return s->ops->settle(s, type, err);
}

/* Whether a search's criteria reach other types (a chain, a reverse chain,
 * a typed reference): then appended records of any type may matter. */
static bool chains(const struct store_search *q)
{
	for (size_t i = 0; i < q->n_params; i++)
		if (strchr(q->params[i].name, '.') || !strncmp(q->params[i].name, "_has", 4) ||
		    (q->params[i].modifier && q->params[i].modifier[0] &&
		     isupper((unsigned char)q->params[i].modifier[0])))
			return true;
	return false;
}

void store_write_release(struct store_write *w)
{
	cJSON_Delete(w->resource);
	cJSON_Delete(w->stored);
	free(w->text);
	w->resource = w->stored = NULL;
	w->text = NULL;
}

void store_drain(struct store *s)
{
	if (s && s->ops->drain)
		s->ops->drain(s);
}

void store_write_finished(struct store *s, struct store_write *w)
{
	if (s->cache && w->id[0])
		rcache_invalidate(s->cache, w->type, w->id);
	w->done(w->ctx);
}

enum store_status store_history(struct store *s, const char *type, const char *id, int64_t since_ms, size_t count,
				size_t offset, int64_t before, struct store_page *out, struct store_error *err)
{
	memset(out, 0, sizeof *out);
	ok(err);
	if (type)
		CHECK(check_type(type, err));
	if (id && (!type || !fhir_is_id(id)))
		return store_fail(err, STORE_NOT_FOUND, "no such resource");
	if (count > STORE_MAX_COUNT)
		return store_fail(err, STORE_INVALID, "count must be at most %d", STORE_MAX_COUNT);
	char since[STORE_TIME_SIZE] = "";
	if (since_ms != STORE_ALL_TIME)
		store_time_text(since_ms, since);
	if (before < 0)
		return store_fail(err, STORE_INVALID, "the history cursor must be a positive number");
	CHECK(store_settle(s, type, err));
	return s->ops->history(s, type, id, since, count, offset, before > 0 ? before : INT64_MAX, out, err);
}

enum store_status store_search(struct store *s, const char *type, const struct store_search *q,
			       struct store_page *out, struct store_error *err)
{
	memset(out, 0, sizeof *out);
	ok(err);
	CHECK(check_type(type, err));
	if (q->count > STORE_MAX_COUNT)
		return store_fail(err, STORE_INVALID, "_count must be at most %d", STORE_MAX_COUNT);
	for (size_t i = 0; i < q->n_params; i++)
		if (!q->params[i].name || !q->params[i].value)
			return store_fail(err, STORE_INVALID, "search parameter %zu has no name or value", i);
	CHECK(store_settle(s, chains(q) ? NULL : type, err));
	return s->ops->search(s, type, q, out, err);
}

void store_page_release(struct store_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->n; i++)
		cJSON_Delete(page->items[i].resource);
	free(page->items);
	memset(page, 0, sizeof *page);
}

enum store_status store_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				   struct store_error *err)
{
	ok(err);
	CHECK(check_type(type, err));
	if (!id || !*id || version < 1)
		return store_fail(err, STORE_INVALID, "an outbox record needs an id and a version");
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	return s->ops->outbox_add(s, type, id, version, deleted, err);
}

enum store_status store_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
					  struct store_error *err)
{
	ok(err);
	*n = 0;
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	return s->ops->outbox_retry_dead(s, f, n, err);
}

enum store_status store_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out, struct store_error *err)
{
	ok(err);
	memset(out, 0, sizeof *out);
	return s->ops->outbox_next(s, now_ms, out, err);
}

enum store_status store_outbox_settle(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
				      const char *error, struct store_error *err)
{
	ok(err);
	if (state != -1 && state != OUTBOX_PENDING && state != OUTBOX_DEAD)
		return store_fail(err, STORE_INVALID, "bad outbox state %d", state);
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	return s->ops->outbox_settle(s, oid, state, attempts, next_at_ms, error, err);
}

enum store_status store_outbox_list(struct store *s, int state, size_t count, size_t offset,
				    struct outbox_item *items, size_t *n, struct store_error *err)
{
	ok(err);
	*n = 0;
	return s->ops->outbox_list(s, state, count, offset, items, n, err);
}

enum store_status store_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err)
{
	ok(err);
	memset(out, 0, sizeof *out);
	return s->ops->outbox_counts(s, out, err);
}

/* Waits on the calling thread for a decision of ops->cache_wait. */
struct fresh_sync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ended;
};

static void fresh_sync_done(void *ctx)
{
	struct fresh_sync *fs = ctx;
	pthread_mutex_lock(&fs->mu);
	fs->ended = true;
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
}

bool store_cache_waits(const struct store *s) { return s->cache && s->ops->cache_wait; }

bool store_fresh_wait(struct store *s, struct store_fresh *f)
{
	f->fresh = s->cache && !in_txn(s);
	if (!f->fresh || !s->ops->cache_wait)
		return true;
	return s->ops->cache_wait(s, f);
}

/* store_read_text's and store_read_text_after's: fresh is f's answer, or
 * NULL to decide it here (waiting on this thread). */
static enum store_status read_text(struct store *s, const char *type, const char *id, const char *vid,
				   const struct store_fresh *f, struct store_text *out, struct store_error *err)
{
	memset(out, 0, sizeof *out);
	ok(err);
	CHECK(check_type(type, err));
	if (!id || !fhir_is_id(id))
		return store_fail(err, STORE_NOT_FOUND, "no %s with that id", type);
	int64_t v = 0;
	if (vid) {
		char *end;
		long long n = strtoll(vid, &end, 10);
		if (!*vid || *end || n < 1)
			return store_fail(err, STORE_NOT_FOUND, "no version '%.32s' of %s/%s", vid, type, id);
		v = n;
	}
	CHECK(store_settle(s, type, err));
	bool fresh = false;
	if (!v && f) {
		fresh = f->fresh && s->cache && !in_txn(s);
	} else if (!v) {
		struct fresh_sync fs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
		struct store_fresh sf = {.done = fresh_sync_done, .ctx = &fs};
		if (!store_fresh_wait(s, &sf)) {
			pthread_mutex_lock(&fs.mu);
			while (!fs.ended)
				pthread_cond_wait(&fs.cv, &fs.mu);
			pthread_mutex_unlock(&fs.mu);
		}
		fresh = sf.fresh;
	}
	if (!fresh)
		return s->ops->read_text(s, type, id, v, out, err);
	uint64_t ticket;
	if (rcache_get(s->cache, type, id, out, &ticket)) {
		metrics_counter_add(METRICS_READ_CACHE_HIT, 1);
		return STORE_OK;
	}
	metrics_counter_add(METRICS_READ_CACHE_MISS, 1);
	enum store_status st = s->ops->read_text(s, type, id, 0, out, err);
	if (st == STORE_OK)
		rcache_put(s->cache, type, id, ticket, out);
	return st;
}

enum store_status store_read_text(struct store *s, const char *type, const char *id, const char *vid,
				  struct store_text *out, struct store_error *err)
{
	return read_text(s, type, id, vid, NULL, out, err);
}

enum store_status store_read_text_after(struct store *s, const struct store_fresh *f, const char *type, const char *id,
					struct store_text *out, struct store_error *err)
{
	return read_text(s, type, id, NULL, f, out, err);
}

static enum store_status check_mark(const char *name, struct store_error *err)
{
	if (!name || !*name || strlen(name) > 200)
		return store_fail(err, STORE_INVALID, "a mark name is 1 to 200 bytes");
	return STORE_OK;
}

enum store_status store_mark_get(struct store *s, const char *name, int64_t *value, struct store_error *err)
{
	ok(err);
	enum store_status st = check_mark(name, err);
	return st ? st : s->ops->mark_get(s, name, value, err);
}

enum store_status store_mark_set(struct store *s, const char *name, int64_t value, struct store_error *err)
{
	ok(err);
	enum store_status st = check_mark(name, err);
	return st ? st : s->ops->mark_set(s, name, value, err);
}

bool store_replay_shared(const struct store *s) { return s->ops->replay_claim != NULL; }

enum store_status store_replay_claim(struct store *s, const char *iss, const char *jti, int64_t exp, int64_t now,
				     struct store_error *err)
{
	ok(err);
	if (!s->ops->replay_claim)
		return store_fail(err, STORE_INVALID, "this store keeps no shared replay cache");
	if (!iss || !*iss || strlen(iss) > 512 || !jti || !*jti || strlen(jti) > 512)
		return store_fail(err, STORE_INVALID, "an assertion's iss and jti are 1 to 512 bytes");
	return s->ops->replay_claim(s, iss, jti, exp, now, err);
}

enum store_status store_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err)
{
	ok(err);
	memset(out, 0, sizeof *out);
	CHECK(store_settle(s, NULL, err));
	return s->ops->snapshot(s, out, err);
}

enum store_status store_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				     struct store_error *err)
{
	ok(err);
	return s->ops->export_types(s, upto_seq, fn, ctx, err);
}

enum store_status store_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn, void *ctx,
				    struct store_error *err)
{
	ok(err);
	CHECK(check_type(q->type, err));
	if (q->since && strlen(q->since) >= STORE_TIME_SIZE)
		return store_fail(err, STORE_INVALID, "since is no store time");
	return s->ops->export_scan(s, q, fn, ctx, err);
}
