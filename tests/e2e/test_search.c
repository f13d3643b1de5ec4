/* End-to-end tests of search over the Synthea corpus (CW_CORPUS
 * fhir-r4/synthea, loaded as its transaction Bundles into one gateway):
 * paging that continues the same search (every page of sorted, included and
 * summarised searches against the unpaged answer), every resource type
 * searchable by its own parameters, chains through references with one
 * target type (answers computed from the source documents), and the
 * refusal of a chain on a parameter with several target types. */
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
#include <strings.h>

#include "e2e/harness.h"
#include "e2e/plugin_kit.h"

static struct gw gw;
static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

/* The corpus documents, parsed: one transaction Bundle each. */
static cJSON *docs[64];
static size_t ndocs;

static struct resp call(const char *method, const char *path, const char *body)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, method, path, body ? fj : NULL, body, body ? strlen(body) : 0, &r), 0);
	return r;
}

static cJSON *get_json(const char *path, long want)
{
	struct resp r = call("GET", path, NULL);
	if (r.status != want)
		print_message("# GET %s: %ld %.400s\n", path, r.status, r.body);
	assert_int_equal(r.status, want);
	cJSON *j = cJSON_Parse(r.body);
	assert_non_null(j);
	resp_free(&r);
	return j;
}

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *g(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int total_of(const char *path)
{
	cJSON *b = get_json(path, 200);
	const cJSON *t = g(b, "total");
	assert_true(cJSON_IsNumber(t));
	int n = t->valueint;
	cJSON_Delete(b);
	return n;
}

static int gw_up(void **state)
{
	(void)state;
	if (gw_start(&gw, NULL) != 0)
		return -1;
	char dir[512];
	corpus_path(dir, sizeof dir, "fhir-r4/synthea");
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	char names[64][256];
	size_t n = 0;
	while ((de = readdir(d)) != NULL && n < 64)
		if (strstr(de->d_name, ".json"))
			snprintf(names[n++], sizeof names[0], "%s", de->d_name);
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%.500s/%.255s", dir, names[i]);
		size_t len = 0;
		char *text = tk_slurp(path, &len);
		if (!text)
			return -1;
		struct resp r;
		memset(&r, 0, sizeof r);
		int rc = http_do(&gw, "POST", "/fhir", fj, text, len, &r);
		long status = r.status;
		resp_free(&r);
		docs[ndocs] = cJSON_Parse(text);
		free(text);
		if (rc != 0 || status != 200 || !docs[ndocs])
			return -1;
		ndocs++;
	}
	return ndocs > 10 ? 0 : -1;
}

static int gw_down(void **state)
{
	(void)state;
	for (size_t i = 0; i < ndocs; i++)
		cJSON_Delete(docs[i]);
	return gw_stop(&gw, 60000); /* a large store: the sanitizers take long to exit */
}

/* --- paging ----------------------------------------------------------------------------------------- */

/* What a run of pages showed: the matches in order ("Type/id\tresource
 * JSON" lines) and the included resources (one "Type/id" line each, in a
 * set: the order of includes across pages is free). */
struct seen {
	char **match;
	size_t nmatch;
	char **incl;
	size_t nincl;
	size_t pages;
};

static void seen_free(struct seen *v)
{
	for (size_t i = 0; i < v->nmatch; i++)
		free(v->match[i]);
	for (size_t i = 0; i < v->nincl; i++)
		free(v->incl[i]);
	free(v->match);
	free(v->incl);
	memset(v, 0, sizeof *v);
}

static void seen_page(struct seen *v, const cJSON *b)
{
	const cJSON *e;
	v->pages++;
	cJSON_ArrayForEach(e, g(b, "entry"))
	{
		const cJSON *res = g(e, "resource");
		const char *mode = s(g(e, "search"), "mode");
		if (!strcmp(mode, "outcome")) {
			char *t = cJSON_PrintUnformatted(res);
			print_message("# outcome: %s\n", t);
			free(t);
			fail_msg("a page carried an outcome");
		}
		char key[200];
		snprintf(key, sizeof key, "%s/%s", s(res, "resourceType"), s(res, "id"));
		if (!strcmp(mode, "match")) {
			char *t = cJSON_PrintUnformatted(res);
			v->match = realloc(v->match, (v->nmatch + 1) * sizeof *v->match);
			assert_non_null(v->match);
			size_t n = strlen(key) + strlen(t) + 2;
			v->match[v->nmatch] = malloc(n);
			snprintf(v->match[v->nmatch++], n, "%s\t%s", key, t);
			free(t);
			continue;
		}
		assert_string_equal(mode, "include");
		bool dup = false;
		for (size_t i = 0; i < v->nincl && !dup; i++)
			dup = !strcmp(v->incl[i], key);
		if (dup)
			continue;
		v->incl = realloc(v->incl, (v->nincl + 1) * sizeof *v->incl);
		assert_non_null(v->incl);
		v->incl[v->nincl++] = strdup(key);
	}
}

/* The path of b's link rel (below the host), or NULL. */
static char *link_path(const cJSON *b, const char *rel)
{
	const cJSON *l;
	cJSON_ArrayForEach(l, g(b, "link"))
	{
		if (!strcmp(s(l, "relation"), rel)) {
			const char *p = strstr(s(l, "url"), "/fhir/");
			assert_non_null(p);
			return strdup(p);
		}
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void sort_strs(char **v, size_t n)
{
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
}

/* Walks every page of query at page size count, forwards along next and
 * then back along previous, and compares both with the unpaged answer:
 * the same matches in the same order, the same resources (the same
 * _summary or _elements), the same included resources. */
static void walk_and_compare(const char *query, size_t count)
{
	char path[1024];
	snprintf(path, sizeof path, "/fhir/%s&_count=1000", query);
	cJSON *b = get_json(path, 200);
	struct seen whole = {0}, fwd = {0}, back = {0};
	seen_page(&whole, b);
	assert_null(link_path(b, "next"));
	cJSON_Delete(b);
	assert_true(whole.nmatch > count); /* more than one page */

	snprintf(path, sizeof path, "/fhir/%s&_count=%zu", query, count);
	char *next = strdup(path), *last = NULL;
	while (next) {
		b = get_json(next, 200);
		seen_page(&fwd, b);
		/* the page's self link gives the same page */
		char *self = link_path(b, "self");
		assert_non_null(self);
		struct seen again = {0};
		cJSON *b2 = get_json(self, 200);
		seen_page(&again, b2);
		cJSON_Delete(b2);
		size_t from = fwd.nmatch - again.nmatch;
		for (size_t i = 0; i < again.nmatch; i++)
			assert_string_equal(again.match[i], fwd.match[from + i]);
		seen_free(&again);
		free(self);
		free(last);
		last = next;
		next = link_path(b, "next");
		cJSON_Delete(b);
	}
	/* back from the last page along previous */
	char *prev = last;
	size_t npages = 0;
	char **pages = NULL; /* each page's matches, joined, newest first */
	while (prev) {
		b = get_json(prev, 200);
		struct seen one = {0};
		seen_page(&one, b);
		size_t len = 1;
		for (size_t i = 0; i < one.nmatch; i++)
			len += strlen(one.match[i]) + 1;
		pages = realloc(pages, (npages + 1) * sizeof *pages);
		pages[npages] = calloc(1, len);
		for (size_t i = 0; i < one.nmatch; i++) {
			strcat(pages[npages], one.match[i]);
			strcat(pages[npages], "\n");
		}
		npages++;
		for (size_t i = 0; i < one.nincl; i++) {
			back.incl = realloc(back.incl, (back.nincl + 1) * sizeof *back.incl);
			back.incl[back.nincl++] = strdup(one.incl[i]);
		}
		seen_free(&one);
		free(prev);
		prev = link_path(b, "previous");
		cJSON_Delete(b);
	}
	assert_int_equal(npages, fwd.pages);
	assert_int_equal(fwd.pages, (whole.nmatch + count - 1) / count);

	if (fwd.nmatch != whole.nmatch)
		print_message("# %s: %zu matches paged, %zu unpaged\n", query, fwd.nmatch, whole.nmatch);
	assert_int_equal(fwd.nmatch, whole.nmatch);
	for (size_t i = 0; i < whole.nmatch; i++) {
		if (strcmp(fwd.match[i], whole.match[i]) != 0)
			print_message("# %s: match %zu differs:\n#  paged   %.300s\n#  unpaged %.300s\n", query, i,
				      fwd.match[i], whole.match[i]);
		assert_string_equal(fwd.match[i], whole.match[i]);
	}
	/* the pages read backwards hold the same matches */
	size_t k = 0;
	for (size_t p = npages; p-- > 0;) {
		for (char *line = pages[p]; *line;) {
			char *nl = strchr(line, '\n');
			*nl = '\0';
			assert_true(k < whole.nmatch);
			assert_string_equal(line, whole.match[k++]);
			line = nl + 1;
		}
		free(pages[p]);
	}
	free(pages);
	assert_int_equal(k, whole.nmatch);

	/* includes: the pages together include what the whole answer does */
	sort_strs(whole.incl, whole.nincl);
	sort_strs(fwd.incl, fwd.nincl);
	/* a resource included on two pages counts once */
	size_t u = 0;
	for (size_t i = 0; i < back.nincl; i++) {
		bool dup = false;
		for (size_t j = 0; j < u && !dup; j++)
			dup = !strcmp(back.incl[j], back.incl[i]);
		if (dup)
			free(back.incl[i]);
		else
			back.incl[u++] = back.incl[i];
	}
	back.nincl = u;
	sort_strs(back.incl, back.nincl);
	if (fwd.nincl != whole.nincl)
		print_message("# %s: %zu included paged, %zu unpaged\n", query, fwd.nincl, whole.nincl);
	assert_int_equal(fwd.nincl, whole.nincl);
	assert_int_equal(back.nincl, whole.nincl);
	for (size_t i = 0; i < whole.nincl; i++) {
		assert_string_equal(fwd.incl[i], whole.incl[i]);
		assert_string_equal(back.incl[i], whole.incl[i]);
	}
	seen_free(&whole);
	seen_free(&fwd);
	seen_free(&back);
}

static void paging_continues_the_same_search(void **state)
{
	(void)state;
	/* sorted (one key, ties broken by the resource, several keys, descending) */
	walk_and_compare("Encounter?_sort=date", 13);
	walk_and_compare("Encounter?_sort=status", 17); /* every Encounter ties */
	walk_and_compare("Encounter?_sort=-class,date", 29);
	walk_and_compare("Observation?code=http://loinc.org|8302-2&_sort=-date", 9);
	/* included */
	walk_and_compare("Patient?_revinclude=Condition:patient", 3);
	walk_and_compare("Condition?_include=Condition:encounter&_sort=-onset-date", 7);
	walk_and_compare("Encounter?class=EMER&_revinclude=Condition:encounter&_include=Encounter:patient", 4);
	/* summarised and cut down */
	walk_and_compare("Encounter?class=AMB&_summary=true&_sort=date", 50);
	walk_and_compare("Immunization?_elements=status,vaccineCode&_sort=date", 11);
	walk_and_compare("Claim?_summary=data&_sort=created&_total=none", 97);
}

/* The link of a search carries each parameter that shapes it. */
static void links_carry_every_parameter(void **state)
{
	(void)state;
	cJSON *b = get_json("/fhir/Encounter?class=AMB&_sort=-date&_include=Encounter:patient"
			    "&_revinclude:iterate=Condition:encounter&_elements=status,class&_total=none&_count=2",
			    200);
	char *next = link_path(b, "next");
	assert_non_null(next);
	static const char *const want[] = {"class=AMB",
					   "_sort=-date",
					   "_include=Encounter:patient",
					   "_revinclude:iterate=Condition:encounter",
					   "_elements=status,class",
					   "_total=none",
					   "_count=2",
					   "_offset=2"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(next, want[i]))
			fail_msg("next link %s lacks %s", next, want[i]);
	free(next);
	cJSON_Delete(b);
	b = get_json("/fhir/Encounter?class=AMB&_summary=count", 200);
	char *self = link_path(b, "self");
	assert_non_null(strstr(self, "_summary=count"));
	free(self);
	cJSON_Delete(b);
}

/* --- from the source documents ---------------------------------------------------------------------- */

/* The resource a Bundle's urn:uuid reference names. */
static const cJSON *resolve(const cJSON *bundle, const cJSON *ref)
{
	const char *r = s(ref, "reference");
	const cJSON *e;
	cJSON_ArrayForEach(e, g(bundle, "entry"))
	{
		if (r && s(e, "fullUrl") && !strcmp(s(e, "fullUrl"), r))
			return g(e, "resource");
	}
	return NULL;
}

static bool starts_ci(const char *text, const char *prefix)
{
	return text && strncasecmp(text, prefix, strlen(prefix)) == 0;
}

/* Whether a HumanName list has a part (text, family, given, prefix, suffix)
 * starting with prefix, as string search matches. */
static bool name_matches(const cJSON *names, const char *prefix)
{
	const cJSON *n, *p;
	cJSON_ArrayForEach(n, names)
	{
		if (starts_ci(s(n, "text"), prefix) || starts_ci(s(n, "family"), prefix))
			return true;
		static const char *const lists[] = {"given", "prefix", "suffix"};
		for (size_t i = 0; i < 3; i++)
			cJSON_ArrayForEach(p, g(n, lists[i]))
			{
				if (cJSON_IsString(p) && starts_ci(p->valuestring, prefix))
					return true;
			}
	}
	return false;
}

/* How many resources of type in the corpus have a reference member ref
 * whose target satisfies want. */
static int count_in_corpus(const char *type, const char *ref, bool (*want)(const cJSON *target, const char *arg),
			   const char *arg)
{
	int n = 0;
	for (size_t i = 0; i < ndocs; i++) {
		const cJSON *e;
		cJSON_ArrayForEach(e, g(docs[i], "entry"))
		{
			const cJSON *res = g(e, "resource");
			if (strcmp(s(res, "resourceType"), type) != 0)
				continue;
			const cJSON *t = resolve(docs[i], g(res, ref));
			n += t && want(t, arg);
		}
	}
	return n;
}

static bool patient_named(const cJSON *t, const char *arg)
{
	return !strcmp(s(t, "resourceType"), "Patient") && name_matches(g(t, "name"), arg);
}

static bool patient_gender(const cJSON *t, const char *arg)
{
	return !strcmp(s(t, "resourceType"), "Patient") && s(t, "gender") && !strcmp(s(t, "gender"), arg);
}

static bool encounter_class(const cJSON *t, const char *arg)
{
	return !strcmp(s(t, "resourceType"), "Encounter") && s(g(t, "class"), "code") &&
	       !strcmp(s(g(t, "class"), "code"), arg);
}

static void chains_through_single_target_references(void **state)
{
	(void)state;
	char path[300];
	static const char *const names[] = {"Marks", "Schamberger", "Jill", "Mr."};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int want = count_in_corpus("Claim", "patient", patient_named, names[i]);
		assert_true(want > 0);
		snprintf(path, sizeof path, "/fhir/Claim?patient.name=%s&_summary=count", names[i]);
		assert_int_equal(total_of(path), want);
	}
	int female = count_in_corpus("Claim", "patient", patient_gender, "female");
	assert_true(female > 0);
	assert_int_equal(total_of("/fhir/Claim?patient.gender=female&_summary=count"), female);
	int emer = count_in_corpus("Condition", "encounter", encounter_class, "EMER");
	assert_true(emer > 0);
	assert_int_equal(total_of("/fhir/Condition?encounter.class=EMER&_summary=count"), emer);
	int amb = count_in_corpus("CarePlan", "encounter", encounter_class, "AMB");
	assert_true(amb > 0);
	assert_int_equal(total_of("/fhir/CarePlan?encounter.class=AMB&_summary=count"), amb);
	/* a typed chain agrees with the untyped one */
	assert_int_equal(total_of("/fhir/CarePlan?encounter:Encounter.class=AMB&_summary=count"), amb);
}

static void chain_on_several_targets_names_them(void **state)
{
	(void)state;
	struct resp r = call("GET", "/fhir/Observation?subject.name=Marks", NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	assert_non_null(strstr(r.body, "Device, Group, Location, Patient"));
	resp_free(&r);
	int want = 0;
	for (size_t i = 0; i < ndocs; i++) {
		const cJSON *e;
		cJSON_ArrayForEach(e, g(docs[i], "entry"))
		{
			const cJSON *res = g(e, "resource");
			if (!strcmp(s(res, "resourceType"), "Observation")) {
				const cJSON *t = resolve(docs[i], g(res, "subject"));
				want += t && patient_named(t, "Marks");
			}
		}
	}
	assert_true(want > 0);
	assert_int_equal(total_of("/fhir/Observation?subject:Patient.name=Marks&_summary=count"), want);
	/* a type the parameter cannot point at, in a chain or not */
	r = call("GET", "/fhir/Observation?subject:Practitioner.name=Marks", NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("GET", "/fhir/Observation?subject:Practitioner=p1", NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "subject"));
	resp_free(&r);
}

/* --- every resource type ----------------------------------------------------------------------------- */

static void every_type_answers_searches(void **state)
{
	(void)state;
	/* each patient's resources of the types outside the first twelve,
	 * found by the patient parameter of that type */
	static const struct {
		const char *type, *ref;
	} kinds[] = {{"Immunization", "patient"},         {"MedicationRequest", "subject"},
		     {"ExplanationOfBenefit", "patient"}, {"DiagnosticReport", "subject"},
		     {"AllergyIntolerance", "patient"},   {"ImagingStudy", "subject"}};
	int seen[6] = {0};
	for (size_t i = 0; i < ndocs; i++) {
		const cJSON *e, *pat = NULL;
		cJSON_ArrayForEach(e, g(docs[i], "entry"))
		{
			if (!strcmp(s(g(e, "resource"), "resourceType"), "Patient"))
				pat = g(e, "resource");
		}
		if (!pat)
			continue; /* the practitioners' Bundle */
		const cJSON *ident = cJSON_GetArrayItem(g(pat, "identifier"), 0);
		char path[400];
		snprintf(path, sizeof path, "/fhir/Patient?identifier=%s|%s", s(ident, "system"), s(ident, "value"));
		cJSON *b = get_json(path, 200);
		assert_int_equal(g(b, "total")->valueint, 1);
		char pid[80];
		snprintf(pid, sizeof pid, "%s", s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource"), "id"));
		cJSON_Delete(b);
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			int want = 0;
			cJSON_ArrayForEach(e, g(docs[i], "entry"))
			{
				const cJSON *res = g(e, "resource");
				want += !strcmp(s(res, "resourceType"), kinds[k].type) &&
					resolve(docs[i], g(res, kinds[k].ref)) == pat;
			}
			snprintf(path, sizeof path, "/fhir/%s?patient=Patient/%s&_summary=count", kinds[k].type, pid);
			assert_int_equal(total_of(path), want);
			seen[k] += want;
		}
	}
	for (size_t k = 0; k < 6; k++)
		assert_true(seen[k] > 0);
	/* their own parameters of other kinds, too */
	assert_true(total_of("/fhir/Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|140&_summary=count") > 0);
	assert_true(total_of("/fhir/MedicationRequest?status=stopped,active,completed&_summary=count") > 0);
	assert_true(total_of("/fhir/ExplanationOfBenefit?created=gt1900&_summary=count") > 0);

	/* the CapabilityStatement lists every R4 resource type with its parameters */
	cJSON *cs = get_json("/fhir/metadata", 200);
	const cJSON *res, *types = g(cJSON_GetArrayItem(g(cs, "rest"), 0), "resource");
	int n = 0;
	bool eob_patient = false;
	cJSON_ArrayForEach(res, types)
	{
		n++;
		assert_non_null(g(res, "searchParam"));
		if (strcmp(s(res, "type"), "ExplanationOfBenefit") != 0)
			continue;
		const cJSON *sp;
		cJSON_ArrayForEach(sp, g(res, "searchParam")) { eob_patient |= !strcmp(s(sp, "name"), "patient"); }
	}
	assert_int_equal(n, 146);
	assert_true(eob_patient);
	cJSON_Delete(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paging_continues_the_same_search),
		cmocka_unit_test(links_carry_every_parameter),
		cmocka_unit_test(chains_through_single_target_references),
		cmocka_unit_test(chain_on_several_targets_names_them),
		cmocka_unit_test(every_type_answers_searches),
	};
	return cmocka_run_group_tests_name("search over Synthea", tests, gw_up, gw_down);
}
