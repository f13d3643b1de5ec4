/* The HTTP front door on libmicrohttpd 0.9.75.
 *
 * libmicrohttpd leaves several defences to the application (measured in
 * ../shared/reference/reliability.md): its connection timeout is idle-only, it
 * accepts Content-Length together with Transfer-Encoding and two differing
 * Content-Length headers. This module closes those gaps:
 *  - a watchdog thread enforces an absolute deadline per connection phase
 *    (headers complete; whole request read; reply sent) by shutting the socket
 *    down, which makes the library close the connection itself;
 *  - framing is checked on the first handler call, before any body is read;
 *  - the header block is proved to be what the library says it is (the wire
 *    module's walker): it accepts a space before a header's colon, a bare CR
 *    inside a line and a NUL that silently ends a value, and keeps several
 *    Host headers; each of these is refused here;
 *  - the request target is parsed here, strictly, from the raw form the URI
 *    log callback sees: the library decodes %00 and %2F before routing and
 *    would allocate a record per query parameter from the connection's small
 *    memory pool, and in 0.9.75 a pool that runs out there leaves the
 *    connection hanging without an answer;
 *  - the body is counted against the limit as it arrives.
 * Responses are queued on a later handler call, never the first, except for
 * refusals, where closing the connection is the point.
 *
 * HTTPS is the library's own (GnuTLS, as Debian builds it); this file is also
 * the only one that includes GnuTLS, for the client certificate of mutual TLS. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/crypto.h"
#include "base/fjson.h"
#include "base/log.h"
#include "base/metrics.h"
#include "http/wire.h"

/* The header block check relies on MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE
 * and on how 0.9.75 parses the block in place; another version must pass
 * tests/e2e/test_http_framing.c before it is used (a layout the walker does
 * not recognise is refused, never read past). */
#if MHD_VERSION < 0x00097500
#error "libmicrohttpd 0.9.75 or later is required"
#endif

/* One per connection, registered for the watchdog. */
struct conn_ctx {
	struct conn_ctx *prev, *next;
	int fd;
	int64_t deadline_ms; /* 0 = none; guarded by srv->lock */
	const char *phase;   /* what the deadline is for */
	bool closed_by_deadline;
	const struct req_ctx *busy; /* the request the handler is working on; guarded by srv->lock */
	/* mutual TLS: the verified client certificate, looked at once per
	 * connection by the thread serving it */
	bool peer_checked;
	char peer_sha256[65];
	char peer_subject[512];
};

/* One query parameter, decoded; value NULL when the parameter has no '='. */
struct query_param {
	char *name, *value;
};

/* Memory kept between requests (http.h: HTTP_SCRATCH_KEEP,
 * HTTP_KEEP_BODY_MIN): at most one request body and one scratch arena per
 * worker thread, given back when a request is done and taken by the next
 * one, so a large request works in pages already faulted in. Freed when the
 * server stops. */
#define KEEP_SLOTS 64
struct keep {
	pthread_mutex_t lock;
	size_t slots; /* the worker threads, at most KEEP_SLOTS */
	char *body[KEEP_SLOTS];
	size_t body_cap[KEEP_SLOTS];
	size_t nbody;
	struct arena *arena[KEEP_SLOTS];
	size_t narena;
};

/* A kept body buffer of at least need bytes (the smallest such), or NULL. */
static char *keep_take_body(struct keep *k, size_t need, size_t *cap)
{
	char *b = NULL;
	pthread_mutex_lock(&k->lock);
	size_t best = k->nbody;
	for (size_t i = 0; i < k->nbody; i++)
		if (k->body_cap[i] >= need && (best == k->nbody || k->body_cap[i] < k->body_cap[best]))
			best = i;
	if (best < k->nbody) {
		b = k->body[best];
		*cap = k->body_cap[best];
		k->nbody--;
		k->body[best] = k->body[k->nbody];
		k->body_cap[best] = k->body_cap[k->nbody];
	}
	pthread_mutex_unlock(&k->lock);
	return b;
}

/* Keeps a body buffer for the next request, or frees it (too small, past
 * max, or every slot taken). */
static void keep_give_body(struct keep *k, char *b, size_t cap, size_t max)
{
	if (!b)
		return;
	if (cap >= HTTP_KEEP_BODY_MIN && cap <= max) {
		pthread_mutex_lock(&k->lock);
		bool kept = k->nbody < k->slots;
		if (kept) {
			k->body[k->nbody] = b;
			k->body_cap[k->nbody++] = cap;
		}
		pthread_mutex_unlock(&k->lock);
		if (kept)
			return;
	}
	free(b);
}

/* A scratch arena: a kept one, or a new one (NULL when memory ran out). */
static struct arena *keep_take_arena(struct keep *k)
{
	struct arena *a = NULL;
	pthread_mutex_lock(&k->lock);
	if (k->narena)
		a = k->arena[--k->narena];
	pthread_mutex_unlock(&k->lock);
	if (!a && (a = malloc(sizeof *a)))
		arena_init(a, 0);
	return a;
}

/* Empties a scratch arena and keeps it, with its memory up to
 * HTTP_SCRATCH_KEEP, for the next request (or frees it). */
static void keep_give_arena(struct keep *k, struct arena *a)
{
	if (!a)
		return;
	arena_recycle(a, HTTP_SCRATCH_KEEP);
	a->budget = 0; /* the default again; the next handler may set its own */
	pthread_mutex_lock(&k->lock);
	bool kept = k->narena < k->slots;
	if (kept)
		k->arena[k->narena++] = a;
	pthread_mutex_unlock(&k->lock);
	if (!kept) {
		arena_release(a);
		free(a);
	}
}

static void keep_free(struct keep *k)
{
	for (size_t i = 0; i < k->nbody; i++)
		free(k->body[i]);
	for (size_t i = 0; i < k->narena; i++) {
		arena_release(k->arena[i]);
		free(k->arena[i]);
	}
	k->nbody = k->narena = 0;
	pthread_mutex_destroy(&k->lock);
}

/* One per request (MHD's con_cls). */
struct req_ctx {
	struct http_server *srv;
	struct conn_ctx *conn;
	struct MHD_Connection *mc;
	char *target;       /* the request target as sent (raw, owned) */
	char *path;         /* its path, decoded (owned) */
	struct query_param *params; /* the query, decoded (owned, one allocation with the strings) */
	size_t nparams;
	int64_t start_ms;
	struct timespec start_ts;
	int phase;                 /* 0: headers not yet seen by handler; 1: reading body; 2: answered; 3: deferred;
		    * 4: answered, held by finish (http_defer from finish) */
	struct http_response held; /* phase 4: the answer kept until woken */
	char *body;
	size_t len, cap;
	bool too_large;
	int status;
	const char *route;
	char method[16];
	char request_id[65];
	char client[INET6_ADDRSTRLEN];
	struct http_request req; /* lives as long as the request: a deferred answer uses it later */
	/* a deferred answer (http_defer); guarded by srv->defer_lock */
	void (*resume)(void *ctx, struct http_request *req, struct http_response *resp);
	void *resume_ctx;
	bool woken, suspended;
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_dispatch dispatch;
	struct config_limits limits;
	unsigned port;
	char authority[300]; /* listen host and bound port */
	pthread_mutex_t lock; /* guards the connection list and deadlines */
	struct conn_ctx conns; /* list head */
	pthread_t watchdog;
	bool watchdog_running;
	atomic_bool stopping;
	atomic_uint inflight;
	atomic_uint connections;
	atomic_bool quiesced; /* draining: new connections are closed on accept */
	pthread_mutex_t defer_lock; /* guards each request's deferral state */
	atomic_uint deferred;       /* requests deferred whose answer is not yet made */
	bool mtls;                  /* clients are asked for a certificate */
	char *tls_cert, *tls_key, *tls_ca; /* PEM text given to the library, kept while it runs */
	struct keep keep;
};

/* TLS 1.2 and 1.3 only, GnuTLS's NORMAL cipher suites otherwise. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_deadline(struct http_server *srv, struct conn_ctx *c, int64_t when, const char *phase)
{
	if (!c)
		return;
	pthread_mutex_lock(&srv->lock);
	c->deadline_ms = when;
	c->phase = phase;
	pthread_mutex_unlock(&srv->lock);
}

/* ---------------------------------------------------------------- reasons */

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* --------------------------------------------------------- request access */

static const struct req_ctx *rq_of(const struct http_request *req)
{
	return (const struct req_ctx *)req->impl;
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(rq_of(req)->mc, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *req, const char *name)
{
	const struct req_ctx *rq = rq_of(req);
	for (size_t i = 0; i < rq->nparams; i++)
		if (strcmp(rq->params[i].name, name) == 0)
			return rq->params[i].value;
	return NULL;
}

int http_query_each(const struct http_request *req,
		    int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	const struct req_ctx *rq = rq_of(req);
	for (size_t i = 0; i < rq->nparams; i++) {
		int rc = fn(ctx, rq->params[i].name, rq->params[i].value ? rq->params[i].value : "");
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------- responses */

void http_set_body(struct http_response *resp, int status, const char *content_type, char *body,
		   size_t len)
{
	free(resp->body);
	if (resp->file_fd > 0)
		close(resp->file_fd);
	resp->file_fd = 0;
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = body ? len : 0;
}

void http_set_file(struct http_response *resp, int status, const char *content_type, int fd, size_t size)
{
	http_set_body(resp, status, content_type, NULL, 0);
	resp->file_fd = fd;
	resp->file_size = size;
}

void http_set_json(struct http_response *resp, int status, cJSON *tree)
{
	size_t len = 0;
	char *text = tree ? fjson_print(tree, false, &len) : NULL;
	cJSON_Delete(tree);
	if (!text) {
		static const char oom[] =
			"{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"fatal\","
			"\"code\":\"exception\",\"diagnostics\":\"out of memory\"}]}";
		text = strdup(oom);
		len = text ? sizeof oom - 1 : 0;
		status = 500;
	}
	http_set_body(resp, status, "application/fhir+json; charset=utf-8", text, len);
}

void http_set_outcome(struct http_response *resp, int status, const struct outcome *oo)
{
	http_set_json(resp, status, outcome_to_json(oo));
}

void http_set_error(struct http_response *resp, int status, const char *code, const char *fmt, ...)
{
	char diag[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(diag, sizeof diag, fmt, ap);
	va_end(ap);
	enum outcome_severity sev = status >= 500 ? OUTCOME_FATAL : OUTCOME_ERROR;
	http_set_json(resp, status, outcome_single(sev, code, diag, NULL));
}

bool http_add_header(struct http_response *resp, const char *name, const char *value)
{
	if (resp->nheaders >= HTTP_MAX_HEADERS || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return false;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return false;
	}
	resp->headers[resp->nheaders++] = (struct http_header_pair){n, v};
	return true;
}

void http_defer(struct http_request *req, void (*resume)(void *ctx, struct http_request *req, struct http_response *resp),
		void *ctx)
{
	struct req_ctx *rq = req->impl;
	pthread_mutex_lock(&rq->srv->defer_lock);
	rq->resume = resume;
	rq->resume_ctx = ctx;
	rq->woken = rq->suspended = false;
	pthread_mutex_unlock(&rq->srv->defer_lock);
	atomic_fetch_add(&rq->srv->deferred, 1);
}

void http_wake(struct http_request *req)
{
	struct req_ctx *rq = req->impl;
	pthread_mutex_lock(&rq->srv->defer_lock);
	rq->woken = true;
	if (rq->suspended) {
		rq->suspended = false;
		MHD_resume_connection(rq->mc);
	}
	pthread_mutex_unlock(&rq->srv->defer_lock);
}

static void response_release(struct http_response *resp)
{
	free(resp->body);
	if (resp->file_fd > 0)
		close(resp->file_fd);
	for (size_t i = 0; i < resp->nheaders; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	memset(resp, 0, sizeof *resp);
}

/* Sends resp (consumed). close_after forces "Connection: close". */
static enum MHD_Result send_response(struct MHD_Connection *mc, struct req_ctx *rq,
				     struct http_response *resp, bool close_after)
{
	struct MHD_Response *r = resp->file_fd > 0 ? MHD_create_response_from_fd64(resp->file_size, resp->file_fd)
						   : MHD_create_response_from_buffer_with_free_callback(
							     resp->body_len, resp->body ? resp->body : (char *)"",
							     resp->body ? free : NULL);
	if (!r) {
		response_release(resp);
		return MHD_NO;
	}
	if (resp->file_fd > 0)
		resp->file_fd = 0; /* now owned by r */
	else
		resp->body = NULL; /* now owned by r */
	if (resp->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	MHD_add_response_header(r, "X-Request-Id", rq->request_id);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	for (size_t i = 0; i < resp->nheaders; i++)
		MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
	if (close_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	rq->status = resp->status;
	rq->route = resp->route ? resp->route : rq->route;
	rq->phase = 2;
	enum MHD_Result ret = MHD_queue_response(mc, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	response_release(resp);
	set_deadline(rq->srv, rq->conn, now_ms() + (int64_t)rq->srv->limits.request_timeout_ms, "reply");
	return ret;
}

/* A request refused before dispatch, as the application's refused hook
 * sees it (http.h). */
static void tell_refused(struct http_server *srv, struct req_ctx *rq, struct http_response *resp)
{
	if (!srv->dispatch.refused)
		return;
	const char *t = rq->target ? rq->target : "/";
	size_t plen = strcspn(t, "?");
	char *path = malloc(plen + 1);
	if (!path)
		return;
	memcpy(path, t, plen);
	path[plen] = '\0';
	struct http_request req = {
		.method = rq->method,
		.path = path,
		.body = "",
		.request_id = rq->request_id,
		.client = rq->client,
		.authority = srv->authority,
		.impl = rq,
	};
	if (srv->mtls && rq->conn && rq->conn->peer_sha256[0]) {
		req.tls_client_sha256 = rq->conn->peer_sha256;
		req.tls_client_subject = rq->conn->peer_subject;
	}
	srv->dispatch.refused(srv->dispatch.ctx, &req, resp);
	if (req.app_free)
		req.app_free(req.app);
	free(path);
}

static enum MHD_Result refuse(struct MHD_Connection *mc, struct req_ctx *rq, int status, const char *code,
			      const char *diag)
{
	struct http_response resp = {0};
	resp.route = rq->route ? rq->route : "(refused)";
	http_set_error(&resp, status, code, "%s", diag);
	tell_refused(rq->srv, rq, &resp);
	return send_response(mc, rq, &resp, true);
}

/* ------------------------------------------------------- framing checks */

/* What the header walk found: the first problem, and the framing headers. */
struct framing {
	struct wire_walk walk;
	const char *field_err;
	int n_cl, n_te, n_host;
	const char *te, *host;
	size_t te_len, host_len;
};

/* The offset of p in the header block, or SIZE_MAX when p lies outside it
 * (the walker then refuses the block; p is never read). */
static size_t block_off(const struct framing *f, const char *p)
{
	uintptr_t b = (uintptr_t)f->walk.block, q = (uintptr_t)p;
	return q >= b && q - b <= f->walk.len ? (size_t)(q - b) : SIZE_MAX;
}

static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				  const char *value, size_t value_size)
{
	(void)kind;
	struct framing *f = cls;
	if (!value) {
		value = "";
		value_size = 0;
	}
	wire_walk_field(&f->walk, block_off(f, key), key_size, block_off(f, value), value_size);
	if (!f->field_err)
		f->field_err = wire_check_field(key, key_size, value, value_size);
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		f->n_cl++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->n_te++;
		f->te = value;
		f->te_len = value_size;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		f->n_host++;
		f->host = value;
		f->host_len = value_size;
	}
	return MHD_YES;
}

/* Splits the (already checked) query of rq->target into rq->params. */
static int parse_query(struct req_ctx *rq)
{
	const char *q = strchr(rq->target, '?');
	if (!q || !q[1])
		return 0;
	q++;
	size_t n = strlen(q), count = 1;
	for (size_t i = 0; i < n; i++)
		count += q[i] == '&';
	/* One block: the array, then each name and value NUL-terminated. */
	size_t size = count * sizeof *rq->params + 2 * n + 2 * count;
	rq->params = malloc(size);
	if (!rq->params)
		return -1;
	char *out = (char *)(rq->params + count);
	for (const char *p = q; p <= q + n;) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t nlen = eq ? (size_t)(eq - p) : len;
			struct query_param *qp = &rq->params[rq->nparams++];
			qp->name = out;
			out += wire_pct_decode(p, nlen, out, true);
			*out++ = '\0';
			qp->value = NULL;
			if (eq) {
				qp->value = out;
				out += wire_pct_decode(eq + 1, len - nlen - 1, out, true);
				*out++ = '\0';
			}
		}
		p += len + 1;
	}
	return 0;
}

/* Checks what the library parsed against the raw header block, then the
 * header fields, Host and the target. Returns NULL or a reason for a 400
 * (*status may be raised to 414). */
static const char *check_request(struct MHD_Connection *mc, struct req_ctx *rq, const char *url,
				 const char *method, const char *version, struct framing *f, int *status)
{
	*status = 400;
	const union MHD_ConnectionInfo *hs = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (!hs || !rq->target)
		return "the request could not be read";
	f->walk.block = method;
	f->walk.len = hs->header_size;
	size_t target_off = block_off(f, url), version_off = block_off(f, version);
	wire_walk_start(&f->walk, method, hs->header_size, strlen(method), target_off, strlen(rq->target),
			version_off, strlen(version));
	MHD_get_connection_values_n(mc, MHD_HEADER_KIND, walk_field, f);
	const char *why = wire_walk_end(&f->walk);
	if (why)
		return why;
	if (f->field_err)
		return f->field_err;
	bool http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
	if (f->n_host > 1)
		return "more than one Host header";
	if (http11 && f->n_host == 0)
		return "an HTTP/1.1 request must carry a Host header";
	if (f->host && !wire_host_ok(f->host, f->host_len))
		return "the Host header is not a host name or address with an optional port";
	why = wire_check_target(rq->target, strlen(rq->target), status);
	if (why)
		return why;
	const char *q = strchr(rq->target, '?');
	size_t plen = q ? (size_t)(q - rq->target) : strlen(rq->target);
	rq->path = malloc(plen + 1);
	if (!rq->path || parse_query(rq) != 0) {
		*status = 503;
		return "out of memory";
	}
	rq->path[wire_pct_decode(rq->target, plen, rq->path, false)] = '\0';
	return NULL;
}

static bool valid_request_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				 c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return n > 0;
}

static void new_request_id(char out[65])
{
	unsigned char raw[16];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		/* Fall back to time and address entropy; ids need uniqueness only. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20), b = (uint64_t)(uintptr_t)out;
		memcpy(raw, &a, 8);
		memcpy(raw + 8, &b, 8);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof raw; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[32] = '\0';
}

/* ---------------------------------------------------- libmicrohttpd hooks */

static bool run_resume(struct req_ctx *rq, struct http_response *resp);

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	/* The URI is never logged: it may carry identifiers. */
	struct http_server *srv = cls;
	struct req_ctx *rq = calloc(1, sizeof *rq);
	if (!rq)
		return NULL;
	rq->target = strdup(uri ? uri : "");
	if (!rq->target) {
		free(rq);
		return NULL;
	}
	/* The gateway parses the query itself (parse_query). The library has
	 * found the '?' already and parses what follows it once this returns:
	 * ending the string right after the '?' leaves it nothing to parse.
	 * The byte is the library's own read buffer; it is not read again. */
	char *qm = uri ? strchr(uri, '?') : NULL;
	if (qm)
		qm[1] = '\0';
	rq->srv = srv;
	rq->start_ms = now_ms();
	clock_gettime(CLOCK_MONOTONIC, &rq->start_ts);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	rq->conn = ci ? ci->socket_context : NULL;
	const union MHD_ConnectionInfo *ai = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ai && ai->client_addr) {
		const struct sockaddr *sa = ai->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, rq->client,
				  sizeof rq->client);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
				  rq->client, sizeof rq->client);
	}
	atomic_fetch_add(&srv->inflight, 1);
	metrics_gauge_add(METRICS_INFLIGHT, 1);
	return rq;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)mc;
	struct http_server *srv = cls;
	struct req_ctx *rq = *con_cls;
	if (!rq)
		return;
	*con_cls = NULL;
	if (rq->resume) {
		/* closed while deferred (the server stopping): the answer is made
		 * and dropped once woken; never woken, whatever is awaited still
		 * holds rq, which is then left alone */
		struct http_response dropped = rq->held;
		rq->held = (struct http_response){0};
		if (!run_resume(rq, &dropped)) {
			rq->held = dropped;
			log_event(LOG_WARN, "deferred_lost", "a deferred request was closed before its answer came",
				  "request_id", rq->request_id, (const char *)NULL);
			return;
		}
		response_release(&dropped);
	}
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	double secs = (double)(end.tv_sec - rq->start_ts.tv_sec) + (double)(end.tv_nsec - rq->start_ts.tv_nsec) / 1e9;
	char status[8] = "", dur[32] = "";
	bool logged = log_enabled(LOG_INFO);
	if (logged) {
		snprintf(status, sizeof status, "%d", rq->status);
		snprintf(dur, sizeof dur, "%.3f", secs * 1000.0);
	}
	const char *how = NULL;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		how = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
		      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT  ? "client-abort"
		      : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
		      : toe == MHD_REQUEST_TERMINATED_READ_ERROR     ? "read-error"
								     : "error";
	if (rq->request_id[0] || rq->status) {
		if (logged)
			log_event(LOG_INFO, "request", NULL, "request_id", rq->request_id, "method", rq->method,
			  "route", rq->route ? rq->route : "(unmatched)", "status", status, "duration_ms", dur,
			  "client", rq->client, "termination", how, (const char *)NULL);
		if (rq->status)
			metrics_request_done(rq->route, rq->status, secs);
	}
	response_release(&rq->held);
	if (rq->req.app_free)
		rq->req.app_free(rq->req.app);
	keep_give_body(&srv->keep, rq->body, rq->cap, (size_t)srv->limits.max_body_bytes + 1);
	free(rq->target);
	free(rq->path);
	free(rq->params);
	if (rq->conn && !atomic_load(&srv->stopping))
		set_deadline(srv, rq->conn, now_ms() + (int64_t)srv->limits.header_timeout_ms, "headers");
	free(rq);
	atomic_fetch_sub(&srv->inflight, 1);
	metrics_gauge_add(METRICS_INFLIGHT, -1);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *srv = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_ctx *c = calloc(1, sizeof *c);
		if (!c)
			return;
		const union MHD_ConnectionInfo *fi = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = fi ? fi->connect_fd : -1;
		c->deadline_ms = now_ms() + (int64_t)srv->limits.header_timeout_ms;
		c->phase = "headers";
		pthread_mutex_lock(&srv->lock);
		c->next = srv->conns.next;
		c->prev = &srv->conns;
		srv->conns.next->prev = c;
		srv->conns.next = c;
		pthread_mutex_unlock(&srv->lock);
		*socket_context = c;
		atomic_fetch_add(&srv->connections, 1);
		metrics_gauge_add(METRICS_CONNECTIONS, 1);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn_ctx *c = *socket_context;
		if (!c)
			return;
		/* The library closes the descriptor only after this returns, so
		 * the watchdog never shuts down a reused descriptor. */
		pthread_mutex_lock(&srv->lock);
		c->prev->next = c->next;
		c->next->prev = c->prev;
		pthread_mutex_unlock(&srv->lock);
		free(c);
		*socket_context = NULL;
		atomic_fetch_sub(&srv->connections, 1);
		metrics_gauge_add(METRICS_CONNECTIONS, -1);
	}
}

static void *watchdog_main(void *arg)
{
	struct http_server *srv = arg;
	while (!atomic_load(&srv->stopping)) {
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
		int64_t now = now_ms();
		pthread_mutex_lock(&srv->lock);
		for (struct conn_ctx *c = srv->conns.next; c != &srv->conns; c = c->next) {
			if (c->deadline_ms && now >= c->deadline_ms && !c->closed_by_deadline && c->fd >= 0) {
				c->closed_by_deadline = true;
				shutdown(c->fd, SHUT_RDWR);
				metrics_counter_add(METRICS_DEADLINE_CLOSED, 1);
				log_event(LOG_INFO, "connection_deadline", "connection closed at its deadline",
					  "phase", c->phase, (const char *)NULL);
			}
		}
		pthread_mutex_unlock(&srv->lock);
	}
	return NULL;
}

/* Records on the connection which request the handler works on, for
 * http_server_each_busy. */
static void set_busy(struct http_server *srv, const struct req_ctx *rq, bool busy)
{
	if (!rq->conn)
		return;
	pthread_mutex_lock(&srv->lock);
	rq->conn->busy = busy ? rq : NULL;
	pthread_mutex_unlock(&srv->lock);
}

/* Accept policy: while draining, every new connection is closed at once. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)addr;
	(void)addrlen;
	struct http_server *srv = cls;
	return atomic_load(&srv->quiesced) ? MHD_NO : MHD_YES;
}

/* Makes a deferred request's answer once it is woken; false when it is not
 * (yet). */
static bool run_resume(struct req_ctx *rq, struct http_response *resp)
{
	pthread_mutex_lock(&rq->srv->defer_lock);
	bool woken = rq->woken;
	void (*resume)(void *, struct http_request *, struct http_response *) = rq->resume;
	if (woken)
		rq->resume = NULL;
	pthread_mutex_unlock(&rq->srv->defer_lock);
	if (!woken || !resume)
		return false;
	resume(rq->resume_ctx, &rq->req, resp);
	atomic_fetch_sub(&rq->srv->deferred, 1);
	return true;
}

/* Mutual TLS: once per connection, the client certificate, if one was
 * shown and it verifies against the configured CA (chain, dates), becomes
 * the connection's identity. An unverified one is ignored: the request is
 * then anonymous, and the authorization layer refuses it. */
static void check_peer(struct MHD_Connection *mc, struct conn_ctx *c)
{
	if (c->peer_checked)
		return;
	c->peer_checked = true;
	const union MHD_ConnectionInfo *ti = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s = ti ? (gnutls_session_t)ti->tls_session : NULL;
	unsigned status = 0, n = 0;
	if (!s || gnutls_certificate_type_get(s) != GNUTLS_CRT_X509)
		return;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0)
		return;
	if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0) {
		log_event(LOG_INFO, "tls_client_refused",
			  "a client certificate did not verify against tls.client_ca_file", (const char *)NULL);
		return;
	}
	if (crypto_cert_identity(certs[0].data, certs[0].size, c->peer_sha256, c->peer_subject,
				 sizeof c->peer_subject) != 0)
		c->peer_sha256[0] = c->peer_subject[0] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *srv = cls;
	struct req_ctx *rq = *con_cls;
	if (!rq)
		return MHD_NO; /* allocation failed in on_uri: drop the connection */

	if (rq->phase == 0) {
		/* Headers are complete. Framing and size are judged here, before
		 * any body byte is read. */
		rq->phase = 1;
		snprintf(rq->method, sizeof rq->method, "%s", method);
		const char *rid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Request-Id");
		if (rid && valid_request_id(rid))
			snprintf(rq->request_id, sizeof rq->request_id, "%s", rid);
		else
			new_request_id(rq->request_id);
		set_deadline(srv, rq->conn, rq->start_ms + (int64_t)srv->limits.request_timeout_ms, "request");

		/* Every refusal closes the connection: after a request the
		 * gateway did not understand, nothing behind it on the
		 * connection can be trusted to start where it seems to. */
		rq->mc = mc;
		if (srv->mtls && rq->conn)
			check_peer(mc, rq->conn);
		struct framing f = {0};
		int status = 400;
		const char *why = check_request(mc, rq, url, method, version, &f, &status);
		if (why) {
			if (status == 400)
				metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
			return refuse(mc, rq, status, status == 503 ? "transient" : status == 414 ? "too-long" : "invalid",
				      why);
		}
		if (f.n_cl > 0 && f.n_te > 0) {
			metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
			return refuse(mc, rq, 400, "invalid",
				      "a request may not carry both Content-Length and Transfer-Encoding");
		}
		if (f.n_te > 1) {
			metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
			return refuse(mc, rq, 400, "invalid",
				      "more than one Transfer-Encoding header (one \"chunked\" is the only coding accepted)");
		}
		if (f.te) {
			status = wire_transfer_encoding(f.te, f.te_len, &why);
			if (status) {
				metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
				return refuse(mc, rq, status, status == 501 ? "not-supported" : "invalid", why);
			}
		}
		if (f.n_cl > 1) {
			metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
			return refuse(mc, rq, 400, "invalid", "more than one Content-Length");
		}
		const char *cl = NULL;
		size_t cl_len = 0;
		if (f.n_cl == 1 &&
		    MHD_lookup_connection_value_n(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH,
						  strlen(MHD_HTTP_HEADER_CONTENT_LENGTH), &cl, &cl_len) != MHD_YES)
			cl = NULL;
		if (cl) {
			uint64_t n = 0;
			why = wire_content_length(cl, cl_len, &n);
			if (why) {
				metrics_counter_add(METRICS_FRAMING_REJECTED, 1);
				return refuse(mc, rq, 400, "invalid", why);
			}
			if (n > srv->limits.max_body_bytes) {
				metrics_counter_add(METRICS_BODY_TOO_LARGE, 1);
				char diag[160];
				snprintf(diag, sizeof diag,
					 "request body of %llu bytes exceeds the limit of %llu bytes "
					 "(limits.max_body_bytes)",
					 (unsigned long long)n, (unsigned long long)srv->limits.max_body_bytes);
				return refuse(mc, rq, 413, "too-long", diag);
			}
			if (n > 0) {
				/* sized once from Content-Length (never past the
				 * limit, checked above), in a kept buffer when one
				 * is large enough; a body that comes shorter leaves
				 * the rest unused, one that would come longer is
				 * the next request's bytes to the library */
				rq->body = keep_take_body(&srv->keep, (size_t)n + 1, &rq->cap);
				if (!rq->body) {
					rq->cap = (size_t)n + 1;
					rq->body = malloc(rq->cap);
				}
				if (!rq->body)
					return refuse(mc, rq, 503, "transient", "out of memory");
			}
		}
		return MHD_YES;
	}

	if (rq->phase == 2) {
		/* Already answered (a refusal while the body was arriving):
		 * discard whatever else comes. */
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->len + n > srv->limits.max_body_bytes) {
			metrics_counter_add(METRICS_BODY_TOO_LARGE, 1);
			rq->too_large = true;
			rq->status = 413;
			keep_give_body(&srv->keep, rq->body, rq->cap, (size_t)srv->limits.max_body_bytes + 1);
			rq->body = NULL;
			rq->cap = 0;
			/* The library cannot queue a reply in the middle of a
			 * body; cut the connection off at the limit. */
			log_event(LOG_INFO, "body_limit", "request body cut off at the limit", "request_id",
				  rq->request_id, (const char *)NULL);
			return MHD_NO;
		}
		if (!rq->body) /* no Content-Length (chunked): start in a kept buffer if any */
			rq->body = keep_take_body(&srv->keep, rq->len + n + 1, &rq->cap);
		if (rq->len + n + 1 > rq->cap) {
			size_t ncap = rq->cap ? rq->cap : 4096;
			while (ncap < rq->len + n + 1)
				ncap *= 2;
			if (ncap > srv->limits.max_body_bytes + 1)
				ncap = (size_t)srv->limits.max_body_bytes + 1;
			char *nb = realloc(rq->body, ncap);
			if (!nb)
				return MHD_NO;
			rq->body = nb;
			rq->cap = ncap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		return MHD_YES;
	}

	struct http_response resp = {0};
	if (rq->phase == 4) {
		/* a held answer, released: its resume may change it; finish ran */
		resp = rq->held;
		rq->held = (struct http_response){0};
		set_busy(srv, rq, true);
		bool released = run_resume(rq, &resp);
		set_busy(srv, rq, false);
		if (!released) {
			rq->held = resp;
			return MHD_YES;
		}
		return send_response(mc, rq, &resp, false);
	}
	if (rq->phase == 3) {
		/* resumed: the awaited thing is ready */
		set_busy(srv, rq, true);
		bool answered = run_resume(rq, &resp);
		set_busy(srv, rq, false);
		if (!answered)
			return MHD_YES;
	} else {
		/* The whole request is here: dispatch. Processing time is ours, not
		 * the client's, so no deadline runs while the handler works. */
		set_deadline(srv, rq->conn, 0, "processing");
		rq->req = (struct http_request){
			.method = method,
			.path = rq->path,
			.body = rq->body ? rq->body : "",
			.body_len = rq->len,
			.request_id = rq->request_id,
			.client = rq->client,
			.authority = srv->authority,
			.impl = rq,
		};
		if (srv->mtls && rq->conn && rq->conn->peer_sha256[0]) {
			rq->req.tls_client_sha256 = rq->conn->peer_sha256;
			rq->req.tls_client_subject = rq->conn->peer_subject;
		}
		if (rq->body)
			rq->body[rq->len] = '\0';
		rq->req.scratch = keep_take_arena(&srv->keep);
		set_busy(srv, rq, true);
		srv->dispatch.fn(srv->dispatch.ctx, &rq->req, &resp);
		set_busy(srv, rq, false);
		keep_give_arena(&srv->keep, rq->req.scratch);
		rq->req.scratch = NULL;
		if (rq->resume) {
			/* deferred: the worker goes back to serving others (the
			 * route label stays for the log and the metrics) */
			if (resp.route)
				rq->route = resp.route;
			response_release(&resp);
			rq->phase = 3;
			rq->req.nparams = 0; /* the router's captures are gone */
			pthread_mutex_lock(&srv->defer_lock);
			bool woken = rq->woken;
			if (!woken) {
				MHD_suspend_connection(mc);
				rq->suspended = true;
			}
			pthread_mutex_unlock(&srv->defer_lock);
			if (!woken)
				return MHD_YES;
			set_busy(srv, rq, true);
			bool answered = run_resume(rq, &resp);
			set_busy(srv, rq, false);
			if (!answered)
				return MHD_YES;
		}
	}
	if (resp.status == 0)
		http_set_error(&resp, 500, "exception", "no response was produced");
	if (srv->dispatch.finish) {
		srv->dispatch.finish(srv->dispatch.ctx, &rq->req, &resp);
		if (rq->resume) {
			/* finish holds the answer until something wakes the request */
			rq->held = resp;
			rq->phase = 4;
			pthread_mutex_lock(&srv->defer_lock);
			bool woken = rq->woken;
			if (!woken) {
				MHD_suspend_connection(mc);
				rq->suspended = true;
			}
			pthread_mutex_unlock(&srv->defer_lock);
			if (!woken)
				return MHD_YES;
			resp = rq->held;
			rq->held = (struct http_response){0};
			set_busy(srv, rq, true);
			run_resume(rq, &resp);
			set_busy(srv, rq, false);
		}
	}
	return send_response(mc, rq, &resp, false);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_event(LOG_DEBUG, "http_library", msg, (const char *)NULL);
}

/* --------------------------------------------------------------- server */

/* The listening socket, bound here rather than by the library: with
 * SO_REUSEADDR alone (a restart can bind while old connections linger), never
 * SO_REUSEPORT, which would let a second gateway start on the same port and
 * share its connections. Sets *port to the bound port. */
static int open_listener(const struct config *cfg, unsigned *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	if (cfg->listen_ipv6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)cfg->listen_port);
		inet_pton(AF_INET6, cfg->listen_host, &s6->sin6_addr);
		sl = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)cfg->listen_port);
		inet_pton(AF_INET, cfg->listen_host, &s4->sin_addr);
		sl = sizeof *s4;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (cfg->listen_ipv6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(cfg->listen_ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
				       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void server_free(struct http_server *srv)
{
	keep_free(&srv->keep);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->defer_lock);
	free(srv->tls_cert);
	if (srv->tls_key) {
		explicit_bzero(srv->tls_key, strlen(srv->tls_key));
		free(srv->tls_key);
	}
	free(srv->tls_ca);
	free(srv);
}

/* The whole of a (small) PEM file as a string, or NULL with why. */
static char *read_pem(const char *key, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot read %s: %s", key, file, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap + 1);
	if (buf)
		n = fread(buf, 1, cap + 1, f);
	fclose(f);
	if (!buf || n > cap) {
		snprintf(err, errlen, "%s: %s is larger than 1 MiB", key, file);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static bool tls_load(struct http_server *srv, const struct config_tls *t, char *err, size_t errlen)
{
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen, "tls: this libmicrohttpd was built without HTTPS support");
		return false;
	}
	srv->tls_cert = read_pem("tls.cert_file", t->cert_file, err, errlen);
	srv->tls_key = srv->tls_cert ? read_pem("tls.key_file", t->key_file, err, errlen) : NULL;
	if (!srv->tls_key)
		return false;
	if (t->client_ca_file && !(srv->tls_ca = read_pem("tls.client_ca_file", t->client_ca_file, err, errlen)))
		return false;
	srv->mtls = srv->tls_ca != NULL;
	return true;
}

struct http_server *http_server_start(const struct config *cfg, struct http_dispatch dispatch, char *err,
				      size_t errlen)
{
	struct http_server *srv = calloc(1, sizeof *srv);
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->dispatch = dispatch;
	srv->limits = cfg->limits;
	srv->conns.next = srv->conns.prev = &srv->conns;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->defer_lock, NULL);
	pthread_mutex_init(&srv->keep.lock, NULL);

	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	if (cfg->listen_ipv6)
		flags |= MHD_USE_IPv6;
	if (cfg->tls.cert_file && !tls_load(srv, &cfg->tls, err, errlen)) {
		server_free(srv);
		return NULL;
	}
	if (srv->tls_cert)
		flags |= MHD_USE_TLS;
	int lfd = open_listener(cfg, &srv->port, err, errlen);
	if (lfd < 0) {
		server_free(srv);
		return NULL;
	}
	/* Known before the first request arrives: handlers only read it. */
	snprintf(srv->authority, sizeof srv->authority, cfg->listen_ipv6 ? "[%s]:%u" : "%s:%u", cfg->listen_host,
		 srv->port);
	unsigned threads = cfg->threads;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	srv->keep.slots = threads < KEEP_SLOTS ? threads : KEEP_SLOTS;
	/* Idle timeout as a backstop; the watchdog enforces the real deadlines. */
	unsigned idle_s = (unsigned)((cfg->limits.request_timeout_ms + 999) / 1000);
	srv->daemon = MHD_start_daemon(flags, 0, on_accept, srv, on_request, srv, MHD_OPTION_LISTEN_SOCKET, lfd,
				       MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
				       (unsigned)cfg->limits.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				       (unsigned)cfg->limits.max_connections_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				       (size_t)cfg->limits.max_header_bytes, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
				       /* Not strict: in 0.9.75 its strict refusals (no Host, a space in
		 * the target) answer with the header block written twice, or not
		 * at all; the gateway's own checks refuse both. */
				       MHD_OPTION_STRICT_FOR_CLIENT, 0, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
				       MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
				       on_connection, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       /* HTTPS (ignored without MHD_USE_TLS); the trust list makes the
		 * library ask clients for a certificate */
				       srv->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, srv->tls_cert,
				       MHD_OPTION_HTTPS_MEM_KEY, srv->tls_key, MHD_OPTION_HTTPS_PRIORITIES,
				       HTTP_TLS_PRIORITIES, srv->tls_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
				       srv->tls_ca, MHD_OPTION_END);
	if (!srv->daemon) {
		snprintf(err, errlen, "cannot serve on %s: the HTTP library refused the settings%s", cfg->listen,
			 srv->tls_cert ? " (TLS certificate, key or client CA not usable by GnuTLS)" : "");
		close(lfd);
		server_free(srv);
		return NULL;
	}
	if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
		snprintf(err, errlen, "cannot start the deadline watchdog thread");
		MHD_stop_daemon(srv->daemon);
		server_free(srv);
		return NULL;
	}
	srv->watchdog_running = true;
	return srv;
}

unsigned http_server_port(const struct http_server *srv) { return srv->port; }

void http_server_quiesce(struct http_server *srv)
{
	/* Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 with epoll and a
	 * thread pool it races the worker threads removing the listening socket
	 * from their epoll sets and aborts the process ("Failed to remove listen
	 * FD from epoll set"). The accept policy closes new connections instead. */
	atomic_store(&srv->quiesced, true);
}

unsigned http_server_inflight(const struct http_server *srv) { return atomic_load(&srv->inflight); }

unsigned http_server_each_busy(struct http_server *srv,
				void (*fn)(void *ctx, const char *method, const char *path, const char *request_id),
				void *ctx)
{
	unsigned n = 0;
	pthread_mutex_lock(&srv->lock);
	for (struct conn_ctx *c = srv->conns.next; c != &srv->conns; c = c->next) {
		if (!c->busy)
			continue;
		fn(ctx, c->busy->method, c->busy->path ? c->busy->path : "", c->busy->request_id);
		n++;
	}
	pthread_mutex_unlock(&srv->lock);
	return n;
}

unsigned http_server_connections(const struct http_server *srv) { return atomic_load(&srv->connections); }

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* Deferred requests were woken by now (whatever they awaited was ended
	 * first, see http_server_stop in http.h); give the workers a moment to
	 * answer them, as the library must not stop with connections suspended. */
	for (int i = 0; i < 500 && atomic_load(&srv->deferred) > 0; i++) {
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&srv->stopping, true);
	if (srv->watchdog_running)
		pthread_join(srv->watchdog, NULL);
	MHD_stop_daemon(srv->daemon);
	server_free(srv);
}
