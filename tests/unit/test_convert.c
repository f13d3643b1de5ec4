/* Unit tests: FHIR JSON ⇄ XML conversion against the official example pairs,
 * the Synthea Bundles and the official schema; hostile XML. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fhir/fhir_xml.h"
#include "base/fjson.h"
#include "testenv.h"

static bool same_xhtml(const char *a, const char *b)
{
	if (!strcmp(a, b))
		return true;
	char *ca = fhir_xml_canonical(a, strlen(a), NULL), *cb = fhir_xml_canonical(b, strlen(b), NULL);
	bool same = ca && cb && !strcmp(ca, cb);
	free(ca);
	free(cb);
	return same;
}

/* Same tree: objects as unordered maps, arrays in order, numbers by literal,
 * the narrative div by XML infoset. Writes the first difference to where. */
static bool same_json(const cJSON *a, const cJSON *b, const char *key, char *where, size_t wl)
{
	if ((a->type & 0xFF) != (b->type & 0xFF)) {
		snprintf(where, wl, "%s: type differs", key);
		return false;
	}
	if (cJSON_IsNumber(a)) {
		const char *la = fjson_number_literal(a), *lb = fjson_number_literal(b);
		if (!la || !lb || strcmp(la, lb)) {
			snprintf(where, wl, "%s: number %s vs %s", key, la ? la : "?", lb ? lb : "?");
			return false;
		}
		return true;
	}
	if (cJSON_IsString(a)) {
		bool ok = !strcmp(key, "div") ? same_xhtml(a->valuestring, b->valuestring)
					      : !strcmp(a->valuestring, b->valuestring);
		if (!ok)
			snprintf(where, wl, "%s: \"%.60s\" vs \"%.60s\"", key, a->valuestring, b->valuestring);
		return ok;
	}
	if (cJSON_IsArray(a)) {
		const cJSON *x = a->child, *y = b->child;
		for (; x && y; x = x->next, y = y->next)
			if (!same_json(x, y, key, where, wl))
				return false;
		if (x || y) {
			snprintf(where, wl, "%s: array length differs", key);
			return false;
		}
		return true;
	}
	if (cJSON_IsObject(a)) {
		int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);
		for (const cJSON *x = a->child; x; x = x->next) {
			const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
			if (!y) {
				snprintf(where, wl, "%s.%s: missing", key, x->string);
				return false;
			}
			if (!same_json(x, y, x->string, where, wl))
				return false;
		}
		if (na != nb) {
			snprintf(where, wl, "%s: member count %d vs %d", key, na, nb);
			return false;
		}
	}
	return true;
}

static bool same_xml(const char *a, size_t al, const char *b, size_t bl, char *where, size_t wl)
{
	size_t cal = 0, cbl = 0;
	char *ca = fhir_xml_canonical(a, al, &cal), *cb = fhir_xml_canonical(b, bl, &cbl);
	bool same = ca && cb && cal == cbl && !memcmp(ca, cb, cal);
	if (!same && ca && cb) {
		size_t i = 0;
		while (i < cal && i < cbl && ca[i] == cb[i])
			i++;
		size_t from = i > 80 ? i - 80 : 0;
		snprintf(where, wl, "XML differs near: ...%.*s <> %.*s", (int)(i - from + 40 > cal - from ? cal - from : i - from + 40),
			 ca + from, 60, cb + i);
	} else if (!same) {
		snprintf(where, wl, "XML not well-formed");
	}
	free(ca);
	free(cb);
	return same;
}

/* The streaming reader's JSON text parses to the tree the tree reader built. */
static bool same_stream(const char *xml, size_t xl, const cJSON *tree, char *where, size_t wl)
{
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	size_t n = 0;
	char *text = fhir_xml_to_json_text(xml, xl, NULL, &n, &oo, &st);
	bool same = false;
	if (!text) {
		snprintf(where, wl, "stream refused: %s", oo.n ? oo.issues[0].diagnostics : "?");
	} else {
		cJSON *j = fjson_parse(text, n, NULL, NULL);
		same = j && same_json(j, tree, "", where, wl);
		if (!j)
			snprintf(where, wl, "stream text is not JSON: %.200s", text);
		cJSON_Delete(j);
	}
	free(text);
	outcome_release(&oo);
	return same;
}

/* Names of official examples that are themselves wrong, with the reason. */
static bool is_exception(const char *name)
{
	static char *list;
	static size_t len;
	if (!list) {
		list = read_whole_file("tests/fixtures/conversion-exceptions.txt", &len);
		if (!list)
			list = calloc(1, 1);
	}
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (*p != '#' && ll > n && !strncmp(p, name, n) && (p[n] == '\t' || p[n] == ' '))
			return true;
		p = eol ? eol + 1 : NULL;
	}
	return false;
}

struct tally {
	int pairs, failed, excepted;
	char outdir[256];
};

/* All four directions for one pair; returns NULL on success or the failure. */
static const char *check_pair(const char *name, const char *jtext, size_t jlen, const char *xtext, size_t xlen,
			      char *where, size_t wl, const char *outdir, const char **official)
{
	static char msg[1024];
	struct outcome oo = OUTCOME_INIT;
	const char *fail = NULL;
	int st = 0;
	cJSON *j = fjson_parse(jtext, jlen, NULL, NULL);
	size_t x1len = 0;
	char *x1 = j ? fhir_json_to_xml(j, false, &x1len, &oo, &st) : NULL;
	cJSON *j1 = fhir_xml_to_json(xtext, xlen, NULL, &oo, &st);
	cJSON *j2 = x1 ? fhir_xml_to_json(x1, x1len, NULL, &oo, &st) : NULL;
	size_t x2len = 0;
	char *x2 = j1 ? fhir_json_to_xml(j1, true, &x2len, &oo, &st) : NULL;
	if (!j)
		fail = "official JSON does not parse";
	else if (!x1 || !j1 || !j2 || !x2) {
		snprintf(msg, sizeof msg, "conversion refused: %s %s",
			 oo.n ? oo.issues[0].diagnostics : "", oo.n && oo.issues[0].expression ? oo.issues[0].expression : "");
		fail = msg;
	} else if (!same_json(j2, j, "", where, wl))
		fail = "JSON→XML→JSON is not identical";
	else if (!same_xml(x2, x2len, xtext, xlen, where, wl))
		fail = "XML→JSON→XML is not identical";
	else if (!same_stream(xtext, xlen, j1, where, wl))
		fail = "the streaming XML→JSON text differs from the tree reader";
	else if (!same_xml(x1, x1len, xtext, xlen, where, wl))
		fail = *official = "JSON→XML differs from the official XML";
	else if (!same_json(j1, j, "", where, wl))
		fail = *official = "XML→JSON differs from the official JSON";
	if ((!fail || *official) && outdir) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s.xml", outdir, name);
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(x1, 1, x1len, f);
			fclose(f);
		}
	}
	free(x1);
	free(x2);
	cJSON_Delete(j);
	cJSON_Delete(j1);
	cJSON_Delete(j2);
	outcome_release(&oo);
	return fail;
}

/* Where official_pairs_convert_both_ways leaves the XML it wrote, for the
 * schema check that follows it; removed by that check. */
static char written[] = "/tmp/cw-convert-XXXXXX";
static int written_count;

static void official_pairs_convert_both_ways(void **state)
{
	(void)state;
	char dir[512];
	snprintf(dir, sizeof dir, "%s/fhir-r4/examples-json-xml/json", corpus_dir());
	DIR *d = opendir(dir);
	assert_non_null(d);
	assert_non_null(mkdtemp(written));
	const char *outdir = written;
	int pairs = 0, failed = 0, excepted = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
		char jp[1024], xp[1024];
		snprintf(jp, sizeof jp, "%s/%s.json", dir, name);
		snprintf(xp, sizeof xp, "%s/../xml/%s.xml", dir, name);
		size_t jl = 0, xl = 0;
		char *jt = read_whole_file(jp, &jl), *xt = read_whole_file(xp, &xl);
		if (!jt || !xt) {
			free(jt);
			free(xt);
			continue;
		}
		pairs++;
		char where[400] = "";
		const char *official = NULL;
		const char *fail = check_pair(name, jt, jl, xt, xl, where, sizeof where, outdir, &official);
		if (fail && official && is_exception(name)) {
			excepted++;
		} else if (fail) {
			failed++;
			if (failed <= 100)
				print_message("# %s: %s %s\n", name, fail, where);
		}
		free(jt);
		free(xt);
	}
	closedir(d);
	print_message("# %d pairs, %d failed, %d listed as wrong\n", pairs, failed, excepted);
	assert_true(pairs >= 700);
	assert_int_equal(failed, 0);
	written_count = pairs;
}

/* Every XML the pairs test wrote validates against the official schema
 * (xmllint, an optional tool: skipped with the reason when missing). */
static void written_xml_validates_against_the_schema(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 512], dir[512], xsd[PATH_MAX];
	if (!have_tool("xmllint")) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", written);
		assert_int_equal(system(cmd), 0);
		skip_because("xmllint is not installed (Debian: libxml2-utils; tools/deps.sh test)");
	}
	assert_true(written_count >= 700);
	snprintf(dir, sizeof dir, "%s/fhir-r4/xsd/fhir-single.xsd", corpus_dir());
	assert_non_null(realpath(dir, xsd));
	snprintf(cmd, sizeof cmd,
		 "cd %s && n=$(ls *.xml | wc -l) && [ \"$n\" -ge 700 ] && "
		 "xmllint --noout --nonet --schema %s *.xml > schema.log 2>&1; "
		 "rc=$?; grep -v ' validates$' schema.log | head -20; exit $rc",
		 written, xsd);
	int rc = system(cmd);
	assert_int_equal(rc, 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", written);
	assert_int_equal(system(cmd), 0);
}

static void synthea_bundles_round_trip(void **state)
{
	(void)state;
	char dir[512];
	snprintf(dir, sizeof dir, "%s/fhir-r4/synthea", corpus_dir());
	DIR *d = opendir(dir);
	assert_non_null(d);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		size_t jl = 0;
		char *jt = read_whole_file(p, &jl);
		assert_non_null(jt);
		struct outcome oo = OUTCOME_INIT;
		int st = 0;
		cJSON *j = fjson_parse(jt, jl, NULL, NULL);
		assert_non_null(j);
		size_t xl = 0;
		char *x = fhir_json_to_xml(j, false, &xl, &oo, &st);
		if (!x)
			print_message("# %s: %s at %s\n", de->d_name, oo.issues[0].diagnostics,
				      oo.issues[0].expression ? oo.issues[0].expression : "");
		assert_non_null(x);
		cJSON *j2 = fhir_xml_to_json(x, xl, NULL, &oo, &st);
		assert_non_null(j2);
		char swhere[400] = "";
		bool ssame = same_stream(x, xl, j2, swhere, sizeof swhere);
		if (!ssame)
			print_message("# %s stream: %s\n", de->d_name, swhere);
		assert_true(ssame);
		char where[400] = "";
		bool same = same_json(j2, j, "", where, sizeof where);
		if (!same)
			print_message("# %s: %s\n", de->d_name, where);
		assert_true(same);
		size_t x2l = 0;
		char *x2 = fhir_json_to_xml(j2, false, &x2l, &oo, &st);
		assert_non_null(x2);
		assert_true(x2l == xl && !memcmp(x, x2, xl));
		free(x);
		free(x2);
		cJSON_Delete(j);
		cJSON_Delete(j2);
		free(jt);
		outcome_release(&oo);
		count++;
	}
	closedir(d);
	assert_int_equal(count, 13);
}

static int refused(const char *xml, const char *needle)
{
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cJSON *j = fhir_xml_to_json(xml, strlen(xml), NULL, &oo, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int ok = !j && st == 400 && oo.n > 0;
	if (ok && needle && !strstr(oo.issues[0].diagnostics, needle)) {
		print_message("# diagnostics: %s\n", oo.issues[0].diagnostics);
		ok = 0;
	}
	cJSON_Delete(j);
	outcome_release(&oo);
	/* the streaming reader refuses it too */
	struct outcome o2 = OUTCOME_INIT;
	int st2 = 0;
	char *t = fhir_xml_to_json_text(xml, strlen(xml), NULL, NULL, &o2, &st2);
	if (t || st2 != 400 || o2.n == 0)
		ok = 0;
	free(t);
	outcome_release(&o2);
	return ok;
}

static void hostile_xml_is_refused(void **state)
{
	(void)state;
	assert_true(refused("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
			    "\"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><Patient xmlns=\"http://hl7.org/fhir\">"
			    "<id value=\"&lol2;\"/></Patient>",
			    "DOCTYPE"));
	assert_true(refused("<!DOCTYPE Patient SYSTEM \"file:///etc/passwd\"><Patient xmlns=\"http://hl7.org/fhir\"/>",
			    "DOCTYPE"));
	assert_true(refused("<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/hostname\">]>"
			    "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&x;\"/></Patient>",
			    "DOCTYPE"));
	assert_true(refused("<!DOCTYPE p [<!ENTITY % d SYSTEM \"http://127.0.0.1:9/x.dtd\"> %d;]>"
			    "<Patient xmlns=\"http://hl7.org/fhir\"/>",
			    "DOCTYPE"));
	/* undeclared entity, XInclude element, wrong namespace, text content */
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&x;\"/></Patient>", NULL));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
			    "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/></Patient>",
			    "unknown element"));
	assert_true(refused("<Patient xmlns=\"urn:other\"/>", "namespace"));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\">text</Patient>", "text"));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\"><nope value=\"1\"/></Patient>", "unknown element"));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"yes\"/></Patient>", "boolean"));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/><active value=\"true\"/>"
			    "</Patient>",
			    "repeats"));
	assert_true(refused("<Observation xmlns=\"http://hl7.org/fhir\"><valueQuantity><value value=\"1.\"/>"
			    "</valueQuantity></Observation>",
			    "number"));
	assert_true(refused("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Patient xmlns=\"http://hl7.org/fhir\"/>",
			    "UTF-8"));
	assert_true(refused("\xff\xfe<\0P\0/\0>\0", "UTF-8"));
	assert_true(refused("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\"/>", "line"));
	/* depth 100 000 */
	size_t depth = 100000;
	char *deep = malloc(depth * 26 + 100);
	assert_non_null(deep);
	char *p = deep;
	p += sprintf(p, "<Patient xmlns=\"http://hl7.org/fhir\">");
	for (size_t i = 0; i < depth; i++)
		p += sprintf(p, "<extension>");
	for (size_t i = 0; i < depth; i++)
		p += sprintf(p, "</extension>");
	sprintf(p, "</Patient>");
	assert_true(refused(deep, NULL));
	free(deep);
}

static void decimals_and_primitive_extensions(void **state)
{
	(void)state;
	const char *json = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},"
			   "\"valueQuantity\":{\"value\":1.10,\"unit\":\"mg\"},"
			   "\"component\":[{\"code\":{\"text\":\"c\"},\"valueInteger\":12345678901234567890}],"
			   "\"_status\":{\"id\":\"s1\",\"extension\":[{\"url\":\"http://e.org/x\",\"valueDecimal\":1e2}]}}";
	cJSON *j = fjson_parse(json, strlen(json), NULL, NULL);
	assert_non_null(j);
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	size_t xl = 0;
	char *x = fhir_json_to_xml(j, false, &xl, &oo, &st);
	assert_non_null(x);
	assert_non_null(strstr(x, "<value value=\"1.10\"/>"));
	assert_non_null(strstr(x, "<status id=\"s1\" value=\"final\"><extension url=\"http://e.org/x\">"
				  "<valueDecimal value=\"1e2\"/></extension></status>"));
	/* model order: status before code before value before component */
	assert_true(strstr(x, "<status") < strstr(x, "<code>"));
	assert_true(strstr(x, "<valueQuantity>") < strstr(x, "<component>"));
	cJSON *back = fhir_xml_to_json(x, xl, NULL, &oo, &st);
	assert_non_null(back);
	char where[256];
	assert_true(same_json(back, j, "", where, sizeof where));
	char *printed = fjson_print(back, false, NULL);
	assert_non_null(strstr(printed, "12345678901234567890"));
	free(printed);
	free(x);
	cJSON_Delete(back);
	cJSON_Delete(j);

	/* primitive arrays with null placeholders */
	const char *names = "{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"A\",null,\"C\"],"
			    "\"_given\":[null,{\"extension\":[{\"url\":\"http://e.org/y\",\"valueString\":\"b\"}]},null]}]}";
	j = fjson_parse(names, strlen(names), NULL, NULL);
	x = fhir_json_to_xml(j, false, &xl, &oo, &st);
	assert_non_null(x);
	back = fhir_xml_to_json(x, xl, NULL, &oo, &st);
	assert_non_null(back);
	assert_true(same_json(back, j, "", where, sizeof where));
	free(x);
	cJSON_Delete(back);
	cJSON_Delete(j);
	outcome_release(&oo);
}

static void json_that_is_not_fhir_is_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"{\"resourceType\":\"Patient\",\"nope\":1}",
		"{\"resourceType\":\"Patient\",\"active\":\"true\"}",
		"{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}",
		"{\"resourceType\":\"Patient\",\"gender\":[\"male\"]}",
		"{\"resourceType\":\"Observation\",\"valueString\":\"a\",\"valueBoolean\":true}",
		"{\"resourceType\":\"Observation\",\"valueMoney\":{\"value\":1}}",
		"{\"resourceType\":\"Nope\"}",
		"{\"id\":\"x\"}",
		"{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":\"<div>unclosed\"}}",
		"{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\"],\"_given\":[null,null]}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cJSON *j = fjson_parse(bad[i], strlen(bad[i]), NULL, NULL);
		assert_non_null(j);
		struct outcome oo = OUTCOME_INIT;
		int st = 0;
		char *x = fhir_json_to_xml(j, false, NULL, &oo, &st);
		if (x)
			print_message("# accepted: %s\n", bad[i]);
		assert_null(x);
		assert_int_equal(st, 400);
		assert_true(oo.n > 0);
		cJSON_Delete(j);
		outcome_release(&oo);
	}
}

/* A refusal names where it is: the element path with array indexes, the
 * chosen type of a choice, inside a contained resource and a primitive's
 * "_" sibling. */
static void refusals_name_where_they_are(void **state)
{
	(void)state;
	static const struct {
		const char *json, *where;
	} cases[] = {
		{"{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\"]},{\"given\":[\"b\",1]}]}",
		 "Patient.name[1].given[1]"},
		{"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"valueQuantity\":{\"value\":\"x\"}}",
		 "Observation.valueQuantity.value"},
		{"{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\"},"
		 "{\"resourceType\":\"Organization\",\"nme\":\"x\"}]}",
		 "Patient.contained[1].nme"},
		{"{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"u\",\"valueString\":\"a\",\"valueBoolean\":"
		 "true}]}",
		 "Patient.extension[0].valueBoolean"},
		{"{\"resourceType\":\"Patient\",\"birthDate\":\"2000-01-01\",\"_birthDate\":{\"extension\":[{\"url\":"
		 "\"u\","
		 "\"valueCode\":\"a\\u0001\"}]}}",
		 "Patient.birthDate.extension[0].valueCode"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		cJSON *j = fjson_parse(cases[i].json, strlen(cases[i].json), NULL, NULL);
		assert_non_null(j);
		struct outcome oo = OUTCOME_INIT;
		int st = 0;
		char *x = fhir_json_to_xml(j, false, NULL, &oo, &st);
		assert_null(x);
		assert_int_equal(st, 400);
		assert_true(oo.n > 0);
		const char *where = oo.issues[0].expression ? oo.issues[0].expression : "";
		if (strcmp(where, cases[i].where) != 0)
			print_message("# %s: at \"%s\", expected \"%s\"\n", cases[i].json, where, cases[i].where);
		assert_string_equal(where, cases[i].where);
		cJSON_Delete(j);
		outcome_release(&oo);
	}
}

/* The XML readers name where a refusal is, as the writer does: element
 * path with array indexes, inside a contained resource, under a choice's
 * chosen type and in a primitive's extension; both readers alike (the tree
 * and the text one). */
static void xml_refusals_name_where_they_are(void **state)
{
	(void)state;
#define NS " xmlns=\"http://hl7.org/fhir\""
	static const struct {
		const char *xml, *where;
	} cases[] = {
		{"<Patient" NS "><name><given value=\"a\"/></name><name><given value=\"b\"/><given value=\"c\"/>"
		 "<foo value=\"x\"/></name></Patient>",
		 "Patient.name[1].foo"},
		{"<Observation" NS "><status value=\"final\"/><code><text value=\"x\"/></code><valueQuantity>"
		 "<value value=\"x\"/></valueQuantity></Observation>",
		 "Observation.valueQuantity.value"},
		{"<Patient" NS "><contained><Organization><id value=\"o\"/></Organization></contained><contained>"
		 "<Organization><nme value=\"x\"/></Organization></contained></Patient>",
		 "Patient.contained[1].nme"},
		{"<Patient" NS "><extension url=\"u\"><valueString value=\"a\"/></extension><extension url=\"v\">"
		 "<valueBoolean value=\"maybe\"/></extension></Patient>",
		 "Patient.extension[1].valueBoolean"},
		{"<Patient" NS "><birthDate value=\"2000-01-01\"><extension url=\"u\"><valueCode value=\"a\"/>"
		 "</extension><extension url=\"v\"><valueBoolean value=\"maybe\"/></extension></birthDate></Patient>",
		 "Patient.birthDate.extension[1].valueBoolean"},
	};
#undef NS
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		for (int text = 0; text < 2; text++) {
			struct outcome oo = OUTCOME_INIT;
			int st = 0;
			size_t len = 0;
			char *out = NULL;
			cJSON *t = NULL;
			if (text)
				out = fhir_xml_to_json_text(cases[i].xml, strlen(cases[i].xml), NULL, &len, &oo, &st);
			else
				t = fhir_xml_to_json(cases[i].xml, strlen(cases[i].xml), NULL, &oo, &st);
			if (out || t)
				print_message("# accepted by the %s reader: %s\n", text ? "text" : "tree",
					      cases[i].xml);
			assert_null(out);
			assert_null(t);
			assert_int_equal(st, 400);
			assert_true(oo.n > 0);
			const char *where = oo.issues[0].expression ? oo.issues[0].expression : "";
			if (strcmp(where, cases[i].where) != 0)
				print_message("# %s (%s reader): at \"%s\", expected \"%s\"\n", cases[i].xml,
					      text ? "text" : "tree", where, cases[i].where);
			assert_string_equal(where, cases[i].where);
			outcome_release(&oo);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decimals_and_primitive_extensions),
		cmocka_unit_test(json_that_is_not_fhir_is_refused),
		cmocka_unit_test(hostile_xml_is_refused),
		cmocka_unit_test(refusals_name_where_they_are),
		cmocka_unit_test(xml_refusals_name_where_they_are),
		cmocka_unit_test(official_pairs_convert_both_ways),
		cmocka_unit_test(written_xml_validates_against_the_schema),
		cmocka_unit_test(synthea_bundles_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
