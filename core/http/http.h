/* http — the HTTP front door (the only module that includes libmicrohttpd).
 *
 * It accepts connections, enforces the limits (body, headers, connections in
 * all and per client address, an absolute deadline for headers and for the
 * whole request), rejects ambiguous framing, header fields and request
 * targets (see wire.h; each refusal is a 400, 414 or 501 OperationOutcome and
 * closes the connection), parses the query itself (at most
 * WIRE_MAX_QUERY_PARAMS parameters), reads the body, then hands one
 * complete request to the dispatch function and sends what it answers. It logs
 * one JSON line per request and feeds the metrics module.
 *
 * A handler that waits for something slow (an upstream answer) defers
 * (http_defer): the worker thread goes back to serving other connections, the
 * connection is suspended, and the answer is made on a worker thread once the
 * awaited thing wakes the request (http_wake).
 *
 * Threads: dispatch runs on the server's worker threads, many at once; a
 * request and its response belong to one thread at a time. Ownership: the request and
 * everything it points to is borrowed for the duration of dispatch; bodies
 * set on a response are owned by the response and freed by this module. */
#ifndef CW_HTTP_H
#define CW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "fhir/outcome.h"

#define HTTP_MAX_PARAMS 8

struct arena;
#define HTTP_MAX_HEADERS 16

struct http_request {
	const char *method;
	const char *path;        /* decoded path, no query string (never holds NUL, an encoded '/' or a dot segment) */
	const char *body;        /* NUL-terminated copy of the body ("" when none) */
	size_t body_len;
	const char *request_id;  /* validated X-Request-Id, or generated */
	const char *client;      /* client IP address as text */
	const char *authority;   /* the address the server listens on, "host:port" with the bound port
				  * ("[v6]:port"); links are never built from the Host header */
	const char *params[HTTP_MAX_PARAMS]; /* path captures, filled by the router */
	size_t nparams;
	int format;              /* FHIR output format (enum format), set by the app before routing */
	bool pretty;             /* _pretty=true was asked for */

	/* the application's record of who sent it (core/auth), set before routing */
	const void *principal;
	/* Kept for the whole request, also for a deferred answer and finish (set
	 * by the application with principal; 0/NULL when nobody was identified):
	 * the configured client that sent it (auth.clients[].client_id, valid
	 * while the server runs) and the purpose of its answers (the
	 * application's code, core/api/purpose.h). */
	const char *client_id;
	int purpose;
	/* Mutual TLS: the SHA-256 fingerprint (64 lowercase hex digits) and the
	 * subject (RFC 2253, "CN=x,O=y") of the client certificate, verified
	 * against tls.client_ca_file; NULL when none was shown or it did not verify. */
	const char *tls_client_sha256;
	const char *tls_client_subject;
	/* the application's own record of this request, set by the dispatcher:
	 * app_free(app) runs once when the request is done (answered, or
	 * closed), on whichever thread completes it */
	void *app;
	void (*app_free)(void *app);
	/* Scratch memory for the handler while dispatch's fn runs, and only
	 * then (NULL in finish, in a deferred answer's resume, or when none
	 * could be had): an arena this module keeps between requests, so a
	 * large document's tree is built in pages already in use rather than
	 * in fresh ones. Emptied when fn returns (nothing allocated in it may
	 * be kept past that); its memory is kept for the next request up to
	 * HTTP_SCRATCH_KEEP bytes and released when a request used more. The
	 * handler may set its budget. */
	struct arena *scratch;
	void *impl;              /* private to http.c */
};

/* The scratch arena memory kept between requests, per worker thread at most
 * (see http_request.scratch); and the request bodies kept for reuse, one
 * per worker thread, each at most limits.max_body_bytes and at least
 * HTTP_KEEP_BODY_MIN (smaller ones come and go with malloc). */
#define HTTP_SCRATCH_KEEP ((size_t)64 << 20)
#define HTTP_KEEP_BODY_MIN ((size_t)64 << 10)

struct http_header_pair {
	char *name, *value;
};

struct http_response {
	int status;
	char *body; /* owned, malloc'd */
	size_t body_len;
	const char *content_type; /* static string */
	const char *route;        /* static route label for logs and metrics */
	struct http_header_pair headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	int file_fd; /* http_set_file: an open file sent as the body, owned; 0 = none */
	size_t file_size;
};

/* Request accessors: header names are case-insensitive; query names exact.
 * Return NULL when absent. */
const char *http_header(const struct http_request *req, const char *name);
const char *http_query(const struct http_request *req, const char *name);
/* Calls fn for every query argument in order (repeats included); stops when
 * fn returns non-zero and returns that value. */
int http_query_each(const struct http_request *req,
		    int (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* Response setters. Each replaces any body already set. */
void http_set_body(struct http_response *resp, int status, const char *content_type, char *body,
		   size_t len);
/* The body is the first size bytes of the open file fd (taken over: closed
 * by this module once sent, or at once if the answer cannot be made), sent
 * from the file without copying it into memory. fd must be above 0. */
void http_set_file(struct http_response *resp, int status, const char *content_type, int fd, size_t size);
/* Serialises tree (consumed) as FHIR JSON. */
void http_set_json(struct http_response *resp, int status, cJSON *tree);
/* An OperationOutcome with one issue. */
void http_set_error(struct http_response *resp, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An OperationOutcome from collected issues. */
void http_set_outcome(struct http_response *resp, int status, const struct outcome *oo);
/* Adds a response header (copied). Returns false when full or invalid. */
bool http_add_header(struct http_response *resp, const char *name, const char *value);

/* The dispatcher answers one complete request; finish (may be NULL) then
 * runs over every answer, also a deferred one, before it is sent. finish
 * may hold the answer: it calls http_defer(req, resume, ctx) and returns;
 * the answer it finished is then kept, the worker thread goes back to other
 * connections, and once http_wake(req) comes resume(ctx, req, resp) runs on
 * a worker thread with that answer in resp (it may change or replace it)
 * and it is sent as it leaves resume (finish does not run again). */
struct http_dispatch {
	void (*fn)(void *ctx, struct http_request *req, struct http_response *resp);
	void (*finish)(void *ctx, struct http_request *req, struct http_response *resp);
	void *ctx;
	/* refused (may be NULL) runs over the answer to a request refused before
	 * dispatch (fn and finish never see it): the framing checks of the
	 * request target, the header fields, Host, Content-Length and
	 * Transfer-Encoding, and the body limit announced by Content-Length. It
	 * runs on the worker thread, just before the answer is sent. req holds
	 * the method, the target as sent up to its '?' as path (not
	 * percent-decoded: it may be what was refused), request_id, client,
	 * authority and the mutual-TLS identity; no query, no body, no params;
	 * http_header works. It may change resp but not hold it (no
	 * http_defer). */
	void (*refused)(void *ctx, struct http_request *req, struct http_response *resp);
};

/* Deferred answers. Called by a handler, before it starts what will wake
 * the request, then the handler returns without an answer (anything set on
 * resp is dropped). Some thread later calls http_wake(req) exactly once;
 * resume(ctx, req, resp) then runs once on a worker thread and answers as a
 * handler would (it may run on the handler's own thread right after it
 * returns, when the wake came first). req and what it points to stay valid
 * until resume returns, except params (the router's captures: nparams is 0).
 * Whatever is awaited must wake every deferred request before
 * http_server_stop, or the request is lost with its context. */
void http_defer(struct http_request *req, void (*resume)(void *ctx, struct http_request *req, struct http_response *resp),
		void *ctx);
/* Safe from any thread; never blocks for long. */
void http_wake(struct http_request *req);

struct http_server;

/* Starts listening and serving per cfg: over HTTPS when cfg->tls names a
 * certificate (TLS 1.2 and 1.3 only; with client_ca_file, clients are asked
 * for a certificate, optional at the TLS level, and a verified one is given
 * on each request). Returns NULL with a reason in err. */
struct http_server *http_server_start(const struct config *cfg, struct http_dispatch dispatch,
				      char *err, size_t errlen);
/* The bound port (useful when the configuration asked for port 0). */
unsigned http_server_port(const struct http_server *srv);
/* Stops accepting new connections; connections already open carry on. */
void http_server_quiesce(struct http_server *srv);
/* Requests received but not yet answered and completed. */
unsigned http_server_inflight(const struct http_server *srv);
/* Calls fn, under the server's lock, for each request whose handler is
 * running (method, decoded path without the query, request id; the strings
 * are valid during the call only; fn must not call back into the server).
 * Returns how many. Any thread. */
unsigned http_server_each_busy(struct http_server *srv,
				void (*fn)(void *ctx, const char *method, const char *path, const char *request_id),
				void *ctx);
/* Open connections. */
unsigned http_server_connections(const struct http_server *srv);
/* Stops everything and frees srv: waits up to 5 s for woken deferred
 * requests to be answered first, and for the handlers still running: with a
 * handler that never returns it never returns either. */
void http_server_stop(struct http_server *srv);

/* Status reason phrase ("Not Found"). */
const char *http_reason(int status);

#endif
