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
 * Threads: upstream_request is safe from many threads; each thread keeps its
 * own connection (reused between requests).
 * Errors: upstream_request returns 0 when an HTTP answer arrived (any status),
 * else -1 with out->error set and out->timed_out / out->too_large telling why. */
#ifndef CW_UPSTREAM_H
#define CW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

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
	long retry_after_s; /* -1 when absent */
	bool timed_out, too_large;
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

/* Replaces every string in tree that starts with the upstream base by the
 * same string on gateway_base (Bundle links, fullUrl, references), and makes
 * each entry.response.location of a batch or transaction response or a
 * history (and of such Bundles among a batch's answers) a URL on
 * gateway_base, as upstream_rewrite_location does. */
void upstream_rewrite_urls(const struct upstream *u, cJSON *tree, const char *gateway_base);

/* The same for one URL; writes into out (returns out), or copies it unchanged. */
const char *upstream_rewrite_url(const struct upstream *u, const char *url, const char *gateway_base, char *out,
				 size_t n);

/* A location the upstream answered (a Location header, a batch entry's
 * response.location) on gateway_base: absolute on the upstream base,
 * relative to it ("Patient/1/_history/2"), or a path under the base's path
 * ("/fhir/R4/Patient/1"); any other is copied unchanged. */
const char *upstream_rewrite_location(const struct upstream *u, const char *loc, const char *gateway_base,
				      char *out, size_t n);

#endif
