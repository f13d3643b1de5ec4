#include "base/series.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/metrics.h"

struct series {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	unsigned interval_ms;
	size_t capacity, head, count; /* ring: head is the next slot written */
	struct series_sample *ring;
	struct metrics_totals last; /* the totals at the newest sample */
	int64_t last_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The q-quantile in ms of the durations counted between two histograms,
 * interpolated linearly inside its bucket; 0 when nothing was counted. */
static double quantile_ms(const struct metrics_totals *a, const struct metrics_totals *b, double q)
{
	unsigned long total = 0;
	for (size_t i = 0; i <= METRICS_NBUCKETS; i++)
		total += b->bucket[i] - a->bucket[i];
	if (!total)
		return 0;
	double rank = q * (double)total, seen = 0;
	for (size_t i = 0; i <= METRICS_NBUCKETS; i++) {
		double n = (double)(b->bucket[i] - a->bucket[i]);
		if (n > 0 && seen + n >= rank) {
			double lo = i ? metrics_bucket_le(i - 1) : 0, hi = metrics_bucket_le(i);
			double frac = i < METRICS_NBUCKETS ? (rank - seen) / n : 0;
			return (lo + (hi - lo) * frac) * 1000.0;
		}
		seen += n;
	}
	return metrics_bucket_le(METRICS_NBUCKETS) * 1000.0;
}

/* A sample of what changed from prev (taken at prev_ms) to cur (at t_ms). */
static struct series_sample make_sample(const struct metrics_totals *prev, int64_t prev_ms,
					const struct metrics_totals *cur, int64_t t_ms)
{
	double secs = (double)(t_ms - prev_ms) / 1000.0;
	if (secs <= 0.001)
		secs = 0.001;
	struct series_sample s = {.t_ms = t_ms};
	s.rps = (double)(cur->requests - prev->requests) / secs;
	s.rate_4xx = (double)(cur->by_class[4] - prev->by_class[4]) / secs;
	s.rate_5xx = (double)(cur->by_class[5] - prev->by_class[5]) / secs;
	s.p50_ms = quantile_ms(prev, cur, 0.50);
	s.p99_ms = quantile_ms(prev, cur, 0.99);
	s.has_outbox = metrics_gauge_named("crosswalk_outbox_pending", &s.outbox_pending) &&
		       metrics_gauge_named("crosswalk_outbox_dead", &s.outbox_dead);
	return s;
}

static void take(struct series *s)
{
	struct metrics_totals cur;
	metrics_totals(&cur);
	int64_t t = now_ms();
	struct series_sample smp = make_sample(&s->last, s->last_ms, &cur, t);
	pthread_mutex_lock(&s->mu);
	s->ring[s->head] = smp;
	s->head = (s->head + 1) % s->capacity;
	if (s->count < s->capacity)
		s->count++;
	s->last = cur;
	s->last_ms = t;
	pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg)
{
	struct series *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += s->interval_ms / 1000;
		until.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		int rc = 0;
		while (!s->stopping && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->mu);
		take(s);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct series *series_start(unsigned interval_ms, size_t capacity)
{
	struct series *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->interval_ms = interval_ms ? interval_ms : 1000;
	s->capacity = capacity ? capacity : 1;
	s->ring = calloc(s->capacity, sizeof *s->ring);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	bool ok = s->ring && pthread_mutex_init(&s->mu, NULL) == 0;
	ok = ok && pthread_cond_init(&s->cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!ok) {
		free(s->ring);
		free(s);
		return NULL;
	}
	metrics_totals(&s->last);
	s->last_ms = now_ms();
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s->ring);
		free(s);
		return NULL;
	}
	return s;
}

void series_stop(struct series *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->ring);
	free(s);
}

unsigned series_interval_ms(const struct series *s) { return s->interval_ms; }

size_t series_copy(struct series *s, struct series_sample *out, size_t max)
{
	size_t n = 0;
	struct metrics_totals last;
	int64_t last_ms;
	pthread_mutex_lock(&s->mu);
	size_t first = (s->head + s->capacity - s->count) % s->capacity;
	for (size_t i = 0; i < s->count && n < max; i++)
		out[n++] = s->ring[(first + i) % s->capacity];
	last = s->last;
	last_ms = s->last_ms;
	pthread_mutex_unlock(&s->mu);
	if (n < max) {
		struct metrics_totals cur;
		metrics_totals(&cur);
		int64_t t = now_ms();
		if (t >= last_ms)
			out[n++] = make_sample(&last, last_ms, &cur, t);
	}
	return n;
}
