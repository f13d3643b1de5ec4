/* Unit tests of the Patient compartment (fhir/compartment.h, the table
 * generated from the R4 CompartmentDefinition Patient) and of the in-memory
 * match of a granular scope's query (api/access.h, access_query_matches),
 * the two decisions that confine a client to part of a type. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/access.h"
#include "fhir/compartment.h"
#include "fhir/search_params.h"

/* Every parameter of the table is a reference parameter of its type that
 * the search table indexes, and the rows are sorted for the lookup. */
static void the_table_agrees_with_the_search_parameters(void **state)
{
	(void)state;
	assert_true(compartment_patient_count > 60);
	for (size_t i = 0; i < compartment_patient_count; i++) {
		const struct compartment_type *t = &compartment_patient_types[i];
		if (i)
			assert_true(strcmp(compartment_patient_types[i - 1].type, t->type) < 0);
		assert_ptr_equal(compartment_patient_type(t->type), t);
		char name[80];
		size_t k = 0;
		for (; compartment_patient_param(t->type, k, name, sizeof name); k++) {
			const struct search_param_def *def = search_params_find(t->type, name, NULL);
			if (!def || def->kind != SEARCH_PARAM_REFERENCE)
				fail_msg("%s.%s is no reference parameter", t->type, name);
		}
		assert_true(k >= 1);
	}
	assert_null(compartment_patient_type("Practitioner"));
	assert_null(compartment_patient_type("Device"));
	assert_null(compartment_patient_type(NULL));
	char name[80];
	assert_true(compartment_patient_param("Observation", 0, name, sizeof name));
	assert_string_equal(name, "subject");
	assert_true(compartment_patient_param("Observation", 1, name, sizeof name));
	assert_string_equal(name, "performer");
	assert_false(compartment_patient_param("Observation", 2, name, sizeof name));
}

static bool has(const char *type, const char *json, const char *pid)
{
	cJSON *r = cJSON_Parse(json);
	assert_non_null(r);
	bool in = compartment_patient_has(type, r, pid);
	cJSON_Delete(r);
	return in;
}

static void membership_follows_the_compartment_parameters(void **state)
{
	(void)state;
	static const char obs[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
				  "\"subject\":{\"reference\":\"Patient/p1\"},\"performer\":[{\"reference\":"
				  "\"Patient/p2\"},{\"reference\":\"Practitioner/p3\"}]}";
	assert_true(has("Observation", obs, "p1"));
	assert_true(has("Observation", obs, "p2"));  /* its performer */
	assert_false(has("Observation", obs, "p3")); /* a Practitioner of that id */
	assert_false(has("Observation", obs, ""));
	assert_false(has("Encounter", obs, "p1")); /* not of the type asked about */
	assert_false(has(
		"Observation",
		"{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"http://other.test/fhir/Patient/p1\"}}",
		"p1")); /* another server's Patient */
	assert_false(has("Observation", "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"Group/p1\"}}",
			 "p1"));
	/* the Patient itself, and a Patient linked to it */
	assert_true(has("Patient", "{\"resourceType\":\"Patient\",\"id\":\"p1\"}", "p1"));
	assert_false(has("Patient", "{\"resourceType\":\"Patient\",\"id\":\"p2\"}", "p1"));
	assert_true(
		has("Patient",
		    "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"link\":[{\"other\":{\"reference\":\"Patient/p1\"},"
		    "\"type\":\"seealso\"}]}",
		    "p1"));
	/* a type outside the compartment, whatever it references */
	assert_false(has("Device", "{\"resourceType\":\"Device\",\"patient\":{\"reference\":\"Patient/p1\"}}", "p1"));
	/* a parameter that is not the compartment's: Encounter by its subject (patient is) */
	assert_true(
		has("Encounter", "{\"resourceType\":\"Encounter\",\"subject\":{\"reference\":\"Patient/p1\"}}", "p1"));
	assert_false(
		has("Condition", "{\"resourceType\":\"Condition\",\"recorder\":{\"reference\":\"Patient/p1\"}}", "p9"));
}

static bool matches(const char *type, const char *json, const char *query)
{
	cJSON *r = cJSON_Parse(json);
	assert_non_null(r);
	bool m = access_query_matches(type, r, query, strlen(query));
	cJSON_Delete(r);
	return m;
}

static void a_query_is_matched_on_the_resource(void **state)
{
	(void)state;
	static const char lab[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{"
				  "\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":"
				  "\"laboratory\"}]}],\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":"
				  "\"2345-7\"}]},\"subject\":{\"reference\":\"Patient/p1\"}}";
	static const char cat[] = "http://terminology.hl7.org/CodeSystem/observation-category";
	char q[300];
	assert_true(matches("Observation", lab, "category=laboratory"));
	assert_false(matches("Observation", lab, "category=vital-signs"));
	assert_true(matches("Observation", lab, "category=vital-signs,laboratory"));
	snprintf(q, sizeof q, "category=%s|laboratory", cat);
	assert_true(matches("Observation", lab, q));
	snprintf(q, sizeof q, "category=%s%%7Claboratory", cat); /* percent-encoded */
	assert_true(matches("Observation", lab, q));
	snprintf(q, sizeof q, "category=%s|", cat); /* any code of the system */
	assert_true(matches("Observation", lab, q));
	assert_false(matches("Observation", lab, "category=|laboratory")); /* a code without a system */
	assert_false(matches("Observation", lab, "category=http://other.test|laboratory"));
	assert_true(matches("Observation", lab, "code=http://loinc.org|2345-7&category=laboratory"));
	assert_false(matches("Observation", lab, "code=http://loinc.org|2345-7&category=imaging"));
	assert_true(matches("Observation", lab, "subject=Patient/p1"));
	assert_true(matches("Observation", lab, "subject=p1"));
	assert_false(matches("Observation", lab, "subject=Patient/p2"));
	/* what it does not decide matches nothing: modifiers, chains, dates,
	 * unknown parameters, an empty value or query */
	assert_false(matches("Observation", lab, "category:not=vital-signs"));
	assert_false(matches("Observation", lab, "subject.name=x"));
	assert_false(matches("Observation", lab, "date=2024"));
	assert_false(matches("Observation", lab, "nonsense=1"));
	assert_false(matches("Observation", lab, "category="));
	assert_false(matches("Observation", lab, ""));
	/* strings: starts with, case and accents ignored */
	static const char pat[] = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Müller\"}]}";
	assert_true(matches("Patient", pat, "family=mull"));
	assert_false(matches("Patient", pat, "family=ller"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_table_agrees_with_the_search_parameters),
		cmocka_unit_test(membership_follows_the_compartment_parameters),
		cmocka_unit_test(a_query_is_matched_on_the_resource),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
