/* metrics — process-wide counters and gauges in Prometheus text format.
 *
 * Threads: every update is a relaxed atomic operation and may come from any
 * thread; rendering reads a consistent-enough snapshot without locking the
 * hot path. Route labels must be static strings (the router's patterns);
 * at most METRICS_MAX_ROUTES distinct labels are kept, the rest count under
 * "other". */
#ifndef CW_METRICS_H
#define CW_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#define METRICS_MAX_ROUTES 128

enum metrics_gauge {
	METRICS_INFLIGHT,
	METRICS_CONNECTIONS,
	METRICS_UPSTREAM_INFLIGHT, /* pass-through calls to the upstream in flight */
	METRICS_GAUGE_COUNT
};

enum metrics_counter {
	METRICS_DEADLINE_CLOSED,  /* connections closed by the absolute deadline */
	METRICS_FRAMING_REJECTED, /* ambiguous Content-Length / Transfer-Encoding */
	METRICS_BODY_TOO_LARGE,
	METRICS_OUTBOX_ATTEMPTS,  /* upstream deliveries tried */
	METRICS_OUTBOX_DELIVERED, /* outbox records delivered */
	METRICS_OUTBOX_DEAD,      /* outbox records given up (dead letters) */
	METRICS_UPSTREAM_FAILED,  /* pass-through requests without an upstream answer */
	METRICS_UPSTREAM_BUSY,    /* pass-through calls refused: upstream.max_concurrent in flight */
	METRICS_READ_CACHE_HIT,   /* reads of a current version answered from the cache */
	METRICS_READ_CACHE_MISS,  /* reads of a current version that went to the database */
	METRICS_STORE_FULL,       /* times the store went from writable to full */
	METRICS_STORE_CORRUPT,    /* stored versions found failing their integrity check */
	/* checkpoints of SQLite's write-ahead log run by the checkpointer thread */
	METRICS_STORE_CHECKPOINTS,
	/* the SQLite committer thread's busy time, in microseconds, by part:
	 * the statements of its groups, their COMMIT (fsync included, the tail
	 * copy not), the checkpoint tail copied inside a COMMIT, and indexing
	 * appended records (crosswalk_store_committer_seconds_total) */
	METRICS_STORE_COMMITTER_GROUP_US,
	METRICS_STORE_COMMITTER_COMMIT_US,
	METRICS_STORE_COMMITTER_TAIL_US,
	METRICS_STORE_COMMITTER_INDEX_US,
	METRICS_COUNTER_COUNT
};

/* Why an authentication or authorization refused a request (the label of
 * crosswalk_auth_refused_total). */
enum metrics_auth_refusal {
	METRICS_AUTH_NO_CREDENTIALS, /* no token and no mapped client certificate */
	METRICS_AUTH_MALFORMED,      /* not a compact JWS, bad JSON or base64url, too long */
	METRICS_AUTH_BAD_ALG,        /* none, HMAC, or an algorithm the key does not take */
	METRICS_AUTH_UNKNOWN_KID,    /* no key of that id, even after a refetch */
	METRICS_AUTH_BAD_SIGNATURE,
	METRICS_AUTH_EXPIRED,
	METRICS_AUTH_NOT_YET_VALID,
	METRICS_AUTH_BAD_ISSUER,
	METRICS_AUTH_BAD_AUDIENCE,
	METRICS_AUTH_REPLAYED,           /* a client assertion's jti seen before */
	METRICS_AUTH_UNKNOWN_CLIENT,     /* token request or certificate of no configured client */
	METRICS_AUTH_BAD_REQUEST,        /* token request: grant or assertion type, parameters */
	METRICS_AUTH_BAD_SCOPE,          /* token request: nothing of what was asked is allowed */
	METRICS_AUTH_INSUFFICIENT_SCOPE, /* a valid token without the scope the request needs */
	METRICS_AUTH_LEFT_OUT,           /* a resource left out of an answer: its type is not readable */
	METRICS_AUTH_REFUSAL_COUNT
};
void metrics_auth_refused(enum metrics_auth_refusal why);
unsigned long metrics_auth_refused_get(enum metrics_auth_refusal why);

void metrics_request_done(const char *route, int status, double seconds);
void metrics_gauge_add(enum metrics_gauge g, long delta);
long metrics_gauge_get(enum metrics_gauge g);
void metrics_counter_add(enum metrics_counter c, unsigned long n);
unsigned long metrics_counter_get(enum metrics_counter c);

/* Another module's gauge, sampled at render time by fn(ctx). name must be a
 * valid Prometheus metric name and static. Register before serving. */
int metrics_register_gauge(const char *name, const char *help, double (*fn)(void *ctx), void *ctx);

/* The request counters summed over every route, for the console's time
 * series (base/series.h): requests, answers by status class (index
 * status / 100) and the latency histogram (bucket[b] counts durations up to
 * metrics_bucket_le(b) seconds and above the bound before; the last counts
 * the rest). Each field is read atomically; the whole is not one instant. */
#define METRICS_NBUCKETS 14
struct metrics_totals {
	unsigned long requests;
	unsigned long by_class[6];
	unsigned long bucket[METRICS_NBUCKETS + 1];
};
void metrics_totals(struct metrics_totals *t);
double metrics_bucket_le(size_t b);

/* The value of the gauge another module registered under name; false when
 * none is. */
bool metrics_gauge_named(const char *name, double *value);

/* Renders every metric; caller frees with free(). NULL on OOM. */
char *metrics_render(size_t *len);

/* Test helper: requests counted so far for route and status. */
unsigned long metrics_requests(const char *route, int status);

#endif
