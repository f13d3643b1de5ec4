/* series — a small in-memory time series of the gateway's own counters, for
 * the console's plots (nothing external to install).
 *
 * A sampler thread reads the metrics module (base/metrics.h) every interval
 * and keeps the last `capacity` samples in a ring: request rate, answers by
 * status class per second, p50/p99 latency estimated from the histogram's
 * change over the interval, and the outbox gauges when the outbox has
 * registered them. Nothing is stored on disk; a restart starts it afresh.
 *
 * Threads: series_copy may be called from any thread while the sampler runs.
 * Ownership: series_start returns an object series_stop joins and frees; stop
 * it before the modules whose gauges it samples go away. Errors: series_start
 * returns NULL when out of memory or when the thread cannot start. */
#ifndef CW_SERIES_H
#define CW_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct series_sample {
	int64_t t_ms;              /* Unix time of the sample's end, ms */
	double rps;                /* requests answered per second over the interval */
	double rate_4xx, rate_5xx; /* answers with a 4xx / 5xx status per second */
	double p50_ms, p99_ms;     /* latency quantiles over the interval; 0 when no request */
	bool has_outbox;           /* the two below were sampled */
	double outbox_pending, outbox_dead;
};

struct series;

struct series *series_start(unsigned interval_ms, size_t capacity);
void series_stop(struct series *s);
unsigned series_interval_ms(const struct series *s);

/* Copies the samples oldest first into out (at most max), then a last, live
 * sample covering the time since the newest stored one when max allows;
 * returns how many were written. */
size_t series_copy(struct series *s, struct series_sample *out, size_t max);

#endif
