#include "upstream/outbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/fjson.h"
#include "base/arena.h"
#include "base/log.h"
#include "base/metrics.h"
#include "upstream/person_match.h"

/* One delivery thread. */
struct outbox_worker {
	struct outbox *o;
	struct pmatch *match; /* upstream.match_identifier_systems set, else NULL; this thread's */
	pthread_t thread;
};

struct outbox {
	struct store *st;
	struct upstream *up;
	const struct config *cfg;
	const struct plugin_host *plugins;
	outbox_filter_fn *filter;
	void *filter_ud;
	struct outbox_worker *workers; /* upstream.delivery_workers of them */
	size_t nalloc, nworkers;       /* allocated, started */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
	atomic_long pending; /* counted in the store after each attempt and at each high-water check */
	/* the observer of attempts (outbox_on_attempt), guarded by mu */
	outbox_attempt_fn *on_attempt;
	void *on_attempt_ctx;
};

void outbox_on_attempt(struct outbox *o, outbox_attempt_fn *fn, void *ctx)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->on_attempt = fn;
	o->on_attempt_ctx = ctx;
	pthread_mutex_unlock(&o->mu);
}

/* Tells the observer of attempts about one exchange with the upstream. */
static void attempted(struct outbox *o, const struct outbox_item *it, int status, const char *error)
{
	pthread_mutex_lock(&o->mu);
	outbox_attempt_fn *fn = o->on_attempt;
	void *ctx = o->on_attempt_ctx;
	pthread_mutex_unlock(&o->mu);
	if (fn)
		fn(ctx, it, status, error);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refresh_pending(struct outbox *o)
{
	struct outbox_counts c;
	struct store_error err;
	if (store_outbox_counts(o->st, &c, &err) == STORE_OK)
		atomic_store(&o->pending, (long)c.pending);
}

/* Backoff for the attempt just failed (attempts counts it). */
static int64_t backoff_ms(const struct config_upstream *c, int attempts)
{
	uint64_t d = c->retry_base_ms;
	for (int i = 1; i < attempts && d < c->retry_max_ms; i++)
		d *= 2;
	if (d > c->retry_max_ms)
		d = c->retry_max_ms;
	uint32_t r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (uint32_t)now_ms();
	/* full jitter over the upper half: [d/2, d] */
	return (int64_t)(d / 2 + (r % (d / 2 + 1)));
}

/* Out of memory: the record goes back in line as it was, due in a second
 * (settled, so that no lease or take keeps it from the next worker). */
static void put_back(struct outbox *o, const struct outbox_item *it, const char *why)
{
	struct store_error err;
	store_outbox_settle(o->st, it->oid, OUTBOX_PENDING, it->attempts, now_ms() + 1000, why, &err);
}

/* The person matched at the upstream before res (the record's resource,
 * about to be sent) goes there: a Patient linked to another at the upstream
 * is settled without being sent (0); one that cannot be matched now, or
 * what refers to it, waits — a dead letter when ambiguous, a retry when
 * the upstream did not answer (0). -1: send res, its references to linked
 * Patients rewritten. */
static int matched(struct outbox *o, struct pmatch *match, const struct outbox_item *it, cJSON *res)
{
	char why[600] = "", remote[STORE_ID_SIZE];
	struct store_error err;
	enum pmatch_result r = !strcmp(it->type, "Patient")
				       ? pmatch_patient(match, it->id, res, remote, why, sizeof why)
				       : pmatch_rewrite(match, res, why, sizeof why);
	int attempts = it->attempts + 1;
	switch (r) {
	case PMATCH_OWN:
		return -1;
	case PMATCH_LINKED: /* the EHR's own record is not overwritten */
		/* counted before the settle that makes it no longer pending, so
		 * whoever sees the outbox drained sees every delivery counted */
		metrics_counter_add(METRICS_OUTBOX_DELIVERED, 1);
		store_outbox_settle(o->st, it->oid, -1, attempts, 0, NULL, &err);
		return 0;
	case PMATCH_AMBIGUOUS:
		store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, attempts, 0, why, &err);
		metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
		log_msgf(LOG_WARN, "outbox", "dead letter %s/%s version %lld: %s", it->type, it->id,
			 (long long)it->version, why);
		return 0;
	case PMATCH_RETRY:
		if ((uint64_t)attempts >= o->cfg->upstream.max_attempts) {
			store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, attempts, 0, why, &err);
			metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
		} else {
			store_outbox_settle(o->st, it->oid, OUTBOX_PENDING, attempts,
					    now_ms() + backoff_ms(&o->cfg->upstream, attempts), why, &err);
		}
		return 0;
	case PMATCH_NOMEM:
		break;
	}
	put_back(o, it, "out of memory");
	return 0;
}

/* The first diagnostics of an OperationOutcome body, else the status. */
static void deliver(struct outbox *o, struct pmatch *match, const struct outbox_item *it)
{
	const struct config_upstream *c = &o->cfg->upstream;
	char path[STORE_TYPE_SIZE + STORE_ID_SIZE + 2];
	snprintf(path, sizeof path, "%s/%s", it->type, it->id);
	struct upstream_response r;
	int rc;
	char why[320];
	struct store_error err;
	metrics_counter_add(METRICS_OUTBOX_ATTEMPTS, 1);
	if (it->deleted) {
		const char *h[] = {"Accept: application/fhir+json", NULL};
		rc = upstream_request(o->up, "DELETE", path, h, NULL, 0, &r);
	} else {
		char vid[24];
		snprintf(vid, sizeof vid, "%lld", (long long)it->version);
		cJSON *res = NULL;
		enum store_status st = store_vread(o->st, it->type, it->id, vid, &res, &err);
		if (st != STORE_OK) {
			snprintf(why, sizeof why, "the stored version is unreadable: %s", err.message);
			store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, it->attempts + 1, 0, why, &err);
			metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
			return;
		}
		struct upstream_lines extra = {0}; /* what goes with this disclosure */
		const char *refused = o->filter ? o->filter(o->filter_ud, res, &extra) : NULL;
		if (refused) {
			upstream_lines_release(&extra);
			/* withheld from this recipient: it waits, not retried, until a $retry decides again */
			snprintf(why, sizeof why, "%s: the upstream may not receive it (docs/privacy.md)", refused);
			store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, it->attempts + 1, 0, why, &err);
			metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
			cJSON_Delete(res);
			return;
		}
		/* the upstream assigns its own meta */
		cJSON_DeleteItemFromObjectCaseSensitive(res, "meta");
		if (o->plugins && plugin_host_hook_count(o->plugins, CW_HOOK_BEFORE_UPSTREAM)) {
			struct arena arena;
			arena_init(&arena, 0);
			struct outcome oo = OUTCOME_INIT;
			struct cw_ctx ctx;
			plugin_host_ctx(&ctx, o->plugins, &arena, &oo, NULL);
			struct cw_hook_args args = {.point = CW_HOOK_BEFORE_UPSTREAM, .type = it->type};
			enum cw_hook_result hr = plugin_host_run_hooks(o->plugins, &ctx, &args, &res);
			if (hr == CW_HOOK_STOP) {
				snprintf(why, sizeof why, "stopped by a before-upstream hook: %s",
					 oo.n && oo.issues[0].diagnostics ? oo.issues[0].diagnostics
									  : "(no reason given)");
				store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, it->attempts + 1, 0, why, &err);
				metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
				cJSON_Delete(res);
			}
			outcome_release(&oo);
			arena_release(&arena);
			if (hr == CW_HOOK_STOP) {
				upstream_lines_release(&extra);
				return;
			}
		}
		if (match) {
			int m = matched(o, match, it, res);
			if (m >= 0) {
				cJSON_Delete(res);
				upstream_lines_release(&extra);
				return;
			}
		}
		size_t len = 0;
		char *body = fjson_print(res, false, &len);
		cJSON_Delete(res);
		if (!body) {
			upstream_lines_release(&extra);
			put_back(o, it, "out of memory");
			return;
		}
		const char *h[3 + UPSTREAM_MAX_LINES] = {"Content-Type: application/fhir+json",
							 "Accept: application/fhir+json"};
		for (size_t i = 0; i < extra.n; i++)
			h[2 + i] = extra.line[i];
		rc = upstream_request(o->up, "PUT", path, h, body, len, &r);
		free(body);
		upstream_lines_release(&extra);
	}
	bool ok = rc == 0 && r.status >= 200 && r.status < 300;
	if (rc == 0 && it->deleted && (r.status == 404 || r.status == 410))
		ok = true; /* already gone there */
	int attempts = it->attempts + 1;
	attempted(o, it, rc == 0 ? (ok && r.status >= 300 ? 200 : r.status) : 0, rc == 0 ? NULL : r.error);
	if (ok) {
		/* counted before the settle that makes it no longer pending, so
		 * whoever sees the outbox drained sees every delivery counted */
		metrics_counter_add(METRICS_OUTBOX_DELIVERED, 1);
		store_outbox_settle(o->st, it->oid, -1, attempts, 0, NULL, &err);
		upstream_response_release(&r);
		return;
	}
	if (rc != 0)
		snprintf(why, sizeof why, "%s", r.error);
	else
		upstream_describe(&r, why, sizeof why);
	bool transient = rc != 0 || r.status >= 500 || r.status == 408 || r.status == 429 || r.status == 409;
	int64_t delay = backoff_ms(c, attempts);
	if (rc == 0 && (r.status == 429 || r.status == 503) && r.retry_after_ms >= 0)
		delay = r.retry_after_ms; /* already clamped to retry_max_ms */
	upstream_response_release(&r);
	if (!transient || (uint64_t)attempts >= c->max_attempts) {
		store_outbox_settle(o->st, it->oid, OUTBOX_DEAD, attempts, 0, why, &err);
		metrics_counter_add(METRICS_OUTBOX_DEAD, 1);
		log_msgf(LOG_WARN, "outbox", "dead letter %s/%s version %lld after %d attempts: %s", it->type, it->id,
			 (long long)it->version, attempts, why);
		return;
	}
	store_outbox_settle(o->st, it->oid, OUTBOX_PENDING, attempts, now_ms() + delay, why, &err);
}

static void *worker(void *arg)
{
	struct outbox_worker *w = arg;
	struct outbox *o = w->o;
	for (;;) {
		pthread_mutex_lock(&o->mu);
		bool stop = o->stop;
		o->kicked = false;
		pthread_mutex_unlock(&o->mu);
		if (stop)
			break;
		struct outbox_item it;
		struct store_error err;
		enum store_status st = store_outbox_next(o->st, now_ms(), &it, &err);
		if (st == STORE_OK) {
			deliver(o, w->match, &it);
			refresh_pending(o);
			continue;
		}
		refresh_pending(o);
		/* nothing due: sleep until kicked or a short poll (retries come due) */
		pthread_mutex_lock(&o->mu);
		if (!o->stop && !o->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
		}
		pthread_mutex_unlock(&o->mu);
	}
	return NULL;
}

static double gauge_pending(void *ctx) { return (double)atomic_load(&((struct outbox *)ctx)->pending); }

static double gauge_dead(void *ctx)
{
	struct outbox *o = ctx;
	struct outbox_counts c;
	struct store_error err;
	return store_outbox_counts(o->st, &c, &err) == STORE_OK ? (double)c.dead : 0;
}

/* Stops and joins the started workers and frees what they own. */
static void stop_workers(struct outbox *o)
{
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (size_t i = 0; i < o->nworkers; i++)
		pthread_join(o->workers[i].thread, NULL);
	for (size_t i = 0; i < o->nalloc; i++)
		pmatch_free(o->workers[i].match);
	free(o->workers);
}

struct outbox *outbox_start(struct store *st, struct upstream *up, const struct config *cfg,
			    const struct plugin_host *plugins, outbox_filter_fn *filter, void *ud)
{
	struct outbox *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->st = st;
	o->up = up;
	o->cfg = cfg;
	o->plugins = plugins;
	o->filter = filter;
	o->filter_ud = ud;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	refresh_pending(o);
	size_t n = cfg->upstream.delivery_workers ? (size_t)cfg->upstream.delivery_workers : 1;
	bool ok = (o->workers = calloc(n, sizeof *o->workers)) != NULL;
	o->nalloc = ok ? n : 0;
	for (size_t i = 0; ok && i < n; i++) {
		o->workers[i].o = o;
		ok = !cfg->upstream.match_systems ||
		     (o->workers[i].match = pmatch_new(st, up, cfg->upstream.match_systems)) != NULL;
	}
	for (size_t i = 0; ok && i < n; i++) {
		ok = pthread_create(&o->workers[i].thread, NULL, worker, &o->workers[i]) == 0;
		o->nworkers += ok;
	}
	if (!ok) {
		stop_workers(o);
		pthread_mutex_destroy(&o->mu);
		pthread_cond_destroy(&o->cv);
		free(o);
		return NULL;
	}
	metrics_register_gauge("crosswalk_outbox_pending", "Outbox records waiting for delivery.", gauge_pending, o);
	metrics_register_gauge("crosswalk_outbox_dead", "Outbox records given up (dead letters) still kept.",
			       gauge_dead, o);
	return o;
}

void outbox_stop(struct outbox *o)
{
	if (!o)
		return;
	stop_workers(o);
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o);
}

void outbox_kick(struct outbox *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->kicked = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

bool outbox_full(struct outbox *o, long *retry_after_s)
{
	if (!o)
		return false;
	/* counted in the store: exact even right after a burst of pushes */
	refresh_pending(o);
	long p = atomic_load(&o->pending);
	if ((uint64_t)p < o->cfg->upstream.high_water)
		return false;
	*retry_after_s = 5;
	return true;
}
