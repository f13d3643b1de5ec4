#include "http/router.h"

#include <string.h>

int router_add(struct router *r, const char *method, const char *pattern, router_handler *fn, void *ctx)
{
	if (r->n >= ROUTER_MAX_ROUTES || pattern[0] != '/' || !fn)
		return -1;
	size_t captures = 0;
	for (const char *p = pattern; *p; p++)
		if (*p == '{')
			captures++;
	if (captures > HTTP_MAX_PARAMS)
		return -1;
	r->routes[r->n++] = (struct router_route){method, pattern, fn, ctx};
	return 0;
}

/* Matches path against pattern. Returns -1 for no match, else a score where
 * more literal segments score higher. Captures go to params. */
static int match(const char *pattern, const char *path, const char **params, size_t *nparams,
		 char *store, size_t storecap)
{
	int score = 0;
	size_t used = 0, np = 0;
	const char *p = pattern, *u = path;
	while (*p && *u) {
		if (*p != '/' || *u != '/')
			return -1;
		p++;
		u++;
		const char *pe = strchr(p, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		const char *ue = strchr(u, '/');
		size_t ulen = ue ? (size_t)(ue - u) : strlen(u);
		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			if (ulen == 0 || used + ulen + 1 > storecap || np >= HTTP_MAX_PARAMS)
				return -1;
			memcpy(store + used, u, ulen);
			store[used + ulen] = '\0';
			params[np++] = store + used;
			used += ulen + 1;
		} else {
			if (plen != ulen || memcmp(p, u, plen) != 0)
				return -1;
			score++;
		}
		p += plen;
		u += ulen;
	}
	/* A single trailing slash on the request is tolerated. */
	if (*p || (*u && strcmp(u, "/") != 0))
		return -1;
	*nparams = np;
	return score;
}

void router_dispatch(const struct router *r, struct http_request *req, struct http_response *resp)
{
	/* Captures live in this frame's buffer for the handler call. */
	char bufs[2][1024]; /* captures: the best match's buffer and a scratch one, swapped on a hit */
	int scratch = 0;
	const char *params[HTTP_MAX_PARAMS];
	size_t np = 0;
	int best = -1;
	const struct router_route *hit = NULL;
	char allow[256] = "";
	size_t best_np = 0;
	/* The most literal pattern that matches the path owns it: a method it
	 * lacks answers 405 even when a capture pattern would take the method
	 * (DELETE /fhir/metadata is not a delete of a "metadata" resource). */
	int top = -1;
	/* One pass: whenever a more literal match shows, what was found so far
	 * (a handler of a less literal pattern, an allow list) no longer counts. */
	for (size_t i = 0; i < r->n; i++) {
		const struct router_route *rt = &r->routes[i];
		int s = match(rt->pattern, req->path, params, &np, bufs[scratch], sizeof bufs[0]);
		if (s < 0 || s < top)
			continue;
		if (s > top) {
			top = s;
			allow[0] = '\0';
			hit = NULL;
			best = -1;
		}
		if (strcmp(rt->method, req->method) != 0 &&
		    !(strcmp(rt->method, "GET") == 0 && strcmp(req->method, "HEAD") == 0)) {
			if (!strstr(allow, rt->method) && strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
				if (*allow)
					strcat(allow, ", ");
				strcat(allow, rt->method);
			}
			continue;
		}
		if (s > best) {
			best = s;
			hit = rt;
			best_np = np;
			for (size_t k = 0; k < np; k++)
				req->params[k] = params[k];
			scratch ^= 1; /* keep these captures; match the next route elsewhere */
		}
	}
	if (hit) {
		req->nparams = best_np;
		resp->route = hit->pattern;
		hit->fn(hit->ctx, req, resp);
		if (!resp->route)
			resp->route = hit->pattern;
		return;
	}
	if (*allow) {
		resp->route = "(method-not-allowed)";
		http_set_error(resp, 405, "not-supported", "method %s is not allowed here; allowed: %s",
			       req->method, allow);
		http_add_header(resp, "Allow", allow);
		return;
	}
	resp->route = "(not-found)";
	http_set_error(resp, 404, "not-found", "no such endpoint");
}

size_t router_count(const struct router *r) { return r->n; }
