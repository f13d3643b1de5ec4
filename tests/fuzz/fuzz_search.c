/* libFuzzer harness: search criteria, as the store parses them (values of
 * every parameter kind, prefixes, modifiers, escapes, alternatives, _sort),
 * over a real SQLite store with a few resources.
 *
 * Input: "Type?name[:modifier]=value&…[&_sort=keys]" (no percent-decoding).
 * A search must answer STORE_OK or STORE_INVALID, never anything else; an
 * answer's page holds at most the page size and never more than the total,
 * every item is of the type, and the total is the same with and without a
 * page. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fjson.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *st;
static char dir[64];

static void cleanup(void)
{
	char cmd[128];
	store_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void put(const char *type, const char *id, const char *json)
{
	cJSON *r = fjson_parse(json, strlen(json), NULL, NULL);
	if (!r || store_create(st, type, r, id, NULL, NULL) != STORE_OK)
		abort();
	cJSON_Delete(r);
}

static void init(void)
{
	snprintf(dir, sizeof dir, "/tmp/cw-fuzz-search-XXXXXX");
	char err[256];
	if (!mkdtemp(dir) || store_open_sqlite(dir, 0, 1u << 20, &st, err, sizeof err) != 0)
		abort();
	atexit(cleanup);
	put("Patient", "p1",
	    "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"M1\"}],"
	    "\"name\":[{\"family\":\"Smith\",\"given\":[\"Ann\"]}],\"birthDate\":\"1980-05-17\",\"active\":true,"
	    "\"meta\":{\"profile\":[\"http://example.org/p|1\"],\"tag\":[{\"system\":\"urn:t\",\"code\":\"x\"}]}}");
	put("Patient", "p2", "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"Bob, Jr.\"}],\"birthDate\":\"1975\"}");
	put("Observation", "o1",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
	    "\"code\":\"44261-6\"}]},\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2024-03-10T09:30:00Z\","
	    "\"valueQuantity\":{\"value\":14,\"system\":\"http://unitsofmeasure.org\",\"code\":\"{score}\"}}");
	put("Observation", "o2",
	    "{\"resourceType\":\"Observation\",\"status\":\"preliminary\",\"code\":{\"text\":\"x\"},"
	    "\"effectivePeriod\":{\"start\":\"2024-03-01\"},\"valueQuantity\":{\"value\":-0.5,\"unit\":\"kg\"},"
	    "\"component\":[{\"code\":{\"text\":\"c\"},\"valueQuantity\":{\"value\":1e3}}]}");
	put("Patient", "p3", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Núñez\",\"given\":[\"Zoë\"]}]}");
	put("Immunization", "i1",
	    "{\"resourceType\":\"Immunization\",\"status\":\"completed\",\"vaccineCode\":{\"text\":\"v\"},"
	    "\"patient\":{\"reference\":\"Patient/p3\"},\"occurrenceDateTime\":\"2021-06\"}");
	put("Patient", "p4", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2020-02-29T10:00:00+01:00\"}");
	put("Library", "l1",
	    "{\"resourceType\":\"Library\",\"status\":\"active\",\"type\":{\"text\":\"t\"},\"relatedArtifact\":["
	    "{\"type\":\"depends-on\",\"resource\":\"Library/l0\"},{\"type\":\"composed-of\",\"resource\":\"#c\"}]}");
	put("Bundle", "b1",
	    "{\"resourceType\":\"Bundle\",\"type\":\"document\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"Composition\",\"id\":\"c1\",\"status\":\"final\",\"type\":{\"text\":\"t\"},\"subject\":"
	    "{\"reference\":\"Patient/p1\"},\"date\":\"2024-03\",\"author\":[{\"display\":\"a\"}],\"title\":\"x\"}}]}");
	put("Bundle", "b2",
	    "{\"resourceType\":\"Bundle\",\"type\":\"message\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"MessageHeader\",\"eventCoding\":{\"code\":\"e\"},\"source\":{\"endpoint\":\"urn:s\"},"
	    "\"focus\":[{\"reference\":\"Patient/p2\"}]}}]}");
	put("Condition", "c1",
	    "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p2\"},"
	    "\"onsetRange\":{\"low\":{\"value\":18},\"high\":{\"value\":24}}}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!st)
		init();
	if (size > 2048)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char *q = strchr(text, '?');
	if (q)
		*q++ = '\0';
	struct store_search_param params[16];
	size_t n = 0;
	const char *sort = NULL;
	for (char *save = NULL, *pair = q ? strtok_r(q, "&", &save) : NULL; pair && n < 16;
	     pair = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(pair, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(pair, "_sort") == 0) {
			sort = eq + 1;
			continue;
		}
		char *colon = strchr(pair, ':');
		if (colon)
			*colon++ = '\0';
		params[n++] = (struct store_search_param){.name = pair, .modifier = colon, .value = eq + 1};
	}
	struct store_search s = {.params = params, .n_params = n, .count = 10, .sort = sort};
	struct store_page page, count_only;
	struct store_error err;
	enum store_status a = store_search(st, text, &s, &page, &err);
	s.count = 0;
	enum store_status b = store_search(st, text, &s, &count_only, &err);
	if ((a != STORE_OK && a != STORE_INVALID) || (b != STORE_OK && b != STORE_INVALID))
		abort();
	if (a == STORE_OK) {
		if (page.n > 10 || page.n > page.total || (b == STORE_OK && count_only.total != page.total))
			abort();
		for (size_t i = 0; i < page.n; i++)
			if (strcmp(page.items[i].type, text) != 0 || !page.items[i].resource)
				abort();
	}
	store_page_release(&page);
	store_page_release(&count_only);
	free(text);
	return 0;
}
