/* End-to-end tests of bulk export (FHIR Bulk Data Access 2.0) on a real
 * gateway over HTTP: the asynchronous flow (kick-off, polling, manifest,
 * NDJSON files), the refusals of kick-off, _since after updates and
 * deletes, _typeFilter, _elements, Group and Patient exports, split files,
 * cancellation, expiry, and a restart in the middle of an export. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};
static const char *async_h[] = {"Prefer: respond-async", "Accept: application/fhir+json", NULL};

static struct resp call(const struct gw *g, const char *method, const char *path, const char *const *headers,
			const char *body)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(g, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	return r;
}

static void put(const struct gw *g, const char *path, const char *body)
{
	struct resp r = call(g, "PUT", path, fj, body);
	if (r.status != 200 && r.status != 201)
		fprintf(stderr, "# PUT %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
}

static void del(const struct gw *g, const char *path)
{
	struct resp r = call(g, "DELETE", path, NULL, NULL);
	assert_true(r.status == 200 || r.status == 204);
	resp_free(&r);
}

static void patient(const struct gw *g, const char *id, const char *family)
{
	char path[128], body[256];
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"name\":[{\"family\":\"%s\"}],"
		 "\"gender\":\"female\"}",
		 id, family);
	put(g, path, body);
}

static void observation(const struct gw *g, const char *id, const char *pid, const char *status)
{
	char path[128], body[400];
	snprintf(path, sizeof path, "/fhir/Observation/%s", id);
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"%s\","
		 "\"code\":{\"text\":\"weight\"},\"subject\":{\"reference\":\"Patient/%s\"}}",
		 id, status, pid);
	put(g, path, body);
}

static bool has_id(const cJSON *arr, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) if (!strcmp(cJSON_GetObjectItem(e, "id")->valuestring, id)) return true;
	return false;
}

static const cJSON *by_id(const cJSON *arr, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) if (!strcmp(cJSON_GetObjectItem(e, "id")->valuestring, id)) return e;
	return NULL;
}

static int files_of(const cJSON *m, const char *type)
{
	int n = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(m, "output")) n +=
		!strcmp(cJSON_GetObjectItem(o, "type")->valuestring, type);
	return n;
}

/* The whole flow: kick-off with GET and POST, 202 while running, the
 * manifest, every file as NDJSON with the counts it announces, split files. */
static void async_flow_end_to_end(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, "\"bulk\":{\"file_max_bytes\":2048}"), 0);
	char id[32], pid[32];
	for (int i = 0; i < 30; i++) {
		snprintf(pid, sizeof pid, "p%d", i);
		patient(&g, pid, "Family");
		snprintf(id, sizeof id, "o%d", i);
		observation(&g, id, pid, "final");
	}
	put(&g, "/fhir/Organization/org1", "{\"resourceType\":\"Organization\",\"id\":\"org1\",\"name\":\"Payer\"}");
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export?_outputFormat=application%2Ffhir%2Bndjson", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	assert_non_null(strstr(cJSON_GetObjectItem(m, "request")->valuestring, "/fhir/$export?_outputFormat="));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(m, "requiresAccessToken")));
	assert_int_equal(strlen(cJSON_GetObjectItem(m, "transactionTime")->valuestring), 24);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(m, "error")));
	cJSON *pats = bulk_download(&g, NULL, m, "Patient"), *obs = bulk_download(&g, NULL, m, "Observation"),
	      *orgs = bulk_download(&g, NULL, m, "Organization");
	assert_int_equal(cJSON_GetArraySize(pats), 30);
	assert_int_equal(cJSON_GetArraySize(obs), 30);
	assert_int_equal(cJSON_GetArraySize(orgs), 1);
	assert_true(files_of(m, "Patient") > 1); /* split at 2048 bytes */
	assert_true(has_id(pats, "p0") && has_id(pats, "p29") && has_id(obs, "o17"));
	cJSON_Delete(pats);
	cJSON_Delete(obs);
	cJSON_Delete(orgs);
	cJSON_Delete(m);
	free(st);

	/* POST with Parameters: _type and _typeFilter */
	observation(&g, "o-prelim", "p1", "preliminary");
	st = bulk_kickoff(&g, NULL, "POST", "/fhir/$export",
			  "{\"resourceType\":\"Parameters\",\"parameter\":["
			  "{\"name\":\"_outputFormat\",\"valueString\":\"ndjson\"},"
			  "{\"name\":\"_type\",\"valueString\":\"Observation\"},"
			  "{\"name\":\"_typeFilter\",\"valueString\":\"Observation?status=preliminary\"}]}",
			  NULL);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	assert_int_equal(files_of(m, "Patient"), 0);
	obs = bulk_download(&g, NULL, m, "Observation");
	assert_int_equal(cJSON_GetArraySize(obs), 1);
	assert_true(has_id(obs, "o-prelim"));
	cJSON_Delete(obs);
	cJSON_Delete(m);
	free(st);

	/* _elements: the named elements and the mandatory ones, marked */
	st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export?_type=Patient&_elements=Patient.gender", NULL, NULL);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	pats = bulk_download(&g, NULL, m, "Patient");
	const cJSON *p0 = by_id(pats, "p0");
	assert_non_null(p0);
	assert_non_null(cJSON_GetObjectItem(p0, "gender"));
	assert_null(cJSON_GetObjectItem(p0, "name"));
	char *meta = cJSON_PrintUnformatted(cJSON_GetObjectItem(p0, "meta"));
	bool subsetted = meta && strstr(meta, "SUBSETTED");
	free(meta);
	assert_true(subsetted);
	cJSON_Delete(pats);
	cJSON_Delete(m);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void refused(const struct gw *g, const char *const *headers, const char *path, long want, const char *says)
{
	struct resp r = call(g, "GET", path, headers, NULL);
	if (r.status != want)
		fprintf(stderr, "# %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	if (says) {
		assert_non_null(strstr(r.body, "OperationOutcome"));
		assert_non_null(strstr(r.body, says));
	}
	resp_free(&r);
}

/* Kick-off refuses what it cannot do, unless asked to be lenient. */
static void kickoff_refusals(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static const char *sync_h[] = {"Accept: application/fhir+json", NULL};
	static const char *lenient_h[] = {"Prefer: respond-async, handling=lenient", NULL};
	refused(&g, sync_h, "/fhir/$export", 400, "respond-async");
	refused(&g, async_h, "/fhir/$export?_outputFormat=text%2Fcsv", 400, "_outputFormat");
	refused(&g, async_h, "/fhir/$export?_since=yesterday", 400, "_since");
	refused(&g, async_h, "/fhir/$export?_type=Nonsense", 400, "_type");
	refused(&g, async_h, "/fhir/$export?_until=2026-01-01T00:00:00Z", 400, "_until");
	refused(&g, async_h, "/fhir/$export?includeAssociatedData=LatestProvenanceResources", 400,
		"includeAssociatedData");
	refused(&g, async_h, "/fhir/$export?_typeFilter=Observation%3Fnosuch%3D1", 400, "nosuch");
	refused(&g, async_h, "/fhir/$export?_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal", 400, "_type");
	refused(&g, async_h, "/fhir/Group/none/$export", 404, "Group");
	refused(&g, lenient_h, "/fhir/$export?_until=2026-01-01T00:00:00Z&includeAssociatedData=x", 202, NULL);
	refused(&g, async_h, "/fhir/$export?_outputFormat=application%2Fndjson", 202, NULL);
	refused(&g, async_h, "/fhir/bulk-status/0000-none", 404, "no export");
	refused(&g, async_h, "/fhir/bulk-files/0000-none/Patient-1.ndjson", 404, NULL);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* _since from a previous manifest's transactionTime gives exactly what
 * changed after it: updated and new resources, not deleted ones; a full
 * export has the current versions and no deleted resource. */
static void since_after_updates_and_deletes(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	patient(&g, "a", "First");
	patient(&g, "b", "First");
	patient(&g, "c", "First");
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	char since[64];
	snprintf(since, sizeof since, "%s", cJSON_GetObjectItem(m, "transactionTime")->valuestring);
	cJSON_Delete(m);
	free(st);
	patient(&g, "a", "Second");
	del(&g, "/fhir/Patient/b");
	patient(&g, "d", "First");
	char path[200];
	snprintf(path, sizeof path, "/fhir/$export?_since=%.23s%%2B00:00", since); /* the same instant, +00:00 */
	st = bulk_kickoff(&g, NULL, "GET", path, NULL, NULL);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	cJSON *pats = bulk_download(&g, NULL, m, "Patient");
	assert_int_equal(cJSON_GetArraySize(pats), 2);
	assert_true(has_id(pats, "a") && has_id(pats, "d"));
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(by_id(pats, "a"), "name"), 0), "family")
			->valuestring,
		"Second");
	cJSON_Delete(pats);
	cJSON_Delete(m);
	free(st);
	st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export", NULL, NULL);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	pats = bulk_download(&g, NULL, m, "Patient");
	assert_int_equal(cJSON_GetArraySize(pats), 3);
	assert_false(has_id(pats, "b"));
	cJSON_Delete(pats);
	cJSON_Delete(m);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A Group export: the Group's active Patient members and what is about
 * them, nobody else; Patient/$export: every Patient's compartment. */
static void group_and_patient_export(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	patient(&g, "g1", "In");
	patient(&g, "g2", "Out");
	patient(&g, "g3", "In");
	patient(&g, "g4", "Inactive");
	observation(&g, "og1", "g1", "final");
	observation(&g, "og2", "g2", "final");
	observation(&g, "og3", "g3", "final");
	observation(&g, "og4", "g4", "final");
	put(&g, "/fhir/Organization/o",
	    "{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"Not a patient's\"}");
	put(&g, "/fhir/Group/aco",
	    "{\"resourceType\":\"Group\",\"id\":\"aco\",\"type\":\"person\",\"actual\":true,\"member\":["
	    "{\"entity\":{\"reference\":\"Patient/g1\"}},{\"entity\":{\"reference\":\"Patient/g3\"}},"
	    "{\"entity\":{\"reference\":\"Patient/g4\"},\"inactive\":true}]}");
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/Group/aco/$export", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	assert_non_null(strstr(cJSON_GetObjectItem(m, "request")->valuestring, "/fhir/Group/aco/$export"));
	cJSON *pats = bulk_download(&g, NULL, m, "Patient"), *obs = bulk_download(&g, NULL, m, "Observation");
	assert_int_equal(cJSON_GetArraySize(pats), 2);
	assert_true(has_id(pats, "g1") && has_id(pats, "g3"));
	assert_int_equal(cJSON_GetArraySize(obs), 2);
	assert_true(has_id(obs, "og1") && has_id(obs, "og3"));
	assert_int_equal(files_of(m, "Organization"), 0);
	cJSON_Delete(pats);
	cJSON_Delete(obs);
	cJSON_Delete(m);
	free(st);
	st = bulk_kickoff(&g, NULL, "GET", "/fhir/Patient/$export", NULL, NULL);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	pats = bulk_download(&g, NULL, m, "Patient");
	obs = bulk_download(&g, NULL, m, "Observation");
	assert_int_equal(cJSON_GetArraySize(pats), 4);
	assert_int_equal(cJSON_GetArraySize(obs), 4);
	assert_int_equal(files_of(m, "Organization"), 0);
	cJSON_Delete(pats);
	cJSON_Delete(obs);
	cJSON_Delete(m);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static bool dir_exists(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void job_dir(const struct gw *g, const char *status_path, char *out, size_t n)
{
	snprintf(out, n, "%s/var/bulk/%s", g->dir, strrchr(status_path, '/') + 1);
}

/* DELETE on the status URL: the export and its files are gone. */
static void cancel_removes_the_export(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	patient(&g, "x1", "Gone");
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	const char *url = bulk_path_of(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "output"), 0), "url")->valuestring);
	char file[512], dir[600];
	snprintf(file, sizeof file, "%s", url);
	job_dir(&g, st, dir, sizeof dir);
	assert_true(dir_exists(dir));
	struct resp r = call(&g, "DELETE", st, NULL, NULL);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	refused(&g, NULL, st, 404, "no export");
	refused(&g, NULL, file, 404, NULL);
	assert_false(dir_exists(dir));
	r = call(&g, "DELETE", st, NULL, NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	cJSON_Delete(m);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A finished export's files are removed once bulk.expiry_seconds pass. */
static void finished_exports_expire(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, "\"bulk\":{\"expiry_seconds\":1}"), 0);
	patient(&g, "e1", "Brief");
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	char dir[600];
	job_dir(&g, st, dir, sizeof dir);
	assert_true(dir_exists(dir));
	bool gone = false;
	for (int i = 0; i < 60 && !gone; i++) {
		sleep_ms(100);
		gone = !dir_exists(dir);
	}
	assert_true(gone);
	refused(&g, NULL, st, 404, "no export");
	cJSON_Delete(m);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void set_state(const char *dir, const char *from, const char *to)
{
	char path[700];
	snprintf(path, sizeof path, "%s/job.json", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *at = strstr(buf, from);
	assert_non_null(at);
	char out[8300];
	snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(out, f);
	fclose(f);
}

/* A gateway killed in the middle of an export: at the next start the job
 * runs again at its snapshot (writes made meanwhile are not in it) and the
 * manifest is complete; a record that cannot be read fails visibly. */
static void restart_during_an_export(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", g.dir);
	char id[32];
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "r%d", i);
		patient(&g, id, "Before");
	}
	char *st = bulk_kickoff(&g, NULL, "GET", "/fhir/$export", NULL, NULL);
	char *st2 = bulk_kickoff(&g, NULL, "GET", "/fhir/$export?_type=Patient", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&g, NULL, st, 30000);
	cJSON_Delete(m);
	m = bulk_wait_manifest(&g, NULL, st2, 30000);
	cJSON_Delete(m);
	patient(&g, "r-after", "After"); /* after the snapshot: never in this export */
	kill(g.pid, SIGKILL);
	gw_stop(&g, 5000);
	/* as the disk looks when the kill comes half way: the record says
	 * running and the files hold part of the resources */
	char dir[600], file[700];
	job_dir(&g, st, dir, sizeof dir);
	set_state(dir, "\"state\":\"complete\"", "\"state\":\"running\"");
	snprintf(file, sizeof file, "%s/Patient-1.ndjson", dir);
	assert_int_equal(truncate(file, 100), 0);
	char dir2[600];
	job_dir(&g, st2, dir2, sizeof dir2);
	set_state(dir2, "\"snapshot\"", "\"snapsh0t\"");

	assert_int_equal(gw_start(&g, extra), 0);
	m = bulk_wait_manifest(&g, NULL, st, 30000);
	cJSON *pats = bulk_download(&g, NULL, m, "Patient");
	assert_int_equal(cJSON_GetArraySize(pats), 50);
	assert_false(has_id(pats, "r-after"));
	cJSON_Delete(pats);
	cJSON_Delete(m);
	refused(&g, NULL, st2, 500, "start the export again");
	char *log = gw_log(&g);
	assert_non_null(strstr(log, "runs again"));
	free(log);
	free(st);
	free(st2);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A consumer's own client, plain HTTP from Node: the flow as it sees it. */
static void node_client_runs_the_flow(void **state)
{
	(void)state;
	const char *script = "tests/e2e/node/bulk_client.js";
	if (access(script, R_OK) != 0 || system("node --version >/dev/null 2>&1") != 0)
		skip();
	struct gw g;
	assert_int_equal(gw_start(&g, "\"bulk\":{\"file_max_bytes\":1024}"), 0);
	char id[32];
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof id, "n%d", i);
		patient(&g, id, "Node");
		snprintf(id, sizeof id, "no%d", i);
		observation(&g, id, "n0", "final");
	}
	char cmd[600], out[4096] = "";
	snprintf(cmd, sizeof cmd, "node %s http://127.0.0.1:%u '/fhir/$export?_type=Patient,Observation' 2>&1", script,
		 g.port);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	int rc = pclose(p);
	if (rc != 0)
		fprintf(stderr, "# node: %s\n", out);
	assert_int_equal(rc, 0);
	cJSON *r = cJSON_Parse(out);
	assert_non_null(r);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "counts"), "Patient")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "lines"), "Patient")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "lines"), "Observation")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(r, "deleted")->valueint, 202);
	cJSON *ct = cJSON_GetObjectItem(r, "contentTypes");
	assert_int_equal(cJSON_GetArraySize(ct), 1);
	assert_string_equal(cJSON_GetArrayItem(ct, 0)->valuestring, "application/fhir+ndjson");
	cJSON_Delete(r);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A request with a bearer token (and more headers, NULL-terminated). */
static struct resp call_as(const struct gw *g, const char *token, const char *method, const char *path,
			   const char *extra, const char *body)
{
	char authz[4200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
	const char *h[] = {authz, "Content-Type: application/fhir+json", "Accept: application/fhir+json", extra, NULL};
	return call(g, method, path, h, body);
}

static void put_as(const struct gw *g, const char *token, const char *path, const char *body)
{
	struct resp r = call_as(g, token, "PUT", path, NULL, body);
	if (r.status != 200 && r.status != 201)
		fprintf(stderr, "# PUT %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
}

static void expect_as(const struct gw *g, const char *token, const char *path, const char *extra, long want,
		      const char *says)
{
	struct resp r = call_as(g, token, "GET", path, extra, NULL);
	if (r.status != want)
		fprintf(stderr, "# %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	if (says)
		assert_non_null(strstr(r.body, says));
	resp_free(&r);
}

/* A billing client runs a standard bulk export end to end with its own
 * token (SMART Backend Services: a signed client assertion for an access
 * token, done by the Node client) and gets exactly what its scopes let it
 * read: Patients, Claims and Coverage, not the Observations or
 * Organizations also stored. The manifest says the files need the token;
 * without it a file is 401. Kick-off naming a type out of its reach is 403
 * (left out when lenient), a Group export without Group read is 403, a
 * client without any read scope cannot start one, and another client's
 * token does not reach its export. */
static void billing_token_exports_what_it_may_read(void **state)
{
	(void)state;
	if (system("node --version >/dev/null 2>&1") != 0)
		skip();
	char dir[64] = "/tmp/cw-bulk-auth-XXXXXX";
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	char jwk[2048], args[1024], key[128];
	snprintf(args, sizeof args, "keygen %s", dir);
	assert_int_equal(bulk_node_client(args, jwk, sizeof jwk), 0);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	char cfg[8192];
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"clients\":["
		 "{\"client_id\":\"loader\",\"scopes\":\"system/*.cruds\",\"jwks\":{\"keys\":[%s]}},"
		 "{\"client_id\":\"billing\",\"purpose\":\"billing\",\"jwks\":{\"keys\":[%s]},"
		 "\"scopes\":\"system/Patient.rs system/Claim.rs system/Coverage.rs\"},"
		 "{\"client_id\":\"feeder\",\"scopes\":\"system/Observation.cu\",\"jwks\":{\"keys\":[%s]}}]}",
		 jwk, jwk, jwk);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	char base[64], loader[4096], billing[4096], feeder[4096];
	snprintf(base, sizeof base, "http://127.0.0.1:%u", g.port);
	snprintf(args, sizeof args, "token %s loader %s system/*.cruds", base, key);
	assert_int_equal(bulk_node_client(args, loader, sizeof loader), 0);
	snprintf(args, sizeof args, "token %s billing %s 'system/Patient.rs system/Claim.rs system/Coverage.rs'", base,
		 key);
	assert_int_equal(bulk_node_client(args, billing, sizeof billing), 0);
	snprintf(args, sizeof args, "token %s feeder %s system/Observation.cu", base, key);
	assert_int_equal(bulk_node_client(args, feeder, sizeof feeder), 0);

	put_as(&g, loader, "/fhir/Organization/org1",
	       "{\"resourceType\":\"Organization\",\"id\":\"org1\",\"name\":\"Payer\"}");
	char path[128], body[1024];
	for (int i = 1; i <= 3; i++) {
		snprintf(path, sizeof path, "/fhir/Patient/p%d", i);
		snprintf(body, sizeof body, "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"gender\":\"female\"}", i);
		put_as(&g, loader, path, body);
		snprintf(path, sizeof path, "/fhir/Observation/o%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Observation\",\"id\":\"o%d\",\"status\":\"final\",\"code\":{\"text\":"
			 "\"weight\"},\"subject\":{\"reference\":\"Patient/p%d\"}}",
			 i, i);
		put_as(&g, loader, path, body);
	}
	put_as(&g, loader, "/fhir/Coverage/cov1",
	       "{\"resourceType\":\"Coverage\",\"id\":\"cov1\",\"status\":\"active\",\"beneficiary\":{\"reference\":"
	       "\"Patient/p1\"},\"payor\":[{\"reference\":\"Organization/org1\"}]}");
	for (int i = 1; i <= 2; i++) {
		snprintf(path, sizeof path, "/fhir/Claim/c%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Claim\",\"id\":\"c%d\",\"status\":\"active\",\"type\":{\"coding\":[{"
			 "\"system\":\"http://terminology.hl7.org/CodeSystem/claim-type\",\"code\":\"professional\"}]},"
			 "\"use\":\"claim\",\"patient\":{\"reference\":\"Patient/p1\"},\"created\":\"2026-01-01\","
			 "\"provider\":{\"reference\":\"Organization/org1\"},\"priority\":{\"coding\":[{\"code\":"
			 "\"normal\"}]},\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":{\"reference\":"
			 "\"Coverage/cov1\"}}]}",
			 i);
		put_as(&g, loader, path, body);
	}

	/* the standard flow, as the client runs it */
	char out[4096];
	snprintf(args, sizeof args,
		 "%s '/fhir/$export' billing %s 'system/Patient.rs system/Claim.rs system/Coverage.rs'", base, key);
	assert_int_equal(bulk_node_client(args, out, sizeof out), 0);
	cJSON *r = cJSON_Parse(out);
	assert_non_null(r);
	const cJSON *lines = cJSON_GetObjectItem(r, "lines");
	assert_int_equal(cJSON_GetObjectItem(lines, "Patient")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(lines, "Claim")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(lines, "Coverage")->valueint, 1);
	assert_int_equal(cJSON_GetArraySize(lines), 3); /* no Observation, no Organization */
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "requiresAccessToken")));
	assert_int_equal(cJSON_GetObjectItem(r, "withoutToken")->valueint, 401);
	assert_int_equal(cJSON_GetObjectItem(r, "deleted")->valueint, 202);
	cJSON_Delete(r);

	/* kick-off asks for what the token reaches */
	expect_as(&g, billing, "/fhir/$export?_type=Patient,Observation", "Prefer: respond-async", 403,
		  "system/Observation.rs");
	expect_as(&g, billing, "/fhir/Group/g1/$export", "Prefer: respond-async", 403, "system/Group.r");
	expect_as(&g, feeder, "/fhir/$export", "Prefer: respond-async", 403, "OperationOutcome");
	expect_as(&g, feeder, "/fhir/Patient/$export", "Prefer: respond-async", 403, "OperationOutcome");
	expect_as(&g, billing, "/fhir/a/b/c/d/e", NULL, 403, "OperationOutcome");

	/* lenient: the type out of reach is left out; the export is billing's */
	char *st = bulk_kickoff(&g, billing, "GET", "/fhir/Patient/$export?_type=Patient,Observation,Claim", NULL,
				"respond-async, handling=lenient");
	cJSON *m = bulk_wait_manifest(&g, billing, st, 30000);
	assert_int_equal(files_of(m, "Patient"), 1);
	assert_int_equal(files_of(m, "Claim"), 1);
	assert_int_equal(files_of(m, "Observation"), 0);
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(m, "output"))
	{
		const char *fp = bulk_path_of(cJSON_GetObjectItem(o, "url")->valuestring);
		expect_as(&g, loader, fp, NULL, 404, "OperationOutcome"); /* another client's */
		expect_as(&g, billing, fp, NULL, 200, cJSON_GetObjectItem(o, "type")->valuestring);
	}
	cJSON_Delete(m);
	expect_as(&g, loader, st, NULL, 404, "no export");
	struct resp d = call_as(&g, loader, "DELETE", st, NULL, NULL);
	assert_int_equal(d.status, 404);
	resp_free(&d);
	d = call_as(&g, billing, "DELETE", st, NULL, NULL);
	assert_int_equal(d.status, 202);
	resp_free(&d);
	free(st);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* --- egress rules in the files: diagnosis display, purpose ------------------ */

#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define DUMMY_FP "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
#define PREFERENCE "https://crosswalk.example.org/fhir/StructureDefinition/diagnosis-language"

/* Two people (p2 prefers identity-first language), a diagnosis each, and an
 * Encounter naming p1's in its diagnosis and its reason, as JSON texts. */
static const char *const dx_docs[][2] = {
	{"Patient/p1", "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"female\"}"},
	{"Patient/p2", "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"gender\":\"male\",\"extension\":[{\"url\":"
		       "\"" PREFERENCE "\",\"extension\":[{\"url\":\"style\",\"valueCode\":\"identity-first\"}]}]}"},
	{"Condition/c1", "{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":{\"reference\":\"Patient/p1\"},"
			 "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F20.9\",\"display\":"
			 "\"Schizophrenia, unspecified\"}]}}"},
	{"Condition/c2", "{\"resourceType\":\"Condition\",\"id\":\"c2\",\"subject\":{\"reference\":\"Patient/p2\"},"
			 "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F20.9\",\"display\":"
			 "\"Schizophrenia, unspecified\"}]}}"},
	{"Encounter/e1", "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\",\"class\":{\"system\":"
			 "\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"},\"subject\":{"
			 "\"reference\":\"Patient/p1\"},\"diagnosis\":[{\"condition\":{\"reference\":\"Condition/c1\","
			 "\"display\":\"Schizophrenia, unspecified\"}}],\"reasonCode\":[{\"coding\":[{\"system\":\"" ICD
			 "\",\"code\":\"F20.9\"}],\"text\":\"Schizophrenia, unspecified\"}]}"},
};

/* The resource of type and id in bulk_flow's answer (or an export's
 * Bundle entries, type NULL), or NULL. */
static const cJSON *res_of(const cJSON *files, const char *type, const char *id)
{
	const cJSON *list = type ? cJSON_GetObjectItem(files, type) : files, *e;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *r = type ? e : cJSON_GetObjectItem(e, "resource");
		const cJSON *rid = cJSON_GetObjectItem(r, "id");
		if (cJSON_IsString(rid) && !strcmp(rid->valuestring, id))
			return r;
	}
	return NULL;
}

static const char *text_at(const cJSON *o, const char *a, const char *b, const char *c)
{
	const cJSON *x = cJSON_GetObjectItem(o, a);
	if (cJSON_IsArray(x))
		x = cJSON_GetArrayItem(x, 0);
	x = b ? cJSON_GetObjectItem(x, b) : x;
	x = c ? cJSON_GetObjectItem(x, c) : x;
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* A recovery client with its own diagnosis_display person-first gets the
 * person-first form in its bulk files wherever its /export/{format} answer
 * has it (the Condition's text in the person's own style, the Encounter's
 * diagnosis and reason); a client with the global setting (codes) gets the
 * diagnoses as stored, in its files as in its /export answer; one with
 * hidden gets no diagnosis, nor anything naming one. */
static void recovery_client_files_are_person_first(void **state)
{
	(void)state;
	char tdir[256];
	harness_test_plugins(tdir, sizeof tdir, "tp_bundle", NULL);
	char cfg[4096];
	snprintf(cfg, sizeof cfg,
		 "\"plugins\":{\"person_first\":{\"diagnosis_display\":\"codes\"}},\"auth\":{\"clients\":["
		 "{\"client_id\":\"peer\",\"purpose\":\"recovery\",\"scopes\":\"system/*.cruds\",\"tls_fingerprint\":"
		 "\"" DUMMY_FP "\",\"plugins\":{\"person_first\":{\"diagnosis_display\":\"person-first\"}}},"
		 "{\"client_id\":\"coder\",\"scopes\":\"system/*.cruds\",\"tls_fingerprint\":\"" DUMMY_FP "\"},"
		 "{\"client_id\":\"quiet\",\"purpose\":\"recovery\",\"scopes\":\"system/*.rs\",\"tls_fingerprint\":"
		 "\"" DUMMY_FP "\",\"plugins\":{\"person_first\":{\"diagnosis_display\":\"hidden\"}}}]}");
	const char *args[] = {"--plugins", tdir, NULL};
	struct gw g;
	assert_int_equal(gw_start_args(&g, cfg, args), 0);
	char *peer = gw_token(&g, "peer", "system/*.cruds"), *coder = gw_token(&g, "coder", "system/*.cruds");
	char bundle[8192] = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[";
	for (size_t i = 0; i < sizeof dx_docs / sizeof *dx_docs; i++) {
		char path[64];
		snprintf(path, sizeof path, "/fhir/%s", dx_docs[i][0]);
		gw_put_bearer(&g, coder, path, dx_docs[i][1]);
		snprintf(bundle + strlen(bundle), sizeof bundle - strlen(bundle), "%s{\"resource\":%s}", i ? "," : "",
			 dx_docs[i][1]);
	}
	strcat(bundle, "]}");
	for (int who = 0; who < 2; who++) {
		const char *tok = who ? coder : peer;
		/* what REST's export gives this client */
		struct resp r;
		assert_int_equal(gw_call_bearer(&g, tok, "POST", "/export/bundle-raw", NULL, bundle, &r), 200);
		cJSON *rest = cJSON_Parse(r.body);
		resp_free(&r);
		assert_non_null(rest);
		const cJSON *entries = cJSON_GetObjectItem(rest, "entry");
		cJSON *files = bulk_flow(&g, tok, "/fhir/$export?_type=Patient,Condition,Encounter", NULL, NULL);
		for (int c = 1; c <= 2; c++) {
			char id[16];
			snprintf(id, sizeof id, "c%d", c);
			const char *want = text_at(res_of(entries, NULL, id), "code", "text", NULL);
			const char *got = text_at(res_of(files, "Condition", id), "code", "text", NULL);
			if (!who)
				assert_non_null(want);
			if (want) {
				assert_non_null(got);
				assert_string_equal(got, want);
			} else {
				assert_null(got);
			}
		}
		const cJSON *re = res_of(entries, NULL, "e1"), *fe = res_of(files, "Encounter", "e1");
		assert_non_null(fe);
		assert_string_equal(text_at(fe, "diagnosis", "condition", "display"),
				    text_at(re, "diagnosis", "condition", "display"));
		assert_string_equal(text_at(fe, "reasonCode", "text", NULL), text_at(re, "reasonCode", "text", NULL));
		char *all = cJSON_PrintUnformatted(files);
		if (!who) {
			/* the person-first phrase; p2's in the style p2 prefers */
			assert_string_equal(text_at(res_of(files, "Condition", "c1"), "code", "text", NULL),
					    "Person living with schizophrenia");
			assert_string_equal(text_at(fe, "diagnosis", "condition", "display"),
					    "Person living with schizophrenia");
			assert_null(strstr(text_at(res_of(files, "Condition", "c2"), "code", "text", NULL),
					   "Person living with"));
			assert_string_equal(text_at(fe, "reasonCode", "text", NULL),
					    "Person living with schizophrenia");
			/* the Patients are written as they are */
			assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(files, "Patient")), 2);
		} else {
			assert_null(strstr(all, "Person living with"));
			assert_string_equal(text_at(fe, "diagnosis", "condition", "display"),
					    "Schizophrenia, unspecified");
		}
		free(all);
		cJSON_Delete(files);
		cJSON_Delete(rest);
	}
	/* hidden: no diagnosis in the files, nor a reference or reason naming one */
	char *quiet = gw_token(&g, "quiet", "system/*.rs");
	cJSON *m = NULL;
	cJSON *files = bulk_flow(&g, quiet, "/fhir/$export?_type=Patient,Condition,Encounter", &m, NULL);
	assert_null(cJSON_GetObjectItem(files, "Condition"));
	const cJSON *fe = res_of(files, "Encounter", "e1");
	assert_non_null(fe);
	assert_null(cJSON_GetObjectItem(fe, "diagnosis"));
	assert_null(cJSON_GetObjectItem(fe, "reasonCode"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(files, "Patient")), 2);
	cJSON_Delete(files);
	cJSON_Delete(m);
	free(quiet);
	free(peer);
	free(coder);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A billing client's bulk files hold the minimum-necessary view, each
 * resource exactly as its REST read gives it (docs/billing.md, "Never
 * included"), even with its own diagnosis_display person-first; a treatment
 * client's files hold the whole resources. */
static void billing_client_files_hold_the_minimum_necessary_view(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(
		gw_start(&g,
			 "\"auth\":{\"clients\":["
			 "{\"client_id\":\"biller\",\"purpose\":\"billing\",\"scopes\":\"system/"
			 "*.rs\",\"tls_fingerprint\":"
			 "\"" DUMMY_FP "\",\"plugins\":{\"person_first\":{\"diagnosis_display\":\"person-first\"}}},"
			 "{\"client_id\":\"clinic\",\"scopes\":\"system/*.cruds\",\"tls_fingerprint\":\"" DUMMY_FP
			 "\"}]}"),
		0);
	char *biller = gw_token(&g, "biller", "system/*.rs"), *clinic = gw_token(&g, "clinic", "system/*.cruds");
	static const char *const docs[][2] = {
		{"Patient/p1",
		 "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"identifier\":[{\"system\":"
		 "\"https://example.org/mrn\",\"value\":\"M1\"}],\"name\":[{\"family\":\"Doe\"}],\"telecom\":[{"
		 "\"system\":\"phone\",\"value\":\"555-0100\"}],\"gender\":\"female\",\"birthDate\":\"1970-01-01\","
		 "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">"
		 "Jane Doe</div>\"}}"},
		{"Condition/c1",
		 "{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":{\"reference\":\"Patient/p1\"},"
		 "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F20.9\"}],\"text\":\"hears voices\"},"
		 "\"evidence\":[{\"detail\":[{\"display\":\"interview\"}]}],\"note\":[{\"text\":\"private\"}],"
		 "\"recordedDate\":\"2026-01-02\"}"},
		{"Observation/o1", "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{"
				   "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]},\"subject\":{"
				   "\"reference\":\"Patient/p1\"},\"valueString\":\"felt low\",\"note\":[{\"text\":"
				   "\"private\"}],\"effectiveDateTime\":\"2026-01-02\"}"},
		{"Goal/g1", "{\"resourceType\":\"Goal\",\"id\":\"g1\",\"lifecycleStatus\":\"active\",\"description\":{"
			    "\"text\":\"sleep better\"},\"subject\":{\"reference\":\"Patient/p1\"},\"target\":[{"
			    "\"dueDate\":\"2026-06-01\"}]}"},
	};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
		char path[64];
		snprintf(path, sizeof path, "/fhir/%s", docs[i][0]);
		gw_put_bearer(&g, clinic, path, docs[i][1]);
	}
	/* what never leaves for billing, and what stays */
	static const char *const gone[][2] = {{"Patient", "name"},
					      {"Patient", "telecom"},
					      {"Patient", "text"},
					      {"Condition", "note"},
					      {"Condition", "evidence"},
					      {"Observation", "note"},
					      {"Observation", "valueString"},
					      {"Goal", "description"},
					      {"Goal", "target"}};
	static const char *const kept[][2] = {{"Patient", "identifier"},  {"Patient", "birthDate"},
					      {"Condition", "code"},      {"Condition", "recordedDate"},
					      {"Observation", "code"},    {"Observation", "effectiveDateTime"},
					      {"Goal", "lifecycleStatus"}};
	for (int who = 0; who < 2; who++) {
		const char *tok = who ? clinic : biller;
		cJSON *files = bulk_flow(&g, tok, "/fhir/$export?_type=Patient,Condition,Observation,Goal", NULL, NULL);
		for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
			char type[32], path[64];
			snprintf(type, sizeof type, "%.*s", (int)strcspn(docs[i][0], "/"), docs[i][0]);
			const cJSON *got = res_of(files, type, strchr(docs[i][0], '/') + 1);
			assert_non_null(got);
			/* exactly what its REST read gives this client */
			snprintf(path, sizeof path, "/fhir/%s", docs[i][0]);
			struct resp r;
			assert_int_equal(gw_call_bearer(&g, tok, "GET", path, NULL, NULL, &r), 200);
			cJSON *read = cJSON_Parse(r.body);
			resp_free(&r);
			if (!cJSON_Compare(read, got, true)) {
				char *a = cJSON_PrintUnformatted(read), *b = cJSON_PrintUnformatted(got);
				fprintf(stderr, "# %s: read %s\n#   file %s\n", docs[i][0], a, b);
				free(a);
				free(b);
				fail();
			}
			cJSON_Delete(read);
		}
		for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
			const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(files, gone[i][0]), 0);
			if (who)
				assert_non_null(cJSON_GetObjectItem(r, gone[i][1]));
			else
				assert_null(cJSON_GetObjectItem(r, gone[i][1]));
		}
		for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
			assert_non_null(cJSON_GetObjectItem(
				cJSON_GetArrayItem(cJSON_GetObjectItem(files, kept[i][0]), 0), kept[i][1]));
		const cJSON *c1 = res_of(files, "Condition", "c1");
		if (!who) /* no text at all, not even the person-first one */
			assert_null(text_at(c1, "code", "text", NULL));
		else
			assert_string_equal(text_at(c1, "code", "text", NULL), "hears voices");
		cJSON_Delete(files);
	}
	free(biller);
	free(clinic);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(async_flow_end_to_end),
		cmocka_unit_test(kickoff_refusals),
		cmocka_unit_test(since_after_updates_and_deletes),
		cmocka_unit_test(group_and_patient_export),
		cmocka_unit_test(cancel_removes_the_export),
		cmocka_unit_test(finished_exports_expire),
		cmocka_unit_test(restart_during_an_export),
		cmocka_unit_test(node_client_runs_the_flow),
		cmocka_unit_test(billing_token_exports_what_it_may_read),
		cmocka_unit_test(recovery_client_files_are_person_first),
		cmocka_unit_test(billing_client_files_hold_the_minimum_necessary_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
