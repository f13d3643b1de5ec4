/* End-to-end tests of the commit queue: single writes are committed in
 * groups by the store's committer while their requests wait without a
 * worker thread (core/store/README.md, "Commit queue"). The gateway runs on
 * its default worker thread count, or on two threads where a test needs
 * writes to outnumber the workers; the disk_fault shim (tests/shims) holds a
 * commit's fsync of the write-ahead log, or fails its writes as a full disk
 * does, while the test watches what the gateway answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

#define WRITERS 64

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static void shim_path(char *buf, size_t n)
{
	const char *dir = getenv("CW_TEST_SHIM_DIR");
	snprintf(buf, n, "%s/disk_fault.so", dir && *dir ? dir : "build/default/test-shims");
}

/* Starts a gateway on data_dir with the disk_fault shim preloaded, its hold
 * and full files named in dir. */
static void start_with_shim(struct gw *g, const char *dir, const char *extra)
{
	char shim[512], holdf[300], fullf[300];
	shim_path(shim, sizeof shim);
	assert_int_equal(access(shim, R_OK), 0);
	snprintf(holdf, sizeof holdf, "%s/hold", dir);
	snprintf(fullf, sizeof fullf, "%s/full", dir);
	const char *const env[] = {"CW_DISK_HOLD", holdf, "CW_DISK_FULL", fullf, NULL};
	int started = gw_start_preloaded(g, extra, shim, env);
	assert_int_equal(started, 0);
}

static void touch(const char *dir, const char *name)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static void rm(const char *dir, const char *name)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	unlink(p);
}

static bool present(const char *dir, const char *name)
{
	char p[300];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* One writer: posts `count` Observations, keeps each answer's status and id. */
struct writer {
	const struct gw *g;
	int n, count;
	long status[8];
	char id[8][80];
	atomic_int *answered;
};

static void *write_main(void *p)
{
	struct writer *w = p;
	for (int i = 0; i < w->count; i++) {
		char body[300];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"queued %d.%d\"},"
			 "\"valueInteger\":%d}",
			 w->n, i, w->n * 10 + i);
		struct resp r;
		w->status[i] =
			http_do(w->g, "POST", "/fhir/Observation", fj, body, strlen(body), &r) == 0 ? r.status : -1;
		char loc[300] = "";
		const char *o = w->status[i] == 201 ? resp_header(&r, "Location", loc, sizeof loc) : NULL;
		const char *s = o ? strstr(o, "/Observation/") : NULL;
		if (s)
			snprintf(w->id[i], sizeof w->id[i], "%.*s", (int)strcspn(s + 13, "/"), s + 13);
		resp_free(&r);
		if (w->answered)
			atomic_fetch_add(w->answered, 1);
	}
	return NULL;
}

static void start_writers(pthread_t *t, struct writer *w, const struct gw *g, int count, atomic_int *answered)
{
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.g = g, .n = i, .count = count, .answered = answered};
		assert_int_equal(pthread_create(&t[i], NULL, write_main, &w[i]), 0);
	}
}

static void join_writers(pthread_t *t)
{
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
}

/* The gateway's crosswalk_http_requests_in_flight; -1 without an answer
 * within 5 s. */
static long inflight(const struct gw *g)
{
	struct resp r;
	if (http_do_within(g, 5000, "GET", "/metrics", NULL, NULL, 0, &r) != 0) {
		resp_free(&r);
		return -1;
	}
	const char *p = strstr(r.body, "\ncrosswalk_http_requests_in_flight ");
	long n = p ? strtol(p + 35, NULL, 10) : -1;
	resp_free(&r);
	return n;
}

/* Waits (up to 20 s) until at least n requests are in flight. */
static bool wait_inflight(const struct gw *g, long n)
{
	long until = now_ms() + 20000;
	while (now_ms() < until) {
		long k = inflight(g);
		if (k < 0)
			return false; /* /metrics itself is not served */
		if (k >= n)
			return true;
		sleep_ms(10);
	}
	return false;
}

static long observation_total(const struct gw *g)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", "/fhir/Observation?_summary=count", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	const char *p = strstr(r.body, "\"total\":");
	long n = p ? strtol(p + 8, NULL, 10) : -1;
	resp_free(&r);
	return n;
}

/* The current test's directory: a failed test leaves no commit held. */
static char cur_dir[64];

static int release_disk(void **state)
{
	(void)state;
	if (cur_dir[0]) {
		rm(cur_dir, "hold");
		rm(cur_dir, "full");
	}
	cur_dir[0] = '\0';
	return 0;
}

static void make_dir(char *dir, size_t n, char *conf, size_t cn, const char *extra)
{
	snprintf(dir, n, "/tmp/cw-cq-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cur_dir, sizeof cur_dir, "%s", dir);
	harness_remove_at_exit(dir);
	snprintf(conf, cn, "\"data_dir\":\"%s/data\",\"limits\":{\"max_connections_per_ip\":256}%s", dir,
		 extra ? extra : "");
}

/* Many concurrent creates on the default worker thread count: every one is
 * acknowledged 201 with its own id, and every one is there after a
 * restart. */
static void concurrent_creates_all_kept(void **state)
{
	(void)state;
	char dir[64], conf[400];
	make_dir(dir, sizeof dir, conf, sizeof conf, NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, conf), 0);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0); /* libcurl set up once */
	resp_free(&r);
	static pthread_t t[WRITERS];
	static struct writer w[WRITERS];
	start_writers(t, w, &g, 5, NULL);
	join_writers(t);
	for (int i = 0; i < WRITERS; i++)
		for (int k = 0; k < 5; k++) {
			assert_int_equal(w[i].status[k], 201);
			assert_true(w[i].id[k][0] != '\0');
		}
	assert_int_equal(gw_stop(&g, 10000), 0);

	assert_int_equal(gw_start(&g, conf), 0);
	assert_int_equal(observation_total(&g), WRITERS * 5);
	for (int i = 0; i < WRITERS; i++)
		for (int k = 0; k < 5; k++) {
			char path[200], want[80];
			snprintf(path, sizeof path, "/fhir/Observation/%s", w[i].id[k]);
			assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
			assert_int_equal(r.status, 200);
			snprintf(want, sizeof want, "\"queued %d.%d\"", i, k);
			assert_non_null(strstr(r.body, want));
			resp_free(&r);
		}
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* While 64 writes wait for a commit that does not end (its fsync held),
 * two worker threads still answer /healthz and reads; once the disk goes
 * on, every write is acknowledged. (The access record is off: with it, a
 * read's answer waits for its AuditEvent's commit like a write; test_audit
 * covers that.) */
static void reads_served_while_writes_wait(void **state)
{
	(void)state;
	char dir[64], conf[400];
	make_dir(dir, sizeof dir, conf, sizeof conf, ",\"threads\":2,\"audit\":{\"enabled\":false}");
	struct gw g;
	start_with_shim(&g, dir, conf);
	struct resp r;
	const char *pat = "{\"resourceType\":\"Patient\",\"id\":\"kept\",\"name\":[{\"family\":\"Kept\"}]}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Patient/kept", fj, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);

	touch(dir, "hold");
	atomic_int answered = 0;
	static pthread_t t[WRITERS];
	static struct writer w[WRITERS];
	start_writers(t, w, &g, 1, &answered);
	/* every write has arrived (and /metrics itself is served) */
	assert_true(wait_inflight(&g, WRITERS + 1));
	for (int i = 0; i < 200 && !present(dir, "hold.waiting"); i++)
		sleep_ms(10);
	assert_true(present(dir, "hold.waiting")); /* a commit is held */

	assert_int_equal(http_do_within(&g, 5000, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(http_do_within(&g, 5000, "GET", "/fhir/Patient/kept", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"Kept\""));
	resp_free(&r);
	assert_int_equal(http_do_within(&g, 5000, "GET", "/fhir/Patient?family=Kept", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(atomic_load(&answered), 0); /* all of them still wait */

	rm(dir, "hold");
	join_writers(t);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(w[i].status[0], 201);
	assert_int_equal(observation_total(&g), WRITERS);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* A commit that fails (the log cannot be written: a full disk) answers
 * every write waiting for it 507, and stores none of them; the write
 * acknowledged before it, and the 64 acknowledged earlier, are kept across a
 * restart, and writes succeed again once there is space. (The access record
 * is off: the first write's AuditEvent would commit in the failing group,
 * and its answer is then withheld; test_audit covers that.) */
static void failed_commit_answers_each_write(void **state)
{
	(void)state;
	char dir[64], conf[400];
	make_dir(dir, sizeof dir, conf, sizeof conf, ",\"threads\":2,\"audit\":{\"enabled\":false}");
	struct gw g;
	start_with_shim(&g, dir, conf);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	resp_free(&r);

	static pthread_t t[WRITERS];
	static struct writer ok[WRITERS], failed[WRITERS];
	start_writers(t, ok, &g, 1, NULL);
	join_writers(t);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(ok[i].status[0], 201);

	/* one write's commit is held in its fsync; 64 more queue behind it */
	touch(dir, "hold");
	static struct writer first;
	first = (struct writer){.g = &g, .n = 100, .count = 1};
	pthread_t ft;
	assert_int_equal(pthread_create(&ft, NULL, write_main, &first), 0);
	for (int i = 0; i < 1000 && !present(dir, "hold.waiting"); i++)
		sleep_ms(10);
	assert_true(present(dir, "hold.waiting"));
	start_writers(t, failed, &g, 1, NULL);
	assert_true(wait_inflight(&g, WRITERS + 2));
	sleep_ms(200);
	/* the disk fills up, then the held commit ends */
	touch(dir, "full");
	rm(dir, "hold");
	pthread_join(ft, NULL);
	assert_int_equal(first.status[0], 201);
	join_writers(t);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(failed[i].status[0], 507);
	rm(dir, "full");

	/* space is back: a write succeeds */
	const char *body = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"after\"}}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Observation", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);

	/* restarted without the shim: exactly the acknowledged writes */
	assert_int_equal(gw_start(&g, conf), 0);
	assert_int_equal(observation_total(&g), WRITERS + 2);
	char path[200];
	snprintf(path, sizeof path, "/fhir/Observation/%s", first.id[0]);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	for (int i = 0; i < WRITERS; i++) {
		snprintf(path, sizeof path, "/fhir/Observation/%s", ok[i].id[0]);
		assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		resp_free(&r);
	}
	assert_int_equal(gw_stop(&g, 10000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(concurrent_creates_all_kept),
		cmocka_unit_test_teardown(reads_served_while_writes_wait, release_disk),
		cmocka_unit_test_teardown(failed_commit_answers_each_write, release_disk),
	};
	return cmocka_run_group_tests_name("commit_queue", tests, NULL, NULL);
}
