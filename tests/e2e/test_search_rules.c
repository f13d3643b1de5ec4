/* End-to-end differential run of search. Generated searches over the corpus
 * (the Synthea transaction Bundles, and the official R4 examples of Patient
 * and of the types whose parameters have branches evaluated with FHIRPath),
 * each answer judged against one computed here from the stored resources by
 * the R4 search rules: the values of each parameter come from evaluating its
 * expression with the FHIRPath engine (not the indexer's path walk), and they
 * are compared by this file's own rules — tokens by code and by
 * system|code, references and URIs as written, strings starting with the
 * value ignoring case and accents (and :exact, :contains), dates on ranges
 * for the prefixes eq, lt, gt, le, ge, sa and eb, and :missing for every
 * parameter. Number and quantity parameters are checked by :missing only
 * (their equality depends on the value's precision, tested in test_store).
 * Bundle's composition and message are judged over document and message
 * Bundles made from the stored Encounters (and the official message
 * example): every parameter of the first entry's Composition or
 * MessageHeader, chained (Bundle?composition.title=…), with its values
 * evaluated over that entry, and on through its references to stored
 * resources.
 *
 * Bounded: CW_DIFF_BUNDLES Synthea Bundles (default 4 of 13),
 * CW_DIFF_VALUES values per parameter (default 2) and CW_DIFF_MAX searches in
 * all (default 3000); a wider run sets them higher. Every search where Crosswalk's answer
 * differs is listed, then the test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "e2e/harness.h"
#include "e2e/plugin_kit.h"
#include "fhir/fhirpath.h"
#include "fhir/fold.h"
#include "fhir/model_query.h"
#include "fhir/search_params.h"

static struct gw gw;
static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

/* The types loaded from the official examples besides the Synthea Bundles:
 * Patient (deceased) and those with relatedArtifact branches. */
static const char *const example_types[] = {
	"Patient",         "Library",  "Measure",          "ActivityDefinition", "PlanDefinition",
	"EventDefinition", "Evidence", "EvidenceVariable", "ResearchDefinition", "ResearchElementDefinition"};

/* The stored resources by type, as the gateway answers them. */
struct typed {
	char name[64];
	cJSON *all; /* array */
};
static struct typed types[64];
static size_t ntypes;

static const cJSON *g(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = g(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : dflt;
}

static struct typed *typed_of(const char *name)
{
	for (size_t i = 0; i < ntypes; i++)
		if (!strcmp(types[i].name, name))
			return &types[i];
	if (ntypes == sizeof types / sizeof types[0])
		return NULL;
	struct typed *t = &types[ntypes++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->all = cJSON_CreateArray();
	return t;
}

static int post(const char *method, const char *path, const char *body, size_t len, long *status)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	int rc = http_do(&gw, method, path, fj, body, len, &r);
	*status = r.status;
	resp_free(&r);
	return rc;
}

static bool is_example_type(const char *t)
{
	for (size_t i = 0; i < sizeof example_types / sizeof example_types[0]; i++)
		if (!strcmp(t, example_types[i]))
			return true;
	return false;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The first CW_DIFF_BUNDLES (default 4) Synthea Bundles by name. */
static int load_synthea(void)
{
	char dir[512];
	corpus_path(dir, sizeof dir, "fhir-r4/synthea");
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	char *names[64];
	size_t nn = 0;
	while ((de = readdir(d)) != NULL && nn < 64)
		if (strstr(de->d_name, ".json"))
			names[nn++] = strdup(de->d_name);
	closedir(d);
	qsort(names, nn, sizeof names[0], cmp_name);
	size_t want = (size_t)env_long("CW_DIFF_BUNDLES", 4);
	int rc = nn >= want ? 0 : -1;
	for (size_t i = 0; i < nn; i++) {
		if (rc == 0 && i < want) {
			char path[1024];
			snprintf(path, sizeof path, "%.500s/%.255s", dir, names[i]);
			size_t len = 0;
			char *text = tk_slurp(path, &len);
			long status = 0;
			if (!text || post("POST", "/fhir", text, len, &status) != 0 || status != 200) {
				print_message("# %s: %ld\n", names[i], status);
				rc = -1;
			}
			free(text);
		}
		free(names[i]);
	}
	return rc;
}

/* The official examples of example_types, each PUT with its id; those the
 * gateway refuses (a few examples break R4's own rules) are left out. */
static int load_examples(void)
{
	char dir[512];
	corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json");
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	int stored = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strstr(de->d_name, ".json"))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%.500s/%.255s", dir, de->d_name);
		size_t len = 0;
		char *text = tk_slurp(path, &len);
		cJSON *j = text ? cJSON_Parse(text) : NULL;
		const char *rt = s(j, "resourceType"), *id = s(j, "id");
		if (rt && id && is_example_type(rt)) {
			char url[300];
			snprintf(url, sizeof url, "/fhir/%s/%s", rt, id);
			long status = 0;
			if (post("PUT", url, text, len, &status) == 0 && (status == 200 || status == 201))
				stored++;
		}
		cJSON_Delete(j);
		free(text);
	}
	closedir(d);
	if (stored <= 40)
		print_message("# %d examples stored\n", stored);
	return stored > 40 ? 0 : -1;
}

/* Document and message Bundles about the first stored Encounters (the
 * Composition or MessageHeader first, then the Encounter; every third
 * Composition without an id), the official message example, and a
 * collection whose first entry is a Patient. */
static int load_bundles(const struct typed *encounters)
{
	static const char *const loinc[] = {"34133-9", "11488-4", "18842-5"};
	static const char *const status[] = {"final", "preliminary", "amended"};
	int n = cJSON_GetArraySize(encounters->all), stored = 0;
	for (int i = 0; i < n && i < 24; i++) {
		const cJSON *enc = cJSON_GetArrayItem(encounters->all, i);
		const char *eid = s(enc, "id"), *subject = s(g(enc, "subject"), "reference");
		const char *start = s(g(enc, "period"), "start"), *org = s(g(enc, "serviceProvider"), "reference");
		const char *title = s(cJSON_GetArrayItem(g(enc, "type"), 0), "text");
		if (!eid || !subject || !start)
			continue;
		char eref[128];
		snprintf(eref, sizeof eref, "Encounter/%s", eid);
		cJSON *comp = cJSON_CreateObject();
		cJSON_AddStringToObject(comp, "resourceType", "Composition");
		if (i % 3 != 2) {
			char cid[64];
			snprintf(cid, sizeof cid, "comp-%d", i);
			cJSON_AddStringToObject(comp, "id", cid);
		}
		cJSON_AddStringToObject(comp, "status", status[i % 3]);
		cJSON *coding = cJSON_AddArrayToObject(cJSON_AddObjectToObject(comp, "type"), "coding");
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "system", "http://loinc.org");
		cJSON_AddStringToObject(c, "code", loinc[i % 3]);
		cJSON_AddItemToArray(coding, c);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(comp, "subject"), "reference", subject);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(comp, "encounter"), "reference", eref);
		cJSON_AddStringToObject(comp, "date", start);
		cJSON *author = cJSON_CreateObject();
		cJSON_AddStringToObject(author, "reference", org && !strncmp(org, "Organization/", 13) ? org : subject);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(comp, "author"), author);
		cJSON_AddStringToObject(comp, "title", title ? title : "Encounter note");
		cJSON_AddStringToObject(comp, "confidentiality", i % 2 ? "N" : "R");
		cJSON *head = cJSON_CreateObject();
		cJSON_AddStringToObject(head, "resourceType", "MessageHeader");
		char hid[64];
		snprintf(hid, sizeof hid, "head-%d", i);
		cJSON_AddStringToObject(head, "id", hid);
		cJSON *ev = cJSON_AddObjectToObject(head, "eventCoding");
		cJSON_AddStringToObject(ev, "system", "http://example.org/fhir/message-events");
		cJSON_AddStringToObject(ev, "code", i % 2 ? "encounter-update" : "admin-notify");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(head, "source"), "endpoint",
					"http://example.org/fhir/ehr");
		cJSON *focus = cJSON_AddArrayToObject(head, "focus");
		cJSON *f1 = cJSON_CreateObject(), *f2 = cJSON_CreateObject();
		cJSON_AddStringToObject(f1, "reference", eref);
		cJSON_AddStringToObject(f2, "reference", subject);
		cJSON_AddItemToArray(focus, f1);
		cJSON_AddItemToArray(focus, f2);
		cJSON *first[] = {comp, head};
		for (int k = 0; k < 2; k++) {
			cJSON *b = cJSON_CreateObject();
			char bid[64], url[128], full[200];
			snprintf(bid, sizeof bid, "%s-%d", k ? "message" : "document", i);
			cJSON_AddStringToObject(b, "resourceType", "Bundle");
			cJSON_AddStringToObject(b, "id", bid);
			cJSON *ident = cJSON_AddObjectToObject(b, "identifier");
			cJSON_AddStringToObject(ident, "system", "urn:example:bundles");
			cJSON_AddStringToObject(ident, "value", bid);
			cJSON_AddStringToObject(b, "type", k ? "message" : "document");
			cJSON_AddStringToObject(b, "timestamp", start);
			cJSON *entries = cJSON_AddArrayToObject(b, "entry");
			cJSON *e0 = cJSON_CreateObject(), *e1 = cJSON_CreateObject();
			snprintf(full, sizeof full, "urn:uuid:00000000-0000-4000-8000-%012d", i * 2 + k);
			cJSON_AddStringToObject(e0, "fullUrl", full);
			cJSON_AddItemToObject(e0, "resource", first[k]);
			snprintf(full, sizeof full, "http://example.org/fhir/Encounter/%s", eid);
			cJSON_AddStringToObject(e1, "fullUrl", full);
			cJSON_AddItemToObject(e1, "resource", cJSON_Duplicate(enc, true));
			cJSON_AddItemToArray(entries, e0);
			cJSON_AddItemToArray(entries, e1);
			/* a document carries what its Composition refers to */
			const char *targets[] = {subject, org && !strncmp(org, "Organization/", 13) ? org : NULL};
			for (size_t t = 0; !k && t < 2; t++) {
				const char *slash = targets[t] ? strchr(targets[t], '/') : NULL;
				if (!slash || (t && !strcmp(targets[t], subject)))
					continue;
				cJSON *et = cJSON_CreateObject(), *rt = cJSON_CreateObject();
				snprintf(full, sizeof full, "http://example.org/fhir/%s", targets[t]);
				cJSON_AddStringToObject(et, "fullUrl", full);
				char type[64];
				snprintf(type, sizeof type, "%.*s", (int)(slash - targets[t]), targets[t]);
				cJSON_AddStringToObject(rt, "resourceType", type);
				cJSON_AddStringToObject(rt, "id", slash + 1);
				cJSON_AddItemToObject(et, "resource", rt);
				cJSON_AddItemToArray(entries, et);
			}
			char *text = cJSON_PrintUnformatted(b);
			long st = 0;
			snprintf(url, sizeof url, "/fhir/Bundle/%s", bid);
			if (text && post("PUT", url, text, strlen(text), &st) == 0 && (st == 200 || st == 201))
				stored++;
			else
				print_message("# %s: %ld\n", url, st);
			free(text);
			cJSON_Delete(b); /* frees first[k] */
		}
	}
	char path[1024];
	corpus_path(path, sizeof path, "fhir-r4/examples-json-xml/json/message-request-link.json");
	size_t len = 0;
	char *text = tk_slurp(path, &len);
	long st = 0;
	if (text && post("PUT", "/fhir/Bundle/10bb101f-a121-4264-a920-67be9cb82c74", text, len, &st) == 0 &&
	    (st == 200 || st == 201))
		stored++;
	free(text);
	static const char coll[] = "{\"resourceType\":\"Bundle\",\"id\":\"collection-1\",\"type\":\"collection\","
				   "\"entry\":[{\"fullUrl\":\"urn:uuid:00000000-0000-4000-8000-999999999999\","
				   "\"resource\":{\"resourceType\":\"Patient\",\"id\":\"x\"}}]}";
	if (post("PUT", "/fhir/Bundle/collection-1", coll, strlen(coll), &st) == 0 && (st == 200 || st == 201))
		stored++;
	if (stored < 40)
		print_message("# %d Bundles stored\n", stored);
	return stored >= 40 ? 0 : -1;
}

/* Every stored resource of type, through the paging links. */
static int fetch_type(const char *type)
{
	struct typed *t = typed_of(type);
	if (!t)
		return -1;
	char path[2048];
	snprintf(path, sizeof path, "/fhir/%s?_count=1000", type);
	for (int pages = 0; pages < 1000; pages++) {
		struct resp r;
		memset(&r, 0, sizeof r);
		if (http_do(&gw, "GET", path, NULL, NULL, 0, &r) != 0 || r.status != 200) {
			resp_free(&r);
			return -1;
		}
		cJSON *b = cJSON_Parse(r.body);
		resp_free(&r);
		const cJSON *e;
		cJSON_ArrayForEach(e, g(b, "entry"))
		{
			cJSON_AddItemToArray(t->all, cJSON_Duplicate(g(e, "resource"), true));
		}
		const char *next = NULL;
		cJSON_ArrayForEach(e, g(b, "link"))
		{
			if (s(e, "relation") && !strcmp(s(e, "relation"), "next"))
				next = s(e, "url");
		}
		const char *rel = next ? strstr(next, "/fhir/") : NULL;
		if (rel)
			snprintf(path, sizeof path, "%s", rel);
		cJSON_Delete(b);
		if (!rel)
			return 0;
	}
	return -1;
}

static int gw_up(void **state)
{
	(void)state;
	if (gw_start(&gw, NULL) != 0)
		return -1;
	if (load_synthea() != 0 || load_examples() != 0) {
		print_message("# loading the corpus failed\n");
		return -1;
	}
	/* the types stored: every type with a resource in the store */
	static const char *const candidates[] = {"AllergyIntolerance",
						 "CarePlan",
						 "CareTeam",
						 "Claim",
						 "Condition",
						 "Device",
						 "DiagnosticReport",
						 "DocumentReference",
						 "Encounter",
						 "ExplanationOfBenefit",
						 "ImagingStudy",
						 "Immunization",
						 "Location",
						 "Medication",
						 "MedicationAdministration",
						 "MedicationRequest",
						 "Observation",
						 "Organization",
						 "Practitioner",
						 "PractitionerRole",
						 "Procedure",
						 "Provenance",
						 "SupplyDelivery",
						 "Goal",
						 "Coverage"};
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
		if (fetch_type(candidates[i]) != 0) {
			print_message("# reading %s back failed\n", candidates[i]);
			return -1;
		}
	for (size_t i = 0; i < sizeof example_types / sizeof example_types[0]; i++)
		if (fetch_type(example_types[i]) != 0) {
			print_message("# reading %s back failed\n", example_types[i]);
			return -1;
		}
	if (load_bundles(typed_of("Encounter")) != 0 || fetch_type("Bundle") != 0) {
		print_message("# storing or reading back the Bundles failed\n");
		return -1;
	}
	return 0;
}

static int gw_down(void **state)
{
	(void)state;
	for (size_t i = 0; i < ntypes; i++)
		cJSON_Delete(types[i].all);
	return gw_stop(&gw, 60000);
}

/* --- the reference evaluation: values by the R4 rules ------------------------------------------------ */

#define OPEN_LO INT64_MIN
#define OPEN_HI INT64_MAX

struct val {
	char *sys;  /* token system */
	char *code; /* token code, reference, uri, string as written, date as written */
	int64_t lo, hi;
};

struct vals {
	struct val *v;
	size_t n, cap;
};

static void vals_add(struct vals *vs, const char *sys, const char *code, int64_t lo, int64_t hi)
{
	if (vs->n == vs->cap) {
		vs->cap = vs->cap ? vs->cap * 2 : 8;
		vs->v = realloc(vs->v, vs->cap * sizeof *vs->v);
		assert_non_null(vs->v);
	}
	vs->v[vs->n++] = (struct val){sys ? strdup(sys) : NULL, code ? strdup(code) : NULL, lo, hi};
}

static void vals_free(struct vals *vs)
{
	for (size_t i = 0; i < vs->n; i++) {
		free(vs->v[i].sys);
		free(vs->v[i].code);
	}
	free(vs->v);
	memset(vs, 0, sizeof *vs);
}

/* [lo, hi) in ms of a FHIR date, dateTime or instant, by its precision; a
 * value without a zone is UTC. Written apart from the gateway's parser. */
static bool date_range(const char *t, int64_t *lo, int64_t *hi)
{
	struct tm tm = {0};
	int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0, n = 0;
	size_t len = strlen(t);
	int64_t width_s = 0;
	enum { YEAR, MONTH, DAY, OTHER } prec;
	if (len == 4 && sscanf(t, "%4d%n", &y, &n) == 1 && n == 4)
		prec = YEAR;
	else if (len == 7 && sscanf(t, "%4d-%2d%n", &y, &mo, &n) == 2 && n == 7)
		prec = MONTH;
	else if (len == 10 && sscanf(t, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10)
		prec = DAY;
	else if (len >= 16 && sscanf(t, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) == 5)
		prec = OTHER;
	else
		return false;
	const char *p = t + n;
	int64_t ms = 0, width_ms = 60000;
	if (prec == OTHER && *p == ':') {
		if (sscanf(p, ":%2d%n", &sec, &n) != 1)
			return false;
		p += n;
		width_ms = 1000;
		if (*p == '.') {
			p++;
			int digits = 0;
			long frac = 0;
			while (*p >= '0' && *p <= '9') {
				if (digits < 3)
					frac = frac * 10 + (*p - '0');
				digits++;
				p++;
			}
			for (int k = digits; k < 3; k++)
				frac *= 10;
			ms = frac;
			width_ms = 1;
		}
	}
	int64_t off_s = 0;
	if (prec == OTHER) {
		int oh, om;
		if (*p == 'Z') {
			p++;
		} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
			off_s = (*p == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
			p += 6;
		}
		if (*p)
			return false;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	int64_t start = (int64_t)timegm(&tm);
	if (prec == YEAR) {
		tm.tm_year++;
		width_s = (int64_t)timegm(&tm) - start;
	} else if (prec == MONTH) {
		tm.tm_mon++;
		width_s = (int64_t)timegm(&tm) - start;
	} else if (prec == DAY) {
		width_s = 86400;
	}
	*lo = (start - off_s) * 1000 + ms;
	*hi = prec == OTHER ? *lo + width_ms : *lo + width_s * 1000;
	return true;
}

static void add_token(struct vals *vs, const cJSON *j)
{
	if (cJSON_IsString(j)) {
		vals_add(vs, NULL, j->valuestring, 0, 0);
	} else if (cJSON_IsBool(j)) {
		vals_add(vs, NULL, cJSON_IsTrue(j) ? "true" : "false", 0, 0);
	} else if (cJSON_IsObject(j)) {
		const cJSON *c;
		if (g(j, "coding")) {
			cJSON_ArrayForEach(c, g(j, "coding")) { add_token(vs, c); }
		} else if (s(j, "code")) {
			vals_add(vs, s(j, "system"), s(j, "code"), 0, 0);
		} else if (s(j, "value")) { /* Identifier, ContactPoint */
			vals_add(vs, s(j, "system"), s(j, "value"), 0, 0);
		}
	}
}

static void add_reference(struct vals *vs, const cJSON *j, const char *target)
{
	const char *ref = cJSON_IsString(j) ? j->valuestring : s(j, "reference");
	if (!ref || !*ref || (ref[0] == '#' && target))
		return; /* a contained resource ("#id") is a value, of no type known here */
	char buf[512];
	snprintf(buf, sizeof buf, "%s", ref);
	char *hist = strstr(buf, "/_history/");
	if (hist)
		*hist = '\0';
	if (target) { /* .where(resolve() is Target) */
		const char *slash = strrchr(buf, '/');
		if (!slash)
			return;
		const char *tstart = slash;
		while (tstart > buf && tstart[-1] != '/')
			tstart--;
		if ((size_t)(slash - tstart) != strlen(target) || strncmp(tstart, target, strlen(target)) != 0)
			return;
	}
	vals_add(vs, NULL, buf, 0, 0);
}

static void add_string(struct vals *vs, const cJSON *j)
{
	if (cJSON_IsString(j)) {
		if (*j->valuestring)
			vals_add(vs, NULL, j->valuestring, 0, 0);
		return;
	}
	static const char *const parts[] = {"text", "family",   "given", "prefix",     "suffix", "line",
					    "city", "district", "state", "postalCode", "country"};
	for (size_t i = 0; cJSON_IsObject(j) && i < sizeof parts / sizeof parts[0]; i++) {
		const cJSON *p = g(j, parts[i]), *e;
		if (cJSON_IsString(p))
			add_string(vs, p);
		else
			cJSON_ArrayForEach(e, p) { add_string(vs, e); }
	}
}

static void add_date_text(struct vals *vs, const char *text)
{
	int64_t lo, hi;
	if (text && date_range(text, &lo, &hi))
		vals_add(vs, NULL, text, lo, hi);
}

static void add_date(struct vals *vs, const cJSON *j)
{
	if (cJSON_IsString(j)) {
		add_date_text(vs, j->valuestring);
		return;
	}
	if (!cJSON_IsObject(j))
		return;
	const char *start = s(j, "start"), *end = s(j, "end");
	if (start || end) { /* a Period: a missing end is open */
		int64_t lo = OPEN_LO, hi = OPEN_HI, a, b;
		if (start && date_range(start, &a, &b))
			lo = a;
		if (end && date_range(end, &a, &b))
			hi = b;
		vals_add(vs, NULL, start ? start : end, lo, hi);
		return;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, g(j, "event")) /* a Timing */
	{
		if (cJSON_IsString(e))
			add_date_text(vs, e->valuestring);
	}
}

/* The FHIRPath expression of one branch: the definition's own where the
 * table keeps it, else the path written as FHIRPath on the concrete type. */
static const struct fp_expr *branch_expr(const char *type, const struct search_param_def *d)
{
	char src[1024];
	if (d->expr) {
		snprintf(src, sizeof src, "%s", d->expr);
	} else {
		/* each segment; one of a choice by its type (valueQuantity) as
		 * value.ofType(Quantity), from the model */
		char model_path[512], seg[128];
		size_t k = (size_t)snprintf(src, sizeof src, "%s", type);
		snprintf(model_path, sizeof model_path, "%s", type);
		for (const char *p = d->path; *p;) {
			size_t len = strcspn(p, ".");
			snprintf(seg, sizeof seg, "%.*s", (int)len, p);
			p += len + (p[len] == '.');
			char *x = strstr(seg, "[x]");
			if (x)
				*x = '\0';
			const char *of_type = NULL;
			for (size_t j = 1; !x && seg[j] && !of_type; j++) {
				if (seg[j] < 'A' || seg[j] > 'Z')
					continue;
				char base[600];
				const char *choices[64];
				snprintf(base, sizeof base, "%s.%.*s", model_path, (int)j, seg);
				int nc = model_query_choice_types(base, choices, 64);
				for (int c = 0; c < nc && c < 64 && !of_type; c++)
					if ((choices[c][0] & ~0x20) == seg[j] && !strcmp(choices[c] + 1, seg + j + 1)) {
						of_type = choices[c];
						seg[j] = '\0';
					}
			}
			k += (size_t)snprintf(src + k, sizeof src - k, ".%s", seg);
			if (of_type)
				k += (size_t)snprintf(src + k, sizeof src - k, ".ofType(%s)", of_type);
			snprintf(model_path + strlen(model_path), sizeof model_path - strlen(model_path), ".%s", seg);
		}
		if (d->filter) {
			const char *eq = strchr(d->filter, '=');
			snprintf(src + k, sizeof src - k, ".where(%.*s='%s')", (int)(eq - d->filter), d->filter,
				 eq + 1);
		}
	}
	struct fp_error err;
	const struct fp_expr *e = fp_cached(src, &err);
	if (!e)
		fail_msg("%s: %s does not compile: %s", d->code, src, err.message);
	return e;
}

/* The values one resource has for parameter (rows d[0..n)) by the rules. */
static void values_of(const char *type, const struct search_param_def *d, size_t n, const cJSON *res, struct vals *out)
{
	struct arena a;
	arena_init(&a, 16u << 20);
	for (size_t r = 0; r < n; r++) {
		struct fp_env env = {.resource = res};
		struct fp_coll coll = {0};
		struct fp_error err;
		if (fp_eval(branch_expr(type, &d[r]), &env, &a, &coll, &err) != 0)
			fail_msg("%s %s: evaluation failed: %s", type, d[r].code, err.message);
		for (size_t i = 0; i < coll.n; i++) {
			const struct fp_item *it = &coll.v[i];
			cJSON tmp = {0};
			const cJSON *j = NULL;
			if (it->kind == FP_NODE) {
				j = it->u.node.j;
			} else if (it->kind == FP_BOOLEAN) {
				tmp.type = it->u.b ? cJSON_True : cJSON_False;
				j = &tmp;
			} else if (it->kind == FP_STRING || it->kind == FP_DATE || it->kind == FP_DATETIME) {
				tmp.type = cJSON_String;
				tmp.valuestring =
					(char *)(it->kind == FP_STRING ? arena_strndup(&a, it->u.str.s, it->u.str.len)
								       : fp_item_string(&a, it));
				j = &tmp;
			}
			if (!j)
				continue;
			switch (d[r].kind) {
			case SEARCH_PARAM_TOKEN:
				add_token(out, j);
				break;
			case SEARCH_PARAM_REFERENCE:
				if (search_params_embedded(&d[r])) { /* a resource of the target type: its id */
					const char *rt = s(j, "resourceType"), *id = s(j, "id");
					char ref[200];
					snprintf(ref, sizeof ref, "%s/%s", d[r].target, id ? id : "");
					if (rt && !strcmp(rt, d[r].target))
						vals_add(out, NULL, id ? ref : "#", 0,
							 0); /* no id: no value a search names */
					break;
				}
				add_reference(out, j, d[r].target);
				break;
			case SEARCH_PARAM_STRING:
				add_string(out, j);
				break;
			case SEARCH_PARAM_DATE:
				add_date(out, j);
				break;
			case SEARCH_PARAM_URI:
				if (cJSON_IsString(j) && *j->valuestring)
					vals_add(out, NULL, j->valuestring, 0, 0);
				break;
			case SEARCH_PARAM_NUMBER:
			case SEARCH_PARAM_QUANTITY:
				if (cJSON_IsNumber(j) ||
				    (cJSON_IsObject(j) && (g(j, "value") || g(j, "low") || g(j, "high"))))
					vals_add(out, NULL, "number", 0, 0);
				break;
			}
		}
	}
	arena_release(&a);
}

/* --- the searches ---------------------------------------------------------------------------------------- */

enum form {
	F_MISSING_TRUE,
	F_MISSING_FALSE,
	F_EQ,
	F_SYS_CODE,
	F_STRING,
	F_EXACT,
	F_CONTAINS,
	F_DATE,
	F_NO_SYS,   /* |code */
	F_SYS_ONLY, /* system| */
	F_NOT       /* :not=code */
};

static const char *const date_prefixes[] = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"};

static bool fold_starts(const char *val, const char *q, bool anywhere)
{
	char *fv = fold_text(val), *fq = fold_text(q);
	assert_non_null(fv);
	assert_non_null(fq);
	bool ok = anywhere ? strstr(fv, fq) != NULL : strncmp(fv, fq, strlen(fq)) == 0;
	free(fv);
	free(fq);
	return ok;
}

static bool date_matches(const char *pfx, int64_t slo, int64_t shi, int64_t tlo, int64_t thi)
{
	bool within = slo <= tlo && thi <= shi;
	if (!strcmp(pfx, "eq"))
		return within;
	if (!strcmp(pfx, "ne")) /* as every prefix: some value of the resource */
		return !within;
	if (!strcmp(pfx, "gt"))
		return thi > shi;
	if (!strcmp(pfx, "lt"))
		return tlo < slo;
	if (!strcmp(pfx, "ge"))
		return thi > shi || within;
	if (!strcmp(pfx, "le"))
		return tlo < slo || within;
	if (!strcmp(pfx, "sa"))
		return tlo >= shi;
	return thi <= slo; /* eb */
}

/* Whether one resource's values match the search (form, query). */
static bool matches(const struct vals *vs, enum form f, const char *sys, const char *q, const char *pfx)
{
	if (f == F_SYS_ONLY) {
		for (size_t i = 0; i < vs->n; i++)
			if (vs->v[i].sys && !strcmp(vs->v[i].sys, sys))
				return true;
		return false;
	}
	if (f == F_MISSING_TRUE)
		return vs->n == 0;
	if (f == F_MISSING_FALSE)
		return vs->n > 0;
	if (f == F_NOT) /* the reverse of the code's match, with the resources without a value */
		return !matches(vs, F_EQ, NULL, q, NULL);
	int64_t slo = 0, shi = 0;
	if (f == F_DATE)
		assert_true(date_range(q, &slo, &shi));
	for (size_t i = 0; i < vs->n; i++) {
		const struct val *v = &vs->v[i];
		bool ok = false;
		switch (f) {
		case F_EQ:
			ok = !strcmp(v->code, q);
			break;
		case F_SYS_CODE:
			ok = v->sys && !strcmp(v->sys, sys) && !strcmp(v->code, q);
			break;
		case F_NO_SYS:
			ok = !v->sys && !strcmp(v->code, q);
			break;
		case F_STRING:
			ok = fold_starts(v->code, q, false);
			break;
		case F_CONTAINS:
			ok = fold_starts(v->code, q, true);
			break;
		case F_EXACT:
			ok = !strcmp(v->code, q);
			break;
		case F_DATE:
			ok = date_matches(pfx, slo, shi, v->lo, v->hi);
			break;
		default:
			break;
		}
		if (ok)
			return true;
	}
	return false;
}

/* A search value with R4's escapes: "\," "\|" "\$" "\\". */
static void escape_value(const char *in, char *out, size_t cap)
{
	size_t k = 0;
	for (; *in && k + 3 < cap; in++) {
		if (strchr(",|$\\", *in))
			out[k++] = '\\';
		out[k++] = *in;
	}
	out[k] = '\0';
}

static void url_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && k + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			out[k++] = (char)*p;
		} else {
			out[k++] = '%';
			out[k++] = hex[*p >> 4];
			out[k++] = hex[*p & 15];
		}
	}
	out[k] = '\0';
}

struct run {
	long searches, findings, max;
	long stop;     /* the current type's share of max */
	long embedded; /* searches through a Bundle's first entry */
};

/* Crosswalk's answer to path (one page of up to 1000) against the
 * resources of t marked in expected (want of them); shown names the search
 * in a finding. Frees expected. */
static void compare_answer(struct run *run, const struct typed *t, const char *path, const char *shown, char *expected,
			   size_t want)
{
	int n = cJSON_GetArraySize(t->all);
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "GET", path, NULL, NULL, 0, &r), 0);
	cJSON *b = r.status == 200 ? cJSON_Parse(r.body) : NULL;
	if (!b) {
		run->findings++;
		print_message("# %s: status %ld %.300s\n", shown, r.status, r.body);
		resp_free(&r);
		free(expected);
		return;
	}
	resp_free(&r);
	const cJSON *total = g(b, "total"), *e;
	long got = cJSON_IsNumber(total) ? (long)total->valuedouble : -1;
	char extra[300] = "", missing[300] = "";
	if (got == (long)want && got <= 1000) {
		/* the same resources, not only as many */
		cJSON_ArrayForEach(e, g(b, "entry"))
		{
			const char *id = s(g(e, "resource"), "id");
			int k = 0;
			while (k < n && (!id || strcmp(s(cJSON_GetArrayItem(t->all, k), "id"), id) != 0))
				k++;
			if (k == n || expected[k] != 1) {
				if (strlen(extra) < 200)
					snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " %s",
						 id ? id : "?");
			} else {
				expected[k] = 2;
			}
		}
		for (int i = 0; i < n; i++)
			if (expected[i] == 1 && strlen(missing) < 200)
				snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s",
					 s(cJSON_GetArrayItem(t->all, i), "id"));
	}
	if (got != (long)want || extra[0] || missing[0]) {
		run->findings++;
		if (run->findings <= 60)
			print_message("# %s: %ld matches, the rules give %zu (extra:%s; missing:%s)\n", shown, got,
				      want, extra, missing);
	}
	cJSON_Delete(b);
	free(expected);
}

/* One search against the gateway, judged against the resources' values. */
static void judge(struct run *run, const struct typed *t, const char *code, const struct vals *all, enum form f,
		  const char *sys, const char *q, const char *pfx)
{
	if (run->searches >= run->stop)
		return;
	run->searches++;
	char value[2500], enc[7600], path[8000], shown[2700], esc[2][1200];
	static const char *const mods[] = {":missing",  ":missing", "", "", "",    ":exact",
					   ":contains", "",         "", "", ":not"};
	if (f == F_MISSING_TRUE || f == F_MISSING_FALSE)
		snprintf(value, sizeof value, "%s", f == F_MISSING_TRUE ? "true" : "false");
	else if (f == F_DATE)
		snprintf(value, sizeof value, "%s%s", pfx, q);
	else {
		escape_value(q ? q : "", esc[0], sizeof esc[0]);
		escape_value(sys ? sys : "", esc[1], sizeof esc[1]);
		if (f == F_SYS_CODE || f == F_NO_SYS)
			snprintf(value, sizeof value, "%s|%s", esc[1], esc[0]);
		else if (f == F_SYS_ONLY)
			snprintf(value, sizeof value, "%s|", esc[1]);
		else
			snprintf(value, sizeof value, "%s", esc[0]);
	}
	url_encode(value, enc, sizeof enc);
	snprintf(path, sizeof path, "/fhir/%s?%s%s=%s&_count=1000&_elements=id", t->name, code, mods[f], enc);
	snprintf(shown, sizeof shown, "%s?%s%s=%.2400s", t->name, code, mods[f], value);
	int n = cJSON_GetArraySize(t->all);
	size_t want = 0;
	char *expected = calloc((size_t)n + 1, 1);
	assert_non_null(expected);
	for (int i = 0; i < n; i++)
		if (matches(&all[i], f, sys, q, pfx)) {
			expected[i] = 1;
			want++;
		}
	compare_answer(run, t, path, shown, expected, want);
}

/* --- chains --------------------------------------------------------------------------------------------- */

/* The values of parameter code of every resource of t (an array of n). */
static struct vals *values_all(const struct typed *t, const char *code)
{
	size_t rows = 0;
	const struct search_param_def *d = search_params_find(t->name, code, &rows);
	int n = cJSON_GetArraySize(t->all);
	struct vals *all = calloc((size_t)n + 1, sizeof *all);
	assert_non_null(all);
	for (int k = 0; d && k < n; k++)
		values_of(t->name, d, rows, cJSON_GetArrayItem(t->all, k), &all[k]);
	return all;
}

static void values_all_free(const struct typed *t, struct vals *all)
{
	int n = cJSON_GetArraySize(t->all);
	for (int k = 0; k < n; k++)
		vals_free(&all[k]);
	free(all);
}

/* A chain from reference parameter d of t to a string or token parameter of
 * its target type to (written with :Type when d has several targets): the
 * resources whose reference points at a stored resource of type to with a
 * matching value. */
static void judge_chain(struct run *run, const struct typed *t, const struct search_param_def *d,
			const struct vals *refs, const struct typed *to)
{
	static const char *const chained[] = {"family", "name", "identifier", "gender", "status", "code", "title"};
	const char *code = NULL;
	const struct search_param_def *cd = NULL;
	for (size_t i = 0; i < sizeof chained / sizeof chained[0] && !code; i++) {
		cd = search_params_find(to->name, chained[i], NULL);
		if (cd && (cd->kind == SEARCH_PARAM_STRING || cd->kind == SEARCH_PARAM_TOKEN))
			code = chained[i];
	}
	if (!code || run->searches >= run->stop)
		return;
	struct vals *target = values_all(to, code);
	int n = cJSON_GetArraySize(t->all), nt = cJSON_GetArraySize(to->all);
	/* the query: a value of the first target that one of t's resources points at */
	const char *q = NULL;
	size_t tlen = strlen(to->name);
	for (int i = 0; i < n && !q; i++)
		for (size_t v = 0; v < refs[i].n && !q; v++) {
			const char *ref = refs[i].v[v].code;
			if (strncmp(ref, to->name, tlen) != 0 || ref[tlen] != '/')
				continue;
			for (int k = 0; k < nt && !q; k++)
				if (!strcmp(s(cJSON_GetArrayItem(to->all, k), "id"), ref + tlen + 1) && target[k].n)
					q = target[k].v[0].code;
		}
	if (q) {
		run->searches++;
		char esc[600], enc[1800], path[2400], shown[1000];
		escape_value(q, esc, sizeof esc);
		url_encode(esc, enc, sizeof enc);
		bool typed = search_params_targets_count(d) != 1;
		snprintf(path, sizeof path, "/fhir/%s?%s%s%s.%s=%s&_count=1000&_elements=id", t->name, d->code,
			 typed ? ":" : "", typed ? to->name : "", code, enc);
		snprintf(shown, sizeof shown, "%s?%s%s%s.%s=%.500s", t->name, d->code, typed ? ":" : "",
			 typed ? to->name : "", code, esc);
		enum form f = cd->kind == SEARCH_PARAM_STRING ? F_STRING : F_EQ;
		char *expected = calloc((size_t)n + 1, 1);
		assert_non_null(expected);
		size_t want = 0;
		for (int i = 0; i < n; i++) {
			for (size_t v = 0; v < refs[i].n && !expected[i]; v++) {
				const char *ref = refs[i].v[v].code;
				if (strncmp(ref, to->name, tlen) != 0 || ref[tlen] != '/')
					continue;
				for (int k = 0; k < nt; k++)
					if (!strcmp(s(cJSON_GetArrayItem(to->all, k), "id"), ref + tlen + 1) &&
					    matches(&target[k], f, NULL, q, NULL))
						expected[i] = 1;
			}
			want += expected[i];
		}
		compare_answer(run, t, path, shown, expected, want);
	}
	values_all_free(to, target);
}

static void search_param(struct run *run, const struct typed *t, const struct search_param_def *d,
			 const struct vals *all, long per);

/* Whether reference parameter d of t is chained to stored type to: its one
 * target, or Patient and Encounter of several. */
static bool chains_to(const struct search_param_def *d, const struct typed *to)
{
	return to->name[0] && cJSON_GetArraySize(to->all) > 0 && search_params_targets_has(d, to->name) &&
	       (search_params_targets_count(d) == 1 || !strcmp(to->name, "Patient") || !strcmp(to->name, "Encounter"));
}

/* Bundle parameter e, which embeds the first entry's resource (of type
 * e->target): every parameter of that type chained through it
 * (composition.title), its values evaluated over the entry, within a budget
 * of its own (CW_DIFF_EMBEDDED searches, default 500); and on through its
 * references to stored resources. Returns the parameters judged. */
static size_t judge_embedded(struct run *run, const struct typed *t, const struct search_param_def *e, long per,
			     size_t *chains)
{
	int n = cJSON_GetArraySize(t->all);
	const cJSON **inner = calloc((size_t)n + 1, sizeof *inner);
	assert_non_null(inner);
	for (int k = 0; k < n; k++) {
		const cJSON *res = g(cJSON_GetArrayItem(g(cJSON_GetArrayItem(t->all, k), "entry"), 0), "resource");
		if (s(res, "resourceType") && !strcmp(s(res, "resourceType"), e->target))
			inner[k] = res;
	}
	long left = run->stop - run->searches, before = run->searches;
	run->stop = run->searches + env_long("CW_DIFF_EMBEDDED", 500);
	size_t judged = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *of = pass ? "Resource" : e->target;
		for (size_t i = 0; i < search_params_count && run->searches < run->stop; i++) {
			const struct search_param_def *d = &search_params_data[i];
			if (strcmp(d->type, of) != 0 || (i > 0 && !strcmp(search_params_data[i - 1].type, of) &&
							 !strcmp(search_params_data[i - 1].code, d->code)))
				continue;
			size_t rows = 0;
			const struct search_param_def *first = search_params_find(of, d->code, &rows);
			if (pass && search_params_find(e->target, d->code, NULL) != first)
				continue;
			struct vals *all = calloc((size_t)n + 1, sizeof *all);
			assert_non_null(all);
			for (int k = 0; k < n; k++)
				if (inner[k])
					values_of(e->target, first, rows, inner[k], &all[k]);
			char name[160];
			snprintf(name, sizeof name, "%s.%s", e->code, first->code);
			struct search_param_def chained = *first;
			chained.code = name;
			search_param(run, t, &chained, all, per);
			for (size_t k = 0; first->kind == SEARCH_PARAM_REFERENCE && k < ntypes; k++)
				if (chains_to(first, &types[k])) {
					judge_chain(run, t, &chained, all, &types[k]);
					(*chains)++;
				}
			judged++;
			for (int k = 0; k < n; k++)
				vals_free(&all[k]);
			free(all);
		}
	}
	run->embedded += run->searches - before;
	run->stop = run->searches + (left > 0 ? left : 0);
	free(inner);
	return judged;
}

/* Up to per query values spread over the distinct candidates of a
 * parameter (the resources' own values), each searched in the forms of its
 * kind. */
static void search_param(struct run *run, const struct typed *t, const struct search_param_def *d,
			 const struct vals *all, long per)
{
	int n = cJSON_GetArraySize(t->all);
	judge(run, t, d->code, all, F_MISSING_TRUE, NULL, NULL, NULL);
	judge(run, t, d->code, all, F_MISSING_FALSE, NULL, NULL, NULL);
	if (d->kind == SEARCH_PARAM_NUMBER || d->kind == SEARCH_PARAM_QUANTITY)
		return;
	/* the distinct values, in order of appearance */
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += all[i].n;
	if (!total)
		return;
	for (long k = 0; k < per; k++) {
		size_t pick = (size_t)k * total / (size_t)per, at = 0;
		const struct val *v = NULL;
		for (int i = 0; i < n && !v; i++) {
			if (pick < at + all[i].n)
				v = &all[i].v[pick - at];
			at += all[i].n;
		}
		if (!v || !v->code || v->code[0] == '#')
			continue; /* a contained resource is not searched for by its local id */
		switch (d->kind) {
		case SEARCH_PARAM_TOKEN:
			judge(run, t, d->code, all, F_EQ, NULL, v->code, NULL);
			judge(run, t, d->code, all, F_NOT, NULL, v->code, NULL);
			if (v->sys) {
				judge(run, t, d->code, all, F_SYS_CODE, v->sys, v->code, NULL);
				judge(run, t, d->code, all, F_SYS_ONLY, v->sys, NULL, NULL);
			} else {
				judge(run, t, d->code, all, F_NO_SYS, NULL, v->code, NULL);
			}
			break;
		case SEARCH_PARAM_REFERENCE:
		case SEARCH_PARAM_URI:
			judge(run, t, d->code, all, F_EQ, NULL, v->code, NULL);
			break;
		case SEARCH_PARAM_STRING: {
			/* the first three characters, a middle part, the whole */
			char q[64];
			size_t len = 0, chars = 0;
			while (v->code[len] && chars < 3 && len < sizeof q - 5) {
				len++;
				while ((v->code[len] & 0xC0) == 0x80)
					len++;
				chars++;
			}
			snprintf(q, sizeof q, "%.*s", (int)len, v->code);
			judge(run, t, d->code, all, F_STRING, NULL, q, NULL);
			for (char *c = q; *c; c++) /* case is ignored */
				if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
			judge(run, t, d->code, all, F_STRING, NULL, q, NULL);
			if (strlen(v->code) > len + 2 && !((v->code[len] & 0xC0) == 0x80)) {
				size_t mid = len, mlen = 0, mchars = 0;
				while (v->code[mid + mlen] && mchars < 3) {
					mlen++;
					while ((v->code[mid + mlen] & 0xC0) == 0x80)
						mlen++;
					mchars++;
				}
				snprintf(q, sizeof q, "%.*s", (int)mlen, v->code + mid);
				judge(run, t, d->code, all, F_CONTAINS, NULL, q, NULL);
			}
			judge(run, t, d->code, all, F_EXACT, NULL, v->code, NULL);
			break;
		}
		case SEARCH_PARAM_DATE: {
			/* the value's day, then its month and year in turn */
			char q[16];
			int64_t lo, hi;
			snprintf(q, sizeof q, "%.10s", v->code);
			if (!date_range(q, &lo, &hi))
				break;
			for (size_t p = 0; p < sizeof date_prefixes / sizeof date_prefixes[0]; p++)
				judge(run, t, d->code, all, F_DATE, NULL, q, date_prefixes[p]);
			snprintf(q, sizeof q, "%.*s", k % 2 ? 4 : 7, v->code);
			if (!date_range(q, &lo, &hi))
				break;
			for (size_t p = 0; p < sizeof date_prefixes / sizeof date_prefixes[0]; p++)
				judge(run, t, d->code, all, F_DATE, NULL, q, date_prefixes[p]);
			break;
		}
		default:
			break;
		}
	}
}

static void searches_follow_the_rules(void **state)
{
	(void)state;
	struct run run = {.max = env_long("CW_DIFF_MAX", 3000)};
	long per = env_long("CW_DIFF_VALUES", 2);
	size_t params = 0, fhirpath_params = 0, chains = 0, embedded = 0;
	size_t nonempty = 0;
	for (size_t ti = 0; ti < ntypes; ti++)
		nonempty += cJSON_GetArraySize(types[ti].all) > 0;
	for (size_t ti = 0; ti < ntypes; ti++) {
		const struct typed *t = &types[ti];
		int n = cJSON_GetArraySize(t->all);
		if (n == 0)
			continue;
		run.stop = run.searches + run.max / (long)(nonempty ? nonempty : 1);
		for (int pass = 0; pass < 2; pass++) {
			const char *of = pass ? "Resource" : t->name;
			for (size_t i = 0; i < search_params_count; i++) {
				const struct search_param_def *d = &search_params_data[i];
				if (strcmp(d->type, of) != 0 ||
				    (i > 0 && !strcmp(search_params_data[i - 1].type, of) &&
				     !strcmp(search_params_data[i - 1].code, d->code)) ||
				    !search_params_offered(d))
					continue;
				size_t rows = 0;
				const struct search_param_def *first = search_params_find(of, d->code, &rows);
				if (run.searches >= run.stop)
					break;
				if (pass && search_params_find(t->name, d->code, NULL) != first)
					continue; /* the type's own parameter of that name */
				struct vals *all = calloc((size_t)n, sizeof *all);
				assert_non_null(all);
				bool by_fhirpath = false;
				for (size_t r = 0; r < rows; r++)
					by_fhirpath |= first[r].expr != NULL;
				for (int k = 0; k < n; k++)
					values_of(t->name, first, rows, cJSON_GetArrayItem(t->all, k), &all[k]);
				search_param(&run, t, first, all, per);
				for (size_t k = 0; first->kind == SEARCH_PARAM_REFERENCE && k < ntypes; k++)
					if (chains_to(first, &types[k])) {
						judge_chain(&run, t, first, all, &types[k]);
						chains++;
					}
				if (search_params_embedded(first))
					embedded += judge_embedded(&run, t, first, per, &chains);
				params++;
				fhirpath_params += by_fhirpath;
				for (int k = 0; k < n; k++)
					vals_free(&all[k]);
				free(all);
			}
		}
	}
	print_message("# %zu parameters (%zu with FHIRPath branches, %zu chains, %zu through a Bundle's first entry) "
		      "over %zu types: %ld searches (%ld through a Bundle's first entry), %ld differ\n",
		      params, fhirpath_params, chains, embedded, ntypes, run.searches, run.embedded, run.findings);
	assert_true(run.searches > 500);
	assert_true(fhirpath_params >= 10);
	assert_true(chains >= 20);
	assert_true(embedded >= 20); /* composition's and message's */
	assert_true(run.embedded >= 100);
	assert_int_equal(run.findings, 0);
}

/* --- the branches evaluated with FHIRPath, over the official examples ---------------------------------- */

/* The ids a search answers, sorted, comma-joined. */
static void ids_of(const char *path, char *out, size_t cap)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "GET", path, NULL, NULL, 0, &r), 0);
	if (r.status != 200)
		fail_msg("%s: %ld %.300s", path, r.status, r.body);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	assert_non_null(b);
	const char *ids[64];
	size_t n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, g(b, "entry"))
	{
		if (n < 64)
			ids[n++] = s(g(e, "resource"), "id");
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
		for (size_t k = i; k > 0 && strcmp(ids[k - 1], ids[k]) > 0; k--) {
			const char *t = ids[k];
			ids[k] = ids[k - 1];
			ids[k - 1] = t;
		}
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", ids[i]);
	cJSON_Delete(b);
}

static void expect_search(const char *path, const char *want)
{
	char got[1024];
	ids_of(path, got, sizeof got);
	if (strcmp(got, want) != 0)
		fail_msg("%s: got [%s], want [%s]", path, got, want);
}

static void fhirpath_branches_over_the_examples(void **state)
{
	(void)state;
	/* Patient.deceased.exists() and Patient.deceased != false */
	expect_search("/fhir/Patient?deceased=true&_id=pat3,pat4,example,f001,ch-example", "pat3,pat4");
	expect_search("/fhir/Patient?deceased=false&_id=pat3,pat4,example,f001,ch-example", "ch-example,example,f001");
	/* X.relatedArtifact.where(type='…').resource */
	expect_search("/fhir/Library?depends-on=Library/fhir-model-definition",
		      "library-fhir-helpers,library-fhir-helpers-predecessor,zika-virus-intervention-logic");
	expect_search("/fhir/Measure?successor=Measure/measure-exclusive-breastfeeding", "measure-predecessor-example");
	expect_search("/fhir/ActivityDefinition?successor=ActivityDefinition/referralPrimaryCareMentalHealth",
		      "referralPrimaryCareMentalHealth-initial");
	expect_search("/fhir/PlanDefinition?composed-of=ActivityDefinition/citalopramPrescription",
		      "low-suicide-risk-order-set");
	expect_search("/fhir/PlanDefinition?composed-of:missing=false&_id=low-suicide-risk-order-set,protocol-example",
		      "low-suicide-risk-order-set");
	/* a chain through one of them */
	expect_search(
		"/fhir/PlanDefinition?composed-of:ActivityDefinition.status=active&_id=low-suicide-risk-order-set",
		"low-suicide-risk-order-set");

	/* offered in the CapabilityStatement */
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	cJSON *cs = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *res;
	int offered = 0;
	cJSON_ArrayForEach(res, g(cJSON_GetArrayItem(g(cs, "rest"), 0), "resource"))
	{
		const char *type = s(res, "type");
		const cJSON *sp;
		cJSON_ArrayForEach(sp, g(res, "searchParam"))
		{
			offered += (!strcmp(type, "Patient") && !strcmp(s(sp, "name"), "deceased")) ||
				   (!strcmp(type, "Library") && !strcmp(s(sp, "name"), "composed-of"));
		}
	}
	assert_int_equal(offered, 2);
	cJSON_Delete(cs);
}

/* The status of GET path. */
static long status_of(const char *path)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "GET", path, NULL, NULL, 0, &r), 0);
	long st = r.status;
	resp_free(&r);
	return st;
}

/* Bundle's composition and message over HTTP: chains into the first entry,
 * includes refused, both offered in the CapabilityStatement and not as
 * include values. */
static void bundle_first_entry_over_http(void **state)
{
	(void)state;
	expect_search("/fhir/Bundle?composition.status=final&_id=document-0,document-1,message-0", "document-0");
	expect_search("/fhir/Bundle?message.event=admin-notify&_id=document-0,message-0,message-1", "message-0");
	expect_search("/fhir/Bundle?composition=Composition/comp-1", "document-1");
	expect_search("/fhir/Bundle?composition:missing=false&_id=document-2,message-2,collection-1", "document-2");
	expect_search("/fhir/Bundle?composition:Composition.confidentiality=N&_id=document-0,document-1", "document-1");
	assert_int_equal(status_of("/fhir/Bundle?_include=Bundle:composition"), 400);
	assert_int_equal(status_of("/fhir/MessageHeader?_revinclude=Bundle:message"), 400);
	assert_int_equal(status_of("/fhir/Bundle?composition:Patient.name=x"), 400);

	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	cJSON *cs = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *res;
	int offered = 0, included = 0;
	cJSON_ArrayForEach(res, g(cJSON_GetArrayItem(g(cs, "rest"), 0), "resource"))
	{
		const cJSON *sp, *inc;
		cJSON_ArrayForEach(sp, g(res, "searchParam"))
		{
			if (!strcmp(s(res, "type"), "Bundle") &&
			    (!strcmp(s(sp, "name"), "composition") || !strcmp(s(sp, "name"), "message"))) {
				assert_string_equal(s(sp, "type"), "reference");
				assert_non_null(s(sp, "documentation"));
				offered++;
			}
		}
		cJSON_ArrayForEach(inc, g(res, "searchInclude"))
		{
			included += !strncmp(inc->valuestring, "Bundle:", 7);
		}
		cJSON_ArrayForEach(inc, g(res, "searchRevInclude"))
		{
			included += !strncmp(inc->valuestring, "Bundle:composition", 18) ||
				    !strncmp(inc->valuestring, "Bundle:message", 14);
		}
	}
	assert_int_equal(offered, 2);
	assert_int_equal(included, 0);
	cJSON_Delete(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fhirpath_branches_over_the_examples),
		cmocka_unit_test(bundle_first_entry_over_http),
		cmocka_unit_test(searches_follow_the_rules),
	};
	return cmocka_run_group_tests_name("search judged by the R4 rules", tests, gw_up, gw_down);
}
