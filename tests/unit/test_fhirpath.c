/* Unit tests: the FHIRPath engine against the official R4 suite
 * (fhir-r4/fhirpath/tests-fhir-r4.xml in the vendored corpus) and its own
 * contract (errors, cache, invariants, limits).
 *
 * Every case of the suite is listed in tests/unit/fhirpath_r4.list as "pass"
 * or as "fail <reason>"; the run fails when a listed pass fails, when a listed
 * failure passes (the list must then be updated), or when a case is missing.
 * CW_FHIRPATH_LIST_OUT=FILE writes the list as the run found it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fjson.h"
#include "fhir/fhir_xml.h"
#include "fhir/fhirpath.h"
#include "testenv.h"

/* --- a reader for the suite's small XML vocabulary ------------------------------ */

static char *xml_text(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '&') {
			static const char *const ent[][2] = {
				{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&apos;", "'"}};
			bool done = false;
			for (size_t e = 0; e < 5 && !done; e++) {
				size_t el = strlen(ent[e][0]);
				if (i + el <= n && !strncmp(s + i, ent[e][0], el)) {
					o[k++] = ent[e][1][0];
					i += el - 1;
					done = true;
				}
			}
			if (!done)
				o[k++] = s[i];
		} else {
			o[k++] = s[i];
		}
	}
	o[k] = '\0';
	return o;
}

/* The value of attribute name in the tag text [s, e), or NULL. */
static char *attr(const char *s, const char *e, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = s; p + nl + 2 < e; p++) {
		if ((p == s || isspace((unsigned char)p[-1])) && !strncmp(p, name, nl) && p[nl] == '=' &&
		    (p[nl + 1] == '"' || p[nl + 1] == '\'')) {
			char q = p[nl + 1];
			const char *v = p + nl + 2, *ve = v;
			while (ve < e && *ve != q)
				ve++;
			return xml_text(v, (size_t)(ve - v));
		}
	}
	return NULL;
}

struct output {
	char *type, *value;
};

struct tcase {
	char *name, *input, *expr, *invalid, *predicate;
	struct output out[16];
	size_t nout;
};

/* Removes comments so commented-out cases are not read. */
static void strip_comments(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (!strncmp(r, "<!--", 4)) {
			char *e = strstr(r + 4, "-->");
			r = e ? e + 3 : r + strlen(r);
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
}

static size_t read_suite(char *doc, struct tcase **out)
{
	strip_comments(doc);
	size_t cap = 1024, n = 0;
	struct tcase *cases = calloc(cap, sizeof *cases);
	for (char *p = strstr(doc, "<test "); p; p = strstr(p, "<test ")) {
		char *tag_end = strchr(p, '>');
		char *end = strstr(p, "</test>");
		if (!tag_end || !end)
			break;
		struct tcase *t = &cases[n++];
		t->name = attr(p, tag_end, "name");
		t->input = attr(p, tag_end, "inputfile");
		t->predicate = attr(p, tag_end, "predicate");
		char *ex = strstr(tag_end, "<expression");
		if (ex && ex < end) {
			char *ee = strchr(ex, '>');
			t->invalid = attr(ex, ee, "invalid");
			char *ec = strstr(ee, "</expression>");
			t->expr = xml_text(ee + 1, (size_t)(ec - ee - 1));
		}
		for (char *o = strstr(tag_end, "<output"); o && o < end && t->nout < 16; o = strstr(o + 1, "<output")) {
			char *oe = strchr(o, '>');
			t->out[t->nout].type = attr(o, oe, "type");
			char *oc = strstr(oe, "</output>");
			t->out[t->nout].value = xml_text(oe + 1, (size_t)(oc - oe - 1));
			t->nout++;
		}
		p = end;
		if (n == cap)
			break;
	}
	*out = cases;
	return n;
}

static void free_suite(struct tcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct tcase *t = &cases[i];
		free(t->name);
		free(t->input);
		free(t->expr);
		free(t->invalid);
		free(t->predicate);
		for (size_t k = 0; k < t->nout; k++) {
			free(t->out[k].type);
			free(t->out[k].value);
		}
	}
	free(cases);
}

/* --- running one case --------------------------------------------------------------- */

struct input {
	char name[64];
	cJSON *res;
};
static struct input inputs[16];
static size_t ninputs;

static cJSON *load_input(const char *name)
{
	for (size_t i = 0; i < ninputs; i++)
		if (!strcmp(inputs[i].name, name))
			return inputs[i].res;
	char rel[256], path[1024];
	snprintf(rel, sizeof rel, "fhir-r4/fhirpath/%s", name);
	corpus_path(path, sizeof path, rel);
	size_t len;
	char *buf = read_whole_file(path, &len);
	if (!buf)
		return NULL;
	cJSON *res;
	if (strstr(name, ".json")) {
		res = fjson_parse(buf, len, NULL, NULL);
	} else {
		struct outcome oo = OUTCOME_INIT;
		res = fhir_xml_to_json(buf, len, NULL, &oo, NULL);
		outcome_release(&oo);
	}
	free(buf);
	if (res && ninputs < 16) {
		snprintf(inputs[ninputs].name, sizeof inputs[ninputs].name, "%s", name);
		inputs[ninputs++].res = res;
	}
	return res;
}

static bool same_type(const struct fp_item *it, const char *want)
{
	const char *have = fp_item_type(it);
	if (!strcmp(have, want))
		return true;
	if (it->kind == FP_NODE && it->u.node.t) {
		for (const struct model_type *t = it->u.node.t; t;
		     t = t->base == MODEL_NONE ? NULL : &model_types[t->base])
			if (!strcmp(t->name, want))
				return true;
	}
	return false;
}

/* Runs one case: true when the engine agrees with the suite; why says how not. */
static bool run_case(const struct tcase *t, char *why, size_t wl)
{
	why[0] = '\0';
	if (!t->expr) {
		snprintf(why, wl, "no expression");
		return false;
	}
	cJSON *res = t->input ? load_input(t->input) : NULL;
	if (t->input && !res) {
		snprintf(why, wl, "input %s not loaded", t->input);
		return false;
	}
	struct fp_error err;
	struct fp_expr *e = fp_compile(t->expr, strlen(t->expr), &err);
	if (!e) {
		if (t->invalid)
			return true;
		snprintf(why, wl, "compile: %s", err.message);
		return false;
	}
	struct arena a;
	arena_init(&a, 16u << 20);
	struct fp_env env = {.resource = res};
	struct fp_coll r;
	int rc = fp_eval(e, &env, &a, &r, &err);
	bool ok = false;
	if (rc != 0) {
		ok = t->invalid != NULL;
		if (!ok)
			snprintf(why, wl, "eval: %s", err.message);
		goto done;
	}
	if (t->invalid) {
		snprintf(why, wl, "expected an error (%s), got %zu items", t->invalid, r.n);
		goto done;
	}
	struct fp_item pred;
	if (t->predicate && !strcmp(t->predicate, "true")) {
		pred = (struct fp_item){.kind = FP_BOOLEAN, .u.b = r.n > 0};
		r.v = &pred;
		r.n = 1;
	}
	if (r.n != t->nout) {
		const char *s0 = r.n ? fp_item_string(&a, &r.v[0]) : NULL;
		snprintf(why, wl, "%zu items, expected %zu (first: %s)", r.n, t->nout, s0 ? s0 : "-");
		goto done;
	}
	ok = true;
	for (size_t i = 0; i < r.n && ok; i++) {
		const char *want = t->out[i].value ? t->out[i].value : "";
		const char *type = t->out[i].type ? t->out[i].type : "";
		const char *s = fp_item_string(&a, &r.v[i]);
		char have[1024];
		/* an output without a type names its kind by the literal's form */
		const char *kind = *type ? type : fp_item_type(&r.v[i]);
		const char *prefix = !strcmp(kind, "date") || !strcmp(kind, "dateTime") ? "@"
				     : !strcmp(kind, "time")                            ? "@T"
											: "";
		snprintf(have, sizeof have, "%s%s", prefix, s ? s : "(complex)");
		if (strcmp(have, want) || (*type && !same_type(&r.v[i], type))) {
			snprintf(why, wl, "item %zu: %s %.200s, expected %.40s %.200s", i, fp_item_type(&r.v[i]), have,
				 type, want);
			ok = false;
		}
	}
done:
	arena_release(&a);
	fp_free(e);
	return ok;
}

/* --- the list --------------------------------------------------------------------------- */

struct listed {
	char name[128];
	bool pass;
	bool seen;
};

static size_t read_list(const char *path, struct listed **out)
{
	size_t len;
	char *buf = read_whole_file(path, &len);
	size_t n = 0, cap = 1024;
	struct listed *l = calloc(cap, sizeof *l);
	for (char *line = buf ? strtok(buf, "\n") : NULL; line && n < cap; line = strtok(NULL, "\n")) {
		if (line[0] == '#' || !line[0])
			continue;
		char name[128], status[16];
		if (sscanf(line, "%127s %15s", name, status) != 2)
			continue;
		snprintf(l[n].name, sizeof l[n].name, "%s", name);
		l[n].pass = !strcmp(status, "pass");
		n++;
	}
	free(buf);
	*out = l;
	return n;
}

static void suite(void **state)
{
	(void)state;
	char path[1024];
	corpus_path(path, sizeof path, "fhir-r4/fhirpath/tests-fhir-r4.xml");
	size_t len;
	char *doc = read_whole_file(path, &len);
	if (!doc) {
		fail_msg("cannot read %s", path);
		return;
	}
	struct tcase *cases;
	size_t n = read_suite(doc, &cases);
	free(doc);
	assert_true(n > 900);
	struct listed *list;
	size_t nl = read_list("tests/unit/fhirpath_r4.list", &list);
	const char *outpath = getenv("CW_FHIRPATH_LIST_OUT");
	FILE *out = outpath ? fopen(outpath, "w") : NULL;
	if (out)
		fprintf(out, "# The official FHIRPath R4 suite: each case passes, or fails for the reason given.\n"
			     "# Regenerate with CW_FHIRPATH_LIST_OUT=FILE (tests/unit/test_fhirpath.c).\n");
	size_t passed = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		char why[512];
		bool ok = run_case(&cases[i], why, sizeof why);
		passed += ok;
		struct listed *l = NULL;
		/* names may repeat in the suite: each case takes the first unused line of its name */
		for (size_t k = 0; k < nl && !l; k++)
			if (!list[k].seen && !strcmp(list[k].name, cases[i].name ? cases[i].name : ""))
				l = &list[k];
		if (out)
			fprintf(out, "%s %s%s%s\n", cases[i].name, ok ? "pass" : "fail", ok ? "" : " ", ok ? "" : why);
		if (!l) {
			print_message("unlisted case %s (%s)\n", cases[i].name, ok ? "passes" : why);
			bad++;
			continue;
		}
		l->seen = true;
		if (l->pass && !ok) {
			print_message("listed as pass, fails: %s: %s\n  %s\n", cases[i].name, why, cases[i].expr);
			bad++;
		} else if (!l->pass && ok) {
			print_message("listed as failing, now passes: %s (update the list)\n", cases[i].name);
			bad++;
		}
	}
	for (size_t k = 0; k < nl; k++)
		if (!list[k].seen) {
			print_message("listed case not in the suite: %s\n", list[k].name);
			bad++;
		}
	if (out)
		fclose(out);
	print_message("# FHIRPath R4 suite: %zu of %zu cases pass\n", passed, n);
	free(list);
	free_suite(cases, n);
	for (size_t i = 0; i < ninputs; i++)
		cJSON_Delete(inputs[i].res);
	ninputs = 0;
	assert_int_equal(bad, 0);
	assert_true(passed >= 900);
}

/* --- the engine's own contract ------------------------------------------------------------ */

static cJSON *json(const char *s)
{
	cJSON *j = fjson_parse(s, strlen(s), NULL, NULL);
	assert_non_null(j);
	return j;
}

static const char *eval1(struct arena *a, const char *expr, const cJSON *res, struct fp_error *err)
{
	struct fp_expr *e = fp_compile(expr, strlen(expr), err);
	if (!e)
		return NULL;
	struct fp_env env = {.resource = res};
	struct fp_coll r;
	const char *out = NULL;
	if (fp_eval(e, &env, a, &r, err) == 0)
		out = r.n == 1 ? fp_item_string(a, &r.v[0]) : r.n == 0 ? "{}" : "many";
	fp_free(e);
	return out;
}

static void errors(void **state)
{
	(void)state;
	struct fp_error err;
	struct arena a;
	arena_init(&a, 1u << 20);
	assert_null(fp_compile("Patient.name.", 13, &err));
	assert_int_equal(err.code, FP_ERR_SYNTAX);
	assert_int_equal(err.offset, 13);
	assert_null(fp_compile("name.nosuchfunction()", 21, &err));
	assert_int_equal(err.code, FP_ERR_SEMANTIC);
	assert_int_equal(err.offset, 5);
	assert_null(fp_compile("'unterminated", 13, &err));
	assert_int_equal(err.code, FP_ERR_SYNTAX);
	cJSON *p = json("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"A\",\"B\"]}]}");
	/* a collection where one item is needed */
	assert_null(eval1(&a, "Patient.name.given + 'x'", p, &err));
	assert_int_equal(err.code, FP_ERR_EVAL);
	/* an element the model does not know on a path of names */
	assert_null(eval1(&a, "Patient.name.given1", p, &err));
	assert_int_equal(err.code, FP_ERR_SEMANTIC);
	assert_null(eval1(&a, "%nosuchvariable", p, &err));
	assert_int_equal(err.code, FP_ERR_EVAL);
	/* nesting beyond the bound is refused, not a stack overflow */
	char deep[2 * FP_MAX_DEPTH + 8];
	size_t k = 0;
	for (int i = 0; i < FP_MAX_DEPTH + 2; i++)
		deep[k++] = '(';
	deep[k++] = '1';
	for (int i = 0; i < FP_MAX_DEPTH + 2; i++)
		deep[k++] = ')';
	assert_null(fp_compile(deep, k, &err));
	assert_int_equal(err.code, FP_ERR_SYNTAX);
	/* an arena budget bounds an evaluation */
	struct arena small;
	arena_init(&small, 4096);
	const char *big = "(1|2|3|4|5|6|7|8|9).select((1|2|3|4|5|6|7|8|9).select($this.toString()))";
	struct fp_expr *e = fp_compile(big, strlen(big), &err);
	assert_non_null(e);
	struct fp_env env = {.resource = p};
	struct fp_coll r;
	assert_int_equal(fp_eval(e, &env, &small, &r, &err), -1);
	assert_int_equal(err.code, FP_ERR_LIMIT);
	fp_free(e);
	arena_release(&small);
	cJSON_Delete(p);
	arena_release(&a);
}

static void values(void **state)
{
	(void)state;
	struct fp_error err;
	struct arena a;
	arena_init(&a, 1u << 20);
	cJSON *o = json("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			"\"valueQuantity\":{\"value\":0.10000000000000000001,\"unit\":\"mg\",\"code\":\"mg\","
			"\"system\":\"http://unitsofmeasure.org\"}}");
	/* decimals stay exact where a double would not */
	assert_string_equal(eval1(&a, "Observation.value.value", o, &err), "0.10000000000000000001");
	assert_string_equal(eval1(&a, "Observation.value.value + 0.1 = 0.20000000000000000001", o, &err), "true");
	assert_string_equal(eval1(&a, "0.1 + 0.2 = 0.3", o, &err), "true");
	assert_string_equal(eval1(&a, "Observation.value is Quantity", o, &err), "true");
	assert_string_equal(eval1(&a, "Observation.value.ofType(Quantity).unit", o, &err), "mg");
	assert_string_equal(eval1(&a, "Observation.value > 0.05 'mg'", o, &err), "true");
	assert_string_equal(eval1(&a, "Observation.value < 1 'g'", o, &err), "true");
	assert_string_equal(eval1(&a, "@2019-01-31 + 1 month", o, &err), "2019-02-28");
	assert_string_equal(eval1(&a, "@2019-01-01T10:00:00Z = @2019-01-01T12:00:00+02:00", o, &err), "true");
	assert_string_equal(eval1(&a, "@2019-01 = @2019-01-01", o, &err), "{}");
	assert_string_equal(eval1(&a, "%ucum", o, &err), "http://unitsofmeasure.org");
	cJSON_Delete(o);
	arena_release(&a);
}

static void bundle_resolve(void **state)
{
	(void)state;
	struct fp_error err;
	struct arena a;
	arena_init(&a, 1u << 20);
	cJSON *b =
		json("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
		     "{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p1\","
		     "\"gender\":\"female\"}},"
		     "{\"fullUrl\":\"http://x/Observation/o1\",\"resource\":{\"resourceType\":\"Observation\","
		     "\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"subject\":{\"reference\":\"urn:uuid:1\"},\"performer\":[{\"reference\":\"Patient/p1\"}]}}]}");
	assert_string_equal(eval1(&a, "Bundle.entry.resource.ofType(Observation).subject.resolve().gender", b, &err),
			    "female");
	assert_string_equal(eval1(&a, "Bundle.entry.resource.ofType(Observation).performer.resolve().id", b, &err),
			    "p1");
	/* %resource and %rootResource seen from a resource in the Bundle */
	cJSON *obs = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 1), "resource");
	const char *x = "subject.resolve().gender = 'female' and %rootResource.type = 'collection'";
	struct fp_expr *e = fp_compile(x, strlen(x), &err);
	assert_non_null(e);
	struct fp_env env = {.resource = obs, .root = b};
	assert_int_equal(fp_eval_bool(e, &env, &a, &err), 1);
	fp_free(e);
	cJSON_Delete(b);
	arena_release(&a);
}

/* Evaluations in a loop reuse one arena chunk (arena_reset). */
static void arena_reuse(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 1u << 20);
	struct fp_error err;
	const struct fp_expr *e = fp_cached("(1 | 2 | 3).select($this * 2).count()", &err);
	assert_non_null(e);
	struct fp_env env = {0};
	struct fp_coll r;
	assert_int_equal(fp_eval(e, &env, &a, &r, &err), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0].u.i, 3);
	size_t used = a.used;
	void *first = a.head;
	for (int i = 0; i < 1000; i++) {
		arena_reset(&a);
		assert_int_equal(fp_eval(e, &env, &a, &r, &err), 0);
	}
	assert_ptr_equal(a.head, first);
	assert_true(a.used <= used);
	arena_release(&a);
}

static void cache(void **state)
{
	(void)state;
	struct fp_error err;
	const struct fp_expr *a = fp_cached("name.given.first()", &err);
	const struct fp_expr *b = fp_cached("name.given.first()", &err);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_string_equal(fp_source(a), "name.given.first()");
	assert_null(fp_cached("name.(", &err));
	assert_int_equal(err.code, FP_ERR_SYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(suite),          cmocka_unit_test(errors),      cmocka_unit_test(values),
		cmocka_unit_test(bundle_resolve), cmocka_unit_test(arena_reuse), cmocka_unit_test(cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
