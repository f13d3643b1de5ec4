#include "base/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				   0.05,   0.1,   0.25,   0.5,   1,    2.5, 5, 10};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])
_Static_assert(NBUCKETS == METRICS_NBUCKETS, "METRICS_NBUCKETS is the number of histogram bounds");

struct route_stats {
	_Atomic(const char *) name;
	atomic_ulong by_status[500]; /* status 100..599 */
	atomic_ulong bucket[NBUCKETS + 1];
	atomic_ulong sum_us;
	atomic_ulong count;
};

static struct route_stats routes[METRICS_MAX_ROUTES + 1]; /* last = "other" */
static atomic_long gauges[METRICS_GAUGE_COUNT];
static atomic_ulong counters[METRICS_COUNTER_COUNT];
static atomic_ulong auth_refused[METRICS_AUTH_REFUSAL_COUNT];
static const char *const auth_refusal_names[METRICS_AUTH_REFUSAL_COUNT] = {
	"no_credentials", "malformed",     "bad_alg",    "unknown_kid",        "bad_signature",
	"expired",        "not_yet_valid", "bad_issuer", "bad_audience",       "replayed",
	"unknown_client", "bad_request",   "bad_scope",  "insufficient_scope", "left_out",
};

struct ext_gauge {
	const char *name, *help;
	double (*fn)(void *);
	void *ctx;
};
static struct ext_gauge ext[32];
static atomic_int n_ext;

static struct route_stats *slot_for(const char *route)
{
	if (!route)
		route = "(unmatched)";
	for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
		const char *n = atomic_load_explicit(&routes[i].name, memory_order_acquire);
		if (!n) {
			const char *expected = NULL;
			if (atomic_compare_exchange_strong(&routes[i].name, &expected, route))
				return &routes[i];
			n = expected;
		}
		if (n == route || strcmp(n, route) == 0)
			return &routes[i];
	}
	return &routes[METRICS_MAX_ROUTES];
}

void metrics_request_done(const char *route, int status, double seconds)
{
	struct route_stats *s = slot_for(route);
	if (status >= 100 && status <= 599)
		atomic_fetch_add_explicit(&s->by_status[status - 100], 1, memory_order_relaxed);
	size_t b = 0;
	while (b < NBUCKETS && seconds > bucket_le[b])
		b++;
	atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_us, (unsigned long)(seconds * 1e6), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

void metrics_gauge_add(enum metrics_gauge g, long delta)
{
	atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

long metrics_gauge_get(enum metrics_gauge g) { return atomic_load(&gauges[g]); }

void metrics_counter_add(enum metrics_counter c, unsigned long n)
{
	atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

unsigned long metrics_counter_get(enum metrics_counter c) { return atomic_load(&counters[c]); }

void metrics_auth_refused(enum metrics_auth_refusal why)
{
	atomic_fetch_add_explicit(&auth_refused[why], 1, memory_order_relaxed);
}

unsigned long metrics_auth_refused_get(enum metrics_auth_refusal why) { return atomic_load(&auth_refused[why]); }

int metrics_register_gauge(const char *name, const char *help, double (*fn)(void *ctx), void *ctx)
{
	int i = atomic_load(&n_ext);
	if (i >= (int)(sizeof ext / sizeof ext[0]))
		return -1;
	ext[i] = (struct ext_gauge){name, help, fn, ctx};
	atomic_store(&n_ext, i + 1);
	return 0;
}

void metrics_totals(struct metrics_totals *t)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i <= METRICS_MAX_ROUTES; i++) {
		if (i < METRICS_MAX_ROUTES && !atomic_load(&routes[i].name))
			continue;
		t->requests += atomic_load_explicit(&routes[i].count, memory_order_relaxed);
		for (size_t s = 0; s < 500; s++) {
			unsigned long n = atomic_load_explicit(&routes[i].by_status[s], memory_order_relaxed);
			t->by_class[(s + 100) / 100] += n;
		}
		for (size_t b = 0; b <= NBUCKETS; b++)
			t->bucket[b] += atomic_load_explicit(&routes[i].bucket[b], memory_order_relaxed);
	}
}

double metrics_bucket_le(size_t b) { return b < NBUCKETS ? bucket_le[b] : bucket_le[NBUCKETS - 1]; }

bool metrics_gauge_named(const char *name, double *value)
{
	int n = atomic_load(&n_ext);
	for (int i = 0; i < n; i++)
		if (!strcmp(ext[i].name, name)) {
			*value = ext[i].fn(ext[i].ctx);
			return true;
		}
	return false;
}

unsigned long metrics_requests(const char *route, int status)
{
	if (status < 100 || status > 599)
		return 0;
	for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
		const char *n = atomic_load(&routes[i].name);
		if (!n)
			break;
		if (strcmp(n, route) == 0)
			return atomic_load(&routes[i].by_status[status - 100]);
	}
	return 0;
}

struct out {
	char *buf;
	size_t len, cap;
	int oom;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
	if (o->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t ncap = (o->cap + (size_t)n + 1) * 2;
		char *nb = realloc(o->buf, ncap);
		if (!nb) {
			o->oom = 1;
			return;
		}
		o->buf = nb;
		o->cap = ncap;
	}
}

/* Route labels are our own patterns; escape anyway for safety. */
static void label(char *dst, size_t cap, const char *s)
{
	size_t j = 0;
	for (; *s && j + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			dst[j++] = '\\';
		dst[j++] = (*s == '\n') ? ' ' : *s;
	}
	dst[j] = '\0';
}

char *metrics_render(size_t *len)
{
	struct out o = {malloc(8192), 0, 8192, 0};
	if (!o.buf)
		return NULL;
	o.buf[0] = '\0';
	outf(&o, "# HELP crosswalk_http_requests_total HTTP requests answered, by route and status.\n"
		 "# TYPE crosswalk_http_requests_total counter\n");
	for (size_t i = 0; i <= METRICS_MAX_ROUTES; i++) {
		const char *n = i < METRICS_MAX_ROUTES ? atomic_load(&routes[i].name) : "other";
		if (!n)
			continue;
		char l[256];
		label(l, sizeof l, n);
		for (int st = 0; st < 500; st++) {
			unsigned long c = atomic_load(&routes[i].by_status[st]);
			if (c)
				outf(&o, "crosswalk_http_requests_total{route=\"%s\",status=\"%d\"} %lu\n", l,
				     st + 100, c);
		}
	}
	outf(&o, "# HELP crosswalk_http_request_duration_seconds Time from request start to response queued.\n"
		 "# TYPE crosswalk_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i <= METRICS_MAX_ROUTES; i++) {
		const char *n = i < METRICS_MAX_ROUTES ? atomic_load(&routes[i].name) : "other";
		if (!n || atomic_load(&routes[i].count) == 0)
			continue;
		char l[256];
		label(l, sizeof l, n);
		unsigned long cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += atomic_load(&routes[i].bucket[b]);
			outf(&o, "crosswalk_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %lu\n", l,
			     bucket_le[b], cum);
		}
		cum += atomic_load(&routes[i].bucket[NBUCKETS]);
		outf(&o, "crosswalk_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %lu\n", l, cum);
		outf(&o, "crosswalk_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", l,
		     (double)atomic_load(&routes[i].sum_us) / 1e6);
		outf(&o, "crosswalk_http_request_duration_seconds_count{route=\"%s\"} %lu\n", l,
		     atomic_load(&routes[i].count));
	}
	outf(&o, "# HELP crosswalk_http_requests_in_flight Requests received and not yet completed.\n"
		 "# TYPE crosswalk_http_requests_in_flight gauge\n"
		 "crosswalk_http_requests_in_flight %ld\n"
		 "# HELP crosswalk_http_connections Open client connections.\n"
		 "# TYPE crosswalk_http_connections gauge\n"
		 "crosswalk_http_connections %ld\n",
	     atomic_load(&gauges[METRICS_INFLIGHT]), atomic_load(&gauges[METRICS_CONNECTIONS]));
	outf(&o, "# HELP crosswalk_http_deadline_closed_total Connections closed by the absolute header or request deadline.\n"
		 "# TYPE crosswalk_http_deadline_closed_total counter\n"
		 "crosswalk_http_deadline_closed_total %lu\n"
		 "# HELP crosswalk_http_framing_rejected_total Requests refused for ambiguous framing.\n"
		 "# TYPE crosswalk_http_framing_rejected_total counter\n"
		 "crosswalk_http_framing_rejected_total %lu\n"
		 "# HELP crosswalk_http_body_too_large_total Requests refused for a body over the limit.\n"
		 "# TYPE crosswalk_http_body_too_large_total counter\n"
		 "crosswalk_http_body_too_large_total %lu\n",
	     atomic_load(&counters[METRICS_DEADLINE_CLOSED]), atomic_load(&counters[METRICS_FRAMING_REJECTED]),
	     atomic_load(&counters[METRICS_BODY_TOO_LARGE]));
	outf(&o, "# HELP crosswalk_outbox_attempts_total Deliveries to the upstream tried.\n"
		 "# TYPE crosswalk_outbox_attempts_total counter\n"
		 "crosswalk_outbox_attempts_total %lu\n"
		 "# HELP crosswalk_outbox_delivered_total Outbox records delivered upstream.\n"
		 "# TYPE crosswalk_outbox_delivered_total counter\n"
		 "crosswalk_outbox_delivered_total %lu\n"
		 "# HELP crosswalk_outbox_dead_letters_total Outbox records given up after their attempts.\n"
		 "# TYPE crosswalk_outbox_dead_letters_total counter\n"
		 "crosswalk_outbox_dead_letters_total %lu\n"
		 "# HELP crosswalk_upstream_failed_total Pass-through requests that got no upstream answer.\n"
		 "# TYPE crosswalk_upstream_failed_total counter\n"
		 "crosswalk_upstream_failed_total %lu\n"
		 "# HELP crosswalk_upstream_busy_total Pass-through calls refused because upstream.max_concurrent were in flight.\n"
		 "# TYPE crosswalk_upstream_busy_total counter\n"
		 "crosswalk_upstream_busy_total %lu\n"
		 "# HELP crosswalk_upstream_in_flight Pass-through calls to the upstream in flight.\n"
		 "# TYPE crosswalk_upstream_in_flight gauge\n"
		 "crosswalk_upstream_in_flight %ld\n",
	     atomic_load(&counters[METRICS_OUTBOX_ATTEMPTS]), atomic_load(&counters[METRICS_OUTBOX_DELIVERED]),
	     atomic_load(&counters[METRICS_OUTBOX_DEAD]), atomic_load(&counters[METRICS_UPSTREAM_FAILED]),
	     atomic_load(&counters[METRICS_UPSTREAM_BUSY]), atomic_load(&gauges[METRICS_UPSTREAM_INFLIGHT]));
	outf(&o, "# HELP crosswalk_store_read_cache_total Reads of a current version, by where they were answered from.\n"
		 "# TYPE crosswalk_store_read_cache_total counter\n"
		 "crosswalk_store_read_cache_total{result=\"hit\"} %lu\n"
		 "crosswalk_store_read_cache_total{result=\"miss\"} %lu\n",
	     atomic_load(&counters[METRICS_READ_CACHE_HIT]), atomic_load(&counters[METRICS_READ_CACHE_MISS]));
	outf(&o, "# HELP crosswalk_store_full_total Times a write found the storage full (counted once until a write succeeds again).\n"
		 "# TYPE crosswalk_store_full_total counter\n"
		 "crosswalk_store_full_total %lu\n",
	     atomic_load(&counters[METRICS_STORE_FULL]));
	outf(&o, "# HELP crosswalk_auth_refused_total Requests refused by authentication or authorization, by reason.\n"
		 "# TYPE crosswalk_auth_refused_total counter\n");
	for (size_t i = 0; i < METRICS_AUTH_REFUSAL_COUNT; i++)
		outf(&o, "crosswalk_auth_refused_total{reason=\"%s\"} %lu\n", auth_refusal_names[i],
		     atomic_load(&auth_refused[i]));
	outf(&o,
	     "# HELP crosswalk_store_corrupt_total Reads refused because the stored content failed its integrity "
	     "check.\n"
	     "# TYPE crosswalk_store_corrupt_total counter\n"
	     "crosswalk_store_corrupt_total %lu\n",
	     atomic_load(&counters[METRICS_STORE_CORRUPT]));
	outf(&o,
	     "# HELP crosswalk_store_checkpoints_total Checkpoints of the SQLite store's write-ahead log, run off the "
	     "commit path.\n"
	     "# TYPE crosswalk_store_checkpoints_total counter\n"
	     "crosswalk_store_checkpoints_total %lu\n",
	     atomic_load(&counters[METRICS_STORE_CHECKPOINTS]));
	outf(&o,
	     "# HELP crosswalk_store_committer_seconds_total Time the SQLite store's committer thread spent, by part "
	     "(group statements, commit with its fsync, checkpoint tail copied in a commit, indexing appended "
	     "records).\n"
	     "# TYPE crosswalk_store_committer_seconds_total counter\n");
	static const char *const parts[] = {"group", "commit", "tail", "index"};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		outf(&o, "crosswalk_store_committer_seconds_total{part=\"%s\"} %.6f\n", parts[i],
		     (double)atomic_load(&counters[METRICS_STORE_COMMITTER_GROUP_US + i]) / 1e6);
	int ne = atomic_load(&n_ext);
	for (int i = 0; i < ne; i++)
		outf(&o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", ext[i].name, ext[i].help, ext[i].name,
		     ext[i].name, ext[i].fn(ext[i].ctx));
	if (o.oom) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
