/* End-to-end test of durability: a write the gateway acknowledges has
 * reached the disk. The gateway runs with the sync_log shim preloaded
 * (tests/shims/sync_log), which records every fsync/fdatasync with the file
 * it syncs; every acknowledged create, update, patch, delete and transaction
 * must have synced the database's write-ahead log (store.db-wal) at least
 * once between the request and its answer. With the database's synchronous
 * setting below FULL, WAL commits are not synced and this fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

/* The shim: CW_TEST_SHIM_DIR, else next to CW_TEST_PLUGIN_DIR, else the
 * default build's. */
static void shim_path(char *buf, size_t n)
{
	const char *dir = getenv("CW_TEST_SHIM_DIR");
	if (dir && *dir) {
		snprintf(buf, n, "%s/sync_log.so", dir);
		return;
	}
	const char *tp = getenv("CW_TEST_PLUGIN_DIR");
	if (tp && *tp) {
		const char *slash = strrchr(tp, '/');
		snprintf(buf, n, "%.*s/test-shims/sync_log.so", slash ? (int)(slash - tp) : 1, slash ? tp : ".");
		return;
	}
	snprintf(buf, n, "build/default/test-shims/sync_log.so");
}

/* How many syncs of the write-ahead log the log file records so far. */
static long wal_syncs(const char *log)
{
	FILE *f = fopen(log, "r");
	if (!f)
		return 0;
	char line[4300];
	long n = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		size_t len = strlen(line);
		if (len >= 12 && strcmp(line + len - 12, "store.db-wal") == 0)
			n++;
	}
	fclose(f);
	return n;
}

/* One request that must be acknowledged with want; returns the syncs of the
 * write-ahead log made between sending it and its answer. */
static long syncs_for(const struct gw *g, const char *log, const char *method, const char *path,
		      const char *const *headers, const char *body, long want, char *location, size_t loclen)
{
	long before = wal_syncs(log);
	struct resp r;
	assert_int_equal(http_do(g, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	if (r.status != want)
		fprintf(stderr, "# %s %s: %ld %s\n", method, path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	if (location)
		assert_non_null(resp_header(&r, "Location", location, loclen));
	resp_free(&r);
	return wal_syncs(log) - before;
}

static void every_acknowledged_write_is_synced(void **state)
{
	(void)state;
	char shim[512], log[300], dir[] = "/tmp/cw-sync-XXXXXX";
	shim_path(shim, sizeof shim);
	assert_int_equal(access(shim, R_OK), 0);
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	snprintf(log, sizeof log, "%s/syncs", dir);

	/* only the gateway gets the shim (the environment is read at exec) */
	const char *const env[] = {"CW_SYNC_LOG", log, NULL};
	struct gw g;
	int started = gw_start_preloaded(&g, NULL, shim, env);
	assert_int_equal(started, 0);

	char loc[300], path[200], body[600];
	long n;

	/* create */
	static const char obs[] = "{\"resourceType\":\"Observation\",%s\"status\":\"final\","
				  "\"code\":{\"text\":\"durable\"},\"valueInteger\":%d}";
	snprintf(body, sizeof body, obs, "", 1);
	n = syncs_for(&g, log, "POST", "/fhir/Observation", fj, body, 201, loc, sizeof loc);
	assert_true(n >= 1);
	const char *p = strstr(loc, "/Observation/");
	assert_non_null(p);
	char id[80];
	snprintf(id, sizeof id, "%.*s", (int)strcspn(p + 13, "/"), p + 13);
	snprintf(path, sizeof path, "/fhir/Observation/%s", id);

	/* several creates in a row: each one synced before its answer */
	for (int i = 2; i <= 6; i++) {
		snprintf(body, sizeof body, obs, "", i);
		n = syncs_for(&g, log, "POST", "/fhir/Observation", fj, body, 201, NULL, 0);
		if (n < 1)
			fprintf(stderr, "# create %d acknowledged with %ld syncs of the log\n", i, n);
		assert_true(n >= 1);
	}

	/* update */
	char idm[120];
	snprintf(idm, sizeof idm, "\"id\":\"%s\",", id);
	snprintf(body, sizeof body, obs, idm, 7);
	assert_true(syncs_for(&g, log, "PUT", path, fj, body, 200, NULL, 0) >= 1);

	/* create by update (PUT with a new id) */
	snprintf(body, sizeof body, obs, "\"id\":\"durable-put\",", 8);
	assert_true(syncs_for(&g, log, "PUT", "/fhir/Observation/durable-put", fj, body, 201, NULL, 0) >= 1);

	/* patch */
	static const char *jp[] = {"Content-Type: application/json-patch+json", NULL};
	assert_true(syncs_for(&g, log, "PATCH", path, jp, "[{\"op\":\"replace\",\"path\":\"/valueInteger\",\"value\":9}]",
			      200, NULL, 0) >= 1);

	/* a transaction */
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
		 "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Durable\"}]},"
		 "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},{\"resource\":"
		 "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Synced\"}]},"
		 "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}");
	assert_true(syncs_for(&g, log, "POST", "/fhir", fj, body, 200, NULL, 0) >= 1);

	/* delete */
	assert_true(syncs_for(&g, log, "DELETE", path, NULL, NULL, 200, NULL, 0) >= 1);

	assert_int_equal(gw_stop(&g, 10000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_acknowledged_write_is_synced),
	};
	return cmocka_run_group_tests_name("durability", tests, NULL, NULL);
}
