/* Unit tests: the generated FHIR R4 model and the queries plugins make. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fhir/model.h"
#include "fhir/model_query.h"

static void types_are_complete_and_sorted(void **state)
{
	(void)state;
	/* R4 defines 146 concrete resources (Resource and DomainResource are abstract) */
	size_t resources = 0;
	for (size_t i = 0; i < model_ntypes; i++) {
		if (i > 0)
			assert_true(strcmp(model_types[i - 1].name, model_types[i].name) < 0);
		if (model_types[i].kind == MODEL_RESOURCE && !model_types[i].abstract)
			resources++;
	}
	assert_int_equal(resources, 146);
	assert_non_null(model_resource("Patient"));
	assert_non_null(model_resource("Bundle"));
	assert_null(model_resource("DomainResource"));
	assert_null(model_resource("Quantity"));
	assert_null(model_resource("patient"));
	assert_null(model_type(""));
	assert_null(model_type_n("Patient", 3));
	assert_non_null(model_type_n("PatientXYZ", 7));
}

static void primitives_carry_regex_and_json_kind(void **state)
{
	(void)state;
	const struct model_type *t = model_type("decimal");
	assert_non_null(t);
	assert_int_equal(t->kind, MODEL_PRIMITIVE);
	assert_int_equal(t->json, MODEL_JSON_NUMBER);
	assert_non_null(t->regex);
	assert_int_equal(model_type("boolean")->json, MODEL_JSON_BOOL);
	assert_int_equal(model_type("positiveInt")->json, MODEL_JSON_NUMBER);
	assert_int_equal(model_type("dateTime")->json, MODEL_JSON_STRING);
	assert_non_null(strstr(model_type("date")->regex, "[1-9]000"));
	assert_non_null(model_type("id")->regex);
}

static void elements_in_definition_order(void **state)
{
	(void)state;
	const struct model_type *p = model_resource("Patient");
	assert_string_equal(model_elems[p->elems + 0].name, "id");
	assert_string_equal(model_elems[p->elems + 1].name, "meta");
	const struct model_elem *prev = NULL;
	size_t idx_identifier = 0, idx_name = 0;
	for (size_t i = 0; i < p->nelems; i++) {
		prev = &model_elems[p->elems + i];
		if (!strcmp(prev->name, "identifier"))
			idx_identifier = i;
		if (!strcmp(prev->name, "name"))
			idx_name = i;
	}
	assert_true(idx_identifier > 0 && idx_identifier < idx_name);
	const struct model_type *chosen = NULL;
	const struct model_elem *e = model_find_elem(model_type("Extension"), "url", 3, &chosen);
	assert_non_null(e);
	assert_true(e->flags & MODEL_F_ATTR);
	e = model_find_elem(model_type("Coding"), "id", 2, &chosen);
	assert_true(e->flags & MODEL_F_ATTR);
	e = model_find_elem(p, "id", 2, &chosen);
	assert_false(e->flags & MODEL_F_ATTR);
	assert_string_equal(chosen->name, "id");
}

/* validate.c checks the maximum cardinality as "none", "single value" or
 * "array" only: that is complete while every element allows 0, 1 or any
 * number of values. */
static void every_max_is_0_1_or_unbounded(void **state)
{
	(void)state;
	assert_true(model_nelems > 0);
	size_t zero = 0;
	for (size_t i = 0; i < model_nelems; i++) {
		unsigned max = model_elems[i].max;
		if (max != 0 && max != 1 && max != MODEL_UNBOUNDED)
			fail_msg("element %s has max %u", model_elems[i].name, max);
		zero += max == 0;
	}
	assert_int_equal(zero, 1); /* xhtml.extension */
}

static void choices_and_backbones(void **state)
{
	(void)state;
	const struct model_type *obs = model_resource("Observation");
	const struct model_type *chosen = NULL;
	const struct model_elem *e = model_find_elem(obs, "valueQuantity", 13, &chosen);
	assert_non_null(e);
	assert_true(e->flags & MODEL_F_CHOICE);
	assert_string_equal(chosen->name, "Quantity");
	e = model_find_elem(obs, "valueDateTime", 13, &chosen);
	assert_string_equal(chosen->name, "dateTime");
	assert_null(model_find_elem(obs, "valueMoney", 10, &chosen)); /* not allowed for Observation.value */
	assert_null(model_find_elem(obs, "value", 5, &chosen));
	assert_null(model_find_elem(obs, "valuequantity", 13, &chosen));
	char buf[64];
	assert_int_equal(model_elem_json_name(e, model_type("CodeableConcept"), buf, sizeof buf), 20);
	assert_string_equal(buf, "valueCodeableConcept");

	const struct model_type *owner = NULL;
	e = model_resolve_path("Bundle.entry.resource", &owner, &chosen);
	assert_non_null(e);
	assert_string_equal(owner->name, "Bundle.entry");
	assert_string_equal(chosen->name, "Resource");
	e = model_resolve_path("Questionnaire.item.item.linkId", &owner, &chosen);
	assert_non_null(e); /* through the contentReference */
	assert_string_equal(chosen->name, "string");
	e = model_resolve_path("Observation.valueQuantity.value", &owner, &chosen);
	assert_non_null(e);
	assert_string_equal(chosen->name, "decimal");
	assert_null(model_resolve_path("Observation.value[x].value", NULL, NULL));
	assert_null(model_resolve_path("Observation.nope", NULL, NULL));
	assert_null(model_resolve_path("Nope.id", NULL, NULL));
	assert_null(model_resolve_path("Observation", NULL, NULL));
	assert_null(model_resolve_path("Observation..code", NULL, NULL));
}

static void plugin_queries(void **state)
{
	(void)state;
	const char *types[64];
	int n = model_query_choice_types("Goal.target.due[x]", types, 64);
	assert_int_equal(n, 2);
	assert_string_equal(types[0], "date");
	assert_string_equal(types[1], "Duration");
	assert_int_equal(model_query_choice_types("Goal.target.due", types, 64), 2);
	assert_int_equal(model_query_choice_types("Goal.description", types, 64), 0);
	assert_int_equal(model_query_choice_types("Goal.nothing", types, 64), -1);
	assert_true(model_query_choice_types("Extension.value[x]", types, 2) > 40);

	uint32_t mn = 9, mx = 9;
	assert_int_equal(model_query_cardinality("Goal.description", &mn, &mx), 0);
	assert_int_equal(mn, 1);
	assert_int_equal(mx, 1);
	assert_int_equal(model_query_cardinality("Goal.category", &mn, &mx), 0);
	assert_int_equal(mn, 0);
	assert_int_equal(mx, UINT32_MAX);
	assert_int_equal(model_query_cardinality("Goal.lifecycleStatus", &mn, &mx), 0);
	assert_int_equal(mn, 1);
	assert_int_equal(model_query_cardinality("Goal.x", &mn, &mx), -1);
	assert_true(model_query_type_known("Goal"));
	assert_true(model_query_type_known("CodeableConcept"));
	assert_false(model_query_type_known("Goal.target"));
	assert_false(model_query_type_known("Golem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(types_are_complete_and_sorted),
		cmocka_unit_test(primitives_carry_regex_and_json_kind),
		cmocka_unit_test(elements_in_definition_order),
		cmocka_unit_test(every_max_is_0_1_or_unbounded),
		cmocka_unit_test(choices_and_backbones),
		cmocka_unit_test(plugin_queries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
