/* Unit tests: the built-in R4 core ValueSets and bindings
 * (core/fhir/valueset.h) and their check in structural validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/model.h"
#include "fhir/validate.h"
#include "fhir/valueset.h"

/* The tables hold what binary search needs: ValueSets by url, each
 * ValueSet's codes by code, bindings by path; every binding names an
 * element of the model of type code, Coding or CodeableConcept. */
static void tables_are_sorted_and_match_the_model(void **state)
{
	(void)state;
	assert_true(valueset_ndefs >= 200);
	assert_true(valueset_nbindings >= 400);
	for (size_t i = 1; i < valueset_ndefs; i++)
		assert_true(strcmp(valueset_defs[i - 1].url, valueset_defs[i].url) < 0);
	size_t codes = 0;
	for (size_t i = 0; i < valueset_ndefs; i++) {
		const struct valueset_def *d = &valueset_defs[i];
		assert_true(d->count > 0);
		assert_int_equal(d->first, codes);
		codes += d->count;
		for (uint32_t k = d->first + 1; k < d->first + d->count; k++)
			assert_true(strcmp(valueset_codes[k - 1].code, valueset_codes[k].code) <= 0);
		for (uint32_t k = d->first; k < d->first + d->count; k++) {
			assert_true(valueset_codes[k].system < valueset_nsystems);
			assert_true(valueset_contains(d, valueset_systems[valueset_codes[k].system],
						      valueset_codes[k].code));
		}
		assert_ptr_equal(valueset_core(d->url), d);
	}
	assert_int_equal(codes, valueset_ncodes);
	for (size_t i = 0; i < valueset_nbindings; i++) {
		const struct valueset_binding *b = &valueset_bindings[i];
		if (i)
			assert_true(strcmp(valueset_bindings[i - 1].path, b->path) < 0);
		assert_true(b->vs < valueset_ndefs);
		assert_ptr_equal(valueset_binding_path(b->path), b);
		const char *dot = strrchr(b->path, '.');
		assert_non_null(dot);
		const struct model_type *t = model_type_n(b->path, (size_t)(dot - b->path));
		if (!t)
			fail_msg("%s: no model type", b->path);
		const struct model_elem *e = NULL;
		for (size_t k = 0; t && k < t->nelems && !e; k++)
			if (!strcmp(model_elems[t->elems + k].name, dot + 1))
				e = &model_elems[t->elems + k];
		if (!e)
			fail_msg("%s: no such element", b->path);
		bool coded = false;
		for (size_t k = 0; e && k < e->ntypes; k++) {
			const struct model_type *et = model_elem_type(e, k);
			assert_non_null(et);
			const char *tn = et ? et->name : "";
			coded |= !strcmp(tn, "code") || !strcmp(tn, "Coding") || !strcmp(tn, "CodeableConcept");
		}
		if (!coded)
			fail_msg("%s: not a coded element", b->path);
		char type[128];
		snprintf(type, sizeof type, "%.*s", (int)(dot - b->path), b->path);
		assert_ptr_equal(valueset_binding(type, dot + 1), b);
	}
}

static void lookups(void **state)
{
	(void)state;
	const struct valueset_def *os = valueset_core("http://hl7.org/fhir/ValueSet/observation-status");
	assert_non_null(os);
	assert_ptr_equal(valueset_core("http://hl7.org/fhir/ValueSet/observation-status|4.0.1"), os);
	assert_int_equal(os->count, 8);
	assert_true(valueset_contains(os, NULL, "final"));
	assert_true(valueset_contains(os, "http://hl7.org/fhir/observation-status", "entered-in-error"));
	assert_false(valueset_contains(os, "http://hl7.org/fhir/other", "final"));
	assert_false(valueset_contains(os, NULL, "bogus"));
	assert_false(valueset_contains(os, NULL, "Final"));
	assert_false(valueset_contains(os, NULL, ""));
	/* codes that cannot be listed are not built in, so never judged */
	assert_null(valueset_core("http://hl7.org/fhir/ValueSet/mimetypes"));
	assert_null(valueset_core("http://hl7.org/fhir/ValueSet/ucum-units"));
	assert_null(valueset_binding("Attachment", "contentType"));
	assert_null(valueset_core("http://hl7.org/fhir/ValueSet/nope"));
	assert_null(valueset_core(NULL));
	/* a ValueSet that is a whole code system of the package */
	const struct valueset_def *cur = valueset_core("http://hl7.org/fhir/ValueSet/currencies");
	assert_non_null(cur);
	assert_true(valueset_contains(cur, "urn:iso:std:iso:4217", "EUR"));
	assert_false(valueset_contains(cur, NULL, "XYZ1"));

	const struct valueset_binding *b = valueset_binding("Observation", "status");
	assert_non_null(b);
	assert_int_equal(b->strength, VALUESET_REQUIRED);
	assert_ptr_equal(valueset_of(b), os);
	assert_non_null(valueset_binding("Observation.component", "interpretation"));
	b = valueset_binding("Condition", "category");
	assert_non_null(b);
	assert_int_equal(b->strength, VALUESET_EXTENSIBLE);
	assert_null(valueset_binding("Observation", "code")); /* example binding */
	assert_null(valueset_binding("Observation", "statu"));
	assert_null(valueset_binding("Observatio", "status"));
	assert_null(valueset_binding("Observation.", "status"));
	assert_non_null(valueset_binding("Quantity", "comparator"));
	assert_non_null(valueset_binding("Age", "comparator"));
}

/* Validates text: its error count, and the issues in *oo. */
static size_t check(const char *text, struct outcome *oo)
{
	cJSON *j = fjson_parse(text, strlen(text), NULL, NULL);
	assert_non_null(j);
	size_t n = validate_resource(j, oo);
	cJSON_Delete(j);
	return n;
}

/* text has exactly one issue with message id msgid at expr, of severity sev,
 * and as many errors as errors. */
static void expect(const char *text, size_t errors, const char *msgid, const char *expr, enum outcome_severity sev)
{
	struct outcome oo = OUTCOME_INIT;
	size_t n = check(text, &oo);
	size_t found = 0;
	for (size_t i = 0; i < oo.n; i++) {
		const struct outcome_issue *x = &oo.issues[i];
		if (x->message_id && !strcmp(x->message_id, msgid) && x->severity == sev && x->expression &&
		    !strcmp(x->expression, expr))
			found++;
	}
	if (n != errors || found != 1) {
		print_message("# %s: %zu errors, %zu of %s at %s; issues:\n", text, n, found, msgid, expr);
		for (size_t i = 0; i < oo.n; i++)
			print_message("#   %s %s %s\n", oo.issues[i].message_id ? oo.issues[i].message_id : "-",
				      oo.issues[i].expression ? oo.issues[i].expression : "-",
				      oo.issues[i].diagnostics);
	}
	assert_int_equal(n, errors);
	assert_int_equal(found, 1);
	outcome_release(&oo);
}

static void expect_clean(const char *text)
{
	struct outcome oo = OUTCOME_INIT;
	size_t n = check(text, &oo);
	if (n || oo.n)
		print_message("# %s: %zu errors, first: %s\n", text, n, oo.n ? oo.issues[0].diagnostics : "");
	assert_int_equal(n, 0);
	assert_int_equal(oo.n, 0);
	outcome_release(&oo);
}

#define OBS "{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"},"
#define COND "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p\"},"
#define CLIN "http://terminology.hl7.org/CodeSystem/condition-clinical"
#define CAT "http://terminology.hl7.org/CodeSystem/condition-category"

/* A required binding is an error, an extensible one a warning, wherever the
 * element is: in the resource, a backbone element, a data type, a contained
 * resource, a Bundle entry. */
static void core_bindings(void **state)
{
	(void)state;
	expect_clean(OBS "\"status\":\"final\"}");
	expect(OBS "\"status\":\"bogus\"}", 1, "binding-required", "Observation.status", OUTCOME_ERROR);
	expect("{\"resourceType\":\"Patient\",\"gender\":\"x\"}", 1, "binding-required", "Patient.gender",
	       OUTCOME_ERROR);
	expect_clean("{\"resourceType\":\"Patient\",\"gender\":\"unknown\",\"name\":[{\"use\":\"official\"}]}");
	/* a data type (HumanName.use), in an array */
	expect("{\"resourceType\":\"Patient\",\"name\":[{\"use\":\"official\"},{\"use\":\"nick\"}]}", 1,
	       "binding-required", "Patient.name[1].use", OUTCOME_ERROR);
	/* a repeating code (CapabilityStatement-like: Patient has none; use
	 * Questionnaire.subjectType, bound to resource-types) */
	expect("{\"resourceType\":\"Questionnaire\",\"status\":\"draft\",\"subjectType\":[\"Patient\",\"Nope\"]}", 1,
	       "binding-required", "Questionnaire.subjectType[1]", OUTCOME_ERROR);
	/* a backbone element and a choice typed as a quantity type */
	expect(OBS "\"status\":\"final\",\"component\":[{\"code\":{\"text\":\"c\"},\"valueQuantity\":{\"value\":1,"
		   "\"comparator\":\"~\"}}]}",
	       1, "binding-required", "Observation.component[0].valueQuantity.comparator", OUTCOME_ERROR);
	expect(COND "\"onsetAge\":{\"value\":3,\"comparator\":\"about\"}}", 1, "binding-required",
	       "Condition.onsetAge.comparator", OUTCOME_ERROR);
	/* a required CodeableConcept: one coding in the ValueSet is enough;
	 * codes given and none in it, or none given at all, is an error */
	expect_clean(COND "\"clinicalStatus\":{\"coding\":[{\"system\":\"urn:x\",\"code\":\"a\"},{\"system\":\"" CLIN
			  "\",\"code\":\"active\"}]}}");
	expect(COND "\"clinicalStatus\":{\"coding\":[{\"system\":\"" CLIN "\",\"code\":\"sleeping\"}]}}", 1,
	       "binding-required", "Condition.clinicalStatus", OUTCOME_ERROR);
	expect(COND "\"clinicalStatus\":{\"coding\":[{\"system\":\"urn:other\",\"code\":\"active\"}]}}", 1,
	       "binding-required", "Condition.clinicalStatus", OUTCOME_ERROR);
	expect(COND "\"clinicalStatus\":{\"text\":\"active\"}}", 1, "binding-required", "Condition.clinicalStatus",
	       OUTCOME_ERROR);
	/* extensible: a warning when codes are given and none is in, each of
	 * a system the ValueSet draws on; text alone, or a code of another
	 * system (where the ValueSet lacks the concept), is allowed */
	expect_clean(COND "\"category\":[{\"coding\":[{\"system\":\"" CAT "\",\"code\":\"problem-list-item\"}]}]}");
	expect_clean(COND "\"category\":[{\"text\":\"worry\"}]}");
	expect(COND "\"category\":[{\"text\":\"w\"},{\"coding\":[{\"system\":\"" CAT "\",\"code\":\"worry\"}]}]}", 0,
	       "binding-extensible", "Condition.category[1]", OUTCOME_WARNING);
	expect(COND "\"category\":[{\"coding\":[{\"code\":\"worry\"}]}]}", 0, "binding-extensible",
	       "Condition.category[0]", OUTCOME_WARNING);
	expect_clean(COND "\"category\":[{\"coding\":[{\"system\":\"urn:x\",\"code\":\"worry\"}]}]}");
	expect_clean(COND "\"category\":[{\"coding\":[{\"system\":\"" CAT "\",\"code\":\"worry\"},{\"system\":"
			  "\"urn:x\",\"code\":\"w\"}]}]}");
	/* a required binding allows no other system (Coding, in a data type) */
	expect("{\"resourceType\":\"Patient\",\"telecom\":[{\"system\":\"pigeon\",\"value\":\"1\"}]}", 1,
	       "binding-required", "Patient.telecom[0].system", OUTCOME_ERROR);
	/* contained and Bundle entry resources */
	expect("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Observation\",\"id\":\"o\","
	       "\"status\":\"bogus\",\"code\":{\"text\":\"x\"}}],\"generalPractitioner\":[{\"reference\":\"#o\"}]}",
	       1, "binding-required", "Patient.contained[0].status", OUTCOME_ERROR);
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"urn:uuid:"
	       "1e0c5a7c-8b7f-4c57-9a51-46f0b2f3a1c2\",\"resource\":{\"resourceType\":\"Patient\",\"gender\":\"x\"}}]}",
	       1, "binding-required", "Bundle.entry[0].resource.gender", OUTCOME_ERROR);
	/* the Bundle's own type */
	expect("{\"resourceType\":\"Bundle\",\"type\":\"pile\"}", 1, "binding-required", "Bundle.type", OUTCOME_ERROR);
	/* an element bound to a ValueSet that is not built in is not judged */
	expect_clean("{\"resourceType\":\"Binary\",\"contentType\":\"application/x-made-up\"}");
}

/* Many bad codes: the errors stop at the limit, the warnings too. */
static void bounded(void **state)
{
	(void)state;
	size_t n = 300;
	char *buf = malloc(n * 120 + 200);
	assert_non_null(buf);
	char *p = buf + sprintf(buf, COND "\"category\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s{\"coding\":[{\"system\":\"" CAT "\",\"code\":\"c%zu\"}]}", i ? "," : "", i);
	sprintf(p, "]}");
	struct outcome oo = OUTCOME_INIT;
	assert_int_equal(check(buf, &oo), 0);
	assert_int_equal(oo.n, VALIDATE_MAX_ISSUES);
	outcome_release(&oo);
	p = buf + sprintf(buf, "{\"resourceType\":\"Patient\",\"name\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s{\"use\":\"u%zu\"}", i ? "," : "", i);
	sprintf(p, "]}");
	assert_int_equal(check(buf, &oo), n);
	assert_int_equal(oo.n, VALIDATE_MAX_ISSUES);
	outcome_release(&oo);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_are_sorted_and_match_the_model),
		cmocka_unit_test(lookups),
		cmocka_unit_test(core_bindings),
		cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
