/* End-to-end tests of the billing plugin (docs/billing.md): a month of
 * peer-support encounters pushed through POST /ingest/peer-support, the
 * Conditions, Coverage, payers and psychotherapy encounters written through
 * the FHIR REST API, then GET /export/billing?from=&to= (JSON and CSV),
 * POST /fhir/Claim/$build (every Claim checked by POST /fhir/$validate),
 * `crosswalk billing` on the same store, the minimum-necessary allow-lists,
 * the settings refused at start; $build and GET /export gathering stored
 * encounters (by period, person identifier, encounter id or identifier) and
 * refusing bad parameters; and the example of docs/billing.md, step by step
 * on a gateway with the default settings. */
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
#include "fhir/fhir_helpers.h"

#define FIXTURE "tests/fixtures/billing/peer-support-november.json"
#define ENC_NS "https://crosswalk.example.org/fhir/NamingSystem/peer-support-encounter"
#define PEOPLE "https://recovery.example.org/people"
#define STAFF "https://recovery.example.org/staff"
#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define CPT "http://www.ama-assn.org/go/cpt"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define PERIOD "from=2025-11-01&to=2025-11-30"

#define SETTINGS                                                                                             \
	"\"plugins\":{\"billing\":{"                                                                         \
	"\"billing_provider\":{\"npi\":\"1555555550\",\"name\":\"Example Peer Recovery Center\"},"          \
	"\"unit_rules\":{\"nj-h0038\":{\"unit_minutes\":15,\"round_up_at\":15,\"max_units_per_day\":4}},"   \
	"\"payers\":{\"NJ-MCD\":{\"H0038\":\"nj-h0038\"}},"                                                  \
	"\"code_periods\":{\"" ICD "\":{\"from\":\"2025-10-01\",\"to\":\"2026-09-30\"}}}}"

static struct gw g;

/* Text that lives in the input and must never reach a billing output. */
static const char *const never[] = {"Private note", "Narrative that must not leak", "Private clinical note",
				    "G-A1", "Sample Person", "Sample Specialist", "goal-planning", NULL};

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *person_id(const char *value)
{
	static char ids[8][FHIR_ID_SIZE];
	static int next;
	char *out = ids[next++ % 8];
	assert_int_equal(fhir_make_id(PEOPLE, value, out), 0);
	return out;
}

/* The FHIR id of an encounter key: peer-support ids are uuid5(the person's
 * Patient id, "Encounter|system|key"), the person P-2001 … P-2004 for keys
 * A-… to D-… (the fixture's people); the psychotherapy encounters were
 * written with their own ids. */
static const char *enc_id(const char *key)
{
	static char ids[64][FHIR_ID_SIZE];
	static int next;
	if (!strncmp(key, "pt-", 3))
		return key;
	char person[16], name[200];
	snprintf(person, sizeof person, "P-200%d", key[0] - 'A' + 1);
	snprintf(name, sizeof name, "Encounter|" ENC_NS "|%s", key);
	char *out = ids[next++ % 64];
	assert_int_equal(fhir_make_id(person_id(person), name, out), 0);
	return out;
}

static void put_entry(cJSON *entries, cJSON *res)
{
	cJSON *e = cJSON_CreateObject(), *req = cJSON_CreateObject();
	char url[160];
	snprintf(url, sizeof url, "%s/%s", sget(res, "resourceType"), sget(res, "id"));
	cJSON_AddStringToObject(req, "method", "PUT");
	cJSON_AddStringToObject(req, "url", url);
	cJSON_AddItemToObject(e, "resource", res);
	cJSON_AddItemToObject(e, "request", req);
	cJSON_AddItemToArray(entries, e);
}

static cJSON *parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *parse(const char *fmt, ...)
{
	static char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	cJSON *j = cJSON_Parse(buf);
	if (!j)
		fprintf(stderr, "# bad fixture JSON: %s\n", buf);
	assert_non_null(j);
	return j;
}

static void condition(cJSON *entries, const char *id, const char *patient, const char *enc_key, const char *code,
		      const char *recorded)
{
	char encref[200] = "";
	if (enc_key)
		snprintf(encref, sizeof encref, ",\"encounter\":{\"reference\":\"Encounter/%s\"}", enc_id(enc_key));
	put_entry(entries,
		  parse("{\"resourceType\":\"Condition\",\"id\":\"%s\",\"category\":[{\"coding\":[{\"system\":"
			"\"http://terminology.hl7.org/CodeSystem/condition-category\",\"code\":\"encounter-diagnosis\"}]}],"
			"\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"%s\"}],\"text\":\"Private clinical note\"},"
			"\"subject\":{\"reference\":\"Patient/%s\"}%s,\"recordedDate\":\"%s\","
			"\"note\":[{\"text\":\"Private clinical note about the person\"}]}",
			id, code, person_id(patient), encref, recorded));
}

static void psychotherapy(cJSON *entries, const char *id, const char *start, const char *end, int minutes)
{
	char prac[FHIR_ID_SIZE];
	assert_int_equal(fhir_make_id(STAFF, "S-21", prac), 0);
	put_entry(entries,
		  parse("{\"resourceType\":\"Encounter\",\"id\":\"%s\",\"text\":{\"status\":\"generated\",\"div\":"
			"\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Narrative that must not leak</div>\"},"
			"\"status\":\"finished\",\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
			"\"code\":\"AMB\"},\"type\":[{\"coding\":[{\"system\":\"" CPT "\",\"code\":\"90834\"}]}],"
			"\"subject\":{\"reference\":\"Patient/%s\"},\"participant\":[{\"individual\":{\"reference\":"
			"\"Practitioner/%s\"}}],\"period\":{\"start\":\"%s\",\"end\":\"%s\"},\"length\":{\"value\":%d,"
			"\"unit\":\"min\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"min\"},"
			"\"diagnosis\":[{\"condition\":{\"reference\":\"Condition/pt-dx-f33\"},\"rank\":2},"
			"{\"condition\":{\"reference\":\"Condition/pt-dx-f41\"},\"rank\":1}]}",
			id, person_id("P-2001"), prac, start, end, minutes));
}

static void organization(cJSON *entries, const char *id, const char *value, const char *name)
{
	put_entry(entries, parse("{\"resourceType\":\"Organization\",\"id\":\"%s\",\"identifier\":[{\"system\":"
				 "\"https://payers.example.org/id\",\"value\":\"%s\"}],\"name\":\"%s\"}",
				 id, value, name));
}

static void coverage(cJSON *entries, const char *id, const char *patient, const char *org, const char *member)
{
	put_entry(entries, parse("{\"resourceType\":\"Coverage\",\"id\":\"%s\",\"status\":\"active\",\"subscriberId\":"
				 "\"%s\",\"beneficiary\":{\"reference\":\"Patient/%s\"},\"period\":{\"start\":"
				 "\"2025-01-01\"},\"payor\":[{\"reference\":\"Organization/%s\"}]}",
				 id, member, person_id(patient), org));
}

static void store_context(void)
{
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	organization(entries, "org-mcd", "MCD-01", "State Medicaid Plan");
	organization(entries, "org-nj", "NJ-MCD", "New Jersey Medicaid Plan");
	coverage(entries, "cov-a", "P-2001", "org-mcd", "M-2001");
	coverage(entries, "cov-b", "P-2002", "org-mcd", "M-2002");
	coverage(entries, "cov-d", "P-2004", "org-nj", "M-2004");
	static const char *const a_keys[] = {"A-07", "A-08", "A-22", "A-23", "A-37", "A-38", "A-52", "A-53", "A-G60", "A-DEC"};
	char id[64];
	for (size_t i = 0; i < sizeof a_keys / sizeof a_keys[0]; i++) {
		snprintf(id, sizeof id, "dx-%zu-a", i);
		condition(entries, id, "P-2001", a_keys[i], "F33.1", "2025-11-01");
	}
	condition(entries, "dx-b1-z", "P-2002", "B-1", "Z59.00", "2025-11-03T10:30:00-05:00");
	condition(entries, "dx-b1-f", "P-2002", "B-1", "F41.1", "2025-11-03T10:00:00-05:00");
	condition(entries, "dx-b2", "P-2002", "B-2", "Z59.0", "2025-11-17");
	condition(entries, "dx-b4", "P-2002", "B-4", "F99.99", "2025-11-19");
	condition(entries, "dx-b5", "P-2002", "B-5", "F41.1", "2025-11-20");
	condition(entries, "dx-c1", "P-2003", "C-1", "F10.21", "2025-11-05");
	static const char *const d_keys[] = {"D-1", "D-2", "D-3", "D-4", "D-5"};
	for (size_t i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "dx-%zu-d", i);
		condition(entries, id, "P-2004", d_keys[i], "F33.1", "2025-11-24");
	}
	condition(entries, "pt-dx-f33", "P-2001", NULL, "F33.1", "2025-06-01");
	condition(entries, "pt-dx-f41", "P-2001", NULL, "F41.1", "2025-06-01");
	psychotherapy(entries, "pt-40", "2025-11-20T14:00:00-05:00", "2025-11-20T14:40:00-05:00", 40);
	psychotherapy(entries, "pt-30", "2025-11-20T16:00:00-05:00", "2025-11-20T16:30:00-05:00", 30);
	psychotherapy(entries, "pt-10", "2025-11-21T10:00:00-05:00", "2025-11-21T10:10:00-05:00", 10);
	psychotherapy(entries, "pt-55", "2025-11-21T14:00:00-05:00", "2025-11-21T14:55:00-05:00", 55);
	psychotherapy(entries, "pt-sep", "2025-09-15T14:00:00-04:00", "2025-09-15T14:40:00-04:00", 40);
	char *text = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir", ct, text, strlen(text), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	free(text);
}

static int gw_up(void **state)
{
	(void)state;
	if (gw_start(&g, SETTINGS) != 0)
		return -1;
	size_t len;
	char *doc = read_whole_file(FIXTURE, &len);
	assert_non_null(doc);
	const char *ct[] = {"Content-Type: application/json", NULL};
	struct resp r;
	if (http_do(&g, "POST", "/ingest/peer-support", ct, doc, strlen(doc), &r) != 0 || r.status != 201) {
		fprintf(stderr, "# ingest: %ld %s\n", r.status, r.body);
		return -1;
	}
	resp_free(&r);
	free(doc);
	store_context();
	return 0;
}

static int gw_down(void **state)
{
	(void)state;
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

/* ------------------------------------------------------- expectations */

struct row {
	const char *key;
	const char *reasons; /* NULL: billed */
	const char *code;
	long units, minutes;
	const char *mods, *dx, *pos, *npi, *payer, *person, *date;
};

#define NB(k, p, d, r) {k, r, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, p, d}
#define A(k, c, u, m, mods, dx, pos, d) {k, NULL, c, u, m, mods, dx, pos, "1234567893", "MCD-01", "P-2001", d}
#define D(k, u, m, d) {k, NULL, "H0038", u, m, "", "F33.1", "99", "1234567893", "NJ-MCD", "P-2004", d}

static const struct row expected[] = {
	NB("A-07", "P-2001", "2025-11-03", "below-one-unit"),
	{"B-1", NULL, "H0038", 3, 45, "", "F41.1;Z59.00", "99", "1987654328", "MCD-01", "P-2002", "2025-11-03"},
	A("A-08", "H0038", 1, 8, "", "F33.1", "99", "2025-11-04"),
	A("A-22", "H0038", 1, 22, "", "F33.1", "99", "2025-11-05"),
	NB("C-1", "P-2003", "2025-11-05", "no-provider-npi;no-coverage"),
	A("A-23", "H0038", 2, 23, "", "F33.1", "99", "2025-11-06"),
	A("A-37", "H0038", 2, 37, "", "F33.1", "99", "2025-11-07"),
	A("A-38", "H0038", 3, 38, "", "F33.1", "99", "2025-11-10"),
	A("A-52", "H0038", 3, 52, "", "F33.1", "99", "2025-11-11"),
	A("A-53", "H0038", 4, 53, "", "F33.1", "99", "2025-11-12"),
	A("A-G60", "H0038", 4, 60, "HQ", "F33.1", "11", "2025-11-13"),
	NB("B-2", "P-2002", "2025-11-17", "diagnosis-not-billable"),
	NB("B-3", "P-2002", "2025-11-18", "no-diagnosis"),
	NB("B-4", "P-2002", "2025-11-19", "unknown-diagnosis-code"),
	NB("B-5", "P-2002", "2025-11-20", "no-billing-code"),
	A("pt-40", "90834", 1, 40, "", "F41.1;F33.1", "11", "2025-11-20"),
	A("pt-30", "90832", 1, 30, "", "F41.1;F33.1", "11", "2025-11-20"),
	NB("pt-10", "P-2001", "2025-11-21", "below-one-unit"),
	A("pt-55", "90837", 1, 55, "", "F41.1;F33.1", "11", "2025-11-21"),
	D("D-1", 3, 45, "2025-11-24"),
	D("D-2", 1, 30, "2025-11-24"), /* 2 units, capped at 4 a day */
	NB("D-3", "P-2004", "2025-11-24", "daily-cap-reached"),
	NB("D-4", "P-2004", "2025-11-25", "below-one-unit"), /* full units only under nj-h0038 */
	D("D-5", 1, 22, "2025-11-26"),
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

static void join(const cJSON *arr, const char *member, char *out, size_t cap)
{
	out[0] = '\0';
	const cJSON *x;
	cJSON_ArrayForEach(x, arr) {
		const char *s = member ? sget(x, member) : x->valuestring;
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ";" : "", s ? s : "?");
	}
}

static char *get_text(const char *path, const char *accept, long want)
{
	struct resp r;
	const char *h[] = {accept, NULL};
	assert_int_equal(http_do(&g, "GET", path, accept ? h : NULL, NULL, 0, &r), 0);
	if (r.status != want)
		fprintf(stderr, "# %s: %ld %s\n", path, r.status, r.body);
	assert_int_equal(r.status, want);
	char *s = strdup(r.body);
	resp_free(&r);
	return s;
}

static void no_leak(const char *text)
{
	for (size_t i = 0; never[i]; i++)
		if (strstr(text, never[i])) {
			fprintf(stderr, "# leaked: %s\n", never[i]);
			fail();
		}
}

/* Every element path (arrays transparent) must be in allowed. */
static void paths_allowed(const cJSON *node, const char *prefix, const char *const *allowed)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, node) {
		char path[300];
		if (cJSON_IsArray(node))
			snprintf(path, sizeof path, "%s", prefix);
		else
			snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", c->string);
		if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			paths_allowed(c, path, allowed);
			continue;
		}
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(allowed[i], path);
		if (!ok) {
			fprintf(stderr, "# element not on the allow-list: %s\n", path);
			fail();
		}
	}
}

static const char *const extract_allowed[] = {
	"version", "lines.encounter", "lines.encounter_identifier.system", "lines.encounter_identifier.value",
	"lines.patient.system", "lines.patient.value", "lines.service_date",
	"lines.provider_npi", "lines.code.system", "lines.code.code", "lines.modifiers", "lines.minutes",
	"lines.units", "lines.diagnoses", "lines.place_of_service", "lines.payer.id", "lines.payer.name",
	"lines.payer.member_id", "not_billed.encounter", "not_billed.encounter_identifier.system",
	"not_billed.encounter_identifier.value", "not_billed.patient.system", "not_billed.patient.value",
	"not_billed.service_date", "not_billed.reasons.reason", "not_billed.reasons.detail", NULL};

static const char *const claim_allowed[] = {
	"resourceType", "id", "status", "type.coding.system", "type.coding.code", "use", "patient.reference",
	"patient.identifier.system", "patient.identifier.value", "billablePeriod.start", "billablePeriod.end",
	"created", "insurer.reference", "provider.reference", "provider.type", "provider.identifier.system", "provider.identifier.value",
	"provider.display", "priority.coding.system", "priority.coding.code", "careTeam.sequence",
	"careTeam.provider.reference", "careTeam.provider.identifier.system", "careTeam.provider.identifier.value",
	"careTeam.role.coding.system", "careTeam.role.coding.code", "diagnosis.sequence",
	"diagnosis.diagnosisCodeableConcept.coding.system", "diagnosis.diagnosisCodeableConcept.coding.code",
	"insurance.sequence", "insurance.focal", "insurance.coverage.reference", "item.sequence",
	"item.careTeamSequence", "item.diagnosisSequence", "item.productOrService.coding.system",
	"item.productOrService.coding.code", "item.modifier.coding.system", "item.modifier.coding.code",
	"item.servicedDate", "item.locationCodeableConcept.coding.system", "item.locationCodeableConcept.coding.code",
	"item.quantity.value", "item.encounter.reference", "item.encounter.identifier.system",
	"item.encounter.identifier.value", NULL};

/* -------------------------------------------------------------- tests */

static void export_json_rows_units_and_reasons(void **state)
{
	(void)state;
	char *text = get_text("/export/billing?" PERIOD, "Accept: application/json", 200);
	no_leak(text);
	cJSON *doc = cJSON_Parse(text);
	assert_non_null(doc);
	paths_allowed(doc, "", extract_allowed);
	const cJSON *lines = get(doc, "lines"), *nb = get(doc, "not_billed");
	int li = 0, ni = 0, billed = 0;
	for (size_t i = 0; i < N_EXPECTED; i++)
		billed += expected[i].reasons == NULL;
	assert_int_equal(cJSON_GetArraySize(lines), billed);
	assert_int_equal(cJSON_GetArraySize(nb), (int)N_EXPECTED - billed);
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct row *w = &expected[i];
		char buf[256];
		const cJSON *o = cJSON_GetArrayItem(w->reasons ? nb : lines, w->reasons ? ni++ : li++);
		if (strcmp(sget(o, "encounter"), enc_id(w->key)) != 0)
			fprintf(stderr, "# row %zu: expected %s\n", i, w->key);
		assert_string_equal(sget(o, "encounter"), enc_id(w->key));
		/* the program's own identifier beside the server id (the
		 * psychotherapy encounters were written without one) */
		if (strncmp(w->key, "pt-", 3) != 0) {
			assert_string_equal(sget(get(o, "encounter_identifier"), "system"), ENC_NS);
			assert_string_equal(sget(get(o, "encounter_identifier"), "value"), w->key);
		} else {
			assert_null(get(o, "encounter_identifier"));
		}
		assert_string_equal(sget(get(o, "patient"), "value"), w->person);
		assert_string_equal(sget(get(o, "patient"), "system"), PEOPLE);
		assert_string_equal(sget(o, "service_date"), w->date);
		if (w->reasons) {
			join(get(o, "reasons"), "reason", buf, sizeof buf);
			if (strcmp(buf, w->reasons))
				fprintf(stderr, "# %s: %s\n", w->key, buf);
			assert_string_equal(buf, w->reasons);
			continue;
		}
		assert_string_equal(sget(get(o, "code"), "code"), w->code);
		assert_string_equal(sget(get(o, "code"), "system"), w->code[0] == 'H' ? HCPCS : CPT);
		if ((long)get(o, "units")->valuedouble != w->units)
			fprintf(stderr, "# %s: units %g, expected %ld\n", w->key, get(o, "units")->valuedouble, w->units);
		assert_int_equal((long)get(o, "units")->valuedouble, w->units);
		assert_int_equal((long)get(o, "minutes")->valuedouble, w->minutes);
		join(get(o, "modifiers"), NULL, buf, sizeof buf);
		assert_string_equal(buf, w->mods);
		join(get(o, "diagnoses"), NULL, buf, sizeof buf);
		assert_string_equal(buf, w->dx);
		assert_string_equal(sget(o, "place_of_service"), w->pos);
		assert_string_equal(sget(o, "provider_npi"), w->npi);
		assert_string_equal(sget(get(o, "payer"), "id"), w->payer);
		assert_non_null(sget(get(o, "payer"), "member_id"));
	}
	/* A-DEC is outside the period */
	assert_null(strstr(text, enc_id("A-DEC")));
	cJSON_Delete(doc);
	free(text);
}

static void export_csv_rows(void **state)
{
	(void)state;
	char *text = get_text("/export/billing?" PERIOD, "Accept: text/csv", 200);
	no_leak(text);
	const char *header = "status,encounter,encounter_identifier_system,encounter_identifier_value,"
			     "patient_system,patient_id,service_date,provider_npi,code_system,code,"
			     "modifiers,minutes,units,diagnoses,place_of_service,payer_id,payer_name,member_id,reasons\n";
	assert_int_equal(strncmp(text, header, strlen(header)), 0);
	size_t rows = 0;
	for (const char *p = text; *p; p++)
		rows += *p == '\n';
	assert_int_equal(rows, N_EXPECTED + 1);
	char want[600];
	snprintf(want, sizeof want,
		 "\nbilled,%s," ENC_NS ",A-G60," PEOPLE ",P-2001,2025-11-13,1234567893," HCPCS ",H0038,HQ,60,4,F33.1,11,"
		 "MCD-01,State Medicaid Plan,M-2001,\n",
		 enc_id("A-G60"));
	if (!strstr(text, want))
		fprintf(stderr, "# %s\n", text);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof want,
		 "\nbilled,%s," ENC_NS ",B-1," PEOPLE ",P-2002,2025-11-03,1987654328," HCPCS ",H0038,,45,3,F41.1;Z59.00,99,"
		 "MCD-01,State Medicaid Plan,M-2002,\n",
		 enc_id("B-1"));
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof want,
		 "\nnot-billed,%s," ENC_NS ",C-1," PEOPLE ",P-2003,2025-11-05,,,,,,,,,,,,no-provider-npi;no-coverage\n",
		 enc_id("C-1"));
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof want, "\nbilled,pt-30,,," PEOPLE ",P-2001,2025-11-20,1234567893," CPT ",90832,,30,1,"
				    "F41.1;F33.1,11,MCD-01,State Medicaid Plan,M-2001,\n");
	assert_non_null(strstr(text, want));
	free(text);
}

/* The context of the month (and one September encounter) as the client of
 * $build would send it: a collection Bundle from FHIR searches. */
static char *build_input(void)
{
	static const char *const searches[] = {
		"/fhir/Encounter?date=ge2025-11-01&date=le2025-11-30&_count=500", "/fhir/Condition?_count=500",
		"/fhir/Coverage?_count=500", "/fhir/Patient?_count=500", "/fhir/Practitioner?_count=500",
		"/fhir/Organization?_count=500", "/fhir/Encounter?_id=pt-sep", NULL};
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "collection");
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t i = 0; searches[i]; i++) {
		char *t = get_text(searches[i], NULL, 200);
		cJSON *s = cJSON_Parse(t);
		free(t);
		cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(s, "entry")) {
			cJSON *ne = cJSON_CreateObject();
			cJSON_AddItemToObject(ne, "resource", cJSON_Duplicate(get(e, "resource"), 1));
			cJSON_AddItemToArray(entries, ne);
		}
		cJSON_Delete(s);
	}
	char *text = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	return text;
}

static const cJSON *claim_of(const cJSON *bundle, const char *person)
{
	const cJSON *e;
	char ref[80];
	snprintf(ref, sizeof ref, "Patient/%s", person_id(person));
	cJSON_ArrayForEach(e, get(bundle, "entry")) {
		const cJSON *r = get(e, "resource");
		if (!strcmp(sget(r, "resourceType"), "Claim") && !strcmp(sget(get(r, "patient"), "reference"), ref))
			return r;
	}
	return NULL;
}

static void item_codes(const cJSON *claim, char *codes, char *qty, size_t cap)
{
	codes[0] = qty[0] = '\0';
	const cJSON *it;
	cJSON_ArrayForEach(it, get(claim, "item")) {
		const cJSON *cd = cJSON_GetArrayItem(get(get(it, "productOrService"), "coding"), 0);
		snprintf(codes + strlen(codes), cap - strlen(codes), "%s%s", codes[0] ? ";" : "", sget(cd, "code"));
		snprintf(qty + strlen(qty), cap - strlen(qty), "%s%g", qty[0] ? ";" : "",
			 get(get(it, "quantity"), "value")->valuedouble);
	}
}

static void build_claims(void **state)
{
	(void)state;
	char *in = build_input();
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Claim/$build", ct, in, strlen(in), &r), 0);
	free(in);
	if (r.status != 200)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 200);
	no_leak(r.body);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	assert_string_equal(sget(b, "type"), "collection");
	assert_int_equal(cJSON_GetArraySize(get(b, "entry")), 4); /* three Claims, one OperationOutcome */

	char codes[512], qty[256];
	const cJSON *a = claim_of(b, "P-2001");
	assert_non_null(a);
	item_codes(a, codes, qty, sizeof codes);
	assert_string_equal(codes, "H0038;H0038;H0038;H0038;H0038;H0038;H0038;H0038;90834;90832;90837");
	assert_string_equal(qty, "1;1;2;2;3;3;4;4;1;1;1");
	const cJSON *d0 = cJSON_GetArrayItem(get(a, "diagnosis"), 0), *d1 = cJSON_GetArrayItem(get(a, "diagnosis"), 1);
	assert_int_equal(cJSON_GetArraySize(get(a, "diagnosis")), 2);
	assert_string_equal(sget(cJSON_GetArrayItem(get(get(d0, "diagnosisCodeableConcept"), "coding"), 0), "code"), "F33.1");
	assert_string_equal(sget(cJSON_GetArrayItem(get(get(d1, "diagnosisCodeableConcept"), "coding"), 0), "code"), "F41.1");
	const cJSON *group = cJSON_GetArrayItem(get(a, "item"), 7), *pt = cJSON_GetArrayItem(get(a, "item"), 8);
	assert_string_equal(sget(cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(group, "modifier"), 0), "coding"), 0), "code"), "HQ");
	assert_string_equal(sget(cJSON_GetArrayItem(get(get(group, "locationCodeableConcept"), "coding"), 0), "code"), "11");
	assert_string_equal(sget(group, "servicedDate"), "2025-11-13");
	const cJSON *gref = cJSON_GetArrayItem(get(group, "encounter"), 0);
	assert_string_equal(sget(get(gref, "identifier"), "system"), ENC_NS);
	assert_string_equal(sget(get(gref, "identifier"), "value"), "A-G60");
	assert_int_equal(cJSON_GetArraySize(get(pt, "diagnosisSequence")), 2);
	assert_int_equal(cJSON_GetArrayItem(get(pt, "diagnosisSequence"), 0)->valueint, 2); /* F41.1 ranked first */
	assert_int_equal(cJSON_GetArrayItem(get(pt, "diagnosisSequence"), 1)->valueint, 1);
	assert_string_equal(sget(get(get(a, "provider"), "identifier"), "value"), "1555555550");
	assert_string_equal(sget(get(get(cJSON_GetArrayItem(get(a, "careTeam"), 0), "provider"), "identifier"), "value"),
			    "1234567893");
	assert_string_equal(sget(get(cJSON_GetArrayItem(get(a, "insurance"), 0), "coverage"), "reference"), "Coverage/cov-a");
	assert_string_equal(sget(get(a, "insurer"), "reference"), "Organization/org-mcd");
	assert_string_equal(sget(a, "use"), "claim");

	const cJSON *bc = claim_of(b, "P-2002"), *dc = claim_of(b, "P-2004");
	assert_non_null(bc);
	assert_non_null(dc);
	item_codes(bc, codes, qty, sizeof codes);
	assert_string_equal(qty, "3");
	assert_int_equal(cJSON_GetArraySize(get(bc, "diagnosis")), 2);
	item_codes(dc, codes, qty, sizeof codes);
	assert_string_equal(qty, "3;1;1");
	assert_null(claim_of(b, "P-2003"));

	/* the OperationOutcome: every reason of every encounter not billed */
	const cJSON *oo = get(cJSON_GetArrayItem(get(b, "entry"), 3), "resource");
	assert_string_equal(sget(oo, "resourceType"), "OperationOutcome");
	char reasons[1024] = "";
	const cJSON *is;
	cJSON_ArrayForEach(is, get(oo, "issue")) {
		const cJSON *cd = cJSON_GetArrayItem(get(get(is, "details"), "coding"), 0);
		snprintf(reasons + strlen(reasons), sizeof reasons - strlen(reasons), "%s%s", reasons[0] ? ";" : "",
			 sget(cd, "code"));
	}
	assert_string_equal(reasons, "code-not-valid-on-date;below-one-unit;no-provider-npi;no-coverage;"
				     "diagnosis-not-billable;no-diagnosis;unknown-diagnosis-code;no-billing-code;"
				     "below-one-unit;daily-cap-reached;below-one-unit");
	char *oot = cJSON_PrintUnformatted(oo);
	assert_non_null(strstr(oot, "Encounter/pt-sep not billed"));
	free(oot);

	/* every Claim: structurally valid, and nothing but the allowed elements */
	const cJSON *e;
	cJSON_ArrayForEach(e, get(b, "entry")) {
		const cJSON *res = get(e, "resource");
		if (strcmp(sget(res, "resourceType"), "Claim"))
			continue;
		paths_allowed(res, "", claim_allowed);
		char *t = cJSON_PrintUnformatted(res);
		struct resp v;
		assert_int_equal(http_do(&g, "POST", "/fhir/$validate", ct, t, strlen(t), &v), 0);
		assert_int_equal(v.status, 200);
		cJSON *vo = cJSON_Parse(v.body);
		const cJSON *vi;
		cJSON_ArrayForEach(vi, get(vo, "issue")) {
			const char *sev = sget(vi, "severity");
			if (!strcmp(sev, "error") || !strcmp(sev, "fatal"))
				fprintf(stderr, "# invalid Claim: %s\n", v.body);
			assert_string_not_equal(sev, "error");
			assert_string_not_equal(sev, "fatal");
		}
		cJSON_Delete(vo);
		resp_free(&v);
		free(t);
	}
	cJSON_Delete(b);
}

static void build_refuses_what_is_not_a_bundle(void **state)
{
	(void)state;
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	const char *pat = "{\"resourceType\":\"Patient\"}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Claim/$build", ct, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);
	const char *empty = "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Claim/$build", ct, empty, strlen(empty), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "every encounter is billed (0)"));
	resp_free(&r);
}

/* ------------------------------------------------ gathering from the store */

static cJSON *post_build(const char *body, long want)
{
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Claim/$build", ct, body, strlen(body), &r), 0);
	if (r.status != want)
		fprintf(stderr, "# $build: %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, want);
	cJSON *b = cJSON_Parse(r.body);
	assert_non_null(b);
	if (want != 200)
		assert_string_equal(sget(b, "resourceType"), "OperationOutcome");
	resp_free(&r);
	return b;
}

/* "id;id;…" of the Claims of a $build answer, in order. */
static void claim_ids(const cJSON *bundle, char *out, size_t cap)
{
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, get(bundle, "entry")) {
		const cJSON *r = get(e, "resource");
		if (!strcmp(sget(r, "resourceType"), "Claim"))
			snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ";" : "", sget(r, "id"));
	}
}

/* $build with a period gathers the stored month itself: the same Claims
 * (same deterministic ids, same lines) as the Bundle the client gathered. */
static void build_gathers_a_period(void **state)
{
	(void)state;
	char *in = build_input();
	cJSON *posted = post_build(in, 200);
	free(in);
	cJSON *gathered = post_build("{\"resourceType\":\"Parameters\",\"parameter\":["
				     "{\"name\":\"from\",\"valueDate\":\"2025-11-01\"},"
				     "{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
				     200);
	char *gt = cJSON_PrintUnformatted(gathered);
	no_leak(gt);
	free(gt);
	char a[1024], b[1024], codes[512], qty[256];
	claim_ids(posted, a, sizeof a);
	claim_ids(gathered, b, sizeof b);
	assert_int_equal(cJSON_GetArraySize(get(gathered, "entry")), 4);
	assert_string_equal(a, b);
	item_codes(claim_of(gathered, "P-2001"), codes, qty, sizeof codes);
	assert_string_equal(codes, "H0038;H0038;H0038;H0038;H0038;H0038;H0038;H0038;90834;90832;90837");
	assert_string_equal(qty, "1;1;2;2;3;3;4;4;1;1;1");
	/* the reasons of the month, without pt-sep (September), and no place in
	 * a Bundle the client never saw */
	const cJSON *oo = get(cJSON_GetArrayItem(get(gathered, "entry"), 3), "resource");
	assert_string_equal(sget(oo, "resourceType"), "OperationOutcome");
	assert_int_equal(cJSON_GetArraySize(get(oo, "issue")), 10);
	assert_null(get(cJSON_GetArrayItem(get(oo, "issue"), 0), "expression"));
	cJSON_Delete(posted);
	cJSON_Delete(gathered);

	/* one person's month, named by the person's identifier */
	gathered = post_build("{\"resourceType\":\"Parameters\",\"parameter\":["
			      "{\"name\":\"patient\",\"valueString\":\"" PEOPLE "|P-2004\"},"
			      "{\"name\":\"from\",\"valueDate\":\"2025-11-01\"},"
			      "{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
			      200);
	assert_int_equal(cJSON_GetArraySize(get(gathered, "entry")), 2);
	item_codes(claim_of(gathered, "P-2004"), codes, qty, sizeof codes);
	assert_string_equal(qty, "3;1;1");
	cJSON_Delete(gathered);
}

/* $build with Encounters named by the program's own identifier or by id. */
static void build_gathers_named_encounters(void **state)
{
	(void)state;
	char body[1024];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Parameters\",\"parameter\":["
		 "{\"name\":\"encounter\",\"valueReference\":{\"identifier\":{\"system\":\"" ENC_NS "\",\"value\":\"A-G60\"}}},"
		 "{\"name\":\"encounter\",\"valueReference\":{\"reference\":\"Encounter/pt-40\"}},"
		 "{\"name\":\"encounter\",\"valueReference\":{\"identifier\":{\"system\":\"" ENC_NS "\",\"value\":\"C-1\"}}}]}");
	cJSON *b = post_build(body, 200);
	assert_int_equal(cJSON_GetArraySize(get(b, "entry")), 2);
	char codes[256], qty[128];
	const cJSON *a = claim_of(b, "P-2001");
	item_codes(a, codes, qty, sizeof codes);
	assert_string_equal(codes, "H0038;90834");
	assert_string_equal(qty, "4;1");
	const cJSON *oo = get(cJSON_GetArrayItem(get(b, "entry"), 1), "resource");
	char *oot = cJSON_PrintUnformatted(oo);
	char want[160];
	snprintf(want, sizeof want, "Encounter/%s not billed", enc_id("C-1"));
	assert_non_null(strstr(oot, want));
	free(oot);
	cJSON_Delete(b);

	/* a stored Encounter that is not there, by id or by identifier: 404 */
	cJSON_Delete(post_build("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\","
				"\"valueReference\":{\"reference\":\"Encounter/no-such-visit\"}}]}",
				404));
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\",\"valueReference\":"
		 "{\"identifier\":{\"system\":\"" ENC_NS "\",\"value\":\"Z-99\"}}}]}");
	cJSON_Delete(post_build(body, 404));

	/* parameters that are not what $build takes: 400 */
	static const char *const bad[] = {
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueDate\":\"2025-11-30\"},"
		"{\"name\":\"to\",\"valueDate\":\"2025-11-01\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueDate\":\"2025-11-01\"},"
		"{\"name\":\"from\",\"valueDate\":\"2025-11-02\"},{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueString\":\"2025-11-01\"},"
		"{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueDate\":\"2025-11\"},"
		"{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueDate\":\"2025-11-01\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"since\",\"valueDate\":\"2025-11-01\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\",\"valueReference\":"
		"{\"reference\":\"Encounter/pt-40\"}},{\"name\":\"from\",\"valueDate\":\"2025-11-01\"},"
		"{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}",
		"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\",\"valueReference\":"
		"{\"reference\":\"Patient/pt-40\"}}]}",
		"{\"resourceType\":\"Parameters\"}",
		NULL};
	for (size_t i = 0; bad[i]; i++)
		cJSON_Delete(post_build(bad[i], 400));
}

/* GET /export/{format}?patient= takes the person's identifier as well as
 * the server id, alone or with a period. */
static void export_by_person_identifier(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof path, "/export/billing?patient=%s&_format=json", person_id("P-2004"));
	char *by_id = get_text(path, NULL, 200);
	char *by_ident = get_text("/export/billing?patient=https%3A%2F%2Frecovery.example.org%2Fpeople%7CP-2004"
				  "&_format=json",
				  NULL, 200);
	assert_string_equal(by_id, by_ident);
	cJSON *doc = cJSON_Parse(by_ident);
	assert_int_equal(cJSON_GetArraySize(get(doc, "lines")) + cJSON_GetArraySize(get(doc, "not_billed")), 5);
	cJSON_Delete(doc);
	free(by_id);
	free(by_ident);
	/* with a period: that person's encounters in it only */
	char *day = get_text("/export/billing?patient=" PEOPLE "|P-2004&from=2025-11-24&to=2025-11-24&_format=csv", NULL,
			     200);
	size_t rows = 0;
	for (const char *p = day; *p; p++)
		rows += *p == '\n';
	assert_int_equal(rows, 1 + 3); /* D-1, D-2, D-3 */
	assert_non_null(strstr(day, ",D-3,"));
	assert_null(strstr(day, ",D-4,"));
	free(day);
	/* nobody has it: 404; two people have it: 400, never a guess */
	free(get_text("/export/billing?patient=" PEOPLE "|P-9999", NULL, 404));
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	put_entry(entries, parse("{\"resourceType\":\"Patient\",\"id\":\"twin-1\",\"identifier\":[{\"system\":"
				 "\"urn:example:twins\",\"value\":\"T,1\"}]}"));
	put_entry(entries, parse("{\"resourceType\":\"Patient\",\"id\":\"twin-2\",\"identifier\":[{\"system\":"
				 "\"urn:example:twins\",\"value\":\"T,1\"}]}"));
	char *text = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir", ct, text, strlen(text), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	free(text);
	char *two = get_text("/export/billing?patient=urn:example:twins%7CT%2C1", NULL, 400);
	assert_non_null(strstr(two, "multiple-matches"));
	free(two);
}

/* Every parameter of GET and POST /export/{format}: dates YYYY-MM-DD and a
 * real day, from not after to, each at most once, nothing unknown. */
static void export_refuses_bad_parameters(void **state)
{
	(void)state;
	static const struct {
		const char *query, *says;
	} cases[] = {
		{"/export/billing?from=2025-11-30&to=2025-11-01", "from is after to"},
		{"/export/billing?from=2025-11&to=2025-11-30", "YYYY-MM-DD"},
		{"/export/billing?from=2025-11-01&to=2025-11-31", "YYYY-MM-DD"},
		{"/export/billing?from=2025-02-29&to=2025-03-01", "YYYY-MM-DD"},
		{"/export/billing?from=2025-11-01T00:00:00Z&to=2025-11-30", "YYYY-MM-DD"},
		{"/export/billing?from=20251101&to=2025-11-30", "YYYY-MM-DD"},
		{"/export/billing?from=2025-11-01&from=2025-11-02&to=2025-11-30", "more than once"},
		{"/export/billing?from=2025-11-01&to=2025-11-30&to=2025-11-29", "more than once"},
		{"/export/billing?patient=a&patient=b", "more than once"},
		{"/export/billing?" PERIOD "&_format=json&_format=csv", "more than once"},
		{"/export/billing?" PERIOD "&page=2", "not a parameter"},
		{"/export/billing?patient=x&from=2025-11-01", "go together"},
		{"/export/billing?to=2025-11-01", "go together"},
		{"/export/billing?patient=", "Patient id"},
		{"/export/billing?patient=%7C", "Patient id"},
		{"/export/peer-support?patient=a&patient=b", "more than once"},
		{"/export/peer-support?from=2025-11-30&to=2025-11-01", "from is after to"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct resp r;
		assert_int_equal(http_do(&g, "GET", cases[i].query, NULL, NULL, 0, &r), 0);
		if (r.status != 400 || !strstr(r.body, cases[i].says))
			fprintf(stderr, "# %s: %ld %s\n", cases[i].query, r.status, r.body);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "\"OperationOutcome\""));
		assert_non_null(strstr(r.body, cases[i].says));
		resp_free(&r);
	}
	/* POST /export/{format}: its one parameter, once */
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	const char *empty = "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/export/billing?_format=json&_format=csv", ct, empty, strlen(empty), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "more than once"));
	resp_free(&r);
	assert_int_equal(http_do(&g, "POST", "/export/billing?from=2025-11-01", ct, empty, strlen(empty), &r), 0);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(http_do(&g, "POST", "/export/billing?_format=json", ct, empty, strlen(empty), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* one day (from equal to to) is a period */
	free(get_text("/export/billing?from=2025-11-24&to=2025-11-24", NULL, 200));
}

static void cli_prints_the_same_extract(void **state)
{
	(void)state;
	char *want = get_text("/export/billing?" PERIOD, "Accept: application/json", 200);
	char extra[2048];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"," SETTINGS, g.dir);
	static char out[1 << 16];
	const char *args[] = {"billing", "--from", "2025-11-01", "--to", "2025-11-30", NULL};
	assert_int_equal(gw_run_command(extra, args, 15000, out, sizeof out), 0);
	if (strncmp(out, want, strlen(want)) != 0)
		fprintf(stderr, "# got %s\n", out);
	assert_int_equal(strncmp(out, want, strlen(want)), 0);
	free(want);
	want = get_text("/export/billing?" PERIOD, "Accept: text/csv", 200);
	const char *csv[] = {"billing", "--from", "2025-11-01", "--to", "2025-11-30", "--csv", NULL};
	assert_int_equal(gw_run_command(extra, csv, 15000, out, sizeof out), 0);
	assert_int_equal(strncmp(out, want, strlen(want)), 0);
	free(want);
	const char *bad[] = {"billing", "--from", "2025-11-01", NULL};
	assert_int_equal(gw_run_command(extra, bad, 15000, out, sizeof out), 2);
	const char *baddate[] = {"billing", "--from", "November", "--to", "2025-11-30", NULL};
	assert_int_equal(gw_run_command(extra, baddate, 15000, out, sizeof out), 2);
	const char *reversed[] = {"billing", "--from", "2025-11-30", "--to", "2025-11-01", NULL};
	assert_int_equal(gw_run_command(extra, reversed, 15000, out, sizeof out), 2);
	assert_non_null(strstr(out, "from is after to"));
	const char *partial[] = {"billing", "--from", "2025-11", "--to", "2025-11-30", NULL};
	assert_int_equal(gw_run_command(extra, partial, 15000, out, sizeof out), 2);
}

static void refuses_bad_settings(void **state)
{
	(void)state;
	static const struct {
		const char *json, *where;
	} cases[] = {
		{"{\"unit_rules\":{\"x\":{\"unit_minutes\":15,\"round_up_at\":20}}}",
		 "plugins.billing.unit_rules.x.round_up_at"},
		{"{\"unit_rules\":{\"x\":{\"unit_minutes\":15,\"cap\":2}}}", "plugins.billing.unit_rules.x.cap"},
		{"{\"default_unit_rule\":\"none\"}", "plugins.billing.default_unit_rule"},
		{"{\"payers\":{\"P1\":{\"H0038\":\"none\"}}}", "plugins.billing.payers.P1.H0038"},
		{"{\"payers\":{\"P1\":{\"90834\":\"cms-8-minute\"}}}", "plugins.billing.payers.P1.90834"},
		{"{\"timed_codes\":[\"HQ\"]}", "plugins.billing.timed_codes[0]"},
		{"{\"modifiers\":{\"group\":[\"H0038\"]}}", "plugins.billing.modifiers.group[0]"},
		{"{\"place_of_service\":{\"AMB\":\"1\"}}", "plugins.billing.place_of_service.AMB"},
		{"{\"time_bands\":[{\"system\":\"" CPT "\",\"bands\":[{\"code\":\"90832\",\"from\":16,\"to\":40},"
		 "{\"code\":\"90834\",\"from\":38}]}]}",
		 "plugins.billing.time_bands[0].bands[1]"},
		{"{\"billing_provider\":{\"npi\":\"1234567890\"}}", "plugins.billing.billing_provider"},
		{"{\"code_periods\":{\"" ICD "\":{\"from\":\"2026-10-01\",\"to\":\"2025-09-30\"}}}",
		 "plugins.billing.code_periods"},
		{"{\"rules\":{}}", "plugins.billing.rules"},
		{"{\"payer_rules\":{\"P1\":{\"supervisor_required\":1}}}",
		 "plugins.billing.payer_rules.P1.supervisor_required"},
		{"{\"payer_rules\":{\"P1\":{\"modifiers\":[\"H0038\"]}}}",
		 "plugins.billing.payer_rules.P1.modifiers[0]"},
		{"{\"payer_rules\":{\"P1\":{\"units_before_authorization\":0}}}",
		 "plugins.billing.payer_rules.P1.units_before_authorization"},
		{"{\"payer_rules\":{\"P1\":{\"year_start\":\"02-30\"}}}", "plugins.billing.payer_rules.P1.year_start"},
		{"{\"payer_rules\":{\"P1\":{\"authorization_per\":\"month\"}}}",
		 "plugins.billing.payer_rules.P1.authorization_per"},
		{"{\"payer_rules\":{\"P1\":{\"cap\":3}}}", "plugins.billing.payer_rules.P1.cap"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char extra[1024], out[8192];
		snprintf(extra, sizeof extra, "\"plugins\":{\"billing\":%s}", cases[i].json);
		int rc = gw_run_expect_exit(extra, NULL, 15000, out, sizeof out);
		if (rc != 2 || !strstr(out, cases[i].where))
			fprintf(stderr, "# case %zu: exit %d: %s\n", i, rc, out);
		assert_int_equal(rc, 2);
		assert_non_null(strstr(out, cases[i].where));
	}
}

/* ---------------------------------------------------- the documented example */

#define EXAMPLE "docs/examples/billing/"
#define EX_ENCS "https://recovery.example.org/encounters"

static struct gw ex;

static int ex_up(void **state)
{
	(void)state;
	return gw_start(&ex, NULL); /* the default settings, as `make run` has them */
}

static int ex_down(void **state)
{
	(void)state;
	return gw_stop(&ex, 15000) == 0 ? 0 : -1;
}

/* One step of docs/billing.md: the command the page shows, and the request
 * it makes. */
struct step {
	const char *command;
	const char *method, *path, *header, *file;
};

static const struct step steps[] = {
	{"curl -sS -X POST http://127.0.0.1:8080/fhir -H 'Content-Type: application/fhir+json' --data-binary "
	 "@docs/examples/billing/load.json",
	 "POST", "/fhir", "Content-Type: application/fhir+json", EXAMPLE "load.json"},
	{"curl -sS 'http://127.0.0.1:8080/export/billing?from=2025-11-01&to=2025-11-30' -H 'Accept: text/csv'", "GET",
	 "/export/billing?from=2025-11-01&to=2025-11-30", "Accept: text/csv", NULL},
	/* what curl -G --data-urlencode sends */
	{"curl -sS -G http://127.0.0.1:8080/export/billing --data-urlencode "
	 "'patient=https://recovery.example.org/people|P-3002' --data-urlencode '_format=json'",
	 "GET", "/export/billing?patient=https%3A%2F%2Frecovery.example.org%2Fpeople%7CP-3002&_format=json", NULL, NULL},
	{"curl -sS -X POST 'http://127.0.0.1:8080/fhir/Claim/$build' -H 'Content-Type: application/fhir+json' "
	 "--data-binary @docs/examples/billing/build-period.json",
	 "POST", "/fhir/Claim/$build", "Content-Type: application/fhir+json", EXAMPLE "build-period.json"},
	{"curl -sS -X POST 'http://127.0.0.1:8080/fhir/Claim/$build' -H 'Content-Type: application/fhir+json' "
	 "--data-binary @docs/examples/billing/build-encounters.json",
	 "POST", "/fhir/Claim/$build", "Content-Type: application/fhir+json", EXAMPLE "build-encounters.json"},
};

static char *run_step(const struct step *st)
{
	size_t len;
	char *body = st->file ? read_whole_file(st->file, &len) : NULL;
	assert_true(!st->file || body);
	const char *h[] = {st->header, NULL};
	struct resp r;
	assert_int_equal(http_do(&ex, st->method, st->path, st->header ? h : NULL, body, body ? strlen(body) : 0, &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# %s %s: %ld %s\n", st->method, st->path, r.status, r.body);
	assert_int_equal(r.status, 200);
	free(body);
	char *out = strdup(r.body);
	resp_free(&r);
	return out;
}

/* "V-…;V-…" of the Claims' lines, Claim by Claim ("|" between Claims), and
 * every Claim structurally valid. */
static void claim_visits(const cJSON *bundle, char *out, size_t cap)
{
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, get(bundle, "entry")) {
		const cJSON *res = get(e, "resource"), *it;
		if (strcmp(sget(res, "resourceType"), "Claim") != 0)
			continue;
		paths_allowed(res, "", claim_allowed);
		if (out[0])
			snprintf(out + strlen(out), cap - strlen(out), "|");
		bool first = true;
		cJSON_ArrayForEach(it, get(res, "item")) {
			const cJSON *idf = get(cJSON_GetArrayItem(get(it, "encounter"), 0), "identifier");
			assert_string_equal(sget(idf, "system"), EX_ENCS);
			snprintf(out + strlen(out), cap - strlen(out), "%s%s", first ? "" : ";", sget(idf, "value"));
			first = false;
		}
		char *t = cJSON_PrintUnformatted(res);
		const char *ct[] = {"Content-Type: application/fhir+json", NULL};
		struct resp v;
		assert_int_equal(http_do(&ex, "POST", "/fhir/$validate", ct, t, strlen(t), &v), 0);
		assert_int_equal(v.status, 200);
		assert_null(strstr(v.body, "\"severity\":\"error\""));
		resp_free(&v);
		free(t);
	}
}

static void example_runs_as_documented(void **state)
{
	(void)state;
	size_t len;
	char *page = read_whole_file("docs/billing.md", &len);
	assert_non_null(page);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (!strstr(page, steps[i].command))
			fprintf(stderr, "# docs/billing.md no longer shows: %s\n", steps[i].command);
		assert_non_null(strstr(page, steps[i].command));
	}
	free(page);

	free(run_step(&steps[0]));

	/* 2: the period's extract is the file the page points to, byte for byte */
	char *csv = run_step(&steps[1]), *want = read_whole_file(EXAMPLE "extract.csv", &len);
	assert_non_null(want);
	if (strcmp(csv, want) != 0)
		fprintf(stderr, "# got:\n%s# want:\n%s", csv, want);
	assert_string_equal(csv, want);
	free(want);
	free(csv);

	/* 3: one person by identifier: V-1003 billed, V-1004 not */
	char *text = run_step(&steps[2]);
	cJSON *doc = cJSON_Parse(text);
	free(text);
	assert_int_equal(cJSON_GetArraySize(get(doc, "lines")), 1);
	assert_int_equal(cJSON_GetArraySize(get(doc, "not_billed")), 1);
	const cJSON *line = cJSON_GetArrayItem(get(doc, "lines"), 0), *nb = cJSON_GetArrayItem(get(doc, "not_billed"), 0);
	assert_string_equal(sget(line, "encounter"), "visit-3");
	assert_string_equal(sget(get(line, "encounter_identifier"), "value"), "V-1003");
	assert_string_equal(sget(get(line, "patient"), "value"), "P-3002");
	assert_string_equal(sget(get(nb, "encounter_identifier"), "value"), "V-1004");
	assert_string_equal(sget(cJSON_GetArrayItem(get(nb, "reasons"), 0), "reason"), "below-one-unit");
	cJSON_Delete(doc);

	/* 4: Claims of the month from the stored encounters */
	char visits[256];
	text = run_step(&steps[3]);
	doc = cJSON_Parse(text);
	free(text);
	claim_visits(doc, visits, sizeof visits);
	assert_string_equal(visits, "V-1001;V-1002|V-1003");
	const cJSON *oo = get(cJSON_GetArrayItem(get(doc, "entry"), 2), "resource");
	assert_string_equal(sget(oo, "resourceType"), "OperationOutcome");
	assert_int_equal(cJSON_GetArraySize(get(oo, "issue")), 1);
	assert_non_null(strstr(sget(cJSON_GetArrayItem(get(oo, "issue"), 0), "diagnostics"), "Encounter/visit-4"));
	cJSON_Delete(doc);

	/* 5: two encounters, by visit number and by server id */
	text = run_step(&steps[4]);
	doc = cJSON_Parse(text);
	free(text);
	claim_visits(doc, visits, sizeof visits);
	assert_string_equal(visits, "V-1001|V-1003");
	cJSON_Delete(doc);
}

int main(void)
{
	const struct CMUnitTest served[] = {
		cmocka_unit_test(export_json_rows_units_and_reasons),
		cmocka_unit_test(export_csv_rows),
		cmocka_unit_test(build_claims),
		cmocka_unit_test(build_refuses_what_is_not_a_bundle),
		cmocka_unit_test(build_gathers_a_period),
		cmocka_unit_test(build_gathers_named_encounters),
		cmocka_unit_test(export_by_person_identifier),
		cmocka_unit_test(export_refuses_bad_parameters),
		cmocka_unit_test(cli_prints_the_same_extract),
	};
	const struct CMUnitTest settings[] = {
		cmocka_unit_test(refuses_bad_settings),
	};
	const struct CMUnitTest example[] = {
		cmocka_unit_test(example_runs_as_documented),
	};
	int rc = cmocka_run_group_tests_name("billing served", served, gw_up, gw_down);
	rc += cmocka_run_group_tests_name("billing settings", settings, NULL, NULL);
	rc += cmocka_run_group_tests_name("billing example (docs/billing.md)", example, ex_up, ex_down);
	return rc;
}
