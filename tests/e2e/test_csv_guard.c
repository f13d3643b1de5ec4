/* CSV formula injection, through the real gateway over loopback: text that
 * a spreadsheet would run as a formula (a cell beginning with = + - or @)
 * goes in through POST /ingest/peer-support and /ingest/strengths (JSON),
 * comes out of GET /export/… as CSV with an apostrophe before it
 * (plugkit's shared CSV writer, docs/plugins.md), and that CSV, sent back
 * through /ingest, stores the very text that went in. A plain negative
 * number is written as it is. */
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

#define PEOPLE "https://recovery.example.org/people"

static struct gw g;

static int gw_up(void **state)
{
	(void)state;
	return gw_start(&g, NULL);
}

static int gw_down(void **state)
{
	(void)state;
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

static char *request(const char *method, const char *path, const char *ctype, const char *accept, const char *body,
		     long want)
{
	char ct[100], acc[100];
	snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
	snprintf(acc, sizeof acc, "Accept: %s", accept ? accept : "application/json");
	const char *hdr[] = {ct, acc, NULL};
	struct resp r;
	assert_int_equal(http_do(&g, method, path, hdr, body, body ? strlen(body) : 0, &r), 0);
	if (r.status != want)
		fprintf(stderr, "# %s %s: %ld %s\n", method, path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	char *text = strdup(r.body ? r.body : "");
	resp_free(&r);
	return text;
}

/* Ingests doc (JSON), exports the person as CSV and checks it holds each
 * of want; sends that CSV back and checks the person's JSON export is doc. */
static void round_trip(const char *format, const char *person, const char *doc, const char *const *want)
{
	char path[200], pid[FHIR_ID_SIZE];
	assert_int_equal(fhir_make_id(PEOPLE, person, pid), 0);
	snprintf(path, sizeof path, "/ingest/%s", format);
	free(request("POST", path, NULL, NULL, doc, 201));
	snprintf(path, sizeof path, "/export/%s?patient=%s", format, pid);
	char *csv = request("GET", path, NULL, "text/csv", NULL, 200);
	for (const char *const *w = want; *w; w++) {
		if (!strstr(csv, *w))
			fprintf(stderr, "# wanted %s in\n# %s\n", *w, csv);
		assert_non_null(strstr(csv, *w));
	}
	snprintf(path, sizeof path, "/ingest/%s", format);
	free(request("POST", path, "text/csv", NULL, csv, 201));
	free(csv);
	snprintf(path, sizeof path, "/export/%s?patient=%s", format, pid);
	char *json = request("GET", path, NULL, "application/json", NULL, 200);
	cJSON *a = cJSON_Parse(doc), *b = cJSON_Parse(json);
	if (!cJSON_Compare(a, b, true))
		fprintf(stderr, "# exported %s\n", json);
	assert_true(cJSON_Compare(a, b, true));
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(json);
}

static void peer_support_csv_is_guarded(void **state)
{
	(void)state;
	const char *doc =
		"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"P-CSV1\"},"
		"\"name\":\"=cmd|' /C calc'!A0\"},\"encounters\":[{\"id\":\"-7\",\"specialist\":{\"identifier\":"
		"{\"system\":\"https://recovery.example.org/staff\",\"value\":\"@S-1\"},\"name\":\"+Specialist\"},"
		"\"start\":\"2024-03-05T14:30:00-05:00\",\"duration_minutes\":45,\"mode\":\"individual\","
		"\"setting\":\"community\",\"activities\":[\"goal-planning\"],\"goals\":[\"-G-1\"],\"billable\":false,"
		"\"notes\":\"=HYPERLINK(\\\"http://evil.example\\\",\\\"open, please\\\")\"}]}";
	const char *const want[] = {
		",'=cmd|' /C calc'!A0,",                                   /* person_name */
		",-7,",                                                    /* a negative number stays */
		",'@S-1,'+Specialist,",                                    /* specialist value and name */
		",'-G-1,",                                                 /* goals */
		",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"open, please\"\")\"\n", /* notes, quoted */
		NULL};
	round_trip("peer-support", "P-CSV1", doc, want);
}

static void strengths_csv_is_guarded(void **state)
{
	(void)state;
	const char *doc = "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"P-CSV2\"},"
			  "\"name\":\"@Person\"},\"strengths\":[{\"id\":\"=1+1\",\"category\":\"personal\","
			  "\"description\":\"-I keep going\",\"identified_by\":{\"role\":\"peer\",\"name\":\"+Peer\"},"
			  "\"date\":\"2024-03-05\",\"goals\":[\"@G\"]}]}";
	const char *const want[] = {",'@Person,'=1+1,personal,'-I keep going,peer,'+Peer,", ",'@G\n", NULL};
	round_trip("strengths", "P-CSV2", doc, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peer_support_csv_is_guarded),
		cmocka_unit_test(strengths_csv_is_guarded),
	};
	return cmocka_run_group_tests_name("csv guard", tests, gw_up, gw_down);
}
