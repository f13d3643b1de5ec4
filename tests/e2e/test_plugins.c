/* End-to-end tests of the plugin host: every refusal (through `crosswalk
 * plugins` and `serve`, exit 2, file and reason named), discovery, ingest,
 * export, operations, hook order and effects, and concurrent requests
 * through hooks and a slow mapper. The plugins are the built echo and the
 * test plugins of tests/plugins/, copied into private 0755 directories. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crosswalk/plugin.h"
#include "e2e/harness.h"
#include "fhir/fhir_helpers.h"

static char conf_for[1024];

/* Config splice with plugin_dir set to an empty private directory. */
static const char *conf_empty_plugin_dir(const char *extra)
{
	char empty[256];
	harness_new_dir(empty, sizeof empty);
	snprintf(conf_for, sizeof conf_for, "\"plugin_dir\":\"%s\"%s%s", empty, extra ? "," : "", extra ? extra : "");
	return conf_for;
}

/* Runs both `plugins --plugins DIR` and `serve --plugins DIR`; both must
 * exit 2 and name file and reason. */
static void expect_refused(const char *dir, const char *extra, const char *file, const char *reason)
{
	static char out[65536];
	const char *conf = conf_empty_plugin_dir(extra);
	const char *list[] = {"plugins", "--plugins", dir, NULL};
	int rc = gw_run_command(conf, list, 15000, out, sizeof out);
	if (rc != 2 || !strstr(out, file) || !strstr(out, reason))
		fprintf(stderr, "# plugins rc=%d output:\n%s\n", rc, out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "REFUSED"));
	assert_non_null(strstr(out, file));
	assert_non_null(strstr(out, reason));

	const char *serve[] = {"--plugins", dir, NULL};
	rc = gw_run_expect_exit(conf, serve, 15000, out, sizeof out);
	if (rc != 2 || !strstr(out, file) || !strstr(out, reason))
		fprintf(stderr, "# serve rc=%d output:\n%s\n", rc, out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "plugin refused"));
	assert_non_null(strstr(out, file));
	assert_non_null(strstr(out, reason));
}

/* ------------------------------------------------------------ refusals */

static void refuses_wrong_abi_major(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_test_plugin_dir(), "tp_bad_major", NULL, 0755);
	expect_refused(d, NULL, "tp_bad_major.so", "ABI major 99, but this core speaks 1");
}

/* An older major (the previous one, and 0) is refused as a newer one is. */
static void refuses_older_abi_major(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		unsigned major;
	} older[] = {{"tp_old_major", CW_PLUGIN_ABI_MAJOR - 1}, {"tp_zero_major", 0}};
	for (size_t i = 0; i < sizeof older / sizeof older[0]; i++) {
		char d[256], file[64], reason[128];
		harness_put_plugin(harness_new_dir(d, sizeof d), harness_test_plugin_dir(), older[i].name, NULL, 0755);
		snprintf(file, sizeof file, "%s.so", older[i].name);
		snprintf(reason, sizeof reason, "ABI major %u, but this core speaks %u", older[i].major,
			 (unsigned)CW_PLUGIN_ABI_MAJOR);
		expect_refused(d, NULL, file, reason);
	}
}

static void refuses_small_descriptor(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_test_plugin_dir(), "tp_small_desc", NULL, 0755);
	expect_refused(d, NULL, "tp_small_desc.so", "descriptor is 16 bytes, smaller than");
}

static void refuses_failing_init(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_test_plugin_dir(), "tp_fail_init", NULL, 0755);
	expect_refused(d, NULL, "tp_fail_init.so", "init failed: internal error: tp_fail_init: cannot reach");
}

static void refuses_missing_entry_point(void **state)
{
	(void)state;
	/* A real shared object that is not a plugin: libcjson itself. */
	Dl_info info;
	assert_true(dladdr((void *)cJSON_Version, &info) != 0);
	char d[256], to[512];
	harness_new_dir(d, sizeof d);
	snprintf(to, sizeof to, "%s/notaplugin.so", d);
	harness_copy_file(info.dli_fname, to, 0755);
	expect_refused(d, NULL, "notaplugin.so", "missing entry point cw_plugin_entry");
}

static void refuses_file_that_is_not_elf(void **state)
{
	(void)state;
	char d[256], to[512];
	snprintf(to, sizeof to, "%s/junk.so", harness_new_dir(d, sizeof d));
	FILE *f = fopen(to, "w");
	assert_non_null(f);
	fputs("not a shared object\n", f);
	fclose(f);
	assert_int_equal(chmod(to, 0755), 0);
	expect_refused(d, NULL, "junk.so", "cannot load");
}

static void refuses_bad_names(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", "Echo", 0755);
	expect_refused(d, NULL, "Echo.so", "is not ^[a-z0-9_-]{1,64}$");
	char long_name[70];
	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", long_name, 0755);
	expect_refused(d, NULL, long_name, "is not ^[a-z0-9_-]{1,64}$");
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", "other", 0755);
	expect_refused(d, NULL, "other.so", "descriptor name 'echo' differs from the file name 'other'");
}

static void refuses_path_leaving_the_directory(void **state)
{
	(void)state;
	char outside[256], d[256], target[512], link[512];
	harness_put_plugin(harness_new_dir(outside, sizeof outside), harness_plugin_dir(), "echo", NULL, 0755);
	snprintf(target, sizeof target, "%s/echo.so", outside);
	snprintf(link, sizeof link, "%s/echo.so", harness_new_dir(d, sizeof d));
	assert_int_equal(symlink(target, link), 0);
	expect_refused(d, NULL, "echo.so", "leaves the plugin directory");
}

static void refuses_group_writable_file(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0775);
	expect_refused(d, NULL, "echo.so", "file is writable by group or others (mode 0775)");
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0757);
	expect_refused(d, NULL, "echo.so", "file is writable by group or others (mode 0757)");
}

static void refuses_writable_directory(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0755);
	assert_int_equal(chmod(d, 0775), 0);
	expect_refused(d, NULL, d, "plugin directory is writable by group or others (mode 0775)");
	assert_int_equal(chmod(d, 0757), 0);
	expect_refused(d, NULL, d, "plugin directory is writable by group or others (mode 0757)");
}

static void refuses_missing_directory(void **state)
{
	(void)state;
	expect_refused("/tmp/cw-no-such-plugin-dir", NULL, "/tmp/cw-no-such-plugin-dir",
		       "plugin directory: No such file or directory");
}

static void refuses_duplicate_format(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0755);
	harness_put_plugin(d, harness_test_plugin_dir(), "tp_dup_format", NULL, 0755);
	expect_refused(d, NULL, "tp_dup_format.so", "format 'echo' is already claimed by plugin 'echo'");
}

static void refuses_duplicate_operation(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0755);
	harness_put_plugin(d, harness_test_plugin_dir(), "tp_dup_op", NULL, 0755);
	expect_refused(d, NULL, "tp_dup_op.so", "operation $echo is already claimed by plugin 'echo'");
}

static void refuses_duplicate_plugin_across_directories(void **state)
{
	(void)state;
	char a[256], b[256], extra[600];
	harness_put_plugin(harness_new_dir(a, sizeof a), harness_plugin_dir(), "echo", NULL, 0755);
	harness_put_plugin(harness_new_dir(b, sizeof b), harness_plugin_dir(), "echo", NULL, 0755);
	static char out[65536];
	snprintf(extra, sizeof extra, "\"plugin_dir\":\"%s\"", a);
	const char *list[] = {"plugins", "--plugins", b, NULL};
	assert_int_equal(gw_run_command(extra, list, 15000, out, sizeof out), 2);
	assert_non_null(strstr(out, "plugin name 'echo' is already taken by"));
}

static void refuses_configuration_for_unknown_plugin(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0755);
	expect_refused(d, "\"plugins\":{\"echo\":{},\"nosuch\":{\"x\":\"y\"}}", "crosswalk.json",
		       "plugins.nosuch: no plugin named 'nosuch' was found");
}

static void refuses_echo_with_bad_configuration(void **state)
{
	(void)state;
	char d[256];
	harness_put_plugin(harness_new_dir(d, sizeof d), harness_plugin_dir(), "echo", NULL, 0755);
	expect_refused(d, "\"plugins\":{\"echo\":{\"system\":\"not-a-uri\"}}", "echo.so",
		       "init failed: bad plugin configuration: echo: must be an absolute URI");
}

/* ----------------------------------------------------------- discovery */

static void lists_the_plugins(void **state)
{
	(void)state;
	static char out[65536];
	const char *list[] = {"plugins", NULL};
	assert_int_equal(gw_run_command(NULL, list, 15000, out, sizeof out), 0);
	assert_non_null(strstr(out, "echo 1.0.0 ("));
	assert_non_null(strstr(out, "echo [application/json] to-fhir from-fhir"));
	assert_non_null(strstr(out, "before-store(order 100)"));
	assert_non_null(strstr(out, "$echo(system)"));

	const char *json[] = {"plugins", "--json", NULL};
	assert_int_equal(gw_run_command(NULL, json, 15000, out, sizeof out), 0);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	cJSON *p0 = NULL, *pi; /* plugins come in file-name order; find echo among them */
	cJSON_ArrayForEach(pi, cJSON_GetObjectItem(j, "plugins")) {
		if (!p0 && !strcmp(cJSON_GetObjectItem(pi, "name")->valuestring, "echo"))
			p0 = pi;
	}
	assert_non_null(p0);
	assert_string_equal(cJSON_GetObjectItem(p0, "version")->valuestring, "1.0.0");
	cJSON_Delete(j);

	const char *help[] = {"plugins", "--help", NULL};
	assert_int_equal(gw_run_command(NULL, help, 15000, out, sizeof out), 0);
	assert_non_null(strstr(out, "usage: crosswalk plugins"));
}

/* ------------------------------------------------- the shared gateway */

static struct gw g;
static char tdir[256];

static int start_shared(void **state)
{
	(void)state;
	harness_test_plugins(tdir, sizeof tdir, "tp_change", "tp_issues", "tp_slow", "tp_stop", NULL);
	/* Only echo from the built plugins, whatever else is built beside it. */
	static char edir[256], conf[512];
	harness_new_dir(edir, sizeof edir);
	harness_put_plugin(edir, harness_plugin_dir(), "echo", NULL, 0755);
	snprintf(conf, sizeof conf, "\"plugin_dir\":\"%s\"", edir);
	const char *args[] = {"--plugins", tdir, NULL};
	return gw_start_args(&g, conf, args);
}

static int stop_shared(void **state)
{
	(void)state;
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

static cJSON *body_json(const struct resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len);
	if (!j)
		fprintf(stderr, "# not JSON: %s\n", r->body);
	assert_non_null(j);
	return j;
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static cJSON *first_issue(cJSON *oo)
{
	assert_string_equal(cJSON_GetObjectItem(oo, "resourceType")->valuestring, "OperationOutcome");
	return cJSON_GetArrayItem(cJSON_GetObjectItem(oo, "issue"), 0);
}

static void ingest_runs_store_hooks_in_order(void **state)
{
	(void)state;
	const char *doc = "{\"id\":\"a1\",\"text\":\"hello\",\"date\":\"03/15/2024\"}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/echo?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = body_json(&r);
	assert_string_equal(cJSON_GetObjectItem(b, "resourceType")->valuestring, "Bundle");
	assert_string_equal(cJSON_GetObjectItem(b, "type")->valuestring, "transaction");
	cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0);
	cJSON *res = cJSON_GetObjectItem(e, "resource");
	assert_string_equal(cJSON_GetObjectItem(res, "resourceType")->valuestring, "Basic");
	/* uuid5(uuid5(NS_URL, "urn:crosswalk:echo"), "a1"), computed independently */
	assert_string_equal(cJSON_GetObjectItem(res, "id")->valuestring, "fc48c23a-ef3e-5389-9da0-e01c5f8333b2");
	assert_string_equal(cJSON_GetObjectItem(res, "created")->valuestring, "2024-03-15");
	cJSON *req = cJSON_GetObjectItem(e, "request");
	assert_string_equal(cJSON_GetObjectItem(req, "method")->valuestring, "PUT");
	assert_string_equal(cJSON_GetObjectItem(req, "url")->valuestring, "Basic/fc48c23a-ef3e-5389-9da0-e01c5f8333b2");
	/* Hooks by order across plugins: tp_change 5, tp_stop 10, tp_change 20, echo 100. */
	cJSON *tags = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "meta"), "tag");
	assert_int_equal(cJSON_GetArraySize(tags), 4);
	const char *want[] = {"tp_change:5", "tp_stop:10", "tp_change:20", "echoed"};
	for (int i = 0; i < 4; i++)
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(tags, i), "code")->valuestring, want[i]);
	cJSON_Delete(b);
	resp_free(&r);

	/* Without preview the Bundle is stored as a transaction: the hooks' changes
	 * are what the store holds. */
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 201);
	b = body_json(&r);
	assert_string_equal(cJSON_GetObjectItem(b, "type")->valuestring, "transaction-response");
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Basic/fc48c23a-ef3e-5389-9da0-e01c5f8333b2", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	res = body_json(&r);
	tags = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "meta"), "tag");
	assert_int_equal(cJSON_GetArraySize(tags), 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(tags, i), "code")->valuestring, want[i]);
	cJSON_Delete(res);
	resp_free(&r);

	/* The same hooks run on a plain FHIR create and update. */
	const char *basic = "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"direct\"}}";
	const char *fj[] = {"Content-Type: application/fhir+json", NULL};
	assert_int_equal(http_do(&g, "POST", "/fhir/Basic", fj, basic, strlen(basic), &r), 0);
	assert_int_equal(r.status, 201);
	res = body_json(&r);
	tags = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "meta"), "tag");
	assert_int_equal(cJSON_GetArraySize(tags), 3); /* echo's hook acts on its own format only */
	for (int i = 0; i < 3; i++)
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(tags, i), "code")->valuestring, want[i]);
	cJSON_Delete(res);
	resp_free(&r);
}

static void hook_stop_before_store_answers_outcome(void **state)
{
	(void)state;
	const char *doc = "{\"id\":\"stop-me\",\"text\":\"x\"}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 422);
	cJSON *oo = body_json(&r);
	cJSON *is = first_issue(oo);
	assert_string_equal(cJSON_GetObjectItem(is, "code")->valuestring, "business-rule");
	assert_non_null(strstr(cJSON_GetObjectItem(is, "diagnostics")->valuestring, "tp_stop: this record may not"));
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(is, "expression"), 0)->valuestring,
			    "Basic.identifier[0].value");
	cJSON_Delete(oo);
	resp_free(&r);
}

static void hook_stops_requests_in_order(void **state)
{
	(void)state;
	/* Both plugins stop on X-Test-Stop; tp_stop's order 1 runs first (its file
	 * loads after tp_change's), so its status wins. */
	const char *h1[] = {"X-Test-Stop: 451", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/metadata", h1, NULL, 0, &r), 0);
	assert_int_equal(r.status, 451);
	cJSON *oo = body_json(&r);
	cJSON *is = first_issue(oo);
	assert_string_equal(cJSON_GetObjectItem(is, "code")->valuestring, "forbidden");
	assert_non_null(strstr(cJSON_GetObjectItem(is, "diagnostics")->valuestring, "/fhir/metadata refused"));
	cJSON_Delete(oo);
	resp_free(&r);

	const char *h2[] = {"X-Test-Stop-Late: 1", NULL};
	assert_int_equal(http_do(&g, "GET", "/plugins", h2, NULL, 0, &r), 0);
	assert_int_equal(r.status, 429);
	oo = body_json(&r);
	assert_string_equal(cJSON_GetObjectItem(first_issue(oo), "code")->valuestring, "throttled");
	cJSON_Delete(oo);
	resp_free(&r);

	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static void export_runs_export_hooks_in_order(void **state)
{
	(void)state;
	const char *doc = "{\"resourceType\":\"Basic\",\"id\":\"abc\"}";
	const char *h[] = {"Content-Type: application/fhir+json", "Accept: text/csv", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/export/slow", h, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	char ct[128];
	assert_non_null(resp_header(&r, "Content-Type", ct, sizeof ct));
	assert_non_null(strstr(ct, "text/csv"));
	/* tp_change (5) replaced the resource, then tp_stop (10) changed it. */
	assert_string_equal(r.body, "id\nabc.c5.s10\n");
	resp_free(&r);

	const char *empty = "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}";
	assert_int_equal(http_do(&g, "POST", "/export/slow?_format=json", json_ct, empty, strlen(empty), &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "[]");
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/export/slow", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 400); /* GET names the person */
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/export/slow?patient=nobody", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	const char *xml[] = {"Accept: application/xml", NULL};
	assert_int_equal(http_do(&g, "GET", "/export/slow?patient=nobody", xml, NULL, 0, &r), 0);
	assert_int_equal(r.status, 406);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/export/issues", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 405);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/export/nosuch", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static void echo_round_trip(void **state)
{
	(void)state;
	const char *doc = "{\"id\":\"r-7\",\"text\":\"in my own words\",\"date\":\"2024-02-29\"}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/echo?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = body_json(&r);
	resp_free(&r);
	/* Export the mapped resource straight back. */
	cJSON *res = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0), "resource");
	char *text = cJSON_PrintUnformatted(res);
	cJSON_Delete(b);
	assert_int_equal(http_do(&g, "POST", "/export/echo", json_ct, text, strlen(text), &r), 0);
	free(text);
	assert_int_equal(r.status, 200);
	cJSON *out = body_json(&r);
	cJSON *want = cJSON_Parse("[{\"id\":\"r-7\",\"text\":\"in my own words\",\"date\":\"2024-02-29\"}]");
	assert_true(cJSON_Compare(out, want, true));
	cJSON_Delete(out);
	cJSON_Delete(want);
	resp_free(&r);
}

static void ingest_errors(void **state)
{
	(void)state;
	struct resp r;
	const char *missing = "{\"id\":\"x\"}";
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", json_ct, missing, strlen(missing), &r), 0);
	assert_int_equal(r.status, 422);
	cJSON *oo = body_json(&r);
	cJSON *is = first_issue(oo);
	assert_string_equal(cJSON_GetObjectItem(is, "code")->valuestring, "required");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(is, "expression"), 0)->valuestring, "text");
	cJSON_Delete(oo);
	resp_free(&r);

	const char *bad = "{\"id\":\"x\",";
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", json_ct, bad, strlen(bad), &r), 0);
	assert_int_equal(r.status, 400); /* malformed JSON is a bad request, not unmappable input */
	oo = body_json(&r);
	assert_string_equal(cJSON_GetObjectItem(first_issue(oo), "code")->valuestring, "structure");
	cJSON_Delete(oo);
	resp_free(&r);

	const char *baddate = "{\"id\":\"x\",\"text\":\"t\",\"date\":\"2023-02-29\"}";
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", json_ct, baddate, strlen(baddate), &r), 0);
	assert_int_equal(r.status, 422);
	resp_free(&r);

	const char *csv[] = {"Content-Type: text/csv", NULL};
	assert_int_equal(http_do(&g, "POST", "/ingest/echo", csv, "a,b\n", 4, &r), 0);
	assert_int_equal(r.status, 415);
	resp_free(&r);
	assert_int_equal(http_do(&g, "POST", "/ingest/nosuch", json_ct, "{}", 2, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static void mapper_issues_become_outcome(void **state)
{
	(void)state;
	const char *csv[] = {"Content-Type: text/csv; charset=utf-8", NULL};
	const char *doc = "name,date\n,2024-13-01\n";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/issues", csv, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 422);
	cJSON *oo = body_json(&r);
	cJSON *issues = cJSON_GetObjectItem(oo, "issue");
	assert_int_equal(cJSON_GetArraySize(issues), 2);
	cJSON *a = cJSON_GetArrayItem(issues, 0), *b = cJSON_GetArrayItem(issues, 1);
	assert_string_equal(cJSON_GetObjectItem(a, "severity")->valuestring, "error");
	assert_string_equal(cJSON_GetObjectItem(a, "code")->valuestring, "required");
	assert_string_equal(cJSON_GetObjectItem(a, "diagnostics")->valuestring, "tp_issues: name is required");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "expression"), 0)->valuestring,
			    "line 2, column name");
	assert_string_equal(cJSON_GetObjectItem(b, "severity")->valuestring, "warning");
	cJSON_Delete(oo);
	resp_free(&r);

	/* An error issue fails the mapping even when the mapper said CW_OK. */
	assert_int_equal(http_do(&g, "POST", "/ingest/issues", csv, "ok\n", 3, &r), 0);
	assert_int_equal(r.status, 422);
	resp_free(&r);
}

static void operations(void **state)
{
	(void)state;
	const char *params = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\",\"valueString\":\"v\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/$echo", json_ct, params, strlen(params), &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *got = body_json(&r), *want = cJSON_Parse(params);
	assert_true(cJSON_Compare(got, want, true));
	cJSON_Delete(got);
	cJSON_Delete(want);
	resp_free(&r);

	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/$ping", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	got = body_json(&r);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(got, "parameter"), 0), "valueString")
			->valuestring,
		"Patient");
	cJSON_Delete(got);
	resp_free(&r);

	assert_int_equal(http_do(&g, "POST", "/fhir/Patient/$fail", json_ct, "{}", 2, &r), 0);
	assert_int_equal(r.status, 403);
	got = body_json(&r);
	assert_non_null(strstr(cJSON_GetObjectItem(first_issue(got), "diagnostics")->valuestring, "$fail failed"));
	cJSON_Delete(got);
	resp_free(&r);

	assert_int_equal(http_do(&g, "POST", "/fhir/$echo", json_ct, "[1,", 3, &r), 0);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Observation/$ping", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static void discovery_over_http(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/plugins", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = body_json(&r);
	cJSON *list = cJSON_GetObjectItem(j, "plugins");
	const char *names[] = {"echo", "tp_change", "tp_issues", "tp_slow", "tp_stop"};
	assert_int_equal(cJSON_GetArraySize(list), 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(list, i), "name")->valuestring, names[i]);
	cJSON *slow = cJSON_GetArrayItem(list, 3);
	cJSON *media = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(slow, "formats"), 0), "media");
	assert_int_equal(cJSON_GetArraySize(media), 2);
	cJSON_Delete(j);
	resp_free(&r);

	assert_int_equal(http_do(&g, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "native formats: echo, issues, slow"));
	j = body_json(&r);
	cJSON *server = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rest"), 0);
	cJSON *sysops = cJSON_GetObjectItem(server, "operation");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sysops, 0), "name")->valuestring, "echo");
	bool ping = false, fail = false;
	cJSON *res;
	cJSON_ArrayForEach(res, cJSON_GetObjectItem(server, "resource")) {
		if (strcmp(cJSON_GetObjectItem(res, "type")->valuestring, "Patient") != 0)
			continue;
		cJSON *op;
		cJSON_ArrayForEach(op, cJSON_GetObjectItem(res, "operation")) {
			const char *n = cJSON_GetObjectItem(op, "name")->valuestring;
			ping |= strcmp(n, "ping") == 0;
			if (strcmp(n, "fail") == 0)
				fail = strcmp(cJSON_GetObjectItem(op, "definition")->valuestring,
					      "urn:test:OperationDefinition:fail") == 0;
		}
	}
	assert_true(ping);
	assert_true(fail);
	cJSON_Delete(j);
	resp_free(&r);
}

/* --------------------------------------------------------- concurrency */

#define THREADS 8
#define PER_THREAD 50

struct worker {
	int n;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		char key[64], body[128], want[FHIR_ID_SIZE];
		snprintf(key, sizeof key, "k-%d-%d", w->n, i);
		fhir_make_id("urn:test:slow", key, want);
		bool csv = i % 2;
		if (csv)
			snprintf(body, sizeof body, "key\n%s\n", key);
		else
			snprintf(body, sizeof body, "{\"key\":\"%s\"}", key);
		const char *h[] = {csv ? "Content-Type: text/csv" : "Content-Type: application/json", NULL};
		struct resp r;
		if (http_do(&g, "POST", "/ingest/slow?preview=true", h, body, strlen(body), &r) != 0 || r.status != 200 ||
		    !strstr(r.body, want) || !strstr(r.body, "tp_change:20")) {
			w->failures++;
			resp_free(&r);
			continue;
		}
		resp_free(&r);
		const char *acc[] = {"Accept: text/csv", "Content-Type: application/fhir+json", NULL};
		const char *empty = "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}";
		if (http_do(&g, "POST", "/export/slow", acc, empty, strlen(empty), &r) != 0 || r.status != 200 ||
		    strcmp(r.body, "id\n") != 0)
			w->failures++;
		resp_free(&r);
	}
	return NULL;
}

static void concurrent_requests_through_hooks_and_mappers(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	assert_int_equal(failures, 0);
	/* uuid5(uuid5(NS_URL, "urn:test:slow"), "k-3-7"), computed independently */
	char id[FHIR_ID_SIZE];
	assert_int_equal(fhir_make_id("urn:test:slow", "k-3-7", id), 0);
	assert_string_equal(id, "352c0d1f-b6a7-5136-8ac0-5e337a9ed3ef");
}

static void echo_configuration_is_used(void **state)
{
	(void)state;
	struct gw own;
	assert_int_equal(gw_start(&own, "\"plugins\":{\"echo\":{\"system\":\"urn:example:records\"}}"), 0);
	const char *doc = "{\"id\":\"z\",\"text\":\"t\"}";
	struct resp r;
	assert_int_equal(http_do(&own, "POST", "/ingest/echo?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"system\":\"urn:example:records\",\"value\":\"z\""));
	resp_free(&r);
	assert_int_equal(gw_stop(&own, 15000), 0);
}

static void map_command(void **state)
{
	(void)state;
	static char out[65536];
	char d[256], in[512];
	snprintf(in, sizeof in, "%s/in.json", harness_new_dir(d, sizeof d));
	FILE *f = fopen(in, "w");
	assert_non_null(f);
	fputs("{\"id\":\"m1\",\"text\":\"mapped\"}", f);
	fclose(f);
	const char *from[] = {"map", "--from", "echo", in, NULL};
	assert_int_equal(gw_run_command(NULL, from, 15000, out, sizeof out), 0);
	assert_non_null(strstr(out, "\"Bundle\""));
	assert_non_null(strstr(out, "\"mapped\""));
	f = fopen(in, "w");
	assert_non_null(f);
	fputs("{\"id\":\"m1\"}", f);
	fclose(f);
	assert_int_equal(gw_run_command(NULL, from, 15000, out, sizeof out), 1);
	assert_non_null(strstr(out, "OperationOutcome"));
	const char *bad[] = {"map", "--from", "nosuch", in, NULL};
	assert_int_equal(gw_run_command(NULL, bad, 15000, out, sizeof out), 2);
}

int main(void)
{
	const struct CMUnitTest standalone[] = {
		cmocka_unit_test(refuses_wrong_abi_major),
		cmocka_unit_test(refuses_older_abi_major),
		cmocka_unit_test(refuses_small_descriptor),
		cmocka_unit_test(refuses_failing_init),
		cmocka_unit_test(refuses_missing_entry_point),
		cmocka_unit_test(refuses_file_that_is_not_elf),
		cmocka_unit_test(refuses_bad_names),
		cmocka_unit_test(refuses_path_leaving_the_directory),
		cmocka_unit_test(refuses_group_writable_file),
		cmocka_unit_test(refuses_writable_directory),
		cmocka_unit_test(refuses_missing_directory),
		cmocka_unit_test(refuses_duplicate_format),
		cmocka_unit_test(refuses_duplicate_operation),
		cmocka_unit_test(refuses_duplicate_plugin_across_directories),
		cmocka_unit_test(refuses_configuration_for_unknown_plugin),
		cmocka_unit_test(refuses_echo_with_bad_configuration),
		cmocka_unit_test(lists_the_plugins),
		cmocka_unit_test(echo_configuration_is_used),
		cmocka_unit_test(map_command),
	};
	const struct CMUnitTest served[] = {
		cmocka_unit_test(ingest_runs_store_hooks_in_order),
		cmocka_unit_test(hook_stop_before_store_answers_outcome),
		cmocka_unit_test(hook_stops_requests_in_order),
		cmocka_unit_test(export_runs_export_hooks_in_order),
		cmocka_unit_test(echo_round_trip),
		cmocka_unit_test(ingest_errors),
		cmocka_unit_test(mapper_issues_become_outcome),
		cmocka_unit_test(operations),
		cmocka_unit_test(discovery_over_http),
		cmocka_unit_test(concurrent_requests_through_hooks_and_mappers),
	};
	int rc = cmocka_run_group_tests_name("plugins", standalone, NULL, NULL);
	rc += cmocka_run_group_tests_name("plugins served", served, start_shared, stop_shared);
	return rc;
}
