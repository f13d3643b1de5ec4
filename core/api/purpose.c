/* purpose — what a client's answers are for (purpose.h). */
#include "api/purpose.h"

#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"

/* The peer-support note (docs/formats/peer-support.md): a note by another name. */
#define PURPOSE_NOTE_EXTENSION "https://crosswalk.example.org/fhir/StructureDefinition/peer-support-note"

/* Nesting followed through Bundles and contained resources. */
#define PURPOSE_MAX_DEPTH 8

/* The minimum-necessary view of a billing client (docs/billing.md, "Never
 * included"): what is removed. type NULL: from every resource. path is
 * dotted; arrays on the way are walked element by element. What stays is
 * what billing needs: codes, dates, identifiers, units, providers, payers. */
static const struct {
	const char *type, *path;
} billing_removed[] = {
	{NULL, "text"}, /* narrative */
	{NULL, "note"}, /* notes of every kind */
	{"Condition", "code.text"},
	{"Condition", "evidence"},
	{"Patient", "name"},
	{"Patient", "telecom"},
	{"Patient", "photo"},
	{"Patient", "contact"},
	{"RelatedPerson", "name"},
	{"RelatedPerson", "telecom"},
	{"RelatedPerson", "photo"},
	{"Person", "name"},
	{"Person", "telecom"},
	{"Person", "photo"},
	{"Practitioner", "name"},
	{"Practitioner", "telecom"},
	{"Practitioner", "photo"},
	{"Goal", "description"},
	{"Goal", "target"},
	{"Goal", "outcomeCode"},
	{"Goal", "outcomeReference"},
	{"CarePlan", "title"},
	{"CarePlan", "description"},
	{"CarePlan", "goal"},
	{"CarePlan", "activity"},
	{"QuestionnaireResponse", "item"},
	{"Observation", "valueString"},
	{"Observation", "component"},
};

void purpose_mark(struct http_request *req, const struct auth_principal *who)
{
	req->client_id = who->configured ? who->client_id : NULL;
	req->purpose = who->client_id ? (int)who->purpose : 0;
}

bool purpose_filters(const struct http_request *req) { return req && req->purpose == AUTH_BILLING; }

/* Removes path (dotted) under node; arrays on the way are walked. */
static void remove_path(cJSON *node, const char *path)
{
	if (cJSON_IsArray(node)) {
		for (cJSON *e = node->child; e; e = e->next)
			remove_path(e, path);
		return;
	}
	if (!cJSON_IsObject(node))
		return;
	const char *dot = strchr(path, '.');
	if (!dot) {
		cJSON_DeleteItemFromObjectCaseSensitive(node, path);
		return;
	}
	char head[64];
	size_t n = (size_t)(dot - path);
	if (n >= sizeof head)
		return;
	memcpy(head, path, n);
	head[n] = '\0';
	remove_path(cJSON_GetObjectItemCaseSensitive(node, head), dot + 1);
}

/* Removes the peer-support note extension wherever it is. */
static void remove_note_extensions(cJSON *node, size_t depth)
{
	if (depth > 64 || (!cJSON_IsObject(node) && !cJSON_IsArray(node)))
		return;
	cJSON *ext = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, "extension") : NULL;
	for (cJSON *e = cJSON_IsArray(ext) ? ext->child : NULL, *next; e; e = next) {
		next = e->next;
		const cJSON *url = cJSON_GetObjectItemCaseSensitive(e, "url");
		if (cJSON_IsString(url) && !strcmp(url->valuestring, PURPOSE_NOTE_EXTENSION))
			cJSON_Delete(cJSON_DetachItemViaPointer(ext, e));
	}
	if (cJSON_IsArray(ext) && !cJSON_GetArraySize(ext))
		cJSON_DeleteItemFromObjectCaseSensitive(node, "extension");
	for (cJSON *c = node->child; c; c = c->next)
		remove_note_extensions(c, depth + 1);
}

static void billing_view(cJSON *res, size_t depth)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	if (!cJSON_IsString(rt) || depth > PURPOSE_MAX_DEPTH)
		return;
	const char *type = rt->valuestring;
	if (!strcmp(type, "OperationOutcome"))
		return;
	if (!strcmp(type, "Bundle")) {
		cJSON *entries = cJSON_GetObjectItemCaseSensitive(res, "entry");
		for (cJSON *e = cJSON_IsArray(entries) ? entries->child : NULL; e; e = e->next) {
			billing_view(cJSON_GetObjectItemCaseSensitive(e, "resource"), depth + 1);
			cJSON *response = cJSON_GetObjectItemCaseSensitive(e, "response");
			billing_view(cJSON_GetObjectItemCaseSensitive(response, "outcome"), depth + 1);
		}
		return;
	}
	for (size_t i = 0; i < sizeof billing_removed / sizeof *billing_removed; i++)
		if (!billing_removed[i].type || !strcmp(billing_removed[i].type, type))
			remove_path(res, billing_removed[i].path);
	remove_note_extensions(res, 0);
	cJSON *contained = cJSON_GetObjectItemCaseSensitive(res, "contained");
	for (cJSON *c = cJSON_IsArray(contained) ? contained->child : NULL; c; c = c->next)
		billing_view(c, depth + 1);
}

void purpose_filter(int purpose, cJSON *res)
{
	if (purpose == AUTH_BILLING && res)
		billing_view(res, 0);
}

void purpose_answer(const struct http_request *req, struct http_response *resp)
{
	if (!purpose_filters(req) || !resp->body || !resp->content_type ||
	    strncmp(resp->content_type, "application/fhir+json", 21) != 0)
		return;
	/* the gateway's own answer: read back whatever its size (the limits are
	 * for what clients send) */
	struct fjson_limits lim;
	fjson_limits_for_len(&lim, resp->body_len);
	cJSON *tree = fjson_parse(resp->body, resp->body_len, &lim, NULL);
	size_t len = 0;
	char *text = NULL;
	if (tree) {
		purpose_filter(req->purpose, tree);
		text = fjson_print(tree, false, &len);
		cJSON_Delete(tree);
	}
	if (!text) {
		http_set_error(resp, 500, "exception", "the answer could not be limited to what this client may see");
		return;
	}
	free(resp->body);
	resp->body = text;
	resp->body_len = len;
}

void purpose_note_job(const struct http_request *req, cJSON *desc)
{
	if (req->purpose)
		cJSON_AddNumberToObject(desc, "purpose", req->purpose);
	if (req->client_id)
		cJSON_AddStringToObject(desc, "configured_client", req->client_id);
}

/* The purpose recorded in a job's record rec (0: none). */
static int job_purpose(const cJSON *rec)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "purpose");
	return cJSON_IsNumber(p) ? p->valueint : 0;
}

bool purpose_filters_job(const cJSON *rec) { return job_purpose(rec) == AUTH_BILLING; }

void purpose_filter_job(const cJSON *rec, cJSON *res) { purpose_filter(job_purpose(rec), res); }

int purpose_filter_text(const cJSON *rec, const char **text, size_t *len, char **owned)
{
	if (!purpose_filters_job(rec))
		return 0;
	cJSON *res = fjson_parse(*text, *len, NULL, NULL);
	char *out = res ? (purpose_filter_job(rec, res), fjson_print(res, false, len)) : NULL;
	cJSON_Delete(res);
	if (!out)
		return -1;
	*owned = out;
	*text = out;
	return 0;
}
