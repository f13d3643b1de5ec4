/* Unit tests: structural validation from the model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fjson.h"
#include "fhir/validate.h"
#include "testenv.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)))
		*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (buf)
		buf[*len] = '\0';
	return buf;
}

/* Validates text; returns the error count and leaves the first issue in *first. */
static size_t check(const char *json, char *first, size_t fl)
{
	cJSON *j = fjson_parse(json, strlen(json), NULL, NULL);
	assert_non_null(j);
	struct outcome oo = OUTCOME_INIT;
	size_t n = validate_resource(j, &oo);
	if (first && fl)
		snprintf(first, fl, "%s @ %s", oo.n ? oo.issues[0].diagnostics : "",
			 oo.n && oo.issues[0].expression ? oo.issues[0].expression : "");
	outcome_release(&oo);
	cJSON_Delete(j);
	return n;
}

static void expect_error(const char *json, const char *where)
{
	char first[512];
	size_t n = check(json, first, sizeof first);
	if (n == 0 || !strstr(first, where))
		print_message("# %s -> %zu: %s\n", json, n, first);
	assert_true(n > 0);
	assert_non_null(strstr(first, where));
}

static void structural_errors_with_locations(void **state)
{
	(void)state;
	expect_error("{\"id\":\"x\"}", "resourceType");
	expect_error("{\"resourceType\":\"Nope\"}", "not a FHIR R4 resource");
	expect_error("{\"resourceType\":\"Patient\",\"foo\":1}", "@ Patient.foo");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"1990-13-01\"}", "@ Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"\"}", "Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"id\":\"a_b\"}", "@ Patient.id");
	expect_error("{\"resourceType\":\"Patient\",\"active\":\"true\"}", "@ Patient.active");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"\"]}]}", "@ Patient.name[0].given[1]");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[]}", "empty");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{}]}", "@ Patient.name[0]");
	expect_error("{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}", "@ Patient.name");
	expect_error("{\"resourceType\":\"Patient\",\"gender\":[\"male\"]}", "@ Patient.gender");
	expect_error("{\"resourceType\":\"Patient\",\"gender\":\"ma  le\"}", "@ Patient.gender");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueMoney\":{\"value\":1}}",
		     "does not allow");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueString\":\"a\",\"valueBoolean\":true}",
		     "both");
	expect_error("{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}}", "@ Observation.status");
	expect_error("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":2147483648}", "@ Patient.multipleBirthInteger");
	expect_error("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":1.5}", "multipleBirthInteger");
	expect_error("{\"resourceType\":\"Patient\",\"extension\":[{\"valueString\":\"x\"}]}",
		     "@ Patient.extension[0].url");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[null]}]}", "null");
	expect_error("{\"resourceType\":\"Patient\",\"_active\":{\"id\":\"a\",\"foo\":1}}", "@ Patient.active.foo");
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":\"<p>x</p>\"}}",
		     "@ Patient.text.div");
	/* xhtml.extension has max 0: no extension on a narrative div */
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		     "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">x</div>\",\"_div\":{\"extension\":"
		     "[{\"url\":\"urn:x\",\"valueString\":\"y\"}]}}}",
		     "not allowed (maximum 0) @ Patient.text.div.extension");
	expect_error("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"name\":1}]}",
		     "@ Patient.contained[0].name");
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
		     "{\"resourceType\":\"Patient\",\"deceasedBoolean\":\"no\"}}]}",
		     "@ Bundle.entry[0].resource.deceasedBoolean");
	expect_error("{\"resourceType\":\"Patient\",\"photo\":[{\"data\":\"abc\"}]}", "@ Patient.photo[0].data");
	expect_error("{\"resourceType\":\"Patient\",\"managingOrganization\":{\"reference\":\"x\",\"display\":\"\"}}",
		     "@ Patient.managingOrganization.display");
}

static void valid_resources_pass(void **state)
{
	(void)state;
	char first[512];
	assert_int_equal(check("{\"resourceType\":\"Patient\"}", first, sizeof first), 0);
	assert_int_equal(check("{\"resourceType\":\"Patient\",\"id\":\"a-1.b\",\"birthDate\":\"1990\",\"active\":true,"
			       "\"name\":[{\"given\":[\"A\",null],\"_given\":[null,{\"extension\":[{\"url\":\"u\","
			       "\"valueString\":\"b\"}]}]}],\"multipleBirthInteger\":2}",
			       first, sizeof first),
			 0);
	assert_int_equal(check("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			       "\"effectiveDateTime\":\"2020-02-29T10:00:00+14:00\",\"valueQuantity\":{\"value\":1.10}}",
			       first, sizeof first),
			 0);
	assert_true(validate_primitive_text("instant", "2020-01-01T00:00:00Z"));
	assert_false(validate_primitive_text("instant", "2020-01-01"));
	assert_true(validate_primitive_text("time", "23:59:60"));
	assert_false(validate_primitive_text("time", "24:00:00"));
	assert_true(validate_primitive_text("oid", "urn:oid:2.16.840.1"));
	assert_false(validate_primitive_text("oid", "urn:oid:3.1"));
	assert_true(validate_primitive_text("uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
	assert_false(validate_primitive_text("uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"));
	assert_false(validate_primitive_text("uri", "a b"));
	assert_true(validate_primitive_text("positiveInt", "1"));
	assert_false(validate_primitive_text("positiveInt", "0"));
	assert_true(validate_primitive_text("unsignedInt", "0"));
	assert_false(validate_primitive_text("integer", "-0x1"));
	/* base64Binary: groups of four, whitespace between, no control
	 * character (vertical tab, form feed) even where whitespace may go */
	assert_true(validate_primitive_text("base64Binary", "QUJD RA==\r\n\tQUJD"));
	assert_false(validate_primitive_text("base64Binary", "QUJDRA="));
	assert_false(validate_primitive_text("base64Binary", "QUJD\vRA=="));
	assert_false(validate_primitive_text("base64Binary", "QUJD\fRA=="));
	assert_false(validate_primitive_text("base64Binary", "QUJD\x01RA=="));
	assert_false(validate_primitive_text("base64Binary", "QUJD-A=="));
	assert_false(validate_primitive_text("base64Binary", ""));
}

/* Bundle rules (core/fhir/validate_bundle.h): fullUrl syntax and agreement
 * with the resource, fullUrl required in documents and messages, references
 * resolving within the Bundle; each with its stable id and location. */
#define TX_ENTRY(full, res) \
	"{\"fullUrl\":\"" full "\",\"resource\":" res ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}"
#define PAT(id) "{\"resourceType\":\"Patient\"" id "}"
#define OBS(ref)                                                                                                       \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":" \
	"\"" ref "\"}}"
#define DOC_HEAD                                                                                                      \
	"{\"resourceType\":\"Bundle\",\"type\":\"document\",\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},"   \
	"\"timestamp\":\"2024-01-01T00:00:00Z\",\"entry\":[{\"fullUrl\":\"http://h/fhir/Composition/"                 \
	"c\",\"resource\":{\"resourceType\":\"Composition\",\"id\":\"c\",\"status\":\"final\",\"type\":{\"text\":"    \
	"\"x\"},\"date\":\"2024-01-01\",\"author\":[{\"display\":\"a\"}],\"title\":\"t\",\"subject\":{\"reference\":" \
	"\""
static void bundle_rules(void **state)
{
	(void)state;
	char first[512];
	/* fullUrl syntax */
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[" TX_ENTRY("urn:uuid:NOT-A-UUID",
												  PAT("")) "]}",
		     "bundle-fullurl-syntax: 'urn:uuid:NOT-A-UUID' is not a urn:uuid: URL with a lower-case UUID @ "
		     "Bundle.entry[0].fullUrl");
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[" TX_ENTRY("urn:oid:1.02.3",
												  PAT("")) "]}",
		     "bundle-fullurl-syntax: 'urn:oid:1.02.3' is not a urn:oid: URL with a valid OID @ "
		     "Bundle.entry[0].fullUrl");
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"Patient/"
		     "p\",\"resource\":" PAT(",\"id\":\"p\"") "}]}",
		     "bundle-fullurl-syntax: 'Patient/p' is not an absolute URI @ Bundle.entry[0].fullUrl");
	/* fullUrl against the resource */
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"http://h/fhir/"
		     "Patient/a\",\"resource\":" PAT(",\"id\":\"b\"") "}]}",
		     "bundle-fullurl-match: the fullUrl 'http://h/fhir/Patient/a' names id 'a', the resource's id is "
		     "'b' @ Bundle.entry[0].fullUrl");
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"http://h/fhir/"
		     "Group/a\",\"resource\":" PAT(",\"id\":\"a\"") "}]}",
		     "bundle-fullurl-match: the fullUrl 'http://h/fhir/Group/a' names a Group, the entry holds a "
		     "Patient @ Bundle.entry[0].fullUrl");
	/* references within the Bundle */
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[" TX_ENTRY(
			     "urn:uuid:0c9e3e2a-8f5c-4b7e-9d3a-2f1e0d9c8b7a",
			     OBS("urn:uuid:11111111-2222-3333-4444-555555555555")) "]}",
		     "bundle-ref-resolves: the reference 'urn:uuid:11111111-2222-3333-4444-555555555555' names no "
		     "entry of this transaction Bundle (a urn: reference means nothing outside it) @ "
		     "Bundle.entry[0].resource.subject");
	expect_error(DOC_HEAD
		     "Patient/p\"}}},{\"fullUrl\":\"http://h/fhir/Patient/q\",\"resource\":" PAT(",\"id\":\"q\"") "}]}",
		     "bundle-ref-resolves: the reference 'Patient/p' names no entry of this document Bundle (a "
		     "document carries every resource its Composition refers to) @ Bundle.entry[0].resource.subject");
	expect_error(DOC_HEAD "Patient/p\"}}},{\"resource\":" PAT(",\"id\":\"p\"") "}]}",
		     "bundle-fullurl-required: every entry of a document needs a fullUrl (its references resolve "
		     "through it) @ Bundle.entry[1].fullUrl");
	/* each kind that is fine */
	/* clang-format off */
	const char *ok[] = {
		/* a urn:uuid reference to an entry, a relative one to the server (a transaction may) */
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		TX_ENTRY("urn:uuid:0c9e3e2a-8f5c-4b7e-9d3a-2f1e0d9c8b7a", PAT("")) ","
		TX_ENTRY("urn:uuid:11111111-2222-3333-4444-555555555555", OBS("urn:uuid:0c9e3e2a-8f5c-4b7e-9d3a-2f1e0d9c8b7a")) ","
		TX_ENTRY("urn:oid:1.2.3", OBS("Patient/on-the-server")) "]}",
		/* a document whose relative reference resolves against the entry's base */
		DOC_HEAD "Patient/p\"}}},{\"fullUrl\":\"http://h/fhir/Patient/p\",\"resource\":" PAT(",\"id\":\"p\"") "}]}",
		/* a document: what its other entries refer to need not travel with it */
		DOC_HEAD "Patient/p\"}}},{\"fullUrl\":\"http://h/fhir/Patient/p\",\"resource\":" PAT(",\"id\":\"p\"") "},"
		"{\"fullUrl\":\"http://h/fhir/Observation/o\",\"resource\":" OBS("Patient/elsewhere") "}]}",
		/* a searchset: references may point anywhere */
		"{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"fullUrl\":\"http://h/fhir/Observation/o\","
		"\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		"\"subject\":{\"reference\":\"urn:uuid:11111111-2222-3333-4444-555555555555\"}},\"search\":{\"mode\":\"match\"}}]}",
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (check(ok[i], first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
	}
}

/* Attachment size and hash against the data (att-size, att-hash). */
static void attachment_size_and_hash(void **state)
{
	(void)state;
	char first[512];
	/* "aGVsbG8=" is "hello": 5 bytes, SHA-1 base64 qvTGHdzF6KLavt4PO0gs2a6pQ00= */
	assert_int_equal(check("{\"resourceType\":\"Patient\",\"photo\":[{\"contentType\":\"text/plain\",\"data\":"
			       "\"aGVsbG8=\",\"size\":5,\"hash\":\"qvTGHdzF6KLavt4PO0gs2a6pQ00=\"}]}",
			       first, sizeof first),
			 0);
	expect_error("{\"resourceType\":\"Patient\",\"photo\":[{\"data\":\"aGVsbG8=\",\"size\":6}]}",
		     "att-size: the size 6 is not the length of the data (5 bytes) @ Patient.photo[0].size");
	expect_error("{\"resourceType\":\"Patient\",\"photo\":[{\"data\":\"aGVsbG8=\",\"hash\":"
		     "\"2jmj7l5rSw0yVb/vlWAYkK/YBwk=\"}]}",
		     "att-hash: the hash is not the base64 SHA-1 of the data (that is qvTGHdzF6KLavt4PO0gs2a6pQ00=) @ "
		     "Patient.photo[0].hash");
	/* without data there is nothing to compare: a size and hash alone pass */
	assert_int_equal(check("{\"resourceType\":\"Patient\",\"photo\":[{\"url\":\"http://e.example/p\",\"size\":9,"
			       "\"hash\":\"2jmj7l5rSw0yVb/vlWAYkK/YBwk=\"}]}",
			       first, sizeof first),
			 0);
}

/* The line of tests/fixtures/validation-exceptions.txt for file name. */
static bool exception_for(const char *name, char *path, size_t pn, char *says, size_t sn, int *count)
{
	FILE *f = fopen("tests/fixtures/validation-exceptions.txt", "r");
	assert_non_null(f);
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (line[0] == '#' || !t2)
			continue;
		*t1 = *t2 = '\0';
		if (strcmp(line, name) == 0) {
			char *t3 = strchr(t2 + 1, '\t'); /* optional: how many errors (default 1) */
			*count = 1;
			if (t3) {
				*t3 = '\0';
				*count = atoi(t3 + 1);
			}
			snprintf(path, pn, "%s", t1 + 1);
			snprintf(says, sn, "%s", t2 + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int validate_dir(const char *dir, int *invalid)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		size_t len = 0;
		char *text = slurp(p, &len);
		assert_non_null(text);
		cJSON *j = fjson_parse(text, len, NULL, NULL);
		assert_non_null(j);
		struct outcome oo = OUTCOME_INIT;
		char expect_path[128], expect_says[256];
		int expect_errors = 0;
		bool excepted = exception_for(de->d_name, expect_path, sizeof expect_path, expect_says,
					      sizeof expect_says, &expect_errors);
		int errors = validate_resource(j, &oo);
		/* the first error (warnings of extensible bindings may come before) */
		const struct outcome_issue *first = oo.n ? &oo.issues[0] : NULL;
		for (size_t i = 0; i < oo.n; i++)
			if (oo.issues[i].severity <= OUTCOME_ERROR) {
				first = &oo.issues[i];
				break;
			}
		if (excepted) {
			/* refused, with exactly the listed problem */
			if (errors != expect_errors || !first || !first->expression ||
			    strcmp(first->expression, expect_path) != 0 || strcmp(first->diagnostics, expect_says) != 0) {
				(*invalid)++;
				print_message("# %s: expected the listed problem, got %d: %s\n", de->d_name, errors,
					      first ? first->diagnostics : "");
			}
		} else if (errors) {
			(*invalid)++;
			print_message("# %s: %s @ %s\n", de->d_name, first->diagnostics,
				      first->expression ? first->expression : "");
		}
		outcome_release(&oo);
		cJSON_Delete(j);
		free(text);
		n++;
	}
	closedir(d);
	return n;
}

/* References name a resource type the element allows (R4 targetProfile). */
static void reference_targets(void **state)
{
	(void)state;
	char first[512];
	expect_error("{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		     "\"reasonReference\":[{\"reference\":\"Condition/c\"},{\"reference\":\"Goal/g\"}]}",
		     "a reference to a Goal is not allowed here (only Condition, ImmunizationRecommendation, "
		     "Observation, Procedure) @ Encounter.reasonReference[1]");
	/* absolute URLs and versions count; so does "type" alone */
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"subject\":{\"reference\":\"https://ehr.example/fhir/Practitioner/p/_history/2\"}}",
		     "a reference to a Practitioner is not allowed here (only Device, Group, Location, Patient) @ "
		     "Observation.subject");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"subject\":{\"type\":\"Goal\",\"identifier\":{\"value\":\"1\"}}}",
		     "Observation.subject");
	/* allowed, or not checkable: contained, urn:uuid, logical, unknown types, any-resource elements */
	const char *ok[] = {
		"{\"resourceType\":\"Observation\",\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"c1\"}],"
		"\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		"\"subject\":{\"reference\":\"Patient/p\",\"type\":\"Patient\"},"
		"\"focus\":[{\"reference\":\"Goal/g\"}],\"derivedFrom\":[{\"reference\":\"urn:uuid:1\"}],"
		"\"performer\":[{\"reference\":\"#c1\"},{\"identifier\":{\"value\":\"x\"}},"
		"{\"reference\":\"Golem/g\"}]}",
		"{\"resourceType\":\"Provenance\",\"target\":[{\"reference\":\"Goal/g\"}],"
		"\"recorded\":\"2024-01-01T00:00:00Z\",\"agent\":[{\"who\":{\"reference\":\"Patient/p\"}}]}",
		"{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		"\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal\","
		"\"valueReference\":{\"reference\":\"Goal/g\"}}]}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (check(ok[i], first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
	}
}

/* txt-1/txt-2: the narrative holds basic XHTML only; every kind of active
 * content is refused with the rule and the location. */
static void narrative_active_content(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"<script>alert(1)</script>",
		"<p onclick=\\\"x()\\\">a</p>",
		"<img src=\\\"x\\\" onerror=\\\"x()\\\"/>",
		"<p ONLOAD=\\\"x()\\\">a</p>",
		"<a href=\\\"javascript:alert(1)\\\">a</a>",
		"<a href=\\\"JaVaScRiPt:alert(1)\\\">a</a>",
		"<a href=\\\"&#106;avascript:alert(1)\\\">a</a>",
		"<a href=\\\"java&#9;script:alert(1)\\\">a</a>",
		"<a href=\\\" java&#x0A;script:alert(1)\\\">a</a>",
		"<a href=\\\"java&#127;script:alert(1)\\\">a</a>",
		"<a href=\\\"vbscript:x\\\">a</a>",
		"<img src=\\\"data:image/svg+xml;base64,AAAA\\\"/>",
		"<a href=\\\"data:text/html,x\\\">a</a>",
		"<iframe src=\\\"http://e.example\\\"></iframe>",
		"<form action=\\\"http://e.example\\\"><p>a</p></form>",
		"<style>p{color:red}</style><p>a</p>",
		"<object data=\\\"x\\\"></object>",
		"<embed src=\\\"x\\\"/>",
		"<svg xmlns=\\\"http://www.w3.org/2000/svg\\\" onload=\\\"x()\\\"/>",
		"<p style=\\\"background:url(javascript:x)\\\">a</p>",
		"<p style=\\\"width:expression(alert(1))\\\">a</p>",
		"<p xmlns:x=\\\"urn:x\\\" x:href=\\\"javascript:x\\\">a</p>",
		"<base href=\\\"http://e.example/\\\"/><p>a</p>",
		"<?php x ?><p>a</p>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char json[600];
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
			 "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">%s</div>\"}}",
			 bad[i]);
		expect_error(json, "txt-1");
		expect_error(json, "@ Patient.text.div");
	}
	/* txt-2: some content */
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		     "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"> <p/> </div>\"}}",
		     "txt-2");
	/* the same rule inside contained resources and Bundle entries */
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
		     "{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		     "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><script>x</script></div>\"}}}]}",
		     "txt-1: the element <script> is not allowed in the narrative (only basic XHTML) @ "
		     "Bundle.entry[0].resource.text.div");
	/* basic XHTML with links, images, tables and inline layout passes */
	char first[512];
	const char *ok = "{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
			 "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><p style=\\\"color: red\\\" class=\\\"c\\\">a "
			 "<a href=\\\"https://e.example/x?y#z\\\">l</a> <a href=\\\"#frag\\\">f</a> "
			 "<a href=\\\"Patient/1\\\">r</a> <a href=\\\"mailto:a@e.example\\\">m</a></p>"
			 "<img src=\\\"data:image/png;base64,AAAA\\\" alt=\\\"i\\\"/>"
			 "<table border=\\\"1\\\"><tr><td colspan=\\\"2\\\" xml:lang=\\\"en\\\">t</td></tr></table>"
			 "<!-- note --></div>\"}}";
	if (check(ok, first, sizeof first) != 0)
		fail_msg("%s", first);
}

/* Control characters other than tab, CR and LF are refused in every
 * primitive, with the element's path; tab, CR and LF are kept. */
static void control_characters(void **state)
{
	(void)state;
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"b\\u0001c\"]}]}",
		     "a string must not contain the control character U+0001 @ Patient.name[0].given[1]");
	expect_error("{\"resourceType\":\"Patient\",\"gender\":\"male\\u001f\"}", "U+001F @ Patient.gender");
	expect_error("{\"resourceType\":\"Patient\",\"id\":\"a\\u0002\"}", "@ Patient.id");
	expect_error("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"urn:x\\u001b\",\"valueMarkdown\":\"m\"}]}",
		     "U+001B @ Patient.extension[0].url");
	expect_error("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"urn:x\",\"valueMarkdown\":\"m\\u0007\"}]}",
		     "a markdown must not contain the control character U+0007 @ Patient.extension[0].valueMarkdown");
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		     "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">a\\u0001b</div>\"}}",
		     "@ Patient.text.div");
	char first[512];
	const char *ok = "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"a\\tb\\r\\nc\"}]}";
	if (check(ok, first, sizeof first) != 0)
		fail_msg("%s", first);
}

/* Decimals outside IEEE double range are refused, naming the element;
 * every literal in range passes as written. */
static void decimal_range(void **state)
{
	(void)state;
	static const char *const bad[] = {"1e400", "1E+99999999999", "1e-400", "-1e400", "0.000001e-330",
					  "2e308", "-1.8e308"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char json[600];
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			 "\"valueQuantity\":{\"value\":%s}}",
			 bad[i]);
		expect_error(json, "outside the range of an IEEE double");
		expect_error(json, "@ Observation.valueQuantity.value");
	}
	static const char *const ok[] = {"0", "-0", "0e400", "0.0e-400", "1.7976931348623157e308", "5e-324",
					 "2.2250738585072014e-308", "1e-300", "123456789012345678901234567890.5", "-3.14"};
	char first[512];
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		char json[600];
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			 "\"valueQuantity\":{\"value\":%s}}",
			 ok[i]);
		if (check(json, first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
	}
}

/* Impossible calendar days are refused in date, dateTime and instant, as
 * the search parser refuses them. */
static void calendar_dates(void **state)
{
	(void)state;
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"2024-02-30\"}", "@ Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"2023-02-29\"}", "@ Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"1900-02-29\"}", "@ Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-04-31T10:00:00Z\"}",
		     "@ Patient.deceasedDateTime");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"issued\":\"2023-02-29T00:00:00.000+01:00\"}",
		     "@ Observation.issued");
	static const char *const ok[] = {"2024-02-29", "2000-02-29", "2023-02-28", "2024-04-30", "2024", "2024-02"};
	char first[512];
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		char json[200];
		snprintf(json, sizeof json, "{\"resourceType\":\"Patient\",\"birthDate\":\"%s\"}", ok[i]);
		if (check(json, first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
	}
}

/* dom-2, dom-3 and "#id" references that resolve to nothing. */
static void contained_resources(void **state)
{
	(void)state;
	expect_error("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\","
		     "\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o2\",\"name\":\"n\"}],\"name\":\"x\"}],"
		     "\"managingOrganization\":{\"reference\":\"#o\"}}",
		     "dom-2: a contained resource must not contain resources @ Patient.contained[0]");
	expect_error("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\","
		     "\"name\":\"x\"}],\"active\":true}",
		     "dom-3: the contained resource is not referred to from elsewhere in the resource, nor refers to it "
		     "@ Patient.contained[0]");
	expect_error("{\"resourceType\":\"Patient\",\"generalPractitioner\":[{\"reference\":\"Practitioner/1\"},"
		     "{\"reference\":\"#nope\"}]}",
		     "the reference \"#nope\" names no contained resource @ Patient.generalPractitioner[1].reference");
	expect_error("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\","
		     "\"name\":\"x\"}],\"managingOrganization\":{\"reference\":\"#o\"},"
		     "\"link\":[{\"other\":{\"reference\":\"#p\"},\"type\":\"seealso\"}]}",
		     "@ Patient.link[0].other.reference");
	/* referred to from the resource, from another contained one, or
	 * referring to the container ("#") */
	const char *ok[] = {
		"{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"x\"}],"
		"\"managingOrganization\":{\"reference\":\"#o\"}}",
		"{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"x\","
		"\"partOf\":{\"reference\":\"#o2\"}},{\"resourceType\":\"Organization\",\"id\":\"o2\",\"name\":\"y\"}],"
		"\"managingOrganization\":{\"reference\":\"#o\"}}",
		"{\"resourceType\":\"Patient\",\"id\":\"p\",\"contained\":[{\"resourceType\":\"Provenance\",\"id\":\"v\","
		"\"target\":[{\"reference\":\"#\"}],\"recorded\":\"2024-01-01T00:00:00Z\","
		"\"agent\":[{\"who\":{\"reference\":\"Practitioner/1\"}}]}]}",
	};
	char first[512];
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (check(ok[i], first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
}

static void official_examples_are_valid(void **state)
{
	(void)state;
	char dir[512];
	int invalid = 0;
	assert_true(validate_dir(corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json"), &invalid) >= 700);
	assert_int_equal(validate_dir(corpus_path(dir, sizeof dir, "fhir-r4/synthea"), &invalid), 13);
	assert_int_equal(invalid, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(structural_errors_with_locations),
		cmocka_unit_test(valid_resources_pass),
		cmocka_unit_test(reference_targets),
		cmocka_unit_test(narrative_active_content),
		cmocka_unit_test(control_characters),
		cmocka_unit_test(decimal_range),
		cmocka_unit_test(calendar_dates),
		cmocka_unit_test(contained_resources),
		cmocka_unit_test(bundle_rules),
		cmocka_unit_test(attachment_size_and_hash),
		cmocka_unit_test(official_examples_are_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
