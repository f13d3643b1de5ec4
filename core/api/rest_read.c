#include "api/rest_int.h"
#include "api/access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ read, history */

/* If-None-Match names version vid (or "*"). */
static bool not_modified(const struct http_request *req, const char *vid)
{
	const char *inm = http_header(req, "If-None-Match");
	if (!inm || !vid)
		return false;
	char want[80];
	snprintf(want, sizeof want, "W/\"%s\"", vid);
	return !strcmp(inm, want) || !strcmp(inm, want + 2) || !strcmp(inm, "*");
}

/* If-Modified-Since (an HTTP date) is at or after lastUpdated, to the second. */
static bool not_modified_since(const struct http_request *req, const char *last_updated)
{
	const char *ims = http_header(req, "If-Modified-Since");
	char lm[64];
	if (!ims || !last_updated || !rest_http_date(last_updated, lm, sizeof lm))
		return false;
	struct tm a = {0}, b = {0};
	const char *fmt = "%a, %d %b %Y %H:%M:%S GMT";
	if (!strptime(ims, fmt, &a) || !strptime(lm, fmt, &b))
		return false;
	/* a date later than the server's clock is invalid: ignored (RFC 9110 13.1.3) */
	if (timegm(&a) > time(NULL))
		return false;
	return timegm(&b) <= timegm(&a);
}

static void read_elements(const struct app *app, struct http_request *req, struct http_response *resp,
			  const char *type, const char *id, const char *vid, enum summary summary, const char *elements);

/* Answers the stored JSON text of type/id as it is: version vid, or the
 * current one (f: NULL, or the read cache's answer when the read waited
 * for it, store_fresh_wait). */
static void answer_text(const struct app *app, struct http_request *req, struct http_response *resp, const char *type,
			const char *id, const char *vid, const struct store_fresh *f)
{
	struct store_error err = {0};
	struct store_text t;
	enum store_status st = f ? store_read_text_after(app->store, f, type, id, &t, &err)
				 : store_read_text(app->store, type, id, vid, &t, &err);
	if (st != STORE_OK) {
		rest_store_answer(req, resp, st, &err);
		return;
	}
	if (egress_withholds_text(app, req, resp, &t.text, t.len))
		return;
	char version[24], etag[64], lm[64];
	snprintf(version, sizeof version, "%lld", (long long)t.version);
	snprintf(etag, sizeof etag, "W/\"%s\"", version);
	if (!vid && (not_modified(req, version) || not_modified_since(req, t.last_updated))) {
		free(t.text);
		http_set_body(resp, 304, NULL, NULL, 0);
	} else {
		http_set_body(resp, 200, "application/fhir+json; charset=utf-8", t.text, t.len);
	}
	rest_add_header(resp, "ETag", etag);
	if (rest_http_date(t.last_updated, lm, sizeof lm))
		rest_add_header(resp, "Last-Modified", lm);
}

/* A read of a current version waiting until the read cache may answer it
 * (a barrier on PostgreSQL: store_fresh_wait) while its request is
 * deferred: no worker thread waits. */
struct cached_read {
	const struct app *app;
	struct http_request *req;
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
	struct store_fresh f;
};

static void cached_read_done(void *ctx)
{
	struct cached_read *cr = ctx;
	http_wake(cr->req);
}

static void cached_read_resume(void *ctx, struct http_request *req, struct http_response *resp)
{
	struct cached_read *cr = ctx;
	answer_text(cr->app, req, resp, cr->type, cr->id, NULL, &cr->f);
	free(cr);
}

/* Defers req until the read cache may answer the read of type/id, then
 * answers it as answer_text. false: nothing deferred (no memory; the
 * caller reads on its thread). */
static bool defer_cached(const struct app *app, struct http_request *req, const char *type, const char *id)
{
	struct cached_read *cr = calloc(1, sizeof *cr);
	if (!cr)
		return false;
	cr->app = app;
	cr->req = req;
	snprintf(cr->type, sizeof cr->type, "%s", type);
	snprintf(cr->id, sizeof cr->id, "%s", id);
	cr->f.done = cached_read_done;
	cr->f.ctx = cr;
	http_defer(req, cached_read_resume, cr);
	if (store_fresh_wait(app->store, &cr->f))
		http_wake(req); /* decided at once */
	return true;
}

static void read_common(const struct app *app, struct http_request *req, struct http_response *resp, const char *vid)
{
	const char *type = req->params[0], *id = req->params[1];
	if (!rest_check_type_id(req, resp, type, id))
		return;
	/* granular scopes or a patient/ scope's compartment: the upstream's
	 * answer cannot be confined here; a stored resource (or version)
	 * outside them reads as not found */
	if (!rest_confine_local(app, req, resp, type, SCOPE_R))
		return;
	if (!rest_confined_stored(app, req, type, id, vid, SCOPE_R)) {
		rest_answer_not_found(req, resp, type, id); /* as for one not stored */
		return;
	}
	if (rest_pass_through(app, req, resp, type))
		return;
	enum summary summary = SUMMARY_FALSE;
	const char *sv = http_query(req, "_summary");
	if (sv && rest_summary_of(sv, &summary) != 0) {
		http_set_error(resp, 400, "invalid", "_summary=%.40s is not one of true, text, data, false on a read", sv);
		return;
	}
	char *elements = http_query(req, "_elements") ? strdup(http_query(req, "_elements")) : NULL;
	if (http_query(req, "_elements") && !elements) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	if (elements) {
		struct outcome oo = OUTCOME_INIT;
		const char *prefer = http_header(req, "Prefer");
		if (!rest_elements_check(type, elements, prefer && strstr(prefer, "handling=lenient"), &oo)) {
			free(elements);
			rest_send_outcome(req, resp, 400, &oo);
			return;
		}
		outcome_release(&oo);
	}
	read_elements(app, req, resp, type, id, vid, summary, elements && *elements ? elements : NULL);
	free(elements);
}

/* read_common once the parameters are checked: elements NULL or the
 * _elements list. */
static void read_elements(const struct app *app, struct http_request *req, struct http_response *resp,
			  const char *type, const char *id, const char *vid, enum summary summary, const char *elements)
{
	if (req->format == FORMAT_JSON && !req->pretty && !elements && summary == SUMMARY_FALSE) {
		/* the common case: the stored JSON text goes out as it is */
		if (!vid && store_cache_waits(app->store) && defer_cached(app, req, type, id))
			return;
		answer_text(app, req, resp, type, id, vid, NULL);
		return;
	}
	struct store_error err = {0};
	cJSON *res = NULL;
	enum store_status st = vid ? store_vread(app->store, type, id, vid, &res, &err)
				   : store_read(app->store, type, id, &res, &err);
	if (st != STORE_OK) {
		rest_store_answer(req, resp, st, &err);
		return;
	}
	if (egress_withholds(app, req, resp, &res))
		return;
	if (!vid && (not_modified(req, rest_meta_str(res, "versionId")) || not_modified_since(req, rest_meta_str(res, "lastUpdated")))) {
		http_set_body(resp, 304, NULL, NULL, 0);
		rest_set_version_headers(resp, res);
		cJSON_Delete(res);
		return;
	}
	if (elements)
		res = rest_elements_only(res, elements);
	else
		res = rest_summary_only(res, summary);
	rest_set_version_headers(resp, res);
	api_fhir_send(req, resp, 200, res);
}

void rest_get_read(void *ctx, struct http_request *req, struct http_response *resp) { read_common(ctx, req, resp, NULL); }

void rest_get_vread(void *ctx, struct http_request *req, struct http_response *resp)
{
	read_common(ctx, req, resp, req->params[2]);
}
