#include "api/rest_int.h"
#include "api/access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ writes */

/* Records a written resource (its id and version) in the outbox. */
static enum store_status enqueue(const struct app *app, const cJSON *written, bool deleted, struct store_error *err)
{
	const char *type = rest_str_member(written, "resourceType"), *id = rest_str_member(written, "id");
	const char *vid = rest_meta_str(written, "versionId");
	long long v = vid ? strtoll(vid, NULL, 10) : 0;
	if (!type || !id || v < 1)
		return store_fail(err, STORE_IO, "the written resource has no id or version");
	return store_outbox_add(app->store, type, id, v, deleted, err);
}

/* Commits the caller's transaction when st is OK (else rolls back) and wakes
 * the delivery worker. Returns the final status. */
enum store_status rest_finish_txn(const struct app *app, enum store_status st, struct store_error *err)
{
	struct store_error e2;
	if (st != STORE_OK) {
		store_rollback(app->store, &e2);
		return st;
	}
	st = store_commit(app->store, err);
	if (st == STORE_OK)
		outbox_kick(app->outbox);
	else
		store_rollback(app->store, &e2);
	return st;
}

/* Searches type with a query string; returns the match count (0, 1, 2 = many)
 * and the id of a single match. -1 with an answer on a bad query. */
/* How many resources of type match parsed criteria q (released here), and
 * the id of a single match; -1 with an issue in oo and *status the HTTP
 * status when the search fails. */
static long conditional_search(const struct app *app, const char *type, struct query *q, char id[STORE_ID_SIZE],
			       struct outcome *oo, int *status)
{
	struct store_search sq = {.params = q->params, .n_params = q->n, .count = 2};
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_search(app->store, type, &sq, &page, &err);
	rest_query_release(q);
	if (st != STORE_OK) {
		store_page_release(&page); /* a page may be partly filled */
		outcome_add(oo, OUTCOME_ERROR, st == STORE_INVALID ? "invalid" : "exception", NULL, "%s", err.message);
		*status = store_status_http(st);
		return -1;
	}
	long n = (long)page.total;
	if (n == 1 && page.n == 1)
		snprintf(id, STORE_ID_SIZE, "%s", page.items[0].id);
	store_page_release(&page);
	return n;
}

/* How many resources of type match the criteria of req's query (req set)
 * or of the query string qs, and the id of a single match; -1 with issues
 * in oo and *status set when there are none or they are refused (an empty
 * outcome with 400: no criteria at all). */
static long criteria_match(const struct app *app, const char *type, const struct http_request *req, const char *qs,
			   char id[STORE_ID_SIZE], struct outcome *oo, int *status)
{
	struct query q;
	memset(&q, 0, sizeof q);
	int rc = req ? http_query_each(req, rest_query_add, &q) : rest_query_from_string(&q, qs);
	if (rc != 0 || q.n == 0) {
		if (!req)
			outcome_add(oo, OUTCOME_ERROR, "invalid", NULL, "conditional criteria '%.100s': %s", qs,
				    q.error[0] ? q.error : "no search parameter");
		else if (q.error[0])
			outcome_add(oo, OUTCOME_ERROR, "invalid", NULL, "conditional criteria: %s", q.error);
		rest_query_release(&q);
		*status = 400;
		return -1;
	}
	return conditional_search(app, type, &q, id, oo, status);
}

/* Conditional update, patch and delete: the request's query is the
 * criteria. The number of matches (the one match's id in id), or -1 when
 * it was answered already (no criteria: 400; bad criteria: their status). */
static long request_matches(const struct app *app, const struct http_request *req, struct http_response *resp,
			    const char *type, const char *what, char id[STORE_ID_SIZE])
{
	struct outcome oo = OUTCOME_INIT;
	int cst = 400;
	long total = criteria_match(app, type, req, NULL, id, &oo, &cst);
	if (total < 0) {
		if (cst == 400 && !outcome_errors(&oo))
			outcome_add(&oo, OUTCOME_ERROR, "invalid", NULL, "a conditional %s needs search criteria", what);
		rest_send_outcome(req, resp, cst, &oo);
	}
	outcome_release(&oo);
	return total;
}

/* The same for criteria given as a query string (If-None-Exist,
 * request.ifNoneExist). */
long rest_conditional_match(const struct app *app, const char *type, const char *qs, char id[STORE_ID_SIZE],
			      struct outcome *oo, int *status)
{
	return criteria_match(app, type, NULL, qs, id, oo, status);
}

/* A conditional write's criteria and what they matched when the write was
 * decided. The write checks them again inside its own store transaction,
 * which holds the store's write lock from its start (store_begin), and
 * writes only when they still match the same (no resource, or the same
 * one): the decision and the write are one atomic step, so parallel
 * conditional writes make one resource, not one each (store.h, "Conditional
 * writes"). */
struct cond {
	const char *type;
	const struct http_request *req; /* criteria: the request's query, or */
	const char *qs;                 /* a query string (If-None-Exist) */
	long n;                         /* matches when decided: 0 or 1 */
	char id[STORE_ID_SIZE];         /* the single match's id */
	bool changed;                   /* set by the write: they match otherwise now */
};

/* Inside the write's transaction: 1 when c still matches what it matched,
 * 0 when not, -1 with issues in oo and *status when the search fails. */
static int cond_holds(const struct app *app, const struct cond *c, struct outcome *oo, int *status)
{
	char id[STORE_ID_SIZE] = "";
	long n = criteria_match(app, c->type, c->req, c->qs, id, oo, status);
	if (n < 0)
		return -1;
	return n == c->n && (n == 0 || !strcmp(id, c->id));
}

static cJSON *read_body(const struct app *app, const struct http_request *req, struct http_response *resp,
			const char *type)
{
	cJSON *res = api_fhir_read_body(app, req, resp);
	if (!res)
		return NULL;
	struct outcome oo = OUTCOME_INIT;
	int st = rest_check_resource(res, type, &oo) ? rest_check_profiles(app, res, &oo) : 400;
	if (st) {
		cJSON_Delete(res);
		rest_send_outcome(req, resp, st, &oo);
		return NULL;
	}
	outcome_release(&oo);
	return res;
}

static enum store_status write_resource(const struct app *app, struct http_request *req, struct http_response *resp,
					const char *type, const char *id, cJSON *res, const char *if_match,
					unsigned how, struct cond *cond);

/* write_resource's how: a version mismatch is returned unanswered (the
 * caller retries); or the write may be queued (the request deferred until
 * its commit: the handler answers nothing after it) */
#define WRITE_QUIET_MISMATCH 1u
#define WRITE_MAY_QUEUE 2u

/* How often a conditional write decides again when its criteria came to
 * match otherwise before it could write (another writer won the race). */
#define COND_ATTEMPTS 5

void rest_post_create(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!rest_check_type_id(req, resp, type, NULL) || !rest_confine_local(app, req, resp, type, SCOPE_C) ||
	    rest_pass_through(app, req, resp, type))
		return;
	bool fwd = rest_forwards(app, type);
	if (fwd && rest_outbox_refuses(app, resp))
		return;
	cJSON *res = read_body(app, req, resp, type);
	if (!res)
		return;
	const char *ine = http_header(req, "If-None-Exist");
	if (!ine) {
		write_resource(app, req, resp, type, NULL, res, NULL, WRITE_MAY_QUEUE, NULL);
		return;
	}
	/* conditional create: decided on a search, written only when the
	 * search still finds nothing inside the write's transaction */
	for (int attempt = 0; attempt < COND_ATTEMPTS && !resp->status; attempt++) {
		struct outcome oo = OUTCOME_INIT;
		struct cond c = {.type = type, .qs = ine};
		int cst = 400;
		c.n = rest_conditional_match(app, type, ine, c.id, &oo, &cst);
		if (c.n < 0) {
			rest_send_outcome(req, resp, cst, &oo);
			break;
		}
		if (c.n > 1) {
			outcome_add(&oo, OUTCOME_ERROR, "duplicate", NULL, "If-None-Exist matches more than one resource");
			rest_send_outcome(req, resp, 412, &oo);
			break;
		}
		outcome_release(&oo);
		if (c.n == 1) {
			cJSON *found = NULL;
			struct store_error err = {0};
			enum store_status st = store_read(app->store, type, c.id, &found, &err);
			if (st == STORE_OK)
				rest_send_written(app, req, resp, 200, found, false);
			else if (st != STORE_GONE && st != STORE_NOT_FOUND)
				rest_store_answer(req, resp, st, &err);
			continue; /* deleted meanwhile: decide again */
		}
		cJSON *copy = cJSON_Duplicate(res, 1);
		if (!copy) {
			http_set_error(resp, 500, "exception", "out of memory");
			break;
		}
		write_resource(app, req, resp, type, NULL, copy, NULL, 0, &c);
	}
	if (!resp->status)
		http_set_error(resp, 409, "conflict",
			       "what If-None-Exist matches kept changing while the resource was created; try again");
	cJSON_Delete(res);
}

void rest_put_update(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	const char *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!rest_check_type_id(req, resp, type, id) || !rest_confine_local(app, req, resp, type, SCOPE_U) ||
	    rest_pass_through(app, req, resp, type))
		return;
	bool fwd = rest_forwards(app, type);
	if (fwd && rest_outbox_refuses(app, resp))
		return;
	cJSON *res = read_body(app, req, resp, type);
	if (!res)
		return;
	if (id) {
		const char *bid = rest_str_member(res, "id");
		if (!bid || strcmp(bid, id) != 0) {
			cJSON_Delete(res);
			http_set_error(resp, 400, "invalid", "the resource id must be present and equal '%s' (the URL's)", id);
			return;
		}
		write_resource(app, req, resp, type, id, res, http_header(req, "If-Match"), WRITE_MAY_QUEUE, NULL);
		return;
	}
	/* conditional update, PUT /fhir/Type?criteria: decided on a search,
	 * written only when the search still matches the same inside the
	 * write's transaction */
	const char *bid = rest_str_member(res, "id");
	for (int attempt = 0; attempt < COND_ATTEMPTS && !resp->status; attempt++) {
		struct cond c = {.type = type, .req = req};
		c.n = request_matches(app, req, resp, type, "update", c.id);
		if (c.n < 0)
			break;
		if (c.n > 1) {
			http_set_error(resp, 412, "duplicate", "the criteria match %ld resources", c.n);
			break;
		}
		if (c.n == 1 && bid && strcmp(bid, c.id) != 0) {
			http_set_error(resp, 400, "invalid", "the resource id '%.64s' is not the matched '%s'", bid, c.id);
			break;
		}
		char found[STORE_ID_SIZE];
		if (c.n == 1)
			snprintf(found, sizeof found, "%s", c.id);
		else if (bid && rest_valid_id(bid))
			snprintf(found, sizeof found, "%s", bid);
		else if (store_new_id(found) != 0) {
			http_set_error(resp, 500, "exception", "no id");
			break;
		}
		cJSON *copy = cJSON_Duplicate(res, 1);
		if (!copy) {
			http_set_error(resp, 500, "exception", "out of memory");
			break;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "id");
		cJSON_AddStringToObject(copy, "id", found);
		write_resource(app, req, resp, type, found, copy, http_header(req, "If-Match"), 0, &c);
	}
	if (!resp->status)
		http_set_error(resp, 409, "conflict", "what the criteria match kept changing during the update; try again");
	cJSON_Delete(res);
}

/* A write queued in the store's commit queue (store_submit) while its
 * request is deferred: no worker thread waits for the commit. */
struct queued_write {
	const struct app *app;
	struct http_request *req;
	struct store_write w;
};

static void queued_done(void *ctx)
{
	struct queued_write *q = ctx;
	http_wake(q->req);
}

static void queued_resume(void *ctx, struct http_request *req, struct http_response *resp)
{
	struct queued_write *q = ctx;
	if (q->w.status == STORE_OK) {
		bool created = q->w.kind == STORE_WRITE_CREATE || q->w.created;
		rest_send_written(q->app, req, resp, created ? 201 : 200, q->w.stored, created);
		q->w.stored = NULL;
	} else {
		rest_store_answer(req, resp, q->w.status, &q->w.err);
	}
	store_write_release(&q->w);
	free(q);
}

/* Queues res (consumed) as a create (id NULL) or an update of type/id and
 * defers req until its commit ends; answered then as write_resource
 * answers. STORE_OK when queued; anything else has been answered. */
static enum store_status queue_write(const struct app *app, struct http_request *req, struct http_response *resp,
				     const char *type, const char *id, cJSON *res, const char *if_match)
{
	struct queued_write *q = calloc(1, sizeof *q);
	if (!q) {
		cJSON_Delete(res);
		http_set_error(resp, 500, "exception", "out of memory");
		return STORE_NO_MEMORY;
	}
	q->app = app;
	q->req = req;
	q->w.kind = id ? STORE_WRITE_UPDATE : STORE_WRITE_CREATE;
	snprintf(q->w.type, sizeof q->w.type, "%s", type);
	snprintf(q->w.id, sizeof q->w.id, "%s", id ? id : "");
	q->w.resource = res;
	q->w.done = queued_done;
	q->w.ctx = q;
	http_defer(req, queued_resume, q);
	if (store_submit(app->store, &q->w, if_match) != STORE_OK)
		http_wake(req); /* refused: answered at once from q->w */
	return STORE_OK;
}

/* Stores res (consumed) — through the before-store hooks, with its outbox
 * record when the type is forwarded — as a new resource (id NULL: a new
 * id; answered 201 with Location) or as the new version of type/id, and
 * answers. if_match: the expected current version, or NULL. how: see
 * WRITE_QUIET_MISMATCH and WRITE_MAY_QUEUE. cond (NULL for an unconditional write): the criteria the
 * write was decided on, checked again in its transaction; when they match
 * otherwise now nothing is written or answered, cond->changed is set and
 * STORE_CONFLICT returned (the caller decides again). Every other outcome
 * is answered. */
/* A client confined to part of type (granular scopes, a patient/ scope's
 * compartment) writes only within it: what it sends (else 403) and, for an
 * update, the version it replaces (else 404, as if not stored). false after
 * answering. */
static bool write_within(const struct app *app, const struct http_request *req, struct http_response *resp,
			 const char *type, const char *id, const cJSON *res)
{
	int st = rest_write_reach(app, req, type, id, res);
	if (st == 403)
		access_refuse_outside(resp, type, id ? SCOPE_U : SCOPE_C);
	else if (st)
		rest_answer_not_found(req, resp, type, id);
	return !st;
}

static enum store_status write_resource(const struct app *app, struct http_request *req, struct http_response *resp,
					const char *type, const char *id, cJSON *res, const char *if_match,
					unsigned how, struct cond *cond)
{
	struct outcome oo = OUTCOME_INIT;
	char base[256];
	rest_base_url(app, req, base, sizeof base);
	rest_localize_refs(res, base, 0);
	if (!write_within(app, req, resp, type, id, res)) {
		cJSON_Delete(res);
		return STORE_INVALID;
	}
	int hs = rest_before_store(app, req, &res, &oo);
	if (hs) {
		cJSON_Delete(res);
		rest_send_outcome(req, resp, hs, &oo);
		return STORE_INVALID;
	}
	struct privacy_writer writer;
	privacy_writer_of(app, req, &writer);
	if (!id) /* a create: the id is the store's, and no earlier version passes labels on */
		cJSON_DeleteItemFromObjectCaseSensitive(res, "id");
	if (privacy_label_write(app, &writer, res, NULL, 0) != 0) {
		cJSON_Delete(res);
		outcome_release(&oo);
		http_set_error(resp, 500, "exception", "out of memory");
		return STORE_INVALID;
	}
	bool fwd = rest_forwards(app, type);
	bool passes = privacy_passes_on(app, type); /* may label what it references: one transaction */
	if (!fwd && !cond && !passes && (how & WRITE_MAY_QUEUE)) {
		/* a single write on its own: committed with others in the store's
		 * next group while the request waits without a worker thread */
		outcome_release(&oo);
		return queue_write(app, req, resp, type, id, res, if_match);
	}
	bool created = !id;
	cJSON *out = NULL;
	struct store_error err = {0};
	enum store_status st = fwd || cond || passes ? store_begin(app->store, &err) : STORE_OK;
	int holds = 1, cst = 500;
	if (st == STORE_OK && cond) {
		holds = cond_holds(app, cond, &oo, &cst);
		if (holds != 1)
			st = STORE_CONFLICT;
	}
	if (st == STORE_OK && id)
		st = store_update(app->store, type, id, res, if_match, &created, &out, &err);
	else if (st == STORE_OK)
		st = store_create(app->store, type, res, NULL, &out, &err);
	if (st == STORE_OK && fwd)
		st = enqueue(app, out, false, &err);
	if (st == STORE_OK && passes)
		st = privacy_pass_on(app, out, NULL, 0, &err);
	if (fwd || cond || passes)
		st = rest_finish_txn(app, st, &err);
	cJSON_Delete(res);
	if (holds < 0) {
		rest_send_outcome(req, resp, cst, &oo);
		return STORE_INVALID;
	}
	outcome_release(&oo);
	if (!holds) {
		cond->changed = true;
		return STORE_CONFLICT;
	}
	if (st != STORE_OK) {
		cJSON_Delete(out);
		if (!((how & WRITE_QUIET_MISMATCH) && st == STORE_VERSION_MISMATCH))
			rest_store_answer(req, resp, st, &err);
		return st;
	}
	rest_send_written(app, req, resp, created ? 201 : 200, out, created);
	return STORE_OK;
}

/* How often a patch without If-Match applies again when the resource was
 * written between its read and its commit (the commit queue's group may
 * hold another write of it). Each retry pauses a random while that grows
 * with the attempt (at most PATCH_MAX_PAUSE_MS), so patches racing for one
 * resource on a loaded machine spread out instead of meeting in every
 * commit group; the last answer is 409. */
#define PATCH_ATTEMPTS 30
#define PATCH_MAX_PAUSE_MS 20

/* PATCH /fhir/Type/id with a JSON Patch (RFC 6902). The patch applies to
 * the current version and the result is stored as the next one, checked as
 * any update. Without If-Match a concurrent write between reading and
 * writing makes the patch apply again to the newer version (a few times);
 * with If-Match a different current version is 412. */
void rest_patch_resource(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0], *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!rest_check_type_id(req, resp, type, id) || !rest_confine_local(app, req, resp, type, SCOPE_U) ||
	    rest_pass_through(app, req, resp, type))
		return;
	char found[STORE_ID_SIZE] = "";
	if (!id) {
		/* conditional patch, PATCH /fhir/Type?criteria: exactly one match */
		long total = request_matches(app, req, resp, type, "patch", found);
		if (total < 0)
			return;
		if (total != 1) {
			http_set_error(resp, total ? 412 : 404, total ? "multiple-matches" : "not-found",
				       "the criteria match %ld resources; a conditional patch needs exactly one", total);
			return;
		}
		id = found;
	}
	const char *ct = http_header(req, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json-patch+json", 27) != 0 ||
	    (ct[27] && ct[27] != ';' && ct[27] != ' ')) {
		http_set_error(resp, 415, "not-supported",
			       "PATCH takes a JSON Patch (Content-Type application/json-patch+json), not '%.80s'",
			       ct ? ct : "(none)");
		return;
	}
	if (rest_forwards(app, type) && rest_outbox_refuses(app, resp))
		return;
	struct fjson_limits lim;
	config_json_limits(app->cfg, &lim);
	struct fjson_error fe;
	cJSON *patch = req->body_len ? fjson_parse(req->body, req->body_len, &lim, &fe) : NULL;
	if (!patch) {
		http_set_error(resp, req->body_len ? fe.status : 400, req->body_len ? "structure" : "required", "%s",
			       req->body_len ? fe.message : "the request has no body");
		return;
	}
	const char *if_match = http_header(req, "If-Match");
	for (int attempt = 0; attempt < PATCH_ATTEMPTS; attempt++) {
		cJSON *res = NULL;
		struct store_error err = {0};
		enum store_status st = store_read(app->store, type, id, &res, &err);
		if (st != STORE_OK) {
			rest_store_answer(req, resp, st, &err);
			break;
		}
		if (!access_holds(req, type, SCOPE_U, res)) {
			/* outside what confines the client: as if not stored */
			cJSON_Delete(res);
			rest_answer_not_found(req, resp, type, id);
			break;
		}
		char version[40];
		snprintf(version, sizeof version, "%s", rest_meta_str(res, "versionId") ? rest_meta_str(res, "versionId") : "");
		char msg[256];
		enum json_patch_status ps = json_patch_apply(res, patch, msg, sizeof msg);
		if (ps != JSON_PATCH_OK) {
			cJSON_Delete(res);
			http_set_error(resp, ps == JSON_PATCH_MALFORMED ? 400 : ps == JSON_PATCH_FAILED ? 422 : 500,
				       ps == JSON_PATCH_FAILED ? "processing" : ps == JSON_PATCH_MALFORMED ? "invalid" : "exception",
				       "the patch cannot be applied: %s", msg);
			break;
		}
		struct outcome oo = OUTCOME_INIT;
		const char *rid = rest_str_member(res, "id");
		if (!rid || strcmp(rid, id) != 0) {
			outcome_add(&oo, OUTCOME_ERROR, "processing", "id", "a patch cannot change or remove the id");
		} else if (!rest_check_resource(res, type, &oo) || rest_check_profiles(app, res, &oo)) {
			/* the patch was well formed; the resource it makes is not valid */
		} else {
			outcome_release(&oo);
			st = write_resource(app, req, resp, type, id, res, if_match ? if_match : version,
					    if_match ? 0 : WRITE_QUIET_MISMATCH, NULL);
			if (st == STORE_VERSION_MISMATCH && !if_match) {
				/* written meanwhile: apply to the newer version, after a
				 * short random pause so that patches racing for one
				 * resource do not meet in every commit group again */
				struct timespec now;
				clock_gettime(CLOCK_MONOTONIC, &now);
				long cap_us = 1000L << (attempt < 5 ? attempt : 5); /* 1, 2, 4 … 32 ms */
				if (cap_us > PATCH_MAX_PAUSE_MS * 1000L)
					cap_us = PATCH_MAX_PAUSE_MS * 1000L;
				long us = (now.tv_nsec / 1000) % cap_us;
				struct timespec pause = {0, us * 1000L};
				nanosleep(&pause, NULL);
				continue;
			}
			break;
		}
		cJSON_Delete(res);
		rest_send_outcome(req, resp, 422, &oo);
		break;
	}
	if (!resp->status)
		http_set_error(resp, 409, "conflict", "the resource kept changing while the patch was applied; try again");
	cJSON_Delete(patch);
}

void rest_delete_resource(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0], *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!rest_check_type_id(req, resp, type, id) || !rest_confine_local(app, req, resp, type, SCOPE_D) ||
	    rest_pass_through(app, req, resp, type))
		return;
	if (id && !rest_confined_stored(app, req, type, id, NULL, SCOPE_D)) {
		rest_answer_not_found(req, resp, type, id); /* outside what confines the client */
		return;
	}
	bool fwd = rest_forwards(app, type);
	if (fwd && rest_outbox_refuses(app, resp))
		return;
	char found[STORE_ID_SIZE] = "";
	if (!id) {
		/* conditional delete, DELETE /fhir/Type?criteria: one match is
		 * deleted; none is not an error; several are 412 (one at a time) */
		long total = request_matches(app, req, resp, type, "delete", found);
		if (total < 0)
			return;
		if (total > 1) {
			http_set_error(resp, 412, "multiple-matches", "the criteria match %ld resources; delete them one by one",
				       total);
			return;
		}
		if (total == 0) {
			struct outcome oo = OUTCOME_INIT;
			outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "nothing matched: nothing was deleted");
			rest_send_outcome(req, resp, 200, &oo);
			return;
		}
		id = found;
	}
	int64_t version = 0;
	struct store_error err = {0};
	enum store_status st = fwd ? store_begin(app->store, &err) : STORE_OK;
	if (st == STORE_OK)
		st = store_delete(app->store, type, id, &version, &err);
	bool gone = st == STORE_GONE;
	if (gone)
		st = STORE_OK; /* deleting twice is not an error */
	if (st == STORE_OK && fwd && !gone)
		st = store_outbox_add(app->store, type, id, version, true, &err);
	if (fwd)
		st = rest_finish_txn(app, st, &err);
	if (st != STORE_OK) {
		rest_store_answer(req, resp, st, &err);
		return;
	}
	if (version > 0) {
		char etag[64];
		snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)version);
		rest_add_header(resp, "ETag", etag);
	}
	struct outcome oo = OUTCOME_INIT;
	outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "%s/%s deleted", type, id);
	rest_send_outcome(req, resp, 200, &oo);
}
