/* access — the scope decisions a handler makes type by type or entry by
 * entry, for the client that sent the request (req->principal, set by
 * app_dispatch after auth_authenticate): the entries of a batch or
 * transaction, the resources an _include or _revinclude adds, the types a
 * chain passes through, what /ingest writes and what /export reads. The
 * rest is decided before routing (auth_authorize).
 *
 * A request without a principal (auth off, the loopback operator, an
 * internal caller with req NULL) may do everything. Threads: pure, per
 * request. */
#ifndef CW_API_ACCESS_H
#define CW_API_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "auth/auth.h"
#include "auth/scope.h"
#include "fhir/outcome.h"
#include "http/http.h"

/* True when req's client may do perms (enum scope_perm bits) on type. */
bool access_may(const struct http_request *req, const char *type, unsigned perms);

/* True when req comes from a client whose scopes are checked (false: auth
 * off, the loopback operator, no request). */
bool access_checked(const struct http_request *req);

/* A refusal as an issue of oo (code forbidden, naming the scope), counted
 * as insufficient_scope in /metrics. */
void access_refuse_issue(struct outcome *oo, const char *where, const char *type, unsigned perms);

/* True when req's client may read (r and s) the type of every resource in
 * bundle's entries; else false with the first type it may not into type (n
 * bytes). What an export or an operation gathered from the store is checked
 * so before it is answered. */
bool access_may_read_all(const struct http_request *req, const cJSON *bundle, char *type, size_t n);

/* The granular scopes (scope_queries) confining req's client on type for
 * perms: 0 when none does (a scope gives perms whole, or no client, or no
 * granular scope: the check before routing refused that); else how many,
 * up to max of their queries into q/qlen. */
size_t access_granular(const struct http_request *req, const char *type, unsigned perms, const char **q, size_t *qlen,
		       size_t max);

/* The Patient whose compartment confines req's client for perms on type
 * (auth_compartment): its id, or NULL when nothing confines it so. */
const char *access_compartment(const struct http_request *req, const char *type, unsigned perms);

/* True when res (a resource of type, as stored or about to be) is within
 * what confines req's client for perms on type: its patient's compartment
 * (access_compartment) and one of its granular scopes' queries
 * (access_granular), matched on res itself (access_query_matches). True when
 * nothing confines the client. */
bool access_holds(const struct http_request *req, const char *type, unsigned perms, const cJSON *res);

/* Whether res (of type) matches a granular scope's query text[0..len)
 * ("category=laboratory&code=http://loinc.org|1234-5"), decided on res
 * alone, without the store: every parameter must match one of its values
 * (comma-separated, percent-decoding applied). Understood: token (code,
 * system|code, |code, system|), reference (Type/id, id), string (starts
 * with, case and accents ignored) and uri (exact) parameters without a
 * modifier; anything else matches nothing, so a scope this cannot decide
 * confines to nothing rather than to everything. Pure. */
bool access_query_matches(const char *type, const cJSON *res, const char *text, size_t len);

/* Answers 403 (OperationOutcome code forbidden, WWW-Authenticate
 * error="insufficient_scope") for a resource written outside what confines
 * the client on type for perms (its patient's compartment, its granular
 * scopes' queries), counted as insufficient_scope. */
void access_refuse_outside(struct http_response *resp, const char *type, unsigned perms);

/* Counts an answer that left out resources because the client may not read
 * their type (reason left_out in /metrics), once per answer. */
void access_left_out(void);

#endif
