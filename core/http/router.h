/* router — the routing table: (method, path pattern) → handler.
 *
 * A pattern is a path of segments; a segment "{name}" captures one non-empty
 * path segment into req->params in order. Literal segments win over captures
 * when both match. A path that matches with another method answers 405 with
 * an Allow header; no match answers 404. Both as OperationOutcome.
 *
 * Threads: routes are added before serving; matching is read-only. The
 * pattern string is the route's label in logs and metrics and must outlive
 * the router (use literals). */
#ifndef CW_ROUTER_H
#define CW_ROUTER_H

#include "http/http.h"

#define ROUTER_MAX_ROUTES 96

typedef void router_handler(void *ctx, struct http_request *req, struct http_response *resp);

struct router_route {
	const char *method;  /* "GET", "POST", … */
	const char *pattern; /* "/fhir/{type}/{id}" */
	router_handler *fn;
	void *ctx;
};

struct router {
	struct router_route routes[ROUTER_MAX_ROUTES];
	size_t n;
};

/* Returns 0, or -1 when the table is full or the pattern malformed. */
int router_add(struct router *r, const char *method, const char *pattern, router_handler *fn, void *ctx);

/* Finds the route for req (filling req->params) and calls it, or answers
 * 404/405. Sets resp->route to the pattern. */
void router_dispatch(const struct router *r, struct http_request *req, struct http_response *resp);

/* Lists routes for introspection; returns count. */
size_t router_count(const struct router *r);

#endif
