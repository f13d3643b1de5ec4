/* End-to-end tests of the outcomes plugin (docs/formats/outcomes.md): the
 * real gateway with the built plugins, over loopback — POST /ingest/outcomes
 * (both directions, idempotent ids, every refusal with its JSON-pointer
 * location), POST and GET /export/outcomes (byte-exact round trip of every
 * example, official R4 examples exported with warnings), the plugin's
 * configuration; and, in process through the real plugin host, that what an
 * export cannot carry is reported as warning issues. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"
#include "plugin/plugin_host.h"
#include "testenv.h"

#include "../../plugins/outcomes/outcomes.c"

#define EXAMPLES "docs/formats/examples/"
#define BASE "https://crosswalk.example.org/fhir"

static struct gw g;

static const char *const json_ct[] = {"Content-Type: application/json", NULL};
static const char *const fhir_ct[] = {"Content-Type: application/fhir+json", NULL};

static const char *example_names[] = {"outcomes-phq9-gad7.json", "outcomes-all-instruments.json",
				      "outcomes-edge-cases.json"};
#define N_EXAMPLES (sizeof example_names / sizeof example_names[0])

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fprintf(stderr, "# cannot open %s\n", path);
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *read_example(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, EXAMPLES "%s", name);
	return read_file(path);
}

static char *read_r4(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/fhir-r4/examples-json-xml/json/%s", corpus_dir(), name);
	return read_file(path);
}

/* The JSON text without whitespace outside strings (in place). */
static char *minify(char *s)
{
	char *w = s;
	bool in = false, esc = false;
	for (char *r = s; *r; r++) {
		if (in) {
			*w++ = *r;
			if (esc)
				esc = false;
			else if (*r == '\\')
				esc = true;
			else if (*r == '"')
				in = false;
		} else if (!strchr(" \t\r\n", *r)) {
			*w++ = *r;
			in = *r == '"';
		}
	}
	*w = '\0';
	return s;
}

static cJSON *body_json(const struct resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len);
	if (!j)
		fprintf(stderr, "# not JSON: %s\n", r->body);
	assert_non_null(j);
	return j;
}

static const cJSON *get_(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *s_(const cJSON *o, const char *k)
{
	const cJSON *v = get_(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* POST /ingest/outcomes; the body text (malloc'd). */
static char *ingest_text(const char *doc)
{
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/outcomes?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	char *s = strdup(r.body);
	resp_free(&r);
	return s;
}

static cJSON *ingest(const char *doc, long want)
{
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/outcomes?preview=true", json_ct, doc, strlen(doc), &r), 0);
	if (r.status != want)
		fprintf(stderr, "# status %ld: %s\n", r.status, r.body);
	assert_int_equal(r.status, want);
	cJSON *j = body_json(&r);
	resp_free(&r);
	return j;
}

/* POST /export/outcomes; the body text (malloc'd). */
static char *export_text(const char *fhir)
{
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/export/outcomes", fhir_ct, fhir, strlen(fhir), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# status %ld: %s\n", r.status, r.body);
	assert_int_equal(r.status, 200);
	char *s = strdup(r.body);
	resp_free(&r);
	return s;
}

/* The resources of a Bundle with the given type and code (any coding). */
static const cJSON *find(const cJSON *bundle, const char *type, const char *code, int nth)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, get_(bundle, "entry")) {
		const cJSON *r = get_(e, "resource"), *c;
		if (strcmp(s_(r, "resourceType"), type) != 0)
			continue;
		bool match = code == NULL;
		cJSON_ArrayForEach(c, get_(get_(r, "code"), "coding")) match |= code && strcmp(s_(c, "code"), code) == 0;
		if (match && nth-- == 0)
			return r;
	}
	return NULL;
}

static int count(const cJSON *bundle, const char *type)
{
	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, get_(bundle, "entry")) n += strcmp(s_(get_(e, "resource"), "resourceType"), type) == 0;
	return n;
}

static int start(void **state)
{
	(void)state;
	return gw_start(&g, NULL);
}

static int stop(void **state)
{
	(void)state;
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ native → FHIR */

static void ingest_is_a_transaction_of_puts_with_stable_ids(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		char *doc = read_example(example_names[i]);
		cJSON *a = ingest(doc, 200), *b = ingest(doc, 200);
		assert_string_equal(s_(a, "resourceType"), "Bundle");
		assert_string_equal(s_(a, "type"), "transaction");
		assert_true(cJSON_Compare(a, b, true)); /* the same document twice changes nothing */
		const cJSON *e;
		cJSON_ArrayForEach(e, get_(a, "entry")) {
			const cJSON *r = get_(e, "resource"), *req = get_(e, "request");
			char url[200];
			snprintf(url, sizeof url, "%s/%s", s_(r, "resourceType"), s_(r, "id"));
			assert_string_equal(s_(req, "method"), "PUT");
			assert_string_equal(s_(req, "url"), url);
			assert_int_equal(strlen(s_(r, "id")), 36);
		}
		cJSON_Delete(a);
		cJSON_Delete(b);
		free(doc);
	}
}

static void phq9_and_gad7_map_to_loinc_panels_and_totals(void **state)
{
	(void)state;
	char *doc = read_example("outcomes-phq9-gad7.json");
	cJSON *b = ingest(doc, 200);
	free(doc);
	assert_int_equal(count(b, "Patient"), 1);
	assert_int_equal(count(b, "QuestionnaireResponse"), 2);
	assert_int_equal(count(b, "Observation"), 4);

	const cJSON *qr = find(b, "QuestionnaireResponse", NULL, 0);
	const char *qr_id = s_(qr, "id");
	assert_string_equal(s_(qr, "status"), "completed");
	assert_string_equal(s_(qr, "questionnaire"), BASE "/Questionnaire/phq-9");
	assert_string_equal(s_(get_(qr, "identifier"), "value"), "A-0001");
	assert_string_equal(s_(qr, "authored"), "2024-03-01");
	assert_string_equal(s_(get_(qr, "author"), "display"), "Peer Specialist 07");
	const cJSON *items = get_(qr, "item");
	assert_int_equal(cJSON_GetArraySize(items), 10); /* nine items and the total given */
	assert_string_equal(s_(cJSON_GetArrayItem(items, 4), "linkId"), "5");
	assert_int_equal(get_(cJSON_GetArrayItem(get_(cJSON_GetArrayItem(items, 4), "answer"), 0), "valueInteger")->valueint, 3);

	const cJSON *panel = find(b, "Observation", "44249-1", 0), *total = find(b, "Observation", "44261-6", 0);
	assert_non_null(panel);
	assert_non_null(total);
	char ref[100];
	snprintf(ref, sizeof ref, "Observation/%s", s_(total, "id"));
	assert_string_equal(s_(cJSON_GetArrayItem(get_(panel, "hasMember"), 0), "reference"), ref);
	assert_int_equal(get_(total, "valueInteger")->valueint, 10);
	assert_string_equal(s_(total, "status"), "final");
	assert_string_equal(s_(total, "effectiveDateTime"), "2024-03-01");
	snprintf(ref, sizeof ref, "QuestionnaireResponse/%s", qr_id);
	assert_string_equal(s_(cJSON_GetArrayItem(get_(total, "derivedFrom"), 0), "reference"), ref);
	snprintf(ref, sizeof ref, "Patient/%s", s_(find(b, "Patient", NULL, 0), "id"));
	assert_string_equal(s_(get_(total, "subject"), "reference"), ref);
	const cJSON *perf = cJSON_GetArrayItem(get_(total, "performer"), 0);
	assert_string_equal(s_(get_(perf, "identifier"), "value"), "S-07");
	assert_string_equal(cJSON_GetArrayItem(get_(get_(total, "meta"), "profile"), 0)->valuestring,
			    BASE "/StructureDefinition/outcomes-phq-9");
	assert_string_equal(s_(cJSON_GetArrayItem(get_(cJSON_GetArrayItem(get_(total, "category"), 0), "coding"), 0), "code"),
			    "survey");

	/* GAD-7 without a total: the total is computed. */
	const cJSON *gad = find(b, "Observation", "70274-6", 0);
	assert_non_null(find(b, "Observation", "69737-5", 0));
	assert_int_equal(get_(gad, "valueInteger")->valueint, 10);
	cJSON_Delete(b);
}

static void goal_attainment_ras_and_qol(void **state)
{
	(void)state;
	char *doc = read_example("outcomes-all-instruments.json");
	cJSON *b = ingest(doc, 200);
	free(doc);
	assert_int_equal(count(b, "Patient"), 2);
	/* Goal attainment rated by the person: one Observation per goal. */
	const cJSON *g1 = find(b, "Observation", "107334-5", 0), *g2 = find(b, "Observation", "107334-5", 1);
	assert_non_null(g1);
	assert_non_null(g2);
	assert_null(find(b, "Observation", "107334-5", 3));
	const cJSON *v = cJSON_GetArrayItem(get_(get_(g1, "valueCodeableConcept"), "coding"), 0);
	assert_string_equal(s_(v, "system"), "http://loinc.org");
	assert_string_equal(s_(v, "code"), "LA34480-6"); /* +1 */
	v = cJSON_GetArrayItem(get_(get_(g2, "valueCodeableConcept"), "coding"), 0);
	assert_string_equal(s_(v, "code"), "LA34484-8"); /* -2 */
	const cJSON *focus = cJSON_GetArrayItem(get_(g1, "focus"), 0);
	assert_string_equal(s_(focus, "type"), "Goal");
	assert_string_equal(s_(get_(focus, "identifier"), "value"), "G-11");
	assert_non_null(find(b, "Observation", "107333-7", 0)); /* rated by a practitioner */

	/* RAS: a local code of its version (24 items: RAS-24), the total and the
	 * domain scores as components. */
	assert_null(find(b, "Observation", "ras-total", 0));
	assert_null(find(b, "Observation", "ras-41-total", 0));
	const cJSON *ras = find(b, "Observation", "ras-24-total", 0);
	assert_non_null(ras);
	assert_string_equal(s_(cJSON_GetArrayItem(get_(get_(ras, "code"), "coding"), 0), "system"),
			    BASE "/CodeSystem/outcomes");
	assert_int_equal(get_(ras, "valueInteger")->valueint, 91);
	const cJSON *comp = get_(ras, "component");
	assert_int_equal(cJSON_GetArraySize(comp), 5);
	assert_true(get_(get_(cJSON_GetArrayItem(comp, 0), "valueQuantity"), "value")->valuedouble == 3.89);

	/* QoL: the score as a Quantity, the instrument's own code (MANSA), its
	 * name as the code's text. */
	const cJSON *qol = find(b, "Observation", "qol-mansa", 0);
	assert_null(find(b, "Observation", "qol-mansa", 1));
	assert_null(find(b, "Observation", "qol-score", 1)); /* only the one without a scale */
	assert_string_equal(s_(get_(qol, "code"), "text"), "MANSA");
	assert_true(get_(get_(qol, "valueQuantity"), "value")->valuedouble == 4.75);
	cJSON_Delete(b);

	/* a RAS total alone: the form named gives the version's code; without
	 * one the version is not known, and the code says so */
	doc = read_example("outcomes-edge-cases.json");
	b = ingest(doc, 200);
	free(doc);
	ras = find(b, "Observation", "ras-41-total", 0);
	assert_non_null(ras);
	assert_int_equal(get_(ras, "valueInteger")->valueint, 150);
	ras = find(b, "Observation", "ras-total", 0);
	assert_non_null(ras);
	assert_int_equal(get_(ras, "valueInteger")->valueint, 24);
	assert_null(find(b, "Observation", "ras-24-total", 0));
	/* PHQ-9 item 9 above 0 (all 3s): its own Observation, a member of the
	 * panel; the PHQ-9 of all 0s gives none */
	const cJSON *item9 = find(b, "Observation", "44260-8", 0);
	assert_non_null(item9);
	assert_null(find(b, "Observation", "44260-8", 1));
	assert_int_equal(get_(item9, "valueInteger")->valueint, 3);
	int member = 0;
	const cJSON *pe, *m;
	for (int k = 0; (pe = find(b, "Observation", "44249-1", k)) != NULL; k++)
		cJSON_ArrayForEach(m, get_(pe, "hasMember"))
		{
			char want[80];
			snprintf(want, sizeof want, "Observation/%s", s_(item9, "id"));
			member += !strcmp(s_(m, "reference"), want);
		}
	assert_int_equal(member, 1);
	/* a QoL score without a scale: the generic code */
	assert_non_null(find(b, "Observation", "qol-score", 0));
	/* events: Encounters of class EMER (crisis contact, emergency visit) or
	 * IMP (admission), typed with the local event code */
	const cJSON *e0;
	int emer = 0, imp = 0;
	cJSON_ArrayForEach(e0, get_(b, "entry"))
	{
		const cJSON *r = get_(e0, "resource");
		if (strcmp(s_(r, "resourceType"), "Encounter") != 0)
			continue;
		const char *cls = s_(get_(r, "class"), "code");
		const char *kind =
			s_(cJSON_GetArrayItem(get_(cJSON_GetArrayItem(get_(r, "type"), 0), "coding"), 0), "code");
		if (!strcmp(cls, "EMER"))
			emer++, assert_true(!strcmp(kind, "crisis-contact") || !strcmp(kind, "emergency-visit"));
		else if (!strcmp(cls, "IMP"))
			imp++, assert_string_equal(kind, "admission"),
				assert_string_equal(s_(get_(r, "period"), "end"), "2024-05-28");
		else
			fail_msg("class %s", cls);
	}
	assert_int_equal(emer, 2);
	assert_int_equal(imp, 1);

	/* BARC-10: ten items 1..6, the total under its own local code */
	const cJSON *barc = find(b, "Observation", "barc-10-total", 0);
	assert_non_null(barc);
	assert_int_equal(get_(barc, "valueInteger")->valueint, 50);

	/* every Questionnaire an administration names is published in profiles/
	 * under that canonical, and is valid FHIR */
	const cJSON *e;
	int qrs = 0;
	cJSON_ArrayForEach(e, get_(b, "entry"))
	{
		const cJSON *r = get_(e, "resource");
		if (strcmp(s_(r, "resourceType"), "QuestionnaireResponse") != 0)
			continue;
		const char *canon = s_(r, "questionnaire");
		const char *id = strrchr(canon, '/') + 1;
		char path[300];
		snprintf(path, sizeof path, "profiles/Questionnaire-%s.json", id);
		char *text = read_file(path);
		if (!text)
			fail_msg("%s is not published (%s)", canon, path);
		cJSON *q = cJSON_Parse(text);
		assert_string_equal(s_(q, "url"), canon);
		struct resp r2;
		const char *fh[] = {"Content-Type: application/fhir+json", NULL};
		assert_int_equal(http_do(&g, "POST", "/fhir/$validate", fh, text, strlen(text), &r2), 0);
		assert_int_equal(r2.status, 200);
		assert_null(strstr(r2.body, "\"error\""));
		resp_free(&r2);
		cJSON_Delete(q);
		free(text);
		qrs++;
	}
	assert_true(qrs >= 5);
	cJSON_Delete(b);
}

/* ------------------------------------------------------------ round trip */

static void every_example_round_trips_byte_for_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		char *doc = read_example(example_names[i]);
		char *fhir = ingest_text(doc); /* as sent: decimal literals intact */
		char *back = export_text(fhir);
		if (strcmp(back, minify(doc)) != 0)
			fprintf(stderr, "# %s\n# want %s\n# got  %s\n", example_names[i], doc, back);
		assert_string_equal(back, doc);
		free(back);
		free(fhir);
		free(doc);
	}
}

/* Every example stored through POST /ingest (201, a transaction-response),
 * then read back per person with GET /export/outcomes?patient=ID from the
 * store: each person's part of the document comes back. Pushing the same
 * document again creates no new resources (every entry answers 200). */
static void store_round_trip(void **state)
{
	(void)state;
	const char *names[] = {"outcomes-phq9-gad7.json", "outcomes-all-instruments.json", "outcomes-edge-cases.json"};
	for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
		char *doc = read_example(names[k]);
		struct resp r;
		for (int pass = 0; pass < 2; pass++) {
			assert_int_equal(http_do(&g, "POST", "/ingest/outcomes", json_ct, doc, strlen(doc), &r), 0);
			assert_int_equal(r.status, 201);
			cJSON *tr = body_json(&r);
			resp_free(&r);
			assert_string_equal(s_(tr, "type"), "transaction-response");
			cJSON *e;
			cJSON_ArrayForEach(e, get_(tr, "entry"))
			{
				assert_string_equal(s_(get_(e, "response"), "status"), pass ? "200" : "201");
			}
			if (pass == 1) {
				cJSON_Delete(tr);
				break;
			}
			cJSON *want = cJSON_Parse(doc);
			size_t person = 0;
			cJSON_ArrayForEach(e, get_(tr, "entry"))
			{
				const char *loc = s_(get_(e, "response"), "location");
				const char *p = loc ? strstr(loc, "/Patient/") : NULL;
				if (!p)
					continue;
				char id[80], path[160];
				snprintf(id, sizeof id, "%.*s", (int)strcspn(p + 9, "/"), p + 9);
				snprintf(path, sizeof path, "/export/outcomes?patient=%s", id);
				assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
				if (r.status != 200)
					fprintf(stderr, "# %s: %ld %s\n", path, r.status, r.body);
				assert_int_equal(r.status, 200);
				cJSON *got = body_json(&r);
				resp_free(&r);
				cJSON *people = cJSON_GetObjectItem(want, "people");
				cJSON *exp = cJSON_Duplicate(want, 1);
				cJSON *only = cJSON_CreateArray();
				cJSON_AddItemToArray(only, cJSON_Duplicate(cJSON_GetArrayItem(people, (int)person), 1));
				cJSON_ReplaceItemInObject(exp, "people", only);
				cJSON_DeleteItemFromObject(got, "warnings");
				if (!cJSON_Compare(got, exp, true)) {
					char *a = cJSON_PrintUnformatted(got), *b = cJSON_PrintUnformatted(exp);
					fprintf(stderr, "# got  %s\n# want %s\n", a, b);
					free(a);
					free(b);
				}
				assert_true(cJSON_Compare(got, exp, true));
				cJSON_Delete(got);
				cJSON_Delete(exp);
				person++;
			}
			assert_int_equal(person, (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(want, "people")));
			cJSON_Delete(want);
			cJSON_Delete(tr);
		}
		free(doc);
	}
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/export/outcomes?patient=no-such-person", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

/* ------------------------------------------------------------ refusals */

struct want {
	const char *location, *code;
};

/* Ingests doc, expects 422 with exactly the issues listed (any order). */
static void refused(const char *doc, const struct want *want, size_t n)
{
	cJSON *oo = ingest(doc, 422);
	assert_string_equal(s_(oo, "resourceType"), "OperationOutcome");
	const cJSON *issues = get_(oo, "issue"), *is;
	if ((size_t)cJSON_GetArraySize(issues) != n) {
		char *t = cJSON_Print(oo);
		fprintf(stderr, "# want %zu issues, got %s\n", n, t);
		free(t);
	}
	assert_int_equal(cJSON_GetArraySize(issues), n);
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		cJSON_ArrayForEach(is, issues) {
			const char *loc = cJSON_GetArrayItem(get_(is, "expression"), 0)->valuestring;
			found |= strcmp(loc, want[i].location) == 0 && strcmp(s_(is, "code"), want[i].code) == 0 &&
				 strcmp(s_(is, "severity"), "error") == 0;
		}
		if (!found)
			fprintf(stderr, "# missing issue %s at %s\n", want[i].code, want[i].location);
		assert_true(found);
	}
	cJSON_Delete(oo);
}

#define HEAD "{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},"
#define ADM(n) "{\"identifier\":{\"system\":\"urn:a\",\"value\":\"" n "\"},"
#define A0 "/people/0/administrations/0"

static void refuses_missing_required_fields(void **state)
{
	(void)state;
	const struct want w[] = {{"/people/0/identifier", "required"},
				 {A0 "/identifier", "required"},
				 {A0 "/date", "required"},
				 {"/people/0/administrations/1/instrument", "required"},
				 {"/people/0/administrations/2/rater", "required"},
				 {"/people/0/administrations/2/goals/0/goal/system", "required"},
				 {"/people/0/administrations/2/goals/0/score", "required"},
				 {"/people/0/administrations/3/score", "required"},
				 {"/people/1/administrations", "required"},
				 {"/version", "required"}};
	refused("{\"format\":\"outcomes\",\"people\":[{\"name\":\"Participant 1\",\"administrations\":["
		"{\"instrument\":\"phq-9\",\"items\":[0,0,0,0,0,0,0,0,0]}," ADM("2") "\"date\":\"2024-01-01\"},"
		ADM("3") "\"instrument\":\"goal-attainment\",\"date\":\"2024-01-01\",\"goals\":[{\"goal\":{\"value\":\"g\"}}]},"
		ADM("4") "\"instrument\":\"qol\",\"date\":\"2024-01-01\"}]},"
		"{\"identifier\":{\"system\":\"urn:x\",\"value\":\"2\"}}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_unknown_instrument(void **state)
{
	(void)state;
	const struct want w[] = {{A0 "/instrument", "code-invalid"}};
	refused(HEAD "\"administrations\":[" ADM("1") "\"instrument\":\"bdi-ii\",\"date\":\"2024-01-01\"}]}]}", w, 1);
}

static void refuses_item_scores_out_of_range(void **state)
{
	(void)state;
	const struct want w[] = {{A0 "/items/4", "value"}, {A0 "/items/8", "value"}, {A0 "/items/2", "value"},
				 {"/people/0/administrations/1/items/0", "value"},
				 {"/people/0/administrations/2/goals/0/score", "value"}};
	refused(HEAD "\"administrations\":[" ADM("1") "\"instrument\":\"phq-9\",\"date\":\"2024-01-01\","
		     "\"items\":[0,1,\"2\",3,4,0,0,0,-1]},"
		ADM("2") "\"instrument\":\"gad-7\",\"date\":\"2024-01-01\",\"items\":[1.5,0,0,0,0,0,0]},"
		ADM("3") "\"instrument\":\"goal-attainment\",\"date\":\"2024-01-01\",\"rater\":\"person\","
			 "\"goals\":[{\"goal\":{\"system\":\"urn:g\",\"value\":\"1\"},\"score\":3}]}]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_wrong_item_count(void **state)
{
	(void)state;
	const struct want w[] = {{A0 "/items", "value"}, {"/people/0/administrations/1/items", "value"},
				 {"/people/0/administrations/2/items", "value"}};
	refused(HEAD "\"administrations\":[" ADM("1") "\"instrument\":\"phq-9\",\"date\":\"2024-01-01\","
		     "\"items\":[0,0,0,0,0,0,0,0]},"
		ADM("2") "\"instrument\":\"gad-7\",\"date\":\"2024-01-01\",\"items\":[0,0,0,0,0,0,0,0,0]},"
		ADM("3") "\"instrument\":\"ras\",\"date\":\"2024-01-01\",\"items\":[1,2,3]}]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_total_mismatch(void **state)
{
	(void)state;
	const struct want w[] = {{A0 "/total", "value"}, {"/people/0/administrations/1/total", "value"}};
	refused(HEAD "\"administrations\":[" ADM("1") "\"instrument\":\"phq-9\",\"date\":\"2024-01-01\","
		     "\"items\":[1,1,1,1,1,1,1,1,1],\"total\":10},"
		ADM("2") "\"instrument\":\"gad-7\",\"date\":\"2024-01-01\",\"total\":22}]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_malformed_dates(void **state)
{
	(void)state;
	const struct want w[] = {{A0 "/date", "value"},
				 {"/people/0/administrations/1/date", "value"},
				 {"/people/0/administrations/2/date", "value"},
				 {"/people/0/administrations/3/date", "value"}};
	refused(HEAD "\"administrations\":[" ADM("1") "\"instrument\":\"qol\",\"date\":\"2023-02-29\",\"score\":1},"
		ADM("2") "\"instrument\":\"qol\",\"date\":\"03/01/2024\",\"score\":1},"
		ADM("3") "\"instrument\":\"qol\",\"date\":\"2024-03-01T10:00:00Z\",\"score\":1},"
		ADM("4") "\"instrument\":\"qol\",\"date\":20240301,\"score\":1}]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_structure_and_duplicates(void **state)
{
	(void)state;
	const struct want w[] = {{"/format", "value"},
				 {"/extra", "structure"},
				 {"/people/0/colour", "structure"},
				 {"/people/0/administrations/1/identifier", "duplicate"},
				 {"/people/0/administrations/1/goals", "structure"},
				 {"/people/0/administrations/2/domains/a~1b~0c", "code-invalid"},
				 {"/people/0/administrations/2/domains/reliance-on-others", "value"},
				 {"/people/1/identifier", "duplicate"}};
	refused("{\"format\":\"other\",\"version\":1,\"extra\":true,\"people\":["
		"{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},\"colour\":\"blue\",\"administrations\":["
		ADM("1") "\"instrument\":\"qol\",\"date\":\"2024-01-01\",\"score\":1},"
		ADM("1") "\"instrument\":\"qol\",\"date\":\"2024-01-01\",\"score\":1,\"goals\":[]},"
		ADM("3") "\"instrument\":\"ras\",\"date\":\"2024-01-01\",\"total\":30,"
			 "\"domains\":{\"a/b~c\":2,\"reliance-on-others\":7}}]},"
		"{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},\"administrations\":[]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_what_is_not_json(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/outcomes", json_ct, "{\"people\":[", 11, &r), 0);
	assert_true(r.status == 400 || r.status == 422);
	cJSON *oo = body_json(&r);
	assert_string_equal(s_(oo, "resourceType"), "OperationOutcome");
	cJSON_Delete(oo);
	resp_free(&r);
	/* The whole document: JSON pointer "", an issue with no expression. */
	cJSON *arr = ingest("[]", 422);
	const cJSON *is = cJSON_GetArrayItem(get_(arr, "issue"), 0);
	assert_string_equal(s_(is, "code"), "structure");
	assert_null(get_(is, "expression"));
	cJSON_Delete(arr);
}

/* ------------------------------------------------------------ FHIR → native */

/* The message of the warning at location, or NULL. */
static const char *warning_at(const cJSON *doc, const char *location)
{
	const cJSON *w;
	cJSON_ArrayForEach(w, get_(doc, "warnings")) if (strcmp(s_(w, "location"), location) == 0) return s_(w, "message");
	return NULL;
}

static void official_r4_examples_export_with_warnings(void **state)
{
	(void)state;
	char *qr = read_r4("questionnaireresponse-example.json");
	char *out = export_text(qr);
	cJSON *doc = cJSON_Parse(out);
	assert_int_equal(cJSON_GetArraySize(get_(doc, "people")), 0);
	assert_non_null(strstr(warning_at(doc, "QuestionnaireResponse/3141"), "not an outcomes instrument"));
	cJSON_Delete(doc);
	free(out);
	free(qr);

	char *obs = read_r4("observation-example.json");
	out = export_text(obs);
	doc = cJSON_Parse(out);
	assert_non_null(strstr(warning_at(doc, "Observation/example"), "29463-7"));
	cJSON_Delete(doc);
	free(out);
	free(obs);

	char *pat = read_r4("patient-example.json");
	out = export_text(pat);
	doc = cJSON_Parse(out);
	const cJSON *person = cJSON_GetArrayItem(get_(doc, "people"), 0);
	assert_string_equal(s_(get_(person, "identifier"), "system"), "urn:oid:1.2.36.146.595.217.0.1");
	assert_string_equal(s_(get_(person, "identifier"), "value"), "12345");
	assert_string_equal(s_(person, "name"), "Peter James Chalmers");
	assert_non_null(warning_at(doc, "Patient/example.gender"));
	assert_non_null(warning_at(doc, "Patient/example.birthDate"));
	assert_non_null(warning_at(doc, "Patient/example.name[1]"));
	/* What an export gives back reads back in. */
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "warnings");
	char *again = cJSON_PrintUnformatted(doc);
	cJSON *b = ingest(again, 200);
	assert_int_equal(count(b, "Patient"), 1);
	cJSON_Delete(b);
	free(again);
	cJSON_Delete(doc);
	free(out);
	free(pat);
}

/* Resources the format does not carry at all give one warning per type, at
 * the first of them, not one per resource. */
static void what_the_format_leaves_out_is_summarised_by_type(void **state)
{
	(void)state;
	char *out = export_text("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
				"{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\","
				"\"class\":{\"code\":\"AMB\"}}},"
				"{\"resource\":{\"resourceType\":\"Goal\",\"id\":\"g1\"}},"
				"{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e2\",\"status\":\"finished\","
				"\"class\":{\"code\":\"AMB\"}}},"
				"{\"request\":{\"method\":\"GET\",\"url\":\"Patient\"}},"
				"{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e3\",\"status\":\"finished\","
				"\"class\":{\"code\":\"AMB\"}}}]}");
	cJSON *doc = cJSON_Parse(out);
	assert_non_null(doc);
	assert_int_equal(cJSON_GetArraySize(get_(doc, "warnings")), 3);
	assert_string_equal(warning_at(doc, "Encounter/e1"),
			    "3 Encounter resources are not carried by the outcomes format; not exported");
	assert_string_equal(warning_at(doc, "Goal/g1"), "1 Goal resource is not carried by the outcomes format; not exported");
	assert_string_equal(warning_at(doc, "Bundle.entry[3]"),
			    "1 entry without a resource is not carried by the outcomes format; not exported");
	assert_null(warning_at(doc, "Encounter/e2"));
	cJSON_Delete(doc);
	free(out);
}

static void foreign_scores_become_administrations(void **state)
{
	(void)state;
	char *in = read_file("tests/fuzz/corpus/outcomes/fhir-foreign-scores.json");
	char *out = export_text(in);
	cJSON *doc = cJSON_Parse(out);
	const cJSON *p0 = cJSON_GetArrayItem(get_(doc, "people"), 0), *p1 = cJSON_GetArrayItem(get_(doc, "people"), 1);
	const cJSON *a = cJSON_GetArrayItem(get_(p0, "administrations"), 0);
	assert_string_equal(s_(a, "instrument"), "phq-9");
	assert_int_equal(get_(a, "total")->valueint, 14);
	assert_string_equal(s_(a, "date"), "2024-01-05");
	assert_non_null(warning_at(doc, "Observation/t1.effective")); /* the time of day */
	assert_non_null(warning_at(doc, "Observation/t1.note"));
	assert_non_null(warning_at(doc, "Observation/t2")); /* a GAD-7 total of 40 */
	assert_non_null(warning_at(doc, "Goal/9"));
	a = cJSON_GetArrayItem(get_(p1, "administrations"), 0);
	assert_string_equal(s_(a, "rater"), "practitioner");
	assert_int_equal(get_(cJSON_GetArrayItem(get_(a, "goals"), 0), "score")->valueint, -1);
	cJSON_Delete(doc);
	free(out);
	free(in);
}

/* In process: the same export reports its warnings as issues. */
static void warnings_are_host_issues(void **state)
{
	(void)state;
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	assert_non_null(h);
	assert_int_equal(plugin_host_add_builtin(h, cw_plugin_entry(), "outcomes (built in)"), 0);
	assert_int_equal(plugin_host_start(h), 0);
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *text = read_r4("questionnaireresponse-example.json");
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(plugin_host_export(h, &ctx, "outcomes", CW_MEDIA_JSON, cJSON_Parse(text), "POST",
					    "/export/outcomes", &out, &len),
			 200);
	assert_int_equal(outcome_errors(&oo), 0);
	assert_true(oo.n >= 1);
	assert_int_equal(oo.issues[0].severity, OUTCOME_WARNING);
	assert_string_equal(oo.issues[0].expression, "QuestionnaireResponse/3141");
	outcome_release(&oo);
	arena_release(&arena);
	free(text);
	plugin_host_free(h);
}

/* ------------------------------------------------------------ configuration */

static void canonical_base_is_configurable(void **state)
{
	(void)state;
	struct gw own;
	assert_int_equal(gw_start(&own, "\"plugins\":{\"outcomes\":{\"canonical_base\":\"https://fhir.example.net/r4/\"}}"), 0);
	char *doc = read_example("outcomes-phq9-gad7.json");
	struct resp r;
	assert_int_equal(http_do(&own, "POST", "/ingest/outcomes?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"questionnaire\":\"https://fhir.example.net/r4/Questionnaire/phq-9\""));
	assert_non_null(strstr(r.body, "https://fhir.example.net/r4/StructureDefinition/outcomes-phq-9"));
	resp_free(&r);
	free(doc);
	assert_int_equal(gw_stop(&own, 15000), 0);

	static char out[65536];
	int rc = gw_run_expect_exit("\"plugins\":{\"outcomes\":{\"canonical_base\":\"not a uri\"}}", NULL, 15000, out,
				    sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "canonical_base"));
}

int main(void)
{
	const struct CMUnitTest served[] = {
		cmocka_unit_test(ingest_is_a_transaction_of_puts_with_stable_ids),
		cmocka_unit_test(phq9_and_gad7_map_to_loinc_panels_and_totals),
		cmocka_unit_test(goal_attainment_ras_and_qol),
		cmocka_unit_test(every_example_round_trips_byte_for_byte),
		cmocka_unit_test(store_round_trip),
		cmocka_unit_test(refuses_missing_required_fields),
		cmocka_unit_test(refuses_unknown_instrument),
		cmocka_unit_test(refuses_item_scores_out_of_range),
		cmocka_unit_test(refuses_wrong_item_count),
		cmocka_unit_test(refuses_total_mismatch),
		cmocka_unit_test(refuses_malformed_dates),
		cmocka_unit_test(refuses_structure_and_duplicates),
		cmocka_unit_test(refuses_what_is_not_json),
		cmocka_unit_test(official_r4_examples_export_with_warnings),
		cmocka_unit_test(what_the_format_leaves_out_is_summarised_by_type),
		cmocka_unit_test(foreign_scores_become_administrations),
	};
	const struct CMUnitTest standalone[] = {
		cmocka_unit_test(warnings_are_host_issues),
		cmocka_unit_test(canonical_base_is_configurable),
	};
	int rc = cmocka_run_group_tests_name("outcomes served", served, start, stop);
	rc += cmocka_run_group_tests_name("outcomes", standalone, NULL, NULL);
	return rc;
}
