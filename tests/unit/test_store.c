/* Unit tests: the store over a real SQLite file in a fresh temporary
 * directory per test; then the backend-neutral cases again over a real
 * PostgreSQL server (tests/pgserver.h) with a fresh schema per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fhir/fhir_helpers.h"
#include "fhir/fold.h"
#include "fhir/model.h"
#include "base/fjson.h"
#include "base/metrics.h"
#include "store/rcache.h"
#include "fhir/search_params.h"
#include "store/store.h"
#include "pgserver.h"
#include "store_kit.h"
#include "testenv.h"

struct fixture {
	char dir[64];
	char data[96]; /* dir/data: created by the store */
	struct store *s;
};

/* Set while the PostgreSQL group runs: setup opens that backend. */
static struct pg_server *pg;

static int setup(void **state)
{
	if (pg) {
		struct fixture *f = calloc(1, sizeof *f);
		char err[256];
		static const char fresh[] =
			"SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public";
		if (pg_server_sql(pg, fresh) != 0 || store_open_pg(pg->conninfo, NULL, &f->s, err, sizeof err) != 0) {
			fprintf(stderr, "open: %s\n", err);
			free(f);
			return -1;
		}
		*state = f;
		return 0;
	}
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cw-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->data, sizeof f->data, "%s/data", f->dir);
	char err[256];
	if (store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, err, sizeof err) != 0) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	if (f->dir[0])
		pgs_remove_tree(f->dir);
	free(f);
	return 0;
}

static cJSON *J(const char *text)
{
	struct fjson_error fe;
	cJSON *j = fjson_parse(text, strlen(text), NULL, &fe);
	if (!j)
		fail_msg("bad test JSON: %s", fe.message);
	return j;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* s, failing the test when it is NULL. */
static const char *must(const char *s)
{
	if (!s)
		fail_msg("missing value");
	return s ? s : "";
}

/* Creates type with client id from JSON text; fails the test on error. */
static void put(struct store *s, const char *type, const char *id, const char *json)
{
	cJSON *r = J(json);
	struct store_error err;
	enum store_status st = store_create(s, type, r, id, NULL, &err);
	if (st != STORE_OK)
		fail_msg("create %s/%s: %s", type, id, err.message);
	cJSON_Delete(r);
}

/* Runs one search with one criterion; returns the matching ids, sorted by id,
 * comma-joined, into out. Returns the status. */
static enum store_status find(struct store *s, const char *type, const char *name, const char *modifier,
			      const char *value, char *out, size_t outlen)
{
	struct store_search_param p = {.name = name, .modifier = modifier, .value = value};
	struct store_search q = {.params = &p, .n_params = 1, .count = 100, .sort = "_id"};
	struct store_page page;
	struct store_error err;
	enum store_status st = store_search(s, type, &q, &page, &err);
	if (st != STORE_OK && st != STORE_INVALID)
		print_message("# %s\n", err.message);
	out[0] = '\0';
	size_t used = 0;
	for (size_t i = 0; i < page.n; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? "," : "", page.items[i].id);
	if (st == STORE_OK)
		assert_int_equal(page.total, page.n);
	store_page_release(&page);
	return st;
}

static void expect_ids(struct store *s, const char *type, const char *name, const char *modifier, const char *value,
		       const char *want)
{
	char got[1024];
	enum store_status st = find(s, type, name, modifier, value, got, sizeof got);
	if (st != STORE_OK)
		fail_msg("%s:%s=%s: status %s", name, modifier ? modifier : "", value, store_status_text(st));
	if (strcmp(got, want) != 0)
		fail_msg("%s:%s=%s: got [%s], want [%s]", name, modifier ? modifier : "", value, got, want);
}

/* --- create / read / update / delete ------------------------------------------- */

static void create_assigns_id_and_meta(void **state)
{
	struct fixture *f = *state;
	cJSON *in = J("{\"resourceType\":\"Patient\",\"id\":\"ignored\",\"meta\":{\"profile\":[\"http://x/p\"]},"
		      "\"active\":true}");
	char *before = fjson_print(in, false, NULL);
	cJSON *out = NULL;
	struct store_error err;
	assert_int_equal(store_create(f->s, "Patient", in, NULL, &out, &err), STORE_OK);
	char *after = fjson_print(in, false, NULL);
	assert_string_equal(before, after); /* the input is not modified */
	const char *id = must(str_at(out, "id", NULL));
	assert_int_equal(strlen(id), 36);
	assert_true(fhir_is_id(id));
	assert_int_equal(id[14], '4'); /* version-4 UUID */
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	const char *lu = must(str_at(out, "meta", "lastUpdated"));
	assert_int_equal(strlen(lu), 24);
	assert_int_equal(lu[10], 'T');
	assert_int_equal(lu[19], '.');
	assert_int_equal(lu[23], 'Z');
	int64_t lo, hi;
	assert_true(search_params_date_range(lu, &lo, &hi));
	assert_int_equal(hi - lo, 1);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "meta"), "profile"));
	/* id comes right after resourceType */
	assert_string_equal(out->child->next->string, "id");

	cJSON *got = NULL;
	assert_int_equal(store_read(f->s, "Patient", id, &got, &err), STORE_OK);
	char *a = fjson_print(out, false, NULL), *b = fjson_print(got, false, NULL);
	assert_string_equal(a, b);

	/* two creates never share an id */
	cJSON *out2 = NULL;
	assert_int_equal(store_create(f->s, "Patient", in, NULL, &out2, &err), STORE_OK);
	assert_string_not_equal(str_at(out2, "id", NULL), id);
	free(a);
	free(b);
	free(before);
	free(after);
	cJSON_Delete(in);
	cJSON_Delete(out);
	cJSON_Delete(out2);
	cJSON_Delete(got);
}

static void create_with_client_id_and_refusals(void **state)
{
	struct fixture *f = *state;
	cJSON *in = J("{\"resourceType\":\"Patient\"}");
	cJSON *out = NULL;
	struct store_error err;
	assert_int_equal(store_create(f->s, "Patient", in, "p-1.a", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "id", NULL), "p-1.a");
	cJSON_Delete(out);
	assert_int_equal(store_create(f->s, "Patient", in, "p-1.a", NULL, &err), STORE_CONFLICT);
	assert_int_equal(err.status, STORE_CONFLICT);
	assert_true(strstr(err.message, "already exists") != NULL);
	assert_int_equal(store_create(f->s, "Patient", in, "bad id", NULL, &err), STORE_INVALID);
	assert_int_equal(store_create(f->s, "Observation", in, NULL, NULL, &err), STORE_INVALID);
	assert_int_equal(store_create(f->s, "not a type", in, NULL, NULL, &err), STORE_INVALID);
	cJSON *arr = J("[1]");
	assert_int_equal(store_create(f->s, "Patient", arr, NULL, NULL, &err), STORE_INVALID);
	cJSON *badmeta = J("{\"resourceType\":\"Patient\",\"meta\":7}");
	assert_int_equal(store_create(f->s, "Patient", badmeta, NULL, NULL, &err), STORE_INVALID);
	assert_int_equal(store_status_http(STORE_CONFLICT), 409);
	assert_int_equal(store_status_http(STORE_GONE), 410);
	assert_int_equal(store_status_http(STORE_VERSION_MISMATCH), 412);
	cJSON_Delete(arr);
	cJSON_Delete(badmeta);
	cJSON_Delete(in);
}

static void update_versions_and_vread(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	bool created = true;
	cJSON *v1 = J("{\"resourceType\":\"Patient\",\"gender\":\"female\"}");
	cJSON *v2 = J("{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"male\"}");
	cJSON *out = NULL;
	assert_int_equal(store_update(f->s, "Patient", "p1", v1, NULL, &created, &out, &err), STORE_OK);
	assert_true(created);
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	cJSON_Delete(out);
	assert_int_equal(store_update(f->s, "Patient", "p1", v2, NULL, &created, &out, &err), STORE_OK);
	assert_false(created);
	assert_string_equal(str_at(out, "meta", "versionId"), "2");
	cJSON_Delete(out);

	assert_int_equal(store_vread(f->s, "Patient", "p1", "1", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "gender", NULL), "female");
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	cJSON_Delete(out);
	assert_int_equal(store_vread(f->s, "Patient", "p1", "2", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "gender", NULL), "male");
	cJSON_Delete(out);
	assert_int_equal(store_read(f->s, "Patient", "p1", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "meta", "versionId"), "2");
	cJSON_Delete(out);
	assert_int_equal(store_vread(f->s, "Patient", "p1", "3", &out, &err), STORE_NOT_FOUND);
	assert_null(out);
	assert_int_equal(store_vread(f->s, "Patient", "p1", "x", &out, &err), STORE_NOT_FOUND);
	assert_int_equal(store_vread(f->s, "Patient", "nope", "1", &out, &err), STORE_NOT_FOUND);
	assert_int_equal(store_read(f->s, "Patient", "nope", &out, &err), STORE_NOT_FOUND);
	assert_int_equal(store_read(f->s, "Observation", "p1", &out, &err), STORE_NOT_FOUND);
	cJSON_Delete(v1);
	cJSON_Delete(v2);
}

static void version_mismatch(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	cJSON *r = J("{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\"}");
	cJSON *out = NULL;
	assert_int_equal(store_update(f->s, "Goal", "g", r, "5", NULL, NULL, &err), STORE_VERSION_MISMATCH);
	assert_int_equal(store_read(f->s, "Goal", "g", &out, &err), STORE_NOT_FOUND); /* nothing made */
	assert_int_equal(store_update(f->s, "Goal", "g", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Goal", "g", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Goal", "g", r, "1", NULL, NULL, &err), STORE_VERSION_MISMATCH);
	assert_int_equal(err.status, STORE_VERSION_MISMATCH);
	assert_int_equal(store_read(f->s, "Goal", "g", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "meta", "versionId"), "2"); /* nothing written */
	cJSON_Delete(out);
	assert_int_equal(store_update(f->s, "Goal", "g", r, "W/\"2\"", NULL, &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "meta", "versionId"), "3");
	cJSON_Delete(out);
	assert_int_equal(store_update(f->s, "Goal", "g", r, "3", NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Goal", "g", r, "junk", NULL, NULL, &err), STORE_INVALID);
	cJSON *other = J("{\"resourceType\":\"Goal\",\"id\":\"h\"}");
	assert_int_equal(store_update(f->s, "Goal", "g", other, NULL, NULL, NULL, &err), STORE_INVALID);
	struct store_page page;
	assert_int_equal(store_history(f->s, "Goal", "g", STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 4);
	store_page_release(&page);
	cJSON_Delete(other);
	cJSON_Delete(r);
}

static void delete_reads_as_gone(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Condition", "c1", "{\"resourceType\":\"Condition\",\"code\":{\"text\":\"x\"}}");
	int64_t v = 0;
	assert_int_equal(store_delete(f->s, "Condition", "c1", &v, &err), STORE_OK);
	assert_int_equal(v, 2);
	cJSON *out = NULL;
	assert_int_equal(store_read(f->s, "Condition", "c1", &out, &err), STORE_GONE);
	assert_null(out);
	assert_int_equal(store_vread(f->s, "Condition", "c1", "2", &out, &err), STORE_GONE);
	assert_int_equal(store_vread(f->s, "Condition", "c1", "1", &out, &err), STORE_OK);
	cJSON_Delete(out);
	/* deleting again changes nothing */
	assert_int_equal(store_delete(f->s, "Condition", "c1", &v, &err), STORE_OK);
	assert_int_equal(v, 2);
	assert_int_equal(store_delete(f->s, "Condition", "never", &v, &err), STORE_NOT_FOUND);
	/* a deleted resource is not found by search */
	expect_ids(f->s, "Condition", "_id", NULL, "c1", "");
	/* a client-id create or an update brings it back as a new version */
	cJSON *r = J("{\"resourceType\":\"Condition\"}");
	bool created = false;
	assert_int_equal(store_update(f->s, "Condition", "c1", r, NULL, &created, &out, &err), STORE_OK);
	assert_true(created);
	assert_string_equal(str_at(out, "meta", "versionId"), "3");
	cJSON_Delete(out);
	expect_ids(f->s, "Condition", "_id", NULL, "c1", "c1");
	cJSON_Delete(r);
}

static void history_newest_first_with_paging(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Goal", "a", "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"proposed\"}");
	cJSON *r = J("{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\"}");
	assert_int_equal(store_update(f->s, "Goal", "a", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_delete(f->s, "Goal", "a", NULL, &err), STORE_OK);
	put(f->s, "Goal", "b", "{\"resourceType\":\"Goal\"}");
	put(f->s, "Patient", "p", "{\"resourceType\":\"Patient\"}");

	struct store_page page;
	assert_int_equal(store_history(f->s, "Goal", "a", STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 3);
	assert_int_equal(page.n, 3);
	assert_int_equal(page.items[0].version, 3);
	assert_true(page.items[0].deleted);
	assert_null(page.items[0].resource);
	assert_int_equal(page.items[0].op, STORE_OP_DELETE);
	assert_int_equal(page.items[1].version, 2);
	assert_int_equal(page.items[1].op, STORE_OP_UPDATE);
	assert_string_equal(str_at(page.items[1].resource, "lifecycleStatus", NULL), "active");
	assert_int_equal(page.items[2].version, 1);
	assert_string_equal(str_at(page.items[2].resource, "lifecycleStatus", NULL), "proposed");
	assert_true(strcmp(page.items[0].last_updated, page.items[2].last_updated) >= 0);
	store_page_release(&page);

	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 4);
	assert_string_equal(page.items[0].id, "b");
	assert_string_equal(page.items[1].id, "a");
	assert_int_equal(page.items[1].version, 3);
	store_page_release(&page);

	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, 2, 1, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 4);
	assert_int_equal(page.n, 2);
	assert_string_equal(page.items[0].id, "a");
	assert_int_equal(page.items[0].version, 3);
	assert_int_equal(page.items[1].version, 2);
	assert_true(page.more);
	/* the cursor: the versions before a's version 2, whatever is written meanwhile */
	int64_t cursor = page.items[1].seq;
	store_page_release(&page);
	put(f->s, "Goal", "later", "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"proposed\"}");
	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, 2, 0, cursor, &page, &err), STORE_OK);
	assert_int_equal(page.total, 5);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0].id, "a");
	assert_int_equal(page.items[0].version, 1);
	assert_false(page.more);
	store_page_release(&page);
	assert_int_equal(store_history(f->s, "Goal", "a", STORE_ALL_TIME, 5, 0, cursor, &page, &err), STORE_OK);
	assert_int_equal(page.n, 1);
	assert_int_equal(page.items[0].version, 1);
	store_page_release(&page);
	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, 2, 0, -1, &page, &err), STORE_INVALID);
	store_page_release(&page);

	assert_int_equal(store_history(f->s, NULL, NULL, STORE_ALL_TIME, 1, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 6);
	assert_string_equal(page.items[0].type, "Goal"); /* the newest: "later" */
	assert_string_equal(page.items[0].id, "later");
	store_page_release(&page);

	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, 0, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 5);
	assert_int_equal(page.n, 0);
	store_page_release(&page);

	assert_int_equal(store_history(f->s, "Goal", "zz", STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_NOT_FOUND);
	store_page_release(&page);
	assert_int_equal(store_history(f->s, "Goal", NULL, STORE_ALL_TIME, STORE_MAX_COUNT + 1, 0, 0, &page, &err), STORE_INVALID);
	store_page_release(&page);
	cJSON_Delete(r);
}

/* --- search ---------------------------------------------------------------------- */

#define LOINC "http://loinc.org"

static void load_observations(struct store *s)
{
	put(s, "Patient", "p1",
	    "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"M1\"}],"
	    "\"name\":[{\"family\":\"Smith\",\"given\":[\"Ann\",\"Marie\"]}],\"birthDate\":\"1980-05-17\","
	    "\"address\":[{\"city\":\"Springfield\"}]}");
	put(s, "Patient", "p2",
	    "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:other\",\"value\":\"M1\"},{\"value\":\"X9\"}],"
	    "\"name\":[{\"text\":\"Bob Smithers\",\"family\":\"Smithers\"}],\"birthDate\":\"1975\"}");
	put(s, "Patient", "p3", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Jones\"}]}");
	put(s, "Observation", "o1",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":"
	    "\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"survey\"}]}],"
	    "\"code\":{\"coding\":[{\"system\":\"" LOINC "\",\"code\":\"44249-1\"}],\"text\":\"PHQ-9\"},"
	    "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2024-03-10T09:30:00Z\"}");
	put(s, "Observation", "o2",
	    "{\"resourceType\":\"Observation\",\"status\":\"preliminary\",\"code\":{\"coding\":[{\"system\":\"" LOINC
	    "\",\"code\":\"69737-5\"},{\"system\":\"urn:local\",\"code\":\"gad\"}]},"
	    "\"subject\":{\"reference\":\"Patient/p2/_history/4\"},"
	    "\"effectivePeriod\":{\"start\":\"2024-03-01\",\"end\":\"2024-03-31\"}}");
	put(s, "Observation", "o3",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"code\":\"44249-1\"}]},"
	    "\"subject\":{\"reference\":\"Group/g1\"},\"effectiveDateTime\":\"2024-03-10T23:30:00-05:00\"}");
	put(s, "Observation", "o4",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"free\"},"
	    "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2023\"}");
}

static void search_tokens(void **state)
{
	struct fixture *f = *state;
	load_observations(f->s);
	expect_ids(f->s, "Observation", "status", NULL, "final", "o1,o3,o4");
	expect_ids(f->s, "Observation", "status", NULL, "final,preliminary", "o1,o2,o3,o4");
	expect_ids(f->s, "Observation", "status", "not", "final", "o2");
	expect_ids(f->s, "Observation", "code", NULL, LOINC "|44249-1", "o1");
	expect_ids(f->s, "Observation", "code", NULL, "44249-1", "o1,o3");
	expect_ids(f->s, "Observation", "code", NULL, "|44249-1", "o3");
	expect_ids(f->s, "Observation", "code", NULL, "urn:local|", "o2");
	expect_ids(f->s, "Observation", "code", NULL, "urn:local|gad," LOINC "|44249-1", "o1,o2");
	expect_ids(f->s, "Observation", "code", NULL, LOINC "|gad", "");
	expect_ids(f->s, "Observation", "category", NULL, "survey", "o1");
	expect_ids(f->s, "Patient", "identifier", NULL, "urn:mrn|M1", "p1");
	expect_ids(f->s, "Patient", "identifier", NULL, "M1", "p1,p2");
	expect_ids(f->s, "Patient", "identifier", NULL, "|X9", "p2");
	expect_ids(f->s, "Patient", "_id", NULL, "p2,p3", "p2,p3");
	/* chained: references to a Patient that matches */
	expect_ids(f->s, "Observation", "subject", "Patient.name", "smith", "o1,o2,o4"); /* Smith, Smithers */
	expect_ids(f->s, "Observation", "subject", "Patient.name:exact", "Smith", "o1,o4");
	expect_ids(f->s, "Observation", "patient.identifier", NULL, "urn:mrn|M1", "o1,o4");
	expect_ids(f->s, "Observation", "patient.identifier", NULL, "urn:other|M1", "o2");
	expect_ids(f->s, "Observation", "patient.birthdate", NULL, "lt1980", "o2");
	expect_ids(f->s, "Observation", "patient.birthdate", NULL, "ge1980", "o1,o4");
	expect_ids(f->s, "Observation", "patient.name", "exact", "Smith", "o1,o4");
	expect_ids(f->s, "Observation", "_id", NULL, "o2,nosuch,|o4", "o2,o4");
	expect_ids(f->s, "Observation", "_id", "not", "o1,o2", "o3,o4");
	expect_ids(f->s, "Observation", "_id", "missing", "true", "");
	expect_ids(f->s, "Observation", "_id", "missing", "false", "o1,o2,o3,o4");
	char got[64];
	assert_int_equal(find(f->s, "Observation", "colour", NULL, "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "status", "exact", "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "code", NULL, "|", got, sizeof got), STORE_INVALID);
	/* chains need a reference parameter, a type when it could be several, and known parameters */
	assert_int_equal(find(f->s, "Observation", "subject.name", NULL, "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "code.name", NULL, "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "subject", "Patient.colour", "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "subject", "Golem.name", "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "patient", "Group.name", "x", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "subject", "Group.name", "x", got, sizeof got), STORE_INVALID);
}

static void search_references(void **state)
{
	struct fixture *f = *state;
	load_observations(f->s);
	expect_ids(f->s, "Observation", "patient", NULL, "Patient/p1", "o1,o4");
	expect_ids(f->s, "Observation", "patient", NULL, "p1", "o1,o4");
	expect_ids(f->s, "Observation", "subject", NULL, "Patient/p2", "o2"); /* versioned */
	/* a reference to another server's Patient/p9 is not the local one, and
	 * is found by its absolute URL exactly */
	put(f->s, "Observation", "of1",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"subject\":{\"reference\":\"https://ehr.example/fhir/Patient/p9\"}}");
	put(f->s, "Patient", "p9", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Nine\"}]}");
	expect_ids(f->s, "Observation", "subject", NULL, "Patient/p9", "");
	expect_ids(f->s, "Observation", "patient", NULL, "p9", "");
	expect_ids(f->s, "Observation", "subject", "Patient", "p9", "");
	expect_ids(f->s, "Observation", "subject", "Patient.name", "nine", "");
	expect_ids(f->s, "Observation", "subject", NULL, "https://ehr.example/fhir/Patient/p9", "of1");
	expect_ids(f->s, "Observation", "patient", NULL, "https://ehr.example/fhir/Patient/p9", "of1");
	expect_ids(f->s, "Observation", "subject", "Patient", "https://ehr.example/fhir/Patient/p9", "of1");
	expect_ids(f->s, "Observation", "subject", "Group", "https://ehr.example/fhir/Patient/p9", "");
	expect_ids(f->s, "Observation", "subject", NULL, "https://other.example/fhir/Patient/p9", "");
	expect_ids(f->s, "Observation", "subject", NULL, "Group/g1", "o3");
	expect_ids(f->s, "Observation", "patient", NULL, "g1", "");      /* patient means Patient only */
	expect_ids(f->s, "Observation", "subject", "Group", "g1", "o3");
	expect_ids(f->s, "Observation", "subject", "Patient", "g1", "");
	expect_ids(f->s, "Observation", "subject", NULL, "Patient/p1,Group/g1", "o1,o3,o4");
}

static void search_dates(void **state)
{
	struct fixture *f = *state;
	load_observations(f->s);
	/* o1 2024-03-10T09:30Z; o2 [2024-03-01, 2024-04-01); o3 2024-03-11T04:30Z; o4 year 2023 */
	expect_ids(f->s, "Observation", "date", NULL, "2024-03-10", "o1");
	expect_ids(f->s, "Observation", "date", NULL, "eq2024-03", "o1,o2,o3");
	expect_ids(f->s, "Observation", "date", NULL, "2024", "o1,o2,o3");
	expect_ids(f->s, "Observation", "date", NULL, "2024-03-10T09:30:00Z", "o1");
	expect_ids(f->s, "Observation", "date", NULL, "2024-03-10T10:30:00+01:00", "o1");
	expect_ids(f->s, "Observation", "date", NULL, "ne2024-03-10", "o2,o3,o4");
	expect_ids(f->s, "Observation", "date", NULL, "lt2024-03-10", "o2,o4");
	expect_ids(f->s, "Observation", "date", NULL, "gt2024-03-10", "o2,o3");
	expect_ids(f->s, "Observation", "date", NULL, "le2024-03-10", "o1,o2,o4");
	expect_ids(f->s, "Observation", "date", NULL, "ge2024-03-11", "o2,o3");
	expect_ids(f->s, "Observation", "date", NULL, "sa2024-02-29", "o1,o2,o3");
	expect_ids(f->s, "Observation", "date", NULL, "sa2024-03-01", "o1,o3");
	expect_ids(f->s, "Observation", "date", NULL, "eb2024-01-01", "o4");
	expect_ids(f->s, "Observation", "date", NULL, "eb2024-04-01", "o1,o2,o3,o4"); /* o2 ends 03-31 */
	expect_ids(f->s, "Observation", "date", NULL, "eb2024-03-31", "o1,o3,o4");
	expect_ids(f->s, "Observation", "date", NULL, "lt2023-06-01", "o4"); /* the year overlaps */
	expect_ids(f->s, "Observation", "date", NULL, "2023-06-01", "");     /* but is not within */
	expect_ids(f->s, "Patient", "birthdate", NULL, "ge1978,eb1970", "p1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "1975-08", "");
	expect_ids(f->s, "Patient", "birthdate", NULL, "lt1975-08", "p2");
	char got[64];
	assert_int_equal(find(f->s, "Observation", "date", NULL, "2024-02-30", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "date", NULL, "ap2024", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "date", NULL, "yesterday", got, sizeof got), STORE_INVALID);
	/* _lastUpdated is a date on every type */
	expect_ids(f->s, "Patient", "_lastUpdated", NULL, "gt2000-01-01", "p1,p2,p3");
	expect_ids(f->s, "Patient", "_lastUpdated", NULL, "lt2000-01-01", "");
}

/* Every prefix at every precision, on the bounds. Values are ranges
 * [lo, hi) (FHIR R4 search 3.1.1.5.2):
 *   d1 Period 2024-03-01..2024-03-31     [2024-03-01, 2024-04-01)
 *   d2 dateTime 2024-03 (month)          [2024-03-01, 2024-04-01)
 *   d3 dateTime 2024-03-01 (day)         [2024-03-01, 2024-03-02)
 *   d4 dateTime 2024-03-31T23:59:59Z     the last second before April
 *   d5 instant 2024-04-01T00:00:00.000Z  the first millisecond of April
 *   d6 dateTime 2024-02-29T23:59:59.999Z the last millisecond before March
 *   d7 Period 2024-01-01..2024-12-31     the year 2024 exactly
 *   d8 dateTime 2025-01-01T00:00:00Z     the first second after it
 * Columns: eq ne lt gt le ge sa eb; ap is refused at every precision. */
static const struct {
	const char *value;
	const char *want[8];
} date_bounds[] = {
	{"2024", {"d1,d2,d3,d4,d5,d6,d7", "d8", "", "d8", "d1,d2,d3,d4,d5,d6,d7", "d1,d2,d3,d4,d5,d6,d7,d8", "d8", ""}},
	{"2024-03", {"d1,d2,d3,d4", "d5,d6,d7,d8", "d6,d7", "d5,d7,d8", "d1,d2,d3,d4,d6,d7", "d1,d2,d3,d4,d5,d7,d8", "d5,d8", "d6"}},
	{"2024-03-01", {"d3", "d1,d2,d4,d5,d6,d7,d8", "d6,d7", "d1,d2,d4,d5,d7,d8", "d3,d6,d7", "d1,d2,d3,d4,d5,d7,d8", "d4,d5,d8", "d6"}},
	{"2024-03-31", {"d4", "d1,d2,d3,d5,d6,d7,d8", "d1,d2,d3,d6,d7", "d5,d7,d8", "d1,d2,d3,d4,d6,d7", "d4,d5,d7,d8", "d5,d8", "d3,d6"}},
	{"2024-04-01", {"d5", "d1,d2,d3,d4,d6,d7,d8", "d1,d2,d3,d4,d6,d7", "d7,d8", "d1,d2,d3,d4,d5,d6,d7", "d5,d7,d8", "d8", "d1,d2,d3,d4,d6"}},
	{"2024-03-31T23:59Z", {"d4", "d1,d2,d3,d5,d6,d7,d8", "d1,d2,d3,d6,d7", "d5,d7,d8", "d1,d2,d3,d4,d6,d7", "d4,d5,d7,d8", "d5,d8", "d3,d6"}},
	{"2024-03-31T23:59:59Z", {"d4", "d1,d2,d3,d5,d6,d7,d8", "d1,d2,d3,d6,d7", "d5,d7,d8", "d1,d2,d3,d4,d6,d7", "d4,d5,d7,d8", "d5,d8", "d3,d6"}},
	{"2024-04-01T00:00:00.000Z", {"d5", "d1,d2,d3,d4,d6,d7,d8", "d1,d2,d3,d4,d6,d7", "d7,d8", "d1,d2,d3,d4,d5,d6,d7", "d5,d7,d8", "d8", "d1,d2,d3,d4,d6"}},
	{"2024-02-29T23:59:59.999Z", {"d6", "d1,d2,d3,d4,d5,d7,d8", "d7", "d1,d2,d3,d4,d5,d7,d8", "d6,d7", "d1,d2,d3,d4,d5,d6,d7,d8", "d1,d2,d3,d4,d5,d8", ""}},
	{"2025", {"d8", "d1,d2,d3,d4,d5,d6,d7", "d1,d2,d3,d4,d5,d6,d7", "", "d1,d2,d3,d4,d5,d6,d7,d8", "d8", "", "d1,d2,d3,d4,d5,d6,d7"}},
};

static void search_date_boundaries(void **state)
{
	struct fixture *f = *state;
	static const char *const obs[][2] = {
		{"d1", "\"effectivePeriod\":{\"start\":\"2024-03-01\",\"end\":\"2024-03-31\"}"},
		{"d2", "\"effectiveDateTime\":\"2024-03\""},
		{"d3", "\"effectiveDateTime\":\"2024-03-01\""},
		{"d4", "\"effectiveDateTime\":\"2024-03-31T23:59:59Z\""},
		{"d5", "\"effectiveInstant\":\"2024-04-01T00:00:00.000Z\""},
		{"d6", "\"effectiveDateTime\":\"2024-02-29T23:59:59.999Z\""},
		{"d7", "\"effectivePeriod\":{\"start\":\"2024-01-01\",\"end\":\"2024-12-31\"}"},
		{"d8", "\"effectiveDateTime\":\"2025-01-01T00:00:00Z\""},
	};
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) {
		char json[256];
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},%s}",
			 obs[i][1]);
		put(f->s, "Observation", obs[i][0], json);
	}
	static const char *const prefixes[] = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"};
	char value[64], got[256];
	for (size_t i = 0; i < sizeof date_bounds / sizeof date_bounds[0]; i++) {
		for (size_t p = 0; p < 8; p++) {
			snprintf(value, sizeof value, "%s%s", prefixes[p], date_bounds[i].value);
			expect_ids(f->s, "Observation", "date", NULL, value, date_bounds[i].want[p]);
		}
		/* no prefix is eq */
		expect_ids(f->s, "Observation", "date", NULL, date_bounds[i].value, date_bounds[i].want[0]);
		snprintf(value, sizeof value, "ap%s", date_bounds[i].value);
		assert_int_equal(find(f->s, "Observation", "date", NULL, value, got, sizeof got), STORE_INVALID);
	}
	/* a date element (Patient.birthDate) on the bounds of a month and a day */
	put(f->s, "Patient", "q1", "{\"resourceType\":\"Patient\",\"birthDate\":\"2024-03-31\"}");
	put(f->s, "Patient", "q2", "{\"resourceType\":\"Patient\",\"birthDate\":\"2024-04-01\"}");
	expect_ids(f->s, "Patient", "birthdate", NULL, "eq2024-03", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "le2024-03", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "lt2024-03", "");
	expect_ids(f->s, "Patient", "birthdate", NULL, "ge2024-04", "q2");
	expect_ids(f->s, "Patient", "birthdate", NULL, "gt2024-04", "");
	expect_ids(f->s, "Patient", "birthdate", NULL, "le2024-03-31", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "lt2024-04-01", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "ge2024-04-01", "q2");
	expect_ids(f->s, "Patient", "birthdate", NULL, "gt2024-03-31", "q2");
	expect_ids(f->s, "Patient", "birthdate", NULL, "eb2024-04-01", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "sa2024-03-31", "q2");
	expect_ids(f->s, "Patient", "birthdate", NULL, "ne2024-03-31", "q2");
	expect_ids(f->s, "Patient", "birthdate", NULL, "eq2024-04-01T00:00:00Z", "");  /* a day is wider */
	expect_ids(f->s, "Patient", "birthdate", NULL, "le2024-03-31T23:59:59Z", "q1"); /* starts before */
	expect_ids(f->s, "Patient", "birthdate", NULL, "eb2024-04-01T00:00:00Z", "q1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "sa2024-03-31T23:59:59Z", "q2");
}

static void search_strings(void **state)
{
	struct fixture *f = *state;
	load_observations(f->s);
	expect_ids(f->s, "Patient", "name", NULL, "smi", "p1,p2");
	expect_ids(f->s, "Patient", "name", NULL, "SMITH", "p1,p2");
	expect_ids(f->s, "Patient", "name", NULL, "bob", "p2"); /* from name.text */
	expect_ids(f->s, "Patient", "name", NULL, "marie", "p1");
	expect_ids(f->s, "Patient", "name", NULL, "mith", "");
	expect_ids(f->s, "Patient", "name", "contains", "mith", "p1,p2");
	expect_ids(f->s, "Patient", "name", "exact", "Smith", "p1");
	expect_ids(f->s, "Patient", "name", "exact", "smith", "");
	expect_ids(f->s, "Patient", "family", NULL, "smith", "p1,p2");
	expect_ids(f->s, "Patient", "given", NULL, "an", "p1");
	expect_ids(f->s, "Patient", "name", NULL, "jones,ann", "p1,p3");
	expect_ids(f->s, "Patient", "address-city", NULL, "spring", "p1");
}

/* Index values holding what an array literal gives meaning to (quotes,
 * backslashes, commas, braces, the word NULL) are stored and found as they
 * were written. */
static void search_values_with_quotes_and_braces(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "q1",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"O\\\"Brien\",\"given\":[\"a\\\\b\"]}],"
	    "\"identifier\":[{\"system\":\"urn:x{1}\",\"value\":\"NULL\"}]}");
	put(f->s, "Patient", "q2", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"{Brace},\\\"\"}]}");
	expect_ids(f->s, "Patient", "family", "exact", "O\"Brien", "q1");
	expect_ids(f->s, "Patient", "given", "exact", "a\\\\b", "q1"); /* \\ escapes \ */
	expect_ids(f->s, "Patient", "identifier", NULL, "urn:x{1}|NULL", "q1");
	expect_ids(f->s, "Patient", "family", NULL, "{brace}", "q2");
}

/* R4 string search ignores case and accents beyond ASCII, on the stored
 * and the searched side; :exact stays exact. */
static void search_strings_fold_case_and_accents(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "z1",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Núñez\",\"given\":[\"Zoë\"]}]}");
	put(f->s, "Patient", "z2", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Padberg\"}]}");
	put(f->s, "Patient", "z3",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Straße\",\"given\":[\"ΣΩΚΡΆΤΗΣ\"]}]}");
	expect_ids(f->s, "Patient", "family", NULL, "nunez", "z1");
	expect_ids(f->s, "Patient", "family", NULL, "NÚÑ", "z1");
	expect_ids(f->s, "Patient", "given", NULL, "ZOË", "z1");
	expect_ids(f->s, "Patient", "given", NULL, "zoe", "z1");
	expect_ids(f->s, "Patient", "name", NULL, "Pádberg", "z2");
	expect_ids(f->s, "Patient", "family", NULL, "STRASSE", "z3");
	expect_ids(f->s, "Patient", "given", NULL, "σωκράτης", "z3");
	/* the accents written as combining marks (u + U+0301, n + U+0303) */
	expect_ids(f->s, "Patient", "family", NULL,
		   "Nu\xcc\x81n\xcc\x83"
		   "ez",
		   "z1");
	expect_ids(f->s, "Patient", "name", "contains", "ÑE", "z1");
	expect_ids(f->s, "Patient", "name", "contains", "adb", "z2");
	expect_ids(f->s, "Patient", "family", "exact", "Núñez", "z1");
	expect_ids(f->s, "Patient", "family", "exact", "Nunez", "");
	expect_ids(f->s, "Patient", "family", "exact", "núñez", "");
}

static void search_filtered_and_resource_params(void **state)
{
	struct fixture *f = *state;
	/* email is telecom.where(system='email'): a phone number with the same
	 * text is not an email */
	put(f->s, "Practitioner", "pr1",
	    "{\"resourceType\":\"Practitioner\",\"telecom\":[{\"system\":\"email\",\"value\":\"a@example.org\"},"
	    "{\"system\":\"phone\",\"value\":\"555\"}],\"meta\":{\"tag\":[{\"system\":\"urn:t\",\"code\":\"peer\"}]}}");
	put(f->s, "Practitioner", "pr2",
	    "{\"resourceType\":\"Practitioner\",\"telecom\":[{\"system\":\"email\",\"value\":\"555\"}]}");
	expect_ids(f->s, "Practitioner", "email", NULL, "a@example.org", "pr1");
	expect_ids(f->s, "Practitioner", "phone", NULL, "555", "pr1");
	expect_ids(f->s, "Practitioner", "email", NULL, "555", "pr2");
	expect_ids(f->s, "Practitioner", "_tag", NULL, "urn:t|peer", "pr1");
	expect_ids(f->s, "Practitioner", "_tag", "missing", "true", "pr2");
	/* meta.versionId and meta.lastUpdated the store sets are kept with the tag */
	cJSON *out = NULL;
	struct store_error err;
	assert_int_equal(store_read(f->s, "Practitioner", "pr1", &out, &err), STORE_OK);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "meta"), "tag"));
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	cJSON_Delete(out);
}

static void search_missing(void **state)
{
	struct fixture *f = *state;
	load_observations(f->s);
	expect_ids(f->s, "Observation", "category", "missing", "true", "o2,o3,o4");
	expect_ids(f->s, "Observation", "category", "missing", "false", "o1");
	expect_ids(f->s, "Patient", "address-city", "missing", "true", "p2,p3");
	expect_ids(f->s, "Observation", "patient", "missing", "true", "o3");
	char got[64];
	assert_int_equal(find(f->s, "Observation", "category", "missing", "maybe", got, sizeof got), STORE_INVALID);
}

static void search_combined_paging_sort(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 7; i++) {
		char id[16], json[256];
		snprintf(id, sizeof id, "g%d", i);
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"%s\",\"subject\":{\"reference\":"
			 "\"Patient/p%d\"},\"startDate\":\"2024-01-0%d\"}",
			 i % 2 ? "active" : "proposed", i % 3, 7 - i);
		put(f->s, "Goal", id, json);
	}
	struct store_search_param ps[] = {
		{.name = "lifecycle-status", .value = "active,proposed"},
		{.name = "patient", .value = "Patient/p0,Patient/p1"},
	};
	struct store_search q = {.params = ps, .n_params = 2, .count = 2, .offset = 0};
	struct store_page page;
	struct store_error err;
	/* p0: g0 g3 g6, p1: g1 g4 → 5 matches, creation order */
	assert_int_equal(store_search(f->s, "Goal", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 5);
	assert_int_equal(page.n, 2);
	assert_string_equal(page.items[0].id, "g0");
	assert_string_equal(page.items[1].id, "g1");
	assert_string_equal(str_at(page.items[1].resource, "lifecycleStatus", NULL), "active");
	assert_int_equal(page.items[1].version, 1);
	store_page_release(&page);
	q.offset = 4;
	assert_int_equal(store_search(f->s, "Goal", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 5);
	assert_int_equal(page.n, 1);
	assert_string_equal(page.items[0].id, "g6");
	store_page_release(&page);
	q.offset = 9;
	assert_int_equal(store_search(f->s, "Goal", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 5);
	assert_int_equal(page.n, 0);
	store_page_release(&page);
	/* AND across criteria */
	ps[0].value = "active";
	q.offset = 0;
	q.count = 10;
	assert_int_equal(store_search(f->s, "Goal", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 2); /* g1, g3 */
	store_page_release(&page);
	/* count 0: total only */
	q.count = 0;
	assert_int_equal(store_search(f->s, "Goal", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 2);
	assert_int_equal(page.n, 0);
	store_page_release(&page);
	/* sort by a date parameter, by _id descending */
	struct store_search all = {.count = 3, .sort = "start-date"};
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_OK);
	assert_int_equal(page.total, 7);
	assert_string_equal(page.items[0].id, "g6");
	assert_string_equal(page.items[1].id, "g5");
	assert_string_equal(page.items[2].id, "g4");
	store_page_release(&page);
	all.sort = "-_id";
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_OK);
	assert_string_equal(page.items[0].id, "g6");
	assert_string_equal(page.items[2].id, "g4");
	store_page_release(&page);
	all.sort = "lifecycle-status,-start-date";
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_OK);
	assert_string_equal(page.items[0].id, "g1"); /* active, latest start */
	assert_string_equal(page.items[1].id, "g3");
	assert_string_equal(page.items[2].id, "g5");
	store_page_release(&page);
	all.sort = "nonsense";
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_INVALID);
	assert_true(strstr(err.message, "nonsense") != NULL);
	store_page_release(&page);
	all.sort = NULL;
	all.count = STORE_MAX_COUNT + 1;
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_INVALID);
	store_page_release(&page);
}

static void search_follows_updates(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Procedure", "x", "{\"resourceType\":\"Procedure\",\"status\":\"in-progress\"}");
	expect_ids(f->s, "Procedure", "status", NULL, "in-progress", "x");
	cJSON *r = J("{\"resourceType\":\"Procedure\",\"status\":\"completed\",\"performedDateTime\":\"2024-02-02\"}");
	assert_int_equal(store_update(f->s, "Procedure", "x", r, NULL, NULL, NULL, &err), STORE_OK);
	expect_ids(f->s, "Procedure", "status", NULL, "in-progress", "");
	expect_ids(f->s, "Procedure", "status", NULL, "completed", "x");
	expect_ids(f->s, "Procedure", "date", NULL, "2024-02", "x");
	assert_int_equal(store_delete(f->s, "Procedure", "x", NULL, &err), STORE_OK);
	expect_ids(f->s, "Procedure", "status", NULL, "completed", "");
	cJSON_Delete(r);
}

/* --- transactions, durability, fidelity ---------------------------------------------------- */

static void transaction_rollback_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Encounter", "e0", "{\"resourceType\":\"Encounter\",\"status\":\"planned\"}");
	cJSON *r = J("{\"resourceType\":\"Encounter\",\"status\":\"finished\"}");
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_begin(f->s, &err), STORE_CONFLICT);
	assert_int_equal(store_create(f->s, "Encounter", r, "e1", NULL, &err), STORE_OK);
	assert_int_equal(store_create(f->s, "Encounter", r, "e2", NULL, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Encounter", "e0", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_delete(f->s, "Encounter", "e0", NULL, &err), STORE_OK);
	/* inside the transaction its writes are visible */
	expect_ids(f->s, "Encounter", "status", NULL, "finished", "e1,e2");
	assert_int_equal(store_rollback(f->s, &err), STORE_OK);

	cJSON *out = NULL;
	assert_int_equal(store_read(f->s, "Encounter", "e1", &out, &err), STORE_NOT_FOUND);
	assert_int_equal(store_read(f->s, "Encounter", "e2", &out, &err), STORE_NOT_FOUND);
	assert_int_equal(store_read(f->s, "Encounter", "e0", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "status", NULL), "planned");
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	cJSON_Delete(out);
	struct store_page page;
	assert_int_equal(store_history(f->s, "Encounter", NULL, STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 1);
	store_page_release(&page);
	expect_ids(f->s, "Encounter", "status", NULL, "finished", "");
	assert_int_equal(store_rollback(f->s, &err), STORE_INVALID);
	assert_int_equal(store_commit(f->s, &err), STORE_INVALID);

	/* a failing write inside a transaction is undone alone */
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_create(f->s, "Encounter", r, "e1", NULL, &err), STORE_OK);
	assert_int_equal(store_create(f->s, "Encounter", r, "e1", NULL, &err), STORE_CONFLICT);
	assert_int_equal(store_update(f->s, "Encounter", "e0", r, "9", NULL, NULL, &err), STORE_VERSION_MISMATCH);
	assert_int_equal(store_commit(f->s, &err), STORE_OK);
	assert_int_equal(store_read(f->s, "Encounter", "e1", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "meta", "versionId"), "1");
	cJSON_Delete(out);
	assert_int_equal(store_history(f->s, "Encounter", NULL, STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, 2);
	store_page_release(&page);
	cJSON_Delete(r);
}

struct peek {
	struct store *s;
	enum store_status seen;
};

static void *peek_claim(void *p)
{
	struct peek *k = p;
	cJSON *out = NULL;
	k->seen = store_read(k->s, "Claim", "cl1", &out, NULL);
	cJSON_Delete(out);
	return NULL;
}

static void transaction_is_invisible_to_other_threads_until_commit(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	cJSON *r = J("{\"resourceType\":\"Claim\",\"status\":\"active\"}");
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_create(f->s, "Claim", r, "cl1", NULL, &err), STORE_OK);
	struct peek k = {.s = f->s, .seen = STORE_OK};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, peek_claim, &k), 0);
	pthread_join(t, NULL);
	assert_int_equal(k.seen, STORE_NOT_FOUND); /* another thread, another connection */
	assert_int_equal(store_commit(f->s, &err), STORE_OK);
	assert_int_equal(pthread_create(&t, NULL, peek_claim, &k), 0);
	pthread_join(t, NULL);
	assert_int_equal(k.seen, STORE_OK);
	cJSON_Delete(r);
}

static void reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	struct stat sb;
	assert_int_equal(stat(f->data, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	char db[160];
	snprintf(db, sizeof db, "%s/store.db", f->data);
	assert_int_equal(stat(db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	put(f->s, "Coverage", "cov", "{\"resourceType\":\"Coverage\",\"status\":\"active\"}");
	cJSON *r = J("{\"resourceType\":\"Coverage\",\"status\":\"cancelled\"}");
	assert_int_equal(store_update(f->s, "Coverage", "cov", r, NULL, NULL, NULL, &err), STORE_OK);
	store_close(f->s);
	f->s = NULL;
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, msg, sizeof msg), 0);
	cJSON *out = NULL;
	assert_int_equal(store_read(f->s, "Coverage", "cov", &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "status", NULL), "cancelled");
	assert_string_equal(str_at(out, "meta", "versionId"), "2");
	cJSON_Delete(out);
	expect_ids(f->s, "Coverage", "status", NULL, "cancelled", "cov");
	assert_int_equal(store_update(f->s, "Coverage", "cov", r, "2", NULL, &out, &err), STORE_OK);
	assert_string_equal(str_at(out, "meta", "versionId"), "3");
	cJSON_Delete(out);
	cJSON_Delete(r);

	/* a data_dir that is a file is refused with a reason */
	char file[160];
	snprintf(file, sizeof file, "%s/plain", f->dir);
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	struct store *bad = NULL;
	assert_int_equal(store_open_sqlite(file, 0, STORE_CACHE_DEFAULT_BYTES, &bad, msg, sizeof msg), -1);
	assert_null(bad);
	assert_true(strstr(msg, "not a directory") != NULL);
}

static void decimal_literals_survive(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Observation", "d",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"valueQuantity\":{\"value\":1.10,\"unit\":\"mg\"},"
	    "\"component\":[{\"valueQuantity\":{\"value\":12345678901234567890}},{\"valueQuantity\":{\"value\":1e2}}]}");
	cJSON *out = NULL;
	assert_int_equal(store_read(f->s, "Observation", "d", &out, &err), STORE_OK);
	char *text = fjson_print(out, false, NULL);
	assert_non_null(strstr(text, "\"value\":1.10,"));
	assert_non_null(strstr(text, "\"value\":12345678901234567890}"));
	assert_non_null(strstr(text, "\"value\":1e2}"));
	free(text);
	cJSON_Delete(out);
	struct store_page page;
	assert_int_equal(store_history(f->s, "Observation", "d", STORE_ALL_TIME, 1, 0, 0, &page, &err), STORE_OK);
	text = fjson_print(page.items[0].resource, false, NULL);
	assert_non_null(strstr(text, "\"value\":1.10,"));
	free(text);
	store_page_release(&page);
}

#define WRITERS 4
#define WRITES 25

struct writer {
	struct store *s;
	int n;
	int ok;
	int retries;
};

static void *write_many(void *p)
{
	struct writer *w = p;
	static const char json[] = "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\"}";
	cJSON *r = fjson_parse(json, sizeof json - 1, NULL, NULL);
	for (int i = 0; i < WRITES; i++) {
		struct store_error err;
		if (store_update(w->s, "Goal", "shared", r, NULL, NULL, NULL, &err) == STORE_OK)
			w->ok++;
		char id[32];
		snprintf(id, sizeof id, "own-%d-%d", w->n, i);
		if (store_create(w->s, "Goal", r, id, NULL, &err) == STORE_OK)
			w->ok++;
	}
	cJSON_Delete(r);
	return NULL;
}

/* read-modify-write with If-Match, retrying on a mismatch */
static void *write_optimistic(void *p)
{
	struct writer *w = p;
	for (int i = 0; i < WRITES; i++) {
		for (;;) {
			struct store_error err;
			cJSON *cur = NULL;
			if (store_read(w->s, "Goal", "counter", &cur, &err) != STORE_OK)
				return NULL;
			char vid[24];
			snprintf(vid, sizeof vid, "%s", str_at(cur, "meta", "versionId"));
			cJSON *note = cJSON_GetObjectItem(cur, "description");
			cJSON *text = cJSON_GetObjectItem(note, "text");
			long n = strtol(text->valuestring, NULL, 10) + 1;
			char num[24];
			snprintf(num, sizeof num, "%ld", n);
			cJSON_ReplaceItemInObject(note, "text", cJSON_CreateString(num));
			enum store_status st = store_update(w->s, "Goal", "counter", cur, vid, NULL, NULL, &err);
			cJSON_Delete(cur);
			if (st == STORE_OK) {
				w->ok++;
				break;
			}
			if (st != STORE_VERSION_MISMATCH)
				return NULL;
			w->retries++;
		}
	}
	return NULL;
}

static void concurrent_writers_lose_nothing(void **state)
{
	struct fixture *f = *state;
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = f->s, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 2 * WRITES);
	}
	struct store_error err;
	cJSON *out = NULL;
	assert_int_equal(store_read(f->s, "Goal", "shared", &out, &err), STORE_OK);
	char want[16];
	snprintf(want, sizeof want, "%d", WRITERS * WRITES);
	assert_string_equal(str_at(out, "meta", "versionId"), want);
	cJSON_Delete(out);
	struct store_page page;
	assert_int_equal(store_history(f->s, "Goal", "shared", STORE_ALL_TIME, STORE_MAX_COUNT, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, WRITERS * WRITES);
	for (size_t i = 0; i < page.n; i++) /* every version once, newest first */
		assert_int_equal(page.items[i].version, (int64_t)(WRITERS * WRITES - i));
	store_page_release(&page);
	struct store_search all = {.count = 0};
	assert_int_equal(store_search(f->s, "Goal", &all, &page, &err), STORE_OK);
	assert_int_equal(page.total, 1 + WRITERS * WRITES);
	store_page_release(&page);

	put(f->s, "Goal", "counter", "{\"resourceType\":\"Goal\",\"description\":{\"text\":\"0\"}}");
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = f->s, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, write_optimistic, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, WRITES);
	}
	assert_int_equal(store_read(f->s, "Goal", "counter", &out, &err), STORE_OK);
	snprintf(want, sizeof want, "%d", WRITERS * WRITES);
	assert_string_equal(str_at(out, "description", "text"), want); /* no lost update */
	snprintf(want, sizeof want, "%d", WRITERS * WRITES + 1);
	assert_string_equal(str_at(out, "meta", "versionId"), want);
	cJSON_Delete(out);
}

#define UCUM "http://unitsofmeasure.org"

static void load_quantities(struct store *s)
{
	put(s, "Observation", "q1",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"weight\"},"
	    "\"valueQuantity\":{\"value\":5.4,\"unit\":\"milligram\",\"system\":\"" UCUM "\",\"code\":\"mg\"}}");
	put(s, "Observation", "q2",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"glucose\"},"
	    "\"valueQuantity\":{\"value\":100,\"unit\":\"mg/dL\",\"system\":\"" UCUM "\",\"code\":\"mg/dL\"}}");
	put(s, "Observation", "q3",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"score\"},"
	    "\"valueQuantity\":{\"value\":-2.25,\"unit\":\"points\"},"
	    "\"meta\":{\"profile\":[\"http://example.org/fhir/StructureDefinition/score|1.0\"],"
	    "\"source\":\"urn:program:peer\"}}");
	put(s, "Observation", "q4",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"panel\"},"
	    "\"component\":[{\"code\":{\"text\":\"a\"},\"valueQuantity\":{\"value\":12,\"system\":\"" UCUM
	    "\",\"code\":\"mg\"}}]}");
	put(s, "Condition", "c1",
	    "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p1\"},"
	    "\"onsetRange\":{\"low\":{\"value\":18,\"system\":\"" UCUM "\",\"code\":\"a\"},"
	    "\"high\":{\"value\":24,\"system\":\"" UCUM "\",\"code\":\"a\"}}}");
	put(s, "Condition", "c2",
	    "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p1\"},"
	    "\"onsetAge\":{\"value\":40,\"system\":\"" UCUM "\",\"code\":\"a\"}}");
}

static void search_quantities_and_uris(void **state)
{
	struct fixture *f = *state;
	load_quantities(f->s);
	/* eq takes the precision of the value: 5.4 is [5.35, 5.45), 5 is [4.5, 5.5) */
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.4", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.40", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.41", "");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "1e2", "q2");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "ne5.4", "q2,q3");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "gt5.4", "q2");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "ge5.4", "q1,q2");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "lt0", "q3");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "le-2.25", "q3");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "ap95", "q2");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "ap80", "");
	/* units: system and code, or code (or unit) alone */
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.4|" UCUM "|mg", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.4|urn:other|mg", "");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "gt0||mg", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "gt-10||milligram", "q1");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "lt0||points", "q3");
	expect_ids(f->s, "Observation", "value-quantity", NULL, "gt0||mg,lt0", "q1,q3");
	expect_ids(f->s, "Observation", "component-value-quantity", NULL, "12||mg", "q4");
	expect_ids(f->s, "Observation", "combo-value-quantity", NULL, "gt10||mg", "q4");
	expect_ids(f->s, "Observation", "value-quantity", "missing", "true", "q4");
	/* a Range: contained in the search range for eq, overlapping for gt/lt */
	expect_ids(f->s, "Condition", "onset-age", NULL, "2e1", "c1");
	expect_ids(f->s, "Condition", "onset-age", NULL, "gt20", "c1,c2");
	expect_ids(f->s, "Condition", "onset-age", NULL, "lt20", "c1");
	expect_ids(f->s, "Condition", "onset-age", NULL, "sa30||a", "c2");
	expect_ids(f->s, "Condition", "onset-age", NULL, "eb30", "c1");
	/* uri, with :below and :above */
	expect_ids(f->s, "Observation", "_profile", NULL, "http://example.org/fhir/StructureDefinition/score|1.0", "q3");
	expect_ids(f->s, "Observation", "_profile", NULL, "http://example.org/fhir/StructureDefinition/score", "");
	expect_ids(f->s, "Observation", "_profile", "below", "http://example.org/fhir/", "q3");
	expect_ids(f->s, "Observation", "_source", "above", "urn:program:peer:group-7", "q3");
	expect_ids(f->s, "Observation", "_source", "above", "urn:program:pe", "");
	expect_ids(f->s, "Observation", "_source", NULL, "urn:program:peer", "q3");
	/* sorting by a quantity orders by value */
	struct store_search_param p = {.name = "value-quantity", .modifier = "missing", .value = "false"};
	struct store_search q = {.params = &p, .n_params = 1, .count = 10, .sort = "-value-quantity"};
	struct store_page page;
	struct store_error err;
	assert_int_equal(store_search(f->s, "Observation", &q, &page, &err), STORE_OK);
	assert_int_equal(page.n, 3);
	assert_string_equal(page.items[0].id, "q2");
	assert_string_equal(page.items[1].id, "q1");
	assert_string_equal(page.items[2].id, "q3");
	store_page_release(&page);
	/* malformed values are refused, not matched */
	char got[64];
	const char *bad[] = {"abc", "gt", "5.", ".5", "5e", "5|mg", "5|" UCUM "|", "zz5", "1e999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (find(f->s, "Observation", "value-quantity", NULL, bad[i], got, sizeof got) != STORE_INVALID)
			fail_msg("value-quantity=%s was accepted", bad[i]);
	}
	assert_int_equal(find(f->s, "Observation", "value-quantity", "exact", "5", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Observation", "_profile", "contains", "x", got, sizeof got), STORE_INVALID);
}

/* A database of schema version 1 (no number/quantity/uri rows) is reindexed
 * when opened. */
static void version_1_database_is_reindexed(void **state)
{
	struct fixture *f = *state;
	load_quantities(f->s);
	store_close(f->s);
	f->s = NULL;
	char path[200];
	snprintf(path, sizeof path, "%s/store.db", f->data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM idx; UPDATE schema_version SET version = 1", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Observation", "value-quantity", NULL, "5.4", "q1");
	expect_ids(f->s, "Observation", "status", NULL, "final", "q1,q2,q3,q4");
	expect_ids(f->s, "Condition", "subject", NULL, "Patient/p1", "c1,c2");
	/* version 2 indexed another server's Patient/p1 as the local one */
	put(f->s, "Observation", "far",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"subject\":{\"reference\":\"https://ehr.example/fhir/Patient/p1\"}}");
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO idx(rid, param, sys, val) SELECT rid, 'subject', 'Patient', 'p1' FROM resource"
				      " WHERE id = 'far'; UPDATE schema_version SET version = 2",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Observation", "subject", NULL, "https://ehr.example/fhir/Patient/p1", "far");
	expect_ids(f->s, "Observation", "subject", NULL, "Patient/p1", "");
	/* and a newer schema is still refused */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), -1);
	assert_non_null(strstr(msg, "schema version 99, written by a newer Crosswalk"));
	/* and one without a version, too */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), -1);
	assert_non_null(strstr(msg, "schema version table is empty"));
}

/* A database of schema version 3 (only twelve types indexed, strings
 * lower-cased in ASCII only) is reindexed when opened. */
static void version_3_database_is_reindexed(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "v3", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Núñez\"}]}");
	put(f->s, "Immunization", "im1",
	    "{\"resourceType\":\"Immunization\",\"status\":\"completed\",\"vaccineCode\":{\"text\":\"x\"},"
	    "\"patient\":{\"reference\":\"Patient/v3\"},\"occurrenceDateTime\":\"2020-01-01\"}");
	store_close(f->s);
	f->s = NULL;
	char path[200];
	snprintf(path, sizeof path, "%s/store.db", f->data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* what a version 3 build wrote */
	assert_int_equal(
		sqlite3_exec(db,
			     "DELETE FROM idx WHERE rid IN (SELECT rid FROM resource WHERE type = 'Immunization');"
			     "UPDATE idx SET val = 'núñez' WHERE val = 'nunez';"
			     "UPDATE schema_version SET version = 3",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Immunization", "patient", NULL, "Patient/v3", "im1");
	expect_ids(f->s, "Immunization", "date", NULL, "2020", "im1");
	expect_ids(f->s, "Patient", "family", NULL, "nunez", "v3");
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 7);
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
}

/* Branches of a definition the table cannot express as a path are indexed by
 * evaluating their FHIRPath expression: Patient.deceased (a Boolean
 * expression over a choice) and relatedArtifact.where(type=…).resource (a
 * filter on an inner element, a canonical). */
static void fhirpath_branches_are_indexed(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "alive", "{\"resourceType\":\"Patient\",\"active\":true}");
	put(f->s, "Patient", "no", "{\"resourceType\":\"Patient\",\"deceasedBoolean\":false}");
	put(f->s, "Patient", "yes", "{\"resourceType\":\"Patient\",\"deceasedBoolean\":true}");
	put(f->s, "Patient", "when", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2015-02-14T13:42:00+10:00\"}");
	expect_ids(f->s, "Patient", "deceased", NULL, "true", "when,yes");
	expect_ids(f->s, "Patient", "deceased", NULL, "false", "alive,no");
	put(f->s, "Library", "l1",
	    "{\"resourceType\":\"Library\",\"status\":\"active\",\"type\":{\"text\":\"x\"},\"relatedArtifact\":["
	    "{\"type\":\"depends-on\",\"resource\":\"Library/base\"},"
	    "{\"type\":\"predecessor\",\"resource\":\"http://example.org/Library/old|1.0\"},"
	    "{\"type\":\"documentation\",\"resource\":\"Library/doc\"}]}");
	expect_ids(f->s, "Library", "depends-on", NULL, "Library/base", "l1");
	expect_ids(f->s, "Library", "predecessor", NULL, "http://example.org/Library/old|1.0", "l1");
	expect_ids(f->s, "Library", "composed-of", "missing", "true", "l1");
	expect_ids(f->s, "Library", "successor", NULL, "Library/doc", "");
	expect_ids(f->s, "Library", "depends-on", NULL, "Library/doc", "");
	put(f->s, "Library", "l2",
	    "{\"resourceType\":\"Library\",\"status\":\"active\",\"type\":{\"text\":\"x\"},\"relatedArtifact\":["
	    "{\"type\":\"composed-of\",\"resource\":\"Library/base\"}]}");
	expect_ids(f->s, "Library", "depends-on", NULL, "Library/base", "l1");
	expect_ids(f->s, "Library", "composed-of", NULL, "Library/base", "l2");

	/* a database of schema version 5 had none of these rows: reindexed when opened */
	store_close(f->s);
	f->s = NULL;
	char path[200];
	snprintf(path, sizeof path, "%s/store.db", f->data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DELETE FROM idx WHERE param IN ('deceased', 'composed-of');"
				      "UPDATE schema_version SET version = 5",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Patient", "deceased", NULL, "true", "when,yes");
	expect_ids(f->s, "Library", "composed-of", NULL, "Library/base", "l2");
}

/* A store of schema version 6 had no rows for the resource a Bundle embeds:
 * reindexed when opened. */
static void version_6_database_indexes_embedded_resources(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Bundle", "m1",
	    "{\"resourceType\":\"Bundle\",\"type\":\"message\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"MessageHeader\",\"eventCoding\":{\"code\":\"admin-notify\"},\"source\":{\"endpoint\":\"urn:x\"}}}]}");
	expect_ids(f->s, "Bundle", "message.event", NULL, "admin-notify", "m1");
	store_close(f->s);
	f->s = NULL;
	char path[200];
	snprintf(path, sizeof path, "%s/store.db", f->data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "DELETE FROM idx WHERE param LIKE 'message.%'; UPDATE schema_version SET version = 6",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Bundle", "message.event", NULL, "admin-notify", "m1");
}

/* The same over PostgreSQL: a database of its schema version 1 is reindexed
 * when opened. */
static void pg_version_1_database_indexes_embedded_resources(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Bundle", "m1",
	    "{\"resourceType\":\"Bundle\",\"type\":\"message\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"MessageHeader\",\"eventCoding\":{\"code\":\"admin-notify\"},\"source\":{\"endpoint\":\"urn:x\"}}}]}");
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(
		pg_server_sql(pg, "DELETE FROM idx WHERE param LIKE 'message.%'; UPDATE cw_schema SET version = 1"), 0);
	char msg[256];
	assert_int_equal(store_open_pg(pg->conninfo, NULL, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Bundle", "message.event", NULL, "admin-notify", "m1");
}

/* A database of PostgreSQL schema 3 (no shared replay cache, no shared
 * export jobs) gets them when opened; one of a newer schema than this
 * build knows is refused. */
static void pg_version_3_database_gets_the_shared_tables(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pg_server_sql(pg, "DROP TABLE assertion_seen; DROP TABLE bulk_chunk; DROP TABLE bulk_job;"
					   " UPDATE cw_schema SET version = 3"),
			 0);
	char msg[256];
	assert_int_equal(store_open_pg(pg->conninfo, NULL, &f->s, msg, sizeof msg), 0);
	struct store_error err;
	assert_int_equal(store_replay_claim(f->s, "iss", "j", 2000, 1000, &err), STORE_OK);
	assert_int_equal(store_replay_claim(f->s, "iss", "j", 2000, 1000, &err), STORE_CONFLICT);
	assert_true(store_jobs_shared(f->s));
	assert_int_equal(store_jobs(f->s)->add(f->s, "job-1", "{}", 1000, 10, &err), STORE_OK);
	assert_int_equal(store_jobs(f->s)->remove(f->s, "job-1", &err), STORE_OK);
	assert_int_equal(pg_server_sql(pg, "DO $$ BEGIN IF (SELECT version FROM cw_schema) <> 6 THEN"
					   " RAISE EXCEPTION 'not 6'; END IF; END $$"),
			 0);
	assert_int_equal(pg_server_sql(pg, "UPDATE cw_schema SET version = 7"), 0);
	struct store *newer = NULL;
	assert_int_not_equal(store_open_pg(pg->conninfo, NULL, &newer, msg, sizeof msg), 0);
	assert_non_null(strstr(msg, "schema version 7, written by a newer Crosswalk"));
	assert_null(newer);
	assert_int_equal(pg_server_sql(pg, "UPDATE cw_schema SET version = 6"), 0);
}

static void say_into(void *ctx, const char *line)
{
	size_t n = strlen(ctx);
	snprintf((char *)ctx + n, 8192 - n, "%s\n", line);
}

/* A database of PostgreSQL schema 5 holds access records with no chain:
 * opened by this build, they are chained in the order they were stored
 * (the check finds the chain whole), and later records follow them. */
static void pg_version_5_database_chains_its_access_records(void **state)
{
	struct fixture *f = *state;
	put(f->s, "AuditEvent", "a1", "{\"resourceType\":\"AuditEvent\",\"recorded\":\"2026-01-01T00:00:00Z\"}");
	put(f->s, "AuditEvent", "a2", "{\"resourceType\":\"AuditEvent\",\"recorded\":\"2026-01-01T00:00:01Z\"}");
	put(f->s, "AuditEvent", "a3", "{\"resourceType\":\"AuditEvent\",\"recorded\":\"2026-01-01T00:00:02Z\"}");
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pg_server_sql(pg,
				       "DROP TRIGGER cw_audit_link ON version; DROP TRIGGER cw_audit_keep ON version;"
				       " DROP TRIGGER cw_audit_keep ON resource; DROP TABLE audit_chain, audit_pending;"
				       " UPDATE cw_schema SET version = 5"),
			 0);
	char msg[256], out[8192] = "";
	assert_int_equal(store_open_pg(pg->conninfo, NULL, &f->s, msg, sizeof msg), 0);
	put(f->s, "AuditEvent", "a4", "{\"resourceType\":\"AuditEvent\",\"recorded\":\"2026-01-01T00:00:03Z\"}");
	store_close(f->s); /* links what is left */
	f->s = NULL;
	assert_int_equal(store_check_pg(pg->conninfo, 0, say_into, out, msg, sizeof msg), 0);
	assert_non_null(strstr(out, "access records chained: 4, 0 findings; head 4 "));
	assert_non_null(strstr(out, "; 0 waiting to be chained"));
	assert_int_equal(pg_server_sql(pg,
				       "DO $$ BEGIN IF (SELECT string_agg(v.id, ',' ORDER BY a.seq) FROM audit_chain a"
				       " JOIN version v ON v.seq = a.vseq) <> 'a1,a2,a3,a4' THEN"
				       " RAISE EXCEPTION 'out of order'; END IF; END $$"),
			 0);
}

/* The creates' shape of the PostgreSQL schema: no foreign keys on
 * version.rid and idx.rid, and idx_date only over the rows with a range.
 * A database created with the older shape (schema 4 before it) is given it
 * when opened; date searches answer the same. */
static const char creates_shape_sql[] =
	"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND conrelid IN"
	" ('version'::regclass, 'idx'::regclass)) THEN RAISE EXCEPTION 'a foreign key is left'; END IF;"
	" IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = 'idx_date'::regclass AND indpred IS NOT NULL)"
	" THEN RAISE EXCEPTION 'idx_date is not partial'; END IF; END $$";

static void pg_database_gets_the_creates_shape(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "p1", "{\"resourceType\":\"Patient\",\"birthDate\":\"1970-02-03\"}");
	put(f->s, "Patient", "p2", "{\"resourceType\":\"Patient\",\"birthDate\":\"1990-05-06\",\"gender\":\"male\"}");
	assert_int_equal(pg_server_sql(pg, creates_shape_sql), 0); /* a new database */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(pg_server_sql(pg, "ALTER TABLE version ADD FOREIGN KEY (rid) REFERENCES resource(rid);"
					   "ALTER TABLE idx ADD FOREIGN KEY (rid) REFERENCES resource(rid);"
					   "DROP INDEX idx_date; CREATE INDEX idx_date ON idx(param, lo)"),
			 0);
	assert_int_not_equal(pg_server_sql(pg, creates_shape_sql), 0); /* the older shape */
	char msg[256];
	assert_int_equal(store_open_pg(pg->conninfo, NULL, &f->s, msg, sizeof msg), 0);
	assert_int_equal(pg_server_sql(pg, creates_shape_sql), 0);
	put(f->s, "Patient", "p3", "{\"resourceType\":\"Patient\",\"birthDate\":\"1980\"}");
	expect_ids(f->s, "Patient", "birthdate", NULL, "lt1980", "p1");
	expect_ids(f->s, "Patient", "birthdate", NULL, "ge1980", "p2,p3");
	expect_ids(f->s, "Patient", "birthdate", NULL, "ne1980", "p1,p2");
	expect_ids(f->s, "Patient", "birthdate", "missing", "false", "p1,p2,p3");
	expect_ids(f->s, "Patient", "gender", "missing", "true", "p1,p3");
	/* opened again: nothing left to do, and no error */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open_pg(pg->conninfo, NULL, &f->s, msg, sizeof msg), 0);
	expect_ids(f->s, "Patient", "birthdate", NULL, "1990-05", "p2");
}

/* Bundle's composition and message (Bundle.entry[0].resource): the first
 * entry's Composition or MessageHeader is indexed inside the Bundle, so its
 * own parameters are searched by chaining, also on to stored resources. */
static void search_bundle_composition_and_message(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "p1", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Marks\"}]}");
	put(f->s, "Patient", "p2", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Nash\"}]}");
	static const char doc[] =
		"{\"resourceType\":\"Bundle\",\"type\":\"document\",\"entry\":[{\"fullUrl\":\"urn:uuid:1\","
		"\"resource\":"
		"{\"resourceType\":\"Composition\",\"id\":\"%s\",\"status\":\"final\",\"type\":{\"coding\":[{"
		"\"system\":"
		"\"http://loinc.org\",\"code\":\"%s\"}]},\"subject\":{\"reference\":\"Patient/"
		"%s\"},\"date\":\"2024-03-01\","
		"\"author\":[{\"display\":\"A\"}],\"title\":\"%s\"}},{\"resource\":{\"resourceType\":\"Patient\","
		"\"id\":\"x\"}}]}";
	char text[1024];
	snprintf(text, sizeof text, doc, "c1", "18842-5", "p1", "Discharge summary");
	put(f->s, "Bundle", "d1", text);
	snprintf(text, sizeof text, doc, "c2", "11488-4", "p2", "Consult note");
	put(f->s, "Bundle", "d2", text);
	put(f->s, "Bundle", "m1",
	    "{\"resourceType\":\"Bundle\",\"type\":\"message\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"MessageHeader\",\"id\":\"h1\",\"eventCoding\":{\"system\":\"http://example.org/events\",\"code\":"
	    "\"admin-notify\"},\"source\":{\"endpoint\":\"http://example.org/src\"},\"focus\":[{\"reference\":"
	    "\"Patient/p1\"}]}}]}");
	/* a Composition without an id is there all the same */
	put(f->s, "Bundle", "d3",
	    "{\"resourceType\":\"Bundle\",\"type\":\"document\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"Composition\",\"status\":\"final\",\"type\":{\"text\":\"t\"},\"date\":\"2023\",\"author\":"
	    "[{\"display\":\"a\"}],\"title\":\"Untitled\"}}]}");
	/* a first entry of another type is no composition or message */
	put(f->s, "Bundle", "c1",
	    "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":{\"resourceType\":"
	    "\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Marks\"}]}}]}");

	expect_ids(f->s, "Bundle", "composition.subject", NULL, "Patient/p1", "d1");
	expect_ids(f->s, "Bundle", "composition.patient", NULL, "p2", "d2");
	expect_ids(f->s, "Bundle", "composition.type", NULL, "http://loinc.org|11488-4", "d2");
	expect_ids(f->s, "Bundle", "composition.title", NULL, "discharge", "d1");
	expect_ids(f->s, "Bundle", "composition.date", NULL, "ge2024-03", "d1,d2");
	expect_ids(f->s, "Bundle", "composition._id", NULL, "c2", "d2");
	/* :not also finds what has no such value: the Bundles without a composition */
	expect_ids(f->s, "Bundle", "composition.status", "not", "final", "c1,m1");
	expect_ids(f->s, "Bundle", "composition.title", "missing", "false", "d1,d2,d3");
	/* on through the Composition's reference to the stored Patient */
	expect_ids(f->s, "Bundle", "composition.subject", "Patient.name", "marks", "d1");
	expect_ids(f->s, "Bundle", "composition.patient.name", NULL, "nash", "d2");
	expect_ids(f->s, "Bundle", "composition", "Composition.subject", "Patient/p2", "d2");
	/* the parameter itself: the Composition's id, and whether there is one */
	expect_ids(f->s, "Bundle", "composition", NULL, "Composition/c1", "d1");
	expect_ids(f->s, "Bundle", "composition", "missing", "false", "d1,d2,d3");
	expect_ids(f->s, "Bundle", "composition", "missing", "true", "c1,m1");
	expect_ids(f->s, "Bundle", "message", "missing", "false", "m1");
	expect_ids(f->s, "Bundle", "message.focus", NULL, "Patient/p1", "m1");
	expect_ids(f->s, "Bundle", "message.event", NULL, "admin-notify", "m1");
	expect_ids(f->s, "Bundle", "message.focus:Patient.name", NULL, "marks", "m1");
	expect_ids(f->s, "Bundle", "composition.subject", NULL, "Patient/x", "");
	/* the Composition inside a Bundle is no stored Composition */
	expect_ids(f->s, "Composition", "subject", NULL, "Patient/p1", "");
	char got[256];
	assert_int_equal(find(f->s, "Bundle", "message.subject", NULL, "Patient/p1", got, sizeof got), STORE_INVALID);
	assert_int_equal(find(f->s, "Bundle", "composition", "Patient.name", "marks", got, sizeof got), STORE_INVALID);

	/* the index follows the Bundle's versions */
	snprintf(text, sizeof text, doc, "c1", "18842-5", "p2", "Discharge summary");
	cJSON *r = J(text);
	struct store_error err;
	assert_int_equal(store_update(f->s, "Bundle", "d1", r, NULL, NULL, NULL, &err), STORE_OK);
	cJSON_Delete(r);
	expect_ids(f->s, "Bundle", "composition.subject", NULL, "Patient/p1", "");
	expect_ids(f->s, "Bundle", "composition.subject", NULL, "Patient/p2", "d1,d2");
	assert_int_equal(store_delete(f->s, "Bundle", "d2", NULL, &err), STORE_OK);
	expect_ids(f->s, "Bundle", "composition.patient.name", NULL, "nash", "d1");
}

/* --- the read cache (rcache.h) and the directory lock --------------------------------------- */

/* The version store_read_text answers for type/id, or -1 (status in *st). */
static int64_t text_version(struct store *s, const char *type, const char *id, enum store_status *st)
{
	struct store_text t;
	struct store_error err;
	*st = store_read_text(s, type, id, NULL, &t, &err);
	if (*st != STORE_OK)
		return -1;
	if (!strstr(t.text, "\"resourceType\""))
		fail_msg("read_text gave something else: %s", t.text);
	free(t.text);
	return t.version;
}

/* A store of schema version 3 (no checksums) gets one for every version
 * when opened; from then on a version altered behind the store's back is
 * refused on every read path (STORE_CORRUPT naming it), while the rest is
 * served. */
static void version_3_database_gets_checksums(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Patient", "a", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Alpha\"}]}");
	cJSON *v2 = J("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Alpha2\"}]}");
	assert_int_equal(store_update(f->s, "Patient", "a", v2, NULL, NULL, NULL, NULL), STORE_OK);
	cJSON_Delete(v2);
	put(f->s, "Patient", "b", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Beta\"}]}");
	store_close(f->s);
	f->s = NULL;
	char path[200];
	snprintf(path, sizeof path, "%s/store.db", f->data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE version DROP COLUMN sum; UPDATE schema_version SET version = 3",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	char msg[256];
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	cJSON *res = NULL;
	struct store_error err;
	assert_int_equal(store_read(f->s, "Patient", "a", &res, &err), STORE_OK);
	cJSON_Delete(res);
	assert_int_equal(store_vread(f->s, "Patient", "a", "1", &res, &err), STORE_OK);
	cJSON_Delete(res);
	store_close(f->s);
	f->s = NULL;
	/* altered behind the store's back: version 1 of a, and b */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"UPDATE version SET body = replace(body, 'Alpha\"', 'Alpho\"') WHERE id = 'a' AND version = 1;"
			"UPDATE version SET body = replace(body, 'Beta', 'Bet0') WHERE id = 'b'",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	assert_int_equal(store_read(f->s, "Patient", "a", &res, &err), STORE_OK);
	cJSON_Delete(res);
	assert_int_equal(store_vread(f->s, "Patient", "a", "1", &res, &err), STORE_CORRUPT);
	assert_null(res);
	assert_non_null(strstr(err.message, "Patient/a version 1 failed its integrity check"));
	assert_int_equal(store_read(f->s, "Patient", "b", &res, &err), STORE_CORRUPT);
	assert_null(res);
	struct store_text t;
	assert_int_equal(store_read_text(f->s, "Patient", "b", NULL, &t, &err), STORE_CORRUPT);
	assert_null(t.text);
	struct store_page page;
	assert_int_equal(store_history(f->s, "Patient", "a", STORE_ALL_TIME, 10, 0, 0, &page, &err), STORE_CORRUPT);
	store_page_release(&page);
	struct store_search_param sp = {.name = "family", .value = "Bet"};
	struct store_search q = {.params = &sp, .n_params = 1, .count = 10};
	assert_int_equal(store_search(f->s, "Patient", &q, &page, &err), STORE_CORRUPT);
	assert_non_null(strstr(err.message, "Patient/b version 1"));
	store_page_release(&page);
	assert_true(store_corrupt());
	assert_int_equal(store_status_http(STORE_CORRUPT), 500);
}

static void read_cache_follows_writes(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	enum store_status st;
	put(f->s, "Patient", "c1", "{\"resourceType\":\"Patient\",\"gender\":\"female\"}");
	unsigned long hits = metrics_counter_get(METRICS_READ_CACHE_HIT);
	unsigned long misses = metrics_counter_get(METRICS_READ_CACHE_MISS);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 1);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 1);
	assert_int_equal(metrics_counter_get(METRICS_READ_CACHE_MISS), misses + 1);
	assert_int_equal(metrics_counter_get(METRICS_READ_CACHE_HIT), hits + 1);

	/* every kind of write is seen by the next read */
	cJSON *r = J("{\"resourceType\":\"Patient\",\"gender\":\"male\"}");
	assert_int_equal(store_update(f->s, "Patient", "c1", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 2);
	struct store_text t;
	assert_int_equal(store_read_text(f->s, "Patient", "c1", NULL, &t, &err), STORE_OK);
	assert_non_null(strstr(t.text, "\"male\""));
	assert_int_equal(strlen(t.last_updated), 24);
	assert_int_equal(t.last_updated[23], 'Z');
	free(t.text);
	assert_int_equal(store_delete(f->s, "Patient", "c1", NULL, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), -1);
	assert_int_equal(st, STORE_GONE);
	assert_int_equal(store_create(f->s, "Patient", r, "c1", NULL, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 4);
	/* a vread of an older version is not the cached current one */
	assert_int_equal(store_read_text(f->s, "Patient", "c1", "2", &t, &err), STORE_OK);
	assert_int_equal(t.version, 2);
	free(t.text);

	/* a transaction: its own reads see its writes, nobody keeps them after a
	 * rollback, and a commit is seen at once */
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Patient", "c1", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 5);
	assert_int_equal(store_rollback(f->s, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 4);
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Patient", "c1", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Patient", "c1", r, NULL, NULL, NULL, &err), STORE_OK);
	assert_int_equal(store_commit(f->s, &err), STORE_OK);
	assert_int_equal(text_version(f->s, "Patient", "c1", &st), 6);
	cJSON_Delete(r);
}

struct reader_peek {
	struct store *s;
	int64_t version;
};

static void *peek_text(void *p)
{
	struct reader_peek *k = p;
	enum store_status st;
	k->version = text_version(k->s, "Patient", "c2", &st);
	return NULL;
}

static void read_cache_and_open_transactions(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Patient", "c2", "{\"resourceType\":\"Patient\"}");
	cJSON *r = J("{\"resourceType\":\"Patient\",\"active\":true}");
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_update(f->s, "Patient", "c2", r, NULL, NULL, NULL, &err), STORE_OK);
	/* another thread reads (and caches) the committed version meanwhile */
	struct reader_peek k = {.s = f->s};
	pthread_t t;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&t, NULL, peek_text, &k), 0);
		pthread_join(t, NULL);
		assert_int_equal(k.version, 1);
	}
	assert_int_equal(store_commit(f->s, &err), STORE_OK);
	assert_int_equal(pthread_create(&t, NULL, peek_text, &k), 0);
	pthread_join(t, NULL);
	assert_int_equal(k.version, 2);
	cJSON_Delete(r);
}

#define CACHE_WRITERS 3
#define CACHE_READERS 3
#define CACHE_WRITES 150

struct coherence {
	struct store *s;
	_Atomic int64_t acked;   /* highest version whose write returned */
	_Atomic int writers_left;
	_Atomic long stale, reads, failures;
};

static void *cache_writer(void *p)
{
	struct coherence *c = p;
	cJSON *r = J("{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\"}");
	for (int i = 0; i < CACHE_WRITES; i++) {
		cJSON *out = NULL;
		struct store_error err;
		if (store_update(c->s, "Goal", "hot", r, NULL, NULL, &out, &err) != STORE_OK) {
			c->failures++;
			continue;
		}
		int64_t v = strtoll(str_at(out, "meta", "versionId"), NULL, 10);
		cJSON_Delete(out);
		int64_t cur = c->acked;
		while (v > cur && !atomic_compare_exchange_weak(&c->acked, &cur, v))
			;
	}
	cJSON_Delete(r);
	c->writers_left--;
	return NULL;
}

static void *cache_reader(void *p)
{
	struct coherence *c = p;
	while (c->writers_left > 0) {
		int64_t floor = c->acked;
		enum store_status st;
		int64_t v = text_version(c->s, "Goal", "hot", &st);
		c->reads++;
		if (v < floor)
			c->stale++;
	}
	return NULL;
}

/* A read that starts after a write was acknowledged never answers an older
 * version, whatever the interleaving of cache fills and invalidations. */
static void read_cache_never_goes_back(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Goal", "hot", "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"proposed\"}");
	struct coherence c = {.s = f->s, .acked = 1, .writers_left = CACHE_WRITERS};
	pthread_t t[CACHE_WRITERS + CACHE_READERS];
	for (int i = 0; i < CACHE_WRITERS + CACHE_READERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, i < CACHE_WRITERS ? cache_writer : cache_reader, &c), 0);
	for (int i = 0; i < CACHE_WRITERS + CACHE_READERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(c.failures, 0);
	assert_int_equal(c.stale, 0);
	assert_true(c.reads > 0);
	enum store_status st;
	assert_int_equal(text_version(f->s, "Goal", "hot", &st), 1 + CACHE_WRITERS * CACHE_WRITES);
}

static void rcache_bounds_and_tickets(void **state)
{
	(void)state;
	assert_null(rcache_new(0));
	struct rcache *c = rcache_new(256 * 1024);
	assert_non_null(c);
	char body[600];
	memset(body, 'x', sizeof body - 1);
	body[sizeof body - 1] = '\0';
	struct store_text t = {.text = body, .len = sizeof body - 1, .version = 7};
	snprintf(t.last_updated, sizeof t.last_updated, "2026-01-01T00:00:00.000Z");
	uint64_t ticket;
	struct store_text got;
	char id[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof id, "r%d", i);
		assert_false(rcache_get(c, "Basic", id, &got, &ticket));
		rcache_put(c, "Basic", id, ticket, &t);
	}
	struct rcache_stats stats;
	rcache_stats(c, &stats);
	assert_true(stats.bytes <= 256 * 1024);
	assert_true(stats.entries > 100 && stats.entries < 2000);
	/* the most recent survive, the oldest went first */
	assert_true(rcache_get(c, "Basic", "r1999", &got, &ticket));
	assert_int_equal(got.version, 7);
	assert_int_equal(got.len, sizeof body - 1);
	assert_string_equal(got.last_updated, "2026-01-01T00:00:00.000Z");
	free(got.text);
	assert_false(rcache_get(c, "Basic", "r0", &got, &ticket));
	/* keys are type and id, not their concatenation */
	assert_false(rcache_get(c, "Basicr", "1999", &got, &ticket));
	/* an invalidation voids the tickets taken before it */
	assert_false(rcache_get(c, "Basic", "late", &got, &ticket));
	rcache_invalidate(c, "Basic", "late");
	rcache_put(c, "Basic", "late", ticket, &t);
	assert_false(rcache_get(c, "Basic", "late", &got, &ticket));
	rcache_put(c, "Basic", "late", ticket, &t);
	assert_true(rcache_get(c, "Basic", "late", &got, &ticket));
	free(got.text);
	rcache_invalidate(c, "Basic", "late");
	assert_false(rcache_get(c, "Basic", "late", &got, &ticket));
	/* a text larger than a 64th of the cache is never kept */
	size_t big = 256 * 1024 / 64 + 1;
	char *large = malloc(big + 1);
	memset(large, 'y', big);
	large[big] = '\0';
	struct store_text tl = {.text = large, .len = big, .version = 1};
	assert_false(rcache_get(c, "Basic", "large", &got, &ticket)); /* a valid ticket for it */
	rcache_put(c, "Basic", "large", ticket, &tl);
	assert_false(rcache_get(c, "Basic", "large", &got, &ticket));
	/* while a smaller one with the same ticket is kept */
	tl.len = 1000;
	rcache_put(c, "Basic", "large", ticket, &tl);
	assert_true(rcache_get(c, "Basic", "large", &got, &ticket));
	assert_int_equal(got.len, 1000);
	free(got.text);
	free(large);
	rcache_clear(c);
	rcache_stats(c, &stats);
	assert_int_equal(stats.entries, 0);
	assert_int_equal(stats.bytes, 0);
	rcache_free(c);
}

static void one_writer_per_directory(void **state)
{
	struct fixture *f = *state;
	char msg[256];
	struct store *second = NULL;
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &second, msg, sizeof msg), -1);
	assert_null(second);
	assert_non_null(strstr(msg, "in use by another process"));
	/* a shared opener reads beside it and cannot write */
	put(f->s, "Patient", "p1", "{\"resourceType\":\"Patient\"}");
	assert_int_equal(store_open_sqlite(f->data, STORE_OPEN_SHARED, 0, &second, msg, sizeof msg), 0);
	assert_null(second->cache);
	struct store_error err;
	enum store_status st;
	assert_int_equal(text_version(second, "Patient", "p1", &st), 1);
	cJSON *r = J("{\"resourceType\":\"Patient\"}");
	assert_int_equal(store_create(second, "Patient", r, "p2", NULL, &err), STORE_INVALID);
	assert_int_equal(store_update(second, "Patient", "p1", r, NULL, NULL, NULL, &err), STORE_INVALID);
	assert_int_equal(store_delete(second, "Patient", "p1", NULL, &err), STORE_INVALID);
	assert_int_equal(store_begin(second, &err), STORE_INVALID);
	assert_int_equal(store_outbox_add(second, "Patient", "p1", 1, false, &err), STORE_INVALID);
	store_close(second);
	cJSON_Delete(r);
	/* once the writer closes, the directory can be opened again */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open_sqlite(f->data, 0, 0, &f->s, msg, sizeof msg), 0);
	assert_null(f->s->cache);
	assert_int_equal(text_version(f->s, "Patient", "p1", &st), 1);
}

/* --- the parameter table and its helpers -------------------------------------------------- */

static void parameter_table_and_dates(void **state)
{
	(void)state;
	size_t n = 0;
	const struct search_param_def *d = search_params_find("Observation", "date", &n);
	assert_non_null(d);
	assert_int_equal(n, 1);
	assert_string_equal(d->path, "effective[x]");
	assert_int_equal(d->kind, SEARCH_PARAM_DATE);
	d = search_params_find("Goal", "patient", &n);
	assert_non_null(d);
	assert_string_equal(d->path, "subject");
	assert_string_equal(d->target, "Patient");
	d = search_params_find("Condition", "onset-date", &n);
	assert_int_equal(n, 2); /* onsetDateTime | onsetPeriod */
	d = search_params_find("Claim", "_id", &n);
	assert_non_null(d);
	assert_string_equal(d->type, "Resource");
	assert_null(search_params_find("Patient", "nonsense", &n));
	static const char *const types[] = {"Patient", "Observation", "Condition", "Goal", "CarePlan", "Encounter",
					    "Procedure", "QuestionnaireResponse", "Practitioner", "PractitionerRole",
					    "Claim", "Coverage"};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (!search_params_find(types[i], "identifier", &n) && !search_params_find(types[i], "status", &n) &&
		    !search_params_find(types[i], "name", &n))
			fail_msg("%s has no identifier, status or name parameter", types[i]);

	/* every R4 resource type: the table is sorted (the lookups search it
	 * by halves) and each type has the resource-level parameters, most
	 * their own */
	for (size_t i = 1; i < search_params_count; i++) {
		int c = strcmp(search_params_data[i - 1].type, search_params_data[i].type);
		if (c > 0 || (c == 0 && strcmp(search_params_data[i - 1].code, search_params_data[i].code) > 0))
			fail_msg("row %zu (%s %s) is out of order", i, search_params_data[i].type,
				 search_params_data[i].code);
	}
	size_t nres = 0, own = 0;
	for (size_t i = 0; i < model_ntypes; i++) {
		const struct model_type *t = &model_types[i];
		if (t->kind != MODEL_RESOURCE || t->abstract)
			continue;
		nres++;
		assert_non_null(search_params_find(t->name, "_lastUpdated", &n));
		for (size_t k = 0; k < search_params_count; k++)
			if (!strcmp(search_params_data[k].type, t->name)) {
				own++;
				break;
			}
	}
	assert_int_equal(nres, 146);
	assert_true(own >= 130);
	/* the branches evaluated with FHIRPath: every one compiles */
	size_t nfp = 0;
	size_t compiled = search_params_fhirpath_rows(&nfp);
	assert_int_equal(compiled, nfp);
	assert_int_equal(nfp, 48); /* 46 values, and Bundle's composition and message */
	d = search_params_find("Patient", "deceased", &n);
	assert_non_null(d);
	assert_null(d->path);
	assert_string_equal(d->expr, "Patient.deceased.exists() and Patient.deceased != false");
	static const char *const patient_of[] = {"Immunization",     "MedicationRequest",  "ExplanationOfBenefit",
						 "DiagnosticReport", "AllergyIntolerance", "ImagingStudy"};
	for (size_t i = 0; i < sizeof patient_of / sizeof patient_of[0]; i++) {
		d = search_params_find(patient_of[i], "patient", &n);
		if (!d || d->kind != SEARCH_PARAM_REFERENCE)
			fail_msg("%s has no patient parameter", patient_of[i]);
		assert_true(search_params_targets_has(d, "Patient"));
		assert_int_equal(search_params_targets_count(d), 1);
	}
	/* targets from the definition's target list */
	d = search_params_find("Claim", "patient", &n);
	assert_null(d->target); /* no resolve() in the expression */
	assert_string_equal(d->targets, "Patient");
	d = search_params_find("Observation", "subject", &n);
	assert_string_equal(d->targets, "Device|Group|Location|Patient");
	assert_int_equal(search_params_targets_count(d), 4);
	assert_false(search_params_targets_has(d, "Practitioner"));
	assert_true(search_params_targets_has(d, "Group"));
	assert_false(search_params_targets_has(d, "Grou"));

	/* the folding of string search */
	static const char *const folds[][2] = {
		{"Zoë Núñez", "zoe nunez"},
		{"STRASSE Straße", "strasse strasse"},
		{"Ἀθῆναι", "αθηναι"},
		{"İstanbul", "istanbul"},
		{"a\xcc\x81", "a"},
		{"bad \xff\xc3", "bad \xff\xc3"},
		{"東京", "東京"},
		{"ǅ", "ǆ"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof folds / sizeof folds[0]; i++) {
		char *got = fold_text(folds[i][0]);
		assert_non_null(got);
		if (strcmp(got, folds[i][1]) != 0)
			fail_msg("fold_text(%s) = %s, want %s", folds[i][0], got, folds[i][1]);
		free(got);
	}

	int64_t lo, hi;
	assert_true(search_params_date_range("1970-01-01", &lo, &hi));
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 86400000);
	assert_true(search_params_date_range("2024", &lo, &hi));
	assert_int_equal(hi - lo, INT64_C(366) * 86400000); /* leap year */
	assert_true(search_params_date_range("2023-02", &lo, &hi));
	assert_int_equal(hi - lo, INT64_C(28) * 86400000);
	assert_true(search_params_date_range("1970-01-01T01:00:00+01:00", &lo, &hi));
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 1000);
	assert_true(search_params_date_range("1970-01-01T00:01", &lo, &hi));
	assert_int_equal(lo, 60000);
	assert_int_equal(hi, 120000);
	assert_true(search_params_date_range("1970-01-01T00:00:00.5Z", &lo, &hi));
	assert_int_equal(lo, 500);
	assert_int_equal(hi, 501);
	assert_true(search_params_date_range("1969-12-31", &lo, &hi));
	assert_int_equal(lo, -86400000);
	static const char *const bad[] = {"2023-02-29", "2024-13", "24", "2024-1-01", "2024-01-01T25:00",
					  "2024-01-01T10:00:00+1", "2024-01-01x", "", "2024-01-01T10:00:00."};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (search_params_date_range(bad[i], &lo, &hi))
			fail_msg("'%s' accepted as a date", bad[i]);
	char t[65], id[65];
	assert_true(search_params_split_reference("http://h/fhir/Patient/a1/_history/2", t, sizeof t, id, sizeof id));
	assert_string_equal(t, "Patient");
	assert_string_equal(id, "a1");
	assert_false(search_params_split_reference("urn:uuid:1234", t, sizeof t, id, sizeof id));
	assert_false(search_params_split_reference("#contained", t, sizeof t, id, sizeof id));
	assert_false(search_params_split_reference("patient/a1", t, sizeof t, id, sizeof id));
}

/* Queued writes (store_submit): each one's done runs once, after which its
 * outputs hold; a failing write of a group fails alone; one inside this
 * thread's transaction is refused; after store_drain a submission is
 * refused with STORE_BUSY and done never runs. */
static void queued_writes_are_called_back(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	cJSON *p1 = J("{\"resourceType\":\"Patient\",\"id\":\"q1\"}");
	assert_int_equal(store_update(f->s, "Patient", "q1", p1, NULL, NULL, NULL, &err), STORE_OK);
	cJSON_Delete(p1);
	enum { N = 40 };
	static struct sk_queued q[N];
	atomic_int calls = 0;
	for (int i = 0; i < N; i++) {
		memset(&q[i], 0, sizeof q[i]);
		q[i].calls = &calls;
		q[i].w.done = sk_queued_done;
		q[i].w.ctx = &q[i];
		snprintf(q[i].w.type, sizeof q[i].w.type, "Patient");
		if (i == 7) { /* expects version 5 of q1: fails alone */
			q[i].w.kind = STORE_WRITE_UPDATE;
			snprintf(q[i].w.id, sizeof q[i].w.id, "q1");
			q[i].w.resource = J("{\"resourceType\":\"Patient\",\"id\":\"q1\",\"active\":true}");
			assert_int_equal(store_submit(f->s, &q[i].w, "5"), STORE_OK);
		} else {
			q[i].w.kind = STORE_WRITE_CREATE;
			q[i].w.resource = J("{\"resourceType\":\"Patient\",\"active\":false}");
			assert_int_equal(store_submit(f->s, &q[i].w, NULL), STORE_OK);
		}
	}
	for (int i = 0; i < 2000 && atomic_load(&calls) < N; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&calls), N);
	for (int i = 0; i < N; i++) {
		if (i == 7) {
			assert_int_equal(q[i].w.status, STORE_VERSION_MISMATCH);
			assert_null(q[i].w.stored);
		} else {
			assert_int_equal(q[i].w.status, STORE_OK);
			assert_true(q[i].w.created);
			assert_int_equal(q[i].w.version, 1);
			assert_non_null(q[i].w.stored);
			cJSON *got = NULL;
			assert_int_equal(store_read(f->s, "Patient", q[i].w.id, &got, &err), STORE_OK);
			cJSON_Delete(got);
		}
		store_write_release(&q[i].w);
	}
	/* not inside this thread's transaction */
	struct sk_queued t = {.calls = &calls};
	t.w = (struct store_write){.kind = STORE_WRITE_CREATE, .done = sk_queued_done, .ctx = &t};
	snprintf(t.w.type, sizeof t.w.type, "Patient");
	t.w.resource = J("{\"resourceType\":\"Patient\"}");
	assert_int_equal(store_begin(f->s, &err), STORE_OK);
	assert_int_equal(store_submit(f->s, &t.w, NULL), STORE_INVALID);
	assert_int_equal(store_rollback(f->s, &err), STORE_OK);
	/* drained: refused, never called back */
	store_drain(f->s);
	assert_int_equal(store_submit(f->s, &t.w, NULL), STORE_BUSY);
	assert_int_equal(t.w.status, STORE_BUSY);
	store_write_release(&t.w);
	assert_int_equal(atomic_load(&calls), N);
}

/* --- several gateways on one PostgreSQL database ------------------------------------------------ */

/* A second store on the fixture's database: another gateway instance. */
static struct store *second_instance(int64_t lease_ms)
{
	struct store *s = NULL;
	char msg[256];
	struct store_pg_options o = {.lease_ms = lease_ms};
	if (store_open_pg(pg->conninfo, &o, &s, msg, sizeof msg) != 0)
		fail_msg("second instance: %s", msg);
	return s;
}

/* Optimistic updates (read, If-Match the version read) from writers spread
 * over two instances: every increment is kept, each version once. */
static void instances_lose_no_update(void **state)
{
	struct fixture *f = *state;
	struct store *b = second_instance(0);
	put(f->s, "Goal", "counter", "{\"resourceType\":\"Goal\",\"description\":{\"text\":\"0\"}}");
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = i % 2 ? b : f->s, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, write_optimistic, &w[i]), 0);
	}
	int retries = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, WRITES);
		retries += w[i].retries;
	}
	struct store_error err;
	cJSON *out = NULL;
	char want[16];
	for (int k = 0; k < 2; k++) { /* both instances read the same */
		assert_int_equal(store_read(k ? b : f->s, "Goal", "counter", &out, &err), STORE_OK);
		snprintf(want, sizeof want, "%d", WRITERS * WRITES);
		assert_string_equal(str_at(out, "description", "text"), want);
		snprintf(want, sizeof want, "%d", WRITERS * WRITES + 1);
		assert_string_equal(str_at(out, "meta", "versionId"), want);
		cJSON_Delete(out);
	}
	print_message("# %d version mismatches retried across the two instances\n", retries);
	store_close(b);
}

struct cond_create {
	struct store *s;
	enum store_status st;
	bool created;
};

/* The REST layer's conditional create: in one transaction, search the
 * criteria and create only when nothing matches. */
static void *conditional_create(void *p)
{
	struct cond_create *c = p;
	struct store_error err;
	c->st = store_begin(c->s, &err);
	if (c->st != STORE_OK)
		return NULL;
	struct store_search_param sp = {.name = "identifier", .value = "urn:mrn|C-20"};
	struct store_search q = {.params = &sp, .n_params = 1, .count = 0};
	struct store_page page;
	c->st = store_search(c->s, "Patient", &q, &page, &err);
	size_t found = page.total;
	store_page_release(&page);
	if (c->st == STORE_OK && found == 0) {
		cJSON *r = J(
			"{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"C-20\"}]}");
		c->st = store_create(c->s, "Patient", r, NULL, NULL, &err);
		c->created = c->st == STORE_OK;
		cJSON_Delete(r);
	}
	if (c->st == STORE_OK)
		c->st = store_commit(c->s, &err);
	else
		store_rollback(c->s, &err);
	return NULL;
}

/* 20 identical conditional creates spread over two instances make one
 * resource. */
static void instances_create_conditionally_once(void **state)
{
	struct fixture *f = *state;
	struct store *b = second_instance(0);
	enum { N = 20 };
	pthread_t t[N];
	struct cond_create c[N];
	for (int i = 0; i < N; i++) {
		c[i] = (struct cond_create){.s = i % 2 ? b : f->s};
		assert_int_equal(pthread_create(&t[i], NULL, conditional_create, &c[i]), 0);
	}
	int created = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].st, STORE_OK);
		created += c[i].created;
	}
	assert_int_equal(created, 1);
	struct store_search_param sp = {.name = "identifier", .value = "urn:mrn|C-20"};
	struct store_search q = {.params = &sp, .n_params = 1, .count = 0};
	struct store_page page;
	struct store_error err;
	assert_int_equal(store_search(b, "Patient", &q, &page, &err), STORE_OK);
	assert_int_equal(page.total, 1);
	store_page_release(&page);
	store_close(b);
}

/* A write acknowledged on one instance is what the other reads next, every
 * time (no cache holds an older version). */
static void instances_never_read_stale(void **state)
{
	struct fixture *f = *state;
	struct store *b = second_instance(0);
	put(f->s, "Goal", "g", "{\"resourceType\":\"Goal\",\"description\":{\"text\":\"0\"}}");
	struct store_error err;
	for (int i = 1; i <= 100; i++) {
		struct store *w = i % 2 ? f->s : b, *r = i % 2 ? b : f->s;
		char body[128];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Goal\",\"id\":\"g\",\"description\":{\"text\":\"%d\"}}", i);
		cJSON *res = J(body);
		assert_int_equal(store_update(w, "Goal", "g", res, NULL, NULL, NULL, &err), STORE_OK);
		cJSON_Delete(res);
		struct store_text text;
		assert_int_equal(store_read_text(r, "Goal", "g", NULL, &text, &err), STORE_OK);
		assert_int_equal(text.version, i + 1);
		free(text.text);
	}
	store_close(b);
}

/* A write stamped before a bulk export's snapshot and committed after it
 * (store.h's struct store_snapshot): the export up to the snapshot's seq
 * and a later one with _since the snapshot's time together hold it. The
 * window is made wide with the database's own locks: a transaction holds
 * the version table, the snapshot waits for it, and the write, stamped
 * meanwhile, waits behind the snapshot; the snapshot's time is taken
 * after the transaction ends, so after the stamp. */
struct stamp_race {
	struct store *s;
	int go[2];    /* main → the open transaction: commit now */
	int ready[2]; /* the open transaction → main: its version is written */
	struct store_snapshot snap;
	enum store_status snap_st, write_st;
	const char *update_id; /* NULL: a create of a new id (sent with its group whole) */
	cJSON *written;
};

static void *race_open_txn(void *p)
{
	struct stamp_race *r = p;
	struct store_error err;
	char b;
	if (store_begin(r->s, &err) != STORE_OK)
		return NULL;
	cJSON *g = J("{\"resourceType\":\"Goal\",\"description\":{\"text\":\"open\"}}");
	store_create(r->s, "Goal", g, NULL, NULL, &err);
	cJSON_Delete(g);
	if (write(r->ready[1], "w", 1) != 1 || read(r->go[0], &b, 1) != 1)
		b = 0;
	store_commit(r->s, &err);
	return NULL;
}

static void *race_snapshot(void *p)
{
	struct stamp_race *r = p;
	struct store_error err;
	r->snap_st = store_snapshot(r->s, &r->snap, &err);
	return NULL;
}

static void *race_write(void *p)
{
	struct stamp_race *r = p;
	struct store_error err;
	cJSON *o = J("{\"resourceType\":\"Goal\",\"description\":{\"text\":\"raced\"}}");
	if (r->update_id)
		r->write_st = store_update(r->s, "Goal", r->update_id, o, NULL, NULL, &r->written, &err);
	else
		r->write_st = store_create(r->s, "Goal", o, NULL, &r->written, &err);
	cJSON_Delete(o);
	return NULL;
}

/* Waits until n lock requests wait in the database (10 s at most). */
static void wait_for_lock_waiters(int n)
{
	char sql[200];
	snprintf(sql, sizeof sql,
		 "DO $$BEGIN IF (SELECT count(*) FROM pg_locks WHERE NOT granted) < %d THEN RAISE 'not yet'; END IF;"
		 " END$$",
		 n);
	for (int i = 0; i < 200; i++) {
		if (pg_server_sql(pg, sql) == 0)
			return;
		usleep(50000);
	}
	fail_msg("%d lock waiters never came", n);
}

/* Whether an export holds one version: its id and "versionId". */
struct version_seen {
	const char *id;
	char vid[48];
	bool found;
};

static int see_version(void *ctx, const char *id, const char *text, size_t len)
{
	struct version_seen *v = ctx;
	if (strcmp(id, v->id) == 0 && memmem(text, len, v->vid, strlen(v->vid)))
		v->found = true;
	return 0;
}

static void stamp_race(struct store *s, const char *update_id)
{
	struct stamp_race r = {.s = s, .update_id = update_id};
	assert_int_equal(pipe(r.go), 0);
	assert_int_equal(pipe(r.ready), 0);
	pthread_t txn, snap, wr;
	char b;
	assert_int_equal(pthread_create(&txn, NULL, race_open_txn, &r), 0);
	assert_int_equal(read(r.ready[0], &b, 1), 1);
	assert_int_equal(pthread_create(&snap, NULL, race_snapshot, &r), 0);
	wait_for_lock_waiters(1);
	assert_int_equal(pthread_create(&wr, NULL, race_write, &r), 0);
	wait_for_lock_waiters(2);
	usleep(20000); /* the snapshot's time is later than the write's stamp */
	assert_int_equal(write(r.go[1], "c", 1), 1);
	pthread_join(txn, NULL);
	pthread_join(snap, NULL);
	pthread_join(wr, NULL);
	for (int i = 0; i < 2; i++) {
		close(r.go[i]);
		close(r.ready[i]);
	}
	assert_int_equal(r.snap_st, STORE_OK);
	assert_int_equal(r.write_st, STORE_OK);
	const char *id = must(str_at(r.written, "id", NULL));
	struct version_seen first = {.id = id}, since = {.id = id};
	snprintf(first.vid, sizeof first.vid, "\"versionId\":\"%s\"", must(str_at(r.written, "meta", "versionId")));
	memcpy(since.vid, first.vid, sizeof since.vid);
	struct store_error err;
	struct store_export_query q = {.type = "Goal", .upto_seq = r.snap.seq};
	assert_int_equal(store_export_scan(s, &q, see_version, &first, &err), STORE_OK);
	struct store_export_query later = {.type = "Goal", .upto_seq = INT64_MAX, .since = r.snap.time};
	assert_int_equal(store_export_scan(s, &later, see_version, &since, &err), STORE_OK);
	if (!first.found && !since.found)
		fail_msg("%s %s (lastUpdated %s) is in neither export around the snapshot (seq %lld, time %s)", id,
			 first.vid, str_at(r.written, "meta", "lastUpdated"), (long long)r.snap.seq, r.snap.time);
	cJSON_Delete(r.written);
}

static void writes_stamped_before_a_snapshot_are_exported(void **state)
{
	struct fixture *f = *state;
	put(f->s, "Goal", "g-upd", "{\"resourceType\":\"Goal\",\"description\":{\"text\":\"first\"}}");
	/* a create of a new id, its group sent whole: three rounds, as a
	 * committer's first group prepares its statement (which waits for the
	 * table lock too) before it stamps, and there are two committers */
	for (int i = 0; i < 3; i++)
		stamp_race(f->s, NULL);
	stamp_race(f->s, "g-upd"); /* an update: the resource row locked, then written */
}

struct claimer {
	struct store *s;
	int won[64];
};

/* Claims assertions j0 … j63 of issuer "c" once each. */
static void *claim_all(void *p)
{
	struct claimer *c = p;
	for (int i = 0; i < 64; i++) {
		char jti[16];
		snprintf(jti, sizeof jti, "j%d", i);
		c->won[i] = store_replay_claim(c->s, "c", jti, 2000, 1000, NULL) == STORE_OK;
	}
	return NULL;
}

/* The replay cache of client assertions, shared: a claim made through one
 * instance is refused through the other until it expires; claims raced
 * through both are won once each; expired claims are purged. SQLite keeps
 * none (one gateway owns its store). */
static void instances_share_the_replay_cache(void **state)
{
	struct fixture *f = *state;
	struct store *b = second_instance(0);
	assert_true(store_replay_shared(f->s));
	struct store_error err;
	assert_int_equal(store_replay_claim(f->s, "iss", "one", 1100, 1000, &err), STORE_OK);
	assert_int_equal(store_replay_claim(b, "iss", "one", 1100, 1000, &err), STORE_CONFLICT);
	assert_int_equal(store_replay_claim(f->s, "iss", "one", 1100, 1050, &err), STORE_CONFLICT);
	/* by issuer and jti */
	assert_int_equal(store_replay_claim(b, "other", "one", 1100, 1000, &err), STORE_OK);
	/* once expired it may be taken again (its exp now the new one) */
	assert_int_equal(store_replay_claim(b, "iss", "one", 1300, 1101, &err), STORE_OK);
	assert_int_equal(store_replay_claim(f->s, "iss", "one", 1300, 1200, &err), STORE_CONFLICT);
	assert_int_equal(store_replay_claim(b, "", "one", 1300, 1200, &err), STORE_INVALID);

	struct claimer c[4] = {{.s = f->s}, {.s = b}, {.s = f->s}, {.s = b}};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, claim_all, &c[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 64; i++)
		assert_int_equal(c[0].won[i] + c[1].won[i] + c[2].won[i] + c[3].won[i], 1);

	/* b's claim at 1101 purged other/one (exp 1100); iss/one and the 64 are kept */
	assert_int_equal(pg_server_sql(pg, "DO $$ BEGIN IF (SELECT count(*) FROM assertion_seen) <> 65 THEN"
					   " RAISE EXCEPTION 'kept'; END IF; END $$"),
			 0);
	/* an instance purges what expired before its first claim */
	struct store *later = second_instance(0);
	assert_int_equal(store_replay_claim(later, "iss", "late", 5000, 4000, &err), STORE_OK);
	assert_int_equal(pg_server_sql(pg, "DO $$ BEGIN IF (SELECT count(*) FROM assertion_seen) <> 1 THEN"
					   " RAISE EXCEPTION 'kept'; END IF; END $$"),
			 0);
	store_close(later);
	store_close(b);
}

/* The shared outbox: a record taken by one instance is not taken by the
 * other (nor a later record of the same resource) while its lease runs, an
 * unrelated later one is; when the taker dies the record is taken again
 * after the lease, and the dead taker's late settle is refused. */
static void instances_share_the_outbox(void **state)
{
	struct fixture *f = *state;
	struct store *a = second_instance(1000), *b = second_instance(1000);
	struct store_error err;
	assert_int_equal(store_outbox_add(f->s, "Patient", "p1", 1, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Patient", "p1", 2, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Patient", "p2", 1, false, &err), STORE_OK);
	struct outbox_item it, other, p2;
	int64_t now = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	assert_int_equal(store_outbox_next(a, now, &it, &err), STORE_OK);
	assert_string_equal(it.id, "p1");
	assert_int_equal(it.version, 1);
	/* p1 leased to a: b gets the unrelated p2, then nothing (not p1's
	 * version 2 either); neither does a */
	assert_int_equal(store_outbox_next(b, now, &p2, &err), STORE_OK);
	assert_string_equal(p2.id, "p2");
	assert_int_equal(store_outbox_settle(b, p2.oid, -1, 1, 0, NULL, &err), STORE_OK);
	assert_int_equal(store_outbox_next(b, now, &other, &err), STORE_NOT_FOUND);
	assert_int_equal(store_outbox_next(a, now, &other, &err), STORE_NOT_FOUND);
	/* a "dies"; after its lease b takes p1 again */
	struct timespec wait = {1, 300 * 1000 * 1000};
	nanosleep(&wait, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	assert_int_equal(store_outbox_next(b, now, &other, &err), STORE_OK);
	assert_int_equal(other.oid, it.oid);
	/* a's late settle is refused: b's delivery is the one recorded */
	assert_int_equal(store_outbox_settle(a, it.oid, -1, 1, 0, NULL, &err), STORE_NOT_FOUND);
	assert_int_equal(store_outbox_settle(b, other.oid, -1, 1, 0, NULL, &err), STORE_OK);
	assert_int_equal(store_outbox_next(a, now, &it, &err), STORE_OK);
	assert_string_equal(it.id, "p1");
	assert_int_equal(it.version, 2);
	assert_int_equal(store_outbox_settle(a, it.oid, -1, 1, 0, NULL, &err), STORE_OK);
	struct outbox_counts n;
	assert_int_equal(store_outbox_counts(b, &n, &err), STORE_OK);
	assert_int_equal(n.pending, 0);
	store_close(a);
	store_close(b);
}

/* Takes every record store_outbox_next gives now, without settling them:
 * "Type/id/version" of each, comma-joined, into out. */
static void outbox_take_all(struct store *s, char *out, size_t n, struct outbox_item *taken, size_t *ntaken)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct outbox_item it;
	struct store_error err;
	out[0] = '\0';
	*ntaken = 0;
	while (store_outbox_next(s, now, &it, &err) == STORE_OK) {
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s%s/%s/%lld", len ? "," : "", it.type, it.id, (long long)it.version);
		taken[(*ntaken)++] = it;
	}
}

/* Related records wait for the earlier ones (store.h's outbox contract): a
 * later version of a resource, a resource referring to one with an earlier
 * record, and a record of a resource an earlier record refers to, each wait
 * while the earlier one is taken (in flight) or pending for a retry;
 * unrelated records are taken at once. Both backends. */
static void outbox_holds_back_related_records(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Patient", "a", "{\"resourceType\":\"Patient\"}");
	put(f->s, "Patient", "b", "{\"resourceType\":\"Patient\"}");
	put(f->s, "Observation", "oa",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"subject\":{\"reference\":\"http://example.org/fhir/Patient/a/_history/1\"}}");
	put(f->s, "Observation", "ob",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"subject\":{\"reference\":\"Patient/b\"},\"performer\":[{\"reference\":\"#c\"}]}");
	/* in write order: a v1, oa (refers to a), a v2, ob (refers to b), b's
	 * deletion, c (no stored version: refers to nothing) */
	assert_int_equal(store_outbox_add(f->s, "Patient", "a", 1, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Observation", "oa", 1, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Patient", "a", 2, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Observation", "ob", 1, false, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Patient", "b", 1, true, &err), STORE_OK);
	assert_int_equal(store_outbox_add(f->s, "Patient", "c", 1, false, &err), STORE_OK);
	char got[512];
	struct outbox_item taken[8];
	size_t n;
	/* a's first record, ob (b has no earlier record) and the unrelated c;
	 * oa waits for a, a's second record for a's first (and for oa), b's
	 * deletion for ob that refers to b */
	outbox_take_all(f->s, got, sizeof got, taken, &n);
	assert_string_equal(got, "Patient/a/1,Observation/ob/1,Patient/c/1");
	/* a's first goes back for a retry: still pending, so still in the way */
	assert_int_equal(store_outbox_settle(f->s, taken[0].oid, OUTBOX_PENDING, 1, 0, "503", &err), STORE_OK);
	assert_int_equal(store_outbox_settle(f->s, taken[1].oid, -1, 1, 0, NULL, &err), STORE_OK);
	assert_int_equal(store_outbox_settle(f->s, taken[2].oid, -1, 1, 0, NULL, &err), STORE_OK);
	outbox_take_all(f->s, got, sizeof got, taken, &n);
	assert_string_equal(got, "Patient/a/1,Patient/b/1");
	assert_true(taken[1].deleted);
	assert_int_equal(store_outbox_settle(f->s, taken[0].oid, -1, 2, 0, NULL, &err), STORE_OK);
	assert_int_equal(store_outbox_settle(f->s, taken[1].oid, -1, 1, 0, NULL, &err), STORE_OK);
	outbox_take_all(f->s, got, sizeof got, taken, &n);
	assert_string_equal(got, "Observation/oa/1");
	/* a dead letter holds nothing back */
	assert_int_equal(store_outbox_settle(f->s, taken[0].oid, OUTBOX_DEAD, 1, 0, "400", &err), STORE_OK);
	outbox_take_all(f->s, got, sizeof got, taken, &n);
	assert_string_equal(got, "Patient/a/2");
	assert_int_equal(store_outbox_settle(f->s, taken[0].oid, -1, 1, 0, NULL, &err), STORE_OK);
	outbox_take_all(f->s, got, sizeof got, taken, &n);
	assert_string_equal(got, "");
}

/* Queued single writes share transactions: forty submitted together
 * commit in a few groups (one COMMIT, one flush each), and each is answered
 * after its group's commit. A queued write that is to be delivered upstream
 * gets its outbox record with it, a failing one neither. Both backends. */
static void queued_writes_share_commits(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	put(f->s, "Flag", "taken", "{\"resourceType\":\"Flag\",\"status\":\"active\"}");
	enum { N = 40 };
	static struct sk_queued q[N];
	atomic_int calls = 0;
	for (int i = 0; i < N; i++) {
		memset(&q[i], 0, sizeof q[i]);
		q[i].calls = &calls;
		q[i].w.done = sk_queued_done;
		q[i].w.ctx = &q[i];
		q[i].w.kind = STORE_WRITE_CREATE;
		q[i].w.deliver = i % 4 == 0;
		snprintf(q[i].w.type, sizeof q[i].w.type, "Flag");
		q[i].w.resource = J("{\"resourceType\":\"Flag\",\"status\":\"active\"}");
		if (i == 8) { /* expects version 5 of Flag/taken: fails alone, no outbox record */
			snprintf(q[i].w.id, sizeof q[i].w.id, "taken");
			q[i].w.kind = STORE_WRITE_UPDATE;
		}
		assert_int_equal(store_submit(f->s, &q[i].w, i == 8 ? "5" : NULL), STORE_OK);
	}
	for (int i = 0; i < 2000 && atomic_load(&calls) < N; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&calls), N);
	size_t ok = 0;
	for (int i = 0; i < N; i++) {
		if (q[i].w.status == STORE_OK) {
			ok++;
			cJSON *got = NULL;
			assert_int_equal(store_read(f->s, "Flag", q[i].w.id, &got, &err), STORE_OK);
			cJSON_Delete(got);
		} else {
			assert_int_equal(i, 8);
			assert_int_equal(q[i].w.status, STORE_VERSION_MISMATCH);
		}
		store_write_release(&q[i].w);
	}
	assert_int_equal(ok, N - 1);
	struct outbox_counts oc;
	assert_int_equal(store_outbox_counts(f->s, &oc, &err), STORE_OK);
	assert_int_equal(oc.pending, N / 4 - 1);
	if (pg) {
		/* rows written by one transaction share its id (xmin) */
		static const char grouped[] = "DO $$ BEGIN IF (SELECT count(DISTINCT xmin::text) FROM version"
					      " WHERE type = 'Flag' AND id <> 'taken') > 10"
					      " THEN RAISE EXCEPTION 'not grouped'; END IF; END $$";
		assert_int_equal(pg_server_sql(pg, grouped), 0);
	}
}

/* Appended records (store_write.append): answered once their commit is
 * durable, and from then on read, vread, searched and in the history like
 * any create, although the SQLite backend indexes them later in bulk: a read
 * right after the answers sees every one. Records committed but not yet
 * indexed when the store closes are there after it opens again. An appended
 * record is a create with a new id that is not delivered. Both backends. */
static void appended_records_are_read_once_answered(void **state)
{
	struct fixture *f = *state;
	struct store_error err;
	enum { N = 30 };
	static struct sk_queued q[2 * N];
	atomic_int calls = 0;
	sk_append_records(f->s, q, 0, N, &calls);
	/* at once: no pause for the background step */
	assert_int_equal(sk_audit_total(f->s, NULL), N);
	assert_int_equal(sk_audit_total(f->s, "Patient/ap7"), 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(q[i].w.status, STORE_OK);
		assert_true(q[i].w.created);
		assert_int_equal(q[i].w.version, 1);
		cJSON *got = NULL;
		assert_int_equal(store_vread(f->s, "AuditEvent", q[i].w.id, "1", &got, &err), STORE_OK);
		assert_string_equal(must(str_at(got, "id", NULL)), q[i].w.id);
		assert_string_equal(must(str_at(got, "meta", "versionId")), "1");
		assert_non_null(str_at(got, "meta", "lastUpdated"));
		cJSON_Delete(got);
	}
	struct store_page page;
	assert_int_equal(store_history(f->s, "AuditEvent", NULL, STORE_ALL_TIME, 0, 0, 0, &page, &err), STORE_OK);
	assert_int_equal(page.total, N);
	store_page_release(&page);
	/* the next ones are read as they are answered, also by id */
	sk_append_records(f->s, q, N, N + 1, &calls);
	cJSON *got = NULL;
	assert_int_equal(store_read(f->s, "AuditEvent", q[N].w.id, &got, &err), STORE_OK);
	cJSON_Delete(got);
	/* committed, then the store closes before the background step: they are
	 * there when it opens again */
	sk_append_records(f->s, q, N + 1, 2 * N, &calls);
	if (!pg) {
		store_close(f->s);
		char msg[256];
		if (store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, msg, sizeof msg) != 0)
			fail_msg("reopening: %s", msg);
	}
	assert_int_equal(sk_audit_total(f->s, NULL), 2 * N);
	assert_int_equal(sk_audit_total(f->s, "Patient/ap42"), 1);
	for (int i = 0; i < 2 * N; i++)
		store_write_release(&q[i].w);
	/* a create with a new id, not delivered */
	struct sk_queued t = {.calls = &calls};
	t.w = (struct store_write){
		.kind = STORE_WRITE_CREATE, .append = true, .deliver = true, .done = sk_queued_done, .ctx = &t};
	snprintf(t.w.type, sizeof t.w.type, "AuditEvent");
	t.w.resource = J("{\"resourceType\":\"AuditEvent\"}");
	assert_int_equal(store_submit(f->s, &t.w, NULL), STORE_INVALID);
	t.w.deliver = false;
	snprintf(t.w.id, sizeof t.w.id, "chosen");
	assert_int_equal(store_submit(f->s, &t.w, NULL), STORE_INVALID);
	store_write_release(&t.w);
	assert_int_equal(atomic_load(&calls), 2 * N);
}

/* The SQLite committer's time is counted by part (crosswalk_store_
 * committer_seconds_total): a group of appended records costs statements
 * and a COMMIT, and indexing them (here for a reader's settle) is counted
 * as indexing. */
static void committer_time_is_counted_by_part(void **state)
{
	struct fixture *f = *state;
	enum { N = 40 };
	static struct sk_queued q[N];
	atomic_int calls = 0;
	unsigned long g0 = metrics_counter_get(METRICS_STORE_COMMITTER_GROUP_US),
		      c0 = metrics_counter_get(METRICS_STORE_COMMITTER_COMMIT_US),
		      i0 = metrics_counter_get(METRICS_STORE_COMMITTER_INDEX_US);
	sk_append_records(f->s, q, 0, N, &calls);
	/* answered: their group's COMMIT is counted */
	assert_true(metrics_counter_get(METRICS_STORE_COMMITTER_COMMIT_US) > c0);
	assert_true(metrics_counter_get(METRICS_STORE_COMMITTER_GROUP_US) >= g0);
	assert_int_equal(sk_audit_total(f->s, NULL), N);
	assert_true(metrics_counter_get(METRICS_STORE_COMMITTER_INDEX_US) > i0);
	char *text = NULL;
	size_t len = 0;
	assert_non_null(text = metrics_render(&len));
	assert_non_null(strstr(text, "crosswalk_store_committer_seconds_total{part=\"index\"} "));
	assert_non_null(strstr(text, "crosswalk_store_committer_seconds_total{part=\"tail\"} "));
	free(text);
	for (int i = 0; i < N; i++)
		store_write_release(&q[i].w);
}

/* An appended record's id is time-ordered (UUID version 7): a record made in
 * a later millisecond sorts after the ones before it, so the index of ids
 * grows at its end instead of taking a write at a random page per record
 * (docs/audit.md); a create's stays random (create_assigns_id_and_meta).
 * Both backends. */
static void appended_record_ids_grow_with_time(void **state)
{
	struct fixture *f = *state;
	enum { N = 12 };
	static struct sk_queued q[N];
	atomic_int calls = 0;
	for (int i = 0; i < N; i++) {
		sk_append_records(f->s, q, i, i + 1, &calls); /* answered, then the next */
		usleep(2000);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(strlen(q[i].w.id), 36);
		assert_int_equal(q[i].w.id[14], '7');           /* the version digit */
		assert_non_null(strchr("89ab", q[i].w.id[19])); /* the variant */
		if (i > 0 && strcmp(q[i - 1].w.id, q[i].w.id) >= 0)
			fail_msg("record %d's id %s does not sort after %s", i, q[i].w.id, q[i - 1].w.id);
	}
	for (int i = 0; i < N; i++)
		store_write_release(&q[i].w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(create_assigns_id_and_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(create_with_client_id_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(update_versions_and_vread, setup, teardown),
		cmocka_unit_test_setup_teardown(version_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_reads_as_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(history_newest_first_with_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(search_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(search_references, setup, teardown),
		cmocka_unit_test_setup_teardown(search_dates, setup, teardown),
		cmocka_unit_test_setup_teardown(search_date_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(search_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(search_strings_fold_case_and_accents, setup, teardown),
		cmocka_unit_test_setup_teardown(search_values_with_quotes_and_braces, setup, teardown),
		cmocka_unit_test_setup_teardown(search_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(search_filtered_and_resource_params, setup, teardown),
		cmocka_unit_test_setup_teardown(search_combined_paging_sort, setup, teardown),
		cmocka_unit_test_setup_teardown(search_follows_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(transaction_rollback_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(transaction_is_invisible_to_other_threads_until_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(decimal_literals_survive, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers_lose_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(search_quantities_and_uris, setup, teardown),
		cmocka_unit_test_setup_teardown(search_bundle_composition_and_message, setup, teardown),
		cmocka_unit_test_setup_teardown(version_1_database_is_reindexed, setup, teardown),
		cmocka_unit_test_setup_teardown(version_3_database_gets_checksums, setup, teardown),
		cmocka_unit_test_setup_teardown(version_3_database_is_reindexed, setup, teardown),
		cmocka_unit_test_setup_teardown(fhirpath_branches_are_indexed, setup, teardown),
		cmocka_unit_test_setup_teardown(version_6_database_indexes_embedded_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(read_cache_follows_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(read_cache_and_open_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(read_cache_never_goes_back, setup, teardown),
		cmocka_unit_test(rcache_bounds_and_tickets),
		cmocka_unit_test_setup_teardown(one_writer_per_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(queued_writes_are_called_back, setup, teardown),
		cmocka_unit_test_setup_teardown(queued_writes_share_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(outbox_holds_back_related_records, setup, teardown),
		cmocka_unit_test_setup_teardown(appended_records_are_read_once_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(appended_record_ids_grow_with_time, setup, teardown),
		cmocka_unit_test_setup_teardown(committer_time_is_counted_by_part, setup, teardown),
		cmocka_unit_test(parameter_table_and_dates),
	};
	/* CW_TEST_FILTER=pattern runs the matching cases only (cmocka's
	 * wildcards), as the e2e tests do */
	const char *filter = getenv("CW_TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
	/* the same contract over PostgreSQL: every case that is not about
	 * SQLite's files, upgrades or the single-writer read cache */
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(create_assigns_id_and_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(create_with_client_id_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(update_versions_and_vread, setup, teardown),
		cmocka_unit_test_setup_teardown(version_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_reads_as_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(history_newest_first_with_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(search_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(search_references, setup, teardown),
		cmocka_unit_test_setup_teardown(search_dates, setup, teardown),
		cmocka_unit_test_setup_teardown(search_date_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(search_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(search_strings_fold_case_and_accents, setup, teardown),
		cmocka_unit_test_setup_teardown(search_values_with_quotes_and_braces, setup, teardown),
		cmocka_unit_test_setup_teardown(search_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(search_filtered_and_resource_params, setup, teardown),
		cmocka_unit_test_setup_teardown(search_combined_paging_sort, setup, teardown),
		cmocka_unit_test_setup_teardown(search_follows_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(transaction_rollback_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(transaction_is_invisible_to_other_threads_until_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(decimal_literals_survive, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers_lose_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(search_quantities_and_uris, setup, teardown),
		cmocka_unit_test_setup_teardown(search_bundle_composition_and_message, setup, teardown),
		cmocka_unit_test_setup_teardown(queued_writes_are_called_back, setup, teardown),
		cmocka_unit_test_setup_teardown(queued_writes_share_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(appended_records_are_read_once_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(appended_record_ids_grow_with_time, setup, teardown),
		cmocka_unit_test_setup_teardown(pg_version_1_database_indexes_embedded_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(pg_version_3_database_gets_the_shared_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(pg_version_5_database_chains_its_access_records, setup, teardown),
		cmocka_unit_test_setup_teardown(pg_database_gets_the_creates_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(instances_lose_no_update, setup, teardown),
		cmocka_unit_test_setup_teardown(instances_create_conditionally_once, setup, teardown),
		cmocka_unit_test_setup_teardown(instances_never_read_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(instances_share_the_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(instances_share_the_replay_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(outbox_holds_back_related_records, setup, teardown),
		cmocka_unit_test_setup_teardown(writes_stamped_before_a_snapshot_are_exported, setup, teardown),
	};
	struct pg_server server;
	if (pg_server_start(&server) != 0) {
		/* a missing server is a failure, not a skip: tools/deps.sh test installs it */
		fprintf(stderr, "PostgreSQL: %s\n", server.why);
		pg_server_stop(&server);
		return 1;
	}
	pg = &server;
	failed += cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
	pg = NULL;
	pg_server_stop(&server);
	return failed;
}
