/* End-to-end tests of the gateway's life cycle: signals and shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* A private directory holding a copy of the test plugin tp_slow. */
static void slow_plugin_dir(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/cw-life-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/tp_slow.so", env_or("CW_TEST_PLUGIN_DIR", "build/default/test-plugins"));
	snprintf(to, sizeof to, "%s/tp_slow.so", dir);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* A request stuck in a plugin does not keep the process alive: after
 * shutdown_grace_ms it is cut off, logged (method, path without the query,
 * request id) and the process exits 3. */
static void shutdown_cuts_off_a_stuck_request(void **state)
{
	(void)state;
	char dir[256];
	slow_plugin_dir(dir, sizeof dir);
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
	slow_plugin_dir(dir, sizeof dir);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown_cuts_off_a_stuck_request),
		cmocka_unit_test(sighup_is_ignored),
		cmocka_unit_test(data_dir_writable_by_others_refused),
		cmocka_unit_test(plugin_dir_in_world_writable_parent_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
