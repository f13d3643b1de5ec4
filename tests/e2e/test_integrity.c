/* End-to-end tests of the store's integrity: bytes flipped inside stored
 * resources (not only whole pages) are never served, whatever the path
 * (read, vread, history, search, _include, export, outbox delivery);
 * `crosswalk check` finds damage and `--repair` rebuilds the search index;
 * check refuses a store a running gateway holds. The damage is done to the
 * database file itself, with the gateway stopped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

/* A private data directory and the configuration naming it. */
static void data_dir(char *conf, size_t n, const char *extra)
{
	char dir[256];
	snprintf(dir, sizeof dir, "/tmp/cw-integrity-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	snprintf(conf, n, "\"data_dir\":\"%s/data\"%s%s", dir, extra ? "," : "", extra ? extra : "");
}

/* The store.db path of a configuration made by data_dir. */
static void db_path(const char *conf, char *out, size_t n)
{
	const char *start = strchr(conf, ':') + 2;
	int len = (int)(strchr(start, '"') - start);
	snprintf(out, n, "%.*s/store.db", len, start);
}

/* A gateway gw on a private data directory: its configuration into conf
 * (600 bytes), the path of its store.db into db (400 bytes). */
static void start_in_new_dir(struct gw *gw, char conf[600], char db[400])
{
	data_dir(conf, 600, NULL);
	db_path(conf, db, 400);
	assert_int_equal(gw_start(gw, conf), 0);
}

static void put(const struct gw *gw, const char *path, const char *body, long want)
{
	struct resp r;
	assert_int_equal(http_do(gw, "PUT", path, fj, body, strlen(body), &r), 0);
	if (r.status != want)
		fprintf(stderr, "# PUT %s: %ld %s\n", path, r.status, r.body);
	assert_int_equal(r.status, want);
	resp_free(&r);
}

/* Replaces every occurrence of from in the file by to (same length);
 * returns how many. */
static int replace_in_file(const char *path, const char *from, const char *to)
{
	size_t len = strlen(from);
	assert_int_equal(strlen(to), len);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size > 0);
	char *buf = malloc((size_t)size);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	int n = 0;
	for (long i = 0; i + (long)len <= size; i++) {
		if (memcmp(buf + i, from, len) == 0) {
			memcpy(buf + i, to, len);
			n++;
		}
	}
	rewind(f);
	assert_int_equal(fwrite(buf, 1, (size_t)size, f), (size_t)size);
	assert_int_equal(fclose(f), 0);
	free(buf);
	return n;
}

/* GET path answers 500 with the gateway's integrity message naming what,
 * and nothing of the altered content. */
static void refused(const struct gw *gw, const char *path, const char *what)
{
	struct resp r;
	assert_int_equal(http_do(gw, "GET", path, NULL, NULL, 0, &r), 0);
	if (r.status != 500 || !strstr(r.body, what))
		fprintf(stderr, "# GET %s: %ld %s\n", path, r.status, r.body);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "\"OperationOutcome\""));
	assert_non_null(strstr(r.body, what));
	assert_non_null(strstr(r.body, "failed its integrity check; restore from backup or run `crosswalk check`"));
	assert_null(strstr(r.body, "ALTERED"));
	resp_free(&r);
}

static long count_in(const char *text, const char *what)
{
	long n = 0;
	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* Bytes of two versions' stored JSON flipped (the record's structure
 * intact, so SQLite sees nothing): every path that would return them
 * answers 500 instead; the untouched resources are served; /healthz says
 * degraded, /metrics counts, the log says it once; `crosswalk check` names
 * both versions and --repair says they cannot be rebuilt. */
static void flipped_content_is_never_served(void **state)
{
	(void)state;
	char conf[600], db[400];
	struct gw gw;
	start_in_new_dir(&gw, conf, db);
	put(&gw, "/fhir/Patient/p1",
	    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Keepsake\"}],"
	    "\"communication\":[{\"language\":{\"text\":\"MARKER-first-version\"}}]}",
	    201);
	put(&gw, "/fhir/Patient/p1",
	    "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Keepsake\"}],"
	    "\"communication\":[{\"language\":{\"text\":\"MARKER-second-versn\"}}]}",
	    200);
	put(&gw, "/fhir/Patient/p2", "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"Intact\"}]}",
	    201);
	put(&gw, "/fhir/Observation/o1",
	    "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"weight\"},"
	    "\"subject\":{\"reference\":\"Patient/p1\"}}",
	    201);
	/* the read cache holds p1 now: a restart empties it */
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/fhir/Patient/p1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);

	assert_int_equal(replace_in_file(db, "MARKER-first-version", "ALTERED-first-versio"), 1);
	assert_int_equal(replace_in_file(db, "MARKER-second-versn", "ALTERED-second-vers"), 1);

	assert_int_equal(gw_start(&gw, conf), 0);
	/* the start-up sample (the newest versions) saw it already */
	struct resp h;
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &h), 0);
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.body, "\"degraded\""));
	resp_free(&h);
	refused(&gw, "/fhir/Patient/p1", "Patient/p1 version 2");
	refused(&gw, "/fhir/Patient/p1", "Patient/p1 version 2"); /* not cached either */
	refused(&gw, "/fhir/Patient/p1/_history/1", "Patient/p1 version 1");
	refused(&gw, "/fhir/Patient/p1/_history/2", "Patient/p1 version 2");
	refused(&gw, "/fhir/Patient/p1/_history", "Patient/p1 version 2");
	refused(&gw, "/fhir/Patient/_history", "Patient/p1 version");
	refused(&gw, "/fhir/_history", "Patient/p1 version");
	refused(&gw, "/fhir/Patient?_id=p1", "Patient/p1 version 2");
	refused(&gw, "/fhir/Patient?family=Keepsake", "Patient/p1 version 2");
	refused(&gw, "/fhir/Observation?_include=Observation:subject", "Patient/p1 version 2");
	refused(&gw, "/fhir/Observation?_id=o1&_include:iterate=Observation:subject", "Patient/p1 version 2");
	refused(&gw, "/export/billing?patient=p1", "Patient/p1 version 2");
	/* what is intact is served */
	assert_int_equal(http_do(&gw, "GET", "/fhir/Patient/p2", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/fhir/Observation/o1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"degraded\""));
	assert_non_null(strstr(r.body, "integrity check"));
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	const char *m = strstr(r.body, "\ncrosswalk_store_corrupt_total ");
	assert_non_null(m);
	assert_true(atol(m + strlen("\ncrosswalk_store_corrupt_total ")) >= 12);
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
	char *log = gw_log(&gw);
	assert_non_null(log);
	assert_int_equal(count_in(log, "failed its integrity check: it is not served"), 1);
	assert_null(strstr(log, "ALTERED"));
	free(log);

	static char out[1 << 16];
	const char *check[] = {"check", NULL};
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 1);
	assert_non_null(strstr(out, "damaged: Patient/p1 version 1"));
	assert_non_null(strstr(out, "damaged: Patient/p1 version 2"));
	assert_null(strstr(out, "Patient/p2 version"));
	const char *repair[] = {"check", "--repair", NULL};
	assert_int_equal(gw_run_command(conf, repair, 30000, out, sizeof out), 1);
	assert_non_null(strstr(out, "restore the data directory from a backup"));
}

/* A store-and-forward record whose stored version was altered is never
 * delivered: it becomes a dead letter naming the integrity failure. The
 * upstream is a closed port, so the record waits for a retry meanwhile. */
static void altered_version_is_not_delivered(void **state)
{
	(void)state;
	char conf[900], db[400];
	data_dir(conf, sizeof conf,
		 "\"upstream\":{\"base_url\":\"http://127.0.0.1:9/fhir\",\"routes\":{\"Basic\":\"store-and-forward\"},"
		 "\"retry_base_ms\":50,\"retry_max_ms\":200,\"max_attempts\":1000,\"connect_timeout_ms\":200}");
	db_path(conf, db, sizeof db);
	struct gw gw;
	assert_int_equal(gw_start(&gw, conf), 0);
	put(&gw, "/fhir/Basic/s1", "{\"resourceType\":\"Basic\",\"id\":\"s1\",\"code\":{\"text\":\"MARKER-outbound\"}}",
	    201);
	assert_int_equal(gw_outbox_number(&gw, "pending"), 1);
	assert_int_equal(gw_stop(&gw, 10000), 0);
	assert_int_equal(replace_in_file(db, "MARKER-outbound", "ALTERED-outbnd!"), 1);
	assert_int_equal(gw_start(&gw, conf), 0);
	long until = now_ms() + 10000;
	while (gw_outbox_number(&gw, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&gw, "dead"), 1);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Basic/s1 version 1 failed its integrity check"));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

static void search_total(const struct gw *gw, const char *path, int want)
{
	struct resp r;
	assert_int_equal(http_do(gw, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	char t[32];
	snprintf(t, sizeof t, "\"total\":%d,", want);
	if (!strstr(r.body, t))
		fprintf(stderr, "# GET %s: %s\n", path, r.body);
	assert_non_null(strstr(r.body, t));
	resp_free(&r);
}

/* The search index altered (the normalised family name its rows hold):
 * searches answer wrong; `crosswalk check` finds it (exit 1), --repair
 * rebuilds it from the stored resources (exit 0, the store clean after),
 * and the searches answer right again. */
static void damaged_index_found_and_repaired(void **state)
{
	(void)state;
	char conf[600], db[400];
	struct gw gw;
	start_in_new_dir(&gw, conf, db);
	for (int i = 0; i < 30; i++) {
		char path[64], body[256];
		snprintf(path, sizeof path, "/fhir/Patient/q%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"id\":\"q%d\",\"name\":[{\"family\":\"%s\"}],\"gender\":\"%"
			 "s\"}",
			 i, i < 3 ? "Qzvbxfamily" : "Common", i % 2 ? "male" : "female");
		put(&gw, path, body, 201);
	}
	search_total(&gw, "/fhir/Patient?family=Qzvbxfamily", 3);
	assert_int_equal(gw_stop(&gw, 10000), 0);
	/* the index keeps the name lowercased: only its rows hold these bytes */
	assert_true(replace_in_file(db, "qzvbxfamily", "qzvbxfamilz") >= 1);

	assert_int_equal(gw_start(&gw, conf), 0);
	search_total(&gw, "/fhir/Patient?family=Qzvbxfamily", 0); /* wrong, and silent */
	assert_int_equal(gw_stop(&gw, 10000), 0);

	static char out[1 << 16];
	const char *check[] = {"check", NULL};
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 1);
	assert_non_null(strstr(out, "search index rows missing for Patient/q0"));
	assert_non_null(strstr(out, "run `crosswalk check --repair`"));
	const char *repair[] = {"check", "--repair", NULL};
	assert_int_equal(gw_run_command(conf, repair, 60000, out, sizeof out), 0);
	assert_non_null(strstr(out, "repair: done"));
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 0);
	assert_non_null(strstr(out, "the store is clean"));

	assert_int_equal(gw_start(&gw, conf), 0);
	search_total(&gw, "/fhir/Patient?family=Qzvbxfamily", 3);
	search_total(&gw, "/fhir/Patient?family=Qzvbxfamilz", 0);
	search_total(&gw, "/fhir/Patient?family=Common", 27);
	search_total(&gw, "/fhir/Patient?gender=male", 15);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "\"ok\""));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* `crosswalk check` on the log of access records a real gateway wrote
 * (docs/audit.md): the gateway is killed before its pause indexes the log,
 * so the records are still in it. An intact log passes (exit 0); one
 * record's stored text altered in the file is named by its position and id,
 * and check exits 1 saying it cannot be repaired, only restored; `--repair`
 * says the same (exit 1) and keeps the log: with the bytes put back the
 * store is clean and a gateway serves every record. */
static void check_names_a_damaged_access_record_and_repair_keeps_the_log(void **state)
{
	(void)state;
	char conf[600], db[400];
	struct gw gw;
	start_in_new_dir(&gw, conf, db);
	enum { N = 20 };
	for (int i = 0; i < N; i++) {
		char h[64];
		snprintf(h, sizeof h, "X-Request-Id: logged-%02d", i);
		const char *hdrs[] = {h, NULL};
		struct resp r;
		assert_int_equal(http_do(&gw, "GET", "/fhir/Patient/none", hdrs, NULL, 0, &r), 0);
		assert_int_equal(r.status, 404);
		resp_free(&r);
	}
	assert_int_equal(kill(gw.pid, SIGKILL), 0);
	gw_stop(&gw, 5000); /* reaps it */

	static char out[1 << 16];
	const char *check[] = {"check", NULL};
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 0);
	assert_non_null(strstr(out, "0 damaged appended records"));
	assert_non_null(strstr(out, "the store is clean"));
	/* the last record's text, still in the log (the check's close wrote the
	 * write-ahead log into the file) */
	assert_int_equal(replace_in_file(db, "logged-19", "loggeX-19"), 1);
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 1);
	if (!strstr(out, "damaged: the appended record at position"))
		fprintf(stderr, "# %s", out);
	assert_non_null(strstr(out, "damaged: the appended record at position"));
	assert_non_null(strstr(out, ", AuditEvent/"));
	assert_non_null(strstr(out, "1 damaged appended records"));
	assert_non_null(strstr(out, "not repairable: the appended records named above"));
	assert_null(strstr(out, "the store is clean"));
	const char *repair[] = {"check", "--repair", NULL};
	assert_int_equal(gw_run_command(conf, repair, 60000, out, sizeof out), 1);
	assert_non_null(strstr(out, "damaged: the appended record at position"));
	assert_non_null(strstr(out, "not repairable: the appended records named above"));

	/* the repair kept the log: put back as it was, it is clean again */
	assert_int_equal(replace_in_file(db, "loggeX-19", "logged-19"), 1);
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 0);
	assert_non_null(strstr(out, "0 damaged appended records"));
	assert_non_null(strstr(out, "the store is clean"));
	assert_int_equal(gw_start(&gw, conf), 0);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/fhir/AuditEvent?_count=200", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	for (int i = 0; i < N; i++) {
		char rid[32];
		snprintf(rid, sizeof rid, "\"logged-%02d\"", i);
		if (!strstr(r.body, rid))
			fail_msg("the record of request %s is not served", rid);
	}
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* check refuses a store a running gateway holds, and says so (exit 2). */
static void check_refuses_a_running_gateway(void **state)
{
	(void)state;
	char conf[600];
	data_dir(conf, sizeof conf, NULL);
	struct gw gw;
	assert_int_equal(gw_start(&gw, conf), 0);
	static char out[8192];
	const char *check[] = {"check", NULL};
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 2);
	assert_non_null(strstr(out, "a running gateway"));
	assert_non_null(strstr(out, "stop it first"));
	assert_int_equal(gw_stop(&gw, 10000), 0);
	assert_int_equal(gw_run_command(conf, check, 30000, out, sizeof out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flipped_content_is_never_served),
		cmocka_unit_test(altered_version_is_not_delivered),
		cmocka_unit_test(damaged_index_found_and_repaired),
		cmocka_unit_test(check_refuses_a_running_gateway),
		cmocka_unit_test(check_names_a_damaged_access_record_and_repair_keeps_the_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
