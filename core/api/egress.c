/* egress — the consent filter of every way out (egress.h). */
#include "api/egress.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/audit.h"
#include "api/privacy.h"
#include "auth/auth.h"
#include "base/fjson.h"
#include "fhir/seclabel.h"

#define NOTICE_MAX 4096

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *purpose_code(enum auth_purpose p)
{
	switch (p) {
	case AUTH_OPERATIONS:
		return "HOPERAT";
	case AUTH_BILLING:
		return "HPAYMT";
	default:
		return "TREAT";
	}
}

/* auth.clients[].organization of client id, or NULL. */
static const char *client_organization(const struct config *cfg, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cfg->auth.clients)
	{
		const char *cid = str(e, "client_id");
		if (cid && !strcmp(cid, id))
			return str(e, "organization");
	}
	return NULL;
}

static void begin(struct egress *eg, struct store *store, const char *notice)
{
	memset(eg, 0, sizeof *eg);
	eg->store = store;
	eg->notice = notice;
	eg->policy = (struct consent_policy){.part2 = CONSENT_DEFAULT_DENY, .restricted = CONSENT_DEFAULT_PERMIT};
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(eg->when, sizeof eg->when, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *client_purpose(const struct config *cfg, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cfg->auth.clients)
	{
		const char *cid = str(e, "client_id"), *p = str(e, "purpose");
		if (cid && !strcmp(cid, id))
			return !p                         ? "TREAT"
			       : !strcmp(p, "billing")    ? "HPAYMT"
			       : !strcmp(p, "operations") ? "HOPERAT"
							  : "TREAT";
	}
	return "TREAT";
}

/* The site's policy table (cfg->privacy.restricted) for R/V data without
 * 42CFRPart2 that no Consent speaks to, by the recipient's purpose. */
static void site_policy(struct egress *eg, const struct config *cfg)
{
	const struct config_privacy *p = &cfg->privacy;
	const char *purpose = eg->r.purpose ? eg->r.purpose : "";
	const char *v = !strcmp(purpose, "TREAT")     ? p->restricted_treat
			: !strcmp(purpose, "HPAYMT")  ? p->restricted_payment
			: !strcmp(purpose, "HOPERAT") ? p->restricted_ops
						      : NULL;
	if (!v)
		v = p->restricted_default;
	eg->policy.restricted = v && !strcmp(v, "deny") ? CONSENT_DEFAULT_DENY : CONSENT_DEFAULT_PERMIT;
}

void egress_begin_client(struct egress *eg, struct store *store, const struct config *cfg, const char *client_id)
{
	begin(eg, store, NULL);
	if (!client_id)
		eg->r = (struct consent_recipient){.client = PRIVACY_LOCAL_OPERATOR, .purpose = "TREAT"};
	else
		eg->r = (struct consent_recipient){.client = client_id,
						   .organization = client_organization(cfg, client_id),
						   .purpose = client_purpose(cfg, client_id)};
	site_policy(eg, cfg);
}

void egress_begin_command(struct egress *eg, const struct app *app, const char *client_id)
{
	egress_begin_client(eg, app->store, app->cfg, client_id);
	eg->notice = app->redisclosure;
	eg->words = app->consent_words;
	eg->refuse_part2 = !client_id;
}

bool egress_may_need(const char *text, size_t len)
{
	return memmem(text, len, SECLABEL_PART2, strlen(SECLABEL_PART2)) || memmem(text, len, "v3-Confidentiality", 18);
}

void egress_begin(struct egress *eg, const struct app *app, const struct http_request *req)
{
	begin(eg, app->store, app->redisclosure);
	eg->words = app->consent_words;
	eg->req = req;
	const struct auth_principal *who = req ? req->principal : NULL;
	if (!req)
		eg->r = (struct consent_recipient){
			.client = EGRESS_UPSTREAM,
			.organization = app->cfg->upstream.organization,
			.purpose = app->cfg->upstream.purpose_of_use ? app->cfg->upstream.purpose_of_use : "TREAT"};
	else if (!who || !who->client_id)
		eg->r = (struct consent_recipient){.client = PRIVACY_LOCAL_OPERATOR, .purpose = "TREAT"};
	else
		eg->r = (struct consent_recipient){.client = who->client_id,
						   .actor = who->fhir_user[0] ? who->fhir_user : NULL,
						   .organization = client_organization(app->cfg, who->client_id),
						   .purpose = purpose_code(who->purpose)};
	site_policy(eg, app->cfg);
}

/* "Patient/id" of res (the Patient itself, or its patient, subject or
 * beneficiary), into out; false when it names none. */
static bool patient_of(const cJSON *res, char *out, size_t n)
{
	const char *type = str(res, "resourceType"), *id = str(res, "id");
	if (type && !strcmp(type, "Patient")) {
		if (!id)
			return false;
		snprintf(out, n, "Patient/%s", id);
		return true;
	}
	static const char *const members[] = {"patient", "subject", "beneficiary", NULL};
	for (size_t i = 0; members[i]; i++) {
		const char *ref = str(cJSON_GetObjectItemCaseSensitive(res, members[i]), "reference");
		if (!ref || strncmp(ref, "Patient/", 8) != 0)
			continue;
		size_t len = strcspn(ref + 8, "/");
		if (!len || len >= STORE_ID_SIZE)
			return false;
		snprintf(out, n, "Patient/%.*s", (int)len, ref + 8);
		return true;
	}
	return false;
}

static void patient_release(struct egress_patient *p)
{
	store_page_release(&p->page);
	free(p->consents);
	memset(p, 0, sizeof *p);
}

/* The Consents of patient ref (read once per answer). NULL on failure: no
 * Consent permits anything then, so the default (deny) decides. */
static const struct egress_patient *consents_of(struct egress *eg, const char *ref)
{
	for (size_t i = 0; i < eg->ncache; i++)
		if (!strcmp(eg->cache[i].ref, ref))
			return &eg->cache[i];
	if (!eg->store)
		return NULL;
	struct egress_patient *p;
	if (eg->ncache < EGRESS_CACHE) {
		p = &eg->cache[eg->ncache++];
	} else {
		p = &eg->cache[eg->next];
		eg->next = (eg->next + 1) % EGRESS_CACHE;
		patient_release(p);
	}
	snprintf(p->ref, sizeof p->ref, "%s", ref);
	struct store_search_param param = {.name = "patient", .value = ref};
	struct store_search q = {.params = &param, .n_params = 1, .count = STORE_MAX_COUNT, .no_total = true};
	struct store_error err = {0};
	if (store_search(eg->store, "Consent", &q, &p->page, &err) != STORE_OK) {
		store_page_release(&p->page);
		return p; /* none read: the defaults decide */
	}
	p->consents = p->page.n ? calloc(p->page.n, sizeof *p->consents) : NULL;
	for (size_t i = 0; p->consents && i < p->page.n; i++)
		p->consents[p->n++] = p->page.items[i].resource;
	return p;
}

/* The client that wrote res (the writer tag privacy_label_write sets), or NULL. */
static const char *writer_of(const cJSON *res)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag"))
	{
		const char *s = str(t, "system");
		if (s && !strcmp(s, PRIVACY_WRITER_SYSTEM))
			return str(t, "code");
	}
	return NULL;
}

/* Names consent among those that permitted the disclosure (once). */
static void cite(struct egress *eg, const cJSON *consent)
{
	const char *id = str(consent, "id");
	char ref[sizeof eg->cited[0].ref];
	if (!id || strlen(id) >= STORE_ID_SIZE)
		return;
	snprintf(ref, sizeof ref, "Consent/%s", id);
	for (size_t i = 0; i < eg->ncited; i++)
		if (!strcmp(eg->cited[i].ref, ref))
			return;
	if (eg->ncited >= EGRESS_MAX_CITED)
		return;
	struct egress_cited *c = &eg->cited[eg->ncited++];
	memcpy(c->ref, ref, sizeof ref);
	consent_explain(consent, eg->words, c->scope, sizeof c->scope);
}

bool egress_allows(struct egress *eg, const cJSON *res)
{
	if (!seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2) && !seclabel_has(res, SECLABEL_CONFIDENTIALITY, "R") &&
	    !seclabel_has(res, SECLABEL_CONFIDENTIALITY, "V"))
		return true; /* nothing to decide: no store read */
	char ref[STORE_ID_SIZE + 16];
	const struct egress_patient *p = patient_of(res, ref, sizeof ref) ? consents_of(eg, ref) : NULL;
	struct consent_decision d = consent_decide(&eg->policy, &eg->r, eg->when, res, writer_of(res),
						   p ? p->consents : NULL, p ? p->n : 0);
	if (d.part2 && eg->refuse_part2)
		d.permit = false; /* disclosed to nobody named: never Part 2 data */
	if (!d.permit) {
		if (eg->on_withheld)
			eg->on_withheld(eg->ud, str(res, "resourceType"), str(res, "id"), EGRESS_NO_PART2_CONSENT);
		eg->withheld++;
		/* on the request's access record (api/audit.h); the request is the
		 * HTTP layer's, borrowed const here only for reading its client */
		if (eg->req)
			audit_withheld((struct http_request *)eg->req, str(res, "resourceType"), str(res, "id"),
				       "no-part2-consent");
		return false;
	}
	eg->part2 |= d.part2;
	for (size_t i = 0; eg->words && d.reason == CONSENT_PERMITTED && i < d.ncited; i++)
		cite(eg, p->consents[d.cited[i]]);
	return true;
}

void egress_end(struct egress *eg, struct http_response *resp)
{
	bool has = false;
	for (size_t i = 0; resp && i < resp->nheaders; i++)
		has |= !strcasecmp(resp->headers[i].name, EGRESS_NOTICE_HEADER);
	if (resp && !has && eg->part2 && eg->notice)
		http_add_header(resp, EGRESS_NOTICE_HEADER, eg->notice);
	for (size_t i = 0; resp && i < eg->ncited; i++)
		egress_consent_header(resp, &eg->cited[i]);
	for (size_t i = 0; i < eg->ncache; i++)
		patient_release(&eg->cache[i]);
	eg->ncache = 0;
}

int egress_load_notice(struct app *app, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/security/redisclosure.txt",
		 app->cfg->profiles_dir ? app->cfg->profiles_dir : "/nonexistent");
	FILE *f = fopen(path, "rb");
	char *text = calloc(1, NOTICE_MAX + 1);
	size_t n = 0;
	if (f && text)
		n = fread(text, 1, NOTICE_MAX + 1, f);
	else if (text) /* no file: the abbreviated statement of 42 CFR 2.32(a)(2) */
		n = (size_t)snprintf(text, NOTICE_MAX, "%s", EGRESS_NOTICE_SHORT);
	if (f)
		fclose(f);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	const char *why = !text ? "out of memory" : n > NOTICE_MAX ? "longer than 4 KiB" : !n ? "empty" : NULL;
	for (size_t i = 0; !why && i < n; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			why = "holds a character other than printable ASCII on one line";
	if (why) {
		snprintf(err, errlen, "%s: the redisclosure notice %s", path, why);
		free(text);
		return -1;
	}
	app->redisclosure = app_keep(app, text);
	if (!app->redisclosure) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* "key: text" lines of the wording file into w (kept in app). */
static int wording_line(struct app *app, struct consent_wording *w, const char *line, size_t len)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"scope", offsetof(struct consent_wording, scope)},
		{"any-recipient", offsetof(struct consent_wording, any_recipient)},
		{"any-purpose", offsetof(struct consent_wording, any_purpose)},
		{"any-period", offsetof(struct consent_wording, any_period)},
		{"any-class", offsetof(struct consent_wording, any_class)},
		{"any-label", offsetof(struct consent_wording, any_label)},
		{"from", offsetof(struct consent_wording, from)},
		{"until", offsetof(struct consent_wording, until)},
	};
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return -1;
	size_t klen = (size_t)(colon - line);
	const char *v = colon + 1;
	while (v < line + len && *v == ' ')
		v++;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (strlen(keys[i].key) != klen || strncmp(line, keys[i].key, klen) != 0)
			continue;
		char *copy = app_keep(app, strndup(v, (size_t)(line + len - v)));
		if (!copy)
			return -1;
		*(const char **)((char *)w + keys[i].off) = copy;
		return 0;
	}
	return -1;
}

int egress_load_wording(struct app *app, char *err, size_t errlen)
{
	struct consent_wording *w = app_keep(app, malloc(sizeof *w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*w = consent_wording_default;
	app->consent_words = w;
	char path[4200];
	snprintf(path, sizeof path, "%s/security/consent-scope.txt",
		 app->cfg->profiles_dir ? app->cfg->profiles_dir : "/nonexistent");
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0; /* the shipped defaults */
	char line[NOTICE_MAX + 2];
	int rc = 0, n = 0;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		n++;
		size_t len = strcspn(line, "\r\n");
		if (len == strlen(line) && !feof(f)) {
			snprintf(err, errlen, "%s:%d: longer than 4 KiB", path, n);
			rc = -1;
			break;
		}
		bool printable = true;
		for (size_t i = 0; i < len; i++)
			printable &= (unsigned char)line[i] >= 0x20 && (unsigned char)line[i] <= 0x7e;
		if (!len || line[0] == '#')
			continue;
		if (!printable || wording_line(app, w, line, len) != 0) {
			snprintf(err, errlen, "%s:%d: not a line 'key: text' of printable ASCII with a known key", path,
				 n);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

bool egress_withholds_text(const struct app *app, const struct http_request *req, struct http_response *resp,
			   char **text, size_t len)
{
	/* most resources carry no label that needs consent: no parse for them */
	if (!egress_may_need(*text, len))
		return false;
	cJSON *res = cJSON_ParseWithLength(*text, len);
	bool withheld = res && egress_withholds(app, req, resp, &res);
	cJSON_Delete(res);
	if (withheld) {
		free(*text);
		*text = NULL;
	}
	return withheld;
}

bool egress_withholds(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON **res)
{
	struct egress eg;
	egress_begin(&eg, app, req);
	bool ok = egress_allows(&eg, *res);
	if (!ok) {
		/* withheld is answered as not there: its existence is not disclosed */
		cJSON_Delete(*res);
		*res = NULL;
		http_set_error(resp, 404, "not-found", "%s/%s is not known", req->params[0], req->params[1]);
	}
	egress_end(&eg, ok ? resp : NULL);
	return !ok;
}

/* bundle's meta.extension, made when missing (NULL when out of memory). */
static cJSON *meta_extensions(cJSON *bundle)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(bundle, "meta");
	if (!meta)
		meta = cJSON_AddObjectToObject(bundle, "meta");
	cJSON *ext = cJSON_GetObjectItemCaseSensitive(meta, "extension");
	return ext ? ext : cJSON_AddArrayToObject(meta, "extension");
}

static void notice_on(const struct app *app, cJSON *bundle)
{
	if (!app->redisclosure)
		return;
	cJSON *ext = meta_extensions(bundle);
	const cJSON *x;
	cJSON_ArrayForEach(x, ext)
	{
		const char *url = str(x, "url");
		if (url && !strcmp(url, EGRESS_NOTICE_URL))
			return; /* there already */
	}
	cJSON *e = cJSON_CreateObject();
	if (!ext || !e || !cJSON_AddStringToObject(e, "url", EGRESS_NOTICE_URL) ||
	    !cJSON_AddStringToObject(e, "valueString", app->redisclosure)) {
		cJSON_Delete(e);
		return;
	}
	cJSON_AddItemToArray(ext, e);
}

/* The header value naming c: "Consent/id; SCOPE", printable ASCII. */
#define CONSENT_VALUE_SIZE (sizeof((struct egress_cited *)0)->ref + sizeof((struct egress_cited *)0)->scope + 4)
static void consent_value(const struct egress_cited *c, char v[CONSENT_VALUE_SIZE])
{
	snprintf(v, CONSENT_VALUE_SIZE, "%s; %s", c->ref, c->scope);
	for (char *q = v; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			*q = '?'; /* a header holds printable ASCII only */
}

void egress_consent_header(struct http_response *resp, const struct egress_cited *c)
{
	char v[CONSENT_VALUE_SIZE];
	consent_value(c, v);
	http_add_header(resp, EGRESS_CONSENT_HEADER, v);
}

cJSON *egress_consent_extension(const struct egress_cited *c)
{
	cJSON *e = cJSON_CreateObject();
	cJSON *ref = cJSON_CreateObject();
	if (!e || !ref || !cJSON_AddStringToObject(e, "url", EGRESS_CONSENT_URL) ||
	    !cJSON_AddStringToObject(ref, "reference", c->ref) || !cJSON_AddStringToObject(ref, "display", c->scope)) {
		cJSON_Delete(e);
		cJSON_Delete(ref);
		return NULL;
	}
	cJSON_AddItemToObject(e, "valueReference", ref);
	return e;
}

/* The permitting Consents on res's meta (a Bundle's: after the notice). */
static void consents_on(const struct egress_cited *list, size_t n, cJSON *res)
{
	if (!n)
		return;
	cJSON *ext = meta_extensions(res);
	for (size_t i = 0; ext && i < n; i++) {
		cJSON *e = egress_consent_extension(&list[i]);
		if (e)
			cJSON_AddItemToArray(ext, e);
	}
}

void egress_cite_into(struct egress_cited *list, size_t *n, const struct egress *eg)
{
	for (size_t i = 0; i < eg->ncited; i++) {
		bool known = false;
		for (size_t k = 0; k < *n && !known; k++)
			known = !strcmp(list[k].ref, eg->cited[i].ref);
		if (!known && *n < EGRESS_MAX_CITED)
			list[(*n)++] = eg->cited[i];
	}
}

void egress_cite_on(struct http_response *resp, cJSON *res, const struct egress_cited *list, size_t n)
{
	for (size_t i = 0; resp && i < n; i++)
		egress_consent_header(resp, &list[i]);
	if (res)
		consents_on(list, n, res);
}

/* An Encounter withheld from an export: what says it exists and why. */
static cJSON *stub_of(const cJSON *enc)
{
	cJSON *s = cJSON_CreateObject();
	static const char *const keep[] = {"id", "status", "class", "subject", "period", NULL};
	cJSON_AddStringToObject(s, "resourceType", "Encounter");
	for (size_t i = 0; keep[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(enc, keep[i]);
		if (v)
			cJSON_AddItemToObject(s, keep[i], cJSON_Duplicate(v, true));
	}
	cJSON *ext = cJSON_AddArrayToObject(s, "extension");
	cJSON *e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "url", EGRESS_WITHHELD_URL);
	cJSON_AddStringToObject(e, "valueCode", EGRESS_NO_PART2_CONSENT);
	cJSON_AddItemToArray(ext, e);
	return s;
}

/* Decides every entry of bundle with eg (begun and ended by the caller). */
static void filter_with(const struct app *app, struct egress *eg, cJSON *bundle, bool stubs)
{
	const struct http_request *req = eg->req;
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry");
	cJSON *e = entries ? entries->child : NULL;
	size_t removed = 0;
	/* the access record goes to its readers only (a system history, an
	 * _include); not a consent decision, so not on the record as one */
	bool audit_reader = !req || audit_may_read(app->auth, req->principal);
	while (e) {
		cJSON *next = e->next;
		cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *rtype = str(res, "resourceType");
		if (!audit_reader && rtype && !strcmp(rtype, "AuditEvent")) {
			const char *mode = str(cJSON_GetObjectItemCaseSensitive(e, "search"), "mode");
			removed += !mode || !strcmp(mode, "match");
			cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
		} else if (cJSON_IsObject(res) && !egress_allows(eg, res)) {
			const char *type = str(res, "resourceType");
			cJSON *stub = stubs && type && !strcmp(type, "Encounter") ? stub_of(res) : NULL;
			if (stub) {
				cJSON_ReplaceItemInObjectCaseSensitive(e, "resource", stub);
			} else {
				const char *mode = str(cJSON_GetObjectItemCaseSensitive(e, "search"), "mode");
				removed += !mode || !strcmp(mode, "match");
				cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
			}
		}
		e = next;
	}
	cJSON *total = cJSON_GetObjectItemCaseSensitive(bundle, "total");
	const char *btype = str(bundle, "type");
	if (removed && cJSON_IsNumber(total) && btype && !strcmp(btype, "searchset"))
		cJSON_SetNumberValue(total,
				     total->valuedouble > (double)removed ? total->valuedouble - (double)removed : 0);
	if (stubs && entries && !cJSON_GetArraySize(entries))
		cJSON_DeleteItemFromObjectCaseSensitive(bundle, "entry");
	if (stubs && eg->withheld) {
		/* the Bundle's labels are those of what it still holds */
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(bundle, "meta"), "security");
		cJSON *x;
		cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
			seclabel_merge(bundle, cJSON_GetObjectItemCaseSensitive(x, "resource"));
	}
	if (eg->part2)
		notice_on(app, bundle);
	consents_on(eg->cited, eg->ncited, bundle);
}

static size_t filter(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON *bundle,
		     bool stubs)
{
	struct egress eg;
	egress_begin(&eg, app, req);
	filter_with(app, &eg, bundle, stubs);
	size_t withheld = eg.withheld;
	egress_end(&eg, resp);
	return withheld;
}

size_t egress_gathered_with(const struct app *app, struct egress *eg, cJSON *bundle)
{
	size_t before = eg->withheld;
	filter_with(app, eg, bundle, true);
	return eg->withheld - before;
}

void egress_bundle(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON *bundle)
{
	filter(app, req, resp, bundle, false);
}

size_t egress_gathered(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON *bundle)
{
	return filter(app, req, resp, bundle, true);
}

/* What goes with a disclosure eg decided, as header lines. */
static void upstream_lines_of(const struct egress *eg, struct upstream_lines *lines)
{
	if (eg->part2 && eg->notice)
		upstream_lines_add(lines, EGRESS_NOTICE_HEADER, eg->notice);
	for (size_t i = 0; i < eg->ncited; i++) {
		char v[CONSENT_VALUE_SIZE];
		consent_value(&eg->cited[i], v);
		upstream_lines_add(lines, EGRESS_CONSENT_HEADER, v);
	}
}

const char *egress_upstream_decide(const struct app *app, const cJSON *res, struct upstream_lines *lines)
{
	struct egress eg;
	egress_begin(&eg, app, NULL);
	bool ok = egress_allows(&eg, res);
	egress_end(&eg, NULL);
	if (ok && lines)
		upstream_lines_of(&eg, lines);
	return ok ? NULL : EGRESS_NO_PART2_CONSENT;
}

const char *egress_upstream_refuses(const struct app *app, const cJSON *res)
{
	return egress_upstream_decide(app, res, NULL);
}

const char *egress_outbox_filter(void *app, const cJSON *res, struct upstream_lines *lines)
{
	return egress_upstream_decide(app, res, lines);
}

void egress_upstream_body(const struct app *app, const char **body, size_t *len, char **owned,
			  struct upstream_lines *lines)
{
	*owned = NULL;
	if (!*body || !egress_may_need(*body, *len))
		return;
	cJSON *res = cJSON_ParseWithLength(*body, *len);
	if (!res)
		return;
	struct egress eg;
	egress_begin(&eg, app, NULL);
	const char *rt = str(res, "resourceType");
	bool bundle = rt && !strcmp(rt, "Bundle");
	if (!bundle) {
		egress_allows(&eg, res);
	} else {
		/* its entries were each decided before (a refused one refused
		 * them, or got its own answer): this names what permitted them */
		const cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "entry"))
		{
			const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
			if (cJSON_IsObject(r))
				egress_allows(&eg, r);
		}
	}
	egress_end(&eg, NULL);
	upstream_lines_of(&eg, lines);
	if (bundle && (eg.part2 || eg.ncited)) {
		if (eg.part2)
			notice_on(app, res);
		consents_on(eg.cited, eg.ncited, res);
		size_t n = 0;
		char *text = fjson_print(res, false, &n);
		if (text) {
			*owned = text;
			*body = text;
			*len = n;
		}
	}
	cJSON_Delete(res);
}

void egress_notice(const struct app *app, struct http_response *resp, cJSON *res, bool from_part2)
{
	bool part2 = from_part2 || seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "entry")) part2 |=
		seclabel_has(cJSON_GetObjectItemCaseSensitive(e, "resource"), SECLABEL_ACTCODE, SECLABEL_PART2);
	if (!part2 || !app->redisclosure)
		return;
	const char *rt = str(res, "resourceType");
	if (rt && !strcmp(rt, "Bundle"))
		notice_on(app, res);
	http_add_header(resp, EGRESS_NOTICE_HEADER, app->redisclosure);
}
