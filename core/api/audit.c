#include "api/audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/crypto.h"
#include "base/fjson.h"
#include "base/log.h"
#include "base/strbuf.h"

#define DCM "http://dicom.nema.org/resources/ontology/DCM"
#define EVENT_TYPE "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define LIFECYCLE "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
#define INTERACTION "http://hl7.org/fhir/restful-interaction"
#define ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define OBJECT_ROLE "http://terminology.hl7.org/CodeSystem/object-role"
#define ACT_REASON "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#define BALP_ENTITY "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
#define CW_AUDIT "urn:crosswalk:audit"
#define CW_CLIENT "urn:crosswalk:client"
#define CW_OPERATION "urn:crosswalk:operation"

#define MAX_ENTITIES 1000 /* resources named in one record (a page is at most 1,000) */
#define MAX_WITHHELD 1000

struct audit {
	struct store *store;
	const struct config *cfg;
	bool enabled, batch;
	bool deliver; /* AuditEvent routed upstream by name */
	/* batch mode: records waiting for the flusher */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t flusher;
	bool running, stop;
	struct pending_write *queue;
	size_t nqueued; /* records in queue: at most cfg->audit.batch_max */
};

struct held;

struct pending_write {
	struct store_write w;
	struct pending_write *next; /* batch queue */
	struct held *owner;         /* the held answer waiting for it, or NULL */
};

struct withheld {
	char ref[STORE_TYPE_SIZE + STORE_ID_SIZE + 1];
	char reason[64];
};

/* The record of one request (req->app). */
struct audit_rec {
	struct audit *a;
	char client_id[256];
	char fhir_user[256];
	char via[16];
	enum auth_purpose purpose;
	struct withheld *withheld;
	size_t nwithheld;
};

/* ------------------------------------------------------------ helpers */

static void now_instant(char *out, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

/* The record is printed as it is built, straight into its text (no tree):
 * members in the order a tree built the same way would print them. A
 * string given as NULL leaves its member out. */
struct jw {
	struct strbuf b;
	bool more; /* a member or item is already written at this level */
};

static void jw_key(struct jw *w, const char *key)
{
	if (w->more)
		strbuf_addc(&w->b, ',');
	if (key) {
		strbuf_addc(&w->b, '"');
		strbuf_adds(&w->b, key);
		strbuf_add(&w->b, "\":", 2);
	}
}

/* Opens an object ('{') or array ('[') as member key (NULL: an item). */
static void jw_open(struct jw *w, const char *key, char c)
{
	jw_key(w, key);
	strbuf_addc(&w->b, c);
	w->more = false;
}

static void jw_close(struct jw *w, char c)
{
	strbuf_addc(&w->b, c);
	w->more = true;
}

static void jw_str(struct jw *w, const char *key, const char *value)
{
	if (!value)
		return;
	jw_key(w, key);
	fjson_add_string(&w->b, value);
	w->more = true;
}

static void jw_bool(struct jw *w, const char *key, bool value)
{
	jw_key(w, key);
	strbuf_adds(&w->b, value ? "true" : "false");
	w->more = true;
}

static void coding(struct jw *w, const char *key, const char *system, const char *code, const char *display)
{
	jw_open(w, key, '{');
	jw_str(w, "system", system);
	jw_str(w, "code", code);
	jw_str(w, "display", display);
	jw_close(w, '}');
}

static void codeable(struct jw *w, const char *key, const char *system, const char *code, const char *display)
{
	jw_open(w, key, '{');
	jw_open(w, "coding", '[');
	coding(w, NULL, system, code, display);
	jw_close(w, ']');
	jw_close(w, '}');
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static bool audited_path(const char *path)
{
	return strcmp(path, "/healthz") != 0 && strcmp(path, "/metrics") != 0 && strcmp(path, "/fhir/metadata") != 0 &&
	       !starts(path, "/fhir/.well-known/") && strcmp(path, "/auth/jwks") != 0;
}

/* What a request is: the event type and subtype codes and the action. */
struct kind {
	const char *type_system, *type_code, *type_display;
	const char *sub_system, *sub_code;
	const char *action; /* C R U D E */
	bool query;         /* the request's query is recorded */
	char op[64];        /* a FHIR operation's name ("$convert"), or "" */
	bool echo;          /* the answer holds only what the request sent: its content is not named */
};

static bool is_op(const char *seg) { return seg[0] == '$'; }

static struct kind classify(const char *method, const char *path)
{
	struct kind k = {EVENT_TYPE, "rest", "RESTful Operation", INTERACTION, "operation", "E", true, "", false};
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!strcmp(path, "/auth/token"))
		return (struct kind){DCM, "110114", "User Authentication", DCM, "110122", "E", false, "", false};
	if (starts(path, "/ingest/"))
		return (struct kind){EVENT_TYPE, "rest", "RESTful Operation", CW_AUDIT, "ingest", "C", false,
				     "",         false};
	if (starts(path, "/export/"))
		return (struct kind){EVENT_TYPE, "rest", "RESTful Operation", CW_AUDIT, "export", "R", true, "", false};
	if (!starts(path, "/fhir"))
		return k; /* /outbox, /plugins: operations */
	const char *p = path + 5;
	if (*p == '/')
		p++;
	/* up to four segments: type, id, _history, vid */
	char seg[4][128] = {{0}};
	size_t n = 0;
	while (*p && n < 4) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		snprintf(seg[n++], sizeof seg[0], "%.*s", (int)(len < 127 ? len : 127), p);
		p = e ? e + 1 : p + len;
	}
	if (n == 0) {
		if (!strcmp(method, "POST"))
			k.sub_code = "batch", k.query = false;
		else
			k.sub_code = "search-system", k.action = "R";
		return k;
	}
	if (is_op(seg[n - 1])) {
		k.action = strstr(seg[n - 1], "export") ? "R" : "E";
		snprintf(k.op, sizeof k.op, "%.63s", seg[n - 1]);
		/* a conversion or a check answers with what was sent, not with
		 * anything stored: the record names the operation, not that */
		k.echo = !strcmp(k.op, "$convert") || !strcmp(k.op, "$validate");
		return k;
	}
	if (!strcmp(seg[0], "_history"))
		return k.sub_code = "history-system", k.action = "R", k;
	if (n == 1) {
		if (get)
			k.sub_code = "search-type", k.action = "R";
		else if (!strcmp(method, "POST"))
			k.sub_code = "create", k.action = "C", k.query = false;
		else if (!strcmp(method, "PUT") || !strcmp(method, "PATCH"))
			k.sub_code = !strcmp(method, "PUT") ? "update" : "patch", k.action = "U";
		else if (!strcmp(method, "DELETE"))
			k.sub_code = "delete", k.action = "D";
		return k;
	}
	if (!strcmp(seg[1], "_search"))
		return k.sub_code = "search-type", k.action = "R", k;
	if (!strcmp(seg[1], "_history"))
		return k.sub_code = "history-type", k.action = "R", k;
	if (n == 2) {
		k.query = false;
		if (get)
			k.sub_code = "read", k.action = "R";
		else if (!strcmp(method, "PUT"))
			k.sub_code = "update", k.action = "U";
		else if (!strcmp(method, "PATCH"))
			k.sub_code = "patch", k.action = "U";
		else if (!strcmp(method, "DELETE"))
			k.sub_code = "delete", k.action = "D";
		return k;
	}
	k.action = "R";
	k.sub_code = n == 4 ? "vread" : "history-instance";
	return k;
}

static const char *purpose_code(enum auth_purpose p, const char **display)
{
	switch (p) {
	case AUTH_OPERATIONS:
		*display = "healthcare operations";
		return "HOPERAT";
	case AUTH_BILLING:
		*display = "healthcare payment";
		return "HPAYMT";
	case AUTH_RECOVERY:
		*display = "coordination of care";
		return "COC";
	case AUTH_TREATMENT:
	default:
		*display = "treatment";
		return "TREAT";
	}
}

/* ------------------------------------------------------------ entities */

struct entities {
	struct jw *w; /* inside the entity array */
	size_t n;
	/* patients already named (by reference) */
	char patients[16][STORE_ID_SIZE + 8];
	bool named[16]; /* already an entity (a Patient of the answer) */
	size_t npatients;
};

static void add_entity(struct entities *es, const char *ref, const char *role, const char *role_display)
{
	if (es->n >= MAX_ENTITIES)
		return;
	struct jw *w = es->w;
	jw_open(w, NULL, '{');
	jw_open(w, "what", '{');
	jw_str(w, "reference", ref);
	jw_close(w, '}');
	coding(w, "type", ENTITY_TYPE, "2", "System Object");
	coding(w, "role", OBJECT_ROLE, role, role_display);
	jw_close(w, '}');
	es->n++;
}

/* A patient the answer is about (ref "Patient/id"); named: the answer
 * holds that Patient itself, already an entity. */
static void add_patient(struct entities *es, const char *ref, bool named)
{
	if (!ref || !starts(ref, "Patient/") || strlen(ref) >= sizeof es->patients[0])
		return;
	for (size_t i = 0; i < es->npatients; i++)
		if (!strcmp(es->patients[i], ref)) {
			es->named[i] |= named;
			return;
		}
	if (es->npatients < sizeof es->patients / sizeof es->patients[0]) {
		es->named[es->npatients] = named;
		snprintf(es->patients[es->npatients++], sizeof es->patients[0], "%s", ref);
	}
}

static const char *ref_of(const cJSON *res, const char *member)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, member);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "reference");
	return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* One resource of the answer: Type/id/_history/v and its patient. */
static void add_resource(struct entities *es, const cJSON *res)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
	if (!cJSON_IsString(rt) || !cJSON_IsString(id) || !strcmp(rt->valuestring, "OperationOutcome"))
		return;
	const cJSON *vid = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "versionId");
	char ref[300];
	if (cJSON_IsString(vid))
		snprintf(ref, sizeof ref, "%.64s/%.64s/_history/%.32s", rt->valuestring, id->valuestring,
			 vid->valuestring);
	else
		snprintf(ref, sizeof ref, "%.64s/%.64s", rt->valuestring, id->valuestring);
	if (!strcmp(rt->valuestring, "Patient")) {
		char p[STORE_ID_SIZE + 8];
		snprintf(p, sizeof p, "Patient/%.64s", id->valuestring);
		add_patient(es, p, true);
		return add_entity(es, ref, "1", "Patient");
	}
	add_entity(es, ref, "4", "Domain Resource");
	const char *pr = ref_of(res, "subject");
	add_patient(es, pr ? pr : ref_of(res, "patient"), false);
}

/* What the answer names: a Bundle's resources, or the resource. */
static void add_answer(struct entities *es, const struct http_response *resp)
{
	if (!resp->body || !resp->body_len || !resp->content_type || !strstr(resp->content_type, "json"))
		return;
	/* read only, so built in an arena (no malloc per node); the gateway's
	 * own answer, so read whatever its size, as purpose_answer does */
	struct fjson_limits lim;
	fjson_limits_for_len(&lim, resp->body_len);
	struct arena a;
	arena_init(&a, lim.memory_budget * 2 + ((size_t)1 << 20));
	cJSON *tree = fjson_parse_in(&a, resp->body, resp->body_len, &lim, NULL);
	/* what the strict reader refuses (an upstream's answer) as before */
	cJSON *lenient = tree ? NULL : cJSON_ParseWithLength(resp->body, resp->body_len);
	if (!tree)
		tree = lenient;
	if (!tree) {
		arena_release(&a);
		return;
	}
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(tree, "resourceType");
	if (cJSON_IsString(rt) && !strcmp(rt->valuestring, "Bundle")) {
		const cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tree, "entry"))
		{
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
			if (res)
				add_resource(es, res);
		}
	} else {
		add_resource(es, tree);
	}
	cJSON_Delete(lenient);
	arena_release(&a);
}

static int add_param(void *ctx, const char *name, const char *value)
{
	struct strbuf *b = ctx;
	if (b->len)
		strbuf_addc(b, '&');
	strbuf_adds(b, name);
	strbuf_addc(b, '=');
	strbuf_adds(b, value);
	return 0;
}

/* The query entity: q (len bytes) base64 as AuditEvent.entity.query. */
static void add_query_text(struct entities *es, const char *q, size_t len)
{
	char *enc = malloc(len / 3 * 4 + 8);
	if (enc && crypto_b64_encode(q, len, enc, len / 3 * 4 + 8)) {
		struct jw *w = es->w;
		jw_open(w, NULL, '{');
		coding(w, "type", ENTITY_TYPE, "2", "System Object");
		coding(w, "role", OBJECT_ROLE, "24", "Query");
		jw_str(w, "query", enc);
		jw_close(w, '}');
	}
	free(enc);
}

/* The query entity: the request's query (and a POST search's form body),
 * base64 as AuditEvent.entity.query. */
static void add_query(struct entities *es, const struct http_request *req)
{
	struct strbuf b = STRBUF_INIT;
	http_query_each(req, add_param, &b);
	const char *ct = http_header(req, "Content-Type");
	if (!strcmp(req->method, "POST") && ct && strstr(ct, "x-www-form-urlencoded") && req->body_len) {
		if (b.len)
			strbuf_addc(&b, '&');
		strbuf_add(&b, req->body, req->body_len);
	}
	size_t len;
	char *q = strbuf_take(&b, &len);
	if (!q)
		return;
	add_query_text(es, q, len);
	free(q);
}
/* The request's X-Request-Id (BALP's transaction entity). */
static void add_request_id(struct jw *w, const char *request_id)
{
	jw_open(w, NULL, '{');
	jw_open(w, "what", '{');
	jw_open(w, "identifier", '{');
	codeable(w, "type", BALP_ENTITY, "XrequestId", "X-Request-Id");
	jw_str(w, "value", request_id);
	jw_close(w, '}');
	jw_close(w, '}');
	coding(w, "type", BALP_ENTITY, "XrequestId", "X-Request-Id");
	jw_close(w, '}');
}

/* ------------------------------------------------------------ events */

static void purpose_of_use(struct jw *w, enum auth_purpose purpose)
{
	const char *disp, *code = purpose_code(purpose, &disp);
	jw_open(w, "purposeOfUse", '[');
	codeable(w, NULL, ACT_REASON, code, disp);
	jw_close(w, ']');
}

static void network(struct jw *w, const char *address, const char *type)
{
	if (!address || !*address)
		return;
	jw_open(w, "network", '{');
	jw_str(w, "address", address);
	jw_str(w, "type", type);
	jw_close(w, '}');
}

static void agent_client(struct jw *w, const struct audit_rec *r, const char *address)
{
	jw_open(w, NULL, '{');
	codeable(w, "type", DCM, "110153", "Source Role ID");
	jw_open(w, "who", '{');
	if (r && r->client_id[0]) {
		jw_open(w, "identifier", '{');
		jw_str(w, "system", CW_CLIENT);
		jw_str(w, "value", r->client_id);
		jw_close(w, '}');
		jw_str(w, "display", r->client_id);
	} else {
		jw_str(w, "display", "anonymous");
	}
	jw_close(w, '}');
	jw_bool(w, "requestor", true);
	if (r && r->client_id[0] && r->via[0])
		purpose_of_use(w, r->purpose);
	network(w, address, "2");
	jw_close(w, '}');
}

static void agent_user(struct jw *w, const struct audit_rec *r)
{
	jw_open(w, NULL, '{');
	codeable(w, "type", "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP",
		 "information recipient");
	jw_open(w, "who", '{');
	jw_str(w, "reference", r->fhir_user);
	jw_close(w, '}');
	jw_bool(w, "requestor", true);
	purpose_of_use(w, r->purpose);
	jw_close(w, '}');
}

/* A system taking part: the gateway or the upstream (who named by display),
 * as source (110153, the requestor) or destination (110152). */
static void agent_system(struct jw *w, bool source, const char *display, const char *address, const char *net_type)
{
	jw_open(w, NULL, '{');
	if (source)
		codeable(w, "type", DCM, "110153", "Source Role ID");
	else
		codeable(w, "type", DCM, "110152", "Destination Role ID");
	jw_open(w, "who", '{');
	jw_str(w, "display", display);
	jw_close(w, '}');
	jw_bool(w, "requestor", source);
	network(w, address, net_type);
	jw_close(w, '}');
}

/* The frame every event shares: type, subtype, action, recorded, outcome;
 * the object is left open for the agents, the source and the entities. */
static void event_open(struct jw *w, const struct kind *k, int status, const char *desc)
{
	jw_open(w, NULL, '{');
	jw_str(w, "resourceType", "AuditEvent");
	coding(w, "type", k->type_system, k->type_code, k->type_display);
	jw_open(w, "subtype", '[');
	coding(w, NULL, k->sub_system, k->sub_code, NULL);
	if (k->op[0])
		coding(w, NULL, CW_OPERATION, k->op, NULL);
	jw_close(w, ']');
	jw_str(w, "action", k->action);
	char when[64];
	now_instant(when, sizeof when);
	jw_str(w, "recorded", when);
	jw_str(w, "outcome", status < 400 ? "0" : status < 500 ? "4" : "8");
	jw_str(w, "outcomeDesc", desc);
}

/* Closes the event and hands its text over (NULL when out of memory). */
static char *event_close(struct jw *w)
{
	jw_close(w, '}');
	return strbuf_take(&w->b, NULL);
}

static void add_source(struct jw *w, const char *authority)
{
	jw_open(w, "source", '{');
	if (authority && *authority)
		jw_str(w, "site", authority);
	jw_open(w, "observer", '{');
	jw_str(w, "display", "Crosswalk FHIR gateway");
	jw_close(w, '}');
	jw_open(w, "type", '[');
	coding(w, NULL, "http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server");
	jw_close(w, ']');
	jw_close(w, '}');
}

static void add_agents(struct jw *w, const struct audit_rec *r, const struct http_request *req)
{
	jw_open(w, "agent", '[');
	agent_client(w, r, req->client);
	if (r && r->fhir_user[0])
		agent_user(w, r);
	agent_system(w, false, "Crosswalk FHIR gateway", req->authority, "1");
	jw_close(w, ']');
}

/* A token request's client: the iss of its client assertion (the token
 * endpoint verified it when it answered 200). */
static void token_client(struct audit_rec *r, const struct http_request *req)
{
	const char *a = strstr(req->body, "client_assertion=");
	if (!a)
		return;
	a += 17;
	const char *dot1 = strchr(a, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || dot2 - dot1 - 1 > 8192)
		return;
	uint8_t claims[6200];
	long n = crypto_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), claims, sizeof claims);
	cJSON *c = n > 0 ? cJSON_ParseWithLength((const char *)claims, (size_t)n) : NULL;
	const char *iss = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "iss"));
	if (iss)
		snprintf(r->client_id, sizeof r->client_id, "%s", iss);
	cJSON_Delete(c);
}

/* The request's own event. */
static char *request_event(struct audit_rec *r, const struct http_request *req, const struct http_response *resp)
{
	struct kind k = classify(req->method, req->path);
	if (!strcmp(req->path, "/auth/token") && resp->status == 200 && !r->client_id[0])
		token_client(r, req);
	char desc[128];
	if (resp->status >= 400)
		snprintf(desc, sizeof desc, "%d %s: %s %.80s", resp->status, http_reason(resp->status), req->method,
			 req->path);
	struct jw w = {STRBUF_INIT, false};
	event_open(&w, &k, resp->status, resp->status >= 400 ? desc : NULL);
	add_agents(&w, r, req);
	add_source(&w, req->authority);
	jw_open(&w, "entity", '[');
	struct entities es = {.w = &w};
	add_request_id(&w, req->request_id);
	if (resp->status < 400) {
		const char *loc = NULL;
		for (size_t i = 0; i < resp->nheaders; i++)
			if (!strcasecmp(resp->headers[i].name, "Location"))
				loc = resp->headers[i].value;
		const char *fhir = loc ? strstr(loc, "/fhir/") : NULL;
		if (fhir && !strcmp(k.action, "C") && strcmp(k.sub_code, "batch") != 0)
			add_entity(&es, fhir + 6, "4", "Domain Resource");
		else if (!strcmp(k.action, "D") && req->path[5] == '/')
			add_entity(&es, req->path + 6, "4", "Domain Resource");
		else if (!k.echo)
			add_answer(&es, resp);
	} else if (!strcmp(k.sub_code, "read") || !strcmp(k.sub_code, "update") || !strcmp(k.sub_code, "delete") ||
		   !strcmp(k.sub_code, "patch") || !strcmp(k.sub_code, "vread")) {
		/* refused or failed: what was asked for */
		add_entity(&es, req->path + 6, "4", "Domain Resource");
	}
	for (size_t i = 0; i < es.npatients; i++)
		if (!es.named[i])
			add_entity(&es, es.patients[i], "1", "Patient");
	if (k.query)
		add_query(&es, req);
	jw_close(&w, ']');
	return event_close(&w);
}

/* The consent decision's event: every resource withheld from the answer. */
static char *withheld_event(const struct audit_rec *r, const struct http_request *req)
{
	struct kind k = {
		LIFECYCLE, "access", "Access/View Record Lifecycle Event", CW_AUDIT, "consent-withheld", "R", false,
		"",        false};
	char desc[160];
	snprintf(desc, sizeof desc, "%zu resource%s withheld by consent (%s)", r->nwithheld,
		 r->nwithheld == 1 ? "" : "s", r->withheld[0].reason);
	struct jw w = {STRBUF_INIT, false};
	event_open(&w, &k, 200, desc);
	add_agents(&w, r, req);
	add_source(&w, req->authority);
	jw_open(&w, "entity", '[');
	add_request_id(&w, req->request_id);
	for (size_t i = 0; i < r->nwithheld; i++) {
		jw_open(&w, NULL, '{');
		jw_open(&w, "what", '{');
		jw_str(&w, "reference", r->withheld[i].ref);
		jw_close(&w, '}');
		coding(&w, "type", ENTITY_TYPE, "2", "System Object");
		coding(&w, "role", OBJECT_ROLE, "4", "Domain Resource");
		jw_str(&w, "description", r->withheld[i].reason);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	return event_close(&w);
}

/* ------------------------------------------------------------ writing */

static void pending_free(struct pending_write *p)
{
	store_write_release(&p->w);
	free(p);
}

/* A record's write, taking its text ev (NULL: none, out of memory). */
static struct pending_write *pending_new(const struct audit *a, char *ev)
{
	struct pending_write *p = ev ? calloc(1, sizeof *p) : NULL;
	if (!p) {
		free(ev);
		return NULL;
	}
	p->w.kind = STORE_WRITE_CREATE;
	memcpy(p->w.type, "AuditEvent", sizeof "AuditEvent");
	p->w.text = ev;
	/* delivered upstream only when the type is routed by name (a "*" route
	 * is for the data written): its outbox row commits with it */
	p->w.deliver = a->deliver;
	/* not delivered: an appended record, one log row in its commit and
	 * indexed later in bulk (store.h) */
	p->w.append = !a->deliver;
	return p;
}

static void note_lost(const struct store_write *w)
{
	log_event(LOG_ERROR, "audit_lost", "an audit record could not be written", "reason", w->err.message,
		  (const char *)NULL);
}

/* batch and outbox records: nobody waits for them */
static void loose_done(void *ctx)
{
	struct pending_write *p = ctx;
	if (p->w.status != STORE_OK)
		note_lost(&p->w);
	pending_free(p);
}

static void submit_loose(struct audit *a, struct pending_write *p)
{
	p->w.done = loose_done;
	p->w.ctx = p;
	if (store_submit(a->store, &p->w, NULL) != STORE_OK) {
		note_lost(&p->w);
		pending_free(p);
	}
}

static void *flusher_main(void *arg)
{
	struct audit *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stop || a->queue) {
		struct pending_write *q = a->queue;
		a->queue = NULL;
		a->nqueued = 0;
		pthread_mutex_unlock(&a->mu);
		while (q) {
			struct pending_write *next = q->next;
			submit_loose(a, q);
			q = next;
		}
		pthread_mutex_lock(&a->mu);
		if (a->stop)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + a->cfg->audit.flush_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&a->cv, &a->mu, &ts);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Takes n records into the batch queue unless it would then hold more than
 * batch_max: false then, and nothing is taken (the caller writes them
 * itself, and the flusher is woken to write the backlog now). */
static bool enqueue_batch(struct audit *a, struct pending_write **p, size_t n)
{
	pthread_mutex_lock(&a->mu);
	bool room = a->nqueued + n <= a->cfg->audit.batch_max;
	for (size_t i = 0; room && i < n; i++) {
		p[i]->next = a->queue; /* order inside a window does not matter: each is stamped */
		a->queue = p[i];
		a->nqueued++;
	}
	if (!room)
		pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return room;
}

/* A held answer: its records, and how many are not yet committed. */
struct held {
	struct http_request *req;
	struct pending_write *w[2];
	size_t n;
	atomic_int left;
	atomic_int failed; /* enum store_status of a failed one, 0 when none */
};

static void held_done(void *ctx)
{
	struct pending_write *p = ctx;
	struct held *h = p->owner;
	if (p->w.status != STORE_OK)
		atomic_store(&h->failed, (int)p->w.status);
	if (atomic_fetch_sub(&h->left, 1) == 1)
		http_wake(h->req);
}

static void held_release(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	struct held *h = ctx;
	int failed = atomic_load(&h->failed);
	if (failed) {
		enum store_status st = (enum store_status)failed;
		const char *why = store_status_text(st);
		for (size_t i = 0; i < h->n; i++)
			if (h->w[i]->w.status != STORE_OK) {
				note_lost(&h->w[i]->w);
				if (h->w[i]->w.err.message[0])
					why = h->w[i]->w.err.message;
			}
		/* a refusal or failure discloses nothing and stays as it is;
		 * anything else is withheld with the storage's status */
		if (resp->status < 400) {
			int code = store_status_http(st);
			http_set_error(resp, code >= 500 ? code : 503, code == 507 ? "exception" : "transient",
				       "the audit record of this request could not be written (%s); its answer is "
				       "withheld",
				       why);
			if (code == 503)
				http_add_header(resp, "Retry-After", "1");
		}
	}
	for (size_t i = 0; i < h->n; i++)
		pending_free(h->w[i]);
	free(h);
}

/* Holds resp until evs (n of them, taken) are committed. */
static void submit_held(struct audit *a, struct http_request *req, struct http_response *resp, char **evs, size_t n)
{
	struct held *h = calloc(1, sizeof *h);
	if (h) {
		for (size_t i = 0; i < n; i++) {
			h->w[i] = pending_new(a, evs[i]);
			evs[i] = NULL;
			if (h->w[i])
				h->n++;
			else
				atomic_store(&h->failed, (int)STORE_NO_MEMORY);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(evs[i]);
	if (!h) {
		http_set_error(resp, 503, "transient", "the audit record of this request could not be written");
		return;
	}
	h->req = req;
	atomic_store(&h->left, (int)h->n + 1); /* + this thread, until every submit is made */
	http_defer(req, held_release, h);
	for (size_t i = 0; i < h->n; i++) {
		struct pending_write *p = h->w[i];
		p->owner = h;
		p->w.done = held_done;
		p->w.ctx = p;
		if (store_submit(a->store, &p->w, NULL) != STORE_OK) {
			atomic_store(&h->failed, (int)p->w.status);
			atomic_fetch_sub(&h->left, 1);
		}
	}
	if (atomic_fetch_sub(&h->left, 1) == 1)
		http_wake(req);
}

/* ------------------------------------------------------------ interface */

struct audit *audit_start(struct store *st, const struct config *cfg, char *err, size_t errlen)
{
	struct audit *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->store = st;
	a->cfg = cfg;
	a->enabled = cfg->audit.enabled;
	a->batch = cfg->audit.durability && !strcmp(cfg->audit.durability, "batch");
	a->deliver = cJSON_GetObjectItemCaseSensitive(cfg->upstream.routes, "AuditEvent") &&
		     config_delivers(cfg, "AuditEvent");
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (a->enabled && a->batch) {
		if (pthread_create(&a->flusher, NULL, flusher_main, a) != 0) {
			snprintf(err, errlen, "cannot start the audit writer");
			audit_stop(a);
			return NULL;
		}
		a->running = true;
	}
	return a;
}

void audit_drain(struct audit *a)
{
	if (!a || !a->running)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->flusher, NULL);
	a->running = false;
}

void audit_stop(struct audit *a)
{
	if (!a)
		return;
	audit_drain(a);
	/* records queued after the drain (a request still finishing) */
	while (a->queue) {
		struct pending_write *next = a->queue->next;
		pending_free(a->queue);
		a->queue = next;
	}
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}

static void rec_free(void *p)
{
	struct audit_rec *r = p;
	if (r)
		free(r->withheld);
	free(r);
}

void audit_request_begin(struct audit *a, struct http_request *req)
{
	if (!a || !a->enabled || req->app || !audited_path(req->path))
		return;
	struct audit_rec *r = calloc(1, sizeof *r);
	if (!r)
		return;
	r->a = a;
	req->app = r;
	req->app_free = rec_free;
}

void audit_request_who(struct http_request *req, const struct auth_principal *who)
{
	struct audit_rec *r = req->app_free == rec_free ? req->app : NULL;
	if (!r || !who)
		return;
	snprintf(r->client_id, sizeof r->client_id, "%s", who->client_id ? who->client_id : "");
	snprintf(r->fhir_user, sizeof r->fhir_user, "%s", who->fhir_user);
	snprintf(r->via, sizeof r->via, "%s", who->via ? who->via : "");
	r->purpose = who->purpose;
}

void audit_withheld(struct http_request *req, const char *type, const char *id, const char *reason)
{
	struct audit_rec *r = req && req->app_free == rec_free ? req->app : NULL;
	if (!r || r->nwithheld >= MAX_WITHHELD)
		return;
	if (r->nwithheld % 16 == 0) {
		struct withheld *nw = realloc(r->withheld, (r->nwithheld + 16) * sizeof *nw);
		if (!nw)
			return;
		r->withheld = nw;
	}
	struct withheld *w = &r->withheld[r->nwithheld++];
	snprintf(w->ref, sizeof w->ref, "%.64s/%.64s", type, id);
	snprintf(w->reason, sizeof w->reason, "%s", reason && *reason ? reason : "withheld");
}

void audit_request_finish(struct audit *a, struct http_request *req, struct http_response *resp)
{
	struct audit_rec *r = req->app_free == rec_free ? req->app : NULL;
	if (!a || !r)
		return;
	char *evs[2] = {request_event(r, req, resp), r->nwithheld ? withheld_event(r, req) : NULL};
	size_t n = r->nwithheld ? 2 : 1;
	if (a->batch) {
		struct pending_write *p[2] = {NULL, NULL};
		bool made = true;
		for (size_t i = 0; i < n; i++)
			made &= (p[i] = pending_new(a, evs[i])) != NULL;
		if (made && enqueue_batch(a, p, n))
			return;
		/* the queue is full (or no memory): back-pressure, this answer
		 * waits for its own records as a durable one would */
		for (size_t i = 0; i < n; i++) {
			evs[i] = p[i] ? p[i]->w.text : NULL;
			if (p[i]) {
				p[i]->w.text = NULL;
				pending_free(p[i]);
			}
		}
		if (!made) {
			for (size_t i = 0; i < n; i++)
				free(evs[i]);
			http_set_error(resp, 503, "transient", "the audit record of this request could not be written");
			return;
		}
	}
	submit_held(a, req, resp, evs, n);
}

void audit_request_refused(struct audit *a, const struct http_request *req, const struct http_response *resp)
{
	if (!a || !a->enabled || !audited_path(req->path))
		return;
	struct audit_rec r = {.a = a}; /* nobody was identified */
	struct pending_write *p = pending_new(a, request_event(&r, req, resp));
	if (!p)
		return;
	if (!a->batch || !enqueue_batch(a, &p, 1))
		submit_loose(a, p);
}

void audit_delivery(struct audit *a, const char *type, const char *id, int64_t version, bool deleted, int http_status,
		    const char *error)
{
	if (!a || !a->enabled || !strcmp(type, "AuditEvent"))
		return;
	struct kind k = {DCM, "110106", "Export", INTERACTION, deleted ? "delete" : "update", "E", false, "", false};
	char desc[300];
	if (http_status < 200 || http_status >= 300)
		snprintf(desc, sizeof desc, "delivery to the upstream failed: %s%s%.200s",
			 http_status ? http_reason(http_status) : "", http_status && error && *error ? ": " : "",
			 error ? error : "");
	struct jw w = {STRBUF_INIT, false};
	event_open(&w, &k,
		   http_status >= 200 && http_status < 300 ? 200
		   : http_status                           ? http_status
							   : 500,
		   http_status >= 200 && http_status < 300 ? NULL : desc);
	jw_open(&w, "agent", '[');
	agent_system(&w, true, "Crosswalk FHIR gateway", NULL, NULL);
	agent_system(&w, false, "upstream FHIR server", a->cfg->upstream.base_url, "5");
	jw_close(&w, ']');
	add_source(&w, NULL);
	jw_open(&w, "entity", '[');
	struct entities es = {.w = &w};
	char ref[200];
	snprintf(ref, sizeof ref, "%.64s/%.64s/_history/%lld", type, id, (long long)version);
	add_entity(&es, ref, "4", "Domain Resource");
	jw_close(&w, ']');
	struct pending_write *p = pending_new(a, event_close(&w));
	if (!p)
		return;
	if (!a->batch || !enqueue_batch(a, &p, 1))
		submit_loose(a, p); /* a full batch queue: straight to the commit queue */
}

bool audit_scopes_admit(const char *scopes)
{
	const char *s = scopes ? scopes : "";
	for (const char *q = s; (q = strstr(q, "system/crosswalk.admin")); q += 22)
		if ((q == s || q[-1] == ' ') && (q[22] == '\0' || q[22] == ' '))
			return true;
	return false;
}

bool audit_may_read(const struct auth *auth, const struct auth_principal *who)
{
	if (!auth_enabled(auth) || (who && !strcmp(who->via ? who->via : "", "loopback")))
		return true;
	return who && audit_scopes_admit(who->scopes);
}

bool audit_guard(const struct auth *auth, const struct auth_principal *who, const struct http_request *req,
		 struct http_response *resp)
{
	const char *p = req->path;
	if (!starts(p, "/fhir/AuditEvent") || (p[16] && p[16] != '/'))
		return false;
	const char *last = strrchr(p, '/');
	bool search = !strcmp(req->method, "POST") && (!strcmp(p + 16, "/_search") || (last && last[1] == '$'));
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 && !search) {
		http_set_error(resp, 405, "not-supported",
			       "AuditEvents are written by the gateway only and never changed");
		http_add_header(resp, "Allow", "GET, HEAD");
		return true;
	}
	if (audit_may_read(auth, who))
		return false;
	http_set_error(resp, 403, "forbidden", "reading AuditEvents needs the scope system/crosswalk.admin");
	return true;
}

/* An Encounter an export kept as a stub for what consent withheld
 * (api/egress.h): named among the withheld, not as disclosed. */
static bool audit_is_withheld_stub(const cJSON *res)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(res, "extension"))
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "url"));
		static const char tail[] = "/StructureDefinition/withheld";
		size_t n = url ? strlen(url) : 0;
		if (n >= sizeof tail - 1 && !strcmp(url + n - (sizeof tail - 1), tail))
			return true;
	}
	return false;
}

/* A printed event back as a tree (commands: a run makes one or two). */
static cJSON *event_tree(char *text)
{
	cJSON *t = text ? cJSON_Parse(text) : NULL;
	free(text);
	return t;
}

size_t audit_disclosure_events(const struct audit_disclosure *d, cJSON *evs[2])
{
	struct audit_rec r = {.purpose = d->purpose};
	snprintf(r.client_id, sizeof r.client_id, "%s", d->client_id ? d->client_id : "local-operator");
	snprintf(r.via, sizeof r.via, "command");
	/* the command's run stands for the request: no address, no server */
	struct http_request req = {.method = "GET", .path = "", .request_id = d->run_id};
	struct kind k = {EVENT_TYPE, "rest", "RESTful Operation", CW_AUDIT, d->subtype, "R", true, "", false};
	char desc[128];
	if (d->status >= 400)
		snprintf(desc, sizeof desc, "%d: %.80s", d->status, d->subtype);
	struct jw w = {STRBUF_INIT, false};
	event_open(&w, &k, d->status, d->status >= 400 ? desc : NULL);
	add_agents(&w, &r, &req);
	add_source(&w, NULL);
	jw_open(&w, "entity", '[');
	struct entities es = {.w = &w};
	add_request_id(&w, d->run_id);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d->disclosed, "entry"))
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (res && !audit_is_withheld_stub(res))
			add_resource(&es, res);
	}
	for (size_t i = 0; i < es.npatients; i++)
		if (!es.named[i])
			add_entity(&es, es.patients[i], "1", "Patient");
	if (d->query)
		add_query_text(&es, d->query, strlen(d->query));
	jw_close(&w, ']');
	evs[0] = event_tree(event_close(&w));
	evs[1] = NULL;
	if (!evs[0])
		return 0;
	if (!d->nwithheld)
		return 1;
	r.withheld = calloc(d->nwithheld, sizeof *r.withheld);
	if (!r.withheld)
		return 1;
	for (size_t i = 0; i < d->nwithheld && i < MAX_WITHHELD; i++, r.nwithheld++) {
		snprintf(r.withheld[i].ref, sizeof r.withheld[i].ref, "%s", d->withheld[i]);
		snprintf(r.withheld[i].reason, sizeof r.withheld[i].reason, "%s", d->reason ? d->reason : "withheld");
	}
	evs[1] = event_tree(withheld_event(&r, &req));
	free(r.withheld);
	return evs[1] ? 2 : 1;
}
