/* Unit tests: the console's time series (base/series.h) over the metrics
 * module: rates and status classes per interval, latency quantiles from the
 * histogram's change, the outbox gauges when registered, the ring keeping
 * the newest samples. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "base/metrics.h"
#include "base/series.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double pending(void *ctx)
{
	(void)ctx;
	return 3;
}

static double dead(void *ctx)
{
	(void)ctx;
	return 1;
}

/* Only what happens after the start counts: the first sample holds the 100
 * requests of 3 ms made then (bucket 2.5–5 ms), not those before. */
static void samples_count_what_changed(void **state)
{
	(void)state;
	for (int i = 0; i < 50; i++)
		metrics_request_done("/before", 200, 2.0); /* before the start: not in any sample */
	struct series *s = series_start(300, 8);
	assert_non_null(s);
	for (int i = 0; i < 90; i++)
		metrics_request_done("/x", 200, 0.003);
	for (int i = 0; i < 8; i++)
		metrics_request_done("/x", 404, 0.003);
	for (int i = 0; i < 2; i++)
		metrics_request_done("/x", 503, 0.003);
	struct series_sample out[16];
	size_t n = 0;
	for (int tries = 0; tries < 100 && n < 2; tries++) {
		sleep_ms(20);
		n = series_copy(s, out, 16);
	}
	assert_true(n >= 2); /* one stored sample, then the live one */
	const struct series_sample *first = &out[0];
	double secs = first->rps > 0 ? 100.0 / first->rps : 0;
	assert_true(secs > 0.05 && secs < 5); /* 100 requests over about one interval */
	assert_float_equal(first->rate_4xx / first->rps, 0.08, 1e-9);
	assert_float_equal(first->rate_5xx / first->rps, 0.02, 1e-9);
	assert_true(first->p50_ms >= 2.5 && first->p50_ms <= 5.0);
	assert_true(first->p99_ms >= first->p50_ms && first->p99_ms <= 5.0);
	assert_false(first->has_outbox);
	assert_true(out[n - 1].t_ms >= first->t_ms);
	/* an interval without requests: no rate, no latency */
	for (int tries = 0; tries < 100 && n < 4; tries++) {
		sleep_ms(20);
		n = series_copy(s, out, 16);
	}
	assert_true(n >= 3);
	assert_float_equal(out[1].rps, 0, 0);
	assert_float_equal(out[1].p99_ms, 0, 0);
	series_stop(s);
}

/* A slow request lands in its bucket: 20 of 1 ms and one of 8 s give a p50
 * near 1 ms and a p99 in the 5–10 s bucket. */
static void quantiles_follow_the_histogram(void **state)
{
	(void)state;
	struct series *s = series_start(60000, 4); /* only the live sample */
	assert_non_null(s);
	for (int i = 0; i < 99; i++)
		metrics_request_done("/y", 200, 0.0009);
	metrics_request_done("/y", 200, 8.0);
	struct series_sample out[2];
	assert_int_equal(series_copy(s, out, 2), 1);
	assert_true(out[0].p50_ms > 0.5 && out[0].p50_ms <= 1.0);
	assert_true(out[0].p99_ms > 0.5 && out[0].p99_ms <= 1.0); /* the 99th of 100 is still 1 ms */
	for (int i = 0; i < 10; i++)
		metrics_request_done("/y", 200, 8.0);
	assert_int_equal(series_copy(s, out, 2), 1);
	assert_true(out[0].p99_ms > 5000 && out[0].p99_ms <= 10000);
	series_stop(s);
}

/* The ring keeps the newest samples; the outbox gauges are read once
 * registered. */
static void ring_keeps_the_newest(void **state)
{
	(void)state;
	assert_int_equal(metrics_register_gauge("crosswalk_outbox_pending", "test", pending, NULL), 0);
	assert_int_equal(metrics_register_gauge("crosswalk_outbox_dead", "test", dead, NULL), 0);
	struct series *s = series_start(10, 3);
	assert_non_null(s);
	sleep_ms(200); /* many more samples than the ring holds */
	struct series_sample out[8];
	size_t n = series_copy(s, out, 8);
	assert_int_equal(n, 4); /* three kept, one live */
	for (size_t i = 1; i < n; i++)
		assert_true(out[i].t_ms >= out[i - 1].t_ms);
	assert_true(out[0].has_outbox);
	assert_float_equal(out[0].outbox_pending, 3, 0);
	assert_float_equal(out[0].outbox_dead, 1, 0);
	series_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(samples_count_what_changed),
		cmocka_unit_test(quantiles_follow_the_histogram),
		cmocka_unit_test(ring_keeps_the_newest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
