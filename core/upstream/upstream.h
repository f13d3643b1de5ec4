/* upstream — the HTTP client for the upstream FHIR server (libcurl; the only
 * core file that includes it).
 *
 * Safety (reliability.md §1.3, T13): https only, plain http only to a
 * loopback address (checked at configuration); TLS verification always on;
 * no redirects followed; no proxy from the environment; no content decoding
 * (no gzip bombs); the response body is capped in the write callback
 * (max_response_bytes; chunked answers included) and the whole exchange by
 * timeout_ms plus a low-speed limit; only headers the gateway builds itself
 * are sent, each checked for CR/LF. Credentials: a bearer token read from the
 * environment variable the configuration names, or HTTP basic with the
 * password from the environment; read once at start. TLS files are checked
 * by upstream_new: ca_file and client_cert must hold a PEM certificate, and
 * client_key (else client_cert's file) an unencrypted PEM key matching it.
 *
 * Two ways to call: upstream_request waits on the calling thread (the outbox
 * worker); upstream_start returns at once and one thread of this module (the
 * pump) drives every started exchange with libcurl's multi interface, so an
 * upstream that hangs holds no HTTP worker. At most upstream.max_concurrent
 * started exchanges are in flight; beyond that upstream_start refuses
 * (out->busy) and the caller answers 503 with Retry-After.
 *
 * Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, clamped to
 * retry_max_ms (never overflowing); an unreadable value counts as absent.
 *
 * Threads: upstream_request and upstream_start are safe from many threads;
 * each thread calling upstream_request keeps its own connection (reused
 * between requests), the pump keeps a pool of its own.
 * Errors: upstream_request returns 0 when an HTTP answer arrived (any status),
 * else -1 with out->error set and out->timed_out / out->too_large telling why;
 * a started exchange reports the same in out->answered. */
#ifndef CW_UPSTREAM_H
#define CW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"

struct upstream;

struct upstream_response {
	long status;
	char *body; /* malloc'd, NUL-terminated; NULL when empty */
	size_t len;
	char content_type[128];
	char location[1024];
	char etag[128];
	char last_modified[64];
	int64_t retry_after_ms; /* Retry-After, clamped to retry_max_ms; -1 when absent or unreadable */
	bool answered;          /* an HTTP answer arrived (status is its status) */
	bool timed_out, too_large;
	bool busy;              /* upstream_start refused: max_concurrent calls in flight */
	char error[256];
};

/* NULL (and err) when the configuration has no usable upstream. */
struct upstream *upstream_new(const struct config *cfg, char *err, size_t errlen);
void upstream_free(struct upstream *u);

/* The configured base URL, without a trailing slash. */
const char *upstream_base(const struct upstream *u);

/* method GET/POST/PUT/DELETE; path relative to the base ("Patient/1",
 * "Patient?name=x"; "" is the base itself, where batches go); headers:
 * NULL-terminated "Name: value" lines (each refused if it holds CR or LF);
 * body may be NULL. */
int upstream_request(struct upstream *u, const char *method, const char *path, const char *const *headers,
		     const char *body, size_t len, struct upstream_response *out);
void upstream_response_release(struct upstream_response *r);

/* Header lines a caller adds to a request to the upstream: up to
 * UPSTREAM_MAX_LINES "Name: value" texts, each malloc'd and owned by the
 * struct; upstream_lines_release frees them. Callers put them after their
 * own headers (what a disclosure carries, core/api/egress.h). */
#define UPSTREAM_MAX_LINES 12
struct upstream_lines {
	char *line[UPSTREAM_MAX_LINES];
	size_t n;
};
/* Adds "name: value" (dropped when full or out of memory). */
void upstream_lines_add(struct upstream_lines *l, const char *name, const char *value);
void upstream_lines_release(struct upstream_lines *l);

/* One GET of a small document from url (https://, or http:// to a loopback
 * host: config_upstream_url_ok's rule), independent of any upstream: a JWK
 * Set of an identity provider (core/auth). Server certificates are verified
 * (the system's CAs, plus ca_file when not NULL); no redirect is followed;
 * at most max_bytes are read within timeout_ms. Fills out (release with
 * upstream_response_release): out->answered with the status, or out->error.
 * Returns 0 on a 2xx answer, else -1. Any thread; blocks. */
int upstream_fetch(const char *url, const char *ca_file, size_t max_bytes, long timeout_ms,
		   struct upstream_response *out);
/* As upstream_fetch, a POST of form (application/x-www-form-urlencoded,
 * NUL-terminated): a token request (crosswalk token). The answer's body is
 * in out whatever its status. */
int upstream_post_form(const char *url, const char *ca_file, const char *form, size_t max_bytes, long timeout_ms,
		       struct upstream_response *out);

/* Called once on the pump thread when a started exchange has ended (answered
 * or not); it must not block: it wakes whoever waits for the answer. */
typedef void (*upstream_done_fn)(void *ctx);

/* Starts the exchange upstream_request would make and returns at once:
 * 0, and later done(ctx) once out is filled (out must stay valid and is not
 * to be read until then; headers and body are copied). -1 when it cannot
 * start, with out->error set and done never called: out->busy when
 * max_concurrent exchanges are already in flight, else a refused header or
 * URL, or the client stopping. */
int upstream_start(struct upstream *u, const char *method, const char *path, const char *const *headers,
		   const char *body, size_t len, struct upstream_response *out, upstream_done_fn done, void *ctx);

/* Ends every started exchange now (each done is called, out->error saying it
 * was cut off) and refuses new ones. Called before the HTTP server stops, so
 * that no request waits for an answer that cannot come. upstream_free does
 * it too. */
void upstream_shutdown(struct upstream *u);

/* The upstream's state as last seen, without calling it: for /healthz. */
struct upstream_health {
	unsigned in_flight, max_concurrent;
	uint64_t refused_busy;     /* calls refused because max_concurrent were in flight */
	int64_t last_success_ms;   /* Unix ms of the last answer below 500; 0: none yet */
	int64_t last_failure_ms;   /* Unix ms of the last failed exchange or 5xx; 0: none yet */
	char last_error[128];      /* what the last failure was, in the gateway's words */
};
void upstream_health(struct upstream *u, struct upstream_health *out);

/* Parses a Retry-After value (delta-seconds or HTTP-date, RFC 9110) into
 * milliseconds from now (now_unix_s), clamped to 0..cap_ms; -1 when the value
 * is neither. Never overflows, whatever the digits. */
int64_t upstream_retry_after_ms(const char *value, int64_t now_unix_s, int64_t cap_ms);

/* Replaces every string in tree that starts with the upstream base by the
 * same string on gateway_base (Bundle links, fullUrl, references), and makes
 * each entry.response.location of a batch or transaction response or a
 * history (and of such Bundles among a batch's answers) a URL on
 * gateway_base, as upstream_rewrite_location does (a location it cannot make
 * one goes). Then a Bundle's link and its entries' fullUrl that still name
 * another host go too (and so in the Bundles among its entries): the client
 * never gets a URL to a host it did not ask. */
void upstream_rewrite_urls(const struct upstream *u, cJSON *tree, const char *gateway_base);

/* The same for one URL; writes into out (returns out), or copies it unchanged. */
const char *upstream_rewrite_url(const struct upstream *u, const char *url, const char *gateway_base, char *out,
				 size_t n);

/* A location the upstream answered (a Location header, a batch entry's
 * response.location) on gateway_base: absolute on the upstream base,
 * relative to it ("Patient/1/_history/2"), or a path under the base's path
 * ("/fhir/R4/Patient/1"); one already on gateway_base, or a URN, is copied
 * unchanged. NULL for one on another host or outside the base (it is then
 * not passed on). */
const char *upstream_rewrite_location(const struct upstream *u, const char *loc, const char *gateway_base,
				      char *out, size_t n);

/* A failed answer in the gateway's words, for logs and the outbox's
 * last_error: "HTTP 500, issue exception, …" — the status and up to four
 * IssueType codes of its OperationOutcome, never the upstream's own text. */
void upstream_describe(const struct upstream_response *r, char *out, size_t n);

/* Keeps the upstream's internals out of the OperationOutcomes of an answer
 * that came with status (the answer itself, the resources and
 * response.outcome of a Bundle's entries, each with its own status): each
 * issue keeps its severity, IssueType code and the codes of its details.
 * Under a 5xx, diagnostics is replaced by a fixed phrase and details.text
 * goes (the server's own words: stack traces, file paths); under another
 * status they are meant for the client and kept, cleaned: the first line, at
 * most 200 bytes, and replaced or dropped when they name a file. */
void upstream_scrub_outcomes(cJSON *tree, long status);

#endif
