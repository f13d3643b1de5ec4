/* End-to-end tests of the gateway's life cycle: signals and shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

/* A request stuck in a plugin does not keep the process alive: after
 * shutdown_grace_ms it is cut off, logged (method, path without the query,
 * request id) and the process exits 3. */
static void shutdown_cuts_off_a_stuck_request(void **state)
{
	(void)state;
	char dir[256];
	harness_test_plugins(dir, sizeof dir, "tp_slow", NULL);
	const char *args[] = {"--plugins", dir, NULL};
	struct gw gw;
	assert_int_equal(gw_start_args(&gw, "\"limits\":{\"shutdown_grace_ms\":300}", args), 0);
	char body[512], req[1024];
	snprintf(body, sizeof body, "{\"key\":\"hang:%s/release\"}", dir);
	snprintf(req, sizeof req,
		 "POST /ingest/slow?secret=s3cr3t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		 "X-Request-Id: stuck-request-1\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(body), body);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	assert_int_equal(raw_send(fd, req, strlen(req)), 0);
	sleep_ms(500); /* the handler is now in the plugin */
	int st = gw_stop(&gw, 10000);
	char *log = gw_log(&gw);
	assert_non_null(log);
	assert_int_equal(st, 3);
	const char *cut = strstr(log, "\"event\":\"request_cut_off\"");
	assert_non_null(cut);
	const char *eol = strchr(cut, '\n');
	size_t len = eol ? (size_t)(eol - cut) : strlen(cut);
	char line[2048];
	snprintf(line, sizeof line, "%.*s", (int)len, cut);
	assert_non_null(strstr(line, "\"request_id\":\"stuck-request-1\""));
	assert_non_null(strstr(line, "\"method\":\"POST\""));
	assert_non_null(strstr(line, "\"path\":\"/ingest/slow\""));
	assert_null(strstr(log, "s3cr3t"));
	free(log);
	char rel[300];
	snprintf(rel, sizeof rel, "%s/release", dir);
	FILE *f = fopen(rel, "w");
	if (f)
		fclose(f);
	close(fd);
}

/* SIGHUP neither stops the gateway nor disturbs it: it is logged and
 * ignored, and SIGTERM then stops it cleanly. */
static void sighup_is_ignored(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, NULL), 0);
	assert_int_equal(kill(gw.pid, SIGHUP), 0);
	sleep_ms(300);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	char *log = gw_log(&gw);
	assert_non_null(log);
	assert_non_null(strstr(log, "\"event\":\"signal_ignored\""));
	free(log);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* A data directory others may write to is refused at start (exit 2) with
 * what is wrong and how to fix it. */
static void data_dir_writable_by_others_refused(void **state)
{
	(void)state;
	char dir[256], data[300], conf[400], out[4096];
	snprintf(dir, sizeof dir, "/tmp/cw-life-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	snprintf(data, sizeof data, "%s/data", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	assert_int_equal(chmod(data, 0777), 0);
	snprintf(conf, sizeof conf, "\"data_dir\":\"%s\"", data);
	assert_int_equal(gw_run_expect_exit(conf, NULL, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "writable by group or others (mode 0777)"));
	assert_non_null(strstr(out, "chmod 0700"));
	/* made private, the same directory serves */
	assert_int_equal(chmod(data, 0700), 0);
	struct gw gw;
	assert_int_equal(gw_start(&gw, conf), 0);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* A plugin directory inside a world-writable parent without the sticky bit
 * is refused at start (exit 2); with the sticky bit it is used. */
static void plugin_dir_in_world_writable_parent_refused(void **state)
{
	(void)state;
	char dir[256], plugins[300], out[4096];
	harness_test_plugins(dir, sizeof dir, "tp_slow", NULL);
	snprintf(plugins, sizeof plugins, "%s/plugins", dir);
	assert_int_equal(mkdir(plugins, 0755), 0);
	char from[400], to[400];
	snprintf(from, sizeof from, "%s/tp_slow.so", dir);
	snprintf(to, sizeof to, "%s/tp_slow.so", plugins);
	assert_int_equal(rename(from, to), 0);
	const char *args[] = {"--plugins", plugins, NULL};
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(gw_run_expect_exit(NULL, args, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "writable by others without the sticky bit"));
	assert_non_null(strstr(out, dir));
	assert_int_equal(chmod(dir, 01777), 0);
	struct gw gw;
	assert_int_equal(gw_start_args(&gw, NULL, args), 0);
	assert_int_equal(gw_stop(&gw, 10000), 0);
	assert_int_equal(chmod(dir, 0700), 0);
}

static char full_mnt[300];

static int unmount_full(void **state)
{
	(void)state;
	if (full_mnt[0])
		umount2(full_mnt, MNT_DETACH);
	full_mnt[0] = '\0';
	return 0;
}

/* Writes until the data directory (a 2 MiB tmpfs) is full; returns the
 * status of the first refused one. */
static long fill(const struct gw *gw, const char *path, bool ingest, struct resp *last)
{
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	const char *jct[] = {"Content-Type: application/json", NULL};
	size_t big = 200000;
	char *text = malloc(big + 1);
	assert_non_null(text);
	for (size_t i = 0; i < big; i++)
		text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	text[big] = '\0';
	char *body = malloc(big + 512);
	assert_non_null(body);
	long status = 0;
	for (int i = 0; i < 100; i++) {
		if (ingest)
			snprintf(body, big + 512, "{\"id\":\"f%d\",\"text\":\"%s\",\"date\":\"03/15/2024\"}", i, text);
		else
			snprintf(body, big + 512, "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"%d %s\"}}", i, text);
		assert_int_equal(http_do(gw, "POST", path, ingest ? jct : ct, body, strlen(body), last), 0);
		status = last->status;
		if (status != 201)
			break;
		resp_free(last);
	}
	free(text);
	free(body);
	return status;
}

/* Full storage: writes (REST and /ingest) answer 507 with an
 * OperationOutcome in the gateway's words, /healthz says "degraded" and
 * /metrics counts it; once space is back, a write succeeds and /healthz is
 * "ok" again. The data directory is a 2 MiB tmpfs. */
static void full_storage_answers_507(void **state)
{
	(void)state;
	char dir[256], conf[400];
	snprintf(dir, sizeof dir, "/tmp/cw-life-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	snprintf(full_mnt, sizeof full_mnt, "%s/data", dir);
	assert_int_equal(mkdir(full_mnt, 0700), 0);
	if (mount("tmpfs", full_mnt, "tmpfs", 0, "size=2m,mode=0700") != 0) {
		full_mnt[0] = '\0';
		fprintf(stderr, "# skipped: cannot mount a small tmpfs here (%s); needs root\n", strerror(errno));
		skip();
	}
	snprintf(conf, sizeof conf, "\"data_dir\":\"%s\"", full_mnt);
	struct gw gw;
	assert_int_equal(gw_start(&gw, conf), 0);
	struct resp r;
	assert_int_equal(fill(&gw, "/fhir/Basic", false, &r), 507);
	assert_non_null(strstr(r.body, "\"OperationOutcome\""));
	assert_non_null(strstr(r.body, "storage is full"));
	assert_null(strstr(r.body, "disk is full")); /* not the library's wording */
	resp_free(&r);
	assert_int_equal(fill(&gw, "/ingest/echo", true, &r), 507);
	assert_non_null(strstr(r.body, "\"OperationOutcome\""));
	assert_non_null(strstr(r.body, "storage is full"));
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"degraded\""));
	assert_non_null(strstr(r.body, "storage full"));
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "\ncrosswalk_store_full_total 1\n"));
	resp_free(&r);
	/* space comes back: the next write succeeds and health is ok again */
	assert_int_equal(mount("tmpfs", full_mnt, "tmpfs", MS_REMOUNT, "size=64m,mode=0700"), 0);
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	const char *small = "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"after\"}}";
	assert_int_equal(http_do(&gw, "POST", "/fhir/Basic", ct, small, strlen(small), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ok\""));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* A damaged store (a flipped page-type byte in a copy of a real store) is
 * refused at start, exit 2, with a message that says what to do: restore,
 * or `crosswalk check --repair` for what can be rebuilt. */
static void damaged_store_refused(void **state)
{
	(void)state;
	char dir[256], data[300], conf[400], out[4096];
	snprintf(dir, sizeof dir, "/tmp/cw-life-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	snprintf(data, sizeof data, "%s/data", dir);
	snprintf(conf, sizeof conf, "\"data_dir\":\"%s\"", data);
	struct gw gw;
	assert_int_equal(gw_start(&gw, conf), 0);
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	for (int i = 0; i < 40; i++) {
		char body[256];
		snprintf(body, sizeof body, "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"record %d\"}}", i);
		struct resp r;
		assert_int_equal(http_do(&gw, "POST", "/fhir/Basic", ct, body, strlen(body), &r), 0);
		assert_int_equal(r.status, 201);
		resp_free(&r);
	}
	assert_int_equal(gw_stop(&gw, 10000), 0);
	/* the clean store starts */
	assert_int_equal(gw_start(&gw, conf), 0);
	assert_int_equal(gw_stop(&gw, 10000), 0);
	char db[400];
	snprintf(db, sizeof db, "%s/store.db", data);
	FILE *f = fopen(db, "r+b");
	assert_non_null(f);
	unsigned char hdr[100];
	assert_int_equal(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
	long page = (long)hdr[16] << 8 | hdr[17];
	if (page == 1)
		page = 65536;
	/* page 2 is a b-tree page; 0x55 is no b-tree page type */
	assert_int_equal(fseek(f, page, SEEK_SET), 0);
	assert_int_equal(fputc(0x55, f), 0x55);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(gw_run_expect_exit(conf, NULL, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "is damaged"));
	assert_non_null(strstr(out, "Restore the data directory from a backup"));
	assert_non_null(strstr(out, "`crosswalk check --repair`"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown_cuts_off_a_stuck_request),
		cmocka_unit_test(sighup_is_ignored),
		cmocka_unit_test(data_dir_writable_by_others_refused),
		cmocka_unit_test(plugin_dir_in_world_writable_parent_refused),
		cmocka_unit_test_teardown(full_storage_answers_507, unmount_full),
		cmocka_unit_test(damaged_store_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
