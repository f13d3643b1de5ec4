#include "api/rest_int.h"
#include "api/access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A page of a history: base[/Type[/id]]/_history?… */
/* A page of a history: base[/Type[/id]]/_history?… — from the cursor (a
 * version's seq: the versions before it) when cursor > 0, else from offset. */
static void history_link(char *buf, size_t n, const char *base, const char *type, const char *id,
			 const char *since, size_t count, size_t offset, int64_t cursor)
{
	size_t pos = (size_t)snprintf(buf, n, "%s%s%s%s%s/_history?", base, type ? "/" : "", type ? type : "",
				      id ? "/" : "", id ? id : "");
	if (since[0] && pos + 8 < n) {
		pos += (size_t)snprintf(buf + pos, n - pos, "_since=");
		rest_url_encode(buf, n, &pos, since);
		if (pos + 1 < n) {
			buf[pos++] = '&';
			buf[pos] = '\0';
		}
	}
	if (pos < n && cursor > 0)
		snprintf(buf + pos, n - pos, "_count=%zu&_cursor=%lld", count, (long long)cursor);
	else if (pos < n)
		snprintf(buf + pos, n - pos, "_count=%zu&_offset=%zu", count, offset);
}

static void history_common(const struct app *app, struct http_request *req, struct http_response *resp,
			   const char *type, const char *id)
{
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, rest_query_add, &q) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error);
		rest_query_release(&q);
		return;
	}
	/* _since (an instant, or any date/dateTime: its start) is the only
	 * filter history takes; anything else is refused rather than ignored */
	int64_t since = STORE_ALL_TIME, cursor = 0;
	for (size_t i = 0; i < q.n; i++) {
		const struct store_search_param *p = &q.params[i];
		int64_t lo, hi;
		if (strcmp(p->name, "_since") == 0 && !p->modifier && search_params_date_range(p->value, &lo, &hi)) {
			since = lo;
			continue;
		}
		if (strcmp(p->name, "_cursor") == 0 && !p->modifier) {
			/* the next pages: the versions written before the one numbered cursor */
			char *end;
			long long v = strtoll(p->value, &end, 10);
			if (p->value[0] >= '1' && p->value[0] <= '9' && !*end && v > 0 && v < INT64_MAX) {
				cursor = v;
				continue;
			}
			http_set_error(resp, 400, "invalid", "_cursor takes the number from a next link");
			rest_query_release(&q);
			return;
		}
		http_set_error(resp, 400, strcmp(p->name, "_since") == 0 ? "invalid" : "not-supported",
			       strcmp(p->name, "_since") == 0 ? "_since takes an instant, such as 2024-05-01T09:30:00Z"
							    : "history takes _count, _offset, _cursor and _since, not '%.64s'",
			       p->name);
		rest_query_release(&q);
		return;
	}
	if (q.sort || q.summary_count || q.summary != SUMMARY_FALSE || q.no_total || q.elements || q.ninc || q.nrev) {
		http_set_error(resp, 400, "not-supported", "history takes _count, _offset and _since");
		rest_query_release(&q);
		return;
	}
	size_t count = q.count_given ? q.count : 20, offset = q.offset;
	rest_query_release(&q);
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_history(app->store, type, id, since, count, offset, cursor, &page, &err);
	if (st != STORE_OK) {
		store_page_release(&page); /* a page may be partly filled */
		rest_store_answer(req, resp, st, &err);
		return;
	}
	char base[256];
	rest_base_url(app, req, base, sizeof base);
	cJSON *b = rest_bundle_new("history");
	if (!b) {
		store_page_release(&page);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	cJSON_AddNumberToObject(b, "total", (double)page.total);
	char since_text[STORE_TIME_SIZE] = "", page_url[1024];
	if (since != STORE_ALL_TIME)
		store_time_text(since, since_text);
	cJSON *links = cJSON_AddArrayToObject(b, "link");
	history_link(page_url, sizeof page_url, base, type, id, since_text, count, offset, cursor);
	rest_add_link(links, "self", page_url);
	/* the next page continues before this page's oldest version: writes
	 * made meanwhile do not shift it */
	if (page.more && page.n) {
		history_link(page_url, sizeof page_url, base, type, id, since_text, count, 0, page.items[page.n - 1].seq);
		rest_add_link(links, "next", page_url);
	}
	if (offset > 0 && !cursor) {
		history_link(page_url, sizeof page_url, base, type, id, since_text, count,
			     offset > count ? offset - count : 0, 0);
		rest_add_link(links, "previous", page_url);
	}
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	/* a client confined to part of the type (granular scopes, a patient/
	 * scope's compartment) sees the versions within it; what is left out
	 * is not said, nor how many there are */
	bool confined = id && rest_confined(req, type, SCOPE_R);
	for (size_t i = 0; i < page.n; i++) {
		struct store_entry *it = &page.items[i];
		if (confined && it->resource && !access_holds(req, type, SCOPE_R, it->resource)) {
			cJSON_DeleteItemFromObjectCaseSensitive(b, "total");
			continue;
		}
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		char url[512];
		snprintf(url, sizeof url, "%s/%s/%s", base, it->type, it->id);
		cJSON_AddStringToObject(e, "fullUrl", url);
		if (it->resource) {
			cJSON_AddItemToObject(e, "resource", it->resource);
			it->resource = NULL;
		}
		cJSON *rq = cJSON_AddObjectToObject(e, "request");
		cJSON *rs = cJSON_AddObjectToObject(e, "response");
		const char *method = it->deleted ? "DELETE" : it->op == STORE_OP_CREATE ? "POST" : "PUT";
		char path[200];
		if (it->op == STORE_OP_CREATE && !it->deleted)
			snprintf(path, sizeof path, "%s", it->type);
		else
			snprintf(path, sizeof path, "%s/%s", it->type, it->id);
		if (rq) {
			cJSON_AddStringToObject(rq, "method", method);
			cJSON_AddStringToObject(rq, "url", path);
		}
		if (rs) {
			cJSON_AddStringToObject(rs, "status", it->deleted ? "204" : it->version == 1 ? "201" : "200");
			char etag[64];
			snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)it->version);
			cJSON_AddStringToObject(rs, "etag", etag);
			cJSON_AddStringToObject(rs, "lastModified", it->last_updated);
		}
		cJSON_AddItemToArray(entries, e);
	}
	egress_bundle(app, req, resp, b);
	if (!cJSON_GetArraySize(entries))
		cJSON_DeleteItemFromObjectCaseSensitive(b, "entry");
	store_page_release(&page);
	api_fhir_send(req, resp, 200, b);
}

void rest_get_history_instance(void *ctx, struct http_request *req, struct http_response *resp)
{
	const char *type = req->params[0], *id = req->params[1];
	if (!rest_check_type_id(req, resp, type, id) || !rest_confine_local(ctx, req, resp, type, SCOPE_R))
		return;
	/* a confined client: the resource as it is now must be within its reach */
	if (!rest_confined_stored(ctx, req, type, id, NULL, SCOPE_R)) {
		rest_answer_not_found(req, resp, type, id);
		return;
	}
	if (!rest_pass_through(ctx, req, resp, type))
		history_common(ctx, req, resp, type, id);
}

void rest_get_history_type(void *ctx, struct http_request *req, struct http_response *resp)
{
	if (rest_check_type_id(req, resp, req->params[0], NULL) && !rest_pass_through(ctx, req, resp, req->params[0]))
		history_common(ctx, req, resp, req->params[0], NULL);
}

void rest_get_history_system(void *ctx, struct http_request *req, struct http_response *resp)
{
	history_common(ctx, req, resp, NULL, NULL);
}
