/* End-to-end tests of bulk export jobs shared by two gateways on one
 * PostgreSQL database (tests/pgserver.h, two real gateways): an export
 * kicked off on one gateway is polled, downloaded and cancelled on the
 * other; a job whose gateway is killed mid-export is finished by the other
 * once its lease runs out, with every resource once; a finished job
 * expires on whichever gateway is left; one client token serves both
 * gateways; an export survives the database restarting and its own session
 * ending (run again, not failed). To hold an export mid-way the
 * test locks the search index table (a patient-level export reads it)
 * from its own database session: the database's locks, no test hook. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "e2e/harness.h"
#include "pgserver.h"

#define PATIENTS 10
#define OBSERVATIONS 120

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static struct pg_server server;

/* Starts a gateway on the shared database: leases of 2 s, output files
 * split past 4 KiB, finished exports kept expiry_s; no access records
 * (they are stored as resources and would wait for the index lock). */
static void start_with(struct gw *g, int expiry_s, const char *more)
{
	char extra[8192];
	snprintf(extra, sizeof extra,
		 "\"store\":{\"backend\":\"postgresql\",\"postgresql\":{\"conninfo\":\"%s\",\"lease_ms\":2000}},"
		 "\"bulk\":{\"file_max_bytes\":4096,\"expiry_seconds\":%d},\"audit\":{\"enabled\":false}%s%s",
		 server.conninfo, expiry_s, more ? "," : "", more ? more : "");
	assert_int_equal(gw_start(g, extra), 0);
}

static void start(struct gw *g, int expiry_s) { start_with(g, expiry_s, NULL); }

static void stop(struct gw *g)
{
	if (g->pid > 0)
		gw_stop(g, 10000);
	g->pid = 0;
}

static void kill_hard(struct gw *g)
{
	kill(g->pid, SIGKILL);
	waitpid(g->pid, NULL, 0);
	g->pid = 0;
}

static struct resp call(const struct gw *g, const char *method, const char *path, const char *const *headers)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(g, method, path, headers, NULL, 0, &r), 0);
	return r;
}

static void put(const struct gw *g, const char *path, const char *body)
{
	struct resp r;
	assert_int_equal(http_do(g, "PUT", path, fj, body, strlen(body), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
}

static int setup(void **state)
{
	(void)state;
	if (pg_server_start(&server) != 0) {
		fprintf(stderr, "PostgreSQL: %s\n", server.why);
		return -1;
	}
	struct gw g;
	start(&g, 3600);
	char path[128], body[512];
	for (int i = 0; i < PATIENTS; i++) {
		snprintf(path, sizeof path, "/fhir/Patient/p%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"name\":[{\"family\":\"Family%d\"}]}", i, i);
		put(&g, path, body);
	}
	for (int i = 0; i < OBSERVATIONS; i++) {
		snprintf(path, sizeof path, "/fhir/Observation/o%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Observation\",\"id\":\"o%d\",\"status\":\"final\",\"code\":{\"text\":"
			 "\"weight of the patient, measured at the "
			 "visit\"},\"subject\":{\"reference\":\"Patient/p%d\"}}",
			 i, i % PATIENTS);
		put(&g, path, body);
	}
	stop(&g);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_server_stop(&server);
	return 0;
}

/* The status answer's code (and X-Progress into progress, when 202). */
static long status_of(const struct gw *g, const char *status_path, char *progress, size_t plen)
{
	struct resp r = call(g, "GET", status_path, NULL);
	long st = r.status;
	if (progress && plen) {
		progress[0] = '\0';
		if (st == 202)
			resp_header(&r, "X-Progress", progress, plen);
	}
	resp_free(&r);
	return st;
}

/* Downloads every file of type through g (bulk_download: the manifest's
 * counts matching the lines): how many resources, each id seen once (want
 * ids prefix%d for 0..want-1). Returns the number of files. */
static int download_exact(const struct gw *g, const cJSON *manifest, const char *type, const char *prefix, int want)
{
	char *seen = calloc((size_t)want, 1);
	int files = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(manifest, "output")) files +=
		!strcmp(cJSON_GetObjectItem(o, "type")->valuestring, type);
	cJSON *all = bulk_download(g, NULL, manifest, type);
	const cJSON *res;
	cJSON_ArrayForEach(res, all)
	{
		const char *id = cJSON_GetObjectItem(res, "id")->valuestring;
		assert_int_equal(strncmp(id, prefix, strlen(prefix)), 0);
		int k = atoi(id + strlen(prefix));
		assert_true(k >= 0 && k < want);
		assert_int_equal(seen[k], 0); /* once */
		seen[k] = 1;
	}
	assert_int_equal(cJSON_GetArraySize(all), want);
	cJSON_Delete(all);
	free(seen);
	return files;
}

/* Holds the search index table locked for seconds from a session of its
 * own (psql in the background); returns once the lock is granted. */
static pid_t hold_index_lock(int seconds)
{
	char psql[300], sql[200];
	snprintf(psql, sizeof psql, "%s/psql", server.bindir);
	if (access(psql, X_OK) != 0)
		snprintf(psql, sizeof psql, "/usr/bin/psql");
	snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE idx IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%d); COMMIT;",
		 seconds);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {psql, "-X", "-q", "-d", server.conninfo, "-c", sql, NULL};
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		if (pg_server_sql(&server, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE relation ="
					   " 'idx'::regclass AND mode = 'AccessExclusiveLock' AND granted) THEN"
					   " RAISE EXCEPTION 'not yet'; END IF; END $$") == 0)
			return pid;
		sleep_ms(50);
	}
	fail_msg("the index lock was not taken");
	return -1;
}

/* Ends the session holding the lock (the server ends its transaction at
 * once, as when the holder's process dies) and waits for psql. */
static void release_lock(pid_t pid)
{
	assert_int_equal(pg_server_sql(&server, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation ="
						" 'idx'::regclass AND mode = 'AccessExclusiveLock' AND granted"),
			 0);
	waitpid(pid, NULL, 0);
}

/* Polls g until the export is running (its worker took it). */
static void wait_running(const struct gw *g, const char *status_path)
{
	char progress[256];
	for (int i = 0; i < 400; i++) {
		assert_int_equal(status_of(g, status_path, progress, sizeof progress), 202);
		if (strcmp(progress, "queued") != 0)
			return;
		sleep_ms(25);
	}
	fail_msg("the export was never taken");
}

/* Whether the database holds anything of job id: its row or a file. */
static int rows_of(const char *id)
{
	char sql[400];
	snprintf(sql, sizeof sql,
		 "DO $$ BEGIN IF EXISTS (SELECT 1 FROM bulk_job WHERE id = '%s') OR EXISTS (SELECT 1 FROM bulk_chunk"
		 " WHERE job = '%s') THEN RAISE EXCEPTION 'rows left'; END IF; END $$",
		 id, id);
	return pg_server_sql(&server, sql) == 0 ? 0 : 1;
}

static const char *job_of(const char *status_path) { return strrchr(status_path, '/') + 1; }

/* Kicked off on A: polled and downloaded on B (every resource once, the
 * files split as on one gateway), and the same manifest on A. */
static void export_from_one_gateway_is_served_by_the_other(void **state)
{
	(void)state;
	struct gw a, b;
	start(&a, 3600);
	start(&b, 3600);
	char *st = bulk_kickoff(&a, NULL, "GET", "/fhir/$export?_type=Patient,Observation", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&b, NULL, st, 60000);
	assert_int_equal(download_exact(&b, m, "Patient", "p", PATIENTS), 1);
	assert_true(download_exact(&b, m, "Observation", "o", OBSERVATIONS) > 1);
	cJSON *ma = bulk_wait_manifest(&a, NULL, st, 1000);
	/* the same files, each URL on the gateway asked */
	const cJSON *oa = cJSON_GetObjectItem(ma, "output"), *ob = cJSON_GetObjectItem(m, "output");
	assert_int_equal(cJSON_GetArraySize(oa), cJSON_GetArraySize(ob));
	for (int i = 0; i < cJSON_GetArraySize(oa); i++) {
		const cJSON *x = cJSON_GetArrayItem(oa, i), *y = cJSON_GetArrayItem(ob, i);
		assert_string_equal(bulk_path_of(cJSON_GetObjectItem(x, "url")->valuestring),
				    bulk_path_of(cJSON_GetObjectItem(y, "url")->valuestring));
		assert_int_equal(cJSON_GetObjectItem(x, "count")->valueint, cJSON_GetObjectItem(y, "count")->valueint);
	}
	download_exact(&a, ma, "Observation", "o", OBSERVATIONS);
	/* DELETE on B releases it for both */
	struct resp r = call(&b, "DELETE", st, NULL);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	assert_int_equal(status_of(&a, st, NULL, 0), 404);
	assert_int_equal(rows_of(job_of(st)), 0);
	cJSON_Delete(m);
	cJSON_Delete(ma);
	free(st);
	stop(&a);
	stop(&b);
}

/* A is killed while its worker is in the middle of an export: once the
 * lease runs out, B takes the job and finishes it; the manifest holds
 * every resource once. */
static void export_resumes_when_its_gateway_is_killed(void **state)
{
	(void)state;
	struct gw a, b;
	start(&a, 3600);
	start(&b, 3600);
	pid_t lock = hold_index_lock(30);
	char *st = bulk_kickoff(&a, NULL, "GET", "/fhir/Patient/$export?_type=Observation", NULL, NULL);
	wait_running(&b, st); /* A's worker took it (B's is idle: nothing else queued) */
	sleep_ms(300);        /* A's scan waits for the lock */
	kill_hard(&a);
	char progress[256];
	assert_int_equal(status_of(&b, st, progress, sizeof progress), 202);
	release_lock(lock);
	cJSON *m = bulk_wait_manifest(&b, NULL, st, 60000);
	assert_true(download_exact(&b, m, "Observation", "o", OBSERVATIONS) > 1);
	cJSON_Delete(m);
	char *log = gw_log(&b);
	assert_non_null(log);
	assert_non_null(strstr(log, "complete"));
	free(log);
	free(st);
	stop(&b);
}

/* DELETE on B of an export A is running: gone on both at once; A's worker
 * stops and leaves nothing behind (the next export A runs completes). */
static void export_running_on_one_gateway_is_cancelled_on_the_other(void **state)
{
	(void)state;
	struct gw a, b;
	start(&a, 3600);
	start(&b, 3600);
	pid_t lock = hold_index_lock(30);
	char *st = bulk_kickoff(&a, NULL, "GET", "/fhir/Patient/$export?_type=Observation", NULL, NULL);
	wait_running(&b, st);
	struct resp r = call(&b, "DELETE", st, NULL);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	assert_int_equal(status_of(&a, st, NULL, 0), 404);
	assert_int_equal(status_of(&b, st, NULL, 0), 404);
	release_lock(lock);
	/* A's one worker runs the next job only after it let go of this one */
	char *next = bulk_kickoff(&a, NULL, "GET", "/fhir/$export?_type=Patient", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&b, NULL, next, 60000);
	assert_int_equal(download_exact(&b, m, "Patient", "p", PATIENTS), 1);
	cJSON_Delete(m);
	assert_int_equal(rows_of(job_of(st)), 0);
	assert_int_equal(status_of(&a, st, NULL, 0), 404);
	free(next);
	free(st);
	stop(&a);
	stop(&b);
}

/* A finished export expires on the gateway left (B) after A stopped: its
 * row and files are gone from the database. */
static void finished_export_expires_on_any_gateway(void **state)
{
	(void)state;
	struct gw a, b;
	start(&a, 3600);
	start(&b, 2);
	char *st = bulk_kickoff(&a, NULL, "GET", "/fhir/$export?_type=Patient", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&b, NULL, st, 60000);
	cJSON_Delete(m);
	stop(&a);
	long until = now_ms() + 20000;
	while (status_of(&b, st, NULL, 0) == 200 && now_ms() < until)
		sleep_ms(200);
	assert_int_equal(status_of(&b, st, NULL, 0), 404);
	assert_int_equal(rows_of(job_of(st)), 0);
	free(st);
	stop(&b);
}

/* GET path on g with a bearer token: the status (the body in r). */
static long get_as(const struct gw *g, const char *token, const char *path, struct resp *r)
{
	char authz[4200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
	const char *h[] = {authz, "Accept: application/fhir+json", "Prefer: respond-async", NULL};
	assert_int_equal(http_do(g, "GET", path, h, NULL, 0, r), 0);
	return r->status;
}

/* A bulk client's token issued by A serves the whole export on B, as a
 * load balancer sends the client's requests to either: the gateways share
 * one signing key (auth.signing_key_file) and one public_base_url (the
 * token's issuer and audience), and the job row names the client. Kicked off on A, polled, downloaded and cancelled on B with that
 * token; without a token a file is 401, with another client's token
 * (issued by B) the export and its files are not found. */
static void one_token_serves_the_export_on_both_gateways(void **state)
{
	(void)state;
	if (system("node --version >/dev/null 2>&1") != 0 || system("openssl version >/dev/null 2>&1") != 0)
		skip();
	char dir[64] = "/tmp/cw-pg-bulk-auth-XXXXXX";
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	char jwk[2048], args[1024], key[128], cmd[512];
	snprintf(args, sizeof args, "keygen %s", dir);
	assert_int_equal(bulk_node_client(args, jwk, sizeof jwk), 0);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	/* the gateways' one signing key */
	snprintf(cmd, sizeof cmd,
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/signing.pem 2>/dev/null", dir);
	assert_int_equal(system(cmd), 0);
	/* one public address for both, as behind a load balancer: here A's */
	unsigned pub = free_port();
	char auth[6000];
	int n = snprintf(auth, sizeof auth,
			 "\"public_base_url\":\"http://127.0.0.1:%u/fhir\",\"auth\":{\"signing_key_file\":"
			 "\"%s/signing.pem\",\"clients\":["
			 "{\"client_id\":\"exporter\",\"scopes\":\"system/*.rs\",\"jwks\":{\"keys\":[%s]}},"
			 "{\"client_id\":\"other\",\"scopes\":\"system/*.rs\",\"jwks\":{\"keys\":[%s]}}]}",
			 pub, dir, jwk, jwk);
	struct gw a, b;
	start_with(&b, 3600, auth);
	snprintf(auth + n, sizeof auth - (size_t)n, ",\"listen\":\"127.0.0.1:%u\"", pub);
	start_with(&a, 3600, auth);
	char token[4096], other[4096];
	snprintf(args, sizeof args, "token http://127.0.0.1:%u exporter %s system/*.rs", pub, key);
	assert_int_equal(bulk_node_client(args, token, sizeof token), 0);
	snprintf(args, sizeof args, "token http://127.0.0.1:%u other %s system/*.rs", pub, key);
	assert_int_equal(bulk_node_client(args, other, sizeof other), 0);

	struct resp r;
	assert_int_equal(get_as(&a, token, "/fhir/$export?_type=Patient,Observation", &r), 202);
	char loc[1024];
	assert_non_null(resp_header(&r, "Content-Location", loc, sizeof loc));
	resp_free(&r);
	char *st = strdup(bulk_path_of(loc));
	cJSON *m = NULL;
	for (long until = now_ms() + 60000; !m && now_ms() < until;) {
		long code = get_as(&b, token, st, &r);
		if (code == 200)
			m = cJSON_Parse(r.body);
		else if (code != 202)
			fprintf(stderr, "# status on B: %ld %s\n", code, r.body ? r.body : "");
		assert_true(code == 200 || code == 202);
		resp_free(&r);
		if (!m)
			sleep_ms(50);
	}
	assert_non_null(m);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "requiresAccessToken")));
	assert_int_equal(get_as(&b, other, st, &r), 404); /* another client's token */
	resp_free(&r);
	int lines = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(m, "output"))
	{
		const char *fp = bulk_path_of(cJSON_GetObjectItem(o, "url")->valuestring);
		assert_int_equal(get_as(&b, token, fp, &r), 200);
		for (const char *c = r.body; c && *c; c++)
			lines += *c == '\n';
		resp_free(&r);
		assert_int_equal(get_as(&b, other, fp, &r), 404);
		resp_free(&r);
		struct resp bare = call(&b, "GET", fp, NULL);
		assert_int_equal(bare.status, 401);
		resp_free(&bare);
	}
	assert_int_equal(lines, PATIENTS + OBSERVATIONS);
	/* cancelled on B with A's token: gone on both */
	char authz[4200];
	snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
	const char *h[] = {authz, NULL};
	assert_int_equal(http_do(&b, "DELETE", st, h, NULL, 0, &r), 0);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	assert_int_equal(get_as(&a, token, st, &r), 404);
	resp_free(&r);
	assert_int_equal(rows_of(job_of(st)), 0);
	cJSON_Delete(m);
	free(st);
	stop(&a);
	stop(&b);
}

/* The restart cases' start: gateway a exporting Observations, its scan
 * held mid-way by the test's lock on the index (*lock: the locking
 * session). Returns the status path. */
static char *held_export(struct gw *a, pid_t *lock)
{
	start(a, 3600);
	*lock = hold_index_lock(60);
	char *st = bulk_kickoff(a, NULL, "GET", "/fhir/Patient/$export?_type=Observation", NULL, NULL);
	wait_running(a, st);
	sleep_ms(300); /* the scan waits for the lock */
	return st;
}

/* The export at status path st (freed) completes on a with every
 * Observation once, split over several files. */
static void export_completes(const struct gw *a, char *st)
{
	cJSON *m = bulk_wait_manifest(a, NULL, st, 60000);
	assert_true(download_exact(a, m, "Observation", "o", OBSERVATIONS) > 1);
	cJSON_Delete(m);
	free(st);
}

/* The database restarts (a crash: every session cut off) while the export
 * is in the middle of its scan, held by the test's lock on the index: the
 * export is run again once the database is back, not failed, and its
 * manifest holds every resource once; its status asked right after the
 * restart is still 202, not 404. */
static void export_survives_a_database_restart(void **state)
{
	(void)state;
	struct gw a;
	pid_t lock;
	char *st = held_export(&a, &lock);
	pg_server_kill(&server);
	waitpid(lock, NULL, 0); /* its session is gone with the server */
	assert_int_equal(pg_server_start_again(&server), 0);
	/* every poll from now on: 202 until the manifest (no "no such job"
	 * while the gateway's connections are made again) */
	export_completes(&a, st);
	stop(&a);
}

/* The export's own database session is ended mid-scan (as a failover tool
 * or an administrator ends sessions) while the database stays up: the
 * error is transient, so the export runs again and completes rather than
 * being recorded as failed. */
static void export_survives_its_session_ending(void **state)
{
	(void)state;
	struct gw a;
	pid_t lock;
	char *st = held_export(&a, &lock);
	assert_int_equal(pg_server_sql(&server, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation ="
						" 'idx'::regclass AND NOT granted"),
			 0);
	sleep_ms(300); /* the export saw its error while the lock is still held */
	release_lock(lock);
	export_completes(&a, st);
	char *log = gw_log(&a);
	assert_non_null(log);
	assert_non_null(strstr(log, "runs again from the start"));
	free(log);
	stop(&a);
}

/* What a call during the outage answers: 503 with Retry-After (the job
 * may well exist), never 404. */
static void expect_unavailable(const struct gw *g, const char *method, const char *path)
{
	struct resp r = call(g, method, path, NULL);
	char after[32] = "";
	if (r.status != 503 || !resp_header(&r, "Retry-After", after, sizeof after) || atoi(after) < 1)
		fail_msg("%s %s while the database is down: %ld (Retry-After \"%s\"), not 503 with Retry-After", method,
			 path, r.status, after);
	resp_free(&r);
}

/* While the database is down, a finished export's status, a file of it
 * and its DELETE answer 503 with Retry-After, not 404; once the database
 * is back the same poll answers the manifest and the file downloads. */
static void export_status_is_unavailable_while_the_database_is_down(void **state)
{
	(void)state;
	struct gw a;
	start(&a, 3600);
	char *st = bulk_kickoff(&a, NULL, "GET", "/fhir/Patient/$export?_type=Observation", NULL, NULL);
	cJSON *m = bulk_wait_manifest(&a, NULL, st, 60000);
	const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "output"), 0);
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(first, "url");
	assert_true(cJSON_IsString(url));
	char file[512];
	snprintf(file, sizeof file, "%s", bulk_path_of(url->valuestring));
	cJSON_Delete(m);
	pg_server_kill(&server);
	expect_unavailable(&a, "GET", st);
	expect_unavailable(&a, "GET", file);
	expect_unavailable(&a, "DELETE", st);
	assert_int_equal(pg_server_start_again(&server), 0);
	long deadline = now_ms() + 30000, code = 0;
	while ((code = status_of(&a, st, NULL, 0)) == 503 && now_ms() < deadline)
		sleep_ms(100);
	assert_int_equal(code, 200);
	struct resp r = call(&a, "GET", file, NULL);
	assert_int_equal(r.status, 200);
	assert_true(r.len > 0);
	resp_free(&r);
	export_completes(&a, st);
	stop(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(export_from_one_gateway_is_served_by_the_other),
		cmocka_unit_test(export_resumes_when_its_gateway_is_killed),
		cmocka_unit_test(export_running_on_one_gateway_is_cancelled_on_the_other),
		cmocka_unit_test(finished_export_expires_on_any_gateway),
		cmocka_unit_test(one_token_serves_the_export_on_both_gateways),
		cmocka_unit_test(export_survives_a_database_restart),
		cmocka_unit_test(export_survives_its_session_ending),
		cmocka_unit_test(export_status_is_unavailable_while_the_database_is_down),
	};
	const char *filter = getenv("CW_TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, setup, teardown);
}
