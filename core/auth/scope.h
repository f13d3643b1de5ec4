/* scope — SMART scopes (App Launch 1.0 and 2.x): parse one, and decide
 * whether one granted scope covers one asked for.
 *
 * Grammar: (patient|user|system)/(Type|*).(read|write|*|[c][r][u][d][s])[?query]
 * (v2 letters a non-empty in-order subset of "cruds"; v1 read = rs,
 * write = cud, * = cruds). Other scopes (system/crosswalk.admin, openid, ...)
 * are opaque names and only match themselves. Pure functions. */
#ifndef CW_AUTH_SCOPE_H
#define CW_AUTH_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

enum scope_perm { SCOPE_C = 1, SCOPE_R = 2, SCOPE_U = 4, SCOPE_D = 8, SCOPE_S = 16 };

struct scope {
	char context[8];   /* "patient", "user" or "system" */
	char type[72];     /* resource type or "*" */
	unsigned perms;    /* enum scope_perm bits */
	const char *query; /* after '?', into the text, or NULL */
	size_t query_len;
};

/* Parses text[0..len); false when it is no resource scope. */
bool scope_parse(const char *text, size_t len, struct scope *out);

/* True when granted covers asked: the same text, or both resource scopes
 * of one context, granted's type "*" or the same, asked's permissions
 * within granted's, and granted without a query or with the same one. */
bool scope_covers(const char *granted, size_t glen, const char *asked, size_t alen);

/* True when some scope of granted (space-separated) of the system/ or
 * user/ context, without a query, gives perms on type ("*": a scope on
 * every type is needed). patient/ scopes grant nothing (their compartment
 * is not applied yet, so they are refused rather than widened); granular
 * scopes (with a query) grant nothing here: see scope_queries. */
bool scope_allows(const char *granted, const char *type, unsigned perms);

/* The granular scopes of granted (system/ or user/ context, with a query)
 * that give perms on type ("Observation.rs?category=laboratory"): up to max
 * of their queries into q/qlen (pointing into granted). Returns how many
 * there are (also beyond max). Pure. */
size_t scope_queries(const char *granted, const char *type, unsigned perms, const char **q, size_t *qlen, size_t max);

/* Writes into out (cap bytes) the scopes of asked (space-separated; every
 * scope of allowed when asked is empty) that some scope of allowed covers.
 * Returns the number written, or -1 when out is too small. */
long scope_intersect(const char *allowed, const char *asked, char *out, size_t cap);

#endif
