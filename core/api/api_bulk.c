#include "api/api_bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_fhir.h"
#include "api/audit.h"
#include "api/bulk.h"
#include "api/purpose.h"
#include "api/rest_int.h"
#include "auth/auth.h"
#include "auth/scope.h"
#include "base/fjson.h"
#include "base/strbuf.h"
#include "fhir/model.h"
#include "fhir/search_params.h"

#define MAX_ARGS 64
#define STATUS_PATH "/bulk-status"
#define FILES_PATH "/bulk-files"

bool api_bulk_plain_path(const char *path)
{
	return !strncmp(path, "/fhir" STATUS_PATH "/", sizeof "/fhir" STATUS_PATH) ||
	       !strncmp(path, "/fhir" FILES_PATH "/", sizeof "/fhir" FILES_PATH);
}

struct args {
	const char *name[MAX_ARGS];
	const char *value[MAX_ARGS];
	size_t n;
	bool full;
};

static int add_arg(void *ctx, const char *name, const char *value)
{
	struct args *a = ctx;
	if (a->n >= MAX_ARGS) {
		a->full = true;
		return 1;
	}
	a->name[a->n] = name;
	a->value[a->n++] = value;
	return 0;
}

/* The value of a Parameters entry as text: a primitive value[x], or a
 * valueReference's reference. NULL for anything else. */
static const char *param_text(const cJSON *p)
{
	for (const cJSON *m = p->child; m; m = m->next) {
		if (!m->string || strncmp(m->string, "value", 5) != 0)
			continue;
		if (cJSON_IsString(m))
			return m->valuestring;
		if (!strcmp(m->string, "valueReference"))
			return rest_str_member(m, "reference");
	}
	return NULL;
}

/* A comma-separated list into an array of its non-empty items. */
static void add_list(cJSON *arr, const char *list)
{
	for (const char *e = list; *e;) {
		size_t n = strcspn(e, ",");
		if (n) {
			char *one = strndup(e, n);
			if (one)
				cJSON_AddItemToArray(arr, cJSON_CreateString(one));
			free(one);
		}
		e += n;
		if (*e == ',')
			e++;
	}
}

static bool in_array(const cJSON *arr, const char *s)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return true;
	return false;
}

static bool prefer_has(const struct http_request *req, const char *token)
{
	const char *p = http_header(req, "Prefer");
	if (!p)
		return false;
	size_t tl = strlen(token);
	for (const char *s = p; (s = strstr(s, token)); s += tl) {
		bool start = s == p || s[-1] == ',' || s[-1] == ' ' || s[-1] == ';';
		bool end = !s[tl] || s[tl] == ',' || s[tl] == ' ' || s[tl] == ';';
		if (start && end)
			return true;
	}
	return false;
}

enum level { SYSTEM, PATIENT, GROUP };

/* The Patient ids a Group's members name (inactive members left out), as a
 * JSON array; NULL with the answer set. */
static cJSON *group_patients(const struct app *app, const char *id, struct http_response *resp)
{
	if (!rest_valid_id(id)) {
		http_set_error(resp, 400, "invalid", "'%.64s' is not a valid id", id);
		return NULL;
	}
	cJSON *group = NULL;
	struct store_error err;
	enum store_status st = store_read(app->store, "Group", id, &group, &err);
	if (st != STORE_OK) {
		http_set_error(resp, store_status_http(st), st == STORE_NOT_FOUND ? "not-found" : "processing",
			       st == STORE_NOT_FOUND ? "no Group with id %.64s" : "Group %.64s: %s", id,
			       st == STORE_NOT_FOUND ? "" : err.message);
		return NULL;
	}
	cJSON *ids = cJSON_CreateArray();
	const cJSON *m;
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(group, "member"))
	{
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "inactive")))
			continue;
		const char *ref = rest_str_member(cJSON_GetObjectItemCaseSensitive(m, "entity"), "reference");
		char type[STORE_TYPE_SIZE], pid[STORE_ID_SIZE];
		if (ref && search_params_split_reference(ref, type, sizeof type, pid, sizeof pid) &&
		    !strcmp(type, "Patient") && !in_array(ids, pid))
			cJSON_AddItemToArray(ids, cJSON_CreateString(pid));
	}
	cJSON_Delete(group);
	return ids;
}

static bool format_ok(const char *f)
{
	return !strcmp(f, "application/fhir+ndjson") || !strcmp(f, "application/ndjson") || !strcmp(f, "ndjson");
}

/* The authenticated client of req, or NULL (auth off). */
static const struct auth_principal *client_of(const struct http_request *req)
{
	const struct auth_principal *who = req->principal;
	return who && who->client_id ? who : NULL;
}

/* What an authenticated client may export (its scopes: read and search,
 * SMART rs): every type _type names must be within its reach (left out
 * when lenient), a Group export needs to read the Group; recorded in desc
 * as "access" for the job, which writes only the types within reach (a
 * patient/ scope's from its patient's compartment). false after setting a
 * 403 on resp. */
static bool export_access(const struct auth_principal *who, cJSON *desc, enum level level, bool lenient,
			  struct http_response *resp)
{
	const unsigned rs = SCOPE_R | SCOPE_S;
	bool has_patient = who->patient[0] != '\0';
	if (level == GROUP && scope_reach(who->scopes, "Group", SCOPE_R, false) != SCOPE_REACH_ALL)
		return auth_forbid(resp, "Group", SCOPE_R);
	cJSON *types = cJSON_GetObjectItemCaseSensitive(desc, "types");
	char refused[STORE_TYPE_SIZE] = "*";
	for (cJSON *t = types ? types->child : NULL, *next; t; t = next) {
		next = t->next;
		bool audit = !strcmp(t->valuestring, "AuditEvent");
		if (audit && !audit_scopes_admit(who->scopes) && !lenient) {
			http_set_error(resp, 403, "forbidden",
				       "exporting AuditEvents needs the scope system/crosswalk.admin");
			return false;
		}
		if ((!audit || audit_scopes_admit(who->scopes)) &&
		    scope_reach(who->scopes, t->valuestring, rs, has_patient) != SCOPE_REACH_NONE)
			continue;
		if (!lenient)
			return auth_forbid(resp, t->valuestring, rs);
		snprintf(refused, sizeof refused, "%s", t->valuestring);
		cJSON_Delete(cJSON_DetachItemViaPointer(types, t));
	}
	if (types && cJSON_GetArraySize(types) == 0)
		return auth_forbid(resp, refused, rs); /* lenient, and every type left out */
	cJSON *acc = cJSON_AddObjectToObject(desc, "access");
	cJSON_AddStringToObject(acc, "client_id", who->client_id);
	cJSON_AddStringToObject(acc, "scopes", who->scopes);
	cJSON_AddStringToObject(acc, "patient", who->patient);
	return true;
}

static void kickoff(const struct app *app, struct http_request *req, struct http_response *resp, enum level level)
{
	if (!prefer_has(req, "respond-async")) {
		http_set_error(resp, 400, "invalid", "$export runs asynchronously: send Prefer: respond-async");
		return;
	}
	bool lenient = prefer_has(req, "handling=lenient");
	struct args a = {0};
	cJSON *body = NULL;
	if (!strcmp(req->method, "POST") && req->body_len > 0) {
		body = api_fhir_read_body(app, req, resp);
		if (!body)
			return;
		if (strcmp(rest_str_member(body, "resourceType") ? rest_str_member(body, "resourceType") : "",
			   "Parameters") != 0) {
			cJSON_Delete(body);
			http_set_error(resp, 400, "invalid", "the body of $export is a Parameters resource");
			return;
		}
		const cJSON *p;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(body, "parameter"))
		{
			const char *name = rest_str_member(p, "name");
			const char *value = param_text(p);
			if (!name || !value) {
				cJSON_Delete(body);
				http_set_error(resp, 400, "invalid",
					       "each $export parameter has a name and a text or reference value");
				return;
			}
			add_arg(&a, name, value);
		}
	} else {
		http_query_each(req, add_arg, &a);
	}
	if (a.full) {
		cJSON_Delete(body);
		http_set_error(resp, 400, "too-costly", "at most %d $export parameters", MAX_ARGS);
		return;
	}
	cJSON *desc = cJSON_CreateObject();
	cJSON *types = NULL, *filters = NULL, *patients = NULL;
	char why[320] = "";
	for (size_t i = 0; i < a.n && !why[0]; i++) {
		const char *n = a.name[i], *v = a.value[i];
		if (!strcmp(n, "_format") || !strcmp(n, "_pretty")) {
			continue;
		} else if (!strcmp(n, "_outputFormat")) {
			if (!format_ok(v))
				snprintf(why, sizeof why,
					 "_outputFormat '%.80s' is not offered: application/fhir+ndjson", v);
		} else if (!strcmp(n, "_since")) {
			int64_t lo, hi;
			char t[STORE_TIME_SIZE];
			if (!search_params_date_range(v, &lo, &hi) || !strchr(v, 'T')) {
				snprintf(why, sizeof why, "_since takes an instant, such as 2026-01-01T00:00:00Z");
			} else {
				store_time_text(lo, t);
				cJSON_DeleteItemFromObjectCaseSensitive(desc, "since");
				cJSON_AddStringToObject(desc, "since", t);
			}
		} else if (!strcmp(n, "_type")) {
			if (!types)
				types = cJSON_AddArrayToObject(desc, "types");
			cJSON *list = cJSON_CreateArray();
			add_list(list, v);
			const cJSON *t;
			cJSON_ArrayForEach(t, list)
			{
				if (!model_resource(t->valuestring)) {
					if (!lenient) {
						snprintf(why, sizeof why, "_type: '%.64s' is not a resource type",
							 t->valuestring);
						break;
					}
				} else if (!in_array(types, t->valuestring)) {
					cJSON_AddItemToArray(types, cJSON_CreateString(t->valuestring));
				}
			}
			cJSON_Delete(list);
		} else if (!strcmp(n, "_typeFilter")) {
			if (!filters)
				filters = cJSON_AddArrayToObject(desc, "typeFilter");
			cJSON_AddItemToArray(filters, cJSON_CreateString(v));
		} else if (!strcmp(n, "_elements")) {
			cJSON_DeleteItemFromObjectCaseSensitive(desc, "elements");
			cJSON_AddStringToObject(desc, "elements", v);
		} else if (!strcmp(n, "patient") && level != SYSTEM) {
			char type[STORE_TYPE_SIZE], pid[STORE_ID_SIZE];
			if (!search_params_split_reference(v, type, sizeof type, pid, sizeof pid) ||
			    strcmp(type, "Patient") != 0) {
				snprintf(why, sizeof why, "patient takes a reference Patient/id, not '%.64s'", v);
			} else {
				if (!patients)
					patients = cJSON_AddArrayToObject(desc, "patients");
				if (!in_array(patients, pid))
					cJSON_AddItemToArray(patients, cJSON_CreateString(pid));
			}
		} else if (!strcmp(n, "includeAssociatedData")) {
			/* no associated data (Provenance) is produced: any value asks
			 * for something this server does not give */
			if (!lenient)
				snprintf(why, sizeof why,
					 "includeAssociatedData '%.64s' is not supported (send Prefer: "
					 "handling=lenient to "
					 "export without it)",
					 v);
		} else if (!lenient) {
			snprintf(why, sizeof why,
				 "$export does not support the parameter '%.64s' (send Prefer: handling=lenient to "
				 "leave it "
				 "out)",
				 n);
		}
	}
	cJSON_Delete(body);
	if (!why[0] && types && cJSON_GetArraySize(types) == 0)
		snprintf(why, sizeof why, "_type names no resource type this server knows");
	if (why[0]) {
		cJSON_Delete(desc);
		http_set_error(resp, 400, "not-supported", "%s", why);
		return;
	}
	const struct auth_principal *who = client_of(req);
	if (who && !export_access(who, desc, level, lenient, resp)) {
		cJSON_Delete(desc);
		return;
	}
	if (level == GROUP) {
		cJSON *members = group_patients(app, req->params[0], resp);
		if (!members) {
			cJSON_Delete(desc);
			return;
		}
		if (patients) { /* patient narrows the Group to those of its members */
			cJSON *both = cJSON_CreateArray();
			const cJSON *p;
			cJSON_ArrayForEach(p, patients) if (in_array(members, p->valuestring))
				cJSON_AddItemToArray(both, cJSON_CreateString(p->valuestring));
			cJSON_Delete(members);
			members = both;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(desc, "patients");
		cJSON_AddItemToObject(desc, "patients", members);
		cJSON_AddStringToObject(desc, "group", req->params[0]);
	} else if (level == PATIENT && !patients) {
		cJSON_AddStringToObject(desc, "patients", "*");
	}
	if (bulk_check(app->bulk, desc, why, sizeof why) != 0) {
		cJSON_Delete(desc);
		http_set_error(resp, 400, "invalid", "%s", why);
		return;
	}
	/* the kick-off URL as the client asked for it */
	char base[512];
	rest_base_url(app, req, base, sizeof base);
	struct strbuf url = STRBUF_INIT;
	strbuf_adds(&url, base);
	strbuf_adds(&url, req->path + 5);
	for (size_t i = 0; i < a.n && strcmp(req->method, "GET") == 0; i++) {
		size_t pos = 0;
		char enc[2048];
		strbuf_adds(&url, i ? "&" : "?");
		rest_url_encode(enc, sizeof enc, &pos, a.name[i]);
		strbuf_adds(&url, enc);
		strbuf_adds(&url, "=");
		pos = 0;
		rest_url_encode(enc, sizeof enc, &pos, a.value[i]);
		strbuf_adds(&url, enc);
	}
	char *request = strbuf_take(&url, NULL);
	cJSON_AddStringToObject(desc, "request", request ? request : base);
	free(request);
	cJSON_AddStringToObject(desc, "client", req->client ? req->client : "");
	purpose_note_job(req, desc);
	struct store_snapshot snap;
	struct store_error err;
	enum store_status st = store_snapshot(app->store, &snap, &err);
	if (st != STORE_OK) {
		cJSON_Delete(desc);
		http_set_error(resp, store_status_http(st), "transient", "cannot start the export: %s", err.message);
		return;
	}
	cJSON *s = cJSON_AddObjectToObject(desc, "snapshot");
	cJSON_AddNumberToObject(s, "seq", (double)snap.seq);
	cJSON_AddStringToObject(s, "time", snap.time);
	char id[BULK_ID_SIZE];
	int rc = bulk_submit(app->bulk, desc, id);
	if (rc == 1) {
		http_add_header(resp, "Retry-After", "60");
		http_set_error(resp, 429, "throttled",
			       "%llu exports are kept already: delete finished ones (DELETE on their status URL) first",
			       (unsigned long long)app->cfg->bulk.max_jobs);
		return;
	}
	if (rc != 0) {
		http_set_error(resp, 500, "exception", "cannot record the export in the data directory");
		return;
	}
	char loc[1024];
	snprintf(loc, sizeof loc, "%s%s/%s", base, STATUS_PATH, id);
	http_add_header(resp, "Content-Location", loc);
	struct outcome oo = {0};
	outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "the export has started; its status is at %s",
		    loc);
	http_set_outcome(resp, 202, &oo);
	outcome_release(&oo);
}

/* An export that is not (or no longer) there, by its id. */
#define NO_EXPORT "no export %.64s (finished exports expire; deleted ones are gone)"

/* The answer to a job the bulk module could not give (rc -1: none such;
 * BULK_UNAVAILABLE: the store holding the jobs is unreachable, and the job
 * may well exist: 503, asked again later). */
static void no_job(struct http_response *resp, int rc, const char *what, const char *id)
{
	if (rc == BULK_UNAVAILABLE) {
		http_add_header(resp, "Retry-After", "5");
		http_set_error(resp, 503, "transient", "export %.64s: the store is unavailable", id);
		return;
	}
	http_set_error(resp, 404, "not-found", "%s", what);
}

/* An export is its kicking-off client's: another client is told there is
 * no such export, as for an unknown one. */
static bool may_reach(const struct app *app, const struct http_request *req, struct http_response *resp)
{
	const struct auth_principal *who = client_of(req);
	int rc = bulk_access(app->bulk, req->params[0], who ? who->client_id : NULL);
	if (rc == 0)
		return true;
	char what[160];
	snprintf(what, sizeof what, NO_EXPORT, req->params[0]);
	no_job(resp, rc, what, req->params[0]);
	return false;
}

static void export_system(void *ctx, struct http_request *req, struct http_response *resp)
{
	kickoff(ctx, req, resp, SYSTEM);
}

static void export_patient(void *ctx, struct http_request *req, struct http_response *resp)
{
	kickoff(ctx, req, resp, PATIENT);
}

static void export_group(void *ctx, struct http_request *req, struct http_response *resp)
{
	kickoff(ctx, req, resp, GROUP);
}

static void get_status(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	char base[512], files[600], progress[256];
	rest_base_url(app, req, base, sizeof base);
	snprintf(files, sizeof files, "%s%s", base, FILES_PATH);
	cJSON *m = NULL;
	enum bulk_state state;
	if (!may_reach(app, req, resp))
		return;
	int rc = bulk_status(app->bulk, req->params[0], files, progress, sizeof progress, &m, &state);
	if (rc != 0) {
		char what[160];
		snprintf(what, sizeof what, NO_EXPORT, req->params[0]);
		no_job(resp, rc, what, req->params[0]);
		return;
	}
	switch (state) {
	case BULK_QUEUED:
	case BULK_RUNNING:
		http_add_header(resp, "X-Progress", progress);
		http_add_header(resp, "Retry-After", "2");
		http_set_body(resp, 202, "application/json", NULL, 0);
		break;
	case BULK_COMPLETE: {
		cJSON *ext = cJSON_GetObjectItemCaseSensitive(m, "extension");
		if (cJSON_GetObjectItemCaseSensitive(ext, EGRESS_NOTICE_URL)) {
			const char *notice = app->redisclosure ? app->redisclosure : EGRESS_NOTICE_SHORT;
			cJSON_ReplaceItemInObjectCaseSensitive(ext, EGRESS_NOTICE_URL, cJSON_CreateString(notice));
			http_add_header(resp, EGRESS_NOTICE_HEADER, notice);
		}
		/* the Consents that permitted what the files hold, as on every answer */
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ext, EGRESS_CONSENT_URL))
		{
			struct egress_cited cited;
			const char *ref = rest_str_member(c, "reference"), *scope = rest_str_member(c, "display");
			snprintf(cited.ref, sizeof cited.ref, "%s", ref ? ref : "");
			snprintf(cited.scope, sizeof cited.scope, "%s", scope ? scope : "");
			if (ref)
				egress_consent_header(resp, &cited);
		}
		size_t len = 0;
		char *text = fjson_print(m, false, &len);
		cJSON_Delete(m);
		if (!text) {
			http_set_error(resp, 500, "exception", "out of memory");
			return;
		}
		http_set_body(resp, 200, "application/json", text, len);
		break;
	}
	case BULK_FAILED:
		http_set_error(resp, 500, "exception", "%s", progress);
		break;
	}
}

static void delete_status(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	if (!may_reach(app, req, resp))
		return;
	int rc = bulk_cancel(app->bulk, req->params[0]);
	if (rc != 0) {
		char what[96];
		snprintf(what, sizeof what, "no export %.64s", req->params[0]);
		no_job(resp, rc, what, req->params[0]);
		return;
	}
	http_set_body(resp, 202, "application/json", NULL, 0);
}

static void get_file(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	int fd;
	size_t size;
	if (!may_reach(app, req, resp))
		return;
	int rc = bulk_open_file(app->bulk, req->params[0], req->params[1], &fd, &size);
	if (rc != 0) {
		no_job(resp, rc, "no such export file (finished exports expire)", req->params[0]);
		return;
	}
	http_set_file(resp, 200, "application/fhir+ndjson", fd, size);
}

int api_bulk_register(struct app *app)
{
	int rc = 0;
	static const char def[] = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export";
	rc |= capability_add_operation(&app->cap, (struct capability_operation){"export", def, NULL, "core"});
	rc |= capability_add_operation(&app->cap, (struct capability_operation){"export", def, "Patient", "core"});
	rc |= capability_add_operation(&app->cap, (struct capability_operation){"export", def, "Group", "core"});
	rc |= router_add(&app->router, "GET", "/fhir/$export", export_system, app);
	rc |= router_add(&app->router, "POST", "/fhir/$export", export_system, app);
	rc |= router_add(&app->router, "GET", "/fhir/Patient/$export", export_patient, app);
	rc |= router_add(&app->router, "POST", "/fhir/Patient/$export", export_patient, app);
	rc |= router_add(&app->router, "GET", "/fhir/Group/{id}/$export", export_group, app);
	rc |= router_add(&app->router, "POST", "/fhir/Group/{id}/$export", export_group, app);
	rc |= router_add(&app->router, "GET", "/fhir" STATUS_PATH "/{job}", get_status, app);
	rc |= router_add(&app->router, "DELETE", "/fhir" STATUS_PATH "/{job}", delete_status, app);
	rc |= router_add(&app->router, "GET", "/fhir" FILES_PATH "/{job}/{file}", get_file, app);
	return rc;
}
