/* Unit tests of bulk export's egress by scope (api/bulk.h: the job's
 * "access" record) on a real SQLite store and the real export worker: a
 * patient/ scope exports only its patient's compartment (also within a
 * Group's members, where that patient may be absent; a type outside the
 * compartment that references the patient gives nothing), a type out of every
 * scope's reach gets no file, and a system/ scope next to it reaches its
 * type whole. The end-to-end flow with a token is in e2e/test_bulk.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/bulk.h"
#include "base/fjson.h"
#include "config/config.h"
#include "store/store.h"

struct fixture {
	char dir[64], data[96], bulk[96];
	struct config cfg;
	struct store *s;
	struct bulk *b;
};

static void add(struct store *s, const char *type, const char *id, const char *json)
{
	cJSON *r = cJSON_Parse(json);
	assert_non_null(r);
	struct store_error err;
	assert_int_equal(store_create(s, type, r, id, NULL, &err), STORE_OK);
	cJSON_Delete(r);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cw-bulk-acc-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->data, sizeof f->data, "%s/data", f->dir);
	snprintf(f->bulk, sizeof f->bulk, "%s/bulk", f->dir);
	char err[256];
	if (config_defaults(&f->cfg) != 0 ||
	    store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, err, sizeof err) != 0)
		return -1;
	f->b = bulk_start(f->s, &f->cfg, f->bulk, err, sizeof err);
	if (!f->b)
		return -1;
	for (int i = 1; i <= 2; i++) {
		char id[16], json[256];
		snprintf(id, sizeof id, "p%d", i);
		add(f->s, "Patient", id, "{\"resourceType\":\"Patient\",\"gender\":\"male\"}");
		snprintf(id, sizeof id, "o%d", i);
		snprintf(json, sizeof json,
			 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"w\"},"
			 "\"subject\":{\"reference\":\"Patient/p%d\"}}",
			 i);
		add(f->s, "Observation", id, json);
	}
	add(f->s, "Organization", "org1", "{\"resourceType\":\"Organization\",\"name\":\"Payer\"}");
	/* a Device references its patient, but Device is not in the Patient
	 * compartment (R4 CompartmentDefinition Patient) */
	add(f->s, "Device", "dev1", "{\"resourceType\":\"Device\",\"patient\":{\"reference\":\"Patient/p1\"}}");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	bulk_stop(f->b);
	store_close(f->s);
	config_release(&f->cfg);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs an export of the given "patients" (NULL: system level) for a client
 * with scopes and launch patient; returns the manifest. */
static cJSON *export_as(struct fixture *f, const char *patients, const char *scopes, const char *patient)
{
	cJSON *desc = cJSON_CreateObject();
	cJSON_AddStringToObject(desc, "request", "http://x/fhir/$export");
	cJSON_AddStringToObject(desc, "client", "127.0.0.1");
	if (patients)
		cJSON_AddItemToObject(desc, "patients", cJSON_Parse(patients));
	cJSON *acc = cJSON_AddObjectToObject(desc, "access");
	cJSON_AddStringToObject(acc, "client_id", "app");
	cJSON_AddStringToObject(acc, "scopes", scopes);
	cJSON_AddStringToObject(acc, "patient", patient);
	struct store_snapshot snap;
	struct store_error err;
	assert_int_equal(store_snapshot(f->s, &snap, &err), STORE_OK);
	cJSON *s = cJSON_AddObjectToObject(desc, "snapshot");
	cJSON_AddNumberToObject(s, "seq", (double)snap.seq);
	cJSON_AddStringToObject(s, "time", snap.time);
	char id[BULK_ID_SIZE];
	assert_int_equal(bulk_submit(f->b, desc, id), 0);
	assert_int_equal(bulk_access(f->b, id, "app"), 0);
	assert_int_equal(bulk_access(f->b, id, "other"), -1);
	assert_int_equal(bulk_access(f->b, id, NULL), -1);
	for (int i = 0; i < 500; i++) {
		cJSON *m = NULL;
		enum bulk_state st;
		char progress[256];
		assert_int_equal(bulk_status(f->b, id, "http://x/files", progress, sizeof progress, &m, &st), 0);
		assert_int_not_equal(st, BULK_FAILED);
		if (m)
			return m;
		usleep(10000);
	}
	fail_msg("the export did not finish");
	return NULL;
}

/* The ids in the manifest's files of type, comma-joined in order, into out. */
static const char *ids_of(struct fixture *f, const cJSON *m, const char *type, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "output"))
	{
		if (strcmp(cJSON_GetObjectItem(e, "type")->valuestring, type) != 0)
			continue;
		char job[128];
		snprintf(job, sizeof job, "%s", cJSON_GetObjectItem(e, "url")->valuestring + strlen("http://x/files/"));
		char *file = strchr(job, '/');
		assert_non_null(file);
		*file++ = '\0';
		int fd;
		size_t size;
		assert_int_equal(bulk_open_file(f->b, job, file, &fd, &size), 0);
		char *text = calloc(1, size + 1);
		assert_non_null(text);
		assert_int_equal(read(fd, text, size), (ssize_t)size);
		close(fd);
		for (char *line = text, *nl; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			assert_non_null(nl);
			*nl = '\0';
			cJSON *r = cJSON_Parse(line);
			assert_non_null(r);
			o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "",
					      cJSON_GetObjectItem(r, "id")->valuestring);
			assert_true(o < cap);
			cJSON_Delete(r);
		}
		free(text);
	}
	return out;
}

static void patient_scope_exports_its_compartment(void **state)
{
	struct fixture *f = *state;
	char ids[256];
	cJSON *m = export_as(f, NULL, "patient/*.rs", "p1");
	assert_string_equal(ids_of(f, m, "Patient", ids, sizeof ids), "p1");
	assert_string_equal(ids_of(f, m, "Observation", ids, sizeof ids), "o1");
	assert_string_equal(ids_of(f, m, "Organization", ids, sizeof ids), "");
	assert_string_equal(ids_of(f, m, "Device", ids, sizeof ids), "");
	cJSON_Delete(m);
	/* a Group of other patients: nothing of theirs */
	m = export_as(f, "[\"p2\"]", "patient/*.rs", "p1");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "output")), 0);
	cJSON_Delete(m);
	/* a Patient-level export with the patient among others */
	m = export_as(f, "\"*\"", "patient/Observation.rs", "p2");
	assert_string_equal(ids_of(f, m, "Observation", ids, sizeof ids), "o2");
	assert_string_equal(ids_of(f, m, "Patient", ids, sizeof ids), "");
	cJSON_Delete(m);
}

static void system_scope_reaches_its_type_whole(void **state)
{
	struct fixture *f = *state;
	char ids[256];
	cJSON *m = export_as(f, NULL, "patient/*.rs system/Observation.rs", "p1");
	assert_string_equal(ids_of(f, m, "Observation", ids, sizeof ids), "o1,o2");
	assert_string_equal(ids_of(f, m, "Patient", ids, sizeof ids), "p1");
	cJSON_Delete(m);
	/* patient/ without the token's patient, and a granular scope: nothing */
	m = export_as(f, NULL, "patient/*.rs system/Organization.rs?name=Payer", "");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "output")), 0);
	cJSON_Delete(m);
	m = export_as(f, NULL, "system/Organization.rs", "");
	assert_string_equal(ids_of(f, m, "Organization", ids, sizeof ids), "org1");
	assert_string_equal(ids_of(f, m, "Patient", ids, sizeof ids), "");
	cJSON_Delete(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(patient_scope_exports_its_compartment, setup, teardown),
		cmocka_unit_test_setup_teardown(system_scope_reaches_its_type_whole, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
