/* Unit tests: the strict FHIR JSON reader and writer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "testenv.h"

static cJSON *parse(const char *s, struct fjson_error *err)
{
	return fjson_parse(s, strlen(s), NULL, err);
}

static void roundtrip_exact(const char *in)
{
	struct fjson_error err;
	cJSON *j = parse(in, &err);
	if (!j)
		fail_msg("'%s' refused: %s", in, err.message);
	size_t len;
	char *out = fjson_print(j, false, &len);
	assert_string_equal(out, in);
	assert_int_equal(len, strlen(in));
	free(out);
	cJSON_Delete(j);
}

static void decimals_keep_their_literal(void **state)
{
	(void)state;
	roundtrip_exact("{\"a\":1.10,\"b\":1e2,\"c\":0.000,\"d\":12345678901234567890,\"e\":-0.5E-7,\"f\":0}");
	roundtrip_exact("[1.0,100,-1,3.14159265358979323846264338327950288]");
	roundtrip_exact("\"only a string\"");
	roundtrip_exact("true");
	cJSON *j = parse("{\"v\":1.10}", NULL);
	cJSON *v = cJSON_GetObjectItem(j, "v");
	assert_true(cJSON_IsNumber(v));
	assert_true(v->valuedouble > 1.09 && v->valuedouble < 1.11);
	assert_string_equal(fjson_number_literal(v), "1.10");
	cJSON *dup = cJSON_Duplicate(j, 1);
	assert_string_equal(fjson_number_literal(cJSON_GetObjectItem(dup, "v")), "1.10");
	char *s = fjson_print(dup, false, NULL);
	assert_string_equal(s, "{\"v\":1.10}");
	free(s);
	/* A value changed by a plugin prints as the new value. */
	cJSON_SetNumberValue(cJSON_GetObjectItem(dup, "v"), 2.5);
	s = fjson_print(dup, false, NULL);
	assert_string_equal(s, "{\"v\":2.5}");
	free(s);
	cJSON_Delete(dup);
	cJSON_Delete(j);
	cJSON *n = fjson_create_number_literal("4.50");
	assert_non_null(n);
	s = fjson_print(n, false, NULL);
	assert_string_equal(s, "4.50");
	free(s);
	cJSON_Delete(n);
	assert_null(fjson_create_number_literal("01"));
	assert_null(fjson_create_number_literal(".5"));
	cJSON *plain = cJSON_CreateNumber(42);
	s = fjson_print(plain, false, NULL);
	assert_string_equal(s, "42");
	free(s);
	cJSON_Delete(plain);
}

static void refusals(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		enum fjson_code code;
		int line, column;
		const char *path;
	} cases[] = {
		{"{\"a\":1,\"a\":2}", FJSON_DUPLICATE_KEY, 1, 8, "$.a"},
		{"{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"b\\u0000\"]}]}", FJSON_NUL_CHAR, 1, 51,
		 "Patient.name[0].given[1]"},
		{"{\"a\":\"\xC3\x28\"}", FJSON_INVALID_UTF8, 1, 7, "$.a"},
		{"{\"a\":\"\xE0\x80\xAF\"}", FJSON_INVALID_UTF8, 1, 7, "$.a"},   /* overlong */
		{"{\"a\":\"\xED\xA0\x80\"}", FJSON_INVALID_UTF8, 1, 7, "$.a"},   /* surrogate */
		{"{\"a\":\"\xF4\x90\x80\x80\"}", FJSON_INVALID_UTF8, 1, 7, "$.a"},/* > U+10FFFF */
		{"{\"a\":\"\\ud800\"}", FJSON_BAD_ESCAPE, 1, 7, "$.a"},
		{"{\"a\":\"\\udc00\\ud800\"}", FJSON_BAD_ESCAPE, 1, 7, "$.a"},
		{"{\"a\":\"\\x\"}", FJSON_BAD_ESCAPE, 1, 7, "$.a"},
		{"{\"a\":\"x\ty\"}", FJSON_CONTROL_CHAR, 1, 8, "$.a"},
		{"{\"a\":1} x", FJSON_TRAILING_DATA, 1, 9, "$"},
		{"{\"a\":1}{}", FJSON_TRAILING_DATA, 1, 8, "$"},
		{"", FJSON_EMPTY, 1, 1, "$"},
		{"   \n ", FJSON_EMPTY, 2, 2, "$"},
		{"{\"a\":01}", FJSON_BAD_NUMBER, 1, 6, "$.a"},
		{"{\"a\":.5}", FJSON_SYNTAX, 1, 6, "$.a"},
		{"{\"a\":+1}", FJSON_SYNTAX, 1, 6, "$.a"},
		{"{\"a\":1.}", FJSON_BAD_NUMBER, 1, 6, "$.a"},
		{"{\"a\":NaN}", FJSON_SYNTAX, 1, 6, "$.a"},
		{"{\"a\":[1,2,]}", FJSON_SYNTAX, 1, 11, "$.a[2]"},
		{"{\"a\":1,}", FJSON_SYNTAX, 1, 8, "$"},
		{"{\"a\" 1}", FJSON_SYNTAX, 1, 6, "$"},
		{"{'a':1}", FJSON_SYNTAX, 1, 2, "$"},
		{"[1,\n2,\n]", FJSON_SYNTAX, 3, 1, "$[2]"},
		{"{\"a\":tru}", FJSON_SYNTAX, 1, 6, "$.a"},
		{"{\"a\":\"unterminated}", FJSON_SYNTAX, 1, 20, "$.a"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fjson_error err;
		cJSON *j = parse(cases[i].in, &err);
		if (j)
			fail_msg("case %zu accepted", i);
		if (err.code != cases[i].code || err.line != cases[i].line || err.column != cases[i].column ||
		    strcmp(err.path, cases[i].path) != 0 || err.status != 400)
			fail_msg("case %zu: got code %d line %d col %d path %s (%s)", i, err.code, err.line,
				 err.column, err.path, err.message);
		/* the arena reader refuses the same, at the same place */
		struct arena a;
		arena_init(&a, 0);
		struct fjson_error aerr;
		if (fjson_parse_in(&a, cases[i].in, strlen(cases[i].in), NULL, &aerr))
			fail_msg("case %zu accepted in an arena", i);
		if (aerr.code != err.code || aerr.line != err.line || aerr.column != err.column ||
		    strcmp(aerr.path, err.path) != 0 || aerr.status != err.status)
			fail_msg("case %zu in an arena: got code %d line %d col %d path %s", i, aerr.code, aerr.line,
				 aerr.column, aerr.path);
		arena_release(&a);
	}
}

static void depth_limits(void **state)
{
	(void)state;
	char *s = malloc(200002);
	for (int i = 0; i < 1000; i++)
		s[i] = '[';
	for (int i = 0; i < 1000; i++)
		s[1000 + i] = ']';
	struct fjson_error err;
	cJSON *j = fjson_parse(s, 2000, NULL, &err);
	assert_non_null(j);
	char *out = fjson_print(j, true, NULL); /* iterative: no stack overflow */
	assert_non_null(out);
	free(out);
	cJSON_Delete(j);
	s[1000] = '[';
	memmove(s + 1001, s + 1000, 1000);
	s[2001] = ']';
	assert_null(fjson_parse(s, 2002, NULL, &err));
	assert_int_equal(err.code, FJSON_DEPTH);
	for (int i = 0; i < 100000; i++)
		s[i] = '[';
	assert_null(fjson_parse(s, 100000, NULL, &err));
	assert_int_equal(err.code, FJSON_DEPTH);
	free(s);
}

static void member_and_item_limits(void **state)
{
	(void)state;
	/* 1,000,000 distinct members: refused (a quadratic path would not finish;
	 * speed is measured by make bench, not here). */
	size_t cap = 16u << 20, n = 0;
	char *s = malloc(cap);
	s[n++] = '{';
	for (int i = 0; i < 1000000; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\":0", i ? "," : "", i);
	s[n++] = '}';
	struct fjson_error err;
	assert_null(fjson_parse(s, n, NULL, &err));
	assert_int_equal(err.code, FJSON_TOO_MANY_MEMBERS);
	/* With a raised limit, a large object parses and a late duplicate
	 * is still found (hash set path). */
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.max_members = 2000000;
	lim.memory_budget = 1u << 30;
	cJSON *j = fjson_parse(s, n, &lim, &err);
	assert_non_null(j);
	cJSON_Delete(j);
	s[n - 1] = ',';
	n += (size_t)snprintf(s + n, cap - n, "\"k77\":1}");
	assert_null(fjson_parse(s, n, &lim, &err));
	assert_int_equal(err.code, FJSON_DUPLICATE_KEY);
	/* Arrays. */
	n = 0;
	s[n++] = '[';
	for (int i = 0; i < 100001; i++) {
		s[n++] = '0';
		s[n++] = ',';
	}
	s[n - 1] = ']';
	assert_null(fjson_parse(s, n, NULL, &err));
	assert_int_equal(err.code, FJSON_TOO_MANY_ITEMS);
	free(s);
}

static void memory_budget_gives_413(void **state)
{
	(void)state;
	/* 10 MB of [0,0,…] would cost ~370 MB as a cJSON tree. */
	size_t n = 0, cap = 10u << 20;
	char *s = malloc(cap);
	s[n++] = '[';
	while (n + 2 < cap) {
		s[n++] = '0';
		s[n++] = ',';
	}
	s[n - 1] = ']';
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.max_array_items = 10000000;
	lim.memory_budget = 16u << 20;
	struct fjson_error err;
	assert_null(fjson_parse(s, n, &lim, &err));
	assert_int_equal(err.code, FJSON_BUDGET);
	assert_int_equal(err.status, 413);
	/* in an arena the budget is lim's too, however large the arena's */
	struct arena a;
	arena_init(&a, (size_t)1 << 30);
	assert_null(fjson_parse_in(&a, s, n, &lim, &err));
	assert_int_equal(err.code, FJSON_BUDGET);
	assert_int_equal(err.status, 413);
	assert_true(a.used < (size_t)64 << 20);
	arena_release(&a);
	free(s);
}

static void pretty_printing(void **state)
{
	(void)state;
	cJSON *j = parse("{\"a\":[1,{\"b\":\"x\\\"y\\n\"}],\"c\":{},\"d\":[]}", NULL);
	char *s = fjson_print(j, true, NULL);
	assert_string_equal(s, "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x\\\"y\\n\"\n    }\n  ],\n"
			       "  \"c\": {},\n  \"d\": []\n}");
	free(s);
	cJSON_Delete(j);
	/* Escapes and UTF-8 round trip. */
	roundtrip_exact("[\"\\u0001\\\\\\\"\\t\",\"caf\xC3\xA9 \xF0\x9F\x98\x80\"]");
	j = parse("\"\\u00e9\\ud83d\\ude00\\/\"", NULL);
	assert_string_equal(j->valuestring, "\xC3\xA9\xF0\x9F\x98\x80/");
	cJSON_Delete(j);
	/* BOM skipped. */
	j = parse("\xEF\xBB\xBF{}", NULL);
	assert_non_null(j);
	cJSON_Delete(j);
}

/* Tree equality with numbers compared by literal. */
static bool same(const cJSON *a, const cJSON *b)
{
	if ((a->type & 0xFF) != (b->type & 0xFF))
		return false;
	if (cJSON_IsNumber(a))
		return strcmp(fjson_number_literal(a), fjson_number_literal(b)) == 0;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (!cJSON_IsObject(a) && !cJSON_IsArray(a))
		return true;
	const cJSON *x = a->child, *y = b->child;
	for (; x && y; x = x->next, y = y->next)
		if ((cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) || !same(x, y))
			return false;
	return !x && !y;
}

static char *slurp(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	*len = fread(b, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static int check_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strstr(e->d_name, ".json"))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t len = 0;
		char *text = slurp(path, &len);
		assert_non_null(text);
		struct fjson_error err;
		cJSON *a = fjson_parse(text, len, NULL, &err);
		if (!a)
			fail_msg("%s refused: %s", path, err.message);
		size_t l1, l2;
		char *p1 = fjson_print(a, false, &l1);
		cJSON *b = fjson_parse(p1, l1, NULL, &err);
		assert_non_null(b);
		assert_true(same(a, b));
		char *p2 = fjson_print(b, true, &l2);
		cJSON *c = fjson_parse(p2, l2, NULL, &err);
		assert_non_null(c);
		assert_true(same(a, c));
		/* the arena reader builds the same tree, printed the same */
		struct arena ar;
		arena_init(&ar, (size_t)1 << 30);
		cJSON *in_arena = fjson_parse_in(&ar, text, len, NULL, &err);
		assert_non_null(in_arena);
		assert_true(same(a, in_arena));
		size_t l3;
		char *p3 = fjson_print(in_arena, false, &l3);
		assert_int_equal(l3, l1);
		assert_memory_equal(p3, p1, l1);
		free(p3);
		arena_release(&ar);
		/* Compare with cJSON's own view of the same bytes. */
		cJSON *ref = cJSON_ParseWithLength(text, len);
		assert_non_null(ref);
		cJSON_Delete(ref);
		free(p1);
		free(p2);
		cJSON_Delete(a);
		cJSON_Delete(b);
		cJSON_Delete(c);
		free(text);
		count++;
	}
	closedir(d);
	return count;
}

static void official_examples_round_trip(void **state)
{
	(void)state;
	char dir[512];
	assert_true(check_dir(corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json")) >= 700);
	assert_true(check_dir(corpus_path(dir, sizeof dir, "fhir-r4/synthea")) >= 13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decimals_keep_their_literal),
		cmocka_unit_test(refusals),
		cmocka_unit_test(depth_limits),
		cmocka_unit_test(member_and_item_limits),
		cmocka_unit_test(memory_budget_gives_413),
		cmocka_unit_test(pretty_printing),
		cmocka_unit_test(official_examples_round_trip),
	};
	return cmocka_run_group_tests_name("fjson", tests, NULL, NULL);
}
