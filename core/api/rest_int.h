/* rest_int — what the files of the FHIR REST API share (core/api/rest_*.c
 * and api_rest.c); internal to them and to gather.c, never included
 * elsewhere. The public face is api/api_rest.h.
 *
 *   api_rest.c       shared helpers (ids, base URL, headers, Prefer, hooks,
 *                    outcomes) and the route table with the
 *                    CapabilityStatement detail
 *   rest_upstream.c  pass-through to the upstream server
 *   rest_search.c    search (GET and POST _search), query parsing,
 *                    _summary/_elements, _include/_revinclude, Bundle pages
 *   rest_read.c      read and vread
 *   rest_history.c   history (instance, type, system)
 *   rest_write.c     create, update, patch, delete, conditional forms
 *   rest_bundle.c    batch and transaction
 *   rest_confine.c   confining a client to part of a type (granular
 *                    scopes, a patient/ scope's compartment)
 *
 * Threads: as api_rest.h; nothing here keeps state. */
#ifndef CW_REST_INT_H
#define CW_REST_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "api/api_rest.h"
#include "api/api_fhir.h"
#include "api/egress.h"
#include "api/privacy.h"
#include "base/arena.h"
#include "base/fjson.h"
#include "base/strbuf.h"
#include "fhir/format.h"
#include "base/metrics.h"
#include "fhir/model.h"
#include "plugin/plugin_host.h"
#include "base/json_patch.h"
#include "fhir/search_params.h"
#include "store/store.h"
#include "fhir/validate.h"

enum summary { SUMMARY_FALSE, SUMMARY_TRUE, SUMMARY_TEXT, SUMMARY_DATA };
struct query {
	struct store_search_param params[64];
	size_t n;
	size_t count, offset;
	bool count_given;
	const char *sort;
	bool summary_count;
	enum summary summary; /* _summary=true|text|data */
	bool no_total;        /* _total=none */
	char *elements;
	const char *includes[8];
	bool inc_iterate[8]; /* _include:iterate */
	size_t ninc;
	const char *revincludes[8];
	bool rev_iterate[8];
	size_t nrev;
	char *owned[200]; /* strings split off for modifiers */
	size_t nowned;
	char error[200];
};

bool rest_valid_id(const char *id);

/* The base URL links and Locations use: from Host when it is a plain
 * host[:port], else the configured listen address. */
void rest_base_url(const struct app *app, const struct http_request *req, char *buf, size_t n);

void rest_add_header(struct http_response *resp, const char *name, const char *value);
/* ref without the gateway's own base ("BASE/Type/id" → "Type/id"), or ref
 * itself when it does not start with it. */
const char *rest_local_ref(const char *ref, const char *base);
/* Makes every reference in node (depth: 0) that names the gateway's own
 * base relative, so that it is indexed and matched as the local resource it
 * is. */
void rest_localize_refs(cJSON *node, const char *base, size_t depth);

/* RFC 7231 date from a FHIR instant "YYYY-MM-DDThh:mm:ss(.sss)Z" (UTC, as
 * the store writes it), without the C library's time zone machinery. */
bool rest_http_date(const char *instant, char *out, size_t n);

const char *rest_meta_str(const cJSON *res, const char *key);

const char *rest_str_member(const cJSON *o, const char *key);

void rest_set_version_headers(struct http_response *resp, const cJSON *res);

void rest_store_answer(const struct http_request *req, struct http_response *resp, enum store_status st,
			 const struct store_error *err);

/* Answers a written resource (taken over) per Prefer. */
void rest_send_written(const struct app *app, const struct http_request *req, struct http_response *resp,
			 int status, cJSON *res, bool location);

/* Validates res structurally and against the URL's type. */
bool rest_check_resource(const cJSON *res, const char *type, struct outcome *oo);
/* With validation.on_write "profiles": validates res against the profiles it
 * claims and the one configured for its type (fhir/profile.h). 0 when it
 * conforms (or on_write is structural), else 422 with the issues in oo. */
int rest_check_profiles(const struct app *app, const cJSON *res, struct outcome *oo);

/* Runs the before-store hooks over *res. Returns 0, or the HTTP status to
 * answer with the hooks' issues in oo. */
int rest_run_hooks(const struct app *app, const struct http_request *req, enum cw_hook_point point, cJSON **res,
		     struct outcome *oo);

int rest_before_store(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo);

/* after-response hooks over what came back: the resource, or each entry of a
 * Bundle; the resources of a batch or transaction response are answers in
 * turn (a search's Bundle among them: each of its entries). Returns 0 or the
 * status of a hook that stopped. */
int rest_after_response(const struct app *app, const struct http_request *req, cJSON **tree, struct outcome *oo);

void rest_send_outcome(const struct http_request *req, struct http_response *resp, int status,
			 struct outcome *oo);

bool rest_check_type_id(const struct http_request *req, struct http_response *resp, const char *type,
			  const char *id);

void rest_url_encode(char *out, size_t n, size_t *pos, const char *s);
/* The same encoding, appended to b (no limit but memory: b->oom). */
void rest_url_encode_sb(struct strbuf *b, const char *s);

/* Readies a resource for the upstream: the structural validation, then the
 * before-upstream hooks (which may change or replace *res), then the
 * security labels of a write (privacy_label_write), then the consent the
 * upstream needs as a recipient (403 no-part2-consent without it). Returns
 * 0, or the status to answer with the issues in oo. */
int rest_upstream_ready(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo);

/* One exchange with the upstream waiting for its answer while its request is
 * deferred (http_defer): no worker thread waits. */
struct rest_pending {
	const struct app *app;
	struct http_request *req;
	struct upstream_response ur;
	/* makes the answer from ur; then the pending is freed */
	void (*answer)(struct rest_pending *pd, struct http_request *req, struct http_response *resp);
	void *data; /* the answer's own state, freed by it */
};

/* What a successful pass-through answer must be: an OperationOutcome, or a
 * resource of this type ("": any) with this id ("": any). */
struct rest_expect {
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
};

/* What came back from one exchange with the upstream: a JSON answer parsed,
 * the upstream's internals scrubbed from its OperationOutcomes, its URLs
 * rewritten to the gateway's and the after-response hooks run over it.
 * Returns 0 with *tree the answer (NULL when empty), or the status to answer
 * with issues in oo: 503 when too many calls were in flight, 502 or 504 when
 * the upstream did not answer, 502 when its body is not FHIR JSON, a hook's.
 * The caller releases ur either way. */
int rest_upstream_received(const struct app *app, const struct http_request *req, struct upstream_response *ur,
			   cJSON **tree, struct outcome *oo);

/* Sends body (NULL: none) as content_type to method path and defers the
 * request (http_defer): answer makes its answer from pd->ur once it is in
 * (also when the call could not start: pd->ur says why), then pd is freed;
 * data is answer's to free. Returns false (nothing deferred, data untouched)
 * only when out of memory. No worker thread waits for the upstream. */
bool rest_upstream_defer(const struct app *app, struct http_request *req, const char *method, const char *path,
			 const char *body, size_t blen, const char *content_type,
			 void (*answer)(struct rest_pending *, struct http_request *, struct http_response *), void *data);

/* Defers the request until the upstream answers method path, then answers
 * with the upstream's answer: its status, its body (see
 * rest_upstream_received; of the shape x asks for, else 502) and its ETag,
 * Last-Modified, Location (not one on another host) and Retry-After (at most
 * retry_max_ms). */
void rest_upstream_answer(const struct app *app, struct http_request *req, struct http_response *resp,
			  const char *method, const char *path, const char *body, size_t blen, const char *content_type,
			  const struct rest_expect *x);

/* Types whose every request goes to the upstream as it is. */
bool rest_routed_upstream(const struct app *app, const char *type);

/* Pass-through types go upstream; true when the request was answered. */
bool rest_pass_through(const struct app *app, struct http_request *req, struct http_response *resp,
			 const char *type);

/* Stored writes of this type are recorded for delivery upstream: the route
 * is not local (config_delivers), however they were written. */
bool rest_forwards(const struct app *app, const char *type);

/* 503 with Retry-After when the outbox is over its high-water mark. */
bool rest_outbox_refuses(const struct app *app, struct http_response *resp);

int rest_summary_of(const char *value, enum summary *out);

/* Frees what q owns; a second call does nothing. */
void rest_query_release(struct query *q);

int rest_query_add(void *ctx, const char *name, const char *value);

/* Parses "a=b&c=d" (already in a URL) into q. */
int rest_query_from_string(struct query *q, const char *qs);

/* Granular scopes (system/Observation.rs?category=laboratory): true when
 * req's client may read type/id — no granular scope confines it, or the
 * store's search finds it with _id=id and one of their queries (the one
 * search matcher decides). */
bool rest_granular_match(const struct app *app, const struct http_request *req, const char *type, const char *id);

/* rest_confine.c — the confinement of a client whose scopes reach only part
 * of a type: granular scopes (a query) or a patient/ scope (its patient's
 * compartment), on reads, vreads, history, searches and writes.
 *
 * rest_confined: true when req's client is so confined for perms on type. */
bool rest_confined(const struct http_request *req, const char *type, unsigned perms);

/* false after answering 403 when req's client is confined for perms on a
 * type the upstream serves (its answers cannot be confined here). */
bool rest_confine_local(const struct app *app, const struct http_request *req, struct http_response *resp,
			const char *type, unsigned perms);

/* True when the stored type/id (version vid, NULL: the current one) is
 * within what confines req's client for perms (access_holds; for a read of
 * the current version the granular queries are decided by the store's
 * search, rest_granular_match), or nothing confines it. False when it is
 * outside, or not stored: the caller answers as for one not stored. */
bool rest_confined_stored(const struct app *app, const struct http_request *req, const char *type, const char *id,
			  const char *vid, unsigned perms);

/* Whether a write of type/id (id NULL: a create) sending res stays within
 * what confines req's client (granular scopes, a patient/ scope's
 * compartment): 0 when it does or nothing confines the client; 403 when res
 * is outside; 404 when the stored version it replaces is outside (answered
 * as if not stored). Nothing is answered here. */
int rest_write_reach(const struct app *app, const struct http_request *req, const char *type, const char *id,
		     const cJSON *res);

/* Answers 404 as for type/id not stored (what is outside a client's reach
 * is not disclosed). */
void rest_answer_not_found(const struct http_request *req, struct http_response *resp, const char *type,
			   const char *id);

/* A search of type confined to the compartment of req's client's patient:
 * q gets the compartment's first parameter (Patient: _id) with
 * Patient/pid, unless one of its parameters already names exactly
 * Patient/pid. false when it cannot be confined (the search is refused). */
bool rest_compartment_confine(const struct http_request *req, const char *type, struct query *q);

/* True when criteria qs ("a=b&c=d", NULL: none) reach types other than the
 * one searched (_include, _revinclude, a chain, _has), or cannot be parsed. */
bool rest_criteria_reach_other_types(const char *qs);

/* _summary: true keeps the elements the specification marks as summary,
 * text keeps text, id, meta and the mandatory elements, data drops text
 * (all at the top level of the resource). false leaves res whole. */
cJSON *rest_summary_only(cJSON *res, enum summary mode);

cJSON *rest_elements_only(cJSON *res, const char *elements);
/* _elements names of type that are no elements of it: refused (false, the
 * first named in oo) or, when lenient, removed from the list in place with
 * a note in oo each. */
bool rest_elements_check(const char *type, char *elements, bool lenient, struct outcome *oo);

cJSON *rest_bundle_new(const char *type);

void rest_add_link(cJSON *links, const char *rel, const char *url);

bool rest_bundle_has(const cJSON *entries, const char *type, const char *id);

void rest_add_entry(cJSON *entries, const char *base, cJSON *res, const char *mode);

void rest_get_search(void *ctx, struct http_request *req, struct http_response *resp);

void rest_post_search(void *ctx, struct http_request *req, struct http_response *resp);

void rest_get_read(void *ctx, struct http_request *req, struct http_response *resp);

void rest_get_vread(void *ctx, struct http_request *req, struct http_response *resp);

void rest_get_history_instance(void *ctx, struct http_request *req, struct http_response *resp);

void rest_get_history_type(void *ctx, struct http_request *req, struct http_response *resp);

void rest_get_history_system(void *ctx, struct http_request *req, struct http_response *resp);

/* Commits the caller's transaction when st is OK (else rolls back) and wakes
 * the delivery worker. Returns the final status. */
enum store_status rest_finish_txn(const struct app *app, enum store_status st, struct store_error *err);

/* The same for criteria given as a query string (If-None-Exist,
 * request.ifNoneExist). */
long rest_conditional_match(const struct app *app, const char *type, const char *qs, char id[STORE_ID_SIZE],
			      struct outcome *oo, int *status);

void rest_post_create(void *ctx, struct http_request *req, struct http_response *resp);

void rest_put_update(void *ctx, struct http_request *req, struct http_response *resp);

/* PATCH /fhir/Type/id with a JSON Patch (RFC 6902). The patch applies to
 * the current version and the result is stored as the next one, checked as
 * any update. Without If-Match a concurrent write between reading and
 * writing makes the patch apply again to the newer version (a few times);
 * with If-Match a different current version is 412. */
void rest_patch_resource(void *ctx, struct http_request *req, struct http_response *resp);

void rest_delete_resource(void *ctx, struct http_request *req, struct http_response *resp);

void rest_post_bundle(void *ctx, struct http_request *req, struct http_response *resp);

#endif
